//! What the FIB believes the kernel holds of its own, kept small: with a
//! full table this is one entry per route.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Fib, RouteKey};
use crate::fib::kernel::{KernelRoute, RouteKind};

/// A route of ours in the kernel, as written or as found at start.
#[derive(Clone, Debug)]
pub(super) struct Installed {
    written: Written,
    /// Found in the kernel at start and not yet confirmed as wanted.
    pub(super) leftover: bool,
}

/// Nearly every route of a full table is a unicast route on a nexthop
/// object with the configured table, protocol, metric and source address:
/// its object's id says all of it (8 bytes where the route is 90, and no
/// allocation). Anything else is kept whole.
#[derive(Clone, Debug)]
enum Written {
    Object(u32),
    Route(Box<KernelRoute>),
}

impl Installed {
    /// The object the route points at.
    pub(super) fn nhid(&self) -> Option<u32> {
        match &self.written {
            Written::Object(id) => Some(*id),
            Written::Route(r) => r.nhid,
        }
    }

    pub(super) fn kind(&self) -> RouteKind {
        match &self.written {
            Written::Object(_) => RouteKind::Unicast,
            Written::Route(r) => r.kind,
        }
    }
}

impl Fib {
    /// Keeps `route` (a route on an object carries no next hops) as
    /// installed.
    pub(super) fn installed_entry(&self, route: KernelRoute, leftover: bool) -> Installed {
        let written = match route.nhid {
            Some(id)
                if route.kind == RouteKind::Unicast
                    && route.nexthops.is_empty()
                    && route.table == self.config.table
                    && route.protocol == self.config.protocol
                    && route.metric == self.config.metric
                    && route.prefsrc == self.prefsrc(&route.prefix) =>
            {
                Written::Object(id)
            }
            _ => Written::Route(Box::new(route)),
        };
        Installed { written, leftover }
    }

    /// The route an entry stands for, as written (a route on an object
    /// without its next hops).
    pub(super) fn installed_route(&self, key: RouteKey, i: &Installed) -> KernelRoute {
        match &i.written {
            Written::Object(id) => KernelRoute {
                prefix: key.prefix,
                table: key.table,
                protocol: self.config.protocol,
                kind: RouteKind::Unicast,
                metric: self.config.metric,
                nexthops: Vec::new(),
                nhid: Some(*id),
                prefsrc: self.prefsrc(&key.prefix),
            },
            Written::Route(r) => (**r).clone(),
        }
    }

    /// The configured source address for routes to `prefix`.
    pub(super) fn prefsrc(&self, prefix: &IpNet) -> Option<IpAddr> {
        match prefix {
            IpNet::V4(_) => self.config.source_address_ipv4.map(IpAddr::V4),
            IpNet::V6(_) => self.config.source_address_ipv6.map(IpAddr::V6),
        }
    }
}
