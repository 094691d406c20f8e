//! A raw BGP feeder beside a lab's router: a [`RawPeer`] at
//! `fd00:101::99` (AS 65099, in the router's namespace) that node 1's
//! tern takes as a passive `upstream` peer named `feeder`, and the large
//! tables it sends (/24s from `11.0.0.0/8` through one next hop, only
//! ever routes inside the lab's namespaces).

use std::net::IpAddr;

use bgp_proto::{AsPath, Attributes, Context, Family, NextHop, Nlri, Origin, UpdateBuilder};
use bytes::BytesMut;
use ipnet::{IpNet, Ipv4Net};

use crate::lab::{Topology, TopologyBuilder};
use crate::netns::Netns;
use crate::raw::{RawPeer, open_message};

pub const FEEDER_V6: &str = "fd00:101::99";
pub const FEEDER_V4: &str = "10.101.0.99";
pub const FEEDER_AS: u32 = 65099;

/// The table's prefix `i`.
pub fn prefix(i: u32) -> Ipv4Net {
    Ipv4Net::new((0x0b00_0000 + (i << 8)).into(), 24).expect("prefix")
}

/// A table of `routes` /24s as UPDATEs through the feeder's IPv4 address,
/// then End-of-RIB.
pub fn table(routes: u32) -> Vec<u8> {
    let mut b = UpdateBuilder::new(Context::ebgp());
    let attrs = Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence([FEEDER_AS])),
        ..Attributes::default()
    };
    let nlri: Vec<Nlri> = (0..routes).map(|i| Nlri::new(IpNet::V4(prefix(i)))).collect();
    let mut buf = BytesMut::new();
    b.announce(
        &mut buf,
        Family::IPV4_UNICAST,
        &attrs,
        NextHop::V4(FEEDER_V4.parse().expect("address")),
        &nlri,
    )
    .expect("encode");
    b.end_of_rib(&mut buf, Family::IPV4_UNICAST).expect("encode");
    buf.to_vec()
}

/// Node 1's tern gets a passive `upstream` peer for the feeder.
pub fn with_feeder(b: TopologyBuilder) -> TopologyBuilder {
    b.tern_extra(
        1,
        &format!(
            "[[peer]]\nname = \"feeder\"\naddress = \"{FEEDER_V6}\"\nremote-asn = {FEEDER_AS}\nrole = \"upstream\"\npassive = true\n"
        ),
    )
}

/// The feeder's addresses on the router's namespace (after `start`).
pub fn add_feeder_addresses(lab: &Topology) {
    let router = &lab.router(0).ns;
    router.ip(&[
        "addr",
        "add",
        &format!("{FEEDER_V6}/64"),
        "dev",
        "eth-seg",
        "nodad",
    ]);
    router.ip(&["addr", "add", &format!("{FEEDER_V4}/24"), "dev", "eth-seg"]);
}

/// A session from the feeder to node 1 (hold time 0: no keepalives).
pub fn connect(lab: &Topology) -> RawPeer {
    let node: IpAddr = lab.node(1).id.v6().parse().expect("address");
    RawPeer::establish(
        &lab.router(0).ns,
        FEEDER_V6.parse().expect("address"),
        node,
        lab.node(1).id.asn(),
        &open_message(FEEDER_AS, 0, [10, 101, 0, 99], 4),
    )
}

/// IPv4 prefixes in a namespace's main table, as the kernel counts them
/// (cheap enough to poll while a table loads).
pub fn main_prefixes(ns: &Netns) -> usize {
    ns.spawn_in(|| {
        let text = std::fs::read_to_string("/proc/thread-self/net/fib_triestat").unwrap_or_default();
        let main = text.split("Main:").nth(1).unwrap_or_default().to_owned();
        main.lines()
            .find_map(|l| l.trim().strip_prefix("Prefixes:")?.trim().parse().ok())
            .unwrap_or(0)
    })
    .join()
    .expect("count")
}
