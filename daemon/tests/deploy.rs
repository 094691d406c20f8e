//! The deployment artifacts in `deploy/` are real: the example configs load,
//! the YAML parses with the fields Cilium and Talos expect, the Talos
//! extension tree follows Talos's extension-service schema, its binary runs
//! from a read-only chroot of the extension root with the example config
//! mounted read-only and reaches Established (with TCP MD5), and the systemd
//! unit verifies with an exposure of 2.0 or lower.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tern::cli::Endpoint;
use tern::config::Config;
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml_docs(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

/// Keys of a YAML mapping, and a check that they are all allowed.
fn keys(y: &Yaml, allowed: &[&str], what: &str) -> BTreeSet<String> {
    let map = y
        .as_hash()
        .unwrap_or_else(|| panic!("{what} is not a mapping: {y:?}"));
    let keys: BTreeSet<String> = map.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect();
    for k in &keys {
        assert!(
            allowed.contains(&k.as_str()),
            "{what}: `{k}` is not a field of the schema ({allowed:?})"
        );
    }
    keys
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn root_or_skip(what: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} needs root, and under CI it must run"
    );
    eprintln!("{what} needs root; skipped");
    false
}

#[test]
fn example_configs_load_and_the_yaml_parses() {
    let examples = repo().join("deploy/examples");
    let mut tern_configs = 0;
    for entry in std::fs::read_dir(examples.join("tern"))
        .expect("examples")
        .flatten()
    {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "toml") {
            let c = Config::load(&p).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.peers.len(), 2, "{}", p.display());
            assert!(c.fib.enabled && c.fib.vip.is_some());
            tern_configs += 1;
        }
    }
    assert_eq!(tern_configs, 3);
    // The dual-homed node of an unnumbered fabric.
    let c = Config::load(&examples.join("unnumbered/node.toml")).unwrap_or_else(|e| panic!("{e}"));
    let uplinks: Vec<_> = c
        .peers
        .iter()
        .filter(|p| matches!(p.session.address, tern::config::PeerAddress::Interface(_)))
        .collect();
    assert_eq!(uplinks.len(), 2);
    assert!(
        uplinks
            .iter()
            .all(|p| p.session.extended_next_hop && p.bfd.is_some())
    );
    // Every VIP source on one node.
    let c = Config::load(&examples.join("vip-sources/node.toml")).unwrap_or_else(|e| panic!("{e}"));
    let speakers: Vec<String> = c
        .peers
        .iter()
        .filter(|p| p.session.role.is_local_speaker())
        .map(|p| p.session.role.to_string())
        .collect();
    assert_eq!(speakers, ["cilium", "metallb", "kube-vip"]);
    assert_eq!(c.fib.protocol, 200);

    let mut files = Vec::new();
    yaml_files(&repo().join("deploy"), &mut files);
    assert!(files.len() >= 5, "{files:?}");
    for f in &files {
        assert!(!yaml_docs(f).is_empty(), "{} is empty", f.display());
    }

    // Cilium: native routing with BGP-learned routes.
    let values = &yaml_docs(&examples.join("cilium/values.yaml"))[0];
    assert_eq!(values["routingMode"].as_str(), Some("native"));
    assert_eq!(values["autoDirectNodeRoutes"].as_bool(), Some(false));
    assert_eq!(values["bgpControlPlane"]["enabled"].as_bool(), Some(true));
    let bgp = yaml_docs(&examples.join("cilium/bgp.yaml"));
    let kinds: Vec<&str> = bgp.iter().filter_map(|d| d["kind"].as_str()).collect();
    for k in [
        "CiliumBGPClusterConfig",
        "CiliumBGPPeerConfig",
        "CiliumBGPAdvertisement",
    ] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "CiliumBGPNodeConfigOverride")
            .count(),
        3
    );
    let peer = bgp
        .iter()
        .find(|d| d["kind"].as_str() == Some("CiliumBGPPeerConfig"))
        .expect("peer config");
    assert_eq!(peer["spec"]["gracefulRestart"]["enabled"].as_bool(), Some(true));
    assert_eq!(
        peer["spec"]["timers"]["connectRetryTimeSeconds"].as_i64(),
        Some(5)
    );
    let cluster = bgp
        .iter()
        .find(|d| d["kind"].as_str() == Some("CiliumBGPClusterConfig"))
        .expect("cluster config");
    let cilium_peer = &cluster["spec"]["bgpInstances"][0]["peers"][0];
    assert_eq!(cilium_peer["peerAddress"].as_str(), Some("::1"));
    // Cilium's peer AS is what every node's tern presents to it.
    let node = Config::load(&examples.join("tern/node-21.toml")).expect("node config");
    assert_eq!(
        cilium_peer["peerASN"].as_i64(),
        node.peer("cilium")
            .and_then(|p| p.session.local_asn)
            .map(i64::from)
    );

    // Talos: the ExtensionServiceConfig carries the node's config and the
    // MD5 secret as separate files; the embedded config is node-21's.
    let esc = &yaml_docs(&examples.join("talos/tern-extension-service-config.yaml"))[0];
    assert_eq!(esc["kind"].as_str(), Some("ExtensionServiceConfig"));
    assert_eq!(esc["name"].as_str(), Some("tern"));
    let files = esc["configFiles"].as_vec().expect("configFiles");
    let file = |path: &str| {
        files
            .iter()
            .find(|f| f["mountPath"].as_str() == Some(path))
            .and_then(|f| f["content"].as_str())
            .unwrap_or_else(|| panic!("no {path}"))
    };
    let dir = scratch("esc");
    std::fs::write(dir.join("tern.toml"), file("/etc/tern/tern.toml")).expect("write");
    std::fs::write(dir.join("upstream.md5"), file("/etc/tern/upstream.md5")).expect("write");
    Config::load(&dir.join("tern.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        file("/etc/tern/tern.toml"),
        std::fs::read_to_string(examples.join("tern/node-21.toml")).expect("read")
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Talos's extension manifest and extension-service spec
/// (pkg/machinery/extensions): only known fields, required ones present.
#[test]
fn talos_extension_tree_follows_the_schema() {
    let talos = repo().join("deploy/talos");
    let manifest = &yaml_docs(&talos.join("manifest.yaml"))[0];
    keys(manifest, &["version", "metadata"], "manifest");
    assert_eq!(manifest["version"].as_str(), Some("v1alpha1"));
    let meta = &manifest["metadata"];
    let k = keys(
        meta,
        &["name", "version", "author", "description", "compatibility"],
        "metadata",
    );
    assert_eq!(k.len(), 5, "every metadata field is set");
    assert_eq!(meta["name"].as_str(), Some("tern"));
    keys(&meta["compatibility"], &["talos"], "compatibility");
    let talos_version = meta["compatibility"]["talos"]["version"]
        .as_str()
        .expect("talos version");
    assert!(talos_version.starts_with(">="), "{talos_version}");

    let spec_path = talos.join("rootfs/usr/local/etc/containers/tern.yaml");
    let spec = &yaml_docs(&spec_path)[0];
    keys(
        spec,
        &["name", "container", "depends", "restart", "logToConsole"],
        "service",
    );
    assert_eq!(
        spec["name"].as_str(),
        Some("tern"),
        "the name matches the file name"
    );
    assert!(matches!(
        spec["restart"].as_str(),
        Some("always" | "never" | "untilSuccess")
    ));
    assert_eq!(spec["restart"].as_str(), Some("always"));
    assert!(spec["logToConsole"].as_bool().is_some());
    let container = &spec["container"];
    keys(
        container,
        &["entrypoint", "args", "mounts", "environment", "security"],
        "container",
    );
    let entry = container["entrypoint"].as_str().expect("entrypoint");
    assert!(entry.starts_with('/'), "{entry}");
    let args: Vec<&str> = container["args"]
        .as_vec()
        .expect("args")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(&args[..2], ["--config", "/etc/tern/tern.toml"]);
    for m in container["mounts"].as_vec().expect("mounts") {
        let k = keys(m, &["source", "destination", "type", "options"], "mount");
        assert_eq!(k.len(), 4);
    }
    let state = container["mounts"]
        .as_vec()
        .expect("mounts")
        .iter()
        .find(|m| m["destination"].as_str() == Some("/var/run/tern"));
    assert!(
        state.is_some_and(|m| m["options"]
            .as_vec()
            .is_some_and(|o| o.iter().any(|x| x.as_str() == Some("rw")))),
        "a writable state dir"
    );
    keys(
        &container["security"],
        &[
            "maskedPaths",
            "readonlyPaths",
            "writeableRootfs",
            "writeableSysfs",
            "rootfsPropagation",
        ],
        "security",
    );
    assert_eq!(container["security"]["writeableRootfs"].as_bool(), Some(false));
    let mut depends = BTreeSet::new();
    for d in spec["depends"].as_vec().expect("depends") {
        for k in keys(
            d,
            &["service", "path", "network", "time", "configuration"],
            "dependency",
        ) {
            if k == "network" {
                for n in d["network"].as_vec().expect("network list") {
                    let n = n.as_str().expect("network status");
                    assert!(
                        ["addresses", "connectivity", "hostname", "etcfiles"].contains(&n),
                        "{n}"
                    );
                }
            }
            depends.insert(k);
        }
    }
    assert!(
        depends.contains("configuration") && depends.contains("network"),
        "{depends:?}"
    );
    // Talos's `connectivity` waits for a default route; on a node whose
    // default route is learned over BGP only tern installs it.
    let network: Vec<&str> = spec["depends"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(|d| d["network"].as_vec())
        .flatten()
        .filter_map(|n| n.as_str())
        .collect();
    assert_eq!(network, ["addresses"], "tern must not wait for what it provides");
    // The example configuration keeps its state where the mount is.
    let node = Config::load(&repo().join("deploy/examples/tern/node-21.toml")).expect("node config");
    assert_eq!(node.state_dir, Path::new("/var/run/tern"));
}

/// Kills a child by PID when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGKILL to this child's PID.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        let name = format!("tern-deploy-{name}-{}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A statically linked tern, as the extension ships: the musl build of
/// `deploy/build-static.sh` when present, else one built here (musl when the
/// target is installed, else glibc with crt-static).
fn static_binary() -> PathBuf {
    let shipped = repo().join("deploy/out/x86_64/tern");
    if shipped.exists() {
        return shipped;
    }
    let musl = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("x86_64-unknown-linux-musl"));
    let target = if musl {
        "x86_64-unknown-linux-musl"
    } else {
        "x86_64-unknown-linux-gnu"
    };
    let target_dir = repo().join("target/deploy-test");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            "tern",
            "--bin",
            "tern",
            "--target",
            target,
            "--target-dir",
        ])
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(repo())
        .status()
        .expect("cargo build");
    assert!(status.success(), "static build failed");
    target_dir.join(target).join("debug/tern")
}

#[test]
fn extension_binary_runs_from_a_read_only_root_and_reaches_established() {
    if !root_or_skip("the extension chroot test") {
        return;
    }
    let binary = static_binary();
    let work = scratch("chroot");
    // The extension's container root, as Talos lays it out.
    let root = work.join("rootfs/usr/local/lib/containers/tern");
    std::fs::create_dir_all(root.join("usr/local/bin")).expect("tree");
    std::fs::create_dir_all(root.join("etc/tern")).expect("tree");
    std::fs::create_dir_all(root.join("var/run/tern")).expect("tree");
    std::fs::copy(&binary, root.join("usr/local/bin/tern")).expect("copy binary");
    // The ExtensionServiceConfig's files and the writable state dir.
    let conf = work.join("etc-tern");
    let state = work.join("state");
    std::fs::create_dir_all(&conf).expect("conf");
    std::fs::create_dir_all(&state).expect("state");
    let examples = repo().join("deploy/examples/tern");
    std::fs::copy(examples.join("node-21.toml"), conf.join("tern.toml")).expect("config");
    std::fs::copy(examples.join("upstream.md5"), conf.join("upstream.md5")).expect("secret");

    // node-21 and the fabric router on one link.
    let node = Netns::new("node");
    let fabric = Netns::new("fabric");
    run(&[
        "ip", "link", "add", "tdn0", "netns", &node.0, "type", "veth", "peer", "tdf0", "netns", &fabric.0,
    ]);
    for (ns, dev, addr) in [
        (&node, "tdn0", "fd00:101::21/64"),
        (&fabric, "tdf0", "fd00:101::fffe/64"),
    ] {
        run(&["ip", "-n", &ns.0, "addr", "add", addr, "dev", dev, "nodad"]);
        run(&["ip", "-n", &ns.0, "link", "set", dev, "up"]);
    }

    // The fabric: another tern with the same MD5 key.
    let fabric_dir = work.join("fabric");
    std::fs::create_dir_all(&fabric_dir).expect("fabric dir");
    std::fs::copy(examples.join("upstream.md5"), fabric_dir.join("upstream.md5")).expect("secret");
    let fabric_socket = fabric_dir.join("api.sock");
    std::fs::write(
        fabric_dir.join("tern.toml"),
        format!(
            "router-id = \"10.101.0.254\"\nasn = 4200001000\nstate-dir = \"{}\"\n[api]\nsocket = \"{}\"\n[fib]\nenabled = false\n\
             [[peer]]\nname = \"node-21\"\naddress = \"fd00:101::21\"\nremote-asn = 4210101021\npassive = true\n\
             md5-password-file = \"upstream.md5\"\nimport-default = \"accept\"\nextended-next-hop = true\n",
            fabric_dir.display(),
            fabric_socket.display()
        ),
    )
    .expect("fabric config");
    let fabric_log = std::fs::File::create(work.join("fabric.log")).expect("log");
    let _fabric_proc = Proc(
        Command::new("ip")
            .args(["netns", "exec", &fabric.0, env!("CARGO_BIN_EXE_tern"), "--config"])
            .arg(fabric_dir.join("tern.toml"))
            .stdout(Stdio::from(fabric_log.try_clone().expect("log")))
            .stderr(Stdio::from(fabric_log))
            .spawn()
            .expect("fabric tern"),
    );

    // The extension: a private mount namespace, the whole root read-only,
    // the config read-only, only /var/run/tern writable.
    let script = format!(
        "set -e; R={root}; mount --bind $R $R; mount -o remount,ro,bind $R; \
         mount --bind {conf} $R/etc/tern; mount -o remount,ro,bind $R/etc/tern; \
         mount --bind {state} $R/var/run/tern; \
         exec chroot $R /usr/local/bin/tern --config /etc/tern/tern.toml --log-format json",
        root = root.display(),
        conf = conf.display(),
        state = state.display()
    );
    let node_log = std::fs::File::create(work.join("node.log")).expect("log");
    let _node_proc = Proc(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &node.0,
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .stdout(Stdio::from(node_log.try_clone().expect("log")))
            .stderr(Stdio::from(node_log))
            .spawn()
            .expect("extension tern"),
    );

    let api = Endpoint::Unix(state.join("tern.sock"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let established = loop {
        let fabric_peer = api.get_json("/api/v1/peers/fabric").ok();
        if fabric_peer.as_ref().is_some_and(|p| p["state"] == "established") {
            break fabric_peer;
        }
        if Instant::now() > deadline {
            break fabric_peer;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let logs = || {
        format!(
            "node log:\n{}\nfabric log:\n{}",
            std::fs::read_to_string(work.join("node.log")).unwrap_or_default(),
            std::fs::read_to_string(work.join("fabric.log")).unwrap_or_default()
        )
    };
    let p = established.unwrap_or_else(|| panic!("the extension's API never answered\n{}", logs()));
    assert_eq!(p["state"], "established", "{p}\n{}", logs());
    assert_eq!(p["negotiated"]["peer_asn"], 4_200_001_000u32);
    assert_eq!(p["negotiated"]["extended_next_hop"], true);
    // It wrote nothing but its state directory.
    let written: Vec<String> = std::fs::read_dir(&state)
        .expect("state")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        written.contains(&"tern.sock".to_owned()) && written.contains(&"graceful-restart".to_owned()),
        "{written:?}"
    );
    drop(_node_proc);
    drop(_fabric_proc);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is missing; under CI it must run"
        );
        eprintln!("systemd-analyze is not installed; skipped");
        return;
    }
    // An offline root holding the unit, its binaries and systemd's own units.
    let root = scratch("systemd");
    let unit_dir = root.join("etc/systemd/system");
    std::fs::create_dir_all(&unit_dir).expect("root");
    std::fs::copy(
        repo().join("deploy/systemd/tern.service"),
        unit_dir.join("tern.service"),
    )
    .expect("unit");
    std::fs::create_dir_all(root.join("usr/bin")).expect("root");
    std::fs::copy(env!("CARGO_BIN_EXE_tern"), root.join("usr/bin/tern")).expect("binary");
    std::fs::create_dir_all(root.join("bin")).expect("root");
    std::fs::copy("/bin/kill", root.join("bin/kill")).expect("kill");
    let units = root.join("lib/systemd/system");
    std::fs::create_dir_all(&units).expect("root");
    for entry in std::fs::read_dir("/lib/systemd/system")
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.path().is_file() {
            let _ = std::fs::copy(entry.path(), units.join(entry.file_name()));
        }
    }
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("tern.service")
        .output()
        .expect("verify");
    let complaints = String::from_utf8_lossy(&verify.stderr)
        .lines()
        .filter(|l| l.contains("tern.service"))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert!(
        verify.status.success() && complaints.is_empty(),
        "systemd-analyze verify: {complaints:#?}"
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(format!("--root={}", root.display()))
        .arg("tern.service")
        .output()
        .expect("security");
    let text = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for tern.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    println!("systemd-analyze security: exposure {exposure}");
    assert!(exposure <= 2.0, "exposure {exposure} above 2.0:\n{text}");
    let _ = std::fs::remove_dir_all(&root);
}
