//! ROUTE-REFRESH messages (RFC 2918) with the enhanced route refresh
//! subtypes (RFC 7313 §3).

use bytes::{BufMut, Bytes, BytesMut};

use crate::message::{EncodeError, MessageError, MessageType, finish_message, start_message};
use crate::notification::{ErrorCode, Notification, RouteRefreshSubcode};
use crate::{Afi, Context, Family, Safi};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RefreshSubtype {
    /// A request to re-advertise the Adj-RIB-Out (RFC 2918).
    Request,
    /// Beginning of Route Refresh (RFC 7313).
    BeginOfRefresh,
    /// End of Route Refresh (RFC 7313).
    EndOfRefresh,
    /// Any other value; RFC 7313 §5 says to ignore the message.
    Unknown(u8),
}

impl RefreshSubtype {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Request,
            1 => Self::BeginOfRefresh,
            2 => Self::EndOfRefresh,
            v => Self::Unknown(v),
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Request => 0,
            Self::BeginOfRefresh => 1,
            Self::EndOfRefresh => 2,
            Self::Unknown(v) => v,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: RefreshSubtype,
}

impl RouteRefresh {
    pub fn request(family: Family) -> Self {
        RouteRefresh {
            family,
            subtype: RefreshSubtype::Request,
        }
    }

    /// `message` is the whole message, needed as NOTIFICATION data when its
    /// length is wrong (RFC 7313 §5).
    pub(crate) fn decode(message: &[u8], body: &[u8]) -> Result<RouteRefresh, MessageError> {
        let [afi_hi, afi_lo, subtype, safi] = body else {
            return Err(MessageError::new(
                Notification::new(
                    ErrorCode::RouteRefresh,
                    RouteRefreshSubcode::InvalidMessageLength,
                    Bytes::copy_from_slice(message),
                ),
                "ROUTE-REFRESH of the wrong length",
            ));
        };
        Ok(RouteRefresh {
            family: Family::new(Afi(u16::from_be_bytes([*afi_hi, *afi_lo])), Safi(*safi)),
            subtype: RefreshSubtype::from_u8(*subtype),
        })
    }

    pub fn encode(&self, ctx: &Context, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let start = start_message(buf, MessageType::RouteRefresh);
        buf.put_u16(self.family.afi.0);
        buf.put_u8(self.subtype.to_u8());
        buf.put_u8(self.family.safi.0);
        finish_message(buf, start, ctx.max_message_len())
    }
}
