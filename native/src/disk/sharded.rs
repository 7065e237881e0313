//! Building an SSD index within a memory budget (DiskANN's sharded build). When the vectors
//! and their graph do not fit the budget, k-means on a sample cuts the rows into overlapping
//! shards (each row in its two nearest, no shard above what the budget holds), each shard's
//! Vamana graph is built in memory and spilled to disk, the shard graphs are merged node by
//! node into one on-disk graph, and the writer lays that out reading rows back from the input
//! file. The input is only ever streamed or read row by row, never held.
//!
//! Owns the memory plan that sizes the shards, the temporary shard files and the merge.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use neardb_core::check_vectors;
use neardb_core::quant::kmeans::{kmeans, KMeansParams};
use neardb_core::rng::Rng;
use neardb_core::{Error, Kernels, Metric, VamanaIndex, VamanaParams, ZeroVectorKind};

use super::write::{write_nodes, NodeSource, PQ_TRAINING_ROWS};
use super::{DiskError, DiskWriteParams, DiskWriteReport};
use crate::io::{VecReader, VecRows};

/// Bytes a build holds whatever its size: the program, thread stacks, the allocator's slack
/// and the I/O buffers. The budget must exceed it.
pub const FIXED_BUILD_BYTES: u64 = 48 << 20;

/// Rows streamed per chunk at most (fewer when the budget is small).
const CHUNK_ROWS: usize = 16_384;
/// Buffer of each open shard file while rows are dealt out.
const SHARD_BUFFER: usize = 64 << 10;
/// Rounds of splitting the shards that would overflow.
const SPLIT_ROUNDS: usize = 3;
/// Room kept for a shard's own rows beyond what the sample predicts.
const OWN_MARGIN: f64 = 1.15;
/// Every row goes to this many shards (DiskANN's overlap): the merged graph links across
/// shard borders through the rows the shards share.
const SHARDS_PER_ROW: usize = 2;
/// Shards are planned this much below the budget's capacity, so k-means's uneven clusters
/// still leave the nearest shards room for most rows.
const SHARD_HEADROOM: f64 = 0.8;

/// How to build an SSD index from a vector file within a memory budget.
#[derive(Clone, Copy, Debug)]
pub struct BudgetedBuild {
    /// The metric.
    pub metric: Metric,
    /// The graph's R, L, α and seed.
    pub vamana: VamanaParams,
    /// The file's PQ bytes, vector form and placement.
    pub write: DiskWriteParams,
    /// Most bytes the build may hold beyond [`FIXED_BUILD_BYTES`] (0: no limit, one build in
    /// memory).
    pub memory_bytes: u64,
}

/// What a budgeted build did.
#[derive(Clone, Debug)]
pub struct BudgetedReport {
    /// What was written.
    pub write: DiskWriteReport,
    /// Shards built (1: the whole graph in memory at once).
    pub shards: usize,
    /// Rows of the largest shard.
    pub largest_shard: usize,
    /// Rows whose nearest shard was full, placed in the nearest with room.
    pub displaced_rows: usize,
    /// Rows whose lists from their shards made more than R links together, pruned again.
    pub pruned_rows: usize,
}

/// RobustPrune of a merged list, over rows read back from the input one by one.
struct Pruner<'a> {
    rows: &'a VecRows,
    metric: Metric,
    unit_rows: bool,
    r: usize,
    alpha: f32,
    kernels: Kernels,
    dim: usize,
    /// The base row, then each candidate's, as read.
    vectors: Vec<f32>,
    raw: Vec<u8>,
    cands: Vec<neardb_core::Neighbor>,
}

impl<'a> Pruner<'a> {
    fn new(rows: &'a VecRows, plan: &BudgetedBuild, unit_rows: bool, kernels: Kernels) -> Self {
        Self {
            rows,
            metric: plan.metric,
            unit_rows,
            r: plan.vamana.r,
            alpha: plan.vamana.alpha,
            kernels,
            dim: rows.info().dim,
            vectors: Vec::new(),
            raw: Vec::new(),
            cands: Vec::new(),
        }
    }

    fn prune(&mut self, base: u32, union: &[u32], out: &mut Vec<u32>) -> Result<(), DiskError> {
        let dim = self.dim;
        self.vectors.clear();
        for &id in std::iter::once(&base).chain(union) {
            let at = self.vectors.len();
            self.rows.read_rows(id as usize, 1, &mut self.vectors, &mut self.raw)?;
            prepare_rows(&mut self.vectors[at..], dim, self.metric, &self.kernels)
                .map_err(|e| e.in_batch_at(id as usize))?;
        }
        let (me, others) = self.vectors.split_at(dim);
        self.cands.clear();
        for (k, v) in others.chunks_exact(dim).enumerate() {
            // Candidates are named by their place in `union` while pruning.
            self.cands.push(neardb_core::Neighbor {
                id: k as u32,
                distance: self.metric.distance(&self.kernels, me, v),
            });
        }
        self.cands.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        let (metric, kernels) = (self.metric, self.kernels);
        let row = |k: u32| &others[k as usize * dim..(k as usize + 1) * dim];
        neardb_core::graph::prune_neighbors(
            metric,
            self.unit_rows,
            &self.cands,
            self.r,
            self.alpha,
            out,
            |a, b| metric.distance(&kernels, row(a), row(b)),
        );
        out.iter_mut().for_each(|k| *k = union[*k as usize]);
        Ok(())
    }
}

/// Bytes one row costs while its shard's graph is built: the rows as read (the build's working
/// copy) and the index's rows, or the index's rows and a reordering copy; its links with
/// DiskANN's 1.3 slack, twice while they are renumbered; the build's per-row bookkeeping.
pub fn shard_row_bytes(dim: usize, r: usize) -> u64 {
    let links = r + (r * 3).div_ceil(10) + 1;
    (2 * dim * 4 + 2 * links * 4 + 96) as u64
}

/// Bytes per row the writer holds at once: the codes, the placement order, its inverse and
/// the breadth-first walk's order and marks.
fn writer_row_bytes(pq_bytes: usize) -> u64 {
    (pq_bytes + 4 * 3 + 2) as u64
}

/// Builds an SSD index over the vector file `input` into `output` within `plan.memory_bytes`.
/// `build` builds one graph in memory (on every rayon thread, or seeded on one).
pub fn build_disk_index_from_file(
    input: &Path,
    output: &Path,
    plan: &BudgetedBuild,
    build: fn(&mut VamanaIndex, Vec<f32>) -> neardb_core::Result<()>,
) -> Result<BudgetedReport, DiskError> {
    let rows = VecRows::open(input)?;
    let info = rows.info();
    let (n, dim) = (info.count, info.dim);
    let pq_bytes = plan.write.pq_bytes.max(1);
    let per_row = shard_row_bytes(dim, plan.vamana.r);
    let budget = plan.memory_bytes;
    if budget == 0 || (n as u64).saturating_mul(per_row + writer_row_bytes(pq_bytes)) <= budget {
        let (data, dim) = crate::io::read_f32_vectors(input)?;
        let mut index = VamanaIndex::new(dim, plan.metric, plan.vamana)?;
        build(&mut index, data)?;
        let write = super::write_disk_index(output, &index, None, plan.write)?;
        return Ok(BudgetedReport { write, shards: 1, largest_shard: n, displaced_rows: 0, pruned_rows: 0 });
    }
    if (n as u64).saturating_mul(writer_row_bytes(pq_bytes)) > budget / 2 {
        return Err(DiskError::Build {
            reason: "the memory budget is below what writing the file needs (PQ codes and the \
                     placement order: about PQ bytes + 14 bytes per vector, twice over)",
        });
    }
    let shard_rows = (budget as f64 * SHARD_HEADROOM / per_row as f64) as usize;
    if shard_rows < 1024 {
        return Err(DiskError::Build {
            reason: "the memory budget holds fewer than 1024 rows of a shard: raise it",
        });
    }
    let shards = (SHARDS_PER_ROW * n).div_ceil(shard_rows).max(SHARDS_PER_ROW + 1);
    // Rows a shard may hold: what the budget holds.
    let capacity = (budget / per_row) as usize;
    let temp = TempDir::create(output)?;
    let kernels = Kernels::best();
    let chunk = CHUNK_ROWS.min(((budget / 16) / (dim as u64 * 4)).max(64) as usize);
    let mut stream = Stream { reader: VecReader::open(input)?, metric: plan.metric, kernels, chunk };

    // Pass 1: the mean (for the medoid) and a uniform sample (for the shard centroids).
    let sample_rows =
        (1024 * shards).max(50_000).min(n).min(((budget / 8) / (dim as u64 * 4)).max(1) as usize);
    let mut rng = Rng::new(plan.vamana.seed ^ 0x5348_4152_4453);
    let mut sample: Vec<f32> = Vec::with_capacity(sample_rows * dim);
    let mut mean = vec![0.0f64; dim];
    let mut buf = Vec::new();
    let mut seen = 0usize;
    let mut unit_rows = true;
    while let Some(first) = stream.next(&mut buf)? {
        for (i, row) in buf.chunks_exact(dim).enumerate() {
            unit_rows &= (kernels.dot(row, row) - 1.0).abs() < 1e-3;
            mean.iter_mut().zip(row).for_each(|(m, &x)| *m += f64::from(x));
            // Reservoir sampling: every row is equally likely to end in the sample.
            let at = first + i;
            if at < sample_rows {
                sample.extend_from_slice(row);
            } else {
                let j = rng.below(at as u64 + 1) as usize;
                if j < sample_rows {
                    sample[j * dim..(j + 1) * dim].copy_from_slice(row);
                }
            }
        }
        seen = first + buf.len() / dim;
    }
    if seen != n {
        return Err(DiskError::Build { reason: "the input file changed while it was read" });
    }
    let mut centre: Vec<f32> = mean.iter().map(|&m| (m / n as f64) as f32).collect();
    if plan.metric.normalizes() {
        // A zero mean leaves the centre at the origin: every unit row is then as near.
        kernels.normalize(&mut centre);
    }
    // The shards: k-means on the sample. Clusters are uneven, so a cluster whose own rows
    // (each also dealt to a second shard) would pass a shard's capacity is split by k-means
    // over its sampled rows. Rows whose two nearest shards are full go to the nearest with
    // room: in high dimension the centroids nearest the middle are among the two nearest of
    // many rows (hubs), and adding shards everywhere until none overflows (as DiskANN does)
    // makes hundreds of slivers instead.
    let sample_count = sample.len() / dim;
    let limit = capacity as f64 * SHARD_HEADROOM * sample_count as f64 / n as f64;
    let params = KMeansParams::new(shards.min(sample_count)).with_seed(plan.vamana.seed).with_iterations(10);
    let mut centroids = kmeans(kernels, &sample, dim, &params)?;
    let mut order: Vec<(f32, usize)> = Vec::new();
    for round in 0..SPLIT_ROUNDS {
        let k = centroids.len() / dim;
        let mut nearest: Vec<Vec<u32>> = vec![Vec::new(); k];
        for (i, row) in sample.chunks_exact(dim).enumerate() {
            nearest_shards(&kernels, row, &centroids, dim, &mut order);
            nearest[order[0].1].push(i as u32);
        }
        let counts: Vec<usize> = nearest.iter().map(|m| SHARDS_PER_ROW * m.len()).collect();
        if counts.iter().all(|&c| c as f64 <= limit) {
            break;
        }
        let mut next = Vec::with_capacity(centroids.len());
        for (c, centroid) in centroids.chunks_exact(dim).enumerate() {
            let parts = ((counts[c] as f64 / limit).ceil() as usize).min(nearest[c].len());
            if counts[c] as f64 <= limit || parts < 2 {
                next.extend_from_slice(centroid);
                continue;
            }
            let mut rows = Vec::with_capacity(nearest[c].len() * dim);
            for &i in &nearest[c] {
                rows.extend_from_slice(&sample[i as usize * dim..(i as usize + 1) * dim]);
            }
            let params = KMeansParams::new(parts)
                .with_seed(plan.vamana.seed.wrapping_add(round as u64 + 1))
                .with_iterations(10);
            next.extend(kmeans(kernels, &rows, dim, &params)?);
        }
        centroids = next;
    }
    // Room each shard keeps for the rows nearest it, as the sample predicts (with a margin);
    // rows for which it is only the second nearest share the rest, so a hub cannot fill up
    // with second choices and push rows out of their own nearest shard.
    let k = centroids.len() / dim;
    let mut own = vec![0usize; k];
    for row in sample.chunks_exact(dim) {
        nearest_shards(&kernels, row, &centroids, dim, &mut order);
        own[order[0].1] += 1;
    }
    let second_room: Vec<usize> = own
        .iter()
        .map(|&c| capacity.saturating_sub((c as f64 * OWN_MARGIN * n as f64 / sample_count as f64) as usize))
        .collect();
    drop(sample);

    // Pass 2: deal every row to its two nearest shards with room, and a uniform sample of the
    // rows to one more shard, the backbone. Shards made of one cluster each share rows only
    // with their neighbour shards, so clusters far apart would end up unlinked; the backbone's
    // graph spans them all, with the long links a whole build has, and holds the medoid (the
    // backbone row nearest the mean).
    let mut displaced_rows = 0;
    let mut medoid = (0u32, f32::INFINITY);
    let mut stream = Stream { reader: VecReader::open(input)?, ..stream };
    let backbone = centroids.len() / dim;
    let backbone_rows = capacity.min(n / 2) as u64;
    let in_backbone = |row: u32| mix(plan.vamana.seed ^ u64::from(row)) % (n as u64) < backbone_rows;
    let shards = backbone + 1;
    let mut files = Vec::with_capacity(shards);
    for s in 0..shards {
        let file = File::create(temp.shard_rows(s)).map_err(|e| DiskError::io(&temp.path, e))?;
        files.push(BufWriter::with_capacity(SHARD_BUFFER, file));
    }
    let mut sizes = vec![0usize; shards];
    let mut seconds = vec![0usize; shards];
    while let Some(first) = stream.next(&mut buf)? {
        for (i, row) in buf.chunks_exact(dim).enumerate() {
            let id = (first + i) as u32;
            if in_backbone(id) {
                let to_centre = kernels.l2sq(row, &centre);
                if to_centre < medoid.1 {
                    medoid = (id, to_centre);
                }
                deal(&mut files[backbone], id, row).map_err(|e| DiskError::io(&temp.path, e))?;
                sizes[backbone] += 1;
            }
            nearest_shards(&kernels, row, &centroids, dim, &mut order);
            // Its own shard: the nearest with room; then the next nearest with room for
            // second choices.
            let Some(first) = order.iter().position(|&(_, s)| sizes[s] < capacity) else {
                return Err(DiskError::Build { reason: "every shard is full (the plan is wrong)" });
            };
            displaced_rows += usize::from(first > 0);
            let second = order
                .iter()
                .skip(first + 1)
                .find(|&&(_, s)| sizes[s] < capacity && seconds[s] < second_room[s])
                .map(|&(_, s)| s);
            for s in std::iter::once(order[first].1).chain(second) {
                deal(&mut files[s], id, row).map_err(|e| DiskError::io(&temp.path, e))?;
                sizes[s] += 1;
            }
            if let Some(s) = second {
                seconds[s] += 1;
            }
        }
    }
    for f in files {
        f.into_inner().map_err(|e| DiskError::io(&temp.path, e.into_error()))?;
    }
    drop(buf);

    // Each shard's graph in memory, spilled as (row, degree, rows of the neighbours) records in
    // row order.
    let mut shard_params = plan.vamana;
    for (s, &size) in sizes.iter().enumerate() {
        if size == 0 {
            continue;
        }
        let (ids, data) = temp.read_shard(s, size, dim)?;
        let mut index = VamanaIndex::new(dim, plan.metric, shard_params)?;
        build(&mut index, data)?;
        fs::remove_file(temp.shard_rows(s)).map_err(|e| DiskError::io(&temp.path, e))?;
        let file = File::create(temp.shard_graph(s)).map_err(|e| DiskError::io(&temp.path, e))?;
        let mut out = BufWriter::with_capacity(SHARD_BUFFER, file);
        let io = |e| DiskError::io(&temp.path, e);
        for (slot, &row) in ids.iter().enumerate() {
            let links = index.neighbors(slot as u32);
            out.write_all(&row.to_le_bytes()).map_err(io)?;
            out.write_all(&(links.len() as u32).to_le_bytes()).map_err(io)?;
            for l in links {
                out.write_all(&ids[l as usize].to_le_bytes()).map_err(io)?;
            }
        }
        out.into_inner().map_err(|e| DiskError::io(&temp.path, e.into_error()))?;
        shard_params.seed = shard_params.seed.wrapping_add(1);
    }

    // The merge: every row's lists from its shards, united; a union longer than R is pruned
    // again (RobustPrune over the rows read back from the input), into fixed-size records of
    // one graph file.
    let r = plan.vamana.r;
    let stride = (r + 1) * 4;
    let merged_path = temp.path.join("graph.bin");
    let mut pruned_rows = 0;
    {
        let file = File::create(&merged_path).map_err(|e| DiskError::io(&merged_path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut readers = Vec::new();
        let mut heap = BinaryHeap::new();
        for (s, &size) in sizes.iter().enumerate() {
            if size > 0 {
                let mut reader = ShardGraph::open(&temp.shard_graph(s), n)?;
                if let Some(row) = reader.advance()? {
                    heap.push(Reverse((row, readers.len())));
                }
                readers.push(reader);
            }
        }
        let mut lists: Vec<usize> = Vec::new();
        let mut union: Vec<u32> = Vec::new();
        let mut merged: Vec<u32> = Vec::with_capacity(r);
        let mut pruner = Pruner::new(&rows, plan, unit_rows, kernels);
        let mut record = vec![0u8; stride];
        for row in 0..n as u32 {
            lists.clear();
            while let Some(&Reverse((next, s))) = heap.peek() {
                if next != row {
                    break;
                }
                heap.pop();
                lists.push(s);
            }
            if lists.is_empty() {
                return Err(DiskError::Build { reason: "a row is in no shard (the deal is wrong)" });
            }
            union.clear();
            for &s in &lists {
                for &l in &readers[s].links {
                    if l != row && !union.contains(&l) {
                        union.push(l);
                    }
                }
            }
            if union.len() > r {
                pruner.prune(row, &union, &mut merged)?;
                pruned_rows += 1;
            } else {
                merged.clone_from(&union);
            }
            record.iter_mut().for_each(|b| *b = 0);
            record[..4].copy_from_slice(&(merged.len() as u32).to_le_bytes());
            for (k, &l) in merged.iter().enumerate() {
                record[4 + 4 * k..8 + 4 * k].copy_from_slice(&l.to_le_bytes());
            }
            out.write_all(&record).map_err(|e| DiskError::io(&merged_path, e))?;
            for &s in &lists {
                if let Some(next) = readers[s].advance()? {
                    if next <= row {
                        return Err(DiskError::Build { reason: "a shard graph is out of row order" });
                    }
                    heap.push(Reverse((next, s)));
                }
            }
        }
        out.into_inner().map_err(|e| DiskError::io(&merged_path, e.into_error()))?;
    }
    for s in 0..shards {
        let _ = fs::remove_file(temp.shard_graph(s));
    }

    let graph = File::open(&merged_path).map_err(|e| DiskError::io(&merged_path, e))?;
    let source = MergedGraph {
        rows,
        graph,
        graph_path: merged_path.clone(),
        count: n,
        dim,
        r,
        metric: plan.metric,
        params: plan.vamana,
        medoid: medoid.0,
        kernels,
        raw: RefCell::new(Vec::new()),
    };
    let pq_sample = PQ_TRAINING_ROWS.min(((budget / 4) / (dim as u64 * 4)) as usize);
    let write = write_nodes(output, &source, None, plan.write, pq_sample)?;
    let largest_shard = sizes.iter().copied().max().unwrap_or(0);
    Ok(BudgetedReport { write, shards, largest_shard, displaced_rows, pruned_rows })
}

/// Appends one dealt row to a shard file: its row number, then its values
/// ([`TempDir::read_shard`] reads them back).
fn deal(out: &mut impl Write, id: u32, row: &[f32]) -> std::io::Result<()> {
    out.write_all(&id.to_le_bytes())?;
    out.write_all(bytemuck::cast_slice(row))
}

/// A 64-bit mix (SplitMix64's finaliser): a seeded, uniform choice of rows without state.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Fills `order` with (distance, shard) for every centroid, nearest first.
fn nearest_shards(
    kernels: &Kernels,
    row: &[f32],
    centroids: &[f32],
    dim: usize,
    order: &mut Vec<(f32, usize)>,
) {
    order.clear();
    order.extend(centroids.chunks_exact(dim).enumerate().map(|(s, c)| (kernels.l2sq(row, c), s)));
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
}

/// The input read chunk by chunk, each row checked and (cosine) normalised as an index would
/// store it.
struct Stream {
    reader: VecReader,
    metric: Metric,
    kernels: Kernels,
    chunk: usize,
}

impl Stream {
    /// Fills `buf` with the next chunk; returns the row number of its first row, `None` at
    /// the end.
    fn next(&mut self, buf: &mut Vec<f32>) -> Result<Option<usize>, DiskError> {
        let info = self.reader.info();
        let first = info.count - self.reader.remaining();
        if self.reader.read_chunk(self.chunk, buf)? == 0 {
            return Ok(None);
        }
        prepare_rows(buf, info.dim, self.metric, &self.kernels).map_err(|e| e.in_batch_at(first))?;
        Ok(Some(first))
    }
}

/// Checks rows as an index's insert does (finite, in range) and normalises them for cosine.
fn prepare_rows(rows: &mut [f32], dim: usize, metric: Metric, kernels: &Kernels) -> neardb_core::Result<()> {
    check_vectors(rows, dim)?;
    if metric.normalizes() {
        for (i, row) in rows.chunks_exact_mut(dim).enumerate() {
            if !kernels.normalize(row) {
                return Err(Error::ZeroVector { what: ZeroVectorKind::Vector(i) });
            }
        }
    }
    Ok(())
}

/// The build's temporary folder beside the output, removed when the build ends (or fails).
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn create(output: &Path) -> Result<Self, DiskError> {
        let path = output.with_extension("shards-tmp");
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|e| DiskError::io(&path, e))?;
        }
        fs::create_dir_all(&path).map_err(|e| DiskError::io(&path, e))?;
        Ok(Self { path })
    }

    fn shard_rows(&self, s: usize) -> PathBuf {
        self.path.join(format!("shard-{s}.rows"))
    }

    fn shard_graph(&self, s: usize) -> PathBuf {
        self.path.join(format!("shard-{s}.graph"))
    }

    /// A shard's row numbers and rows, as dealt.
    fn read_shard(&self, s: usize, size: usize, dim: usize) -> Result<(Vec<u32>, Vec<f32>), DiskError> {
        let path = self.shard_rows(s);
        let io = |e| DiskError::io(&path, e);
        let mut reader = BufReader::with_capacity(1 << 20, File::open(&path).map_err(io)?);
        let mut ids = Vec::with_capacity(size);
        let mut data = vec![0.0f32; size * dim];
        let mut id = [0u8; 4];
        for row in data.chunks_exact_mut(dim) {
            reader.read_exact(&mut id).map_err(io)?;
            ids.push(u32::from_le_bytes(id));
            reader.read_exact(bytemuck::cast_slice_mut(row)).map_err(io)?;
        }
        Ok((ids, data))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a folder left behind is removed by the next build of the same output.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// One shard's spilled graph, read record by record in row order.
struct ShardGraph {
    reader: BufReader<File>,
    path: PathBuf,
    rows: usize,
    links: Vec<u32>,
}

impl ShardGraph {
    fn open(path: &Path, rows: usize) -> Result<Self, DiskError> {
        let file = File::open(path).map_err(|e| DiskError::io(path, e))?;
        Ok(Self {
            reader: BufReader::with_capacity(SHARD_BUFFER, file),
            path: path.into(),
            rows,
            links: Vec::new(),
        })
    }

    /// Reads the next record into `links`; returns its row, `None` at the end.
    fn advance(&mut self) -> Result<Option<u32>, DiskError> {
        let mut word = [0u8; 4];
        match self.reader.read_exact(&mut word) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(DiskError::io(&self.path, e)),
        }
        let row = u32::from_le_bytes(word);
        self.reader.read_exact(&mut word).map_err(|e| DiskError::io(&self.path, e))?;
        let degree = u32::from_le_bytes(word) as usize;
        if degree >= self.rows {
            return Err(DiskError::Build { reason: "a shard graph record is longer than the input" });
        }
        self.links.resize(degree, 0);
        self.reader
            .read_exact(bytemuck::cast_slice_mut(&mut self.links))
            .map_err(|e| DiskError::io(&self.path, e))?;
        if row as usize >= self.rows || self.links.iter().any(|&l| l as usize >= self.rows) {
            return Err(DiskError::Build { reason: "a shard graph names a row past the input" });
        }
        Ok(Some(row))
    }
}

/// The merged graph on disk and the input file, as the writer reads them.
struct MergedGraph {
    rows: VecRows,
    graph: File,
    graph_path: PathBuf,
    count: usize,
    dim: usize,
    r: usize,
    metric: Metric,
    params: VamanaParams,
    medoid: u32,
    kernels: Kernels,
    raw: RefCell<Vec<u8>>,
}

impl NodeSource for MergedGraph {
    fn count(&self) -> usize {
        self.count
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn metric(&self) -> Metric {
        self.metric
    }
    fn params(&self) -> VamanaParams {
        self.params
    }
    fn medoid(&self) -> u32 {
        self.medoid
    }
    fn stores_f16(&self) -> bool {
        false
    }
    fn vector(&self, slot: u32, out: &mut Vec<f32>) -> Result<(), DiskError> {
        out.clear();
        self.rows.read_rows(slot as usize, 1, out, &mut self.raw.borrow_mut())?;
        prepare_rows(out, self.dim, self.metric, &self.kernels).map_err(|e| e.in_batch_at(slot as usize))?;
        Ok(())
    }
    fn neighbors(&self, slot: u32, out: &mut Vec<u32>) -> Result<(), DiskError> {
        let stride = (self.r + 1) * 4;
        let mut raw = self.raw.borrow_mut();
        raw.resize(stride, 0);
        self.graph
            .read_exact_at(&mut raw, slot as u64 * stride as u64)
            .map_err(|e| DiskError::io(&self.graph_path, e))?;
        let degree = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
        if degree > self.r {
            return Err(DiskError::Build { reason: "a merged list is longer than R" });
        }
        out.clear();
        out.extend(
            raw[4..4 + 4 * degree].chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        Ok(())
    }
}
