//! Immutable segments: the records a commit moved out of the log, as an index file (the
//! vectors and their graph, searched in place through a memory map, or — for `index=disk`
//! collections — an SSD index read sector by sector), a records file (external
//! ids and metadata, row by row) and, per version that deleted some of them, a deletion
//! bitmap file. A segment is never rewritten, so every version naming it shares it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use neardb_core::payload::{PayloadFilter, PayloadIndex};
use neardb_core::{Bitset, Filter, Metric, Neighbor, SearchParams, SearchStats};
use serde_json::Value;

use super::record::{encode_id, Reader, RecordId};
use super::CollectionError;
use crate::disk::{DiskIndex, DiskOpenOptions, DiskSearchParams};
use crate::{AnyIndex, IndexKind, IndexSpec, Savable};

/// The fewest rows an SSD segment holds: its PQ codes train on at least 256 vectors. A smaller
/// segment of an `index=disk` collection is an exact flat index instead.
pub const DISK_MIN_ROWS: usize = 256;

/// A segment's vectors and graph: an index file searched in place, or an SSD index.
pub enum SegmentIndex {
    /// Any index file, memory-mapped.
    Mapped(AnyIndex),
    /// An SSD index: its PQ codes in memory, its nodes read from the file.
    Disk(DiskIndex),
}

impl SegmentIndex {
    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        match self {
            Self::Mapped(i) => neardb_core::VectorSearch::dim(i),
            Self::Disk(d) => d.header().dim as usize,
        }
    }

    /// Rows in the index.
    pub fn len(&self) -> usize {
        match self {
            Self::Mapped(i) => neardb_core::VectorSearch::len(i),
            Self::Disk(d) => d.header().count as usize,
        }
    }

    /// Row `row`'s vector as stored (binary16 decoded).
    pub fn get_decoded(&self, row: u32) -> Result<Vec<f32>, CollectionError> {
        match self {
            Self::Mapped(i) => Ok(i.get_decoded(row)?),
            Self::Disk(d) => d.vector(row)?.ok_or(CollectionError::Index(neardb_core::Error::UnknownId {
                id: row.into(),
                count: d.header().count,
            })),
        }
    }

    /// Appends the vectors of `rows` (ascending, each below [`Self::len`]) to `out`, row
    /// after row: an SSD segment is read front to back once, not a read per row.
    pub fn append_rows(&self, rows: &[u32], out: &mut Vec<f32>) -> Result<(), CollectionError> {
        let d = match self {
            Self::Mapped(i) => {
                for &row in rows {
                    out.extend_from_slice(&i.get_decoded(row)?);
                }
                return Ok(());
            }
            Self::Disk(d) => d,
        };
        let dim = self.dim();
        let start = out.len();
        out.resize(start + rows.len() * dim, 0.0);
        // Where each wanted row goes; taken once filled, so a row two nodes claim fills once.
        let mut slot = vec![u32::MAX; self.len()];
        for (i, &row) in rows.iter().enumerate() {
            if let Some(s) = slot.get_mut(row as usize) {
                *s = i as u32;
            }
        }
        let mut filled = 0usize;
        d.for_each_vector(&mut |row, v| {
            if let Some(s) = slot.get_mut(row as usize).filter(|s| **s != u32::MAX) {
                let at = start + *s as usize * dim;
                out[at..at + dim].copy_from_slice(v);
                *s = u32::MAX;
                filled += 1;
            }
        })?;
        if filled != rows.len() {
            return Err(CollectionError::Index(neardb_core::Error::InvalidParameter {
                name: "segment",
                reason: "an SSD segment's nodes do not hold every row below its row count",
            }));
        }
        Ok(())
    }

    /// A search of the segment's rows (`filter` speaks rows), with what it did. An SSD
    /// segment's list size is `params.ef` (its default when 0); the two-hop strategy, which
    /// it has not, walks.
    pub fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut Vec<Neighbor>,
    ) -> Result<SearchStats, CollectionError> {
        match self {
            Self::Mapped(i) => {
                Ok(neardb_core::VectorSearch::search_with_stats(i, query, k, params, filter, out)?)
            }
            Self::Disk(d) => {
                let defaults = DiskSearchParams::default();
                let p =
                    DiskSearchParams { l: if params.ef == 0 { defaults.l } else { params.ef }, ..defaults }
                        .with_strategy(params.filter_strategy);
                let (hits, stats) = d.search(query, k, p, filter)?;
                *out = hits;
                Ok(SearchStats {
                    plan: stats.plan,
                    matches: filter.and_then(|f| f.count_allowed(self.len() as u32)).map(|m| m as usize),
                    expanded: stats.expanded,
                    distances: stats.pq_distances.saturating_add(stats.exact_distances),
                })
            }
        }
    }
}

const RECORDS_MAGIC: &[u8; 8] = b"NEARREC1";
const DELETES_MAGIC: &[u8; 8] = b"NEARDEL1";

/// File names of segment `id`.
pub fn index_name(id: u64) -> String {
    format!("seg-{id:08}.neardb")
}

/// The records file of segment `id`.
pub fn records_name(id: u64) -> String {
    format!("seg-{id:08}.rec")
}

/// The deletion bitmap of segment `id` as of version `version`.
pub fn deletes_name(id: u64, version: u64) -> String {
    format!("seg-{id:08}.del-{version:08}")
}

/// One open segment.
pub struct Segment {
    /// Its number (names its files).
    pub id: u64,
    /// The vectors' index, slot = row.
    pub index: SegmentIndex,
    /// External id of each row.
    pub keys: Vec<RecordId>,
    /// Metadata JSON of all rows, back to back; row `r` is `meta[meta_at[r]..meta_at[r + 1]]`.
    meta: Vec<u8>,
    meta_at: Vec<usize>,
    /// The rows' payload index, built from the metadata when a filter first needs it (so
    /// opening a version reads no JSON).
    payload: OnceLock<Result<PayloadIndex, String>>,
    /// The rows matching recently used filters, newest last: a segment never changes, so a
    /// filter's rows stay valid, and a workload repeating a filter (a tenant, a language)
    /// evaluates it once.
    matching: Mutex<Vec<(String, Arc<Bitset>)>>,
}

/// Filters whose matching rows a segment keeps.
const FILTER_CACHE: usize = 16;

impl Segment {
    /// Rows in the segment (deleted ones included).
    pub fn rows(&self) -> u32 {
        self.keys.len() as u32
    }

    /// The rows matching `filter` (deleted ones included), from the cache when it was used
    /// lately.
    /// `key` is [`filter_key`] of `filter`.
    pub fn matching(&self, filter: &PayloadFilter, key: &str) -> Result<Arc<Bitset>, CollectionError> {
        let mut cache = self.matching.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = cache.iter().position(|(k, _)| k == key) {
            let hit = cache.remove(i);
            let rows = hit.1.clone();
            cache.push(hit);
            return Ok(rows);
        }
        drop(cache);
        let rows = Arc::new(self.payload()?.evaluate(filter));
        let mut cache = self.matching.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= FILTER_CACHE {
            cache.remove(0);
        }
        cache.push((key.to_owned(), rows.clone()));
        Ok(rows)
    }

    /// The metadata JSON of `row` as stored (empty when it has none).
    pub fn metadata_json(&self, row: u32) -> &[u8] {
        let r = row as usize;
        &self.meta[self.meta_at[r]..self.meta_at[r + 1]]
    }

    /// The metadata of `row` (null when it has none).
    pub fn metadata(&self, row: u32) -> Result<Value, CollectionError> {
        let r = row as usize;
        let bytes = &self.meta[self.meta_at[r]..self.meta_at[r + 1]];
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(bytes).map_err(|e| CollectionError::Corrupt {
            path: records_name(self.id).into(),
            reason: format!("row {row}'s metadata: {e}"),
        })
    }

    /// Writes segment `id` in `dir` from rows of `dim` floats (as the collection stores them)
    /// with their ids and metadata, durably, and opens it.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        dir: &Path,
        id: u64,
        spec: &IndexSpec,
        metric: Metric,
        dim: usize,
        vectors: &[f32],
        keys: &[RecordId],
        metadata: &[&[u8]],
    ) -> Result<Self, CollectionError> {
        if spec.kind == IndexKind::Disk {
            let rows = vectors.len() / dim.max(1);
            if rows >= DISK_MIN_ROWS {
                let path = dir.join(index_name(id));
                spec.build_disk(metric, dim, vectors, &path)?;
                return Self::write_records(dir, id, keys, metadata);
            }
            let flat = IndexSpec { kind: IndexKind::Flat, ..spec.clone() };
            let built = flat.build(metric, dim, vectors, &|_| {})?;
            return Self::write_with(dir, id, &built, keys, metadata);
        }
        let built = spec.build(metric, dim, vectors, &|_| {})?;
        Self::write_with(dir, id, &built, keys, metadata)
    }

    /// Writes segment `id` in `dir` from an index already built (slot = row) with its rows'
    /// ids and metadata, durably, and opens it.
    pub fn write_with(
        dir: &Path,
        id: u64,
        index: &impl Savable,
        keys: &[RecordId],
        metadata: &[&[u8]],
    ) -> Result<Self, CollectionError> {
        crate::save(index, dir.join(index_name(id)))?;
        Self::write_records(dir, id, keys, metadata)
    }

    /// Writes the records file of segment `id` (its index file written already), durably, and
    /// opens the segment.
    fn write_records(
        dir: &Path,
        id: u64,
        keys: &[RecordId],
        metadata: &[&[u8]],
    ) -> Result<Self, CollectionError> {
        let mut body = Vec::new();
        body.extend_from_slice(RECORDS_MAGIC);
        body.extend_from_slice(&(keys.len() as u64).to_le_bytes());
        for (key, json) in keys.iter().zip(metadata) {
            encode_id(key, &mut body);
            body.extend_from_slice(&(json.len() as u32).to_le_bytes());
            body.extend_from_slice(json);
        }
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        write_durably(&dir.join(records_name(id)), &body)?;
        Self::open(dir, id)
    }

    /// Opens segment `id` of `dir`, checking that its files agree with each other.
    pub fn open(dir: &Path, id: u64) -> Result<Self, CollectionError> {
        let path = dir.join(index_name(id));
        let index = if crate::disk::is_disk_index(&path) {
            SegmentIndex::Disk(DiskIndex::open(&path, DiskOpenOptions::default())?)
        } else {
            SegmentIndex::Mapped(crate::open(&path)?)
        };
        let path = dir.join(records_name(id));
        let bytes = read_checked(&path, RECORDS_MAGIC, "records")?;
        let corrupt =
            |reason: &str| CollectionError::Corrupt { path: path.clone(), reason: reason.to_owned() };
        let mut r = Reader::new(&bytes);
        let rows = r.u64("a row count").map_err(corrupt)?;
        // Each row takes at least 13 bytes, so a count the file cannot hold is refused before
        // anything is sized by it.
        if rows > (r.remaining() / 13) as u64 || rows != index.len() as u64 {
            return Err(corrupt("its row count does not match its index file"));
        }
        let rows = rows as usize;
        // An id may name several rows: a segment written from the recent records' graph keeps
        // the rows replaced before the commit (deleted as of its first version). The newest
        // row not deleted is the record.
        let mut keys = Vec::with_capacity(rows);
        let mut meta = Vec::new();
        let mut meta_at = Vec::with_capacity(rows + 1);
        meta_at.push(0);
        for _ in 0..rows {
            let key = r.id().map_err(corrupt)?;
            let len = r.u32("a metadata length").map_err(corrupt)? as usize;
            let text = r.take(len, "metadata").map_err(corrupt)?;
            meta.extend_from_slice(text);
            meta_at.push(meta.len());
            keys.push(key);
        }
        if r.remaining() != 0 {
            return Err(corrupt("bytes after the last row"));
        }
        Ok(Self {
            id,
            index,
            keys,
            meta,
            meta_at,
            payload: OnceLock::new(),
            matching: Mutex::new(Vec::new()),
        })
    }

    /// The payload index, built on first use from the metadata (an error if any of it is not
    /// JSON).
    fn payload(&self) -> Result<&PayloadIndex, CollectionError> {
        let built = self.payload.get_or_init(|| {
            let mut payload = PayloadIndex::with_unique_field(super::ID_FIELD);
            for (row, key) in self.keys.iter().enumerate() {
                let text = &self.meta[self.meta_at[row]..self.meta_at[row + 1]];
                let value: Value = if text.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(text).map_err(|_| format!("row {row}'s metadata is not JSON"))?
                };
                let fields = super::indexed_fields(key, &value);
                payload.push_row(fields.iter().map(|(n, v)| (n.as_ref(), v)));
            }
            payload.seal();
            Ok(payload)
        });
        built.as_ref().map_err(|reason| CollectionError::Corrupt {
            path: records_name(self.id).into(),
            reason: reason.clone(),
        })
    }

    /// Reads the deletion bitmap of this segment written by `version`.
    pub fn read_deletes(&self, dir: &Path, version: u64) -> Result<Bitset, CollectionError> {
        let path = dir.join(deletes_name(self.id, version));
        let bytes = read_checked(&path, DELETES_MAGIC, "deletion")?;
        let corrupt =
            |reason: &str| CollectionError::Corrupt { path: path.clone(), reason: reason.to_owned() };
        let mut r = Reader::new(&bytes);
        let rows = r.u64("a row count").map_err(corrupt)?;
        if rows != u64::from(self.rows()) || r.remaining() != (rows as usize).div_ceil(64) * 8 {
            return Err(corrupt("its size does not match its segment"));
        }
        let words = r
            .take(r.remaining(), "words")
            .map_err(corrupt)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Bitset::from_words(self.rows(), words).ok_or_else(|| corrupt("bits set beyond its rows"))
    }

    /// Writes `deleted` as this segment's deletion bitmap of `version`, durably.
    pub fn write_deletes(&self, dir: &Path, version: u64, deleted: &Bitset) -> Result<(), CollectionError> {
        let mut body = Vec::with_capacity(20 + deleted.words().len() * 8);
        body.extend_from_slice(DELETES_MAGIC);
        body.extend_from_slice(&u64::from(self.rows()).to_le_bytes());
        for w in deleted.words() {
            body.extend_from_slice(&w.to_le_bytes());
        }
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        write_durably(&dir.join(deletes_name(self.id, version)), &body)
    }
}

/// What a segment's filter cache knows a filter by: its whole structure, spelled out.
pub fn filter_key(filter: &PayloadFilter) -> String {
    format!("{filter:?}")
}

/// The body of a file written as magic, body, CRC-32 of both: after the magic, checked.
fn read_checked(path: &Path, magic: &[u8; 8], what: &str) -> Result<Vec<u8>, CollectionError> {
    let mut bytes = std::fs::read(path).map_err(|e| CollectionError::io(path, e))?;
    let corrupt = |reason: String| CollectionError::Corrupt { path: path.to_path_buf(), reason };
    let Some(body_len) = bytes.len().checked_sub(4) else {
        return Err(corrupt("shorter than its checksum".into()));
    };
    if crc32fast::hash(&bytes[..body_len]).to_le_bytes() != bytes[body_len..] {
        return Err(corrupt("checksum mismatch".into()));
    }
    if bytes.get(..8) != Some(&magic[..]) {
        return Err(corrupt(format!("not a NearDB {what} file")));
    }
    bytes.truncate(body_len);
    bytes.drain(..8);
    Ok(bytes)
}

/// Writes `bytes` to `path` through a temporary file, synced, then renamed into place (the
/// directory is synced by the caller's commit).
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), CollectionError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let file = File::create(&tmp).map_err(|e| CollectionError::io(&tmp, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(bytes).map_err(|e| CollectionError::io(&tmp, e))?;
    let file = w.into_inner().map_err(|e| CollectionError::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| CollectionError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CollectionError::io(path, e))
}
