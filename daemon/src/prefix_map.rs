//! Hash tables keyed by prefix, one table per family. An `IpNet` takes 18
//! bytes and pads a table's entry to the alignment of its value; an IPv4
//! prefix alone takes 5, and an IPv6 prefix of at most 63 bits (all of a
//! full table's) 8. Each table that holds a route per prefix (the Loc-RIB,
//! the FIB's) saves 8 to 16 bytes a slot this way.
//!
//! Each family's table is 16 tables (shards), chosen by a hash of the
//! prefix. A hash table grows by moving into one twice its size, the old
//! one freed only after: for a full table's Loc-RIB that is some 40 MB held
//! twice for a moment, and for the FIB's table as much again at about the
//! same time. A shard grows alone, so the moment costs a sixteenth. The
//! shard is not a secret (a peer could fill one), which costs nothing
//! more than one table would: within a shard, keys hash with a random
//! seed as before.
//!
//! The shards take unequal shares, shard i in proportion to 2^(i/16), so
//! each doubles at its own size of the whole: the table grows in sixteen
//! steps a doubling rather than in one. With equal shares all sixteen
//! doubled together, and the room a table took for its size depended on
//! luck: from 44% to 87% of it in use (44% for 230,000 IPv6 prefixes,
//! 48% for 1,000,000 IPv4, the full table's sizes of 2026). With these
//! shares it is 58% to 65% at any size.

use std::hash::Hash;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::memory::{FastMap, shrink_map};

const SHARDS: usize = 16;

/// Where each shard's share of the 32-bit hashes ends (the last shard
/// takes the rest): shard i's share is in proportion to 2^(i/16). Checked
/// against the formula in the tests.
const SHARE_ENDS: [u32; SHARDS - 1] = [
    190_154_448,
    388_727_752,
    596_092_647,
    812_638_371,
    1_038_771_393,
    1_274_916_179,
    1_521_515_989,
    1_779_033_704,
    2_047_952_703,
    2_328_777_763,
    2_622_036_010,
    2_928_277_910,
    3_248_078_296,
    3_582_037_456,
    3_930_782_250,
];

/// A prefix type's shard, by a multiplicative hash of its address and
/// length.
trait Shard: Hash + Eq + Copy {
    fn hash32(&self) -> u32;

    fn shard(&self) -> usize {
        // The count of ends at or below the hash, without a branch: a
        // binary search here mispredicts on every lookup.
        let h = self.hash32();
        SHARE_ENDS.iter().map(|&end| usize::from(end <= h)).sum()
    }
}

impl Shard for Ipv4Net {
    fn hash32(&self) -> u32 {
        let x = u32::from(self.addr()) ^ u32::from(self.prefix_len());
        x.wrapping_mul(0x9e37_79b9)
    }
}

impl Shard for Ipv6Net {
    fn hash32(&self) -> u32 {
        let a = u128::from(self.addr());
        let x = ((a >> 64) as u64) ^ (a as u64) ^ u64::from(self.prefix_len());
        (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
    }
}

/// An IPv6 prefix of at most 63 bits with nothing set past them (a /48,
/// a /56: all of a full table's) in 8 bytes rather than 17: its bits, then
/// a 1 bit to mark where they end (the length is the count of zeros after
/// it, from the end). Beside an 8-byte value a slot takes 16 bytes rather
/// than 24.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Ipv6Short {
    bits: [u8; 8],
}

impl Ipv6Short {
    fn of(p: &Ipv6Net) -> Option<Ipv6Short> {
        let a = u128::from(p.addr());
        let len = u32::from(p.prefix_len());
        let host = u128::MAX.checked_shr(len).unwrap_or(0);
        (len <= 63 && a & host == 0).then(|| Ipv6Short {
            bits: (((a >> 64) as u64) | 1 << (63 - len)).to_be_bytes(),
        })
    }

    fn net(&self) -> Ipv6Net {
        let x = u64::from_be_bytes(self.bits);
        let marker = x.trailing_zeros();
        let a = u128::from(x ^ 1 << marker) << 64;
        Ipv6Net::new(a.into(), (63 - marker) as u8).expect("at most 63 bits")
    }
}

impl Shard for Ipv6Short {
    fn hash32(&self) -> u32 {
        let x = u64::from_be_bytes(self.bits);
        (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
    }
}

/// The IPv6 table: short prefixes in their own shards, the rest (/128
/// VIPs, /64s, prefixes with host bits set) in others.
#[derive(Debug)]
struct V6<V> {
    short: Sharded<Ipv6Short, V>,
    long: Sharded<Ipv6Net, V>,
}

impl<V> Default for V6<V> {
    fn default() -> Self {
        V6 {
            short: Sharded::default(),
            long: Sharded::default(),
        }
    }
}

impl<V> V6<V> {
    fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    fn is_empty(&self) -> bool {
        self.short.is_empty() && self.long.is_empty()
    }

    fn capacity(&self) -> usize {
        self.short.capacity() + self.long.capacity()
    }

    fn get(&self, p: &Ipv6Net) -> Option<&V> {
        match Ipv6Short::of(p) {
            Some(k) => self.short.get(&k),
            None => self.long.get(p),
        }
    }

    fn get_mut(&mut self, p: &Ipv6Net) -> Option<&mut V> {
        match Ipv6Short::of(p) {
            Some(k) => self.short.get_mut(&k),
            None => self.long.get_mut(p),
        }
    }

    fn insert(&mut self, p: Ipv6Net, v: V) -> Option<V> {
        match Ipv6Short::of(&p) {
            Some(k) => self.short.insert(k, v),
            None => self.long.insert(p, v),
        }
    }

    fn remove(&mut self, p: &Ipv6Net) -> Option<V> {
        match Ipv6Short::of(p) {
            Some(k) => self.short.remove(&k),
            None => self.long.remove(p),
        }
    }

    fn get_or_insert_with(&mut self, p: Ipv6Net, make: impl FnOnce() -> V) -> (&mut V, bool) {
        match Ipv6Short::of(&p) {
            Some(k) => self.short.get_or_insert_with(k, make),
            None => self.long.get_or_insert_with(p, make),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (Ipv6Net, &V)> {
        let short = self.short.iter().map(|(k, v)| (k.net(), v));
        short.chain(self.long.iter().map(|(p, v)| (*p, v)))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (Ipv6Net, &mut V)> {
        let short = self.short.iter_mut().map(|(k, v)| (k.net(), v));
        short.chain(self.long.iter_mut().map(|(p, v)| (*p, v)))
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.short.values().chain(self.long.values())
    }

    fn retain(&mut self, mut keep: impl FnMut(Ipv6Net, &mut V) -> bool) {
        self.short.retain(|k, v| keep(k.net(), v));
        self.long.retain(|p, v| keep(*p, v));
    }

    fn clear(&mut self) {
        self.short.clear();
        self.long.clear();
    }

    fn shrink(&mut self) -> bool {
        self.short.shrink() | self.long.shrink()
    }
}

/// One family's table, in shards.
#[derive(Debug)]
struct Sharded<K, V> {
    shards: [FastMap<K, V>; SHARDS],
}

impl<K: Shard, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Sharded {
            shards: std::array::from_fn(|_| FastMap::default()),
        }
    }
}

impl<K: Shard, V> Sharded<K, V> {
    fn of(&self, k: &K) -> &FastMap<K, V> {
        &self.shards[k.shard()]
    }

    fn of_mut(&mut self, k: &K) -> &mut FastMap<K, V> {
        &mut self.shards[k.shard()]
    }

    fn len(&self) -> usize {
        self.shards.iter().map(FastMap::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.shards.iter().all(FastMap::is_empty)
    }

    fn capacity(&self) -> usize {
        self.shards.iter().map(FastMap::capacity).sum()
    }

    fn get(&self, k: &K) -> Option<&V> {
        self.of(k).get(k)
    }

    fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.of_mut(k).get_mut(k)
    }

    fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.of_mut(&k).insert(k, v)
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        self.of_mut(k).remove(k)
    }

    fn get_or_insert_with(&mut self, k: K, make: impl FnOnce() -> V) -> (&mut V, bool) {
        let mut made = false;
        let v = self.of_mut(&k).entry(k).or_insert_with(|| {
            made = true;
            make()
        });
        (v, made)
    }

    fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|m| m.iter())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.shards.iter_mut().flat_map(|m| m.iter_mut())
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(|m| m.values())
    }

    fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for m in &mut self.shards {
            m.retain(&mut keep);
        }
    }

    fn clear(&mut self) {
        for m in &mut self.shards {
            m.clear();
        }
    }

    fn shrink(&mut self) -> bool {
        self.shards
            .iter_mut()
            .fold(false, |shrunk, m| shrink_map(m) | shrunk)
    }
}

#[derive(Debug)]
pub struct PrefixMap<V> {
    v4: Sharded<Ipv4Net, V>,
    v6: V6<V>,
}

/// A set of prefixes, as a [`PrefixMap`].
pub type PrefixSet = PrefixMap<()>;

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            v4: Sharded::default(),
            v6: V6::default(),
        }
    }
}

impl<V> PrefixMap<V> {
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Entries there is room for.
    pub fn capacity(&self) -> usize {
        self.v4.capacity() + self.v6.capacity()
    }

    pub fn get(&self, prefix: &IpNet) -> Option<&V> {
        match prefix {
            IpNet::V4(p) => self.v4.get(p),
            IpNet::V6(p) => self.v6.get(p),
        }
    }

    pub fn get_mut(&mut self, prefix: &IpNet) -> Option<&mut V> {
        match prefix {
            IpNet::V4(p) => self.v4.get_mut(p),
            IpNet::V6(p) => self.v6.get_mut(p),
        }
    }

    pub fn contains_key(&self, prefix: &IpNet) -> bool {
        self.get(prefix).is_some()
    }

    pub fn insert(&mut self, prefix: IpNet, value: V) -> Option<V> {
        match prefix {
            IpNet::V4(p) => self.v4.insert(p, value),
            IpNet::V6(p) => self.v6.insert(p, value),
        }
    }

    pub fn remove(&mut self, prefix: &IpNet) -> Option<V> {
        match prefix {
            IpNet::V4(p) => self.v4.remove(p),
            IpNet::V6(p) => self.v6.remove(p),
        }
    }

    /// The value of `prefix`, made with `make` if there is none; and
    /// whether it was.
    pub fn get_or_insert_with(&mut self, prefix: IpNet, make: impl FnOnce() -> V) -> (&mut V, bool) {
        match prefix {
            IpNet::V4(p) => self.v4.get_or_insert_with(p, make),
            IpNet::V6(p) => self.v6.get_or_insert_with(p, make),
        }
    }

    /// IPv4 prefixes first, each family in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &V)> {
        let v4 = self.v4.iter().map(|(p, v)| (IpNet::V4(*p), v));
        v4.chain(self.v6.iter().map(|(p, v)| (IpNet::V6(p), v)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (IpNet, &mut V)> {
        let v4 = self.v4.iter_mut().map(|(p, v)| (IpNet::V4(*p), v));
        v4.chain(self.v6.iter_mut().map(|(p, v)| (IpNet::V6(p), v)))
    }

    pub fn keys(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.iter().map(|(p, _)| p)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.v4.values().chain(self.v6.values())
    }

    pub fn retain(&mut self, mut keep: impl FnMut(IpNet, &mut V) -> bool) {
        self.v4.retain(|p, v| keep(IpNet::V4(*p), v));
        self.v6.retain(|p, v| keep(IpNet::V6(p), v));
    }

    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }

    /// Gives room back where a shard holds under a quarter of it (see
    /// [`shrink_map`]); true if one did.
    pub fn shrink(&mut self) -> bool {
        self.v4.shrink() | self.v6.shrink()
    }
}

impl PrefixSet {
    /// Adds `prefix`; true if it was not there.
    pub fn add(&mut self, prefix: IpNet) -> bool {
        self.insert(prefix, ()).is_none()
    }
}

impl<V> FromIterator<(IpNet, V)> for PrefixMap<V> {
    fn from_iter<I: IntoIterator<Item = (IpNet, V)>>(iter: I) -> Self {
        let mut m = PrefixMap::default();
        for (p, v) in iter {
            m.insert(p, v);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn both_families_in_one_map() {
        let mut m = PrefixMap::default();
        assert_eq!(m.insert(p("10.0.0.0/24"), 1), None);
        assert_eq!(m.insert(p("fd00::/64"), 2), None);
        assert_eq!(m.insert(p("10.0.0.0/24"), 3), Some(1));
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&p("10.0.0.0/24")), Some(&3));
        assert_eq!(m.get(&p("10.0.0.0/25")), None);
        *m.get_mut(&p("fd00::/64")).unwrap() += 10;
        let mut all: Vec<(IpNet, i32)> = m.iter().map(|(k, v)| (k, *v)).collect();
        all.sort();
        assert_eq!(all, [(p("10.0.0.0/24"), 3), (p("fd00::/64"), 12)]);
        let (v, made) = m.get_or_insert_with(p("10.1.0.0/16"), || 7);
        assert_eq!((*v, made), (7, true));
        let (v, made) = m.get_or_insert_with(p("10.1.0.0/16"), || 8);
        assert_eq!((*v, made), (7, false));
        m.retain(|k, _| k.addr().is_ipv4());
        assert_eq!(m.keys().count(), 2);
        assert_eq!(m.remove(&p("10.1.0.0/16")), Some(7));
        assert!(!m.contains_key(&p("10.1.0.0/16")));
    }

    #[test]
    fn consecutive_prefixes_spread_over_the_shards() {
        let mut counts = [0usize; SHARDS];
        for i in 0..16_000u32 {
            let v4 = Ipv4Net::new((0x0a00_0000 + (i << 8)).into(), 24).unwrap();
            counts[v4.shard()] += 1;
            let v6 = Ipv6Net::new((0xfd10_u128 << 112 | u128::from(i) << 80).into(), 48).unwrap();
            counts[v6.shard()] += 1;
        }
        // Shard i's share is 2^(i/16) / 22.6 of the 32,000: from 1,417
        // to 2,713. None far off.
        let total: f64 = (0..SHARDS).map(|i| 2f64.powf(i as f64 / 16.0)).sum();
        for (i, c) in counts.iter().enumerate() {
            let want = 32_000.0 * 2f64.powf(i as f64 / 16.0) / total;
            assert!(
                (*c as f64 - want).abs() < want * 0.2,
                "shard {i}: {c}, want {want:.0}: {counts:?}"
            );
        }
    }

    #[test]
    fn the_share_ends_are_the_formulas() {
        let weights: Vec<f64> = (0..SHARDS).map(|i| 2f64.powf(i as f64 / 16.0)).collect();
        let total: f64 = weights.iter().sum();
        let mut sum = 0.0;
        for (i, end) in SHARE_ENDS.iter().enumerate() {
            sum += weights[i];
            let want = (sum / total * 4_294_967_296.0).round();
            assert!(
                (f64::from(*end) - want).abs() <= 1.0,
                "end {i}: {end}, want {want}"
            );
        }
    }

    /// The point of the unequal shares: however many prefixes, the room
    /// taken stays close to the same multiple of them (1.36 to 1.50 here;
    /// equal shares went from 1.00 to 1.99).
    #[test]
    fn the_room_a_table_takes_follows_its_size() {
        let mut m: PrefixMap<()> = PrefixMap::default();
        let (mut least, mut most) = (f64::MAX, 0f64);
        for i in 0..400_000u32 {
            let v4 = Ipv4Net::new((0x0a00_0000 + (i << 8)).into(), 24).unwrap();
            m.insert(IpNet::V4(v4), ());
            let n = i + 1;
            if n >= 20_000 && n % 1_000 == 0 {
                let room = m.capacity() as f64 / f64::from(n);
                (least, most) = (least.min(room), most.max(room));
            }
        }
        // hashbrown fills 7/8 of its slots: room 1.0 is every slot in use.
        assert!(
            least > 1.3 && most < 1.6,
            "room from {least:.2} to {most:.2} times the prefixes"
        );
    }

    #[test]
    fn ipv6_prefixes_short_and_long_round_trip() {
        let mut m = PrefixMap::default();
        let all = [
            "fd00:1::/48",
            "fd00:1::/64",
            "::/0",
            "fd00::10/128",
            "fd00::/96",
            "fd00::1/64",
            "2001:db8::/32",
        ];
        for (i, s) in all.iter().enumerate() {
            assert_eq!(m.insert(p(s), i), None, "{s}");
        }
        assert_eq!(m.len(), all.len());
        for (i, s) in all.iter().enumerate() {
            assert_eq!(m.get(&p(s)), Some(&i), "{s}");
        }
        // A prefix with host bits set is its own key, not its network's.
        assert_eq!(m.get(&p("fd00::1/64")), Some(&5));
        assert_eq!(m.get(&p("fd00::/64")), None);
        let mut keys: Vec<IpNet> = m.keys().collect();
        keys.sort();
        let mut want: Vec<IpNet> = all.iter().map(|s| p(s)).collect();
        want.sort();
        assert_eq!(keys, want);
        assert_eq!(m.remove(&p("fd00::10/128")), Some(3));
        assert_eq!(m.remove(&p("fd00:1::/48")), Some(0));
        assert_eq!(m.len(), all.len() - 2);
        assert_eq!(size_of::<(Ipv6Short, u64)>(), 16);
    }

    /// Every length a short key holds comes back as it went in; those it
    /// cannot hold go to the other table, and still come back.
    #[test]
    fn ipv6_short_keys_hold_every_length_up_to_63() {
        let addr: u128 = 0xfd10_2030_4050_6070_8090_a0b0_c0d0_e0f0;
        let mut m = PrefixMap::default();
        for len in 0..=128u8 {
            let net = Ipv6Net::new(addr.into(), len).unwrap().trunc();
            let short = Ipv6Short::of(&net);
            assert_eq!(short.is_some(), len <= 63, "/{len}");
            if let Some(k) = short {
                assert_eq!(k.net(), net, "/{len}");
            }
            assert_eq!(m.insert(IpNet::V6(net), len), None, "/{len}");
        }
        // Host bits set: its own key, kept whole.
        let host6: Ipv6Net = "fd10:2030::1:0:0:0/40".parse().unwrap();
        assert!(Ipv6Short::of(&host6).is_none());
        let host = IpNet::V6(host6);
        m.insert(host, 200);
        assert_eq!(m.len(), 130);
        for (k, v) in m.iter() {
            let want = if *v == 200 {
                host
            } else {
                IpNet::V6(Ipv6Net::new(addr.into(), *v).unwrap().trunc())
            };
            assert_eq!(k, want);
        }
        assert_eq!(m.get(&p("fd10::/16")), Some(&16));
        assert_eq!(m.get(&p("::/0")), Some(&0));
        assert_eq!(m.get(&p("fd10:2030:4050:6070::/64")), Some(&64));
    }

    #[test]
    fn an_ipv4_slot_is_smaller() {
        assert!(size_of::<(Ipv4Net, u32)>() < size_of::<(IpNet, u32)>());
        assert!(size_of::<(Ipv4Net, ())>() * 3 < size_of::<(IpNet, ())>());
    }
}
