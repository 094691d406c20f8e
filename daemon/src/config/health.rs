//! Health checks (`[[health-check]]`): probes of the node's own datapath
//! that gate the VIPs it advertises. Read from [`super::schema`] here; run
//! by [`crate::health`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::Validator;
use super::policies::Sets;
use super::schema::RawHealthCheck;

/// One health check: a probe, where it runs from, its timing, and what a
/// failure does.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthCheck {
    pub name: Arc<str>,
    pub probe: Probe,
    /// Run from this network namespace instead of the host's.
    pub namespace: Option<ProbeNamespace>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes that end a failure.
    pub rise: u32,
    /// Consecutive failures that start one.
    pub fall: u32,
    /// What a failure does to the VIPs; `None` reports only.
    pub gate: Option<Gate>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection is accepted.
    Tcp(SocketAddr),
    /// An HTTP(S) GET answers with one of `expect`.
    Http {
        tls: bool,
        address: SocketAddr,
        /// The URL's host and port, for the Host header and TLS's SNI.
        authority: String,
        path: String,
        expect: Vec<u16>,
    },
    /// A DNS server answers `name` (type A) with NOERROR.
    Dns { server: SocketAddr, name: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeNamespace {
    /// `/run/netns/NAME`, `/proc/PID/ns/net`.
    Path(PathBuf),
    /// The pinned namespace (`/run/netns/*`, where containerd and CRI-O
    /// pin pod sandboxes) that holds this address.
    PodIp(IpAddr),
}

/// The VIPs a failing check gates, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    pub check: Arc<str>,
    /// Which of the node's own routes (from Cilium) are gated.
    pub selector: policy::VipSelector,
    pub action: GateAction,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GateAction {
    /// Keep advertising with GRACEFUL_SHUTDOWN (RFC 8326) and our AS
    /// prepended this many times to external peers (LOCAL_PREF 0 to
    /// internal ones); the node forwards over any other path itself.
    GracefulShutdown(u8),
    /// Withdraw: the node neither advertises nor uses its own path.
    Withdraw,
}

impl std::fmt::Display for GateAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateAction::Withdraw => f.write_str("withdraw"),
            GateAction::GracefulShutdown(_) => f.write_str("graceful-shutdown"),
        }
    }
}

impl Validator<'_> {
    pub(super) fn health_checks(
        &mut self,
        raw: Vec<Spanned<RawHealthCheck>>,
        sets: &Sets,
        vips: Option<&policy::VipSelector>,
    ) -> Vec<HealthCheck> {
        let mut out: Vec<HealthCheck> = Vec::new();
        for c in raw {
            let span = c.span();
            let c = c.into_inner();
            let name: Arc<str> = c.name.get_ref().as_str().into();
            if out.iter().any(|o| o.name == name) {
                self.error(
                    c.name.span(),
                    format!("a health check named {name:?} is already defined"),
                );
            }
            let Some(probe) = self.probe(&c, span.clone()) else {
                continue;
            };
            let namespace = match (&c.namespace, &c.pod_ip) {
                (Some(_), Some(p)) => {
                    self.error(p.span(), "give namespace or pod-ip, not both");
                    None
                }
                (Some(n), None) => {
                    let p = PathBuf::from(n.get_ref());
                    if !p.is_absolute() {
                        self.error(
                            n.span(),
                            "namespace is a path, e.g. /run/netns/NAME or /proc/PID/ns/net",
                        );
                    }
                    Some(ProbeNamespace::Path(p))
                }
                (None, Some(ip)) => self.parse::<IpAddr>(ip, "pod-ip").map(ProbeNamespace::PodIp),
                (None, None) => None,
            };
            let interval = self.seconds(c.interval.as_ref(), 2.0, "interval");
            let timeout = self.seconds(c.timeout.as_ref(), 1.0, "timeout");
            if let Some(t) = &c.timeout
                && timeout > interval
            {
                self.error(t.span(), "timeout must not be longer than interval");
            }
            let count = |v: &mut Self, x: &Option<Spanned<u32>>, what: &str| match x {
                Some(n) if *n.get_ref() == 0 || *n.get_ref() > 100 => {
                    v.error(n.span(), format!("{what} is from 1 to 100"));
                    1
                }
                Some(n) => *n.get_ref(),
                None => 3,
            };
            let rise = count(self, &c.rise, "rise");
            let fall = count(self, &c.fall, "fall");
            let prepend = match &c.prepend {
                Some(p) if *p.get_ref() > 10 => {
                    self.error(p.span(), "prepend is at most 10");
                    10
                }
                Some(p) => *p.get_ref(),
                None => 2,
            };
            let action = match c.action.as_ref().map(|a| (a, a.get_ref().as_str())) {
                None | Some((_, "withdraw")) => Some(GateAction::Withdraw),
                Some((_, "graceful-shutdown")) => Some(GateAction::GracefulShutdown(prepend)),
                Some((_, "report")) => None,
                Some((a, other)) => {
                    self.error(
                        a.span(),
                        format!("invalid action {other:?}: expected withdraw, graceful-shutdown or report"),
                    );
                    None
                }
            };
            let selector = match &c.prefix_sets {
                Some(names) => policy::VipSelector {
                    prefix_sets: names
                        .iter()
                        .filter_map(|n| self.lookup(&sets.prefix, n, "prefix-set"))
                        .collect(),
                    communities: None,
                    host_routes_only: false,
                },
                None => vips.cloned().unwrap_or_default(),
            };
            out.push(HealthCheck {
                gate: action.map(|action| Gate {
                    check: name.clone(),
                    selector,
                    action,
                }),
                name,
                probe,
                namespace,
                interval,
                timeout,
                rise,
                fall,
            });
        }
        out
    }

    fn seconds(&mut self, v: Option<&Spanned<f64>>, default: f64, what: &str) -> Duration {
        match v {
            Some(s) if !(0.05..=3600.0).contains(s.get_ref()) => {
                self.error(s.span(), format!("{what} is in seconds, from 0.05 to 3600"));
                Duration::from_secs_f64(default)
            }
            Some(s) => Duration::from_secs_f64(*s.get_ref()),
            None => Duration::from_secs_f64(default),
        }
    }

    fn probe(&mut self, c: &RawHealthCheck, span: std::ops::Range<usize>) -> Option<Probe> {
        let kind = c.probe.get_ref().as_str();
        let needs = |v: &mut Self, what: &str| {
            v.error(span.clone(), format!("a {kind} probe needs `{what}`"));
            None
        };
        match kind {
            "tcp" => {
                let Some(a) = &c.address else {
                    return needs(self, "address");
                };
                self.parse::<SocketAddr>(a, "address (address:port)")
                    .map(Probe::Tcp)
            }
            "dns" => {
                let Some(a) = &c.address else {
                    return needs(self, "address");
                };
                let server = match a.get_ref().parse::<IpAddr>() {
                    Ok(ip) => SocketAddr::new(ip, 53),
                    Err(_) => self.parse::<SocketAddr>(a, "address (address or address:port)")?,
                };
                let name = c
                    .query
                    .as_ref()
                    .map_or("kubernetes.default.svc.cluster.local", |q| q.get_ref().as_str());
                if let Err(e) = crate::health::dns::query(0, name) {
                    self.error(c.query.as_ref().map_or(span.clone(), Spanned::span), e);
                    return None;
                }
                Some(Probe::Dns {
                    server,
                    name: name.to_owned(),
                })
            }
            "http" | "https" => {
                let Some(u) = &c.url else {
                    return needs(self, "url");
                };
                let Some((tls, address, authority, path)) = parse_url(u.get_ref()) else {
                    self.error(
                        u.span(),
                        format!(
                            "invalid url {:?}: expected http(s)://ADDRESS[:PORT]/PATH with an IP address",
                            u.get_ref()
                        ),
                    );
                    return None;
                };
                if tls != (kind == "https") {
                    self.error(u.span(), format!("a {kind} probe needs a {kind}:// url"));
                }
                let expect = match &c.expect_status {
                    Some(list) if list.is_empty() => {
                        self.error(span.clone(), "expect-status must list at least one status");
                        vec![200]
                    }
                    Some(list) => list.clone(),
                    None => vec![200],
                };
                Some(Probe::Http {
                    tls,
                    address,
                    authority,
                    path,
                    expect,
                })
            }
            other => {
                self.error(
                    c.probe.span(),
                    format!("invalid probe {other:?}: expected tcp, http, https or dns"),
                );
                None
            }
        }
    }
}

/// `http[s]://ADDRESS[:PORT][/PATH]` with an IP address (no name
/// resolution: probes are of the node's own datapath).
fn parse_url(url: &str) -> Option<(bool, SocketAddr, String, String)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        (true, url.strip_prefix("https://")?)
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let port = if tls { 443 } else { 80 };
    let address = match authority.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            let host = authority.trim_start_matches('[').trim_end_matches(']');
            SocketAddr::new(host.parse().ok()?, port)
        }
    };
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some((tls, address, authority.to_owned(), path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls_name_an_address_a_port_and_a_path() {
        let (tls, a, host, path) = parse_url("http://10.0.0.1:8080/healthz").unwrap();
        assert!(!tls);
        assert_eq!(a.to_string(), "10.0.0.1:8080");
        assert_eq!((host.as_str(), path.as_str()), ("10.0.0.1:8080", "/healthz"));
        let (tls, a, _, path) = parse_url("https://[fd00::1]").unwrap();
        assert!(tls);
        assert_eq!(a.to_string(), "[fd00::1]:443");
        assert_eq!(path, "/");
        assert!(parse_url("http://node.example/healthz").is_none());
        assert!(parse_url("ftp://10.0.0.1/").is_none());
        assert!(parse_url("http://10.0.0.1/a b").is_none());
    }
}
