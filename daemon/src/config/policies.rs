//! Compiles named sets and policies from the file into the `policy`
//! crate's model, resolving every reference by name and reporting unknown
//! ones where they are used.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bgp_proto::{Community, ExtCommunity, Family, LargeCommunity};
use policy::{
    Action, CommunityPattern, CommunitySet, Condition, Disposition, ExtCommunitySet, LargeCommunityPattern,
    LargeCommunitySet, NextHopChange, Policy, PrefixEntry, PrefixSet, Statement, StatementResult,
};
use toml::Spanned;

use super::PolicyChain;
use super::Validator;
use super::schema::{RawConfig, RawMatch, RawMed, RawPolicy, RawPrepend, RawSet, RawSetActions};

/// Named sets, for resolving references from policies.
#[derive(Default)]
pub(super) struct Sets {
    pub(super) prefix: HashMap<String, Arc<PrefixSet>>,
    pub(super) community: HashMap<String, Arc<CommunitySet>>,
    pub(super) large: HashMap<String, Arc<LargeCommunitySet>>,
    pub(super) ext: HashMap<String, Arc<ExtCommunitySet>>,
}

impl Validator<'_> {
    pub(super) fn sets(&mut self, raw: &RawConfig) -> Sets {
        let mut sets = Sets::default();
        let mut seen = HashSet::new();
        let mut unique = |v: &mut Self, s: &Spanned<RawSet>| {
            let name = s.get_ref().name.get_ref().clone();
            if !seen.insert(name.clone()) {
                v.error(
                    s.get_ref().name.span(),
                    format!("a set named {name:?} is already defined"),
                );
            }
            name
        };
        for s in &raw.prefix_sets {
            let name = unique(self, s);
            let entries = self.parse_all::<PrefixEntry>(&s.get_ref().members, "prefix");
            match PrefixSet::new(name.clone(), entries) {
                Ok(set) => {
                    sets.prefix.insert(name, Arc::new(set));
                }
                Err(e) => self.error(s.span(), e.to_string()),
            }
        }
        for s in &raw.community_sets {
            let name = unique(self, s);
            let members = self.parse_all::<CommunityPattern>(&s.get_ref().members, "community");
            sets.community
                .insert(name.clone(), Arc::new(CommunitySet::new(name, members)));
        }
        for s in &raw.large_community_sets {
            let name = unique(self, s);
            let members = self.parse_all::<LargeCommunityPattern>(&s.get_ref().members, "large community");
            sets.large
                .insert(name.clone(), Arc::new(LargeCommunitySet::new(name, members)));
        }
        for s in &raw.ext_community_sets {
            let name = unique(self, s);
            let members = self.parse_all::<ExtCommunity>(&s.get_ref().members, "extended community");
            sets.ext
                .insert(name.clone(), Arc::new(ExtCommunitySet::new(name, members)));
        }
        sets
    }

    pub(super) fn lookup<T>(
        &mut self,
        map: &HashMap<String, Arc<T>>,
        name: &Spanned<String>,
        kind: &str,
    ) -> Option<Arc<T>> {
        let found = map.get(name.get_ref()).cloned();
        if found.is_none() {
            self.error(name.span(), format!("unknown {kind} {:?}", name.get_ref()));
        }
        found
    }

    pub(super) fn policies(
        &mut self,
        raw: &[Spanned<RawPolicy>],
        sets: &Sets,
    ) -> BTreeMap<String, Arc<Policy>> {
        let mut out = BTreeMap::new();
        for p in raw {
            let p = p.get_ref();
            let name = p.name.get_ref().clone();
            if name.starts_with("role:") {
                self.error(
                    p.name.span(),
                    "policy names starting with \"role:\" are reserved for role presets",
                );
            }
            let mut statements = Vec::new();
            for (i, s) in p.statements.iter().enumerate() {
                let st = s.get_ref();
                let mut conditions = self.conditions(&st.matches, sets);
                conditions.extend(
                    self.conditions(&st.not_match, sets)
                        .into_iter()
                        .map(|c| Condition::Not(Box::new(c))),
                );
                let actions = self.actions(&st.set);
                let result = match &st.action {
                    None => StatementResult::NextStatement,
                    Some(a) => self.parse(a, "action").unwrap_or(StatementResult::NextStatement),
                };
                statements.push(Statement {
                    name: st.name.clone().unwrap_or_else(|| format!("{}", i + 1)),
                    conditions,
                    actions,
                    result,
                });
            }
            if out
                .insert(
                    name.clone(),
                    Arc::new(Policy {
                        name: name.clone(),
                        statements,
                    }),
                )
                .is_some()
            {
                self.error(
                    p.name.span(),
                    format!("a policy named {name:?} is already defined"),
                );
            }
        }
        out
    }

    fn conditions(&mut self, m: &RawMatch, sets: &Sets) -> Vec<Condition> {
        let mut c = Vec::new();
        if let Some(n) = &m.prefix_set
            && let Some(s) = self.lookup(&sets.prefix, n, "prefix-set")
        {
            c.push(Condition::Prefix(s));
        }
        if let Some(list) = &m.prefixes {
            let entries = self.parse_all::<PrefixEntry>(list, "prefix");
            match PrefixSet::new("inline", entries) {
                Ok(s) => c.push(Condition::Prefix(Arc::new(s))),
                Err(e) => self.error(list.first().map_or(0..0, Spanned::span), e.to_string()),
            }
        }
        if let Some(n) = &m.community_set
            && let Some(s) = self.lookup(&sets.community, n, "community-set")
        {
            c.push(Condition::Community(s));
        }
        if let Some(list) = &m.community {
            let members = self.parse_all::<CommunityPattern>(list, "community");
            c.push(Condition::Community(Arc::new(CommunitySet::new(
                "inline", members,
            ))));
        }
        if let Some(n) = &m.large_community_set
            && let Some(s) = self.lookup(&sets.large, n, "large-community-set")
        {
            c.push(Condition::LargeCommunity(s));
        }
        if let Some(list) = &m.large_community {
            let members = self.parse_all::<LargeCommunityPattern>(list, "large community");
            c.push(Condition::LargeCommunity(Arc::new(LargeCommunitySet::new(
                "inline", members,
            ))));
        }
        if let Some(n) = &m.ext_community_set
            && let Some(s) = self.lookup(&sets.ext, n, "ext-community-set")
        {
            c.push(Condition::ExtCommunity(s));
        }
        if let Some(list) = &m.ext_community {
            let members = self.parse_all::<ExtCommunity>(list, "extended community");
            c.push(Condition::ExtCommunity(Arc::new(ExtCommunitySet::new(
                "inline", members,
            ))));
        }
        if let Some(v) = &m.as_path_contains {
            c.push(Condition::AsPathContains(v.clone()));
        }
        if let Some(v) = &m.as_path_origin {
            c.push(Condition::AsPathOrigin(v.clone()));
        }
        if let Some(v) = &m.as_path_neighbor {
            c.push(Condition::AsPathNeighbor(v.clone()));
        }
        if let Some(r) = &m.as_path_length {
            c.push(Condition::AsPathLength {
                min: r.min,
                max: r.max,
            });
        }
        if let Some(v) = &m.peer {
            c.push(Condition::PeerName(v.clone()));
        }
        if let Some(v) = &m.peer_role {
            c.push(Condition::PeerRole(self.parse_all(v, "role")));
        }
        if let Some(v) = &m.peer_address {
            c.push(Condition::PeerAddress(self.parse_all(v, "prefix")));
        }
        if let Some(v) = &m.to_peer {
            c.push(Condition::ToPeerName(v.clone()));
        }
        if let Some(v) = &m.to_peer_role {
            c.push(Condition::ToPeerRole(self.parse_all(v, "role")));
        }
        if let Some(v) = &m.family {
            let families = v.iter().filter_map(|f| self.family(f)).collect();
            c.push(Condition::Family(families));
        }
        if let Some(v) = &m.next_hop {
            c.push(Condition::NextHop(self.parse_all(v, "prefix")));
        }
        match m.originated {
            Some(true) => c.push(Condition::Originated),
            Some(false) => c.push(Condition::Not(Box::new(Condition::Originated))),
            None => {}
        }
        c
    }

    pub(super) fn family(&mut self, s: &Spanned<String>) -> Option<Family> {
        let f = Family::from_name(s.get_ref());
        if f.is_none() {
            self.error(
                s.span(),
                format!(
                    "unknown family {:?}: expected ipv4-unicast or ipv6-unicast",
                    s.get_ref()
                ),
            );
        }
        f
    }

    fn actions(&mut self, set: &RawSetActions) -> Vec<Action> {
        let mut a = Vec::new();
        if let Some(v) = set.local_pref {
            a.push(Action::SetLocalPref(v));
        }
        if let Some(med) = &set.med {
            match med.get_ref() {
                RawMed::Value(v) => a.push(Action::SetMed(*v)),
                RawMed::Word(w) if w == "remove" => a.push(Action::RemoveMed),
                RawMed::Word(w) => self.error(
                    med.span(),
                    format!("invalid med {w:?}: expected a number or \"remove\""),
                ),
            }
        }
        if let Some(o) = &set.origin
            && let Ok(origin) =
                policy::parse_origin(o.get_ref()).map_err(|e| self.error(o.span(), e.to_string()))
        {
            a.push(Action::SetOrigin(origin));
        }
        if let Some(nh) = &set.next_hop
            && let Some(change) = self.parse::<NextHopChange>(nh, "next-hop")
        {
            a.push(Action::SetNextHop(change));
        }
        if let Some(list) = &set.community_add {
            a.push(Action::AddCommunities(
                self.parse_all::<Community>(list, "community"),
            ));
        }
        if let Some(list) = &set.community_remove {
            let members = self.parse_all::<CommunityPattern>(list, "community");
            a.push(Action::RemoveCommunities(Arc::new(CommunitySet::new(
                "inline", members,
            ))));
        }
        if set.community_clear == Some(true) {
            a.push(Action::ClearCommunities);
        }
        if let Some(list) = &set.large_community_add {
            a.push(Action::AddLargeCommunities(
                self.parse_all::<LargeCommunity>(list, "large community"),
            ));
        }
        if let Some(list) = &set.large_community_remove {
            let members = self.parse_all::<LargeCommunityPattern>(list, "large community");
            a.push(Action::RemoveLargeCommunities(Arc::new(LargeCommunitySet::new(
                "inline", members,
            ))));
        }
        if set.large_community_clear == Some(true) {
            a.push(Action::ClearLargeCommunities);
        }
        if let Some(list) = &set.ext_community_add {
            a.push(Action::AddExtCommunities(
                self.parse_all::<ExtCommunity>(list, "extended community"),
            ));
        }
        if let Some(list) = &set.ext_community_remove {
            let members = self.parse_all::<ExtCommunity>(list, "extended community");
            a.push(Action::RemoveExtCommunities(Arc::new(ExtCommunitySet::new(
                "inline", members,
            ))));
        }
        if let Some(p) = &set.prepend {
            let (asn, count) = match p.get_ref() {
                RawPrepend::Count(n) => (None, *n),
                RawPrepend::Detailed { asn, count } => (*asn, *count),
            };
            if count == 0 || count > 16 {
                self.error(p.span(), "prepend count must be between 1 and 16");
            } else {
                a.push(Action::Prepend { asn, count });
            }
        }
        a
    }

    pub(super) fn chain(
        &mut self,
        names: &Option<Vec<Spanned<String>>>,
        default: &Option<Spanned<String>>,
        preset_default: Disposition,
        builtin: Option<Arc<Policy>>,
        policies: &BTreeMap<String, Arc<Policy>>,
    ) -> PolicyChain {
        let mut chain = Vec::new();
        for n in names.iter().flatten() {
            match policies.get(n.get_ref()) {
                Some(p) => chain.push(p.clone()),
                None => self.error(n.span(), format!("unknown policy {:?}", n.get_ref())),
            }
        }
        chain.extend(builtin);
        let default = match default {
            None => preset_default,
            Some(d) => self.parse(d, "default").unwrap_or(preset_default),
        };
        PolicyChain {
            policies: chain,
            default,
        }
    }
}
