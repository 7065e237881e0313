//! Renumbering an index's slots so that nodes close in the graph sit close in memory.
//!
//! Insertion order scatters a neighbourhood over the whole vector array; a search then touches
//! rows far apart, one page and one DRAM row each. Grouping the slots by the graph's own
//! hierarchy puts a node's neighbours in nearby rows. Measured on one graph in both layouts
//! (BENCHMARKS.md): 6–10 % faster simd128 searches in WebAssembly, whose memory has no huge
//! pages; no change natively, where huge pages and prefetch already hide it. The graph itself
//! is unchanged: the same links between the same vectors, renamed.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::{HnswIndex, NONE};
use crate::memory;

impl HnswIndex {
    /// Renumbers the slots so that graph neighbours sit close in memory (see
    /// `hierarchical_order`); slots no walk reaches keep their relative order. Returns
    /// `old_of_new`: the slot each new slot had before. Searches then return the new slots, so
    /// a caller that hands ids to users keeps them through this permutation (e.g. as the file's
    /// `ids` section: `IdMap::from_ids(&old_of_new, …)` where ids were slots). Every array is
    /// copied once, so memory peaks at about twice the index for a moment.
    pub fn reorder_for_locality(&mut self) -> Vec<u32> {
        let old_of_new = self.hierarchical_order();
        self.apply_order(&old_of_new);
        old_of_new
    }

    /// The hierarchy's own clustering: the top level in breadth-first order; then, level by
    /// level downwards, every node joins the upper-level node a multi-source breadth-first walk
    /// of its level reaches it from (the walk starts from all upper nodes at once, in their
    /// order), and is placed right after it. So each node sits beside the nodes it is nearest
    /// to in the graph, and neighbouring groups beside each other.
    pub(super) fn hierarchical_order(&self) -> Vec<u32> {
        let n = self.store.levels.len();
        if self.entry == NONE {
            return (0..n as u32).collect();
        }
        let g = self.graph();
        let mut order = vec![self.entry];
        let mut owner = vec![NONE; n];
        for level in (0..=self.max_level as usize).rev() {
            // `order` holds the nodes above `level`, grouped; grow it by this level's nodes.
            for &p in &order {
                owner[p as usize] = p;
            }
            let mut queue: Vec<u32> = order.clone();
            let mut head = 0;
            while head < queue.len() {
                let node = queue[head];
                head += 1;
                let (start, len) = g.list(node, level);
                for i in start..start + len {
                    let next = g.link(level, i);
                    if owner[next as usize] == NONE {
                        owner[next as usize] = owner[node as usize];
                        queue.push(next);
                    }
                }
            }
            // Nodes of this level no walk reached start groups of their own, in slot order.
            let unreached: Vec<u32> = (0..n as u32)
                .filter(|&s| owner[s as usize] == NONE && self.store.levels[s as usize] as usize >= level)
                .collect();
            let mut roots = order;
            roots.extend_from_slice(&unreached);
            // group[root] = its index among the roots.
            let mut group = vec![NONE; n];
            for (i, &r) in roots.iter().enumerate() {
                group[r as usize] = i as u32;
            }
            let mut children: Vec<Vec<u32>> = vec![Vec::new(); roots.len()];
            for &v in &queue[roots.len() - unreached.len()..] {
                children[group[owner[v as usize] as usize] as usize].push(v);
            }
            order = Vec::with_capacity(n);
            for (r, kids) in roots.iter().zip(&children) {
                order.push(*r);
                order.extend_from_slice(kids);
            }
            owner.iter_mut().for_each(|o| *o = NONE);
        }
        order
    }

    /// Moves every per-slot array into the order `old_of_new` and renames the links.
    pub(super) fn apply_order(&mut self, old_of_new: &[u32]) {
        let n = old_of_new.len();
        let mut new_of_old = vec![0u32; n];
        for (new, &old) in old_of_new.iter().enumerate() {
            new_of_old[old as usize] = new as u32;
        }
        let dim = self.dim;
        self.store.vectors.permute(dim, old_of_new);
        // A list is its length word, then ids; words past the length are cleared.
        let rename = |block: &[AtomicU32], out: &mut Vec<AtomicU32>| {
            let len = block[0].load(Relaxed) as usize;
            out.push(AtomicU32::new(len as u32));
            for (i, w) in block[1..].iter().enumerate() {
                let id = if i < len { new_of_old[w.load(Relaxed) as usize] } else { 0 };
                out.push(AtomicU32::new(id));
            }
        };
        let stride = self.m0 + 1;
        let mut links0 = Vec::new();
        memory::reserve_exact_huge(&mut links0, self.store.links0.len());
        for &old in old_of_new {
            rename(&self.store.links0[old as usize * stride..(old as usize + 1) * stride], &mut links0);
        }
        self.store.links0 = links0;
        let block = self.params.m + 1;
        let mut upper = Vec::with_capacity(self.store.upper.len());
        let mut offsets = Vec::with_capacity(n);
        let mut levels = Vec::with_capacity(n);
        for &old in old_of_new {
            let level = self.store.levels[old as usize];
            let start = self.store.upper_offsets[old as usize] as usize;
            offsets.push(upper.len() as u32);
            levels.push(level);
            for l in 0..level as usize {
                rename(&self.store.upper[start + l * block..start + (l + 1) * block], &mut upper);
            }
        }
        self.store.upper = upper;
        self.store.upper_offsets = offsets;
        self.store.levels = levels;
        if !self.store.deleted.is_empty() {
            let mut deleted = vec![0u64; self.store.deleted.len()];
            for (new, &old) in old_of_new.iter().enumerate() {
                if (self.store.deleted[old as usize / 64] >> (old % 64)) & 1 == 1 {
                    deleted[new / 64] |= 1 << (new % 64);
                }
            }
            self.store.deleted = deleted;
        }
        for s in &mut self.store.free {
            *s = new_of_old[*s as usize];
        }
        if self.entry != NONE {
            self.entry = new_of_old[self.entry as usize];
        }
    }
}
