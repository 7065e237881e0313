//! Exact (flat) search: the ground truth every other index is tested against.
//!
//! One index type over two stores: [`FlatIndex`] (the default store, [`OwnedRows`]) owns its
//! vectors and grows; [`FlatView`] (`FlatIndex<MappedRows<B>>`) searches a file's bytes in
//! place (a memory map natively, a buffer in the browser) and cannot be mutated. Reading and
//! the scan are written once for both. Rows are `f32` or, after [`FlatIndex::store_f16`],
//! binary16 (half the bytes and half the memory traffic of a scan; distances from the `f32`
//! query to the rounded rows, identical on every ISA).

use alloc::vec::Vec;
use core::ops::Range;

use crate::filter::for_each_allowed_ahead;
use crate::format::{write_index, FileInfo, IndexKind, OpenOptions, SectionKind, SectionRef};
use crate::simd::half::HalfKernels;
use crate::validate::{check_dim, check_query, check_vectors};
use crate::vectors::{check_half_range, Allowed, RowVec, Rows, VectorsAt};
use crate::{
    Error, Filter, FormatError, IdMap, Kernels, Metric, Neighbor, Plan, Result, SearchParams, SearchStats,
    TopK, VectorSearch, ZeroVectorKind,
};

/// Bytes per tile of a batch scan: 64 KiB (64 rows of 256-d `f32`), so a tile stays in L2 while
/// every query of the batch passes over it.
const TILE_BYTES: usize = 64 * 1024;

/// An exact index over one of two stores of its row-major vectors: its own memory
/// ([`OwnedRows`], the default, growable) or a file read in place ([`MappedRows`]).
#[derive(Clone)]
pub struct FlatIndex<S: RowStore = OwnedRows> {
    dim: usize,
    metric: Metric,
    kernels: Kernels,
    store: S,
}

/// The vectors of a [`FlatIndex`] that owns them.
#[derive(Clone, Debug, Default)]
pub struct OwnedRows {
    rows: RowVec,
}

/// The vectors of a flat index file read in place, and where its sections lie.
#[derive(Clone)]
pub struct MappedRows<B> {
    bytes: B,
    info: FileInfo,
    vectors: VectorsAt,
    ids: Option<Range<usize>>,
}

/// Where a [`FlatIndex`] keeps its vectors: [`OwnedRows`] or [`MappedRows`].
pub trait RowStore: rows::Sealed {}
impl RowStore for OwnedRows {}
impl<B: AsRef<[u8]>> RowStore for MappedRows<B> {}

mod rows {
    /// The row-major vectors of a store (sealed: only the two stores lend them).
    use crate::vectors::Rows;

    pub trait Sealed {
        fn rows(&self) -> Rows<'_>;
    }
    impl Sealed for super::OwnedRows {
        fn rows(&self) -> Rows<'_> {
            self.rows.rows()
        }
    }
    impl<B: AsRef<[u8]>> Sealed for super::MappedRows<B> {
        fn rows(&self) -> Rows<'_> {
            self.vectors.view(self.bytes.as_ref()).rows
        }
    }
}

impl<S: RowStore> core::fmt::Debug for FlatIndex<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlatIndex")
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("len", &self.len())
            .finish()
    }
}

impl<S: RowStore> FlatIndex<S> {
    /// Uses `kernels` instead of the best detected ones (benchmarks, tests).
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// The kernel table in use.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// All stored rows, row-major (normalised, for cosine), borrowed in their form.
    pub fn rows(&self) -> Rows<'_> {
        self.store.rows()
    }

    /// The stored `f32` vector `id` (normalised, for cosine), read in place; an index of
    /// binary16 rows has none to lend (use [`FlatIndex::get_decoded`]).
    pub fn get(&self, id: u32) -> Result<&[f32]> {
        self.rows().lend(self.dim, id, self.len())
    }

    /// A copy of the vector `id`, decoded from binary16 when the index stores that.
    pub fn get_decoded(&self, id: u32) -> Result<Vec<f32>> {
        self.rows().copy_row(&HalfKernels::new(self.metric, self.kernels), self.dim, id, self.len())
    }

    /// Whether the rows are binary16 ([`FlatIndex::store_f16`]).
    pub fn stores_f16(&self) -> bool {
        self.rows().f16().is_some()
    }

    /// Searches many queries (row-major) at once; with the `parallel` feature on all cores.
    pub fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&dyn Filter>,
    ) -> Result<Vec<Vec<Neighbor>>> {
        search_batch(self.kernels, self.metric, self.dim, self.rows(), queries, k, filter)
    }
}

impl<S: RowStore> VectorSearch for FlatIndex<S> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn metric(&self) -> Metric {
        self.metric
    }
    fn len(&self) -> usize {
        self.rows().len() / self.dim
    }
    fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        _: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut Vec<Neighbor>,
    ) -> Result<SearchStats> {
        search_one(self.kernels, self.metric, self.dim, self.rows(), query, k, filter, out)
    }
}

impl FlatIndex {
    /// An empty index of `dim`-dimensional vectors compared by `metric`.
    pub fn new(dim: usize, metric: Metric) -> Result<Self> {
        check_dim(dim)?;
        Ok(Self { dim, metric, kernels: Kernels::best(), store: OwnedRows::default() })
    }

    /// Appends row-major `vectors`; returns the ids they received. Validates the whole batch
    /// first, so on error nothing is added. Cosine vectors are stored normalised.
    pub fn add(&mut self, vectors: &[f32]) -> Result<Range<u32>> {
        if vectors.len() < self.dim && !vectors.is_empty() {
            return Err(Error::DimensionMismatch { expected: self.dim, got: vectors.len() });
        }
        let n = check_vectors(vectors, self.dim)?;
        let start = self.len();
        let end = start
            .checked_add(n)
            .filter(|&e| e <= u32::MAX as usize)
            .ok_or(Error::CapacityExceeded { count: start as u64, adding: n as u64, max: u32::MAX as u64 })?;
        // f32 rows under cosine are normalised where they land (no copy of the batch); a zero
        // vector cuts them off again, so a failing batch leaves the index as it was.
        if self.metric.normalizes() && !self.stores_f16() {
            if let Err(i) = self.store.rows.extend_normalized(vectors, self.dim, &self.kernels) {
                return Err(Error::ZeroVector { what: ZeroVectorKind::Vector(i) });
            }
            return Ok(start as u32..end as u32);
        }
        // Otherwise prepared in a copy only when something must change (normalising before
        // rounding, a range check), so a failing batch leaves the index as it was.
        let mut normalized = Vec::new();
        let rows = if self.metric.normalizes() {
            normalized.extend_from_slice(vectors);
            for (i, v) in normalized.chunks_exact_mut(self.dim).enumerate() {
                if !self.kernels.normalize(v) {
                    return Err(Error::ZeroVector { what: ZeroVectorKind::Vector(i) });
                }
            }
            &normalized[..]
        } else {
            vectors
        };
        if self.stores_f16() {
            check_half_range(rows, self.dim)?;
        }
        self.store.rows.extend(rows);
        Ok(start as u32..end as u32)
    }

    /// Makes room for `additional` more vectors up front (no doubling while a big batch grows).
    /// More than the index can ever hold (`u32` slots), or memory that cannot be had, is an
    /// error rather than an abort.
    pub fn reserve(&mut self, additional: usize) -> Result<()> {
        crate::scratch::check_capacity(self.len(), additional)?;
        let floats = additional.checked_mul(self.dim).ok_or(Error::OutOfMemory {
            what: "the vectors",
            bytes: additional as u64 * self.dim as u64 * 4,
        })?;
        self.store.rows.try_reserve_more(floats)
    }

    /// Writes over the room reserved ahead (and forgets what it wrote), so the operating system
    /// backs those pages now rather than during the appends that later fill them: a thread with
    /// time to spare can take the page faults for a writer that has none.
    pub fn touch_reserved(&mut self) {
        self.store.rows.touch_reserved();
    }

    /// Stores the vectors in binary16 from now on: each value rounded to the nearest binary16
    /// (at most 2^-11 relative), scans read half the bytes, and the file keeps only the
    /// binary16 rows (`vectors-f16`). Results are then exact for the rounded vectors, not the
    /// originals. Later additions are rounded the same way. Fails, changing nothing, if a
    /// stored value lies beyond ±65504.
    pub fn store_f16(&mut self) -> Result<()> {
        self.store.rows.make_f16(self.dim)
    }

    /// The index as file-format bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rows().bytes() + 256);
        let _ = self.write(&mut |b: &[u8]| -> Result<(), core::convert::Infallible> {
            out.extend_from_slice(b);
            Ok(())
        });
        out
    }

    /// Streams the index in the file format to `sink`; returns the bytes written.
    pub fn write<E>(&self, sink: &mut dyn FnMut(&[u8]) -> Result<(), E>) -> Result<u64, E> {
        write_flat(self.metric, self.dim, self.rows(), None, sink)
    }

    /// Like [`write`](Self::write), storing caller ids (an `ids` section unless `ids` is the
    /// identity). `ids` must cover exactly this index's slots.
    pub fn write_with_ids<E>(
        &self,
        ids: &IdMap,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        debug_assert!(ids.section().is_none_or(|s| s.len() == self.len()));
        write_flat(self.metric, self.dim, self.rows(), ids.section(), sink)
    }

    /// Removes vector `id` by moving the last vector into its slot (so slots stay dense).
    /// Returns the slot the moved vector came from, `None` when `id` was the last slot.
    pub fn swap_remove(&mut self, id: u32) -> Result<Option<u32>> {
        let n = self.len();
        if id as usize >= n {
            return Err(Error::UnknownId { id: id as u64, count: n as u64 });
        }
        let last = n - 1;
        self.store.rows.swap_remove(self.dim, id as usize);
        Ok((id as usize != last).then_some(last as u32))
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
        Ok(FlatView::open(bytes)?.to_index())
    }
}

pub(crate) fn write_flat<E>(
    metric: Metric,
    dim: usize,
    rows: Rows<'_>,
    ids: Option<&[u32]>,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    let count = (rows.len() / dim) as u64;
    let mut sections: Vec<SectionRef<'_>> = rows.section().into_iter().collect();
    if let Some(ids) = ids {
        sections.push(SectionRef { kind: SectionKind::IDS, bytes: bytemuck::cast_slice(ids) });
    }
    write_index(IndexKind::Flat, metric, dim as u32, count, &sections, sink)
}

/// A flat index read in place from file bytes: an mmap, a `Vec`, a browser buffer.
pub type FlatView<B> = FlatIndex<MappedRows<B>>;

impl<B: AsRef<[u8]>> FlatView<B> {
    /// Validates `bytes` (structure and checksums) and opens it for search without copying.
    pub fn open(bytes: B) -> Result<Self> {
        Self::open_with(bytes, OpenOptions::default())
    }

    /// Like [`FlatView::open`], with control over checksum verification.
    pub fn open_with(bytes: B, opts: OpenOptions) -> Result<Self> {
        let info = FileInfo::parse(bytes.as_ref(), opts)?;
        info.expect_kind(IndexKind::Flat)?;
        let dim = info.dim as usize;
        if info.count > u32::MAX as u64 {
            return Err(FormatError::TooLarge { what: "vector count" }.into());
        }
        let count = info.count as usize;
        let allowed = Allowed { sq_rerank: None, no_rows: false };
        let vectors = VectorsAt::find(&info, bytes.as_ref(), count, dim, opts, allowed)?;
        let metric = info.metric;
        let ids = crate::format::ids_section(&info, bytes.as_ref(), |_| true)?;
        Ok(Self { dim, metric, kernels: Kernels::best(), store: MappedRows { bytes, info, vectors, ids } })
    }

    /// The validated header and section table.
    pub fn info(&self) -> &FileInfo {
        &self.store.info
    }

    /// The underlying bytes.
    pub fn bytes(&self) -> &[u8] {
        self.store.bytes.as_ref()
    }

    /// The file's caller ids, one per slot, when it has an `ids` section (else ids are slots).
    pub fn ids(&self) -> Option<&[u32]> {
        // Validated at open: in bounds, aligned, one u32 per slot.
        self.store.ids.as_ref().map(|r| bytemuck::cast_slice(&self.store.bytes.as_ref()[r.clone()]))
    }

    /// An owned, growable copy.
    pub fn to_index(&self) -> FlatIndex {
        FlatIndex {
            dim: self.dim,
            metric: self.metric,
            kernels: self.kernels,
            store: OwnedRows { rows: self.rows().to_store() },
        }
    }
}

/// Validates the query and returns it ready to scan (normalised for cosine).
fn prepare_query<'q>(
    kernels: Kernels,
    metric: Metric,
    dim: usize,
    n: usize,
    query: &'q [f32],
    k: usize,
    buf: &'q mut Vec<f32>,
) -> Result<&'q [f32]> {
    check_query(query, dim, k)?;
    if n == 0 {
        return Err(Error::EmptyIndex);
    }
    if metric.normalizes() {
        buf.clear();
        buf.extend_from_slice(query);
        if !kernels.normalize(buf) {
            return Err(Error::ZeroVector { what: ZeroVectorKind::Query });
        }
        return Ok(buf);
    }
    Ok(query)
}

#[allow(clippy::too_many_arguments)]
fn search_one(
    kernels: Kernels,
    metric: Metric,
    dim: usize,
    rows: Rows<'_>,
    query: &[f32],
    k: usize,
    filter: Option<&dyn Filter>,
    out: &mut Vec<Neighbor>,
) -> Result<SearchStats> {
    let mut buf = Vec::new();
    let n = rows.len() / dim;
    let q = prepare_query(kernels, metric, dim, n, query, k, &mut buf)?;
    let mut top = TopK::new(k, out);
    let stats = match filter {
        // The allowed ids one by one: the cost follows the matches, not `n`.
        Some(f) => {
            let scored = scan_allowed_rows(kernels, metric, dim, rows, q, f, &mut top);
            SearchStats { plan: Plan::Scan, matches: Some(scored as usize), expanded: 0, distances: scored }
        }
        None => {
            scan_rows(kernels, metric, dim, rows, 0, q, None, &mut top);
            SearchStats { plan: Plan::Scan, matches: None, expanded: 0, distances: n as u32 }
        }
    };
    top.finish();
    Ok(stats)
}

/// Scores the rows `filter` allows, in id order, each row's load started a few ids ahead.
/// Returns how many were scored.
#[inline(always)]
fn scan_allowed_rows(
    kernels: Kernels,
    metric: Metric,
    dim: usize,
    rows: Rows<'_>,
    q: &[f32],
    filter: &dyn Filter,
    top: &mut TopK<'_>,
) -> u32 {
    let n = (rows.len() / dim) as u32;
    match rows {
        Rows::F32(data) => match metric {
            Metric::L2 => scan_allowed(data, dim, n, filter, top, |v| kernels.l2sq(q, v)),
            Metric::Cosine => scan_allowed(data, dim, n, filter, top, |v| 1.0 - kernels.dot(q, v)),
            Metric::InnerProduct => scan_allowed(data, dim, n, filter, top, |v| -kernels.dot(q, v)),
            Metric::L1 => scan_allowed(data, dim, n, filter, top, |v| kernels.l1(q, v)),
        },
        Rows::F16(data) => {
            let half = HalfKernels::new(metric, kernels);
            scan_allowed(data, dim, n, filter, top, |v| half.distance(q, v))
        }
        Rows::Absent => 0,
    }
}

#[inline(always)]
fn scan_allowed<T: bytemuck::Pod>(
    data: &[T],
    dim: usize,
    n: u32,
    filter: &dyn Filter,
    top: &mut TopK<'_>,
    dist: impl Fn(&[T]) -> f32,
) -> u32 {
    let row = |id: u32| {
        let s = id as usize * dim;
        &data[s..s + dim]
    };
    let mut scored = 0u32;
    let prefetch = |id: u32| crate::simd::prefetch_bytes(bytemuck::cast_slice(row(id)));
    for_each_allowed_ahead(filter, n, prefetch, |id| {
        scored += 1;
        let d = dist(row(id));
        // Ids arrive in increasing order, so an equal distance never displaces a held result.
        if top.worst().is_none_or(|w| d < w.distance) {
            top.push(Neighbor::new(id, d));
        }
    });
    scored
}

/// Scans `rows` (the slots from `first_id` on) for query `q`, in their form. One
/// monomorphised loop per metric keeps the metric match out of the hot `f32` loop.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn scan_rows(
    kernels: Kernels,
    metric: Metric,
    dim: usize,
    rows: Rows<'_>,
    first_id: u32,
    q: &[f32],
    filter: Option<&dyn Filter>,
    top: &mut TopK<'_>,
) {
    match rows {
        Rows::F32(data) => match metric {
            Metric::L2 => scan(data, dim, first_id, filter, top, |v| kernels.l2sq(q, v)),
            Metric::Cosine => scan(data, dim, first_id, filter, top, |v| 1.0 - kernels.dot(q, v)),
            Metric::InnerProduct => scan(data, dim, first_id, filter, top, |v| -kernels.dot(q, v)),
            Metric::L1 => scan(data, dim, first_id, filter, top, |v| kernels.l1(q, v)),
        },
        Rows::F16(data) => {
            let half = HalfKernels::new(metric, kernels);
            scan(data, dim, first_id, filter, top, |v| half.distance(q, v))
        }
        Rows::Absent => {}
    }
}

#[inline(always)]
fn scan<T>(
    data: &[T],
    dim: usize,
    first_id: u32,
    filter: Option<&dyn Filter>,
    top: &mut TopK<'_>,
    dist: impl Fn(&[T]) -> f32,
) {
    for (i, v) in data.chunks_exact(dim).enumerate() {
        let id = first_id + i as u32;
        if let Some(f) = filter {
            if !f.allows(id) {
                continue;
            }
        }
        let d = dist(v);
        // Ids arrive in increasing order, so an equal distance never displaces a held result.
        if let Some(w) = top.worst() {
            if d >= w.distance {
                continue;
            }
        }
        top.push(Neighbor::new(id, d));
    }
}

fn search_batch(
    kernels: Kernels,
    metric: Metric,
    dim: usize,
    rows: Rows<'_>,
    queries: &[f32],
    k: usize,
    filter: Option<&dyn Filter>,
) -> Result<Vec<Vec<Neighbor>>> {
    if !queries.len().is_multiple_of(dim) {
        return Err(Error::RaggedVectors { len: queries.len(), dim });
    }
    let n = rows.len() / dim;
    // Validate (and normalise) every query before doing any work.
    let mut prepared = Vec::with_capacity(queries.len());
    let mut buf = Vec::new();
    for q in queries.chunks_exact(dim) {
        let p = prepare_query(kernels, metric, dim, n, q, k, &mut buf)?;
        prepared.extend_from_slice(p);
    }
    let nq = queries.len() / dim;
    let k = k.min(n);
    let mut results: Vec<Vec<Neighbor>> = (0..nq).map(|_| Vec::with_capacity(k)).collect();
    // Each worker takes a block of queries and passes over the data once, tile by tile, so a
    // tile is read from memory once per block instead of once per query.
    let block = |qs: &[f32], outs: &mut [Vec<Neighbor>]| {
        let tile = (TILE_BYTES / (rows.bytes() / n.max(1)).max(1)).max(1);
        for start in (0..n).step_by(tile) {
            let part = rows.slots(dim, start..(start + tile).min(n));
            for (q, out) in qs.chunks_exact(dim).zip(outs.iter_mut()) {
                let mut top = TopK::resume(k, out);
                scan_rows(kernels, metric, dim, part, start as u32, q, filter, &mut top);
            }
        }
        for out in outs.iter_mut() {
            TopK::resume(k, out).finish();
        }
    };
    const QUERY_BLOCK: usize = 16;
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        prepared
            .par_chunks(dim * QUERY_BLOCK)
            .zip(results.par_chunks_mut(QUERY_BLOCK))
            .for_each(|(qs, outs)| block(qs, outs));
    }
    #[cfg(not(feature = "parallel"))]
    for (qs, outs) in prepared.chunks(dim * QUERY_BLOCK).zip(results.chunks_mut(QUERY_BLOCK)) {
        block(qs, outs);
    }
    Ok(results)
}
