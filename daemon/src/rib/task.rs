//! The tokio task that owns the [`Rib`]: it receives events from peer
//! tasks and requests from the supervisor, the API and the watchdog (on a
//! queue of their own, served first), runs its timers, and hands outbound
//! batches to peer tasks and Loc-RIB changes to the FIB.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::{Family, Notification, RouteRefresh, Update};
use bytes::Bytes;
use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{AdjSide, LocRibChange, PeerId, PeerSetup, Rib, RibOutput, RouteFilter, SessionInfo};
use crate::status::{AdjRouteView, FamilyCounts, PrefixCounts, RibSummary, RouteView};
use crate::{clock, memory};

/// What peer tasks tell the RIB: sessions, UPDATEs, refreshes, writes.
/// Bounded, so a busy RIB slows the peers' reading rather than growing a
/// queue.
pub enum RibEvent {
    PeerUp {
        id: PeerId,
        session: Box<SessionInfo>,
    },
    PeerDown {
        id: PeerId,
        keep_routes: Option<Duration>,
    },
    Update {
        id: PeerId,
        update: Box<Update>,
    },
    RouteRefresh {
        id: PeerId,
        refresh: RouteRefresh,
    },
    /// The last batch handed to this peer is written.
    Written(PeerId),
}

/// What the supervisor, the API and the watchdog ask of the RIB. A queue of
/// its own, served before [`RibEvent`]s: a reload, a status query or the
/// watchdog never waits behind a full table of UPDATEs, only behind the
/// one event being processed.
pub enum RibRequest {
    AddPeer {
        setup: PeerSetup,
        to_peer: mpsc::UnboundedSender<RibToPeer>,
        reply: oneshot::Sender<PeerId>,
    },
    RemovePeer(PeerId),
    /// New policies or settings; the reply lists families to ask the peer
    /// to refresh (no soft reconfiguration).
    UpdatePeer {
        id: PeerId,
        setup: PeerSetup,
        reply: oneshot::Sender<Vec<Family>>,
    },
    SetOriginate(Vec<IpNet>),
    /// Drain (with the prepend count towards external peers) or undrain.
    Drain(Option<u8>),
    /// The gates of the health checks failing now.
    HealthGates(Vec<crate::config::Gate>),
    /// The supervisor added every configured peer.
    PeersConfigured,
    Routes(RouteFilter, oneshot::Sender<Vec<RouteView>>),
    Summary(oneshot::Sender<RibSummary>),
    Counts(oneshot::Sender<HashMap<String, PrefixCounts>>),
    /// One peer's counts per family; None if there is no such peer.
    FamilyCounts(String, oneshot::Sender<Option<Vec<FamilyCounts>>>),
    /// One peer's Adj-RIB-In or Adj-RIB-Out; None if there is no such
    /// peer.
    AdjRib {
        peer: String,
        side: AdjSide,
        filter: RouteFilter,
        reply: oneshot::Sender<Option<Vec<AdjRouteView>>>,
    },
    /// What the FIB was told of these prefixes: their current selection.
    Selections(Vec<IpNet>, oneshot::Sender<Vec<LocRibChange>>),
    /// The watchdog: answered when the task's loop turns.
    Ping(oneshot::Sender<()>),
}

/// The RIB task's two queues.
#[derive(Clone)]
pub struct RibHandle {
    pub events: mpsc::Sender<RibEvent>,
    pub requests: mpsc::Sender<RibRequest>,
}

impl RibHandle {
    /// Asks the RIB, giving up after `timeout` (a stuck RIB must not hang
    /// the asker).
    pub async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> RibRequest,
        timeout: Duration,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(make(tx)).await.ok()?;
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }
}

/// What the RIB asks of a peer task. Unbounded: the RIB keeps at most one
/// batch in flight per peer, so this never grows beyond a few entries.
#[derive(Debug)]
pub enum RibToPeer {
    Send(Bytes),
    /// End the session with this NOTIFICATION; stay down this long.
    Reset(Notification, Option<Duration>),
}

/// Bound of the event queue from peer tasks.
pub const RIB_QUEUE: usize = 256;
/// Bound of the request queue.
pub const REQUEST_QUEUE: usize = 64;

/// What the RIB tells the FIB.
#[derive(Debug)]
pub enum FibInput {
    /// The changes of one RIB event, in order. Sent together, not one by
    /// one: each holds references to shared attributes and names, which
    /// the RIB takes and the FIB gives back; a batch moves their counters
    /// between the two cores once, not once a route.
    Changes(Vec<LocRibChange>),
    Converged,
}

pub fn spawn(rib: Rib, fib: Option<mpsc::UnboundedSender<FibInput>>) -> (RibHandle, JoinHandle<()>) {
    let (events, events_rx) = mpsc::channel(RIB_QUEUE);
    let (requests, requests_rx) = mpsc::channel(REQUEST_QUEUE);
    let join = tokio::spawn(run(rib, events_rx, requests_rx, fib));
    (RibHandle { events, requests }, join)
}

type PeerChannels = HashMap<PeerId, (Arc<str>, mpsc::UnboundedSender<RibToPeer>)>;

async fn run(
    mut rib: Rib,
    mut events: mpsc::Receiver<RibEvent>,
    mut requests: mpsc::Receiver<RibRequest>,
    fib: Option<mpsc::UnboundedSender<FibInput>>,
) {
    let mut peers: PeerChannels = HashMap::new();
    let mut requests_open = true;
    loop {
        let deadline = rib.next_deadline();
        let out = tokio::select! {
            biased;
            req = requests.recv(), if requests_open => match req {
                Some(req) => request(&mut rib, &mut peers, req),
                None => {
                    requests_open = false;
                    continue;
                }
            },
            ev = events.recv() => match ev {
                Some(ev) => event(&mut rib, ev, Instant::now()),
                None => return,
            },
            _ = clock::sleep_until(deadline) => rib.on_timer(Instant::now()),
        };
        dispatch(out, &peers, &fib);
        // Between bursts, give back what the last one no longer needs.
        if events.is_empty() && rib.release_unused() {
            memory::trim();
        }
    }
}

fn event(rib: &mut Rib, event: RibEvent, now: Instant) -> Vec<RibOutput> {
    match event {
        RibEvent::PeerUp { id, session } => rib.peer_up(id, *session, now),
        RibEvent::PeerDown { id, keep_routes } => rib.peer_down(id, keep_routes, now),
        RibEvent::Update { id, update } => rib.update(id, *update),
        RibEvent::RouteRefresh { id, refresh } => rib.route_refresh(id, refresh),
        RibEvent::Written(id) => rib.written(id),
    }
}

fn request(rib: &mut Rib, peers: &mut PeerChannels, request: RibRequest) -> Vec<RibOutput> {
    match request {
        RibRequest::AddPeer {
            setup,
            to_peer,
            reply,
        } => {
            let name = setup.name.clone();
            let id = rib.add_peer(setup);
            peers.insert(id, (name, to_peer));
            let _ = reply.send(id);
            Vec::new()
        }
        RibRequest::RemovePeer(id) => {
            peers.remove(&id);
            rib.remove_peer(id)
        }
        RibRequest::UpdatePeer { id, setup, reply } => {
            let (out, refresh) = rib.update_peer(id, setup);
            let _ = reply.send(refresh);
            out
        }
        RibRequest::SetOriginate(prefixes) => rib.set_originate(prefixes),
        RibRequest::Drain(drain) => rib.set_drain(drain),
        RibRequest::HealthGates(gates) => rib.set_health_gates(gates),
        RibRequest::PeersConfigured => rib.peers_configured(),
        RibRequest::Routes(filter, reply) => {
            let _ = reply.send(rib.routes(&filter));
            Vec::new()
        }
        RibRequest::Summary(reply) => {
            let _ = reply.send(rib.summary());
            Vec::new()
        }
        RibRequest::Counts(reply) => {
            let counts = peers
                .iter()
                .map(|(id, (name, _))| (name.to_string(), rib.counts(*id)))
                .collect();
            let _ = reply.send(counts);
            Vec::new()
        }
        RibRequest::FamilyCounts(peer, reply) => {
            let _ = reply.send(rib.peer_named(&peer).map(|id| rib.family_counts(id)));
            Vec::new()
        }
        RibRequest::AdjRib {
            peer,
            side,
            filter,
            reply,
        } => {
            let _ = reply.send(rib.adj_rib(&peer, side, &filter));
            Vec::new()
        }
        RibRequest::Selections(prefixes, reply) => {
            let changes = prefixes
                .into_iter()
                .map(|prefix| LocRibChange {
                    prefix,
                    selected: rib.selected(&prefix),
                })
                .collect();
            let _ = reply.send(changes);
            Vec::new()
        }
        RibRequest::Ping(reply) => {
            let _ = reply.send(());
            Vec::new()
        }
    }
}

fn dispatch(out: Vec<RibOutput>, peers: &PeerChannels, fib: &Option<mpsc::UnboundedSender<FibInput>>) {
    let mut changes = Vec::new();
    let send_changes = |changes: &mut Vec<LocRibChange>| {
        if let Some(fib) = fib
            && !changes.is_empty()
        {
            let _ = fib.send(FibInput::Changes(std::mem::take(changes)));
        }
    };
    for o in out {
        match o {
            RibOutput::Send(id, bytes) => {
                if let Some((_, tx)) = peers.get(&id) {
                    let _ = tx.send(RibToPeer::Send(bytes));
                }
            }
            RibOutput::Reset(id, n, hold_down) => {
                if let Some((_, tx)) = peers.get(&id) {
                    let _ = tx.send(RibToPeer::Reset(n, hold_down));
                }
            }
            RibOutput::LocRib(change) => changes.push(change),
            RibOutput::Converged => {
                tracing::info!("routing converged after start");
                send_changes(&mut changes);
                if let Some(fib) = fib {
                    let _ = fib.send(FibInput::Converged);
                }
            }
        }
    }
    send_changes(&mut changes);
}
