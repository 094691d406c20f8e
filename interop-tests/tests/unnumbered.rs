//! BGP unnumbered, dual-homed (issue 15), against two FRR routers that
//! peer with `neighbor IFACE interface remote-as external`, as in the
//! reference designs of Talos's BGP and frr-k8s:
//!
//! ```text
//!            ┌── up1 ── r1 (FRR, AS 65101) ── far1 ──┐
//!   node ────┤                                        ├── far (FRR, AS 65003)
//!  (tern)    └── up2 ── r2 (FRR, AS 65102) ── far2 ──┘    10.244.2.0/24
//!  10.244.1.0/24
//! ```
//!
//! No link has a global address: every session runs over IPv6 link-local
//! addresses, found from router advertisements, and IPv4 rides on it with
//! RFC 8950 next hops. The far node's pod CIDRs must reach the node's
//! kernel as ECMP over both routers' link-local addresses; pings cross;
//! one uplink cut (no link goes down: the router's port drops everything)
//! leaves ECMP within BFD's detection time; restored, it comes back.

use std::time::{Duration, Instant};

use interop_tests::kernel::{KernelRoute, bgp_routes, find};
use interop_tests::lab::RouterWatch;
use interop_tests::{
    Frr, FrrOptions, Monitor, Netns, Tern, WorkDir, require_root, timeout, unique_name, veth, wait_until,
};
use serde_json::Value;

const FAR_V4: &str = "10.244.2.0/24";
const FAR_V6: &str = "fd00:244:2::/64";

fn router_conf(name: &str, asn: u32, id: &str, down: &str, far: &str) -> String {
    format!(
        "frr defaults traditional
hostname {name}
debug bgp neighbor-events
debug bgp updates
debug bgp graceful-restart
!
router bgp {asn}
 bgp router-id {id}
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
 neighbor {down} interface remote-as external
 neighbor {down} bfd
 neighbor {far} interface remote-as external
 address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
 address-family ipv6 unicast
  neighbor {down} activate
  neighbor {far} activate
  maximum-paths 8
 exit-address-family
!
"
    )
}

const FAR_CONF: &str = "frr defaults traditional
hostname far
!
router bgp 65003
 bgp router-id 10.255.0.3
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp bestpath as-path multipath-relax
 neighbor far1 interface remote-as external
 neighbor far2 interface remote-as external
 address-family ipv4 unicast
  network 10.244.2.0/24
  maximum-paths 8
 exit-address-family
 address-family ipv6 unicast
  neighbor far1 activate
  neighbor far2 activate
  network fd00:244:2::/64
  maximum-paths 8
 exit-address-family
!
";

const TERN_CONF: &str = r#"router-id = "10.255.1.1"
asn = 65001
hostname = "node"
listen = ["[::]:179"]
originate = ["10.244.1.0/24", "fd00:244:1::/64"]

[[peer]]
name = "uplink1"
interface = "up1"
remote-asn = 65101
role = "upstream"
connect-retry = 1
bfd = true

[[peer]]
name = "uplink2"
interface = "up2"
remote-asn = 65102
role = "upstream"
connect-retry = 1
bfd = true

[fib]
"#;

fn router_ns(name: &str) -> Netns {
    let ns = Netns::new(&unique_name(name));
    ns.sysctl("net.ipv4.ip_forward", "1");
    ns.sysctl("net.ipv6.conf.all.forwarding", "1");
    ns
}

/// A node's pod addresses (on its loopback: enough to answer pings).
fn pods(ns: &Netns, v4: &str, v6: &str) {
    ns.add_addr("lo", v4);
    ns.add_addr("lo", v6);
}

/// The router's port towards the node drops everything, both ways, while
/// the link stays up (`off`), or forwards again.
fn cut(router: &Netns, port: &str, off: bool) {
    if off {
        let rules = format!(
            "table netdev cut {{
  chain in {{ type filter hook ingress device \"{port}\" priority 0; policy drop; }}
  chain out {{ type filter hook egress device \"{port}\" priority 0; policy drop; }}
}}
"
        );
        router.exec_stdin(&["nft", "-f", "-"], &rules).expect("nft cut");
    } else {
        router
            .exec(&["nft", "delete", "table", "netdev", "cut"])
            .expect("nft uncut");
    }
}

/// The devices tern forwards `prefix` over, if it has a route.
fn devices(routes: &[KernelRoute], prefix: &str) -> Vec<String> {
    let Some(r) = find(routes, prefix) else {
        return Vec::new();
    };
    let mut devs: Vec<String> = r.hops.iter().filter_map(|h| h.dev.clone()).collect();
    devs.sort();
    devs
}

/// Waits until the node forwards both far prefixes over exactly `devs`,
/// each through a link-local IPv6 gateway; returns how long that took.
#[track_caller]
fn wait_forwarding(node: &Netns, devs: &[&str], within: Duration) -> Duration {
    let t = Instant::now();
    wait_until(within, &format!("the far prefixes via {devs:?}"), || {
        let routes = bgp_routes(node)?;
        for p in [FAR_V4, FAR_V6] {
            let r = find(&routes, p).ok_or(format!("no route to {p}: {routes:?}"))?;
            let got = devices(&routes, p);
            let link_local = r.hops.iter().all(|h| {
                h.gateway.as_deref().is_some_and(|g| g.starts_with("fe80:"))
                    && h.family.as_deref() == Some("inet6")
            });
            if got != devs || !link_local {
                return Err(format!("{p}: {:?}", r.hops));
            }
        }
        Ok(())
    });
    t.elapsed()
}

/// FRR's BFD counters for its session on `port`.
fn bfd_counters(frr: &Frr, port: &str) -> Value {
    let all = frr.json("show bfd peers counters json").expect("counters");
    all.as_array()
        .and_then(|a| a.iter().find(|p| p["interface"] == port))
        .cloned()
        .unwrap_or_default()
}

/// tern's routes in the kernel, as (prefix, next hops), sorted.
fn snapshot(node: &Netns) -> Vec<(String, Vec<interop_tests::Hop>)> {
    let mut v: Vec<_> = bgp_routes(node)
        .expect("routes")
        .into_iter()
        .map(|r| (r.dst, r.hops))
        .collect();
    v.sort();
    v
}

fn ping(node: &Netns, to: &str, from: &str) -> Result<String, String> {
    node.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", from, to])
}

#[test]
fn unnumbered_dual_homed_node_with_ecmp_over_link_local_next_hops() {
    if !require_root() {
        return;
    }
    let work = WorkDir::new("unnumbered");
    let node = Netns::new(&unique_name("un-node"));
    node.sysctl("net.ipv4.ip_forward", "1");
    node.sysctl("net.ipv6.conf.all.forwarding", "1");
    let r1 = router_ns("un-r1");
    let r2 = router_ns("un-r2");
    let far = router_ns("un-far");
    veth(&node, "up1", &r1, "down1");
    veth(&node, "up2", &r2, "down2");
    veth(&far, "far1", &r1, "far1");
    veth(&far, "far2", &r2, "far2");
    pods(&node, "10.244.1.1/32", "fd00:244:1::1/128");
    pods(&far, "10.244.2.1/32", "fd00:244:2::1/128");

    let routing = FrrOptions {
        install_routes: true,
        bfd: Some(String::new()),
        ..FrrOptions::default()
    };
    let fr1 = Frr::start_with(
        &r1,
        &work,
        "r1",
        &router_conf("r1", 65101, "10.255.0.1", "down1", "far1"),
        &routing,
    );
    let fr2 = Frr::start_with(
        &r2,
        &work,
        "r2",
        &router_conf("r2", 65102, "10.255.0.2", "down2", "far2"),
        &routing,
    );
    let _far = Frr::start_with(
        &far,
        &work,
        "far",
        FAR_CONF,
        &FrrOptions {
            install_routes: true,
            bfd: None,
            ..FrrOptions::default()
        },
    );
    let mut tern = Tern::start(&node, &work, "node", TERN_CONF);

    // No address on any link but the kernel's link-local ones.
    for (ns, dev) in [(&node, "up1"), (&node, "up2"), (&r1, "down1"), (&r2, "down2")] {
        let global = ns.ip(&["-6", "addr", "show", "dev", dev, "scope", "global"]);
        let v4 = ns.ip(&["-4", "addr", "show", "dev", dev]);
        assert!(
            global.trim().is_empty() && v4.trim().is_empty(),
            "{dev}: {global}{v4}"
        );
    }

    // Sessions up on both sides, each found by its link-local address.
    let started = Instant::now();
    for name in ["uplink1", "uplink2"] {
        let p = tern.wait_established(name, timeout(60));
        let remote = p["remote_address"].as_str().unwrap_or_default();
        assert!(
            remote.starts_with("[fe80:") || remote.starts_with("fe80:"),
            "{p:#}"
        );
    }
    for (frr, port) in [(&fr1, "down1"), (&fr2, "down2")] {
        wait_until(
            timeout(30),
            &format!("{} established on {port}", frr.name()),
            || {
                let n = frr.json(&format!("show bgp neighbors {port} json"))?;
                let n = &n[port];
                match n["bgpState"].as_str() {
                    Some("Established") => Ok(()),
                    s => Err(format!("{s:?}")),
                }
            },
        );
    }
    println!(
        "both unnumbered sessions established in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The far node's pod CIDRs: ECMP over both routers' link-local
    // addresses, IPv4 among them (RFC 8950).
    let took = wait_forwarding(&node, &["up1", "up2"], timeout(30));
    println!(
        "far prefixes installed over both uplinks after another {:.1} s",
        took.as_secs_f64()
    );
    println!("{}", node.ip(&["route", "show", FAR_V4]));

    // Our pod CIDR reached the routers with our link-local address.
    for frr in [&fr1, &fr2] {
        wait_until(timeout(20), &format!("{} has our pod CIDR", frr.name()), || {
            let paths = frr.paths("10.244.1.0/24")?;
            if paths.is_empty() {
                return Err("no path".into());
            }
            Ok(())
        });
    }

    // Pings cross both ways of the fabric.
    for (to, from) in [("10.244.2.1", "10.244.1.1"), ("fd00:244:2::1", "fd00:244:1::1")] {
        wait_until(timeout(20), &format!("ping {to} from {from}"), || {
            ping(&node, to, from)
        });
    }

    // BFD over link-local addresses, Up on both sides, which agree on the
    // addresses and the timers (300 ms both ways).
    let bfd_up = |tern: &Tern| {
        for (frr, port, peer) in [(&fr1, "down1", "uplink1"), (&fr2, "down2", "uplink2")] {
            wait_until(timeout(20), &format!("BFD up on {port}"), || {
                let v = tern.get("/api/v1/bfd")?;
                let t = v["sessions"]
                    .as_array()
                    .and_then(|s| s.iter().find(|s| s["peer"] == peer).cloned())
                    .ok_or(format!("tern has no BFD session for {peer}: {v:#}"))?;
                let peers = frr.bfd_peers()?;
                let f = peers
                    .iter()
                    .find(|p| p["interface"] == port)
                    .ok_or(format!("FRR has no BFD session on {port}: {peers:?}"))?;
                let remote = t["remote"].as_str().unwrap_or_default();
                let agree = t["state"] == "up"
                    && f["status"] == "up"
                    && remote.starts_with("fe80:")
                    && f["peer"].as_str().is_some_and(|p| p.starts_with("fe80:"))
                    && f["remote-receive-interval"] == 300
                    && f["receive-interval"] == 300;
                if agree {
                    Ok(())
                } else {
                    Err(format!("tern {t}\nFRR {f}"))
                }
            });
        }
    };
    bfd_up(&tern);

    // Uplink 1 cut at the router, with the link still up on both ends:
    // the node forwards over uplink 2 alone once BFD notices.
    cut(&r1, "down1", true);
    let took = wait_forwarding(&node, &["up2"], Duration::from_secs(5));
    println!(
        "uplink 1 cut: forwarding over uplink 2 alone after {:.2} s",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_millis(1500), "{took:?}");
    for (to, from) in [("10.244.2.1", "10.244.1.1"), ("fd00:244:2::1", "fd00:244:1::1")] {
        ping(&node, to, from).unwrap_or_else(|e| panic!("ping {to} with uplink 1 cut: {e}"));
    }

    // Restored: the session and ECMP come back.
    cut(&r1, "down1", false);
    tern.wait_established("uplink1", timeout(60));
    let took = wait_forwarding(&node, &["up1", "up2"], timeout(60));
    println!("uplink 1 restored: ECMP again after {:.1} s", took.as_secs_f64());
    for (to, from) in [("10.244.2.1", "10.244.1.1"), ("fd00:244:2::1", "fd00:244:1::1")] {
        ping(&node, to, from).unwrap_or_else(|e| panic!("ping {to} after the restore: {e}"));
    }
    bfd_up(&tern);

    // A planned restart (SIGTERM, then start): the routers keep the node's
    // routes throughout, BFD never goes down at either router, and the
    // node's kernel sees no change. The routers are found again from their
    // answers to the solicitation tern sends at start.
    let before = snapshot(&node);
    let own = vec!["10.244.1.0/24".to_owned(), "fd00:244:1::/64".to_owned()];
    let monitor = Monitor::start(&node, &work, "node-monitor", &["route", "nexthop"]);
    let begin = monitor.mark(&node, "10.250.0.1");
    let watches = [
        RouterWatch::start_on(&fr1, &r1, &own),
        RouterWatch::start_on(&fr2, &r2, &own),
    ];
    let downs: Vec<Value> = [(&fr1, "down1"), (&fr2, "down2")]
        .iter()
        .map(|(f, p)| bfd_counters(f, p)["session-down"].clone())
        .collect();
    let status = tern.stop().expect("tern ran");
    assert!(status.success(), "tern did not exit cleanly on SIGTERM: {status}");
    let restarted = Instant::now();
    tern.start_again();
    for name in ["uplink1", "uplink2"] {
        tern.wait_established(name, timeout(60));
    }
    println!(
        "restart: both unnumbered sessions back after {:.1} s",
        restarted.elapsed().as_secs_f64()
    );
    bfd_up(&tern);
    wait_until(timeout(60), "tern done with its restart", || {
        let summary = tern.summary()?;
        let fib = tern.fib()?;
        if summary["rib"]["deferring"].as_bool() == Some(false) && fib["adopted"].as_u64().unwrap_or(0) > 0 {
            Ok(())
        } else {
            Err(format!("summary {summary:#}\nfib {fib:#}"))
        }
    });
    wait_forwarding(&node, &["up1", "up2"], timeout(10));
    let end = monitor.unmark(&node, "10.250.0.1", begin + 1);
    let lines = monitor.lines();
    let ours: Vec<&String> = lines[begin + 1..end]
        .iter()
        .filter(|l| l.contains("proto bgp") || l.contains(" 186"))
        .collect();
    assert!(ours.is_empty(), "the node's kernel changed: {ours:#?}");
    assert_eq!(snapshot(&node), before);
    for (w, frr) in watches.into_iter().zip([&fr1, &fr2]) {
        let report = w.finish();
        println!(
            "{}: {} polls, {} saw a stale path, {} missing",
            frr.name(),
            report.polls,
            report.stale,
            report.missing.len()
        );
        assert!(report.polls > 10 && report.missing.is_empty(), "{report:#?}");
    }
    let after: Vec<Value> = [(&fr1, "down1"), (&fr2, "down2")]
        .iter()
        .map(|(f, p)| bfd_counters(f, p)["session-down"].clone())
        .collect();
    assert_eq!(
        after, downs,
        "a router's BFD session went down during the restart"
    );
}
