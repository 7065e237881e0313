//! Saving any index to a file and opening one in place through a memory map.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use memmap2::Mmap;
use quiverdb_core::format::{FileInfo, IndexKind, OpenOptions};
use quiverdb_core::{Filter, FlatIndex, FlatView, Metric, Neighbor, SearchParams, VectorSearch};

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

/// Writes `index` to `path` (through a temporary file renamed into place, so a crash never
/// leaves a half-written index under the final name). Returns the file length.
pub fn save(index: &impl Savable, path: impl AsRef<Path>) -> Result<u64, FileError> {
    let path = path.as_ref();
    let tmp = path.with_extension("qvdb.tmp");
    let file = File::create(&tmp).map_err(|e| FileError::io(&tmp, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let len = index.write_file(&mut |b| w.write_all(b)).map_err(|e| FileError::io(&tmp, e))?;
    let file = w.into_inner().map_err(|e| FileError::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| FileError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| FileError::io(path, e))?;
    Ok(len)
}

/// Any index file, opened in place from a memory map.
pub enum AnyIndex {
    /// Exact search.
    Flat(FlatView<Mmap>),
}

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
        let e = quiverdb_core::FormatError::Truncated { needed: 64, available: 0 };
        return Err(FileError::index(path, e));
    }
    // SAFETY: the map is read-only and lives inside the returned index. Every access goes
    // through bounds-checked slices validated at open. Another process truncating or rewriting
    // the file while it is mapped is outside what any mmap user can guard against; `save`
    // never rewrites in place (it renames a new file over the old one), so QuiverDB's own
    // writers cannot cause it.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| FileError::io(path, e))?;
    let info = FileInfo::parse(&map, OpenOptions { verify_checksums: false })
        .map_err(|e| FileError::index(path, e))?;
    match info.kind {
        IndexKind::Flat => {
            Ok(AnyIndex::Flat(FlatView::open_with(map, opts).map_err(|e| FileError::index(path, e))?))
        }
        other => Err(FileError::index(
            path,
            quiverdb_core::Error::InvalidParameter { name: "index kind", reason: unsupported_kind(other) },
        )),
    }
}

fn unsupported_kind(kind: IndexKind) -> &'static str {
    match kind {
        IndexKind::Flat => "flat",
        IndexKind::Hnsw => "HNSW files are not supported by this build yet",
    }
}

impl AnyIndex {
    /// The validated header and section table.
    pub fn info(&self) -> &FileInfo {
        match self {
            Self::Flat(v) => v.info(),
        }
    }

    /// Searches all queries (row-major), in parallel where the build has threads.
    pub fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
    ) -> quiverdb_core::Result<Vec<Vec<Neighbor>>> {
        match self {
            Self::Flat(v) => {
                let _ = params;
                v.search_batch(queries, k, filter)
            }
        }
    }

    fn inner(&self) -> &dyn VectorSearch {
        match self {
            Self::Flat(v) => v,
        }
    }
}

impl VectorSearch for AnyIndex {
    fn dim(&self) -> usize {
        self.inner().dim()
    }
    fn metric(&self) -> Metric {
        self.inner().metric()
    }
    fn len(&self) -> usize {
        self.inner().len()
    }
    fn search_into(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut Vec<Neighbor>,
    ) -> quiverdb_core::Result<()> {
        self.inner().search_into(query, k, params, filter, out)
    }
}
