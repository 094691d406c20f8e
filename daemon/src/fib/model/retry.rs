//! Kernel writes that fail: a refused route is not believed installed and
//! is tried again with back-off (1 s, doubling, up to a minute) until it
//! succeeds or is no longer wanted, listed with the kernel's reason
//! meanwhile. A refusal that says one of our nexthop objects is gone has
//! the object written again.

use std::time::{Duration, Instant};

use super::{Fib, RouteKey};
use crate::fib::kernel::{Op, OpError};
use crate::status::FailedRoute;

/// A route the kernel refused: tried again with back-off.
#[derive(Clone, Debug)]
pub(super) struct Failing {
    pub(super) attempts: u32,
    pub(super) error: OpError,
    /// The object use the refused route took, kept for its next attempt
    /// (given back then, after the attempt takes its own).
    pub(super) nhid: Option<u32>,
    /// `None` while an attempt is under way.
    pub(super) retry_at: Option<Instant>,
}

/// The first retry of a failed write comes after this, doubling each time.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

impl Fib {
    /// When a failed write is next due.
    pub fn next_retry(&self) -> Option<Instant> {
        self.failing.values().filter_map(|f| f.retry_at).min()
    }

    /// Failed writes whose back-off has passed are tried again at the next
    /// flush.
    pub fn retry_due(&mut self, now: Instant) {
        for (key, f) in &mut self.failing {
            if f.retry_at.is_some_and(|t| t <= now) {
                f.retry_at = None;
                self.dirty.insert(*key);
            }
        }
    }

    /// The routes the kernel refused, for the API.
    pub fn failed_routes(&self, now: Instant) -> Vec<FailedRoute> {
        self.failing
            .iter()
            .map(|(key, f)| FailedRoute {
                prefix: key.prefix.to_string(),
                table: key.table,
                error: f.error.to_string(),
                attempts: f.attempts,
                retry_in: f
                    .retry_at
                    .map_or(0, |t| t.saturating_duration_since(now).as_secs()),
            })
            .collect()
    }

    /// Takes the outcome of `flush`'s operations. A failed route is not
    /// believed installed and is tried again with back-off (1 s, doubling,
    /// up to a minute) until it succeeds or is no longer wanted. A failure
    /// that says a nexthop object of ours is gone has it written again.
    ///
    /// Results come in the order the flushes were made, but a later flush
    /// may have been made before this one's results came: a failed route
    /// that is no longer what tern believes installed was written over (or
    /// removed) by that later flush, which took back its object use, and
    /// the later result decides. That failure is out of date and ignored.
    pub fn applied(&mut self, ops: &[Op], results: &[Result<(), OpError>], now: Instant) {
        for (op, result) in ops.iter().zip(results) {
            let e = match (op, result) {
                (Op::ReplaceRoute(r), Ok(())) => {
                    self.failing.remove(&RouteKey {
                        prefix: r.prefix,
                        table: r.table,
                    });
                    continue;
                }
                (_, Ok(())) => continue,
                (_, Err(e)) => e,
            };
            self.counters.failures += 1;
            match op {
                Op::ReplaceRoute(r) => {
                    let key = RouteKey {
                        prefix: r.prefix,
                        table: r.table,
                    };
                    if !self.installed.get(&key).is_some_and(|i| i.route == *r) {
                        tracing::debug!(prefix = %r.prefix, error = %e, "a refused route was written over since");
                        continue;
                    }
                    let held = self.installed.remove(&key).and_then(|i| i.route.nhid);
                    // EINVAL naming a nexthop id: our object is not there.
                    if e.errno == libc::EINVAL
                        && let Some(id) = r.nhid
                    {
                        self.nexthops.mark_missing(id);
                    }
                    let previous = self.failing.remove(&key);
                    self.to_release.extend(previous.as_ref().and_then(|f| f.nhid));
                    let attempts = previous.map_or(0, |f| f.attempts) + 1;
                    let backoff = RETRY_FIRST
                        .saturating_mul(1 << (attempts - 1).min(6))
                        .min(RETRY_MAX);
                    tracing::warn!(prefix = %r.prefix, error = %e, attempts, retry_in = ?backoff, "cannot install route");
                    self.failing.insert(
                        key,
                        Failing {
                            attempts,
                            error: e.clone(),
                            nhid: held,
                            retry_at: Some(now + backoff),
                        },
                    );
                }
                // ESRCH: already gone, which is what we wanted.
                Op::DeleteRoute(r) if e.errno != libc::ESRCH => {
                    tracing::warn!(prefix = %r.prefix, error = %e, "cannot remove route");
                }
                Op::ReplaceNexthop(o) => {
                    tracing::warn!(id = o.id, error = %e, "cannot create nexthop object");
                    self.nexthops.mark_missing(o.id);
                }
                _ => {}
            }
        }
    }
}
