//! Writing the SSD index: a built Vamana graph's nodes packed into blocks of sectors, and the PQ codes
//! trained on a sample of its vectors. Written to a temporary file, synced and renamed, so a
//! crash never leaves a half-written index under the name.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use neardb_core::quant::ProductQuantizer;
use neardb_core::rng::Rng;
use neardb_core::simd::half::to_f16;
use neardb_core::vectors::VectorForm;
use neardb_core::{Kernels, Metric, VamanaIndex, VamanaParams, VectorSearch};

use super::layout::Header;
use super::DiskError;

/// Vectors the PQ codebooks learn from at most (a seeded sample).
pub(crate) const PQ_TRAINING_ROWS: usize = 100_000;
/// Lloyd iterations of each sub-quantizer.
const PQ_ITERATIONS: usize = 15;

/// How to write an SSD index.
#[derive(Clone, Copy, Debug)]
pub struct DiskWriteParams {
    /// PQ bytes per node (must divide the dimension).
    pub pq_bytes: usize,
    /// Store the vectors in binary16 (half the node bytes) instead of `f32`.
    pub f16: bool,
    /// Seed of the PQ training sample and k-means.
    pub seed: u64,
    /// Graph-aware placement of the nodes in blocks (else slot order).
    pub placement: bool,
    /// Sectors per block (one read); `None` picks by node size
    /// ([`Header::default_block_sectors`]).
    pub block_sectors: Option<u32>,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct DiskWriteReport {
    /// Bytes of the file.
    pub bytes: u64,
    /// Nodes per block (0: a node takes whole sectors).
    pub nodes_per_block: u64,
    /// Sectors per block.
    pub block_sectors: u32,
    /// The graph slot at each node position of the file (positions are the file's node ids).
    pub order: Vec<u32>,
}

/// What the writer lays out: a built graph and its vectors, read one node at a time. A
/// built [`VamanaIndex`] in memory is one; a budgeted build's merged shard graph and input
/// file on disk are another (`sharded`).
pub(crate) trait NodeSource {
    /// Nodes (slots `0..count`).
    fn count(&self) -> usize;
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// The metric the graph was built for.
    fn metric(&self) -> Metric;
    /// The build's parameters (recorded in the header).
    fn params(&self) -> VamanaParams;
    /// The entry slot.
    fn medoid(&self) -> u32;
    /// Whether the source's vectors are already binary16.
    fn stores_f16(&self) -> bool;
    /// Replaces `out` with `slot`'s vector as the graph saw it (normalised for cosine).
    fn vector(&self, slot: u32, out: &mut Vec<f32>) -> Result<(), DiskError>;
    /// Replaces `out` with `slot`'s neighbours.
    fn neighbors(&self, slot: u32, out: &mut Vec<u32>) -> Result<(), DiskError>;
}

struct BuiltGraph<'a> {
    index: &'a VamanaIndex,
    medoid: u32,
}

impl NodeSource for BuiltGraph<'_> {
    fn count(&self) -> usize {
        self.index.slot_count()
    }
    fn dim(&self) -> usize {
        self.index.dim()
    }
    fn metric(&self) -> Metric {
        self.index.metric()
    }
    fn params(&self) -> VamanaParams {
        self.index.params()
    }
    fn medoid(&self) -> u32 {
        self.medoid
    }
    fn stores_f16(&self) -> bool {
        self.index.stores_f16()
    }
    fn vector(&self, slot: u32, out: &mut Vec<f32>) -> Result<(), DiskError> {
        *out = self.index.get_decoded(slot)?;
        Ok(())
    }
    fn neighbors(&self, slot: u32, out: &mut Vec<u32>) -> Result<(), DiskError> {
        *out = self.index.neighbors(slot);
        Ok(())
    }
}

/// Graph-aware placement (after Starling, SIGMOD 2024): the order of the slots in the file,
/// chosen so a block's `per` nodes are neighbours. Seeds are taken breadth first from the
/// medoid; each fills its block with its own neighbours, then theirs, then — when that
/// neighbourhood is all placed — the next seeds. A read then brings nodes a search would
/// otherwise read next.
fn place(source: &dyn NodeSource, medoid: u32, per: usize) -> Result<Vec<u32>, DiskError> {
    let n = source.count();
    let mut links = Vec::new();
    let per = per.max(1);
    let mut bfs = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    seen[medoid as usize] = true;
    bfs.push(medoid);
    let mut head = 0;
    while bfs.len() < n {
        if head == bfs.len() {
            // Unreachable from the medoid (none in a built graph; kept for safety).
            if let Some(next) = seen.iter().position(|s| !s) {
                seen[next] = true;
                bfs.push(next as u32);
            }
            continue;
        }
        source.neighbors(bfs[head], &mut links)?;
        for &l in &links {
            if !std::mem::replace(&mut seen[l as usize], true) {
                bfs.push(l);
            }
        }
        head += 1;
    }
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut seeds = bfs.iter();
    while order.len() < n {
        let block_end = (order.len() + per).min(n);
        let mut frontier: Vec<u32> = Vec::new();
        let mut at = 0;
        while order.len() < block_end {
            let next = if at < frontier.len() {
                at += 1;
                frontier[at - 1]
            } else {
                match seeds.next() {
                    Some(&s) => s,
                    None => break,
                }
            };
            if std::mem::replace(&mut placed[next as usize], true) {
                continue;
            }
            order.push(next);
            if frontier.len() < 4 * per {
                source.neighbors(next, &mut links)?;
                frontier.extend_from_slice(&links);
            }
        }
    }
    Ok(order)
}

/// Writes `index` (a built Vamana graph with no deleted slots) as an SSD index at `path`.
/// `rows[i]` is the caller's id of slot `i` (slots themselves when `None`).
pub fn write_disk_index(
    path: &Path,
    index: &VamanaIndex,
    rows: Option<&[u32]>,
    params: DiskWriteParams,
) -> Result<DiskWriteReport, DiskError> {
    let count = index.slot_count();
    if (0..count as u32).any(|i| index.is_deleted(i)) {
        return Err(DiskError::Build {
            reason: "the graph has deleted slots: consolidate and rebuild first",
        });
    }
    let medoid = index.medoid().ok_or(DiskError::Build { reason: "the graph has no medoid" })?;
    write_nodes(path, &BuiltGraph { index, medoid }, rows, params, PQ_TRAINING_ROWS)
}

/// Writes the graph and vectors of `source` as an SSD index at `path`, the PQ codebooks
/// trained on at most `pq_sample` of its vectors.
pub(crate) fn write_nodes(
    path: &Path,
    source: &dyn NodeSource,
    rows: Option<&[u32]>,
    params: DiskWriteParams,
    pq_sample: usize,
) -> Result<DiskWriteReport, DiskError> {
    let count = source.count();
    let dim = source.dim();
    if count < 256 {
        return Err(DiskError::Build {
            reason: "the SSD index needs at least 256 vectors to train its PQ codes",
        });
    }
    if rows.is_some_and(|r| r.len() != count) {
        return Err(DiskError::Build { reason: "one row id per slot is needed" });
    }
    if params.pq_bytes == 0 || !dim.is_multiple_of(params.pq_bytes) {
        return Err(DiskError::Build { reason: "PQ bytes must divide the dimension" });
    }
    let medoid = source.medoid();
    let mut v = Vec::with_capacity(dim);
    let vp = source.params();
    let form = if params.f16 || source.stores_f16() { VectorForm::F16 } else { VectorForm::F32 };
    // One pass over the rows: are they all unit vectors, and do they fit binary16 if asked?
    let mut unit_vectors = true;
    for i in 0..count as u32 {
        source.vector(i, &mut v)?;
        let norm2: f32 = v.iter().map(|x| x * x).sum();
        unit_vectors &= (norm2 - 1.0).abs() <= 2e-3;
        if form == VectorForm::F16 {
            if let Some(at) = v.iter().position(|x| x.abs() > neardb_core::simd::half::MAX) {
                return Err(DiskError::Core(neardb_core::Error::OutOfHalfRange {
                    vector: i as usize,
                    component: at,
                    value: v[at],
                }));
            }
        }
    }
    let mut header = Header {
        metric: source.metric(),
        dim: dim as u32,
        form,
        count: count as u64,
        max_degree: vp.r as u32,
        medoid: 0,
        pq_m: params.pq_bytes as u32,
        build_l: vp.l as u32,
        build_alpha_bits: vp.alpha.to_bits(),
        build_seed: vp.seed,
        // Set once the codes and rows are written.
        pq_crc: 0,
        rows_crc: 0,
        unit_vectors,
        block_sectors: 1,
    };
    header.block_sectors = params.block_sectors.unwrap_or(Header::default_block_sectors(header.node_bytes()));
    if let Some(reason) = header.block_error() {
        return Err(DiskError::Build { reason });
    }

    // PQ codebooks from a seeded sample, then every node's code.
    let mut rng = Rng::new(params.seed);
    let mut shuffled: Vec<u32> = (0..count as u32).collect();
    let take = count.min(pq_sample.max(256));
    for i in 0..take {
        let j = i + rng.below((count - i) as u64) as usize;
        shuffled.swap(i, j);
    }
    let mut sample = Vec::with_capacity(take * dim);
    for &i in &shuffled[..take] {
        source.vector(i, &mut v)?;
        sample.extend_from_slice(&v);
    }
    drop(shuffled);
    // Codes are taken around the sample's mean, so the codebooks spend their precision on
    // where the vectors differ, not on where they all sit.
    let mut center = vec![0.0f64; dim];
    for row in sample.chunks_exact(dim) {
        center.iter_mut().zip(row).for_each(|(c, &x)| *c += x as f64);
    }
    let center: Vec<f32> = center.iter().map(|&c| (c / take as f64) as f32).collect();
    let shift = |v: &mut [f32]| v.iter_mut().zip(&center).for_each(|(x, c)| *x -= c);
    sample.chunks_exact_mut(dim).for_each(shift);
    let kernels = Kernels::best();
    let mut pq = ProductQuantizer::new(dim, params.pq_bytes, 8)?;
    pq.train(kernels, &sample, params.seed, PQ_ITERATIONS)?;
    drop(sample);
    let m = pq.code_len();
    // Node positions in the file: graph-aware placement where a block holds several nodes.
    let node_bytes = header.node_bytes() as usize;
    let per = header.nodes_per_block() as usize;
    let order =
        if per > 1 && params.placement { place(source, medoid, per)? } else { (0..count as u32).collect() };
    let mut position = vec![0u32; count];
    for (p, &slot) in order.iter().enumerate() {
        position[slot as usize] = p as u32;
    }
    header.medoid = position[medoid as usize] as u64;
    let tmp = path.with_extension("tmp-write");
    let io = |e| DiskError::io(path, e);
    let file = File::create(&tmp).map_err(io)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&header.encode()).map_err(io)?;
    let region = header.read_bytes();
    let per = per.max(1);
    let mut block = vec![0u8; region];
    let mut node = Vec::with_capacity(node_bytes);
    let mut links = Vec::new();
    // Codes in file order, made as each node's vector passes by (the header, which holds
    // their checksum, is written again at the end).
    let mut codes = vec![0u8; count * m];
    // Each node's row, in file order, little-endian.
    let mut row_bytes = Vec::with_capacity(count * 4);
    let mut shifted = vec![0.0f32; dim];
    for first in (0..count).step_by(per) {
        block.iter_mut().for_each(|b| *b = 0);
        for (k, p) in (first..(first + per).min(count)).enumerate() {
            let id = order[p] as usize;
            node.clear();
            source.vector(id as u32, &mut v)?;
            shifted.copy_from_slice(&v);
            shift(&mut shifted);
            pq.encode(&shifted, &mut codes[p * m..(p + 1) * m])?;
            match header.form {
                VectorForm::F16 => v.iter().for_each(|&x| node.extend_from_slice(&to_f16(x).to_le_bytes())),
                _ => v.iter().for_each(|&x| node.extend_from_slice(&x.to_le_bytes())),
            }
            let row = rows.map_or(id as u32, |r| r[id]);
            node.extend_from_slice(&row.to_le_bytes());
            row_bytes.extend_from_slice(&row.to_le_bytes());
            source.neighbors(id as u32, &mut links)?;
            node.extend_from_slice(&(links.len() as u32).to_le_bytes());
            for &l in &links {
                node.extend_from_slice(&position[l as usize].to_le_bytes());
            }
            node.resize(node_bytes, 0);
            block[k * node_bytes..(k + 1) * node_bytes].copy_from_slice(&node);
        }
        w.write_all(&block).map_err(io)?;
    }
    let center_bytes: Vec<u8> = center.iter().flat_map(|x| x.to_le_bytes()).collect();
    let codebooks: Vec<u8> = pq.codebooks().iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&center_bytes);
    crc.update(&codebooks);
    crc.update(&codes);
    header.pq_crc = crc.finalize();
    header.rows_crc = crc32fast::hash(&row_bytes);
    w.write_all(&center_bytes).map_err(io)?;
    w.write_all(&codebooks).map_err(io)?;
    w.write_all(&codes).map_err(io)?;
    w.write_all(&row_bytes).map_err(io)?;
    let file = w.into_inner().map_err(|e| DiskError::io(path, e.into_error()))?;
    std::os::unix::fs::FileExt::write_all_at(&file, &header.encode(), 0).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(DiskWriteReport {
        bytes: header.file_len(),
        nodes_per_block: header.nodes_per_block(),
        block_sectors: header.block_sectors,
        order,
    })
}
