//! The status model: the one set of types in which tern tells what it is
//! doing. The API serialises them, the CLI deserialises them, and metrics
//! read them, so a field added here reaches all three.
//!
//! Producers convert into these types at the edge: peer tasks publish a
//! [`Snapshot`] on the [`StatusBoard`] when their state changes and bump
//! its atomic counters; the RIB answers queries with [`RouteView`],
//! [`RibSummary`] and [`PrefixCounts`]; the FIB publishes [`FibStatus`].
//! Nothing here decides anything, and the protocol cores never see serde.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::session::negotiate::Negotiated;

/// The RFC 4271 state of a peer, as operators know it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    #[default]
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl SessionState {
    pub const ALL: [SessionState; 6] = [
        SessionState::Idle,
        SessionState::Connect,
        SessionState::Active,
        SessionState::OpenSent,
        SessionState::OpenConfirm,
        SessionState::Established,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SessionState::Idle => "idle",
            SessionState::Connect => "connect",
            SessionState::Active => "active",
            SessionState::OpenSent => "opensent",
            SessionState::OpenConfirm => "openconfirm",
            SessionState::Established => "established",
        }
    }
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A session's state as last published.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub state: SessionState,
    /// Unix time the session last came up or went down (moving between
    /// the states of connecting is not a change an operator counts).
    pub since: u64,
    pub local_address: Option<String>,
    pub remote_address: Option<String>,
    /// Why the session last went down or failed to come up; it stays
    /// after the session recovers.
    pub last_error: Option<String>,
    /// Unix time of the last error.
    #[serde(default)]
    pub last_error_at: Option<u64>,
    pub negotiated: Option<Negotiated>,
}

/// Message counters of one peer, as the API shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCounts {
    pub messages_received: u64,
    pub messages_sent: u64,
    pub updates_received: u64,
    pub updates_sent: u64,
    pub notifications_received: u64,
    pub notifications_sent: u64,
    /// Times the session reached Established.
    pub established_transitions: u64,
    /// UPDATEs with attribute errors handled per RFC 7606
    /// (treat-as-withdraw, attribute discard).
    #[serde(default)]
    pub updates_malformed: u64,
}

/// Prefix counts of one peer, from the RIB.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixCounts {
    /// Every prefix the peer has announced and not withdrawn, whatever
    /// became of it: accepted + filtered + invalid.
    pub received: usize,
    pub accepted: usize,
    /// Rejected by import policy or discarded by a max-prefix limit.
    #[serde(default)]
    pub filtered: usize,
    /// Treated as withdrawn: AS loop, wrong first AS, malformed attribute.
    #[serde(default)]
    pub invalid: usize,
    pub advertised: usize,
    pub stale: usize,
    /// Owed to the peer but impossible to encode for its session (e.g.
    /// attributes too long without extended messages): not sent.
    #[serde(default)]
    pub unsendable: usize,
    /// Families over their max-prefix limit right now.
    #[serde(default)]
    pub over_limit: usize,
}

/// Everything the API says about one peer (`/api/v1/peers`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    pub name: String,
    pub role: String,
    pub address: String,
    #[serde(flatten)]
    pub snapshot: Snapshot,
    /// Seconds since the session last came up or went down.
    pub uptime: u64,
    pub prefixes: PrefixCounts,
    #[serde(flatten)]
    pub messages: MessageCounts,
}

/// Loc-RIB size (`/api/v1/summary`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RibSummary {
    pub ipv4_prefixes: usize,
    pub ipv6_prefixes: usize,
    pub paths: usize,
    pub attribute_sets: usize,
    pub deferring: bool,
    /// Drained (`tern drain`): routes go out with GRACEFUL_SHUTDOWN.
    #[serde(default)]
    pub drained: bool,
}

/// The daemon as a whole (`/api/v1/summary`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub router_id: String,
    pub asn: u32,
    pub version: String,
    pub uptime: u64,
    pub peers: usize,
    pub peers_established: usize,
    pub rejected_connections: u64,
    pub rib: RibSummary,
    #[serde(default)]
    pub reloads: ReloadStatus,
}

/// One prefix of the Loc-RIB with its paths (`/api/v1/routes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    pub prefix: IpNet,
    pub paths: Vec<PathView>,
    /// Whether and how the best route is in the kernel, or why not; absent
    /// when kernel programming is off or the answer covers too many routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelState>,
}

/// A route's place in the kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelState {
    /// tern means to have it in the kernel (not the node's own prefix,
    /// not left out by `[fib]`).
    #[serde(default)]
    pub wanted: bool,
    pub installed: bool,
    /// How (`route: via fd00:101::fffe dev eth-up, table main, metric 512`)
    /// or why not (`learned from a cilium peer; [fib] install-from ...`).
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathView {
    pub peer: String,
    #[serde(flatten)]
    pub attributes: AttributesView,
    /// Seconds since the path was received (or last changed).
    #[serde(default)]
    pub age: u64,
    pub best: bool,
    pub multipath: bool,
    pub stale: bool,
    /// Held back by a failing health check: `withdraw` or
    /// `graceful-shutdown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gated: Option<String>,
}

/// A path's next hop and attributes, as text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributesView {
    pub next_hop: String,
    pub as_path: String,
    pub origin: Option<String>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
}

/// What became of a path a peer sent, or of one advertised to it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdjStatus {
    /// Import policy accepted it: it is a candidate in the Loc-RIB.
    Accepted,
    /// Accepted before the peer restarted, kept until it is sent again.
    Stale,
    /// Import policy rejected it, or a max-prefix limit discarded it.
    Filtered,
    /// Not a valid path: treated as withdrawn (AS loop, RFC 7606).
    Invalid,
    /// Sent to the peer (Adj-RIB-Out).
    Advertised,
    /// Owed to the peer but impossible to encode for its session.
    Unsendable,
}

impl AdjStatus {
    pub fn name(self) -> &'static str {
        match self {
            AdjStatus::Accepted => "accepted",
            AdjStatus::Stale => "stale",
            AdjStatus::Filtered => "filtered",
            AdjStatus::Invalid => "invalid",
            AdjStatus::Advertised => "advertised",
            AdjStatus::Unsendable => "unsendable",
        }
    }
}

/// One route of a peer's Adj-RIB-In (as received, before import policy)
/// or Adj-RIB-Out (as sent) (`/api/v1/peers/NAME/received`, `.../advertised`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjRouteView {
    pub prefix: IpNet,
    /// Absent when the path was not kept (soft reconfiguration off).
    #[serde(flatten)]
    pub attributes: Option<AttributesView>,
    pub status: AdjStatus,
    /// Why it is filtered or invalid: the policy and statement that
    /// rejected it, the max-prefix limit, the AS loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The statements (`policy/statement`) that changed it on import.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modified_by: Vec<String>,
}

/// One family's prefix counts of a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyCounts {
    pub family: String,
    #[serde(flatten)]
    pub counts: PrefixCounts,
}

/// Everything about one peer (`/api/v1/peers/NAME`): the list's view and
/// its counts per family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerDetail {
    #[serde(flatten)]
    pub peer: PeerView,
    pub families: Vec<FamilyCounts>,
}

/// Any API error: the status code says what kind, this says why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

/// PASS, WARN or FAIL.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

impl CheckStatus {
    pub fn name(self) -> &'static str {
        match self {
            CheckStatus::Pass => "PASS",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
        }
    }
}

/// One check of `tern doctor` (`/api/v1/doctor`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    /// What was seen.
    pub evidence: String,
    /// What to do, when it is not PASS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// One BFD session (`/api/v1/bfd`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BfdView {
    /// The BGP peer it watches.
    pub peer: String,
    pub remote: String,
    pub local: Option<String>,
    pub multihop: bool,
    /// `admin-down`, `down`, `init` or `up` (RFC 5880).
    pub state: String,
    pub remote_state: String,
    /// Why it last left Up, or is not Up (RFC 5880 §4.1).
    pub diagnostic: String,
    pub remote_diagnostic: String,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    pub multiplier: u8,
    pub remote_multiplier: u8,
    /// Configured.
    pub min_tx_ms: u64,
    pub min_rx_ms: u64,
    /// In force: our transmit interval (before jitter) and how long
    /// without a packet before Down.
    pub tx_interval_ms: u64,
    pub detection_time_ms: u64,
    pub remote_min_rx_ms: u64,
    pub remote_min_tx_ms: u64,
    /// Seconds in the current state.
    pub since_secs: u64,
    /// Times it came Up, and times it left Up.
    pub ups: u64,
    pub flaps: u64,
}

#[cfg(test)]
impl BfdView {
    /// A session to `peer` in `state` with 300 ms × 3 timers, for tests.
    pub fn sample(peer: &str, state: &str) -> BfdView {
        BfdView {
            peer: peer.into(),
            remote: "fd00:101::fffe".into(),
            local: None,
            multihop: false,
            state: state.into(),
            remote_state: state.into(),
            diagnostic: "none".into(),
            remote_diagnostic: "none".into(),
            local_discriminator: 1,
            remote_discriminator: 2,
            multiplier: 3,
            remote_multiplier: 3,
            min_tx_ms: 300,
            min_rx_ms: 300,
            tx_interval_ms: 300,
            detection_time_ms: 900,
            remote_min_rx_ms: 300,
            remote_min_tx_ms: 300,
            since_secs: 5,
            ups: 1,
            flaps: 0,
        }
    }
}

/// Every BFD session and the packet counters (`/api/v1/bfd`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BfdStatus {
    pub sessions: Vec<BfdView>,
    pub received: u64,
    pub sent: u64,
    pub send_errors: u64,
    /// Received packets dropped, by reason (`ttl`, `your-discriminator`...).
    pub dropped: BTreeMap<String, u64>,
}

/// The outcome of a reload (`POST /api/v1/reload`): the changes made, e.g.
/// "added upstream-2, policies of cilium", or "none".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reloaded {
    pub reloaded: bool,
    pub changes: String,
}

/// The outcome of `tern drain` / `tern undrain`
/// (`POST /api/v1/drain`, `/api/v1/undrain`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drained {
    pub drained: bool,
}

/// Counters of the kernel routes tern keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibCounters {
    pub installed: usize,
    pub vip_routes: usize,
    /// Configured static routes (`[[static-route]]`).
    #[serde(default)]
    pub static_routes: usize,
    pub unresolved: usize,
    /// Routes of ours that someone else changed or deleted, put back.
    pub repairs: u64,
    /// Kernel operations that failed.
    pub failures: u64,
    /// Routes whose last write failed, retried with back-off.
    #[serde(default)]
    pub failing: usize,
    /// Routes left from before a restart that matched and were kept as is.
    pub adopted: u64,
}

/// What the API shows of the FIB (`/api/v1/fib`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibStatus {
    #[serde(flatten)]
    pub counters: FibCounters,
    pub nexthop_objects: bool,
    /// Prefixes whose next hops do not resolve right now.
    pub unresolved_prefixes: Vec<String>,
    /// Routes the kernel refused, with why; each is retried with back-off.
    #[serde(default)]
    pub failed_routes: Vec<FailedRoute>,
    pub scans: u64,
    /// Unix time drift was last repaired.
    #[serde(default)]
    pub last_repair_at: Option<u64>,
    /// The protocol number of tern's routes (`[fib] protocol`).
    #[serde(default)]
    pub protocol: u8,
    /// Routes of that protocol tern did not write (another metric): a
    /// daemon that uses the same number.
    #[serde(default)]
    pub strangers: Vec<String>,
}

/// The routing entry the kernel uses for an address (`ip route get
/// ADDRESS fibmatch`), as doctor compares it with tern's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInUse {
    pub prefix: IpNet,
    pub protocol: u8,
    pub table: u32,
    /// A local route: delivered on this host.
    pub local: bool,
}

/// A route the kernel refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRoute {
    pub prefix: String,
    pub table: u32,
    /// The kernel's answer to the last attempt.
    pub error: String,
    pub attempts: u32,
    /// Seconds until the next attempt.
    pub retry_in: u64,
}

/// A peer's live counters, bumped by its tasks without a lock.
#[derive(Debug, Default)]
pub struct Counters {
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub updates_received: AtomicU64,
    pub updates_sent: AtomicU64,
    pub notifications_received: AtomicU64,
    pub notifications_sent: AtomicU64,
    pub established: AtomicU64,
    pub updates_malformed: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn load(&self) -> MessageCounts {
        MessageCounts {
            messages_received: self.messages_received.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            updates_received: self.updates_received.load(Relaxed),
            updates_sent: self.updates_sent.load(Relaxed),
            notifications_received: self.notifications_received.load(Relaxed),
            notifications_sent: self.notifications_sent.load(Relaxed),
            established_transitions: self.established.load(Relaxed),
            updates_malformed: self.updates_malformed.load(Relaxed),
        }
    }
}

/// One peer on the board: fixed facts, counters, and the snapshot its task
/// publishes when something changes.
#[derive(Debug)]
pub struct PeerStatus {
    pub name: String,
    pub role: String,
    pub address: String,
    pub counters: Counters,
    snapshot: Mutex<(Snapshot, Instant)>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl PeerStatus {
    pub fn new(name: String, role: String, address: String) -> Self {
        PeerStatus {
            name,
            role,
            address,
            counters: Counters::default(),
            snapshot: Mutex::new((
                Snapshot {
                    since: unix_now(),
                    ..Snapshot::default()
                },
                Instant::now(),
            )),
        }
    }

    /// The snapshot and the instant of the last state change.
    pub fn snapshot(&self) -> (Snapshot, Instant) {
        self.snapshot
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Records the current state; the "since" time moves only when the
    /// session comes up or goes down, not as it moves between the states
    /// of connecting (Connect, Active, OpenSent...) on every attempt.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut guard = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        let was_up = guard.0.state == SessionState::Established;
        f(&mut guard.0);
        if (guard.0.state == SessionState::Established) != was_up {
            guard.0.since = unix_now();
            guard.1 = Instant::now();
        }
    }

    /// A peer restarted by a reload goes on counting where its previous
    /// session's status left off, and keeps its last error.
    pub fn carry_over(&self, old: &PeerStatus) {
        let (o, n) = (&old.counters, &self.counters);
        for (to, from) in [
            (&n.messages_received, &o.messages_received),
            (&n.messages_sent, &o.messages_sent),
            (&n.updates_received, &o.updates_received),
            (&n.updates_sent, &o.updates_sent),
            (&n.notifications_received, &o.notifications_received),
            (&n.notifications_sent, &o.notifications_sent),
            (&n.established, &o.established),
            (&n.updates_malformed, &o.updates_malformed),
        ] {
            to.fetch_add(from.load(Relaxed), Relaxed);
        }
        let (before, _) = old.snapshot();
        self.update(|s| {
            if s.last_error.is_none() {
                s.last_error = before.last_error;
                s.last_error_at = before.last_error_at;
            }
        });
    }

    /// Records an error that just happened.
    pub fn error(&self, error: String) {
        self.update(|s| {
            s.last_error = Some(error);
            s.last_error_at = Some(unix_now());
        });
    }

    /// The API's view, with the RIB's prefix counts.
    pub fn view(&self, prefixes: PrefixCounts) -> PeerView {
        let (snapshot, since) = self.snapshot();
        PeerView {
            name: self.name.clone(),
            role: self.role.clone(),
            address: self.address.clone(),
            snapshot,
            uptime: since.elapsed().as_secs(),
            prefixes,
            messages: self.counters.load(),
        }
    }
}

/// Reloads so far and how the last one went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    pub succeeded: u64,
    pub failed: u64,
    /// Unix time of the last reload, and whether it applied.
    pub last_at: Option<u64>,
    pub last_ok: Option<bool>,
}

/// Every peer's status, plus process-wide facts.
#[derive(Debug, Default)]
pub struct StatusBoard {
    peers: RwLock<BTreeMap<String, Arc<PeerStatus>>>,
    reloads: Mutex<ReloadStatus>,
    /// Connections refused because their source is not a configured peer.
    pub rejected_connections: AtomicU64,
    /// Listeners are bound and the configuration is loaded.
    pub ready: AtomicBool,
}

impl StatusBoard {
    /// The configuration was loaded at start: the last load succeeded,
    /// now (no reload counted).
    pub fn loaded(&self) {
        let mut r = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        r.last_at = Some(unix_now());
        r.last_ok = Some(true);
    }

    /// Counts a reload and remembers when it was and how it went.
    pub fn reloaded(&self, ok: bool) {
        let mut r = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            r.succeeded += 1;
        } else {
            r.failed += 1;
        }
        r.last_at = Some(unix_now());
        r.last_ok = Some(ok);
    }

    pub fn reloads(&self) -> ReloadStatus {
        self.reloads.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn insert(&self, status: Arc<PeerStatus>) {
        if let Ok(mut peers) = self.peers.write() {
            peers.insert(status.name.clone(), status);
        }
    }

    pub fn remove(&self, name: &str) {
        if let Ok(mut peers) = self.peers.write() {
            peers.remove(name);
        }
    }

    pub fn peers(&self) -> Vec<Arc<PeerStatus>> {
        self.peers
            .read()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn peer(&self, name: &str) -> Option<Arc<PeerStatus>> {
        self.peers.read().ok().and_then(|p| p.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FOR counts from the last up or down, not from each connect attempt;
    /// the last error keeps its time after the session recovers.
    #[test]
    fn since_moves_on_up_and_down_only() {
        let status = PeerStatus::new("upstream".into(), "upstream".into(), "fd00::1".into());
        let first = status.snapshot().1;
        std::thread::sleep(std::time::Duration::from_millis(5));
        for state in [
            SessionState::Connect,
            SessionState::Active,
            SessionState::OpenSent,
        ] {
            status.update(|s| s.state = state);
        }
        assert_eq!(status.snapshot().1, first, "connecting is no change");
        status.error("connect to [fd00::1]:179: Connection refused".into());
        let (snap, _) = status.snapshot();
        assert!(snap.last_error_at.is_some());
        status.update(|s| s.state = SessionState::Established);
        let (snap, up_at) = status.snapshot();
        assert!(up_at > first, "coming up is a change");
        assert_eq!(
            snap.last_error.as_deref(),
            Some("connect to [fd00::1]:179: Connection refused"),
            "the last error stays after recovery"
        );
    }

    /// What the API writes, the CLI reads back as the same value.
    #[test]
    fn peer_views_survive_json() {
        let status = PeerStatus::new("upstream".into(), "upstream".into(), "fd00:101::fffe".into());
        status.update(|s| {
            s.state = SessionState::Established;
            s.remote_address = Some("[fd00:101::fffe]:179".into());
        });
        Counters::add(&status.counters.updates_received, 3);
        let view = status.view(PrefixCounts {
            received: 5,
            accepted: 4,
            filtered: 1,
            advertised: 2,
            ..PrefixCounts::default()
        });
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["state"], "established");
        assert_eq!(json["updates_received"], 3);
        assert_eq!(json["prefixes"]["accepted"], 4);
        let back: PeerView = serde_json::from_value(json).unwrap();
        assert_eq!(back, view);
    }
}
