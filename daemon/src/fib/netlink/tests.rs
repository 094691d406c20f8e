//! Against the kernel, each test in a network namespace of its own with a
//! veth pair: `v0` (10.0.0.1/24, fd00::1/64) and `v1`, both up, so
//! gateways 10.0.0.2-5 and fd00::2-5 are on connected subnets. Needs root;
//! skipped otherwise (and failing under `CI=true`).

use std::future::Future;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bgp_proto::Family;
use ipnet::IpNet;
use nix::sched::{CloneFlags, setns};

use super::*;

/// A network namespace with the veth pair; deleted on drop, even when the
/// test fails.
struct Lab {
    name: String,
}

impl Lab {
    /// The lab, or `None` (after saying why) when not root.
    fn new(test: &str) -> Option<Lab> {
        if !nix::unistd::geteuid().is_root() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("kernel FIB tests need root, and CI=true says they must run");
            }
            println!("{test}: skipped, needs root to create network namespaces");
            return None;
        }
        let name = format!("tern-fib-{}-{test}", std::process::id());
        let name: String = name.chars().take(60).collect();
        run_ip(&["netns", "add", &name]);
        let lab = Lab { name };
        for cmd in [
            "link set lo up",
            "link add v0 type veth peer name v1",
            "link set v0 up",
            "link set v1 up",
            "addr add 10.0.0.1/24 dev v0",
            "addr add fd00::1/64 dev v0 nodad",
        ] {
            lab.ip(cmd);
        }
        Some(lab)
    }

    /// `ip -n LAB ARGS`, which must succeed; its output.
    fn ip(&self, args: &str) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend(args.split_whitespace());
        run_ip(&all)
    }

    /// Runs `test` in the namespace, on a thread of its own with a tokio
    /// runtime; a panic there fails the test.
    fn run<F, Fut>(&self, test: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let path = format!("/run/netns/{}", self.name);
        let netns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        let thread = std::thread::spawn(move || {
            setns(&netns, CloneFlags::CLONE_NEWNET).expect("setns");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(test());
        });
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn run_ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("cannot run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip_of(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn unicast(prefix: &str, nexthops: Vec<KernelNextHop>) -> KernelRoute {
    KernelRoute {
        prefix: prefix.parse().unwrap(),
        table: 254,
        protocol: RTPROT_BGP,
        kind: RouteKind::Unicast,
        metric: 20,
        nexthops,
        nhid: None,
        prefsrc: None,
    }
}

fn via(gateway: &str, ifindex: Option<u32>, weight: u8) -> KernelNextHop {
    KernelNextHop {
        gateway: Some(ip_of(gateway)),
        ifindex,
        weight,
    }
}

async fn ifindex(nl: &mut Netlink, name: &str) -> u32 {
    let links = nl.links().await.unwrap();
    links
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no {name} in {links:?}"))
        .ifindex
}

async fn ours(nl: &mut Netlink, family: Family) -> Vec<KernelRoute> {
    let mut routes = nl.dump_routes(family, None, Some(RTPROT_BGP)).await.unwrap();
    routes.sort_by_key(|r| r.prefix);
    routes
}

async fn apply_ok(nl: &mut Netlink, ops: &[Op]) {
    let results = nl.apply(ops).await;
    for (op, result) in ops.iter().zip(&results) {
        assert_eq!(result, &Ok(()), "{op:?}");
    }
}

fn replace(routes: &[&KernelRoute]) -> Vec<Op> {
    routes.iter().map(|r| Op::ReplaceRoute((*r).clone())).collect()
}

fn delete(routes: &[&KernelRoute]) -> Vec<Op> {
    routes.iter().map(|r| Op::DeleteRoute((*r).clone())).collect()
}

#[test]
fn handles_and_their_futures_are_send() {
    // The FIB task owns both handles inside a spawned tokio task.
    fn send<T: Send>(_: &T) {}
    fn futures(nl: &mut Netlink, monitor: &mut Monitor) {
        send(nl);
        send(&nl.apply(&[]));
        send(&nl.dump_routes(Family::IPV4_UNICAST, None, None));
        send(&nl.dump_nexthops(None));
        send(&nl.links());
        send(&nl.addresses());
        send(&nl.supports_nexthop_objects());
        send(monitor);
        send(&monitor.next());
    }
    let _checked = futures as fn(&mut Netlink, &mut Monitor);
}

#[test]
fn unicast_routes_replace_and_delete() {
    let Some(lab) = Lab::new("unicast") else { return };
    lab.run(|| async {
        let mut nl = Netlink::open().unwrap();
        let v0 = ifindex(&mut nl, "v0").await;
        let r4 = unicast("10.1.0.0/24", vec![via("10.0.0.2", Some(v0), 1)]);
        let r6 = unicast("fd00:1::/48", vec![via("fd00::2", Some(v0), 1)]);
        apply_ok(&mut nl, &replace(&[&r4, &r6])).await;
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, vec![r4.clone()]);
        assert_eq!(ours(&mut nl, Family::IPV6_UNICAST).await, vec![r6.clone()]);

        // Replace swaps the next hop in place; a gateway given without its
        // device comes back with the device the kernel resolved.
        let r4b = unicast("10.1.0.0/24", vec![via("10.0.0.3", None, 1)]);
        let r6b = unicast("fd00:1::/48", vec![via("fd00::3", None, 1)]);
        apply_ok(&mut nl, &replace(&[&r4b, &r6b, &r4b])).await;
        let resolved = |r: &KernelRoute| KernelRoute {
            nexthops: r
                .nexthops
                .iter()
                .map(|nh| KernelNextHop {
                    ifindex: Some(v0),
                    ..nh.clone()
                })
                .collect(),
            ..r.clone()
        };
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, [resolved(&r4b)]);
        assert_eq!(ours(&mut nl, Family::IPV6_UNICAST).await, [resolved(&r6b)]);

        // Delete matches without next hops; a second delete finds nothing.
        apply_ok(&mut nl, &delete(&[&r4, &r6])).await;
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, []);
        assert_eq!(ours(&mut nl, Family::IPV6_UNICAST).await, []);
        let again = nl.apply(&delete(&[&r4, &r6])).await;
        assert!(
            again
                .iter()
                .all(|r| r.as_ref().is_err_and(|e| e.errno == libc::ESRCH)),
            "{again:?}"
        );
    });
}

#[test]
fn ecmp_round_trips_through_dump() {
    let Some(lab) = Lab::new("ecmp") else { return };
    lab.run(|| async {
        let mut nl = Netlink::open().unwrap();
        let v0 = Some(ifindex(&mut nl, "v0").await);
        let r4 = unicast(
            "10.2.0.0/24",
            vec![
                via("10.0.0.2", v0, 1),
                via("10.0.0.3", v0, 2),
                via("10.0.0.4", v0, 1),
                via("10.0.0.5", v0, 3),
            ],
        );
        let r6 = unicast(
            "fd00:2::/48",
            vec![
                via("fd00::2", v0, 1),
                via("fd00::3", v0, 1),
                via("fd00::4", v0, 4),
            ],
        );
        apply_ok(&mut nl, &replace(&[&r4, &r6])).await;
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, vec![r4.clone()]);
        assert_eq!(ours(&mut nl, Family::IPV6_UNICAST).await, vec![r6.clone()]);

        // Replacing with fewer paths drops the others (IPv6 siblings too).
        let r4b = unicast(
            "10.2.0.0/24",
            vec![via("10.0.0.2", v0, 1), via("10.0.0.5", v0, 1)],
        );
        let r6b = unicast("fd00:2::/48", vec![via("fd00::3", v0, 1), via("fd00::5", v0, 1)]);
        apply_ok(&mut nl, &replace(&[&r4b, &r6b])).await;
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, vec![r4b.clone()]);
        assert_eq!(ours(&mut nl, Family::IPV6_UNICAST).await, vec![r6b.clone()]);

        // An IPv6 ECMP route is deleted whole.
        apply_ok(&mut nl, &delete(&[&r4b, &r6b])).await;
        assert_eq!(ours(&mut nl, Family::IPV6_UNICAST).await, []);
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, []);
    });
}

#[test]
fn ipv4_prefix_via_ipv6_gateway_round_trips() {
    let Some(lab) = Lab::new("via") else { return };
    let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let name = lab.name.clone();
    let out = shown.clone();
    lab.run(move || async move {
        let mut nl = Netlink::open().unwrap();
        let v0 = Some(ifindex(&mut nl, "v0").await);
        let single = unicast("10.3.0.0/24", vec![via("fd00::2", v0, 1)]);
        let mixed = unicast("10.3.1.0/24", vec![via("10.0.0.2", v0, 1), via("fd00::3", v0, 1)]);
        apply_ok(&mut nl, &replace(&[&single, &mixed])).await;
        assert_eq!(
            ours(&mut nl, Family::IPV4_UNICAST).await,
            [single.clone(), mixed.clone()]
        );
        *out.lock().unwrap() = run_ip(&["-n", &name, "route", "show", "proto", "186"]);
        apply_ok(&mut nl, &delete(&[&single, &mixed])).await;
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, []);
    });
    let shown = shown.lock().unwrap();
    assert!(shown.contains("10.3.0.0/24 via inet6 fd00::2 dev v0"), "{shown}");
}

#[test]
fn link_local_gateways_carry_their_device() {
    let Some(lab) = Lab::new("linklocal") else { return };
    lab.run(|| async {
        let mut nl = Netlink::open().unwrap();
        let v0 = Some(ifindex(&mut nl, "v0").await);
        let r6 = unicast("fd00:4::/48", vec![via("fe80::2", v0, 1)]);
        let r4 = unicast("10.4.0.0/24", vec![via("fe80::2", v0, 1)]);
        let ecmp = unicast(
            "fd00:4:1::/48",
            vec![via("fe80::2", v0, 1), via("fe80::3", v0, 1)],
        );
        apply_ok(&mut nl, &replace(&[&r6, &r4, &ecmp])).await;
        assert_eq!(
            ours(&mut nl, Family::IPV6_UNICAST).await,
            [r6.clone(), ecmp.clone()]
        );
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, vec![r4.clone()]);

        // Without its device the kernel refuses a link-local gateway.
        let bare = unicast("fd00:4:2::/48", vec![via("fe80::2", None, 1)]);
        let results = nl.apply(&replace(&[&bare])).await;
        let error = results[0].clone().unwrap_err();
        assert_eq!(error.errno, libc::EINVAL, "{error}");
        assert!(error.message.contains("device"), "{error}");
    });
}

#[test]
fn local_and_blackhole_routes() {
    let Some(lab) = Lab::new("local") else { return };
    let name = lab.name.clone();
    let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let out = shown.clone();
    lab.run(move || async move {
        let mut nl = Netlink::open().unwrap();
        let lo = ifindex(&mut nl, "lo").await;
        let local = |prefix: &str, metric| KernelRoute {
            table: 255,
            kind: RouteKind::Local,
            metric,
            ..unicast(prefix, vec![KernelNextHop::device(lo)])
        };
        let blackhole = |prefix: &str| KernelRoute {
            kind: RouteKind::Blackhole,
            ..unicast(prefix, vec![])
        };
        let (l4, l6) = (local("10.96.1.10/32", 0), local("fd00:96::10/128", 0));
        let (b4, b6) = (blackhole("10.5.0.0/24"), blackhole("fd00:5::/48"));
        apply_ok(&mut nl, &replace(&[&l4, &l6, &b4, &b6])).await;
        *out.lock().unwrap() = run_ip(&["-n", &name, "route", "show", "table", "local", "proto", "186"]);

        let v4_local = nl
            .dump_routes(Family::IPV4_UNICAST, Some(255), Some(RTPROT_BGP))
            .await
            .unwrap();
        assert_eq!(v4_local, vec![l4.clone()]);
        // IPv6 has no metric 0: the kernel makes it 1024.
        let v6_local = nl
            .dump_routes(Family::IPV6_UNICAST, Some(255), Some(RTPROT_BGP))
            .await
            .unwrap();
        assert_eq!(
            v6_local,
            [KernelRoute {
                metric: 1024,
                ..l6.clone()
            }]
        );
        // Blackholes have no next hops (IPv6 reports them on lo).
        let main4 = nl
            .dump_routes(Family::IPV4_UNICAST, Some(254), Some(RTPROT_BGP))
            .await
            .unwrap();
        assert_eq!(main4, vec![b4.clone()]);
        let main6 = nl
            .dump_routes(Family::IPV6_UNICAST, Some(254), Some(RTPROT_BGP))
            .await
            .unwrap();
        assert_eq!(main6, vec![b6.clone()]);
        // A table that does not exist is empty.
        assert_eq!(
            nl.dump_routes(Family::IPV4_UNICAST, Some(4000), None)
                .await
                .unwrap(),
            []
        );

        let l6_as_dumped = KernelRoute {
            metric: 1024,
            ..l6.clone()
        };
        apply_ok(&mut nl, &delete(&[&l4, &l6_as_dumped, &b4, &b6])).await;
        assert_eq!(
            nl.dump_routes(Family::IPV6_UNICAST, None, Some(RTPROT_BGP))
                .await
                .unwrap(),
            []
        );
        assert_eq!(
            nl.dump_routes(Family::IPV4_UNICAST, None, Some(RTPROT_BGP))
                .await
                .unwrap(),
            []
        );
    });
    let shown = shown.lock().unwrap();
    assert!(shown.contains("local 10.96.1.10 dev lo"), "{shown}");
}

#[test]
fn nexthop_objects_and_routes_using_them() {
    let Some(lab) = Lab::new("nhobj") else { return };
    lab.ip("nexthop add id 900 via 10.0.0.2 dev v0 proto static");
    lab.run(|| async {
        let mut nl = Netlink::open().unwrap();
        assert!(nl.supports_nexthop_objects().await);
        let v0 = ifindex(&mut nl, "v0").await;
        let single = |id, nh: KernelNextHop| NexthopObject {
            id,
            protocol: RTPROT_BGP,
            spec: NexthopSpec::Single(nh),
        };
        let group = |id, members: Vec<(u32, u8)>| NexthopObject {
            id,
            protocol: RTPROT_BGP,
            spec: NexthopSpec::Group(members),
        };
        let objects = vec![
            single(1, via("10.0.0.2", Some(v0), 1)),
            single(2, via("10.0.0.3", Some(v0), 1)),
            single(3, via("fd00::2", Some(v0), 1)),
            single(4, via("fd00::3", Some(v0), 1)),
            single(5, KernelNextHop::device(v0)),
            single(
                6,
                KernelNextHop {
                    gateway: None,
                    ifindex: None,
                    weight: 1,
                },
            ),
            group(10, vec![(1, 1), (2, 3)]),
            group(11, vec![(3, 1), (4, 1)]),
        ];
        let with_nhid = |prefix: &str, id| KernelRoute {
            nhid: Some(id),
            ..unicast(prefix, vec![])
        };
        let routes = [
            with_nhid("10.6.0.0/24", 10),
            with_nhid("10.6.1.0/24", 11),
            with_nhid("10.6.2.0/24", 5),
            with_nhid("fd00:6::/48", 11),
            with_nhid("fd00:6:1::/48", 5),
        ];
        let mut ops: Vec<Op> = objects.iter().cloned().map(Op::ReplaceNexthop).collect();
        ops.extend(routes.iter().cloned().map(Op::ReplaceRoute));
        apply_ok(&mut nl, &ops).await;

        let mut dumped = nl.dump_nexthops(Some(RTPROT_BGP)).await.unwrap();
        dumped.sort_by_key(|o| o.id);
        assert_eq!(dumped, objects);
        let all = nl.dump_nexthops(None).await.unwrap();
        assert!(
            all.iter()
                .any(|o| o.id == 900 && o.protocol == libc::RTPROT_STATIC),
            "{all:?}"
        );

        // Routes come back with their id and no next hops of their own.
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, routes[..3]);
        assert_eq!(ours(&mut nl, Family::IPV6_UNICAST).await, routes[3..]);

        // IPv6 routes cannot use IPv4 objects.
        let results = nl
            .apply(&[Op::ReplaceRoute(with_nhid("fd00:6:2::/48", 10))])
            .await;
        assert_eq!(
            results[0].as_ref().unwrap_err().errno,
            libc::EINVAL,
            "{results:?}"
        );

        // A route on a blackhole object is reported as a blackhole route.
        apply_ok(&mut nl, &[Op::ReplaceRoute(with_nhid("10.6.3.0/24", 6))]).await;
        let v4 = ours(&mut nl, Family::IPV4_UNICAST).await;
        assert_eq!(
            v4[3],
            KernelRoute {
                kind: RouteKind::Blackhole,
                ..with_nhid("10.6.3.0/24", 6)
            }
        );

        // Replacing a group in place keeps its routes.
        let smaller = group(10, vec![(2, 1)]);
        apply_ok(&mut nl, &[Op::ReplaceNexthop(smaller.clone())]).await;
        let dumped = nl.dump_nexthops(Some(RTPROT_BGP)).await.unwrap();
        assert!(dumped.contains(&smaller), "{dumped:?}");
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await[0], routes[0]);

        // Deleting an object deletes the routes that use it.
        apply_ok(&mut nl, &[Op::DeleteNexthop(11)]).await;
        assert_eq!(ours(&mut nl, Family::IPV6_UNICAST).await, routes[4..]);
        assert!(!ours(&mut nl, Family::IPV4_UNICAST).await.contains(&routes[1]));

        let mut ops: Vec<Op> = [10, 5, 6, 4, 3, 2, 1]
            .into_iter()
            .map(Op::DeleteNexthop)
            .collect();
        ops.push(Op::DeleteNexthop(11));
        let results = nl.apply(&ops).await;
        assert!(results[..7].iter().all(Result::is_ok), "{results:?}");
        assert_eq!(results[7].as_ref().unwrap_err().errno, libc::ENOENT);
        assert_eq!(nl.dump_nexthops(Some(RTPROT_BGP)).await.unwrap(), []);
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, []);
        assert_eq!(
            nl.dump_nexthops(None).await.unwrap().len(),
            1,
            "the static object stays"
        );
    });
}

#[test]
fn dumps_return_only_our_protocol_and_others_are_untouched() {
    let Some(lab) = Lab::new("proto") else { return };
    lab.ip("route add 10.7.0.0/24 via 10.0.0.2 proto static");
    lab.ip("-6 route add fd00:7::/48 via fd00::2 proto static");
    lab.run(|| async {
        let mut nl = Netlink::open().unwrap();
        let v0 = Some(ifindex(&mut nl, "v0").await);
        let r4 = unicast("10.7.1.0/24", vec![via("10.0.0.3", v0, 1)]);
        let r6 = unicast("fd00:7:1::/48", vec![via("fd00::3", v0, 1)]);
        apply_ok(&mut nl, &replace(&[&r4, &r6])).await;
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, vec![r4.clone()]);
        assert_eq!(ours(&mut nl, Family::IPV6_UNICAST).await, vec![r6.clone()]);
        let everything = nl
            .dump_routes(Family::IPV4_UNICAST, Some(254), None)
            .await
            .unwrap();
        let statics: Vec<_> = everything
            .iter()
            .filter(|r| r.protocol == libc::RTPROT_STATIC)
            .collect();
        assert_eq!(statics.len(), 1, "{everything:?}");
        assert_eq!(statics[0].prefix, "10.7.0.0/24".parse::<IpNet>().unwrap());

        // A delete of our protocol does not match the static route, not
        // even with metric 0 (which IPv4 takes as "any metric").
        let theirs4 = KernelRoute {
            metric: 0,
            ..unicast("10.7.0.0/24", vec![])
        };
        let theirs6 = KernelRoute {
            metric: 1024,
            ..unicast("fd00:7::/48", vec![])
        };
        let results = nl.apply(&delete(&[&theirs4, &theirs6, &r4, &r6])).await;
        assert_eq!(results[0].as_ref().unwrap_err().errno, libc::ESRCH);
        assert_eq!(results[1].as_ref().unwrap_err().errno, libc::ESRCH);
        assert!(results[2].is_ok() && results[3].is_ok(), "{results:?}");
    });
    assert!(
        lab.ip("route show proto static")
            .contains("10.7.0.0/24 via 10.0.0.2")
    );
    assert!(
        lab.ip("-6 route show proto static")
            .contains("fd00:7::/48 via fd00::2")
    );
}

#[test]
fn replace_takes_over_a_route_of_another_protocol_with_the_same_metric() {
    // A kernel fact the FIB logic must plan around: NLM_F_REPLACE matches
    // prefix, table and metric, whatever the protocol.
    let Some(lab) = Lab::new("takeover") else { return };
    lab.ip("route add 10.8.0.0/24 via 10.0.0.2 proto static metric 20");
    lab.run(|| async {
        let mut nl = Netlink::open().unwrap();
        let r4 = unicast("10.8.0.0/24", vec![via("10.0.0.3", None, 1)]);
        apply_ok(&mut nl, &replace(&[&r4])).await;
    });
    assert_eq!(lab.ip("route show proto static"), "");
    assert!(
        lab.ip("route show proto 186")
            .contains("10.8.0.0/24 via 10.0.0.3")
    );
}

#[test]
fn errors_come_back_per_op() {
    let Some(lab) = Lab::new("errors") else { return };
    lab.run(|| async {
        let mut nl = Netlink::open().unwrap();
        let good4 = unicast("10.9.0.0/24", vec![via("10.0.0.2", None, 1)]);
        let unreachable = unicast("10.9.1.0/24", vec![via("10.99.0.1", None, 1)]);
        let good6 = unicast("fd00:9::/48", vec![via("fd00::2", None, 1)]);
        let missing = unicast("10.9.2.0/24", vec![]);
        let ops = vec![
            Op::ReplaceRoute(good4.clone()),
            Op::ReplaceRoute(unreachable),
            Op::ReplaceRoute(good6.clone()),
            Op::DeleteRoute(missing),
            Op::ReplaceRoute(KernelRoute {
                nhid: Some(4242),
                ..unicast("10.9.3.0/24", vec![])
            }),
            Op::DeleteNexthop(4242),
        ];
        // The same ops written in the background, handed over in two
        // pieces and encoded in batches of one request each (the failures'
        // positions cross pieces and batches), from a clean kernel: the
        // same answers.
        nl.window = 1;
        let mut write = nl.start_write();
        let (a, b) = ops.split_at(3);
        write.extend(a.to_vec());
        write.extend(b.to_vec());
        let (back, early) = write.finish().await.unwrap();
        assert_eq!(back, ops);
        let early: Vec<_> = early.into_iter().map(|r| r.map_err(|e| e.errno)).collect();
        apply_ok(
            &mut nl,
            &[Op::DeleteRoute(good4.clone()), Op::DeleteRoute(good6.clone())],
        )
        .await;
        nl.window = 1024;
        let results = nl.apply(&ops).await;
        let errno = |i: usize| results[i].clone().map_err(|e| e.errno);
        assert_eq!(early, (0..ops.len()).map(errno).collect::<Vec<_>>());
        assert_eq!(errno(0), Ok(()));
        assert_eq!(errno(1), Err(libc::ENETUNREACH), "{results:?}");
        assert_eq!(errno(2), Ok(()));
        assert_eq!(errno(3), Err(libc::ESRCH));
        assert_eq!(errno(4), Err(libc::EINVAL));
        assert_eq!(errno(5), Err(libc::ENOENT));
        let message = &results[1].as_ref().unwrap_err().message;
        assert!(message.contains("gateway"), "extended ACK message: {message}");
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await.len(), 1);
        assert_eq!(ours(&mut nl, Family::IPV6_UNICAST).await.len(), 1);
    });
}

#[test]
fn a_hundred_thousand_routes_in_one_apply() {
    let Some(lab) = Lab::new("100k") else { return };
    lab.run(|| async {
        const ROUTES: u32 = 100_000;
        let mut nl = Netlink::open().unwrap();
        let base = u32::from(std::net::Ipv4Addr::new(10, 128, 0, 0));
        let routes: Vec<KernelRoute> = (0..ROUTES)
            .map(|i| {
                let prefix = IpNet::new(IpAddr::V4((base + i).into()), 32).unwrap();
                KernelRoute {
                    prefix,
                    ..unicast("0.0.0.0/0", vec![via("10.0.0.2", None, 1)])
                }
            })
            .collect();
        let started = Instant::now();
        let results = nl
            .apply(&routes.iter().cloned().map(Op::ReplaceRoute).collect::<Vec<_>>())
            .await;
        let install = started.elapsed();
        let failed: Vec<_> = results.iter().filter(|r| r.is_err()).take(3).collect();
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await.len(), ROUTES as usize);
        let started = Instant::now();
        let results = nl
            .apply(&routes.into_iter().map(Op::DeleteRoute).collect::<Vec<_>>())
            .await;
        let remove = started.elapsed();
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(ours(&mut nl, Family::IPV4_UNICAST).await, []);
        println!("100k routes: install {install:?}, remove {remove:?}");
    });
}

async fn wait_for(monitor: &mut Monitor, what: &str, wanted: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, monitor.next()).await {
            Ok(Ok(event)) if wanted(&event) => return event,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("monitor: {e}"),
            Err(_) => panic!("no event for {what} within 5 s"),
        }
    }
}

#[test]
fn monitor_sees_routes_links_and_addresses() {
    let Some(lab) = Lab::new("monitor") else { return };
    let name = lab.name.clone();
    lab.run(move || async move {
        let ip = |args: &str| {
            let mut all = vec!["-n", &name];
            all.extend(args.split_whitespace());
            run_ip(&all);
        };
        let mut monitor = Monitor::open().unwrap();
        let mut nl = Netlink::open().unwrap();

        ip("route add 10.10.0.0/24 via 10.0.0.2 proto static");
        let prefix: IpNet = "10.10.0.0/24".parse().unwrap();
        wait_for(&mut monitor, "a static route", |e| {
            matches!(e, Event::Route { added: true, route } if route.prefix == prefix && route.protocol == libc::RTPROT_STATIC)
        })
        .await;

        let ours = unicast("fd00:10::/48", vec![via("fd00::2", None, 1)]);
        apply_ok(&mut nl, &replace(&[&ours])).await;
        wait_for(&mut monitor, "our route", |e| matches!(e, Event::Route { added: true, route } if route.prefix == ours.prefix)).await;
        apply_ok(&mut nl, &delete(&[&ours])).await;
        wait_for(&mut monitor, "our route's removal", |e| matches!(e, Event::Route { added: false, route } if route.prefix == ours.prefix)).await;

        let v0 = ifindex(&mut nl, "v0").await;
        let object = NexthopObject { id: 7, protocol: RTPROT_BGP, spec: NexthopSpec::Single(via("10.0.0.2", Some(v0), 1)) };
        apply_ok(&mut nl, &[Op::ReplaceNexthop(object)]).await;
        wait_for(&mut monitor, "a nexthop object", |e| matches!(e, Event::Nexthop { added: true, object } if object.id == 7)).await;

        ip("addr add 10.11.0.1/24 dev v0");
        let address: IpNet = "10.11.0.1/24".parse().unwrap();
        wait_for(&mut monitor, "an address", |e| matches!(e, Event::Address { added: true, address: a } if a.prefix == address)).await;

        // v1 down: v0 loses carrier, so it is not up either.
        ip("link set v1 down");
        wait_for(&mut monitor, "v1 down", |e| matches!(e, Event::Link(l) if l.name == "v1" && !l.up)).await;
        wait_for(&mut monitor, "v0 without carrier", |e| matches!(e, Event::Link(l) if l.name == "v0" && !l.up)).await;
        // ...and the kernel dropped our object without telling.
        assert_eq!(nl.dump_nexthops(Some(RTPROT_BGP)).await.unwrap(), []);
    });
}

/// The FIB's monitor does not read back what its request socket changes,
/// additions or removals; it sees its routes removed by anyone else, and
/// every other protocol's routes.
#[test]
fn monitor_ignores_our_own_changes() {
    let Some(lab) = Lab::new("ignoring") else { return };
    let name = lab.name.clone();
    lab.run(move || async move {
        let mut nl = Netlink::open().unwrap();
        let mut monitor = Monitor::open_ignoring(RTPROT_BGP, nl.port()).unwrap();
        let ip_route = |args: &[&str]| {
            let mut all = vec!["-n", name.as_str(), "route"];
            all.extend_from_slice(args);
            run_ip(&all);
        };
        let ours = unicast("fd00:10::/48", vec![via("fd00::2", None, 1)]);
        let prefix: IpNet = "10.10.0.0/24".parse().unwrap();
        apply_ok(&mut nl, &replace(&[&ours])).await;
        ip_route(&["add", "10.10.0.0/24", "via", "10.0.0.2", "proto", "static"]);
        // Each event below comes after ours: had ours been reported, it
        // would be seen first. (The kernel's own routes, as for an address
        // that finished DAD, are not what this is about.)
        let either = |e: &Event| {
            matches!(e, Event::Route { route, .. } if route.prefix == prefix || route.prefix == ours.prefix)
        };
        let first = wait_for(&mut monitor, "a route", either).await;
        assert!(
            matches!(&first, Event::Route { added: true, route } if route.prefix == prefix),
            "{first:?}"
        );
        apply_ok(&mut nl, &delete(&[&ours])).await;
        ip_route(&["del", "10.10.0.0/24", "proto", "static"]);
        let next = wait_for(&mut monitor, "a route", either).await;
        assert!(
            matches!(&next, Event::Route { added: false, route } if route.prefix == prefix),
            "{next:?}"
        );
        // Ours again, removed by someone else: drift, reported.
        apply_ok(&mut nl, &replace(&[&ours])).await;
        ip_route(&["del", "fd00:10::/48", "proto", "bgp"]);
        wait_for(
            &mut monitor,
            "our route's removal by someone else",
            |e| matches!(e, Event::Route { added: false, route } if route.prefix == ours.prefix),
        )
        .await;
    });
}

#[test]
fn monitor_reports_overrun() {
    let Some(lab) = Lab::new("overrun") else { return };
    lab.run(|| async {
        let mut monitor = Monitor::open_with(4096).unwrap();
        let mut nl = Netlink::open().unwrap();
        let base = u32::from(std::net::Ipv4Addr::new(10, 128, 0, 0));
        let ops: Vec<Op> = (0..5000)
            .map(|i| {
                let prefix = IpNet::new(IpAddr::V4((base + i).into()), 32).unwrap();
                Op::ReplaceRoute(KernelRoute {
                    prefix,
                    ..unicast("0.0.0.0/0", vec![via("10.0.0.2", None, 1)])
                })
            })
            .collect();
        apply_ok(&mut nl, &ops).await;
        wait_for(&mut monitor, "an overrun", |e| matches!(e, Event::Overrun)).await;
        // The monitor goes on after an overrun, once the queue is drained:
        // until then the kernel drops new events.
        while tokio::time::timeout(Duration::from_millis(200), monitor.next())
            .await
            .is_ok()
        {}
        let ours = unicast("10.12.0.0/24", vec![via("10.0.0.2", None, 1)]);
        apply_ok(&mut nl, &replace(&[&ours])).await;
        wait_for(
            &mut monitor,
            "a route after the overrun",
            |e| matches!(e, Event::Route { route, .. } if route.prefix == ours.prefix),
        )
        .await;
    });
}

#[test]
fn links_and_addresses() {
    let Some(lab) = Lab::new("links") else { return };
    lab.run(|| async {
        let mut nl = Netlink::open().unwrap();
        let links = nl.links().await.unwrap();
        let lo = links.iter().find(|l| l.name == "lo").expect("lo");
        assert!(lo.up, "{lo:?}");
        let v0 = links.iter().find(|l| l.name == "v0").expect("v0");
        assert!(v0.up && v0.mtu == 1500, "{v0:?}");
        let addresses = nl.addresses().await.unwrap();
        for prefix in ["10.0.0.1/24", "fd00::1/64"] {
            let want = Address {
                ifindex: v0.ifindex,
                prefix: prefix.parse().unwrap(),
            };
            assert!(addresses.contains(&want), "{want:?} not in {addresses:?}");
        }
    });
}

/// Static unreachable routes, and routes with a preferred source address
/// (bird's `krt_prefsrc`), as the kernel stores and reports them.
#[test]
fn unreachable_routes_and_preferred_sources() {
    let Some(lab) = Lab::new("prefsrc") else { return };
    lab.run(|| async {
        let mut nl = Netlink::open().unwrap();
        let v0 = ifindex(&mut nl, "v0").await;
        let unreachable = |prefix: &str| KernelRoute {
            kind: RouteKind::Unreachable,
            ..unicast(prefix, vec![])
        };
        let (u4, u6) = (unreachable("10.6.0.0/16"), unreachable("fd00:6::/48"));
        let r4 = KernelRoute {
            prefsrc: Some("10.0.0.1".parse().unwrap()),
            ..unicast("10.1.0.0/24", vec![via("10.0.0.2", Some(v0), 1)])
        };
        let r6 = KernelRoute {
            prefsrc: Some("fd00::1".parse().unwrap()),
            ..unicast("fd00:1::/48", vec![via("fd00::2", Some(v0), 1)])
        };
        apply_ok(&mut nl, &replace(&[&u4, &u6, &r4, &r6])).await;
        let mut v4 = ours(&mut nl, Family::IPV4_UNICAST).await;
        v4.sort_by_key(|r| r.prefix);
        assert_eq!(v4, vec![r4.clone(), u4.clone()]);
        let mut v6 = ours(&mut nl, Family::IPV6_UNICAST).await;
        v6.sort_by_key(|r| r.prefix);
        assert_eq!(v6, vec![r6.clone(), u6.clone()]);
        // A source address the host does not have is refused, and says so.
        let bad = KernelRoute {
            prefsrc: Some("10.9.9.9".parse().unwrap()),
            ..unicast("10.2.0.0/24", vec![via("10.0.0.2", Some(v0), 1)])
        };
        let results = nl.apply(&replace(&[&bad])).await;
        assert!(results[0].is_err(), "{results:?}");
        apply_ok(&mut nl, &delete(&[&u4, &u6, &r4, &r6])).await;
    });
}

/// `ip route get ADDRESS fibmatch`: the entry the kernel would use, more
/// specific routes and other protocols included.
#[test]
fn route_get_finds_the_entry_in_use() {
    let Some(lab) = Lab::new("routeget") else { return };
    let name = lab.name.clone();
    lab.run(move || async move {
        let mut nl = Netlink::open().unwrap();
        let v0 = ifindex(&mut nl, "v0").await;
        let ours = unicast("10.1.0.0/24", vec![via("10.0.0.2", Some(v0), 1)]);
        apply_ok(&mut nl, &replace(&[&ours])).await;
        run_ip(&[
            "-n",
            &name,
            "route",
            "add",
            "10.1.0.0/25",
            "via",
            "10.0.0.3",
            "proto",
            "static",
        ]);
        let got = nl
            .route_get("10.1.0.200".parse().unwrap())
            .await
            .unwrap()
            .expect("a route");
        assert_eq!((got.prefix, got.protocol), (ours.prefix, RTPROT_BGP));
        let got = nl
            .route_get("10.1.0.1".parse().unwrap())
            .await
            .unwrap()
            .expect("a route");
        assert_eq!(
            (got.prefix.to_string(), got.protocol),
            ("10.1.0.0/25".to_owned(), 4),
            "the more specific static route shadows ours there"
        );
        let ours6 = unicast("fd00:1::/48", vec![via("fd00::2", Some(v0), 1)]);
        apply_ok(&mut nl, &replace(&[&ours6])).await;
        let got = nl
            .route_get("fd00:1::1".parse().unwrap())
            .await
            .unwrap()
            .expect("a route");
        assert_eq!((got.prefix, got.protocol), (ours6.prefix, RTPROT_BGP), "{got:?}");
        apply_ok(&mut nl, &delete(&[&ours6])).await;
        // The same over a nexthop object, beside a default route.
        run_ip(&[
            "-n", &name, "nexthop", "add", "id", "77", "via", "fd00::2", "dev", "v0",
        ]);
        run_ip(&[
            "-n",
            &name,
            "-6",
            "route",
            "add",
            "fd00:2::/48",
            "nhid",
            "77",
            "proto",
            "186",
            "metric",
            "512",
        ]);
        run_ip(&[
            "-n", &name, "-6", "route", "add", "default", "nhid", "77", "proto", "186", "metric", "512",
        ]);
        let got = nl
            .route_get("fd00:2::1".parse().unwrap())
            .await
            .unwrap()
            .expect("a route");
        assert_eq!(got.prefix.to_string(), "fd00:2::/48", "{got:?}");
        let local = nl
            .route_get("10.0.0.1".parse().unwrap())
            .await
            .unwrap()
            .expect("a route");
        assert_eq!(local.kind, RouteKind::Local, "{local:?}");
        assert_eq!(
            nl.route_get("192.0.2.1".parse().unwrap()).await.unwrap(),
            None,
            "no default route here"
        );
        apply_ok(&mut nl, &delete(&[&ours])).await;
    });
}
