//! How the configuration becomes running peers: the OPEN each one offers,
//! when it dials, and how the RIB treats it. The supervisor builds every
//! peer through here, and so do the virtual-time tests, so both run the
//! same translation.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp_proto::capability::{GracefulRestart, GracefulRestartFamily};
use ipnet::IpNet;

use crate::config::{Config, PeerAddress, PeerConfig};
use crate::rib::{PeerSetup, RibSettings};
use crate::session::negotiate::Offer;
use crate::session::peer::Timing;

/// The longest wait between connection attempts after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One run of tern: its configuration and what it found at start.
pub struct NodeSetup<'a> {
    pub config: &'a Config,
    pub router_id: Ipv4Addr,
    pub hostname: Option<&'a str>,
    /// tern restarted with graceful restart (RFC 4724 §4.1).
    pub restarting: bool,
}

impl NodeSetup<'_> {
    pub fn rib_settings(&self) -> RibSettings {
        RibSettings {
            local_asn: self.config.asn,
            router_id: self.router_id,
            multipath: self.config.multipath.clone(),
            graceful_restart: self.config.graceful_restart.clone(),
            restarting: self.restarting,
        }
    }

    /// Graceful restart is on for this peer: it is advertised, and a session
    /// end keeps the peer's routes when it agreed.
    pub fn graceful_restart(&self, pc: &PeerConfig) -> bool {
        self.config.graceful_restart.enabled && pc.session.graceful_restart
    }

    /// What goes into our OPEN for this peer.
    pub fn offer(&self, pc: &PeerConfig) -> Offer {
        let gr = self.graceful_restart(pc).then(|| GracefulRestart {
            restarting: self.restarting,
            notification: true,
            restart_time: self.config.graceful_restart.restart_time,
            // F bit: what we advertise is forwarded by the node whether or
            // not tern runs, so after a restart it is preserved.
            families: pc
                .session
                .families
                .iter()
                .map(|f| GracefulRestartFamily {
                    family: *f,
                    forwarding: self.restarting,
                })
                .collect(),
        });
        Offer {
            local_asn: pc.session.local_asn.unwrap_or(self.config.asn),
            router_id: self.router_id,
            remote_asn: pc.session.remote_asn,
            hold_time: pc.session.hold_time,
            keepalive: pc.session.keepalive,
            families: pc.session.families.clone(),
            extended_next_hop: pc.session.extended_next_hop,
            extended_message: pc.session.extended_message,
            graceful_restart: gr,
            hostname: self.hostname.map(str::to_owned),
        }
    }

    pub fn timing(pc: &PeerConfig) -> Timing {
        Timing {
            passive: pc.session.passive,
            connect_retry: pc.session.connect_retry,
            max_backoff: MAX_BACKOFF,
        }
    }

    /// How the RIB treats the peer (`name` differs from the configured one
    /// for dynamic neighbours).
    pub fn peer_setup(&self, pc: &PeerConfig, name: &str) -> PeerSetup {
        PeerSetup {
            name: name.into(),
            role: pc.session.role,
            local_asn: pc.session.local_asn.unwrap_or(self.config.asn),
            import: pc.routing.import.clone(),
            export: pc.routing.export.clone(),
            next_hop_self: pc.routing.next_hop_self,
            accept_local_next_hop: pc.routing.accept_local_next_hop,
            soft_reconfiguration: pc.routing.soft_reconfiguration,
            max_prefix: pc.routing.max_prefix.clone(),
            // A range's neighbours may never come back; a configured
            // address or an unnumbered link's router will.
            restart_hold: pc.session.restart_hold.is_some(),
            wait_for_end_of_rib: self.graceful_restart(pc)
                && matches!(
                    pc.session.address,
                    PeerAddress::Single(_) | PeerAddress::Interface(_)
                ),
        }
    }
}

/// A router ID when none is configured: an IPv4 /32 we originate (the node
/// loopback), else an IPv4 local address of a peer, else the first global
/// IPv4 address of the host.
pub fn derive_router_id(config: &Config) -> Option<Ipv4Addr> {
    let from_originate = config.originate.iter().find_map(|p| match p {
        IpNet::V4(n) if n.prefix_len() == 32 => Some(n.addr()),
        _ => None,
    });
    let from_peers = || {
        config.peers.iter().find_map(|p| match p.session.local_address {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        })
    };
    let from_host = || {
        nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
            let a = ifa.address?.as_sockaddr_in()?.ip();
            (!a.is_loopback() && !a.is_link_local() && !a.is_unspecified()).then_some(a)
        })
    };
    from_originate.or_else(from_peers).or_else(from_host)
}

pub fn system_hostname() -> Option<String> {
    nix::unistd::gethostname()
        .ok()?
        .into_string()
        .ok()
        .filter(|h| !h.is_empty())
}
