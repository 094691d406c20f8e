//! What the API asks of the RIB: per-peer prefix counts, the Loc-RIB's
//! size, and its routes, as [`crate::status`] types.

use bgp_proto::Family;
use ipnet::IpNet;

use super::Rib;
use super::best::{Path, PeerId, Source};
use crate::status::{PathView, PrefixCounts, RibSummary, RouteView};

/// Which Loc-RIB entries a route query wants.
#[derive(Clone, Debug, Default)]
pub struct RouteFilter {
    pub prefix: Option<IpNet>,
    pub family: Option<Family>,
    pub peer: Option<String>,
    pub best_only: bool,
}

impl Rib {
    pub fn counts(&self, id: PeerId) -> PrefixCounts {
        let Some(p) = self.peer(id) else {
            return PrefixCounts::default();
        };
        PrefixCounts {
            received: p.adj_in.received(),
            accepted: p.adj_in.accepted.len(),
            advertised: p.adj_out.len(),
            stale: p.adj_in.stale.len(),
            unsendable: p.adj_out.unsendable(),
        }
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
        }
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
}
