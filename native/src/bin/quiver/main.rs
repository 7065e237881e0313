//! `quiver`: build, search, benchmark and inspect QuiverDB indexes from the command line, and
//! run as a peer in the shared benchmark harness.

mod commands;
mod measure;
mod peer;
mod text;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Errors at the tool level carry their own message; the library's errors are precise.
pub type CliResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(name = "quiver", version, about = "QuiverDB: vector search natively and in the browser")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an index from a vector file (.fvecs, .bvecs, .npy) and save it.
    Build(BuildArgs),
    /// Search an index with a file of queries.
    Search(SearchArgs),
    /// Exact ground truth: the true k nearest base rows of every query.
    Truth(TruthArgs),
    /// Recall@k, single-thread QPS, batch QPS and latency percentiles, over a parameter sweep.
    Bench(BenchArgs),
    /// Print an index file's header and sections.
    Info(InfoArgs),
    /// Generate a seeded synthetic dataset with exact ground truth.
    Gen(GenArgs),
    /// The main job on an embedded default: generate, build, search, report recall and QPS.
    Demo(DemoArgs),
    /// Turn Debian package descriptions (Translation-en files) into a JSON-lines corpus.
    Corpus(text::CorpusArgs),
    /// Embed a JSON-lines text field with all-MiniLM-L6-v2 into an .fvecs file.
    Embed(text::EmbedArgs),
    /// Rewrite model weights (safetensors) in f16: half the download for the browser.
    ModelF16(text::ModelF16Args),
    /// Hand-written queries against an embedded corpus: HNSW recall and expected-package hits.
    Relevance(text::RelevanceArgs),
    /// The benchmark harness's CLI peer contract (../shared/bench/README.md).
    #[command(subcommand)]
    Peer(peer::PeerCommand),
}

/// Index construction options shared by `build` and `peer build`.
#[derive(Args, Clone, Debug)]
pub struct IndexOptions {
    /// Index type.
    #[arg(long = "index", default_value = "flat", value_parser = ["flat", "hnsw", "ivfpq", "binary"])]
    pub kind: String,
    /// HNSW: links per node on upper levels (level 0 keeps 2 × m).
    #[arg(long = "m", default_value_t = 16)]
    pub m: usize,
    /// HNSW: candidate-list size while inserting.
    #[arg(long = "ef-construction", default_value_t = 200)]
    pub ef_construction: usize,
    /// HNSW: seed of the level generator (a single-thread build is reproducible).
    #[arg(long = "seed", default_value_t = quiverdb::HnswParams::default().seed)]
    pub seed: u64,
    /// Compress the vectors searches read: `none`; `sq8` (HNSW walks one byte per
    /// dimension); `f16` (HNSW stores and walks binary16 vectors: half the bytes); `sq8+f16`
    /// (walks SQ8 codes, re-ranks against binary16 rows); with `--index flat`, `pq:M`
    /// (exhaustive PQ scan, M sub-quantizers) or `binary` (exhaustive Hamming scan).
    #[arg(long, default_value = "none")]
    pub quantize: String,
    /// HNSW: slot order in memory and in the file: `insertion` (row order) or `graph` (grouped
    /// by the graph's own hierarchy, so neighbours sit close together; 6–10 % faster searches
    /// in WebAssembly, no change natively; the file then maps slots back to row numbers in an
    /// `ids` section).
    #[arg(long, default_value = "insertion", value_parser = ["insertion", "graph"])]
    pub layout: String,
    /// Quantized indexes: re-rank the best k × R candidates with the exact vectors (HNSW-SQ8:
    /// by default; IVF-PQ and binary: when a search asks, e.g. `quiver bench --rerank`). 0
    /// keeps only the codes, in memory and in the file.
    #[arg(long, default_value_t = 4)]
    pub rerank: usize,
    /// IVF: inverted lists (0: round(√n)).
    #[arg(long, default_value_t = 0)]
    pub nlist: usize,
    /// PQ: sub-quantizers; must divide the dimension (0: the largest of 48/32/16 dividing it
    /// with ≥ 8 dimensions each).
    #[arg(long = "pq-m", default_value_t = 0)]
    pub pq_m: usize,
    /// PQ: bits per sub-code, 8 or 4.
    #[arg(long, default_value_t = 8)]
    pub nbits: u8,
    /// Binary: code bits from random hyperplanes (0: one sign bit per dimension).
    #[arg(long, default_value_t = 0)]
    pub bits: usize,
    /// Binary: LSH tables (0: exhaustive Hamming scan); searches probe `--nprobe` buckets each.
    #[arg(long, default_value_t = 0)]
    pub tables: usize,
    /// Binary: key bits per LSH table.
    #[arg(long = "key-bits", default_value_t = 16)]
    pub key_bits: usize,
}

impl IndexOptions {
    /// Flat index, default graph parameters.
    pub fn flat() -> Self {
        let d = quiverdb::HnswParams::default();
        Self {
            kind: "flat".into(),
            m: d.m,
            ef_construction: d.ef_construction,
            seed: d.seed,
            quantize: "none".into(),
            layout: "insertion".into(),
            rerank: 4,
            nlist: 0,
            pq_m: 0,
            nbits: 8,
            bits: 0,
            tables: 0,
            key_bits: 16,
        }
    }
}

#[derive(Args)]
pub struct BuildArgs {
    /// Base vectors.
    #[arg(long)]
    pub base: PathBuf,
    /// Distance metric: l2, cosine, ip or l1.
    #[arg(long)]
    pub metric: quiverdb::Metric,
    #[command(flatten)]
    pub index: IndexOptions,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where to write the index file.
    #[arg(long, short)]
    pub output: PathBuf,
}

#[derive(Args)]
pub struct SearchArgs {
    /// Index file.
    #[arg(long)]
    pub index: PathBuf,
    /// Query vectors.
    #[arg(long)]
    pub queries: PathBuf,
    /// Results per query.
    #[arg(short = 'k', long = "k", default_value_t = 10)]
    pub k: usize,
    /// Search effort (HNSW ef; ignored by flat).
    #[arg(long, default_value_t = 0)]
    pub ef: usize,
    /// IVF: inverted lists probed (0: the index default).
    #[arg(long, default_value_t = 0)]
    pub nprobe: usize,
    /// Quantized indexes: re-rank k × R candidates exactly (0: the index default).
    #[arg(long, default_value_t = 0)]
    pub rerank: usize,
    /// Write result ids as .ivecs (nq × k, -1 padding).
    #[arg(long, conflicts_with = "json")]
    pub output: Option<PathBuf>,
    /// Print one JSON object per query instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args)]
pub struct TruthArgs {
    /// Base vectors.
    #[arg(long)]
    pub base: PathBuf,
    /// Query vectors.
    #[arg(long)]
    pub queries: PathBuf,
    /// Distance metric.
    #[arg(long)]
    pub metric: quiverdb::Metric,
    /// Neighbours per query.
    #[arg(short = 'k', long = "k", default_value_t = 100)]
    pub k: usize,
    /// Output .ivecs.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Also write the distances as .fvecs.
    #[arg(long)]
    pub distances: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Index file.
    #[arg(long)]
    pub index: PathBuf,
    /// Query vectors.
    #[arg(long)]
    pub queries: PathBuf,
    /// Ground truth .ivecs (at least k columns).
    #[arg(long)]
    pub truth: PathBuf,
    /// Results per query.
    #[arg(short = 'k', long = "k", default_value_t = 10)]
    pub k: usize,
    /// Values of the index's effort knob to sweep (HNSW ef, IVF nprobe), comma-separated.
    #[arg(long, visible_alias = "nprobe", visible_alias = "ef", value_delimiter = ',')]
    pub param: Vec<usize>,
    /// Re-rank factors to sweep for quantized indexes (each with every --param value);
    /// default: the index's own.
    #[arg(long, value_delimiter = ',')]
    pub rerank: Vec<usize>,
    /// Print JSON lines (param, recall, qps, qps_batch, p50_us, p99_us) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Threads for the batch mode (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// How to bring the index into memory: `ram` (read into huge-page memory) or `mmap`
    /// (map the file in place).
    #[arg(long, default_value = "ram", value_parser = ["ram", "mmap"])]
    pub load: String,
    /// Repeat each timed pass until this many seconds have passed (best pass is kept).
    #[arg(long, default_value_t = 1.0)]
    pub min_time: f64,
    /// At most this many timed passes per mode.
    #[arg(long, default_value_t = 5)]
    pub max_repeat: usize,
}

#[derive(Args)]
pub struct InfoArgs {
    /// Index file.
    pub index: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct GenArgs {
    /// Distribution: clustered or uniform.
    #[arg(long, default_value = "clustered")]
    pub kind: quiverdb::gen::DataKind,
    /// Base vectors.
    #[arg(long, short)]
    pub n: usize,
    /// Dimension.
    #[arg(long)]
    pub dim: usize,
    /// Query vectors.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Metric the ground truth is computed with (cosine data is normalised).
    #[arg(long, default_value = "l2")]
    pub metric: quiverdb::Metric,
    /// Mixture components (clustered).
    #[arg(long, default_value_t = 100)]
    pub clusters: usize,
    /// Ground-truth neighbours per query.
    #[arg(long, default_value_t = 100)]
    pub truth_k: usize,
    /// Seed.
    #[arg(long, default_value_t = 20240611)]
    pub seed: u64,
    /// Output directory (base.fvecs, query.fvecs, groundtruth.ivecs, meta.json).
    #[arg(long, short)]
    pub output: PathBuf,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Base vectors to generate.
    #[arg(long, default_value_t = 50_000)]
    pub n: usize,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Metric.
    #[arg(long, default_value = "l2")]
    pub metric: quiverdb::Metric,
    /// Working directory for the dataset and index.
    #[arg(long, default_value = "target/quiver-demo")]
    pub dir: PathBuf,
}

/// Opens an index file the way `how` says: `ram` (read into huge-page memory) or `mmap`.
pub fn open_index(path: &std::path::Path, how: &str) -> CliResult<quiverdb::AnyIndex> {
    Ok(if how == "mmap" { quiverdb::open(path)? } else { quiverdb::load(path)? })
}

/// Sizes the global rayon pool; the first call wins.
pub fn set_threads(threads: Option<usize>) -> CliResult {
    if let Some(t) = threads {
        if t == 0 {
            return Err("--threads must be at least 1".into());
        }
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global()?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();

    let result = match cli.command {
        Command::Build(a) => commands::build(a),
        Command::Search(a) => commands::search(a),
        Command::Truth(a) => commands::truth(a),
        Command::Bench(a) => commands::bench(a),
        Command::Info(a) => commands::info(a),
        Command::Gen(a) => commands::gen(a),
        Command::Demo(a) => commands::demo(a),
        Command::Corpus(a) => text::corpus(a),
        Command::Embed(a) => text::embed(a),
        Command::ModelF16(a) => text::model_f16(a),
        Command::Relevance(a) => text::relevance(a),
        Command::Peer(p) => peer::run(p),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
