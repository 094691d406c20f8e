//! Polling with a deadline: how the labs assert on things that happen over
//! time. Sleeps are never assertions.

use std::fmt::Debug;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(100);

/// `secs` seconds, times `TERN_IT_TIMEOUT_SCALE` (e.g. 3 on a slow CI
/// runner).
pub fn timeout(secs: u64) -> Duration {
    let scale: f64 = std::env::var("TERN_IT_TIMEOUT_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs as f64 * scale)
}

/// Polls `check` every 100 ms until it returns `Ok`, and returns that
/// value. `Err` carries the state observed this time; if `within` passes
/// first, panics saying what was awaited, for how long, and the last
/// observed state.
#[track_caller]
pub fn wait_until<T>(within: Duration, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        let last = match check() {
            Ok(v) => return v,
            Err(state) => state,
        };
        if start.elapsed() >= within {
            panic!("timed out after {within:?} waiting for {what}\nlast observed state:\n{last}");
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `done` as fast as it answers (a vtysh or `ip` call) until it
/// holds; returns how long that took. For measuring, where
/// [`wait_until`]'s pause would be the resolution.
#[track_caller]
pub fn time_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !done() {
        assert!(
            t.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    t.elapsed()
}

/// Polls `probe` until `done` accepts what it returned, and returns it; on
/// timeout panics with the last probe result (`{:#?}`).
#[track_caller]
pub fn wait_for<S: Debug>(
    within: Duration,
    what: &str,
    mut probe: impl FnMut() -> S,
    done: impl Fn(&S) -> bool,
) -> S {
    wait_until(within, what, || {
        let s = probe();
        if done(&s) { Ok(s) } else { Err(format!("{s:#?}")) }
    })
}

/// Asserts that `ok` stays true of `probe`'s result for all of `during`
/// (polling every 100 ms): for "this must not happen" checks, after the
/// events that would have caused it. Panics at the first violation with
/// the state that broke it.
#[track_caller]
pub fn holds_for<S: Debug>(
    during: Duration,
    what: &str,
    mut probe: impl FnMut() -> S,
    ok: impl Fn(&S) -> bool,
) {
    let start = Instant::now();
    loop {
        let s = probe();
        if !ok(&s) {
            panic!(
                "{what} stopped holding after {:?}\nobserved state:\n{s:#?}",
                start.elapsed()
            );
        }
        if start.elapsed() >= during {
            return;
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_ok() {
        let mut n = 0;
        let v = wait_until(Duration::from_secs(5), "three polls", || {
            n += 1;
            if n == 3 { Ok(n) } else { Err(format!("n = {n}")) }
        });
        assert_eq!(v, 3);
    }

    #[test]
    fn times_out_with_the_last_state() {
        let e = std::panic::catch_unwind(|| {
            wait_until::<()>(
                Duration::from_millis(250),
                "never",
                || Err("still nothing".into()),
            )
        })
        .unwrap_err();
        let msg = e.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("waiting for never") && msg.contains("still nothing"),
            "{msg}"
        );
    }

    #[test]
    fn holds_for_reports_the_violation() {
        let mut n = 0;
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            holds_for(
                Duration::from_secs(5),
                "n below 2",
                || {
                    n += 1;
                    n
                },
                |n| *n < 2,
            )
        }))
        .unwrap_err();
        let msg = e.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("n below 2 stopped holding") && msg.contains('2'),
            "{msg}"
        );
        holds_for(Duration::from_millis(200), "true", || (), |_| true);
    }
}
