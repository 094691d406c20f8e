//! What the API asks of the RIB: per-peer prefix counts, the Loc-RIB's
//! size, its routes, and each peer's Adj-RIB-In and Adj-RIB-Out, as
//! [`crate::status`] types.

use std::net::IpAddr;

use bgp_proto::{Attributes, Family, NextHop};
use ipnet::IpNet;

use super::best::{Path, PeerId, Source};
use super::{Rib, RibPeer};
use crate::status::{
    AdjRouteView, AdjStatus, AttributesView, FamilyCounts, PathView, PrefixCounts, RibSummary, RouteView,
};

/// Which routes a query wants.
#[derive(Clone, Debug, Default)]
pub struct RouteFilter {
    /// This prefix and those inside it.
    pub prefix: Option<IpNet>,
    /// Only the most specific route covering this address (bird's `show
    /// route for`).
    pub longest_match: Option<IpAddr>,
    pub family: Option<Family>,
    pub peer: Option<String>,
    pub best_only: bool,
    /// Adj-RIB-In: only what was filtered or invalid.
    pub filtered_only: bool,
}

impl RouteFilter {
    fn wants(&self, prefix: &IpNet) -> bool {
        self.prefix.is_none_or(|f| f.contains(prefix))
            && self.longest_match.is_none_or(|a| prefix.contains(&a))
            && self.family.is_none_or(|f| Family::unicast_of(prefix) == f)
    }
}

/// Which side of a peer's Adj-RIBs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AdjSide {
    /// What it sent us (Adj-RIB-In), before import policy.
    Received,
    /// What we sent it (Adj-RIB-Out).
    Advertised,
}

fn attributes_view(a: &Attributes, next_hop: Option<NextHop>) -> AttributesView {
    AttributesView {
        next_hop: next_hop.map_or_else(|| "-".to_owned(), |n| n.to_string()),
        as_path: a.as_path.as_ref().map(ToString::to_string).unwrap_or_default(),
        origin: a.origin.map(|o| o.to_string()),
        med: a.med,
        local_pref: a.local_pref,
        communities: a.communities.iter().map(ToString::to_string).collect(),
        large_communities: a.large_communities.iter().map(ToString::to_string).collect(),
    }
}

impl Rib {
    pub fn counts(&self, id: PeerId) -> PrefixCounts {
        let Some(p) = self.peer(id) else {
            return PrefixCounts::default();
        };
        PrefixCounts {
            received: p.adj_in.received(),
            accepted: p.adj_in.accepted.len(),
            filtered: p.adj_in.rejected.len(),
            invalid: p.adj_in.invalid.len(),
            advertised: p.adj_out.len(),
            stale: p.adj_in.stale.len(),
            unsendable: p.adj_out.unsendable(),
            over_limit: p.adj_in.over_limit.len(),
        }
    }

    /// The peer of that name.
    pub fn peer_named(&self, name: &str) -> Option<PeerId> {
        (0..self.peers.len() as u32)
            .map(PeerId)
            .find(|id| self.peer(*id).is_some_and(|p| &*p.setup.name == name))
    }

    /// One peer's counts per family (a walk over its tables: for one
    /// peer's view, not for every scrape).
    pub fn family_counts(&self, id: PeerId) -> Vec<FamilyCounts> {
        let Some(p) = self.peer(id) else {
            return Vec::new();
        };
        let mut families: Vec<Family> = match &p.session {
            Some(s) => s.negotiated.families.clone(),
            None => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        };
        families.sort();
        let count = |it: &mut dyn Iterator<Item = &IpNet>, f: Family| {
            it.filter(|p| Family::unicast_of(p) == f).count()
        };
        families
            .into_iter()
            .map(|f| {
                let accepted = p.adj_in.accepted.count(f);
                let filtered = count(&mut p.adj_in.rejected.iter(), f);
                let invalid = count(&mut p.adj_in.invalid.keys(), f);
                FamilyCounts {
                    family: f.to_string(),
                    counts: PrefixCounts {
                        received: accepted + filtered + invalid,
                        accepted,
                        filtered,
                        invalid,
                        advertised: count(&mut p.adj_out.advertised(), f),
                        stale: count(&mut p.adj_in.stale.iter(), f),
                        unsendable: count(&mut p.adj_out.unsendable_prefixes(), f),
                        over_limit: usize::from(p.adj_in.over_limit.contains(&f)),
                    },
                }
            })
            .collect()
    }

    /// A peer's Adj-RIB-In or Adj-RIB-Out, sorted by prefix; None if there
    /// is no such peer.
    pub fn adj_rib(&self, peer: &str, side: AdjSide, filter: &RouteFilter) -> Option<Vec<AdjRouteView>> {
        let id = self.peer_named(peer)?;
        let p = self.peer(id)?;
        let mut out = match side {
            AdjSide::Received => self.received(id, p, filter),
            AdjSide::Advertised => p
                .adj_out
                .advertised_routes()
                .filter(|(prefix, _)| filter.wants(prefix))
                .map(|(prefix, (attrs, nh))| AdjRouteView {
                    prefix: *prefix,
                    attributes: Some(attributes_view(attrs, Some(*nh))),
                    status: AdjStatus::Advertised,
                    reason: None,
                    modified_by: Vec::new(),
                })
                .chain(
                    p.adj_out
                        .unsendable_prefixes()
                        .filter(|prefix| filter.wants(prefix))
                        .map(|prefix| AdjRouteView {
                            prefix: *prefix,
                            attributes: None,
                            status: AdjStatus::Unsendable,
                            reason: Some("cannot be encoded for this session (see the log)".into()),
                            modified_by: Vec::new(),
                        }),
                )
                .collect(),
        };
        out.sort_by_key(|r| r.prefix);
        Some(out)
    }

    /// Every path the peer sent, with what became of it. With soft
    /// reconfiguration the pre-policy path is kept and import policy is
    /// run again to say which statement decided; without it, accepted
    /// paths are shown as the Loc-RIB has them (after policy) and filtered
    /// ones by prefix alone.
    fn received(&self, id: PeerId, p: &RibPeer, filter: &RouteFilter) -> Vec<AdjRouteView> {
        let a = &p.adj_in;
        let mut out = Vec::new();
        match self.pre_policy(id, |prefix| filter.wants(prefix)) {
            Some(pre) => {
                for (prefix, (attrs, nh)) in &pre {
                    let filtered = a.rejected.contains(prefix);
                    if filter.filtered_only && !filtered {
                        continue;
                    }
                    let (reason, modified_by) = explain_import(p, *prefix, attrs, *nh, filtered);
                    out.push(AdjRouteView {
                        prefix: *prefix,
                        attributes: Some(attributes_view(attrs, Some(*nh))),
                        status: status(a.stale.contains(prefix), filtered),
                        reason,
                        modified_by,
                    });
                }
            }
            None => {
                if !filter.filtered_only {
                    for prefix in self
                        .accepted(id, |_| true)
                        .into_iter()
                        .filter(|prefix| filter.wants(prefix))
                    {
                        let path = self
                            .loc
                            .get(&prefix)
                            .and_then(|d| d.paths.iter().find(|x| x.source == Source::Peer(id)));
                        out.push(AdjRouteView {
                            prefix,
                            attributes: path.map(|x| attributes_view(x.attrs(), Some(*x.next_hop()))),
                            status: status(a.stale.contains(&prefix), false),
                            reason: Some("after import policy (soft-reconfiguration is off)".into()),
                            modified_by: Vec::new(),
                        });
                    }
                }
                for prefix in a.rejected.iter().filter(|prefix| filter.wants(prefix)) {
                    out.push(AdjRouteView {
                        prefix: *prefix,
                        attributes: None,
                        status: AdjStatus::Filtered,
                        reason: Some("path not kept: soft-reconfiguration is off".into()),
                        modified_by: Vec::new(),
                    });
                }
            }
        }
        for (prefix, bad) in a.invalid.iter().filter(|(prefix, _)| filter.wants(prefix)) {
            out.push(AdjRouteView {
                prefix: *prefix,
                attributes: Some(attributes_view(&bad.attrs, bad.next_hop)),
                status: AdjStatus::Invalid,
                reason: Some(bad.reason.to_string()),
                modified_by: Vec::new(),
            });
        }
        out
    }

    /// Loc-RIB size: prefixes per family, paths, distinct attribute sets;
    /// kept as the table changes, so it costs nothing to ask.
    pub fn summary(&self) -> RibSummary {
        RibSummary {
            ipv4_prefixes: self.loc_size.ipv4_prefixes,
            ipv6_prefixes: self.loc_size.ipv6_prefixes,
            paths: self.loc_size.paths,
            attribute_sets: self.interner.len(),
            deferring: self.defer_until.is_some(),
            drained: self.drain.is_some(),
        }
    }

    /// The Loc-RIB entries matching `filter`, for the API.
    pub fn routes(&self, filter: &RouteFilter) -> Vec<RouteView> {
        let longest = filter.longest_match.and_then(|a| self.longest_match(a));
        let entries: Box<dyn Iterator<Item = (IpNet, &super::loc_rib::Dest)>> = match filter.longest_match {
            Some(_) => Box::new(longest.into_iter()),
            None => Box::new(self.loc.iter().filter(|(p, _)| filter.wants(p))),
        };
        let mut out: Vec<RouteView> = entries
            .filter_map(|(p, d)| {
                let paths: Vec<PathView> = d
                    .paths
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !filter.best_only || p.in_set)
                    .map(|(i, path)| self.path_view(path, i == 0 && path.in_set, path.in_set))
                    .filter(|v| filter.peer.as_deref().is_none_or(|n| v.peer == n))
                    .collect();
                (!paths.is_empty()).then_some(RouteView {
                    prefix: p,
                    paths,
                    kernel: None,
                })
            })
            .collect();
        out.sort_by_key(|r| r.prefix);
        out
    }

    /// The most specific Loc-RIB entry covering `addr`: one lookup per
    /// prefix length, longest first.
    fn longest_match(&self, addr: IpAddr) -> Option<(IpNet, &super::loc_rib::Dest)> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (0..=max).rev().find_map(|len| {
            let net = IpNet::new(addr, len).ok()?.trunc();
            self.loc.get(&net).map(|d| (net, d))
        })
    }

    fn path_view(&self, path: &Path, best: bool, multipath: bool) -> PathView {
        let peer = match path.source {
            Source::Local => "local".to_owned(),
            Source::Peer(id) => self.peer(id).map_or("?".into(), |p| p.setup.name.to_string()),
        };
        let now = u32::try_from(self.epoch.elapsed().as_secs()).unwrap_or(u32::MAX);
        PathView {
            peer,
            attributes: attributes_view(path.attrs(), Some(*path.next_hop())),
            age: u64::from(now.saturating_sub(path.since)),
            best,
            multipath,
            stale: path.stale,
            gated: path.gated.map(|g| g.to_string()),
        }
    }
}

fn status(stale: bool, filtered: bool) -> AdjStatus {
    match (filtered, stale) {
        (true, _) => AdjStatus::Filtered,
        (false, true) => AdjStatus::Stale,
        (false, false) => AdjStatus::Accepted,
    }
}

/// Import policy run again over a kept path, to say why it was filtered
/// (`reason`) or which statements changed it (`modified_by`).
fn explain_import(
    p: &RibPeer,
    prefix: IpNet,
    attrs: &Attributes,
    nh: NextHop,
    filtered: bool,
) -> (Option<String>, Vec<String>) {
    if p.refuses_next_hop(nh) {
        return (
            Some("next hop is on this node and accept-local-next-hop is off".into()),
            Vec::new(),
        );
    }
    let why = policy::explain(
        &p.setup.import.refs(),
        p.setup.import.default,
        &p.import_input(prefix, attrs, nh),
    );
    if !filtered {
        return (None, why.changed_by());
    }
    let reason = if !why.accepted {
        match why.decided_by().as_str() {
            "default" => "rejected by the import default (no statement accepted it)".to_owned(),
            by => format!("rejected by import policy {by}"),
        }
    } else if p.setup.max_prefix.is_some() {
        "discarded: max-prefix limit reached (discard-excess)".to_owned()
    } else {
        // Rejected under an earlier policy; the next reload runs it again.
        "rejected by the import policy in force when it arrived".to_owned()
    };
    (Some(reason), Vec::new())
}
