//! What the RIB benchmarks share: the RIB's settings, a negotiated
//! session, and the process's resident memory.

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_proto::{Context, Family};
use tern::config::{GracefulRestartConfig, MultipathConfig};
use tern::rib::RibSettings;
use tern::session::negotiate::Negotiated;

/// A RIB as a node runs it, without graceful restart.
pub fn settings(local_asn: u32) -> RibSettings {
    RibSettings {
        local_asn,
        router_id: Ipv4Addr::new(10, 101, 0, 21),
        multipath: MultipathConfig {
            max_paths: 8,
            as_path_relax: true,
        },
        graceful_restart: GracefulRestartConfig {
            enabled: false,
            restart_time: 120,
            stale_routes_time: Duration::from_secs(360),
            select_defer_time: Duration::from_secs(360),
        },
        restarting: false,
    }
}

/// An eBGP session with `asn`, both families, no graceful restart.
pub fn negotiated(asn: u32) -> Negotiated {
    let ctx = Context::ebgp();
    Negotiated {
        peer_asn: asn,
        peer_id: Ipv4Addr::new(10, 0, 0, (asn % 250) as u8),
        hold_time: 90,
        keepalive: Duration::from_secs(30),
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        four_octet_as: true,
        extended_next_hop: true,
        extended_message: false,
        route_refresh: true,
        enhanced_route_refresh: false,
        graceful_restart: None,
        peer_hostname: None,
        rx: ctx,
        tx: ctx,
    }
}

/// Resident memory of this process, in bytes.
pub fn resident() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |p| p * 4096)
}
