//! Case 5 of issue 14: LoadBalancer VIPs coming and going, as Cilium
//! announces them, and how long each takes to reach the node's kernel
//! (tern's hairpin route) and the upstream router.
//!
//! ```text
//!  node namespace                                   router namespace
//!  gobgpd "Cilium" (the lab's Cilium configuration)  FRR: bgpd + zebra,
//!    ├── ::1 ── tern ─────── eBGP over the segment ── installs what it learns
//!    │           └────────── eBGP over the segment ── upstream probe (this
//!    └── 127.0.0.2:1790 ── probe (this process)        process, 10.101.0.200)
//! ```
//!
//! The lab is `interop_tests::lab` with one node and one FRR router,
//! exactly as the tests run it; its GoBGP has one more neighbour, a
//! passive BGP listener in this process (the probe). GoBGP sends every
//! UPDATE to tern and to the probe at the same moment, so the probe's
//! receive time stands for GoBGP's send. tern has one more upstream, a
//! second listener on the segment: when tern's UPDATE reaches it is when
//! FRR could have it, so FRR's own time shows apart from tern's. VIPs (`10.97.0.0/16`, host
//! routes) are added one at a time with `gobgp global rib add`, each
//! after tern had installed and announced the last one (or 1 s passed),
//! then withdrawn the same way, so tern is otherwise idle. The kernel's
//! notifications are read in this process in both namespaces
//! (`interop_tests::route_monitor`), timed as they come:
//!
//! - node kernel: tern's `local` route for the VIP (table local);
//! - the upstream probe: tern's UPDATE;
//! - FRR: the route zebra installs in the router's kernel once bgpd chose
//!   it, so FRR's RIB and then some.
//!
//! Printed: p50, p99 and worst latency from GoBGP's send to each, for
//! announcements and withdrawals; how many never arrived; and tern's
//! resident memory with the lab's few sessions and routes (the issue's
//! target: under 8 MB), before and after the churn.
//!
//! ```text
//! sudo cargo bench -p interop-tests --bench vip_churn
//! ```
//!
//! `TERN_BENCH_VIPS`: how many VIPs (default 10000; about 5 minutes on 2
//! cores); `TERN_BIN`: tern binary (default `target/release/tern`, built
//! first).

use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bgp_proto::{Capability, Context, Family, Message, Open};
use bytes::BytesMut;
use interop_tests::first_line;
use interop_tests::lab::Topology;
use interop_tests::process::{cpu_time, status_kb};
use interop_tests::raw::read_message;
use interop_tests::route_monitor::{RouteMonitor, What};
use ipnet::IpNet;

const PROBE_ADDR: &str = "127.0.0.2";
const PROBE_PORT: u16 = 1790;
const PROBE_ASN: u32 = 4200000099;
/// The second probe, an upstream of tern's on the segment beside FRR.
const UPSTREAM_PROBE_ADDR: &str = "10.101.0.200";
const UPSTREAM_PROBE_ASN: u32 = 4200000098;
/// Where the VIPs come from.
const VIP_RANGE: &str = "10.97.0.0/16";
/// How long one change may take before it counts as lost.
const PATIENCE: Duration = Duration::from_secs(1);

/// The probe as GoBGP's second neighbour: IPv4 unicast, port 1790.
fn probe_neighbor() -> String {
    format!(
        r#"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{PROBE_ADDR}"
    peer-as = {PROBE_ASN}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 90
    keepalive-interval = 30
  [neighbors.transport.config]
    remote-port = {PROBE_PORT}
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
    )
}

/// tern's peer for the upstream probe (after its `[fib]` table).
fn upstream_probe_peer() -> String {
    format!(
        r#"
[[peer]]
name = "probe"
address = "{UPSTREAM_PROBE_ADDR}"
remote-asn = {UPSTREAM_PROBE_ASN}
role = "upstream"
connect-retry = 1
"#
    )
}

/// When each change of one VIP was seen where: GoBGP's send (the first
/// probe), tern's UPDATE to an upstream (the second probe), the node's
/// kernel, the router's kernel.
#[derive(Clone, Copy, Debug, Default)]
struct Stamps {
    sent: [Option<Instant>; 2],
    upstream: [Option<Instant>; 2],
    node: [Option<Instant>; 2],
    router: [Option<Instant>; 2],
}

/// The stamps of every VIP, by prefix, and a signal when one changes.
#[derive(Default)]
struct Seen {
    stamps: Mutex<HashMap<IpNet, Stamps>>,
    changed: Condvar,
}

/// Which change: the announcement (0) or the withdrawal (1).
fn change(add: bool) -> usize {
    if add { 0 } else { 1 }
}

impl Seen {
    fn mark(&self, prefix: IpNet, at: Instant, f: impl FnOnce(&mut Stamps) -> &mut Option<Instant>) {
        let mut s = self.stamps.lock().expect("lock");
        let slot = f(s.entry(prefix).or_default());
        if slot.is_none() {
            *slot = Some(at);
        }
        drop(s);
        self.changed.notify_all();
    }

    /// Waits until `prefix`'s change has been seen by both probes and in
    /// the node's kernel, or `PATIENCE` passed. (Not for the router's
    /// kernel: FRR takes some 60 ms, its own processing delay, and waiting
    /// for it would make 20,000 changes take 20 minutes; it is timed all
    /// the same.)
    fn wait(&self, prefix: IpNet, add: bool) {
        let i = change(add);
        let s = self.stamps.lock().expect("lock");
        let _ = self
            .changed
            .wait_timeout_while(s, PATIENCE, |s| {
                let t = s.get(&prefix).copied().unwrap_or_default();
                [t.sent[i], t.upstream[i], t.node[i]].contains(&None)
            })
            .expect("lock");
    }
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("the VIP churn benchmark needs root (network namespaces); skipped");
        return;
    }
    let n: usize = std::env::var("TERN_BENCH_VIPS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(10_000);
    interop_tests::tern::use_release_build();
    let started = Instant::now();
    let range: IpNet = VIP_RANGE.parse().expect("prefix");
    let vips: Vec<IpNet> = range
        .hosts()
        .filter(|a| !matches!(a, std::net::IpAddr::V4(a) if a.octets()[3] == 0 || a.octets()[3] == 255))
        .take(n)
        .map(IpNet::from)
        .collect();
    assert_eq!(vips.len(), n, "{n} VIPs do not fit in {VIP_RANGE}");

    let Some(lab) = Topology::builder("bench-vips")
        .nodes(1)
        .cilium_extra(1, &probe_neighbor())
        .tern_extra(1, &upstream_probe_peer())
        .start()
    else {
        return;
    };
    let upstream_ns = interop_tests::Netns::new(&interop_tests::unique_name("bench-vips-probe"));
    let mut lab = lab;
    lab.attach(&upstream_ns, "eth-seg");
    upstream_ns.add_addr("eth-seg", &format!("{UPSTREAM_PROBE_ADDR}/24"));
    lab.wait_converged();
    let node = lab.node(1);
    let router = lab.router(0);
    let tern_pid = node.tern.pid().expect("tern runs");
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));

    // The probes: GoBGP's second neighbour, and tern's second upstream.
    let probes: Vec<_> = [
        (&node.ns, PROBE_ADDR, PROBE_PORT, PROBE_ASN, Probe::Cilium),
        (
            &upstream_ns,
            UPSTREAM_PROBE_ADDR,
            179,
            UPSTREAM_PROBE_ASN,
            Probe::Upstream,
        ),
    ]
    .into_iter()
    .map(|(ns, addr, port, asn, which)| {
        let (seen, stop) = (seen.clone(), stop.clone());
        let listener = ns
            .spawn_in(move || TcpListener::bind((addr, port)))
            .join()
            .expect("bind")
            .expect("bind a probe's port");
        let up = Arc::new(AtomicBool::new(false));
        let flag = up.clone();
        let h = std::thread::spawn(move || probe(listener, asn, which, &seen, &stop, &flag, range));
        (h, up)
    })
    .collect();
    // The kernels' notifications: tern's local route on the node, zebra's
    // route on the router.
    let monitors: Vec<_> = [(&node.ns, true), (&router.ns, false)]
        .into_iter()
        .map(|(ns, on_node)| {
            let (seen, stop) = (seen.clone(), stop.clone());
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let h = ns.spawn_in(move || {
                let mut m = RouteMonitor::open().expect("route monitor");
                ready_tx.send(()).expect("ready");
                while !stop.load(Ordering::Relaxed) {
                    for e in m.read().expect("read the route monitor") {
                        if let What::Route { add, prefix, .. } = e.what
                            && range.contains(&prefix)
                        {
                            let i = change(add);
                            seen.mark(prefix, e.at, |s| {
                                if on_node { &mut s.node[i] } else { &mut s.router[i] }
                            });
                        }
                    }
                }
                m.overruns
            });
            ready_rx.recv().expect("the monitor runs");
            h
        })
        .collect();
    let waited = Instant::now();
    while !probes.iter().all(|(_, up)| up.load(Ordering::Relaxed)) {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the probes' sessions never came up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // tern with a few sessions and a handful of routes.
    std::thread::sleep(Duration::from_secs(2));
    let rss_idle = status_kb(tern_pid, "VmRSS:");
    let anon_idle = status_kb(tern_pid, "RssAnon:");
    let (sessions, routes) = node.tern.summary().map_or((0, 0), |s| {
        let rib = &s["rib"];
        (
            s["peers_established"].as_u64().unwrap_or(0),
            rib["ipv4_prefixes"].as_u64().unwrap_or(0) + rib["ipv6_prefixes"].as_u64().unwrap_or(0),
        )
    });
    let cpu_before = cpu_time(tern_pid);

    // One at a time, as the CLI and GoBGP take them: on, then off.
    let port = node.gobgp.api_port().to_string();
    let churned = {
        let (seen, vips) = (seen.clone(), vips.clone());
        node.ns
            .spawn_in(move || {
                let mut cli = Vec::new();
                for add in [true, false] {
                    if !add {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    for v in &vips {
                        let verb = if add { "add" } else { "del" };
                        let asked = Instant::now();
                        let out = Command::new("gobgp")
                            .args(["-p", &port, "global", "rib", verb, "-a", "ipv4", &v.to_string()])
                            .output()
                            .expect("run gobgp");
                        assert!(out.status.success(), "gobgp {verb} {v}: {out:?}");
                        cli.push(asked.elapsed());
                        seen.wait(*v, add);
                    }
                }
                cli
            })
            .join()
            .expect("churn")
    };
    std::thread::sleep(Duration::from_secs(2));
    let cpu = cpu_time(tern_pid) - cpu_before;
    let rss_after = status_kb(tern_pid, "VmRSS:");
    let rss_peak = status_kb(tern_pid, "VmHWM:");
    stop.store(true, Ordering::Relaxed);
    let overruns: usize = monitors.into_iter().map(|h| h.join().expect("monitor")).sum();
    drop(probes);

    let stamps = seen.stamps.lock().expect("lock").clone();
    let versions = [
        first_line(Command::new(interop_tests::tern_bin()).arg("--version")),
        first_line(Command::new("gobgpd").arg("--version")),
        first_line(Command::new(format!("{}/bgpd", interop_tests::FRR_DIR)).arg("--version"))
            .replace("bgpd version", "FRR"),
    ];
    println!(
        "\ncase 5: {n} VIPs (host routes) announced one at a time by GoBGP configured as Cilium, then withdrawn; {}",
        versions.join(", ")
    );
    println!("latency from GoBGP's send (the probe's receive) to:");
    println!(
        "{:<48} {:>9} {:>9} {:>9} {:>9}",
        "", "p50", "p99", "worst", "missing"
    );
    for add in [true, false] {
        let i = change(add);
        let what = if add { "announced" } else { "withdrawn" };
        for (place, pick) in [
            (
                "tern's route in the node's kernel",
                (|s: &Stamps, i: usize| s.node[i]) as fn(&Stamps, usize) -> Option<Instant>,
            ),
            ("tern's UPDATE at an upstream (probe)", |s: &Stamps, i: usize| {
                s.upstream[i]
            }),
            ("FRR's route in the router's kernel", |s: &Stamps, i: usize| {
                s.router[i]
            }),
        ] {
            let mut lat: Vec<Duration> = Vec::new();
            let mut missing = 0;
            for v in &vips {
                let s = stamps.get(v).copied().unwrap_or_default();
                match (s.sent[i], pick(&s, i)) {
                    (Some(sent), Some(at)) => lat.push(at.saturating_duration_since(sent)),
                    _ => missing += 1,
                }
            }
            lat.sort();
            println!(
                "{:<48} {:>9} {:>9} {:>9} {:>9}",
                format!("{what}: {place}"),
                ms(percentile(&lat, 50.0)),
                ms(percentile(&lat, 99.0)),
                ms(lat.last().copied()),
                missing
            );
        }
    }
    let mut cli = churned;
    cli.sort();
    println!(
        "\nthe gobgp CLI per change: p50 {}, p99 {}; monitor overruns: {overruns}",
        ms(percentile(&cli, 50.0)),
        ms(percentile(&cli, 99.0)),
    );
    println!(
        "tern: RSS {:.1} MB ({:.1} MB of it anonymous) with {sessions} sessions and {routes} prefixes, before; {:.1} MB after the churn, peak {:.1} MB; {:.1} CPU-s for {} changes",
        rss_idle as f64 / 1024.0,
        anon_idle as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
        cpu.as_secs_f64(),
        2 * n
    );
    println!("\n(total {:.0?})", started.elapsed());
}

/// Which probe: GoBGP's neighbour or tern's upstream.
#[derive(Clone, Copy)]
enum Probe {
    Cilium,
    Upstream,
}

/// A passive BGP speaker: answers the OPEN of whoever dials it, sets `up`
/// at the first KEEPALIVE, then times every UPDATE's VIPs as they arrive.
fn probe(
    listener: TcpListener,
    asn: u32,
    which: Probe,
    seen: &Seen,
    stop: &AtomicBool,
    up: &AtomicBool,
    range: IpNet,
) {
    let (mut s, _) = listener.accept().expect("a probe's peer connects");
    s.set_nodelay(true).expect("nodelay");
    let ctx = Context::ebgp();
    let open = read_message(&mut s).expect("the peer's OPEN");
    assert!(
        matches!(Message::decode(&open, &ctx), Ok(Message::Open(_))),
        "expected an OPEN"
    );
    let mut buf = BytesMut::new();
    let caps = vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::FourOctetAs(asn),
    ];
    let id = match s.local_addr().expect("local address").ip() {
        std::net::IpAddr::V4(a) => a,
        std::net::IpAddr::V6(_) => Ipv4Addr::new(10, 0, 0, 99),
    };
    Message::Open(Open::new(asn, 90, id, caps))
        .encode(&ctx, &mut buf)
        .expect("encode");
    Message::Keepalive.encode(&ctx, &mut buf).expect("encode");
    s.write_all(&buf).expect("send the probe's OPEN");
    s.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
    let mut keepalive = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if keepalive.elapsed() > Duration::from_secs(20) {
            let mut k = BytesMut::new();
            Message::Keepalive.encode(&ctx, &mut k).expect("encode");
            s.write_all(&k).expect("keepalive");
            keepalive = Instant::now();
        }
        let m = match read_message(&mut s) {
            Ok(m) => m,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) if stop.load(Ordering::Relaxed) => return,
            Err(e) => panic!("a probe's session: {e}"),
        };
        let at = Instant::now();
        match Message::decode(&m, &ctx) {
            Ok(Message::Keepalive) => up.store(true, Ordering::Relaxed),
            Ok(Message::Update(u)) => {
                for (add, list) in [
                    (true, u.announced().collect::<Vec<_>>()),
                    (false, u.withdrawals().collect()),
                ] {
                    for p in list.into_iter().filter(|p| range.contains(&p.prefix)) {
                        let i = change(add);
                        seen.mark(p.prefix, at, |s| match which {
                            Probe::Cilium => &mut s.sent[i],
                            Probe::Upstream => &mut s.upstream[i],
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(i).copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
}
