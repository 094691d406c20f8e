//! Policies, their statements, and the evaluation of a chain of policies
//! over one route: the step between the RIB and its peers (import and
//! export policy). Evaluation is pure and copy-on-write: a route no action
//! changes comes back with its attributes borrowed.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use bgp_proto::Attributes;

use crate::{Action, Condition, NextHopChange, PolicyError, RouteInput};

/// A named, ordered list of statements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub statements: Vec<Statement>,
}

/// If all `conditions` match (or there are none), apply `actions` in
/// order, then do what `result` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub name: String,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub result: StatementResult,
}

impl Statement {
    pub fn matches(&self, route: &RouteInput<'_>) -> bool {
        self.conditions.iter().all(|c| c.matches(route))
    }
}

/// What a matching statement does after its actions.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum StatementResult {
    /// Accept the route; no further statement or policy runs.
    Accept,
    /// Reject the route; no further statement or policy runs.
    Reject,
    /// Go on with the next statement of the policy.
    NextStatement,
    /// Skip the rest of this policy and go on with the next one.
    NextPolicy,
}

impl fmt::Display for StatementResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StatementResult::Accept => "accept",
            StatementResult::Reject => "reject",
            StatementResult::NextStatement => "next-statement",
            StatementResult::NextPolicy => "next-policy",
        })
    }
}

impl FromStr for StatementResult {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "accept" => Ok(StatementResult::Accept),
            "reject" => Ok(StatementResult::Reject),
            "next-statement" => Ok(StatementResult::NextStatement),
            "next-policy" => Ok(StatementResult::NextPolicy),
            _ => Err(PolicyError::Keyword {
                what: "statement result",
                text: s.to_owned(),
                expected: "accept, reject, next-statement or next-policy",
            }),
        }
    }
}

/// What a chain does with a route no statement accepted or rejected.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Disposition {
    Accept,
    Reject,
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Disposition::Accept => "accept",
            Disposition::Reject => "reject",
        })
    }
}

impl FromStr for Disposition {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "accept" => Ok(Disposition::Accept),
            "reject" => Ok(Disposition::Reject),
            _ => Err(PolicyError::Keyword {
                what: "default policy result",
                text: s.to_owned(),
                expected: "accept or reject",
            }),
        }
    }
}

/// The outcome of a chain for one route.
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a verdict is consumed where it is made; boxing would allocate for every borrowed route"
)]
pub enum Verdict<'a> {
    Reject,
    /// Attributes are borrowed unless an action changed them (copy on write:
    /// evaluating import policy over a million routes must not clone a
    /// million attribute sets).
    Accept {
        attributes: Cow<'a, Attributes>,
        next_hop: NextHopChange,
    },
}

/// Runs `chain` over `route`.
///
/// Statements run in order. A matching statement applies its actions, which
/// add up across statements and policies, and later conditions see the
/// attributes as changed so far (as FRR's route-map `on-match next` does).
/// Then its result decides: accept or reject end the chain, next-statement
/// goes on, next-policy skips to the next policy. When the chain runs out,
/// `default` decides, keeping the changes made on accept.
pub fn evaluate<'a>(chain: &[&Policy], default: Disposition, route: &RouteInput<'a>) -> Verdict<'a> {
    walk(chain, default, route, |_, _| {})
}

/// One statement that matched a route, in the order they ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub policy: String,
    pub statement: String,
    pub result: StatementResult,
    /// It had actions, so it changed the route (unless it rejected it).
    pub changed: bool,
}

/// Why a chain decided what it did for one route: what [`evaluate`]
/// decides, with every statement that matched. The last step decided when
/// its result is accept or reject; otherwise the chain's default did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    pub accepted: bool,
    pub steps: Vec<Step>,
    /// The default decided: no statement accepted or rejected the route.
    pub by_default: bool,
}

impl Explanation {
    /// The statement that decided, as `policy/statement`, or `default`.
    pub fn decided_by(&self) -> String {
        match self.steps.last() {
            Some(s) if !self.by_default => format!("{}/{}", s.policy, s.statement),
            _ => "default".to_owned(),
        }
    }

    /// The statements whose actions changed an accepted route.
    pub fn changed_by(&self) -> Vec<String> {
        if !self.accepted {
            return Vec::new();
        }
        self.steps
            .iter()
            .filter(|s| s.changed)
            .map(|s| format!("{}/{}", s.policy, s.statement))
            .collect()
    }
}

/// [`evaluate`], telling why: for showing a route's fate to an operator,
/// never on the path a route takes.
pub fn explain(chain: &[&Policy], default: Disposition, route: &RouteInput<'_>) -> Explanation {
    let mut steps = Vec::new();
    let verdict = walk(chain, default, route, |p, s| {
        steps.push(Step {
            policy: p.name.clone(),
            statement: s.name.clone(),
            result: s.result,
            changed: !s.actions.is_empty() && s.result != StatementResult::Reject,
        });
    });
    let by_default = steps
        .last()
        .is_none_or(|s| !matches!(s.result, StatementResult::Accept | StatementResult::Reject));
    Explanation {
        accepted: matches!(verdict, Verdict::Accept { .. }),
        steps,
        by_default,
    }
}

/// The evaluation itself; `matched` sees each statement that matched.
fn walk<'a>(
    chain: &[&Policy],
    default: Disposition,
    route: &RouteInput<'a>,
    mut matched: impl FnMut(&Policy, &Statement),
) -> Verdict<'a> {
    let mut attributes = Cow::Borrowed(route.attributes);
    let mut next_hop = NextHopChange::Unchanged;
    for policy in chain {
        for statement in &policy.statements {
            let current = RouteInput {
                attributes: &attributes,
                ..*route
            };
            if !statement.matches(&current) {
                continue;
            }
            matched(policy, statement);
            // A rejected route's changes would be thrown away: skip them.
            if statement.result == StatementResult::Reject {
                return Verdict::Reject;
            }
            for action in &statement.actions {
                action.apply(route.local_asn, &mut attributes, &mut next_hop);
            }
            match statement.result {
                StatementResult::Accept => return Verdict::Accept { attributes, next_hop },
                StatementResult::NextPolicy => break,
                StatementResult::NextStatement | StatementResult::Reject => {}
            }
        }
    }
    match default {
        Disposition::Accept => Verdict::Accept { attributes, next_hop },
        Disposition::Reject => Verdict::Reject,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bgp_proto::{AsPath, Community, Family, LargeCommunity, Origin};
    use ipnet::IpNet;
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{peer, route};
    use crate::{CommunityPattern, CommunitySet, PrefixSet, Role};

    /// A statement that matches or not, and marks the route with community
    /// `1:tag` when it runs.
    fn st(matches: bool, tag: u16, result: StatementResult) -> Statement {
        Statement {
            name: format!("s{tag}"),
            conditions: if matches {
                vec![]
            } else {
                vec![Condition::Not(Box::new(Condition::Originated))]
            },
            actions: vec![Action::AddCommunities(vec![Community::new(1, tag)])],
            result,
        }
    }

    fn policy(statements: Vec<Statement>) -> Policy {
        Policy {
            name: "p".into(),
            statements,
        }
    }

    #[test]
    fn control_flow() {
        use Disposition as D;
        use StatementResult::*;
        // The tags of the statements whose actions an accepted route
        // carries, or None when it is rejected.
        type Tags = Option<&'static [u16]>;
        let cases: Vec<(&str, Vec<Policy>, Disposition, Tags)> = vec![
            ("empty chain, default accept", vec![], D::Accept, Some(&[])),
            ("empty chain, default reject", vec![], D::Reject, None),
            ("empty policy", vec![policy(vec![])], D::Accept, Some(&[])),
            (
                "accept ends the chain",
                vec![
                    policy(vec![st(true, 1, Accept), st(true, 2, Accept)]),
                    policy(vec![st(true, 3, Reject)]),
                ],
                D::Reject,
                Some(&[1]),
            ),
            (
                "a statement that does not match goes on",
                vec![policy(vec![st(false, 1, Accept), st(true, 2, Accept)])],
                D::Reject,
                Some(&[2]),
            ),
            (
                "an unmatched reject does nothing",
                vec![policy(vec![st(false, 1, Reject)])],
                D::Accept,
                Some(&[]),
            ),
            (
                "next-statement keeps its changes",
                vec![policy(vec![st(true, 1, NextStatement), st(true, 2, Accept)])],
                D::Reject,
                Some(&[1, 2]),
            ),
            (
                "default accept keeps the changes",
                vec![policy(vec![st(true, 1, NextStatement)])],
                D::Accept,
                Some(&[1]),
            ),
            (
                "default reject drops them",
                vec![policy(vec![st(true, 1, NextStatement)])],
                D::Reject,
                None,
            ),
            (
                "next-policy skips the rest of the policy",
                vec![
                    policy(vec![st(true, 1, NextPolicy), st(true, 2, Accept)]),
                    policy(vec![st(true, 3, Accept)]),
                ],
                D::Reject,
                Some(&[1, 3]),
            ),
            (
                "next-policy from the last policy reaches the default",
                vec![policy(vec![st(true, 1, NextPolicy), st(true, 2, Reject)])],
                D::Accept,
                Some(&[1]),
            ),
            (
                "a policy that runs out goes on to the next",
                vec![
                    policy(vec![st(true, 1, NextStatement), st(false, 2, Accept)]),
                    policy(vec![st(true, 3, NextStatement)]),
                    policy(vec![st(true, 4, Accept)]),
                ],
                D::Reject,
                Some(&[1, 3, 4]),
            ),
            (
                "reject ends the chain after changes",
                vec![
                    policy(vec![st(true, 1, NextStatement), st(true, 2, Reject)]),
                    policy(vec![st(true, 3, Accept)]),
                ],
                D::Accept,
                None,
            ),
        ];
        let attrs = Attributes::default();
        let r = route("10.0.0.0/8", &attrs);
        for (name, chain, default, expected) in cases {
            let chain: Vec<&Policy> = chain.iter().collect();
            let got = match evaluate(&chain, default, &r) {
                Verdict::Reject => None,
                Verdict::Accept { attributes, next_hop } => {
                    assert_eq!(next_hop, NextHopChange::Unchanged, "{name}");
                    if attributes.communities.is_empty() {
                        assert!(
                            matches!(attributes, Cow::Borrowed(_)),
                            "{name}: copied for nothing"
                        );
                    }
                    Some(
                        attributes
                            .communities
                            .iter()
                            .map(|c| c.value())
                            .collect::<Vec<_>>(),
                    )
                }
            };
            assert_eq!(got.as_deref(), expected, "{name}");
            // The explanation agrees, and names the statements that
            // changed the route.
            let why = explain(&chain, default, &r);
            assert_eq!(why.accepted, expected.is_some(), "{name}: explain disagrees");
            let changed: Vec<String> = expected
                .unwrap_or(&[])
                .iter()
                .map(|t| format!("p/s{t}"))
                .collect();
            assert_eq!(why.changed_by(), changed, "{name}");
        }
    }

    #[test]
    fn explain_names_what_decided() {
        use StatementResult::*;
        let attrs = Attributes::default();
        let r = route("10.0.0.0/8", &attrs);
        let named = |name: &str, statements| Policy {
            name: name.into(),
            statements,
        };
        let tag = named("tag", vec![st(true, 1, NextPolicy)]);
        let drop = named("drop", vec![st(false, 2, Accept), st(true, 3, Reject)]);
        let why = explain(&[&tag, &drop], Disposition::Accept, &r);
        assert!(!why.accepted);
        assert!(!why.by_default);
        assert_eq!(why.decided_by(), "drop/s3");
        assert_eq!(why.steps.len(), 2, "the unmatched statement is not a step");
        assert!(
            why.changed_by().is_empty(),
            "a rejected route was changed by nothing"
        );

        let why = explain(&[&tag], Disposition::Reject, &r);
        assert!(!why.accepted);
        assert!(why.by_default);
        assert_eq!(why.decided_by(), "default");

        let why = explain(&[], Disposition::Accept, &r);
        assert!(why.accepted && why.by_default && why.steps.is_empty());
    }

    #[test]
    fn statement_needs_all_conditions() {
        let attrs = Attributes::default();
        let r = route("10.0.0.0/8", &attrs);
        let cases = [
            (vec![], true),
            (vec![Condition::Originated], true),
            (
                vec![
                    Condition::Originated,
                    Condition::Family(vec![Family::IPV4_UNICAST]),
                ],
                true,
            ),
            (
                vec![
                    Condition::Originated,
                    Condition::Family(vec![Family::IPV6_UNICAST]),
                ],
                false,
            ),
            (
                vec![
                    Condition::Not(Box::new(Condition::Originated)),
                    Condition::Originated,
                ],
                false,
            ),
        ];
        for (conditions, expected) in cases {
            let s = Statement {
                name: "s".into(),
                conditions,
                actions: vec![],
                result: StatementResult::Accept,
            };
            assert_eq!(s.matches(&r), expected, "{s:?}");
        }
    }

    /// Later statements see the changes of earlier ones; the next-hop
    /// change is the last one set.
    #[test]
    fn changes_accumulate() {
        let tagged = Arc::new(CommunitySet::new(
            "tagged",
            vec!["65000:1".parse::<CommunityPattern>().unwrap()],
        ));
        let p = policy(vec![
            Statement {
                name: "tag".into(),
                conditions: vec![],
                actions: vec![
                    Action::AddCommunities(vec![Community::new(65000, 1)]),
                    Action::SetNextHop(NextHopChange::PeerAddress),
                    Action::SetLocalPref(150),
                ],
                result: StatementResult::NextStatement,
            },
            Statement {
                name: "prefer tagged".into(),
                conditions: vec![Condition::Community(tagged)],
                actions: vec![
                    Action::SetLocalPref(300),
                    Action::SetNextHop(NextHopChange::SelfAddress),
                ],
                result: StatementResult::NextPolicy,
            },
        ]);
        let q = policy(vec![Statement {
            name: "med".into(),
            conditions: vec![],
            actions: vec![Action::SetMed(5)],
            result: StatementResult::NextStatement,
        }]);
        let attrs = Attributes::default();
        let Verdict::Accept { attributes, next_hop } =
            evaluate(&[&p, &q, &q], Disposition::Accept, &route("10.0.0.0/8", &attrs))
        else {
            panic!("rejected");
        };
        assert_eq!(attributes.communities, [Community::new(65000, 1)]);
        assert_eq!((attributes.local_pref, attributes.med), (Some(300), Some(5)));
        assert_eq!(next_hop, NextHopChange::SelfAddress);
    }

    #[test]
    fn keyword_text_forms() {
        for (text, result) in [
            ("accept", StatementResult::Accept),
            ("reject", StatementResult::Reject),
            ("next-statement", StatementResult::NextStatement),
            ("next-policy", StatementResult::NextPolicy),
        ] {
            assert_eq!(text.parse::<StatementResult>(), Ok(result));
            assert_eq!(result.to_string(), text);
        }
        for (text, default) in [("accept", Disposition::Accept), ("reject", Disposition::Reject)] {
            assert_eq!(text.parse::<Disposition>(), Ok(default));
            assert_eq!(default.to_string(), text);
        }
        for bad in ["", "Accept", "next", "continue", "permit"] {
            let err = bad.parse::<StatementResult>().unwrap_err().to_string();
            assert!(
                err.contains("expected accept, reject, next-statement or next-policy"),
                "{err}"
            );
            let err = bad.parse::<Disposition>().unwrap_err().to_string();
            assert!(err.contains("expected accept or reject"), "{err}");
        }
        assert!("next-policy".parse::<Disposition>().is_err());
    }

    fn arb_attributes() -> impl Strategy<Value = Attributes> {
        (
            prop::option::of(prop::collection::vec(1u32..70000, 0..6)),
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
            prop::collection::vec(any::<u32>().prop_map(Community), 0..6),
            prop::collection::vec(any::<(u32, u32, u32)>(), 0..3),
        )
            .prop_map(|(path, local_pref, med, communities, large)| Attributes {
                origin: Some(Origin::Igp),
                as_path: path.map(AsPath::from_sequence),
                local_pref,
                med,
                communities,
                large_communities: large
                    .into_iter()
                    .map(|(g, a, b)| LargeCommunity::new(g, a, b))
                    .collect(),
                ..Attributes::default()
            })
    }

    fn arb_prefix() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<u32>(), 0u8..=32).prop_map(|(a, len)| IpNet::V4(
                ipnet::Ipv4Net::new_assert(std::net::Ipv4Addr::from_bits(a), len).trunc()
            )),
            (any::<u128>(), 0u8..=128).prop_map(|(a, len)| IpNet::V6(
                ipnet::Ipv6Net::new_assert(std::net::Ipv6Addr::from_bits(a), len).trunc()
            )),
        ]
    }

    /// Conditions that may or may not match.
    fn arb_condition() -> impl Strategy<Value = Condition> {
        prop_oneof![
            Just(Condition::Originated),
            Just(Condition::Family(vec![Family::IPV4_UNICAST])),
            Just(Condition::PeerRole(vec![Role::Cilium, Role::Upstream])),
            (0u32..8).prop_map(|n| Condition::AsPathLength {
                min: Some(n),
                max: None
            }),
            (1u32..70000).prop_map(|a| Condition::AsPathContains(vec![a])),
            Just(Condition::Prefix(Arc::new(
                PrefixSet::new("any4", vec!["0.0.0.0/0 le 32".parse().unwrap()]).unwrap()
            ))),
            Just(Condition::Community(Arc::new(CommunitySet::new(
                "any",
                vec!["*:*".parse().unwrap()]
            )))),
        ]
    }

    /// Conditions that match no route.
    fn arb_never() -> impl Strategy<Value = Condition> {
        prop_oneof![
            Just(Condition::PeerName(vec![])),
            Just(Condition::Family(vec![])),
            Just(Condition::Not(Box::new(Condition::AsPathLength {
                min: None,
                max: None
            }))),
            Just(Condition::Prefix(Arc::new(
                PrefixSet::new("empty", vec![]).unwrap()
            ))),
            Just(Condition::Community(Arc::new(CommunitySet::new("empty", vec![])))),
            Just(Condition::AsPathLength {
                min: Some(5),
                max: Some(4)
            }),
        ]
    }

    fn arb_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            any::<u32>().prop_map(Action::SetLocalPref),
            any::<u32>().prop_map(Action::SetMed),
            Just(Action::RemoveMed),
            Just(Action::ClearCommunities),
            Just(Action::SetNextHop(NextHopChange::SelfAddress)),
            any::<u32>().prop_map(|c| Action::AddCommunities(vec![Community(c)])),
            (1u8..4).prop_map(|count| Action::Prepend { asn: None, count }),
        ]
    }

    fn arb_result() -> impl Strategy<Value = StatementResult> {
        prop_oneof![
            Just(StatementResult::Accept),
            Just(StatementResult::Reject),
            Just(StatementResult::NextStatement),
            Just(StatementResult::NextPolicy),
        ]
    }

    /// A statement whose conditions include one that never matches, at
    /// any position.
    fn arb_unmatched_statement() -> impl Strategy<Value = Statement> {
        (
            prop::collection::vec(arb_condition(), 0..3),
            arb_never(),
            any::<prop::sample::Index>(),
            prop::collection::vec(arb_action(), 0..4),
            arb_result(),
        )
            .prop_map(|(mut conditions, never, at, actions, result)| {
                conditions.insert(at.index(conditions.len() + 1), never);
                Statement {
                    name: "never".into(),
                    conditions,
                    actions,
                    result,
                }
            })
    }

    proptest! {
        /// A chain in which no statement matches returns the default, with
        /// the attributes borrowed and the next hop unchanged.
        #[test]
        fn unmatched_chain_returns_default(
            policies in prop::collection::vec(prop::collection::vec(arb_unmatched_statement(), 0..5), 0..4),
            attributes in arb_attributes(),
            prefix in arb_prefix(),
            source in prop::option::of(prop_oneof![Just(Role::Cilium), Just(Role::Upstream), Just(Role::Peer)]),
            accept in any::<bool>(),
        ) {
            let policies: Vec<Policy> = policies.into_iter().map(policy).collect();
            let chain: Vec<&Policy> = policies.iter().collect();
            let r = RouteInput {
                source: source.map(|role| peer("n", role)),
                ..route(&prefix.to_string(), &attributes)
            };
            let default = if accept { Disposition::Accept } else { Disposition::Reject };
            match evaluate(&chain, default, &r) {
                Verdict::Reject => prop_assert_eq!(default, Disposition::Reject),
                Verdict::Accept { attributes: out, next_hop } => {
                    prop_assert_eq!(default, Disposition::Accept);
                    prop_assert_eq!(next_hop, NextHopChange::Unchanged);
                    let Cow::Borrowed(out) = out else {
                        return Err(TestCaseError::fail("attributes were copied"));
                    };
                    prop_assert!(std::ptr::eq(out, &attributes));
                }
            }
        }
    }

    #[test]
    fn local_asn_comes_from_the_route() {
        let p = policy(vec![Statement {
            name: "prepend".into(),
            conditions: vec![],
            actions: vec![Action::Prepend { asn: None, count: 1 }],
            result: StatementResult::Accept,
        }]);
        let attrs = Attributes::default();
        let r = RouteInput {
            local_asn: 4200000001,
            ..route("10.0.0.0/8", &attrs)
        };
        let Verdict::Accept { attributes, .. } = evaluate(&[&p], Disposition::Reject, &r) else {
            panic!("rejected");
        };
        assert_eq!(attributes.as_path, Some(AsPath::from_sequence([4200000001])));
    }
}
