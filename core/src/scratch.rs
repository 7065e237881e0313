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
