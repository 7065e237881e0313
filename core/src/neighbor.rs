//! Search results and the bounded top-k collector every index fills them with.

use alloc::vec::Vec;
use core::cmp::Ordering;

/// One search result: an internal id and its distance to the query (smaller is closer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbor {
    /// Internal id (dense slot number).
    pub id: u32,
    /// Distance under the index's metric.
    pub distance: f32,
}

impl Neighbor {
    /// A result for `id` at `distance`.
    pub const fn new(id: u32, distance: f32) -> Self {
        Self { id, distance }
    }

    /// The result order: distance first (NaN last), then id. Total, so sorting is deterministic.
    #[inline]
    pub fn cmp_rank(&self, other: &Self) -> Ordering {
        rank_key(self.distance).total_cmp(&rank_key(other.distance)).then(self.id.cmp(&other.id))
    }
}

/// NaN (possible only when finite inputs overflow) ranks as the farthest value.
#[inline(always)]
fn rank_key(d: f32) -> f32 {
    if d.is_nan() {
        f32::INFINITY
    } else {
        d
    }
}

/// Keeps the `k` best neighbours seen so far in a max-heap stored in a caller-owned `Vec`, so
/// collecting results allocates nothing once the vector has capacity.
pub struct TopK<'a> {
    k: usize,
    heap: &'a mut Vec<Neighbor>,
}

impl<'a> TopK<'a> {
    /// A collector of the `k` best into `out`, which is cleared.
    pub fn new(k: usize, out: &'a mut Vec<Neighbor>) -> Self {
        out.clear();
        // A caller may pass any k; the heap grows only as far as candidates arrive.
        out.reserve(k.min(1024));
        Self { k, heap: out }
    }

    /// Continues collecting into `out`, which must hold a heap left by an earlier collector
    /// of the same `k` that was not finished (a batch scan resumes per tile).
    pub fn resume(k: usize, out: &'a mut Vec<Neighbor>) -> Self {
        Self { k, heap: out }
    }

    /// Number of neighbours held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops every neighbour held, to collect afresh.
    pub fn clear(&mut self) {
        self.heap.clear();
    }

    /// Whether nothing is held yet.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Whether `k` neighbours are held.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.heap.len() >= self.k
    }

    /// The worst neighbour held, once full: a candidate must rank before it to get in.
    #[inline]
    pub fn worst(&self) -> Option<&Neighbor> {
        if self.is_full() {
            self.heap.first()
        } else {
            None
        }
    }

    /// Offers a candidate; keeps it if it ranks among the best `k`.
    #[inline]
    pub fn push(&mut self, candidate: Neighbor) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(candidate);
            self.sift_up(self.heap.len() - 1);
        } else if let Some(top) = self.heap.first_mut() {
            if candidate.cmp_rank(top) == Ordering::Less {
                *top = candidate;
                self.sift_down(0);
            }
        }
    }

    /// Sorts the held neighbours best first and releases the vector.
    pub fn finish(self) {
        self.heap.sort_unstable_by(Neighbor::cmp_rank);
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[i].cmp_rank(&self.heap[parent]) == Ordering::Greater {
                self.heap.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let mut largest = left;
            if right < n && self.heap[right].cmp_rank(&self.heap[left]) == Ordering::Greater {
                largest = right;
            }
            if self.heap[largest].cmp_rank(&self.heap[i]) == Ordering::Greater {
                self.heap.swap(i, largest);
                i = largest;
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn keeps_k_smallest_with_id_tiebreak() {
        let mut out = Vec::new();
        let mut top = TopK::new(3, &mut out);
        for (id, d) in [(5, 1.0), (1, 3.0), (2, 1.0), (7, 0.5), (3, 1.0), (0, 2.0)] {
            top.push(Neighbor::new(id, d));
        }
        top.finish();
        assert_eq!(out, vec![Neighbor::new(7, 0.5), Neighbor::new(2, 1.0), Neighbor::new(3, 1.0)]);
    }

    #[test]
    fn nan_ranks_last() {
        let mut out = Vec::new();
        let mut top = TopK::new(2, &mut out);
        top.push(Neighbor::new(5, f32::NAN));
        top.push(Neighbor::new(1, f32::INFINITY));
        top.push(Neighbor::new(2, 4.0));
        top.finish();
        assert_eq!(out[0], Neighbor::new(2, 4.0));
        assert_eq!(out[1].id, 1);
    }
}
