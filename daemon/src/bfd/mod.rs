//! BFD (RFC 5880) for BGP peers: asynchronous mode, single-hop (RFC 5881,
//! UDP 3784, TTL 255 sent and required) and multihop (RFC 5883, UDP
//! 4784), IPv4 and IPv6.
//!
//! - `packet.rs`: the Control packet and the checks that need no session.
//! - `session.rs`: one session's state machine and timers, sans I/O.
//! - this file: the sessions of the node, found by discriminator or by
//!   address (demultiplexing, RFC 5880 §6.8.6), and their counters; sans
//!   I/O too.
//! - `task.rs`: sockets and clock, on a thread of its own so that nothing
//!   the RIB or the FIB does can delay a packet.
//!
//! A session going from Up to Down takes its BGP session down (RFC 5882,
//! Cease / BFD Down, RFC 9384); one that never came Up holds nothing back.

pub mod packet;
pub mod session;
pub mod task;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Instant;

pub use packet::{Diag, Drop, Packet, State};
pub use session::{Action, Handover, Session, Snapshot, Timers};

/// UDP ports (RFC 5881 §4, RFC 5883 §5).
pub const SINGLE_HOP_PORT: u16 = 3784;
pub const MULTIHOP_PORT: u16 = 4784;

/// What a session is for: one BGP peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The BGP peer's name.
    pub peer: String,
    pub remote: IpAddr,
    /// The link of a link-local `remote` (an unnumbered peer).
    pub ifindex: Option<u32>,
    pub local: Option<IpAddr>,
    pub multihop: bool,
    pub timers: Timers,
    pub passive: bool,
}

/// A state change of a peer's session, for the BGP side and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub peer: String,
    pub from: State,
    pub to: State,
    pub diag: Diag,
    /// The peer's state as last heard: AdminDown when it took the session
    /// down on purpose.
    pub remote: State,
}

impl Change {
    /// Forwarding to the peer failed: the session left Up, and not because
    /// the peer said AdminDown (RFC 5882 §4.2: then the client takes no
    /// action).
    pub fn is_failure(&self) -> bool {
        self.from == State::Up && self.to == State::Down && self.remote != State::AdminDown
    }
}

struct Entry {
    config: SessionConfig,
    session: Session,
}

/// Every session of the node.
pub struct Sessions {
    by_discr: HashMap<u32, Entry>,
    next_discr: u32,
    seed: u64,
    pub received: u64,
    pub sent: u64,
    pub dropped: BTreeMap<Drop, u64>,
}

/// A datagram received on a BFD port.
#[derive(Clone, Debug)]
pub struct Datagram {
    pub bytes: Vec<u8>,
    pub from: IpAddr,
    /// Its TTL or hop limit.
    pub ttl: u8,
    /// Received on the multihop port.
    pub multihop: bool,
}

/// A packet to send for a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub discr: u32,
    pub packet: Packet,
}

impl Sessions {
    /// `seed` varies discriminators and jitter between runs.
    pub fn new(seed: u64) -> Sessions {
        Sessions {
            by_discr: HashMap::new(),
            // Never 0 (RFC 5880 §6.8.1).
            next_discr: (seed as u32 & 0x00ff_ffff).max(1),
            seed,
            received: 0,
            sent: 0,
            dropped: BTreeMap::new(),
        }
    }

    /// Adds a session, or updates the one of `config.peer` (a timer
    /// change goes through a Poll Sequence and keeps it Up; new addresses
    /// make it a new session). Returns its discriminator.
    pub fn configure(&mut self, config: SessionConfig, now: Instant) -> u32 {
        if let Some((&d, e)) = self
            .by_discr
            .iter_mut()
            .find(|(_, e)| e.config.peer == config.peer)
        {
            let same_path = e.config.remote == config.remote
                && e.config.local == config.local
                && e.config.multihop == config.multihop;
            if same_path {
                e.session.set_timers(config.timers, config.passive);
                e.config = config;
                return d;
            }
            self.by_discr.remove(&d);
        }
        let discr = self.allocate();
        let session = Session::new(discr, config.timers, config.passive, now, self.next_seed());
        self.by_discr.insert(discr, Entry { config, session });
        discr
    }

    /// Takes up a session the previous run handed over (Up, same
    /// discriminators), unless `config.peer` has one already or its
    /// discriminator is taken.
    pub fn resume(&mut self, config: SessionConfig, h: &Handover, now: Instant) -> Option<u32> {
        if self.by_discr.contains_key(&h.local_discr)
            || self.by_discr.values().any(|e| e.config.peer == config.peer)
        {
            return None;
        }
        let session = Session::resume(h, config.timers, config.passive, now, self.next_seed());
        self.by_discr.insert(h.local_discr, Entry { config, session });
        Some(h.local_discr)
    }

    /// Asks every Up session's peer for a Detection Time of `hold`, ahead
    /// of a planned restart.
    pub fn hold_for_restart(&mut self, hold: std::time::Duration) {
        for e in self.by_discr.values_mut() {
            e.session.hold_for_restart(hold);
        }
    }

    /// True when every Up session's peer has acknowledged the hold.
    pub fn handover_ready(&self) -> bool {
        self.by_discr
            .values()
            .all(|e| e.session.state() != State::Up || e.session.handover().is_some())
    }

    /// The sessions to hand to the next run.
    pub fn handovers(&self) -> Vec<(SessionConfig, Handover)> {
        self.by_discr
            .values()
            .filter_map(|e| Some((e.config.clone(), e.session.handover()?)))
            .collect()
    }

    /// A jitter seed for a new session, different for each.
    fn next_seed(&mut self) -> u64 {
        self.seed = self
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.seed
    }

    fn allocate(&mut self) -> u32 {
        loop {
            let d = self.next_discr;
            self.next_discr = self.next_discr.wrapping_add(1).max(1);
            if !self.by_discr.contains_key(&d) {
                return d;
            }
        }
    }

    /// Removes the session of `peer`; the packet that tells the peer
    /// (AdminDown, RFC 5880 §6.8.16), if it was being spoken to, is
    /// returned to send once.
    pub fn remove(&mut self, peer: &str, now: Instant) -> Option<(SessionConfig, Option<Packet>)> {
        let d = *self.by_discr.iter().find(|(_, e)| e.config.peer == peer)?.0;
        let mut e = self.by_discr.remove(&d)?;
        let packet = e.session.admin_down(now).into_iter().find_map(|a| match a {
            Action::Send(p) => Some(p),
            Action::Changed { .. } => None,
        });
        Some((e.config, packet))
    }

    /// The peers with a session.
    pub fn peers(&self) -> impl Iterator<Item = &str> {
        self.by_discr.values().map(|e| e.config.peer.as_str())
    }

    /// A datagram as it arrived.
    pub fn receive(
        &mut self,
        d: &Datagram,
        now: Instant,
        out: &mut Vec<Outgoing>,
        changes: &mut Vec<Change>,
    ) -> Result<(), Drop> {
        self.received += 1;
        let result = self.demux(d, now, out, changes);
        if let Err(drop) = result {
            *self.dropped.entry(drop).or_default() += 1;
        }
        result
    }

    fn demux(
        &mut self,
        d: &Datagram,
        now: Instant,
        out: &mut Vec<Outgoing>,
        changes: &mut Vec<Change>,
    ) -> Result<(), Drop> {
        let p = Packet::decode(&d.bytes)?;
        // GTSM for single hop (RFC 5881 §5): only a neighbour on the link
        // can send 255.
        if !d.multihop && d.ttl != 255 {
            return Err(Drop::Ttl);
        }
        let from = canonical(d.from);
        let discr = if p.your_discr != 0 {
            match self.by_discr.get(&p.your_discr) {
                Some(e) if e.config.multihop == d.multihop && e.config.remote == from => p.your_discr,
                _ => return Err(Drop::YourDiscriminator),
            }
        } else {
            *self
                .by_discr
                .iter()
                .find(|(_, e)| e.config.remote == from && e.config.multihop == d.multihop)
                .ok_or(Drop::NoSession)?
                .0
        };
        let e = self.by_discr.get_mut(&discr).expect("found above");
        let actions = e.session.on_packet(&p, now)?;
        collect(
            discr,
            &e.config.peer,
            e.session.remote_state(),
            actions,
            out,
            changes,
        );
        Ok(())
    }

    /// Runs the timers that are due.
    pub fn on_timer(&mut self, now: Instant, out: &mut Vec<Outgoing>, changes: &mut Vec<Change>) {
        for (&d, e) in &mut self.by_discr {
            if e.session.next_deadline().is_some_and(|t| t <= now) {
                let actions = e.session.on_timer(now);
                collect(d, &e.config.peer, e.session.remote_state(), actions, out, changes);
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_discr
            .values()
            .filter_map(|e| e.session.next_deadline())
            .min()
    }

    /// Every session, by peer name.
    pub fn snapshots(&self) -> Vec<(SessionConfig, Snapshot)> {
        let mut v: Vec<_> = self
            .by_discr
            .values()
            .map(|e| (e.config.clone(), e.session.snapshot()))
            .collect();
        v.sort_by(|a, b| a.0.peer.cmp(&b.0.peer));
        v
    }
}

fn collect(
    discr: u32,
    peer: &str,
    remote: State,
    actions: Vec<Action>,
    out: &mut Vec<Outgoing>,
    changes: &mut Vec<Change>,
) {
    for a in actions {
        match a {
            Action::Send(packet) => out.push(Outgoing { discr, packet }),
            Action::Changed { from, to, diag } => changes.push(Change {
                peer: peer.to_owned(),
                from,
                to,
                diag,
                remote,
            }),
        }
    }
}

/// IPv4-mapped IPv6 addresses (an IPv4 packet on a dual-stack socket) as
/// IPv4.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(peer: &str, remote: &str) -> SessionConfig {
        SessionConfig {
            peer: peer.into(),
            remote: remote.parse().unwrap(),
            ifindex: None,
            local: None,
            multihop: false,
            timers: Timers::default(),
            passive: false,
        }
    }

    fn dg(bytes: Vec<u8>, from: IpAddr, ttl: u8, multihop: bool) -> Datagram {
        Datagram {
            bytes,
            from,
            ttl,
            multihop,
        }
    }

    fn bytes(state: State, my: u32, your: u32) -> Vec<u8> {
        session::tests::peer_packet(state, my, your).encode().to_vec()
    }

    #[test]
    fn sessions_are_found_by_address_then_by_discriminator() {
        let now = Instant::now();
        let mut s = Sessions::new(42);
        let a = s.configure(config("a", "10.0.0.2"), now);
        let b = s.configure(config("b", "fd00::2"), now);
        assert_ne!(a, b);
        let (mut out, mut ch) = (Vec::new(), Vec::new());
        let from: IpAddr = "10.0.0.2".parse().unwrap();
        let first = dg(bytes(State::Down, 99, 0), from, 255, false);
        s.receive(&first, now, &mut out, &mut ch).unwrap();
        assert_eq!(ch[0].peer, "a");
        assert_eq!(ch[0].to, State::Init);
        let second = dg(bytes(State::Up, 99, a), from, 255, false);
        s.receive(&second, now, &mut out, &mut ch).unwrap();
        assert_eq!(ch[1].to, State::Up);
        // An IPv4 packet seen on a dual-stack socket.
        let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let third = dg(bytes(State::Up, 99, a), mapped, 255, false);
        s.receive(&third, now, &mut out, &mut ch).unwrap();
    }

    #[test]
    fn packets_without_a_session_or_with_low_ttl_are_dropped_and_counted() {
        let now = Instant::now();
        let mut s = Sessions::new(42);
        let a = s.configure(config("a", "10.0.0.2"), now);
        let (mut out, mut ch) = (Vec::new(), Vec::new());
        let from: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "10.0.0.9".parse().unwrap();
        let mut drop =
            |b: Vec<u8>, from, ttl, multihop| s.receive(&dg(b, from, ttl, multihop), now, &mut out, &mut ch);
        assert_eq!(drop(bytes(State::Down, 99, 0), from, 254, false), Err(Drop::Ttl));
        assert_eq!(
            drop(bytes(State::Down, 99, 0), stranger, 255, false),
            Err(Drop::NoSession)
        );
        assert_eq!(
            drop(bytes(State::Down, 99, a + 1), from, 255, false),
            Err(Drop::YourDiscriminator)
        );
        // The right discriminator from another address, or on the other port.
        assert_eq!(
            drop(bytes(State::Down, 99, a), stranger, 255, false),
            Err(Drop::YourDiscriminator)
        );
        assert_eq!(
            drop(bytes(State::Down, 99, a), from, 255, true),
            Err(Drop::YourDiscriminator)
        );
        assert_eq!(drop(vec![0x20; 10], from, 255, false), Err(Drop::Length));
        assert_eq!(s.received, 6);
        assert_eq!(s.dropped[&Drop::YourDiscriminator], 3);
        assert!(ch.is_empty());
    }

    #[test]
    fn reconfigured_timers_keep_the_session_and_a_new_address_replaces_it() {
        let now = Instant::now();
        let mut s = Sessions::new(42);
        let a = s.configure(config("a", "10.0.0.2"), now);
        let mut faster = config("a", "10.0.0.2");
        faster.timers.min_rx = std::time::Duration::from_millis(100);
        assert_eq!(s.configure(faster, now), a);
        let moved = s.configure(config("a", "10.0.0.3"), now);
        assert_ne!(moved, a);
        assert_eq!(s.peers().count(), 1);
        let (_, p) = s.remove("a", now).unwrap();
        assert_eq!(p.unwrap().state, State::AdminDown);
        assert_eq!(s.peers().count(), 0);
    }
}
