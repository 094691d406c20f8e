//! BIRD 2 in a namespace: `bird -f` in the foreground (so the PID we hold
//! is bird's), its control socket in the work dir, and `birdc -s SOCKET`
//! (from outside the namespace) to read its state.
//!
//! birdc has no JSON output; [`Bird::routes`] parses `show route all`,
//! [`Bird::protocols`] parses `show protocols`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::netns::Netns;
use crate::process::Daemon;
use crate::run;
use crate::wait::{timeout, wait_until};
use crate::workdir::WorkDir;

pub struct Bird {
    name: String,
    dir: PathBuf,
    socket: PathBuf,
    daemon: Daemon,
    reported: Cell<bool>,
}

/// One path of a prefix in BIRD's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BirdPath {
    /// The protocol it came from (`node_21`, `static4`...).
    pub protocol: String,
    /// `unicast`, `unreachable`, `blackhole`...
    pub kind: String,
    /// BIRD's best (`*`): the one it exports.
    pub primary: bool,
    /// `BGP.as_path`, e.g. `"4210101021 4220101000"`; empty if none.
    pub as_path: String,
    /// `BGP.next_hop`: the next hop as received (global, then link-local).
    pub bgp_next_hop: Vec<String>,
    /// The resolved gateways (`via X on DEV`).
    pub via: Vec<String>,
}

/// A protocol as `show protocols` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BirdProtocol {
    pub name: String,
    /// `BGP`, `Kernel`, `Static`, `Device`...
    pub proto: String,
    /// `up`, `start`, `down`...
    pub state: String,
    /// `Established`, `Active`, `Connect`... for BGP.
    pub info: String,
}

impl Bird {
    /// Writes `conf` and starts bird in `ns`; returns once birdc answers.
    #[track_caller]
    pub fn start(ns: &Netns, work: &WorkDir, name: &str, conf: &str) -> Bird {
        let dir = work.subdir(name);
        let file = dir.join("bird.conf");
        std::fs::write(&file, conf).expect("write bird.conf");
        let socket = dir.join("bird.ctl");
        let mut cmd = ns.command("bird");
        cmd.arg("-f")
            .arg("-c")
            .arg(&file)
            .arg("-s")
            .arg(&socket)
            .arg("-P")
            .arg(dir.join("bird.pid"));
        let daemon = Daemon::spawn(name, cmd, work.path());
        let mut b = Bird {
            name: name.to_owned(),
            dir,
            socket,
            daemon,
            reported: Cell::new(false),
        };
        wait_until(timeout(10), &format!("{name}: birdc answers"), || {
            if let Some(status) = b.daemon.exit_status() {
                return Err(format!("bird exited: {status}\n{}", b.daemon.log_tail(30)));
            }
            b.birdc(&["show", "status"]).map(drop)
        });
        b
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// The control socket (`birdc -s SOCKET`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `birdc -s SOCKET args...`: its output, or an error (birdc exits 1
    /// on an unknown command or a failed one, e.g. `Network not found`).
    pub fn birdc(&self, args: &[&str]) -> Result<String, String> {
        run(Command::new("birdc").arg("-s").arg(&self.socket).args(args))
    }

    /// `show protocols`.
    pub fn protocols(&self) -> Result<Vec<BirdProtocol>, String> {
        let out = self.birdc(&["show", "protocols"])?;
        Ok(parse_protocols(&out))
    }

    /// Waits until BGP protocol `name` is Established.
    #[track_caller]
    pub fn wait_established(&self, protocol: &str, within: Duration) -> BirdProtocol {
        wait_until(
            within,
            &format!("{}: protocol {protocol} Established", self.name),
            || {
                let all = self.protocols()?;
                match all.iter().find(|p| p.name == protocol) {
                    Some(p) if p.info.starts_with("Established") => Ok(p.clone()),
                    Some(p) => Err(format!("{p:?}")),
                    None => Err(format!("no protocol {protocol} in {all:#?}")),
                }
            },
        )
    }

    /// Table `master4` or `master6` (after `afi`: `"ipv4"`, `"ipv6"`):
    /// prefix → paths, from `show route all table T`.
    pub fn routes(&self, afi: &str) -> Result<BTreeMap<String, Vec<BirdPath>>, String> {
        let table = if afi == "ipv6" { "master6" } else { "master4" };
        let out = self.birdc(&["show", "route", "all", "table", table])?;
        Ok(parse_routes(&out))
    }

    /// The paths BIRD has for exactly `prefix`.
    pub fn paths(&self, prefix: &str) -> Result<Vec<BirdPath>, String> {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        Ok(self.routes(afi)?.remove(prefix).unwrap_or_default())
    }

    /// Its protocols and tables, for a failing test's output.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for args in [
            &["show", "protocols", "all"][..],
            &["show", "route", "all", "table", "master4"],
            &["show", "route", "all", "table", "master6"],
        ] {
            let text = self.birdc(args).unwrap_or_else(|e| e);
            out.push_str(&format!(
                "==== {}: birdc {} ====\n{text}\n",
                self.name,
                args.join(" ")
            ));
        }
        out
    }

    /// Prints [`Bird::dump`] (once; drop does it too when a test fails).
    pub fn report(&self) {
        self.reported.set(true);
        eprintln!("{}", self.dump());
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.reported.get() {
            self.report();
        }
    }
}

fn parse_protocols(out: &str) -> Vec<BirdProtocol> {
    let mut v = Vec::new();
    for l in out.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        // name proto table state since info...
        if f.len() < 5 || f[0] == "Name" || f[0] == "BIRD" {
            continue;
        }
        // `since` is a time (or date and time); the info follows it.
        let info_at = f
            .iter()
            .enumerate()
            .skip(4)
            .find(|(_, w)| w.contains(':'))
            .map(|(i, _)| i + 1)
            .unwrap_or(f.len());
        v.push(BirdProtocol {
            name: f[0].to_owned(),
            proto: f[1].to_owned(),
            state: f[3].to_owned(),
            info: f.get(info_at..).map(|w| w.join(" ")).unwrap_or_default(),
        });
    }
    v
}

fn parse_routes(out: &str) -> BTreeMap<String, Vec<BirdPath>> {
    let mut routes: BTreeMap<String, Vec<BirdPath>> = BTreeMap::new();
    let mut prefix: Option<String> = None;
    for l in out.lines() {
        if l.starts_with("BIRD ") || l.starts_with("Table ") || l.trim().is_empty() {
            continue;
        }
        let indented = l.starts_with(' ') || l.starts_with('\t');
        if !indented || (l.starts_with(' ') && l.contains(" [")) {
            // `PREFIX  KIND [PROTO TIME] * (PREF) ...`, or another path of
            // the same prefix: `        KIND [PROTO TIME] ...`.
            let mut words = l.split_whitespace();
            if !indented {
                prefix = words.next().map(str::to_owned);
            }
            let Some(p) = &prefix else { continue };
            let kind = words.next().unwrap_or_default().to_owned();
            let protocol = l
                .split_once('[')
                .and_then(|(_, r)| r.split_whitespace().next())
                .unwrap_or_default()
                .trim_end_matches(']')
                .to_owned();
            let primary = l
                .split_once(']')
                .is_some_and(|(_, r)| r.trim_start().starts_with('*'));
            routes.entry(p.clone()).or_default().push(BirdPath {
                protocol,
                kind,
                primary,
                as_path: String::new(),
                bgp_next_hop: Vec::new(),
                via: Vec::new(),
            });
            continue;
        }
        let Some(path) = prefix
            .as_ref()
            .and_then(|p| routes.get_mut(p))
            .and_then(|v| v.last_mut())
        else {
            continue;
        };
        let t = l.trim();
        if let Some(rest) = t.strip_prefix("via ") {
            if let Some(gw) = rest.split_whitespace().next() {
                path.via.push(gw.to_owned());
            }
        } else if let Some(rest) = t.strip_prefix("BGP.as_path:") {
            path.as_path = rest.trim().to_owned();
        } else if let Some(rest) = t.strip_prefix("BGP.next_hop:") {
            path.bgp_next_hop = rest.split_whitespace().map(str::to_owned).collect();
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_show_route_all() {
        let out = "BIRD 2.0.12 ready.
Table master4:
0.0.0.0/0            blackhole [default4 10:00:00.000] * (200)
\tType: static univ
10.224.1.0/24        unicast [node_21 10:00:05.123] * (100) [AS4220101000i]
\tvia fd00:101::21 on eth-seg
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 4210101021 4220101000
\tBGP.next_hop: fd00:101::21 fe80::ff:fe00:15
\tBGP.local_pref: 100
                     unicast [node_22 10:00:06.000] (100) [AS4220101000i]
\tvia fd00:101::22 on eth-seg
\tBGP.as_path: 4210101022 4220101000
";
        let r = parse_routes(out);
        assert_eq!(r["0.0.0.0/0"][0].kind, "blackhole");
        let p = &r["10.224.1.0/24"];
        assert_eq!(p.len(), 2);
        assert!(p[0].primary && !p[1].primary);
        assert_eq!(p[0].protocol, "node_21");
        assert_eq!(p[0].as_path, "4210101021 4220101000");
        assert_eq!(p[0].via, ["fd00:101::21"]);
        assert_eq!(p[0].bgp_next_hop, ["fd00:101::21", "fe80::ff:fe00:15"]);
        assert_eq!(p[1].protocol, "node_22");
        assert_eq!(p[1].via, ["fd00:101::22"]);
    }

    #[test]
    fn parses_show_protocols() {
        let out = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     10:00:00.000
node_21    BGP        ---        up     10:00:05.123  Established
node_22    BGP        ---        start  10:00:00.000  Active        Socket: Connection refused
";
        let p = parse_protocols(out);
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].name, "node_21");
        assert_eq!(p[1].info, "Established");
        assert_eq!(p[2].state, "start");
        assert!(p[2].info.starts_with("Active"));
        assert_eq!(p[0].info, "");
    }
}
