//! Next hops as the kernel needs them: an address, and for an IPv6
//! link-local one the link it is on.

use std::net::IpAddr;

use bgp_proto::NextHop;

/// A next hop as the kernel needs it: the address to forward to, and for
/// an IPv6 link-local one the link it is on.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gateway {
    pub addr: IpAddr,
    pub ifindex: Option<u32>,
}

impl Gateway {
    /// The gateway of a BGP next hop learned over a session on `link`
    /// (over link-local addresses). There the link-local address is used
    /// when there is one, as FRR does: an unnumbered router sends its
    /// link-local address, alone or twice (RFC 2545 §3). Elsewhere the
    /// global address, an IPv4-mapped one as IPv4.
    pub fn of(nh: &NextHop, link: Option<u32>) -> Gateway {
        if let Some(ifindex) = link {
            let global_ll = match nh.addr() {
                IpAddr::V6(a) if a.is_unicast_link_local() => Some(a),
                _ => None,
            };
            if let Some(ll) = nh.link_local().or(global_ll) {
                return Gateway {
                    addr: IpAddr::V6(ll),
                    ifindex: Some(ifindex),
                };
            }
        }
        Gateway {
            addr: nh.ipv4_mapped().map_or(nh.addr(), IpAddr::V4),
            ifindex: None,
        }
    }
}

impl From<IpAddr> for Gateway {
    fn from(addr: IpAddr) -> Self {
        Gateway { addr, ifindex: None }
    }
}

impl std::fmt::Display for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ifindex {
            Some(i) => write!(f, "{}%{i}", self.addr),
            None => self.addr.fmt(f),
        }
    }
}

/// The next hops of a selection.
pub type NextHops = smallvec::SmallVec<[Gateway; 2]>;
