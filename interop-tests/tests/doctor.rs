//! `tern doctor` in a lab: a healthy node is all PASS; then, one at a
//! time, things are broken on purpose, and doctor names each as FAIL or
//! WARN with the evidence, and is all PASS again once it is repaired.

use interop_tests::{Node, Topology, tern_bin, timeout, wait_for};
use serde_json::Value;

/// `tern doctor --json` on a node: the checks, and whether it exited 0.
fn doctor(n: &Node) -> (Vec<Value>, bool) {
    let out = std::process::Command::new(tern_bin())
        .args(["doctor", "--json", "--api"])
        .arg(n.tern.socket())
        .output()
        .expect("tern doctor");
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tern doctor --json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (checks, out.status.success())
}

fn not_pass(checks: &[Value]) -> Vec<&Value> {
    checks.iter().filter(|c| c["status"] != "PASS").collect()
}

/// Waits until doctor reports `name` with `status` and evidence holding
/// `evidence`; returns that check.
#[track_caller]
fn wait_check(n: &Node, name: &str, status: &str, evidence: &str) -> Value {
    let (checks, _) = wait_for(
        timeout(20),
        &format!("doctor to say {status} {name}"),
        || doctor(n),
        |(checks, _)| {
            checks.iter().any(|c| {
                c["name"] == name
                    && c["status"] == status
                    && c["evidence"].as_str().is_some_and(|e| e.contains(evidence))
            })
        },
    );
    checks.into_iter().find(|c| c["name"] == name).expect("the check")
}

#[track_caller]
fn wait_all_pass(n: &Node) {
    wait_for(
        timeout(20),
        "doctor to be all PASS",
        || doctor(n),
        |(checks, ok)| *ok && not_pass(checks).is_empty(),
    );
}

#[test]
fn doctor_names_what_is_broken_and_passes_a_healthy_node() {
    let Some(lab) = Topology::builder("doctor").vips().start() else {
        return;
    };
    lab.wait_converged();
    let n1 = lab.node(1);
    let (checks, ok) = doctor(n1);
    assert!(ok && not_pass(&checks).is_empty(), "{checks:#?}");
    let names: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    for name in [
        "session cilium",
        "kernel writes",
        "routes in the kernel",
        "IPv4 forwarding",
        "IPv6 forwarding",
    ] {
        assert!(names.contains(&name), "no {name} in {names:?}");
    }
    assert!(
        names.iter().filter(|n| n.starts_with("session ")).count() >= 2,
        "the upstream session too: {names:?}"
    );

    // Forwarding off.
    n1.ns.sysctl("net.ipv4.ip_forward", "0");
    let c = wait_check(n1, "IPv4 forwarding", "FAIL", "net/ipv4/ip_forward = 0");
    assert!(c["fix"].is_string(), "{c}");
    assert!(!doctor(n1).1, "doctor exits 1 on a FAIL");
    n1.ns.sysctl("net.ipv4.ip_forward", "1");
    wait_all_pass(n1);

    // The upstream session goes: FAIL with its last error.
    let router = lab.router(0);
    router.frr().configure(&[
        &format!("router bgp {}", router.up.asn),
        &format!("neighbor {} shutdown", n1.id.v6()),
    ]);
    let session = wait_for(
        timeout(30),
        "doctor to report the upstream session down",
        || doctor(n1).0,
        |checks| {
            checks.iter().any(|c| {
                c["status"] == "FAIL"
                    && c["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("session ") && n != "session cilium")
            })
        },
    );
    println!("{session:#?}");
    router.frr().configure(&[
        &format!("router bgp {}", router.up.asn),
        &format!("no neighbor {} shutdown", n1.id.v6()),
    ]);
    wait_all_pass(n1);

    // Another daemon takes one of the routes tern means to install (same
    // prefix, table and metric): tern leaves it alone, doctor says so.
    let [remote4, _] = lab.node(2).id.pod_cidrs();
    n1.ns.ip(&[
        "route",
        "replace",
        &remote4,
        "via",
        "10.101.0.254",
        "proto",
        "static",
        "metric",
        "512",
    ]);
    wait_check(n1, "routes in the kernel", "FAIL", &remote4);
    // Gone again, the route is tern's at once.
    n1.ns
        .ip(&["route", "del", &remote4, "proto", "static", "metric", "512"]);
    wait_all_pass(n1);

    // Another protocol's more specific route takes part of a learned
    // prefix's traffic.
    let half = remote4.replace(".0/24", ".0/25");
    n1.ns
        .ip(&["route", "add", &half, "via", "10.101.0.254", "proto", "static"]);
    wait_check(n1, "learned routes in use", "WARN", &half);
    n1.ns.ip(&["route", "del", &half, "proto", "static"]);
    wait_all_pass(n1);

    // Another routing daemon sends the node's own pod CIDR back to the
    // router (what bird2 does with routes FRR echoes).
    let [own4, _] = n1.id.pod_cidrs();
    n1.ns
        .ip(&["route", "add", &own4, "via", "10.101.0.254", "proto", "bird"]);
    wait_check(n1, "own prefixes", "FAIL", "protocol 12");
    n1.ns.ip(&["route", "del", &own4, "proto", "bird"]);
    wait_all_pass(n1);

    // A policy rule consulted before the local table sends the VIP away.
    let [vip4, _] = n1.id.vips();
    let vip = vip4.trim_end_matches("/32").to_owned();
    for cmd in [
        vec!["rule", "add", "pref", "100", "table", "local"],
        vec!["rule", "del", "pref", "0", "table", "local"],
        vec!["route", "add", "unreachable", &vip, "table", "100"],
        vec!["rule", "add", "pref", "50", "to", &vip, "table", "100"],
    ] {
        n1.ns.ip(&cmd);
    }
    wait_check(n1, "VIP routes in use", "FAIL", &vip);
    for cmd in [
        vec!["rule", "del", "pref", "50"],
        vec!["rule", "add", "pref", "0", "table", "local"],
        vec!["rule", "del", "pref", "100"],
    ] {
        n1.ns.ip(&cmd);
    }
    wait_all_pass(n1);

    // Someone deletes one of tern's routes: it is put back, and doctor
    // warns of the drift for an hour.
    n1.ns.ip(&["route", "del", &remote4, "proto", "186"]);
    wait_check(n1, "drift", "WARN", "put back");
    wait_check(n1, "routes in the kernel", "PASS", "every route");
}
