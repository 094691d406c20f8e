//! Kernel chaos with a table installed: a raw feeder gives a node 100,000
//! routes through one next hop (one nexthop object), then someone deletes
//! a thousand of tern's routes, flushes its nexthop objects (the kernel
//! takes every route with them), puts other protocols' routes in place of
//! a hundred of them, and flaps the node's link. After each, the kernel
//! must hold exactly what tern intends, well within a few scan intervals
//! (2 s here), and the other protocols' routes are never touched.

use std::time::{Duration, Instant};

use interop_tests::feeder::{add_feeder_addresses, main_prefixes, prefix, table, with_feeder};
use interop_tests::{Netns, RawPeer, Topology, wait_until};

/// Of the table, these are taken over by another protocol.
const TAKEN: u32 = 100;
const ROUTES: u32 = 100_000;

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

/// Waits until the node holds `want` routes of tern's (30 s, and a second
/// more per 10,000 routes to install or remove); returns how long.
fn back_to(ns: &Netns, want: usize, what: &str) -> Duration {
    let t = Instant::now();
    let work = want.max(ours(ns)) as u64;
    let within = Duration::from_secs(30 + work / 10_000);
    wait_until(within, what, || {
        let n = ours(ns);
        if n == want {
            Ok(())
        } else {
            Err(format!("{n} of tern's routes, want {want}"))
        }
    });
    t.elapsed()
}

/// One node whose tern takes the passive feeder (role upstream: its
/// routes are installed) in the router's namespace.
fn lab(tag: &str) -> Option<Topology> {
    let lab = with_feeder(Topology::builder(tag).nodes(1).fib(1, "scan-interval = 2")).start()?;
    add_feeder_addresses(&lab);
    lab.wait_converged();
    Some(lab)
}

fn feeder(lab: &Topology) -> RawPeer {
    interop_tests::feeder::connect(lab)
}

#[test]
fn the_kernel_ends_as_tern_intends_after_chaos() {
    let Some(lab) = lab("chaos") else {
        return;
    };
    let ns = &lab.node(1).ns;
    let base = ours(ns);

    // The table, through one next hop.
    let mut feeder = feeder(&lab);
    feeder.send(&table(ROUTES));
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

/// SIGKILL while a table loads (a tenth or half of it installed), then a
/// restart:
/// tern adopts what it finds,
/// the feeder sends the table again, and the kernel ends with exactly the
/// table and its one nexthop object beside the router's: no orphan, no
/// duplicate. The suite runs 2 trials of 100,000 routes; the full run is
/// `TERN_BIN=$PWD/target/release/tern TERN_SIGKILL_TRIALS=10
/// TERN_SIGKILL_ROUTES=1000000 cargo test -p interop-tests --test
/// kernel_chaos sigkill`.
#[test]
fn sigkill_during_a_load_leaves_the_kernel_exact() {
    let env = |k: &str, d: u32| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let trials = env("TERN_SIGKILL_TRIALS", 2);
    let routes = env("TERN_SIGKILL_ROUTES", 100_000);
    let Some(mut lab) = lab("sigkill") else {
        return;
    };
    let base = ours(&lab.node(1).ns);
    // The upstream router's routes have their object; the table adds one.
    let base_objects = objects(&lab.node(1).ns);
    let full = base + routes as usize;
    let bytes = table(routes);
    for trial in 0..trials {
        // The table goes on a thread of its own; tern is killed partway:
        // when a tenth of it is in the kernel, or half.
        let f = feeder(&lab);
        let sender = {
            let bytes = bytes.clone();
            std::thread::spawn(move || {
                let mut f = f;
                f.send(&bytes);
                f
            })
        };
        let partway = routes as usize / if trial % 2 == 0 { 10 } else { 2 };
        let main_before = main_prefixes(&lab.node(1).ns);
        wait_until(Duration::from_secs(120), "the load under way", || {
            let n = main_prefixes(&lab.node(1).ns);
            if n >= main_before + partway {
                Ok(())
            } else {
                Err(format!("{n}"))
            }
        });
        lab.node_mut(1).tern.kill();
        let installed = ours(&lab.node(1).ns);
        drop(sender.join().expect("sender"));
        lab.node_mut(1).tern.start_again();
        let t = Instant::now();
        let mut f = feeder(&lab);
        f.send(&bytes);
        back_to(&lab.node(1).ns, full, "the table after the restart");
        // A few scans later, still exactly that.
        std::thread::sleep(Duration::from_secs(5));
        let ns = &lab.node(1).ns;
        assert_eq!(ours(ns), full);
        assert_eq!(
            objects(ns),
            base_objects + 1,
            "{}",
            ns.ip(&["nexthop", "show", "proto", "186"])
        );
        println!(
            "trial {}: killed with {} of {routes} routes installed; exact again {:?} after the restart",
            trial + 1,
            installed - base,
            t.elapsed()
        );
        // The feeder goes: the next trial starts from an empty table.
        drop(f);
        back_to(&lab.node(1).ns, base, "the table withdrawn");
    }
}
