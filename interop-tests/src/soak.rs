//! The soak: tern between a real FRR and a real GoBGP, cycle after cycle
//! of batches announced and withdrawn and of sessions reset, and whether
//! anything is left behind.
//!
//! ```text
//!  frr namespace              node namespace                    gobgp namespace
//!  FRR (zebra + bgpd)  veth   tern AS 65000              veth   gobgpd AS 65002
//!  AS 65001 ----------------- fd00:201:1::1, 10.201.2.1 ------- 10.201.2.2
//!  fd00:201:1::2 (IPv6)       installs what it learns           passes FRR's IPv4
//!  10.201.3.1 (IPv4) ---.     (proto 186)                .----- routes on to tern
//!                       `---------------- veth ----------'      10.201.3.2
//! ```
//!
//! FRR is the source of every route: the blackhole routes of its
//! namespace's kernel, redistributed (`redistribute kernel`; the route's
//! metric becomes the MED). It sends the IPv6 ones to tern directly and
//! the IPv4 ones to GoBGP, which sends them on to tern. Each family has
//! `base` routes throughout. A cycle:
//!
//! 1. FRR announces a batch of `batch` new prefixes per family (distinct
//!    in every cycle; their 16 MEDs change from cycle to cycle, so new
//!    attribute sets are interned each time);
//! 2. `rounds` times, tern's sessions are reset by the peers (each time a
//!    Cease, then a new session that sends everything again): GoBGP's once
//!    (`gobgp neighbor disable`, `enable`), and while GoBGP waits out its
//!    idle hold time (5 s, not configurable), FRR's `frr_resets` times
//!    (`clear bgp`), each time until tern is Established again with every
//!    route of FRR's in its RIB and kernel; then until GoBGP's are back too;
//! 3. FRR withdraws the batch;
//! 4. with only the base left, tern's resident memory, open files and
//!    interned attribute sets are sampled once they stop moving.
//!
//! At the end, the RIB and the kernel must hold exactly the base routes
//! with no orphan nexthop object, the RSS must be within 10% of its value
//! after the first cycle, and open files and attribute sets back where
//! they were before the first cycle.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::frr::Frr;
use crate::gobgp::Gobgp;
use crate::netns::{Netns, veth};
use crate::process::status_kb;
use crate::tern::Tern;
use crate::wait::{timeout, wait_until};
use crate::workdir::WorkDir;

const TERN_AS: u32 = 65000;
const FRR_AS: u32 = 65001;
const GOBGP_AS: u32 = 65002;
const TERN_V6: &str = "fd00:201:1::1";
const FRR_V6: &str = "fd00:201:1::2";
const TERN_V4: &str = "10.201.2.1";
const GOBGP_V4: &str = "10.201.2.2";
const FRR_V4: &str = "10.201.3.1";
const GOBGP_TO_FRR_V4: &str = "10.201.3.2";
/// Attribute sets a batch is spread over, per peer.
const SETS_PER_BATCH: u32 = 16;
/// Batches rotate through this many groups of attribute sets.
const SET_GROUPS: u32 = 50;
/// RSS may end at most this much above its value after the first cycle.
pub const RSS_SLACK: f64 = 0.10;

/// How much churn to run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub cycles: u32,
    /// Rounds of resets per cycle: GoBGP's session once per round...
    pub rounds: u32,
    /// ... and FRR's this many times.
    pub frr_resets: u32,
    /// Prefixes announced and withdrawn per family per cycle.
    pub batch: u32,
    /// Prefixes per family held throughout.
    pub base: u32,
}

impl Plan {
    /// The issue's figures: 1,000 session resets and over 1,000,000
    /// announcements and withdrawals.
    pub const FULL: Plan = Plan {
        cycles: 100,
        rounds: 2,
        frr_resets: 4,
        batch: 2_500,
        base: 100,
    };

    /// Session resets in all (both sessions).
    pub fn total_flaps(&self) -> u64 {
        u64::from(self.cycles) * u64::from(self.rounds) * u64::from(1 + self.frr_resets)
    }

    /// Announcements and withdrawals tern receives by UPDATE, not counting
    /// the re-sends after each reset: per cycle, the batch of each family
    /// announced and withdrawn.
    pub fn operations(&self) -> u64 {
        u64::from(self.cycles) * 4 * u64::from(self.batch)
    }

    /// Routes a session carries again after a reset, in all (each one
    /// withdrawn when the session goes and announced when it is back).
    pub fn resent(&self) -> u64 {
        self.total_flaps() * u64::from(self.base + self.batch) * 2
    }
}

/// One sample, taken with only the base routes left and tern settled.
#[derive(Clone, Debug)]
pub struct Sample {
    /// 0: before the first cycle.
    pub cycle: u32,
    pub at: Duration,
    pub rss_kb: u64,
    /// The anonymous part of it (heap, stacks); the rest is the binary's
    /// and the libraries' code, paged in as it first runs.
    pub anon_kb: u64,
    /// What tern's allocator has handed out and not had back (glibc
    /// builds; 0 where unknown): RSS far above it is fragmentation.
    pub heap_kb: u64,
    pub fds: usize,
    pub attribute_sets: u64,
    pub bgpd_rss_kb: u64,
    pub gobgpd_rss_kb: u64,
}

/// What a soak measured.
#[derive(Debug)]
pub struct Report {
    pub plan: Plan,
    pub samples: Vec<Sample>,
    /// tern's peak RSS over the run (VmHWM).
    pub peak_rss_kb: u64,
    /// Attribute sets interned with a batch in the table, at most.
    pub peak_attribute_sets: u64,
    /// From a reset by FRR to tern Established with every route of FRR's
    /// back in its RIB and kernel.
    pub frr_recoveries: Vec<Duration>,
    /// The same for GoBGP's resets.
    pub gobgp_recoveries: Vec<Duration>,
    pub elapsed: Duration,
    /// What does not hold at the end; empty when the soak passed.
    pub problems: Vec<String>,
}

impl Report {
    pub fn first_cycle(&self) -> &Sample {
        self.samples.get(1).unwrap_or(&self.samples[0])
    }

    pub fn last(&self) -> &Sample {
        self.samples.last().expect("samples")
    }

    /// The figures, as printed by the benchmark and the test.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let p = &self.plan;
        let _ = writeln!(
            s,
            "soak: {} cycles; {} session resets ({} by GoBGP, {} by FRR per cycle); {} announcements and withdrawals by UPDATE ({} prefixes per family per cycle, base {}), {} more re-sent around the resets; {:.0?}",
            p.cycles,
            p.total_flaps(),
            p.rounds,
            p.rounds * p.frr_resets,
            p.operations(),
            p.batch,
            p.base,
            p.resent(),
            self.elapsed
        );
        for (who, times) in [("FRR", &self.frr_recoveries), ("GoBGP", &self.gobgp_recoveries)] {
            let mut rec = times.clone();
            rec.sort();
            if let (Some(first), Some(last)) = (rec.first(), rec.last()) {
                let _ = writeln!(
                    s,
                    "reset by {who} to every route back in tern's RIB and kernel: median {:.2?}, min {:.2?}, max {:.2?}",
                    rec[rec.len() / 2],
                    first,
                    last
                );
            }
        }
        let _ = writeln!(
            s,
            "\n{:>6} {:>9} {:>12} {:>13} {:>13} {:>5} {:>15} {:>14} {:>16}",
            "cycle",
            "time",
            "tern RSS kB",
            "of it anon",
            "tern heap kB",
            "fds",
            "attribute sets",
            "bgpd RSS kB",
            "gobgpd RSS kB"
        );
        let shown = self.samples.len();
        for (i, x) in self.samples.iter().enumerate() {
            // The first few, then every tenth, and the last.
            if i > 3 && i + 1 != shown && x.cycle % 10 != 0 {
                continue;
            }
            let _ = writeln!(
                s,
                "{:>6} {:>8.0?} {:>12} {:>13} {:>13} {:>5} {:>15} {:>14} {:>16}",
                x.cycle,
                x.at,
                x.rss_kb,
                x.anon_kb,
                x.heap_kb,
                x.fds,
                x.attribute_sets,
                x.bgpd_rss_kb,
                x.gobgpd_rss_kb
            );
        }
        let (base, first, last) = (&self.samples[0], self.first_cycle(), self.last());
        let _ = writeln!(
            s,
            "\ntern RSS: {} kB before, {} kB after cycle 1, {} kB at the end ({:+.1}% of cycle 1; allowed +{:.0}%), peak {} kB",
            base.rss_kb,
            first.rss_kb,
            last.rss_kb,
            percent(last.rss_kb, first.rss_kb),
            RSS_SLACK * 100.0,
            self.peak_rss_kb
        );
        let _ = writeln!(
            s,
            "of it anonymous (heap, stacks; the rest is code paged in): {} kB after cycle 1, {} kB at the end; live heap {} kB → {} kB",
            first.anon_kb, last.anon_kb, first.heap_kb, last.heap_kb
        );
        let _ = writeln!(
            s,
            "open files: {} before, {} at the end; attribute sets: {} before, up to {} with a batch in the table, {} at the end",
            base.fds, last.fds, base.attribute_sets, self.peak_attribute_sets, last.attribute_sets
        );
        let _ = writeln!(
            s,
            "peers' RSS for comparison: bgpd {} → {} kB ({:+.1}% of cycle 1), gobgpd {} → {} kB ({:+.1}%)",
            first.bgpd_rss_kb,
            last.bgpd_rss_kb,
            percent(last.bgpd_rss_kb, first.bgpd_rss_kb),
            first.gobgpd_rss_kb,
            last.gobgpd_rss_kb,
            percent(last.gobgpd_rss_kb, first.gobgpd_rss_kb),
        );
        if self.problems.is_empty() {
            let _ = writeln!(
                s,
                "verdict: RIB and kernel hold exactly the base routes, no orphan nexthop object; RSS, open files and attribute sets within bounds"
            );
        } else {
            for p in &self.problems {
                let _ = writeln!(s, "PROBLEM: {p}");
            }
        }
        s
    }
}

fn percent(now: u64, then: u64) -> f64 {
    if then == 0 {
        return 0.0;
    }
    (now as f64 / then as f64 - 1.0) * 100.0
}

/// The lab: three namespaces, FRR, GoBGP and tern.
struct Lab {
    // Fields drop in order: the daemons stop before their namespaces and
    // their work dir go.
    tern: Tern,
    frr: Frr,
    gobgp: Gobgp,
    node: Netns,
    frr_ns: Netns,
    _gobgp_ns: Netns,
    _work: WorkDir,
}

fn tern_config() -> String {
    format!(
        r#"router-id = "10.201.0.1"
asn = {TERN_AS}
hostname = "soak"
listen = ["[::]:179"]

[[peer]]
name = "frr"
address = "{FRR_V6}"
remote-asn = {FRR_AS}
role = "upstream"
local-address = "{TERN_V6}"
connect-retry = 1
hold-time = 9

[[peer]]
name = "gobgp"
address = "{GOBGP_V4}"
remote-asn = {GOBGP_AS}
role = "upstream"
local-address = "{TERN_V4}"
connect-retry = 1
hold-time = 9

[fib]
scan-interval = 2
"#
    )
}

/// bgpd announces the kernel routes of its namespace, blackholes whose
/// metric becomes the MED: IPv6 to tern, IPv4 to GoBGP.
fn frr_config() -> String {
    format!(
        "frr defaults traditional
hostname soak-frr
!
router bgp {FRR_AS}
 bgp router-id 10.201.3.1
 no bgp default ipv4-unicast
 no bgp ebgp-requires-policy
 neighbor {TERN_V6} remote-as {TERN_AS}
 neighbor {TERN_V6} timers connect 1
 neighbor {TERN_V6} advertisement-interval 0
 neighbor {GOBGP_TO_FRR_V4} remote-as {GOBGP_AS}
 neighbor {GOBGP_TO_FRR_V4} timers connect 1
 neighbor {GOBGP_TO_FRR_V4} advertisement-interval 0
 !
 address-family ipv4 unicast
  redistribute kernel
  neighbor {GOBGP_TO_FRR_V4} activate
 exit-address-family
 !
 address-family ipv6 unicast
  redistribute kernel
  neighbor {TERN_V6} activate
 exit-address-family
exit
"
    )
}

/// gobgpd peers with FRR and tern, with no graceful restart.
fn gobgp_config() -> String {
    format!(
        r#"[global.config]
  as = {GOBGP_AS}
  router-id = "{GOBGP_V4}"

[global.apply-policy.config]
  default-import-policy = "accept-route"
  default-export-policy = "accept-route"

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{TERN_V4}"
    peer-as = {TERN_AS}
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{FRR_V4}"
    peer-as = {FRR_AS}
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
    )
}

/// FRR's IPv6 prefix `n`: `fd00:64:N::/64` for the batches (N in the next 32
/// bits), `fd00:50:N::/64` for the base.
fn v6_prefix(base: bool, n: u32) -> String {
    let net = if base { 0xfd00_0050u32 } else { 0xfd00_0064 };
    let addr = Ipv6Addr::from((u128::from(net) << 96) | (u128::from(n) << 64));
    format!("{addr}/64")
}

/// FRR's IPv4 prefix `n`: /32s from `10.64.0.0/10` for the batches,
/// from `10.50.0.0/16` for the base.
fn v4_prefix(base: bool, n: u32) -> Ipv4Addr {
    if base {
        Ipv4Addr::from(0x0a32_0000 + (n & 0xffff))
    } else {
        Ipv4Addr::from(0x0a40_0000 + (n & 0x3f_ffff))
    }
}

/// The attribute group of a cycle's batch, and of prefix `i` in it.
fn attribute(cycle: u32, i: u32) -> u32 {
    (cycle % SET_GROUPS) * SETS_PER_BATCH + i % SETS_PER_BATCH
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

impl Lab {
    fn start(tag: &str) -> Lab {
        let work = WorkDir::new(tag);
        let node = Netns::new(&crate::unique_name(&format!("{tag}-node")));
        let frr_ns = Netns::new(&crate::unique_name(&format!("{tag}-frr")));
        let gobgp_ns = Netns::new(&crate::unique_name(&format!("{tag}-gobgp")));
        veth(&node, "eth-frr", &frr_ns, "eth0");
        veth(&node, "eth-gobgp", &gobgp_ns, "eth0");
        veth(&frr_ns, "eth-gobgp", &gobgp_ns, "eth-frr");
        node.add_addr("eth-frr", &format!("{TERN_V6}/64"));
        frr_ns.add_addr("eth0", &format!("{FRR_V6}/64"));
        node.add_addr("eth-gobgp", &format!("{TERN_V4}/24"));
        gobgp_ns.add_addr("eth0", &format!("{GOBGP_V4}/24"));
        frr_ns.add_addr("eth-gobgp", &format!("{FRR_V4}/24"));
        gobgp_ns.add_addr("eth-frr", &format!("{GOBGP_TO_FRR_V4}/24"));
        for (ns, dev) in [
            (&node, "eth-frr"),
            (&node, "eth-gobgp"),
            (&frr_ns, "eth0"),
            (&frr_ns, "eth-gobgp"),
            (&gobgp_ns, "eth0"),
            (&gobgp_ns, "eth-frr"),
        ] {
            ns.link_up(dev);
        }
        let frr = Frr::start(&frr_ns, &work, "frr", &frr_config());
        let gobgp = Gobgp::start(&gobgp_ns, &work, "gobgp", &gobgp_config(), 50051);
        let tern = Tern::start(&node, &work, "tern", &tern_config());
        Lab {
            _work: work,
            tern,
            frr,
            gobgp,
            node,
            frr_ns,
            _gobgp_ns: gobgp_ns,
        }
    }

    fn report(&self) {
        self.tern.report();
        self.frr.report();
        self.gobgp.report();
    }

    /// FRR's kernel routes: adds (`add`) or deletes the prefixes `range`
    /// of the batches (or of the base) of both families, in one `ip
    /// -batch` per family, with `cycle`'s metrics.
    fn frr_routes(&self, add: bool, base: bool, cycle: u32, range: std::ops::Range<u32>) {
        for family in ["-4", "-6"] {
            let mut script = String::new();
            for i in range.clone() {
                let prefix = if family == "-4" {
                    format!("{}/32", v4_prefix(base, i))
                } else {
                    v6_prefix(base, i)
                };
                if add {
                    let metric = 100 + attribute(cycle, i);
                    let _ = writeln!(script, "route add blackhole {prefix} metric {metric}");
                } else {
                    let _ = writeln!(script, "route del blackhole {prefix}");
                }
            }
            self.frr_ns
                .exec_stdin(&["ip", family, "-batch", "-"], &script)
                .unwrap_or_else(|e| panic!("FRR's kernel routes: {e}"));
        }
    }

    fn tern_pid(&self) -> u32 {
        self.tern.pid().expect("tern runs")
    }

    /// (accepted, Established sessions so far, established?) of a peer.
    fn peer(&self, name: &str) -> Result<(u64, u64, bool), String> {
        let p = self.tern.peer(name)?;
        Ok((
            p["prefixes"]["accepted"].as_u64().unwrap_or(0),
            p["established_transitions"].as_u64().unwrap_or(0),
            p["state"] == "established",
        ))
    }

    /// tern's routes in the kernel: (IPv4, IPv6).
    fn kernel(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        let list = |family: &str| -> BTreeSet<String> {
            self.node
                .ip(&[family, "route", "show", "table", "main", "proto", "186"])
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect()
        };
        (list("-4"), list("-6"))
    }

    /// Waits until each peer `(name, sessions)` is Established, after more
    /// than `sessions` sessions if given, and tern holds `routes` from it in
    /// its RIB and in the kernel (FRR's are IPv6, GoBGP's IPv4).
    fn wait_back(&self, peers: &[(&str, Option<u64>)], routes: u64, what: &str) {
        let within = timeout(60) + Duration::from_millis(routes);
        wait_until(within, what, || {
            let (v4, v6) = self.kernel();
            for &(name, since) in peers {
                let (accepted, sessions, established) = self.peer(name)?;
                if let Some(before) = since
                    && sessions <= before
                {
                    return Err(format!("{name}: {sessions} sessions, as before"));
                }
                if !established || accepted != routes {
                    return Err(format!(
                        "{name}: established {established}, {accepted} accepted; want {routes}"
                    ));
                }
                let kernel = if name == "frr" { v6.len() } else { v4.len() };
                if kernel as u64 != routes {
                    return Err(format!(
                        "{name}: {kernel} of its routes in the kernel, want {routes}"
                    ));
                }
            }
            Ok(())
        });
    }

    fn sessions(&self, name: &str) -> u64 {
        self.peer(name).map(|p| p.1).unwrap_or(0)
    }

    fn attribute_sets(&self) -> u64 {
        self.tern
            .summary()
            .map(|s| s["rib"]["attribute_sets"].as_u64().unwrap_or(0))
            .unwrap_or(0)
    }

    /// A sample with the cycle's work done: the lowest RSS and open file
    /// count over 6 s, which span one of tern's periodic trims (every 5 s)
    /// and leave out a connection attempt in flight.
    fn sample(&self, cycle: u32, start: Instant) -> Sample {
        let pid = self.tern_pid();
        let (mut rss, mut anon, mut fds) = (u64::MAX, u64::MAX, usize::MAX);
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            rss = rss.min(status_kb(pid, "VmRSS:"));
            anon = anon.min(status_kb(pid, "RssAnon:"));
            fds = fds.min(open_files(pid));
            std::thread::sleep(Duration::from_millis(250));
        }
        Sample {
            cycle,
            at: start.elapsed(),
            rss_kb: rss,
            anon_kb: anon,
            heap_kb: self
                .tern
                .metric("tern_heap_allocated_bytes")
                .map_or(0, |b| b as u64 / 1024),
            fds,
            attribute_sets: self.attribute_sets(),
            bgpd_rss_kb: status_kb(self.frr.bgpd_pid(), "VmRSS:"),
            gobgpd_rss_kb: status_kb(self.gobgp.pid(), "VmRSS:"),
        }
    }

    /// What tern's RIB and the kernel must hold at the end, checked.
    fn final_state(&self, plan: &Plan, problems: &mut Vec<String>) {
        let want_v4: BTreeSet<String> = (0..plan.base)
            .map(|i| format!("{}/32", v4_prefix(true, i)))
            .collect();
        let want_v6: BTreeSet<String> = (0..plan.base).map(|i| v6_prefix(true, i)).collect();
        let rib: BTreeSet<String> = self
            .tern
            .routes("")
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r["prefix"].as_str().map(str::to_owned))
            .collect();
        let want: BTreeSet<String> = want_v4.union(&want_v6).cloned().collect();
        if rib != want {
            problems.push(format!(
                "the RIB holds {} prefixes, want the {} base ones; extra {:?}, missing {:?}",
                rib.len(),
                want.len(),
                rib.difference(&want).take(5).collect::<Vec<_>>(),
                want.difference(&rib).take(5).collect::<Vec<_>>()
            ));
        }
        // `ip route` leaves `/32` and `/128` out.
        let (v4, v6) = self.kernel();
        let v4_want: BTreeSet<String> = want_v4
            .iter()
            .map(|p| p.trim_end_matches("/32").to_owned())
            .collect();
        for (family, got, want) in [("IPv4", v4, v4_want), ("IPv6", v6, want_v6)] {
            if got != want {
                problems.push(format!(
                    "the kernel holds {} {family} routes of tern's, want {}; extra {:?}, missing {:?}",
                    got.len(),
                    want.len(),
                    got.difference(&want).take(5).collect::<Vec<_>>(),
                    want.difference(&got).take(5).collect::<Vec<_>>()
                ));
            }
        }
        // Every nexthop object of tern's is used by a route or a group.
        let objects: Vec<Value> =
            serde_json::from_str(&self.node.ip(&["-j", "nexthop", "show", "proto", "186"]))
                .unwrap_or_default();
        let routes: Vec<Value> = ["-4", "-6"]
            .iter()
            .flat_map(|f| {
                serde_json::from_str::<Vec<Value>>(&self.node.ip(&["-j", f, "route", "show", "proto", "186"]))
                    .unwrap_or_default()
            })
            .collect();
        let mut used: BTreeSet<u64> = routes.iter().filter_map(|r| r["nhid"].as_u64()).collect();
        for o in &objects {
            if used.contains(&o["id"].as_u64().unwrap_or(0)) {
                for m in o["group"].as_array().into_iter().flatten() {
                    used.insert(m["id"].as_u64().unwrap_or(0));
                }
            }
        }
        let orphans: Vec<u64> = objects
            .iter()
            .filter_map(|o| o["id"].as_u64())
            .filter(|id| !used.contains(id))
            .collect();
        if !orphans.is_empty() {
            problems.push(format!("orphan nexthop objects: {orphans:?}"));
        }
    }
}

/// Runs the soak in namespaces named after `tag`; `None` when the labs
/// cannot run here (not root). Prints progress as it goes.
pub fn run(tag: &str, plan: Plan) -> Option<Report> {
    if !crate::require_root() {
        return None;
    }
    let lab = Lab::start(tag);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| soak(&lab, plan)));
    match result {
        Ok(report) => {
            if !report.problems.is_empty() {
                lab.report();
            }
            Some(report)
        }
        Err(panic) => {
            lab.report();
            std::panic::resume_unwind(panic)
        }
    }
}

fn soak(lab: &Lab, plan: Plan) -> Report {
    let start = Instant::now();
    let base = plan.base;
    lab.frr_routes(true, true, 0, 0..base);
    lab.wait_back(
        &[("frr", None), ("gobgp", None)],
        u64::from(base),
        "both sessions with the base routes",
    );
    let mut samples = vec![lab.sample(0, start)];
    let (mut frr_recoveries, mut gobgp_recoveries) = (Vec::new(), Vec::new());
    let mut peak_attribute_sets = 0;

    for cycle in 1..=plan.cycles {
        let first = (cycle - 1) * plan.batch;
        let full = u64::from(base + plan.batch);
        // 1. The batch.
        lab.frr_routes(true, false, cycle, first..first + plan.batch);
        lab.wait_back(
            &[("frr", None), ("gobgp", None)],
            full,
            &format!("cycle {cycle}: the batch in tern's RIB and kernel"),
        );
        peak_attribute_sets = peak_attribute_sets.max(lab.attribute_sets());

        // 2. Resets.
        for _ in 0..plan.rounds {
            let g0 = lab.sessions("gobgp");
            let g = Instant::now();
            // `gobgp neighbor reset` would refuse tern for 30 s (GoBGP's
            // idle hold time after a reset, whatever its configuration
            // says); after disable and enable it is 5 s.
            for op in ["disable", "enable"] {
                lab.gobgp
                    .cli(&["neighbor", TERN_V4, op])
                    .unwrap_or_else(|e| panic!("gobgp neighbor {op}: {e}"));
            }
            for _ in 0..plan.frr_resets {
                let f0 = lab.sessions("frr");
                let t = Instant::now();
                lab.frr
                    .vtysh(&[&format!("clear bgp {TERN_V6}")])
                    .unwrap_or_else(|e| panic!("clear bgp: {e}"));
                lab.wait_back(
                    &[("frr", Some(f0))],
                    full,
                    &format!("cycle {cycle}: FRR's session back after a reset"),
                );
                frr_recoveries.push(t.elapsed());
            }
            lab.wait_back(
                &[("gobgp", Some(g0))],
                full,
                &format!("cycle {cycle}: GoBGP's session back after a reset"),
            );
            gobgp_recoveries.push(g.elapsed());
        }

        // 3. Withdrawn again.
        lab.frr_routes(false, false, cycle, first..first + plan.batch);
        lab.wait_back(
            &[("frr", None), ("gobgp", None)],
            u64::from(base),
            &format!("cycle {cycle}: back to the base routes"),
        );

        // 4. Sample.
        let s = lab.sample(cycle, start);
        if cycle <= 3 || cycle % 10 == 0 || cycle == plan.cycles {
            println!(
                "cycle {cycle}/{}: {:.0?}, tern RSS {} kB, {} fds, {} attribute sets",
                plan.cycles, s.at, s.rss_kb, s.fds, s.attribute_sets
            );
        }
        samples.push(s);
    }

    let mut problems = Vec::new();
    lab.final_state(&plan, &mut problems);
    let (base_s, first, last) = (
        &samples[0],
        samples.get(1).unwrap_or(&samples[0]),
        samples.last().expect("samples"),
    );
    if last.rss_kb as f64 > first.rss_kb as f64 * (1.0 + RSS_SLACK) {
        problems.push(format!(
            "tern's RSS grew from {} kB after cycle 1 to {} kB ({:+.1}%)",
            first.rss_kb,
            last.rss_kb,
            percent(last.rss_kb, first.rss_kb)
        ));
    }
    if last.fds != base_s.fds {
        problems.push(format!(
            "tern has {} open files, {} before the first cycle",
            last.fds, base_s.fds
        ));
    }
    if last.attribute_sets != base_s.attribute_sets {
        problems.push(format!(
            "tern keeps {} attribute sets, {} before the first cycle",
            last.attribute_sets, base_s.attribute_sets
        ));
    }
    if peak_attribute_sets <= base_s.attribute_sets {
        problems.push(format!(
            "the batches interned no new attribute sets ({peak_attribute_sets} at most): the soak does not test their release"
        ));
    }
    Report {
        plan,
        peak_rss_kb: status_kb(lab.tern_pid(), "VmHWM:"),
        peak_attribute_sets,
        samples,
        frr_recoveries,
        gobgp_recoveries,
        elapsed: start.elapsed(),
        problems,
    }
}
