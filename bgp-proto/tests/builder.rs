//! The UPDATE builder packs prefixes into full messages, for every layout,
//! and what it writes decodes back to exactly what went in.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::{
    AsPath, Attributes, BuildError, Community, Context, Family, NextHop, Nlri, Origin, Update, UpdateBuilder,
    frame_len,
};
use bytes::BytesMut;
use common::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

fn attrs() -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence([4210101021, 4220101000])),
        communities: vec![Community::new(65000, 1)],
        ..Attributes::default()
    }
}

fn v4_prefixes(n: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| {
            Nlri::new(IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap(),
            ))
        })
        .collect()
}

fn v6_prefixes(n: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| {
            let addr = Ipv6Addr::from(0xfd00_0000_0000_0000_0000_0000_0000_0000u128 | (u128::from(i) << 80));
            Nlri::new(IpNet::V6(Ipv6Net::new(addr, 48).unwrap()))
        })
        .collect()
}

/// Splits a buffer of messages and decodes each as an UPDATE.
fn updates(buf: &[u8], ctx: &Context) -> Vec<Update> {
    let mut rest = buf;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = frame_len(rest, ctx).unwrap().expect("whole message");
        assert!(len <= ctx.max_message_len());
        out.push(update_of(decode(&rest[..len], ctx)));
        rest = &rest[len..];
    }
    out
}

#[test]
fn ipv4_announcements_fill_messages_and_decode_back() {
    let ctx = ebgp();
    let prefixes = v4_prefixes(5000);
    let mut b = UpdateBuilder::new(ctx);
    let mut buf = BytesMut::new();
    let nh = NextHop::V4(Ipv4Addr::new(10, 101, 0, 21));
    let count = b
        .announce(&mut buf, Family::IPV4_UNICAST, &attrs(), nh, &prefixes)
        .unwrap();
    let decoded = updates(&buf, &ctx);
    assert_eq!(decoded.len(), count);
    let mut want_attrs = attrs();
    want_attrs.next_hop = Some(Ipv4Addr::new(10, 101, 0, 21));
    for u in &decoded {
        assert_eq!(u.attributes, want_attrs);
        assert!(u.errors.is_empty());
    }
    let got: Vec<Nlri> = decoded.iter().flat_map(|u| u.nlri.iter().copied()).collect();
    assert_eq!(got, prefixes);
    // Every message but the last is full to within one prefix.
    let overhead = 23 + want_attrs.encoded_len(&ctx);
    let per_message = (4096 - overhead) / 4;
    assert_eq!(count, 5000usize.div_ceil(per_message));
}

#[test]
fn ipv6_and_rfc8950_announcements_use_mp_reach() {
    let ctx = ebgp();
    let nh = NextHop::v6("fd00:101::21".parse().unwrap());
    for (family, prefixes) in [
        (Family::IPV6_UNICAST, v6_prefixes(3000)),
        (Family::IPV4_UNICAST, v4_prefixes(3000)),
    ] {
        let mut buf = BytesMut::new();
        let count = UpdateBuilder::new(ctx)
            .announce(&mut buf, family, &attrs(), nh, &prefixes)
            .unwrap();
        let decoded = updates(&buf, &ctx);
        assert_eq!(decoded.len(), count);
        let mut got = Vec::new();
        for u in decoded {
            assert!(u.nlri.is_empty());
            assert_eq!(u.attributes, attrs());
            let r = u.mp_reach.expect("MP_REACH_NLRI");
            assert_eq!((r.family, r.next_hop), (family, nh));
            got.extend(r.nlri);
        }
        assert_eq!(got, prefixes);
    }
}

#[test]
fn extended_messages_need_fewer_updates() {
    let prefixes = v4_prefixes(20_000);
    let nh = NextHop::V4(Ipv4Addr::new(10, 0, 0, 1));
    let count = |ctx: Context| {
        let mut buf = BytesMut::new();
        let n = UpdateBuilder::new(ctx)
            .announce(&mut buf, Family::IPV4_UNICAST, &attrs(), nh, &prefixes)
            .unwrap();
        let got: usize = updates(&buf, &ctx).iter().map(|u| u.nlri.len()).sum();
        assert_eq!(got, prefixes.len());
        n
    };
    let normal = count(ebgp());
    let extended = count(Context {
        extended_message: true,
        ..ebgp()
    });
    assert_eq!(normal, 20);
    assert_eq!(extended, 2);
}

#[test]
fn withdrawals_of_both_families() {
    let ctx = add_path_both();
    let mut b = UpdateBuilder::new(ctx);
    let v4: Vec<Nlri> = v4_prefixes(2000)
        .into_iter()
        .map(|n| Nlri {
            path_id: Some(7),
            ..n
        })
        .collect();
    let v6 = v6_prefixes(2000);
    let mut buf = BytesMut::new();
    b.withdraw(&mut buf, Family::IPV4_UNICAST, &v4).unwrap();
    let decoded = updates(&buf, &ctx);
    assert!(
        decoded
            .iter()
            .all(|u| u.attributes == Attributes::default() && u.nlri.is_empty())
    );
    assert_eq!(
        decoded
            .iter()
            .flat_map(|u| u.withdrawn.iter().copied())
            .collect::<Vec<_>>(),
        v4
    );

    let mut buf = BytesMut::new();
    b.withdraw(&mut buf, Family::IPV6_UNICAST, &v6).unwrap();
    let got: Vec<Nlri> = updates(&buf, &ctx)
        .into_iter()
        .flat_map(|u| u.mp_unreach.unwrap().withdrawn)
        .collect();
    // ADD-PATH is on, so a missing path identifier goes out as 0.
    assert_eq!(
        got,
        v6.iter()
            .map(|n| Nlri {
                path_id: Some(0),
                ..*n
            })
            .collect::<Vec<_>>()
    );
}

#[test]
fn end_of_rib_markers() {
    let b = UpdateBuilder::new(ebgp());
    for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        let mut buf = BytesMut::new();
        b.end_of_rib(&mut buf, family).unwrap();
        assert_eq!(updates(&buf, &ebgp())[0].end_of_rib_family(), Some(family));
    }
}

#[test]
fn errors_leave_the_buffer_unchanged() {
    let mut b = UpdateBuilder::new(ebgp());
    let mut buf = BytesMut::from(&b"existing"[..]);
    let mut huge = attrs();
    huge.communities = (0..1100).map(Community).collect();
    let nh = NextHop::V4(Ipv4Addr::new(10, 0, 0, 1));
    let err = b
        .announce(&mut buf, Family::IPV4_UNICAST, &huge, nh, &v4_prefixes(3))
        .unwrap_err();
    assert_eq!(err, BuildError::AttributesTooLong { max: 4096 });
    let mixed = [v4_prefixes(1), v6_prefixes(1)].concat();
    let err = b
        .announce(&mut buf, Family::IPV4_UNICAST, &attrs(), nh, &mixed)
        .unwrap_err();
    assert!(matches!(err, BuildError::FamilyMismatch { .. }));
    assert_eq!(&buf[..], b"existing");
    assert_eq!(
        b.announce(&mut buf, Family::IPV4_UNICAST, &attrs(), nh, &[]),
        Ok(0)
    );
}
