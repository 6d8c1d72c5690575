//! A global allocator that counts live heap bytes and their peak, so a target can assert that
//! decoding `n` bytes of input never holds more than a bound proportional to `n`.
//!
//! The one `unsafe` block of the fuzz crate: `GlobalAlloc` is an unsafe trait, and each
//! method only forwards to the system allocator after updating two counters.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts bytes in use and the peak since the last [`reset_peak`].
pub struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = IN_USE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(n: usize) {
    IN_USE.fetch_sub(n, Ordering::Relaxed);
}

// SAFETY: every method forwards the caller's arguments unchanged to `System`, which upholds
// the `GlobalAlloc` contract; the counters are plain atomics and never touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // While a realloc copies, old and new blocks both exist: count the new one first.
        grew(new_size);
        // SAFETY: forwarded as received.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            shrank(new_size);
        } else {
            shrank(layout.size());
        }
        p
    }
}

/// Run `f` and return its result and the most heap it held at once above what was in use
/// when it started.
pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = IN_USE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// Fail the input if `peak` exceeds `per_byte` times the input length plus `fixed` bytes.
pub fn assert_bounded(what: &str, input_len: usize, peak: usize, per_byte: usize, fixed: usize) {
    let bound = input_len.saturating_mul(per_byte).saturating_add(fixed);
    assert!(
        peak <= bound,
        "{what}: {peak} bytes of heap for {input_len} bytes of input (bound {bound} = \
         {per_byte} per byte + {fixed})"
    );
}

/// Install in a target with `#[global_allocator] static A: Counting = Counting;`.
#[macro_export]
macro_rules! count_allocations {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::alloc_meter::Counting = $crate::alloc_meter::Counting;
    };
}
