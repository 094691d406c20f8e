//! Policies tern is deployed with, run end to end through the public API:
//! each test reads as the configuration it stands for and the routes a
//! Kubernetes node sees.

use std::borrow::Cow;
use std::sync::Arc;

use bgp_proto::{AsPath, Attributes, Community, Family, Origin};
use ipnet::IpNet;
use policy::{
    Action, CommunityPattern, CommunitySet, Condition, Disposition, NextHopChange, PeerInfo, Policy,
    PrefixSet, Role, RouteInput, Statement, StatementResult, Verdict, VipSelector, evaluate,
};

const NODE_ASN: u32 = 65000;
const CILIUM_ASN: u32 = 65010;
const TOR_ASN: u32 = 64512;

fn cilium() -> PeerInfo<'static> {
    PeerInfo {
        name: "cilium",
        role: Role::Cilium,
        address: "127.0.0.1".parse().unwrap(),
        asn: CILIUM_ASN,
    }
}

fn tor() -> PeerInfo<'static> {
    PeerInfo {
        name: "tor1",
        role: Role::Upstream,
        address: "192.0.2.1".parse().unwrap(),
        asn: TOR_ASN,
    }
}

fn prefix_set(name: &str, entries: &[&str]) -> Arc<PrefixSet> {
    let entries = entries.iter().map(|e| e.parse().unwrap()).collect();
    Arc::new(PrefixSet::new(name, entries).unwrap())
}

fn statement(
    name: &str,
    conditions: Vec<Condition>,
    actions: Vec<Action>,
    result: StatementResult,
) -> Statement {
    Statement {
        name: name.into(),
        conditions,
        actions,
        result,
    }
}

fn attributes(path: &[u32], communities: &[&str]) -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence(path)),
        communities: communities.iter().map(|c| c.parse().unwrap()).collect(),
        ..Attributes::default()
    }
}

fn route<'a>(
    prefix: &str,
    attributes: &'a Attributes,
    source: Option<PeerInfo<'a>>,
    target: Option<PeerInfo<'a>>,
) -> RouteInput<'a> {
    let prefix: IpNet = prefix.parse().unwrap();
    RouteInput {
        prefix,
        family: match prefix {
            IpNet::V4(_) => Family::IPV4_UNICAST,
            IpNet::V6(_) => Family::IPV6_UNICAST,
        },
        attributes,
        next_hop: source.map(|s| s.address),
        source,
        target,
        local_asn: NODE_ASN,
    }
}

/// Import from upstream: reject the node's own pod CIDR and the service
/// CIDR (the node knows better than the fabric where those are), accept the
/// rest with local-pref 200.
#[test]
fn import_from_upstream() {
    let own = prefix_set(
        "node-own",
        &[
            "10.244.1.0/24 le 32",
            "fd00:10:244:1::/64 le 128",
            "10.96.0.0/12 le 32",
            "fd00:10:96::/112 le 128",
        ],
    );
    let import = Policy {
        name: "upstream-in".into(),
        statements: vec![
            statement(
                "own-cidrs",
                vec![Condition::Prefix(own)],
                vec![],
                StatementResult::Reject,
            ),
            statement(
                "rest",
                vec![],
                vec![Action::SetLocalPref(200)],
                StatementResult::Accept,
            ),
        ],
    };
    let cases = [
        ("0.0.0.0/0", true),
        ("::/0", true),
        ("10.244.2.0/24", true),
        ("10.128.0.10/32", true),
        ("10.112.0.0/16", true),
        ("10.244.1.0/24", false),
        ("10.244.1.128/25", false),
        ("fd00:10:244:1::/64", false),
        ("10.96.0.10/32", false),
        ("10.111.0.0/16", false),
        ("fd00:10:96::a/128", false),
        ("fd00:10:97::/112", true),
    ];
    let attrs = attributes(&[TOR_ASN, 64600], &[]);
    for (prefix, accepted) in cases {
        match evaluate(
            &[&import],
            Disposition::Reject,
            &route(prefix, &attrs, Some(tor()), None),
        ) {
            Verdict::Accept { attributes, next_hop } => {
                assert!(accepted, "{prefix} accepted");
                assert_eq!(attributes.local_pref, Some(200), "{prefix}");
                assert_eq!(attributes.as_path, attrs.as_path, "{prefix}");
                assert_eq!(next_hop, NextHopChange::Unchanged);
            }
            Verdict::Reject => assert!(!accepted, "{prefix} rejected"),
        }
    }
    // A route that already has the local-pref is not copied.
    let preferred = Attributes {
        local_pref: Some(200),
        ..attrs.clone()
    };
    let verdict = evaluate(
        &[&import],
        Disposition::Reject,
        &route("0.0.0.0/0", &preferred, Some(tor()), None),
    );
    assert!(matches!(
        verdict,
        Verdict::Accept {
            attributes: Cow::Borrowed(_),
            ..
        }
    ));
}

/// Export to upstream: only routes from the local Cilium or originated by
/// tern, prepended twice so that the fabric prefers other nodes for
/// anything they also announce; never transit between upstreams.
#[test]
fn export_to_upstream() {
    let prepend = || vec![Action::Prepend { asn: None, count: 2 }];
    let export = Policy {
        name: "upstream-out".into(),
        statements: vec![
            statement(
                "from-cilium",
                vec![Condition::PeerRole(vec![Role::Cilium])],
                prepend(),
                StatementResult::Accept,
            ),
            statement(
                "originated",
                vec![Condition::Originated],
                prepend(),
                StatementResult::Accept,
            ),
        ],
    };
    let tor2 = PeerInfo {
        name: "tor2",
        address: "192.0.2.5".parse().unwrap(),
        ..tor()
    };
    let other = PeerInfo {
        name: "monitor",
        role: Role::Peer,
        address: "198.51.100.7".parse().unwrap(),
        asn: 64999,
    };
    let from_cilium = attributes(&[CILIUM_ASN], &[]);
    let originated = Attributes {
        origin: Some(Origin::Igp),
        ..Attributes::default()
    };
    let from_tor = attributes(&[TOR_ASN], &[]);
    let from_other = attributes(&[64999], &[]);
    let cases = [
        (
            route("10.100.0.10/32", &from_cilium, Some(cilium()), Some(tor())),
            Some(vec![NODE_ASN, NODE_ASN, CILIUM_ASN]),
        ),
        (
            route("10.244.1.0/24", &from_cilium, Some(cilium()), Some(tor())),
            Some(vec![NODE_ASN, NODE_ASN, CILIUM_ASN]),
        ),
        (
            route("192.0.2.128/26", &originated, None, Some(tor())),
            Some(vec![NODE_ASN, NODE_ASN]),
        ),
        (route("0.0.0.0/0", &from_tor, Some(tor2), Some(tor())), None),
        (
            route("203.0.113.0/24", &from_other, Some(other), Some(tor())),
            None,
        ),
    ];
    for (r, expected_path) in cases {
        let got = match evaluate(&[&export], Disposition::Reject, &r) {
            Verdict::Accept { attributes, .. } => {
                attributes.as_path.as_ref().map(|p| p.asns().collect::<Vec<_>>())
            }
            Verdict::Reject => None,
        };
        assert_eq!(got, expected_path, "{}", r.prefix);
    }
    // The source route is never changed: prepending copied it.
    assert_eq!(from_cilium.as_path, Some(AsPath::from_sequence([CILIUM_ASN])));
}

/// Cilium VIPs with externalTrafficPolicy Local: Cilium advertises a
/// LoadBalancer VIP as a host route only from the nodes that run one of its
/// endpoints. Those VIPs (and only those) are installed locally by the FIB,
/// so a pod on this node reaching the VIP stays on the node; the same VIP
/// heard from the fabric, announced by another node, is not installed. They
/// are exported to upstream with next-hop self and marked for the fabric;
/// pod CIDRs go out unmarked.
#[test]
fn cilium_vips_external_traffic_policy_local() {
    let lb_pool = prefix_set("lb-pool", &["10.100.0.0/24 le 32", "fd00:100::/64 le 128"]);
    let pods = prefix_set("pods", &["10.244.0.0/16 le 24", "fd00:10:244::/56 le 64"]);
    let service_community = Arc::new(CommunitySet::new(
        "cilium-lb",
        vec!["65010:100".parse::<CommunityPattern>().unwrap()],
    ));
    let vips = VipSelector {
        prefix_sets: vec![lb_pool.clone()],
        ..VipSelector::default()
    };
    let tagged_vips = VipSelector {
        communities: Some(service_community.clone()),
        ..VipSelector::default()
    };
    let export = Policy {
        name: "upstream-out".into(),
        statements: vec![
            statement(
                "vips",
                vec![
                    Condition::PeerRole(vec![Role::Cilium]),
                    Condition::Prefix(lb_pool),
                    Condition::Community(service_community.clone()),
                ],
                vec![
                    Action::SetNextHop(NextHopChange::SelfAddress),
                    Action::RemoveCommunities(service_community),
                    Action::AddCommunities(vec![Community::new(64512, 300)]),
                ],
                StatementResult::Accept,
            ),
            statement(
                "pods",
                vec![Condition::PeerRole(vec![Role::Cilium]), Condition::Prefix(pods)],
                vec![Action::SetNextHop(NextHopChange::SelfAddress)],
                StatementResult::Accept,
            ),
        ],
    };

    let vip = attributes(&[CILIUM_ASN], &["65010:100"]);
    let untagged_vip = attributes(&[CILIUM_ASN], &[]);
    let pod_cidr = attributes(&[CILIUM_ASN], &[]);
    let via_fabric = attributes(&[TOR_ASN, 65001], &["65010:100"]);
    struct Case<'a> {
        route: RouteInput<'a>,
        vip: bool,
        tagged_vip: bool,
        exported: Option<&'a [&'a str]>,
    }
    let cases = [
        Case {
            route: route("10.100.0.10/32", &vip, Some(cilium()), Some(tor())),
            vip: true,
            tagged_vip: true,
            exported: Some(&["64512:300"]),
        },
        Case {
            route: route("fd00:100::10/128", &vip, Some(cilium()), Some(tor())),
            vip: true,
            tagged_vip: true,
            exported: Some(&["64512:300"]),
        },
        // A VIP without the service community: installed (it is in the
        // pool), but not exported.
        Case {
            route: route("10.100.0.11/32", &untagged_vip, Some(cilium()), Some(tor())),
            vip: true,
            tagged_vip: false,
            exported: None,
        },
        Case {
            route: route("10.244.1.0/24", &pod_cidr, Some(cilium()), Some(tor())),
            vip: false,
            tagged_vip: false,
            exported: Some(&[]),
        },
        // The same VIP announced by another node reaches us via the fabric.
        Case {
            route: route("10.100.0.12/32", &via_fabric, Some(tor()), None),
            vip: false,
            tagged_vip: false,
            exported: None,
        },
    ];
    for case in cases {
        let r = &case.route;
        assert_eq!(vips.matches(r), case.vip, "{} vip", r.prefix);
        assert_eq!(tagged_vips.matches(r), case.tagged_vip, "{} tagged vip", r.prefix);
        let exported = match evaluate(&[&export], Disposition::Reject, r) {
            Verdict::Accept { attributes, next_hop } => {
                assert_eq!(next_hop, NextHopChange::SelfAddress);
                Some(
                    attributes
                        .communities
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>(),
                )
            }
            Verdict::Reject => None,
        };
        let expected = case
            .exported
            .map(|cs| cs.iter().map(|c| c.to_string()).collect::<Vec<_>>());
        assert_eq!(exported, expected, "{} export", r.prefix);
    }
}
