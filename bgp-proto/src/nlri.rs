//! Network Layer Reachability Information: IPv4 and IPv6 unicast prefixes,
//! with or without ADD-PATH path identifiers (RFC 4271 §4.3, RFC 4760,
//! RFC 7911).

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BufMut;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use nom::number::complete::{be_u8, be_u32};

use crate::Family;
use crate::wire::{PResult, take_bytes};

/// One prefix as carried in an UPDATE, with its ADD-PATH identifier when the
/// session negotiated ADD-PATH for the family. Prefixes are always stored
/// with host bits cleared.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub prefix: IpNet,
    pub path_id: Option<u32>,
}

impl Nlri {
    pub fn new(prefix: IpNet) -> Self {
        Nlri {
            prefix: prefix.trunc(),
            path_id: None,
        }
    }

    pub fn with_path_id(prefix: IpNet, path_id: u32) -> Self {
        Nlri {
            prefix: prefix.trunc(),
            path_id: Some(path_id),
        }
    }

    pub fn family(&self) -> Family {
        match self.prefix {
            IpNet::V4(_) => Family::IPV4_UNICAST,
            IpNet::V6(_) => Family::IPV6_UNICAST,
        }
    }

    /// Octets this NLRI takes on the wire.
    pub fn encoded_len(&self) -> usize {
        let id = if self.path_id.is_some() { 4 } else { 0 };
        id + 1 + prefix_octets(self.prefix.prefix_len())
    }

    /// Writes the NLRI. The path identifier is written exactly when it is
    /// present, so callers set it according to the negotiated ADD-PATH mode.
    pub fn encode(&self, buf: &mut impl BufMut) {
        if let Some(id) = self.path_id {
            buf.put_u32(id);
        }
        let len = self.prefix.prefix_len();
        buf.put_u8(len);
        let n = prefix_octets(len);
        match self.prefix {
            IpNet::V4(p) => buf.put_slice(&p.addr().octets()[..n]),
            IpNet::V6(p) => buf.put_slice(&p.addr().octets()[..n]),
        }
    }
}

impl From<IpNet> for Nlri {
    fn from(prefix: IpNet) -> Self {
        Nlri::new(prefix)
    }
}

/// Octets needed for the address part of a prefix of `len` bits.
#[inline]
pub fn prefix_octets(len: u8) -> usize {
    usize::from(len).div_ceil(8)
}

/// Why an NLRI field could not be parsed. Either way the field cannot be
/// delimited, which RFC 7606 §5.3 answers with a session reset.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NlriError {
    #[error("prefix length {0} exceeds the address size")]
    PrefixTooLong(u8),
    #[error("NLRI truncated")]
    Truncated,
}

#[inline]
fn ipv4_prefix(input: &[u8]) -> Result<(&[u8], Ipv4Net), NlriError> {
    let (input, len) = be_u8::<_, ()>(input).map_err(|_| NlriError::Truncated)?;
    if len > 32 {
        return Err(NlriError::PrefixTooLong(len));
    }
    let (input, bytes) = take_bytes(input, prefix_octets(len)).map_err(|_| NlriError::Truncated)?;
    let mut octets = [0u8; 4];
    octets[..bytes.len()].copy_from_slice(bytes);
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    let addr = Ipv4Addr::from(u32::from_be_bytes(octets) & mask);
    // `len <= 32` was checked above, so this cannot fail.
    let net = Ipv4Net::new(addr, len).map_err(|_| NlriError::PrefixTooLong(len))?;
    Ok((input, net))
}

#[inline]
fn ipv6_prefix(input: &[u8]) -> Result<(&[u8], Ipv6Net), NlriError> {
    let (input, len) = be_u8::<_, ()>(input).map_err(|_| NlriError::Truncated)?;
    if len > 128 {
        return Err(NlriError::PrefixTooLong(len));
    }
    let (input, bytes) = take_bytes(input, prefix_octets(len)).map_err(|_| NlriError::Truncated)?;
    let mut octets = [0u8; 16];
    octets[..bytes.len()].copy_from_slice(bytes);
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    let addr = Ipv6Addr::from(u128::from_be_bytes(octets) & mask);
    let net = Ipv6Net::new(addr, len).map_err(|_| NlriError::PrefixTooLong(len))?;
    Ok((input, net))
}

fn path_id(input: &[u8]) -> PResult<'_, u32> {
    be_u32(input)
}

/// Decodes a whole NLRI field of a supported family, appending to `out`.
///
/// The vector grows with what is actually read; at most one entry per octet
/// of input is ever created, so a hostile length field cannot make it
/// allocate beyond the message.
pub fn decode_nlri(
    mut input: &[u8],
    family: Family,
    add_path: bool,
    out: &mut Vec<Nlri>,
) -> Result<(), NlriError> {
    // Most IPv4 prefixes take 4 octets, most IPv6 ones 9: reserving for that
    // keeps reallocation rare without over-reserving on short prefixes.
    let typical = if family.afi == crate::Afi::IPV4 { 4 } else { 9 };
    out.reserve(input.len() / (typical + if add_path { 4 } else { 0 }));
    let v4 = family.afi == crate::Afi::IPV4;
    while !input.is_empty() {
        let id = if add_path {
            let (rest, id) = path_id(input).map_err(|_| NlriError::Truncated)?;
            input = rest;
            Some(id)
        } else {
            None
        };
        let prefix = if v4 {
            let (rest, net) = ipv4_prefix(input)?;
            input = rest;
            IpNet::V4(net)
        } else {
            let (rest, net) = ipv6_prefix(input)?;
            input = rest;
            IpNet::V6(net)
        };
        out.push(Nlri { prefix, path_id: id });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], family: Family, add_path: bool) -> Result<Vec<Nlri>, NlriError> {
        let mut out = Vec::new();
        decode_nlri(bytes, family, add_path, &mut out).map(|_| out)
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_prefixes_of_every_octet_count() {
        let bytes = [0, 8, 10, 16, 10, 1, 24, 10, 1, 2, 32, 10, 1, 2, 3];
        let got = decode(&bytes, Family::IPV4_UNICAST, false).unwrap();
        let want: Vec<Nlri> = [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "10.1.2.3/32",
        ]
        .iter()
        .map(|s| Nlri::new(net(s)))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn trailing_host_bits_are_cleared() {
        // RFC 4271 §4.3: trailing bits after the prefix are irrelevant.
        let got = decode(&[20, 10, 1, 0xff], Family::IPV4_UNICAST, false).unwrap();
        assert_eq!(got, vec![Nlri::new(net("10.1.240.0/20"))]);
        let got = decode(
            &[65, 0xfd, 0, 1, 1, 0, 0, 0, 0, 0xff],
            Family::IPV6_UNICAST,
            false,
        )
        .unwrap();
        assert_eq!(got, vec![Nlri::new(net("fd00:101:0:0:8000::/65"))]);
    }

    #[test]
    fn ipv6_prefix_with_path_id() {
        let bytes = [0, 0, 0, 7, 48, 0xfd, 0, 0, 0x65, 0, 1];
        let got = decode(&bytes, Family::IPV6_UNICAST, true).unwrap();
        assert_eq!(got, vec![Nlri::with_path_id(net("fd00:65:1::/48"), 7)]);
    }

    #[test]
    fn malformed_fields() {
        assert_eq!(
            decode(&[33, 1, 2, 3, 4, 5], Family::IPV4_UNICAST, false),
            Err(NlriError::PrefixTooLong(33))
        );
        assert_eq!(
            decode(&[129], Family::IPV6_UNICAST, false),
            Err(NlriError::PrefixTooLong(129))
        );
        assert_eq!(
            decode(&[24, 10, 1], Family::IPV4_UNICAST, false),
            Err(NlriError::Truncated)
        );
        assert_eq!(
            decode(&[0, 0, 1], Family::IPV4_UNICAST, true),
            Err(NlriError::Truncated)
        );
    }

    #[test]
    fn encode_matches_decode() {
        for (s, id) in [
            ("10.1.2.0/24", None),
            ("0.0.0.0/0", Some(1)),
            ("fd00::/8", None),
            ("fd00:1:2:3::1/128", Some(9)),
        ] {
            let nlri = Nlri {
                prefix: net(s),
                path_id: id,
            };
            let mut buf = Vec::new();
            nlri.encode(&mut buf);
            assert_eq!(buf.len(), nlri.encoded_len());
            assert_eq!(decode(&buf, nlri.family(), id.is_some()).unwrap(), vec![nlri]);
        }
    }
}
