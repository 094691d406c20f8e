//! The hairpin fix: a pod calling a LoadBalancer VIP whose backend runs on
//! the same node must not send the packets to the router. tern installs
//! `local VIP dev lo table local proto 186` for the VIPs the node's own
//! Cilium advertises, so the node delivers them to itself, where the
//! service translation sends them to the backend.
//!
//! ```text
//!  node-21                                             router "upstream"
//!  client pod 10.224.1.11 ──lxc11─┐                    (FRR, knows the VIP
//!  backend pod 10.224.1.10:8080 ─lxc10─┤  nft: VIP:80 → backend,    as "behind node-21")
//!                                  │      only for traffic the node
//!                                  │      delivers to itself (as Cilium's
//!                                  │      translation on the node)
//!                                  └── eth-up ── counter: packets to the VIP
//! ```
//!
//! Cilium's service translation is emulated with nftables in the node
//! namespace ([`nft::service_ruleset`]): DNAT of `VIP:80` to the backend
//! pod's `:8080` for packets whose destination is local to the node, which
//! is where Cilium's translation takes them; a counter on the uplink's
//! egress hook counts the packets to the VIP that leave the node.
//!
//! `tests/cluster.rs` (scenario 4) shows the same on each of three nodes;
//! this test adds the controls.
//!
//! One test, three phases: before Cilium advertises the VIP (no route, the
//! packets go to the router: counted, the connection fails), advertised
//! (tern's local route: the connection reaches the backend, 0 packets on
//! the uplink), and advertised with tern's VIP routes disabled
//! (`[fib.vip] enabled = false`, after a restart): the router knows the
//! VIP and sends the packets back, the node sends them out again: counted,
//! the connection fails. Only the route differs between the last two.

use std::net::SocketAddr;
use std::time::Instant;

use interop_tests::kernel::{self, KernelRoute};
use interop_tests::lab::session_timeout;
use interop_tests::{Topology, nft, tcp, timeout, wait_until};

const VIP4: &str = "10.96.1.10";
const VIP6: &str = "fd00:96::10";
const BACKEND_PORT: u16 = 8080;
const GREETING: &str = "hello from the backend, you are";

/// The VIP's socket address and the name of its uplink counter.
fn vips() -> [(SocketAddr, &'static str); 2] {
    [
        (format!("{VIP4}:80").parse().unwrap(), "vip4"),
        (format!("[{VIP6}]:80").parse().unwrap(), "vip6"),
    ]
}

/// tern's VIP routes in node 1's kernel: `local VIP dev lo table local`.
fn vip_routes(routes: &[KernelRoute]) -> Vec<&KernelRoute> {
    [format!("{VIP4}/32"), format!("{VIP6}/128")]
        .iter()
        .filter_map(|p| kernel::find(routes, p))
        .collect()
}

#[test]
fn vip_route_keeps_hairpin_traffic_on_the_node() {
    let Some(mut lab) = Topology::builder("hairpin").nodes(1).pod(1, 11).start() else {
        return;
    };
    // Sessions up and the default routes (from the router, through tern)
    // in the node's kernel.
    lab.wait_converged();
    let n1 = lab.node(1);
    nft::apply(
        &n1.ns,
        &nft::service_ruleset(VIP4, VIP6, "10.224.1.10", "fd00:101:224:1::10", BACKEND_PORT),
    );
    let backend = tcp::Server::start(&n1.pod(10).ns, BACKEND_PORT, GREETING);
    let client = &n1.pod(11).ns;

    // 1. Before Cilium advertises the VIP: no route but the default one;
    // the packets leave for the router, which has no route for the VIP.
    let mut report = Vec::new();
    for (vip, counter) in vips() {
        let (result, packets) = nft::fetch_counted(client, &n1.ns, vip, counter);
        report.push(format!(
            "not advertised: {vip}: {result:?}, {packets} packets on the uplink"
        ));
        assert!(result.is_err(), "{vip} answered without a route: {result:?}");
        assert!(packets > 0, "no packet to {vip} left the uplink: {result:?}");
    }

    // 2. Cilium advertises the VIP: tern installs the local route, and the
    // connection reaches the backend without a packet on the uplink.
    n1.gobgp.add_route(&format!("{VIP4}/32"), &[]);
    n1.gobgp.add_route(&format!("{VIP6}/128"), &[]);
    let routes = n1.wait_kernel(&[&format!("{VIP4}/32"), &format!("{VIP6}/128")], true);
    for r in vip_routes(&routes) {
        assert_eq!(
            (r.kind.as_str(), r.table.as_str(), r.metric),
            ("local", "local", Some(512)),
            "{r:#?}"
        );
        assert_eq!(r.hops.len(), 1, "{r:#?}");
        assert_eq!(r.hops[0].dev.as_deref(), Some("lo"), "{r:#?}");
        assert_eq!(r.hops[0].gateway, None, "{r:#?}");
    }
    let fib = n1.tern.fib().unwrap();
    assert_eq!(fib["vip_routes"], 2, "{fib:#}");
    for ((vip, counter), client_addr) in vips().into_iter().zip(["10.224.1.11", "fd00:101:224:1::11"]) {
        let (result, packets) = nft::fetch_counted(client, &n1.ns, vip, counter);
        report.push(format!(
            "advertised: {vip}: {result:?}, {packets} packets on the uplink"
        ));
        let answer = result.unwrap_or_else(|e| panic!("{vip} from the client pod: {e}"));
        assert!(
            answer.starts_with(GREETING) && answer.contains(client_addr),
            "{vip}: {answer:?}"
        );
        assert_eq!(
            packets, 0,
            "packets to {vip} left the uplink although it answered"
        );
    }
    // From the node itself too (the `output` chain).
    for (vip, counter) in vips() {
        let (result, packets) = nft::fetch_counted(&n1.ns, &n1.ns, vip, counter);
        report.push(format!(
            "advertised, from the node: {vip}: {result:?}, {packets} packets"
        ));
        let answer = result.unwrap_or_else(|e| panic!("{vip} from the node: {e}"));
        assert!(answer.starts_with(GREETING), "{vip}: {answer:?}");
        assert_eq!(
            packets, 0,
            "packets to {vip} left the uplink although it answered"
        );
    }

    // 3. The same, with tern's VIP routes disabled (a restart with another
    // configuration). Cilium still advertises the VIP and the router has it
    // as behind node 1, so the packets come back and go out again.
    for p in [format!("{VIP4}/32"), format!("{VIP6}/128")] {
        wait_until(timeout(10), &format!("{p} in the router, via node 1"), || {
            let paths = lab.router(0).frr().paths(&p)?;
            if paths
                .iter()
                .any(|x| x.valid && x.best && x.next_hops.iter().any(|n| n == "fd00:101::21"))
            {
                Ok(())
            } else {
                Err(format!("{paths:?}"))
            }
        });
    }
    let node = lab.node_mut(1);
    node.reconfigure(&[], "[fib.vip]\nenabled = false\n");
    node.tern.stop();
    node.tern.start_again();
    let t = Instant::now();
    let n1 = lab.node(1);
    let client = &n1.pod(11).ns;
    // The route stays until routing has converged after the start (Cilium
    // has to come back), then goes.
    let routes = n1.wait_kernel_within(
        session_timeout(),
        &[&format!("{VIP4}/32"), &format!("{VIP6}/128")],
        false,
    );
    report.push(format!("VIP routes gone {:?} after the restart", t.elapsed()));
    assert!(vip_routes(&routes).is_empty(), "{routes:#?}");
    n1.wait_sessions();
    let fib = n1.tern.fib().unwrap();
    assert_eq!(fib["vip_routes"], 0, "{fib:#}");
    for (vip, counter) in vips() {
        let (result, packets) = nft::fetch_counted(client, &n1.ns, vip, counter);
        report.push(format!(
            "advertised, VIP routes off: {vip}: {result:?}, {packets} packets on the uplink"
        ));
        assert!(
            result.is_err(),
            "{vip} answered without the VIP route: {result:?}"
        );
        assert!(packets > 0, "no packet to {vip} left the uplink: {result:?}");
    }

    let served = backend.finish();
    report.push(format!("the backend served {served:?}"));
    println!("{}", report.join("\n"));
}
