//! Labs in network namespaces that run tern against real FRR, GoBGP and
//! bird2, and the benchmarks that compare them.
//!
//! The harness is a set of guards, each of which undoes what it did when it
//! is dropped, also when a test panics:
//!
//! - [`WorkDir`]: a temp dir for configs, sockets and logs; kept (and its
//!   path printed) when the test fails.
//! - [`Netns`]: a network namespace with `lo` up, deleted on drop;
//!   [`veth`] joins two namespaces, [`Bridge`] is an L2 segment in a
//!   namespace of its own.
//! - [`Daemon`]: a process started inside a namespace, known by its PID,
//!   stopped by PID (SIGTERM, then SIGKILL) on drop; its output goes to a
//!   log file that is printed when the test fails.
//! - [`Frr`], [`Gobgp`], [`Tern`], [`Bird`]: the speakers, each with
//!   helpers to drive them and read their state.
//! - [`Topology`]: a multi-node lab (segment, FRR routers, nodes with
//!   tern, GoBGP and pods) built from the above; [`Monitor`]: an `ip
//!   monitor` recording; [`tcp::Server`]: a TCP server in a namespace.
//!
//! Assertions about things that happen over time use [`wait_until`] /
//! [`wait_for`] (poll with a deadline, report the last state seen) and
//! [`holds_for`] (something must stay true for a while); never a bare sleep.
//!
//! Every test builds its own namespaces, with names unique to the process
//! and the test ([`unique_name`]), so the tests of one binary can run in
//! parallel. Namespaces left behind by a test process that was killed are
//! removed by the next run ([`cleanup_stale`]).

pub mod bird;
pub mod client;
pub mod expect;
pub mod feeder;
pub mod frr;
pub mod gobgp;
pub mod http;
pub mod kernel;
pub mod kernel_writer;
pub mod lab;
pub mod netns;
pub mod nft;
pub mod plot;
pub mod process;
pub mod raw;
pub mod route_monitor;
pub mod soak;
pub mod tcp;
pub mod tern;
pub mod wait;
pub mod workdir;

use std::path::Path;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

pub use bird::Bird;
pub use frr::{Frr, FrrOptions, FrrPath, FrrVty};
pub use gobgp::Gobgp;
pub use kernel::{Hop, KernelRoute, Monitor};
pub use lab::{BestPath, Node, Pod, Router, Speaker, Topology, TopologyBuilder, cluster};
pub use netns::{Bridge, Netns, veth};
pub use process::Daemon;
pub use raw::RawPeer;
pub use tern::{Tern, set_tern_bin, tern_bin};
pub use wait::{holds_for, time_until, timeout, wait_for, wait_until};
pub use workdir::WorkDir;

/// Prefix of every namespace, work dir and log this harness creates.
pub const PREFIX: &str = "tern-it";

/// FRR's daemons are not on `PATH` in Debian.
pub const FRR_DIR: &str = "/usr/lib/frr";

/// The Debian packages the labs use.
const PACKAGES: &[&str] = &[
    "frr",
    "gobgpd",
    "bird2",
    "iproute2",
    "tcpdump",
    "nftables",
    "iputils-ping",
    // promtool, and the reference Python parser of the exposition format.
    "prometheus",
    "python3-prometheus-client",
];

/// Where Debian's `python3-prometheus-client` puts the module.
pub const PYTHON_PROMETHEUS_CLIENT: &str = "/usr/lib/python3/dist-packages/prometheus_client";

/// True when the labs can run: we are root and the peers are installed
/// (installing them with apt-get if needed, once per process).
///
/// When not root, prints why and returns false, so the test passes as
/// skipped; but under CI (`CI=true`) the labs must run, so it panics.
pub fn require_root() -> bool {
    if !nix::unistd::geteuid().is_root() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("interop tests need root, and CI=true says they must run");
        }
        println!("interop tests need root; skipped");
        return false;
    }
    ensure_packages();
    static CLEANUP: Once = Once::new();
    CLEANUP.call_once(cleanup_stale);
    true
}

/// Installs the peers' packages once per process if a program is missing.
pub fn ensure_packages() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let needed = [
            format!("{FRR_DIR}/bgpd"),
            format!("{FRR_DIR}/zebra"),
            "vtysh".into(),
            "gobgpd".into(),
            "gobgp".into(),
            "bird".into(),
            "birdc".into(),
            "ip".into(),
            "nft".into(),
            "ping".into(),
            "promtool".into(),
            PYTHON_PROMETHEUS_CLIENT.into(),
        ];
        let missing: Vec<&String> = needed.iter().filter(|p| !program_exists(p)).collect();
        if missing.is_empty() {
            return;
        }
        println!("installing {PACKAGES:?}: missing {missing:?}");
        for args in [vec!["update"], [&["install", "-y"][..], PACKAGES].concat()] {
            let status = Command::new("apt-get")
                .args(&args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .unwrap_or_else(|e| panic!("cannot run apt-get: {e}"));
            assert!(status.success(), "apt-get {args:?} failed: {status}");
        }
        let still: Vec<&String> = needed.iter().filter(|p| !program_exists(p)).collect();
        assert!(still.is_empty(), "still missing after apt-get install: {still:?}");
    });
}

/// An absolute path that exists, or a name found on `PATH`.
pub fn program_exists(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// `tern-it-<tag>-<pid>-<n>`: unique in this process and across processes.
/// `tag` should name the test; keep it short and free of spaces.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}-{tag}-{}-{n}", std::process::id())
}

/// The PID embedded in a name made by [`unique_name`].
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?.strip_prefix('-')?;
    let mut parts = rest.rsplitn(3, '-');
    let _n: u32 = parts.next()?.parse().ok()?;
    parts.next()?.parse().ok()
}

/// Removes namespaces (and the processes in them) left by test processes
/// that no longer run, e.g. killed before their guards could clean up.
/// Only names made by [`unique_name`] whose process is gone are touched.
/// [`require_root`] runs it once per process.
pub fn cleanup_stale() {
    for name in netns::list() {
        let Some(pid) = owner_pid(&name) else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        println!("removing namespace {name} left by process {pid}, which is gone");
        netns::kill_all_in(&name);
        netns::delete(&name);
    }
}

/// Runs a command to completion and returns its stdout, or a message with
/// the command, its status and its stderr.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// The first line of what `cmd` prints (a version, say), trimmed; or why
/// it could not run.
pub fn first_line(cmd: &mut Command) -> String {
    run(cmd)
        .map(|o| o.lines().next().unwrap_or_default().trim().to_owned())
        .unwrap_or_else(|e| e)
}

/// Like [`run`], panicking on failure.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> String {
    run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_owner_pid() {
        let name = unique_name("some-test");
        assert!(name.starts_with("tern-it-some-test-"));
        assert_eq!(owner_pid(&name), Some(std::process::id()));
        assert_eq!(owner_pid("tern-it-x-12-3"), Some(12));
        assert_eq!(owner_pid("other-x-12-3"), None);
        assert_eq!(owner_pid("tern-it-x-y"), None);
        assert_ne!(unique_name("a"), unique_name("a"));
    }
}
