//! Where a graph walk reads its nodes: the batched, fallible node-fetch trait and the beam
//! search written once over it.
//!
//! A [`NodeStore`] hands a walk the neighbour lists of many nodes at once — and, where it keeps
//! them beside the lists (the SSD layout), their full-precision vectors — or an error. In memory
//! and in a memory map a fetch is a slice of the link array and cannot fail; an SSD store turns
//! one fetch into one batch of reads. [`beam_search`] expands the `width` best unexpanded
//! candidates per round through one fetch: width 1 is the in-memory best-first walk, a wider
//! beam hides an SSD's latency behind parallel reads.

use core::convert::Infallible;

use super::{Cand, Graph, LinkWords, Scorer, Scratch};
use crate::Filter;

/// A graph's nodes as a walk reads them, many at a time.
pub trait NodeStore {
    /// Why a fetch can fail ([`Infallible`] in memory).
    type Error;
    /// The neighbour ids of one fetched node.
    type Links<'a>: Iterator<Item = u32>
    where
        Self: 'a;
    /// Nodes in the store: every id a list names is below it.
    fn node_count(&self) -> usize;
    /// Fetches the nodes `ids` as one batch and calls `visit(id, links, vector)` for each, in
    /// any order (a store that reads may visit each node as its read completes). `vector` is
    /// the node's full-precision row when the store keeps it with the list (so the walk can
    /// re-rank exactly with no further read), else `None`.
    ///
    /// A store that reads whole blocks (the SSD's sectors) may then visit nodes it was not
    /// asked for that came with the same reads: the walk takes their full vectors and makes
    /// them candidates (expanding one later costs no read, see [`NodeStore::is_ready`]).
    fn fetch<F>(&self, ids: &[u32], visit: F) -> Result<(), Self::Error>
    where
        F: FnMut(u32, Self::Links<'_>, Option<&[f32]>);
    /// Starts loading node `id`, which a fetch will soon ask for (a hint).
    #[inline(always)]
    fn prefetch(&self, _id: u32) {}
    /// Whether node `id` is already in memory, so fetching it costs no read: a beam takes such
    /// nodes beside its `width` nodes that do cost one. (In-memory stores say no: for them the
    /// beam is the plain best-first walk.)
    #[inline(always)]
    fn is_ready(&self, _id: u32) -> bool {
        false
    }
}

/// One level of an in-memory or memory-mapped graph as a [`NodeStore`]: a fetch reads the
/// lists in place.
pub(crate) struct LevelStore<'g, 'a, L: ?Sized + LinkWords> {
    pub graph: &'g Graph<'a, L>,
    pub level: usize,
}

impl<L: ?Sized + LinkWords> NodeStore for LevelStore<'_, '_, L> {
    type Error = Infallible;
    type Links<'b>
        = LinkIter<'b, L>
    where
        Self: 'b;

    #[inline(always)]
    fn node_count(&self) -> usize {
        self.graph.count
    }

    #[inline(always)]
    fn fetch<F>(&self, ids: &[u32], mut visit: F) -> Result<(), Infallible>
    where
        F: FnMut(u32, LinkIter<'_, L>, Option<&[f32]>),
    {
        for &id in ids {
            let (start, len) = self.graph.list(id, self.level);
            let words = if self.level == 0 { self.graph.links0 } else { self.graph.upper };
            visit(id, LinkIter { words, at: start, end: start + len }, None);
        }
        Ok(())
    }

    #[inline(always)]
    fn prefetch(&self, id: u32) {
        // The next candidate's list is likely the next cache miss: start loading it now, so it
        // arrives while this candidate's neighbours are scored.
        if self.level == 0 {
            let base = id as usize * (self.graph.m0 + 1);
            // A list spans up to three cache lines (R 32: 132 bytes in four-byte words).
            self.graph.links0.prefetch(base);
            self.graph.links0.prefetch(base + 16);
            self.graph.links0.prefetch(base + self.graph.m0);
        }
    }
}

/// The links of one node, read word by word from the link array.
pub(crate) struct LinkIter<'a, L: ?Sized + LinkWords> {
    words: &'a L,
    at: usize,
    end: usize,
}

impl<L: ?Sized + LinkWords> Iterator for LinkIter<'_, L> {
    type Item = u32;
    #[inline(always)]
    fn next(&mut self) -> Option<u32> {
        if self.at < self.end {
            let w = self.words.word(self.at);
            self.at += 1;
            Some(w)
        } else {
            None
        }
    }
}

/// What one walk did, for the search statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Fetch rounds (each one batch from the store).
    pub rounds: u32,
    /// Nodes expanded (fetched and their links scored).
    pub expanded: u32,
    /// Distances computed by the walk's scorer.
    pub distances: u32,
}

/// Where a beam search starts and how wide it looks.
#[derive(Clone, Copy)]
pub(crate) struct Beam<'f> {
    /// The first node, scored.
    pub entry: Cand,
    /// More scored starting points (node ids of the store), taken as candidates beside
    /// `entry`: nodes near the query that a walk from `entry` alone would spend rounds reaching.
    pub seeds: &'f [Cand],
    /// Candidate-list size: the walk keeps the `ef` nearest allowed nodes.
    pub ef: usize,
    /// Nodes fetched per round (at least 1).
    pub width: usize,
    /// Nodes already in memory ([`NodeStore::is_ready`]) a round may expand beside each of
    /// its `width` that cost a read (at least 1).
    pub ride: usize,
    /// Only allowed nodes enter the results; every node is traversed.
    pub filter: Option<&'f dyn Filter>,
}

/// Beam search over `store`, keeping the `beam.ef` nearest allowed nodes in `s.top`: each
/// round fetches the `beam.width` best unexpanded candidates in one batch and scores their
/// unvisited neighbours with `q`. `full(id, vector)` is called for every fetched node whose
/// store sent its full vector. With `RECORD`, every expanded node is kept in `s.expanded`.
#[inline(always)]
pub(crate) fn beam_walk<N: NodeStore, S: Scorer, const RECORD: bool>(
    store: &N,
    q: &S,
    beam: Beam<'_>,
    s: &mut Scratch,
    mut full: impl FnMut(u32, &[f32]),
) -> Result<WalkStats, N::Error> {
    let Beam { entry, seeds, ef, width, ride, filter } = beam;
    let mut stats = WalkStats::default();
    s.visited.start(store.node_count());
    s.candidates.clear();
    s.top.clear();
    s.visited.test_and_set(entry.id);
    s.candidates.push(entry);
    if filter.is_none_or(|f| f.allows(entry.id)) {
        s.top.push(entry);
    }
    for &seed in seeds {
        if !s.visited.test_and_set(seed.id) {
            s.candidates.push(seed);
            if filter.is_none_or(|f| f.allows(seed.id)) {
                s.top.push(seed);
                if s.top.len() > ef {
                    s.top.pop();
                }
            }
        }
    }
    let mut batch = core::mem::take(&mut s.batch);
    let mut neighbors = core::mem::take(&mut s.neighbors);
    let mut dists = core::mem::take(&mut s.dists);
    // Nodes already in memory ride along without counting against the width, up to a bound.
    let most = width.max(1) * (1 + ride.max(1));
    let result = loop {
        batch.clear();
        let mut costly = 0;
        while costly < width.max(1) && batch.len() < most {
            let Some(c) = s.candidates.pop() else { break };
            if s.top.len() >= ef && s.top.peek().is_some_and(|worst| worst.before(c)) {
                // Every remaining candidate is farther still.
                s.candidates.clear();
                break;
            }
            if RECORD {
                s.expanded.push(c);
            }
            if !store.is_ready(c.id) {
                costly += 1;
            }
            batch.push(c.id);
        }
        if batch.is_empty() {
            break Ok(());
        }
        if let Some(next) = s.candidates.peek() {
            store.prefetch(next.id);
        }
        stats.rounds += 1;
        stats.expanded += batch.len() as u32;
        let (visited, candidates, top, dists) = (&mut s.visited, &mut s.candidates, &mut s.top, &mut dists);
        let asked: &[u32] = &batch;
        let fetched = store.fetch(asked, |id, links, vector| {
            if let Some(v) = vector {
                full(id, v);
            }
            // Prefetch every unvisited neighbour before computing any distance, so their
            // vectors stream in while the first distances are computed.
            neighbors.clear();
            if asked.contains(&id) {
                for n in links {
                    if !visited.test_and_set(n) {
                        // Native prefetches never block, so they start as early as possible;
                        // WebAssembly's touches are loads and go in one batch below.
                        #[cfg(not(target_arch = "wasm32"))]
                        q.prefetch(n);
                        neighbors.push(n);
                    }
                }
            } else if !visited.test_and_set(id) {
                // A node that came unasked with a read: a candidate like any neighbour, whose
                // expansion later costs no read (its block is in memory).
                neighbors.push(id);
            }
            #[cfg(target_arch = "wasm32")]
            crate::simd::touch_rows(&neighbors, |n| q.row_bytes(n));
            stats.distances += neighbors.len() as u32;
            q.dist_many(&neighbors, dists);
            for (&n, &d) in neighbors.iter().zip(dists.iter()) {
                let cand = Cand { d, id: n };
                let full_list = top.len() >= ef;
                if !full_list || top.peek().is_some_and(|w| cand.before(w)) {
                    candidates.push(cand);
                    if filter.is_none_or(|f| f.allows(n)) {
                        top.push(cand);
                        if top.len() > ef {
                            top.pop();
                        }
                    }
                }
            }
        });
        if let Err(e) = fetched {
            break Err(e);
        }
    };
    s.batch = batch;
    s.neighbors = neighbors;
    s.dists = dists;
    result.map(|()| stats)
}
