//! The SSD-index target: small SSD index files written by the library's own writer (f32 and
//! binary16 nodes, L2 and cosine, rows in order and scattered), a mutator that knows the header
//! sector, the node layout and the three checksummed regions (header, PQ, rows), and an oracle
//! that opens each mutant through the `pread` or io_uring reader, searches it every way a
//! caller can (filters of both kinds, both filtered plans, node caches, odd k, L and beam
//! widths), reads vectors back, and checks every answer against the search contract.

use std::path::{Path, PathBuf};

use neardb::disk::{
    write_disk_index, DiskIndex, DiskOpenOptions, DiskSearchParams, DiskWriteParams, Header, ReaderKind,
    SECTOR,
};
use neardb::{Bitset, Filter, Metric, Plan, Predicate, VamanaIndex, VamanaParams};

use crate::layout::{get, put};
use crate::oracle::{check_hits, Expect, Violation, HUGE_K};
use crate::rng::Rng;

/// One valid SSD index file.
#[derive(Clone, Debug)]
pub struct DiskSeed {
    /// Variant, e.g. `disk-l2-f16`.
    pub name: String,
    /// The file.
    pub bytes: Vec<u8>,
    /// The vectors it was built from (queries come from them).
    pub vectors: Vec<f32>,
    /// Their dimension.
    pub dim: usize,
}

/// The seeds and the directory mutants are written to.
#[derive(Debug)]
pub struct DiskCorpus {
    /// Where the seeds were written and each mutant is written (one reused file).
    pub dir: PathBuf,
    /// The seeds.
    pub seeds: Vec<DiskSeed>,
}

const ROWS: usize = 300;
const DIM: usize = 16;

impl DiskCorpus {
    /// Builds each seed's graph in memory and writes it with the SSD writer into `dir`.
    pub fn create(dir: &Path) -> Result<Self, String> {
        let mut seeds = Vec::new();
        let variants = [
            ("disk-l2-f32", Metric::L2, false, false),
            ("disk-l2-f16-rows", Metric::L2, true, true),
            ("disk-cos-f32-rows", Metric::Cosine, false, true),
            ("disk-ip-f16", Metric::InnerProduct, true, false),
        ];
        for (i, &(name, metric, f16, scattered_rows)) in variants.iter().enumerate() {
            let vectors = crate::seeds::data(50 + i as u64, ROWS, DIM);
            let params = VamanaParams { r: 8, l: 24, alpha: 1.2, seed: 3 };
            let mut index = VamanaIndex::new(DIM, metric, params).map_err(|e| e.to_string())?;
            index.build(&vectors).map_err(|e| e.to_string())?;
            let rows: Vec<u32> = (0..ROWS as u32).rev().map(|r| r * 3 + 11).collect();
            let path = dir.join(format!("{name}.disk"));
            // One file read in two-sector blocks, so mutants reach that layout too.
            let block_sectors = (i == 1).then_some(2);
            let write = DiskWriteParams { pq_bytes: 4, f16, seed: 5, placement: true, block_sectors };
            write_disk_index(&path, &index, scattered_rows.then_some(&rows[..]), write)
                .map_err(|e| format!("{name}: {e}"))?;
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            seeds.push(DiskSeed { name: name.to_string(), bytes, vectors, dim: DIM });
        }
        Ok(Self { dir: dir.to_path_buf(), seeds })
    }

    /// The file each mutant is written to before it is opened.
    pub fn mutant_path(&self) -> PathBuf {
        self.dir.join("mutant.disk")
    }
}

/// A mutated SSD index: its bytes and what was done.
#[derive(Clone, Debug)]
pub struct DiskMutant {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// One line per mutation.
    pub ops: Vec<String>,
}

/// Header fields: (offset, width in bytes, name).
const FIELDS: [(usize, usize, &str); 19] = [
    (8, 4, "version"),
    (12, 4, "metric"),
    (16, 4, "dim"),
    (20, 4, "form"),
    (24, 4, "max_degree"),
    (28, 4, "pq_m"),
    (32, 4, "build_l"),
    (36, 4, "alpha"),
    (40, 4, "pq_crc"),
    (44, 4, "node_bytes"),
    (48, 8, "count"),
    (56, 8, "medoid"),
    (64, 8, "seed"),
    (72, 8, "nodes_per_block"),
    (80, 8, "pq_offset"),
    (88, 8, "pq_len"),
    (96, 4, "unit_vectors"),
    (100, 4, "rows_crc"),
    (104, 4, "block_sectors"),
];

/// Values that sit on the edges of what a field may hold.
fn interesting(rng: &mut Rng, old: u64, width: usize) -> u64 {
    let max = if width == 8 { u64::MAX } else { u32::MAX as u64 };
    match rng.below(9) {
        0 => 0,
        1 => 1,
        2 => max,
        3 => max - 1,
        4 => old.wrapping_add(1) & max,
        5 => old.wrapping_sub(1) & max,
        6 => old.wrapping_mul(2) & max,
        7 => 1 << rng.below(width * 8),
        _ => rng.next_u64() & max,
    }
}

/// Mutates `seed` as `rng` decides, then (often) makes the checksums agree again, so the
/// structure checks behind them are what the mutant meets.
pub fn mutate(seed: &DiskSeed, rng: &mut Rng) -> DiskMutant {
    let mut b = seed.bytes.clone();
    let mut ops = Vec::new();
    let header = Header::decode(&seed.bytes, seed.bytes.len() as u64).ok();
    for _ in 0..rng.range(1, 3) {
        let op = match (rng.below(12), &header) {
            (0..=3, _) => {
                let &(at, width, name) = rng.pick(&FIELDS);
                let v = interesting(rng, get(&b, at, width), width);
                put(&mut b, at, width, v);
                format!("header {name} = {v}")
            }
            (4..=6, Some(h)) => {
                // One field of one node: its degree, a neighbour, its row or a vector value.
                let id = rng.below(h.count as usize) as u64;
                let at = h.locate(id);
                let start = at.offset as usize + at.within;
                let vec_bytes = h.dim as usize * h.value_bytes() as usize;
                let (what, off, width) = match rng.below(4) {
                    0 => ("degree", vec_bytes + 4, 4),
                    1 => ("row", vec_bytes, 4),
                    2 => ("neighbour", vec_bytes + 8 + 4 * rng.below(h.max_degree as usize), 4),
                    _ => (
                        "value",
                        h.value_bytes() as usize * rng.below(h.dim as usize),
                        h.value_bytes() as usize,
                    ),
                };
                let v = if what == "value" {
                    // NaN, infinity or a huge finite value, in the node's own form.
                    let f = *rng.pick(&[f32::NAN, f32::INFINITY, -f32::INFINITY, 3.0e38, 1.0e20]);
                    if width == 2 {
                        u64::from(neardb::simd::half::to_f16(f))
                    } else {
                        u64::from(f.to_bits())
                    }
                } else {
                    interesting(rng, get(&b, start + off, width), width)
                };
                put(&mut b, start + off, width, v);
                format!("node {id} {what} = {v:#x}")
            }
            (7 | 8, _) => crate::vectors::random_bytes(&mut b, rng, 6),
            (9, _) => crate::vectors::truncate(&mut b, rng),
            (10, _) => {
                let n = *rng.pick(&[1usize, 4, SECTOR, 3 * SECTOR]);
                b.extend(std::iter::repeat_n(0u8, n));
                format!("append {n} zero bytes")
            }
            _ => {
                // A sector of nodes copied over another (valid nodes in the wrong place).
                let sectors = b.len() / SECTOR;
                if sectors > 2 {
                    let (from, to) = (rng.range(1, sectors - 1), rng.range(1, sectors - 1));
                    let src = b[from * SECTOR..(from + 1) * SECTOR].to_vec();
                    b[to * SECTOR..(to + 1) * SECTOR].copy_from_slice(&src);
                    format!("sector {from} copied over {to}")
                } else {
                    "nothing (too short to copy a sector)".to_string()
                }
            }
        };
        ops.push(op);
    }
    if rng.chance(2, 3) {
        fix_checksums(&mut b, rng);
        ops.push("checksums fixed".into());
    }
    DiskMutant { bytes: b, ops }
}

/// Recomputes the PQ and row regions' checksums where the header's statement of them lies in
/// the file (each with even odds), then the header's own.
fn fix_checksums(b: &mut [u8], rng: &mut Rng) {
    if b.len() < SECTOR {
        return;
    }
    let pq_offset = get(b, 80, 8);
    let pq_len = get(b, 88, 8);
    let len = b.len() as u64;
    if let Some(pq_end) = pq_offset.checked_add(pq_len).filter(|&e| e <= len) {
        if rng.chance(1, 2) {
            let crc = crc32fast::hash(&b[pq_offset as usize..pq_end as usize]);
            put(b, 40, 4, u64::from(crc));
        }
        if rng.chance(1, 2) {
            let crc = crc32fast::hash(&b[pq_end as usize..]);
            put(b, 100, 4, u64::from(crc));
        }
    }
    let crc = crc32fast::hash(&b[..SECTOR - 4]);
    b[SECTOR - 4..SECTOR].copy_from_slice(&crc.to_le_bytes());
}

/// What an execution of the SSD oracle saw.
#[derive(Debug, Default)]
pub struct DiskOutcome {
    /// `None` if the file opened, else why it was refused.
    pub refused: Option<String>,
    /// Every broken rule.
    pub violations: Vec<Violation>,
    /// The largest k searched for.
    pub max_k: usize,
}

/// Opens the mutant at `path` and, if it opens, searches it with queries drawn from `rows`
/// and at random, reads vectors back, and checks every answer. Does not catch panics.
pub fn exercise(path: &Path, rows: &[f32], dim: usize, rng: &mut Rng) -> DiskOutcome {
    let reader = if rng.chance(1, 2) { ReaderKind::Pread } else { ReaderKind::Auto };
    let opts = DiskOpenOptions {
        reader,
        direct: false,
        cache_nodes: *rng.pick(&[0u64, 0, 5, 40]),
        sector_neighbors: rng.chance(3, 4),
        sampled_entries: rng.chance(1, 2),
    };
    let index = match DiskIndex::open(path, opts) {
        Ok(i) => i,
        Err(e) => return DiskOutcome { refused: Some(e.to_string()), ..Default::default() },
    };
    let mut out = DiskOutcome::default();
    let count = index.header().count;
    let file_dim = index.header().dim as usize;
    for _ in 0..8 {
        let query: Vec<f32> = match rng.below(4) {
            0 => (0..file_dim).map(|_| rng.unit() * 2.0 - 1.0).collect(),
            1 => (0..dim + 1).map(|_| rng.unit()).collect(),
            _ => {
                let r = rng.below((rows.len() / dim).max(1));
                rows.get(r * dim..(r + 1) * dim).unwrap_or(&[]).to_vec()
            }
        };
        let k = *rng.pick(&[1usize, 5, 10, 300, HUGE_K]);
        out.max_k = out.max_k.max(k);
        let params = DiskSearchParams {
            l: *rng.pick(&[1usize, 10, 40, 500]),
            beam: *rng.pick(&[1usize, 4, 16]),
            plan: *rng.pick(&[None, None, Some(Plan::Scan), Some(Plan::FilteredWalk)]),
        };
        let span = rng.range(1, 1200) as u32;
        let bits = Bitset::from_fn(span, |r| r % 3 != 1);
        let every_fourth = Predicate(|r: u32| r.is_multiple_of(4));
        let filter: Option<&dyn Filter> = match rng.below(3) {
            0 => None,
            1 => Some(&bits),
            _ => Some(&every_fourth),
        };
        if let Ok((hits, stats)) = index.search(&query, k, params, filter) {
            let expect = Expect { k, slots: u64::MAX, deleted: &|_| false, ids: None, filter };
            out.violations.extend(check_hits(&hits, &expect));
            if filter.is_none() && stats.plan != Plan::Walk {
                out.violations.push(Violation {
                    cause: "plan-without-filter".into(),
                    detail: format!("{:?} for an unfiltered search", stats.plan),
                });
            }
        }
    }
    // Vectors back, by row and front to back: each the file's dimension, never more rows than
    // nodes.
    for _ in 0..3 {
        let row = rng.next_u32() % (count as u32).saturating_mul(4).max(1);
        if let Ok(Some(v)) = index.vector(row) {
            if v.len() != file_dim {
                out.violations.push(Violation {
                    cause: "vector-of-wrong-length".into(),
                    detail: format!("row {row}: {} values in a {file_dim}-d file", v.len()),
                });
            }
        }
    }
    let mut visited = 0u64;
    let mut wrong_len = false;
    if index
        .for_each_vector(&mut |_, v| {
            visited += 1;
            wrong_len |= v.len() != file_dim;
        })
        .is_ok()
        && (visited != count || wrong_len)
    {
        out.violations.push(Violation {
            cause: "for-each-vector-miscounts".into(),
            detail: format!("{visited} visits of {count} nodes (wrong length: {wrong_len})"),
        });
    }
    out
}
