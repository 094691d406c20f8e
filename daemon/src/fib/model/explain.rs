//! Where a route is in the kernel, or why it is not, said as an operator
//! reads it (`tern show routes`): the same decision the FIB makes, and what
//! it made of it.

use super::{Fib, RouteKey, Target};
use crate::config::VipRoute;
use crate::fib::kernel::{KernelRoute, RT_TABLE_LOCAL, RT_TABLE_MAIN, RouteKind};
use crate::rib::LocRibChange;
use crate::status::KernelState;

impl Fib {
    /// Whether and how a Loc-RIB selection is in the kernel, or why not,
    /// for `tern show routes`.
    pub fn explain(&self, change: &LocRibChange) -> crate::status::KernelState {
        let prefix = change.prefix;
        // Wanted but not (yet) there.
        let not = |why: String| KernelState {
            wanted: true,
            installed: false,
            detail: why,
        };
        let wanted = match self.statics.get(&prefix) {
            Some(w) => w.clone(),
            None => match self.decide(change) {
                Ok(w) => w,
                Err(why) => {
                    return KernelState {
                        wanted: false,
                        installed: false,
                        detail: why,
                    };
                }
            },
        };
        let table = match wanted {
            Target::Vip => match &self.config.vip {
                Some((_, VipRoute::Local)) => RT_TABLE_LOCAL,
                _ => self.config.table,
            },
            _ => self.config.table,
        };
        let key = RouteKey { prefix, table };
        if let Some(f) = self.failing.get(&key) {
            return not(format!(
                "the kernel refused it ({} attempts): {}",
                f.attempts, f.error
            ));
        }
        if self.unresolved.contains(&prefix) {
            return not(
                "no next hop resolves (not reachable through a connected prefix or another route)".into(),
            );
        }
        let Some(i) = self.installed.get(&key).filter(|i| !i.leftover) else {
            if self
                .kernel
                .foreign
                .iter()
                .any(|f| f.prefix == prefix && f.table == table && f.metric == self.config.metric)
            {
                return not("another daemon's route has this prefix, table and metric".into());
            }
            return not("being written".into());
        };
        let what = match (&wanted, self.statics.contains_key(&prefix)) {
            (_, true) => "static route",
            (Target::Vip, _) => "VIP route",
            _ => "route",
        };
        KernelState {
            wanted: true,
            installed: true,
            detail: format!("{what}: {}", self.describe(&i.route)),
        }
    }

    /// A kernel route as `ip route` would say it, roughly.
    fn describe(&self, r: &KernelRoute) -> String {
        let table = match r.table {
            RT_TABLE_MAIN => "main".to_owned(),
            RT_TABLE_LOCAL => "local".to_owned(),
            t => t.to_string(),
        };
        let hops = match r.nhid {
            Some(id) => self.nexthops.expand(id),
            None => r.nexthops.clone(),
        };
        let dev = |i: Option<u32>| {
            i.and_then(|i| self.kernel.links.get(&i))
                .map(|l| format!(" dev {}", l.name))
                .unwrap_or_default()
        };
        let mut out = match r.kind {
            RouteKind::Blackhole => "blackhole".to_owned(),
            RouteKind::Unreachable => "unreachable".to_owned(),
            RouteKind::Local => format!(
                "local{}",
                hops.first().map(|h| dev(h.ifindex)).unwrap_or_default()
            ),
            RouteKind::Unicast => hops
                .iter()
                .map(|h| match h.gateway {
                    Some(g) => format!("via {g}{}", dev(h.ifindex)),
                    None => format!("directly{}", dev(h.ifindex)),
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
        out.push_str(&format!(", table {table}, metric {}", r.metric));
        if let Some(id) = r.nhid {
            out.push_str(&format!(", nexthop object {id}"));
        }
        if let Some(src) = r.prefsrc {
            out.push_str(&format!(", src {src}"));
        }
        out
    }
}
