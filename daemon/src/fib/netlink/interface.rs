//! Links and addresses (`RTM_*LINK`, `RTM_*ADDR`), read with
//! netlink-packet-route's `LinkMessage` and `AddressMessage`.

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_DUMP, Parseable};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};

use super::wire::{RTM_GETADDR, RTM_GETLINK, push_message};
use super::{Address, Link};

pub fn push_link_dump(buf: &mut Vec<u8>, seq: u32) {
    push_message(buf, RTM_GETLINK, NLM_F_DUMP, seq, &LinkMessage::default());
}

pub fn push_address_dump(buf: &mut Vec<u8>, seq: u32) {
    push_message(buf, RTM_GETADDR, NLM_F_DUMP, seq, &AddressMessage::default());
}

/// Up means administratively up (`IFF_UP`) with an operational state of up
/// or unknown (devices without carrier detection, such as `lo`). A device
/// that loses carrier is not up, and the kernel then removes the nexthop
/// objects that use it.
pub fn link(payload: &[u8]) -> Option<Link> {
    let msg = LinkMessage::parse(payload).ok()?;
    let (mut name, mut mtu, mut oper) = (String::new(), 0, None);
    for attribute in &msg.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name.clone_from(n),
            LinkAttribute::Mtu(m) => mtu = *m,
            LinkAttribute::OperState(s) => oper = Some(s),
            _ => {}
        }
    }
    let running = matches!(oper, None | Some(State::Up | State::Unknown));
    Some(Link {
        ifindex: msg.header.index,
        name,
        up: msg.header.flags.contains(LinkFlags::Up) && running,
        mtu,
    })
}

/// The address with its prefix length. For IPv4 that is `IFA_LOCAL`
/// (`IFA_ADDRESS` is the peer on point-to-point links); IPv6 has only
/// `IFA_ADDRESS`.
pub fn address(payload: &[u8]) -> Option<Address> {
    let msg = AddressMessage::parse(payload).ok()?;
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    let prefix = IpNet::new(local.or(address)?, msg.header.prefix_len).ok()?;
    Some(Address {
        ifindex: msg.header.index,
        prefix,
    })
}
