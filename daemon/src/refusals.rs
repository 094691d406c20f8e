//! Connections refused because their source is no configured peer. The
//! status board counts every one exactly; the log must not grow with them,
//! or anyone who reaches port 179 fills the node's log pipeline. So, per
//! one-minute window: the first refusal from each of the first few sources
//! is logged at once, and the rest are summed per source and reported at
//! the end of the window, the busiest sources by name and the others
//! together. A flood costs a bounded number of lines a minute and a bounded
//! amount of memory.
//!
//! Sans I/O: refusals and the time go in, log lines come out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How often the refusals not logged at once are reported.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Sources whose first refusal in a window is logged at once.
const LOGGED_AT_ONCE: usize = 10;
/// Sources named in a window's report; the others are summed.
const NAMED_IN_REPORT: usize = 10;
/// Sources counted one by one in a window; beyond, only in sum.
const TRACKED: usize = 4096;

#[derive(Debug, Default)]
pub struct RefusalLog {
    /// When the current window ends (set by its first refusal).
    window_end: Option<Instant>,
    /// Refusals per source in this window not logged at once.
    unlogged: HashMap<IpAddr, u64>,
    /// Sources seen this window.
    seen: usize,
    /// Refusals from sources beyond `TRACKED`, and how many such sources
    /// at least (a source past the limit is counted at each refusal).
    untracked: u64,
}

/// One line for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// The first refusal from this source in the window.
    First(IpAddr),
    /// More refusals from this source during the window.
    More { source: IpAddr, count: u64 },
    /// More refusals from the other sources during the window.
    Others { sources: usize, count: u64 },
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = WINDOW.as_secs();
        match self {
            Line::First(source) => write!(
                f,
                "connection from {source} refused: the source is not a configured peer (more refusals are summarised every {secs} s)"
            ),
            Line::More { source, count } => write!(
                f,
                "{count} more connections from {source} refused in the last {secs} s: the source is not a configured peer"
            ),
            Line::Others { sources, count } => write!(
                f,
                "{count} more connections from {sources} other sources refused in the last {secs} s"
            ),
        }
    }
}

impl RefusalLog {
    /// A connection from `source` was refused. Returns the line to log now,
    /// if any.
    pub fn refused(&mut self, source: IpAddr, now: Instant) -> Option<Line> {
        self.window_end.get_or_insert(now + WINDOW);
        if let Some(n) = self.unlogged.get_mut(&source) {
            *n += 1;
            return None;
        }
        if self.unlogged.len() >= TRACKED {
            self.untracked += 1;
            return None;
        }
        self.seen += 1;
        if self.seen <= LOGGED_AT_ONCE {
            self.unlogged.insert(source, 0);
            Some(Line::First(source))
        } else {
            self.unlogged.insert(source, 1);
            None
        }
    }

    /// When [`RefusalLog::report`] is due.
    pub fn next_report(&self) -> Option<Instant> {
        self.window_end
    }

    /// Ends the window: the lines that sum up what was not logged at once.
    pub fn report(&mut self, now: Instant) -> Vec<Line> {
        if self.window_end.is_none_or(|end| now < end) {
            return Vec::new();
        }
        let mut more: Vec<(IpAddr, u64)> = self.unlogged.drain().filter(|(_, n)| *n > 0).collect();
        more.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let rest = more.split_off(more.len().min(NAMED_IN_REPORT));
        let mut lines: Vec<Line> = more
            .into_iter()
            .map(|(source, count)| Line::More { source, count })
            .collect();
        let count = rest.iter().map(|(_, n)| n).sum::<u64>() + self.untracked;
        if count > 0 {
            lines.push(Line::Others {
                sources: rest.len() + usize::from(self.untracked > 0),
                count,
            });
        }
        *self = RefusalLog::default();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    /// One source hammering: one line at once, one summary a minute.
    #[test]
    fn a_flood_from_one_source_is_summed() {
        let t = Instant::now();
        let mut log = RefusalLog::default();
        let lines: Vec<Line> = (0..1000).filter_map(|_| log.refused(ip(1), t)).collect();
        assert_eq!(lines, [Line::First(ip(1))]);
        assert_eq!(log.report(t + Duration::from_secs(59)), []);
        assert_eq!(log.next_report(), Some(t + WINDOW));
        assert_eq!(
            log.report(t + WINDOW),
            [Line::More {
                source: ip(1),
                count: 999
            }]
        );
        // A new window: its first refusal is logged again.
        assert_eq!(log.refused(ip(1), t + WINDOW), Some(Line::First(ip(1))));
    }

    /// A thousand sources: a few logged at once, the busiest named in the
    /// report, the rest summed; never more than about twenty lines.
    #[test]
    fn a_flood_from_many_sources_stays_a_few_lines() {
        let t = Instant::now();
        let mut log = RefusalLog::default();
        let mut lines = Vec::new();
        for round in 0..3 {
            for i in 0..1000 {
                lines.extend(log.refused(ip(i), t + Duration::from_millis(round)));
            }
        }
        assert_eq!(lines.len(), LOGGED_AT_ONCE);
        let report = log.report(t + WINDOW);
        assert_eq!(report.len(), NAMED_IN_REPORT + 1);
        let total: u64 = report
            .iter()
            .map(|l| match l {
                Line::More { count, .. } | Line::Others { count, .. } => *count,
                Line::First(_) => 0,
            })
            .sum();
        // Every refusal is accounted for: logged at once or summed.
        assert_eq!(total + LOGGED_AT_ONCE as u64, 3000);
        assert!(
            matches!(report.last(), Some(Line::Others { sources: 990, .. })),
            "{report:?}"
        );
    }
}
