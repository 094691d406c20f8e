//! One BFD session in asynchronous mode (RFC 5880 §6), sans I/O: packets,
//! `now` and timer events in, packets to send and state changes out. The
//! task in `bfd/task.rs` owns the sockets and the clock.
//!
//! Timers (§6.8.2, §6.8.3, §6.8.7):
//! - while not Up, tern advertises a Desired Min TX of at least 1 s;
//! - a change of Desired Min TX or Required Min RX starts a Poll Sequence
//!   (P on the periodic packets until a packet with F comes back); a
//!   larger TX interval, or a smaller RX interval, only takes effect when
//!   it ends, the other way round at once;
//! - the transmit interval is max(our Desired Min TX, the peer's Required
//!   Min RX), jittered down to 75–100% (75–90% with a Detect Mult of 1);
//! - the Detection Time is the peer's Detect Mult × max(our Required Min
//!   RX, the peer's Desired Min TX).

use std::time::{Duration, Instant};

use super::packet::{Diag, Drop, Packet, State, micros};

/// While not Up, packets go at most once a second (RFC 5880 §6.8.3).
pub const SLOW: Duration = Duration::from_secs(1);

/// What a session is configured with.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timers {
    /// Desired Min TX Interval once Up.
    pub min_tx: Duration,
    /// Required Min RX Interval.
    pub min_rx: Duration,
    /// Detect Mult.
    pub multiplier: u8,
}

impl Default for Timers {
    /// 300 ms × 3, as FRR's bfdd and bird2.
    fn default() -> Self {
        Timers {
            min_tx: Duration::from_millis(300),
            min_rx: Duration::from_millis(300),
            multiplier: 3,
        }
    }
}

/// What a session hands to the next run of tern across a planned restart
/// (see [`Session::hold_for_restart`] and [`Session::resume`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Handover {
    pub local_discr: u32,
    pub remote_discr: u32,
    pub remote_min_rx_us: u64,
    pub remote_min_tx_us: u64,
    pub remote_mult: u8,
}

/// What happened that the owner must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send(Packet),
    Changed { from: State, to: State, diag: Diag },
}

pub struct Session {
    local_discr: u32,
    passive: bool,
    config: Timers,
    state: State,
    diag: Diag,
    remote_state: State,
    remote_diag: Diag,
    remote_discr: u32,
    /// What we advertise: bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval.
    desired_min_tx: Duration,
    required_min_rx: Duration,
    /// What is in force until a Poll Sequence ends.
    tx_in_use: Duration,
    rx_in_use: Duration,
    polling: bool,
    remote_min_rx: Duration,
    remote_min_tx: Duration,
    remote_mult: u8,
    next_tx: Option<Instant>,
    detect_at: Option<Instant>,
    rng: u64,
    since: Instant,
    ups: u64,
    flaps: u64,
}

/// A session as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub state: State,
    pub remote_state: State,
    pub diag: Diag,
    pub remote_diag: Diag,
    pub local_discr: u32,
    pub remote_discr: u32,
    /// The transmit interval in force, before jitter.
    pub tx_interval: Duration,
    /// How long without a packet before the session goes Down.
    pub detection_time: Duration,
    pub multiplier: u8,
    pub remote_multiplier: u8,
    pub remote_min_rx: Duration,
    pub remote_min_tx: Duration,
    /// Since the last state change.
    pub since: Instant,
    /// Times the session came Up.
    pub ups: u64,
    /// Times it left Up.
    pub flaps: u64,
}

impl Session {
    /// A new session in Down. `seed` feeds the transmit jitter; any value
    /// will do.
    pub fn new(local_discr: u32, config: Timers, passive: bool, now: Instant, seed: u64) -> Session {
        let slow = config.min_tx.max(SLOW);
        Session {
            local_discr,
            passive,
            config,
            state: State::Down,
            diag: Diag::NONE,
            remote_state: State::Down,
            remote_diag: Diag::NONE,
            remote_discr: 0,
            desired_min_tx: slow,
            required_min_rx: config.min_rx,
            tx_in_use: slow,
            rx_in_use: config.min_rx,
            polling: false,
            // RFC 5880 §6.8.1: initialised to 1 (µs).
            remote_min_rx: Duration::from_micros(1),
            remote_min_tx: Duration::ZERO,
            remote_mult: 0,
            next_tx: (!passive).then_some(now),
            detect_at: None,
            rng: seed | 1,
            since: now,
            ups: 0,
            flaps: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The peer's state as last heard (Down once it is forgotten).
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.state,
            remote_state: self.remote_state,
            diag: self.diag,
            remote_diag: self.remote_diag,
            local_discr: self.local_discr,
            remote_discr: self.remote_discr,
            tx_interval: self.tx_interval(),
            detection_time: self.detection_time(),
            multiplier: self.config.multiplier,
            remote_multiplier: self.remote_mult,
            remote_min_rx: self.remote_min_rx,
            remote_min_tx: self.remote_min_tx,
            since: self.since,
            ups: self.ups,
            flaps: self.flaps,
        }
    }

    /// The earliest time [`Session::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.next_tx, self.detect_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn tx_interval(&self) -> Duration {
        self.tx_in_use.max(self.remote_min_rx)
    }

    fn detection_time(&self) -> Duration {
        self.rx_in_use.max(self.remote_min_tx) * u32::from(self.remote_mult)
    }

    fn packet(&self, poll: bool, final_: bool) -> Packet {
        Packet {
            diag: self.diag,
            state: self.state,
            poll,
            final_,
            cpi: false,
            demand: false,
            detect_mult: self.config.multiplier,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx: micros(self.desired_min_tx),
            required_min_rx: micros(self.required_min_rx),
            required_min_echo_rx: 0,
        }
    }

    /// A received packet that got past [`Packet::decode`] and was
    /// demultiplexed to this session (RFC 5880 §6.8.6).
    pub fn on_packet(&mut self, p: &Packet, now: Instant) -> Result<Vec<Action>, Drop> {
        if p.your_discr == 0 && !matches!(self.state, State::Down | State::AdminDown) {
            return Err(Drop::YourDiscriminator);
        }
        let mut out = Vec::new();
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_diag = p.diag;
        self.remote_min_rx = Duration::from_micros(u64::from(p.required_min_rx));
        self.remote_min_tx = Duration::from_micros(u64::from(p.desired_min_tx));
        self.remote_mult = p.detect_mult;
        if p.final_ && self.polling {
            self.polling = false;
            self.tx_in_use = self.desired_min_tx;
            self.rx_in_use = self.required_min_rx;
        }
        if self.state == State::AdminDown {
            return Ok(out);
        }
        let to = if p.state == State::AdminDown {
            (self.state != State::Down).then_some((State::Down, Diag::NEIGHBOR_SIGNALED_DOWN))
        } else {
            match (self.state, p.state) {
                (State::Down, State::Down) => Some((State::Init, Diag::NONE)),
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    Some((State::Up, Diag::NONE))
                }
                (State::Up, State::Down) => Some((State::Down, Diag::NEIGHBOR_SIGNALED_DOWN)),
                _ => None,
            }
        };
        if let Some((to, diag)) = to {
            self.change(to, diag, now, &mut out);
        }
        // A passive session speaks once it has been spoken to.
        if self.next_tx.is_none() && self.remote_min_rx > Duration::ZERO {
            self.next_tx = Some(now);
        }
        if p.poll {
            out.push(Action::Send(self.packet(false, true)));
        }
        self.detect_at = Some(now + self.detection_time());
        Ok(out)
    }

    /// Timers: the Detection Time passing without a packet, and periodic
    /// transmission.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.detect_at.is_some_and(|t| t <= now) {
            self.detect_at = None;
            if matches!(self.state, State::Init | State::Up) {
                self.change(State::Down, Diag::DETECTION_TIME_EXPIRED, now, &mut out);
            }
            // RFC 5880 §6.8.1: the remote is forgotten.
            self.remote_discr = 0;
            self.remote_state = State::Down;
            self.remote_min_rx = Duration::from_micros(1);
        }
        if self.next_tx.is_some_and(|t| t <= now) {
            if self.remote_min_rx.is_zero() || (self.passive && self.remote_discr == 0) {
                self.next_tx = None;
            } else {
                out.push(Action::Send(self.packet(self.polling, false)));
                self.next_tx = Some(now + self.jittered(self.tx_interval()));
            }
        }
        out
    }

    /// New timers (a reload): a Poll Sequence if they change what is
    /// advertised; the session stays Up.
    pub fn set_timers(&mut self, config: Timers, passive: bool) {
        self.passive = passive;
        if config == self.config {
            return;
        }
        self.config = config;
        let tx = if self.state == State::Up {
            config.min_tx
        } else {
            config.min_tx.max(SLOW)
        };
        self.advertise(tx, config.min_rx);
    }

    /// Before a planned restart (RFC 5882 §4.3.2.2): advertise a Desired
    /// Min TX of `hold` / Detect Mult, so the peer's Detection Time covers
    /// the restart, by a Poll Sequence. When it ends ([`Session::handover`])
    /// the process can go; the next one [`Session::resume`]s the session
    /// Up, and the peer never sees it fail.
    pub fn hold_for_restart(&mut self, hold: Duration) {
        if self.state == State::Up {
            let tx = hold / u32::from(self.config.multiplier.max(1));
            self.advertise(tx, self.required_min_rx);
        }
    }

    /// What the next run needs, once the peer has acknowledged the long
    /// interval ([`Session::hold_for_restart`]'s Poll Sequence ended).
    pub fn handover(&self) -> Option<Handover> {
        let done = self.state == State::Up && !self.polling && self.desired_min_tx > self.config.min_tx;
        done.then_some(Handover {
            local_discr: self.local_discr,
            remote_discr: self.remote_discr,
            remote_min_rx_us: self.remote_min_rx.as_micros() as u64,
            remote_min_tx_us: self.remote_min_tx.as_micros() as u64,
            remote_mult: self.remote_mult,
        })
    }

    /// A session the previous run handed over: Up, with its
    /// discriminators, advertising the configured timers again by a Poll
    /// Sequence. It goes Down as usual if the peer does not answer.
    pub fn resume(h: &Handover, config: Timers, passive: bool, now: Instant, seed: u64) -> Session {
        let mut s = Session::new(h.local_discr, config, passive, now, seed);
        s.state = State::Up;
        s.remote_state = State::Up;
        s.remote_discr = h.remote_discr;
        s.remote_min_rx = Duration::from_micros(h.remote_min_rx_us);
        s.remote_min_tx = Duration::from_micros(h.remote_min_tx_us);
        s.remote_mult = h.remote_mult;
        // The peer still expects the long interval: anything faster is
        // safe at once; its Final makes the configured values official.
        s.desired_min_tx = config.min_tx;
        s.tx_in_use = config.min_tx;
        s.polling = true;
        s.next_tx = Some(now);
        s.detect_at = Some(now + s.detection_time());
        s.ups = 1;
        s
    }

    /// Stops the session for good: AdminDown (diag 7) is what the peer
    /// hears from now on.
    pub fn admin_down(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        self.change(State::AdminDown, Diag::ADMINISTRATIVELY_DOWN, now, &mut out);
        if self.next_tx.is_some() {
            out.push(Action::Send(self.packet(false, false)));
        }
        out
    }

    fn advertise(&mut self, tx: Duration, rx: Duration) {
        if tx == self.desired_min_tx && rx == self.required_min_rx {
            return;
        }
        let up = self.state == State::Up;
        // Slower transmission, or faster reception, waits for the peer to
        // know (the end of the Poll Sequence); the rest is safe at once.
        if !(up && tx > self.tx_in_use) {
            self.tx_in_use = tx;
        }
        if !(up && rx < self.rx_in_use) {
            self.rx_in_use = rx;
        }
        self.desired_min_tx = tx;
        self.required_min_rx = rx;
        self.polling = true;
    }

    fn change(&mut self, to: State, diag: Diag, now: Instant, out: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.diag = diag;
        self.since = now;
        if to == State::Up {
            self.ups += 1;
            self.advertise(self.config.min_tx, self.config.min_rx);
        } else if from == State::Up {
            self.flaps += 1;
            self.advertise(self.config.min_tx.max(SLOW), self.config.min_rx);
        }
        // The peer hears of it at once, not a (maybe slow) interval later:
        // its Detection Time may already count in the new state's terms.
        if self.next_tx.is_some() {
            self.next_tx = Some(now);
        }
        out.push(Action::Changed { from, to, diag });
    }

    /// 75–100% of `interval` (75–90% with a Detect Mult of 1).
    fn jittered(&mut self, interval: Duration) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let span = if self.config.multiplier == 1 { 150 } else { 250 };
        let permille = 750 + self.rng % span;
        interval * permille as u32 / 1000
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// What a peer at 300 ms × 3 sends.
    pub(crate) fn peer_packet(state: State, my: u32, your: u32) -> Packet {
        Packet {
            diag: Diag::NONE,
            state,
            poll: false,
            final_: false,
            cpi: false,
            demand: false,
            detect_mult: 3,
            my_discr: my,
            your_discr: your,
            desired_min_tx: 300_000,
            required_min_rx: 300_000,
            required_min_echo_rx: 0,
        }
    }

    fn sent(out: &[Action]) -> Vec<Packet> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send(p) => Some(p.clone()),
                Action::Changed { .. } => None,
            })
            .collect()
    }

    fn changes(out: &[Action]) -> Vec<(State, State, Diag)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Changed { from, to, diag } => Some((*from, *to, *diag)),
                Action::Send(_) => None,
            })
            .collect()
    }

    /// A session brought Up by the three-way handshake with peer 99.
    fn up(now: Instant) -> Session {
        let mut s = Session::new(7, Timers::default(), false, now, 1);
        let first = s.on_timer(now);
        assert_eq!(sent(&first)[0].state, State::Down);
        assert_eq!(sent(&first)[0].desired_min_tx, 1_000_000, "1 s while not Up");
        let out = s.on_packet(&peer_packet(State::Down, 99, 0), now).unwrap();
        assert_eq!(changes(&out), [(State::Down, State::Init, Diag::NONE)]);
        let out = s.on_packet(&peer_packet(State::Up, 99, 7), now).unwrap();
        assert_eq!(changes(&out), [(State::Init, State::Up, Diag::NONE)]);
        s
    }

    #[test]
    fn three_way_handshake_then_poll_to_the_fast_timers() {
        let now = Instant::now();
        let mut s = up(now);
        // The peer hears of Up at once, not an interval of 1 s later.
        assert_eq!(s.next_deadline(), Some(now));
        // Up: the fast timers are advertised with P until F comes back.
        s.on_packet(&peer_packet(State::Up, 99, 7), now + SLOW).unwrap();
        let out = s.on_timer(now + SLOW);
        let p = &sent(&out)[0];
        assert!(p.poll && p.state == State::Up && p.your_discr == 99);
        assert_eq!(p.desired_min_tx, 300_000);
        let mut fin = peer_packet(State::Up, 99, 7);
        fin.final_ = true;
        s.on_packet(&fin, now + SLOW).unwrap();
        let next = s.next_deadline().unwrap();
        assert!(next <= now + SLOW + 300 * MS);
        let out = s.on_timer(next);
        assert!(!sent(&out)[0].poll);
        assert_eq!(s.snapshot().tx_interval, 300 * MS);
        assert_eq!(s.snapshot().detection_time, 900 * MS);
    }

    #[test]
    fn received_down_while_down_goes_init_and_init_goes_up() {
        let now = Instant::now();
        let mut s = Session::new(7, Timers::default(), false, now, 1);
        // Up while Down is ignored (§6.8.6).
        let out = s.on_packet(&peer_packet(State::Up, 99, 7), now).unwrap();
        assert!(changes(&out).is_empty());
        let out = s.on_packet(&peer_packet(State::Init, 99, 7), now).unwrap();
        assert_eq!(changes(&out), [(State::Down, State::Up, Diag::NONE)]);
    }

    #[test]
    fn silence_for_the_detection_time_takes_it_down() {
        let now = Instant::now();
        let mut s = up(now);
        // Three missed packets of 300 ms: down at exactly 900 ms.
        assert!(changes(&s.on_timer(now + 899 * MS)).is_empty());
        let out = s.on_timer(now + 900 * MS);
        assert_eq!(
            changes(&out),
            [(State::Up, State::Down, Diag::DETECTION_TIME_EXPIRED)]
        );
        let p = &sent(&s.on_timer(now + 2 * SLOW))[0];
        assert_eq!((p.state, p.diag.0, p.your_discr), (State::Down, 1, 0));
        assert_eq!(p.desired_min_tx, 1_000_000, "slow again while Down");
    }

    #[test]
    fn neighbor_down_and_admin_down_take_it_down_with_diag_3() {
        let now = Instant::now();
        let mut s = up(now);
        let out = s.on_packet(&peer_packet(State::Down, 99, 7), now).unwrap();
        assert_eq!(
            changes(&out),
            [(State::Up, State::Down, Diag::NEIGHBOR_SIGNALED_DOWN)]
        );
        let mut s = up(now);
        let out = s.on_packet(&peer_packet(State::AdminDown, 99, 7), now).unwrap();
        assert_eq!(
            changes(&out),
            [(State::Up, State::Down, Diag::NEIGHBOR_SIGNALED_DOWN)]
        );
    }

    #[test]
    fn zero_your_discriminator_past_down_is_dropped() {
        let now = Instant::now();
        let mut s = up(now);
        assert_eq!(
            s.on_packet(&peer_packet(State::Up, 99, 0), now),
            Err(Drop::YourDiscriminator)
        );
        assert_eq!(s.state(), State::Up);
    }

    #[test]
    fn a_poll_is_answered_with_final_at_once() {
        let now = Instant::now();
        let mut s = up(now);
        let mut p = peer_packet(State::Up, 99, 7);
        p.poll = true;
        let out = s.on_packet(&p, now).unwrap();
        let f = &sent(&out)[0];
        assert!(f.final_ && !f.poll);
    }

    #[test]
    fn slower_tx_waits_for_the_final_and_faster_rx_too() {
        let now = Instant::now();
        let mut s = up(now);
        let mut fin = peer_packet(State::Up, 99, 7);
        fin.final_ = true;
        s.on_packet(&fin, now).unwrap();
        assert_eq!(s.snapshot().tx_interval, 300 * MS);
        s.set_timers(
            Timers {
                min_tx: Duration::from_secs(2),
                min_rx: 100 * MS,
                multiplier: 3,
            },
            false,
        );
        // Advertised at once, with P; in force only after F.
        s.on_packet(&peer_packet(State::Up, 99, 7), now + SLOW).unwrap();
        let p = &sent(&s.on_timer(now + SLOW))[0];
        assert!(p.poll);
        assert_eq!((p.desired_min_tx, p.required_min_rx), (2_000_000, 100_000));
        assert_eq!(s.snapshot().tx_interval, 300 * MS);
        assert_eq!(s.snapshot().detection_time, 900 * MS);
        s.on_packet(&fin, now + SLOW).unwrap();
        assert_eq!(s.snapshot().tx_interval, 2 * SLOW);
        assert_eq!(
            s.snapshot().detection_time,
            900 * MS,
            "the peer still sends every 300 ms"
        );
        assert_eq!(
            s.state(),
            State::Up,
            "a timer change never takes the session down"
        );
    }

    #[test]
    fn transmit_jitter_stays_in_75_to_100_percent() {
        let now = Instant::now();
        let mut s = up(now);
        let mut fin = peer_packet(State::Up, 99, 7);
        fin.final_ = true;
        s.on_packet(&fin, now).unwrap();
        let mut t = now;
        for _ in 0..1000 {
            s.on_packet(&peer_packet(State::Up, 99, 7), t).unwrap();
            let out = s.on_timer(t);
            if !sent(&out).is_empty() {
                let gap = s.next_tx.unwrap() - t;
                assert!(gap >= 225 * MS && gap <= 300 * MS, "{gap:?}");
            }
            t = s.next_tx.unwrap();
        }
        // With a Detect Mult of 1: 75–90%.
        let mut s = Session::new(
            7,
            Timers {
                multiplier: 1,
                ..Timers::default()
            },
            false,
            now,
            3,
        );
        for _ in 0..1000 {
            let t = s.next_tx.unwrap();
            s.on_timer(t);
            let gap = s.next_tx.unwrap() - t;
            assert!(gap >= 750 * MS && gap <= 900 * MS, "{gap:?}");
        }
    }

    #[test]
    fn passive_waits_to_be_spoken_to() {
        let now = Instant::now();
        let mut s = Session::new(7, Timers::default(), true, now, 1);
        assert_eq!(s.next_deadline(), None);
        assert!(s.on_timer(now + SLOW).is_empty());
        s.on_packet(&peer_packet(State::Down, 99, 0), now + SLOW).unwrap();
        let out = s.on_timer(now + SLOW);
        assert_eq!(sent(&out)[0].state, State::Init);
    }

    #[test]
    fn a_peer_asking_for_no_packets_gets_none() {
        let now = Instant::now();
        let mut s = up(now);
        let mut p = peer_packet(State::Up, 99, 7);
        p.required_min_rx = 0;
        s.on_packet(&p, now + 800 * MS).unwrap();
        assert!(sent(&s.on_timer(now + SLOW)).is_empty());
        assert_eq!(s.state(), State::Up);
    }

    #[test]
    fn a_planned_restart_hands_the_session_over_without_a_flap() {
        let now = Instant::now();
        let mut s = up(now);
        let mut fin = peer_packet(State::Up, 99, 7);
        fin.final_ = true;
        s.on_packet(&fin, now).unwrap();
        assert_eq!(s.handover(), None, "nothing to hand over before the hold");
        // Before stopping: 120 s / 3 = 40 s advertised with P.
        s.hold_for_restart(Duration::from_secs(120));
        s.on_packet(&peer_packet(State::Up, 99, 7), now + 200 * MS)
            .unwrap();
        let t = s.next_deadline().unwrap();
        let p = &sent(&s.on_timer(t))[0];
        assert!(p.poll);
        assert_eq!(p.desired_min_tx, 40_000_000);
        assert_eq!(s.handover(), None, "not before the peer's Final");
        s.on_packet(&fin, t).unwrap();
        let h = s.handover().expect("handed over");
        assert_eq!((h.local_discr, h.remote_discr, h.remote_mult), (7, 99, 3));

        // The next run: Up at once with the same discriminators, the
        // configured timers advertised again with P.
        let later = now + Duration::from_secs(5);
        let mut next = Session::resume(&h, Timers::default(), false, later, 5);
        assert_eq!(next.state(), State::Up);
        let p = &sent(&next.on_timer(later))[0];
        assert_eq!((p.state, p.my_discr, p.your_discr), (State::Up, 7, 99));
        assert!(p.poll);
        assert_eq!(p.desired_min_tx, 300_000);
        let out = next.on_packet(&fin, later + 10 * MS).unwrap();
        assert!(changes(&out).is_empty(), "no state change: {out:?}");
        assert_eq!(next.snapshot().tx_interval, 300 * MS);
        // And it still fails like any session when the peer is gone.
        let out = next.on_timer(later + 10 * MS + 900 * MS);
        assert_eq!(
            changes(&out),
            [(State::Up, State::Down, Diag::DETECTION_TIME_EXPIRED)]
        );
    }

    #[test]
    fn admin_down_is_sent_and_received_packets_change_nothing() {
        let now = Instant::now();
        let mut s = up(now);
        let out = s.admin_down(now);
        assert_eq!(
            changes(&out),
            [(State::Up, State::AdminDown, Diag::ADMINISTRATIVELY_DOWN)]
        );
        assert_eq!(sent(&out)[0].state, State::AdminDown);
        let out = s.on_packet(&peer_packet(State::Up, 99, 7), now).unwrap();
        assert!(changes(&out).is_empty());
        assert_eq!(s.state(), State::AdminDown);
    }
}
