//! GoBGP (gobgpd + the gobgp CLI) in a namespace, set up like Cilium's BGP
//! control plane.
//!
//! gobgpd's gRPC API listens on `127.0.0.1:<port>` *inside* its namespace,
//! so the CLI runs there too (`ip netns exec NS gobgp -p PORT ...`) and two
//! labs may use the same port. gobgpd runs in its own UTS namespace with
//! the instance name as host name, because GoBGP puts the system host name
//! in its FQDN capability.

use std::cell::Cell;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;
use crate::process::Daemon;
use crate::run;
use crate::wait::{timeout, wait_until};
use crate::workdir::WorkDir;

/// gobgpd's configuration as Cilium's BGP control plane sets it up: it
/// does not listen (`port = -1`) and dials `neighbor` on port 179, with
/// IPv4 and IPv6 unicast, graceful restart (restart time 120 s, N bit) on
/// both, and a fast connect retry. Default import and export policies
/// accept, so routes added with `gobgp global rib add` are advertised.
pub fn cilium_config(asn: u32, router_id: &str, neighbor: &str, peer_asn: u32) -> String {
    format!(
        r#"[global.config]
  as = {asn}
  router-id = "{router_id}"
  port = -1

[global.apply-policy.config]
  default-import-policy = "accept-route"
  default-export-policy = "accept-route"

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{neighbor}"
    peer-as = {peer_asn}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 90
    keepalive-interval = 30
  [neighbors.transport.config]
    remote-port = 179
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
    notification-enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
"#
    )
}

pub struct Gobgp {
    name: String,
    ns: String,
    port: u16,
    config: PathBuf,
    log_dir: PathBuf,
    runs: u32,
    daemon: Option<Daemon>,
    /// Earlier runs, already stopped: their logs are printed too if the
    /// test fails.
    previous: Vec<Daemon>,
    reported: Cell<bool>,
}

impl Gobgp {
    /// Starts gobgpd in `ns` with `config` (TOML) and its API on
    /// `127.0.0.1:api_port` in that namespace; returns once the API answers.
    #[track_caller]
    pub fn start(ns: &Netns, work: &WorkDir, name: &str, config: &str, api_port: u16) -> Gobgp {
        let file = work.path().join(format!("{name}.toml"));
        std::fs::write(&file, config).expect("write the gobgpd config");
        let mut g = Gobgp {
            name: name.to_owned(),
            ns: ns.name().to_owned(),
            port: api_port,
            config: file,
            log_dir: work.path().to_owned(),
            runs: 0,
            daemon: None,
            previous: Vec::new(),
            reported: Cell::new(false),
        };
        g.launch(false);
        g
    }

    /// Runs gobgpd; with `restarting`, `-r`: the R bit of the graceful
    /// restart capability says it restarted (RFC 4724), as Cilium's agent
    /// does when it comes back. Its RIB starts empty either way.
    #[track_caller]
    fn launch(&mut self, restarting: bool) {
        self.runs += 1;
        let log_name = match self.runs {
            1 => self.name.clone(),
            n => format!("{}-run{n}", self.name),
        };
        let mut cmd = Command::new("ip");
        // `ip netns exec` execs unshare, which execs sh, which execs
        // gobgpd: the PID stays the daemon's.
        cmd.args(["netns", "exec", &self.ns, "unshare"])
            .args(["--uts", "sh", "-c", r#"hostname "$0" && exec "$@""#, &self.name])
            .args(["gobgpd", "-f"])
            .arg(&self.config)
            .arg(format!("--api-hosts=127.0.0.1:{}", self.port))
            .args(["--pprof-disable", "--log-plain", "--log-level=debug"]);
        if restarting {
            cmd.arg("-r");
        }
        self.daemon = Some(Daemon::spawn(&log_name, cmd, &self.log_dir));
        let (name, ns, port) = (self.name.clone(), self.ns.clone(), self.port);
        wait_until(timeout(10), &format!("{name}: gobgpd API"), || {
            if let Some(d) = self.daemon.as_mut()
                && let Some(status) = d.exit_status()
            {
                return Err(format!("gobgpd exited: {status}\n{}", d.log_tail(30)));
            }
            cli(&ns, port, &["global"]).map(drop)
        });
    }

    /// SIGKILL: gobgpd goes away as Cilium's agent does when it stops or
    /// crashes: its TCP connections close, no NOTIFICATION is sent, so
    /// graceful-restart peers keep its routes. Returns how it exited.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut d = self.daemon.take()?;
        let status = d.kill();
        self.previous.push(d);
        Some(status)
    }

    /// Starts gobgpd again after [`Gobgp::kill`], with the same
    /// configuration and `-r` if `restarting` (the R bit: it restarted);
    /// returns once its API answers. Its RIB is empty: add the routes
    /// again, as Cilium does.
    #[track_caller]
    pub fn start_again(&mut self, restarting: bool) {
        assert!(self.daemon.is_none(), "gobgpd {} still runs", self.name);
        self.launch(restarting);
    }

    /// The port of its gRPC API on `127.0.0.1` in its namespace.
    pub fn api_port(&self) -> u16 {
        self.port
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PID of the running gobgpd; panics if it was killed.
    #[track_caller]
    pub fn pid(&self) -> u32 {
        match &self.daemon {
            Some(d) => d.pid(),
            None => panic!("gobgpd {} does not run", self.name),
        }
    }

    /// `gobgp -u 127.0.0.1 -p PORT args...` in the namespace.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        cli(&self.ns, self.port, args)
    }

    /// A `-j` command, parsed.
    pub fn json(&self, args: &[&str]) -> Result<Value, String> {
        let mut all = args.to_vec();
        all.push("-j");
        let out = self.cli(&all)?;
        serde_json::from_str(&out).map_err(|e| format!("gobgp {args:?}: {e}: {out}"))
    }

    /// `gobgp global rib add -a AFI PREFIX attrs...` (the family follows
    /// from the prefix), e.g. `add_route("10.96.1.10/32", &["community",
    /// "65000:100"])`. No next hop is given: GoBGP then uses its session's
    /// local address, as Cilium's routes do.
    #[track_caller]
    pub fn add_route(&self, prefix: &str, attrs: &[&str]) {
        let mut args = vec!["global", "rib", "add", "-a", afi(prefix), prefix];
        args.extend_from_slice(attrs);
        if let Err(e) = self.cli(&args) {
            panic!("{}: cannot add {prefix}: {e}", self.name);
        }
    }

    #[track_caller]
    pub fn del_route(&self, prefix: &str) {
        if let Err(e) = self.cli(&["global", "rib", "del", "-a", afi(prefix), prefix]) {
            panic!("{}: cannot delete {prefix}: {e}", self.name);
        }
    }

    /// `gobgp neighbor ADDR -j`.
    pub fn neighbor(&self, addr: &str) -> Result<Value, String> {
        self.json(&["neighbor", addr])
    }

    /// The session state as GoBGP names it (`"established"`, `"active"`...).
    pub fn session_state(&self, addr: &str) -> Result<String, String> {
        let n = self.neighbor(addr)?;
        session_state(&n).ok_or_else(|| format!("no session state in {n}"))
    }

    #[track_caller]
    pub fn wait_established(&self, addr: &str, within: Duration) -> Value {
        wait_until(
            within,
            &format!("{}: neighbor {addr} established", self.name),
            || {
                let n = self.neighbor(addr)?;
                match session_state(&n).as_deref() {
                    Some("established") => Ok(n),
                    _ => Err(n.to_string()),
                }
            },
        )
    }

    /// `gobgp global rib -a AFI -j`: prefix → paths.
    pub fn global_rib(&self, afi: &str) -> Result<Value, String> {
        self.json(&["global", "rib", "-a", afi])
    }

    /// `gobgp neighbor ADDR adj-in -a AFI -j`: what the peer sent.
    pub fn adj_in(&self, addr: &str, afi: &str) -> Result<Value, String> {
        self.json(&["neighbor", addr, "adj-in", "-a", afi])
    }
}

impl Gobgp {
    /// Its neighbours and RIB, for a failing test's output.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for args in [
            &["neighbor"][..],
            &["global", "rib", "-a", "ipv4"],
            &["global", "rib", "-a", "ipv6"],
        ] {
            let text = self.cli(args).unwrap_or_else(|e| e);
            out.push_str(&format!(
                "==== {}: gobgp {} ====\n{text}\n",
                self.name,
                args.join(" ")
            ));
        }
        out
    }

    /// Prints [`Gobgp::dump`] (once; drop does it too when a test fails).
    pub fn report(&self) {
        self.reported.set(true);
        eprintln!("{}", self.dump());
    }
}

/// `gobgp -u 127.0.0.1 -p PORT args...` in namespace `ns`.
fn cli(ns: &str, port: u16, args: &[&str]) -> Result<String, String> {
    let port = port.to_string();
    run(Command::new("ip")
        .args(["netns", "exec", ns, "gobgp", "-u", "127.0.0.1", "-p", &port])
        .args(args))
}

/// GoBGP 3 prints the state as a number (`"session_state": 6`) in JSON.
fn session_state(neighbor: &Value) -> Option<String> {
    let s = &neighbor["state"]["session_state"];
    if let Some(name) = s.as_str() {
        return Some(name.to_ascii_lowercase());
    }
    let name = match s.as_u64()? {
        1 => "idle",
        2 => "connect",
        3 => "active",
        4 => "opensent",
        5 => "openconfirm",
        6 => "established",
        _ => "unknown",
    };
    Some(name.into())
}

fn afi(prefix: &str) -> &'static str {
    if prefix.contains(':') { "ipv6" } else { "ipv4" }
}

impl Drop for Gobgp {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.reported.get() {
            self.report();
        }
        self.daemon.take();
        self.previous.clear();
    }
}
