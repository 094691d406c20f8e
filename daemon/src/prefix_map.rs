//! Hash tables keyed by prefix, one table per family. An `IpNet` takes 18
//! bytes and pads a table's entry to the alignment of its value; an IPv4
//! prefix alone takes 5, and an IPv6 prefix of at most 64 bits (nearly all
//! of them) 9. Each table that holds a route per prefix (the Loc-RIB, the
//! FIB's) saves 8 to 16 bytes a slot this way.
//!
//! Each family's table is 16 tables (shards), chosen by a few bits of the
//! prefix. A hash table grows by moving into one twice its size, the old
//! one freed only after: for a full table's Loc-RIB that is some 40 MB held
//! twice for a moment, and for the FIB's table as much again at about the
//! same time. A shard grows alone, so the moment costs a sixteenth. The
//! shard is not a secret (a peer could fill one), which costs nothing
//! more than one table would: within a shard, keys hash with a random
//! seed as before.

use std::hash::Hash;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::memory::{FastMap, shrink_map};

const SHARDS: usize = 16;

/// A prefix type's shard: the top bits of a multiplicative hash of its
/// address and length.
trait Shard: Hash + Eq + Copy {
    fn shard(&self) -> usize;
}

impl Shard for Ipv4Net {
    fn shard(&self) -> usize {
        let x = u32::from(self.addr()) ^ u32::from(self.prefix_len());
        (x.wrapping_mul(0x9e37_79b9) >> 28) as usize
    }
}

impl Shard for Ipv6Net {
    fn shard(&self) -> usize {
        let a = u128::from(self.addr());
        let x = ((a >> 64) as u64) ^ (a as u64) ^ u64::from(self.prefix_len());
        (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize
    }
}

/// An IPv6 prefix of at most 64 bits with nothing set past them (a /48,
/// a /64: nearly all of a table's), in 9 bytes rather than 17: the bits
/// that can be set, and the length. In a table beside an 8-byte-aligned
/// value it takes 16 bytes rather than 24.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Ipv6Short {
    high: [u8; 8],
    len: u8,
}

impl Ipv6Short {
    fn of(p: &Ipv6Net) -> Option<Ipv6Short> {
        let a = u128::from(p.addr());
        (p.prefix_len() <= 64 && a as u64 == 0).then(|| Ipv6Short {
            high: ((a >> 64) as u64).to_be_bytes(),
            len: p.prefix_len(),
        })
    }

    fn net(&self) -> Ipv6Net {
        let a = u128::from(u64::from_be_bytes(self.high)) << 64;
        Ipv6Net::new(a.into(), self.len).expect("at most 64 bits")
    }
}

impl Shard for Ipv6Short {
    fn shard(&self) -> usize {
        let x = u64::from_be_bytes(self.high) ^ u64::from(self.len);
        (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize
    }
}

/// The IPv6 table: short prefixes in their own shards, the rest (/128
/// VIPs, prefixes longer than 64 bits) in others.
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
        // 2,000 each if even; none far off.
        assert!(counts.iter().all(|c| (1_500..2_500).contains(c)), "{counts:?}");
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
        assert!(size_of::<(Ipv6Short, u64)>() < size_of::<(Ipv6Net, u64)>());
    }

    #[test]
    fn an_ipv4_slot_is_smaller() {
        assert!(size_of::<(Ipv4Net, u32)>() < size_of::<(IpNet, u32)>());
        assert!(size_of::<(Ipv4Net, ())>() * 3 < size_of::<(IpNet, ())>());
    }
}
