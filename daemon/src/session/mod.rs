//! BGP sessions: capability negotiation, the per-connection state machine
//! and the per-peer connection management, all sans I/O, plus the tokio
//! task that drives them over TCP.

pub mod fsm;
pub mod negotiate;
pub mod peer;
pub mod socket;
pub mod task;
