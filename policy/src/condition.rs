//! The conditions a policy statement matches routes by. Each is a pure
//! test of one [`RouteInput`]; none allocates.

use std::sync::Arc;

use bgp_proto::Family;
use ipnet::IpNet;

use crate::{CommunitySet, ExtCommunitySet, LargeCommunitySet, PeerInfo, PrefixSet, Role, RouteInput};

/// One test of a route. A statement matches when all its conditions do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The prefix matches the set.
    Prefix(Arc<PrefixSet>),
    /// The route carries any community of the set.
    Community(Arc<CommunitySet>),
    /// The route carries any large community of the set.
    LargeCommunity(Arc<LargeCommunitySet>),
    /// The route carries any extended community of the set.
    ExtCommunity(Arc<ExtCommunitySet>),
    /// Any of these ASes is anywhere in the AS path, confederation
    /// segments included.
    AsPathContains(Vec<u32>),
    /// The originating AS (the last of a final AS_SEQUENCE) is one of
    /// these. A path ending in an AS_SET, or empty, has none.
    AsPathOrigin(Vec<u32>),
    /// The neighbouring AS (the first of a leading AS_SEQUENCE,
    /// RFC 4271 §9.1.2.2 c) is one of these.
    AsPathNeighbor(Vec<u32>),
    /// The AS path length, counted as for best-path selection
    /// (RFC 4271 §9.1.2.2 a: a set counts one, confederation segments
    /// nothing), is within the bounds. No AS_PATH is length 0.
    AsPathLength {
        min: Option<u32>,
        max: Option<u32>,
    },
    /// The route was learned from a peer of one of these names.
    PeerName(Vec<String>),
    /// The route was learned from a peer of one of these roles.
    PeerRole(Vec<Role>),
    /// The route was learned from a peer whose address is in one of these.
    PeerAddress(Vec<IpNet>),
    /// The route is being exported to a peer of one of these names.
    ToPeerName(Vec<String>),
    /// The route is being exported to a peer of one of these roles.
    ToPeerRole(Vec<Role>),
    Family(Vec<Family>),
    /// The next hop, as received, is inside one of these. Next-hop changes
    /// made by earlier statements are instructions to the daemon and are
    /// not seen here.
    NextHop(Vec<IpNet>),
    /// tern originates the route itself (it has no source peer).
    Originated,
    Not(Box<Condition>),
}

impl Condition {
    pub fn matches(&self, route: &RouteInput<'_>) -> bool {
        let attrs = route.attributes;
        let path = attrs.as_path.as_ref();
        let source = |test: &dyn Fn(&PeerInfo<'_>) -> bool| route.source.as_ref().is_some_and(test);
        let target = |test: &dyn Fn(&PeerInfo<'_>) -> bool| route.target.as_ref().is_some_and(test);
        match self {
            Condition::Prefix(set) => set.matches(&route.prefix),
            Condition::Community(set) => set.matches_any(&attrs.communities),
            Condition::LargeCommunity(set) => set.matches_any(&attrs.large_communities),
            Condition::ExtCommunity(set) => set.matches_any(&attrs.ext_communities),
            Condition::AsPathContains(asns) => path.is_some_and(|p| asns.iter().any(|a| p.contains(*a))),
            Condition::AsPathOrigin(asns) => path
                .and_then(|p| p.origin_asn())
                .is_some_and(|a| asns.contains(&a)),
            Condition::AsPathNeighbor(asns) => path
                .and_then(|p| p.neighbor_asn())
                .is_some_and(|a| asns.contains(&a)),
            Condition::AsPathLength { min, max } => {
                let len = path.map_or(0, |p| u32::try_from(p.path_len()).unwrap_or(u32::MAX));
                min.is_none_or(|m| len >= m) && max.is_none_or(|m| len <= m)
            }
            Condition::PeerName(names) => source(&|p| names.iter().any(|n| n == p.name)),
            Condition::PeerRole(roles) => source(&|p| roles.contains(&p.role)),
            Condition::PeerAddress(nets) => source(&|p| nets.iter().any(|n| n.contains(&p.address))),
            Condition::ToPeerName(names) => target(&|p| names.iter().any(|n| n == p.name)),
            Condition::ToPeerRole(roles) => target(&|p| roles.contains(&p.role)),
            Condition::Family(families) => families.contains(&route.family),
            Condition::NextHop(nets) => route
                .next_hop
                .is_some_and(|nh| nets.iter().any(|n| n.contains(&nh))),
            Condition::Originated => route.source.is_none(),
            Condition::Not(inner) => !inner.matches(route),
        }
    }
}

#[cfg(test)]
mod tests {
    use bgp_proto::{AsPath, AsSegment, Attributes, Community, ExtCommunity, LargeCommunity};

    use super::*;
    use crate::testing::{addr, net, peer, route};
    use crate::{CommunityPattern, LargeCommunityPattern, PrefixEntry};

    fn prefix_set(entries: &[&str]) -> Arc<PrefixSet> {
        Arc::new(
            PrefixSet::new(
                "p",
                entries
                    .iter()
                    .map(|e| e.parse::<PrefixEntry>().unwrap())
                    .collect(),
            )
            .unwrap(),
        )
    }

    fn with_path(segments: Vec<AsSegment>) -> Attributes {
        Attributes {
            as_path: Some(AsPath { segments }),
            ..Attributes::default()
        }
    }

    #[test]
    fn prefix_and_communities() {
        let attrs = Attributes {
            communities: vec![Community::new(65000, 100), Community::NO_EXPORT],
            large_communities: vec![LargeCommunity::new(65000, 1, 2)],
            ext_communities: vec!["rt:65000:1".parse().unwrap()],
            ..Attributes::default()
        };
        let r = route("10.96.4.0/24", &attrs);
        let communities = |p: &[&str]| {
            Condition::Community(Arc::new(CommunitySet::new(
                "c",
                p.iter().map(|m| m.parse::<CommunityPattern>().unwrap()).collect(),
            )))
        };
        let large = |p: &[&str]| {
            Condition::LargeCommunity(Arc::new(LargeCommunitySet::new(
                "l",
                p.iter()
                    .map(|m| m.parse::<LargeCommunityPattern>().unwrap())
                    .collect(),
            )))
        };
        let ext = |p: &[&str]| {
            Condition::ExtCommunity(Arc::new(ExtCommunitySet::new(
                "e",
                p.iter().map(|m| m.parse::<ExtCommunity>().unwrap()).collect(),
            )))
        };
        let cases = [
            (Condition::Prefix(prefix_set(&["10.96.0.0/16 le 24"])), true),
            (Condition::Prefix(prefix_set(&["10.96.0.0/16"])), false),
            (Condition::Prefix(prefix_set(&["fd00::/8 le 128"])), false),
            (communities(&["65000:*"]), true),
            (communities(&["no-export"]), true),
            (communities(&["*:200", "65001:100"]), false),
            (communities(&[]), false),
            (large(&["65000:*:2"]), true),
            (large(&["65000:2:*"]), false),
            (ext(&["rt:65000:1"]), true),
            (ext(&["rt:65000:2"]), false),
        ];
        for (condition, expected) in cases {
            assert_eq!(condition.matches(&r), expected, "{condition:?}");
        }
        let bare = Attributes::default();
        assert!(!communities(&["*:*"]).matches(&route("10.0.0.0/8", &bare)));
        assert!(!large(&["*:*:*"]).matches(&route("10.0.0.0/8", &bare)));
    }

    #[test]
    fn as_path() {
        let long = with_path(vec![
            AsSegment {
                kind: bgp_proto::SegmentKind::ConfedSequence,
                asns: vec![64600],
            },
            AsSegment::sequence([64512, 64513, 64514]),
            AsSegment::set([7, 8]),
        ]);
        let simple = with_path(vec![AsSegment::sequence([64512, 65001])]);
        let empty = with_path(vec![]);
        let none = Attributes::default();
        let len = |min, max| Condition::AsPathLength { min, max };
        let cases = [
            // (condition, long path, simple path, empty path, no AS_PATH)
            (Condition::AsPathContains(vec![8]), [true, false, false, false]),
            (
                Condition::AsPathContains(vec![64600]),
                [true, false, false, false],
            ),
            (
                Condition::AsPathContains(vec![1, 65001]),
                [false, true, false, false],
            ),
            (Condition::AsPathContains(vec![]), [false, false, false, false]),
            (Condition::AsPathOrigin(vec![65001]), [false, true, false, false]),
            (
                Condition::AsPathOrigin(vec![8, 64514]),
                [false, false, false, false],
            ),
            (Condition::AsPathNeighbor(vec![64512]), [true, true, false, false]),
            (
                Condition::AsPathNeighbor(vec![64600]),
                [false, false, false, false],
            ),
            // Lengths: long is 4 (3 + set 1 + confed 0), simple 2, others 0.
            (len(None, None), [true, true, true, true]),
            (len(Some(4), None), [true, false, false, false]),
            (len(Some(5), None), [false, false, false, false]),
            (len(None, Some(0)), [false, false, true, true]),
            (len(Some(1), Some(2)), [false, true, false, false]),
            (len(Some(2), Some(4)), [true, true, false, false]),
        ];
        for (condition, expected) in cases {
            let got = [&long, &simple, &empty, &none].map(|a| condition.matches(&route("10.0.0.0/8", a)));
            assert_eq!(got, expected, "{condition:?}");
        }
    }

    #[test]
    fn peers_family_next_hop() {
        let attrs = Attributes::default();
        let from_upstream = RouteInput {
            source: Some(peer("tor1", Role::Upstream)),
            target: Some(peer("cilium", Role::Cilium)),
            next_hop: Some(addr("192.0.2.1")),
            ..route("10.0.0.0/8", &attrs)
        };
        let originated = RouteInput {
            target: Some(peer("tor1", Role::Upstream)),
            ..route("fd00::/64", &attrs)
        };
        let cases = [
            // (condition, from upstream, originated)
            (Condition::PeerName(vec!["tor1".into()]), [true, false]),
            (Condition::PeerName(vec!["tor2".into()]), [false, false]),
            (Condition::PeerName(vec![]), [false, false]),
            (
                Condition::PeerRole(vec![Role::Upstream, Role::Peer]),
                [true, false],
            ),
            (Condition::PeerRole(vec![Role::Cilium]), [false, false]),
            (Condition::PeerAddress(vec![net("192.0.2.0/24")]), [true, false]),
            (
                Condition::PeerAddress(vec![net("::/0"), net("198.51.100.0/24")]),
                [false, false],
            ),
            (Condition::ToPeerName(vec!["cilium".into()]), [true, false]),
            (Condition::ToPeerName(vec!["tor1".into()]), [false, true]),
            (Condition::ToPeerRole(vec![Role::Upstream]), [false, true]),
            (Condition::ToPeerRole(vec![Role::Cilium]), [true, false]),
            (Condition::Family(vec![Family::IPV4_UNICAST]), [true, false]),
            (Condition::Family(vec![Family::IPV6_UNICAST]), [false, true]),
            (
                Condition::Family(vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]),
                [true, true],
            ),
            (Condition::NextHop(vec![net("192.0.2.0/30")]), [true, false]),
            (Condition::NextHop(vec![net("192.0.2.2/32")]), [false, false]),
            (Condition::NextHop(vec![net("::/0")]), [false, false]),
            (Condition::Originated, [false, true]),
            (Condition::Not(Box::new(Condition::Originated)), [true, false]),
            (
                Condition::Not(Box::new(Condition::Not(Box::new(Condition::PeerRole(vec![
                    Role::Upstream,
                ]))))),
                [true, false],
            ),
        ];
        for (condition, expected) in cases {
            let got = [&from_upstream, &originated].map(|r| condition.matches(r));
            assert_eq!(got, expected, "{condition:?}");
        }
        // With no target (import), the ToPeer conditions match nothing.
        let import = RouteInput {
            target: None,
            ..from_upstream
        };
        assert!(!Condition::ToPeerRole(vec![Role::Cilium, Role::Upstream, Role::Peer]).matches(&import));
    }
}
