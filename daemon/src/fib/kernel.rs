//! The kernel's routing state as plain values: routes, nexthop objects,
//! links and addresses, the operations that change them and the events
//! that report changes. The model ([`super::model`]) decides in these
//! terms and [`super::netlink`] carries them to and from the kernel; this
//! file does neither.

use std::net::IpAddr;

use ipnet::IpNet;

pub const RT_TABLE_MAIN: u32 = 254;
pub const RT_TABLE_LOCAL: u32 = 255;

/// `RTPROT_BGP`: the protocol of the routes and nexthop objects tern owns.
pub const RTPROT_BGP: u8 = 186;

/// The route's type (`rtm_type`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    /// `RTN_UNICAST`: forwarded to its next hops.
    Unicast,
    /// `RTN_LOCAL`: delivered to this host (a VIP on `lo`).
    Local,
    /// `RTN_BLACKHOLE`: silently dropped.
    Blackhole,
    /// `RTN_UNREACHABLE`: dropped with ICMP unreachable to the sender.
    Unreachable,
}

/// One next hop of a route, or the single next hop of a nexthop object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelNextHop {
    pub gateway: Option<IpAddr>,
    pub ifindex: Option<u32>,
    /// 1 = weight 1 (`rtnh_hops` 0); only meaningful with several next
    /// hops or in a group.
    pub weight: u8,
}

impl KernelNextHop {
    /// A gateway, reached through `ifindex` when given (required for IPv6
    /// link-local gateways).
    pub fn via(gateway: IpAddr, ifindex: Option<u32>) -> Self {
        KernelNextHop {
            gateway: Some(gateway),
            ifindex,
            weight: 1,
        }
    }

    /// A device without gateway (a device route, or a local route's device).
    pub fn device(ifindex: u32) -> Self {
        KernelNextHop {
            gateway: None,
            ifindex: Some(ifindex),
            weight: 1,
        }
    }
}

/// A route as the kernel holds it.
///
/// An IPv4 prefix with an IPv6 gateway is encoded with `RTA_VIA` (RFC 8950
/// routes); IPv6 link-local gateways always carry their ifindex.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KernelRoute {
    /// Host bits zero.
    pub prefix: IpNet,
    /// `RT_TABLE_MAIN` = 254, `RT_TABLE_LOCAL` = 255; sent in `RTA_TABLE`.
    pub table: u32,
    pub protocol: u8,
    pub kind: RouteKind,
    /// `RTA_PRIORITY`.
    pub metric: u32,
    /// Next hops of a unicast route, sorted; one entry for a single path (a
    /// gateway, or just an ifindex for a device route); several for ECMP
    /// (`RTA_MULTIPATH`). For Local routes: the device (ifindex, e.g. lo).
    /// Empty for Blackhole.
    pub nexthops: Vec<KernelNextHop>,
    /// When the route points at a nexthop object or group instead
    /// (`RTA_NH_ID`); `nexthops` is then empty.
    pub nhid: Option<u32>,
    /// `RTA_PREFSRC`: the source address for traffic the host itself sends
    /// over the route (bird's `krt_prefsrc`).
    pub prefsrc: Option<IpAddr>,
}

/// What a nexthop object forwards to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NexthopSpec {
    /// One next hop; without gateway and device it is a blackhole.
    Single(KernelNextHop),
    /// An ECMP group: (member id, weight), weight 1 and up.
    Group(Vec<(u32, u8)>),
}

/// A kernel nexthop object (`ip nexthop`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NexthopObject {
    pub id: u32,
    pub protocol: u8,
    pub spec: NexthopSpec,
}

/// One change to make in the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// RTM_NEWROUTE with NLM_F_CREATE | NLM_F_REPLACE (idempotent).
    ReplaceRoute(KernelRoute),
    /// RTM_DELROUTE matching prefix, table, protocol, kind and metric.
    DeleteRoute(KernelRoute),
    /// RTM_NEWNEXTHOP with NLM_F_CREATE | NLM_F_REPLACE.
    ReplaceNexthop(NexthopObject),
    /// RTM_DELNEXTHOP by id.
    DeleteNexthop(u32),
}

/// Why an operation failed: the errno from the kernel's ACK, with its
/// extended ACK message if any (else the errno's description).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (errno {errno})")]
pub struct OpError {
    pub errno: i32,
    pub message: String,
}

/// A network device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    /// `IFF_UP` with an operational state of up or unknown.
    pub up: bool,
    pub mtu: u32,
}

/// An address on a device, with its prefix length (host bits kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub ifindex: u32,
    pub prefix: IpNet,
}

/// Kernel events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A device appeared or changed.
    Link(Link),
    /// A device is gone (by ifindex).
    LinkGone(u32),
    Address {
        added: bool,
        address: Address,
    },
    /// A route of any protocol was added, replaced or deleted (only the
    /// types a [`KernelRoute`] can hold).
    Route {
        added: bool,
        route: KernelRoute,
    },
    /// A nexthop object was added, replaced or deleted. Objects removed
    /// because their device went down or lost carrier are not reported,
    /// nor are the IPv4 routes removed with them: watch the links.
    Nexthop {
        added: bool,
        object: NexthopObject,
    },
    /// The socket overflowed (ENOBUFS): events were lost, resynchronise
    /// with full dumps.
    Overrun,
}
