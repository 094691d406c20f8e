//! Prefix sets: named lists of prefixes with optional length ranges
//! (`10.96.0.0/16 le 32`), matched against a route's prefix.
//!
//! A set is indexed when it is built, so matching a route costs one binary
//! search per distinct entry length of the route's family (at most 33 or
//! 129) whatever the size of the set, and never allocates.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use ipnet::IpNet;

use crate::{PolicyError, PrefixRangeError};

/// One entry of a prefix set: routes inside `prefix` whose length is in
/// [`PrefixEntry::lengths`]. Text form: `10.96.0.0/16`, `10.96.0.0/16 le 32`,
/// `fd00::/8 ge 48 le 64`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrefixEntry {
    pub prefix: IpNet,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

impl PrefixEntry {
    /// An entry whose bounds can match something: `prefix` has no host
    /// bits set, `ge` is at least the prefix length, `le` at least `ge`
    /// (or the prefix length), and neither is longer than the family allows.
    pub fn new(prefix: IpNet, ge: Option<u8>, le: Option<u8>) -> Result<Self, PolicyError> {
        let entry = PrefixEntry { prefix, ge, le };
        entry.validate()?;
        Ok(entry)
    }

    /// The prefix lengths the entry accepts: exactly the prefix length when
    /// neither bound is given, up to `le` from the prefix length when only
    /// `le` is, and from `ge` to the family's longest when only `ge` is.
    pub fn lengths(&self) -> RangeInclusive<u8> {
        let (len, max) = (self.prefix.prefix_len(), self.prefix.max_prefix_len());
        match (self.ge, self.le) {
            (None, None) => len..=len,
            (None, Some(le)) => len..=le,
            (Some(ge), None) => ge..=max,
            (Some(ge), Some(le)) => ge..=le,
        }
    }

    /// Whether `prefix` is inside the entry's prefix and of an accepted
    /// length. The linear form of [`PrefixSet::matches`].
    pub fn matches(&self, prefix: &IpNet) -> bool {
        self.prefix.contains(prefix) && self.lengths().contains(&prefix.prefix_len())
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let network = self.prefix.trunc();
        if network != self.prefix {
            return Err(PolicyError::HostBits {
                prefix: self.prefix,
                network,
            });
        }
        let (len, max) = (self.prefix.prefix_len(), self.prefix.max_prefix_len());
        let problem = match (self.ge, self.le) {
            (Some(ge), _) if ge > max => Some(PrefixRangeError::TooLong {
                bound: "ge",
                value: ge,
                max,
            }),
            (_, Some(le)) if le > max => Some(PrefixRangeError::TooLong {
                bound: "le",
                value: le,
                max,
            }),
            (Some(ge), _) if ge < len => Some(PrefixRangeError::GeBelowPrefix { ge, len, max }),
            (Some(ge), Some(le)) if le < ge => Some(PrefixRangeError::LeBelowGe { ge, le }),
            (None, Some(le)) if le < len => Some(PrefixRangeError::LeBelowPrefix { le, len, max }),
            _ => None,
        };
        match problem {
            Some(problem) => Err(PolicyError::PrefixRange {
                entry: self.to_string(),
                problem,
            }),
            None => Ok(()),
        }
    }
}

impl fmt::Display for PrefixEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.prefix)?;
        if let Some(ge) = self.ge {
            write!(f, " ge {ge}")?;
        }
        if let Some(le) = self.le {
            write!(f, " le {le}")?;
        }
        Ok(())
    }
}

impl FromStr for PrefixEntry {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = |detail| PolicyError::PrefixEntry {
            text: s.to_owned(),
            detail,
        };
        let mut words = s.split_whitespace();
        let prefix_text = words.next().ok_or_else(|| syntax("it is empty"))?;
        let prefix: IpNet = prefix_text.parse().map_err(|_| PolicyError::Prefix {
            text: prefix_text.to_owned(),
        })?;
        let (mut ge, mut le) = (None, None);
        while let Some(keyword) = words.next() {
            let bound = match keyword {
                "ge" => &mut ge,
                "le" => &mut le,
                _ => return Err(syntax("after the prefix only ge and le may follow")),
            };
            if bound.is_some() {
                return Err(syntax("a bound is given twice"));
            }
            let value = words
                .next()
                .ok_or_else(|| syntax("ge and le need a length after them"))?;
            *bound = Some(
                value
                    .parse::<u8>()
                    .map_err(|_| syntax("a length must be a number 0-128"))?,
            );
        }
        PrefixEntry::new(prefix, ge, le)
    }
}

/// A named set of [`PrefixEntry`]s. A prefix matches the set when it
/// matches any entry.
#[derive(Clone)]
pub struct PrefixSet {
    pub name: String,
    entries: Vec<PrefixEntry>,
    v4: LengthIndex,
    v6: LengthIndex,
}

impl PrefixSet {
    /// Builds and indexes a set, checking every entry as
    /// [`PrefixEntry::new`] does.
    pub fn new(name: impl Into<String>, entries: Vec<PrefixEntry>) -> Result<Self, PolicyError> {
        for entry in &entries {
            entry.validate()?;
        }
        let (v4, v6) = entries
            .iter()
            .partition::<Vec<_>, _>(|e| matches!(e.prefix, IpNet::V4(_)));
        Ok(PrefixSet {
            name: name.into(),
            v4: LengthIndex::new(&v4),
            v6: LengthIndex::new(&v6),
            entries,
        })
    }

    /// The entries, in the order they were given.
    pub fn entries(&self) -> &[PrefixEntry] {
        &self.entries
    }

    /// Whether `prefix` matches any entry of its family.
    pub fn matches(&self, prefix: &IpNet) -> bool {
        match prefix {
            IpNet::V4(p) => self
                .v4
                .matches(u128::from(p.addr().to_bits()), 32, p.prefix_len()),
            IpNet::V6(p) => self.v6.matches(p.addr().to_bits(), 128, p.prefix_len()),
        }
    }
}

impl PartialEq for PrefixSet {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.entries == other.entries
    }
}

impl Eq for PrefixSet {}

impl fmt::Debug for PrefixSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrefixSet")
            .field("name", &self.name)
            .field("entries", &self.entries)
            .finish()
    }
}

/// The entries of one family, grouped by prefix length (shortest first);
/// within a group sorted by network, so each group is one binary search.
#[derive(Clone)]
struct LengthIndex {
    groups: Vec<LengthGroup>,
}

#[derive(Clone)]
struct LengthGroup {
    prefix_len: u8,
    /// (network bits, shortest accepted length, longest accepted length).
    entries: Vec<(u128, u8, u8)>,
}

/// The leading `len` bits of an address `width` bits wide, as a number.
fn network_bits(addr: u128, width: u8, len: u8) -> u128 {
    addr.checked_shr(u32::from(width.saturating_sub(len)))
        .unwrap_or(0)
}

impl LengthIndex {
    fn new(entries: &[&PrefixEntry]) -> Self {
        let mut keyed: Vec<(u8, u128, u8, u8)> = entries
            .iter()
            .map(|e| {
                let (width, addr) = match e.prefix {
                    IpNet::V4(p) => (32, u128::from(p.addr().to_bits())),
                    IpNet::V6(p) => (128, p.addr().to_bits()),
                };
                let len = e.prefix.prefix_len();
                let lengths = e.lengths();
                (
                    len,
                    network_bits(addr, width, len),
                    *lengths.start(),
                    *lengths.end(),
                )
            })
            .collect();
        keyed.sort_unstable();
        keyed.dedup();
        let mut groups: Vec<LengthGroup> = Vec::new();
        for (prefix_len, bits, lo, hi) in keyed {
            match groups.last_mut() {
                Some(group) if group.prefix_len == prefix_len => group.entries.push((bits, lo, hi)),
                _ => groups.push(LengthGroup {
                    prefix_len,
                    entries: vec![(bits, lo, hi)],
                }),
            }
        }
        LengthIndex { groups }
    }

    fn matches(&self, addr: u128, width: u8, len: u8) -> bool {
        self.groups.iter().take_while(|g| g.prefix_len <= len).any(|g| {
            let bits = network_bits(addr, width, g.prefix_len);
            let start = g.entries.partition_point(|e| e.0 < bits);
            g.entries[start..]
                .iter()
                .take_while(|e| e.0 == bits)
                .any(|&(_, lo, hi)| (lo..=hi).contains(&len))
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::net;

    fn set(entries: &[&str]) -> PrefixSet {
        PrefixSet::new("test", entries.iter().map(|e| e.parse().unwrap()).collect()).unwrap()
    }

    #[test]
    fn entry_text_forms() {
        let ok = [
            ("10.96.0.0/16", "10.96.0.0/16", 16..=16),
            ("10.96.0.0/16 le 32", "10.96.0.0/16 le 32", 16..=32),
            ("10.96.0.0/16 ge 24", "10.96.0.0/16 ge 24", 24..=32),
            ("10.96.0.0/16 ge 24 le 28", "10.96.0.0/16 ge 24 le 28", 24..=28),
            ("10.96.0.0/16   le 28  ge 24", "10.96.0.0/16 ge 24 le 28", 24..=28),
            ("fd00::/8 ge 48 le 64", "fd00::/8 ge 48 le 64", 48..=64),
            ("fd00::/8 le 128", "fd00::/8 le 128", 8..=128),
            ("0.0.0.0/0", "0.0.0.0/0", 0..=0),
            ("0.0.0.0/0 le 32", "0.0.0.0/0 le 32", 0..=32),
            ("::/0 ge 0", "::/0 ge 0", 0..=128),
            ("192.0.2.1/32", "192.0.2.1/32", 32..=32),
            ("10.0.0.0/8 ge 8 le 8", "10.0.0.0/8 ge 8 le 8", 8..=8),
        ];
        for (text, shown, lengths) in ok {
            let entry: PrefixEntry = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(entry.to_string(), shown, "{text}");
            assert_eq!(entry.lengths(), lengths, "{text}");
        }
    }

    #[test]
    fn entry_text_errors() {
        let bad = [
            ("", "it is empty"),
            ("10.96.0.0", "expected ADDRESS/LENGTH"),
            ("10.96.0.0/33", "expected ADDRESS/LENGTH"),
            ("cilium", "expected ADDRESS/LENGTH"),
            (
                "10.96.0.1/16",
                "host bits set: expected the network address 10.96.0.0/16",
            ),
            ("10.96.0.0/16 lt 24", "only ge and le may follow"),
            ("10.96.0.0/16 le", "need a length"),
            ("10.96.0.0/16 le x", "a number 0-128"),
            ("10.96.0.0/16 le 300", "a number 0-128"),
            ("10.96.0.0/16 le 24 le 28", "given twice"),
            (
                "10.96.0.0/16 ge 8",
                "ge 8 is shorter than the prefix length 16: expected ge between 16 and 32",
            ),
            (
                "10.96.0.0/16 le 8",
                "le 8 is shorter than the prefix length 16: expected le between 16 and 32",
            ),
            ("10.96.0.0/16 ge 28 le 24", "le 24 is less than ge 28"),
            ("10.96.0.0/16 le 33", "le 33 is longer than 32"),
            ("10.96.0.0/16 ge 40", "ge 40 is longer than 32"),
            ("fd00::/8 le 129", "le 129 is longer than 128"),
        ];
        for (text, message) in bad {
            let err = text.parse::<PrefixEntry>().unwrap_err().to_string();
            assert!(err.contains(message), "{text:?}: {err}");
        }
    }

    #[test]
    fn constructors_validate() {
        assert!(PrefixEntry::new(net("10.0.0.0/8"), Some(4), None).is_err());
        let unchecked = PrefixEntry {
            prefix: net("10.0.0.0/8"),
            ge: None,
            le: Some(4),
        };
        assert!(matches!(
            PrefixSet::new("s", vec![unchecked]),
            Err(PolicyError::PrefixRange {
                problem: PrefixRangeError::LeBelowPrefix {
                    le: 4,
                    len: 8,
                    max: 32
                },
                ..
            })
        ));
    }

    #[test]
    fn matching() {
        let cases: &[(&[&str], &str, bool)] = &[
            // Exact: only the prefix itself.
            (&["10.96.0.0/16"], "10.96.0.0/16", true),
            (&["10.96.0.0/16"], "10.96.1.0/24", false),
            (&["10.96.0.0/16"], "10.0.0.0/8", false),
            (&["10.96.0.0/16"], "10.97.0.0/16", false),
            // le: from the prefix length up to le.
            (&["10.96.0.0/16 le 24"], "10.96.0.0/16", true),
            (&["10.96.0.0/16 le 24"], "10.96.7.0/24", true),
            (&["10.96.0.0/16 le 24"], "10.96.7.128/25", false),
            (&["10.96.0.0/16 le 24"], "10.0.0.0/8", false),
            // ge: from ge to the longest.
            (&["10.96.0.0/16 ge 24"], "10.96.0.0/16", false),
            (&["10.96.0.0/16 ge 24"], "10.96.7.0/24", true),
            (&["10.96.0.0/16 ge 24"], "10.96.7.1/32", true),
            (&["10.96.0.0/16 ge 24"], "10.95.7.1/32", false),
            // ge and le.
            (&["10.96.0.0/16 ge 20 le 24"], "10.96.16.0/20", true),
            (&["10.96.0.0/16 ge 20 le 24"], "10.96.16.0/19", false),
            (&["10.96.0.0/16 ge 20 le 24"], "10.96.16.0/25", false),
            // Family mismatch, both ways, including ::/0.
            (&["0.0.0.0/0 le 32"], "fd00::1/128", false),
            (&["::/0 le 128"], "10.0.0.1/32", false),
            (&["::ffff:0:0/96 le 128"], "10.0.0.1/32", false),
            // /0: exact default route, or everything.
            (&["0.0.0.0/0"], "0.0.0.0/0", true),
            (&["0.0.0.0/0"], "10.0.0.0/8", false),
            (&["0.0.0.0/0 le 32"], "10.0.0.0/8", true),
            (&["::/0"], "::/0", true),
            (&["::/0 ge 0"], "2001:db8::/32", true),
            // Host routes, as Cilium advertises VIPs.
            (&["10.100.0.0/24 ge 32"], "10.100.0.7/32", true),
            (&["10.100.0.0/24 ge 32"], "10.100.0.0/24", false),
            (&["fd00:100::/64 ge 128"], "fd00:100::7/128", true),
            (&["fd00:100::/64 ge 128"], "fd00:101::7/128", false),
            (&["192.0.2.7/32"], "192.0.2.7/32", true),
            (&["192.0.2.7/32"], "192.0.2.6/32", false),
            // Several entries: any of them.
            (
                &["10.96.0.0/12 le 32", "10.244.1.0/24", "fd00::/8 le 64"],
                "10.244.1.0/24",
                true,
            ),
            (
                &["10.96.0.0/12 le 32", "10.244.1.0/24", "fd00::/8 le 64"],
                "10.244.2.0/24",
                false,
            ),
            (
                &["10.96.0.0/12 le 32", "10.244.1.0/24", "fd00::/8 le 64"],
                "10.100.3.3/32",
                true,
            ),
            (
                &["10.96.0.0/12 le 32", "10.244.1.0/24", "fd00::/8 le 64"],
                "fd12::/48",
                true,
            ),
            // The same prefix with different ranges.
            (&["10.0.0.0/8", "10.0.0.0/8 ge 30"], "10.1.1.0/30", true),
            (&["10.0.0.0/8", "10.0.0.0/8 ge 30"], "10.1.1.0/24", false),
            // The empty set matches nothing.
            (&[], "10.0.0.0/8", false),
        ];
        for (entries, prefix, expected) in cases {
            let s = set(entries);
            assert_eq!(s.matches(&net(prefix)), *expected, "{entries:?} {prefix}");
            let linear = s.entries().iter().any(|e| e.matches(&net(prefix)));
            assert_eq!(linear, *expected, "linear {entries:?} {prefix}");
        }
    }

    #[test]
    fn equality_ignores_the_index() {
        assert_eq!(set(&["10.0.0.0/8"]), set(&["10.0.0.0/8"]));
        assert_ne!(set(&["10.0.0.0/8"]), set(&["10.0.0.0/8 le 9"]));
        assert_eq!(
            format!("{:?}", set(&[])),
            r#"PrefixSet { name: "test", entries: [] }"#
        );
    }

    fn arb_net() -> impl Strategy<Value = IpNet> {
        // Few distinct high bits, so that entries and routes overlap often.
        prop_oneof![
            (0u32..16, 0u8..=32).prop_map(|(hi, len)| {
                let addr = std::net::Ipv4Addr::from_bits(hi << 28 | 0x0a0b0c0d);
                IpNet::V4(ipnet::Ipv4Net::new_assert(addr, len).trunc())
            }),
            (0u128..16, 0u8..=128).prop_map(|(hi, len)| {
                let addr = std::net::Ipv6Addr::from_bits(hi << 124 | 0xfd00 << 100 | 7);
                IpNet::V6(ipnet::Ipv6Net::new_assert(addr, len).trunc())
            }),
        ]
    }

    fn arb_entry() -> impl Strategy<Value = PrefixEntry> {
        (arb_net(), any::<(u8, u8)>(), 0u8..4).prop_map(|(prefix, (a, b), shape)| {
            let (len, max) = (prefix.prefix_len(), prefix.max_prefix_len());
            let span = u16::from(max - len) + 1;
            let x = len + (u16::from(a) % span) as u8;
            let y = len + (u16::from(b) % span) as u8;
            let (ge, le) = match shape {
                0 => (None, None),
                1 => (None, Some(x)),
                2 => (Some(x), None),
                _ => (Some(x.min(y)), Some(x.max(y))),
            };
            PrefixEntry::new(prefix, ge, le).unwrap()
        })
    }

    proptest! {
        /// The index agrees with checking every entry in turn.
        #[test]
        fn index_agrees_with_linear_scan(
            entries in prop::collection::vec(arb_entry(), 0..40),
            routes in prop::collection::vec(arb_net(), 1..40),
        ) {
            let s = PrefixSet::new("p", entries.clone()).unwrap();
            for route in routes {
                prop_assert_eq!(s.matches(&route), entries.iter().any(|e| e.matches(&route)), "{}", route);
            }
        }

        /// Every entry's text form parses back to it.
        #[test]
        fn entry_text_round_trip(entry in arb_entry()) {
            prop_assert_eq!(entry.to_string().parse::<PrefixEntry>(), Ok(entry));
        }
    }
}
