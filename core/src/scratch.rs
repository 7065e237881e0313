//! Per-caller working memory shared by every index: a pool of reusable scratch values, so a
//! search through `&self` allocates nothing once warm, and the visited set with generation
//! counters.

use alloc::vec::Vec;

/// Scratch values kept for searches through `&self`: one per concurrent caller, kept after use.
pub(crate) struct Pool<T>(spin::Mutex<Vec<T>>);

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Self(spin::Mutex::new(Vec::new()))
    }
}

impl<T: Default> Pool<T> {
    /// Runs `f` with a pooled value (a new one when all are in use).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut s = self.0.lock().pop().unwrap_or_default();
        let r = f(&mut s);
        self.0.lock().push(s);
        r
    }
}

/// Makes room for `len` elements in `v` (which may then grow to `len` without reallocating),
/// or answers [`crate::Error::OutOfMemory`] naming `what`: for scratch whose size a file sets.
pub(crate) fn try_reserve_len<T>(v: &mut Vec<T>, len: usize, what: &'static str) -> crate::Result<()> {
    v.clear();
    v.try_reserve_exact(len).map_err(|_| crate::Error::OutOfMemory {
        what,
        bytes: (len as u64).saturating_mul(core::mem::size_of::<T>() as u64),
    })
}

/// Room for `more` elements beyond `v.len()`, had fallibly: [`crate::Error::OutOfMemory`]
/// naming `what` when the allocator refuses.
pub(crate) fn try_reserve_more<T>(v: &mut Vec<T>, more: usize, what: &'static str) -> crate::Result<()> {
    v.try_reserve_exact(more).map_err(|_| crate::Error::OutOfMemory {
        what,
        bytes: (more as u64).saturating_mul(core::mem::size_of::<T>() as u64),
    })
}

/// Fails unless `len + additional` slots fit the `u32` ids every index uses.
pub(crate) fn check_capacity(len: usize, additional: usize) -> crate::Result<()> {
    // In u64: on wasm32 a usize sum saturates at u32::MAX and would pass.
    if len as u64 + additional as u64 > u32::MAX as u64 {
        return Err(crate::Error::CapacityExceeded {
            count: len as u64,
            adding: additional as u64,
            max: u32::MAX as u64,
        });
    }
    Ok(())
}

/// Visited marks with generation counters: clearing is one increment, not a pass over n.
#[derive(Default, Clone)]
pub(crate) struct Visited {
    marks: Vec<u16>,
    generation: u16,
}

impl Visited {
    /// Starts a new search over ids `0..n`.
    pub fn start(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
    }

    /// Marks `id`; returns whether it was already marked (ids beyond `n` count as marked, so
    /// they are never visited).
    #[inline(always)]
    pub fn test_and_set(&mut self, id: u32) -> bool {
        match self.marks.get_mut(id as usize) {
            Some(m) => {
                let seen = *m == self.generation;
                *m = self.generation;
                seen
            }
            None => true,
        }
    }
}
