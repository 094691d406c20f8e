//! Route policy for tern: named, ordered statements that match routes by
//! prefix, community, AS path, peer and family, and accept, reject or
//! modify them, plus the selection of the Cilium VIPs the FIB installs
//! locally.
//!
//! Everything here is a pure function of a [`RouteInput`]: no I/O, no
//! clocks, no global state, no configuration-file parsing (the daemon's
//! config module owns that and builds these types, using the [`FromStr`]
//! impls for the text forms of the building blocks). Evaluation never
//! panics and never clones a route's attributes unless an action changes
//! them.
//!
//! ```
//! use std::borrow::Cow;
//! use bgp_proto::{Attributes, Family};
//! use policy::{
//!     Action, Disposition, Policy, RouteInput, Statement, StatementResult, Verdict, evaluate,
//! };
//!
//! let import = Policy {
//!     name: "upstream-in".into(),
//!     statements: vec![Statement {
//!         name: "prefer".into(),
//!         conditions: vec![],
//!         actions: vec![Action::SetLocalPref(200)],
//!         result: StatementResult::Accept,
//!     }],
//! };
//! let attributes = Attributes::default();
//! let route = RouteInput {
//!     prefix: "198.51.100.0/24".parse().unwrap(),
//!     family: Family::IPV4_UNICAST,
//!     attributes: &attributes,
//!     next_hop: None,
//!     source: None,
//!     target: None,
//!     local_asn: 65000,
//! };
//! let Verdict::Accept { attributes, .. } = evaluate(&[&import], Disposition::Reject, &route) else {
//!     panic!("rejected");
//! };
//! assert_eq!(attributes.local_pref, Some(200));
//! assert!(matches!(attributes, Cow::Owned(_)));
//! ```
//!
//! [`FromStr`]: std::str::FromStr

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod action;
mod community_set;
mod condition;
mod error;
mod evaluate;
mod prefix_set;
mod route;
mod vip;

#[cfg(test)]
mod testing;

pub use action::{Action, NextHopChange, parse_origin};
pub use community_set::{
    CommunityPattern, CommunitySet, ExtCommunitySet, LargeCommunityPattern, LargeCommunitySet,
};
pub use condition::Condition;
pub use error::{PolicyError, PrefixRangeError};
pub use evaluate::{
    Disposition, Explanation, Policy, Statement, StatementResult, Step, Verdict, evaluate, explain,
};
pub use prefix_set::{PrefixEntry, PrefixSet};
pub use route::{PeerInfo, Role, RouteInput};
pub use vip::VipSelector;
