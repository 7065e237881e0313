//! The SSD-resident index: a Vamana graph whose nodes (full vector, row id, neighbour list)
//! live in 4 KiB sectors on the SSD, while memory holds only the PQ codes that steer the walk
//! and an optional cache of the nodes searches pass through most. A search is the graph layer's
//! steered beam search (`neardb_core::graph::steered_search`) over [`DiskIndex`]'s node
//! store: each round reads the sectors of W nodes in one batch (io_uring, or `pread` where
//! io_uring is refused), PQ distances pick the next nodes, and the fetched full vectors
//! re-rank exactly.
//!
//! A filtered search plans, as the in-memory indexes do: the row of every node (loaded on the
//! first filtered search) tells which nodes a filter allows without reading them, so a tight
//! filter scans the allowed nodes' codes in memory and reads only the nearest few, and a loose
//! one walks the graph, keeping the allowed nodes it scores on the way.
//!
//! `layout` owns the file format, `read` the sector readers, `write` the writer, `sharded`
//! the build within a memory budget.

mod layout;
mod read;
mod relayout;
mod sharded;
mod write;

pub use layout::{Header, NodeAt, MAGIC, SECTOR, VERSION};
#[cfg(target_os = "linux")]
pub use read::UringReader;
pub use read::{open_reader, MmapReader, PreadReader, ReaderKind, SectorReader};
pub use relayout::relayout_disk_index;
pub use sharded::{
    build_disk_index_from_file, shard_row_bytes, BudgetedBuild, BudgetedReport, FIXED_BUILD_BYTES,
};
pub use write::{write_disk_index, DiskWriteParams, DiskWriteReport};

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use neardb_core::graph::{
    steered_scan, steered_search, NodeStore, PqGuide, Scratch, SteerError, SteerParams, SteerStats,
};
use neardb_core::quant::ProductQuantizer;
use neardb_core::simd::half::HalfKernels;
use neardb_core::vectors::VectorForm;
use neardb_core::{for_each_allowed, Filter, Kernels, Metric, Neighbor, Plan};

/// Bytes a cached node costs beyond its own (its key and the map's slot and box).
const CACHE_OVERHEAD: u64 = 32;

/// What can go wrong with an SSD index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    /// The operating system refused a read or write.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The header sector is not a valid SSD index header.
    #[error("bad SSD index header: {reason}")]
    BadHeader {
        /// What is wrong.
        reason: &'static str,
    },
    /// A layout version this build does not read.
    #[error(
        "SSD index layout version {version} is not supported (this build reads version 2; rebuild the index)"
    )]
    UnsupportedVersion {
        /// The file's version.
        version: u32,
    },
    /// The file is not as long as its header says.
    #[error("the SSD index should be {expected} bytes long but is {actual} (truncated or padded)")]
    WrongLength {
        /// Bytes the header implies.
        expected: u64,
        /// Bytes found.
        actual: u64,
    },
    /// The PQ region does not match its checksum, or its codebooks are invalid.
    #[error("the SSD index's PQ region is corrupt: {reason}")]
    BadPq {
        /// What is wrong.
        reason: &'static str,
    },
    /// The row region does not match its checksum.
    #[error("the SSD index's row region is corrupt: {reason}")]
    BadRows {
        /// What is wrong.
        reason: &'static str,
    },
    /// A node read from the file breaks the layout's rules.
    #[error("SSD index node {id} is corrupt: {reason}")]
    BadNode {
        /// The node.
        id: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// The index cannot be built as asked.
    #[error("cannot build the SSD index: {reason}")]
    Build {
        /// Why.
        reason: &'static str,
    },
    /// The input vector file could not be read.
    #[error(transparent)]
    Input(#[from] crate::io::VecIoError),
    /// An error of the core (bad query, bad parameters, quantizer training).
    #[error(transparent)]
    Core(#[from] neardb_core::Error),
}

/// A steered search's failure as the index reports it: refused input, or the store's error.
impl From<SteerError<DiskError>> for DiskError {
    fn from(e: SteerError<DiskError>) -> Self {
        match e {
            SteerError::Input(e) => DiskError::Core(e),
            SteerError::Store(e) => e,
        }
    }
}

impl DiskError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}

/// How to open an SSD index.
#[derive(Clone, Copy, Debug)]
pub struct DiskOpenOptions {
    /// Which reader (io_uring, pread, or io_uring where allowed).
    pub reader: ReaderKind,
    /// Read with `O_DIRECT` (bypassing the page cache) where the file system allows it.
    pub direct: bool,
    /// Nodes to cache, read once at open and never again: those a warm-up sample of
    /// searches (for a strided sample of the index's own vectors) read most, then the nodes
    /// nearest the medoid (breadth first), which every search passes through. Each costs about
    /// [`Header::node_bytes`] of memory ([`DiskIndex::cache_nodes_for`] turns a budget into a count).
    pub cache_nodes: u64,
    /// Use every node of a sector read (their vectors re-rank, and they become candidates
    /// whose expansion costs no read). Off: only the nodes asked for are used, as DiskANN's
    /// walk does (for comparison).
    pub sector_neighbors: bool,
    /// Start each walk from the medoid and from the nodes nearest the query by code among a
    /// sample spread over the graph ([`PqGuide::entries`]). Off: from the medoid alone, as
    /// DiskANN does (for comparison).
    pub sampled_entries: bool,
}

impl Default for DiskOpenOptions {
    fn default() -> Self {
        Self {
            reader: ReaderKind::Auto,
            direct: true,
            cache_nodes: 0,
            sector_neighbors: true,
            sampled_entries: true,
        }
    }
}

/// Reads and checks the header of the SSD index at `path` (nothing else is read).
pub fn read_header(path: &Path) -> Result<Header, DiskError> {
    use std::io::Read;
    let io = |e| DiskError::io(path, e);
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut head = Vec::with_capacity(SECTOR);
    file.take(SECTOR as u64).read_to_end(&mut head).map_err(io)?;
    Header::decode(&head, file_len)
}

/// Whether `path` starts with the SSD index's magic bytes (any read error: no).
pub fn is_disk_index(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == MAGIC
}

/// How a search walks.
#[derive(Clone, Copy, Debug)]
pub struct DiskSearchParams {
    /// Candidate-list size (L).
    pub l: usize,
    /// Beam width: nodes read per round, in one batch (W).
    pub beam: usize,
    /// A filtered search's plan, when the caller chooses it (`Scan` or `FilteredWalk`; a walk
    /// that comes back short is still redone as a scan); `None` lets the cost model choose.
    /// Ignored without a filter.
    pub plan: Option<Plan>,
}

impl Default for DiskSearchParams {
    fn default() -> Self {
        Self { l: 100, beam: 4, plan: None }
    }
}

impl DiskSearchParams {
    /// The plan a filter strategy asks for: the planner's choice, a scan, or a walk (also for
    /// the two-hop walk, which the SSD index does not have: every node it looks through would
    /// cost a read).
    pub fn with_strategy(self, strategy: neardb_core::FilterStrategy) -> Self {
        use neardb_core::FilterStrategy as S;
        let plan = match strategy {
            S::Auto => None,
            S::Scan => Some(Plan::Scan),
            S::Walk | S::TwoHop => Some(Plan::FilteredWalk),
        };
        Self { plan, ..self }
    }
}

/// What one search did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// 4 KiB sectors read from the file (bytes read: `reads × SECTOR`).
    pub reads: u64,
    /// Nodes served from the cache.
    pub cache_hits: u64,
    /// Rounds of reads (hops of the beam).
    pub rounds: u32,
    /// Nodes expanded.
    pub expanded: u32,
    /// PQ distances computed.
    pub pq_distances: u32,
    /// Exact distances computed from fetched vectors.
    pub exact_distances: u32,
    /// How the search went: a walk, or for a filter a filtered walk or a scan of the allowed
    /// nodes' codes (or a walk that came back short, redone as a scan).
    pub plan: Plan,
}

/// An SSD index opened for search.
pub struct DiskIndex {
    path: PathBuf,
    header: Header,
    pq: ProductQuantizer,
    center: Vec<f32>,
    codes: Vec<u8>,
    reader: Box<dyn SectorReader>,
    kernels: Kernels,
    half: HalfKernels,
    cache: IdMap<u32, Box<[u8]>>,
    sector_neighbors: bool,
    /// Nodes spread over the graph, scored by code at the start of every walk
    /// ([`PqGuide::entries`]); empty when the walks start at the medoid alone.
    entries: Vec<u32>,
    /// Each node's row, loaded by the first filtered search.
    rows: OnceLock<RowMap>,
    /// Per-search working memory, reused: the walk's scratch and the fetch state's maps and
    /// sector buffers, so a search allocates nothing once they have grown.
    scratch: Mutex<Vec<(Scratch, FetchState)>>,
}

impl std::fmt::Debug for DiskIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskIndex")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("reader", &self.reader.name())
            .field("cached_nodes", &self.cache.len())
            .finish()
    }
}

impl DiskIndex {
    /// Opens `path`: checks the header against the file, loads and checks the PQ region, opens
    /// the reader and fills the node cache.
    pub fn open(path: &Path, opts: DiskOpenOptions) -> Result<Self, DiskError> {
        use std::os::unix::fs::FileExt;
        let io = |e| DiskError::io(path, e);
        let header = read_header(path)?;
        let file = File::open(path).map_err(io)?;
        let dim = header.dim as usize;
        let (center_len, book_len) = (dim * 4, dim * 256 * 4);
        let code_len = header.count as usize * header.pq_m as usize;
        // As large as the file says (its length was checked): refused, not aborted, when the
        // memory cannot be had.
        let region_len = center_len + book_len + code_len;
        let mut region = Vec::new();
        region.try_reserve_exact(region_len).map_err(|_| {
            DiskError::Core(neardb_core::Error::OutOfMemory {
                what: "the PQ codes",
                bytes: region_len as u64,
            })
        })?;
        region.resize(region_len, 0);
        file.read_exact_at(&mut region, header.pq_offset()).map_err(io)?;
        if crc32fast::hash(&region) != header.pq_crc {
            return Err(DiskError::BadPq { reason: "checksum mismatch" });
        }
        let floats = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        };
        let center = floats(&region[..center_len]);
        if center.iter().any(|&x| !neardb_core::in_range(x)) {
            return Err(DiskError::BadPq {
                reason: "the centre holds NaN, infinity or values beyond ±2^50"
            });
        }
        let books = floats(&region[center_len..center_len + book_len]);
        let pq = ProductQuantizer::from_codebooks(dim, header.pq_m as usize, 8, books).map_err(|_| {
            DiskError::BadPq { reason: "codebooks hold NaN, infinity or values beyond ±2^50" }
        })?;
        region.drain(..center_len + book_len);
        let reader = open_reader(path, opts.reader, opts.direct).map_err(io)?;
        let kernels = Kernels::best();
        let entries = if opts.sampled_entries { entry_sample(header.count, header.pq_m) } else { Vec::new() };
        let mut index = Self {
            path: path.to_path_buf(),
            half: HalfKernels::new(header.metric, kernels),
            header,
            pq,
            center,
            codes: region,
            reader,
            kernels,
            cache: IdMap::default(),
            sector_neighbors: opts.sector_neighbors,
            entries,
            rows: OnceLock::new(),
            scratch: Mutex::new(Vec::new()),
        };
        index.fill_cache(opts.cache_nodes)?;
        Ok(index)
    }

    /// How many cached nodes `bytes` of memory hold.
    pub fn cache_nodes_for(header: &Header, bytes: u64) -> u64 {
        bytes / (header.node_bytes() + CACHE_OVERHEAD)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The reader in use (`io_uring` or `pread`) and whether it bypasses the page cache.
    pub fn reader(&self) -> (&'static str, bool) {
        (self.reader.name(), self.reader.direct())
    }

    /// The PQ codes (and their quantizer) held in memory that steer every search.
    pub fn guide(&self) -> PqGuide<'_> {
        PqGuide {
            pq: &self.pq,
            center: &self.center,
            codes: &self.codes,
            unit_vectors: self.header.unit_vectors,
            entries: &self.entries,
        }
    }

    /// Nodes held in the cache.
    pub fn cached_nodes(&self) -> usize {
        self.cache.len()
    }

    /// Bytes of memory the index holds: PQ codes and codebooks, and cached nodes.
    pub fn memory_bytes(&self) -> u64 {
        let cached: u64 = self.cache.values().map(|n| n.len() as u64 + CACHE_OVERHEAD).sum();
        (self.codes.len() + (self.pq.codebooks().len() + self.center.len()) * 4) as u64 + cached
    }

    /// Caches `nodes` nodes: first those a warm-up sample of searches read most, then the
    /// nodes nearest the medoid, breadth first, until `nodes` of them are held.
    fn fill_cache(&mut self, nodes: u64) -> Result<(), DiskError> {
        let want = nodes.min(self.header.count) as usize;
        if want == 0 {
            return Ok(());
        }
        let mut hot = self.warm_up()?;
        hot.truncate(want);
        for batch in hot.chunks(64) {
            let mut got: Vec<(u32, Box<[u8]>)> = Vec::new();
            self.read_nodes(batch, &mut |id, node| got.push((id, node.into())))?;
            for (id, node) in got {
                self.parse_links(id, &node)?;
                self.cache.insert(id, node);
            }
        }
        let mut frontier = vec![self.header.medoid as u32];
        let mut seen = std::collections::HashSet::from([self.header.medoid as u32]);
        while !frontier.is_empty() && self.cache.len() < want {
            let mut next = Vec::new();
            for batch in frontier.chunks(64) {
                // Nodes the warm-up cached are walked through, not read again.
                let (held, unread): (Vec<u32>, Vec<u32>) =
                    batch.iter().partition(|id| self.cache.contains_key(id));
                let mut got: Vec<(u32, Box<[u8]>)> = Vec::new();
                if !unread.is_empty() {
                    self.read_nodes(&unread, &mut |id, node| got.push((id, node.into())))?;
                }
                for id in held {
                    if let Some(node) = self.cache.get(&id) {
                        let (links, _) = self.parse_links(id, node)?;
                        next.extend(links.filter(|&n| seen.insert(n)));
                    }
                }
                for (id, node) in got {
                    if self.cache.len() >= want {
                        break;
                    }
                    let (links, _) = self.parse_links(id, &node)?;
                    next.extend(links.filter(|&n| seen.insert(n)));
                    self.cache.insert(id, node);
                }
            }
            frontier = next;
        }
        Ok(())
    }

    /// The nodes that searches for a strided sample of the index's own vectors read, most
    /// read first (ties by id): where searches for data like the indexed data go, which a
    /// cache serves better than the medoid's neighbourhood alone (DiskANN warms its cache
    /// from sample queries too). Costs about [`WARM_UP_QUERIES`] searches at open.
    fn warm_up(&self) -> Result<Vec<u32>, DiskError> {
        let count = self.header.count;
        let queries = (WARM_UP_QUERIES as u64).min(count);
        let sample: Vec<u32> = (0..queries).map(|i| (i * count / queries) as u32).collect();
        let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(sample.len());
        let mut decoded = Vec::new();
        for batch in sample.chunks(64) {
            let mut failed = None;
            self.read_nodes(batch, &mut |id, node| {
                let values = self.node_vector(node, &mut decoded);
                match check_values(id, values) {
                    Ok(()) => vectors.push(values.to_vec()),
                    Err(e) => failed = Some(e),
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        let mut tally = IdMap::default();
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        for q in &vectors {
            let state = FetchState { tally: Some(tally), ..FetchState::default() };
            let fetcher = Fetcher { index: self, state: Mutex::new(state) };
            let params = SteerParams { l: WARM_UP_L, width: 4, ride: self.ride() };
            let entry = self.header.medoid as u32;
            let metric = self.header.metric;
            steered_search(
                &fetcher,
                self.guide(),
                self.kernels,
                metric,
                entry,
                q,
                1,
                params,
                None,
                &mut scratch,
                &mut out,
            )
            .map_err(DiskError::from)?;
            tally = fetcher.state().tally.take().unwrap_or_default();
        }
        let mut ranked: Vec<(u32, u32)> = tally.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(ranked.into_iter().map(|(id, _)| id).collect())
    }

    /// Reads the nodes `ids` from the file (one batch; nodes sharing a sector share its read)
    /// and calls `visit(id, node bytes)` for each. Returns the sectors read.
    fn read_nodes(&self, ids: &[u32], visit: &mut dyn FnMut(u32, &[u8])) -> Result<u64, DiskError> {
        let mut requests: Vec<(u64, usize)> = Vec::with_capacity(ids.len());
        let mut placed: Vec<(usize, usize)> = Vec::with_capacity(ids.len());
        for &id in ids {
            if id as u64 >= self.header.count {
                return Err(DiskError::BadNode { id, reason: "beyond the node count" });
            }
            let at = self.header.locate(id as u64);
            let request = match requests.iter().position(|&(o, _)| o == at.offset) {
                Some(r) => r,
                None => {
                    requests.push((at.offset, at.len));
                    requests.len() - 1
                }
            };
            placed.push((request, at.within));
        }
        let node_bytes = self.header.node_bytes() as usize;
        let mut per_request: Vec<Vec<(u32, usize)>> = vec![Vec::new(); requests.len()];
        for (&id, &(r, within)) in ids.iter().zip(&placed) {
            per_request[r].push((id, within));
        }
        self.reader
            .read_batch(&requests, &mut |r, bytes| {
                for &(id, within) in &per_request[r] {
                    visit(id, &bytes[within..within + node_bytes]);
                }
            })
            .map_err(|e| DiskError::io(&self.path, e))?;
        Ok(requests.iter().map(|&(_, len)| (len / SECTOR) as u64).sum())
    }

    /// A node's row and checked neighbour list (every id below the count, at most R of them).
    fn parse_links<'n>(&self, id: u32, node: &'n [u8]) -> Result<(LinkBytes<'n>, u32), DiskError> {
        let at = self.header.dim as usize * self.header.value_bytes() as usize;
        let word = |i: usize| u32::from_le_bytes([node[i], node[i + 1], node[i + 2], node[i + 3]]);
        let row = word(at);
        let degree = word(at + 4);
        if degree > self.header.max_degree {
            return Err(DiskError::BadNode { id, reason: "degree above the maximum" });
        }
        let list = LinkBytes(node[at + 8..at + 8 + 4 * degree as usize].chunks_exact(4));
        let count = self.header.count;
        if list.clone().any(|n| n as u64 >= count) {
            return Err(DiskError::BadNode { id, reason: "a neighbour beyond the node count" });
        }
        Ok((list, row))
    }

    /// The `k` nearest neighbours of `query` (ids are the rows the index was built from) and
    /// what the search read. Only rows `filter` allows are answered (its ids are rows too);
    /// whenever at least `k` rows match, `k` are answered.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        params: DiskSearchParams,
        filter: Option<&dyn Filter>,
    ) -> Result<(Vec<Neighbor>, DiskStats), DiskError> {
        let Some(user) = filter else {
            return self.run(None, Plan::Walk, |fetcher, scratch, out| {
                self.walk(fetcher, query, k, params.l, params.beam, None, scratch, out)
            });
        };
        neardb_core::check_query(query, self.header.dim as usize, k)?;
        let map = self.row_map()?;
        let nodes = map.row_of_node.len();
        let matches = user.count_allowed(map.row_span());
        if matches == Some(0) {
            return Ok((Vec::new(), DiskStats { plan: Plan::Scan, ..DiskStats::default() }));
        }
        // Without a count (a predicate), the share of a strided sample of nodes that match.
        let share = match matches {
            Some(m) => (m as f64 / nodes as f64).min(1.0),
            None => {
                let step = nodes.div_ceil(FILTER_SAMPLE).max(1);
                let seen = map.row_of_node.iter().step_by(step);
                let hits = seen.clone().filter(|&&r| user.allows(r)).count();
                (hits.max(1) as f64 / seen.count() as f64).min(1.0)
            }
        };
        let node_filter = NodeFilter { rows: &map.row_of_node, user };
        let walk_l = filtered_walk_l(params.l.max(k), share);
        let plan = params.plan.unwrap_or_else(|| {
            let scan = scan_cost(share * nodes as f64, self.header.pq_m, params.l.max(k));
            if scan <= walk_cost(walk_l) {
                Plan::Scan
            } else {
                Plan::FilteredWalk
            }
        });
        let scan = |fetcher: &Fetcher<'_>, scratch: &mut Scratch, out: &mut Vec<Neighbor>| {
            let by_rows = share * 16.0 < 1.0 && user.allowed_ids().is_some();
            let mut candidates = |visit: &mut dyn FnMut(u32)| {
                if by_rows {
                    for_each_allowed(user, map.row_span(), |row| map.nodes_of(row, &mut *visit));
                } else {
                    for (node, &row) in map.row_of_node.iter().enumerate() {
                        if user.allows(row) {
                            visit(node as u32);
                        }
                    }
                }
            };
            steered_scan(
                fetcher,
                self.guide(),
                self.kernels,
                self.header.metric,
                query,
                k,
                params.l,
                &mut candidates,
                &node_filter,
                scratch,
                out,
            )
        };
        let (mut hits, stats) = if plan == Plan::Scan {
            self.run(Some(map), Plan::Scan, scan)?
        } else {
            let walked = self.run(Some(map), Plan::FilteredWalk, |fetcher, scratch, out| {
                self.walk(fetcher, query, k, walk_l, params.beam, Some(&node_filter), scratch, out)
            })?;
            let want = k.min(matches.map_or(k, |m| m as usize));
            if walked.0.len() >= want {
                walked
            } else {
                // The walk found too few allowed nodes near its path: scan, adding up the cost.
                let (hits, scanned) = self.run(Some(map), Plan::WalkThenScan, scan)?;
                let w = walked.1;
                let stats = DiskStats {
                    reads: w.reads + scanned.reads,
                    cache_hits: w.cache_hits + scanned.cache_hits,
                    rounds: w.rounds + scanned.rounds,
                    expanded: w.expanded + scanned.expanded,
                    pq_distances: w.pq_distances + scanned.pq_distances,
                    exact_distances: w.exact_distances + scanned.exact_distances,
                    plan: Plan::WalkThenScan,
                };
                (hits, stats)
            }
        };
        hits.truncate(k);
        Ok((hits, stats))
    }

    /// Nodes in memory a round may expand beside each node it reads: as many as a sector of
    /// the read holds (so a block's other nodes are taken while near), at least one (so a
    /// cache near the medoid does not turn each round into a walk of hundreds of nodes: on
    /// 1M × 1024 with 1 GiB cached, eight per read cost 60 % more CPU than two for the same
    /// recall; with 1.5 GiB cached and three nodes per two-sector block, one per read reached
    /// recall 0.95 with a third fewer PQ distances than three).
    fn ride(&self) -> usize {
        let h = &self.header;
        (h.nodes_per_block() / h.block_sectors as u64).max(1) as usize
    }

    /// The steered walk from the medoid with list size `l`.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        fetcher: &Fetcher<'_>,
        query: &[f32],
        k: usize,
        l: usize,
        beam: usize,
        filter: Option<&dyn Filter>,
        scratch: &mut Scratch,
        out: &mut Vec<Neighbor>,
    ) -> Result<SteerStats, SteerError<DiskError>> {
        steered_search(
            fetcher,
            self.guide(),
            self.kernels,
            self.header.metric,
            self.header.medoid as u32,
            query,
            k,
            SteerParams { l, width: beam, ride: self.ride() },
            filter,
            scratch,
            out,
        )
    }

    /// Runs one search through pooled working memory and a fresh fetch state, and answers
    /// rows: through `map` when given, else through the rows of the nodes fetched.
    fn run(
        &self,
        map: Option<&RowMap>,
        plan: Plan,
        search: impl FnOnce(
            &Fetcher<'_>,
            &mut Scratch,
            &mut Vec<Neighbor>,
        ) -> Result<SteerStats, SteerError<DiskError>>,
    ) -> Result<(Vec<Neighbor>, DiskStats), DiskError> {
        let (mut scratch, state) = self.scratch.lock().ok().and_then(|mut p| p.pop()).unwrap_or_default();
        let fetcher = Fetcher { index: self, state: Mutex::new(state) };
        let mut out = Vec::new();
        let result = search(&fetcher, &mut scratch, &mut out);
        let mut state = fetcher.state.into_inner().unwrap_or_else(|e| e.into_inner());
        let walked = result.map_err(DiskError::from);
        if walked.is_ok() {
            for n in out.iter_mut() {
                n.id = match map {
                    Some(map) => map.row_of_node.get(n.id as usize).copied(),
                    // Every answered node was fetched, so its row is known.
                    None => state.rows.get(&n.id).copied(),
                }
                .unwrap_or(n.id);
            }
            // A file whose nodes claim one row twice (valid writers never make one) answers it
            // once, at its nearest.
            if out.len() > 1 {
                let mut ids = std::mem::take(&mut state.asked);
                ids.clear();
                ids.extend(out.iter().map(|n| n.id));
                ids.sort_unstable();
                if ids.windows(2).any(|w| w[0] == w[1]) {
                    let mut seen = std::collections::HashSet::with_capacity(out.len());
                    out.retain(|n| seen.insert(n.id));
                }
                state.asked = ids;
            }
        }
        let (reads, cache_hits) = (state.reads, state.cache_hits);
        state.reset();
        if let Ok(mut pool) = self.scratch.lock() {
            pool.push((scratch, state));
        }
        let walked = walked?;
        let stats = DiskStats {
            reads,
            cache_hits,
            rounds: walked.walk.rounds,
            expanded: walked.walk.expanded,
            pq_distances: walked.walk.distances,
            exact_distances: walked.exact,
            plan,
        };
        Ok((out, stats))
    }

    /// The vector of `row` as the file holds it (binary16 decoded), read from its node; `None`
    /// when no node holds that row.
    pub fn vector(&self, row: u32) -> Result<Option<Vec<f32>>, DiskError> {
        let map = self.row_map()?;
        let mut node_id = None;
        map.nodes_of(row, &mut |n| {
            node_id.get_or_insert(n);
        });
        let Some(id) = node_id else { return Ok(None) };
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        match self.cache.get(&id) {
            Some(cached) => out.extend_from_slice(self.node_vector(cached, &mut buf)),
            None => {
                self.read_nodes(&[id], &mut |_, node| {
                    out.extend_from_slice(self.node_vector(node, &mut buf))
                })?;
            }
        }
        check_values(id, &out)?;
        Ok(Some(out))
    }

    /// Calls `visit(row, vector)` for every node, in file order, reading the node region front
    /// to back in large reads (through the page cache): how a collection's compaction takes
    /// the vectors out of an SSD segment.
    pub fn for_each_vector(&self, visit: &mut dyn FnMut(u32, &[f32])) -> Result<(), DiskError> {
        use std::os::unix::fs::FileExt;
        let h = &self.header;
        let file = File::open(&self.path).map_err(|e| DiskError::io(&self.path, e))?;
        let node_bytes = h.node_bytes() as usize;
        let per = h.nodes_per_block().max(1);
        let span = h.read_bytes();
        let spans = h.node_sectors() / (span / SECTOR) as u64;
        // About 4 MiB a read (less for a smaller file), whole blocks or multi-sector nodes.
        let spans_per_read = ((4 << 20) / span).clamp(1, spans.max(1) as usize);
        let mut buf = vec![0u8; spans_per_read * span];
        let mut vector = Vec::with_capacity(h.dim as usize);
        let mut first = 0u64;
        while first < spans {
            let take = (spans - first).min(spans_per_read as u64) as usize;
            let bytes = &mut buf[..take * span];
            file.read_exact_at(bytes, (1 + first * (span / SECTOR) as u64) * SECTOR as u64)
                .map_err(|e| DiskError::io(&self.path, e))?;
            for (i, chunk) in bytes.chunks_exact(span).enumerate() {
                let base = (first + i as u64) * per;
                for j in 0..per.min(h.count.saturating_sub(base)) {
                    let node = &chunk[j as usize * node_bytes..(j as usize + 1) * node_bytes];
                    let id = (base + j) as u32;
                    let (_, row) = self.parse_links(id, node)?;
                    let values = self.node_vector(node, &mut vector);
                    check_values(id, values)?;
                    visit(row, values);
                }
            }
            first += take as u64;
        }
        Ok(())
    }

    /// A node's vector: its bytes in place where they are aligned little-endian `f32`s, else
    /// decoded (binary16, or unaligned bytes) into `buf`.
    fn node_vector<'a>(&self, node: &'a [u8], buf: &'a mut Vec<f32>) -> &'a [f32] {
        let dim = self.header.dim as usize;
        buf.clear();
        if self.header.form == VectorForm::F16 {
            let bytes = &node[..dim * 2];
            match bytemuck::try_cast_slice::<u8, u16>(bytes) {
                Ok(halves) if cfg!(target_endian = "little") => self.half.decode_into(halves, buf),
                _ => {
                    let halves: Vec<u16> =
                        bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
                    self.half.decode_into(&halves, buf);
                }
            }
            return buf;
        }
        let bytes = &node[..dim * 4];
        match bytemuck::try_cast_slice::<u8, f32>(bytes) {
            Ok(floats) if cfg!(target_endian = "little") => floats,
            _ => {
                buf.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                buf
            }
        }
    }

    /// Each node's row, read and checked from the row region on first use.
    fn row_map(&self) -> Result<&RowMap, DiskError> {
        use std::os::unix::fs::FileExt;
        if let Some(map) = self.rows.get() {
            return Ok(map);
        }
        let h = &self.header;
        let len = h.rows_len() as usize;
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(len).map_err(|_| {
            DiskError::Core(neardb_core::Error::OutOfMemory { what: "the row region", bytes: len as u64 })
        })?;
        bytes.resize(len, 0);
        let io = |e| DiskError::io(&self.path, e);
        File::open(&self.path).and_then(|f| f.read_exact_at(&mut bytes, h.rows_offset())).map_err(io)?;
        if crc32fast::hash(&bytes) != h.rows_crc {
            return Err(DiskError::BadRows { reason: "checksum mismatch" });
        }
        let row_of_node: Vec<u32> =
            bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(self.rows.get_or_init(|| RowMap::new(row_of_node)))
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.header.metric
    }
}

/// A node's neighbour ids, read from its bytes (little-endian `u32`s).
#[derive(Clone)]
pub struct LinkBytes<'a>(std::slice::ChunksExact<'a, u8>);

impl Iterator for LinkBytes<'_> {
    type Item = u32;
    #[inline]
    fn next(&mut self) -> Option<u32> {
        self.0.next().map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A hasher for the integer keys of a search's maps (node ids, sector offsets): one multiply,
/// where the default SipHash costs more than the lookups it serves. Keys come from the file,
/// not from an adversary choosing collisions against a live service.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
}

type IdMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// What one search's fetches keep: the rows of the nodes it fetched, its read counts, and the
/// sectors it read (any node in them is served again without a read).
#[derive(Default)]
struct FetchState {
    rows: IdMap<u32, u32>,
    reads: u64,
    cache_hits: u64,
    vector: Vec<f32>,
    sectors: IdMap<u64, Vec<u8>>,
    /// Sector buffers of earlier searches, for the next reads.
    spare: Vec<Vec<u8>>,
    /// The ids a fetch asked for, sorted (kept for its memory).
    asked: Vec<u32>,
    /// The asked nodes a round waits to read, by read (kept for its memory).
    waiting: Vec<(usize, u32)>,
    /// How often each node was asked for, when counting (the cache's warm-up).
    tally: Option<IdMap<u32, u32>>,
}

impl FetchState {
    /// Empty for the next search, keeping every map's and buffer's memory.
    fn reset(&mut self) {
        self.rows.clear();
        self.reads = 0;
        self.cache_hits = 0;
        let Self { sectors, spare, .. } = self;
        spare.extend(sectors.drain().map(|(_, b)| b));
    }
}

/// One search's view of the file as the graph layer's node store.
struct Fetcher<'a> {
    index: &'a DiskIndex,
    // A mutex only because filters are `Sync`; one search uses it from one thread.
    state: Mutex<FetchState>,
}

/// Searches the cache's warm-up runs, and the list size of each: enough to rank the nodes
/// searches pass through (a few seconds of reads at open).
const WARM_UP_QUERIES: usize = 1000;
const WARM_UP_L: usize = 64;

/// Nodes a share of 1/FILTER_SAMPLE apart are tested against a predicate to estimate how many
/// it allows.
const FILTER_SAMPLE: usize = 1024;

/// Nodes a walk scores at its start to begin near the query: about 2√n spread over the node
/// ids (which the writer placed along the graph), at least 64 and at most 4,096, and at most
/// 2^18 code bytes (about 1,000 codes of 256 bytes: tens of microseconds a query, less than
/// one read). On 100k × 384 (32-byte codes) 632 of them, the best four starting a beam of
/// four, took recall at L 128 from 0.948 to 0.962 with 10 % fewer reads; on 1M × 1024 (256
/// bytes) 1,024 of them cut the reads at L 24 by a fifth. A sample of 128 or 256 was worse
/// than none: its nearest nodes are not near enough to save rounds, and the walk then
/// explores less around them.
fn entry_sample(count: u64, code_bytes: u32) -> Vec<u32> {
    let by_count = (((count as f64).sqrt() * 2.0) as u64).clamp(64, 4096);
    let want = by_count.min((1 << 18) / u64::from(code_bytes.max(1))).min(count);
    (0..want).map(|i| (i * count / want.max(1)) as u32).collect()
}

/// The list size of a filtered walk at filter share `share`: an allowed node is scored on the
/// way with probability `share`, so the list grows to keep about as many allowed ones near
/// the query as an unfiltered walk of list `l` answers from, within 16 × `l`.
fn filtered_walk_l(l: usize, share: f64) -> usize {
    let grown = l as f64 / share.max(1e-9).sqrt();
    grown.min(16.0 * l as f64).ceil() as usize
}

/// The planner's estimate of a walk with list size `l`, in microseconds: about 0.9 reads per
/// list entry (whole sectors bring neighbours along) of about 20 µs each, four at a time, on
/// the NVMe-backed virtual disks measured (BENCHMARKS, session 15).
fn walk_cost(l: usize) -> f64 {
    READ_US * 0.9 * l as f64
}

/// The estimate of a scan: the matches' codes in memory (14.5 ns a row at 32 PQ bytes,
/// measured), then the `l` nearest by code read in one batch — no cheaper a read there than
/// in a walk's rounds on those disks.
fn scan_cost(matches: f64, pq_bytes: u32, l: usize) -> f64 {
    matches * (SCAN_NS_PER_ROW + SCAN_NS_PER_BYTE * pq_bytes as f64) / 1000.0 + READ_US * 0.9 * l as f64
}

const READ_US: f64 = 20.0;
const SCAN_NS_PER_ROW: f64 = 3.0;
const SCAN_NS_PER_BYTE: f64 = 0.35;

/// Which row each node holds, and back.
struct RowMap {
    row_of_node: Vec<u32>,
    by_row: ByRow,
}

/// The nodes of each row.
enum ByRow {
    /// The rows are exactly `0..count`: `node[row]`.
    Dense(Vec<u32>),
    /// Any other rows: `(row, node)` sorted.
    Sorted(Vec<(u32, u32)>),
}

impl RowMap {
    fn new(row_of_node: Vec<u32>) -> Self {
        let n = row_of_node.len();
        let mut dense = vec![u32::MAX; n];
        let mut is_dense = true;
        for (node, &row) in row_of_node.iter().enumerate() {
            match dense.get_mut(row as usize) {
                Some(slot) if *slot == u32::MAX => *slot = node as u32,
                _ => {
                    is_dense = false;
                    break;
                }
            }
        }
        let by_row = if is_dense {
            ByRow::Dense(dense)
        } else {
            drop(dense);
            let mut pairs: Vec<(u32, u32)> =
                row_of_node.iter().enumerate().map(|(node, &row)| (row, node as u32)).collect();
            pairs.sort_unstable();
            ByRow::Sorted(pairs)
        };
        Self { row_of_node, by_row }
    }

    /// One past the largest row: the id range a filter over rows covers.
    fn row_span(&self) -> u32 {
        match &self.by_row {
            ByRow::Dense(nodes) => nodes.len() as u32,
            ByRow::Sorted(pairs) => pairs.last().map_or(0, |&(r, _)| r.saturating_add(1)),
        }
    }

    /// Calls `visit` with every node holding `row`.
    fn nodes_of(&self, row: u32, visit: &mut dyn FnMut(u32)) {
        match &self.by_row {
            ByRow::Dense(nodes) => {
                if let Some(&node) = nodes.get(row as usize) {
                    visit(node);
                }
            }
            ByRow::Sorted(pairs) => {
                let from = pairs.partition_point(|&(r, _)| r < row);
                pairs[from..].iter().take_while(|&&(r, _)| r == row).for_each(|&(_, node)| visit(node));
            }
        }
    }
}

/// A node's vector must hold finite values within ±2^50, as every vector the library accepts
/// does: the nodes carry no checksum, and one NaN or overflowing value would poison distances.
fn check_values(id: u32, values: &[f32]) -> Result<(), DiskError> {
    match neardb_core::all_in_range(values) {
        true => Ok(()),
        false => Err(DiskError::BadNode { id, reason: "a vector value is NaN, infinite or beyond ±2^50" }),
    }
}

/// A caller's filter over rows, asked about nodes through the row map.
struct NodeFilter<'a> {
    rows: &'a [u32],
    user: &'a dyn Filter,
}

impl Filter for NodeFilter<'_> {
    fn allows(&self, id: u32) -> bool {
        self.rows.get(id as usize).is_some_and(|&r| self.user.allows(r))
    }
}

impl Fetcher<'_> {
    fn state(&self) -> MutexGuard<'_, FetchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records node `id`'s row and calls `visit` with its links and vector (read in place
    /// where the bytes allow, else decoded).
    fn deliver<F>(&self, id: u32, node: &[u8], visit: &mut F) -> Result<(), DiskError>
    where
        F: FnMut(u32, LinkBytes<'_>, Option<&[f32]>),
    {
        let index = self.index;
        let (links, row) = index.parse_links(id, node)?;
        let mut state = self.state();
        state.rows.insert(id, row);
        let mut vector = std::mem::take(&mut state.vector);
        drop(state);
        let values = index.node_vector(node, &mut vector);
        let checked = check_values(id, values);
        if checked.is_ok() {
            visit(id, links, Some(values));
        }
        self.state().vector = vector;
        checked
    }
}

impl NodeStore for Fetcher<'_> {
    type Error = DiskError;
    type Links<'b>
        = LinkBytes<'b>
    where
        Self: 'b;

    fn node_count(&self) -> usize {
        self.index.header.count as usize
    }

    fn is_ready(&self, id: u32) -> bool {
        let index = self.index;
        index.cache.contains_key(&id)
            || (index.sector_neighbors
                && self.state().sectors.contains_key(&index.header.locate(id as u64).offset))
    }

    /// Reads the sectors of the asked nodes that neither the cache nor this search's earlier
    /// reads hold (one batch); visits the asked nodes that needed no read, then the others as
    /// their reads complete, then every other node of the sectors just read (ascending),
    /// which came at no extra cost.
    fn fetch<F>(&self, ids: &[u32], mut visit: F) -> Result<(), DiskError>
    where
        F: FnMut(u32, LinkBytes<'_>, Option<&[f32]>),
    {
        let index = self.index;
        let h = &index.header;
        let mut to_read: Vec<(u64, usize)> = Vec::new();
        {
            let mut state = self.state();
            if let Some(tally) = state.tally.as_mut() {
                for &id in ids {
                    *tally.entry(id).or_insert(0) += 1;
                }
            }
            for &id in ids {
                if id as u64 >= h.count {
                    return Err(DiskError::BadNode { id, reason: "beyond the node count" });
                }
                if index.cache.contains_key(&id) {
                    continue;
                }
                let at = h.locate(id as u64);
                if !state.sectors.contains_key(&at.offset) {
                    to_read.push((at.offset, at.len));
                }
            }
        }
        // Nodes sharing a sector share its read (a scan's batch may be hundreds of nodes, so
        // sorted rather than searched).
        to_read.sort_unstable();
        to_read.dedup();
        let node_bytes = h.node_bytes() as usize;
        let mut node = Vec::with_capacity(node_bytes);
        // A node of a sector read earlier is copied out before its visit: a visit may consult
        // the state (the row filter).
        let load = |id: u32, node: &mut Vec<u8>| -> Result<(), DiskError> {
            node.clear();
            let at = h.locate(id as u64);
            let state = self.state();
            let sector =
                state.sectors.get(&at.offset).ok_or(DiskError::BadNode { id, reason: "not read" })?;
            node.extend_from_slice(&sector[at.within..at.within + node_bytes]);
            Ok(())
        };
        // What needs no read first, then each read's nodes as it arrives: the walk scores one
        // node's neighbours while the device still reads the others. (The order of a round's
        // nodes does not change the walk: it keeps the best of everything they bring.)
        let mut waiting = std::mem::take(&mut self.state().waiting);
        waiting.clear();
        for &id in ids {
            if let Some(cached) = index.cache.get(&id) {
                // The cache is not part of the search's state: visited in place.
                self.state().cache_hits += 1;
                self.deliver(id, cached, &mut visit)?;
                continue;
            }
            match to_read.binary_search_by_key(&h.locate(id as u64).offset, |&(o, _)| o) {
                Ok(r) => waiting.push((r, id)),
                Err(_) => {
                    load(id, &mut node)?;
                    self.deliver(id, &node, &mut visit)?;
                }
            }
        }
        let read = if to_read.is_empty() {
            Ok(())
        } else {
            waiting.sort_by_key(|&(r, _)| r);
            let mut spare = std::mem::take(&mut self.state().spare);
            let mut failed = None;
            let read = index.reader.read_batch(&to_read, &mut |r, bytes| {
                let mut buf = spare.pop().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(bytes);
                {
                    let mut state = self.state();
                    state.reads += (to_read[r].1 / SECTOR) as u64;
                    state.sectors.insert(to_read[r].0, buf);
                }
                let from = waiting.partition_point(|&(w, _)| w < r);
                for &(_, id) in waiting[from..].iter().take_while(|&&(w, _)| w == r) {
                    if failed.is_some() {
                        return;
                    }
                    let within = h.locate(id as u64).within;
                    if let Err(e) = self.deliver(id, &bytes[within..within + node_bytes], &mut visit) {
                        failed = Some(e);
                    }
                }
            });
            self.state().spare = spare;
            read.map_err(|e| DiskError::io(&index.path, e)).and(failed.map_or(Ok(()), Err))
        };
        self.state().waiting = waiting;
        read?;
        let per = h.nodes_per_block();
        if per > 1 && index.sector_neighbors {
            let mut asked = std::mem::take(&mut self.state().asked);
            asked.clear();
            asked.extend_from_slice(ids);
            asked.sort_unstable();
            for &(offset, _) in &to_read {
                let first = (offset - SECTOR as u64) / h.block_bytes() * per;
                for extra in first..(first + per).min(h.count) {
                    let extra = extra as u32;
                    if asked.binary_search(&extra).is_ok() {
                        continue;
                    }
                    load(extra, &mut node)?;
                    self.deliver(extra, &node, &mut visit)?;
                }
            }
            self.state().asked = asked;
        }
        Ok(())
    }
}
