//! nftables in a namespace: rulesets loaded with `nft -f -` and named
//! counters read back as numbers. Everything lives in the namespace, so
//! it goes with it.

use serde_json::Value;

use crate::netns::Netns;

/// Loads `ruleset` (nft syntax) into `ns`, panicking with nft's message
/// and the ruleset if nft refuses it.
#[track_caller]
pub fn apply(ns: &Netns, ruleset: &str) {
    if let Err(e) = ns.exec_stdin(&["nft", "-f", "-"], ruleset) {
        panic!("{}: nft refused the ruleset: {e}", ns.name());
    }
}

/// Packets counted so far by the named counter `name` of table
/// `family table` (e.g. `"netdev"`, `"uplink"`).
pub fn counter(ns: &Netns, family: &str, table: &str, name: &str) -> Result<u64, String> {
    let out = ns.exec(&["nft", "-j", "list", "counter", family, table, name])?;
    let v: Value = serde_json::from_str(&out).map_err(|e| format!("nft -j: {e}: {out}"))?;
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|o| o["counter"]["packets"].as_u64())
        .ok_or_else(|| format!("no counter {family} {table} {name} in {out}"))
}

/// Sets the named counter back to zero.
pub fn reset_counter(ns: &Netns, family: &str, table: &str, name: &str) -> Result<(), String> {
    ns.exec(&["nft", "reset", "counter", family, table, name])
        .map(drop)
}

/// `nft list ruleset`, for a failing test's output.
pub fn ruleset(ns: &Netns) -> String {
    ns.exec(&["nft", "list", "ruleset"]).unwrap_or_else(|e| e)
}
