//! `neardb peer`: the benchmark harness's CLI contract (info / build / search), so the harness
//! runs neardb beside hnswlib, FAISS and USearch on the same data in the same run.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use neardb::io::{read_f32_vectors, write_ivecs};
use neardb::{IndexSpec, Metric, SearchParams, VectorSearch};

use crate::commands::build_index;
use crate::measure::{cpu_seconds, result_width, time_batch, time_single};
use crate::{set_threads, CliResult};

#[derive(Subcommand)]
pub enum PeerCommand {
    /// Print {"name", "version"}.
    Info,
    /// Build from all base vectors; print {"build_s", "build_cpu_s", "index_bytes"}.
    Build(PeerBuild),
    /// Time passes over all queries; write RES.ivecs; print {"search_s", "search_cpu_s", "latency_us"}.
    Search(PeerSearch),
}

/// How the harness times a search pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// One query at a time, one thread.
    Single,
    /// All queries in one call on `--threads` threads.
    Batch,
}

#[derive(Args)]
pub struct PeerBuild {
    #[arg(long)]
    base: PathBuf,
    /// l2 or ip (the harness's cosine data is normalised and passed as ip).
    #[arg(long)]
    metric: Metric,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Index file to write.
    #[arg(long)]
    index: PathBuf,
    /// Build options KEY=VALUE: index=flat.
    #[arg(long = "opt")]
    opts: Vec<String>,
}

#[derive(Args)]
pub struct PeerSearch {
    #[arg(long)]
    index: PathBuf,
    /// Base vectors (unused: the index stores its vectors).
    #[arg(long)]
    base: Option<PathBuf>,
    #[arg(long)]
    queries: PathBuf,
    #[arg(long = "k", short = 'k', default_value_t = 10)]
    k: usize,
    /// The sweep value: "-" for none, N (HNSW ef), or NPROBE/RERANK.
    #[arg(long, allow_hyphen_values = true, default_value = "-")]
    param: String,
    #[arg(long, value_enum, default_value_t = Mode::Single)]
    mode: Mode,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[arg(long, default_value_t = 1.0)]
    min_time: f64,
    #[arg(long, default_value_t = 3)]
    max_repeat: usize,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    metric: Option<String>,
    #[arg(long = "opt")]
    opts: Vec<String>,
}

/// Parses `--opt KEY=VALUE` pairs into the library's build specification, refusing keys it
/// does not know.
fn index_spec(opts: &[String]) -> CliResult<IndexSpec> {
    let mut pairs = Vec::with_capacity(opts.len());
    for kv in opts {
        pairs.push(kv.split_once('=').ok_or_else(|| format!("--opt {kv:?} is not KEY=VALUE"))?);
    }
    Ok(IndexSpec::from_options(pairs)?)
}

/// The harness's sweep value as search parameters.
fn search_params(param: &str) -> CliResult<SearchParams> {
    if param == "-" || param.is_empty() || param == "None" || param == "null" {
        return Ok(SearchParams::new());
    }
    if let Some((a, b)) = param.split_once('/') {
        // "-" leaves that knob at the index default (e.g. "-/10" for an index without lists).
        let knob = |x: &str| -> CliResult<usize> {
            if x == "-" {
                return Ok(0);
            }
            x.parse().map_err(|_| format!("--param {param:?}: expected NPROBE/RERANK").into())
        };
        return Ok(SearchParams::new().with_nprobe(knob(a)?).with_rerank_factor(knob(b)?));
    }
    let v: usize = param.parse().map_err(|_| format!("--param {param:?} is not a number, N/M or -"))?;
    Ok(SearchParams::new().with_ef(v).with_nprobe(v))
}

pub fn run(cmd: PeerCommand) -> CliResult {
    match cmd {
        PeerCommand::Info => {
            println!("{}", serde_json::json!({"name": "neardb", "version": env!("CARGO_PKG_VERSION")}));
            Ok(())
        }
        PeerCommand::Build(a) => build(a),
        PeerCommand::Search(a) => search(a),
    }
}

fn build(a: PeerBuild) -> CliResult {
    set_threads(Some(a.threads))?;
    let spec = index_spec(&a.opts)?;
    spec.check()?;
    if spec.kind == neardb::IndexKind::Disk {
        let (build_s, build_cpu_s, bytes) = crate::disk::build(&spec, a.metric, &a.base, &a.index)?;
        println!(
            "{}",
            serde_json::json!({"build_s": build_s, "build_cpu_s": build_cpu_s, "index_bytes": bytes})
        );
        return Ok(());
    }
    let (data, dim) = read_f32_vectors(&a.base)?;
    let c0 = cpu_seconds();
    let t0 = Instant::now();
    let index = build_index(&spec, a.metric, dim, &data)?;
    let build_s = t0.elapsed().as_secs_f64();
    let build_cpu_s = cpu_seconds() - c0;
    let bytes = index.save(&a.index)?;
    println!("{}", serde_json::json!({"build_s": build_s, "build_cpu_s": build_cpu_s, "index_bytes": bytes}));
    Ok(())
}

fn search(a: PeerSearch) -> CliResult {
    let threads = if a.mode == Mode::Single { 1 } else { a.threads };
    set_threads(Some(threads))?;
    if neardb::disk::is_disk_index(&a.index) {
        let timing = (a.min_time, a.max_repeat);
        let single = a.mode == Mode::Single;
        return crate::disk::peer_search(
            &a.index, &a.queries, a.k, &a.param, single, timing, &a.out, &a.opts,
        );
    }
    index_spec(&a.opts)?;
    let params = search_params(&a.param)?;
    // Loaded into RAM like every other peer's index (hnswlib, FAISS); `neardb bench --load
    // mmap` measures the in-place map.
    let index = neardb::load(&a.index)?;
    let (queries, qdim) = read_f32_vectors(&a.queries)?;
    if qdim != index.dim() {
        return Err(format!("queries have {qdim} dimensions, the index has {}", index.dim()).into());
    }
    let k = result_width(&index, a.k);
    let passes = if a.mode == Mode::Single {
        time_single(&index, &queries, k, &params, None, (a.min_time, a.max_repeat))?
    } else {
        time_batch(&index, &queries, k, &params, None, (a.min_time, a.max_repeat))?
    };
    write_ivecs(&a.out, &passes.ids, k)?;
    let mut out = serde_json::json!({"search_s": passes.wall, "search_cpu_s": passes.cpu});
    if a.mode == Mode::Single {
        out["latency_us"] = serde_json::json!({
            "mean": passes.mean_us(), "p50": passes.percentile_us(50.0), "p99": passes.percentile_us(99.0),
        });
    }
    println!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_parameters_parse() {
        assert_eq!(search_params("-").unwrap(), SearchParams::new());
        assert_eq!(search_params("32").unwrap().ef, 32);
        let p = search_params("4/8").unwrap();
        assert_eq!((p.nprobe, p.rerank_factor), (4, 8));
        let p = search_params("-/20").unwrap();
        assert_eq!((p.nprobe, p.rerank_factor), (0, 20));
        assert!(search_params("4/x").is_err());
        assert!(search_params("x").is_err());
        let spec = |o: &[&str]| index_spec(&o.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let o = spec(&["index=hnsw", "M=12", "ef_construction=80"]).unwrap();
        assert_eq!((o.kind, o.hnsw.m, o.hnsw.ef_construction), (neardb::IndexKind::Hnsw, 12, 80));
        assert!(spec(&["M=x"]).is_err());
        assert!(spec(&["bogus=1"]).is_err());
        assert!(spec(&["index"]).is_err());
        let o = spec(&["m=32", "index=ivfpq", "nlist=100"]).unwrap();
        assert_eq!((o.pq_m, o.nlist), (32, 100));
    }
}
