//! Who a connection is from: accepted connections handed to their peer
//! (a configured address, a range's dynamic neighbour, or the router on an
//! unnumbered peer's link), the MD5 keys the listeners need for them, and
//! the routers found on unnumbered links.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use ipnet::IpNet;
use tokio::net::TcpStream;

use super::Supervisor;
use crate::config::{Config, PeerAddress};
use crate::session::task::{PeerControl, PeerEvent, set_listener_md5};
use crate::unnumbered::task::{DiscoveryControl, Neighbour};

impl Supervisor {
    /// Starts a configured peer: one with an address at once, an
    /// unnumbered one waiting for its router (a range's peers come with
    /// their connections).
    pub(super) async fn add_configured_peer(&mut self, pc: crate::config::PeerConfig) {
        match pc.session.address {
            PeerAddress::Single(ip) => self.add_peer(pc, ip, None).await,
            PeerAddress::Interface(_) => self.add_peer(pc, IpAddr::V6(Ipv6Addr::UNSPECIFIED), None).await,
            PeerAddress::Range(_) => {}
        }
    }

    /// MD5 keys live on the listening sockets too, for connections the peer
    /// opens. `old` are the keys of the previous configuration to remove.
    pub(super) fn set_md5_keys(&self, old: Option<&Config>) {
        for l in &self.listeners {
            for pc in old.map(|c| c.peers.as_slice()).unwrap_or_default() {
                if let (Some(_), Some(net)) = (&pc.session.md5_password, peer_net(&pc.session.address)) {
                    let _ = set_listener_md5(l, net, None);
                }
            }
            for pc in &self.config.peers {
                let (Some(key), Some(net)) = (&pc.session.md5_password, peer_net(&pc.session.address)) else {
                    continue;
                };
                if let Err(e) = set_listener_md5(l, net, Some(key.0.as_bytes())) {
                    tracing::error!(peer = %pc.name, error = %e, "cannot set the MD5 key on the listener");
                }
            }
        }
    }

    /// The interfaces of unnumbered peers, for router discovery.
    pub(super) fn configure_discovery(&self) {
        let interfaces = self
            .config
            .peers
            .iter()
            .filter_map(|p| match &p.session.address {
                PeerAddress::Interface(i) => Some(i.clone()),
                _ => None,
            })
            .collect();
        let _ = self.discovery.send(DiscoveryControl::Configure(interfaces));
    }

    /// The router on an unnumbered peer's link is known (or changed): the
    /// peer dials it from now on, and its BFD session follows it.
    pub(super) fn neighbour_found(&mut self, n: Neighbour) {
        let names: Vec<String> = self
            .config
            .peers
            .iter()
            .filter(|p| p.session.address == PeerAddress::Interface(n.interface.clone()))
            .map(|p| p.name.clone())
            .collect();
        for name in names {
            if self.neighbours.get(&name) == Some(&n.address) {
                continue;
            }
            self.neighbours.insert(name.clone(), n.address);
            if let Some(e) = self.peers.get(&name) {
                let settings = self.settings(&e.config, &name, IpAddr::V6(*n.address.ip()));
                let _ = e
                    .handle
                    .control
                    .send(PeerControl::Reconfigure(Box::new(settings)));
            }
        }
        self.configure_bfd();
    }

    /// The unnumbered peer whose link a connection from a link-local
    /// address came over.
    fn unnumbered_peer(&self, remote: SocketAddrV6) -> Option<String> {
        if !remote.ip().is_unicast_link_local() || remote.scope_id() == 0 {
            return None;
        }
        self.config.peers.iter().find_map(|p| match &p.session.address {
            PeerAddress::Interface(i)
                if nix::net::if_::if_nametoindex(i.as_str()).ok() == Some(remote.scope_id()) =>
            {
                Some(p.name.clone())
            }
            _ => None,
        })
    }

    /// Gives an accepted connection to its peer, or refuses it.
    pub(super) async fn dispatch(&mut self, stream: TcpStream, remote: SocketAddr) {
        let ip = remote.ip().to_canonical();
        if let SocketAddr::V6(v6) = remote
            && let Some(name) = self.unnumbered_peer(v6)
        {
            // The router dialled first: it is the neighbour there.
            let _ = self.discovery.send(DiscoveryControl::Heard {
                ifindex: v6.scope_id(),
                address: *v6.ip(),
            });
            self.neighbour_found(Neighbour {
                interface: match &self.peers.get(&name).map(|e| &e.config.session.address) {
                    Some(PeerAddress::Interface(i)) => i.clone(),
                    _ => String::new(),
                },
                address: SocketAddrV6::new(*v6.ip(), 0, 0, v6.scope_id()),
            });
            if let Some(entry) = self.peers.get(&name)
                && entry.handle.events.try_send(PeerEvent::Incoming(stream)).is_err()
            {
                tracing::warn!(source = %remote, "connection refused: the peer is busy");
            }
            return;
        }
        let name = self
            .peers
            .iter()
            .find(|(_, e)| e.config.session.address == PeerAddress::Single(ip))
            .map(|(n, _)| n.clone());
        let name = match name {
            Some(n) => Some(n),
            None => match self
                .config
                .peers
                .iter()
                .find(|p| {
                    matches!(p.session.address, PeerAddress::Range(_)) && p.session.address.contains(ip)
                })
                .cloned()
            {
                Some(range) => {
                    let parent = range.name.clone();
                    let name = format!("{parent}-{ip}");
                    if !self.peers.contains_key(&name) {
                        let mut pc = range;
                        pc.session.address = PeerAddress::Single(ip);
                        pc.session.passive = true;
                        self.add_peer(pc, ip, Some(parent)).await;
                    }
                    Some(name)
                }
                None => None,
            },
        };
        let Some(entry) = name.and_then(|n| self.peers.get(&n)) else {
            self.board.rejected_connections.fetch_add(1, Relaxed);
            if let Some(line) = self.refusals.refused(ip, Instant::now()) {
                tracing::warn!(source = %ip, "{line}");
            }
            return;
        };
        if entry.handle.events.try_send(PeerEvent::Incoming(stream)).is_err() {
            tracing::warn!(source = %remote, "connection refused: the peer is busy");
        }
    }
}

/// The addresses a peer's MD5 key covers; none for an unnumbered peer
/// (refused by the configuration).
fn peer_net(a: &PeerAddress) -> Option<IpNet> {
    match a {
        PeerAddress::Single(ip) => Some(IpNet::from(*ip)),
        PeerAddress::Range(n) => Some(*n),
        PeerAddress::Interface(_) => None,
    }
}
