//! Peers: how each `[[peer]]` table becomes a [`PeerConfig`] (its
//! address, an address range or an interface; the session; policies;
//! BFD; max-prefix; the MD5 key), and the `[[bfd-profile]]` tables.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::Family;
use ipnet::IpNet;
use policy::{Policy, Role};
use toml::Spanned;

use super::Validator;
use super::roles::preset;
use super::schema::{RawAsn, RawBfdProfile, RawPeer};
use super::{
    BGP_PORT, BfdConfig, MaxPrefix, MaxPrefixAction, PeerAddress, PeerConfig, RemoteAs, RoutingConfig,
    Secret, SessionConfig,
};

impl Validator<'_> {
    pub(super) fn peer(
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
        let address = match (&p.address, &p.interface) {
            (Some(a), None) => {
                let text = a.get_ref();
                if let Ok(a) = text.parse::<IpAddr>() {
                    Some(PeerAddress::Single(a))
                } else if let Ok(n) = text.parse::<IpNet>() {
                    Some(PeerAddress::Range(n.trunc()))
                } else {
                    self.error(a.span(), format!("invalid address {text:?}: expected an IP address or a range such as \"fd00:101::/64\""));
                    None
                }
            }
            (None, Some(i)) => {
                let text = i.get_ref();
                // IFNAMSIZ - 1, and what `ip link` accepts.
                if text.is_empty() || text.len() > 15 || text.contains(['/', ' ', ':']) {
                    self.error(i.span(), format!("invalid interface name {text:?}"));
                    None
                } else {
                    Some(PeerAddress::Interface(text.clone()))
                }
            }
            (Some(a), Some(_)) => {
                self.error(
                    a.span(),
                    "a peer has either `address` or `interface` (unnumbered), not both",
                );
                None
            }
            (None, None) => {
                self.error(
                    p.name.span(),
                    format!(
                        "peer {name:?} needs `address` (an address or a range) or `interface` (unnumbered)"
                    ),
                );
                None
            }
        };
        let unnumbered = matches!(address, Some(PeerAddress::Interface(_)));
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
        if let (true, Some(s)) = (unnumbered, &p.local_address) {
            self.error(
                s.span(),
                "an unnumbered peer (`interface`) uses the link's IPv6 link-local address; local-address does not apply",
            );
        }
        if let (true, Some(m)) = (unnumbered, &p.multihop) {
            self.error(
                m.span(),
                "an unnumbered peer (`interface`) is directly connected; multihop does not apply",
            );
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
        if unnumbered && md5_password.is_some() {
            self.error(
                p.name.span(),
                format!("peer {name:?}: TCP MD5 is not supported on unnumbered (`interface`) peers; use GTSM (`ttl-security = 1`)"),
            );
        }
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
                restart_hold: Some(Duration::from_secs(p.restart_hold.unwrap_or(preset.restart_hold)))
                    .filter(|d| !d.is_zero()),
                md5_password,
                // IPv4 over an unnumbered session needs IPv6 next hops
                // (RFC 8950), as FRR turns on for interface peers.
                extended_next_hop: p
                    .extended_next_hop
                    .unwrap_or(preset.extended_next_hop || unnumbered),
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
    pub(super) fn bfd_profiles(&mut self, raw: Vec<Spanned<RawBfdProfile>>) -> BTreeMap<String, BfdConfig> {
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
