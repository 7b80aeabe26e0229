//! A counting global allocator, for tests that a path never allocates.
//!
//! Each test binary installs it itself:
//!
//! ```
//! use sonantica_testkit::alloc::{count_allocations, CountingAlloc};
//!
//! #[global_allocator]
//! static GLOBAL: CountingAlloc = CountingAlloc;
//!
//! fn main() {
//!     let buffer = vec![0.0f32; 128];
//!     let (sum, allocs) = count_allocations(|| buffer.iter().sum::<f32>());
//!     assert_eq!((sum, allocs), (0.0, 0));
//! }
//! ```
//!
//! and measures with [`count_allocations`]. Only the allocations of the thread
//! that runs the closure are counted: the test harness's own threads may allocate
//! at any time (more so on a loaded machine). In a binary that has not installed
//! [`CountingAlloc`] nothing is counted, so every count is 0.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards
// to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting allocations and reallocations made on threads
/// that are inside [`count_allocations`] (and not inside [`uncounted`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTED.with(Cell::get) {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
    }
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Sets this thread's counting flag, and puts the old one back when dropped
/// (also when the closure panics).
struct Counting(bool);

impl Counting {
    fn set(on: bool) -> Self {
        Self(COUNTED.with(|c| c.replace(on)))
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        COUNTED.with(|c| c.set(self.0));
    }
}

/// Runs `f` and returns its result with the number of allocations and
/// reallocations it made on this thread (through [`CountingAlloc`]).
pub fn count_allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let _counting = Counting::set(true);
    let before = ALLOCS.load(Ordering::SeqCst);
    let r = f();
    let after = ALLOCS.load(Ordering::SeqCst);
    (r, after - before)
}

/// Runs `f` without counting its allocations: for a test's own bookkeeping
/// inside [`count_allocations`].
pub fn uncounted<R>(f: impl FnOnce() -> R) -> R {
    let _paused = Counting::set(false);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static GLOBAL: CountingAlloc = CountingAlloc;

    #[test]
    fn counts_this_threads_allocations_but_not_uncounted_ones() {
        let (v, n) = count_allocations(|| {
            let mut v = std::hint::black_box(Vec::<u64>::with_capacity(1));
            v.extend(0..100);
            v
        });
        assert_eq!(v.len(), 100);
        assert!(n >= 2, "one allocation and at least one reallocation: {n}");
        let (_, n) = count_allocations(|| uncounted(|| std::hint::black_box(vec![0u8; 64])));
        assert_eq!(n, 0);
        let (_, n) = count_allocations(|| 1 + 1);
        assert_eq!(n, 0);
    }
}
