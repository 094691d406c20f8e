//! Turning the keys that changed into kernel operations, a piece at a
//! time: the FIB task hands each piece's routes to the netlink thread
//! while it works out the next, so the kernel is not idle while tern
//! thinks.
//!
//! Within one flush, nexthop objects are created before the routes that
//! use them (each piece starts with the objects its routes need) and the
//! objects routes stopped using are deleted after every route (the last
//! piece): their use counts only drop then, so no object is deleted and
//! created again within a flush.

use super::{Fib, RouteKey, same_route};
use crate::fib::kernel::{KernelNextHop, NexthopSpec, Op, RouteKind};

/// A flush in progress: the keys taken, and the objects the routes
/// written so far stopped using.
pub struct Flush {
    keys: std::vec::IntoIter<RouteKey>,
    release: Vec<u32>,
    started: bool,
}

impl Fib {
    /// The operations that bring the kernel to the wanted state for every
    /// key that changed since the last flush. Nexthop objects are created
    /// before the routes that use them and deleted after.
    pub fn flush(&mut self) -> Vec<Op> {
        self.flush_at_most(usize::MAX)
    }

    /// [`Fib::flush`] for at most `keys` of the keys that changed, so that
    /// the kernel can start on them while more changes come in.
    pub fn flush_at_most(&mut self, keys: usize) -> Vec<Op> {
        let mut flush = self.start_flush(keys);
        let mut ops = Vec::new();
        while let Some(more) = self.flush_some(&mut flush, usize::MAX) {
            ops.extend(more);
        }
        ops.extend(self.finish_flush(flush));
        ops
    }

    /// Takes at most `keys` of the keys that changed, to turn into
    /// operations with [`Fib::flush_some`] and [`Fib::finish_flush`].
    pub fn start_flush(&mut self, keys: usize) -> Flush {
        Flush {
            keys: self.dirty.take_at_most(keys).into_iter(),
            release: std::mem::take(&mut self.to_release),
            started: false,
        }
    }

    /// The operations for up to `keys` more of the flush's keys, preceded
    /// by the objects they need (the first piece also brings back objects
    /// the kernel lost); `None` once every key is done.
    pub fn flush_some(&mut self, flush: &mut Flush, keys: usize) -> Option<Vec<Op>> {
        let mut ops = if flush.started {
            if flush.keys.len() == 0 {
                return None;
            }
            Vec::new()
        } else {
            flush.started = true;
            // Objects the kernel lost come back before the routes that use them.
            self.nexthops.take_missing(self.config.protocol)
        };
        let mut routes = Vec::new();
        for key in flush.keys.by_ref().take(keys) {
            // A refused route's object use goes back after this attempt
            // takes its own, so the object is not deleted in between.
            flush
                .release
                .extend(self.failing.get_mut(&key).and_then(|f| f.nhid.take()));
            let want = self.desired(key);
            if want.is_none() {
                self.failing.remove(&key);
            }
            let have = self.installed.get(&key);
            match (want, have) {
                (None, None) => {}
                (None, Some(i)) if i.leftover && !self.converged => {}
                (None, Some(_)) => {
                    if let Some(i) = self.installed.remove(&key) {
                        flush.release.extend(i.route.nhid);
                        routes.push(Op::DeleteRoute(i.route));
                    }
                }
                (Some(w), Some(i)) if same_route(&self.expand_route(&i.route), &w) => {
                    self.failing.remove(&key);
                    if i.leftover {
                        self.counters.adopted += 1;
                        self.installed.confirm(&key);
                    }
                }
                (Some(mut w), old) => {
                    if self.nexthop_objects && w.kind == RouteKind::Unicast && !w.nexthops.is_empty() {
                        w.nhid = Some(self.acquire(&w.nexthops, &mut ops));
                    }
                    if let Some(old) = old {
                        flush.release.extend(old.route.nhid);
                        // A route moving between kinds (e.g. to a blackhole)
                        // is removed first: replace does not change its type.
                        if old.route.kind != w.kind {
                            routes.push(Op::DeleteRoute(old.route));
                        }
                    }
                    // The kernel is told the object alone.
                    if w.nhid.is_some() {
                        w.nexthops = Vec::new();
                    }
                    routes.push(Op::ReplaceRoute(w.clone()));
                    self.installed.insert(key, w, false);
                }
            }
        }
        ops.extend(routes);
        Some(ops)
    }

    /// The flush's last operations: the objects no route uses any more.
    pub fn finish_flush(&mut self, flush: Flush) -> Vec<Op> {
        let mut delete = Vec::new();
        for id in flush.release {
            if let Some(NexthopSpec::Group(members)) = self.nexthops.release(id) {
                delete.push(Op::DeleteNexthop(id));
                for (m, _) in members {
                    if self.nexthops.release(m).is_some() {
                        delete.push(Op::DeleteNexthop(m));
                    }
                }
            } else if !self.nexthops.contains(id) {
                delete.push(Op::DeleteNexthop(id));
            }
        }
        // After convergence, objects nothing uses (left from a previous
        // run) go too.
        if self.converged {
            delete.extend(self.nexthops.sweep_unused().into_iter().map(Op::DeleteNexthop));
        }
        delete
    }

    fn acquire(&mut self, nexthops: &[KernelNextHop], ops: &mut Vec<Op>) -> u32 {
        let protocol = self.config.protocol;
        if let [single] = nexthops {
            return self
                .nexthops
                .acquire(NexthopSpec::Single(single.clone()), protocol, ops);
        }
        let members: Vec<(u32, u8)> = nexthops
            .iter()
            .map(|nh| {
                (
                    self.nexthops.acquire(
                        NexthopSpec::Single(KernelNextHop {
                            weight: 1,
                            ..nh.clone()
                        }),
                        protocol,
                        ops,
                    ),
                    nh.weight,
                )
            })
            .collect();
        let id = self
            .nexthops
            .acquire(NexthopSpec::Group(members.clone()), protocol, ops);
        // An existing group already holds its members: give back the uses
        // taken above.
        if self.nexthops.uses(&NexthopSpec::Group(members.clone())) > 1 {
            for (m, _) in members {
                self.nexthops.release(m);
            }
        }
        id
    }
}
