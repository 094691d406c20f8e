//! Community sets: named lists of standard (RFC 1997), large (RFC 8092)
//! and extended (RFC 4360) communities that a route is matched against or
//! that are removed from it. Standard and large members may be wildcard
//! patterns (`65000:*`, `*:100`, `65000:1:*`).
//!
//! Sets are indexed when built: exact members are binary-searched, so
//! matching a route costs a few comparisons per community it carries.

use std::fmt;
use std::str::FromStr;

use bgp_proto::{Community, ExtCommunity, LargeCommunity};

use crate::PolicyError;

/// A standard community or a pattern of them: `65000:100`, a well-known
/// name such as `no-export`, `65000:*`, `*:100` or `*:*`. `None` in a part
/// is the `*` that matches any value of it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommunityPattern {
    pub asn: Option<u16>,
    pub value: Option<u16>,
}

impl CommunityPattern {
    /// The pattern matching exactly `community`.
    pub fn exact(community: Community) -> Self {
        CommunityPattern {
            asn: Some(community.asn()),
            value: Some(community.value()),
        }
    }

    pub fn matches(&self, community: Community) -> bool {
        self.asn.is_none_or(|a| a == community.asn()) && self.value.is_none_or(|v| v == community.value())
    }
}

impl fmt::Display for CommunityPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.asn, self.value) {
            (Some(asn), Some(value)) => Community::new(asn, value).fmt(f),
            (asn, value) => {
                write_part(f, asn)?;
                f.write_str(":")?;
                write_part(f, value)
            }
        }
    }
}

fn write_part<T: fmt::Display>(f: &mut fmt::Formatter<'_>, part: Option<T>) -> fmt::Result {
    match part {
        Some(v) => v.fmt(f),
        None => f.write_str("*"),
    }
}

/// A pattern part: a number, or `*` for any.
fn parse_part<T: FromStr>(text: &str) -> Option<Option<T>> {
    if text == "*" {
        Some(None)
    } else {
        text.parse().ok().map(Some)
    }
}

impl FromStr for CommunityPattern {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(community) = s.parse::<Community>() {
            return Ok(CommunityPattern::exact(community));
        }
        let err = || PolicyError::CommunityPattern { text: s.to_owned() };
        let (asn, value) = s.split_once(':').ok_or_else(err)?;
        Ok(CommunityPattern {
            asn: parse_part(asn).ok_or_else(err)?,
            value: parse_part(value).ok_or_else(err)?,
        })
    }
}

/// A named set of standard community patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommunitySet {
    pub name: String,
    members: Vec<CommunityPattern>,
    /// Exact members, sorted.
    exact: Vec<Community>,
    /// The ASNs of `ASN:*` members and the values of `*:VALUE` members, sorted.
    any_value_of: Vec<u16>,
    any_asn_with: Vec<u16>,
    /// A `*:*` member.
    any: bool,
}

impl CommunitySet {
    pub fn new(name: impl Into<String>, members: Vec<CommunityPattern>) -> Self {
        let (mut exact, mut any_value_of, mut any_asn_with, mut any) =
            (Vec::new(), Vec::new(), Vec::new(), false);
        for m in &members {
            match (m.asn, m.value) {
                (Some(asn), Some(value)) => exact.push(Community::new(asn, value)),
                (Some(asn), None) => any_value_of.push(asn),
                (None, Some(value)) => any_asn_with.push(value),
                (None, None) => any = true,
            }
        }
        for list in [&mut any_value_of, &mut any_asn_with] {
            list.sort_unstable();
        }
        exact.sort_unstable();
        CommunitySet {
            name: name.into(),
            members,
            exact,
            any_value_of,
            any_asn_with,
            any,
        }
    }

    /// The members, in the order they were given.
    pub fn members(&self) -> &[CommunityPattern] {
        &self.members
    }

    /// Whether any member matches `community`.
    pub fn contains(&self, community: Community) -> bool {
        self.any
            || self.exact.binary_search(&community).is_ok()
            || self.any_value_of.binary_search(&community.asn()).is_ok()
            || self.any_asn_with.binary_search(&community.value()).is_ok()
    }

    /// Whether any of `communities` is in the set.
    pub fn matches_any(&self, communities: &[Community]) -> bool {
        communities.iter().any(|c| self.contains(*c))
    }
}

/// A large community or a pattern of them: `GLOBAL:LOCAL1:LOCAL2`, each
/// part a number or `*` (`None`) for any.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunityPattern {
    pub global: Option<u32>,
    pub local1: Option<u32>,
    pub local2: Option<u32>,
}

impl LargeCommunityPattern {
    /// The pattern matching exactly `community`.
    pub fn exact(community: LargeCommunity) -> Self {
        LargeCommunityPattern {
            global: Some(community.global),
            local1: Some(community.local1),
            local2: Some(community.local2),
        }
    }

    pub fn matches(&self, c: LargeCommunity) -> bool {
        self.global.is_none_or(|g| g == c.global)
            && self.local1.is_none_or(|l| l == c.local1)
            && self.local2.is_none_or(|l| l == c.local2)
    }

    fn as_exact(&self) -> Option<LargeCommunity> {
        Some(LargeCommunity::new(self.global?, self.local1?, self.local2?))
    }
}

impl fmt::Display for LargeCommunityPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_part(f, self.global)?;
        f.write_str(":")?;
        write_part(f, self.local1)?;
        f.write_str(":")?;
        write_part(f, self.local2)
    }
}

impl FromStr for LargeCommunityPattern {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PolicyError::LargeCommunityPattern { text: s.to_owned() };
        let mut parts = s.split(':').map(|p| parse_part::<u32>(p).ok_or_else(err));
        let (Some(global), Some(local1), Some(local2), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        Ok(LargeCommunityPattern {
            global: global?,
            local1: local1?,
            local2: local2?,
        })
    }
}

/// A named set of large community patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LargeCommunitySet {
    pub name: String,
    members: Vec<LargeCommunityPattern>,
    /// Exact members, sorted.
    exact: Vec<LargeCommunity>,
    /// Members with a `*`, checked one by one.
    wildcards: Vec<LargeCommunityPattern>,
}

impl LargeCommunitySet {
    pub fn new(name: impl Into<String>, members: Vec<LargeCommunityPattern>) -> Self {
        let mut exact: Vec<LargeCommunity> = members.iter().filter_map(|m| m.as_exact()).collect();
        exact.sort_unstable();
        let wildcards = members
            .iter()
            .filter(|m| m.as_exact().is_none())
            .copied()
            .collect();
        LargeCommunitySet {
            name: name.into(),
            members,
            exact,
            wildcards,
        }
    }

    /// The members, in the order they were given.
    pub fn members(&self) -> &[LargeCommunityPattern] {
        &self.members
    }

    /// Whether any member matches `community`.
    pub fn contains(&self, community: LargeCommunity) -> bool {
        self.exact.binary_search(&community).is_ok() || self.wildcards.iter().any(|w| w.matches(community))
    }

    /// Whether any of `communities` is in the set.
    pub fn matches_any(&self, communities: &[LargeCommunity]) -> bool {
        communities.iter().any(|c| self.contains(*c))
    }
}

/// A named set of extended communities, matched exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtCommunitySet {
    pub name: String,
    members: Vec<ExtCommunity>,
    /// The members, sorted.
    sorted: Vec<ExtCommunity>,
}

impl ExtCommunitySet {
    pub fn new(name: impl Into<String>, members: Vec<ExtCommunity>) -> Self {
        let mut sorted = members.clone();
        sorted.sort_unstable();
        ExtCommunitySet {
            name: name.into(),
            members,
            sorted,
        }
    }

    /// The members, in the order they were given.
    pub fn members(&self) -> &[ExtCommunity] {
        &self.members
    }

    pub fn contains(&self, community: ExtCommunity) -> bool {
        self.sorted.binary_search(&community).is_ok()
    }

    /// Whether any of `communities` is in the set.
    pub fn matches_any(&self, communities: &[ExtCommunity]) -> bool {
        communities.iter().any(|c| self.contains(*c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Community {
        s.parse().unwrap()
    }

    fn lc(s: &str) -> LargeCommunity {
        s.parse().unwrap()
    }

    fn community_set(members: &[&str]) -> CommunitySet {
        CommunitySet::new("c", members.iter().map(|m| m.parse().unwrap()).collect())
    }

    fn large_set(members: &[&str]) -> LargeCommunitySet {
        LargeCommunitySet::new("l", members.iter().map(|m| m.parse().unwrap()).collect())
    }

    #[test]
    fn community_pattern_text_forms() {
        let ok = [
            ("65000:100", "65000:100", Some(65000), Some(100)),
            ("0:0", "0:0", Some(0), Some(0)),
            ("no-export", "no-export", Some(0xffff), Some(0xff01)),
            ("65535:65281", "no-export", Some(0xffff), Some(0xff01)),
            ("graceful-shutdown", "graceful-shutdown", Some(0xffff), Some(0)),
            ("blackhole", "blackhole", Some(0xffff), Some(666)),
            ("65000:*", "65000:*", Some(65000), None),
            ("*:100", "*:100", None, Some(100)),
            ("*:*", "*:*", None, None),
        ];
        for (text, shown, asn, value) in ok {
            let p: CommunityPattern = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((p.asn, p.value), (asn, value), "{text}");
            assert_eq!(p.to_string(), shown);
            assert_eq!(shown.parse::<CommunityPattern>(), Ok(p));
        }
        for bad in [
            "",
            "*",
            "65000",
            "65536:*",
            "*:65536",
            "65000:**",
            "a:*",
            "1:2:3",
            "no_export",
            "* :1",
        ] {
            let err = bad.parse::<CommunityPattern>().unwrap_err().to_string();
            assert!(
                err.contains("expected ASN:VALUE") && err.contains("65000:*"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn large_pattern_text_forms() {
        let ok = [
            ("65000:1:2", (Some(65000), Some(1), Some(2))),
            (
                "4200000000:4294967295:0",
                (Some(4200000000), Some(u32::MAX), Some(0)),
            ),
            ("65000:*:*", (Some(65000), None, None)),
            ("*:1:*", (None, Some(1), None)),
            ("*:*:7", (None, None, Some(7))),
            ("*:*:*", (None, None, None)),
        ];
        for (text, parts) in ok {
            let p: LargeCommunityPattern = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((p.global, p.local1, p.local2), parts);
            assert_eq!(p.to_string(), text);
        }
        for bad in ["", "1:2", "1:2:3:4", "1:2:4294967296", "*:*", "a:b:c", "1::2"] {
            let err = bad.parse::<LargeCommunityPattern>().unwrap_err().to_string();
            assert!(err.contains("expected GLOBAL:LOCAL1:LOCAL2"), "{bad}: {err}");
        }
    }

    #[test]
    fn community_matching() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["65000:100"], "65000:100", true),
            (&["65000:100"], "65000:101", false),
            (&["65000:*"], "65000:7", true),
            (&["65000:*"], "65001:7", false),
            (&["*:100"], "64512:100", true),
            (&["*:100"], "64512:101", false),
            (&["*:*"], "1:1", true),
            (&["no-export"], "65535:65281", true),
            (&["no-export"], "no-advertise", false),
            (&["65535:*"], "blackhole", true),
            (&["1:1", "65000:*", "*:100"], "2:100", true),
            (&["1:1", "65000:*", "*:100"], "1:1", true),
            (&["1:1", "65000:*", "*:100"], "2:2", false),
            (&[], "1:1", false),
        ];
        for (members, community, expected) in cases {
            let set = community_set(members);
            assert_eq!(set.contains(c(community)), *expected, "{members:?} {community}");
            let by_pattern = set.members().iter().any(|p| p.matches(c(community)));
            assert_eq!(by_pattern, *expected, "{members:?} {community} by pattern");
        }
        let set = community_set(&["65000:*"]);
        assert!(set.matches_any(&[c("1:1"), c("65000:9")]));
        assert!(!set.matches_any(&[c("1:1")]));
        assert!(!set.matches_any(&[]));
    }

    #[test]
    fn large_community_matching() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["65000:1:2"], "65000:1:2", true),
            (&["65000:1:2"], "65000:1:3", false),
            (&["65000:*:*"], "65000:9:9", true),
            (&["65000:*:*"], "65001:9:9", false),
            (&["*:1:*"], "7:1:9", true),
            (&["*:1:*"], "7:2:9", false),
            (&["*:*:5"], "7:2:5", true),
            (&["*:*:*"], "0:0:0", true),
            (&["1:2:3", "65000:*:9"], "65000:4:9", true),
            (&["1:2:3", "65000:*:9"], "1:2:3", true),
            (&["1:2:3", "65000:*:9"], "65000:4:8", false),
            (&[], "1:2:3", false),
        ];
        for (members, community, expected) in cases {
            let set = large_set(members);
            assert_eq!(set.contains(lc(community)), *expected, "{members:?} {community}");
        }
        assert!(large_set(&["*:1:*"]).matches_any(&[lc("1:2:3"), lc("2:1:3")]));
        assert!(!large_set(&["*:1:*"]).matches_any(&[lc("1:2:3")]));
    }

    #[test]
    fn ext_community_matching() {
        let rt: ExtCommunity = "rt:65000:1".parse().unwrap();
        let soo: ExtCommunity = "soo:10.0.0.1:5".parse().unwrap();
        let other: ExtCommunity = "rt:65000:2".parse().unwrap();
        let set = ExtCommunitySet::new("e", vec![soo, rt]);
        assert_eq!(set.members(), [soo, rt]);
        assert!(set.contains(rt) && set.contains(soo) && !set.contains(other));
        assert!(set.matches_any(&[other, soo]));
        assert!(!set.matches_any(&[other]));
    }
}
