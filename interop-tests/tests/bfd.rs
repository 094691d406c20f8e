//! BFD against FRR's bfdd (issue 11): sessions come Up for an IPv6 and an
//! IPv4 peer and both sides agree on them; a node cut off the segment
//! (its bridge port stops forwarding; no link goes down) leaves FRR's
//! table within a second, where only the hold timer found it before; a
//! router cut off the same way leaves the node's kernel as fast.
//!
//! Detection times are printed per trial, with and without BFD.

use std::time::{Duration, Instant};

use interop_tests::feeder::{add_feeder_addresses, connect, main_prefixes, table, with_feeder};
use interop_tests::lab::RouterWatch;
use interop_tests::{Monitor, Topology, time_until, timeout, wait_until};
use serde_json::Value;

/// tern's BFD sessions on node `x`.
fn tern_bfd(lab: &Topology, x: u8) -> Result<Vec<Value>, String> {
    let v = lab.node(x).tern.get("/api/v1/bfd")?;
    Ok(v["sessions"].as_array().cloned().unwrap_or_default())
}

/// Waits until node `x` and the router agree that the sessions to
/// `addresses` (FRR's peers, tern's remotes) are Up; returns (tern's, FRR's).
fn wait_up(lab: &Topology, x: u8, pairs: &[(&str, &str)]) -> Vec<(Value, Value)> {
    wait_until(timeout(20), "BFD Up on both sides", || {
        let tern = tern_bfd(lab, x)?;
        let frr = lab.router(0).frr().bfd_peers()?;
        let mut out = Vec::new();
        for (node_addr, router_addr) in pairs {
            let t = tern
                .iter()
                .find(|s| s["remote"] == *router_addr)
                .ok_or_else(|| format!("tern has no session to {router_addr}: {tern:?}"))?;
            let f = frr
                .iter()
                .find(|p| p["peer"] == *node_addr)
                .ok_or_else(|| format!("FRR has no session to {node_addr}: {frr:?}"))?;
            if t["state"] != "up" || f["status"] != "up" {
                return Err(format!("tern {} / FRR {}", t["state"], f["status"]));
            }
            out.push((t.clone(), f.clone()));
        }
        Ok(out)
    })
}

/// The node's bridge port stops (or starts again) forwarding: the node
/// is cut off with every link still up.
fn cut(lab: &Topology, x: u8, off: bool) {
    let port = lab.node(x).port.clone();
    let state = if off { "0" } else { "3" };
    lab.segment()
        .netns()
        .exec(&["bridge", "link", "set", "dev", &port, "state", state])
        .expect("bridge link set");
}

/// The router forwards to `prefix`: FRR installed its best path in the
/// router's kernel (read with `ip`, a few milliseconds, so the times
/// measured are FRR's and not the poll's).
fn router_has(lab: &Topology, prefix: &str) -> bool {
    lab.router(0)
        .ns
        .exec(&["ip", "route", "show", prefix])
        .is_ok_and(|out| !out.trim().is_empty())
}

#[test]
fn bfd_comes_up_with_frr_for_ipv6_and_ipv4_and_both_agree() {
    let up = interop_tests::lab::Upstream::nth(0);
    let node = interop_tests::lab::NodeId { x: 1 };
    let v4_peer = format!(
        "[[peer]]\nname = \"upstream-v4\"\naddress = \"{}\"\nremote-asn = {}\nrole = \"upstream\"\nlocal-address = \"{}\"\nfamilies = [\"ipv4-unicast\"]\nconnect-retry = 1\nhold-time = 9\nbfd = true\n",
        up.v4,
        up.asn,
        node.v4()
    );
    let Some(lab) = Topology::builder("bfd-up")
        .nodes(1)
        .bfd()
        .tern_extra(1, &v4_peer)
        .start()
    else {
        return;
    };
    lab.router(0).frr().configure(&[
        &format!("router bgp {}", up.asn),
        &format!("neighbor {} remote-as {}", node.v4(), node.asn()),
        &format!("neighbor {} timers connect 1", node.v4()),
        &format!("neighbor {} bfd", node.v4()),
        "address-family ipv4 unicast",
        &format!("neighbor {} activate", node.v4()),
    ]);
    lab.wait_sessions();
    let sessions = wait_up(&lab, 1, &[(&node.v6(), &up.v6), (&node.v4(), &up.v4)]);
    for (t, f) in &sessions {
        println!(
            "tern: {} {} tx {} ms detect {} ms, discriminators {}/{}; FRR: {} {} tx {} ms, remote tx {} ms",
            t["remote"],
            t["state"],
            t["tx_interval_ms"],
            t["detection_time_ms"],
            t["local_discriminator"],
            t["remote_discriminator"],
            f["peer"],
            f["status"],
            f["transmit-interval"],
            f["remote-transmit-interval"]
        );
        assert_eq!(t["remote_discriminator"], f["id"], "discriminators");
        assert_eq!(t["local_discriminator"], f["remote-id"], "discriminators");
        assert_eq!(t["tx_interval_ms"], 300);
        assert_eq!(t["detection_time_ms"], 900);
        assert_eq!(t["remote_multiplier"], 3);
        assert_eq!(f["remote-transmit-interval"], 300, "FRR sees our timers");
        assert_eq!(f["remote-receive-interval"], 300);
        assert_eq!(f["remote-detect-multiplier"], 3);
        assert_eq!(t["multihop"], false);
    }
    let text = lab.node(1).tern.show("bfd").expect("tern show bfd");
    println!("{text}");
    assert!(text.contains("upstream-v4") && text.contains(" up "), "{text}");
    let metric = lab.node(1).tern.get_text("/metrics").expect("metrics");
    assert!(
        metric.contains("tern_bfd_session_up{peer=\"upstream-v4\"} 1"),
        "{metric}"
    );
    // The Cilium session has no BFD and is untouched.
    assert_eq!(
        lab.node(1).tern.peer("cilium").expect("peer")["state"],
        "established"
    );
    assert!(tern_bfd(&lab, 1).unwrap().iter().all(|s| s["peer"] != "cilium"));
}

/// Cuts node 1 off `trials` times, each time once BGP (and BFD, with
/// `bfd`) is back up; returns how long FRR kept its pod CIDR each time
/// (with `bfd`), or how long until FRR's session to it went down
/// (without: graceful restart then keeps the routes, stale, for the
/// node's restart time).
fn node_loss_trials(lab: &Topology, trials: usize, bfd: bool, within: Duration) -> Vec<Duration> {
    let prefix = lab.node(1).id.pod_cidrs()[0].clone();
    let node = lab.node(1).id.v6();
    let up = lab.router(0).up.v6.clone();
    let mut times = Vec::new();
    for trial in 1..=trials {
        lab.wait_sessions();
        if bfd {
            wait_up(lab, 1, &[(&node, &up)]);
        }
        wait_until(timeout(30), "the node's pod CIDR at the router", || {
            if router_has(lab, &prefix) {
                Ok(())
            } else {
                Err("not yet".into())
            }
        });
        cut(lab, 1, true);
        let gone = if bfd {
            let t = time_until(within, "the router to drop the cut-off node's routes", || {
                !router_has(lab, &prefix)
            });
            println!("trial {trial}: the router dropped {prefix} after {t:.0?}");
            t
        } else {
            let frr = lab.router(0).frr();
            let t = time_until(within, "the router's session to the node down", || {
                frr.neighbor(&node).is_ok_and(|n| n["bgpState"] != "Established")
            });
            println!(
                "trial {trial}: the router's session went down after {t:.0?}; {prefix} kept (stale): {}",
                router_has(lab, &prefix)
            );
            t
        };
        times.push(gone);
        cut(lab, 1, false);
    }
    times
}

#[test]
fn a_lost_node_leaves_the_router_within_a_second_with_bfd() {
    let Some(lab) = Topology::builder("bfd-node").nodes(1).bfd().start() else {
        return;
    };
    lab.wait_sessions();
    let with = node_loss_trials(&lab, 10, true, Duration::from_secs(3));
    drop(lab);
    // The same without BFD: the hold timer (9 s here) finds it.
    let Some(lab) = Topology::builder("bfd-none").nodes(1).start() else {
        return;
    };
    let without = node_loss_trials(&lab, trials_without(), false, Duration::from_secs(20));
    println!("{}", summary("with BFD (300 ms x 3)", &with));
    println!(
        "{}",
        summary("without BFD (hold time 9 s), until the session is down", &without)
    );
    let worst = with.iter().max().copied().unwrap_or_default();
    assert!(worst < Duration::from_secs(1), "BFD took {worst:?}");
}

/// Trials without BFD: each waits out a hold time (`TERN_BFD_TRIALS`,
/// default 3; the comparison is 10).
fn trials_without() -> usize {
    std::env::var("TERN_BFD_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn summary(what: &str, times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    let ms: Vec<String> = times.iter().map(|t| format!("{}", t.as_millis())).collect();
    format!(
        "{what}: {} trials, median {:.0?}, worst {:.0?} (ms: {})",
        times.len(),
        sorted.get(sorted.len() / 2).copied().unwrap_or_default(),
        sorted.last().copied().unwrap_or_default(),
        ms.join(", ")
    )
}

/// The gateways of node 1's route to `prefix` (tern's), sorted.
fn gateways(lab: &Topology, prefix: &str) -> Vec<String> {
    lab.node(1)
        .bgp_routes()
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.dst == prefix)
        .map(|r| r.hops.into_iter().filter_map(|h| h.gateway).collect())
        .unwrap_or_default()
}

#[test]
fn a_lost_router_leaves_the_nodes_kernel_within_a_second_and_ecmp_falls_back() {
    let prefix = "10.99.0.0/24";
    let Some(lab) = Topology::builder("bfd-router")
        .nodes(1)
        .routers(2)
        .bfd()
        .router_network(prefix)
        .start()
    else {
        return;
    };
    lab.wait_sessions();
    let both = {
        let mut v = vec![lab.router(0).up.v6.clone(), lab.router(1).up.v6.clone()];
        v.sort();
        v
    };
    let survivor = vec![lab.router(1).up.v6.clone()];
    let mut times = Vec::new();
    for trial in 1..=5 {
        wait_until(timeout(30), "BFD Up to both routers and ECMP over both", || {
            let s = tern_bfd(&lab, 1)?;
            let up = s.iter().filter(|s| s["state"] == "up").count();
            let g = gateways(&lab, prefix);
            if up == 2 && g == both {
                Ok(())
            } else {
                Err(format!("{up} BFD sessions up, gateways {g:?}"))
            }
        });
        let port = lab.router(0).port.clone();
        let bridge = lab.segment().netns();
        bridge
            .exec(&["bridge", "link", "set", "dev", &port, "state", "0"])
            .expect("cut");
        let t = time_until(
            Duration::from_secs(3),
            "the route to fall back to the surviving router",
            || gateways(&lab, prefix) == survivor,
        );
        println!("trial {trial}: {prefix} only via the surviving router after {t:.0?}");
        times.push(t);
        bridge
            .exec(&["bridge", "link", "set", "dev", &port, "state", "3"])
            .expect("restore");
    }
    println!("{}", summary("router loss with BFD (300 ms x 3)", &times));
    let worst = times.iter().max().copied().unwrap_or_default();
    assert!(worst < Duration::from_secs(1), "BFD took {worst:?}");
    // The peer without BFD (Cilium) stayed up throughout.
    let cilium = lab.node(1).tern.peer("cilium").expect("peer");
    assert_eq!(cilium["state"], "established");
    assert_eq!(cilium["established_transitions"], 1, "{cilium}");
}

/// Node 1's pod CIDRs at the router, best and valid.
fn wait_at_router(lab: &Topology, prefixes: &[String]) {
    for p in prefixes {
        wait_until(timeout(30), &format!("{p} at the router"), || {
            let paths = lab.router(0).frr().paths(p)?;
            if paths.iter().any(|x| x.valid && x.best) {
                Ok(())
            } else {
                Err(format!("{paths:?}"))
            }
        });
    }
}

/// A one-node lab with BFD, converged: BFD Up to the router and the
/// node's pod CIDRs at the router. Returns the lab, the node's and the
/// router's addresses, those CIDRs and the node's routes.
struct Ready {
    lab: Topology,
    node: String,
    up: String,
    own: Vec<String>,
    before: Vec<(String, Vec<interop_tests::Hop>)>,
}

fn ready(tag: &str) -> Option<Ready> {
    let lab = Topology::builder(tag).nodes(1).bfd().start()?;
    lab.wait_converged();
    let node = lab.node(1).id.v6();
    let up = lab.router(0).up.v6.clone();
    wait_up(&lab, 1, &[(&node, &up)]);
    let own: Vec<String> = lab.node(1).id.pod_cidrs().to_vec();
    wait_at_router(&lab, &own);
    let before = lab.node(1).route_snapshot();
    Some(Ready {
        lab,
        node,
        up,
        own,
        before,
    })
}

/// A route of another protocol that marks the restarts in the recording.
const MARKER: &str = "10.250.0.1";

#[test]
fn planned_restarts_and_reloads_stay_hitless_with_bfd() {
    let Some(Ready {
        mut lab,
        node,
        up,
        own,
        before,
    }) = ready("bfd-restart")
    else {
        return;
    };
    let monitor = Monitor::start(
        &lab.node(1).ns,
        lab.work(),
        "node-21-monitor",
        &["route", "nexthop"],
    );
    let begin = monitor.mark(&lab.node(1).ns, MARKER);
    let watch = RouterWatch::start(lab.router(0), &own);
    let c0 = frr_bfd_counters(&lab, &node);

    // SIGTERM, then start, three times.
    for round in 1..=3 {
        let status = lab.node_mut(1).tern.stop().unwrap();
        assert!(status.success(), "tern did not exit cleanly on SIGTERM: {status}");
        lab.node_mut(1).tern.start_again();
        lab.node(1).wait_restarted(before.len());
        wait_up(&lab, 1, &[(&node, &up)]);
        println!("restart {round}: BFD and BGP back");
    }
    // A reload that changes the BFD timers: a Poll Sequence, no flap.
    let profile = "[[bfd-profile]]\nname = \"default\"\nmin-rx = 200\nmin-tx = 200\n";
    let config = lab.node(1).tern_config(&[], profile);
    lab.node_mut(1).tern.set_config(&config);
    println!("{}", lab.node(1).tern.reload_cli().expect("reload"));
    // FRR hears the new intervals (its own 300 ms still bound what is
    // sent to it), and nothing flapped.
    let flaps = tern_bfd(&lab, 1).expect("bfd")[0]["flaps"].clone();
    wait_until(timeout(10), "FRR to see the new timers", || {
        let f = lab.router(0).frr().bfd_peers()?;
        let p = f.iter().find(|p| p["peer"] == node).ok_or("no session")?;
        if p["remote-receive-interval"] == 200 && p["remote-transmit-interval"] == 200 && p["status"] == "up"
        {
            Ok(())
        } else {
            Err(format!("{p}"))
        }
    });
    let s = tern_bfd(&lab, 1).expect("bfd");
    assert_eq!(
        (s[0]["state"].clone(), s[0]["flaps"].clone()),
        ("up".into(), flaps)
    );
    let end = monitor.unmark(&lab.node(1).ns, MARKER, begin + 1);
    let report = watch.finish();
    let lines = monitor.lines();
    let ours: Vec<&String> = lines[begin + 1..end]
        .iter()
        .filter(|l| l.contains("proto bgp") || l.contains(" 186"))
        .collect();
    println!(
        "FRR watch: {} polls, {} saw a stale path; {} kernel changes of tern's",
        report.polls,
        report.stale,
        ours.len()
    );
    assert!(ours.is_empty(), "node 1's kernel changed: {ours:#?}");
    assert!(report.polls > 10, "{report:#?}");
    assert!(
        report.missing.is_empty(),
        "node 1's routes left the router: {report:#?}"
    );
    assert_eq!(lab.node(1).route_snapshot(), before);
    // FRR's BFD session never went down: each restart took it over.
    let c = frr_bfd_counters(&lab, &node);
    println!("FRR's BFD counters for the node: before the restarts {c0}, after {c}");
    assert_eq!(
        c["session-down"], c0["session-down"],
        "FRR's BFD session went down: {c}"
    );
}

/// FRR's BFD counters for its session to `peer`.
fn frr_bfd_counters(lab: &Topology, peer: &str) -> Value {
    let all = lab
        .router(0)
        .frr()
        .json("show bfd peers counters json")
        .expect("counters");
    all.as_array()
        .and_then(|a| a.iter().find(|p| p["peer"] == peer))
        .cloned()
        .unwrap_or_default()
}

/// SIGKILL is a crash of tern, not of the node: the kernel closes its TCP
/// connections at once, so FRR starts helping a graceful restart (routes
/// kept, stale) before BFD's Detection Time passes; when it passes, the
/// BGP session is already down and FRR takes no action. tern comes back
/// (after 2 s, as systemd's `RestartSec=2` has it) and nothing was lost:
/// not at FRR, not in the node's kernel. (A node that dies takes no TCP
/// connection down: BFD finds it, as `a_lost_node_...` shows.)
#[test]
fn sigkill_of_tern_keeps_the_routes_at_the_router_and_in_the_kernel() {
    let Some(Ready {
        mut lab,
        node,
        up,
        own,
        before,
    }) = ready("bfd-kill")
    else {
        return;
    };
    let watch = RouterWatch::start(lab.router(0), &own);
    let t = Instant::now();
    lab.node_mut(1).tern.kill().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let c = frr_bfd_counters(&lab, &node);
    println!(
        "2 s after SIGKILL: FRR's BFD session {}, counters {c}",
        lab.router(0)
            .frr()
            .bfd_peers()
            .unwrap_or_default()
            .iter()
            .find(|p| p["peer"] == node)
            .map(|p| p["status"].to_string())
            .unwrap_or_default()
    );
    assert_eq!(
        lab.node(1).route_snapshot(),
        before,
        "the node's kernel lost routes"
    );
    lab.node_mut(1).tern.start_again();
    lab.node(1).wait_restarted(before.len());
    wait_up(&lab, 1, &[(&node, &up)]);
    let report = watch.finish();
    println!(
        "SIGKILL, 2 s, start: BGP and BFD back {:.1?} after the kill; FRR watch: {} polls, {} saw the routes stale",
        t.elapsed(),
        report.polls,
        report.stale
    );
    assert!(
        report.missing.is_empty(),
        "the node's routes left the router: {report:#?}"
    );
    assert!(
        report.stale > 0,
        "FRR did not help a graceful restart: {report:#?}"
    );
    assert_eq!(lab.node(1).route_snapshot(), before);
}

/// Under a table load from a feeder (`TERN_BFD_LOAD_ROUTES`, default
/// 300,000 in the suite; the run is 1,000,000 with a release
/// build), BFD at 300 ms x 3 never goes Down: tern's session does not flap
/// and FRR's never went down, while tern decodes, selects and installs.
#[test]
fn bfd_never_goes_down_while_a_full_table_loads() {
    let routes: u32 = std::env::var("TERN_BFD_LOAD_ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let Some(lab) = with_feeder(Topology::builder("bfd-load").nodes(1).bfd()).start() else {
        return;
    };
    add_feeder_addresses(&lab);
    lab.wait_converged();
    let node = lab.node(1).id.v6();
    let up = lab.router(0).up.v6.clone();
    wait_up(&lab, 1, &[(&node, &up)]);
    let c0 = frr_bfd_counters(&lab, &node);
    let flaps = |lab: &Topology| {
        tern_bfd(lab, 1)
            .ok()
            .and_then(|s| s.iter().find(|s| s["peer"] == "upstream").cloned())
            .map(|s| (s["state"].clone(), s["flaps"].clone()))
    };
    let before = flaps(&lab);
    let ns = &lab.node(1).ns;
    let target = main_prefixes(ns) + routes as usize;
    let bytes = table(routes);
    let mut f = connect(&lab);
    let t = Instant::now();
    let sender = std::thread::spawn(move || {
        f.send(&bytes);
        f
    });
    let mut checks = 0;
    loop {
        let now = flaps(&lab);
        assert_eq!(
            now,
            before,
            "BFD changed during the load ({checks} checks in, {:.1?})",
            t.elapsed()
        );
        checks += 1;
        if main_prefixes(ns) >= target {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(900), "the table did not load");
        std::thread::sleep(Duration::from_millis(200));
    }
    let loaded = t.elapsed();
    // And a few detection times after.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(flaps(&lab), before);
    let c = frr_bfd_counters(&lab, &node);
    assert_eq!(
        c["session-down"], c0["session-down"],
        "FRR's BFD session went down: {c}"
    );
    println!(
        "{routes} routes in the kernel after {loaded:.1?}; BFD (300 ms x 3) stayed up on both sides ({checks} checks of tern's, FRR's counters {c})"
    );
    drop(sender.join().expect("sender"));
}

/// A peer more than one hop away by configuration (`multihop = 2` here,
/// `ebgp-multihop 2` on FRR): a multihop session (RFC 5883, port 4784) on
/// both sides, Up, and a failure still found by it.
#[test]
fn a_multihop_peer_gets_a_multihop_session() {
    let Some(mut lab) = Topology::builder("bfd-mh").nodes(1).bfd().start() else {
        return;
    };
    lab.wait_sessions();
    let node = lab.node(1).id.clone();
    let up = lab.router(0).up.clone();
    lab.router(0).frr().configure(&[
        &format!("router bgp {}", up.asn),
        &format!("neighbor {} ebgp-multihop 2", node.v6()),
    ]);
    let upstreams = lab.node(1).upstreams.clone();
    let config = lab.node(1).tern_config_for(&upstreams, "multihop = 2\n", &[], "");
    lab.node_mut(1).tern.set_config(&config);
    println!("{}", lab.node(1).tern.reload_cli().expect("reload"));
    let (t, f) = wait_until(timeout(30), "a multihop BFD session Up on both sides", || {
        let t = tern_bfd(&lab, 1)?.into_iter().next().ok_or("no session")?;
        let f = lab
            .router(0)
            .frr()
            .bfd_peers()?
            .into_iter()
            .find(|p| p["peer"] == node.v6() && p["multihop"] == true)
            .ok_or("FRR has no multihop session")?;
        if t["multihop"] == true && t["state"] == "up" && f["status"] == "up" {
            Ok((t, f))
        } else {
            Err(format!("tern {t}\nFRR {f}"))
        }
    });
    println!(
        "tern: {} {} multihop; FRR: {} {} multihop",
        t["remote"], t["state"], f["peer"], f["status"]
    );
    assert_eq!(t["remote_discriminator"], f["id"]);
    // Still finds a cut-off node.
    lab.wait_sessions();
    let prefix = node.pod_cidrs()[0].clone();
    wait_until(timeout(30), "the pod CIDR at the router", || {
        if router_has(&lab, &prefix) {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    cut(&lab, 1, true);
    let gone = time_until(
        Duration::from_secs(3),
        "the router to drop the node's routes",
        || !router_has(&lab, &prefix),
    );
    println!("multihop: the router dropped {prefix} after {gone:.0?}");
    cut(&lab, 1, false);
    assert!(gone < Duration::from_secs(1), "{gone:?}");
}
