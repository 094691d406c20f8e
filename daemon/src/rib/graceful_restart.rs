//! Graceful restart (RFC 4724, with RFC 8538's notification extension)
//! in both roles. As helper: a peer whose session ended gracefully keeps
//! its routes, marked stale, until it re-sends them and its End-of-RIB, or
//! its timer runs out. As restarting speaker: after tern's own restart,
//! selection results are neither exported nor installed until every
//! participating peer has sent End-of-RIB (or `select-defer-time` passes).
//! The same condition marks the first convergence after start.

use std::time::{Duration, Instant};

use bgp_proto::Family;
use ipnet::IpNet;

use super::best::{PeerId, Source};
use super::{Rib, RibOutput};

/// A peer's graceful restart state, as helper.
#[derive(Debug)]
pub(super) enum Restart {
    None,
    /// The peer's session is down; its routes are stale until this instant.
    Helping {
        until: Instant,
    },
    /// The peer is back; its stale routes go at End-of-RIB or this instant.
    Refreshing {
        until: Instant,
    },
}

impl Rib {
    pub(super) fn end_of_rib(&mut self, id: PeerId, family: Family) {
        let Some(peer) = self.peer_mut(id) else { return };
        peer.eor_received.insert(family);
        tracing::debug!(peer = %peer.setup.name, %family, "End-of-RIB received");
        if matches!(peer.restart, Restart::Refreshing { .. }) {
            self.sweep_stale(id, |f| f == family);
            if let Some(peer) = self.peer_mut(id)
                && peer.adj_in.stale.is_empty()
            {
                peer.restart = Restart::None;
            }
        }
        self.check_deferral();
        self.propagate();
    }

    pub(super) fn mark_stale(&mut self, id: PeerId) {
        let all = self.accepted(id, |_| true);
        self.mark_stale_prefixes(id, &all);
    }

    pub(super) fn mark_stale_prefixes(&mut self, id: PeerId, prefixes: &[IpNet]) {
        for p in prefixes {
            if let Some(d) = self.loc.get_mut(p) {
                for path in d.paths.iter_mut().filter(|path| path.source == Source::Peer(id)) {
                    path.stale = true;
                }
            }
        }
        if let Some(peer) = self.peer_mut(id) {
            peer.adj_in.stale.extend(prefixes.iter().copied());
        }
    }

    /// Removes the stale routes of `id` in families `which` selects.
    pub(super) fn sweep_stale(&mut self, id: PeerId, which: impl Fn(Family) -> bool) {
        let Some(peer) = self.peer_mut(id) else { return };
        let gone: Vec<IpNet> = peer
            .adj_in
            .stale
            .iter()
            .filter(|p| which(Family::unicast_of(p)))
            .copied()
            .collect();
        for p in &gone {
            peer.adj_in.stale.remove(p);
            if let Some(pre) = &mut peer.adj_in.pre {
                pre.remove(p);
            }
        }
        if !gone.is_empty() {
            tracing::info!(peer = %peer.setup.name, routes = gone.len(), "stale routes removed");
        }
        for p in gone {
            self.remove_path(p, Source::Peer(id));
        }
    }

    pub(super) fn converge(&mut self) {
        if self.converge_by.take().is_none() {
            return;
        }
        if std::mem::take(&mut self.fib_held) {
            // Everything the FIB was not told, before it may sweep (and
            // what changed in this event with it: see `propagate`).
            self.fib_dumped = true;
            let mut all: Vec<IpNet> = self.loc.keys().collect();
            all.sort_unstable();
            for prefix in all {
                let selected = self.selected(&prefix);
                self.out
                    .push(RibOutput::LocRib(super::LocRibChange { prefix, selected }));
            }
        }
        self.out.push(RibOutput::Converged);
    }

    /// RFC 4724 §4.1: after our restart, selection waits for End-of-RIB
    /// from every peer that takes part, except those that restarted too
    /// (they wait for ours). Convergence, which lets the FIB remove what
    /// the previous run installed and nobody re-sent, waits for those as
    /// well: they send their tables once they have our End-of-RIB, and
    /// until then the routes they gave the previous run must stay. (FRR
    /// sets the Restart State bit for `restart-time` after it starts, so a
    /// router that came up shortly before tern restarted is one of them.)
    pub(super) fn check_deferral(&mut self) {
        if self.defer_until.is_none() && self.converge_by.is_none() {
            return;
        }
        let clock = self.clock;
        let missing_eor = |p: &super::RibPeer, count_restarting: bool| {
            if !p.setup.wait_for_end_of_rib {
                return false;
            }
            match &p.session {
                None => true,
                Some(s) => match &s.negotiated.graceful_restart {
                    // A peer without graceful restart mostly sends its
                    // table and End-of-RIB all the same; convergence before
                    // it would remove what it has not re-sent yet. One that
                    // sends none counts once quiet; a `restart-hold`
                    // speaker (which never does) at once.
                    None if p.setup.restart_hold => false,
                    None => {
                        clock < p.heard_at + super::QUIET_WITHOUT_END_OF_RIB
                            && s.negotiated.families.iter().any(|f| !p.eor_received.contains(f))
                    }
                    Some(gr) if gr.restarting && !count_restarting => false,
                    Some(_) => s.negotiated.families.iter().any(|f| !p.eor_received.contains(f)),
                },
            }
        };
        let selection_waits = self.peers.iter().flatten().any(|p| missing_eor(p, false));
        if !selection_waits && self.defer_until.is_some() {
            tracing::info!("End-of-RIB received from every peer; ending deferral");
            self.end_deferral();
        }
        if !self.peers.iter().flatten().any(|p| missing_eor(p, true)) {
            self.converge();
        }
    }

    /// When a peer without graceful restart that sends no End-of-RIB will
    /// have been quiet long enough to count (see `check_deferral`).
    pub(super) fn quiet_deadline(&self) -> Option<Instant> {
        self.converge_by?;
        self.peers
            .iter()
            .flatten()
            .filter(|p| self.waits_for_quiet(p))
            .map(|p| {
                let at = p.heard_at + super::QUIET_WITHOUT_END_OF_RIB;
                self.epoch + Duration::from_secs(u64::from(at))
            })
            .min()
    }

    fn waits_for_quiet(&self, p: &super::RibPeer) -> bool {
        p.setup.wait_for_end_of_rib
            && !p.setup.restart_hold
            && p.session.as_ref().is_some_and(|s| {
                s.negotiated.graceful_restart.is_none()
                    && s.negotiated.families.iter().any(|f| !p.eor_received.contains(f))
            })
    }

    pub(super) fn end_deferral(&mut self) {
        self.defer_until = None;
        // Everything selected so far reaches the FIB now.
        self.changed.extend(self.loc.keys());
        let ids: Vec<PeerId> = (0..self.peers.len())
            .map(|i| PeerId(i as u32))
            .filter(|id| self.peer(*id).is_some_and(|p| p.session.is_some()))
            .collect();
        for id in ids {
            self.sync(id);
        }
    }
}
