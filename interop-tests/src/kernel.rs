//! The kernel's routing state in a namespace, as `ip -j` shows it, and
//! `ip monitor` recordings.
//!
//! Routes are read with `ip -j route show`; with the kernel's default
//! `nexthop_compat_mode = 1`, a route that points at a nexthop object
//! (`nhid`) is dumped with its next hops expanded, and otherwise they are
//! looked up in `ip -j nexthop`. An IPv4 route over an IPv6 next hop (RFC
//! 8950, `RTA_VIA`) shows as `"via": {"family": "inet6", "host": ...}`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;
use crate::process::Daemon;
use crate::wait::wait_until;
use crate::workdir::WorkDir;

/// tern's routes and nexthop objects carry this protocol (`bgp`).
pub const PROTO_BGP: &str = "186";

/// One next hop of a route.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hop {
    /// The gateway, if any.
    pub gateway: Option<String>,
    /// The gateway's family, `"inet"` or `"inet6"`: an IPv4 route through
    /// an IPv6 gateway (RFC 8950) has `"inet6"`.
    pub family: Option<String>,
    pub dev: Option<String>,
}

/// A route as `ip -j route` shows it.
#[derive(Clone, Debug)]
pub struct KernelRoute {
    /// With its length: `"10.96.1.10/32"`, `"0.0.0.0/0"`, `"::/0"`.
    pub dst: String,
    /// `"unicast"`, `"local"`, `"blackhole"`...
    pub kind: String,
    /// `"main"`, `"local"` or a number.
    pub table: String,
    pub metric: Option<u64>,
    /// The nexthop object it points at, if any.
    pub nhid: Option<u64>,
    /// Its next hops (several for ECMP), sorted.
    pub hops: Vec<Hop>,
    /// `ip -j` as is.
    pub json: Value,
}

impl KernelRoute {
    fn from_json(v: &Value, v6: bool) -> KernelRoute {
        let dst = v["dst"].as_str().unwrap_or_default();
        let dst = match dst {
            "default" if v6 => "::/0".to_owned(),
            "default" => "0.0.0.0/0".to_owned(),
            d if d.contains('/') => d.to_owned(),
            d if v6 => format!("{d}/128"),
            d => format!("{d}/32"),
        };
        let mut hops: Vec<Hop> = match v["nexthops"].as_array() {
            Some(list) => list.iter().map(hop).collect(),
            None if v.get("gateway").is_some() || v.get("via").is_some() || v.get("dev").is_some() => {
                vec![hop(v)]
            }
            None => Vec::new(),
        };
        hops.sort();
        KernelRoute {
            dst,
            kind: v["type"].as_str().unwrap_or("unicast").to_owned(),
            table: v["table"].as_str().unwrap_or("main").to_owned(),
            metric: v["metric"].as_u64(),
            nhid: v["nhid"].as_u64(),
            hops,
            json: v.clone(),
        }
    }

    /// The gateways of its next hops, sorted.
    pub fn gateways(&self) -> Vec<&str> {
        self.hops.iter().filter_map(|h| h.gateway.as_deref()).collect()
    }
}

fn hop(v: &Value) -> Hop {
    let (gateway, family) = if let Some(g) = v["gateway"].as_str() {
        let family = if g.contains(':') { "inet6" } else { "inet" };
        (Some(g.to_owned()), Some(family.to_owned()))
    } else if let Some(h) = v["via"]["host"].as_str() {
        (Some(h.to_owned()), v["via"]["family"].as_str().map(str::to_owned))
    } else {
        (None, None)
    };
    Hop {
        gateway,
        family,
        dev: v["dev"].as_str().map(str::to_owned),
    }
}

/// `ip -j -4 route show ARGS` and `ip -j -6 route show ARGS` in `ns`, e.g.
/// `routes(ns, &["table", "all", "proto", "186"])`. Next hops of routes that
/// point at a nexthop object are filled in from `ip -j nexthop` when the
/// route dump did not carry them.
pub fn routes(ns: &Netns, args: &[&str]) -> Result<Vec<KernelRoute>, String> {
    let mut out = Vec::new();
    for (flag, v6) in [("-4", false), ("-6", true)] {
        let mut cmd = vec!["ip", "-j", flag, "route", "show"];
        cmd.extend_from_slice(args);
        let text = ns.exec(&cmd)?;
        let v: Value = serde_json::from_str(if text.trim().is_empty() { "[]" } else { &text })
            .map_err(|e| format!("{cmd:?}: {e}: {text}"))?;
        for r in v.as_array().into_iter().flatten() {
            let mut r = KernelRoute::from_json(r, v6);
            if r.hops.is_empty()
                && let Some(id) = r.nhid
            {
                r.hops = nexthop_hops(ns, id, 0)?;
                r.hops.sort();
            }
            out.push(r);
        }
    }
    Ok(out)
}

/// tern's routes in every table (`proto 186`), both families.
pub fn bgp_routes(ns: &Netns) -> Result<Vec<KernelRoute>, String> {
    routes(ns, &["table", "all", "proto", PROTO_BGP])
}

/// `ip -j nexthop show`: every nexthop object, as JSON.
pub fn nexthops(ns: &Netns) -> Result<Vec<Value>, String> {
    let text = ns.exec(&["ip", "-j", "nexthop", "show"])?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("ip -j nexthop: {e}: {text}"))?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// The next hops nexthop object `id` stands for (a group's members').
pub fn nexthop_hops(ns: &Netns, id: u64, depth: u8) -> Result<Vec<Hop>, String> {
    if depth > 2 {
        return Err(format!("nexthop {id}: groups nested too deep"));
    }
    let text = ns.exec(&["ip", "-j", "nexthop", "show", "id", &id.to_string()])?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("ip -j nexthop show id {id}: {e}: {text}"))?;
    let obj = v.as_array().and_then(|a| a.first()).cloned().unwrap_or(v);
    match obj["group"].as_array() {
        Some(members) => {
            let mut hops = Vec::new();
            for m in members {
                let mid = m["id"]
                    .as_u64()
                    .ok_or_else(|| format!("nexthop {id}: bad member {m}"))?;
                hops.extend(nexthop_hops(ns, mid, depth + 1)?);
            }
            Ok(hops)
        }
        None => Ok(vec![hop(&obj)]),
    }
}

/// The route for exactly `dst` in `routes`, if any.
pub fn find<'a>(routes: &'a [KernelRoute], dst: &str) -> Option<&'a KernelRoute> {
    routes.iter().find(|r| r.dst == dst)
}

/// The namespace's routes and nexthop objects as text, for a failing
/// test's output.
pub fn dump(ns: &Netns) -> String {
    let mut out = String::new();
    for args in [
        &["ip", "route", "show"][..],
        &["ip", "-6", "route", "show"],
        &["ip", "route", "show", "table", "local", "proto", PROTO_BGP],
        &["ip", "-6", "route", "show", "table", "local", "proto", PROTO_BGP],
        &["ip", "nexthop", "show"],
        &["ip", "-br", "addr", "show"],
    ] {
        let text = ns.exec(args).unwrap_or_else(|e| e);
        out.push_str(&format!("==== {}: {} ====\n{text}\n", ns.name(), args.join(" ")));
    }
    out
}

/// `ip -o -ts monitor OBJECTS` running in a namespace, one event per line
/// in a log file (iproute2 flushes each line).
pub struct Monitor {
    daemon: Daemon,
    log: PathBuf,
}

impl Monitor {
    /// Starts recording `objects` (e.g. `["route", "nexthop"]`) in `ns`
    /// into `<work>/<name>.log`.
    #[track_caller]
    pub fn start(ns: &Netns, work: &WorkDir, name: &str, objects: &[&str]) -> Monitor {
        let mut cmd = ns.command("ip");
        cmd.args(["-o", "-ts", "monitor"]).args(objects);
        let daemon = Daemon::spawn(name, cmd, work.path());
        Monitor {
            daemon,
            log: work.path().join(format!("{name}.log")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Every line recorded so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Puts a marker in the recording: a blackhole route to `marker` (e.g.
    /// `"10.255.0.1"`) of protocol `static`, written again until the
    /// monitor shows it (it may not have subscribed yet). Returns the
    /// index of its line: what follows happened after it. Remove it with
    /// [`Monitor::unmark`].
    #[track_caller]
    pub fn mark(&self, ns: &Netns, marker: &str) -> usize {
        let route = format!("{marker}/32");
        wait_until(
            crate::wait::timeout(10),
            &format!("ip monitor to record the marker route {route}"),
            || {
                // Delete and add, never replace: replacing an identical
                // route is no change and the kernel announces nothing, so
                // a monitor that subscribed late would never see it.
                let _ = ns.exec(&["ip", "route", "del", "blackhole", &route, "proto", "static"]);
                ns.exec(&["ip", "route", "add", "blackhole", &route, "proto", "static"])?;
                let deadline = std::time::Instant::now() + Duration::from_millis(500);
                while std::time::Instant::now() < deadline {
                    if let Some(i) = self
                        .lines()
                        .iter()
                        .position(|l| l.contains(marker) && !l.contains("Deleted"))
                    {
                        return Ok(i);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(format!("{} lines so far", self.lines().len()))
            },
        )
    }

    /// Removes the marker route and waits until the monitor shows it
    /// gone; returns the index of that line.
    #[track_caller]
    pub fn unmark(&self, ns: &Netns, marker: &str, from: usize) -> usize {
        let route = format!("{marker}/32");
        if let Err(e) = ns.exec(&["ip", "route", "del", "blackhole", &route, "proto", "static"]) {
            panic!("cannot remove the marker route: {e}");
        }
        self.wait_for_line(
            crate::wait::timeout(5),
            from,
            &format!("the removal of the marker {route}"),
            |l| l.contains("Deleted") && l.contains(marker),
        )
    }

    /// Waits until a line recorded after the first `from` ones matches;
    /// returns its index.
    #[track_caller]
    pub fn wait_for_line(
        &self,
        within: Duration,
        from: usize,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> usize {
        wait_until(within, &format!("ip monitor to record {what}"), || {
            let lines = self.lines();
            match lines.iter().enumerate().skip(from).find(|(_, l)| matches(l)) {
                Some((i, _)) => Ok(i),
                None => Err(format!("{} lines so far:\n{}", lines.len(), lines.join("\n"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_json_routes() {
        let v: Value = serde_json::from_str(
            r#"[{"dst":"10.200.0.0/24","nhid":186000002,"metric":512,"flags":[],"nexthops":[{"via":{"family":"inet6","host":"fd00:101::fffe"},"dev":"d0","weight":1,"flags":[]},{"via":{"family":"inet6","host":"fd00:101::fffd"},"dev":"d0","weight":1,"flags":[]}]},
                {"dst":"10.224.2.0/24","nhid":186000000,"via":{"family":"inet6","host":"fd00:101::fffe"},"dev":"d0","metric":512,"flags":[]},
                {"type":"local","dst":"10.96.1.10","dev":"lo","table":"local","scope":"host","metric":512,"flags":[]},
                {"dst":"default","gateway":"10.0.0.1","dev":"d0","flags":[]}]"#,
        )
        .unwrap();
        let r: Vec<KernelRoute> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| KernelRoute::from_json(r, false))
            .collect();
        assert_eq!(r[0].gateways(), ["fd00:101::fffd", "fd00:101::fffe"]);
        assert_eq!(r[0].nhid, Some(186000002));
        assert_eq!(r[1].hops[0].family.as_deref(), Some("inet6"));
        assert_eq!(
            (r[2].dst.as_str(), r[2].kind.as_str(), r[2].table.as_str()),
            ("10.96.1.10/32", "local", "local")
        );
        assert_eq!(r[2].hops[0].dev.as_deref(), Some("lo"));
        assert_eq!(r[3].dst, "0.0.0.0/0");
        assert_eq!(r[3].hops[0].family.as_deref(), Some("inet"));
    }
}
