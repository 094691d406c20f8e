//! The same full table, fed to tern, bird2 and FRR in turn, each with
//! kernel programming on, in namespaces of its own; their numbers side by
//! side: how long until the table is in their RIB and in the kernel,
//! routes per second, resident memory before and after, and per route.
//!
//! ```text
//!  injector namespace                        daemon namespace
//!  this process (a thread in it): a   veth   tern | bird | FRR (bgpd + zebra)
//!  BGP speaker that sends the table ------- AS 4200000002, 10.255.0.2,
//!  pre-encoded (bgp-proto's UPDATE          fd00:255::2; installs in its
//!  builder) at wire speed, then             kernel what it learns
//!  End-of-RIB. 10.255.0.1, fd00:255::1,
//!  AS 4200000001
//! ```
//!
//! The injector writes as fast as the daemon reads, so "received" is the
//! daemon's own speed. One daemon at a time, so none competes with another
//! for the CPU. The kernel's routes are counted from `/proc/net/fib_triestat`
//! (IPv4, the main table's prefixes) and `/proc/net/rt6_stats` (IPv6 route
//! entries) in the daemon's namespace. RSS is `VmRSS` from
//! `/proc/PID/status` (FRR: bgpd + zebra); the kernel's own memory for the
//! routes is not in it.
//!
//! ```text
//! cargo build --release -p tern       # tern as shipped (the bench builds it too)
//! sudo cargo bench -p interop-tests --bench full_table
//! ```
//!
//! Table size: `TERN_BENCH_V4` and `TERN_BENCH_V6` prefixes (default
//! 1000000 and 200000, a full Internet table's size; about a minute on 2
//! cores); tern binary: `TERN_BIN` (default `target/release/tern`, built
//! first);
//! `TERN_BENCH_DAEMONS=tern,bird2,frr` chooses which run (default all).
//! Without root it says so and does nothing.
//!
//! While the table loads, the daemon's status query (tern's
//! `/api/v1/summary`, `birdc show status`, FRR's `show bgp summary json`)
//! is timed every few hundred milliseconds: the worst answer is printed.
//!
//! Beside the daemons, the kernel's own limit, measured the same way in a
//! namespace of its own (`interop_tests::kernel_writer`): `ip -batch`, a
//! pipelined netlink writer, and the same writer with one shared nexthop
//! object per family, the limit the daemons' times are divided by; and
//! that limit again with a listener to route notifications in the
//! namespace, as every daemon has (the kernel then builds a notification
//! per route). `TERN_BENCH_DAEMONS` names them `ip-batch`, `netlink`,
//! `netlink+nh`, `netlink+nh+listener`.
//! CPU seconds are the daemon's processes' (user + system, from
//! `/proc/PID/stat`) from the session's establishment until the kernel
//! had every route, and the writer's own for a baseline.
//!
//! Then (case 4 of issue 14) the injector withdraws every prefix at once
//! (pre-encoded withdrawals, at wire speed), timed from the first
//! withdrawal until the kernel counts none of the table's routes, with the
//! CPU seconds that took.
//!
//! Before that, tern alone (case 6) is stopped with SIGTERM and started
//! again with the table in the kernel: the time until its session is up
//! and until it says routing converged, and how many route changes the
//! kernel reported meanwhile (`ip monitor route`; there must be none).
//!
//! Every row's routes in the kernel over time, sampled as it loads, are
//! written to `target/bench/full_table.csv` and drawn in
//! `target/bench/full_table.png` (gnuplot, installed with apt if missing).
//!
//! What the daemons keep differs: tern keeps what each peer sent before
//! import policy (`soft-reconfiguration`, on by default) beside its
//! Loc-RIB, as FRR's `soft-reconfiguration inbound` would (off here, its
//! default); bird2 keeps one table.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bgp_proto::{
    AsPath, Attributes, Capability, Community, Context, Family, Message, NextHop, Nlri, Open, Origin,
    UpdateBuilder,
};
use bytes::BytesMut;
use interop_tests::process::{cpu_time, status_kb};
use interop_tests::raw::read_message;
use interop_tests::{Bird, Frr, FrrOptions, Netns, Tern, WorkDir, first_line, run, unique_name, veth};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

mod ecmp;

const INJECTOR_ASN: u32 = 4200000001;
const DAEMON_ASN: u32 = 4200000002;
const INJECTOR_V4: &str = "10.255.0.1";
const INJECTOR_V6: &str = "fd00:255::1";
const DAEMON_V4: &str = "10.255.0.2";
const DAEMON_V6: &str = "fd00:255::2";
/// Attribute sets the prefixes share, as in a real table.
const ATTRIBUTE_SETS: usize = 2000;

fn main() {
    // `cargo bench` passes `--bench`; nothing to select here.
    if !nix::unistd::geteuid().is_root() {
        println!("the full-table benchmark needs root (network namespaces); skipped");
        return;
    }
    if !interop_tests::require_root() {
        return;
    }
    let n4 = env_count("TERN_BENCH_V4", 1_000_000);
    let n6 = env_count("TERN_BENCH_V6", 200_000);
    interop_tests::tern::use_release_build();
    let started = Instant::now();
    let table = Table::new(n4, n6);
    println!(
        "full table: {n4} IPv4 + {n6} IPv6 prefixes over {ATTRIBUTE_SETS} attribute sets: {} UPDATEs, {:.1} MB (encoded in {:.1?})",
        table.messages,
        table.bytes.len() as f64 / 1e6,
        started.elapsed()
    );
    let table = Arc::new(table);

    // `TERN_BENCH_DAEMONS=tern,bird2` runs a subset.
    let only = std::env::var("TERN_BENCH_DAEMONS")
        .unwrap_or_default()
        .to_lowercase();
    let selected = |k: Kind| only.is_empty() || only.split(',').any(|o| o.trim() == k.name().to_lowercase());
    let mut rows = Vec::new();
    for kind in [
        Kind::NetlinkNexthop,
        Kind::NetlinkNexthopWatched,
        Kind::Netlink,
        Kind::IpBatch,
        Kind::Tern,
        Kind::Bird,
        Kind::Frr,
    ]
    .into_iter()
    .filter(|k| selected(*k) && table.routes() > 0)
    {
        println!("\n== {}", kind.name());
        let row = if kind.is_baseline() {
            measure_kernel(kind, &table)
        } else {
            measure(kind, &table)
        };
        println!("{row:#?}");
        rows.push(row);
    }
    if table.routes() > 0 {
        print_table(&table, &rows);
        plot(&table, &rows);
    }
    let ecmp = env_count("TERN_BENCH_ECMP", 100_000);
    if ecmp > 0 {
        ecmp::run(ecmp, &selected);
    }
    println!("\n(total {:.0?})", started.elapsed());
}

fn env_count(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The table as the injector sends it: UPDATEs, then End-of-RIB for both
/// families.
struct Table {
    bytes: Vec<u8>,
    /// Every prefix withdrawn, IPv4 then IPv6.
    withdrawals: Vec<u8>,
    messages: usize,
    v4: usize,
    v6: usize,
    /// Every prefix, for the kernel baselines.
    prefixes: Vec<IpNet>,
}

/// xorshift64*: the same table every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

impl Table {
    fn new(v4: usize, v6: usize) -> Table {
        let mut rng = Rng(0x7465_726e);
        let ctx = Context::ebgp();
        let sets: Vec<Attributes> = (0..ATTRIBUTE_SETS)
            .map(|i| {
                // The first AS is the injector's, as an eBGP peer's must be.
                let mut path = vec![INJECTOR_ASN];
                path.extend((0..rng.below(5)).map(|_| 1 + rng.below(400_000) as u32));
                Attributes {
                    origin: Some(if i % 7 == 0 {
                        Origin::Incomplete
                    } else {
                        Origin::Igp
                    }),
                    as_path: Some(AsPath::from_sequence(path)),
                    med: (i % 3 == 0).then(|| rng.below(1000) as u32),
                    communities: (0..rng.below(3)).map(|_| Community(rng.next() as u32)).collect(),
                    ..Attributes::default()
                }
            })
            .collect();
        let mut builder = UpdateBuilder::new(ctx);
        let mut buf = BytesMut::new();
        let mut messages = 0;
        let mut all = Vec::with_capacity(v4 + v6);
        let mut withdrawals = BytesMut::new();
        for (family, prefixes) in [
            (Family::IPV4_UNICAST, ipv4_prefixes(&mut rng, v4)),
            (Family::IPV6_UNICAST, ipv6_prefixes(&mut rng, v6)),
        ] {
            let next_hop = if family == Family::IPV4_UNICAST {
                NextHop::V4(INJECTOR_V4.parse().expect("address"))
            } else {
                NextHop::V6 {
                    global: INJECTOR_V6.parse().expect("address"),
                    link_local: None,
                }
            };
            // Runs of neighbouring prefixes share an attribute set.
            let mut groups: Vec<Vec<Nlri>> = vec![Vec::new(); sets.len()];
            let mut set = 0;
            all.extend(prefixes.iter().map(|n| n.prefix));
            builder
                .withdraw(&mut withdrawals, family, &prefixes)
                .expect("encode");
            for (i, p) in prefixes.into_iter().enumerate() {
                if i % 16 == 0 {
                    set = rng.below(sets.len() as u64) as usize;
                }
                groups[set].push(p);
            }
            for (attrs, group) in sets.iter().zip(&groups) {
                messages += builder
                    .announce(&mut buf, family, attrs, next_hop, group)
                    .expect("encode");
            }
        }
        for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
            builder.end_of_rib(&mut buf, family).expect("encode");
            messages += 1;
        }
        Table {
            bytes: buf.to_vec(),
            withdrawals: withdrawals.to_vec(),
            messages,
            v4,
            v6,
            prefixes: all,
        }
    }

    fn routes(&self) -> usize {
        self.v4 + self.v6
    }
}

/// Unique IPv4 prefixes in 10.0.0.0/8 below 10.255.0.0 (the link), /24 to
/// /32, laid out one after another.
fn ipv4_prefixes(rng: &mut Rng, n: usize) -> Vec<Nlri> {
    let mut cursor: u64 = 0x0a00_0000;
    let end: u64 = 0x0aff_0000;
    let v: Vec<Nlri> = (0..n)
        .map(|_| {
            let len: u8 = match rng.below(100) {
                0..2 => 24,
                2..10 => 28,
                10..40 => 30,
                _ => 32,
            };
            let size = 1u64 << (32 - len);
            cursor = cursor.div_ceil(size) * size;
            let net = Ipv4Net::new(Ipv4Addr::from(cursor as u32), len).expect("length");
            cursor += size;
            Nlri::new(IpNet::V4(net))
        })
        .collect();
    assert!(
        cursor <= end,
        "{n} IPv4 prefixes do not fit in 10.0.0.0/8: use fewer"
    );
    v
}

/// Unique IPv6 prefixes in fd10::/16, /40 to /64, mostly /48.
fn ipv6_prefixes(rng: &mut Rng, n: usize) -> Vec<Nlri> {
    let mut cursor: u128 = 0xfd10 << 112;
    (0..n)
        .map(|_| {
            let len: u8 = match rng.below(100) {
                0..60 => 48,
                60..80 => 40 + rng.below(8) as u8,
                _ => 49 + rng.below(16) as u8,
            };
            let size = 1u128 << (128 - len);
            cursor = cursor.div_ceil(size) * size;
            let net = Ipv6Net::new(Ipv6Addr::from(cursor), len).expect("length");
            cursor += size;
            Nlri::new(IpNet::V6(net))
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tern,
    Bird,
    Frr,
    /// The kernel baselines (`interop_tests::kernel_writer`): `ip
    /// -batch`, a pipelined netlink writer, and the same with one shared
    /// nexthop object per family (the limit the daemons are held to).
    IpBatch,
    Netlink,
    NetlinkNexthop,
    /// The limit again, with a program listening to the kernel's route
    /// notifications in the namespace meanwhile, as every daemon here does
    /// (to see routes of theirs removed): the kernel then builds a
    /// notification for every route written.
    NetlinkNexthopWatched,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tern => "tern",
            Kind::Bird => "bird2",
            Kind::Frr => "FRR",
            Kind::IpBatch => "ip-batch",
            Kind::Netlink => "netlink",
            Kind::NetlinkNexthop => "netlink+nh",
            Kind::NetlinkNexthopWatched => "netlink+nh+listener",
        }
    }

    fn is_baseline(self) -> bool {
        matches!(
            self,
            Kind::IpBatch | Kind::Netlink | Kind::NetlinkNexthop | Kind::NetlinkNexthopWatched
        )
    }
}

/// The daemon under test, running.
enum Daemon {
    Tern(Tern),
    Bird(Bird),
    Frr(Frr),
}

impl Daemon {
    /// With `peers` injector sessions ([`injector_v4`]).
    fn start(kind: Kind, ns: &Netns, work: &WorkDir, peers: usize) -> Daemon {
        match kind {
            Kind::Tern => Daemon::Tern(Tern::start(ns, work, "tern", &tern_config(peers))),
            Kind::Bird => Daemon::Bird(Bird::start(ns, work, "bird", &bird_config(peers))),
            Kind::Frr => Daemon::Frr(Frr::start_with(
                ns,
                work,
                "frr",
                &frr_config(peers),
                &FrrOptions {
                    install_routes: true,
                    ..FrrOptions::default()
                },
            )),
            k => unreachable!("{} is measured by measure_kernel", k.name()),
        }
    }

    /// (name, PID) of each process.
    fn pids(&self) -> Vec<(&'static str, u32)> {
        match self {
            Daemon::Tern(t) => vec![("tern", t.pid().expect("tern runs"))],
            Daemon::Bird(b) => vec![("bird", b.pid())],
            Daemon::Frr(f) => vec![("bgpd", f.bgpd_pid()), ("zebra", f.zebra_pid())],
        }
    }

    /// Routes accepted from the injector, as the daemon counts them.
    fn received(&self) -> Result<usize, String> {
        match self {
            Daemon::Tern(t) => {
                let p = t.peer("injector")?;
                p["prefixes"]["accepted"]
                    .as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| format!("{p}"))
            }
            Daemon::Bird(b) => {
                // `Routes:         500000 imported, 0 exported, ...` per channel.
                let out = b.birdc(&["show", "protocols", "all", "injector"])?;
                Ok(out
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("Routes:"))
                    .filter_map(|r| r.split_whitespace().next()?.parse::<usize>().ok())
                    .sum())
            }
            Daemon::Frr(f) => {
                let v = f.json("show bgp summary json")?;
                Ok(["ipv4Unicast", "ipv6Unicast"]
                    .iter()
                    .filter_map(|afi| v[afi]["peers"][INJECTOR_V4]["pfxRcd"].as_u64())
                    .sum::<u64>() as usize)
            }
        }
    }

    /// The status query an operator would run, answered: tern's
    /// `/api/v1/summary` (over its Unix socket), `birdc show status`, FRR's
    /// `vtysh -c 'show bgp summary json'` (the last two include starting a
    /// client process).
    fn status(&self) -> Result<(), String> {
        match self {
            Daemon::Tern(t) => t.summary().map(drop),
            Daemon::Bird(b) => b.birdc(&["show", "status"]).map(drop),
            Daemon::Frr(f) => f.json("show bgp summary json").map(drop),
        }
    }

    fn version(&self) -> String {
        match self {
            Daemon::Tern(_) => first_line(Command::new(interop_tests::tern_bin()).arg("--version")),
            Daemon::Bird(_) => {
                // bird prints its version on stderr.
                Command::new("bird")
                    .arg("--version")
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
                    .unwrap_or_default()
            }
            Daemon::Frr(_) => {
                let v = first_line(Command::new(format!("{}/bgpd", interop_tests::FRR_DIR)).arg("--version"));
                v.replace("bgpd version", "FRR")
            }
        }
    }
}

/// Injector `i`'s address: 10.255.0.1 for the first (case 1), then
/// 10.255.0.11 onwards (10.255.0.2 is the daemon's).
fn injector_v4(i: usize) -> String {
    if i == 0 {
        INJECTOR_V4.to_owned()
    } else {
        format!("10.255.0.{}", 10 + i)
    }
}

/// Injector `i`'s name in the daemons' configurations.
fn injector_name(i: usize) -> String {
    if i == 0 {
        "injector".to_owned()
    } else {
        format!("injector{}", i + 1)
    }
}

fn tern_config(peers: usize) -> String {
    let mut conf = format!(
        r#"router-id = "{DAEMON_V4}"
asn = {DAEMON_ASN}
hostname = "dut"
listen = ["[::]:179"]
"#
    );
    for i in 0..peers {
        conf.push_str(&format!(
            r#"
[[peer]]
name = "{}"
address = "{}"
remote-asn = {INJECTOR_ASN}
role = "upstream"
local-address = "{DAEMON_V4}"
connect-retry = 1
"#,
            injector_name(i),
            injector_v4(i)
        ));
    }
    conf
}

/// bird2 merges equal paths into one kernel route (`merge paths`), up to
/// 8 as tern and FRR.
fn bird_config(peers: usize) -> String {
    let mut conf = format!(
        "router id {DAEMON_V4};
log stderr {{ info, remote, warning, error, auth, fatal, bug }};

protocol device {{ }}

protocol kernel kernel4 {{
    ipv4 {{ import none; export all; }};
    merge paths on limit 8;
}}

protocol kernel kernel6 {{
    ipv6 {{ import none; export all; }};
    merge paths on limit 8;
}}
"
    );
    for i in 0..peers {
        conf.push_str(&format!(
            "
protocol bgp {} {{
    local {DAEMON_V4} as {DAEMON_ASN};
    neighbor {} as {INJECTOR_ASN};
    connect delay time 1;
    connect retry time 1;
    ipv4 {{ import all; export none; }};
    ipv6 {{ import all; export none; }};
}}
",
            injector_name(i),
            injector_v4(i)
        ));
    }
    conf
}

/// FRR with up to 8 equal paths, as tern and bird2.
fn frr_config(peers: usize) -> String {
    let neighbors: Vec<String> = (0..peers).map(injector_v4).collect();
    let each = |f: &dyn Fn(&str) -> String| neighbors.iter().map(|n| f(n)).collect::<String>();
    format!(
        "frr defaults traditional
hostname dut
!
router bgp {DAEMON_ASN}
 bgp router-id {DAEMON_V4}
 no bgp ebgp-requires-policy
{}{} !
 address-family ipv4 unicast
  maximum-paths 8
{} exit-address-family
 !
 address-family ipv6 unicast
  maximum-paths 8
{} exit-address-family
exit
",
        each(&|n| format!(" neighbor {n} remote-as {INJECTOR_ASN}\n")),
        each(&|n| format!(" neighbor {n} timers connect 1\n")),
        each(&|n| format!("  neighbor {n} activate\n")),
        each(&|n| format!("  neighbor {n} activate\n")),
    )
}

/// One daemon's numbers.
#[derive(Debug)]
struct Row {
    name: &'static str,
    version: String,
    /// From the first UPDATE sent until the injector wrote the last byte
    /// (the daemon read it).
    sent: Duration,
    /// Until the daemon counted every route as received.
    rib: Option<Duration>,
    /// Until the kernel had every route.
    kernel: Option<Duration>,
    /// kB, per process, when the session came up (empty table).
    rss_before: Vec<(&'static str, u64)>,
    /// kB, per process, with the table loaded and installed.
    rss_after: Vec<(&'static str, u64)>,
    /// The daemon's status query, timed while the table loaded: the
    /// worst answer, how many were asked, how many failed.
    status: Option<Duration>,
    status_asked: usize,
    status_failed: usize,
    /// kB, per process: the peak (`VmHWM`).
    rss_peak: Vec<(&'static str, u64)>,
    /// tern's live heap with the table loaded, bytes.
    heap: Option<f64>,
    /// CPU time (user + system) from the start until the kernel had every
    /// route: the daemon's processes, or the baseline's writer.
    cpu: Option<Duration>,
    /// Routes of the table in the kernel over time: (seconds since the
    /// start, routes).
    samples: Vec<(f64, usize)>,
    /// tern restarted with the table installed (case 6).
    restart: Option<Restart>,
    /// Every prefix withdrawn: until the kernel had none of them, and the
    /// CPU time that took.
    withdrawn: Option<Duration>,
    withdraw_cpu: Option<Duration>,
}

fn measure(kind: Kind, table: &Arc<Table>) -> Row {
    let tag = format!("bench-{}", kind.name().to_lowercase());
    let work = WorkDir::new(&tag);
    let inj = Netns::new(&unique_name(&format!("{tag}-inj")));
    let dut = Netns::new(&unique_name(&format!("{tag}-dut")));
    veth(&inj, "eth0", &dut, "eth0");
    inj.add_addr("eth0", &format!("{INJECTOR_V4}/24"));
    inj.add_addr("eth0", &format!("{INJECTOR_V6}/64"));
    dut.add_addr("eth0", &format!("{DAEMON_V4}/24"));
    dut.add_addr("eth0", &format!("{DAEMON_V6}/64"));

    // The kernel counter, in the daemon's namespace.
    let (base4, base6) = dut.spawn_in(kernel_counts).join().expect("count");
    let (want4, want6) = (base4 + table.v4, base6 + table.v6);

    // The injector listens; the daemon dials it.
    let stop = Arc::new(AtomicBool::new(false));
    let (events, rx) = mpsc::channel();
    let (withdraw_tx, withdraw_rx) = mpsc::channel::<()>();
    // The table waits until the daemon's empty size is read: a fast one
    // has otherwise taken in part of it by then. Once `go` is dropped, a
    // later session (after the restart) gets it at once.
    let (go, go_rx) = mpsc::channel::<()>();
    let injector = {
        let (table, stop) = (table.clone(), stop.clone());
        let (ready_tx, ready_rx) = mpsc::channel();
        let h = inj.spawn_in(move || {
            let listener = TcpListener::bind((INJECTOR_V4, 179)).expect("bind 179 in the injector namespace");
            ready_tx.send(()).expect("ready");
            let gate = || {
                let _ = go_rx.recv();
            };
            inject(listener, &table, &stop, &events, &withdraw_rx, &gate)
        });
        ready_rx.recv().expect("the injector listens");
        h
    };
    let daemon = Daemon::start(kind, &dut, &work, 1);
    let version = daemon.version();
    let pids = daemon.pids();

    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Event::Established(_)) => {}
        other => panic!("{}: no session: {other:?}", kind.name()),
    };
    let rss_before: Vec<(&str, u64)> = pids.iter().map(|(n, p)| (*n, status_kb(*p, "VmRSS:"))).collect();
    let cpu_before: Duration = pids.iter().map(|(_, p)| cpu_time(*p)).sum();
    // The clock starts as the table is let go, a moment after the session
    // came up.
    let established = Instant::now();
    go.send(()).expect("the injector waits");
    drop(go);
    let counter = dut.spawn_in(move || {
        // IPv6 is cheap to count (a counter the kernel keeps), so it is
        // read every 2 ms: the time it stops at is the time the last route
        // came. Counting IPv4 walks the trie (about 12 ms for 100k routes
        // on this VM), which takes CPU from the daemon: the next count
        // waits five times as long as the last took, at most 300 ms. With
        // 100k routes in that is every 60 ms rather than every 300, where
        // the count's lateness was most of a 0.4 s load.
        const TICK: Duration = Duration::from_millis(2);
        let deadline = Duration::from_secs(240);
        let (mut done4, mut done6) = (None, None);
        let (mut c4, mut c6, mut samples) = (base4, base6, vec![(0.0, 0)]);
        let (mut next4, mut next_sample) = (Duration::ZERO, Duration::ZERO);
        while (done4.is_none() || done6.is_none()) && established.elapsed() < deadline {
            if done6.is_none() {
                c6 = count6();
                if c6 >= want6 {
                    done6 = Some(established.elapsed());
                }
            }
            if done4.is_none() && established.elapsed() >= next4 {
                let counting = Instant::now();
                c4 = count4();
                if c4 >= want4 {
                    done4 = Some(established.elapsed());
                }
                next4 =
                    established.elapsed() + (counting.elapsed() * 5).clamp(TICK, Duration::from_millis(300));
            }
            if established.elapsed() >= next_sample {
                let routes = (c4 - base4.min(c4)) + (c6 - base6.min(c6));
                samples.push((established.elapsed().as_secs_f64(), routes));
                next_sample = established.elapsed() + Duration::from_millis(100);
            }
            std::thread::sleep(TICK);
        }
        let done = done4.zip(done6).map(|(a, b)| a.max(b));
        if let Some(d) = done {
            samples.push((d.as_secs_f64(), want4 - base4 + want6 - base6));
        }
        (done, samples)
    });
    let mut rib = None;
    let (mut status, mut status_asked, mut status_failed) = (Duration::ZERO, 0, 0);
    while established.elapsed() < Duration::from_secs(240) && !counter.is_finished() {
        if rib.is_none() && daemon.received().is_ok_and(|n| n >= table.routes()) {
            rib = Some(established.elapsed());
        }
        // Does the daemon still answer an operator while it loads?
        let asked = Instant::now();
        status_asked += 1;
        match daemon.status() {
            Ok(()) => status = status.max(asked.elapsed()),
            Err(_) => status_failed += 1,
        }
        std::thread::sleep(Duration::from_millis(if rib.is_none() { 250 } else { 100 }));
    }
    let (kernel, samples) = counter.join().expect("counter");
    let cpu_after: Duration = pids.iter().map(|(_, p)| cpu_time(*p)).sum();
    if rib.is_none() && daemon.received().is_ok_and(|n| n >= table.routes()) {
        rib = kernel;
    }
    let sent = match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Event::Sent(t)) => t.duration_since(established),
        other => panic!("{}: the injector did not finish: {other:?}", kind.name()),
    };
    // Let it settle (e.g. zebra freeing its queues) before reading RSS.
    std::thread::sleep(Duration::from_secs(1));
    let rss_after = pids.iter().map(|(n, p)| (*n, status_kb(*p, "VmRSS:"))).collect();
    let rss_peak = pids.iter().map(|(n, p)| (*n, status_kb(*p, "VmHWM:"))).collect();
    // What of it tern's allocator has handed out (the rest is its free
    // room and the program).
    let heap = match &daemon {
        Daemon::Tern(t) => t.metric("tern_heap_allocated_bytes").ok(),
        _ => None,
    };

    // Case 6: tern restarted with the table in the kernel.
    let mut daemon = daemon;
    let restart = match &mut daemon {
        Daemon::Tern(t) if kernel.is_some() => Some(restart_tern(t, &dut, &work, &rx)),
        _ => None,
    };
    let pids = daemon.pids();

    // Case 4: everything withdrawn; until the kernel is back where it was.
    let (withdrawn, withdraw_cpu) = if kernel.is_some() {
        let cpu_before: Duration = pids.iter().map(|(_, p)| cpu_time(*p)).sum();
        withdraw_tx.send(()).expect("the injector runs");
        let started = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Event::WithdrawStarted(t)) => t,
            other => panic!("{}: the injector did not withdraw: {other:?}", kind.name()),
        };
        let emptied = dut
            .spawn_in(move || {
                while started.elapsed() < Duration::from_secs(240) {
                    if count6() <= base6 && count4() <= base4 {
                        return Some(started.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                None
            })
            .join()
            .expect("counter");
        let cpu_after: Duration = pids.iter().map(|(_, p)| cpu_time(*p)).sum();
        (emptied, emptied.map(|_| cpu_after - cpu_before))
    } else {
        (None, None)
    };
    let row = Row {
        name: kind.name(),
        version,
        sent,
        rib,
        kernel,
        rss_before,
        rss_after,
        rss_peak,
        heap,
        status: (status_asked > status_failed).then_some(status),
        samples,
        restart,
        status_asked,
        status_failed,
        cpu: kernel.map(|_| cpu_after - cpu_before),
        withdrawn,
        withdraw_cpu,
    };
    // Stop the daemon first (a few seconds at most: its guard SIGKILLs
    // it), then the injector, then the namespaces go with their routes.
    drop(daemon);
    stop.store(true, Ordering::Relaxed);
    let _ = injector.join();
    row
}

/// A kernel baseline: the table written straight into the kernel of a
/// fresh namespace, timed until the kernel counts every route.
fn measure_kernel(kind: Kind, table: &Arc<Table>) -> Row {
    let ns = Netns::new(&unique_name(&format!("bench-{}", kind.name().replace('+', ""))));
    let peer = Netns::new(&unique_name("bench-kpeer"));
    veth(&ns, "eth0", &peer, "eth0");
    ns.add_addr("eth0", &format!("{DAEMON_V4}/24"));
    ns.add_addr("eth0", &format!("{DAEMON_V6}/64"));
    let table = table.clone();
    let routes = table.routes();
    let (base4, base6) = ns.spawn_in(kernel_counts).join().expect("count");
    let done = Arc::new(AtomicBool::new(false));
    // A listener that reads every route notification and drops it.
    let listener = (kind == Kind::NetlinkNexthopWatched).then(|| {
        let done = done.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        let h = ns.spawn_in(move || {
            let mut m = interop_tests::route_monitor::RouteMonitor::open().expect("route monitor");
            ready_tx.send(()).expect("ready");
            let mut seen = 0;
            while !done.load(Ordering::Relaxed) {
                seen += m.read().map_or(0, |e| e.len());
            }
            (seen, m.overruns)
        });
        ready_rx.recv().expect("the listener runs");
        h
    });
    let start = Instant::now();
    let sampler = {
        let done = done.clone();
        ns.spawn_in(move || {
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(240) {
                let routes = count4().saturating_sub(base4) + count6().saturating_sub(base6);
                samples.push((start.elapsed().as_secs_f64(), routes));
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        })
    };
    let (kernel, cpu) = ns
        .spawn_in(move || {
            let via = interop_tests::kernel_writer::Via {
                gateway4: INJECTOR_V4.parse().expect("address"),
                gateway6: INJECTOR_V6.parse().expect("address"),
                ifindex: nix::net::if_::if_nametoindex("eth0").expect("eth0"),
            };
            let (cpu0, children0) = (thread_cpu(), children_cpu());
            let loaded = match kind {
                Kind::IpBatch => interop_tests::kernel_writer::ip_batch(&table.prefixes, via, "eth0"),
                k => interop_tests::kernel_writer::netlink_load(
                    &table.prefixes,
                    via,
                    matches!(k, Kind::NetlinkNexthop | Kind::NetlinkNexthopWatched),
                ),
            }
            .expect("load");
            assert_eq!(loaded.refused, 0, "the kernel refused routes");
            while count4() < base4 + table.v4 || count6() < base6 + table.v6 {
                assert!(
                    start.elapsed() < Duration::from_secs(240),
                    "the kernel never had every route"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let elapsed = start.elapsed();
            let cpu = (thread_cpu() - cpu0) + (children_cpu() - children0);
            (elapsed, cpu)
        })
        .join()
        .expect("baseline");
    done.store(true, Ordering::Relaxed);
    if let Some((seen, overruns)) = listener.map(|h| h.join().expect("listener")) {
        println!("the listener read {seen} notifications ({overruns} overruns)");
    }
    let mut samples = sampler.join().expect("sampler");
    samples.push((kernel.as_secs_f64(), routes));
    Row {
        name: kind.name(),
        version: match kind {
            Kind::IpBatch => run(Command::new("ip").arg("-V"))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default(),
            _ => format!(
                "kernel {}",
                std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim()
            ),
        },
        sent: Duration::ZERO,
        rib: None,
        kernel: Some(kernel),
        rss_before: Vec::new(),
        rss_after: Vec::new(),
        rss_peak: Vec::new(),
        heap: None,
        status: None,
        status_asked: 0,
        status_failed: 0,
        cpu: Some(cpu),
        samples,
        restart: None,
        withdrawn: None,
        withdraw_cpu: None,
    }
}

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    rusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)
}

/// CPU time of the children waited for so far (`ip -batch`).
fn children_cpu() -> Duration {
    rusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
}

fn rusage(who: nix::sys::resource::UsageWho) -> Duration {
    let u = nix::sys::resource::getrusage(who).expect("getrusage");
    let d = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    d(u.user_time()) + d(u.system_time())
}

#[derive(Debug)]
enum Event {
    Established(Instant),
    Sent(Instant),
    WithdrawStarted(Instant),
}

/// Accepts the daemon's connections; on each exchanges OPEN and KEEPALIVE (hold
/// time 0: no keepalives to keep up), waits for `gate` to return, sends
/// the table, then reads and drops whatever comes until told to stop.
fn inject(
    listener: TcpListener,
    table: &Table,
    stop: &AtomicBool,
    events: &mpsc::Sender<Event>,
    withdraw: &mpsc::Receiver<()>,
    gate: &dyn Fn(),
) {
    // Again after the daemon restarts (case 6), until told to stop.
    listener.set_nonblocking(true).expect("nonblocking");
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("blocking");
                session(s, table, stop, events, withdraw, gate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept the daemon: {e}"),
        }
    }
}

/// One session: the table, then withdrawals when asked.
fn session(
    mut s: TcpStream,
    table: &Table,
    stop: &AtomicBool,
    events: &mpsc::Sender<Event>,
    withdraw: &mpsc::Receiver<()>,
    gate: &dyn Fn(),
) {
    s.set_nodelay(true).expect("nodelay");
    let ctx = Context::ebgp();
    let open = read_message(&mut s).expect("read the daemon's OPEN");
    match Message::decode(&open, &ctx) {
        Ok(Message::Open(o)) => assert_eq!(o.asn(), DAEMON_ASN, "{o:?}"),
        other => panic!("expected an OPEN, got {other:?}"),
    }
    let mut buf = BytesMut::new();
    let caps = vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::FourOctetAs(INJECTOR_ASN),
    ];
    // Each injector's own address is its BGP identifier.
    let bgp_id = match s.local_addr().expect("local address").ip() {
        std::net::IpAddr::V4(a) => a,
        std::net::IpAddr::V6(_) => INJECTOR_V4.parse().expect("address"),
    };
    Message::Open(Open::new(INJECTOR_ASN, 0, bgp_id, caps))
        .encode(&ctx, &mut buf)
        .expect("encode");
    Message::Keepalive.encode(&ctx, &mut buf).expect("encode");
    s.write_all(&buf).expect("send OPEN");
    loop {
        let m = read_message(&mut s).expect("read the daemon's KEEPALIVE");
        match Message::decode(&m, &ctx) {
            Ok(Message::Keepalive) => break,
            Ok(Message::Notification(n)) => panic!("the daemon refused the session: {n}"),
            _ => continue,
        }
    }
    let _ = events.send(Event::Established(Instant::now()));
    gate();
    s.write_all(&table.bytes).expect("send the table");
    let _ = events.send(Event::Sent(Instant::now()));
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut sink = [0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        if withdraw.try_recv().is_ok() {
            let _ = events.send(Event::WithdrawStarted(Instant::now()));
            s.write_all(&table.withdrawals).expect("send the withdrawals");
        }
        match s.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            // A signal (a child process of the bench ending) is no reason
            // to close the session: that would withdraw the table.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
}

/// tern restarted with the table in the kernel (case 6 of issue 14).
#[derive(Debug)]
struct Restart {
    /// From SIGTERM until the new session was up.
    session: Option<Duration>,
    /// From SIGTERM until tern said routing converged (every peer's
    /// End-of-RIB in, the kernel compared with the new selection).
    converged: Option<Duration>,
    /// Route changes the kernel reported from SIGTERM until 2 s after
    /// convergence (must be 0).
    changes: usize,
}

/// SIGTERM, start again, the table sent again by the injector: how long
/// until converged, and what the kernel saw of it (`ip monitor route`
/// between two marker routes).
fn restart_tern(t: &mut Tern, dut: &Netns, work: &WorkDir, rx: &mpsc::Receiver<Event>) -> Restart {
    const MARKER: &str = "10.255.255.1";
    let monitor = interop_tests::kernel::Monitor::start(dut, work, "restart-routes", &["route"]);
    let from = monitor.mark(dut, MARKER);
    let started = Instant::now();
    t.stop();
    t.start_again();
    let session = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Event::Established(at)) => Some(at.duration_since(started)),
        other => {
            println!("tern: no session after the restart: {other:?}");
            None
        }
    };
    let _ = rx.recv_timeout(Duration::from_secs(60));
    let mut converged = None;
    while session.is_some() && started.elapsed() < Duration::from_secs(120) {
        if t.log().contains("routing converged") {
            converged = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // What convergence removes goes right after it.
    std::thread::sleep(Duration::from_secs(2));
    let to = monitor.unmark(dut, MARKER, from);
    let lines = monitor.lines();
    let changes: Vec<&String> = lines[from + 1..to]
        .iter()
        .filter(|l| !l.contains(MARKER))
        .collect();
    for l in changes.iter().take(5) {
        println!("tern restart: kernel change: {l}");
    }
    Restart {
        session,
        converged,
        changes: changes.len(),
    }
}

/// Routes in the kernel over time, every row on one plot: written to
/// `<target>/bench/full_table.{csv,png}`.
fn plot(table: &Table, rows: &[Row]) {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    );
    let series: Vec<interop_tests::plot::Series> = rows
        .iter()
        .filter(|r| !r.samples.is_empty())
        .map(|r| interop_tests::plot::Series {
            name: match r.name {
                "netlink+nh" => "kernel limit (netlink + one nexthop object)".into(),
                n => n.to_owned(),
            },
            points: r.samples.clone(),
        })
        .collect();
    let title = format!(
        "{} IPv4 + {} IPv6 prefixes into the kernel (daemons: from the session's establishment)",
        table.v4, table.v6
    );
    match interop_tests::plot::routes_over_time(&target.join("bench"), "full_table", &title, &series) {
        Ok(files) => {
            for f in files {
                println!("written: {}", f.display());
            }
        }
        Err(e) => println!("plot: {e}"),
    }
}

/// IPv4 prefixes in the main table, IPv6 route entries: from this thread's
/// namespace.
fn kernel_counts() -> (usize, usize) {
    (count4(), count6())
}

fn count4() -> usize {
    let text = std::fs::read_to_string("/proc/thread-self/net/fib_triestat").unwrap_or_default();
    let main = text.split("Main:").nth(1).unwrap_or_default();
    main.lines()
        .find_map(|l| l.trim().strip_prefix("Prefixes:")?.trim().parse().ok())
        .unwrap_or(0)
}

fn count6() -> usize {
    // fib6_nodes fib6_route_nodes fib6_rt_alloc fib6_rt_entries ..., hex.
    let text = std::fs::read_to_string("/proc/thread-self/net/rt6_stats").unwrap_or_default();
    text.split_whitespace()
        .nth(3)
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

fn print_table(table: &Table, rows: &[Row]) {
    let routes = table.routes();
    let limit = rows
        .iter()
        .find(|r| r.name == Kind::NetlinkNexthop.name())
        .and_then(|r| r.kernel);
    let watched = rows
        .iter()
        .find(|r| r.name == Kind::NetlinkNexthopWatched.name())
        .and_then(|r| r.kernel);
    let secs = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    let rate =
        |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.0}", routes as f64 / d.as_secs_f64()));
    let mb = |v: &[(&str, u64)]| {
        let total: u64 = v.iter().map(|(_, k)| k).sum();
        if v.is_empty() {
            "-".into()
        } else if v.len() == 1 {
            format!("{:.1} MB", total as f64 / 1024.0)
        } else {
            let parts: Vec<String> = v
                .iter()
                .map(|(n, k)| format!("{n} {:.0}", *k as f64 / 1024.0))
                .collect();
            format!("{:.1} MB ({})", total as f64 / 1024.0, parts.join(" + "))
        }
    };
    let per_route = |r: &Row| {
        if r.rss_after.is_empty() {
            return "-".into();
        }
        let before: u64 = r.rss_before.iter().map(|(_, k)| k).sum();
        let after: u64 = r.rss_after.iter().map(|(_, k)| k).sum();
        format!(
            "{:.0} B",
            (after.saturating_sub(before) * 1024) as f64 / routes as f64
        )
    };
    let lines: Vec<Line<Row>> = vec![
        ("version", Box::new(|r: &Row| r.version.clone())),
        (
            "table read (injector done)",
            Box::new(|r: &Row| secs(Some(r.sent).filter(|_| !r.rss_after.is_empty()))),
        ),
        ("all routes in the RIB", Box::new(|r: &Row| secs(r.rib))),
        ("all routes in the kernel", Box::new(|r: &Row| secs(r.kernel))),
        ("routes/s into the RIB", Box::new(|r: &Row| rate(r.rib))),
        ("routes/s into the kernel", Box::new(|r: &Row| rate(r.kernel))),
        (
            "kernel time ÷ the limit (netlink+nh)",
            Box::new(|r: &Row| match (r.kernel, limit) {
                (Some(k), Some(l)) => format!("{:.2}×", k.as_secs_f64() / l.as_secs_f64()),
                _ => "-".into(),
            }),
        ),
        (
            "kernel time ÷ the limit with a listener",
            Box::new(|r: &Row| match (r.kernel, watched) {
                (Some(k), Some(l)) => format!("{:.2}×", k.as_secs_f64() / l.as_secs_f64()),
                _ => "-".into(),
            }),
        ),
        (
            "CPU seconds until in the kernel",
            Box::new(|r: &Row| r.cpu.map_or("-".into(), |c| format!("{:.1} s", c.as_secs_f64()))),
        ),
        (
            "all withdrawn: until the kernel had none",
            Box::new(|r: &Row| secs(r.withdrawn)),
        ),
        (
            "CPU seconds for the withdrawal",
            Box::new(|r: &Row| {
                r.withdraw_cpu
                    .map_or("-".into(), |c| format!("{:.1} s", c.as_secs_f64()))
            }),
        ),
        (
            "restart with the table in: session up again",
            Box::new(|r: &Row| secs(r.restart.as_ref().and_then(|x| x.session))),
        ),
        (
            "restart: until converged again",
            Box::new(|r: &Row| secs(r.restart.as_ref().and_then(|x| x.converged))),
        ),
        (
            "restart: kernel route changes",
            Box::new(|r: &Row| r.restart.as_ref().map_or("-".into(), |x| x.changes.to_string())),
        ),
        ("RSS, empty", Box::new(|r: &Row| mb(&r.rss_before))),
        ("RSS, table loaded", Box::new(|r: &Row| mb(&r.rss_after))),
        ("RSS peak (VmHWM)", Box::new(|r: &Row| mb(&r.rss_peak))),
        ("RSS per route (loaded - empty)", Box::new(per_route)),
        (
            "of RSS loaded: heap in use (tern)",
            Box::new(|r: &Row| r.heap.map_or("-".into(), |h| format!("{:.1} MB", h / 1048576.0))),
        ),
        (
            "status query while loading, worst",
            Box::new(|r: &Row| {
                let worst = r
                    .status
                    .map_or("-".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3));
                if r.status_asked == 0 {
                    return "-".into();
                }
                format!("{worst} ({} asked, {} failed)", r.status_asked, r.status_failed)
            }),
        ),
    ];
    println!(
        "\n{} IPv4 + {} IPv6 = {routes} routes, {} UPDATEs, {:.1} MB; times from the session's establishment",
        table.v4,
        table.v6,
        table.messages,
        table.bytes.len() as f64 / 1e6
    );
    grid(rows, |r| r.name, &lines);
}

/// One line of a printed table: its label, and its cell for a row.
type Line<'a, R> = (&'a str, Box<dyn Fn(&R) -> String + 'a>);

/// A table: a column per row (headed by `name`), a line per `lines`.
fn grid<R>(rows: &[R], name: impl Fn(&R) -> &str, lines: &[Line<'_, R>]) {
    let names: Vec<&str> = rows.iter().map(name).collect();
    let labels: Vec<&str> = lines.iter().map(|(l, _)| *l).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| lines.iter().map(|(_, f)| f(r)).collect())
        .collect();
    let w0 = labels.iter().map(|l| l.len()).max().unwrap_or(0);
    let widths: Vec<usize> = names
        .iter()
        .zip(&cells)
        .map(|(name, c)| c.iter().map(String::len).max().unwrap_or(0).max(name.len()))
        .collect();
    let mut header = format!("{:w0$}", "");
    for (name, w) in names.iter().zip(&widths) {
        header.push_str(&format!("  {name:>w$}"));
    }
    println!("{header}");
    for (i, label) in labels.iter().enumerate() {
        let mut line = format!("{label:w0$}");
        for (c, w) in cells.iter().zip(&widths) {
            line.push_str(&format!("  {:>w$}", c[i]));
        }
        println!("{line}");
    }
}
