//! The Loc-RIB (RFC 4271 §3.2): every accepted path per prefix, ordered
//! by the decision process ([`super::best`]), with the equal-cost set used
//! for ECMP. A prefix whose selection changes is noted for export and the
//! FIB.

use std::sync::Arc;

use bgp_proto::{Family, NextHop};
use ipnet::IpNet;
use smallvec::SmallVec;

use std::net::{IpAddr, Ipv4Addr};
use std::ops::{Deref, DerefMut};

use super::best::{self, Path, PathPeer, PeerId, Source};
use super::{Gateway, Rib, RibPeer, RibSettings, Selected};
use crate::config::GateAction;

/// The Loc-RIB's size, kept as it changes, so asking for it costs nothing
/// however large the table.
#[derive(Debug, Default)]
pub(super) struct LocSize {
    pub(super) ipv4_prefixes: usize,
    pub(super) ipv6_prefixes: usize,
    pub(super) paths: usize,
}

impl LocSize {
    fn add_prefix(&mut self, prefix: &IpNet) {
        match prefix {
            IpNet::V4(_) => self.ipv4_prefixes += 1,
            IpNet::V6(_) => self.ipv6_prefixes += 1,
        }
    }

    fn remove_prefix(&mut self, prefix: &IpNet) {
        match prefix {
            IpNet::V4(_) => self.ipv4_prefixes -= 1,
            IpNet::V6(_) => self.ipv6_prefixes -= 1,
        }
    }
}

/// The paths to one prefix. Most prefixes have one, held in place: a
/// full table makes no allocation per prefix.
#[derive(Debug, Default)]
pub(super) struct Dest {
    pub(super) paths: Paths,
}

/// A prefix's paths as a slice: one held in place, two or more in a
/// slice of just their size behind a pointer. It takes the 24 bytes of a
/// path (the variant is kept in a value a path's fields never take), where
/// a `SmallVec` of one takes 32: a full table's Loc-RIB is 8 bytes a slot
/// smaller.
#[derive(Debug, Default)]
pub(super) enum Paths {
    #[default]
    None,
    One(Path),
    Many(Box<[Path]>),
}

impl Deref for Paths {
    type Target = [Path];

    fn deref(&self) -> &[Path] {
        match self {
            Paths::None => &[],
            Paths::One(p) => std::slice::from_ref(p),
            Paths::Many(v) => v,
        }
    }
}

impl DerefMut for Paths {
    fn deref_mut(&mut self) -> &mut [Path] {
        match self {
            Paths::None => &mut [],
            Paths::One(p) => std::slice::from_mut(p),
            Paths::Many(v) => v,
        }
    }
}

impl Paths {
    /// Adds a path. The slice grows by one, not to twice its size as a
    /// vector would: ten paths to each of 100k prefixes (the bench's case
    /// 3) left room for six more unused, 11 MB once loaded. A prefix gains
    /// paths a few at a time.
    pub(super) fn push(&mut self, path: Path) {
        *self = match std::mem::take(self) {
            Paths::None => Paths::One(path),
            Paths::One(first) => Paths::Many(Box::new([first, path])),
            Paths::Many(v) => {
                let mut v = Vec::from(v);
                v.reserve_exact(1);
                v.push(path);
                Paths::Many(v.into_boxed_slice())
            }
        };
    }

    /// Keeps the paths `keep` says; one left goes back in place.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Path) -> bool) {
        *self = match std::mem::take(self) {
            Paths::None => Paths::None,
            Paths::One(p) => match keep(&p) {
                true => Paths::One(p),
                false => Paths::None,
            },
            Paths::Many(v) => {
                let mut v = Vec::from(v);
                v.retain(|p| keep(p));
                match v.len() {
                    0 => Paths::None,
                    1 => Paths::One(v.pop().expect("one path")),
                    _ => Paths::Many(v.into_boxed_slice()),
                }
            }
        };
    }
}

impl Dest {
    /// `paths[..selected()]` is the equal-cost set, best first (kept in
    /// the paths' `in_set`, not beside them: a full table's prefixes are
    /// 8 bytes smaller).
    pub(super) fn selected(&self) -> usize {
        self.paths.iter().take_while(|p| p.in_set).count()
    }

    /// Runs the decision process over the paths.
    pub(super) fn select(
        &mut self,
        multipath: &crate::config::MultipathConfig,
        peer_of: &dyn Fn(Source) -> PathPeer,
    ) {
        let n = best::select(&mut self.paths, multipath, peer_of);
        for (i, p) in self.paths.iter_mut().enumerate() {
            p.in_set = i < n;
        }
    }
}

impl Rib {
    pub(super) fn upsert_path(&mut self, prefix: IpNet, mut path: Path) {
        path.since = self.clock;
        path.gated = self.gate_for(&prefix, &path);
        let (dest, new) = self.loc.get_or_insert_with(prefix, Dest::default);
        if new {
            self.loc_size.add_prefix(&prefix);
        }
        let before = snapshot(dest);
        match dest.paths.iter_mut().find(|p| p.source == path.source) {
            Some(existing) => {
                // Sent again unchanged: it keeps its age.
                if Arc::ptr_eq(&existing.route, &path.route) {
                    path.since = existing.since;
                }
                *existing = path;
                self.released += 1;
            }
            None => {
                let source = path.source;
                dest.paths.push(path);
                self.loc_size.paths += 1;
                if let Source::Peer(id) = source
                    && let Some(Some(peer)) = self.peers.get_mut(id.0 as usize)
                {
                    peer.adj_in.accepted.add(&prefix);
                }
            }
        }
        let peer_of = |s| path_peer(&self.peers, &self.settings, s);
        dest.select(&self.settings.multipath, &peer_of);
        if snapshot(dest) != before {
            self.changed.push(prefix);
        }
    }

    pub(super) fn remove_path(&mut self, prefix: IpNet, source: Source) {
        let Some(dest) = self.loc.get_mut(&prefix) else {
            return;
        };
        let before = snapshot(dest);
        let had = dest.paths.len();
        dest.paths.retain(|p| p.source != source);
        let gone = had - dest.paths.len();
        self.loc_size.paths -= gone;
        self.released += gone;
        if gone > 0
            && let Source::Peer(id) = source
            && let Some(Some(peer)) = self.peers.get_mut(id.0 as usize)
        {
            peer.adj_in.accepted.sub(&prefix);
        }
        let peer_of = |s| path_peer(&self.peers, &self.settings, s);
        dest.select(&self.settings.multipath, &peer_of);
        if snapshot(dest) != before {
            self.changed.push(prefix);
        }
        if dest.paths.is_empty() {
            self.loc.remove(&prefix);
            self.loc_size.remove_prefix(&prefix);
        }
    }

    /// Whether `prefix` has a path from `id` in the Loc-RIB: accepted from
    /// it.
    pub(super) fn has_path(&self, id: PeerId, prefix: &IpNet) -> bool {
        self.loc
            .get(prefix)
            .is_some_and(|d| d.paths.iter().any(|p| p.source == Source::Peer(id)))
    }

    /// The prefixes accepted from `id` in the families `which` selects:
    /// those with a path from it in the Loc-RIB (a walk of the Loc-RIB,
    /// unless it has none).
    pub(super) fn accepted(&self, id: PeerId, which: impl Fn(Family) -> bool) -> Vec<IpNet> {
        let Some(peer) = self.peer(id) else {
            return Vec::new();
        };
        let counts = &peer.adj_in.accepted;
        if !which(Family::IPV4_UNICAST) && !which(Family::IPV6_UNICAST) || counts.len() == 0 {
            return Vec::new();
        }
        self.loc
            .iter()
            .filter(|(p, d)| {
                which(Family::unicast_of(p)) && d.paths.iter().any(|x| x.source == Source::Peer(id))
            })
            .map(|(p, _)| p)
            .collect()
    }

    /// What the node forwards over: the selected paths, except that a
    /// path drained by a failing health check (graceful shutdown) gives
    /// way to the best other path, if any, while it is still the one
    /// advertised.
    pub(crate) fn selected(&self, prefix: &IpNet) -> Option<Selected> {
        let d = self.loc.get(prefix)?;
        let used = &d.paths[forwarding(d)];
        let best = used.first()?;
        let (name, role) = match best.source {
            Source::Local => (None, None),
            Source::Peer(id) => match self.peer(id) {
                Some(p) => (Some(p.setup.name.clone()), Some(p.setup.role)),
                None => (None, None),
            },
        };
        // A path a health check holds back does not make the prefix the
        // node's own: the node may then use another node's path to it.
        let own = d.paths.iter().any(|p| {
            p.gated.is_none()
                && match p.source {
                    Source::Local => true,
                    Source::Peer(id) => self
                        .peer(id)
                        .is_some_and(|peer| peer.setup.role.is_local_speaker()),
                }
        });
        Some(Selected {
            attrs: best.attrs().clone(),
            next_hops: used
                .iter()
                .map(|p| {
                    let link = match p.source {
                        Source::Peer(id) => self.peer(id).and_then(|peer| peer.link),
                        Source::Local => None,
                    };
                    Gateway::of(p.next_hop(), link)
                })
                .collect(),
            source_peer: name,
            source_role: role,
            own,
        })
    }
}

/// What best path selection needs of a path's peer: as of the peer's last
/// session; for the node's own paths, the node.
pub(super) fn path_peer(peers: &[Option<RibPeer>], settings: &RibSettings, source: Source) -> PathPeer {
    let unknown = PathPeer {
        router_id: Ipv4Addr::UNSPECIFIED,
        address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        asn: 0,
        ebgp: false,
    };
    match source {
        Source::Local => PathPeer {
            router_id: settings.router_id,
            asn: settings.local_asn,
            ..unknown
        },
        Source::Peer(id) => peers
            .get(id.0 as usize)
            .and_then(|p| p.as_ref()?.path_peer)
            .unwrap_or(unknown),
    }
}

/// The paths the node forwards over (see [`Rib::selected`]).
fn forwarding(d: &Dest) -> std::ops::Range<usize> {
    let drained = |p: &Path| matches!(p.gated, Some(GateAction::GracefulShutdown(_)));
    if d.selected() == 0 || !drained(&d.paths[0]) {
        return 0..d.selected();
    }
    let Some(first) = d.paths.iter().position(|p| p.gated.is_none()) else {
        return 0..d.selected();
    };
    let equal = d.paths[first..]
        .iter()
        .take_while(|p| p.gated.is_none() && best::compare_preference(p, &d.paths[first]).is_eq())
        .count();
    first..first + equal
}

/// A path as change detection sees it: source, attributes (by address),
/// next hop, stale, gate.
pub(super) type Snapshot = (Source, usize, NextHop, bool, Option<GateAction>);

/// What identifies a selection result for change detection (a gate
/// changes what is exported; a gated path that is not selected changes
/// whether the prefix is the node's own).
pub(super) fn snapshot(d: &Dest) -> SmallVec<[Snapshot; 2]> {
    let entry = |p: &Path| {
        (
            p.source,
            Arc::as_ptr(p.attrs()) as usize,
            *p.next_hop(),
            p.stale,
            p.gated,
        )
    };
    let mut s: SmallVec<[_; 2]> = d.paths[..d.selected()].iter().map(entry).collect();
    let used = forwarding(d);
    if used.start > 0 {
        s.extend(d.paths[used].iter().map(entry));
    }
    s.extend(
        d.paths[d.selected()..]
            .iter()
            .filter(|p| p.gated.is_some())
            // Only whether it is held back matters here (see `selected`).
            .map(|p| (p.source, 0, *p.next_hop(), false, Some(GateAction::Withdraw))),
    );
    s
}
