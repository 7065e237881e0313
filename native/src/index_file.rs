//! Saving any index to a file and opening one in place through a memory map.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use std::marker::PhantomData;

use memmap2::Mmap;
use neardb_core::flat::RowStore;
use neardb_core::format::{FileInfo, IndexKind, OpenOptions};
use neardb_core::hnsw::GraphStore;
use neardb_core::ivf::IvfStore;
use neardb_core::lsh::BinaryStore;
use neardb_core::{
    BinaryIndex, BinaryView, Filter, FlatIndex, FlatView, HnswIndex, HnswView, IvfPqIndex, IvfPqView, Metric,
    Neighbor, SearchParams, VamanaIndex, VamanaView, VectorSearch,
};

use crate::FileError;

/// An index that can be written in the file format.
pub trait Savable {
    /// Streams the file to `sink`; returns its length.
    fn write_file(&self, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<u64>;
}

impl Savable for FlatIndex {
    fn write_file(&self, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<u64> {
        self.write(sink)
    }
}

impl Savable for HnswIndex {
    fn write_file(&self, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<u64> {
        self.write(sink)
    }
}

impl Savable for IvfPqIndex {
    fn write_file(&self, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<u64> {
        self.write(sink)
    }
}

impl Savable for BinaryIndex {
    fn write_file(&self, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<u64> {
        self.write(sink)
    }
}

impl Savable for VamanaIndex {
    fn write_file(&self, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<u64> {
        self.write(sink)
    }
}

/// An HNSW index saved with caller ids for its slots (an `ids` section unless the map is the
/// identity), e.g. after `HnswIndex::reorder_for_locality`.
pub struct WithIds<'a>(pub &'a HnswIndex, pub &'a neardb_core::IdMap);

impl Savable for WithIds<'_> {
    fn write_file(&self, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<u64> {
        self.0.write_with_ids(self.1, sink)
    }
}

/// A binary-code index saved without its vectors (codes only; no re-rank possible).
pub struct WithoutVectors<'a>(pub &'a BinaryIndex);

impl Savable for WithoutVectors<'_> {
    fn write_file(&self, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<u64> {
        self.0.write_without_vectors(sink)
    }
}

/// Writes `index` to `path` (through a temporary file renamed into place, so a crash never
/// leaves a half-written index under the final name). Returns the file length.
pub fn save(index: &impl Savable, path: impl AsRef<Path>) -> Result<u64, FileError> {
    let path = path.as_ref();
    let tmp = path.with_extension("neardb.tmp");
    let file = File::create(&tmp).map_err(|e| FileError::io(&tmp, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let len = index.write_file(&mut |b| w.write_all(b)).map_err(|e| FileError::io(&tmp, e))?;
    let file = w.into_inner().map_err(|e| FileError::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| FileError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| FileError::io(path, e))?;
    Ok(len)
}

/// Which store every kind of an [`Index`] uses: [`InMemory`] or [`InFile`].
pub trait Stores {
    /// Flat's vectors.
    type Rows: RowStore + Send + Sync;
    /// HNSW's and Vamana's vectors and links.
    type Graph: GraphStore + Send + Sync;
    /// IVF-PQ's centroids, lists and vectors.
    type Lists: IvfStore + Send + Sync;
    /// The binary index's encoder, codes, vectors and tables.
    type Codes: BinaryStore + Send + Sync;
}

/// Indexes in their own memory: built, grown and changed.
pub struct InMemory;

impl Stores for InMemory {
    type Rows = neardb_core::flat::OwnedRows;
    type Graph = neardb_core::hnsw::Owned;
    type Lists = neardb_core::ivf::Owned;
    type Codes = neardb_core::lsh::Owned;
}

/// Indexes read in place from file bytes `B` (a memory map, or any aligned bytes).
pub struct InFile<B>(PhantomData<B>);

impl<B: AsRef<[u8]> + Send + Sync> Stores for InFile<B> {
    type Rows = neardb_core::flat::MappedRows<B>;
    type Graph = neardb_core::hnsw::Mapped<B>;
    type Lists = neardb_core::ivf::Mapped<B>;
    type Codes = neardb_core::lsh::Mapped<B>;
}

/// An index of any kind over either store: the one list of index kinds the library, the CLI
/// and the harness entry match on (`IndexKind` names the same list in files).
pub enum Index<S: Stores> {
    /// Exact search.
    Flat(FlatIndex<S::Rows>),
    /// HNSW graph.
    Hnsw(HnswIndex<S::Graph>),
    /// Inverted file over product-quantized residuals.
    IvfPq(IvfPqIndex<S::Lists>),
    /// Binary codes: Hamming scan or LSH tables.
    Binary(BinaryIndex<S::Codes>),
    /// Vamana graph.
    Vamana(VamanaIndex<S::Graph>),
}

/// Any index file, opened in place: from a memory map (`open`, `load`), or from any aligned
/// bytes (`AnyIndex::from_bytes`).
pub type AnyIndex<B = Mmap> = Index<InFile<B>>;

/// Opens an index file through a memory map, validating structure and checksums.
pub fn open(path: impl AsRef<Path>) -> Result<AnyIndex, FileError> {
    open_with(path, OpenOptions::default())
}

/// Like [`open`]; `opts.verify_checksums = false` skips reading every page of a huge file.
pub fn open_with(path: impl AsRef<Path>, opts: OpenOptions) -> Result<AnyIndex, FileError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| FileError::io(path, e))?;
    let len = file.metadata().map_err(|e| FileError::io(path, e))?.len();
    if len == 0 {
        // mmap of an empty file fails with an OS error that says nothing useful.
        let e = neardb_core::FormatError::Truncated { needed: 64, available: 0 };
        return Err(FileError::index(path, e));
    }
    // SAFETY: the map is read-only and lives inside the returned index. Every access goes
    // through bounds-checked slices validated at open. Another process truncating or rewriting
    // the file while it is mapped is outside what any mmap user can guard against; `save`
    // never rewrites in place (it renames a new file over the old one), so NearDB's own
    // writers cannot cause it.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| FileError::io(path, e))?;
    from_map(map, path, opts)
}

/// Reads an index file into anonymous memory backed by transparent huge pages where the
/// kernel allows, then opens it in place there. Costs one read of the file; searches then pay
/// far fewer TLB misses than through a file mapping of 4 KiB pages (see BENCHMARKS.md).
pub fn load(path: impl AsRef<Path>) -> Result<AnyIndex, FileError> {
    load_with(path, OpenOptions::default())
}

/// Like [`load`], with control over checksum verification.
pub fn load_with(path: impl AsRef<Path>, opts: OpenOptions) -> Result<AnyIndex, FileError> {
    use std::io::Read;
    let path = path.as_ref();
    let mut file = File::open(path).map_err(|e| FileError::io(path, e))?;
    let len = file.metadata().map_err(|e| FileError::io(path, e))?.len();
    if len == 0 {
        let e = neardb_core::FormatError::Truncated { needed: 64, available: 0 };
        return Err(FileError::index(path, e));
    }
    let len = usize::try_from(len)
        .map_err(|_| FileError::index(path, neardb_core::FormatError::TooLarge { what: "file" }))?;
    let mut map = memmap2::MmapMut::map_anon(len).map_err(|e| FileError::io(path, e))?;
    #[cfg(target_os = "linux")]
    {
        // A hint: without huge pages the index still works, only with more TLB misses.
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    file.read_exact(&mut map).map_err(|e| FileError::io(path, e))?;
    let map = map.make_read_only().map_err(|e| FileError::io(path, e))?;
    from_map(map, path, opts)
}

fn from_map(map: Mmap, path: &Path, opts: OpenOptions) -> Result<AnyIndex, FileError> {
    AnyIndex::from_bytes(map, opts).map_err(|e| FileError::index(path, e))
}

impl<B: AsRef<[u8]> + Send + Sync> AnyIndex<B> {
    /// Opens file bytes (aligned to 8, e.g. `format::AlignedBytes`) as the kind of index their
    /// header names, validating structure and (as `opts` says) checksums; searched in place.
    pub fn from_bytes(bytes: B, opts: OpenOptions) -> Result<Self, neardb_core::Error> {
        let info = FileInfo::parse(bytes.as_ref(), OpenOptions { verify_checksums: false })?;
        Ok(match info.kind {
            IndexKind::Flat => Self::Flat(FlatView::open_with(bytes, opts)?),
            IndexKind::Hnsw => Self::Hnsw(HnswView::open_with(bytes, opts)?),
            IndexKind::IvfPq => Self::IvfPq(IvfPqView::open_with(bytes, opts)?),
            IndexKind::Binary => Self::Binary(BinaryView::open_with(bytes, opts)?),
            IndexKind::Vamana => Self::Vamana(VamanaView::open_with(bytes, opts)?),
            // Never parsed from this format: the SSD index has its own layout (`crate::disk`).
            IndexKind::Disk => {
                return Err(neardb_core::FormatError::UnknownIndexKind { code: IndexKind::Disk.code() }.into())
            }
        })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Flat(v) => v.bytes(),
            Self::Hnsw(v) => v.bytes(),
            Self::IvfPq(v) => v.bytes(),
            Self::Binary(v) => v.bytes(),
            Self::Vamana(v) => v.bytes(),
        }
    }

    /// The validated header and section table.
    pub fn info(&self) -> &FileInfo {
        match self {
            Self::Flat(v) => v.info(),
            Self::Hnsw(v) => v.info(),
            Self::IvfPq(v) => v.info(),
            Self::Binary(v) => v.info(),
            Self::Vamana(v) => v.info(),
        }
    }

    /// Caller ids of the slots, when the file has an `ids` section (written by an index given
    /// its own ids, e.g. in the browser); search results hold slots, `ids[slot]` is the id.
    pub fn external_ids(&self) -> Option<&[u32]> {
        match self {
            Self::Flat(v) => v.ids(),
            Self::Hnsw(v) => v.ids(),
            Self::IvfPq(v) => v.ids(),
            Self::Binary(v) => v.ids(),
            Self::Vamana(v) => v.ids(),
        }
    }

    /// The caller id of `slot`: the `ids` section's entry, or the slot itself.
    pub fn external_id(&self, slot: u32) -> u32 {
        self.external_ids().and_then(|ids| ids.get(slot as usize).copied()).unwrap_or(slot)
    }
}

impl<S: Stores> Index<S> {
    /// The vector stored at `slot`, decoded to `f32` (normalised under cosine; rounded when
    /// stored in binary16); an index keeping only codes says so.
    pub fn get_decoded(&self, slot: u32) -> Result<Vec<f32>, neardb_core::Error> {
        match self {
            Self::Flat(i) => i.get_decoded(slot),
            Self::Hnsw(i) => i.get_decoded(slot),
            Self::IvfPq(i) => i.get_decoded(slot),
            Self::Binary(i) => i.get_decoded(slot),
            Self::Vamana(i) => i.get_decoded(slot),
        }
    }

    /// Searches all queries (row-major), in parallel where the build has threads.
    pub fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
    ) -> neardb_core::Result<Vec<Vec<Neighbor>>> {
        match self {
            Self::Flat(v) => v.search_batch(queries, k, filter),
            Self::Hnsw(v) => search_batch_parallel(v, queries, k, params, filter),
            Self::IvfPq(v) => search_batch_parallel(v, queries, k, params, filter),
            Self::Binary(v) => search_batch_parallel(v, queries, k, params, filter),
            Self::Vamana(v) => search_batch_parallel(v, queries, k, params, filter),
        }
    }

    fn inner(&self) -> &(dyn VectorSearch + Sync) {
        match self {
            Self::Flat(v) => v,
            Self::Hnsw(v) => v,
            Self::IvfPq(v) => v,
            Self::Binary(v) => v,
            Self::Vamana(v) => v,
        }
    }
}

impl<S: Stores> VectorSearch for Index<S> {
    fn dim(&self) -> usize {
        self.inner().dim()
    }
    fn metric(&self) -> Metric {
        self.inner().metric()
    }
    fn len(&self) -> usize {
        self.inner().len()
    }
    fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut Vec<Neighbor>,
    ) -> neardb_core::Result<neardb_core::SearchStats> {
        self.inner().search_with_stats(query, k, params, filter, out)
    }
    fn search_scratch_bytes(&self) -> usize {
        self.inner().search_scratch_bytes()
    }
}

/// The most scratch memory concurrent searches of one batch hold together (see
/// [`VectorSearch::search_scratch_bytes`]); one search alone may exceed it.
pub const SEARCH_SCRATCH_BUDGET: usize = 512 << 20;

/// Batch search for indexes without a specialised batch path: queries spread over the rayon
/// pool, each worker reusing its own scratch through the index's pool.
pub fn search_batch_parallel<I: VectorSearch + Sync + ?Sized>(
    index: &I,
    queries: &[f32],
    k: usize,
    params: &SearchParams,
    filter: Option<&dyn Filter>,
) -> neardb_core::Result<Vec<Vec<Neighbor>>> {
    let dim = index.dim();
    if !queries.len().is_multiple_of(dim) {
        return Err(neardb_core::Error::RaggedVectors { len: queries.len(), dim });
    }
    // Results never outnumber the vectors: a huge k must not size buffers up front.
    let cap = k.min(index.len());
    let one = |q: &[f32]| {
        let mut out = Vec::with_capacity(cap);
        index.search_into(q, k, params, filter, &mut out).map(|_| out)
    };
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        // Each concurrent search holds its own scratch; a file can make that large (IVF-PQ's
        // lookup tables: 128 MiB at dim = m = 65536), so fewer run at once than there are
        // threads when their total would pass SEARCH_SCRATCH_BUDGET.
        let workers = (SEARCH_SCRATCH_BUDGET / index.search_scratch_bytes().max(1)).max(1);
        if workers < rayon::current_num_threads() {
            let nq = queries.len() / dim;
            let group = nq.div_ceil(workers).max(1) * dim;
            let groups: Vec<_> = queries
                .par_chunks(group)
                .map(|g| g.chunks_exact(dim).map(one).collect::<Result<Vec<_>, _>>())
                .collect::<Result<_, _>>()?;
            return Ok(groups.into_iter().flatten().collect());
        }
        queries.par_chunks_exact(dim).map(one).collect()
    }
    #[cfg(not(feature = "parallel"))]
    queries.chunks_exact(dim).map(one).collect()
}
