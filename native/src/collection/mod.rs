//! Durable collections: records with external ids, vectors and JSON metadata in a directory
//! that survives crashes, answers filtered searches, and keeps a version per commit.
//!
//! - **Writes** (`upsert`, `delete`) are validated, appended to the write-ahead log ([`wal`])
//!   as one frame per batch, applied to the in-memory table of recent records, and, under the
//!   default [`Durability::Sync`], acknowledged only after an `fdatasync` that covers them
//!   (concurrent writers share one sync: group commit).
//! - **Commits** move the recent records into an immutable segment ([`segment`]: an index file
//!   searched in place plus a records file), write deletion bitmaps for segments that lost
//!   records, start a new log generation and replace the manifest ([`manifest`]): the commit
//!   point. Every commit is a version, optionally named, that can be opened read-only later.
//! - **Recovery** (`open`) reads the manifest, opens the newest version's segments and replays
//!   the log, stopping at the first torn or corrupt frame (reported in [`Recovery`]).
//! - **Search** runs every segment's own index with a filter of the rows that match the
//!   payload filter and are not deleted (the core's planner chooses scan or walk per segment
//!   from the exact match count), scans the recent records exactly, and merges.
//!
//! Layout of a collection directory: `MANIFEST`, `wal-<generation>.log`, per segment
//! `seg-<n>.neardb` (index) and `seg-<n>.rec` (ids, metadata), and `seg-<n>.del-<version>`
//! (the rows deleted as of that version). Everything besides the manifest is written once and
//! never changed, so versions share files; [`Collection::retain`] removes what no kept version
//! needs.

mod filter_json;
mod manifest;
mod recent;
mod record;
mod segment;
mod syncer;
mod wal;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use neardb_core::payload::{PayloadFilter, PayloadIndex};
use neardb_core::{Bitset, FlatIndex, IndexKind, Metric, Neighbor, SearchParams, SearchStats, VectorSearch};
use serde_json::Value;

pub use filter_json::{filter_from_json, parse_filter, FilterError, ID_FIELD};
pub use manifest::{SegmentRef, Version};
pub use record::{field_values, Record, RecordId, MAX_ID_BYTES};
pub use wal::TornTail;

use manifest::Manifest;
use recent::{Indexer, RecentGraph, FEED_ROWS};
use record::{encode_id, encode_metadata, Reader};
use segment::Segment;
use syncer::Syncer;
use wal::Wal;

use crate::{FileError, IndexSpec, Layout, Quantize, SpecError};

/// What can go wrong with a collection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectionError {
    /// The operating system refused a file operation.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file of the collection is damaged or not what its name says.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `create` on a directory that already holds a collection.
    #[error("{0} already holds a collection")]
    Exists(PathBuf),
    /// `open` on a directory without a collection.
    #[error("{0} holds no collection (no MANIFEST)")]
    NotFound(PathBuf),
    /// An index file could not be built, written or opened.
    #[error(transparent)]
    File(#[from] FileError),
    /// The index options are invalid for a collection.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The core refused the input (dimension, NaN, k = 0, …).
    #[error(transparent)]
    Index(#[from] neardb_core::Error),
    /// An SSD segment could not be read or searched.
    #[error(transparent)]
    Disk(#[from] crate::disk::DiskError),
    /// A record's id is not usable.
    #[error("id {id}: {reason}")]
    InvalidId {
        /// The id.
        id: RecordId,
        /// Why.
        reason: &'static str,
    },
    /// The same id twice in one batch.
    #[error("id {0} appears more than once in the batch")]
    DuplicateId(RecordId),
    /// Metadata that is not a JSON object (or null), or uses the reserved field `$id`.
    #[error("record {id}: metadata must be a JSON object (without the field \"$id\") or null, got {got}")]
    InvalidMetadata {
        /// The record.
        id: RecordId,
        /// The JSON type given.
        got: &'static str,
    },
    /// A record's vector failed validation.
    #[error("record {id}: {source}")]
    InvalidVector {
        /// The record.
        id: RecordId,
        /// What is wrong.
        source: neardb_core::Error,
    },
    /// No record has this id.
    #[error("no record has id {0}")]
    UnknownId(RecordId),
    /// No kept version has this number or name.
    #[error("no version {0} is kept")]
    UnknownVersion(String),
    /// A commit name already used by a kept version.
    #[error("a kept version is already named {0:?}")]
    DuplicateVersionName(String),
    /// A batch too large for one log frame.
    #[error("the batch takes {bytes} bytes in the log, more than the {max} one frame holds: split it")]
    TooLarge {
        /// Bytes the batch needs.
        bytes: u64,
        /// Most bytes of a frame.
        max: u64,
    },
    /// An earlier log write or sync failed, so the log may hold less than memory: the
    /// collection refuses writes until reopened.
    #[error("an earlier write to the log failed; reopen the collection")]
    Poisoned,
}

impl CollectionError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}

type Result<T, E = CollectionError> = std::result::Result<T, E>;

/// When an acknowledged write is on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every write returns after an `fdatasync` covering it (writers arriving together share
    /// one): an acknowledged write survives a crash or power loss.
    #[default]
    Sync,
    /// The log is synced once it has grown by `bytes` since the last sync, and at commit: a
    /// crash loses at most that much of the latest acknowledged writes (bulk loads).
    Batch {
        /// Bytes between syncs.
        bytes: u64,
    },
    /// Only commits sync; the operating system writes the log when it likes.
    None,
}

/// How a collection is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// When an acknowledged write is on disk.
    pub durability: Durability,
    /// Index the recent records (those since the last commit) in a background thread, so a
    /// search reads them through a graph instead of scanning them all, and a commit whose
    /// records are all indexed keeps that graph instead of building one. Off for a process
    /// that only loads records and exits.
    pub index_recent: bool,
    /// Indexed recent records from which searches use their graph (below, scanning is as fast).
    pub index_recent_from: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { durability: Durability::default(), index_recent: true, index_recent_from: 4096 }
    }
}

/// The shape of a new collection.
#[derive(Clone, Debug)]
pub struct CollectionConfig {
    /// Vector dimension.
    pub dim: usize,
    /// Distance metric.
    pub metric: Metric,
    /// Index options of its segments (`IndexSpec::from_options` keys): default HNSW, M 16,
    /// efConstruction 200, f32 vectors. Kinds `hnsw`, `vamana` and `flat`; `quantize` `f16`,
    /// `sq8` or `sq8+f16` for graph storage.
    pub index: BTreeMap<String, String>,
}

impl CollectionConfig {
    /// HNSW (M 16, efConstruction 200) over f32 vectors.
    pub fn new(dim: usize, metric: Metric) -> Self {
        let index = [("index", "hnsw"), ("m", "16"), ("ef_construction", "200")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { dim, metric, index }
    }

    /// The same with one index option set (checked when the collection is created).
    pub fn with_option(mut self, key: &str, value: &str) -> Self {
        self.index.insert(key.to_owned(), value.to_owned());
        self
    }
}

/// What `open` found in the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Log frames (batches) replayed.
    pub frames: u64,
    /// Records upserted or deleted by them.
    pub changes: u64,
    /// Where replay stopped early, if it did (the torn bytes are dropped from the log).
    pub torn: Option<TornTail>,
}

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// The record's id.
    pub id: RecordId,
    /// Its distance to the query ("smaller is closer").
    pub distance: f32,
    /// Its metadata, when asked for.
    pub metadata: Option<Value>,
    /// Its vector (as stored), when asked for.
    pub vector: Option<Vec<f32>>,
}

/// Options of a search beyond query and k.
#[derive(Clone, Copy, Debug, Default)]
pub struct SearchOptions<'a> {
    /// Only records matching this filter.
    pub filter: Option<&'a PayloadFilter>,
    /// Effort knobs (`ef`, filter strategy) for every segment.
    pub params: SearchParams,
    /// Return each hit's metadata.
    pub with_metadata: bool,
    /// Return each hit's vector.
    pub with_vector: bool,
}

/// What a search did: the match count of the filter, and each part's plan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CollectionSearchStats {
    /// Live records matching the filter (all live records without one), exactly.
    pub matches: u64,
    /// Per segment (in order), then the recent records' scan last: what it did.
    pub parts: Vec<SearchStats>,
}

/// A version as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// Its number.
    pub version: u64,
    /// Its name, if given.
    pub name: Option<String>,
    /// Commit time, ms since the Unix epoch.
    pub committed_unix_ms: u64,
    /// Live records.
    pub records: u64,
    /// Segments it uses.
    pub segments: usize,
}

impl From<&Version> for VersionInfo {
    fn from(v: &Version) -> Self {
        Self {
            version: v.version,
            name: v.name.clone(),
            committed_unix_ms: v.committed_unix_ms,
            records: v.records,
            segments: v.segments.len(),
        }
    }
}

/// A segment as one state of the collection sees it.
#[derive(Clone)]
struct Part {
    segment: Arc<Segment>,
    deleted: Arc<Bitset>,
    deleted_count: u32,
    /// The version whose deletion file holds `deleted` (none: nothing deleted, or changed
    /// since the last commit and not yet written when `dirty`).
    deletes: Option<u64>,
    dirty: bool,
}

impl Part {
    /// A new segment as a part, with the rows for which `gone(row)` holds marked deleted.
    fn fresh(segment: Segment, gone: impl Fn(u32) -> bool) -> Self {
        let mut deleted = Bitset::new(segment.rows());
        let mut count = 0;
        for row in (0..segment.rows()).filter(|&r| gone(r)) {
            deleted.insert(row);
            count += 1;
        }
        Self {
            segment: Arc::new(segment),
            deleted: Arc::new(deleted),
            deleted_count: count,
            deletes: None,
            dirty: count > 0,
        }
    }
}

/// Rows per chunk of the recent records' vectors: growing one contiguous buffer would copy it
/// whole each time it doubles (tens of milliseconds at 100k × 384, stalling a write).
#[cfg(not(test))]
const CHUNK_ROWS: u32 = 1 << 14;
/// Small in tests, so batches span chunks.
#[cfg(test)]
const CHUNK_ROWS: u32 = 64;

/// A batch at least this large marks a bulk load (the next chunk is then made ahead).
const BULK_BATCH: usize = 256;

/// The recent records not yet in a segment, searched exactly.
struct Memtable {
    /// Vectors in chunks of [`CHUNK_ROWS`] rows (as the segments will store them).
    chunks: Vec<FlatIndex>,
    dim: usize,
    metric: Metric,
    f16: bool,
    keys: Vec<RecordId>,
    /// Metadata JSON of all rows back to back (empty: none); row `r`'s is
    /// `meta[meta_at[r]..meta_at[r + 1]]`, the bytes the log holds.
    meta: Vec<u8>,
    meta_at: Vec<usize>,
    /// Rows still live (not replaced or deleted since).
    live: Vec<u64>,
    live_count: u32,
    payload: PayloadIndex,
    /// The rows' graph, grown in the background (none when the collection does not index its
    /// recent records).
    graph: Option<Arc<RecentGraph>>,
    /// The next chunk, made ahead during bulk loads.
    spare: Arc<Mutex<Option<FlatIndex>>>,
}

impl Memtable {
    fn new(dim: usize, metric: Metric, f16: bool, graph: Option<Arc<RecentGraph>>) -> Result<Self> {
        // Checks dimension and metric now, so a later chunk cannot fail to be made.
        Self::chunk(dim, metric, f16)?;
        Ok(Self {
            chunks: Vec::new(),
            dim,
            metric,
            f16,
            keys: Vec::new(),
            meta: Vec::new(),
            meta_at: vec![0],
            live: Vec::new(),
            live_count: 0,
            payload: PayloadIndex::with_unique_field(ID_FIELD),
            graph,
            spare: Arc::default(),
        })
    }

    fn chunk(dim: usize, metric: Metric, f16: bool) -> Result<FlatIndex> {
        let mut flat = FlatIndex::new(dim, metric)?;
        if f16 {
            flat.store_f16()?;
        }
        flat.reserve(CHUNK_ROWS as usize)?;
        Ok(flat)
    }

    /// The stored vectors of rows `rows`, row-major.
    fn vectors(&self, rows: std::ops::Range<u32>) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(rows.len() * self.dim);
        for row in rows {
            out.extend_from_slice(&self.vector(row)?);
        }
        Ok(out)
    }

    /// The stored vector of `row`.
    fn vector(&self, row: u32) -> Result<Vec<f32>> {
        let chunk = self
            .chunks
            .get((row / CHUNK_ROWS) as usize)
            .ok_or(neardb_core::Error::UnknownId { id: u64::from(row), count: u64::from(self.rows()) })?;
        Ok(chunk.get_decoded(row % CHUNK_ROWS)?)
    }

    /// Adds the records' vectors to the chunks. Callers check them with [`check_storable`]
    /// first: a batch may span two chunks, and a refused one must add nothing.
    fn add_vectors(&mut self, records: &[NewRecord<'_>]) -> Result<u32> {
        let first = self.rows();
        for (i, rec) in records.iter().enumerate() {
            let row = first + i as u32;
            if row.is_multiple_of(CHUNK_ROWS) {
                let ready = lock(&self.spare).take();
                let chunk = match ready {
                    Some(chunk) => chunk,
                    None => Self::chunk(self.dim, self.metric, self.f16)?,
                };
                self.chunks.push(chunk);
                // From the second chunk on, or with a batch of hundreds, records arrive in
                // bulk: the next chunk is made on another thread meanwhile, its pages faulted
                // in there (a third of a bulk upsert's time was the kernel backing fresh chunk
                // pages).
                if self.chunks.len() >= 2 || records.len() >= BULK_BATCH {
                    self.prepare_spare();
                }
            }
            // Straight from the caller's record (or the replayed frame) into the chunk: a
            // bulk upsert copies each vector once into memory, once into the log.
            if let Some(chunk) = self.chunks.last_mut() {
                chunk.add(rec.vector)?;
            }
        }
        Ok(first)
    }

    /// Starts making the next chunk, touched, on a thread of its own.
    fn prepare_spare(&self) {
        let (spare, dim, metric, f16) = (self.spare.clone(), self.dim, self.metric, self.f16);
        // Without a thread the next chunk is made when needed, as the first ones are.
        let _ = std::thread::Builder::new().name("neardb-chunk".into()).spawn(move || {
            if let Ok(mut chunk) = Self::chunk(dim, metric, f16) {
                chunk.touch_reserved();
                *lock(&spare) = Some(chunk);
            }
        });
    }

    fn rows(&self) -> u32 {
        self.keys.len() as u32
    }

    fn is_live(&self, row: u32) -> bool {
        bit(&self.live, row)
    }

    fn kill(&mut self, row: u32) {
        if let Some(w) = self.live.get_mut(row as usize / 64) {
            if *w >> (row % 64) & 1 == 1 {
                *w &= !(1 << (row % 64));
                self.live_count -= 1;
            }
        }
    }

    /// The metadata JSON of `row`.
    fn metadata_json(&self, row: u32) -> &[u8] {
        let r = row as usize;
        &self.meta[self.meta_at[r]..self.meta_at[r + 1]]
    }

    /// The metadata of `row` (null when it has none).
    fn metadata(&self, row: u32) -> Result<Value> {
        let bytes = self.metadata_json(row);
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        // The bytes were written from a `Value` (or checked when replayed).
        serde_json::from_slice(bytes).map_err(|e| CollectionError::Corrupt {
            path: PathBuf::from("(recent records)"),
            reason: format!("row {row}'s metadata: {e}"),
        })
    }

    /// Appends checked records; returns their first row.
    fn push(&mut self, records: &[NewRecord<'_>]) -> Result<u32> {
        let first = self.add_vectors(records)?;
        for (i, rec) in records.iter().enumerate() {
            let row = first + i as u32;
            let fields = indexed_fields(rec.id, rec.metadata);
            self.payload.push_row(fields.iter().map(|(n, v)| (n.as_ref(), v)));
            self.keys.push(rec.id.clone());
            self.meta.extend_from_slice(rec.json);
            self.meta_at.push(self.meta.len());
            if self.live.len() * 64 <= row as usize {
                self.live.push(0);
            }
            self.live[row as usize / 64] |= 1 << (row % 64);
            self.live_count += 1;
        }
        Ok(first)
    }

    fn live_set(&self) -> Bitset {
        live_bitset(&self.live, self.rows())
    }
}

/// Whether bit `row` of `words` is set.
fn bit(words: &[u64], row: u32) -> bool {
    words.get(row as usize / 64).is_some_and(|w| w >> (row % 64) & 1 == 1)
}

/// The live rows of a table of `rows` rows, from its live words (which hold no bit beyond).
fn live_bitset(words: &[u64], rows: u32) -> Bitset {
    let words = words.get(..rows.div_ceil(64) as usize).unwrap_or(words).to_vec();
    Bitset::from_words(rows, words).unwrap_or_else(|| Bitset::new(rows))
}

/// A checked record on its way into the recent records, with its metadata also as the JSON
/// the log holds.
struct NewRecord<'a> {
    id: &'a RecordId,
    vector: &'a [f32],
    json: &'a [u8],
    metadata: &'a Value,
}

/// Where the live record of an id is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    /// Part `part`, row `row`.
    Segment { part: usize, row: u32 },
    /// A row of the recent records.
    Recent(u32),
    /// A row of the records being committed (frozen, searchable, until their segment is in).
    Frozen(u32),
}

/// Where each live record is, by id. Every write hashes its ids here: foldhash (hashbrown's own
/// default, seeded per process so crafted ids cannot aim at one bucket) costs a fraction of
/// SipHash, which was 15 % of a bulk upsert.
type Locations = HashMap<RecordId, Loc, foldhash::fast::RandomState>;

/// A batch's ids, to refuse duplicates within it (hashed as [`Locations`] is).
type IdSet<'a> = HashSet<&'a RecordId, foldhash::fast::RandomState>;

/// The writable newest state.
struct Head {
    manifest: Manifest,
    parts: Vec<Part>,
    recent: Memtable,
    /// Records a commit is turning into a segment: searched as they were frozen, less what
    /// was deleted or replaced since (`live`).
    frozen: Option<Frozen>,
    locs: Locations,
}

/// The recent records of a commit under way.
struct Frozen {
    table: Arc<Memtable>,
    /// Rows still live: the table's own live set when frozen, less later kills.
    live: Vec<u64>,
    /// The log generation holding them (removed once their segment is committed).
    generation: u64,
}

impl Frozen {
    fn live_set(&self) -> Bitset {
        live_bitset(&self.live, self.table.rows())
    }
}

impl Head {
    /// The recent and frozen tables with their live rows, in the order searches number them
    /// (after the segments).
    fn tables(&self) -> Vec<(&Memtable, Bitset)> {
        let mut out = vec![(&self.recent, self.recent.live_set())];
        if let Some(f) = &self.frozen {
            out.push((&*f.table, f.live_set()));
        }
        out
    }

    /// The recent and frozen tables alone (what reading a record needs).
    fn table_refs(&self) -> Vec<&Memtable> {
        let mut out = vec![&self.recent];
        out.extend(self.frozen.as_ref().map(|f| &*f.table));
        out
    }
}

/// The log and what has been synced of it.
struct Log {
    wal: Wal,
    /// Bytes appended since the last sync (for `Durability::Batch`).
    unsynced: u64,
    /// The log file, for the syncer (which syncs while appends go on).
    file: Arc<File>,
}

/// A durable, versioned collection of records in one directory. All methods take `&self`:
/// searches run concurrently with each other, writes are serialised, and a sync is shared by
/// the writers waiting on it.
pub struct Collection {
    dir: PathBuf,
    dim: usize,
    metric: Metric,
    spec: IndexSpec,
    options: OpenOptions,
    /// Shared with the indexer thread, which reads the recent records from it.
    head: Arc<RwLock<Head>>,
    /// Grows the recent records' graph (none: not asked for, or no thread could be started).
    indexer: Option<Indexer>,
    log: Mutex<Log>,
    /// Syncs the log beside the writers.
    syncer: Syncer,
    /// A log write or sync failed, so the log may hold less than memory: refuse writes.
    poisoned: AtomicBool,
    /// Held by a commit from start to end: one at a time.
    committing: Mutex<()>,
    recovery: Recovery,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves data that the poisoned flag (for the log) or
    // reopening handles; the lock itself is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Syncs a directory, so renames and new files in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| CollectionError::io(dir, e))
}

const OP_UPSERT: u8 = 1;
const OP_DELETE: u8 = 2;

fn spec_of(index: &BTreeMap<String, String>) -> Result<IndexSpec> {
    let spec = IndexSpec::from_options(index.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    spec.check()?;
    let quantize_ok = match spec.kind {
        IndexKind::Hnsw | IndexKind::Vamana | IndexKind::Flat => {
            matches!(spec.quantize, Quantize::None | Quantize::F16 | Quantize::Sq8 | Quantize::Sq8F16)
        }
        IndexKind::Disk => matches!(spec.quantize, Quantize::None | Quantize::F16),
        _ => false,
    };
    if !quantize_ok {
        return Err(SpecError::BadValue {
            key: "index".into(),
            value: format!("{} with quantize {}", spec.kind.name(), neardb_core::Choice::name(spec.quantize)),
            expected: "a collection's segments: hnsw, vamana or flat with quantize none, f16, sq8 or sq8+f16; disk with none or f16",
        }
        .into());
    }
    Ok(spec)
}

impl Collection {
    /// Creates a collection in `dir` (made if missing; it must not hold one already).
    pub fn create(dir: impl AsRef<Path>, config: CollectionConfig) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| CollectionError::io(&dir, e))?;
        if dir.join(manifest::FILE).exists() {
            return Err(CollectionError::Exists(dir));
        }
        if config.dim == 0 || config.dim > neardb_core::MAX_DIM {
            return Err(
                neardb_core::Error::InvalidDimension { got: config.dim, max: neardb_core::MAX_DIM }.into()
            );
        }
        spec_of(&config.index)?;
        // Generation 1's log first: the manifest then names a log that exists.
        drop(Wal::create(&dir, 1)?);
        let manifest = Manifest {
            format: manifest::FORMAT,
            dim: config.dim,
            metric: config.metric.to_string(),
            index: config.index,
            next_segment: 1,
            wal_generation: 1,
            versions: Vec::new(),
        };
        manifest.write(&dir)?;
        Self::open(dir)
    }

    /// Opens the collection in `dir`, replaying its log; [`Collection::recovery`] says what the
    /// log held and whether a torn tail was dropped.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, Durability::default())
    }

    /// Like [`Collection::open`], with a durability policy for writes.
    pub fn open_with(dir: impl AsRef<Path>, durability: Durability) -> Result<Self> {
        Self::open_with_options(dir, OpenOptions { durability, ..OpenOptions::default() })
    }

    /// Like [`Collection::open`], with every option.
    pub fn open_with_options(dir: impl AsRef<Path>, options: OpenOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.join(manifest::FILE).exists() {
            return Err(CollectionError::NotFound(dir));
        }
        let manifest = Manifest::read(&dir)?;
        let metric: Metric = manifest.metric.parse().map_err(|_| CollectionError::Corrupt {
            path: dir.join(manifest::FILE),
            reason: format!("unknown metric {:?}", manifest.metric),
        })?;
        let spec = spec_of(&manifest.index)?;
        let dim = manifest.dim;
        let mut parts = Vec::new();
        if let Some(v) = manifest.head() {
            for s in &v.segments {
                parts.push(open_part(&dir, s, dim)?);
            }
        }
        let f16 = matches!(spec.quantize, Quantize::F16 | Quantize::Sq8F16);
        let mut head = Head {
            manifest,
            parts,
            recent: Memtable::new(dim, metric, f16, recent_graph(&spec, dim, metric, f16, &options)?)?,
            frozen: None,
            locs: Locations::default(),
        };
        for (p, part) in head.parts.iter().enumerate() {
            for (row, key) in part.segment.keys.iter().enumerate() {
                if !part.deleted.contains(row as u32) {
                    head.locs.insert(key.clone(), Loc::Segment { part: p, row: row as u32 });
                }
            }
        }
        remove_orphans(&dir, &head.manifest)?;
        // The manifest's generation and any after it (a commit that froze records and did not
        // finish leaves two), oldest first.
        let mut generation = head.manifest.wal_generation;
        let mut recovery = Recovery::default();
        let replay = |head: &mut Head, generation: u64, recovery: &mut Recovery| {
            Wal::replay(&dir, generation, |body| {
                let changes = apply_frame(head, dim, body)?;
                recovery.frames += 1;
                recovery.changes += changes;
                Ok(())
            })
        };
        let (mut wal, torn) = replay(&mut head, generation, &mut recovery)?;
        recovery.torn = torn;
        while dir.join(wal::file_name(generation + 1)).exists() {
            generation += 1;
            // A commit cut short while it created this generation's log can leave the file
            // without its whole header. Nothing was acknowledged in it (frames follow only once
            // the header is on disk): it starts again empty.
            if Wal::cut_short_at_creation(&dir, generation)? {
                drop(Wal::create(&dir, generation)?);
            }
            let (next, torn) = replay(&mut head, generation, &mut recovery)?;
            wal = next;
            recovery.torn = recovery.torn.take().or(torn);
        }
        let syncer = Syncer::start((generation, wal.len())).map_err(|e| CollectionError::io(&dir, e))?;
        let file = Arc::new(wal.sync_handle()?);
        let head = Arc::new(RwLock::new(head));
        let indexer = if options.index_recent {
            let head = head.clone();
            Indexer::start(move || index_step(&head, dim))
        } else {
            None
        };
        Ok(Self {
            dir,
            dim,
            metric,
            spec,
            options,
            head,
            indexer,
            log: Mutex::new(Log { wal, unsynced: 0, file }),
            syncer,
            poisoned: AtomicBool::new(false),
            committing: Mutex::new(()),
            recovery,
        })
    }

    /// What `open` replayed from the log.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The segments' index options.
    pub fn index_spec(&self) -> &IndexSpec {
        &self.spec
    }

    fn spec_f16(&self) -> bool {
        matches!(self.spec.quantize, Quantize::F16 | Quantize::Sq8F16)
    }

    fn read_head(&self) -> std::sync::RwLockReadGuard<'_, Head> {
        self.head.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_head(&self) -> std::sync::RwLockWriteGuard<'_, Head> {
        self.head.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Live records.
    pub fn len(&self) -> u64 {
        self.read_head().locs.len() as u64
    }

    /// Whether the collection holds no live record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts records, replacing any with the same id. The batch is checked whole first
    /// (dimensions, finite values, ids unique within it, metadata objects) and then logged as
    /// one frame: it is applied entirely or, after a crash before the acknowledgement, not
    /// at all.
    pub fn upsert(&self, records: &[Record]) -> Result<()> {
        let refs: Vec<&Record> = records.iter().collect();
        self.upsert_if(&refs, |_| true).map(|_| ())
    }

    /// [`Collection::upsert`] made only if `still` holds of the state when the write lock is
    /// taken (compaction moves records only if nobody changed them since they were read).
    fn upsert_if(&self, records: &[&Record], still: impl FnOnce(&Head) -> bool) -> Result<bool> {
        if records.is_empty() {
            return Ok(true);
        }
        let mut seen = IdSet::with_capacity_and_hasher(records.len(), Default::default());
        for r in records {
            r.id.check()?;
            if !seen.insert(&r.id) {
                return Err(CollectionError::DuplicateId(r.id.clone()));
            }
            match &r.metadata {
                Value::Object(map) if map.contains_key(ID_FIELD) => {
                    return Err(CollectionError::InvalidMetadata {
                        id: r.id.clone(),
                        got: "an object with the reserved field \"$id\"",
                    })
                }
                Value::Null | Value::Object(_) => {}
                other => {
                    return Err(CollectionError::InvalidMetadata {
                        id: r.id.clone(),
                        got: filter_json::json_kind(other),
                    })
                }
            }
            if r.vector.len() != self.dim {
                let source =
                    neardb_core::Error::DimensionMismatch { expected: self.dim, got: r.vector.len() };
                return Err(CollectionError::InvalidVector { id: r.id.clone(), source });
            }
            // Non-finite values, a zero vector under cosine, a value binary16 cannot hold:
            // refused before logging, naming the record.
            check_storable(&r.vector, self.dim, self.metric, self.spec_f16())
                .map_err(|source| CollectionError::InvalidVector { id: r.id.clone(), source })?;
        }
        let mut body = Vec::with_capacity(16 + records.len() * (self.dim * 4 + 64));
        body.push(OP_UPSERT);
        body.extend_from_slice(&(records.len() as u32).to_le_bytes());
        // Where each record's metadata JSON lies in the body: the recent records keep those
        // bytes as they are.
        let mut json_at = Vec::with_capacity(records.len());
        for r in records {
            let v = &r.vector;
            encode_id(&r.id, &mut body);
            #[cfg(target_endian = "little")]
            body.extend_from_slice(bytemuck::cast_slice(v));
            #[cfg(not(target_endian = "little"))]
            for x in v {
                body.extend_from_slice(&x.to_le_bytes());
            }
            let at = body.len() + 4;
            encode_metadata(&r.metadata, &mut body);
            json_at.push(at..body.len());
        }
        let items: Vec<NewRecord<'_>> = records
            .iter()
            .zip(&json_at)
            .map(|(r, at)| NewRecord {
                id: &r.id,
                vector: &r.vector,
                json: &body[at.clone()],
                metadata: &r.metadata,
            })
            .collect();
        self.write_if(still, &body, |head| upsert_checked(head, &items))
    }

    /// Deletes the records with these ids; unknown ids are an error and nothing is deleted.
    pub fn delete(&self, ids: &[RecordId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        {
            let head = self.read_head();
            let mut seen = IdSet::with_capacity_and_hasher(ids.len(), Default::default());
            for id in ids {
                if !seen.insert(id) {
                    return Err(CollectionError::DuplicateId(id.clone()));
                }
                if !head.locs.contains_key(id) {
                    return Err(CollectionError::UnknownId(id.clone()));
                }
            }
        }
        let mut body = Vec::with_capacity(8 + ids.len() * 12);
        body.push(OP_DELETE);
        body.extend_from_slice(&(ids.len() as u32).to_le_bytes());
        for id in ids {
            encode_id(id, &mut body);
        }
        self.write(&body, |head| {
            // Checked again under the write lock: another writer may have deleted one since.
            if let Some(id) = ids.iter().find(|id| !head.locs.contains_key(id)) {
                return Err(CollectionError::UnknownId(id.clone()));
            }
            delete_checked(head, ids);
            Ok(())
        })
    }

    /// Logs `body`, applies the change with `apply` in the same order as the log, then waits
    /// for durability as the policy says.
    fn write(&self, body: &[u8], apply: impl FnOnce(&mut Head) -> Result<()>) -> Result<()> {
        self.write_if(|_| true, body, apply).map(|_| ())
    }

    /// [`Collection::write`] that first asks `still` of the state under the write lock, and
    /// writes nothing (returning `false`) when it says no.
    fn write_if(
        &self,
        still: impl FnOnce(&Head) -> bool,
        body: &[u8],
        apply: impl FnOnce(&mut Head) -> Result<()>,
    ) -> Result<bool> {
        let (pos, sync_now) = {
            let mut head = self.write_head();
            if self.poisoned.load(Ordering::Acquire) {
                return Err(CollectionError::Poisoned);
            }
            if !still(&head) {
                return Ok(false);
            }
            let mut log = lock(&self.log);
            let before = log.wal.len();
            let end = match log.wal.append(body) {
                Ok(end) => end,
                Err(e) => {
                    self.poisoned.store(true, Ordering::Release);
                    return Err(e);
                }
            };
            let pos = (log.wal.generation(), end);
            let sync_now = match self.options.durability {
                Durability::Sync => true,
                Durability::Batch { bytes } => log.unsynced + (end - before) >= bytes,
                Durability::None => false,
            };
            // The disk starts on the frame now; the change is applied in memory meanwhile.
            if sync_now {
                self.syncer.request(pos, &log.file);
            }
            if let Err(e) = apply(&mut head) {
                // The frame is logged but refused: undo it (once the sync under way is done
                // with it), so replay agrees with memory.
                if sync_now {
                    let _ = self.syncer.wait(pos);
                }
                return Err(match log.wal.rewind(before) {
                    Ok(()) => {
                        // Later frames take its place: what was synced of it no longer counts.
                        self.syncer.rewound((pos.0, before));
                        e
                    }
                    Err(undo) => {
                        self.poisoned.store(true, Ordering::Release);
                        undo
                    }
                });
            }
            log.unsynced = if sync_now { 0 } else { log.unsynced + (end - before) };
            if let Some(indexer) = &self.indexer {
                indexer.kick();
            }
            (pos, sync_now)
        };
        if sync_now {
            if let Err(e) = self.syncer.wait(pos) {
                self.poisoned.store(true, Ordering::Release);
                return Err(CollectionError::io(&self.dir, std::io::Error::other(e)));
            }
        }
        Ok(true)
    }

    /// The live record with this id, if any.
    pub fn get(&self, id: &RecordId) -> Result<Option<Record>> {
        let head = self.read_head();
        let Some(&loc) = head.locs.get(id) else { return Ok(None) };
        read_record(&head.parts, &head.table_refs(), loc, id).map(Some)
    }

    /// The `k` live records nearest to `query` that match the filter, closest first (ties by
    /// id order within a part). Never fewer than `min(k, matches)`.
    pub fn search(&self, query: &[f32], k: usize, options: &SearchOptions<'_>) -> Result<Vec<Hit>> {
        self.search_with_stats(query, k, options).map(|(hits, _)| hits)
    }

    /// [`Collection::search`] that also says what each part did.
    pub fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        options: &SearchOptions<'_>,
    ) -> Result<(Vec<Hit>, CollectionSearchStats)> {
        let head = self.read_head();
        search_parts(&head.parts, &head.tables(), query, k, options)
    }

    /// Makes every logged change durable now (what the default policy does per write; the
    /// batch and none policies leave it to commits, or to this).
    pub fn flush(&self) -> Result<()> {
        let log = lock(&self.log);
        let path = log.wal.path().to_path_buf();
        log.wal.sync_handle()?.sync_data().map_err(|e| CollectionError::io(&path, e))
    }

    /// Bytes in the current log generation.
    pub fn log_bytes(&self) -> u64 {
        lock(&self.log).wal.len()
    }

    /// Records written since the last commit began (the recent table's rows, replaced and
    /// deleted ones included): what a commit would turn into a segment.
    pub fn uncommitted_rows(&self) -> u64 {
        u64::from(self.read_head().recent.rows())
    }

    /// Recent records the background indexer has not linked into their graph yet (all of
    /// them when the collection does not index its recent records): what searches scan.
    pub fn unindexed_rows(&self) -> u64 {
        let head = self.read_head();
        let t = &head.recent;
        u64::from(t.rows() - t.graph.as_ref().map_or(0, |g| g.indexed().min(t.rows())))
    }

    /// The ids of live records matching `filter` (all without one), in id order (numbers
    /// before strings), from `from` on (itself included) if given, at most `limit` of them:
    /// pages of a scroll.
    pub fn scroll(
        &self,
        filter: Option<&PayloadFilter>,
        from: Option<&RecordId>,
        limit: usize,
    ) -> Result<Vec<RecordId>> {
        let mut ids = match filter {
            Some(f) => self.ids_matching(f)?,
            None => self.ids(),
        };
        ids.sort_unstable();
        let start = from.map_or(0, |a| ids.partition_point(|id| id < a));
        Ok(ids.into_iter().skip(start).take(limit).collect())
    }

    /// The fraction of committed rows that are deleted or replaced: what compaction would
    /// give back.
    pub fn deleted_fraction(&self) -> f64 {
        let head = self.read_head();
        let rows: u64 = head.parts.iter().map(|p| u64::from(p.segment.rows())).sum();
        let deleted: u64 = head.parts.iter().map(|p| u64::from(p.deleted_count)).sum();
        if rows == 0 {
            0.0
        } else {
            deleted as f64 / rows as f64
        }
    }

    /// Whether a live record has this id.
    pub fn contains(&self, id: &RecordId) -> bool {
        self.read_head().locs.contains_key(id)
    }

    /// Every live record's id (order unspecified).
    pub fn ids(&self) -> Vec<RecordId> {
        self.read_head().locs.keys().cloned().collect()
    }

    /// Ids of the live records matching `filter` (segment order, then recent records).
    pub fn ids_matching(&self, filter: &PayloadFilter) -> Result<Vec<RecordId>> {
        let head = self.read_head();
        let key = segment::filter_key(filter);
        let mut out = Vec::new();
        for part in &head.parts {
            let rows = matching_live(part, filter, &key)?;
            out.extend(rows.iter().map(|r| part.segment.keys[r as usize].clone()));
        }
        for (table, live) in head.tables() {
            let rows = allowed(&table.payload, Some(filter), &live);
            out.extend(rows.iter().map(|r| table.keys[r as usize].clone()));
        }
        Ok(out)
    }

    /// Live records matching `filter`, exactly.
    pub fn count(&self, filter: Option<&PayloadFilter>) -> Result<u64> {
        let head = self.read_head();
        let key = filter.map(segment::filter_key);
        let mut n = 0u64;
        for part in &head.parts {
            n += u64::from(match filter.zip(key.as_deref()) {
                Some((f, key)) => matching_live(part, f, key)?.count(),
                None => part.segment.rows() - part.deleted_count,
            });
        }
        for (table, live) in head.tables() {
            n += u64::from(allowed(&table.payload, filter, &live).count());
        }
        Ok(n)
    }

    /// Makes the current state a version: recent records become a segment, deletions are
    /// written, and the manifest is replaced. `name` (unique among kept versions) can open it
    /// later, e.g. a git commit id. Returns the new version.
    ///
    /// The segment is built without holding the collection: the recent records are frozen (a
    /// new log generation takes writes from then on), searched and deleted from as usual while
    /// their index is built, and the result is installed in a brief step at the end. A crash
    /// mid-way leaves the old manifest, which replays both log generations.
    pub fn commit(&self, name: Option<&str>) -> Result<VersionInfo> {
        let _one = lock(&self.committing);
        self.commit_locked(name)
    }

    /// [`Collection::commit`], the caller holding `committing`.
    fn commit_locked(&self, name: Option<&str>) -> Result<VersionInfo> {
        // 1. Freeze.
        let table = {
            let mut head = self.write_head();
            if self.poisoned.load(Ordering::Acquire) {
                return Err(CollectionError::Poisoned);
            }
            if let Some(n) = name {
                if head.manifest.versions.iter().any(|v| v.name.as_deref() == Some(n)) {
                    return Err(CollectionError::DuplicateVersionName(n.to_owned()));
                }
            }
            // A commit that failed after freezing left its table frozen: build it again.
            if head.frozen.is_none() {
                let mut log = lock(&self.log);
                let generation = log.wal.generation();
                // The frozen records must be on disk before a manifest drops their log (the
                // batch and none policies may not have synced them yet).
                let path = log.wal.path().to_path_buf();
                log.wal.sync_handle()?.sync_data().map_err(|e| CollectionError::io(&path, e))?;
                let next = Wal::create(&self.dir, generation + 1)?;
                let file = Arc::new(next.sync_handle()?);
                drop(std::mem::replace(&mut log.wal, next));
                log.file = file;
                log.unsynced = 0;
                self.syncer.mark_synced((generation + 1, log.wal.len()));
                let graph = recent_graph(&self.spec, self.dim, self.metric, self.spec_f16(), &self.options)?;
                let fresh = Memtable::new(self.dim, self.metric, self.spec_f16(), graph)?;
                let table = std::mem::replace(&mut head.recent, fresh);
                for loc in head.locs.values_mut() {
                    if let Loc::Recent(row) = *loc {
                        *loc = Loc::Frozen(row);
                    }
                }
                let live = table.live.clone();
                head.frozen = Some(Frozen { table: Arc::new(table), live, generation });
            }
            head.frozen.as_ref().map(|f| f.table.clone())
        };
        // 2. The frozen records' segment, built while searches and writes go on.
        // `rows`: the table's row of each segment row.
        let mut rows: Vec<u32> =
            table.as_ref().map_or(Vec::new(), |t| (0..t.rows()).filter(|&r| t.is_live(r)).collect());
        let segment = match &table {
            Some(t) if !rows.is_empty() => {
                // Only commits change `next_segment`, and one runs at a time.
                let id = self.read_head().manifest.next_segment;
                match self.finished_graph(t)? {
                    // The graph holds every row of the table, replaced and deleted ones too:
                    // the segment keeps them all, those marked deleted below.
                    Some(graph) => {
                        rows = (0..t.rows()).collect();
                        let metadata: Vec<&[u8]> = rows.iter().map(|&r| t.metadata_json(r)).collect();
                        let ids = neardb_core::IdMap::identity(t.rows());
                        let segment = graph.hnsw.with_index(|index| {
                            Segment::write_with(
                                &self.dir,
                                id,
                                &crate::WithIds(index, &ids),
                                &t.keys,
                                &metadata,
                            )
                        })?;
                        Some(segment)
                    }
                    None => {
                        let mut vectors = Vec::with_capacity(rows.len() * self.dim);
                        let mut keys = Vec::with_capacity(rows.len());
                        let mut metadata: Vec<&[u8]> = Vec::with_capacity(rows.len());
                        for &row in &rows {
                            vectors.extend_from_slice(&t.vector(row)?);
                            keys.push(t.keys[row as usize].clone());
                            metadata.push(t.metadata_json(row));
                        }
                        Some(self.build_segment(id, &vectors, &keys, &metadata)?)
                    }
                }
            }
            _ => None,
        };
        // 3. Install.
        let mut head = self.write_head();
        let version = head.manifest.head().map_or(1, |v| v.version + 1);
        let mut manifest = head.manifest.clone();
        let mut parts = head.parts.clone();
        if let Some(segment) = segment {
            manifest.next_segment = segment.id + 1;
            // Rows deleted or replaced while the segment was built.
            let frozen = head.frozen.as_ref();
            parts.push(Part::fresh(segment, |r| frozen.is_some_and(|f| !bit(&f.live, rows[r as usize]))));
        }
        self.install(&mut head, manifest, parts, version, name, true)
    }

    /// Makes `parts` the segments of a new version `version` (writing the deletion bitmaps
    /// that changed, then the manifest: the commit point) and re-reads where each live record
    /// is. `frozen_done`: the frozen records are in `parts` now, so their log goes.
    fn install(
        &self,
        head: &mut Head,
        mut manifest: Manifest,
        mut parts: Vec<Part>,
        version: u64,
        name: Option<&str>,
        frozen_done: bool,
    ) -> Result<VersionInfo> {
        for part in parts.iter_mut().filter(|p| p.dirty) {
            part.segment.write_deletes(&self.dir, version, &part.deleted)?;
            part.deletes = Some(version);
            part.dirty = false;
        }
        // Segments with every row deleted are dropped from the version.
        parts.retain(|p| p.deleted_count < p.segment.rows());
        let records: u64 = parts.iter().map(|p| u64::from(p.segment.rows() - p.deleted_count)).sum();
        let frozen_generation = head.frozen.as_ref().filter(|_| frozen_done).map(|f| f.generation);
        if let Some(g) = frozen_generation {
            manifest.wal_generation = g + 1;
        }
        manifest.versions.push(Version {
            version,
            name: name.map(str::to_owned),
            committed_unix_ms: now_ms(),
            records,
            segments: parts
                .iter()
                .map(|p| SegmentRef {
                    id: p.segment.id,
                    rows: p.segment.rows(),
                    deleted: p.deleted_count,
                    deletes: p.deletes,
                })
                .collect(),
        });
        // The commit point.
        manifest.write(&self.dir)?;
        if let Some(g) = frozen_generation {
            let _ = std::fs::remove_file(self.dir.join(wal::file_name(g)));
            head.frozen = None;
        }
        head.parts = parts;
        head.manifest = manifest;
        // Where each live record is now: the segments, then the frozen and the recent records
        // (newest last, so it wins).
        let mut locs = Locations::with_capacity_and_hasher(
            records as usize + head.recent.live_count as usize,
            Default::default(),
        );
        for (p, part) in head.parts.iter().enumerate() {
            for (row, key) in part.segment.keys.iter().enumerate() {
                if !part.deleted.contains(row as u32) {
                    locs.insert(key.clone(), Loc::Segment { part: p, row: row as u32 });
                }
            }
        }
        if let Some(f) = &head.frozen {
            for row in (0..f.table.rows()).filter(|&r| bit(&f.live, r)) {
                locs.insert(f.table.keys[row as usize].clone(), Loc::Frozen(row));
            }
        }
        for row in (0..head.recent.rows()).filter(|&r| head.recent.is_live(r)) {
            locs.insert(head.recent.keys[row as usize].clone(), Loc::Recent(row));
        }
        head.locs = locs;
        let info = head.manifest.head().map(VersionInfo::from);
        Ok(info.unwrap_or(VersionInfo { version, name: None, committed_unix_ms: 0, records, segments: 0 }))
    }

    /// Builds segment `id` of the collection's index kind over rows of vectors, ids and
    /// metadata, and writes it.
    fn build_segment(
        &self,
        id: u64,
        vectors: &[f32],
        keys: &[RecordId],
        metadata: &[&[u8]],
    ) -> Result<Segment> {
        Segment::write(&self.dir, id, &self.spec, self.metric, self.dim, vectors, keys, metadata)
    }

    /// The frozen table's graph, finished, if it can be the segment's index: the segments are
    /// HNSW stored as the graph stores rows, and most rows are linked already (linking the
    /// rest runs on one thread; a fresh build runs on all of them).
    fn finished_graph<'t>(&self, t: &'t Memtable) -> Result<Option<&'t RecentGraph>> {
        let fits = self.spec.kind == IndexKind::Hnsw
            && matches!(self.spec.quantize, Quantize::None | Quantize::F16)
            && self.spec.layout == Layout::Insertion;
        let Some(graph) = t.graph.as_deref().filter(|g| fits && g.usable()) else { return Ok(None) };
        let rows = t.rows();
        // A table too small for searches to use its graph is as quick to build afresh.
        if rows < graph.use_from() || u64::from(rows - graph.indexed().min(rows)) * 2 > u64::from(rows) {
            return Ok(None);
        }
        while graph.usable() && graph.indexed() < rows {
            let first = graph.indexed();
            let to = rows.min(first.saturating_add(16 * FEED_ROWS));
            graph.feed(first, &t.vectors(first..to)?, self.dim);
        }
        Ok((graph.usable() && graph.indexed() == rows).then_some(graph))
    }

    /// The kept versions, oldest first.
    pub fn versions(&self) -> Vec<VersionInfo> {
        self.read_head().manifest.versions.iter().map(VersionInfo::from).collect()
    }

    /// Opens a kept version read-only, by number or name. Writes to the collection go on;
    /// the snapshot keeps answering as the version did.
    pub fn version(&self, which: &str) -> Result<Snapshot> {
        let head = self.read_head();
        let v = head
            .manifest
            .versions
            .iter()
            .find(|v| v.name.as_deref() == Some(which))
            .or_else(|| {
                which.parse::<u64>().ok().and_then(|n| head.manifest.versions.iter().find(|v| v.version == n))
            })
            .ok_or_else(|| CollectionError::UnknownVersion(which.to_owned()))?
            .clone();
        let mut parts = Vec::with_capacity(v.segments.len());
        for s in &v.segments {
            // A segment the head holds is shared; its deletions as of this version are read.
            let open = head.parts.iter().find(|p| p.segment.id == s.id).map(|p| p.segment.clone());
            let segment = match open {
                Some(seg) => seg,
                None => Arc::new(Segment::open(&self.dir, s.id)?),
            };
            parts.push(part_of(&self.dir, segment, s)?);
        }
        let mut locs = Locations::default();
        for (p, part) in parts.iter().enumerate() {
            for (row, key) in part.segment.keys.iter().enumerate() {
                if !part.deleted.contains(row as u32) {
                    locs.insert(key.clone(), Loc::Segment { part: p, row: row as u32 });
                }
            }
        }
        Ok(Snapshot { info: VersionInfo::from(&v), parts, locs })
    }

    /// Keeps only the newest `last` versions and every named one, and removes the files no
    /// kept version or the current state needs. Returns the versions released.
    pub fn retain(&self, last: usize, keep_named: bool) -> Result<Vec<u64>> {
        let mut head = self.write_head();
        let n = head.manifest.versions.len();
        let mut released = Vec::new();
        let mut manifest = head.manifest.clone();
        manifest.versions = head
            .manifest
            .versions
            .iter()
            .enumerate()
            .filter(|(i, v)| {
                let keep = *i + last.max(1) >= n || (keep_named && v.name.is_some());
                if !keep {
                    released.push(v.version);
                }
                keep
            })
            .map(|(_, v)| v.clone())
            .collect();
        if released.is_empty() {
            return Ok(released);
        }
        manifest.write(&self.dir)?;
        head.manifest = manifest;
        remove_orphans(&self.dir, &head.manifest)?;
        Ok(released)
    }

    /// Commits the recent records, if any, then rewrites the live records of every segment
    /// into one new segment and installs it as a version (named `name`): searches touch one
    /// index, and deleted rows stop taking space once the versions that still see them are
    /// released ([`Collection::retain`]). Writes and searches go on meanwhile; a record
    /// replaced or deleted while the segment is built is marked deleted in it.
    pub fn compact(&self, name: Option<&str>) -> Result<VersionInfo> {
        let _one = lock(&self.committing);
        let pending = {
            let head = self.read_head();
            head.recent.rows() > 0 || head.frozen.is_some()
        };
        if pending {
            self.commit_locked(None)?;
        }
        let (parts, id) = {
            let head = self.read_head();
            if self.poisoned.load(Ordering::Acquire) {
                return Err(CollectionError::Poisoned);
            }
            if let Some(n) = name {
                if head.manifest.versions.iter().any(|v| v.name.as_deref() == Some(n)) {
                    return Err(CollectionError::DuplicateVersionName(n.to_owned()));
                }
            }
            (head.parts.clone(), head.manifest.next_segment)
        };
        // The live rows of every segment, read straight from the segments (nothing is logged:
        // until the manifest names the new segment, the old ones are the collection).
        let live: usize = parts.iter().map(|p| (p.segment.rows() - p.deleted_count) as usize).sum();
        let mut source = Vec::with_capacity(live);
        let mut keys = Vec::with_capacity(live);
        let mut metadata: Vec<&[u8]> = Vec::with_capacity(live);
        let mut vectors = Vec::with_capacity(live * self.dim);
        for (p, part) in parts.iter().enumerate() {
            let rows: Vec<u32> = (0..part.segment.rows()).filter(|&r| !part.deleted.contains(r)).collect();
            for &row in &rows {
                source.push((p, row));
                keys.push(part.segment.keys[row as usize].clone());
                metadata.push(part.segment.metadata_json(row));
            }
            part.segment.index.append_rows(&rows, &mut vectors)?;
        }
        let segment =
            if source.is_empty() { None } else { Some(self.build_segment(id, &vectors, &keys, &metadata)?) };
        drop((vectors, metadata, keys));
        let mut head = self.write_head();
        // Only commits and compactions change the segments, and one of them runs at a time.
        let same = head.parts.len() == parts.len()
            && head.parts.iter().zip(&parts).all(|(a, b)| Arc::ptr_eq(&a.segment, &b.segment));
        if !same {
            return Err(CollectionError::Corrupt {
                path: self.dir.clone(),
                reason: "the segments changed while they were compacted".into(),
            });
        }
        let version = head.manifest.head().map_or(1, |v| v.version + 1);
        let mut manifest = head.manifest.clone();
        let mut compacted = Vec::new();
        if let Some(segment) = segment {
            manifest.next_segment = segment.id + 1;
            // Rows whose record was replaced or deleted while the segment was built.
            let now = &head.parts;
            compacted.push(Part::fresh(segment, |r| {
                let (p, row) = source[r as usize];
                now[p].deleted.contains(row)
            }));
        }
        self.install(&mut head, manifest, compacted, version, name, false)
    }

    /// Pairs of live records closer than `threshold`, each pair once (smaller id first),
    /// found among each record's `k` nearest neighbours (in parallel), sorted by distance.
    pub fn duplicates(&self, threshold: f32, k: usize) -> Result<Vec<(RecordId, RecordId, f32)>> {
        let ids = self.ids();
        let near =
            |id: &RecordId| -> Result<Vec<(RecordId, RecordId, f32)>> {
                Ok(self
                    .neighbours_of(id, k)?
                    .into_iter()
                    .filter(|h| h.distance < threshold)
                    .map(|h| {
                        if *id < h.id {
                            (id.clone(), h.id, h.distance)
                        } else {
                            (h.id, id.clone(), h.distance)
                        }
                    })
                    .collect())
            };
        #[cfg(feature = "parallel")]
        let lists: Vec<Vec<(RecordId, RecordId, f32)>> = {
            use rayon::prelude::*;
            ids.par_iter().map(near).collect::<Result<_>>()?
        };
        #[cfg(not(feature = "parallel"))]
        let lists: Vec<Vec<(RecordId, RecordId, f32)>> = ids.iter().map(near).collect::<Result<_>>()?;
        let mut out: Vec<(RecordId, RecordId, f32)> = lists.into_iter().flatten().collect();
        // A pair is found from both ends (with the same distance, up to the walk's rounding):
        // keep one.
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        out.sort_by(|a, b| a.2.total_cmp(&b.2).then_with(|| a.0.cmp(&b.0)).then_with(|| a.1.cmp(&b.1)));
        Ok(out)
    }

    /// The `k` live records nearest to record `id` (itself excluded).
    pub fn neighbours_of(&self, id: &RecordId, k: usize) -> Result<Vec<Hit>> {
        let record = self.get(id)?.ok_or_else(|| CollectionError::UnknownId(id.clone()))?;
        let hits = self.search(&record.vector, k + 1, &SearchOptions::default())?;
        Ok(hits.into_iter().filter(|h| &h.id != id).take(k).collect())
    }
}

/// The payload index's fields of a record: its metadata, flattened, and its id under
/// [`ID_FIELD`] (so `has_id` is a keyword match).
pub(crate) fn indexed_fields<'a>(
    id: &RecordId,
    metadata: &'a Value,
) -> Vec<(std::borrow::Cow<'a, str>, neardb_core::payload::FieldValue)> {
    let mut fields = record::field_refs(metadata);
    fields.push((ID_FIELD.into(), neardb_core::payload::FieldValue::Keyword(filter_json::id_keyword(id))));
    fields
}

/// What a flat index of this form would refuse to store: non-finite values, a zero vector
/// under a normalising metric (judged by the same kernels), values beyond binary16.
fn check_storable(vectors: &[f32], dim: usize, metric: Metric, f16: bool) -> Result<(), neardb_core::Error> {
    neardb_core::check_vectors(vectors, dim)?;
    if metric.normalizes() {
        let kernels = neardb_core::Kernels::best();
        for (i, v) in vectors.chunks_exact(dim).enumerate() {
            let norm_sq = kernels.dot(v, v);
            if norm_sq == 0.0 || !norm_sq.is_finite() {
                return Err(neardb_core::Error::ZeroVector { what: neardb_core::ZeroVectorKind::Vector(i) });
            }
        }
    } else if f16 {
        if let Some(at) = vectors.iter().position(|x| x.abs() > 65504.0) {
            return Err(neardb_core::Error::OutOfHalfRange {
                vector: at / dim,
                component: at % dim,
                value: vectors[at],
            });
        }
    }
    Ok(())
}

/// A graph for a new table of recent records, when the collection indexes them: with the
/// segments' parameters when they are HNSW (so a finished graph can become a segment).
fn recent_graph(
    spec: &IndexSpec,
    dim: usize,
    metric: Metric,
    f16: bool,
    options: &OpenOptions,
) -> Result<Option<Arc<RecentGraph>>> {
    if !options.index_recent || spec.kind == IndexKind::Flat {
        return Ok(None);
    }
    let params = if spec.kind == IndexKind::Hnsw { spec.hnsw } else { neardb_core::HnswParams::default() };
    Ok(Some(Arc::new(RecentGraph::new(dim, metric, params, f16, options.index_recent_from)?)))
}

/// One step of the indexer: links the next rows of the recent records into their graph.
/// Returns whether there was anything to do.
fn index_step(head: &RwLock<Head>, dim: usize) -> bool {
    let (graph, first, vectors) = {
        let head = head.read().unwrap_or_else(|e| e.into_inner());
        let table = &head.recent;
        let Some(graph) = table.graph.as_ref().filter(|g| g.usable()) else { return false };
        let first = graph.indexed();
        if first >= table.rows() {
            return false;
        }
        let to = table.rows().min(first + FEED_ROWS);
        let Ok(vectors) = table.vectors(first..to) else { return false };
        (graph.clone(), first, vectors)
    };
    graph.feed(first, &vectors, dim);
    true
}

#[cfg(test)]
thread_local! {
    /// Makes this thread's next upsert fail after its frame is logged (the rewind path).
    static FAIL_NEXT_APPLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Applies checked upserts to the head: replaced records are marked deleted where they were.
fn upsert_checked(head: &mut Head, records: &[NewRecord<'_>]) -> Result<()> {
    #[cfg(test)]
    if FAIL_NEXT_APPLY.with(|f| f.replace(false)) {
        return Err(neardb_core::Error::OutOfMemory { what: "a test's refusal", bytes: 0 }.into());
    }
    let first = head.recent.push(records)?;
    for (i, rec) in records.iter().enumerate() {
        if let Some(old) = head.locs.insert(rec.id.clone(), Loc::Recent(first + i as u32)) {
            kill(head, old);
        }
    }
    Ok(())
}

fn delete_checked(head: &mut Head, ids: &[RecordId]) {
    for id in ids {
        if let Some(old) = head.locs.remove(id) {
            kill(head, old);
        }
    }
}

fn kill(head: &mut Head, loc: Loc) {
    match loc {
        Loc::Recent(row) => head.recent.kill(row),
        Loc::Frozen(row) => {
            if let Some(f) = &mut head.frozen {
                if let Some(w) = f.live.get_mut(row as usize / 64) {
                    *w &= !(1 << (row % 64));
                }
            }
        }
        Loc::Segment { part, row } => {
            if let Some(p) = head.parts.get_mut(part) {
                if !p.deleted.contains(row) {
                    Arc::make_mut(&mut p.deleted).insert(row);
                    p.deleted_count += 1;
                    p.dirty = true;
                }
            }
        }
    }
}

/// Replays one log frame into the head; returns the records it changed.
fn apply_frame(head: &mut Head, dim: usize, body: &[u8]) -> Result<u64, &'static str> {
    let mut r = Reader::new(body);
    let op = r.u8("an operation")?;
    let count = r.u32("a record count")? as usize;
    match op {
        OP_UPSERT => {
            // Each record takes at least 9 + 4·dim + 4 bytes: a count the frame cannot hold
            // is refused before anything is sized by it.
            if count > r.remaining() / (13 + 4 * dim) {
                return Err("an upsert frame whose count its bytes cannot hold");
            }
            let mut vectors = Vec::with_capacity(count * dim);
            let mut parsed = Vec::with_capacity(count);
            for _ in 0..count {
                let id = r.id()?;
                r.floats(dim, &mut vectors)?;
                let (json, meta) = r.metadata_with_bytes()?;
                if !(meta.is_null() || meta.is_object()) {
                    return Err("an upsert frame whose metadata is not an object");
                }
                parsed.push((id, json, meta));
            }
            if r.remaining() != 0 {
                return Err("an upsert frame with bytes after its records");
            }
            check_storable(&vectors, dim, head.recent.metric, head.recent.f16)
                .map_err(|_| "an upsert frame with a vector the collection cannot store")?;
            let items: Vec<NewRecord<'_>> = parsed
                .iter()
                .zip(vectors.chunks_exact(dim))
                .map(|((id, json, metadata), vector)| NewRecord { id, vector, json, metadata })
                .collect();
            upsert_checked(head, &items).map_err(|_| "an upsert frame the index refused")?;
        }
        OP_DELETE => {
            if count > r.remaining() / 9 {
                return Err("a delete frame whose count its bytes cannot hold");
            }
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                ids.push(r.id()?);
            }
            if r.remaining() != 0 {
                return Err("a delete frame with bytes after its ids");
            }
            delete_checked(head, &ids);
        }
        _ => return Err("an unknown operation"),
    }
    Ok(count as u64)
}

fn open_part(dir: &Path, s: &SegmentRef, dim: usize) -> Result<Part> {
    let segment = Segment::open(dir, s.id)?;
    if segment.index.dim() != dim {
        return Err(CollectionError::Corrupt {
            path: dir.join(segment::index_name(s.id)),
            reason: format!("{} dimensions in a collection of {dim}", segment.index.dim()),
        });
    }
    part_of(dir, Arc::new(segment), s)
}

fn part_of(dir: &Path, segment: Arc<Segment>, s: &SegmentRef) -> Result<Part> {
    let corrupt =
        |reason: &str| CollectionError::Corrupt { path: dir.join(manifest::FILE), reason: reason.to_owned() };
    if segment.rows() != s.rows {
        return Err(corrupt("a segment's row count differs from its files"));
    }
    let deleted = match s.deletes {
        Some(v) => segment.read_deletes(dir, v)?,
        None => Bitset::new(segment.rows()),
    };
    if deleted.count() != s.deleted {
        return Err(corrupt("a segment's deletion count differs from its bitmap"));
    }
    Ok(Part {
        segment,
        deleted: Arc::new(deleted),
        deleted_count: s.deleted,
        deletes: s.deletes,
        dirty: false,
    })
}

/// Removes files of the collection that neither the manifest's versions nor its log need
/// (left by a crash mid-commit, or released versions).
fn remove_orphans(dir: &Path, manifest: &Manifest) -> Result<()> {
    let mut keep: HashSet<String> = HashSet::new();
    keep.insert(manifest::FILE.to_owned());
    // Log generations from the manifest's on are kept (the newest takes writes).
    let mut g = manifest.wal_generation;
    while dir.join(wal::file_name(g)).exists() {
        keep.insert(wal::file_name(g));
        g += 1;
    }
    for v in &manifest.versions {
        for s in &v.segments {
            keep.insert(segment::index_name(s.id));
            keep.insert(segment::records_name(s.id));
            if let Some(d) = s.deletes {
                keep.insert(segment::deletes_name(s.id, d));
            }
        }
    }
    let entries = std::fs::read_dir(dir).map_err(|e| CollectionError::io(dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with("seg-") || name.starts_with("wal-") || name.ends_with(".tmp");
        if ours && !keep.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// The rows of a segment not deleted.
fn live_rows(part: &Part) -> Bitset {
    let mut live = Bitset::new(part.segment.rows());
    live.fill();
    live.subtract(&part.deleted);
    live
}

/// The live rows of a segment matching `filter` (whose cache key is `key`).
fn matching_live(part: &Part, filter: &PayloadFilter, key: &str) -> Result<Bitset> {
    let mut rows = Bitset::clone(&*part.segment.matching(filter, key)?);
    rows.subtract(&part.deleted);
    Ok(rows)
}

/// The ids of `set` below `row`, as a set of capacity `row` (only those words are copied).
fn below_row(set: &Bitset, row: u32) -> Bitset {
    let row = row.min(set.capacity());
    let mut words = set.words()[..row.div_ceil(64) as usize].to_vec();
    if let Some(last) = words.last_mut().filter(|_| !row.is_multiple_of(64)) {
        *last &= (1u64 << (row % 64)) - 1;
    }
    Bitset::from_words(row, words).unwrap_or_else(|| Bitset::new(row))
}

/// The rows a search may return: matching the filter and live.
fn allowed(payload: &PayloadIndex, filter: Option<&PayloadFilter>, live: &Bitset) -> Bitset {
    let mut set = match filter {
        Some(f) => payload.evaluate(f),
        None => {
            let mut all = Bitset::new(payload.rows());
            all.fill();
            all
        }
    };
    set.intersect_with(live);
    set
}

fn read_record(parts: &[Part], tables: &[&Memtable], loc: Loc, id: &RecordId) -> Result<Record> {
    match loc {
        Loc::Segment { part, row } => {
            let p = parts.get(part).ok_or_else(|| CollectionError::UnknownId(id.clone()))?;
            Ok(Record {
                id: id.clone(),
                vector: p.segment.index.get_decoded(row)?,
                metadata: p.segment.metadata(row)?,
            })
        }
        Loc::Recent(row) | Loc::Frozen(row) => {
            let t = usize::from(matches!(loc, Loc::Frozen(_)));
            let m = tables.get(t).ok_or_else(|| CollectionError::UnknownId(id.clone()))?;
            Ok(Record { id: id.clone(), vector: m.vector(row)?, metadata: m.metadata(row)? })
        }
    }
}

fn search_parts(
    parts: &[Part],
    tables: &[(&Memtable, Bitset)],
    query: &[f32],
    k: usize,
    options: &SearchOptions<'_>,
) -> Result<(Vec<Hit>, CollectionSearchStats)> {
    if k == 0 {
        return Err(neardb_core::Error::ZeroK.into());
    }
    let mut stats = CollectionSearchStats::default();
    // (distance, part, row); the recent and frozen records are parts `parts.len()` and after.
    let mut found: Vec<(f32, usize, u32)> = Vec::new();
    let mut hits = Vec::new();
    let filter = options.filter.filter(|f| !f.is_empty());
    // The key of the segments' filter caches, made once per search.
    let key = filter.map(segment::filter_key);
    for (p, part) in parts.iter().enumerate() {
        // No filter and nothing deleted: search unfiltered (the fastest walk).
        let allow = match filter.zip(key.as_deref()) {
            None if part.deleted_count == 0 => None,
            None => Some(live_rows(part)),
            Some((f, key)) => Some(matching_live(part, f, key)?),
        };
        let matches = allow.as_ref().map_or(part.segment.rows(), Bitset::count);
        stats.matches += u64::from(matches);
        if matches == 0 {
            continue;
        }
        let filter = allow.as_ref().map(|a| a as &dyn neardb_core::Filter);
        let s = part.segment.index.search_with_stats(query, k, &options.params, filter, &mut hits)?;
        stats.parts.push(s);
        found.extend(hits.iter().map(|h: &Neighbor| (h.distance, p, h.id)));
    }
    for (t, (m, live)) in tables.iter().enumerate() {
        if m.rows() > 0 {
            let mut allow = allowed(&m.payload, options.filter, live);
            let matches = allow.count();
            stats.matches += u64::from(matches);
            // The rows the graph has linked are searched through it, the newer ones scanned.
            let linked = m.graph.as_ref().map_or(0, |g| g.searchable().min(m.rows()));
            if matches > 0 && linked > 0 {
                let through_graph = below_row(&allow, linked);
                // The rest are scanned: the newer rows only.
                allow.subtract(&through_graph);
                if through_graph.count() > 0 {
                    if let Some(g) = &m.graph {
                        let s = g.hnsw.search_with_stats(
                            query,
                            k,
                            &options.params,
                            Some(&through_graph),
                            &mut hits,
                        )?;
                        stats.parts.push(s);
                        found.extend(hits.iter().map(|h| (h.distance, parts.len() + t, h.id)));
                    }
                }
            }
            let matches = allow.count();
            if matches > 0 {
                let mut all = SearchStats {
                    plan: neardb_core::Plan::Scan,
                    matches: Some(matches as usize),
                    ..Default::default()
                };
                let words = allow.words();
                for (c, chunk) in m.chunks.iter().enumerate() {
                    let base = c as u32 * CHUNK_ROWS;
                    let rows = chunk.len() as u32;
                    let lo = (base / 64) as usize;
                    let hi = (lo + rows.div_ceil(64) as usize).min(words.len());
                    let Some(mine) = Bitset::from_words(rows, words[lo..hi].to_vec()) else { continue };
                    if mine.count() == 0 {
                        continue;
                    }
                    let s = chunk.search_with_stats(query, k, &options.params, Some(&mine), &mut hits)?;
                    all.distances += s.distances;
                    found.extend(hits.iter().map(|h| (h.distance, parts.len() + t, base + h.id)));
                }
                stats.parts.push(all);
            }
        } else {
            neardb_core::check_query(query, m.dim, k)?;
        }
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    found.truncate(k);
    let refs: Vec<&Memtable> = tables.iter().map(|(m, _)| *m).collect();
    let mut out = Vec::with_capacity(found.len());
    for (distance, p, row) in found {
        let (id, loc) = match parts.get(p) {
            Some(part) => (part.segment.keys[row as usize].clone(), Loc::Segment { part: p, row }),
            None => match tables.get(p - parts.len()) {
                Some((m, _)) => {
                    let loc = if p == parts.len() { Loc::Recent(row) } else { Loc::Frozen(row) };
                    (m.keys[row as usize].clone(), loc)
                }
                None => continue,
            },
        };
        let (metadata, vector) = if options.with_metadata || options.with_vector {
            let r = read_record(parts, &refs, loc, &id)?;
            (options.with_metadata.then_some(r.metadata), options.with_vector.then_some(r.vector))
        } else {
            (None, None)
        };
        out.push(Hit { id, distance, metadata, vector });
    }
    Ok((out, stats))
}

/// A kept version, opened read-only: it answers `get` and `search` as the collection did when
/// the version was committed, whatever has been written since.
pub struct Snapshot {
    info: VersionInfo,
    parts: Vec<Part>,
    locs: Locations,
}

impl Snapshot {
    /// The version.
    pub fn info(&self) -> &VersionInfo {
        &self.info
    }

    /// Live records of the version.
    pub fn len(&self) -> u64 {
        self.locs.len() as u64
    }

    /// Whether the version holds no record.
    pub fn is_empty(&self) -> bool {
        self.locs.is_empty()
    }

    /// The record with this id in the version, if any.
    pub fn get(&self, id: &RecordId) -> Result<Option<Record>> {
        let Some(&loc) = self.locs.get(id) else { return Ok(None) };
        read_record(&self.parts, &[], loc, id).map(Some)
    }

    /// A search of the version.
    pub fn search(&self, query: &[f32], k: usize, options: &SearchOptions<'_>) -> Result<Vec<Hit>> {
        if self.parts.is_empty() {
            if k == 0 {
                return Err(neardb_core::Error::ZeroK.into());
            }
            return Ok(Vec::new());
        }
        search_parts(&self.parts, &[], query, k, options).map(|(h, _)| h)
    }
}

#[cfg(test)]
mod tests;
