//! Best path selection (RFC 4271 §9.1.2.2) and the set of equal-cost paths
//! used for ECMP.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bgp_proto::{Attributes, NextHop, Origin};

use crate::config::{GateAction, MultipathConfig};

/// Where a path came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// tern's own `originate` prefixes.
    Local,
    Peer(PeerId),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

/// One path to a prefix in the Loc-RIB, after import policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub source: Source,
    /// Its attributes and next hop, interned as one: a full table's paths
    /// share a few thousand.
    pub route: Arc<PathRoute>,
    /// Kept for a restarting peer (RFC 4724 §4.2) until it re-sends it.
    pub stale: bool,
    /// In the equal-cost set of its prefix (set by the Loc-RIB after
    /// selection; the set is the paths that have it, first in order).
    pub in_set: bool,
    /// When it was received, or last changed: seconds since the RIB
    /// started (set by the Loc-RIB when the path goes in).
    pub since: u32,
    /// Held back by a failing health check (the node's own VIP paths):
    /// withdrawn ones are never selected; with graceful shutdown, one is
    /// still advertised (drained), but the node forwards over any other
    /// path (see `Rib::selected`).
    pub gated: Option<GateAction>,
}

/// What the decision process needs to know of the peer a path came from
/// (looked up by [`Source`]: a copy in every path would cost a full table
/// 28 bytes a route).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PathPeer {
    pub router_id: Ipv4Addr,
    pub address: IpAddr,
    pub asn: u32,
    pub ebgp: bool,
}

/// What a path says: attributes (themselves interned) and next hop.
/// Equal, and hashed, by the attributes' address and the next hop.
#[derive(Debug)]
pub struct PathRoute {
    pub attrs: Arc<Attributes>,
    pub next_hop: NextHop,
}

impl PartialEq for PathRoute {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.attrs, &other.attrs) && self.next_hop == other.next_hop
    }
}

impl Eq for PathRoute {}

impl std::hash::Hash for PathRoute {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.attrs).hash(state);
        self.next_hop.hash(state);
    }
}

impl Path {
    pub fn attrs(&self) -> &Arc<Attributes> {
        &self.route.attrs
    }

    pub fn next_hop(&self) -> &NextHop {
        &self.route.next_hop
    }

    fn local_pref(&self) -> u32 {
        // RFC 4271 §9.1.1: a route from an external peer has no LOCAL_PREF
        // of its own; 100 is the customary default.
        self.attrs().local_pref.unwrap_or(100)
    }

    fn as_path_len(&self) -> usize {
        self.attrs().as_path.as_ref().map_or(0, |p| p.path_len())
    }

    fn origin(&self) -> u8 {
        self.attrs().origin.unwrap_or(Origin::Incomplete) as u8
    }

    /// RFC 4271 §9.1.2.2 c: a missing MED is the lowest value.
    fn med(&self) -> u32 {
        self.attrs().med.unwrap_or(0)
    }

    /// The neighbour AS that MED comparison is limited to.
    fn neighbor_as(&self) -> Option<u32> {
        match self.source {
            Source::Local => None,
            Source::Peer(_) => self.attrs().as_path.as_ref().and_then(|p| p.neighbor_asn()),
        }
    }

    /// RFC 4456 §9: the originator replaces the router ID when present.
    fn router_id(&self, peer: &PathPeer) -> Ipv4Addr {
        self.attrs().originator_id.unwrap_or(peer.router_id)
    }
}

/// Compares two paths on the criteria that decide ECMP equality: after
/// these, remaining differences are only tie-breaks.
pub(super) fn compare_preference(a: &Path, b: &Path) -> Ordering {
    // Paths a health check withdrew last, then locally originated routes
    // first, then RFC 4271 §9.1.2.2 a, b, c.
    let local = |p: &Path| matches!(p.source, Source::Local);
    let withdrawn = |p: &Path| p.gated == Some(GateAction::Withdraw);
    withdrawn(a)
        .cmp(&withdrawn(b))
        .then(local(b).cmp(&local(a)))
        .then(b.local_pref().cmp(&a.local_pref()))
        .then(a.as_path_len().cmp(&b.as_path_len()))
        .then(a.origin().cmp(&b.origin()))
}

/// Tie-breaks after MED and eBGP/iBGP: lowest router ID, then lowest peer
/// address (RFC 4271 §9.1.2.2 f, g).
fn compare_tie_break(a: &Path, b: &Path, peer_of: &dyn Fn(Source) -> PathPeer) -> Ordering {
    let (pa, pb) = (peer_of(a.source), peer_of(b.source));
    a.router_id(&pa)
        .cmp(&b.router_id(&pb))
        .then(pa.address.cmp(&pb.address))
}

/// The selected paths of a destination: `paths[..count]` are the
/// equal-cost set in preference order, the first being the best path.
/// Stale paths take part like any other (RFC 4724 keeps forwarding on them).
/// `peer_of` tells what the tie-breaks need of a path's peer.
pub fn select(
    paths: &mut [Path],
    multipath: &MultipathConfig,
    peer_of: &dyn Fn(Source) -> PathPeer,
) -> usize {
    let n = select_among(paths, multipath, peer_of);
    // A withdrawn path sorts last: when it comes first, there is nothing
    // else.
    if paths
        .first()
        .is_some_and(|p| p.gated == Some(GateAction::Withdraw))
    {
        return 0;
    }
    n
}

fn select_among(
    paths: &mut [Path],
    multipath: &MultipathConfig,
    peer_of: &dyn Fn(Source) -> PathPeer,
) -> usize {
    if paths.len() <= 1 {
        return paths.len();
    }
    // RFC 4271 §9.1.2.2 is an elimination: a-c by preference, then MED only
    // among paths from the same neighbour AS, then eBGP over iBGP.
    paths.sort_by(compare_preference);
    let top = paths
        .iter()
        .take_while(|p| compare_preference(p, &paths[0]).is_eq())
        .count();
    let candidates = &mut paths[..top];
    let mut survives = vec![true; candidates.len()];
    for (i, p) in candidates.iter().enumerate() {
        survives[i] = !candidates
            .iter()
            .any(|q| q.neighbor_as().is_some() && q.neighbor_as() == p.neighbor_as() && q.med() < p.med());
    }
    let ebgp = |p: &Path| peer_of(p.source).ebgp;
    let any_ebgp = candidates.iter().zip(&survives).any(|(p, s)| *s && ebgp(p));
    for (i, p) in candidates.iter().enumerate() {
        if any_ebgp && !ebgp(p) && !matches!(p.source, Source::Local) {
            survives[i] = false;
        }
    }
    // Survivors first, ordered by the tie-breaks; the rest after.
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&i, &j| {
        survives[j]
            .cmp(&survives[i])
            .then(compare_tie_break(&candidates[i], &candidates[j], peer_of))
    });
    let sorted: Vec<Path> = order.iter().map(|&i| candidates[i].clone()).collect();
    let equal = survives.iter().filter(|s| **s).count();
    candidates.clone_from_slice(&sorted);

    // The equal-cost set: survivors whose AS path is the same as the best's,
    // or of the same length with multipath-relax (already equal by b).
    let best = &paths[0];
    let mut count = 1;
    for p in &paths[1..equal] {
        if count >= multipath.max_paths {
            break;
        }
        let same_path = multipath.as_path_relax || p.attrs().as_path == best.attrs().as_path;
        if same_path && ebgp(p) == ebgp(best) && p.source != Source::Local && best.source != Source::Local {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::AsPath;

    fn path(peer: u32, f: impl FnOnce(&mut Attributes)) -> Path {
        let mut attrs = Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence([4210101000 + peer, 4220101000])),
            ..Attributes::default()
        };
        f(&mut attrs);
        Path {
            source: Source::Peer(PeerId(peer)),
            route: Arc::new(PathRoute {
                attrs: Arc::new(attrs),
                next_hop: NextHop::V4(Ipv4Addr::new(10, 0, 0, peer as u8)),
            }),
            stale: false,
            in_set: false,
            gated: None,
            since: 0,
        }
    }

    /// Peer `n` has router ID and address 10.0.0.n and is external.
    fn peer_of(s: Source) -> PathPeer {
        let n = match s {
            Source::Peer(PeerId(n)) => n,
            Source::Local => 0,
        };
        PathPeer {
            router_id: Ipv4Addr::new(10, 0, 0, n as u8),
            address: IpAddr::from([10, 0, 0, n as u8]),
            asn: 4210101000 + n,
            ebgp: true,
        }
    }

    fn mp(max: usize, relax: bool) -> MultipathConfig {
        MultipathConfig {
            max_paths: max,
            as_path_relax: relax,
        }
    }

    fn winners(paths: &mut [Path], m: &MultipathConfig) -> Vec<u32> {
        winners_with(paths, m, &peer_of)
    }

    fn winners_with(paths: &mut [Path], m: &MultipathConfig, peers: &dyn Fn(Source) -> PathPeer) -> Vec<u32> {
        let n = select(paths, m, peers);
        paths[..n]
            .iter()
            .map(|p| match p.source {
                Source::Peer(PeerId(id)) => id,
                Source::Local => 0,
            })
            .collect()
    }

    #[test]
    fn rfc_4271_order_of_preference() {
        let m = mp(1, false);
        // Higher LOCAL_PREF wins over a shorter path.
        let mut p = vec![
            path(1, |_| {}),
            path(2, |a| {
                a.local_pref = Some(200);
                a.as_path = Some(AsPath::from_sequence([1, 2, 3, 4]));
            }),
        ];
        assert_eq!(winners(&mut p, &m), [2]);
        // Shorter AS path.
        let mut p = vec![
            path(1, |a| a.as_path = Some(AsPath::from_sequence([1, 2, 3]))),
            path(2, |_| {}),
        ];
        assert_eq!(winners(&mut p, &m), [2]);
        // Lower origin.
        let mut p = vec![path(1, |a| a.origin = Some(Origin::Incomplete)), path(2, |_| {})];
        assert_eq!(winners(&mut p, &m), [2]);
        // eBGP over iBGP.
        let mut p = vec![path(1, |_| {}), path(2, |_| {})];
        let one_internal = |s: Source| PathPeer {
            ebgp: s != Source::Peer(PeerId(1)),
            ..peer_of(s)
        };
        assert_eq!(winners_with(&mut p, &m, &one_internal), [2]);
        // Lowest router ID, then lowest address.
        let mut p = vec![path(3, |_| {}), path(2, |_| {})];
        assert_eq!(winners(&mut p, &m), [2]);
        let mut p = vec![path(3, |_| {}), path(2, |_| {})];
        let same_id = |s: Source| PathPeer {
            router_id: Ipv4Addr::new(10, 0, 0, 3),
            ..peer_of(s)
        };
        assert_eq!(winners_with(&mut p, &m, &same_id), [2]);
    }

    #[test]
    fn med_is_compared_only_within_the_same_neighbour_as() {
        let m = mp(1, false);
        let same_as = |a: &mut Attributes, med| {
            a.as_path = Some(AsPath::from_sequence([65001, 4220101000]));
            a.med = Some(med);
        };
        // Same neighbour AS: lower MED wins although its router ID is higher.
        let mut p = vec![path(1, |a| same_as(a, 50)), path(2, |a| same_as(a, 10))];
        assert_eq!(winners(&mut p, &m), [2]);
        // Different neighbour ASes: MED is ignored, router ID decides.
        let mut p = vec![path(1, |a| a.med = Some(50)), path(2, |a| a.med = Some(10))];
        assert_eq!(winners(&mut p, &m), [1]);
    }

    /// The same VIP from three nodes, each with its own ASN: with
    /// multipath-relax all three are used.
    #[test]
    fn ecmp_with_as_path_multipath_relax() {
        let mut p = vec![path(3, |_| {}), path(1, |_| {}), path(2, |_| {})];
        assert_eq!(winners(&mut p, &mp(8, true)), [1, 2, 3]);
        let mut p = vec![path(3, |_| {}), path(1, |_| {}), path(2, |_| {})];
        assert_eq!(winners(&mut p, &mp(2, true)), [1, 2]);
        // Without relax the AS paths differ: no ECMP.
        let mut p = vec![path(3, |_| {}), path(1, |_| {}), path(2, |_| {})];
        assert_eq!(winners(&mut p, &mp(8, false)), [1]);
        // Identical AS paths are equal even without relax.
        let same = |a: &mut Attributes| a.as_path = Some(AsPath::from_sequence([65001]));
        let mut p = vec![path(1, same), path(2, same)];
        assert_eq!(winners(&mut p, &mp(8, false)), [1, 2]);
        // A longer path is never part of the set.
        let mut p = vec![
            path(1, |_| {}),
            path(2, |a| a.as_path = Some(AsPath::from_sequence([1, 2, 3]))),
        ];
        assert_eq!(winners(&mut p, &mp(8, true)), [1]);
    }

    #[test]
    fn locally_originated_wins_and_is_alone() {
        let mut local = path(9, |_| {});
        local.source = Source::Local;
        let mut p = vec![path(1, |_| {}), local];
        assert_eq!(winners(&mut p, &mp(8, true)), [0]);
    }
}
