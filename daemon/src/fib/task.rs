//! The tokio task that owns the [`Fib`] and the netlink sockets: it loads
//! the kernel's state, applies Loc-RIB changes in batches, follows link,
//! address and route events, scans for drift periodically, and on stop
//! leaves or removes its routes.

use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bgp_proto::Family;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::kernel::{KernelRoute, RT_TABLE_LOCAL, RouteKind};
use super::model::{Fib, Followup, KernelSnapshot};
use super::netlink::{Applying, Monitor, Netlink};
use crate::config::{FibSettings, StaticRoute};
use crate::rib::LocRibChange;
use crate::rib::task::FibInput;
use crate::status::{FibStatus, KernelState, RouteInUse};
use crate::{clock, memory};

pub enum FibControl {
    /// Stop; remove our routes unless `keep`.
    Stop { keep: bool, done: oneshot::Sender<()> },
    /// The static routes changed (a reload).
    Statics(Vec<StaticRoute>),
    /// Whether and how these selections are in the kernel, or why not.
    Explain(Vec<LocRibChange>, oneshot::Sender<Vec<KernelState>>),
    /// The route the kernel would use for each address (`ip route get`).
    Lookup(Vec<IpAddr>, oneshot::Sender<Vec<Option<RouteInUse>>>),
}

pub struct FibHandle {
    pub input: mpsc::UnboundedSender<FibInput>,
    pub control: mpsc::UnboundedSender<FibControl>,
    /// The latest status, published when it changes.
    pub status: watch::Receiver<FibStatus>,
    pub join: JoinHandle<()>,
}

/// Dumps of the kernel's state tried at start before giving up.
const START_DUMP_ATTEMPTS: u32 = 3;

/// Between those attempts.
const START_DUMP_PAUSE: Duration = Duration::from_millis(500);

/// After a deletion of one of our routes is seen, scan this soon.
const EARLY_SCAN: Duration = Duration::from_secs(1);

/// Loc-RIB changes taken in one go before the task looks at its other
/// inputs (the kernel's answers among them) again: some tens of
/// milliseconds of work. Changes wait more compactly in the FIB (a dirty
/// prefix) than in the channel, so while a table arrives faster than the
/// kernel takes it, the task keeps the channel short.
const TAKE_AT_ONCE: usize = 64 * 1024;

/// Keys written in one go. While the kernel works on them the task takes
/// the next changes, so a full table flows to the kernel as it arrives; a
/// bound keeps the ops of one write small.
const WRITE_AT_ONCE: usize = 64 * 1024;

/// Writes the netlink thread holds at once: with two, it starts on the
/// next as soon as it ends one, while the task takes that one's results
/// and prepares the one after. A key in both is written twice, in order;
/// the first's failure is then out of date, and ignored (see
/// [`Fib::applied`]).
const WRITES_IN_FLIGHT: usize = 2;

/// Keys turned into operations at a time within a write: small enough
/// that the netlink thread gets its first batch soon.
const WORK_OUT_AT_ONCE: usize = 1024;

/// Once this many ops were written, the room their batches and the Loc-RIB
/// changes before them took is given back to the system when the task
/// has been idle for `TRIM_WHEN_IDLE_FOR`: it is free, but glibc keeps
/// it. Waiting for a pause, rather than trimming at the first empty
/// moment, gives back what the whole burst left (the RIB frees its last
/// batches after the kernel has the routes), and costs nothing while a
/// table is still arriving and would take the room again.
const TRIM_AFTER_OPS: usize = 10_000;
const TRIM_WHEN_IDLE_FOR: Duration = Duration::from_millis(300);

/// Opens the kernel sockets, loads what the kernel holds and starts the
/// task. Fails when netlink cannot be opened (no CAP_NET_ADMIN).
pub async fn start(settings: &FibSettings, statics: &[StaticRoute]) -> std::io::Result<FibHandle> {
    let mut netlink = Netlink::open()?;
    // Subscribe before dumping, so nothing happens unseen in between.
    let monitor = Monitor::open_ignoring(settings.protocol, netlink.port())?;
    let nexthop_objects = netlink.supports_nexthop_objects().await;
    let mut fib = Fib::new(settings.clone(), nexthop_objects);
    // What the kernel holds decides what is adopted and what is swept: a
    // dump that fails is tried again, and then tern does not start, rather
    // than take the kernel for empty.
    let owned = settings.clone();
    let kernel = with_retries(&mut netlink, START_DUMP_ATTEMPTS, START_DUMP_PAUSE, |nl| {
        let s = owned.clone();
        Box::pin(async move { dump_kernel(nl, &s).await })
    })
    .await?;
    let (kernel, strangers) = kernel;
    let ours = kernel.ours.len();
    fib.load(kernel);
    fib.set_statics(statics);
    tracing::info!(
        table = settings.table,
        protocol = settings.protocol,
        nexthop_objects,
        routes_found = ours,
        "FIB ready; routes found from a previous run are kept until routing converges"
    );
    let (input, input_rx) = mpsc::unbounded_channel();
    let (control, control_rx) = mpsc::unbounded_channel();
    let (status_tx, status) = watch::channel(FibStatus {
        nexthop_objects,
        ..FibStatus::default()
    });
    let task = FibTask {
        fib,
        netlink,
        monitor,
        settings: settings.clone(),
        status: status_tx,
        nexthop_objects,
        scans: 0,
        strangers: strangers.iter().map(describe).collect(),
        writing: VecDeque::new(),
        written_ops: 0,
        trim_at: None,
    };
    let join = tokio::spawn(task.run(input_rx, control_rx));
    Ok(FibHandle {
        input,
        control,
        status,
        join,
    })
}

/// `op` on `ctx`, tried up to `attempts` times with `pause` in between;
/// its last error if it never succeeds (never a default in its place).
async fn with_retries<C, T>(
    ctx: &mut C,
    attempts: u32,
    pause: Duration,
    mut op: impl for<'a> FnMut(&'a mut C) -> Pin<Box<dyn Future<Output = std::io::Result<T>> + Send + 'a>>,
) -> std::io::Result<T> {
    let mut attempt = 1;
    loop {
        match op(ctx).await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < attempts => {
                tracing::warn!(error = %e, attempt, "cannot read the kernel's routes; trying again");
                attempt += 1;
                tokio::time::sleep(pause).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Everything the FIB needs to know of the kernel, dumped; and the routes
/// of our protocol that we did not write (see [`dump_ours`]).
async fn dump_kernel(
    nl: &mut Netlink,
    s: &FibSettings,
) -> std::io::Result<(KernelSnapshot, Vec<KernelRoute>)> {
    let (ours, strangers) = dump_ours(nl, s).await?;
    // Without nexthop objects in the kernel there are none to find; with
    // them, a failed dump is an error like any other.
    let nexthops = if nl.supports_nexthop_objects().await {
        nl.dump_nexthops(Some(s.protocol)).await?
    } else {
        Vec::new()
    };
    let mut foreign = Vec::new();
    for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        foreign.extend(
            nl.dump_routes(family, Some(254), None)
                .await?
                .into_iter()
                .filter(|r| r.protocol != s.protocol),
        );
    }
    let snapshot = KernelSnapshot {
        ours,
        nexthops,
        foreign,
        links: nl.links().await?,
        addresses: nl.addresses().await?,
    };
    Ok((snapshot, strangers))
}

/// Our routes: the configured table and the local table (VIP routes),
/// filtered in the kernel by protocol, and with our metric. A route of our
/// protocol with another metric is not ours: another daemon uses our
/// protocol number (FRR's zebra takes 186 for its own). Those come second,
/// to be reported, never touched.
async fn dump_ours(
    nl: &mut Netlink,
    s: &FibSettings,
) -> std::io::Result<(Vec<KernelRoute>, Vec<KernelRoute>)> {
    let mut all = Vec::new();
    for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        for table in [s.table, RT_TABLE_LOCAL] {
            all.extend(nl.dump_routes(family, Some(table), Some(s.protocol)).await?);
        }
    }
    Ok(all.into_iter().partition(|r| r.metric == s.metric))
}

/// A route for the status and the log.
fn describe(r: &KernelRoute) -> String {
    let via: Vec<String> = r
        .nexthops
        .iter()
        .map(|h| match (h.gateway, h.ifindex) {
            (Some(g), _) => format!("via {g}"),
            (None, Some(i)) => format!("dev {i}"),
            (None, None) => String::new(),
        })
        .collect();
    let via: String = via
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| format!(" {v}"))
        .collect();
    format!(
        "{}{via} table {} metric {}{}",
        r.prefix,
        r.table,
        r.metric,
        r.nhid.map(|n| format!(" nhid {n}")).unwrap_or_default()
    )
}

struct FibTask {
    fib: Fib,
    netlink: Netlink,
    monitor: Monitor,
    settings: FibSettings,
    status: watch::Sender<FibStatus>,
    nexthop_objects: bool,
    scans: u64,
    /// Routes of our protocol we did not write, as last dumped.
    strangers: Vec<String>,
    /// Writes handed to the netlink thread, oldest first: up to
    /// `WRITES_IN_FLIGHT`, so the thread has the next while the task takes
    /// the results of the last. Their results are taken in order.
    writing: VecDeque<Applying>,
    /// Ops written since memory was last given back, and when it will be
    /// next if the task stays idle.
    written_ops: usize,
    trim_at: Option<Instant>,
}

/// The oldest write in progress, finished (and no longer in progress);
/// never, when there is none.
async fn written(
    writing: &mut VecDeque<Applying>,
) -> Result<(Vec<super::kernel::Op>, Vec<Result<(), super::kernel::OpError>>), oneshot::error::RecvError> {
    let Some(w) = writing.front_mut() else {
        return std::future::pending().await;
    };
    let done = w.await;
    writing.pop_front();
    done
}

impl FibTask {
    async fn run(
        mut self,
        mut input: mpsc::UnboundedReceiver<FibInput>,
        mut control: mpsc::UnboundedReceiver<FibControl>,
    ) {
        let mut scan = tokio::time::interval(self.settings.scan_interval);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        scan.tick().await;
        let early = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(early);
        let mut early_armed = false;
        loop {
            let mut next = Followup::None;
            tokio::select! {
                done = written(&mut self.writing) => {
                    match done {
                        Ok((ops, results)) => {
                            self.written_ops += ops.len();
                            self.fib.applied(&ops, &results, Instant::now());
                        }
                        Err(_) => tracing::error!("the netlink thread has stopped"),
                    }
                }
                msg = input.recv() => {
                    let Some(msg) = msg else { return };
                    let mut taken = self.take(msg);
                    // What is already queued goes into the same write, up
                    // to a bound: the kernel's answers must not wait long.
                    while taken < TAKE_AT_ONCE {
                        let Ok(more) = input.try_recv() else { break };
                        taken += self.take(more).max(1);
                    }
                }
                event = self.monitor.next() => match event {
                    Ok(e) => {
                        next = self.fib.kernel_event(e);
                        // All that is queued: while the kernel writes, it
                        // reports each removal, and the socket must not
                        // overflow (a lost event costs a reload).
                        next = next.max(self.take_queued_events().await);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "kernel event socket failed; reopening");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        if let Ok(m) = Monitor::open_ignoring(self.settings.protocol, self.netlink.port()) {
                            self.monitor = m;
                        }
                        next = Followup::Reload;
                    }
                },
                _ = scan.tick() => next = self.scan().await,
                _ = clock::sleep_until(self.fib.next_retry()) => self.fib.retry_due(Instant::now()),
                _ = clock::sleep_until(self.trim_at) => {
                    self.trim_at = None;
                    if input.is_empty() && self.writing.is_empty() {
                        memory::trim();
                        self.written_ops = 0;
                    }
                }
                _ = &mut early, if early_armed => {
                    early_armed = false;
                    next = self.scan().await;
                }
                ctl = control.recv() => match ctl {
                    Some(FibControl::Statics(routes)) => self.fib.set_statics(&routes),
                    Some(FibControl::Explain(changes, reply)) => {
                        let _ = reply.send(changes.iter().map(|c| self.fib.explain(c)).collect());
                    }
                    Some(FibControl::Lookup(addresses, reply)) => {
                        let mut found = Vec::with_capacity(addresses.len());
                        for a in addresses {
                            let route = self.netlink.route_get(a).await.ok().flatten();
                            found.push(route.map(|r| RouteInUse {
                                prefix: r.prefix,
                                protocol: r.protocol,
                                table: r.table,
                                local: r.kind == RouteKind::Local,
                            }));
                        }
                        let _ = reply.send(found);
                    }
                    Some(FibControl::Stop { keep, done }) => {
                        self.finish_writing().await;
                        if !keep {
                            let ops = self.fib.withdraw_all();
                            let n = ops.len();
                            let results = self.netlink.apply(&ops).await;
                            tracing::info!(operations = n, failed = results.iter().filter(|r| r.is_err()).count(), "kernel routes removed");
                        } else {
                            tracing::info!("kernel routes left in place for the next start");
                        }
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
            }
            self.write();
            self.publish();
            // Idle: what the routes left behind goes back to the system,
            // at once if a table shrank, else after a pause.
            if input.is_empty() && self.writing.is_empty() {
                if self.fib.release_unused() {
                    memory::trim();
                    self.written_ops = 0;
                    self.trim_at = None;
                } else if self.written_ops >= TRIM_AFTER_OPS {
                    self.trim_at = Some(Instant::now() + TRIM_WHEN_IDLE_FOR);
                }
            } else {
                self.trim_at = None;
            }
            // Follow up until the kernel and the FIB agree.
            for _ in 0..3 {
                match next {
                    Followup::None => break,
                    Followup::Scan => {
                        if !early_armed {
                            early.as_mut().reset(tokio::time::Instant::now() + EARLY_SCAN);
                            early_armed = true;
                        }
                        break;
                    }
                    Followup::Reload => {
                        tracing::info!(
                            "reloading the kernel state (events lost, or a link or address changed)"
                        );
                        next = self.finish_writing().await;
                        self.reload().await;
                        next = next.max(self.flush().await);
                    }
                }
            }
        }
    }

    /// Takes one message; returns how many changes it held.
    fn take(&mut self, msg: FibInput) -> usize {
        match msg {
            FibInput::Changes(changes) => {
                for c in &changes {
                    self.fib.loc_rib(c);
                }
                changes.len()
            }
            FibInput::Converged => {
                tracing::info!("routing converged; removing kernel routes no longer wanted");
                self.fib.converged();
                0
            }
        }
    }

    /// Starts writing what changed, unless `WRITES_IN_FLIGHT` writes are
    /// in progress (the next starts when the oldest ends).
    fn write(&mut self) {
        while self.writing.len() < WRITES_IN_FLIGHT {
            let FibTask { fib, netlink, .. } = self;
            let mut flush = fib.start_flush(WRITE_AT_ONCE);
            // Piece by piece: the netlink thread writes a batch while the
            // next is worked out.
            let mut write = netlink.start_write();
            while let Some(ops) = fib.flush_some(&mut flush, WORK_OUT_AT_ONCE) {
                write.extend(ops);
            }
            write.extend(fib.finish_flush(flush));
            if write.is_empty() {
                return;
            }
            let applying = write.finish();
            self.writing.push_back(applying);
        }
    }

    /// Waits for the write in progress, reading kernel events meanwhile;
    /// returns what they ask for.
    async fn finish_writing(&mut self) -> Followup {
        let mut next = Followup::None;
        while !self.writing.is_empty() {
            tokio::select! {
                done = written(&mut self.writing) => {
                    if let Ok((ops, results)) = done {
                        self.fib.applied(&ops, &results, Instant::now());
                    }
                }
                ev = self.monitor.next() => match ev {
                    Ok(e) => next = next.max(self.fib.kernel_event(e)),
                    Err(_) => next = Followup::Reload,
                },
            }
        }
        next
    }

    /// Writes everything that changed and waits for it. Kernel events that
    /// arrive meanwhile are read as they come, so a large write cannot
    /// overflow the event socket; returns what they ask for.
    async fn flush(&mut self) -> Followup {
        let mut next = self.finish_writing().await;
        let ops = self.fib.flush();
        if !ops.is_empty() {
            let FibTask {
                fib,
                netlink,
                monitor,
                ..
            } = self;
            let results = {
                let apply = netlink.apply(&ops);
                tokio::pin!(apply);
                loop {
                    tokio::select! {
                        r = &mut apply => break r,
                        ev = monitor.next() => match ev {
                            Ok(e) => next = next.max(fib.kernel_event(e)),
                            Err(_) => next = Followup::Reload,
                        },
                    }
                }
            };
            self.fib.applied(&ops, &results, Instant::now());
        }
        self.publish();
        next
    }

    /// Compares the kernel with what tern wrote: its routes, and its
    /// nexthop objects and groups.
    /// Compares the kernel with what tern wrote. Events the kernel queued
    /// before the dump are taken first: a change by another daemon (its
    /// route in place of ours) must be known before the scan decides what
    /// to write back. Returns what those events ask for.
    async fn scan(&mut self) -> Followup {
        // Routes being written would look missing.
        let next = self.finish_writing().await;
        next.max(self.scan_kernel().await)
    }

    async fn scan_kernel(&mut self) -> Followup {
        let nexthops = if self.nexthop_objects {
            match self.netlink.dump_nexthops(Some(self.settings.protocol)).await {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot dump nexthop objects for the consistency scan");
                    return Followup::None;
                }
            }
        } else {
            None
        };
        match dump_ours(&mut self.netlink, &self.settings).await {
            Ok((ours, strangers)) => {
                self.strangers(&strangers);
                let next = self.take_queued_events().await;
                self.scans += 1;
                self.fib.scan(&ours, nexthops.as_deref());
                next
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot dump kernel routes for the consistency scan");
                Followup::None
            }
        }
    }

    /// Feeds the FIB every kernel event already queued, without waiting.
    async fn take_queued_events(&mut self) -> Followup {
        let mut next = Followup::None;
        loop {
            tokio::select! {
                biased;
                ev = self.monitor.next() => match ev {
                    Ok(e) => next = next.max(self.fib.kernel_event(e)),
                    Err(_) => return Followup::Reload,
                },
                () = std::future::ready(()) => return next,
            }
        }
    }

    async fn reload(&mut self) {
        match dump_kernel(&mut self.netlink, &self.settings).await {
            Ok((kernel, strangers)) => {
                self.strangers(&strangers);
                self.fib.reload(kernel);
            }
            Err(e) => tracing::error!(error = %e, "cannot reload the kernel state"),
        }
    }

    /// Routes of our protocol someone else wrote: said in the log when they
    /// change, and shown in the status (and by `tern doctor`).
    fn strangers(&mut self, routes: &[KernelRoute]) {
        let now: Vec<String> = routes.iter().map(describe).collect();
        if now != self.strangers && !now.is_empty() {
            tracing::warn!(
                protocol = self.settings.protocol,
                routes = ?now,
                "routes of tern's protocol that tern did not write: another daemon uses the same protocol number (FRR's zebra takes 186 for its own); give tern one of its own with [fib] protocol"
            );
        }
        self.strangers = now;
    }

    /// Publishes the status when it changed (readers are woken only then).
    fn publish(&self) {
        let counters = self.fib.counters();
        let failed_routes = self.fib.failed_routes(Instant::now());
        self.status.send_if_modified(|s| {
            let unresolved_same = s.unresolved_prefixes.len() == counters.unresolved
                && s.unresolved_prefixes
                    .iter()
                    .zip(self.fib.unresolved())
                    .all(|(a, b)| *a == b.to_string());
            if s.counters == counters
                && s.scans == self.scans
                && s.strangers == self.strangers
                && unresolved_same
                && s.failed_routes == failed_routes
            {
                return false;
            }
            // When drift was last repaired: doctor looks at the last hour.
            let last_repair_at = if counters.repairs > s.counters.repairs {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs())
            } else {
                s.last_repair_at
            };
            *s = FibStatus {
                counters,
                nexthop_objects: self.nexthop_objects,
                unresolved_prefixes: self.fib.unresolved().map(ToString::to_string).collect(),
                failed_routes,
                scans: self.scans,
                last_repair_at,
                protocol: self.settings.protocol,
                strangers: self.strangers.clone(),
            };
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    /// A dump that fails its first `failures` calls, counted in `calls`.
    fn dump(calls: &mut u32, failures: u32) -> Pin<Box<dyn Future<Output = io::Result<u32>> + Send + '_>> {
        Box::pin(async move {
            *calls += 1;
            if *calls <= failures {
                Err(io::Error::other(format!("dump {calls} interrupted")))
            } else {
                Ok(*calls)
            }
        })
    }

    #[tokio::test]
    async fn a_failed_start_dump_is_tried_again() {
        let mut calls = 0;
        let got = with_retries(&mut calls, 3, Duration::from_millis(1), |c| dump(c, 2)).await;
        assert_eq!(got.expect("the third attempt succeeds"), 3);
    }

    #[tokio::test]
    async fn a_start_dump_that_keeps_failing_is_an_error_not_an_empty_kernel() {
        let mut calls = 0;
        let got = with_retries(&mut calls, 3, Duration::from_millis(1), |c| dump(c, 3)).await;
        let e = got.expect_err("three failures in three attempts");
        assert_eq!(e.to_string(), "dump 3 interrupted");
    }
}
