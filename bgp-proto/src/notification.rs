//! NOTIFICATION messages (RFC 4271 §4.5) with named error codes and
//! subcodes, shutdown communication (RFC 9003) and Hard Reset (RFC 8538).

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::wire::u8_;

macro_rules! named_codes {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $value:literal => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name { $($variant = $value,)* }

        impl $name {
            pub fn from_u8(value: u8) -> Option<Self> {
                match value { $($value => Some(Self::$variant),)* _ => None }
            }
            pub fn text(self) -> &'static str {
                match self { $(Self::$variant => $text,)* }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 { v as u8 }
        }
    };
}

named_codes! {
    /// NOTIFICATION error codes (RFC 4271 §4.5, RFC 6608, RFC 7313).
    ErrorCode {
        MessageHeader = 1 => "Message Header Error",
        Open = 2 => "OPEN Message Error",
        Update = 3 => "UPDATE Message Error",
        HoldTimerExpired = 4 => "Hold Timer Expired",
        Fsm = 5 => "Finite State Machine Error",
        Cease = 6 => "Cease",
        RouteRefresh = 7 => "ROUTE-REFRESH Message Error",
    }
}

named_codes! {
    /// Subcodes of Message Header Error (RFC 4271 §6.1).
    HeaderSubcode {
        ConnectionNotSynchronized = 1 => "Connection Not Synchronized",
        BadMessageLength = 2 => "Bad Message Length",
        BadMessageType = 3 => "Bad Message Type",
    }
}

named_codes! {
    /// Subcodes of OPEN Message Error (RFC 4271 §6.2, RFC 5492, RFC 9234).
    OpenSubcode {
        Unspecific = 0 => "Unspecific",
        UnsupportedVersionNumber = 1 => "Unsupported Version Number",
        BadPeerAs = 2 => "Bad Peer AS",
        BadBgpIdentifier = 3 => "Bad BGP Identifier",
        UnsupportedOptionalParameter = 4 => "Unsupported Optional Parameter",
        UnacceptableHoldTime = 6 => "Unacceptable Hold Time",
        UnsupportedCapability = 7 => "Unsupported Capability",
        RoleMismatch = 11 => "Role Mismatch",
    }
}

named_codes! {
    /// Subcodes of UPDATE Message Error (RFC 4271 §6.3).
    UpdateSubcode {
        MalformedAttributeList = 1 => "Malformed Attribute List",
        UnrecognizedWellKnownAttribute = 2 => "Unrecognized Well-known Attribute",
        MissingWellKnownAttribute = 3 => "Missing Well-known Attribute",
        AttributeFlagsError = 4 => "Attribute Flags Error",
        AttributeLengthError = 5 => "Attribute Length Error",
        InvalidOriginAttribute = 6 => "Invalid ORIGIN Attribute",
        InvalidNextHopAttribute = 8 => "Invalid NEXT_HOP Attribute",
        OptionalAttributeError = 9 => "Optional Attribute Error",
        InvalidNetworkField = 10 => "Invalid Network Field",
        MalformedAsPath = 11 => "Malformed AS_PATH",
    }
}

named_codes! {
    /// Subcodes of Finite State Machine Error (RFC 6608).
    FsmSubcode {
        Unspecified = 0 => "Unspecified Error",
        UnexpectedMessageInOpenSent = 1 => "Receive Unexpected Message in OpenSent State",
        UnexpectedMessageInOpenConfirm = 2 => "Receive Unexpected Message in OpenConfirm State",
        UnexpectedMessageInEstablished = 3 => "Receive Unexpected Message in Established State",
    }
}

named_codes! {
    /// Subcodes of Cease (RFC 4486, RFC 8538, RFC 9384).
    CeaseSubcode {
        MaximumPrefixesReached = 1 => "Maximum Number of Prefixes Reached",
        AdministrativeShutdown = 2 => "Administrative Shutdown",
        PeerDeconfigured = 3 => "Peer De-configured",
        AdministrativeReset = 4 => "Administrative Reset",
        ConnectionRejected = 5 => "Connection Rejected",
        OtherConfigurationChange = 6 => "Other Configuration Change",
        ConnectionCollisionResolution = 7 => "Connection Collision Resolution",
        OutOfResources = 8 => "Out of Resources",
        HardReset = 9 => "Hard Reset",
        BfdDown = 10 => "BFD Down",
    }
}

named_codes! {
    /// Subcodes of ROUTE-REFRESH Message Error (RFC 7313).
    RouteRefreshSubcode {
        InvalidMessageLength = 1 => "Invalid Message Length",
    }
}

/// A NOTIFICATION message. Code and subcode are kept as received so that
/// unknown values survive; [`Notification::describe`] names them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Bytes,
}

/// The longest shutdown communication RFC 9003 allows, in octets.
pub const MAX_SHUTDOWN_MESSAGE_LEN: usize = 255;

impl Notification {
    pub fn new(code: ErrorCode, subcode: impl Into<u8>, data: impl Into<Bytes>) -> Self {
        Notification {
            code: code.into(),
            subcode: subcode.into(),
            data: data.into(),
        }
    }

    pub fn header(subcode: HeaderSubcode, data: impl Into<Bytes>) -> Self {
        Self::new(ErrorCode::MessageHeader, subcode, data)
    }

    pub fn open(subcode: OpenSubcode, data: impl Into<Bytes>) -> Self {
        Self::new(ErrorCode::Open, subcode, data)
    }

    pub fn update(subcode: UpdateSubcode, data: impl Into<Bytes>) -> Self {
        Self::new(ErrorCode::Update, subcode, data)
    }

    pub fn fsm(subcode: FsmSubcode) -> Self {
        Self::new(ErrorCode::Fsm, subcode, Bytes::new())
    }

    pub fn hold_timer_expired() -> Self {
        Self::new(ErrorCode::HoldTimerExpired, 0u8, Bytes::new())
    }

    pub fn cease(subcode: CeaseSubcode) -> Self {
        Self::new(ErrorCode::Cease, subcode, Bytes::new())
    }

    /// An Administrative Shutdown or Reset carrying a shutdown communication
    /// (RFC 9003 §2). The text is cut at a character boundary to fit 255
    /// octets.
    pub fn shutdown(subcode: CeaseSubcode, message: &str) -> Self {
        let mut end = message.len().min(MAX_SHUTDOWN_MESSAGE_LEN);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let text = &message.as_bytes()[..end];
        let mut data = Vec::with_capacity(1 + text.len());
        // `end` is at most 255.
        data.put_u8(end as u8);
        data.put_slice(text);
        Self::new(ErrorCode::Cease, subcode, data)
    }

    /// Wraps a Cease notification in a Hard Reset (RFC 8538 §3): the data
    /// carries the inner subcode and data. Non-Cease inputs are wrapped with
    /// their own code and subcode as the data, as RFC 8538 §5 allows.
    pub fn hard_reset(inner: &Notification) -> Self {
        let mut data = Vec::with_capacity(2 + inner.data.len());
        data.put_u8(inner.code);
        data.put_u8(inner.subcode);
        data.put_slice(&inner.data);
        Self::new(ErrorCode::Cease, CeaseSubcode::HardReset, data)
    }

    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_u8(self.code)
    }

    pub fn is_cease(&self, subcode: CeaseSubcode) -> bool {
        self.code == ErrorCode::Cease as u8 && self.subcode == subcode as u8
    }

    /// RFC 8538 §3: a Hard Reset ends graceful restart for the session.
    pub fn is_hard_reset(&self) -> bool {
        self.is_cease(CeaseSubcode::HardReset)
    }

    /// The shutdown communication of an Administrative Shutdown or Reset, if
    /// it carries a well-formed one (RFC 9003 §2: length octet then UTF-8).
    pub fn shutdown_message(&self) -> Option<String> {
        if !(self.is_cease(CeaseSubcode::AdministrativeShutdown)
            || self.is_cease(CeaseSubcode::AdministrativeReset))
        {
            return None;
        }
        let (rest, len) = u8_(&self.data).ok()?;
        let text = rest.get(..usize::from(len))?;
        std::str::from_utf8(text).ok().map(str::to_owned)
    }

    /// A displayable name for code and subcode, e.g.
    /// "Cease / Administrative Shutdown".
    pub fn describe(&self) -> impl fmt::Display + '_ {
        Described(self)
    }

    fn subcode_text(&self) -> Option<&'static str> {
        let s = self.subcode;
        match self.error_code()? {
            ErrorCode::MessageHeader => HeaderSubcode::from_u8(s).map(HeaderSubcode::text),
            ErrorCode::Open => OpenSubcode::from_u8(s).map(OpenSubcode::text),
            ErrorCode::Update => UpdateSubcode::from_u8(s).map(UpdateSubcode::text),
            ErrorCode::Fsm => FsmSubcode::from_u8(s).map(FsmSubcode::text),
            ErrorCode::Cease => CeaseSubcode::from_u8(s).map(CeaseSubcode::text),
            ErrorCode::RouteRefresh => RouteRefreshSubcode::from_u8(s).map(RouteRefreshSubcode::text),
            ErrorCode::HoldTimerExpired => (s == 0).then_some("Unspecific"),
        }
    }
}

struct Described<'a>(&'a Notification);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        match n.error_code() {
            Some(code) => f.write_str(code.text())?,
            None => write!(f, "error code {}", n.code)?,
        }
        match n.subcode_text() {
            Some(text) => write!(f, " / {text}")?,
            None => write!(f, " / subcode {}", n.subcode)?,
        }
        if let Some(msg) = n.shutdown_message() {
            write!(f, ": \"{}\"", msg.escape_debug())?;
        }
        Ok(())
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = Notification::update(UpdateSubcode::MalformedAsPath, Bytes::new());
        assert_eq!(n.to_string(), "UPDATE Message Error / Malformed AS_PATH");
        let n = Notification {
            code: 6,
            subcode: 77,
            data: Bytes::new(),
        };
        assert_eq!(n.to_string(), "Cease / subcode 77");
        let n = Notification {
            code: 99,
            subcode: 1,
            data: Bytes::new(),
        };
        assert_eq!(n.to_string(), "error code 99 / subcode 1");
    }

    #[test]
    fn shutdown_communication_round_trip() {
        let n = Notification::shutdown(CeaseSubcode::AdministrativeShutdown, "maintenance window");
        assert_eq!(&n.data[..], b"\x12maintenance window");
        assert_eq!(n.shutdown_message().as_deref(), Some("maintenance window"));
        assert_eq!(
            n.to_string(),
            "Cease / Administrative Shutdown: \"maintenance window\""
        );
    }

    #[test]
    fn shutdown_communication_is_cut_on_a_char_boundary() {
        let long = "é".repeat(200); // 400 octets
        let n = Notification::shutdown(CeaseSubcode::AdministrativeReset, &long);
        assert_eq!(n.data[0], 254);
        assert_eq!(n.shutdown_message().unwrap().chars().count(), 127);
    }

    #[test]
    fn malformed_shutdown_communication_is_not_a_message() {
        let n = Notification::new(
            ErrorCode::Cease,
            CeaseSubcode::AdministrativeShutdown,
            &b"\x09short"[..],
        );
        assert_eq!(n.shutdown_message(), None);
        let n = Notification::new(
            ErrorCode::Cease,
            CeaseSubcode::AdministrativeShutdown,
            &b"\x02\xff\xfe"[..],
        );
        assert_eq!(n.shutdown_message(), None);
    }

    #[test]
    fn hard_reset_wraps_the_cease() {
        let inner = Notification::cease(CeaseSubcode::AdministrativeReset);
        let n = Notification::hard_reset(&inner);
        assert!(n.is_hard_reset());
        assert_eq!(&n.data[..], &[6, 4]);
    }
}
