//! The routing information bases: Adj-RIB-In per peer (with the pre-policy
//! copy where soft reconfiguration is on), the Loc-RIB with best path and
//! ECMP, and Adj-RIB-Out per peer with coalesced outbound changes.
//!
//! [`Rib`] is the single owner of all of it and, like the sessions, is sans
//! I/O: peer events and UPDATEs go in with the current instant, and what
//! comes out is bytes to send to a peer, sessions to reset, refreshes to
//! request and Loc-RIB changes for the FIB. It never calls into sessions or
//! the kernel.
//!
//! One file per piece of RFC 4271 §3.2, each adding to [`Rib`]:
//! - `adj_rib_in`: what each peer sent, validation and import policy;
//! - `loc_rib` and [`best`]: the Loc-RIB and the decision process;
//! - `export`: export policy and the RFC 4271 rules for what a peer is
//!   sent; [`adj_rib_out`]: what each peer was sent and is owed, coalesced;
//! - `graceful_restart`: stale routes (helper) and deferral (restarting
//!   speaker), RFC 4724 and RFC 8538;
//! - `health_gate`: the node's own VIP paths held back while a health
//!   check fails (withdrawn, or sent with GRACEFUL_SHUTDOWN);
//! - `query`: the views the API asks for.
//!
//! This file holds the public events: peers coming and going, sessions
//! going up and down, UPDATEs, refreshes and timers.

mod adj_rib_in;
pub mod adj_rib_out;
pub mod best;
mod export;
mod gateway;
mod graceful_restart;
mod health_gate;
pub mod intern;
mod loc_rib;
mod query;
pub mod task;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::route_refresh::{RefreshSubtype, RouteRefresh};
use bgp_proto::{AsPath, Attributes, ErrorAction, Family, NextHop, Nlri, Notification, Origin, Update};
use bytes::Bytes;
use ipnet::IpNet;
use policy::{PeerInfo, Role};

use crate::config::{GracefulRestartConfig, MaxPrefix, MultipathConfig, PolicyChain};
use crate::memory::FastMap;
use crate::prefix_map::PrefixMap;
use crate::session::negotiate::Negotiated;
use adj_rib_in::{AdjRibIn, InvalidPath};
use adj_rib_out::AdjRibOut;
pub use best::PeerId;
use best::{Path, PathPeer, PathRoute, Source};
use export::ExportCache;
pub use gateway::{Gateway, NextHops};
use graceful_restart::Restart;
use intern::Interner;
use loc_rib::{Dest, LocSize};
pub use query::{AdjSide, RouteFilter};

#[derive(Clone, Debug)]
pub struct RibSettings {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    pub multipath: MultipathConfig,
    pub graceful_restart: GracefulRestartConfig,
    /// tern itself restarted with graceful restart: defer selection and
    /// export until peers' End-of-RIB (RFC 4724 §4.1).
    pub restarting: bool,
}

/// How a configured peer is treated.
#[derive(Clone, Debug)]
pub struct PeerSetup {
    pub name: Arc<str>,
    pub role: Role,
    /// The AS we present to this peer.
    pub local_asn: u32,
    pub import: PolicyChain,
    pub export: PolicyChain,
    pub next_hop_self: bool,
    pub accept_local_next_hop: bool,
    pub soft_reconfiguration: bool,
    pub max_prefix: Option<MaxPrefix>,
    /// Take part in deferral after our restart (graceful restart enabled
    /// and a single configured address).
    pub wait_for_end_of_rib: bool,
    /// Its routes are held across its restarts without graceful restart
    /// (`restart-hold`): back, it re-sends them at once, and what it does
    /// not re-send within [`REFRESH_WITHOUT_END_OF_RIB`] goes.
    pub restart_hold: bool,
}

/// How long a peer held by `restart-hold`, which sends no End-of-RIB, has
/// to re-send its routes once its session is back.
pub const REFRESH_WITHOUT_END_OF_RIB: Duration = Duration::from_secs(5);

/// After our restart, how long a peer without graceful restart that has
/// not sent End-of-RIB must be quiet (no UPDATE) to count as done, in
/// seconds: most send End-of-RIB all the same (RFC 4724 §2 recommends
/// it), some never do.
pub const QUIET_WITHOUT_END_OF_RIB: u32 = 5;

/// An established session, as the RIB needs to know it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub negotiated: Negotiated,
    pub local_address: IpAddr,
    pub remote_address: IpAddr,
    /// The link of a session over IPv6 link-local addresses (an unnumbered
    /// peer): link-local next hops it sends are on that link.
    pub ifindex: Option<u32>,
}

/// A change of the selected paths of a prefix, for the FIB.
#[derive(Clone, Debug, PartialEq)]
pub struct LocRibChange {
    pub prefix: IpNet,
    /// The best path and its equal-cost companions; `None` when the prefix
    /// is gone.
    pub selected: Option<Selected>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Selected {
    pub attrs: Arc<Attributes>,
    /// Held in place up to two (no allocation per change).
    pub next_hops: NextHops,
    pub source_peer: Option<Arc<str>>,
    pub source_role: Option<Role>,
    /// Some path to the prefix comes from a Cilium peer or from
    /// `originate`: it is the node's own and is never routed elsewhere.
    pub own: bool,
}

#[derive(Debug, PartialEq)]
pub enum RibOutput {
    /// Encoded messages for a peer; report them written with
    /// [`Rib::written`].
    Send(PeerId, Bytes),
    /// End the peer's session with this NOTIFICATION, and keep it down
    /// for this long (max-prefix `restart-after`).
    Reset(PeerId, Notification, Option<Duration>),
    LocRib(LocRibChange),
    /// Every peer that takes part in graceful restart has sent End-of-RIB
    /// (or the wait timed out): what the Loc-RIB holds now is complete, and
    /// kernel routes left from before a restart may be swept. Once.
    Converged,
}

struct RibPeer {
    setup: PeerSetup,
    session: Option<SessionInfo>,
    /// The link of its last session over link-local addresses, kept while
    /// its routes are (graceful restart).
    link: Option<u32>,
    /// What best path selection needs of it, as of its last session (kept
    /// while its routes are).
    path_peer: Option<PathPeer>,
    /// When it last sent an UPDATE, or its session came up: RIB clock
    /// seconds.
    heard_at: u32,
    adj_in: AdjRibIn,
    adj_out: AdjRibOut,
    eor_received: HashSet<Family>,
    restart: Restart,
}

impl RibPeer {
    fn new(setup: PeerSetup) -> Self {
        RibPeer {
            adj_in: AdjRibIn::new(setup.soft_reconfiguration),
            setup,
            session: None,
            link: None,
            path_peer: None,
            heard_at: 0,
            adj_out: AdjRibOut::default(),
            eor_received: HashSet::new(),
            restart: Restart::None,
        }
    }

    fn info(&self) -> Option<PeerInfo<'_>> {
        let s = self.session.as_ref()?;
        Some(PeerInfo {
            name: &self.setup.name,
            role: self.setup.role,
            address: s.remote_address,
            asn: s.negotiated.peer_asn,
        })
    }

    fn ebgp(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.negotiated.peer_asn != self.setup.local_asn)
    }

    fn negotiated_family(&self, f: Family) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.negotiated.families.contains(&f))
    }
}

/// The Loc-RIB and every peer's Adj-RIBs.
pub struct Rib {
    settings: RibSettings,
    peers: Vec<Option<RibPeer>>,
    loc: PrefixMap<Dest>,
    loc_size: LocSize,
    /// Paths replaced or removed since unused memory was last released.
    released: usize,
    interner: Interner<Attributes>,
    /// The next hops of the Loc-RIB's paths, each once.
    routes: Interner<PathRoute>,
    originate: Vec<IpNet>,
    /// When the RIB started, and the seconds since then as of the event
    /// being handled (a path's age counts from it).
    epoch: Instant,
    clock: u32,
    /// Drained (`tern drain`): every route is sent with GRACEFUL_SHUTDOWN
    /// and the lowest preference; the AS is prepended this many times
    /// towards external peers.
    drain: Option<u8>,
    /// The gates of failing health checks.
    gates: Vec<crate::config::Gate>,
    /// While set, selection results are not exported (our own restart).
    defer_until: Option<Instant>,
    /// Until the first convergence: when to declare it at the latest.
    converge_by: Option<Instant>,
    /// After our restart, the FIB hears of the Loc-RIB only at the first
    /// convergence, all at once: until then the kernel keeps what the
    /// previous run installed, even where deferral already ended (a peer
    /// that restarted too is not waited for there, but is here).
    fib_held: bool,
    /// The FIB was just given the whole Loc-RIB (at convergence): what
    /// changed in the same event needs no second report.
    fib_dumped: bool,
    /// Prefixes changed by the event being processed.
    changed: Vec<IpNet>,
    export_cache: ExportCache,
    out: Vec<RibOutput>,
}

impl Rib {
    pub fn new(settings: RibSettings, now: Instant) -> Rib {
        let select_defer = settings.graceful_restart.select_defer_time;
        let defer_until = settings.restarting.then(|| now + select_defer);
        let fib_held = settings.restarting;
        Rib {
            settings,
            peers: Vec::new(),
            loc: PrefixMap::default(),
            loc_size: LocSize::default(),
            released: 0,
            interner: Interner::default(),
            routes: Interner::default(),
            originate: Vec::new(),
            epoch: now,
            clock: 0,
            drain: None,
            gates: Vec::new(),
            defer_until,
            converge_by: Some(now + select_defer),
            fib_held,
            fib_dumped: false,
            changed: Vec::new(),
            export_cache: ExportCache::default(),
            out: Vec::new(),
        }
    }

    pub fn is_deferring(&self) -> bool {
        self.defer_until.is_some()
    }

    /// A new peer. Ids are never reused, so an event still on its way from
    /// a removed peer can never be taken for another's.
    pub fn add_peer(&mut self, setup: PeerSetup) -> PeerId {
        self.peers.push(Some(RibPeer::new(setup)));
        PeerId((self.peers.len() - 1) as u32)
    }

    /// Removes a peer and every route it gave.
    pub fn remove_peer(&mut self, id: PeerId) -> Vec<RibOutput> {
        self.drop_routes(id, |_| true);
        self.peers.get_mut(id.0 as usize).map(Option::take);
        self.propagate();
        self.check_deferral();
        self.take_out()
    }

    /// New policies or settings for a peer: import is re-run from the
    /// pre-policy copy (or a ROUTE-REFRESH is requested), and what the peer
    /// should receive is recomputed. Sessions stay up.
    pub fn update_peer(&mut self, id: PeerId, setup: PeerSetup) -> (Vec<RibOutput>, Vec<Family>) {
        self.tick();
        self.export_cache.clear();
        let Some(peer) = self.peer_mut(id) else {
            return (Vec::new(), Vec::new());
        };
        if setup.soft_reconfiguration && peer.adj_in.pre.is_none() {
            peer.adj_in.pre = Some(FastMap::default());
        }
        peer.setup = setup;
        let mut refresh = Vec::new();
        match self.pre_policy(id, |_| true) {
            Some(pre) => {
                for (prefix, (attrs, nh)) in pre {
                    self.import(id, prefix, attrs, nh);
                }
            }
            None => {
                if let Some(s) = self.peer(id).and_then(|p| p.session.as_ref()) {
                    refresh = s.negotiated.families.clone();
                }
            }
        }
        self.resync(id);
        self.propagate();
        (self.take_out(), refresh)
    }

    /// Drains the node (RFC 8326 graceful shutdown): every route to every
    /// peer goes out again with the GRACEFUL_SHUTDOWN community and the
    /// lowest preference (LOCAL_PREF 0 to internal peers, our AS prepended
    /// `prepend` times to external ones), so traffic moves elsewhere
    /// before sessions go. `None` undrains.
    pub fn set_drain(&mut self, drain: Option<u8>) -> Vec<RibOutput> {
        if self.drain == drain {
            return Vec::new();
        }
        self.drain = drain;
        self.export_cache.clear();
        let ids: Vec<PeerId> = (0..self.peers.len() as u32)
            .map(PeerId)
            .filter(|id| self.peer(*id).is_some())
            .collect();
        for id in ids {
            self.resync(id);
        }
        self.take_out()
    }

    pub fn is_drained(&self) -> bool {
        self.drain.is_some()
    }

    pub fn set_originate(&mut self, prefixes: Vec<IpNet>) -> Vec<RibOutput> {
        self.tick();
        for p in std::mem::take(&mut self.originate) {
            if !prefixes.contains(&p) {
                self.remove_path(p, Source::Local);
            }
        }
        for p in &prefixes {
            let attrs = self.interner.intern(Attributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::new()),
                ..Attributes::default()
            });
            let next_hop = match p {
                IpNet::V4(_) => NextHop::V4(Ipv4Addr::UNSPECIFIED),
                IpNet::V6(_) => NextHop::v6(Ipv6Addr::UNSPECIFIED),
            };
            let route = self.routes.intern(PathRoute { attrs, next_hop });
            self.upsert_path(
                *p,
                Path {
                    source: Source::Local,
                    route,
                    stale: false,
                    in_set: false,
                    gated: None,
                    since: 0,
                },
            );
        }
        self.originate = prefixes;
        self.propagate();
        self.take_out()
    }

    /// A session came up.
    pub fn peer_up(&mut self, id: PeerId, session: SessionInfo, now: Instant) -> Vec<RibOutput> {
        self.export_cache.clear();
        self.tick();
        let clock = self.clock;
        let stale_routes_time = self.settings.graceful_restart.stale_routes_time;
        let Some(peer) = self.peer_mut(id) else {
            return Vec::new();
        };
        peer.adj_out.session_up(session.negotiated.tx);
        peer.eor_received.clear();
        // RFC 4724 §4.2: stale routes of families the peer no longer
        // preserves go at once; the others wait for its End-of-RIB.
        let keep: Vec<Family> = session
            .negotiated
            .graceful_restart
            .as_ref()
            .map(|gr| gr.families.iter().filter(|(_, f)| *f).map(|(f, _)| *f).collect())
            .unwrap_or_default();
        let was_helping = matches!(peer.restart, Restart::Helping { .. });
        let held = was_helping && keep.is_empty() && peer.setup.restart_hold;
        let keep = if held {
            session.negotiated.families.clone()
        } else {
            keep
        };
        peer.restart = if held {
            Restart::Refreshing {
                until: now + REFRESH_WITHOUT_END_OF_RIB,
            }
        } else if was_helping && !keep.is_empty() {
            Restart::Refreshing {
                until: now + stale_routes_time,
            }
        } else {
            Restart::None
        };
        peer.link = session.ifindex;
        peer.heard_at = clock;
        peer.path_peer = Some(PathPeer {
            router_id: session.negotiated.peer_id,
            address: session.remote_address,
            asn: session.negotiated.peer_asn,
            ebgp: session.negotiated.peer_asn != peer.setup.local_asn,
        });
        peer.session = Some(session);
        if was_helping {
            self.sweep_stale(id, |f| !keep.contains(&f));
        }
        if self.defer_until.is_none() {
            self.sync(id);
        }
        // A peer that restarted too is not waited for.
        self.check_deferral();
        self.propagate();
        self.take_out()
    }

    /// A session went down. With `keep_routes` (graceful restart applies)
    /// its routes stay, marked stale, for `restart_time`.
    pub fn peer_down(&mut self, id: PeerId, keep_routes: Option<Duration>, now: Instant) -> Vec<RibOutput> {
        let Some(peer) = self.peer_mut(id) else {
            return Vec::new();
        };
        // The families graceful restart covers; for a peer held by
        // `restart-hold` (no graceful restart), all of its families.
        let families: Vec<Family> = peer
            .session
            .as_ref()
            .and_then(|s| match &s.negotiated.graceful_restart {
                Some(gr) => Some(gr.families.iter().map(|(f, _)| *f).collect()),
                None if peer.setup.restart_hold => Some(s.negotiated.families.clone()),
                None => None,
            })
            .unwrap_or_default();
        peer.session = None;
        peer.adj_out.session_down();
        let held = peer.adj_in.accepted.len();
        let name = peer.setup.name.clone();
        match keep_routes {
            Some(restart_time) if !families.is_empty() => {
                peer.restart = Restart::Helping {
                    until: now + restart_time,
                };
                self.drop_routes(id, |f| !families.contains(&f));
                if let Some(peer) = self.peer_mut(id) {
                    peer.adj_in.forget_unaccepted();
                }
                self.mark_stale(id);
                let kept = self.peer(id).map_or(0, |p| p.adj_in.accepted.len());
                tracing::info!(
                    peer = %name,
                    kept_stale = kept,
                    removed = held - kept,
                    restart_time_secs = restart_time.as_secs(),
                    "session down: routes kept as stale while the peer restarts"
                );
            }
            _ => {
                peer.restart = Restart::None;
                self.drop_routes(id, |_| true);
                if held > 0 {
                    tracing::info!(peer = %name, removed = held, "session down: its routes removed");
                }
            }
        }
        self.propagate();
        self.take_out()
    }

    /// An UPDATE from an established peer.
    pub fn update(&mut self, id: PeerId, update: Update) -> Vec<RibOutput> {
        self.tick();
        let clock = self.clock;
        if let Some(p) = self.peer_mut(id) {
            p.heard_at = clock;
        }
        let Some(peer) = self.peer(id) else {
            return Vec::new();
        };
        if let Some(family) = update.end_of_rib_family() {
            self.end_of_rib(id, family);
            return self.take_out();
        }
        for e in &update.errors {
            tracing::warn!(peer = %peer.setup.name, error = %e, "UPDATE attribute error handled per RFC 7606");
        }
        for n in update.withdrawals() {
            self.withdraw(id, n.prefix);
        }
        // RFC 7606 treat-as-withdraw, or a path that is not valid: every
        // prefix is withdrawn, and kept with why to be shown.
        let problem: Option<Arc<str>> = match update
            .errors
            .iter()
            .find(|e| e.action == ErrorAction::TreatAsWithdraw)
        {
            Some(e) => Some(format!("treat-as-withdraw (RFC 7606): {e}").into()),
            None => self.path_problem(id, &update.attributes).map(Into::into),
        };
        let attrs = self.interner.intern(update.attributes.clone());
        let announce = |rib: &mut Rib, nlri: &[Nlri], nh: Option<NextHop>| {
            for n in nlri {
                match (&problem, nh) {
                    (None, Some(nh)) => rib.announce(id, n.prefix, attrs.clone(), nh),
                    (None, None) => rib.withdraw(id, n.prefix),
                    (Some(reason), next_hop) => rib.invalid(
                        id,
                        n.prefix,
                        InvalidPath {
                            attrs: attrs.clone(),
                            next_hop,
                            reason: reason.clone(),
                        },
                    ),
                }
            }
        };
        let classic_nh = update.attributes.next_hop.map(NextHop::V4);
        announce(self, &update.nlri, classic_nh);
        if let Some(r) = &update.mp_reach {
            if self.peer(id).is_some_and(|p| p.negotiated_family(r.family)) {
                announce(self, &r.nlri, Some(r.next_hop));
            } else {
                tracing::warn!(family = %r.family, "MP_REACH_NLRI for a family not negotiated ignored");
            }
        }
        self.check_max_prefix(id);
        self.propagate();
        self.take_out()
    }

    /// The peer asked for our routes again (RFC 2918, RFC 7313).
    pub fn route_refresh(&mut self, id: PeerId, rr: RouteRefresh) -> Vec<RibOutput> {
        let Some(peer) = self.peer_mut(id) else {
            return Vec::new();
        };
        match rr.subtype {
            RefreshSubtype::Request => {
                if !peer.adj_out.is_synced() {
                    return Vec::new();
                }
                let enhanced = peer
                    .session
                    .as_ref()
                    .is_some_and(|s| s.negotiated.enhanced_route_refresh);
                peer.adj_out.forget(rr.family);
                if enhanced && let Some(borr) = peer.adj_out.begin_refresh(rr.family) {
                    self.out.push(RibOutput::Send(id, borr));
                }
                let prefixes: Vec<IpNet> = self
                    .loc
                    .keys()
                    .filter(|p| Family::unicast_of(p) == rr.family)
                    .collect();
                for p in prefixes {
                    self.export_to(id, p);
                }
            }
            // RFC 7313 §4: routes not re-sent between BoRR and EoRR go.
            RefreshSubtype::BeginOfRefresh => {
                let family = rr.family;
                let marked = self.accepted(id, |f| f == family);
                self.mark_stale_prefixes(id, &marked);
            }
            RefreshSubtype::EndOfRefresh => self.sweep_stale(id, |f| f == rr.family),
            RefreshSubtype::Unknown(_) => {}
        }
        self.flush(id);
        self.propagate();
        self.take_out()
    }

    /// The batch handed out for `id` was written.
    pub fn written(&mut self, id: PeerId) -> Vec<RibOutput> {
        if let Some(peer) = self.peer_mut(id) {
            peer.adj_out.written();
        }
        self.flush(id);
        self.take_out()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let peers = self.peers.iter().flatten().filter_map(|p| match p.restart {
            Restart::Helping { until } | Restart::Refreshing { until } => Some(until),
            Restart::None => None,
        });
        let quiet = self.quiet_deadline();
        peers
            .chain(self.defer_until)
            .chain(self.converge_by)
            .chain(quiet)
            .min()
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<RibOutput> {
        let at = u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX);
        self.clock = self.clock.max(at);
        self.check_deferral();
        let expired: Vec<PeerId> = self
            .peers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let p = p.as_ref()?;
                match p.restart {
                    Restart::Helping { until } | Restart::Refreshing { until } if now >= until => {
                        Some(PeerId(i as u32))
                    }
                    _ => None,
                }
            })
            .collect();
        for id in expired {
            tracing::info!(peer = %self.peer(id).map_or("?".into(), |p| p.setup.name.clone()), "graceful restart timer expired, removing stale routes");
            if let Some(p) = self.peer_mut(id) {
                p.restart = Restart::None;
            }
            self.sweep_stale(id, |_| true);
        }
        if self.defer_until.is_some_and(|t| now >= t) {
            tracing::info!("End-of-RIB not received from every peer in time; ending deferral");
            self.end_deferral();
        }
        if self.converge_by.is_some_and(|t| now >= t) {
            self.converge();
        }
        self.propagate();
        self.take_out()
    }

    /// Every configured peer is known: convergence (and the end of
    /// deferral) may be due already, e.g. when no peer takes part.
    pub fn peers_configured(&mut self) -> Vec<RibOutput> {
        self.check_deferral();
        self.propagate();
        self.take_out()
    }

    /// Brings the clock paths are stamped with up to date.
    fn tick(&mut self) {
        self.clock = u32::try_from(self.epoch.elapsed().as_secs()).unwrap_or(u32::MAX);
    }

    fn peer(&self, id: PeerId) -> Option<&RibPeer> {
        self.peers.get(id.0 as usize).and_then(Option::as_ref)
    }

    fn peer_mut(&mut self, id: PeerId) -> Option<&mut RibPeer> {
        self.peers.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    /// Exports and reports every prefix whose selection changed.
    fn propagate(&mut self) {
        if self.changed.is_empty() {
            return;
        }
        let mut changed = std::mem::take(&mut self.changed);
        changed.sort_unstable();
        changed.dedup();
        if self.defer_until.is_none() && !self.fib_held && !self.fib_dumped {
            for prefix in &changed {
                let selected = self.selected(prefix);
                self.out.push(RibOutput::LocRib(LocRibChange {
                    prefix: *prefix,
                    selected,
                }));
            }
        }
        let ids: Vec<PeerId> = (0..self.peers.len())
            .map(|i| PeerId(i as u32))
            .filter(|id| self.peer(*id).is_some_and(|p| p.adj_out.is_synced()))
            .collect();
        for id in ids {
            for prefix in &changed {
                self.export_to(id, *prefix);
            }
            self.flush(id);
        }
    }

    fn take_out(&mut self) -> Vec<RibOutput> {
        self.fib_dumped = false;
        // During a long burst of changes, release as often as there are
        // attribute sets (amortised: a sweep costs one look at each set).
        if self.released > self.interner.len().max(RELEASE_AT_LEAST) {
            self.release_unused();
        }
        std::mem::take(&mut self.out)
    }

    /// Frees what no route uses any more: attribute sets whose last path
    /// went (and the export cache's entries for them), and the room of
    /// tables that shrank to a quarter of it. Nothing to do, and nothing
    /// done, when no path went since the last time. Returns whether a
    /// table gave room back, which is when the allocator may have memory
    /// to return to the system.
    pub fn release_unused(&mut self) -> bool {
        if self.released == 0 {
            return false;
        }
        self.released = 0;
        self.export_cache.prune();
        // Paths hold routes, routes hold attribute sets.
        self.routes.sweep();
        self.interner.sweep();
        let mut shrunk = self.loc.shrink();
        for p in self.peers.iter_mut().flatten() {
            shrunk |= p.adj_in.shrink();
            shrunk |= p.adj_out.shrink();
        }
        shrunk
    }
}

/// Paths released before a sweep during a burst, at least.
const RELEASE_AT_LEAST: usize = 1024;

/// Halves a map's room when it uses under a quarter of it; returns whether
/// it did.
#[cfg(test)]
mod tests;
