//! The routes to look at again at the next flush.
//!
//! While a full table arrives, the Loc-RIB is far ahead of the kernel and
//! nearly every prefix waits here: a key in an ordered set of whole
//! `RouteKey`s cost about 40 bytes, so the routes of the FIB's own table
//! are kept as a set of prefixes split by family (an IPv4 prefix is 5
//! bytes); keys of other tables (VIPs in the local table) are few and
//! keep their ordered set.

use std::collections::BTreeSet;

use super::RouteKey;
use crate::prefix_map::PrefixSet;

pub(super) struct Dirty {
    /// The FIB's own table: its keys are in `main`.
    table: u32,
    main: PrefixSet,
    other: BTreeSet<RouteKey>,
}

impl Dirty {
    pub(super) fn new(table: u32) -> Dirty {
        Dirty {
            table,
            main: PrefixSet::default(),
            other: BTreeSet::new(),
        }
    }

    pub(super) fn insert(&mut self, key: RouteKey) {
        if key.table == self.table {
            self.main.add(key.prefix);
        } else {
            self.other.insert(key);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.main.len() + self.other.len()
    }

    /// Up to `n` keys, taken out, in order: other tables' first, then
    /// which of the FIB's own table is the set's choice. Once all are
    /// taken, the room they took goes too.
    pub(super) fn take_at_most(&mut self, n: usize) -> Vec<RouteKey> {
        let table = self.table;
        let mut keys: Vec<RouteKey> = if self.len() <= n {
            let main = std::mem::take(&mut self.main);
            let other = std::mem::take(&mut self.other);
            main.keys()
                .map(|prefix| RouteKey { prefix, table })
                .chain(other)
                .collect()
        } else {
            // The few keys of other tables first (VIPs: a pod waits for
            // its hairpin route), then the FIB's table.
            let mut keys: Vec<RouteKey> = std::iter::from_fn(|| self.other.pop_first()).take(n).collect();
            let main: Vec<RouteKey> = self
                .main
                .keys()
                .take(n - keys.len())
                .map(|prefix| RouteKey { prefix, table })
                .collect();
            for k in &main {
                self.main.remove(&k.prefix);
            }
            keys.extend(main);
            keys
        };
        keys.sort_unstable();
        keys
    }
}

impl Extend<RouteKey> for Dirty {
    fn extend<I: IntoIterator<Item = RouteKey>>(&mut self, keys: I) {
        for k in keys {
            self.insert(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str, table: u32) -> RouteKey {
        RouteKey {
            prefix: p.parse().unwrap(),
            table,
        }
    }

    #[test]
    fn every_key_comes_out_once_in_order_whatever_its_table() {
        let mut d = Dirty::new(254);
        d.extend([
            key("10.0.2.0/24", 254),
            key("10.96.0.10/32", 255),
            key("10.0.1.0/24", 254),
            key("fd00::/64", 254),
            key("10.0.1.0/24", 254),
        ]);
        assert_eq!(d.len(), 4);
        let mut all = d.take_at_most(2);
        assert_eq!(all.len(), 2);
        assert!(all.is_sorted());
        assert_eq!(d.len(), 2);
        all.extend(d.take_at_most(10));
        assert_eq!(d.len(), 0);
        all.sort();
        assert_eq!(
            all,
            [
                key("10.0.1.0/24", 254),
                key("10.0.2.0/24", 254),
                key("10.96.0.10/32", 255),
                key("fd00::/64", 254),
            ]
        );
        assert_eq!(d.take_at_most(10), []);
    }
}
