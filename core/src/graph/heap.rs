//! Candidates ordered by (distance, id), and the binary heaps a best-first search keeps them
//! in: every choice a graph makes is deterministic, so seeded builds are byte-identical on
//! every target.

use alloc::vec::Vec;

/// A candidate: distance to the query and node id. Ordered by distance, then id, so every
/// choice the graph makes is deterministic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Cand {
    pub d: f32,
    pub id: u32,
}

impl Cand {
    #[inline(always)]
    pub fn before(self, other: Self) -> bool {
        self.d < other.d || (self.d == other.d && self.id < other.id)
    }

    /// The same order as [`Cand::before`], for sorting.
    pub fn order(a: &Self, b: &Self) -> core::cmp::Ordering {
        if a.before(*b) {
            core::cmp::Ordering::Less
        } else {
            core::cmp::Ordering::Greater
        }
    }
}

/// A binary heap over `Cand`, max-first when `MAX` else min-first.
#[derive(Default, Clone)]
pub(crate) struct Heap<const MAX: bool> {
    items: Vec<Cand>,
}

impl<const MAX: bool> Heap<MAX> {
    #[inline(always)]
    fn above(a: Cand, b: Cand) -> bool {
        if MAX {
            b.before(a)
        } else {
            a.before(b)
        }
    }
    pub fn clear(&mut self) {
        self.items.clear();
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    #[inline(always)]
    pub fn peek(&self) -> Option<Cand> {
        self.items.first().copied()
    }
    #[inline]
    pub fn push(&mut self, c: Cand) {
        self.items.push(c);
        let mut i = self.items.len() - 1;
        while i > 0 {
            let p = (i - 1) / 2;
            if Self::above(self.items[i], self.items[p]) {
                self.items.swap(i, p);
                i = p;
            } else {
                break;
            }
        }
    }
    #[inline]
    pub fn pop(&mut self) -> Option<Cand> {
        let last = self.items.pop()?;
        if self.items.is_empty() {
            return Some(last);
        }
        let top = core::mem::replace(&mut self.items[0], last);
        let n = self.items.len();
        let mut i = 0;
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && Self::above(self.items[r], self.items[l]) { r } else { l };
            if Self::above(self.items[c], self.items[i]) {
                self.items.swap(i, c);
                i = c;
            } else {
                break;
            }
        }
        Some(top)
    }
    /// Drains into `out` sorted nearest first.
    pub fn drain_sorted(&mut self, out: &mut Vec<Cand>) {
        out.clear();
        out.extend_from_slice(&self.items);
        self.items.clear();
        out.sort_unstable_by(Cand::order);
    }
}
