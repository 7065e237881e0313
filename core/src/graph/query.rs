//! The query side of every graph index: validating and normalising the query, the plan for a
//! filter (walk the graph, or scan the allowed ids exactly when the filter is selective; never
//! fewer than `min(k, matches)` results), and the exact re-rank of candidates found on codes.

use alloc::vec::Vec;

use super::{Graph, LinkWords, Scorer, Scratch, DEFAULT_EF, NO_NODE};
use crate::validate::check_query;
use crate::{Error, Filter, Neighbor, Result, SearchParams, TopK, ZeroVectorKind};

/// Validates a query and runs it against any graph storage.
pub(crate) fn search_graph<L: ?Sized + LinkWords>(
    g: &Graph<'_, L>,
    query: &[f32],
    k: usize,
    params: &SearchParams,
    filter: Option<&dyn Filter>,
    s: &mut Scratch,
    out: &mut Vec<Neighbor>,
) -> Result<()> {
    check_query(query, g.dim, k)?;
    if g.count == 0 || g.entry == NO_NODE {
        return Err(Error::EmptyIndex);
    }
    // With deletions, results are limited to live slots (tombstones are still walked through).
    let live = Live::new(g.deleted);
    let combined;
    let filter: Option<&dyn Filter> = match &live {
        Some(l) => {
            combined = l.with(filter);
            Some(&combined)
        }
        None => filter,
    };
    // The normalised query lives in the scratch; moved out while the search borrows the rest.
    let mut qbuf = core::mem::take(&mut s.query);
    let q: &[f32] = if g.metric.normalizes() {
        qbuf.clear();
        qbuf.extend_from_slice(query);
        if !g.kernels.normalize(&mut qbuf) {
            s.query = qbuf;
            return Err(Error::ZeroVector { what: ZeroVectorKind::Query });
        }
        &qbuf
    } else {
        query
    };
    // More results than nodes cannot exist; capping here keeps a huge k from sizing heaps.
    let k = k.min(g.count);
    let ef = if params.ef == 0 { DEFAULT_EF } else { params.ef }.max(k);
    let r = match g.sq {
        Some(sq) => {
            let mut prepared = core::mem::take(&mut s.sq_query);
            prepared.prepare(sq.quantizer, g.metric, &g.kernels, q);
            // A codes-only index (default factor 0) has no f32 vectors to re-rank with (its
            // file has none), so the owned index answers as its file does.
            let factor = if (g.vectors.is_empty() && g.half.is_none()) || sq.rerank == 0 {
                0
            } else if params.rerank_factor > 0 {
                params.rerank_factor
            } else {
                sq.rerank
            };
            // Re-rank the best k × factor of the ef candidates the walk kept.
            let pool = if factor > 0 { k.saturating_mul(factor).min(ef).max(k) } else { k };
            let r = search_filtered(g, &g.quantized(sq.codes, &prepared), pool, ef, filter, s, out);
            s.sq_query = prepared;
            if factor > 0 {
                rerank_exact(g, q, k, s, out);
            }
            r
        }
        None => match g.half(q) {
            Some(half) => search_filtered(g, &half, k, ef, filter, s, out),
            None => search_filtered(g, &g.exact(q), k, ef, filter, s, out),
        },
    };
    s.query = qbuf;
    r
}

/// The live-slot filter of an index with deletions, optionally narrowed by a caller's filter.
pub(crate) struct Live<'a> {
    deleted: &'a [u64],
    dead: usize,
    user: Option<&'a dyn Filter>,
}

impl<'a> Live<'a> {
    /// `None` when nothing is deleted, so searches without deletions pay nothing.
    pub(crate) fn new(deleted: &'a [u64]) -> Option<Self> {
        let dead: usize = deleted.iter().map(|w| w.count_ones() as usize).sum();
        (dead > 0).then_some(Self { deleted, dead, user: None })
    }
    fn with(&self, user: Option<&'a dyn Filter>) -> Live<'a> {
        Live { deleted: self.deleted, dead: self.dead, user }
    }
}

impl Filter for Live<'_> {
    #[inline]
    fn allows(&self, id: u32) -> bool {
        let alive = self.deleted.get(id as usize / 64).is_none_or(|w| (w >> (id % 64)) & 1 == 0);
        alive && self.user.is_none_or(|f| f.allows(id))
    }
    fn count_allowed(&self, n: u32) -> Option<u32> {
        match self.user {
            // An upper bound when the caller's set overlaps the deleted slots; estimates only.
            Some(f) => f.count_allowed(n),
            None => Some(n.saturating_sub(self.dead as u32)),
        }
    }
}

/// How many of the `n` ids `filter` allows: exact when the filter knows, else estimated from a
/// fixed sample of 256 evenly spaced ids (deterministic, so results are too).
fn estimate_matches(filter: &dyn Filter, n: usize) -> usize {
    if let Some(c) = filter.count_allowed(n as u32) {
        return c as usize;
    }
    let samples = n.min(256);
    let hits = (0..samples).filter(|i| filter.allows((i * n / samples) as u32)).count();
    hits * n / samples.max(1)
}

/// Graph search, or exact search over the allowed ids where the filter is selective enough
/// that a graph walk would visit more nodes than there are matches. Never returns fewer than
/// `min(k, matches)` results: a graph walk that comes back short is redone exactly.
fn search_filtered<L: ?Sized + LinkWords, S: Scorer>(
    g: &Graph<'_, L>,
    q: &S,
    k: usize,
    ef: usize,
    filter: Option<&dyn Filter>,
    s: &mut Scratch,
    out: &mut Vec<Neighbor>,
) -> Result<()> {
    if let Some(f) = filter {
        let n = g.count;
        let matches = estimate_matches(f, n);
        // A walk visits about ef / selectivity nodes, a scan the matches: scan when
        // matches^2 < 4 ef n, i.e. selectivity below sqrt(4 ef / n) (5 % at n = 100k, ef = 64).
        if (matches as u128) * (matches as u128) < 4 * ef as u128 * n as u128 {
            exact_filtered(g, q, k, f, out);
            return Ok(());
        }
    }
    g.search(q, g.entry, g.max_level as usize, ef, filter, s);
    let mut sorted = core::mem::take(&mut s.sorted);
    s.top.drain_sorted(&mut sorted);
    let mut top = TopK::new(k, out);
    for c in sorted.iter().take(k) {
        top.push(Neighbor::new(c.id, c.d));
    }
    top.finish();
    s.sorted = sorted;
    if let Some(f) = filter {
        if out.len() < k {
            exact_filtered(g, q, k, f, out);
        }
    }
    Ok(())
}

/// Exact top-k among the ids `filter` allows.
fn exact_filtered<L: ?Sized + LinkWords, S: Scorer>(
    g: &Graph<'_, L>,
    q: &S,
    k: usize,
    filter: &dyn Filter,
    out: &mut Vec<Neighbor>,
) {
    let mut top = TopK::new(k, out);
    for id in 0..g.count as u32 {
        if filter.allows(id) {
            let c = Neighbor::new(id, q.dist(id));
            if top.worst().is_none_or(|w| c.cmp_rank(w).is_lt()) {
                top.push(c);
            }
        }
    }
    top.finish();
}

/// Replaces the approximate candidates in `out` by the `k` nearest of them under full-precision
/// distances: to the stored binary16 rows when the index keeps those, else to the `f32` vectors.
fn rerank_exact<L: ?Sized + LinkWords>(
    g: &Graph<'_, L>,
    q: &[f32],
    k: usize,
    s: &mut Scratch,
    out: &mut Vec<Neighbor>,
) {
    match g.half(q) {
        Some(half) => rerank_with(&half, k, s, out),
        None => rerank_with(&g.exact(q), k, s, out),
    }
}

fn rerank_with<S: Scorer>(exact: &S, k: usize, s: &mut Scratch, out: &mut Vec<Neighbor>) {
    s.rerank.clear();
    s.rerank.extend_from_slice(out);
    super::scorer::rerank(exact, k, &s.rerank, out);
}
