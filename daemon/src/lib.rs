//! The tern daemon: BGP sessions, the RIB, kernel routes, and the status
//! API, as tokio tasks around sans-I/O protocol cores.
//!
//! # Tasks and channels
//!
//! Every task, thread and channel of a running daemon, with its count and
//! its bound. `[n]` is a bounded queue of n messages (a full one makes the
//! sender wait), `[∞]` unbounded, `1:1` a oneshot reply. Tests in
//! `tests/architecture.rs` keep the module structure below honest; this
//! drawing is kept true by hand.
//!
//! ```text
//!                       SIGHUP, SIGTERM, SIGINT
//!                                 │
//!  listener ×1/address ──stream[64]──▶ SUPERVISOR ×1 (daemon.rs) ◀──Reload/DrainRequest[4]+1:1── API
//!                                 │  config, peer list, reloads, restart window
//!              ┌──────────────────┼────────────────────┬──────────────────────┐
//!   PeerEvent::Incoming[64]  PeerControl[∞]   RibRequest[64]+1:1   FibControl[∞]: Stop+1:1, Statics
//!              ▼                  ▼                    │                      │
//!  PEER TASK ×1/peer (session/task.rs)                 │                      │
//!    Peer FSM, codec contexts; publishes its           │                      │
//!    status on change                                  │                      │
//!    ◀──Dialled── dial ×0..1/peer                      │                      │
//!    ◀──Frame[64]── reader ×1/connection (framing;     │                      │
//!                   a full queue stops reading)        │                      │
//!    ──WriterMsg[∞]──▶ writer ×1/connection            │                      │
//!    │                  └─RibEvent::Written[256]─┐     │                      │
//!    └──RibEvent[256]: up, down, UPDATE, refresh─┤     │                      │
//!                                                ▼     ▼                      │
//!  RIB TASK ×1 (rib/task.rs): Rib; serves RibRequest before RibEvent          │
//!    ──RibToPeer[∞]──▶ each peer task (≤ 1 batch in flight per peer)          │
//!    ──FibInput[∞]: Loc-RIB changes, Converged──┐                             │
//!                                               ▼                             ▼
//!  FIB TASK ×0..1 (fib/task.rs): Fib model; takes Loc-RIB changes a batch per
//!    RIB event; reads kernel events from its Monitor
//!    socket (what tern's request socket changed, and additions of tern's
//!    protocol, filtered out in the kernel); publishes FibStatus on a watch
//!    channel when it changes
//!    ──Netlink::start_write: ≤ 2 writes of ≤ 64k keys in flight, each
//!      worked out 1k keys at a time, encoded here and queued a batch at a
//!      time (the task takes the next changes meanwhile), results 1:1, in
//!      order──▶
//!  NETLINK THREAD ×1 (OS thread; the NETLINK_ROUTE request socket)
//!
//!  watchdog ×0..1 (systemd) ──RibRequest::Ping[64]+1:1──▶ RIB task
//!
//!  BFD THREAD ×1 (bfd/task.rs; OS thread, its own current-thread runtime,
//!  so RIB and FIB work never delay a packet): Sessions (sans I/O);
//!    ◀──BfdControl[∞]: Configure, Status+1:1, Stop+1:1── supervisor, API
//!    ◀──Datagram[1024]── receiver ×0..4 (port 3784/4784 × IPv4/IPv6)
//!    one sending socket per session
//!    ──Change[∞]──▶ supervisor ──PeerControl::BfdDown──▶ that peer's task
//!
//!  ROUTER DISCOVERY ×1 (unnumbered/task.rs): Discovery (sans I/O), one raw
//!  ICMPv6 socket: router advertisements sent and heard on the links of
//!  `interface` peers
//!    ◀──DiscoveryControl[∞]: Configure, Heard (a connection from a link)── supervisor
//!    ──Neighbour[∞]──▶ supervisor ──PeerControl::Reconfigure──▶ that peer's task;
//!                                 BfdControl::Configure──▶ BFD thread
//!
//!  HEALTH ×1 (health/task.rs): a coordinating task keeps the verdicts
//!    ◀──Outcome[64]── probe task ×1/host check; probe thread ×1/check in
//!                     another netns (own current-thread runtime, setns)
//!    ◀──Vec<HealthCheck>[∞]── supervisor (reload)
//!    ──RibRequest::HealthGates[64]──▶ RIB task; verdicts on a watch ──▶ API
//!
//!  API THREAD ×1 (api.rs; its own current-thread runtime, stops with the
//!  supervisor): TCP ×1 and Unix socket ×1, axum, a task per connection
//!    reads the StatusBoard (RwLock'd map; per-peer Mutex'd snapshot; atomics)
//!    asks the RIB: RibRequest[64] + 1:1 reply, 5 s timeout
//!    reads FibStatus from the FIB's watch channel; asks the FIB where
//!    routes are in the kernel: FibControl::Explain[∞] + 1:1
//!    sends ReloadRequest[4] and DrainRequest[4] + 1:1 to the supervisor
//! ```
//!
//! State has one owner each: the supervisor owns the configuration and the
//! peer list, each peer task its connections and session, the RIB task
//! every route, the FIB task the kernel's routes, the BFD thread its
//! sessions. What is shared: the
//! status board (written by peer tasks on state changes, read by the API),
//! and the FIB status behind a watch channel.
//!
//! # Rooms
//!
//! Data flows one way: socket → codec (`bgp-proto`) → [`session`] → [`rib`]
//! (import policy, best path) → export policy → peers and [`fib`]. Beside
//! the sessions, [`bfd`] watches the paths to peers and [`unnumbered`]
//! finds the routers of `interface` peers. Around it: [`config`]
//! (the file), [`setup`] (what the configuration makes of a
//! peer), [`health`] (probes that gate the node's VIPs), [`status`] (the typed model the [`api`], [`metrics`] and [`cli`]
//! share), [`doctor`] (checks over that model), [`clock`] (where tasks
//! meet time) and [`daemon`] (the supervisor). `docs/architecture.md` says where to go to change what.

pub mod api;
pub mod bfd;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod doctor;
pub mod fib;
pub mod health;
pub mod memory;
pub mod metrics;
pub mod prefix_map;
pub mod refusals;
pub mod rib;
pub mod session;
pub mod setup;
pub mod status;
pub mod unnumbered;
