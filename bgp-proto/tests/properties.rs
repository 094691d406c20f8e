//! Properties: every message type survives encode then decode unchanged,
//! for any session context; no input, arbitrary or a mutated valid
//! message, makes a decoder panic.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::capability::{
    AddPathFamily, AddPathMode, ExtendedNextHop, GracefulRestart, GracefulRestartFamily, LongLivedFamily,
};
use bgp_proto::{
    AddPathFamilies, Afi, Aggregator, AsPath, AsSegment, Attributes, Capability, Community, Context,
    ExtCommunity, Family, LargeCommunity, Message, MpReach, MpUnreach, NextHop, Nlri, Notification, Open,
    Origin, RawAttribute, RefreshSubtype, RouteRefresh, Safi, SegmentKind, Update, frame_len,
};
use bytes::{Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::vec;
use proptest::prelude::*;

fn context() -> impl Strategy<Value = Context> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(four, ext, ap4, ap6, external)| {
            let mut add_path = AddPathFamilies::NONE;
            if ap4 {
                add_path = add_path.with(Family::IPV4_UNICAST);
            }
            if ap6 {
                add_path = add_path.with(Family::IPV6_UNICAST);
            }
            Context {
                four_octet_as: four,
                extended_message: ext,
                add_path,
                external_peer: external,
            }
        })
}

fn nlri(family: Family, add_path: bool) -> BoxedStrategy<Nlri> {
    let id = if add_path {
        any::<u32>().prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    };
    if family == Family::IPV4_UNICAST {
        (any::<u32>(), 0u8..=32, id)
            .prop_map(|(a, len, path_id)| Nlri {
                prefix: IpNet::V4(Ipv4Net::new(a.into(), len).unwrap().trunc()),
                path_id,
            })
            .boxed()
    } else {
        (any::<u128>(), 0u8..=128, id)
            .prop_map(|(a, len, path_id)| Nlri {
                prefix: IpNet::V6(Ipv6Net::new(a.into(), len).unwrap().trunc()),
                path_id,
            })
            .boxed()
    }
}

fn host_v4() -> impl Strategy<Value = Ipv4Addr> {
    (1u8..224, any::<[u8; 3]>()).prop_map(|(a, [b, c, d])| Ipv4Addr::new(a, b, c, d))
}

fn as_path(confed: bool, max_asn: u32) -> impl Strategy<Value = AsPath> {
    let kinds = if confed {
        prop_oneof![
            Just(SegmentKind::Sequence),
            Just(SegmentKind::Set),
            Just(SegmentKind::ConfedSequence),
            Just(SegmentKind::ConfedSet)
        ]
        .boxed()
    } else {
        prop_oneof![3 => Just(SegmentKind::Sequence), 1 => Just(SegmentKind::Set)].boxed()
    };
    vec((kinds, vec(0..=max_asn, 1..8)), 0..4).prop_map(|segs| AsPath {
        segments: segs
            .into_iter()
            .map(|(kind, asns)| AsSegment { kind, asns })
            .collect(),
    })
}

const KNOWN_ATTRS: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32];

fn attributes(ctx: Context) -> impl Strategy<Value = Attributes> {
    let ibgp = !ctx.external_peer;
    // On a 2-octet session, confederation segments do not survive the
    // AS4_PATH split (RFC 6793 §3), and an AS4 aggregator needs a real one.
    let confed = ibgp && ctx.four_octet_as;
    let unknown = proptest::collection::btree_map(
        any::<u8>().prop_filter("unknown type", |t| *t != 0 && !KNOWN_ATTRS.contains(t)),
        vec(any::<u8>(), 0..20),
        0..3,
    );
    (
        (
            prop_oneof![Just(Origin::Igp), Just(Origin::Egp), Just(Origin::Incomplete)],
            as_path(confed, u32::MAX),
        ),
        (
            host_v4(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            any::<bool>(),
        ),
        proptest::option::of((any::<u32>(), any::<[u8; 4]>())),
        (
            vec(any::<u32>(), 0..5),
            vec(any::<[u8; 8]>(), 0..4),
            vec(any::<(u32, u32, u32)>(), 0..4),
        ),
        (
            proptest::option::of(any::<[u8; 4]>()),
            vec(any::<[u8; 4]>(), 0..3),
        ),
        unknown,
    )
        .prop_map(
            move |(
                (origin, path),
                (nh, med, lp, atomic),
                aggr,
                (comms, ext, large),
                (orig, clusters),
                unknown,
            )| {
                Attributes {
                    origin: Some(origin),
                    as_path: Some(path),
                    next_hop: Some(nh),
                    med,
                    local_pref: lp.filter(|_| ibgp),
                    atomic_aggregate: atomic,
                    aggregator: aggr.map(|(asn, a)| Aggregator {
                        asn,
                        address: a.into(),
                    }),
                    communities: comms.into_iter().map(Community).collect(),
                    originator_id: orig.filter(|_| ibgp).map(Ipv4Addr::from),
                    cluster_list: if ibgp {
                        clusters.into_iter().map(Ipv4Addr::from).collect()
                    } else {
                        vec![]
                    },
                    ext_communities: ext.into_iter().map(ExtCommunity).collect(),
                    large_communities: large
                        .into_iter()
                        .map(|(g, a, b)| LargeCommunity::new(g, a, b))
                        .collect(),
                    unknown: unknown
                        .into_iter()
                        .collect::<BTreeMap<_, _>>()
                        .into_iter()
                        .map(|(type_code, v)| RawAttribute {
                            flags: 0xe0,
                            type_code,
                            value: Bytes::from(v),
                        })
                        .collect(),
                }
            },
        )
}

fn next_hop(family: Family) -> BoxedStrategy<NextHop> {
    let v6 = (any::<u128>(), proptest::option::of(any::<u128>())).prop_map(|(g, ll)| NextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    });
    if family == Family::IPV4_UNICAST {
        prop_oneof![any::<[u8; 4]>().prop_map(|a| NextHop::V4(a.into())), v6].boxed()
    } else {
        v6.boxed()
    }
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::IPV4_UNICAST), Just(Family::IPV6_UNICAST)]
}

fn mp_reach(ctx: Context) -> impl Strategy<Value = MpReach> {
    family().prop_flat_map(move |f| {
        (next_hop(f), vec(nlri(f, ctx.add_path.contains(f)), 0..40)).prop_map(move |(next_hop, nlri)| {
            MpReach {
                family: f,
                next_hop,
                nlri,
            }
        })
    })
}

fn mp_unreach(ctx: Context) -> impl Strategy<Value = MpUnreach> {
    family().prop_flat_map(move |f| {
        vec(nlri(f, ctx.add_path.contains(f)), 0..40)
            .prop_map(move |withdrawn| MpUnreach { family: f, withdrawn })
    })
}

fn update(ctx: Context) -> impl Strategy<Value = Update> {
    let v4 = ctx.add_path.contains(Family::IPV4_UNICAST);
    (
        vec(nlri(Family::IPV4_UNICAST, v4), 0..40),
        attributes(ctx),
        proptest::option::of(mp_reach(ctx)),
        proptest::option::of(mp_unreach(ctx)),
        vec(nlri(Family::IPV4_UNICAST, v4), 0..40),
    )
        .prop_map(|(withdrawn, attributes, mp_reach, mp_unreach, nlri)| Update {
            withdrawn,
            attributes,
            mp_reach,
            mp_unreach,
            nlri,
            errors: vec![],
        })
}

fn any_family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family::new(Afi(a), Safi(s)))
}

const KNOWN_CAPS: [u8; 10] = [1, 2, 5, 6, 64, 65, 69, 70, 71, 73];

fn capability() -> impl Strategy<Value = Capability> {
    let mode = prop_oneof![
        Just(AddPathMode::Receive),
        Just(AddPathMode::Send),
        Just(AddPathMode::Both)
    ];
    prop_oneof![
        any_family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        vec((any_family(), any::<u16>()), 0..5).prop_map(|v| Capability::ExtendedNextHop(
            v.into_iter()
                .map(|(nlri, nh)| ExtendedNextHop {
                    nlri,
                    next_hop_afi: Afi(nh)
                })
                .collect()
        )),
        Just(Capability::ExtendedMessage),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            vec((any_family(), any::<bool>()), 0..5)
        )
            .prop_map(
                |(restarting, notification, restart_time, fams)| Capability::GracefulRestart(
                    GracefulRestart {
                        restarting,
                        notification,
                        restart_time,
                        families: fams
                            .into_iter()
                            .map(|(family, forwarding)| GracefulRestartFamily { family, forwarding })
                            .collect(),
                    }
                )
            ),
        any::<u32>().prop_map(Capability::FourOctetAs),
        vec((any_family(), mode), 0..5).prop_map(|v| Capability::AddPath(
            v.into_iter()
                .map(|(family, mode)| AddPathFamily { family, mode })
                .collect()
        )),
        Just(Capability::EnhancedRouteRefresh),
        vec((any_family(), any::<bool>(), 0u32..0x0100_0000), 0..5).prop_map(|v| {
            Capability::LongLivedGracefulRestart(
                v.into_iter()
                    .map(|(family, forwarding, stale_time)| LongLivedFamily {
                        family,
                        forwarding,
                        stale_time,
                    })
                    .collect(),
            )
        }),
        ("[a-z0-9.-]{0,40}", "[a-z0-9.-]{0,40}")
            .prop_map(|(hostname, domain)| Capability::Fqdn { hostname, domain }),
        (
            any::<u8>().prop_filter("unknown code", |c| !KNOWN_CAPS.contains(c)),
            vec(any::<u8>(), 0..60)
        )
            .prop_map(|(code, v)| Capability::Unknown {
                code,
                value: Bytes::from(v)
            }),
    ]
}

fn message() -> impl Strategy<Value = (Context, Message)> {
    context().prop_flat_map(|ctx| {
        let msg = prop_oneof![
            (
                any::<u16>(),
                any::<u16>(),
                any::<[u8; 4]>(),
                vec(capability(), 0..20)
            )
                .prop_map(|(my_as, hold_time, id, capabilities)| Message::Open(Open {
                    my_as,
                    hold_time,
                    bgp_id: id.into(),
                    capabilities
                })),
            update(ctx).prop_map(Message::Update),
            (any::<u8>(), any::<u8>(), vec(any::<u8>(), 0..100)).prop_map(|(code, subcode, d)| {
                Message::Notification(Notification {
                    code,
                    subcode,
                    data: Bytes::from(d),
                })
            }),
            Just(Message::Keepalive),
            (any_family(), any::<u8>()).prop_map(|(family, s)| Message::RouteRefresh(RouteRefresh {
                family,
                subtype: match s {
                    0 => RefreshSubtype::Request,
                    1 => RefreshSubtype::BeginOfRefresh,
                    2 => RefreshSubtype::EndOfRefresh,
                    v => RefreshSubtype::Unknown(v),
                }
            })),
        ];
        (Just(ctx), msg)
    })
}

fn encode(ctx: &Context, m: &Message) -> Vec<u8> {
    let mut buf = BytesMut::new();
    m.encode(ctx, &mut buf).expect("generated messages fit");
    buf.to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips((ctx, m) in message()) {
        let bytes = encode(&ctx, &m);
        prop_assert_eq!(frame_len(&bytes, &ctx), Ok(Some(bytes.len())));
        let back = Message::decode(&bytes, &ctx);
        prop_assert_eq!(back, Ok(m));
    }

    #[test]
    fn arbitrary_bytes_never_panic(ctx in context(), body in vec(any::<u8>(), 0..600), kind in 0u8..7) {
        let _ = frame_len(&body, &ctx);
        let _ = Message::decode(&body, &ctx);
        // The same bytes behind a valid header, so they reach each decoder.
        let msg = common::message(kind, &body);
        let _ = Message::decode(&msg, &ctx);
    }

    #[test]
    fn mutated_messages_never_panic(
        (ctx, m) in message(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        dctx in context(),
    ) {
        let mut bytes = encode(&ctx, &m);
        // Keep the header valid so the body decoders see the damage.
        for (at, v) in edits {
            let i = 19 + at.index(bytes.len().saturating_sub(19).max(1));
            if i < bytes.len() {
                bytes[i] = v;
            }
        }
        let _ = Message::decode(&bytes, &ctx);
        let _ = Message::decode(&bytes, &dctx);
    }
}
