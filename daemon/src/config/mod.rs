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
//!
//! - this file: the validated model the daemon uses, and loading;
//! - `schema`: the file format as serde reads it;
//! - `validate`: turning the file into the model, with every error located;
//! - `policies`: compiling sets and policies;
//! - `roles`: what the `cilium`, `upstream` and `peer` roles imply.
//!
//! A peer's settings come in two groups: [`SessionConfig`] (a change needs
//! a new session) and [`RoutingConfig`] (a change re-runs policy; the
//! session stays). A reload compares the groups as wholes, so a new field
//! is picked up by putting it in the right group.

mod health;
mod peer;
mod policies;
mod roles;
mod schema;
mod structure;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::Family;
use ipnet::IpNet;
use policy::{Disposition, Policy, Role};

pub use health::{Gate, GateAction, HealthCheck, Probe, ProbeNamespace};
use schema::RawConfig;
use toml::Spanned;

pub const DEFAULT_PATH: &str = "/etc/tern/tern.toml";
pub const BGP_PORT: u16 = 179;
/// The longest host name the FQDN capability can carry (its value is the
/// name and an empty domain, each after a length octet, in 255 octets).
pub const MAX_HOSTNAME: usize = 253;

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
    /// Routes tern installs itself (`[[static-route]]`); reloadable.
    pub static_routes: Vec<StaticRoute>,
    pub drain: DrainConfig,
    /// Health checks of the node's datapath, gating its VIPs.
    pub health_checks: Vec<HealthCheck>,
}

/// Graceful drain (`[drain]`, RFC 8326): what `tern drain` sends, and
/// whether a stop drains first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainConfig {
    /// Our AS prepended this many times towards external peers while
    /// drained (besides the GRACEFUL_SHUTDOWN community).
    pub prepend: u8,
    /// How long a stop waits, drained, before sessions go.
    pub time: Duration,
    /// A stop (SIGTERM) drains first and waits `time`.
    pub on_stop: bool,
}

/// A route tern installs whatever BGP says (bird's static protocol),
/// optionally also announced over BGP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    pub prefix: IpNet,
    pub target: StaticTarget,
    /// Announced to peers as tern's own, like an `originate` prefix (the
    /// aggregate-plus-blackhole pattern).
    pub originate: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StaticTarget {
    /// Forwarded to this next hop, resolved like a BGP next hop.
    NextHop(IpAddr),
    Blackhole,
    Unreachable,
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
    /// The preferred source address of installed routes, per family
    /// (bird's `krt_prefsrc`): what the node's own traffic over BGP routes
    /// leaves from.
    pub source_address_ipv4: Option<Ipv4Addr>,
    pub source_address_ipv6: Option<std::net::Ipv6Addr>,
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
    /// Unnumbered: the router at the other end of this link, by its IPv6
    /// link-local address, learned from its router advertisements or its
    /// connection (as FRR's `neighbor IFACE interface`).
    Interface(String),
}

impl PeerAddress {
    pub fn contains(&self, addr: IpAddr) -> bool {
        match self {
            PeerAddress::Single(a) => *a == addr,
            PeerAddress::Range(net) => net.contains(&addr),
            PeerAddress::Interface(_) => false,
        }
    }
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddress::Single(a) => a.fmt(f),
            PeerAddress::Range(n) => n.fmt(f),
            PeerAddress::Interface(i) => write!(f, "interface {i}"),
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

/// Limits on the prefixes a peer may have accepted, per family, as bird2's
/// `import limit` and FRR's `maximum-prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxPrefix {
    /// The limit per family; a family not listed has none.
    pub limits: Vec<(Family, u32)>,
    pub action: MaxPrefixAction,
    /// After a reset, how long the session stays down before tern accepts
    /// or makes a connection again (otherwise the usual connect-retry).
    pub restart_after: Option<Duration>,
}

impl MaxPrefix {
    pub fn limit(&self, family: Family) -> Option<u32> {
        self.limits.iter().find(|(f, _)| *f == family).map(|(_, l)| *l)
    }
}

/// What happens when a family's limit is exceeded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MaxPrefixAction {
    /// Log it (once per crossing) and go on accepting.
    Warn,
    /// Accept no new prefixes of that family beyond the limit (routes
    /// already accepted stay and can change).
    DiscardExcess,
    /// End the session with Cease / Maximum Number of Prefixes Reached
    /// (RFC 4486), as a Hard Reset when both sides sent the N bit (RFC 8538).
    Reset,
}

/// Which AS the peer must announce.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RemoteAs {
    Exact(u32),
    Any,
}

#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub name: String,
    pub session: SessionConfig,
    pub routing: RoutingConfig,
    /// BFD on this peer's path; a change keeps the session (timers change
    /// by a Poll Sequence).
    pub bfd: Option<BfdConfig>,
}

/// A peer's BFD session (`bfd = true` or `bfd = "PROFILE"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdConfig {
    /// The `[[bfd-profile]]` it comes from, `default` for `bfd = true`.
    pub profile: String,
    pub min_tx: Duration,
    pub min_rx: Duration,
    pub multiplier: u8,
    /// Wait for the peer to speak first.
    pub passive: bool,
}

impl BfdConfig {
    /// 300 ms × 3, what FRR's bfdd and bird2 use.
    pub fn default_profile() -> BfdConfig {
        BfdConfig {
            profile: "default".into(),
            min_tx: Duration::from_millis(300),
            min_rx: Duration::from_millis(300),
            multiplier: 3,
            passive: false,
        }
    }
}

/// How a peer's session is made and what it negotiates: any change needs
/// a new session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionConfig {
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
    pub graceful_restart: bool,
    /// Keep the peer's routes this long, stale, when its session ends from
    /// its side and graceful restart does not apply: a speaker on the node
    /// that cannot negotiate it (kube-vip) restarting.
    pub restart_hold: Option<Duration>,
    pub md5_password: Option<Secret>,
    pub extended_next_hop: bool,
    pub extended_message: bool,
}

/// What is done with a peer's routes: a change re-runs import and export
/// policy without touching the session.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingConfig {
    pub import: PolicyChain,
    pub export: PolicyChain,
    pub max_prefix: Option<MaxPrefix>,
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
        // Every structural problem first; what could be read is then
        // validated, so both kinds are reported together.
        let (raw, mut problems) = structure::read(text);
        let Some(raw): Option<RawConfig> = raw else {
            return Err(locate(problems));
        };
        let mut v = Validator {
            errors: Vec::new(),
            secrets,
            base: path.parent().unwrap_or(Path::new(".")),
        };
        let config = v.config(raw, path);
        problems.append(&mut v.errors);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(locate(problems))
        }
    }

    pub fn peer(&self, name: &str) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.name == name)
    }

    /// What tern announces as its own: `originate`, and the static routes
    /// marked `originate`.
    pub fn originated(&self) -> Vec<IpNet> {
        let mut out = self.originate.clone();
        for s in self.static_routes.iter().filter(|s| s.originate) {
            if !out.contains(&s.prefix) {
                out.push(s.prefix);
            }
        }
        out
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

    /// A systemd credential (`LoadCredential=NAME:PATH` in the unit): a
    /// file in `$CREDENTIALS_DIRECTORY`, readable by the service's user
    /// only, whatever the source file's owner.
    fn credential(&self, name: &str) -> Result<String, String> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err("a credential is named by a plain name such as upstream.md5".into());
        }
        let dir = self
            .env("CREDENTIALS_DIRECTORY")
            .map_err(|_| "no credentials were passed to tern (CREDENTIALS_DIRECTORY is not set; the unit needs LoadCredential=)".to_owned())?;
        self.file(&Path::new(&dir).join(name))
    }
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

/// Turns a file into the model (`validate`, `policies`), collecting
/// every problem with the span it comes from instead of stopping at the
/// first.
struct Validator<'a> {
    errors: Vec<(Option<Range<usize>>, String)>,
    secrets: &'a dyn SecretSource,
    base: &'a Path,
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
}
