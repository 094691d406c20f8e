//! Comparing with the kernel: reloading its whole state after events were
//! lost, and the scan that finds our routes and nexthop objects changed or
//! missing (BIRD's mark-and-sweep of `krt_prune`) and queues repairs.

use std::collections::{HashMap, HashSet};

use super::{Fib, KernelSnapshot, RouteKey, same_route};
use crate::fib::kernel::{KernelRoute, NexthopObject, RT_TABLE_LOCAL, RT_TABLE_MAIN};

impl Fib {
    /// The kernel as it is now, after events were lost or the kernel
    /// dropped routes on its own: everything is compared again and what
    /// differs is rewritten.
    pub fn reload(&mut self, kernel: KernelSnapshot) {
        let converged = self.converged;
        let before: HashSet<RouteKey> = self.installed.keys().collect();
        self.installed.clear();
        self.load(kernel);
        // Routes we wrote before stay ours to remove; leftovers from a
        // previous run stay leftovers until convergence.
        let mut all: Vec<RouteKey> = self.installed.keys().collect();
        for key in &all {
            self.installed
                .set_leftover(key, !converged && !before.contains(key));
        }
        for (p, _) in self.installed.wanted_iter() {
            all.push(RouteKey {
                prefix: p,
                table: self.config.table,
            });
            all.push(RouteKey {
                prefix: p,
                table: RT_TABLE_LOCAL,
            });
        }
        self.dirty.extend(all);
    }

    /// Compares a dump of our routes (and, with nexthop objects, of our
    /// objects) with what we believe we wrote and queues repairs. Returns
    /// how many differed.
    pub fn scan(&mut self, ours: &[KernelRoute], nexthops: Option<&[NexthopObject]>) -> usize {
        let objects = nexthops.map_or(0, |n| self.nexthops.reconcile(n));
        if objects > 0 {
            tracing::warn!(
                objects,
                "nexthop objects of ours missing or changed in the kernel; writing them again"
            );
            self.counters.repairs += objects as u64;
        }
        let mut seen: HashMap<RouteKey, &KernelRoute> = HashMap::new();
        for r in ours {
            seen.insert(
                RouteKey {
                    prefix: r.prefix,
                    table: r.table,
                },
                r,
            );
        }
        let mut repairs = Vec::new();
        for (key, i) in self.installed.iter() {
            match seen.get(&key) {
                Some(k) if same_route(&self.expand_route(&i.route), &self.expand_route(k)) => {}
                _ => repairs.push(key),
            }
        }
        for key in seen.keys() {
            if !self.installed.contains_key(key) {
                repairs.push(*key);
            }
        }
        for key in &repairs {
            // What we believed installed gives its object back; what the
            // kernel has is kept, so the flush compares with it.
            let leftover = match self.installed.remove(key) {
                Some(i) => {
                    self.to_release.extend(i.route.nhid);
                    i.leftover
                }
                None => !self.converged,
            };
            if let Some(k) = seen.get(key) {
                let route = self.adopt(k);
                self.installed.insert(*key, route, leftover);
            }
            self.dirty.insert(*key);
        }
        if !repairs.is_empty() {
            // Named, the first few: enough to find what else edits the table.
            const NAMED: usize = 10;
            let mut named: Vec<String> = repairs
                .iter()
                .take(NAMED)
                .map(|k| match k.table {
                    RT_TABLE_MAIN => k.prefix.to_string(),
                    t => format!("{} (table {t})", k.prefix),
                })
                .collect();
            if repairs.len() > NAMED {
                named.push(format!("and {} more", repairs.len() - NAMED));
            }
            tracing::warn!(
                routes = repairs.len(),
                prefixes = %named.join(", "),
                "kernel routes drifted from tern's state; repairing"
            );
            self.counters.repairs += repairs.len() as u64;
        }
        repairs.len() + objects
    }

    /// A route of ours found in the kernel, taken as installed: it holds a
    /// use of its object when the object is ours, and none otherwise.
    fn adopt(&mut self, k: &KernelRoute) -> KernelRoute {
        let mut r = self.expand_route(k);
        match r.nhid {
            Some(id) if self.nexthops.contains(id) => self.nexthops.add_use(id),
            Some(_) => r.nhid = None,
            None => {}
        }
        r
    }

    pub(super) fn expand_route(&self, r: &KernelRoute) -> KernelRoute {
        let mut r = r.clone();
        if let Some(id) = r.nhid {
            r.nexthops = self.nexthops.expand(id);
        }
        r
    }
}
