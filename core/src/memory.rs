//! Placement hints for the large arrays an index owns: asking the OS to back them with
//! transparent huge pages, so random access over hundreds of MiB of vectors and links pays a
//! TLB miss per 2 MiB instead of per 4 KiB. Only hints: where the OS has no such thing (wasm,
//! other systems, `no_std`) they do nothing, and the index behaves the same.

use alloc::vec::Vec;

/// Reserves room for exactly `additional` more elements of `v` and asks for the new, not yet
/// touched capacity to be backed by huge pages. The hint must come before the first write:
/// pages already faulted in stay small.
pub(crate) fn reserve_exact_huge<T>(v: &mut Vec<T>, additional: usize) {
    if v.capacity() - v.len() < additional {
        v.reserve_exact(additional);
        advise_huge(v);
    }
}

/// Like [`reserve_exact_huge`], growing by doubling (for repeated appends).
pub(crate) fn reserve_huge<T>(v: &mut Vec<T>, additional: usize) {
    if v.capacity() - v.len() < additional {
        v.reserve(additional);
        advise_huge(v);
    }
}

#[cfg(all(feature = "std", target_os = "linux"))]
fn advise_huge<T>(v: &mut Vec<T>) {
    const PAGE: usize = 4096;
    // Below a few huge pages the hint cannot pay for itself.
    const MIN_BYTES: usize = 8 << 20;
    let spare = v.spare_capacity_mut();
    let bytes = core::mem::size_of_val(spare);
    if bytes < MIN_BYTES {
        return;
    }
    let start = spare.as_mut_ptr() as usize;
    let aligned = start.next_multiple_of(PAGE);
    let len = (start + bytes).saturating_sub(aligned) / PAGE * PAGE;
    // SAFETY: `aligned..aligned + len` lies inside the vector's own allocation (its unused
    // capacity, rounded inwards to whole pages). MADV_HUGEPAGE changes only how the kernel
    // backs those pages, never their contents or validity; a failure is ignored because the
    // hint is optional.
    unsafe {
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(all(feature = "std", target_os = "linux")))]
fn advise_huge<T>(_: &mut Vec<T>) {}
