//! The tokio task of one peer: it owns the peer's [`Peer`] state machine
//! and its TCP connections, turns bytes into messages with the negotiated
//! codec context, and reports sessions and UPDATEs to the RIB.
//!
//! Each connection has a reader task (framing only) and a writer task, so
//! this task never blocks on a socket: a peer that stops reading cannot
//! stop us from reading it (the classic BGP write-write deadlock).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bgp_proto::message::{MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN};
use bgp_proto::route_refresh::RouteRefresh;
use bgp_proto::{Context, Family, Message, Notification, frame_len};
use bytes::{Bytes, BytesMut};
use ipnet::IpNet;
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::fsm::CloseReason;
use super::negotiate::Offer;
use super::peer::{ConnId, Peer, PeerOutput, PeerState, Timing};
use super::socket::{self, SocketOptions};
use crate::clock;
use crate::rib::task::{RibEvent, RibToPeer};
use crate::rib::{PeerId, SessionInfo};
use crate::status::{Counters, PeerStatus, SessionState};

/// Events from the network side: bounded, so reading stops while we are
/// busy.
pub enum PeerEvent {
    Incoming(TcpStream),
    Dialled(u64, io::Result<TcpStream>),
    Frame(ConnId, u64, Bytes),
    ReadClosed(ConnId, u64, Option<io::Error>),
}

/// Orders from the supervisor.
pub enum PeerControl {
    /// New settings for the next connection (policies go to the RIB).
    Reconfigure(Box<Settings>),
    /// Ask the peer to re-send its routes (RFC 2918).
    Refresh(Vec<Family>),
    /// End every connection with this NOTIFICATION and stop.
    Stop(Notification),
    /// The peer's BFD session went Down: end the session at once with
    /// Cease / BFD Down (RFC 9384), as a Hard Reset (RFC 8538) when both
    /// sides sent the N bit, so its routes go now rather than linger as
    /// stale.
    BfdDown,
    /// The daemon is exiting. With graceful restart the connections are
    /// closed without NOTIFICATION, so peers keep our routes (RFC 4724).
    Shutdown { graceful: bool },
}

/// How this peer's connections are made.
#[derive(Clone, Debug)]
pub struct Settings {
    pub name: String,
    /// For an unnumbered peer, the router found on its link (with the
    /// link as scope), or the unspecified address until one is.
    pub remote: SocketAddr,
    /// The link of an unnumbered peer.
    pub interface: Option<String>,
    pub local_address: Option<IpAddr>,
    pub offer: Offer,
    pub timing: Timing,
    pub socket: SocketOptions,
    pub md5: Option<Vec<u8>>,
    /// Graceful restart is on for this peer: a session end keeps its
    /// routes when the peer agreed to it.
    pub graceful_restart: bool,
    /// Without graceful restart, keep its routes this long when the session
    /// ends from its side.
    pub restart_hold: Option<Duration>,
}

pub struct PeerHandle {
    pub events: mpsc::Sender<PeerEvent>,
    pub control: mpsc::UnboundedSender<PeerControl>,
    pub join: JoinHandle<()>,
}

const EVENT_QUEUE: usize = 64;

pub fn spawn(
    id: PeerId,
    settings: Settings,
    status: Arc<PeerStatus>,
    rib: mpsc::Sender<RibEvent>,
    from_rib: mpsc::UnboundedReceiver<RibToPeer>,
    seed: u64,
) -> PeerHandle {
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    let (control, control_rx) = mpsc::unbounded_channel();
    let fsm = Peer::new(settings.offer.clone(), settings.timing.clone(), seed);
    let task = PeerTask {
        id,
        settings,
        fsm,
        events,
        events_tx: events_tx.clone(),
        control: control_rx,
        from_rib,
        rib,
        status,
        conns: [None, None, None],
        seq: 0,
        dial_seq: 0,
        published: None,
        connect_error: None,
    };
    let join = tokio::spawn(task.run());
    PeerHandle {
        events: events_tx,
        control,
        join,
    }
}

enum WriterMsg {
    Bytes(Bytes),
    /// A RIB batch: the RIB hears when it is written.
    Batch(Bytes),
    Close,
}

struct ConnIo {
    seq: u64,
    writer: mpsc::UnboundedSender<WriterMsg>,
    reader: JoinHandle<()>,
    max_len: Arc<AtomicUsize>,
    ctx: Context,
    local: SocketAddr,
    remote: SocketAddr,
}

struct PeerTask {
    id: PeerId,
    settings: Settings,
    fsm: Peer,
    events: mpsc::Receiver<PeerEvent>,
    events_tx: mpsc::Sender<PeerEvent>,
    control: mpsc::UnboundedReceiver<PeerControl>,
    from_rib: mpsc::UnboundedReceiver<RibToPeer>,
    rib: mpsc::Sender<RibEvent>,
    status: Arc<PeerStatus>,
    conns: [Option<ConnIo>; 3],
    seq: u64,
    dial_seq: u64,
    published: Option<Published>,
    /// The last dial's failure, to log a failure once, not every retry.
    connect_error: Option<String>,
}

/// What was last published on the status board.
struct Published {
    state: PeerState,
    /// The established connection, by sequence number.
    conn: Option<u64>,
    error: Option<CloseReason>,
}

impl PeerTask {
    async fn run(mut self) {
        let out = self.fsm.start(Instant::now());
        self.apply(out).await;
        self.publish();
        loop {
            let deadline = self.fsm.next_deadline();
            tokio::select! {
                Some(ev) = self.events.recv() => self.on_event(ev).await,
                Some(cmd) = self.from_rib.recv() => self.on_rib(cmd).await,
                ctl = self.control.recv() => match ctl {
                    Some(ctl) => if self.on_control(ctl).await { return },
                    None => return,
                },
                _ = clock::sleep_until(deadline) => {
                    let out = self.fsm.on_timer(Instant::now());
                    self.apply(out).await;
                }
            }
            self.publish();
        }
    }

    /// Publishes the session's state on the status board when it changed
    /// since the last time: per message this is a few comparisons, no lock
    /// and no allocation.
    fn publish(&mut self) {
        let state = self.fsm.state();
        let conn = self
            .fsm
            .established_conn()
            .and_then(|id| self.conns[id.slot()].as_ref());
        let seq = conn.map(|c| c.seq);
        let unchanged = self
            .published
            .as_ref()
            .is_some_and(|p| p.state == state && p.conn == seq && p.error.as_ref() == self.fsm.last_error());
        if unchanged {
            return;
        }
        let new_error = self
            .published
            .as_ref()
            .is_none_or(|p| p.error.as_ref() != self.fsm.last_error());
        self.published = Some(Published {
            state,
            conn: seq,
            error: self.fsm.last_error().cloned(),
        });
        let negotiated = self.fsm.negotiated().cloned();
        self.status.update(|s| {
            s.state = state.into();
            s.local_address = conn.map(|c| c.local.to_string());
            s.remote_address = conn.map(|c| c.remote.to_string());
            s.negotiated = negotiated;
        });
        if let Some(e) = self.fsm.last_error().filter(|_| new_error) {
            self.status.error(e.to_string());
        }
    }

    async fn on_event(&mut self, ev: PeerEvent) {
        let now = Instant::now();
        match ev {
            PeerEvent::Incoming(stream) => {
                if self.fsm.state() == PeerState::Idle {
                    return;
                }
                let Ok(remote) = stream.peer_addr() else { return };
                if let Err(e) = self
                    .settings
                    .socket
                    .apply(SockRef::from(&stream), remote.is_ipv6())
                {
                    tracing::warn!(peer = %self.settings.name, error = %e, "cannot set socket options");
                }
                match self.fsm.on_incoming(now) {
                    Some((id, out)) => {
                        let io = self.connection(id, stream);
                        // A connection of the peer's that never sent its
                        // OPEN makes room for the new one.
                        if let Some(p) = self.conns[id.slot()].replace(io) {
                            tracing::info!(peer = %self.settings.name, %remote, "a new connection from the peer replaces one that sent no OPEN");
                            p.reader.abort();
                            let _ = p.writer.send(WriterMsg::Close);
                        }
                        tracing::debug!(peer = %self.settings.name, %remote, "accepted connection");
                        self.apply(out).await;
                    }
                    None => {
                        tracing::debug!(peer = %self.settings.name, %remote, "connection refused: the peer is stopped or already has connections");
                        drop(stream);
                    }
                }
            }
            PeerEvent::Dialled(seq, result) => {
                if seq != self.dial_seq {
                    return;
                }
                match result {
                    Ok(stream) => {
                        self.connect_error = None;
                        let io = self.connection(ConnId::Outgoing, stream);
                        if let Some(old) = self.conns[0].replace(io) {
                            old.reader.abort();
                        }
                        let out = self.fsm.on_connected(now);
                        self.apply(out).await;
                    }
                    Err(e) => {
                        // Said once when dialling starts to fail or fails
                        // differently; the retries that fail alike are
                        // debug.
                        let error = if e.kind() == io::ErrorKind::NotFound {
                            e.to_string()
                        } else {
                            format!("connect to {}: {e}", self.settings.remote)
                        };
                        if self.connect_error.as_ref() != Some(&error) {
                            tracing::info!(peer = %self.settings.name, %error, "cannot connect; retrying");
                        } else {
                            tracing::debug!(peer = %self.settings.name, %error, "connect failed");
                        }
                        self.connect_error = Some(error.clone());
                        self.status.error(error);
                        self.fsm.on_connect_failed(now);
                    }
                }
            }
            PeerEvent::Frame(id, seq, frame) => {
                let Some(conn) = self.conns[id.slot()].as_ref().filter(|c| c.seq == seq) else {
                    return;
                };
                Counters::add(&self.status.counters.messages_received, 1);
                let out = match Message::decode(&frame, &conn.ctx) {
                    Ok(msg) => {
                        match &msg {
                            Message::Update(u) => {
                                Counters::add(&self.status.counters.updates_received, 1);
                                // RFC 7606: handled (treat-as-withdraw,
                                // attribute discard), but worth knowing.
                                if !u.errors.is_empty() {
                                    Counters::add(&self.status.counters.updates_malformed, 1);
                                }
                            }
                            Message::Notification(_) => {
                                Counters::add(&self.status.counters.notifications_received, 1)
                            }
                            _ => {}
                        }
                        self.fsm.on_message(id, msg, now)
                    }
                    Err(e) => {
                        tracing::warn!(peer = %self.settings.name, error = %e, "malformed message");
                        self.fsm.on_decode_error(id, e, now)
                    }
                };
                self.apply(out).await;
            }
            PeerEvent::ReadClosed(id, seq, err) => {
                if self.conns[id.slot()].as_ref().is_none_or(|c| c.seq != seq) {
                    return;
                }
                if let Some(e) = err {
                    tracing::debug!(peer = %self.settings.name, error = %e, "read failed");
                }
                let out = self.fsm.on_tcp_closed(id, now);
                self.apply(out).await;
            }
        }
    }

    async fn on_rib(&mut self, cmd: RibToPeer) {
        match cmd {
            RibToPeer::Send(bytes) => {
                let conn = self
                    .fsm
                    .established_conn()
                    .and_then(|id| self.conns[id.slot()].as_ref());
                match conn {
                    Some(c) => {
                        let _ = c.writer.send(WriterMsg::Batch(bytes));
                    }
                    None => {
                        let _ = self.rib.send(RibEvent::Written(self.id)).await;
                    }
                }
            }
            RibToPeer::Reset(n, hold_down) => {
                tracing::warn!(peer = %self.settings.name, notification = %n, "resetting session");
                let out = self.fsm.reset(n, Instant::now(), hold_down);
                self.apply(out).await;
            }
        }
    }

    /// Returns true when the task must end.
    async fn on_control(&mut self, ctl: PeerControl) -> bool {
        match ctl {
            PeerControl::Reconfigure(settings) => {
                self.fsm
                    .set_offer(settings.offer.clone(), settings.timing.clone());
                self.settings = *settings;
                false
            }
            PeerControl::Refresh(families) => {
                let Some(id) = self.fsm.established_conn() else {
                    return false;
                };
                let can = self.fsm.negotiated().is_some_and(|n| n.route_refresh);
                if let Some(c) = self.conns[id.slot()].as_ref().filter(|_| can) {
                    for f in families {
                        let mut buf = BytesMut::new();
                        if Message::RouteRefresh(RouteRefresh::request(f))
                            .encode(&c.ctx, &mut buf)
                            .is_ok()
                        {
                            let _ = c.writer.send(WriterMsg::Bytes(buf.freeze()));
                        }
                    }
                }
                false
            }
            PeerControl::BfdDown => {
                let Some(negotiated) = self.fsm.negotiated() else {
                    return false;
                };
                let cease = Notification::cease(bgp_proto::notification::CeaseSubcode::BfdDown);
                let n_bit = negotiated
                    .graceful_restart
                    .as_ref()
                    .is_some_and(|gr| gr.notification);
                let n = if n_bit {
                    Notification::hard_reset(&cease)
                } else {
                    cease
                };
                tracing::warn!(peer = %self.settings.name, "BFD session down: ending the BGP session");
                let out = self.fsm.reset(n, Instant::now(), None);
                self.apply(out).await;
                false
            }
            PeerControl::Stop(n) => {
                let out = self.fsm.stop(n, Instant::now());
                self.apply(out).await;
                self.status.update(|s| s.state = SessionState::Idle);
                true
            }
            PeerControl::Shutdown { graceful } => {
                if graceful {
                    for c in self.conns.iter_mut().filter_map(Option::take) {
                        c.reader.abort();
                        let _ = c.writer.send(WriterMsg::Close);
                    }
                } else {
                    let out = self.fsm.stop(
                        Notification::cease(bgp_proto::notification::CeaseSubcode::AdministrativeShutdown),
                        Instant::now(),
                    );
                    self.apply(out).await;
                }
                true
            }
        }
    }

    fn connection(&mut self, id: ConnId, stream: TcpStream) -> ConnIo {
        self.seq += 1;
        let seq = self.seq;
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let remote = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let max_len = Arc::new(AtomicUsize::new(MAX_MESSAGE_LEN));
        let reader = tokio::spawn(read_frames(rd, id, seq, max_len.clone(), self.events_tx.clone()));
        let (writer, writer_rx) = mpsc::unbounded_channel();
        tokio::spawn(write_messages(
            wr,
            writer_rx,
            self.rib.clone(),
            self.id,
            self.status.clone(),
        ));
        ConnIo {
            seq,
            writer,
            reader,
            max_len,
            ctx: Context::default(),
            local: canonical(local),
            remote: canonical(remote),
        }
    }

    async fn apply(&mut self, outputs: Vec<PeerOutput>) {
        for o in outputs {
            match o {
                PeerOutput::Connect => self.dial(),
                PeerOutput::Send(id, msg) => {
                    let Some(c) = self.conns[id.slot()].as_ref() else {
                        continue;
                    };
                    let mut buf = BytesMut::new();
                    if let Err(e) = msg.encode(&c.ctx, &mut buf) {
                        tracing::error!(peer = %self.settings.name, error = %e, "cannot encode message");
                        continue;
                    }
                    if let Message::Notification(n) = &msg {
                        Counters::add(&self.status.counters.notifications_sent, 1);
                        tracing::info!(peer = %self.settings.name, notification = %n, "sending NOTIFICATION");
                    }
                    let _ = c.writer.send(WriterMsg::Bytes(buf.freeze()));
                }
                PeerOutput::Close(id) => {
                    if let Some(c) = self.conns[id.slot()].take() {
                        c.reader.abort();
                        let _ = c.writer.send(WriterMsg::Close);
                    }
                }
                PeerOutput::Established(id, negotiated) => {
                    let Some(c) = self.conns[id.slot()].as_mut() else {
                        continue;
                    };
                    c.ctx = negotiated.rx;
                    if negotiated.extended_message {
                        c.max_len.store(MAX_EXTENDED_MESSAGE_LEN, Relaxed);
                    }
                    Counters::add(&self.status.counters.established, 1);
                    tracing::info!(
                        peer = %self.settings.name,
                        remote = %c.remote,
                        asn = negotiated.peer_asn,
                        families = ?negotiated.families.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        graceful_restart = negotiated.graceful_restart.is_some(),
                        "session established"
                    );
                    let session = SessionInfo {
                        negotiated: *negotiated,
                        local_address: c.local.ip(),
                        remote_address: c.remote.ip(),
                        ifindex: link_of(c.remote),
                    };
                    let _ = self
                        .rib
                        .send(RibEvent::PeerUp {
                            id: self.id,
                            session: Box::new(session),
                        })
                        .await;
                }
                PeerOutput::Update(update) => {
                    let _ = self
                        .rib
                        .send(RibEvent::Update {
                            id: self.id,
                            update: Box::new(update),
                        })
                        .await;
                }
                PeerOutput::RouteRefresh(refresh) => {
                    let _ = self
                        .rib
                        .send(RibEvent::RouteRefresh { id: self.id, refresh })
                        .await;
                }
                PeerOutput::Down { reason, negotiated } => {
                    let keep = reason
                        .stale_time(&negotiated, self.settings.graceful_restart)
                        .or(self.settings.restart_hold.filter(|_| reason.from_peer_side()));
                    tracing::info!(
                        peer = %self.settings.name,
                        reason = %reason,
                        routes_kept = keep.is_some(),
                        "session down"
                    );
                    self.status.error(reason.to_string());
                    let _ = self
                        .rib
                        .send(RibEvent::PeerDown {
                            id: self.id,
                            keep_routes: keep,
                        })
                        .await;
                }
            }
        }
    }

    fn dial(&mut self) {
        self.dial_seq += 1;
        let seq = self.dial_seq;
        let s = &self.settings;
        let (remote, local, opts, md5) = (s.remote, s.local_address, s.socket.clone(), s.md5.clone());
        let tx = self.events_tx.clone();
        if let (Some(interface), true) = (&s.interface, remote.ip().is_unspecified()) {
            let e = io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no router heard on {interface} yet (waiting for its router advertisement or its connection)"
                ),
            );
            tokio::spawn(async move {
                let _ = tx.send(PeerEvent::Dialled(seq, Err(e))).await;
            });
            return;
        }
        let timeout = s
            .timing
            .connect_retry
            .clamp(Duration::from_secs(1), Duration::from_secs(30));
        tracing::debug!(peer = %s.name, %remote, "connecting");
        tokio::spawn(async move {
            let result = socket::connect(remote, local, &opts, md5.as_deref(), timeout).await;
            let _ = tx.send(PeerEvent::Dialled(seq, result)).await;
        });
    }
}

impl From<PeerState> for SessionState {
    fn from(s: PeerState) -> Self {
        match s {
            PeerState::Idle => SessionState::Idle,
            PeerState::Connect => SessionState::Connect,
            PeerState::Active => SessionState::Active,
            PeerState::OpenSent => SessionState::OpenSent,
            PeerState::OpenConfirm => SessionState::OpenConfirm,
            PeerState::Established => SessionState::Established,
        }
    }
}

/// IPv4 peers reached over a dual-stack socket appear as ::ffff:a.b.c.d;
/// an IPv6 address keeps its scope (the link of a link-local one).
pub fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_none() => a,
        _ => SocketAddr::new(a.ip().to_canonical(), a.port()),
    }
}

/// The link a session runs over, when the peer's address is link-local:
/// its next hops are on that link.
fn link_of(remote: SocketAddr) -> Option<u32> {
    match remote {
        SocketAddr::V6(v6) if v6.ip().is_unicast_link_local() && v6.scope_id() != 0 => Some(v6.scope_id()),
        _ => None,
    }
}

/// Cuts the byte stream into messages. Only the header is checked here;
/// a bad one is passed on whole, so the state machine answers it with the
/// right NOTIFICATION.
async fn read_frames(
    mut rd: OwnedReadHalf,
    id: ConnId,
    seq: u64,
    max_len: Arc<AtomicUsize>,
    tx: mpsc::Sender<PeerEvent>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        loop {
            let ctx = Context {
                extended_message: max_len.load(Relaxed) > MAX_MESSAGE_LEN,
                ..Context::default()
            };
            match frame_len(&buf, &ctx) {
                Ok(Some(n)) if buf.len() >= n => {
                    let frame = buf.split_to(n).freeze();
                    if tx.send(PeerEvent::Frame(id, seq, frame)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => break,
                Err(_) => {
                    let frame = buf.split().freeze();
                    let _ = tx.send(PeerEvent::Frame(id, seq, frame)).await;
                    return;
                }
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = tx.send(PeerEvent::ReadClosed(id, seq, None)).await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(PeerEvent::ReadClosed(id, seq, Some(e))).await;
                return;
            }
        }
    }
}

async fn write_messages(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    rib: mpsc::Sender<RibEvent>,
    id: PeerId,
    status: Arc<PeerStatus>,
) {
    while let Some(m) = rx.recv().await {
        match m {
            WriterMsg::Bytes(b) => {
                Counters::add(&status.counters.messages_sent, 1);
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
            WriterMsg::Batch(b) => {
                Counters::add(&status.counters.updates_sent, count_messages(&b));
                let ok = wr.write_all(&b).await.is_ok();
                let _ = rib.send(RibEvent::Written(id)).await;
                if !ok {
                    break;
                }
            }
            WriterMsg::Close => {
                let _ = wr.shutdown().await;
                break;
            }
        }
    }
}

/// Messages in a batch, from their headers.
fn count_messages(mut b: &[u8]) -> u64 {
    let mut n = 0;
    while b.len() >= 19 {
        let len = usize::from(u16::from_be_bytes([b[16], b[17]])).max(19);
        n += 1;
        b = b.get(len..).unwrap_or_default();
    }
    n
}

/// Sets the peer's MD5 key on a listening socket.
pub fn set_listener_md5(
    listener: &tokio::net::TcpListener,
    peer: IpNet,
    key: Option<&[u8]>,
) -> io::Result<()> {
    let v6 = listener.local_addr()?.is_ipv6();
    socket::set_md5(listener.as_raw_fd(), v6, peer, key)
}
