//! `tern-lab STATE_DIR`: the lab of issue 5 (three nodes with tern, a
//! Cilium-like GoBGP and a pod each, the upstream FRR router) kept up for
//! people to look at, until SIGTERM or SIGINT. `./scripts/lab` starts it
//! in the background and stops it; it is the harness's
//! [`interop_tests::cluster`], so what runs is what the tests run.
//!
//! In `STATE_DIR` (also the work dir: configs, sockets, logs) it writes:
//!
//! - `lab.pid`: its own PID, which `./scripts/lab down` signals;
//! - `pids`: `NAME PID` of every daemon, `netns`: every namespace, for
//!   `down` to clean up by PID and by name should this process be gone;
//! - `lab.env`: where everything is, for the script (shell variables);
//! - `ready` once every session is up and every kernel has its routes, or
//!   `failed` with the reason.
//!
//! Namespaces are called `tern-lab-seg`, `tern-lab-upstream`,
//! `tern-lab-node-21`, `tern-lab-node-21-pod-10`...

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use interop_tests::{Speaker, Topology, cluster, tern_bin};
use nix::sys::signal::{SigSet, Signal};

const PREFIX: &str = "tern-lab";

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: tern-lab STATE_DIR (./scripts/lab runs it)");
        std::process::exit(2);
    };
    if !nix::unistd::geteuid().is_root() {
        eprintln!("tern-lab needs root (network namespaces)");
        std::process::exit(1);
    }
    std::fs::create_dir_all(&dir).expect("create the state dir");
    write(&dir, "lab.pid", &format!("{}\n", std::process::id()));

    let lab = std::panic::catch_unwind(|| {
        let lab = cluster("lab")
            .fixed_names(PREFIX, &dir)
            .start()
            .expect("root was checked");
        record(&lab, &dir);
        println!("waiting for the sessions and the routes");
        lab.wait_converged();
        lab
    });
    let lab = match lab {
        Ok(lab) => lab,
        Err(e) => {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            // The guards have stopped everything; the logs stay in `dir`.
            write(&dir, "failed", &format!("{why}\n"));
            std::process::exit(1);
        }
    };
    // From here on SIGTERM, SIGINT and SIGHUP wait for `sigwait`, so that
    // the guards run when we are told to stop. Not before: the daemons
    // would inherit the mask (a tern that never sees its SIGTERM). Until
    // then a signal kills this process outright, and `./scripts/lab down`
    // cleans up after it (the namespaces are ours by their prefix).
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block().expect("block signals");
    write(&dir, "ready", "");
    println!("lab ready; waiting for SIGTERM");
    let signal = signals.wait().expect("wait for a signal");
    println!("{signal:?}: tearing the lab down");
    drop(lab);
    println!("lab down");
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// `pids`, `netns` and `lab.env`.
fn record(lab: &Topology, dir: &Path) {
    let mut pids = String::new();
    let mut netns = vec![lab.segment().netns().name().to_owned()];
    let mut env = String::new();
    let q = |s: &str| format!("'{s}'");
    let _ = writeln!(env, "LAB_DIR={}", q(&dir.display().to_string()));
    let _ = writeln!(env, "LAB_TERN={}", q(&tern_bin().display().to_string()));
    let _ = writeln!(env, "LAB_SEGMENT_NS={}", q(lab.segment().netns().name()));
    for r in &lab.routers {
        netns.push(r.ns.name().to_owned());
        let _ = writeln!(env, "LAB_ROUTER={}", q(&r.up.name));
        let _ = writeln!(env, "LAB_ROUTER_NS={}", q(r.ns.name()));
        let _ = writeln!(env, "LAB_ROUTER_ADDR={}", q(&format!("{} {}", r.up.v6, r.up.v4)));
        match &r.speaker {
            Speaker::Frr(f) => {
                let _ = writeln!(pids, "{}-bgpd {}", r.up.name, f.bgpd_pid());
                let _ = writeln!(pids, "{}-zebra {}", r.up.name, f.zebra_pid());
                let _ = writeln!(env, "LAB_VTY={}", q(&f.dir().display().to_string()));
            }
            Speaker::Bird(b) => {
                let _ = writeln!(pids, "{}-bird {}", r.up.name, b.pid());
            }
        }
    }
    let names: Vec<String> = lab.nodes.iter().map(|n| n.name()).collect();
    let _ = writeln!(env, "LAB_NODES={}", q(&names.join(" ")));
    for n in &lab.nodes {
        let key = n.name().replace('-', "_");
        if let Some(pid) = n.tern.pid() {
            let _ = writeln!(pids, "{}-tern {pid}", n.name());
        }
        let _ = writeln!(pids, "{}-gobgpd {}", n.name(), n.gobgp.pid());
        netns.push(n.ns.name().to_owned());
        let _ = writeln!(env, "LAB_NS_{key}={}", q(n.ns.name()));
        let _ = writeln!(env, "LAB_API_{key}={}", q(&n.tern.socket().display().to_string()));
        let _ = writeln!(
            env,
            "LAB_ADDR_{key}={}",
            q(&format!("{} {}", n.id.v6(), n.id.v4()))
        );
        let _ = writeln!(env, "LAB_PODCIDRS_{key}={}", q(&n.id.pod_cidrs().join(" ")));
        let _ = writeln!(env, "LAB_VIPS_{key}={}", q(&n.vips.join(" ")));
        for p in &n.pods {
            netns.push(p.ns.name().to_owned());
            let _ = writeln!(env, "LAB_POD_NS_{key}={}", q(p.ns.name()));
            let _ = writeln!(env, "LAB_POD_ADDR_{key}={}", q(&format!("{} {}", p.v4, p.v6)));
        }
    }
    write(dir, "pids", &pids);
    write(dir, "netns", &(netns.join("\n") + "\n"));
    write(dir, "lab.env", &env);
}
