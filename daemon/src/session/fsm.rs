//! The BGP finite state machine of one TCP connection (RFC 4271 §8), from
//! the moment TCP is up: OpenSent, OpenConfirm, Established, Closed.
//!
//! It is written sans I/O: it takes decoded messages, decode errors, TCP
//! closure and the current `Instant`, and returns what to do. It never
//! reads the clock or touches a socket, so every rule here is tested with
//! plain values. Connect-retry, passive/active and collision resolution
//! belong to [`super::peer`], which owns one or two of these.

use std::time::{Duration, Instant};

use bgp_proto::notification::{CeaseSubcode, FsmSubcode};
use bgp_proto::{Message, MessageError, Notification, Open, RouteRefresh, Update};

use super::negotiate::{Negotiated, Offer, negotiate};

/// RFC 4271 §8: the hold timer while waiting for the peer's OPEN
/// ("a large value", 4 minutes suggested).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConnState {
    OpenSent,
    OpenConfirm,
    Established,
    Closed,
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// We sent this NOTIFICATION (a protocol error, hold timer expiry, or
    /// an administrative stop).
    Sent(Notification),
    /// The peer sent this NOTIFICATION.
    Received(Notification),
    /// TCP closed without a NOTIFICATION.
    TcpClosed,
    /// The peer restarted and opened a new session on another connection
    /// while this one still looked established (RFC 4724 §4.2).
    Replaced,
}

impl CloseReason {
    pub fn notification(&self) -> Option<&Notification> {
        match self {
            CloseReason::Sent(n) | CloseReason::Received(n) => Some(n),
            CloseReason::TcpClosed | CloseReason::Replaced => None,
        }
    }

    /// Whether the peer's routes are kept, as stale, after the session
    /// ended this way: what graceful restart allows (RFC 4724 §4.2, and
    /// RFC 8538 §4 for NOTIFICATIONs other than Hard Reset), except when
    /// we declared the peer dead. A restarting speaker closes its
    /// connection; one that fell silent may be unreachable, and keeping its
    /// routes would send traffic into the void for the whole restart time.
    pub fn keeps_routes(&self, negotiated: &Negotiated) -> bool {
        if let CloseReason::Sent(n) = self
            && n.code == bgp_proto::notification::ErrorCode::HoldTimerExpired as u8
        {
            return false;
        }
        negotiated.keeps_routes_on(self.notification())
    }

    /// How long the peer's routes stay, as stale, after the session ended
    /// this way (its advertised restart time), or `None` when they go now.
    /// `graceful_restart`: the capability is enabled for this peer.
    /// The peer ended the session (it closed the connection, sent a
    /// NOTIFICATION, or came back on a new one), and not with a Hard
    /// Reset, which says its routes must go (RFC 8538; how Cilium
    /// deselects a node).
    pub fn from_peer_side(&self) -> bool {
        match self {
            CloseReason::Sent(_) => false,
            CloseReason::Received(n) => !n.is_hard_reset(),
            CloseReason::TcpClosed | CloseReason::Replaced => true,
        }
    }

    pub fn stale_time(&self, negotiated: &Negotiated, graceful_restart: bool) -> Option<Duration> {
        let restart_time = negotiated.graceful_restart.as_ref().map_or(0, |g| g.restart_time);
        (graceful_restart && self.keeps_routes(negotiated))
            .then(|| Duration::from_secs(u64::from(restart_time)))
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Sent(n) => write!(f, "sent NOTIFICATION {n}"),
            CloseReason::Received(n) => write!(f, "received NOTIFICATION {n}"),
            CloseReason::TcpClosed => f.write_str("connection closed by peer"),
            CloseReason::Replaced => f.write_str("replaced by a new session from the restarted peer"),
        }
    }
}

/// What the driver must do, in order.
#[derive(Debug, PartialEq)]
pub enum Output {
    Send(Message),
    /// The peer's OPEN was accepted (the connection is now OpenConfirm);
    /// the owner checks for a collision (RFC 4271 §6.8).
    OpenReceived,
    Established,
    Update(Update),
    RouteRefresh(RouteRefresh),
    /// The connection is over; close the socket after sending what came
    /// before.
    Closed(CloseReason),
}

#[derive(Debug)]
pub struct Connection {
    offer: Offer,
    state: ConnState,
    peer_open: Option<Open>,
    negotiated: Option<Negotiated>,
    hold_deadline: Option<Instant>,
    keepalive_deadline: Option<Instant>,
}

impl Connection {
    /// A connection whose TCP session just came up: our OPEN goes out at
    /// once (RFC 4271 §8.2.2, no DelayOpen).
    pub fn start(offer: Offer, now: Instant) -> (Connection, Vec<Output>) {
        let open = offer.open();
        let conn = Connection {
            offer,
            state: ConnState::OpenSent,
            peer_open: None,
            negotiated: None,
            hold_deadline: Some(now + OPEN_HOLD_TIME),
            keepalive_deadline: None,
        };
        (conn, vec![Output::Send(Message::Open(open))])
    }

    pub fn state(&self) -> ConnState {
        self.state
    }

    pub fn peer_open(&self) -> Option<&Open> {
        self.peer_open.as_ref()
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The earliest instant at which [`Connection::on_timer`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.hold_deadline, self.keepalive_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Hold timer expiry ends the session; keepalive expiry sends one.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Output> {
        if self.state == ConnState::Closed {
            return Vec::new();
        }
        if self.hold_deadline.is_some_and(|d| now >= d) {
            // RFC 4271 §6.5.
            return self.fail(Notification::hold_timer_expired());
        }
        let mut out = Vec::new();
        if let Some(due) = self.keepalive_deadline
            && now >= due
        {
            out.push(Output::Send(Message::Keepalive));
            self.keepalive_deadline = self.keepalive_interval().map(|k| now + k);
        }
        out
    }

    /// A message arrived and decoded.
    pub fn on_message(&mut self, msg: Message, now: Instant) -> Vec<Output> {
        match (self.state, msg) {
            (ConnState::Closed, _) => Vec::new(),
            (_, Message::Notification(n)) => {
                self.close();
                vec![Output::Closed(CloseReason::Received(n))]
            }
            (ConnState::OpenSent, Message::Open(open)) => self.on_open(open, now),
            (ConnState::OpenConfirm, Message::Keepalive) => {
                self.state = ConnState::Established;
                self.restart_hold(now);
                vec![Output::Established]
            }
            (ConnState::Established, Message::Keepalive) => {
                self.restart_hold(now);
                Vec::new()
            }
            (ConnState::Established, Message::Update(u)) => {
                self.restart_hold(now);
                vec![Output::Update(u)]
            }
            (ConnState::Established, Message::RouteRefresh(rr)) => {
                self.restart_hold(now);
                // RFC 2918 §4: only a speaker that advertised the capability
                // may receive a refresh request; we always advertise it. A
                // family that was not negotiated is ignored (RFC 7313 §5).
                let negotiated = self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.families.contains(&rr.family));
                if negotiated {
                    vec![Output::RouteRefresh(rr)]
                } else {
                    Vec::new()
                }
            }
            // RFC 6608: anything else is an FSM error named by the state.
            (state, _) => self.fail(Notification::fsm(match state {
                ConnState::OpenSent => FsmSubcode::UnexpectedMessageInOpenSent,
                ConnState::OpenConfirm => FsmSubcode::UnexpectedMessageInOpenConfirm,
                _ => FsmSubcode::UnexpectedMessageInEstablished,
            })),
        }
    }

    /// A message could not be decoded: send its NOTIFICATION and close.
    pub fn on_decode_error(&mut self, err: MessageError) -> Vec<Output> {
        if self.state == ConnState::Closed {
            return Vec::new();
        }
        self.fail(err.notification)
    }

    /// TCP closed or failed underneath us.
    pub fn on_tcp_closed(&mut self) -> Vec<Output> {
        if self.state == ConnState::Closed {
            return Vec::new();
        }
        self.close();
        vec![Output::Closed(CloseReason::TcpClosed)]
    }

    /// Ends the connection with a NOTIFICATION of our choosing
    /// (administrative stop, collision, max-prefix, ...).
    pub fn stop(&mut self, notification: Notification) -> Vec<Output> {
        if self.state == ConnState::Closed {
            return Vec::new();
        }
        self.fail(notification)
    }

    /// The peer opened a new session on another connection after a restart
    /// (RFC 4724 §4.2): this one ends without a NOTIFICATION.
    pub fn replaced(&mut self) -> Vec<Output> {
        if self.state == ConnState::Closed {
            return Vec::new();
        }
        self.close();
        vec![Output::Closed(CloseReason::Replaced)]
    }

    /// Collision resolution chose to keep the other connection
    /// (RFC 4271 §6.8).
    pub fn lose_collision(&mut self) -> Vec<Output> {
        self.stop(Notification::cease(CeaseSubcode::ConnectionCollisionResolution))
    }

    fn on_open(&mut self, open: Open, now: Instant) -> Vec<Output> {
        match negotiate(&self.offer, &open) {
            Err(notification) => self.fail(notification),
            Ok(negotiated) => {
                self.peer_open = Some(open);
                self.negotiated = Some(negotiated);
                self.state = ConnState::OpenConfirm;
                self.restart_hold(now);
                self.keepalive_deadline = self.keepalive_interval().map(|k| now + k);
                vec![Output::Send(Message::Keepalive), Output::OpenReceived]
            }
        }
    }

    fn keepalive_interval(&self) -> Option<Duration> {
        self.negotiated
            .as_ref()
            .map(|n| n.keepalive)
            .filter(|k| !k.is_zero())
    }

    fn restart_hold(&mut self, now: Instant) {
        self.hold_deadline = match &self.negotiated {
            Some(n) if n.hold_time == 0 => None,
            Some(n) => Some(now + Duration::from_secs(u64::from(n.hold_time))),
            None => Some(now + OPEN_HOLD_TIME),
        };
    }

    fn fail(&mut self, notification: Notification) -> Vec<Output> {
        self.close();
        vec![
            Output::Send(Message::Notification(notification.clone())),
            Output::Closed(CloseReason::Sent(notification)),
        ]
    }

    fn close(&mut self) {
        self.state = ConnState::Closed;
        self.hold_deadline = None;
        self.keepalive_deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use bgp_proto::notification::{ErrorCode, HeaderSubcode};
    use bgp_proto::{Capability, Family};

    use super::*;
    use crate::config::RemoteAs;

    fn offer() -> Offer {
        Offer {
            local_asn: 4210101021,
            router_id: Ipv4Addr::new(10, 101, 0, 21),
            remote_asn: RemoteAs::Exact(4200001000),
            hold_time: 9,
            keepalive: None,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            extended_next_hop: false,
            extended_message: false,
            graceful_restart: None,
            hostname: None,
        }
    }

    fn peer_open(hold: u16) -> Message {
        Message::Open(Open::new(
            4200001000,
            hold,
            Ipv4Addr::new(10, 101, 0, 254),
            vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::RouteRefresh,
            ],
        ))
    }

    fn established(now: Instant) -> Connection {
        let (mut c, _) = Connection::start(offer(), now);
        c.on_message(peer_open(9), now);
        assert_eq!(c.on_message(Message::Keepalive, now), [Output::Established]);
        c
    }

    fn sent_notification(out: &[Output]) -> Option<(u8, u8)> {
        out.iter().find_map(|o| match o {
            Output::Send(Message::Notification(n)) => Some((n.code, n.subcode)),
            _ => None,
        })
    }

    #[test]
    fn start_sends_open_and_arms_the_long_hold_timer() {
        let now = Instant::now();
        let (c, out) = Connection::start(offer(), now);
        assert!(
            matches!(&out[..], [Output::Send(Message::Open(o))] if o.asn() == 4210101021 && o.hold_time == 9)
        );
        assert_eq!(c.state(), ConnState::OpenSent);
        assert_eq!(c.next_deadline(), Some(now + OPEN_HOLD_TIME));
    }

    #[test]
    fn open_then_keepalive_establishes() {
        let now = Instant::now();
        let (mut c, _) = Connection::start(offer(), now);
        let out = c.on_message(peer_open(30), now);
        assert_eq!(out, [Output::Send(Message::Keepalive), Output::OpenReceived]);
        assert_eq!(c.state(), ConnState::OpenConfirm);
        assert_eq!(c.negotiated().unwrap().hold_time, 9);
        let later = now + Duration::from_secs(1);
        assert_eq!(c.on_message(Message::Keepalive, later), [Output::Established]);
        assert_eq!(c.state(), ConnState::Established);
        // Hold restarted at the KEEPALIVE; keepalive due a third of hold
        // after the OPEN.
        assert_eq!(c.next_deadline(), Some(now + Duration::from_secs(3)));
    }

    #[test]
    fn keepalives_go_out_at_a_third_of_hold_time() {
        let now = Instant::now();
        let mut c = established(now);
        assert_eq!(c.on_timer(now + Duration::from_secs(2)), []);
        assert_eq!(
            c.on_timer(now + Duration::from_secs(3)),
            [Output::Send(Message::Keepalive)]
        );
        assert_eq!(c.next_deadline(), Some(now + Duration::from_secs(6)));
    }

    #[test]
    fn hold_timer_expiry_sends_notification_4() {
        let now = Instant::now();
        let mut c = established(now);
        // Traffic restarts the hold timer.
        c.on_message(Message::Keepalive, now + Duration::from_secs(5));
        assert_eq!(
            sent_notification(&c.on_timer(now + Duration::from_secs(13))),
            None
        );
        let out = c.on_timer(now + Duration::from_secs(14));
        assert_eq!(
            sent_notification(&out),
            Some((ErrorCode::HoldTimerExpired as u8, 0))
        );
        assert!(matches!(out.last(), Some(Output::Closed(CloseReason::Sent(_)))));
        assert_eq!(c.state(), ConnState::Closed);
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn hold_time_zero_disables_both_timers() {
        let now = Instant::now();
        let (mut c, _) = Connection::start(
            Offer {
                hold_time: 0,
                ..offer()
            },
            now,
        );
        c.on_message(peer_open(90), now);
        c.on_message(Message::Keepalive, now);
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn no_open_within_four_minutes() {
        let now = Instant::now();
        let (mut c, _) = Connection::start(offer(), now);
        let out = c.on_timer(now + OPEN_HOLD_TIME);
        assert_eq!(sent_notification(&out), Some((4, 0)));
    }

    /// RFC 4271 §8.2.2 / RFC 6608: unexpected messages per state.
    #[test]
    fn unexpected_messages_are_fsm_errors() {
        let now = Instant::now();
        let update = Message::Update(Update::default());
        let (mut c, _) = Connection::start(offer(), now);
        assert_eq!(
            sent_notification(&c.on_message(update.clone(), now)),
            Some((5, 1))
        );
        let (mut c, _) = Connection::start(offer(), now);
        c.on_message(peer_open(9), now);
        assert_eq!(
            sent_notification(&c.on_message(update.clone(), now)),
            Some((5, 2))
        );
        let mut c = established(now);
        assert_eq!(sent_notification(&c.on_message(peer_open(9), now)), Some((5, 3)));
    }

    #[test]
    fn bad_open_is_refused_with_its_notification() {
        let now = Instant::now();
        let (mut c, _) = Connection::start(
            Offer {
                remote_asn: RemoteAs::Exact(65000),
                ..offer()
            },
            now,
        );
        let out = c.on_message(peer_open(9), now);
        assert_eq!(sent_notification(&out), Some((2, 2)));
        assert_eq!(c.state(), ConnState::Closed);
    }

    #[test]
    fn updates_and_refresh_flow_in_established() {
        let now = Instant::now();
        let mut c = established(now);
        let u = Update::end_of_rib(Family::IPV4_UNICAST);
        assert_eq!(c.on_message(Message::Update(u.clone()), now), [Output::Update(u)]);
        let rr = RouteRefresh::request(Family::IPV4_UNICAST);
        assert_eq!(
            c.on_message(Message::RouteRefresh(rr), now),
            [Output::RouteRefresh(rr)]
        );
        // IPv6 was not negotiated with this peer: ignored.
        let rr6 = RouteRefresh::request(Family::IPV6_UNICAST);
        assert_eq!(c.on_message(Message::RouteRefresh(rr6), now), []);
    }

    #[test]
    fn notification_and_tcp_close_end_the_connection() {
        let now = Instant::now();
        let mut c = established(now);
        let n = Notification::cease(CeaseSubcode::AdministrativeReset);
        assert_eq!(
            c.on_message(Message::Notification(n.clone()), now),
            [Output::Closed(CloseReason::Received(n))]
        );
        assert_eq!(c.on_tcp_closed(), []);
        let mut c = established(now);
        assert_eq!(c.on_tcp_closed(), [Output::Closed(CloseReason::TcpClosed)]);
    }

    #[test]
    fn decode_errors_send_the_codec_notification() {
        let now = Instant::now();
        let mut c = established(now);
        let err = MessageError::new(
            Notification::header(HeaderSubcode::BadMessageType, vec![9]),
            "test",
        );
        let out = c.on_decode_error(err);
        assert_eq!(sent_notification(&out), Some((1, 3)));
    }

    /// A peer that stops talking is treated as gone, not as restarting:
    /// its routes go at once instead of lingering for its restart time.
    #[test]
    fn hold_timer_expiry_does_not_keep_routes() {
        use bgp_proto::capability::GracefulRestart;
        let now = Instant::now();
        let gr = GracefulRestart {
            notification: true,
            restart_time: 120,
            ..Default::default()
        };
        let (mut c, _) = Connection::start(
            Offer {
                graceful_restart: Some(gr.clone()),
                ..offer()
            },
            now,
        );
        let Message::Open(mut open) = peer_open(9) else {
            unreachable!()
        };
        open.capabilities.push(Capability::GracefulRestart(gr));
        c.on_message(Message::Open(open), now);
        c.on_message(Message::Keepalive, now);
        let negotiated = c.negotiated().unwrap().clone();
        let out = c.on_timer(now + Duration::from_secs(9));
        let Some(Output::Closed(reason)) = out.last() else {
            panic!("{out:?}")
        };
        assert!(!reason.keeps_routes(&negotiated), "silent peer: routes go");
        assert!(
            CloseReason::TcpClosed.keeps_routes(&negotiated),
            "restarting peer: routes stay"
        );
        let cease = Notification::cease(CeaseSubcode::AdministrativeReset);
        assert!(CloseReason::Received(cease.clone()).keeps_routes(&negotiated));
        assert!(CloseReason::Sent(cease.clone()).keeps_routes(&negotiated));
        assert!(!CloseReason::Received(Notification::hard_reset(&cease)).keeps_routes(&negotiated));
    }

    #[test]
    fn collision_loser_sends_cease_7() {
        let now = Instant::now();
        let (mut c, _) = Connection::start(offer(), now);
        c.on_message(peer_open(9), now);
        assert_eq!(sent_notification(&c.lose_collision()), Some((6, 7)));
    }

    #[test]
    fn a_hold_without_graceful_restart_follows_the_peers_side_only() {
        use bgp_proto::notification::CeaseSubcode;
        let cease = Notification::cease(CeaseSubcode::AdministrativeShutdown);
        assert!(CloseReason::TcpClosed.from_peer_side());
        assert!(CloseReason::Replaced.from_peer_side());
        assert!(CloseReason::Received(cease.clone()).from_peer_side());
        // A Hard Reset says the routes go (Cilium deselecting the node);
        // and what we ended, we ended.
        assert!(!CloseReason::Received(Notification::hard_reset(&cease)).from_peer_side());
        assert!(!CloseReason::Sent(cease).from_peer_side());
    }
}
