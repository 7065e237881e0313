//! Vamana (DiskANN): a flat graph of at most R links per node, entered at the medoid, built with
//! RobustPrune(α) in two passes and searched by the graph layer's best-first walk with list size
//! L (`SearchParams::ef`). The graph the SSD-resident index (issue 17) will store on disk.
//!
//! Today it lives in memory and is built once over all its vectors, on one thread (seeded, so
//! reproducible) or on all rayon threads; its own file kind, inserts and deletes, and the
//! browser class are the next steps of issue 16.

use alloc::vec::Vec;

use crate::hnsw::HnswIndex;
pub use crate::hnsw::VamanaParams;
use crate::{Filter, Metric, Neighbor, Result, SearchParams, VectorSearch};

/// A Vamana graph index over its own vectors.
#[derive(Debug)]
pub struct VamanaIndex {
    graph: HnswIndex,
    params: VamanaParams,
    medoid: Option<u32>,
}

impl VamanaIndex {
    /// An empty index; [`VamanaIndex::build`] fills it.
    pub fn new(dim: usize, metric: Metric, params: VamanaParams) -> Result<Self> {
        Ok(Self { graph: HnswIndex::new_flat(dim, metric, &params)?, params, medoid: None })
    }

    /// Builds the graph over row-major `vectors` on this thread, in the seeded order (the same
    /// seed gives the same graph on every target). Once: a built index refuses a second build.
    /// Slot ids are row numbers.
    pub fn build(&mut self, vectors: &[f32]) -> Result<()> {
        self.medoid = Some(self.graph.build_vamana(vectors, &self.params, false)?);
        Ok(())
    }

    /// [`VamanaIndex::build`] on all rayon threads: each node's list changes under its own
    /// lock, so the graph depends on timing and is not reproducible.
    #[cfg(feature = "parallel")]
    pub fn build_parallel(&mut self, vectors: &[f32]) -> Result<()> {
        self.medoid = Some(self.graph.build_vamana(vectors, &self.params, true)?);
        Ok(())
    }

    /// The construction parameters.
    pub fn params(&self) -> VamanaParams {
        self.params
    }

    /// The entry point of every search: the row nearest the mean (`None` before the build).
    pub fn medoid(&self) -> Option<u32> {
        self.medoid
    }

    /// The out-links of node `id` (empty for an unknown id).
    pub fn neighbors(&self, id: u32) -> Vec<u32> {
        self.graph.level0_links(id)
    }
}

impl VectorSearch for VamanaIndex {
    fn dim(&self) -> usize {
        self.graph.dim()
    }
    fn metric(&self) -> Metric {
        self.graph.metric()
    }
    fn len(&self) -> usize {
        self.graph.len()
    }
    fn search_into(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut Vec<Neighbor>,
    ) -> Result<()> {
        self.graph.search_into(query, k, params, filter, out)
    }
}
