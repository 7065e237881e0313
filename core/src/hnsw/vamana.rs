//! Vamana's build (Subramanya et al., DiskANN, NeurIPS 2019, §2–3) on the shared graph layer:
//! a flat graph — every node on level 0, at most R links — entered at the medoid, built by
//! searching for each point with list size L and pruning the nodes that search expanded with
//! RobustPrune(α), then adding the reverse links (pruning a list that overflows). Two passes:
//! α = 1 first (a sparse, navigable graph), then the requested α > 1 (longer edges that cut
//! the hops of a search). Sequential and seeded, so a build is reproducible on every target.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::build::{write_list, NoLocks, NodeLocks};
use super::{HnswIndex, HnswParams, NONE};
use crate::graph::{robust_prune, robust_prune_rounds, Cand, Graph, Scorer, Scratch};
use crate::rng::Rng;
use crate::{Error, Metric, Result};

/// Vamana's construction parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VamanaParams {
    /// Most links per node (R).
    pub r: usize,
    /// Candidate-list size of the build's searches (L).
    pub l: usize,
    /// RobustPrune's α of the second pass (≥ 1; DiskANN's default 1.2).
    pub alpha: f32,
    /// Seed of the insertion order.
    pub seed: u64,
}

impl Default for VamanaParams {
    fn default() -> Self {
        Self { r: 32, l: 100, alpha: 1.2, seed: 0x0005_EED0_F01D }
    }
}

impl VamanaParams {
    pub(crate) fn check(&self) -> Result<()> {
        if !(2..=512).contains(&self.r) {
            return Err(Error::InvalidParameter { name: "r", reason: "must be between 2 and 512" });
        }
        if self.l == 0 {
            return Err(Error::InvalidParameter { name: "l", reason: "must be at least 1" });
        }
        if !(self.alpha >= 1.0 && self.alpha <= 4.0) {
            return Err(Error::InvalidParameter { name: "alpha", reason: "must be between 1 and 4" });
        }
        Ok(())
    }
}

impl HnswIndex {
    /// An empty flat graph for Vamana: level 0 only, `r` links per node.
    pub(crate) fn new_flat(dim: usize, metric: Metric, params: &VamanaParams) -> Result<Self> {
        params.check()?;
        // m matters to a flat graph only as a valid HNSW parameter; level 0 holds r links.
        let hnsw = HnswParams { m: params.r.min(256), ef_construction: params.l, seed: params.seed };
        let mut index = Self::new(dim, metric, hnsw)?;
        index.m0 = params.r;
        index.vamana = Some(*params);
        Ok(index)
    }

    /// Builds the Vamana graph over row-major `vectors` (the index must be an empty flat
    /// graph); returns the medoid, which becomes the entry point.
    /// With `parallel`, each pass links points on all rayon threads (not reproducible: the
    /// graph depends on timing); without, one thread in seeded order.
    pub(crate) fn build_vamana(
        &mut self,
        vectors: &[f32],
        params: &VamanaParams,
        parallel: bool,
    ) -> Result<u32> {
        self.check_unbuilt()?;
        let data = self.prepare(vectors)?;
        self.build_vamana_prepared(data, params, parallel)
    }

    /// [`build_vamana`](Self::build_vamana) over rows the caller hands over: they become the
    /// build's working copy, so the build holds one copy of the rows fewer.
    pub(crate) fn build_vamana_owned(
        &mut self,
        vectors: Vec<f32>,
        params: &VamanaParams,
        parallel: bool,
    ) -> Result<u32> {
        self.check_unbuilt()?;
        let data = self.prepare_owned(vectors)?;
        self.build_vamana_prepared(data, params, parallel)
    }

    fn check_unbuilt(&self) -> Result<()> {
        if self.vamana.is_none() || !self.store.levels.is_empty() {
            return Err(Error::InvalidParameter {
                name: "vectors",
                reason: "a Vamana graph is built once, over all its vectors",
            });
        }
        Ok(())
    }

    fn build_vamana_prepared(
        &mut self,
        data: Vec<f32>,
        params: &VamanaParams,
        parallel: bool,
    ) -> Result<u32> {
        if data.is_empty() {
            return Err(Error::EmptyIndex);
        }
        // While building, lists have room for SLACK × R links, so a reverse link is appended
        // without pruning until a list overflows that (DiskANN's slack): most of a build's
        // pruning is of full lists taking one more reverse link.
        let r = params.r;
        self.m0 = slack(r);
        self.allocate(&data);
        let n = self.store.levels.len();
        self.entry = medoid(self, &data);
        self.max_level = 0;
        let mut rng = Rng::new(params.seed);
        let mut order: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let rule = AlphaRule::of(self.metric, self.dim, &data);
        let clusters = cluster_order(self.kernels, &data, self.dim, params.seed);
        // The index holds the rows now; the working copy goes before the reorderings copy
        // them again and the lists grow.
        drop(data);
        let mut relabelled: Option<Vec<u32>> = None;
        let laid_out = clusters.is_some();
        if let Some(old_of_new) = clusters {
            // Rows grouped by a coarse k-means for the first pass (there is no graph to order
            // them by yet); the points are still linked in random order, sweep by sweep.
            let new_of_old = inverse(&old_of_new);
            self.apply_order(&old_of_new);
            relabelled = Some(old_of_new);
            for p in order.iter_mut() {
                *p = new_of_old[*p as usize];
            }
        }
        let passes: &[f32] = if params.alpha == 1.0 { &[1.0] } else { &[1.0, params.alpha] };
        // The first pass (α = 1) makes the graph navigable for the second, and its links are the
        // long ones the second keeps: half the list size (at least 2R) does that for a fifth
        // less build time; a quarter, or no first pass at all (as DiskANN's code now builds),
        // costs recall at small L (BENCHMARKS.md, session 8).
        let first = VamanaParams { l: (params.l / 2).max(2 * r).min(params.l), ..*params };
        for (pass, &alpha) in passes.iter().enumerate() {
            let params = if pass + 1 < passes.len() { &first } else { params };
            if pass > 0 {
                // The first pass's graph orders the rows for the second: breadth-first from the
                // medoid, so a node's neighbours sit near it in memory and a search reads fewer
                // pages (the build waits on those reads: 100k x 128, 16.8 -> 14.4 s). The points
                // are still linked in random order, sweep by sweep: linking them region by
                // region, which keeps a block's reads in cache, built faster still (12.5 s) but
                // cost recall at small L (BENCHMARKS.md, session 8). Undone after the build:
                // slots stay row numbers.
                let old_of_new = self.hierarchical_order();
                let new_of_old = inverse(&old_of_new);
                self.apply_order(&old_of_new);
                relabelled = Some(match relabelled {
                    Some(first) => old_of_new.iter().map(|&o| first[o as usize]).collect(),
                    None => old_of_new,
                });
                for p in order.iter_mut() {
                    *p = new_of_old[*p as usize];
                }
            }
            let g = self.graph();
            let step = Step { params, alpha, rule };
            // Sorting a sweep by slot follows a layout this build chose (k-means groups, then
            // the first pass's graph); rows in the caller's order may come sorted by cluster,
            // where sweeps would link cluster by cluster: a small clustered set lost a point of
            // recall at L 128 that way.
            let swept;
            let order: &[u32] = if pass > 0 || laid_out {
                swept = sweeps(&order);
                &swept
            } else {
                &order
            };
            if parallel {
                link_all_parallel(&g, order, step, if pass == 0 { SEQUENTIAL_PREFIX } else { 0 });
            } else {
                let mut s = Scratch::default();
                for &p in order {
                    link_point(&g, p, step, &mut s, &NoLocks);
                }
            }
        }
        let g = self.graph();
        let last = Step { params, alpha: params.alpha, rule };
        for_each_node(n as u32, parallel, |p, _| {
            if g.list(p, 0).1 > r {
                prune_list(&g, p, last);
            }
        });
        self.pack_lists(r);
        if let Some(old_of_new) = relabelled {
            self.apply_order(&inverse(&old_of_new));
        }
        let g = self.graph();
        link_orphans(&g, self.entry);
        Ok(self.entry)
    }
}

impl HnswIndex {
    /// Inserts row-major `vectors` into a Vamana graph (FreshDiskANN's insert): each is linked
    /// by one search from the medoid with list size L, RobustPrune at the graph's α, and
    /// reverse links. Slots freed by [`HnswIndex::vamana_consolidate`] are reused first. An
    /// empty graph is built instead (two passes, medoid entry). The batch is validated first,
    /// so on error nothing is added.
    pub(crate) fn vamana_insert(&mut self, vectors: &[f32], parallel: bool) -> Result<Vec<u32>> {
        let Some(params) = self.vamana else {
            return Err(Error::InvalidParameter { name: "index", reason: "not a Vamana graph" });
        };
        if self.store.levels.is_empty() {
            let n = vectors.len() / self.dim;
            self.build_vamana(vectors, &params, parallel)?;
            return Ok((0..n as u32).collect());
        }
        let data = self.prepare(vectors)?;
        let reused = (data.len() / self.dim).min(self.store.free.len());
        let mut ids: Vec<u32> = self.store.free.drain(self.store.free.len() - reused..).rev().collect();
        for (row, &slot) in data.chunks_exact(self.dim).zip(&ids) {
            // Consolidation emptied the slot's list and removed every link to it.
            self.store_row(slot, row);
            self.store.deleted[slot as usize / 64] &= !(1 << (slot % 64));
        }
        self.dead -= reused;
        let first = self.allocate(&data[reused * self.dim..]);
        ids.extend(first..self.store.levels.len() as u32);
        let mut order = ids.as_slice();
        if let (NONE, Some(&first)) = (self.entry, ids.first()) {
            // Every earlier node was deleted and consolidated: the first new one enters.
            self.entry = first;
            order = &ids[1..];
        }
        let step =
            Step { params: &params, alpha: params.alpha, rule: AlphaRule::of(self.metric, self.dim, &data) };
        let g = self.graph();
        if parallel {
            link_all_parallel(&g, order, step, 0);
        } else {
            let mut s = Scratch::default();
            for &p in order {
                link_point(&g, p, step, &mut s, &NoLocks);
            }
        }
        Ok(ids)
    }

    /// Deletes `id` from a Vamana graph (FreshDiskANN's lazy delete): it leaves every result at
    /// once but stays in the graph, traversable, until [`HnswIndex::vamana_consolidate`].
    pub(crate) fn vamana_remove(&mut self, id: u32) -> Result<()> {
        self.check_live(id)?;
        if self.store.deleted.is_empty() {
            self.store.deleted = alloc::vec![0; self.store.levels.len().div_ceil(64)];
        }
        self.store.deleted[id as usize / 64] |= 1 << (id % 64);
        self.dead += 1;
        Ok(())
    }

    /// Deleted nodes still in a Vamana graph (deleted, not yet consolidated).
    pub(crate) fn vamana_pending(&self) -> usize {
        self.dead - self.store.free.len()
    }

    /// FreshDiskANN's consolidation: every live node that links to a deleted one gets, in that
    /// link's place, candidates from the deleted node's own links, pruned back to R by
    /// RobustPrune(α); then the deleted nodes' lists are emptied and their slots freed for
    /// reuse. A deleted medoid hands the entry to the live node nearest it. Returns how many
    /// slots were freed. With `parallel`, nodes are re-linked on all rayon threads (each writes
    /// only its own list, so the result does not depend on timing).
    pub(crate) fn vamana_consolidate(&mut self, parallel: bool) -> usize {
        let Some(params) = self.vamana else { return 0 };
        if self.vamana_pending() == 0 {
            return 0;
        }
        let n = self.store.levels.len();
        let mut pending = crate::Bitset::new(n as u32);
        let mut is_free = crate::Bitset::new(n as u32);
        for &f in &self.store.free {
            is_free.insert(f);
        }
        for id in 0..n as u32 {
            if self.is_deleted(id) && !is_free.contains(id) {
                pending.insert(id);
            }
        }
        let g = self.graph();
        let rule = match self.metric {
            Metric::InnerProduct => {
                // Decide as a build would, over the live rows.
                let mut buf = Vec::new();
                let unit = (0..n as u32).filter(|&i| !g.is_deleted(i)).all(|i| {
                    let r = g.own_vector(i, &mut buf);
                    let norm2: f32 = r.iter().map(|x| x * x).sum();
                    (norm2 - 1.0).abs() < 1e-3
                });
                if unit {
                    AlphaRule::UnitInnerProduct
                } else {
                    AlphaRule::InnerProduct
                }
            }
            _ => AlphaRule::Distance,
        };
        let step = Step { params: &params, alpha: params.alpha, rule };
        let relink = |p: u32, buf: &mut Vec<f32>| {
            if g.is_deleted(p) {
                return;
            }
            let (start, len) = g.list(p, 0);
            if !(start..start + len).any(|i| pending.contains(g.links0[i].load(Relaxed))) {
                return;
            }
            relink_around_deleted(&g, p, &pending, step, buf);
        };
        for_each_node(n as u32, parallel, relink);
        for id in 0..n as u32 {
            if pending.contains(id) {
                g.links0[id as usize * (g.m0 + 1)].store(0, Relaxed);
            }
        }
        let entry = self.entry;
        let new_entry = if pending.contains(entry) {
            let mut buf = Vec::new();
            let centre = g.own_vector(entry, &mut buf).to_vec();
            let mut best: Option<Cand> = None;
            for id in 0..n as u32 {
                if !g.is_deleted(id) {
                    let c = Cand { d: g.pair(&centre, id), id };
                    if best.is_none_or(|b| c.before(b)) {
                        best = Some(c);
                    }
                }
            }
            best.map_or(NONE, |b| b.id)
        } else {
            entry
        };
        let freed: Vec<u32> = (0..n as u32).filter(|&id| pending.contains(id)).collect();
        self.entry = new_entry;
        // Reused from the end: lowest slots first.
        self.store.free.extend(freed.iter().rev());
        freed.len()
    }
}

/// Calls `f` for every node id below `n`, on all rayon threads when `parallel`.
fn for_each_node(n: u32, parallel: bool, f: impl Fn(u32, &mut Vec<f32>) + Sync) {
    #[cfg(feature = "parallel")]
    if parallel {
        use rayon::prelude::*;
        (0..n).into_par_iter().for_each_init(Vec::new, |buf, p| f(p, buf));
        return;
    }
    let _ = parallel;
    let mut buf = Vec::new();
    for p in 0..n {
        f(p, &mut buf);
    }
}

/// Node `p`'s list with every deleted link replaced by that node's live links, pruned back to
/// R (kept whole when it fits).
fn relink_around_deleted(
    g: &Graph<'_, [AtomicU32]>,
    p: u32,
    pending: &crate::Bitset,
    step: Step<'_>,
    buf: &mut Vec<f32>,
) {
    let own = g.own_vector(p, buf);
    let mut cands = Vec::new();
    // Through deleted nodes, up to two deleted hops deep: with many deletes, a deleted node's
    // links are often deleted too.
    let mut frontier = alloc::vec![p];
    let mut expanded: Vec<u32> = Vec::new();
    for depth in 0..3 {
        let mut next = Vec::new();
        for &u in &frontier {
            let (start, len) = g.list(u, 0);
            for i in start..start + len {
                let v = g.links0[i].load(Relaxed);
                if !pending.contains(v) {
                    cands.push(v);
                } else if depth < 2 {
                    next.push(v);
                }
            }
        }
        expanded.extend_from_slice(&frontier);
        expanded.sort_unstable();
        next.sort_unstable();
        next.dedup();
        next.retain(|v| expanded.binary_search(v).is_err());
        frontier = next;
    }
    cands.sort_unstable();
    cands.dedup();
    cands.retain(|&v| v != p && !g.is_deleted(v));
    let mut cands: Vec<Cand> = cands.into_iter().map(|id| Cand { d: g.pair(own, id), id }).collect();
    cands.sort_unstable_by(Cand::order);
    cands.dedup_by_key(|c| c.id);
    let r = step.params.r;
    if cands.len() <= r {
        write_list(g, p, 0, cands.iter().map(|c| c.id));
        return;
    }
    let mut kept = Vec::with_capacity(r);
    prune(g, &cands, r, step.alpha, step.rule, &mut kept);
    for c in &cands {
        if kept.len() >= r {
            break;
        }
        if !kept.iter().any(|k| k.id == c.id) {
            kept.push(*c);
        }
    }
    write_list(g, p, 0, kept.iter().map(|c| c.id));
}

/// The random insertion order cut into `SWEEPS` sweeps, each sorted by slot: every sweep is
/// still a uniform sample of the data, but consecutive points of a sweep sit a few slots apart
/// in a layout that keeps graph neighbours near each other (k-means groups in the first pass,
/// the first pass's graph in the second), so their searches read mostly the same rows while
/// those are still in cache. 100k x 128, 2 threads: a quarter less build CPU at the same
/// recall per L; three sweeps saved a tenth more but lost recall at L 16-24, as linking region
/// by region had (BENCHMARKS.md, sessions 8 and 16).
fn sweeps(order: &[u32]) -> Vec<u32> {
    let mut out = order.to_vec();
    for chunk in out.chunks_mut(order.len().div_ceil(SWEEPS).max(1)) {
        chunk.sort_unstable();
    }
    out
}

/// Sweeps of a pass (see [`sweeps`]).
const SWEEPS: usize = 12;

/// The inverse of a permutation.
fn inverse(perm: &[u32]) -> Vec<u32> {
    let mut inv = alloc::vec![0u32; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p as usize] = i as u32;
    }
    inv
}

/// Rows in groups of about `CLUSTER_ROWS` by a coarse k-means (`old_of_new`), or `None` for
/// data too small to gain from it.
fn cluster_order(kernels: crate::Kernels, data: &[f32], dim: usize, seed: u64) -> Option<Vec<u32>> {
    use crate::quant::kmeans::{assign_into, kmeans, KMeansParams};
    let n = data.len() / dim;
    let k = n / CLUSTER_ROWS;
    if k < 2 {
        return None;
    }
    let params = KMeansParams::new(k).with_seed(seed).with_iterations(6).with_max_points_per_centroid(64);
    let centroids = kmeans(kernels, data, dim, &params).ok()?;
    let mut cluster = alloc::vec![0u32; n];
    let mut distance = alloc::vec![0f32; n];
    assign_into(&kernels, &centroids, dim, data, &mut cluster, &mut distance);
    let mut old_of_new: Vec<u32> = (0..n as u32).collect();
    old_of_new.sort_by_key(|&i| cluster[i as usize]);
    Some(old_of_new)
}

/// Rows per k-means group of the first pass's layout (1 MiB of 128-d rows).
const CLUSTER_ROWS: usize = 2048;

/// How many links a list may hold while a build is linking (DiskANN's slack factor 1.3).
fn slack(r: usize) -> usize {
    r + (r * 3).div_ceil(10)
}

impl HnswIndex {
    /// Moves every list from the build's slack stride into a stride of `r + 1` words, in
    /// place (each list moves to a lower address, in order, so none is overwritten unread).
    fn pack_lists(&mut self, r: usize) {
        let (from, to) = (self.m0 + 1, r + 1);
        let n = self.store.levels.len();
        for id in 0..n {
            let len = self.store.links0[id * from].load(Relaxed) as usize;
            debug_assert!(len <= r);
            for i in 0..=len {
                let w = self.store.links0[id * from + i].load(Relaxed);
                self.store.links0[id * to + i].store(w, Relaxed);
            }
            for i in len + 1..to {
                self.store.links0[id * to + i].store(0, Relaxed);
            }
        }
        self.store.links0.truncate(n * to);
        self.store.links0.shrink_to_fit();
        self.m0 = r;
    }
}

/// What every point's step of one pass shares.
#[derive(Clone, Copy)]
struct Step<'a> {
    params: &'a VamanaParams,
    alpha: f32,
    rule: AlphaRule,
}

/// Points of a build's parallel pass linked one at a time before the rest go in parallel.
const SEQUENTIAL_PREFIX: usize = 1000;

/// One pass over `order` on all rayon threads: each node's list changes under its own lock
/// (as in HNSW's parallel build), and the walks read lists as they are.
#[cfg(feature = "parallel")]
fn link_all_parallel(g: &Graph<'_, [AtomicU32]>, order: &[u32], step: Step<'_>, prefix: usize) {
    use rayon::prelude::*;
    // The first points of a build link into a nearly empty graph, where concurrent inserts
    // would find each other missing and link poorly: they go one at a time, the rest in
    // parallel.
    let (first, rest) = order.split_at(order.len().min(prefix));
    let mut s = Scratch::default();
    for &p in first {
        link_point(g, p, step, &mut s, &NoLocks);
    }
    let locks = super::build::SpinLocks((0..g.count).map(|_| spin::Mutex::new(())).collect());
    rest.par_iter().for_each_init(Scratch::default, |s, &p| link_point(g, p, step, s, &locks));
}

#[cfg(not(feature = "parallel"))]
fn link_all_parallel(g: &Graph<'_, [AtomicU32]>, order: &[u32], step: Step<'_>, _prefix: usize) {
    let mut s = Scratch::default();
    for &p in order {
        link_point(g, p, step, &mut s, &NoLocks);
    }
}

/// Links point `p` with the scorer its stored rows call for.
fn link_point(g: &Graph<'_, [AtomicU32]>, p: u32, step: Step<'_>, s: &mut Scratch, locks: &dyn NodeLocks) {
    // f32 rows are read in place; binary16 rows decode into the scratch's buffer, reused.
    let mut buf = core::mem::take(&mut s.decoded);
    let v = g.own_vector(p, &mut buf);
    match g.half(v) {
        Some(q) => link_vamana(g, &q, p, step, s, locks),
        None => link_vamana(g, &g.exact(v), p, step, s, locks),
    }
    s.decoded = buf;
}

/// The row nearest the mean of all rows (ties to the lower id).
fn medoid(index: &HnswIndex, data: &[f32]) -> u32 {
    let dim = index.dim;
    let n = data.len() / dim;
    let mut mean = alloc::vec![0.0f64; dim];
    for row in data.chunks_exact(dim) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += x as f64;
        }
    }
    let mut centre: Vec<f32> = mean.iter().map(|&m| (m / n as f64) as f32).collect();
    if index.metric.normalizes() && !index.kernels.normalize(&mut centre) {
        // A mean of zero length has no direction: any row is as central as another.
        return 0;
    }
    let g = index.graph();
    let mut best = Cand { d: f32::INFINITY, id: 0 };
    for id in 0..n as u32 {
        let c = Cand { d: g.pair(&centre, id), id };
        if c.before(best) {
            best = c;
        }
    }
    best.id
}

/// One point's step of a pass: search from the entry (the medoid) with list size L, prune what
/// the search expanded together with the point's current links into its list, then add the
/// reverse links. `q` scores against the point's own vector.
fn link_vamana<S: Scorer>(
    g: &Graph<'_, [AtomicU32]>,
    q: &S,
    p: u32,
    step: Step<'_>,
    s: &mut Scratch,
    locks: &dyn NodeLocks,
) {
    let Step { params, alpha, rule } = step;
    let start = Cand { d: q.dist(g.entry), id: g.entry };
    g.search_level_recording(q, start, params.l, 0, s);
    let mut cands = core::mem::take(&mut s.expanded);
    let mut kept = Vec::with_capacity(params.r);
    locks.run(p, &mut || {
        let (lstart, len) = g.list(p, 0);
        for i in lstart..lstart + len {
            let n = g.links0[i].load(Relaxed);
            cands.push(Cand { d: q.dist(n), id: n });
        }
        // Deleted nodes are walked through but never linked to.
        cands.retain(|c| c.id != p && !g.is_deleted(c.id));
        cands.sort_unstable_by(Cand::order);
        cands.dedup_by_key(|c| c.id);
        prune(g, &cands, params.r, alpha, rule, &mut kept);
        write_list(g, p, 0, kept.iter().map(|c| c.id));
    });
    for c in &kept {
        locks.run(c.id, &mut || add_reverse(g, c.id, p, c.d, step));
    }
    s.expanded = cands;
}

/// How RobustPrune's α applies to the index's distances.
#[derive(Clone, Copy)]
enum AlphaRule {
    /// A true distance (l2, cosine, l1): α scales it.
    Distance,
    /// Inner products of unit vectors: `1 + d` is their cosine distance, and α scales that.
    UnitInnerProduct,
    /// Inner products of vectors of any length are not distances — often negative, where α > 1
    /// would occlude more instead of less: pruned at α = 1 (HNSW's rule) in both passes.
    InnerProduct,
}

impl AlphaRule {
    /// The rule for a graph whose rows (those being linked) are `data`.
    fn of(metric: Metric, dim: usize, data: &[f32]) -> Self {
        if metric != Metric::InnerProduct {
            return Self::Distance;
        }
        let unit = data.chunks_exact(dim).all(|r| {
            let norm2: f32 = r.iter().map(|x| x * x).sum();
            (norm2 - 1.0).abs() < 1e-3
        });
        if unit {
            Self::UnitInnerProduct
        } else {
            Self::InnerProduct
        }
    }
}

/// RobustPrune over candidates sorted nearest first, the distance between two candidates
/// measured over the rows the index stores (as the build's other distances are).
fn prune(
    g: &Graph<'_, [AtomicU32]>,
    cands: &[Cand],
    r: usize,
    alpha: f32,
    rule: AlphaRule,
    out: &mut Vec<Cand>,
) {
    let mut buf = Vec::new();
    match rule {
        AlphaRule::Distance => {
            robust_prune_rounds(cands, r, alpha, out, |c, k| g.pair(g.own_vector(c.id, &mut buf), k.id))
        }
        AlphaRule::InnerProduct => {
            robust_prune(cands, r, 1.0, out, |c, k| g.pair(g.own_vector(c.id, &mut buf), k.id))
        }
        AlphaRule::UnitInnerProduct => {
            let shifted: Vec<Cand> = cands.iter().map(|c| Cand { d: 1.0 + c.d, id: c.id }).collect();
            robust_prune_rounds(&shifted, r, alpha, out, |c, k| {
                1.0 + g.pair(g.own_vector(c.id, &mut buf), k.id)
            });
            // Give the kept their own distances back (a later round's links follow earlier
            // rounds', so look each up; lists are a few hundred candidates at most).
            for kept in out.iter_mut() {
                if let Some(c) = cands.iter().find(|c| c.id == kept.id) {
                    kept.d = c.d;
                }
            }
        }
    }
}

/// Adds `new` (at distance `d`) to `node`'s list, or, when the list is full, prunes the list
/// with `new` among the candidates.
fn add_reverse(g: &Graph<'_, [AtomicU32]>, node: u32, new: u32, d: f32, step: Step<'_>) {
    let (start, len) = g.list(node, 0);
    if (start..start + len).any(|i| g.links0[i].load(Relaxed) == new) {
        return;
    }
    // Room up to the stride: the build's slack, or R for inserts into a built graph.
    if len < g.m0 {
        g.links0[start + len].store(new, Relaxed);
        g.links0[start - 1].store(len as u32 + 1, Relaxed);
        return;
    }
    prune_list_with(g, node, Some(Cand { d, id: new }), step);
}

/// Prunes `node`'s list back to R.
fn prune_list(g: &Graph<'_, [AtomicU32]>, node: u32, step: Step<'_>) {
    prune_list_with(g, node, None, step);
}

/// Prunes `node`'s list, with `extra` among the candidates, back to R by RobustPrune.
fn prune_list_with(g: &Graph<'_, [AtomicU32]>, node: u32, extra: Option<Cand>, step: Step<'_>) {
    let Step { params, alpha, rule } = step;
    let (start, len) = g.list(node, 0);
    let mut buf = Vec::new();
    let base = g.own_vector(node, &mut buf);
    let mut cands: Vec<Cand> = (start..start + len)
        .map(|i| g.links0[i].load(Relaxed))
        .map(|n| Cand { d: g.pair(base, n), id: n })
        .collect();
    cands.extend(extra);
    cands.sort_unstable_by(Cand::order);
    let mut kept = Vec::with_capacity(params.r);
    prune(g, &cands, params.r, alpha, rule, &mut kept);
    write_list(g, node, 0, kept.iter().map(|c| c.id));
}

/// Gives every node that no list names (reverse-link pruning can drop a node's last in-link, and
/// then no search ever reaches it) an in-link: from the nearest of its own neighbours that has
/// room, else in place of that neighbour's farthest link when the link's target has another
/// in-link to keep it reachable. Sequential, in id order, so seeded builds stay reproducible.
fn link_orphans(g: &Graph<'_, [AtomicU32]>, medoid: u32) {
    let n = g.count;
    let mut in_degree = alloc::vec![0u32; n];
    for id in 0..n as u32 {
        let (start, len) = g.list(id, 0);
        for i in start..start + len {
            in_degree[g.links0[i].load(Relaxed) as usize] += 1;
        }
    }
    let mut buf = Vec::new();
    for orphan in 0..n as u32 {
        if in_degree[orphan as usize] > 0 || orphan == medoid {
            continue;
        }
        let own = g.own_vector(orphan, &mut buf);
        let (start, len) = g.list(orphan, 0);
        let mut by_distance: Vec<Cand> = (start..start + len)
            .map(|i| g.links0[i].load(Relaxed))
            .map(|v| Cand { d: g.pair(own, v), id: v })
            .collect();
        by_distance.sort_unstable_by(Cand::order);
        for host in by_distance {
            let (hs, hl) = g.list(host.id, 0);
            if hl < g.m0 {
                g.links0[hs + hl].store(orphan, Relaxed);
                g.links0[hs - 1].store(hl as u32 + 1, Relaxed);
                in_degree[orphan as usize] += 1;
                break;
            }
            let mut hbuf = Vec::new();
            let base = g.own_vector(host.id, &mut hbuf);
            let farthest = (hs..hs + hl)
                .map(|i| (i, g.links0[i].load(Relaxed)))
                .map(|(i, v)| (i, Cand { d: g.pair(base, v), id: v }))
                .max_by(|a, b| Cand::order(&a.1, &b.1));
            if let Some((slot, far)) = farthest {
                if in_degree[far.id as usize] > 1 {
                    g.links0[slot].store(orphan, Relaxed);
                    in_degree[far.id as usize] -= 1;
                    in_degree[orphan as usize] += 1;
                    break;
                }
            }
        }
    }
}
