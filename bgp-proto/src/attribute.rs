//! Path attributes (RFC 4271 §4.3 and §5) and the RFC 7606 rule for each.
//!
//! Each attribute's decoder sits next to its error rule: a malformed value
//! yields [`Malformed`] with the action RFC 7606 prescribes for that
//! attribute. MP_REACH_NLRI and MP_UNREACH_NLRI live in [`crate::mp`]
//! because they carry NLRI; the attribute list loop is in [`crate::update`].

use std::fmt;
use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};

use crate::aspath::{AS_TRANS, AsPath, AsPathError};
use crate::community::{Community, ExtCommunity, LargeCommunity};
use crate::family::Context;
use crate::wire::{exact_chunks, ipv4, u8_, u32_};

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes (IANA "BGP Path Attributes").
pub mod code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Igp => "igp",
            Origin::Egp => "egp",
            Origin::Incomplete => "incomplete",
        })
    }
}

/// AGGREGATOR, merged with AS4_AGGREGATOR when received from a 2-octet
/// speaker.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// An optional transitive attribute this crate does not know. It is passed
/// on unchanged except for the Partial bit, which the encoder sets
/// (RFC 4271 §5).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RawAttribute {
    /// Flags as they are sent on: as received, with Partial set and without
    /// Extended Length (the encoder chooses it from the value's length).
    pub flags: u8,
    pub type_code: u8,
    pub value: Bytes,
}

/// The path attributes of a route, except MP_REACH_NLRI and
/// MP_UNREACH_NLRI, which belong to the UPDATE that carries them.
///
/// Paths and aggregators are held in their true 4-octet form whatever the
/// session used. The set is hashable so the RIB can intern it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<Community>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub ext_communities: Vec<ExtCommunity>,
    pub large_communities: Vec<LargeCommunity>,
    /// Unrecognised optional transitive attributes, in type-code order.
    pub unknown: Vec<RawAttribute>,
}

/// What RFC 7606 says to do about an attribute error that does not reset
/// the session. Ordered by severity.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorAction {
    /// Drop the attribute and process the rest of the UPDATE (§2).
    AttributeDiscard,
    /// Treat every prefix in the UPDATE as withdrawn (§2).
    TreatAsWithdraw,
}

/// What was wrong with an attribute.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttributeProblem {
    #[error("flags {0:#04x} conflict with the attribute type")]
    Flags(u8),
    #[error("invalid length {0}")]
    Length(usize),
    #[error("invalid value")]
    Value,
    #[error("{0}")]
    AsPath(AsPathError),
    #[error("confederation segment from an external peer")]
    ConfedFromExternal,
    #[error("not accepted from an external peer")]
    FromExternalPeer,
    #[error("well-known mandatory attribute missing")]
    Missing,
    #[error("repeated attribute")]
    Repeated,
    #[error("attribute overruns the path attribute field")]
    ListOverrun,
    #[error("unsupported address family {0}")]
    UnsupportedFamily(crate::Family),
}

/// An attribute error handled without resetting the session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("attribute {type_code}: {problem} ({action:?})")]
pub struct AttributeError {
    pub type_code: u8,
    pub action: ErrorAction,
    pub problem: AttributeProblem,
}

/// The outcome of decoding one attribute's value when it is malformed.
pub(crate) struct Malformed {
    pub action: ErrorAction,
    pub problem: AttributeProblem,
}

fn withdraw(problem: AttributeProblem) -> Malformed {
    Malformed {
        action: ErrorAction::TreatAsWithdraw,
        problem,
    }
}

fn discard(problem: AttributeProblem) -> Malformed {
    Malformed {
        action: ErrorAction::AttributeDiscard,
        problem,
    }
}

/// The Optional and Transitive bits each known attribute must carry, and
/// whether it is well-known (RFC 4271 §5, RFC 7606 §3 c).
pub(crate) fn expected_flags(type_code: u8) -> Option<u8> {
    use flags::{OPTIONAL, TRANSITIVE};
    Some(match type_code {
        code::ORIGIN | code::AS_PATH | code::NEXT_HOP | code::LOCAL_PREF | code::ATOMIC_AGGREGATE => {
            TRANSITIVE
        }
        code::MULTI_EXIT_DISC
        | code::ORIGINATOR_ID
        | code::CLUSTER_LIST
        | code::MP_REACH_NLRI
        | code::MP_UNREACH_NLRI => OPTIONAL,
        code::AGGREGATOR
        | code::COMMUNITIES
        | code::EXTENDED_COMMUNITIES
        | code::AS4_PATH
        | code::AS4_AGGREGATOR
        | code::LARGE_COMMUNITIES => OPTIONAL | TRANSITIVE,
        _ => return None,
    })
}

/// The action for a malformed attribute of this type, when its own rule
/// does not say otherwise (RFC 7606 §7).
fn malformed_action(type_code: u8) -> ErrorAction {
    match type_code {
        code::ATOMIC_AGGREGATE | code::AGGREGATOR | code::AS4_PATH | code::AS4_AGGREGATOR => {
            ErrorAction::AttributeDiscard
        }
        _ => ErrorAction::TreatAsWithdraw,
    }
}

/// Attributes that must be combined after the whole list is read.
#[derive(Default)]
pub(crate) struct Pending {
    pub as4_path: Option<AsPath>,
    pub as4_aggregator: Option<Aggregator>,
}

/// Decodes one attribute other than MP_REACH/MP_UNREACH into `attrs`.
/// Unknown attributes are kept when optional transitive and dropped when
/// optional non-transitive; unknown well-known ones are the caller's
/// session-reset case and never reach here.
pub(crate) fn decode_attribute(
    flags: u8,
    type_code: u8,
    value: &[u8],
    ctx: &Context,
    attrs: &mut Attributes,
    pending: &mut Pending,
) -> Result<(), Malformed> {
    if let Some(expected) = expected_flags(type_code) {
        let got = flags & (flags::OPTIONAL | flags::TRANSITIVE);
        if got != expected {
            return Err(Malformed {
                action: malformed_action(type_code),
                problem: AttributeProblem::Flags(flags),
            });
        }
    }
    let len = value.len();
    let bad_len = || AttributeProblem::Length(len);
    match type_code {
        // RFC 7606 §7.1: length other than one or an undefined value.
        code::ORIGIN => {
            attrs.origin = Some(match value {
                [0] => Origin::Igp,
                [1] => Origin::Egp,
                [2] => Origin::Incomplete,
                [_] => return Err(withdraw(AttributeProblem::Value)),
                _ => return Err(withdraw(bad_len())),
            });
        }
        // RFC 7606 §7.2: malformed segments; confederation segments from an
        // external peer (tern is never a confederation member).
        code::AS_PATH => {
            let asn_len = if ctx.four_octet_as { 4 } else { 2 };
            let path = AsPath::decode(value, asn_len).map_err(|e| withdraw(AttributeProblem::AsPath(e)))?;
            if ctx.external_peer && path.segments.iter().any(|s| s.kind.is_confed()) {
                return Err(withdraw(AttributeProblem::ConfedFromExternal));
            }
            attrs.as_path = Some(path);
        }
        // RFC 7606 §7.3: length other than 4. A next hop that cannot be a
        // host address is treated the same way (RFC 4271 §6.3 asks that the
        // route be ignored). Loopback is allowed: a local Cilium uses it.
        code::NEXT_HOP => {
            let [a, b, c, d] = value else {
                return Err(withdraw(bad_len()));
            };
            let nh = Ipv4Addr::new(*a, *b, *c, *d);
            if nh.is_unspecified() || nh.is_multicast() || *a >= 240 {
                return Err(withdraw(AttributeProblem::Value));
            }
            attrs.next_hop = Some(nh);
        }
        // RFC 7606 §7.4.
        code::MULTI_EXIT_DISC => {
            attrs.med = Some(be_u32_exact(value).ok_or_else(|| withdraw(bad_len()))?);
        }
        // RFC 7606 §7.5: discarded from external peers, whatever its length.
        code::LOCAL_PREF => {
            if ctx.external_peer {
                return Err(discard(AttributeProblem::FromExternalPeer));
            }
            attrs.local_pref = Some(be_u32_exact(value).ok_or_else(|| withdraw(bad_len()))?);
        }
        // RFC 7606 §7.6.
        code::ATOMIC_AGGREGATE => {
            if len != 0 {
                return Err(discard(bad_len()));
            }
            attrs.atomic_aggregate = true;
        }
        // RFC 7606 §7.7: 6 octets on 2-octet sessions, 8 on 4-octet ones.
        code::AGGREGATOR => {
            let asn_len = if ctx.four_octet_as { 4 } else { 2 };
            if len != asn_len + 4 {
                return Err(discard(bad_len()));
            }
            let (rest, asn) = crate::aspath::asn(value, asn_len).map_err(|_| discard(bad_len()))?;
            let (_, address) = ipv4(rest).map_err(|_| discard(bad_len()))?;
            attrs.aggregator = Some(Aggregator { asn, address });
        }
        // RFC 7606 §7.8: not a non-zero multiple of 4.
        code::COMMUNITIES => {
            let chunks = nonempty_chunks(value, 4).ok_or_else(|| withdraw(bad_len()))?;
            attrs.communities = chunks
                .map(|c| Community(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect();
        }
        // RFC 7606 §7.9.
        code::ORIGINATOR_ID => {
            if ctx.external_peer {
                return Err(discard(AttributeProblem::FromExternalPeer));
            }
            let id = be_u32_exact(value).ok_or_else(|| withdraw(bad_len()))?;
            attrs.originator_id = Some(Ipv4Addr::from(id));
        }
        // RFC 7606 §7.10.
        code::CLUSTER_LIST => {
            if ctx.external_peer {
                return Err(discard(AttributeProblem::FromExternalPeer));
            }
            let chunks = nonempty_chunks(value, 4).ok_or_else(|| withdraw(bad_len()))?;
            attrs.cluster_list = chunks.map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3])).collect();
        }
        // RFC 7606 §7.14: not a non-zero multiple of 8.
        code::EXTENDED_COMMUNITIES => {
            let chunks = nonempty_chunks(value, 8).ok_or_else(|| withdraw(bad_len()))?;
            attrs.ext_communities = chunks
                .map(|c| {
                    let mut v = [0u8; 8];
                    v.copy_from_slice(c);
                    ExtCommunity(v)
                })
                .collect();
        }
        // RFC 6793 §6: a malformed AS4_PATH is discarded. Between two
        // 4-octet speakers it has no business being sent, and is ignored
        // (§4.1).
        code::AS4_PATH => {
            if ctx.four_octet_as {
                return Ok(());
            }
            let path = AsPath::decode(value, 4).map_err(|e| discard(AttributeProblem::AsPath(e)))?;
            pending.as4_path = Some(path);
        }
        code::AS4_AGGREGATOR => {
            if ctx.four_octet_as {
                return Ok(());
            }
            if len != 8 {
                return Err(discard(bad_len()));
            }
            let (rest, asn) = u32_(value).map_err(|_| discard(bad_len()))?;
            let (_, address) = ipv4(rest).map_err(|_| discard(bad_len()))?;
            pending.as4_aggregator = Some(Aggregator { asn, address });
        }
        // RFC 8092 §6: not a non-zero multiple of 12. Duplicates are not
        // an error (§5).
        code::LARGE_COMMUNITIES => {
            let chunks = nonempty_chunks(value, 12).ok_or_else(|| withdraw(bad_len()))?;
            attrs.large_communities = chunks
                .map(|c| {
                    let at = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
                    LargeCommunity::new(at(0), at(4), at(8))
                })
                .collect();
        }
        _ => {
            // RFC 4271 §9: unrecognised optional non-transitive attributes
            // are quietly ignored; transitive ones are kept and passed on.
            if flags & flags::TRANSITIVE != 0 {
                // Stored as it will be sent on: Partial set (RFC 4271 §5),
                // Extended Length chosen by the encoder.
                let raw = RawAttribute {
                    flags: (flags | flags::PARTIAL) & !flags::EXTENDED_LENGTH,
                    type_code,
                    value: Bytes::copy_from_slice(value),
                };
                let at = attrs.unknown.partition_point(|a| a.type_code < type_code);
                attrs.unknown.insert(at, raw);
            }
        }
    }
    Ok(())
}

/// Rebuilds AS_PATH and AGGREGATOR from their AS4 forms on a 2-octet
/// session (RFC 6793 §4.2.3).
pub(crate) fn merge_as4(attrs: &mut Attributes, pending: Pending) {
    if let Some(as4_aggr) = pending.as4_aggregator {
        match attrs.aggregator {
            // AGGREGATOR from a 2-octet speaker other than AS_TRANS: the
            // route was aggregated by an old speaker after the AS4 ones, so
            // both AS4 attributes are stale and ignored.
            Some(aggr) if aggr.asn != AS_TRANS => return,
            Some(_) => attrs.aggregator = Some(as4_aggr),
            None => {}
        }
    }
    if let (Some(as4), Some(path)) = (pending.as4_path, attrs.as_path.as_ref()) {
        attrs.as_path = Some(path.merge_as4(&as4));
    }
}

fn be_u32_exact(value: &[u8]) -> Option<u32> {
    let [a, b, c, d] = value else { return None };
    Some(u32::from_be_bytes([*a, *b, *c, *d]))
}

fn nonempty_chunks(value: &[u8], size: usize) -> Option<std::slice::ChunksExact<'_, u8>> {
    if value.is_empty() {
        return None;
    }
    exact_chunks(value, size)
}

/// Writes an attribute header, choosing the Extended Length bit from the
/// value's length.
pub(crate) fn put_header(buf: &mut impl BufMut, flags: u8, type_code: u8, len: usize) {
    if len > 255 {
        buf.put_u8(flags | flags::EXTENDED_LENGTH);
        buf.put_u8(type_code);
        // Attribute values never exceed a message, so they fit 16 bits.
        buf.put_u16(len as u16);
    } else {
        buf.put_u8(flags & !flags::EXTENDED_LENGTH);
        buf.put_u8(type_code);
        buf.put_u8(len as u8);
    }
}

fn header_len(len: usize) -> usize {
    if len > 255 { 4 } else { 3 }
}

impl Attributes {
    /// Octets [`Attributes::encode`] writes for this context.
    pub fn encoded_len(&self, ctx: &Context) -> usize {
        let attr = |len: usize| header_len(len) + len;
        let asn_len = if ctx.four_octet_as { 4 } else { 2 };
        let mut total = 0;
        total += self.origin.map_or(0, |_| attr(1));
        if let Some(path) = &self.as_path {
            total += attr(path.encoded_len(asn_len));
            if !ctx.four_octet_as && path.needs_as4_path() {
                total += attr(path.as4_path().encoded_len(4));
            }
        }
        total += self.next_hop.map_or(0, |_| attr(4));
        total += self.med.map_or(0, |_| attr(4));
        total += self.local_pref.map_or(0, |_| attr(4));
        total += if self.atomic_aggregate { attr(0) } else { 0 };
        if let Some(aggr) = self.aggregator {
            total += attr(asn_len + 4);
            if !ctx.four_octet_as && aggr.asn > u32::from(u16::MAX) {
                total += attr(8);
            }
        }
        total += list_len(self.communities.len(), 4);
        total += self.originator_id.map_or(0, |_| attr(4));
        total += list_len(self.cluster_list.len(), 4);
        total += list_len(self.ext_communities.len(), 8);
        total += list_len(self.large_communities.len(), 12);
        total += self.unknown.iter().map(|a| attr(a.value.len())).sum::<usize>();
        total
    }

    /// Writes the attributes in type-code order. On a 2-octet session the
    /// AS path and aggregator are split into their 2-octet forms plus
    /// AS4_PATH and AS4_AGGREGATOR when needed (RFC 6793 §4.2.2).
    pub fn encode(&self, ctx: &Context, buf: &mut BytesMut) {
        use flags::{OPTIONAL, TRANSITIVE};
        let asn_len = if ctx.four_octet_as { 4 } else { 2 };
        let mut unknown = self.unknown.iter().peekable();
        let mut flush_unknown_below = |buf: &mut BytesMut, limit: u16| {
            while let Some(a) = unknown.next_if(|a| u16::from(a.type_code) < limit) {
                put_header(buf, a.flags | flags::PARTIAL, a.type_code, a.value.len());
                buf.put_slice(&a.value);
            }
        };
        flush_unknown_below(buf, u16::from(code::ORIGIN));
        if let Some(origin) = self.origin {
            put_header(buf, TRANSITIVE, code::ORIGIN, 1);
            buf.put_u8(origin as u8);
        }
        if let Some(path) = &self.as_path {
            put_header(buf, TRANSITIVE, code::AS_PATH, path.encoded_len(asn_len));
            path.encode(asn_len, buf);
        }
        if let Some(nh) = self.next_hop {
            put_header(buf, TRANSITIVE, code::NEXT_HOP, 4);
            buf.put_slice(&nh.octets());
        }
        if let Some(med) = self.med {
            put_header(buf, OPTIONAL, code::MULTI_EXIT_DISC, 4);
            buf.put_u32(med);
        }
        if let Some(lp) = self.local_pref {
            put_header(buf, TRANSITIVE, code::LOCAL_PREF, 4);
            buf.put_u32(lp);
        }
        if self.atomic_aggregate {
            put_header(buf, TRANSITIVE, code::ATOMIC_AGGREGATE, 0);
        }
        if let Some(aggr) = self.aggregator {
            put_header(buf, OPTIONAL | TRANSITIVE, code::AGGREGATOR, asn_len + 4);
            if ctx.four_octet_as {
                buf.put_u32(aggr.asn);
            } else {
                buf.put_u16(u16::try_from(aggr.asn).unwrap_or(AS_TRANS as u16));
            }
            buf.put_slice(&aggr.address.octets());
        }
        if !self.communities.is_empty() {
            put_header(
                buf,
                OPTIONAL | TRANSITIVE,
                code::COMMUNITIES,
                self.communities.len() * 4,
            );
            for c in &self.communities {
                buf.put_u32(c.0);
            }
        }
        if let Some(id) = self.originator_id {
            put_header(buf, OPTIONAL, code::ORIGINATOR_ID, 4);
            buf.put_slice(&id.octets());
        }
        if !self.cluster_list.is_empty() {
            put_header(buf, OPTIONAL, code::CLUSTER_LIST, self.cluster_list.len() * 4);
            for id in &self.cluster_list {
                buf.put_slice(&id.octets());
            }
        }
        flush_unknown_below(buf, u16::from(code::EXTENDED_COMMUNITIES));
        if !self.ext_communities.is_empty() {
            put_header(
                buf,
                OPTIONAL | TRANSITIVE,
                code::EXTENDED_COMMUNITIES,
                self.ext_communities.len() * 8,
            );
            for c in &self.ext_communities {
                buf.put_slice(&c.0);
            }
        }
        if !ctx.four_octet_as {
            if let Some(path) = self.as_path.as_ref().filter(|p| p.needs_as4_path()) {
                let as4 = path.as4_path();
                put_header(buf, OPTIONAL | TRANSITIVE, code::AS4_PATH, as4.encoded_len(4));
                as4.encode(4, buf);
            }
            if let Some(aggr) = self.aggregator.filter(|a| a.asn > u32::from(u16::MAX)) {
                put_header(buf, OPTIONAL | TRANSITIVE, code::AS4_AGGREGATOR, 8);
                buf.put_u32(aggr.asn);
                buf.put_slice(&aggr.address.octets());
            }
        }
        flush_unknown_below(buf, u16::from(code::LARGE_COMMUNITIES));
        if !self.large_communities.is_empty() {
            put_header(
                buf,
                OPTIONAL | TRANSITIVE,
                code::LARGE_COMMUNITIES,
                self.large_communities.len() * 12,
            );
            for c in &self.large_communities {
                buf.put_u32(c.global);
                buf.put_u32(c.local1);
                buf.put_u32(c.local2);
            }
        }
        flush_unknown_below(buf, 256);
    }

    /// Whether the well-known mandatory attributes needed to announce routes
    /// are present (RFC 4271 §5; NEXT_HOP only for the IPv4 NLRI field,
    /// RFC 4760 §3).
    pub(crate) fn missing_mandatory(&self, classic_nlri: bool) -> Option<u8> {
        if self.origin.is_none() {
            Some(code::ORIGIN)
        } else if self.as_path.is_none() {
            Some(code::AS_PATH)
        } else if classic_nlri && self.next_hop.is_none() {
            Some(code::NEXT_HOP)
        } else {
            None
        }
    }
}

fn list_len(count: usize, size: usize) -> usize {
    if count == 0 {
        0
    } else {
        header_len(count * size) + count * size
    }
}

/// Whether a type code's first occurrence must be the only one: a repeat
/// of MP_REACH_NLRI or MP_UNREACH_NLRI resets the session (RFC 7606 §3 g).
pub(crate) fn repeat_is_fatal(type_code: u8) -> bool {
    matches!(type_code, code::MP_REACH_NLRI | code::MP_UNREACH_NLRI)
}

/// Reads an attribute header: flags, type and the value's length.
pub(crate) fn header(input: &[u8]) -> Option<(&[u8], u8, u8, usize)> {
    let (rest, flags) = u8_(input).ok()?;
    let (rest, type_code) = u8_(rest).ok()?;
    if flags & flags::EXTENDED_LENGTH != 0 {
        let (rest, len) = crate::wire::u16_(rest).ok()?;
        Some((rest, flags, type_code, usize::from(len)))
    } else {
        let (rest, len) = u8_(rest).ok()?;
        Some((rest, flags, type_code, usize::from(len)))
    }
}
