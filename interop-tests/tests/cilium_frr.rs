//! Issue 3's interop list: tern on a node between Cilium's BGP control
//! plane (GoBGP) and an upstream router (FRR 8.4).
//!
//! ```text
//!  node namespace                                upstream namespace
//! +---------------------------------------+     +----------------------+
//! | gobgpd (Cilium)  AS 4220101000        |     | FRR (zebra + bgpd)   |
//! |   dials [::1]:179                     |     | AS 4200001000        |
//! |      |                                |     |                      |
//! | tern AS 4210101021  listens [::]:179  |     |                      |
//! |   peer cilium   ::1 (role cilium)     |     |                      |
//! |   peer upstream fd00:101::fffe  eth-up+-----+eth-node              |
//! |      fd00:101::21/64, 10.101.0.21/24  |veth | fd00:101::fffe/64,   |
//! +---------------------------------------+     | 10.101.0.254/24      |
//!                                               +----------------------+
//! ```
//!
//! FRR originates another node's pod CIDRs (10.224.2.0/24,
//! fd00:101:224:2::/64) and default routes; GoBGP announces this node's
//! (10.224.1.0/24, fd00:101:224:1::/64) and LB service IPs (10.96.1.10/32,
//! fd00:96::10/128). GoBGP sends them all with next hop ::1; FRR silently
//! ignores routes with such a next hop, so they only show up in FRR if tern
//! rewrote it to its own address.
//!
//! Each test builds its own lab in its own namespaces, so they run in
//! parallel. When one fails, the output shows tern's, FRR's and GoBGP's
//! state at that moment, then their logs; the work dir is kept.

use std::time::Duration;

use interop_tests::gobgp::cilium_config;
use interop_tests::{
    Frr, FrrPath, Gobgp, Netns, Tern, WorkDir, expect, holds_for, timeout, unique_name, veth, wait_for,
    wait_until,
};
use serde_json::Value;

const TERN_ASN: u32 = 4210101021;
const CILIUM_ASN: u32 = 4220101000;
const FRR_ASN: u32 = 4200001000;

const NODE_V6: &str = "fd00:101::21";
const FRR_V6: &str = "fd00:101::fffe";
/// Cilium's gRPC API port, on the node namespace's own loopback.
const GOBGP_API_PORT: u16 = 50051;

/// What Cilium announces: pod CIDRs and LB service IPs of this node.
const CILIUM_ROUTES: [&str; 4] = [
    "10.96.1.10/32",
    "10.224.1.0/24",
    "fd00:101:224:1::/64",
    "fd00:96::10/128",
];
/// What FRR originates: another node's pod CIDRs and default routes.
const FRR_ROUTES: [&str; 4] = ["10.224.2.0/24", "fd00:101:224:2::/64", "0.0.0.0/0", "::/0"];

/// GoBGP's first connection comes 5–9 s after it starts.
fn session_timeout() -> Duration {
    timeout(30)
}

/// Updates travel in well under a second here; this is the deadline.
fn route_timeout() -> Duration {
    timeout(10)
}

fn tern_config() -> String {
    format!(
        r#"router-id = "10.101.0.21"
asn = {TERN_ASN}
listen = ["[::]:179"]

[[peer]]
name = "cilium"
address = "::1"
remote-asn = {CILIUM_ASN}
role = "cilium"

[[peer]]
name = "upstream"
address = "{FRR_V6}"
remote-asn = {FRR_ASN}
role = "upstream"
local-address = "{NODE_V6}"
extended-next-hop = true
connect-retry = 1
hold-time = 9
"#
    )
}

fn frr_config() -> String {
    format!(
        r#"frr defaults traditional
hostname upstream
debug bgp neighbor-events
debug bgp updates
!
router bgp {FRR_ASN}
 bgp router-id 10.101.0.254
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {NODE_V6} remote-as {TERN_ASN}
 neighbor {NODE_V6} capability extended-nexthop
 neighbor {NODE_V6} timers 3 9
 neighbor {NODE_V6} timers connect 1
 neighbor {NODE_V6} advertisement-interval 0
 !
 address-family ipv4 unicast
  network 10.224.2.0/24
  network 0.0.0.0/0
  neighbor {NODE_V6} activate
 exit-address-family
 !
 address-family ipv6 unicast
  network fd00:101:224:2::/64
  network ::/0
  neighbor {NODE_V6} activate
 exit-address-family
exit
"#
    )
}

/// The lab. Fields drop in order: daemons first, then namespaces, then
/// the work dir (kept if the test failed).
struct Lab {
    tern: Tern,
    gobgp: Gobgp,
    frr: Frr,
    _node: Netns,
    _upstream: Netns,
    _work: WorkDir,
}

impl Lab {
    /// None when not root (the test is skipped).
    fn start(tag: &str) -> Option<Lab> {
        if !interop_tests::require_root() {
            return None;
        }
        let work = WorkDir::new(tag);
        let node = Netns::new(&unique_name(&format!("{tag}-node")));
        let upstream = Netns::new(&unique_name(&format!("{tag}-up")));
        veth(&node, "eth-up", &upstream, "eth-node");
        node.set_mac("eth-up", "02:00:0a:65:00:15");
        upstream.set_mac("eth-node", "02:00:0a:65:00:fe");
        node.add_addr("eth-up", &format!("{NODE_V6}/64"));
        node.add_addr("eth-up", "10.101.0.21/24");
        upstream.add_addr("eth-node", &format!("{FRR_V6}/64"));
        upstream.add_addr("eth-node", "10.101.0.254/24");

        // tern first: GoBGP dials it, and its first attempt is the slow one.
        let tern = Tern::start(&node, &work, "tern", &tern_config());
        let gobgp = Gobgp::start(
            &node,
            &work,
            "cilium",
            &cilium_config(CILIUM_ASN, "10.101.1.21", "::1", TERN_ASN),
            GOBGP_API_PORT,
        );
        let frr = Frr::start(&upstream, &work, "upstream", &frr_config());
        Some(Lab {
            tern,
            gobgp,
            frr,
            _node: node,
            _upstream: upstream,
            _work: work,
        })
    }

    /// Both of tern's sessions established; returns (cilium, upstream) as
    /// the API shows them.
    fn sessions_up(&self) -> (Value, Value) {
        let upstream = self.tern.wait_established("upstream", session_timeout());
        let cilium = self.tern.wait_established("cilium", session_timeout());
        (cilium, upstream)
    }

    /// tern's Loc-RIB paths for `prefix` learned from `peer`.
    fn tern_paths(&self, prefix: &str, peer: &str) -> Result<Vec<Value>, String> {
        Ok(self
            .tern
            .paths(prefix)?
            .into_iter()
            .filter(|p| p["peer"] == peer)
            .collect())
    }

    /// Waits until FRR has a valid best path for every prefix; returns them.
    fn frr_best_paths(&self, prefixes: &[&str]) -> Vec<(String, FrrPath)> {
        wait_for(
            route_timeout(),
            &format!("FRR to have valid best paths for {prefixes:?}"),
            || {
                prefixes
                    .iter()
                    .map(|p| {
                        let best = self
                            .frr
                            .paths(p)
                            .map(|paths| paths.into_iter().find(|x| x.valid && x.best));
                        (p.to_string(), best)
                    })
                    .collect::<Vec<_>>()
            },
            |all| all.iter().all(|(_, b)| matches!(b, Ok(Some(_)))),
        )
        .into_iter()
        .map(|(p, b)| (p, b.unwrap().unwrap()))
        .collect()
    }

    /// Waits until FRR has (any path for) all of `prefixes`, or none.
    fn wait_frr_has(&self, prefixes: &[&str], present: bool) {
        wait_prefixes("FRR", prefixes, present, |p| Ok(!self.frr.paths(p)?.is_empty()));
    }

    /// Waits until tern's Loc-RIB has all of `prefixes`, or none.
    fn wait_tern_has(&self, prefixes: &[&str], present: bool) {
        wait_prefixes("tern's Loc-RIB", prefixes, present, |p| {
            Ok(!self.tern.paths(p)?.is_empty())
        });
    }
}

/// Waits until `has` is `present` for every prefix; on timeout, says which
/// were not.
#[track_caller]
fn wait_prefixes(place: &str, prefixes: &[&str], present: bool, has: impl Fn(&str) -> Result<bool, String>) {
    let what = if present {
        format!("{prefixes:?} in {place}")
    } else {
        format!("{prefixes:?} gone from {place}")
    };
    wait_until(route_timeout(), &what, || {
        let mut wrong = Vec::new();
        for p in prefixes {
            if has(p)? != present {
                wrong.push(*p);
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else if present {
            Err(format!("missing: {wrong:?}"))
        } else {
            Err(format!("still there: {wrong:?}"))
        }
    });
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Everyone's state while all still run; the logs follow as the
        // daemons' guards stop them.
        if std::thread::panicking() {
            self.tern.report();
            self.frr.report();
            self.gobgp.report();
        }
    }
}

#[test]
fn sessions_establish_with_four_octet_asns_ext_next_hop_and_graceful_restart() {
    let Some(lab) = Lab::start("sessions") else { return };
    let (cilium, upstream) = lab.sessions_up();

    expect::tern_upstream_session(&upstream, FRR_ASN);
    expect::tern_cilium_session(&cilium);
    let frr = lab.frr.wait_established(NODE_V6, session_timeout());
    expect::frr_node_session(&frr, TERN_ASN);
    let g = lab.gobgp.wait_established("::1", session_timeout());
    expect::gobgp_tern_session(&g, TERN_ASN);
}

#[test]
fn cilium_routes_reach_frr_with_the_node_address_as_next_hop() {
    let Some(lab) = Lab::start("to-frr") else { return };
    lab.sessions_up();
    lab.frr.wait_established(NODE_V6, session_timeout());
    lab.gobgp.add_route("10.96.1.10/32", &["community", "65000:100"]);
    for p in &CILIUM_ROUTES[1..] {
        lab.gobgp.add_route(p, &[]);
    }

    for (prefix, path) in lab.frr_best_paths(&CILIUM_ROUTES) {
        assert_eq!(
            path.as_path,
            format!("{TERN_ASN} {CILIUM_ASN}"),
            "{prefix} in FRR: {path:?}"
        );
        // The global next hop is the node's address (a link-local one
        // may come with it); never GoBGP's ::1 or a v4 loopback.
        let global: Vec<&String> = path
            .next_hops
            .iter()
            .filter(|n| !n.starts_with("fe80:"))
            .collect();
        assert_eq!(global, [NODE_V6], "{prefix} in FRR: {path:?}");
    }
    // tern's own account agrees: it advertises the four to FRR.
    let up = lab.tern.peer("upstream").unwrap();
    assert_eq!(up["prefixes"]["advertised"], 4, "{up:#}");
    let cil = lab.tern.peer("cilium").unwrap();
    assert_eq!(cil["prefixes"]["accepted"], 4, "{cil:#}");
}

#[test]
fn frr_routes_reach_the_loc_rib_and_are_not_sent_to_cilium() {
    let Some(lab) = Lab::start("from-frr") else { return };
    lab.sessions_up();

    for prefix in FRR_ROUTES {
        let paths = wait_for(
            route_timeout(),
            &format!("{prefix} from upstream in tern's Loc-RIB"),
            || lab.tern_paths(prefix, "upstream"),
            |p| matches!(p, Ok(v) if !v.is_empty()),
        )
        .unwrap();
        assert_eq!(paths.len(), 1, "{prefix}: {paths:#?}");
        let p = &paths[0];
        assert_eq!(p["as_path"], FRR_ASN.to_string(), "{prefix}: {p:#}");
        assert_eq!(p["best"], true, "{prefix}: {p:#}");
        // "fd00:101::fffe" or "fd00:101::fffe (fe80::...)": FRR's global
        // address, possibly with its link-local one.
        let nh = p["next_hop"].as_str().unwrap_or_default();
        assert!(
            nh == FRR_V6 || nh.starts_with(&format!("{FRR_V6} (fe80:")),
            "{prefix}: next hop {nh:?}: {p:#}"
        );
    }

    // The RIB decides exports as it installs a route, so tern's count is
    // final now; GoBGP gets its updates over TCP, so watch it for a while.
    holds_for(
        timeout(3),
        "nothing advertised to cilium",
        || {
            let advertised = lab
                .tern
                .peer("cilium")
                .map(|p| p["prefixes"]["advertised"].clone());
            let adj_in: Vec<_> = ["ipv4", "ipv6"]
                .iter()
                .map(|afi| lab.gobgp.adj_in("::1", afi))
                .collect();
            (advertised, adj_in)
        },
        |(advertised, adj_in)| {
            matches!(advertised, Ok(n) if *n == 0)
                && adj_in
                    .iter()
                    .all(|r| matches!(r, Ok(v) if v.as_object().is_some_and(|m| m.is_empty())))
        },
    );
}

#[test]
fn withdrawals_propagate_both_ways() {
    let Some(lab) = Lab::start("withdraw") else { return };
    lab.sessions_up();
    for p in CILIUM_ROUTES {
        lab.gobgp.add_route(p, &[]);
    }
    lab.frr_best_paths(&CILIUM_ROUTES);

    // Cilium withdraws an LB IP of each family → gone from FRR (and from
    // tern), the pod CIDRs stay.
    let withdrawn = ["10.96.1.10/32", "fd00:96::10/128"];
    for p in withdrawn {
        lab.gobgp.del_route(p);
    }
    lab.wait_frr_has(&withdrawn, false);
    lab.wait_tern_has(&withdrawn, false);
    lab.frr_best_paths(&["10.224.1.0/24", "fd00:101:224:1::/64"]);

    // FRR withdraws the other node's pod CIDRs → gone from tern's Loc-RIB,
    // the default routes stay.
    lab.wait_tern_has(&FRR_ROUTES, true);
    lab.frr.configure(&[
        &format!("router bgp {FRR_ASN}"),
        "address-family ipv4 unicast",
        "no network 10.224.2.0/24",
        "exit-address-family",
        "address-family ipv6 unicast",
        "no network fd00:101:224:2::/64",
    ]);
    let withdrawn = ["10.224.2.0/24", "fd00:101:224:2::/64"];
    lab.wait_tern_has(&withdrawn, false);
    lab.wait_tern_has(&["0.0.0.0/0", "::/0"], true);
}

/// `/metrics` from a tern with live sessions and routes is valid text
/// format 0.0.4 as Prometheus's own `promtool` checks it (format and lint),
/// and the reference Python parser reads counters as counters.
#[test]
fn metrics_pass_promtool_and_the_reference_parser() {
    let Some(lab) = Lab::start("metrics") else { return };
    lab.sessions_up();
    lab.gobgp.add_route("10.96.1.10/32", &[]);
    lab.wait_frr_has(&["10.96.1.10/32"], true);
    let text = lab.tern.get_text("/metrics").expect("metrics");
    let file = lab._work.path().join("metrics.txt");
    std::fs::write(&file, &text).expect("write metrics");

    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).expect("metrics file"))
        .output()
        .expect("run promtool");
    assert!(
        promtool.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );

    // Each family as the parser sees it: name, type, and its samples' names.
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for f in text_string_to_metric_families(open(sys.argv[1]).read()):
    names = sorted({s.name for s in f.samples})
    print(f.name, f.type, ",".join(names))
"#;
    // Debian's interpreter, where Debian's module is.
    let parsed = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("run python3");
    assert!(
        parsed.status.success(),
        "the parser refused the text: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let families: Vec<(String, String, String)> = String::from_utf8_lossy(&parsed.stdout)
        .lines()
        .map(|l| {
            let mut w = l.splitn(3, ' ');
            let mut next = || w.next().unwrap_or_default().to_owned();
            (next(), next(), next())
        })
        .collect();
    let family = |name: &str| {
        families
            .iter()
            .find(|f| f.0 == name)
            .unwrap_or_else(|| panic!("no family {name} in {families:#?}"))
    };
    for counter in [
        "tern_peer_updates_received",
        "tern_peer_established",
        "tern_connections_rejected",
        "tern_config_reloads",
        "tern_fib_repairs",
    ] {
        let f = family(counter);
        assert_eq!(f.1, "counter", "{f:?}");
        assert_eq!(f.2, format!("{counter}_total"), "{f:?}");
    }
    for gauge in [
        "tern_peer_up",
        "tern_peer_prefixes_filtered",
        "tern_peer_last_change_timestamp_seconds",
        "tern_build_info",
        "tern_fib_routes",
    ] {
        assert_eq!(family(gauge).1, "gauge", "{gauge}");
    }
    // And the values are the ones the API gives.
    let up = lab.tern.peer("upstream").expect("upstream");
    let line = format!(
        "tern_peer_updates_received_total{{peer=\"upstream\"}} {}",
        up["updates_received"]
    );
    let again = lab.tern.get_text("/metrics").expect("metrics");
    assert!(again.contains(&line), "{line} not in:\n{again}");
}
