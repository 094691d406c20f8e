//! The monitoring pack (`deploy/monitoring/`) against the real thing:
//! `promtool` checks and unit-tests the alert rules, a real Prometheus
//! (Debian's) scrapes every tern of a lab, every query of the Grafana
//! dashboard runs on it over metrics tern really exports, and cutting a
//! session fires `TernSessionDown`.

use std::path::{Path, PathBuf};
use std::process::Command;

use interop_tests::{Daemon, Netns, Topology, timeout, unique_name, wait_for, wait_until};
use serde_json::Value;

const MONITOR_V6: &str = "fd00:101::99";
const PROMETHEUS: &str = "[::1]:9090";

fn pack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(pack())
        .output()
        .expect("promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// A query of Prometheus's HTTP API from inside the monitoring namespace
/// (Debian's Python: no HTTP client needed on the machine).
fn query(mon: &Netns, promql: &str) -> Result<Value, String> {
    let script = "import json, sys, urllib.parse, urllib.request
u = 'http://[::1]:9090/api/v1/query?' + urllib.parse.urlencode({'query': sys.argv[1]})
try:
    print(urllib.request.urlopen(u, timeout=5).read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode())
";
    let out = mon.exec(&["/usr/bin/python3", "-c", script, promql])?;
    let v: Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
    if v["status"] != "success" {
        return Err(format!("{promql}: {v}"));
    }
    Ok(v["data"]["result"].clone())
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    if !interop_tests::require_root() {
        return;
    }
    assert!(promtool(&["check", "rules", "tern-alerts.yaml"]).contains("SUCCESS: 14 rules found"));
    assert!(promtool(&["test", "rules", "tern-alerts.test.yaml"]).contains("SUCCESS"));
    promtool(&["check", "config", "prometheus.yaml"]);
}

#[test]
fn a_real_prometheus_scrapes_tern_runs_the_dashboard_and_fires_an_alert() {
    // The API on TCP for Prometheus, and a health check (report only) so
    // that the health panel has series.
    let api = "[[health-check]]\nname = \"api\"\nprobe = \"tcp\"\naddress = \"[::1]:9179\"\naction = \"report\"\n\n[api]\nlisten = \"[::]:9179\"\n";
    let Some(mut lab) = Topology::builder("monitoring")
        .tern_extra(1, api)
        .tern_extra(2, api)
        .start()
    else {
        return;
    };
    lab.wait_sessions();

    // A monitoring host on the nodes' segment, running Prometheus with the
    // pack's rules. The rules' `for:` is shortened here (the unit tests
    // above hold the real durations).
    let mon = Netns::new(&unique_name("mon"));
    lab.attach(&mon, "eth0");
    mon.add_addr("eth0", &format!("{MONITOR_V6}/64"));
    let dir = lab.work().subdir("prometheus");
    let rules = std::fs::read_to_string(pack().join("tern-alerts.yaml"))
        .expect("rules")
        .replace("for: 2m", "for: 5s")
        .replace("for: 1m", "for: 5s");
    std::fs::write(dir.join("tern-alerts.yaml"), rules).expect("rules");
    let targets: Vec<String> = (1..=2)
        .map(|x| format!("\"[{}]:9179\"", lab.node(x).id.v6()))
        .collect();
    std::fs::write(
        dir.join("prometheus.yaml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - tern-alerts.yaml\n\
             scrape_configs:\n  - job_name: tern\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ),
    )
    .expect("config");
    let mut cmd = mon.command("prometheus");
    cmd.arg(format!("--config.file={}", dir.join("prometheus.yaml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address={PROMETHEUS}"))
        .arg("--log.level=warn");
    let _prometheus = Daemon::spawn("prometheus", cmd, lab.work().path());

    // Both terns scraped, their series there.
    let up = wait_for(
        timeout(30),
        "Prometheus to scrape both terns",
        || query(&mon, "up{job=\"tern\"} == 1"),
        |r| r.as_ref().is_ok_and(|v| v.as_array().map_or(0, Vec::len) == 2),
    );
    println!("scraped: {up:?}");
    // rate() and increase() need a few samples of every series.
    let _ = wait_for(
        timeout(30),
        "a few scrapes of each tern",
        || query(&mon, "count_over_time(up{job=\"tern\"}[1m]) >= 3"),
        |r| r.as_ref().is_ok_and(|v| v.as_array().map_or(0, Vec::len) == 2),
    );
    let peers = query(&mon, "tern_peer_up").expect("tern_peer_up");
    assert!(peers.as_array().map_or(0, Vec::len) >= 4, "{peers}");

    // Every query of the dashboard is valid PromQL over metrics tern
    // exports (their names appear in its /metrics, samples or not).
    let exported = lab.node(1).tern.get_text("/metrics").expect("metrics");
    // With a health check's series among them, still what promtool
    // accepts.
    assert!(exported.contains("tern_health_check_up{"), "{exported}");
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    std::io::Write::write_all(&mut check.stdin.take().expect("stdin"), exported.as_bytes()).expect("write");
    let checked_metrics = check.wait_with_output().expect("promtool");
    assert!(
        checked_metrics.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked_metrics.stdout),
        String::from_utf8_lossy(&checked_metrics.stderr)
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(pack().join("grafana-dashboard.json")).expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr").replace("$instance", ".*");
            let result = query(&mon, &expr).unwrap_or_else(|e| panic!("panel {}: {e}", panel["title"]));
            for name in metric_names(&expr) {
                let base = name.trim_end_matches("_total");
                assert!(
                    exported.contains(&format!("# TYPE {name} "))
                        || exported.contains(&format!("# TYPE {base} ")),
                    "panel {}: tern exports no {name}",
                    panel["title"]
                );
            }
            let optional = expr.contains("tern_bfd_session"); // no BFD in this lab
            assert!(
                optional || result.as_array().is_some_and(|r| !r.is_empty()),
                "panel {}: {expr} has no data",
                panel["title"]
            );
            checked += 1;
        }
    }
    println!("{checked} dashboard queries run");

    // Cut node 2's session at the router: TernSessionDown fires for it.
    let router = lab.router(0);
    let node2 = lab.node(2).id.v6();
    router.frr().configure(&[
        &format!("router bgp {}", router.up.asn),
        &format!("neighbor {node2} shutdown"),
    ]);
    wait_until(timeout(60), "TernSessionDown firing for node 2", || {
        let firing = query(
            &mon,
            "ALERTS{alertname=\"TernSessionDown\", alertstate=\"firing\"}",
        )?;
        let hit = firing.as_array().into_iter().flatten().any(|a| {
            a["metric"]["instance"]
                .as_str()
                .is_some_and(|i| i.contains(&node2))
        });
        if hit { Ok(()) } else { Err(format!("{firing}")) }
    });
    // Node 1 is left alone.
    let firing = query(
        &mon,
        "ALERTS{alertname=\"TernSessionDown\", alertstate=\"firing\"}",
    )
    .expect("alerts");
    let node1 = lab.node(1).id.v6();
    assert!(
        !firing
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["metric"]["instance"]
                .as_str()
                .is_some_and(|i| i.contains(&node1))),
        "{firing}"
    );
}

/// The metric names an expression uses (`tern_...`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("tern_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}
