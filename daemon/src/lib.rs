//! The tern daemon.

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
