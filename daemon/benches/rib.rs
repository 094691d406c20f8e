//! RIB throughput and memory for a full table: one million IPv4 routes
//! over 3000 attribute sets arrive from one peer (as decoded UPDATEs of
//! 1000 prefixes each), then are exported to another peer and encoded.
//! Prints routes per second for import and export and resident memory per
//! route. `cargo bench -p tern --bench rib`
//!
//! The side-by-side comparison with BIRD and FRR on the same table is in
//! `interop-tests`; this isolates the RIB itself.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::{AsPath, Attributes, Community, NextHop, Nlri, Origin, Update};
use ipnet::{IpNet, Ipv4Net};
use policy::{Condition, Disposition, Policy, Role, Statement, StatementResult};
use tern::config::PolicyChain;
use tern::rib::{PeerSetup, Rib, RibOutput, SessionInfo};

const ROUTES: u32 = 1_000_000;
const SETS: u32 = 3000;
const LOCAL_AS: u32 = 4210101021;

fn setup(name: &str, role: Role, export: PolicyChain) -> PeerSetup {
    PeerSetup {
        name: name.into(),
        role,
        local_asn: LOCAL_AS,
        import: PolicyChain {
            policies: vec![],
            default: Disposition::Accept,
        },
        export,
        next_hop_self: true,
        accept_local_next_hop: true,
        soft_reconfiguration: false,
        max_prefix: None,
        wait_for_end_of_rib: false,
        restart_hold: false,
    }
}

fn main() {
    let now = Instant::now();
    let mut rib = Rib::new(common::settings(LOCAL_AS), now);
    let export_all = PolicyChain {
        policies: vec![Arc::new(Policy {
            name: "all".into(),
            statements: vec![Statement {
                name: "all".into(),
                conditions: vec![Condition::PeerRole(vec![Role::Cilium])],
                actions: vec![],
                result: StatementResult::Accept,
            }],
        })],
        default: Disposition::Reject,
    };
    let source = rib.add_peer(setup(
        "source",
        Role::Cilium,
        PolicyChain {
            policies: vec![],
            default: Disposition::Reject,
        },
    ));
    let sink = rib.add_peer(setup("sink", Role::Upstream, export_all));
    rib.peer_up(
        source,
        SessionInfo {
            negotiated: common::negotiated(4220101000),
            local_address: IpAddr::from([10, 0, 0, 1]),
            remote_address: IpAddr::from([10, 0, 0, 2]),
            ifindex: None,
        },
        now,
    );

    // The table as UPDATEs: 1000 prefixes each, attribute sets in turn.
    let updates: Vec<Update> = (0..ROUTES / 1000)
        .map(|u| {
            let set = u % SETS;
            let attrs = Attributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::from_sequence([4220101000, 64512 + set, 65000 + set % 7])),
                communities: vec![Community::new(65000, (set % 100) as u16)],
                next_hop: Some(Ipv4Addr::new(10, 0, 0, 2)),
                ..Attributes::default()
            };
            let nlri = (0..1000)
                .map(|i| {
                    let n = u * 1000 + i;
                    Nlri::new(IpNet::V4(
                        Ipv4Net::new(Ipv4Addr::from(0x0b00_0000 + (n << 8)), 24).expect("valid"),
                    ))
                })
                .collect();
            Update {
                attributes: attrs,
                nlri,
                ..Update::default()
            }
        })
        .collect();

    let before = common::resident();
    let start = Instant::now();
    for u in updates {
        rib.update(source, u);
    }
    let import = start.elapsed();
    let after_import = common::resident();
    let summary = rib.summary();
    assert_eq!(summary.ipv4_prefixes, ROUTES as usize);

    // Export: the sink comes up and receives the whole table.
    let start = Instant::now();
    let mut out = rib.peer_up(
        sink,
        SessionInfo {
            negotiated: common::negotiated(4200001000),
            local_address: IpAddr::from([10, 0, 1, 1]),
            remote_address: IpAddr::from([10, 0, 1, 2]),
            ifindex: None,
        },
        now,
    );
    let mut bytes = 0usize;
    loop {
        let mut sent = false;
        for o in out.drain(..) {
            if let RibOutput::Send(_, b) = o {
                bytes += b.len();
                sent = true;
            }
        }
        if !sent {
            break;
        }
        out = rib.written(sink);
    }
    let export = start.elapsed();
    let after_export = common::resident();
    let _ = NextHop::V4(Ipv4Addr::UNSPECIFIED);

    let rate = |d: Duration| f64::from(ROUTES) / d.as_secs_f64();
    println!("tern RIB, {ROUTES} IPv4 routes over {SETS} attribute sets");
    println!(
        "  import (policy, best path, Adj-RIB-In): {:>9.0} routes/s  ({:.2} s)",
        rate(import),
        import.as_secs_f64()
    );
    println!(
        "  export (policy, Adj-RIB-Out, encode):   {:>9.0} routes/s  ({:.2} s, {:.1} MB on the wire)",
        rate(export),
        export.as_secs_f64(),
        bytes as f64 / 1e6
    );
    println!(
        "  memory after import: {:>6.0} bytes/route",
        (after_import - before) as f64 / f64::from(ROUTES)
    );
    println!(
        "  memory after export: {:>6.0} bytes/route (Adj-RIB-Out included)",
        (after_export - before) as f64 / f64::from(ROUTES)
    );
    println!("  attribute sets interned: {}", summary.attribute_sets);
}
