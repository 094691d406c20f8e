//! Loading and validation: role presets, every error with its location,
//! policies, FIB settings and secrets.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bgp_proto::Family;
use policy::{Action, Disposition, Role, StatementResult};

use super::MaxPrefixAction;

use super::*;

/// Secrets from a fixed table, so tests touch no files.
struct TestSecrets;

impl SecretSource for TestSecrets {
    fn file(&self, path: &Path) -> Result<String, String> {
        match path.file_name().and_then(|n| n.to_str()) {
            Some("upstream.md5") => Ok("s3cret".into()),
            _ => Err("No such file or directory (os error 2)".into()),
        }
    }
    fn env(&self, name: &str) -> Result<String, String> {
        if name == "TERN_MD5" {
            Ok("from-env".into())
        } else if name == "CREDENTIALS_DIRECTORY" {
            Ok("/run/credentials/tern.service".into())
        } else {
            Err("environment variable not found".into())
        }
    }
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("/etc/tern/tern.toml"), &TestSecrets)
}

/// `errors` are these, in order: each starts with the file and the
/// `line:col: message` prefix given.
#[track_caller]
fn assert_errors(errors: &[String], expected: &[&str]) {
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (got, want) in errors.iter().zip(expected) {
        assert!(
            got.starts_with(&format!("/etc/tern/tern.toml:{want}")),
            "got {got:?}, want {want:?}"
        );
    }
}

fn errors(text: &str) -> Vec<String> {
    parse(text)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

const NODE: &str = r#"
router-id = "10.101.0.21"
asn = 4210101021
originate = ["10.101.0.21/32", "fd00:101::21/128"]

[[peer]]
name = "cilium"
address = "::1"
remote-asn = 4220101000
role = "cilium"

[[peer]]
name = "upstream"
address = "fd00:101::fffe"
remote-asn = 4200001000
role = "upstream"
extended-next-hop = true
md5-password-file = "upstream.md5"
import = ["from-upstream"]

[[prefix-set]]
name = "own-pods"
prefixes = ["10.224.1.0/24", "fd00:101:224:1::/64"]

[[policy]]
name = "from-upstream"
[[policy.statement]]
name = "not-our-own-pods"
match.prefix-set = "own-pods"
action = "reject"
[[policy.statement]]
set.local-pref = 200
"#;

#[test]
fn a_node_config_with_role_presets() {
    let c = parse(NODE).unwrap();
    assert_eq!(
        (c.asn, c.router_id),
        (4210101021, Some(Ipv4Addr::new(10, 101, 0, 21)))
    );
    assert_eq!(c.listen, [SocketAddr::from(([0u16; 8], 179))]);
    assert_eq!(c.api.listen, Some(SocketAddr::from(([127, 0, 0, 1], 9179))));
    assert_eq!(c.api.socket.as_deref(), Some(Path::new("/run/tern/tern.sock")));
    assert!(c.graceful_restart.enabled);

    let cilium = c.peer("cilium").unwrap();
    assert_eq!(
        cilium.session.address,
        PeerAddress::Single("::1".parse().unwrap())
    );
    assert!(
        cilium.session.passive && cilium.routing.accept_local_next_hop && cilium.session.extended_next_hop
    );
    assert_eq!(
        (cilium.routing.import.default, cilium.routing.export.default),
        (Disposition::Accept, Disposition::Reject)
    );
    assert!(cilium.routing.export.policies.is_empty());

    let up = c.peer("upstream").unwrap();
    assert!(
        !up.session.passive
            && up.routing.next_hop_self
            && !up.routing.accept_local_next_hop
            && up.session.extended_next_hop
    );
    assert_eq!(up.session.md5_password, Some(Secret("s3cret".into())));
    assert_eq!(up.routing.import.policies.len(), 1);
    assert_eq!(up.routing.export.policies[0].name, "role:upstream-export");
    assert_eq!(up.session.connect_retry, Duration::from_secs(5));
    assert_eq!(up.session.families, [Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
}

#[test]
fn a_peer_without_a_role_gets_rfc_8212_defaults() {
    let c =
        parse("asn = 65000\n[[peer]]\nname = \"x\"\naddress = \"10.0.0.1\"\nremote-asn = 65001\n").unwrap();
    let p = c.peer("x").unwrap();
    assert_eq!(
        (p.routing.import.default, p.routing.export.default),
        (Disposition::Reject, Disposition::Reject)
    );
    let c = parse("asn = 65000\n[[peer]]\nname = \"x\"\naddress = \"10.0.0.1\"\nremote-asn = 65001\nimport-default = \"accept\"\n").unwrap();
    assert_eq!(c.peer("x").unwrap().routing.import.default, Disposition::Accept);
}

#[test]
fn ranges_are_dynamic_and_passive() {
    let c =
        parse("asn = 65000\n[[peer]]\nname = \"nodes\"\naddress = \"fd00:101::/64\"\nremote-asn = \"any\"\n")
            .unwrap();
    let p = c.peer("nodes").unwrap();
    assert!(p.session.passive);
    assert_eq!(p.session.remote_asn, RemoteAs::Any);
    assert!(p.session.address.contains("fd00:101::23".parse().unwrap()));
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    assert_eq!(
        errors("asn = 65000\nrouter-id = \n"),
        ["/etc/tern/tern.toml:2:13: string values must be quoted, expected literal string"]
    );
    let e = errors("asn = 65000\nrouterid = \"1.2.3.4\"\n");
    assert_eq!(
        e,
        ["/etc/tern/tern.toml:2:1: unknown key `routerid`; did you mean `router-id`?"]
    );
    let e = errors("asn = \"x\"\n");
    assert!(e[0].starts_with("/etc/tern/tern.toml:1:7: "), "{e:?}");
}

#[test]
fn every_semantic_error_is_reported_with_its_location() {
    let text = r#"asn = 65000
router-id = "10.0.0.256"

[[peer]]
name = "a"
address = "10.0.0.1"
remote-asn = 65001
hold-time = 2
import = ["nope"]
md5-password = "inline"

[[peer]]
name = "a"
address = "10.0.0.2"
remote-asn = "some"
families = ["ipv4-multicast"]
md5-password-file = "missing.md5"

[[policy]]
name = "p"
[[policy.statement]]
match.prefix-set = "undefined"
match.prefixes = ["10.0.0.0/33"]
set.community-add = ["65536:1"]
action = "maybe"
"#;
    let e = errors(text);
    let expected = [
        "2:13: invalid router-id \"10.0.0.256\"",
        "8:13: hold-time must be 0 or at least 3 seconds",
        "9:11: unknown policy \"nope\"",
        "10:16: peer \"a\": an inline md5-password",
        "12:1: a peer named \"a\" is already defined",
        "13:8: peer \"a\" has no families",
        "15:14: invalid remote-asn \"some\"",
        "16:13: unknown family \"ipv4-multicast\"",
        "17:21: cannot read md5-password-file /etc/tern/missing.md5",
        "22:20: unknown prefix-set \"undefined\"",
        "23:19: invalid prefix \"10.0.0.0/33\"",
        "24:22: invalid standard community \"65536:1\"",
        "25:10: invalid statement result \"maybe\"",
    ];
    assert_errors(&e, &expected);
}

#[test]
fn policies_become_statements() {
    let c = parse(NODE).unwrap();
    let p = &c.policies["from-upstream"];
    assert_eq!(p.statements.len(), 2);
    assert_eq!(p.statements[0].result, StatementResult::Reject);
    assert_eq!(p.statements[1].name, "2");
    assert_eq!(p.statements[1].actions, [Action::SetLocalPref(200)]);
    assert_eq!(p.statements[1].result, StatementResult::NextStatement);
}

#[test]
fn fib_defaults_and_settings() {
    let c = parse(NODE).unwrap();
    let f = &c.fib;
    assert!(f.enabled && f.ipv4 && f.ipv6 && f.keep_routes_on_stop);
    assert_eq!((f.table, f.protocol, f.metric), (254, 186, 512));
    assert_eq!(f.install_from, [Role::Upstream]);
    assert!(
        matches!(&f.vip, Some((sel, VipRoute::Local)) if sel.host_routes_only && sel.prefix_sets.is_empty())
    );
    let c = parse(&format!(
        "{NODE}\n[[prefix-set]]\nname = \"lb-pool\"\nprefixes = [\"10.96.0.0/16 le 32\"]\n[fib]\ntable = 100\nmetric = 20\nkeep-routes-on-stop = false\n[fib.vip]\nkind = \"device\"\ndevice = \"cilium_host\"\nprefix-sets = [\"lb-pool\"]\n"
    ))
    .unwrap();
    assert_eq!(
        (c.fib.table, c.fib.metric, c.fib.keep_routes_on_stop),
        (100, 20, false)
    );
    assert!(
        matches!(&c.fib.vip, Some((sel, VipRoute::Device(d))) if d == "cilium_host" && sel.prefix_sets.len() == 1)
    );
}

#[test]
fn fib_errors() {
    let e = errors(
        "asn = 1\n[fib]\ntable = 255\nprotocol = 2\npolicy = \"nope\"\n[fib.vip]\nkind = \"device\"\nprefix-sets = [\"none\"]\n",
    );
    let want = [
        "3:9: table 255 is reserved",
        "4:12: protocol 2 is reserved",
        "5:10: unknown policy",
        "7:8: a device VIP route needs `device`",
        "8:16: unknown prefix-set",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, want) in e.iter().zip(want) {
        assert!(
            got.starts_with(&format!("/etc/tern/tern.toml:{want}")),
            "got {got:?}, want {want:?}"
        );
    }
}

#[test]
fn md5_from_the_environment_and_the_length_limit() {
    let base = "asn = 65000\n[[peer]]\nname = \"x\"\naddress = \"10.0.0.1\"\nremote-asn = 65001\n";
    let c = parse(&format!("{base}md5-password-env = \"TERN_MD5\"\n")).unwrap();
    assert_eq!(
        c.peer("x").unwrap().session.md5_password,
        Some(Secret("from-env".into()))
    );
    assert_eq!(format!("{:?}", Secret("x".into())), "Secret(..)");
    let e = errors(&format!("{base}md5-password-env = \"UNSET\"\n"));
    assert!(e[0].contains("cannot read md5-password-env UNSET"), "{e:?}");
}

/// A reload compares a peer's two groups whole: a routing change leaves the
/// session group equal (policies re-run, the session stays), a session
/// change shows in the session group (the session restarts).
#[test]
fn peer_settings_group_into_session_and_routing() {
    let base = parse(NODE).unwrap();
    let up = |c: &Config| c.peer("upstream").unwrap().clone();
    let asn = "remote-asn = 4200001000";
    for (from, to, session_changes, routing_changes) in [
        ("set.local-pref = 200", "set.local-pref = 200", false, false),
        ("set.local-pref = 200", "set.local-pref = 300", false, true),
        (asn, "remote-asn = 4200001000\nmax-prefix = 10", false, true),
        (asn, "remote-asn = 4200001000\nnext-hop-self = false", false, true),
        (asn, "remote-asn = 4200001000\nhold-time = 30", true, false),
        (asn, "remote-asn = 4200001000\npassive = true", true, false),
    ] {
        let c = parse(&NODE.replacen(from, to, 1)).unwrap();
        let (a, b) = (up(&base), up(&c));
        assert_eq!(a.session != b.session, session_changes, "{to}");
        assert_eq!(a.routing != b.routing, routing_changes, "{to}");
    }
}

#[test]
fn a_hostname_longer_than_the_fqdn_capability_is_refused() {
    let long = "n".repeat(254);
    let e = errors(&format!("asn = 65000\nhostname = \"{long}\"\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("/etc/tern/tern.toml:2:12: hostname is 254 octets; it must be 1 to 253"),
        "{e:?}"
    );
    assert!(parse(&format!("asn = 65000\nhostname = \"{}\"\n", "n".repeat(253))).is_ok());
}

#[test]
fn max_prefix_per_family_with_an_action() {
    let base = "asn = 65000\n[[peer]]\nname = \"x\"\naddress = \"10.0.0.1\"\nremote-asn = 65001\n";
    let max = |text: &str| {
        parse(&format!("{base}{text}"))
            .unwrap()
            .peer("x")
            .unwrap()
            .routing
            .max_prefix
            .clone()
            .unwrap()
    };
    let m = max("max-prefix = 100\n");
    assert_eq!(
        m.limits,
        [(Family::IPV4_UNICAST, 100), (Family::IPV6_UNICAST, 100)]
    );
    assert_eq!((m.action, m.restart_after), (MaxPrefixAction::Reset, None));
    let m = max("[peer.max-prefix]\nipv4-unicast = 1000\nipv6-unicast = 200\naction = \"warn\"\n");
    assert_eq!(
        m.limits,
        [(Family::IPV4_UNICAST, 1000), (Family::IPV6_UNICAST, 200)]
    );
    assert_eq!(m.action, MaxPrefixAction::Warn);
    let m = max("max-prefix = { limit = 50, ipv6-unicast = 10, action = \"reset\", restart-after = 120 }\n");
    assert_eq!(m.limits, [(Family::IPV4_UNICAST, 50), (Family::IPV6_UNICAST, 10)]);
    assert_eq!(m.restart_after, Some(Duration::from_secs(120)));
    let m = max("max-prefix = { ipv4-unicast = 5, action = \"discard-excess\" }\n");
    assert_eq!(
        (m.limits.as_slice(), m.action),
        (&[(Family::IPV4_UNICAST, 5)][..], MaxPrefixAction::DiscardExcess)
    );

    let e = errors(&format!("{base}max-prefix = {{ action = \"block\" }}\n"));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e.iter().any(|e| e.contains("max-prefix needs a limit")), "{e:?}");
    assert!(
        e.iter().any(
            |e| e.contains("invalid max-prefix action \"block\": expected warn, discard-excess or reset")
        ),
        "{e:?}"
    );
    assert!(
        e.iter().all(|e| e.starts_with("/etc/tern/tern.toml:6:14: ")),
        "{e:?}"
    );
    let e = errors(&format!(
        "{base}max-prefix = {{ limit = 5, action = \"warn\", restart-after = 5 }}\n"
    ));
    assert!(
        e[0].contains("restart-after goes with action = \"reset\""),
        "{e:?}"
    );
}

#[test]
fn bfd_true_is_300_ms_by_3_and_a_profile_is_found_by_name() {
    let c = parse(
        r#"
asn = 65000
router-id = "10.0.0.1"

[[bfd-profile]]
name = "fast"
min-rx = 100
min-tx = 50
multiplier = 4
passive = true

[[peer]]
name = "a"
address = "10.0.0.2"
remote-asn = 65001
role = "upstream"
bfd = true

[[peer]]
name = "b"
address = "10.0.0.3"
remote-asn = 65001
role = "upstream"
bfd = "fast"

[[peer]]
name = "c"
address = "10.0.0.4"
remote-asn = 65001
role = "upstream"
"#,
    )
    .unwrap();
    assert_eq!(c.peers[0].bfd, Some(BfdConfig::default_profile()));
    let fast = c.peers[1].bfd.clone().unwrap();
    assert_eq!(
        (
            fast.profile.as_str(),
            fast.min_rx,
            fast.min_tx,
            fast.multiplier,
            fast.passive
        ),
        (
            "fast",
            Duration::from_millis(100),
            Duration::from_millis(50),
            4,
            true
        )
    );
    assert_eq!(c.peers[2].bfd, None);
}

#[test]
fn bfd_mistakes_are_named_where_they_are() {
    let e = errors(
        r#"
asn = 65000
router-id = "10.0.0.1"

[[bfd-profile]]
name = "slow"
min-rx = 5
multiplier = 0

[[peer]]
name = "a"
address = "10.0.0.2"
remote-asn = 65001
role = "upstream"
bfd = "fsat"

[[peer]]
name = "b"
address = "10.0.0.3"
remote-asn = 65001
role = "upstream"
bfd = 3
"#,
    );
    assert_eq!(
        e,
        [
            "/etc/tern/tern.toml:7:10: min-rx is in milliseconds, from 10 to 60000",
            "/etc/tern/tern.toml:8:14: multiplier must be at least 1",
            "/etc/tern/tern.toml:15:7: no [[bfd-profile]] named \"fsat\" (defined: slow)",
            "/etc/tern/tern.toml:22:7: bfd must be true, false or the name of a [[bfd-profile]], not 3",
        ]
    );
}

/// A file with ten different mistakes, of every kind: misspelt keys
/// (suggested, and read as meant so their tables are checked too), values
/// of the wrong type, bad values, references to nothing, a duplicate name.
/// Ten messages, in file order.
#[test]
fn ten_mistakes_make_ten_messages() {
    let text = include_str!("../../tests/ten-mistakes.toml");
    let e = errors(text);
    let expected = [
        "2:1: unknown key `router-idd`; did you mean `router-id`?",
        "6:11: invalid address \"10.0.0.300\"",
        "7:1: unknown key `remote-as`; did you mean `remote-asn`?",
        "8:13: invalid type: string \"ninety\", expected u16",
        "9:11: unknown policy \"from-fabirc\"",
        "10:7: no [[bfd-profile]] named \"fast\"",
        "12:1: a peer named \"fabric\" is already defined",
        "16:11: invalid type: string \"yes\", expected a boolean",
        "20:13: invalid prefix \"10.224.0.0/33\"",
        "27:1: unknown key `actoin`; did you mean `action`?",
    ];
    assert_errors(&e, &expected);
}

/// A table without a required key is reported and left out; the rest of
/// the file is still checked. A misspelt required key is one problem, not
/// two (no "missing field" beside "did you mean").
#[test]
fn a_missing_key_does_not_hide_the_rest() {
    let e = errors(
        r#"asn = 65000
[[peer]]
name = "a"
remote-asn = 65001
[[peer]]
name = "b"
adress = "10.0.0.2"
remote-asn = 65002
[[peer]]
name = "c"
address = "10.0.0.3"
remote-asn = 65003
hold-time = 1
"#,
    );
    assert_eq!(
        e,
        [
            "/etc/tern/tern.toml:3:8: peer \"a\" needs `address` (an address or a range) or `interface` (unnumbered)",
            "/etc/tern/tern.toml:7:1: unknown key `adress`; did you mean `address`?",
            "/etc/tern/tern.toml:13:13: hold-time must be 0 or at least 3 seconds (RFC 4271 §4.2)",
        ]
    );
}

#[test]
fn static_routes_and_source_addresses() {
    let c = parse(
        r#"asn = 65000
router-id = "10.0.0.1"
originate = ["10.0.0.1/32"]
[fib]
source-address-ipv4 = "10.101.0.21"
source-address-ipv6 = "fd00:101::21"
[[static-route]]
prefix = "10.96.0.0/16"
blackhole = true
originate = true
[[static-route]]
prefix = "fd00:96::/48"
unreachable = true
[[static-route]]
prefix = "10.250.0.0/16"
next-hop = "fd00:101::fffe"
"#,
    )
    .unwrap();
    assert_eq!(c.fib.source_address_ipv4, Some("10.101.0.21".parse().unwrap()));
    assert_eq!(c.fib.source_address_ipv6, Some("fd00:101::21".parse().unwrap()));
    let targets: Vec<(String, StaticTarget, bool)> = c
        .static_routes
        .iter()
        .map(|s| (s.prefix.to_string(), s.target, s.originate))
        .collect();
    assert_eq!(
        targets,
        [
            ("10.96.0.0/16".into(), StaticTarget::Blackhole, true),
            ("fd00:96::/48".into(), StaticTarget::Unreachable, false),
            (
                "10.250.0.0/16".into(),
                StaticTarget::NextHop("fd00:101::fffe".parse().unwrap()),
                false
            ),
        ]
    );
    // The aggregate is announced beside the originate prefixes.
    let originated: Vec<String> = c.originated().iter().map(ToString::to_string).collect();
    assert_eq!(originated, ["10.0.0.1/32", "10.96.0.0/16"]);

    let e = errors(
        r#"asn = 65000
[fib]
source-address-ipv4 = "fd00::1"
[[static-route]]
prefix = "10.96.0.0/16"
[[static-route]]
prefix = "10.97.0.0/16"
blackhole = true
next-hop = "10.0.0.1"
[[static-route]]
prefix = "fd00:96::/48"
next-hop = "10.0.0.1"
[[static-route]]
prefix = "10.98.0.1/16"
blackhole = true
[[static-route]]
prefix = "10.97.0.0/16"
unreachable = true
"#,
    );
    let expected = [
        "3:23: invalid IPv4 source address \"fd00::1\"",
        "4:1: static route 10.96.0.0/16: give exactly one of",
        "6:1: static route 10.97.0.0/16: give exactly one of",
        "12:12: fd00:96::/48 cannot go via an IPv4 next hop",
        "14:10: 10.98.0.1/16 has host bits set",
    ];
    assert_errors(&e, &expected);
}

/// The MD5 key as a systemd credential: read from `$CREDENTIALS_DIRECTORY`,
/// so the key file itself can stay readable by root only.
#[test]
fn md5_from_a_systemd_credential() {
    let peer = |extra: &str| {
        format!(
            "asn = 65000\nrouter-id = \"10.0.0.1\"\n[[peer]]\nname = \"fabric\"\naddress = \"10.0.0.2\"\nremote-asn = 65001\n{extra}\n"
        )
    };
    let c = parse(&peer("md5-password-credential = \"upstream.md5\"")).unwrap();
    assert_eq!(c.peers[0].session.md5_password, Some(Secret("s3cret".into())));
    let e = errors(&peer("md5-password-credential = \"other.md5\""));
    assert!(
        e[0].contains("cannot read md5-password-credential \"other.md5\""),
        "{e:?}"
    );
    let e = errors(&peer("md5-password-credential = \"../etc/shadow\""));
    assert!(e[0].contains("plain name"), "{e:?}");
    let e = errors(&peer(
        "md5-password-credential = \"upstream.md5\"\nmd5-password-env = \"TERN_MD5\"",
    ));
    assert!(e[0].contains("set one of"), "{e:?}");
}

#[test]
fn health_checks_are_read_with_their_gates() {
    let c = parse(
        r#"
asn = 65021
[[prefix-set]]
name = "lb"
members = ["10.96.0.0/16 le 32"]

[[health-check]]
name = "pod-dns"
probe = "dns"
address = "169.254.25.10"
pod-ip = "10.224.1.10"
interval = 0.5
timeout = 0.25
fall = 2

[[health-check]]
name = "ingress"
probe = "https"
url = "https://[fd00::1]:8443/healthz"
expect-status = [200, 204]
namespace = "/run/netns/cni-1234"
prefix-sets = ["lb"]
action = "graceful-shutdown"
prepend = 4

[[health-check]]
name = "kubelet"
probe = "tcp"
address = "127.0.0.1:10250"
action = "report"
"#,
    )
    .unwrap();
    let [dns, https, tcp] = &c.health_checks[..] else {
        panic!("{:?}", c.health_checks)
    };
    assert_eq!(
        dns.probe,
        Probe::Dns {
            server: "169.254.25.10:53".parse().unwrap(),
            name: "kubernetes.default.svc.cluster.local".into()
        }
    );
    assert_eq!(
        dns.namespace,
        Some(ProbeNamespace::PodIp("10.224.1.10".parse().unwrap()))
    );
    assert_eq!(
        (dns.interval, dns.timeout),
        (Duration::from_millis(500), Duration::from_millis(250))
    );
    assert_eq!((dns.rise, dns.fall), (3, 2));
    let g = dns.gate.as_ref().unwrap();
    assert_eq!(g.action, GateAction::Withdraw);
    assert!(
        g.selector.host_routes_only,
        "every VIP, as [fib.vip] selects them"
    );
    let Probe::Http {
        tls,
        address,
        expect,
        path,
        ..
    } = &https.probe
    else {
        panic!("{:?}", https.probe)
    };
    assert!(*tls);
    assert_eq!(
        (address.port(), path.as_str(), expect.as_slice()),
        (8443, "/healthz", &[200, 204][..])
    );
    let g = https.gate.as_ref().unwrap();
    assert_eq!(g.action, GateAction::GracefulShutdown(4));
    assert_eq!(g.selector.prefix_sets[0].name, "lb");
    assert_eq!(tcp.probe, Probe::Tcp("127.0.0.1:10250".parse().unwrap()));
    assert!(tcp.gate.is_none());
}

#[test]
fn health_check_mistakes_are_named_where_they_are() {
    let e = errors(
        r#"asn = 65021
[[health-check]]
name = "a"
probe = "icmp"
[[health-check]]
name = "b"
probe = "http"
url = "http://node.local/healthz"
[[health-check]]
name = "c"
probe = "tcp"
address = "10.0.0.1:80"
interval = 1
timeout = 2
fall = 0
action = "drop"
prefix-sets = ["nope"]
[[health-check]]
name = "d"
probe = "dns"
address = "10.0.0.10"
query = "bad name"
pod-ip = "10.0.0.1"
namespace = "/run/netns/x"
"#,
    );
    assert_errors(
        &e,
        &[
            "4:9: invalid probe \"icmp\"",
            "8:7: invalid url",
            "14:11: timeout must not be longer",
            "15:8: fall is from 1 to 100",
            "16:10: invalid action \"drop\"",
            "17:16: unknown prefix-set \"nope\"",
            "22:9: invalid query name",
        ],
    );
}

#[test]
fn unnumbered_peers_are_named_by_interface() {
    let c = parse(
        "asn = 65000\n[[peer]]\nname = \"uplink1\"\ninterface = \"eth1\"\nremote-asn = \"any\"\nrole = \"upstream\"\nbfd = true\n",
    )
    .unwrap();
    let p = c.peer("uplink1").unwrap();
    assert_eq!(p.session.address, PeerAddress::Interface("eth1".into()));
    // IPv4 over the link-local session needs RFC 8950, on by default here.
    assert!(p.session.extended_next_hop && !p.session.passive && p.bfd.is_some());
    assert_eq!(p.session.address.to_string(), "interface eth1");

    let e = errors(
        "asn = 65000\n\
         [[peer]]\nname = \"both\"\naddress = \"fd00::1\"\ninterface = \"eth1\"\nremote-asn = 1\n\
         [[peer]]\nname = \"neither\"\nremote-asn = 1\n\
         [[peer]]\nname = \"bad\"\ninterface = \"a/b\"\nremote-asn = 1\n\
         [[peer]]\nname = \"src\"\ninterface = \"eth2\"\nremote-asn = 1\nlocal-address = \"fe80::1\"\nmultihop = 2\n\
         [[peer]]\nname = \"twice\"\ninterface = \"eth2\"\nremote-asn = 1\n",
    );
    assert_errors(
        &e,
        &[
            "4:11: a peer has either `address` or `interface`",
            "8:8: peer \"neither\" needs `address`",
            "12:13: invalid interface name \"a/b\"",
            "18:17: an unnumbered peer (`interface`) uses the link's IPv6 link-local address",
            "19:12: an unnumbered peer (`interface`) is directly connected",
            "20:1: peer \"twice\" has the same address as peer \"src\"",
        ],
    );
}
