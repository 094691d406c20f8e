//! The message header (RFC 4271 §4.1), framing of a byte stream into
//! messages, and dispatch to each message type.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::Context;
use crate::notification::{HeaderSubcode, Notification};
use crate::open::Open;
use crate::route_refresh::RouteRefresh;
use crate::update::Update;

pub const HEADER_LEN: usize = 19;
/// The largest message without the extended message capability.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The largest message with it (RFC 8654).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;
const MARKER: [u8; 16] = [0xff; 16];

/// Smallest valid length of each message type, header included.
const MIN_OPEN_LEN: usize = 29;
const MIN_UPDATE_LEN: usize = 23;
const MIN_NOTIFICATION_LEN: usize = 21;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

impl MessageType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Open,
            2 => Self::Update,
            3 => Self::Notification,
            4 => Self::Keepalive,
            5 => Self::RouteRefresh,
            _ => return None,
        })
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "OPEN",
            Self::Update => "UPDATE",
            Self::Notification => "NOTIFICATION",
            Self::Keepalive => "KEEPALIVE",
            Self::RouteRefresh => "ROUTE-REFRESH",
        })
    }
}

// An UPDATE is decoded and consumed at once; boxing it would cost an
// allocation per message for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// A message that must end the session: the NOTIFICATION to send, and a
/// short description for the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{detail} ({notification})")]
pub struct MessageError {
    pub notification: Notification,
    pub detail: &'static str,
}

impl MessageError {
    pub fn new(notification: Notification, detail: &'static str) -> Self {
        MessageError { notification, detail }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {len} octets exceeds the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("capability {code} value of {len} octets exceeds 255")]
    CapabilityTooLong { code: u8, len: usize },
}

fn bad_length(len: u16) -> MessageError {
    // RFC 4271 §6.1: the data is the erroneous Length field.
    MessageError::new(
        Notification::header(HeaderSubcode::BadMessageLength, len.to_be_bytes().to_vec()),
        "bad message length",
    )
}

/// Looks at the start of a receive buffer. Returns the length of the first
/// message once its header is complete, after checking the marker and that
/// the length is within what the session allows (RFC 4271 §6.1).
pub fn frame_len(buf: &[u8], ctx: &Context) -> Result<Option<usize>, MessageError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16] != MARKER {
        return Err(MessageError::new(
            Notification::header(HeaderSubcode::ConnectionNotSynchronized, Bytes::new()),
            "message marker is not all ones",
        ));
    }
    let len = u16::from_be_bytes([buf[16], buf[17]]);
    if usize::from(len) < HEADER_LEN || usize::from(len) > ctx.max_message_len() {
        return Err(bad_length(len));
    }
    Ok(Some(usize::from(len)))
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// Decodes exactly one message, header included. Every error carries
    /// the NOTIFICATION that RFC 4271 §6 (as updated by RFC 7606, RFC 7313
    /// and RFC 8654) prescribes.
    pub fn decode(msg: &[u8], ctx: &Context) -> Result<Message, MessageError> {
        let Some(len) = frame_len(msg, ctx)? else {
            return Err(bad_length(u16::try_from(msg.len()).unwrap_or(u16::MAX)));
        };
        let len16 = len as u16;
        if len != msg.len() {
            return Err(bad_length(len16));
        }
        let body = &msg[HEADER_LEN..];
        let Some(kind) = MessageType::from_u8(msg[18]) else {
            return Err(MessageError::new(
                Notification::header(HeaderSubcode::BadMessageType, vec![msg[18]]),
                "unknown message type",
            ));
        };
        match kind {
            MessageType::Open => {
                // RFC 8654 §4: OPEN stays within 4096 octets.
                if !(MIN_OPEN_LEN..=MAX_MESSAGE_LEN).contains(&len) {
                    return Err(bad_length(len16));
                }
                Open::decode_body(body).map(Message::Open)
            }
            MessageType::Update => {
                if len < MIN_UPDATE_LEN {
                    return Err(bad_length(len16));
                }
                Update::decode_body(body, ctx).map(Message::Update)
            }
            MessageType::Notification => {
                if len < MIN_NOTIFICATION_LEN {
                    return Err(bad_length(len16));
                }
                Ok(Message::Notification(Notification {
                    code: body[0],
                    subcode: body[1],
                    data: Bytes::copy_from_slice(&body[2..]),
                }))
            }
            MessageType::Keepalive => {
                if len != HEADER_LEN {
                    return Err(bad_length(len16));
                }
                Ok(Message::Keepalive)
            }
            MessageType::RouteRefresh => RouteRefresh::decode(msg, body).map(Message::RouteRefresh),
        }
    }

    /// Appends the encoded message to `buf`. On error `buf` is unchanged.
    pub fn encode(&self, ctx: &Context, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Message::Open(open) => open.encode(buf),
            Message::Update(update) => update.encode(ctx, buf),
            Message::Notification(n) => {
                let start = start_message(buf, MessageType::Notification);
                buf.put_u8(n.code);
                buf.put_u8(n.subcode);
                buf.put_slice(&n.data);
                finish_message(buf, start, ctx.max_message_len())
            }
            Message::Keepalive => {
                let start = start_message(buf, MessageType::Keepalive);
                finish_message(buf, start, MAX_MESSAGE_LEN)
            }
            Message::RouteRefresh(rr) => rr.encode(ctx, buf),
        }
    }
}

/// Writes a header with a zero length; returns where the message starts.
pub(crate) fn start_message(buf: &mut BytesMut, kind: MessageType) -> usize {
    let start = buf.len();
    buf.put_slice(&MARKER);
    buf.put_u16(0);
    buf.put_u8(kind as u8);
    start
}

/// Fills in the length of the message that starts at `start`, or removes
/// it and fails if it exceeds `max`.
pub(crate) fn finish_message(buf: &mut BytesMut, start: usize, max: usize) -> Result<(), EncodeError> {
    let len = buf.len() - start;
    if len > max {
        buf.truncate(start);
        return Err(EncodeError::TooLong { len, max });
    }
    buf[start + 16..start + 18].copy_from_slice(&(len as u16).to_be_bytes());
    Ok(())
}
