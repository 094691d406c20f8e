//! Two tern speakers run against each other in virtual time: each is the
//! sans-I/O core the daemon runs (the peer state machine and the RIB,
//! configured from a TOML file through the daemon's own `NodeSetup`), and
//! this harness is their tokio glue: it carries encoded messages between
//! them, opens and closes "TCP connections", and moves a virtual clock to
//! the next deadline either core reports. No sockets, no sleeps; a test of
//! a 120-second restart timer runs in microseconds and always the same
//! way.
//!
//! Like quinn-proto's `Pair`, the wire is in-order and lossless with no
//! latency; a speaker can be muted (it goes silent, its TCP stays up),
//! killed (its connections close, as with SIGKILL or a crash) and started
//! again (with the R bit when graceful restart is on).

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bgp_proto::{Context, Message, Notification, frame_len};
use bytes::{Bytes, BytesMut};
use ipnet::IpNet;
use tern::config::{Config, EnvSecrets};
use tern::rib::{LocRibChange, PeerId, Rib, RibOutput, Selected, SessionInfo};
use tern::session::peer::{ConnId, Peer, PeerOutput, PeerState};
use tern::setup::NodeSetup;

/// Something a speaker did, with the virtual time it happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    Established(ConnId),
    /// The session went down, and whether its routes were kept as stale.
    Down {
        reason: String,
        routes_kept: bool,
    },
    Sent(Notification),
    LocRib(LocRibChange),
    Converged,
}

struct Conn {
    link: usize,
    /// Decoding (and encoding) context of the connection: the default until
    /// the session is established, then the negotiated one.
    ctx: Context,
}

/// One tern: its configuration, peer state machine and RIB, for the one
/// peer its configuration names.
pub struct Speaker {
    pub name: &'static str,
    /// The address its peer sees.
    pub address: IpAddr,
    toml: String,
    pub peer: Peer,
    pub rib: Rib,
    pub id: PeerId,
    graceful_restart: bool,
    pub alive: bool,
    /// Messages it sends are dropped (a peer that fell silent).
    pub muted: bool,
    /// By [`ConnId::slot`].
    conns: [Option<Conn>; 3],
    /// What its FIB would hold: the selected paths per prefix.
    pub routes: BTreeMap<IpNet, Selected>,
    pub notes: Vec<(Duration, Note)>,
    /// When it last received a message from its peer.
    pub last_received: Option<Instant>,
}

fn slot(id: ConnId) -> usize {
    id.slot()
}

/// The far end of a connection from nobody: a silent client that never
/// sends a byte.
const GHOST: usize = 2;

fn config(toml: &str, name: &str) -> Config {
    Config::parse(toml, Path::new(&format!("{name}.toml")), &EnvSecrets)
        .unwrap_or_else(|e| panic!("{name}'s configuration: {e}"))
}

impl Speaker {
    /// A speaker from its configuration, which names exactly one peer.
    pub fn new(name: &'static str, address: &str, toml: &str, restarting: bool, now: Instant) -> Speaker {
        let config = config(toml, name);
        let pc = config.peers.first().expect("one peer in the configuration");
        let node = NodeSetup {
            config: &config,
            router_id: config.router_id.expect("a router-id"),
            hostname: None,
            restarting,
        };
        let mut rib = Rib::new(node.rib_settings(), now);
        let id = rib.add_peer(node.peer_setup(pc, &pc.name));
        Speaker {
            name,
            address: address.parse().expect("an address"),
            toml: toml.to_owned(),
            peer: Peer::new(node.offer(pc), NodeSetup::timing(pc), 7),
            rib,
            id,
            graceful_restart: node.graceful_restart(pc),
            alive: false,
            muted: false,
            conns: [None, None, None],
            routes: BTreeMap::new(),
            notes: Vec::new(),
            last_received: None,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        if !self.alive {
            return None;
        }
        [self.peer.next_deadline(), self.rib.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn established(&self) -> bool {
        self.peer.state() == PeerState::Established
    }

    /// Its notes of one kind.
    pub fn notes_where(&self, f: impl Fn(&Note) -> bool) -> Vec<(Duration, Note)> {
        self.notes.iter().filter(|(_, n)| f(n)).cloned().collect()
    }

    /// Prefixes that left its FIB since its `before`th note.
    pub fn withdrawn_since(&self, before: usize) -> Vec<String> {
        self.notes[before..]
            .iter()
            .filter_map(|(_, n)| match n {
                Note::LocRib(c) if c.selected.is_none() => Some(c.prefix.to_string()),
                _ => None,
            })
            .collect()
    }

    pub fn has_route(&self, prefix: &str) -> bool {
        self.routes.contains_key(&prefix.parse().expect("a prefix"))
    }

    pub fn stale_routes(&self) -> usize {
        self.rib.counts(self.id).stale
    }
}

enum Delivery {
    /// A connection attempt from this speaker.
    Connect {
        from: usize,
    },
    Bytes {
        to: usize,
        link: usize,
        bytes: Bytes,
    },
    Closed {
        to: usize,
        link: usize,
    },
}

/// Two speakers, the wire between them and the virtual clock.
pub struct Pair {
    pub start: Instant,
    pub now: Instant,
    pub speakers: [Speaker; 2],
    /// Each connection's two ends (speakers, or [`GHOST`]), by link id.
    links: Vec<(usize, usize)>,
    wire: VecDeque<Delivery>,
}

pub const A: usize = 0;
pub const B: usize = 1;

impl Pair {
    /// Both speakers, not yet started.
    pub fn new(a: (&'static str, &str, &str), b: (&'static str, &str, &str)) -> Pair {
        let now = Instant::now();
        Pair {
            start: now,
            now,
            speakers: [
                Speaker::new(a.0, a.1, a.2, false, now),
                Speaker::new(b.0, b.1, b.2, false, now),
            ],
            links: Vec::new(),
            wire: VecDeque::new(),
        }
    }

    /// Virtual time since the pair was made.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn a(&self) -> &Speaker {
        &self.speakers[A]
    }

    pub fn b(&self) -> &Speaker {
        &self.speakers[B]
    }

    /// Starts a speaker as the daemon does: the RIB learns its originate
    /// prefixes and that every peer is configured, the peer starts. An
    /// active peer's first connection attempt is on the wire: speakers
    /// started one after the other dial each other at the same time.
    pub fn start(&mut self, s: usize) {
        let config = config(&self.speakers[s].toml, self.speakers[s].name);
        self.speakers[s].alive = true;
        let out = self.speakers[s].rib.set_originate(config.originate.clone());
        self.rib_outputs(s, out);
        let out = self.speakers[s].rib.peers_configured();
        self.rib_outputs(s, out);
        let out = self.speakers[s].peer.start(self.now);
        self.peer_outputs(s, out);
    }

    /// The process dies: its connections close (TCP FIN or RST, no
    /// NOTIFICATION) and it is gone until [`Pair::restart`].
    pub fn kill(&mut self, s: usize) {
        let sp = &mut self.speakers[s];
        sp.alive = false;
        let closed: Vec<usize> = sp
            .conns
            .iter_mut()
            .filter_map(Option::take)
            .map(|c| c.link)
            .collect();
        for link in closed {
            let to = self.far_end(link, s);
            self.wire.push_back(Delivery::Closed { to, link });
        }
        self.settle();
    }

    /// The process vanishes without its connections closing (a power cut,
    /// a kernel panic): its peer sees nothing until a timer or a new
    /// connection tells it.
    pub fn vanish(&mut self, s: usize) {
        let sp = &mut self.speakers[s];
        sp.alive = false;
        sp.conns = [None, None, None];
    }

    /// A connection to `to` from its peer's address that never sends a
    /// byte (a stuck client, a half-open leftover).
    pub fn ghost_connect(&mut self, to: usize) {
        let link = self.new_link(GHOST, to);
        if let Some((id, out)) = self.speakers[to].peer.on_incoming(self.now) {
            self.place(to, id, link);
            self.peer_outputs(to, out);
        }
        self.settle();
    }

    fn new_link(&mut self, a: usize, b: usize) -> usize {
        self.links.push((a, b));
        self.links.len() - 1
    }

    fn far_end(&self, link: usize, me: usize) -> usize {
        let (a, b) = self.links[link];
        if a == me { b } else { a }
    }

    /// Puts a connection in a slot; one it replaces is closed, as the
    /// session task closes the socket it drops.
    fn place(&mut self, s: usize, id: ConnId, link: usize) {
        let old = self.speakers[s].conns[slot(id)].replace(Conn {
            link,
            ctx: Context::default(),
        });
        if let Some(old) = old {
            let to = self.far_end(old.link, s);
            self.wire.push_back(Delivery::Closed { to, link: old.link });
        }
    }

    /// A new process of the same speaker, optionally with another
    /// configuration; `restarting` as the daemon sets it when its state
    /// directory says it ran before with graceful restart.
    pub fn restart(&mut self, s: usize, toml: Option<&str>, restarting: bool) {
        if self.speakers[s].alive {
            self.kill(s);
        }
        let old = &self.speakers[s];
        let toml = toml.map_or_else(|| old.toml.clone(), str::to_owned);
        let mut fresh = Speaker::new(old.name, &old.address.to_string(), &toml, restarting, self.now);
        fresh.notes = std::mem::take(&mut self.speakers[s].notes);
        self.speakers[s] = fresh;
        self.start(s);
        self.settle();
    }

    /// Runs every delivery and timer due in the next `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_while(until, |_| true);
        self.now = until;
    }

    /// Runs until `done` holds (checked after every step), at most `limit`
    /// of virtual time; returns whether it held.
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&Pair) -> bool) -> bool {
        let until = self.now + limit;
        self.run_while(until, |p| !done(p));
        done(self)
    }

    fn run_while(&mut self, until: Instant, go_on: impl Fn(&Pair) -> bool) {
        self.settle();
        let mut steps = 0;
        while go_on(self) {
            let next = self.speakers.iter().filter_map(Speaker::deadline).min();
            let Some(next) = next.filter(|t| *t <= until) else {
                return;
            };
            steps += 1;
            assert!(steps < 1_000_000, "the speakers never settle");
            self.now = self.now.max(next);
            for s in [A, B] {
                let sp = &mut self.speakers[s];
                if !sp.alive {
                    continue;
                }
                if sp.peer.next_deadline().is_some_and(|t| t <= self.now) {
                    let out = sp.peer.on_timer(self.now);
                    self.peer_outputs(s, out);
                }
                let sp = &mut self.speakers[s];
                if sp.rib.next_deadline().is_some_and(|t| t <= self.now) {
                    let out = sp.rib.on_timer(self.now);
                    self.rib_outputs(s, out);
                }
            }
            self.settle();
        }
    }

    /// Delivers everything on the wire, and whatever that causes.
    fn settle(&mut self) {
        while let Some(d) = self.wire.pop_front() {
            match d {
                Delivery::Connect { from } => self.connect(from),
                Delivery::Bytes { to, link, bytes } => self.receive(to, link, bytes),
                Delivery::Closed { to, link } => {
                    let Some(sp) = self.speakers.get_mut(to) else {
                        continue;
                    };
                    let Some(i) = (0..3).find(|i| sp.conns[*i].as_ref().is_some_and(|c| c.link == link))
                    else {
                        continue;
                    };
                    sp.conns[i] = None;
                    let id = ConnId::ALL[i];
                    let out = sp.peer.on_tcp_closed(id, self.now);
                    self.peer_outputs(to, out);
                }
            }
        }
    }

    fn receive(&mut self, to: usize, link: usize, bytes: Bytes) {
        let now = self.now;
        let Some(sp) = self.speakers.get_mut(to) else {
            return;
        };
        if !sp.alive {
            return;
        }
        let Some(i) = (0..3).find(|i| sp.conns[*i].as_ref().is_some_and(|c| c.link == link)) else {
            return;
        };
        let id = ConnId::ALL[i];
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let sp = &mut self.speakers[to];
            let Some(conn) = sp.conns[i].as_ref().filter(|c| c.link == link) else {
                return;
            };
            let ctx = conn.ctx;
            let n = match frame_len(rest, &ctx) {
                Ok(Some(n)) if n <= rest.len() => n,
                other => panic!("{} received a broken stream: {other:?}", sp.name),
            };
            sp.last_received = Some(now);
            let out = match Message::decode(&rest[..n], &ctx) {
                Ok(m) => sp.peer.on_message(id, m, now),
                Err(e) => sp.peer.on_decode_error(id, e, now),
            };
            rest = &rest[n..];
            self.peer_outputs(to, out);
        }
    }

    /// Opens a connection from `s` to the other speaker, if it is alive.
    fn connect(&mut self, s: usize) {
        let o = 1 - s;
        if !self.speakers[s].alive {
            return;
        }
        if !self.speakers[o].alive {
            self.speakers[s].peer.on_connect_failed(self.now);
            return;
        }
        let link = self.new_link(s, o);
        let accepted = self.speakers[o].peer.on_incoming(self.now);
        self.speakers[s].conns[0] = Some(Conn {
            link,
            ctx: Context::default(),
        });
        if let Some((id, _)) = &accepted {
            self.place(o, *id, link);
        }
        let out = self.speakers[s].peer.on_connected(self.now);
        if let Some((_, out)) = accepted {
            self.peer_outputs(o, out);
        } else {
            // Refused: the listener closes it at once.
            self.wire.push_back(Delivery::Closed { to: s, link });
        }
        self.peer_outputs(s, out);
    }

    fn send(&mut self, s: usize, id: ConnId, bytes: Bytes) {
        let sp = &self.speakers[s];
        if sp.muted {
            return;
        }
        if let Some(c) = &sp.conns[slot(id)] {
            let to = self.far_end(c.link, s);
            self.wire.push_back(Delivery::Bytes {
                to,
                link: c.link,
                bytes,
            });
        }
    }

    fn note(&mut self, s: usize, note: Note) {
        let at = self.elapsed();
        self.speakers[s].notes.push((at, note));
    }

    /// What the session task does with the peer's outputs.
    fn peer_outputs(&mut self, s: usize, outputs: Vec<PeerOutput>) {
        let now = self.now;
        for o in outputs {
            match o {
                PeerOutput::Connect => self.wire.push_back(Delivery::Connect { from: s }),
                PeerOutput::Send(id, msg) => {
                    let Some(c) = &self.speakers[s].conns[slot(id)] else {
                        continue;
                    };
                    let mut buf = BytesMut::new();
                    msg.encode(&c.ctx, &mut buf).expect("encodable");
                    if let Message::Notification(n) = msg {
                        self.note(s, Note::Sent(n));
                    }
                    self.send(s, id, buf.freeze());
                }
                PeerOutput::Close(id) => {
                    if let Some(c) = self.speakers[s].conns[slot(id)].take() {
                        let to = self.far_end(c.link, s);
                        self.wire.push_back(Delivery::Closed { to, link: c.link });
                    }
                }
                PeerOutput::Established(id, negotiated) => {
                    let local = self.speakers[s].address;
                    let remote = self.speakers[1 - s].address;
                    let sp = &mut self.speakers[s];
                    if let Some(c) = sp.conns[slot(id)].as_mut() {
                        c.ctx = negotiated.rx;
                    }
                    let session = SessionInfo {
                        negotiated: *negotiated,
                        local_address: local,
                        remote_address: remote,
                        ifindex: None,
                    };
                    let out = sp.rib.peer_up(sp.id, session, now);
                    self.note(s, Note::Established(id));
                    self.rib_outputs(s, out);
                }
                PeerOutput::Update(u) => {
                    let sp = &mut self.speakers[s];
                    let out = sp.rib.update(sp.id, u);
                    self.rib_outputs(s, out);
                }
                PeerOutput::RouteRefresh(rr) => {
                    let sp = &mut self.speakers[s];
                    let out = sp.rib.route_refresh(sp.id, rr);
                    self.rib_outputs(s, out);
                }
                PeerOutput::Down { reason, negotiated } => {
                    let sp = &mut self.speakers[s];
                    let keep = reason.stale_time(&negotiated, sp.graceful_restart);
                    let out = sp.rib.peer_down(sp.id, keep, now);
                    self.note(
                        s,
                        Note::Down {
                            reason: reason.to_string(),
                            routes_kept: keep.is_some(),
                        },
                    );
                    self.rib_outputs(s, out);
                }
            }
        }
    }

    /// What the RIB task does with the RIB's outputs.
    fn rib_outputs(&mut self, s: usize, outputs: Vec<RibOutput>) {
        for o in outputs {
            match o {
                RibOutput::Send(id, bytes) => {
                    if let Some(conn) = self.speakers[s].peer.established_conn() {
                        self.send(s, conn, bytes);
                    }
                    let out = self.speakers[s].rib.written(id);
                    self.rib_outputs(s, out);
                }
                RibOutput::Reset(_, n, hold_down) => {
                    let out = self.speakers[s].peer.reset(n, self.now, hold_down);
                    self.peer_outputs(s, out);
                }
                RibOutput::LocRib(change) => {
                    let routes = &mut self.speakers[s].routes;
                    match &change.selected {
                        Some(sel) => routes.insert(change.prefix, sel.clone()),
                        None => routes.remove(&change.prefix),
                    };
                    self.note(s, Note::LocRib(change));
                }
                RibOutput::Converged => self.note(s, Note::Converged),
            }
        }
    }
}
