//! Communities: standard (RFC 1997), extended (RFC 4360) and large
//! (RFC 8092), with the text forms used in configuration and the API.

use std::fmt;
use std::str::FromStr;

/// A standard community, `ASN:value` in text.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
    pub const LLGR_STALE: Community = Community(0xFFFF_0006);
    pub const NO_LLGR: Community = Community(0xFFFF_0007);
    pub const BLACKHOLE: Community = Community(0xFFFF_029A);
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);

    const NAMED: [(Community, &'static str); 7] = [
        (Self::GRACEFUL_SHUTDOWN, "graceful-shutdown"),
        (Self::LLGR_STALE, "llgr-stale"),
        (Self::NO_LLGR, "no-llgr"),
        (Self::BLACKHOLE, "blackhole"),
        (Self::NO_EXPORT, "no-export"),
        (Self::NO_ADVERTISE, "no-advertise"),
        (Self::NO_EXPORT_SUBCONFED, "no-export-subconfed"),
    ];

    pub fn new(asn: u16, value: u16) -> Self {
        Community(u32::from(asn) << 16 | u32::from(value))
    }

    pub fn asn(self) -> u16 {
        (self.0 >> 16) as u16
    }

    pub fn value(self) -> u16 {
        self.0 as u16
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::NAMED.iter().find(|(c, _)| c == self) {
            Some((_, name)) => f.write_str(name),
            None => write!(f, "{}:{}", self.asn(), self.value()),
        }
    }
}

/// Why a community could not be parsed from text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} community {text:?}: expected {expected}")]
pub struct ParseCommunityError {
    kind: &'static str,
    text: String,
    expected: &'static str,
}

impl FromStr for Community {
    type Err = ParseCommunityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((c, _)) = Self::NAMED.iter().find(|(_, name)| *name == s) {
            return Ok(*c);
        }
        let err = || ParseCommunityError {
            kind: "standard",
            text: s.to_owned(),
            expected: "ASN:VALUE with both parts 0-65535, or a well-known name such as no-export",
        };
        let (a, v) = s.split_once(':').ok_or_else(err)?;
        Ok(Community::new(
            a.parse().map_err(|_| err())?,
            v.parse().map_err(|_| err())?,
        ))
    }
}

/// A large community (RFC 8092), `global:local1:local2` in text.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl LargeCommunity {
    pub fn new(global: u32, local1: u32, local2: u32) -> Self {
        LargeCommunity {
            global,
            local1,
            local2,
        }
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

impl FromStr for LargeCommunity {
    type Err = ParseCommunityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseCommunityError {
            kind: "large",
            text: s.to_owned(),
            expected: "GLOBAL:LOCAL1:LOCAL2 with each part 0-4294967295",
        };
        let mut parts = s.split(':').map(|p| p.parse::<u32>().map_err(|_| err()));
        let (Some(g), Some(l1), Some(l2), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        Ok(LargeCommunity::new(g?, l1?, l2?))
    }
}

/// An extended community (RFC 4360): eight octets, the first one or two of
/// which give its type. Text forms: `rt:ASN:N`, `rt:A.B.C.D:N`, `soo:...`,
/// or `0x` and 16 hex digits for any other.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtCommunity(pub [u8; 8]);

impl ExtCommunity {
    const TWO_OCTET_AS: u8 = 0x00;
    const IPV4_ADDRESS: u8 = 0x01;
    const FOUR_OCTET_AS: u8 = 0x02;
    const ROUTE_TARGET: u8 = 0x02;
    const ROUTE_ORIGIN: u8 = 0x03;

    pub fn type_high(self) -> u8 {
        self.0[0]
    }

    pub fn subtype(self) -> u8 {
        self.0[1]
    }

    /// Whether the community may leave the AS (RFC 4360 §2: the T bit).
    pub fn is_transitive(self) -> bool {
        self.0[0] & 0x40 == 0
    }

    fn build(type_high: u8, subtype: u8, global: &[u8], local: &[u8]) -> Self {
        let mut v = [0u8; 8];
        v[0] = type_high;
        v[1] = subtype;
        v[2..2 + global.len()].copy_from_slice(global);
        v[2 + global.len()..].copy_from_slice(local);
        ExtCommunity(v)
    }

    /// A route target or route origin from `ASN:N` or `A.B.C.D:N`.
    fn from_admin(subtype: u8, admin: &str, local: &str) -> Option<Self> {
        if let Ok(ip) = admin.parse::<std::net::Ipv4Addr>() {
            let n: u16 = local.parse().ok()?;
            return Some(Self::build(
                Self::IPV4_ADDRESS,
                subtype,
                &ip.octets(),
                &n.to_be_bytes(),
            ));
        }
        let asn: u32 = admin.parse().ok()?;
        match u16::try_from(asn) {
            Ok(asn) => {
                let n: u32 = local.parse().ok()?;
                Some(Self::build(
                    Self::TWO_OCTET_AS,
                    subtype,
                    &asn.to_be_bytes(),
                    &n.to_be_bytes(),
                ))
            }
            Err(_) => {
                let n: u16 = local.parse().ok()?;
                Some(Self::build(
                    Self::FOUR_OCTET_AS,
                    subtype,
                    &asn.to_be_bytes(),
                    &n.to_be_bytes(),
                ))
            }
        }
    }
}

impl fmt::Display for ExtCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.0;
        let name = match v[1] {
            Self::ROUTE_TARGET => "rt",
            Self::ROUTE_ORIGIN => "soo",
            _ => "",
        };
        let u16_at = |i: usize| u16::from_be_bytes([v[i], v[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
        match (v[0], name.is_empty()) {
            (Self::TWO_OCTET_AS, false) => write!(f, "{name}:{}:{}", u16_at(2), u32_at(4)),
            (Self::IPV4_ADDRESS, false) => {
                write!(f, "{name}:{}.{}.{}.{}:{}", v[2], v[3], v[4], v[5], u16_at(6))
            }
            (Self::FOUR_OCTET_AS, false) => write!(f, "{name}:{}:{}", u32_at(2), u16_at(6)),
            _ => write!(f, "0x{:016x}", u64::from_be_bytes(*v)),
        }
    }
}

impl FromStr for ExtCommunity {
    type Err = ParseCommunityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseCommunityError {
            kind: "extended",
            text: s.to_owned(),
            expected: "rt:ADMIN:N, soo:ADMIN:N (ADMIN an ASN or IPv4 address) or 0x and 16 hex digits",
        };
        if let Some(hex) = s.strip_prefix("0x") {
            if hex.len() != 16 {
                return Err(err());
            }
            let v = u64::from_str_radix(hex, 16).map_err(|_| err())?;
            return Ok(ExtCommunity(v.to_be_bytes()));
        }
        let (kind, rest) = s.split_once(':').ok_or_else(err)?;
        let subtype = match kind {
            "rt" => Self::ROUTE_TARGET,
            "soo" => Self::ROUTE_ORIGIN,
            _ => return Err(err()),
        };
        let (admin, local) = rest.rsplit_once(':').ok_or_else(err)?;
        Self::from_admin(subtype, admin, local).ok_or_else(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_text_forms() {
        for s in ["65000:100", "0:0", "65535:65535", "no-export", "blackhole"] {
            assert_eq!(s.parse::<Community>().unwrap().to_string(), s);
        }
        assert_eq!("65535:65281".parse::<Community>().unwrap(), Community::NO_EXPORT);
        for bad in ["65536:1", "1", "a:b", "1:2:3"] {
            assert!(bad.parse::<Community>().is_err(), "{bad}");
        }
    }

    #[test]
    fn large_text_forms() {
        let c: LargeCommunity = "4210101021:1:4294967295".parse().unwrap();
        assert_eq!(c, LargeCommunity::new(4210101021, 1, u32::MAX));
        assert_eq!(c.to_string(), "4210101021:1:4294967295");
        for bad in ["1:2", "1:2:3:4", "1:2:4294967296"] {
            assert!(bad.parse::<LargeCommunity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn extended_text_forms() {
        for s in [
            "rt:65000:1",
            "rt:4200001000:7",
            "soo:10.0.0.1:5",
            "0x4004000000000064",
        ] {
            assert_eq!(s.parse::<ExtCommunity>().unwrap().to_string(), s);
        }
        let rt: ExtCommunity = "rt:65000:1".parse().unwrap();
        assert_eq!(rt.0, [0, 2, 0xfd, 0xe8, 0, 0, 0, 1]);
        assert!(rt.is_transitive());
        assert!(
            !"0x4004000000000064"
                .parse::<ExtCommunity>()
                .unwrap()
                .is_transitive()
        );
        for bad in ["rt:1", "xx:1:2", "0x12", "rt:4200001000:70000"] {
            assert!(bad.parse::<ExtCommunity>().is_err(), "{bad}");
        }
    }
}
