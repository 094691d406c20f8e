//! Giving freed memory back to the system. glibc's allocator keeps what a
//! long-running process freed in its arenas (it only trims the top of the
//! main heap), so a node's RSS would stay at its high-water mark after a
//! route flood is withdrawn; `malloc_trim` returns the free pages of every
//! arena. musl's allocator (the static release builds) returns them by
//! itself, and there this does nothing.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// A hash table keyed by prefix (or another key a peer chooses) on the hot
/// paths: foldhash, several times faster than SipHash on such small keys
/// and still seeded at random per table, so a peer cannot choose prefixes
/// that collide.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// [`FastMap`] for a set.
pub type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

/// Gives a map's room back once it holds under a quarter of what it has
/// room for (a withdrawn flood, or many keys replaced by others: a hash
/// table that sees keys come and go grows to twice its peak). True if it
/// shrank.
pub fn shrink_map<K: Eq + Hash, V, S: std::hash::BuildHasher>(m: &mut HashMap<K, V, S>) -> bool {
    let shrink = m.capacity() > 64 && m.len() * 4 < m.capacity();
    if shrink {
        m.shrink_to(m.len() * 2);
    }
    shrink
}

/// [`shrink_map`] for a set.
pub fn shrink_set<T: Eq + Hash, S: std::hash::BuildHasher>(s: &mut HashSet<T, S>) -> bool {
    let shrink = s.capacity() > 64 && s.len() * 4 < s.capacity();
    if shrink {
        s.shrink_to(s.len() * 2);
    }
    shrink
}

/// What the daemon asks of glibc's allocator through `GLIBC_TUNABLES`: no
/// per-thread caches of freed blocks.
pub const TUNABLES: &str = "glibc.malloc.tcache_count=0";

/// glibc keeps freed small blocks in a cache per thread (tcache: up to 7
/// blocks of each of 64 sizes), outside the reach of `malloc_trim`. They
/// fill over the first minutes of churn and stay: in the soak, the heap
/// grew by 0.3 MB over 20 cycles and then stayed there, RSS by 7-15%;
/// without the caches it stayed within 10 kB, and the full-table load was
/// as fast (same run: 7.88 s against 7.95 s into the kernel). Only the
/// `GLIBC_TUNABLES` variable, read before `main`, turns them off, so the
/// daemon starts itself again with it set, keeping its PID, arguments and
/// environment. A `GLIBC_TUNABLES` already set is left as it is. Returns
/// only if it did not start again.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn exec_with_tunables() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "tern".into());
    // /proc/self/exe is this very binary, even if the file was replaced.
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", TUNABLES)
        .exec();
    eprintln!(
        "tern: cannot start again with GLIBC_TUNABLES={TUNABLES} ({err}); going on with glibc's caches"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn exec_with_tunables() {}

/// Called once at start: fixed allocator thresholds. glibc raises its
/// mmap threshold each time a large block is freed (up to 32 MB), after
/// which every large buffer comes from the heap and leaves holes there; a
/// fixed 128 kB keeps large buffers (connection buffers, table batches) in
/// their own mappings, returned whole when freed, and a fixed 256 kB trim
/// threshold returns a heap's free top soon.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune() {
    // SAFETY: mallopt takes two plain integers and only sets allocator
    // parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}

/// Returns the allocator's free memory to the system, where it keeps it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() {
    // SAFETY: malloc_trim takes a plain integer and only walks the
    // allocator's own free lists; it is safe to call at any time from any
    // thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

/// Bytes the allocator has handed out and not had back: the live heap,
/// without the free memory it keeps and the pages it shares with live
/// data. RSS well above it means fragmentation, not a leak. glibc only.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn allocated() -> Option<u64> {
    // SAFETY: mallinfo2 takes nothing and returns a plain struct of
    // counters; it only reads the allocator's own bookkeeping.
    let info = unsafe { libc::mallinfo2() };
    Some((info.uordblks + info.hblkhd) as u64)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn allocated() -> Option<u64> {
    None
}
