//! Prometheus metrics, computed at each scrape from the status board and
//! the RIB: nothing on the route path pays for them.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::health::HealthView;
use crate::status::{
    BfdStatus, FibStatus, MessageCounts, PeerView, PrefixCounts, ReloadStatus, RibSummary, SessionState,
};

/// A peer's message counters: metric, help, value.
type MessageMetric = (&'static str, &'static str, fn(&MessageCounts) -> u64);

const MESSAGE_METRICS: [MessageMetric; 8] = [
    ("tern_peer_messages_received", "BGP messages received", |c| {
        c.messages_received
    }),
    ("tern_peer_messages_sent", "BGP messages sent", |c| {
        c.messages_sent
    }),
    ("tern_peer_updates_received", "UPDATE messages received", |c| {
        c.updates_received
    }),
    ("tern_peer_updates_sent", "UPDATE messages sent", |c| {
        c.updates_sent
    }),
    (
        "tern_peer_notifications_received",
        "NOTIFICATION messages received",
        |c| c.notifications_received,
    ),
    (
        "tern_peer_notifications_sent",
        "NOTIFICATION messages sent",
        |c| c.notifications_sent,
    ),
    (
        "tern_peer_established",
        "times the session reached Established",
        |c| c.established_transitions,
    ),
    (
        "tern_peer_updates_malformed",
        "UPDATEs with attribute errors handled per RFC 7606",
        |c| c.updates_malformed,
    ),
];

/// A peer's prefix counts: metric, help, value.
type PrefixMetric = (&'static str, &'static str, fn(&PrefixCounts) -> usize);

const PREFIX_METRICS: [PrefixMetric; 8] = [
    (
        "tern_peer_prefixes_received",
        "prefixes received from the peer: accepted, filtered and invalid",
        |c| c.received,
    ),
    (
        "tern_peer_prefixes_accepted",
        "prefixes accepted by import policy",
        |c| c.accepted,
    ),
    (
        "tern_peer_prefixes_filtered",
        "prefixes rejected by import policy or discarded by a max-prefix limit",
        |c| c.filtered,
    ),
    (
        "tern_peer_prefixes_invalid",
        "prefixes treated as withdrawn: AS loop, wrong first AS, malformed attribute",
        |c| c.invalid,
    ),
    (
        "tern_peer_prefixes_advertised",
        "prefixes advertised to the peer",
        |c| c.advertised,
    ),
    (
        "tern_peer_prefixes_stale",
        "prefixes kept stale for a restarting peer",
        |c| c.stale,
    ),
    (
        "tern_peer_prefixes_unsendable",
        "prefixes owed to the peer that cannot be encoded for its session",
        |c| c.unsendable,
    ),
    (
        "tern_peer_prefixes_over_limit",
        "families of the peer over their max-prefix limit",
        |c| c.over_limit,
    ),
];

/// Process-wide facts of one scrape.
#[derive(Clone, Debug, Default)]
pub struct Process {
    /// Connections refused because their source is no configured peer.
    pub rejected: u64,
    pub uptime: u64,
    pub reloads: ReloadStatus,
}

#[derive(Debug)]
struct Scrape {
    peers: Vec<PeerView>,
    rib: Option<RibSummary>,
    fib: Option<FibStatus>,
    bfd: Option<BfdStatus>,
    health: Vec<HealthView>,
    process: Process,
    rss: Option<u64>,
    heap: Option<u64>,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        {
            let mut m = encoder.encode_descriptor(
                "tern_peer_up",
                "1 when the session is established",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for p in &self.peers {
                let up = i64::from(p.snapshot.state == SessionState::Established);
                ConstGauge::new(up)
                    .encode(m.encode_family(&[("peer", p.name.as_str()), ("role", p.role.as_str())])?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "tern_peer_state",
                "1 for the session's current FSM state",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for p in &self.peers {
                for s in SessionState::ALL {
                    let v = i64::from(p.snapshot.state == s);
                    ConstGauge::new(v)
                        .encode(m.encode_family(&[("peer", p.name.as_str()), ("state", s.name())])?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "tern_peer_last_change_timestamp_seconds",
                "Unix time the session last came up or went down",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for p in &self.peers {
                ConstGauge::new(p.snapshot.since as i64)
                    .encode(m.encode_family(&[("peer", p.name.as_str())])?)?;
            }
        }
        for (metric, help, value) in MESSAGE_METRICS {
            let mut m =
                encoder.encode_descriptor(metric, help, None, ConstCounter::new(0u64).metric_type())?;
            for p in &self.peers {
                ConstCounter::new(value(&p.messages))
                    .encode(m.encode_family(&[("peer", p.name.as_str())])?)?;
            }
        }
        for (metric, help, value) in PREFIX_METRICS {
            let mut m = encoder.encode_descriptor(metric, help, None, ConstGauge::new(0i64).metric_type())?;
            for p in &self.peers {
                ConstGauge::new(value(&p.prefixes) as i64)
                    .encode(m.encode_family(&[("peer", p.name.as_str())])?)?;
            }
        }
        if let Some(r) = &self.rib {
            {
                let mut m = encoder.encode_descriptor(
                    "tern_rib_prefixes",
                    "prefixes in the Loc-RIB",
                    None,
                    ConstGauge::new(0i64).metric_type(),
                )?;
                ConstGauge::new(r.ipv4_prefixes as i64)
                    .encode(m.encode_family(&[("family", "ipv4-unicast")])?)?;
                ConstGauge::new(r.ipv6_prefixes as i64)
                    .encode(m.encode_family(&[("family", "ipv6-unicast")])?)?;
            }
            let gauges = [
                ("tern_rib_paths", "paths in the Loc-RIB", r.paths as i64),
                (
                    "tern_rib_attribute_sets",
                    "distinct interned attribute sets",
                    r.attribute_sets as i64,
                ),
                (
                    "tern_rib_deferring",
                    "1 while best-path selection waits for End-of-RIB after a restart",
                    i64::from(r.deferring),
                ),
                (
                    "tern_drained",
                    "1 while the node is drained: every route goes out with GRACEFUL_SHUTDOWN",
                    i64::from(r.drained),
                ),
            ];
            for (metric, help, v) in gauges {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(metric, help, None, g.metric_type())?)?;
            }
        }
        if let Some(f) = &self.fib {
            let c = &f.counters;
            let gauges = [
                (
                    "tern_fib_routes",
                    "routes tern has installed in the kernel",
                    c.installed as i64,
                ),
                (
                    "tern_fib_vip_routes",
                    "VIP routes that keep same-node traffic on the node",
                    c.vip_routes as i64,
                ),
                (
                    "tern_fib_unresolved",
                    "prefixes not installed because no next hop resolves",
                    c.unresolved as i64,
                ),
                (
                    "tern_fib_failing",
                    "routes the kernel refused, retried with back-off",
                    c.failing as i64,
                ),
            ];
            for (metric, help, v) in gauges {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(metric, help, None, g.metric_type())?)?;
            }
            let counters = [
                (
                    "tern_fib_repairs",
                    "routes of ours found changed or missing in the kernel and put back",
                    c.repairs,
                ),
                ("tern_fib_failures", "kernel operations that failed", c.failures),
                (
                    "tern_fib_adopted",
                    "routes from before a restart kept without a kernel change",
                    c.adopted,
                ),
                ("tern_fib_scans", "consistency scans of the kernel table", f.scans),
            ];
            for (metric, help, v) in counters {
                let m = ConstCounter::new(v);
                m.encode(encoder.encode_descriptor(metric, help, None, m.metric_type())?)?;
            }
        }
        let c = ConstCounter::new(self.process.rejected);
        c.encode(encoder.encode_descriptor(
            "tern_connections_rejected",
            "connections refused because the source is not a configured peer",
            None,
            c.metric_type(),
        )?)?;
        let g = ConstGauge::new(self.process.uptime as i64);
        g.encode(encoder.encode_descriptor(
            "tern_uptime_seconds",
            "seconds since tern started",
            None,
            g.metric_type(),
        )?)?;
        {
            let mut m = encoder.encode_descriptor(
                "tern_build_info",
                "always 1; the labels say which tern runs",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            ConstGauge::new(1i64).encode(m.encode_family(&[
                ("version", env!("CARGO_PKG_VERSION")),
                ("arch", std::env::consts::ARCH),
            ])?)?;
        }
        self.encode_reloads(&mut encoder)?;
        if let Some(rss) = self.rss {
            let g = ConstGauge::new(rss as i64);
            g.encode(encoder.encode_descriptor(
                "tern_process_resident_memory_bytes",
                "resident memory of the tern process",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Some(b) = &self.bfd {
            self.encode_bfd(b, &mut encoder)?;
        }
        self.encode_health(&mut encoder)?;
        if let Some(heap) = self.heap {
            let g = ConstGauge::new(heap as i64);
            g.encode(encoder.encode_descriptor(
                "tern_heap_allocated_bytes",
                "bytes allocated and not yet freed (glibc builds); resident memory far above it is the allocator's, not tern's data",
                None,
                g.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

impl Scrape {
    fn encode_reloads(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let r = &self.process.reloads;
        {
            let mut m = encoder.encode_descriptor(
                "tern_config_reloads",
                "configuration reloads (SIGHUP, tern reload, the API), by result",
                None,
                ConstCounter::new(0u64).metric_type(),
            )?;
            ConstCounter::new(r.succeeded).encode(m.encode_family(&[("result", "success")])?)?;
            ConstCounter::new(r.failed).encode(m.encode_family(&[("result", "failure")])?)?;
        }
        if let (Some(at), Some(ok)) = (r.last_at, r.last_ok) {
            for (metric, help, v) in [
                (
                    "tern_config_last_reload_timestamp_seconds",
                    "Unix time of the last reload",
                    at as i64,
                ),
                (
                    "tern_config_last_reload_successful",
                    "1 if the last reload applied, 0 if the file was refused and the running configuration kept",
                    i64::from(ok),
                ),
            ] {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(metric, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }

    fn encode_health(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.health.is_empty() {
            return Ok(());
        }
        let label = |h: &HealthView| [("check", h.name.clone()), ("action", h.action.clone())];
        {
            let mut m = encoder.encode_descriptor(
                "tern_health_check_up",
                "1 while the health check passes; 0 while it fails and its gate holds back the VIPs it covers",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for h in &self.health {
                ConstGauge::new(i64::from(h.passing())).encode(m.encode_family(&label(h))?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "tern_health_check_transitions",
                "times the health check changed between passing and failing",
                None,
                ConstCounter::new(0u64).metric_type(),
            )?;
            for h in &self.health {
                ConstCounter::new(h.transitions).encode(m.encode_family(&label(h))?)?;
            }
        }
        let mut m = encoder.encode_descriptor(
            "tern_health_probes",
            "health probes run, by result",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for h in &self.health {
            for (result, n) in [("success", h.probes_ok), ("failure", h.probes_failed)] {
                ConstCounter::new(n)
                    .encode(m.encode_family(&[("check", h.name.as_str()), ("result", result)])?)?;
            }
        }
        Ok(())
    }

    fn encode_bfd(&self, b: &BfdStatus, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        {
            let mut m = encoder.encode_descriptor(
                "tern_bfd_session_up",
                "1 when the peer's BFD session is Up",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for s in &b.sessions {
                ConstGauge::new(i64::from(s.state == "up"))
                    .encode(m.encode_family(&[("peer", s.peer.as_str())])?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "tern_bfd_session_flaps",
                "times the peer's BFD session left Up",
                None,
                ConstCounter::new(0u64).metric_type(),
            )?;
            for s in &b.sessions {
                ConstCounter::new(s.flaps).encode(m.encode_family(&[("peer", s.peer.as_str())])?)?;
            }
        }
        for (metric, help, value) in [
            ("tern_bfd_packets_received", "BFD packets received", b.received),
            ("tern_bfd_packets_sent", "BFD packets sent", b.sent),
            (
                "tern_bfd_send_errors",
                "BFD packets that could not be sent",
                b.send_errors,
            ),
        ] {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(metric, help, None, c.metric_type())?)?;
        }
        let mut m = encoder.encode_descriptor(
            "tern_bfd_packets_dropped",
            "received BFD packets dropped, by reason",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for (reason, n) in &b.dropped {
            ConstCounter::new(*n).encode(m.encode_family(&[("reason", reason.as_str())])?)?;
        }
        Ok(())
    }
}

/// Resident memory from /proc/self/statm (pages of 4 KiB on the systems
/// tern runs on).
fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The metrics text for one scrape.
pub fn render(
    peers: &[PeerView],
    rib: Option<&RibSummary>,
    fib: Option<&FibStatus>,
    bfd: Option<&BfdStatus>,
    health: &[HealthView],
    process: Process,
) -> Result<String, std::fmt::Error> {
    let scrape = Scrape {
        peers: peers.to_vec(),
        rib: rib.cloned(),
        fib: fib.cloned(),
        bfd: bfd.cloned(),
        health: health.to_vec(),
        process,
        rss: resident_memory(),
        heap: crate::memory::allocated(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// The content type of [`render`]'s text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`to_text_004`]'s.
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text (what [`render`] makes) as the Prometheus text format
/// 0.0.4 that scrapers expect under `text/plain`: a counter's `HELP` and
/// `TYPE` carry the `_total` name its samples have, and there is no `#
/// EOF` or `# UNIT`.
pub fn to_text_004(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{tag}{name}_total {tail}").trim_end().to_owned())
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthView;
    use crate::status::{BfdStatus, BfdView};

    #[test]
    fn text_004_names_counters_as_their_samples() {
        let bfd = BfdStatus {
            sessions: vec![BfdView::sample("upstream", "up")],
            received: 10,
            sent: 11,
            send_errors: 0,
            dropped: [("ttl".to_owned(), 2)].into_iter().collect(),
        };
        let process = Process {
            rejected: 7,
            uptime: 60,
            reloads: ReloadStatus {
                succeeded: 2,
                failed: 1,
                last_at: Some(1_790_000_000),
                last_ok: Some(false),
            },
        };
        let health = [HealthView::sample("pod-dns", false)];
        let om = render(&[], None, None, Some(&bfd), &health, process).unwrap();
        assert!(om.ends_with("# EOF\n"), "{om}");
        let text = to_text_004(&om);
        assert!(!text.contains("# EOF"), "{text}");
        // Every sample's family has a TYPE line of that exact name (for a
        // counter, the `_total` one), as the 0.0.4 parser requires.
        let mut types = std::collections::HashMap::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
            }
        }
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(types.contains_key(name), "no TYPE for {name}:\n{text}");
            if name.ends_with("_total") {
                assert_eq!(types[name], "counter", "{name}");
            }
        }
        assert!(
            text.contains("# TYPE tern_bfd_packets_dropped_total counter"),
            "{text}"
        );
        assert!(
            text.contains("tern_bfd_packets_dropped_total{reason=\"ttl\"} 2"),
            "{text}"
        );
        assert!(text.contains("# TYPE tern_bfd_session_up gauge"), "{text}");
        assert!(
            text.contains("tern_health_check_up{check=\"pod-dns\",action=\"withdraw\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("tern_health_probes_total{check=\"pod-dns\",result=\"failure\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("tern_health_check_transitions_total{check=\"pod-dns\",action=\"withdraw\"} 1"),
            "{text}"
        );
        assert!(text.contains("tern_connections_rejected_total 7"), "{text}");
        assert!(
            text.contains("tern_config_reloads_total{result=\"failure\"} 1"),
            "{text}"
        );
        assert!(text.contains("tern_config_last_reload_successful 0"), "{text}");
        assert!(text.contains("tern_build_info{version=\""), "{text}");
    }
}
