//! Where the daemon's tasks meet the clock. The protocol cores (session
//! FSM, peer management, RIB, FIB model) never read it: their tasks pass
//! `Instant::now()` in and sleep until the deadline the core reports.

use std::time::Instant;

/// Sleeps until `deadline`, or forever when there is none (a `select!`
/// arm that never fires).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
