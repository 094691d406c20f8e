//! Giving freed memory back to the system. glibc's allocator keeps what a
//! long-running process freed in its arenas (it only trims the top of the
//! main heap), so a node's RSS would stay at its high-water mark after a
//! route flood is withdrawn; `malloc_trim` returns the free pages of every
//! arena. musl's allocator (the static release builds) returns them by
//! itself, and there this does nothing.

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
