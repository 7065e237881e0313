//! NearDB core: every search algorithm, the distance kernels and the index file format,
//! written once for `no_std + alloc` so the same code runs natively and in WebAssembly.
//!
//! Conventions shared by every index:
//! - internal ids are dense `u32` slots in insertion order;
//! - every [`Metric`] is "smaller is closer" (see [`Metric`] for what each returns);
//! - results are sorted by distance, ties broken by the smaller id;
//! - bad input returns an [`Error`], never a panic.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod choice;
mod error;
pub mod filter;
pub mod flat;
pub mod format;
pub mod graph;
pub mod hnsw;
pub mod ids;
pub mod ivf;
pub mod lsh;
mod memory;
mod metric;
mod neighbor;
pub mod payload;
mod plan;
pub mod quant;
pub mod rng;
mod scratch;
pub mod simd;
mod validate;
pub mod vamana;
pub mod vectors;

pub use choice::{Choice, ExpectedNames, UnknownChoice};
pub use error::{Error, ZeroVectorKind};
pub use filter::{for_each_allowed, AllowedIds, Bitset, Filter, IdList, Predicate};
pub use flat::{FlatIndex, FlatView};
pub use format::{FormatError, IndexKind};
pub use hnsw::{HnswIndex, HnswParams, HnswView};
pub use ids::{IdMap, NO_ID};
pub use ivf::{IvfPqIndex, IvfPqParams, IvfPqView};
pub use lsh::{BinaryIndex, BinaryParams, BinaryView};
pub use metric::{Metric, UnknownMetric};
pub use neighbor::{Neighbor, TopK};
pub use payload::{Condition, FieldValue, Keyword, PayloadFilter, PayloadIndex};
pub use plan::{FilterStrategy, Plan, SearchStats};
pub use simd::{Isa, Kernels};
pub use validate::{all_in_range, check_query, check_vectors, in_range, MAX_COMPONENT};
pub use vamana::{VamanaIndex, VamanaParams, VamanaView};

/// Result alias for this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// The largest dimension an index accepts. Large enough for any embedding model in use,
/// small enough that `dim * 4` bytes per vector never overflows a `u32` section stride.
pub const MAX_DIM: usize = 65_536;

/// What every index offers for search, so flat, HNSW, IVF-PQ and Vamana are interchangeable
/// in the CLI, the benchmarks and the browser.
pub trait VectorSearch {
    /// Dimension of the stored vectors.
    fn dim(&self) -> usize;
    /// Metric the index ranks by.
    fn metric(&self) -> Metric;
    /// Number of vectors stored (live slots).
    fn len(&self) -> usize;
    /// Whether the index holds no vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes of working memory one search holds beyond its results (lookup tables, buffers),
    /// known before any search runs, so a caller running many searches at once can bound
    /// their total (the native batch search does). Indexes whose scratch is small say 0.
    fn search_scratch_bytes(&self) -> usize {
        0
    }
    /// Fills `out` with the `k` nearest neighbours of `query` (fewer if fewer match), sorted by
    /// distance then id. `out` is cleared first; its capacity is reused.
    fn search_into(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut alloc::vec::Vec<Neighbor>,
    ) -> Result<()> {
        self.search_with_stats(query, k, params, filter, out).map(|_| ())
    }

    /// [`VectorSearch::search_into`] that also says what the search did: the plan a filter
    /// led to, how many ids it allows, nodes expanded and distances computed.
    fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut alloc::vec::Vec<Neighbor>,
    ) -> Result<SearchStats>;

    /// Convenience form of [`VectorSearch::search_into`] that allocates the result.
    fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
    ) -> Result<alloc::vec::Vec<Neighbor>> {
        let mut out = alloc::vec::Vec::with_capacity(k.min(self.len()));
        self.search_into(query, k, params, filter, &mut out)?;
        Ok(out)
    }
}

/// Per-query effort knobs. Each index reads the ones it has and ignores the rest, so one
/// parameter set can drive every index in a benchmark sweep. Zero means "the index default".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SearchParams {
    /// Graph indexes: size of the candidate list (HNSW `ef`, Vamana `L`).
    pub ef: usize,
    /// IVF indexes: number of inverted lists probed.
    pub nprobe: usize,
    /// Quantized indexes: re-rank `k * rerank_factor` candidates with full vectors.
    pub rerank_factor: usize,
    /// Graph indexes: how a filtered search runs (default: the planner chooses).
    pub filter_strategy: FilterStrategy,
}

impl SearchParams {
    /// Parameters with every knob at the index default.
    pub const fn new() -> Self {
        Self { ef: 0, nprobe: 0, rerank_factor: 0, filter_strategy: FilterStrategy::Auto }
    }
    /// Sets the graph candidate-list size.
    pub const fn with_ef(mut self, ef: usize) -> Self {
        self.ef = ef;
        self
    }
    /// Sets the number of IVF lists probed.
    pub const fn with_nprobe(mut self, nprobe: usize) -> Self {
        self.nprobe = nprobe;
        self
    }
    /// Sets how a graph index answers a filtered search.
    pub const fn with_filter_strategy(mut self, strategy: FilterStrategy) -> Self {
        self.filter_strategy = strategy;
        self
    }
    /// Sets the re-rank factor.
    pub const fn with_rerank_factor(mut self, factor: usize) -> Self {
        self.rerank_factor = factor;
        self
    }
}
