//! Hash tables keyed by prefix, one table per family. An `IpNet` takes 18
//! bytes and pads a table's entry to the alignment of its value; an IPv4
//! prefix alone takes 5. A full table is mostly IPv4, and each table that
//! holds a route per prefix (the Loc-RIB, each peer's accepted prefixes, the
//! FIB's) saves 10 to 16 bytes a slot this way.
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
    v6: Sharded<Ipv6Net, V>,
}

/// A set of prefixes, as a [`PrefixMap`].
pub type PrefixSet = PrefixMap<()>;

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            v4: Sharded::default(),
            v6: Sharded::default(),
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
        v4.chain(self.v6.iter().map(|(p, v)| (IpNet::V6(*p), v)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (IpNet, &mut V)> {
        let v4 = self.v4.iter_mut().map(|(p, v)| (IpNet::V4(*p), v));
        v4.chain(self.v6.iter_mut().map(|(p, v)| (IpNet::V6(*p), v)))
    }

    pub fn keys(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.iter().map(|(p, _)| p)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.v4.values().chain(self.v6.values())
    }

    pub fn retain(&mut self, mut keep: impl FnMut(IpNet, &mut V) -> bool) {
        self.v4.retain(|p, v| keep(IpNet::V4(*p), v));
        self.v6.retain(|p, v| keep(IpNet::V6(*p), v));
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
    fn an_ipv4_slot_is_smaller() {
        assert!(size_of::<(Ipv4Net, u32)>() < size_of::<(IpNet, u32)>());
        assert!(size_of::<(Ipv4Net, ())>() * 3 < size_of::<(IpNet, ())>());
    }
}
