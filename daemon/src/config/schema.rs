//! The configuration file as serde reads it: every key, with the spans
//! that [`super::validate`] needs to point at problems. Nothing here
//! checks a value; unknown keys are refused.

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawConfig {
    pub(super) router_id: Option<Spanned<String>>,
    pub(super) asn: Spanned<u32>,
    pub(super) hostname: Option<Spanned<String>>,
    pub(super) listen: Option<Vec<Spanned<String>>>,
    pub(super) api: Option<RawApi>,
    pub(super) state_dir: Option<String>,
    #[serde(default)]
    pub(super) originate: Vec<Spanned<String>>,
    pub(super) graceful_restart: Option<Spanned<RawGracefulRestart>>,
    pub(super) multipath: Option<RawMultipath>,
    #[serde(default, rename = "peer")]
    pub(super) peers: Vec<Spanned<RawPeer>>,
    #[serde(default, rename = "prefix-set")]
    pub(super) prefix_sets: Vec<Spanned<RawSet>>,
    #[serde(default, rename = "community-set")]
    pub(super) community_sets: Vec<Spanned<RawSet>>,
    #[serde(default, rename = "large-community-set")]
    pub(super) large_community_sets: Vec<Spanned<RawSet>>,
    #[serde(default, rename = "ext-community-set")]
    pub(super) ext_community_sets: Vec<Spanned<RawSet>>,
    #[serde(default, rename = "policy")]
    pub(super) policies: Vec<Spanned<RawPolicy>>,
    pub(super) fib: Option<RawFib>,
    #[serde(default, rename = "bfd-profile")]
    pub(super) bfd_profiles: Vec<Spanned<RawBfdProfile>>,
    #[serde(default, rename = "static-route")]
    pub(super) static_routes: Vec<Spanned<RawStaticRoute>>,
    pub(super) drain: Option<RawDrain>,
    #[serde(default, rename = "health-check")]
    pub(super) health_checks: Vec<Spanned<RawHealthCheck>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawHealthCheck {
    pub(super) name: Spanned<String>,
    pub(super) probe: Spanned<String>,
    pub(super) address: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) expect_status: Option<Vec<u16>>,
    pub(super) query: Option<Spanned<String>>,
    pub(super) namespace: Option<Spanned<String>>,
    pub(super) pod_ip: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<f64>>,
    pub(super) timeout: Option<Spanned<f64>>,
    pub(super) rise: Option<Spanned<u32>>,
    pub(super) fall: Option<Spanned<u32>>,
    pub(super) prefix_sets: Option<Vec<Spanned<String>>>,
    pub(super) action: Option<Spanned<String>>,
    pub(super) prepend: Option<Spanned<u8>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawDrain {
    pub(super) prepend: Option<Spanned<u8>>,
    pub(super) time: Option<u64>,
    pub(super) on_stop: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawStaticRoute {
    pub(super) prefix: Spanned<String>,
    pub(super) next_hop: Option<Spanned<String>>,
    pub(super) blackhole: Option<bool>,
    pub(super) unreachable: Option<bool>,
    pub(super) originate: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawBfdProfile {
    pub(super) name: Spanned<String>,
    pub(super) min_rx: Option<Spanned<u32>>,
    pub(super) min_tx: Option<Spanned<u32>>,
    pub(super) multiplier: Option<Spanned<u8>>,
    pub(super) passive: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawFib {
    pub(super) enabled: Option<bool>,
    pub(super) table: Option<Spanned<u32>>,
    pub(super) protocol: Option<Spanned<u8>>,
    pub(super) metric: Option<u32>,
    pub(super) ipv4: Option<bool>,
    pub(super) ipv6: Option<bool>,
    pub(super) install_from: Option<Vec<Spanned<String>>>,
    pub(super) policy: Option<Spanned<String>>,
    pub(super) scan_interval: Option<Spanned<u64>>,
    pub(super) keep_routes_on_stop: Option<bool>,
    pub(super) vip: Option<RawVip>,
    pub(super) source_address_ipv4: Option<Spanned<String>>,
    pub(super) source_address_ipv6: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawVip {
    pub(super) enabled: Option<bool>,
    pub(super) kind: Option<Spanned<String>>,
    pub(super) device: Option<Spanned<String>>,
    pub(super) prefix_sets: Option<Vec<Spanned<String>>>,
    pub(super) community_set: Option<Spanned<String>>,
    pub(super) host_routes_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawApi {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) socket: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawGracefulRestart {
    pub(super) enabled: Option<bool>,
    pub(super) restart_time: Option<Spanned<u16>>,
    pub(super) stale_routes_time: Option<u64>,
    pub(super) select_defer_time: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawMultipath {
    pub(super) max_paths: Option<Spanned<usize>>,
    pub(super) as_path_relax: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawAsn {
    Number(u32),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPeer {
    pub(super) name: Spanned<String>,
    /// An address or a range; or else `interface`.
    pub(super) address: Option<Spanned<String>>,
    /// Unnumbered: the peer is whoever is on the other end of this link,
    /// found by its IPv6 link-local address.
    pub(super) interface: Option<Spanned<String>>,
    pub(super) port: Option<u16>,
    pub(super) remote_asn: Spanned<RawAsn>,
    pub(super) role: Option<Spanned<String>>,
    pub(super) families: Option<Vec<Spanned<String>>>,
    pub(super) passive: Option<Spanned<bool>>,
    pub(super) hold_time: Option<Spanned<u16>>,
    pub(super) keepalive: Option<Spanned<u16>>,
    pub(super) connect_retry: Option<u64>,
    pub(super) local_address: Option<Spanned<String>>,
    pub(super) local_asn: Option<u32>,
    pub(super) multihop: Option<Spanned<u8>>,
    pub(super) ttl_security: Option<Spanned<u8>>,
    pub(super) import: Option<Vec<Spanned<String>>>,
    pub(super) export: Option<Vec<Spanned<String>>>,
    pub(super) import_default: Option<Spanned<String>>,
    pub(super) export_default: Option<Spanned<String>>,
    /// A number, or a table (`limit`, `ipv4-unicast`, `ipv6-unicast`,
    /// `action`, `restart-after`) read in `validate`.
    pub(super) max_prefix: Option<Spanned<toml::Value>>,
    pub(super) graceful_restart: Option<bool>,
    /// Seconds to keep a peer's routes after its session ends from its
    /// side without graceful restart; 0: not at all.
    pub(super) restart_hold: Option<u64>,
    pub(super) md5_password: Option<Spanned<String>>,
    pub(super) md5_password_file: Option<Spanned<String>>,
    pub(super) md5_password_env: Option<Spanned<String>>,
    pub(super) md5_password_credential: Option<Spanned<String>>,
    pub(super) extended_next_hop: Option<bool>,
    pub(super) extended_message: Option<bool>,
    pub(super) next_hop_self: Option<bool>,
    pub(super) accept_local_next_hop: Option<bool>,
    pub(super) soft_reconfiguration: Option<bool>,
    /// `true`, `false`, or the name of a `[[bfd-profile]]`.
    pub(super) bfd: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSet {
    pub(super) name: Spanned<String>,
    #[serde(alias = "prefixes")]
    pub(super) members: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPolicy {
    pub(super) name: Spanned<String>,
    #[serde(default, rename = "statement")]
    pub(super) statements: Vec<Spanned<RawStatement>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawStatement {
    pub(super) name: Option<String>,
    #[serde(rename = "match", default)]
    pub(super) matches: RawMatch,
    #[serde(default)]
    pub(super) not_match: RawMatch,
    #[serde(default)]
    pub(super) set: RawSetActions,
    pub(super) action: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawMatch {
    pub(super) prefix_set: Option<Spanned<String>>,
    pub(super) prefixes: Option<Vec<Spanned<String>>>,
    pub(super) community_set: Option<Spanned<String>>,
    pub(super) community: Option<Vec<Spanned<String>>>,
    pub(super) large_community_set: Option<Spanned<String>>,
    pub(super) large_community: Option<Vec<Spanned<String>>>,
    pub(super) ext_community_set: Option<Spanned<String>>,
    pub(super) ext_community: Option<Vec<Spanned<String>>>,
    pub(super) as_path_contains: Option<Vec<u32>>,
    pub(super) as_path_origin: Option<Vec<u32>>,
    pub(super) as_path_neighbor: Option<Vec<u32>>,
    pub(super) as_path_length: Option<RawRange>,
    pub(super) peer: Option<Vec<String>>,
    pub(super) peer_role: Option<Vec<Spanned<String>>>,
    pub(super) peer_address: Option<Vec<Spanned<String>>>,
    pub(super) to_peer: Option<Vec<String>>,
    pub(super) to_peer_role: Option<Vec<Spanned<String>>>,
    pub(super) family: Option<Vec<Spanned<String>>>,
    pub(super) next_hop: Option<Vec<Spanned<String>>>,
    pub(super) originated: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRange {
    pub(super) min: Option<u32>,
    pub(super) max: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSetActions {
    pub(super) local_pref: Option<u32>,
    pub(super) med: Option<Spanned<RawMed>>,
    pub(super) origin: Option<Spanned<String>>,
    pub(super) next_hop: Option<Spanned<String>>,
    pub(super) community_add: Option<Vec<Spanned<String>>>,
    pub(super) community_remove: Option<Vec<Spanned<String>>>,
    pub(super) community_clear: Option<bool>,
    pub(super) large_community_add: Option<Vec<Spanned<String>>>,
    pub(super) large_community_remove: Option<Vec<Spanned<String>>>,
    pub(super) large_community_clear: Option<bool>,
    pub(super) ext_community_add: Option<Vec<Spanned<String>>>,
    pub(super) ext_community_remove: Option<Vec<Spanned<String>>>,
    pub(super) prepend: Option<Spanned<RawPrepend>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawMed {
    Value(u32),
    Word(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawPrepend {
    Count(u8),
    Detailed { asn: Option<u32>, count: u8 },
}
