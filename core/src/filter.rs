//! Filters restrict a search to the ids a caller allows: a bitset (fast, and it knows how many
//! ids match, so an index can pick a strategy), a sorted id list (what a payload index
//! produces), or any predicate. Filters that hold their ids lend them ([`AllowedIds`]), so an
//! exact search over the matches costs the matches, not a test of every id.

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
    /// The allowed ids themselves, when the filter holds them (bitsets and id lists do).
    fn allowed_ids(&self) -> Option<AllowedIds<'_>> {
        None
    }
}

/// The ids a filter holds, lent so a search can walk them without asking about every id.
#[derive(Clone, Copy, Debug)]
pub enum AllowedIds<'a> {
    /// Bit `i % 64` of word `i / 64` is set for every allowed id `i`.
    Words(&'a [u64]),
    /// Strictly ascending ids.
    Sorted(&'a [u32]),
}

/// Calls `visit` for each id below `n` that `filter` allows, ascending: over the filter's own
/// ids when it lends them (cost proportional to the matches and, for bitsets, `n / 64` words),
/// else by asking about every id.
#[inline]
pub fn for_each_allowed(filter: &dyn Filter, n: u32, mut visit: impl FnMut(u32)) {
    match filter.allowed_ids() {
        Some(AllowedIds::Words(words)) => {
            let full = (n / 64) as usize;
            for (wi, &w) in words.iter().enumerate().take(full) {
                let mut w = w;
                while w != 0 {
                    visit(wi as u32 * 64 + w.trailing_zeros());
                    w &= w - 1;
                }
            }
            let rem = n % 64;
            if rem > 0 {
                if let Some(&w) = words.get(full) {
                    let mut w = w & ((1u64 << rem) - 1);
                    while w != 0 {
                        visit(full as u32 * 64 + w.trailing_zeros());
                        w &= w - 1;
                    }
                }
            }
        }
        Some(AllowedIds::Sorted(ids)) => {
            for &id in ids {
                if id >= n {
                    break;
                }
                visit(id);
            }
        }
        None => {
            for id in 0..n {
                if filter.allows(id) {
                    visit(id);
                }
            }
        }
    }
}

/// How many results a search over `n` ids under `filter` owes when `want` were asked for:
/// `want`, or fewer when the filter counts fewer matches. Only a count the filter knows is
/// trusted (an estimate from a sample could promise too few and let a short answer stand);
/// with deletions the count is an upper bound, which errs towards searching again.
pub(crate) fn results_owed(filter: &dyn Filter, n: usize, want: usize) -> usize {
    filter.count_allowed(n as u32).map_or(want, |m| want.min(m as usize))
}

/// Ids whose loads are started ahead of their visit in [`for_each_allowed_ahead`].
const LOOKAHEAD: usize = 8;

/// [`for_each_allowed`] for scans of scattered rows: `prefetch(id)` is called as each id is
/// met and `visit(id)` eight ids later, so the row's load overlaps the work on the ones
/// before it.
#[inline]
pub(crate) fn for_each_allowed_ahead(
    filter: &dyn Filter,
    n: u32,
    prefetch: impl Fn(u32),
    mut visit: impl FnMut(u32),
) {
    let mut ring = [0u32; LOOKAHEAD];
    let mut queued = 0usize;
    for_each_allowed(filter, n, |id| {
        prefetch(id);
        let slot = queued % LOOKAHEAD;
        if queued >= LOOKAHEAD {
            visit(ring[slot]);
        }
        ring[slot] = id;
        queued += 1;
    });
    for i in queued - queued.min(LOOKAHEAD)..queued {
        visit(ring[i % LOOKAHEAD]);
    }
}

/// How many of the `n` ids `filter` allows: exact when the filter knows, else estimated from a
/// fixed sample of 256 evenly spaced ids (deterministic, so results are too).
pub(crate) fn estimate_matches(filter: &dyn Filter, n: usize) -> usize {
    if let Some(c) = filter.count_allowed(n as u32) {
        return c as usize;
    }
    let samples = n.min(256);
    let hits = (0..samples).filter(|i| filter.allows((i * n / samples) as u32)).count();
    hits * n / samples.max(1)
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

    /// The set as 64-bit words, id `i` at bit `i % 64` of word `i / 64`.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// A set of capacity `len` from its words (as [`Bitset::words`] gives them); `None` when
    /// the word count does not fit `len` or a bit beyond `len` is set.
    pub fn from_words(len: u32, words: Vec<u64>) -> Option<Self> {
        if words.len() != (len as usize).div_ceil(64) {
            return None;
        }
        let rem = len % 64;
        if rem > 0 && words.last().is_some_and(|w| w >> rem != 0) {
            return None;
        }
        Some(Self { words, len })
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

    /// Adds every id of `ids` (those beyond the capacity are ignored).
    pub fn insert_all(&mut self, ids: &[u32]) {
        for &id in ids {
            self.insert(id);
        }
    }

    /// Adds every id `0..capacity()`.
    pub fn fill(&mut self) {
        self.words.fill(u64::MAX);
        let rem = self.len % 64;
        if rem > 0 {
            if let Some(last) = self.words.last_mut() {
                *last = (1u64 << rem) - 1;
            }
        }
    }

    /// Keeps only the ids also in `other`.
    pub fn intersect_with(&mut self, other: &Bitset) {
        for (i, w) in self.words.iter_mut().enumerate() {
            *w &= other.words.get(i).copied().unwrap_or(0);
        }
    }

    /// Adds the ids of `other` that fit the capacity.
    pub fn union_with(&mut self, other: &Bitset) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w |= o;
        }
        // `other` may be longer: bits beyond this set's capacity must stay clear.
        let rem = self.len % 64;
        if rem > 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << rem) - 1;
            }
        }
    }

    /// Removes the ids that are in `other`.
    pub fn subtract(&mut self, other: &Bitset) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w &= !o;
        }
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
    fn allowed_ids(&self) -> Option<AllowedIds<'_>> {
        Some(AllowedIds::Words(&self.words))
    }
}

/// A sorted, duplicate-free list of allowed ids: the form a payload index hands a search, and
/// the cheapest one when few ids match.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IdList {
    ids: Vec<u32>,
}

impl IdList {
    /// The list of `ids` in any order; duplicates are dropped.
    pub fn new(mut ids: Vec<u32>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        Self { ids }
    }

    /// The ids, ascending.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Number of ids in the list.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl Filter for IdList {
    #[inline]
    fn allows(&self, id: u32) -> bool {
        self.ids.binary_search(&id).is_ok()
    }
    fn count_allowed(&self, n: u32) -> Option<u32> {
        Some(self.ids.partition_point(|&id| id < n) as u32)
    }
    fn allowed_ids(&self) -> Option<AllowedIds<'_>> {
        Some(AllowedIds::Sorted(&self.ids))
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

    fn allowed(filter: &dyn Filter, n: u32) -> Vec<u32> {
        let mut ids = Vec::new();
        for_each_allowed(filter, n, |id| ids.push(id));
        ids
    }

    #[test]
    fn every_filter_form_lists_the_same_ids_below_n() {
        let ids = [0u32, 5, 63, 64, 65, 127, 128, 199];
        let set = Bitset::from_fn(200, |id| ids.contains(&id));
        let list = IdList::new(ids.iter().rev().chain(&[5, 5]).copied().collect());
        let pred = Predicate(|id: u32| ids.contains(&id));
        for n in [0, 1, 6, 64, 65, 66, 128, 129, 200, 1000] {
            let want: Vec<u32> = ids.iter().copied().filter(|&id| id < n).collect();
            assert_eq!(allowed(&set, n), want, "bitset below {n}");
            assert_eq!(allowed(&list, n), want, "list below {n}");
            assert_eq!(allowed(&pred, n), want, "predicate below {n}");
            assert_eq!(list.count_allowed(n), Some(want.len() as u32));
        }
        assert_eq!(list.len(), ids.len());
        assert!(list.allows(127) && !list.allows(126) && !list.allows(u32::MAX));
        assert!(IdList::new(Vec::new()).is_empty());
    }
}
