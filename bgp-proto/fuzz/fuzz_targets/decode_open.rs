//! OPEN decoding, including RFC 9072 extended parameters and every
//! capability. What decodes must re-encode to something that decodes the
//! same.
#![no_main]

use bgp_proto::{Context, Message};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let len = 19 + body.len();
    if len > 4096 {
        return;
    }
    let mut msg = vec![0xff; 16];
    msg.extend_from_slice(&(len as u16).to_be_bytes());
    msg.push(1);
    msg.extend_from_slice(body);
    let ctx = Context::ebgp();
    let Ok(Message::Open(open)) = Message::decode(&msg, &ctx) else { return };
    let mut out = BytesMut::new();
    if open.encode(&mut out).is_ok() {
        let again = Message::decode(&out, &ctx).expect("re-encoded OPEN decodes");
        assert_eq!(again, Message::Open(open));
    }
});
