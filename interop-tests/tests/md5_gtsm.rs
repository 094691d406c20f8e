//! Session protection against a real FRR: TCP MD5 (RFC 2385) with the
//! right key establishes, with a wrong one never does, and a key changed
//! by a reload takes effect; GTSM (RFC 5082) with FRR sending TTL 255
//! establishes, and with FRR sending less never does.

use std::time::Duration;

use interop_tests::{Topology, holds_for, wait_until};
use serde_json::Value;

/// FRR's view of the node: its state and how many sessions it has had
/// (tern recreates a peer whose session settings change, counters and
/// all, so FRR's count is the one that only grows).
fn frr_view(lab: &Topology) -> (String, u64) {
    let node = lab.node(1).id.v6();
    let n = lab.router(0).frr().neighbor(&node).unwrap_or(Value::Null);
    (
        n["bgpState"].as_str().unwrap_or("?").to_owned(),
        n["connectionsEstablished"].as_u64().unwrap_or(0),
    )
}

fn established(lab: &Topology, name: &str) -> bool {
    lab.node(1).tern.peer(name).unwrap_or(Value::Null)["state"] == "established"
        && frr_view(lab).0 == "Established"
}

fn sessions(lab: &Topology) -> u64 {
    frr_view(lab).1
}

/// Writes node 1's configuration with `lines` in its upstream peer and
/// reloads it.
fn reload_with(lab: &mut Topology, lines: &str) {
    let upstreams = lab.node(1).upstreams.clone();
    let config = lab.node(1).tern_config_for(&upstreams, lines, &[], "");
    lab.node_mut(1).tern.set_config(&config);
    let out = lab.node(1).tern.reload_cli().expect("reload");
    println!("{out}");
}

/// A new session after `before` sessions, within `secs`.
fn wait_new_session(lab: &Topology, name: &str, before: u64, secs: u64, what: &str) {
    wait_until(Duration::from_secs(secs), what, || {
        if established(lab, name) && sessions(lab) > before {
            Ok(())
        } else {
            Err(format!("{:?}", frr_view(lab)))
        }
    });
}

fn never_established(lab: &Topology, secs: u64, what: &str) {
    holds_for(
        Duration::from_secs(secs),
        what,
        || frr_view(lab).0,
        |s| s != "Established",
    );
}

#[test]
fn tcp_md5_and_gtsm_against_frr() {
    let Some(mut lab) = Topology::builder("md5").nodes(1).start() else {
        return;
    };
    lab.wait_sessions();
    let up = lab.node(1).upstreams[0].clone();
    let node = lab.node(1).id.v6();
    let frr_bgp = format!("router bgp {}", up.asn);
    let key_file = lab.work().path().join("upstream.md5");
    let frr = |lab: &Topology, lines: &[&str]| {
        let mut all = vec![frr_bgp.as_str()];
        all.extend_from_slice(lines);
        lab.router(0).frr().configure(&all);
    };

    // The right key on both sides.
    std::fs::write(&key_file, "s3cret\n").expect("key file");
    let before = sessions(&lab);
    frr(&lab, &[&format!("neighbor {node} password s3cret")]);
    reload_with(
        &mut lab,
        &format!("md5-password-file = \"{}\"\n", key_file.display()),
    );
    wait_new_session(&lab, &up.name, before, 30, "a session with TCP MD5");

    // FRR changes its key: the session goes and cannot come back.
    frr(&lab, &[&format!("neighbor {node} password wrong-key")]);
    wait_until(Duration::from_secs(10), "the session down", || {
        if established(&lab, &up.name) {
            Err("still up".to_owned())
        } else {
            Ok(())
        }
    });
    never_established(&lab, 8, "no session with a wrong key");

    // tern's key changes by a reload: the session comes back.
    std::fs::write(&key_file, "wrong-key\n").expect("key file");
    let before = sessions(&lab);
    reload_with(
        &mut lab,
        &format!("md5-password-file = \"{}\"\n", key_file.display()),
    );
    wait_new_session(
        &lab,
        &up.name,
        before,
        30,
        "a session after the key changed by reload",
    );

    // GTSM: FRR sends TTL 255 and tern requires it.
    let before = sessions(&lab);
    frr(&lab, &[&format!("neighbor {node} ttl-security hops 1")]);
    reload_with(
        &mut lab,
        &format!(
            "md5-password-file = \"{}\"\nttl-security = 1\n",
            key_file.display()
        ),
    );
    wait_new_session(&lab, &up.name, before, 30, "a session with GTSM");

    // FRR without GTSM, sending hop limit 10 (as a peer two hops away
    // would reach it with 254 or less): tern drops its packets.
    frr(
        &lab,
        &[
            &format!("no neighbor {node} ttl-security hops 1"),
            &format!("neighbor {node} ebgp-multihop 10"),
            // tern dials: its socket requires 255 before the first packet.
            // (On a connection tern accepts, the requirement is set after
            // accept(), so what the peer sent before can pass.)
            &format!("neighbor {node} passive"),
        ],
    );
    lab.router(0).frr().vtysh(&["clear bgp *"]).expect("clear");
    wait_until(Duration::from_secs(10), "the session down", || {
        if established(&lab, &up.name) {
            Err("still up".to_owned())
        } else {
            Ok(())
        }
    });
    never_established(&lab, 8, "no session without GTSM");
}
