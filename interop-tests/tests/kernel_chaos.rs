//! Kernel chaos with a table installed: a raw feeder gives a node 100,000
//! routes through one next hop (one nexthop object), then someone deletes
//! a thousand of tern's routes, flushes its nexthop objects (the kernel
//! takes every route with them), puts other protocols' routes in place of
//! a hundred of them, and flaps the node's link. After each, the kernel
//! must hold exactly what tern intends, well within a few scan intervals
//! (2 s here), and the other protocols' routes are never touched.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bgp_proto::{AsPath, Attributes, Context, Family, NextHop, Nlri, Origin, UpdateBuilder};
use bytes::BytesMut;
use interop_tests::raw::open_message;
use interop_tests::{Netns, RawPeer, Topology, wait_until};
use ipnet::{IpNet, Ipv4Net};

const FEEDER_V6: &str = "fd00:101::99";
const FEEDER_V4: &str = "10.101.0.99";
const FEEDER_AS: u32 = 65099;
const ROUTES: u32 = 100_000;
/// Of the table, these are taken over by another protocol.
const TAKEN: u32 = 100;

fn prefix(i: u32) -> Ipv4Net {
    Ipv4Net::new((0x0b00_0000 + (i << 8)).into(), 24).expect("prefix")
}

/// The whole table as UPDATEs, then End-of-RIB.
fn table() -> Vec<u8> {
    let mut b = UpdateBuilder::new(Context::ebgp());
    let attrs = Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence([FEEDER_AS])),
        ..Attributes::default()
    };
    let nlri: Vec<Nlri> = (0..ROUTES).map(|i| Nlri::new(IpNet::V4(prefix(i)))).collect();
    let mut buf = BytesMut::new();
    b.announce(
        &mut buf,
        Family::IPV4_UNICAST,
        &attrs,
        NextHop::V4(FEEDER_V4.parse().expect("address")),
        &nlri,
    )
    .expect("encode");
    b.end_of_rib(&mut buf, Family::IPV4_UNICAST).expect("encode");
    buf.to_vec()
}

/// Lines of `ip OBJECT show ...` in the node's namespace.
fn count(ns: &Netns, args: &[&str]) -> usize {
    ns.ip(args).lines().filter(|l| !l.trim().is_empty()).count()
}

fn ours(ns: &Netns) -> usize {
    count(ns, &["-4", "route", "show", "table", "main", "proto", "186"])
}

fn statics(ns: &Netns) -> usize {
    count(ns, &["-4", "route", "show", "table", "main", "proto", "static"])
}

fn objects(ns: &Netns) -> usize {
    count(ns, &["nexthop", "show", "proto", "186"])
}

/// Waits until the node holds `want` routes of tern's; returns how long.
fn back_to(ns: &Netns, want: usize, what: &str) -> Duration {
    let t = Instant::now();
    wait_until(Duration::from_secs(30), what, || {
        let n = ours(ns);
        if n == want {
            Ok(())
        } else {
            Err(format!("{n} of tern's routes, want {want}"))
        }
    });
    t.elapsed()
}

#[test]
fn the_kernel_ends_as_tern_intends_after_chaos() {
    let Some(lab) = Topology::builder("chaos")
        .nodes(1)
        .fib(1, "scan-interval = 2")
        .tern_extra(
            1,
            &format!(
                "[[peer]]\nname = \"feeder\"\naddress = \"{FEEDER_V6}\"\nremote-asn = {FEEDER_AS}\nrole = \"upstream\"\npassive = true\n"
            ),
        )
        .start()
    else {
        return;
    };
    let router = &lab.router(0).ns;
    router.ip(&[
        "addr",
        "add",
        &format!("{FEEDER_V6}/64"),
        "dev",
        "eth-seg",
        "nodad",
    ]);
    router.ip(&["addr", "add", &format!("{FEEDER_V4}/24"), "dev", "eth-seg"]);
    lab.wait_converged();
    let ns = &lab.node(1).ns;
    let base = ours(ns);

    // The table, through one next hop.
    let node: IpAddr = lab.node(1).id.v6().parse().expect("address");
    let mut feeder = RawPeer::establish(
        router,
        FEEDER_V6.parse().expect("address"),
        node,
        lab.node(1).id.asn(),
        &open_message(FEEDER_AS, 0, [10, 101, 0, 99], 4),
    );
    feeder.send(&table());
    let full = base + ROUTES as usize;
    let took = back_to(ns, full, "the table in the kernel");
    println!("{ROUTES} routes installed in {took:?}");
    let objects_before = objects(ns);
    assert!(objects_before >= 1, "tern uses nexthop objects");

    // A thousand of tern's routes deleted.
    let deletes: String = (0..1000)
        .map(|i| format!("route del {} proto 186\n", prefix(i * 97)))
        .collect();
    ns.exec_stdin(&["ip", "-batch", "-"], &deletes)
        .expect("delete routes");
    let took = back_to(ns, full, "the deleted routes back");
    println!("1000 deleted routes back in {took:?}");

    // tern's nexthop objects flushed: the kernel takes every route along.
    // (tern may have put them back before the next line runs.)
    ns.ip(&["nexthop", "flush", "proto", "186"]);
    let took = back_to(ns, full, "the table back after its nexthop objects went");
    println!("{ROUTES} routes and their nexthop objects back in {took:?}");
    assert_eq!(objects(ns), objects_before, "the same objects, no more");

    // Another protocol's routes in place of a hundred of tern's, with the
    // same metric: tern does not write over them.
    let takeovers: String = (0..TAKEN)
        .map(|i| {
            format!(
                "route replace {} via 10.101.0.254 dev eth-up proto static metric 512\n",
                prefix(i)
            )
        })
        .collect();
    ns.exec_stdin(&["ip", "-batch", "-"], &takeovers)
        .expect("replace routes");
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        statics(ns),
        TAKEN as usize,
        "the other protocol's routes are untouched"
    );
    assert_eq!(ours(ns), full - TAKEN as usize);
    println!(
        "{TAKEN} routes of another protocol left alone over {:?}",
        t.elapsed()
    );

    // The node's link flaps: the kernel drops the routes through it, the
    // other protocol's too; tern's come back, now for every prefix no other
    // protocol holds.
    ns.ip(&["link", "set", "eth-up", "down"]);
    std::thread::sleep(Duration::from_millis(300));
    ns.ip(&["link", "set", "eth-up", "up"]);
    let t = Instant::now();
    wait_until(
        Duration::from_secs(30),
        "the table back after a link flap",
        || {
            let (n, s) = (ours(ns), statics(ns));
            if n + s == full {
                Ok(())
            } else {
                Err(format!("{n} of tern's, {s} static"))
            }
        },
    );
    println!("the table back {:?} after a link flap", t.elapsed());

    // Exactly what tern intends, a few scans later: no orphan or duplicate
    // object, nothing failing.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(ours(ns) + statics(ns), full);
    assert_eq!(
        objects(ns),
        objects_before,
        "{}",
        ns.ip(&["nexthop", "show", "proto", "186"])
    );
    let fib = lab.node(1).tern.fib().expect("fib");
    assert_eq!(fib["failing"], 0, "{fib:#}");
    drop(feeder);
}
