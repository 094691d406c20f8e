//! UPDATE messages (RFC 4271 §4.3) and the RFC 7606 procedure that decides,
//! for each error, between session reset, treat-as-withdraw and attribute
//! discard.

use bytes::{BufMut, BytesMut};

use crate::attribute::{
    self, AttributeError, AttributeProblem, Attributes, ErrorAction, Pending, code, expected_flags, flags,
};
use crate::message::{EncodeError, MessageError, MessageType, finish_message, start_message};
use crate::mp::{self, Decoded, MpReach, MpUnreach};
use crate::nlri::{Nlri, decode_nlri};
use crate::notification::{Notification, UpdateSubcode};
use crate::wire::{take_bytes, u16_};
use crate::{Context, Family};

/// An UPDATE. IPv4 unicast prefixes may travel in the classic `withdrawn`
/// and `nlri` fields or in the MP attributes; IPv6 only in the latter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Nlri>,
    pub attributes: Attributes,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub nlri: Vec<Nlri>,
    /// Attribute errors that RFC 7606 resolves without a session reset.
    /// Empty on any UPDATE this crate encoded; ignored by the encoder.
    pub errors: Vec<AttributeError>,
}

fn malformed_list(detail: &'static str) -> MessageError {
    MessageError::new(
        Notification::update(UpdateSubcode::MalformedAttributeList, bytes::Bytes::new()),
        detail,
    )
}

impl Update {
    /// The End-of-RIB marker of a family (RFC 4724 §2): an empty UPDATE for
    /// IPv4 unicast, an UPDATE with only an empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(family: Family) -> Update {
        if family == Family::IPV4_UNICAST {
            Update::default()
        } else {
            Update {
                mp_unreach: Some(MpUnreach {
                    family,
                    withdrawn: Vec::new(),
                }),
                ..Update::default()
            }
        }
    }

    /// The family whose End-of-RIB this UPDATE is, if it is one.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty()
            || !self.nlri.is_empty()
            || self.mp_reach.is_some()
            || self.attributes != Attributes::default()
        {
            return None;
        }
        match &self.mp_unreach {
            None => Some(Family::IPV4_UNICAST),
            Some(u) if u.withdrawn.is_empty() => Some(u.family),
            Some(_) => None,
        }
    }

    /// RFC 7606: whether every prefix this UPDATE announces must be treated
    /// as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.action == ErrorAction::TreatAsWithdraw)
    }

    /// Every announced prefix: the IPv4 NLRI field, then MP_REACH_NLRI.
    pub fn announced(&self) -> impl Iterator<Item = &Nlri> {
        self.nlri
            .iter()
            .chain(self.mp_reach.iter().flat_map(|r| r.nlri.iter()))
    }

    /// Every withdrawn prefix: the IPv4 field, then MP_UNREACH_NLRI.
    pub fn withdrawals(&self) -> impl Iterator<Item = &Nlri> {
        self.withdrawn
            .iter()
            .chain(self.mp_unreach.iter().flat_map(|u| u.withdrawn.iter()))
    }

    /// Decodes the body of an UPDATE (the message without its 19-octet
    /// header).
    pub(crate) fn decode_body(body: &[u8], ctx: &Context) -> Result<Update, MessageError> {
        let v4_add_path = ctx.add_path.contains(Family::IPV4_UNICAST);
        // RFC 4271 §6.3: lengths that overrun the message make the
        // attribute list malformed.
        let (rest, wlen) = u16_(body).map_err(|_| malformed_list("UPDATE too short"))?;
        let (rest, withdrawn_bytes) = take_bytes(rest, usize::from(wlen))
            .map_err(|_| malformed_list("withdrawn routes length overruns"))?;
        let (rest, alen) = u16_(rest).map_err(|_| malformed_list("withdrawn routes length overruns"))?;
        let (nlri_bytes, attr_bytes) = take_bytes(rest, usize::from(alen))
            .map_err(|_| malformed_list("total path attribute length overruns"))?;

        // RFC 7606 §5.3: an NLRI field that cannot be parsed resets the
        // session.
        let invalid_network = |_| {
            MessageError::new(
                Notification::update(UpdateSubcode::InvalidNetworkField, bytes::Bytes::new()),
                "malformed prefix in the IPv4 NLRI or withdrawn routes field",
            )
        };
        let mut update = Update::default();
        decode_nlri(
            withdrawn_bytes,
            Family::IPV4_UNICAST,
            v4_add_path,
            &mut update.withdrawn,
        )
        .map_err(invalid_network)?;
        decode_nlri(nlri_bytes, Family::IPV4_UNICAST, v4_add_path, &mut update.nlri)
            .map_err(invalid_network)?;

        update.decode_attributes(attr_bytes, ctx)?;

        let announces =
            !update.nlri.is_empty() || update.mp_reach.as_ref().is_some_and(|r| !r.nlri.is_empty());
        if announces && !update.treat_as_withdraw() {
            // RFC 7606 §3 d: a missing well-known mandatory attribute.
            if let Some(missing) = update.attributes.missing_mandatory(!update.nlri.is_empty()) {
                update.errors.push(AttributeError {
                    type_code: missing,
                    action: ErrorAction::TreatAsWithdraw,
                    problem: AttributeProblem::Missing,
                });
            }
        }
        Ok(update)
    }

    fn decode_attributes(&mut self, mut input: &[u8], ctx: &Context) -> Result<(), MessageError> {
        let mut seen = [false; 256];
        let mut pending = Pending::default();
        while !input.is_empty() {
            // RFC 7606 §4: an attribute that overruns the field, or too few
            // octets left for a header, is treat-as-withdraw; the NLRI
            // field is still found from the total length.
            let Some((rest, attr_flags, type_code, len)) = attribute::header(input) else {
                self.push_error(0, ErrorAction::TreatAsWithdraw, AttributeProblem::ListOverrun);
                break;
            };
            let Some(value) = rest.get(..len) else {
                self.push_error(
                    type_code,
                    ErrorAction::TreatAsWithdraw,
                    AttributeProblem::ListOverrun,
                );
                break;
            };
            let whole = &input[..input.len() - rest.len() + len];
            input = &rest[len..];

            // RFC 7606 §3 g: repeats of MP attributes reset the session,
            // repeats of any other are discarded.
            if seen[usize::from(type_code)] {
                if attribute::repeat_is_fatal(type_code) {
                    return Err(malformed_list("MP_REACH_NLRI or MP_UNREACH_NLRI appears twice"));
                }
                self.push_error(
                    type_code,
                    ErrorAction::AttributeDiscard,
                    AttributeProblem::Repeated,
                );
                continue;
            }
            seen[usize::from(type_code)] = true;

            match type_code {
                code::MP_REACH_NLRI | code::MP_UNREACH_NLRI => {
                    self.decode_mp(attr_flags, type_code, value, whole, ctx)?
                }
                _ if expected_flags(type_code).is_none() && attr_flags & flags::OPTIONAL == 0 => {
                    // RFC 4271 §6.3, unchanged by RFC 7606.
                    return Err(MessageError::new(
                        Notification::update(UpdateSubcode::UnrecognizedWellKnownAttribute, whole.to_vec()),
                        "unrecognized well-known attribute",
                    ));
                }
                _ => {
                    if let Err(m) = attribute::decode_attribute(
                        attr_flags,
                        type_code,
                        value,
                        ctx,
                        &mut self.attributes,
                        &mut pending,
                    ) {
                        self.push_error(type_code, m.action, m.problem);
                    }
                }
            }
        }
        if !ctx.four_octet_as {
            attribute::merge_as4(&mut self.attributes, pending);
        }
        Ok(())
    }

    fn decode_mp(
        &mut self,
        attr_flags: u8,
        type_code: u8,
        value: &[u8],
        whole: &[u8],
        ctx: &Context,
    ) -> Result<(), MessageError> {
        if attr_flags & (flags::OPTIONAL | flags::TRANSITIVE) != flags::OPTIONAL {
            return Err(MessageError::new(
                Notification::update(UpdateSubcode::AttributeFlagsError, whole.to_vec()),
                "MP attribute with wrong flags",
            ));
        }
        let optional_error = |e: mp::MpError| {
            MessageError::new(
                Notification::update(UpdateSubcode::OptionalAttributeError, whole.to_vec()),
                match e {
                    mp::MpError::Truncated => "MP attribute truncated",
                    mp::MpError::NextHopLength(_) => "MP_REACH_NLRI next hop length invalid",
                    mp::MpError::Nlri(_) => "malformed prefix in an MP attribute",
                },
            )
        };
        let unsupported = if type_code == code::MP_REACH_NLRI {
            match MpReach::decode(value, ctx).map_err(optional_error)? {
                Decoded::Supported(r) => {
                    self.mp_reach = Some(r);
                    None
                }
                Decoded::Unsupported(f) => Some(f),
            }
        } else {
            match MpUnreach::decode(value, ctx).map_err(optional_error)? {
                Decoded::Supported(u) => {
                    self.mp_unreach = Some(u);
                    None
                }
                Decoded::Unsupported(f) => Some(f),
            }
        };
        if let Some(family) = unsupported {
            self.push_error(
                type_code,
                ErrorAction::AttributeDiscard,
                AttributeProblem::UnsupportedFamily(family),
            );
        }
        Ok(())
    }

    fn push_error(&mut self, type_code: u8, action: ErrorAction, problem: AttributeProblem) {
        self.errors.push(AttributeError {
            type_code,
            action,
            problem,
        });
    }

    /// Appends the whole message, header included, to `buf`. MP_UNREACH_NLRI
    /// and MP_REACH_NLRI come first among the attributes (RFC 7606 §5.1).
    /// Classic fields must hold IPv4 prefixes only.
    pub fn encode(&self, ctx: &Context, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let start = start_message(buf, MessageType::Update);
        let v4_add_path = ctx.add_path.contains(Family::IPV4_UNICAST);

        let wlen_at = buf.len();
        buf.put_u16(0);
        for n in &self.withdrawn {
            mp::put_nlri(buf, n, v4_add_path);
        }
        let wlen = buf.len() - wlen_at - 2;

        let alen_at = buf.len();
        buf.put_u16(0);
        if let Some(u) = &self.mp_unreach {
            attribute::put_header(buf, flags::OPTIONAL, code::MP_UNREACH_NLRI, u.value_len(ctx));
            u.encode_value(ctx, buf);
        }
        if let Some(r) = &self.mp_reach {
            attribute::put_header(buf, flags::OPTIONAL, code::MP_REACH_NLRI, r.value_len(ctx));
            r.encode_value(ctx, buf);
        }
        self.attributes.encode(ctx, buf);
        let alen = buf.len() - alen_at - 2;

        for n in &self.nlri {
            mp::put_nlri(buf, n, v4_add_path);
        }
        if wlen > usize::from(u16::MAX) || alen > usize::from(u16::MAX) {
            let len = buf.len() - start;
            buf.truncate(start);
            return Err(EncodeError::TooLong {
                len,
                max: ctx.max_message_len(),
            });
        }
        buf[wlen_at..wlen_at + 2].copy_from_slice(&(wlen as u16).to_be_bytes());
        buf[alen_at..alen_at + 2].copy_from_slice(&(alen as u16).to_be_bytes());
        finish_message(buf, start, ctx.max_message_len())
    }
}
