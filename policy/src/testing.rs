//! Builders shared by the unit tests.

use std::net::IpAddr;

use bgp_proto::{Attributes, Family};
use ipnet::IpNet;

use crate::{PeerInfo, Role, RouteInput};

pub const LOCAL_ASN: u32 = 65000;

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn peer(name: &'static str, role: Role) -> PeerInfo<'static> {
    let (address, asn) = match role {
        Role::Cilium | Role::Metallb | Role::KubeVip => (addr("127.0.0.1"), 65000),
        Role::Upstream => (addr("192.0.2.1"), 64512),
        Role::Peer => (addr("2001:db8::7"), 64999),
    };
    PeerInfo {
        name,
        role,
        address,
        asn,
    }
}

/// An imported route with no source, target or next hop.
pub fn route<'a>(prefix: &str, attributes: &'a Attributes) -> RouteInput<'a> {
    let prefix = net(prefix);
    RouteInput {
        prefix,
        family: match prefix {
            IpNet::V4(_) => Family::IPV4_UNICAST,
            IpNet::V6(_) => Family::IPV6_UNICAST,
        },
        attributes,
        next_hop: None,
        source: None,
        target: None,
        local_asn: LOCAL_ASN,
    }
}
