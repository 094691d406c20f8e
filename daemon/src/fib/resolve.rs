//! Next-hop resolution: which kernel next hops a BGP next hop stands for,
//! found the way the kernel would forward to it, from the links, addresses
//! and other daemons' routes the FIB has seen.

use std::collections::HashMap;
use std::net::IpAddr;

use super::kernel::{Address, KernelNextHop, KernelRoute, Link, RT_TABLE_MAIN, RouteKind};
use crate::rib::Gateway;

/// The part of the kernel's state that is not ours.
#[derive(Debug, Default)]
pub struct KernelView {
    pub links: HashMap<u32, Link>,
    pub addresses: Vec<Address>,
    /// Other daemons' routes in the main table.
    pub foreign: Vec<KernelRoute>,
}

impl KernelView {
    /// The kernel next hops for a BGP next hop: itself on a connected
    /// prefix of a link that is up, else the next hops of the most specific
    /// route tern does not own that covers it (not a default route, as FRR
    /// by default), recursively. A link-local one is on the link of the
    /// session it came from, when that link is up. Empty when
    /// unresolvable.
    pub fn resolve(&self, gateway: Gateway) -> Vec<KernelNextHop> {
        if let Some(ifindex) = gateway.ifindex {
            let up = self.links.get(&ifindex).is_some_and(|l| l.up);
            return if up {
                vec![KernelNextHop {
                    gateway: Some(gateway.addr),
                    ifindex: Some(ifindex),
                    weight: 1,
                }]
            } else {
                Vec::new()
            };
        }
        self.resolve_depth(gateway.addr, 0)
    }

    fn resolve_depth(&self, addr: IpAddr, depth: u8) -> Vec<KernelNextHop> {
        if depth > 4 {
            return Vec::new();
        }
        let up = |ifindex: u32| self.links.get(&ifindex).is_some_and(|l| l.up);
        // Connected: the longest matching address prefix on an up link.
        let connected = self
            .addresses
            .iter()
            .filter(|a| a.prefix.contains(&addr) && up(a.ifindex) && a.prefix.addr() != addr)
            .max_by_key(|a| a.prefix.prefix_len());
        if let Some(a) = connected {
            return vec![KernelNextHop {
                gateway: Some(addr),
                ifindex: Some(a.ifindex),
                weight: 1,
            }];
        }
        if let IpAddr::V6(v6) = addr
            && v6.is_unicast_link_local()
        {
            // A link-local address needs its link, which only the session
            // knows (see `Gateway::of`).
            return Vec::new();
        }
        let covering = self
            .foreign
            .iter()
            .filter(|r| {
                r.table == RT_TABLE_MAIN
                    && r.kind == RouteKind::Unicast
                    && r.prefix.prefix_len() > 0
                    && r.prefix.contains(&addr)
            })
            .max_by_key(|r| (r.prefix.prefix_len(), std::cmp::Reverse(r.metric)));
        let Some(route) = covering else { return Vec::new() };
        let mut out = Vec::new();
        for nh in &route.nexthops {
            match (nh.gateway, nh.ifindex) {
                (None, Some(ifindex)) if up(ifindex) => {
                    out.push(KernelNextHop {
                        gateway: Some(addr),
                        ifindex: Some(ifindex),
                        weight: 1,
                    });
                }
                (Some(gw), _) => out.extend(self.resolve_depth(gw, depth + 1)),
                _ => {}
            }
        }
        out
    }
}
