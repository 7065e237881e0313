//! HNSW (Malkov & Yashunin): the in-memory graph index.
//!
//! Layout, chosen for speed and for in-place files:
//! - vectors contiguous, row-major (`count × dim` f32);
//! - level 0: one fixed-stride array, `m0 + 1` words per node (`[len, ids…]`);
//! - upper levels: blocks of `m + 1` words; node `i`'s level-1 block starts at `upper_offsets[i]`,
//!   and offsets are the prefix sums of `levels[i] × (m + 1)`, so they validate in one pass;
//! - links are `AtomicU32` in memory (relaxed loads are plain loads) so the parallel build can
//!   link under shared access with per-node locks; a file view reads the same words in place.
//!
//! A single-thread build with a given seed is deterministic — every choice breaks ties by id and
//! every distance is bit-identical across kernel paths — so it writes the same file natively and
//! in wasm.

mod build;
mod delete;
mod file;
mod reorder;
mod vamana;
mod view;

pub use crate::graph::Scratch;
pub use vamana::VamanaParams;
pub use view::{HnswView, Mapped};

use alloc::vec::Vec;
use core::sync::atomic::AtomicU32;

use crate::graph::{search_graph, Graph, HalfData, LinkWords, ScratchPool};

use crate::quant::sq::ScalarQuantizer;
use crate::simd::half::HalfKernels;

use crate::memory;
use crate::rng::Rng;
use crate::validate::check_dim;
use crate::vectors::{Rows, VectorForm, VectorStore, Vectors};
use crate::{Error, Filter, Kernels, Metric, Neighbor, Result, SearchParams, SearchStats, VectorSearch};

/// The highest level a node may get (levels are stored as bytes; with M ≥ 2 a level above 31
/// has probability below 2^-31 per node).
pub const MAX_LEVEL: u8 = 31;
pub use crate::graph::DEFAULT_EF;
/// Sentinel for "no node".
const NONE: u32 = crate::graph::NO_NODE;

/// Construction parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on upper levels (level 0 holds `2 × m`).
    pub m: usize,
    /// Candidate-list size while inserting.
    pub ef_construction: usize,
    /// Seed of the level generator.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self { m: 16, ef_construction: 200, seed: 0x0005_EED0_F01D }
    }
}

impl HnswParams {
    fn check(&self) -> Result<()> {
        if !(2..=256).contains(&self.m) {
            return Err(Error::InvalidParameter { name: "m", reason: "must be between 2 and 256" });
        }
        if self.ef_construction == 0 {
            return Err(Error::InvalidParameter { name: "ef_construction", reason: "must be at least 1" });
        }
        Ok(())
    }
}

/// An HNSW (or, flat, Vamana) graph index over one of two stores: [`Owned`] — its own memory,
/// growable (`HnswIndex`, the default) — or [`Mapped`] — a file's bytes read in place
/// ([`HnswView`]). Everything that reads (search, `get`, parameters, storage) is written once
/// for both; building, inserting and deleting exist for the owned store.
pub struct HnswIndex<S: GraphStore = Owned> {
    dim: usize,
    metric: Metric,
    kernels: Kernels,
    params: HnswParams,
    m0: usize,
    entry: u32,
    max_level: u8,
    /// How many slots are deleted (freed, or in a Vamana graph also awaiting consolidation).
    dead: usize,
    /// A flat graph (Vamana) and its parameters: every node on level 0 alone, `m0` = R links
    /// each, entered at the medoid.
    vamana: Option<VamanaParams>,
    scratch: ScratchPool,
    store: S,
}

/// The store of an index that owns its vectors and graph and can grow.
pub struct Owned {
    /// Every slot's row (`f32`, or binary16 after [`HnswIndex::store_f16`]) and, once
    /// quantized, its SQ8 code. An owned index always keeps rows: the graph is built and
    /// extended over them, even when its file keeps only the codes.
    vectors: VectorStore,
    levels: Vec<u8>,
    upper_offsets: Vec<u32>,
    links0: Vec<AtomicU32>,
    upper: Vec<AtomicU32>,
    rng: Rng,
    /// Deleted slots (bit set = deleted); empty while nothing was ever deleted.
    deleted: Vec<u64>,
    /// Deleted slots waiting to be reused by later inserts.
    free: Vec<u32>,
}

/// Where an [`HnswIndex`] keeps its vectors and links: [`Owned`] or [`Mapped`].
pub trait GraphStore: store::Sealed {}
impl GraphStore for Owned {}

impl<S: GraphStore> core::fmt::Debug for HnswIndex<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("params", &self.params)
            .field("len", &self.slot_count())
            .field("max_level", &self.max_level)
            .finish()
    }
}

impl HnswIndex {
    /// An empty index.
    pub fn new(dim: usize, metric: Metric, params: HnswParams) -> Result<Self> {
        check_dim(dim)?;
        params.check()?;
        Ok(Self {
            dim,
            metric,
            kernels: Kernels::best(),
            params,
            m0: 2 * params.m,
            entry: NONE,
            max_level: 0,
            dead: 0,
            vamana: None,
            scratch: ScratchPool::default(),
            store: Owned {
                vectors: VectorStore::default(),
                levels: Vec::new(),
                upper_offsets: Vec::new(),
                links0: Vec::new(),
                upper: Vec::new(),
                rng: Rng::new(params.seed),
                deleted: Vec::new(),
                free: Vec::new(),
            },
        })
    }

    /// Stores the vectors in binary16 from now on: every vector is rounded to the nearest
    /// binary16 value (at most 2^-11 relative; for unit vectors far below the graph's own
    /// error), searches read two bytes per dimension instead of four, and the file keeps only
    /// the binary16 rows (`vectors-f16`), half the vector bytes. Distances are computed from the
    /// `f32` query to the rounded vectors and are identical on every ISA and in the browser.
    /// Later inserts are rounded the same way. Fails, changing nothing, if a stored value lies
    /// beyond ±65504.
    pub fn store_f16(&mut self) -> Result<()> {
        // Only the binary16 rows stay: the build, searches, `get_decoded` and the file all read
        // them, and the index holds half the vector bytes.
        self.store.vectors.rows.make_f16(self.dim)
    }

    /// Quantizes the stored vectors to one byte per dimension (ranges learnt from the live
    /// vectors) and makes searches walk the graph over the codes, a quarter of the bytes per
    /// distance. With `rerank_factor` R > 0 the best `k × R` candidates of a walk (at most
    /// `ef`) are re-ranked exactly with the `f32` vectors, and results carry exact distances;
    /// with 0 the index answers from codes alone and its file keeps only the codes (about a
    /// quarter of the vector bytes). Later inserts are encoded with the same ranges (clamped).
    /// The graph itself is built, and keeps being extended, over the exact vectors.
    pub fn quantize_sq8(&mut self, rerank_factor: usize) -> Result<()> {
        // Ranges from the live rows in place: a copy of every vector would double the memory
        // for a moment (and in wasm, whose memory never shrinks, for good).
        let half = HalfKernels::new(self.metric, self.kernels);
        let deleted = &self.store.deleted;
        let live = |i: usize| deleted.get(i / 64).is_none_or(|w| (w >> (i % 64)) & 1 == 0);
        self.store.vectors.quantize_sq8(self.dim, &half, live, rerank_factor)
    }

    /// Makes room for `additional` more vectors up front, so a large build does not grow its
    /// arrays by doubling (which briefly holds old and new copies).
    /// More than the index can ever hold (`u32` slots), or memory that cannot be had, is an
    /// error rather than an abort.
    pub fn reserve(&mut self, additional: usize) -> Result<()> {
        use crate::scratch::try_reserve_more;
        crate::scratch::check_capacity(self.store.levels.len(), additional)?;
        // Checked up front, so the hinted reservations below cannot overflow or fail.
        let too_big =
            |what, per: usize| Error::OutOfMemory { what, bytes: additional as u64 * per as u64 * 4 };
        let floats = additional.checked_mul(self.dim).ok_or(too_big("the vectors", self.dim))?;
        let links = additional.checked_mul(self.m0 + 1).ok_or(too_big("the graph", self.m0 + 1))?;
        self.store.vectors.rows.try_reserve_more(floats)?;
        try_reserve_more(&mut self.store.links0, links, "the graph")?;
        self.store.vectors.rows.reserve_exact(floats);
        self.store.levels.reserve_exact(additional);
        self.store.upper_offsets.reserve_exact(additional);
        memory::reserve_exact_huge(&mut self.store.links0, links);
        // About one node in m has upper levels, each a block of m + 1 words.
        self.store.upper.reserve(additional / self.params.m.max(1) * (self.params.m + 1) * 2);
        Ok(())
    }

    /// The top level of node `id` (0 for an unknown id).
    pub fn node_level(&self, id: u32) -> u8 {
        self.store.levels.get(id as usize).copied().unwrap_or(0)
    }

    /// The graph over the owned atomics, as the build links it.
    fn graph(&self) -> Graph<'_, [AtomicU32]> {
        self.graph_over(&self.store.links0, &self.store.upper)
    }
}

/// Runs `$body` with `$g` bound to the index's graph, monomorphised for its link words (one
/// branch per call, none inside the walk).
macro_rules! with_graph {
    ($index:expr, |$g:ident| $body:expr) => {
        match $index.store.links() {
            store::Links::Atomic(links0, upper) => {
                let $g = $index.graph_over(links0, upper);
                $body
            }
            store::Links::Plain(links0, upper) => {
                let $g = $index.graph_over(links0, upper);
                $body
            }
            store::Links::Packed(links0, upper) => {
                let $g = $index.graph_over(links0, upper);
                $body
            }
        }
    };
}

impl<S: GraphStore> HnswIndex<S> {
    /// The graph over `links0` and `upper` and the store's vectors.
    fn graph_over<'a, L: ?Sized + LinkWords>(&'a self, links0: &'a L, upper: &'a L) -> Graph<'a, L> {
        let rows = self.store.rows();
        Graph {
            kernels: self.kernels,
            metric: self.metric,
            dim: self.dim,
            m: self.params.m,
            m0: self.m0,
            vectors: rows.vectors.rows.f32().unwrap_or(&[]),
            upper_offsets: rows.upper_offsets,
            links0,
            upper,
            count: rows.count,
            entry: self.entry,
            max_level: self.max_level,
            deleted: rows.deleted,
            sq: rows.vectors.sq,
            half: rows
                .vectors
                .rows
                .f16()
                .map(|rows| HalfData { rows, kernels: HalfKernels::new(self.metric, self.kernels) }),
        }
    }

    /// Uses `kernels` instead of the best detected ones (results do not change: every kernel
    /// path gives bit-identical distances).
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// Construction parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// The highest level in the graph.
    pub fn max_level(&self) -> u8 {
        self.max_level
    }

    /// Number of slots, live or deleted (ids of live vectors are below it).
    pub fn slot_count(&self) -> usize {
        self.store.count()
    }

    /// Whether slot `id` holds a deleted vector.
    pub fn is_deleted(&self, id: u32) -> bool {
        // Per-slot checks (filters, JS result mapping) read the bitset alone, not every row.
        self.store.deleted().get(id as usize / 64).is_some_and(|w| (w >> (id % 64)) & 1 == 1)
    }

    /// Whether the index stores its vectors in binary16 ([`HnswIndex::store_f16`]).
    pub fn stores_f16(&self) -> bool {
        self.store.rows().vectors.rows.form() == VectorForm::F16
    }

    /// The vectors: rows in their form and, once quantized, the SQ8 codes.
    pub fn vectors(&self) -> Vectors<'_> {
        self.store.rows().vectors
    }

    /// The scalar quantizer searches use, if the index is quantized.
    pub fn sq_quantizer(&self) -> Option<&ScalarQuantizer> {
        self.store.rows().vectors.sq.map(|s| s.quantizer)
    }

    /// The default re-rank factor of a quantized index (0: codes only).
    pub fn sq_rerank(&self) -> Option<usize> {
        self.store.rows().vectors.sq.map(|s| s.rerank)
    }

    fn check_live(&self, id: u32) -> Result<()> {
        let count = self.slot_count();
        if (id as usize) < count && !self.is_deleted(id) {
            Ok(())
        } else {
            Err(Error::UnknownId { id: id as u64, count: count as u64 })
        }
    }

    /// The stored vector `id` (normalised, for cosine), read in place; deleted ids are unknown.
    /// An index that keeps binary16 rows or only SQ8 codes has no `f32` rows to lend: use
    /// [`HnswIndex::get_decoded`].
    pub fn get(&self, id: u32) -> Result<&[f32]> {
        self.check_live(id)?;
        self.store.rows().vectors.rows.lend(self.dim, id, self.slot_count())
    }

    /// A copy of the vector `id`: its `f32` row, or decoded from its binary16 row or, in a
    /// codes-only file, its SQ8 code.
    pub fn get_decoded(&self, id: u32) -> Result<Vec<f32>> {
        self.check_live(id)?;
        let vectors = self.store.rows().vectors;
        match (vectors.rows, vectors.sq) {
            // A codes-only file: its vectors are its decoded codes.
            (Rows::Absent, Some(sq)) => {
                let s = id as usize * self.dim;
                let mut out = alloc::vec![0.0; self.dim];
                sq.quantizer.decode_into(&sq.codes[s..s + self.dim], &mut out);
                Ok(out)
            }
            (rows, _) => {
                rows.copy_row(&HalfKernels::new(self.metric, self.kernels), self.dim, id, self.slot_count())
            }
        }
    }

    /// A flat (Vamana) graph's parameters.
    pub(crate) fn vamana_params(&self) -> Option<VamanaParams> {
        self.vamana
    }

    /// The entry point (`None` while the graph has none).
    pub(crate) fn entry_point(&self) -> Option<u32> {
        (self.entry != NONE).then_some(self.entry)
    }

    /// Deleted nodes that still have links (a Vamana graph's deletes awaiting consolidation),
    /// in one pass over the graph.
    pub(crate) fn linked_deleted(&self) -> usize {
        let n = self.slot_count() as u32;
        with_graph!(self, |g| (0..n).filter(|&i| g.is_deleted(i) && g.list(i, 0).1 > 0).count())
    }

    /// Node `id`'s level-0 links (empty for an unknown id).
    pub(crate) fn level0_links(&self, id: u32) -> Vec<u32> {
        if id as usize >= self.slot_count() {
            return Vec::new();
        }
        with_graph!(self, |g| {
            let (start, len) = g.list(id, 0);
            (start..start + len).map(|i| g.link(0, i)).collect()
        })
    }

    /// Searches with caller-owned scratch (no allocation once it has grown).
    pub fn search_with(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        scratch: &mut Scratch,
        out: &mut Vec<Neighbor>,
    ) -> Result<()> {
        with_graph!(self, |g| search_graph(&g, query, k, params, filter, scratch, out))
    }

    /// Mean and maximum level-0 degree (graph diagnostics).
    pub fn degree_stats(&self) -> (f64, usize) {
        let n = self.slot_count();
        let (total, max) = with_graph!(self, |g| (0..n as u32)
            .map(|id| g.list(id, 0).1)
            .fold((0usize, 0usize), |(t, m), len| (t + len, m.max(len))));
        (total as f64 / n.max(1) as f64, max)
    }
}

impl<S: GraphStore> VectorSearch for HnswIndex<S> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn metric(&self) -> Metric {
        self.metric
    }
    fn len(&self) -> usize {
        self.slot_count() - self.dead
    }
    fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut Vec<Neighbor>,
    ) -> Result<SearchStats> {
        self.scratch.with(|s| {
            self.search_with(query, k, params, filter, s, out)?;
            Ok(s.stats())
        })
    }
}

/// How the two stores lend their data to the one implementation (sealed: only [`Owned`] and
/// [`Mapped`] are stores).
mod store {
    use core::sync::atomic::AtomicU32;

    use crate::vectors::Vectors;

    /// The vectors and per-node arrays of a store.
    pub struct Rows<'a> {
        pub(crate) vectors: Vectors<'a>,
        pub(crate) levels: &'a [u8],
        pub(crate) upper_offsets: &'a [u32],
        pub(crate) deleted: &'a [u64],
        pub(crate) count: usize,
    }

    /// A store's link words: atomics (owned, linked in parallel), or a file's words of four
    /// or (a flat graph of fewer than 2^24 nodes) three bytes.
    pub enum Links<'a> {
        Atomic(&'a [AtomicU32], &'a [AtomicU32]),
        Plain(&'a [u32], &'a [u32]),
        Packed(&'a crate::graph::Packed24, &'a crate::graph::Packed24),
    }

    pub trait Sealed {
        fn rows(&self) -> Rows<'_>;
        fn links(&self) -> Links<'_>;
        /// Slots, live or deleted.
        fn count(&self) -> usize;
        /// The deleted-slot bitset (empty when nothing is deleted).
        fn deleted(&self) -> &[u64];
    }

    impl Sealed for super::Owned {
        fn rows(&self) -> Rows<'_> {
            Rows {
                vectors: self.vectors.view(),
                levels: &self.levels,
                upper_offsets: &self.upper_offsets,
                deleted: &self.deleted,
                count: self.levels.len(),
            }
        }
        fn links(&self) -> Links<'_> {
            Links::Atomic(&self.links0, &self.upper)
        }
        fn count(&self) -> usize {
            self.levels.len()
        }
        fn deleted(&self) -> &[u64] {
            &self.deleted
        }
    }
}
