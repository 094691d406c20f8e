//! The BFD Control packet (RFC 5880 §4.1): 24 octets, encoded and decoded
//! with the checks of §6.8.6 that need no session. Pure; fuzzed.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! ```

use std::time::Duration;

/// The length of a packet without authentication.
pub const LEN: usize = 24;
const VERSION: u8 = 1;

/// A session state as it travels (RFC 5880 §4.1).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum State {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl State {
    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::AdminDown => "admin-down",
            State::Down => "down",
            State::Init => "init",
            State::Up => "up",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a session last left Up, or is not Up (RFC 5880 §4.1); values
/// above 8 are kept as they came.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Diag(pub u8);

impl Diag {
    pub const NONE: Diag = Diag(0);
    pub const DETECTION_TIME_EXPIRED: Diag = Diag(1);
    pub const NEIGHBOR_SIGNALED_DOWN: Diag = Diag(3);
    pub const ADMINISTRATIVELY_DOWN: Diag = Diag(7);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "none",
            1 => "control detection time expired",
            2 => "echo function failed",
            3 => "neighbor signaled session down",
            4 => "forwarding plane reset",
            5 => "path down",
            6 => "concatenated path down",
            7 => "administratively down",
            8 => "reverse concatenated path down",
            _ => "reserved",
        }
    }
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One Control packet. Intervals are in microseconds on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub diag: Diag,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    /// Control Plane Independent: tern's BFD shares fate with its BGP, so
    /// it always sends 0.
    pub cpi: bool,
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx: u32,
    pub required_min_rx: u32,
    pub required_min_echo_rx: u32,
}

/// Why a received packet was dropped before any session saw it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Drop {
    /// Shorter than 24 octets, or its Length field disagrees with the
    /// datagram.
    Length,
    Version,
    /// Detect Mult 0.
    DetectMult,
    /// The M bit (multipoint) set.
    Multipoint,
    /// My Discriminator 0.
    MyDiscriminator,
    /// The A bit: tern has no authentication configured.
    Authentication,
    /// A single-hop packet that arrived with a TTL or hop limit under 255.
    Ttl,
    /// Your Discriminator names no session of ours, or is 0 while the
    /// session is past Down.
    YourDiscriminator,
    /// Your Discriminator 0 and no session for its addresses.
    NoSession,
}

impl Drop {
    pub const ALL: [Drop; 9] = [
        Drop::Length,
        Drop::Version,
        Drop::DetectMult,
        Drop::Multipoint,
        Drop::MyDiscriminator,
        Drop::Authentication,
        Drop::Ttl,
        Drop::YourDiscriminator,
        Drop::NoSession,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Drop::Length => "length",
            Drop::Version => "version",
            Drop::DetectMult => "detect-mult",
            Drop::Multipoint => "multipoint",
            Drop::MyDiscriminator => "my-discriminator",
            Drop::Authentication => "authentication",
            Drop::Ttl => "ttl",
            Drop::YourDiscriminator => "your-discriminator",
            Drop::NoSession => "no-session",
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Packet {
    /// Decodes a datagram's payload with the checks of RFC 5880 §6.8.6
    /// that need no session, in its order.
    pub fn decode(b: &[u8]) -> Result<Packet, Drop> {
        if b.len() < LEN {
            return Err(Drop::Length);
        }
        if b[0] >> 5 != VERSION {
            return Err(Drop::Version);
        }
        let flags = b[1];
        let auth = flags & 0x04 != 0;
        let length = usize::from(b[3]);
        // With authentication the minimum is 26; the A bit is refused
        // below either way.
        if length < LEN || length > b.len() {
            return Err(Drop::Length);
        }
        let detect_mult = b[2];
        if detect_mult == 0 {
            return Err(Drop::DetectMult);
        }
        if flags & 0x01 != 0 {
            return Err(Drop::Multipoint);
        }
        let my_discr = u32_at(b, 4);
        if my_discr == 0 {
            return Err(Drop::MyDiscriminator);
        }
        if auth {
            return Err(Drop::Authentication);
        }
        Ok(Packet {
            diag: Diag(b[0] & 0x1f),
            state: State::from_bits(flags >> 6),
            poll: flags & 0x20 != 0,
            final_: flags & 0x10 != 0,
            cpi: flags & 0x08 != 0,
            demand: flags & 0x02 != 0,
            detect_mult,
            my_discr,
            your_discr: u32_at(b, 8),
            desired_min_tx: u32_at(b, 12),
            required_min_rx: u32_at(b, 16),
            required_min_echo_rx: u32_at(b, 20),
        })
    }

    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = (VERSION << 5) | (self.diag.0 & 0x1f);
        b[1] = ((self.state as u8) << 6)
            | u8::from(self.poll) << 5
            | u8::from(self.final_) << 4
            | u8::from(self.cpi) << 3
            | u8::from(self.demand) << 1;
        b[2] = self.detect_mult;
        b[3] = LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discr.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx.to_be_bytes());
        b
    }
}

/// An interval as the wire carries it: microseconds, saturating.
pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Packet {
        Packet {
            diag: Diag::NEIGHBOR_SIGNALED_DOWN,
            state: State::Init,
            poll: true,
            final_: false,
            cpi: false,
            demand: false,
            detect_mult: 3,
            my_discr: 0x0102_0304,
            your_discr: 7,
            desired_min_tx: 300_000,
            required_min_rx: 300_000,
            required_min_echo_rx: 0,
        }
    }

    #[test]
    fn encodes_as_the_rfc_draws_it() {
        let b = sample().encode();
        assert_eq!(
            b,
            [
                0x23, 0xa0, 3, 24, 1, 2, 3, 4, 0, 0, 0, 7, 0, 4, 0x93, 0xe0, 0, 4, 0x93, 0xe0, 0, 0, 0, 0
            ]
        );
        assert_eq!(Packet::decode(&b), Ok(sample()));
    }

    #[test]
    fn frr_packet_decodes() {
        // FRR's bfdd while Down: diag 0, state Down, mult 3, 1 s / 1 s,
        // echo 50 ms.
        let b = [
            0x20, 0x40, 3, 24, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 0, 0x0f, 0x42, 0x40, 0, 0, 0xc3,
            0x50,
        ];
        let p = Packet::decode(&b).expect("decodes");
        assert_eq!(p.state, State::Down);
        assert_eq!(p.desired_min_tx, 1_000_000);
        assert_eq!(p.required_min_echo_rx, 50_000);
        assert_eq!(p.your_discr, 0);
    }

    #[test]
    fn bad_packets_are_dropped_with_their_reason() {
        let good = sample().encode();
        let with = |f: &dyn Fn(&mut [u8; LEN])| {
            let mut b = good;
            f(&mut b);
            Packet::decode(&b)
        };
        assert_eq!(Packet::decode(&good[..23]), Err(Drop::Length));
        assert_eq!(with(&|b| b[3] = 23), Err(Drop::Length));
        assert_eq!(with(&|b| b[3] = 25), Err(Drop::Length));
        assert_eq!(with(&|b| b[0] = 0x43), Err(Drop::Version));
        assert_eq!(with(&|b| b[0] = 0x03), Err(Drop::Version));
        assert_eq!(with(&|b| b[2] = 0), Err(Drop::DetectMult));
        assert_eq!(with(&|b| b[1] |= 0x01), Err(Drop::Multipoint));
        assert_eq!(with(&|b| b[4..8].fill(0)), Err(Drop::MyDiscriminator));
        assert_eq!(with(&|b| b[1] |= 0x04), Err(Drop::Authentication));
        // A longer datagram than Length says is fine (trailing octets).
        let mut long = good.to_vec();
        long.extend_from_slice(&[0; 8]);
        assert_eq!(Packet::decode(&long), Ok(sample()));
    }

    #[test]
    fn any_bytes_decode_or_drop_without_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..40 {
            for _ in 0..200 {
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                if let Ok(p) = Packet::decode(&b) {
                    // What decodes encodes back to its first 24 octets,
                    // reserved bits aside.
                    assert_eq!(Packet::decode(&p.encode()), Ok(p));
                }
            }
        }
    }
}
