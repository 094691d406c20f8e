//! Health-gated advertisement: checks of the node's own datapath (a TCP
//! connection, an HTTP(S) GET or a DNS query, from the host or from inside
//! a pod's network namespace) decide whether the node keeps attracting
//! traffic for its VIPs.
//!
//! - [`state`] is the sans-I/O verdict: results in, passing or failing
//!   out, damped by `rise` and `fall`.
//! - [`probe`] runs one probe; [`netns`] puts a check's thread in the pod
//!   namespace it names; [`dns`] is the one DNS exchange a probe needs.
//! - [`task`] runs every check and tells the RIB which gates are failing.
//!   The RIB then withdraws the gated paths (or sends them with
//!   GRACEFUL_SHUTDOWN) and prefers any other path itself, so the VIP's
//!   local route leaves the kernel with the advertisement.

pub mod dns;
mod netns;
mod probe;
mod state;
pub mod task;

use serde::{Deserialize, Serialize};

/// A check as the API and metrics show it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HealthView {
    pub name: String,
    /// The probe, e.g. `dns 169.254.25.10:53 kubernetes.default.svc.cluster.local`.
    pub probe: String,
    /// The namespace as configured (a path, or `pod-ip 10.244.1.5`).
    pub namespace: Option<String>,
    /// The namespace the last probe ran in.
    pub entered: Option<String>,
    /// `passing` or `failing`.
    pub state: String,
    /// What a failure does: `withdraw`, `graceful-shutdown` or `report`.
    pub action: String,
    /// What it gates: `every VIP`, or the prefix sets.
    pub gates: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub rise: u32,
    pub fall: u32,
    /// Probes in a row that go against the state (towards a change).
    pub streak: u32,
    /// Seconds since the state last changed (or since the check started).
    pub for_secs: u64,
    pub transitions: u64,
    pub probes_ok: u64,
    pub probes_failed: u64,
    /// The last probe's outcome, and when (Unix seconds).
    pub last_ok: Option<bool>,
    pub last_result: Option<String>,
    pub last_probe_at: Option<u64>,
}

impl HealthView {
    pub fn passing(&self) -> bool {
        self.state == "passing"
    }

    /// Whether a failure of this check changes what is advertised.
    pub fn gates_routes(&self) -> bool {
        self.action != "report"
    }

    #[cfg(test)]
    pub fn sample(name: &str, passing: bool) -> HealthView {
        HealthView {
            name: name.into(),
            probe: "dns 169.254.25.10:53 kubernetes.default.svc.cluster.local".into(),
            namespace: Some("pod-ip 10.224.1.10".into()),
            entered: Some("/run/netns/cni-1".into()),
            state: if passing { "passing" } else { "failing" }.into(),
            action: "withdraw".into(),
            gates: "every VIP".into(),
            interval_ms: 1000,
            timeout_ms: 500,
            rise: 3,
            fall: 3,
            streak: 0,
            for_secs: 42,
            transitions: u64::from(!passing),
            probes_ok: 10,
            probes_failed: if passing { 0 } else { 3 },
            last_ok: Some(passing),
            last_result: Some(if passing { "ok" } else { "no answer within 500 ms" }.into()),
            last_probe_at: Some(1_700_000_000),
        }
    }
}
