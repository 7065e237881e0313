//! The user-facing sub-commands.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use neardb::format::FORMAT_VERSION;
use neardb::gen::{DataSpec, Generator};
use neardb::io::{read_f32_vectors, read_ivecs, write_fvecs, write_ivecs};
use neardb::{BuiltIndex, FlatIndex, IndexKind, IndexSpec, Metric, SearchParams, VectorSearch};

use crate::measure::{recall, time_batch, time_single, work_pass, WorkSummary};
use crate::{
    set_threads, BenchArgs, BuildArgs, CliResult, DemoArgs, GenArgs, InfoArgs, SearchArgs, TruthArgs,
};

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Builds what `spec` says over row-major `data`, with a progress bar for the slow kinds.
/// (`IndexSpec::build` checks the spec itself; callers check it before reading the data.)
pub fn build_index(spec: &IndexSpec, metric: Metric, dim: usize, data: &[f32]) -> CliResult<BuiltIndex> {
    let bar = progress((data.len() / dim.max(1)) as u64, "insert");
    let built = spec.build(metric, dim, data, &|done| bar.inc(done));
    bar.finish_and_clear();
    Ok(built?)
}

pub fn build(a: BuildArgs) -> CliResult {
    set_threads(a.threads)?;
    // An impossible combination is refused before a large file is read.
    let spec = a.index.spec();
    spec.check()?;
    if spec.kind == IndexKind::Disk {
        let (build_s, _, bytes) = crate::disk::build(&spec, a.metric, &a.base, &a.output)?;
        println!(
            "built disk index ({}) in {build_s:.3} s; wrote {} ({})",
            a.metric,
            a.output.display(),
            human_bytes(bytes)
        );
        return Ok(());
    }
    let (data, dim) = read_f32_vectors(&a.base)?;
    let n = data.len() / dim;
    let t0 = Instant::now();
    let index = build_index(&spec, a.metric, dim, &data)?;
    let build_s = t0.elapsed().as_secs_f64();
    let bytes = index.save(&a.output)?;
    println!(
        "built {} index: {n} vectors × {dim} ({}) in {build_s:.3} s; wrote {} ({})",
        a.index.kind,
        a.metric,
        a.output.display(),
        human_bytes(bytes)
    );
    Ok(())
}

pub fn search(a: SearchArgs) -> CliResult {
    set_threads(a.threads)?;
    if neardb::disk::is_disk_index(&a.index) {
        return crate::disk::search(&a);
    }
    let index = neardb::open(&a.index)?;
    let (queries, qdim) = read_f32_vectors(&a.queries)?;
    if qdim != index.dim() {
        return Err(format!("queries have {qdim} dimensions, the index has {}", index.dim()).into());
    }
    let params = SearchParams::new()
        .with_ef(a.ef)
        .with_nprobe(a.nprobe)
        .with_rerank_factor(a.rerank)
        .with_filter_strategy(a.filter_strategy.into());
    let allow = a.allow.as_deref().map(|p| read_allow(p, &index)).transpose()?;
    let filter = allow.as_ref().map(|b| b as &dyn neardb::Filter);
    let t0 = Instant::now();
    let mut results = index.search_batch(&queries, a.k, &params, filter)?;
    let secs = t0.elapsed().as_secs_f64();
    // Report the caller's ids when the file has them (an index built with its own ids).
    if index.external_ids().is_some() {
        for h in results.iter_mut().flatten() {
            h.id = index.external_id(h.id);
        }
    }
    if let Some(path) = &a.output {
        write_results(path, &results, crate::measure::result_width(&index, a.k))?;
        eprintln!("{} queries in {secs:.3} s; wrote {}", results.len(), path.display());
        return Ok(());
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if a.json {
        for (i, hits) in results.iter().enumerate() {
            let ids: Vec<u32> = hits.iter().map(|h| h.id).collect();
            let d: Vec<f32> = hits.iter().map(|h| h.distance).collect();
            writeln!(out, "{}", serde_json::json!({"query": i, "ids": ids, "distances": d}))?;
        }
        return Ok(());
    }
    writeln!(out, "{:>6}  {:>4}  {:>10}  {:>12}", "query", "rank", "id", "distance")?;
    for (i, hits) in results.iter().enumerate() {
        for (r, h) in hits.iter().enumerate() {
            writeln!(out, "{i:>6}  {r:>4}  {:>10}  {:>12.6}", h.id, h.distance)?;
        }
    }
    eprintln!("{} queries in {secs:.3} s ({} metric distances)", results.len(), index.metric());
    Ok(())
}

/// Writes result ids as `.ivecs`, `k` columns per query, -1 padding.
pub fn write_results(path: &Path, results: &[Vec<neardb::Neighbor>], k: usize) -> CliResult {
    let mut ids = vec![-1i32; results.len() * k];
    for (row, hits) in ids.chunks_exact_mut(k).zip(results) {
        for (slot, h) in row.iter_mut().zip(hits) {
            // .ivecs holds int32, and -1 is its padding: an id at or beyond 2^31 would be
            // written as a negative number, so it is refused, not mangled.
            *slot = i32::try_from(h.id).map_err(|_| {
                format!("id {} does not fit an .ivecs file (int32): write --json instead", h.id)
            })?;
        }
    }
    write_ivecs(path, &ids, k)?;
    Ok(())
}

/// Exact k-NN of every query, as ids and distances (row-major, -1 / +inf padding).
pub fn exact_truth(
    base: &[f32],
    queries: &[f32],
    dim: usize,
    metric: Metric,
    k: usize,
) -> CliResult<(Vec<i32>, Vec<f32>)> {
    let mut flat = FlatIndex::new(dim, metric)?;
    flat.add(base)?;
    let nq = queries.len() / dim;
    let k = k.min(flat.len());
    let mut ids = vec![-1i32; nq * k];
    let mut dists = vec![f32::INFINITY; nq * k];
    let bar = progress(nq as u64, "truth");
    // Blocks keep the progress bar moving without costing the batch scan its data reuse.
    let block = 256;
    for (b, qs) in queries.chunks(block * dim).enumerate() {
        let res = flat.search_batch(qs, k, None)?;
        for (i, hits) in res.iter().enumerate() {
            let row = b * block + i;
            for (j, h) in hits.iter().enumerate() {
                ids[row * k + j] = h.id as i32;
                dists[row * k + j] = h.distance;
            }
        }
        bar.inc(res.len() as u64);
    }
    bar.finish_and_clear();
    Ok((ids, dists))
}

pub fn truth(a: TruthArgs) -> CliResult {
    set_threads(a.threads)?;
    let (base, dim) = read_f32_vectors(&a.base)?;
    let (queries, qdim) = read_f32_vectors(&a.queries)?;
    if qdim != dim {
        return Err(format!("queries have {qdim} dimensions, the base has {dim}").into());
    }
    if a.k == 0 {
        return Err(neardb::Error::ZeroK.into());
    }
    let t0 = Instant::now();
    let (ids, dists) = exact_truth(&base, &queries, dim, a.metric, a.k)?;
    let k = ids.len() / (queries.len() / dim).max(1);
    write_ivecs(&a.output, &ids, k)?;
    if let Some(p) = &a.distances {
        write_fvecs(p, &dists, k)?;
    }
    eprintln!(
        "exact top-{k} of {} queries in {:.2} s → {}",
        queries.len() / dim,
        t0.elapsed().as_secs_f64(),
        a.output.display()
    );
    Ok(())
}

/// One row of a benchmark sweep.
pub struct BenchRow {
    pub param: Option<usize>,
    pub rerank: Option<usize>,
    pub recall: f64,
    pub qps: f64,
    pub qps_batch: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub work: WorkSummary,
}

impl BenchRow {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "param": self.param, "rerank": self.rerank, "recall": self.recall, "qps": self.qps, "qps_batch": self.qps_batch,
            "p50_us": self.p50_us, "p99_us": self.p99_us, "plan": self.work.plan.map(|p| p.name()),
            "scanned_queries": self.work.scans, "expanded_per_query": self.work.mean_expanded,
            "distances_per_query": self.work.mean_distances,
        })
    }
}

/// What a benchmark sweep measures: the queries, their ground truth and the sweep values.
#[derive(Clone, Copy)]
pub struct Sweep<'a> {
    pub queries: &'a [f32],
    pub truth: &'a [i32],
    pub truth_dim: usize,
    pub k: usize,
    pub params: &'a [usize],
    pub reranks: &'a [usize],
    pub min_time: f64,
    pub max_repeat: usize,
    /// Only these ids may be returned (`--allow`).
    pub filter: Option<&'a dyn neardb::Filter>,
    /// How filtered searches are answered.
    pub strategy: neardb::FilterStrategy,
}

pub fn run_bench(
    index: &neardb::AnyIndex,
    s: &Sweep<'_>,
    mut each: impl FnMut(&BenchRow),
) -> CliResult<Vec<BenchRow>> {
    let Sweep { queries, truth, truth_dim, k, params, reranks, min_time, max_repeat, filter, strategy } = *s;
    let nq = queries.len() / index.dim();
    if truth.len() / truth_dim.max(1) < nq {
        return Err(
            format!("ground truth has {} rows for {nq} queries", truth.len() / truth_dim.max(1)).into()
        );
    }
    if truth_dim < k {
        return Err(format!("ground truth has {truth_dim} columns, fewer than k = {k}").into());
    }
    let options = |v: &[usize]| -> Vec<Option<usize>> {
        if v.is_empty() {
            vec![None]
        } else {
            v.iter().map(|&p| Some(p)).collect()
        }
    };
    let sweep: Vec<(Option<usize>, Option<usize>)> =
        options(reranks).into_iter().flat_map(|r| options(params).into_iter().map(move |p| (p, r))).collect();
    let mut rows = Vec::new();
    for (p, r) in sweep {
        let p0 = p.unwrap_or(0);
        let sp = SearchParams::new()
            .with_ef(p0)
            .with_nprobe(p0)
            .with_rerank_factor(r.unwrap_or(0))
            .with_filter_strategy(strategy);
        let single = time_single(index, queries, k, &sp, filter, (min_time, max_repeat))?;
        let batch = time_batch(index, queries, k, &sp, filter, (min_time, max_repeat))?;
        let work = work_pass(index, queries, k, &sp, filter)?;
        let row = BenchRow {
            param: p,
            rerank: r,
            recall: recall(&single.ids, k, truth, truth_dim),
            qps: single.qps(nq),
            qps_batch: batch.qps(nq),
            p50_us: single.percentile_us(50.0),
            p99_us: single.percentile_us(99.0),
            work,
        };
        each(&row);
        rows.push(row);
    }
    Ok(rows)
}

fn print_bench_header() {
    println!(
        "{:>8}  {:>6}  {:>8}  {:>10}  {:>11}  {:>9}  {:>9}  {:>14}  {:>9}  {:>10}",
        "param",
        "rerank",
        "recall",
        "qps(1t)",
        "qps(batch)",
        "p50 µs",
        "p99 µs",
        "plan",
        "expanded",
        "distances"
    );
}

fn print_bench_row(r: &BenchRow) {
    let p = r.param.map_or("-".to_string(), |p| p.to_string());
    let rr = r.rerank.map_or("-".to_string(), |p| p.to_string());
    println!(
        "{p:>8}  {rr:>6}  {:>8.4}  {:>10.1}  {:>11.1}  {:>9.1}  {:>9.1}  {:>14}  {:>9.1}  {:>10.1}",
        r.recall,
        r.qps,
        r.qps_batch,
        r.p50_us,
        r.p99_us,
        r.work.plan.map_or("-", |p| p.name()),
        r.work.mean_expanded,
        r.work.mean_distances
    );
}

/// The bytes of an `--allow` file, which must be one per record of an index of `records`
/// (nonzero = allowed, in row order: what `filtered.py --export` writes as
/// `mask-<selectivity>.u8`), and the record count as ids.
pub fn read_mask(path: &Path, records: u64) -> CliResult<(Vec<u8>, u32)> {
    let mask = std::fs::read(path).map_err(|e| format!("--allow {}: {e}", path.display()))?;
    if mask.len() as u64 != records {
        return Err(format!(
            "--allow {}: {} bytes, but the index holds {records} records (one byte per record, in row order)",
            path.display(),
            mask.len()
        )
        .into());
    }
    let ids = u32::try_from(records).map_err(|_| "the index holds more records than ids")?;
    Ok((mask, ids))
}

/// Reads an `--allow` file ([`read_mask`]) as a filter over the index's slots: rows become
/// slots through its `ids` section where it has one.
pub fn read_allow(path: &Path, index: &neardb::AnyIndex) -> CliResult<neardb::Bitset> {
    let (mask, slots) = read_mask(path, index.len() as u64)?;
    Ok(neardb::Bitset::from_fn(slots, |slot| {
        let row = if index.external_ids().is_some() { index.external_id(slot) } else { slot };
        mask.get(row as usize).is_some_and(|&b| b != 0)
    }))
}

pub fn bench(a: BenchArgs) -> CliResult {
    set_threads(a.threads)?;
    if neardb::disk::is_disk_index(&a.index) {
        return crate::disk::bench(&a);
    }
    let index = crate::open_index(&a.index, a.load)?;
    let (queries, qdim) = read_f32_vectors(&a.queries)?;
    if qdim != index.dim() {
        return Err(format!("queries have {qdim} dimensions, the index has {}", index.dim()).into());
    }
    let (truth, tdim) = read_ivecs(&a.truth)?;
    let allow = a.allow.as_deref().map(|p| read_allow(p, &index)).transpose()?;
    if !a.json {
        println!(
            "{} index, {} vectors × {}, {} queries, k = {}, {} threads for batch{}",
            index.info().kind,
            index.len(),
            index.dim(),
            queries.len() / qdim,
            a.k,
            rayon::current_num_threads(),
            allow.as_ref().map_or(String::new(), |b| format!(", {} allowed", b.count()))
        );
        print_bench_header();
    }
    let json = a.json;
    let sweep = Sweep {
        queries: &queries,
        truth: &truth,
        truth_dim: tdim,
        k: a.k,
        params: &a.param,
        reranks: &a.rerank,
        min_time: a.min_time,
        max_repeat: a.max_repeat,
        filter: allow.as_ref().map(|b| b as &dyn neardb::Filter),
        strategy: a.filter_strategy.into(),
    };
    run_bench(&index, &sweep, |r| {
        if json {
            println!("{}", r.json());
        } else {
            print_bench_row(r);
        }
    })?;
    Ok(())
}

pub fn info(a: InfoArgs) -> CliResult {
    if neardb::disk::is_disk_index(&a.index) {
        return crate::disk::info(&a.index, a.json);
    }
    let bytes = std::fs::metadata(&a.index).map_err(|e| format!("{}: {e}", a.index.display()))?.len();
    let index = neardb::open(&a.index)?;
    let info = index.info();
    if a.json {
        let sections: Vec<_> = info
            .sections
            .iter()
            .map(|s| serde_json::json!({"kind": s.kind.to_string(), "offset": s.offset, "length": s.len, "crc32": s.crc}))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "version": info.version, "kind": info.kind.name(), "metric": info.metric.name(), "dim": info.dim,
                "count": info.count, "file_bytes": bytes, "sections": sections,
            })
        );
        return Ok(());
    }
    println!("file      {} ({})", a.index.display(), human_bytes(bytes));
    println!("format    NRDB version {} (this build reads up to {FORMAT_VERSION})", info.version);
    println!("index     {}", info.kind);
    println!("metric    {}", info.metric);
    println!("vectors   {} × {} dimensions", info.count, info.dim);
    println!("sections  (checksums verified)");
    println!("  {:<14} {:>12} {:>14} {:>10}", "kind", "offset", "length", "crc32");
    for s in &info.sections {
        println!("  {:<14} {:>12} {:>14} {:>#10x}", s.kind.to_string(), s.offset, s.len, s.crc);
    }
    Ok(())
}

/// Writes base, queries and ground truth of a synthetic dataset into `dir`.
pub fn generate(spec: DataSpec, n: usize, nq: usize, truth_k: usize, dir: &Path) -> CliResult {
    if n == 0 || spec.dim == 0 || nq == 0 {
        return Err("--n, --dim and --queries must be at least 1".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let t0 = Instant::now();
    let g = Generator::new(spec.clone());
    let bar = progress(n as u64, "generate");
    let mut base = Vec::with_capacity(n * spec.dim);
    for start in (0..n).step_by(50_000) {
        let take = 50_000.min(n - start);
        base.extend(g.rows(0, start, take));
        bar.inc(take as u64);
    }
    bar.finish_and_clear();
    let queries = g.rows(1, 0, nq);
    write_fvecs(&dir.join("base.fvecs"), &base, spec.dim)?;
    write_fvecs(&dir.join("query.fvecs"), &queries, spec.dim)?;
    let gen_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let (ids, dists) = exact_truth(&base, &queries, spec.dim, spec.metric, truth_k)?;
    let k = ids.len() / nq;
    write_ivecs(&dir.join("groundtruth.ivecs"), &ids, k)?;
    write_fvecs(&dir.join("groundtruth_dist.fvecs"), &dists, k)?;
    let meta = serde_json::json!({
        "generator": "neardb gen", "kind": format!("{:?}", spec.kind).to_lowercase(), "metric": spec.metric.name(),
        "n": n, "d": spec.dim, "nq": nq, "truth_k": k, "clusters": spec.clusters, "seed": spec.seed,
        "gen_s": gen_s, "truth_s": t1.elapsed().as_secs_f64(),
    });
    std::fs::write(dir.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
    Ok(())
}

pub fn gen(a: GenArgs) -> CliResult {
    let spec = DataSpec { kind: a.kind, dim: a.dim, metric: a.metric, clusters: a.clusters, seed: a.seed };
    generate(spec, a.n, a.queries, a.truth_k, &a.output)?;
    eprintln!(
        "wrote {} vectors × {} and {} queries with exact top-{} to {}",
        a.n,
        a.dim,
        a.queries,
        a.truth_k,
        a.output.display()
    );
    Ok(())
}

pub fn demo(a: DemoArgs) -> CliResult {
    let data_dir = a.dir.join(format!("clustered-{}-{}-{}", a.dim, a.metric, a.n));
    if !data_dir.join("meta.json").exists() {
        eprintln!("generating {} × {} clustered vectors ({}) with exact ground truth…", a.n, a.dim, a.metric);
        let spec = DataSpec {
            kind: neardb::gen::DataKind::Clustered,
            dim: a.dim,
            metric: a.metric,
            clusters: 100,
            seed: 20240611,
        };
        generate(spec, a.n, 1000, 100, &data_dir)?;
    }
    let (base, dim) = read_f32_vectors(&data_dir.join("base.fvecs"))?;
    let (queries, _) = read_f32_vectors(&data_dir.join("query.fvecs"))?;
    let (truth, tdim) = read_ivecs(&data_dir.join("groundtruth.ivecs"))?;
    for (kind, params) in [(IndexKind::Flat, vec![]), (IndexKind::Hnsw, vec![16, 32, 64, 128, 256])] {
        let t0 = Instant::now();
        let index = build_index(&IndexSpec::new(kind), a.metric, dim, &base)?;
        let build_s = t0.elapsed().as_secs_f64();
        let path = a.dir.join(format!("demo-{kind}.neardb"));
        let bytes = index.save(&path)?;
        let mapped = neardb::open(&path)?;
        println!(
            "\n{kind} index: {} vectors × {dim}, built in {build_s:.2} s ({} threads), {} on disk, kernels {}",
            mapped.len(),
            rayon::current_num_threads(),
            human_bytes(bytes),
            index.isa()
        );
        print_bench_header();
        let sweep = Sweep {
            queries: &queries,
            truth: &truth,
            truth_dim: tdim,
            k: 10,
            params: &params,
            reranks: &[],
            min_time: 0.3,
            max_repeat: 3,
            filter: None,
            strategy: neardb::FilterStrategy::Auto,
        };
        run_bench(&mapped, &sweep, print_bench_row)?;
    }
    Ok(())
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
