//! `tern doctor`: what is wrong with this node's routing, said as checks an
//! operator can act on without a shell on the node. Each check is PASS,
//! WARN or FAIL, with its evidence and, when it is not PASS, the fix in one
//! sentence.
//!
//! Pure: [`diagnose`] takes what the status model already says (sessions,
//! BFD, kernel routes and their state, the node's sysctls) and decides.
//! The API gathers those facts ([`crate::api`]).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::health::HealthView;
use crate::status::{
    BfdStatus, Check, CheckStatus, FibStatus, PeerView, RibSummary, RouteInUse, RouteView, SessionState,
};

/// What the checks look at.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub peers: Vec<PeerView>,
    pub bfd: Option<BfdStatus>,
    /// None when kernel programming is off.
    pub fib: Option<FibStatus>,
    pub rib: Option<RibSummary>,
    /// Loc-RIB routes with their kernel state (at most a few thousand:
    /// the checks skip what they are not given).
    pub routes: Vec<RouteView>,
    /// `(path under /proc/sys, value)` of the sysctls that matter.
    pub sysctls: Vec<(String, String)>,
    /// For an address in some of those routes, what the kernel uses
    /// ([`lookups`] says which).
    pub in_use: Vec<(Lookup, Option<RouteInUse>)>,
    /// The health checks' verdicts.
    pub health: Vec<HealthView>,
}

/// A route whose use the kernel is asked about, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    pub prefix: IpNet,
    pub kind: LookupKind,
    /// The address asked about: the VIP, or the first host in the prefix.
    pub address: IpAddr,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LookupKind {
    /// A VIP of the node's own: its local route must be what is used.
    Vip,
    /// A route tern installed: nothing else may take its traffic.
    Installed,
    /// The node's own prefix: no routing daemon may send it elsewhere.
    Own,
}

/// Routing daemons' protocol numbers (`/etc/iproute2/rt_protos`): zebra,
/// bird, babel, bgp, isis, ospf, rip, eigrp.
const ROUTING_DAEMONS: &[u8] = &[11, 12, 42, 186, 187, 188, 189, 192];

/// The kernel is asked about at most this many routes.
const LOOKUPS_MAX: usize = 200;

/// Which addresses to ask the kernel about, for [`Facts::in_use`].
pub fn lookups(routes: &[RouteView]) -> Vec<Lookup> {
    let mut out = Vec::new();
    for r in routes {
        let Some(k) = &r.kernel else { continue };
        // IPv4 only: on this kernel (Debian 12's) an IPv6 fibmatch lookup
        // can answer the default route for a /128 or /64 that the same
        // request, asked alone, resolves right; it depends on the lookups
        // before it on the socket (reproduced with a raw socket, outside
        // tern). Until that is understood, IPv6 is not judged.
        if r.prefix.addr().is_ipv6() {
            continue;
        }
        let kind = if k.installed && k.detail.starts_with("VIP route") {
            LookupKind::Vip
        } else if k.installed {
            LookupKind::Installed
        } else if k.detail.contains("the node's own prefix") {
            LookupKind::Own
        } else {
            continue;
        };
        out.push(Lookup {
            prefix: r.prefix,
            kind,
            address: probe_address(&r.prefix, kind),
        });
        if out.len() == LOOKUPS_MAX {
            break;
        }
    }
    out
}

/// The address to ask about: the first host of a prefix; for the node's
/// own prefixes the last (the first is often the node's gateway address
/// for its pods, a local address).
fn probe_address(p: &IpNet, kind: LookupKind) -> IpAddr {
    if p.prefix_len() == p.max_prefix_len() {
        return p.addr();
    }
    let mut hosts = p.hosts();
    match kind {
        LookupKind::Own => hosts.next_back(),
        _ => hosts.next(),
    }
    .unwrap_or(p.addr())
}

/// Drift repaired within this long is worth a warning.
const DRIFT_WINDOW_SECS: u64 = 3600;

/// Hold times above this without BFD leave a dead neighbour unnoticed for
/// too long.
const SLOW_HOLD_TIME: u16 = 30;

fn check(
    name: impl Into<String>,
    status: CheckStatus,
    evidence: impl Into<String>,
    fix: Option<&str>,
) -> Check {
    Check {
        name: name.into(),
        status,
        evidence: evidence.into(),
        fix: fix.map(str::to_owned),
    }
}

/// Every check, in a stable order: sessions, BFD, routes in the kernel,
/// the kernel's own settings.
pub fn diagnose(f: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    sessions(f, &mut out);
    bfd(f, &mut out);
    health(f, &mut out);
    kernel_routes(f, &mut out);
    in_use(f, &mut out);
    sysctls(f, &mut out);
    out
}

/// What the kernel does with traffic to tern's routes: a VIP goes to its
/// local route, a learned prefix over tern's route, the node's own
/// prefixes never to another routing daemon's route. Anything else (a
/// policy rule, another table consulted first, a more specific or better
/// route of someone else's) takes the traffic.
fn in_use(f: &Facts, out: &mut Vec<Check>) {
    let protocol = f
        .fib
        .as_ref()
        .map_or(186, |s| if s.protocol == 0 { 186 } else { s.protocol });
    let used = |r: &Option<RouteInUse>| match r {
        Some(u) => format!("{} (protocol {}, table {})", u.prefix, u.protocol, u.table),
        None => "no route".to_owned(),
    };
    let mut vips = (0, Vec::new());
    let mut learned = (0, Vec::new());
    let mut own = (0, Vec::new());
    for (l, r) in &f.in_use {
        match l.kind {
            LookupKind::Vip => {
                vips.0 += 1;
                if !r.as_ref().is_some_and(|u| u.local) {
                    vips.1.push(format!("{} goes to {}", l.address, used(r)));
                }
            }
            LookupKind::Installed => {
                learned.0 += 1;
                if !r
                    .as_ref()
                    .is_some_and(|u| u.prefix == l.prefix && u.protocol == protocol)
                {
                    learned.1.push(format!("{} goes to {}", l.address, used(r)));
                }
            }
            LookupKind::Own => {
                own.0 += 1;
                // A route at least as specific as the prefix: not a default
                // route that merely covers addresses no pod uses.
                if let Some(u) = r.as_ref().filter(|u| {
                    ROUTING_DAEMONS.contains(&u.protocol) && u.prefix.prefix_len() >= l.prefix.prefix_len()
                }) {
                    own.1.push(format!(
                        "{} of {} goes to {}",
                        l.address,
                        l.prefix,
                        used(&Some(u.clone()))
                    ));
                }
            }
        }
    }
    let mut report =
        |name: &str, (n, bad): (usize, Vec<String>), ok: &str, status: CheckStatus, fix: &str| {
            if n == 0 {
                return;
            }
            if bad.is_empty() {
                out.push(check(name, CheckStatus::Pass, format!("{n} checked: {ok}"), None));
            } else {
                out.push(check(
                    name,
                    status,
                    format!(
                        "{} of {n}: {}",
                        bad.len(),
                        bad.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
                    ),
                    Some(fix),
                ));
            }
        };
    report(
        "VIP routes in use",
        vips,
        "each VIP is delivered on the node",
        CheckStatus::Fail,
        "Something is consulted before the local table (an `ip rule`) or the VIP is routed elsewhere: pods on this node cannot reach their own VIPs.",
    );
    report(
        "learned routes in use",
        learned,
        "traffic to each goes over tern's route",
        CheckStatus::Warn,
        "A more specific route, a lower metric or a policy rule of someone else's takes this traffic; find it with `ip route get ADDRESS fibmatch`.",
    );
    report(
        "own prefixes",
        own,
        "no routing daemon sends them elsewhere",
        CheckStatus::Fail,
        "Another routing daemon routes the node's own prefix away (its routes came back from upstream): traffic to this node's pods leaves the node. Stop it installing them.",
    );
}

fn sessions(f: &Facts, out: &mut Vec<Check>) {
    let bfd_peers: Vec<&str> = f
        .bfd
        .iter()
        .flat_map(|b| b.sessions.iter().map(|s| s.peer.as_str()))
        .collect();
    for p in &f.peers {
        let name = format!("session {}", p.name);
        let snap = &p.snapshot;
        if snap.state != SessionState::Established {
            let last = snap.last_error.as_deref().unwrap_or("no error recorded");
            out.push(check(
                name,
                CheckStatus::Fail,
                format!("{} for {} s; last error: {last}", snap.state, p.uptime),
                Some(match p.role.as_str() {
                    "cilium" => "Cilium dials tern: check its CiliumBGPPeerConfig (peer address ::1, AS numbers) and that its agent runs.",
                    "metallb" => "MetalLB's speaker dials tern: check its BGPPeer (peerAddress, peerASN = this peer's local-asn) and that the speaker runs on this node.",
                    "kube-vip" => "kube-vip dials tern on port 179: check its bgp_peers (127.0.0.1 and this peer's local-asn) and that it runs on this node.",
                    _ => "Check the peer's address, AS and reachability against the last error (`tern show peer NAME`).",
                }),
            ));
            continue;
        }
        let Some(n) = &snap.negotiated else { continue };
        let families: Vec<String> = n.families.iter().map(ToString::to_string).collect();
        out.push(check(
            name,
            CheckStatus::Pass,
            format!(
                "established for {} s with AS {}, families {}",
                p.uptime,
                n.peer_asn,
                families.join(", ")
            ),
            None,
        ));
        let gr_hint = match p.role.as_str() {
            "cilium" => Some((
                "Cilium did not negotiate graceful restart: each agent restart withdraws the node's VIPs and pod CIDRs",
                "Enable gracefulRestart in the CiliumBGPPeerConfig.",
            )),
            "metallb" => Some((
                "MetalLB did not negotiate graceful restart: each speaker restart withdraws the node's VIPs",
                "Set enableGracefulRestart: true in the BGPPeer (FRR and frr-k8s modes; the native speaker cannot).",
            )),
            _ => None,
        };
        if let (Some((what, fix)), None) = (gr_hint, &n.graceful_restart) {
            out.push(check(
                format!("graceful restart with {}", p.name),
                CheckStatus::Warn,
                what,
                Some(fix),
            ));
        }
        if p.role == "upstream" && !bfd_peers.contains(&p.name.as_str()) && n.hold_time > SLOW_HOLD_TIME {
            out.push(check(
                format!("failure detection on {}", p.name),
                CheckStatus::Warn,
                format!(
                    "no BFD and a hold time of {} s: a dead router keeps this node's traffic that long",
                    n.hold_time
                ),
                Some("Set `bfd = true` on the peer (or a hold-time of 9 s)."),
            ));
        }
        if p.messages.updates_malformed > 0 {
            out.push(check(
                format!("UPDATEs from {}", p.name),
                CheckStatus::Warn,
                format!(
                    "{} UPDATEs with attribute errors, handled per RFC 7606 (their routes withdrawn or attributes dropped)",
                    p.messages.updates_malformed
                ),
                Some("The peer's software sends malformed attributes: the log names each error; report it to the peer's operator."),
            ));
        }
        if p.prefixes.over_limit > 0 {
            out.push(check(
                format!("max-prefix on {}", p.name),
                CheckStatus::Warn,
                format!(
                    "{} accepted, over the limit in {} families",
                    p.prefixes.accepted, p.prefixes.over_limit
                ),
                Some("Find out why the peer sends more than expected, or raise max-prefix."),
            ));
        }
    }
}

/// Health checks: a failing one holds back the VIPs it gates (or only
/// reports, with `action = "report"`).
fn health(f: &Facts, out: &mut Vec<Check>) {
    for h in &f.health {
        let name = format!("health check {}", h.name);
        let from = h
            .entered
            .as_deref()
            .or(h.namespace.as_deref())
            .unwrap_or("the host");
        let last = h.last_result.as_deref().unwrap_or("no probe yet");
        if h.passing() {
            out.push(check(
                name,
                CheckStatus::Pass,
                format!("passing for {} s ({} from {from}): {last}", h.for_secs, h.probe),
                None,
            ));
            continue;
        }
        let (status, effect) = match h.action.as_str() {
            "report" => (CheckStatus::Warn, "reported only".to_owned()),
            "withdraw" => (CheckStatus::Fail, format!("{} withdrawn", h.gates)),
            _ => (
                CheckStatus::Fail,
                format!("{} advertised with GRACEFUL_SHUTDOWN", h.gates),
            ),
        };
        out.push(check(
            name,
            status,
            format!(
                "failing for {} s ({} from {from}): {last}; {effect}",
                h.for_secs, h.probe
            ),
            Some("The probe's path from that namespace is broken: check the datapath it crosses (a stale Cilium datapath is fixed by restarting the node's Cilium agent); the VIPs come back after `rise` good probes."),
        ));
    }
}

fn bfd(f: &Facts, out: &mut Vec<Check>) {
    for s in f.bfd.iter().flat_map(|b| &b.sessions) {
        let name = format!("BFD to {}", s.peer);
        if s.state == "up" {
            let status = if s.flaps > 0 {
                CheckStatus::Warn
            } else {
                CheckStatus::Pass
            };
            out.push(check(
                name,
                status,
                format!("up, {} ms detection, {} flaps", s.detection_time_ms, s.flaps),
                (s.flaps > 0).then_some("Flaps mean lost packets or timers too tight for the link: raise min-rx/min-tx or the multiplier."),
            ));
        } else {
            out.push(check(
                name,
                CheckStatus::Fail,
                format!(
                    "{} (ours: {}; the peer's: {})",
                    s.state, s.diagnostic, s.remote_diagnostic
                ),
                Some("Check the peer's BFD configuration and that UDP 3784/4784 passes both ways."),
            ));
        }
    }
}

fn kernel_routes(f: &Facts, out: &mut Vec<Check>) {
    let Some(fib) = &f.fib else {
        out.push(check(
            "kernel routes",
            CheckStatus::Warn,
            "kernel route programming is off ([fib] enabled = false)",
            Some("Nothing tern learns reaches the kernel; enable [fib] unless another daemon installs the routes."),
        ));
        return;
    };
    let c = &fib.counters;
    if !fib.strangers.is_empty() {
        out.push(check(
            "routes of tern's protocol",
            CheckStatus::Fail,
            format!(
                "{} route(s) of protocol {} that tern did not write: {}",
                fib.strangers.len(),
                fib.protocol,
                fib.strangers.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
            ),
            Some("Another daemon uses tern's protocol number (FRR's zebra, as MetalLB's FRR mode and frr-k8s run it, takes 186 for its own) and its copies outlive tern's changes. Set [fib] protocol to a number of tern's own (e.g. 200) and remove the copies (`ip route flush proto 186 metric N`)."),
        ));
    }
    if fib.failed_routes.is_empty() {
        out.push(check(
            "kernel writes",
            CheckStatus::Pass,
            format!("{} routes installed, none refused", c.installed),
            None,
        ));
    } else {
        let some: Vec<String> = fib
            .failed_routes
            .iter()
            .take(5)
            .map(|r| format!("{} ({})", r.prefix, r.error))
            .collect();
        out.push(check(
            "kernel writes",
            CheckStatus::Fail,
            format!("{} routes refused: {}", fib.failed_routes.len(), some.join("; ")),
            Some("The kernel says why for each (`tern show fib`); tern retries them."),
        ));
    }
    if !fib.unresolved_prefixes.is_empty() {
        out.push(check(
            "next hops",
            CheckStatus::Warn,
            format!(
                "{} prefixes have no next hop that resolves: {}",
                fib.unresolved_prefixes.len(),
                fib.unresolved_prefixes
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some("The router's address must be on a connected prefix of a link that is up."),
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(at) = fib
        .last_repair_at
        .filter(|at| now.saturating_sub(*at) < DRIFT_WINDOW_SECS)
    {
        out.push(check(
            "drift",
            CheckStatus::Warn,
            format!(
                "routes or nexthop objects of tern's were changed by someone else and put back, the last {} s ago ({} since start)",
                now.saturating_sub(at),
                c.repairs
            ),
            Some("Find what else writes the routing table; the log line \"kernel routes drifted\" names the prefixes."),
        ));
    }
    // Routes tern means to have in the kernel, and whether they are.
    let mut missing = Vec::new();
    let mut vips = 0;
    for r in &f.routes {
        let Some(k) = &r.kernel else { continue };
        if k.installed && k.detail.starts_with("VIP route") {
            vips += 1;
        }
        if k.wanted && !k.installed {
            missing.push(format!("{}: {}", r.prefix, k.detail));
        }
    }
    if missing.is_empty() {
        out.push(check(
            "routes in the kernel",
            CheckStatus::Pass,
            format!("every route tern should install is there ({vips} VIP routes)"),
            None,
        ));
    } else {
        out.push(check(
            "routes in the kernel",
            CheckStatus::Fail,
            format!(
                "{} missing: {}",
                missing.len(),
                missing.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            ),
            Some("`tern show routes PREFIX` says why for each."),
        ));
    }
}

fn sysctls(f: &Facts, out: &mut Vec<Check>) {
    let get = |k: &str| f.sysctls.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim());
    for (key, what) in [
        ("net/ipv4/ip_forward", "IPv4 forwarding"),
        ("net/ipv6/conf/all/forwarding", "IPv6 forwarding"),
    ] {
        match get(key) {
            Some("1") => out.push(check(what, CheckStatus::Pass, format!("{key} = 1"), None)),
            Some(v) => out.push(check(
                what,
                CheckStatus::Fail,
                format!("{key} = {v}: the node does not route"),
                Some("Set it to 1 (Cilium in native routing mode needs it)."),
            )),
            None => {}
        }
    }
    let upstreams = f.peers.iter().filter(|p| p.role == "upstream").count();
    if let Some(v) = get("net/ipv4/conf/all/rp_filter")
        && v == "1"
        && upstreams > 1
    {
        out.push(check(
            "reverse path filter",
            CheckStatus::Warn,
            format!("net/ipv4/conf/all/rp_filter = 1 (strict) with {upstreams} upstream sessions: replies over the other uplink are dropped"),
            Some("Use loose mode (2) with ECMP over several uplinks."),
        ));
    }
}

/// The sysctls the checks read, from this node's `/proc/sys`.
pub fn read_sysctls() -> Vec<(String, String)> {
    [
        "net/ipv4/ip_forward",
        "net/ipv6/conf/all/forwarding",
        "net/ipv4/conf/all/rp_filter",
    ]
    .iter()
    .filter_map(|k| {
        std::fs::read_to_string(format!("/proc/sys/{k}"))
            .ok()
            .map(|v| ((*k).to_owned(), v.trim().to_owned()))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::session::negotiate::{Negotiated, PeerGracefulRestart};
    use crate::status::{BfdView, FailedRoute, KernelState, PeerStatus, PrefixCounts};

    fn peer(name: &str, role: &str, up: bool, gr: bool, hold: u16) -> PeerView {
        let status = PeerStatus::new(name.into(), role.into(), "fd00:101::fffe".into());
        status.update(|s| {
            s.state = if up {
                SessionState::Established
            } else {
                SessionState::Active
            };
            s.negotiated = up.then(|| Negotiated {
                peer_asn: 65000,
                peer_id: "10.0.0.1".parse().unwrap(),
                hold_time: hold,
                keepalive: Duration::from_secs(u64::from(hold / 3)),
                families: vec![bgp_proto::Family::IPV4_UNICAST],
                four_octet_as: true,
                extended_next_hop: false,
                extended_message: false,
                route_refresh: true,
                enhanced_route_refresh: false,
                graceful_restart: gr.then(|| PeerGracefulRestart {
                    restarting: false,
                    notification: true,
                    restart_time: 120,
                    families: vec![],
                }),
                peer_hostname: None,
                rx: Default::default(),
                tx: Default::default(),
            });
        });
        if !up {
            status.error("connect to [fd00:101::fffe]:179: Connection refused (os error 111)".into());
        }
        status.view(PrefixCounts::default())
    }

    fn bfd_session(peer: &str, state: &str) -> BfdView {
        BfdView {
            diagnostic: if state == "up" {
                "none".into()
            } else {
                "control detection time expired".into()
            },
            ..BfdView::sample(peer, state)
        }
    }

    fn route(prefix: &str, wanted: bool, installed: bool, detail: &str) -> RouteView {
        RouteView {
            prefix: prefix.parse().unwrap(),
            paths: vec![],
            kernel: Some(KernelState {
                wanted,
                installed,
                detail: detail.into(),
            }),
        }
    }

    fn healthy() -> Facts {
        Facts {
            peers: vec![
                peer("cilium", "cilium", true, true, 90),
                peer("fabric", "upstream", true, true, 9),
            ],
            bfd: Some(BfdStatus {
                sessions: vec![bfd_session("fabric", "up")],
                ..BfdStatus::default()
            }),
            fib: Some(FibStatus::default()),
            rib: None,
            routes: vec![
                route("10.224.2.0/24", true, true, "route: via fd00:101::fffe dev eth0"),
                route(
                    "10.96.1.10/32",
                    true,
                    true,
                    "VIP route: local dev lo, table local",
                ),
                route("10.224.1.0/24", false, false, "the node's own prefix"),
            ],
            sysctls: vec![
                ("net/ipv4/ip_forward".into(), "1".into()),
                ("net/ipv6/conf/all/forwarding".into(), "1".into()),
                ("net/ipv4/conf/all/rp_filter".into(), "2".into()),
            ],
            in_use: vec![
                in_use(
                    "10.224.2.0/24",
                    LookupKind::Installed,
                    Some(("10.224.2.0/24", 186, false)),
                ),
                in_use(
                    "10.96.1.10/32",
                    LookupKind::Vip,
                    Some(("10.96.1.10/32", 186, true)),
                ),
                in_use(
                    "10.224.1.0/24",
                    LookupKind::Own,
                    Some(("10.224.1.0/24", 2, false)),
                ),
            ],
            health: vec![HealthView::sample("pod-dns", true)],
        }
    }

    fn in_use(
        prefix: &str,
        kind: LookupKind,
        used: Option<(&str, u8, bool)>,
    ) -> (Lookup, Option<RouteInUse>) {
        let prefix: IpNet = prefix.parse().unwrap();
        (
            Lookup {
                prefix,
                kind,
                address: probe_address(&prefix, kind),
            },
            used.map(|(p, protocol, local)| RouteInUse {
                prefix: p.parse().unwrap(),
                protocol,
                table: if local { 255 } else { 254 },
                local,
            }),
        )
    }

    fn of(checks: &[Check], name: &str) -> Check {
        checks
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no check {name:?} in {checks:#?}"))
    }

    #[test]
    fn a_healthy_node_is_all_pass() {
        let checks = diagnose(&healthy());
        let not: Vec<&Check> = checks.iter().filter(|c| c.status != CheckStatus::Pass).collect();
        assert!(not.is_empty(), "{not:#?}");
        assert!(
            of(&checks, "routes in the kernel")
                .evidence
                .contains("1 VIP routes")
        );
    }

    #[test]
    fn each_problem_is_named_with_its_evidence_and_fix() {
        let mut f = healthy();
        f.peers = vec![
            peer("cilium", "cilium", true, false, 90),
            peer("fabric", "upstream", true, true, 90),
            peer("fabric-b", "upstream", false, true, 90),
        ];
        f.peers[1].messages.updates_malformed = 2;
        f.bfd = Some(BfdStatus {
            sessions: vec![bfd_session("fabric-b", "down")],
            ..BfdStatus::default()
        });
        f.fib = Some(FibStatus {
            failed_routes: vec![FailedRoute {
                prefix: "10.224.3.0/24".into(),
                table: 254,
                error: "Network is unreachable (errno 101)".into(),
                attempts: 3,
                retry_in: 4,
            }],
            unresolved_prefixes: vec!["10.224.4.0/24".into()],
            protocol: 186,
            strangers: vec!["0.0.0.0/0 via fd00:101::fffe table 254 metric 20 nhid 186000000".into()],
            last_repair_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs() - 60),
            ..FibStatus::default()
        });
        f.routes
            .push(route("10.224.3.0/24", true, false, "the kernel refused it"));
        f.sysctls = vec![
            ("net/ipv4/ip_forward".into(), "0".into()),
            ("net/ipv4/conf/all/rp_filter".into(), "1".into()),
        ];
        f.in_use = vec![
            // A more specific route of another protocol.
            in_use(
                "10.224.2.0/24",
                LookupKind::Installed,
                Some(("10.224.2.0/25", 4, false)),
            ),
            // A rule or a route sends the VIP away from its local route.
            in_use("10.96.1.10/32", LookupKind::Vip, Some(("0.0.0.0/0", 186, false))),
            // bird routes the node's own pod CIDR back to the router.
            in_use(
                "10.224.1.0/24",
                LookupKind::Own,
                Some(("10.224.1.0/24", 12, false)),
            ),
        ];
        f.health = vec![HealthView::sample("pod-dns", false)];
        let checks = diagnose(&f);
        let expect = [
            (
                "health check pod-dns",
                CheckStatus::Fail,
                "no answer within 500 ms; every VIP withdrawn",
            ),
            (
                "graceful restart with cilium",
                CheckStatus::Warn,
                "did not negotiate graceful restart",
            ),
            (
                "failure detection on fabric",
                CheckStatus::Warn,
                "hold time of 90 s",
            ),
            ("session fabric-b", CheckStatus::Fail, "Connection refused"),
            (
                "BFD to fabric-b",
                CheckStatus::Fail,
                "control detection time expired",
            ),
            (
                "routes of tern's protocol",
                CheckStatus::Fail,
                "1 route(s) of protocol 186 that tern did not write: 0.0.0.0/0 via fd00:101::fffe table 254 metric 20",
            ),
            (
                "kernel writes",
                CheckStatus::Fail,
                "10.224.3.0/24 (Network is unreachable",
            ),
            ("next hops", CheckStatus::Warn, "10.224.4.0/24"),
            ("drift", CheckStatus::Warn, "put back, the last 60 s ago"),
            (
                "routes in the kernel",
                CheckStatus::Fail,
                "10.224.3.0/24: the kernel refused it",
            ),
            ("IPv4 forwarding", CheckStatus::Fail, "net/ipv4/ip_forward = 0"),
            (
                "reverse path filter",
                CheckStatus::Warn,
                "rp_filter = 1 (strict) with 2 upstream",
            ),
            (
                "learned routes in use",
                CheckStatus::Warn,
                "10.224.2.1 goes to 10.224.2.0/25 (protocol 4",
            ),
            (
                "VIP routes in use",
                CheckStatus::Fail,
                "10.96.1.10 goes to 0.0.0.0/0",
            ),
            (
                "UPDATEs from fabric",
                CheckStatus::Warn,
                "2 UPDATEs with attribute errors",
            ),
            (
                "own prefixes",
                CheckStatus::Fail,
                "10.224.1.254 of 10.224.1.0/24 goes to 10.224.1.0/24 (protocol 12",
            ),
        ];
        for (name, status, evidence) in expect {
            let c = of(&checks, name);
            assert_eq!(c.status, status, "{c:#?}");
            assert!(c.evidence.contains(evidence), "{c:#?}");
            assert!(c.fix.is_some(), "{c:#?}");
        }
        // A session with BFD is not told to get it.
        assert!(checks.iter().all(|c| c.name != "failure detection on fabric-b"));
    }
}
