//! The configuration file: one TOML document, parsed into [`Config`].
//!
//! Every problem is reported with the file, line and column it comes from
//! (`tern.toml:12:11: unknown policy "from-fabric"`), and loading reports
//! all of them at once, never only the first. Role presets are expanded
//! here, so the rest of the daemon sees explicit settings; see
//! `docs/configuration.md` for what each role implies.
//!
//! Loading is pure apart from reading the file and MD5 secrets: it never
//! touches the network or the kernel.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::{Community, ExtCommunity, Family, LargeCommunity};
use ipnet::IpNet;
use policy::{
    Action, CommunityPattern, CommunitySet, Condition, Disposition, ExtCommunitySet, LargeCommunityPattern,
    LargeCommunitySet, NextHopChange, Policy, PrefixEntry, PrefixSet, Role, Statement, StatementResult,
};
use serde::Deserialize;
use toml::Spanned;

use crate::session::negotiate::RemoteAs;

pub const DEFAULT_PATH: &str = "/etc/tern/tern.toml";
pub const BGP_PORT: u16 = 179;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub path: PathBuf,
    /// Derived from the host's addresses at start when absent.
    pub router_id: Option<Ipv4Addr>,
    pub asn: u32,
    pub hostname: Option<String>,
    pub listen: Vec<SocketAddr>,
    pub api: ApiConfig,
    pub state_dir: PathBuf,
    /// Prefixes tern announces itself (node loopbacks).
    pub originate: Vec<IpNet>,
    pub graceful_restart: GracefulRestartConfig,
    pub multipath: MultipathConfig,
    pub peers: Vec<PeerConfig>,
    pub policies: BTreeMap<String, Arc<Policy>>,
    pub fib: FibSettings,
}

/// How the kernel is programmed (`[fib]`).
#[derive(Clone, Debug, PartialEq)]
pub struct FibSettings {
    pub enabled: bool,
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
    pub ipv4: bool,
    pub ipv6: bool,
    /// Routes whose best path comes from these roles are installed.
    pub install_from: Vec<Role>,
    pub install_policy: Option<PolicyChain>,
    /// VIP routes that keep same-node traffic on the node; `None` disables.
    pub vip: Option<(policy::VipSelector, VipRoute)>,
    pub scan_interval: Duration,
    /// Leave our routes in the kernel when tern stops, for the next start
    /// to adopt (the default with graceful restart).
    pub keep_routes_on_stop: bool,
}

/// The kind of route a local VIP gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VipRoute {
    Local,
    Device(String),
    Blackhole,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    pub listen: Option<SocketAddr>,
    pub socket: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Advertise graceful restart (RFC 4724) and act as helper.
    pub enabled: bool,
    /// Restart time we advertise, in seconds (12 bits).
    pub restart_time: u16,
    /// The longest a helper keeps a restarting peer's stale routes once it
    /// is back, waiting for its End-of-RIB.
    pub stale_routes_time: Duration,
    /// After our own restart, the longest we defer best-path selection and
    /// export waiting for peers' End-of-RIB.
    pub select_defer_time: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipathConfig {
    /// Equal-cost paths installed per prefix; 1 disables ECMP.
    pub max_paths: usize,
    /// Paths of equal AS path length from different neighbour ASes count as
    /// equal ("bestpath as-path multipath-relax"): each node has its own
    /// ASN and the same VIP comes from several nodes.
    pub as_path_relax: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAddress {
    Single(IpAddr),
    /// Dynamic neighbours: any address in the range may connect.
    Range(IpNet),
}

impl PeerAddress {
    pub fn contains(&self, addr: IpAddr) -> bool {
        match self {
            PeerAddress::Single(a) => *a == addr,
            PeerAddress::Range(net) => net.contains(&addr),
        }
    }
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddress::Single(a) => a.fmt(f),
            PeerAddress::Range(n) => n.fmt(f),
        }
    }
}

/// Policies applied in one direction, then the default when none decided.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyChain {
    pub policies: Vec<Arc<Policy>>,
    pub default: Disposition,
}

impl PolicyChain {
    pub fn refs(&self) -> Vec<&Policy> {
        self.policies.iter().map(Arc::as_ref).collect()
    }
}

#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub name: String,
    pub address: PeerAddress,
    pub port: u16,
    pub remote_asn: RemoteAs,
    pub role: Role,
    pub families: Vec<Family>,
    pub passive: bool,
    pub hold_time: u16,
    pub keepalive: Option<u16>,
    pub connect_retry: Duration,
    pub local_address: Option<IpAddr>,
    pub local_asn: Option<u32>,
    /// TTL of our packets: 1 for directly connected eBGP, more for multihop.
    pub ttl: Option<u8>,
    /// GTSM (RFC 5082): send TTL 255 and require at least 256 - hops.
    pub ttl_security: Option<u8>,
    pub import: PolicyChain,
    pub export: PolicyChain,
    pub max_prefix: Option<u32>,
    pub graceful_restart: bool,
    pub md5_password: Option<Secret>,
    pub extended_next_hop: bool,
    pub extended_message: bool,
    pub next_hop_self: bool,
    /// Accept next hops such as ::1 and 127.0.0.1, which Cilium uses on a
    /// localhost session and every other implementation drops as martians.
    pub accept_local_next_hop: bool,
    /// Keep a copy of what the peer sent before import policy, so a policy
    /// change never needs a ROUTE-REFRESH.
    pub soft_reconfiguration: bool,
}

/// A secret that never shows up in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every problem found in a file, in file order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_owned(),
                line: 1,
                column: 1,
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(&text, path, &EnvSecrets)
    }

    /// Validates `text` as if read from `path`. MD5 secrets come from
    /// `secrets` (files and environment variables in the daemon).
    pub fn parse(text: &str, path: &Path, secrets: &dyn SecretSource) -> Result<Config, ConfigErrors> {
        let locate = |errors: Vec<(Option<Range<usize>>, String)>| {
            let mut out: Vec<ConfigError> = errors
                .into_iter()
                .map(|(span, message)| {
                    let (line, column) = line_column(text, span.map_or(0, |s| s.start));
                    ConfigError {
                        file: path.to_owned(),
                        line,
                        column,
                        message,
                    }
                })
                .collect();
            out.sort_by_key(|e| (e.line, e.column));
            ConfigErrors(out)
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| locate(vec![(e.span(), e.message().trim().to_owned())]))?;
        let mut v = Validator {
            errors: Vec::new(),
            secrets,
            base: path.parent().unwrap_or(Path::new(".")),
        };
        let config = v.config(raw, path);
        if v.errors.is_empty() {
            Ok(config)
        } else {
            Err(locate(v.errors))
        }
    }

    pub fn peer(&self, name: &str) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.name == name)
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where MD5 passwords come from.
pub trait SecretSource {
    fn file(&self, path: &Path) -> Result<String, String>;
    fn env(&self, name: &str) -> Result<String, String>;
}

/// Secrets from the file system and the process environment.
pub struct EnvSecrets;

impl SecretSource for EnvSecrets {
    fn file(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|e| e.to_string())
    }

    fn env(&self, name: &str) -> Result<String, String> {
        std::env::var(name).map_err(|e| e.to_string())
    }
}

// ---- The file format ------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    router_id: Option<Spanned<String>>,
    asn: Spanned<u32>,
    hostname: Option<String>,
    listen: Option<Vec<Spanned<String>>>,
    api: Option<RawApi>,
    state_dir: Option<String>,
    #[serde(default)]
    originate: Vec<Spanned<String>>,
    graceful_restart: Option<Spanned<RawGracefulRestart>>,
    multipath: Option<RawMultipath>,
    #[serde(default, rename = "peer")]
    peers: Vec<Spanned<RawPeer>>,
    #[serde(default, rename = "prefix-set")]
    prefix_sets: Vec<Spanned<RawSet>>,
    #[serde(default, rename = "community-set")]
    community_sets: Vec<Spanned<RawSet>>,
    #[serde(default, rename = "large-community-set")]
    large_community_sets: Vec<Spanned<RawSet>>,
    #[serde(default, rename = "ext-community-set")]
    ext_community_sets: Vec<Spanned<RawSet>>,
    #[serde(default, rename = "policy")]
    policies: Vec<Spanned<RawPolicy>>,
    fib: Option<RawFib>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFib {
    enabled: Option<bool>,
    table: Option<Spanned<u32>>,
    protocol: Option<Spanned<u8>>,
    metric: Option<u32>,
    ipv4: Option<bool>,
    ipv6: Option<bool>,
    install_from: Option<Vec<Spanned<String>>>,
    policy: Option<Spanned<String>>,
    scan_interval: Option<Spanned<u64>>,
    keep_routes_on_stop: Option<bool>,
    vip: Option<RawVip>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawVip {
    enabled: Option<bool>,
    kind: Option<Spanned<String>>,
    device: Option<Spanned<String>>,
    prefix_sets: Option<Vec<Spanned<String>>>,
    community_set: Option<Spanned<String>>,
    host_routes_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawApi {
    listen: Option<Spanned<String>>,
    socket: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawGracefulRestart {
    enabled: Option<bool>,
    restart_time: Option<Spanned<u16>>,
    stale_routes_time: Option<u64>,
    select_defer_time: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMultipath {
    max_paths: Option<Spanned<usize>>,
    as_path_relax: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawAsn {
    Number(u32),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPeer {
    name: Spanned<String>,
    address: Spanned<String>,
    port: Option<u16>,
    remote_asn: Spanned<RawAsn>,
    role: Option<Spanned<String>>,
    families: Option<Vec<Spanned<String>>>,
    passive: Option<Spanned<bool>>,
    hold_time: Option<Spanned<u16>>,
    keepalive: Option<Spanned<u16>>,
    connect_retry: Option<u64>,
    local_address: Option<Spanned<String>>,
    local_asn: Option<u32>,
    multihop: Option<Spanned<u8>>,
    ttl_security: Option<Spanned<u8>>,
    import: Option<Vec<Spanned<String>>>,
    export: Option<Vec<Spanned<String>>>,
    import_default: Option<Spanned<String>>,
    export_default: Option<Spanned<String>>,
    max_prefix: Option<u32>,
    graceful_restart: Option<bool>,
    md5_password: Option<Spanned<String>>,
    md5_password_file: Option<Spanned<String>>,
    md5_password_env: Option<Spanned<String>>,
    extended_next_hop: Option<bool>,
    extended_message: Option<bool>,
    next_hop_self: Option<bool>,
    accept_local_next_hop: Option<bool>,
    soft_reconfiguration: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSet {
    name: Spanned<String>,
    #[serde(alias = "prefixes")]
    members: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPolicy {
    name: Spanned<String>,
    #[serde(default, rename = "statement")]
    statements: Vec<Spanned<RawStatement>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStatement {
    name: Option<String>,
    #[serde(rename = "match", default)]
    matches: RawMatch,
    #[serde(default)]
    not_match: RawMatch,
    #[serde(default)]
    set: RawSetActions,
    action: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMatch {
    prefix_set: Option<Spanned<String>>,
    prefixes: Option<Vec<Spanned<String>>>,
    community_set: Option<Spanned<String>>,
    community: Option<Vec<Spanned<String>>>,
    large_community_set: Option<Spanned<String>>,
    large_community: Option<Vec<Spanned<String>>>,
    ext_community_set: Option<Spanned<String>>,
    ext_community: Option<Vec<Spanned<String>>>,
    as_path_contains: Option<Vec<u32>>,
    as_path_origin: Option<Vec<u32>>,
    as_path_neighbor: Option<Vec<u32>>,
    as_path_length: Option<RawRange>,
    peer: Option<Vec<String>>,
    peer_role: Option<Vec<Spanned<String>>>,
    peer_address: Option<Vec<Spanned<String>>>,
    to_peer: Option<Vec<String>>,
    to_peer_role: Option<Vec<Spanned<String>>>,
    family: Option<Vec<Spanned<String>>>,
    next_hop: Option<Vec<Spanned<String>>>,
    originated: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    min: Option<u32>,
    max: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSetActions {
    local_pref: Option<u32>,
    med: Option<Spanned<RawMed>>,
    origin: Option<Spanned<String>>,
    next_hop: Option<Spanned<String>>,
    community_add: Option<Vec<Spanned<String>>>,
    community_remove: Option<Vec<Spanned<String>>>,
    community_clear: Option<bool>,
    large_community_add: Option<Vec<Spanned<String>>>,
    large_community_remove: Option<Vec<Spanned<String>>>,
    large_community_clear: Option<bool>,
    ext_community_add: Option<Vec<Spanned<String>>>,
    ext_community_remove: Option<Vec<Spanned<String>>>,
    prepend: Option<Spanned<RawPrepend>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawMed {
    Value(u32),
    Word(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPrepend {
    Count(u8),
    Detailed { asn: Option<u32>, count: u8 },
}

// ---- Validation -----------------------------------------------------------

/// The defaults a role implies, before the peer's own settings.
struct Preset {
    passive: bool,
    import_default: Disposition,
    export_default: Disposition,
    /// Appended after the peer's export policies.
    export_builtin: Option<Arc<Policy>>,
    next_hop_self: bool,
    accept_local_next_hop: bool,
    extended_next_hop: bool,
}

/// What the `upstream` role exports when no policy decided: routes from
/// Cilium and tern's own `originate` prefixes; nothing learned from other
/// upstreams (a node is not a transit).
fn upstream_export() -> Arc<Policy> {
    Arc::new(Policy {
        name: "role:upstream-export".into(),
        statements: vec![
            Statement {
                name: "from-cilium".into(),
                conditions: vec![Condition::PeerRole(vec![Role::Cilium])],
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

fn preset(role: Role) -> Preset {
    match role {
        Role::Cilium => Preset {
            passive: true,
            import_default: Disposition::Accept,
            export_default: Disposition::Reject,
            export_builtin: None,
            next_hop_self: true,
            accept_local_next_hop: true,
            extended_next_hop: true,
        },
        Role::Upstream => Preset {
            passive: false,
            import_default: Disposition::Accept,
            export_default: Disposition::Reject,
            export_builtin: Some(upstream_export()),
            next_hop_self: true,
            accept_local_next_hop: false,
            extended_next_hop: false,
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
        },
    }
}

struct Validator<'a> {
    errors: Vec<(Option<Range<usize>>, String)>,
    secrets: &'a dyn SecretSource,
    base: &'a Path,
}

/// Named sets, for resolving references from policies.
#[derive(Default)]
struct Sets {
    prefix: HashMap<String, Arc<PrefixSet>>,
    community: HashMap<String, Arc<CommunitySet>>,
    large: HashMap<String, Arc<LargeCommunitySet>>,
    ext: HashMap<String, Arc<ExtCommunitySet>>,
}

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push((Some(span), message.into()));
    }

    /// Parses a spanned string, reporting a failure at its span.
    fn parse<T: FromStr>(&mut self, s: &Spanned<String>, what: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        match s.get_ref().parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                // Most parse errors already quote the text; do not say it twice.
                let e = e.to_string();
                let quoted = format!("{:?}", s.get_ref());
                let message = if e.contains(&quoted) {
                    e
                } else {
                    format!("invalid {what} {quoted}: {e}")
                };
                self.error(s.span(), message);
                None
            }
        }
    }

    fn parse_all<T: FromStr>(&mut self, list: &[Spanned<String>], what: &str) -> Vec<T>
    where
        T::Err: std::fmt::Display,
    {
        list.iter().filter_map(|s| self.parse(s, what)).collect()
    }

    fn config(&mut self, mut raw: RawConfig, path: &Path) -> Config {
        let router_id = raw
            .router_id
            .as_ref()
            .and_then(|r| self.parse::<Ipv4Addr>(r, "router-id"));
        if let (Some(id), Some(r)) = (router_id, &raw.router_id)
            && id.is_unspecified()
        {
            self.error(r.span(), "router-id must not be 0.0.0.0");
        }
        let asn = *raw.asn.get_ref();
        if asn == 0 {
            self.error(raw.asn.span(), "asn must not be 0");
        }
        let listen = match &raw.listen {
            None => vec![SocketAddr::from(([0u16; 8], BGP_PORT))],
            Some(list) => list
                .iter()
                .filter_map(|s| self.listen_address(s, BGP_PORT))
                .collect(),
        };
        let api = match raw.api.take() {
            None => ApiConfig {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 9179))),
                socket: None,
            },
            Some(a) => ApiConfig {
                listen: a.listen.as_ref().and_then(|l| self.listen_address(l, 9179)),
                socket: a.socket.map(PathBuf::from),
            },
        };
        let state_dir = PathBuf::from(raw.state_dir.as_deref().unwrap_or("/run/tern"));
        let api = ApiConfig {
            socket: api.socket.or_else(|| Some(state_dir.join("tern.sock"))),
            ..api
        };
        let originate = self.parse_all::<IpNet>(&raw.originate, "originate prefix");
        for (net, s) in originate.iter().zip(&raw.originate) {
            if net.trunc() != *net {
                self.error(
                    s.span(),
                    format!("{net} has host bits set; the network is {}", net.trunc()),
                );
            }
        }
        let graceful_restart = self.graceful_restart(raw.graceful_restart.take());
        let multipath = MultipathConfig {
            max_paths: raw
                .multipath
                .as_ref()
                .and_then(|m| m.max_paths.as_ref())
                .map_or(8, |m| {
                    if *m.get_ref() == 0 {
                        self.error(m.span(), "max-paths must be at least 1");
                    }
                    *m.get_ref()
                }),
            as_path_relax: raw
                .multipath
                .as_ref()
                .and_then(|m| m.as_path_relax)
                .unwrap_or(true),
        };

        let sets = self.sets(&raw);
        let policies = self.policies(&raw.policies, &sets);
        let fib = self.fib(raw.fib.take(), &sets, &policies, graceful_restart.enabled);
        let mut peers = Vec::new();
        let mut names = HashSet::new();
        let mut addresses: Vec<(PeerAddress, String)> = Vec::new();
        for p in raw.peers {
            let span = p.span();
            let Some(peer) = self.peer(p.into_inner(), asn, &policies, graceful_restart.enabled) else {
                continue;
            };
            if !names.insert(peer.name.clone()) {
                self.error(
                    span.clone(),
                    format!("a peer named {:?} is already defined", peer.name),
                );
            }
            if let Some((_, other)) = addresses.iter().find(|(a, _)| *a == peer.address) {
                self.error(
                    span,
                    format!("peer {:?} has the same address as peer {other:?}", peer.name),
                );
            }
            addresses.push((peer.address.clone(), peer.name.clone()));
            peers.push(peer);
        }
        Config {
            path: path.to_owned(),
            router_id,
            asn,
            hostname: raw.hostname,
            listen,
            api,
            state_dir,
            originate,
            graceful_restart,
            multipath,
            peers,
            policies,
            fib,
        }
    }

    fn fib(
        &mut self,
        raw: Option<RawFib>,
        sets: &Sets,
        policies: &BTreeMap<String, Arc<Policy>>,
        graceful_restart: bool,
    ) -> FibSettings {
        let raw = raw.unwrap_or(RawFib {
            enabled: None,
            table: None,
            protocol: None,
            metric: None,
            ipv4: None,
            ipv6: None,
            install_from: None,
            policy: None,
            scan_interval: None,
            keep_routes_on_stop: None,
            vip: None,
        });
        let table = match &raw.table {
            // 0 is unspecified; 253 default, 255 local belong to the kernel.
            Some(t) if matches!(*t.get_ref(), 0 | 253 | 255) => {
                self.error(
                    t.span(),
                    format!(
                        "table {} is reserved; use 254 (main) or 1-252, 256 and up",
                        t.get_ref()
                    ),
                );
                254
            }
            Some(t) => *t.get_ref(),
            None => 254,
        };
        let protocol = match &raw.protocol {
            // 0-4: unspecified, redirect, kernel, boot, static.
            Some(p) if *p.get_ref() <= 4 => {
                self.error(
                    p.span(),
                    format!(
                        "protocol {} is reserved by the kernel; the default is 186 (bgp)",
                        p.get_ref()
                    ),
                );
                186
            }
            Some(p) => *p.get_ref(),
            None => 186,
        };
        let install_from = match &raw.install_from {
            None => vec![Role::Upstream],
            Some(list) => self.parse_all(list, "role"),
        };
        let install_policy = raw.policy.as_ref().and_then(|n| match policies.get(n.get_ref()) {
            Some(p) => Some(PolicyChain {
                policies: vec![p.clone()],
                default: Disposition::Reject,
            }),
            None => {
                self.error(n.span(), format!("unknown policy {:?}", n.get_ref()));
                None
            }
        });
        let vip = match raw.vip {
            Some(v) if v.enabled == Some(false) => None,
            v => {
                let v = v.unwrap_or(RawVip {
                    enabled: None,
                    kind: None,
                    device: None,
                    prefix_sets: None,
                    community_set: None,
                    host_routes_only: None,
                });
                let kind = match v.kind.as_ref().map(|k| (k, k.get_ref().as_str())) {
                    None | Some((_, "local")) => Some(VipRoute::Local),
                    Some((_, "blackhole")) => Some(VipRoute::Blackhole),
                    Some((k, "device")) => match &v.device {
                        Some(d) => Some(VipRoute::Device(d.get_ref().clone())),
                        None => {
                            self.error(
                                k.span(),
                                "a device VIP route needs `device`, e.g. \"cilium_host\"",
                            );
                            None
                        }
                    },
                    Some((k, other)) => {
                        self.error(
                            k.span(),
                            format!("invalid VIP route kind {other:?}: expected local, device or blackhole"),
                        );
                        None
                    }
                };
                let prefix_sets = v
                    .prefix_sets
                    .iter()
                    .flatten()
                    .filter_map(|n| self.lookup(&sets.prefix, n, "prefix-set"))
                    .collect();
                let communities = v
                    .community_set
                    .as_ref()
                    .and_then(|n| self.lookup(&sets.community, n, "community-set"));
                let selector = policy::VipSelector {
                    prefix_sets,
                    communities,
                    host_routes_only: v.host_routes_only.unwrap_or(true),
                };
                kind.map(|k| (selector, k))
            }
        };
        let scan_interval = match &raw.scan_interval {
            Some(s) if *s.get_ref() == 0 => {
                self.error(s.span(), "scan-interval must be at least 1 second");
                Duration::from_secs(60)
            }
            Some(s) => Duration::from_secs(*s.get_ref()),
            None => Duration::from_secs(60),
        };
        FibSettings {
            enabled: raw.enabled.unwrap_or(true),
            table,
            protocol,
            metric: raw.metric.unwrap_or(512),
            ipv4: raw.ipv4.unwrap_or(true),
            ipv6: raw.ipv6.unwrap_or(true),
            install_from,
            install_policy,
            vip,
            scan_interval,
            keep_routes_on_stop: raw.keep_routes_on_stop.unwrap_or(graceful_restart),
        }
    }

    fn listen_address(&mut self, s: &Spanned<String>, default_port: u16) -> Option<SocketAddr> {
        let text = s.get_ref();
        if let Ok(a) = text.parse::<SocketAddr>() {
            return Some(a);
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(SocketAddr::new(ip, default_port));
        }
        self.error(s.span(), format!("invalid listen address {text:?}: expected an address, optionally with a port (\"[::]:179\", \"10.0.0.1\")"));
        None
    }

    fn graceful_restart(&mut self, raw: Option<Spanned<RawGracefulRestart>>) -> GracefulRestartConfig {
        let raw = raw.map(Spanned::into_inner);
        let restart_time = match raw.as_ref().and_then(|r| r.restart_time.as_ref()) {
            Some(t) if *t.get_ref() > 4095 => {
                self.error(
                    t.span(),
                    "restart-time is at most 4095 seconds (12 bits, RFC 4724)",
                );
                120
            }
            Some(t) => *t.get_ref(),
            None => 120,
        };
        GracefulRestartConfig {
            enabled: raw.as_ref().and_then(|r| r.enabled).unwrap_or(true),
            restart_time,
            stale_routes_time: Duration::from_secs(
                raw.as_ref().and_then(|r| r.stale_routes_time).unwrap_or(360),
            ),
            select_defer_time: Duration::from_secs(
                raw.as_ref().and_then(|r| r.select_defer_time).unwrap_or(360),
            ),
        }
    }

    fn sets(&mut self, raw: &RawConfig) -> Sets {
        let mut sets = Sets::default();
        let mut seen = HashSet::new();
        let mut unique = |v: &mut Self, s: &Spanned<RawSet>| {
            let name = s.get_ref().name.get_ref().clone();
            if !seen.insert(name.clone()) {
                v.error(
                    s.get_ref().name.span(),
                    format!("a set named {name:?} is already defined"),
                );
            }
            name
        };
        for s in &raw.prefix_sets {
            let name = unique(self, s);
            let entries = self.parse_all::<PrefixEntry>(&s.get_ref().members, "prefix");
            match PrefixSet::new(name.clone(), entries) {
                Ok(set) => {
                    sets.prefix.insert(name, Arc::new(set));
                }
                Err(e) => self.error(s.span(), e.to_string()),
            }
        }
        for s in &raw.community_sets {
            let name = unique(self, s);
            let members = self.parse_all::<CommunityPattern>(&s.get_ref().members, "community");
            sets.community
                .insert(name.clone(), Arc::new(CommunitySet::new(name, members)));
        }
        for s in &raw.large_community_sets {
            let name = unique(self, s);
            let members = self.parse_all::<LargeCommunityPattern>(&s.get_ref().members, "large community");
            sets.large
                .insert(name.clone(), Arc::new(LargeCommunitySet::new(name, members)));
        }
        for s in &raw.ext_community_sets {
            let name = unique(self, s);
            let members = self.parse_all::<ExtCommunity>(&s.get_ref().members, "extended community");
            sets.ext
                .insert(name.clone(), Arc::new(ExtCommunitySet::new(name, members)));
        }
        sets
    }

    fn lookup<T>(
        &mut self,
        map: &HashMap<String, Arc<T>>,
        name: &Spanned<String>,
        kind: &str,
    ) -> Option<Arc<T>> {
        let found = map.get(name.get_ref()).cloned();
        if found.is_none() {
            self.error(name.span(), format!("unknown {kind} {:?}", name.get_ref()));
        }
        found
    }

    fn policies(&mut self, raw: &[Spanned<RawPolicy>], sets: &Sets) -> BTreeMap<String, Arc<Policy>> {
        let mut out = BTreeMap::new();
        for p in raw {
            let p = p.get_ref();
            let name = p.name.get_ref().clone();
            if name.starts_with("role:") {
                self.error(
                    p.name.span(),
                    "policy names starting with \"role:\" are reserved for role presets",
                );
            }
            let mut statements = Vec::new();
            for (i, s) in p.statements.iter().enumerate() {
                let st = s.get_ref();
                let mut conditions = self.conditions(&st.matches, sets);
                conditions.extend(
                    self.conditions(&st.not_match, sets)
                        .into_iter()
                        .map(|c| Condition::Not(Box::new(c))),
                );
                let actions = self.actions(&st.set);
                let result = match &st.action {
                    None => StatementResult::NextStatement,
                    Some(a) => self.parse(a, "action").unwrap_or(StatementResult::NextStatement),
                };
                statements.push(Statement {
                    name: st.name.clone().unwrap_or_else(|| format!("{}", i + 1)),
                    conditions,
                    actions,
                    result,
                });
            }
            if out
                .insert(
                    name.clone(),
                    Arc::new(Policy {
                        name: name.clone(),
                        statements,
                    }),
                )
                .is_some()
            {
                self.error(
                    p.name.span(),
                    format!("a policy named {name:?} is already defined"),
                );
            }
        }
        out
    }

    fn conditions(&mut self, m: &RawMatch, sets: &Sets) -> Vec<Condition> {
        let mut c = Vec::new();
        if let Some(n) = &m.prefix_set
            && let Some(s) = self.lookup(&sets.prefix, n, "prefix-set")
        {
            c.push(Condition::Prefix(s));
        }
        if let Some(list) = &m.prefixes {
            let entries = self.parse_all::<PrefixEntry>(list, "prefix");
            match PrefixSet::new("inline", entries) {
                Ok(s) => c.push(Condition::Prefix(Arc::new(s))),
                Err(e) => self.error(list.first().map_or(0..0, Spanned::span), e.to_string()),
            }
        }
        if let Some(n) = &m.community_set
            && let Some(s) = self.lookup(&sets.community, n, "community-set")
        {
            c.push(Condition::Community(s));
        }
        if let Some(list) = &m.community {
            let members = self.parse_all::<CommunityPattern>(list, "community");
            c.push(Condition::Community(Arc::new(CommunitySet::new(
                "inline", members,
            ))));
        }
        if let Some(n) = &m.large_community_set
            && let Some(s) = self.lookup(&sets.large, n, "large-community-set")
        {
            c.push(Condition::LargeCommunity(s));
        }
        if let Some(list) = &m.large_community {
            let members = self.parse_all::<LargeCommunityPattern>(list, "large community");
            c.push(Condition::LargeCommunity(Arc::new(LargeCommunitySet::new(
                "inline", members,
            ))));
        }
        if let Some(n) = &m.ext_community_set
            && let Some(s) = self.lookup(&sets.ext, n, "ext-community-set")
        {
            c.push(Condition::ExtCommunity(s));
        }
        if let Some(list) = &m.ext_community {
            let members = self.parse_all::<ExtCommunity>(list, "extended community");
            c.push(Condition::ExtCommunity(Arc::new(ExtCommunitySet::new(
                "inline", members,
            ))));
        }
        if let Some(v) = &m.as_path_contains {
            c.push(Condition::AsPathContains(v.clone()));
        }
        if let Some(v) = &m.as_path_origin {
            c.push(Condition::AsPathOrigin(v.clone()));
        }
        if let Some(v) = &m.as_path_neighbor {
            c.push(Condition::AsPathNeighbor(v.clone()));
        }
        if let Some(r) = &m.as_path_length {
            c.push(Condition::AsPathLength {
                min: r.min,
                max: r.max,
            });
        }
        if let Some(v) = &m.peer {
            c.push(Condition::PeerName(v.clone()));
        }
        if let Some(v) = &m.peer_role {
            c.push(Condition::PeerRole(self.parse_all(v, "role")));
        }
        if let Some(v) = &m.peer_address {
            c.push(Condition::PeerAddress(self.parse_all(v, "prefix")));
        }
        if let Some(v) = &m.to_peer {
            c.push(Condition::ToPeerName(v.clone()));
        }
        if let Some(v) = &m.to_peer_role {
            c.push(Condition::ToPeerRole(self.parse_all(v, "role")));
        }
        if let Some(v) = &m.family {
            let families = v.iter().filter_map(|f| self.family(f)).collect();
            c.push(Condition::Family(families));
        }
        if let Some(v) = &m.next_hop {
            c.push(Condition::NextHop(self.parse_all(v, "prefix")));
        }
        match m.originated {
            Some(true) => c.push(Condition::Originated),
            Some(false) => c.push(Condition::Not(Box::new(Condition::Originated))),
            None => {}
        }
        c
    }

    fn family(&mut self, s: &Spanned<String>) -> Option<Family> {
        let f = Family::from_name(s.get_ref());
        if f.is_none() {
            self.error(
                s.span(),
                format!(
                    "unknown family {:?}: expected ipv4-unicast or ipv6-unicast",
                    s.get_ref()
                ),
            );
        }
        f
    }

    fn actions(&mut self, set: &RawSetActions) -> Vec<Action> {
        let mut a = Vec::new();
        if let Some(v) = set.local_pref {
            a.push(Action::SetLocalPref(v));
        }
        if let Some(med) = &set.med {
            match med.get_ref() {
                RawMed::Value(v) => a.push(Action::SetMed(*v)),
                RawMed::Word(w) if w == "remove" => a.push(Action::RemoveMed),
                RawMed::Word(w) => self.error(
                    med.span(),
                    format!("invalid med {w:?}: expected a number or \"remove\""),
                ),
            }
        }
        if let Some(o) = &set.origin
            && let Ok(origin) =
                policy::parse_origin(o.get_ref()).map_err(|e| self.error(o.span(), e.to_string()))
        {
            a.push(Action::SetOrigin(origin));
        }
        if let Some(nh) = &set.next_hop
            && let Some(change) = self.parse::<NextHopChange>(nh, "next-hop")
        {
            a.push(Action::SetNextHop(change));
        }
        if let Some(list) = &set.community_add {
            a.push(Action::AddCommunities(
                self.parse_all::<Community>(list, "community"),
            ));
        }
        if let Some(list) = &set.community_remove {
            let members = self.parse_all::<CommunityPattern>(list, "community");
            a.push(Action::RemoveCommunities(Arc::new(CommunitySet::new(
                "inline", members,
            ))));
        }
        if set.community_clear == Some(true) {
            a.push(Action::ClearCommunities);
        }
        if let Some(list) = &set.large_community_add {
            a.push(Action::AddLargeCommunities(
                self.parse_all::<LargeCommunity>(list, "large community"),
            ));
        }
        if let Some(list) = &set.large_community_remove {
            let members = self.parse_all::<LargeCommunityPattern>(list, "large community");
            a.push(Action::RemoveLargeCommunities(Arc::new(LargeCommunitySet::new(
                "inline", members,
            ))));
        }
        if set.large_community_clear == Some(true) {
            a.push(Action::ClearLargeCommunities);
        }
        if let Some(list) = &set.ext_community_add {
            a.push(Action::AddExtCommunities(
                self.parse_all::<ExtCommunity>(list, "extended community"),
            ));
        }
        if let Some(list) = &set.ext_community_remove {
            let members = self.parse_all::<ExtCommunity>(list, "extended community");
            a.push(Action::RemoveExtCommunities(Arc::new(ExtCommunitySet::new(
                "inline", members,
            ))));
        }
        if let Some(p) = &set.prepend {
            let (asn, count) = match p.get_ref() {
                RawPrepend::Count(n) => (None, *n),
                RawPrepend::Detailed { asn, count } => (*asn, *count),
            };
            if count == 0 || count > 16 {
                self.error(p.span(), "prepend count must be between 1 and 16");
            } else {
                a.push(Action::Prepend { asn, count });
            }
        }
        a
    }

    fn chain(
        &mut self,
        names: &Option<Vec<Spanned<String>>>,
        default: &Option<Spanned<String>>,
        preset_default: Disposition,
        builtin: Option<Arc<Policy>>,
        policies: &BTreeMap<String, Arc<Policy>>,
    ) -> PolicyChain {
        let mut chain = Vec::new();
        for n in names.iter().flatten() {
            match policies.get(n.get_ref()) {
                Some(p) => chain.push(p.clone()),
                None => self.error(n.span(), format!("unknown policy {:?}", n.get_ref())),
            }
        }
        chain.extend(builtin);
        let default = match default {
            None => preset_default,
            Some(d) => self.parse(d, "default").unwrap_or(preset_default),
        };
        PolicyChain {
            policies: chain,
            default,
        }
    }

    fn peer(
        &mut self,
        p: RawPeer,
        local_asn: u32,
        policies: &BTreeMap<String, Arc<Policy>>,
        gr: bool,
    ) -> Option<PeerConfig> {
        let name = p.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.error(
                p.name.span(),
                format!(
                    "peer name {name:?} must be non-empty and use only letters, digits, '-', '_' and '.'"
                ),
            );
        }
        let address = {
            let text = p.address.get_ref();
            if let Ok(a) = text.parse::<IpAddr>() {
                Some(PeerAddress::Single(a))
            } else if let Ok(n) = text.parse::<IpNet>() {
                Some(PeerAddress::Range(n.trunc()))
            } else {
                self.error(p.address.span(), format!("invalid address {text:?}: expected an IP address or a range such as \"fd00:101::/64\""));
                None
            }
        };
        let remote_asn = match p.remote_asn.get_ref() {
            RawAsn::Number(0) => {
                self.error(p.remote_asn.span(), "remote-asn must not be 0");
                RemoteAs::Any
            }
            RawAsn::Number(n) => RemoteAs::Exact(*n),
            RawAsn::Text(t) if t == "any" => RemoteAs::Any,
            RawAsn::Text(t) => {
                self.error(
                    p.remote_asn.span(),
                    format!("invalid remote-asn {t:?}: expected a number or \"any\""),
                );
                RemoteAs::Any
            }
        };
        let role = match &p.role {
            None => Role::Peer,
            Some(r) => self.parse(r, "role").unwrap_or(Role::Peer),
        };
        let preset = preset(role);
        let families = match &p.families {
            None => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            Some(list) => {
                let f: Vec<Family> = list.iter().filter_map(|s| self.family(s)).collect();
                if f.is_empty() {
                    self.error(p.name.span(), format!("peer {name:?} has no families"));
                }
                f
            }
        };
        let passive = match (&p.passive, &address) {
            (Some(v), Some(PeerAddress::Range(_))) if !*v.get_ref() => {
                self.error(v.span(), "a peer with an address range can only be passive");
                true
            }
            (Some(v), _) => *v.get_ref(),
            (None, Some(PeerAddress::Range(_))) => true,
            (None, _) => preset.passive,
        };
        let hold_time = match &p.hold_time {
            Some(h) if matches!(*h.get_ref(), 1 | 2) => {
                self.error(
                    h.span(),
                    "hold-time must be 0 or at least 3 seconds (RFC 4271 §4.2)",
                );
                90
            }
            Some(h) => *h.get_ref(),
            None => 90,
        };
        let keepalive = p.keepalive.as_ref().map(|k| {
            if hold_time != 0 && *k.get_ref() >= hold_time {
                self.error(
                    k.span(),
                    format!("keepalive must be shorter than hold-time ({hold_time} s)"),
                );
            }
            *k.get_ref()
        });
        let local_address = p
            .local_address
            .as_ref()
            .and_then(|l| self.parse::<IpAddr>(l, "local-address"));
        if let (Some(l), Some(PeerAddress::Single(a)), Some(s)) = (local_address, &address, &p.local_address)
            && l.is_ipv4() != a.is_ipv4()
        {
            self.error(s.span(), "local-address and address must be of the same family");
        }
        if let (Some(_), Some(t)) = (&p.multihop, &p.ttl_security) {
            self.error(
                t.span(),
                "multihop and ttl-security cannot both be set: GTSM always sends TTL 255",
            );
        }
        let ttl_security = p.ttl_security.as_ref().map(|t| {
            if *t.get_ref() == 0 {
                self.error(t.span(), "ttl-security is the number of hops allowed, at least 1");
            }
            *t.get_ref()
        });
        let md5_password = self.md5(&p, &name);
        let import = self.chain(
            &p.import,
            &p.import_default,
            preset.import_default,
            None,
            policies,
        );
        let export = self.chain(
            &p.export,
            &p.export_default,
            preset.export_default,
            preset.export_builtin.clone(),
            policies,
        );
        Some(PeerConfig {
            name,
            address: address?,
            port: p.port.unwrap_or(BGP_PORT),
            remote_asn,
            role,
            families,
            passive,
            hold_time,
            keepalive,
            connect_retry: Duration::from_secs(p.connect_retry.unwrap_or(5).max(1)),
            local_address,
            local_asn: p.local_asn.filter(|a| *a != local_asn),
            ttl: p.multihop.map(|m| *m.get_ref()),
            ttl_security,
            import,
            export,
            max_prefix: p.max_prefix,
            graceful_restart: p.graceful_restart.unwrap_or(gr),
            md5_password,
            extended_next_hop: p.extended_next_hop.unwrap_or(preset.extended_next_hop),
            extended_message: p.extended_message.unwrap_or(false),
            next_hop_self: p.next_hop_self.unwrap_or(preset.next_hop_self),
            accept_local_next_hop: p.accept_local_next_hop.unwrap_or(preset.accept_local_next_hop),
            soft_reconfiguration: p.soft_reconfiguration.unwrap_or(true),
        })
    }

    fn md5(&mut self, p: &RawPeer, name: &str) -> Option<Secret> {
        if let Some(inline) = &p.md5_password {
            self.error(
                inline.span(),
                format!("peer {name:?}: an inline md5-password would leave the secret in the config file; use md5-password-file or md5-password-env"),
            );
        }
        let secret = match (&p.md5_password_file, &p.md5_password_env) {
            (Some(f), Some(_)) => {
                self.error(f.span(), "set md5-password-file or md5-password-env, not both");
                return None;
            }
            (Some(f), None) => {
                let path = self.base.join(f.get_ref());
                self.secrets.file(&path).map_err(|e| {
                    (
                        f.span(),
                        format!("cannot read md5-password-file {}: {e}", path.display()),
                    )
                })
            }
            (None, Some(v)) => self.secrets.env(v.get_ref()).map_err(|e| {
                (
                    v.span(),
                    format!("cannot read md5-password-env {}: {e}", v.get_ref()),
                )
            }),
            (None, None) => return None,
        };
        match secret {
            Ok(s) if s.is_empty() || s.len() > 80 => {
                let span = p
                    .md5_password_file
                    .as_ref()
                    .or(p.md5_password_env.as_ref())
                    .map_or(0..0, Spanned::span);
                self.error(
                    span,
                    "the MD5 password must be 1 to 80 characters (TCP_MD5SIG limit)",
                );
                None
            }
            Ok(s) => Some(Secret(s)),
            Err((span, msg)) => {
                self.error(span, msg);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets from a fixed table, so tests touch no files.
    struct TestSecrets;

    impl SecretSource for TestSecrets {
        fn file(&self, path: &Path) -> Result<String, String> {
            match path.file_name().and_then(|n| n.to_str()) {
                Some("upstream.md5") => Ok("s3cret".into()),
                _ => Err("No such file or directory (os error 2)".into()),
            }
        }
        fn env(&self, name: &str) -> Result<String, String> {
            if name == "TERN_MD5" {
                Ok("from-env".into())
            } else {
                Err("environment variable not found".into())
            }
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, Path::new("/etc/tern/tern.toml"), &TestSecrets)
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const NODE: &str = r#"
router-id = "10.101.0.21"
asn = 4210101021
originate = ["10.101.0.21/32", "fd00:101::21/128"]

[[peer]]
name = "cilium"
address = "::1"
remote-asn = 4220101000
role = "cilium"

[[peer]]
name = "upstream"
address = "fd00:101::fffe"
remote-asn = 4200001000
role = "upstream"
extended-next-hop = true
md5-password-file = "upstream.md5"
import = ["from-upstream"]

[[prefix-set]]
name = "own-pods"
prefixes = ["10.224.1.0/24", "fd00:101:224:1::/64"]

[[policy]]
name = "from-upstream"
[[policy.statement]]
name = "not-our-own-pods"
match.prefix-set = "own-pods"
action = "reject"
[[policy.statement]]
set.local-pref = 200
"#;

    #[test]
    fn a_node_config_with_role_presets() {
        let c = parse(NODE).unwrap();
        assert_eq!(
            (c.asn, c.router_id),
            (4210101021, Some(Ipv4Addr::new(10, 101, 0, 21)))
        );
        assert_eq!(c.listen, [SocketAddr::from(([0u16; 8], 179))]);
        assert_eq!(c.api.listen, Some(SocketAddr::from(([127, 0, 0, 1], 9179))));
        assert_eq!(c.api.socket.as_deref(), Some(Path::new("/run/tern/tern.sock")));
        assert!(c.graceful_restart.enabled);

        let cilium = c.peer("cilium").unwrap();
        assert_eq!(cilium.address, PeerAddress::Single("::1".parse().unwrap()));
        assert!(cilium.passive && cilium.accept_local_next_hop && cilium.extended_next_hop);
        assert_eq!(
            (cilium.import.default, cilium.export.default),
            (Disposition::Accept, Disposition::Reject)
        );
        assert!(cilium.export.policies.is_empty());

        let up = c.peer("upstream").unwrap();
        assert!(!up.passive && up.next_hop_self && !up.accept_local_next_hop && up.extended_next_hop);
        assert_eq!(up.md5_password, Some(Secret("s3cret".into())));
        assert_eq!(up.import.policies.len(), 1);
        assert_eq!(up.export.policies[0].name, "role:upstream-export");
        assert_eq!(up.connect_retry, Duration::from_secs(5));
        assert_eq!(up.families, [Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    }

    #[test]
    fn a_peer_without_a_role_gets_rfc_8212_defaults() {
        let c = parse("asn = 65000\n[[peer]]\nname = \"x\"\naddress = \"10.0.0.1\"\nremote-asn = 65001\n")
            .unwrap();
        let p = c.peer("x").unwrap();
        assert_eq!(
            (p.import.default, p.export.default),
            (Disposition::Reject, Disposition::Reject)
        );
        let c = parse("asn = 65000\n[[peer]]\nname = \"x\"\naddress = \"10.0.0.1\"\nremote-asn = 65001\nimport-default = \"accept\"\n").unwrap();
        assert_eq!(c.peer("x").unwrap().import.default, Disposition::Accept);
    }

    #[test]
    fn ranges_are_dynamic_and_passive() {
        let c = parse(
            "asn = 65000\n[[peer]]\nname = \"nodes\"\naddress = \"fd00:101::/64\"\nremote-asn = \"any\"\n",
        )
        .unwrap();
        let p = c.peer("nodes").unwrap();
        assert!(p.passive);
        assert_eq!(p.remote_asn, RemoteAs::Any);
        assert!(p.address.contains("fd00:101::23".parse().unwrap()));
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        assert_eq!(
            errors("asn = 65000\nrouter-id = \n"),
            ["/etc/tern/tern.toml:2:13: string values must be quoted, expected literal string"]
        );
        let e = errors("asn = 65000\nrouterid = \"1.2.3.4\"\n");
        assert!(
            e[0].starts_with("/etc/tern/tern.toml:2:1: unknown field `routerid`"),
            "{e:?}"
        );
        let e = errors("asn = \"x\"\n");
        assert!(e[0].starts_with("/etc/tern/tern.toml:1:7: "), "{e:?}");
    }

    #[test]
    fn every_semantic_error_is_reported_with_its_location() {
        let text = r#"asn = 65000
router-id = "10.0.0.256"

[[peer]]
name = "a"
address = "10.0.0.1"
remote-asn = 65001
hold-time = 2
import = ["nope"]
md5-password = "inline"

[[peer]]
name = "a"
address = "10.0.0.2"
remote-asn = "some"
families = ["ipv4-multicast"]
md5-password-file = "missing.md5"

[[policy]]
name = "p"
[[policy.statement]]
match.prefix-set = "undefined"
match.prefixes = ["10.0.0.0/33"]
set.community-add = ["65536:1"]
action = "maybe"
"#;
        let e = errors(text);
        let expected = [
            "2:13: invalid router-id \"10.0.0.256\"",
            "8:13: hold-time must be 0 or at least 3 seconds",
            "9:11: unknown policy \"nope\"",
            "10:16: peer \"a\": an inline md5-password",
            "12:1: a peer named \"a\" is already defined",
            "13:8: peer \"a\" has no families",
            "15:14: invalid remote-asn \"some\"",
            "16:13: unknown family \"ipv4-multicast\"",
            "17:21: cannot read md5-password-file /etc/tern/missing.md5",
            "22:20: unknown prefix-set \"undefined\"",
            "23:19: invalid prefix \"10.0.0.0/33\"",
            "24:22: invalid standard community \"65536:1\"",
            "25:10: invalid statement result \"maybe\"",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (got, want) in e.iter().zip(expected) {
            assert!(
                got.starts_with(&format!("/etc/tern/tern.toml:{want}")),
                "got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn policies_become_statements() {
        let c = parse(NODE).unwrap();
        let p = &c.policies["from-upstream"];
        assert_eq!(p.statements.len(), 2);
        assert_eq!(p.statements[0].result, StatementResult::Reject);
        assert_eq!(p.statements[1].name, "2");
        assert_eq!(p.statements[1].actions, [Action::SetLocalPref(200)]);
        assert_eq!(p.statements[1].result, StatementResult::NextStatement);
    }

    #[test]
    fn fib_defaults_and_settings() {
        let c = parse(NODE).unwrap();
        let f = &c.fib;
        assert!(f.enabled && f.ipv4 && f.ipv6 && f.keep_routes_on_stop);
        assert_eq!((f.table, f.protocol, f.metric), (254, 186, 512));
        assert_eq!(f.install_from, [Role::Upstream]);
        assert!(
            matches!(&f.vip, Some((sel, VipRoute::Local)) if sel.host_routes_only && sel.prefix_sets.is_empty())
        );
        let c = parse(&format!(
            "{NODE}\n[[prefix-set]]\nname = \"lb-pool\"\nprefixes = [\"10.96.0.0/16 le 32\"]\n[fib]\ntable = 100\nmetric = 20\nkeep-routes-on-stop = false\n[fib.vip]\nkind = \"device\"\ndevice = \"cilium_host\"\nprefix-sets = [\"lb-pool\"]\n"
        ))
        .unwrap();
        assert_eq!(
            (c.fib.table, c.fib.metric, c.fib.keep_routes_on_stop),
            (100, 20, false)
        );
        assert!(
            matches!(&c.fib.vip, Some((sel, VipRoute::Device(d))) if d == "cilium_host" && sel.prefix_sets.len() == 1)
        );
    }

    #[test]
    fn fib_errors() {
        let e = errors(
            "asn = 1\n[fib]\ntable = 255\nprotocol = 2\npolicy = \"nope\"\n[fib.vip]\nkind = \"device\"\nprefix-sets = [\"none\"]\n",
        );
        let want = [
            "3:9: table 255 is reserved",
            "4:12: protocol 2 is reserved",
            "5:10: unknown policy",
            "7:8: a device VIP route needs `device`",
            "8:16: unknown prefix-set",
        ];
        assert_eq!(e.len(), want.len(), "{e:#?}");
        for (got, want) in e.iter().zip(want) {
            assert!(
                got.starts_with(&format!("/etc/tern/tern.toml:{want}")),
                "got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn md5_from_the_environment_and_the_length_limit() {
        let base = "asn = 65000\n[[peer]]\nname = \"x\"\naddress = \"10.0.0.1\"\nremote-asn = 65001\n";
        let c = parse(&format!("{base}md5-password-env = \"TERN_MD5\"\n")).unwrap();
        assert_eq!(c.peer("x").unwrap().md5_password, Some(Secret("from-env".into())));
        assert_eq!(format!("{:?}", Secret("x".into())), "Secret(..)");
        let e = errors(&format!("{base}md5-password-env = \"UNSET\"\n"));
        assert!(e[0].contains("cannot read md5-password-env UNSET"), "{e:?}");
    }
}
