//! Byte vectors for the header, OPEN, KEEPALIVE, NOTIFICATION and
//! ROUTE-REFRESH, and the exact NOTIFICATION for every header error
//! (RFC 4271 §6.1).

mod common;

use std::net::Ipv4Addr;

use bgp_proto::capability::{
    AddPathFamily, AddPathMode, ExtendedNextHop, GracefulRestart, GracefulRestartFamily, LongLivedFamily,
};
use bgp_proto::notification::CeaseSubcode;
use bgp_proto::{
    Afi, Capability, Context, Family, Message, Notification, Open, RefreshSubtype, RouteRefresh, frame_len,
};
use bytes::Bytes;
use common::*;

fn keepalive() -> Vec<u8> {
    header(4, 19)
}

#[test]
fn keepalive_round_trip() {
    assert_eq!(decode(&keepalive(), &ebgp()), Message::Keepalive);
    assert_eq!(encode(&Message::Keepalive, &ebgp()), keepalive());
}

/// (message, expected code, subcode, data) for every header rule.
#[test]
fn header_errors_carry_the_rfc_4271_notification() {
    let mut bad_marker = keepalive();
    bad_marker[3] = 0;
    let mut unknown_type = keepalive();
    unknown_type[18] = 9;
    let ctx = ebgp();
    type Case = (&'static str, Vec<u8>, u8, u8, Vec<u8>);
    let cases: Vec<Case> = vec![
        ("marker not all ones", bad_marker, 1, 1, vec![]),
        ("length below 19", header(4, 18), 1, 2, vec![0, 18]),
        ("length above 4096", header(2, 4097), 1, 2, vec![0x10, 0x01]),
        ("unknown type", unknown_type, 1, 3, vec![9]),
        ("KEEPALIVE not 19", message(4, &[0]), 1, 2, vec![0, 20]),
        ("NOTIFICATION below 21", message(3, &[6]), 1, 2, vec![0, 20]),
        (
            "OPEN below 29",
            message(1, &[4, 0, 1, 0, 90, 10, 0, 0, 1]),
            1,
            2,
            vec![0, 28],
        ),
        ("UPDATE below 23", message(2, &[0, 0, 0]), 1, 2, vec![0, 22]),
        (
            "ROUTE-REFRESH not 23",
            message(5, &[0, 1, 1, 1, 0]),
            7,
            1,
            message(5, &[0, 1, 1, 1, 0]),
        ),
    ];
    for (what, bytes, code, subcode, data) in cases {
        let n = decode_err(&bytes, &ctx);
        assert_eq!(
            (n.code, n.subcode, &n.data[..]),
            (code, subcode, &data[..]),
            "{what}"
        );
    }
}

#[test]
fn extended_message_raises_the_limit_except_for_open_and_keepalive() {
    let ext = Context {
        extended_message: true,
        ..ebgp()
    };
    let big_update = update(&[], &[], &[32, 10, 0, 0, 1].repeat(1000));
    assert_eq!(big_update.len(), 5023);
    assert_eq!(decode_err(&big_update, &ebgp()).subcode, 2);
    let u = update_of(decode(&big_update, &ext));
    assert_eq!(u.nlri.len(), 1000);

    let mut big_open = message(1, &[4, 0, 1, 0, 90, 10, 0, 0, 1, 0]);
    big_open.extend(vec![0; 4100]);
    let len = big_open.len() as u16;
    big_open[16..18].copy_from_slice(&len.to_be_bytes());
    let n = decode_err(&big_open, &ext);
    assert_eq!((n.code, n.subcode), (1, 2));
}

#[test]
fn framing_waits_for_a_whole_header() {
    let ka = keepalive();
    assert_eq!(frame_len(&ka[..18], &ebgp()), Ok(None));
    assert_eq!(frame_len(&ka, &ebgp()), Ok(Some(19)));
    let mut two = ka.clone();
    two.extend_from_slice(&ka);
    assert_eq!(frame_len(&two, &ebgp()), Ok(Some(19)));
}

/// An OPEN as tern's Cilium peer sends it: AS_TRANS in My AS, 4-octet AS,
/// both families, route refresh, graceful restart with N and F bits,
/// extended next hop for IPv4 over IPv6, FQDN.
fn cilium_like_open() -> (Vec<u8>, Open) {
    #[rustfmt::skip]
    let body: Vec<u8> = vec![
        4, 0x5b, 0xa0, 0, 90, 10, 101, 0, 21,
        60, // optional parameters length
        2, 6, 1, 4, 0, 1, 0, 1,                 // MP ipv4-unicast
        2, 6, 1, 4, 0, 2, 0, 1,                 // MP ipv6-unicast
        2, 2, 2, 0,                             // route refresh
        2, 6, 65, 4, 0xfa, 0xf1, 0x0b, 0x1d,    // 4-octet AS 4210101021
        2, 12, 64, 10, 0x40 | 0x80, 120, 0, 1, 1, 0x80, 0, 2, 1, 0, // GR R+N 120 s
        2, 8, 5, 6, 0, 1, 0, 1, 0, 2,           // ext next hop ipv4/unicast via ipv6
        2, 6, 73, 4, 2, b'n', b'1', 0,          // FQDN "n1" ""
    ];
    let open = Open {
        my_as: 23456,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(10, 101, 0, 21),
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(4210101021),
            Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                notification: true,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        family: Family::IPV4_UNICAST,
                        forwarding: true,
                    },
                    GracefulRestartFamily {
                        family: Family::IPV6_UNICAST,
                        forwarding: false,
                    },
                ],
            }),
            Capability::ExtendedNextHop(vec![ExtendedNextHop {
                nlri: Family::IPV4_UNICAST,
                next_hop_afi: Afi::IPV6,
            }]),
            Capability::Fqdn {
                hostname: "n1".into(),
                domain: String::new(),
            },
        ],
    };
    (message(1, &body), open)
}

#[test]
fn open_round_trip() {
    let (bytes, open) = cilium_like_open();
    assert_eq!(decode(&bytes, &ebgp()), Message::Open(open.clone()));
    assert_eq!(encode(&Message::Open(open.clone()), &ebgp()), bytes);
    assert_eq!(open.asn(), 4210101021);
    assert_eq!(
        open.families().collect::<Vec<_>>(),
        [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    assert!(open.graceful_restart().is_some_and(|gr| gr.notification));
}

#[test]
fn every_capability_round_trips() {
    let caps = vec![
        (Capability::ExtendedMessage, vec![6, 0]),
        (Capability::EnhancedRouteRefresh, vec![70, 0]),
        (
            Capability::AddPath(vec![
                AddPathFamily {
                    family: Family::IPV4_UNICAST,
                    mode: AddPathMode::Both,
                },
                AddPathFamily {
                    family: Family::IPV6_UNICAST,
                    mode: AddPathMode::Receive,
                },
            ]),
            vec![69, 8, 0, 1, 1, 3, 0, 2, 1, 1],
        ),
        (
            Capability::LongLivedGracefulRestart(vec![LongLivedFamily {
                family: Family::IPV6_UNICAST,
                forwarding: true,
                stale_time: 0x01_0000,
            }]),
            vec![71, 7, 0, 2, 1, 0x80, 1, 0, 0],
        ),
        (
            Capability::Unknown {
                code: 128,
                value: Bytes::new(),
            },
            vec![128, 0],
        ),
        (
            Capability::Unknown {
                code: 9,
                value: Bytes::from_static(&[1]),
            },
            vec![9, 1, 1],
        ),
    ];
    for (cap, tlv) in caps {
        let mut body = vec![
            4,
            0xfd,
            0xe8,
            0,
            3,
            1,
            2,
            3,
            4,
            (tlv.len() + 2) as u8,
            2,
            tlv.len() as u8,
        ];
        body.extend_from_slice(&tlv);
        let bytes = message(1, &body);
        let open = Open {
            my_as: 65000,
            hold_time: 3,
            bgp_id: Ipv4Addr::new(1, 2, 3, 4),
            capabilities: vec![cap],
        };
        assert_eq!(decode(&bytes, &ebgp()), Message::Open(open.clone()));
        assert_eq!(encode(&Message::Open(open), &ebgp()), bytes);
    }
}

#[test]
fn malformed_known_capability_is_kept_as_unknown() {
    // A 4-octet AS capability of three octets, and an ADD-PATH mode of 7.
    let body = [
        4, 0xfd, 0xe8, 0, 90, 1, 2, 3, 4, 15, 2, 5, 65, 3, 0, 0, 1, 2, 6, 69, 4, 0, 1, 1, 7,
    ];
    let Message::Open(open) = decode(&message(1, &body), &ebgp()) else {
        panic!()
    };
    assert_eq!(
        open.capabilities,
        [
            Capability::Unknown {
                code: 65,
                value: Bytes::from_static(&[0, 0, 1])
            },
            Capability::Unknown {
                code: 69,
                value: Bytes::from_static(&[0, 1, 1, 7])
            },
        ]
    );
    assert_eq!(open.asn(), 65000);
}

#[test]
fn open_errors() {
    let ctx = ebgp();
    // RFC 4271 §6.2: data is the largest supported version, two octets.
    let n = decode_err(&message(1, &[3, 0xfd, 0xe8, 0, 90, 1, 2, 3, 4, 0]), &ctx);
    assert_eq!((n.code, n.subcode, &n.data[..]), (2, 1, &[0u8, 4][..]));
    // An optional parameter other than capabilities (type 1, deprecated
    // authentication).
    let n = decode_err(&message(1, &[4, 0xfd, 0xe8, 0, 90, 1, 2, 3, 4, 3, 1, 1, 0]), &ctx);
    assert_eq!((n.code, n.subcode), (2, 4));
    // Parameters overrun their length.
    let n = decode_err(
        &message(1, &[4, 0xfd, 0xe8, 0, 90, 1, 2, 3, 4, 4, 2, 9, 1, 0]),
        &ctx,
    );
    assert_eq!((n.code, n.subcode), (2, 0));
    // A capability overruns its parameter.
    let n = decode_err(
        &message(1, &[4, 0xfd, 0xe8, 0, 90, 1, 2, 3, 4, 4, 2, 2, 1, 4]),
        &ctx,
    );
    assert_eq!((n.code, n.subcode), (2, 0));
}

#[test]
fn rfc_9072_extended_optional_parameters() {
    let long = "h".repeat(200);
    let caps = vec![
        Capability::Fqdn {
            hostname: long.clone(),
            domain: "d".repeat(50),
        },
        Capability::Unknown {
            code: 200,
            value: Bytes::from(vec![7; 100]),
        },
    ];
    let open = Open {
        my_as: 65000,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(1, 2, 3, 4),
        capabilities: caps,
    };
    let bytes = encode(&Message::Open(open.clone()), &ebgp());
    // Non-extended length 255, type 255, then a 2-octet length.
    assert_eq!(&bytes[28..30], &[255, 255]);
    let ext_len = u16::from_be_bytes([bytes[30], bytes[31]]) as usize;
    assert_eq!(ext_len, bytes.len() - 32);
    // Each parameter has a 2-octet length in this form.
    assert_eq!(&bytes[32..35], &[2, 0, 2 + 2 + 250]);
    assert_eq!(decode(&bytes, &ebgp()), Message::Open(open));
}

#[test]
fn notification_round_trip_with_shutdown_communication() {
    let n = Notification::shutdown(CeaseSubcode::AdministrativeShutdown, "maintenance");
    let bytes = message(
        3,
        &[
            6, 2, 11, b'm', b'a', b'i', b'n', b't', b'e', b'n', b'a', b'n', b'c', b'e',
        ],
    );
    assert_eq!(encode(&Message::Notification(n.clone()), &ebgp()), bytes);
    let Message::Notification(back) = decode(&bytes, &ebgp()) else {
        panic!()
    };
    assert_eq!(back, n);
    assert_eq!(back.shutdown_message().as_deref(), Some("maintenance"));
    // Unknown codes survive.
    let raw = message(3, &[42, 7, 1, 2]);
    let Message::Notification(n) = decode(&raw, &ebgp()) else {
        panic!()
    };
    assert_eq!((n.code, n.subcode, &n.data[..]), (42, 7, &[1u8, 2][..]));
    assert_eq!(encode(&Message::Notification(n), &ebgp()), raw);
}

#[test]
fn route_refresh_subtypes() {
    for (subtype, byte) in [
        (RefreshSubtype::Request, 0),
        (RefreshSubtype::BeginOfRefresh, 1),
        (RefreshSubtype::EndOfRefresh, 2),
        (RefreshSubtype::Unknown(7), 7),
    ] {
        let rr = RouteRefresh {
            family: Family::IPV6_UNICAST,
            subtype,
        };
        let bytes = message(5, &[0, 2, byte, 1]);
        assert_eq!(decode(&bytes, &ebgp()), Message::RouteRefresh(rr));
        assert_eq!(encode(&Message::RouteRefresh(rr), &ebgp()), bytes);
    }
}
