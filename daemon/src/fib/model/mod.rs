//! What the kernel should hold, and the operations that get it there.
//!
//! Sans I/O: Loc-RIB changes, kernel snapshots and kernel events go in;
//! netlink operations come out, and their results go back in. The rules:
//!
//! - Best routes from the roles in `install-from` (default: `upstream`) are
//!   installed; never the node's own prefixes (anything Cilium or
//!   `originate` announces).
//! - A route whose best path comes from a Cilium peer and that the VIP
//!   selector matches gets a route that keeps the traffic on the node (the
//!   hairpin fix); an upstream route to that prefix is never installed.
//! - Each BGP next hop is resolved against connected prefixes on links that
//!   are up, then recursively through routes tern does not own. An
//!   unresolvable next hop is not installed (and shown as such).
//! - Only keys that changed are written, once, with their latest state.
//! - Routes found in the kernel at start are adopted when they match; the
//!   rest stay until routing has converged, then go (restarts change
//!   nothing that did not change).
//! - Static routes (`[[static-route]]`) are installed whatever BGP says,
//!   and win over a BGP route to the same prefix, as bird's static
//!   protocol does with its higher preference; a next hop resolves like a
//!   BGP one.

mod dirty;
mod explain;
mod flush;
mod installed;
mod next_hop_lists;
mod reconcile;
mod retry;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bgp_proto::Family;
use ipnet::IpNet;
use policy::{PeerInfo, Role, RouteInput};

use super::kernel::{Address, Event, KernelNextHop, KernelRoute, Link, NexthopObject, Op, RouteKind};
pub use super::kernel::{RT_TABLE_LOCAL, RT_TABLE_MAIN};
use super::nexthop_table::NexthopTable;
use super::resolve::KernelView;
use crate::config::{FibSettings, StaticRoute, StaticTarget, VipRoute};
use crate::memory::FastMap;
use crate::rib::{Gateway, LocRibChange, NextHops};
use crate::status::FibCounters;
use dirty::Dirty;
pub use flush::Flush;
use installed::InstalledTable;
use next_hop_lists::{ListId, NextHopLists};
use retry::Failing;

/// What a prefix should become, before next-hop resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Forward(NextHops),
    Vip,
    /// A static blackhole or unreachable route.
    Reject(RouteKind),
}

/// A [`Target`] as kept for each prefix: its next hops are a list shared
/// by every prefix with the same ones (`Fib::lists`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Wanted {
    Forward(ListId),
    Vip,
    Reject(RouteKind),
}

/// The kernel as dumped: our routes and nexthop objects, other daemons'
/// routes (for next-hop resolution), links and addresses.
#[derive(Clone, Debug, Default)]
pub struct KernelSnapshot {
    pub ours: Vec<KernelRoute>,
    pub nexthops: Vec<NexthopObject>,
    pub foreign: Vec<KernelRoute>,
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
}

/// Identifies one kernel route of ours.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    pub prefix: IpNet,
    pub table: u32,
}

/// What to do after a kernel event, in increasing order of effort.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Followup {
    None,
    /// A route of ours may have been removed by someone else: compare the
    /// kernel with what we wrote soon.
    Scan,
    /// Events were lost (ENOBUFS): reload the kernel view and scan.
    Reload,
}

pub struct Fib {
    config: FibSettings,
    /// Point routes at kernel nexthop objects (shared by every route with
    /// the same next hops) instead of carrying the next hops themselves.
    nexthop_objects: bool,
    /// Static routes; each one's prefix is in `wanted` with it.
    statics: FastMap<IpNet, Target>,
    /// What BGP wants for a prefix a static route holds, for when the
    /// static route goes.
    shadowed: FastMap<IpNet, Target>,
    /// What is wanted for each prefix (`wanted`), and the routes of ours
    /// the kernel holds, in one table.
    installed: InstalledTable,
    /// Routes to look at again at the next flush.
    dirty: Dirty,
    converged: bool,
    /// What the kernel has that is not ours, for next-hop resolution.
    kernel: KernelView,
    /// Resolution per BGP next-hop address, and the prefixes using it.
    resolved: FastMap<Gateway, Vec<KernelNextHop>>,
    /// How many lists in `lists` hold each next-hop address. (Which
    /// prefixes use a list is looked up in `wanted` when a resolution
    /// changes, which is rare: an index of them cost more memory than the
    /// Loc-RIB's paths.)
    users: FastMap<Gateway, usize>,
    /// Every list of next hops in `wanted`, once.
    lists: NextHopLists,
    /// Prefixes in `wanted` that are VIPs.
    vip_routes: usize,
    nexthops: NexthopTable,
    counters: FibCounters,
    /// Next hops not resolvable at the moment, for the API.
    unresolved: BTreeSet<IpNet>,
    /// Routes whose last write failed, with when to try again.
    failing: BTreeMap<RouteKey, Failing>,
    /// Object uses given back by routes no longer believed installed,
    /// released at the next flush.
    to_release: Vec<u32>,
}

impl Fib {
    /// `nexthop_objects`: the kernel supports them (probed by the task).
    pub fn new(config: FibSettings, nexthop_objects: bool) -> Fib {
        Fib {
            installed: InstalledTable::new(&config),
            dirty: Dirty::new(config.table),
            config,
            nexthop_objects,
            statics: FastMap::default(),
            shadowed: FastMap::default(),
            converged: false,
            kernel: KernelView::default(),
            resolved: FastMap::default(),
            users: FastMap::default(),
            lists: NextHopLists::default(),
            vip_routes: 0,
            nexthops: NexthopTable::default(),
            counters: FibCounters::default(),
            unresolved: BTreeSet::new(),
            failing: BTreeMap::new(),
            to_release: Vec::new(),
        }
    }

    pub fn counters(&self) -> FibCounters {
        FibCounters {
            installed: self.installed.confirmed(),
            vip_routes: self.vip_routes,
            static_routes: self.statics.len(),
            unresolved: self.unresolved.len(),
            failing: self.failing.len(),
            ..self.counters.clone()
        }
    }

    /// Prefixes whose next hops cannot be resolved right now.
    pub fn unresolved(&self) -> impl Iterator<Item = &IpNet> {
        self.unresolved.iter()
    }

    /// The kernel as found at start (or after an overrun): our routes and
    /// nexthop objects are adopted, the rest feeds next-hop resolution.
    pub fn load(&mut self, kernel: KernelSnapshot) {
        let KernelSnapshot {
            ours,
            nexthops,
            foreign,
            links,
            addresses,
        } = kernel;
        self.kernel.links = links.into_iter().map(|l| (l.ifindex, l)).collect();
        self.kernel.addresses = addresses;
        self.kernel.foreign = foreign;
        // Our nexthop objects: known by what they hold, so routes that keep
        // the same next hops keep using them.
        let mut table = NexthopTable::from_kernel(&nexthops, self.config.protocol);
        for mut route in ours {
            if let Some(id) = route.nhid {
                route.nexthops = Vec::new();
                table.add_use(id);
            }
            let key = RouteKey {
                prefix: route.prefix,
                table: route.table,
            };
            self.installed.insert(key, route, true);
        }
        self.nexthops = table;
        self.reresolve_all();
    }

    /// A change of the Loc-RIB.
    pub fn loc_rib(&mut self, change: &LocRibChange) {
        let prefix = change.prefix;
        let new = self.decide(change).ok();
        if self.statics.contains_key(&prefix) {
            match new {
                Some(w) => self.shadowed.insert(prefix, w),
                None => self.shadowed.remove(&prefix),
            };
            return;
        }
        self.set_wanted(prefix, new);
    }

    /// What a Loc-RIB selection should become in the kernel, or why
    /// nothing.
    fn decide(&self, change: &LocRibChange) -> Result<Target, String> {
        let prefix = change.prefix;
        let sel = change.selected.as_ref().ok_or("no path in the Loc-RIB")?;
        let family_on = match prefix {
            IpNet::V4(_) => self.config.ipv4,
            IpNet::V6(_) => self.config.ipv6,
        };
        if !family_on {
            return Err(format!(
                "[fib] {} = false",
                if prefix.addr().is_ipv4() { "ipv4" } else { "ipv6" }
            ));
        }
        let source = sel.source_peer.as_deref().map(|name| PeerInfo {
            name,
            role: sel.source_role.unwrap_or(Role::Peer),
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            asn: 0,
        });
        let route = RouteInput {
            prefix,
            family: Family::unicast_of(&prefix),
            attributes: &sel.attrs,
            next_hop: sel.next_hops.first().map(|g| g.addr),
            source,
            target: None,
            local_asn: 0,
        };
        if let Some((selector, _)) = &self.config.vip
            && selector.matches(&route)
        {
            return Ok(Target::Vip);
        }
        if sel.own {
            return Err("the node's own prefix (announced by Cilium or originate): never installed".into());
        }
        let role = sel.source_role.unwrap_or(Role::Peer);
        if !self.config.install_from.contains(&role) {
            return Err(format!(
                "learned from a {role} peer; [fib] install-from does not list {role}"
            ));
        }
        if let Some(chain) = &self.config.install_policy
            && !matches!(
                policy::evaluate(&chain.refs(), chain.default, &route),
                policy::Verdict::Accept { .. }
            )
        {
            return Err("rejected by the [fib] policy".into());
        }
        Ok(Target::Forward(sel.next_hops.clone()))
    }

    /// Sets what a prefix should become: next hops are resolved, and both
    /// of its keys (our table, the local table) are marked for a write.
    fn set_wanted(&mut self, prefix: IpNet, new: Option<Target>) {
        let old = self.installed.set_wanted(prefix, None);
        if let Some(Wanted::Forward(id)) = old
            && let Some(gone) = self.lists.release(id)
        {
            for a in gone.iter() {
                if let Some(u) = self.users.get_mut(a) {
                    *u -= 1;
                    if *u == 0 {
                        self.users.remove(a);
                        self.resolved.remove(a);
                    }
                }
            }
        }
        let new = new.map(|t| match t {
            Target::Forward(nhs) => {
                let (id, new_list) = self.lists.acquire(&nhs);
                if new_list {
                    for &a in nhs.iter() {
                        *self.users.entry(a).or_default() += 1;
                        if !self.resolved.contains_key(&a) {
                            let r = self.kernel.resolve(a);
                            self.resolved.insert(a, r);
                        }
                    }
                }
                Wanted::Forward(id)
            }
            Target::Vip => Wanted::Vip,
            Target::Reject(kind) => Wanted::Reject(kind),
        });
        let vip = old == Some(Wanted::Vip) || new == Some(Wanted::Vip);
        self.vip_routes =
            self.vip_routes + usize::from(new == Some(Wanted::Vip)) - usize::from(old == Some(Wanted::Vip));
        match new {
            Some(w) => {
                self.installed.set_wanted(prefix, Some(w));
            }
            None => {
                self.unresolved.remove(&prefix);
            }
        }
        self.dirty.insert(RouteKey {
            prefix,
            table: self.config.table,
        });
        // The local table holds only VIP routes: a full table's prefixes
        // have nothing to write there.
        let local = RouteKey {
            prefix,
            table: RT_TABLE_LOCAL,
        };
        if vip || self.installed.contains_key(&local) {
            self.dirty.insert(local);
        }
    }

    /// The configured static routes (at start and on reload): those added
    /// or changed are installed over whatever BGP wants for their prefix,
    /// and a prefix whose static route went gets BGP's route back.
    pub fn set_statics(&mut self, routes: &[StaticRoute]) {
        let family_on = |p: &IpNet| match p {
            IpNet::V4(_) => self.config.ipv4,
            IpNet::V6(_) => self.config.ipv6,
        };
        let new: HashMap<IpNet, Target> = routes
            .iter()
            .filter(|r| family_on(&r.prefix))
            .map(|r| {
                let w = match r.target {
                    StaticTarget::NextHop(a) => Target::Forward([Gateway::from(a)].into_iter().collect()),
                    StaticTarget::Blackhole => Target::Reject(RouteKind::Blackhole),
                    StaticTarget::Unreachable => Target::Reject(RouteKind::Unreachable),
                };
                (r.prefix, w)
            })
            .collect();
        let gone: Vec<IpNet> = self
            .statics
            .keys()
            .filter(|p| !new.contains_key(*p))
            .copied()
            .collect();
        for p in gone {
            self.statics.remove(&p);
            let bgp = self.shadowed.remove(&p);
            self.set_wanted(p, bgp);
        }
        for (p, w) in new {
            if self.statics.get(&p) == Some(&w) {
                continue;
            }
            if !self.statics.contains_key(&p)
                && let Some(bgp) = self.installed.wanted(&p)
            {
                let bgp = self.target_of(bgp);
                self.shadowed.insert(p, bgp);
            }
            self.statics.insert(p, w.clone());
            self.set_wanted(p, Some(w));
        }
    }

    /// Routing converged after start: leftovers that are not wanted go.
    pub fn converged(&mut self) {
        self.converged = true;
        let leftovers = self.installed.leftovers();
        self.dirty.extend(leftovers);
    }

    /// A kernel event, and what the caller should do next.
    pub fn kernel_event(&mut self, event: Event) -> Followup {
        match event {
            Event::Overrun => return Followup::Reload,
            // A device going down, or an address going away, makes the
            // kernel drop nexthop objects and IPv4 routes without a word:
            // reload everything and reconcile.
            Event::Link(l) => {
                let changed = self.kernel.links.get(&l.ifindex).is_none_or(|old| old.up != l.up);
                self.kernel.links.insert(l.ifindex, l);
                if changed {
                    return Followup::Reload;
                }
            }
            Event::LinkGone(ifindex) => {
                self.kernel.links.remove(&ifindex);
                return Followup::Reload;
            }
            Event::Address { added, address } => {
                self.kernel.addresses.retain(|a| a != &address);
                if added {
                    self.kernel.addresses.push(address);
                    self.reresolve_all();
                } else {
                    return Followup::Reload;
                }
            }
            // One of our nexthop objects deleted takes its IPv4 routes with
            // it, unannounced: it is written again, and a scan finds the
            // routes. (Our own deletions are of objects already forgotten.)
            Event::Nexthop { added: false, object } if object.protocol == self.config.protocol => {
                self.nexthops.mark_missing(object.id);
                return Followup::Scan;
            }
            Event::Nexthop { .. } => {}
            Event::Route { added, route } if route.protocol == self.config.protocol => {
                // Our own routes. Notifications do not always look like what
                // we wrote (nexthop ids, IPv6 multipath siblings), so they
                // only prompt a scan; the dump decides what drifted.
                let key = RouteKey {
                    prefix: route.prefix,
                    table: route.table,
                };
                if !added
                    && self
                        .installed
                        .get(&key)
                        .is_some_and(|mine| same_key_kind(&mine.route, &route))
                {
                    return Followup::Scan;
                }
            }
            Event::Route { added, route } => {
                self.kernel.foreign.retain(|r| {
                    !(r.prefix == route.prefix
                        && r.table == route.table
                        && r.metric == route.metric
                        && r.kind == route.kind)
                });
                if added {
                    self.kernel.foreign.push(route);
                } else if self.installed.wanted(&route.prefix).is_some() {
                    // It may have held one of ours out of the kernel.
                    self.dirty.insert(RouteKey {
                        prefix: route.prefix,
                        table: route.table,
                    });
                }
                self.reresolve_all();
            }
        }
        Followup::None
    }

    /// What a prefix's entry stands for.
    fn target_of(&self, w: Wanted) -> Target {
        match w {
            Wanted::Forward(id) => Target::Forward(self.lists.get(id).iter().copied().collect()),
            Wanted::Vip => Target::Vip,
            Wanted::Reject(kind) => Target::Reject(kind),
        }
    }

    /// Gives back the room of tables that emptied (routes withdrawn, or
    /// many prefixes replaced by others: a hash table that sees keys come
    /// and go grows to twice its peak otherwise). True if one shrank, when
    /// the allocator may have memory to return to the system.
    pub fn release_unused(&mut self) -> bool {
        use crate::memory::shrink_map;
        let mut shrunk = self.lists.shrink();
        shrunk |= self.installed.shrink();
        shrunk |= shrink_map(&mut self.resolved) | shrink_map(&mut self.users);
        shrunk | self.nexthops.shrink()
    }

    /// Entries the prefix-keyed tables have room for.
    #[cfg(test)]
    pub fn room(&self) -> usize {
        self.installed.capacity()
    }

    /// Every route of ours, to remove on a stop without graceful restart.
    pub fn withdraw_all(&mut self) -> Vec<Op> {
        let mut ops: Vec<Op> = self
            .installed
            .iter()
            .map(|(_, i)| Op::DeleteRoute(i.route))
            .collect();
        self.installed.clear();
        ops.extend(self.nexthops.drain().into_iter().map(Op::DeleteNexthop));
        ops
    }

    /// The route `key` should be, if any.
    fn desired(&mut self, key: RouteKey) -> Option<KernelRoute> {
        let route = self.desired_route(key)?;
        // NLM_F_REPLACE matches prefix, table and metric whatever the
        // protocol: never write over another daemon's route.
        if self
            .kernel
            .foreign
            .iter()
            .any(|f| f.prefix == route.prefix && f.table == route.table && f.metric == route.metric)
        {
            tracing::warn!(prefix = %route.prefix, table = route.table, metric = route.metric, "another daemon has this route with the same metric; not installing over it");
            return None;
        }
        Some(route)
    }

    fn desired_route(&mut self, key: RouteKey) -> Option<KernelRoute> {
        let wanted = self.installed.wanted(&key.prefix)?;
        match wanted {
            Wanted::Vip => {
                let (_, kind) = self.config.vip.as_ref()?;
                let (table, kind, nexthops) = match kind {
                    VipRoute::Local => {
                        let lo = self
                            .kernel
                            .links
                            .values()
                            .find(|l| l.name == "lo")
                            .map(|l| l.ifindex)
                            .unwrap_or(1);
                        (
                            RT_TABLE_LOCAL,
                            RouteKind::Local,
                            vec![KernelNextHop {
                                gateway: None,
                                ifindex: Some(lo),
                                weight: 1,
                            }],
                        )
                    }
                    VipRoute::Device(name) => {
                        let Some(dev) = self.kernel.links.values().find(|l| &l.name == name) else {
                            tracing::warn!(device = %name, prefix = %key.prefix, "VIP device not found");
                            return None;
                        };
                        (
                            self.config.table,
                            RouteKind::Unicast,
                            vec![KernelNextHop {
                                gateway: None,
                                ifindex: Some(dev.ifindex),
                                weight: 1,
                            }],
                        )
                    }
                    VipRoute::Blackhole => (self.config.table, RouteKind::Blackhole, vec![]),
                };
                (table == key.table).then_some(KernelRoute {
                    prefix: key.prefix,
                    table,
                    protocol: self.config.protocol,
                    kind,
                    // Not 0: IPv6 stores 0 as 1024, and the scan would see a
                    // difference every time.
                    metric: self.config.metric,
                    nexthops,
                    nhid: None,
                    prefsrc: None,
                })
            }
            Wanted::Reject(kind) => (key.table == self.config.table).then(|| KernelRoute {
                prefix: key.prefix,
                table: key.table,
                protocol: self.config.protocol,
                kind,
                metric: self.config.metric,
                nexthops: vec![],
                nhid: None,
                prefsrc: None,
            }),
            Wanted::Forward(id) => {
                if key.table != self.config.table {
                    return None;
                }
                let set = match self.lists.resolved(id) {
                    Some(set) => set.clone(),
                    None => {
                        let mut set: BTreeSet<KernelNextHop> = BTreeSet::new();
                        for nh in self.lists.get(id).iter() {
                            if let Some(r) = self.resolved.get(nh) {
                                set.extend(r.iter().cloned());
                            }
                        }
                        let set: Arc<[KernelNextHop]> = set.into_iter().collect();
                        self.lists.set_resolved(id, set.clone());
                        set
                    }
                };
                if set.is_empty() {
                    self.unresolved.insert(key.prefix);
                    return None;
                }
                self.unresolved.remove(&key.prefix);
                let prefsrc = match key.prefix {
                    IpNet::V4(_) => self.config.source_address_ipv4.map(IpAddr::V4),
                    IpNet::V6(_) => self.config.source_address_ipv6.map(IpAddr::V6),
                };
                Some(KernelRoute {
                    prefix: key.prefix,
                    table: key.table,
                    protocol: self.config.protocol,
                    kind: RouteKind::Unicast,
                    metric: self.config.metric,
                    nexthops: set.to_vec(),
                    nhid: None,
                    prefsrc,
                })
            }
        }
    }

    /// Re-resolves every next hop in use; prefixes whose resolution changed
    /// are rewritten.
    fn reresolve_all(&mut self) {
        let addrs: Vec<Gateway> = self.users.keys().copied().collect();
        let mut changed = HashSet::new();
        for a in addrs {
            let r = self.kernel.resolve(a);
            if self.resolved.get(&a) != Some(&r) {
                self.resolved.insert(a, r);
                changed.insert(a);
            }
        }
        if changed.is_empty() {
            return;
        }
        let hit = self.lists.invalidate(&|nh| changed.contains(nh));
        let table = self.config.table;
        for (prefix, w) in self.installed.wanted_iter() {
            if let Wanted::Forward(id) = w
                && hit.contains(&id)
            {
                self.dirty.insert(RouteKey { prefix, table });
            }
        }
    }
}

/// Equal as far as forwarding goes (which nexthop object carries the next
/// hops does not matter).
fn same_route(a: &KernelRoute, b: &KernelRoute) -> bool {
    a.prefix == b.prefix
        && a.table == b.table
        && a.kind == b.kind
        && a.metric == b.metric
        && a.nexthops == b.nexthops
        && a.prefsrc == b.prefsrc
}

fn same_key_kind(a: &KernelRoute, b: &KernelRoute) -> bool {
    a.prefix == b.prefix && a.table == b.table && a.kind == b.kind && a.metric == b.metric
}
