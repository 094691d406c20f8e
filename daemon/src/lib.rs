//! The tern daemon.

pub mod config;
pub mod session;
