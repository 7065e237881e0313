//! Per-caller working memory shared by every index: a pool of reusable scratch values, so a
//! search through `&self` allocates nothing once warm, and the visited set (a bitset cleared
//! word by word, or a hash set for huge graphs).

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

/// Node counts up to which a search marks visits in a dense bitset (1 bit a node: 2 MiB at
/// this bound). Beyond it, as in an SSD index of a billion nodes where a dense array would be
/// 128 MB per searching thread, visits go in a hash set sized by the visits themselves.
const DENSE_VISITS_UP_TO: usize = 1 << 24;

/// Empty slot of the sparse set (no node has this id: ids are below the node count).
const NO_NODE: u32 = u32::MAX;

/// Visited marks for one search at a time: a bitset over `0..n` whose words a search set
/// are cleared at the next start (not a pass over n), or, for very large `n`, an
/// open-addressing hash set whose size follows the visits.
///
/// A bit a node, not a generation counter of 2 bytes: the marks of 100k nodes then take
/// 12.5 KB, which stays in L1 while a walk streams vectors through the caches; the 200 KB of
/// counters did not, and their misses were a tenth of a Vamana build.
#[derive(Default, Clone)]
pub(crate) struct Visited {
    bits: Vec<u64>,
    /// Words of `bits` this search made non-zero (each once), cleared at the next start.
    touched: Vec<u32>,
    /// Sparse mode: linear-probing table of ids (`NO_NODE` when empty), a power of two long.
    table: Vec<u32>,
    filled: usize,
    /// Ids at or beyond this count as visited.
    n: usize,
    sparse: bool,
}

impl Visited {
    /// Starts a new search over ids `0..n`.
    pub fn start(&mut self, n: usize) {
        self.start_with(n, DENSE_VISITS_UP_TO);
    }

    /// [`Visited::start`] with the dense bitset used up to `dense_up_to` nodes.
    fn start_with(&mut self, n: usize, dense_up_to: usize) {
        self.n = n;
        self.sparse = n > dense_up_to;
        if self.sparse {
            // A search visits thousands of nodes: start small, grow by doubling.
            const FIRST: usize = 1 << 12;
            if self.table.len() != FIRST || self.filled > 0 {
                self.table.clear();
                self.table.resize(FIRST, NO_NODE);
            }
            self.filled = 0;
            return;
        }
        // Clearing word by word costs about what one pass over the words does when a search
        // touched an eighth of them.
        if self.touched.len() > self.bits.len() / 8 {
            self.bits.iter_mut().for_each(|w| *w = 0);
        } else {
            for &w in &self.touched {
                self.bits[w as usize] = 0;
            }
        }
        self.touched.clear();
        let words = n.div_ceil(64);
        if self.bits.len() < words {
            self.bits.resize(words, 0);
        }
    }

    /// Marks `id`; returns whether it was already marked (ids beyond `n` count as marked, so
    /// they are never visited).
    #[inline(always)]
    pub fn test_and_set(&mut self, id: u32) -> bool {
        if self.sparse {
            return self.test_and_set_sparse(id);
        }
        if id as usize >= self.n {
            return true;
        }
        let (at, bit) = ((id >> 6) as usize, 1u64 << (id & 63));
        match self.bits.get_mut(at) {
            Some(w) => {
                let old = *w;
                if old & bit != 0 {
                    return true;
                }
                if old == 0 {
                    self.touched.push(at as u32);
                }
                *w = old | bit;
                false
            }
            None => true,
        }
    }

    fn test_and_set_sparse(&mut self, id: u32) -> bool {
        if id as usize >= self.n || id == NO_NODE {
            return true;
        }
        // Half full at most, so probes stay short.
        if 2 * (self.filled + 1) > self.table.len() {
            let grown = alloc::vec![NO_NODE; self.table.len().max(8) * 2];
            let old = core::mem::replace(&mut self.table, grown);
            for slot in old.into_iter().filter(|&s| s != NO_NODE) {
                let at = self.free_slot(slot);
                self.table[at] = slot;
            }
        }
        let at = self.free_slot(id);
        if self.table[at] == id {
            return true;
        }
        self.table[at] = id;
        self.filled += 1;
        false
    }

    /// The slot holding `id`, or the empty slot where it would go.
    #[inline]
    fn free_slot(&self, id: u32) -> usize {
        let mask = self.table.len() - 1;
        // Fibonacci hashing: consecutive ids land far apart.
        let mut at = (u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
        while self.table[at] != NO_NODE && self.table[at] != id {
            at = (at + 1) & mask;
        }
        at
    }
}

#[cfg(test)]
mod visited_tests {
    use super::*;

    #[test]
    fn sparse_and_dense_marks_agree_over_many_searches() {
        let mut rng = crate::rng::Rng::new(3);
        let (mut dense, mut sparse) = (Visited::default(), Visited::default());
        for round in 0..40 {
            // Sizes that shrink and grow again, so marks of a larger search must not linger.
            let n = 1000 + (round * 389) % 1500;
            dense.start_with(n, usize::MAX);
            sparse.start_with(n, 0);
            assert!(sparse.sparse && !dense.sparse);
            // Enough marks to grow the table several times, with repeats and ids out of range.
            for _ in 0..(round * 300) {
                let id = (rng.next_u64() % (n as u64 + 50)) as u32;
                assert_eq!(dense.test_and_set(id), sparse.test_and_set(id), "round {round}, id {id}");
            }
            assert!(sparse.test_and_set(NO_NODE));
        }
    }
}
