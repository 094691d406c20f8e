//! The route as policy sees it: its prefix and attributes, the peer it
//! came from and the peer it is going to. These are borrowed views built
//! by the RIB for each evaluation; policy never stores or changes them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use bgp_proto::{Attributes, Family};
use ipnet::IpNet;

use crate::PolicyError;

/// Who a route came from, or goes to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The node's own Cilium: a passive session over localhost that
    /// advertises LoadBalancer VIPs (as /32 and /128) and pod CIDRs.
    Cilium,
    /// MetalLB's speaker on the node (its FRR, frr-k8s or its native
    /// speaker): LoadBalancer VIPs, dialled to us.
    Metallb,
    /// kube-vip on the node (its embedded GoBGP): VIPs as /32 and /128,
    /// dialled to us over loopback.
    KubeVip,
    /// An upstream router of the node, such as a top-of-rack FRR.
    Upstream,
    /// Any other BGP speaker.
    Peer,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Cilium => "cilium",
            Role::Metallb => "metallb",
            Role::KubeVip => "kube-vip",
            Role::Upstream => "upstream",
            Role::Peer => "peer",
        })
    }
}

impl Role {
    /// A speaker on this node that announces what the node serves (its
    /// VIPs, its pod CIDRs): what it sends is the node's own, never a
    /// route to forward elsewhere, and its host routes get local routes
    /// (the hairpin fix).
    pub fn is_local_speaker(self) -> bool {
        matches!(self, Role::Cilium | Role::Metallb | Role::KubeVip)
    }

    /// Every local speaker role.
    pub const LOCAL_SPEAKERS: [Role; 3] = [Role::Cilium, Role::Metallb, Role::KubeVip];
}

impl FromStr for Role {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cilium" => Ok(Role::Cilium),
            "metallb" => Ok(Role::Metallb),
            "kube-vip" => Ok(Role::KubeVip),
            "upstream" => Ok(Role::Upstream),
            "peer" => Ok(Role::Peer),
            _ => Err(PolicyError::Keyword {
                what: "peer role",
                text: s.to_owned(),
                expected: "cilium, metallb, kube-vip, upstream or peer",
            }),
        }
    }
}

/// A BGP neighbour, as far as policy is concerned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo<'a> {
    /// The neighbour's configured name.
    pub name: &'a str,
    pub role: Role,
    pub address: IpAddr,
    pub asn: u32,
}

/// One route, on import (from `source` into the RIB) or on export (to
/// `target`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RouteInput<'a> {
    pub prefix: IpNet,
    pub family: Family,
    pub attributes: &'a Attributes,
    /// The next hop as received (NEXT_HOP or the MP_REACH_NLRI next hop).
    pub next_hop: Option<IpAddr>,
    /// The peer the route was learned from (None for routes tern originates).
    pub source: Option<PeerInfo<'a>>,
    /// The peer the route is being exported to (None on import).
    pub target: Option<PeerInfo<'a>>,
    /// tern's own AS, which [`crate::Action::Prepend`] uses when it names
    /// no AS.
    pub local_asn: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_text_forms() {
        for (text, role) in [
            ("cilium", Role::Cilium),
            ("metallb", Role::Metallb),
            ("kube-vip", Role::KubeVip),
            ("upstream", Role::Upstream),
            ("peer", Role::Peer),
        ] {
            assert_eq!(text.parse::<Role>(), Ok(role));
            assert_eq!(role.to_string(), text);
        }
        for bad in ["", "Cilium", "frr", "upstream "] {
            let err = bad.parse::<Role>().unwrap_err();
            assert!(
                err.to_string()
                    .contains("expected cilium, metallb, kube-vip, upstream or peer"),
                "{err}"
            );
        }
    }
}
