//! The Debian package, installed on this machine, and tern run the way its
//! systemd unit runs it: as a user that is not root, with only
//! `CAP_NET_ADMIN` and `CAP_NET_BIND_SERVICE`, its MD5 key handed over as a
//! systemd credential. It must reach Established with a real FRR in a
//! namespace and install the route FRR sends.
//!
//! Builds the package with `cargo deb` (installed with `cargo install` if
//! missing) from the debug binary the labs use, installs it with `dpkg -i`,
//! and purges it at the end.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use interop_tests::{Daemon, Frr, Netns, WorkDir, timeout, unique_name, veth, wait_until};

const CARGO_DEB: &str = "3.8.0";
/// The user the test runs tern as: `nobody`, as a dynamic user would be.
const UID: u32 = 65534;
const NODE_V6: &str = "fd00:101::21";
const FRR_V6: &str = "fd00:101::fffe";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cargo deb`, installed once if missing.
fn cargo_deb() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let has = Command::new(&cargo)
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        run(Command::new(&cargo).args(["install", "cargo-deb", "--locked", "--version", CARGO_DEB]));
    }
    let mut c = Command::new(cargo);
    c.arg("deb").current_dir(workspace());
    c
}

/// The package is purged when the test ends, whatever happens.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "tern"]).output();
    }
}

fn mode_owner(path: &str) -> (u32, u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.permissions().mode() & 0o7777, m.uid(), m.gid())
}

fn frr_config() -> String {
    format!(
        "frr defaults traditional
hostname fabric
router bgp 4200001000
 bgp router-id 10.101.0.254
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {NODE_V6} remote-as 4210101021
 neighbor {NODE_V6} password pkg-s3cret
 neighbor {NODE_V6} timers 3 9
 neighbor {NODE_V6} timers connect 1
 address-family ipv6 unicast
  network fd00:224:9::/64
  neighbor {NODE_V6} activate
 exit-address-family
exit
"
    )
}

#[test]
fn the_package_installs_and_tern_runs_unprivileged_with_two_capabilities() {
    if !interop_tests::require_root() {
        return;
    }
    let work = WorkDir::new("package");
    // The package, from the binary the labs use.
    let bin = interop_tests::tern_bin();
    assert!(bin.ends_with("debug/tern"), "the debug build: {}", bin.display());
    let out = work.subdir("deb");
    run(cargo_deb()
        .args([
            "-p",
            "tern",
            "--profile",
            "dev",
            "--no-build",
            "--fast",
            "--quiet",
            "-o",
        ])
        .arg(&out));
    let deb = std::fs::read_dir(&out)
        .expect("deb dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");

    let _ = Command::new("dpkg").args(["--purge", "tern"]).output();
    run(Command::new("dpkg").arg("-i").arg(&deb));
    let _installed = Installed;

    // What it installed, and with which rights: the configuration readable
    // by the service's dynamic user, the key file by root only.
    assert_eq!(mode_owner("/usr/bin/tern"), (0o755, 0, 0));
    assert_eq!(mode_owner("/etc/tern"), (0o755, 0, 0));
    assert_eq!(mode_owner("/etc/tern/tern.toml"), (0o644, 0, 0));
    assert_eq!(mode_owner("/etc/tern/upstream.md5"), (0o600, 0, 0));
    assert_eq!(mode_owner("/usr/lib/systemd/system/tern.service").0, 0o644);
    let conffiles = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "tern"]));
    assert!(conffiles.contains("/etc/tern/tern.toml"), "{conffiles}");
    assert!(Path::new("/usr/share/doc/tern/examples/node-21.toml").exists());
    // The configuration it ships is valid, and readable by a user that is
    // not root.
    run(Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["/usr/bin/tern", "check-config", "/etc/tern/tern.toml"]));

    // The unit as installed.
    let verify = Command::new("systemd-analyze")
        .args(["verify", "/usr/lib/systemd/system/tern.service"])
        .output()
        .expect("systemd-analyze");
    let complaints: Vec<String> = String::from_utf8_lossy(&verify.stderr)
        .lines()
        .filter(|l| l.contains("tern.service"))
        .map(str::to_owned)
        .collect();
    assert!(complaints.is_empty(), "systemd-analyze verify: {complaints:#?}");
    let unit = std::fs::read_to_string("/usr/lib/systemd/system/tern.service").expect("unit");
    assert!(unit.contains("LoadCredential=upstream.md5:/etc/tern/upstream.md5"));

    // The node and the fabric router, MD5 on the session.
    let node = Netns::new(&unique_name("pkg-node"));
    let fabric = Netns::new(&unique_name("pkg-fabric"));
    veth(&node, "eth-up", &fabric, "eth-node");
    node.add_addr("eth-up", &format!("{NODE_V6}/64"));
    fabric.add_addr("eth-node", &format!("{FRR_V6}/64"));
    let frr = Frr::start(&fabric, &work, "fabric", &frr_config());

    // tern's files as the unit lays them out: a configuration anyone may
    // read, a state directory of its user's, and the key as systemd hands
    // a credential over (a file only the service's user can read, in
    // $CREDENTIALS_DIRECTORY).
    let etc = work.subdir("etc");
    let state = work.subdir("state");
    let creds = work.subdir("credentials");
    std::fs::write(creds.join("upstream.md5"), "pkg-s3cret\n").expect("key");
    for (path, mode) in [(&state, 0o750), (&creds, 0o500)] {
        run(Command::new("chown").arg(format!("{UID}:{UID}")).arg(path));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    run(Command::new("chown")
        .arg(format!("{UID}:{UID}"))
        .arg(creds.join("upstream.md5")));
    std::fs::set_permissions(creds.join("upstream.md5"), std::fs::Permissions::from_mode(0o400))
        .expect("chmod");
    let config = etc.join("tern.toml");
    std::fs::write(
        &config,
        format!(
            r#"router-id = "10.101.0.21"
asn = 4210101021
state-dir = "{state}"
[api]
socket = "{state}/tern.sock"
[[peer]]
name = "fabric"
address = "{FRR_V6}"
remote-asn = 4200001000
role = "upstream"
connect-retry = 1
md5-password-credential = "upstream.md5"
"#,
            state = state.display()
        ),
    )
    .expect("config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let caps = "-all,+net_admin,+net_bind_service";
    let mut cmd = node.command("setpriv");
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["--inh-caps", caps, "--ambient-caps", caps, "--bounding-set", caps])
        .args(["/usr/bin/tern", "--config"])
        .arg(&config)
        .env("CREDENTIALS_DIRECTORY", &creds)
        .env("NO_COLOR", "1");
    let tern = Daemon::spawn("tern-unprivileged", cmd, work.path());

    let socket = state.join("tern.sock");
    wait_until(timeout(30), "the session with FRR, MD5 on", || {
        let (code, body) = interop_tests::http::request(&socket, "GET", "/api/v1/peers/fabric")?;
        let p: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{code}: {e}"))?;
        if p["state"] == "established" {
            Ok(())
        } else {
            Err(format!("{}: {}", p["state"], p["last_error"]))
        }
    });
    // It runs as that user with exactly those two capabilities (after it
    // started itself again for glibc's tunables, too).
    let status = std::fs::read_to_string(format!("/proc/{}/status", tern.pid())).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(field("Uid:"), UID.to_string(), "{status}");
    // CAP_NET_BIND_SERVICE (10) and CAP_NET_ADMIN (12), nothing else.
    assert_eq!(field("CapEff:"), "0000000000001400", "{status}");
    assert_eq!(field("CapBnd:"), "0000000000001400", "{status}");
    frr.wait_established(NODE_V6, timeout(30));

    // FRR's route is in the node's kernel, installed by the unprivileged tern.
    wait_until(timeout(15), "FRR's route in the node's kernel", || {
        let routes = node.ip(&["-6", "route", "show", "fd00:224:9::/64", "proto", "186"]);
        if routes.contains(&format!("via {FRR_V6}")) {
            Ok(())
        } else {
            Err(format!("ip -6 route: {routes:?}"))
        }
    });
    drop(tern);

    // Purged, it leaves nothing behind, not even the key file.
    run(Command::new("dpkg").args(["--purge", "tern"]));
    for gone in [
        "/usr/bin/tern",
        "/etc/tern",
        "/usr/lib/systemd/system/tern.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is left after a purge");
    }
}
