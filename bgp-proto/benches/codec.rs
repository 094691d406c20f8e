//! Decode and encode throughput on a realistic full table: one million IPv4
//! prefixes (/16 to /32, mostly /24) over 3000 attribute sets, and 200,000
//! IPv6 prefixes (/32 to /64, mostly /48). Encoding uses the UPDATE
//! builder, as a session sending its table does; decoding splits the
//! stream and decodes each message, as a session receiving it does.
//!
//! `cargo bench -p bgp-proto --bench codec` prints prefixes per second
//! ("elem/s") and MB/s for each.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::{
    AsPath, Attributes, Community, Context, Family, LargeCommunity, Message, NextHop, Nlri, Origin,
    UpdateBuilder, frame_len,
};
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// xorshift64*: deterministic, so every run measures the same table.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn attribute_sets(rng: &mut Rng, n: usize) -> Vec<Attributes> {
    (0..n)
        .map(|i| {
            let hops = 1 + rng.below(6) as usize;
            let path: Vec<u32> = (0..hops).map(|_| 1 + rng.below(400_000) as u32).collect();
            Attributes {
                origin: Some(if i % 7 == 0 {
                    Origin::Incomplete
                } else {
                    Origin::Igp
                }),
                as_path: Some(AsPath::from_sequence(path)),
                med: (i % 3 == 0).then(|| rng.below(1000) as u32),
                communities: (0..rng.below(4)).map(|_| Community(rng.next() as u32)).collect(),
                large_communities: if i % 5 == 0 {
                    vec![LargeCommunity::new(4210101021, i as u32, 1)]
                } else {
                    vec![]
                },
                ..Attributes::default()
            }
        })
        .collect()
}

fn ipv4_len(rng: &mut Rng) -> u8 {
    match rng.below(100) {
        0..70 => 24,
        70..80 => 22 + rng.below(2) as u8,
        80..85 => 20 + rng.below(2) as u8,
        85..86 => 16 + rng.below(4) as u8,
        _ => 25 + rng.below(8) as u8,
    }
}

fn ipv6_len(rng: &mut Rng) -> u8 {
    match rng.below(100) {
        0..60 => 48,
        60..80 => 32 + rng.below(16) as u8,
        _ => 49 + rng.below(16) as u8,
    }
}

/// Unique prefixes laid out one after another in the address space.
fn ipv4_prefixes(rng: &mut Rng, n: usize) -> Vec<Nlri> {
    let mut cursor: u64 = 0x0100_0000;
    (0..n)
        .map(|_| {
            let len = ipv4_len(rng);
            let size = 1u64 << (32 - len);
            cursor = cursor.div_ceil(size) * size;
            let net = Ipv4Net::new(Ipv4Addr::from(cursor as u32), len).expect("length <= 32");
            cursor += size;
            Nlri::new(IpNet::V4(net))
        })
        .collect()
}

fn ipv6_prefixes(rng: &mut Rng, n: usize) -> Vec<Nlri> {
    let mut cursor: u128 = 0x2001_0000 << 96;
    (0..n)
        .map(|_| {
            let len = ipv6_len(rng);
            let size = 1u128 << (128 - len);
            cursor = cursor.div_ceil(size) * size;
            let net = Ipv6Net::new(Ipv6Addr::from(cursor), len).expect("length <= 128");
            cursor += size;
            Nlri::new(IpNet::V6(net))
        })
        .collect()
}

struct Table {
    family: Family,
    /// Each attribute set with its next hop and the prefixes that share it.
    groups: Vec<(Attributes, NextHop, Vec<Nlri>)>,
    prefixes: u64,
}

fn table(family: Family, prefixes: usize, sets: usize, seed: u64) -> Table {
    let mut rng = Rng(seed);
    let attrs = attribute_sets(&mut rng, sets);
    let all = if family == Family::IPV4_UNICAST {
        ipv4_prefixes(&mut rng, prefixes)
    } else {
        ipv6_prefixes(&mut rng, prefixes)
    };
    let mut groups: Vec<(Attributes, NextHop, Vec<Nlri>)> = attrs
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let nh = if family == Family::IPV4_UNICAST {
                NextHop::V4(Ipv4Addr::new(10, 101, 0, 21 + (i % 4) as u8))
            } else {
                NextHop::V6 {
                    global: format!("fd00:101::{}", 21 + i % 4).parse().expect("address"),
                    link_local: Some(format!("fe80::{}", 21 + i % 4).parse().expect("address")),
                }
            };
            (a, nh, Vec::new())
        })
        .collect();
    for p in all {
        let g = rng.below(groups.len() as u64) as usize;
        groups[g].2.push(p);
    }
    Table {
        family,
        groups,
        prefixes: prefixes as u64,
    }
}

fn encode(table: &Table, ctx: &Context, buf: &mut BytesMut) {
    let mut builder = UpdateBuilder::new(*ctx);
    for (attrs, nh, prefixes) in &table.groups {
        builder
            .announce(buf, table.family, attrs, *nh, prefixes)
            .expect("encodes");
    }
}

fn decode(stream: &[u8], ctx: &Context) -> u64 {
    let mut rest = stream;
    let mut prefixes = 0;
    while let Ok(Some(len)) = frame_len(rest, ctx) {
        if let Ok(Message::Update(u)) = Message::decode(&rest[..len], ctx) {
            prefixes += u.announced().count() as u64;
        }
        rest = &rest[len..];
    }
    prefixes
}

fn bench(c: &mut Criterion) {
    let ctx = Context::ebgp();
    for (name, table) in [
        (
            "ipv4 1M prefixes",
            table(Family::IPV4_UNICAST, 1_000_000, 3000, 0x7e57_0001),
        ),
        (
            "ipv6 200k prefixes",
            table(Family::IPV6_UNICAST, 200_000, 1000, 0x7e57_0002),
        ),
    ] {
        let mut stream = BytesMut::new();
        encode(&table, &ctx, &mut stream);
        assert_eq!(
            decode(&stream, &ctx),
            table.prefixes,
            "the stream decodes to the table"
        );
        let throughput = Throughput::ElementsAndBytes {
            elements: table.prefixes,
            bytes: stream.len() as u64,
        };

        let mut group = c.benchmark_group(name);
        group.sample_size(10).throughput(throughput);
        group.bench_function("decode", |b| {
            b.iter(|| black_box(decode(black_box(&stream), &ctx)))
        });
        group.bench_function("encode", |b| {
            let mut buf = BytesMut::with_capacity(stream.len());
            b.iter(|| {
                buf.clear();
                encode(black_box(&table), &ctx, &mut buf);
                black_box(buf.len())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
