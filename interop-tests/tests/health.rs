//! Health-gated VIPs against a real FRR: the stale-datapath failure our
//! users report (pods lose the way to their own host, so DNS through the
//! node-local resolver times out, while host networking and pod-to-pod
//! traffic keep working) is reproduced on one node with nftables, and
//! that node's VIP leaves the router, then comes back when the drop goes.
//!
//! ```text
//!                 router (FRR, ECMP over both nodes; a client that
//!                 connects to the VIP every 20 ms throughout)
//!                   │
//!   node-21 ────────┴──────── node-22       each: Cilium (GoBGP) advertises
//!   pod 10.224.1.10           pod 10.224.2.10   VIP 10.96.9.9/32, a server
//!   resolver 169.254.25.10    resolver ...      answers on the VIP, a
//!   (on lo)                                     node-local DNS resolver
//! ```
//!
//! Each tern runs a DNS health check from inside its pod's namespace to
//! the node-local resolver (node 1 finds the namespace by the pod's
//! address among the pinned ones, node 2 names its path), every 0.5 s,
//! timeout 0.4 s, rise 3, fall 3.
//!
//! Cilium's service translation for traffic from outside is emulated with
//! an nftables `redirect` of VIP:8080 arriving on the uplink (Cilium's
//! datapath serves a VIP arriving at the node whatever its routes); the
//! node's pods reach the VIP through the node's routes, so tern's local
//! VIP route decides whether a pod's connection stays on the node.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use interop_tests::client::{ConnectLoop, answered_by, failures};
use interop_tests::lab::tern_config;
use interop_tests::{Node, Topology, nft, tcp, timeout, wait_for, wait_until};
use serde_json::Value;

const VIP: &str = "10.96.9.9";
const PORT: u16 = 8080;
const RESOLVER: &str = "169.254.25.10";
const INTERVAL: f64 = 0.5;
const PROBE_TIMEOUT: f64 = 0.4;
const FALL: u32 = 3;
const RISE: u32 = 3;

/// A DNS server that answers every A query with one record.
const RESOLVER_SCRIPT: &str = "import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
while True:
    q, a = s.recvfrom(512)
    end = 12
    while q[end] != 0:
        end += q[end] + 1
    end += 5
    s.sendto(q[:2] + b'\\x81\\x80' + q[4:6] + b'\\x00\\x01\\x00\\x00\\x00\\x00' + q[12:end]
             + b'\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x1e\\x00\\x04' + bytes([10, 96, 0, 10]), a)
";

/// The check of node `x`: from the pod found by its address, or from a
/// namespace named by path.
fn check(from: &str) -> String {
    format!(
        r#"
[[health-check]]
name = "pod-dns"
probe = "dns"
address = "{RESOLVER}"
query = "kube-dns.kube-system.svc.cluster.local"
{from}
interval = {INTERVAL}
timeout = {PROBE_TIMEOUT}
rise = {RISE}
fall = {FALL}
"#
    )
}

/// Drops everything the node's pods send to the node itself.
const STALE_DATAPATH: &str = r#"
table inet stale {
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "lxc*" counter drop
    }
}
"#;

fn serve(node: &Node, work: &std::path::Path) -> interop_tests::Daemon {
    let ns = &node.ns;
    // NodeLocal DNSCache puts it on a dummy link; this kernel has no dummy
    // links, and an address on lo is delivered the same way.
    ns.add_addr("lo", &format!("{RESOLVER}/32"));
    nft::apply(
        ns,
        &format!(
            "table inet svc {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname \"eth-up\" ip daddr {VIP} tcp dport {PORT} redirect
    }}
}}
"
        ),
    );
    let mut cmd = ns.command("/usr/bin/python3");
    cmd.args(["-c", RESOLVER_SCRIPT, RESOLVER]);
    interop_tests::Daemon::spawn(&format!("resolver-{}", node.id.name()), cmd, work)
}

fn health(node: &Node) -> Value {
    let h = node.tern.get("/api/v1/health").expect("health");
    h.as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_else(|| panic!("no health check: {h}"))
}

/// The router's valid paths to the VIP, by the node they come from, with
/// their communities.
fn router_paths(lab: &Topology) -> Vec<(String, String)> {
    let json = lab
        .router(0)
        .frr()
        .json(&format!("show bgp ipv4 unicast {VIP}/32 json"))
        .unwrap_or_default();
    json["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["valid"].as_bool() == Some(true))
        .map(|p| {
            (
                p["peer"]["peerId"].as_str().unwrap_or("").to_owned(),
                p["community"]["string"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn from_nodes(paths: &[(String, String)]) -> Vec<String> {
    let mut v: Vec<String> = paths.iter().map(|(p, _)| p.clone()).collect();
    v.sort();
    v
}

/// Who answers a connection from node 1's pod to the VIP.
fn pod_reaches(lab: &Topology) -> Result<String, String> {
    let addr: SocketAddr = format!("{VIP}:{PORT}").parse().unwrap();
    tcp::fetch(&lab.node(1).pod(10).ns, addr, Duration::from_secs(2))
        .map(|a| a.split(' ').next().unwrap_or("").to_owned())
}

fn vip_route_is_local(node: &Node) -> bool {
    node.ns
        .ip(&["route", "show", "table", "local", &format!("{VIP}/32")])
        .contains("local")
}

#[test]
fn a_node_whose_pods_cannot_reach_it_stops_attracting_its_vips() {
    let Some(mut lab) = Topology::builder("health")
        .tern_extra(1, &check(r#"pod-ip = "10.224.1.10""#))
        .start()
    else {
        return;
    };
    lab.wait_converged();
    // Node 2 names its pod's namespace by path (a reload adds the check).
    let pod2 = format!("/run/netns/{}", lab.node(2).pod(10).ns.name());
    let body = {
        let n = lab.node(2);
        tern_config(
            &n.id,
            &n.upstreams,
            &n.upstream_lines,
            &[],
            &check(&format!("namespace = {pod2:?}")),
        )
    };
    lab.node_mut(2).tern.set_config(&body);
    lab.node(2).tern.reload_cli().expect("reload");

    let work = lab.work().path().to_owned();
    let mut daemons = Vec::new();
    let mut servers = Vec::new();
    for x in 1..=2 {
        let n = lab.node(x);
        daemons.push(serve(n, &work));
        servers.push(tcp::Server::start(&n.ns, PORT, &n.id.name()));
        n.gobgp.add_route(&format!("{VIP}/32"), &[]);
    }
    let (n1, n2) = (lab.node(1).id.v6(), lab.node(2).id.v6());
    wait_until(timeout(10), "FRR with the VIP from both nodes", || {
        let p = from_nodes(&router_paths(&lab));
        if p == [n1.clone(), n2.clone()] {
            Ok(())
        } else {
            Err(format!("{p:?}"))
        }
    });
    for x in 1..=2 {
        let node = lab.node(x);
        wait_until(timeout(10), "the health check passing with answers", || {
            let h = health(node);
            if h["state"] == "passing" && h["probes_ok"].as_u64() >= Some(2) && h["entered"].is_string() {
                Ok(())
            } else {
                Err(h.to_string())
            }
        });
    }
    let entered = health(lab.node(1))["entered"].as_str().unwrap_or("").to_owned();
    assert_eq!(
        entered,
        format!("/run/netns/{}", lab.node(1).pod(10).ns.name()),
        "node 1 found its pod's namespace by the pod's address"
    );
    assert_eq!(health(lab.node(2))["entered"], pod2.as_str());
    assert!(vip_route_is_local(lab.node(1)));
    assert_eq!(pod_reaches(&lab).as_deref(), Ok(lab.node(1).id.name().as_str()));

    lab.router(0).ns.sysctl("net.ipv4.fib_multipath_hash_policy", "1");
    let client = ConnectLoop::start(&lab.router(0).ns, VIP, PORT, 16);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(3));

    // (Node 1's check failed at first, before the test started its
    // resolver.)
    let transitions = health(lab.node(1))["transitions"].as_u64().unwrap_or(0);
    // The stale datapath on node 1.
    let broke_at = start.elapsed().as_secs_f64();
    nft::apply(&lab.node(1).ns, STALE_DATAPATH);
    wait_until(timeout(10), "node 1's VIP to leave FRR", || {
        let p = from_nodes(&router_paths(&lab));
        if p == [n2.clone()] {
            Ok(())
        } else {
            Err(format!("{p:?}"))
        }
    });
    let gone_at = start.elapsed().as_secs_f64();
    let detection = gone_at - broke_at;
    let bound = INTERVAL * f64::from(FALL) + PROBE_TIMEOUT;
    println!(
        "VIP left FRR {detection:.2} s after the drop (interval {INTERVAL} s × fall {FALL} + timeout {PROBE_TIMEOUT} s = {bound:.1} s)"
    );
    assert!(detection < bound + 0.5, "{detection:.2} s");
    let h = health(lab.node(1));
    assert_eq!(h["state"], "failing", "{h}");
    assert!(
        h["last_result"].as_str().unwrap_or("").contains("no answer"),
        "{h}"
    );
    // Host networking and pod-to-pod traffic still work on node 1: only
    // the way from its pods to itself is broken.
    lab.node(1)
        .ns
        .exec(&["ping", "-c", "1", "-W", "1", &lab.router(0).up.v4])
        .expect("host networking");
    lab.node(1)
        .pod(10)
        .ping(&lab.node(2).id.pod_addrs(10).0)
        .expect("pod to pod across nodes");
    // The VIP's local route went with it: node 1's pod reaches node 2.
    wait_until(timeout(5), "node 1 to route the VIP to the router", || {
        if vip_route_is_local(lab.node(1)) {
            return Err("still local".into());
        }
        match pod_reaches(&lab) {
            Ok(who) if who == lab.node(2).id.name() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    // The other node is untouched.
    let h2 = health(lab.node(2));
    assert_eq!(h2["state"], "passing", "{h2}");
    let untouched = h2["transitions"].clone();
    // Visible as a metric and in tern doctor.
    let up = r#"tern_health_check_up{check="pod-dns",action="withdraw"}"#;
    assert_eq!(lab.node(1).tern.metric(up), Ok(0.0));
    let doctor = lab.node(1).tern.get("/api/v1/doctor").expect("doctor");
    let named = doctor
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "health check pod-dns")
        .cloned()
        .unwrap_or_default();
    assert_eq!(named["status"], "FAIL", "{doctor}");
    assert!(
        named["evidence"]
            .as_str()
            .unwrap_or("")
            .contains("every VIP withdrawn"),
        "{named}"
    );
    std::thread::sleep(Duration::from_secs(2));

    // The drop goes: back after `rise` good probes, not before.
    let fixed_at = start.elapsed().as_secs_f64();
    lab.node(1)
        .ns
        .exec(&["nft", "delete", "table", "inet", "stale"])
        .expect("nft");
    wait_until(timeout(10), "node 1's VIP back in FRR", || {
        let p = from_nodes(&router_paths(&lab));
        if p == [n1.clone(), n2.clone()] {
            Ok(())
        } else {
            Err(format!("{p:?}"))
        }
    });
    let back_at = start.elapsed().as_secs_f64();
    let recovery = back_at - fixed_at;
    println!("VIP back {recovery:.2} s after the drop went (rise {RISE} × {INTERVAL} s)");
    assert!(
        recovery >= f64::from(RISE - 1) * INTERVAL,
        "recovery is damped by rise: {recovery:.2} s"
    );
    assert!(
        recovery < f64::from(RISE) * INTERVAL + PROBE_TIMEOUT + 1.5,
        "{recovery:.2} s"
    );
    wait_until(timeout(5), "the VIP's local route back", || {
        if vip_route_is_local(lab.node(1)) {
            Ok(())
        } else {
            Err(lab.node(1).ns.ip(&["route", "get", VIP]))
        }
    });
    assert_eq!(pod_reaches(&lab).as_deref(), Ok(lab.node(1).id.name().as_str()));

    assert_eq!(
        health(lab.node(2))["transitions"],
        untouched,
        "node 2's check never changed"
    );
    let log = client.finish();
    let (name1, name2) = (lab.node(1).id.name(), lab.node(2).id.name());
    println!(
        "{} connections; before: {} to {name1}, {} to {name2}; while failing: {} to {name1}, {} to {name2}; after: {} to {name1}; failed: {}",
        log.len(),
        answered_by(&log, 0.0, broke_at, &name1),
        answered_by(&log, 0.0, broke_at, &name2),
        answered_by(&log, gone_at + 0.1, fixed_at, &name1),
        answered_by(&log, gone_at + 0.1, fixed_at, &name2),
        answered_by(&log, back_at + 0.1, 99.0, &name1),
        failures(&log).len()
    );
    assert!(
        failures(&log).is_empty(),
        "connections failed: {:?}",
        failures(&log)
    );
    assert!(
        answered_by(&log, 0.0, broke_at, &name1) > 0,
        "node 1 served before"
    );
    assert_eq!(
        answered_by(&log, gone_at + 0.1, fixed_at, &name1),
        0,
        "node 1 served while failing"
    );
    assert!(answered_by(&log, gone_at + 0.1, fixed_at, &name2) > 0);
    assert!(
        answered_by(&log, back_at + 0.1, 99.0, &name1) > 0,
        "node 1 served again"
    );
    let h = health(lab.node(1));
    assert_eq!(h["transitions"].as_u64(), Some(transitions + 2), "{h}");
    let log1 = lab.node(1).tern.log();
    assert!(log1.contains("health check failing"), "{log1}");
    assert!(log1.contains("health check passing again"), "{log1}");

    // The other action: node 1 keeps its VIP advertised, with
    // GRACEFUL_SHUTDOWN and a longer AS path, and FRR prefers node 2.
    let body = {
        let n = lab.node(1);
        let c = check(r#"pod-ip = "10.224.1.10""#) + "action = \"graceful-shutdown\"\nprepend = 3\n";
        tern_config(&n.id, &n.upstreams, &n.upstream_lines, &[], &c)
    };
    lab.node_mut(1).tern.set_config(&body);
    lab.node(1).tern.reload_cli().expect("reload");
    nft::apply(&lab.node(1).ns, STALE_DATAPATH);
    wait_until(timeout(10), "node 1's VIP with GRACEFUL_SHUTDOWN", || {
        let p = router_paths(&lab);
        let best = lab
            .router(0)
            .frr()
            .paths(&format!("{VIP}/32"))
            .unwrap_or_default();
        let best: Vec<&String> = best
            .iter()
            .filter(|p| p.best)
            .flat_map(|p| p.next_hops.iter())
            .collect();
        let gshut = p
            .iter()
            .any(|(from, c)| *from == n1 && c.contains("graceful-shutdown"));
        if gshut && best.iter().all(|h| !h.contains(&n1)) && p.len() == 2 {
            Ok(())
        } else {
            Err(format!("{p:?}; best via {best:?}"))
        }
    });
    // Node 1 itself forwards over node 2's path: its pods go there.
    wait_until(timeout(5), "node 1's pod to reach node 2", || {
        match pod_reaches(&lab) {
            Ok(who) if who == lab.node(2).id.name() && !vip_route_is_local(lab.node(1)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    lab.node(1)
        .ns
        .exec(&["nft", "delete", "table", "inet", "stale"])
        .expect("nft");
    wait_until(timeout(10), "node 1's VIP back as usual", || {
        let p = router_paths(&lab);
        if p.len() == 2 && p.iter().all(|(_, c)| !c.contains("graceful-shutdown")) {
            Ok(())
        } else {
            Err(format!("{p:?}"))
        }
    });
    // The Cilium sessions never went down.
    for x in 1..=2 {
        let p = lab.node(x).tern.peer("cilium").expect("cilium");
        assert_eq!(
            (p["state"].as_str(), p["established_transitions"].as_u64()),
            (Some("established"), Some(1)),
            "{p}"
        );
    }
    drop(servers);
    drop(daemons);
}

/// What probing from a pod's namespace needs: as `nobody` with only the
/// systemd unit's two capabilities, the probe cannot enter the namespace
/// and says so; with CAP_SYS_ADMIN added, it runs inside it (the server
/// it reaches listens only in the pod's namespace).
#[test]
fn probing_from_a_pod_namespace_needs_cap_sys_admin_and_says_so() {
    if !interop_tests::require_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let work = interop_tests::WorkDir::new("health-caps");
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let node = interop_tests::Netns::new(&interop_tests::unique_name("hc-node"));
    let pod = interop_tests::Netns::new(&interop_tests::unique_name("hc-pod"));
    let _server = tcp::Server::start(&pod, 8081, "pod");
    let run = |caps: &str| {
        let dir = work.subdir(&format!("tern-{}", caps.len()));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let config = dir.join("tern.toml");
        std::fs::write(
            &config,
            format!(
                r#"router-id = "10.0.0.1"
asn = 65001
listen = []
state-dir = "{dir}"
[api]
socket = "{dir}/tern.sock"
[fib]
enabled = false
[[health-check]]
name = "in-pod"
probe = "tcp"
address = "127.0.0.1:8081"
namespace = "/run/netns/{pod}"
interval = 0.2
timeout = 0.2
fall = 1
rise = 1
"#,
                dir = dir.display(),
                pod = pod.name()
            ),
        )
        .expect("config");
        let mut cmd = node.command("setpriv");
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args(["--inh-caps", caps, "--ambient-caps", caps, "--bounding-set", caps])
            .arg(interop_tests::tern_bin())
            .arg("--config")
            .arg(&config)
            .env("NO_COLOR", "1");
        let daemon = interop_tests::Daemon::spawn(&format!("tern-{}", caps.len()), cmd, work.path());
        let socket = dir.join("tern.sock");
        let result = wait_for(
            timeout(10),
            "a probe's result",
            || {
                let (_, body) = interop_tests::http::request(&socket, "GET", "/api/v1/health")?;
                let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
                Ok::<Value, String>(v[0].clone())
            },
            |r| {
                r.as_ref().is_ok_and(|h| {
                    h["probes_ok"].as_u64().unwrap_or(0) + h["probes_failed"].as_u64().unwrap_or(0) >= 2
                })
            },
        )
        .expect("health");
        drop(daemon);
        result
    };
    let two = run("-all,+net_admin,+net_bind_service");
    assert_eq!(two["state"], "failing", "{two}");
    let why = two["last_result"].as_str().unwrap_or("");
    assert!(
        why.contains("Operation not permitted") && why.contains("needs CAP_SYS_ADMIN"),
        "{two}"
    );
    let three = run("-all,+net_admin,+net_bind_service,+sys_admin");
    assert_eq!(three["state"], "passing", "{three}");
    assert_eq!(three["probes_failed"], 0, "{three}");
    assert!(
        three["last_result"]
            .as_str()
            .unwrap_or("")
            .contains("connected to 127.0.0.1:8081"),
        "{three}"
    );
}
