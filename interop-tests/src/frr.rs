//! FRR (zebra + bgpd) in a namespace, outside its service.
//!
//! Each instance has its own run directory owned by `frr:frr` (the daemons
//! drop to that user), holding the configs, pid files, the zserv socket,
//! the vty sockets and the logs. Both daemons run in the foreground (no
//! `-d`), so the PIDs we hold are theirs. `vtysh --vty_socket DIR` talks to
//! them from outside the namespace.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;
use crate::process::Daemon;
use crate::wait::{timeout, wait_until};
use crate::workdir::WorkDir;
use crate::{FRR_DIR, run, run_ok};

pub struct Frr {
    vty: FrrVty,
    // Fields drop in order: bgpd and bfdd stop before zebra.
    bgpd: Daemon,
    bfdd: Option<Daemon>,
    zebra: Daemon,
    reported: Cell<bool>,
}

/// How [`Frr::start_with`] runs the daemons.
#[derive(Clone, Debug, Default)]
pub struct FrrOptions {
    /// bgpd hands its best routes to zebra, which installs them in the
    /// namespace's kernel (bgpd without `-n`), so the namespace forwards
    /// like a router. Off by default: FRR only speaks BGP.
    pub install_routes: bool,
    /// bfdd runs too (its configuration `bfdd_conf`, often empty: bgpd's
    /// `neighbor X bfd` registers sessions through zebra).
    pub bfd: Option<String>,
    /// bgpd never listens (`-p 0`), as MetalLB and frr-k8s run it: it only
    /// dials.
    pub no_listen: bool,
}

/// A handle on FRR's vty that can be cloned and sent to another thread
/// (e.g. to poll FRR's table while the test restarts a peer). It talks to
/// the daemons through their vty sockets; it does not keep them running.
#[derive(Clone, Debug)]
pub struct FrrVty {
    name: String,
    dir: PathBuf,
}

/// One path of a prefix in FRR's BGP table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrrPath {
    pub valid: bool,
    pub best: bool,
    /// Kept by FRR as graceful restart helper while its peer restarts.
    pub stale: bool,
    /// `"4210101021 4220101000"`; empty for a local route.
    pub as_path: String,
    /// Every next hop address FRR shows (global and link-local).
    pub next_hops: Vec<String>,
}

impl Frr {
    /// Starts zebra and bgpd in `ns` with `bgpd_conf` as bgpd's
    /// configuration; returns once bgpd's vty answers. bgpd runs with
    /// `-n` (it installs nothing in the kernel).
    #[track_caller]
    pub fn start(ns: &Netns, work: &WorkDir, name: &str, bgpd_conf: &str) -> Frr {
        Frr::start_with(ns, work, name, bgpd_conf, &FrrOptions::default())
    }

    /// [`Frr::start`] with options, e.g. to install routes in the kernel.
    #[track_caller]
    pub fn start_with(ns: &Netns, work: &WorkDir, name: &str, bgpd_conf: &str, options: &FrrOptions) -> Frr {
        let dir = work.subdir(name);
        std::fs::write(dir.join("zebra.conf"), format!("hostname {name}\n")).expect("write zebra.conf");
        std::fs::write(dir.join("bgpd.conf"), bgpd_conf).expect("write bgpd.conf");
        run_ok(Command::new("chown").args(["-R", "frr:frr"]).arg(&dir));
        let path = |f: &str| dir.join(f).display().to_string();
        let common = |daemon: &str| -> Command {
            let mut c = ns.command(&format!("{FRR_DIR}/{daemon}"));
            c.args(["-f", &path(&format!("{daemon}.conf"))])
                .args(["-i", &path(&format!("{daemon}.pid"))])
                .args(["-z", &path("zserv.api")])
                .args(["--vty_socket", &path("")])
                .args(["-P", "0", "-u", "frr", "-g", "frr"])
                .args(["--log", &format!("file:{}", path(&format!("{daemon}.log")))]);
            c
        };

        let mut zebra = Daemon::spawn(&format!("{name}-zebra"), common("zebra"), work.path());
        zebra.add_log(dir.join("zebra.log"));
        wait_for_socket(&mut zebra, &dir.join("zserv.api"));

        let bfdd = options.bfd.as_ref().map(|conf| {
            std::fs::write(dir.join("bfdd.conf"), conf).expect("write bfdd.conf");
            run_ok(Command::new("chown").args(["frr:frr"]).arg(dir.join("bfdd.conf")));
            let mut cmd = common("bfdd");
            cmd.args(["--bfdctl", &path("bfdd.sock")]);
            cmd.args(["--log-level", "debug"]);
            let mut bfdd = Daemon::spawn(&format!("{name}-bfdd"), cmd, work.path());
            bfdd.add_log(dir.join("bfdd.log"));
            wait_for_socket(&mut bfdd, &dir.join("bfdd.vty"));
            bfdd
        });

        let mut cmd = common("bgpd");
        if !options.install_routes {
            cmd.arg("-n");
        }
        if options.no_listen {
            cmd.args(["-p", "0"]);
        }
        cmd.args(["--log-level", "debug"]);
        let mut bgpd = Daemon::spawn(&format!("{name}-bgpd"), cmd, work.path());
        bgpd.add_log(dir.join("bgpd.log"));
        wait_for_socket(&mut bgpd, &dir.join("bgpd.vty"));
        let frr = Frr {
            vty: FrrVty {
                name: name.to_owned(),
                dir,
            },
            bgpd,
            bfdd,
            zebra,
            reported: Cell::new(false),
        };
        wait_until(timeout(10), &format!("{name}: bgpd answers on its vty"), || {
            frr.vtysh(&["show bgp summary json"]).map(drop)
        });
        frr
    }

    /// SIGKILL to every daemon, as when the pod that runs them dies.
    pub fn kill(&mut self) {
        self.bgpd.kill();
        if let Some(b) = &mut self.bfdd {
            b.kill();
        }
        self.zebra.kill();
    }

    pub fn name(&self) -> &str {
        &self.vty.name
    }

    /// The run directory (`--vty_socket` for vtysh).
    pub fn dir(&self) -> &Path {
        &self.vty.dir
    }

    /// A handle on the vty for another thread.
    pub fn vty(&self) -> FrrVty {
        self.vty.clone()
    }

    pub fn bgpd_pid(&self) -> u32 {
        self.bgpd.pid()
    }

    /// `show bfd peers json`: FRR's BFD sessions.
    pub fn bfd_peers(&self) -> Result<Vec<Value>, String> {
        match self.json("show bfd peers json")? {
            Value::Array(a) => Ok(a),
            other => Err(format!("show bfd peers json: {other}")),
        }
    }

    pub fn zebra_pid(&self) -> u32 {
        self.zebra.pid()
    }

    /// `vtysh -c CMD1 -c CMD2 ...`: output, or an error with vtysh's.
    pub fn vtysh(&self, commands: &[&str]) -> Result<String, String> {
        self.vty.vtysh(commands)
    }

    /// A `show ... json` command, parsed.
    pub fn json(&self, command: &str) -> Result<Value, String> {
        self.vty.json(command)
    }

    /// `configure terminal` followed by `lines` (each a vtysh command, so
    /// give the context too: `router bgp N`, `address-family ...`).
    #[track_caller]
    pub fn configure(&self, lines: &[&str]) {
        let mut all = vec!["configure terminal"];
        all.extend_from_slice(lines);
        if let Err(e) = self.vtysh(&all) {
            panic!("{}: configuration failed: {e}", self.name());
        }
    }

    /// `show bgp neighbors ADDR json`, the neighbour's object.
    pub fn neighbor(&self, addr: &str) -> Result<Value, String> {
        let v = self.json(&format!("show bgp neighbors {addr} json"))?;
        match v.get(addr) {
            Some(n) => Ok(n.clone()),
            None => Err(format!("no neighbor {addr} in {v}")),
        }
    }

    /// Waits until the session with `addr` is Established; returns the
    /// neighbour's JSON.
    #[track_caller]
    pub fn wait_established(&self, addr: &str, within: Duration) -> Value {
        wait_until(
            within,
            &format!("{}: neighbor {addr} Established", self.name()),
            || {
                let n = self.neighbor(addr)?;
                if n["bgpState"] == "Established" {
                    Ok(n)
                } else {
                    Err(format!(
                        "bgpState {}, lastResetDueTo {}, lastErrorCodeSubcode {}",
                        n["bgpState"], n["lastResetDueTo"], n["lastErrorCodeSubcode"]
                    ))
                }
            },
        )
    }

    /// The BGP table of `afi` (`"ipv4"` or `"ipv6"`) unicast: prefix →
    /// paths, from `show bgp AFI unicast json`.
    pub fn routes(&self, afi: &str) -> Result<BTreeMap<String, Vec<FrrPath>>, String> {
        self.vty.routes(afi)
    }

    /// The paths FRR has for exactly `prefix` (`"10.0.0.0/24"`).
    pub fn paths(&self, prefix: &str) -> Result<Vec<FrrPath>, String> {
        self.vty.paths(prefix)
    }

    /// Prints [`Frr::dump`] (once; drop does it too when a test fails).
    pub fn report(&self) {
        self.reported.set(true);
        eprintln!("{}", self.dump());
    }

    /// Its sessions and tables, for a failing test's output.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for c in [
            "show bgp summary",
            "show bgp ipv4 unicast",
            "show bgp ipv6 unicast",
            "show bgp neighbors",
            "show bfd peers",
        ] {
            if c.contains("bfd") && self.bfdd.is_none() {
                continue;
            }
            let text = self.vtysh(&[c]).unwrap_or_else(|e| e);
            out.push_str(&format!("==== {}: {c} ====\n{text}\n", self.name()));
        }
        out
    }
}

impl FrrVty {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `vtysh -c CMD1 -c CMD2 ...`: output, or an error with vtysh's.
    pub fn vtysh(&self, commands: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("vtysh");
        cmd.arg("--vty_socket").arg(&self.dir);
        for c in commands {
            cmd.args(["-c", c]);
        }
        let out = run(&mut cmd)?;
        // vtysh reports some errors on stdout with exit status 0.
        if out.lines().any(|l| l.starts_with("% ")) {
            return Err(format!("vtysh {commands:?}: {out}"));
        }
        Ok(out)
    }

    /// A `show ... json` command, parsed.
    pub fn json(&self, command: &str) -> Result<Value, String> {
        let out = self.vtysh(&[command])?;
        serde_json::from_str(&out).map_err(|e| format!("{command}: {e}: {out}"))
    }

    /// The BGP table of `afi` (`"ipv4"` or `"ipv6"`) unicast: prefix →
    /// paths, from `show bgp AFI unicast json`.
    pub fn routes(&self, afi: &str) -> Result<BTreeMap<String, Vec<FrrPath>>, String> {
        let v = self.json(&format!("show bgp {afi} unicast json"))?;
        let Some(routes) = v.get("routes") else {
            // An empty table has no "routes" in some versions.
            return Ok(BTreeMap::new());
        };
        let routes = routes
            .as_object()
            .ok_or_else(|| format!("unexpected routes in {v}"))?;
        Ok(routes
            .iter()
            .map(|(prefix, paths)| {
                let paths = paths
                    .as_array()
                    .map(|a| a.iter().map(FrrPath::from_json).collect())
                    .unwrap_or_default();
                (prefix.clone(), paths)
            })
            .collect())
    }

    /// The paths FRR has for exactly `prefix` (`"10.0.0.0/24"`).
    pub fn paths(&self, prefix: &str) -> Result<Vec<FrrPath>, String> {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        Ok(self.routes(afi)?.remove(prefix).unwrap_or_default())
    }
}

impl FrrPath {
    fn from_json(p: &Value) -> FrrPath {
        FrrPath {
            valid: p["valid"].as_bool().unwrap_or(false),
            best: p["bestpath"].as_bool().unwrap_or(false),
            stale: p["stale"].as_bool().unwrap_or(false),
            as_path: p["path"].as_str().unwrap_or_default().to_owned(),
            next_hops: p["nexthops"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n["ip"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.reported.get() {
            self.report();
        }
    }
}

#[track_caller]
fn wait_for_socket(d: &mut Daemon, socket: &Path) {
    let what = format!("{} to create {}", d.name(), socket.display());
    wait_until(timeout(10), &what, || {
        if let Some(status) = d.exit_status() {
            return Err(format!("{} exited: {status}\n{}", d.name(), d.log_tail(30)));
        }
        if socket.exists() {
            Ok(())
        } else {
            Err("no socket yet".into())
        }
    });
}
