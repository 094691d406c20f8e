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
//! Outbound changes are coalesced per peer (as rustybgp's `PendingTx`): a
//! peer that reads slowly only ever receives the latest state of each
//! prefix, packed into full UPDATEs, one batch in flight at a time.

pub mod best;
pub mod intern;
pub mod task;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::notification::CeaseSubcode;
use bgp_proto::route_refresh::{RefreshSubtype, RouteRefresh};
use bgp_proto::{
    AsPath, Attributes, Family, Message, NextHop, Nlri, Notification, Origin, Update, UpdateBuilder,
};
use bytes::{Bytes, BytesMut};
use ipnet::IpNet;
use policy::{NextHopChange, PeerInfo, Role, RouteInput, Verdict};

use crate::config::{GracefulRestartConfig, MultipathConfig, PolicyChain};
use crate::session::negotiate::Negotiated;
use crate::status::{PathView, PrefixCounts, RibSummary, RouteView};
pub use best::PeerId;
use best::{Path, PathPeer, Source};
use intern::Interner;

/// Outbound bytes handed to a peer at once; the next batch is built when
/// the peer reports this one written.
const BATCH_BYTES: usize = 256 * 1024;

/// Entries of the export cache before it is emptied (a few per attribute
/// set and peer in practice).
const EXPORT_CACHE_LIMIT: usize = 100_000;

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
    pub max_prefix: Option<u32>,
    /// Take part in deferral after our restart (graceful restart enabled
    /// and a single configured address).
    pub wait_for_end_of_rib: bool,
}

/// An established session, as the RIB needs to know it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub negotiated: Negotiated,
    pub local_address: IpAddr,
    pub remote_address: IpAddr,
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
    pub next_hops: Vec<NextHop>,
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
    /// End the peer's session with this NOTIFICATION.
    Reset(PeerId, Notification),
    LocRib(LocRibChange),
    /// Every peer that takes part in graceful restart has sent End-of-RIB
    /// (or the wait timed out): what the Loc-RIB holds now is complete, and
    /// kernel routes left from before a restart may be swept. Once.
    Converged,
}

#[derive(Debug)]
enum Restart {
    None,
    /// The peer's session is down; its routes are stale until this instant.
    Helping {
        until: Instant,
    },
    /// The peer is back; its stale routes go at End-of-RIB or this instant.
    Refreshing {
        until: Instant,
    },
}

type Advertised = (Arc<Attributes>, NextHop);

/// A received attribute set (by address), the target peer, and whether the
/// route came from another AS.
type ExportKey = (usize, PeerId, bool);

/// Prefixes that share one attribute set and next hop in a batch.
type Group = (Arc<Attributes>, Vec<Nlri>);

struct RibPeer {
    setup: PeerSetup,
    session: Option<SessionInfo>,
    builder: Option<UpdateBuilder>,
    /// Pre-policy Adj-RIB-In (soft reconfiguration).
    adj_in_pre: Option<HashMap<IpNet, Advertised>>,
    /// Prefixes whose path from this peer is in the Loc-RIB.
    accepted: HashSet<IpNet>,
    /// Prefixes received and rejected by import policy or validation.
    rejected: HashSet<IpNet>,
    adj_out: HashMap<IpNet, Advertised>,
    pending: BTreeMap<IpNet, Option<Advertised>>,
    /// The initial table was computed; changes are exported as they come.
    synced: bool,
    in_flight: bool,
    eor_owed: Vec<Family>,
    eorr_owed: Vec<Family>,
    eor_received: HashSet<Family>,
    restart: Restart,
    stale: HashSet<IpNet>,
}

impl RibPeer {
    fn new(setup: PeerSetup) -> Self {
        RibPeer {
            adj_in_pre: setup.soft_reconfiguration.then(HashMap::new),
            setup,
            session: None,
            builder: None,
            accepted: HashSet::new(),
            rejected: HashSet::new(),
            adj_out: HashMap::new(),
            pending: BTreeMap::new(),
            synced: false,
            in_flight: false,
            eor_owed: Vec::new(),
            eorr_owed: Vec::new(),
            eor_received: HashSet::new(),
            restart: Restart::None,
            stale: HashSet::new(),
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

#[derive(Debug, Default)]
struct Dest {
    paths: Vec<Path>,
    /// `paths[..selected]` is the equal-cost set, best first.
    selected: usize,
}

/// The Loc-RIB and every peer's Adj-RIBs.
pub struct Rib {
    settings: RibSettings,
    peers: Vec<Option<RibPeer>>,
    loc: HashMap<IpNet, Dest>,
    interner: Interner,
    originate: Vec<IpNet>,
    /// While set, selection results are not exported (our own restart).
    defer_until: Option<Instant>,
    /// Until the first convergence: when to declare it at the latest.
    converge_by: Option<Instant>,
    /// Prefixes changed by the event being processed.
    changed: Vec<IpNet>,
    /// Exported attributes per (received set, target peer, from another
    /// AS), for routes whose export policy changed nothing.
    export_cache: HashMap<ExportKey, (Arc<Attributes>, Arc<Attributes>)>,
    out: Vec<RibOutput>,
}

impl Rib {
    pub fn new(settings: RibSettings, now: Instant) -> Rib {
        let select_defer = settings.graceful_restart.select_defer_time;
        let defer_until = settings.restarting.then(|| now + select_defer);
        Rib {
            settings,
            peers: Vec::new(),
            loc: HashMap::new(),
            interner: Interner::default(),
            originate: Vec::new(),
            defer_until,
            converge_by: Some(now + select_defer),
            changed: Vec::new(),
            export_cache: HashMap::new(),
            out: Vec::new(),
        }
    }

    pub fn is_deferring(&self) -> bool {
        self.defer_until.is_some()
    }

    pub fn add_peer(&mut self, setup: PeerSetup) -> PeerId {
        let slot = self
            .peers
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.peers.len());
        if slot == self.peers.len() {
            self.peers.push(None);
        }
        self.peers[slot] = Some(RibPeer::new(setup));
        PeerId(slot as u32)
    }

    /// Removes a peer and every route it gave.
    pub fn remove_peer(&mut self, id: PeerId) -> Vec<RibOutput> {
        self.drop_routes(id, |_| true);
        self.peers.get_mut(id.0 as usize).map(Option::take);
        self.propagate();
        self.check_deferral(Instant::now());
        self.take_out()
    }

    /// New policies or settings for a peer: import is re-run from the
    /// pre-policy copy (or a ROUTE-REFRESH is requested), and what the peer
    /// should receive is recomputed. Sessions stay up.
    pub fn update_peer(&mut self, id: PeerId, setup: PeerSetup) -> (Vec<RibOutput>, Vec<Family>) {
        self.export_cache.clear();
        let Some(peer) = self.peer_mut(id) else {
            return (Vec::new(), Vec::new());
        };
        if setup.soft_reconfiguration && peer.adj_in_pre.is_none() {
            peer.adj_in_pre = Some(HashMap::new());
        }
        peer.setup = setup;
        let mut refresh = Vec::new();
        match peer.adj_in_pre.clone() {
            Some(pre) => {
                for (prefix, (attrs, nh)) in pre {
                    self.import(id, prefix, attrs, nh);
                }
            }
            None => {
                if let Some(s) = &peer.session {
                    refresh = s.negotiated.families.clone();
                }
            }
        }
        self.resync(id);
        self.propagate();
        (self.take_out(), refresh)
    }

    pub fn set_originate(&mut self, prefixes: Vec<IpNet>) -> Vec<RibOutput> {
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
            let peer = PathPeer {
                router_id: self.settings.router_id,
                address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                asn: self.settings.local_asn,
                ebgp: false,
            };
            self.upsert_path(
                *p,
                Path {
                    source: Source::Local,
                    attrs,
                    next_hop,
                    stale: false,
                    peer,
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
        let stale_routes_time = self.settings.graceful_restart.stale_routes_time;
        let Some(peer) = self.peer_mut(id) else {
            return Vec::new();
        };
        peer.builder = Some(UpdateBuilder::new(session.negotiated.tx));
        peer.adj_out.clear();
        peer.pending.clear();
        peer.in_flight = false;
        peer.eor_received.clear();
        peer.eorr_owed.clear();
        // RFC 4724 §4.2: stale routes of families the peer no longer
        // preserves go at once; the others wait for its End-of-RIB.
        let keep: Vec<Family> = session
            .negotiated
            .graceful_restart
            .as_ref()
            .map(|gr| gr.families.iter().filter(|(_, f)| *f).map(|(f, _)| *f).collect())
            .unwrap_or_default();
        let was_helping = matches!(peer.restart, Restart::Helping { .. });
        peer.restart = if was_helping && !keep.is_empty() {
            Restart::Refreshing {
                until: now + stale_routes_time,
            }
        } else {
            Restart::None
        };
        peer.session = Some(session);
        if was_helping {
            self.sweep_stale(id, |f| !keep.contains(&f));
        }
        if self.defer_until.is_none() {
            self.sync(id);
        }
        // A peer that restarted too is not waited for.
        self.check_deferral(now);
        self.propagate();
        self.take_out()
    }

    /// A session went down. With `keep_routes` (graceful restart applies)
    /// its routes stay, marked stale, for `restart_time`.
    pub fn peer_down(&mut self, id: PeerId, keep_routes: Option<Duration>, now: Instant) -> Vec<RibOutput> {
        let Some(peer) = self.peer_mut(id) else {
            return Vec::new();
        };
        let families: Vec<Family> = peer
            .session
            .as_ref()
            .and_then(|s| s.negotiated.graceful_restart.as_ref())
            .map(|gr| gr.families.iter().map(|(f, _)| *f).collect())
            .unwrap_or_default();
        peer.session = None;
        peer.builder = None;
        peer.synced = false;
        peer.in_flight = false;
        peer.adj_out.clear();
        peer.pending.clear();
        peer.eor_owed.clear();
        match keep_routes {
            Some(restart_time) if !families.is_empty() => {
                peer.restart = Restart::Helping {
                    until: now + restart_time,
                };
                self.drop_routes(id, |f| !families.contains(&f));
                self.mark_stale(id);
            }
            _ => {
                peer.restart = Restart::None;
                self.drop_routes(id, |_| true);
            }
        }
        self.propagate();
        self.take_out()
    }

    /// An UPDATE from an established peer.
    pub fn update(&mut self, id: PeerId, update: Update, now: Instant) -> Vec<RibOutput> {
        let Some(peer) = self.peer(id) else {
            return Vec::new();
        };
        if let Some(family) = update.end_of_rib_family() {
            self.end_of_rib(id, family, now);
            return self.take_out();
        }
        for e in &update.errors {
            tracing::warn!(peer = %peer.setup.name, error = %e, "UPDATE attribute error handled per RFC 7606");
        }
        for n in update.withdrawals() {
            self.withdraw(id, n.prefix);
        }
        let withdraw_all = update.treat_as_withdraw() || !self.valid_path(id, &update.attributes);
        let attrs = self.interner.intern(update.attributes.clone());
        let announce = |rib: &mut Rib, nlri: &[Nlri], nh: Option<NextHop>| {
            for n in nlri {
                match nh {
                    Some(nh) if !withdraw_all => rib.announce(id, n.prefix, attrs.clone(), nh),
                    _ => rib.withdraw(id, n.prefix),
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
                if !peer.synced {
                    return Vec::new();
                }
                let enhanced = peer
                    .session
                    .as_ref()
                    .is_some_and(|s| s.negotiated.enhanced_route_refresh);
                peer.adj_out.retain(|p, _| Family::unicast_of(p) != rr.family);
                if enhanced {
                    let mut buf = BytesMut::new();
                    let borr = RouteRefresh {
                        family: rr.family,
                        subtype: RefreshSubtype::BeginOfRefresh,
                    };
                    if let Some(b) = &peer.builder
                        && Message::RouteRefresh(borr).encode(b.context(), &mut buf).is_ok()
                    {
                        self.out.push(RibOutput::Send(id, buf.freeze()));
                    }
                    if let Some(peer) = self.peer_mut(id) {
                        peer.eorr_owed.push(rr.family);
                    }
                }
                let prefixes: Vec<IpNet> = self
                    .loc
                    .keys()
                    .filter(|p| Family::unicast_of(p) == rr.family)
                    .copied()
                    .collect();
                for p in prefixes {
                    self.export_to(id, p);
                }
            }
            // RFC 7313 §4: routes not re-sent between BoRR and EoRR go.
            RefreshSubtype::BeginOfRefresh => {
                let family = rr.family;
                let marked: Vec<IpNet> = peer
                    .accepted
                    .iter()
                    .filter(|p| Family::unicast_of(p) == family)
                    .copied()
                    .collect();
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
            peer.in_flight = false;
        }
        self.flush(id);
        self.take_out()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let peers = self.peers.iter().flatten().filter_map(|p| match p.restart {
            Restart::Helping { until } | Restart::Refreshing { until } => Some(until),
            Restart::None => None,
        });
        peers.chain(self.defer_until).chain(self.converge_by).min()
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<RibOutput> {
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

    pub fn counts(&self, id: PeerId) -> PrefixCounts {
        let Some(p) = self.peer(id) else {
            return PrefixCounts::default();
        };
        PrefixCounts {
            received: p
                .adj_in_pre
                .as_ref()
                .map_or(p.accepted.len() + p.rejected.len(), HashMap::len),
            accepted: p.accepted.len(),
            advertised: p.adj_out.len(),
            stale: p.stale.len(),
        }
    }

    /// Loc-RIB size: prefixes per family, paths, distinct attribute sets.
    pub fn summary(&self) -> RibSummary {
        let mut s = RibSummary {
            attribute_sets: self.interner.len(),
            ..RibSummary::default()
        };
        for (p, d) in &self.loc {
            match p {
                IpNet::V4(_) => s.ipv4_prefixes += 1,
                IpNet::V6(_) => s.ipv6_prefixes += 1,
            }
            s.paths += d.paths.len();
        }
        s.deferring = self.defer_until.is_some();
        s
    }

    /// The Loc-RIB entries matching `filter`, for the API.
    pub fn routes(&self, filter: &RouteFilter) -> Vec<RouteView> {
        let mut out: Vec<RouteView> = self
            .loc
            .iter()
            .filter(|(p, _)| filter.prefix.is_none_or(|f| f.contains(*p) || **p == f))
            .filter(|(p, _)| filter.family.is_none_or(|f| Family::unicast_of(p) == f))
            .filter_map(|(p, d)| {
                let paths: Vec<PathView> = d
                    .paths
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !filter.best_only || *i < d.selected)
                    .map(|(i, path)| self.path_view(path, i == 0 && d.selected > 0, i < d.selected))
                    .filter(|v| filter.peer.as_deref().is_none_or(|n| v.peer == n))
                    .collect();
                (!paths.is_empty()).then_some(RouteView { prefix: *p, paths })
            })
            .collect();
        out.sort_by_key(|r| r.prefix);
        out
    }

    fn path_view(&self, path: &Path, best: bool, multipath: bool) -> PathView {
        let peer = match path.source {
            Source::Local => "local".to_owned(),
            Source::Peer(id) => self.peer(id).map_or("?".into(), |p| p.setup.name.to_string()),
        };
        let a = &path.attrs;
        PathView {
            peer,
            next_hop: path.next_hop.to_string(),
            as_path: a.as_path.as_ref().map(ToString::to_string).unwrap_or_default(),
            origin: a.origin.map(|o| o.to_string()),
            med: a.med,
            local_pref: a.local_pref,
            communities: a.communities.iter().map(ToString::to_string).collect(),
            large_communities: a.large_communities.iter().map(ToString::to_string).collect(),
            best,
            multipath,
            stale: path.stale,
        }
    }

    // ---- Import ---------------------------------------------------------

    fn peer(&self, id: PeerId) -> Option<&RibPeer> {
        self.peers.get(id.0 as usize).and_then(Option::as_ref)
    }

    fn peer_mut(&mut self, id: PeerId) -> Option<&mut RibPeer> {
        self.peers.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    /// Checks that apply to the whole UPDATE: RFC 4271 §6.3 first AS, and
    /// our own AS in the path (a loop, RFC 4271 §9.1.2).
    fn valid_path(&self, id: PeerId, attrs: &Attributes) -> bool {
        let Some(peer) = self.peer(id) else { return false };
        let Some(path) = attrs.as_path.as_ref() else {
            return true;
        };
        if path.contains(peer.setup.local_asn) || path.contains(self.settings.local_asn) {
            return false;
        }
        if let Some(s) = &peer.session
            && peer.ebgp()
            && path.neighbor_asn() != Some(s.negotiated.peer_asn)
        {
            tracing::warn!(peer = %peer.setup.name, path = %path, "AS path does not start with the peer's AS; treated as withdrawn");
            return false;
        }
        true
    }

    fn announce(&mut self, id: PeerId, prefix: IpNet, attrs: Arc<Attributes>, nh: NextHop) {
        let Some(peer) = self.peer_mut(id) else { return };
        if let Some(pre) = &mut peer.adj_in_pre {
            pre.insert(prefix, (attrs.clone(), nh));
        }
        self.import(id, prefix, attrs, nh);
    }

    fn withdraw(&mut self, id: PeerId, prefix: IpNet) {
        let Some(peer) = self.peer_mut(id) else { return };
        if let Some(pre) = &mut peer.adj_in_pre {
            pre.remove(&prefix);
        }
        peer.rejected.remove(&prefix);
        peer.stale.remove(&prefix);
        if peer.accepted.remove(&prefix) {
            self.remove_path(prefix, Source::Peer(id));
        }
    }

    /// Runs validation and import policy on one received path.
    fn import(&mut self, id: PeerId, prefix: IpNet, attrs: Arc<Attributes>, nh: NextHop) {
        let Some(peer) = self.peer(id) else { return };
        let Some(session) = &peer.session else { return };
        let local_nh = match nh.addr() {
            IpAddr::V4(a) => a.is_loopback(),
            IpAddr::V6(a) => a.is_loopback() || nh.ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        };
        let verdict = if local_nh && !peer.setup.accept_local_next_hop {
            Verdict::Reject
        } else {
            let route = RouteInput {
                prefix,
                family: Family::unicast_of(&prefix),
                attributes: &attrs,
                next_hop: Some(nh.addr()),
                source: peer.info(),
                target: None,
                local_asn: peer.setup.local_asn,
            };
            policy::evaluate(&peer.setup.import.refs(), peer.setup.import.default, &route)
        };
        let path_peer = PathPeer {
            router_id: session.negotiated.peer_id,
            address: session.remote_address,
            asn: session.negotiated.peer_asn,
            ebgp: peer.ebgp(),
        };
        let remote = session.remote_address;
        match verdict {
            Verdict::Reject => {
                let Some(peer) = self.peer_mut(id) else { return };
                peer.rejected.insert(prefix);
                peer.stale.remove(&prefix);
                if peer.accepted.remove(&prefix) {
                    self.remove_path(prefix, Source::Peer(id));
                }
            }
            Verdict::Accept { attributes, next_hop } => {
                let attrs = match attributes {
                    Cow::Borrowed(_) => attrs,
                    Cow::Owned(a) => self.interner.intern(a),
                };
                let nh = match next_hop {
                    NextHopChange::Address(a) => NextHop::from(a),
                    NextHopChange::PeerAddress => NextHop::from(remote),
                    NextHopChange::SelfAddress | NextHopChange::Unchanged => nh,
                };
                let Some(peer) = self.peer_mut(id) else { return };
                peer.rejected.remove(&prefix);
                peer.stale.remove(&prefix);
                peer.accepted.insert(prefix);
                self.upsert_path(
                    prefix,
                    Path {
                        source: Source::Peer(id),
                        attrs,
                        next_hop: nh,
                        stale: false,
                        peer: path_peer,
                    },
                );
            }
        }
    }

    fn check_max_prefix(&mut self, id: PeerId) {
        let Some(peer) = self.peer(id) else { return };
        let Some(max) = peer.setup.max_prefix else { return };
        if peer.accepted.len() as u64 <= u64::from(max) {
            return;
        }
        tracing::warn!(peer = %peer.setup.name, max, accepted = peer.accepted.len(), "maximum prefixes exceeded, resetting session");
        // RFC 4486 §4: the data names a family and the limit. RFC 8538 §5:
        // sent as a Hard Reset so the routes do not linger as stale.
        let family = peer
            .accepted
            .iter()
            .next()
            .map_or(Family::IPV4_UNICAST, Family::unicast_of);
        let mut data = Vec::with_capacity(7);
        data.extend_from_slice(&family.afi.0.to_be_bytes());
        data.push(family.safi.0);
        data.extend_from_slice(&max.to_be_bytes());
        let cease = Notification::new(
            bgp_proto::notification::ErrorCode::Cease,
            CeaseSubcode::MaximumPrefixesReached,
            data,
        );
        self.out
            .push(RibOutput::Reset(id, Notification::hard_reset(&cease)));
    }

    fn end_of_rib(&mut self, id: PeerId, family: Family, now: Instant) {
        let Some(peer) = self.peer_mut(id) else { return };
        peer.eor_received.insert(family);
        tracing::debug!(peer = %peer.setup.name, %family, "End-of-RIB received");
        if matches!(peer.restart, Restart::Refreshing { .. }) {
            self.sweep_stale(id, |f| f == family);
            if let Some(peer) = self.peer_mut(id)
                && peer.stale.is_empty()
            {
                peer.restart = Restart::None;
            }
        }
        self.check_deferral(now);
        self.propagate();
    }

    // ---- Graceful restart ------------------------------------------------

    fn mark_stale(&mut self, id: PeerId) {
        let Some(peer) = self.peer(id) else { return };
        let all: Vec<IpNet> = peer.accepted.iter().copied().collect();
        self.mark_stale_prefixes(id, &all);
    }

    fn mark_stale_prefixes(&mut self, id: PeerId, prefixes: &[IpNet]) {
        for p in prefixes {
            if let Some(d) = self.loc.get_mut(p) {
                for path in d.paths.iter_mut().filter(|path| path.source == Source::Peer(id)) {
                    path.stale = true;
                }
            }
        }
        if let Some(peer) = self.peer_mut(id) {
            peer.stale.extend(prefixes.iter().copied());
        }
    }

    /// Removes the stale routes of `id` in families `which` selects.
    fn sweep_stale(&mut self, id: PeerId, which: impl Fn(Family) -> bool) {
        let Some(peer) = self.peer_mut(id) else { return };
        let gone: Vec<IpNet> = peer
            .stale
            .iter()
            .filter(|p| which(Family::unicast_of(p)))
            .copied()
            .collect();
        for p in &gone {
            peer.stale.remove(p);
            peer.accepted.remove(p);
            if let Some(pre) = &mut peer.adj_in_pre {
                pre.remove(p);
            }
        }
        if !gone.is_empty() {
            tracing::info!(peer = %peer.setup.name, routes = gone.len(), "stale routes removed");
        }
        for p in gone {
            self.remove_path(p, Source::Peer(id));
        }
    }

    /// Removes every path of `id` in the families `which` selects.
    fn drop_routes(&mut self, id: PeerId, which: impl Fn(Family) -> bool) {
        let Some(peer) = self.peer_mut(id) else { return };
        let gone: Vec<IpNet> = peer
            .accepted
            .iter()
            .filter(|p| which(Family::unicast_of(p)))
            .copied()
            .collect();
        for p in &gone {
            peer.accepted.remove(p);
            peer.stale.remove(p);
        }
        peer.rejected.retain(|p| !which(Family::unicast_of(p)));
        if let Some(pre) = &mut peer.adj_in_pre {
            pre.retain(|p, _| !which(Family::unicast_of(p)));
        }
        for p in gone {
            self.remove_path(p, Source::Peer(id));
        }
    }

    /// Every configured peer is known: convergence (and the end of
    /// deferral) may be due already, e.g. when no peer takes part.
    pub fn peers_configured(&mut self) -> Vec<RibOutput> {
        self.check_deferral(Instant::now());
        self.propagate();
        self.take_out()
    }

    fn converge(&mut self) {
        if self.converge_by.take().is_some() {
            self.out.push(RibOutput::Converged);
        }
    }

    /// RFC 4724 §4.1: after our restart, selection waits for End-of-RIB
    /// from every peer that takes part (not those that restarted too). The
    /// same condition marks the first convergence.
    fn check_deferral(&mut self, _now: Instant) {
        if self.defer_until.is_none() && self.converge_by.is_none() {
            return;
        }
        let waiting = self.peers.iter().flatten().any(|p| {
            if !p.setup.wait_for_end_of_rib {
                return false;
            }
            match &p.session {
                None => true,
                Some(s) => match &s.negotiated.graceful_restart {
                    None => false,
                    Some(gr) if gr.restarting => false,
                    Some(_) => s.negotiated.families.iter().any(|f| !p.eor_received.contains(f)),
                },
            }
        });
        if !waiting {
            if self.defer_until.is_some() {
                tracing::info!("End-of-RIB received from every peer; ending deferral");
                self.end_deferral();
            }
            self.converge();
        }
    }

    fn end_deferral(&mut self) {
        self.defer_until = None;
        // Everything selected so far reaches the FIB now.
        self.changed.extend(self.loc.keys().copied());
        let ids: Vec<PeerId> = (0..self.peers.len())
            .map(|i| PeerId(i as u32))
            .filter(|id| self.peer(*id).is_some_and(|p| p.session.is_some()))
            .collect();
        for id in ids {
            self.sync(id);
        }
    }

    // ---- Loc-RIB ---------------------------------------------------------

    fn upsert_path(&mut self, prefix: IpNet, path: Path) {
        let dest = self.loc.entry(prefix).or_default();
        let before = snapshot(dest);
        match dest.paths.iter_mut().find(|p| p.source == path.source) {
            Some(existing) => *existing = path,
            None => dest.paths.push(path),
        }
        dest.selected = best::select(&mut dest.paths, &self.settings.multipath);
        if snapshot(dest) != before {
            self.changed.push(prefix);
        }
    }

    fn remove_path(&mut self, prefix: IpNet, source: Source) {
        let Some(dest) = self.loc.get_mut(&prefix) else {
            return;
        };
        let before = snapshot(dest);
        dest.paths.retain(|p| p.source != source);
        dest.selected = best::select(&mut dest.paths, &self.settings.multipath);
        if snapshot(dest) != before {
            self.changed.push(prefix);
        }
        if dest.paths.is_empty() {
            self.loc.remove(&prefix);
        }
    }

    /// Exports and reports every prefix whose selection changed.
    fn propagate(&mut self) {
        if self.changed.is_empty() {
            return;
        }
        let mut changed = std::mem::take(&mut self.changed);
        changed.sort_unstable();
        changed.dedup();
        if self.defer_until.is_none() {
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
            .filter(|id| self.peer(*id).is_some_and(|p| p.synced))
            .collect();
        for id in ids {
            for prefix in &changed {
                self.export_to(id, *prefix);
            }
            self.flush(id);
        }
    }

    fn selected(&self, prefix: &IpNet) -> Option<Selected> {
        let d = self.loc.get(prefix)?;
        let best = d.paths.first().filter(|_| d.selected > 0)?;
        let (name, role) = match best.source {
            Source::Local => (None, None),
            Source::Peer(id) => match self.peer(id) {
                Some(p) => (Some(p.setup.name.clone()), Some(p.setup.role)),
                None => (None, None),
            },
        };
        let own = d.paths.iter().any(|p| match p.source {
            Source::Local => true,
            Source::Peer(id) => self.peer(id).is_some_and(|peer| peer.setup.role == Role::Cilium),
        });
        Some(Selected {
            attrs: best.attrs.clone(),
            next_hops: d.paths[..d.selected].iter().map(|p| p.next_hop).collect(),
            source_peer: name,
            source_role: role,
            own,
        })
    }

    // ---- Export ------------------------------------------------------------

    /// Computes the initial table for a peer, to be followed by End-of-RIB.
    fn sync(&mut self, id: PeerId) {
        let Some(peer) = self.peer_mut(id) else { return };
        let Some(session) = &peer.session else { return };
        peer.synced = true;
        peer.eor_owed = session.negotiated.families.clone();
        let prefixes: Vec<IpNet> = self.loc.keys().copied().collect();
        for p in prefixes {
            self.export_to(id, p);
        }
        self.flush(id);
    }

    /// Recomputes everything a peer should have (after an export policy
    /// change).
    fn resync(&mut self, id: PeerId) {
        if !self.peer(id).is_some_and(|p| p.synced) {
            return;
        }
        let mut all: HashSet<IpNet> = self.loc.keys().copied().collect();
        if let Some(p) = self.peer(id) {
            all.extend(p.adj_out.keys().copied());
        }
        for p in all {
            self.export_to(id, p);
        }
        self.flush(id);
    }

    /// Decides what peer `id` should have for `prefix` and queues it when
    /// that differs from what it has.
    fn export_to(&mut self, id: PeerId, prefix: IpNet) {
        let want = self.export_decision(id, prefix);
        let Some(peer) = self.peer_mut(id) else { return };
        let has = peer.adj_out.get(&prefix);
        let same = match (&want, has) {
            (None, None) => true,
            (Some((a, n)), Some((b, m))) => Arc::ptr_eq(a, b) && n == m,
            _ => false,
        };
        if same {
            peer.pending.remove(&prefix);
        } else {
            peer.pending.insert(prefix, want);
        }
    }

    fn export_decision(&mut self, id: PeerId, prefix: IpNet) -> Option<Advertised> {
        let family = Family::unicast_of(&prefix);
        let target = self.peer(id)?;
        let session = target.session.as_ref()?;
        if !target.negotiated_family(family) {
            return None;
        }
        let dest = self.loc.get(&prefix)?;
        let best = dest.paths.first().filter(|_| dest.selected > 0)?;
        let source = match best.source {
            // Never back to the peer it came from.
            Source::Peer(s) if s == id => return None,
            Source::Peer(s) => {
                let sp = self.peer(s)?;
                // No route reflection: iBGP routes never go to iBGP peers.
                if !sp.ebgp() && !target.ebgp() {
                    return None;
                }
                sp.info()
            }
            Source::Local => None,
        };
        let route = RouteInput {
            prefix,
            family,
            attributes: &best.attrs,
            next_hop: Some(best.next_hop.addr()),
            source,
            target: target.info(),
            local_asn: target.setup.local_asn,
        };
        let Verdict::Accept { attributes, next_hop } =
            policy::evaluate(&target.setup.export.refs(), target.setup.export.default, &route)
        else {
            return None;
        };
        let ebgp = target.ebgp();
        let from_external = source.is_some_and(|s| s.asn != target.setup.local_asn);
        let from_cilium = source.is_some_and(|s| s.role == Role::Cilium);
        // Cilium's next hop is ::1 or 127.0.0.1: it is always rewritten.
        let own = || self_next_hop(family, session);
        let nh = match next_hop {
            NextHopChange::Address(a) => Some(NextHop::from(a)),
            NextHopChange::SelfAddress | NextHopChange::PeerAddress => own(),
            NextHopChange::Unchanged
                if target.setup.next_hop_self || ebgp || from_cilium || source.is_none() =>
            {
                own()
            }
            NextHopChange::Unchanged => Some(best.next_hop),
        };
        let Some(nh) = nh else {
            tracing::debug!(%prefix, peer = %target.setup.name, "no usable next hop for this family on the session; not exported");
            return None;
        };
        // Attributes that policy left alone are transformed the same way for
        // every route that shares them: do it once per set and peer.
        let key = matches!(attributes, Cow::Borrowed(_))
            .then(|| (Arc::as_ptr(&best.attrs) as usize, id, from_external));
        if let Some(k) = key
            && let Some((_, out)) = self.export_cache.get(&k)
        {
            return Some((out.clone(), nh));
        }
        let source_attrs = best.attrs.clone();
        let received_med = best.attrs.med;
        let local_asn = target.setup.local_asn;
        let mut attrs = attributes.into_owned();
        if ebgp {
            // RFC 4271 §5.1.5: LOCAL_PREF is never sent to external peers;
            // §5.1.4: a MED learned from another AS is not passed on
            // (unless export policy set one).
            attrs.local_pref = None;
            if from_external && attrs.med == received_med {
                attrs.med = None;
            }
            attrs.originator_id = None;
            attrs.cluster_list.clear();
            attrs
                .as_path
                .get_or_insert_with(AsPath::new)
                .prepend(local_asn, 1);
        } else if attrs.local_pref.is_none() {
            attrs.local_pref = Some(100);
        }
        let out = self.interner.intern(attrs);
        if let Some(k) = key {
            if self.export_cache.len() > EXPORT_CACHE_LIMIT {
                self.export_cache.clear();
            }
            // Holding the source set keeps its address from being reused
            // while the entry exists.
            self.export_cache.insert(k, (source_attrs, out.clone()));
        }
        Some((out, nh))
    }

    /// Builds and hands out the next batch for a peer.
    fn flush(&mut self, id: PeerId) {
        let Some(peer) = self.peer_mut(id) else { return };
        if peer.in_flight || !peer.synced {
            return;
        }
        let Some(builder) = peer.builder.as_mut() else {
            return;
        };
        let mut buf = BytesMut::new();
        let mut announce: HashMap<(usize, NextHop, Family), Group> = HashMap::new();
        let mut withdraw: HashMap<Family, Vec<Nlri>> = HashMap::new();
        let mut estimate = 0;
        while estimate < BATCH_BYTES {
            let Some((prefix, change)) = peer.pending.pop_first() else {
                break;
            };
            let family = Family::unicast_of(&prefix);
            estimate += 1 + usize::from(prefix.prefix_len()).div_ceil(8);
            match change {
                Some((attrs, nh)) => {
                    peer.adj_out.insert(prefix, (attrs.clone(), nh));
                    announce
                        .entry((Arc::as_ptr(&attrs) as usize, nh, family))
                        .or_insert_with(|| (attrs.clone(), Vec::new()))
                        .1
                        .push(Nlri::new(prefix));
                }
                None => {
                    if peer.adj_out.remove(&prefix).is_some() {
                        withdraw.entry(family).or_default().push(Nlri::new(prefix));
                    }
                }
            }
        }
        for (family, prefixes) in withdraw {
            if let Err(e) = builder.withdraw(&mut buf, family, &prefixes) {
                tracing::error!(error = %e, "cannot encode withdrawals");
            }
        }
        for ((_, nh, family), (attrs, prefixes)) in announce {
            if let Err(e) = builder.announce(&mut buf, family, &attrs, nh, &prefixes) {
                tracing::error!(error = %e, peer = %peer.setup.name, "cannot encode announcement");
            }
        }
        if peer.pending.is_empty() {
            for family in std::mem::take(&mut peer.eor_owed) {
                let _ = builder.end_of_rib(&mut buf, family);
            }
            for family in std::mem::take(&mut peer.eorr_owed) {
                let eorr = RouteRefresh {
                    family,
                    subtype: RefreshSubtype::EndOfRefresh,
                };
                let _ = Message::RouteRefresh(eorr).encode(builder.context(), &mut buf);
            }
        }
        if !buf.is_empty() {
            peer.in_flight = true;
            self.out.push(RibOutput::Send(id, buf.freeze()));
        }
    }

    fn take_out(&mut self) -> Vec<RibOutput> {
        std::mem::take(&mut self.out)
    }
}

/// Our address on the session, as a next hop for `family` (RFC 8950 for
/// IPv4 over IPv6 when negotiated; an IPv4-mapped address for IPv6 over
/// IPv4).
fn self_next_hop(family: Family, session: &SessionInfo) -> Option<NextHop> {
    match (family, session.local_address) {
        (f, IpAddr::V4(a)) if f == Family::IPV4_UNICAST => Some(NextHop::V4(a)),
        (_, IpAddr::V6(a)) if family == Family::IPV6_UNICAST || session.negotiated.extended_next_hop => Some(
            NextHop::v6(a.to_ipv4_mapped().map_or(a, |v4| v4.to_ipv6_mapped())),
        ),
        (f, IpAddr::V6(a)) if f == Family::IPV4_UNICAST => a.to_ipv4_mapped().map(NextHop::V4),
        (_, IpAddr::V4(a)) => Some(NextHop::v6(a.to_ipv6_mapped())),
        _ => None,
    }
}

/// What identifies a selection result for change detection.
fn snapshot(d: &Dest) -> Vec<(Source, usize, NextHop, bool)> {
    d.paths[..d.selected]
        .iter()
        .map(|p| (p.source, Arc::as_ptr(&p.attrs) as usize, p.next_hop, p.stale))
        .collect()
}

#[derive(Clone, Debug, Default)]
pub struct RouteFilter {
    pub prefix: Option<IpNet>,
    pub family: Option<Family>,
    pub peer: Option<String>,
    pub best_only: bool,
}

#[cfg(test)]
mod tests;
