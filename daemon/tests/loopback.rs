//! tern instances in one process, over real TCP on loopback addresses:
//! route exchange in both families, reloads, and refusal of unknown
//! sources. Each test uses its own 127.0.x.0/24 addresses, so they run in
//! parallel. The clock-dependent cases (hold timer expiry, collisions,
//! graceful restart, deferral) run in virtual time: `virtual_time.rs`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tern::cli::Endpoint;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tern-loopback-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon running on its own runtime, with its config and API socket.
struct Daemon {
    config: PathBuf,
    api: Endpoint,
    _runtime: tokio::runtime::Runtime,
}

impl Daemon {
    fn start(dir: &Path, name: &str, toml: &str) -> Daemon {
        let config = dir.join(format!("{name}.toml"));
        let state = dir.join(name);
        let socket = state.join("api.sock");
        let toml = format!(
            "state-dir = \"{}\"\n{toml}\n[api]\nsocket = \"{}\"\n[fib]\nenabled = false\n",
            state.display(),
            socket.display()
        );
        std::fs::write(&config, toml).expect("config");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let path = config.clone();
        runtime.spawn(async move {
            if let Err(e) = tern::daemon::run(&path).await {
                panic!("daemon failed: {e}");
            }
        });
        let d = Daemon {
            config,
            api: Endpoint::Unix(socket),
            _runtime: runtime,
        };
        wait_until("the API to answer", Duration::from_secs(10), || {
            d.api.get_json("/readyz").is_ok() || d.api.request("GET", "/readyz").is_ok_and(|(s, _)| s == 200)
        });
        d
    }

    fn peers(&self) -> Value {
        self.api.get_json("/api/v1/peers").unwrap_or(Value::Null)
    }

    fn peer(&self, name: &str) -> Value {
        self.peers()
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn routes(&self) -> Vec<(String, String, String)> {
        let v = self
            .api
            .get_json("/api/v1/routes?best=true")
            .unwrap_or(Value::Null);
        let mut out = Vec::new();
        for r in v.as_array().into_iter().flatten() {
            for p in r["paths"].as_array().into_iter().flatten() {
                out.push((
                    r["prefix"].as_str().unwrap_or("").to_owned(),
                    p["next_hop"].as_str().unwrap_or("").to_owned(),
                    p["as_path"].as_str().unwrap_or("").to_owned(),
                ));
            }
        }
        out.sort();
        out
    }

    fn reload(&self, toml_edit: impl FnOnce(String) -> String) -> (u16, String) {
        let text = std::fs::read_to_string(&self.config).expect("config");
        std::fs::write(&self.config, toml_edit(text)).expect("config");
        self.api.request("POST", "/api/v1/reload").expect("reload")
    }
}

/// Two daemons that peer with each other over loopback: A on 127.0.NET.1
/// (AS 65001, router ID 10.0.NET.1), B on 127.0.NET.2 (AS 65002). `*_top`
/// is TOML before the peer (originate, policies, `[drain]`...), `*_peer`
/// goes into the peer.
fn pair(dir: &Path, net: u8, a_top: &str, a_peer: &str, b_top: &str, b_peer: &str) -> (Daemon, Daemon) {
    let config = |me: u8, other: u8, name: &str, top: &str, peer: &str| {
        format!(
            "router-id = \"10.0.{net}.{me}\"\nasn = 6500{me}\nlisten = [\"127.0.{net}.{me}:1179\"]\n{top}\n\
             [[peer]]\nname = \"{name}\"\naddress = \"127.0.{net}.{other}\"\nport = 1179\n\
             local-address = \"127.0.{net}.{me}\"\nremote-asn = 6500{other}\nrole = \"upstream\"\n\
             connect-retry = 1\n{peer}\n"
        )
    };
    let a = Daemon::start(dir, "a", &config(1, 2, "b", a_top, a_peer));
    let b = Daemon::start(dir, "b", &config(2, 1, "a", b_top, b_peer));
    (a, b)
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn established(d: &Daemon, peer: &str) -> bool {
    d.peer(peer)["state"] == "established"
}

#[test]
fn two_instances_exchange_ipv4_and_ipv6_routes() {
    let dir = TempDir::new("exchange");
    let (a, b) = pair(
        &dir.0,
        1,
        r#"originate = ["10.1.1.0/24", "fd00:1::/64", "10.1.2.0/24"]"#,
        "accept-local-next-hop = true",
        r#"originate = ["10.2.1.0/24", "fd00:2::/64"]"#,
        "accept-local-next-hop = true",
    );
    wait_until("both sessions established", Duration::from_secs(10), || {
        established(&a, "b") && established(&b, "a")
    });
    let neg = &a.peer("b")["negotiated"];
    assert_eq!(neg["peer_asn"], 65002);
    assert_eq!(
        neg["families"],
        serde_json::json!(["ipv4-unicast", "ipv6-unicast"])
    );

    let want_at_b = vec![
        (
            "10.1.1.0/24".to_owned(),
            "127.0.1.1".to_owned(),
            "65001".to_owned(),
        ),
        (
            "10.1.2.0/24".to_owned(),
            "127.0.1.1".to_owned(),
            "65001".to_owned(),
        ),
        (
            "fd00:1::/64".to_owned(),
            "::ffff:127.0.1.1".to_owned(),
            "65001".to_owned(),
        ),
    ];
    let at_b = |d: &Daemon| {
        d.routes()
            .into_iter()
            .filter(|r| r.2 == "65001")
            .collect::<Vec<_>>()
    };
    wait_until("A's routes at B", Duration::from_secs(10), || {
        at_b(&b) == want_at_b
    });
    let at_a = |d: &Daemon| {
        d.routes()
            .into_iter()
            .filter(|r| r.2 == "65002")
            .map(|r| r.0)
            .collect::<Vec<_>>()
    };
    wait_until("B's routes at A", Duration::from_secs(10), || {
        at_a(&a) == ["10.2.1.0/24", "fd00:2::/64"]
    });
    assert_eq!(b.peer("a")["prefixes"]["accepted"], 3);

    // A withdraws a prefix by reload; the session stays up.
    let (status, body) = a.reload(|t| t.replace(", \"10.1.2.0/24\"", ""));
    assert_eq!(status, 200, "{body}");
    wait_until("the withdrawal at B", Duration::from_secs(10), || {
        at_b(&b).len() == 2
    });
    assert_eq!(b.peer("a")["established_transitions"], 1);

    // A broken file is reported with its location and changes nothing.
    let (status, body) = a.reload(|t| t.replace("remote-asn = 65002", "remote-asn = 65002\nhold-time = 2"));
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("a.toml:") && body.contains("hold-time must be 0 or at least 3 seconds"),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(established(&a, "b"));
    assert_eq!(at_b(&b).len(), 2);
    assert_eq!(b.peer("a")["established_transitions"], 1);
    let reloads = &a.api.get_json("/api/v1/summary").expect("summary")["reloads"];
    assert_eq!(
        (&reloads["succeeded"], &reloads["failed"], &reloads["last_ok"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(false)
        ),
        "{reloads}"
    );

    // The refused hold time is fixed: a session setting changed, so the
    // session restarts, and the peer's counters go on from where they were.
    let before = a.peer("b");
    let (status, body) = a.reload(|t| t.replace("hold-time = 2", "hold-time = 30"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("restarted b"), "{body}");
    wait_until("the session again", Duration::from_secs(10), || {
        established(&a, "b") && a.peer("b")["established_transitions"] == 2
    });
    let after = a.peer("b");
    for counter in ["messages_received", "messages_sent", "updates_received"] {
        assert!(
            after[counter].as_u64() >= before[counter].as_u64(),
            "{counter}: {} before, {} after",
            before[counter],
            after[counter]
        );
    }
}

/// A connection from an address that is no peer is closed without a word
/// and counted.
#[test]
fn unknown_sources_are_refused_and_counted() {
    let dir = TempDir::new("refuse");
    let d = Daemon::start(
        &dir.0,
        "t",
        r#"router-id = "10.0.3.1"
asn = 65001
listen = ["127.0.3.1:1179"]
[[peer]]
name = "configured"
address = "127.0.3.2"
port = 1179
local-address = "127.0.3.1"
remote-asn = 65002
connect-retry = 30
"#,
    );
    let stranger =
        std::net::TcpStream::connect_timeout(&"127.0.3.1:1179".parse().unwrap(), Duration::from_secs(2));
    if let Ok(mut c) = stranger {
        c.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        let mut b = [0u8; 1];
        assert_eq!(
            c.read(&mut b).unwrap_or(0),
            0,
            "the connection is closed without a word"
        );
    }
    wait_until("the refusal counted", Duration::from_secs(5), || {
        d.api
            .get_json("/api/v1/summary")
            .is_ok_and(|s| s["rejected_connections"] == 1)
    });
}

/// `tern show` against a running daemon's socket: the text it prints.
fn show(d: &Daemon, args: &[&str]) -> String {
    let Endpoint::Unix(socket) = &d.api else {
        panic!("the daemons here listen on a socket")
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("show")
        .args(args)
        .arg("--api")
        .arg(socket)
        .output()
        .expect("run tern show");
    assert!(
        out.status.success(),
        "tern show {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a peer sent, what became of it and why; what it was sent; the
/// route that covers an address; everything about one peer. API and CLI.
#[test]
fn received_advertised_and_longest_match_views() {
    let dir = TempDir::new("views");
    let (a, b) = pair(
        &dir.0,
        4,
        r#"originate = ["10.4.0.0/16", "10.4.1.0/24", "10.4.9.0/24"]"#,
        "",
        r#"[[prefix-set]]
name = "not-wanted"
prefixes = ["10.4.9.0/24"]
[[policy]]
name = "from-a"
[[policy.statement]]
name = "drop-9"
match.prefix-set = "not-wanted"
action = "reject"
[[policy.statement]]
name = "prefer"
set.local-pref = 200
action = "accept""#,
        "import = [\"from-a\"]\naccept-local-next-hop = true",
    );
    wait_until("the session", Duration::from_secs(10), || {
        established(&a, "b") && established(&b, "a")
    });
    wait_until("A's routes at B", Duration::from_secs(10), || {
        b.peer("a")["prefixes"]["received"] == 3
    });

    // B's Adj-RIB-In: the filtered route is there, with its statement.
    let received = b.api.get_json("/api/v1/peers/a/received").expect("received");
    let received = received.as_array().expect("a list");
    assert_eq!(received.len(), 3, "{received:?}");
    let nine = received
        .iter()
        .find(|r| r["prefix"] == "10.4.9.0/24")
        .expect("10.4.9.0/24");
    assert_eq!(nine["status"], "filtered");
    assert_eq!(nine["reason"], "rejected by import policy from-a/drop-9");
    let one = received
        .iter()
        .find(|r| r["prefix"] == "10.4.1.0/24")
        .expect("10.4.1.0/24");
    assert_eq!(one["status"], "accepted");
    assert_eq!(one["modified_by"], serde_json::json!(["from-a/prefer"]));
    assert_eq!(one["as_path"], "65001");
    let filtered = b
        .api
        .get_json("/api/v1/peers/a/received?filtered=true")
        .expect("filtered");
    assert_eq!(filtered.as_array().map(Vec::len), Some(1));
    let text = show(&b, &["received", "a", "--filtered"]);
    assert!(
        text.contains("10.4.9.0/24") && text.contains("filtered") && text.contains("from-a/drop-9"),
        "{text}"
    );
    assert!(!text.contains("10.4.1.0/24"), "{text}");

    // A's Adj-RIB-Out: what B was sent, with the attributes sent.
    let advertised = a.api.get_json("/api/v1/peers/b/advertised").expect("advertised");
    let advertised = advertised.as_array().expect("a list");
    assert_eq!(advertised.len(), 3, "{advertised:?}");
    assert!(
        advertised
            .iter()
            .all(|r| r["status"] == "advertised" && r["as_path"] == "65001")
    );
    let text = show(&a, &["advertised", "b"]);
    assert!(
        text.contains("10.4.9.0/24") && text.contains("3 routes: 3 advertised"),
        "{text}"
    );

    // Longest match: an address finds the most specific route covering it.
    let hit = b.api.get_json("/api/v1/routes?prefix=10.4.1.7").expect("lookup");
    assert_eq!(hit[0]["prefix"], "10.4.1.0/24", "{hit}");
    assert_eq!(hit.as_array().map(Vec::len), Some(1));
    // 10.4.9.0/24 was filtered at B: the /16 covers the address there.
    let hit = b.api.get_json("/api/v1/routes?prefix=10.4.9.7").expect("lookup");
    assert_eq!(hit[0]["prefix"], "10.4.0.0/16", "{hit}");
    let text = show(&b, &["routes", "10.4.1.7"]);
    assert!(
        text.contains("10.4.1.0/24") && !text.contains("10.4.0.0/16"),
        "{text}"
    );

    // One peer: counts per family, received counting what was filtered.
    let detail = b.api.get_json("/api/v1/peers/a").expect("peer a");
    let v4 = &detail["families"][0];
    assert_eq!(v4["family"], "ipv4-unicast");
    assert_eq!(
        (
            v4["received"].as_u64(),
            v4["accepted"].as_u64(),
            v4["filtered"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    let text = show(&b, &["peer", "a"]);
    assert!(
        text.contains("peer a (upstream)") && text.contains("AS 65001"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("ipv4-unicast")
            && l.split_whitespace().collect::<Vec<_>>()[1..4] == ["3", "2", "1"]),
        "{text}"
    );
    assert_eq!(show(&b, &["peers", "a"]), text);
    // A peer that does not exist is an error that says so.
    let (status, body) = b
        .api
        .request("GET", "/api/v1/peers/nobody/received")
        .expect("request");
    assert_eq!(status, 404, "{body}");
}

/// `tern drain`: the peer receives every route again with the
/// GRACEFUL_SHUTDOWN community and our AS prepended; the drain is recorded
/// for a restart; `tern undrain` sends them as before.
#[test]
fn drain_and_undrain() {
    let dir = TempDir::new("drain");
    let (a, b) = pair(
        &dir.0,
        5,
        r#"originate = ["10.5.1.0/24"]
[drain]
prepend = 3"#,
        "",
        "",
        "accept-local-next-hop = true",
    );
    wait_until("the session", Duration::from_secs(10), || {
        established(&a, "b") && established(&b, "a")
    });
    let path_at_b = || {
        b.api
            .get_json("/api/v1/routes?prefix=10.5.1.0/24")
            .ok()
            .and_then(|r| r[0]["paths"][0].as_object().cloned())
    };
    wait_until("A's route at B", Duration::from_secs(10), || {
        path_at_b().is_some()
    });
    assert_eq!(path_at_b().unwrap()["as_path"], "65001");

    let Endpoint::Unix(socket) = &a.api else {
        panic!("the daemons here listen on a socket")
    };
    let drain = |cmd: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
            .args([cmd, "--api"])
            .arg(socket)
            .output()
            .expect("run tern");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(drain("drain").starts_with("drained"));
    wait_until("the drained route at B", Duration::from_secs(10), || {
        path_at_b().is_some_and(|p| {
            p["communities"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == "graceful-shutdown"))
        })
    });
    assert_eq!(path_at_b().unwrap()["as_path"], "65001 65001 65001 65001");
    assert_eq!(a.api.get_json("/api/v1/summary").unwrap()["rib"]["drained"], true);
    assert!(dir.0.join("a/drained").exists(), "a restart would stay drained");
    assert!(established(&a, "b"), "the session stays up");

    assert!(drain("undrain").starts_with("not drained"));
    wait_until("the route as before at B", Duration::from_secs(10), || {
        path_at_b().is_some_and(|p| {
            p["as_path"] == "65001" && p["communities"].as_array().is_some_and(Vec::is_empty)
        })
    });
    assert!(!dir.0.join("a/drained").exists());
}
