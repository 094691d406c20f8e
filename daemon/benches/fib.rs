//! Kernel route write throughput: tern's `Netlink::apply` against a minimal
//! pipelined netlink writer (in this file) and `ip -batch`, installing and
//! then removing 1,000,000 IPv4 routes and 200,000 IPv6 /48 routes, each
//! with a single next hop and with 4-way ECMP. Prints routes per second
//! side by side. `cargo bench -p tern --bench fib`
//!
//! Runs in a network namespace of its own (veth `v0`/`v1`, both up,
//! gateways 10.0.0.2-5 and fd00::2-5 on the connected subnets), deleted at
//! the end; needs root, else says why and exits 0. Every run starts from a
//! table without protocol 186 routes. The IPv4 routes are /28s in 10/8
//! (10.1.0.0 up): the namespace may only use 10/8, which holds 65,536 /24s.
//! `TERN_FIB_BENCH_SCALE=0.1` runs a tenth of the routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use bgp_proto::Family;
use ipnet::IpNet;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{setsockopt, sockopt};
use tern::fib::netlink::{
    KernelNextHop, KernelRoute, Netlink, NexthopObject, NexthopSpec, Op, RTPROT_BGP, RouteKind,
};

const V4_ROUTES: usize = 1_000_000;
const V6_ROUTES: usize = 200_000;
const METRIC: u32 = 20;
const GATEWAYS_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(10, 0, 0, 2),
    Ipv4Addr::new(10, 0, 0, 3),
    Ipv4Addr::new(10, 0, 0, 4),
    Ipv4Addr::new(10, 0, 0, 5),
];
/// Nexthop object ids: one per gateway, and a group of the four per family.
const NH_V4: [u32; 4] = [1, 2, 3, 4];
const NH_V6: [u32; 4] = [11, 12, 13, 14];
const GROUP_V4: u32 = 100;
const GROUP_V6: u32 = 101;

fn gateways_v6() -> [Ipv6Addr; 4] {
    [2, 3, 4, 5].map(|i| Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i))
}

/// The namespace; deleted on drop, also when the bench panics.
struct Lab {
    name: String,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            name: format!("tern-fib-bench-{}", std::process::id()),
        };
        ip(&["netns", "add", &lab.name]);
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
        lab
    }

    fn ip(&self, args: &str) {
        let mut all = vec!["-n", &self.name];
        all.extend(args.split_whitespace());
        ip(&all);
    }

    /// Moves the calling thread (and the threads it spawns) into the lab.
    fn enter(&self) {
        let path = format!("/run/netns/{}", self.name);
        let netns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        setns(&netns, CloneFlags::CLONE_NEWNET).expect("setns");
    }

    /// Removes every protocol 186 route; nothing else.
    fn flush(&self) {
        self.ip("-4 route flush proto 186");
        self.ip("-6 route flush proto 186");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("cannot run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    v6: bool,
    ecmp: bool,
    routes: usize,
}

impl Scenario {
    fn prefixes(&self) -> Vec<IpNet> {
        (0..self.routes as u32)
            .map(|i| {
                if self.v6 {
                    // fd10:XXXX:YYYY::/48
                    let net = Ipv6Addr::from((0xfd10_u128 << 112) | (u128::from(i) << 80));
                    IpNet::new(IpAddr::V6(net), 48).unwrap()
                } else {
                    let net = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 0)) + i * 16);
                    IpNet::new(IpAddr::V4(net), 28).unwrap()
                }
            })
            .collect()
    }

    /// The nexthop object or group the routes point at.
    fn nhid(&self) -> u32 {
        match (self.v6, self.ecmp) {
            (false, false) => NH_V4[0],
            (false, true) => GROUP_V4,
            (true, false) => NH_V6[0],
            (true, true) => GROUP_V6,
        }
    }

    fn gateways(&self) -> Vec<IpAddr> {
        let all: Vec<IpAddr> = if self.v6 {
            gateways_v6().into_iter().map(IpAddr::V6).collect()
        } else {
            GATEWAYS_V4.into_iter().map(IpAddr::V4).collect()
        };
        all[..if self.ecmp { 4 } else { 1 }].to_vec()
    }

    fn family(&self) -> Family {
        if self.v6 {
            Family::IPV6_UNICAST
        } else {
            Family::IPV4_UNICAST
        }
    }
}

/// How the routes name their next hops, for every writer alike.
#[derive(Clone, Copy)]
enum Mode {
    /// RTA_NH_ID: a shared nexthop object (or group).
    Nhid,
    /// RTA_GATEWAY + RTA_OIF, or RTA_MULTIPATH.
    Gateways,
}

struct Results {
    install: Duration,
    remove: Duration,
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("fib bench: skipped, needs root to create a network namespace");
        return;
    }
    let scale: f64 = std::env::var("TERN_FIB_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let count = |n: usize| ((n as f64 * scale) as usize).max(1);
    let lab = Lab::new();
    lab.enter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut nl = Netlink::open().expect("netlink");
    let links = runtime.block_on(nl.links()).expect("links");
    let v0 = links.iter().find(|l| l.name == "v0").expect("v0").ifindex;

    let mode = if runtime.block_on(nl.supports_nexthop_objects()) {
        let results = runtime.block_on(nl.apply(&nexthop_objects(v0)));
        assert!(results.iter().all(Result::is_ok), "nexthop objects: {results:?}");
        println!("next hops: shared nexthop objects (RTA_NH_ID) for all three writers");
        Mode::Nhid
    } else {
        println!("next hops: no nexthop objects here; RTA_GATEWAY / RTA_MULTIPATH for all three writers");
        Mode::Gateways
    };

    let scenarios = [
        Scenario {
            name: "IPv4 /28, 1 next hop",
            v6: false,
            ecmp: false,
            routes: count(V4_ROUTES),
        },
        Scenario {
            name: "IPv4 /28, 4-way ECMP",
            v6: false,
            ecmp: true,
            routes: count(V4_ROUTES),
        },
        Scenario {
            name: "IPv6 /48, 1 next hop",
            v6: true,
            ecmp: false,
            routes: count(V6_ROUTES),
        },
        Scenario {
            name: "IPv6 /48, 4-way ECMP",
            v6: true,
            ecmp: true,
            routes: count(V6_ROUTES),
        },
    ];
    let batch_file = std::env::temp_dir().join(format!("tern-fib-bench-{}.batch", std::process::id()));
    let mut rows = Vec::new();
    let started = Instant::now();
    for scenario in scenarios {
        let prefixes = scenario.prefixes();
        let verify = |nl: &mut Netlink, want: usize, who: &str| {
            let got = runtime
                .block_on(nl.dump_routes(scenario.family(), Some(254), Some(RTPROT_BGP)))
                .unwrap()
                .len();
            assert_eq!(got, want, "{who}, {}: routes in the kernel", scenario.name);
        };

        lab.flush();
        let t = tern(&runtime, &mut nl, &scenario, &prefixes, mode, v0, &verify);
        lab.flush();
        let m = minimal(&mut nl, &scenario, &prefixes, mode, v0, &verify);
        lab.flush();
        let b = ip_batch(&lab, &mut nl, &scenario, &prefixes, mode, &batch_file, &verify);
        lab.flush();
        rows.push((scenario, t, m, b));
        eprintln!("{} done after {:.0?}", scenario.name, started.elapsed());
    }
    let _ = std::fs::remove_file(&batch_file);
    let results = runtime.block_on(nl.apply(&nexthop_deletes()));
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    println!();
    println!(
        "{:<22} {:>9} {:<8} {:>12} {:>12} {:>12} {:>13}",
        "scenario", "routes", "op", "tern r/s", "minimal r/s", "ip -batch r/s", "tern/minimal"
    );
    for (scenario, t, m, b) in rows {
        for (op, t, m, b) in [
            ("install", t.install, m.install, b.install),
            ("remove", t.remove, m.remove, b.remove),
        ] {
            let rate = |d: Duration| scenario.routes as f64 / d.as_secs_f64();
            println!(
                "{:<22} {:>9} {:<8} {:>12.0} {:>12.0} {:>12.0} {:>12.2}×",
                scenario.name,
                scenario.routes,
                op,
                rate(t),
                rate(m),
                rate(b),
                t.as_secs_f64() / m.as_secs_f64()
            );
        }
    }
    println!("(tern/minimal: tern's time as a multiple of the minimal writer's; target ≤ 1.2×)");
    println!("total {:.1?}", started.elapsed());
}

fn nexthop_objects(v0: u32) -> Vec<Op> {
    let object = |id, spec| {
        Op::ReplaceNexthop(NexthopObject {
            id,
            protocol: RTPROT_BGP,
            spec,
        })
    };
    let single = |gw: IpAddr| NexthopSpec::Single(KernelNextHop::via(gw, Some(v0)));
    let mut ops = Vec::new();
    for (id, gw) in NH_V4.into_iter().zip(GATEWAYS_V4) {
        ops.push(object(id, single(IpAddr::V4(gw))));
    }
    for (id, gw) in NH_V6.into_iter().zip(gateways_v6()) {
        ops.push(object(id, single(IpAddr::V6(gw))));
    }
    ops.push(object(
        GROUP_V4,
        NexthopSpec::Group(NH_V4.iter().map(|&id| (id, 1)).collect()),
    ));
    ops.push(object(
        GROUP_V6,
        NexthopSpec::Group(NH_V6.iter().map(|&id| (id, 1)).collect()),
    ));
    ops
}

fn nexthop_deletes() -> Vec<Op> {
    [GROUP_V4, GROUP_V6]
        .into_iter()
        .chain(NH_V4)
        .chain(NH_V6)
        .map(Op::DeleteNexthop)
        .collect()
}

fn tern(
    runtime: &tokio::runtime::Runtime,
    nl: &mut Netlink,
    scenario: &Scenario,
    prefixes: &[IpNet],
    mode: Mode,
    v0: u32,
    verify: &impl Fn(&mut Netlink, usize, &str),
) -> Results {
    let (nexthops, nhid) = match mode {
        Mode::Nhid => (vec![], Some(scenario.nhid())),
        Mode::Gateways => (
            scenario
                .gateways()
                .into_iter()
                .map(|gw| KernelNextHop::via(gw, Some(v0)))
                .collect(),
            None,
        ),
    };
    let route = |prefix: IpNet| KernelRoute {
        prefix,
        table: 254,
        protocol: RTPROT_BGP,
        kind: RouteKind::Unicast,
        metric: METRIC,
        nexthops: nexthops.clone(),
        nhid,
        prefsrc: None,
    };
    let installs: Vec<Op> = prefixes.iter().map(|&p| Op::ReplaceRoute(route(p))).collect();
    let removes: Vec<Op> = prefixes.iter().map(|&p| Op::DeleteRoute(route(p))).collect();
    let timed = |nl: &mut Netlink, ops: &[Op]| {
        let started = Instant::now();
        let results = runtime.block_on(nl.apply(ops));
        let elapsed = started.elapsed();
        let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).take(3).collect();
        assert!(failed.is_empty(), "tern, {}: {failed:?}", scenario.name);
        elapsed
    };
    let install = timed(nl, &installs);
    verify(nl, prefixes.len(), "tern");
    let remove = timed(nl, &removes);
    verify(nl, 0, "tern");
    Results { install, remove }
}

fn ip_batch(
    lab: &Lab,
    nl: &mut Netlink,
    scenario: &Scenario,
    prefixes: &[IpNet],
    mode: Mode,
    file: &std::path::Path,
    verify: &impl Fn(&mut Netlink, usize, &str),
) -> Results {
    let via = match mode {
        Mode::Nhid => format!("nhid {}", scenario.nhid()),
        Mode::Gateways => {
            let hops: Vec<String> = scenario
                .gateways()
                .iter()
                .map(|gw| gateway_arg(scenario, *gw))
                .collect();
            if hops.len() == 1 {
                hops[0].clone()
            } else {
                hops.iter()
                    .map(|h| format!("nexthop {h}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        }
    };
    let run = |lines: String| {
        std::fs::write(file, lines).expect("batch file");
        let started = Instant::now();
        let status = Command::new("ip")
            .args(["-n", &lab.name, "-batch"])
            .arg(file)
            .status()
            .expect("ip -batch");
        let elapsed = started.elapsed();
        assert!(status.success(), "ip -batch, {}: {status}", scenario.name);
        elapsed
    };
    let install = run(prefixes
        .iter()
        .map(|p| format!("route replace {p} {via} proto 186 metric {METRIC}\n"))
        .collect());
    verify(nl, prefixes.len(), "ip -batch");
    let remove = run(prefixes
        .iter()
        .map(|p| format!("route del {p} proto 186 metric {METRIC}\n"))
        .collect());
    verify(nl, 0, "ip -batch");
    Results { install, remove }
}

fn gateway_arg(scenario: &Scenario, gw: IpAddr) -> String {
    match (scenario.v6, gw) {
        (false, IpAddr::V6(gw)) => format!("via inet6 {gw} dev v0"),
        _ => format!("via {gw} dev v0"),
    }
}

fn minimal(
    nl: &mut Netlink,
    scenario: &Scenario,
    prefixes: &[IpNet],
    mode: Mode,
    v0: u32,
    verify: &impl Fn(&mut Netlink, usize, &str),
) -> Results {
    let mut writer = MinimalWriter::open();
    let nexthops = match mode {
        Mode::Nhid => NextHops::Id(scenario.nhid()),
        Mode::Gateways => NextHops::Gateways(scenario.gateways(), v0),
    };
    let started = Instant::now();
    let failed = writer.write(prefixes, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &nexthops);
    let install = started.elapsed();
    assert_eq!(failed, 0, "minimal writer, {}: failed installs", scenario.name);
    verify(nl, prefixes.len(), "minimal writer");
    let started = Instant::now();
    let failed = writer.write(prefixes, RTM_DELROUTE, 0, &NextHops::None);
    let remove = started.elapsed();
    assert_eq!(failed, 0, "minimal writer, {}: failed removes", scenario.name);
    verify(nl, 0, "minimal writer");
    Results { install, remove }
}

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_VIA: u16 = 18;
const RTA_NH_ID: u16 = 30;
const SEND_BYTES: usize = 256 * 1024;

enum NextHops {
    None,
    Id(u32),
    Gateways(Vec<IpAddr>, u32),
}

/// The least a pipelined route writer needs: requests encoded by hand
/// into ~256 KiB sends, then that send's ACKs read, one thread.
struct MinimalWriter {
    socket: Socket,
    out: Vec<u8>,
    ack: Vec<u8>,
    seq: u32,
}

impl MinimalWriter {
    fn open() -> MinimalWriter {
        let mut socket = Socket::new(NETLINK_ROUTE).expect("socket");
        socket.bind_auto().expect("bind");
        socket.connect(&SocketAddr::new(0, 0)).expect("connect");
        setsockopt(&socket, sockopt::RcvBufForce, &(32 << 20)).expect("SO_RCVBUFFORCE");
        setsockopt(&socket, sockopt::SndBufForce, &(4 << 20)).expect("SO_SNDBUFFORCE");
        MinimalWriter {
            socket,
            out: Vec::with_capacity(SEND_BYTES + 4096),
            ack: Vec::with_capacity(1 << 16),
            seq: 1,
        }
    }

    /// Sends one request per prefix; returns how many failed.
    fn write(&mut self, prefixes: &[IpNet], message_type: u16, flags: u16, nexthops: &NextHops) -> usize {
        let mut failed = 0;
        let mut next = 0;
        while next < prefixes.len() {
            self.out.clear();
            let first = next;
            while next < prefixes.len() && self.out.len() < SEND_BYTES {
                push_route(
                    &mut self.out,
                    self.seq,
                    message_type,
                    flags,
                    prefixes[next],
                    nexthops,
                );
                self.seq = self.seq.wrapping_add(1);
                next += 1;
            }
            self.socket.send(&self.out, 0).expect("send");
            let mut pending = next - first;
            while pending > 0 {
                self.ack.clear();
                self.socket.recv(&mut self.ack, 0).expect("recv");
                let mut rest = &self.ack[..];
                while rest.len() >= 16 {
                    let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
                    if u16::from_ne_bytes(rest[4..6].try_into().unwrap()) == NLMSG_ERROR {
                        pending -= 1;
                        failed += usize::from(rest[16..20] != [0; 4]);
                    }
                    rest = &rest[(len + 3) & !3..];
                }
            }
        }
        failed
    }
}

fn attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    buf.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize((buf.len() + 3) & !3, 0);
}

fn address_attr(buf: &mut Vec<u8>, kind: u16, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => attr(buf, kind, &a.octets()),
        IpAddr::V6(a) => attr(buf, kind, &a.octets()),
    }
}

/// A gateway in the prefix's family (RTA_GATEWAY) or not (RTA_VIA).
fn gateway_attr(buf: &mut Vec<u8>, prefix: IpNet, gw: IpAddr) {
    match (prefix, gw) {
        (IpNet::V4(_), IpAddr::V6(a)) => {
            let mut via = [0; 18];
            via[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            via[2..].copy_from_slice(&a.octets());
            attr(buf, RTA_VIA, &via);
        }
        _ => address_attr(buf, RTA_GATEWAY, gw),
    }
}

fn push_route(
    buf: &mut Vec<u8>,
    seq: u32,
    message_type: u16,
    flags: u16,
    prefix: IpNet,
    nexthops: &NextHops,
) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 16]);
    let (family, delete) = (
        if prefix.addr().is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        },
        message_type == RTM_DELROUTE,
    );
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope
    // (RT_SCOPE_NOWHERE for a delete), type (RTN_UNICAST), flags.
    let scope = if delete { 255 } else { 0 };
    buf.extend_from_slice(&[
        family as u8,
        prefix.prefix_len(),
        0,
        0,
        254,
        RTPROT_BGP,
        scope,
        1,
        0,
        0,
        0,
        0,
    ]);
    address_attr(buf, RTA_DST, prefix.network());
    attr(buf, RTA_PRIORITY, &METRIC.to_ne_bytes());
    match nexthops {
        NextHops::None => {}
        NextHops::Id(id) => attr(buf, RTA_NH_ID, &id.to_ne_bytes()),
        NextHops::Gateways(gws, oif) if gws.len() == 1 => {
            gateway_attr(buf, prefix, gws[0]);
            attr(buf, RTA_OIF, &oif.to_ne_bytes());
        }
        NextHops::Gateways(gws, oif) => {
            let mut hops = Vec::new();
            for gw in gws {
                let hop = hops.len();
                // struct rtnexthop: len, flags, hops (weight - 1), ifindex.
                hops.extend_from_slice(&[0, 0, 0, 0]);
                hops.extend_from_slice(&oif.to_ne_bytes());
                gateway_attr(&mut hops, prefix, *gw);
                let len = (hops.len() - hop) as u16;
                hops[hop..hop + 2].copy_from_slice(&len.to_ne_bytes());
            }
            attr(buf, RTA_MULTIPATH, &hops);
        }
    }
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    buf[start + 4..start + 6].copy_from_slice(&message_type.to_ne_bytes());
    buf[start + 6..start + 8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    buf[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
}
