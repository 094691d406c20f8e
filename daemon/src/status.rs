//! What operators see of each peer: state, negotiated capabilities, last
//! error and counters. Peer tasks publish here on state changes (a short
//! lock, never on the per-route path) and bump atomic counters; the API and
//! metrics read it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::session::negotiate::Negotiated;
use crate::session::peer::PeerState;

#[derive(Debug, Default)]
pub struct Counters {
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub updates_received: AtomicU64,
    pub updates_sent: AtomicU64,
    pub notifications_received: AtomicU64,
    pub notifications_sent: AtomicU64,
    /// Times the session reached Established.
    pub established: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct NegotiatedView {
    pub peer_asn: u32,
    pub peer_router_id: String,
    pub hold_time: u16,
    pub keepalive: u64,
    pub families: Vec<String>,
    pub four_octet_as: bool,
    pub extended_next_hop: bool,
    pub extended_message: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub graceful_restart: Option<GracefulRestartView>,
    pub peer_hostname: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GracefulRestartView {
    pub restart_time: u16,
    pub notification: bool,
    pub peer_restarting: bool,
    pub families: Vec<String>,
}

impl From<&Negotiated> for NegotiatedView {
    fn from(n: &Negotiated) -> Self {
        NegotiatedView {
            peer_asn: n.peer_asn,
            peer_router_id: n.peer_id.to_string(),
            hold_time: n.hold_time,
            keepalive: n.keepalive.as_secs(),
            families: n.families.iter().map(ToString::to_string).collect(),
            four_octet_as: n.four_octet_as,
            extended_next_hop: n.extended_next_hop,
            extended_message: n.extended_message,
            route_refresh: n.route_refresh,
            enhanced_route_refresh: n.enhanced_route_refresh,
            graceful_restart: n.graceful_restart.as_ref().map(|gr| GracefulRestartView {
                restart_time: gr.restart_time,
                notification: gr.notification,
                peer_restarting: gr.restarting,
                families: gr.families.iter().map(|(f, _)| f.to_string()).collect(),
            }),
            peer_hostname: n.peer_hostname.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub state: &'static str,
    /// Unix time of the last state change.
    pub since: u64,
    pub local_address: Option<String>,
    pub remote_address: Option<String>,
    pub last_error: Option<String>,
    pub negotiated: Option<NegotiatedView>,
}

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
                    state: PeerState::Idle.name(),
                    since: unix_now(),
                    local_address: None,
                    remote_address: None,
                    last_error: None,
                    negotiated: None,
                },
                Instant::now(),
            )),
        }
    }

    pub fn snapshot(&self) -> (Snapshot, Instant) {
        self.snapshot
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Records the current state; the "since" time moves only when the
    /// state changes.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut guard = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        let before = guard.0.state;
        f(&mut guard.0);
        if guard.0.state != before {
            guard.0.since = unix_now();
            guard.1 = Instant::now();
        }
    }
}

/// Every peer's status, plus process-wide facts.
#[derive(Debug, Default)]
pub struct StatusBoard {
    peers: RwLock<BTreeMap<String, Arc<PeerStatus>>>,
    /// Connections refused because their source is not a configured peer.
    pub rejected_connections: AtomicU64,
    /// Listeners are bound and the configuration is loaded.
    pub ready: AtomicBool,
}

impl StatusBoard {
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
