//! Export (RFC 4271 §9.1.3): what each peer is sent. The best path of a
//! prefix goes through the peer's export policy, then through the rules
//! RFC 4271 sets for external and internal peers (AS_PATH prepend,
//! LOCAL_PREF and MED handling, next hop), and the result is offered to
//! the peer's Adj-RIB-Out. Routes never go back to the peer they came
//! from, and iBGP routes never to iBGP peers (no route reflection).

use std::borrow::Cow;
use std::collections::HashSet;

use crate::memory::FastMap;
use std::net::IpAddr;
use std::sync::Arc;

use bgp_proto::{AsPath, Attributes, Community, Family, NextHop};
use ipnet::IpNet;
use policy::{NextHopChange, RouteInput, Verdict};

use super::adj_rib_out::Advertised;
use super::best::{PeerId, Source};
use super::{Rib, RibOutput, SessionInfo};
use crate::config::GateAction;

/// Entries of the export cache before it is emptied (a few per attribute
/// set and peer in practice).
const EXPORT_CACHE_LIMIT: usize = 100_000;

/// A received attribute set (by address), the target peer, and whether the
/// route came from another AS.
type ExportKey = (usize, PeerId, bool);

/// Exported attributes per (received set, target peer, from another AS),
/// for routes whose export policy changed nothing: the transformation is
/// done once per attribute set and peer, not once per route.
#[derive(Default)]
pub(super) struct ExportCache {
    entries: FastMap<ExportKey, (Arc<Attributes>, Arc<Attributes>)>,
}

impl ExportCache {
    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Drops the entries of attribute sets no route uses any more (the
    /// cache and the interner hold the only references), so they can go.
    pub(super) fn prune(&mut self) {
        self.entries
            .retain(|_, (source, _)| Arc::strong_count(source) > 2);
        crate::memory::shrink_map(&mut self.entries);
    }

    fn insert(&mut self, key: ExportKey, source: Arc<Attributes>, exported: Arc<Attributes>) {
        if self.entries.len() > EXPORT_CACHE_LIMIT {
            self.entries.clear();
        }
        self.entries.insert(key, (source, exported));
    }
}

impl Rib {
    /// Computes the initial table for a peer, to be followed by End-of-RIB.
    pub(super) fn sync(&mut self, id: PeerId) {
        let Some(peer) = self.peer_mut(id) else { return };
        let Some(session) = &peer.session else { return };
        let families = session.negotiated.families.clone();
        peer.adj_out.start_sync(families);
        let prefixes: Vec<IpNet> = self.loc.keys().collect();
        for p in prefixes {
            self.export_to(id, p);
        }
        self.flush(id);
    }

    /// Recomputes everything a peer should have (after an export policy
    /// change).
    pub(super) fn resync(&mut self, id: PeerId) {
        if !self.peer(id).is_some_and(|p| p.adj_out.is_synced()) {
            return;
        }
        let mut all: HashSet<IpNet> = self.loc.keys().collect();
        if let Some(p) = self.peer(id) {
            all.extend(p.adj_out.advertised().copied());
        }
        for p in all {
            self.export_to(id, p);
        }
        self.flush(id);
    }

    /// Decides what peer `id` should have for `prefix` and queues it when
    /// that differs from what it has.
    pub(super) fn export_to(&mut self, id: PeerId, prefix: IpNet) {
        let want = self.export_decision(id, prefix);
        if let Some(peer) = self.peer_mut(id) {
            peer.adj_out.offer(prefix, want);
        }
    }

    pub(super) fn export_decision(&mut self, id: PeerId, prefix: IpNet) -> Option<Advertised> {
        let family = Family::unicast_of(&prefix);
        let target = self.peer(id)?;
        let session = target.session.as_ref()?;
        if !target.negotiated_family(family) {
            return None;
        }
        let dest = self.loc.get(&prefix)?;
        let best = dest.paths.first().filter(|p| p.in_set)?;
        // A path a health check holds back goes out as a drained one.
        let shutdown = match best.gated {
            Some(GateAction::GracefulShutdown(prepend)) => self.drain.or(Some(prepend)),
            _ => self.drain,
        };
        let source = match best.source {
            // Never back to the peer it came from.
            Source::Peer(s) if s == id => return None,
            Source::Peer(s) => {
                let sp = self.peer(s)?;
                // No route reflection: iBGP routes never go to iBGP peers.
                if !sp.ebgp() && !target.ebgp() {
                    return None;
                }
                sp.info()
            }
            Source::Local => None,
        };
        let route = RouteInput {
            prefix,
            family,
            attributes: best.attrs(),
            next_hop: Some(best.next_hop().addr()),
            source,
            target: target.info(),
            local_asn: target.setup.local_asn,
        };
        let Verdict::Accept { attributes, next_hop } =
            policy::evaluate(&target.setup.export.refs(), target.setup.export.default, &route)
        else {
            return None;
        };
        let ebgp = target.ebgp();
        let from_external = source.is_some_and(|s| s.asn != target.setup.local_asn);
        let from_cilium = source.is_some_and(|s| s.role.is_local_speaker());
        // Cilium's next hop is ::1 or 127.0.0.1: it is always rewritten.
        let own = || self_next_hop(family, session);
        let nh = match next_hop {
            NextHopChange::Address(a) => Some(NextHop::from(a)),
            NextHopChange::SelfAddress | NextHopChange::PeerAddress => own(),
            NextHopChange::Unchanged
                if target.setup.next_hop_self || ebgp || from_cilium || source.is_none() =>
            {
                own()
            }
            NextHopChange::Unchanged => Some(*best.next_hop()),
        };
        let Some(nh) = nh else {
            tracing::debug!(%prefix, peer = %target.setup.name, "no usable next hop for this family on the session; not exported");
            return None;
        };
        // Attributes that policy left alone are transformed the same way for
        // every route that shares them: do it once per set and peer.
        let key = (matches!(attributes, Cow::Borrowed(_)) && shutdown == self.drain).then_some((
            Arc::as_ptr(best.attrs()) as usize,
            id,
            from_external,
        ));
        if let Some(k) = key
            && let Some((_, out)) = self.export_cache.entries.get(&k)
        {
            return Some((out.clone(), nh));
        }
        let source_attrs = best.attrs().clone();
        let received_med = best.attrs().med;
        let local_asn = target.setup.local_asn;
        let mut attrs = attributes.into_owned();
        if ebgp {
            // RFC 4271 §5.1.5: LOCAL_PREF is never sent to external peers;
            // §5.1.4: a MED learned from another AS is not passed on
            // (unless export policy set one).
            attrs.local_pref = None;
            if from_external && attrs.med == received_med {
                attrs.med = None;
            }
            attrs.originator_id = None;
            attrs.cluster_list.clear();
            attrs
                .as_path
                .get_or_insert_with(AsPath::new)
                .prepend(local_asn, 1);
        } else if attrs.local_pref.is_none() {
            attrs.local_pref = Some(100);
        }
        if let Some(prepend) = shutdown {
            // RFC 8326 §4: the community on every path, and the lowest
            // preference the session can carry.
            if !attrs.communities.contains(&Community::GRACEFUL_SHUTDOWN) {
                attrs.communities.push(Community::GRACEFUL_SHUTDOWN);
            }
            if ebgp {
                if prepend > 0 {
                    attrs
                        .as_path
                        .get_or_insert_with(AsPath::new)
                        .prepend(local_asn, usize::from(prepend));
                }
            } else {
                attrs.local_pref = Some(0);
            }
        }
        let out = self.interner.intern(attrs);
        if let Some(k) = key {
            // Holding the source set keeps its address from being reused
            // while the entry exists.
            self.export_cache.insert(k, source_attrs, out.clone());
        }
        Some((out, nh))
    }

    /// Builds and hands out the next batch for a peer.
    pub(super) fn flush(&mut self, id: PeerId) {
        let Some(peer) = self.peer_mut(id) else { return };
        if let Some(batch) = peer.adj_out.next_batch(&peer.setup.name) {
            self.out.push(RibOutput::Send(id, batch));
        }
    }
}

/// Our address on the session, as a next hop for `family` (RFC 8950 for
/// IPv4 over IPv6 when negotiated; an IPv4-mapped address for IPv6 over
/// IPv4).
fn self_next_hop(family: Family, session: &SessionInfo) -> Option<NextHop> {
    match (family, session.local_address) {
        // Over link-local addresses (unnumbered), as FRR sends it: the
        // link-local address in both places, there being no global one on
        // the link (RFC 2545 §3 wants one; FRR and those who peer with it
        // take this form).
        (_, IpAddr::V6(a))
            if a.is_unicast_link_local()
                && (family == Family::IPV6_UNICAST || session.negotiated.extended_next_hop) =>
        {
            Some(NextHop::V6 {
                global: a,
                link_local: Some(a),
            })
        }
        (f, IpAddr::V4(a)) if f == Family::IPV4_UNICAST => Some(NextHop::V4(a)),
        (_, IpAddr::V6(a)) if family == Family::IPV6_UNICAST || session.negotiated.extended_next_hop => Some(
            NextHop::v6(a.to_ipv4_mapped().map_or(a, |v4| v4.to_ipv6_mapped())),
        ),
        (f, IpAddr::V6(a)) if f == Family::IPV4_UNICAST => a.to_ipv4_mapped().map(NextHop::V4),
        (_, IpAddr::V4(a)) => Some(NextHop::v6(a.to_ipv6_mapped())),
        _ => None,
    }
}
