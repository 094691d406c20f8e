//! The tern daemon.

pub mod session;
