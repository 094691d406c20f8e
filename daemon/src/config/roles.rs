//! Role presets: the defaults a peer's role implies before its own
//! settings (`docs/configuration.md` has the table). A peer with no role
//! gets RFC 8212's: nothing in, nothing out.

use std::sync::Arc;

use policy::{Condition, Disposition, Policy, Role, Statement, StatementResult};

/// The defaults a role implies, before the peer's own settings.
pub(super) struct Preset {
    pub(super) passive: bool,
    pub(super) import_default: Disposition,
    pub(super) export_default: Disposition,
    /// Appended after the peer's export policies.
    pub(super) export_builtin: Option<Arc<Policy>>,
    pub(super) next_hop_self: bool,
    pub(super) accept_local_next_hop: bool,
    pub(super) extended_next_hop: bool,
    /// Seconds to hold the routes of a peer that cannot negotiate graceful
    /// restart across its restart.
    pub(super) restart_hold: u64,
}

/// What the `upstream` role exports when no policy decided: routes from
/// the node's own speakers (Cilium, MetalLB, kube-vip) and tern's own
/// `originate` prefixes; nothing learned from other upstreams (a node is
/// not a transit).
fn upstream_export() -> Arc<Policy> {
    Arc::new(Policy {
        name: "role:upstream-export".into(),
        statements: vec![
            Statement {
                name: "from-local-speakers".into(),
                conditions: vec![Condition::PeerRole(Role::LOCAL_SPEAKERS.to_vec())],
                actions: vec![],
                result: StatementResult::Accept,
            },
            Statement {
                name: "originated".into(),
                conditions: vec![Condition::Originated],
                actions: vec![],
                result: StatementResult::Accept,
            },
        ],
    })
}

pub(super) fn preset(role: Role) -> Preset {
    match role {
        // The node's own speakers dial us and send what the node serves;
        // they are sent nothing. Their next hop is their end of the
        // session (`::1`, `127.0.0.1`, the node's address): never passed on.
        Role::Cilium | Role::Metallb | Role::KubeVip => Preset {
            passive: true,
            import_default: Disposition::Accept,
            export_default: Disposition::Reject,
            export_builtin: None,
            next_hop_self: true,
            accept_local_next_hop: true,
            // Cilium sends IPv4 over its IPv6 session; MetalLB's FRR sends
            // IPv6 over an IPv4 one with IPv4-mapped next hops, and
            // kube-vip's GoBGP both families over one with MP-BGP.
            extended_next_hop: role == Role::Cilium,
            // kube-vip configures no graceful restart, nor can MetalLB's
            // native speaker: their VIPs would go at each of their
            // restarts. (Cilium and MetalLB's FRR negotiate it.)
            restart_hold: if role == Role::Cilium { 0 } else { 60 },
        },
        Role::Upstream => Preset {
            passive: false,
            import_default: Disposition::Accept,
            export_default: Disposition::Reject,
            export_builtin: Some(upstream_export()),
            next_hop_self: true,
            accept_local_next_hop: false,
            extended_next_hop: false,
            restart_hold: 0,
        },
        // RFC 8212: without a policy, an eBGP peer gets nothing and gives
        // nothing.
        Role::Peer => Preset {
            passive: false,
            import_default: Disposition::Reject,
            export_default: Disposition::Reject,
            export_builtin: None,
            next_hop_self: true,
            accept_local_next_hop: false,
            extended_next_hop: false,
            restart_hold: 0,
        },
    }
}
