//! Health-gated advertisement in the RIB. While a health check fails, the
//! node's own paths (from Cilium) that its gate covers are held back:
//!
//! - `withdraw`: the path is never selected, so it is withdrawn from every
//!   peer; another node's path to the VIP, if any, becomes the node's own
//!   choice, and the FIB replaces the VIP's local route with it.
//! - `graceful-shutdown`: the path stays selected and advertised, with
//!   GRACEFUL_SHUTDOWN (RFC 8326) and the lowest preference, as a drain
//!   does, so the router keeps it only as a last resort; the node itself
//!   forwards over any other path (`Rib::selected`), so its local VIP
//!   route gives way too, and keeps its own when there is no other.
//!
//! The Cilium session, and what it sent, stay as they are: recovery needs
//! no new UPDATE.

use std::net::{IpAddr, Ipv4Addr};

use bgp_proto::Family;
use ipnet::IpNet;
use policy::{PeerInfo, RouteInput};

use super::best::{Path, Source};
use super::loc_rib::snapshot;
use super::{Rib, RibOutput, RibPeer};
use crate::config::{Gate, GateAction};

impl Rib {
    /// The gates of the checks failing now (all of them, each time).
    pub fn set_health_gates(&mut self, gates: Vec<Gate>) -> Vec<RibOutput> {
        if self.gates == gates {
            return Vec::new();
        }
        self.gates = gates;
        self.tick();
        let (gates, peers, settings) = (&self.gates, &self.peers, &self.settings);
        let peer_of = |s| super::loc_rib::path_peer(peers, settings, s);
        for (prefix, dest) in self.loc.iter_mut() {
            let before = snapshot(dest);
            let mut regated = false;
            for path in dest.paths.iter_mut() {
                let g = gate(gates, peers, &prefix, path);
                if path.gated != g {
                    path.gated = g;
                    regated = true;
                }
            }
            if regated {
                dest.select(&settings.multipath, &peer_of);
                if snapshot(dest) != before {
                    self.changed.push(prefix);
                }
            }
        }
        self.propagate();
        self.take_out()
    }

    /// What the failing gates do to a path about to enter the Loc-RIB.
    pub(super) fn gate_for(&self, prefix: &IpNet, path: &Path) -> Option<GateAction> {
        gate(&self.gates, &self.peers, prefix, path)
    }
}

/// The strongest action of the failing gates that cover a path: only
/// paths from Cilium peers (the node's own VIPs) are gated.
fn gate(gates: &[Gate], peers: &[Option<RibPeer>], prefix: &IpNet, path: &Path) -> Option<GateAction> {
    if gates.is_empty() {
        return None;
    }
    let Source::Peer(id) = path.source else {
        return None;
    };
    let peer = peers.get(id.0 as usize)?.as_ref()?;
    if !peer.setup.role.is_local_speaker() {
        return None;
    }
    let route = RouteInput {
        prefix: *prefix,
        family: Family::unicast_of(prefix),
        attributes: path.attrs(),
        next_hop: Some(path.next_hop().addr()),
        source: Some(PeerInfo {
            name: &peer.setup.name,
            role: peer.setup.role,
            address: peer
                .path_peer
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.address),
            asn: peer.path_peer.map_or(0, |p| p.asn),
        }),
        target: None,
        local_asn: peer.setup.local_asn,
    };
    gates
        .iter()
        .filter(|g| g.selector.matches(&route))
        .map(|g| g.action)
        .max()
}
