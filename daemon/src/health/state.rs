//! A check's verdict from its probes' results, damped by `rise` and
//! `fall` as load balancers do (HAProxy's `rise`/`fall`). Sans I/O.
//!
//! A check starts passing: a restart of tern must not withdraw what a
//! healthy node advertises (restarts are hitless), so a failure needs
//! `fall` failed probes in a row, from the first probe on. Once failing,
//! it needs `rise` good probes in a row.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub passing: bool,
    /// Good (while failing) or failed (while passing) probes in a row.
    pub streak: u32,
    pub transitions: u64,
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict {
            passing: true,
            streak: 0,
            transitions: 0,
        }
    }
}

impl Verdict {
    /// Takes a probe's result; true when the verdict changed.
    pub fn record(&mut self, ok: bool, rise: u32, fall: u32) -> bool {
        if ok == self.passing {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let needed = if self.passing { fall } else { rise };
        if self.streak < needed {
            return false;
        }
        self.passing = ok;
        self.streak = 0;
        self.transitions += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict;

    fn run(v: &mut Verdict, results: &str) -> Vec<bool> {
        results
            .chars()
            .map(|c| {
                v.record(c == '+', 2, 3);
                v.passing
            })
            .collect()
    }

    #[test]
    fn fall_failures_in_a_row_start_a_failure_and_rise_successes_end_it() {
        let mut v = Verdict::default();
        assert!(v.passing, "a check starts passing");
        // Two failures, a success: still passing; then three in a row.
        assert_eq!(run(&mut v, "--+---"), [true, true, true, true, true, false]);
        assert_eq!(v.transitions, 1);
        // One success is not enough (rise 2), a failure resets the count.
        assert_eq!(run(&mut v, "+-++"), [false, false, false, true]);
        assert_eq!(v.transitions, 2);
        assert_eq!(v.streak, 0);
    }

    #[test]
    fn rise_and_fall_of_one_follow_every_probe() {
        let mut v = Verdict::default();
        let flips: Vec<bool> = "-+-".chars().map(|c| v.record(c == '+', 1, 1)).collect();
        assert_eq!(flips, [true, true, true]);
        assert!(!v.passing);
    }
}
