//! UPDATE decoding under every session context. The first input octet picks
//! the context; the rest is the message body behind a valid header, so the
//! fuzzer spends its time in the attribute and NLRI decoders. Whatever
//! decodes must re-encode, and the re-encoding must decode to the same
//! UPDATE: the decoder never accepts something it cannot represent.
#![no_main]

use bgp_proto::{AddPathFamilies, Context, Family, Message};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fn context(bits: u8) -> Context {
    let mut add_path = AddPathFamilies::NONE;
    if bits & 4 != 0 {
        add_path = add_path.with(Family::IPV4_UNICAST);
    }
    if bits & 8 != 0 {
        add_path = add_path.with(Family::IPV6_UNICAST);
    }
    Context {
        four_octet_as: bits & 1 != 0,
        extended_message: bits & 2 != 0,
        add_path,
        external_peer: bits & 16 != 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&bits, body)) = data.split_first() else { return };
    let ctx = context(bits);
    let len = 19 + body.len();
    if len > ctx.max_message_len() {
        return;
    }
    let mut msg = vec![0xff; 16];
    msg.extend_from_slice(&(len as u16).to_be_bytes());
    msg.push(2);
    msg.extend_from_slice(body);
    let Ok(Message::Update(update)) = Message::decode(&msg, &ctx) else { return };
    if !update.errors.is_empty() {
        return;
    }
    let mut out = BytesMut::new();
    // A decoded UPDATE can exceed the limit once re-encoded (AS4_PATH is
    // added on 2-octet sessions); that is not a decoder bug.
    if update.encode(&ctx, &mut out).is_err() {
        return;
    }
    let Ok(Message::Update(again)) = Message::decode(&out, &ctx) else {
        panic!("re-encoded UPDATE does not decode");
    };
    // On 2-octet sessions, confederation segments cannot survive the
    // AS4_PATH round (RFC 6793 §3 keeps them out of AS4_PATH), so where they
    // stand may move; everything else must come back the same.
    let confed = |u: &bgp_proto::Update| {
        u.attributes.as_path.as_ref().is_some_and(|p| p.segments.iter().any(|s| s.kind.is_confed()))
    };
    if ctx.four_octet_as || !confed(&update) {
        assert_eq!(again, update);
    }
});
