//! The supervisor: builds every task from the configuration, accepts
//! connections and hands them to their peer, and applies reloads (SIGHUP or
//! the API) by touching only what changed.
//!
//! Every task it starts, and the channels between them, are drawn in the
//! crate documentation (`lib.rs`).

mod connections;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bgp_proto::Notification;
use bgp_proto::notification::CeaseSubcode;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use crate::api::{self, ReloadRequest};
use crate::bfd::task::BfdControl;
use crate::clock;
use crate::config::{Config, PeerAddress, PeerConfig, RemoteAs};
use crate::refusals::RefusalLog;
use crate::rib::task::{RibHandle, RibRequest, RibToPeer};
use crate::rib::{PeerId, PeerSetup, Rib};
use crate::session::socket::{self, SocketOptions};
use crate::session::task::{self as peer_task, PeerControl, PeerHandle, Settings};
use crate::setup::NodeSetup;
use crate::status::{PeerStatus, StatusBoard};
use crate::unnumbered::task::{DiscoveryControl, DiscoveryHandle};

/// The file whose presence at start means tern is restarting (RFC 4724).
/// In the state directory while `tern drain` is in force.
const DRAIN_MARKER: &str = "drained";

const RESTART_MARKER: &str = "graceful-restart";
/// BFD sessions waiting across a planned restart.
const BFD_HANDOVER: &str = "bfd-sessions.json";

struct PeerEntry {
    config: PeerConfig,
    id: PeerId,
    handle: PeerHandle,
    /// The configured peer this one was created from, for dynamic
    /// neighbours.
    parent: Option<String>,
}

struct Supervisor {
    config: Config,
    router_id: Ipv4Addr,
    hostname: Option<String>,
    restarting: bool,
    rib: RibHandle,
    board: Arc<StatusBoard>,
    peers: HashMap<String, PeerEntry>,
    /// The router found at the other end of each unnumbered peer's link,
    /// by peer name.
    neighbours: HashMap<String, SocketAddrV6>,
    discovery: mpsc::UnboundedSender<DiscoveryControl>,
    listeners: Vec<Arc<TcpListener>>,
    seed: u64,
    refusals: RefusalLog,
    bfd: mpsc::UnboundedSender<BfdControl>,
    /// The FIB task's control channel, for static routes on reload.
    fib: Option<mpsc::UnboundedSender<crate::fib::task::FibControl>>,
    /// `tern drain` is in force (kept across restarts by a marker file).
    drained: bool,
    health: mpsc::UnboundedSender<Vec<crate::config::HealthCheck>>,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(path: &Path) -> Result<(), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let router_id = config
        .router_id
        .or_else(|| crate::setup::derive_router_id(&config))
        .ok_or("no router-id is configured and the host has no IPv4 address to derive one from")?;
    let hostname = config.hostname.clone().or_else(crate::setup::system_hostname);
    if let Some(h) = hostname
        .as_ref()
        .filter(|h| h.len() > crate::config::MAX_HOSTNAME)
    {
        tracing::warn!(
            octets = h.len(),
            "the host name is longer than the FQDN capability carries; it is not sent (set `hostname`)"
        );
    }

    let marker = config.state_dir.join(RESTART_MARKER);
    let restarting = config.graceful_restart.enabled && marker.exists();
    if let Err(e) =
        std::fs::create_dir_all(&config.state_dir).and_then(|_| std::fs::write(&marker, b"tern\n"))
    {
        tracing::warn!(dir = %config.state_dir.display(), error = %e, "cannot write the state directory; restarts will not be recognised as graceful");
    }
    tracing::info!(
        %router_id,
        asn = config.asn,
        restarting,
        peers = config.peers.len(),
        config = %path.display(),
        "tern starting"
    );

    let node = NodeSetup {
        config: &config,
        router_id,
        hostname: hostname.as_deref(),
        restarting,
    };
    let rib = Rib::new(node.rib_settings(), Instant::now());
    let fib = if config.fib.enabled {
        let handle = crate::fib::task::start(&config.fib, &config.static_routes).await.map_err(|e| {
            format!("cannot program the kernel (netlink: {e}); tern needs CAP_NET_ADMIN, or set `[fib] enabled = false`")
        })?;
        Some(handle)
    } else {
        tracing::info!("kernel route programming is off ([fib] enabled = false)");
        None
    };
    let (rib_tx, _rib_join) = crate::rib::task::spawn(rib, fib.as_ref().map(|f| f.input.clone()));
    let _ = rib_tx
        .requests
        .send(RibRequest::SetOriginate(config.originated()))
        .await;
    // Drained before a restart: stay drained, from the first UPDATE on.
    let drained = config.state_dir.join(DRAIN_MARKER).exists();
    if drained {
        tracing::warn!("starting drained (tern drain before the restart); `tern undrain` ends it");
        let _ = rib_tx
            .requests
            .send(RibRequest::Drain(Some(config.drain.prepend)))
            .await;
    }
    let health = crate::health::task::start(config.health_checks.clone(), rib_tx.requests.clone());
    let board = Arc::new(StatusBoard::default());
    board.loaded();

    let (accept_tx, mut accept_rx) = mpsc::channel::<(TcpStream, SocketAddr)>(64);
    let mut listeners = Vec::new();
    for addr in &config.listen {
        let l = socket::listen(*addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tracing::info!(%addr, "listening for BGP connections");
        let l = Arc::new(l);
        listeners.push(l.clone());
        let tx = accept_tx.clone();
        tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((stream, remote)) => {
                        if tx.send((stream, remote)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }

    let seed = u64::from(u32::from(router_id));
    let bfd = crate::bfd::task::start(
        seed ^ u64::from(std::process::id()),
        config.state_dir.join(BFD_HANDOVER),
    )
    .map_err(|e| format!("cannot start the BFD thread: {e}"))?;
    let mut bfd_changes = bfd.changes;
    let DiscoveryHandle {
        control: discovery,
        neighbours: mut neighbours_found,
    } = crate::unnumbered::task::start();
    let mut sup = Supervisor {
        config,
        router_id,
        hostname,
        restarting,
        rib: rib_tx,
        board: board.clone(),
        peers: HashMap::new(),
        neighbours: HashMap::new(),
        discovery,
        listeners,
        seed,
        refusals: RefusalLog::default(),
        bfd: bfd.control,
        fib: fib.as_ref().map(|f| f.control.clone()),
        drained,
        health: health.configure,
    };
    for pc in sup.config.peers.clone() {
        sup.add_configured_peer(pc).await;
        sup.set_md5_keys(None);
    }
    sup.configure_discovery();

    sup.configure_bfd();
    let _ = sup.rib.requests.send(RibRequest::PeersConfigured).await;
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let (drain_tx, mut drain_rx) = mpsc::channel::<api::DrainRequest>(4);
    let mut state = api::AppState::new(
        board.clone(),
        sup.rib.clone(),
        reload_tx,
        sup.router_id,
        sup.config.asn,
    );
    state.fib = fib.as_ref().map(|f| f.status.clone());
    state.fib_control = fib.as_ref().map(|f| f.control.clone());
    state.bfd = Some(sup.bfd.clone());
    state.drain = Some(drain_tx);
    state.health = Some(health.status);
    let _api = api::serve(&sup.config.api, state)
        .await
        .map_err(|e| format!("cannot start the API: {e}"))?;
    board.ready.store(true, Relaxed);
    // systemd (Type=notify): ready once the configuration is loaded and the
    // listeners and API are bound.
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("running"),
    ]);
    if let Some(interval) = sd_notify::watchdog_enabled() {
        tokio::spawn(watchdog(sup.rib.clone(), interval));
    }

    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    // RFC 4724 §3: the R bit says we restarted; after our restart time it
    // is no longer news.
    let restart_window = tokio::time::sleep(Duration::from_secs(u64::from(
        sup.config.graceful_restart.restart_time,
    )));
    tokio::pin!(restart_window);
    let mut restart_window_open = restarting;
    // Memory freed by closed connections and finished work goes back to
    // the system even when no table shrank.
    let mut trim = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            Some((stream, remote)) = accept_rx.recv() => sup.dispatch(stream, remote).await,
            _ = trim.tick() => crate::memory::trim(),
            _ = clock::sleep_until(sup.refusals.next_report()) => {
                for line in sup.refusals.report(Instant::now()) {
                    tracing::warn!("{line}");
                }
            }
            _ = hup.recv() => {
                let _ = sup.reload().await;
            }
            Some(reply) = reload_rx.recv() => {
                let _ = reply.send(sup.reload().await);
            }
            Some((on, reply)) = drain_rx.recv() => {
                sup.set_drain(on).await;
                let _ = reply.send(sup.drained);
            }
            _ = &mut restart_window, if restart_window_open => {
                restart_window_open = false;
                sup.restarting = false;
                sup.reconfigure_all();
            }
            Some(change) = bfd_changes.recv() => sup.bfd_changed(&change),
            Some(n) = neighbours_found.recv() => sup.neighbour_found(n),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    // A drain before the sessions go: traffic moves to other nodes while
    // this one still forwards it. A second signal cuts the wait short.
    if sup.config.drain.on_stop && !sup.drained {
        let wait = sup.config.drain.time;
        tracing::info!(wait_secs = wait.as_secs(), "draining before stopping");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Status("draining")]);
        sup.set_drain_for_stop().await;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = term.recv() => tracing::info!("stopping now"),
            _ = int.recv() => tracing::info!("stopping now"),
        }
    }
    let keep_routes = sup.config.fib.keep_routes_on_stop;
    sup.shutdown(&marker).await;
    if let Some(f) = fib {
        let (done, wait) = tokio::sync::oneshot::channel();
        let _ = f.control.send(crate::fib::task::FibControl::Stop {
            keep: keep_routes,
            done,
        });
        let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
    }
    Ok(())
}

impl Supervisor {
    /// What the configuration makes of each peer, for this run.
    fn node(&self) -> NodeSetup<'_> {
        NodeSetup {
            config: &self.config,
            router_id: self.router_id,
            hostname: self.hostname.as_deref(),
            restarting: self.restarting,
        }
    }

    fn setup(&self, pc: &PeerConfig, name: &str) -> PeerSetup {
        self.node().peer_setup(pc, name)
    }

    fn settings(&self, pc: &PeerConfig, name: &str, ip: IpAddr) -> Settings {
        let local_asn = pc.session.local_asn.unwrap_or(self.config.asn);
        let ebgp = !matches!(pc.session.remote_asn, RemoteAs::Exact(a) if a == local_asn);
        let remote = match &pc.session.address {
            PeerAddress::Interface(_) => match self.neighbours.get(name) {
                Some(n) => SocketAddr::V6(SocketAddrV6::new(*n.ip(), pc.session.port, 0, n.scope_id())),
                None => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), pc.session.port),
            },
            _ => SocketAddr::new(ip, pc.session.port),
        };
        Settings {
            name: name.to_owned(),
            remote,
            interface: match &pc.session.address {
                PeerAddress::Interface(i) => Some(i.clone()),
                _ => None,
            },
            local_address: pc.session.local_address,
            offer: self.node().offer(pc),
            timing: NodeSetup::timing(pc),
            socket: SocketOptions::for_peer(ebgp, pc.session.ttl, pc.session.ttl_security),
            md5: pc.session.md5_password.as_ref().map(|s| s.0.as_bytes().to_vec()),
            graceful_restart: self.node().graceful_restart(pc),
            restart_hold: pc.session.restart_hold,
        }
    }

    async fn add_peer(&mut self, pc: PeerConfig, ip: IpAddr, parent: Option<String>) {
        let name = match &parent {
            Some(p) => format!("{p}-{ip}"),
            None => pc.name.clone(),
        };
        let (to_peer, from_rib) = mpsc::unbounded_channel::<RibToPeer>();
        let (reply, id) = oneshot::channel();
        if self
            .rib
            .requests
            .send(RibRequest::AddPeer {
                setup: self.setup(&pc, &name),
                to_peer,
                reply,
            })
            .await
            .is_err()
        {
            return;
        }
        let Ok(id) = id.await else { return };
        let shown = match &pc.session.address {
            PeerAddress::Interface(_) => pc.session.address.to_string(),
            _ => ip.to_string(),
        };
        tracing::info!(peer = %name, address = %shown, role = %pc.session.role, passive = pc.session.passive, "peer added");
        let status = Arc::new(PeerStatus::new(name.clone(), pc.session.role.to_string(), shown));
        self.board.insert(status.clone());
        self.seed = self
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let handle = peer_task::spawn(
            id,
            self.settings(&pc, &name, ip),
            status,
            self.rib.events.clone(),
            from_rib,
            self.seed,
        );
        self.peers.insert(
            name,
            PeerEntry {
                config: pc,
                id,
                handle,
                parent,
            },
        );
    }

    async fn remove_peer(&mut self, name: &str, notification: Notification) {
        let Some(entry) = self.peers.remove(name) else {
            return;
        };
        let _ = entry.handle.control.send(PeerControl::Stop(notification));
        let _ = self.rib.requests.send(RibRequest::RemovePeer(entry.id)).await;
        self.board.remove(name);
        tracing::info!(peer = %name, "peer removed");
    }

    /// Re-reads the file (SIGHUP, the API), logs and counts the outcome: one
    /// line per problem of a bad file.
    async fn reload(&mut self) -> Result<String, String> {
        let result = self.apply_reload().await;
        self.board.reloaded(result.is_ok());
        match &result {
            Ok(summary) => tracing::info!(changes = %summary, "configuration reloaded"),
            Err(e) => {
                for problem in e.lines() {
                    tracing::error!(%problem, "configuration not reloaded; the running configuration stays");
                }
            }
        }
        result
    }

    /// Applies the file. Peers added or removed are the only ones whose
    /// sessions change; policy changes apply without resets. A bad file
    /// changes nothing.
    async fn apply_reload(&mut self) -> Result<String, String> {
        let new = Config::load(&self.config.path).map_err(|e| e.to_string())?;
        let mut changes = Vec::new();
        for (what, changed) in [
            ("asn", new.asn != self.config.asn),
            (
                "router-id",
                new.router_id.is_some() && new.router_id != Some(self.router_id),
            ),
            ("listen", new.listen != self.config.listen),
            ("api", new.api != self.config.api),
            (
                "graceful-restart",
                new.graceful_restart != self.config.graceful_restart,
            ),
            ("multipath", new.multipath != self.config.multipath),
            ("fib", new.fib != self.config.fib),
        ] {
            if changed {
                tracing::warn!(setting = what, "this setting changes only when tern restarts");
            }
        }
        let asn = self.config.asn;
        let old = std::mem::replace(&mut self.config, Config { asn, ..new });
        self.config.router_id = old.router_id;
        self.config.listen = old.listen.clone();
        self.config.api = old.api.clone();
        self.config.graceful_restart = old.graceful_restart.clone();
        self.config.multipath = old.multipath.clone();
        self.config.fib = old.fib.clone();

        let old_peers: HashMap<&str, &PeerConfig> = old.peers.iter().map(|p| (p.name.as_str(), p)).collect();
        let new_peers: HashMap<String, PeerConfig> = self
            .config
            .peers
            .iter()
            .map(|p| (p.name.clone(), p.clone()))
            .collect();
        let deconfigured = Notification::hard_reset(&Notification::cease(CeaseSubcode::PeerDeconfigured));
        let changed_config =
            Notification::hard_reset(&Notification::cease(CeaseSubcode::OtherConfigurationChange));
        for (name, old_pc) in &old_peers {
            let dynamic: Vec<String> = self
                .peers
                .iter()
                .filter(|(_, e)| e.parent.as_deref() == Some(*name))
                .map(|(n, _)| n.clone())
                .collect();
            match new_peers.get(*name) {
                None => {
                    self.remove_peer(name, deconfigured.clone()).await;
                    for d in dynamic {
                        self.remove_peer(&d, deconfigured.clone()).await;
                    }
                    changes.push(format!("removed {name}"));
                }
                Some(new_pc) if old_pc.session != new_pc.session => {
                    let before = self.board.peer(name);
                    self.remove_peer(name, changed_config.clone()).await;
                    for d in dynamic {
                        self.remove_peer(&d, changed_config.clone()).await;
                    }
                    // A router found on another link is not this one's.
                    if old_pc.session.address != new_pc.session.address {
                        self.neighbours.remove(*name);
                    }
                    self.add_configured_peer(new_pc.clone()).await;
                    if let (Some(before), Some(now)) = (before, self.board.peer(name)) {
                        now.carry_over(&before);
                    }
                    changes.push(format!("restarted {name}"));
                }
                Some(new_pc) if old_pc.routing != new_pc.routing => {
                    let mut targets: Vec<String> = dynamic;
                    targets.push(name.to_string());
                    for t in targets {
                        if let Some(entry) = self.peers.get_mut(&t) {
                            // The session settings are unchanged (a dynamic
                            // neighbour keeps its own address).
                            entry.config.routing = new_pc.routing.clone();
                            let setup = self.setup(&self.peers[&t].config, &t);
                            let (reply, refresh) = oneshot::channel();
                            let id = self.peers[&t].id;
                            let _ = self
                                .rib
                                .requests
                                .send(RibRequest::UpdatePeer { id, setup, reply })
                                .await;
                            if let Ok(families) = refresh.await
                                && !families.is_empty()
                            {
                                let _ = self.peers[&t].handle.control.send(PeerControl::Refresh(families));
                            }
                        }
                    }
                    changes.push(format!("policies of {name}"));
                }
                Some(_) => {}
            }
        }
        for (name, pc) in &new_peers {
            if !old_peers.contains_key(name.as_str()) {
                self.add_configured_peer(pc.clone()).await;
                changes.push(format!("added {name}"));
            }
        }
        if old.originated() != self.config.originated() {
            let _ = self
                .rib
                .requests
                .send(RibRequest::SetOriginate(self.config.originated()))
                .await;
            changes.push("originate".into());
        }
        if old.static_routes != self.config.static_routes {
            if let Some(fib) = &self.fib {
                let _ = fib.send(crate::fib::task::FibControl::Statics(
                    self.config.static_routes.clone(),
                ));
            }
            changes.push("static routes".into());
        }
        if old.health_checks != self.config.health_checks {
            let _ = self.health.send(self.config.health_checks.clone());
            changes.push("health checks".into());
        }
        for (name, pc) in &new_peers {
            if old_peers.get(name.as_str()).is_some_and(|o| o.bfd != pc.bfd) {
                changes.push(format!("bfd of {name}"));
            }
        }
        self.neighbours.retain(|name, _| new_peers.contains_key(name));
        self.configure_discovery();
        self.configure_bfd();
        self.set_md5_keys(Some(&old));
        Ok(if changes.is_empty() {
            "none".into()
        } else {
            changes.join(", ")
        })
    }

    /// The BFD sessions the configuration asks for: one per peer with
    /// `bfd`, multihop when the peer is more than one hop away.
    fn bfd_sessions(&self) -> Vec<crate::bfd::SessionConfig> {
        self.config
            .peers
            .iter()
            .filter_map(|pc| {
                let b = pc.bfd.as_ref()?;
                // An unnumbered peer's session starts once its router is
                // found, on the link it was found on.
                let (remote, ifindex) = match &pc.session.address {
                    PeerAddress::Single(remote) => (*remote, None),
                    PeerAddress::Interface(_) => {
                        let n = self.neighbours.get(&pc.name)?;
                        (IpAddr::V6(*n.ip()), Some(n.scope_id()))
                    }
                    PeerAddress::Range(_) => return None,
                };
                let s = &pc.session;
                Some(crate::bfd::SessionConfig {
                    peer: pc.name.clone(),
                    remote,
                    ifindex,
                    local: s.local_address,
                    multihop: s.ttl.is_some_and(|t| t > 1) || s.ttl_security.is_some_and(|h| h > 1),
                    timers: crate::bfd::Timers {
                        min_tx: b.min_tx,
                        min_rx: b.min_rx,
                        multiplier: b.multiplier,
                    },
                    passive: b.passive,
                })
            })
            .collect()
    }

    fn configure_bfd(&self) {
        let _ = self.bfd.send(BfdControl::Configure(self.bfd_sessions()));
    }

    /// A BFD session changed state: a failure ends its BGP session (RFC
    /// 5882 §4.3); coming Up, or a peer's AdminDown, changes nothing here.
    fn bfd_changed(&self, change: &crate::bfd::Change) {
        if !change.is_failure() {
            return;
        }
        if let Some(e) = self.peers.get(&change.peer) {
            let _ = e.handle.control.send(PeerControl::BfdDown);
        }
    }

    /// Pushes the current offers (e.g. without the R bit) to every peer.
    fn reconfigure_all(&self) {
        for (name, e) in &self.peers {
            let ip = match e.config.session.address {
                PeerAddress::Single(ip) => ip,
                PeerAddress::Interface(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                PeerAddress::Range(_) => continue,
            };
            let _ = e.handle.control.send(PeerControl::Reconfigure(Box::new(
                self.settings(&e.config, name, ip),
            )));
        }
    }

    /// `tern drain` / `tern undrain`: every route to every peer goes out
    /// again with (or without) GRACEFUL_SHUTDOWN. Kept across restarts.
    async fn set_drain(&mut self, on: bool) {
        if on == self.drained {
            return;
        }
        self.drained = on;
        let marker = self.config.state_dir.join(DRAIN_MARKER);
        let written = if on {
            std::fs::write(&marker, b"drained by tern drain\n")
        } else {
            std::fs::remove_file(&marker).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
        };
        if let Err(e) = written {
            tracing::warn!(file = %marker.display(), error = %e, "cannot record the drain; a restart will not remember it");
        }
        let prepend = self.config.drain.prepend;
        let _ = self
            .rib
            .requests
            .send(RibRequest::Drain(on.then_some(prepend)))
            .await;
        if on {
            tracing::warn!(
                prepend,
                "drained: every route goes out with GRACEFUL_SHUTDOWN until `tern undrain`"
            );
        } else {
            tracing::info!("undrained: routes go out as usual");
        }
    }

    /// The drain of a stop: not remembered, so the next start is not
    /// drained.
    async fn set_drain_for_stop(&mut self) {
        let _ = self
            .rib
            .requests
            .send(RibRequest::Drain(Some(self.config.drain.prepend)))
            .await;
    }

    async fn shutdown(self, marker: &Path) {
        let graceful = self.config.graceful_restart.enabled;
        tracing::info!(graceful, "tern stopping");
        // With graceful restart this is a planned restart: the BFD
        // sessions are handed to the next run (their peers asked to wait
        // the restart time), never taken down; AdminDown would end the BGP
        // sessions at FRR 8.4 (docs/operations.md, "BFD and restarts").
        let hand_over =
            graceful.then(|| Duration::from_secs(u64::from(self.config.graceful_restart.restart_time)));
        let (done, stopped) = oneshot::channel();
        if self.bfd.send(BfdControl::Stop { hand_over, done }).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(3), stopped).await;
        }
        let mut joins = Vec::new();
        for (_, e) in self.peers {
            let _ = e.handle.control.send(PeerControl::Shutdown {
                graceful: graceful && e.config.session.graceful_restart,
            });
            joins.push(e.handle.join);
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            for j in joins {
                let _ = j.await;
            }
        })
        .await;
        // Give the writers a moment to put NOTIFICATIONs and FINs on the wire.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !graceful {
            let _ = std::fs::remove_file(marker);
        }
    }
}

/// Pings systemd's watchdog at half its interval, but only while the RIB
/// answers: a wedged RIB gets the service restarted instead of a heartbeat
/// from an idle timer.
async fn watchdog(rib: RibHandle, interval: Duration) {
    let mut tick = tokio::time::interval(interval / 2);
    loop {
        tick.tick().await;
        if rib.requests.is_closed() {
            return;
        }
        match rib.ask(RibRequest::Ping, interval / 4).await {
            Some(()) => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
            None => tracing::error!("the RIB does not answer; not feeding the systemd watchdog"),
        }
    }
}
