//! Daemons started inside a namespace and stopped by PID.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a daemon gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A running daemon. The command must run in the foreground and exec into
/// the daemon (`ip netns exec NS prog` does), so the child's PID is the
/// daemon's: it is signalled by that PID only, and since the child is only
/// reaped here, the PID cannot be reused while it is signalled.
///
/// Standard output and error go to `<log_dir>/<name>.log`. On drop the
/// daemon is stopped (SIGTERM, then SIGKILL); if the test is failing, its
/// logs (that file plus any added with [`Daemon::add_log`]) are printed.
pub struct Daemon {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    logs: Vec<PathBuf>,
}

impl Daemon {
    #[track_caller]
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Daemon {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone a file handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Daemon {
            name: name.to_owned(),
            child,
            status: None,
            logs: vec![log],
        }
    }

    /// Another log file of this daemon (e.g. FRR's `--log file:`), printed
    /// with the others when a test fails.
    pub fn add_log(&mut self, path: PathBuf) {
        self.logs.push(path);
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, once it has exited (reaps it).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Sends `signal` if it still runs.
    pub fn signal(&mut self, signal: Signal) {
        if self.is_running() {
            let _ = kill(Pid::from_raw(self.pid() as i32), signal);
        }
    }

    /// SIGTERM, then SIGKILL after a grace period; returns how it exited.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while self.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill()
    }

    /// SIGKILL (a crash, as far as its peers can tell); returns how it exited.
    pub fn kill(&mut self) -> ExitStatus {
        self.signal(Signal::SIGKILL);
        if let Some(s) = self.status {
            return s;
        }
        let status = self.child.wait().expect("wait for a child");
        self.status = Some(status);
        status
    }

    /// What the daemon wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.logs[0]).unwrap_or_default()
    }

    /// The last `lines` lines of each log, with headers.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for path in &self.logs {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read: {e})\n"));
            let all: Vec<&str> = text.lines().collect();
            if all.is_empty() {
                continue;
            }
            let from = all.len().saturating_sub(lines);
            out.push_str(&format!(
                "==== {} (pid {}): {} (last {} of {} lines) ====\n",
                self.name,
                self.child.id(),
                path.display(),
                all.len() - from,
                all.len()
            ));
            for l in &all[from..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    pub fn print_logs(&self) {
        let lines = std::env::var("TERN_IT_LOG_LINES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        eprintln!("{}", self.log_tail(lines));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let status = self.stop();
        if std::thread::panicking() {
            eprintln!("{} (pid {}) stopped: {status}", self.name, self.pid());
            self.print_logs();
        }
    }
}

/// CPU time (user + system) process `pid` has used so far, from
/// `/proc/PID/stat`; zero if it is gone.
pub fn cpu_time(pid: u32) -> std::time::Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: state is field 3; utime and
    // stime are fields 14 and 15, in clock ticks (SC_CLK_TCK is 100 on
    // every Linux this runs on).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    std::time::Duration::from_millis(ticks * 10)
}

/// A `kB` line of `/proc/PID/status` (`"VmRSS:"`, `"VmHWM:"`,
/// `"RssAnon:"`...), 0 if the process or the line is gone.
pub fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
