//! Adj-RIB-In (RFC 4271 §3.2): what each peer sent, and what became of
//! it. Every received path is validated (RFC 4271 §6.3, §9.1.2 loops) and
//! run through the peer's import policy; an accepted one enters the
//! Loc-RIB. With soft reconfiguration the pre-policy copy is kept, so a
//! policy change re-runs import without asking the peer again.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use bgp_proto::notification::CeaseSubcode;
use bgp_proto::{Attributes, Family, NextHop, Notification};
use ipnet::IpNet;
use policy::{NextHopChange, RouteInput, Verdict};

use super::adj_rib_out::Advertised;
use super::best::{Path, PathRoute, PeerId, Source};
use super::{Rib, RibOutput, RibPeer};
use crate::config::MaxPrefixAction;
use crate::memory::{FastMap, FastSet};

/// How many prefixes of a peer have its path in the Loc-RIB, per family
/// (max-prefix limits are per family), counted by the Loc-RIB as paths
/// come and go. Which ones the Loc-RIB itself says ([`Rib::accepted`]): a
/// set of them per peer cost a full table 17 MB.
#[derive(Debug, Default)]
pub(super) struct Accepted {
    ipv4: usize,
    ipv6: usize,
}

impl Accepted {
    pub(super) fn add(&mut self, prefix: &IpNet) {
        match prefix {
            IpNet::V4(_) => self.ipv4 += 1,
            IpNet::V6(_) => self.ipv6 += 1,
        }
    }

    pub(super) fn sub(&mut self, prefix: &IpNet) {
        match prefix {
            IpNet::V4(_) => self.ipv4 -= 1,
            IpNet::V6(_) => self.ipv6 -= 1,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ipv4 + self.ipv6
    }

    pub(super) fn count(&self, family: Family) -> usize {
        match family {
            Family::IPV4_UNICAST => self.ipv4,
            Family::IPV6_UNICAST => self.ipv6,
            _ => 0,
        }
    }
}

/// A received path that is not valid (RFC 4271 §9.1.2 loop, §6.3 first
/// AS, RFC 7606 treat-as-withdraw): never imported, kept to be shown.
pub(super) struct InvalidPath {
    pub(super) attrs: Arc<Attributes>,
    pub(super) next_hop: Option<NextHop>,
    /// Shared by every prefix of the UPDATE.
    pub(super) reason: Arc<str>,
}

/// One peer's Adj-RIB-In.
pub(super) struct AdjRibIn {
    /// The pre-policy copy (soft reconfiguration), of the paths the
    /// Loc-RIB does not hold as received: those import policy rejected or
    /// changed. An accepted path that policy left alone is its own copy
    /// (see [`Rib::pre_policy`]), so a table that import policy passes
    /// through unchanged costs nothing here.
    pub(super) pre: Option<FastMap<IpNet, Advertised>>,
    /// Prefixes whose path from this peer is in the Loc-RIB.
    pub(super) accepted: Accepted,
    /// Prefixes received and rejected by import policy or a max-prefix
    /// limit.
    pub(super) rejected: FastSet<IpNet>,
    /// Prefixes last received with an invalid path, treated as withdrawn.
    pub(super) invalid: FastMap<IpNet, InvalidPath>,
    /// Accepted prefixes kept for a restarting peer (RFC 4724 §4.2) or
    /// during an enhanced route refresh (RFC 7313 §4), until re-sent.
    pub(super) stale: FastSet<IpNet>,
    /// Families over their max-prefix limit, to log a crossing once.
    pub(super) over_limit: HashSet<Family>,
}

impl AdjRibIn {
    pub(super) fn new(soft_reconfiguration: bool) -> Self {
        AdjRibIn {
            pre: soft_reconfiguration.then(FastMap::default),
            accepted: Accepted::default(),
            over_limit: HashSet::new(),
            rejected: FastSet::default(),
            invalid: FastMap::default(),
            stale: FastSet::default(),
        }
    }

    /// Gives back room the sets no longer need.
    pub(super) fn shrink(&mut self) -> bool {
        let mut shrunk = false;
        if let Some(pre) = &mut self.pre {
            shrunk |= crate::memory::shrink_map(pre);
        }
        shrunk |= crate::memory::shrink_set(&mut self.rejected);
        shrunk |= crate::memory::shrink_map(&mut self.invalid);
        shrunk |= crate::memory::shrink_set(&mut self.stale);
        shrunk
    }

    /// Prefixes received, whatever became of them.
    pub(super) fn received(&self) -> usize {
        self.accepted.len() + self.rejected.len() + self.invalid.len()
    }

    /// Forgets the paths that are not in the Loc-RIB: kept for a
    /// restarting peer are only the accepted ones (it sends the rest
    /// again, or no longer has them).
    pub(super) fn forget_unaccepted(&mut self) {
        if let Some(pre) = &mut self.pre {
            for p in &self.rejected {
                pre.remove(p);
            }
        }
        self.rejected.clear();
        self.invalid.clear();
    }
}

impl RibPeer {
    /// A next hop on this node (loopback) is refused unless
    /// `accept-local-next-hop` allows it.
    pub(super) fn refuses_next_hop(&self, nh: NextHop) -> bool {
        let local = match nh.addr() {
            IpAddr::V4(a) => a.is_loopback(),
            IpAddr::V6(a) => a.is_loopback() || nh.ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        };
        local && !self.setup.accept_local_next_hop
    }

    /// A received path as import policy sees it.
    pub(super) fn import_input<'a>(
        &'a self,
        prefix: IpNet,
        attrs: &'a Attributes,
        nh: NextHop,
    ) -> RouteInput<'a> {
        RouteInput {
            prefix,
            family: Family::unicast_of(&prefix),
            attributes: attrs,
            next_hop: Some(nh.addr()),
            source: self.info(),
            target: None,
            local_asn: self.setup.local_asn,
        }
    }

    /// With `discard-excess`, a new prefix of a family at its limit is not
    /// accepted (those already accepted may still change).
    /// `accepted`: the prefix has a path from this peer already.
    fn discards(&mut self, prefix: &IpNet, accepted: bool) -> bool {
        let Some(max) = &self.setup.max_prefix else {
            return false;
        };
        let family = Family::unicast_of(prefix);
        let Some(limit) = max.limit(family) else {
            return false;
        };
        if max.action != MaxPrefixAction::DiscardExcess
            || accepted
            || self.adj_in.accepted.count(family) < limit as usize
        {
            return false;
        }
        if self.adj_in.over_limit.insert(family) {
            tracing::warn!(peer = %self.setup.name, %family, limit, "maximum prefixes reached; new prefixes are discarded");
        }
        true
    }
}

impl Rib {
    /// Checks that apply to the whole UPDATE: RFC 4271 §6.3 first AS, and
    /// our own AS in the path (a loop, RFC 4271 §9.1.2). Says what is
    /// wrong, if anything.
    pub(super) fn path_problem(&self, id: PeerId, attrs: &Attributes) -> Option<String> {
        let peer = self.peer(id)?;
        let path = attrs.as_path.as_ref()?;
        for asn in [peer.setup.local_asn, self.settings.local_asn] {
            if path.contains(asn) {
                return Some(format!("AS loop: our AS {asn} is in the AS path"));
            }
        }
        if let Some(s) = &peer.session
            && peer.ebgp()
            && path.neighbor_asn() != Some(s.negotiated.peer_asn)
        {
            tracing::warn!(peer = %peer.setup.name, path = %path, "AS path does not start with the peer's AS; treated as withdrawn");
            return Some(format!(
                "AS path does not start with the peer's AS {}",
                s.negotiated.peer_asn
            ));
        }
        None
    }

    /// A path that is not valid: treated as withdrawn, and kept to be
    /// shown with why.
    pub(super) fn invalid(&mut self, id: PeerId, prefix: IpNet, path: InvalidPath) {
        self.withdraw(id, prefix);
        if let Some(peer) = self.peer_mut(id) {
            peer.adj_in.invalid.insert(prefix, path);
        }
    }

    pub(super) fn announce(&mut self, id: PeerId, prefix: IpNet, attrs: Arc<Attributes>, nh: NextHop) {
        let Some(peer) = self.peer_mut(id) else { return };
        if !peer.adj_in.invalid.is_empty() {
            peer.adj_in.invalid.remove(&prefix);
        }
        self.import(id, prefix, attrs, nh);
    }

    pub(super) fn withdraw(&mut self, id: PeerId, prefix: IpNet) {
        let Some(peer) = self.peer_mut(id) else { return };
        if let Some(pre) = &mut peer.adj_in.pre {
            pre.remove(&prefix);
        }
        peer.adj_in.rejected.remove(&prefix);
        peer.adj_in.stale.remove(&prefix);
        if !peer.adj_in.invalid.is_empty() {
            peer.adj_in.invalid.remove(&prefix);
        }
        self.remove_path(prefix, Source::Peer(id));
    }

    /// Runs validation and import policy on one received path.
    pub(super) fn import(&mut self, id: PeerId, prefix: IpNet, attrs: Arc<Attributes>, nh: NextHop) {
        let Some(peer) = self.peer(id) else { return };
        let Some(session) = &peer.session else { return };
        let verdict = if peer.refuses_next_hop(nh) {
            Verdict::Reject
        } else {
            let route = peer.import_input(prefix, &attrs, nh);
            policy::evaluate(&peer.setup.import.refs(), peer.setup.import.default, &route)
        };
        let remote = session.remote_address;
        let received = (attrs.clone(), nh);
        match verdict {
            Verdict::Reject => {
                let Some(peer) = self.peer_mut(id) else { return };
                if let Some(pre) = &mut peer.adj_in.pre {
                    pre.insert(prefix, received);
                }
                peer.adj_in.rejected.insert(prefix);
                peer.adj_in.stale.remove(&prefix);
                self.remove_path(prefix, Source::Peer(id));
            }
            Verdict::Accept { attributes, next_hop } => {
                let attrs = match attributes {
                    Cow::Borrowed(_) => attrs,
                    Cow::Owned(a) => self.interner.intern(a),
                };
                let nh = match next_hop {
                    NextHopChange::Address(a) => NextHop::from(a),
                    NextHopChange::PeerAddress => NextHop::from(remote),
                    NextHopChange::SelfAddress | NextHopChange::Unchanged => nh,
                };
                let unchanged = Arc::ptr_eq(&attrs, &received.0) && nh == received.1;
                let accepted = self.has_path(id, &prefix);
                let Some(peer) = self.peer_mut(id) else { return };
                if peer.discards(&prefix, accepted) {
                    if let Some(pre) = &mut peer.adj_in.pre {
                        pre.insert(prefix, received);
                    }
                    peer.adj_in.rejected.insert(prefix);
                    return;
                }
                if let Some(pre) = &mut peer.adj_in.pre {
                    if unchanged {
                        pre.remove(&prefix);
                    } else {
                        pre.insert(prefix, received);
                    }
                }
                peer.adj_in.rejected.remove(&prefix);
                peer.adj_in.stale.remove(&prefix);
                let route = self.routes.intern(PathRoute { attrs, next_hop: nh });
                self.upsert_path(
                    prefix,
                    Path {
                        source: Source::Peer(id),
                        route,
                        stale: false,
                        in_set: false,
                        gated: None,
                        since: 0,
                    },
                );
            }
        }
    }

    /// The peer's paths as it sent them (soft reconfiguration), those
    /// `wanted` keeps: the kept copies of rejected and changed paths, and
    /// the Loc-RIB's own of the rest. None without soft reconfiguration.
    pub(super) fn pre_policy(
        &self,
        id: PeerId,
        wanted: impl Fn(&IpNet) -> bool,
    ) -> Option<Vec<(IpNet, Advertised)>> {
        let peer = self.peer(id)?;
        let pre = peer.adj_in.pre.as_ref()?;
        let mut out: Vec<(IpNet, Advertised)> = pre
            .iter()
            .filter(|(p, _)| wanted(p))
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        for prefix in self.accepted(id, |_| true).into_iter().filter(|p| wanted(p)) {
            if pre.contains_key(&prefix) {
                continue;
            }
            if let Some(path) = self
                .loc
                .get(&prefix)
                .and_then(|d| d.paths.iter().find(|x| x.source == Source::Peer(id)))
            {
                out.push((prefix, (path.attrs().clone(), *path.next_hop())));
            }
        }
        Some(out)
    }

    /// Max-prefix (RFC 4486), after an UPDATE: a family over its limit is
    /// logged once per crossing, or ends the session with Cease / Maximum
    /// Number of Prefixes Reached. That goes as a Hard Reset only when both
    /// sides sent the N bit (RFC 8538 §5): only then would a plain Cease
    /// leave the routes stale.
    pub(super) fn check_max_prefix(&mut self, id: PeerId) {
        let Some(peer) = self.peer_mut(id) else { return };
        let Some(max) = peer.setup.max_prefix.clone() else {
            return;
        };
        for (family, limit) in max.limits {
            let accepted = peer.adj_in.accepted.count(family);
            if accepted as u64 <= u64::from(limit) {
                // With discard-excess, the limit itself is the crossing.
                if max.action != MaxPrefixAction::DiscardExcess || (accepted as u64) < u64::from(limit) {
                    peer.adj_in.over_limit.remove(&family);
                }
                continue;
            }
            let first = peer.adj_in.over_limit.insert(family);
            match max.action {
                MaxPrefixAction::Warn | MaxPrefixAction::DiscardExcess => {
                    if first {
                        tracing::warn!(peer = %peer.setup.name, %family, limit, accepted, "maximum prefixes exceeded");
                    }
                }
                MaxPrefixAction::Reset => {
                    tracing::warn!(peer = %peer.setup.name, %family, limit, accepted, "maximum prefixes exceeded, resetting session");
                    // RFC 4486 §4: the data names the family and the limit.
                    let mut data = Vec::with_capacity(7);
                    data.extend_from_slice(&family.afi.0.to_be_bytes());
                    data.push(family.safi.0);
                    data.extend_from_slice(&limit.to_be_bytes());
                    let cease = Notification::new(
                        bgp_proto::notification::ErrorCode::Cease,
                        CeaseSubcode::MaximumPrefixesReached,
                        data,
                    );
                    let n_bit = peer
                        .session
                        .as_ref()
                        .and_then(|s| s.negotiated.graceful_restart.as_ref())
                        .is_some_and(|gr| gr.notification);
                    let n = if n_bit {
                        Notification::hard_reset(&cease)
                    } else {
                        cease
                    };
                    self.out.push(RibOutput::Reset(id, n, max.restart_after));
                    return;
                }
            }
        }
    }

    /// Removes every path of `id` in the families `which` selects.
    pub(super) fn drop_routes(&mut self, id: PeerId, which: impl Fn(Family) -> bool) {
        let gone = self.accepted(id, &which);
        let Some(peer) = self.peer_mut(id) else { return };
        for p in &gone {
            peer.adj_in.stale.remove(p);
        }
        peer.adj_in.rejected.retain(|p| !which(Family::unicast_of(p)));
        peer.adj_in.invalid.retain(|p, _| !which(Family::unicast_of(p)));
        if let Some(pre) = &mut peer.adj_in.pre {
            pre.retain(|p, _| !which(Family::unicast_of(p)));
        }
        for p in gone {
            self.remove_path(p, Source::Peer(id));
        }
    }
}
