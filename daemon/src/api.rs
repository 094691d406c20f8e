//! The HTTP status API: JSON for peers, routes and a summary, Prometheus
//! metrics, health and readiness, and reload. Served on a TCP address
//! (default 127.0.0.1:9179) and on a Unix socket. It only reads: the status
//! board, and the RIB through queries.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bgp_proto::Family;
use ipnet::IpNet;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::bfd::task::BfdControl;
use crate::config::ApiConfig;
use crate::fib::task::FibControl;
use crate::metrics;
use crate::rib::task::{RibHandle, RibRequest};
use crate::rib::{AdjSide, RouteFilter};
use crate::status::{
    AdjRouteView, ApiError, BfdStatus, Drained, FibStatus, PeerDetail, PeerView, PrefixCounts, Reloaded,
    RouteView, SessionState, StatusBoard, Summary,
};

/// A reload request and where to send its outcome: the changes made, or
/// every problem found in the file.
pub type ReloadRequest = oneshot::Sender<Result<String, String>>;

/// Drain (true) or undrain (false), and where to say whether the node is
/// drained now.
pub type DrainRequest = (bool, oneshot::Sender<bool>);

#[derive(Clone)]
pub struct AppState {
    pub board: Arc<StatusBoard>,
    pub rib: RibHandle,
    pub reload: mpsc::Sender<ReloadRequest>,
    pub router_id: Ipv4Addr,
    pub asn: u32,
    pub started: Instant,
    pub fib: Option<watch::Receiver<FibStatus>>,
    /// The FIB task, asked where routes are in the kernel.
    pub fib_control: Option<mpsc::UnboundedSender<FibControl>>,
    /// The BFD thread, asked for its sessions.
    pub bfd: Option<mpsc::UnboundedSender<BfdControl>>,
    /// The health checks' verdicts, published on every probe.
    pub health: Option<tokio::sync::watch::Receiver<Vec<crate::health::HealthView>>>,
    /// The supervisor, for `tern drain` and `tern undrain`.
    pub drain: Option<mpsc::Sender<DrainRequest>>,
}

impl AppState {
    pub fn new(
        board: Arc<StatusBoard>,
        rib: RibHandle,
        reload: mpsc::Sender<ReloadRequest>,
        router_id: Ipv4Addr,
        asn: u32,
    ) -> Self {
        AppState {
            board,
            rib,
            reload,
            router_id,
            asn,
            started: Instant::now(),
            fib: None,
            fib_control: None,
            bfd: None,
            health: None,
            drain: None,
        }
    }

    /// Asks the RIB, giving up after a few seconds (a stuck RIB must not
    /// hang the API).
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> RibRequest) -> Option<T> {
        self.rib.ask(make, Duration::from_secs(5)).await
    }
}

/// The running API; dropping it stops it.
pub struct ApiServer {
    _stop: watch::Sender<()>,
}

/// Binds the configured endpoints and serves them on a thread of their own
/// with its own runtime, so an answer never waits for a worker of the main
/// runtime that is busy with routes (the RIB still answers between two
/// events). Returns once the endpoints are bound.
pub async fn serve(config: &ApiConfig, state: AppState) -> std::io::Result<ApiServer> {
    let (stop, stopped) = watch::channel(());
    let (bound, bound_rx) = oneshot::channel();
    let config = config.clone();
    std::thread::Builder::new()
        .name("tern-api".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    let _ = bound.send(Err(e));
                    return;
                }
            };
            runtime.block_on(run(config, state, stopped, bound));
        })?;
    bound_rx
        .await
        .map_err(|_| std::io::Error::other("the API thread ended"))??;
    Ok(ApiServer { _stop: stop })
}

/// Serves the endpoints until the [`ApiServer`] is dropped.
async fn run(
    config: ApiConfig,
    state: AppState,
    stopped: watch::Receiver<()>,
    bound: oneshot::Sender<std::io::Result<()>>,
) {
    let app = router(state);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.changed().await;
        }
    };
    let mut servers = Vec::new();
    if let Some(addr) = config.listen {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                let _ = bound.send(Err(e));
                return;
            }
        };
        tracing::info!(%addr, "status API listening");
        let serve = axum::serve(listener, app.clone()).with_graceful_shutdown(shutdown());
        servers.push(tokio::spawn(serve.into_future()));
    }
    if let Some(path) = &config.socket {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::remove_file(path);
        match tokio::net::UnixListener::bind(path) {
            Ok(listener) => {
                tracing::info!(socket = %path.display(), "status API listening");
                let serve = axum::serve(listener, app).with_graceful_shutdown(shutdown());
                servers.push(tokio::spawn(serve.into_future()));
            }
            Err(e) => tracing::warn!(socket = %path.display(), error = %e, "cannot create the API socket"),
        }
    }
    let _ = bound.send(Ok(()));
    for server in servers {
        if let Ok(Err(e)) = server.await {
            tracing::error!(error = %e, "status API stopped");
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/summary", get(summary))
        .route("/api/v1/peers", get(peers))
        .route("/api/v1/peers/{name}", get(peer))
        .route("/api/v1/peers/{name}/received", get(received))
        .route("/api/v1/peers/{name}/advertised", get(advertised))
        .route("/api/v1/routes", get(routes))
        .route("/api/v1/fib", get(fib))
        .route("/api/v1/bfd", get(bfd))
        .route("/api/v1/health", get(health))
        .route("/api/v1/doctor", get(doctor))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/drain", post(drain))
        .route("/api/v1/undrain", post(undrain))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ApiError {
            error: message.into(),
        }),
    )
        .into_response()
}

/// Alive: the RIB answers.
async fn healthz(State(s): State<AppState>) -> Response {
    match s.ask(RibRequest::Summary).await {
        Some(_) => "ok\n".into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the RIB does not answer"),
    }
}

/// Ready: configuration loaded and listeners bound.
async fn readyz(State(s): State<AppState>) -> Response {
    if s.board.ready.load(Relaxed) {
        "ready\n".into_response()
    } else {
        error(StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

pub async fn peer_list(s: &AppState) -> Vec<PeerView> {
    let counts: HashMap<String, PrefixCounts> = s.ask(RibRequest::Counts).await.unwrap_or_default();
    s.board
        .peers()
        .into_iter()
        .map(|p| p.view(counts.get(&p.name).cloned().unwrap_or_default()))
        .collect()
}

async fn peers(State(s): State<AppState>) -> Response {
    axum::Json(peer_list(&s).await).into_response()
}

/// Everything about one peer, with its counts per family.
async fn peer(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    let Some(view) = peer_list(&s).await.into_iter().find(|p| p.name == name) else {
        return error(StatusCode::NOT_FOUND, format!("no peer named {name:?}"));
    };
    let families = s
        .ask(|tx| RibRequest::FamilyCounts(name, tx))
        .await
        .flatten()
        .unwrap_or_default();
    axum::Json(PeerDetail { peer: view, families }).into_response()
}

#[derive(Deserialize)]
struct RouteQuery {
    prefix: Option<String>,
    peer: Option<String>,
    family: Option<String>,
    #[serde(default)]
    best: bool,
    #[serde(default)]
    filtered: bool,
}

impl RouteQuery {
    /// The filter it asks for: a prefix selects it and the prefixes inside
    /// it; a bare address, the most specific route that covers it.
    fn filter(self) -> Result<RouteFilter, &'static str> {
        let mut filter = RouteFilter {
            peer: self.peer,
            best_only: self.best,
            filtered_only: self.filtered,
            ..RouteFilter::default()
        };
        if let Some(p) = self.prefix.as_deref() {
            if let Ok(net) = p.parse::<IpNet>() {
                filter.prefix = Some(net);
            } else if let Ok(addr) = p.parse::<std::net::IpAddr>() {
                filter.longest_match = Some(addr);
            } else {
                return Err(
                    "prefix must be a prefix such as 10.96.0.0/16, or an address for the route that covers it",
                );
            }
        }
        if let Some(f) = self.family.as_deref() {
            filter.family = Some(Family::from_name(f).ok_or("family must be ipv4-unicast or ipv6-unicast")?);
        }
        Ok(filter)
    }
}

async fn routes(State(s): State<AppState>, Query(q): Query<RouteQuery>) -> Response {
    let filter = match q.filter() {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(mut routes) = s.ask(|tx| RibRequest::Routes(filter, tx)).await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the RIB does not answer");
    };
    if routes.len() <= KERNEL_STATE_MAX {
        s.kernel_states(&mut routes).await;
    }
    axum::Json::<Vec<RouteView>>(routes).into_response()
}

/// Answers with more routes than this leave out where each is in the
/// kernel (a full table would hold the FIB task up for too long).
const KERNEL_STATE_MAX: usize = 1000;

/// What a peer sent (Adj-RIB-In, before import policy), with what became
/// of each path and why; `?filtered=true` for only what was not accepted.
async fn received(s: State<AppState>, name: Path<String>, q: Query<RouteQuery>) -> Response {
    adj_rib(s, name, q, AdjSide::Received).await
}

/// What a peer was sent (Adj-RIB-Out), with the attributes sent.
async fn advertised(s: State<AppState>, name: Path<String>, q: Query<RouteQuery>) -> Response {
    adj_rib(s, name, q, AdjSide::Advertised).await
}

async fn adj_rib(
    State(s): State<AppState>,
    Path(peer): Path<String>,
    Query(q): Query<RouteQuery>,
    side: AdjSide,
) -> Response {
    let filter = match q.filter() {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let name = peer.clone();
    match s
        .ask(|reply| RibRequest::AdjRib {
            peer,
            side,
            filter,
            reply,
        })
        .await
    {
        Some(Some(routes)) => axum::Json::<Vec<AdjRouteView>>(routes).into_response(),
        Some(None) => error(StatusCode::NOT_FOUND, format!("no peer named {name:?}")),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the RIB does not answer"),
    }
}

async fn summary(State(s): State<AppState>) -> Response {
    let Some(rib) = s.ask(RibRequest::Summary).await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the RIB does not answer");
    };
    let peers = s.board.peers();
    let established = peers
        .iter()
        .filter(|p| p.snapshot().0.state == SessionState::Established)
        .count();
    axum::Json(Summary {
        router_id: s.router_id.to_string(),
        asn: s.asn,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime: s.started.elapsed().as_secs(),
        peers: peers.len(),
        peers_established: established,
        rejected_connections: s.board.rejected_connections.load(Relaxed),
        rib,
        reloads: s.board.reloads(),
    })
    .into_response()
}

/// What is installed in the kernel: counts, repairs, unresolved next hops.
async fn fib(State(s): State<AppState>) -> Response {
    match s.fib_status() {
        Some(f) => axum::Json(f).into_response(),
        None => error(StatusCode::NOT_FOUND, "kernel route programming is off"),
    }
}

/// Checks of this node's routing, each PASS, WARN or FAIL with its
/// evidence and fix (`tern doctor`).
async fn doctor(State(s): State<AppState>) -> Response {
    let rib = s.ask(RibRequest::Summary).await;
    let mut facts = crate::doctor::Facts {
        peers: peer_list(&s).await,
        bfd: s.bfd_status().await,
        fib: s.fib_status(),
        rib: rib.clone(),
        routes: Vec::new(),
        sysctls: crate::doctor::read_sysctls(),
        in_use: Vec::new(),
        health: s.health_status(),
    };
    let size = rib.as_ref().map_or(0, |r| r.ipv4_prefixes + r.ipv6_prefixes);
    if size <= DOCTOR_ROUTES_MAX
        && let Some(mut routes) = s.ask(|tx| RibRequest::Routes(RouteFilter::default(), tx)).await
    {
        s.kernel_states(&mut routes).await;
        let lookups = crate::doctor::lookups(&routes);
        let found = s.lookup(lookups.iter().map(|l| l.address).collect()).await;
        facts.in_use = lookups.into_iter().zip(found).collect();
        facts.routes = routes;
    }
    let mut checks = crate::doctor::diagnose(&facts);
    if size > DOCTOR_ROUTES_MAX {
        checks.push(crate::status::Check {
            name: "routes in the kernel".into(),
            status: crate::status::CheckStatus::Warn,
            evidence: format!("{size} prefixes: too many to check one by one here"),
            fix: Some("Check single prefixes with `tern show routes PREFIX`.".into()),
        });
    }
    axum::Json(checks).into_response()
}

/// Up to this many Loc-RIB prefixes, `tern doctor` checks each one's
/// place in the kernel.
const DOCTOR_ROUTES_MAX: usize = 5000;

/// BFD sessions: state, timers in force, diagnostics, packet counters.
async fn bfd(State(s): State<AppState>) -> Response {
    match s.bfd_status().await {
        Some(b) => axum::Json(b).into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the BFD thread does not answer"),
    }
}

/// Health checks: each one's verdict, last probe, and what it gates.
async fn health(State(s): State<AppState>) -> Response {
    axum::Json(s.health_status()).into_response()
}

impl AppState {
    fn health_status(&self) -> Vec<crate::health::HealthView> {
        self.health
            .as_ref()
            .map(|h| h.borrow().clone())
            .unwrap_or_default()
    }

    /// Fills in where each route is in the kernel, or why it is not: the
    /// RIB says what it selected, the FIB what it made of it.
    async fn kernel_states(&self, routes: &mut [RouteView]) {
        let Some(fib) = &self.fib_control else { return };
        let prefixes: Vec<IpNet> = routes.iter().map(|r| r.prefix).collect();
        let Some(changes) = self.ask(|tx| RibRequest::Selections(prefixes, tx)).await else {
            return;
        };
        let (tx, rx) = oneshot::channel();
        if fib.send(FibControl::Explain(changes, tx)).is_err() {
            return;
        }
        if let Ok(Ok(states)) = tokio::time::timeout(Duration::from_secs(5), rx).await {
            for (r, k) in routes.iter_mut().zip(states) {
                r.kernel = Some(k);
            }
        }
    }

    /// What the kernel uses for each address (`ip route get`); empty when
    /// kernel programming is off or the FIB does not answer.
    async fn lookup(&self, addresses: Vec<std::net::IpAddr>) -> Vec<Option<crate::status::RouteInUse>> {
        let Some(fib) = &self.fib_control else {
            return Vec::new();
        };
        let (tx, rx) = oneshot::channel();
        if fib.send(FibControl::Lookup(addresses, tx)).is_err() {
            return Vec::new();
        }
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    fn fib_status(&self) -> Option<FibStatus> {
        self.fib.as_ref().map(|f| f.borrow().clone())
    }

    async fn bfd_status(&self) -> Option<BfdStatus> {
        let (tx, rx) = oneshot::channel();
        self.bfd.as_ref()?.send(BfdControl::Status(tx)).ok()?;
        tokio::time::timeout(Duration::from_secs(2), rx).await.ok()?.ok()
    }
}

/// Prometheus text format 0.0.4, or OpenMetrics when the scraper asks for
/// it (`Accept: application/openmetrics-text`).
async fn metrics_text(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let peers = peer_list(&s).await;
    let rib = s.ask(RibRequest::Summary).await;
    let fib = s.fib_status();
    let bfd = s.bfd_status().await;
    let process = metrics::Process {
        rejected: s.board.rejected_connections.load(Relaxed),
        uptime: s.started.elapsed().as_secs(),
        reloads: s.board.reloads(),
    };
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let health = s.health_status();
    match metrics::render(&peers, rib.as_ref(), fib.as_ref(), bfd.as_ref(), &health, process) {
        Ok(text) if openmetrics => ([(header::CONTENT_TYPE, metrics::OPENMETRICS)], text).into_response(),
        Ok(text) => (
            [(header::CONTENT_TYPE, metrics::TEXT_004)],
            metrics::to_text_004(&text),
        )
            .into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics"),
    }
}

/// Graceful drain (RFC 8326): every route goes out again with the
/// GRACEFUL_SHUTDOWN community and the lowest preference, until undrained;
/// a restart keeps it.
async fn drain(State(s): State<AppState>) -> Response {
    set_drain(&s, true).await
}

async fn undrain(State(s): State<AppState>) -> Response {
    set_drain(&s, false).await
}

async fn set_drain(s: &AppState, on: bool) -> Response {
    let Some(tx) = &s.drain else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "draining is not available");
    };
    let (reply, rx) = oneshot::channel();
    if tx.send((on, reply)).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping");
    }
    match rx.await {
        Ok(drained) => axum::Json(Drained { drained }).into_response(),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "no answer"),
    }
}

async fn reload(State(s): State<AppState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if s.reload.send(tx).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping");
    }
    match rx.await {
        Ok(Ok(changes)) => axum::Json(Reloaded {
            reloaded: true,
            changes,
        })
        .into_response(),
        Ok(Err(errors)) => error(StatusCode::UNPROCESSABLE_ENTITY, errors),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "no answer"),
    }
}
