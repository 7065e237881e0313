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
}

/// How a steered search walks.
#[derive(Clone, Copy, Debug)]
pub struct SteerParams {
    /// Candidate-list size (DiskANN's `L_search`): larger finds more, reads more.
    pub l: usize,
    /// Nodes fetched per round in one batch of reads (DiskANN's beam width W).
    pub width: usize,
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
}

impl Scorer for PqScorer<'_> {
    /// Four running sums, so the lookups of one code overlap instead of waiting on each other
    /// (a byte indexes a 256-entry table with no bounds check).
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        let code = &self.codes[id as usize * self.m..(id as usize + 1) * self.m];
        let mut acc = [0.0f32; 4];
        let quads = code.chunks_exact(4).zip(self.tables.chunks_exact(4));
        for (c, t) in quads {
            acc[0] += t[0][c[0] as usize];
            acc[1] += t[1][c[1] as usize];
            acc[2] += t[2][c[2] as usize];
            acc[3] += t[3][c[3] as usize];
        }
        let done = code.len() / 4 * 4;
        for (&c, t) in code[done..].iter().zip(&self.tables[done..]) {
            acc[0] += t[c as usize];
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3])
    }
    #[inline(always)]
    fn row_bytes(&self, id: u32) -> &[u8] {
        &self.codes[id as usize * self.m..(id as usize + 1) * self.m]
    }
}

/// Searches `store` from `entry` for the `k` nodes nearest `query`, steered by `guide`'s codes
/// and re-ranked exactly with the full vectors fetched nodes bring. Only nodes `filter`
/// allows are answered (all are walked through). `scratch` is reused across searches.
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
    let pq = guide.pq;
    let dim = pq.dim();
    check_query(query, dim, k).map_err(SteerError::Input)?;
    let count = store.node_count();
    if count == 0 || entry as usize >= count {
        return Err(SteerError::Input(Error::EmptyIndex));
    }
    if pq.nbits() != 8
        || guide.codes.len() != count * pq.code_len()
        || !(guide.center.is_empty() || guide.center.len() == dim)
    {
        return Err(SteerError::Input(Error::InvalidParameter {
            name: "guide",
            reason: "needs 8-bit PQ codes for every node",
        }));
    }
    if params.l == 0 || params.width == 0 {
        return Err(SteerError::Input(Error::InvalidParameter {
            name: "l",
            reason: "the list size and the beam width must be at least 1",
        }));
    }
    let mut q = core::mem::take(&mut scratch.query);
    q.clear();
    q.extend_from_slice(query);
    if metric.normalizes() && !kernels.normalize(&mut q) {
        scratch.query = q;
        return Err(SteerError::Input(Error::ZeroVector { what: ZeroVectorKind::Query }));
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
    if let Err(e) = filled {
        scratch.query = q;
        scratch.decoded = table;
        return Err(SteerError::Input(e));
    }
    let tables: &[[f32; 256]] = bytemuck::cast_slice(&table[..pq.code_len() * 256]);
    let scorer = PqScorer { tables, codes: guide.codes, m: pq.code_len() };
    let l = params.l.max(k);
    let start = Cand { d: scorer.dist(entry), id: entry };
    let beam = Beam { entry: start, ef: l, width: params.width, filter: None };
    let mut exact = core::mem::take(&mut scratch.rerank);
    exact.clear();
    let walked = beam_walk::<_, _, false>(store, &scorer, beam, scratch, |id, v| {
        if filter.is_none_or(|f| f.allows(id)) && v.len() == dim {
            let d = metric.distance(&kernels, &q, v);
            exact.push(Neighbor::new(id, if d.is_nan() { f32::INFINITY } else { d }));
        }
    });
    let result = match walked {
        Ok(walk) => {
            // A node the store sent unasked and the walk later asked for came twice.
            exact.sort_unstable_by_key(|n| n.id);
            exact.dedup_by_key(|n| n.id);
            let stats = SteerStats { walk, exact: exact.len() as u32 };
            let mut top = TopK::new(k, out);
            for &n in &exact {
                top.push(n);
            }
            top.finish();
            Ok(stats)
        }
        Err(e) => Err(SteerError::Store(e)),
    };
    scratch.query = q;
    scratch.decoded = table;
    scratch.rerank = exact;
    result
}
