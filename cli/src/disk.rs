//! The SSD index in the CLI: `build --index disk`, and `search`, `bench`, `info` and `peer
//! search` on files in the SSD layout (recognised by their magic bytes), with the read
//! statistics each search returns.

use std::path::Path;
use std::time::Instant;

use clap::{Args, ValueEnum};
use neardb::disk::{read_header, DiskIndex, DiskOpenOptions, DiskSearchParams, DiskStats, ReaderKind};
use neardb::io::{read_f32_vectors, read_ivecs, write_ivecs};
use neardb::{IndexSpec, Metric, Neighbor};

use crate::commands::human_bytes;
use crate::measure::{recall, time_batch_by, time_single_by, Passes};
use crate::CliResult;

/// How an SSD index reads its nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Reader {
    /// io_uring where the kernel allows it, else pread.
    #[default]
    Auto,
    /// pread, one request after another.
    Pread,
    /// io_uring: one submission per round of reads.
    Uring,
    /// A memory map (page cache; for files that fit in memory).
    Mmap,
}

impl From<Reader> for ReaderKind {
    fn from(r: Reader) -> Self {
        match r {
            Reader::Auto => ReaderKind::Auto,
            Reader::Pread => ReaderKind::Pread,
            Reader::Uring => ReaderKind::Uring,
            Reader::Mmap => ReaderKind::Mmap,
        }
    }
}

/// Options of searches over an SSD index (ignored by other kinds).
#[derive(Args, Clone, Debug)]
pub struct DiskOptions {
    /// SSD index: nodes read per round, in one batch (beam width W).
    #[arg(long, default_value_t = 4)]
    pub beam: usize,
    /// SSD index: memory for cached nodes (those a warm-up of sample searches reads most, then the medoid's neighbourhood), in MB.
    #[arg(long = "cache-mb", default_value_t = 0.0)]
    pub cache_mb: f64,
    /// SSD index: how nodes are read.
    #[arg(long, value_enum, default_value_t = Reader::Auto)]
    pub reader: Reader,
    /// SSD index: read through the page cache instead of O_DIRECT.
    #[arg(long)]
    pub buffered: bool,
    /// SSD index: use only the nodes asked for, not the others their sectors bring (DiskANN's
    /// walk, to measure what using whole sectors saves).
    #[arg(long)]
    pub plain_walk: bool,
    /// SSD index: start every walk at the medoid alone, not also at the nodes nearest the
    /// query among a sample scored by code (DiskANN's start, to measure what the sample saves).
    #[arg(long)]
    pub medoid_start: bool,
}

impl DiskOptions {
    fn open(&self, path: &Path) -> CliResult<DiskIndex> {
        if !(self.cache_mb.is_finite() && self.cache_mb >= 0.0) {
            return Err("--cache-mb must be a number of megabytes, at least 0".into());
        }
        let header = read_header(path)?;
        let cache_nodes = DiskIndex::cache_nodes_for(&header, (self.cache_mb * 1e6) as u64);
        self.open_with_nodes(path, cache_nodes)
    }

    fn open_with_nodes(&self, path: &Path, cache_nodes: u64) -> CliResult<DiskIndex> {
        let opts = DiskOpenOptions {
            reader: self.reader.into(),
            direct: !self.buffered,
            cache_nodes,
            sector_neighbors: !self.plain_walk,
            sampled_entries: !self.medoid_start,
        };
        Ok(DiskIndex::open(path, opts)?)
    }
}

/// Builds an SSD index into `output` (within `spec.build_memory` when set); returns wall and
/// CPU seconds (reading the base included) and the file's bytes.
pub fn build(spec: &IndexSpec, metric: Metric, base: &Path, output: &Path) -> CliResult<(f64, f64, u64)> {
    spec.check()?;
    let c0 = crate::measure::cpu_seconds();
    let t0 = Instant::now();
    let report = spec.build_disk_from_file(metric, base, output)?;
    if report.shards > 1 {
        eprintln!(
            "built in {} shards of at most {} vectors within {}; {} vectors found their nearest shard full",
            report.shards,
            report.largest_shard,
            crate::commands::human_bytes(spec.build_memory),
            report.displaced_rows
        );
    }
    Ok((t0.elapsed().as_secs_f64(), crate::measure::cpu_seconds() - c0, report.write.bytes))
}

/// Read statistics over a set of queries: mean and percentiles of reads, and means of the rest.
pub struct ReadSummary {
    pub reads_mean: f64,
    pub reads_p50: u64,
    pub reads_p99: u64,
    pub cache_hits_mean: f64,
    pub rounds_mean: f64,
    pub pq_distances_mean: f64,
    pub exact_distances_mean: f64,
    /// The plans the searches took, with how many took each (`walk` when unfiltered).
    pub plans: String,
}

fn summarize(stats: &[DiskStats]) -> ReadSummary {
    let n = stats.len().max(1) as f64;
    let mean = |f: fn(&DiskStats) -> u64| stats.iter().map(f).sum::<u64>() as f64 / n;
    let mut reads: Vec<u64> = stats.iter().map(|s| s.reads).collect();
    reads.sort_unstable();
    let pct =
        |p: f64| reads.get(((reads.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(0);
    ReadSummary {
        reads_mean: mean(|s| s.reads),
        reads_p50: pct(0.5),
        reads_p99: pct(0.99),
        cache_hits_mean: mean(|s| s.cache_hits),
        rounds_mean: mean(|s| s.rounds as u64),
        pq_distances_mean: mean(|s| s.pq_distances as u64),
        exact_distances_mean: mean(|s| s.exact_distances as u64),
        plans: {
            let mut counts: Vec<(&str, usize)> = Vec::new();
            for s in stats {
                match counts.iter_mut().find(|(name, _)| *name == s.plan.name()) {
                    Some(c) => c.1 += 1,
                    None => counts.push((s.plan.name(), 1)),
                }
            }
            counts.iter().map(|(name, n)| format!("{name} {n}")).collect::<Vec<_>>().join(", ")
        },
    }
}

/// Each query's statistics, from one untimed pass.
fn stats_pass(
    index: &Filtered<'_>,
    queries: &[f32],
    k: usize,
    p: DiskSearchParams,
) -> CliResult<Vec<DiskStats>> {
    let dim = index.header().dim as usize;
    let mut out = Vec::new();
    for q in queries.chunks_exact(dim) {
        out.push(index.search(q, k, p)?.1);
    }
    Ok(out)
}

fn single(
    index: &Filtered<'_>,
    queries: &[f32],
    k: usize,
    p: DiskSearchParams,
    t: (f64, usize),
) -> CliResult<Passes> {
    let dim = index.header().dim as usize;
    time_single_by(dim, queries, k, t.0, t.1, |q, out: &mut Vec<Neighbor>| -> CliResult {
        *out = index.search(q, k, p)?.0;
        Ok(())
    })
}

fn batch(
    index: &Filtered<'_>,
    queries: &[f32],
    k: usize,
    p: DiskSearchParams,
    t: (f64, usize),
) -> CliResult<Passes> {
    use rayon::prelude::*;
    let dim = index.header().dim as usize;
    time_batch_by(queries.len() / dim, k, t.0, t.1, || -> CliResult<Vec<Vec<Neighbor>>> {
        let res: Result<Vec<Vec<Neighbor>>, _> =
            queries.par_chunks(dim).map(|q| index.search(q, k, p).map(|(hits, _)| hits)).collect();
        Ok(res?)
    })
}

/// An open SSD index with the run's `--allow` filter, if any.
struct Filtered<'a> {
    index: &'a DiskIndex,
    allow: Option<&'a neardb::Bitset>,
}

impl Filtered<'_> {
    fn search(
        &self,
        q: &[f32],
        k: usize,
        p: DiskSearchParams,
    ) -> Result<(Vec<Neighbor>, DiskStats), neardb::disk::DiskError> {
        self.index.search(q, k, p, self.allow.map(|b| b as &dyn neardb::Filter))
    }
    fn header(&self) -> &neardb::disk::Header {
        self.index.header()
    }
}

/// Reads an `--allow` file ([`crate::commands::read_mask`]) for an SSD index: its rows are the
/// rows of the vectors it was built from.
fn read_allow(allow: Option<&Path>, index: &DiskIndex) -> CliResult<Option<neardb::Bitset>> {
    let Some(path) = allow else { return Ok(None) };
    let (mask, rows) = crate::commands::read_mask(path, index.header().count)?;
    Ok(Some(neardb::Bitset::from_fn(rows, |row| mask[row as usize] != 0)))
}

/// `--filter-strategy` for an SSD index, which plans a scan or a walk: asking it for the
/// two-hop walk is an error here rather than a quiet walk.
fn disk_strategy(strategy: crate::Strategy) -> CliResult<neardb::FilterStrategy> {
    match strategy {
        crate::Strategy::TwoHop => {
            Err("--filter-strategy two-hop: the SSD index plans a scan or a walk (auto, scan, walk)".into())
        }
        s => Ok(s.into()),
    }
}

fn check_queries(index: &DiskIndex, qdim: usize) -> CliResult {
    let dim = index.header().dim as usize;
    if qdim != dim {
        return Err(format!("queries have {qdim} dimensions, the index has {dim}").into());
    }
    Ok(())
}

/// `neardb search` on an SSD index.
pub fn search(a: &crate::SearchArgs) -> CliResult {
    let index = a.disk.open(&a.index)?;
    let allow = read_allow(a.allow.as_deref(), &index)?;
    let (queries, qdim) = read_f32_vectors(&a.queries)?;
    check_queries(&index, qdim)?;
    let p = DiskSearchParams {
        l: if a.ef == 0 { DiskSearchParams::default().l } else { a.ef },
        beam: a.disk.beam,
        plan: None,
    }
    .with_strategy(disk_strategy(a.filter_strategy)?);
    let target = Filtered { index: &index, allow: allow.as_ref() };
    let dim = qdim;
    let t0 = Instant::now();
    let mut results = Vec::with_capacity(queries.len() / dim);
    let mut stats = Vec::with_capacity(queries.len() / dim);
    for q in queries.chunks_exact(dim) {
        let (hits, s) = target.search(q, a.k, p)?;
        results.push(hits);
        stats.push(s);
    }
    let secs = t0.elapsed().as_secs_f64();
    let sum = summarize(&stats);
    let (reader, direct) = index.reader();
    let note = format!(
        "{} queries in {secs:.3} s; {:.1} reads/query (p99 {}), {:.1} cache hits/query; reader {reader}{}",
        results.len(),
        sum.reads_mean,
        sum.reads_p99,
        sum.cache_hits_mean,
        if direct { " (O_DIRECT)" } else { "" }
    );
    if let Some(path) = &a.output {
        crate::commands::write_results(path, &results, a.k.max(1))?;
        eprintln!("{note}; wrote {}", path.display());
        return Ok(());
    }
    for (i, (hits, s)) in results.iter().zip(&stats).enumerate() {
        if a.json {
            let ids: Vec<u32> = hits.iter().map(|h| h.id).collect();
            let d: Vec<f32> = hits.iter().map(|h| h.distance).collect();
            println!(
                "{}",
                serde_json::json!({"query": i, "ids": ids, "distances": d, "reads": s.reads, "cache_hits": s.cache_hits, "rounds": s.rounds})
            );
        } else {
            for (r, h) in hits.iter().enumerate() {
                println!("{i:>6}  {r:>4}  {:>10}  {:>12.6}", h.id, h.distance);
            }
        }
    }
    eprintln!("{note}");
    Ok(())
}

/// `neardb bench` on an SSD index: sweeps L; recall, QPS, latency and reads per query.
pub fn bench(a: &crate::BenchArgs) -> CliResult {
    let index = a.disk.open(&a.index)?;
    let allow = read_allow(a.allow.as_deref(), &index)?;
    let strategy = disk_strategy(a.filter_strategy)?;
    let (queries, qdim) = read_f32_vectors(&a.queries)?;
    check_queries(&index, qdim)?;
    let (truth, tdim) = read_ivecs(&a.truth)?;
    let nq = queries.len() / qdim;
    if truth.len() / tdim.max(1) < nq || tdim < a.k {
        return Err(format!("ground truth needs {nq} rows of at least {} columns", a.k).into());
    }
    let h = index.header();
    let (reader, direct) = index.reader();
    if !a.json {
        println!(
            "disk index, {} vectors × {} ({:?}), R = {}, {} PQ bytes, {} nodes per {} KiB read; reader {reader}{}; beam {}; {} nodes cached ({}); memory {}",
            h.count,
            h.dim,
            h.form,
            h.max_degree,
            h.pq_m,
            h.nodes_per_block().max(1),
            h.read_bytes() / 1024,
            if direct { " (O_DIRECT)" } else { " (page cache)" },
            a.disk.beam,
            index.cached_nodes(),
            human_bytes(index.cached_nodes() as u64 * h.node_bytes()),
            human_bytes(index.memory_bytes()),
        );
        println!(
            "{:>6}  {:>8}  {:>9}  {:>10}  {:>9}  {:>9}  {:>9}  {:>8}  {:>8}  {:>7}  plans",
            "L", "recall", "qps(1t)", "qps(batch)", "mean µs", "p99 µs", "reads/q", "p50", "p99", "hops"
        );
        if let Some(allow) = &allow {
            println!("filter: {} of {} rows allowed", allow.count(), h.count);
        }
    }
    let ls: Vec<usize> =
        if a.param.is_empty() { vec![DiskSearchParams::default().l] } else { a.param.clone() };
    for l in ls {
        let p = DiskSearchParams { l, beam: a.disk.beam, plan: None }.with_strategy(strategy);
        let timing = (a.min_time, a.max_repeat);
        let target = Filtered { index: &index, allow: allow.as_ref() };
        let one = single(&target, &queries, a.k, p, timing)?;
        let many = batch(&target, &queries, a.k, p, timing)?;
        let stats = summarize(&stats_pass(&target, &queries, a.k, p)?);
        let r = recall(&one.ids, a.k, &truth, tdim);
        if a.json {
            println!(
                "{}",
                serde_json::json!({
                    "param": l, "recall": r, "qps": one.qps(nq), "qps_batch": many.qps(nq),
                    "mean_us": one.mean_us(), "p50_us": one.percentile_us(50.0), "p99_us": one.percentile_us(99.0),
                    "reads_mean": stats.reads_mean, "reads_p50": stats.reads_p50, "reads_p99": stats.reads_p99,
                    "cache_hits_mean": stats.cache_hits_mean, "hops_mean": stats.rounds_mean,
                    "pq_distances_mean": stats.pq_distances_mean, "exact_distances_mean": stats.exact_distances_mean,
                    "reader": reader, "direct": direct, "plans": stats.plans,
                })
            );
        } else {
            println!(
                "{l:>6}  {r:>8.4}  {:>9.1}  {:>10.1}  {:>9.1}  {:>9.1}  {:>9.2}  {:>8}  {:>8}  {:>7.1}  {}",
                one.qps(nq),
                many.qps(nq),
                one.mean_us(),
                one.percentile_us(99.0),
                stats.reads_mean,
                stats.reads_p50,
                stats.reads_p99,
                stats.rounds_mean,
                stats.plans
            );
        }
    }
    Ok(())
}

/// `neardb info` on an SSD index.
/// `neardb relayout`: the options of a re-pack.
#[derive(Args, Debug)]
pub struct RelayoutArgs {
    /// The SSD index to read.
    pub index: std::path::PathBuf,
    /// Where to write the re-packed index (may be the input: replaced once complete).
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Sectors per block, the unit of a read (1–16; 0: by node size).
    #[arg(long = "block-sectors", default_value_t = 0)]
    pub block_sectors: u32,
    /// PQ bytes per node (0: as the input has).
    #[arg(long = "pq-bytes", default_value_t = 0)]
    pub pq_bytes: usize,
    /// Seed of the PQ training sample.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Re-packs an SSD index with the same graph, vectors and rows.
pub fn relayout(a: RelayoutArgs) -> CliResult {
    let h = read_header(&a.index)?;
    let params = neardb::disk::DiskWriteParams {
        pq_bytes: if a.pq_bytes == 0 { h.pq_m as usize } else { a.pq_bytes },
        f16: h.form == neardb::vectors::VectorForm::F16,
        seed: a.seed,
        placement: true,
        block_sectors: (a.block_sectors > 0).then_some(a.block_sectors),
    };
    let start = Instant::now();
    let report = neardb::disk::relayout_disk_index(&a.index, &a.out, params)?;
    println!(
        "re-packed {} nodes into {}: {} per {} KiB block, {} in {:.1} s",
        h.count,
        a.out.display(),
        report.nodes_per_block,
        report.block_sectors * 4,
        human_bytes(report.bytes),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn info(path: &Path, json: bool) -> CliResult {
    let h = read_header(path)?;
    let bytes = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
    let alpha = f32::from_bits(h.build_alpha_bits);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "kind": "disk", "metric": h.metric.name(), "dim": h.dim, "count": h.count, "file_bytes": bytes,
                "vector_form": format!("{:?}", h.form).to_lowercase(), "max_degree": h.max_degree, "medoid": h.medoid,
                "pq_bytes": h.pq_m, "node_bytes": h.node_bytes(), "nodes_per_block": h.nodes_per_block(),
                "block_sectors": h.block_sectors,
                "sectors_per_node": h.sectors_per_node(), "pq_offset": h.pq_offset(), "pq_len": h.pq_len(),
                "build": {"L": h.build_l, "alpha": alpha, "seed": h.build_seed},
            })
        );
        return Ok(());
    }
    println!("file      {} ({})", path.display(), human_bytes(bytes));
    println!("format    NearDB SSD index");
    println!("index     disk (Vamana on the SSD, PQ codes in memory)");
    println!("metric    {}", h.metric);
    println!("vectors   {} × {} dimensions, {:?} in the nodes", h.count, h.dim, h.form);
    println!(
        "graph     R = {}, built with L = {}, alpha = {alpha}, medoid {}",
        h.max_degree, h.build_l, h.medoid
    );
    match h.nodes_per_block() {
        0 => println!("nodes     {} bytes each, {} sectors per node", h.node_bytes(), h.sectors_per_node()),
        per => println!(
            "nodes     {} bytes each, {per} per {} KiB block",
            h.node_bytes(),
            h.block_bytes() / 1024
        ),
    }
    println!(
        "PQ        {} bytes per node, {} in memory at open (offset {})",
        h.pq_m,
        human_bytes(h.pq_len()),
        h.pq_offset()
    );
    Ok(())
}

/// `neardb peer search` on an SSD index: the harness's contract plus `ios_per_query` (4 KiB
/// reads per query from storage: O_DIRECT reads, so the page cache is excluded).
#[allow(clippy::too_many_arguments)]
pub fn peer_search(
    index_path: &Path,
    queries_path: &Path,
    k: usize,
    param: &str,
    single_mode: bool,
    timing: (f64, usize),
    out: &Path,
    opts: &[String],
) -> CliResult {
    let mut disk = DiskOptions {
        beam: DiskSearchParams::default().beam,
        cache_mb: 0.0,
        reader: Reader::Auto,
        buffered: false,
        plain_walk: false,
        medoid_start: false,
    };
    let mut cache_nodes = None;
    for kv in opts {
        let (key, value) = kv.split_once('=').ok_or_else(|| format!("--opt {kv:?} is not KEY=VALUE"))?;
        let number = || -> CliResult<u64> {
            value.parse().map_err(|_| format!("--opt {key}={value}: expected a whole number").into())
        };
        match key {
            "W" | "beam" => disk.beam = number()? as usize,
            "cache_nodes" | "num_nodes_to_cache" => cache_nodes = Some(number()?),
            "cache_mb" => {
                disk.cache_mb = value.parse().map_err(|_| format!("--opt {kv}: expected megabytes"))?
            }
            "plain_walk" => disk.plain_walk = value == "1" || value == "true",
            "medoid_start" => disk.medoid_start = value == "1" || value == "true",
            "reader" => {
                disk.reader = Reader::from_str(value, true)
                    .map_err(|_| format!("--opt {kv}: auto, pread, uring or mmap"))?
            }
            // Build options the harness repeats at search time change nothing here.
            "index" | "R" | "L" | "alpha" | "pq_bytes" | "seed" | "quantize" | "block_sectors" => {}
            _ => return Err(format!("unknown search option {key:?} for an SSD index").into()),
        }
    }
    let index = match cache_nodes {
        Some(n) => disk.open_with_nodes(index_path, n)?,
        None => disk.open(index_path)?,
    };
    let (queries, qdim) = read_f32_vectors(queries_path)?;
    check_queries(&index, qdim)?;
    let l = match param {
        "-" | "" | "None" | "null" => DiskSearchParams::default().l,
        p => p.parse().map_err(|_| format!("--param {p:?}: expected the search list size L"))?,
    };
    let p = DiskSearchParams { l, beam: disk.beam, plan: None };
    let target = Filtered { index: &index, allow: None };
    let passes = if single_mode {
        single(&target, &queries, k, p, timing)?
    } else {
        batch(&target, &queries, k, p, timing)?
    };
    write_ivecs(out, &passes.ids, k)?;
    let stats = summarize(&stats_pass(&target, &queries, k, p)?);
    let (reader, direct) = index.reader();
    let mut json = serde_json::json!({
        "search_s": passes.wall, "search_cpu_s": passes.cpu,
        "ios_per_query": stats.reads_mean,
        "read_bytes_per_query": stats.reads_mean * neardb::disk::SECTOR as f64,
        "io_note": format!("reader {reader}{}; {} nodes cached", if direct { ", O_DIRECT" } else { ", page cache" }, index.cached_nodes()),
        "memory_bytes": index.memory_bytes(),
    });
    if single_mode {
        json["latency_us"] = serde_json::json!({
            "mean": passes.mean_us(), "p50": passes.percentile_us(50.0), "p99": passes.percentile_us(99.0),
        });
    }
    println!("{json}");
    Ok(())
}
