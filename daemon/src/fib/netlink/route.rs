//! [`KernelRoute`] to and from `RTM_*ROUTE` messages (netlink-packet-route's
//! `RouteMessage`).
//!
//! An IPv4 prefix with an IPv6 gateway is sent with `RTA_VIA` (RFC 8950
//! routes); ECMP with `RTA_MULTIPATH`, where `rtnh_hops` is the weight
//! minus one. Deletes carry no next hops, so they match prefix, table,
//! protocol, type and metric whatever the route points at.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, Parseable};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType, RouteVia,
};

use super::wire::{RTM_DELROUTE, RTM_GETROUTE, RTM_NEWROUTE, push_message};
use super::{KernelNextHop, KernelRoute, RouteKind};

/// `RTM_NEWROUTE` with `NLM_F_CREATE | NLM_F_REPLACE`; like every write,
/// without `NLM_F_ACK` (the kernel answers only a failure).
pub fn push_replace(buf: &mut Vec<u8>, seq: u32, route: &KernelRoute) {
    let flags = NLM_F_CREATE | NLM_F_REPLACE;
    if route.kind == RouteKind::Unicast
        && let Some(id) = route.nhid
    {
        return push_flat(buf, RTM_NEWROUTE, flags, seq, route, Some(id));
    }
    push_message(buf, RTM_NEWROUTE, flags, seq, &message(route, false));
}

/// `RTM_DELROUTE` for the route's prefix, table, protocol, type and metric.
pub fn push_delete(buf: &mut Vec<u8>, seq: u32, route: &KernelRoute) {
    push_flat(buf, RTM_DELROUTE, 0, seq, route, None);
}

/// The two messages of a full table, written straight into the buffer
/// (the general encoder measures and builds each attribute as a value, a
/// sixth of the FIB task's time during a table): a delete (`nhid` none:
/// prefix, table, protocol, type and metric), or a unicast route on a
/// nexthop object. The same bytes as [`message`] (a test compares them).
fn push_flat(
    buf: &mut Vec<u8>,
    message_type: u16,
    flags: u16,
    seq: u32,
    route: &KernelRoute,
    nhid: Option<u32>,
) {
    const RTA_DST: u16 = 1;
    const RTA_PRIORITY: u16 = 6;
    const RTA_PREFSRC: u16 = 7;
    const RTA_TABLE: u16 = 15;
    const RTA_NH_ID: u16 = 30;
    fn attribute(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
        buf.extend_from_slice(&(4 + value.len() as u16).to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(value);
    }
    fn ip(address: IpAddr, f: impl FnOnce(&[u8])) {
        match address {
            IpAddr::V4(a) => f(&a.octets()),
            IpAddr::V6(a) => f(&a.octets()),
        }
    }
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]); // nlmsg_len, set below
    buf.extend_from_slice(&message_type.to_ne_bytes());
    buf.extend_from_slice(&(flags | netlink_packet_core::NLM_F_REQUEST).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // struct rtmsg
    let kind = match route.kind {
        RouteKind::Unicast => RouteType::Unicast,
        RouteKind::Local => RouteType::Local,
        RouteKind::Blackhole => RouteType::BlackHole,
        RouteKind::Unreachable => RouteType::Unreachable,
    };
    let scope = if nhid.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::NoWhere
    };
    let (table, table_attribute) = header_table(route.table);
    buf.extend_from_slice(&[
        u8::from(family(&route.prefix)),
        route.prefix.prefix_len(),
        0, // rtm_src_len
        0, // rtm_tos
        table,
        route.protocol,
        u8::from(scope),
        u8::from(kind),
    ]);
    buf.extend_from_slice(&0u32.to_ne_bytes()); // rtm_flags
    ip(route.prefix.network(), |a| attribute(buf, RTA_DST, a));
    if table_attribute {
        attribute(buf, RTA_TABLE, &route.table.to_ne_bytes());
    }
    attribute(buf, RTA_PRIORITY, &route.metric.to_ne_bytes());
    if let Some(id) = nhid {
        if let Some(src) = route.prefsrc {
            ip(src, |a| attribute(buf, RTA_PREFSRC, a));
        }
        attribute(buf, RTA_NH_ID, &id.to_ne_bytes());
    }
    // Every attribute above is a multiple of 4 bytes long.
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// A dump of one family's routes, filtered in the kernel (strict checking)
/// by table and protocol.
pub fn push_dump(
    buf: &mut Vec<u8>,
    seq: u32,
    family: AddressFamily,
    table: Option<u32>,
    protocol: Option<u8>,
) {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family;
    msg.header.protocol = RouteProtocol::from(protocol.unwrap_or(0));
    if let Some(table) = table {
        msg.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        msg.attributes.push(RouteAttribute::Table(table));
    }
    push_message(buf, RTM_GETROUTE, NLM_F_DUMP, seq, &msg);
}

/// `ip route get ADDRESS fibmatch`: the routing table entry the kernel
/// would use for traffic to `address` (policy rules, tables, longest
/// match and metrics all considered), with its prefix, table and protocol.
pub fn push_get(buf: &mut Vec<u8>, seq: u32, address: IpAddr) {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.destination_prefix_length = if address.is_ipv4() { 32 } else { 128 };
    msg.header.flags = RouteFlags::FibMatch;
    msg.attributes.push(RouteAttribute::Destination(address.into()));
    push_message(buf, RTM_GETROUTE, NLM_F_ACK, seq, &msg);
}

fn family(prefix: &IpNet) -> AddressFamily {
    match prefix {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    }
}

/// The gateway attribute: `RTA_GATEWAY` in the prefix's own family, else
/// `RTA_VIA` (an IPv6 next hop for an IPv4 prefix).
fn gateway(prefix: &IpNet, gateway: IpAddr) -> RouteAttribute {
    match (prefix, gateway) {
        (IpNet::V4(_), IpAddr::V6(v6)) => RouteAttribute::Via(RouteVia::Inet6(v6)),
        (IpNet::V6(_), IpAddr::V4(v4)) => RouteAttribute::Via(RouteVia::Inet(v4)),
        (_, gateway) => RouteAttribute::Gateway(gateway.into()),
    }
}

/// A route's table in the header, and whether RTA_TABLE must carry it:
/// the header holds tables up to 255, higher ones fit only in the
/// attribute. Routes in a low table go without it (the kernel reads one
/// attribute less for each).
fn header_table(table: u32) -> (u8, bool) {
    match u8::try_from(table) {
        Ok(t) => (t, false),
        Err(_) => (RouteHeader::RT_TABLE_UNSPEC, true),
    }
}

fn message(route: &KernelRoute, delete: bool) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let header = &mut msg.header;
    header.address_family = family(&route.prefix);
    header.destination_prefix_length = route.prefix.prefix_len();
    let (table, table_attribute) = header_table(route.table);
    header.table = table;
    header.protocol = RouteProtocol::from(route.protocol);
    header.kind = match route.kind {
        RouteKind::Unicast => RouteType::Unicast,
        RouteKind::Local => RouteType::Local,
        RouteKind::Blackhole => RouteType::BlackHole,
        RouteKind::Unreachable => RouteType::Unreachable,
    };
    // As iproute2: a delete matches any scope; host scope for local routes,
    // link scope for a device route, universe for the rest.
    header.scope = match (&route.kind, route.nexthops.as_slice()) {
        _ if delete => RouteScope::NoWhere,
        (RouteKind::Local, _) => RouteScope::Host,
        (RouteKind::Unicast, [KernelNextHop { gateway: None, .. }]) if route.nhid.is_none() => {
            RouteScope::Link
        }
        _ => RouteScope::Universe,
    };
    let attributes = &mut msg.attributes;
    attributes.push(RouteAttribute::Destination(route.prefix.network().into()));
    if table_attribute {
        attributes.push(RouteAttribute::Table(route.table));
    }
    attributes.push(RouteAttribute::Priority(route.metric));
    if delete {
        return msg;
    }
    if let Some(src) = route.prefsrc {
        attributes.push(RouteAttribute::PrefSource(src.into()));
    }
    if let Some(id) = route.nhid {
        attributes.push(RouteAttribute::NhId(id));
        return msg;
    }
    match (&route.kind, route.nexthops.as_slice()) {
        (RouteKind::Blackhole | RouteKind::Unreachable, _) | (_, []) => {}
        (RouteKind::Local, [first, ..]) | (RouteKind::Unicast, [first]) => {
            if let Some(gw) = first.gateway {
                attributes.push(gateway(&route.prefix, gw));
            }
            if let Some(ifindex) = first.ifindex {
                attributes.push(RouteAttribute::Oif(ifindex));
            }
        }
        (RouteKind::Unicast, nexthops) => {
            let hops = nexthops
                .iter()
                .map(|nh| {
                    let mut hop = RouteNextHop::default();
                    hop.hops = nh.weight.saturating_sub(1);
                    hop.interface_index = nh.ifindex.unwrap_or(0);
                    hop.attributes
                        .extend(nh.gateway.map(|gw| gateway(&route.prefix, gw)));
                    hop
                })
                .collect();
            attributes.push(RouteAttribute::MultiPath(hops));
        }
    }
    msg
}

fn address(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn via(via: &RouteVia) -> Option<IpAddr> {
    match via {
        RouteVia::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteVia::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// The route in an `RTM_NEWROUTE` or `RTM_DELROUTE` payload; see [`decode`].
pub fn parse(payload: &[u8]) -> Option<KernelRoute> {
    decode(&RouteMessage::parse(payload).ok()?)
}

/// The route a dump or an event reports, or `None` for what tern never
/// installs: cached clones, other families, and types other than unicast,
/// local and blackhole (broadcast, multicast, unreachable...).
///
/// With `RTA_NH_ID` the next hops are left empty: the kernel also expands
/// the object into gateways (`nexthop_compat_mode`), but the route is the
/// id. A local route's next hop is its device; a blackhole has none (IPv6
/// reports `lo`). Gateways come back with the device the kernel resolved.
pub fn decode(msg: &RouteMessage) -> Option<KernelRoute> {
    let header = &msg.header;
    if header.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let kind = match header.kind {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::Local => RouteKind::Local,
        RouteType::BlackHole => RouteKind::Blackhole,
        RouteType::Unreachable => RouteKind::Unreachable,
        _ => return None,
    };
    let mut destination = match header.address_family {
        AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let mut table = u32::from(header.table);
    let (mut metric, mut nhid, mut gw, mut oif, mut multipath) = (0, None, None, None, None);
    let mut prefsrc = None;
    for attribute in &msg.attributes {
        match attribute {
            RouteAttribute::Destination(a) => destination = address(a)?,
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::NhId(id) => nhid = Some(*id),
            RouteAttribute::Gateway(a) => gw = address(a),
            RouteAttribute::Via(v) => gw = via(v),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            RouteAttribute::PrefSource(a) => prefsrc = address(a),
            _ => {}
        }
    }
    let prefix = IpNet::new(destination, header.destination_prefix_length).ok()?;
    let nexthops = match (&kind, multipath) {
        _ if nhid.is_some() => vec![],
        (RouteKind::Blackhole | RouteKind::Unreachable, _) => vec![],
        (RouteKind::Local, _) => oif.map(KernelNextHop::device).into_iter().collect(),
        (RouteKind::Unicast, Some(hops)) => {
            let mut nexthops: Vec<KernelNextHop> = hops
                .iter()
                .map(|hop| KernelNextHop {
                    gateway: hop.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(a) => address(a),
                        RouteAttribute::Via(v) => via(v),
                        _ => None,
                    }),
                    ifindex: (hop.interface_index != 0).then_some(hop.interface_index),
                    weight: hop.hops.saturating_add(1),
                })
                .collect();
            nexthops.sort();
            nexthops
        }
        (RouteKind::Unicast, None) if gw.is_some() || oif.is_some() => {
            vec![KernelNextHop {
                gateway: gw,
                ifindex: oif,
                weight: 1,
            }]
        }
        (RouteKind::Unicast, None) => vec![],
    };
    Some(KernelRoute {
        prefix,
        table,
        protocol: u8::from(header.protocol),
        kind,
        metric,
        nexthops,
        nhid,
        prefsrc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::netlink::RTPROT_BGP;
    use crate::fib::netlink::wire::{NETLINK_HEADER_LEN, messages};

    fn route(prefix: &str, nexthops: Vec<KernelNextHop>) -> KernelRoute {
        KernelRoute {
            prefix: prefix.parse().unwrap(),
            table: 254,
            protocol: RTPROT_BGP,
            kind: RouteKind::Unicast,
            metric: 20,
            nexthops,
            nhid: None,
            prefsrc: None,
        }
    }

    fn via_gw(gateway: &str, ifindex: u32, weight: u8) -> KernelNextHop {
        KernelNextHop {
            gateway: Some(gateway.parse().unwrap()),
            ifindex: Some(ifindex),
            weight,
        }
    }

    /// The hand-written encoding of deletes and routes on objects gives
    /// the general encoder's bytes, for both families, with and without a
    /// source address, in a table that fits the header and one that does
    /// not.
    #[test]
    fn flat_messages_are_the_general_encoders_bytes() {
        let mut routes = Vec::new();
        for prefix in ["10.1.0.0/24", "0.0.0.0/0", "fd00:1::/48", "fd00::5/128"] {
            for table in [254, 1000] {
                for prefsrc in [None, Some("10.0.0.1"), Some("fd00::1")] {
                    let mut r = route(prefix, vec![]);
                    r.table = table;
                    r.nhid = Some(186_000_007);
                    r.prefsrc = prefsrc.map(|a| a.parse().unwrap());
                    routes.push(r);
                }
            }
        }
        let blackhole = KernelRoute {
            kind: RouteKind::Blackhole,
            ..route("10.9.0.0/16", vec![])
        };
        let gateway = route("10.1.0.0/24", vec![via_gw("10.0.0.2", 3, 1)]);
        for r in routes.iter().chain([&blackhole, &gateway]) {
            let (mut flat, mut general) = (Vec::new(), Vec::new());
            push_delete(&mut flat, 7, r);
            push_message(&mut general, RTM_DELROUTE, 0, 7, &message(r, true));
            assert_eq!(flat, general, "delete {r:?}");
        }
        for r in &routes {
            let (mut flat, mut general) = (Vec::new(), Vec::new());
            push_replace(&mut flat, 8, r);
            let flags = NLM_F_CREATE | NLM_F_REPLACE;
            push_message(&mut general, RTM_NEWROUTE, flags, 8, &message(r, false));
            assert_eq!(flat, general, "replace {r:?}");
        }
    }

    /// Encodes as a request, parses back as the kernel's echo would be.
    fn round_trip(route: &KernelRoute) -> (RouteMessage, KernelRoute) {
        let mut buf = Vec::new();
        push_replace(&mut buf, 9, route);
        let message = messages(&buf).next().unwrap().unwrap();
        assert_eq!((message.message_type, message.seq), (RTM_NEWROUTE, 9));
        assert_eq!(buf.len() % 4, 0);
        assert!(buf.len() > NETLINK_HEADER_LEN);
        let parsed = RouteMessage::parse(message.payload).unwrap();
        let decoded = decode(&parsed).unwrap();
        (parsed, decoded)
    }

    #[test]
    fn single_gateway_round_trips() {
        let r = route("10.1.0.0/24", vec![via_gw("10.0.0.2", 3, 1)]);
        let (msg, back) = round_trip(&r);
        assert_eq!(msg.header.scope, RouteScope::Universe);
        assert_eq!(back, r);
    }

    #[test]
    fn ipv4_prefix_with_ipv6_gateway_uses_via() {
        let r = route("10.1.0.0/24", vec![via_gw("fd00::2", 3, 1)]);
        let (msg, back) = round_trip(&r);
        assert!(
            msg.attributes
                .contains(&RouteAttribute::Via(RouteVia::Inet6("fd00::2".parse().unwrap())))
        );
        assert!(
            !msg.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Gateway(_)))
        );
        assert_eq!(back, r);
    }

    #[test]
    fn ecmp_round_trips_with_weights() {
        let r = route(
            "fd00:1::/48",
            vec![
                via_gw("fd00::2", 3, 1),
                via_gw("fd00::3", 3, 5),
                via_gw("fe80::1", 4, 1),
            ],
        );
        let (msg, back) = round_trip(&r);
        let Some(RouteAttribute::MultiPath(hops)) = msg
            .attributes
            .iter()
            .find(|a| matches!(a, RouteAttribute::MultiPath(_)))
        else {
            panic!("no RTA_MULTIPATH in {msg:?}");
        };
        assert_eq!(hops.iter().map(|h| h.hops).collect::<Vec<_>>(), [0, 4, 0]);
        assert_eq!(back, r);
    }

    #[test]
    fn device_route_has_link_scope() {
        let r = route("10.1.0.0/24", vec![KernelNextHop::device(3)]);
        let (msg, back) = round_trip(&r);
        assert_eq!(msg.header.scope, RouteScope::Link);
        assert_eq!(back, r);
    }

    #[test]
    fn local_blackhole_and_nhid_round_trip() {
        let mut local = route("10.96.1.10/32", vec![KernelNextHop::device(1)]);
        local.kind = RouteKind::Local;
        local.table = 255;
        let (msg, back) = round_trip(&local);
        assert_eq!(msg.header.scope, RouteScope::Host);
        assert_eq!(back, local);

        let mut blackhole = route("fd00:9::/48", vec![]);
        blackhole.kind = RouteKind::Blackhole;
        assert_eq!(round_trip(&blackhole).1, blackhole);

        let mut nhid = route("10.2.0.0/24", vec![]);
        nhid.nhid = Some(77);
        nhid.table = 1000;
        let (msg, back) = round_trip(&nhid);
        assert_eq!(msg.header.table, 0);
        assert_eq!(back, nhid);
    }

    #[test]
    fn delete_matches_without_next_hops() {
        let r = route("10.1.0.0/24", vec![via_gw("10.0.0.2", 3, 1)]);
        let mut buf = Vec::new();
        push_delete(&mut buf, 4, &r);
        let message = messages(&buf).next().unwrap().unwrap();
        assert_eq!(message.message_type, RTM_DELROUTE);
        let parsed = RouteMessage::parse(message.payload).unwrap();
        assert_eq!(parsed.header.scope, RouteScope::NoWhere);
        assert_eq!(parsed.header.protocol, RouteProtocol::from(RTPROT_BGP));
        assert!(parsed.attributes.contains(&RouteAttribute::Priority(20)));
        assert!(
            !parsed
                .attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Gateway(_) | RouteAttribute::Oif(_)))
        );
    }

    #[test]
    fn decode_skips_what_tern_never_installs() {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.kind = RouteType::Broadcast;
        assert_eq!(decode(&msg), None);
        msg.header.kind = RouteType::Unicast;
        msg.header.flags = RouteFlags::Cloned;
        assert_eq!(decode(&msg), None);
    }
}
