//! HNSW's build: drawing levels, validating and storing new rows, inserting (Algorithm 1 with
//! the heuristic of Algorithm 4), one at a time or on every rayon thread under per-node locks.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::{HnswIndex, Scratch, MAX_LEVEL, NONE};
#[cfg(feature = "parallel")]
use crate::graph::HalfData;
use crate::graph::{Cand, Graph, Scorer, WalkStats};
use crate::memory;
#[cfg(feature = "parallel")]
use crate::simd::half::HalfKernels;
use crate::validate::check_vectors;
use crate::vectors::check_half_range;
use crate::{Error, Result, ZeroVectorKind};

impl HnswIndex {
    pub(super) fn draw_level(&mut self) -> u8 {
        if self.vamana.is_some() {
            return 0;
        }
        let ml = 1.0 / libm::log(self.params.m as f64);
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u = 1.0 - self.store.rng.next_f64();
        let level = libm::floor(-libm::log(u) * ml);
        if level >= MAX_LEVEL as f64 {
            MAX_LEVEL
        } else {
            level as u8
        }
    }

    /// Validates and (for cosine) normalises a batch; returns it ready to store.
    pub(super) fn prepare(&self, vectors: &[f32]) -> Result<Vec<f32>> {
        if vectors.len() < self.dim && !vectors.is_empty() {
            return Err(Error::DimensionMismatch { expected: self.dim, got: vectors.len() });
        }
        check_vectors(vectors, self.dim)?;
        self.prepare_owned(vectors.to_vec())
    }

    /// [`prepare`](Self::prepare) in place, for a caller that hands its rows over (no copy).
    pub(super) fn prepare_owned(&self, mut data: Vec<f32>) -> Result<Vec<f32>> {
        if data.len() < self.dim && !data.is_empty() {
            return Err(Error::DimensionMismatch { expected: self.dim, got: data.len() });
        }
        let n = check_vectors(&data, self.dim)?;
        let count = self.store.levels.len();
        if count + n > u32::MAX as usize - 1 {
            return Err(Error::CapacityExceeded {
                count: count as u64,
                adding: n as u64,
                max: u32::MAX as u64 - 1,
            });
        }
        if self.metric.normalizes() {
            for (i, v) in data.chunks_exact_mut(self.dim).enumerate() {
                if !self.kernels.normalize(v) {
                    return Err(Error::ZeroVector { what: ZeroVectorKind::Vector(i) });
                }
            }
        }
        if self.stores_f16() {
            check_half_range(&data, self.dim)?;
            for x in data.iter_mut() {
                *x = crate::simd::half::from_f16(crate::simd::half::to_f16(*x));
            }
        }
        Ok(data)
    }

    /// Appends slots for `data` (vectors, drawn levels, empty link lists); returns the first id.
    pub(super) fn allocate(&mut self, data: &[f32]) -> u32 {
        let first = self.store.levels.len() as u32;
        let n = data.len() / self.dim;
        memory::reserve_huge(&mut self.store.links0, n * (self.m0 + 1));
        self.store.vectors.extend(data, self.dim);
        for _ in 0..n {
            let level = self.draw_level();
            let offset = self.store.upper.len() as u32;
            self.store.levels.push(level);
            self.store.upper_offsets.push(offset);
            self.store.upper.extend((0..level as usize * (self.params.m + 1)).map(|_| AtomicU32::new(0)));
            self.store.links0.extend((0..self.m0 + 1).map(|_| AtomicU32::new(0)));
        }
        if !self.store.deleted.is_empty() {
            self.store.deleted.resize(self.store.levels.len().div_ceil(64), 0);
        }
        first
    }

    /// Inserts row-major `vectors` one at a time on this thread; returns their ids. Slots freed
    /// by [`remove`](HnswIndex::remove) are reused first. The whole batch is validated first,
    /// so on error nothing is added.
    pub fn add(&mut self, vectors: &[f32]) -> Result<Vec<u32>> {
        let data = self.prepare(vectors)?;
        let mut ids = self.reuse_slots(&data);
        let rest = &data[ids.len() * self.dim..];
        let first = self.allocate(rest);
        ids.extend(first..self.store.levels.len() as u32);
        let mut s = Scratch::default();
        for &id in &ids {
            self.link_new(id, &mut s, &NoLocks);
        }
        Ok(ids)
    }

    /// Step 1 of an insert that runs beside searches (see `neardb::ConcurrentHnsw`):
    /// validates `vector` and gives it a new slot, not yet linked (so no search can reach it).
    /// Needs exclusive access, briefly. Freed slots are left to batch [`add`](HnswIndex::add),
    /// whose reuse needs a pass over the whole graph.
    pub fn reserve_node(&mut self, vector: &[f32]) -> Result<u32> {
        if vector.len() != self.dim {
            return Err(Error::DimensionMismatch { expected: self.dim, got: vector.len() });
        }
        let data = self.prepare(vector)?;
        let id = self.allocate(&data);
        if self.entry == NONE {
            self.entry = id;
            self.max_level = self.store.levels[id as usize];
        }
        Ok(id)
    }

    /// Step 2: links a reserved node into the graph through shared access, so searches run
    /// meanwhile; the node's own lists are complete before anything links to it. One linking
    /// thread at a time (concurrent linkers would not corrupt memory but could lose links).
    pub fn link_node(&self, id: u32, scratch: &mut Scratch) -> Result<()> {
        let Some(&level) = self.store.levels.get(id as usize) else {
            return Err(Error::UnknownId { id: id as u64, count: self.store.levels.len() as u64 });
        };
        if id != self.entry {
            let g = self.graph();
            let ins = Insert {
                id,
                level,
                entry: self.entry,
                max_level: self.max_level,
                ef: self.params.ef_construction,
            };
            link_into(&g, ins, scratch, &NoLocks);
        }
        Ok(())
    }

    /// Step 3: makes a linked node the entry point if it reaches above the current top level.
    pub fn publish_node(&mut self, id: u32) {
        let level = self.node_level(id);
        if (id as usize) < self.store.levels.len() && level > self.max_level {
            self.entry = id;
            self.max_level = level;
        }
    }

    /// Inserts row-major `vectors` using every thread of the current rayon pool: levels are
    /// drawn in order (so they match a sequential build), then nodes are linked concurrently
    /// with one lock per node. Faster, but the graph depends on thread timing; use [`add`] for
    /// reproducible files.
    ///
    /// [`add`]: HnswIndex::add
    #[cfg(feature = "parallel")]
    pub fn add_parallel(&mut self, vectors: &[f32]) -> Result<Vec<u32>> {
        self.add_parallel_with(vectors, &|_| {})
    }

    /// [`add_parallel`](HnswIndex::add_parallel), calling `progress(n)` from the workers as
    /// nodes are linked (for a progress bar).
    ///
    /// While linking, the build's distances read a binary16 copy of the vectors (half the
    /// bytes of a build that waits on memory; distances within ~1e-3 relative). The copy is
    /// dropped at the end: the index, its file and every search keep the exact `f32` vectors.
    /// Vectors beyond binary16's range (|x| > 65504) are linked with exact distances.
    #[cfg(feature = "parallel")]
    pub fn add_parallel_with(
        &mut self,
        vectors: &[f32],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u32>> {
        use rayon::prelude::*;
        let data = self.prepare(vectors)?;
        // Freed slots are refilled sequentially (their purge is one pass anyway).
        let mut ids = self.reuse_slots(&data);
        let mut s = Scratch::default();
        for &id in &ids {
            self.link_new(id, &mut s, &NoLocks);
        }
        let data = &data[ids.len() * self.dim..];
        let start = self.allocate(data);
        let mut first = start;
        let end = self.store.levels.len() as u32;
        if first < end && self.entry == NONE {
            self.link_new(first, &mut Scratch::default(), &NoLocks);
            first += 1;
        }
        let locks = SpinLocks((0..end).map(|_| spin::Mutex::new(())).collect());
        let top = spin::Mutex::new((self.entry, self.max_level));
        // An index that stores binary16 walks its own rows; others get a temporary copy.
        let rows = match self.store.vectors.rows.rows() {
            crate::vectors::Rows::F32(own) if first < end => crate::simd::half::encode(own),
            _ => None,
        };
        let mut g = self.graph();
        if let Some(rows) = rows.as_deref() {
            g.half = Some(HalfData { rows, kernels: HalfKernels::new(self.metric, self.kernels) });
        }
        let ef = self.params.ef_construction;
        let levels = &self.store.levels;
        (first..end).into_par_iter().for_each_init(Scratch::default, |s, id| {
            let level = levels[id as usize];
            let (entry, max_level) = *top.lock();
            link_into(&g, Insert { id, level, entry, max_level, ef }, s, &locks);
            if level > max_level {
                let mut t = top.lock();
                if level > t.1 {
                    *t = (id, level);
                }
            }
            progress(1);
        });
        drop(rows);
        let (entry, max_level) = top.into_inner();
        self.entry = entry;
        self.max_level = max_level;
        ids.extend(start..end);
        Ok(ids)
    }

    /// Links the already-allocated node `id` into the graph (Algorithm 1). Node list updates
    /// go through `locks`, so the parallel build can call this from many threads.
    pub(super) fn link_new(&mut self, id: u32, s: &mut Scratch, locks: &dyn NodeLocks) {
        let level = self.store.levels[id as usize];
        if self.entry == NONE {
            self.entry = id;
            self.max_level = level;
            return;
        }
        let (entry, max_level) = (self.entry, self.max_level);
        let ins = Insert { id, level, entry, max_level, ef: self.params.ef_construction };
        link_into(&self.graph(), ins, s, locks);
        if level > self.max_level {
            self.entry = id;
            self.max_level = level;
        }
    }
}

/// Serialises list updates of one node. The single-thread build needs none.
pub(crate) trait NodeLocks: Sync {
    /// Runs `f` holding node `id`'s lock.
    fn run(&self, id: u32, f: &mut dyn FnMut());
}

pub(crate) struct NoLocks;

/// One spin lock per node: list updates are a few dozen word writes, far shorter than a
/// context switch.
#[cfg(feature = "parallel")]
pub(crate) struct SpinLocks(pub(crate) Vec<spin::Mutex<()>>);

#[cfg(feature = "parallel")]
impl NodeLocks for SpinLocks {
    fn run(&self, id: u32, f: &mut dyn FnMut()) {
        let _guard = self.0[id as usize].lock();
        f()
    }
}

impl NodeLocks for NoLocks {
    fn run(&self, _: u32, f: &mut dyn FnMut()) {
        f()
    }
}

/// Sets the list of `id` at `level` to `ids`.
pub(super) fn write_list(g: &Graph<'_, [AtomicU32]>, id: u32, level: usize, ids: impl Iterator<Item = u32>) {
    let (start, _) = g.list(id, level);
    let words = if level == 0 { g.links0 } else { g.upper };
    let mut n = 0;
    for (i, v) in ids.enumerate() {
        words[start + i].store(v, Relaxed);
        n += 1;
    }
    words[start - 1].store(n as u32, Relaxed);
}

/// Algorithm 1 for an allocated node: descend greedily to `level + 1`, then on each level
/// search with `ef_construction` and keep `m` neighbours by the heuristic. Only after the node's
/// own lists are written on every level are the reverse links added (pruning a neighbour's
/// list by the heuristic when it overflows): until then nothing links to the node, so a
/// concurrent insert can never descend into it and find an unwritten list. Sequentially this
/// builds the same graph as interleaving the two, because a level's reverse links change only
/// that level's lists, which the searches on other levels never read.
pub(super) fn link_into(g: &Graph<'_, [AtomicU32]>, ins: Insert, s: &mut Scratch, locks: &dyn NodeLocks) {
    let mut buf = Vec::new();
    let v = g.own_vector(ins.id, &mut buf);
    match g.half(v) {
        Some(q) => link_with(g, &q, ins, s, locks),
        None => link_with(g, &g.exact(v), ins, s, locks),
    }
}

/// One node's insert: which node, its top level, and the graph's entry point and top level
/// when it starts, with the candidate-list size of its searches.
#[derive(Clone, Copy)]
pub(super) struct Insert {
    id: u32,
    level: u8,
    entry: u32,
    max_level: u8,
    ef: usize,
}

/// [`link_into`] with the scorer its distances use.
pub(super) fn link_with<S: Scorer>(
    g: &Graph<'_, [AtomicU32]>,
    q: &S,
    ins: Insert,
    s: &mut Scratch,
    locks: &dyn NodeLocks,
) {
    let Insert { id, level, entry, max_level, ef } = ins;
    let mut ep = Cand { d: q.dist(entry), id: entry };
    for lc in ((level as usize + 1)..=(max_level as usize)).rev() {
        ep = g.greedy(q, ep, lc, &mut WalkStats::default());
    }
    let mut selected = core::mem::take(&mut s.selected);
    let mut sorted = core::mem::take(&mut s.sorted);
    let mut chosen = core::mem::take(&mut s.chosen);
    let mut decoded = core::mem::take(&mut s.decoded);
    chosen.clear();
    let top = level.min(max_level) as usize;
    for lc in (0..=top).rev() {
        g.search_level(q, ep, ef, lc, None, s);
        s.top.drain_sorted(&mut sorted);
        sorted.retain(|c| c.id != id);
        if let Some(first) = sorted.first() {
            ep = *first;
        }
        g.select(&sorted, g.m, 1.0, &mut selected, &mut decoded);
        locks.run(id, &mut || set_own_list(g, id, lc, &selected));
        chosen.push((lc, selected.len()));
        s.chosen_cands.extend_from_slice(&selected);
    }
    let mut at = 0;
    for &(lc, n) in chosen.iter() {
        let cap = if lc == 0 { g.m0 } else { g.m };
        for c in &s.chosen_cands[at..at + n] {
            locks.run(c.id, &mut || add_reverse(g, c.id, id, c.d, lc, cap));
        }
        at += n;
    }
    s.chosen_cands.clear();
    s.decoded = decoded;
    s.selected = selected;
    s.sorted = sorted;
    s.chosen = chosen;
}

/// Sets a new node's list at `level` to its selection. In a parallel build other nodes may
/// already have linked to it (they reached it through a level above); those links are kept
/// by choosing among both sets with the heuristic. Sequentially the list is always empty.
pub(super) fn set_own_list(g: &Graph<'_, [AtomicU32]>, id: u32, level: usize, selected: &[Cand]) {
    let (start, len) = g.list(id, level);
    if len == 0 {
        write_list(g, id, level, selected.iter().map(|c| c.id));
        return;
    }
    let words = if level == 0 { g.links0 } else { g.upper };
    let mut buf = Vec::new();
    let base = g.own_vector(id, &mut buf);
    let mut cands: Vec<Cand> = selected.to_vec();
    for w in &words[start..start + len] {
        let n = w.load(Relaxed);
        if n != id && !cands.iter().any(|c| c.id == n) {
            cands.push(Cand { d: g.pair(base, n), id: n });
        }
    }
    reselect(g, id, level, cands);
}

/// Sets `node`'s list at `level` to the heuristic's choice among `cands` (any order).
pub(super) fn reselect(g: &Graph<'_, [AtomicU32]>, node: u32, level: usize, mut cands: Vec<Cand>) {
    cands.sort_unstable_by(Cand::order);
    let cap = if level == 0 { g.m0 } else { g.m };
    let mut kept = Vec::with_capacity(cap);
    g.select(&cands, cap, 1.0, &mut kept, &mut Vec::new());
    write_list(g, node, level, kept.iter().map(|c| c.id));
}

/// Adds `new` (at distance `d` from `node`) to `node`'s list, pruning with the heuristic when
/// the list is full.
pub(super) fn add_reverse(g: &Graph<'_, [AtomicU32]>, node: u32, new: u32, d: f32, level: usize, cap: usize) {
    let (start, len) = g.list(node, level);
    let words = if level == 0 { g.links0 } else { g.upper };
    if (start..start + len).any(|i| words[i].load(Relaxed) == new) {
        return;
    }
    if len < cap {
        words[start + len].store(new, Relaxed);
        words[start - 1].store(len as u32 + 1, Relaxed);
        return;
    }
    let mut buf = Vec::new();
    let base = g.own_vector(node, &mut buf);
    let mut cands: Vec<Cand> = (start..start + len)
        .map(|i| {
            let n = words[i].load(Relaxed);
            Cand { d: g.pair(base, n), id: n }
        })
        .collect();
    cands.push(Cand { d, id: new });
    reselect(g, node, level, cands);
}
