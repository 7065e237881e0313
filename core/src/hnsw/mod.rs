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

mod reorder;
mod vamana;
mod view;

pub use crate::graph::Scratch;
pub use vamana::VamanaParams;
pub use view::HnswView;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::graph::{search_graph, Cand, Graph, HalfData, Scorer, ScratchPool, SqData};

use crate::quant::sq::ScalarQuantizer;
use crate::simd::half::HalfKernels;

use crate::format::{write_index, IndexKind, SectionKind, SectionRef};
use crate::memory;
use crate::rng::Rng;
use crate::validate::{check_dim, check_vectors};
use crate::{Error, Filter, Kernels, Metric, Neighbor, Result, SearchParams, VectorSearch, ZeroVectorKind};

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

/// An HNSW index that owns its vectors and graph and can grow.
pub struct HnswIndex {
    dim: usize,
    metric: Metric,
    kernels: Kernels,
    params: HnswParams,
    m0: usize,
    vectors: Vec<f32>,
    levels: Vec<u8>,
    upper_offsets: Vec<u32>,
    links0: Vec<AtomicU32>,
    upper: Vec<AtomicU32>,
    entry: u32,
    max_level: u8,
    rng: Rng,
    scratch: ScratchPool,
    /// Deleted slots (bit set = deleted); empty while nothing was ever deleted.
    deleted: Vec<u64>,
    /// Deleted slots waiting to be reused by later inserts.
    free: Vec<u32>,
    /// How many slots are deleted (in `free`, or in a Vamana graph also awaiting
    /// consolidation).
    dead: usize,
    /// Scalar-quantized codes searches traverse with (see [`HnswIndex::quantize_sq8`]).
    sq: Option<SqStore>,
    /// Binary16 rows of every slot when the index stores its vectors in binary16 (see
    /// [`HnswIndex::store_f16`]); `vectors` is then empty.
    f16: Option<Vec<u16>>,
    /// A flat graph (Vamana) and its parameters: every node on level 0 alone, `m0` = R links
    /// each, entered at the medoid.
    vamana: Option<VamanaParams>,
}

/// An index's scalar quantizer, the codes of every slot, and the default re-rank factor
/// (0: the index answers from codes alone and its file keeps no `f32` vectors).
#[derive(Clone, Debug)]
struct SqStore {
    quantizer: ScalarQuantizer,
    codes: Vec<u8>,
    rerank: usize,
}

impl core::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("params", &self.params)
            .field("len", &self.levels.len())
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
            vectors: Vec::new(),
            levels: Vec::new(),
            upper_offsets: Vec::new(),
            links0: Vec::new(),
            upper: Vec::new(),
            entry: NONE,
            max_level: 0,
            rng: Rng::new(params.seed),
            scratch: ScratchPool::default(),
            deleted: Vec::new(),
            free: Vec::new(),
            dead: 0,
            sq: None,
            f16: None,
            vamana: None,
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
        if self.f16.is_some() {
            return Ok(());
        }
        check_half_range(&self.vectors, self.dim)?;
        let mut rows = Vec::new();
        memory::reserve_exact_huge(&mut rows, self.vectors.capacity());
        crate::simd::half::encode_into(&self.vectors, &mut rows);
        // Only the binary16 rows stay: the build, searches, `get_decoded` and the file all read
        // them, and the index holds half the vector bytes.
        self.vectors = Vec::new();
        self.f16 = Some(rows);
        Ok(())
    }

    /// Whether the index stores its vectors in binary16 ([`HnswIndex::store_f16`]).
    pub fn stores_f16(&self) -> bool {
        self.f16.is_some()
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
        let (quantizer, codes) = match &self.f16 {
            None => {
                let live = self
                    .vectors
                    .chunks_exact(self.dim)
                    .enumerate()
                    .filter(|&(i, _)| !self.is_deleted(i as u32))
                    .map(|(_, row)| row);
                let quantizer = ScalarQuantizer::train_rows(live)?;
                let codes = quantizer.encode(&self.vectors);
                (quantizer, codes)
            }
            Some(rows) => {
                // Binary16 rows are decoded one at a time, never all at once.
                let half = HalfKernels::new(self.metric, self.kernels);
                let decode = |row: &[u16]| {
                    let mut out = Vec::with_capacity(self.dim);
                    half.decode_into(row, &mut out);
                    out
                };
                let live = rows
                    .chunks_exact(self.dim)
                    .enumerate()
                    .filter(|&(i, _)| !self.is_deleted(i as u32))
                    .map(|(_, row)| decode(row));
                let quantizer = ScalarQuantizer::train_rows(live)?;
                let mut codes = alloc::vec![0u8; rows.len()];
                for (row, c) in rows.chunks_exact(self.dim).zip(codes.chunks_exact_mut(self.dim)) {
                    quantizer.encode_into(&decode(row), c);
                }
                (quantizer, codes)
            }
        };
        self.sq = Some(SqStore { quantizer, codes, rerank: rerank_factor });
        Ok(())
    }

    /// The scalar quantizer searches use, if the index is quantized.
    pub fn sq_quantizer(&self) -> Option<&ScalarQuantizer> {
        self.sq.as_ref().map(|s| &s.quantizer)
    }

    /// The default re-rank factor of a quantized index (0: codes only).
    pub fn sq_rerank(&self) -> Option<usize> {
        self.sq.as_ref().map(|s| s.rerank)
    }

    /// Uses `kernels` instead of the best detected ones.
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// Makes room for `additional` more vectors up front, so a large build does not grow its
    /// arrays by doubling (which briefly holds old and new copies).
    /// More than the index can ever hold (`u32` slots), or memory that cannot be had, is an
    /// error rather than an abort.
    pub fn reserve(&mut self, additional: usize) -> Result<()> {
        use crate::scratch::try_reserve_more;
        crate::scratch::check_capacity(self.levels.len(), additional)?;
        // Checked up front, so the hinted reservations below cannot overflow or fail.
        let too_big =
            |what, per: usize| Error::OutOfMemory { what, bytes: additional as u64 * per as u64 * 4 };
        let floats = additional.checked_mul(self.dim).ok_or(too_big("the vectors", self.dim))?;
        let links = additional.checked_mul(self.m0 + 1).ok_or(too_big("the graph", self.m0 + 1))?;
        match &mut self.f16 {
            Some(rows) => try_reserve_more(rows, floats, "the binary16 vectors")?,
            None => try_reserve_more(&mut self.vectors, floats, "the vectors")?,
        }
        try_reserve_more(&mut self.links0, links, "the graph")?;
        match &mut self.f16 {
            Some(rows) => memory::reserve_exact_huge(rows, floats),
            None => memory::reserve_exact_huge(&mut self.vectors, floats),
        }
        self.levels.reserve_exact(additional);
        self.upper_offsets.reserve_exact(additional);
        memory::reserve_exact_huge(&mut self.links0, links);
        // About one node in m has upper levels, each a block of m + 1 words.
        self.upper.reserve(additional / self.params.m.max(1) * (self.params.m + 1) * 2);
        Ok(())
    }

    /// Construction parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// The top level of node `id` (0 for an unknown id).
    pub fn node_level(&self, id: u32) -> u8 {
        self.levels.get(id as usize).copied().unwrap_or(0)
    }

    /// The highest level in the graph.
    pub fn max_level(&self) -> u8 {
        self.max_level
    }

    /// The stored vector `id` (normalised, for cosine); deleted ids are unknown. An index
    /// that stores binary16 has no `f32` rows to lend: use [`HnswIndex::get_decoded`].
    pub fn get(&self, id: u32) -> Result<&[f32]> {
        self.check_live(id)?;
        if self.f16.is_some() {
            return Err(Error::InvalidParameter {
                name: "id",
                reason: "this index stores binary16 vectors; read them with get_decoded",
            });
        }
        let s = id as usize * self.dim;
        Ok(&self.vectors[s..s + self.dim])
    }

    /// A copy of stored vector `id`, decoded from binary16 when the index stores that.
    pub fn get_decoded(&self, id: u32) -> Result<Vec<f32>> {
        self.check_live(id)?;
        let s = id as usize * self.dim;
        match &self.f16 {
            Some(rows) => {
                let mut out = Vec::with_capacity(self.dim);
                HalfKernels::new(self.metric, self.kernels).decode_into(&rows[s..s + self.dim], &mut out);
                Ok(out)
            }
            None => Ok(self.vectors[s..s + self.dim].to_vec()),
        }
    }

    fn check_live(&self, id: u32) -> Result<()> {
        if (id as usize) < self.levels.len() && !self.is_deleted(id) {
            Ok(())
        } else {
            Err(Error::UnknownId { id: id as u64, count: self.levels.len() as u64 })
        }
    }

    fn draw_level(&mut self) -> u8 {
        if self.vamana.is_some() {
            return 0;
        }
        let ml = 1.0 / libm::log(self.params.m as f64);
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u = 1.0 - self.rng.next_f64();
        let level = libm::floor(-libm::log(u) * ml);
        if level >= MAX_LEVEL as f64 {
            MAX_LEVEL
        } else {
            level as u8
        }
    }

    /// Validates and (for cosine) normalises a batch; returns it ready to store.
    fn prepare(&self, vectors: &[f32]) -> Result<Vec<f32>> {
        if vectors.len() < self.dim && !vectors.is_empty() {
            return Err(Error::DimensionMismatch { expected: self.dim, got: vectors.len() });
        }
        let n = check_vectors(vectors, self.dim)?;
        let count = self.levels.len();
        if count + n > u32::MAX as usize - 1 {
            return Err(Error::CapacityExceeded {
                count: count as u64,
                adding: n as u64,
                max: u32::MAX as u64 - 1,
            });
        }
        let mut data = vectors.to_vec();
        if self.metric.normalizes() {
            for (i, v) in data.chunks_exact_mut(self.dim).enumerate() {
                if !self.kernels.normalize(v) {
                    return Err(Error::ZeroVector { what: ZeroVectorKind::Vector(i) });
                }
            }
        }
        if self.f16.is_some() {
            check_half_range(&data, self.dim)?;
            for x in data.iter_mut() {
                *x = crate::simd::half::from_f16(crate::simd::half::to_f16(*x));
            }
        }
        Ok(data)
    }

    /// Appends slots for `data` (vectors, drawn levels, empty link lists); returns the first id.
    fn allocate(&mut self, data: &[f32]) -> u32 {
        let first = self.levels.len() as u32;
        let n = data.len() / self.dim;
        memory::reserve_huge(&mut self.links0, n * (self.m0 + 1));
        match &mut self.f16 {
            Some(rows) => {
                memory::reserve_huge(rows, data.len());
                crate::simd::half::encode_into(data, rows);
            }
            None => {
                memory::reserve_huge(&mut self.vectors, data.len());
                self.vectors.extend_from_slice(data);
            }
        }
        if let Some(sq) = &mut self.sq {
            let at = sq.codes.len();
            sq.codes.resize(at + data.len(), 0);
            for (v, c) in data.chunks_exact(self.dim).zip(sq.codes[at..].chunks_exact_mut(self.dim)) {
                sq.quantizer.encode_into(v, c);
            }
        }
        for _ in 0..n {
            let level = self.draw_level();
            let offset = self.upper.len() as u32;
            self.levels.push(level);
            self.upper_offsets.push(offset);
            self.upper.extend((0..level as usize * (self.params.m + 1)).map(|_| AtomicU32::new(0)));
            self.links0.extend((0..self.m0 + 1).map(|_| AtomicU32::new(0)));
        }
        if !self.deleted.is_empty() {
            self.deleted.resize(self.levels.len().div_ceil(64), 0);
        }
        first
    }

    /// Inserts row-major `vectors` one at a time on this thread; returns their ids. Slots freed
    /// by [`remove`](HnswIndex::remove) are reused first. The whole batch is validated first,
    /// so on error nothing is added.
    pub fn add(&mut self, vectors: &[f32]) -> Result<Vec<u32>> {
        let data = self.prepare(vectors)?;
        let mut ids = self.reuse_slots(&data);
        let rest = &data[ids.len() * self.dim..];
        let first = self.allocate(rest);
        ids.extend(first..self.levels.len() as u32);
        let mut s = Scratch::default();
        for &id in &ids {
            self.link_new(id, &mut s, &NoLocks);
        }
        Ok(ids)
    }

    /// Step 1 of an insert that runs beside searches (see `neardb::ConcurrentHnsw`):
    /// validates `vector` and gives it a new slot, not yet linked (so no search can reach it).
    /// Needs exclusive access, briefly. Freed slots are left to batch [`add`](HnswIndex::add),
    /// whose reuse needs a pass over the whole graph.
    pub fn reserve_node(&mut self, vector: &[f32]) -> Result<u32> {
        if vector.len() != self.dim {
            return Err(Error::DimensionMismatch { expected: self.dim, got: vector.len() });
        }
        let data = self.prepare(vector)?;
        let id = self.allocate(&data);
        if self.entry == NONE {
            self.entry = id;
            self.max_level = self.levels[id as usize];
        }
        Ok(id)
    }

    /// Step 2: links a reserved node into the graph through shared access, so searches run
    /// meanwhile; the node's own lists are complete before anything links to it. One linking
    /// thread at a time (concurrent linkers would not corrupt memory but could lose links).
    pub fn link_node(&self, id: u32, scratch: &mut Scratch) -> Result<()> {
        let Some(&level) = self.levels.get(id as usize) else {
            return Err(Error::UnknownId { id: id as u64, count: self.levels.len() as u64 });
        };
        if id != self.entry {
            let g = self.graph();
            let ins = Insert {
                id,
                level,
                entry: self.entry,
                max_level: self.max_level,
                ef: self.params.ef_construction,
            };
            link_into(&g, ins, scratch, &NoLocks);
        }
        Ok(())
    }

    /// Step 3: makes a linked node the entry point if it reaches above the current top level.
    pub fn publish_node(&mut self, id: u32) {
        let level = self.node_level(id);
        if (id as usize) < self.levels.len() && level > self.max_level {
            self.entry = id;
            self.max_level = level;
        }
    }

    /// Takes freed slots for the first rows of `data`: purges every link to them, stores the
    /// new vectors and clears their lists (they keep their level, an unbiased earlier draw, so
    /// the upper-block layout stays a prefix sum). Returns the slots, to be linked.
    fn reuse_slots(&mut self, data: &[f32]) -> Vec<u32> {
        let n = (data.len() / self.dim).min(self.free.len());
        if n == 0 {
            return Vec::new();
        }
        let slots: Vec<u32> = self.free.drain(self.free.len() - n..).rev().collect();
        self.dead -= n;
        self.purge_links_to(&slots);
        for (row, &slot) in data.chunks_exact(self.dim).zip(&slots) {
            self.store_row(slot, row);
            self.links0[slot as usize * (self.m0 + 1)].store(0, Relaxed);
            let off = self.upper_offsets[slot as usize] as usize;
            for l in 0..self.levels[slot as usize] as usize {
                self.upper[off + l * (self.params.m + 1)].store(0, Relaxed);
            }
            self.deleted[slot as usize / 64] &= !(1 << (slot % 64));
        }
        slots
    }

    /// Overwrites slot `slot`'s stored row (and code) with the prepared `row`.
    fn store_row(&mut self, slot: u32, row: &[f32]) {
        let at = slot as usize * self.dim;
        match &mut self.f16 {
            Some(rows) => {
                for (h, &x) in rows[at..at + self.dim].iter_mut().zip(row) {
                    *h = crate::simd::half::to_f16(x);
                }
            }
            None => self.vectors[at..at + self.dim].copy_from_slice(row),
        }
        if let Some(sq) = &mut self.sq {
            sq.quantizer.encode_into(row, &mut sq.codes[at..at + self.dim]);
        }
    }

    /// Removes every link to `slots` from every list, choosing replacements with the heuristic
    /// among the remaining links and the removed nodes' own links (one pass over the graph).
    fn purge_links_to(&mut self, slots: &[u32]) {
        let mut gone = crate::Bitset::new(self.levels.len() as u32);
        for &s in slots {
            gone.insert(s);
        }
        let g = self.graph();
        for node in 0..self.levels.len() as u32 {
            if gone.contains(node) {
                continue;
            }
            for level in 0..=self.levels[node as usize] as usize {
                let (start, len) = g.list(node, level);
                if (start..start + len).any(|i| gone.contains(g.link(level, i))) {
                    repair_list(&g, node, level, &|id| gone.contains(id), &self.deleted);
                }
            }
        }
    }

    /// Deletes `id`: it no longer appears in results, its neighbours that linked to it are
    /// re-linked by the heuristic among their other links and its links, and its slot is
    /// reused by a later insert. Searches still pass through it until then.
    pub fn remove(&mut self, id: u32) -> Result<()> {
        let count = self.levels.len();
        if id as usize >= count || self.is_deleted(id) {
            return Err(Error::UnknownId { id: id as u64, count: count as u64 });
        }
        if self.deleted.is_empty() {
            self.deleted = alloc::vec![0; count.div_ceil(64)];
        }
        self.deleted[id as usize / 64] |= 1 << (id % 64);
        self.free.push(id);
        self.dead += 1;
        let g = self.graph();
        for level in 0..=self.levels[id as usize] as usize {
            let (start, len) = g.list(id, level);
            for i in start..start + len {
                let n = g.link(level, i);
                let (ns, nl) = g.list(n, level);
                if !self.is_deleted(n) && (ns..ns + nl).any(|j| g.link(level, j) == id) {
                    repair_list(&g, n, level, &|x| x == id, &self.deleted);
                }
            }
        }
        if id == self.entry {
            // The highest live node becomes the entry point.
            let best = (0..count as u32)
                .filter(|&i| !self.is_deleted(i))
                .max_by_key(|&i| (self.levels[i as usize], core::cmp::Reverse(i)));
            match best {
                Some(b) => {
                    self.entry = b;
                    self.max_level = self.levels[b as usize];
                }
                None => {
                    self.entry = NONE;
                    self.max_level = 0;
                }
            }
        }
        Ok(())
    }

    /// Number of slots, live or deleted (ids of live vectors are below it).
    pub fn slot_count(&self) -> usize {
        self.levels.len()
    }

    /// Whether slot `id` holds a deleted vector.
    pub fn is_deleted(&self, id: u32) -> bool {
        self.deleted.get(id as usize / 64).is_some_and(|w| (w >> (id % 64)) & 1 == 1)
    }

    /// Inserts row-major `vectors` using every thread of the current rayon pool: levels are
    /// drawn in order (so they match a sequential build), then nodes are linked concurrently
    /// with one lock per node. Faster, but the graph depends on thread timing; use [`add`] for
    /// reproducible files.
    ///
    /// [`add`]: HnswIndex::add
    #[cfg(feature = "parallel")]
    pub fn add_parallel(&mut self, vectors: &[f32]) -> Result<Vec<u32>> {
        self.add_parallel_with(vectors, &|_| {})
    }

    /// [`add_parallel`](HnswIndex::add_parallel), calling `progress(n)` from the workers as
    /// nodes are linked (for a progress bar).
    ///
    /// While linking, the build's distances read a binary16 copy of the vectors (half the
    /// bytes of a build that waits on memory; distances within ~1e-3 relative). The copy is
    /// dropped at the end: the index, its file and every search keep the exact `f32` vectors.
    /// Vectors beyond binary16's range (|x| > 65504) are linked with exact distances.
    #[cfg(feature = "parallel")]
    pub fn add_parallel_with(
        &mut self,
        vectors: &[f32],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u32>> {
        use rayon::prelude::*;
        let data = self.prepare(vectors)?;
        // Freed slots are refilled sequentially (their purge is one pass anyway).
        let mut ids = self.reuse_slots(&data);
        let mut s = Scratch::default();
        for &id in &ids {
            self.link_new(id, &mut s, &NoLocks);
        }
        let data = &data[ids.len() * self.dim..];
        let start = self.allocate(data);
        let mut first = start;
        let end = self.levels.len() as u32;
        if first < end && self.entry == NONE {
            self.link_new(first, &mut Scratch::default(), &NoLocks);
            first += 1;
        }
        let locks = SpinLocks((0..end).map(|_| spin::Mutex::new(())).collect());
        let top = spin::Mutex::new((self.entry, self.max_level));
        // An index that stores binary16 walks its own rows; others get a temporary copy.
        let rows =
            if first < end && self.f16.is_none() { crate::simd::half::encode(&self.vectors) } else { None };
        let mut g = self.graph();
        if let Some(rows) = rows.as_deref() {
            g.half = Some(HalfData { rows, kernels: HalfKernels::new(self.metric, self.kernels) });
        }
        let ef = self.params.ef_construction;
        (first..end).into_par_iter().for_each_init(Scratch::default, |s, id| {
            let level = g.levels[id as usize];
            let (entry, max_level) = *top.lock();
            link_into(&g, Insert { id, level, entry, max_level, ef }, s, &locks);
            if level > max_level {
                let mut t = top.lock();
                if level > t.1 {
                    *t = (id, level);
                }
            }
            progress(1);
        });
        drop(rows);
        let (entry, max_level) = top.into_inner();
        self.entry = entry;
        self.max_level = max_level;
        ids.extend(start..end);
        Ok(ids)
    }

    /// A flat (Vamana) graph's parameters.
    pub(crate) fn vamana_params(&self) -> Option<VamanaParams> {
        self.vamana
    }

    /// The entry point (`None` while the graph has none).
    pub(crate) fn entry_point(&self) -> Option<u32> {
        (self.entry != NONE).then_some(self.entry)
    }

    /// Node `id`'s level-0 links (empty for an unknown id).
    pub(crate) fn level0_links(&self, id: u32) -> Vec<u32> {
        if id as usize >= self.levels.len() {
            return Vec::new();
        }
        let g = self.graph();
        let (start, len) = g.list(id, 0);
        (start..start + len).map(|i| g.link(0, i)).collect()
    }

    fn graph(&self) -> Graph<'_, [AtomicU32]> {
        Graph {
            kernels: self.kernels,
            metric: self.metric,
            dim: self.dim,
            m: self.params.m,
            m0: self.m0,
            vectors: &self.vectors,
            levels: &self.levels,
            upper_offsets: &self.upper_offsets,
            links0: &self.links0,
            upper: &self.upper,
            count: self.levels.len(),
            entry: self.entry,
            max_level: self.max_level,
            deleted: &self.deleted,
            sq: self.sq.as_ref().map(|s| SqData {
                quantizer: &s.quantizer,
                codes: &s.codes,
                rerank: s.rerank,
            }),
            half: self
                .f16
                .as_deref()
                .map(|rows| HalfData { rows, kernels: HalfKernels::new(self.metric, self.kernels) }),
        }
    }

    /// Links the already-allocated node `id` into the graph (Algorithm 1). Node list updates
    /// go through `locks`, so the parallel build can call this from many threads.
    fn link_new(&mut self, id: u32, s: &mut Scratch, locks: &dyn NodeLocks) {
        let level = self.levels[id as usize];
        if self.entry == NONE {
            self.entry = id;
            self.max_level = level;
            return;
        }
        let (entry, max_level) = (self.entry, self.max_level);
        let ins = Insert { id, level, entry, max_level, ef: self.params.ef_construction };
        link_into(&self.graph(), ins, s, locks);
        if level > self.max_level {
            self.entry = id;
            self.max_level = level;
        }
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
        search_graph(&self.graph(), query, k, params, filter, scratch, out)
    }

    /// Writes the index in the file format to `sink`; returns the bytes written.
    pub fn write<E>(
        &self,
        sink: &mut dyn FnMut(&[u8]) -> core::result::Result<(), E>,
    ) -> core::result::Result<u64, E> {
        self.write_with_ids(&crate::IdMap::identity(self.levels.len() as u32), sink)
    }

    /// Like [`write`](Self::write), storing caller ids (an `ids` section unless `ids` is the
    /// identity). `ids` must cover exactly this index's slots.
    pub fn write_with_ids<E>(
        &self,
        ids: &crate::IdMap,
        sink: &mut dyn FnMut(&[u8]) -> core::result::Result<(), E>,
    ) -> core::result::Result<u64, E> {
        debug_assert!(ids.section().is_none_or(|s| s.len() == self.levels.len()));
        let links0: Vec<u32> = self.links0.iter().map(|a| a.load(Relaxed)).collect();
        let upper: Vec<u32> = self.upper.iter().map(|a| a.load(Relaxed)).collect();
        let rerank = self.sq.as_ref().map_or(0, |s| s.rerank) as u32;
        let (kind, params) = match &self.vamana {
            Some(v) => (IndexKind::Vamana, view::encode_vamana_params(v, self.entry, rerank)),
            None => {
                let p = view::encode_params(
                    &self.params,
                    self.m0,
                    self.entry,
                    self.max_level,
                    upper.len() as u64,
                    rerank,
                );
                (IndexKind::Hnsw, p)
            }
        };
        let mut levels = self.levels.clone();
        // Sections hold whole words; pad the byte array.
        levels.resize(self.levels.len().div_ceil(4) * 4, 0);
        let vectors = match &self.f16 {
            Some(rows) => SectionRef { kind: SectionKind::VECTORS_F16, bytes: bytemuck::cast_slice(rows) },
            None => SectionRef { kind: SectionKind::VECTORS, bytes: bytemuck::cast_slice(&self.vectors) },
        };
        let mut sections = alloc::vec![SectionRef { kind: SectionKind::PARAMS, bytes: &params }, vectors];
        if self.vamana.is_none() {
            // A flat graph has no levels: every node is on level 0.
            sections.extend([
                SectionRef { kind: SectionKind::NODE_LEVELS, bytes: &levels },
                SectionRef {
                    kind: SectionKind::UPPER_OFFSETS,
                    bytes: bytemuck::cast_slice(&self.upper_offsets),
                },
            ]);
        }
        sections.push(SectionRef { kind: SectionKind::GRAPH_LEVEL0, bytes: bytemuck::cast_slice(&links0) });
        if self.vamana.is_none() {
            sections.push(SectionRef { kind: SectionKind::GRAPH_UPPER, bytes: bytemuck::cast_slice(&upper) });
        }
        // The deleted section is written only when something was deleted.
        if self.deleted.iter().any(|&w| w != 0) {
            sections
                .push(SectionRef { kind: SectionKind::DELETED, bytes: bytemuck::cast_slice(&self.deleted) });
        }
        let ranges;
        if let Some(sq) = &self.sq {
            ranges = sq.quantizer.to_section();
            sections.push(SectionRef { kind: SectionKind::SQ_RANGES, bytes: bytemuck::cast_slice(&ranges) });
            sections.push(SectionRef { kind: SectionKind::SQ_CODES, bytes: &sq.codes });
            if sq.rerank == 0 {
                // Codes only: the point of the choice is a file without the full vectors.
                sections.retain(|s| s.kind != SectionKind::VECTORS && s.kind != SectionKind::VECTORS_F16);
            }
        }
        if let Some(ids) = ids.section() {
            sections.push(SectionRef { kind: SectionKind::IDS, bytes: bytemuck::cast_slice(ids) });
        }
        write_index(kind, self.metric, self.dim as u32, self.levels.len() as u64, &sections, sink)
    }

    /// The index as file-format bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.write(&mut |b: &[u8]| -> core::result::Result<(), core::convert::Infallible> {
            out.extend_from_slice(b);
            Ok(())
        });
        out
    }

    /// Mean and maximum level-0 degree (graph diagnostics).
    pub fn degree_stats(&self) -> (f64, usize) {
        let g = self.graph();
        let n = self.levels.len();
        let mut total = 0usize;
        let mut max = 0usize;
        for id in 0..n as u32 {
            let (_, len) = g.list(id, 0);
            total += len;
            max = max.max(len);
        }
        (total as f64 / n.max(1) as f64, max)
    }
}

impl VectorSearch for HnswIndex {
    fn dim(&self) -> usize {
        self.dim
    }
    fn metric(&self) -> Metric {
        self.metric
    }
    fn len(&self) -> usize {
        self.levels.len() - self.dead
    }
    fn search_into(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut Vec<Neighbor>,
    ) -> Result<()> {
        self.scratch.with(|s| self.search_with(query, k, params, filter, s, out))
    }
}

/// Serialises list updates of one node. The single-thread build needs none.
pub(crate) trait NodeLocks: Sync {
    /// Runs `f` holding node `id`'s lock.
    fn run(&self, id: u32, f: &mut dyn FnMut());
}

pub(crate) struct NoLocks;

/// One spin lock per node: list updates are a few dozen word writes, far shorter than a
/// context switch.
#[cfg(feature = "parallel")]
pub(crate) struct SpinLocks(pub(crate) Vec<spin::Mutex<()>>);

#[cfg(feature = "parallel")]
impl NodeLocks for SpinLocks {
    fn run(&self, id: u32, f: &mut dyn FnMut()) {
        let _guard = self.0[id as usize].lock();
        f()
    }
}

impl NodeLocks for NoLocks {
    fn run(&self, _: u32, f: &mut dyn FnMut()) {
        f()
    }
}

/// Sets the list of `id` at `level` to `ids`.
fn write_list(g: &Graph<'_, [AtomicU32]>, id: u32, level: usize, ids: impl Iterator<Item = u32>) {
    let (start, _) = g.list(id, level);
    let words = if level == 0 { g.links0 } else { g.upper };
    let mut n = 0;
    for (i, v) in ids.enumerate() {
        words[start + i].store(v, Relaxed);
        n += 1;
    }
    words[start - 1].store(n as u32, Relaxed);
}

/// Algorithm 1 for an allocated node: descend greedily to `level + 1`, then on each level
/// search with `ef_construction` and keep `m` neighbours by the heuristic. Only after the node's
/// own lists are written on every level are the reverse links added (pruning a neighbour's
/// list by the heuristic when it overflows): until then nothing links to the node, so a
/// concurrent insert can never descend into it and find an unwritten list. Sequentially this
/// builds the same graph as interleaving the two, because a level's reverse links change only
/// that level's lists, which the searches on other levels never read.
fn link_into(g: &Graph<'_, [AtomicU32]>, ins: Insert, s: &mut Scratch, locks: &dyn NodeLocks) {
    let mut buf = Vec::new();
    let v = g.own_vector(ins.id, &mut buf);
    match g.half(v) {
        Some(q) => link_with(g, &q, ins, s, locks),
        None => link_with(g, &g.exact(v), ins, s, locks),
    }
}

/// One node's insert: which node, its top level, and the graph's entry point and top level
/// when it starts, with the candidate-list size of its searches.
#[derive(Clone, Copy)]
struct Insert {
    id: u32,
    level: u8,
    entry: u32,
    max_level: u8,
    ef: usize,
}

/// [`link_into`] with the scorer its distances use.
fn link_with<S: Scorer>(
    g: &Graph<'_, [AtomicU32]>,
    q: &S,
    ins: Insert,
    s: &mut Scratch,
    locks: &dyn NodeLocks,
) {
    let Insert { id, level, entry, max_level, ef } = ins;
    let mut ep = Cand { d: q.dist(entry), id: entry };
    for lc in ((level as usize + 1)..=(max_level as usize)).rev() {
        ep = g.greedy(q, ep, lc);
    }
    let mut selected = core::mem::take(&mut s.selected);
    let mut sorted = core::mem::take(&mut s.sorted);
    let mut chosen = core::mem::take(&mut s.chosen);
    let mut decoded = core::mem::take(&mut s.decoded);
    chosen.clear();
    let top = level.min(max_level) as usize;
    for lc in (0..=top).rev() {
        g.search_level(q, ep, ef, lc, None, s);
        s.top.drain_sorted(&mut sorted);
        sorted.retain(|c| c.id != id);
        if let Some(first) = sorted.first() {
            ep = *first;
        }
        g.select(&sorted, g.m, 1.0, &mut selected, &mut decoded);
        locks.run(id, &mut || set_own_list(g, id, lc, &selected));
        chosen.push((lc, selected.len()));
        s.chosen_cands.extend_from_slice(&selected);
    }
    let mut at = 0;
    for &(lc, n) in chosen.iter() {
        let cap = if lc == 0 { g.m0 } else { g.m };
        for c in &s.chosen_cands[at..at + n] {
            locks.run(c.id, &mut || add_reverse(g, c.id, id, c.d, lc, cap));
        }
        at += n;
    }
    s.chosen_cands.clear();
    s.decoded = decoded;
    s.selected = selected;
    s.sorted = sorted;
    s.chosen = chosen;
}

/// Sets a new node's list at `level` to its selection. In a parallel build other nodes may
/// already have linked to it (they reached it through a level above); those links are kept
/// by choosing among both sets with the heuristic. Sequentially the list is always empty.
fn set_own_list(g: &Graph<'_, [AtomicU32]>, id: u32, level: usize, selected: &[Cand]) {
    let (start, len) = g.list(id, level);
    if len == 0 {
        write_list(g, id, level, selected.iter().map(|c| c.id));
        return;
    }
    let words = if level == 0 { g.links0 } else { g.upper };
    let mut buf = Vec::new();
    let base = g.own_vector(id, &mut buf);
    let mut cands: Vec<Cand> = selected.to_vec();
    for w in &words[start..start + len] {
        let n = w.load(Relaxed);
        if n != id && !cands.iter().any(|c| c.id == n) {
            cands.push(Cand { d: g.pair(base, n), id: n });
        }
    }
    reselect(g, id, level, cands);
}

/// Sets `node`'s list at `level` to the heuristic's choice among `cands` (any order).
fn reselect(g: &Graph<'_, [AtomicU32]>, node: u32, level: usize, mut cands: Vec<Cand>) {
    cands.sort_unstable_by(Cand::order);
    let cap = if level == 0 { g.m0 } else { g.m };
    let mut kept = Vec::with_capacity(cap);
    g.select(&cands, cap, 1.0, &mut kept, &mut Vec::new());
    write_list(g, node, level, kept.iter().map(|c| c.id));
}

/// Adds `new` (at distance `d` from `node`) to `node`'s list, pruning with the heuristic when
/// the list is full.
fn add_reverse(g: &Graph<'_, [AtomicU32]>, node: u32, new: u32, d: f32, level: usize, cap: usize) {
    let (start, len) = g.list(node, level);
    let words = if level == 0 { g.links0 } else { g.upper };
    if (start..start + len).any(|i| words[i].load(Relaxed) == new) {
        return;
    }
    if len < cap {
        words[start + len].store(new, Relaxed);
        words[start - 1].store(len as u32 + 1, Relaxed);
        return;
    }
    let mut buf = Vec::new();
    let base = g.own_vector(node, &mut buf);
    let mut cands: Vec<Cand> = (start..start + len)
        .map(|i| {
            let n = words[i].load(Relaxed);
            Cand { d: g.pair(base, n), id: n }
        })
        .collect();
    cands.push(Cand { d, id: new });
    reselect(g, node, level, cands);
}

/// Re-selects `node`'s list at `level` without the nodes `gone` names: candidates are its other
/// links plus the live links of the removed ones, chosen by the heuristic.
fn repair_list(
    g: &Graph<'_, [AtomicU32]>,
    node: u32,
    level: usize,
    gone: &dyn Fn(u32) -> bool,
    deleted: &[u64],
) {
    let is_deleted = |id: u32| deleted.get(id as usize / 64).is_some_and(|w| (w >> (id % 64)) & 1 == 1);
    let (start, len) = g.list(node, level);
    let mut buf = Vec::new();
    let base = g.own_vector(node, &mut buf);
    let mut ids: Vec<u32> = Vec::with_capacity(4 * len);
    let dead = |id: u32| gone(id) || is_deleted(id);
    for i in start..start + len {
        let n = g.link(level, i);
        if !gone(n) {
            ids.push(n);
            continue;
        }
        // Replacements come from the removed node's links; where those are tombstones too
        // (common when many are deleted), from theirs, one hop further.
        let (rs, rl) = g.list(n, level);
        for j in rs..rs + rl {
            let r = g.link(level, j);
            if r == node {
                continue;
            }
            if !dead(r) {
                ids.push(r);
            } else {
                let (ts, tl) = g.list(r, level);
                ids.extend((ts..ts + tl).map(|t| g.link(level, t)).filter(|&t| t != node && !dead(t)));
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let cands: Vec<Cand> = ids.iter().map(|&id| Cand { d: g.pair(base, id), id }).collect();
    reselect(g, node, level, cands);
}

/// Fails on the first value binary16 cannot hold (`|x| > 65504`), naming its vector.
fn check_half_range(data: &[f32], dim: usize) -> Result<()> {
    match data.iter().position(|x| x.abs() > crate::simd::half::MAX) {
        None => Ok(()),
        Some(at) => Err(Error::OutOfHalfRange { vector: at / dim, component: at % dim, value: data[at] }),
    }
}
