//! The tern daemon.

pub mod config;
pub mod rib;
pub mod session;
pub mod status;
