//! Vamana's build (Subramanya et al., DiskANN, NeurIPS 2019, §2–3) on the shared graph layer:
//! a flat graph — every node on level 0, at most R links — entered at the medoid, built by
//! searching for each point with list size L and pruning the nodes that search expanded with
//! RobustPrune(α), then adding the reverse links (pruning a list that overflows). Two passes:
//! α = 1 first (a sparse, navigable graph), then the requested α > 1 (longer edges that cut
//! the hops of a search). Sequential and seeded, so a build is reproducible on every target.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::{write_list, HnswIndex, HnswParams, NoLocks, NodeLocks};
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
        index.flat = true;
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
        if !self.flat || !self.levels.is_empty() {
            return Err(Error::InvalidParameter {
                name: "vectors",
                reason: "a Vamana graph is built once, over all its vectors",
            });
        }
        let data = self.prepare(vectors)?;
        if data.is_empty() {
            return Err(Error::EmptyIndex);
        }
        self.allocate(&data);
        let n = self.levels.len();
        let medoid = medoid(self, &data);
        self.entry = medoid;
        self.max_level = 0;
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut rng = Rng::new(params.seed);
        for i in (1..n).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let rule = AlphaRule::of(self, &data);
        let passes: &[f32] = if params.alpha == 1.0 { &[1.0] } else { &[1.0, params.alpha] };
        let g = self.graph();
        for &alpha in passes {
            let step = Step { params, alpha, rule };
            if parallel {
                link_all_parallel(&g, &order, step);
            } else {
                let mut s = Scratch::default();
                for &p in &order {
                    link_point(&g, p, step, &mut s, &NoLocks);
                }
            }
        }
        link_orphans(&g, medoid);
        Ok(medoid)
    }
}

/// What every point's step of one pass shares.
#[derive(Clone, Copy)]
struct Step<'a> {
    params: &'a VamanaParams,
    alpha: f32,
    rule: AlphaRule,
}

/// Points of a parallel pass linked one at a time before the rest go in parallel.
#[cfg(feature = "parallel")]
const SEQUENTIAL_PREFIX: usize = 1000;

/// One pass over `order` on all rayon threads: each node's list changes under its own lock
/// (as in HNSW's parallel build), and the walks read lists as they are.
#[cfg(feature = "parallel")]
fn link_all_parallel(g: &Graph<'_, [AtomicU32]>, order: &[u32], step: Step<'_>) {
    use rayon::prelude::*;
    // The first points link into a nearly empty graph, where concurrent inserts would find
    // each other missing and link poorly: they go one at a time, the rest in parallel.
    let (first, rest) = order.split_at(order.len().min(SEQUENTIAL_PREFIX));
    let mut s = Scratch::default();
    for &p in first {
        link_point(g, p, step, &mut s, &NoLocks);
    }
    let locks = super::SpinLocks((0..g.count).map(|_| spin::Mutex::new(())).collect());
    rest.par_iter().for_each_init(Scratch::default, |s, &p| link_point(g, p, step, s, &locks));
}

#[cfg(not(feature = "parallel"))]
fn link_all_parallel(g: &Graph<'_, [AtomicU32]>, order: &[u32], step: Step<'_>) {
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
        cands.retain(|c| c.id != p);
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
    fn of(index: &HnswIndex, data: &[f32]) -> Self {
        if index.metric != Metric::InnerProduct {
            return Self::Distance;
        }
        let unit = data.chunks_exact(index.dim).all(|r| {
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
    let Step { params, alpha, rule } = step;
    let r = params.r;
    let (start, len) = g.list(node, 0);
    if (start..start + len).any(|i| g.links0[i].load(Relaxed) == new) {
        return;
    }
    if len < r {
        g.links0[start + len].store(new, Relaxed);
        g.links0[start - 1].store(len as u32 + 1, Relaxed);
        return;
    }
    let mut buf = Vec::new();
    let base = g.own_vector(node, &mut buf);
    let mut cands: Vec<Cand> = (start..start + len)
        .map(|i| g.links0[i].load(Relaxed))
        .map(|n| Cand { d: g.pair(base, n), id: n })
        .collect();
    cands.push(Cand { d, id: new });
    cands.sort_unstable_by(Cand::order);
    let mut kept = Vec::with_capacity(r);
    prune(g, &cands, r, alpha, rule, &mut kept);
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
