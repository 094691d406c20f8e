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
//!  signals: SIGHUP, SIGTERM, SIGINT ─────────┐
//!                                            ▼
//!  listener ×1 per listen ──(stream)[64]──▶ supervisor ×1 ◀──ReloadRequest[4]+1:1── API
//!  (accept loop)                             │  (daemon.rs: config, peer list, reloads,
//!                                            │   restart-window timer; stops everything)
//!        PeerEvent::Incoming[64] ◀───────────┤──PeerControl[∞]──┐   ──RibRequest[64]──┐
//!                         ┌──────────────────┴──────────────────┘                     │
//!                         ▼                                                            ▼
//!  dial ×0..1 per peer ──Dialled──▶ peer task ×1 per peer ──RibEvent[256]──▶   RIB task ×1
//!  reader ×1 per conn ──Frame[64]──▶ (session/task.rs: Peer   (up, down,       (rib/task.rs:
//!   (framing only; a full               FSM, codec contexts,   UPDATE, refresh)  Rib; serves
//!    queue stops reading)               publishes status       ◀──RibToPeer[∞]── RibRequest
//!  writer ×1 per conn ◀──WriterMsg[∞]── on change)             (≤ 1 batch in     first: API
//!   └──RibEvent::Written[256] (after a RIB batch is on the wire) ──────▶ flight)   queries,
//!                                                                                reload, ping)
//!  watchdog ×0..1 (systemd) ──RibRequest::Ping[64]+1:1──▶ RIB task                 │
//!                                                                     FibInput[∞] │ Loc-RIB
//!  API ×1 TCP + ×1 Unix socket (axum; a task per connection)                       ▼ changes
//!   ├─ reads the StatusBoard (RwLock'd map; per-peer Mutex'd snapshot, atomics)  FIB task ×0..1
//!   ├─ asks the RIB: RibRequest[64] + 1:1 reply, 5 s timeout                    (fib/task.rs:
//!   └─ reads FibStatus from a watch channel ◀──published on change──────────── Fib model)
//!                                                                                 │  ▲
//!  supervisor ──FibControl::Stop[∞]+1:1──▶ FIB task       Netlink::apply jobs[∞] ▼  │ results 1:1
//!                                                          netlink thread ×1 (OS thread, one
//!  kernel ──rtnetlink groups──▶ Monitor (a socket read     NETLINK_ROUTE socket, ≤ 2 batches
//!                               inside the FIB task)        of ~256 KiB queued)
//! ```
//!
//! State has one owner each: the supervisor owns the configuration and the
//! peer list, each peer task its connections and session, the RIB task
//! every route, the FIB task the kernel's routes. What is shared: the
//! status board (written by peer tasks on state changes, read by the API),
//! and the FIB status behind a watch channel.
//!
//! # Rooms
//!
//! Data flows one way: socket → codec (`bgp-proto`) → [`session`] → [`rib`]
//! (import policy, best path) → export policy → peers and [`fib`]. Around
//! it: [`config`] (the file), [`setup`] (what the configuration makes of a
//! peer), [`status`] (the typed model the [`api`], [`metrics`] and [`cli`]
//! share), [`clock`] (where tasks meet time) and [`daemon`] (the
//! supervisor). `docs/architecture.md` says where to go to change what.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod fib;
pub mod metrics;
pub mod rib;
pub mod session;
pub mod setup;
pub mod status;
