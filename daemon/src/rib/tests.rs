//! RIB scenarios with the shapes of the real deployment: a Cilium peer on
//! ::1 and an upstream FRR over IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use bgp_proto::{
    AsPath, Attributes, Community, Context, Family, Message, MpReach, NextHop, Nlri, Origin, Update,
    frame_len,
};
use ipnet::IpNet;
use policy::{Condition, Disposition, Policy, Role, Statement, StatementResult};

use super::*;
use crate::config::{GracefulRestartConfig, MultipathConfig, PolicyChain};
use crate::config::{MaxPrefix, MaxPrefixAction};
use crate::session::negotiate::{Negotiated, PeerGracefulRestart};
use crate::status::{AdjStatus, PrefixCounts};

const LOCAL_AS: u32 = 4210101021;
const CILIUM_AS: u32 = 4220101000;
const FRR_AS: u32 = 4200001000;

fn settings(restarting: bool) -> RibSettings {
    RibSettings {
        local_asn: LOCAL_AS,
        router_id: Ipv4Addr::new(10, 101, 0, 21),
        multipath: MultipathConfig {
            max_paths: 8,
            as_path_relax: true,
        },
        graceful_restart: GracefulRestartConfig {
            enabled: true,
            restart_time: 120,
            stale_routes_time: Duration::from_secs(360),
            select_defer_time: Duration::from_secs(360),
        },
        restarting,
    }
}

fn chain(default: Disposition) -> PolicyChain {
    PolicyChain {
        policies: vec![],
        default,
    }
}

fn upstream_export() -> PolicyChain {
    PolicyChain {
        policies: vec![Arc::new(Policy {
            name: "role:upstream-export".into(),
            statements: vec![
                Statement {
                    name: "cilium".into(),
                    conditions: vec![Condition::PeerRole(Role::LOCAL_SPEAKERS.to_vec())],
                    actions: vec![],
                    result: StatementResult::Accept,
                },
                Statement {
                    name: "local".into(),
                    conditions: vec![Condition::Originated],
                    actions: vec![],
                    result: StatementResult::Accept,
                },
            ],
        })],
        default: Disposition::Reject,
    }
}

fn setup(name: &str, role: Role) -> PeerSetup {
    let (import, export) = match role {
        r if r.is_local_speaker() => (chain(Disposition::Accept), chain(Disposition::Reject)),
        _ => (chain(Disposition::Accept), upstream_export()),
    };
    PeerSetup {
        name: name.into(),
        role,
        local_asn: LOCAL_AS,
        import,
        export,
        next_hop_self: true,
        accept_local_next_hop: role.is_local_speaker(),
        soft_reconfiguration: true,
        max_prefix: None,
        wait_for_end_of_rib: true,
        restart_hold: role == Role::KubeVip,
    }
}

fn negotiated(asn: u32, id: [u8; 4], gr: bool, restarting: bool) -> Negotiated {
    let ctx = Context {
        external_peer: asn != LOCAL_AS,
        ..Context::ebgp()
    };
    Negotiated {
        peer_asn: asn,
        peer_id: Ipv4Addr::from(id),
        hold_time: 90,
        keepalive: Duration::from_secs(30),
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        four_octet_as: true,
        extended_next_hop: true,
        extended_message: false,
        route_refresh: true,
        enhanced_route_refresh: false,
        graceful_restart: gr.then(|| PeerGracefulRestart {
            restarting,
            notification: true,
            restart_time: 120,
            families: vec![(Family::IPV4_UNICAST, true), (Family::IPV6_UNICAST, true)],
        }),
        peer_hostname: None,
        rx: ctx,
        tx: ctx,
    }
}

fn cilium_session() -> SessionInfo {
    SessionInfo {
        negotiated: negotiated(CILIUM_AS, [10, 101, 0, 21], true, false),
        local_address: IpAddr::V6(Ipv6Addr::LOCALHOST),
        remote_address: IpAddr::V6(Ipv6Addr::LOCALHOST),
        ifindex: None,
    }
}

fn frr_session(n: u8) -> SessionInfo {
    SessionInfo {
        negotiated: negotiated(FRR_AS + u32::from(n) - 1, [10, 101, 0, 250 + n], true, false),
        local_address: "fd00:101::21".parse().unwrap(),
        remote_address: format!("fd00:101::fff{n}").parse().unwrap(),
        ifindex: None,
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// An UPDATE as Cilium's GoBGP sends it: IPv4 or IPv6 NLRI in MP_REACH
/// with next hop ::1.
fn cilium_announce(prefixes: &[&str]) -> Update {
    let attrs = Attributes {
        origin: Some(Origin::Incomplete),
        as_path: Some(AsPath::from_sequence([CILIUM_AS])),
        communities: vec![Community::new(65000, 100)],
        ..Attributes::default()
    };
    let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(net(p))).collect();
    Update {
        attributes: attrs,
        mp_reach: Some(MpReach {
            family: nlri[0].family(),
            next_hop: NextHop::v6(Ipv6Addr::LOCALHOST),
            nlri,
        }),
        ..Update::default()
    }
}

fn frr_announce(asn: u32, prefixes: &[&str], path: &[u32]) -> Update {
    let attrs = Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence([&[asn], path].concat())),
        med: Some(10),
        ..Attributes::default()
    };
    let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(net(p))).collect();
    Update {
        attributes: attrs,
        mp_reach: Some(MpReach {
            family: nlri[0].family(),
            next_hop: NextHop::v6("fd00:101::fffe".parse().unwrap()),
            nlri,
        }),
        ..Update::default()
    }
}

fn withdraw(prefixes: &[&str]) -> Update {
    let mut u = Update::default();
    for p in prefixes {
        let n = Nlri::new(net(p));
        match n.family() {
            Family::IPV4_UNICAST => u.withdrawn.push(n),
            f => u
                .mp_unreach
                .get_or_insert_with(|| bgp_proto::MpUnreach {
                    family: f,
                    withdrawn: vec![],
                })
                .withdrawn
                .push(n),
        }
    }
    u
}

/// Everything sent to `peer` in `out`, decoded.
fn sent(out: &[RibOutput], peer: PeerId) -> Vec<Update> {
    sent_with(out, peer, Context::ebgp())
}

/// What an internal peer was sent (LOCAL_PREF is read only on iBGP).
fn sent_ibgp(out: &[RibOutput], peer: PeerId) -> Vec<Update> {
    let ctx = Context {
        external_peer: false,
        ..Context::ebgp()
    };
    sent_with(out, peer, ctx)
}

fn sent_with(out: &[RibOutput], peer: PeerId, ctx: Context) -> Vec<Update> {
    let mut updates = Vec::new();
    for o in out {
        if let RibOutput::Send(id, bytes) = o
            && *id == peer
        {
            let mut rest = &bytes[..];
            while let Ok(Some(len)) = frame_len(rest, &ctx) {
                if let Ok(Message::Update(u)) = Message::decode(&rest[..len], &ctx) {
                    updates.push(u);
                }
                rest = &rest[len..];
            }
        }
    }
    updates
}

fn announced(updates: &[Update]) -> Vec<(String, NextHop)> {
    let mut v = Vec::new();
    for u in updates {
        for n in &u.nlri {
            v.push((n.prefix.to_string(), NextHop::V4(u.attributes.next_hop.unwrap())));
        }
        if let Some(r) = &u.mp_reach {
            v.extend(r.nlri.iter().map(|n| (n.prefix.to_string(), r.next_hop)));
        }
    }
    v.sort();
    v
}

fn withdrawn(updates: &[Update]) -> Vec<String> {
    let mut v: Vec<String> = updates
        .iter()
        .flat_map(|u| u.withdrawals().map(|n| n.prefix.to_string()))
        .collect();
    v.sort();
    v
}

fn eors(updates: &[Update]) -> Vec<Family> {
    updates.iter().filter_map(Update::end_of_rib_family).collect()
}

struct Lab {
    rib: Rib,
    cilium: PeerId,
    frr: PeerId,
    now: Instant,
}

/// Both sessions up and synced: Cilium first, then the upstream.
fn lab() -> Lab {
    let now = Instant::now();
    let mut rib = Rib::new(settings(false), now);
    let cilium = rib.add_peer(setup("cilium", Role::Cilium));
    let frr = rib.add_peer(setup("upstream", Role::Upstream));
    let out = rib.peer_up(cilium, cilium_session(), now);
    // Nothing to tell Cilium but End-of-RIB for both families.
    assert_eq!(
        eors(&sent(&out, cilium)),
        [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    rib.written(cilium);
    let out = rib.peer_up(frr, frr_session(1), now);
    assert_eq!(eors(&sent(&out, frr)).len(), 2);
    rib.written(frr);
    Lab {
        rib,
        cilium,
        frr,
        now,
    }
}

#[test]
fn cilium_routes_reach_upstream_with_our_next_hop_and_as() {
    let mut l = lab();
    let out = l
        .rib
        .update(l.cilium, cilium_announce(&["10.96.1.10/32", "10.224.1.0/24"]));
    let to_frr = sent(&out, l.frr);
    let ours = NextHop::v6("fd00:101::21".parse().unwrap());
    assert_eq!(
        announced(&to_frr),
        [("10.224.1.0/24".into(), ours), ("10.96.1.10/32".into(), ours)]
    );
    let a = &to_frr[0].attributes;
    assert_eq!(a.as_path, Some(AsPath::from_sequence([LOCAL_AS, CILIUM_AS])));
    assert_eq!(a.local_pref, None);
    assert_eq!(a.communities, [Community::new(65000, 100)]);
    // Nothing goes back to Cilium.
    assert!(sent(&out, l.cilium).is_empty());
    // The Loc-RIB reports both for the FIB, with Cilium as source.
    let fib: Vec<&LocRibChange> = out
        .iter()
        .filter_map(|o| {
            if let RibOutput::LocRib(c) = o {
                Some(c)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(fib.len(), 2);
    assert!(fib.iter().all(|c| {
        c.selected
            .as_ref()
            .is_some_and(|s| s.source_role == Some(Role::Cilium))
    }));
}

#[test]
fn ipv6_from_cilium_and_withdrawals_propagate() {
    let mut l = lab();
    l.rib.update(l.cilium, cilium_announce(&["fd00:101:224:1::/64"]));
    l.rib.written(l.frr);
    let out = l.rib.update(l.cilium, withdraw(&["fd00:101:224:1::/64"]));
    assert_eq!(withdrawn(&sent(&out, l.frr)), ["fd00:101:224:1::/64"]);
    assert!(
        out.iter()
            .any(|o| matches!(o, RibOutput::LocRib(LocRibChange { selected: None, .. })))
    );
}

#[test]
fn upstream_routes_are_installed_but_not_sent_anywhere() {
    let mut l = lab();
    let out = l.rib.update(
        l.frr,
        frr_announce(FRR_AS, &["10.224.2.0/24", "fd00:101:224:2::/64"], &[4210101022]),
    );
    assert!(sent(&out, l.frr).is_empty() && sent(&out, l.cilium).is_empty());
    let routes = l.rib.routes(&RouteFilter::default());
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].paths[0].peer, "upstream");
    assert_eq!(
        l.rib.counts(l.frr),
        PrefixCounts {
            received: 2,
            accepted: 2,
            filtered: 0,
            invalid: 0,
            advertised: 0,
            stale: 0,
            unsendable: 0,
            over_limit: 0,
        }
    );
}

#[test]
fn routes_carrying_our_as_are_loops() {
    let mut l = lab();
    // FRR sends a node its own routes back.
    l.rib.update(
        l.frr,
        frr_announce(FRR_AS, &["10.224.1.0/24"], &[LOCAL_AS, CILIUM_AS]),
    );
    assert!(l.rib.routes(&RouteFilter::default()).is_empty());
    // A path that does not start with the peer's AS is refused too.
    l.rib.update(l.frr, frr_announce(65099, &["10.224.3.0/24"], &[]));
    assert!(l.rib.routes(&RouteFilter::default()).is_empty());
}

#[test]
fn loopback_next_hops_only_from_cilium() {
    let mut l = lab();
    let mut u = frr_announce(FRR_AS, &["10.224.5.0/24"], &[]);
    u.mp_reach.as_mut().unwrap().next_hop = NextHop::v6(Ipv6Addr::LOCALHOST);
    l.rib.update(l.frr, u);
    assert!(l.rib.routes(&RouteFilter::default()).is_empty());
    assert_eq!(l.rib.counts(l.frr).received, 1);
}

#[test]
fn a_slow_peer_gets_only_the_latest_state() {
    let mut l = lab();
    let out = l.rib.update(l.cilium, cilium_announce(&["10.96.1.10/32"]));
    assert_eq!(announced(&sent(&out, l.frr)).len(), 1);
    // Not yet written: three changes of one prefix and a flap of another.
    let mut second = cilium_announce(&["10.96.1.10/32"]);
    second.attributes.communities = vec![Community::new(65000, 2)];
    assert!(sent(&l.rib.update(l.cilium, second), l.frr).is_empty());
    let mut third = cilium_announce(&["10.96.1.10/32"]);
    third.attributes.communities = vec![Community::new(65000, 3)];
    l.rib.update(l.cilium, third);
    l.rib.update(l.cilium, cilium_announce(&["10.96.1.11/32"]));
    l.rib.update(l.cilium, withdraw(&["10.96.1.11/32"]));
    let out = l.rib.written(l.frr);
    let updates = sent(&out, l.frr);
    assert_eq!(announced(&updates).len(), 1);
    assert_eq!(updates[0].attributes.communities, [Community::new(65000, 3)]);
    // 10.96.1.11 was never sent, so its withdrawal is not sent either.
    assert!(withdrawn(&updates).is_empty());
}

#[test]
fn graceful_restart_helper_keeps_routes_through_a_cilium_restart() {
    let mut l = lab();
    l.rib
        .update(l.cilium, cilium_announce(&["10.96.1.10/32", "10.96.1.11/32"]));
    l.rib.written(l.frr);
    // The agent restarts: TCP closes, routes stay, nothing is withdrawn.
    let out = l.rib.peer_down(l.cilium, Some(Duration::from_secs(120)), l.now);
    assert!(sent(&out, l.frr).is_empty());
    assert!(
        out.iter()
            .all(|o| !matches!(o, RibOutput::LocRib(LocRibChange { selected: None, .. })))
    );
    assert_eq!(l.rib.counts(l.cilium).stale, 2);
    // It comes back and re-sends one of the two, then End-of-RIB.
    let t = l.now + Duration::from_secs(20);
    l.rib.peer_up(l.cilium, cilium_session(), t);
    l.rib.written(l.cilium);
    let out = l.rib.update(l.cilium, cilium_announce(&["10.96.1.10/32"]));
    assert!(sent(&out, l.frr).is_empty(), "an unchanged route is not re-sent");
    l.rib.update(l.cilium, Update::end_of_rib(Family::IPV6_UNICAST));
    let out = l.rib.update(l.cilium, Update::end_of_rib(Family::IPV4_UNICAST));
    assert_eq!(withdrawn(&sent(&out, l.frr)), ["10.96.1.11/32"]);
    assert_eq!(l.rib.counts(l.cilium).stale, 0);
}

#[test]
fn stale_routes_go_when_the_peer_stays_away() {
    let mut l = lab();
    l.rib.update(l.cilium, cilium_announce(&["10.96.1.10/32"]));
    l.rib.written(l.frr);
    l.rib.peer_down(l.cilium, Some(Duration::from_secs(120)), l.now);
    assert_eq!(l.rib.next_deadline(), Some(l.now + Duration::from_secs(120)));
    assert!(l.rib.on_timer(l.now + Duration::from_secs(119)).is_empty());
    let out = l.rib.on_timer(l.now + Duration::from_secs(120));
    assert_eq!(withdrawn(&sent(&out, l.frr)), ["10.96.1.10/32"]);
}

#[test]
fn without_graceful_restart_routes_go_at_once() {
    let mut l = lab();
    l.rib.update(l.cilium, cilium_announce(&["10.96.1.10/32"]));
    l.rib.written(l.frr);
    let out = l.rib.peer_down(l.cilium, None, l.now);
    assert_eq!(withdrawn(&sent(&out, l.frr)), ["10.96.1.10/32"]);
}

/// RFC 4724 §4.1: after our own restart nothing is sent to the upstream
/// until Cilium and the upstream have sent End-of-RIB, so the upstream
/// never sees our routes withdrawn and re-added.
#[test]
fn restarting_speaker_defers_until_end_of_rib() {
    let now = Instant::now();
    let mut rib = Rib::new(settings(true), now);
    let cilium = rib.add_peer(setup("cilium", Role::Cilium));
    let frr = rib.add_peer(setup("upstream", Role::Upstream));
    assert!(rib.peer_up(frr, frr_session(1), now).is_empty());
    assert!(
        rib.update(frr, Update::end_of_rib(Family::IPV4_UNICAST))
            .is_empty()
    );
    assert!(
        rib.update(frr, Update::end_of_rib(Family::IPV6_UNICAST))
            .is_empty()
    );
    rib.peer_up(cilium, cilium_session(), now);
    let out = rib.update(cilium, cilium_announce(&["10.96.1.10/32"]));
    assert!(out.is_empty(), "nothing leaves while deferring: {out:?}");
    rib.update(cilium, Update::end_of_rib(Family::IPV6_UNICAST));
    let out = rib.update(cilium, Update::end_of_rib(Family::IPV4_UNICAST));
    let to_frr = sent(&out, frr);
    assert_eq!(announced(&to_frr).len(), 1);
    assert_eq!(eors(&to_frr).len(), 2);
    assert!(!rib.is_deferring());
}

#[test]
fn deferral_ends_at_its_timer() {
    let now = Instant::now();
    let mut rib = Rib::new(settings(true), now);
    let frr = rib.add_peer(setup("upstream", Role::Upstream));
    rib.add_peer(setup("cilium", Role::Cilium));
    rib.peer_up(frr, frr_session(1), now);
    assert_eq!(rib.next_deadline(), Some(now + Duration::from_secs(360)));
    let out = rib.on_timer(now + Duration::from_secs(360));
    assert_eq!(eors(&sent(&out, frr)).len(), 2);
}

/// The same VIP from two upstreams with different ASNs: both next hops.
#[test]
fn ecmp_across_upstreams_with_multipath_relax() {
    let mut l = lab();
    let frr2 = l.rib.add_peer(setup("upstream2", Role::Upstream));
    l.rib.peer_up(frr2, frr_session(2), l.now);
    l.rib
        .update(l.frr, frr_announce(FRR_AS, &["10.96.2.10/32"], &[4210101022]));
    let mut u = frr_announce(FRR_AS + 1, &["10.96.2.10/32"], &[4210101023]);
    u.mp_reach.as_mut().unwrap().next_hop = NextHop::v6("fd00:101::fffd".parse().unwrap());
    let out = l.rib.update(frr2, u);
    let Some(RibOutput::LocRib(change)) = out.iter().find(|o| matches!(o, RibOutput::LocRib(_))) else {
        panic!("{out:?}")
    };
    assert_eq!(change.selected.as_ref().unwrap().next_hops.len(), 2);
    let view = l.rib.routes(&RouteFilter {
        best_only: true,
        ..RouteFilter::default()
    });
    assert_eq!(view[0].paths.iter().filter(|p| p.multipath).count(), 2);
}

fn max_prefix(limits: &[(Family, u32)], action: MaxPrefixAction) -> Option<MaxPrefix> {
    Some(MaxPrefix {
        limits: limits.to_vec(),
        action,
        restart_after: None,
    })
}

fn resets(out: &[RibOutput]) -> Vec<(PeerId, Notification, Option<Duration>)> {
    out.iter()
        .filter_map(|o| match o {
            RibOutput::Reset(id, n, d) => Some((*id, n.clone(), *d)),
            _ => None,
        })
        .collect()
}

/// Both sides sent the N bit: the Cease goes as a Hard Reset (RFC 8538
/// §5), so the routes do not linger as stale.
#[test]
fn max_prefix_resets_with_a_hard_reset() {
    let now = Instant::now();
    let mut rib = Rib::new(settings(false), now);
    let cilium = rib.add_peer(PeerSetup {
        max_prefix: max_prefix(&[(Family::IPV4_UNICAST, 1)], MaxPrefixAction::Reset),
        ..setup("cilium", Role::Cilium)
    });
    rib.peer_up(cilium, cilium_session(), now);
    let out = rib.update(cilium, cilium_announce(&["10.96.1.10/32", "10.96.1.11/32"]));
    let [(id, n, _)] = &resets(&out)[..] else {
        panic!("one reset: {out:?}")
    };
    assert_eq!(*id, cilium);
    assert!(n.is_hard_reset());
    assert_eq!(&n.data[..2], &[6, 1]);
}

/// Without the N bit the NOTIFICATION is Cease / Maximum Number of
/// Prefixes Reached itself, with AFI, SAFI and the limit (RFC 4486 §4).
#[test]
fn max_prefix_without_the_n_bit_sends_a_plain_cease_naming_family_and_limit() {
    let now = Instant::now();
    let mut rib = Rib::new(settings(false), now);
    let cilium = rib.add_peer(PeerSetup {
        max_prefix: Some(MaxPrefix {
            limits: vec![(Family::IPV4_UNICAST, 10), (Family::IPV6_UNICAST, 1)],
            action: MaxPrefixAction::Reset,
            restart_after: Some(Duration::from_secs(60)),
        }),
        ..setup("cilium", Role::Cilium)
    });
    let session = SessionInfo {
        negotiated: negotiated(CILIUM_AS, [10, 101, 0, 21], false, false),
        ..cilium_session()
    };
    rib.peer_up(cilium, session, now);
    // Two IPv4 prefixes are within their family's limit.
    let out = rib.update(cilium, cilium_announce(&["10.96.1.10/32", "10.96.1.11/32"]));
    assert!(resets(&out).is_empty());
    let out = rib.update(
        cilium,
        cilium_announce(&["fd00:96:1::10/128", "fd00:96:1::11/128"]),
    );
    let [(_, n, hold_down)] = &resets(&out)[..] else {
        panic!("one reset: {out:?}")
    };
    assert!(!n.is_hard_reset());
    assert_eq!((n.code, n.subcode), (6, 1));
    assert_eq!(n.data[..], [0, 2, 1, 0, 0, 0, 1], "AFI 2, SAFI 1, limit 1");
    assert_eq!(*hold_down, Some(Duration::from_secs(60)));
}

#[test]
fn max_prefix_warn_keeps_everything() {
    let mut l = lab();
    let cilium = l.rib.add_peer(PeerSetup {
        max_prefix: max_prefix(&[(Family::IPV4_UNICAST, 1)], MaxPrefixAction::Warn),
        ..setup("cilium-2", Role::Cilium)
    });
    l.rib.peer_up(cilium, cilium_session(), l.now);
    let out = l.rib.update(
        cilium,
        cilium_announce(&["10.96.1.10/32", "10.96.1.11/32", "10.96.1.12/32"]),
    );
    assert!(resets(&out).is_empty());
    assert_eq!(l.rib.counts(cilium).accepted, 3);
    // Counted while over (tern_peer_prefixes_over_limit), not after.
    assert_eq!(l.rib.counts(cilium).over_limit, 1);
    l.rib
        .update(cilium, withdraw(&["10.96.1.11/32", "10.96.1.12/32"]));
    assert_eq!(l.rib.counts(cilium).over_limit, 0);
}

/// discard-excess: new prefixes beyond the limit are not accepted; routes
/// already accepted still change; room made by a withdrawal is used.
#[test]
fn max_prefix_discard_excess_accepts_up_to_the_limit() {
    let mut l = lab();
    let cilium = l.rib.add_peer(PeerSetup {
        max_prefix: max_prefix(&[(Family::IPV4_UNICAST, 2)], MaxPrefixAction::DiscardExcess),
        ..setup("cilium-2", Role::Cilium)
    });
    l.rib.peer_up(cilium, cilium_session(), l.now);
    let out = l.rib.update(
        cilium,
        cilium_announce(&["10.96.1.10/32", "10.96.1.11/32", "10.96.1.12/32"]),
    );
    assert!(resets(&out).is_empty());
    let c = l.rib.counts(cilium);
    assert_eq!((c.received, c.accepted), (3, 2));
    let accepted = |rib: &Rib| {
        rib.routes(&RouteFilter::default())
            .iter()
            .filter(|r| r.paths.iter().any(|p| p.peer == "cilium-2"))
            .map(|r| r.prefix.to_string())
            .collect::<Vec<_>>()
    };
    let first = accepted(&l.rib);
    assert_eq!(first.len(), 2);
    l.rib.update(cilium, withdraw(&[first[0].as_str()]));
    l.rib.update(cilium, cilium_announce(&["10.96.1.13/32"]));
    let now = accepted(&l.rib);
    assert_eq!(now.len(), 2);
    assert!(now.contains(&"10.96.1.13/32".to_owned()), "{now:?}");
}

#[test]
fn route_refresh_resends_the_table() {
    let mut l = lab();
    l.rib.update(l.cilium, cilium_announce(&["10.96.1.10/32"]));
    l.rib.written(l.frr);
    let out = l
        .rib
        .route_refresh(l.frr, RouteRefresh::request(Family::IPV4_UNICAST));
    assert_eq!(announced(&sent(&out, l.frr)).len(), 1);
}

#[test]
fn import_policy_change_applies_without_a_session_reset() {
    let mut l = lab();
    l.rib
        .update(l.cilium, cilium_announce(&["10.96.1.10/32", "10.224.1.0/24"]));
    l.rib.written(l.frr);
    // Only host routes from now on.
    let host_routes = Arc::new(Policy {
        name: "vips-only".into(),
        statements: vec![Statement {
            name: "host".into(),
            conditions: vec![Condition::Prefix(Arc::new(
                policy::PrefixSet::new("h", vec!["0.0.0.0/0 ge 32".parse().unwrap()]).unwrap(),
            ))],
            actions: vec![],
            result: StatementResult::Accept,
        }],
    });
    let new = PeerSetup {
        import: PolicyChain {
            policies: vec![host_routes],
            default: Disposition::Reject,
        },
        ..setup("cilium", Role::Cilium)
    };
    let (out, refresh) = l.rib.update_peer(l.cilium, new);
    assert!(refresh.is_empty(), "soft reconfiguration needs no refresh");
    assert_eq!(withdrawn(&sent(&out, l.frr)), ["10.224.1.0/24"]);
    assert_eq!(
        l.rib.counts(l.cilium),
        PrefixCounts {
            received: 2,
            accepted: 1,
            filtered: 1,
            invalid: 0,
            advertised: 0,
            stale: 0,
            unsendable: 0,
            over_limit: 0,
        }
    );
}

#[test]
fn originated_prefixes_go_upstream() {
    let mut l = lab();
    let out = l
        .rib
        .set_originate(vec![net("10.101.0.21/32"), net("fd00:101::21/128")]);
    let to_frr = sent(&out, l.frr);
    assert_eq!(announced(&to_frr).len(), 2);
    assert!(
        to_frr
            .iter()
            .all(|u| u.attributes.as_path == Some(AsPath::from_sequence([LOCAL_AS])))
    );
    assert!(sent(&out, l.cilium).is_empty());
    let out = l.rib.set_originate(vec![]);
    l.rib.written(l.frr);
    assert!(!out.is_empty());
}

#[test]
fn attribute_sets_are_shared() {
    let mut l = lab();
    let many: Vec<String> = (0..200)
        .map(|i| format!("10.96.{}.{}/32", i / 100, i % 100))
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    l.rib.update(l.cilium, cilium_announce(&refs));
    // One received set, one exported set (plus the originate-free base).
    assert!(l.rib.summary().attribute_sets <= 3, "{:?}", l.rib.summary());
    assert_eq!(l.rib.summary().ipv4_prefixes, 200);
}

/// Both sides restarted (both set the R bit): neither waits for the other
/// (RFC 4724 §4.1), so nothing stalls until the deferral timer.
#[test]
fn peers_that_restarted_too_are_not_waited_for() {
    let now = Instant::now();
    let mut rib = Rib::new(settings(true), now);
    let frr = rib.add_peer(setup("upstream", Role::Upstream));
    let mut s = frr_session(1);
    s.negotiated = negotiated(FRR_AS, [10, 101, 0, 251], true, true);
    let out = rib.peer_up(frr, s, now);
    assert!(!rib.is_deferring());
    assert_eq!(eors(&sent(&out, frr)).len(), 2);
    // But the kernel routes of the previous run stay until it has sent its
    // table: it does so now that it has our End-of-RIB.
    assert!(!out.contains(&RibOutput::Converged), "{out:?}");
    // Nor does the FIB hear of anything before: a partial table would
    // replace what the kernel holds from the previous run.
    let mut out = rib.update(frr, frr_announce(FRR_AS, &["10.244.2.0/24"], &[]));
    for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        assert!(
            !out.iter()
                .any(|o| matches!(o, RibOutput::LocRib(_) | RibOutput::Converged))
        );
        out = rib.update(frr, Update::end_of_rib(family));
    }
    let fib: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            RibOutput::LocRib(c) => Some(c.prefix.to_string()),
            RibOutput::Converged => Some("converged".into()),
            _ => None,
        })
        .collect();
    assert_eq!(fib, ["10.244.2.0/24", "converged"]);
}

/// The FIB may sweep kernel routes left from a previous run only once every
/// graceful-restart peer has sent End-of-RIB for every family.
#[test]
fn converged_once_every_peer_sent_end_of_rib() {
    let now = Instant::now();
    let mut rib = Rib::new(settings(false), now);
    let cilium = rib.add_peer(setup("cilium", Role::Cilium));
    let frr = rib.add_peer(setup("upstream", Role::Upstream));
    let converged = |out: &[RibOutput]| out.iter().any(|o| matches!(o, RibOutput::Converged));
    assert!(!converged(&rib.peers_configured()));
    assert!(!converged(&rib.peer_up(cilium, cilium_session(), now)));
    assert!(!converged(&rib.peer_up(frr, frr_session(1), now)));
    for f in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        assert!(!converged(&rib.update(frr, Update::end_of_rib(f))));
    }
    assert!(!converged(
        &rib.update(cilium, Update::end_of_rib(Family::IPV4_UNICAST))
    ));
    assert!(converged(
        &rib.update(cilium, Update::end_of_rib(Family::IPV6_UNICAST))
    ));
    // Only once.
    assert!(!converged(
        &rib.update(cilium, Update::end_of_rib(Family::IPV6_UNICAST))
    ));
}

/// A peer without graceful restart re-sends its table and End-of-RIB all
/// the same: convergence (when the FIB sweeps what nobody re-sent) waits
/// for it, or a restart would remove the routes it has not re-sent yet. A
/// `restart-hold` speaker sends no End-of-RIB and is not waited for.
#[test]
fn convergence_waits_for_the_end_of_rib_of_peers_without_graceful_restart() {
    let now = Instant::now();
    let mut rib = Rib::new(settings(true), now);
    let frr = rib.add_peer(setup("upstream", Role::Upstream));
    let kube_vip = rib.add_peer(setup("kube-vip", Role::KubeVip));
    let converged = |out: &[RibOutput]| out.iter().any(|o| matches!(o, RibOutput::Converged));
    let without_gr = |mut s: SessionInfo| {
        s.negotiated.graceful_restart = None;
        s
    };
    assert!(!converged(&rib.peer_up(
        kube_vip,
        without_gr(cilium_session()),
        now
    )));
    assert!(!converged(&rib.peer_up(frr, without_gr(frr_session(1)), now)));
    assert!(!converged(
        &rib.update(frr, frr_announce(FRR_AS, &["10.96.2.10/32"], &[]))
    ));
    assert!(!converged(
        &rib.update(frr, Update::end_of_rib(Family::IPV4_UNICAST))
    ));
    assert!(converged(
        &rib.update(frr, Update::end_of_rib(Family::IPV6_UNICAST))
    ));
}

/// One that never sends End-of-RIB counts once it has been quiet for
/// `QUIET_WITHOUT_END_OF_RIB` seconds.
#[test]
fn a_peer_without_graceful_restart_or_end_of_rib_counts_once_quiet() {
    let now = Instant::now();
    let mut rib = Rib::new(settings(true), now);
    let frr = rib.add_peer(setup("upstream", Role::Upstream));
    let converged = |out: &[RibOutput]| out.iter().any(|o| matches!(o, RibOutput::Converged));
    let mut session = frr_session(1);
    session.negotiated.graceful_restart = None;
    rib.peer_up(frr, session, now);
    assert!(!converged(
        &rib.update(frr, frr_announce(FRR_AS, &["10.96.2.10/32"], &[]))
    ));
    let quiet = rib.next_deadline().expect("a deadline");
    assert!(
        quiet <= now + Duration::from_secs(u64::from(QUIET_WITHOUT_END_OF_RIB) + 1),
        "{quiet:?}"
    );
    assert!(!converged(&rib.on_timer(now + Duration::from_secs(2))));
    assert!(converged(&rib.on_timer(quiet)));
}

#[test]
fn convergence_times_out_for_peers_that_never_come() {
    let now = Instant::now();
    let mut rib = Rib::new(settings(false), now);
    rib.add_peer(setup("cilium", Role::Cilium));
    assert!(rib.peers_configured().is_empty());
    let out = rib.on_timer(now + Duration::from_secs(360));
    assert!(out.iter().any(|o| matches!(o, RibOutput::Converged)));
}

/// The size the summary reports is kept as the table changes; it always
/// equals a count of the Loc-RIB itself.
#[test]
fn the_summary_counts_follow_every_change() {
    let recount = |rib: &Rib| {
        let v4 = rib.loc.keys().filter(|p| matches!(p, IpNet::V4(_))).count();
        let paths = rib.loc.values().map(|d| d.paths.len()).sum::<usize>();
        (v4, rib.loc.len() - v4, paths)
    };
    let reported = |rib: &Rib| {
        let s = rib.summary();
        (s.ipv4_prefixes, s.ipv6_prefixes, s.paths)
    };
    let mut l = lab();
    let frr2 = l.rib.add_peer(setup("upstream-2", Role::Upstream));
    l.rib.peer_up(frr2, frr_session(2), l.now);
    // Each peer's accepted count, kept as paths come and go, against the
    // paths the Loc-RIB holds from it.
    let peers = [l.frr, frr2, l.cilium];
    let accepted_follow = |rib: &Rib| {
        for id in peers {
            let held = rib
                .loc
                .values()
                .filter(|d| d.paths.iter().any(|p| p.source == Source::Peer(id)))
                .count();
            assert_eq!(rib.counts(id).accepted, held, "peer {id:?}");
            assert_eq!(rib.accepted(id, |_| true).len(), held, "peer {id:?}");
        }
    };
    let shared = ["10.224.2.0/24", "fd00:101:224:2::/64"];
    l.rib.update(l.frr, frr_announce(FRR_AS, &shared, &[4210101022]));
    l.rib
        .update(frr2, frr_announce(FRR_AS + 1, &shared, &[4210101022]));
    l.rib
        .update(l.cilium, cilium_announce(&["10.96.1.10/32", "10.96.1.11/32"]));
    l.rib.update(l.cilium, cilium_announce(&["fd00:96:1::10/128"]));
    l.rib.set_originate(vec![net("10.101.0.21/32")]);
    assert_eq!(reported(&l.rib), (4, 2, 8));
    assert_eq!(reported(&l.rib), recount(&l.rib));
    accepted_follow(&l.rib);
    // Replacing a path, withdrawing one of two, a session going down.
    l.rib
        .update(l.frr, frr_announce(FRR_AS, &["10.224.2.0/24"], &[4210101023]));
    l.rib.update(l.cilium, withdraw(&["10.96.1.11/32"]));
    l.rib.update(frr2, withdraw(&["fd00:101:224:2::/64"]));
    assert_eq!(reported(&l.rib), recount(&l.rib));
    accepted_follow(&l.rib);
    l.rib.peer_down(l.frr, None, l.now);
    l.rib.set_originate(vec![]);
    assert_eq!(reported(&l.rib), recount(&l.rib));
    accepted_follow(&l.rib);
    assert_eq!(reported(&l.rib), (2, 1, 3));
}

/// Attribute sets no path uses any more are released, and the export
/// cache does not keep them alive: after a flood of sets is withdrawn the
/// interner is back to what the remaining routes use.
#[test]
fn unused_attribute_sets_are_released_after_churn() {
    let mut l = lab();
    l.rib.update(l.cilium, cilium_announce(&["10.96.1.10/32"]));
    l.rib.release_unused();
    let baseline = l.rib.summary().attribute_sets;
    for round in 0..300u32 {
        let mut u = frr_announce(FRR_AS, &["10.224.2.0/24", "10.224.3.0/24"], &[4210101022]);
        u.attributes.med = Some(round);
        l.rib.update(l.frr, u);
    }
    // The Cilium route is exported through the cache all along.
    l.rib.update(l.frr, withdraw(&["10.224.2.0/24", "10.224.3.0/24"]));
    assert!(l.rib.summary().attribute_sets > baseline);
    l.rib.release_unused();
    assert_eq!(l.rib.summary().attribute_sets, baseline);
    assert!(!l.rib.release_unused(), "nothing left to release");
}

fn upstream_import(policies: Vec<Arc<Policy>>, default: Disposition) -> PeerSetup {
    PeerSetup {
        import: PolicyChain { policies, default },
        ..setup("upstream", Role::Upstream)
    }
}

#[test]
fn received_routes_say_what_became_of_them() {
    let mut l = lab();
    let import = Arc::new(Policy {
        name: "upstream-in".into(),
        statements: vec![
            Statement {
                name: "no-bogons".into(),
                conditions: vec![Condition::Prefix(Arc::new(
                    policy::PrefixSet::new("bogons", vec!["10.224.9.0/24".parse().unwrap()]).unwrap(),
                ))],
                actions: vec![],
                result: StatementResult::Reject,
            },
            Statement {
                name: "tag".into(),
                conditions: vec![],
                actions: vec![policy::Action::AddCommunities(vec![Community::new(65000, 1)])],
                result: StatementResult::Accept,
            },
        ],
    });
    l.rib
        .update_peer(l.frr, upstream_import(vec![import], Disposition::Reject));
    l.rib.update(
        l.frr,
        frr_announce(FRR_AS, &["10.224.2.0/24", "10.224.9.0/24"], &[]),
    );
    // Our own AS in the path: a loop, treated as withdrawn.
    l.rib
        .update(l.frr, frr_announce(FRR_AS, &["10.224.7.0/24"], &[LOCAL_AS]));

    let all = l
        .rib
        .adj_rib("upstream", AdjSide::Received, &RouteFilter::default())
        .unwrap();
    let by = |p: &str| all.iter().find(|r| r.prefix == net(p)).unwrap();
    let ok = by("10.224.2.0/24");
    assert_eq!(ok.status, AdjStatus::Accepted);
    assert_eq!(ok.modified_by, ["upstream-in/tag"]);
    // Shown as received, before the policy added its community.
    assert!(ok.attributes.as_ref().unwrap().communities.is_empty());
    let dropped = by("10.224.9.0/24");
    assert_eq!(dropped.status, AdjStatus::Filtered);
    assert_eq!(
        dropped.reason.as_deref(),
        Some("rejected by import policy upstream-in/no-bogons")
    );
    let looped = by("10.224.7.0/24");
    assert_eq!(looped.status, AdjStatus::Invalid);
    assert!(
        looped
            .reason
            .as_deref()
            .unwrap()
            .contains(&format!("our AS {LOCAL_AS}")),
        "{looped:?}"
    );
    assert_eq!(all.len(), 3);

    let counts = l.rib.counts(l.frr);
    assert_eq!(
        (counts.received, counts.accepted, counts.filtered, counts.invalid),
        (3, 1, 1, 1)
    );
    let v4 = &l.rib.family_counts(l.frr)[0];
    assert_eq!(v4.family, "ipv4-unicast");
    assert_eq!(
        (v4.counts.received, v4.counts.filtered, v4.counts.invalid),
        (3, 1, 1)
    );

    // Only what was not accepted.
    let filter = RouteFilter {
        filtered_only: true,
        ..RouteFilter::default()
    };
    let not_accepted = l.rib.adj_rib("upstream", AdjSide::Received, &filter).unwrap();
    assert_eq!(not_accepted.len(), 2);

    // A loop-free re-announcement makes it valid; a withdrawal forgets it.
    l.rib.update(l.frr, frr_announce(FRR_AS, &["10.224.7.0/24"], &[]));
    assert_eq!(l.rib.counts(l.frr).invalid, 0);
    l.rib.update(l.frr, withdraw(&["10.224.9.0/24", "10.224.7.0/24"]));
    let counts = l.rib.counts(l.frr);
    assert_eq!((counts.received, counts.filtered), (1, 0));
    assert!(l.rib.adj_rib("nobody", AdjSide::Received, &filter).is_none());
}

#[test]
fn the_import_default_is_named_when_it_rejects() {
    let mut l = lab();
    l.rib
        .update_peer(l.frr, upstream_import(vec![], Disposition::Reject));
    l.rib.update(l.frr, frr_announce(FRR_AS, &["10.224.2.0/24"], &[]));
    let got = l
        .rib
        .adj_rib("upstream", AdjSide::Received, &RouteFilter::default())
        .unwrap();
    assert_eq!(got[0].status, AdjStatus::Filtered);
    assert!(
        got[0].reason.as_deref().unwrap().contains("import default"),
        "{got:?}"
    );
}

#[test]
fn advertised_routes_carry_what_was_sent() {
    let mut l = lab();
    let out = l.rib.update(l.cilium, cilium_announce(&["10.96.1.10/32"]));
    let on_wire = sent(&out, l.frr);
    let got = l
        .rib
        .adj_rib("upstream", AdjSide::Advertised, &RouteFilter::default())
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].status, AdjStatus::Advertised);
    let a = got[0].attributes.as_ref().unwrap();
    assert_eq!(
        a.as_path,
        on_wire[0].attributes.as_path.as_ref().unwrap().to_string()
    );
    assert_eq!(a.next_hop, announced(&on_wire)[0].1.to_string());
    // Cilium is sent nothing.
    let none = l
        .rib
        .adj_rib("cilium", AdjSide::Advertised, &RouteFilter::default())
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn an_address_finds_its_longest_match() {
    let mut l = lab();
    l.rib.update(
        l.frr,
        frr_announce(FRR_AS, &["10.0.0.0/8", "10.224.0.0/16", "10.224.2.0/24"], &[]),
    );
    let lookup = |rib: &Rib, a: &str| {
        let filter = RouteFilter {
            longest_match: Some(a.parse().unwrap()),
            ..RouteFilter::default()
        };
        rib.routes(&filter)
            .iter()
            .map(|r| r.prefix.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(lookup(&l.rib, "10.224.2.7"), ["10.224.2.0/24"]);
    assert_eq!(lookup(&l.rib, "10.224.3.7"), ["10.224.0.0/16"]);
    assert_eq!(lookup(&l.rib, "10.1.1.1"), ["10.0.0.0/8"]);
    assert!(lookup(&l.rib, "192.0.2.1").is_empty());
    assert!(lookup(&l.rib, "fd00::1").is_empty());
}

#[test]
fn a_restarting_peer_keeps_only_its_accepted_paths() {
    let mut l = lab();
    l.rib.update_peer(
        l.frr,
        PeerSetup {
            import: PolicyChain {
                policies: vec![Arc::new(Policy {
                    name: "in".into(),
                    statements: vec![Statement {
                        name: "drop-9".into(),
                        conditions: vec![Condition::Prefix(Arc::new(
                            policy::PrefixSet::new("p", vec!["10.224.9.0/24".parse().unwrap()]).unwrap(),
                        ))],
                        actions: vec![],
                        result: StatementResult::Reject,
                    }],
                })],
                default: Disposition::Accept,
            },
            ..setup("upstream", Role::Upstream)
        },
    );
    l.rib.update(
        l.frr,
        frr_announce(FRR_AS, &["10.224.2.0/24", "10.224.9.0/24"], &[]),
    );
    l.rib
        .update(l.frr, frr_announce(FRR_AS, &["10.224.7.0/24"], &[LOCAL_AS]));
    assert_eq!(l.rib.counts(l.frr).received, 3);
    l.rib.peer_down(l.frr, Some(Duration::from_secs(120)), l.now);
    // The filtered and the invalid path are forgotten; the peer sends
    // again what it still has.
    let c = l.rib.counts(l.frr);
    assert_eq!(
        (c.received, c.accepted, c.stale, c.filtered, c.invalid),
        (1, 1, 1, 0, 0)
    );
}

#[test]
fn paths_age_from_when_they_last_changed() {
    let mut l = lab();
    l.rib.update(l.frr, frr_announce(FRR_AS, &["10.224.2.0/24"], &[]));
    let age = |rib: &Rib| rib.routes(&RouteFilter::default())[0].paths[0].age;
    assert!(age(&l.rib) < 2);
    // A minute passes.
    l.rib.epoch -= Duration::from_secs(60);
    assert!((60..62).contains(&age(&l.rib)), "{}", age(&l.rib));
    // Sent again unchanged (a refresh): it keeps its age.
    l.rib.update(l.frr, frr_announce(FRR_AS, &["10.224.2.0/24"], &[]));
    assert!((60..62).contains(&age(&l.rib)), "{}", age(&l.rib));
    // Changed: its age starts again.
    l.rib
        .update(l.frr, frr_announce(FRR_AS, &["10.224.2.0/24"], &[4200001099]));
    assert!(age(&l.rib) < 2, "{}", age(&l.rib));
}

/// Graceful drain (RFC 8326): everything goes out again with
/// GRACEFUL_SHUTDOWN and the lowest preference (our AS prepended towards
/// external peers, LOCAL_PREF 0 towards internal ones); undrained, as
/// before.
#[test]
fn a_drain_sends_everything_again_with_graceful_shutdown() {
    let mut l = lab();
    // An internal peer beside the external router.
    let ibgp = l.rib.add_peer(setup("ibgp", Role::Upstream));
    let session = SessionInfo {
        negotiated: negotiated(LOCAL_AS, [10, 101, 0, 30], true, false),
        local_address: "fd00:101::21".parse().unwrap(),
        remote_address: "fd00:101::30".parse().unwrap(),
        ifindex: None,
    };
    l.rib.peer_up(ibgp, session, l.now);
    l.rib.written(ibgp);
    let out = l.rib.update(l.cilium, cilium_announce(&["10.96.1.10/32"]));
    let before = sent(&out, l.frr);
    assert!(
        !before[0]
            .attributes
            .communities
            .contains(&Community::GRACEFUL_SHUTDOWN)
    );
    l.rib.written(l.frr);
    l.rib.written(ibgp);

    let out = l.rib.set_drain(Some(2));
    assert!(l.rib.is_drained());
    let to_frr = sent(&out, l.frr);
    assert_eq!(announced(&to_frr).len(), 1, "sent again");
    let a = &to_frr[0].attributes;
    assert!(a.communities.contains(&Community::GRACEFUL_SHUTDOWN));
    // Ours once as usual, twice more for the drain, then Cilium's.
    assert_eq!(
        a.as_path.as_ref().unwrap().to_string(),
        format!("{LOCAL_AS} {LOCAL_AS} {LOCAL_AS} {CILIUM_AS}")
    );
    let to_ibgp = sent_ibgp(&out, ibgp);
    let a = &to_ibgp[0].attributes;
    assert!(a.communities.contains(&Community::GRACEFUL_SHUTDOWN));
    assert_eq!(a.local_pref, Some(0));
    assert!(l.rib.summary().drained);
    l.rib.written(l.frr);
    l.rib.written(ibgp);

    // A route arriving while drained goes out drained too.
    let out = l.rib.update(l.cilium, cilium_announce(&["10.96.1.11/32"]));
    assert!(
        sent(&out, l.frr)[0]
            .attributes
            .communities
            .contains(&Community::GRACEFUL_SHUTDOWN)
    );
    l.rib.written(l.frr);
    l.rib.written(ibgp);

    let out = l.rib.set_drain(None);
    let to_frr = sent(&out, l.frr);
    assert_eq!(announced(&to_frr).len(), 2);
    for u in &to_frr {
        assert!(!u.attributes.communities.contains(&Community::GRACEFUL_SHUTDOWN));
        assert_eq!(
            u.attributes.as_path.as_ref().unwrap().to_string(),
            format!("{LOCAL_AS} {CILIUM_AS}")
        );
    }
    assert!(l.rib.set_drain(None).is_empty(), "undrained twice is nothing");
}

fn loc_changes(out: &[RibOutput]) -> Vec<&LocRibChange> {
    out.iter()
        .filter_map(|o| match o {
            RibOutput::LocRib(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn gate(action: crate::config::GateAction) -> crate::config::Gate {
    crate::config::Gate {
        check: "pod-dns".into(),
        selector: policy::VipSelector::default(),
        action,
    }
}

/// A failing health check with `withdraw`: the node's own VIP path is
/// withdrawn upstream and no longer the node's choice (another node's
/// path, learned from the router, is: the FIB replaces the local VIP
/// route with it); the pod CIDR and the Cilium session are untouched.
/// Passing again, everything is as before.
#[test]
fn a_failing_health_gate_withdraws_the_nodes_vips_and_prefers_other_nodes() {
    let mut l = lab();
    l.rib
        .update(l.cilium, cilium_announce(&["10.96.1.10/32", "10.224.1.0/24"]));
    l.rib.written(l.frr);
    // Another node serves the VIP too; the router passes its path on.
    l.rib
        .update(l.frr, frr_announce(FRR_AS, &["10.96.1.10/32"], &[4210101022]));
    l.rib.written(l.frr);
    let vip = net("10.96.1.10/32");
    assert!(l.rib.selected(&vip).unwrap().own);

    let out = l
        .rib
        .set_health_gates(vec![gate(crate::config::GateAction::Withdraw)]);
    assert_eq!(withdrawn(&sent(&out, l.frr)), ["10.96.1.10/32"]);
    assert!(
        announced(&sent(&out, l.frr)).is_empty(),
        "the pod CIDR stays as it is"
    );
    let changes = loc_changes(&out);
    assert_eq!(changes.len(), 1, "{changes:?}");
    let sel = changes[0].selected.as_ref().unwrap();
    assert_eq!(sel.source_role, Some(Role::Upstream));
    assert!(!sel.own, "the other node's path may be installed");
    let view = &l.rib.routes(&RouteFilter::default());
    assert!(view.iter().any(|r| r.prefix == vip && r.paths.len() == 2));
    l.rib.written(l.frr);
    // A VIP Cilium announces while the gate fails is held back too.
    let out = l.rib.update(l.cilium, cilium_announce(&["10.96.1.11/32"]));
    assert!(sent(&out, l.frr).is_empty());
    assert!(l.rib.selected(&net("10.96.1.11/32")).is_none());
    // The same gates again change nothing.
    assert!(
        l.rib
            .set_health_gates(vec![gate(crate::config::GateAction::Withdraw)])
            .is_empty()
    );

    let out = l.rib.set_health_gates(Vec::new());
    let mut back: Vec<String> = announced(&sent(&out, l.frr))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    back.sort();
    assert_eq!(back, ["10.96.1.10/32", "10.96.1.11/32"]);
    let sel = l.rib.selected(&vip).unwrap();
    assert_eq!(sel.source_role, Some(Role::Cilium));
    assert!(sel.own);
}

/// With `graceful-shutdown`, the VIP stays advertised with the
/// GRACEFUL_SHUTDOWN community and our AS prepended, as a drain would;
/// the node itself forwards over any other path (its local VIP route
/// gives way to it), and keeps its own when there is none.
#[test]
fn a_failing_health_gate_with_graceful_shutdown_deprefers_the_vips() {
    let mut l = lab();
    l.rib.update(l.cilium, cilium_announce(&["10.96.1.10/32"]));
    l.rib.written(l.frr);
    let gshut = crate::config::GateAction::GracefulShutdown(3);
    let out = l.rib.set_health_gates(vec![gate(gshut)]);
    let to_frr = sent(&out, l.frr);
    assert_eq!(announced(&to_frr).len(), 1);
    let a = &to_frr[0].attributes;
    assert!(a.communities.contains(&Community::GRACEFUL_SHUTDOWN));
    assert_eq!(
        a.as_path.as_ref().unwrap().to_string(),
        format!("{LOCAL_AS} {LOCAL_AS} {LOCAL_AS} {LOCAL_AS} {CILIUM_AS}")
    );
    // Still the only path: still the node's choice (its VIP route stays).
    let sel = l.rib.selected(&net("10.96.1.10/32")).unwrap();
    assert_eq!(sel.source_role, Some(Role::Cilium));
    l.rib.written(l.frr);
    // Another node's path comes: the node forwards over it, and still
    // advertises its own, drained.
    let out = l
        .rib
        .update(l.frr, frr_announce(FRR_AS, &["10.96.1.10/32"], &[4210101022]));
    let sel = l.rib.selected(&net("10.96.1.10/32")).unwrap();
    assert_eq!(loc_changes(&out).len(), 1, "{out:?}");
    assert_eq!(sel.source_role, Some(Role::Upstream));
    assert!(!sel.own);
    assert!(sent(&out, l.frr).is_empty(), "the drained path stays advertised");
    l.rib.written(l.frr);

    // Withdraw beats graceful shutdown when both gates fail.
    let out = l
        .rib
        .set_health_gates(vec![gate(gshut), gate(crate::config::GateAction::Withdraw)]);
    assert_eq!(withdrawn(&sent(&out, l.frr)), ["10.96.1.10/32"]);
    assert_eq!(
        l.rib.selected(&net("10.96.1.10/32")).unwrap(),
        sel,
        "forwarding unchanged"
    );
    l.rib.written(l.frr);
    let out = l.rib.set_health_gates(Vec::new());
    let to_frr = sent(&out, l.frr);
    assert_eq!(announced(&to_frr).len(), 1);
    assert!(
        !to_frr[0]
            .attributes
            .communities
            .contains(&Community::GRACEFUL_SHUTDOWN)
    );
}

/// A prefix with one path holds it in place, with no allocation of its
/// own (a full table is mostly such prefixes: room for four paths was once
/// a third of tern's memory under a full table).
#[test]
fn a_single_path_prefix_holds_its_path_in_place() {
    let mut l = lab();
    l.rib.update(l.frr, frr_announce(FRR_AS, &["10.224.2.0/24"], &[]));
    let prefix = net("10.224.2.0/24");
    let paths = &l.rib.loc.get(&prefix).expect("in the Loc-RIB").paths;
    assert!(matches!(paths, loc_rib::Paths::One(_)));
    assert_eq!(paths.len(), 1);
    // A second path moves them to the heap.
    l.rib.update(l.cilium, cilium_announce(&["10.224.2.0/24"]));
    let paths = &l.rib.loc.get(&prefix).expect("in the Loc-RIB").paths;
    assert!(matches!(paths, loc_rib::Paths::Many(_)));
    assert_eq!(paths.len(), 2);
    // When one is left, it goes back in place; when none, the prefix goes.
    l.rib.update(l.cilium, withdraw(&["10.224.2.0/24"]));
    let paths = &l.rib.loc.get(&prefix).expect("in the Loc-RIB").paths;
    assert!(matches!(paths, loc_rib::Paths::One(p) if p.source == Source::Peer(l.frr)));
    l.rib.update(l.frr, withdraw(&["10.224.2.0/24"]));
    assert!(l.rib.loc.get(&prefix).is_none());
}

/// Soft reconfiguration keeps a copy only of what the Loc-RIB does not
/// hold as received (rejected or changed paths): a table import policy
/// passes through unchanged costs no copy, and is still shown as received
/// and re-imported after a policy change.
#[test]
fn the_pre_policy_copy_holds_only_what_policy_rejected_or_changed() {
    let mut l = lab();
    l.rib.update(
        l.frr,
        frr_announce(FRR_AS, &["10.224.2.0/24", "10.224.3.0/24"], &[]),
    );
    let pre = |rib: &Rib, id: PeerId| rib.peer(id).unwrap().adj_in.pre.as_ref().unwrap().len();
    assert_eq!(
        pre(&l.rib, l.frr),
        0,
        "accepted as sent: the Loc-RIB's path is the copy"
    );
    let received = l
        .rib
        .adj_rib("upstream", AdjSide::Received, &RouteFilter::default())
        .unwrap();
    assert_eq!(received.len(), 2);
    assert!(
        received
            .iter()
            .all(|r| r.attributes.as_ref().is_some_and(|a| a.med == Some(10)))
    );
    // A policy that rejects one and changes the other: both are kept as
    // received, and the change is undone by a policy that changes nothing.
    let set_lp = Arc::new(Policy {
        name: "lp".into(),
        statements: vec![
            Statement {
                name: "no-3".into(),
                conditions: vec![Condition::Prefix(Arc::new(
                    policy::PrefixSet::new("three", vec!["10.224.3.0/24".parse().unwrap()]).unwrap(),
                ))],
                actions: vec![],
                result: StatementResult::Reject,
            },
            Statement {
                name: "lp".into(),
                conditions: vec![],
                actions: vec![policy::Action::SetLocalPref(50)],
                result: StatementResult::Accept,
            },
        ],
    });
    let with = |policies: Vec<Arc<Policy>>| PeerSetup {
        import: PolicyChain {
            policies,
            default: Disposition::Accept,
        },
        ..setup("upstream", Role::Upstream)
    };
    l.rib.update_peer(l.frr, with(vec![set_lp]));
    assert_eq!(pre(&l.rib, l.frr), 2);
    let sel = l.rib.selected(&net("10.224.2.0/24")).unwrap();
    assert_eq!(sel.attrs.local_pref, Some(50));
    assert!(l.rib.selected(&net("10.224.3.0/24")).is_none());
    l.rib.update_peer(l.frr, with(vec![]));
    assert_eq!(pre(&l.rib, l.frr), 0);
    assert_eq!(
        l.rib.selected(&net("10.224.2.0/24")).unwrap().attrs.local_pref,
        None
    );
    assert!(l.rib.selected(&net("10.224.3.0/24")).is_some());
    assert_eq!(l.rib.counts(l.frr).received, 2);
}

/// An unnumbered upstream (`interface = ...`): its session runs over
/// link-local addresses on link `ifindex`.
fn unnumbered_session(n: u8, ifindex: u32) -> SessionInfo {
    SessionInfo {
        negotiated: negotiated(FRR_AS + u32::from(n) - 1, [10, 101, 0, 250 + n], true, false),
        local_address: "fe80::21".parse().unwrap(),
        remote_address: format!("fe80::{n}").parse().unwrap(),
        ifindex: Some(ifindex),
    }
}

#[test]
fn unnumbered_uplinks_give_link_local_next_hops_on_their_links() {
    let mut l = lab();
    let up1 = l.rib.add_peer(setup("uplink1", Role::Upstream));
    let up2 = l.rib.add_peer(setup("uplink2", Role::Upstream));
    l.rib.peer_up(up1, unnumbered_session(2, 7), l.now);
    l.rib.written(up1);
    l.rib.peer_up(up2, unnumbered_session(3, 8), l.now);
    l.rib.written(up2);
    // FRR sends its link-local address twice (no global one on the link);
    // the other router sends it alone, for IPv4 as RFC 8950 allows.
    let mut u = frr_announce(FRR_AS + 1, &["10.244.2.0/24"], &[4210101022]);
    u.mp_reach.as_mut().unwrap().next_hop = NextHop::V6 {
        global: "fe80::2".parse().unwrap(),
        link_local: Some("fe80::2".parse().unwrap()),
    };
    l.rib.update(up1, u);
    let mut u = frr_announce(FRR_AS + 2, &["10.244.2.0/24"], &[4210101022]);
    u.mp_reach.as_mut().unwrap().next_hop = NextHop::v6("fe80::3".parse().unwrap());
    let out = l.rib.update(up2, u);
    let Some(RibOutput::LocRib(change)) = out.iter().find(|o| matches!(o, RibOutput::LocRib(_))) else {
        panic!("{out:?}")
    };
    let mut gws = change.selected.as_ref().unwrap().next_hops.to_vec();
    gws.sort();
    assert_eq!(
        gws,
        [
            Gateway {
                addr: "fe80::2".parse().unwrap(),
                ifindex: Some(7)
            },
            Gateway {
                addr: "fe80::3".parse().unwrap(),
                ifindex: Some(8)
            }
        ]
    );
    // A numbered peer's next hops stay as they were: the global address,
    // an IPv4-mapped one as IPv4.
    assert_eq!(
        Gateway::of(
            &NextHop::V6 {
                global: "fd00:101::fffe".parse().unwrap(),
                link_local: Some("fe80::9".parse().unwrap())
            },
            None
        ),
        Gateway::from("fd00:101::fffe".parse::<IpAddr>().unwrap())
    );
    assert_eq!(
        Gateway::of(&NextHop::v6("::ffff:10.0.0.1".parse().unwrap()), None),
        Gateway::from("10.0.0.1".parse::<IpAddr>().unwrap())
    );
    // Our VIPs go to an unnumbered router with our link-local address as
    // next hop, as FRR sends it, for IPv4 (RFC 8950) and IPv6.
    let out = l
        .rib
        .update(l.cilium, cilium_announce(&["10.96.1.10/32", "fd00:96::10/128"]));
    let ll: Ipv6Addr = "fe80::21".parse().unwrap();
    let ours = NextHop::V6 {
        global: ll,
        link_local: Some(ll),
    };
    let mut to_up1 = announced(&sent(&out, up1));
    to_up1.sort();
    assert_eq!(
        to_up1,
        [("10.96.1.10/32".into(), ours), ("fd00:96::10/128".into(), ours)]
    );
    // Through the peer's session going down with graceful restart, its
    // stale routes keep their link.
    l.rib.peer_down(up1, Some(Duration::from_secs(120)), l.now);
    let sel = l.rib.selected(&net("10.244.2.0/24")).unwrap();
    assert!(sel.next_hops.iter().any(|g| g.ifindex == Some(7)), "{sel:?}");
}

/// kube-vip negotiates no graceful restart; its role holds its routes
/// across its restart (`restart-hold`): nothing is withdrawn while it is
/// away, and once back, what it does not announce again within
/// `REFRESH_WITHOUT_END_OF_RIB` goes (it sends no End-of-RIB).
#[test]
fn a_speaker_without_graceful_restart_is_held_across_its_restart() {
    let mut l = lab();
    let kv = l.rib.add_peer(setup("kube-vip", Role::KubeVip));
    let session = || SessionInfo {
        negotiated: negotiated(CILIUM_AS + 1, [10, 101, 0, 21], false, false),
        local_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        remote_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        ifindex: None,
    };
    l.rib.peer_up(kv, session(), l.now);
    l.rib.written(kv);
    let mut u = cilium_announce(&["10.96.6.10/32", "10.96.6.11/32"]);
    u.attributes.as_path = Some(AsPath::from_sequence([CILIUM_AS + 1]));
    u.mp_reach.as_mut().unwrap().next_hop = NextHop::V4(Ipv4Addr::LOCALHOST);
    let out = l.rib.update(kv, u.clone());
    assert_eq!(announced(&sent(&out, l.frr)).len(), 2);
    l.rib.written(l.frr);
    // Its pod dies: held (what the session task passes for restart-hold).
    let out = l.rib.peer_down(kv, Some(Duration::from_secs(60)), l.now);
    assert!(sent(&out, l.frr).is_empty());
    assert_eq!(l.rib.counts(kv).stale, 2);
    // Back without graceful restart: nothing is swept yet.
    let back = l.now + Duration::from_secs(15);
    let out = l.rib.peer_up(kv, session(), back);
    assert!(sent(&out, l.frr).is_empty(), "{out:?}");
    l.rib.written(kv);
    // It announces one of its two VIPs again.
    u.mp_reach.as_mut().unwrap().nlri.truncate(1);
    let out = l.rib.update(kv, u);
    assert!(sent(&out, l.frr).is_empty(), "an unchanged route is not re-sent");
    assert_eq!(l.rib.counts(kv).stale, 1);
    assert_eq!(l.rib.next_deadline(), Some(back + REFRESH_WITHOUT_END_OF_RIB));
    let out = l.rib.on_timer(back + REFRESH_WITHOUT_END_OF_RIB);
    assert_eq!(withdrawn(&sent(&out, l.frr)), ["10.96.6.11/32"]);
    assert_eq!(l.rib.counts(kv).stale, 0);
}

/// A full table is a million of these: what they weigh is kept from
/// creeping back (a prefix's slot holds its single path in place).
#[test]
fn a_prefix_and_its_path_stay_small() {
    assert!(size_of::<Path>() <= 24, "Path: {} bytes", size_of::<Path>());
    assert!(
        size_of::<super::loc_rib::Dest>() <= 24,
        "Dest: {} bytes",
        size_of::<super::loc_rib::Dest>()
    );
}
