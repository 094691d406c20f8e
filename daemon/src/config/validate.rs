//! Turns the file as read ([`super::schema`]) into the validated model,
//! collecting every problem with the span it comes from rather than
//! stopping at the first. Role presets are applied here; sets and
//! policies are compiled in [`super::policies`].

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::Family;
use ipnet::IpNet;
use policy::{Disposition, Policy, Role};
use toml::Spanned;

use super::Validator;
use super::policies::Sets;
use super::roles::preset;
use super::schema::{
    RawAsn, RawBfdProfile, RawConfig, RawFib, RawGracefulRestart, RawPeer, RawStaticRoute, RawVip,
};
use super::{
    ApiConfig, BGP_PORT, BfdConfig, Config, DrainConfig, FibSettings, GracefulRestartConfig, MAX_HOSTNAME,
    MaxPrefix, MaxPrefixAction, MultipathConfig, PeerAddress, PeerConfig, PolicyChain, RemoteAs,
    RoutingConfig, Secret, SessionConfig, StaticRoute, StaticTarget, VipRoute,
};

impl Validator<'_> {
    pub(super) fn config(&mut self, mut raw: RawConfig, path: &Path) -> Config {
        let router_id = raw
            .router_id
            .as_ref()
            .and_then(|r| self.parse::<Ipv4Addr>(r, "router-id"));
        if let (Some(id), Some(r)) = (router_id, &raw.router_id)
            && id.is_unspecified()
        {
            self.error(r.span(), "router-id must not be 0.0.0.0");
        }
        let asn = *raw.asn.get_ref();
        if asn == 0 {
            self.error(raw.asn.span(), "asn must not be 0");
        }
        let listen = match &raw.listen {
            None => vec![SocketAddr::from(([0u16; 8], BGP_PORT))],
            Some(list) => list
                .iter()
                .filter_map(|s| self.listen_address(s, BGP_PORT))
                .collect(),
        };
        let api = match raw.api.take() {
            None => ApiConfig {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 9179))),
                socket: None,
            },
            Some(a) => ApiConfig {
                listen: a.listen.as_ref().and_then(|l| self.listen_address(l, 9179)),
                socket: a.socket.map(PathBuf::from),
            },
        };
        let state_dir = PathBuf::from(raw.state_dir.as_deref().unwrap_or("/run/tern"));
        let api = ApiConfig {
            socket: api.socket.or_else(|| Some(state_dir.join("tern.sock"))),
            ..api
        };
        let originate = self.parse_all::<IpNet>(&raw.originate, "originate prefix");
        for (net, s) in originate.iter().zip(&raw.originate) {
            if net.trunc() != *net {
                self.error(
                    s.span(),
                    format!("{net} has host bits set; the network is {}", net.trunc()),
                );
            }
        }
        let graceful_restart = self.graceful_restart(raw.graceful_restart.take());
        let multipath = MultipathConfig {
            max_paths: raw
                .multipath
                .as_ref()
                .and_then(|m| m.max_paths.as_ref())
                .map_or(8, |m| {
                    if *m.get_ref() == 0 {
                        self.error(m.span(), "max-paths must be at least 1");
                    }
                    *m.get_ref()
                }),
            as_path_relax: raw
                .multipath
                .as_ref()
                .and_then(|m| m.as_path_relax)
                .unwrap_or(true),
        };

        let sets = self.sets(&raw);
        let policies = self.policies(&raw.policies, &sets);
        let fib = self.fib(raw.fib.take(), &sets, &policies, graceful_restart.enabled);
        let bfd_profiles = self.bfd_profiles(std::mem::take(&mut raw.bfd_profiles));
        let static_routes = self.static_routes(std::mem::take(&mut raw.static_routes));
        let drain = {
            let d = raw.drain.take().unwrap_or_default();
            let prepend = match &d.prepend {
                Some(p) if *p.get_ref() > 10 => {
                    self.error(p.span(), "prepend is at most 10");
                    10
                }
                Some(p) => *p.get_ref(),
                None => 2,
            };
            DrainConfig {
                prepend,
                time: Duration::from_secs(d.time.unwrap_or(15)),
                on_stop: d.on_stop.unwrap_or(false),
            }
        };
        let health_checks = self.health_checks(
            std::mem::take(&mut raw.health_checks),
            &sets,
            fib.vip.as_ref().map(|(s, _)| s),
        );
        let mut peers = Vec::new();
        let mut names = HashSet::new();
        let mut addresses: Vec<(PeerAddress, String)> = Vec::new();
        for p in raw.peers {
            let span = p.span();
            // A name is taken even by a peer with mistakes of its own.
            let name = p.get_ref().name.get_ref().clone();
            if !names.insert(name.clone()) {
                self.error(span.clone(), format!("a peer named {name:?} is already defined"));
            }
            let Some(peer) = self.peer(
                p.into_inner(),
                asn,
                &policies,
                &bfd_profiles,
                graceful_restart.enabled,
            ) else {
                continue;
            };
            if let Some((_, other)) = addresses.iter().find(|(a, _)| *a == peer.session.address) {
                self.error(
                    span,
                    format!("peer {:?} has the same address as peer {other:?}", peer.name),
                );
            }
            addresses.push((peer.session.address.clone(), peer.name.clone()));
            peers.push(peer);
        }
        Config {
            path: path.to_owned(),
            router_id,
            asn,
            hostname: raw.hostname.map(|h| self.hostname(h)),
            listen,
            api,
            state_dir,
            originate,
            graceful_restart,
            multipath,
            peers,
            policies,
            fib,
            static_routes,
            drain,
            health_checks,
        }
    }

    fn fib(
        &mut self,
        raw: Option<RawFib>,
        sets: &Sets,
        policies: &BTreeMap<String, Arc<Policy>>,
        graceful_restart: bool,
    ) -> FibSettings {
        let raw = raw.unwrap_or_default();
        let table = match &raw.table {
            // 0 is unspecified; 253 default, 255 local belong to the kernel.
            Some(t) if matches!(*t.get_ref(), 0 | 253 | 255) => {
                self.error(
                    t.span(),
                    format!(
                        "table {} is reserved; use 254 (main) or 1-252, 256 and up",
                        t.get_ref()
                    ),
                );
                254
            }
            Some(t) => *t.get_ref(),
            None => 254,
        };
        let protocol = match &raw.protocol {
            // 0-4: unspecified, redirect, kernel, boot, static.
            Some(p) if *p.get_ref() <= 4 => {
                self.error(
                    p.span(),
                    format!(
                        "protocol {} is reserved by the kernel; the default is 186 (bgp)",
                        p.get_ref()
                    ),
                );
                186
            }
            Some(p) => *p.get_ref(),
            None => 186,
        };
        let install_from = match &raw.install_from {
            None => vec![Role::Upstream],
            Some(list) => self.parse_all(list, "role"),
        };
        let install_policy = raw.policy.as_ref().and_then(|n| match policies.get(n.get_ref()) {
            Some(p) => Some(PolicyChain {
                policies: vec![p.clone()],
                default: Disposition::Reject,
            }),
            None => {
                self.error(n.span(), format!("unknown policy {:?}", n.get_ref()));
                None
            }
        });
        let vip = match raw.vip {
            Some(v) if v.enabled == Some(false) => None,
            v => {
                let v: RawVip = v.unwrap_or_default();
                let kind = match v.kind.as_ref().map(|k| (k, k.get_ref().as_str())) {
                    None | Some((_, "local")) => Some(VipRoute::Local),
                    Some((_, "blackhole")) => Some(VipRoute::Blackhole),
                    Some((k, "device")) => match &v.device {
                        Some(d) => Some(VipRoute::Device(d.get_ref().clone())),
                        None => {
                            self.error(
                                k.span(),
                                "a device VIP route needs `device`, e.g. \"cilium_host\"",
                            );
                            None
                        }
                    },
                    Some((k, other)) => {
                        self.error(
                            k.span(),
                            format!("invalid VIP route kind {other:?}: expected local, device or blackhole"),
                        );
                        None
                    }
                };
                let prefix_sets = v
                    .prefix_sets
                    .iter()
                    .flatten()
                    .filter_map(|n| self.lookup(&sets.prefix, n, "prefix-set"))
                    .collect();
                let communities = v
                    .community_set
                    .as_ref()
                    .and_then(|n| self.lookup(&sets.community, n, "community-set"));
                let selector = policy::VipSelector {
                    prefix_sets,
                    communities,
                    host_routes_only: v.host_routes_only.unwrap_or(true),
                };
                kind.map(|k| (selector, k))
            }
        };
        let scan_interval = match &raw.scan_interval {
            Some(s) if *s.get_ref() == 0 => {
                self.error(s.span(), "scan-interval must be at least 1 second");
                Duration::from_secs(60)
            }
            Some(s) => Duration::from_secs(*s.get_ref()),
            None => Duration::from_secs(60),
        };
        FibSettings {
            enabled: raw.enabled.unwrap_or(true),
            table,
            protocol,
            metric: raw.metric.unwrap_or(512),
            ipv4: raw.ipv4.unwrap_or(true),
            ipv6: raw.ipv6.unwrap_or(true),
            install_from,
            install_policy,
            vip,
            scan_interval,
            keep_routes_on_stop: raw.keep_routes_on_stop.unwrap_or(graceful_restart),
            source_address_ipv4: raw
                .source_address_ipv4
                .as_ref()
                .and_then(|a| self.parse(a, "IPv4 source address")),
            source_address_ipv6: raw
                .source_address_ipv6
                .as_ref()
                .and_then(|a| self.parse(a, "IPv6 source address")),
        }
    }

    /// `[[static-route]]`: a prefix and exactly one of a next hop,
    /// `blackhole` or `unreachable`.
    fn static_routes(&mut self, raw: Vec<Spanned<RawStaticRoute>>) -> Vec<StaticRoute> {
        let mut out: Vec<StaticRoute> = Vec::new();
        for r in raw {
            let span = r.span();
            let r = r.into_inner();
            let Some(prefix) = self.parse::<IpNet>(&r.prefix, "prefix") else {
                continue;
            };
            if prefix.trunc() != prefix {
                self.error(
                    r.prefix.span(),
                    format!("{prefix} has host bits set; the network is {}", prefix.trunc()),
                );
                continue;
            }
            let targets = [
                r.next_hop.is_some(),
                r.blackhole == Some(true),
                r.unreachable == Some(true),
            ];
            if targets.iter().filter(|t| **t).count() != 1 {
                self.error(
                    span,
                    format!("static route {prefix}: give exactly one of next-hop, blackhole = true or unreachable = true"),
                );
                continue;
            }
            let target = match &r.next_hop {
                Some(nh) => {
                    let Some(a) = self.parse::<IpAddr>(nh, "next-hop") else {
                        continue;
                    };
                    // An IPv4 prefix may go via IPv6 (RFC 8950), not the
                    // other way round.
                    if prefix.addr().is_ipv6() && a.is_ipv4() {
                        self.error(nh.span(), format!("{prefix} cannot go via an IPv4 next hop"));
                        continue;
                    }
                    StaticTarget::NextHop(a)
                }
                None if r.blackhole == Some(true) => StaticTarget::Blackhole,
                None => StaticTarget::Unreachable,
            };
            if out.iter().any(|s| s.prefix == prefix) {
                self.error(span, format!("a static route to {prefix} is already defined"));
                continue;
            }
            out.push(StaticRoute {
                prefix,
                target,
                originate: r.originate.unwrap_or(false),
            });
        }
        out
    }

    fn listen_address(&mut self, s: &Spanned<String>, default_port: u16) -> Option<SocketAddr> {
        let text = s.get_ref();
        if let Ok(a) = text.parse::<SocketAddr>() {
            return Some(a);
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(SocketAddr::new(ip, default_port));
        }
        self.error(s.span(), format!("invalid listen address {text:?}: expected an address, optionally with a port (\"[::]:179\", \"10.0.0.1\")"));
        None
    }

    /// The name sent in the FQDN capability: its value holds the name and
    /// the (empty) domain, each after a length octet, in at most 255
    /// octets.
    fn hostname(&mut self, h: Spanned<String>) -> String {
        if h.get_ref().is_empty() || h.get_ref().len() > MAX_HOSTNAME {
            self.error(
                h.span(),
                format!(
                    "hostname is {} octets; it must be 1 to {MAX_HOSTNAME} (what the FQDN capability carries)",
                    h.get_ref().len()
                ),
            );
        }
        h.into_inner()
    }

    fn graceful_restart(&mut self, raw: Option<Spanned<RawGracefulRestart>>) -> GracefulRestartConfig {
        let raw = raw.map(Spanned::into_inner);
        let restart_time = match raw.as_ref().and_then(|r| r.restart_time.as_ref()) {
            Some(t) if *t.get_ref() > 4095 => {
                self.error(
                    t.span(),
                    "restart-time is at most 4095 seconds (12 bits, RFC 4724)",
                );
                120
            }
            Some(t) => *t.get_ref(),
            None => 120,
        };
        GracefulRestartConfig {
            enabled: raw.as_ref().and_then(|r| r.enabled).unwrap_or(true),
            restart_time,
            stale_routes_time: Duration::from_secs(
                raw.as_ref().and_then(|r| r.stale_routes_time).unwrap_or(360),
            ),
            select_defer_time: Duration::from_secs(
                raw.as_ref().and_then(|r| r.select_defer_time).unwrap_or(360),
            ),
        }
    }

    fn peer(
        &mut self,
        p: RawPeer,
        local_asn: u32,
        policies: &BTreeMap<String, Arc<Policy>>,
        bfd_profiles: &BTreeMap<String, BfdConfig>,
        gr: bool,
    ) -> Option<PeerConfig> {
        let name = p.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.error(
                p.name.span(),
                format!(
                    "peer name {name:?} must be non-empty and use only letters, digits, '-', '_' and '.'"
                ),
            );
        }
        let address = {
            let text = p.address.get_ref();
            if let Ok(a) = text.parse::<IpAddr>() {
                Some(PeerAddress::Single(a))
            } else if let Ok(n) = text.parse::<IpNet>() {
                Some(PeerAddress::Range(n.trunc()))
            } else {
                self.error(p.address.span(), format!("invalid address {text:?}: expected an IP address or a range such as \"fd00:101::/64\""));
                None
            }
        };
        let remote_asn = match p.remote_asn.get_ref() {
            RawAsn::Number(0) => {
                self.error(p.remote_asn.span(), "remote-asn must not be 0");
                RemoteAs::Any
            }
            RawAsn::Number(n) => RemoteAs::Exact(*n),
            RawAsn::Text(t) if t == "any" => RemoteAs::Any,
            RawAsn::Text(t) => {
                self.error(
                    p.remote_asn.span(),
                    format!("invalid remote-asn {t:?}: expected a number or \"any\""),
                );
                RemoteAs::Any
            }
        };
        let role = match &p.role {
            None => Role::Peer,
            Some(r) => self.parse(r, "role").unwrap_or(Role::Peer),
        };
        let preset = preset(role);
        let families = match &p.families {
            None => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            Some(list) => {
                let f: Vec<Family> = list.iter().filter_map(|s| self.family(s)).collect();
                if f.is_empty() {
                    self.error(p.name.span(), format!("peer {name:?} has no families"));
                }
                f
            }
        };
        let passive = match (&p.passive, &address) {
            (Some(v), Some(PeerAddress::Range(_))) if !*v.get_ref() => {
                self.error(v.span(), "a peer with an address range can only be passive");
                true
            }
            (Some(v), _) => *v.get_ref(),
            (None, Some(PeerAddress::Range(_))) => true,
            (None, _) => preset.passive,
        };
        let hold_time = match &p.hold_time {
            Some(h) if matches!(*h.get_ref(), 1 | 2) => {
                self.error(
                    h.span(),
                    "hold-time must be 0 or at least 3 seconds (RFC 4271 §4.2)",
                );
                90
            }
            Some(h) => *h.get_ref(),
            None => 90,
        };
        let keepalive = p.keepalive.as_ref().map(|k| {
            if hold_time != 0 && *k.get_ref() >= hold_time {
                self.error(
                    k.span(),
                    format!("keepalive must be shorter than hold-time ({hold_time} s)"),
                );
            }
            *k.get_ref()
        });
        let local_address = p
            .local_address
            .as_ref()
            .and_then(|l| self.parse::<IpAddr>(l, "local-address"));
        if let (Some(l), Some(PeerAddress::Single(a)), Some(s)) = (local_address, &address, &p.local_address)
            && l.is_ipv4() != a.is_ipv4()
        {
            self.error(s.span(), "local-address and address must be of the same family");
        }
        if let (Some(_), Some(t)) = (&p.multihop, &p.ttl_security) {
            self.error(
                t.span(),
                "multihop and ttl-security cannot both be set: GTSM always sends TTL 255",
            );
        }
        let ttl_security = p.ttl_security.as_ref().map(|t| {
            if *t.get_ref() == 0 {
                self.error(t.span(), "ttl-security is the number of hops allowed, at least 1");
            }
            *t.get_ref()
        });
        let md5_password = self.md5(&p, &name);
        let bfd = p.bfd.as_ref().and_then(|b| self.peer_bfd(b, bfd_profiles));
        let import = self.chain(
            &p.import,
            &p.import_default,
            preset.import_default,
            None,
            policies,
        );
        let export = self.chain(
            &p.export,
            &p.export_default,
            preset.export_default,
            preset.export_builtin.clone(),
            policies,
        );
        Some(PeerConfig {
            name,
            session: SessionConfig {
                address: address?,
                port: p.port.unwrap_or(BGP_PORT),
                remote_asn,
                role,
                families,
                passive,
                hold_time,
                keepalive,
                connect_retry: Duration::from_secs(p.connect_retry.unwrap_or(5).max(1)),
                local_address,
                local_asn: p.local_asn.filter(|a| *a != local_asn),
                ttl: p.multihop.map(|m| *m.get_ref()),
                ttl_security,
                graceful_restart: p.graceful_restart.unwrap_or(gr),
                md5_password,
                extended_next_hop: p.extended_next_hop.unwrap_or(preset.extended_next_hop),
                extended_message: p.extended_message.unwrap_or(false),
            },
            routing: RoutingConfig {
                import,
                export,
                max_prefix: p.max_prefix.map(|m| self.max_prefix(m)),
                next_hop_self: p.next_hop_self.unwrap_or(preset.next_hop_self),
                accept_local_next_hop: p.accept_local_next_hop.unwrap_or(preset.accept_local_next_hop),
                soft_reconfiguration: p.soft_reconfiguration.unwrap_or(true),
            },
            bfd,
        })
    }

    /// `bfd = true` (the default profile), `false`, or a profile's name.
    fn peer_bfd(
        &mut self,
        raw: &Spanned<toml::Value>,
        profiles: &BTreeMap<String, BfdConfig>,
    ) -> Option<BfdConfig> {
        let name = match raw.get_ref() {
            toml::Value::Boolean(false) => return None,
            toml::Value::Boolean(true) => "default",
            toml::Value::String(s) => s.as_str(),
            other => {
                self.error(
                    raw.span(),
                    format!("bfd must be true, false or the name of a [[bfd-profile]], not {other}"),
                );
                return None;
            }
        };
        match profiles.get(name) {
            Some(p) => Some(p.clone()),
            None if name == "default" => Some(BfdConfig::default_profile()),
            None => {
                let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
                self.error(
                    raw.span(),
                    format!(
                        "no [[bfd-profile]] named {name:?} (defined: {})",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
                None
            }
        }
    }

    /// `[[bfd-profile]]`: `name`, `min-rx` and `min-tx` in milliseconds
    /// (10 to 60000, default 300), `multiplier` (1 to 255, default 3),
    /// `passive`. One named `default` replaces the defaults of `bfd = true`.
    fn bfd_profiles(&mut self, raw: Vec<Spanned<RawBfdProfile>>) -> BTreeMap<String, BfdConfig> {
        let mut profiles = BTreeMap::new();
        for r in raw {
            let span = r.span();
            let r = r.into_inner();
            let mut interval = |v: &Option<Spanned<u32>>, key: &str| match v {
                None => Duration::from_millis(300),
                Some(ms) => {
                    if !(10..=60_000).contains(ms.get_ref()) {
                        self.error(ms.span(), format!("{key} is in milliseconds, from 10 to 60000"));
                    }
                    Duration::from_millis(u64::from(*ms.get_ref()))
                }
            };
            let min_rx = interval(&r.min_rx, "min-rx");
            let min_tx = interval(&r.min_tx, "min-tx");
            let multiplier = match &r.multiplier {
                None => 3,
                Some(m) if *m.get_ref() == 0 => {
                    self.error(m.span(), "multiplier must be at least 1");
                    3
                }
                Some(m) => *m.get_ref(),
            };
            let name = r.name.get_ref().clone();
            let profile = BfdConfig {
                profile: name.clone(),
                min_tx,
                min_rx,
                multiplier,
                passive: r.passive.unwrap_or(false),
            };
            if profiles.insert(name.clone(), profile).is_some() {
                self.error(span, format!("a bfd-profile named {name:?} is already defined"));
            }
        }
        profiles
    }

    /// `max-prefix = N` (every family, reset), or a table: `limit` (every
    /// family), `ipv4-unicast`, `ipv6-unicast`, `action` and
    /// `restart-after`.
    fn max_prefix(&mut self, raw: Spanned<toml::Value>) -> MaxPrefix {
        let span = raw.span();
        let mut m = MaxPrefix {
            limits: Vec::new(),
            action: MaxPrefixAction::Reset,
            restart_after: None,
        };
        let number = |v: &toml::Value| v.as_integer().and_then(|n| u32::try_from(n).ok());
        let every = |limit| vec![(Family::IPV4_UNICAST, limit), (Family::IPV6_UNICAST, limit)];
        match raw.get_ref() {
            toml::Value::Table(t) => {
                let mut family_limits = Vec::new();
                for (key, value) in t {
                    match key.as_str() {
                        "limit" | "ipv4-unicast" | "ipv6-unicast" => match number(value) {
                            Some(n) if key == "limit" => m.limits = every(n),
                            Some(n) => family_limits.push((Family::from_name(key).unwrap_or(Family::IPV4_UNICAST), n)),
                            None => self.error(span.clone(), format!("max-prefix {key} must be a number of prefixes")),
                        },
                        "action" => match value.as_str() {
                            Some("reset") => m.action = MaxPrefixAction::Reset,
                            Some("warn") => m.action = MaxPrefixAction::Warn,
                            Some("discard-excess") => m.action = MaxPrefixAction::DiscardExcess,
                            _ => self.error(
                                span.clone(),
                                format!("invalid max-prefix action {value}: expected warn, discard-excess or reset"),
                            ),
                        },
                        "restart-after" => match value.as_integer().and_then(|n| u64::try_from(n).ok()) {
                            Some(s) => m.restart_after = Some(Duration::from_secs(s)),
                            None => self.error(span.clone(), "max-prefix restart-after must be a number of seconds"),
                        },
                        other => self.error(
                            span.clone(),
                            format!("unknown max-prefix key {other:?}: expected limit, ipv4-unicast, ipv6-unicast, action or restart-after"),
                        ),
                    }
                }
                for (family, limit) in family_limits {
                    m.limits.retain(|(f, _)| *f != family);
                    m.limits.push((family, limit));
                }
                m.limits.sort();
                if m.limits.is_empty() {
                    self.error(
                        span.clone(),
                        "max-prefix needs a limit: `limit`, `ipv4-unicast` or `ipv6-unicast`",
                    );
                }
            }
            v => match number(v) {
                Some(n) => m.limits = every(n),
                None => self.error(
                    span.clone(),
                    "max-prefix is a number of prefixes, or a table with limit, ipv4-unicast, ipv6-unicast, action and restart-after",
                ),
            },
        }
        if m.restart_after.is_some() && m.action != MaxPrefixAction::Reset {
            self.error(span, "restart-after goes with action = \"reset\"");
        }
        m
    }

    fn md5(&mut self, p: &RawPeer, name: &str) -> Option<Secret> {
        if let Some(inline) = &p.md5_password {
            self.error(
                inline.span(),
                format!("peer {name:?}: an inline md5-password would leave the secret in the config file; use md5-password-file or md5-password-env"),
            );
        }
        let given: Vec<&Spanned<String>> = [
            &p.md5_password_file,
            &p.md5_password_env,
            &p.md5_password_credential,
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            self.error(
                given[1].span(),
                "set one of md5-password-file, md5-password-env and md5-password-credential",
            );
            return None;
        }
        let secret = match (
            &p.md5_password_file,
            &p.md5_password_env,
            &p.md5_password_credential,
        ) {
            (Some(f), _, _) => {
                let path = self.base.join(f.get_ref());
                self.secrets.file(&path).map_err(|e| {
                    (
                        f.span(),
                        format!("cannot read md5-password-file {}: {e}", path.display()),
                    )
                })
            }
            (_, Some(v), _) => self.secrets.env(v.get_ref()).map_err(|e| {
                (
                    v.span(),
                    format!("cannot read md5-password-env {}: {e}", v.get_ref()),
                )
            }),
            (_, _, Some(c)) => self.secrets.credential(c.get_ref()).map_err(|e| {
                (
                    c.span(),
                    format!("cannot read md5-password-credential {:?}: {e}", c.get_ref()),
                )
            }),
            (None, None, None) => return None,
        };
        match secret {
            Ok(s) if s.is_empty() || s.len() > 80 => {
                let span = given.first().map_or(0..0, |g| g.span());
                self.error(
                    span,
                    "the MD5 password must be 1 to 80 characters (TCP_MD5SIG limit)",
                );
                None
            }
            Ok(s) => Some(Secret(s)),
            Err((span, msg)) => {
                self.error(span, msg);
                None
            }
        }
    }
}
