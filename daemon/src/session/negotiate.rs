//! What a session offers in its OPEN, and what both sides agree on once the
//! peer's OPEN arrives: the intersection of capabilities (RFC 5492), the
//! hold time (RFC 4271 §4.2) and the codec contexts of both directions.

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_proto::capability::{ExtendedNextHop, GracefulRestart, GracefulRestartFamily};
use bgp_proto::notification::OpenSubcode;
use bgp_proto::{Afi, Capability, Context, Family, Notification, Open};

use serde::{Deserialize, Serialize};

use crate::config::{MAX_HOSTNAME, RemoteAs};

/// Our side of a session: everything that goes into our OPEN and the checks
/// we apply to theirs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    pub remote_asn: RemoteAs,
    /// Proposed hold time in seconds: 0, or 3 and more.
    pub hold_time: u16,
    /// Configured keepalive interval; the effective one is at most a third
    /// of the negotiated hold time.
    pub keepalive: Option<u16>,
    pub families: Vec<Family>,
    /// Offer IPv4 unicast with IPv6 next hops (RFC 8950).
    pub extended_next_hop: bool,
    pub extended_message: bool,
    /// Our graceful restart capability, if enabled.
    pub graceful_restart: Option<GracefulRestart>,
    pub hostname: Option<String>,
}

impl Offer {
    pub fn open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::EnhancedRouteRefresh);
        caps.push(Capability::FourOctetAs(self.local_asn));
        if self.extended_next_hop && self.families.contains(&Family::IPV4_UNICAST) {
            caps.push(Capability::ExtendedNextHop(vec![ExtendedNextHop {
                nlri: Family::IPV4_UNICAST,
                next_hop_afi: Afi::IPV6,
            }]));
        }
        if self.extended_message {
            caps.push(Capability::ExtendedMessage);
        }
        if let Some(gr) = &self.graceful_restart {
            caps.push(Capability::GracefulRestart(gr.clone()));
        }
        // A name the capability cannot carry is left out, never cut.
        if let Some(host) = self
            .hostname
            .as_ref()
            .filter(|h| !h.is_empty() && h.len() <= MAX_HOSTNAME)
        {
            caps.push(Capability::Fqdn {
                hostname: host.clone(),
                domain: String::new(),
            });
        }
        Open::new(self.local_asn, self.hold_time, self.router_id, caps)
    }
}

/// The peer's graceful restart capability as it matters to us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerGracefulRestart {
    /// R bit: the peer has just restarted.
    #[serde(rename = "peer_restarting")]
    pub restarting: bool,
    /// N bit on both sides (RFC 8538): NOTIFICATIONs other than Hard Reset
    /// also keep routes.
    pub notification: bool,
    pub restart_time: u16,
    /// Families the peer will preserve across its restart, with the F bit.
    #[serde(with = "serde_families_forwarding")]
    pub families: Vec<(Family, bool)>,
}

/// What both sides of an established session agreed on. The status API
/// shows it as is (without the codec contexts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Negotiated {
    pub peer_asn: u32,
    #[serde(rename = "peer_router_id")]
    pub peer_id: Ipv4Addr,
    pub hold_time: u16,
    #[serde(with = "serde_seconds")]
    pub keepalive: Duration,
    #[serde(with = "serde_families")]
    pub families: Vec<Family>,
    pub four_octet_as: bool,
    pub extended_next_hop: bool,
    pub extended_message: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// Present when both sides advertised graceful restart.
    pub graceful_restart: Option<PeerGracefulRestart>,
    pub peer_hostname: Option<String>,
    /// Decoding context for what the peer sends.
    #[serde(skip)]
    pub rx: Context,
    /// Encoding context for what we send.
    #[serde(skip)]
    pub tx: Context,
}

/// Durations as whole seconds.
mod serde_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Families by their configuration names (`ipv4-unicast`).
mod serde_families {
    use bgp_proto::Family;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(f: &[Family], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(f.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Family>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|n| {
                Family::from_name(n).ok_or_else(|| serde::de::Error::custom(format!("unknown family {n:?}")))
            })
            .collect()
    }
}

/// Graceful restart families by name; the F bits are not shown.
mod serde_families_forwarding {
    use bgp_proto::Family;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(f: &[(Family, bool)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(f.iter().map(|(f, _)| f.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(Family, bool)>, D::Error> {
        Ok(super::serde_families::deserialize(d)?
            .into_iter()
            .map(|f| (f, false))
            .collect())
    }
}

impl Negotiated {
    /// Whether routes of this peer are kept (as stale) when the session
    /// ends for `reason` (RFC 4724 §4.2, RFC 8538 §4).
    pub fn keeps_routes_on(&self, notification: Option<&Notification>) -> bool {
        let Some(gr) = &self.graceful_restart else {
            return false;
        };
        match notification {
            None => true,
            Some(n) => gr.notification && !n.is_hard_reset(),
        }
    }
}

fn open_error(subcode: OpenSubcode, data: Vec<u8>) -> Notification {
    Notification::open(subcode, data)
}

/// Checks the peer's OPEN and computes what was agreed. On a mismatch
/// returns the NOTIFICATION that RFC 4271 §6.2 prescribes.
pub fn negotiate(offer: &Offer, open: &Open) -> Result<Negotiated, Notification> {
    let peer_asn = open.asn();
    // RFC 4271 §6.2: the data of Bad Peer AS is the AS field as received.
    if let RemoteAs::Exact(asn) = offer.remote_asn
        && asn != peer_asn
    {
        tracing::warn!(
            received = peer_asn,
            expected = asn,
            "Bad Peer AS: the peer's OPEN says AS {peer_asn}, its remote-asn is {asn}"
        );
        return Err(open_error(
            OpenSubcode::BadPeerAs,
            open.my_as.to_be_bytes().to_vec(),
        ));
    }
    // RFC 4271 §4.2: the hold time is 0 or at least 3 seconds.
    if open.hold_time == 1 || open.hold_time == 2 {
        return Err(open_error(OpenSubcode::UnacceptableHoldTime, Vec::new()));
    }
    // RFC 6286 §2.2: the identifier is a non-zero 32-bit number, and only
    // peers in the same AS must have distinct ones. Cilium users often give
    // both sides of the localhost eBGP session the same router ID.
    if open.bgp_id.is_unspecified() || (open.bgp_id == offer.router_id && peer_asn == offer.local_asn) {
        return Err(open_error(OpenSubcode::BadBgpIdentifier, Vec::new()));
    }

    // RFC 4760 §8: a peer that advertises no multiprotocol capability
    // speaks IPv4 unicast only.
    let peer_families: Vec<Family> = {
        let f: Vec<Family> = open.families().collect();
        if f.is_empty() {
            vec![Family::IPV4_UNICAST]
        } else {
            f
        }
    };
    let families: Vec<Family> = offer
        .families
        .iter()
        .copied()
        .filter(|f| peer_families.contains(f))
        .collect();
    if families.is_empty() {
        // RFC 5492 §5: the data lists the capabilities we require.
        let mut data = Vec::new();
        for f in &offer.families {
            data.extend_from_slice(&[1, 4]);
            data.extend_from_slice(&f.afi.0.to_be_bytes());
            data.extend_from_slice(&[0, f.safi.0]);
        }
        return Err(open_error(OpenSubcode::UnsupportedCapability, data));
    }

    let has = |pred: &dyn Fn(&Capability) -> bool| open.capabilities.iter().any(pred);
    let four_octet_as = open.four_octet_as().is_some();
    let peer_ext_nh = has(
        &|c| matches!(c, Capability::ExtendedNextHop(e) if e.iter().any(|e| e.nlri == Family::IPV4_UNICAST && e.next_hop_afi == Afi::IPV6)),
    );
    let extended_next_hop =
        offer.extended_next_hop && peer_ext_nh && families.contains(&Family::IPV4_UNICAST);
    let extended_message = offer.extended_message && has(&|c| matches!(c, Capability::ExtendedMessage));
    let route_refresh = has(&|c| matches!(c, Capability::RouteRefresh) || c.code() == 128);
    let enhanced_route_refresh = route_refresh && has(&|c| matches!(c, Capability::EnhancedRouteRefresh));
    let graceful_restart = match (&offer.graceful_restart, open.graceful_restart()) {
        (Some(ours), Some(theirs)) => Some(PeerGracefulRestart {
            restarting: theirs.restarting,
            notification: ours.notification && theirs.notification,
            restart_time: theirs.restart_time,
            families: theirs
                .families
                .iter()
                .filter(|f| families.contains(&f.family))
                .map(|GracefulRestartFamily { family, forwarding }| (*family, *forwarding))
                .collect(),
        }),
        _ => None,
    };
    let peer_hostname = open.capabilities.iter().find_map(|c| match c {
        Capability::Fqdn { hostname, .. } if !hostname.is_empty() => Some(hostname.clone()),
        _ => None,
    });

    let hold_time = offer.hold_time.min(open.hold_time);
    let keepalive = if hold_time == 0 {
        Duration::ZERO
    } else {
        let third = hold_time / 3;
        Duration::from_secs(u64::from(offer.keepalive.map_or(third, |k| k.min(third)).max(1)))
    };
    let external = peer_asn != offer.local_asn;
    let ctx = Context {
        four_octet_as,
        extended_message,
        add_path: Default::default(),
        external_peer: external,
    };
    Ok(Negotiated {
        peer_asn,
        peer_id: open.bgp_id,
        hold_time,
        keepalive,
        families,
        four_octet_as,
        extended_next_hop,
        extended_message,
        route_refresh,
        enhanced_route_refresh,
        graceful_restart,
        peer_hostname,
        rx: ctx,
        tx: ctx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::capability::GracefulRestartFamily;
    use bgp_proto::notification::CeaseSubcode;

    pub(crate) fn offer() -> Offer {
        Offer {
            local_asn: 4210101021,
            router_id: Ipv4Addr::new(10, 101, 0, 21),
            remote_asn: RemoteAs::Exact(4220101000),
            hold_time: 90,
            keepalive: None,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            extended_next_hop: true,
            extended_message: false,
            graceful_restart: Some(GracefulRestart {
                restarting: false,
                notification: true,
                restart_time: 120,
                families: vec![],
            }),
            hostname: None,
        }
    }

    /// An OPEN like the one Cilium's GoBGP sends.
    fn cilium_open() -> Open {
        Open::new(
            4220101000,
            90,
            Ipv4Addr::new(10, 101, 0, 21),
            vec![
                Capability::RouteRefresh,
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::GracefulRestart(GracefulRestart {
                    restarting: false,
                    notification: true,
                    restart_time: 120,
                    families: vec![
                        GracefulRestartFamily {
                            family: Family::IPV4_UNICAST,
                            forwarding: false,
                        },
                        GracefulRestartFamily {
                            family: Family::IPV6_UNICAST,
                            forwarding: false,
                        },
                    ],
                }),
                Capability::ExtendedNextHop(vec![ExtendedNextHop {
                    nlri: Family::IPV4_UNICAST,
                    next_hop_afi: Afi::IPV6,
                }]),
            ],
        )
    }

    #[test]
    fn cilium_session_with_the_same_router_id_is_accepted() {
        let n = negotiate(&offer(), &cilium_open()).unwrap();
        assert_eq!(n.peer_asn, 4220101000);
        assert_eq!(n.families, [Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
        assert!(n.four_octet_as && n.extended_next_hop && n.route_refresh && !n.enhanced_route_refresh);
        assert!(!n.extended_message);
        let gr = n.graceful_restart.as_ref().unwrap();
        assert!(gr.notification && !gr.restarting);
        assert_eq!(gr.restart_time, 120);
        assert_eq!(n.hold_time, 90);
        assert_eq!(n.keepalive, Duration::from_secs(30));
        assert!(n.rx.external_peer && n.rx.four_octet_as);
    }

    #[test]
    fn open_checks_give_the_rfc_notification() {
        let mut o = cilium_open();
        o.capabilities
            .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
        o.capabilities.push(Capability::FourOctetAs(65001));
        let n = negotiate(&offer(), &o).unwrap_err();
        assert_eq!((n.code, n.subcode, &n.data[..]), (2, 2, &[0x5b, 0xa0][..]));

        let mut o = cilium_open();
        o.hold_time = 2;
        assert_eq!(
            negotiate(&offer(), &o).unwrap_err().subcode,
            OpenSubcode::UnacceptableHoldTime as u8
        );

        let mut o = cilium_open();
        o.bgp_id = Ipv4Addr::UNSPECIFIED;
        assert_eq!(
            negotiate(&offer(), &o).unwrap_err().subcode,
            OpenSubcode::BadBgpIdentifier as u8
        );

        // The same identifier is refused within one AS (iBGP).
        let mut ibgp = offer();
        ibgp.remote_asn = RemoteAs::Exact(4210101021);
        let mut o = cilium_open();
        o.capabilities
            .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
        o.capabilities.push(Capability::FourOctetAs(4210101021));
        assert_eq!(
            negotiate(&ibgp, &o).unwrap_err().subcode,
            OpenSubcode::BadBgpIdentifier as u8
        );

        // No family in common.
        let mut only_v6 = offer();
        only_v6.families = vec![Family::IPV6_UNICAST];
        let o = Open::new(4220101000, 90, Ipv4Addr::new(1, 1, 1, 1), vec![]);
        let n = negotiate(&only_v6, &o).unwrap_err();
        assert_eq!((n.code, n.subcode, &n.data[..]), (2, 7, &[1, 4, 0, 2, 0, 1][..]));
    }

    #[test]
    fn any_remote_as_and_implicit_ipv4() {
        let mut any = offer();
        any.remote_asn = RemoteAs::Any;
        let o = Open::new(65001, 0, Ipv4Addr::new(1, 1, 1, 1), vec![]);
        let n = negotiate(&any, &o).unwrap();
        assert_eq!(n.families, [Family::IPV4_UNICAST]);
        assert_eq!((n.hold_time, n.keepalive), (0, Duration::ZERO));
        assert!(n.graceful_restart.is_none());
    }

    #[test]
    fn hold_time_is_the_smaller_and_keepalive_a_third() {
        let mut o = cilium_open();
        o.hold_time = 9;
        let n = negotiate(&offer(), &o).unwrap();
        assert_eq!((n.hold_time, n.keepalive), (9, Duration::from_secs(3)));
        let mut short_ka = offer();
        short_ka.keepalive = Some(5);
        let n = negotiate(&short_ka, &cilium_open()).unwrap();
        assert_eq!(n.keepalive, Duration::from_secs(5));
    }

    #[test]
    fn graceful_restart_retention_rfc8538() {
        let n = negotiate(&offer(), &cilium_open()).unwrap();
        let cease = Notification::cease(CeaseSubcode::AdministrativeReset);
        assert!(n.keeps_routes_on(None));
        assert!(n.keeps_routes_on(Some(&cease)));
        assert!(!n.keeps_routes_on(Some(&Notification::hard_reset(&cease))));
        let mut without_n = cilium_open();
        without_n
            .capabilities
            .retain(|c| !matches!(c, Capability::GracefulRestart(_)));
        without_n
            .capabilities
            .push(Capability::GracefulRestart(GracefulRestart {
                restart_time: 120,
                ..Default::default()
            }));
        let n = negotiate(&offer(), &without_n).unwrap();
        assert!(n.keeps_routes_on(None));
        assert!(!n.keeps_routes_on(Some(&cease)));
    }

    #[test]
    fn our_open_carries_what_we_offer() {
        let open = offer().open();
        assert_eq!(open.my_as, 23456);
        assert_eq!(open.asn(), 4210101021);
        assert!(open.graceful_restart().is_some_and(|gr| gr.notification));
        assert!(
            open.capabilities
                .iter()
                .any(|c| matches!(c, Capability::ExtendedNextHop(_)))
        );
    }

    /// The FQDN capability carries at most 253 octets of host name: a
    /// longer one is left out of the OPEN, which stays well formed.
    #[test]
    fn a_host_name_the_capability_cannot_carry_is_left_out() {
        for (len, carried) in [(253, true), (254, false), (300, false), (0, false)] {
            let mut o = offer();
            o.hostname = Some("n".repeat(len));
            let open = o.open();
            let mut buf = bytes::BytesMut::new();
            bgp_proto::Message::Open(open)
                .encode(&Context::default(), &mut buf)
                .unwrap_or_else(|e| panic!("{len}: {e}"));
            let Ok(bgp_proto::Message::Open(back)) = bgp_proto::Message::decode(&buf, &Context::default())
            else {
                panic!("{len}: the OPEN does not decode")
            };
            let name = back.capabilities.iter().find_map(|c| match c {
                Capability::Fqdn { hostname, .. } => Some(hostname.len()),
                _ => None,
            });
            assert_eq!(name, carried.then_some(len), "{len}");
        }
    }
}
