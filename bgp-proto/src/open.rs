//! OPEN messages (RFC 4271 §4.2) with capabilities as optional parameters
//! (RFC 5492) and the extended optional parameters length (RFC 9072).

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};

use crate::Family;
use crate::aspath::AS_TRANS;
use crate::capability::{Capability, GracefulRestart};
use crate::message::{
    EncodeError, MAX_MESSAGE_LEN, MessageError, MessageType, finish_message, start_message,
};
use crate::notification::{Notification, OpenSubcode};
use crate::wire::{ipv4, take_bytes, u8_, u16_};

/// The only BGP version there is.
pub const BGP_VERSION: u8 = 4;

/// Optional parameter type for capabilities (RFC 5492 §4).
const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072 §2: a non-extended length and type of 255 announce the
/// extended format.
const PARAM_EXTENDED: u8 = 255;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The 2-octet "My Autonomous System" field: AS_TRANS when the real AS
    /// needs four octets (RFC 6793 §4.1).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

fn unspecific(detail: &'static str) -> MessageError {
    MessageError::new(Notification::open(OpenSubcode::Unspecific, Bytes::new()), detail)
}

impl Open {
    /// An OPEN for `asn`, with the 4-octet AS capability added if it is not
    /// among `capabilities`.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, mut capabilities: Vec<Capability>) -> Self {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        Open {
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS as u16),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The sender's AS: from the 4-octet AS capability if present.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// Families of the multiprotocol capabilities.
    pub fn families(&self) -> impl Iterator<Item = Family> + '_ {
        self.capabilities.iter().filter_map(|c| match c {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
    }

    pub fn has(&self, code: u8) -> bool {
        self.capabilities.iter().any(|c| c.code() == code)
    }

    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr),
            _ => None,
        })
    }

    pub(crate) fn decode_body(body: &[u8]) -> Result<Open, MessageError> {
        let short = || unspecific("OPEN too short");
        let (rest, version) = u8_(body).map_err(|_| short())?;
        if version != BGP_VERSION {
            // RFC 4271 §6.2: the data is the largest supported version.
            return Err(MessageError::new(
                Notification::open(OpenSubcode::UnsupportedVersionNumber, vec![0, BGP_VERSION]),
                "unsupported BGP version",
            ));
        }
        let (rest, my_as) = u16_(rest).map_err(|_| short())?;
        let (rest, hold_time) = u16_(rest).map_err(|_| short())?;
        let (rest, bgp_id) = ipv4(rest).map_err(|_| short())?;
        let (rest, opt_len) = u8_(rest).map_err(|_| short())?;

        let mut capabilities = Vec::new();
        let params_overrun = || unspecific("optional parameters overrun the OPEN");
        let mut params;
        let extended = opt_len == PARAM_EXTENDED && rest.first() == Some(&PARAM_EXTENDED);
        if extended {
            let (r, ext_len) = u16_(&rest[1..]).map_err(|_| params_overrun())?;
            let (tail, p) = take_bytes(r, usize::from(ext_len)).map_err(|_| params_overrun())?;
            if !tail.is_empty() {
                return Err(unspecific("octets after the optional parameters"));
            }
            params = p;
        } else {
            let (tail, p) = take_bytes(rest, usize::from(opt_len)).map_err(|_| params_overrun())?;
            if !tail.is_empty() {
                return Err(unspecific("octets after the optional parameters"));
            }
            params = p;
        }
        while !params.is_empty() {
            let (r, ptype) = u8_(params).map_err(|_| params_overrun())?;
            let (r, plen) = if extended {
                u16_(r).map_err(|_| params_overrun())?
            } else {
                u8_(r)
                    .map(|(r, l)| (r, u16::from(l)))
                    .map_err(|_| params_overrun())?
            };
            let (r, value) = take_bytes(r, usize::from(plen)).map_err(|_| params_overrun())?;
            params = r;
            if ptype != PARAM_CAPABILITIES {
                return Err(MessageError::new(
                    Notification::open(OpenSubcode::UnsupportedOptionalParameter, Bytes::new()),
                    "optional parameter other than capabilities",
                ));
            }
            decode_capabilities(value, &mut capabilities)?;
        }
        Ok(Open {
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }

    /// Appends the whole message. Each capability travels in its own
    /// optional parameter; the RFC 9072 format is used only when the
    /// parameters exceed 255 octets.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        for c in &self.capabilities {
            if c.value_len() > 255 {
                return Err(EncodeError::CapabilityTooLong {
                    code: c.code(),
                    len: c.value_len(),
                });
            }
        }
        let start = start_message(buf, MessageType::Open);
        buf.put_u8(BGP_VERSION);
        buf.put_u16(self.my_as);
        buf.put_u16(self.hold_time);
        buf.put_slice(&self.bgp_id.octets());
        let short_total: usize = self.capabilities.iter().map(|c| 4 + c.value_len()).sum();
        if short_total <= 255 {
            buf.put_u8(short_total as u8);
            for c in &self.capabilities {
                buf.put_u8(PARAM_CAPABILITIES);
                buf.put_u8((2 + c.value_len()) as u8);
                put_capability(buf, c);
            }
        } else {
            let ext_total: usize = self.capabilities.iter().map(|c| 5 + c.value_len()).sum();
            let Ok(ext_total) = u16::try_from(ext_total) else {
                buf.truncate(start);
                return Err(EncodeError::TooLong {
                    len: ext_total,
                    max: MAX_MESSAGE_LEN,
                });
            };
            buf.put_u8(PARAM_EXTENDED);
            buf.put_u8(PARAM_EXTENDED);
            buf.put_u16(ext_total);
            for c in &self.capabilities {
                buf.put_u8(PARAM_CAPABILITIES);
                buf.put_u16((2 + c.value_len()) as u16);
                put_capability(buf, c);
            }
        }
        // RFC 8654 §4: OPEN never exceeds 4096 octets.
        finish_message(buf, start, MAX_MESSAGE_LEN)
    }
}

fn put_capability(buf: &mut BytesMut, c: &Capability) {
    buf.put_u8(c.code());
    buf.put_u8(c.value_len() as u8);
    c.encode_value(buf);
}

fn decode_capabilities(mut input: &[u8], out: &mut Vec<Capability>) -> Result<(), MessageError> {
    let overrun = || unspecific("capability overruns its optional parameter");
    while !input.is_empty() {
        let (r, code) = u8_(input).map_err(|_| overrun())?;
        let (r, len) = u8_(r).map_err(|_| overrun())?;
        let (r, value) = take_bytes(r, usize::from(len)).map_err(|_| overrun())?;
        input = r;
        out.push(Capability::decode(code, value));
    }
    Ok(())
}
