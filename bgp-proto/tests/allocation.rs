//! Decoding allocates in proportion to the message, never to a length or
//! count field inside it. A counting allocator measures the peak of live
//! heap memory while each message decodes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bgp_proto::{Context, Message};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak heap growth while decoding `msg`.
fn peak_while_decoding(msg: &[u8], ctx: &Context) -> usize {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let decoded = Message::decode(msg, ctx);
    let peak = PEAK.load(Relaxed) - base;
    drop(decoded);
    peak
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(kind);
    v.extend_from_slice(body);
    v
}

/// One test, so no other test allocates while it measures.
#[test]
fn decoding_allocates_in_proportion_to_the_message() {
    let ctx = Context {
        extended_message: true,
        ..Context::ebgp()
    };
    // Worst cases for amplification: one-octet /0 prefixes (each becomes a
    // 28-octet entry), one-AS segments, and length fields that claim far
    // more than the message holds.
    let zero_prefixes = message(2, &[[0u8, 0, 0, 0].as_slice(), &[0u8; 65000]].concat());
    let mut segments = vec![0, 0];
    let path: Vec<u8> = [2u8, 1, 0, 0, 0, 1].repeat(10_000);
    segments.extend_from_slice(&((path.len() + 4) as u16).to_be_bytes());
    segments.extend_from_slice(&[0x50, 2]);
    segments.extend_from_slice(&(path.len() as u16).to_be_bytes());
    segments.extend_from_slice(&path);
    let one_as_segments = message(2, &segments);
    let lying_lengths = message(2, &[0xff, 0xff, 0xff, 0xff, 24, 10, 0, 0]);
    let lying_mp = message(2, &[0, 0, 0, 8, 0x90, 14, 0xff, 0xff, 0, 2, 1, 16]);
    let lying_open = message(1, &[4, 0, 1, 0, 90, 1, 2, 3, 4, 255, 255, 0xff, 0xff, 2]);

    for (what, msg) in [
        ("one-octet prefixes", &zero_prefixes),
        ("one-AS segments", &one_as_segments),
        ("overrunning lengths", &lying_lengths),
        ("overrunning MP attribute", &lying_mp),
        ("overrunning OPEN parameters", &lying_open),
    ] {
        let peak = peak_while_decoding(msg, &ctx);
        let bound = 64 * msg.len() + 4096;
        eprintln!("{what}: {} octets, peak {peak}", msg.len());
        assert!(
            peak <= bound,
            "{what}: {peak} octets for a {}-octet message (bound {bound})",
            msg.len()
        );
    }
}
