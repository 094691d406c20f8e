//! UPDATE byte vectors for every attribute and NLRI form, and the RFC 7606
//! error classes as a table: one row per rule.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::attribute::{AttributeProblem, code};
use bgp_proto::{
    Aggregator, AsPath, AsSegment, Attributes, Community, Context, ErrorAction, ExtCommunity, Family,
    LargeCommunity, Message, MpReach, MpUnreach, NextHop, Nlri, Origin, RawAttribute, Update,
};
use bytes::Bytes;
use common::*;

const WK: u8 = 0x40; // well-known: transitive
const OPT: u8 = 0x80;
const OPT_T: u8 = 0xc0;
const EXT: u8 = 0x10;

fn origin_igp() -> Vec<u8> {
    attr(WK, 1, &[0])
}

/// AS_PATH of one 4-octet AS_SEQUENCE.
fn as_path4(asns: &[u32]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attr(WK, 2, &v)
}

fn next_hop(a: [u8; 4]) -> Vec<u8> {
    attr(WK, 3, &a)
}

fn base_attrs() -> Vec<Vec<u8>> {
    vec![origin_igp(), as_path4(&[4220101000]), next_hop([10, 101, 0, 21])]
}

#[test]
fn ipv4_update_with_every_attribute() {
    let mut aspath = vec![2, 2];
    aspath.extend_from_slice(&4220101000u32.to_be_bytes());
    aspath.extend_from_slice(&65001u32.to_be_bytes());
    aspath.extend_from_slice(&[1, 1, 0, 0, 0, 7]);
    let attrs = vec![
        attr(WK, 1, &[2]),
        attr(WK, 2, &aspath),
        attr(WK, 3, &[10, 101, 0, 21]),
        attr(OPT, 4, &[0, 0, 0, 50]),
        attr(WK, 5, &[0, 0, 0, 200]),
        attr(WK, 6, &[]),
        attr(OPT_T, 7, &[0, 0, 0xfd, 0xe9, 10, 0, 0, 1]),
        attr(OPT_T, 8, &[0xfd, 0xe8, 0, 100, 0xff, 0xff, 0xff, 0x01]),
        attr(OPT, 9, &[10, 0, 0, 9]),
        attr(OPT, 10, &[10, 0, 0, 1, 10, 0, 0, 2]),
        attr(OPT_T, 16, &[0, 2, 0xfd, 0xe8, 0, 0, 0, 1]),
        attr(OPT_T, 32, &[0xfa, 0xf1, 0x0b, 0x1d, 0, 0, 0, 1, 0, 0, 0, 2]),
        attr(OPT_T | 0x20, 99, &[1, 2, 3]),
    ];
    let nlri = [24, 10, 224, 1, 32, 10, 96, 1, 10];
    let bytes = update(&[16, 10, 9], &attrs, &nlri);
    let u = update_of(decode(&bytes, &ibgp()));
    let want = Attributes {
        origin: Some(Origin::Incomplete),
        as_path: Some(AsPath {
            segments: vec![AsSegment::sequence([4220101000, 65001]), AsSegment::set([7])],
        }),
        next_hop: Some(Ipv4Addr::new(10, 101, 0, 21)),
        med: Some(50),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 65001,
            address: Ipv4Addr::new(10, 0, 0, 1),
        }),
        communities: vec![Community::new(65000, 100), Community::NO_EXPORT],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 9)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
        ext_communities: vec!["rt:65000:1".parse::<ExtCommunity>().unwrap()],
        large_communities: vec![LargeCommunity::new(4210101021, 1, 2)],
        unknown: vec![RawAttribute {
            flags: OPT_T | 0x20,
            type_code: 99,
            value: Bytes::from_static(&[1, 2, 3]),
        }],
    };
    assert_eq!(u.attributes, want);
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    assert_eq!(u.withdrawn, [Nlri::new(net("10.9.0.0/16"))]);
    assert_eq!(
        u.nlri,
        [Nlri::new(net("10.224.1.0/24")), Nlri::new(net("10.96.1.10/32"))]
    );
    // Re-encoding reproduces the message (attributes in type order, the
    // unknown one with the Partial bit it already had).
    assert_eq!(encode(&Message::Update(u), &ibgp()), bytes);
}

#[test]
fn unknown_transitive_attribute_is_resent_with_partial_bit() {
    let mut attrs = base_attrs();
    attrs.push(attr(OPT_T, 240, &[9, 9]));
    // An unknown optional non-transitive attribute is dropped.
    attrs.push(attr(OPT, 241, &[1]));
    let u = update_of(decode(&update(&[], &attrs, &[8, 10]), &ebgp()));
    assert_eq!(u.attributes.unknown.len(), 1);
    let out = encode(&Message::Update(u), &ebgp());
    let tail = &out[out.len() - 2 - 5..out.len() - 2];
    assert_eq!(tail, &[OPT_T | 0x20, 240, 2, 9, 9]);
}

#[test]
fn extended_length_flag_is_honoured_both_ways() {
    // A short ORIGIN sent with the Extended Length flag decodes.
    let attrs = vec![attr(WK | EXT, 1, &[0]), as_path4(&[1]), next_hop([10, 0, 0, 1])];
    let u = update_of(decode(&update(&[], &attrs, &[8, 10]), &ebgp()));
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
    // A long community list is encoded with it.
    let mut u = u;
    u.attributes.communities = (0..100).map(Community).collect();
    let out = encode(&Message::Update(u.clone()), &ebgp());
    let back = update_of(decode(&out, &ebgp()));
    assert_eq!(back.attributes.communities.len(), 100);
    let at = out
        .windows(2)
        .position(|w| w == [OPT_T | EXT, 8])
        .expect("extended community attr");
    assert_eq!(u16::from_be_bytes([out[at + 2], out[at + 3]]), 400);
}

#[test]
fn ipv6_mp_reach_with_global_and_link_local_next_hop() {
    let global: Ipv6Addr = "fd00:101::21".parse().unwrap();
    let ll: Ipv6Addr = "fe80::21".parse().unwrap();
    let mut mp = vec![0, 2, 1, 32];
    mp.extend_from_slice(&global.octets());
    mp.extend_from_slice(&ll.octets());
    mp.push(0);
    mp.extend_from_slice(&[64, 0xfd, 0, 1, 1, 2, 0x24, 0, 1]);
    let attrs = vec![attr(OPT | EXT, 14, &mp), origin_igp(), as_path4(&[4220101000])];
    let bytes = update(&[], &attrs, &[]);
    let u = update_of(decode(&bytes, &ebgp()));
    assert_eq!(
        u.mp_reach,
        Some(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: NextHop::V6 {
                global,
                link_local: Some(ll)
            },
            nlri: vec![Nlri::new(net("fd00:101:224:1::/64"))],
        })
    );
    assert!(u.errors.is_empty());
    let back = update_of(decode(&encode(&Message::Update(u.clone()), &ebgp()), &ebgp()));
    assert_eq!(back, u);
}

#[test]
fn ipv4_nlri_with_ipv6_next_hop_rfc8950() {
    // How Cilium's GoBGP sends IPv4 over an IPv6 localhost session.
    let mut mp = vec![0, 1, 1, 16];
    mp.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    mp.push(0);
    mp.extend_from_slice(&[32, 10, 96, 1, 10]);
    let attrs = vec![origin_igp(), as_path4(&[4220101000]), attr(OPT | EXT, 14, &mp)];
    let u = update_of(decode(&update(&[], &attrs, &[]), &ebgp()));
    let r = u.mp_reach.as_ref().unwrap();
    assert_eq!(r.family, Family::IPV4_UNICAST);
    assert_eq!(r.next_hop, NextHop::v6(Ipv6Addr::LOCALHOST));
    assert_eq!(r.nlri, [Nlri::new(net("10.96.1.10/32"))]);
    assert_eq!(u.announced().count(), 1);
    // An IPv4-mapped IPv6 next hop is recognised as such.
    let mapped = NextHop::v6("::ffff:10.101.0.21".parse().unwrap());
    assert_eq!(mapped.ipv4_mapped(), Some(Ipv4Addr::new(10, 101, 0, 21)));
    // A 4-octet next hop in MP_REACH for IPv4 is accepted too.
    let mp4 = [0, 1, 1, 4, 10, 0, 0, 1, 0, 8, 10];
    let u = update_of(decode(
        &update(&[], &[origin_igp(), as_path4(&[1]), attr(OPT, 14, &mp4)], &[]),
        &ebgp(),
    ));
    assert_eq!(
        u.mp_reach.unwrap().next_hop,
        NextHop::V4(Ipv4Addr::new(10, 0, 0, 1))
    );
}

#[test]
fn mp_unreach_and_end_of_rib() {
    let bytes = update(&[], &[attr(OPT, 15, &[0, 2, 1, 48, 0xfd, 0, 1, 1, 2, 0x24])], &[]);
    let u = update_of(decode(&bytes, &ebgp()));
    assert_eq!(
        u.mp_unreach,
        Some(MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn: vec![Nlri::new(net("fd00:101:224::/48"))]
        })
    );
    assert_eq!(u.end_of_rib_family(), None);

    // IPv4 End-of-RIB: an UPDATE with nothing in it.
    let eor4 = update(&[], &[], &[]);
    assert_eq!(eor4.len(), 23);
    assert_eq!(
        update_of(decode(&eor4, &ebgp())).end_of_rib_family(),
        Some(Family::IPV4_UNICAST)
    );
    assert_eq!(
        encode(
            &Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)),
            &ebgp()
        ),
        eor4
    );
    // IPv6 End-of-RIB: only an empty MP_UNREACH_NLRI.
    let eor6 = update(&[], &[attr(OPT, 15, &[0, 2, 1])], &[]);
    assert_eq!(
        update_of(decode(&eor6, &ebgp())).end_of_rib_family(),
        Some(Family::IPV6_UNICAST)
    );
    assert_eq!(
        encode(
            &Message::Update(Update::end_of_rib(Family::IPV6_UNICAST)),
            &ebgp()
        ),
        eor6
    );
}

#[test]
fn add_path_identifiers_in_both_families() {
    let ctx = add_path_both();
    let mut mp = vec![0, 2, 1, 16];
    mp.extend_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
    mp.extend_from_slice(&[0, 0, 0, 0, 5, 32, 0xfd, 0, 0, 1]);
    let nlri = [0, 0, 0, 9, 24, 10, 1, 2];
    let bytes = update(
        &[0, 0, 0, 3, 8, 11],
        &[
            origin_igp(),
            as_path4(&[1]),
            next_hop([10, 0, 0, 1]),
            attr(OPT, 14, &mp),
        ],
        &nlri,
    );
    let u = update_of(decode(&bytes, &ctx));
    assert_eq!(u.withdrawn, [Nlri::with_path_id(net("11.0.0.0/8"), 3)]);
    assert_eq!(u.nlri, [Nlri::with_path_id(net("10.1.2.0/24"), 9)]);
    assert_eq!(
        u.mp_reach.as_ref().unwrap().nlri,
        [Nlri::with_path_id(net("fd00:1::/32"), 5)]
    );
    assert_eq!(
        update_of(decode(&encode(&Message::Update(u.clone()), &ctx), &ctx)),
        u
    );
    // Without ADD-PATH the same bytes do not parse as prefixes.
    let n = decode_err(&bytes, &ebgp());
    assert_eq!((n.code, n.subcode), (3, 10));
}

#[test]
fn two_octet_session_merges_and_splits_as4_rfc6793() {
    let ctx = two_octet();
    // From an old speaker: AS_PATH 65010 AS_TRANS AS_TRANS, AS4_PATH with
    // the two real 4-octet ASes; AGGREGATOR AS_TRANS with AS4_AGGREGATOR.
    let mut as4 = vec![2, 2];
    as4.extend_from_slice(&4210101021u32.to_be_bytes());
    as4.extend_from_slice(&4200001000u32.to_be_bytes());
    let mut as4_aggr = 4210101021u32.to_be_bytes().to_vec();
    as4_aggr.extend_from_slice(&[10, 0, 0, 1]);
    let attrs = vec![
        origin_igp(),
        attr(WK, 2, &[2, 3, 0xfd, 0xf2, 0x5b, 0xa0, 0x5b, 0xa0]),
        next_hop([10, 0, 0, 1]),
        attr(OPT_T, 7, &[0x5b, 0xa0, 10, 0, 0, 1]),
        attr(OPT_T, 17, &as4),
        attr(OPT_T, 18, &as4_aggr),
    ];
    let bytes = update(&[], &attrs, &[8, 10]);
    let u = update_of(decode(&bytes, &ctx));
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence([65010, 4210101021, 4200001000]))
    );
    assert_eq!(
        u.attributes.aggregator,
        Some(Aggregator {
            asn: 4210101021,
            address: Ipv4Addr::new(10, 0, 0, 1)
        })
    );
    assert!(u.errors.is_empty());

    // Sent back to a 2-octet peer: AS_TRANS in AS_PATH and AGGREGATOR, the
    // real values in AS4_PATH and AS4_AGGREGATOR.
    let out = encode(&Message::Update(u.clone()), &ctx);
    let back = update_of(decode(&out, &ctx));
    assert_eq!(back.attributes, u.attributes);
    assert!(out.windows(3).any(|w| w == [OPT_T, 17, 2 + 3 * 4]));
    assert!(out.windows(3).any(|w| w == [OPT_T, 18, 8]));

    // AGGREGATOR from an old speaker other than AS_TRANS: AS4 attributes
    // are ignored (RFC 6793 §4.2.3).
    let mut attrs2 = attrs.clone();
    attrs2[3] = attr(OPT_T, 7, &[0xfd, 0xf2, 10, 0, 0, 2]);
    let u = update_of(decode(&update(&[], &attrs2, &[8, 10]), &ctx));
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence([65010, 23456, 23456]))
    );
    assert_eq!(u.attributes.aggregator.unwrap().asn, 65010);

    // Between 4-octet speakers AS4_PATH is ignored.
    let attrs3 = vec![
        origin_igp(),
        as_path4(&[7]),
        next_hop([10, 0, 0, 1]),
        attr(OPT_T, 17, &as4),
    ];
    let u = update_of(decode(&update(&[], &attrs3, &[8, 10]), &ebgp()));
    assert_eq!(u.attributes.as_path, Some(AsPath::from_sequence([7])));
}

/// What the decoder must do with an UPDATE.
#[derive(Debug, PartialEq)]
enum Expect {
    Clean,
    Discard(u8),
    Withdraw(u8),
    Reset(u8, u8),
}

fn outcome(bytes: &[u8], ctx: &Context) -> Expect {
    match Message::decode(bytes, ctx) {
        Err(e) => Expect::Reset(e.notification.code, e.notification.subcode),
        Ok(Message::Update(u)) => {
            if let Some(e) = u.errors.iter().find(|e| e.action == ErrorAction::TreatAsWithdraw) {
                Expect::Withdraw(e.type_code)
            } else if let Some(e) = u.errors.first() {
                Expect::Discard(e.type_code)
            } else {
                Expect::Clean
            }
        }
        Ok(other) => panic!("not an UPDATE: {other:?}"),
    }
}

/// Replaces the attribute of `type_code` in the base set (or appends it).
fn with(type_code: u8, a: Vec<u8>) -> Vec<Vec<u8>> {
    let mut attrs: Vec<Vec<u8>> = base_attrs().into_iter().filter(|x| x[1] != type_code).collect();
    attrs.push(a);
    attrs
}

/// The base set as a 2-octet speaker sends it, plus `a`.
fn with_2octet(a: Vec<u8>) -> Vec<Vec<u8>> {
    vec![
        origin_igp(),
        attr(WK, 2, &[2, 1, 0xfd, 0xe8]),
        next_hop([10, 0, 0, 1]),
        a,
    ]
}

#[test]
fn rfc7606_table() {
    use Expect::*;
    let nlri = [24, 10, 224, 1];
    let (e, i, t) = (ebgp(), ibgp(), two_octet());
    let bad_mp_nh = [0, 2, 1, 5, 1, 2, 3, 4, 5, 0];
    let bad_mp_prefix = [
        0, 2, 1, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 129, 0,
    ];
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<Vec<u8>>, &Context, Expect)> = vec![
        ("well-formed", base_attrs(), &e, Clean),
        // §7.1 ORIGIN
        ("ORIGIN length 2", with(1, attr(WK, 1, &[0, 0])), &e, Withdraw(code::ORIGIN)),
        ("ORIGIN value 3", with(1, attr(WK, 1, &[3])), &e, Withdraw(code::ORIGIN)),
        // §3 c: flags in conflict with the type
        ("ORIGIN flagged optional", with(1, attr(OPT_T, 1, &[0])), &e, Withdraw(code::ORIGIN)),
        // §7.2 AS_PATH
        ("AS_PATH segment type 9", with(2, attr(WK, 2, &[9, 1, 0, 0, 0, 1])), &e, Withdraw(code::AS_PATH)),
        ("AS_PATH zero-length segment", with(2, attr(WK, 2, &[2, 0])), &e, Withdraw(code::AS_PATH)),
        ("AS_PATH segment overrun", with(2, attr(WK, 2, &[2, 2, 0, 0, 0, 1])), &e, Withdraw(code::AS_PATH)),
        ("AS_PATH confed from eBGP", with(2, attr(WK, 2, &[3, 1, 0, 0, 0, 1])), &e, Withdraw(code::AS_PATH)),
        ("AS_PATH confed from iBGP", with(2, attr(WK, 2, &[3, 1, 0, 0, 0, 1])), &i, Clean),
        // §7.3 NEXT_HOP
        ("NEXT_HOP length 5", with(3, attr(WK, 3, &[10, 0, 0, 1, 0])), &e, Withdraw(code::NEXT_HOP)),
        ("NEXT_HOP 0.0.0.0", with(3, next_hop([0, 0, 0, 0])), &e, Withdraw(code::NEXT_HOP)),
        ("NEXT_HOP multicast", with(3, next_hop([224, 0, 0, 5])), &e, Withdraw(code::NEXT_HOP)),
        ("NEXT_HOP loopback (local Cilium)", with(3, next_hop([127, 0, 0, 1])), &e, Clean),
        // §7.4 MULTI_EXIT_DISC
        ("MED length 3", with(4, attr(OPT, 4, &[0, 0, 1])), &e, Withdraw(code::MULTI_EXIT_DISC)),
        // §7.5 LOCAL_PREF
        ("LOCAL_PREF from eBGP", with(5, attr(WK, 5, &[0, 0, 0, 100])), &e, Discard(code::LOCAL_PREF)),
        ("LOCAL_PREF bad length from eBGP", with(5, attr(WK, 5, &[0, 100])), &e, Discard(code::LOCAL_PREF)),
        ("LOCAL_PREF length 2 from iBGP", with(5, attr(WK, 5, &[0, 100])), &i, Withdraw(code::LOCAL_PREF)),
        // §7.6 ATOMIC_AGGREGATE
        ("ATOMIC_AGGREGATE length 1", with(6, attr(WK, 6, &[0])), &e, Discard(code::ATOMIC_AGGREGATE)),
        // §7.7 AGGREGATOR
        ("AGGREGATOR length 6 on 4-octet", with(7, attr(OPT_T, 7, &[0, 1, 10, 0, 0, 1])), &e, Discard(code::AGGREGATOR)),
        ("AGGREGATOR non-transitive", with(7, attr(OPT, 7, &[0, 0, 0, 1, 10, 0, 0, 1])), &e, Discard(code::AGGREGATOR)),
        // §7.8 COMMUNITIES
        ("COMMUNITIES empty", with(8, attr(OPT_T, 8, &[])), &e, Withdraw(code::COMMUNITIES)),
        ("COMMUNITIES length 5", with(8, attr(OPT_T, 8, &[0, 0, 0, 1, 0])), &e, Withdraw(code::COMMUNITIES)),
        // §7.9 ORIGINATOR_ID, §7.10 CLUSTER_LIST
        ("ORIGINATOR_ID from eBGP", with(9, attr(OPT, 9, &[1, 2, 3, 4])), &e, Discard(code::ORIGINATOR_ID)),
        ("ORIGINATOR_ID length 3 from iBGP", with(9, attr(OPT, 9, &[1, 2, 3])), &i, Withdraw(code::ORIGINATOR_ID)),
        ("CLUSTER_LIST from eBGP", with(10, attr(OPT, 10, &[1, 2, 3, 4])), &e, Discard(code::CLUSTER_LIST)),
        ("CLUSTER_LIST length 6 from iBGP", with(10, attr(OPT, 10, &[1, 2, 3, 4, 5, 6])), &i, Withdraw(code::CLUSTER_LIST)),
        // §7.14 EXTENDED COMMUNITIES, RFC 8092 §6 LARGE_COMMUNITY
        ("EXT_COMMUNITIES length 7", with(16, attr(OPT_T, 16, &[0; 7])), &e, Withdraw(code::EXTENDED_COMMUNITIES)),
        ("LARGE_COMMUNITY length 13", with(32, attr(OPT_T, 32, &[0; 13])), &e, Withdraw(code::LARGE_COMMUNITIES)),
        // RFC 6793 §6: AS4 attributes are discarded when malformed
        ("AS4_PATH malformed", with_2octet(attr(OPT_T, 17, &[2, 2, 0, 0, 0, 1])), &t, Discard(code::AS4_PATH)),
        ("AS4_AGGREGATOR length 7", with_2octet(attr(OPT_T, 18, &[0; 7])), &t, Discard(code::AS4_AGGREGATOR)),
        // §3 d: missing well-known mandatory attributes
        ("ORIGIN missing", vec![as_path4(&[1]), next_hop([10, 0, 0, 1])], &e, Withdraw(code::ORIGIN)),
        ("NEXT_HOP missing", vec![origin_igp(), as_path4(&[1])], &e, Withdraw(code::NEXT_HOP)),
        // §3 g: repeats
        ("COMMUNITIES twice", { let mut a = base_attrs(); a.push(attr(OPT_T, 8, &[0, 0, 0, 1])); a.push(attr(OPT_T, 8, &[0, 0, 0, 2])); a }, &e, Discard(code::COMMUNITIES)),
        ("MP_UNREACH twice", { let mut a = base_attrs(); a.push(attr(OPT, 15, &[0, 2, 1])); a.push(attr(OPT, 15, &[0, 2, 1])); a }, &e, Reset(3, 1)),
        // RFC 4271 §6.3: unrecognised well-known attribute
        ("unknown well-known", with(250, attr(WK, 250, &[1])), &e, Reset(3, 2)),
        // §7.11 MP attributes reset the session
        ("MP_REACH next hop length 5", with(14, attr(OPT, 14, &bad_mp_nh)), &e, Reset(3, 9)),
        ("MP_REACH prefix length 129", with(14, attr(OPT, 14, &bad_mp_prefix)), &e, Reset(3, 9)),
        ("MP_REACH flagged transitive", with(14, attr(OPT_T, 14, &[0, 2, 1])), &e, Reset(3, 4)),
        ("MP_REACH truncated", with(14, attr(OPT, 14, &[0, 2])), &e, Reset(3, 9)),
        ("MP_REACH of an unsupported family", with(14, attr(OPT, 14, &[0, 25, 70, 0, 0])), &e, Discard(code::MP_REACH_NLRI)),
    ];
    for (what, attrs, ctx, want) in cases {
        assert_eq!(outcome(&update(&[], &attrs, &nlri), ctx), want, "{what}");
    }
}

#[test]
fn treat_as_withdraw_still_returns_every_prefix() {
    let mut mp = vec![0, 2, 1, 16];
    mp.extend_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
    mp.extend_from_slice(&[0, 64, 0xfd, 0, 0, 1, 0, 0, 0, 0]);
    let attrs = vec![
        attr(OPT, 14, &mp),
        attr(WK, 1, &[7]),
        as_path4(&[1]),
        next_hop([10, 0, 0, 1]),
    ];
    let u = update_of(decode(&update(&[], &attrs, &[24, 10, 0, 1]), &ebgp()));
    assert!(u.treat_as_withdraw());
    let all: Vec<_> = u.announced().map(|n| n.prefix.to_string()).collect();
    assert_eq!(all, ["10.0.1.0/24", "fd00:1::/64"]);
}

#[test]
fn attribute_overrun_is_treat_as_withdraw_and_nlri_is_still_found() {
    // RFC 7606 §4: the last attribute claims more than the field holds;
    // the total attribute length still locates the NLRI.
    let mut attrs = base_attrs().concat();
    attrs.extend_from_slice(&[OPT_T, 8, 40, 0, 0]);
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&[24, 10, 0, 1]);
    let u = update_of(decode(&message(2, &body), &ebgp()));
    assert!(u.treat_as_withdraw());
    assert_eq!(u.errors[0].problem, AttributeProblem::ListOverrun);
    assert_eq!(u.nlri, [Nlri::new(net("10.0.1.0/24"))]);
    // Fewer than three octets left for a header.
    let mut attrs = base_attrs().concat();
    attrs.extend_from_slice(&[OPT_T, 8]);
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&[24, 10, 0, 1]);
    assert!(update_of(decode(&message(2, &body), &ebgp())).treat_as_withdraw());
}

#[test]
fn structural_errors_reset_the_session() {
    let ctx = ebgp();
    // Withdrawn routes length past the message.
    let n = decode_err(&message(2, &[0, 9, 0, 0]), &ctx);
    assert_eq!((n.code, n.subcode), (3, 1));
    // Total path attribute length past the message.
    let n = decode_err(&message(2, &[0, 0, 0, 9, 1]), &ctx);
    assert_eq!((n.code, n.subcode), (3, 1));
    // A prefix longer than 32 bits in the NLRI or withdrawn field.
    let n = decode_err(&update(&[], &base_attrs(), &[33, 10, 0, 0, 0, 0]), &ctx);
    assert_eq!((n.code, n.subcode), (3, 10));
    let n = decode_err(&update(&[24, 10, 0], &[], &[]), &ctx);
    assert_eq!((n.code, n.subcode), (3, 10));
    // The notification data of a bad MP attribute is the attribute.
    let bad = attr(OPT, 14, &[0, 2, 1, 5, 1, 2, 3, 4, 5, 0]);
    let n = decode_err(&update(&[], &with(14, bad.clone()), &[]), &ctx);
    assert_eq!(&n.data[..], &bad[..]);
}
