//! IVF-PQ: coarse centroids partition the vectors into inverted lists; each vector is stored
//! as a product-quantized code of its residual (vector − centroid), and optionally in full
//! for an exact rerank of the best ADC candidates.
//!
//! [`IvfPqIndex`] owns its lists and grows; [`IvfPqView`] searches a file's bytes in place.
//! Both run the one search (the private `search` module), so the same query gives the same ids and
//! bit-identical distances on either.
//!
//! Metrics: L2 (squared), inner product, and cosine. Cosine vectors and queries are
//! normalised and ranked by the L2 ADC distance, returned halved (`‖q − x‖² / 2 = 1 − cos` for
//! unit vectors): its error is `2⟨x − q, x̂ − x⟩ + ‖x̂ − x‖²`, which shrinks as `x` nears `q`,
//! while the inner-product estimate's error `⟨q, x̂ − x⟩` does not (measured on a 96-d
//! mixture, recall@10 without rerank 0.45 by inner product). L1 has no decomposition over
//! sub-vectors that ADC could use, so it is refused rather than approximated badly.
//!
//! Search: the `nprobe` nearest lists (default [`DEFAULT_NPROBE`], clamped to `nlist`) are
//! scanned with ADC into a bounded heap of `k` (or `k × rerank_factor`, reranked exactly with
//! the full vectors; exact distances are then returned). A filter skips disallowed ids while
//! scanning, so with a selective filter fewer than `k` results may come back even though
//! more matches live in lists that were not probed; probing more lists finds them.

mod search;
mod view;

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use crate::format::{write_index, IndexKind, SectionKind, SectionRef};
use crate::quant::kmeans::{kmeans, sample_rows, KMeansParams};
use crate::quant::ProductQuantizer;
use crate::rng::Rng;
use crate::validate::{check_dim, check_vectors};
use crate::vectors::{check_half_range, RowVec, VectorForm};
use crate::{
    Error, Filter, IdMap, Kernels, Metric, Neighbor, Result, SearchParams, SearchStats, VectorSearch,
    ZeroVectorKind,
};

pub use search::{IvfScratch, DEFAULT_NPROBE};
pub use view::{IvfPqView, Mapped};

use search::{assign_list, Engine, InvertedLists, ScratchPool};

/// Most inverted lists an index may have.
pub const MAX_NLIST: usize = 1 << 22;

/// Largest precomputed L2 term table (`nlist × m × ksub` floats) kept in memory; beyond it the
/// residual table is computed per probed list instead.
pub const RESIDUAL_TERMS_BUDGET: usize = 256 << 20;

/// Training vectors the product quantizer learns from at most (256 per sub-centroid).
const PQ_TRAIN_PER_CENTROID: usize = 256;

/// Construction parameters of an IVF-PQ index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IvfPqParams {
    /// Number of inverted lists (coarse centroids).
    pub nlist: usize,
    /// Number of PQ sub-quantizers; must divide the dimension.
    pub pq_m: usize,
    /// Bits per sub-code: 8 (256 centroids) or 4 (16 centroids, two codes per byte).
    pub nbits: u8,
    /// Seed of every random choice of training.
    pub seed: u64,
    /// Training uses at most this many of the given vectors (seeded sample); 0 = all of them
    /// (k-means still samples down to 256 points per centroid).
    pub train_sample: usize,
    /// Lloyd iterations of the coarse k-means (10 by default, as FAISS's IVF uses: the
    /// centroids only route queries, and the iterations cost most of a build).
    pub kmeans_iterations: usize,
    /// Lloyd iterations of each sub-quantizer's k-means (20 by default: codebook quality is
    /// what ADC accuracy, and so the rerank depth needed, depends on).
    pub pq_iterations: usize,
    /// Keep the full vectors for exact rerank (`rerank_factor > 0`); without them the index
    /// is `m` bytes per vector plus ids, and a search asking for rerank is an error.
    pub keep_vectors: bool,
}

impl Default for IvfPqParams {
    fn default() -> Self {
        Self {
            nlist: 256,
            pq_m: 16,
            nbits: 8,
            seed: 0x0005_EED0_1BF0,
            train_sample: 0,
            kmeans_iterations: 10,
            pq_iterations: 20,
            keep_vectors: true,
        }
    }
}

impl IvfPqParams {
    /// `nlist` lists and `pq_m` 8-bit sub-quantizers; other fields at their defaults.
    pub fn new(nlist: usize, pq_m: usize) -> Self {
        Self { nlist, pq_m, ..Self::default() }
    }

    /// The usual choice for `n` vectors of `dim` dimensions: `nlist = round(√n)` and `pq_m` the
    /// largest of 48, 32, 16 dividing `dim` with at least 8 dimensions per sub-vector, else the
    /// largest divisor of `dim` up to 64.
    pub fn auto(n: usize, dim: usize) -> Self {
        let nlist = (libm::round(libm::sqrt(n as f64)) as usize).max(1);
        let pq_m = [48, 32, 16]
            .into_iter()
            .find(|&m| dim.is_multiple_of(m) && dim / m >= 8)
            .or_else(|| (1..=dim.min(64)).rev().find(|&m| dim.is_multiple_of(m)))
            .unwrap_or(1);
        Self::new(nlist, pq_m)
    }

    /// Sets the bits per sub-code (8 or 4).
    pub fn with_nbits(mut self, nbits: u8) -> Self {
        self.nbits = nbits;
        self
    }
    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Sets the training sample size (0 = all).
    pub fn with_train_sample(mut self, train_sample: usize) -> Self {
        self.train_sample = train_sample;
        self
    }
    /// Sets the coarse k-means iterations.
    pub fn with_kmeans_iterations(mut self, iterations: usize) -> Self {
        self.kmeans_iterations = iterations;
        self
    }
    /// Sets the sub-quantizer k-means iterations.
    pub fn with_pq_iterations(mut self, iterations: usize) -> Self {
        self.pq_iterations = iterations;
        self
    }
    /// Sets whether full vectors are kept for rerank.
    pub fn with_keep_vectors(mut self, keep: bool) -> Self {
        self.keep_vectors = keep;
        self
    }

    fn check(&self, dim: usize) -> Result<ProductQuantizer> {
        if self.nlist == 0 || self.nlist > MAX_NLIST {
            return Err(Error::InvalidParameter { name: "nlist", reason: "must be between 1 and 2^22" });
        }
        for (name, iterations) in
            [("kmeans_iterations", self.kmeans_iterations), ("pq_iterations", self.pq_iterations)]
        {
            if iterations == 0 || iterations > u32::MAX as usize {
                return Err(Error::InvalidParameter { name, reason: "must be between 1 and 2^32 - 1" });
            }
        }
        ProductQuantizer::new(dim, self.pq_m, self.nbits)
    }
}

/// One inverted list: slots in insertion order and their codes, back to back.
#[derive(Clone, Debug, Default, PartialEq)]
struct List {
    slots: Vec<u32>,
    codes: Vec<u8>,
}

/// The inverted lists of an owned index, as the search reads them.
pub struct OwnedLists<'a>(&'a [List]);

impl InvertedLists for OwnedLists<'_> {
    #[inline]
    fn list(&self, i: usize) -> (&[u32], &[u8]) {
        self.0.get(i).map_or((&[], &[]), |l| (&l.slots[..], &l.codes[..]))
    }
}

/// The L2 term table when the metric uses one and it fits the budget.
fn residual_terms_for(metric: Metric, pq: &ProductQuantizer, centroids: &[f32]) -> Option<Vec<f32>> {
    let nlist = centroids.len() / pq.dim();
    let floats = nlist.checked_mul(pq.m() * pq.ksub())?;
    (metric != Metric::InnerProduct && pq.is_trained() && floats.saturating_mul(4) <= RESIDUAL_TERMS_BUDGET)
        .then(|| pq.residual_terms(centroids))
}

/// An IVF-PQ index over one of two stores of its centroids, lists and vectors: its own memory
/// ([`Owned`], the default: trains and grows) or a file read in place ([`IvfPqView`]).
/// Reading and the search are written once for both.
pub struct IvfPqIndex<S: IvfStore = Owned> {
    dim: usize,
    metric: Metric,
    kernels: Kernels,
    params: IvfPqParams,
    pq: ProductQuantizer,
    residual_terms: Option<Vec<f32>>,
    count: usize,
    scratch: ScratchPool,
    store: S,
}

/// The store of an IVF-PQ index that owns its lists, trains and grows.
#[derive(Default)]
pub struct Owned {
    /// `nlist × dim`; empty until trained.
    centroids: Vec<f32>,
    lists: Vec<List>,
    /// Full vectors by slot (normalised for cosine; `f32` or binary16), when kept.
    vectors: RowVec,
}

/// Where an [`IvfPqIndex`] keeps its centroids, lists and vectors: [`Owned`] or [`Mapped`].
pub trait IvfStore: store::Sealed {}
impl IvfStore for Owned {}

/// How the two stores lend their data to the one implementation (sealed).
mod store {
    use super::search::InvertedLists;

    pub trait Sealed {
        type Lists<'a>: InvertedLists
        where
            Self: 'a;
        fn centroids(&self) -> &[f32];
        fn lists(&self, code_len: usize) -> Self::Lists<'_>;
        /// The full vectors ([`Rows::Absent`] when the index keeps none).
        fn vectors(&self) -> crate::vectors::Rows<'_>;
    }

    impl Sealed for super::Owned {
        type Lists<'a> = super::OwnedLists<'a>;
        fn centroids(&self) -> &[f32] {
            &self.centroids
        }
        fn lists(&self, _: usize) -> super::OwnedLists<'_> {
            super::OwnedLists(&self.lists)
        }
        fn vectors(&self) -> crate::vectors::Rows<'_> {
            self.vectors.rows()
        }
    }
}

impl<S: IvfStore> core::fmt::Debug for IvfPqIndex<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IvfPqIndex")
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("params", &self.params)
            .field("trained", &self.is_trained())
            .field("count", &self.count)
            .finish()
    }
}

impl<S: IvfStore> IvfPqIndex<S> {
    /// Uses `kernels` instead of the best detected ones.
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// Construction parameters.
    pub fn params(&self) -> IvfPqParams {
        self.params
    }

    /// Whether the index is trained.
    pub fn is_trained(&self) -> bool {
        self.pq.is_trained()
    }

    /// The coarse centroids, `nlist × dim` (empty until trained).
    pub fn centroids(&self) -> &[f32] {
        self.store.centroids()
    }

    /// The product quantizer of the residuals.
    pub fn pq(&self) -> &ProductQuantizer {
        &self.pq
    }

    /// Number of vectors in each inverted list.
    pub fn list_sizes(&self) -> Vec<usize> {
        let lists = self.store.lists(self.pq.code_len());
        (0..self.params.nlist).map(|i| lists.list(i).0.len()).collect()
    }

    /// The stored vector `id` (normalised, for cosine), when `f32` vectors are kept.
    pub fn get(&self, id: u32) -> Result<&[f32]> {
        self.store.vectors().lend(self.dim, id, self.count)
    }

    /// A copy of the vector `id` (decoded from binary16 when stored so), when vectors are kept.
    pub fn get_decoded(&self, id: u32) -> Result<Vec<f32>> {
        let half = crate::simd::half::HalfKernels::new(self.metric, self.kernels);
        self.store.vectors().copy_row(&half, self.dim, id, self.count)
    }

    /// How the kept vectors are stored (`Absent` when the index keeps none).
    pub fn vector_form(&self) -> VectorForm {
        self.store.vectors().form()
    }

    fn engine(&self) -> Engine<'_, S::Lists<'_>> {
        Engine {
            kernels: self.kernels,
            metric: self.metric,
            dim: self.dim,
            count: self.count,
            centroids: self.store.centroids(),
            pq: &self.pq,
            residual_terms: self.residual_terms.as_deref(),
            lists: self.store.lists(self.pq.code_len()),
            vectors: self.store.vectors(),
        }
    }

    /// Searches with caller-owned scratch (one per thread in a parallel batch).
    pub fn search_with(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        scratch: &mut IvfScratch,
        out: &mut Vec<Neighbor>,
    ) -> Result<SearchStats> {
        self.engine().search(query, k, params, filter, scratch, out)
    }
}

impl<S: IvfStore> VectorSearch for IvfPqIndex<S> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn metric(&self) -> Metric {
        self.metric
    }
    fn len(&self) -> usize {
        self.count
    }
    fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut Vec<Neighbor>,
    ) -> Result<SearchStats> {
        self.scratch.with(|s| self.search_with(query, k, params, filter, s, out))
    }
    fn search_scratch_bytes(&self) -> usize {
        self.engine().scratch_bytes()
    }
}

impl IvfPqIndex {
    /// An empty, untrained index. L1 is refused (ADC cannot rank by it).
    pub fn new(dim: usize, metric: Metric, params: IvfPqParams) -> Result<Self> {
        check_dim(dim)?;
        if metric == Metric::L1 {
            return Err(Error::InvalidParameter {
                name: "metric",
                reason: "IVF-PQ supports l2, cosine and ip, not l1",
            });
        }
        let pq = params.check(dim)?;
        Ok(Self {
            dim,
            metric,
            kernels: Kernels::best(),
            params,
            pq,
            residual_terms: None,
            count: 0,
            scratch: ScratchPool::default(),
            store: Owned {
                centroids: Vec::new(),
                lists: vec![List::default(); params.nlist],
                vectors: if params.keep_vectors { RowVec::default() } else { RowVec::Absent },
            },
        })
    }

    /// Trains on `data` and adds it: the usual way to build an index in one call.
    pub fn build(dim: usize, metric: Metric, params: IvfPqParams, data: &[f32]) -> Result<Self> {
        let mut index = Self::new(dim, metric, params)?;
        index.train(data)?;
        index.add(data)?;
        Ok(index)
    }

    /// A copy of `vectors` checked against the dimension, normalised for cosine.
    fn prepare(&self, vectors: &[f32]) -> Result<Vec<f32>> {
        if vectors.len() < self.dim && !vectors.is_empty() {
            return Err(Error::DimensionMismatch { expected: self.dim, got: vectors.len() });
        }
        check_vectors(vectors, self.dim)?;
        let mut data = vectors.to_vec();
        if self.metric.normalizes() {
            for (i, v) in data.chunks_exact_mut(self.dim).enumerate() {
                if !self.kernels.normalize(v) {
                    return Err(Error::ZeroVector { what: ZeroVectorKind::Vector(i) });
                }
            }
        }
        if self.store.vectors.rows().form() == VectorForm::F16 {
            check_half_range(&data, self.dim)?;
        }
        Ok(data)
    }

    /// Keeps the re-rank vectors in binary16 from now on (half their bytes; re-ranked
    /// distances are then exact for the rounded vectors). Fails, changing nothing, if a kept
    /// value lies beyond ±65504; an index that keeps no vectors stays as it is.
    pub fn store_f16(&mut self) -> Result<()> {
        self.store.vectors.make_f16(self.dim)
    }

    /// Learns the coarse centroids and the residual codebooks from sample vectors (at least
    /// `nlist` and at least `2^nbits` of them). Only an index holding no vector can be
    /// (re)trained.
    pub fn train(&mut self, data: &[f32]) -> Result<()> {
        if self.count > 0 {
            return Err(Error::InvalidParameter {
                name: "train",
                reason: "the index already holds vectors; train before adding",
            });
        }
        let mut data = self.prepare(data)?;
        let dim = self.dim;
        let p = self.params;
        let n = data.len() / dim;
        if p.train_sample > 0 && n > p.train_sample {
            data = sample_rows(&data, dim, p.train_sample, &mut Rng::derive(p.seed, 1));
        }
        let n = data.len() / dim;
        if n < p.nlist {
            return Err(Error::InvalidParameter {
                name: "training data",
                reason: "needs at least nlist vectors",
            });
        }
        let mut pq = ProductQuantizer::new(dim, p.pq_m, p.nbits)?;
        if n < pq.ksub() {
            return Err(Error::InvalidParameter {
                name: "training data",
                reason: "product quantizer training needs at least 2^nbits vectors",
            });
        }
        let coarse = KMeansParams::new(p.nlist).with_seed(p.seed).with_iterations(p.kmeans_iterations);
        let centroids = kmeans(self.kernels, &data, dim, &coarse)?;
        let cap = PQ_TRAIN_PER_CENTROID * pq.ksub();
        let pq_sample;
        let pq_data = if n > cap {
            pq_sample = sample_rows(&data, dim, cap, &mut Rng::derive(p.seed, 2));
            &pq_sample[..]
        } else {
            &data[..]
        };
        let mut residuals = pq_data.to_vec();
        for r in residuals.chunks_exact_mut(dim) {
            let list = assign_list(&self.kernels, self.metric, &centroids, dim, r) as usize;
            for (x, &c) in r.iter_mut().zip(&centroids[list * dim..(list + 1) * dim]) {
                *x -= c;
            }
        }
        pq.train(self.kernels, &residuals, Rng::derive(p.seed, 3).next_u64(), p.pq_iterations)?;
        self.residual_terms = residual_terms_for(self.metric, &pq, &centroids);
        self.store.centroids = centroids;
        self.pq = pq;
        Ok(())
    }

    /// Appends row-major `vectors` (the index must be trained); returns the ids they received.
    /// Validates the whole batch first, so on error nothing is added.
    pub fn add(&mut self, vectors: &[f32]) -> Result<Range<u32>> {
        if !self.is_trained() {
            return Err(Error::NotTrained);
        }
        let data = self.prepare(vectors)?;
        let dim = self.dim;
        let n = data.len() / dim;
        let start = self.count;
        // u32::MAX stays free so a slot never equals the NO_ID sentinel.
        let end = start.checked_add(n).filter(|&e| e < u32::MAX as usize).ok_or(Error::CapacityExceeded {
            count: start as u64,
            adding: n as u64,
            max: u32::MAX as u64 - 1,
        })?;
        let code_len = self.pq.code_len();
        let mut codes = vec![0u8; n * code_len];
        let mut lists = vec![0u32; n];
        let (kernels, metric, centroids, pq) =
            (&self.kernels, self.metric, &self.store.centroids[..], &self.pq);
        let encode = |residual: &mut Vec<f32>, x: &[f32], code: &mut [u8], list: &mut u32| {
            *list = assign_list(kernels, metric, centroids, dim, x);
            let c = &centroids[*list as usize * dim..(*list as usize + 1) * dim];
            residual.clear();
            residual.extend(x.iter().zip(c).map(|(&a, &b)| a - b));
            pq.encode_unchecked(residual, code);
        };
        #[cfg(feature = "parallel")]
        {
            use rayon::prelude::*;
            data.par_chunks_exact(dim)
                .zip(codes.par_chunks_exact_mut(code_len))
                .zip(lists.par_iter_mut())
                .with_min_len(64)
                .for_each_init(Vec::new, |r, ((x, code), list)| encode(r, x, code, list));
        }
        #[cfg(not(feature = "parallel"))]
        {
            let mut r = Vec::with_capacity(dim);
            for ((x, code), list) in
                data.chunks_exact(dim).zip(codes.chunks_exact_mut(code_len)).zip(&mut lists)
            {
                encode(&mut r, x, code, list);
            }
        }
        for (i, (&list, code)) in lists.iter().zip(codes.chunks_exact(code_len)).enumerate() {
            let l = &mut self.store.lists[list as usize];
            l.slots.push((start + i) as u32);
            l.codes.extend_from_slice(code);
        }
        self.store.vectors.extend(&data);
        self.count = end;
        Ok(start as u32..end as u32)
    }

    /// The index as file-format bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.write(&mut |b: &[u8]| -> Result<(), core::convert::Infallible> {
            out.extend_from_slice(b);
            Ok(())
        });
        out
    }

    /// Streams the index in the file format to `sink`; returns the bytes written.
    pub fn write<E>(&self, sink: &mut dyn FnMut(&[u8]) -> Result<(), E>) -> Result<u64, E> {
        self.write_sections(None, sink)
    }

    /// Like [`write`](Self::write), storing caller ids (an `ids` section unless `ids` is the
    /// identity). `ids` must cover exactly this index's slots.
    pub fn write_with_ids<E>(
        &self,
        ids: &IdMap,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        debug_assert!(ids.section().is_none_or(|s| s.len() == self.count));
        self.write_sections(ids.section(), sink)
    }

    fn write_sections<E>(
        &self,
        ids: Option<&[u32]>,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let params = view::encode_params(&self.params, self.is_trained());
        let mut offsets = Vec::with_capacity(self.store.lists.len() + 1);
        let mut slots = Vec::with_capacity(self.count);
        let mut codes = Vec::with_capacity(self.count * self.pq.code_len());
        offsets.push(0u32);
        for l in &self.store.lists {
            slots.extend_from_slice(&l.slots);
            codes.extend_from_slice(&l.codes);
            offsets.push(slots.len() as u32);
        }
        let mut sections = vec![
            SectionRef { kind: SectionKind::PARAMS, bytes: &params },
            SectionRef {
                kind: SectionKind::COARSE_CENTROIDS,
                bytes: bytemuck::cast_slice(&self.store.centroids),
            },
            SectionRef { kind: SectionKind::PQ_CODEBOOKS, bytes: bytemuck::cast_slice(self.pq.codebooks()) },
            SectionRef { kind: SectionKind::IVF_LISTS, bytes: bytemuck::cast_slice(&offsets) },
            SectionRef { kind: SectionKind::IVF_IDS, bytes: bytemuck::cast_slice(&slots) },
            SectionRef { kind: SectionKind::PQ_CODES, bytes: &codes },
        ];
        sections.extend(self.store.vectors.rows().section());
        if let Some(ids) = ids {
            sections.push(SectionRef { kind: SectionKind::IDS, bytes: bytemuck::cast_slice(ids) });
        }
        write_index(IndexKind::IvfPq, self.metric, self.dim as u32, self.count as u64, &sections, sink)
    }

    /// An owned copy of an index file's contents.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let aligned;
        let bytes = if (bytes.as_ptr() as usize).is_multiple_of(crate::format::BUFFER_ALIGN) {
            bytes
        } else {
            aligned = crate::format::AlignedBytes::copy_from(bytes);
            aligned.as_slice()
        };
        Ok(IvfPqView::open(bytes)?.to_index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_params_follow_the_faiss_peer() {
        let p = IvfPqParams::auto(100_000, 128);
        assert_eq!((p.nlist, p.pq_m), (316, 16));
        assert_eq!(IvfPqParams::auto(100_000, 384).pq_m, 48);
        assert_eq!(IvfPqParams::auto(10_000, 256).pq_m, 32);
        assert_eq!(IvfPqParams::auto(0, 100).nlist, 1);
        assert_eq!(IvfPqParams::auto(10, 100).pq_m, 50);
        assert_eq!(IvfPqParams::auto(10, 7).pq_m, 7);
    }
}
