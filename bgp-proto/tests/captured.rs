//! Messages captured from real FRR 8.4, GoBGP 3.10 and BIRD 2.0.12 sessions
//! (see `fixtures/README.md` for how and under which negotiated context).
//! Each decodes under its session's context to the values tshark showed,
//! without any RFC 7606 error, and survives re-encoding.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::capability::{AddPathMode, code};
use bgp_proto::notification::CeaseSubcode;
use bgp_proto::{
    AddPathFamilies, Aggregator, AsPath, Capability, Community, Context, ExtCommunity, Family,
    LargeCommunity, Message, NextHop, Nlri, Origin, RefreshSubtype, Update,
};
use bytes::BytesMut;
use common::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}.bin", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// S1 (FRR-GoBGP over IPv6) and S3b (FRR-BIRD): 4-octet AS, eBGP.
fn s1() -> Context {
    ebgp()
}

/// S2: FRR sent no capabilities, so 2-octet AS.
fn s2() -> Context {
    two_octet()
}

/// S3g: ADD-PATH for IPv4 unicast in both directions.
fn s3g() -> Context {
    Context {
        add_path: AddPathFamilies::NONE.with(Family::IPV4_UNICAST),
        ..ebgp()
    }
}

fn s3b() -> Context {
    Context {
        extended_message: true,
        ..ebgp()
    }
}

/// Decodes a fixture, checks it is clean, and checks that encoding the
/// decoded value and decoding again gives the same value.
fn load(name: &str, ctx: &Context) -> Message {
    let bytes = fixture(name);
    let msg = Message::decode(&bytes, ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
    if let Message::Update(u) = &msg {
        assert!(u.errors.is_empty(), "{name}: {:?}", u.errors);
    }
    let mut buf = BytesMut::new();
    msg.encode(ctx, &mut buf)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(Message::decode(&buf, ctx).as_ref(), Ok(&msg), "{name} re-encoded");
    msg
}

fn load_update(name: &str, ctx: &Context) -> Update {
    update_of(load(name, ctx))
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn prefixes(nlri: &[Nlri]) -> Vec<String> {
    nlri.iter()
        .map(|n| match n.path_id {
            Some(id) => format!("{} id {id}", n.prefix),
            None => n.prefix.to_string(),
        })
        .collect()
}

#[test]
fn gobgp_open_is_cilium_like() {
    let Message::Open(open) = load("gobgp-open", &s1()) else {
        panic!()
    };
    assert_eq!(
        (open.my_as, open.hold_time, open.bgp_id),
        (23456, 90, Ipv4Addr::new(10, 99, 0, 2))
    );
    assert_eq!(open.asn(), 4220101000);
    assert_eq!(
        open.families().collect::<Vec<_>>(),
        [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    let gr = open.graceful_restart().unwrap();
    assert!(gr.notification && !gr.restarting);
    assert_eq!(gr.restart_time, 120);
    assert!(open.has(code::EXTENDED_NEXT_HOP) && open.has(code::ROUTE_REFRESH));
    assert!(open.capabilities.contains(&Capability::Fqdn {
        hostname: "fixcap-gobgp".into(),
        domain: String::new()
    }));

    let Message::Open(open) = load("gobgp-open-restarting", &s1()) else {
        panic!()
    };
    let gr = open.graceful_restart().unwrap();
    assert!(gr.restarting && gr.notification);
    assert!(gr.families.iter().all(|f| f.forwarding));
}

#[test]
fn frr_opens() {
    let Message::Open(open) = load("frr-open", &s1()) else {
        panic!()
    };
    assert_eq!(open.asn(), 4200001000);
    assert_eq!(open.capabilities.len(), 12);
    assert!(open.has(128) && open.has(code::ENHANCED_ROUTE_REFRESH) && open.has(code::EXTENDED_MESSAGE));
    assert!(open.has(code::LONG_LIVED_GRACEFUL_RESTART));
    let add_path = open.capabilities.iter().find_map(|c| match c {
        Capability::AddPath(v) => Some(v.clone()),
        _ => None,
    });
    assert!(add_path.unwrap().iter().all(|a| a.mode == AddPathMode::Receive));

    let Message::Open(open) = load("frr-open-no-capabilities", &s2()) else {
        panic!()
    };
    assert!(open.capabilities.is_empty());
    assert_eq!(open.asn(), 23456);

    for name in [
        "frr-open-addpath",
        "gobgp-open-addpath",
        "frr-open-role",
        "bird-open",
    ] {
        let Message::Open(open) = load(name, &s1()) else {
            panic!()
        };
        assert!(open.four_octet_as().is_some(), "{name}");
    }
    // BIRD's role capability (9) is not one tern uses; it stays raw.
    let Message::Open(bird) = load("bird-open", &s1()) else {
        panic!()
    };
    assert!(
        bird.capabilities
            .iter()
            .any(|c| matches!(c, Capability::Unknown { code: 9, value } if value[..] == [3]))
    );
}

#[test]
fn gobgp_sends_ipv4_with_an_ipv6_next_hop() {
    let u = load_update("gobgp-update-ipv4-extnh", &s1());
    let r = u.mp_reach.as_ref().unwrap();
    assert_eq!(r.family, Family::IPV4_UNICAST);
    assert_eq!(r.next_hop, NextHop::v6(v6("fd00:99::2")));
    assert_eq!(prefixes(&r.nlri), ["10.224.1.0/24"]);
    let a = &u.attributes;
    assert_eq!(a.origin, Some(Origin::Incomplete));
    assert_eq!(a.as_path, Some(AsPath::from_sequence([4220101000])));
    assert_eq!(
        a.communities,
        [Community::new(65000, 100), Community::new(65000, 200)]
    );
    assert_eq!(
        a.large_communities,
        [
            LargeCommunity::new(4220101000, 1, 1),
            LargeCommunity::new(4220101000, 1, 2)
        ]
    );

    let u = load_update("gobgp-update-ipv4-extnh-med", &s1());
    assert_eq!(u.attributes.med, Some(10));
    assert_eq!(prefixes(&u.mp_reach.unwrap().nlri), ["10.96.1.10/32"]);

    // It withdraws them in the classic field.
    let u = load_update("gobgp-update-withdraw-ipv4", &s1());
    assert_eq!(prefixes(&u.withdrawn), ["10.96.1.10/32"]);
}

#[test]
fn gobgp_ipv6_and_end_of_rib() {
    let u = load_update("gobgp-update-ipv6", &s1());
    let r = u.mp_reach.unwrap();
    assert_eq!(
        (r.family, r.next_hop),
        (Family::IPV6_UNICAST, NextHop::v6(v6("fd00:99::2")))
    );
    assert_eq!(prefixes(&r.nlri), ["fd00:101:224:1::/64"]);
    let u = load_update("gobgp-update-ipv6-minimal", &s1());
    assert_eq!(prefixes(&u.mp_reach.unwrap().nlri), ["fd00:96::10/128"]);
    let u = load_update("gobgp-update-withdraw-ipv6", &s1());
    assert_eq!(prefixes(&u.mp_unreach.unwrap().withdrawn), ["fd00:96::10/128"]);

    assert_eq!(
        load_update("gobgp-eor-ipv4", &s1()).end_of_rib_family(),
        Some(Family::IPV4_UNICAST)
    );
    assert_eq!(
        load_update("gobgp-eor-ipv6", &s1()).end_of_rib_family(),
        Some(Family::IPV6_UNICAST)
    );
    assert_eq!(
        load_update("frr-eor-ipv6", &s1()).end_of_rib_family(),
        Some(Family::IPV6_UNICAST)
    );
    // Ours are byte-identical to theirs.
    for (name, family) in [
        ("gobgp-eor-ipv4", Family::IPV4_UNICAST),
        ("gobgp-eor-ipv6", Family::IPV6_UNICAST),
    ] {
        assert_eq!(
            encode(&Message::Update(Update::end_of_rib(family)), &s1()),
            fixture(name)
        );
    }
}

#[test]
fn frr_updates_with_link_local_next_hops() {
    let link_local = Some(v6("fe80::aff:fe63:1"));
    let u = load_update("frr-update-ipv4-mp-extnh", &s1());
    let r = u.mp_reach.as_ref().unwrap();
    assert_eq!(
        r.next_hop,
        NextHop::V6 {
            global: v6("fd00:99::1"),
            link_local
        }
    );
    assert_eq!(prefixes(&r.nlri), ["10.200.2.0/24"]);
    let rts: Vec<String> = u
        .attributes
        .ext_communities
        .iter()
        .map(ExtCommunity::to_string)
        .collect();
    assert_eq!(rts, ["rt:65000:1", "rt:4200001000:7"]);

    let u = load_update("frr-update-ipv4-mp-extnh-communities", &s1());
    assert_eq!(u.attributes.med, Some(150));
    assert_eq!(u.attributes.large_communities.len(), 2);

    let u = load_update("frr-update-ipv4-mp-extnh-linkbw", &s1());
    assert_eq!(
        u.attributes.ext_communities,
        [ExtCommunity([0, 4, 0x5b, 0xa0, 0x4b, 0x3e, 0xbc, 0x20])]
    );

    let u = load_update("frr-update-ipv6-ll-nexthop", &s1());
    let r = u.mp_reach.unwrap();
    assert_eq!(
        r.next_hop,
        NextHop::V6 {
            global: v6("fd00:99::1"),
            link_local
        }
    );
    assert_eq!(prefixes(&r.nlri), ["fd00:200:1::/48"]);
    assert_eq!(u.attributes.med, Some(50));

    // FRR sends a peer's own route back; the AS path shows the loop.
    let u = load_update("frr-update-ipv6-readvertised", &s1());
    assert!(u.attributes.as_path.unwrap().contains(4220101000));

    // FRR withdraws IPv4 through MP_UNREACH_NLRI.
    let u = load_update("frr-update-withdraw-ipv4-mp", &s1());
    let w = u.mp_unreach.unwrap();
    assert_eq!(
        (w.family, prefixes(&w.withdrawn)),
        (Family::IPV4_UNICAST, vec!["10.200.3.0/24".to_string()])
    );
    let u = load_update("frr-update-withdraw-ipv6", &s1());
    assert_eq!(prefixes(&u.mp_unreach.unwrap().withdrawn), ["fd00:200:2::/48"]);
}

#[test]
fn as4_path_from_two_octet_sessions() {
    let u = load_update("gobgp-update-as4-path", &s2());
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence([4220101000, 65002, 4220000055]))
    );
    assert_eq!(u.attributes.next_hop, Some(Ipv4Addr::new(10, 99, 0, 2)));
    assert_eq!(prefixes(&u.nlri), ["10.220.1.0/24"]);

    let u = load_update("frr-update-as4-path", &s2());
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence([4200001000, 65001, 4200000077]))
    );

    let u = load_update("frr-update-as4-aggregator", &s2());
    assert!(u.attributes.atomic_aggregate);
    assert_eq!(
        u.attributes.aggregator,
        Some(Aggregator {
            asn: 4200001000,
            address: Ipv4Addr::new(10, 99, 0, 1)
        })
    );
    assert_eq!(u.attributes.as_path, Some(AsPath::from_sequence([4200001000])));
    assert_eq!(prefixes(&u.nlri), ["10.211.0.0/16"]);
}

#[test]
fn add_path_updates() {
    let u = load_update("gobgp-update-addpath", &s3g());
    assert_eq!(prefixes(&u.nlri), ["10.230.1.0/24 id 2"]);
    let u = load_update("frr-update-addpath", &s3g());
    assert_eq!(prefixes(&u.nlri), ["10.240.1.0/24 id 4"]);
    let u = load_update("frr-update-addpath-withdraw", &s3g());
    assert_eq!(
        prefixes(&u.withdrawn),
        ["10.77.0.0/24 id 5", "10.240.1.0/24 id 4"]
    );
    let u = load_update("gobgp-update-addpath-withdraw", &s3g());
    assert_eq!(prefixes(&u.withdrawn), ["10.230.1.0/24 id 2"]);
}

#[test]
fn bird_and_otc() {
    let u = load_update("bird-update-ipv4-extnh", &s3b());
    let r = u.mp_reach.unwrap();
    assert_eq!(
        r.next_hop,
        NextHop::V6 {
            global: v6("fd00:98::2"),
            link_local: Some(v6("fe80::aff:fe62:2"))
        }
    );
    assert_eq!(prefixes(&r.nlri), ["10.240.1.0/24"]);
    // OTC (RFC 9234, type 35) is not decoded by tern; it is kept and passed
    // on as an unknown optional transitive attribute.
    let u = load_update("frr-update-ipv4-otc", &s3b());
    let otc = &u.attributes.unknown[0];
    assert_eq!(
        (otc.type_code, &otc.value[..]),
        (35, &4200001000u32.to_be_bytes()[..])
    );
}

#[test]
fn notifications_keepalive_and_route_refresh() {
    let Message::Notification(n) = load("frr-notification-hard-reset-shutdown", &s1()) else {
        panic!()
    };
    assert!(n.is_hard_reset());
    assert_eq!(&n.data[..2], &[6, 2]);
    let Message::Notification(n) = load("frr-notification-shutdown", &s2()) else {
        panic!()
    };
    assert!(n.is_cease(CeaseSubcode::AdministrativeShutdown));
    assert_eq!(n.shutdown_message().as_deref(), Some("maintenance window"));
    let Message::Notification(n) = load("gobgp-notification-peer-deconfigured", &s1()) else {
        panic!()
    };
    assert!(n.is_cease(CeaseSubcode::PeerDeconfigured));

    assert_eq!(load("frr-keepalive", &s1()), Message::Keepalive);
    for (name, subtype) in [
        ("frr-route-refresh", RefreshSubtype::Request),
        ("frr-borr", RefreshSubtype::BeginOfRefresh),
        ("frr-eorr", RefreshSubtype::EndOfRefresh),
    ] {
        let Message::RouteRefresh(rr) = load(name, &s3b()) else {
            panic!()
        };
        assert_eq!((rr.family, rr.subtype), (Family::IPV4_UNICAST, subtype), "{name}");
        assert_eq!(encode(&Message::RouteRefresh(rr), &s3b()), fixture(name));
    }
}

#[test]
fn every_fixture_is_covered() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let source = include_str!("captured.rs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".bin") {
            assert!(source.contains(&format!("\"{stem}\"")), "{stem}.bin has no test");
        }
    }
}
