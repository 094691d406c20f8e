//! BFD Control packets: decoding, and the node's sessions taking whatever
//! arrives (demultiplexing, the state machine, timers). Nothing panics;
//! what decodes re-encodes to a packet that decodes the same.
#![no_main]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tern::bfd::{Datagram, Packet, SessionConfig, Sessions, Timers};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    if let Ok(p) = Packet::decode(rest) {
        assert_eq!(Packet::decode(&p.encode()), Ok(p));
    }
    // Two sessions; the datagram comes from one of them (or a stranger),
    // with a TTL and on a port the first byte chooses, twice, with time
    // passing in between.
    let now = Instant::now();
    let mut s = Sessions::new(7);
    for (peer, remote) in [("a", "10.0.0.2"), ("b", "fd00::2")] {
        s.configure(
            SessionConfig {
                peer: peer.into(),
                remote: remote.parse().unwrap(),
                local: None,
                multihop: false,
                timers: Timers::default(),
                passive: flags & 0x80 != 0,
            },
            now,
        );
    }
    let from: IpAddr = match flags & 3 {
        0 => "10.0.0.2".parse().unwrap(),
        1 => "fd00::2".parse().unwrap(),
        2 => "::ffff:10.0.0.2".parse().unwrap(),
        _ => "10.0.0.9".parse().unwrap(),
    };
    let d = Datagram {
        bytes: rest.to_vec(),
        from,
        ttl: if flags & 4 != 0 { 255 } else { flags },
        multihop: flags & 8 != 0,
    };
    let (mut out, mut changes) = (Vec::new(), Vec::new());
    let mut t = now;
    for _ in 0..2 {
        let _ = s.receive(&d, t, &mut out, &mut changes);
        t += Duration::from_millis(u64::from(flags >> 4) * 100);
        s.on_timer(t, &mut out, &mut changes);
    }
    let _ = s.snapshots();
});
