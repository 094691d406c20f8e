//! The actions a matching statement applies to a route: attribute changes
//! made copy-on-write, and the next-hop change the daemon carries out.
//!
//! An action never clones the attributes unless it really changes them:
//! setting a value already set, adding a community already present or
//! removing one that is absent leaves the route borrowed.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use bgp_proto::{AsPath, Attributes, Community, ExtCommunity, LargeCommunity, Origin};

use crate::{CommunitySet, ExtCommunitySet, LargeCommunitySet, PolicyError};

/// What to do with the route's next hop. Policy only records the choice;
/// the daemon, which knows the session addresses, carries it out.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum NextHopChange {
    /// Set this address (text form: the address).
    Address(IpAddr),
    /// The local address of the session the route is sent on, like
    /// `next-hop-self` (text form: `self`).
    SelfAddress,
    /// The address of the peer the route was learned from (text form:
    /// `peer`).
    PeerAddress,
    /// Leave it as received (text form: `unchanged`).
    Unchanged,
}

impl fmt::Display for NextHopChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHopChange::Address(a) => a.fmt(f),
            NextHopChange::SelfAddress => f.write_str("self"),
            NextHopChange::PeerAddress => f.write_str("peer"),
            NextHopChange::Unchanged => f.write_str("unchanged"),
        }
    }
}

impl FromStr for NextHopChange {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "self" => Ok(NextHopChange::SelfAddress),
            "peer" => Ok(NextHopChange::PeerAddress),
            "unchanged" => Ok(NextHopChange::Unchanged),
            _ => s
                .parse()
                .map(NextHopChange::Address)
                .map_err(|_| PolicyError::Keyword {
                    what: "next hop",
                    text: s.to_owned(),
                    expected: "an IPv4 or IPv6 address, self, peer or unchanged",
                }),
        }
    }
}

/// Parses the text form of an ORIGIN value (`igp`, `egp`, `incomplete`),
/// the inverse of its `Display`, for [`Action::SetOrigin`].
pub fn parse_origin(text: &str) -> Result<Origin, PolicyError> {
    match text {
        "igp" => Ok(Origin::Igp),
        "egp" => Ok(Origin::Egp),
        "incomplete" => Ok(Origin::Incomplete),
        _ => Err(PolicyError::Keyword {
            what: "origin",
            text: text.to_owned(),
            expected: "igp, egp or incomplete",
        }),
    }
}

/// One change to a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    SetLocalPref(u32),
    SetMed(u32),
    RemoveMed,
    SetOrigin(Origin),
    SetNextHop(NextHopChange),
    /// Appends each community the route does not carry yet.
    AddCommunities(Vec<Community>),
    /// Removes every community that matches the set.
    RemoveCommunities(Arc<CommunitySet>),
    ClearCommunities,
    AddLargeCommunities(Vec<LargeCommunity>),
    RemoveLargeCommunities(Arc<LargeCommunitySet>),
    ClearLargeCommunities,
    AddExtCommunities(Vec<ExtCommunity>),
    RemoveExtCommunities(Arc<ExtCommunitySet>),
    /// Prepends `asn` (the local AS when `None`) `count` times to the AS
    /// path, creating one if there is none. This is in addition to the
    /// local AS the daemon prepends towards external peers
    /// (RFC 4271 §5.1.2).
    Prepend {
        asn: Option<u32>,
        count: u8,
    },
}

impl Action {
    /// Applies the action, cloning `attributes` only if it changes them.
    pub fn apply(&self, local_asn: u32, attributes: &mut Cow<'_, Attributes>, next_hop: &mut NextHopChange) {
        match self {
            Action::SetLocalPref(v) => {
                if attributes.local_pref != Some(*v) {
                    attributes.to_mut().local_pref = Some(*v);
                }
            }
            Action::SetMed(v) => {
                if attributes.med != Some(*v) {
                    attributes.to_mut().med = Some(*v);
                }
            }
            Action::RemoveMed => {
                if attributes.med.is_some() {
                    attributes.to_mut().med = None;
                }
            }
            Action::SetOrigin(v) => {
                if attributes.origin != Some(*v) {
                    attributes.to_mut().origin = Some(*v);
                }
            }
            Action::SetNextHop(change) => *next_hop = *change,
            Action::AddCommunities(add) => {
                if lacks_any(&attributes.communities, add) {
                    append_missing(&mut attributes.to_mut().communities, add);
                }
            }
            Action::RemoveCommunities(set) => {
                if set.matches_any(&attributes.communities) {
                    attributes.to_mut().communities.retain(|c| !set.contains(*c));
                }
            }
            Action::ClearCommunities => {
                if !attributes.communities.is_empty() {
                    attributes.to_mut().communities.clear();
                }
            }
            Action::AddLargeCommunities(add) => {
                if lacks_any(&attributes.large_communities, add) {
                    append_missing(&mut attributes.to_mut().large_communities, add);
                }
            }
            Action::RemoveLargeCommunities(set) => {
                if set.matches_any(&attributes.large_communities) {
                    attributes
                        .to_mut()
                        .large_communities
                        .retain(|c| !set.contains(*c));
                }
            }
            Action::ClearLargeCommunities => {
                if !attributes.large_communities.is_empty() {
                    attributes.to_mut().large_communities.clear();
                }
            }
            Action::AddExtCommunities(add) => {
                if lacks_any(&attributes.ext_communities, add) {
                    append_missing(&mut attributes.to_mut().ext_communities, add);
                }
            }
            Action::RemoveExtCommunities(set) => {
                if set.matches_any(&attributes.ext_communities) {
                    attributes.to_mut().ext_communities.retain(|c| !set.contains(*c));
                }
            }
            Action::Prepend { asn, count } => {
                if *count > 0 {
                    let path = attributes.to_mut().as_path.get_or_insert_with(AsPath::new);
                    path.prepend(asn.unwrap_or(local_asn), usize::from(*count));
                }
            }
        }
    }
}

fn lacks_any<T: PartialEq>(list: &[T], add: &[T]) -> bool {
    add.iter().any(|c| !list.contains(c))
}

/// Appends the members of `add` that `list` lacks, in order, each once.
fn append_missing<T: PartialEq + Copy>(list: &mut Vec<T>, add: &[T]) {
    for c in add {
        if !list.contains(c) {
            list.push(*c);
        }
    }
}

#[cfg(test)]
mod tests {
    use bgp_proto::AsSegment;

    use super::*;
    use crate::testing::{LOCAL_ASN, addr};
    use crate::{CommunityPattern, LargeCommunityPattern};

    fn c(s: &str) -> Community {
        s.parse().unwrap()
    }

    fn lc(s: &str) -> LargeCommunity {
        s.parse().unwrap()
    }

    fn ec(s: &str) -> ExtCommunity {
        s.parse().unwrap()
    }

    fn communities(patterns: &[&str]) -> Arc<CommunitySet> {
        Arc::new(CommunitySet::new(
            "c",
            patterns
                .iter()
                .map(|p| p.parse::<CommunityPattern>().unwrap())
                .collect(),
        ))
    }

    fn large(patterns: &[&str]) -> Arc<LargeCommunitySet> {
        Arc::new(LargeCommunitySet::new(
            "l",
            patterns
                .iter()
                .map(|p| p.parse::<LargeCommunityPattern>().unwrap())
                .collect(),
        ))
    }

    /// A route as an upstream router sends it.
    fn received() -> Attributes {
        Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence([64512, 64600])),
            med: Some(10),
            local_pref: Some(100),
            communities: vec![c("64512:1"), c("64512:2"), c("no-export")],
            large_communities: vec![lc("64512:1:1"), lc("64512:2:2")],
            ext_communities: vec![ec("rt:64512:1")],
            ..Attributes::default()
        }
    }

    #[test]
    fn attribute_changes() {
        type Edit = fn(&mut Attributes);
        let cases: Vec<(Action, Edit)> = vec![
            (Action::SetLocalPref(200), |a| a.local_pref = Some(200)),
            (Action::SetMed(0), |a| a.med = Some(0)),
            (Action::RemoveMed, |a| a.med = None),
            (Action::SetOrigin(Origin::Incomplete), |a| {
                a.origin = Some(Origin::Incomplete)
            }),
            (
                Action::AddCommunities(vec![c("65000:1"), c("64512:1"), c("65000:1")]),
                |a| a.communities.push(c("65000:1")),
            ),
            (Action::RemoveCommunities(communities(&["64512:*"])), |a| {
                a.communities = vec![c("no-export")]
            }),
            (
                Action::RemoveCommunities(communities(&["*:2", "no-export"])),
                |a| a.communities = vec![c("64512:1")],
            ),
            (Action::ClearCommunities, |a| a.communities.clear()),
            (Action::AddLargeCommunities(vec![lc("65000:0:1")]), |a| {
                a.large_communities.push(lc("65000:0:1"))
            }),
            (Action::RemoveLargeCommunities(large(&["*:2:*"])), |a| {
                a.large_communities = vec![lc("64512:1:1")]
            }),
            (Action::ClearLargeCommunities, |a| a.large_communities.clear()),
            (
                Action::AddExtCommunities(vec![ec("soo:10.0.0.1:5"), ec("rt:64512:1")]),
                |a| a.ext_communities.push(ec("soo:10.0.0.1:5")),
            ),
            (
                Action::RemoveExtCommunities(Arc::new(ExtCommunitySet::new("e", vec![ec("rt:64512:1")]))),
                |a| a.ext_communities.clear(),
            ),
            (Action::Prepend { asn: None, count: 2 }, |a| {
                a.as_path = Some(AsPath::from_sequence([LOCAL_ASN, LOCAL_ASN, 64512, 64600]))
            }),
            (
                Action::Prepend {
                    asn: Some(64999),
                    count: 1,
                },
                |a| a.as_path = Some(AsPath::from_sequence([64999, 64512, 64600])),
            ),
        ];
        for (action, edit) in cases {
            let original = received();
            let mut expected = received();
            edit(&mut expected);
            let mut attributes = Cow::Borrowed(&original);
            let mut next_hop = NextHopChange::Unchanged;
            action.apply(LOCAL_ASN, &mut attributes, &mut next_hop);
            assert!(matches!(attributes, Cow::Owned(_)), "{action:?} did not copy");
            assert_eq!(*attributes, expected, "{action:?}");
            assert_eq!(next_hop, NextHopChange::Unchanged, "{action:?}");
        }
    }

    /// Actions that change nothing leave the attributes borrowed.
    #[test]
    fn no_change_no_copy() {
        let cases = [
            Action::SetLocalPref(100),
            Action::SetMed(10),
            Action::SetOrigin(Origin::Igp),
            Action::SetNextHop(NextHopChange::SelfAddress),
            Action::AddCommunities(vec![c("no-export"), c("64512:1")]),
            Action::AddCommunities(vec![]),
            Action::RemoveCommunities(communities(&["65000:*", "*:3"])),
            Action::RemoveCommunities(communities(&[])),
            Action::AddLargeCommunities(vec![lc("64512:2:2")]),
            Action::RemoveLargeCommunities(large(&["65000:*:*"])),
            Action::AddExtCommunities(vec![ec("rt:64512:1")]),
            Action::RemoveExtCommunities(Arc::new(ExtCommunitySet::new("e", vec![ec("rt:64512:2")]))),
            Action::Prepend { asn: None, count: 0 },
        ];
        let original = received();
        for action in cases {
            let mut attributes = Cow::Borrowed(&original);
            action.apply(LOCAL_ASN, &mut attributes, &mut NextHopChange::Unchanged);
            assert!(matches!(attributes, Cow::Borrowed(_)), "{action:?} copied");
        }
        let bare = Attributes::default();
        for action in [
            Action::RemoveMed,
            Action::ClearCommunities,
            Action::ClearLargeCommunities,
            Action::RemoveCommunities(communities(&["*:*"])),
        ] {
            let mut attributes = Cow::Borrowed(&bare);
            action.apply(LOCAL_ASN, &mut attributes, &mut NextHopChange::Unchanged);
            assert!(matches!(attributes, Cow::Borrowed(_)), "{action:?} copied");
        }
    }

    #[test]
    fn prepend_to_missing_or_set_path() {
        let mut attributes = Cow::Owned(Attributes::default());
        Action::Prepend { asn: None, count: 1 }.apply(
            LOCAL_ASN,
            &mut attributes,
            &mut NextHopChange::Unchanged,
        );
        assert_eq!(attributes.as_path, Some(AsPath::from_sequence([LOCAL_ASN])));
        let mut attributes = Cow::Owned(Attributes {
            as_path: Some(AsPath {
                segments: vec![AsSegment::set([1, 2])],
            }),
            ..Attributes::default()
        });
        Action::Prepend {
            asn: Some(3),
            count: 2,
        }
        .apply(LOCAL_ASN, &mut attributes, &mut NextHopChange::Unchanged);
        assert_eq!(
            attributes.as_path.as_ref().map(|p| p.to_string()),
            Some("3 3 {1,2}".to_owned())
        );
    }

    #[test]
    fn next_hop_changes() {
        let original = received();
        for change in [
            NextHopChange::Address(addr("192.0.2.9")),
            NextHopChange::Address(addr("fd00::9")),
            NextHopChange::SelfAddress,
            NextHopChange::PeerAddress,
            NextHopChange::Unchanged,
        ] {
            let mut attributes = Cow::Borrowed(&original);
            let mut next_hop = NextHopChange::PeerAddress;
            Action::SetNextHop(change).apply(LOCAL_ASN, &mut attributes, &mut next_hop);
            assert_eq!(next_hop, change);
            assert!(matches!(attributes, Cow::Borrowed(_)));
        }
    }

    #[test]
    fn next_hop_text_forms() {
        let ok = [
            ("self", NextHopChange::SelfAddress),
            ("peer", NextHopChange::PeerAddress),
            ("unchanged", NextHopChange::Unchanged),
            ("192.0.2.9", NextHopChange::Address(addr("192.0.2.9"))),
            ("2001:db8::1", NextHopChange::Address(addr("2001:db8::1"))),
        ];
        for (text, change) in ok {
            assert_eq!(text.parse::<NextHopChange>(), Ok(change));
            assert_eq!(change.to_string(), text);
        }
        for bad in ["", "Self", "192.0.2.0/24", "192.0.2.256", "next-hop-self"] {
            let err = bad.parse::<NextHopChange>().unwrap_err().to_string();
            assert!(
                err.contains("expected an IPv4 or IPv6 address, self, peer or unchanged"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn origin_text_forms() {
        for origin in [Origin::Igp, Origin::Egp, Origin::Incomplete] {
            assert_eq!(parse_origin(&origin.to_string()), Ok(origin));
        }
        for bad in ["", "IGP", "?", "i"] {
            let err = parse_origin(bad).unwrap_err().to_string();
            assert!(err.contains("expected igp, egp or incomplete"), "{bad}: {err}");
        }
    }
}
