//! tern programs the kernel: the routes it learns from the upstream routers
//! appear in and leave the node's kernel as they are announced and
//! withdrawn, go with the links and addresses they depend on, are put back
//! when someone else changes them, and survive tern's restarts untouched;
//! and pods on different nodes reach each other over them.
//!
//! Each test builds its own lab ([`Topology`]: an L2 segment, FRR
//! routers, nodes with tern, a Cilium-like GoBGP and pods) in its own
//! namespaces, so they run in parallel. When one fails, the output shows
//! every daemon's state and every namespace's routes at that moment, then
//! the logs; the work dir is kept.

use std::time::{Duration, Instant};

use interop_tests::kernel::{self, Hop, KernelRoute, Monitor};
use interop_tests::lab::{RouterWatch, route_timeout};
use interop_tests::{Topology, holds_for, timeout, wait_until};
use serde_json::Value;

/// The first router's address: the next hop of everything learned from it.
const ROUTER_V6: &str = "fd00:101::fffe";
const ROUTER_B_V6: &str = "fd00:101::fffd";

/// A next hop through `gateway` on the uplink, as `ip route` shows an IPv6
/// gateway (also for an IPv4 route: `via inet6 GATEWAY`).
fn via6(gateway: &str) -> Hop {
    Hop {
        gateway: Some(gateway.to_owned()),
        family: Some("inet6".to_owned()),
        dev: Some("eth-up".to_owned()),
    }
}

/// The route for `dst` in `routes`, panicking with all of them if missing.
#[track_caller]
fn route<'a>(routes: &'a [KernelRoute], dst: &str) -> &'a KernelRoute {
    kernel::find(routes, dst).unwrap_or_else(|| panic!("no route for {dst} in {routes:#?}"))
}

/// An installed learned route: main table, metric 512, the next hops given.
#[track_caller]
fn assert_learned(routes: &[KernelRoute], dst: &str, hops: &[Hop]) {
    let r = route(routes, dst);
    assert_eq!(
        (r.kind.as_str(), r.table.as_str(), r.metric),
        ("unicast", "main", Some(512)),
        "{dst}: {r:#?}"
    );
    assert_eq!(r.hops, hops, "{dst}: {r:#?}");
}

#[test]
fn routes_follow_announcements_and_withdrawals() {
    let Some(lab) = Topology::builder("fib-follow").start() else {
        return;
    };
    lab.wait_sessions();
    let (n1, n2) = (lab.node(1), lab.node(2));
    let [remote4, remote6] = n2.id.pod_cidrs();
    let remote = [remote4.as_str(), remote6.as_str()];

    let routes = n1.wait_kernel(&remote, true);
    // IPv4 over an IPv6 next hop (RFC 8950): `ip route` shows
    // `10.224.2.0/24 [nhid N] via inet6 fd00:101::fffe dev eth-up`.
    assert_learned(&routes, &remote4, &[via6(ROUTER_V6)]);
    let r = route(&routes, &remote4);
    let via = if r.json.get("via").is_some() {
        r.json["via"].clone()
    } else {
        r.json["nexthops"][0]["via"].clone()
    };
    assert_eq!(
        via,
        serde_json::json!({"family": "inet6", "host": ROUTER_V6}),
        "{remote4}: {r:#?}"
    );
    assert_learned(&routes, &remote6, &[via6(ROUTER_V6)]);
    // The default routes come from the router the same way.
    assert_learned(&routes, "0.0.0.0/0", &[via6(ROUTER_V6)]);
    assert_learned(&routes, "::/0", &[via6(ROUTER_V6)]);

    // Never the node's own pod CIDRs, although tern has them (from Cilium)
    // and the router knows them.
    let own = n1.id.pod_cidrs();
    for p in &own {
        wait_until(
            route_timeout(),
            &format!("{p} from cilium in node 1's Loc-RIB"),
            || {
                let paths = n1.tern.paths(p)?;
                if paths.iter().any(|x| x["peer"] == "cilium") {
                    Ok(())
                } else {
                    Err(format!("{paths:#?}"))
                }
            },
        );
        wait_until(route_timeout(), &format!("{p} in the router's table"), || {
            let paths = lab.router(0).frr().paths(p)?;
            if paths.iter().any(|x| x.valid && x.best) {
                Ok(())
            } else {
                Err(format!("{paths:?}"))
            }
        });
    }
    holds_for(
        timeout(2),
        "node 1's own pod CIDRs not in its kernel",
        || n1.bgp_routes(),
        |r| matches!(r, Ok(r) if own.iter().all(|p| kernel::find(r, p).is_none())),
    );

    // Node 2's Cilium withdraws its pod CIDRs: gone from node 1's kernel;
    // the default routes stay.
    let t = Instant::now();
    for p in remote {
        n2.gobgp.del_route(p);
    }
    let routes = n1.wait_kernel(&remote, false);
    println!("withdrawn from node 1's kernel after {:?}", t.elapsed());
    assert!(kernel::find(&routes, "0.0.0.0/0").is_some(), "{routes:#?}");
    assert!(kernel::find(&routes, "::/0").is_some(), "{routes:#?}");

    // Announced again: back.
    let t = Instant::now();
    for p in remote {
        n2.gobgp.add_route(p, &[]);
    }
    let routes = n1.wait_kernel(&remote, true);
    println!("back in node 1's kernel after {:?}", t.elapsed());
    assert_learned(&routes, &remote4, &[via6(ROUTER_V6)]);
    assert_learned(&routes, &remote6, &[via6(ROUTER_V6)]);
}

#[test]
fn ecmp_over_two_upstreams() {
    // Both routers originate the same prefixes (AS paths of length 1 from
    // two neighbour ASes: equal with as-path-relax) and send defaults.
    let Some(lab) = Topology::builder("fib-ecmp")
        .nodes(1)
        .routers(2)
        .router_network("10.200.0.0/24")
        .router_network("fd00:200::/64")
        .start()
    else {
        return;
    };
    lab.wait_sessions();
    let n1 = lab.node(1);
    let prefixes = ["10.200.0.0/24", "fd00:200::/64", "0.0.0.0/0", "::/0"];
    // Hops are sorted: ::fffd before ::fffe.
    let both = [via6(ROUTER_B_V6), via6(ROUTER_V6)];
    let routes = wait_until(
        route_timeout(),
        "two next hops for each prefix in node 1's kernel",
        || {
            let routes = n1.bgp_routes()?;
            let wrong: Vec<&str> = prefixes
                .iter()
                .copied()
                .filter(|p| kernel::find(&routes, p).is_none_or(|r| r.hops != both))
                .collect();
            if wrong.is_empty() {
                Ok(routes)
            } else {
                Err(format!("not two next hops: {wrong:?}\n{routes:#?}"))
            }
        },
    );
    for p in prefixes {
        assert_learned(&routes, p, &both);
    }
    // tern's view: two paths, both used.
    for p in ["10.200.0.0/24", "fd00:200::/64"] {
        let paths = n1.tern.paths(p).unwrap();
        let mut peers: Vec<&str> = paths
            .iter()
            .filter(|x| x["best"] == true || x["multipath"] == true)
            .filter_map(|x| x["peer"].as_str())
            .collect();
        peers.sort();
        assert_eq!(peers, ["upstream", "upstream-b"], "{p}: {paths:#?}");
    }
    // Where the kernel has nexthop objects (it does here), the route
    // points at a group of two, shared by all four routes; otherwise it
    // carries both next hops itself (RTA_MULTIPATH).
    let r = route(&routes, "10.200.0.0/24");
    let fib = n1.tern.fib().unwrap();
    assert_eq!(
        fib["nexthop_objects"].as_bool(),
        Some(r.nhid.is_some()),
        "{fib:#}\n{r:#?}"
    );
    if let Some(id) = r.nhid {
        let objects = kernel::nexthops(&n1.ns).unwrap();
        let group = objects
            .iter()
            .find(|o| o["id"].as_u64() == Some(id))
            .unwrap_or_else(|| panic!("no nexthop {id}: {objects:#?}"));
        assert_eq!(group["group"].as_array().map(Vec::len), Some(2), "{group:#}");
        for p in prefixes {
            assert_eq!(route(&routes, p).nhid, Some(id), "{p}: {routes:#?}");
        }
    }

    // Router B stops originating them: one next hop left; the defaults
    // keep both.
    lab.router(1).frr().configure(&[
        &format!("router bgp {}", lab.router(1).up.asn),
        "address-family ipv4 unicast",
        "no network 10.200.0.0/24",
        "exit-address-family",
        "address-family ipv6 unicast",
        "no network fd00:200::/64",
    ]);
    let one = [via6(ROUTER_V6)];
    let routes = wait_until(route_timeout(), "one next hop left for the test prefixes", || {
        let routes = n1.bgp_routes()?;
        let done = ["10.200.0.0/24", "fd00:200::/64"]
            .iter()
            .all(|p| kernel::find(&routes, p).is_some_and(|r| r.hops == one));
        if done {
            Ok(routes)
        } else {
            Err(format!("{routes:#?}"))
        }
    });
    assert_learned(&routes, "10.200.0.0/24", &one);
    assert_learned(&routes, "fd00:200::/64", &one);
    assert_learned(&routes, "0.0.0.0/0", &both);
    assert_learned(&routes, "::/0", &both);
}

/// What node 1 learns from the router in a 2-node lab.
const LEARNED: [&str; 4] = ["10.224.2.0/24", "fd00:101:224:2::/64", "0.0.0.0/0", "::/0"];

/// Waits until `/api/v1/fib` lists every prefix as unresolved; returns it.
#[track_caller]
fn wait_unresolved(node: &interop_tests::Node, prefixes: &[&str]) -> Value {
    wait_until(
        route_timeout(),
        &format!("{prefixes:?} unresolved in {}'s /api/v1/fib", node.name()),
        || {
            let fib = node.tern.fib()?;
            let unresolved: Vec<&str> = fib["unresolved_prefixes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if prefixes.iter().all(|p| unresolved.contains(p)) {
                Ok(fib.clone())
            } else {
                Err(format!("{fib:#}"))
            }
        },
    )
}

#[test]
fn link_flap_and_address_change_are_followed() {
    let Some(lab) = Topology::builder("fib-link").start() else {
        return;
    };
    lab.wait_converged();
    let n1 = lab.node(1);
    let all_via_router = |routes: &[KernelRoute]| {
        for p in LEARNED {
            assert_learned(routes, p, &[via6(ROUTER_V6)]);
        }
    };

    // The uplink goes down: the kernel drops the routes through it, and
    // tern does not put them back: their next hop no longer resolves. The
    // session is still up (hold time 9 s), so tern still has the routes.
    n1.ns.link_down("eth-up");
    let t = Instant::now();
    n1.wait_kernel(&LEARNED, false);
    let fib = wait_unresolved(n1, &LEARNED);
    println!("link down: gone after {:?}; fib {fib}", t.elapsed());
    holds_for(
        timeout(2),
        "no learned route in node 1's kernel while its uplink is down",
        || n1.bgp_routes(),
        |r| matches!(r, Ok(r) if LEARNED.iter().all(|p| kernel::find(r, p).is_none())),
    );

    // Up again: back (the session may have to come back first).
    n1.ns.link_up("eth-up");
    let t = Instant::now();
    let routes = n1.wait_kernel_within(timeout(30), &LEARNED, true);
    println!("link up: back after {:?}", t.elapsed());
    all_via_router(&routes);
    let fib = n1.tern.fib().unwrap();
    assert_eq!(fib["unresolved"], 0, "{fib:#}");
    assert_eq!(fib["unresolved_prefixes"], serde_json::json!([]), "{fib:#}");

    // The node's address on the uplink goes away: the next hop is no
    // longer on a connected prefix.
    n1.ns.ip(&["addr", "del", "fd00:101::21/64", "dev", "eth-up"]);
    let t = Instant::now();
    n1.wait_kernel(&LEARNED, false);
    let fib = wait_unresolved(n1, &LEARNED);
    println!("address removed: gone after {:?}; fib {fib}", t.elapsed());

    // Added back: back.
    n1.ns.add_addr("eth-up", "fd00:101::21/64");
    let t = Instant::now();
    let routes = n1.wait_kernel_within(timeout(30), &LEARNED, true);
    println!("address back: routes back after {:?}", t.elapsed());
    all_via_router(&routes);
}

/// `repairs` in `/api/v1/fib`.
fn repairs(node: &interop_tests::Node) -> u64 {
    let fib = node.tern.fib().unwrap();
    fib["repairs"]
        .as_u64()
        .unwrap_or_else(|| panic!("no repairs in {fib:#}"))
}

#[test]
fn drift_is_repaired() {
    // Node 1 scans every 60 s (the default): a deletion it sees is
    // repaired by the early scan the event triggers. Node 2 scans every
    // 2 s: a replaced route (no deletion event) is found by the scan.
    let Some(lab) = Topology::builder("fib-drift").fib(2, "scan-interval = 2").start() else {
        return;
    };
    lab.wait_converged();
    let (n1, n2) = (lab.node(1), lab.node(2));

    // Someone deletes two of tern's routes on node 1.
    let before = repairs(n1);
    let remote: Vec<String> = n2.id.pod_cidrs().to_vec();
    for p in &remote {
        n1.ns.ip(&["route", "del", p, "proto", "186"]);
    }
    let t = Instant::now();
    let routes = n1.bgp_routes().unwrap();
    assert!(
        remote.iter().all(|p| kernel::find(&routes, p).is_none()),
        "the deletion did not happen: {routes:#?}"
    );
    let remote_refs: Vec<&str> = remote.iter().map(String::as_str).collect();
    let routes = n1.wait_kernel_within(timeout(5), &remote_refs, true);
    let took = t.elapsed();
    println!("deleted routes back after {took:?}");
    for p in &remote {
        assert_learned(&routes, p, &[via6(ROUTER_V6)]);
    }
    let fib = n1.tern.fib().unwrap();
    assert!(
        fib["repairs"].as_u64().unwrap_or(0) >= before + 2,
        "repairs {before} before: {fib:#}"
    );
    let metric = n1.tern.metric("tern_fib_repairs").unwrap();
    assert_eq!(
        metric as u64,
        repairs(n1),
        "tern_fib_repairs and /api/v1/fib disagree"
    );
    // Well before the first periodic scan (60 s after start).
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // The log names what was repaired.
    let log = n1.tern.log();
    let line = log
        .lines()
        .find(|l| l.contains("drifted") && remote.iter().all(|p| l.contains(p.as_str())))
        .unwrap_or_else(|| panic!("no repair line naming {remote:?} in:\n{log}"));
    println!("{line}");

    // Someone deletes tern's nexthop objects on node 1: the kernel drops
    // every route that uses them, without a word about the routes. tern
    // writes the objects again, then the routes.
    let objects = |n: &interop_tests::Node| -> Vec<String> {
        n.ns.ip(&["nexthop", "show", "proto", "186"])
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .collect()
    };
    let ids = objects(n1);
    assert!(!ids.is_empty(), "tern uses nexthop objects here");
    let before = repairs(n1);
    let learned: Vec<String> = n1
        .bgp_routes()
        .unwrap()
        .iter()
        .filter(|r| r.table == "main" && r.nhid.is_some())
        .map(|r| r.dst.clone())
        .collect();
    for id in &ids {
        n1.ns.ip(&["nexthop", "del", "id", id]);
    }
    let t = Instant::now();
    let learned_refs: Vec<&str> = learned.iter().map(String::as_str).collect();
    let routes = n1.wait_kernel_within(timeout(5), &learned_refs, true);
    println!(
        "{} routes back {:?} after their {} nexthop objects were deleted",
        learned.len(),
        t.elapsed(),
        ids.len()
    );
    for p in &remote {
        assert_learned(&routes, p, &[via6(ROUTER_V6)]);
    }
    assert_eq!(objects(n1).len(), ids.len(), "the objects are back");
    let fib = n1.tern.fib().unwrap();
    assert_eq!(fib["failing"], 0, "{fib:#}");
    assert!(
        fib["repairs"].as_u64().unwrap_or(0) > before,
        "repairs {before} before: {fib:#}"
    );

    // Someone replaces two of tern's routes on node 2 with other next
    // hops, same protocol and metric.
    let before = repairs(n2);
    let scans_before = n2.tern.fib().unwrap()["scans"].as_u64().unwrap_or(0);
    n2.ns.ip(&[
        "route",
        "replace",
        "10.224.1.0/24",
        "via",
        "10.101.0.99",
        "dev",
        "eth-up",
        "proto",
        "186",
        "metric",
        "512",
    ]);
    n2.ns.ip(&[
        "-6",
        "route",
        "replace",
        "fd00:101:224:1::/64",
        "via",
        "fd00:101::99",
        "dev",
        "eth-up",
        "proto",
        "186",
        "metric",
        "512",
    ]);
    // (Not read back here: the next scan may already have repaired them;
    // the repairs counter below shows the scan found them changed.)
    let t = Instant::now();
    let routes = wait_until(timeout(6), "node 2's replaced routes repaired", || {
        let routes = n2.bgp_routes()?;
        let done = ["10.224.1.0/24", "fd00:101:224:1::/64"]
            .iter()
            .all(|p| kernel::find(&routes, p).is_some_and(|r| r.hops == [via6(ROUTER_V6)]));
        if done {
            Ok(routes)
        } else {
            Err(format!("{routes:#?}"))
        }
    });
    println!("replaced routes repaired after {:?}", t.elapsed());
    assert_learned(&routes, "10.224.1.0/24", &[via6(ROUTER_V6)]);
    assert_learned(&routes, "fd00:101:224:1::/64", &[via6(ROUTER_V6)]);
    let fib = n2.tern.fib().unwrap();
    assert!(
        fib["repairs"].as_u64().unwrap_or(0) >= before + 2,
        "repairs {before} before: {fib:#}"
    );
    assert!(
        fib["scans"].as_u64().unwrap_or(0) > scans_before,
        "no scan since {scans_before}: {fib:#}"
    );
    let metric = n2.tern.metric("tern_fib_repairs").unwrap();
    assert_eq!(
        metric as u64,
        repairs(n2),
        "tern_fib_repairs and /api/v1/fib disagree"
    );
}

/// A route of another protocol that marks, in the `ip monitor` recording,
/// where the restarts begin and end.
const MARKER: &str = "10.250.0.1";

#[test]
fn restarts_change_nothing_in_the_kernel() {
    let Some(mut lab) = Topology::builder("fib-restart").start() else {
        return;
    };
    lab.wait_converged();
    let own: Vec<String> = lab.node(1).id.pod_cidrs().to_vec();
    // FRR has node 1's routes before we start watching.
    for p in &own {
        wait_until(route_timeout(), &format!("{p} in the router's BGP table"), || {
            let paths = lab.router(0).frr().paths(p)?;
            if paths.iter().any(|x| x.valid && x.best) {
                Ok(())
            } else {
                Err(format!("{paths:?}"))
            }
        });
    }
    let before = lab.node(1).route_snapshot();
    assert_eq!(before.len(), LEARNED.len(), "{before:#?}");

    // Record every route and nexthop change in node 1's kernel; a route of
    // another protocol marks where the restarts begin and end (and shows
    // that the recording works).
    let monitor = Monitor::start(
        &lab.node(1).ns,
        lab.work(),
        "node-21-monitor",
        &["route", "nexthop"],
    );
    let begin = monitor.mark(&lab.node(1).ns, MARKER);
    let watch = RouterWatch::start(lab.router(0), &own);

    // SIGTERM, then start: with graceful restart, tern leaves its routes.
    let status = lab.node_mut(1).tern.stop().unwrap();
    assert!(status.success(), "tern did not exit cleanly on SIGTERM: {status}");
    lab.node_mut(1).tern.start_again();
    let fib = lab.node(1).wait_restarted(before.len());
    println!("after SIGTERM and start: fib {fib}");
    assert_eq!(lab.node(1).route_snapshot(), before);

    // SIGKILL, then start.
    lab.node_mut(1).tern.kill().unwrap();
    lab.node_mut(1).tern.start_again();
    let fib = lab.node(1).wait_restarted(before.len());
    println!("after SIGKILL and start: fib {fib}");
    assert_eq!(lab.node(1).route_snapshot(), before);

    let end = monitor.unmark(&lab.node(1).ns, MARKER, begin + 1);
    let report = watch.finish();

    let lines = monitor.lines();
    let between = &lines[begin + 1..end];
    let ours: Vec<&String> = between
        .iter()
        .filter(|l| l.contains("proto bgp") || l.contains(" 186"))
        .collect();
    println!(
        "ip monitor route nexthop during both restarts: {} lines, {} of proto 186",
        between.len(),
        ours.len()
    );
    println!(
        "FRR watch: {} polls, {} saw a stale path",
        report.polls, report.stale
    );
    // Not a single route or nexthop object of ours changed.
    assert!(
        ours.is_empty(),
        "node 1's kernel changed during the restarts:\n{}",
        between.join("\n")
    );
    assert!(report.polls > 10, "{report:#?}");
    assert!(
        report.missing.is_empty(),
        "node 1's routes left the router during the restarts: {report:#?}"
    );
}

#[test]
fn pods_on_two_nodes_reach_each_other() {
    let Some(mut lab) = Topology::builder("fib-ping")
        .fib(1, "keep-routes-on-stop = false")
        .start()
    else {
        return;
    };
    lab.wait_converged();
    let (v4, v6) = lab.node(2).id.pod_addrs(10);
    for dst in [&v4, &v6] {
        let out = lab
            .node(1)
            .pod(10)
            .ping(dst)
            .unwrap_or_else(|e| panic!("node 1's pod cannot reach {dst}: {e}"));
        println!("{out}");
    }

    // Control: tern stops on node 1 and takes its routes with it
    // (keep-routes-on-stop = false), default routes included: the pods
    // are cut off.
    let status = lab.node_mut(1).tern.stop().unwrap();
    assert!(status.success(), "tern did not exit cleanly on SIGTERM: {status}");
    let routes = lab.node(1).bgp_routes().unwrap();
    assert!(routes.is_empty(), "tern left routes: {routes:#?}");
    for dst in [&v4, &v6] {
        let r = lab.node(1).pod(10).ping(dst);
        println!("without tern's routes: {r:?}");
        assert!(r.is_err(), "node 1's pod still reaches {dst}: {r:?}");
    }
}

/// `tern show routes` says for each route whether and how it is in the
/// kernel, or why not: another node's pod CIDR installed via the router, a
/// VIP as a local route, the node's own pod CIDR never.
#[test]
fn show_routes_says_where_each_route_is_in_the_kernel() {
    let Some(lab) = Topology::builder("fib-show").vips().start() else {
        return;
    };
    lab.wait_converged();
    let (n1, n2) = (lab.node(1), lab.node(2));
    let [remote4, _] = n2.id.pod_cidrs();
    let [own4, _] = n1.id.pod_cidrs();
    let [vip4, _] = n1.id.vips();
    let show = |what: &str| {
        n1.tern
            .show_args(&["routes", what])
            .unwrap_or_else(|e| panic!("tern show routes {what}: {e}"))
    };
    let line = |text: &str, prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{prefix} ")) && l.contains("installed"))
            .unwrap_or_else(|| panic!("no kernel line for {prefix} in:\n{text}"))
            .to_owned()
    };
    let text = show(&remote4);
    let l = line(&text, &remote4);
    assert!(
        l.contains(&format!(
            "installed: route: via {ROUTER_V6} dev eth-up, table main, metric 512"
        )),
        "{l}"
    );
    // An address inside it finds it too (longest match).
    let inside = remote4.replace(".0/24", ".7");
    assert_eq!(line(&show(&inside), &remote4), l);
    let text = show(&own4);
    let l = line(&text, &own4);
    assert!(l.contains("not installed: the node's own prefix"), "{l}");
    let text = show(&vip4);
    let l = line(&text, &vip4);
    assert!(
        l.contains("installed: VIP route: local dev lo, table local"),
        "{l}"
    );
    // The API says the same.
    let routes = n1.tern.routes(&format!("prefix={remote4}")).expect("routes");
    assert_eq!(routes[0]["kernel"]["installed"], true, "{routes:#?}");
    assert!(routes[0]["paths"][0]["age"].is_u64(), "{routes:#?}");
}
