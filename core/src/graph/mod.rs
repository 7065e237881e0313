//! The graph layer every graph index shares: the read-only graph accessor (over atomics while
//! building, over file bytes when opened in place), the per-thread scratch, greedy descent and
//! best-first search of a level, neighbour selection (`prune`), and the query side — filter
//! planning and exact re-rank (`query`). HNSW uses every level; a flat graph (Vamana) is
//! level 0 alone. `steered` is the walk of a graph on a slow store: PQ codes in memory steer,
//! fetched full vectors re-rank (the SSD index).

mod heap;
mod prune;
mod query;
mod scorer;
mod steered;
mod store;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::plan::SearchStats;
use crate::quant::sq::SqQuery;
use crate::scratch::Visited;
use crate::{Filter, Kernels, Metric, Neighbor};

pub(crate) use crate::vectors::SqData;
pub(crate) use heap::{Cand, Heap};
pub use prune::prune_neighbors;
pub(crate) use prune::{robust_prune, robust_prune_rounds};
pub(crate) use query::search_graph;
pub(crate) use scorer::{rerank, Exact, Full, Half, HalfData, Quantized, Scorer};
pub use steered::{steered_scan, steered_search, PqGuide, SteerError, SteerParams, SteerStats};
pub(crate) use store::{beam_walk, Beam, LevelStore};
pub use store::{NodeStore, WalkStats};

/// The `ef` (candidate-list size) a search uses when it does not set one.
pub const DEFAULT_EF: usize = 64;
/// "No node": the entry point of an empty graph.
pub(crate) const NO_NODE: u32 = u32::MAX;

/// Per-thread working memory of a search or an insert, reused so a query allocates nothing.
#[derive(Default, Clone)]
pub struct Scratch {
    pub(crate) visited: Visited,
    pub(crate) candidates: Heap<false>,
    pub(crate) top: Heap<true>,
    pub(crate) sorted: Vec<Cand>,
    pub(crate) selected: Vec<Cand>,
    pub(crate) query: Vec<f32>,
    pub(crate) neighbors: Vec<u32>,
    /// Insert bookkeeping: (level, how many) of the selections in `chosen_cands`.
    pub(crate) chosen: Vec<(usize, usize)>,
    pub(crate) chosen_cands: Vec<Cand>,
    /// The query prepared for scalar-quantized codes.
    pub(crate) sq_query: SqQuery,
    /// Candidates awaiting an exact re-rank.
    pub(crate) rerank: Vec<Neighbor>,
    /// A vector decoded from the parallel build's binary16 copy (a steered search's PQ table).
    pub(crate) decoded: Vec<f32>,
    /// A steered search's query taken around the PQ centre.
    pub(crate) shifted: Vec<f32>,
    /// The nodes [`Graph::search_level_recording`] expanded.
    pub(crate) expanded: Vec<Cand>,
    /// The ids one round of a beam search fetches.
    pub(crate) batch: Vec<u32>,
    /// The distances of one expanded node's new neighbours, scored as one batch.
    pub(crate) dists: Vec<f32>,
    /// Allowed nodes a filtered steered search scored on its way (re-ranked at its end).
    pub(crate) pool: Vec<Cand>,
    /// A steered search's starting points beside its entry, scored.
    pub(crate) seeds: Vec<Cand>,
    /// What the last search through this scratch did.
    pub(crate) stats: SearchStats,
}

impl Scratch {
    /// What the last search through this scratch did: its plan, the filter's matches, nodes
    /// expanded and distances computed.
    pub fn stats(&self) -> SearchStats {
        self.stats
    }
}

/// Reusable scratch for searches through `&self`.
pub(crate) type ScratchPool = crate::scratch::Pool<Scratch>;

/// Read access to link words, stored as atomics (owned, buildable in parallel) or as plain
/// words (a file opened in place).
pub(crate) trait LinkWords: Sync {
    fn word(&self, i: usize) -> u32;
    /// Whole words held.
    fn len(&self) -> usize;
    /// Starts loading the cache line of word `i` (a hint; out-of-range `i` is ignored).
    fn prefetch(&self, i: usize);
}

/// Starts loading the cache line of `w`. WebAssembly has no prefetch: an ordinary load starts
/// the miss there (see `simd::prefetch`).
#[inline(always)]
fn prefetch_word<T: Copy>(w: &T) {
    #[cfg(target_arch = "wasm32")]
    core::hint::black_box(*w);
    #[cfg(not(target_arch = "wasm32"))]
    crate::simd::prefetch_line(w);
}

impl LinkWords for [u32] {
    #[inline(always)]
    fn word(&self, i: usize) -> u32 {
        self[i]
    }
    fn len(&self) -> usize {
        <[u32]>::len(self)
    }
    #[inline(always)]
    fn prefetch(&self, i: usize) {
        if let Some(w) = self.get(i) {
            prefetch_word(w);
        }
    }
}

impl LinkWords for [AtomicU32] {
    #[inline(always)]
    fn word(&self, i: usize) -> u32 {
        self[i].load(Relaxed)
    }
    fn len(&self) -> usize {
        <[AtomicU32]>::len(self)
    }
    #[inline(always)]
    fn prefetch(&self, i: usize) {
        if let Some(w) = self.get(i) {
            crate::simd::prefetch_line(w);
        }
    }
}

/// Link words of three bytes each, little-endian, as a file stores a graph of fewer than
/// 2^24 nodes: a quarter fewer bytes than `u32` words, in the file and in the cache.
#[repr(transparent)]
pub struct Packed24([u8]);

impl Packed24 {
    /// Bytes in a word.
    pub(crate) const WIDTH: usize = 3;
    /// The largest value a word holds.
    pub(crate) const MAX: u32 = (1 << 24) - 1;

    pub(crate) fn new(bytes: &[u8]) -> &Packed24 {
        // SAFETY: `Packed24` is `repr(transparent)` over `[u8]`, so a reference to one is a
        // reference to the other with the same length metadata (a zero-copy view of the
        // file's bytes).
        unsafe { &*(bytes as *const [u8] as *const Packed24) }
    }

    /// `words` (each at most [`Packed24::MAX`]) as a file section's bytes, zero-padded to
    /// whole four-byte words as sections are.
    pub(crate) fn pack(words: &[u32]) -> Vec<u8> {
        let mut out = Vec::with_capacity((words.len() * Self::WIDTH).next_multiple_of(4));
        for &w in words {
            debug_assert!(w <= Self::MAX);
            out.extend_from_slice(&w.to_le_bytes()[..Self::WIDTH]);
        }
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }
}

impl LinkWords for Packed24 {
    #[inline(always)]
    fn word(&self, i: usize) -> u32 {
        let at = i * Self::WIDTH;
        // One unaligned four-byte load where the byte after the word exists (every word but
        // a section's very last), masked to three bytes.
        match self.0.get(at..at + 4) {
            Some(&[a, b, c, _]) => u32::from_le_bytes([a, b, c, 0]),
            _ => match self.0[at..at + Self::WIDTH] {
                [a, b, c] => u32::from_le_bytes([a, b, c, 0]),
                _ => 0,
            },
        }
    }
    fn len(&self) -> usize {
        self.0.len() / Self::WIDTH
    }
    #[inline(always)]
    fn prefetch(&self, i: usize) {
        if let Some(b) = self.0.get(i * Self::WIDTH) {
            prefetch_word(b);
        }
    }
}

/// A read-only view of a graph and its vectors.
pub(crate) struct Graph<'a, L: ?Sized + LinkWords> {
    pub kernels: Kernels,
    pub metric: Metric,
    pub dim: usize,
    pub m: usize,
    pub m0: usize,
    pub vectors: &'a [f32],
    pub upper_offsets: &'a [u32],
    pub links0: &'a L,
    pub upper: &'a L,
    pub count: usize,
    /// Entry point of searches (`u32::MAX` when the graph has none).
    pub entry: u32,
    pub max_level: u8,
    /// Deleted-slot bitset; empty when nothing is deleted.
    pub deleted: &'a [u64],
    /// Scalar-quantized codes that searches traverse with, when the index has them.
    pub sq: Option<SqData<'a>>,
    /// The parallel build's binary16 copy of the vectors, which its distances then read.
    pub half: Option<HalfData<'a>>,
}

impl<L: ?Sized + LinkWords> Graph<'_, L> {
    #[inline(always)]
    pub fn vector(&self, id: u32) -> &[f32] {
        let s = id as usize * self.dim;
        &self.vectors[s..s + self.dim]
    }

    /// Whether slot `id` is deleted.
    #[inline(always)]
    pub fn is_deleted(&self, id: u32) -> bool {
        self.deleted.get(id as usize / 64).is_some_and(|w| (w >> (id % 64)) & 1 == 1)
    }

    /// Exact scoring of `q` against the `f32` vectors.
    #[inline(always)]
    pub fn exact<'q>(&'q self, q: &'q [f32]) -> Exact<'q> {
        Exact { kernels: self.kernels, metric: self.metric, dim: self.dim, vectors: self.vectors, q }
    }

    /// Scoring of `q` against the binary16 copy (`None` without one).
    #[inline(always)]
    pub fn half<'q>(&'q self, q: &'q [f32]) -> Option<Half<'q>> {
        self.half.map(|data| Half { data, dim: self.dim, q })
    }

    /// The build's distance from vector `a` to node `b`: over the binary16 copy while the
    /// parallel build has one, else exact.
    #[inline(always)]
    pub fn pair(&self, a: &[f32], b: u32) -> f32 {
        match self.half {
            Some(h) => {
                let s = b as usize * self.dim;
                h.kernels.distance(a, &h.rows[s..s + self.dim])
            }
            None => self.metric.distance(&self.kernels, a, self.vector(b)),
        }
    }

    /// Node `id`'s own vector: its `f32` row, or, in an index that keeps only binary16 rows,
    /// the row decoded into `buf`.
    #[inline(always)]
    pub fn own_vector<'b>(&'b self, id: u32, buf: &'b mut Vec<f32>) -> &'b [f32] {
        match self.half {
            Some(h) if self.vectors.is_empty() => {
                let s = id as usize * self.dim;
                buf.clear();
                h.kernels.decode_into(&h.rows[s..s + self.dim], buf);
                buf
            }
            _ => self.vector(id),
        }
    }

    /// Scoring of a prepared query against the scalar-quantized codes.
    #[inline(always)]
    pub fn quantized<'q>(&'q self, codes: &'q [u8], query: &'q SqQuery) -> Quantized<'q> {
        Quantized { kernels: self.kernels, dim: self.dim, codes, query }
    }

    /// Start index and length of `id`'s neighbour list at `level`.
    #[inline(always)]
    pub fn list(&self, id: u32, level: usize) -> (usize, usize) {
        if level == 0 {
            let base = id as usize * (self.m0 + 1);
            (base + 1, self.links0.word(base) as usize)
        } else {
            let base = self.upper_offsets[id as usize] as usize + (level - 1) * (self.m + 1);
            (base + 1, self.upper.word(base) as usize)
        }
    }

    #[inline(always)]
    pub fn link(&self, level: usize, i: usize) -> u32 {
        if level == 0 {
            self.links0.word(i)
        } else {
            self.upper.word(i)
        }
    }

    /// Greedy descent at one upper level: the closest node reachable from `ep`. Adds the
    /// nodes it expands and the distances it computes to `stats`.
    #[inline]
    pub fn greedy<S: Scorer>(&self, q: &S, mut ep: Cand, level: usize, stats: &mut WalkStats) -> Cand {
        loop {
            let mut improved = false;
            let (start, len) = self.list(ep.id, level);
            stats.expanded += 1;
            stats.distances += len as u32;
            for i in start..start + len {
                let n = self.link(level, i);
                let c = Cand { d: q.dist(n), id: n };
                if c.before(ep) {
                    ep = c;
                    improved = true;
                }
            }
            if !improved {
                return ep;
            }
        }
    }

    /// Best-first search of one level from `entry`, keeping the `ef` nearest in `s.top`.
    /// With a filter, every node is traversed but only allowed ones enter the results.
    #[inline]
    pub fn search_level<S: Scorer>(
        &self,
        q: &S,
        entry: Cand,
        ef: usize,
        level: usize,
        filter: Option<&dyn Filter>,
        s: &mut Scratch,
    ) -> WalkStats {
        self.walk_level::<S, false>(q, entry, ef, level, filter, s)
    }

    /// [`Graph::search_level`] that also records every node it expands in `s.expanded` (the
    /// visited set Vamana's build prunes from). A separate instance of the one loop, so
    /// searches pay nothing for it.
    pub fn search_level_recording<S: Scorer>(
        &self,
        q: &S,
        entry: Cand,
        ef: usize,
        level: usize,
        s: &mut Scratch,
    ) {
        s.expanded.clear();
        self.walk_level::<S, true>(q, entry, ef, level, None, s);
    }

    #[inline(always)]
    fn walk_level<S: Scorer, const RECORD: bool>(
        &self,
        q: &S,
        entry: Cand,
        ef: usize,
        level: usize,
        filter: Option<&dyn Filter>,
        s: &mut Scratch,
    ) -> WalkStats {
        // One node per round: in memory a fetch is a slice, so a wider beam would only expand
        // nodes a narrower one never reaches.
        let store = LevelStore { graph: self, level };
        let beam = Beam { entry, seeds: &[], ef, width: 1, ride: 1, filter };
        let Ok(stats) = beam_walk::<_, S, RECORD>(&store, q, beam, s, |_, _| {});
        stats
    }

    /// Best-first search of level 0 under a filter that scores allowed nodes only: a
    /// disallowed neighbour is not scored but looked through — its own allowed neighbours
    /// become candidates (two hops, as in ACORN-1). Candidates and results are allowed nodes
    /// (and the entry). Keeps the `ef` nearest allowed in `s.top`.
    pub fn two_hop_level<S: Scorer>(
        &self,
        q: &S,
        entry: Cand,
        ef: usize,
        filter: &dyn Filter,
        s: &mut Scratch,
    ) -> WalkStats {
        let mut stats = WalkStats::default();
        s.visited.start(self.count);
        s.candidates.clear();
        s.top.clear();
        s.visited.test_and_set(entry.id);
        s.candidates.push(entry);
        if filter.allows(entry.id) {
            s.top.push(entry);
        }
        let mut neighbors = core::mem::take(&mut s.neighbors);
        // A candidate's allowed neighbourhood is cut at this many, nearest hops first: without
        // a bound a node whose neighbours are all disallowed would score their whole lists.
        let most = 2 * self.m0.max(1);
        while let Some(c) = s.candidates.pop() {
            if s.top.len() >= ef && s.top.peek().is_some_and(|worst| worst.before(c)) {
                break;
            }
            stats.rounds += 1;
            stats.expanded += 1;
            neighbors.clear();
            let (start, len) = self.list(c.id, 0);
            for i in start..start + len {
                let n = self.links0.word(i);
                if filter.allows(n) && !s.visited.test_and_set(n) {
                    q.prefetch(n);
                    neighbors.push(n);
                }
            }
            // Then the second hop, through the disallowed neighbours. One is marked visited
            // only when looked through, so a list cut short here leaves the rest to be looked
            // through from another node.
            for i in start..start + len {
                if neighbors.len() >= most {
                    break;
                }
                let n = self.links0.word(i);
                if filter.allows(n) || s.visited.test_and_set(n) {
                    continue;
                }
                let (start2, len2) = self.list(n, 0);
                for j in start2..start2 + len2 {
                    let m = self.links0.word(j);
                    if filter.allows(m) && !s.visited.test_and_set(m) {
                        q.prefetch(m);
                        neighbors.push(m);
                        if neighbors.len() >= most {
                            break;
                        }
                    }
                }
            }
            stats.distances += neighbors.len() as u32;
            for &n in neighbors.iter() {
                let cand = Cand { d: q.dist(n), id: n };
                if s.top.len() < ef || s.top.peek().is_some_and(|w| cand.before(w)) {
                    s.candidates.push(cand);
                    s.top.push(cand);
                    if s.top.len() > ef {
                        s.top.pop();
                    }
                }
            }
        }
        s.neighbors = neighbors;
        stats
    }

    /// [`Graph::search`] whose level-0 walk is [`Graph::two_hop_level`].
    pub fn search_two_hop<S: Scorer>(
        &self,
        q: &S,
        ef: usize,
        filter: &dyn Filter,
        s: &mut Scratch,
    ) -> WalkStats {
        let mut ep = Cand { d: q.dist(self.entry), id: self.entry };
        let mut stats = WalkStats { distances: 1, ..WalkStats::default() };
        for level in (1..=self.max_level as usize).rev() {
            ep = self.greedy(q, ep, level, &mut stats);
        }
        let walk = self.two_hop_level(q, ep, ef, filter, s);
        WalkStats {
            rounds: stats.rounds + walk.rounds,
            expanded: stats.expanded + walk.expanded,
            distances: stats.distances + walk.distances,
        }
    }

    /// Full query: greedy descent from the entry point, then a level-0 search with `ef`.
    /// Returns the work done (the entry's own distance included).
    #[inline]
    pub fn search<S: Scorer>(
        &self,
        q: &S,
        entry: u32,
        max_level: usize,
        ef: usize,
        filter: Option<&dyn Filter>,
        s: &mut Scratch,
    ) -> WalkStats {
        let mut ep = Cand { d: q.dist(entry), id: entry };
        let mut stats = WalkStats { distances: 1, ..WalkStats::default() };
        for level in (1..=max_level).rev() {
            ep = self.greedy(q, ep, level, &mut stats);
        }
        let walk = self.search_level(q, ep, ef, 0, filter, s);
        WalkStats {
            rounds: stats.rounds + walk.rounds,
            expanded: stats.expanded + walk.expanded,
            distances: stats.distances + walk.distances,
        }
    }
}
