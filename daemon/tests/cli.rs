//! The `tern` command itself, as an operator runs it: `check-config`.

use std::process::Command;

/// `tern check-config` on a file with ten different mistakes prints ten
/// lines, each `file:line:col: reason`, and fails; the same file fixed
/// passes. (The messages themselves: `config::tests`.)
#[test]
fn check_config_reports_every_mistake() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ten-mistakes.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["check-config", file])
        .output()
        .expect("run tern check-config");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stderr.lines().chain(stdout.lines()).collect();
    assert_eq!(lines.len(), 10, "{lines:#?}");
    for l in &lines {
        let rest = l
            .strip_prefix(file)
            .unwrap_or_else(|| panic!("{l:?} does not start with the file"));
        let mut parts = rest.splitn(4, ':');
        assert_eq!(parts.next(), Some(""), "{l}");
        for what in ["line", "column"] {
            let n = parts.next().unwrap_or_default();
            assert!(n.parse::<u32>().is_ok(), "{what} {n:?} in {l}");
        }
        assert!(parts.next().is_some_and(|reason| reason.len() > 5), "{l}");
    }

    let fixed = std::fs::read_to_string(file)
        .unwrap()
        .replace("router-idd", "router-id")
        .replace("10.0.0.300", "10.0.0.3")
        .replace("remote-as ", "remote-asn ")
        .replace("\"ninety\"", "90")
        .replace("from-fabirc", "from-fabric")
        .replace("bfd = \"fast\"", "bfd = true")
        .replacen(
            "name = \"fabric\"\naddress = \"10.0.0.2\"",
            "name = \"fabric-2\"\naddress = \"10.0.0.2\"",
            1,
        )
        .replace("\"yes\"", "true")
        .replace("/33", "/16")
        .replace("actoin", "action");
    let dir = std::env::temp_dir().join(format!("tern-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fixed.toml");
    std::fs::write(&path, fixed).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run tern check-config");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
