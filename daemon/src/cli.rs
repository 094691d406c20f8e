//! The commands that talk to a running daemon through its API: `tern show`
//! and `tern reload`. Output is aligned tables for people, rendered from
//! the API's JSON read back into the [`crate::status`] types, or the JSON
//! as is with `--json`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{Config, EnvSecrets};
use crate::status::{
    AdjRouteView, AdjStatus, ApiError, BfdStatus, FibStatus, PeerDetail, PeerView, Reloaded, RouteView,
    SessionState, Summary,
};

/// Where the API of the local daemon is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(String),
    Unix(PathBuf),
}

impl Endpoint {
    /// `--api` as given (`127.0.0.1:9179`, `http://…`, or a socket path),
    /// else the configuration's socket, else its TCP address.
    pub fn resolve(api: Option<&str>, config: &Path) -> Endpoint {
        if let Some(a) = api {
            // `host:port` (or `http://host:port/`) is TCP; anything with a
            // slash, or naming an existing file, is a socket path, relative
            // ones included.
            if a.starts_with("http://") {
                return Endpoint::Tcp(a.trim_start_matches("http://").trim_end_matches('/').to_owned());
            }
            return if a.contains('/') || Path::new(a).exists() {
                Endpoint::Unix(a.into())
            } else {
                Endpoint::Tcp(a.to_owned())
            };
        }
        if let Ok(c) = std::fs::read_to_string(config)
            .map_err(|_| ())
            .and_then(|t| Config::parse(&t, config, &EnvSecrets).map_err(|_| ()))
        {
            if let Some(s) = c.api.socket.filter(|s| s.exists()) {
                return Endpoint::Unix(s);
            }
            if let Some(a) = c.api.listen {
                return Endpoint::Tcp(a.to_string());
            }
        }
        Endpoint::Tcp("127.0.0.1:9179".into())
    }

    /// One HTTP/1.1 request; returns the status and body.
    pub fn request(&self, method: &str, path: &str) -> Result<(u16, String), String> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: tern\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let mut response = Vec::new();
        let timeout = Some(Duration::from_secs(10));
        let fail = |e: std::io::Error| format!("cannot reach tern at {self}: {e}");
        match self {
            Endpoint::Tcp(addr) => {
                let mut s = std::net::TcpStream::connect(addr).map_err(fail)?;
                s.set_read_timeout(timeout).map_err(fail)?;
                s.write_all(request.as_bytes()).map_err(fail)?;
                s.read_to_end(&mut response).map_err(fail)?;
            }
            Endpoint::Unix(path) => {
                let mut s = UnixStream::connect(path).map_err(fail)?;
                s.set_read_timeout(timeout).map_err(fail)?;
                s.write_all(request.as_bytes()).map_err(fail)?;
                s.read_to_end(&mut response).map_err(fail)?;
            }
        }
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed HTTP response")?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("malformed HTTP status line")?;
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Ok((status, body))
    }

    pub fn get_json(&self, path: &str) -> Result<Value, String> {
        let (status, body) = self.request("GET", path)?;
        if status >= 400 {
            return Err(api_error(&body));
        }
        serde_json::from_str(&body).map_err(|e| format!("the API answered something that is not JSON: {e}"))
    }

    /// Asks the daemon to reload; returns the changes it made, or every
    /// problem it found in the file.
    pub fn reload(&self) -> Result<String, String> {
        let (status, body) = self.request("POST", "/api/v1/reload")?;
        if status != 200 {
            return Err(api_error(&body));
        }
        serde_json::from_str::<Reloaded>(&body)
            .map(|r| r.changes)
            .map_err(|e| format!("the API answered in a form this tern does not read: {e}"))
    }
}

impl Endpoint {
    /// Drains (or undrains) the node; says whether it is drained now.
    pub fn drain(&self, on: bool) -> Result<bool, String> {
        let path = if on { "/api/v1/drain" } else { "/api/v1/undrain" };
        let (status, body) = self.request("POST", path)?;
        if status != 200 {
            return Err(api_error(&body));
        }
        serde_json::from_str::<crate::status::Drained>(&body)
            .map(|d| d.drained)
            .map_err(|e| format!("the API answered in a form this tern does not read: {e}"))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "http://{a}"),
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Percent-encodes a path segment or query value (peer names are free
/// text).
pub fn escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string (`?a=1&b=2`) of the parameters given, or nothing.
pub fn query(params: &[(&str, Option<String>)]) -> String {
    let q: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", escape(v))))
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// The reason an API error gives, or the body as is.
fn api_error(body: &str) -> String {
    serde_json::from_str::<ApiError>(body).map_or_else(|_| body.to_owned(), |e| e.error)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Renders rows as columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

/// Reads the API's JSON as `T` and renders it.
pub fn render<T: DeserializeOwned>(v: Value, show: impl Fn(&T) -> String) -> Result<String, String> {
    serde_json::from_value::<T>(v)
        .map(|t| show(&t))
        .map_err(|e| format!("the API answered in a form this tern does not read: {e}"))
}

fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Seconds since a Unix time, as `duration` renders them.
fn ago(unix: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{} ago", duration(now.saturating_sub(unix)))
}

/// The last error with how long ago it happened.
fn last_error(snap: &crate::status::Snapshot) -> String {
    match (&snap.last_error, snap.last_error_at) {
        (Some(e), Some(at)) => format!("{e} ({})", ago(at)),
        (Some(e), None) => e.clone(),
        _ => String::new(),
    }
}

pub fn peers_table(peers: &[PeerView]) -> String {
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|p| {
            let pre = &p.prefixes;
            let snap = &p.snapshot;
            vec![
                p.name.clone(),
                p.role.clone(),
                snap.remote_address.clone().unwrap_or_else(|| p.address.clone()),
                or_dash(snap.negotiated.as_ref().map(|n| n.peer_asn)),
                snap.state.to_string(),
                duration(p.uptime),
                pre.received.to_string(),
                pre.accepted.to_string(),
                pre.advertised.to_string(),
                last_error(snap),
            ]
        })
        .collect();
    table(
        &[
            "PEER",
            "ROLE",
            "ADDRESS",
            "ASN",
            "STATE",
            "FOR",
            "RECEIVED",
            "ACCEPTED",
            "ADVERTISED",
            "LAST ERROR",
        ],
        &rows,
    )
}

/// Everything about one peer: the session, what was negotiated, the last
/// error, message counters, and prefix counts per family.
pub fn peer_text(d: &PeerDetail) -> String {
    let p = &d.peer;
    let snap = &p.snapshot;
    let mut out = format!("peer {} ({}), configured address {}\n", p.name, p.role, p.address);
    let up = snap.state == SessionState::Established;
    out.push_str(&format!(
        "  state         {}, {} {}\n",
        snap.state,
        if up { "up for" } else { "down for" },
        duration(p.uptime)
    ));
    if let (Some(l), Some(r)) = (&snap.local_address, &snap.remote_address) {
        out.push_str(&format!("  connection    {l} -> {r}\n"));
    }
    if let Some(n) = &snap.negotiated {
        out.push_str(&format!(
            "  remote        AS {}, router ID {}{}\n",
            n.peer_asn,
            n.peer_id,
            n.peer_hostname
                .as_deref()
                .map(|h| format!(", hostname {h}"))
                .unwrap_or_default()
        ));
        out.push_str(&format!(
            "  timers        hold {}s, keepalive {}s\n",
            n.hold_time,
            n.keepalive.as_secs()
        ));
        let mut caps = vec![];
        for (on, name) in [
            (n.four_octet_as, "4-octet AS"),
            (n.route_refresh, "route refresh"),
            (n.enhanced_route_refresh, "enhanced route refresh"),
            (n.extended_next_hop, "extended next hop"),
            (n.extended_message, "extended message"),
        ] {
            if on {
                caps.push(name.to_owned());
            }
        }
        if let Some(gr) = &n.graceful_restart {
            caps.push(format!("graceful restart ({}s)", gr.restart_time));
        }
        out.push_str(&format!("  capabilities  {}\n", caps.join(", ")));
        let families: Vec<String> = n.families.iter().map(ToString::to_string).collect();
        out.push_str(&format!("  families      {}\n", families.join(", ")));
    }
    if snap.last_error.is_some() {
        out.push_str(&format!("  last error    {}\n", last_error(snap)));
    }
    let m = &p.messages;
    out.push_str(&format!(
        "  messages      received {} ({} updates, {} notifications), sent {} ({} updates, {} notifications)\n",
        m.messages_received,
        m.updates_received,
        m.notifications_received,
        m.messages_sent,
        m.updates_sent,
        m.notifications_sent
    ));
    let times = m.established_transitions;
    out.push_str(&format!(
        "  established   {times} time{}\n\n",
        if times == 1 { "" } else { "s" }
    ));
    let rows: Vec<Vec<String>> = d
        .families
        .iter()
        .map(|f| {
            let c = &f.counts;
            vec![
                f.family.clone(),
                c.received.to_string(),
                c.accepted.to_string(),
                c.filtered.to_string(),
                c.invalid.to_string(),
                c.stale.to_string(),
                c.advertised.to_string(),
                c.unsendable.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "FAMILY",
            "RECEIVED",
            "ACCEPTED",
            "FILTERED",
            "INVALID",
            "STALE",
            "ADVERTISED",
            "UNSENDABLE",
        ],
        &rows,
    ));
    out
}

/// Standard and large communities, space-separated.
fn communities(a: &crate::status::AttributesView) -> String {
    a.communities
        .iter()
        .chain(&a.large_communities)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A peer's Adj-RIB-In or Adj-RIB-Out.
pub fn adj_rib_table(routes: &[AdjRouteView]) -> String {
    let rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| {
            let a = r.attributes.clone().unwrap_or_default();
            let why = match (&r.reason, r.modified_by.is_empty()) {
                (Some(reason), _) => reason.clone(),
                (None, false) => format!("modified by {}", r.modified_by.join(", ")),
                (None, true) => String::new(),
            };
            let communities = communities(&a);
            vec![
                r.prefix.to_string(),
                r.status.name().to_owned(),
                if r.attributes.is_some() {
                    a.next_hop
                } else {
                    "-".into()
                },
                a.as_path,
                a.local_pref.map_or(String::new(), |v| v.to_string()),
                a.med.map_or(String::new(), |v| v.to_string()),
                communities,
                why,
            ]
        })
        .collect();
    let mut out = table(
        &[
            "PREFIX",
            "STATUS",
            "NEXT HOP",
            "AS PATH",
            "LOCPRF",
            "MED",
            "COMMUNITIES",
            "WHY",
        ],
        &rows,
    );
    let count = |s: AdjStatus| routes.iter().filter(|r| r.status == s).count();
    let totals: Vec<String> = [
        AdjStatus::Accepted,
        AdjStatus::Stale,
        AdjStatus::Filtered,
        AdjStatus::Invalid,
        AdjStatus::Advertised,
        AdjStatus::Unsendable,
    ]
    .into_iter()
    .filter(|s| count(*s) > 0)
    .map(|s| format!("{} {}", count(s), s.name()))
    .collect();
    out.push_str(&format!("{} routes", routes.len()));
    if !totals.is_empty() {
        out.push_str(&format!(": {}", totals.join(", ")));
    }
    out.push('\n');
    out
}

pub fn routes_table(routes: &[RouteView]) -> String {
    let mut rows = Vec::new();
    for r in routes {
        for (i, p) in r.paths.iter().enumerate() {
            let mut flags = String::new();
            if p.best {
                flags.push('*');
            }
            if p.multipath && !p.best {
                flags.push('=');
            }
            if p.stale {
                flags.push('S');
            }
            if p.gated.is_some() {
                flags.push('H');
            }
            // The kernel column belongs to the prefix: on its first row.
            let kernel = match (&r.kernel, i) {
                (Some(k), 0) if k.installed => "yes",
                (Some(_), 0) => "no",
                _ => "",
            };
            let a = &p.attributes;
            rows.push(vec![
                flags,
                r.prefix.to_string(),
                a.next_hop.clone(),
                p.peer.clone(),
                a.as_path.clone(),
                a.origin.clone().unwrap_or_default(),
                a.local_pref.map_or(String::new(), |v| v.to_string()),
                a.med.map_or(String::new(), |v| v.to_string()),
                duration(p.age),
                kernel.to_owned(),
                communities(a),
            ]);
        }
    }
    let mut out = table(
        &[
            "",
            "PREFIX",
            "NEXT HOP",
            "PEER",
            "AS PATH",
            "ORIGIN",
            "LOCPRF",
            "MED",
            "AGE",
            "KERNEL",
            "COMMUNITIES",
        ],
        &rows,
    );
    out.push_str(
        "* best, = equal-cost (ECMP), S stale (graceful restart), H held back by a failing health check\n",
    );
    let kernel: Vec<(&RouteView, &crate::status::KernelState)> = routes
        .iter()
        .filter_map(|r| r.kernel.as_ref().map(|k| (r, k)))
        .collect();
    if !kernel.is_empty() {
        out.push_str("\nin the kernel:\n");
        let width = kernel
            .iter()
            .map(|(r, _)| r.prefix.to_string().len())
            .max()
            .unwrap_or(0);
        for (r, k) in kernel {
            out.push_str(&format!(
                "  {:<width$}  {}: {}\n",
                r.prefix.to_string(),
                if k.installed { "installed" } else { "not installed" },
                k.detail
            ));
        }
    }
    out
}

pub fn health_text(checks: &[crate::health::HealthView]) -> String {
    if checks.is_empty() {
        return "no health checks configured ([[health-check]])".into();
    }
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|h| {
            vec![
                h.name.clone(),
                h.state.clone(),
                duration(h.for_secs),
                format!("{} → {}", h.action, h.gates),
                h.probe.clone(),
                h.entered
                    .clone()
                    .or(h.namespace.clone())
                    .unwrap_or_else(|| "host".into()),
                format!("{}/{}", h.streak, if h.passing() { h.fall } else { h.rise }),
                h.transitions.to_string(),
                h.last_result.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "CHECK",
            "STATE",
            "FOR",
            "ON FAILURE",
            "PROBE",
            "FROM",
            "STREAK",
            "CHANGES",
            "LAST RESULT",
        ],
        &rows,
    )
}

pub fn bfd_text(b: &BfdStatus) -> String {
    let rows: Vec<Vec<String>> = b
        .sessions
        .iter()
        .map(|s| {
            vec![
                s.peer.clone(),
                s.remote.clone(),
                if s.multihop { "multihop" } else { "single-hop" }.into(),
                s.state.clone(),
                s.remote_state.clone(),
                duration(s.since_secs),
                format!("{}ms", s.tx_interval_ms),
                format!("{}ms", s.detection_time_ms),
                format!("{}/{}", s.multiplier, s.remote_multiplier),
                s.flaps.to_string(),
                if s.diagnostic == "none" && s.remote_diagnostic == "none" {
                    String::new()
                } else {
                    format!("{} / peer: {}", s.diagnostic, s.remote_diagnostic)
                },
            ]
        })
        .collect();
    let mut out = table(
        &[
            "PEER",
            "ADDRESS",
            "HOPS",
            "STATE",
            "REMOTE",
            "FOR",
            "TX",
            "DETECT",
            "MULT",
            "FLAPS",
            "DIAGNOSTIC",
        ],
        &rows,
    );
    let dropped: u64 = b.dropped.values().sum();
    out.push_str(&format!(
        "packets: {} received, {} sent, {} dropped",
        b.received, b.sent, dropped
    ));
    let reasons: Vec<String> = b
        .dropped
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    if !reasons.is_empty() {
        out.push_str(&format!(" ({})", reasons.join(", ")));
    }
    out.push('\n');
    out
}

pub fn fib_text(f: &FibStatus) -> String {
    let c = &f.counters;
    let mut out = format!(
        "installed   {} routes ({} VIP routes, {} static), nexthop objects {}\nunresolved  {}\nrepaired    {} (drift put back), {} failed writes, {} adopted after a restart, {} scans\n",
        c.installed,
        c.vip_routes,
        c.static_routes,
        if f.nexthop_objects { "on" } else { "off" },
        c.unresolved,
        c.repairs,
        c.failures,
        c.adopted,
        f.scans,
    );
    for p in &f.unresolved_prefixes {
        out.push_str(&format!("  {p}: no next hop resolves\n"));
    }
    if !f.failed_routes.is_empty() {
        out.push_str(&format!("failing     {} routes the kernel refused:\n", c.failing));
    }
    for r in &f.failed_routes {
        out.push_str(&format!(
            "  {} (table {}): {}; {} attempts, next in {}\n",
            r.prefix,
            r.table,
            r.error,
            r.attempts,
            duration(r.retry_in)
        ));
    }
    out
}

/// `tern doctor`: one line per check, the fix under what is not PASS.
pub fn doctor_text(checks: &[crate::status::Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{}  {:<width$}  {}\n",
            c.status.name(),
            c.name,
            c.evidence
        ));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      {:<width$}  fix: {fix}\n", ""));
        }
    }
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "{} checks: {} pass, {} warn, {} fail\n",
        checks.len(),
        count(crate::status::CheckStatus::Pass),
        count(crate::status::CheckStatus::Warn),
        count(crate::status::CheckStatus::Fail)
    ));
    out
}

pub fn summary_text(v: &Summary) -> String {
    let rib = &v.rib;
    format!(
        "router-id   {}\nasn         {}\nversion     {}\nuptime      {}\npeers       {} ({} established)\nrefused     {} connections from unknown sources\nloc-rib     {} IPv4 and {} IPv6 prefixes, {} paths, {} attribute sets{}\n",
        v.router_id,
        v.asn,
        v.version,
        duration(v.uptime),
        v.peers,
        v.peers_established,
        v.rejected_connections,
        rib.ipv4_prefixes,
        rib.ipv6_prefixes,
        rib.paths,
        rib.attribute_sets,
        if rib.deferring {
            " (deferring until End-of-RIB after a restart)"
        } else {
            ""
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["A", "BB"],
            &[vec!["xxx".into(), "y".into()], vec!["z".into(), "w".into()]],
        );
        assert_eq!(t, "A    BB\nxxx  y\nz    w\n");
    }

    #[test]
    fn peers_render_from_api_json() {
        let status = crate::status::PeerStatus::new("cilium".into(), "cilium".into(), "::1".into());
        status.update(|s| {
            s.state = SessionState::Established;
            s.remote_address = Some("[::1]:40000".into());
            s.negotiated = Some(crate::session::negotiate::Negotiated {
                peer_asn: 4220101000,
                peer_id: "10.0.0.1".parse().unwrap(),
                hold_time: 90,
                keepalive: Duration::from_secs(30),
                families: vec![],
                four_octet_as: true,
                extended_next_hop: false,
                extended_message: false,
                route_refresh: true,
                enhanced_route_refresh: false,
                graceful_restart: None,
                peer_hostname: None,
                rx: Default::default(),
                tx: Default::default(),
            });
        });
        let mut view = status.view(crate::status::PrefixCounts {
            accepted: 3,
            received: 3,
            advertised: 0,
            ..Default::default()
        });
        view.uptime = 75;
        let json = serde_json::to_value(vec![view]).unwrap();
        let t = render(json, |p: &Vec<PeerView>| peers_table(p)).unwrap();
        assert!(
            t.lines()
                .nth(1)
                .unwrap()
                .starts_with("cilium  cilium  [::1]:40000  4220101000  established  1m15s  3"),
            "{t}"
        );
    }

    #[test]
    fn endpoints() {
        let none = Path::new("/nonexistent/tern.toml");
        assert_eq!(
            Endpoint::resolve(Some("http://127.0.0.1:9179/"), none),
            Endpoint::Tcp("127.0.0.1:9179".into())
        );
        assert_eq!(
            Endpoint::resolve(Some("/run/tern/tern.sock"), none),
            Endpoint::Unix("/run/tern/tern.sock".into())
        );
        assert_eq!(
            Endpoint::resolve(None, none),
            Endpoint::Tcp("127.0.0.1:9179".into())
        );
        // Relative socket paths are paths.
        assert_eq!(
            Endpoint::resolve(Some("run/tern.sock"), none),
            Endpoint::Unix("run/tern.sock".into())
        );
        assert_eq!(
            Endpoint::resolve(Some("./tern.sock"), none),
            Endpoint::Unix("./tern.sock".into())
        );
        assert_eq!(
            Endpoint::resolve(Some("10.101.0.21:9179"), none),
            Endpoint::Tcp("10.101.0.21:9179".into())
        );
        assert_eq!(
            Endpoint::resolve(Some("[fd00:101::21]:9179"), none),
            Endpoint::Tcp("[fd00:101::21]:9179".into())
        );
        assert_eq!(dechunk("5\r\nhello\r\n0\r\n\r\n"), "hello");
    }
}
