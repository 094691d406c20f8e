//! The harness's own guarantees, which every lab relies on: guards clean
//! up (processes by PID, namespaces), also when a test panics, and a
//! bridge really is one L2 segment.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use interop_tests::{Bridge, Daemon, Netns, WorkDir, netns, timeout, unique_name, wait_until};

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn guards_stop_daemons_and_delete_namespaces() {
    if !interop_tests::require_root() {
        return;
    }
    let name = unique_name("guards");
    let (pid, dir) = {
        let work = WorkDir::new("guards");
        let ns = Netns::new(&name);
        assert!(netns::list().contains(&name));
        let mut sleeper = ns.command("sleep");
        sleeper.arg("600");
        let d = Daemon::spawn("sleeper", sleeper, work.path());
        assert!(alive(d.pid()));
        // `ip netns exec` enters the namespace, then execs the program.
        let pids = wait_until(timeout(5), "the daemon in the namespace", || {
            let pids = ns.pids();
            if pids.is_empty() {
                Err("no process in it yet".into())
            } else {
                Ok(pids)
            }
        });
        assert_eq!(pids, [d.pid() as i32], "the PID we hold is the daemon's own");
        (d.pid(), work.path().to_owned())
    };
    assert!(!alive(pid), "daemon {pid} still runs");
    assert!(!netns::list().contains(&name), "namespace {name} left behind");
    assert!(!dir.exists(), "work dir {} left behind", dir.display());
}

#[test]
fn a_failing_test_keeps_its_logs_and_still_cleans_up() {
    if !interop_tests::require_root() {
        return;
    }
    let name = unique_name("failing");
    let result = std::panic::catch_unwind(|| -> (u32, PathBuf) {
        let work = WorkDir::new("failing");
        let ns = Netns::new(&name);
        let mut cmd = ns.command("sh");
        cmd.args(["-c", "echo hello from the daemon; exec sleep 600"]);
        let d = Daemon::spawn("talker", cmd, work.path());
        let log = work.path().join("talker.log");
        wait_until(
            timeout(5),
            "the daemon's first line",
            || match std::fs::read_to_string(&log) {
                Ok(t) if t.contains("hello") => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        std::panic::panic_any((d.pid(), work.path().to_owned()));
    });
    let (pid, dir) = *result.unwrap_err().downcast::<(u32, PathBuf)>().unwrap();
    assert!(!alive(pid), "daemon {pid} still runs");
    assert!(!netns::list().contains(&name), "namespace {name} left behind");
    let log = std::fs::read_to_string(dir.join("talker.log")).expect("the log is kept");
    assert!(log.contains("hello from the daemon"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn namespaces_of_dead_test_processes_are_removed() {
    if !interop_tests::require_root() {
        return;
    }
    // A test process that was killed before its guards ran: its PID is gone.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = format!("tern-it-stale-{dead}-0");
    interop_tests::run_ok(std::process::Command::new("ip").args(["netns", "add", &stale]));
    let mine = Netns::new(&unique_name("not-stale"));
    interop_tests::cleanup_stale();
    let left = netns::list();
    if left.contains(&stale) {
        netns::delete(&stale);
        panic!("{stale} was not removed");
    }
    assert!(
        left.iter().any(|n| n == mine.name()),
        "a live process's namespace was removed"
    );
}

/// Accepts one connection on `addr` in `ns` and echoes what it reads.
fn echo_once(ns: &Netns, addr: SocketAddr) -> std::thread::JoinHandle<std::io::Result<()>> {
    let listener = ns
        .spawn_in(move || TcpListener::bind(addr))
        .join()
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept()?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf)?;
        s.write_all(&buf)
    })
}

fn talk(ns: &Netns, addr: SocketAddr) -> Result<(), String> {
    ns.spawn_in(move || -> Result<(), String> {
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map_err(|e| e.to_string())?;
        s.write_all(b"hello").map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).map_err(|e| e.to_string())?;
        if &buf == b"hello" {
            Ok(())
        } else {
            Err(format!("{buf:?}"))
        }
    })
    .join()
    .unwrap()
}

#[test]
fn a_bridge_is_one_segment_and_a_port_can_go_down() {
    if !interop_tests::require_root() {
        return;
    }
    let mut bridge = Bridge::new(&unique_name("bridge-br"));
    let nodes: Vec<Netns> = (1..=3)
        .map(|i| Netns::new(&unique_name(&format!("bridge-n{i}"))))
        .collect();
    let mut ports = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        ports.push(bridge.attach(n, "eth0"));
        n.add_addr("eth0", &format!("fd00:200::{}/64", i + 1));
        n.add_addr("eth0", &format!("10.200.0.{}/24", i + 1));
    }
    // The loopback of a node is its own: the namespaces are separate.
    for addr in ["[fd00:200::1]:7000", "10.200.0.1:7001"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let server = echo_once(&nodes[0], addr);
        wait_until(
            timeout(5),
            &format!("node 3 reaches {addr} over the bridge"),
            || talk(&nodes[2], addr),
        );
        server.join().unwrap().unwrap();
    }
    // Port of node 3 down: node 3 is cut off, node 2 still reaches node 1.
    bridge.netns().link_down(&ports[2]);
    let addr: SocketAddr = "[fd00:200::1]:7002".parse().unwrap();
    let server = echo_once(&nodes[0], addr);
    assert!(
        talk(&nodes[2], addr).is_err(),
        "node 3 still connects with its port down"
    );
    wait_until(timeout(5), "node 2 reaches node 1", || talk(&nodes[1], addr));
    server.join().unwrap().unwrap();
}

/// The benchmarks' route monitor sees a route added and removed, with
/// its prefix and table, and a nexthop object.
#[test]
fn the_route_monitor_sees_routes_and_nexthop_objects_come_and_go() {
    use interop_tests::route_monitor::{RouteMonitor, What};
    if !interop_tests::require_root() {
        return;
    }
    let ns = Netns::new(&unique_name("route-monitor"));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let watcher = ns.spawn_in(move || {
        let mut m = RouteMonitor::open().expect("open");
        ready_tx.send(()).expect("ready");
        let mut seen = Vec::new();
        let started = std::time::Instant::now();
        while seen.len() < 4 && started.elapsed() < Duration::from_secs(10) {
            seen.extend(m.read().expect("read").into_iter().map(|e| e.what));
        }
        seen
    });
    ready_rx.recv().expect("the monitor is open");
    ns.ip(&["nexthop", "add", "id", "77", "blackhole"]);
    ns.ip(&["route", "add", "10.9.8.0/24", "nhid", "77", "table", "100"]);
    ns.ip(&["route", "del", "10.9.8.0/24", "table", "100"]);
    ns.ip(&["-6", "route", "add", "blackhole", "fd00:9::/64"]);
    let seen = watcher.join().expect("watcher");
    let route = |add: bool, prefix: &str, table: u32| What::Route {
        add,
        prefix: prefix.parse().expect("prefix"),
        table,
    };
    assert_eq!(
        seen,
        [
            What::Nexthop,
            route(true, "10.9.8.0/24", 100),
            route(false, "10.9.8.0/24", 100),
            route(true, "fd00:9::/64", 254),
        ],
        "in order, with prefix and table"
    );
}
