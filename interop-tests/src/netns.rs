//! Network namespaces, veth pairs and bridges.
//!
//! Every link lives inside namespaces this module created: a veth is
//! created with both ends directly in their namespaces (`ip link add A
//! netns X type veth peer name B netns Y`), so interface names only need
//! to be unique per namespace and parallel labs never clash. Deleting a
//! namespace deletes its links.

use std::io::Write;
use std::process::{Command, Stdio};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{run, run_ok};

/// A network namespace with `lo` up and IPv6 DAD off; deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `name` (use [`crate::unique_name`]).
    pub fn new(name: &str) -> Netns {
        run_ok(Command::new("ip").args(["netns", "add", name]));
        // From here on, drop deletes it, also if the setup below fails.
        let ns = Netns {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        // Addresses are usable at once (no tentative state), so a daemon
        // can bind them right after they are added.
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NS program`: the program replaces `ip` (exec), so the
    /// child's PID is the program's own.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `args[0] args[1..]` in the namespace; stdout, or an error.
    pub fn exec(&self, args: &[&str]) -> Result<String, String> {
        let (program, rest) = args.split_first().expect("a program to run");
        run(self.command(program).args(rest))
    }

    /// Like [`Netns::exec`], with `input` on the program's standard input.
    pub fn exec_stdin(&self, args: &[&str], input: &str) -> Result<String, String> {
        let (program, rest) = args.split_first().expect("a program to run");
        let mut cmd = self.command(program);
        cmd.args(rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| format!("{cmd:?}: cannot write its input: {e}"))?;
        }
        let out = child.wait_with_output().map_err(|e| format!("{cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{cmd:?} failed ({}): {}{}\ninput:\n{input}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ))
        }
    }

    /// `ip -n NS args...`, panicking on failure.
    #[track_caller]
    pub fn ip(&self, args: &[&str]) -> String {
        run_ok(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    #[track_caller]
    pub fn sysctl(&self, key: &str, value: &str) {
        run_ok(self.command("sysctl").args(["-qw", &format!("{key}={value}")]));
    }

    /// Adds an address (`10.0.0.1/24`, `fd00::1/64`); IPv6 ones with `nodad`.
    #[track_caller]
    pub fn add_addr(&self, dev: &str, cidr: &str) {
        if cidr.contains(':') {
            self.ip(&["addr", "add", cidr, "dev", dev, "nodad"]);
        } else {
            self.ip(&["addr", "add", cidr, "dev", dev]);
        }
    }

    #[track_caller]
    pub fn link_up(&self, dev: &str) {
        self.ip(&["link", "set", dev, "up"]);
    }

    #[track_caller]
    pub fn link_down(&self, dev: &str) {
        self.ip(&["link", "set", dev, "down"]);
    }

    /// Sets a fixed MAC address, so the link-local address (and FRR's
    /// link-local next hops) are the same on every run.
    #[track_caller]
    pub fn set_mac(&self, dev: &str, mac: &str) {
        self.ip(&["link", "set", dev, "address", mac]);
    }

    /// Runs `f` on a new thread that has entered this namespace (only that
    /// thread: `setns(2)` on the thread), e.g. to open sockets there from
    /// the test itself. Returns the thread's handle.
    pub fn spawn_in<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        std::thread::spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
            drop(file);
            f()
        })
    }

    /// The PIDs of every process in the namespace.
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The daemons' own guards stop them first; anything left here was
        // started in this namespace by the test and would keep it alive.
        let left = pids_in(&self.name);
        if !left.is_empty() {
            eprintln!("namespace {}: killing leftover processes {left:?}", self.name);
            kill_all_in(&self.name);
        }
        delete(&self.name);
    }
}

/// A veth pair: `a_if` in `a`, `b_if` in `b`, both up.
#[track_caller]
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    run_ok(Command::new("ip").args([
        "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ]));
    a.link_up(a_if);
    b.link_up(b_if);
}

/// An L2 segment: a Linux bridge `br0` in a namespace of its own. Nodes
/// join with [`Bridge::attach`], through a veth whose other end is a port
/// of the bridge.
pub struct Bridge {
    ns: Netns,
    ports: u32,
}

impl Bridge {
    pub const DEV: &'static str = "br0";

    /// A bridge in a new namespace called `name`.
    pub fn new(name: &str) -> Bridge {
        let ns = Netns::new(name);
        ns.ip(&["link", "add", Self::DEV, "type", "bridge"]);
        // No STP: ports forward at once.
        ns.ip(&["link", "set", Self::DEV, "type", "bridge", "stp_state", "0"]);
        ns.link_up(Self::DEV);
        Bridge { ns, ports: 0 }
    }

    /// Connects `node` to the segment through its interface `ifname` (up,
    /// no addresses yet). Returns the name of the bridge port.
    #[track_caller]
    pub fn attach(&mut self, node: &Netns, ifname: &str) -> String {
        self.ports += 1;
        let port = format!("port{}", self.ports);
        veth(&self.ns, &port, node, ifname);
        self.ns.ip(&["link", "set", &port, "master", Self::DEV]);
        port
    }

    /// The bridge's namespace, e.g. to take a port down (`link_down`).
    pub fn netns(&self) -> &Netns {
        &self.ns
    }
}

/// The names of all namespaces (`ip netns list`).
pub fn list() -> Vec<String> {
    run(Command::new("ip").args(["netns", "list"]))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn pids_in(name: &str) -> Vec<i32> {
    run(Command::new("ip").args(["netns", "pids", name]))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// SIGKILLs, by PID, every process in namespace `name`. Only for
/// namespaces this harness created.
pub(crate) fn kill_all_in(name: &str) {
    for pid in pids_in(name) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    for _ in 0..50 {
        if pids_in(name).is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `ip netns del NAME`, reporting (not panicking on) a failure.
pub fn delete(name: &str) {
    if let Err(e) = run(Command::new("ip").args(["netns", "del", name])) {
        eprintln!("cannot delete namespace {name}: {e}");
    }
}
