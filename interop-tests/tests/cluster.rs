//! Issue 5's scenarios, one test each (`scenario_N_...`), in the topology
//! of the issue: a Talos cluster as its operators run it.
//!
//! ```text
//!                 segment fd00:101::/64, 10.101.0.0/24 (a bridge in its own namespace)
//!   +-------------------+---------------------+---------------------+
//!   |                   |                     |                     |
//! upstream (FRR)      node-21               node-22               node-23
//! ::fffe .254         ::21 .21              ::22 .22              ::23 .23
//! AS 4200001000       AS 4210101021         AS 4210101022         AS 4210101023
//! zebra installs      tern ─ ::1 ─ gobgpd (Cilium, AS 4220101000): pod CIDR
//! what bgpd learns         10.224.X.0/24, fd00:101:224:X::/64, VIPs
//!                          10.96.X.10/32, fd00:96:X::10/128 (next hop ::1)
//!                     pod 10 (10.224.X.10, fd00:101:224:X::10) on a veth
//! ```
//!
//! [`interop_tests::cluster`] builds it (see `src/lab.rs` for the details:
//! one eBGP session per node over IPv6 with extended next hop, graceful
//! restart everywhere, the router sends defaults and `next-hop-self`).
//! Each test builds its own lab in its own namespaces, so they run in
//! parallel; when one fails, the output shows every daemon's state and
//! every namespace's routes at that moment, then the logs.
//!
//! | scenario | test |
//! | --- | --- |
//! | 1. sessions | `scenario_1_sessions_establish_with_four_octet_asns_and_the_expected_capabilities` |
//! | 2. propagation | `scenario_2_frr_learns_every_nodes_vips_and_pod_cidrs_with_that_node_as_next_hop` |
//! | 3. inter-node routing | `scenario_3_each_node_routes_to_the_other_nodes_pods_and_pods_ping_across_nodes` |
//! | 4. hairpin | `scenario_4_own_vips_get_local_routes_and_hairpin_traffic_stays_on_the_node` (controls: `tests/hairpin.rs`) |
//! | 5. withdraw | `scenario_5_a_withdrawn_vip_leaves_frr_and_the_other_kernels_within_a_second` |
//! | 6. Cilium agent restart | `scenario_6_cilium_agent_restart_flaps_nothing` |
//! | 7. tern restart | `scenario_7_tern_restarts_keep_the_kernel_routes_and_leave_nothing_stale` (zero kernel change in detail: `tests/fib.rs`, `restarts_change_nothing_in_the_kernel`) |
//! | 8. upstream loss | `scenario_8_upstream_loss_withdraws_learned_routes_after_the_hold_time` |
//! | 9. bird2 upstream | `scenario_9_bird2_in_place_of_frr_propagates_the_same` |
//! | 10. config reload | `scenario_10_reload_adds_a_peer_and_changes_a_policy_without_touching_other_sessions` |

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use interop_tests::kernel::{self, Hop, KernelRoute, Monitor};
use interop_tests::lab::{CILIUM_ASN, RouterWatch, Upstream, route_timeout, session_timeout};
use interop_tests::{Node, Router, Topology, cluster, expect, holds_for, nft, tcp, timeout, wait_until};
use serde_json::Value;

const ROUTER_V6: &str = "fd00:101::fffe";
const ROUTER_ASN: u32 = 4200001000;

/// A next hop through `gateway` on the uplink, as `ip route` shows an IPv6
/// gateway (also for an IPv4 route: `via inet6 GATEWAY`).
fn via6(gateway: &str) -> Hop {
    Hop {
        gateway: Some(gateway.to_owned()),
        family: Some("inet6".to_owned()),
        dev: Some("eth-up".to_owned()),
    }
}

/// What every node learns from the router besides the other nodes'
/// prefixes.
const DEFAULTS: [&str; 2] = ["0.0.0.0/0", "::/0"];

/// Everything node `x` should have learned: defaults and the other nodes'
/// pod CIDRs and VIPs.
fn learned(lab: &Topology, x: u8) -> Vec<String> {
    let mut v: Vec<String> = DEFAULTS.iter().map(|s| s.to_string()).collect();
    v.extend(lab.remote_prefixes(x));
    v
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Waits until `router` has a valid best path for every prefix each
/// node's Cilium advertises, and checks it: learned from that node (AS
/// path `42101010XX 4220101000`) with the node's own address as the
/// global next hop, never Cilium's `::1` or a loopback.
#[track_caller]
fn assert_router_learned_every_node(lab: &Topology, router: &Router) -> Vec<String> {
    let mut report = Vec::new();
    for n in &lab.nodes {
        for p in n.own_prefixes() {
            let best = wait_until(
                route_timeout(),
                &format!("{p} in {}'s BGP table", router.up.name),
                || match router.best_path(&p)? {
                    Some(b) => Ok(b),
                    None => Err("no valid best path".into()),
                },
            );
            assert_eq!(
                best.as_path,
                format!("{} {CILIUM_ASN}", n.id.asn()),
                "{p} in {}: {best:?}",
                router.up.name
            );
            assert_eq!(
                best.global_next_hops(),
                [n.id.v6().as_str()],
                "{p} in {}: {best:?}",
                router.up.name
            );
            for bad in ["::1", "127.0.0.1", "::ffff:127.0.0.1"] {
                assert!(
                    !best.next_hops.iter().any(|h| h == bad),
                    "{p} in {}: {best:?}",
                    router.up.name
                );
            }
            report.push(format!("{p}: {} via {:?}", best.as_path, best.next_hops));
        }
    }
    report
}

/// Each node's tern has every other node's prefixes and the defaults from
/// the router (one path, learned from `upstream`, next hop the router's
/// address, AS path through the router and that node), and its own
/// prefixes from Cilium.
#[track_caller]
fn assert_nodes_learned_from_the_router(lab: &Topology) {
    for n in &lab.nodes {
        let mut expected: Vec<(String, String)> = DEFAULTS
            .iter()
            .map(|p| (p.to_string(), ROUTER_ASN.to_string()))
            .collect();
        for other in lab.nodes.iter().filter(|o| o.id.x != n.id.x) {
            for p in other.own_prefixes() {
                expected.push((p, format!("{ROUTER_ASN} {} {CILIUM_ASN}", other.id.asn())));
            }
        }
        for (p, as_path) in expected {
            let paths = wait_until(
                route_timeout(),
                &format!("{p} from upstream in {}'s Loc-RIB", n.name()),
                || {
                    let paths = n.tern.paths(&p)?;
                    if paths.iter().any(|x| x["peer"] == "upstream" && x["best"] == true) {
                        Ok(paths)
                    } else {
                        Err(format!("{paths:#?}"))
                    }
                },
            );
            assert_eq!(paths.len(), 1, "{p} in {}: {paths:#?}", n.name());
            let nh = paths[0]["next_hop"].as_str().unwrap_or_default();
            assert!(
                nh == ROUTER_V6 || nh.starts_with(&format!("{ROUTER_V6} (fe80:")),
                "{p} in {}: next hop {nh:?}",
                n.name()
            );
            assert_eq!(paths[0]["as_path"], as_path, "{p}: {paths:#?}");
        }
        for p in n.own_prefixes() {
            let paths = n.tern.paths(&p).unwrap();
            assert!(
                paths.iter().any(|x| x["peer"] == "cilium" && x["best"] == true),
                "{p} in {}: {paths:#?}",
                n.name()
            );
        }
    }
}

/// Every node's kernel: the routes learned from the router, each through
/// the router, in the main table; the node's own VIPs as local routes;
/// and, for a while, never a route to its own pod CIDRs.
#[track_caller]
fn assert_kernels(lab: &Topology, gateway: &str) {
    for n in &lab.nodes {
        let learned = learned(lab, n.id.x);
        let routes = n.wait_kernel(&refs(&learned), true);
        for p in &learned {
            let r = kernel::find(&routes, p).unwrap();
            assert_eq!(
                (r.kind.as_str(), r.table.as_str(), r.metric),
                ("unicast", "main", Some(512)),
                "{p} in {}: {r:#?}",
                n.name()
            );
            assert_eq!(r.hops, [via6(gateway)], "{p} in {}: {r:#?}", n.name());
        }
        assert_vip_routes(n, &routes);
    }
    let own: Vec<(u8, [String; 2])> = lab.nodes.iter().map(|n| (n.id.x, n.id.pod_cidrs())).collect();
    holds_for(
        timeout(2),
        "no node has a route to its own pod CIDRs",
        || {
            lab.nodes
                .iter()
                .map(|n| (n.name(), n.bgp_routes()))
                .collect::<Vec<_>>()
        },
        |all| {
            all.iter().zip(&own).all(|((_, r), (_, cidrs))| {
                matches!(r, Ok(r) if cidrs.iter().all(|p| kernel::find(r, p).is_none()))
            })
        },
    );
}

/// The node's own VIPs are `local VIP dev lo table local proto 186`.
#[track_caller]
fn assert_vip_routes(n: &Node, routes: &[KernelRoute]) {
    for p in &n.vips {
        let r = kernel::find(routes, p).unwrap_or_else(|| panic!("no route for {p} in {routes:#?}"));
        assert_eq!(
            (r.kind.as_str(), r.table.as_str(), r.metric),
            ("local", "local", Some(512)),
            "{p} in {}: {r:#?}",
            n.name()
        );
        assert_eq!(r.hops.len(), 1, "{r:#?}");
        assert_eq!(r.hops[0].dev.as_deref(), Some("lo"), "{r:#?}");
        assert_eq!(r.hops[0].gateway, None, "{r:#?}");
    }
}

/// Every pod pings every pod of the other nodes, IPv4 and IPv6, all at
/// once; returns a line per ping.
#[track_caller]
fn ping_all_pairs(lab: &Topology) -> Vec<String> {
    let mut pairs = Vec::new();
    for a in &lab.nodes {
        for b in lab.nodes.iter().filter(|b| b.id.x != a.id.x) {
            let (v4, v6) = b.id.pod_addrs(10);
            pairs.push((a.name(), a.pod(10), v4.clone()));
            pairs.push((a.name(), a.pod(10), v6.clone()));
        }
    }
    let results: Vec<(String, Result<String, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = pairs
            .iter()
            .map(|(name, pod, dst)| {
                let what = format!("{name} pod 10 -> {dst}");
                (what, s.spawn(move || pod.ping(dst)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(what, h)| (what, h.join().unwrap_or_else(|_| Err("panicked".into()))))
            .collect()
    });
    let failed: Vec<&(String, Result<String, String>)> = results.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(failed.is_empty(), "pings failed: {failed:#?}");
    results
        .iter()
        .map(|(what, r)| {
            let rtt = r
                .as_ref()
                .ok()
                .and_then(|o| o.lines().find(|l| l.starts_with("rtt")))
                .unwrap_or("");
            format!("{what}: ok {rtt}")
        })
        .collect()
}

/// Scenario 1. Every session comes up: GoBGP↔tern over `::1` and
/// tern↔FRR over IPv6 on each node, with 4-octet ASNs on all sides,
/// extended next hop and both unicast families with FRR, and Cilium's
/// graceful restart (120 s, N bit) with GoBGP, as each side reports it.
#[test]
fn scenario_1_sessions_establish_with_four_octet_asns_and_the_expected_capabilities() {
    let Some(lab) = cluster("s1").start() else { return };
    lab.wait_sessions();
    let frr = lab.router(0).frr();
    for n in &lab.nodes {
        let up = n.tern.wait_established("upstream", session_timeout());
        expect::tern_upstream_session(&up, ROUTER_ASN);
        // FRR runs `bgp graceful-restart`: tern helps it, and it helps tern.
        let gr = &up["negotiated"]["graceful_restart"];
        assert!(gr.is_object(), "upstream of {}: {up:#}", n.name());
        let cilium = n.tern.wait_established("cilium", session_timeout());
        expect::tern_cilium_session(&cilium);
        // Cilium's session is over ::1, the upstream one over the segment.
        assert_eq!(cilium["address"], "::1", "{cilium:#}");
        assert_eq!(up["address"], ROUTER_V6, "{up:#}");
        expect::frr_node_session(&frr.neighbor(&n.id.v6()).unwrap(), n.id.asn());
        let g = n.gobgp.wait_established("::1", session_timeout());
        expect::gobgp_tern_session(&g, n.id.asn());
        let summary = n.tern.summary().unwrap();
        assert_eq!(summary["asn"], n.id.asn(), "{summary:#}");
        assert_eq!(summary["peers"], 2, "{summary:#}");
        assert_eq!(summary["peers_established"], 2, "{summary:#}");
        println!(
            "{}: upstream {} (gr {}), cilium {} (gr {})",
            n.name(),
            up["negotiated"]["families"],
            gr,
            cilium["negotiated"]["families"],
            cilium["negotiated"]["graceful_restart"]
        );
        println!("{}", n.tern.show("peers").unwrap());
    }
}

/// Scenario 2. FRR has every node's VIPs and pod CIDRs, IPv4 and IPv6,
/// each with that node's own address as next hop (never `::1` or a
/// loopback) and AS path `node Cilium`; and each node learned the others'
/// from FRR.
#[test]
fn scenario_2_frr_learns_every_nodes_vips_and_pod_cidrs_with_that_node_as_next_hop() {
    let Some(lab) = cluster("s2").start() else { return };
    lab.wait_sessions();
    let report = assert_router_learned_every_node(&lab, lab.router(0));
    println!("FRR's best paths:\n{}", report.join("\n"));
    // tern's own account: four prefixes accepted from Cilium, four
    // advertised to FRR, on every node.
    for n in &lab.nodes {
        let up = n.tern.peer("upstream").unwrap();
        assert_eq!(up["prefixes"]["advertised"], 4, "{}: {up:#}", n.name());
        let cil = n.tern.peer("cilium").unwrap();
        assert_eq!(cil["prefixes"]["accepted"], 4, "{}: {cil:#}", n.name());
    }
    // And the other way: every node has the others' prefixes from FRR.
    assert_nodes_learned_from_the_router(&lab);
}

/// Scenario 3. Each node's kernel routes the other nodes' pod CIDRs and
/// VIPs through the router and has no route to its own pod CIDRs; every
/// pod pings the pods of both other nodes, IPv4 and IPv6.
#[test]
fn scenario_3_each_node_routes_to_the_other_nodes_pods_and_pods_ping_across_nodes() {
    let Some(lab) = cluster("s3").start() else { return };
    lab.wait_converged();
    assert_kernels(&lab, ROUTER_V6);
    let report = ping_all_pairs(&lab);
    println!("{}", report.join("\n"));
}

const BACKEND_PORT: u16 = 8080;
const GREETING: &str = "hello from the backend, you are";

/// Scenario 4. On each node: local routes for its own VIPs (the others'
/// go to the router), and a pod calling its node's VIP reaches the
/// backend pod on that node through the emulated service translation,
/// with no packet to the VIP on the uplink. `tests/hairpin.rs` has the
/// controls (no route: the packets leave; VIP routes disabled: they leave
/// and the connection fails).
#[test]
fn scenario_4_own_vips_get_local_routes_and_hairpin_traffic_stays_on_the_node() {
    // Pod 10 is the backend of the node's VIPs, pod 11 the client.
    let Some(lab) = cluster("s4").pod(1, 11).pod(2, 11).pod(3, 11).start() else {
        return;
    };
    lab.wait_converged();
    let mut report = Vec::new();
    for n in &lab.nodes {
        // Its own VIPs are local routes; the others' go to the router.
        let routes = n.bgp_routes().unwrap();
        assert_vip_routes(n, &routes);
        for other in lab.nodes.iter().filter(|o| o.id.x != n.id.x) {
            for p in &other.vips {
                let r = kernel::find(&routes, p).unwrap_or_else(|| panic!("no {p}: {routes:#?}"));
                assert_eq!(r.hops, [via6(ROUTER_V6)], "{p} in {}: {r:#?}", n.name());
                assert_eq!(r.table, "main", "{r:#?}");
            }
        }
        // A pod calls its own node's VIP: the node delivers it to itself,
        // the service translation to the backend, nothing leaves.
        let [vip4, vip6] = n.id.vips().map(|p| p.split('/').next().unwrap().to_owned());
        let (b4, b6) = n.id.pod_addrs(10);
        nft::apply(&n.ns, &nft::service_ruleset(&vip4, &vip6, &b4, &b6, BACKEND_PORT));
        let backend = tcp::Server::start(&n.pod(10).ns, BACKEND_PORT, GREETING);
        let (c4, c6) = n.id.pod_addrs(11);
        let vips: [(SocketAddr, &str, &str); 2] = [
            (
                format!("{vip4}:80").parse().unwrap(),
                nft::UPLINK_COUNTERS[0],
                &c4,
            ),
            (
                format!("[{vip6}]:80").parse().unwrap(),
                nft::UPLINK_COUNTERS[1],
                &c6,
            ),
        ];
        for (vip, counter, client_addr) in vips {
            let (result, packets) = nft::fetch_counted(&n.pod(11).ns, &n.ns, vip, counter);
            report.push(format!(
                "{}: pod 11 -> {vip}: {result:?}, {packets} packets to the VIP on the uplink",
                n.name()
            ));
            let answer = result.unwrap_or_else(|e| panic!("{}: {vip} from pod 11: {e}", n.name()));
            assert!(
                answer.starts_with(GREETING) && answer.contains(client_addr),
                "{vip}: {answer:?}"
            );
            assert_eq!(packets, 0, "{}: packets to {vip} left the uplink", n.name());
        }
        let served = backend.finish();
        assert_eq!(served.len(), 2, "{}: the backend served {served:?}", n.name());
    }
    println!("{}", report.join("\n"));
}

/// How long after `start` `gone` first returned true (polling every
/// 10 ms, up to `within`); None if it never did.
fn time_until(start: Instant, within: Duration, mut gone: impl FnMut() -> bool) -> Option<Duration> {
    while start.elapsed() < within {
        if gone() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Whether `prefix` is one of tern's routes in `ns`'s kernel.
fn in_kernel(ns: &interop_tests::Netns, prefix: &str) -> bool {
    let family = if prefix.contains(':') { "-6" } else { "-4" };
    ns.exec(&[
        "ip", family, "route", "show", "table", "all", "proto", "186", "exact", prefix,
    ])
    .is_ok_and(|out| !out.trim().is_empty())
}

/// Scenario 5. A VIP node 2's Cilium withdraws leaves FRR's table, FRR's
/// kernel and every node's kernel (node 2's local route included) within
/// a second; the times are printed.
#[test]
fn scenario_5_a_withdrawn_vip_leaves_frr_and_the_other_kernels_within_a_second() {
    let Some(lab) = cluster("s5").start() else { return };
    lab.wait_converged();
    assert_router_learned_every_node(&lab, lab.router(0));
    let n2 = lab.node(2);
    let vty = lab.router(0).frr().vty();
    let limit = Duration::from_secs(1);
    let mut report = Vec::new();
    for vip in n2.vips.clone() {
        // Everyone polls at once, from the moment Cilium is told.
        let start = Instant::now();
        let watch = timeout(5);
        let vip = vip.as_str();
        let times: Vec<(String, Option<Duration>)> = std::thread::scope(|s| {
            let mut pollers = vec![s.spawn(|| {
                let t = time_until(start, watch, || vty.paths(vip).is_ok_and(|p| p.is_empty()));
                ("FRR's BGP table".to_owned(), t)
            })];
            let ns = &lab.router(0).ns;
            pollers.push(s.spawn(move || {
                let family = if vip.contains(':') { "-6" } else { "-4" };
                let gone = || {
                    ns.exec(&["ip", family, "route", "show", "exact", vip])
                        .is_ok_and(|o| o.trim().is_empty())
                };
                ("FRR's kernel".to_owned(), time_until(start, watch, gone))
            }));
            for n in &lab.nodes {
                let what = if n.id.x == 2 { " (its local route)" } else { "" };
                let what = format!("{}'s kernel{what}", n.name());
                let ns = &n.ns;
                pollers.push(s.spawn(move || (what, time_until(start, watch, || !in_kernel(ns, vip)))));
            }
            n2.gobgp.del_route(vip);
            pollers.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (place, t) in &times {
            report.push(format!(
                "{vip} withdrawn by node-22's Cilium: gone from {place} after {t:?}"
            ));
        }
        for (place, t) in times {
            let t = t.unwrap_or_else(|| panic!("{vip} never left {place}\n{}", report.join("\n")));
            assert!(t < limit, "{vip} left {place} after {t:?}\n{}", report.join("\n"));
        }
    }
    println!("{}", report.join("\n"));
    // The pod CIDRs of node 2 stay everywhere.
    for n in [lab.node(1), lab.node(3)] {
        n.wait_kernel(&refs(&n2.id.pod_cidrs()), true);
    }
}

/// Polls every node's kernel at once until `done` holds for the routes of
/// node X, from `start`; returns (node name, how long) per node, None for
/// a node where it never did within `within`.
fn time_per_node(
    lab: &Topology,
    start: Instant,
    within: Duration,
    done: impl Fn(u8, &[KernelRoute]) -> bool + Sync,
) -> Vec<(String, Option<Duration>)> {
    std::thread::scope(|s| {
        let done = &done;
        let handles: Vec<_> = lab
            .nodes
            .iter()
            .map(|n| {
                let (name, ns, x) = (n.name(), &n.ns, n.id.x);
                s.spawn(move || {
                    let t = time_until(start, within, || {
                        kernel::bgp_routes(ns).is_ok_and(|r| done(x, &r))
                    });
                    (name, t)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Scenario 8. FRR's link goes down (its port on the segment): once the
/// hold time has run out (9 s; 6 to 9 s after the last keepalive FRR got
/// through), every node's tern withdraws the routes it learned from FRR
/// from its kernel, not before; they come back with the link.
#[test]
fn scenario_8_upstream_loss_withdraws_learned_routes_after_the_hold_time() {
    let Some(lab) = cluster("s8").start() else { return };
    lab.wait_converged();
    // tern proposes 9 s (`hold-time = 9`), FRR `timers 3 9`: FRR sends a
    // keepalive every 3 s, so the hold timer runs out 6 to 9 s after the
    // last one got through.
    let (hold, keepalive) = (Duration::from_secs(9), Duration::from_secs(3));
    let mut graceful = Vec::new();
    for n in &lab.nodes {
        let up = n.tern.peer("upstream").unwrap();
        assert_eq!(up["negotiated"]["hold_time"], 9, "{up:#}");
        assert_eq!(up["negotiated"]["keepalive"], 3, "{up:#}");
        graceful.push(up["negotiated"]["graceful_restart"].clone());
    }
    let learned_by: Vec<Vec<String>> = lab.nodes.iter().map(|n| learned(&lab, n.id.x)).collect();
    let learned_by = &learned_by;

    // FRR's port on the segment goes down: FRR is gone for the nodes,
    // whose own links stay up (the next hop still looks reachable).
    let router = lab.router(0);
    lab.segment().netns().link_down(&router.port);
    let start = Instant::now();
    let deadline = hold + timeout(6);
    let first = time_per_node(&lab, start, deadline, |x, routes| {
        learned_by[usize::from(x) - 1]
            .iter()
            .any(|p| kernel::find(routes, p).is_none())
    });
    let all = time_per_node(&lab, start, deadline, |x, routes| {
        learned_by[usize::from(x) - 1]
            .iter()
            .all(|p| kernel::find(routes, p).is_none())
    });
    let mut report = vec![format!("FRR's link down at 0 s; hold time {hold:?}")];
    for ((name, first), (_, all)) in first.iter().zip(&all) {
        report.push(format!(
            "{name}: first learned route gone after {first:?}, all after {all:?}"
        ));
    }
    // What tern says meanwhile (for the record if they did not go).
    let mut state = Vec::new();
    for (n, gr) in lab.nodes.iter().zip(&graceful) {
        let up = n.tern.peer("upstream").unwrap();
        let stale = n
            .tern
            .routes("peer=upstream")
            .map(|r| {
                r.iter()
                    .flat_map(|x| x["paths"].as_array().cloned().unwrap_or_default())
                    .filter(|p| p["stale"] == true)
                    .count()
            })
            .unwrap_or(0);
        state.push(format!(
            "{}: upstream {} (last error {}), {stale} stale paths from upstream in the Loc-RIB; graceful restart negotiated before: {gr}",
            n.name(),
            up["state"],
            up["last_error"],
        ));
    }

    // The link comes back: the sessions come back, and the routes.
    lab.segment().netns().link_up(&router.port);
    let start = Instant::now();
    let back = time_per_node(&lab, start, session_timeout(), |x, routes| {
        learned_by[usize::from(x) - 1]
            .iter()
            .all(|p| kernel::find(routes, p).is_some())
    });
    for (name, t) in &back {
        report.push(format!("{name}: link up, learned routes all back after {t:?}"));
    }
    println!("{}\n{}", report.join("\n"), state.join("\n"));

    for ((name, first), (_, all)) in first.iter().zip(&all) {
        let ctx = || format!("{}\n{}", report.join("\n"), state.join("\n"));
        let first = first.unwrap_or_else(|| {
            panic!(
                "{name}: no learned route left the kernel within {deadline:?} of FRR's link going down\n{}",
                ctx()
            )
        });
        let all = all.unwrap_or_else(|| {
            panic!(
                "{name}: learned routes still in the kernel after {deadline:?}\n{}",
                ctx()
            )
        });
        // Not before the hold time can have run out, and not long after.
        assert!(
            first >= hold - keepalive - Duration::from_millis(500),
            "{name}: a learned route left after {first:?}, before the hold time could run out\n{}",
            ctx()
        );
        assert!(
            all <= hold + Duration::from_secs(2),
            "{name}: all gone only after {all:?}\n{}",
            ctx()
        );
    }
    for (name, t) in &back {
        assert!(
            t.is_some(),
            "{name}: the routes did not come back\n{}",
            report.join("\n")
        );
    }
}

/// A route of another protocol that marks, in `ip monitor` recordings,
/// where a restart begins and ends.
const MARKER: &str = "10.250.0.1";

/// `ip monitor route nexthop` in namespaces of the lab (nodes, routers),
/// between markers.
struct Recording {
    monitors: Vec<(String, Monitor, usize)>,
}

/// The node's or router's namespace called `name`.
fn lab_netns<'a>(lab: &'a Topology, name: &str) -> &'a interop_tests::Netns {
    lab.nodes
        .iter()
        .map(|n| &n.ns)
        .chain(lab.routers.iter().map(|r| &r.ns))
        .find(|ns| ns.name() == name)
        .unwrap_or_else(|| panic!("no namespace {name} in the lab"))
}

impl Recording {
    /// Starts recording in each namespace and puts the begin marker.
    #[track_caller]
    fn start(lab: &Topology, namespaces: &[&interop_tests::Netns]) -> Recording {
        let monitors = namespaces
            .iter()
            .map(|ns| {
                let m = Monitor::start(
                    ns,
                    lab.work(),
                    &format!("{}-monitor", ns.name()),
                    &["route", "nexthop"],
                );
                let begin = m.mark(ns, MARKER);
                (ns.name().to_owned(), m, begin)
            })
            .collect();
        Recording { monitors }
    }

    /// Puts the end markers; returns per namespace the lines recorded
    /// between the markers that `relevant` picks.
    #[track_caller]
    fn finish(self, lab: &Topology, relevant: impl Fn(&str) -> bool) -> Vec<(String, Vec<String>)> {
        self.monitors
            .into_iter()
            .map(|(name, m, begin)| {
                let end = m.unmark(lab_netns(lab, &name), MARKER, begin + 1);
                let lines = m.lines();
                let picked = lines[begin + 1..end]
                    .iter()
                    .filter(|l| relevant(l))
                    .cloned()
                    .collect();
                (name, picked)
            })
            .collect()
    }
}

/// A line of `ip monitor` about `prefix` (`10.96.2.10/32` shows as
/// `10.96.2.10`).
fn mentions(line: &str, prefix: &str) -> bool {
    let host = prefix.strip_suffix("/32").or_else(|| prefix.strip_suffix("/128"));
    line.split_whitespace().any(|w| w == prefix || Some(w) == host)
}

/// A line of `ip monitor` about one of tern's routes or nexthop objects.
fn is_terns(line: &str) -> bool {
    line.contains("proto bgp") || line.contains("proto 186")
}

/// The counters of tern's peer `peer` on node `n`.
/// The paths a node's tern holds from its Cilium peer for `prefixes`.
fn cilium_paths(n: &Node, prefixes: &[String]) -> Result<Vec<Value>, String> {
    let mut paths = Vec::new();
    for prefix in prefixes {
        paths.extend(
            n.tern
                .paths(prefix)?
                .into_iter()
                .filter(|x| x["peer"] == "cilium"),
        );
    }
    Ok(paths)
}

fn peer_counter(n: &Node, peer: &str, key: &str) -> u64 {
    let p = n.tern.peer(peer).unwrap();
    p[key].as_u64().unwrap_or_else(|| panic!("no {key} in {p:#}"))
}

/// Scenario 6. Node 2's Cilium agent restarts: GoBGP goes away without a
/// NOTIFICATION, comes back with the R bit and announces again. tern keeps
/// Cilium's routes as stale meanwhile, so nothing moves: FRR has node 2's
/// routes at every poll (100 ms), FRR sends the other nodes no update,
/// node 2's tern sends FRR none, and `ip monitor` in every node and in the
/// router records no change to tern's routes or node 2's prefixes.
#[test]
fn scenario_6_cilium_agent_restart_flaps_nothing() {
    let Some(mut lab) = cluster("s6").start() else {
        return;
    };
    lab.wait_converged();
    assert_router_learned_every_node(&lab, lab.router(0));
    let own2 = lab.node(2).own_prefixes();

    // What would show a flap: updates from FRR to the other nodes, updates
    // from node 2's tern to FRR, any change to tern's kernel routes on any
    // node, any change to node 2's routes in FRR's kernel; and FRR's table
    // polled every 100 ms.
    let received_before: Vec<u64> = [1, 3]
        .iter()
        .map(|x| peer_counter(lab.node(*x), "upstream", "updates_received"))
        .collect();
    let sent_before = peer_counter(lab.node(2), "upstream", "updates_sent");
    let namespaces: Vec<&interop_tests::Netns> = lab
        .nodes
        .iter()
        .map(|n| &n.ns)
        .chain([&lab.router(0).ns])
        .collect();
    let recording = Recording::start(&lab, &namespaces);
    drop(namespaces);
    let watch = RouterWatch::start(lab.router(0), &own2);

    // Cilium's agent stops: it stops its BGP server without a NOTIFICATION
    // (graceful restart), so the TCP connection just closes; SIGKILL does
    // exactly that.
    let t = Instant::now();
    lab.node_mut(2).gobgp.kill();
    let n2 = lab.node(2);
    let stale = wait_until(
        route_timeout(),
        "node-22's tern to keep Cilium's routes, stale",
        || {
            let p = n2.tern.peer("cilium")?;
            let paths = cilium_paths(n2, &own2)?;
            if p["state"] != "established"
                && paths.len() == own2.len()
                && paths.iter().all(|x| x["stale"] == true)
            {
                Ok(paths)
            } else {
                Err(format!("peer {p:#}\npaths {paths:#?}"))
            }
        },
    );
    println!(
        "GoBGP killed: after {:?}, node-22's tern keeps {} stale paths from cilium",
        t.elapsed(),
        stale.len()
    );

    // The agent comes back: GoBGP restarts with the R bit and Cilium adds
    // its routes again, before the session is up (it takes GoBGP 5 s to
    // dial).
    lab.node_mut(2).gobgp.start_again(true);
    let n2 = lab.node(2);
    for p in &own2 {
        n2.gobgp.add_route(p, &[]);
    }
    let g = n2.gobgp.wait_established("::1", session_timeout());
    println!(
        "GoBGP back after {:?}: graceful restart {}",
        t.elapsed(),
        g["graceful_restart"]
    );
    // tern saw the R bit: Cilium says it restarted.
    let p = n2.tern.peer("cilium").unwrap();
    assert_eq!(
        p["negotiated"]["graceful_restart"]["peer_restarting"], true,
        "{p:#}"
    );
    wait_until(
        session_timeout(),
        "node-22's tern: Cilium back, its routes fresh (End-of-RIB)",
        || {
            let p = n2.tern.peer("cilium")?;
            let paths = cilium_paths(n2, &own2)?;
            if p["state"] == "established"
                && p["established_transitions"] == 2
                && paths.len() == own2.len()
                && paths.iter().all(|x| x["stale"] == false)
            {
                Ok(())
            } else {
                Err(format!("peer {p:#}\npaths {paths:#?}"))
            }
        },
    );
    println!("restart over after {:?}", t.elapsed());
    // Nothing follows late: FRR still has all of node 2's routes.
    holds_for(
        timeout(2),
        "FRR keeps node 2's routes after the restart",
        || {
            own2.iter()
                .map(|p| lab.router(0).best_path(p))
                .collect::<Vec<_>>()
        },
        |v| v.iter().all(|b| matches!(b, Ok(Some(_)))),
    );

    let report = watch.finish();
    let changes = recording.finish(&lab, |l| is_terns(l) || own2.iter().any(|p| mentions(l, p)));
    println!(
        "FRR watch: {} polls, {} saw a stale path, missing: {:?}",
        report.polls, report.stale, report.missing
    );
    for (ns, lines) in &changes {
        println!(
            "{ns}: {} changes to tern's routes or node 2's prefixes",
            lines.len()
        );
    }
    assert!(report.polls > 10, "{report:#?}");
    assert!(report.missing.is_empty(), "node 2's routes left FRR: {report:#?}");
    assert_eq!(report.stale, 0, "FRR saw node 2's routes stale: {report:#?}");
    for (ns, lines) in &changes {
        assert!(
            lines.is_empty(),
            "{ns}: routes changed during the restart:\n{}",
            lines.join("\n")
        );
    }
    let received_after: Vec<u64> = [1, 3]
        .iter()
        .map(|x| peer_counter(lab.node(*x), "upstream", "updates_received"))
        .collect();
    assert_eq!(
        received_after, received_before,
        "FRR sent nodes 1 and 3 updates during node 2's Cilium restart"
    );
    let sent_after = peer_counter(lab.node(2), "upstream", "updates_sent");
    assert_eq!(
        sent_after, sent_before,
        "node 2's tern sent FRR updates during the restart"
    );
}

/// Scenario 7. tern on node 2 restarts, with SIGTERM then with SIGKILL.
/// The kernel routes stay (SIGTERM: not a single change); FRR keeps node
/// 2's routes throughout, as graceful-restart helper; a route that went
/// stale while tern was down (node 3 withdrew its VIPs) is removed once
/// routing has converged, and nothing else changes; afterwards nothing is
/// stale, in FRR or in tern. `tests/fib.rs` (`restarts_change_nothing_in_the_kernel`)
/// shows the zero-change restarts in a two-node lab.
#[test]
fn scenario_7_tern_restarts_keep_the_kernel_routes_and_leave_nothing_stale() {
    let Some(mut lab) = cluster("s7").start() else {
        return;
    };
    lab.wait_converged();
    assert_router_learned_every_node(&lab, lab.router(0));
    let own2 = lab.node(2).own_prefixes();
    let before = lab.node(2).route_snapshot();
    let learned2 = learned(&lab, 2);
    assert_eq!(
        before.len(),
        learned2.len() + lab.node(2).vips.len(),
        "{before:#?}"
    );
    let watch = RouterWatch::start(lab.router(0), &own2);

    // SIGTERM, then start: nothing changes in node 2's kernel.
    let recording = Recording::start(&lab, &[&lab.node(2).ns]);
    let status = lab.node_mut(2).tern.stop().unwrap();
    assert!(status.success(), "tern did not exit cleanly on SIGTERM: {status}");
    lab.node_mut(2).tern.start_again();
    let fib = lab.node(2).wait_restarted(before.len());
    println!("after SIGTERM and start: fib {fib}");
    assert_eq!(lab.node(2).route_snapshot(), before);
    let changes = recording.finish(&lab, is_terns);
    assert!(changes[0].1.is_empty(), "node-22's kernel changed: {changes:#?}");

    // SIGKILL; while tern is down, node 3's Cilium withdraws its VIPs: the
    // routes node 2's kernel still has for them are stale. After the
    // start they go, once routing has converged; nothing else changes.
    let recording = Recording::start(&lab, &[&lab.node(2).ns]);
    lab.node_mut(2).tern.kill().unwrap();
    let gone = lab.node(3).vips.clone();
    for p in &gone {
        lab.node(3).gobgp.del_route(p);
    }
    wait_until(route_timeout(), "node 3's VIPs gone from FRR", || {
        let left: Vec<&String> = gone
            .iter()
            .filter(|p| !matches!(lab.router(0).best_path(p), Ok(None)))
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
    let stale_routes = lab.node(2).bgp_routes().unwrap();
    assert!(
        gone.iter().all(|p| kernel::find(&stale_routes, p).is_some()),
        "tern's routes went with it: {stale_routes:#?}"
    );
    lab.node_mut(2).tern.start_again();
    let fib = lab.node(2).wait_restarted(before.len() - gone.len());
    println!("after SIGKILL and start: fib {fib}");
    let expected: Vec<(String, Vec<Hop>)> = before
        .iter()
        .filter(|(p, _)| !gone.contains(p))
        .cloned()
        .collect();
    assert_eq!(lab.node(2).route_snapshot(), expected);
    let changes = recording.finish(&lab, is_terns);
    let lines = &changes[0].1;
    println!(
        "node-22's kernel during the SIGKILL restart:\n{}",
        lines.join("\n")
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains("Deleted") && gone.iter().any(|p| mentions(l, p))),
        "node-22's kernel: other changes than the stale routes' removal:\n{}",
        lines.join("\n")
    );
    assert!(
        gone.iter().all(|p| lines.iter().any(|l| mentions(l, p))),
        "the stale routes' removal was not recorded:\n{}",
        lines.join("\n")
    );

    // FRR kept node 2's routes throughout, as a helper, and nothing is
    // stale there or in tern once all sessions are back.
    let report = watch.finish();
    println!(
        "FRR watch: {} polls, {} saw a stale path, missing: {:?}",
        report.polls, report.stale, report.missing
    );
    assert!(report.polls > 10, "{report:#?}");
    assert!(report.missing.is_empty(), "node 2's routes left FRR: {report:#?}");
    assert!(
        report.stale > 0,
        "FRR never marked node 2's routes stale: {report:#?}"
    );
    wait_until(route_timeout(), "no stale path in FRR or node 2's tern", || {
        let mut stale = Vec::new();
        for p in &own2 {
            let paths = lab.router(0).frr().paths(p)?;
            if paths.iter().any(|x| x.stale) {
                stale.push(format!("FRR: {p}: {paths:?}"));
            }
        }
        for r in lab.node(2).tern.routes("")? {
            for path in r["paths"].as_array().into_iter().flatten() {
                if path["stale"] == true {
                    stale.push(format!("tern: {}: {path}", r["prefix"]));
                }
            }
        }
        if stale.is_empty() {
            Ok(())
        } else {
            Err(stale.join("\n"))
        }
    });
}

/// Scenario 9. bird2 in place of FRR, the same propagation: bird2 learns
/// every node's prefixes with the node's address as next hop, the nodes
/// learn the others' from bird2 and install them, bird2 installs what it
/// learned (`protocol kernel`), and pods on different nodes ping each
/// other through it.
#[test]
fn scenario_9_bird2_in_place_of_frr_propagates_the_same() {
    let Some(lab) = cluster("s9").bird().start() else {
        return;
    };
    lab.wait_converged();
    let bird = lab.router(0);
    // bird2 learns every node's VIPs and pod CIDRs, next hop the node.
    let report = assert_router_learned_every_node(&lab, bird);
    println!("bird2's best paths:\n{}", report.join("\n"));
    // Every node learns the others' prefixes and the defaults from bird2,
    // and installs them through it.
    assert_nodes_learned_from_the_router(&lab);
    assert_kernels(&lab, ROUTER_V6);
    for n in &lab.nodes {
        expect::tern_upstream_session(&n.tern.peer("upstream").unwrap(), ROUTER_ASN);
    }
    // bird2 installed what it learned (`protocol kernel`), so it forwards
    // between the nodes: every pod reaches every other node's pod.
    let routes = kernel::routes(&bird.ns, &["proto", "bird"]).unwrap();
    for n in &lab.nodes {
        for p in n.own_prefixes() {
            let r =
                kernel::find(&routes, &p).unwrap_or_else(|| panic!("{p} not in bird2's kernel: {routes:#?}"));
            assert_eq!(
                r.gateways(),
                [n.id.v6().as_str()],
                "{p} in bird2's kernel: {r:#?}"
            );
        }
    }
    let pings = ping_all_pairs(&lab);
    println!("{}", pings.join("\n"));
}

/// Scenario 10. A reload adds a peer and changes a policy: on node 1, a
/// SIGHUP (by PID) adds a peer for a second router and an import policy
/// that rejects node 3's pod CIDRs (they leave the Loc-RIB and the kernel,
/// node 2's routes get both routers as next hops); then `tern reload`
/// removes the policy (they come back). Cilium's and the first router's
/// sessions are never reset: one establishment each, uptime growing, no
/// NOTIFICATION, FRR and GoBGP saw no drop.
#[test]
fn scenario_10_reload_adds_a_peer_and_changes_a_policy_without_touching_other_sessions() {
    // Two routers; node 1's tern starts without a peer for the second.
    let Some(mut lab) = cluster("s10").routers(2).skip_upstream(1, 1).start() else {
        return;
    };
    lab.wait_converged();
    let router_b: Upstream = lab.router(1).up.clone();
    let both: Vec<Upstream> = vec![lab.router(0).up.clone(), router_b.clone()];
    let node3 = lab.node(3).id.pod_cidrs().to_vec();
    let node2 = lab.node(2).own_prefixes();
    let n1 = lab.node(1);
    let before: Vec<Value> = ["cilium", "upstream"]
        .iter()
        .map(|p| n1.tern.peer(p).unwrap())
        .collect();
    for p in &before {
        assert_eq!(p["established_transitions"], 1, "{p:#}");
    }
    let frr_before = lab.router(0).frr().neighbor(&n1.id.v6()).unwrap();
    let gobgp_before = n1.gobgp.neighbor("::1").unwrap();
    let routes = n1.bgp_routes().unwrap();
    for p in node3.iter().chain(&node2) {
        let r = kernel::find(&routes, p).unwrap_or_else(|| panic!("no {p}: {routes:#?}"));
        assert_eq!(r.hops, [via6(ROUTER_V6)], "{p}: {r:#?}");
    }
    let t = Instant::now();

    // 1. SIGHUP: a peer for router B, and an import policy on both
    // upstreams that rejects node 3's pod CIDRs.
    let policy = format!(
        r#"
[[policy]]
name = "not-node-3-pods"

[[policy.statement]]
name = "reject"
match.prefixes = ["{}", "{}"]
action = "reject"
"#,
        node3[0], node3[1]
    );
    let config = n1.tern_config_for(&both, "import = [\"not-node-3-pods\"]\n", &[], &policy);
    lab.node_mut(1).tern.set_config(&config);
    lab.node_mut(1).tern.hup();
    let n1 = lab.node(1);
    let b = n1.tern.wait_established(&router_b.name, session_timeout());
    lab.router(1)
        .frr()
        .wait_established(&n1.id.v6(), session_timeout());
    println!("SIGHUP: {} established after {:?}", router_b.name, t.elapsed());
    assert_eq!(b["established_transitions"], 1, "{b:#}");
    // Node 3's pod CIDRs leave the Loc-RIB and the kernel; node 2's routes
    // now go through both routers.
    n1.wait_kernel(&refs(&node3), false);
    for p in &node3 {
        let paths = n1.tern.paths(p).unwrap();
        assert!(paths.is_empty(), "{p} still in node-21's Loc-RIB: {paths:#?}");
    }
    let hops = [via6(&router_b.v6), via6(ROUTER_V6)];
    let routes = wait_until(route_timeout(), "node 2's prefixes through both routers", || {
        let routes = n1.bgp_routes()?;
        if node2
            .iter()
            .all(|p| kernel::find(&routes, p).is_some_and(|r| r.hops == hops))
        {
            Ok(routes)
        } else {
            Err(format!("{routes:#?}"))
        }
    });
    for p in &node2 {
        let gateways = kernel::find(&routes, p).map(KernelRoute::gateways);
        println!("after SIGHUP: {p} via {gateways:?}");
    }
    assert_sessions_untouched(&lab, &before, &frr_before, &gobgp_before, t);

    // 2. `tern reload`: the policy goes again; node 3's pod CIDRs come back
    // (through both routers), still without a session reset.
    let config = lab.node(1).tern_config_for(&both, "", &[], "");
    lab.node_mut(1).tern.set_config(&config);
    let out = lab.node(1).tern.reload_cli().unwrap();
    println!("tern reload: {}", out.trim());
    let n1 = lab.node(1);
    wait_until(
        route_timeout(),
        "node 3's pod CIDRs back through both routers",
        || {
            let routes = n1.bgp_routes()?;
            if node3
                .iter()
                .all(|p| kernel::find(&routes, p).is_some_and(|r| r.hops == hops))
            {
                Ok(())
            } else {
                Err(format!("{routes:#?}"))
            }
        },
    );
    assert_sessions_untouched(&lab, &before, &frr_before, &gobgp_before, t);
    let b = n1.tern.peer(&router_b.name).unwrap();
    assert_eq!(b["established_transitions"], 1, "{b:#}");
}

/// Node 1's sessions with Cilium and router A were not reset since `t`:
/// tern counts one establishment each and their uptime kept growing; FRR
/// and GoBGP saw no drop.
#[track_caller]
fn assert_sessions_untouched(
    lab: &Topology,
    before: &[Value],
    frr_before: &Value,
    gobgp_before: &Value,
    t: Instant,
) {
    let n1 = lab.node(1);
    for b in before {
        let name = b["name"].as_str().unwrap();
        let now = n1.tern.peer(name).unwrap();
        assert_eq!(now["state"], "established", "{now:#}");
        assert_eq!(now["established_transitions"], 1, "{name} was reset: {now:#}");
        let (up_before, up_now) = (b["uptime"].as_u64().unwrap(), now["uptime"].as_u64().unwrap());
        assert!(
            up_now + 1 >= up_before + t.elapsed().as_secs(),
            "{name}: uptime {up_before} s, {:?} later {up_now} s",
            t.elapsed()
        );
        assert_eq!(now["notifications_sent"], 0, "{now:#}");
        assert_eq!(now["notifications_received"], 0, "{now:#}");
    }
    let frr = lab.router(0).frr().neighbor(&n1.id.v6()).unwrap();
    for key in ["connectionsEstablished", "connectionsDropped"] {
        assert_eq!(
            frr[key], frr_before[key],
            "FRR's session with node 1: {key}: {frr:#}"
        );
    }
    let g = n1.gobgp.neighbor("::1").unwrap();
    assert_eq!(
        g["timers"]["state"]["uptime"], gobgp_before["timers"]["state"]["uptime"],
        "GoBGP's session with tern was reset: {g:#}"
    );
}
