//! Case 3 of issue 14: ten peers send the same prefixes, and the daemon
//! must choose: for every prefix four peers offer the shortest AS path
//! (which four varies with the prefix) and six a longer one, so each
//! prefix becomes one kernel route with four next hops (ECMP).
//!
//! The injectors wait until all ten sessions are up, then send at once;
//! the clock starts then. The kernel's route and nexthop notifications in
//! the daemon's namespace are read as they come
//! (`interop_tests::route_monitor`): the daemon has converged when every
//! prefix is in the kernel and nothing has changed for 3 s, at the time of
//! its last change; a dump then checks every route has its four next hops
//! (if not, it waits for the next quiet moment, up to three times).
//! Notifications counts how many route and nexthop writes the daemon made
//! for it.
//!
//! The limit is the same pipelined netlink writer with one shared nexthop
//! object, loading the same prefixes (a route over a group of four costs
//! the kernel no more).

use std::sync::Mutex;

use super::*;

/// Peers, each sending every prefix.
const PEERS: usize = 10;
/// Of them, how many offer the shortest path for any one prefix.
const EQUAL: usize = 4;

/// Which peers offer prefix `k` with the shortest AS path: those with
/// `(k + i) % 5` 0 or 1, so four of ten, a different four as `k` goes on.
fn is_short(k: usize, i: usize) -> bool {
    (k + i) % 5 < 2
}

/// Every peer's table (pre-encoded), and the prefixes.
pub struct EcmpTable {
    peers: Vec<Arc<Table>>,
    prefixes: Vec<IpNet>,
}

impl EcmpTable {
    pub fn new(n: usize) -> EcmpTable {
        let prefixes = ipv4_prefixes(&mut Rng(0x6563_6d70), n);
        let ctx = Context::ebgp();
        let attrs = |hops: &[u32]| Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence([&[INJECTOR_ASN][..], hops].concat())),
            ..Attributes::default()
        };
        let (short, long) = (attrs(&[64500]), attrs(&[64500, 64501]));
        let peers = (0..PEERS)
            .map(|i| {
                let mut builder = UpdateBuilder::new(ctx);
                let mut buf = BytesMut::new();
                let next_hop = NextHop::V4(injector_v4(i).parse().expect("address"));
                let (mut s, mut l) = (Vec::new(), Vec::new());
                for (k, p) in prefixes.iter().enumerate() {
                    if is_short(k, i) { &mut s } else { &mut l }.push(*p);
                }
                let mut messages = 0;
                for (a, group) in [(&short, &s), (&long, &l)] {
                    messages += builder
                        .announce(&mut buf, Family::IPV4_UNICAST, a, next_hop, group)
                        .expect("encode");
                }
                for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
                    builder.end_of_rib(&mut buf, family).expect("encode");
                    messages += 1;
                }
                Arc::new(Table {
                    bytes: buf.to_vec(),
                    withdrawals: Vec::new(),
                    messages,
                    v4: n,
                    v6: 0,
                    prefixes: Vec::new(),
                })
            })
            .collect();
        EcmpTable {
            peers,
            prefixes: prefixes.iter().map(|p| p.prefix).collect(),
        }
    }
}

/// One daemon's numbers for case 3.
#[derive(Debug)]
pub struct EcmpRow {
    name: &'static str,
    /// From the injectors' start until the last kernel change, once every
    /// prefix was in.
    kernel: Option<Duration>,
    /// Routes of the table in the kernel with all four next hops, at the
    /// end.
    complete: usize,
    /// Routes of the table in the kernel, at the end.
    present: usize,
    /// Route and nexthop notifications the kernel sent while it loaded.
    notifications: usize,
    /// The monitor fell behind (the kernel dropped notifications).
    overruns: usize,
    cpu: Option<Duration>,
    rss_before: Vec<(&'static str, u64)>,
    rss_after: Vec<(&'static str, u64)>,
    rss_peak: Vec<(&'static str, u64)>,
}

/// Case 3 for the daemons `selected` allows, beside the limit.
pub fn run(n: usize, selected: &dyn Fn(Kind) -> bool) {
    let table = EcmpTable::new(n);
    println!(
        "\n== case 3: {PEERS} peers × {n} overlapping IPv4 prefixes, {EQUAL} equal-cost paths each ({} UPDATEs per peer)",
        table.peers[0].messages
    );
    let mut rows = Vec::new();
    if selected(Kind::NetlinkNexthop) {
        let limit = measure_kernel(
            Kind::NetlinkNexthop,
            &Arc::new(Table {
                bytes: Vec::new(),
                withdrawals: Vec::new(),
                messages: 0,
                v4: n,
                v6: 0,
                prefixes: table.prefixes.clone(),
            }),
        );
        rows.push(EcmpRow {
            name: limit.name,
            kernel: limit.kernel,
            complete: 0,
            present: n,
            notifications: 0,
            overruns: 0,
            cpu: limit.cpu,
            rss_before: Vec::new(),
            rss_after: Vec::new(),
            rss_peak: Vec::new(),
        });
    }
    for kind in [Kind::Tern, Kind::Bird, Kind::Frr]
        .into_iter()
        .filter(|k| selected(*k))
    {
        println!("\n== case 3: {}", kind.name());
        let row = measure(kind, &table);
        println!("{row:#?}");
        rows.push(row);
    }
    print(n, &rows);
}

fn measure(kind: Kind, table: &EcmpTable) -> EcmpRow {
    let n = table.prefixes.len();
    let tag = format!("ecmp-{}", kind.name().to_lowercase());
    let work = WorkDir::new(&tag);
    let inj = Netns::new(&unique_name(&format!("{tag}-inj")));
    let dut = Netns::new(&unique_name(&format!("{tag}-dut")));
    veth(&inj, "eth0", &dut, "eth0");
    for i in 0..PEERS {
        inj.add_addr("eth0", &format!("{}/24", injector_v4(i)));
    }
    dut.add_addr("eth0", &format!("{DAEMON_V4}/24"));
    let (base4, _) = dut.spawn_in(kernel_counts).join().expect("count");

    // The injectors listen and hold their tables until `go`.
    let stop = Arc::new(AtomicBool::new(false));
    let go = Arc::new(AtomicBool::new(false));
    let (events, rx) = mpsc::channel();
    let mut injectors = Vec::new();
    let mut withdraw_senders = Vec::new();
    for (i, peer) in table.peers.iter().enumerate() {
        let (peer, stop, go, events) = (peer.clone(), stop.clone(), go.clone(), events.clone());
        let (ready_tx, ready_rx) = mpsc::channel();
        let (withdraw_tx, withdraw_rx) = mpsc::channel::<()>();
        withdraw_senders.push(withdraw_tx);
        injectors.push(inj.spawn_in(move || {
            let listener = TcpListener::bind((injector_v4(i).as_str(), 179)).expect("bind 179");
            ready_tx.send(()).expect("ready");
            let gate = || {
                while !go.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            };
            inject(listener, &peer, &stop, &events, &withdraw_rx, &gate)
        }));
        ready_rx.recv().expect("the injector listens");
    }

    // The kernel's notifications, from before the daemon starts.
    let last_change = Arc::new(Mutex::new(None::<Instant>));
    let monitor = {
        let (stop, last_change) = (stop.clone(), last_change.clone());
        let (ready_tx, ready_rx) = mpsc::channel();
        let h = dut.spawn_in(move || {
            let mut m = interop_tests::route_monitor::RouteMonitor::open().expect("route monitor");
            ready_tx.send(()).expect("ready");
            let ours: IpNet = "10.0.0.0/8".parse().expect("prefix");
            let link: IpNet = "10.255.0.0/16".parse().expect("prefix");
            let mut count = 0;
            while !stop.load(Ordering::Relaxed) {
                for e in m.read().expect("read the route monitor") {
                    let relevant = match &e.what {
                        interop_tests::route_monitor::What::Route { prefix, .. } => {
                            ours.contains(prefix) && !link.contains(prefix)
                        }
                        interop_tests::route_monitor::What::Nexthop => true,
                    };
                    if relevant {
                        count += 1;
                        *last_change.lock().expect("lock") = Some(e.at);
                    }
                }
            }
            (count, m.overruns)
        });
        ready_rx.recv().expect("the monitor runs");
        h
    };

    let daemon = Daemon::start(kind, &dut, &work, PEERS);
    let pids = daemon.pids();
    let mut up = 0;
    while up < PEERS {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Event::Established(_)) => up += 1,
            Ok(_) => {}
            Err(e) => panic!("{}: {up} of {PEERS} sessions up: {e}", kind.name()),
        }
    }
    let rss_before: Vec<(&str, u64)> = pids.iter().map(|(n, p)| (*n, status_kb(*p, "VmRSS:"))).collect();
    let cpu_before: Duration = pids.iter().map(|(_, p)| cpu_time(*p)).sum();
    *last_change.lock().expect("lock") = None;
    let start = Instant::now();
    go.store(true, Ordering::Relaxed);

    // Every prefix in, then quiet for 3 s, and every route complete.
    let deadline = Duration::from_secs(240);
    while start.elapsed() < deadline && dut.spawn_in(count4).join().expect("count") < base4 + n {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (mut kernel, mut complete, mut present) = (None, 0, 0);
    for _ in 0..3 {
        while start.elapsed() < deadline {
            let last = *last_change.lock().expect("lock");
            if last.is_some_and(|l| l.elapsed() >= Duration::from_secs(3)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (present, complete) = census(&dut);
        if complete == n {
            kernel = last_change.lock().expect("lock").map(|l| l.duration_since(start));
            break;
        }
        println!(
            "{}: quiet, but {complete} of {n} routes have {EQUAL} next hops ({present} present)",
            kind.name()
        );
    }
    let cpu_after: Duration = pids.iter().map(|(_, p)| cpu_time(*p)).sum();
    let rss_after = pids.iter().map(|(n, p)| (*n, status_kb(*p, "VmRSS:"))).collect();
    let rss_peak = pids.iter().map(|(n, p)| (*n, status_kb(*p, "VmHWM:"))).collect();
    drop(daemon);
    stop.store(true, Ordering::Relaxed);
    for h in injectors {
        let _ = h.join();
    }
    let (notifications, overruns) = monitor.join().expect("monitor");
    EcmpRow {
        name: kind.name(),
        kernel,
        complete,
        present,
        notifications,
        overruns,
        cpu: kernel.map(|_| cpu_after - cpu_before),
        rss_before,
        rss_after,
        rss_peak,
    }
}

/// Routes of the table in the kernel, and of them those with all their
/// next hops (with the kernel's default `nexthop_compat_mode`, a route on
/// a nexthop object is dumped with its next hops).
fn census(dut: &Netns) -> (usize, usize) {
    let text = match dut.exec(&[
        "ip",
        "-j",
        "-4",
        "route",
        "show",
        "table",
        "main",
        "root",
        "10.0.0.0/8",
    ]) {
        Ok(t) => t,
        Err(e) => {
            println!("census: {e}");
            return (0, 0);
        }
    };
    let routes: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let ours: Vec<&serde_json::Value> = routes
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| !r["dst"].as_str().unwrap_or_default().starts_with("10.255."))
        .collect();
    let complete = ours
        .iter()
        .filter(|r| r["nexthops"].as_array().map_or(1, Vec::len) == EQUAL)
        .count();
    (ours.len(), complete)
}

fn print(n: usize, rows: &[EcmpRow]) {
    let limit = rows
        .iter()
        .find(|r| r.name == Kind::NetlinkNexthop.name())
        .and_then(|r| r.kernel);
    let secs = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    let mb = |v: &[(&str, u64)]| {
        if v.is_empty() {
            return "-".into();
        }
        format!("{:.1} MB", v.iter().map(|(_, k)| k).sum::<u64>() as f64 / 1024.0)
    };
    let lines: Vec<Line<EcmpRow>> = vec![
        (
            "every route in the kernel, complete",
            Box::new(|r| secs(r.kernel)),
        ),
        (
            "time ÷ the limit (netlink+nh)",
            Box::new(|r| match (r.kernel, limit) {
                (Some(k), Some(l)) => format!("{:.2}×", k.as_secs_f64() / l.as_secs_f64()),
                _ => "-".into(),
            }),
        ),
        (
            "CPU seconds",
            Box::new(|r| r.cpu.map_or("-".into(), |c| format!("{:.1} s", c.as_secs_f64()))),
        ),
        (
            "routes with 4 next hops",
            Box::new(|r| {
                if r.name == Kind::NetlinkNexthop.name() {
                    "-".into()
                } else {
                    format!("{} of {} ({} present)", r.complete, n, r.present)
                }
            }),
        ),
        (
            "kernel notifications (route + nexthop)",
            Box::new(|r| {
                if r.name == Kind::NetlinkNexthop.name() {
                    "-".into()
                } else if r.overruns > 0 {
                    format!("{}, {} overruns", r.notifications, r.overruns)
                } else {
                    r.notifications.to_string()
                }
            }),
        ),
        ("RSS, sessions up", Box::new(|r| mb(&r.rss_before))),
        ("RSS, table loaded", Box::new(|r| mb(&r.rss_after))),
        ("RSS peak (VmHWM)", Box::new(|r| mb(&r.rss_peak))),
    ];
    println!(
        "\ncase 3: {PEERS} peers × {n} IPv4 prefixes ({} paths), {EQUAL} equal-cost paths per prefix; times from the injectors' start",
        PEERS * n
    );
    grid(rows, |r| r.name, &lines);
}
