//! `quiver peer`: the benchmark harness's CLI contract (info / build / search), so the harness
//! runs quiver beside hnswlib, FAISS and USearch on the same data in the same run.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use quiverdb::io::{read_f32_vectors, write_ivecs};
use quiverdb::{Metric, SearchParams, VectorSearch};

use crate::commands::build_index;
use crate::measure::{cpu_seconds, time_batch, time_single};
use crate::{set_threads, CliResult, IndexOptions};

#[derive(Subcommand)]
pub enum PeerCommand {
    /// Print {"name", "version"}.
    Info,
    /// Build from all base vectors; print {"build_s", "build_cpu_s", "index_bytes"}.
    Build(PeerBuild),
    /// Time passes over all queries; write RES.ivecs; print {"search_s", "search_cpu_s", "latency_us"}.
    Search(PeerSearch),
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
    #[arg(long, default_value = "single", value_parser = ["single", "batch"])]
    mode: String,
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

/// Parses `--opt KEY=VALUE` pairs into index options, refusing keys it does not know.
fn index_options(opts: &[String]) -> CliResult<IndexOptions> {
    let mut o = IndexOptions::flat();
    let number = |k: &str, v: &str| -> CliResult<usize> {
        v.parse().map_err(|_| format!("--opt {k}={v}: not a whole number").into())
    };
    // M is HNSW's links per node; m (as FAISS names it) the PQ sub-quantizers of ivfpq.
    let mut lower_m = None;
    for kv in opts {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("--opt {kv:?} is not KEY=VALUE"))?;
        match k {
            "index" => match v {
                "flat" | "hnsw" | "ivfpq" | "binary" => o.kind = v.into(),
                _ => {
                    return Err(format!(
                    "index type {v:?} is not supported by this build (supported: flat, hnsw, ivfpq, binary)"
                )
                    .into())
                }
            },
            "nlist" => o.nlist = number(k, v)?,
            "pq_m" | "pq-m" => o.pq_m = number(k, v)?,
            "nbits" => {
                o.nbits = u8::try_from(number(k, v)?).map_err(|_| format!("--opt nbits={v}: 4 or 8"))?
            }
            "bits" => o.bits = number(k, v)?,
            "tables" => o.tables = number(k, v)?,
            "key_bits" | "key-bits" => o.key_bits = number(k, v)?,
            "M" => o.m = number(k, v)?,
            "m" => lower_m = Some(number(k, v)?),
            "ef_construction" | "efc" => o.ef_construction = number(k, v)?,
            "seed" => o.seed = number(k, v)? as u64,
            "quantize" => o.quantize = v.into(),
            "rerank" => o.rerank = number(k, v)?,
            "layout" => o.layout = v.into(),
            _ => return Err(format!("unknown build option {k:?}").into()),
        }
    }
    match (lower_m, o.kind.as_str()) {
        (Some(m), "ivfpq") => o.pq_m = m,
        (Some(m), _) => o.m = m,
        (None, _) => {}
    }
    Ok(o)
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
            println!("{}", serde_json::json!({"name": "quiverdb", "version": env!("CARGO_PKG_VERSION")}));
            Ok(())
        }
        PeerCommand::Build(a) => build(a),
        PeerCommand::Search(a) => search(a),
    }
}

fn build(a: PeerBuild) -> CliResult {
    set_threads(Some(a.threads))?;
    let opts = index_options(&a.opts)?;
    let (data, dim) = read_f32_vectors(&a.base)?;
    let c0 = cpu_seconds();
    let t0 = Instant::now();
    let index = build_index(&opts, a.metric, dim, &data)?;
    let build_s = t0.elapsed().as_secs_f64();
    let build_cpu_s = cpu_seconds() - c0;
    let bytes = index.save(&a.index)?;
    println!("{}", serde_json::json!({"build_s": build_s, "build_cpu_s": build_cpu_s, "index_bytes": bytes}));
    Ok(())
}

fn search(a: PeerSearch) -> CliResult {
    let threads = if a.mode == "single" { 1 } else { a.threads };
    set_threads(Some(threads))?;
    index_options(&a.opts)?;
    let params = search_params(&a.param)?;
    // Loaded into RAM like every other peer's index (hnswlib, FAISS); `quiver bench --load
    // mmap` measures the in-place map.
    let index = quiverdb::load(&a.index)?;
    let (queries, qdim) = read_f32_vectors(&a.queries)?;
    if qdim != index.dim() {
        return Err(format!("queries have {qdim} dimensions, the index has {}", index.dim()).into());
    }
    let passes = if a.mode == "single" {
        time_single(&index, &queries, a.k, &params, a.min_time, a.max_repeat)?
    } else {
        time_batch(&index, &queries, a.k, &params, a.min_time, a.max_repeat)?
    };
    write_ivecs(&a.out, &passes.ids, a.k)?;
    let mut out = serde_json::json!({"search_s": passes.wall, "search_cpu_s": passes.cpu});
    if a.mode == "single" {
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
        assert!(index_options(&["index=flat".into(), "M=16".into()]).is_ok());
        let o = index_options(&["index=hnsw".into(), "M=12".into(), "ef_construction=80".into()]).unwrap();
        assert_eq!((o.kind.as_str(), o.m, o.ef_construction), ("hnsw", 12, 80));
        assert!(index_options(&["M=x".into()]).is_err());
        assert!(index_options(&["bogus=1".into()]).is_err());
        assert!(index_options(&["index".into()]).is_err());
        let o = index_options(&["m=32".into(), "index=ivfpq".into(), "nlist=100".into()]).unwrap();
        assert_eq!((o.kind.as_str(), o.pq_m, o.nlist, o.m), ("ivfpq", 32, 100, 16));
        let o = index_options(&["index=binary".into(), "bits=512".into(), "tables=4".into()]).unwrap();
        assert_eq!((o.bits, o.tables), (512, 4));
        assert!(index_options(&["nbits=300".into()]).is_err());
    }
}
