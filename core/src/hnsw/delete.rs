//! Deleting from HNSW: a removed node's in-neighbours are re-linked at once, and its slot is
//! reused by a later insert after every link to it is purged.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::build::reselect;
use super::{HnswIndex, NONE};
use crate::graph::{Cand, Graph};
use crate::{Error, Result};

impl HnswIndex {
    /// Takes freed slots for the first rows of `data`: purges every link to them, stores the
    /// new vectors and clears their lists (they keep their level, an unbiased earlier draw, so
    /// the upper-block layout stays a prefix sum). Returns the slots, to be linked.
    pub(super) fn reuse_slots(&mut self, data: &[f32]) -> Vec<u32> {
        let n = (data.len() / self.dim).min(self.store.free.len());
        if n == 0 {
            return Vec::new();
        }
        let slots: Vec<u32> = self.store.free.drain(self.store.free.len() - n..).rev().collect();
        self.dead -= n;
        self.purge_links_to(&slots);
        for (row, &slot) in data.chunks_exact(self.dim).zip(&slots) {
            self.store_row(slot, row);
            self.store.links0[slot as usize * (self.m0 + 1)].store(0, Relaxed);
            let off = self.store.upper_offsets[slot as usize] as usize;
            for l in 0..self.store.levels[slot as usize] as usize {
                self.store.upper[off + l * (self.params.m + 1)].store(0, Relaxed);
            }
            self.store.deleted[slot as usize / 64] &= !(1 << (slot % 64));
        }
        slots
    }

    /// Overwrites slot `slot`'s stored row (and code) with the prepared `row`.
    pub(super) fn store_row(&mut self, slot: u32, row: &[f32]) {
        self.store.vectors.set(slot as usize, row);
    }

    /// Removes every link to `slots` from every list, choosing replacements with the heuristic
    /// among the remaining links and the removed nodes' own links (one pass over the graph).
    pub(super) fn purge_links_to(&mut self, slots: &[u32]) {
        let mut gone = crate::Bitset::new(self.store.levels.len() as u32);
        for &s in slots {
            gone.insert(s);
        }
        let g = self.graph();
        for node in 0..self.store.levels.len() as u32 {
            if gone.contains(node) {
                continue;
            }
            for level in 0..=self.store.levels[node as usize] as usize {
                let (start, len) = g.list(node, level);
                if (start..start + len).any(|i| gone.contains(g.link(level, i))) {
                    repair_list(&g, node, level, &|id| gone.contains(id), &self.store.deleted);
                }
            }
        }
    }

    /// Deletes `id`: it no longer appears in results, its neighbours that linked to it are
    /// re-linked by the heuristic among their other links and its links, and its slot is
    /// reused by a later insert. Searches still pass through it until then.
    pub fn remove(&mut self, id: u32) -> Result<()> {
        let count = self.store.levels.len();
        if id as usize >= count || self.is_deleted(id) {
            return Err(Error::UnknownId { id: id as u64, count: count as u64 });
        }
        if self.store.deleted.is_empty() {
            self.store.deleted = alloc::vec![0; count.div_ceil(64)];
        }
        self.store.deleted[id as usize / 64] |= 1 << (id % 64);
        self.store.free.push(id);
        self.dead += 1;
        let g = self.graph();
        for level in 0..=self.store.levels[id as usize] as usize {
            let (start, len) = g.list(id, level);
            for i in start..start + len {
                let n = g.link(level, i);
                let (ns, nl) = g.list(n, level);
                if !self.is_deleted(n) && (ns..ns + nl).any(|j| g.link(level, j) == id) {
                    repair_list(&g, n, level, &|x| x == id, &self.store.deleted);
                }
            }
        }
        if id == self.entry {
            // The highest live node becomes the entry point.
            let best = (0..count as u32)
                .filter(|&i| !self.is_deleted(i))
                .max_by_key(|&i| (self.store.levels[i as usize], core::cmp::Reverse(i)));
            match best {
                Some(b) => {
                    self.entry = b;
                    self.max_level = self.store.levels[b as usize];
                }
                None => {
                    self.entry = NONE;
                    self.max_level = 0;
                }
            }
        }
        Ok(())
    }
}

/// Re-selects `node`'s list at `level` without the nodes `gone` names: candidates are its other
/// links plus the live links of the removed ones, chosen by the heuristic.
pub(super) fn repair_list(
    g: &Graph<'_, [AtomicU32]>,
    node: u32,
    level: usize,
    gone: &dyn Fn(u32) -> bool,
    deleted: &[u64],
) {
    let is_deleted = |id: u32| deleted.get(id as usize / 64).is_some_and(|w| (w >> (id % 64)) & 1 == 1);
    let (start, len) = g.list(node, level);
    let mut buf = Vec::new();
    let base = g.own_vector(node, &mut buf);
    let mut ids: Vec<u32> = Vec::with_capacity(4 * len);
    let dead = |id: u32| gone(id) || is_deleted(id);
    for i in start..start + len {
        let n = g.link(level, i);
        if !gone(n) {
            ids.push(n);
            continue;
        }
        // Replacements come from the removed node's links; where those are tombstones too
        // (common when many are deleted), from theirs, one hop further.
        let (rs, rl) = g.list(n, level);
        for j in rs..rs + rl {
            let r = g.link(level, j);
            if r == node {
                continue;
            }
            if !dead(r) {
                ids.push(r);
            } else {
                let (ts, tl) = g.list(r, level);
                ids.extend((ts..ts + tl).map(|t| g.link(level, t)).filter(|&t| t != node && !dead(t)));
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let cands: Vec<Cand> = ids.iter().map(|&id| Cand { d: g.pair(base, id), id }).collect();
    reselect(g, node, level, cands);
}
