//! One configured peer: when to dial (connect-retry with RFC 4271 §10
//! jitter and a back-off after repeated failures), which of two
//! simultaneous connections survives (collision detection, RFC 4271 §6.8
//! with RFC 6286 §2.3), and what the rest of the daemon sees: the session
//! coming up, its UPDATEs, and the session going down and why.
//!
//! Sans I/O like [`super::fsm`]: the driver reports TCP events and
//! messages with the current instant and performs the returned outputs.

use std::time::{Duration, Instant};

use bgp_proto::{Message, MessageError, Notification, RouteRefresh, Update};

use super::fsm::{CloseReason, ConnState, Connection, Output};
use super::negotiate::{Negotiated, Offer};

/// Which of a peer's (at most three) connections an event is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConnId {
    /// We dialled.
    Outgoing,
    /// The peer dialled us.
    Incoming,
    /// The peer dialled us again while its first connection had already
    /// sent an OPEN (e.g. it restarted while its old session still looks
    /// established): which one stays is decided when this one's OPEN
    /// arrives (RFC 4271 §6.8, RFC 4724 §4.2).
    Another,
}

impl ConnId {
    pub const ALL: [ConnId; 3] = [ConnId::Outgoing, ConnId::Incoming, ConnId::Another];

    /// The index of its slot, for drivers that keep one per connection.
    pub fn slot(self) -> usize {
        match self {
            ConnId::Outgoing => 0,
            ConnId::Incoming => 1,
            ConnId::Another => 2,
        }
    }

    fn dialled_by_us(self) -> bool {
        self == ConnId::Outgoing
    }
}

/// The RFC 4271 state of a peer as a whole, as operators know it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PeerState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Never dial; wait for the peer.
    pub passive: bool,
    pub connect_retry: Duration,
    /// The longest wait between attempts after repeated failures.
    pub max_backoff: Duration,
}

/// What the driver must do, in order.
#[derive(Debug, PartialEq)]
pub enum PeerOutput {
    /// Start a TCP connection to the peer.
    Connect,
    Send(ConnId, Message),
    /// Close this connection's socket once what was sent before is written.
    Close(ConnId),
    Established(ConnId, Box<Negotiated>),
    Update(Update),
    RouteRefresh(RouteRefresh),
    /// The established session ended.
    Down {
        reason: CloseReason,
        negotiated: Box<Negotiated>,
    },
}

#[derive(Debug)]
pub struct Peer {
    offer: Offer,
    timing: Timing,
    /// By [`ConnId::slot`].
    conns: [Option<Connection>; 3],
    established: Option<ConnId>,
    enabled: bool,
    dialling: bool,
    retry_at: Option<Instant>,
    failures: u32,
    rng: u64,
    last_error: Option<CloseReason>,
    /// After a reset with a hold-down: no connection before this.
    idle_until: Option<Instant>,
}

impl Peer {
    /// `seed` feeds the connect-retry jitter; any value will do, distinct
    /// peers should get distinct ones.
    pub fn new(offer: Offer, timing: Timing, seed: u64) -> Peer {
        Peer {
            offer,
            timing,
            conns: [None, None, None],
            established: None,
            enabled: false,
            dialling: false,
            retry_at: None,
            failures: 0,
            rng: seed | 1,
            last_error: None,
            idle_until: None,
        }
    }

    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// Takes effect on the next connection.
    pub fn set_offer(&mut self, offer: Offer, timing: Timing) {
        self.offer = offer;
        self.timing = timing;
    }

    pub fn state(&self) -> PeerState {
        if self.established.is_some() {
            return PeerState::Established;
        }
        let states = self.conns.each_ref().map(|c| c.as_ref().map(Connection::state));
        if states.contains(&Some(ConnState::OpenConfirm)) {
            PeerState::OpenConfirm
        } else if states.contains(&Some(ConnState::OpenSent)) {
            PeerState::OpenSent
        } else if self.dialling {
            PeerState::Connect
        } else if self.enabled {
            PeerState::Active
        } else {
            PeerState::Idle
        }
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.established
            .and_then(|id| self.conn(id))
            .and_then(Connection::negotiated)
    }

    pub fn established_conn(&self) -> Option<ConnId> {
        self.established
    }

    pub fn last_error(&self) -> Option<&CloseReason> {
        self.last_error.as_ref()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.retry_at,
            self.conns[0].as_ref().and_then(Connection::next_deadline),
            self.conns[1].as_ref().and_then(Connection::next_deadline),
            self.conns[2].as_ref().and_then(Connection::next_deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// ManualStart (RFC 4271 §8.1.2): an active peer dials at once.
    pub fn start(&mut self, now: Instant) -> Vec<PeerOutput> {
        self.enabled = true;
        if self.timing.passive {
            return Vec::new();
        }
        self.retry_at = Some(now);
        self.on_timer(now)
    }

    /// ManualStop: every connection ends with `notification`.
    pub fn stop(&mut self, notification: Notification, now: Instant) -> Vec<PeerOutput> {
        self.enabled = false;
        self.retry_at = None;
        self.dialling = false;
        let mut out = Vec::new();
        for id in ConnId::ALL {
            if let Some(c) = self.conn_mut(id) {
                let res = c.stop(notification.clone());
                self.handle(id, res, now, &mut out);
            }
        }
        out
    }

    /// Our dial succeeded.
    pub fn on_connected(&mut self, now: Instant) -> Vec<PeerOutput> {
        self.dialling = false;
        let mut out = Vec::new();
        if !self.enabled || self.conns[0].is_some() {
            out.push(PeerOutput::Close(ConnId::Outgoing));
            return out;
        }
        let (conn, res) = Connection::start(self.offer.clone(), now);
        self.conns[0] = Some(conn);
        self.handle(ConnId::Outgoing, res, now, &mut out);
        out
    }

    /// Our dial failed: try again after the connect-retry time.
    pub fn on_connect_failed(&mut self, now: Instant) {
        self.dialling = false;
        self.failures = self.failures.saturating_add(1);
        self.schedule_retry(now);
    }

    /// The peer dialled us. Returns the slot the connection takes and the
    /// outputs, or `None` when it must be refused (the peer is stopped or
    /// held down, or two of its connections have already sent OPENs).
    ///
    /// A connection of the peer's that has not sent its OPEN yet never
    /// holds a slot against a newer one: the newer replaces it (the driver
    /// drops the old socket), so a silent connection from the peer's
    /// address cannot lock the real peer out. A connection that has sent
    /// its OPEN keeps its slot; the newcomer takes the spare one and the
    /// choice is made on its OPEN.
    pub fn on_incoming(&mut self, now: Instant) -> Option<(ConnId, Vec<PeerOutput>)> {
        if !self.enabled || self.idle_until.is_some_and(|t| now < t) {
            return None;
        }
        let silent = |c: &Option<Connection>| c.as_ref().is_none_or(|c| c.state() == ConnState::OpenSent);
        let id = if silent(&self.conns[1]) {
            ConnId::Incoming
        } else if silent(&self.conns[2]) {
            ConnId::Another
        } else {
            return None;
        };
        let (conn, res) = Connection::start(self.offer.clone(), now);
        self.conns[id.slot()] = Some(conn);
        let mut out = Vec::new();
        self.handle(id, res, now, &mut out);
        Some((id, out))
    }

    pub fn on_message(&mut self, id: ConnId, msg: Message, now: Instant) -> Vec<PeerOutput> {
        self.with_conn(id, now, |c| c.on_message(msg, now))
    }

    pub fn on_decode_error(&mut self, id: ConnId, err: MessageError, now: Instant) -> Vec<PeerOutput> {
        self.with_conn(id, now, |c| c.on_decode_error(err))
    }

    pub fn on_tcp_closed(&mut self, id: ConnId, now: Instant) -> Vec<PeerOutput> {
        self.with_conn(id, now, Connection::on_tcp_closed)
    }

    /// Ends the established session (e.g. maximum prefixes reached). With
    /// `hold_down`, no connection is made or accepted for that long.
    pub fn reset(
        &mut self,
        notification: Notification,
        now: Instant,
        hold_down: Option<Duration>,
    ) -> Vec<PeerOutput> {
        if let Some(d) = hold_down {
            self.idle_until = Some(now + d);
        }
        match self.established {
            Some(id) => self.with_conn(id, now, |c| c.stop(notification)),
            None => Vec::new(),
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<PeerOutput> {
        let mut out = Vec::new();
        for id in ConnId::ALL {
            if let Some(c) = self.conn_mut(id)
                && c.next_deadline().is_some_and(|d| now >= d)
            {
                let res = c.on_timer(now);
                self.handle(id, res, now, &mut out);
            }
        }
        if self.retry_at.is_some_and(|t| now >= t) {
            self.retry_at = None;
            // Dial only when no connection is under way in either direction.
            if self.enabled
                && !self.timing.passive
                && self.conns[0].is_none()
                && self.established.is_none()
                && !self.dialling
            {
                self.dialling = true;
                out.push(PeerOutput::Connect);
            }
        }
        out
    }

    fn conn(&self, id: ConnId) -> Option<&Connection> {
        self.conns[id.slot()].as_ref()
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        self.conns[id.slot()].as_mut()
    }

    fn with_conn(
        &mut self,
        id: ConnId,
        now: Instant,
        f: impl FnOnce(&mut Connection) -> Vec<Output>,
    ) -> Vec<PeerOutput> {
        let mut out = Vec::new();
        if let Some(c) = self.conn_mut(id) {
            let res = f(c);
            self.handle(id, res, now, &mut out);
        }
        out
    }

    fn handle(&mut self, id: ConnId, outputs: Vec<Output>, now: Instant, out: &mut Vec<PeerOutput>) {
        for o in outputs {
            match o {
                Output::Send(m) => out.push(PeerOutput::Send(id, m)),
                Output::OpenReceived => self.resolve_collision(id, now, out),
                Output::Established => {
                    self.established = Some(id);
                    self.failures = 0;
                    self.last_error = None;
                    if let Some(n) = self.conn(id).and_then(Connection::negotiated) {
                        out.push(PeerOutput::Established(id, Box::new(n.clone())));
                    }
                }
                Output::Update(u) => out.push(PeerOutput::Update(u)),
                Output::RouteRefresh(rr) => out.push(PeerOutput::RouteRefresh(rr)),
                Output::Closed(reason) => {
                    out.push(PeerOutput::Close(id));
                    let conn = self.conns[id.slot()].take();
                    let was_established = self.established == Some(id);
                    let collision = reason.notification().is_some_and(|n| {
                        n.is_cease(bgp_proto::notification::CeaseSubcode::ConnectionCollisionResolution)
                    });
                    if was_established {
                        self.established = None;
                        if let Some(n) = conn.as_ref().and_then(Connection::negotiated) {
                            out.push(PeerOutput::Down {
                                reason: reason.clone(),
                                negotiated: Box::new(n.clone()),
                            });
                        }
                    }
                    if !collision {
                        self.last_error = Some(reason);
                        if !was_established {
                            self.failures = self.failures.saturating_add(1);
                        }
                    }
                    if self.established.is_none() && self.conns.iter().all(Option::is_none) {
                        self.schedule_retry(now);
                    }
                }
            }
        }
    }

    /// `id` just accepted the peer's OPEN; another connection of the peer
    /// may have too.
    ///
    /// - Against an established session the newcomer loses (RFC 4271
    ///   §6.8), unless graceful restart was negotiated on that session: then
    ///   the peer has restarted, and the old session ends without a word,
    ///   its routes kept as stale, for the new one (RFC 4724 §4.2).
    /// - Against one in OpenConfirm, the connection dialled by the side
    ///   with the higher BGP Identifier survives (the higher AS when
    ///   identifiers are equal, RFC 6286 §2.3). Two connections both
    ///   dialled by the peer: the newer one stays.
    fn resolve_collision(&mut self, id: ConnId, now: Instant, out: &mut Vec<PeerOutput>) {
        for other in ConnId::ALL.into_iter().filter(|o| *o != id) {
            let Some(other_conn) = self.conn(other) else {
                continue;
            };
            let loser = match other_conn.state() {
                ConnState::Established
                    if !id.dialled_by_us()
                        && other_conn
                            .negotiated()
                            .is_some_and(|n| n.graceful_restart.is_some()) =>
                {
                    if let Some(c) = self.conn_mut(other) {
                        let res = c.replaced();
                        self.handle(other, res, now, out);
                    }
                    continue;
                }
                ConnState::Established => id,
                ConnState::OpenConfirm if !id.dialled_by_us() && !other.dialled_by_us() => other,
                ConnState::OpenConfirm => {
                    let Some(remote) = self.conn(id).and_then(Connection::peer_open) else {
                        return;
                    };
                    let local = (u32::from(self.offer.router_id), self.offer.local_asn);
                    let remote = (u32::from(remote.bgp_id), remote.asn());
                    // The side with the larger (identifier, AS) keeps the
                    // connection it dialled.
                    let ours = if id.dialled_by_us() { id } else { other };
                    let theirs = if id.dialled_by_us() { other } else { id };
                    if local > remote { theirs } else { ours }
                }
                ConnState::OpenSent | ConnState::Closed => continue,
            };
            if let Some(c) = self.conn_mut(loser) {
                let res = c.lose_collision();
                self.handle(loser, res, now, out);
            }
            if loser == id {
                return;
            }
        }
    }

    fn schedule_retry(&mut self, now: Instant) {
        if !self.enabled || self.timing.passive {
            return;
        }
        // RFC 4271 §10: jitter the interval by a factor in [0.75, 1).
        // Repeated failures double it, up to `max_backoff`.
        let doublings = self.failures.saturating_sub(1).min(16);
        let base = self
            .timing
            .connect_retry
            .saturating_mul(1 << doublings)
            .min(self.timing.max_backoff.max(self.timing.connect_retry));
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let factor = 0.75 + (self.rng % 1000) as f64 / 4000.0;
        let retry = now + base.mul_f64(factor);
        self.retry_at = Some(self.idle_until.map_or(retry, |t| t.max(retry)));
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use bgp_proto::notification::CeaseSubcode;
    use bgp_proto::{Capability, Family, Open};

    use super::*;
    use crate::config::RemoteAs;

    fn offer(router_id: [u8; 4]) -> Offer {
        Offer {
            local_asn: 4210101021,
            router_id: Ipv4Addr::from(router_id),
            remote_asn: RemoteAs::Exact(4200001000),
            hold_time: 90,
            keepalive: None,
            families: vec![Family::IPV4_UNICAST],
            extended_next_hop: false,
            extended_message: false,
            graceful_restart: None,
            hostname: None,
        }
    }

    fn timing(passive: bool) -> Timing {
        Timing {
            passive,
            connect_retry: Duration::from_secs(4),
            max_backoff: Duration::from_secs(60),
        }
    }

    fn their_open(id: [u8; 4]) -> Message {
        Message::Open(Open::new(
            4200001000,
            90,
            Ipv4Addr::from(id),
            vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
        ))
    }

    fn closes(out: &[PeerOutput]) -> Vec<ConnId> {
        out.iter()
            .filter_map(|o| {
                if let PeerOutput::Close(id) = o {
                    Some(*id)
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn active_peer_dials_and_establishes() {
        let now = Instant::now();
        let mut p = Peer::new(offer([10, 0, 0, 1]), timing(false), 7);
        assert_eq!(p.state(), PeerState::Idle);
        assert_eq!(p.start(now), [PeerOutput::Connect]);
        assert_eq!(p.state(), PeerState::Connect);
        let out = p.on_connected(now);
        assert!(matches!(
            &out[..],
            [PeerOutput::Send(ConnId::Outgoing, Message::Open(_))]
        ));
        assert_eq!(p.state(), PeerState::OpenSent);
        p.on_message(ConnId::Outgoing, their_open([10, 0, 0, 2]), now);
        assert_eq!(p.state(), PeerState::OpenConfirm);
        let out = p.on_message(ConnId::Outgoing, Message::Keepalive, now);
        assert!(
            matches!(&out[..], [PeerOutput::Established(ConnId::Outgoing, n)] if n.peer_asn == 4200001000)
        );
        assert_eq!(p.state(), PeerState::Established);
    }

    #[test]
    fn passive_peer_never_dials() {
        let now = Instant::now();
        let mut p = Peer::new(offer([10, 0, 0, 1]), timing(true), 7);
        assert_eq!(p.start(now), []);
        assert_eq!(p.state(), PeerState::Active);
        assert_eq!(p.next_deadline(), None);
        let (id, out) = p.on_incoming(now).unwrap();
        assert_eq!(id, ConnId::Incoming);
        assert!(matches!(
            &out[..],
            [PeerOutput::Send(ConnId::Incoming, Message::Open(_))]
        ));
    }

    /// A connection from the peer's address that never sends its OPEN
    /// does not lock the real peer out: a new connection replaces it. One
    /// that has sent its OPEN keeps its place; the newcomer takes the
    /// spare slot, and the choice is made on its OPEN.
    #[test]
    fn a_silent_connection_gives_way_to_a_new_one() {
        let now = Instant::now();
        let mut p = Peer::new(offer([10, 0, 0, 1]), timing(true), 7);
        p.start(now);
        p.on_incoming(now).unwrap();
        // Silent: a second connection takes its slot at once.
        let (id, _) = p.on_incoming(now).expect("not refused");
        assert_eq!(id, ConnId::Incoming);
        let out = p.on_message(ConnId::Incoming, their_open([10, 0, 0, 2]), now);
        assert!(closes(&out).is_empty());
        assert_eq!(p.state(), PeerState::OpenConfirm);
        // Now one that sent OPEN holds the slot: the next goes beside it...
        let (id, _) = p.on_incoming(now).expect("not refused");
        assert_eq!(id, ConnId::Another);
        // ...replaces a silent one there...
        assert_eq!(p.on_incoming(now).map(|(id, _)| id), Some(ConnId::Another));
        // ...and when it sends its OPEN, the newer of the two stays.
        let out = p.on_message(ConnId::Another, their_open([10, 0, 0, 2]), now);
        assert_eq!(closes(&out), [ConnId::Incoming]);
        let out = p.on_message(ConnId::Another, Message::Keepalive, now);
        assert!(matches!(&out[..], [PeerOutput::Established(ConnId::Another, _)]));
        // Without graceful restart, a newcomer against the established
        // session loses when its OPEN arrives (RFC 4271 §6.8).
        let (id, _) = p.on_incoming(now).unwrap();
        let out = p.on_message(id, their_open([10, 0, 0, 2]), now);
        assert_eq!(closes(&out), [id]);
        assert_eq!(p.established_conn(), Some(ConnId::Another));
    }

    fn gr_offer(router_id: [u8; 4]) -> Offer {
        Offer {
            graceful_restart: Some(bgp_proto::capability::GracefulRestart {
                restarting: false,
                notification: true,
                restart_time: 120,
                families: vec![],
            }),
            ..offer(router_id)
        }
    }

    fn their_gr_open(id: [u8; 4]) -> Message {
        Message::Open(Open::new(
            4200001000,
            90,
            Ipv4Addr::from(id),
            vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::GracefulRestart(bgp_proto::capability::GracefulRestart {
                    restarting: true,
                    notification: true,
                    restart_time: 120,
                    families: vec![],
                }),
            ],
        ))
    }

    /// The peer restarted while its old session still looks established
    /// (no FIN ever came): with graceful restart negotiated, its new
    /// connection's OPEN ends the old session without a NOTIFICATION,
    /// routes kept as stale, and the new one comes up (RFC 4724 §4.2), on
    /// whichever side the old session was.
    #[test]
    fn a_restarted_peer_replaces_its_old_session_with_graceful_restart() {
        for old in [ConnId::Outgoing, ConnId::Incoming] {
            let now = Instant::now();
            let mut p = Peer::new(gr_offer([10, 0, 0, 1]), timing(old == ConnId::Incoming), 7);
            p.start(now);
            if old == ConnId::Outgoing {
                p.on_connected(now);
            } else {
                p.on_incoming(now).unwrap();
            }
            p.on_message(old, their_gr_open([10, 0, 0, 2]), now);
            p.on_message(old, Message::Keepalive, now);
            assert_eq!(p.established_conn(), Some(old));
            let (new, _) = p.on_incoming(now).expect("the new connection is taken");
            assert_ne!(new, old);
            let out = p.on_message(new, their_gr_open([10, 0, 0, 2]), now);
            assert_eq!(closes(&out), [old], "{old:?}");
            assert!(
                !out.iter()
                    .any(|o| matches!(o, PeerOutput::Send(_, Message::Notification(_)))),
                "no NOTIFICATION on the old session: {out:?}"
            );
            let Some(PeerOutput::Down { reason, negotiated }) =
                out.iter().find(|o| matches!(o, PeerOutput::Down { .. }))
            else {
                panic!("the old session is down: {out:?}")
            };
            assert_eq!(*reason, CloseReason::Replaced);
            assert!(reason.keeps_routes(negotiated), "routes kept as stale");
            let out = p.on_message(new, Message::Keepalive, now);
            assert!(matches!(&out[..], [PeerOutput::Established(id, _)] if *id == new));
        }
    }

    #[test]
    fn failed_dials_retry_with_jitter_and_back_off() {
        let now = Instant::now();
        let mut p = Peer::new(offer([10, 0, 0, 1]), timing(false), 7);
        p.start(now);
        let mut waits = Vec::new();
        let mut t = now;
        for _ in 0..6 {
            p.on_connect_failed(t);
            let at = p.next_deadline().unwrap();
            waits.push(at - t);
            t = at;
            assert_eq!(p.on_timer(t), [PeerOutput::Connect]);
        }
        // First wait in [3 s, 4 s), then doubling, capped at 60 s.
        assert!(
            waits[0] >= Duration::from_secs(3) && waits[0] < Duration::from_secs(4),
            "{waits:?}"
        );
        assert!(
            waits[1] >= Duration::from_secs(6) && waits[1] < Duration::from_secs(8),
            "{waits:?}"
        );
        assert!(
            waits[5] >= Duration::from_secs(45) && waits[5] < Duration::from_secs(60),
            "{waits:?}"
        );
    }

    /// An active peer whose dial reached Established.
    fn established_outgoing(now: Instant) -> Peer {
        let mut p = Peer::new(offer([10, 0, 0, 1]), timing(false), 7);
        p.start(now);
        p.on_connected(now);
        p.on_message(ConnId::Outgoing, their_open([10, 0, 0, 2]), now);
        p.on_message(ConnId::Outgoing, Message::Keepalive, now);
        p
    }

    #[test]
    fn session_down_reports_why_and_redials() {
        let now = Instant::now();
        let mut p = established_outgoing(now);
        let out = p.on_tcp_closed(ConnId::Outgoing, now);
        assert!(matches!(
            &out[..],
            [
                PeerOutput::Close(ConnId::Outgoing),
                PeerOutput::Down {
                    reason: CloseReason::TcpClosed,
                    ..
                }
            ]
        ));
        assert_eq!(p.state(), PeerState::Active);
        assert_eq!(p.last_error(), Some(&CloseReason::TcpClosed));
        let retry = p.next_deadline().unwrap();
        assert!(retry > now && retry <= now + Duration::from_secs(4));
    }

    /// Both sides dial at once. Whoever has the higher BGP identifier keeps
    /// the connection it dialled; the other gets Cease/7.
    #[test]
    fn collision_keeps_the_connection_of_the_higher_identifier() {
        for (local, remote, survivor) in [
            ([10, 0, 0, 9], [10, 0, 0, 2], ConnId::Outgoing),
            ([10, 0, 0, 1], [10, 0, 0, 2], ConnId::Incoming),
        ] {
            let now = Instant::now();
            let mut p = Peer::new(offer(local), timing(false), 7);
            p.start(now);
            p.on_connected(now);
            p.on_incoming(now).unwrap();
            p.on_message(ConnId::Outgoing, their_open(remote), now);
            let out = p.on_message(ConnId::Incoming, their_open(remote), now);
            let loser = if survivor == ConnId::Outgoing {
                ConnId::Incoming
            } else {
                ConnId::Outgoing
            };
            assert_eq!(closes(&out), [loser]);
            assert!(
                out.iter()
                    .any(|o| matches!(o, PeerOutput::Send(id, Message::Notification(n))
                if *id == loser && n.is_cease(CeaseSubcode::ConnectionCollisionResolution)))
            );
            let out = p.on_message(survivor, Message::Keepalive, now);
            assert!(matches!(&out[..], [PeerOutput::Established(id, _)] if *id == survivor));
            // A collision is not an error worth reporting.
            assert_eq!(p.last_error(), None);
        }
    }

    /// Equal identifiers are legal on eBGP (RFC 6286): the larger AS wins.
    #[test]
    fn collision_with_equal_identifiers_compares_as_numbers() {
        let now = Instant::now();
        // Local AS 4210101021 > remote 4200001000: we keep our dial.
        let mut p = Peer::new(offer([10, 0, 0, 1]), timing(false), 7);
        p.start(now);
        p.on_connected(now);
        p.on_incoming(now).unwrap();
        p.on_message(ConnId::Incoming, their_open([10, 0, 0, 1]), now);
        let out = p.on_message(ConnId::Outgoing, their_open([10, 0, 0, 1]), now);
        assert_eq!(closes(&out), [ConnId::Incoming]);
    }

    #[test]
    fn a_newcomer_loses_against_an_established_session() {
        let now = Instant::now();
        let mut p = Peer::new(offer([10, 0, 0, 9]), timing(false), 7);
        p.start(now);
        p.on_connected(now);
        p.on_message(ConnId::Outgoing, their_open([10, 0, 0, 2]), now);
        p.on_message(ConnId::Outgoing, Message::Keepalive, now);
        p.on_incoming(now).unwrap();
        let out = p.on_message(ConnId::Incoming, their_open([10, 0, 0, 2]), now);
        assert_eq!(closes(&out), [ConnId::Incoming]);
        assert_eq!(p.state(), PeerState::Established);
    }

    #[test]
    fn stop_sends_the_notification_on_every_connection() {
        let now = Instant::now();
        let mut p = Peer::new(offer([10, 0, 0, 1]), timing(false), 7);
        p.start(now);
        p.on_connected(now);
        p.on_incoming(now).unwrap();
        let out = p.stop(Notification::cease(CeaseSubcode::PeerDeconfigured), now);
        assert_eq!(closes(&out), [ConnId::Outgoing, ConnId::Incoming]);
        assert_eq!(p.state(), PeerState::Idle);
        assert_eq!(p.next_deadline(), None);
    }

    /// A reset with a hold-down (max-prefix `restart-after`): no dial and
    /// no accepted connection until it has passed.
    #[test]
    fn a_reset_with_a_hold_down_stays_down_that_long() {
        let now = Instant::now();
        let mut p = established_outgoing(now);
        let cease = Notification::cease(CeaseSubcode::MaximumPrefixesReached);
        let out = p.reset(cease, now, Some(Duration::from_secs(60)));
        assert_eq!(closes(&out), [ConnId::Outgoing]);
        assert_eq!(p.next_deadline(), Some(now + Duration::from_secs(60)));
        let later = now + Duration::from_secs(30);
        assert!(p.on_incoming(later).is_none(), "refused while held down");
        assert_eq!(p.on_timer(later), []);
        let due = now + Duration::from_secs(60);
        assert_eq!(p.on_timer(due), [PeerOutput::Connect]);
        assert!(p.on_incoming(due).is_some());
    }
}
