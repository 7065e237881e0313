//! Vamana (DiskANN): a flat graph of at most R links per node, entered at the medoid, built with
//! RobustPrune(α) in two passes and searched by the graph layer's best-first walk with list size
//! L (`SearchParams::ef`). The graph the SSD-resident index (issue 17) stores on disk.
//!
//! Inserts and deletes follow FreshDiskANN: an insert is one search and prune at α; a delete
//! hides the node from results at once but leaves it in the graph, traversable, until
//! [`VamanaIndex::consolidate`] re-links its in-neighbours around it and frees its slot.
//!
//! The owned index and the file view share HNSW's storage (a flat graph is level 0 alone), so
//! binary16 and SQ8 storage, filters and re-ranking work as they do there.

use alloc::vec::Vec;

use crate::format::{FileInfo, IndexKind, OpenOptions};
pub use crate::hnsw::VamanaParams;
use crate::hnsw::{GraphStore, HnswIndex, HnswView, Mapped, Owned, Scratch};
use crate::quant::sq::ScalarQuantizer;
use crate::{Filter, Kernels, Metric, Neighbor, Result, SearchParams, SearchStats, VectorSearch};

/// A Vamana graph index over one of the graph stores: its own memory ([`Owned`], the default:
/// built, grown, consolidated) or a file read in place ([`VamanaView`]). Reading is written
/// once for both.
pub struct VamanaIndex<S: GraphStore = Owned> {
    graph: HnswIndex<S>,
}

impl<S: GraphStore> core::fmt::Debug for VamanaIndex<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VamanaIndex").field("params", &self.params()).field("graph", &self.graph).finish()
    }
}

/// A Vamana index read in place from file bytes (a memory map natively, a buffer in the
/// browser), every graph field validated at open.
pub type VamanaView<B> = VamanaIndex<Mapped<B>>;

impl VamanaIndex {
    /// An empty index; [`VamanaIndex::build`] (or [`VamanaIndex::add`]) fills it.
    pub fn new(dim: usize, metric: Metric, params: VamanaParams) -> Result<Self> {
        Ok(Self { graph: HnswIndex::new_flat(dim, metric, &params)? })
    }

    /// Builds the graph over row-major `vectors` on this thread, in the seeded order (the same
    /// seed gives the same graph on every target). Once: a built index refuses a second build
    /// (use [`VamanaIndex::add`]). Slot ids are row numbers.
    pub fn build(&mut self, vectors: &[f32]) -> Result<()> {
        self.graph.build_vamana(vectors, &self.params(), false).map(|_| ())
    }

    /// [`VamanaIndex::build`] on all rayon threads: each node's list changes under its own
    /// lock, so the graph depends on timing and is not reproducible.
    #[cfg(feature = "parallel")]
    pub fn build_parallel(&mut self, vectors: &[f32]) -> Result<()> {
        self.graph.build_vamana(vectors, &self.params(), true).map(|_| ())
    }

    /// [`VamanaIndex::build`] over rows handed over instead of borrowed: the build works in
    /// them, holding one copy of the rows fewer at its peak.
    pub fn build_owned(&mut self, vectors: Vec<f32>) -> Result<()> {
        self.graph.build_vamana_owned(vectors, &self.params(), false).map(|_| ())
    }

    /// [`VamanaIndex::build_parallel`] over rows handed over (see [`VamanaIndex::build_owned`]).
    #[cfg(feature = "parallel")]
    pub fn build_parallel_owned(&mut self, vectors: Vec<f32>) -> Result<()> {
        self.graph.build_vamana_owned(vectors, &self.params(), true).map(|_| ())
    }

    /// Inserts row-major `vectors`; returns their ids. An empty index is built (two passes);
    /// otherwise each vector is linked by one search from the medoid and RobustPrune at α.
    /// Slots freed by [`VamanaIndex::consolidate`] are reused first. The batch is validated
    /// first, so on error nothing is added. Seeded and sequential: reproducible.
    pub fn add(&mut self, vectors: &[f32]) -> Result<Vec<u32>> {
        self.graph.vamana_insert(vectors, false)
    }

    /// [`VamanaIndex::add`] on all rayon threads (not reproducible: links depend on timing).
    #[cfg(feature = "parallel")]
    pub fn add_parallel(&mut self, vectors: &[f32]) -> Result<Vec<u32>> {
        self.graph.vamana_insert(vectors, true)
    }

    /// Deletes `id`: it leaves every result at once and stays in the graph, traversable,
    /// until [`VamanaIndex::consolidate`].
    pub fn remove(&mut self, id: u32) -> Result<()> {
        self.graph.vamana_remove(id)
    }

    /// Re-links the in-neighbours of every deleted node around it (RobustPrune over their
    /// links and the deleted node's), then frees the deleted slots for later inserts. Returns
    /// how many slots it freed. The result does not depend on the order nodes are visited in.
    pub fn consolidate(&mut self) -> usize {
        self.graph.vamana_consolidate(false)
    }

    /// [`VamanaIndex::consolidate`] on all rayon threads (the same graph: each node's new
    /// list depends only on lists the pass does not change).
    #[cfg(feature = "parallel")]
    pub fn consolidate_parallel(&mut self) -> usize {
        self.graph.vamana_consolidate(true)
    }

    /// Stores the vectors in binary16 (see [`HnswIndex::store_f16`]); call before adding.
    pub fn store_f16(&mut self) -> Result<()> {
        self.graph.store_f16()
    }

    /// Quantizes the stored vectors to one byte per dimension and walks the graph over the
    /// codes, re-ranking `k × rerank_factor` candidates exactly (see
    /// [`HnswIndex::quantize_sq8`]).
    pub fn quantize_sq8(&mut self, rerank_factor: usize) -> Result<()> {
        self.graph.quantize_sq8(rerank_factor)
    }

    /// Writes the index in the file format (kind `vamana`) to `sink`; returns the bytes written.
    pub fn write<E>(
        &self,
        sink: &mut dyn FnMut(&[u8]) -> core::result::Result<(), E>,
    ) -> core::result::Result<u64, E> {
        self.graph.write(sink)
    }

    /// Like [`write`](Self::write), storing caller ids (see [`HnswIndex::write_with_ids`]).
    pub fn write_with_ids<E>(
        &self,
        ids: &crate::IdMap,
        sink: &mut dyn FnMut(&[u8]) -> core::result::Result<(), E>,
    ) -> core::result::Result<u64, E> {
        self.graph.write_with_ids(ids, sink)
    }

    /// The index as file-format bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.graph.to_bytes()
    }
}

impl<S: GraphStore> VamanaIndex<S> {
    /// Whether the index stores its vectors in binary16.
    pub fn stores_f16(&self) -> bool {
        self.graph.stores_f16()
    }

    /// The scalar quantizer searches use, if the index is quantized.
    pub fn sq_quantizer(&self) -> Option<&ScalarQuantizer> {
        self.graph.sq_quantizer()
    }

    /// Uses `kernels` instead of the best detected ones.
    pub fn with_kernels(self, kernels: Kernels) -> Self {
        Self { graph: self.graph.with_kernels(kernels) }
    }

    /// The construction parameters.
    pub fn params(&self) -> VamanaParams {
        self.graph.vamana_params().unwrap_or_default()
    }

    /// The entry point of every search: the row nearest the mean of the build's vectors
    /// (`None` while the index is empty).
    pub fn medoid(&self) -> Option<u32> {
        self.graph.entry_point()
    }

    /// The out-links of node `id` (empty for an unknown id).
    pub fn neighbors(&self, id: u32) -> Vec<u32> {
        self.graph.level0_links(id)
    }

    /// The stored vector `id` (normalised, for cosine).
    pub fn get(&self, id: u32) -> Result<&[f32]> {
        self.graph.get(id)
    }

    /// The vector `id`, decoded from binary16 or SQ8 codes where the index keeps only those.
    pub fn get_decoded(&self, id: u32) -> Result<Vec<f32>> {
        self.graph.get_decoded(id)
    }

    /// Number of slots, live or deleted.
    pub fn slot_count(&self) -> usize {
        self.graph.slot_count()
    }

    /// Whether slot `id` holds a deleted vector.
    pub fn is_deleted(&self, id: u32) -> bool {
        self.graph.is_deleted(id)
    }

    /// Mean and maximum out-degree.
    pub fn degree_stats(&self) -> (f64, usize) {
        self.graph.degree_stats()
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
        self.graph.search_with(query, k, params, filter, scratch, out)
    }

    /// Deleted nodes still in the graph, waiting for [`VamanaIndex::consolidate`].
    pub fn pending_deletes(&self) -> usize {
        self.graph.linked_deleted()
    }
}

impl<B: AsRef<[u8]>> VamanaView<B> {
    /// Validates `bytes` and opens it for search without copying.
    pub fn open(bytes: B) -> Result<Self> {
        Self::open_with(bytes, OpenOptions::default())
    }

    /// Like [`VamanaView::open`]; checksums and vector values are verified only when
    /// `opts.verify_checksums`.
    pub fn open_with(bytes: B, opts: OpenOptions) -> Result<Self> {
        Ok(Self { graph: HnswView::open_kind(bytes, opts, IndexKind::Vamana)? })
    }

    /// The validated header and section table.
    pub fn info(&self) -> &FileInfo {
        self.graph.info()
    }

    /// The file's caller ids, one per slot, when it has an `ids` section.
    pub fn ids(&self) -> Option<&[u32]> {
        self.graph.ids()
    }

    /// The underlying file bytes.
    pub fn bytes(&self) -> &[u8] {
        self.graph.bytes()
    }

    /// An owned copy that takes inserts, deletes and consolidation.
    pub fn to_index(&self) -> VamanaIndex {
        VamanaIndex { graph: self.graph.to_index() }
    }
}

impl<S: GraphStore> VectorSearch for VamanaIndex<S> {
    fn dim(&self) -> usize {
        self.graph.dim()
    }
    fn metric(&self) -> Metric {
        self.graph.metric()
    }
    fn len(&self) -> usize {
        self.graph.len()
    }
    fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut Vec<Neighbor>,
    ) -> Result<SearchStats> {
        self.graph.search_with_stats(query, k, params, filter, out)
    }
}
