//! MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760) for IPv4 and IPv6 unicast,
//! with IPv6 next hops of 16 or 32 octets (global and link-local,
//! RFC 2545) and IPv4 NLRI over IPv6 next hops (RFC 8950).
//!
//! Any error inside these attributes resets the session: the NLRI cannot
//! be delimited, so nothing could be withdrawn (RFC 7606 §5.3, §7.11).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::BufMut;

use crate::nlri::{Nlri, NlriError, decode_nlri};
use crate::wire::{ipv4, ipv6, take_bytes, u8_, u16_};
use crate::{Afi, Context, Family, Safi};

/// The next hop of an UPDATE: the IPv4 NEXT_HOP attribute or the next hop
/// inside MP_REACH_NLRI.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NextHop {
    V4(Ipv4Addr),
    /// An IPv6 next hop; `link_local` is the second address of a 32-octet
    /// next hop (RFC 2545 §3). IPv4-mapped addresses (`::ffff:a.b.c.d`)
    /// appear here as they were sent; see [`NextHop::ipv4_mapped`].
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    pub fn v6(global: Ipv6Addr) -> Self {
        NextHop::V6 {
            global,
            link_local: None,
        }
    }

    /// The address to forward to: the IPv4 address, or the IPv6 global one.
    pub fn addr(&self) -> IpAddr {
        match *self {
            NextHop::V4(a) => IpAddr::V4(a),
            NextHop::V6 { global, .. } => IpAddr::V6(global),
        }
    }

    pub fn link_local(&self) -> Option<Ipv6Addr> {
        match *self {
            NextHop::V6 { link_local, .. } => link_local,
            NextHop::V4(_) => None,
        }
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 next hop.
    pub fn ipv4_mapped(&self) -> Option<Ipv4Addr> {
        match *self {
            NextHop::V6 { global, .. } => global.to_ipv4_mapped(),
            NextHop::V4(_) => None,
        }
    }

    pub fn encoded_len(&self) -> usize {
        match self {
            NextHop::V4(_) => 4,
            NextHop::V6 { link_local: None, .. } => 16,
            NextHop::V6 {
                link_local: Some(_), ..
            } => 32,
        }
    }

    pub fn encode(&self, buf: &mut impl BufMut) {
        match self {
            NextHop::V4(a) => buf.put_slice(&a.octets()),
            NextHop::V6 { global, link_local } => {
                buf.put_slice(&global.octets());
                if let Some(ll) = link_local {
                    buf.put_slice(&ll.octets());
                }
            }
        }
    }

    /// Decodes a next hop of the lengths a family allows: 16 or 32 for IPv6
    /// NLRI, and also 4 for IPv4 NLRI.
    fn decode(bytes: &[u8], family: Family) -> Option<NextHop> {
        match (bytes.len(), family.afi) {
            (4, Afi::IPV4) => ipv4(bytes).ok().map(|(_, a)| NextHop::V4(a)),
            (16, _) => ipv6(bytes).ok().map(|(_, g)| NextHop::v6(g)),
            (32, _) => {
                let (rest, global) = ipv6(bytes).ok()?;
                let (_, ll) = ipv6(rest).ok()?;
                Some(NextHop::V6 {
                    global,
                    link_local: Some(ll),
                })
            }
            _ => None,
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::V4(a) => a.fmt(f),
            NextHop::V6 {
                global,
                link_local: None,
            } => global.fmt(f),
            NextHop::V6 {
                global,
                link_local: Some(ll),
            } => write!(f, "{global} ({ll})"),
        }
    }
}

impl From<IpAddr> for NextHop {
    fn from(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(a) => NextHop::V4(a),
            IpAddr::V6(a) => NextHop::v6(a),
        }
    }
}

/// MP_REACH_NLRI of a supported family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: NextHop,
    pub nlri: Vec<Nlri>,
}

/// MP_UNREACH_NLRI of a supported family. Empty `withdrawn` in an
/// otherwise empty UPDATE is that family's End-of-RIB (RFC 4724 §2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<Nlri>,
}

/// Why MP_REACH_NLRI or MP_UNREACH_NLRI is malformed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MpError {
    #[error("attribute too short")]
    Truncated,
    #[error("next hop length {0} is invalid for the family")]
    NextHopLength(usize),
    #[error("NLRI: {0}")]
    Nlri(NlriError),
}

/// A decoded MP attribute, or the family it named when this crate does not
/// decode that family.
pub(crate) enum Decoded<T> {
    Supported(T),
    Unsupported(Family),
}

fn family(input: &[u8]) -> Result<(&[u8], Family), MpError> {
    let (rest, afi) = u16_(input).map_err(|_| MpError::Truncated)?;
    let (rest, safi) = u8_(rest).map_err(|_| MpError::Truncated)?;
    Ok((rest, Family::new(Afi(afi), Safi(safi))))
}

impl MpReach {
    pub(crate) fn decode(value: &[u8], ctx: &Context) -> Result<Decoded<MpReach>, MpError> {
        let (rest, family) = family(value)?;
        if !family.is_supported() {
            return Ok(Decoded::Unsupported(family));
        }
        let (rest, nh_len) = u8_(rest).map_err(|_| MpError::Truncated)?;
        let (rest, nh) = take_bytes(rest, usize::from(nh_len)).map_err(|_| MpError::Truncated)?;
        let next_hop = NextHop::decode(nh, family).ok_or(MpError::NextHopLength(nh.len()))?;
        // The reserved octet (formerly the SNPA count) is ignored.
        let (rest, _reserved) = u8_(rest).map_err(|_| MpError::Truncated)?;
        let mut nlri = Vec::new();
        decode_nlri(rest, family, ctx.add_path.contains(family), &mut nlri).map_err(MpError::Nlri)?;
        Ok(Decoded::Supported(MpReach {
            family,
            next_hop,
            nlri,
        }))
    }

    /// Length of the attribute value, excluding the attribute header.
    pub fn value_len(&self, ctx: &Context) -> usize {
        let add_path = ctx.add_path.contains(self.family);
        5 + self.next_hop.encoded_len() + self.nlri.iter().map(|n| nlri_len(n, add_path)).sum::<usize>()
    }

    /// Writes the attribute value: AFI, SAFI, next hop, reserved octet and
    /// NLRI, with path identifiers exactly when ADD-PATH is on for the family.
    pub fn encode_value(&self, ctx: &Context, buf: &mut impl BufMut) {
        put_family(buf, self.family);
        // A next hop is 4, 16 or 32 octets.
        buf.put_u8(self.next_hop.encoded_len() as u8);
        self.next_hop.encode(buf);
        buf.put_u8(0);
        let add_path = ctx.add_path.contains(self.family);
        for n in &self.nlri {
            put_nlri(buf, n, add_path);
        }
    }
}

impl MpUnreach {
    pub(crate) fn decode(value: &[u8], ctx: &Context) -> Result<Decoded<MpUnreach>, MpError> {
        let (rest, family) = family(value)?;
        if !family.is_supported() {
            return Ok(Decoded::Unsupported(family));
        }
        let mut withdrawn = Vec::new();
        decode_nlri(rest, family, ctx.add_path.contains(family), &mut withdrawn).map_err(MpError::Nlri)?;
        Ok(Decoded::Supported(MpUnreach { family, withdrawn }))
    }

    pub fn value_len(&self, ctx: &Context) -> usize {
        let add_path = ctx.add_path.contains(self.family);
        3 + self
            .withdrawn
            .iter()
            .map(|n| nlri_len(n, add_path))
            .sum::<usize>()
    }

    pub fn encode_value(&self, ctx: &Context, buf: &mut impl BufMut) {
        put_family(buf, self.family);
        let add_path = ctx.add_path.contains(self.family);
        for n in &self.withdrawn {
            put_nlri(buf, n, add_path);
        }
    }
}

pub(crate) fn put_family(buf: &mut impl BufMut, family: Family) {
    buf.put_u16(family.afi.0);
    buf.put_u8(family.safi.0);
}

/// Octets an NLRI takes when ADD-PATH is `add_path` for its family.
#[inline]
pub(crate) fn nlri_len(n: &Nlri, add_path: bool) -> usize {
    (if add_path { 4 } else { 0 }) + 1 + crate::nlri::prefix_octets(n.prefix.prefix_len())
}

/// Writes an NLRI for a session where ADD-PATH is `add_path` for its
/// family: a missing path identifier is sent as 0, a present one is
/// dropped when the session has no ADD-PATH.
#[inline]
pub(crate) fn put_nlri(buf: &mut impl BufMut, n: &Nlri, add_path: bool) {
    let n = Nlri {
        prefix: n.prefix,
        path_id: add_path.then(|| n.path_id.unwrap_or(0)),
    };
    n.encode(buf);
}
