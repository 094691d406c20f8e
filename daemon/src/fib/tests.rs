//! FIB decisions on a node: routes from the upstream are installed with
//! resolved next hops, the node's own prefixes never are, Cilium's VIPs get
//! local routes, and restarts, link flaps and drift are handled.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::Attributes;
use ipnet::IpNet;
use policy::{Role, VipSelector};

use super::model::{Fib, Followup, KernelSnapshot, RT_TABLE_LOCAL};
use super::netlink::{
    Address, Event, KernelNextHop, KernelRoute, Link, NexthopObject, NexthopSpec, Op, OpError, RouteKind,
};
use crate::config::{FibSettings, StaticRoute, StaticTarget, VipRoute};
use crate::rib::{Gateway, LocRibChange, Selected};

const ETH: u32 = 2;
const LO: u32 = 1;
const PROTO: u8 = 186;
const METRIC: u32 = 512;

fn config() -> FibSettings {
    FibSettings {
        enabled: true,
        table: 254,
        protocol: PROTO,
        metric: METRIC,
        ipv4: true,
        ipv6: true,
        install_from: vec![Role::Upstream],
        install_policy: None,
        vip: Some((VipSelector::default(), VipRoute::Local)),
        scan_interval: Duration::from_secs(60),
        keep_routes_on_stop: true,
        source_address_ipv4: None,
        source_address_ipv6: None,
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn links(eth_up: bool) -> Vec<Link> {
    vec![
        Link {
            ifindex: LO,
            name: "lo".into(),
            up: true,
            mtu: 65536,
        },
        Link {
            ifindex: ETH,
            name: "eth0".into(),
            up: eth_up,
            mtu: 1500,
        },
    ]
}

fn addresses() -> Vec<Address> {
    vec![
        Address {
            ifindex: ETH,
            prefix: net("fd00:101::21/64"),
        },
        Address {
            ifindex: ETH,
            prefix: net("10.101.0.21/24"),
        },
    ]
}

/// A node: eth0 up on fd00:101::/64 and 10.101.0.0/24.
fn node(nexthop_objects: bool) -> Fib {
    node_with(config(), nexthop_objects)
}

fn node_with(config: FibSettings, nexthop_objects: bool) -> Fib {
    let mut f = Fib::new(config, nexthop_objects);
    f.load(KernelSnapshot {
        ours: vec![],
        nexthops: vec![],
        foreign: vec![],
        links: links(true),
        addresses: addresses(),
    });
    f
}

fn change(prefix: &str, role: Role, own: bool, next_hops: &[&str]) -> LocRibChange {
    LocRibChange {
        prefix: net(prefix),
        selected: Some(Selected {
            attrs: Arc::new(Attributes::default()),
            next_hops: next_hops.iter().map(|n| Gateway::from(ip(n))).collect(),
            source_peer: Some(if role == Role::Cilium {
                "cilium".into()
            } else {
                "upstream".into()
            }),
            source_role: Some(role),
            own,
        }),
    }
}

/// A node with one route learned from the router, installed.
fn node_with_a_learned_route() -> Fib {
    let mut f = node(false);
    f.loc_rib(&change(
        "10.224.2.0/24",
        Role::Upstream,
        false,
        &["fd00:101::fffe"],
    ));
    let ops = f.flush();
    f.applied(&ops, &ok(&ops), Instant::now());
    f
}

/// Node 2's pod CIDRs, learned from the router.
fn learn_the_other_nodes_pod_cidrs(f: &mut Fib) {
    for prefix in ["10.224.2.0/24", "fd00:101:224:2::/64"] {
        f.loc_rib(&change(prefix, Role::Upstream, false, &["fd00:101::fffe"]));
    }
}

fn gone(prefix: &str) -> LocRibChange {
    LocRibChange {
        prefix: net(prefix),
        selected: None,
    }
}

fn via(gw: &str) -> KernelNextHop {
    KernelNextHop {
        gateway: Some(ip(gw)),
        ifindex: Some(ETH),
        weight: 1,
    }
}

fn unicast(prefix: &str, nexthops: Vec<KernelNextHop>) -> KernelRoute {
    KernelRoute {
        prefix: net(prefix),
        table: 254,
        protocol: PROTO,
        kind: RouteKind::Unicast,
        metric: METRIC,
        nexthops,
        nhid: None,
        prefsrc: None,
    }
}

fn local_vip(prefix: &str) -> KernelRoute {
    KernelRoute {
        prefix: net(prefix),
        table: RT_TABLE_LOCAL,
        protocol: PROTO,
        kind: RouteKind::Local,
        metric: METRIC,
        nexthops: vec![KernelNextHop {
            gateway: None,
            ifindex: Some(LO),
            weight: 1,
        }],
        nhid: None,
        prefsrc: None,
    }
}

fn ok(ops: &[Op]) -> Vec<Result<(), OpError>> {
    ops.iter().map(|_| Ok(())).collect()
}

#[test]
fn upstream_routes_are_installed_with_connected_next_hops() {
    let mut f = node(false);
    learn_the_other_nodes_pod_cidrs(&mut f);
    let ops = f.flush();
    assert_eq!(
        ops,
        [
            // RFC 8950: an IPv4 prefix via an IPv6 gateway.
            Op::ReplaceRoute(unicast("10.224.2.0/24", vec![via("fd00:101::fffe")])),
            Op::ReplaceRoute(unicast("fd00:101:224:2::/64", vec![via("fd00:101::fffe")])),
        ]
    );
    // Nothing changed since: nothing to write.
    f.applied(&ops, &ok(&ops), Instant::now());
    assert!(f.flush().is_empty());
    assert_eq!(f.counters().installed, 2);
}

#[test]
fn the_nodes_own_prefixes_are_never_installed_and_vips_stay_local() {
    let mut f = node(false);
    // A pod CIDR from Cilium: the node's own, not a VIP.
    f.loc_rib(&change("10.224.1.0/24", Role::Cilium, true, &["::1"]));
    // A VIP: kept on the node with a local route.
    f.loc_rib(&change("10.96.1.10/32", Role::Cilium, true, &["::1"]));
    f.loc_rib(&change("fd00:96::10/128", Role::Cilium, true, &["::1"]));
    // The upstream's path to our own pod CIDR (Cilium also has it).
    f.loc_rib(&change(
        "10.224.9.0/24",
        Role::Upstream,
        true,
        &["fd00:101::fffe"],
    ));
    let ops = f.flush();
    assert_eq!(
        ops,
        [
            Op::ReplaceRoute(local_vip("10.96.1.10/32")),
            Op::ReplaceRoute(local_vip("fd00:96::10/128"))
        ]
    );
    assert_eq!(f.counters().vip_routes, 2);
    // Cilium withdraws the VIP (externalTrafficPolicy Local, no endpoint
    // here any more): the local route goes, and the VIP's route through
    // other nodes, if any, takes over.
    f.loc_rib(&change(
        "10.96.1.10/32",
        Role::Upstream,
        false,
        &["fd00:101::fffe"],
    ));
    let ops = f.flush();
    assert_eq!(
        ops,
        [
            Op::ReplaceRoute(unicast("10.96.1.10/32", vec![via("fd00:101::fffe")])),
            Op::DeleteRoute(local_vip("10.96.1.10/32"))
        ]
    );
}

#[test]
fn vip_route_kinds() {
    for (kind, want) in [
        (
            VipRoute::Device("eth0".into()),
            KernelRoute {
                kind: RouteKind::Unicast,
                nexthops: vec![KernelNextHop {
                    gateway: None,
                    ifindex: Some(ETH),
                    weight: 1,
                }],
                ..unicast("10.96.1.10/32", vec![])
            },
        ),
        (
            VipRoute::Blackhole,
            KernelRoute {
                kind: RouteKind::Blackhole,
                ..unicast("10.96.1.10/32", vec![])
            },
        ),
    ] {
        let mut f = Fib::new(
            FibSettings {
                vip: Some((VipSelector::default(), kind)),
                ..config()
            },
            false,
        );
        f.load(KernelSnapshot {
            ours: vec![],
            nexthops: vec![],
            foreign: vec![],
            links: links(true),
            addresses: addresses(),
        });
        f.loc_rib(&change("10.96.1.10/32", Role::Cilium, true, &["::1"]));
        assert_eq!(f.flush(), [Op::ReplaceRoute(want)]);
    }
}

#[test]
fn equal_cost_paths_become_one_multipath_route() {
    let mut f = node(false);
    f.loc_rib(&change(
        "10.96.2.10/32",
        Role::Upstream,
        false,
        &["fd00:101::fffd", "fd00:101::fffe"],
    ));
    assert_eq!(
        f.flush(),
        [Op::ReplaceRoute(unicast(
            "10.96.2.10/32",
            vec![via("fd00:101::fffd"), via("fd00:101::fffe")]
        ))]
    );
}

#[test]
fn a_prefix_changed_three_times_is_written_once() {
    let mut f = node(false);
    for gw in ["fd00:101::fffa", "fd00:101::fffb", "fd00:101::fffc"] {
        f.loc_rib(&change("10.224.2.0/24", Role::Upstream, false, &[gw]));
    }
    assert_eq!(
        f.flush(),
        [Op::ReplaceRoute(unicast(
            "10.224.2.0/24",
            vec![via("fd00:101::fffc")]
        ))]
    );
}

#[test]
fn unresolvable_next_hops_wait_for_an_address() {
    let mut f = node(false);
    f.loc_rib(&change("10.224.3.0/24", Role::Upstream, false, &["fd00:202::1"]));
    assert!(f.flush().is_empty());
    assert_eq!(f.unresolved().collect::<Vec<_>>(), [&net("10.224.3.0/24")]);
    f.kernel_event(Event::Address {
        added: true,
        address: Address {
            ifindex: ETH,
            prefix: net("fd00:202::21/64"),
        },
    });
    assert_eq!(
        f.flush(),
        [Op::ReplaceRoute(unicast(
            "10.224.3.0/24",
            vec![via("fd00:202::1")]
        ))]
    );
    assert_eq!(f.unresolved().count(), 0);
}

#[test]
fn next_hops_resolve_through_routes_tern_does_not_own() {
    let mut f = Fib::new(config(), false);
    let igp = KernelRoute {
        protocol: 4,
        ..unicast("10.9.0.0/16", vec![via("10.101.0.254")])
    };
    f.load(KernelSnapshot {
        ours: vec![],
        nexthops: vec![],
        foreign: vec![igp.clone()],
        links: links(true),
        addresses: addresses(),
    });
    f.loc_rib(&change("10.224.4.0/24", Role::Upstream, false, &["10.9.9.9"]));
    assert_eq!(
        f.flush(),
        [Op::ReplaceRoute(unicast(
            "10.224.4.0/24",
            vec![via("10.101.0.254")]
        ))]
    );
    // The IGP route goes: so does ours.
    assert_eq!(
        f.kernel_event(Event::Route {
            added: true,
            route: igp.clone()
        }),
        Followup::None
    );
    f.kernel_event(Event::Route {
        added: false,
        route: igp,
    });
    assert_eq!(
        f.flush(),
        [Op::DeleteRoute(unicast(
            "10.224.4.0/24",
            vec![via("10.101.0.254")]
        ))]
    );
}

#[test]
fn a_link_flap_removes_and_restores_routes() {
    let mut f = node_with_a_learned_route();
    // The link goes down; the kernel drops the route on its own and the
    // event asks for a reload, which finds it gone and the link down.
    let down = Link {
        ifindex: ETH,
        name: "eth0".into(),
        up: false,
        mtu: 1500,
    };
    assert_eq!(f.kernel_event(Event::Link(down.clone())), Followup::Reload);
    f.reload(KernelSnapshot {
        ours: vec![],
        nexthops: vec![],
        foreign: vec![],
        links: vec![links(true)[0].clone(), down],
        addresses: addresses(),
    });
    assert!(f.flush().is_empty(), "unresolvable while the link is down");
    assert_eq!(f.unresolved().count(), 1);
    let up = Link {
        ifindex: ETH,
        name: "eth0".into(),
        up: true,
        mtu: 1500,
    };
    assert_eq!(f.kernel_event(Event::Link(up)), Followup::Reload);
    f.reload(KernelSnapshot {
        ours: vec![],
        nexthops: vec![],
        foreign: vec![],
        links: links(true),
        addresses: addresses(),
    });
    assert_eq!(
        f.flush(),
        [Op::ReplaceRoute(unicast(
            "10.224.2.0/24",
            vec![via("fd00:101::fffe")]
        ))]
    );
}

/// tern restarts with its routes in the kernel: those still wanted are
/// adopted without a write; the others stay until routing converged.
#[test]
fn restart_adopts_and_sweeps_only_after_convergence() {
    let mut f = Fib::new(config(), false);
    let kept = unicast("10.224.2.0/24", vec![via("fd00:101::fffe")]);
    let stale = unicast("10.224.7.0/24", vec![via("fd00:101::fffe")]);
    f.load(KernelSnapshot {
        ours: vec![kept.clone(), stale.clone(), local_vip("10.96.1.10/32")],
        nexthops: vec![],
        foreign: vec![],
        links: links(true),
        addresses: addresses(),
    });
    f.loc_rib(&change(
        "10.224.2.0/24",
        Role::Upstream,
        false,
        &["fd00:101::fffe"],
    ));
    f.loc_rib(&change("10.96.1.10/32", Role::Cilium, true, &["::1"]));
    assert!(f.flush().is_empty(), "same routes: no kernel change");
    assert_eq!(f.counters().adopted, 2);
    f.converged();
    assert_eq!(f.flush(), [Op::DeleteRoute(stale)]);
    assert!(f.flush().is_empty());
}

#[test]
fn drift_is_repaired_from_events_and_scans() {
    let mut f = node(false);
    f.loc_rib(&change(
        "10.224.2.0/24",
        Role::Upstream,
        false,
        &["fd00:101::fffe"],
    ));
    let route = unicast("10.224.2.0/24", vec![via("fd00:101::fffe")]);
    let ops = f.flush();
    f.applied(&ops, &ok(&ops), Instant::now());
    // Someone deletes it: the event asks for a scan, which repairs it.
    assert_eq!(
        f.kernel_event(Event::Route {
            added: false,
            route: route.clone()
        }),
        Followup::Scan
    );
    assert_eq!(f.scan(&[], None), 1);
    assert_eq!(f.flush(), [Op::ReplaceRoute(route.clone())]);
    // A periodic scan finds it changed.
    let tampered = KernelRoute {
        metric: 1,
        ..route.clone()
    };
    assert_eq!(f.scan(&[tampered], None), 1);
    let ops = f.flush();
    assert!(ops.contains(&Op::ReplaceRoute(route.clone())), "{ops:?}");
    // And an extra route of ours that nothing wants goes.
    f.converged();
    let extra = unicast("10.224.8.0/24", vec![via("fd00:101::fffe")]);
    assert_eq!(f.scan(&[route, extra.clone()], None), 1);
    assert_eq!(f.flush(), [Op::DeleteRoute(extra)]);
    assert_eq!(f.counters().repairs, 3);
}

#[test]
fn failed_writes_are_retried_by_the_next_scan() {
    let mut f = node(false);
    f.loc_rib(&change(
        "10.224.2.0/24",
        Role::Upstream,
        false,
        &["fd00:101::fffe"],
    ));
    let ops = f.flush();
    f.applied(
        &ops,
        &[Err(OpError {
            errno: libc::ENETUNREACH,
            message: "no route".into(),
        })],
        Instant::now(),
    );
    assert_eq!(f.counters().failures, 1);
    assert_eq!(f.scan(&[], None), 0, "a failed route is not believed installed");
    f.loc_rib(&change(
        "10.224.2.0/24",
        Role::Upstream,
        false,
        &["fd00:101::fffe"],
    ));
    assert_eq!(f.flush().len(), 1);
}

/// Two writes in flight: the second writes a route over before the
/// first's results are back. The first's refusal of it is then out of
/// date: the second's result decides, and no object use is lost.
#[test]
fn a_refusal_written_over_by_a_later_write_is_out_of_date() {
    let refused = |ops: &[Op]| -> Vec<Result<(), OpError>> {
        ops.iter()
            .map(|op| match op {
                Op::ReplaceRoute(_) => Err(OpError {
                    errno: libc::ENETUNREACH,
                    message: "no route".into(),
                }),
                _ => Ok(()),
            })
            .collect()
    };
    let learn = |f: &mut Fib, via: &str| {
        f.loc_rib(&change("10.224.2.0/24", Role::Upstream, false, &[via]));
        f.flush()
    };
    let now = Instant::now();

    // The first refused, the second in.
    let mut f = node(true);
    let first = learn(&mut f, "fd00:101::fffe");
    let second = learn(&mut f, "10.101.0.254");
    f.applied(&first, &refused(&first), now);
    f.applied(&second, &ok(&second), now);
    assert!(f.failed_routes(now).is_empty());
    assert_eq!(f.counters().installed, 1);
    assert!(f.flush().is_empty(), "nothing left to write");
    // The route's object goes with it: its use was kept.
    f.loc_rib(&gone("10.224.2.0/24"));
    let ops = f.flush();
    assert!(
        matches!(ops.as_slice(), [Op::DeleteRoute(_), Op::DeleteNexthop(_)]),
        "{ops:?}"
    );

    // The first in, the second refused: tried again.
    let mut f = node(true);
    let first = learn(&mut f, "fd00:101::fffe");
    let second = learn(&mut f, "10.101.0.254");
    f.applied(&first, &ok(&first), now);
    f.applied(&second, &refused(&second), now);
    assert_eq!(f.failed_routes(now).len(), 1);
    assert_eq!(f.counters().installed, 0);
    f.retry_due(now + Duration::from_secs(2));
    let again = f.flush();
    assert!(
        again
            .iter()
            .any(|op| matches!(op, Op::ReplaceRoute(r) if r.prefix == net("10.224.2.0/24"))),
        "{again:?}"
    );
}

#[test]
fn nexthop_objects_are_shared_and_cleaned_up() {
    let mut f = node(true);
    f.loc_rib(&change(
        "10.224.2.0/24",
        Role::Upstream,
        false,
        &["fd00:101::fffe"],
    ));
    f.loc_rib(&change(
        "10.224.3.0/24",
        Role::Upstream,
        false,
        &["fd00:101::fffe"],
    ));
    f.loc_rib(&change(
        "10.96.2.10/32",
        Role::Upstream,
        false,
        &["fd00:101::fffd", "fd00:101::fffe"],
    ));
    let ops = f.flush();
    let objects: Vec<_> = ops
        .iter()
        .filter_map(|o| {
            if let Op::ReplaceNexthop(n) = o {
                Some(n.clone())
            } else {
                None
            }
        })
        .collect();
    // Two singles and one group, created before any route.
    assert_eq!(objects.len(), 3, "{ops:?}");
    assert!(matches!(ops[0], Op::ReplaceNexthop(_)) && matches!(ops[2], Op::ReplaceNexthop(_)));
    let group = objects
        .iter()
        .find(|o| matches!(o.spec, NexthopSpec::Group(_)))
        .unwrap();
    let nhid = |prefix: &str| {
        ops.iter()
            .find_map(|o| match o {
                Op::ReplaceRoute(r) if r.prefix == net(prefix) => Some(r.nhid),
                _ => None,
            })
            .flatten()
    };
    assert_eq!(
        nhid("10.224.2.0/24"),
        nhid("10.224.3.0/24"),
        "one object for both single-path routes"
    );
    assert!(nhid("10.224.2.0/24").is_some());
    assert_eq!(nhid("10.96.2.10/32"), Some(group.id));
    f.applied(&ops, &ok(&ops), Instant::now());
    // Everything goes: routes first, then the group, then its members.
    f.loc_rib(&gone("10.224.2.0/24"));
    f.loc_rib(&gone("10.224.3.0/24"));
    f.loc_rib(&gone("10.96.2.10/32"));
    let ops = f.flush();
    let first_delete_nh = ops
        .iter()
        .position(|o| matches!(o, Op::DeleteNexthop(_)))
        .unwrap();
    assert!(
        ops[..first_delete_nh]
            .iter()
            .all(|o| matches!(o, Op::DeleteRoute(_))),
        "{ops:?}"
    );
    assert_eq!(
        ops.iter().filter(|o| matches!(o, Op::DeleteNexthop(_))).count(),
        3,
        "{ops:?}"
    );
}

/// NLM_F_REPLACE ignores the protocol: tern never writes over another
/// daemon's route that has the same prefix, table and metric.
#[test]
fn routes_of_other_daemons_are_never_replaced() {
    let mut f = Fib::new(config(), false);
    let static_route = KernelRoute {
        protocol: 4,
        ..unicast("10.224.2.0/24", vec![via("fd00:101::1")])
    };
    f.load(KernelSnapshot {
        ours: vec![],
        nexthops: vec![],
        foreign: vec![static_route],
        links: links(true),
        addresses: addresses(),
    });
    f.loc_rib(&change(
        "10.224.2.0/24",
        Role::Upstream,
        false,
        &["fd00:101::fffe"],
    ));
    assert!(f.flush().is_empty());
    let held = f.explain(&change(
        "10.224.2.0/24",
        Role::Upstream,
        false,
        &["fd00:101::fffe"],
    ));
    assert!(
        held.wanted && !held.installed && held.detail.contains("another daemon"),
        "{held:?}"
    );
    // The other daemon's route goes: ours goes in at once, not at the
    // next scan.
    f.kernel_event(Event::Route {
        added: false,
        route: KernelRoute {
            protocol: 4,
            ..unicast("10.224.2.0/24", vec![via("fd00:101::1")])
        },
    });
    assert_eq!(
        f.flush(),
        [Op::ReplaceRoute(unicast(
            "10.224.2.0/24",
            vec![via("fd00:101::fffe")]
        ))]
    );
}

/// The object every route via fd00:101::fffe shares, from a flush's ops.
fn object_of(ops: &[Op]) -> NexthopObject {
    ops.iter()
        .find_map(|o| match o {
            Op::ReplaceNexthop(n) => Some(n.clone()),
            _ => None,
        })
        .expect("a nexthop object")
}

fn two_routes_via_one_object() -> (Fib, NexthopObject, Vec<KernelRoute>) {
    let mut f = node(true);
    for p in ["10.224.2.0/24", "10.224.3.0/24"] {
        f.loc_rib(&change(p, Role::Upstream, false, &["fd00:101::fffe"]));
    }
    let ops = f.flush();
    f.applied(&ops, &ok(&ops), Instant::now());
    let object = object_of(&ops);
    let routes = ops
        .iter()
        .filter_map(|o| match o {
            Op::ReplaceRoute(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    (f, object, routes)
}

/// `ip nexthop del id N` takes the routes using it along: the object is
/// written again before the routes, with the same id.
#[test]
fn a_deleted_nexthop_object_is_written_again_with_its_routes() {
    let (mut f, object, routes) = two_routes_via_one_object();
    assert_eq!(
        f.kernel_event(Event::Nexthop {
            added: false,
            object: object.clone()
        }),
        Followup::Scan
    );
    // The scan finds neither the routes nor the object.
    assert_eq!(f.scan(&[], Some(&[])), 3);
    let ops = f.flush();
    assert_eq!(ops[0], Op::ReplaceNexthop(object.clone()), "{ops:?}");
    let mut rewritten: Vec<KernelRoute> = ops[1..]
        .iter()
        .filter_map(|o| match o {
            Op::ReplaceRoute(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    rewritten.sort_by_key(|r| r.prefix);
    assert_eq!(rewritten, routes);
    assert!(rewritten.iter().all(|r| r.nhid == Some(object.id)));
    // The repair took no extra use of the object: when its routes go, so
    // does it.
    f.applied(&ops, &ok(&ops), Instant::now());
    f.loc_rib(&gone("10.224.2.0/24"));
    f.loc_rib(&gone("10.224.3.0/24"));
    let ops = f.flush();
    assert_eq!(ops.last(), Some(&Op::DeleteNexthop(object.id)), "{ops:?}");
}

/// A write the kernel refuses because our object is gone ("Nexthop id does
/// not exist", EINVAL) has the object written again, and the route is
/// retried with back-off, listed until it succeeds.
#[test]
fn a_refused_write_rewrites_a_lost_object_and_is_retried_with_back_off() {
    let (mut f, object, routes) = two_routes_via_one_object();
    let t0 = Instant::now();
    // The route changes (a new metric), but the object vanished unseen.
    f.loc_rib(&gone("10.224.3.0/24"));
    f.loc_rib(&change(
        "10.224.2.0/24",
        Role::Upstream,
        false,
        &["fd00:101::fffe"],
    ));
    f.scan(&routes, Some(std::slice::from_ref(&object)));
    let lost = KernelRoute {
        metric: 1,
        ..routes[0].clone()
    };
    assert_eq!(f.scan(&[lost], Some(std::slice::from_ref(&object))), 2);
    let ops = f.flush();
    let refused = OpError {
        errno: libc::EINVAL,
        message: "Nexthop id does not exist".into(),
    };
    let results: Vec<_> = ops
        .iter()
        .map(|o| match o {
            Op::ReplaceRoute(_) => Err(refused.clone()),
            _ => Ok(()),
        })
        .collect();
    f.applied(&ops, &results, t0);
    assert_eq!(f.counters().failing, 1);
    let failed = f.failed_routes(t0);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].prefix, "10.224.2.0/24");
    assert!(
        failed[0].error.contains("Nexthop id does not exist"),
        "{failed:?}"
    );
    assert_eq!(f.next_retry(), Some(t0 + Duration::from_secs(1)));
    // Not before its time.
    f.retry_due(t0 + Duration::from_millis(500));
    assert_eq!(f.flush(), [Op::ReplaceNexthop(object.clone())]);
    // Refused again: the next try waits twice as long.
    f.retry_due(t0 + Duration::from_secs(1));
    let ops = f.flush();
    assert_eq!(ops, [Op::ReplaceRoute(routes[0].clone())]);
    f.applied(&ops, &[Err(refused)], t0 + Duration::from_secs(1));
    assert_eq!(f.next_retry(), Some(t0 + Duration::from_secs(3)));
    f.retry_due(t0 + Duration::from_secs(3));
    let ops = f.flush();
    assert_eq!(ops[0], Op::ReplaceNexthop(object), "{ops:?}");
    assert_eq!(ops[1], Op::ReplaceRoute(routes[0].clone()));
    f.applied(&ops, &ok(&ops), t0 + Duration::from_secs(3));
    assert_eq!(f.counters().failing, 0);
    assert!(f.failed_routes(t0).is_empty());
    assert_eq!(f.next_retry(), None);
}

/// The scan compares our nexthop objects too: one changed by someone is
/// written back; one of ours that nothing uses (left by a previous run)
/// goes once routing has converged.
#[test]
fn the_scan_reconciles_nexthop_objects_and_sweeps_orphans() {
    let (mut f, object, routes) = two_routes_via_one_object();
    let changed = NexthopObject {
        spec: NexthopSpec::Single(via("fd00:101::99")),
        ..object.clone()
    };
    assert_eq!(f.scan(&routes, Some(&[changed])), 1);
    assert_eq!(f.flush(), [Op::ReplaceNexthop(object.clone())]);
    assert_eq!(f.scan(&routes, Some(std::slice::from_ref(&object))), 0);

    // A restart finds an object of ours no route uses.
    let orphan = NexthopObject {
        id: object.id + 100,
        protocol: PROTO,
        spec: NexthopSpec::Single(via("fd00:101::77")),
    };
    let mut f = Fib::new(config(), true);
    f.load(KernelSnapshot {
        ours: vec![],
        nexthops: vec![orphan.clone()],
        foreign: vec![],
        links: links(true),
        addresses: addresses(),
    });
    assert_eq!(f.flush(), [], "kept until routing has converged");
    f.converged();
    assert_eq!(f.flush(), [Op::DeleteNexthop(orphan.id)]);
    assert_eq!(f.flush(), []);
}

/// Someone puts another protocol's route in place of one of ours (same
/// prefix, table and metric, so the kernel replaces ours): tern leaves it
/// alone, at the event and at every scan after.
#[test]
fn a_route_taken_over_by_another_protocol_is_left_alone() {
    let (mut f, _, routes) = two_routes_via_one_object();
    let taken = KernelRoute {
        protocol: 4,
        nhid: None,
        ..unicast("10.224.2.0/24", vec![via("fd00:101::1")])
    };
    f.kernel_event(Event::Route {
        added: true,
        route: taken,
    });
    assert_eq!(f.scan(&routes[1..], None), 1);
    assert_eq!(f.flush(), [], "not written over");
    assert_eq!(f.scan(&routes[1..], None), 0);
    assert_eq!(f.flush(), []);
}

#[test]
fn tables_give_their_room_back_after_churn() {
    let mut f = node(true);
    let mut room_after_first = 0;
    // Ten rounds of 5,000 prefixes, new ones each round, announced and
    // withdrawn again: a hash table that sees keys come and go grows past
    // twice its peak unless it is shrunk.
    for round in 0..10u32 {
        let prefixes: Vec<String> = (0..5_000u32)
            .map(|i| {
                let n = round * 5_000 + i;
                format!("10.{}.{}.{}/32", 64 + n / 65_536, (n / 256) % 256, n % 256)
            })
            .collect();
        for p in &prefixes {
            f.loc_rib(&change(p, Role::Upstream, false, &["fd00:101::fffe"]));
        }
        let ops = f.flush();
        f.applied(&ops, &ok(&ops), Instant::now());
        assert!(f.room() >= 5_000);
        for p in &prefixes {
            f.loc_rib(&gone(p));
        }
        let ops = f.flush();
        f.applied(&ops, &ok(&ops), Instant::now());
        assert_eq!(f.counters().installed, 0);
        assert!(f.release_unused(), "round {round}: nothing shrank");
        if round == 0 {
            room_after_first = f.room();
        }
        assert!(
            f.room() <= room_after_first.max(256),
            "round {round}: room for {} entries, {room_after_first} after the first round",
            f.room()
        );
    }
    // Nothing more to give back.
    assert!(!f.release_unused());
}

fn static_route(prefix: &str, target: StaticTarget) -> StaticRoute {
    StaticRoute {
        prefix: net(prefix),
        target,
        originate: false,
    }
}

#[test]
fn static_routes_are_installed_and_win_over_bgp() {
    let mut f = node_with_a_learned_route();
    f.set_statics(&[
        static_route("10.96.0.0/16", StaticTarget::Blackhole),
        static_route("fd00:96::/48", StaticTarget::Unreachable),
        // Over the BGP route to the same prefix, via another next hop.
        static_route("10.224.2.0/24", StaticTarget::NextHop(ip("10.101.0.254"))),
    ]);
    let ops = f.flush();
    let reject = |prefix: &str, kind| KernelRoute {
        prefix: net(prefix),
        table: 254,
        protocol: PROTO,
        kind,
        metric: METRIC,
        nexthops: vec![],
        nhid: None,
        prefsrc: None,
    };
    assert_eq!(
        ops,
        [
            Op::ReplaceRoute(reject("10.96.0.0/16", RouteKind::Blackhole)),
            Op::ReplaceRoute(unicast("10.224.2.0/24", vec![via("10.101.0.254")])),
            Op::ReplaceRoute(reject("fd00:96::/48", RouteKind::Unreachable)),
        ]
    );
    f.applied(&ops, &ok(&ops), Instant::now());
    assert_eq!(f.counters().static_routes, 3);
    // BGP changes under a static route change nothing in the kernel.
    f.loc_rib(&change("10.224.2.0/24", Role::Upstream, false, &["fd00:101::1"]));
    assert!(f.flush().is_empty());
    // The static route goes: BGP's latest route comes back; the others go.
    f.set_statics(&[static_route("10.96.0.0/16", StaticTarget::Blackhole)]);
    let ops = f.flush();
    assert_eq!(
        ops,
        [
            Op::ReplaceRoute(unicast("10.224.2.0/24", vec![via("fd00:101::1")])),
            Op::DeleteRoute(reject("fd00:96::/48", RouteKind::Unreachable)),
        ]
    );
}

#[test]
fn installed_routes_carry_the_configured_source_address() {
    let mut config = config();
    config.source_address_ipv4 = Some("10.101.0.21".parse().unwrap());
    config.source_address_ipv6 = Some("fd00:101::21".parse().unwrap());
    let mut f = node_with(config, false);
    learn_the_other_nodes_pod_cidrs(&mut f);
    f.loc_rib(&change("10.96.1.10/32", Role::Cilium, false, &["::1"]));
    let ops = f.flush();
    let src: Vec<(String, Option<IpAddr>)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::ReplaceRoute(r) => Some((r.prefix.to_string(), r.prefsrc)),
            _ => None,
        })
        .collect();
    assert_eq!(
        src,
        [
            // The VIP's local route has no source address of its own.
            ("10.96.1.10/32".to_owned(), None),
            ("10.224.2.0/24".to_owned(), Some(ip("10.101.0.21"))),
            ("fd00:101:224:2::/64".to_owned(), Some(ip("fd00:101::21"))),
        ]
    );
    // A route someone changed to another source address is drift.
    f.applied(&ops, &ok(&ops), Instant::now());
    let mut changed = unicast("10.224.2.0/24", vec![via("fd00:101::fffe")]);
    changed.prefsrc = Some(ip("10.101.0.99"));
    let ours = vec![
        changed,
        KernelRoute {
            prefsrc: Some(ip("fd00:101::21")),
            ..unicast("fd00:101:224:2::/64", vec![via("fd00:101::fffe")])
        },
        local_vip("10.96.1.10/32"),
    ];
    assert_eq!(f.scan(&ours, None), 1);
}

#[test]
fn each_selection_says_whether_and_how_it_is_in_the_kernel() {
    let mut f = node(false);
    let upstream = change("10.224.2.0/24", Role::Upstream, false, &["fd00:101::fffe"]);
    let own = change("10.224.1.0/24", Role::Cilium, true, &["::1"]);
    let vip = change("10.96.1.10/32", Role::Cilium, true, &["::1"]);
    let unreachable = change("10.224.3.0/24", Role::Upstream, false, &["10.250.0.1"]);
    let peer = change("10.224.4.0/24", Role::Peer, false, &["fd00:101::fffe"]);
    for c in [&upstream, &own, &vip, &unreachable, &peer] {
        f.loc_rib(c);
    }
    // Not written yet.
    assert_eq!(f.explain(&upstream).detail, "being written");
    let ops = f.flush();
    f.applied(&ops, &ok(&ops), Instant::now());
    let up = f.explain(&upstream);
    assert!(up.installed, "{up:?}");
    assert_eq!(
        up.detail,
        "route: via fd00:101::fffe dev eth0, table main, metric 512"
    );
    let v = f.explain(&vip);
    assert!(
        v.installed && v.detail.starts_with("VIP route: local dev lo, table local"),
        "{v:?}"
    );
    let o = f.explain(&own);
    assert!(
        !o.installed && o.detail.contains("the node's own prefix"),
        "{o:?}"
    );
    let u = f.explain(&unreachable);
    assert!(
        !u.installed && u.detail.starts_with("no next hop resolves"),
        "{u:?}"
    );
    let p = f.explain(&peer);
    assert!(
        !p.installed && p.detail.contains("install-from does not list peer"),
        "{p:?}"
    );
    assert_eq!(f.explain(&gone("10.224.9.0/24")).detail, "no path in the Loc-RIB");
    // A static route, whatever BGP selected.
    f.set_statics(&[static_route("10.224.4.0/24", StaticTarget::Blackhole)]);
    let ops = f.flush();
    f.applied(&ops, &ok(&ops), Instant::now());
    let s = f.explain(&peer);
    assert!(
        s.installed && s.detail.starts_with("static route: blackhole"),
        "{s:?}"
    );
}

#[test]
fn link_local_next_hops_go_out_on_their_sessions_links() {
    let link = |ifindex: u32, up: bool| Link {
        ifindex,
        name: format!("up{ifindex}"),
        up,
        mtu: 1500,
    };
    let snapshot = |up8: bool| KernelSnapshot {
        ours: vec![],
        nexthops: vec![],
        foreign: vec![],
        // Unnumbered uplinks: no address of their own but link-local ones.
        links: [links(true), vec![link(7, true), link(8, up8)]].concat(),
        addresses: addresses(),
    };
    let mut f = Fib::new(config(), false);
    f.load(snapshot(false));
    let gw = |a: &str, ifindex: u32| Gateway {
        addr: ip(a),
        ifindex: Some(ifindex),
    };
    let mut c = change("10.244.2.0/24", Role::Upstream, false, &[]);
    c.selected.as_mut().unwrap().next_hops = [gw("fe80::2", 7), gw("fe80::3", 8)].into_iter().collect();
    f.loc_rib(&c);
    let on = |a: &str, ifindex: u32| KernelNextHop {
        gateway: Some(ip(a)),
        ifindex: Some(ifindex),
        weight: 1,
    };
    // The IPv4 prefix goes via the router's link-local address on link 7
    // (RFC 8950); link 8 is down.
    let ops = f.flush();
    assert_eq!(
        ops,
        [Op::ReplaceRoute(unicast("10.244.2.0/24", vec![on("fe80::2", 7)]))]
    );
    f.applied(&ops, &ok(&ops), Instant::now());
    // Link 8 comes up: ECMP over both uplinks.
    assert_eq!(f.kernel_event(Event::Link(link(8, true))), Followup::Reload);
    f.reload(snapshot(true));
    let ops = f.flush();
    assert_eq!(
        ops,
        [Op::ReplaceRoute(unicast(
            "10.244.2.0/24",
            vec![on("fe80::2", 7), on("fe80::3", 8)]
        ))]
    );
    // Without its link, a link-local next hop is never resolved elsewhere.
    let mut c = change("10.244.3.0/24", Role::Upstream, false, &["fe80::2"]);
    c.selected.as_mut().unwrap().next_hops[0].ifindex = None;
    f.loc_rib(&c);
    assert_eq!(f.flush().len(), 0);
    assert!(f.unresolved().any(|p| *p == net("10.244.3.0/24")));
}
