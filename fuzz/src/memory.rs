//! The memory guard: a counting wrapper around the system allocator that tracks bytes in use
//! and their peak, so the runner can charge each execution the most memory it held at once.
//! One allocation beyond a hard cap is not attempted while the watchdog runs: the thread
//! waits for the watchdog to report it and end the process, because returning null would
//! abort before anyone learned which input asked.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// The allocator of every binary and test that links this crate.
pub struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BASE: AtomicUsize = AtomicUsize::new(0);
static HARD_CAP: AtomicUsize = AtomicUsize::new(usize::MAX);
static HOLD_OVERSIZE: AtomicBool = AtomicBool::new(false);
static OVERSIZE: AtomicUsize = AtomicUsize::new(0);

#[global_allocator]
static GLOBAL: Counting = Counting;

impl Counting {
    fn admit(size: usize) {
        if size > HARD_CAP.load(Relaxed) && HOLD_OVERSIZE.load(Relaxed) {
            OVERSIZE.store(size, Relaxed);
            // Sleeping allocates nothing; the watchdog exits the process.
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
    fn grew(size: usize) {
        let now = CURRENT.fetch_add(size, Relaxed) + size;
        PEAK.fetch_max(now, Relaxed);
    }
    fn shrank(size: usize) {
        CURRENT.fetch_sub(size, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and only
// adds relaxed atomic counting, which neither allocates nor unwinds; so `System`'s guarantees
// (alignment, validity, no unwinding) carry over. `admit` may block the calling thread, which
// the `GlobalAlloc` contract allows.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::admit(layout.size());
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::admit(layout.size());
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        Self::shrank(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::admit(new_size);
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            Self::shrank(layout.size());
            Self::grew(new_size);
        }
        p
    }
}

/// Starts charging a new execution: its peak counts from the bytes in use now.
pub fn begin() {
    let now = CURRENT.load(Relaxed);
    BASE.store(now, Relaxed);
    PEAK.store(now, Relaxed);
}

/// The most bytes the running execution held at once beyond what was in use at [`begin`].
/// Allocations of other threads in the meantime count too (rayon workers searching for it).
pub fn peak() -> usize {
    PEAK.load(Relaxed).saturating_sub(BASE.load(Relaxed))
}

/// Bytes in use now.
pub fn in_use() -> usize {
    CURRENT.load(Relaxed)
}

/// Holds any single allocation above `cap` bytes until the watchdog sees it (see the module
/// documentation). Only for processes that run the watchdog.
pub fn hold_oversize_allocations(cap: usize) {
    HARD_CAP.store(cap, Relaxed);
    HOLD_OVERSIZE.store(true, Relaxed);
}

/// Size of an allocation being held, if any.
pub fn oversize_request() -> Option<usize> {
    match OVERSIZE.load(Relaxed) {
        0 => None,
        n => Some(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_raises_the_peak() {
        // Other tests may call `begin` meanwhile, which resets the peak to the bytes in use:
        // those still include this buffer while it is held, so the check stays sound.
        let v: Vec<u8> = Vec::with_capacity(64 << 20);
        assert!(PEAK.load(Relaxed) >= 64 << 20);
        assert!(in_use() >= 64 << 20);
        drop(v);
    }
}
