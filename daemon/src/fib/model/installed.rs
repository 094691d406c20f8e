//! What the FIB believes the kernel holds of its own, and what it wants
//! for each prefix, kept small: with a full table this is one entry per
//! route, both in one slot of one table.

use std::net::IpAddr;
use std::num::NonZeroU32;

use ipnet::IpNet;

use super::next_hop_lists::ListId;
use super::{RouteKey, Wanted};
use crate::config::FibSettings;
use crate::fib::kernel::{KernelRoute, RouteKind};
use crate::memory::{FastMap, shrink_map};
use crate::prefix_map::PrefixMap;

/// A route of ours in the kernel, as written (a route on a nexthop object
/// without its next hops) or as found at start.
#[derive(Clone, Debug)]
pub(super) struct Installed {
    pub(super) route: KernelRoute,
    /// Found in the kernel at start and not yet confirmed as wanted.
    pub(super) leftover: bool,
}

/// What is kept of one route. Nearly every route of a full table is a
/// unicast route on a nexthop object with the configured table, protocol,
/// metric and source address: its object's id says all of it, and with the
/// prefix it takes 16 bytes where the whole route took 90. Any other route
/// is kept whole beside it.
#[derive(Copy, Clone, Debug)]
struct Slot {
    /// `None`: the route is in [`InstalledTable::whole`].
    object: Option<NonZeroU32>,
    leftover: bool,
}

/// What every route on an object shares.
#[derive(Clone, Debug)]
struct Defaults {
    table: u32,
    protocol: u8,
    metric: u32,
    prefsrc_v4: Option<IpAddr>,
    prefsrc_v6: Option<IpAddr>,
}

impl Defaults {
    fn prefsrc(&self, prefix: &IpNet) -> Option<IpAddr> {
        match prefix {
            IpNet::V4(_) => self.prefsrc_v4,
            IpNet::V6(_) => self.prefsrc_v6,
        }
    }
}

/// A prefix's slot: what is wanted for it, and its route in the
/// configured table, packed in 9 bytes without alignment, so that beside
/// a 5-byte IPv4 key it takes 14 bytes rather than 24 (a full table's
/// hash table holds about two slots a route):
///
/// - `wanted`: 0 nothing, 1 a VIP, 2 + the kind's number a reject route,
///   `FORWARD` + the list's number a list of next hops;
/// - `object`: the route's nexthop object, 0 for none;
/// - `flags`: whether there is a route, and whether it is a leftover.
#[derive(Copy, Clone, Debug, Default)]
struct Entry {
    wanted: [u8; 4],
    object: [u8; 4],
    flags: u8,
}

const HAS_ROUTE: u8 = 1;
const LEFTOVER: u8 = 2;
const FORWARD: u32 = 8;
const KINDS: [RouteKind; 4] = [
    RouteKind::Unicast,
    RouteKind::Local,
    RouteKind::Blackhole,
    RouteKind::Unreachable,
];

impl Entry {
    fn wanted(&self) -> Option<Wanted> {
        match u32::from_ne_bytes(self.wanted) {
            0 => None,
            1 => Some(Wanted::Vip),
            n if n < FORWARD => KINDS.get((n - 2) as usize).map(|k| Wanted::Reject(*k)),
            n => Some(Wanted::Forward(ListId::from_index(n - FORWARD))),
        }
    }

    /// Sets what is wanted; returns what was.
    fn set_wanted(&mut self, wanted: Option<Wanted>) -> Option<Wanted> {
        let old = self.wanted();
        let code = match wanted {
            None => 0,
            Some(Wanted::Vip) => 1,
            // The kind's place in `KINDS`.
            Some(Wanted::Reject(kind)) => match kind {
                RouteKind::Unicast => 2,
                RouteKind::Local => 3,
                RouteKind::Blackhole => 4,
                RouteKind::Unreachable => 5,
            },
            Some(Wanted::Forward(id)) => FORWARD + id.index(),
        };
        self.wanted = code.to_ne_bytes();
        old
    }

    fn slot(&self) -> Option<Slot> {
        (self.flags & HAS_ROUTE != 0).then(|| Slot {
            object: NonZeroU32::new(u32::from_ne_bytes(self.object)),
            leftover: self.flags & LEFTOVER != 0,
        })
    }

    /// Sets the route's slot; returns what it was.
    fn set_slot(&mut self, slot: Option<Slot>) -> Option<Slot> {
        let old = self.slot();
        let object = slot.and_then(|s| s.object).map_or(0, NonZeroU32::get);
        self.object = object.to_ne_bytes();
        self.flags = match slot {
            None => 0,
            Some(s) if s.leftover => HAS_ROUTE | LEFTOVER,
            Some(_) => HAS_ROUTE,
        };
        old
    }
}

#[derive(Debug)]
pub(super) struct InstalledTable {
    defaults: Defaults,
    /// What is wanted for each prefix, and routes in the configured table.
    main: PrefixMap<Entry>,
    /// Entries of `main` with a route.
    main_routes: usize,
    /// Routes in other tables: the local table's VIP routes, and what a
    /// previous configuration left.
    other: FastMap<RouteKey, Slot>,
    whole: FastMap<RouteKey, KernelRoute>,
    /// Slots with `leftover` set, counted as they change (the status asks
    /// often).
    leftovers: usize,
}

impl InstalledTable {
    pub(super) fn new(config: &FibSettings) -> Self {
        InstalledTable {
            defaults: Defaults {
                table: config.table,
                protocol: config.protocol,
                metric: config.metric,
                prefsrc_v4: config.source_address_ipv4.map(IpAddr::V4),
                prefsrc_v6: config.source_address_ipv6.map(IpAddr::V6),
            },
            main: PrefixMap::default(),
            main_routes: 0,
            other: FastMap::default(),
            whole: FastMap::default(),
            leftovers: 0,
        }
    }

    fn slot(&self, key: &RouteKey) -> Option<Slot> {
        if key.table == self.defaults.table {
            self.main.get(&key.prefix)?.slot()
        } else {
            self.other.get(key).copied()
        }
    }

    /// What is wanted for `prefix`.
    pub(super) fn wanted(&self, prefix: &IpNet) -> Option<Wanted> {
        self.main.get(prefix)?.wanted()
    }

    /// Sets what is wanted for `prefix`; returns what was.
    pub(super) fn set_wanted(&mut self, prefix: IpNet, wanted: Option<Wanted>) -> Option<Wanted> {
        match wanted {
            Some(_) => {
                let (e, _) = self.main.get_or_insert_with(prefix, Entry::default);
                e.set_wanted(wanted)
            }
            None => {
                let e = self.main.get_mut(&prefix)?;
                let old = e.set_wanted(None);
                if e.slot().is_none() {
                    self.main.remove(&prefix);
                }
                old
            }
        }
    }

    /// Every prefix something is wanted for.
    pub(super) fn wanted_iter(&self) -> impl Iterator<Item = (IpNet, Wanted)> + '_ {
        self.main.iter().filter_map(|(p, e)| Some((p, e.wanted()?)))
    }

    fn expand(&self, key: RouteKey, slot: Slot) -> Installed {
        let on_object = |nhid: Option<u32>| KernelRoute {
            prefix: key.prefix,
            table: key.table,
            protocol: self.defaults.protocol,
            kind: RouteKind::Unicast,
            metric: self.defaults.metric,
            nexthops: Vec::new(),
            nhid,
            prefsrc: self.defaults.prefsrc(&key.prefix),
        };
        let route = match slot.object {
            Some(id) => on_object(Some(id.get())),
            None => self.whole.get(&key).cloned().unwrap_or_else(|| {
                // Never: a slot without an object has its route in `whole`.
                tracing::error!(prefix = %key.prefix, "an installed route has gone missing from tern's table");
                on_object(None)
            }),
        };
        Installed {
            route,
            leftover: slot.leftover,
        }
    }

    pub(super) fn get(&self, key: &RouteKey) -> Option<Installed> {
        let slot = self.slot(key)?;
        Some(self.expand(*key, slot))
    }

    pub(super) fn contains_key(&self, key: &RouteKey) -> bool {
        self.slot(key).is_some()
    }

    /// Confirms a leftover as wanted.
    pub(super) fn confirm(&mut self, key: &RouteKey) {
        self.set_leftover(key, false);
    }

    pub(super) fn set_leftover(&mut self, key: &RouteKey, leftover: bool) {
        let was = if key.table == self.defaults.table {
            let Some(e) = self.main.get_mut(&key.prefix) else {
                return;
            };
            let Some(mut s) = e.slot() else { return };
            let was = std::mem::replace(&mut s.leftover, leftover);
            e.set_slot(Some(s));
            was
        } else {
            let Some(s) = self.other.get_mut(key) else { return };
            std::mem::replace(&mut s.leftover, leftover)
        };
        self.leftovers = self.leftovers + usize::from(leftover) - usize::from(was);
    }

    pub(super) fn insert(&mut self, key: RouteKey, route: KernelRoute, leftover: bool) {
        let d = &self.defaults;
        let object = match route.nhid {
            Some(id)
                if route.kind == RouteKind::Unicast
                    && route.nexthops.is_empty()
                    && route.table == d.table
                    && route.protocol == d.protocol
                    && route.metric == d.metric
                    && route.prefsrc == d.prefsrc(&route.prefix) =>
            {
                NonZeroU32::new(id)
            }
            _ => None,
        };
        // Nearly every route is on an object and `whole` is empty: no
        // hashing for it then.
        if object.is_some() {
            if !self.whole.is_empty() {
                self.whole.remove(&key);
            }
        } else {
            self.whole.insert(key, route);
        }
        let slot = Slot { object, leftover };
        let replaced = if key.table == self.defaults.table {
            let (e, _) = self.main.get_or_insert_with(key.prefix, Entry::default);
            let replaced = e.set_slot(Some(slot));
            self.main_routes += usize::from(replaced.is_none());
            replaced
        } else {
            self.other.insert(key, slot)
        };
        let was = replaced.is_some_and(|s| s.leftover);
        self.leftovers = self.leftovers + usize::from(leftover) - usize::from(was);
    }

    pub(super) fn remove(&mut self, key: &RouteKey) -> Option<Installed> {
        let slot = if key.table == self.defaults.table {
            let e = self.main.get_mut(&key.prefix)?;
            let slot = e.set_slot(None)?;
            if e.wanted().is_none() {
                self.main.remove(&key.prefix);
            }
            self.main_routes -= 1;
            slot
        } else {
            self.other.remove(key)?
        };
        let installed = self.expand(*key, slot);
        self.leftovers -= usize::from(slot.leftover);
        if slot.object.is_none() {
            self.whole.remove(key);
        }
        Some(installed)
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = RouteKey> + '_ {
        let table = self.defaults.table;
        let main = self.main.iter().filter(|(_, e)| e.slot().is_some());
        let main = main.map(move |(prefix, _)| RouteKey { prefix, table });
        main.chain(self.other.keys().copied())
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (RouteKey, Installed)> + '_ {
        let table = self.defaults.table;
        let main = self
            .main
            .iter()
            .filter_map(move |(prefix, e)| Some((RouteKey { prefix, table }, e.slot()?)));
        main.chain(self.other.iter().map(|(k, s)| (*k, *s)))
            .map(|(k, s)| (k, self.expand(k, s)))
    }

    /// Routes written or confirmed, leftovers not counted.
    pub(super) fn confirmed(&self) -> usize {
        self.main_routes + self.other.len() - self.leftovers
    }

    pub(super) fn leftovers(&self) -> Vec<RouteKey> {
        let table = self.defaults.table;
        let main = self
            .main
            .iter()
            .filter(|(_, e)| e.slot().is_some_and(|s| s.leftover));
        let main = main.map(|(prefix, _)| RouteKey { prefix, table });
        let other = self.other.iter().filter(|(_, s)| s.leftover).map(|(k, _)| *k);
        main.chain(other).collect()
    }

    /// Forgets every route (what is wanted stays).
    pub(super) fn clear(&mut self) {
        self.main.retain(|_, e| {
            e.set_slot(None);
            e.wanted().is_some()
        });
        self.main_routes = 0;
        self.other.clear();
        self.whole.clear();
        self.leftovers = 0;
    }

    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.main.capacity() + self.other.capacity()
    }

    pub(super) fn shrink(&mut self) -> bool {
        self.main.shrink() | shrink_map(&mut self.other) | shrink_map(&mut self.whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::kernel::{KernelNextHop, RT_TABLE_LOCAL};

    /// Every value a packed entry holds comes back as it went in, each
    /// half left alone by a change to the other; beside an IPv4 key it
    /// takes 14 bytes.
    #[test]
    fn a_packed_entry_round_trips() {
        assert_eq!(size_of::<(ipnet::Ipv4Net, Entry)>(), 14);
        let wanted = [
            None,
            Some(Wanted::Vip),
            Some(Wanted::Forward(ListId::from_index(0))),
            Some(Wanted::Forward(ListId::from_index(123_456))),
        ]
        .into_iter()
        .chain(KINDS.map(|k| Some(Wanted::Reject(k))));
        let slots = [
            None,
            Some(Slot {
                object: None,
                leftover: false,
            }),
            Some(Slot {
                object: None,
                leftover: true,
            }),
            Some(Slot {
                object: NonZeroU32::new(186_000_001),
                leftover: false,
            }),
            Some(Slot {
                object: NonZeroU32::new(u32::MAX),
                leftover: true,
            }),
        ];
        for w in wanted {
            for s in slots {
                let mut e = Entry::default();
                assert_eq!(e.set_wanted(w), None);
                assert_eq!(e.set_slot(s).map(|s| (s.object, s.leftover)), None);
                assert_eq!(e.wanted(), w);
                assert_eq!(
                    e.slot().map(|s| (s.object, s.leftover)),
                    s.map(|s| (s.object, s.leftover))
                );
                assert_eq!(e.set_wanted(None), w);
                assert_eq!(
                    e.slot().map(|s| (s.object, s.leftover)),
                    s.map(|s| (s.object, s.leftover))
                );
            }
        }
    }

    fn route(prefix: &str, table: u32, nhid: Option<u32>) -> KernelRoute {
        KernelRoute {
            prefix: prefix.parse().unwrap(),
            table,
            protocol: 186,
            kind: RouteKind::Unicast,
            metric: 512,
            nexthops: Vec::new(),
            nhid,
            prefsrc: None,
        }
    }

    fn config() -> FibSettings {
        FibSettings {
            enabled: true,
            table: crate::fib::kernel::RT_TABLE_MAIN,
            protocol: 186,
            metric: 512,
            ipv4: true,
            ipv6: true,
            install_from: Vec::new(),
            install_policy: None,
            vip: None,
            scan_interval: std::time::Duration::from_secs(60),
            keep_routes_on_stop: true,
            source_address_ipv4: None,
            source_address_ipv6: None,
        }
    }

    #[test]
    fn every_route_comes_back_as_it_went_in() {
        let c = config();
        let mut t = InstalledTable::new(&c);
        let key = |r: &KernelRoute| RouteKey {
            prefix: r.prefix,
            table: r.table,
        };
        let on_object = route("10.1.0.0/24", c.table, Some(7));
        let other_metric = KernelRoute {
            metric: 100,
            ..route("10.2.0.0/24", c.table, Some(7))
        };
        let with_hops = KernelRoute {
            nexthops: vec![KernelNextHop {
                gateway: Some("10.0.0.2".parse().unwrap()),
                ifindex: Some(2),
                weight: 1,
            }],
            ..route("fd00:1::/64", c.table, None)
        };
        let local = KernelRoute {
            kind: RouteKind::Local,
            ..route("10.3.0.1/32", RT_TABLE_LOCAL, None)
        };
        for (r, leftover) in [
            (&on_object, false),
            (&other_metric, true),
            (&with_hops, false),
            (&local, true),
        ] {
            t.insert(key(r), r.clone(), leftover);
        }
        // Only what differs from the defaults is kept whole.
        assert_eq!(t.whole.len(), 3);
        for (r, leftover) in [
            (&on_object, false),
            (&other_metric, true),
            (&with_hops, false),
            (&local, true),
        ] {
            let got = t.get(&key(r)).expect("installed");
            assert_eq!(&got.route, r);
            assert_eq!(got.leftover, leftover);
        }
        assert_eq!(t.confirmed(), 2);
        let mut leftovers = t.leftovers();
        leftovers.sort();
        assert_eq!(leftovers, [key(&other_metric), key(&local)]);
        t.confirm(&key(&local));
        assert_eq!(t.keys().count(), 4);
        // A route that moves onto an object is kept small again.
        t.insert(key(&other_metric), route("10.2.0.0/24", c.table, Some(8)), false);
        assert_eq!(t.whole.len(), 2);
        assert_eq!(t.remove(&key(&with_hops)).expect("there").route, with_hops);
        assert_eq!(t.whole.len(), 1);
        assert!(t.get(&key(&with_hops)).is_none());
    }

    /// What is wanted shares the route's slot: neither counts as the
    /// other, and forgetting the routes (a reload) keeps what is wanted.
    #[test]
    fn what_is_wanted_and_what_is_installed_share_a_slot() {
        let c = config();
        let mut t = InstalledTable::new(&c);
        let r = route("10.1.0.0/24", c.table, Some(7));
        let k = RouteKey {
            prefix: r.prefix,
            table: r.table,
        };
        assert_eq!(t.set_wanted(r.prefix, Some(Wanted::Vip)), None);
        assert!(t.get(&k).is_none());
        assert_eq!(t.keys().count(), 0);
        assert_eq!(t.confirmed(), 0);
        t.insert(k, r.clone(), false);
        assert_eq!(t.confirmed(), 1);
        assert_eq!(t.wanted(&r.prefix), Some(Wanted::Vip));
        t.clear();
        assert_eq!((t.confirmed(), t.keys().count()), (0, 0));
        assert_eq!(t.wanted_iter().count(), 1);
        t.insert(k, r.clone(), false);
        assert_eq!(t.set_wanted(r.prefix, None), Some(Wanted::Vip));
        assert_eq!(t.get(&k).map(|i| i.route), Some(r.clone()));
        assert!(t.remove(&k).is_some());
        assert_eq!(t.main.len(), 0, "an empty slot goes");
    }
}
