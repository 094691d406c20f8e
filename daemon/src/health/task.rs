//! Runs the health checks and tells the RIB which gates are failing.
//!
//! A check that probes from the host runs as a task on the main runtime.
//! One that probes from another network namespace gets its own thread
//! (joining a namespace is per thread) with a small runtime of its own,
//! so no other work ever runs in the pod's namespace. Results come back
//! here, to the one place that keeps the verdicts.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use super::HealthView;
use super::netns::Placement;
use super::probe;
use super::state::Verdict;
use crate::config::{Gate, HealthCheck, Probe, ProbeNamespace};
use crate::rib::task::RibRequest;

pub struct HealthHandle {
    /// New checks after a reload; a check whose configuration did not
    /// change keeps its verdict.
    pub configure: mpsc::UnboundedSender<Vec<HealthCheck>>,
    pub status: watch::Receiver<Vec<HealthView>>,
}

/// One probe's outcome, from a check's runner.
struct Outcome {
    index: usize,
    result: Result<String, String>,
    entered: Option<String>,
}

struct Running {
    check: HealthCheck,
    verdict: Verdict,
    since: Instant,
    probes_ok: u64,
    probes_failed: u64,
    last: Option<(bool, String, u64)>,
    entered: Option<String>,
    task: Option<AbortHandle>,
}

pub fn start(checks: Vec<HealthCheck>, rib: mpsc::Sender<RibRequest>) -> HealthHandle {
    let (configure, mut control) = mpsc::unbounded_channel::<Vec<HealthCheck>>();
    let (status_tx, status) = watch::channel(Vec::new());
    tokio::spawn(async move {
        let mut running: Vec<Running> = Vec::new();
        let (mut results, mut outcomes) = mpsc::channel::<Outcome>(64);
        let mut checks = Some(checks);
        loop {
            if let Some(new) = checks.take() {
                (results, outcomes) = mpsc::channel(64);
                running = reconfigure(running, new, &results);
                send_gates(&running, &rib).await;
                let _ = status_tx.send(views(&running));
            }
            tokio::select! {
                new = control.recv() => match new {
                    Some(new) => checks = Some(new),
                    None => break,
                },
                Some(o) = outcomes.recv() => {
                    let Some(r) = running.get_mut(o.index) else { continue };
                    if record(r, o) {
                        send_gates(&running, &rib).await;
                    }
                    let _ = status_tx.send(views(&running));
                }
            }
        }
        for r in &running {
            if let Some(t) = &r.task {
                t.abort();
            }
        }
        drop(results);
    });
    HealthHandle { configure, status }
}

/// Starts the new checks, keeping the verdicts of those that did not
/// change. Runners of the old ones stop: tasks at once, threads at their
/// next probe (their channel is closed).
fn reconfigure(old: Vec<Running>, new: Vec<HealthCheck>, results: &mpsc::Sender<Outcome>) -> Vec<Running> {
    let mut old = old;
    for r in &old {
        if let Some(t) = &r.task {
            t.abort();
        }
    }
    new.into_iter()
        .enumerate()
        .map(|(index, check)| {
            let kept = old
                .iter()
                .position(|r| r.check == check)
                .map(|i| old.swap_remove(i));
            let task = launch(index, check.clone(), results.clone());
            match kept {
                Some(r) => Running { task, ..r },
                None => Running {
                    check,
                    verdict: Verdict::default(),
                    since: Instant::now(),
                    probes_ok: 0,
                    probes_failed: 0,
                    last: None,
                    entered: None,
                    task,
                },
            }
        })
        .collect()
}

fn launch(index: usize, check: HealthCheck, results: mpsc::Sender<Outcome>) -> Option<AbortHandle> {
    if check.namespace.is_none() {
        return Some(tokio::spawn(probe_loop(index, check, results)).abort_handle());
    }
    let name = format!("health-{}", check.name);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(probe_loop(index, check, results)),
            Err(e) => {
                tracing::error!(check = %check.name, error = %e, "cannot start the health check's runtime")
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start a health check thread");
    }
    None
}

/// Probes every interval until the results are no longer wanted.
async fn probe_loop(index: usize, check: HealthCheck, results: mpsc::Sender<Outcome>) {
    let mut tick = tokio::time::interval(check.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut placement = Placement::default();
    let mut id = (std::process::id() as u16) ^ (index as u16).rotate_left(8);
    loop {
        tick.tick().await;
        id = id.wrapping_add(1);
        let (result, entered) = match &check.namespace {
            Some(ns) => match placement.enter(ns) {
                Ok(p) => (run(&check, id).await, Some(p.display().to_string())),
                Err(e) => (Err(e), None),
            },
            None => (run(&check, id).await, None),
        };
        let outcome = Outcome {
            index,
            result,
            entered,
        };
        if results.send(outcome).await.is_err() {
            return;
        }
    }
}

async fn run(check: &HealthCheck, id: u16) -> Result<String, String> {
    match tokio::time::timeout(check.timeout, probe::run(&check.probe, id)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", check.timeout.as_millis())),
    }
}

/// Takes an outcome; true when the check's verdict changed.
fn record(r: &mut Running, o: Outcome) -> bool {
    let ok = o.result.is_ok();
    if ok {
        r.probes_ok += 1;
    } else {
        r.probes_failed += 1;
    }
    let text = match o.result {
        Ok(t) | Err(t) => t,
    };
    if !ok && r.last.as_ref().is_none_or(|l| l.0) {
        tracing::debug!(check = %r.check.name, result = %text, "health probe failed");
    }
    let changed = r.verdict.record(ok, r.check.rise, r.check.fall);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    r.last = Some((ok, text, now));
    r.entered = o.entered.or(r.entered.take());
    if changed {
        r.since = Instant::now();
        let result = r.last.as_ref().map_or("", |l| l.1.as_str());
        let action = r
            .check
            .gate
            .as_ref()
            .map_or("report only".to_owned(), |g| g.action.to_string());
        if r.verdict.passing {
            tracing::info!(check = %r.check.name, rise = r.check.rise, %result, "health check passing again; its VIPs are advertised as usual");
        } else {
            tracing::warn!(check = %r.check.name, fall = r.check.fall, %result, %action, "health check failing");
        }
    }
    changed
}

/// The gates of failing checks, for the RIB.
async fn send_gates(running: &[Running], rib: &mpsc::Sender<RibRequest>) {
    let failing: Vec<Gate> = running
        .iter()
        .filter(|r| !r.verdict.passing)
        .filter_map(|r| r.check.gate.clone())
        .collect();
    let _ = rib.send(RibRequest::HealthGates(failing)).await;
}

fn describe(probe: &Probe) -> String {
    match probe {
        Probe::Tcp(a) => format!("tcp {a}"),
        Probe::Http {
            tls,
            authority,
            path,
            expect,
            ..
        } => format!(
            "{}://{authority}{path} expecting {expect:?}",
            if *tls { "https" } else { "http" }
        ),
        Probe::Dns { server, name } => format!("dns {server} {name}"),
    }
}

fn views(running: &[Running]) -> Vec<HealthView> {
    running
        .iter()
        .map(|r| {
            let c = &r.check;
            HealthView {
                name: c.name.to_string(),
                probe: describe(&c.probe),
                namespace: c.namespace.as_ref().map(|n| match n {
                    ProbeNamespace::Path(p) => p.display().to_string(),
                    ProbeNamespace::PodIp(ip) => format!("pod-ip {ip}"),
                }),
                entered: r.entered.clone(),
                state: if r.verdict.passing { "passing" } else { "failing" }.into(),
                action: match &c.gate {
                    None => "report".into(),
                    Some(g) => g.action.to_string(),
                },
                gates: match &c.gate {
                    None => "nothing".into(),
                    Some(g) if g.selector.prefix_sets.is_empty() => "every VIP".into(),
                    Some(g) => {
                        let names: Vec<&str> =
                            g.selector.prefix_sets.iter().map(|s| s.name.as_str()).collect();
                        format!("prefix-set {}", names.join(", "))
                    }
                },
                interval_ms: millis(c.interval),
                timeout_ms: millis(c.timeout),
                rise: c.rise,
                fall: c.fall,
                streak: r.verdict.streak,
                for_secs: r.since.elapsed().as_secs(),
                transitions: r.verdict.transitions,
                probes_ok: r.probes_ok,
                probes_failed: r.probes_failed,
                last_ok: r.last.as_ref().map(|l| l.0),
                last_result: r.last.as_ref().map(|l| l.1.clone()),
                last_probe_at: r.last.as_ref().map(|l| l.2),
            }
        })
        .collect()
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::start;
    use crate::config::{Gate, GateAction, HealthCheck, Probe};
    use crate::rib::task::RibRequest;

    fn check(addr: std::net::SocketAddr) -> HealthCheck {
        HealthCheck {
            name: "local".into(),
            probe: Probe::Tcp(addr),
            namespace: None,
            interval: Duration::from_millis(20),
            timeout: Duration::from_millis(20),
            rise: 2,
            fall: 2,
            gate: Some(Gate {
                check: Arc::from("local"),
                selector: policy::VipSelector::default(),
                action: GateAction::Withdraw,
            }),
        }
    }

    async fn next_gates(rib: &mut mpsc::Receiver<RibRequest>) -> Vec<Gate> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), rib.recv()).await {
                Ok(Some(RibRequest::HealthGates(g))) => return g,
                Ok(Some(_)) => {}
                other => panic!("no gates: {:?}", other.is_ok()),
            }
        }
    }

    /// A check whose server goes away fails its gate; back, it passes, and
    /// a reload that keeps the check keeps its verdict and counters.
    #[tokio::test]
    async fn a_failing_check_tells_the_rib_and_a_reload_keeps_its_verdict() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (rib_tx, mut rib) = mpsc::channel(64);
        let h = start(vec![check(addr)], rib_tx);
        assert!(next_gates(&mut rib).await.is_empty(), "starts passing");
        drop(l);
        let failing = next_gates(&mut rib).await;
        assert_eq!(failing.len(), 1);
        assert_eq!(&*failing[0].check, "local");
        let v = h.status.borrow().clone();
        assert_eq!(v[0].state, "failing");
        assert!(
            v[0].last_result.as_deref().unwrap_or("").contains("refused"),
            "{v:?}"
        );
        // A reload with the same check: still failing, counters kept.
        h.configure.send(vec![check(addr)]).unwrap();
        assert_eq!(next_gates(&mut rib).await.len(), 1);
        assert_eq!(h.status.borrow()[0].transitions, 1);
        let _l = TcpListener::bind(addr).await.unwrap();
        assert!(next_gates(&mut rib).await.is_empty());
        let v = h.status.borrow().clone();
        assert_eq!((v[0].state.as_str(), v[0].transitions), ("passing", 2));
    }
}
