//! Prefetching memory the server is about to touch.
//!
//! With many runs in turn, much of what a request reads was last touched
//! thousands of requests ago and no cache holds it. A load of such a line
//! stalls what depends on it; a store waits in the store buffer, and the next
//! atomic instruction (a lock taken or released, a reference count changed)
//! waits for every such store. Where the lines are known early, asking for
//! them then lets them arrive while other work runs.

/// The bytes of one cache line.
pub const LINE: usize = 64;

/// At most this many lines are asked for at once: the CPU's own prefetchers
/// follow a longer sequential read.
const MAX_LINES: usize = 32;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{_MM_HINT_ET0 as WRITE, _MM_HINT_T0 as READ};
#[cfg(not(target_arch = "x86_64"))]
const READ: i32 = 0;
#[cfg(not(target_arch = "x86_64"))]
const WRITE: i32 = 1;

/// Asks the CPU to fetch the lines of `len` bytes from `at`, to be read.
#[inline]
pub fn for_read(at: *const u8, len: usize) {
    lines::<READ>(at, len);
}

/// Asks the CPU to fetch the lines of `len` bytes from `at`, to be written.
#[inline]
pub fn for_write(at: *const u8, len: usize) {
    lines::<WRITE>(at, len);
}

/// Prefetches the lines of `len` bytes from `at` with `HINT`.
#[inline]
fn lines<const HINT: i32>(at: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for i in 0..len.div_ceil(LINE).min(MAX_LINES) {
        let line = at.wrapping_add(i * LINE).cast::<i8>();
        // SAFETY: a prefetch reads nothing the program sees and cannot fault,
        // whatever the address; SSE, which it needs, is part of x86_64.
        unsafe { std::arch::x86_64::_mm_prefetch::<HINT>(line) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, len);
}
