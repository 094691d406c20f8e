//! A multi-node lab: an L2 segment joining one or two upstream FRR routers
//! and N nodes, each running tern beside a Cilium-like GoBGP, with pods.
//!
//! ```text
//!          segment: bridge br0 in its own namespace (10.101.0.0/24, fd00:101::/64)
//!   +---------------+------------------+----------------------+----------------------+
//!   | eth-seg       | eth-seg          | eth-up               | eth-up
//! router upstream   [router upstream-b] node-21                node-22 ...
//!  ::fffe .254       ::fffd .253         ::21 .21              ::22 .22
//!  AS 4200001000     AS 4200001001       AS 4210101021         AS 4210101022
//!  zebra + bgpd,     (the same)          tern ── ::1 ── gobgpd "Cilium" (AS 4220101000)
//!  installs routes                       lxc10 ── pod 10.224.1.10, fd00:101:224:1::10
//!                                        [lxc11 ── pod 10.224.1.11 ...]
//! ```
//!
//! - Routers: one eBGP session (IPv6, extended next hop) per node,
//!   `bgp bestpath as-path multipath-relax`, `maximum-paths 8`, graceful
//!   restart, and `default-originate` towards every node. bgpd hands its
//!   routes to zebra, which installs them, so a router forwards between
//!   nodes. A router may also originate test prefixes
//!   ([`TopologyBuilder::router_network`]).
//! - Routers send `next-hop-self`: without it FRR 8.4 passes an IPv6 route
//!   from node 2 to node 1 with node 2's own address as next hop (a "third
//!   party" next hop, RFC 4271 §5.1.3, as they share the segment), but an
//!   IPv4 route over the same extended-next-hop session with its own; with
//!   it, everything a node learns goes through the router, in both
//!   families.
//! - Nodes get their default route from the routers over BGP, installed by
//!   tern like any other learned route, rather than a static one: a node's
//!   whole view of the outside is then what tern installs, and taking it
//!   away (tern stopped with `keep-routes-on-stop = false`) really cuts the
//!   node off.
//! - Node X's tern: AS 42101010XX, peers `cilium` (`::1`, role cilium) and
//!   one `upstream` peer per router (`upstream`, `upstream-b`; extended
//!   next hop, connect-retry 1, hold time 9), `hostname = "node-2X"`.
//!   Its GoBGP (Cilium's configuration: port -1, dials `::1`, graceful
//!   restart 120 s with the N bit) announces the pod CIDRs
//!   `10.224.X.0/24` and `fd00:101:224:X::/64` with next hop `::1`.
//! - Pods as Cilium wires them: each pod namespace is joined to the node
//!   by a veth (`lxcH` on the node, `eth0` in the pod); the node side holds
//!   the gateway `10.224.X.1/32` and `fd00:101:224:X::1/128` and a host
//!   route to the pod; the pod has `10.224.X.H/32` and
//!   `fd00:101:224:X::H/128` with default routes via the node. (A /24 on
//!   the node side would not allow a second pod on another veth.)
//! - Forwarding is on in the nodes and routers; nodes keep their IPv6
//!   addresses when a link goes down (`keep_addr_on_down`), as IPv4 does.
//!
//! - [`cluster`]: the lab of issue 5 as its operators run it: three
//!   nodes, one FRR router, and LoadBalancer VIPs ([`NodeId::vips`],
//!   `10.96.X.10/32` and `fd00:96:X::10/128`) that each node's Cilium
//!   advertises beside its pod CIDRs.
//! - The router may be bird2 instead of FRR ([`TopologyBuilder::bird`]):
//!   the same sessions (one per node, IPv6, extended next hop, `next hop
//!   self`, graceful restart, defaults sent to the nodes), with BIRD's
//!   `kernel` protocols installing what it learns.
//!
//! Every namespace, process and file is a guard of the harness: dropping
//! the [`Topology`] stops the daemons by PID and deletes the namespaces;
//! when a test fails, it first prints every daemon's state and every
//! namespace's kernel routes, then the logs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::bird::Bird;
use crate::frr::{Frr, FrrOptions, FrrPath};
use crate::gobgp::{Gobgp, cilium_config};
use crate::kernel::{self, KernelRoute};
use crate::netns::{Bridge, Netns, veth};
use crate::tern::Tern;
use crate::wait::{timeout, wait_until};
use crate::workdir::WorkDir;
use crate::{nft, unique_name};

pub const CILIUM_ASN: u32 = 4220101000;
/// Cilium's gRPC API port, on each node namespace's own loopback.
pub const GOBGP_API_PORT: u16 = 50051;

/// Sessions: GoBGP's first connection comes 5–9 s after it starts.
pub fn session_timeout() -> Duration {
    timeout(30)
}

/// Routes travel through BGP and into the kernel in well under a second.
pub fn route_timeout() -> Duration {
    timeout(10)
}

/// An upstream router as the nodes see it.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// Also the name of tern's peer: `upstream`, `upstream-b`.
    pub name: String,
    pub asn: u32,
    pub v4: String,
    pub v6: String,
}

impl Upstream {
    /// Router `i` (0, 1): `fd00:101::fffe`/`10.101.0.254`/AS 4200001000,
    /// then `::fffd`/`.253`/AS 4200001001.
    pub fn nth(i: u8) -> Upstream {
        Upstream {
            name: if i == 0 {
                "upstream".into()
            } else {
                format!("upstream-{}", (b'a' + i) as char)
            },
            asn: 4200001000 + u32::from(i),
            v4: format!("10.101.0.{}", 254 - i),
            v6: format!("fd00:101::{:x}", 0xfffe - u16::from(i)),
        }
    }
}

/// Node X's addresses and numbers (X = 1..9).
#[derive(Clone, Debug)]
pub struct NodeId {
    pub x: u8,
}

impl NodeId {
    pub fn name(&self) -> String {
        format!("node-2{}", self.x)
    }
    pub fn asn(&self) -> u32 {
        4210101020 + u32::from(self.x)
    }
    pub fn v4(&self) -> String {
        format!("10.101.0.2{}", self.x)
    }
    pub fn v6(&self) -> String {
        format!("fd00:101::2{}", self.x)
    }
    /// `10.224.X.0/24`, `fd00:101:224:X::/64`.
    pub fn pod_cidrs(&self) -> [String; 2] {
        [
            format!("10.224.{}.0/24", self.x),
            format!("fd00:101:224:{}::/64", self.x),
        ]
    }
    /// Pod `host`'s addresses: `10.224.X.H`, `fd00:101:224:X::H`.
    pub fn pod_addrs(&self, host: u8) -> (String, String) {
        (
            format!("10.224.{}.{host}", self.x),
            format!("fd00:101:224:{}::{host}", self.x),
        )
    }
    /// The LoadBalancer VIPs this node's Cilium advertises when the lab
    /// has VIPs ([`TopologyBuilder::vips`]): `10.96.X.10/32`,
    /// `fd00:96:X::10/128`.
    pub fn vips(&self) -> [String; 2] {
        [
            format!("10.96.{}.10/32", self.x),
            format!("fd00:96:{}::10/128", self.x),
        ]
    }
}

/// Which implementation the upstream routers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouterKind {
    Frr,
    Bird,
}

/// The lab of issue 5: three nodes with pods, VIPs and a Cilium each,
/// and the upstream FRR router; `tag` names it (see
/// [`Topology::builder`]).
pub fn cluster(tag: &str) -> TopologyBuilder {
    Topology::builder(tag).nodes(3).vips()
}

/// What a test wants different from the default lab.
pub struct TopologyBuilder {
    tag: String,
    nodes: u8,
    routers: u8,
    kind: RouterKind,
    vips: bool,
    fib: BTreeMap<u8, Vec<String>>,
    extra: BTreeMap<u8, String>,
    skip: Vec<(u8, u8)>,
    pods: Vec<(u8, u8)>,
    router_networks: Vec<String>,
    fixed: Option<(String, PathBuf)>,
    bfd: bool,
    cilium_extra: BTreeMap<u8, String>,
}

impl TopologyBuilder {
    /// Number of nodes (1 to 9; default 2).
    pub fn nodes(mut self, n: u8) -> Self {
        assert!((1..=9).contains(&n), "1 to 9 nodes");
        self.nodes = n;
        self
    }

    /// Number of upstream routers (1 or 2; default 1).
    pub fn routers(mut self, n: u8) -> Self {
        assert!((1..=2).contains(&n), "1 or 2 routers");
        self.routers = n;
        self
    }

    /// A line in node `x`'s `[fib]` table, e.g. `"scan-interval = 2"`.
    pub fn fib(mut self, x: u8, line: &str) -> Self {
        self.fib.entry(x).or_default().push(line.to_owned());
        self
    }

    /// TOML appended to node `x`'s tern configuration after `[fib]`, e.g.
    /// `"[fib.vip]\nenabled = false"`.
    pub fn tern_extra(mut self, x: u8, toml: &str) -> Self {
        self.extra.entry(x).or_default().push_str(toml);
        self
    }

    /// TOML appended to node `x`'s GoBGP ("Cilium") configuration, e.g.
    /// another `[[neighbors]]`.
    pub fn cilium_extra(mut self, x: u8, toml: &str) -> Self {
        self.cilium_extra.entry(x).or_default().push_str(toml);
        self
    }

    /// Every node's Cilium also advertises the node's VIPs
    /// ([`NodeId::vips`]).
    pub fn vips(mut self) -> Self {
        self.vips = true;
        self
    }

    /// The routers run bird2 instead of FRR.
    pub fn bird(mut self) -> Self {
        self.kind = RouterKind::Bird;
        self
    }

    /// Node `x`'s tern starts without a peer for router `i` (a test may
    /// add it later, e.g. by a reload); the router still has its session
    /// to the node configured.
    pub fn skip_upstream(mut self, x: u8, i: u8) -> Self {
        self.skip.push((x, i));
        self
    }

    /// Fixed, readable names instead of unique ones: namespaces
    /// `PREFIX-seg`, `PREFIX-upstream`, `PREFIX-node-21`,
    /// `PREFIX-node-21-pod-10`..., and `dir` as the work dir. For a lab
    /// that people look at ([`crate::unique_name`]'s are for tests).
    pub fn fixed_names(mut self, prefix: &str, dir: &std::path::Path) -> Self {
        self.fixed = Some((prefix.to_owned(), dir.to_owned()));
        self
    }

    /// Another pod on node `x` (every node has pod 10).
    pub fn pod(mut self, x: u8, host: u8) -> Self {
        self.pods.push((x, host));
        self
    }

    /// BFD on every upstream session: the routers run bfdd with `neighbor
    /// NODE bfd` (300 ms × 3), the nodes' upstream peers have `bfd = true`.
    pub fn bfd(mut self) -> Self {
        self.bfd = true;
        self
    }

    /// A prefix every router originates (`network`), e.g. to see ECMP.
    pub fn router_network(mut self, prefix: &str) -> Self {
        self.router_networks.push(prefix.to_owned());
        self
    }

    /// Builds and starts the lab; None when not root (the test is then
    /// skipped). Returns once every daemon's API answers; see
    /// [`Topology::wait_sessions`] and [`Topology::wait_converged`].
    #[track_caller]
    pub fn start(self) -> Option<Topology> {
        if !crate::require_root() {
            return None;
        }
        let names = Names {
            tag: self.tag.clone(),
            fixed: self.fixed.as_ref().map(|(p, _)| p.clone()),
        };
        let work = match &self.fixed {
            Some((_, dir)) => WorkDir::at(dir),
            None => WorkDir::new(&self.tag),
        };
        let mut segment = Bridge::new(&names.ns("seg", "seg"));
        let nodes: Vec<NodeId> = (1..=self.nodes).map(|x| NodeId { x }).collect();

        // Routers first: nodes dial them as soon as tern runs.
        let mut routers = Vec::new();
        for i in 0..self.routers {
            let up = Upstream::nth(i);
            let ns = Netns::new(&names.ns(&up.name, &up.name));
            ns.sysctl("net.ipv4.ip_forward", "1");
            ns.sysctl("net.ipv6.conf.all.forwarding", "1");
            // Like the nodes: IPv6 addresses survive a link down/up.
            ns.sysctl("net.ipv6.conf.all.keep_addr_on_down", "1");
            ns.sysctl("net.ipv6.conf.default.keep_addr_on_down", "1");
            let port = segment.attach(&ns, "eth-seg");
            ns.set_mac("eth-seg", &format!("02:00:0a:65:00:{:02x}", 254 - i));
            ns.add_addr("eth-seg", &format!("{}/64", up.v6));
            ns.add_addr("eth-seg", &format!("{}/24", up.v4));
            let speaker = match self.kind {
                RouterKind::Frr => {
                    let mut conf = frr_config(&up, &nodes, &self.router_networks);
                    if self.bfd {
                        conf = with_bfd(&conf, &nodes);
                    }
                    Speaker::Frr(Frr::start_with(
                        &ns,
                        &work,
                        &up.name,
                        &conf,
                        &FrrOptions {
                            install_routes: true,
                            bfd: self.bfd.then(String::new),
                            ..FrrOptions::default()
                        },
                    ))
                }
                RouterKind::Bird => {
                    let conf = bird_config(&up, &nodes, &self.router_networks);
                    Speaker::Bird(Bird::start(&ns, &work, &up.name, &conf))
                }
            };
            routers.push(Router {
                up,
                speaker,
                port,
                ns,
            });
        }
        let all_upstreams: Vec<Upstream> = routers.iter().map(|r| r.up.clone()).collect();

        let mut built = Vec::new();
        for id in nodes {
            let x = id.x;
            let upstreams: Vec<Upstream> = (0..self.routers)
                .filter(|i| !self.skip.contains(&(x, *i)))
                .map(|i| all_upstreams[usize::from(i)].clone())
                .collect();
            let ns = Netns::new(&names.ns(&format!("n{x}"), &id.name()));
            ns.sysctl("net.ipv4.ip_forward", "1");
            ns.sysctl("net.ipv6.conf.all.forwarding", "1");
            ns.sysctl("net.ipv6.conf.all.keep_addr_on_down", "1");
            ns.sysctl("net.ipv6.conf.default.keep_addr_on_down", "1");
            let port = segment.attach(&ns, "eth-up");
            ns.set_mac("eth-up", &format!("02:00:0a:65:00:{:02x}", 20 + x));
            ns.add_addr("eth-up", &format!("{}/64", id.v6()));
            ns.add_addr("eth-up", &format!("{}/24", id.v4()));
            let mut pods = vec![Pod::new(&names, &ns, &id, 10)];
            for (px, host) in &self.pods {
                if *px == x {
                    pods.push(Pod::new(&names, &ns, &id, *host));
                }
            }
            let fib = self.fib.get(&x).cloned().unwrap_or_default();
            let extra = self.extra.get(&x).cloned().unwrap_or_default();
            let upstream_lines = if self.bfd { "bfd = true\n" } else { "" };
            let config = tern_config(&id, &upstreams, upstream_lines, &fib, &extra);
            let tern = Tern::start(&ns, &work, &format!("{}-tern", id.name()), &config);
            let gobgp = Gobgp::start(
                &ns,
                &work,
                &format!("{}-cilium", id.name()),
                &(cilium_config(CILIUM_ASN, &format!("10.101.1.2{x}"), "::1", id.asn())
                    + self.cilium_extra.get(&x).map_or("", String::as_str)),
                GOBGP_API_PORT,
            );
            for p in id.pod_cidrs() {
                gobgp.add_route(&p, &[]);
            }
            let vips = if self.vips { id.vips().to_vec() } else { Vec::new() };
            for p in &vips {
                gobgp.add_route(p, &[]);
            }
            built.push(Node {
                tern,
                gobgp,
                pods,
                ns,
                id,
                upstreams,
                upstream_lines: upstream_lines.to_owned(),
                vips,
                port,
            });
        }
        Some(Topology {
            nodes: built,
            routers,
            segment,
            work,
        })
    }
}

/// Namespace names: unique ones for tests, or fixed ones for a lab.
struct Names {
    tag: String,
    fixed: Option<String>,
}

impl Names {
    /// `tern-it-<tag>-<short>-<pid>-<n>`, or `<prefix>-<long>`.
    fn ns(&self, short: &str, long: &str) -> String {
        match &self.fixed {
            Some(prefix) => format!("{prefix}-{long}"),
            None => unique_name(&format!("{}-{short}", self.tag)),
        }
    }
}

/// tern's configuration for node `id`: its Cilium, and one `upstream`
/// peer per router in `upstreams`, each with `upstream_lines` (TOML) added;
/// then `[fib]` with `fib`'s lines, then `extra`.
pub fn tern_config(
    id: &NodeId,
    upstreams: &[Upstream],
    upstream_lines: &str,
    fib: &[String],
    extra: &str,
) -> String {
    let mut c = format!(
        r#"router-id = "{v4}"
asn = {asn}
hostname = "{name}"
listen = ["[::]:179"]

[[peer]]
name = "cilium"
address = "::1"
remote-asn = {CILIUM_ASN}
role = "cilium"
"#,
        v4 = id.v4(),
        asn = id.asn(),
        name = id.name(),
    );
    for u in upstreams {
        c.push_str(&format!(
            r#"
[[peer]]
name = "{name}"
address = "{v6}"
remote-asn = {asn}
role = "upstream"
local-address = "{local}"
extended-next-hop = true
connect-retry = 1
hold-time = 9
{upstream_lines}"#,
            name = u.name,
            v6 = u.v6,
            asn = u.asn,
            local = id.v6(),
        ));
    }
    c.push_str("\n[fib]\n");
    for line in fib {
        c.push_str(line);
        c.push('\n');
    }
    c.push('\n');
    c.push_str(extra);
    c
}

/// bgpd's configuration for router `up`, with a session to every node.
pub fn frr_config(up: &Upstream, nodes: &[NodeId], networks: &[String]) -> String {
    let mut c = format!(
        "frr defaults traditional
hostname {name}
debug bgp neighbor-events
debug bgp updates
debug bgp graceful-restart
!
router bgp {asn}
 bgp router-id {v4}
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp bestpath as-path multipath-relax
 bgp graceful-restart
",
        name = up.name,
        asn = up.asn,
        v4 = up.v4,
    );
    for n in nodes {
        let a = n.v6();
        c.push_str(&format!(
            " neighbor {a} remote-as {asn}
 neighbor {a} capability extended-nexthop
 neighbor {a} timers 3 9
 neighbor {a} timers connect 1
 neighbor {a} advertisement-interval 0
",
            asn = n.asn()
        ));
    }
    for (afi, v6) in [("ipv4", false), ("ipv6", true)] {
        c.push_str(&format!(" !\n address-family {afi} unicast\n  maximum-paths 8\n"));
        for p in networks.iter().filter(|p| p.contains(':') == v6) {
            c.push_str(&format!("  network {p}\n"));
        }
        for n in nodes {
            let a = n.v6();
            c.push_str(&format!(
                "  neighbor {a} activate\n  neighbor {a} next-hop-self\n  neighbor {a} default-originate\n"
            ));
        }
        c.push_str(" exit-address-family\n");
    }
    c.push_str("exit\n");
    c
}

/// `conf` (bgpd's) with `neighbor NODE bfd` for every node.
pub fn with_bfd(conf: &str, nodes: &[NodeId]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in conf.lines() {
        lines.push(line.to_owned());
        if let Some(n) = nodes
            .iter()
            .find(|n| line == format!(" neighbor {} remote-as {}", n.v6(), n.asn()))
        {
            lines.push(format!(" neighbor {} bfd", n.v6()));
        }
    }
    lines.join("\n") + "\n"
}

/// BIRD's configuration for router `up`, the counterpart of
/// [`frr_config`]: one BGP session per node (IPv6, IPv4 with extended
/// next hop, `next hop self`, graceful restart, timers 3/9), default
/// routes and `networks` announced to every node, and a `kernel`
/// protocol per family that installs the routes learned over BGP
/// (`merge paths`: ECMP as one route).
pub fn bird_config(up: &Upstream, nodes: &[NodeId], networks: &[String]) -> String {
    let mut c = format!(
        "router id {v4};
log stderr all;
debug protocols {{ states, events }};

protocol device {{ scan time 10; }}

protocol kernel kernel4 {{
    ipv4 {{ import none; export where source = RTS_BGP; }};
    merge paths on;
}}

protocol kernel kernel6 {{
    ipv6 {{ import none; export where source = RTS_BGP; }};
    merge paths on;
}}
",
        v4 = up.v4
    );
    for (afi, default, v6) in [("ipv4", "0.0.0.0/0", false), ("ipv6", "::/0", true)] {
        c.push_str(&format!(
            "\nprotocol static static_{afi} {{\n    {afi};\n    route {default} blackhole;\n"
        ));
        for p in networks.iter().filter(|p| p.contains(':') == v6) {
            c.push_str(&format!("    route {p} blackhole;\n"));
        }
        c.push_str("}\n");
    }
    c.push_str(&format!(
        "
template bgp node {{
    local {v6} as {asn};
    hold time 9;
    keepalive time 3;
    connect delay time 1;
    connect retry time 1;
    error wait time 1, 5;
    graceful restart on;
    ipv4 {{ extended next hop on; next hop self; import all; export all; }};
    ipv6 {{ next hop self; import all; export all; }};
}}
",
        v6 = up.v6,
        asn = up.asn
    ));
    for n in nodes {
        c.push_str(&format!(
            "\nprotocol bgp {proto} from node {{\n    neighbor {addr} as {asn};\n}}\n",
            proto = bird_protocol(n),
            addr = n.v6(),
            asn = n.asn()
        ));
    }
    c
}

/// The name of BIRD's protocol for node `n`: `node_21`.
pub fn bird_protocol(n: &NodeId) -> String {
    format!("node_2{}", n.x)
}

/// A running lab. Fields drop in order: nodes (their daemons, then their
/// pods' and their own namespaces), routers, the segment, the work dir
/// (kept when the test failed).
pub struct Topology {
    pub nodes: Vec<Node>,
    pub routers: Vec<Router>,
    segment: Bridge,
    work: WorkDir,
}

/// A node: its namespace, tern, GoBGP and pods.
pub struct Node {
    pub tern: Tern,
    pub gobgp: Gobgp,
    pub pods: Vec<Pod>,
    pub ns: Netns,
    pub id: NodeId,
    /// The routers its tern has a peer for.
    pub upstreams: Vec<Upstream>,
    /// TOML every upstream peer of its configuration has (`bfd = true`).
    pub upstream_lines: String,
    /// The VIPs its Cilium advertises (empty unless the lab has VIPs).
    pub vips: Vec<String>,
    /// Its port on the segment's bridge.
    pub port: String,
}

/// An upstream router: FRR (zebra + bgpd) or bird2.
pub struct Router {
    pub up: Upstream,
    pub speaker: Speaker,
    /// Its port on the segment's bridge (e.g. to take it down).
    pub port: String,
    pub ns: Netns,
}

/// The daemon of a [`Router`].
pub enum Speaker {
    Frr(Frr),
    Bird(Bird),
}

/// The best path a router has for a prefix, whatever it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BestPath {
    /// `"4210101021 4220101000"`.
    pub as_path: String,
    /// The BGP next hop: global address, and maybe a link-local one.
    pub next_hops: Vec<String>,
}

impl BestPath {
    /// The next hops other than link-local ones.
    pub fn global_next_hops(&self) -> Vec<&str> {
        self.next_hops
            .iter()
            .map(String::as_str)
            .filter(|n| !n.starts_with("fe80:"))
            .collect()
    }
}

impl Router {
    /// Its FRR; panics if it runs bird2.
    #[track_caller]
    pub fn frr(&self) -> &Frr {
        match &self.speaker {
            Speaker::Frr(f) => f,
            Speaker::Bird(_) => panic!("router {} runs bird2, not FRR", self.up.name),
        }
    }

    /// Its BIRD; panics if it runs FRR.
    #[track_caller]
    pub fn bird(&self) -> &Bird {
        match &self.speaker {
            Speaker::Bird(b) => b,
            Speaker::Frr(_) => panic!("router {} runs FRR, not bird2", self.up.name),
        }
    }

    /// The valid best path for exactly `prefix` in its BGP table (FRR's
    /// `show bgp`, BIRD's `show route all`), if any.
    pub fn best_path(&self, prefix: &str) -> Result<Option<BestPath>, String> {
        Ok(match &self.speaker {
            Speaker::Frr(f) => f
                .paths(prefix)?
                .into_iter()
                .find(|p| p.valid && p.best)
                .map(|p: FrrPath| BestPath {
                    as_path: p.as_path,
                    next_hops: p.next_hops,
                }),
            Speaker::Bird(b) => b
                .paths(prefix)?
                .into_iter()
                .find(|p| p.primary && p.kind == "unicast")
                .map(|p| BestPath {
                    as_path: p.as_path,
                    next_hops: p.bgp_next_hop,
                }),
        })
    }

    /// Waits until its session with node `n` is established.
    #[track_caller]
    pub fn wait_established(&self, n: &NodeId, within: Duration) {
        match &self.speaker {
            Speaker::Frr(f) => {
                f.wait_established(&n.v6(), within);
            }
            Speaker::Bird(b) => {
                b.wait_established(&bird_protocol(n), within);
            }
        }
    }

    pub fn report(&self) {
        match &self.speaker {
            Speaker::Frr(f) => f.report(),
            Speaker::Bird(b) => b.report(),
        }
        eprintln!("{}", kernel::dump(&self.ns));
    }
}

/// A pod: a namespace joined to its node by a veth.
pub struct Pod {
    pub host: u8,
    pub v4: String,
    pub v6: String,
    /// The veth's end in the node namespace (`lxcH`).
    pub node_if: String,
    pub ns: Netns,
}

impl Pod {
    #[track_caller]
    fn new(names: &Names, node: &Netns, id: &NodeId, host: u8) -> Pod {
        let ns = Netns::new(&names.ns(&format!("n{}p{host}", id.x), &format!("{}-pod-{host}", id.name())));
        let node_if = format!("lxc{host}");
        veth(node, &node_if, &ns, "eth0");
        let (v4, v6) = id.pod_addrs(host);
        let (gw4, gw6) = id.pod_addrs(1);
        node.add_addr(&node_if, &format!("{gw4}/32"));
        node.add_addr(&node_if, &format!("{gw6}/128"));
        node.ip(&["route", "add", &format!("{v4}/32"), "dev", &node_if]);
        node.ip(&["-6", "route", "add", &format!("{v6}/128"), "dev", &node_if]);
        ns.add_addr("eth0", &format!("{v4}/32"));
        ns.add_addr("eth0", &format!("{v6}/128"));
        ns.ip(&["route", "add", &gw4, "dev", "eth0", "scope", "link"]);
        ns.ip(&["route", "add", "default", "via", &gw4, "dev", "eth0"]);
        ns.ip(&["-6", "route", "add", &gw6, "dev", "eth0"]);
        ns.ip(&["-6", "route", "add", "default", "via", &gw6, "dev", "eth0"]);
        Pod {
            host,
            v4,
            v6,
            node_if,
            ns,
        }
    }

    /// `ping -c 3 -i 0.2 -W 1 DST` from the pod: the output if every
    /// reply came back, else an error with it.
    pub fn ping(&self, dst: &str) -> Result<String, String> {
        let out = self.ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", dst])?;
        if out.contains(" 0% packet loss") {
            Ok(out)
        } else {
            Err(out)
        }
    }
}

impl Topology {
    /// A lab named after `tag` (keep it short: it goes into namespace
    /// names): 2 nodes, 1 router unless the builder says otherwise.
    pub fn builder(tag: &str) -> TopologyBuilder {
        TopologyBuilder {
            tag: tag.to_owned(),
            nodes: 2,
            routers: 1,
            kind: RouterKind::Frr,
            vips: false,
            fib: BTreeMap::new(),
            extra: BTreeMap::new(),
            skip: Vec::new(),
            pods: Vec::new(),
            router_networks: Vec::new(),
            fixed: None,
            bfd: false,
            cilium_extra: BTreeMap::new(),
        }
    }

    /// Node X (1-based, as in its name node-2X).
    pub fn node(&self, x: u8) -> &Node {
        &self.nodes[usize::from(x) - 1]
    }

    pub fn node_mut(&mut self, x: u8) -> &mut Node {
        &mut self.nodes[usize::from(x) - 1]
    }

    pub fn router(&self, i: u8) -> &Router {
        &self.routers[usize::from(i)]
    }

    pub fn work(&self) -> &WorkDir {
        &self.work
    }

    /// Plugs another namespace into the segment (e.g. a monitoring host);
    /// returns its bridge port.
    pub fn attach(&mut self, ns: &Netns, ifname: &str) -> String {
        self.segment.attach(ns, ifname)
    }

    /// The segment's bridge (e.g. to take a port down).
    pub fn segment(&self) -> &Bridge {
        &self.segment
    }

    /// Every BGP session established: each tern with its Cilium and every
    /// router, each router with every node.
    #[track_caller]
    pub fn wait_sessions(&self) {
        for n in &self.nodes {
            n.wait_sessions();
        }
        for r in &self.routers {
            for n in &self.nodes {
                if n.upstreams.iter().any(|u| u.name == r.up.name) {
                    r.wait_established(&n.id, session_timeout());
                }
            }
        }
    }

    /// Sessions up, and each node's kernel has from tern the default
    /// routes, every other node's pod CIDRs and VIPs, and the local routes
    /// of its own VIPs.
    #[track_caller]
    pub fn wait_converged(&self) {
        self.wait_sessions();
        for n in &self.nodes {
            let mut want: Vec<String> = vec!["0.0.0.0/0".into(), "::/0".into()];
            want.extend(self.remote_prefixes(n.id.x));
            want.extend(n.vips.iter().cloned());
            let want: Vec<&str> = want.iter().map(String::as_str).collect();
            n.wait_kernel(&want, true);
        }
    }

    /// What the other nodes' Cilium advertise, as node `x` should learn
    /// it: their pod CIDRs and VIPs.
    pub fn remote_prefixes(&self, x: u8) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|o| o.id.x != x)
            .flat_map(|o| o.own_prefixes())
            .collect()
    }

    /// Prints every daemon's state and every namespace's routes (once;
    /// drop does it when a test fails).
    pub fn report(&self) {
        for n in &self.nodes {
            n.report();
        }
        for r in &self.routers {
            r.report();
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Everyone's state while all still run; the logs follow as the
        // daemons' guards stop them.
        if std::thread::panicking() {
            self.report();
        }
    }
}

impl Node {
    pub fn name(&self) -> String {
        self.id.name()
    }

    /// What its Cilium advertises: pod CIDRs, then VIPs.
    pub fn own_prefixes(&self) -> Vec<String> {
        let mut v = self.id.pod_cidrs().to_vec();
        v.extend(self.vips.iter().cloned());
        v
    }

    /// Pod `host` of this node.
    #[track_caller]
    pub fn pod(&self, host: u8) -> &Pod {
        self.pods
            .iter()
            .find(|p| p.host == host)
            .unwrap_or_else(|| panic!("{} has no pod {host}", self.name()))
    }

    /// tern's sessions with Cilium and every router established.
    #[track_caller]
    pub fn wait_sessions(&self) {
        for u in &self.upstreams {
            self.tern.wait_established(&u.name, session_timeout());
        }
        self.tern.wait_established("cilium", session_timeout());
    }

    /// tern's routes in the kernel (`proto 186`, every table).
    pub fn bgp_routes(&self) -> Result<Vec<KernelRoute>, String> {
        kernel::bgp_routes(&self.ns)
    }

    /// Waits until every prefix is (`present`) or is not a tern route in
    /// this node's kernel; returns tern's routes as last seen.
    #[track_caller]
    pub fn wait_kernel(&self, prefixes: &[&str], present: bool) -> Vec<KernelRoute> {
        self.wait_kernel_within(route_timeout(), prefixes, present)
    }

    /// [`Node::wait_kernel`] with another deadline (e.g. when a session
    /// has to come back first).
    #[track_caller]
    pub fn wait_kernel_within(&self, within: Duration, prefixes: &[&str], present: bool) -> Vec<KernelRoute> {
        let what = if present {
            format!("{prefixes:?} in {}'s kernel (proto 186)", self.name())
        } else {
            format!("{prefixes:?} gone from {}'s kernel (proto 186)", self.name())
        };
        wait_until(within, &what, || {
            let routes = self.bgp_routes()?;
            let wrong: Vec<&&str> = prefixes
                .iter()
                .filter(|p| kernel::find(&routes, p).is_some() != present)
                .collect();
            if wrong.is_empty() {
                Ok(routes)
            } else {
                Err(format!("not as wanted: {wrong:?}\nroutes: {routes:#?}"))
            }
        })
    }

    /// tern's configuration with other `[fib]` lines and extra TOML; write
    /// it with [`Node::reconfigure`].
    pub fn tern_config(&self, fib: &[&str], extra: &str) -> String {
        self.tern_config_for(&self.upstreams, "", fib, extra)
    }

    /// tern's configuration with peers for `upstreams`, each with
    /// `upstream_lines` (TOML, e.g. `import = ["x"]`), `[fib]` lines and
    /// extra TOML (e.g. policies). Write it with [`Tern::set_config`].
    pub fn tern_config_for(
        &self,
        upstreams: &[Upstream],
        upstream_lines: &str,
        fib: &[&str],
        extra: &str,
    ) -> String {
        let fib: Vec<String> = fib.iter().map(|s| s.to_string()).collect();
        let lines = format!("{}{upstream_lines}", self.upstream_lines);
        tern_config(&self.id, upstreams, &lines, &fib, extra)
    }

    /// Writes a new tern configuration, effective at its next start.
    #[track_caller]
    pub fn reconfigure(&mut self, fib: &[&str], extra: &str) {
        let config = self.tern_config(fib, extra);
        self.tern.set_config(&config);
    }

    /// tern's routes in the kernel as (prefix, next hops), sorted.
    #[track_caller]
    pub fn route_snapshot(&self) -> Vec<(String, Vec<kernel::Hop>)> {
        let mut v: Vec<(String, Vec<kernel::Hop>)> = self
            .bgp_routes()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|r| (r.dst, r.hops))
            .collect();
        v.sort();
        v
    }

    /// After tern restarted: sessions back, route selection no longer
    /// deferred, the kernel's routes adopted and `expected` routes
    /// installed. Returns `/api/v1/fib`.
    #[track_caller]
    pub fn wait_restarted(&self, expected: usize) -> serde_json::Value {
        self.wait_sessions();
        wait_until(timeout(30), "tern done with its restart", || {
            let summary = self.tern.summary()?;
            let fib = self.tern.fib()?;
            let deferring = summary["rib"]["deferring"].as_bool();
            let adopted = fib["adopted"].as_u64().unwrap_or(0);
            let installed = fib["installed"].as_u64().unwrap_or(0);
            if deferring == Some(false) && adopted > 0 && installed as usize == expected {
                Ok(fib)
            } else {
                Err(format!("summary {summary:#}\nfib {fib:#}"))
            }
        })
    }

    pub fn report(&self) {
        self.tern.report();
        self.gobgp.report();
        eprintln!("{}", kernel::dump(&self.ns));
        eprintln!(
            "==== {}: nft list ruleset ====\n{}",
            self.ns.name(),
            nft::ruleset(&self.ns)
        );
    }
}

/// Polls an FRR router's BGP table and its kernel every 100 ms on another
/// thread, noting every moment one of the prefixes has no valid best path
/// in BGP or no route in the kernel: for "the router keeps these routes
/// throughout" while the test restarts something.
pub struct RouterWatch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<WatchReport>>,
}

/// What a [`RouterWatch`] saw.
#[derive(Debug, Default)]
pub struct WatchReport {
    pub polls: u64,
    /// Polls that saw a path marked stale (FRR helping a restart).
    pub stale: u64,
    /// Each moment a prefix was missing, and what was seen instead.
    pub missing: Vec<String>,
}

impl RouterWatch {
    /// Starts watching `prefixes` on `router` (FRR).
    #[track_caller]
    pub fn start(router: &Router, prefixes: &[String]) -> RouterWatch {
        RouterWatch::start_on(router.frr(), &router.ns, prefixes)
    }

    /// [`RouterWatch::start`] for an FRR in namespace `ns`, outside a
    /// [`Topology`].
    pub fn start_on(frr: &Frr, ns: &Netns, prefixes: &[String]) -> RouterWatch {
        let vty = frr.vty();
        let ns = ns.name().to_owned();
        let prefixes = prefixes.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut r = WatchReport::default();
            while !flag.load(Ordering::Relaxed) {
                r.polls += 1;
                let at = format!("{:?}", std::time::SystemTime::now());
                for p in &prefixes {
                    match vty.paths(p) {
                        Ok(paths) if paths.iter().any(|x| x.valid && x.best) => {
                            if paths.iter().any(|x| x.stale) {
                                r.stale += 1;
                            }
                        }
                        other => r.missing.push(format!("{at}: {p} in BGP: {other:?}")),
                    }
                    let family = if p.contains(':') { "-6" } else { "-4" };
                    let kernel = crate::run(
                        std::process::Command::new("ip")
                            .args(["-n", &ns, "-j", family, "route", "show", "exact", p]),
                    );
                    match kernel {
                        Ok(text) if text.contains("\"dst\"") => {}
                        other => r.missing.push(format!("{at}: {p} in the kernel: {other:?}")),
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            r
        });
        RouterWatch {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops watching; returns what it saw.
    pub fn finish(mut self) -> WatchReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for RouterWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
