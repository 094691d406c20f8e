//! Address families (AFI/SAFI, RFC 4760) and the per-session decoding context.

use std::fmt;

/// Address Family Identifier (IANA "Address Family Numbers").
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Afi(pub u16);

impl Afi {
    pub const IPV4: Afi = Afi(1);
    pub const IPV6: Afi = Afi(2);
}

/// Subsequent Address Family Identifier.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Safi(pub u8);

impl Safi {
    pub const UNICAST: Safi = Safi(1);
    pub const MULTICAST: Safi = Safi(2);
}

/// An AFI/SAFI pair. Only IPv4 and IPv6 unicast carry NLRI that this crate
/// decodes; other families are still named in capabilities and route refresh.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family::new(Afi::IPV4, Safi::UNICAST);
    pub const IPV6_UNICAST: Family = Family::new(Afi::IPV6, Safi::UNICAST);

    pub const fn new(afi: Afi, safi: Safi) -> Self {
        Family { afi, safi }
    }

    /// Families whose NLRI this crate decodes into prefixes.
    pub fn is_supported(self) -> bool {
        self == Self::IPV4_UNICAST || self == Self::IPV6_UNICAST
    }

    /// The configuration name of a supported family (`ipv4-unicast`).
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::IPV4_UNICAST => Some("ipv4-unicast"),
            Self::IPV6_UNICAST => Some("ipv6-unicast"),
            _ => None,
        }
    }

    /// The unicast family of a prefix.
    pub fn unicast_of(prefix: &ipnet::IpNet) -> Family {
        match prefix {
            ipnet::IpNet::V4(_) => Self::IPV4_UNICAST,
            ipnet::IpNet::V6(_) => Self::IPV6_UNICAST,
        }
    }

    pub fn from_name(name: &str) -> Option<Family> {
        match name {
            "ipv4-unicast" => Some(Self::IPV4_UNICAST),
            "ipv6-unicast" => Some(Self::IPV6_UNICAST),
            _ => None,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "afi{}-safi{}", self.afi.0, self.safi.0),
        }
    }
}

/// The set of supported families for which ADD-PATH (RFC 7911) path
/// identifiers are present in one direction of a session.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddPathFamilies(u8);

impl AddPathFamilies {
    pub const NONE: AddPathFamilies = AddPathFamilies(0);

    fn bit(family: Family) -> u8 {
        match family {
            Family::IPV4_UNICAST => 1,
            Family::IPV6_UNICAST => 2,
            _ => 0,
        }
    }

    pub fn with(mut self, family: Family) -> Self {
        self.0 |= Self::bit(family);
        self
    }

    pub fn contains(self, family: Family) -> bool {
        let bit = Self::bit(family);
        bit != 0 && self.0 & bit != 0
    }
}

/// What was negotiated on a session, for one direction. The codec never
/// guesses: every decode and encode takes this explicitly.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// Both sides advertised the 4-octet AS capability (RFC 6793).
    pub four_octet_as: bool,
    /// Both sides advertised the extended message capability (RFC 8654):
    /// UPDATE, NOTIFICATION and ROUTE-REFRESH may be up to 65535 octets.
    pub extended_message: bool,
    /// Families whose NLRI carry path identifiers in this direction.
    pub add_path: AddPathFamilies,
    /// The peer is in another AS. Some RFC 7606 rules (LOCAL_PREF,
    /// ORIGINATOR_ID, CLUSTER_LIST) depend on it.
    pub external_peer: bool,
}

impl Context {
    /// The context of a modern eBGP session: 4-octet AS, no extended
    /// messages, no ADD-PATH.
    pub fn ebgp() -> Self {
        Context {
            four_octet_as: true,
            extended_message: false,
            add_path: AddPathFamilies::NONE,
            external_peer: true,
        }
    }

    /// The largest message this side may send or accept for UPDATE,
    /// NOTIFICATION and ROUTE-REFRESH.
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            crate::message::MAX_EXTENDED_MESSAGE_LEN
        } else {
            crate::message::MAX_MESSAGE_LEN
        }
    }
}
