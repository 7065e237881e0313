//! The IVF-PQ search shared by the owned index and the in-place view: coarse probing, ADC
//! tables, list scans into a bounded heap, exact rerank, and the reusable scratch.

use alloc::vec::Vec;

use crate::filter::{estimate_matches, results_owed};
use crate::quant::kmeans::l2_distance;
use crate::quant::ProductQuantizer;
use crate::validate::check_query;
use crate::{
    Error, Filter, Kernels, Metric, Neighbor, Plan, Result, SearchParams, SearchStats, ZeroVectorKind,
};

/// Codes scored per block of a list scan (their distances, 4 KiB, stay in L1).
const SCAN_BLOCK: usize = 1024;

/// Lists probed when [`SearchParams::nprobe`] is 0.
pub const DEFAULT_NPROBE: usize = 8;

/// Access to inverted list `i`: the slots of its entries and their codes (contiguous).
pub trait InvertedLists {
    fn list(&self, i: usize) -> (&[u32], &[u8]);
}

/// Per-caller working memory of a search, reused so a steady-state query allocates nothing.
#[derive(Default, Clone, Debug)]
pub struct IvfScratch {
    query: Vec<f32>,
    coarse: Vec<Neighbor>,
    query_table: Vec<f32>,
    list_table: Vec<f32>,
    residual: Vec<f32>,
    distances: Vec<f32>,
    candidates: Vec<Neighbor>,
}

/// Scratch kept for searches through `&self`: one per concurrent caller.
pub(crate) type ScratchPool = crate::scratch::Pool<IvfScratch>;

/// Everything a search reads, borrowed from an owned index or from file bytes.
pub(crate) struct Engine<'a, L> {
    pub kernels: Kernels,
    pub metric: Metric,
    pub dim: usize,
    pub count: usize,
    /// `nlist × dim`; empty when untrained.
    pub centroids: &'a [f32],
    pub pq: &'a ProductQuantizer,
    /// L2 and cosine: `nlist × m × ksub` query-independent terms (see
    /// [`ProductQuantizer::residual_terms`]); `None` computes residual tables per list.
    pub residual_terms: Option<&'a [f32]>,
    pub lists: L,
    /// `count × dim` full vectors by slot, when kept.
    pub vectors: crate::vectors::Rows<'a>,
}

/// The coarse distance that ranks lists (and assigns vectors): squared L2 for L2 and cosine
/// (unit vectors: nearest centroid = smallest residual), negated inner product for IP.
#[inline]
pub(crate) fn coarse_distance(kernels: &Kernels, metric: Metric, q: &[f32], c: &[f32]) -> f32 {
    match metric {
        Metric::InnerProduct => -kernels.dot(q, c),
        _ => l2_distance(kernels, q, c),
    }
}

/// The list of `x`: the centroid with the smallest coarse distance (ties to the lower list).
pub(crate) fn assign_list(
    kernels: &Kernels,
    metric: Metric,
    centroids: &[f32],
    dim: usize,
    x: &[f32],
) -> u32 {
    let mut best = (0u32, f32::INFINITY);
    for (i, c) in centroids.chunks_exact(dim).enumerate() {
        let d = coarse_distance(kernels, metric, x, c);
        if d < best.1 {
            best = (i as u32, d);
        }
    }
    best.0
}

impl<L: InvertedLists> Engine<'_, L> {
    /// What one search holds: the query and its residual, two `m × ksub` lookup tables, a
    /// coarse distance per list, one scan block of distances.
    pub fn scratch_bytes(&self) -> usize {
        let floats = 2 * self.dim + 2 * self.pq.m() * self.pq.ksub() + SCAN_BLOCK;
        let lists = self.centroids.len() / self.dim.max(1);
        floats * 4 + lists * core::mem::size_of::<Neighbor>()
    }

    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        s: &mut IvfScratch,
        out: &mut Vec<Neighbor>,
    ) -> Result<SearchStats> {
        check_query(query, self.dim, k)?;
        if !self.pq.is_trained() {
            return Err(Error::NotTrained);
        }
        if self.count == 0 {
            return Err(Error::EmptyIndex);
        }
        let rerank = params.rerank_factor;
        if rerank > 0 && self.vectors.form() == crate::vectors::VectorForm::Absent {
            return Err(Error::InvalidParameter {
                name: "rerank_factor",
                reason: "this index keeps no full vectors to rerank with; use 0",
            });
        }
        let IvfScratch { query: q, coarse, query_table, list_table, residual, distances, candidates } = s;
        // The two lookup tables are the one large allocation of a search (m × 256 floats each:
        // 64 MiB at dim = m = 65536): had fallibly, so a search that cannot get them is an
        // error, not an abort.
        let table_len = self.pq.m() * self.pq.ksub();
        for table in [&mut *query_table, &mut *list_table] {
            crate::scratch::try_reserve_len(table, table_len, "the IVF-PQ lookup tables")?;
        }
        q.clear();
        q.extend_from_slice(query);
        if self.metric.normalizes() && !self.kernels.normalize(q) {
            return Err(Error::ZeroVector { what: ZeroVectorKind::Query });
        }
        let q: &[f32] = q;
        let dim = self.dim;
        let nlist = self.centroids.len() / dim;
        let mut nprobe =
            if params.nprobe == 0 { DEFAULT_NPROBE } else { params.nprobe }.clamp(1, nlist.max(1));
        let keep = if rerank > 0 { k.saturating_mul(rerank) } else { k }.min(self.count);
        let mut stats = SearchStats { plan: Plan::Walk, ..SearchStats::default() };
        if let Some(f) = filter {
            let matches = estimate_matches(f, self.count);
            stats.matches = Some(matches);
            stats.plan = Plan::FilteredWalk;
            // The probed lists hold about nprobe / nlist of the matches: where that is
            // too few to fill the results, every list is scanned (the codes of all entries).
            if matches.saturating_mul(nprobe) < keep.saturating_mul(2).saturating_mul(nlist) {
                nprobe = nlist.max(1);
                stats.plan = Plan::Scan;
            }
        }

        match (self.metric, self.residual_terms) {
            (Metric::InnerProduct, _) => self.pq.ip_table_unchecked(q, query_table),
            (_, Some(_)) => self.pq.dot_table_unchecked(q, query_table),
            (_, None) => {}
        }
        // Candidates are collected unsorted and cut down to the best `keep` by selection
        // whenever the pool doubles: linear time, where a heap paid a sift per push (13 % of a
        // 384-d query at nprobe 2 with rerank 8). `bound` is the worst kept distance once
        // `keep` are held; anything strictly worse cannot enter.
        let pool: &mut Vec<Neighbor> = if rerank > 0 { candidates } else { out };
        loop {
            let scans = ListScans {
                query_table: &mut *query_table,
                list_table: &mut *list_table,
                residual: &mut *residual,
                distances: &mut *distances,
            };
            stats.distances = self.probe_lists(q, nprobe, keep, filter, coarse, scans, pool)?;
            // Never short: a filtered probe that found fewer than it owes scans every list.
            let short = filter.is_some_and(|f| pool.len() < results_owed(f, self.count, keep));
            if short && nprobe < nlist {
                nprobe = nlist;
                stats.plan = Plan::WalkThenScan;
                continue;
            }
            break;
        }
        if rerank == 0 {
            // These are the results; re-ranked candidates need no order.
            pool.sort_unstable_by(Neighbor::cmp_rank);
        }
        if rerank == 0 {
            if self.metric == Metric::Cosine {
                // ‖q − x‖² = 2 − 2⟨q, x⟩ for unit vectors: half the squared distance is the
                // cosine distance. Halving is exact, so the order is unchanged.
                out.iter_mut().for_each(|n| n.distance *= 0.5);
            }
            return Ok(stats);
        }
        if let Some(exact) = crate::graph::Full::new(self.kernels, self.metric, dim, self.vectors, q) {
            stats.distances = stats.distances.saturating_add(candidates.len() as u32);
            crate::graph::rerank(&exact, k, candidates, out);
        }
        Ok(stats)
    }

    /// Probes the `nprobe` lists nearest `q` into `pool` (cleared first), keeping the best
    /// `keep` allowed entries (any order). Returns the codes scored.
    #[allow(clippy::too_many_arguments)]
    fn probe_lists(
        &self,
        q: &[f32],
        nprobe: usize,
        keep: usize,
        filter: Option<&dyn Filter>,
        coarse: &mut Vec<Neighbor>,
        scans: ListScans<'_>,
        pool: &mut Vec<Neighbor>,
    ) -> Result<u32> {
        let ListScans { query_table, list_table, residual, distances } = scans;
        let dim = self.dim;
        let table_len = self.pq.m() * self.pq.ksub();
        let mut scored = 0u32;
        coarse.clear();
        coarse.extend(
            self.centroids
                .chunks_exact(dim)
                .enumerate()
                .map(|(i, c)| Neighbor::new(i as u32, coarse_distance(&self.kernels, self.metric, q, c))),
        );
        if nprobe < coarse.len() {
            coarse.select_nth_unstable_by(nprobe - 1, Neighbor::cmp_rank);
            coarse.truncate(nprobe);
        }
        // Nearest lists first: the heap threshold tightens early and later lists skip more.
        coarse.sort_unstable_by(Neighbor::cmp_rank);

        pool.clear();
        let mut bound = f32::INFINITY;
        for probe in coarse.iter() {
            let list = probe.id as usize;
            let (slots, codes) = self.lists.list(list);
            if slots.is_empty() {
                continue;
            }
            let centroid = &self.centroids[list * dim..(list + 1) * dim];
            let (table, base): (&[f32], f32) = match (self.metric, self.residual_terms) {
                (Metric::InnerProduct, _) => (query_table, probe.distance),
                (_, Some(terms)) => {
                    // ‖q − c − r‖² = ‖q − c‖² + Σ_j (‖r_j‖² + 2⟨c_j, r_j⟩) − 2 Σ_j ⟨q_j, r_j⟩
                    let terms = terms.get(list * table_len..(list + 1) * table_len).unwrap_or(&[]);
                    list_table.clear();
                    list_table.extend(terms.iter().zip(query_table.iter()).map(|(&t, &d)| t - 2.0 * d));
                    (list_table, probe.distance)
                }
                (_, None) => {
                    residual.clear();
                    residual.extend(q.iter().zip(centroid).map(|(&x, &c)| x - c));
                    self.pq.l2_table_unchecked(residual, list_table);
                    (list_table, 0.0)
                }
            };
            if table.len() != table_len {
                continue;
            }
            // Long lists (an exhaustive scan is one list of everything) go in blocks, so the
            // distances just written are read back from L1 rather than from memory.
            let code_len = self.pq.code_len();
            for (slots, codes) in slots.chunks(SCAN_BLOCK).zip(codes.chunks(SCAN_BLOCK * code_len)) {
                if distances.len() < slots.len() {
                    distances.resize(slots.len(), 0.0);
                }
                let distances = &mut distances[..slots.len()];
                self.pq.scan(table, codes, base, distances)?;
                scored = scored.saturating_add(slots.len() as u32);
                for (&slot, &d) in slots.iter().zip(distances.iter()) {
                    // Strictly worse only: an equal distance may still win on the smaller id, so
                    // the result does not depend on the order lists are scanned in.
                    if d > bound {
                        continue;
                    }
                    if filter.is_some_and(|f| !f.allows(slot)) {
                        continue;
                    }
                    pool.push(Neighbor::new(slot, d));
                }
                if pool.len() >= 2 * keep.max(32) {
                    bound = keep_best(pool, keep);
                }
            }
        }
        keep_best(pool, keep);
        Ok(scored)
    }
}

/// The buffers one list scan works in, lent from the scratch.
struct ListScans<'a> {
    query_table: &'a mut Vec<f32>,
    list_table: &'a mut Vec<f32>,
    residual: &'a mut Vec<f32>,
    distances: &'a mut Vec<f32>,
}

/// Keeps the `keep` best of `pool` (by distance, then id; any order) and returns the worst
/// kept distance, or infinity while fewer than `keep` are held.
fn keep_best(pool: &mut Vec<Neighbor>, keep: usize) -> f32 {
    if keep == 0 {
        pool.clear();
        return f32::NEG_INFINITY;
    }
    if pool.len() > keep {
        pool.select_nth_unstable_by(keep - 1, Neighbor::cmp_rank);
        pool.truncate(keep);
    }
    if pool.len() < keep {
        return f32::INFINITY;
    }
    pool.iter().map(|n| n.distance).fold(f32::NEG_INFINITY, f32::max)
}
