//! Nexthop objects (`RTM_*NEXTHOP`, linux/nexthop.h). netlink-packet-route
//! has no nexthop messages, so they are built here on netlink-packet-core's
//! `Nla`/`Emitable` traits: a `struct nhmsg` header and `NHA_*` attributes.
//!
//! A single next hop is created in the family of its gateway; without one
//! (a device, or a blackhole) it is created as IPv6, which IPv4 routes may
//! use too, while IPv6 routes cannot use IPv4 objects. A group is
//! `AF_UNSPEC` and weighted: `struct nexthop_grp` holds the weight minus
//! one (and, since Linux 6.12, its high byte).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DecodeError, Emitable, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, Nla, NlaBuffer, NlasIterator,
};

use super::wire::{RTM_DELNEXTHOP, RTM_GETNEXTHOP, RTM_NEWNEXTHOP, push_message};
use super::{KernelNextHop, NexthopObject, NexthopSpec};

const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_GROUP_TYPE: u16 = 3;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const NEXTHOP_GRP_TYPE_MPATH: u16 = 0;
const AF_UNSPEC: u8 = libc::AF_UNSPEC as u8;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;
/// `sizeof(struct nhmsg)`.
const HEADER_LEN: usize = 8;
/// `sizeof(struct nexthop_grp)`.
const GROUP_ENTRY_LEN: usize = 8;

enum Attribute {
    Id(u32),
    Group(Vec<(u32, u8)>),
    GroupType(u16),
    Blackhole,
    Oif(u32),
    Gateway(IpAddr),
}

impl Nla for Attribute {
    fn value_len(&self) -> usize {
        match self {
            Attribute::Id(_) | Attribute::Oif(_) => 4,
            Attribute::Group(members) => members.len() * GROUP_ENTRY_LEN,
            Attribute::GroupType(_) => 2,
            Attribute::Blackhole => 0,
            Attribute::Gateway(IpAddr::V4(_)) => 4,
            Attribute::Gateway(IpAddr::V6(_)) => 16,
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Attribute::Id(_) => NHA_ID,
            Attribute::Group(_) => NHA_GROUP,
            Attribute::GroupType(_) => NHA_GROUP_TYPE,
            Attribute::Blackhole => NHA_BLACKHOLE,
            Attribute::Oif(_) => NHA_OIF,
            Attribute::Gateway(_) => NHA_GATEWAY,
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Attribute::Id(v) | Attribute::Oif(v) => buffer[..4].copy_from_slice(&v.to_ne_bytes()),
            Attribute::GroupType(v) => buffer[..2].copy_from_slice(&v.to_ne_bytes()),
            Attribute::Blackhole => {}
            Attribute::Gateway(IpAddr::V4(a)) => buffer[..4].copy_from_slice(&a.octets()),
            Attribute::Gateway(IpAddr::V6(a)) => buffer[..16].copy_from_slice(&a.octets()),
            Attribute::Group(members) => {
                for (entry, (id, weight)) in buffer.chunks_exact_mut(GROUP_ENTRY_LEN).zip(members) {
                    entry[..4].copy_from_slice(&id.to_ne_bytes());
                    entry[4] = weight.saturating_sub(1);
                    entry[5..].fill(0);
                }
            }
        }
    }
}

/// A request body: `struct nhmsg` and attributes.
struct Request {
    family: u8,
    protocol: u8,
    attributes: Vec<Attribute>,
}

impl Emitable for Request {
    fn buffer_len(&self) -> usize {
        HEADER_LEN + self.attributes.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        // nh_family, nh_scope, nh_protocol, resvd, nh_flags: the kernel
        // wants scope, resvd and flags zero.
        buffer[..HEADER_LEN].copy_from_slice(&[self.family, 0, self.protocol, 0, 0, 0, 0, 0]);
        self.attributes.as_slice().emit(&mut buffer[HEADER_LEN..]);
    }
}

fn request(object: &NexthopObject) -> Request {
    let mut attributes = vec![Attribute::Id(object.id)];
    let family = match &object.spec {
        NexthopSpec::Group(members) => {
            attributes.push(Attribute::Group(members.clone()));
            attributes.push(Attribute::GroupType(NEXTHOP_GRP_TYPE_MPATH));
            AF_UNSPEC
        }
        NexthopSpec::Single(KernelNextHop {
            gateway: None,
            ifindex: None,
            ..
        }) => {
            attributes.push(Attribute::Blackhole);
            AF_INET6
        }
        NexthopSpec::Single(nh) => {
            attributes.extend(nh.gateway.map(Attribute::Gateway));
            attributes.extend(nh.ifindex.map(Attribute::Oif));
            match nh.gateway {
                Some(IpAddr::V4(_)) => AF_INET,
                _ => AF_INET6,
            }
        }
    };
    Request {
        family,
        protocol: object.protocol,
        attributes,
    }
}

/// `RTM_NEWNEXTHOP` with `NLM_F_CREATE | NLM_F_REPLACE`.
pub fn push_replace(buf: &mut Vec<u8>, seq: u32, object: &NexthopObject) {
    push_message(
        buf,
        RTM_NEWNEXTHOP,
        NLM_F_CREATE | NLM_F_REPLACE,
        seq,
        &request(object),
    );
}

pub fn push_delete(buf: &mut Vec<u8>, seq: u32, id: u32) {
    let body = Request {
        family: AF_UNSPEC,
        protocol: 0,
        attributes: vec![Attribute::Id(id)],
    };
    push_message(buf, RTM_DELNEXTHOP, 0, seq, &body);
}

/// A dump of every object: the kernel filters nexthop dumps by device or
/// kind, not by protocol, and rejects a dump header with a protocol.
pub fn push_dump(buf: &mut Vec<u8>, seq: u32) {
    let body = Request {
        family: AF_UNSPEC,
        protocol: 0,
        attributes: vec![],
    };
    push_message(buf, RTM_GETNEXTHOP, NLM_F_DUMP, seq, &body);
}

fn u32_of(value: &[u8]) -> Result<u32, DecodeError> {
    let bytes: [u8; 4] = value
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("short nexthop attribute")?;
    Ok(u32::from_ne_bytes(bytes))
}

/// The object an `RTM_NEWNEXTHOP` (dump or event) or `RTM_DELNEXTHOP`
/// describes. A blackhole is a single next hop without gateway or device.
pub fn decode(payload: &[u8]) -> Result<NexthopObject, DecodeError> {
    let header = payload.get(..HEADER_LEN).ok_or("short nhmsg")?;
    let (family, protocol) = (header[0], header[2]);
    let (mut id, mut group, mut gateway, mut ifindex) = (None, None, None, None);
    for nla in NlasIterator::new(&payload[HEADER_LEN..]) {
        let nla: NlaBuffer<&[u8]> = nla?;
        let value = nla.value();
        match nla.kind() {
            NHA_ID => id = Some(u32_of(value)?),
            NHA_OIF => ifindex = Some(u32_of(value)?),
            NHA_GATEWAY => {
                gateway = Some(match (family, value.len()) {
                    (AF_INET, 4) => {
                        IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value).unwrap_or_default()))
                    }
                    (AF_INET6, 16) => {
                        IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(value).unwrap_or_default()))
                    }
                    _ => return Err("nexthop gateway of unknown family".into()),
                })
            }
            NHA_GROUP => {
                group = Some(
                    value
                        .chunks_exact(GROUP_ENTRY_LEN)
                        .map(|entry| {
                            let id = u32::from_ne_bytes([entry[0], entry[1], entry[2], entry[3]]);
                            // Weight minus one, high byte in entry[5].
                            let weight = if entry[5] != 0 {
                                u8::MAX
                            } else {
                                entry[4].saturating_add(1)
                            };
                            (id, weight)
                        })
                        .collect(),
                )
            }
            _ => {}
        }
    }
    let spec = match group {
        Some(members) => NexthopSpec::Group(members),
        None => NexthopSpec::Single(KernelNextHop {
            gateway,
            ifindex,
            weight: 1,
        }),
    };
    Ok(NexthopObject {
        id: id.ok_or("nexthop without NHA_ID")?,
        protocol,
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::netlink::RTPROT_BGP;
    use crate::fib::netlink::wire::messages;

    fn round_trip(object: &NexthopObject) -> (u8, NexthopObject) {
        let mut buf = Vec::new();
        push_replace(&mut buf, 3, object);
        let message = messages(&buf).next().unwrap().unwrap();
        assert_eq!(message.message_type, RTM_NEWNEXTHOP);
        (message.payload[0], decode(message.payload).unwrap())
    }

    fn single(gateway: Option<&str>, ifindex: Option<u32>) -> NexthopObject {
        NexthopObject {
            id: 7,
            protocol: RTPROT_BGP,
            spec: NexthopSpec::Single(KernelNextHop {
                gateway: gateway.map(|g| g.parse().unwrap()),
                ifindex,
                weight: 1,
            }),
        }
    }

    #[test]
    fn single_next_hops_take_the_gateway_family() {
        for (object, family) in [
            (single(Some("10.0.0.2"), Some(3)), AF_INET),
            (single(Some("fd00::2"), Some(3)), AF_INET6),
            (single(Some("fe80::2"), Some(3)), AF_INET6),
            (single(None, Some(3)), AF_INET6),
            (single(None, None), AF_INET6),
        ] {
            assert_eq!(round_trip(&object), (family, object));
        }
    }

    #[test]
    fn group_round_trips_with_weights() {
        let object = NexthopObject {
            id: 100,
            protocol: RTPROT_BGP,
            spec: NexthopSpec::Group(vec![(1, 1), (2, 3), (3, 255)]),
        };
        let (family, back) = round_trip(&object);
        assert_eq!(family, AF_UNSPEC);
        assert_eq!(back, object);
    }

    #[test]
    fn delete_names_only_the_id() {
        let mut buf = Vec::new();
        push_delete(&mut buf, 5, 42);
        let message = messages(&buf).next().unwrap().unwrap();
        assert_eq!(message.message_type, RTM_DELNEXTHOP);
        let object = decode(message.payload).unwrap();
        assert_eq!(object.id, 42);
    }
}
