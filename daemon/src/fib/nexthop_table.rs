//! The kernel nexthop objects and groups tern owns, keyed by what they
//! hold and counted by use, so every route with the same next hops shares
//! one object and an object goes when its last route does.

use std::collections::{BTreeSet, HashMap};

use crate::memory::FastMap;

use super::kernel::{KernelNextHop, NexthopObject, NexthopSpec, Op};

/// Where our nexthop object ids start: high, away from other daemons.
const FIRST_NEXTHOP_ID: u32 = 186_000_000;

/// Nexthop objects we created, by what they hold, with how many routes (or
/// groups) use each.
#[derive(Debug, Default)]
pub struct NexthopTable {
    by_spec: FastMap<NexthopSpec, (u32, usize)>,
    specs: FastMap<u32, NexthopSpec>,
    next_id: u32,
    /// Objects the kernel lost (deleted by someone, changed, or proven
    /// missing by an error): written again at the next flush.
    missing: BTreeSet<u32>,
}

impl NexthopTable {
    /// Gives room back after many objects went; true if a table shrank.
    pub fn shrink(&mut self) -> bool {
        crate::memory::shrink_map(&mut self.by_spec) | crate::memory::shrink_map(&mut self.specs)
    }

    /// Our objects as found in the kernel, each group holding one use of
    /// each of its members; routes add theirs with [`NexthopTable::add_use`].
    pub fn from_kernel(objects: &[NexthopObject], protocol: u8) -> Self {
        let mut table = NexthopTable::default();
        for o in objects.iter().filter(|o| o.protocol == protocol) {
            table.specs.insert(o.id, o.spec.clone());
            table.by_spec.insert(o.spec.clone(), (o.id, 0));
            table.next_id = table.next_id.max(o.id.wrapping_add(1));
        }
        let members: Vec<u32> = table
            .specs
            .values()
            .filter_map(|s| match s {
                NexthopSpec::Group(m) => Some(m.iter().map(|(id, _)| *id).collect::<Vec<_>>()),
                NexthopSpec::Single(_) => None,
            })
            .flatten()
            .collect();
        for m in members {
            table.add_use(m);
        }
        table
    }

    /// One more user of an existing object.
    pub fn add_use(&mut self, id: u32) {
        if let Some(spec) = self.specs.get(&id).cloned()
            && let Some(e) = self.by_spec.get_mut(&spec)
        {
            e.1 += 1;
        }
    }

    /// How many routes or groups use the object holding `spec`.
    pub fn uses(&self, spec: &NexthopSpec) -> usize {
        self.by_spec.get(spec).map_or(0, |(_, n)| *n)
    }

    pub fn contains(&self, id: u32) -> bool {
        self.specs.contains_key(&id)
    }

    fn allocate(&mut self) -> u32 {
        if self.next_id < FIRST_NEXTHOP_ID {
            self.next_id = FIRST_NEXTHOP_ID;
        }
        while self.specs.contains_key(&self.next_id) {
            self.next_id = self.next_id.wrapping_add(1).max(FIRST_NEXTHOP_ID);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// The object for `spec`, creating it (into `ops`) when new.
    pub fn acquire(&mut self, spec: NexthopSpec, protocol: u8, ops: &mut Vec<Op>) -> u32 {
        if let Some((id, users)) = self.by_spec.get_mut(&spec) {
            *users += 1;
            return *id;
        }
        let id = self.allocate();
        ops.push(Op::ReplaceNexthop(NexthopObject {
            id,
            protocol,
            spec: spec.clone(),
        }));
        self.specs.insert(id, spec.clone());
        self.by_spec.insert(spec, (id, 1));
        id
    }

    /// Drops one use of `id`; returns it when nothing uses it any more.
    pub fn release(&mut self, id: u32) -> Option<NexthopSpec> {
        let spec = self.specs.get(&id)?.clone();
        let entry = self.by_spec.get_mut(&spec)?;
        entry.1 = entry.1.saturating_sub(1);
        if entry.1 > 0 {
            return None;
        }
        self.by_spec.remove(&spec);
        self.specs.remove(&id);
        Some(spec)
    }

    /// The kernel no longer has `id` as we made it: write it again (a
    /// group with its members).
    pub fn mark_missing(&mut self, id: u32) {
        let Some(spec) = self.specs.get(&id) else { return };
        self.missing.insert(id);
        if let NexthopSpec::Group(members) = spec {
            let members: Vec<u32> = members
                .iter()
                .map(|(m, _)| *m)
                .filter(|m| self.specs.contains_key(m))
                .collect();
            self.missing.extend(members);
        }
    }

    /// The objects to write again, each object before the groups that hold
    /// it.
    pub fn take_missing(&mut self, protocol: u8) -> Vec<Op> {
        let missing = std::mem::take(&mut self.missing);
        let (groups, singles): (Vec<u32>, Vec<u32>) = missing
            .into_iter()
            .filter(|id| self.specs.contains_key(id))
            .partition(|id| matches!(self.specs.get(id), Some(NexthopSpec::Group(_))));
        singles
            .into_iter()
            .chain(groups)
            .filter_map(|id| {
                let spec = self.specs.get(&id)?.clone();
                Some(Op::ReplaceNexthop(NexthopObject { id, protocol, spec }))
            })
            .collect()
    }

    /// Compares our objects with the kernel's (of our protocol): those
    /// missing or holding something else are marked to be written again.
    /// Returns how many.
    pub fn reconcile(&mut self, kernel: &[NexthopObject]) -> usize {
        let theirs: HashMap<u32, &NexthopSpec> = kernel.iter().map(|o| (o.id, &o.spec)).collect();
        let sorted = |s: &NexthopSpec| match s {
            NexthopSpec::Group(m) => {
                let mut m = m.clone();
                m.sort_unstable();
                NexthopSpec::Group(m)
            }
            single => single.clone(),
        };
        let drifted: Vec<u32> = self
            .specs
            .iter()
            .filter(|(id, spec)| theirs.get(id).is_none_or(|t| sorted(t) != sorted(spec)))
            .map(|(id, _)| *id)
            .collect();
        for id in &drifted {
            self.mark_missing(*id);
        }
        drifted.len()
    }

    /// Objects nothing uses (left from a previous run): forgotten, and
    /// returned for deletion, groups before the objects they hold.
    pub fn sweep_unused(&mut self) -> Vec<u32> {
        let unused = |t: &Self, group: bool| -> Vec<u32> {
            t.specs
                .iter()
                .filter(|(_, s)| matches!(s, NexthopSpec::Group(_)) == group)
                .filter(|(_, s)| t.by_spec.get(*s).is_some_and(|(_, n)| *n == 0))
                .map(|(id, _)| *id)
                .collect()
        };
        let mut gone = Vec::new();
        for id in unused(self, true) {
            if let Some(NexthopSpec::Group(members)) = self.specs.remove(&id) {
                self.by_spec.remove(&NexthopSpec::Group(members.clone()));
                for (m, _) in members {
                    if let Some(spec) = self.specs.get(&m).cloned()
                        && let Some(e) = self.by_spec.get_mut(&spec)
                    {
                        e.1 = e.1.saturating_sub(1);
                    }
                }
                gone.push(id);
            }
        }
        for id in unused(self, false) {
            if let Some(spec) = self.specs.remove(&id) {
                self.by_spec.remove(&spec);
                gone.push(id);
            }
        }
        for id in &gone {
            self.missing.remove(id);
        }
        gone
    }

    /// The next hops an object id stands for.
    pub fn expand(&self, id: u32) -> Vec<KernelNextHop> {
        match self.specs.get(&id) {
            Some(NexthopSpec::Single(nh)) => vec![nh.clone()],
            Some(NexthopSpec::Group(members)) => {
                let mut v: Vec<KernelNextHop> = members
                    .iter()
                    .filter_map(|(m, w)| match self.specs.get(m) {
                        Some(NexthopSpec::Single(nh)) => Some(KernelNextHop {
                            weight: *w,
                            ..nh.clone()
                        }),
                        _ => None,
                    })
                    .collect();
                v.sort();
                v
            }
            None => Vec::new(),
        }
    }

    /// Forgets every object; returns their ids, groups before the objects
    /// they hold, for deletion.
    pub fn drain(&mut self) -> Vec<u32> {
        let mut groups: Vec<u32> = Vec::new();
        let mut singles: Vec<u32> = Vec::new();
        for (id, spec) in self.specs.drain() {
            match spec {
                NexthopSpec::Group(_) => groups.push(id),
                NexthopSpec::Single(_) => singles.push(id),
            }
        }
        self.by_spec.clear();
        self.missing.clear();
        groups.extend(singles);
        groups
    }
}
