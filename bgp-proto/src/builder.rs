//! Packs routes into as few UPDATE messages as fit: many prefixes sharing
//! one attribute set per message, up to 4096 octets (65535 with extended
//! messages). This is what makes a full-table transfer fast.

use bytes::{BufMut, BytesMut};

use crate::attribute::{Attributes, code, flags};
use crate::message::{EncodeError, MessageType, finish_message, start_message};
use crate::mp::{NextHop, nlri_len, put_family, put_nlri};
use crate::nlri::Nlri;
use crate::update::Update;
use crate::{Context, Family};

/// Writes UPDATEs for one direction of a session. Keeps a scratch buffer so
/// an attribute set is encoded once per call, not once per message.
#[derive(Debug)]
pub struct UpdateBuilder {
    ctx: Context,
    attrs: BytesMut,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("the attributes leave no room for a prefix in a {max}-octet message")]
    AttributesTooLong { max: usize },
    #[error("prefix of family {found} among prefixes of {expected}")]
    FamilyMismatch { expected: Family, found: Family },
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Where the prefixes of one message go.
enum Layout {
    /// IPv4 NLRI field, or IPv4 withdrawn routes field.
    Classic,
    /// Inside MP_REACH_NLRI or MP_UNREACH_NLRI.
    Mp,
}

impl UpdateBuilder {
    pub fn new(ctx: Context) -> Self {
        UpdateBuilder {
            ctx,
            attrs: BytesMut::with_capacity(256),
        }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Appends UPDATEs announcing `prefixes`, all of `family`, with `attrs`
    /// and `next_hop`; returns how many messages were written.
    ///
    /// IPv4 prefixes with an IPv4 next hop use the NLRI field and the
    /// NEXT_HOP attribute; everything else uses MP_REACH_NLRI, written first
    /// among the attributes (RFC 7606 §5.1), which also carries IPv4 NLRI
    /// with an IPv6 next hop (RFC 8950). Any NEXT_HOP in `attrs` is
    /// replaced. On error `buf` is left as it was.
    pub fn announce(
        &mut self,
        buf: &mut BytesMut,
        family: Family,
        attrs: &Attributes,
        next_hop: NextHop,
        prefixes: &[Nlri],
    ) -> Result<usize, BuildError> {
        let classic_nh = match next_hop {
            NextHop::V4(a) if family == Family::IPV4_UNICAST => Some(a),
            _ => None,
        };
        self.attrs.clear();
        if attrs.next_hop == classic_nh {
            attrs.encode(&self.ctx, &mut self.attrs);
        } else {
            let mut with_nh = attrs.clone();
            with_nh.next_hop = classic_nh;
            with_nh.encode(&self.ctx, &mut self.attrs);
        }
        let layout = if classic_nh.is_some() {
            Layout::Classic
        } else {
            Layout::Mp
        };
        let attrs = std::mem::take(&mut self.attrs);
        let result = self.write_all(buf, family, prefixes, |buf, nlri_fits| {
            let start = start_message(buf, MessageType::Update);
            buf.put_u16(0);
            let alen_at = buf.len();
            buf.put_u16(0);
            match layout {
                Layout::Classic => {
                    buf.extend_from_slice(&attrs);
                    let n = nlri_fits(buf, start, 0);
                    patch_u16(buf, alen_at, attrs.len());
                    (start, n)
                }
                Layout::Mp => {
                    let mp_at = buf.len();
                    buf.put_u8(flags::OPTIONAL | flags::EXTENDED_LENGTH);
                    buf.put_u8(code::MP_REACH_NLRI);
                    buf.put_u16(0);
                    put_family(buf, family);
                    // A next hop is 4, 16 or 32 octets.
                    buf.put_u8(next_hop.encoded_len() as u8);
                    next_hop.encode(buf);
                    buf.put_u8(0);
                    // Leave room for the attributes that follow the NLRI.
                    let n = nlri_fits(buf, start, attrs.len());
                    patch_u16(buf, mp_at + 2, buf.len() - mp_at - 4);
                    buf.extend_from_slice(&attrs);
                    patch_u16(buf, alen_at, buf.len() - alen_at - 2);
                    (start, n)
                }
            }
        });
        self.attrs = attrs;
        result
    }

    /// Appends UPDATEs withdrawing `prefixes`, all of `family`: IPv4 in the
    /// withdrawn routes field, IPv6 in MP_UNREACH_NLRI. Returns how many
    /// messages were written; on error `buf` is left as it was.
    pub fn withdraw(
        &mut self,
        buf: &mut BytesMut,
        family: Family,
        prefixes: &[Nlri],
    ) -> Result<usize, BuildError> {
        let classic = family == Family::IPV4_UNICAST;
        self.write_all(buf, family, prefixes, |buf, nlri_fits| {
            let start = start_message(buf, MessageType::Update);
            if classic {
                let wlen_at = buf.len();
                buf.put_u16(0);
                // Leave room for the total path attribute length.
                let n = nlri_fits(buf, start, 2);
                patch_u16(buf, wlen_at, buf.len() - wlen_at - 2);
                buf.put_u16(0);
                (start, n)
            } else {
                buf.put_u16(0);
                let alen_at = buf.len();
                buf.put_u16(0);
                let mp_at = buf.len();
                buf.put_u8(flags::OPTIONAL | flags::EXTENDED_LENGTH);
                buf.put_u8(code::MP_UNREACH_NLRI);
                buf.put_u16(0);
                put_family(buf, family);
                let n = nlri_fits(buf, start, 0);
                patch_u16(buf, mp_at + 2, buf.len() - mp_at - 4);
                patch_u16(buf, alen_at, buf.len() - alen_at - 2);
                (start, n)
            }
        })
    }

    /// Appends the End-of-RIB marker of `family` (RFC 4724 §2).
    pub fn end_of_rib(&self, buf: &mut BytesMut, family: Family) -> Result<(), EncodeError> {
        Update::end_of_rib(family).encode(&self.ctx, buf)
    }

    /// Writes messages until every prefix is placed. `message` starts one
    /// message and calls `nlri_fits(buf, start, after)` to fill it with as
    /// many prefixes as fit in a message that began at `start` and still
    /// needs `after` octets once the NLRI are written.
    fn write_all(
        &self,
        buf: &mut BytesMut,
        family: Family,
        prefixes: &[Nlri],
        mut message: impl FnMut(
            &mut BytesMut,
            &mut dyn FnMut(&mut BytesMut, usize, usize) -> usize,
        ) -> (usize, usize),
    ) -> Result<usize, BuildError> {
        let initial = buf.len();
        let max = self.ctx.max_message_len();
        let add_path = self.ctx.add_path.contains(family);
        if let Some(p) = prefixes.iter().find(|p| p.family() != family) {
            return Err(BuildError::FamilyMismatch {
                expected: family,
                found: p.family(),
            });
        }
        let mut rest = prefixes;
        let mut messages = 0;
        while !rest.is_empty() {
            let mut pack = |buf: &mut BytesMut, start: usize, after: usize| {
                let mut budget = max.saturating_sub(buf.len() - start + after);
                let mut n = 0;
                for p in rest {
                    let len = nlri_len(p, add_path);
                    if len > budget {
                        break;
                    }
                    put_nlri(buf, p, add_path);
                    budget -= len;
                    n += 1;
                }
                n
            };
            let (start, taken) = message(buf, &mut pack);
            if taken == 0 {
                buf.truncate(initial);
                return Err(BuildError::AttributesTooLong { max });
            }
            if let Err(e) = finish_message(buf, start, max) {
                buf.truncate(initial);
                return Err(e.into());
            }
            rest = &rest[taken..];
            messages += 1;
        }
        Ok(messages)
    }
}

fn patch_u16(buf: &mut BytesMut, at: usize, value: usize) {
    // Every length patched here is bounded by the message size.
    buf[at..at + 2].copy_from_slice(&(value as u16).to_be_bytes());
}
