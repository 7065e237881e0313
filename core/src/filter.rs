//! Filters restrict a search to the ids a caller allows: a bitset (fast, and it knows how many
//! ids match, so an index can pick a strategy) or any predicate.

use alloc::vec;
use alloc::vec::Vec;

/// Decides which ids a search may return.
pub trait Filter: Sync {
    /// Whether `id` may appear in the results.
    fn allows(&self, id: u32) -> bool;
    /// How many of the ids `0..n` are allowed, when known cheaply (bitsets know; predicates
    /// don't). Indexes use it to switch to exact search at low selectivity.
    fn count_allowed(&self, n: u32) -> Option<u32> {
        let _ = n;
        None
    }
}

/// A fixed-size set of ids.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Bitset {
    words: Vec<u64>,
    len: u32,
}

impl Bitset {
    /// An empty set able to hold ids `0..len`.
    pub fn new(len: u32) -> Self {
        Self { words: vec![0; (len as usize).div_ceil(64)], len }
    }

    /// A set holding exactly the ids `0..len` for which `f` is true.
    pub fn from_fn(len: u32, mut f: impl FnMut(u32) -> bool) -> Self {
        let mut set = Self::new(len);
        for id in 0..len {
            if f(id) {
                set.insert(id);
            }
        }
        set
    }

    /// Ids the set can hold: `0..capacity()`.
    pub fn capacity(&self) -> u32 {
        self.len
    }

    /// Adds `id`; ids beyond the capacity are ignored and reported as `false`.
    pub fn insert(&mut self, id: u32) -> bool {
        if id >= self.len {
            return false;
        }
        self.words[(id / 64) as usize] |= 1 << (id % 64);
        true
    }

    /// Removes `id`.
    pub fn remove(&mut self, id: u32) {
        if id < self.len {
            self.words[(id / 64) as usize] &= !(1 << (id % 64));
        }
    }

    /// Whether `id` is in the set (ids beyond the capacity never are).
    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        match self.words.get((id / 64) as usize) {
            Some(w) => id < self.len && (w >> (id % 64)) & 1 == 1,
            None => false,
        }
    }

    /// Number of ids in the set.
    pub fn count(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }

    /// Number of ids below `n` in the set.
    pub fn count_below(&self, n: u32) -> u32 {
        let n = n.min(self.len);
        let full = (n / 64) as usize;
        let mut c: u32 = self.words[..full].iter().map(|w| w.count_ones()).sum();
        let rem = n % 64;
        if rem > 0 {
            c += (self.words[full] & ((1u64 << rem) - 1)).count_ones();
        }
        c
    }

    /// The ids in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            core::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some(wi as u32 * 64 + bit)
            })
        })
    }
}

impl Filter for Bitset {
    #[inline]
    fn allows(&self, id: u32) -> bool {
        self.contains(id)
    }
    fn count_allowed(&self, n: u32) -> Option<u32> {
        Some(self.count_below(n))
    }
}

/// Any `Fn(u32) -> bool` as a filter.
pub struct Predicate<F>(pub F);

impl<F: Fn(u32) -> bool + Sync> Filter for Predicate<F> {
    #[inline]
    fn allows(&self, id: u32) -> bool {
        (self.0)(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_membership_counts_and_bounds() {
        let mut s = Bitset::new(130);
        for id in [0, 63, 64, 129] {
            assert!(s.insert(id));
        }
        assert!(!s.insert(130));
        assert!(s.contains(63) && s.contains(129) && !s.contains(1) && !s.contains(130));
        assert!(!s.contains(u32::MAX));
        assert_eq!(s.count(), 4);
        assert_eq!(s.count_below(64), 2);
        assert_eq!(s.count_below(1000), 4);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 63, 64, 129]);
        s.remove(63);
        assert_eq!(s.count_allowed(130), Some(3));
    }
}
