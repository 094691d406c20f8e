//! The tokio task that owns the [`Rib`]: it receives events from peer
//! tasks and the supervisor, runs its timers, and hands outbound batches
//! to peer tasks and Loc-RIB changes to the FIB.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::{Family, Notification, RouteRefresh, Update};
use bytes::Bytes;
use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{LocRibChange, PeerId, PeerSetup, Rib, RibOutput, RouteFilter, SessionInfo};
use crate::status::{PrefixCounts, RibSummary, RouteView};

/// Events for the RIB. Peer tasks send on a bounded channel, so a busy RIB
/// slows their reading rather than growing queues.
pub enum RibEvent {
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
    SetOriginate(Vec<IpNet>),
    /// The supervisor added every configured peer.
    PeersConfigured,
    Routes(RouteFilter, oneshot::Sender<Vec<RouteView>>),
    Summary(oneshot::Sender<RibSummary>),
    Counts(oneshot::Sender<HashMap<String, PrefixCounts>>),
}

/// What the RIB asks of a peer task. Unbounded: the RIB keeps at most one
/// batch in flight per peer, so this never grows beyond a few entries.
#[derive(Debug)]
pub enum RibToPeer {
    Send(Bytes),
    Reset(Notification),
}

pub const RIB_QUEUE: usize = 256;

/// What the RIB tells the FIB.
#[derive(Debug)]
pub enum FibInput {
    Change(LocRibChange),
    Converged,
}

pub fn spawn(
    rib: Rib,
    fib: Option<mpsc::UnboundedSender<FibInput>>,
) -> (mpsc::Sender<RibEvent>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(RIB_QUEUE);
    let join = tokio::spawn(run(rib, rx, fib));
    (tx, join)
}

async fn run(mut rib: Rib, mut rx: mpsc::Receiver<RibEvent>, fib: Option<mpsc::UnboundedSender<FibInput>>) {
    let mut peers: HashMap<PeerId, (Arc<str>, mpsc::UnboundedSender<RibToPeer>)> = HashMap::new();
    loop {
        let deadline = rib.next_deadline().map(tokio::time::Instant::from_std);
        let event = tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => ev,
                None => return,
            },
            _ = sleep_until(deadline) => {
                let out = rib.on_timer(Instant::now());
                dispatch(out, &peers, &fib);
                continue;
            }
        };
        let now = Instant::now();
        let out = match event {
            RibEvent::AddPeer {
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
            RibEvent::RemovePeer(id) => {
                peers.remove(&id);
                rib.remove_peer(id)
            }
            RibEvent::UpdatePeer { id, setup, reply } => {
                let (out, refresh) = rib.update_peer(id, setup);
                let _ = reply.send(refresh);
                out
            }
            RibEvent::PeerUp { id, session } => rib.peer_up(id, *session, now),
            RibEvent::PeerDown { id, keep_routes } => rib.peer_down(id, keep_routes, now),
            RibEvent::Update { id, update } => rib.update(id, *update),
            RibEvent::RouteRefresh { id, refresh } => rib.route_refresh(id, refresh),
            RibEvent::Written(id) => rib.written(id),
            RibEvent::SetOriginate(prefixes) => rib.set_originate(prefixes),
            RibEvent::PeersConfigured => rib.peers_configured(),
            RibEvent::Routes(filter, reply) => {
                let _ = reply.send(rib.routes(&filter));
                Vec::new()
            }
            RibEvent::Summary(reply) => {
                let _ = reply.send(rib.summary());
                Vec::new()
            }
            RibEvent::Counts(reply) => {
                let counts = peers
                    .iter()
                    .map(|(id, (name, _))| (name.to_string(), rib.counts(*id)))
                    .collect();
                let _ = reply.send(counts);
                Vec::new()
            }
        };
        dispatch(out, &peers, &fib);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn dispatch(
    out: Vec<RibOutput>,
    peers: &HashMap<PeerId, (Arc<str>, mpsc::UnboundedSender<RibToPeer>)>,
    fib: &Option<mpsc::UnboundedSender<FibInput>>,
) {
    for o in out {
        match o {
            RibOutput::Send(id, bytes) => {
                if let Some((_, tx)) = peers.get(&id) {
                    let _ = tx.send(RibToPeer::Send(bytes));
                }
            }
            RibOutput::Reset(id, n) => {
                if let Some((_, tx)) = peers.get(&id) {
                    let _ = tx.send(RibToPeer::Reset(n));
                }
            }
            RibOutput::LocRib(change) => {
                if let Some(fib) = fib {
                    let _ = fib.send(FibInput::Change(change));
                }
            }
            RibOutput::Converged => {
                tracing::info!("routing converged after start");
                if let Some(fib) = fib {
                    let _ = fib.send(FibInput::Converged);
                }
            }
        }
    }
}
