//! Memory after churn: a RIB with 100 routes takes a flood of 4.8 million
//! announcements over 65,536 prefixes (a new attribute set every few
//! UPDATEs, as a flapping or hostile peer sends), then every flooded
//! prefix is withdrawn. Prints, at each step, resident memory and the
//! interned attribute sets: the RIB must come back to its baseline.
//! `cargo bench -p tern --bench churn`
//!
//! The RIB task does the same between bursts: `Rib::release_unused`, then
//! `memory::trim` when a table gave room back.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use bgp_proto::{AsPath, Attributes, Community, Nlri, Origin, Update};
use ipnet::{IpNet, Ipv4Net};
use policy::{Disposition, Role};
use tern::config::PolicyChain;
use tern::rib::{PeerSetup, Rib, SessionInfo};

const BASE: u32 = 100;
const FLOODED: u32 = 65_536;
const ANNOUNCEMENTS: u32 = 4_800_000;
const PER_UPDATE: u32 = 64;

fn resident_mb() -> f64 {
    common::resident() as f64 / 1e6
}

fn prefix(n: u32) -> Nlri {
    Nlri::new(IpNet::V4(
        Ipv4Net::new(Ipv4Addr::from(0x0b00_0000 + (n << 8)), 24).expect("valid"),
    ))
}

fn update(first: u32, count: u32, set: u32) -> Update {
    Update {
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence([65001, 64512 + set % 1000])),
            med: Some(set),
            communities: vec![Community::new(65000, (set % 100) as u16)],
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 2)),
            ..Attributes::default()
        },
        nlri: (first..first + count).map(prefix).collect(),
        ..Update::default()
    }
}

fn main() {
    let now = Instant::now();
    let mut rib = Rib::new(common::settings(4210101021), now);
    let accept = PolicyChain {
        policies: vec![],
        default: Disposition::Accept,
    };
    let peer = rib.add_peer(PeerSetup {
        name: "flood".into(),
        role: Role::Upstream,
        local_asn: 4210101021,
        import: accept.clone(),
        export: PolicyChain {
            policies: vec![],
            default: Disposition::Reject,
        },
        next_hop_self: true,
        accept_local_next_hop: false,
        soft_reconfiguration: true,
        max_prefix: None,
        wait_for_end_of_rib: false,
        restart_hold: false,
    });
    rib.peer_up(
        peer,
        SessionInfo {
            negotiated: common::negotiated(65001),
            local_address: IpAddr::from([10, 0, 0, 1]),
            remote_address: IpAddr::from([10, 0, 0, 2]),
            ifindex: None,
        },
        now,
    );
    let report = |step: &str, rib: &Rib| {
        let s = rib.summary();
        println!(
            "  {step:<44} {:>8} routes {:>7} attribute sets {:>8.1} MB RSS",
            s.ipv4_prefixes,
            s.attribute_sets,
            resident_mb()
        );
    };
    println!(
        "tern RIB churn: {BASE} routes, then {ANNOUNCEMENTS} announcements over {FLOODED} prefixes, withdrawn again"
    );
    // The baseline: 100 routes over 5 sets.
    for i in 0..BASE {
        rib.update(peer, update(FLOODED + i, 1, i % 5));
    }
    rib.release_unused();
    tern::memory::trim();
    report("baseline", &rib);
    let started = Instant::now();
    let mut sent = 0;
    let mut u = 0;
    while sent < ANNOUNCEMENTS {
        let first = (u * PER_UPDATE) % FLOODED;
        // A new attribute set every 4 UPDATEs.
        rib.update(peer, update(first, PER_UPDATE, 10 + u / 4));
        sent += PER_UPDATE;
        u += 1;
    }
    report("after the flood", &rib);
    for chunk in (0..FLOODED).collect::<Vec<_>>().chunks(PER_UPDATE as usize) {
        let w = Update {
            withdrawn: chunk.iter().map(|n| prefix(*n)).collect(),
            ..Update::default()
        };
        rib.update(peer, w);
    }
    let flood_time = started.elapsed();
    report("flood withdrawn", &rib);
    rib.release_unused();
    report("unused sets and table room released", &rib);
    tern::memory::trim();
    report("and the allocator trimmed (as the RIB task)", &rib);
    println!(
        "  ({:.1} s, {:.0} announcements/s)",
        flood_time.as_secs_f64(),
        f64::from(ANNOUNCEMENTS) / flood_time.as_secs_f64()
    );
}
