//! nftables in a namespace: rulesets loaded with `nft -f -` and named
//! counters read back as numbers. Everything lives in the namespace, so
//! it goes with it.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;
use crate::tcp;

/// The uplink's egress counters of [`service_ruleset`]: packets to the
/// IPv4 VIP and to the IPv6 VIP that left the node.
pub const UPLINK_COUNTERS: [&str; 2] = ["vip4", "vip6"];

/// Cilium's service translation for one LoadBalancer VIP pair, emulated
/// in a node namespace, and counters of what leaves through its uplink
/// `eth-up`:
///
/// - DNAT of `VIP:80` to the backend's `:BACKEND_PORT` in `prerouting`
///   (traffic from pods) and `output` (from the node itself), only for
///   packets whose destination is local to the node (`fib daddr type
///   local`), which is where Cilium's translation takes them. (An
///   unconditional DNAT in `prerouting` would rewrite the packet before
///   any route is looked up, and no route could make a difference.)
/// - table `netdev uplink`, counters `vip4` and `vip6` on the uplink's
///   egress hook: the packets to the VIPs that really leave the node,
///   after NAT.
pub fn service_ruleset(vip4: &str, vip6: &str, backend4: &str, backend6: &str, backend_port: u16) -> String {
    format!(
        r#"
table inet svc {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr {vip4} tcp dport 80 fib daddr type local dnat ip to {backend4}:{backend_port}
        ip6 daddr {vip6} tcp dport 80 fib daddr type local dnat ip6 to [{backend6}]:{backend_port}
    }}
    chain output {{
        type nat hook output priority -100; policy accept;
        ip daddr {vip4} tcp dport 80 fib daddr type local dnat ip to {backend4}:{backend_port}
        ip6 daddr {vip6} tcp dport 80 fib daddr type local dnat ip6 to [{backend6}]:{backend_port}
    }}
}}
table netdev uplink {{
    counter vip4 {{ }}
    counter vip6 {{ }}
    chain egress {{
        type filter hook egress device "eth-up" priority 0; policy accept;
        ip daddr {vip4} counter name "vip4"
        ip6 daddr {vip6} counter name "vip6"
    }}
}}
"#
    )
}

/// Connects from `client` to `vip` (port 80) and reads the answer, with
/// [`service_ruleset`]'s uplink counter `counter` of `node` reset before:
/// what the connection gave, and how many packets to the VIP left the
/// node's uplink meanwhile.
pub fn fetch_counted(
    client: &Netns,
    node: &Netns,
    vip: SocketAddr,
    counter: &str,
) -> (Result<String, String>, u64) {
    reset_counter(node, "netdev", "uplink", counter).unwrap_or_else(|e| panic!("{e}"));
    let result = tcp::fetch(client, vip, Duration::from_millis(1500));
    let packets = counter_value(node, counter);
    (result, packets)
}

#[track_caller]
fn counter_value(node: &Netns, name: &str) -> u64 {
    counter(node, "netdev", "uplink", name).unwrap_or_else(|e| panic!("{e}"))
}

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
