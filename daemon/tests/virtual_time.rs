//! Two speakers' session state machines and RIBs against each other in
//! virtual time (see `pair/mod.rs`): the cases that depend on the clock —
//! hold timer expiry, connection collision, graceful restart in both roles
//! and End-of-RIB deferral — exactly, with no sockets and no sleeps.

mod pair;

use std::time::Duration;

use bgp_proto::notification::CeaseSubcode;
use pair::{A, B, Note, Pair};
use tern::session::peer::ConnId;

/// A speaker's configuration: one upstream-role peer (routes it originates
/// are exported, routes it learns are accepted).
fn node(me: u8, other: u8, extra: &str, peer_extra: &str) -> String {
    format!(
        r#"router-id = "10.0.0.{me}"
asn = 6500{me}
originate = ["10.{me}.1.0/24", "10.{me}.2.0/24"]
{extra}
[[peer]]
name = "peer"
address = "10.0.0.{other}"
remote-asn = 6500{other}
role = "upstream"
hold-time = 9
connect-retry = 1
{peer_extra}
"#
    )
}

fn pair(a_extra: &str, b_extra: &str, peer_extra: &str) -> Pair {
    Pair::new(
        ("a", "10.0.0.1", &node(1, 2, a_extra, peer_extra)),
        ("b", "10.0.0.2", &node(2, 1, b_extra, peer_extra)),
    )
}

/// Both started, the session up and each side holding the other's routes.
fn up(p: &mut Pair) {
    p.start(A);
    p.start(B);
    assert!(
        p.run_until(Duration::from_secs(30), |p| {
            p.a().has_route("10.2.2.0/24") && p.b().has_route("10.1.2.0/24")
        }),
        "the session comes up and routes are exchanged"
    );
}

fn established_count(p: &Pair, s: usize) -> usize {
    p.speakers[s]
        .notes_where(|n| matches!(n, Note::Established(_)))
        .len()
}

/// A peer that stops talking: the session ends with Hold Timer Expired
/// exactly one negotiated hold time after its last message, and its
/// routes go at once (a silent peer may be dead: no graceful restart).
#[test]
fn a_silent_peer_hits_the_hold_timer() {
    let mut p = pair("", "", "");
    up(&mut p);
    p.speakers[B].muted = true;
    let last = p.a().last_received.expect("a heard from b");
    assert!(p.run_until(Duration::from_secs(30), |p| !p.a().established()));
    let waited = p.now - last;
    assert_eq!(waited, Duration::from_secs(9), "the negotiated hold time");
    let sent = p.a().notes_where(|n| matches!(n, Note::Sent(_)));
    let Some((_, Note::Sent(n))) = sent.last() else {
        panic!("a sent no NOTIFICATION")
    };
    assert_eq!((n.code, n.subcode), (4, 0), "{n}");
    let error = p.a().peer.last_error().expect("an error").to_string();
    assert!(error.contains("Hold Timer Expired"), "{error}");
    assert!(!p.a().has_route("10.2.1.0/24") && !p.a().has_route("10.2.2.0/24"));
    assert_eq!(p.a().stale_routes(), 0);
}

/// Both sides dial at once: one session survives, the one dialled by the
/// side with the higher BGP identifier (b), and it stays up.
#[test]
fn simultaneous_dials_resolve_to_one_session() {
    let mut p = pair("", "", "");
    p.start(A);
    p.start(B);
    // Both dialled at their start: two connections.
    assert!(p.run_until(Duration::from_secs(10), |p| p.a().established()
        && p.b().established()));
    p.run_for(Duration::from_secs(60));
    for s in [A, B] {
        assert!(p.speakers[s].established());
        assert_eq!(established_count(&p, s), 1, "{}", p.speakers[s].name);
    }
    assert_eq!(p.a().peer.established_conn(), Some(ConnId::Incoming));
    assert_eq!(p.b().peer.established_conn(), Some(ConnId::Outgoing));
    // Each side detects the collision and closes a's dial with Cease/7.
    for s in [A, B] {
        let ceases = p.speakers[s].notes_where(
            |n| matches!(n, Note::Sent(n) if n.is_cease(CeaseSubcode::ConnectionCollisionResolution)),
        );
        assert_eq!(ceases.len(), 1, "{}", p.speakers[s].name);
    }
    assert!(p.a().peer.last_error().is_none(), "a collision is not an error");
    assert!(p.a().has_route("10.2.1.0/24") && p.b().has_route("10.1.1.0/24"));
}

/// Graceful restart, helper role (RFC 4724 §4.2): b restarts; a keeps its
/// routes, stale, and never withdraws those b sends again; what b does not
/// send again goes at b's End-of-RIB.
#[test]
fn helper_keeps_a_restarting_peers_routes_until_its_end_of_rib() {
    let mut p = pair("", "", "");
    up(&mut p);
    let before = p.a().notes.len();
    p.kill(B);
    assert!(!p.a().established());
    assert_eq!(p.a().stale_routes(), 2);
    p.run_for(Duration::from_secs(30));
    assert!(p.a().has_route("10.2.1.0/24") && p.a().has_route("10.2.2.0/24"));
    // b comes back with one prefix fewer, and the R bit.
    let b = node(2, 1, "", "").replace(r#", "10.2.2.0/24""#, "");
    p.restart(B, Some(&b), true);
    assert!(p.run_until(Duration::from_secs(30), |p| !p.a().has_route("10.2.2.0/24")));
    assert!(p.a().established());
    let gr = p.a().peer.negotiated().and_then(|n| n.graceful_restart.clone());
    assert!(gr.is_some_and(|g| g.restarting), "b set the R bit");
    assert!(p.a().has_route("10.2.1.0/24"));
    assert_eq!(p.a().stale_routes(), 0);
    // The kept prefix never left a's FIB.
    let withdrawn = p.a().withdrawn_since(before);
    assert_eq!(withdrawn, ["10.2.2.0/24"]);
    let down = p.a().notes_where(|n| {
        matches!(
            n,
            Note::Down {
                routes_kept: true,
                ..
            }
        )
    });
    assert_eq!(down.len(), 1);
}

/// A restarting peer that does not come back loses its routes when the
/// restart time it advertised runs out, not before.
#[test]
fn helper_gives_up_after_the_advertised_restart_time() {
    let mut p = pair(
        "[graceful-restart]\nrestart-time = 60",
        "[graceful-restart]\nrestart-time = 45",
        "",
    );
    up(&mut p);
    p.kill(B);
    let killed = p.elapsed();
    assert!(p.run_until(Duration::from_secs(300), |p| !p.a().has_route("10.2.1.0/24")));
    // b advertised 45 s.
    assert_eq!(p.elapsed() - killed, Duration::from_secs(45));
    assert!(!p.a().has_route("10.2.2.0/24"));
    assert_eq!(p.a().stale_routes(), 0);
}

/// Graceful restart, restarting role (RFC 4724 §4.1): after its own
/// restart a defers best path, export and the FIB until b's End-of-RIB;
/// b keeps a's routes throughout.
#[test]
fn a_restarting_speaker_defers_selection_until_end_of_rib() {
    let mut p = pair("", "", "");
    up(&mut p);
    p.kill(A);
    let before = p.a().notes.len();
    p.restart(A, None, true);
    assert!(p.run_until(Duration::from_secs(30), |p| p.a().has_route("10.2.1.0/24")));
    let after = &p.a().notes[before..];
    let established = after
        .iter()
        .find(|(_, n)| matches!(n, Note::Established(_)))
        .map(|(t, _)| *t)
        .expect("established again");
    // Nothing reached the FIB before convergence, which came with b's
    // End-of-RIB once the session was up: then the whole selection, once,
    // and only after it the signal that lets the FIB sweep.
    let first_change = after
        .iter()
        .position(|(_, n)| matches!(n, Note::LocRib(_)))
        .expect("routes selected");
    let converged = after
        .iter()
        .position(|(_, n)| matches!(n, Note::Converged))
        .expect("converged");
    assert!(first_change < converged, "{after:?}");
    assert!(after[first_change].0 >= established);
    let reported: Vec<_> = after[..converged]
        .iter()
        .filter_map(|(_, n)| match n {
            Note::LocRib(c) => Some(c.prefix),
            _ => None,
        })
        .collect();
    let mut once = reported.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), reported.len(), "{reported:?}");
    assert!(
        after[converged..]
            .iter()
            .all(|(_, n)| !matches!(n, Note::LocRib(_))),
        "{after:?}"
    );
    assert!(!p.a().rib.is_deferring());
    // b kept a's routes while a restarted.
    let b_withdrew = p
        .b()
        .notes_where(|n| matches!(n, Note::LocRib(c) if c.selected.is_none()));
    assert!(b_withdrew.is_empty(), "{b_withdrew:?}");
    assert!(p.b().has_route("10.1.1.0/24") && p.b().has_route("10.1.2.0/24"));
}

/// After a restart with no peer to wait for, deferral ends at
/// `select-defer-time`, and only then do routes reach the FIB.
#[test]
fn deferral_ends_at_select_defer_time_when_no_end_of_rib_comes() {
    let mut p = pair("[graceful-restart]\nselect-defer-time = 30", "", "");
    up(&mut p);
    p.kill(A);
    p.kill(B);
    let restarted_at = p.elapsed();
    p.restart(A, None, true);
    assert!(p.a().rib.is_deferring());
    assert!(p.run_until(Duration::from_secs(300), |p| !p.a().rib.is_deferring()));
    assert_eq!(p.elapsed() - restarted_at, Duration::from_secs(30));
    let converged = p.a().notes_where(|n| matches!(n, Note::Converged));
    assert_eq!(
        converged.last().map(|(t, _)| *t - restarted_at),
        Some(Duration::from_secs(30))
    );
    // Its own prefixes are selected only now.
    assert!(p.a().has_route("10.1.1.0/24"));
}

/// A connection from the peer's address that never sends its OPEN (it
/// used to hold the only incoming slot for 240 s) does not lock the real
/// peer out: the real peer's connection replaces it, and the session comes
/// up within the real peer's connect-retry.
#[test]
fn a_silent_connection_does_not_lock_the_real_peer_out() {
    // b is passive: only a dials.
    let mut p = pair("", "", "");
    p.speakers[B] = pair::Speaker::new("b", "10.0.0.2", &node(2, 1, "", "passive = true"), false, p.now);
    p.start(B);
    p.ghost_connect(B);
    p.ghost_connect(B);
    p.start(A);
    assert!(p.run_until(Duration::from_secs(1), |p| p.a().established()
        && p.b().established()));
    assert!(p.run_until(Duration::from_secs(10), |p| p.b().has_route("10.1.1.0/24")));
    assert_eq!(established_count(&p, B), 1);
}

/// Graceful restart helper, when the peer vanished without its TCP
/// closing (a power cut) and comes back before any timer noticed: its new
/// connection's OPEN ends the old session at once, routes kept as stale
/// (RFC 4724 §4.2), instead of being refused until the hold timer runs out.
#[test]
fn a_restarted_peer_replaces_a_session_that_still_looks_established() {
    let mut p = pair("", "", "");
    up(&mut p);
    let before = p.a().notes.len();
    p.vanish(B);
    assert!(p.a().established(), "a has not noticed");
    let b = node(2, 1, "", "").replace(r#", "10.2.2.0/24""#, "");
    p.restart(B, Some(&b), true);
    // Well before a's hold timer (9 s) would have ended the old session.
    assert!(p.run_until(Duration::from_secs(2), |p| !p.a().has_route("10.2.2.0/24")));
    assert!(p.a().established() && p.b().established());
    let down = p.a().notes_where(|n| matches!(n, Note::Down { .. }));
    let Some((_, Note::Down { reason, routes_kept })) = down.last() else {
        panic!("the old session went down")
    };
    assert!(reason.contains("replaced"), "{reason}");
    assert!(*routes_kept);
    // The prefix b still has never left a's FIB; the one it dropped went
    // at its End-of-RIB.
    let withdrawn = p.a().withdrawn_since(before);
    assert_eq!(withdrawn, ["10.2.2.0/24"]);
    assert!(p.a().has_route("10.2.1.0/24"));
}
