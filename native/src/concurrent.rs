//! An HNSW index that takes inserts while it is being searched: one writer at a time, any
//! number of readers, and readers are only held up for the moments a slot is reserved or the
//! entry point moves — not while the new node is linked.

use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use neardb_core::hnsw::Scratch;
use neardb_core::{Filter, HnswIndex, Neighbor, Result, SearchParams, SearchStats, VectorSearch};

/// A shareable (`Sync`) HNSW index for one writer and many readers.
pub struct ConcurrentHnsw {
    index: RwLock<HnswIndex>,
    /// Serialises writers and holds the writer's scratch.
    writer: Mutex<Scratch>,
}

impl ConcurrentHnsw {
    /// Wraps an index.
    pub fn new(index: HnswIndex) -> Self {
        Self { index: RwLock::new(index), writer: Mutex::new(Scratch::default()) }
    }

    // A panic cannot happen while these locks are held (no code path panics on input), so a
    // poisoned lock still guards a consistent index: take it rather than fail.
    fn read(&self) -> RwLockReadGuard<'_, HnswIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HnswIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts one vector while searches go on; returns its id.
    pub fn insert(&self, vector: &[f32]) -> Result<u32> {
        let mut scratch = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let id = self.write().reserve_node(vector)?;
        let raises_top = {
            let index = self.read();
            index.link_node(id, &mut scratch)?;
            index.node_level(id) > index.max_level()
        };
        // Rare (one node in thousands): only then are readers held up a second time.
        if raises_top {
            self.write().publish_node(id);
        }
        Ok(id)
    }

    /// Inserts row-major `vectors` while searches go on, reserving all their slots under one
    /// exclusive moment (readers wait once per batch, not once per vector); returns their ids.
    /// The batch is validated first: on error nothing is added.
    pub fn insert_batch(&self, vectors: &[f32]) -> Result<Vec<u32>> {
        let mut scratch = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let ids = {
            let mut index = self.write();
            let dim = index.dim();
            neardb_core::check_vectors(vectors, dim)?;
            let mut ids = Vec::with_capacity(vectors.len() / dim);
            for v in vectors.chunks_exact(dim) {
                ids.push(index.reserve_node(v)?);
            }
            ids
        };
        let mut raises_top = Vec::new();
        {
            let index = self.read();
            for &id in &ids {
                index.link_node(id, &mut scratch)?;
                if index.node_level(id) > index.max_level() {
                    raises_top.push(id);
                }
            }
        }
        if !raises_top.is_empty() {
            let mut index = self.write();
            for id in raises_top {
                index.publish_node(id);
            }
        }
        Ok(ids)
    }

    /// Searches the index as it is at this moment.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
    ) -> Result<Vec<Neighbor>> {
        self.read().search(query, k, params, filter)
    }

    /// [`ConcurrentHnsw::search`] into `out`, also saying what the search did.
    pub fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut Vec<Neighbor>,
    ) -> Result<SearchStats> {
        self.read().search_with_stats(query, k, params, filter, out)
    }

    /// Runs `f` on the index as it is at this moment (inserts wait until it returns).
    pub fn with_index<R>(&self, f: impl FnOnce(&HnswIndex) -> R) -> R {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        f(&self.read())
    }

    /// A copy of stored vector `id`.
    pub fn vector(&self, id: u32) -> Result<Vec<f32>> {
        self.read().get_decoded(id)
    }

    /// Number of live vectors.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the index holds no live vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index, once no one else uses it.
    pub fn into_inner(self) -> HnswIndex {
        self.index.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}
