//! tern itself: started from its binary in a namespace, queried through
//! its status API on a Unix socket in the work dir.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;
use crate::process::Daemon;
use crate::wait::{timeout, wait_until};
use crate::workdir::WorkDir;
use crate::{http, run};

static BIN: OnceLock<PathBuf> = OnceLock::new();

/// Makes [`tern_bin`] return `path` (e.g. a release build, for a
/// benchmark); only before its first use. Returns false if it was too late.
pub fn set_tern_bin(path: PathBuf) -> bool {
    BIN.set(path).is_ok()
}

/// For benchmarks: makes [`tern_bin`] return `$TERN_BIN`, else
/// `<target>/release/tern`, built (or brought up to date) with `cargo
/// build --release -p tern` first, so that a binary left from older
/// sources is never the one measured (cargo does nothing when it is
/// current).
pub fn use_release_build() {
    let bin = match std::env::var_os("TERN_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace.join("target"));
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--release", "-p", "tern"])
                .current_dir(workspace)
                .status()
                .expect("run cargo");
            assert!(status.success(), "cargo build --release -p tern failed");
            target.join("release").join("tern")
        }
    };
    assert!(bin.is_file(), "no tern binary at {}", bin.display());
    set_tern_bin(bin);
}

/// The tern binary: `$TERN_BIN`, else `<target>/debug/tern` of this
/// workspace (`$CARGO_TARGET_DIR` or `<workspace>/target`), built with
/// `cargo build -p tern` once if it is missing. Note that an existing
/// binary is used as it is: run `cargo build -p tern` after changing the
/// daemon.
pub fn tern_bin() -> PathBuf {
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("TERN_BIN") {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "TERN_BIN={} does not exist", p.display());
            return p;
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("interop-tests is inside the workspace");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"));
        let bin = target.join("debug").join("tern");
        if !bin.is_file() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            println!("{} is missing: cargo build -p tern", bin.display());
            let status = Command::new(cargo)
                .args(["build", "-p", "tern"])
                .current_dir(workspace)
                .status()
                .unwrap_or_else(|e| panic!("cannot run cargo build -p tern: {e}"));
            assert!(status.success(), "cargo build -p tern failed: {status}");
            assert!(
                bin.is_file(),
                "cargo build -p tern did not produce {}",
                bin.display()
            );
        }
        bin
    })
    .clone()
}

/// A tern instance. Its configuration gets `state-dir` and an `[api]`
/// with only a Unix socket, both in its own directory of the work dir.
pub struct Tern {
    name: String,
    ns: String,
    dir: PathBuf,
    log_dir: PathBuf,
    config: PathBuf,
    socket: PathBuf,
    runs: u32,
    daemon: Option<Daemon>,
    /// Earlier runs, already stopped: their logs are printed too if the
    /// test fails.
    previous: Vec<Daemon>,
    reported: Cell<bool>,
}

impl Tern {
    /// Writes the configuration and starts tern in `ns`; returns once its
    /// API answers. `body` is tern's TOML without `state-dir` and `[api]`.
    /// Log level: `$TERN_IT_LOG` (default `info,tern=debug`).
    #[track_caller]
    pub fn start(ns: &Netns, work: &WorkDir, name: &str, body: &str) -> Tern {
        let dir = work.subdir(name);
        let socket = dir.join("api.sock");
        let config = dir.join("tern.toml");
        let mut t = Tern {
            name: name.to_owned(),
            ns: ns.name().to_owned(),
            dir,
            log_dir: work.path().to_owned(),
            config,
            socket,
            runs: 0,
            daemon: None,
            previous: Vec::new(),
            reported: Cell::new(false),
        };
        t.set_config(body);
        t.launch();
        t
    }

    /// Writes a new configuration (`body` as for [`Tern::start`]) after
    /// `tern check-config` accepted it; it applies at the next
    /// [`Tern::restart`] (or reload).
    #[track_caller]
    pub fn set_config(&mut self, body: &str) {
        let state = self.dir.join("state").display().to_string();
        let socket = format!("socket = {:?}", self.socket.display().to_string());
        // An `[api]` table of the body's own (e.g. a TCP listen address)
        // gets the socket; otherwise one is added.
        let text = if body.lines().any(|l| l.trim() == "[api]") {
            let body = body.replacen("[api]\n", &format!("[api]\n{socket}\n"), 1);
            format!("state-dir = {state:?}\n{body}\n")
        } else {
            format!("state-dir = {state:?}\n{body}\n\n[api]\n{socket}\n")
        };
        std::fs::write(&self.config, text).expect("write tern.toml");
        let check = run(Command::new(tern_bin()).arg("check-config").arg(&self.config));
        if let Err(e) = check {
            panic!("tern rejects {}: {e}", self.config.display());
        }
    }

    fn launch(&mut self) {
        self.runs += 1;
        let log_name = match self.runs {
            1 => self.name.clone(),
            n => format!("{}-run{n}", self.name),
        };
        let level = std::env::var("TERN_IT_LOG").unwrap_or_else(|_| "info,tern=debug".into());
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .arg(tern_bin())
            .arg("-c")
            .arg(&self.config)
            .args(["--log-level", &level])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        let _ = std::fs::remove_file(&self.socket);
        self.daemon = Some(Daemon::spawn(&log_name, cmd, &self.log_dir));
        let what = format!("tern {} API on {}", self.name, self.socket.display());
        wait_until(timeout(10), &what, || {
            if let Some(d) = self.daemon.as_mut()
                && let Some(status) = d.exit_status()
            {
                return Err(format!("tern exited: {status}"));
            }
            match http::request(&self.socket, "GET", "/readyz") {
                Ok((200, _)) => Ok(()),
                Ok((code, body)) => Err(format!("{code}: {body}")),
                Err(e) => Err(e),
            }
        });
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current run's log (text format, no colour).
    pub fn log(&self) -> String {
        self.daemon.as_ref().map(Daemon::log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Daemon::pid)
    }

    /// SIGTERM (then SIGKILL after 3 s) and wait; `restart` starts it
    /// again. Returns how it exited (None if it was not running).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut d = self.daemon.take()?;
        let status = d.stop();
        self.previous.push(d);
        Some(status)
    }

    /// SIGKILL: a crash, as its peers see it.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut d = self.daemon.take()?;
        let status = d.kill();
        self.previous.push(d);
        Some(status)
    }

    /// Starts it again with the same configuration and state dir (after
    /// [`Tern::stop`] or [`Tern::kill`]; stops it first otherwise).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts it after [`Tern::stop`] or [`Tern::kill`]; returns once its
    /// API answers.
    #[track_caller]
    pub fn start_again(&mut self) {
        assert!(self.daemon.is_none(), "tern {} still runs", self.name);
        self.launch();
    }

    /// SIGHUP, by its PID: re-read the configuration.
    #[track_caller]
    pub fn hup(&mut self) {
        match self.daemon.as_mut() {
            Some(d) => d.signal(nix::sys::signal::Signal::SIGHUP),
            None => panic!("tern {} does not run", self.name),
        }
    }

    /// `tern reload --api SOCKET`: its output (`reloaded: CHANGES`), or an
    /// error with it.
    pub fn reload_cli(&self) -> Result<String, String> {
        run(Command::new(tern_bin())
            .arg("reload")
            .arg("--api")
            .arg(&self.socket))
    }

    /// `tern show WHAT --api SOCKET` (`peers`, `routes`, `summary`, `fib`):
    /// the table it prints.
    pub fn show(&self, what: &str) -> Result<String, String> {
        self.show_args(&[what])
    }

    /// `tern show ARGS...` against this tern's socket: its output.
    pub fn show_args(&self, args: &[&str]) -> Result<String, String> {
        run(Command::new(tern_bin())
            .arg("show")
            .args(args)
            .arg("--api")
            .arg(&self.socket))
    }

    /// GET `path` (e.g. `/api/v1/peers`), parsed as JSON.
    pub fn get(&self, path: &str) -> Result<Value, String> {
        let body = self.get_text(path)?;
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}: {body}"))
    }

    /// GET `path` (e.g. `/metrics`): the body of a 200 response.
    pub fn get_text(&self, path: &str) -> Result<String, String> {
        match http::request(&self.socket, "GET", path)? {
            (200, body) => Ok(body),
            (code, body) => Err(format!("GET {path}: {code}: {body}")),
        }
    }

    /// `/api/v1/fib`: what tern installed in the kernel (`installed`,
    /// `vip_routes`, `unresolved`, `repairs`, `adopted`, `scans`, ...).
    pub fn fib(&self) -> Result<Value, String> {
        self.get("/api/v1/fib")
    }

    /// The value of an unlabelled metric in `/metrics`, e.g.
    /// `tern_fib_repairs` (a counter's `_total` suffix may be left out).
    pub fn metric(&self, name: &str) -> Result<f64, String> {
        let text = self.get_text("/metrics")?;
        let total = format!("{name}_total");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (key, value) = l.split_once(' ')?;
                (key == name || key == total).then(|| value.trim().parse::<f64>().ok())?
            })
            .ok_or_else(|| format!("no metric {name} in /metrics:\n{text}"))
    }

    pub fn peers(&self) -> Result<Vec<Value>, String> {
        array(self.get("/api/v1/peers")?)
    }

    pub fn peer(&self, name: &str) -> Result<Value, String> {
        self.get(&format!("/api/v1/peers/{name}"))
    }

    /// `/api/v1/routes?<query>`, e.g. `prefix=10.0.0.0/24&peer=upstream`.
    pub fn routes(&self, query: &str) -> Result<Vec<Value>, String> {
        array(self.get(&format!("/api/v1/routes?{query}"))?)
    }

    /// The Loc-RIB paths for exactly `prefix`.
    pub fn paths(&self, prefix: &str) -> Result<Vec<Value>, String> {
        Ok(self
            .routes(&format!("prefix={prefix}"))?
            .into_iter()
            .filter(|r| r["prefix"] == prefix)
            .flat_map(|r| r["paths"].as_array().cloned().unwrap_or_default())
            .collect())
    }

    pub fn summary(&self) -> Result<Value, String> {
        self.get("/api/v1/summary")
    }

    /// Its peers and routes from the API, for a failing test's output.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for (what, path) in [
            ("peers", "/api/v1/peers"),
            ("routes", "/api/v1/routes"),
            ("fib", "/api/v1/fib"),
            ("summary", "/api/v1/summary"),
        ] {
            let state = self
                .get(path)
                .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
                .unwrap_or_else(|e| e);
            let pid = self.pid().map_or("stopped".into(), |p| format!("pid {p}"));
            out.push_str(&format!("==== {} ({pid}): {what} ====\n{state}\n", self.name));
        }
        out
    }

    /// Prints [`Tern::dump`] (once; drop does it too when a test fails).
    /// Call it before stopping other daemons, so it shows the state at
    /// the failure.
    pub fn report(&self) {
        self.reported.set(true);
        eprintln!("{}", self.dump());
    }

    /// Waits until peer `name` is established; returns its API object.
    #[track_caller]
    pub fn wait_established(&self, name: &str, within: Duration) -> Value {
        wait_until(within, &format!("tern peer {name} established"), || {
            let p = self.peer(name)?;
            if p["state"] == "established" {
                Ok(p)
            } else {
                Err(serde_json::to_string_pretty(&p).unwrap_or_default())
            }
        })
    }
}

impl Drop for Tern {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.reported.get() {
            self.report();
        }
        self.daemon.take();
        self.previous.clear();
    }
}

fn array(v: Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(format!("expected a JSON array, got {other}")),
    }
}
