//! Helpers to build raw messages byte by byte, so test vectors read like
//! the RFC figures.
#![allow(dead_code)]

use bgp_proto::{AddPathFamilies, Context, Message, MessageError, Notification};
use bytes::BytesMut;

pub fn header(msg_type: u8, len: u16) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&len.to_be_bytes());
    v.push(msg_type);
    v
}

/// A whole message of `msg_type` around `body`.
pub fn message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut v = header(msg_type, (19 + body.len()) as u16);
    v.extend_from_slice(body);
    v
}

/// One path attribute; the Extended Length form when `flags` asks for it.
pub fn attr(flags: u8, type_code: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, type_code];
    if flags & 0x10 != 0 {
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        v.push(value.len() as u8);
    }
    v.extend_from_slice(value);
    v
}

/// An UPDATE message from its three fields.
pub fn update(withdrawn: &[u8], attrs: &[Vec<u8>], nlri: &[u8]) -> Vec<u8> {
    let attrs: Vec<u8> = attrs.concat();
    let mut body = Vec::new();
    body.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(nlri);
    message(2, &body)
}

pub fn ebgp() -> Context {
    Context::ebgp()
}

pub fn ibgp() -> Context {
    Context {
        external_peer: false,
        ..Context::ebgp()
    }
}

pub fn two_octet() -> Context {
    Context {
        four_octet_as: false,
        ..Context::ebgp()
    }
}

pub fn add_path_both() -> Context {
    Context {
        add_path: AddPathFamilies::NONE
            .with(bgp_proto::Family::IPV4_UNICAST)
            .with(bgp_proto::Family::IPV6_UNICAST),
        ..Context::ebgp()
    }
}

pub fn decode(bytes: &[u8], ctx: &Context) -> Message {
    Message::decode(bytes, ctx).unwrap_or_else(|e| panic!("decode failed: {e}"))
}

pub fn decode_err(bytes: &[u8], ctx: &Context) -> Notification {
    match Message::decode(bytes, ctx) {
        Err(MessageError { notification, .. }) => notification,
        Ok(m) => panic!("expected an error, decoded {m:?}"),
    }
}

pub fn encode(msg: &Message, ctx: &Context) -> Vec<u8> {
    let mut buf = BytesMut::new();
    msg.encode(ctx, &mut buf)
        .unwrap_or_else(|e| panic!("encode failed: {e}"));
    buf.to_vec()
}

pub fn update_of(msg: Message) -> bgp_proto::Update {
    match msg {
        Message::Update(u) => u,
        other => panic!("expected UPDATE, got {other:?}"),
    }
}

pub fn net(s: &str) -> ipnet::IpNet {
    s.parse().expect("test prefix")
}
