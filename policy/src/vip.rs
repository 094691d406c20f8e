//! Which routes are the node's own LoadBalancer VIPs: the host routes its
//! Cilium (or MetalLB, or kube-vip) advertises. The FIB installs these as local routes so that
//! traffic from the node to its own VIPs never leaves it (the hairpin fix).
//! This is a selection only; it never changes or rejects a route.

use std::sync::Arc;

use crate::{CommunitySet, PrefixSet, RouteInput};

/// Selects VIP routes: learned from a local speaker (`cilium`, `metallb`,
/// `kube-vip`), and narrowed by the fields set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipSelector {
    /// When not empty, the prefix must match one of these sets.
    pub prefix_sets: Vec<Arc<PrefixSet>>,
    /// When set, the route must carry a community of this set.
    pub communities: Option<Arc<CommunitySet>>,
    /// Only /32 and /128 routes, which is how Cilium advertises
    /// LoadBalancer VIPs (pod CIDRs are shorter).
    pub host_routes_only: bool,
}

impl Default for VipSelector {
    /// Every /32 and /128 from a local speaker.
    fn default() -> Self {
        VipSelector {
            prefix_sets: Vec::new(),
            communities: None,
            host_routes_only: true,
        }
    }
}

impl VipSelector {
    pub fn matches(&self, route: &RouteInput<'_>) -> bool {
        let prefix = &route.prefix;
        route.source.is_some_and(|s| s.role.is_local_speaker())
            && (!self.host_routes_only || prefix.prefix_len() == prefix.max_prefix_len())
            && (self.prefix_sets.is_empty() || self.prefix_sets.iter().any(|set| set.matches(prefix)))
            && self
                .communities
                .as_ref()
                .is_none_or(|set| set.matches_any(&route.attributes.communities))
    }
}

#[cfg(test)]
mod tests {
    use bgp_proto::{Attributes, Community};

    use super::*;
    use crate::testing::{peer, route};
    use crate::{CommunityPattern, PrefixEntry, Role};

    fn prefix_set(entries: &[&str]) -> Arc<PrefixSet> {
        Arc::new(
            PrefixSet::new(
                "vips",
                entries
                    .iter()
                    .map(|e| e.parse::<PrefixEntry>().unwrap())
                    .collect(),
            )
            .unwrap(),
        )
    }

    /// (prefix, source role, carries 65000:100) for each route below.
    const ROUTES: [(&str, Option<Role>, bool); 8] = [
        ("10.100.0.7/32", Some(Role::Cilium), false),
        // MetalLB's and kube-vip's VIPs are the node's own as Cilium's are.
        ("10.100.0.8/32", Some(Role::Metallb), true),
        ("fd00:100::7/128", Some(Role::KubeVip), false),
        ("10.244.1.0/24", Some(Role::Cilium), false),
        ("10.200.0.1/32", Some(Role::Cilium), true),
        ("10.100.0.9/32", Some(Role::Upstream), true),
        ("10.100.0.10/32", Some(Role::Peer), false),
        ("10.100.0.11/32", None, false),
    ];

    #[test]
    fn selection() {
        let tagged = Some(Arc::new(CommunitySet::new(
            "vip",
            vec!["65000:100".parse::<CommunityPattern>().unwrap()],
        )));
        let cases = [
            (
                "default",
                VipSelector::default(),
                [true, true, true, false, true, false, false, false],
            ),
            (
                "any length",
                VipSelector {
                    host_routes_only: false,
                    ..VipSelector::default()
                },
                [true, true, true, true, true, false, false, false],
            ),
            (
                "prefix sets",
                VipSelector {
                    prefix_sets: vec![
                        prefix_set(&["10.100.0.0/24 le 32"]),
                        prefix_set(&["fd00:100::/64 le 128"]),
                    ],
                    ..VipSelector::default()
                },
                [true, true, true, false, false, false, false, false],
            ),
            (
                "communities",
                VipSelector {
                    communities: tagged.clone(),
                    ..VipSelector::default()
                },
                [false, true, false, false, true, false, false, false],
            ),
            (
                "prefix sets and communities",
                VipSelector {
                    prefix_sets: vec![prefix_set(&["10.100.0.0/24 le 32"])],
                    communities: tagged,
                    host_routes_only: true,
                },
                [false, true, false, false, false, false, false, false],
            ),
            (
                "a set that admits a pod CIDR, host routes only",
                VipSelector {
                    prefix_sets: vec![prefix_set(&["10.0.0.0/8 le 32"])],
                    ..VipSelector::default()
                },
                [true, true, false, false, true, false, false, false],
            ),
        ];
        for (name, selector, expected) in cases {
            let got = ROUTES.map(|(prefix, role, tagged)| {
                let attrs = Attributes {
                    communities: if tagged {
                        vec![Community::new(65000, 100)]
                    } else {
                        vec![]
                    },
                    ..Attributes::default()
                };
                selector.matches(&RouteInput {
                    source: role.map(|r| peer("n", r)),
                    ..route(prefix, &attrs)
                })
            });
            assert_eq!(got, expected, "{name}");
        }
    }
}
