//! Turns the file as read ([`super::schema`]) into the validated model,
//! collecting every problem with the span it comes from rather than
//! stopping at the first. Role presets are applied here; sets and
//! policies are compiled in [`super::policies`].

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use policy::{Disposition, Policy, Role};
use toml::Spanned;

use super::Validator;
use super::policies::Sets;
use super::schema::{RawConfig, RawFib, RawGracefulRestart, RawStaticRoute, RawVip};
use super::{
    ApiConfig, BGP_PORT, Config, DrainConfig, FibSettings, GracefulRestartConfig, MAX_HOSTNAME,
    MultipathConfig, PeerAddress, PolicyChain, StaticRoute, StaticTarget, VipRoute,
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
}
