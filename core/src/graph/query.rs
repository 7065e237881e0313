//! The query side of every graph index: validating and normalising the query, the plan for a
//! filter (walk the graph, or scan the allowed ids exactly where the cost model says so; never
//! fewer than `min(k, matches)` results), the search statistics, and the exact re-rank of
//! candidates found on codes.

use alloc::vec::Vec;

use super::{Graph, LinkWords, Scorer, Scratch, DEFAULT_EF, NO_NODE};
use crate::filter::{estimate_matches, for_each_allowed_ahead, results_owed};
use crate::plan::{FilterStrategy, Plan, SearchStats, COSTS};
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
    let allowed = match (&live, filter) {
        (Some(l), _) => {
            combined = l.with(filter);
            Some(Allowed { test: &combined as &dyn Filter, ids: filter, ids_exact: false })
        }
        (None, Some(f)) => Some(Allowed { test: f, ids: Some(f), ids_exact: true }),
        (None, None) => None,
    };
    s.stats = SearchStats::default();
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
            let r = search_filtered(
                g,
                &g.quantized(sq.codes, &prepared),
                pool,
                ef,
                params.filter_strategy,
                allowed,
                s,
                out,
            );
            s.sq_query = prepared;
            if factor > 0 {
                s.stats.distances = s.stats.distances.saturating_add(out.len() as u32);
                rerank_exact(g, q, k, s, out);
            }
            r
        }
        None => match g.half(q) {
            Some(half) => search_filtered(g, &half, k, ef, params.filter_strategy, allowed, s, out),
            None => search_filtered(g, &g.exact(q), k, ef, params.filter_strategy, allowed, s, out),
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

/// A search's filter: `test` says whether an id may be returned; `ids`, when set, is a filter
/// whose lent ids (if it lends them) cover every allowed id — exactly, or (with deletions) a
/// superset that `test` still narrows.
#[derive(Clone, Copy)]
struct Allowed<'a> {
    test: &'a dyn Filter,
    ids: Option<&'a dyn Filter>,
    ids_exact: bool,
}

/// Graph search, or exact search over the allowed ids where the cost model says a scan of the
/// matches is cheaper than a walk that must meet `ef` of them. Never returns fewer than
/// `min(k, matches)` results: a graph walk that comes back short is redone exactly.
#[allow(clippy::too_many_arguments)]
fn search_filtered<L: ?Sized + LinkWords, S: Scorer>(
    g: &Graph<'_, L>,
    q: &S,
    k: usize,
    ef: usize,
    strategy: FilterStrategy,
    allowed: Option<Allowed<'_>>,
    s: &mut Scratch,
    out: &mut Vec<Neighbor>,
) -> Result<()> {
    let walk = match allowed {
        None => g.search(q, g.entry, g.max_level as usize, ef, None, s),
        Some(a) => {
            let n = g.count;
            let matches = estimate_matches(a.test, n);
            s.stats.matches = Some(matches);
            let plan = match strategy {
                FilterStrategy::Auto => COSTS.plan(matches, n, g.dim, ef, g.m0),
                FilterStrategy::Scan => Plan::Scan,
                FilterStrategy::Walk => Plan::FilteredWalk,
                FilterStrategy::TwoHop => Plan::TwoHopWalk,
            };
            s.stats.plan = plan;
            match plan {
                Plan::TwoHopWalk => g.search_two_hop(q, ef, a.test, s),
                Plan::FilteredWalk => g.search(q, g.entry, g.max_level as usize, ef, Some(a.test), s),
                _ => {
                    s.stats.plan = Plan::Scan;
                    s.stats.distances = s.stats.distances.saturating_add(exact_filtered(g, q, k, a, out));
                    return Ok(());
                }
            }
        }
    };
    s.stats.expanded = s.stats.expanded.saturating_add(walk.expanded);
    s.stats.distances = s.stats.distances.saturating_add(walk.distances);
    let mut sorted = core::mem::take(&mut s.sorted);
    s.top.drain_sorted(&mut sorted);
    let mut top = TopK::new(k, out);
    for c in sorted.iter().take(k) {
        top.push(Neighbor::new(c.id, c.d));
    }
    top.finish();
    s.sorted = sorted;
    if let Some(a) = allowed {
        if out.len() < results_owed(a.test, g.count, k) {
            s.stats.plan = Plan::WalkThenScan;
            s.stats.distances = s.stats.distances.saturating_add(exact_filtered(g, q, k, a, out));
        }
    }
    Ok(())
}

/// Exact top-k among the allowed ids, visiting the filter's own ids where it lends them (the
/// cost follows the matches, not `n`), each row's load started a few ids ahead. Returns the
/// distances computed.
fn exact_filtered<L: ?Sized + LinkWords, S: Scorer>(
    g: &Graph<'_, L>,
    q: &S,
    k: usize,
    allowed: Allowed<'_>,
    out: &mut Vec<Neighbor>,
) -> u32 {
    let mut top = TopK::new(k, out);
    let mut scored = 0u32;
    let (source, recheck) = match allowed.ids {
        Some(ids) if ids.allowed_ids().is_some() => (ids, !allowed.ids_exact),
        _ => (allowed.test, false),
    };
    for_each_allowed_ahead(
        source,
        g.count as u32,
        |id| q.prefetch(id),
        |id| {
            if recheck && !allowed.test.allows(id) {
                return;
            }
            scored += 1;
            let c = Neighbor::new(id, q.dist(id));
            if top.worst().is_none_or(|w| c.cmp_rank(w).is_lt()) {
                top.push(c);
            }
        },
    );
    top.finish();
    scored
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
