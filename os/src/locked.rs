//! Secrets in memory that is never swapped: a heap box whose pages are `mlock`ed.
//!
//! This is the one module of vbzkey with `unsafe`: `mlock(2)` and `munlock(2)` take a raw
//! pointer. The invariants are simple and local: the pointer and length always describe the
//! live allocation of `inner`, which is neither moved nor freed while locked (a `Box` does
//! not move its heap contents; we unlock before the box is dropped).
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

/// A value on the heap, locked into RAM (where the OS allows; see [`LockedBox::is_locked`]).
/// The value's own `Drop` (e.g. zeroize) runs before the memory is unlocked and freed.
pub struct LockedBox<T> {
    // ManuallyDrop: the value is dropped by hand while its pages are still locked.
    inner: Box<ManuallyDrop<T>>,
    locked: bool,
}

impl<T> LockedBox<T> {
    /// Move `value` to the heap and lock its pages. If the lock fails (e.g. `RLIMIT_MEMLOCK`
    /// is exhausted) the value is still kept, unlocked; callers may log that.
    pub fn new(value: T) -> Self {
        let mut inner = Box::new(ManuallyDrop::new(value));
        let (ptr, len) = region(&mut inner);
        // SAFETY: `ptr..ptr+len` is the live, exclusively owned heap allocation of `inner`.
        let locked = len > 0 && unsafe { rustix::mm::mlock(ptr, len) }.is_ok();
        LockedBox { inner, locked }
    }

    /// Whether the pages are locked in RAM.
    pub fn is_locked(&self) -> bool {
        self.locked
    }
}

fn region<T>(inner: &mut Box<ManuallyDrop<T>>) -> (*mut c_void, usize) {
    ((&mut **inner as *mut ManuallyDrop<T>).cast::<c_void>(), size_of::<T>())
}

impl<T> Deref for LockedBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for LockedBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T> Drop for LockedBox<T> {
    fn drop(&mut self) {
        // SAFETY: the value is dropped exactly once, here, and never touched again; the box
        // (a ManuallyDrop) will not drop it a second time.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
        if self.locked {
            let (ptr, len) = region(&mut self.inner);
            // SAFETY: the same allocation that `new` locked; still allocated until the box
            // field is dropped after this function returns.
            let _ = unsafe { rustix::mm::munlock(ptr, len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Arc<AtomicUsize>, [u8; 32]);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn value_is_usable_and_dropped_exactly_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut b = LockedBox::new(Counted(Arc::clone(&drops), [7; 32]));
        b.1[0] = 9;
        assert_eq!(b.1[0], 9);
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn locked_pages_show_in_proc_status() {
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let memlock = limits.lines().find(|l| l.starts_with("Max locked memory")).unwrap();
        if memlock.split_whitespace().nth(3) == Some("0") {
            // Nothing may be locked here; the box must still work, unlocked.
            assert!(!LockedBox::new([1u8; 64]).is_locked());
            return;
        }
        let b = LockedBox::new([1u8; 64]);
        assert!(b.is_locked(), "a page fits in any non-zero RLIMIT_MEMLOCK ({memlock})");
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let vmlck = status.lines().find(|l| l.starts_with("VmLck:")).unwrap();
        let kb: u64 = vmlck.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(kb >= 4, "{vmlck}");
    }
}
