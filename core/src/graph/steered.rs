//! The search of a graph whose full vectors live with its lists in a slow store (the SSD
//! index): product-quantization codes held in memory steer the walk, and every fetched node's
//! full vector — which arrives with its list at no extra read — re-ranks exactly (DiskANN,
//! NeurIPS 2019, §4). Written over [`NodeStore`], so the same search runs over an in-memory
//! graph (the reference the SSD store must match) and over any reader of the SSD layout.

use alloc::vec::Vec;

use super::{beam_walk, Beam, Cand, NodeStore, Scorer, Scratch, WalkStats};
use crate::quant::ProductQuantizer;
use crate::validate::check_query;
use crate::{Error, Filter, Kernels, Metric, Neighbor, TopK, ZeroVectorKind};

/// Product-quantization codes of every node, held in memory to steer a walk.
#[derive(Clone, Copy)]
pub struct PqGuide<'a> {
    /// The trained quantizer (8 bits per sub-quantizer).
    pub pq: &'a ProductQuantizer,
    /// The point the codes were taken around (each code encodes `x − center`); empty for none.
    /// Squared L2 is unchanged by the shift, and an inner product changes by `⟨q, center⟩`,
    /// the same for every node, so the ranking is the codes' either way.
    pub center: &'a [f32],
    /// Every node's vector has length 1: an inner-product search then steers by squared L2
    /// to the normalised query (the same order for exact vectors), whose code errors shrink
    /// near the query where an inner product's do not.
    pub unit_vectors: bool,
    /// `code_len` bytes per node, by node id.
    pub codes: &'a [u8],
    /// Nodes scored by code at the start of every walk, the beam-width nearest of which the
    /// walk starts from beside its entry (so its first round reads near the query): a sample
    /// spread over the graph puts the first rounds near the query instead of on the way
    /// there from the medoid (an in-memory entry layer, as Starling's navigation graph, at
    /// the cost of one code per sampled node). Ids past the node count are ignored. Empty:
    /// the walk starts at its entry alone.
    pub entries: &'a [u32],
}

/// How a steered search walks.
#[derive(Clone, Copy, Debug)]
pub struct SteerParams {
    /// Candidate-list size (DiskANN's `L_search`): larger finds more, reads more.
    pub l: usize,
    /// Nodes fetched per round in one batch of reads (DiskANN's beam width W).
    pub width: usize,
    /// Nodes already in memory (cached, or brought by an earlier read of their sector) a
    /// round may expand beside each node it reads. Such nodes cost no read but every one
    /// expanded costs its neighbours' scoring: as many as one read brings is about right.
    pub ride: usize,
}

/// Why a steered search failed: bad input, or the store could not deliver.
#[derive(Debug)]
pub enum SteerError<E> {
    /// The query or parameters were refused.
    Input(Error),
    /// A fetch failed (an I/O error, or a node the store found malformed).
    Store(E),
}

/// What a steered search did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerStats {
    /// The walk: rounds (one batch of fetches each), nodes expanded, PQ distances.
    pub walk: WalkStats,
    /// Exact distances computed from fetched full vectors.
    pub exact: u32,
}

/// ADC distances from a query's table to the in-memory codes.
struct PqScorer<'a> {
    /// One 256-entry table per sub-quantizer.
    tables: &'a [[f32; 256]],
    codes: &'a [u8],
    m: usize,
    kernels: Kernels,
}

impl Scorer for PqScorer<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        crate::simd::scalar::pq_adc_one(self.tables, self.row_bytes(id))
    }
    /// A node's neighbours several at a time (x86 gathers one sub-quantizer's entries for
    /// eight or sixteen of them at once); the same sums as [`PqScorer::dist`].
    #[inline(always)]
    fn dist_many(&self, ids: &[u32], out: &mut Vec<f32>) {
        out.clear();
        out.resize(ids.len(), 0.0);
        self.kernels.pq_adc_many(self.tables, self.codes, ids, out);
    }
    #[inline(always)]
    fn row_bytes(&self, id: u32) -> &[u8] {
        &self.codes[id as usize * self.m..(id as usize + 1) * self.m]
    }
}

/// A query made ready for steering: checked, normalised where the metric asks, and its PQ
/// distance table filled (`table`, `code_len × 256` floats). On success `scratch.query` and
/// `scratch.decoded` are lent out as the returned pair; give them back with [`give_back`].
fn prepare(
    guide: PqGuide<'_>,
    kernels: Kernels,
    metric: Metric,
    node_count: usize,
    query: &[f32],
    k: usize,
    scratch: &mut Scratch,
) -> Result<(Vec<f32>, Vec<f32>), Error> {
    let pq = guide.pq;
    let dim = pq.dim();
    check_query(query, dim, k)?;
    if node_count == 0 {
        return Err(Error::EmptyIndex);
    }
    if pq.nbits() != 8
        || guide.codes.len() != node_count * pq.code_len()
        || !(guide.center.is_empty() || guide.center.len() == dim)
    {
        return Err(Error::InvalidParameter { name: "guide", reason: "needs 8-bit PQ codes for every node" });
    }
    let mut q = core::mem::take(&mut scratch.query);
    q.clear();
    q.extend_from_slice(query);
    if metric.normalizes() && !kernels.normalize(&mut q) {
        scratch.query = q;
        return Err(Error::ZeroVector { what: ZeroVectorKind::Query });
    }
    // Cosine codes are of unit vectors, where squared L2 orders as cosine does.
    let mut table = core::mem::take(&mut scratch.decoded);
    // L2 tables take the query around the centre too; inner products need no shift.
    let mut shifted = core::mem::take(&mut scratch.shifted);
    shifted.clear();
    shifted.extend_from_slice(&q);
    // (A zero query has no direction to normalise: every inner product is 0, any order is.)
    let by_l2 = metric != Metric::InnerProduct || (guide.unit_vectors && kernels.normalize(&mut shifted));
    if by_l2 && !guide.center.is_empty() {
        shifted.iter_mut().zip(guide.center).for_each(|(x, c)| *x -= c);
    }
    let filled = if by_l2 { pq.l2_table(&shifted, &mut table) } else { pq.ip_table(&shifted, &mut table) };
    scratch.shifted = shifted;
    match filled {
        Ok(()) => Ok((q, table)),
        Err(e) => {
            give_back(scratch, q, table);
            Err(e)
        }
    }
}

fn give_back(scratch: &mut Scratch, q: Vec<f32>, table: Vec<f32>) {
    scratch.query = q;
    scratch.decoded = table;
}

/// A scorer that also keeps every node the filter allows, with its distance, as it scores it.
struct Pooling<'a, S> {
    inner: &'a S,
    filter: &'a dyn Filter,
    pool: core::cell::RefCell<Vec<Cand>>,
}

impl<S: Scorer> Scorer for Pooling<'_, S> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        let d = self.inner.dist(id);
        if self.filter.allows(id) {
            self.pool.borrow_mut().push(Cand { d, id });
        }
        d
    }
    #[inline(always)]
    fn dist_many(&self, ids: &[u32], out: &mut Vec<f32>) {
        self.inner.dist_many(ids, out);
        let mut pool = self.pool.borrow_mut();
        pool.extend(
            ids.iter()
                .zip(out.iter())
                .filter(|(&id, _)| self.filter.allows(id))
                .map(|(&id, &d)| Cand { d, id }),
        );
    }
    #[inline(always)]
    fn row_bytes(&self, id: u32) -> &[u8] {
        self.inner.row_bytes(id)
    }
}

/// The exact distance of a fetched vector, NaN ranked as the farthest.
#[inline]
fn exact_neighbor(metric: Metric, kernels: &Kernels, q: &[f32], id: u32, v: &[f32]) -> Neighbor {
    let d = metric.distance(kernels, q, v);
    Neighbor::new(id, if d.is_nan() { f32::INFINITY } else { d })
}

/// Searches `store` from `entry` for the `k` nodes nearest `query`, steered by `guide`'s codes
/// and re-ranked exactly with the full vectors fetched nodes bring. `scratch` is reused across
/// searches.
///
/// With a `filter` (which must answer for any node, fetched or not) only allowed nodes are
/// answered. The walk itself goes through every node, as unfiltered; on its way it keeps the
/// allowed nodes it scored, and at its end the `l` nearest of those by their codes that no
/// round fetched are fetched in one more batch and re-ranked too. So the answers need not lie
/// on the walk's own path, only near it; a tight filter calls for a larger `l` (or a scan,
/// [`steered_scan`]).
#[allow(clippy::too_many_arguments)]
pub fn steered_search<N: NodeStore>(
    store: &N,
    guide: PqGuide<'_>,
    kernels: Kernels,
    metric: Metric,
    entry: u32,
    query: &[f32],
    k: usize,
    params: SteerParams,
    filter: Option<&dyn Filter>,
    scratch: &mut Scratch,
    out: &mut Vec<Neighbor>,
) -> Result<SteerStats, SteerError<N::Error>> {
    let count = store.node_count();
    if params.l == 0 || params.width == 0 {
        return Err(SteerError::Input(Error::InvalidParameter {
            name: "l",
            reason: "the list size and the beam width must be at least 1",
        }));
    }
    let (q, table) = prepare(guide, kernels, metric, count, query, k, scratch).map_err(SteerError::Input)?;
    if entry as usize >= count {
        give_back(scratch, q, table);
        return Err(SteerError::Input(Error::EmptyIndex));
    }
    let pq = guide.pq;
    let dim = pq.dim();
    let tables: &[[f32; 256]] = bytemuck::cast_slice(&table[..pq.code_len() * 256]);
    let scorer = PqScorer { tables, codes: guide.codes, m: pq.code_len(), kernels };
    let l = params.l.max(k);
    let start = Cand { d: scorer.dist(entry), id: entry };
    let mut seeds = core::mem::take(&mut scratch.seeds);
    seeds.clear();
    let mut distances = 0;
    if !guide.entries.is_empty() {
        let keep = params.width;
        let mut ids = core::mem::take(&mut scratch.batch);
        ids.clear();
        ids.extend(guide.entries.iter().copied().filter(|&id| (id as usize) < count && id != entry));
        let mut dists = core::mem::take(&mut scratch.dists);
        scorer.dist_many(&ids, &mut dists);
        distances = ids.len() as u32;
        seeds.extend(ids.iter().zip(&dists).map(|(&id, &d)| Cand { d, id }));
        if seeds.len() > keep {
            seeds.select_nth_unstable_by(keep, Cand::order);
            seeds.truncate(keep);
        }
        scratch.batch = ids;
        scratch.dists = dists;
    }
    let beam =
        Beam { entry: start, seeds: &seeds, ef: l, width: params.width, ride: params.ride, filter: None };
    let mut exact = core::mem::take(&mut scratch.rerank);
    exact.clear();
    let allowed = |id: u32| filter.is_none_or(|f| f.allows(id));
    let rerank = |exact: &mut Vec<Neighbor>, id: u32, v: &[f32]| {
        if allowed(id) && v.len() == dim {
            exact.push(exact_neighbor(metric, &kernels, &q, id, v));
        }
    };
    let mut pool = core::mem::take(&mut scratch.pool);
    pool.clear();
    if let Some(f) = filter {
        // Starting points are scored nodes like any other the walk passes.
        pool.extend(seeds.iter().filter(|c| f.allows(c.id)));
    }
    let walked = match filter {
        None => beam_walk::<_, _, false>(store, &scorer, beam, scratch, |id, v| rerank(&mut exact, id, v)),
        Some(f) => {
            let pooling = Pooling { inner: &scorer, filter: f, pool: core::cell::RefCell::new(pool) };
            let walked =
                beam_walk::<_, _, false>(store, &pooling, beam, scratch, |id, v| rerank(&mut exact, id, v));
            pool = pooling.pool.into_inner();
            walked
        }
    };
    scratch.seeds = seeds;
    let result = match walked {
        Ok(mut walk) => {
            walk.distances += distances;
            let mut fetched = Ok(());
            if filter.is_some() {
                // The allowed nodes scored near the query that no round fetched: one batch more.
                exact.sort_unstable_by_key(|n| n.id);
                if pool.len() > l {
                    pool.select_nth_unstable_by(l, Cand::order);
                    pool.truncate(l);
                }
                let mut missing = core::mem::take(&mut scratch.batch);
                missing.clear();
                missing.extend(
                    pool.iter()
                        .map(|c| c.id)
                        .filter(|&id| exact.binary_search_by_key(&id, |n| n.id).is_err()),
                );
                if !missing.is_empty() {
                    walk.rounds += 1;
                    fetched = store.fetch(&missing, |id, _, v| {
                        if let Some(v) = v {
                            rerank(&mut exact, id, v);
                        }
                    });
                }
                scratch.batch = missing;
            }
            match fetched {
                Ok(()) => Ok(SteerStats { walk, exact: answer(&mut exact, k, out) }),
                Err(e) => Err(SteerError::Store(e)),
            }
        }
        Err(e) => Err(SteerError::Store(e)),
    };
    scratch.pool = pool;
    give_back(scratch, q, table);
    scratch.rerank = exact;
    result
}

/// The `k` nearest of the re-ranked nodes into `out`, a node re-ranked twice (sent unasked,
/// then asked for) counted once; returns how many nodes were re-ranked.
fn answer(exact: &mut Vec<Neighbor>, k: usize, out: &mut Vec<Neighbor>) -> u32 {
    exact.sort_unstable_by_key(|n| n.id);
    exact.dedup_by_key(|n| n.id);
    let mut top = TopK::new(k, out);
    for &n in exact.iter() {
        top.push(n);
    }
    top.finish();
    exact.len() as u32
}

/// Calls the visitor it is given with each candidate node of a scan.
pub type Candidates<'a> = dyn FnMut(&mut dyn FnMut(u32)) + 'a;

/// The `k` nodes nearest `query` among the nodes `candidates` names (each once): every one is
/// scored by its code, the `l` nearest by code are fetched in one batch and re-ranked
/// exactly. Nodes a fetch brings unasked are answered too when `filter` allows them. The
/// exhaustive plan for a tight filter: its cost is the matches' codes plus `l` reads, however
/// the matches lie in the graph.
#[allow(clippy::too_many_arguments)]
pub fn steered_scan<N: NodeStore>(
    store: &N,
    guide: PqGuide<'_>,
    kernels: Kernels,
    metric: Metric,
    query: &[f32],
    k: usize,
    l: usize,
    candidates: &mut Candidates<'_>,
    filter: &dyn Filter,
    scratch: &mut Scratch,
    out: &mut Vec<Neighbor>,
) -> Result<SteerStats, SteerError<N::Error>> {
    let count = store.node_count();
    let (q, table) = prepare(guide, kernels, metric, count, query, k, scratch).map_err(SteerError::Input)?;
    let pq = guide.pq;
    let dim = pq.dim();
    let tables: &[[f32; 256]] = bytemuck::cast_slice(&table[..pq.code_len() * 256]);
    let scorer = PqScorer { tables, codes: guide.codes, m: pq.code_len(), kernels };
    let l = l.max(k);
    let mut walk = WalkStats::default();
    // The l nearest by code, farthest on top.
    let best = &mut scratch.top;
    best.clear();
    let mut out_of_range = false;
    candidates(&mut |id| {
        if id as usize >= count {
            out_of_range = true;
            return;
        }
        walk.distances += 1;
        let c = Cand { d: scorer.dist(id), id };
        if best.len() < l {
            best.push(c);
        } else if best.peek().is_some_and(|w| c.before(w)) {
            best.pop();
            best.push(c);
        }
    });
    let mut pool = core::mem::take(&mut scratch.pool);
    scratch.top.drain_sorted(&mut pool);
    let mut ids = core::mem::take(&mut scratch.batch);
    ids.clear();
    ids.extend(pool.iter().map(|c| c.id));
    let mut exact = core::mem::take(&mut scratch.rerank);
    exact.clear();
    let result = if out_of_range {
        Err(SteerError::Input(Error::InvalidParameter {
            name: "candidates",
            reason: "a candidate is not a node of the store",
        }))
    } else {
        if !ids.is_empty() {
            walk.rounds = 1;
            walk.expanded = ids.len() as u32;
        }
        let fetched = if ids.is_empty() {
            Ok(())
        } else {
            store.fetch(&ids, |id, _, v| {
                if let Some(v) = v {
                    if v.len() == dim && filter.allows(id) {
                        exact.push(exact_neighbor(metric, &kernels, &q, id, v));
                    }
                }
            })
        };
        match fetched {
            Ok(()) => Ok(SteerStats { walk, exact: answer(&mut exact, k, out) }),
            Err(e) => Err(SteerError::Store(e)),
        }
    };
    scratch.pool = pool;
    scratch.batch = ids;
    scratch.rerank = exact;
    give_back(scratch, q, table);
    result
}
