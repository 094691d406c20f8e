//! The errors of this crate: text forms that do not parse and prefix
//! entries whose length range is impossible. Each message says what was
//! expected, because the daemon prints it after a `file:line:col:` and the
//! operator must be able to fix the line from it alone.

use ipnet::IpNet;

/// Why a policy building block could not be parsed or built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid prefix {text:?}: expected ADDRESS/LENGTH such as 10.96.0.0/16 or fd00::/8")]
    Prefix { text: String },
    #[error("prefix {prefix} has host bits set: expected the network address {network}")]
    HostBits { prefix: IpNet, network: IpNet },
    #[error(
        "invalid prefix entry {text:?}: {detail}; expected PREFIX [ge N] [le N], e.g. \"10.96.0.0/16 le 32\""
    )]
    PrefixEntry { text: String, detail: &'static str },
    #[error("invalid prefix entry \"{entry}\": {problem}")]
    PrefixRange {
        entry: String,
        problem: PrefixRangeError,
    },
    #[error(
        "invalid community pattern {text:?}: expected ASN:VALUE with both parts 0-65535 or *, \
         or a well-known name such as no-export (e.g. 65000:100, 65000:*, *:100)"
    )]
    CommunityPattern { text: String },
    #[error(
        "invalid large community pattern {text:?}: expected GLOBAL:LOCAL1:LOCAL2 with each part \
         0-4294967295 or * (e.g. 65000:1:*)"
    )]
    LargeCommunityPattern { text: String },
    /// A one-word setting (role, origin, next hop, statement result, default)
    /// that is none of the words it may be.
    #[error("invalid {what} {text:?}: expected {expected}")]
    Keyword {
        what: &'static str,
        text: String,
        expected: &'static str,
    },
}

/// Why the `ge`/`le` bounds of a prefix entry cannot match any prefix.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixRangeError {
    #[error("ge {ge} is shorter than the prefix length {len}: expected ge between {len} and {max}")]
    GeBelowPrefix { ge: u8, len: u8, max: u8 },
    #[error("le {le} is shorter than the prefix length {len}: expected le between {len} and {max}")]
    LeBelowPrefix { le: u8, len: u8, max: u8 },
    #[error("le {le} is less than ge {ge}: expected le of at least {ge}")]
    LeBelowGe { ge: u8, le: u8 },
    #[error("{bound} {value} is longer than {max}, the longest prefix of its family")]
    TooLong { bound: &'static str, value: u8, max: u8 },
}
