//! Every VIP source on the node (issue 15): MetalLB (its FRR mode) and
//! kube-vip peer with tern on the same node beside Cilium, and their VIPs
//! get what Cilium's get: the upstream router learns them with the node's
//! next hop, a pod on the node reaches them without a packet on the
//! uplink, a withdrawal takes them out of the node's kernel and the
//! router's table at once, and a restart of the speaker loses nothing.
//!
//! ```text
//!  node-21 (tern)                                        router (FRR)
//!   ├─ Cilium (GoBGP, dials ::1)                          learns every VIP
//!   ├─ MetalLB's FRR (bgpd -p 0, dials 169.254.179.1)     via fd00:101::21
//!   ├─ kube-vip (GoBGP, port -1, dials 127.0.0.1:179)
//!   ├─ client pod 10.224.1.11, backend pod 10.224.1.10:8080
//!   └─ eth-up ── counters: packets to each VIP that leave the node
//! ```
//!
//! How each speaker is configured, and where that comes from:
//!
//! - MetalLB FRR mode: bgpd started as MetalLB's `frr-startup` ConfigMap
//!   starts it (`bgpd_options="-A 127.0.0.1 -p 0"`: it never listens), and
//!   bgpd.conf as MetalLB renders it from its templates
//!   (`internal/bgp/frr/templates/{frr,neighborsession,neighboripfamily,
//!   prefixfilters}.tmpl`, metallb/metallb 7938d3f) for the BGPPeer and
//!   BGPAdvertisement of `deploy/examples/metallb/metallb.yaml`: the router
//!   block with `no bgp default ipv4-unicast` and `bgp graceful-restart
//!   preserve-fw-state`, the neighbour with `ebgp-multihop`, `port`,
//!   `timers`, `graceful-restart`, both families activated
//!   (`dualStackAddressFamily`), an inbound route-map that denies
//!   everything and an outbound one that permits the advertised prefixes,
//!   and a `network` statement per VIP. It dials 169.254.179.1, an address
//!   every node has on `lo`: FRR 8.4 refuses loopback peers.
//! - kube-vip: gobgpd with what kube-vip's `pkg/bgp/server.go` and
//!   `peers.go` (kube-vip/kube-vip bee5cfe) set: `ListenPort: -1`, the
//!   peer at `bgp_peers` (127.0.0.1), remote port 179, connect retry 10 s,
//!   no graceful restart, IPv4 only, and each VIP a /32 with next hop
//!   0.0.0.0, which GoBGP sends as its end of the session (127.0.0.1).
//!   Without graceful restart, tern's `kube-vip` role holds its routes
//!   across its restart (`restart-hold`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bgp_proto::{
    AsPath, Attributes, Capability, Context, Family, Message, NextHop, Nlri, Open, Origin, UpdateBuilder,
};
use bytes::BytesMut;
use interop_tests::kernel::{self, Monitor};
use interop_tests::lab::RouterWatch;
use interop_tests::{Frr, FrrOptions, Gobgp, RawPeer, Topology, nft, tcp, time_until, timeout, wait_until};

/// The address every node has on `lo` for MetalLB's FRR to dial.
const SPEAKERS: &str = "169.254.179.1";
/// The AS tern presents to every node's speakers (`local-asn`).
const TERN_LOCAL_AS: u32 = 4210101000;
const METALLB_AS: u32 = 64512;
const KUBE_VIP_AS: u32 = 64513;
const MLB4: &str = "10.96.5.10";
const MLB6: &str = "fd00:96::5:10";
const KV4: &str = "10.96.6.10";
const NATIVE4: &str = "10.96.7.10";
const BACKEND_PORT: u16 = 8080;
const GREETING: &str = "hello from the backend, you are";

fn metallb_bgpd() -> String {
    let n = SPEAKERS;
    format!(
        "frr defaults traditional
hostname node-21
ip nht resolve-via-default
ipv6 nht resolve-via-default
!
route-map {n}-in deny 20
!
ip prefix-list {n}-pl-ipv4 seq 1 permit {MLB4}/32
ipv6 prefix-list {n}-pl-ipv6 seq 1 permit {MLB6}/128
!
route-map {n}-out permit 1
 match ip address prefix-list {n}-pl-ipv4
route-map {n}-out permit 2
 match ipv6 address prefix-list {n}-pl-ipv6
!
router bgp {METALLB_AS}
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 bgp graceful-restart preserve-fw-state
 neighbor {n} remote-as {TERN_LOCAL_AS}
 neighbor {n} ebgp-multihop
 neighbor {n} port 179
 neighbor {n} timers 3 9
 neighbor {n} timers connect 1
 neighbor {n} graceful-restart
 !
 address-family ipv4 unicast
  neighbor {n} activate
  neighbor {n} route-map {n}-in in
  neighbor {n} route-map {n}-out out
 exit-address-family
 address-family ipv6 unicast
  neighbor {n} activate
  neighbor {n} route-map {n}-in in
  neighbor {n} route-map {n}-out out
 exit-address-family
 address-family ipv4 unicast
  network {MLB4}/32
 exit-address-family
 address-family ipv6 unicast
  network {MLB6}/128
 exit-address-family
!
"
    )
}

/// MetalLB's speaker on node 1: zebra and bgpd on the host network, bgpd
/// with `-p 0` and routes installed (no `-n`), as its `frr-startup`
/// ConfigMap starts them.
fn start_metallb(lab: &Topology) -> Frr {
    Frr::start_with(
        &lab.node(1).ns,
        lab.work(),
        "metallb",
        &metallb_bgpd(),
        &FrrOptions {
            install_routes: true,
            no_listen: true,
            ..FrrOptions::default()
        },
    )
}

fn kube_vip_gobgpd(router_id: &str) -> String {
    format!(
        r#"[global.config]
  as = {KUBE_VIP_AS}
  router-id = "{router_id}"
  port = -1

[global.apply-policy.config]
  default-import-policy = "accept-route"
  default-export-policy = "accept-route"

[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = {TERN_LOCAL_AS}
  [neighbors.timers.config]
    connect-retry = 10
    hold-time = 90
    keepalive-interval = 30
  [neighbors.ebgp-multihop.config]
    enabled = false
    multihop-ttl = 50
  [neighbors.transport.config]
    remote-port = 179
    mtu-discovery = true
"#
    )
}

/// tern's peers for the two speakers, beside the lab's Cilium and
/// upstream.
fn speaker_peers() -> String {
    format!(
        r#"
[[peer]]
name = "metallb"
address = "{SPEAKERS}"
remote-asn = {METALLB_AS}
role = "metallb"
local-asn = {TERN_LOCAL_AS}

[[peer]]
name = "kube-vip"
address = "127.0.0.1"
remote-asn = {KUBE_VIP_AS}
role = "kube-vip"
local-asn = {TERN_LOCAL_AS}
"#
    )
}

/// The VIPs' service translation on the node (as Cilium's or kube-proxy's
/// would be: to the backend pod, for packets the node delivers to
/// itself), and a counter per VIP of the packets that leave the uplink.
fn service_ruleset(backend4: &str, backend6: &str) -> String {
    let p = BACKEND_PORT;
    format!(
        r#"
table inet svc {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr {{ {MLB4}, {KV4} }} tcp dport 80 fib daddr type local dnat ip to {backend4}:{p}
        ip6 daddr {MLB6} tcp dport 80 fib daddr type local dnat ip6 to [{backend6}]:{p}
    }}
    chain output {{
        type nat hook output priority -100; policy accept;
        ip daddr {{ {MLB4}, {KV4} }} tcp dport 80 fib daddr type local dnat ip to {backend4}:{p}
        ip6 daddr {MLB6} tcp dport 80 fib daddr type local dnat ip6 to [{backend6}]:{p}
    }}
}}
table netdev uplink {{
    counter mlb4 {{ }}
    counter mlb6 {{ }}
    counter kv4 {{ }}
    chain egress {{
        type filter hook egress device "eth-up" priority 0; policy accept;
        ip daddr {MLB4} counter name "mlb4"
        ip6 daddr {MLB6} counter name "mlb6"
        ip daddr {KV4} counter name "kv4"
    }}
}}
"#
    )
}

/// The router has `prefix` as a valid best path via node 1.
fn router_has(lab: &Topology, prefix: &str) -> Result<(), String> {
    let paths = lab.router(0).frr().paths(prefix)?;
    if paths
        .iter()
        .any(|x| x.valid && x.best && x.next_hops.iter().any(|n| n == "fd00:101::21"))
    {
        Ok(())
    } else {
        Err(format!("{prefix}: {paths:?}"))
    }
}

fn host(vip: &str) -> String {
    if vip.contains(':') {
        format!("{vip}/128")
    } else {
        format!("{vip}/32")
    }
}

/// tern's local route for `vip` is in node 1's kernel.
fn local_route(lab: &Topology, vip: &str) -> bool {
    let routes = lab.node(1).bgp_routes().unwrap_or_default();
    kernel::find(&routes, &host(vip)).is_some_and(|r| r.kind == "local" && r.table == "local")
}

/// Runs `withdraw` (the speaker withdraws `vip`) and measures, from just
/// before it, how long until the VIP's local route left the node's kernel
/// and its path left the router; both must be within a second.
#[track_caller]
fn time_withdrawal(lab: &Topology, vip: &str, withdraw: impl FnOnce()) -> (Duration, Duration) {
    let t = Instant::now();
    withdraw();
    time_until(
        Duration::from_secs(5),
        &format!("{vip} out of the kernel"),
        || !local_route(lab, vip),
    );
    let kernel = t.elapsed();
    time_until(
        Duration::from_secs(5),
        &format!("{vip} out of the router"),
        || router_has(lab, &host(vip)).is_err(),
    );
    let router = t.elapsed();
    assert!(router < Duration::from_secs(1), "{vip}: {router:?}");
    (kernel, router)
}

/// Restarts a speaker (`restart`: it goes away and comes back), then
/// checks that the router kept `vip` throughout, the node's kernel never
/// changed its route, and tern's `peer` for it is back with nothing stale,
/// after the 5 s a speaker without graceful restart has to announce its
/// routes again.
#[track_caller]
fn restart_changes_nothing(
    lab: &Topology,
    monitor: &Monitor,
    marker: &str,
    vip: &str,
    peer: &str,
    restart: impl FnOnce(),
) {
    let n1 = lab.node(1);
    let begin = monitor.mark(&n1.ns, marker);
    let watch = RouterWatch::start(lab.router(0), &[host(vip)]);
    restart();
    wait_until(timeout(30), &format!("{peer}'s session back"), || {
        let p = n1.tern.peer(peer)?;
        (p["state"] == "established")
            .then_some(())
            .ok_or(format!("{}", p["state"]))
    });
    std::thread::sleep(Duration::from_secs(6));
    let end = monitor.unmark(&n1.ns, marker, begin + 1);
    let report = watch.finish();
    let lines = monitor.lines();
    let changes: Vec<&String> = lines[begin + 1..end].iter().filter(|l| l.contains(vip)).collect();
    println!(
        "{peer}'s speaker restarted: the router's watch made {} polls, {} missing; {} kernel changes of {vip}'s route",
        report.polls,
        report.missing.len(),
        changes.len()
    );
    assert!(report.missing.is_empty(), "{report:#?}");
    assert!(changes.is_empty(), "{changes:#?}");
    assert!(local_route(lab, vip), "{vip}");
    assert_eq!(stale(lab, peer), Ok(0.0));
}

/// The prefixes tern keeps stale for `peer` (all families).
fn stale(lab: &Topology, peer: &str) -> Result<f64, String> {
    let text = lab.node(1).tern.get_text("/metrics")?;
    let prefix = "tern_peer_prefixes_stale{";
    let found: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(prefix) && l.contains(&format!("peer=\"{peer}\"")))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
        .collect();
    if found.is_empty() {
        return Err(format!("no tern_peer_prefixes_stale for {peer}"));
    }
    Ok(found.iter().sum())
}

#[test]
fn metallb_and_kube_vip_beside_cilium_get_what_cilium_gets() {
    let Some(mut lab) = Topology::builder("vipsrc").nodes(1).pod(1, 11).start() else {
        return;
    };
    lab.wait_converged();
    let node_ns = lab.node(1).ns.name().to_owned();
    lab.node(1).ns.add_addr("lo", &format!("{SPEAKERS}/32"));
    let config = lab.node(1).tern_config(&[], &speaker_peers());
    lab.node_mut(1).tern.set_config(&config);
    println!("{}", lab.node(1).tern.reload_cli().expect("reload"));

    // The speakers, in the node's namespace as on a node's host network.
    let mut metallb = start_metallb(&lab);
    let mut kube_vip = Gobgp::start(
        &lab.node(1).ns,
        lab.work(),
        "kube-vip",
        &kube_vip_gobgpd(&lab.node(1).id.v4()),
        50071,
    );
    kube_vip.add_route(&format!("{KV4}/32"), &[]);
    let n1 = lab.node(1);
    for name in ["metallb", "kube-vip", "cilium"] {
        let p = n1.tern.wait_established(name, timeout(30));
        println!(
            "{name}: {} from {}",
            p["state"],
            p["remote_address"].as_str().unwrap_or("?")
        );
    }
    // MetalLB's bgpd really does not listen on the node.
    let listening = n1.ns.exec(&["ss", "-Hltnp", "sport", "= :179"]).expect("ss");
    assert!(!listening.contains("bgpd"), "{listening}");

    // 1. The VIPs reach the router with the node's next hop (tern's own
    // address, not the speakers' 169.254.179.1 or 127.0.0.1).
    for vip in [MLB4, MLB6, KV4] {
        wait_until(timeout(20), &format!("{vip} at the router via node 1"), || {
            router_has(&lab, &host(vip))
        });
    }
    // ...and get the hairpin fix's local route on the node.
    for vip in [MLB4, MLB6, KV4] {
        wait_until(timeout(10), &format!("a local route for {vip}"), || {
            local_route(&lab, vip).then_some(()).ok_or("none".to_owned())
        });
    }
    let paths = n1.tern.paths(&host(MLB6)).expect("paths");
    println!("MetalLB's IPv6 VIP in tern: {paths:?}");

    // 2. A pod on the node reaches each VIP, and nothing leaves the uplink.
    nft::apply(&n1.ns, &service_ruleset("10.224.1.10", "fd00:101:224:1::10"));
    let backend = tcp::Server::start(&n1.pod(10).ns, BACKEND_PORT, GREETING);
    let client = &n1.pod(11).ns;
    for (vip, counter) in [(MLB4, "mlb4"), (MLB6, "mlb6"), (KV4, "kv4")] {
        let addr: SocketAddr = if vip.contains(':') {
            format!("[{vip}]:80")
        } else {
            format!("{vip}:80")
        }
        .parse()
        .unwrap();
        let (result, packets) = nft::fetch_counted(client, &n1.ns, addr, counter);
        println!("{vip} from the client pod: {result:?}, {packets} packets on the uplink");
        let answer = result.unwrap_or_else(|e| panic!("{vip}: {e}"));
        assert!(answer.starts_with(GREETING), "{answer}");
        assert_eq!(packets, 0, "packets to {vip} left the node");
    }

    // 3. A withdrawal takes the VIP out of the node's kernel and the
    // router's table within a second.
    let (kernel, router) = time_withdrawal(&lab, MLB4, || {
        metallb.configure(&[
            &format!("router bgp {METALLB_AS}"),
            "address-family ipv4 unicast",
            &format!("no network {MLB4}/32"),
        ])
    });
    println!(
        "MetalLB withdrew {MLB4} (vtysh `no network`): out of the node's kernel after {:.0} ms, of the router after {:.0} ms",
        kernel.as_secs_f64() * 1e3,
        router.as_secs_f64() * 1e3
    );
    let (kernel, router) = time_withdrawal(&lab, KV4, || kube_vip.del_route(&format!("{KV4}/32")));
    println!(
        "kube-vip withdrew {KV4} (`gobgp global rib del`): out of the node's kernel after {:.0} ms, of the router after {:.0} ms",
        kernel.as_secs_f64() * 1e3,
        router.as_secs_f64() * 1e3
    );
    // Back again.
    metallb.configure(&[
        &format!("router bgp {METALLB_AS}"),
        "address-family ipv4 unicast",
        &format!("network {MLB4}/32"),
    ]);
    kube_vip.add_route(&format!("{KV4}/32"), &[]);
    for vip in [MLB4, KV4] {
        wait_until(timeout(10), &format!("{vip} back"), || {
            router_has(&lab, &host(vip))?;
            local_route(&lab, vip)
                .then_some(())
                .ok_or("no local route".to_owned())
        });
    }

    // 4. MetalLB's speaker pod dies and comes back (graceful restart, as
    // its BGPPeer's enableGracefulRestart asks): the router keeps its VIPs
    // throughout and the node's kernel does not change.
    let n1 = lab.node(1);
    let monitor = Monitor::start(&n1.ns, lab.work(), "node-21-monitor", &["route"]);
    let begin = monitor.mark(&n1.ns, "10.250.0.1");
    let watch = RouterWatch::start(lab.router(0), &[host(MLB4), host(MLB6)]);
    metallb.kill();
    drop(metallb);
    std::thread::sleep(Duration::from_secs(2));
    let metallb = start_metallb(&lab);
    wait_until(
        timeout(30),
        "MetalLB's session back, its stale paths refreshed",
        || {
            let p = n1.tern.peer("metallb")?;
            let stale = n1.tern.metric("tern_peer_prefixes_stale").unwrap_or(0.0);
            if p["state"] == "established" && stale == 0.0 {
                Ok(())
            } else {
                Err(format!("{} stale {stale}", p["state"]))
            }
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    let end = monitor.unmark(&n1.ns, "10.250.0.1", begin + 1);
    let report = watch.finish();
    let lines = monitor.lines();
    let changes: Vec<&String> = lines[begin + 1..end]
        .iter()
        .filter(|l| [MLB4, MLB6].iter().any(|v| l.contains(v)))
        .collect();
    println!(
        "MetalLB restarted: the router's watch made {} polls, {} saw a stale path, {} missing; {} kernel changes of its VIPs' routes",
        report.polls,
        report.stale,
        report.missing.len(),
        changes.len()
    );
    assert!(report.missing.is_empty(), "{report:#?}");
    assert!(changes.is_empty(), "{changes:#?}");
    // tern's own routes (metric 512) were never touched. FRR's zebra, on
    // the same node, takes routes of protocol 186 for its own: at its start
    // it may install a copy under its own metric (20) and sweep it again,
    // which is why docs/operations.md asks for a protocol of tern's own
    // beside FRR. What it did this time:
    let ours_touched: Vec<&String> = lines[begin + 1..end]
        .iter()
        .filter(|l| l.contains("proto bgp") && l.contains("metric 512"))
        .collect();
    assert!(ours_touched.is_empty(), "{ours_touched:#?}");
    let zebra: Vec<&String> = lines[begin + 1..end]
        .iter()
        .filter(|l| l.contains("proto bgp") && !l.contains("metric 512"))
        .collect();
    println!("routes of protocol 186 FRR's zebra wrote during the restart: {zebra:#?}");
    for vip in [MLB4, MLB6] {
        assert!(local_route(&lab, vip), "{vip}");
    }

    // 5. kube-vip's pod dies and comes back. kube-vip negotiates no
    // graceful restart, but the `kube-vip` role holds its routes across its
    // restart (`restart-hold`, 60 s): the router keeps the VIP and the
    // node's kernel does not change; what it does not announce again within
    // 5 s of its return goes.
    restart_changes_nothing(&lab, &monitor, "10.250.0.2", KV4, "kube-vip", || {
        kube_vip.kill();
        std::thread::sleep(Duration::from_secs(2));
        kube_vip.start_again(false);
        // kube-vip adds its VIPs again when it starts.
        kube_vip.add_route(&format!("{KV4}/32"), &[]);
    });

    // The control: without the hold (`restart-hold = 0`), the same restart
    // takes kube-vip's VIP away from the router until it is back.
    let config = n1.tern_config(
        &[],
        &speaker_peers().replace("role = \"kube-vip\"", "role = \"kube-vip\"\nrestart-hold = 0"),
    );
    let n1 = lab.node_mut(1);
    n1.tern.set_config(&config);
    println!("{}", n1.tern.reload_cli().expect("reload"));
    let n1 = lab.node(1);
    n1.tern.wait_established("kube-vip", timeout(30));
    wait_until(timeout(10), "kube-vip's VIP at the router", || {
        router_has(&lab, &host(KV4))
    });
    kube_vip.kill();
    let gone = time_until(
        Duration::from_secs(10),
        "kube-vip's VIP out of the router",
        || router_has(&lab, &host(KV4)).is_err(),
    );
    println!(
        "without restart-hold, kube-vip's VIP left the router {:.0} ms after its pod died",
        gone.as_secs_f64() * 1e3
    );
    kube_vip.start_again(false);
    kube_vip.add_route(&format!("{KV4}/32"), &[]);
    wait_until(timeout(30), "kube-vip's VIP back at the router", || {
        router_has(&lab, &host(KV4))
    });

    // MetalLB's zebra and tern's protocol (186 here, the default): a copy
    // of tern's routes zebra wrote under another metric is reported by
    // tern (log, `/api/v1/fib`, `tern doctor`), and left alone.
    let n1 = lab.node(1);
    let copies: Vec<String> = ["-4", "-6"]
        .iter()
        .flat_map(|f| {
            n1.ns
                .exec(&["ip", f, "route", "show", "table", "all", "proto", "186"])
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.contains("metric 512"))
        .collect();
    println!("copies of tern's routes by another daemon: {copies:#?}");
    // Whether zebra left one this time or not, one such route for sure.
    // A route of tern's protocol with another metric, as zebra writes them.
    let stranger = |verb: &str| {
        let route = ["blackhole", "10.98.0.0/24", "proto", "186", "metric", "20"];
        let mut args = vec!["ip", "route", verb];
        args.extend(route);
        n1.ns.exec(&args)
    };
    stranger("add").expect("ip route add");
    let reported = |fib: &serde_json::Value| {
        fib["strangers"].as_array().is_some_and(|s| {
            s.iter()
                .any(|r| r.as_str().is_some_and(|r| r.contains("10.98.0.0/24")))
        })
    };
    {
        // The route added above, not only zebra's: its copies may come
        // after they were looked for, and be seen by a scan before it.
        wait_until(timeout(90), "tern to report the copies", || {
            let fib = n1.tern.fib()?;
            reported(&fib).then_some(()).ok_or(format!("{fib:#}"))
        });
        let doctor = n1.tern.get("/api/v1/doctor").expect("doctor");
        let list = doctor
            .as_array()
            .or_else(|| doctor["checks"].as_array())
            .cloned()
            .unwrap_or_default();
        let check = list
            .iter()
            .find(|c| c["name"] == "routes of tern's protocol")
            .cloned()
            .unwrap_or_default();
        println!("tern doctor: {check}");
        assert_eq!(check["status"], "FAIL", "{doctor:#}");
        assert!(
            check["evidence"]
                .as_str()
                .is_some_and(|e| e.contains("10.98.0.0/24")),
            "{check}"
        );
    }
    // tern left it alone; once it is gone, so is the report.
    stranger("del").expect("the route tern did not write is still there");
    wait_until(timeout(90), "the report to go", || {
        let fib = n1.tern.fib()?;
        (!reported(&fib)).then_some(()).ok_or(format!("{fib:#}"))
    });
    println!("{}", kernel::dump(&lab.node(1).ns));
    println!("tern's FIB: {:#}", lab.node(1).tern.fib().expect("fib"));

    // 6. MetalLB's native mode instead of its FRR mode: its own speaker,
    // dial only, IPv4 only, no graceful restart. Emulated by a raw speaker
    // sending what MetalLB's `internal/bgp/native` sends (metallb/metallb
    // 7938d3f, native.go and messages.go): an OPEN with MP IPv4, MP IPv6 and
    // 4-octet AS, then each VIP as classic NLRI with ORIGIN IGP, AS_PATH
    // [myASN] and NEXT_HOP its end of the session, and no End-of-RIB. It
    // dials the same address, so it is the same `metallb` peer.
    drop(metallb);
    let native = |lab: &Topology| {
        let a: std::net::IpAddr = SPEAKERS.parse().unwrap();
        let open = {
            let caps = vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::FourOctetAs(METALLB_AS),
            ];
            let mut buf = BytesMut::new();
            Message::Open(Open::new(METALLB_AS, 90, [169, 254, 179, 1].into(), caps))
                .encode(&Context::default(), &mut buf)
                .expect("encode");
            buf.to_vec()
        };
        let mut peer = RawPeer::establish(&lab.node(1).ns, a, a, TERN_LOCAL_AS, &open);
        let mut b = UpdateBuilder::new(Context::ebgp());
        let attrs = Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence([METALLB_AS])),
            ..Attributes::default()
        };
        let mut buf = BytesMut::new();
        b.announce(
            &mut buf,
            Family::IPV4_UNICAST,
            &attrs,
            NextHop::V4(SPEAKERS.parse().unwrap()),
            &[Nlri::new(host(NATIVE4).parse().unwrap())],
        )
        .expect("encode");
        peer.send(&buf);
        peer
    };
    let speaker = native(&lab);
    wait_until(timeout(20), "the native speaker's VIP at the router", || {
        router_has(&lab, &host(NATIVE4))
    });
    wait_until(timeout(10), "a local route for the native speaker's VIP", || {
        local_route(&lab, NATIVE4).then_some(()).ok_or("none".to_owned())
    });
    // The FRR mode's VIPs, held across the switch, go: the native speaker
    // did not announce them again within 5 s of its session.
    wait_until(timeout(15), "the FRR mode's VIPs gone", || {
        match (router_has(&lab, &host(MLB4)), local_route(&lab, MLB4)) {
            (Err(_), false) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    // Its restart (the TCP connection closes, no NOTIFICATION) changes
    // nothing: the `metallb` role holds its routes (`restart-hold`).
    let mut speaker = Some(speaker);
    restart_changes_nothing(&lab, &monitor, "10.250.0.3", NATIVE4, "metallb", || {
        drop(speaker.take());
        std::thread::sleep(Duration::from_secs(2));
        speaker = Some(native(&lab));
    });
    let served = backend.finish();
    println!("the backend served {served:?} ({node_ns})");
}
