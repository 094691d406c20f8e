//! Graceful drain against a real FRR that honours GRACEFUL_SHUTDOWN (a
//! route-map matching 65535:0 that sets LOCAL_PREF 0, as RFC 8326 §3
//! asks of receivers). A VIP is served by two nodes; the router spreads
//! connections to it over both (ECMP). `tern drain` on one node moves
//! every new connection to the other before the drained node's session
//! goes down, and not one connection attempt fails on the way.

use std::process::Command;
use std::time::{Duration, Instant};

use interop_tests::client::{ConnectLoop, answered_by, failures};
use interop_tests::{Daemon, Topology, tern_bin, timeout, wait_until};

/// The VIP both nodes' Cilium advertise, served on both.
const VIP: &str = "10.96.9.9";
const PORT: u16 = 8080;

/// A server on the VIP that answers each connection with the node's name.
fn server(node: &interop_tests::Node, work: &std::path::Path) -> Daemon {
    let script = format!(
        "import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('{VIP}', {PORT}))
s.listen(128)
while True:
    c, _ = s.accept()
    c.sendall(b'{name}')
    c.close()
",
        name = node.id.name()
    );
    let mut cmd = node.ns.command("/usr/bin/python3");
    cmd.args(["-c", &script]);
    Daemon::spawn(&format!("server-{}", node.id.name()), cmd, work)
}

#[test]
fn a_drained_node_loses_its_traffic_before_its_session_and_no_connection_fails() {
    let Some(mut lab) = Topology::builder("drain").start() else {
        return;
    };
    lab.wait_converged();
    let router = lab.router(0);
    let asn = router.up.asn;
    // FRR honours the community (RFC 8326 §3), and spreads flows by port.
    let mut lines = vec![
        "bgp community-list standard GSHUT seq 5 permit graceful-shutdown".to_owned(),
        "route-map FROM-NODES permit 10".to_owned(),
        " match community GSHUT".to_owned(),
        " set local-preference 0".to_owned(),
        "exit".to_owned(),
        "route-map FROM-NODES permit 20".to_owned(),
        "exit".to_owned(),
        format!("router bgp {asn}"),
        "address-family ipv4 unicast".to_owned(),
    ];
    for x in 1..=2 {
        lines.push(format!(
            " neighbor {} route-map FROM-NODES in",
            lab.node(x).id.v6()
        ));
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    router.frr().configure(&refs);
    router.ns.sysctl("net.ipv4.fib_multipath_hash_policy", "1");

    // Both nodes advertise the VIP and serve it.
    let work = lab.work().path().to_owned();
    let mut servers = Vec::new();
    for x in 1..=2 {
        let n = lab.node(x);
        n.gobgp.add_route(&format!("{VIP}/32"), &[]);
        n.wait_kernel_within(timeout(10), &[&format!("{VIP}/32")], true);
        servers.push(server(n, &work));
    }
    let node = |x: u8| lab.node(x).id.v6();
    let router_paths = || {
        router
            .frr()
            .paths(&format!("{VIP}/32"))
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.valid)
            .collect::<Vec<_>>()
    };
    wait_until(timeout(10), "FRR with the VIP from both nodes", || {
        let paths = router_paths();
        if paths.len() == 2 {
            Ok(())
        } else {
            Err(format!("{paths:?}"))
        }
    });

    // Connections run throughout.
    let client = ConnectLoop::start(&router.ns, VIP, PORT, 14);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(3));

    // Drain node 1.
    let drained_at = start.elapsed().as_secs_f64();
    let out = Command::new(tern_bin())
        .args(["drain", "--api"])
        .arg(lab.node(1).tern.socket())
        .output()
        .expect("tern drain");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // FRR moves the VIP to node 2 alone, the session with node 1 still up.
    wait_until(timeout(10), "FRR to prefer node 2 alone", || {
        let paths = router_paths();
        let best: Vec<&String> = paths
            .iter()
            .filter(|p| p.best)
            .flat_map(|p| p.next_hops.iter())
            .filter(|h| !h.starts_with("fe80"))
            .collect();
        let route = router.ns.ip(&["route", "show", &format!("{VIP}/32")]);
        if best == [&node(2)] && !route.contains(&node(1)) && route.contains(&node(2)) {
            Ok(())
        } else {
            Err(format!("best {best:?}; kernel: {route}"))
        }
    });
    let moved_at = start.elapsed().as_secs_f64();
    println!("drained at {drained_at:.2} s, traffic moved by {moved_at:.2} s");
    // The session with node 1 is still up: the move came first.
    router.frr().wait_established(&node(1), timeout(1));
    std::thread::sleep(Duration::from_secs(2));

    // Now node 1 stops; its session goes down.
    let stopped_at = start.elapsed().as_secs_f64();
    lab.nodes[0].tern.stop();

    let log = client.finish();
    let failed = failures(&log);
    let count = |from: f64, to: f64, who: &str| answered_by(&log, from, to, who);
    let (n1, n2) = (lab.node(1).id.name(), lab.node(2).id.name());
    println!(
        "{} connections; before the drain: {} to {n1}, {} to {n2}; after the move: {} to {n1}, {} to {n2}; failed: {}",
        log.len(),
        count(0.0, drained_at, &n1),
        count(0.0, drained_at, &n2),
        count(moved_at, 99.0, &n1),
        count(moved_at, 99.0, &n2),
        failed.len()
    );
    assert!(failed.is_empty(), "connections failed: {failed:?}");
    assert!(
        count(0.0, drained_at, &n1) > 0 && count(0.0, drained_at, &n2) > 0,
        "both nodes served before: {log:?}"
    );
    assert_eq!(
        count(moved_at, 99.0, &n1),
        0,
        "the drained node served after the move"
    );
    assert!(
        count(stopped_at, 99.0, &n2) > 0,
        "node 2 serves after node 1 stopped"
    );
    drop(servers);
}
