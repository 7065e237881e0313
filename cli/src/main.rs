//! `neardb`: build, search, benchmark and inspect NearDB indexes from the command line, and
//! run as a peer in the shared benchmark harness.

mod choice;
mod collection;
mod commands;
mod disk;
mod measure;
mod peer;
mod text;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use neardb::{IndexKind, IndexSpec, Layout, Quantize};

use crate::choice::choice;

/// Errors at the tool level carry their own message; the library's errors are precise.
pub type CliResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(name = "neardb", version, about = "NearDB: vector search natively and in the browser")]
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
    /// Re-pack an SSD index (block size, PQ bytes) without building its graph again.
    Relayout(disk::RelayoutArgs),
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
    /// Durable collections: records with ids, vectors and metadata; filters; versions.
    #[command(subcommand)]
    Collection(collection::CollectionCommand),
    /// Serve the collections of a directory over Qdrant's REST API (qdrant-client works).
    Serve(ServeArgs),
}

/// Index construction options of `build` (the harness's `peer build` passes the same ones
/// as `--opt KEY=VALUE`); both become one [`neardb::IndexSpec`].
#[derive(Args, Clone, Debug)]
pub struct IndexOptions {
    /// Index type.
    #[arg(long = "index", default_value = "flat", value_parser = choice::<IndexKind>())]
    pub kind: IndexKind,
    /// HNSW: links per node on upper levels (level 0 keeps 2 × m).
    #[arg(long = "m", default_value_t = neardb::HnswParams::default().m)]
    pub m: usize,
    /// HNSW: candidate-list size while inserting.
    #[arg(long = "ef-construction", default_value_t = neardb::HnswParams::default().ef_construction)]
    pub ef_construction: usize,
    /// Vamana: most links per node (R).
    #[arg(long = "r", default_value_t = neardb::VamanaParams::default().r)]
    pub r: usize,
    /// Vamana: candidate-list size while building (L).
    #[arg(long = "l", default_value_t = neardb::VamanaParams::default().l)]
    pub l: usize,
    /// Vamana: RobustPrune's α of the second pass (≥ 1; larger keeps longer links).
    #[arg(long, default_value_t = neardb::VamanaParams::default().alpha)]
    pub alpha: f32,
    /// Seed of the HNSW level generator, Vamana's insertion order, k-means and hyperplanes (a
    /// single-thread build is reproducible).
    #[arg(long = "seed", default_value_t = neardb::HnswParams::default().seed)]
    pub seed: u64,
    /// Compress the vectors searches read.
    #[arg(long, default_value = "none", value_parser = choice::<Quantize>())]
    pub quantize: Quantize,
    /// HNSW: slot order in memory and in the file (`graph`: grouped by the graph's own
    /// hierarchy; the file then maps slots back to row numbers in an `ids` section).
    #[arg(long, default_value = "insertion", value_parser = choice::<Layout>())]
    pub layout: Layout,
    /// Quantized indexes: re-rank the best k × R candidates with the exact vectors (HNSW-SQ8:
    /// by default; IVF-PQ and binary: when a search asks, e.g. `neardb bench --rerank`). 0
    /// keeps only the codes, in memory and in the file.
    #[arg(long, default_value_t = 4)]
    pub rerank: usize,
    /// IVF: inverted lists (0: round(√n)).
    #[arg(long, default_value_t = 0)]
    pub nlist: usize,
    /// PQ (`--index ivfpq`, `--quantize pq`): sub-quantizers; must divide the dimension (0:
    /// the largest of 48/32/16 dividing it with ≥ 8 dimensions each).
    #[arg(long = "pq-m", visible_alias = "pq-bytes", default_value_t = 0)]
    pub pq_m: usize,
    /// PQ: bits per sub-code, 8 or 4.
    #[arg(long, default_value_t = 8, value_parser = clap::builder::PossibleValuesParser::new(["4", "8"]).map(|s| if s == "4" { 4u8 } else { 8 }))]
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
    /// SSD index: most memory the build may hold, in GB (0: no limit). Past it the vectors
    /// are sharded by k-means (each in its two nearest shards), each shard's graph is built in
    /// memory and the graphs are merged on disk; the base file is streamed, never held.
    #[arg(long = "build-memory", default_value_t = 0.0, value_parser = parse_gb)]
    pub build_memory: f64,
    /// SSD index: sectors per block, the unit of a read (1–16; 0: by node size, two where a
    /// node fills more than half a sector and two sectors hold three).
    #[arg(long = "block-sectors", default_value_t = 0)]
    pub block_sectors: u32,
}

fn parse_gb(value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|g| g.is_finite() && *g >= 0.0)
        .ok_or_else(|| format!("{value:?} is not a number of GB ≥ 0"))
}

impl IndexOptions {
    /// The library's build specification these options describe.
    pub fn spec(&self) -> IndexSpec {
        IndexSpec {
            kind: self.kind,
            hnsw: neardb::HnswParams { m: self.m, ef_construction: self.ef_construction, seed: self.seed },
            vamana: neardb::VamanaParams { r: self.r, l: self.l, alpha: self.alpha, seed: self.seed },
            quantize: self.quantize,
            layout: self.layout,
            rerank: self.rerank,
            nlist: self.nlist,
            pq_m: self.pq_m,
            nbits: self.nbits,
            bits: self.bits,
            tables: self.tables,
            key_bits: self.key_bits,
            build_memory: (self.build_memory * 1e9) as u64,
            block_sectors: self.block_sectors,
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
    pub metric: neardb::Metric,
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
    /// Search effort (HNSW ef, Vamana and SSD index L; ignored by flat).
    #[arg(long, default_value_t = 0)]
    pub ef: usize,
    /// IVF: inverted lists probed (0: the index default).
    #[arg(long, default_value_t = 0)]
    pub nprobe: usize,
    /// Quantized indexes: re-rank k × R candidates exactly (0: the index default).
    #[arg(long, default_value_t = 0)]
    pub rerank: usize,
    /// Only records whose byte in this file is nonzero may be returned: one byte per record,
    /// in row order (`filtered.py --export` writes these as `mask-<selectivity>.u8`).
    #[arg(long)]
    pub allow: Option<PathBuf>,
    /// How a search with --allow is answered (graph indexes; the others ignore it).
    #[arg(long, value_enum, default_value_t = Strategy::Auto, requires = "allow")]
    pub filter_strategy: Strategy,
    /// Write result ids as .ivecs (nq × k, -1 padding).
    #[arg(long, conflicts_with = "json")]
    pub output: Option<PathBuf>,
    /// Print one JSON object per query instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub disk: disk::DiskOptions,
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
    pub metric: neardb::Metric,
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
    /// Values of the index's effort knob to sweep (HNSW ef, Vamana L, IVF nprobe), comma-separated.
    #[arg(long, visible_alias = "nprobe", visible_alias = "ef", value_delimiter = ',')]
    pub param: Vec<usize>,
    /// Re-rank factors to sweep for quantized indexes (each with every --param value);
    /// default: the index's own.
    #[arg(long, value_delimiter = ',')]
    pub rerank: Vec<usize>,
    /// Only records whose byte in this file is nonzero may be returned: one byte per record,
    /// in row order (`filtered.py --export` writes these as `mask-<selectivity>.u8`).
    #[arg(long)]
    pub allow: Option<PathBuf>,
    /// How a search with --allow is answered (graph indexes; the others ignore it).
    #[arg(long, value_enum, default_value_t = Strategy::Auto, requires = "allow")]
    pub filter_strategy: Strategy,
    /// Print JSON lines (param, recall, qps, qps_batch, p50_us, p99_us) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Threads for the batch mode (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// How to bring the index into memory.
    #[arg(long, value_enum, default_value_t = Load::Ram)]
    pub load: Load,
    /// Repeat each timed pass until this many seconds have passed (best pass is kept).
    #[arg(long, default_value_t = 1.0)]
    pub min_time: f64,
    /// At most this many timed passes per mode.
    #[arg(long, default_value_t = 5)]
    pub max_repeat: usize,
    #[command(flatten)]
    pub disk: disk::DiskOptions,
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
    pub kind: neardb::gen::DataKind,
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
    pub metric: neardb::Metric,
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
    pub metric: neardb::Metric,
    /// Working directory for the dataset and index.
    #[arg(long, default_value = "target/neardb-demo")]
    pub dir: PathBuf,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Directory of the collections (created if missing).
    #[arg(long)]
    pub data: PathBuf,
    /// Port to listen on.
    #[arg(long, default_value_t = 6333)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Require this key (`api-key` header or `Authorization: Bearer`) on every request.
    #[arg(long)]
    pub api_key: Option<String>,
    /// A key that may read but not write.
    #[arg(long)]
    pub read_only_key: Option<String>,
    /// Largest request body, MiB.
    #[arg(long, default_value_t = 64)]
    pub max_body_mb: usize,
    /// Most points (or searches) in one request.
    #[arg(long, default_value_t = 10_000)]
    pub max_batch: usize,
    /// Longest a request may take, seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_s: u64,
    /// Uncommitted records after which a collection builds its index in the background.
    #[arg(long, default_value_t = 50_000)]
    pub commit_rows: u64,
    /// Unnamed versions kept after a background commit (named ones are always kept).
    #[arg(long, default_value_t = 2)]
    pub keep_versions: usize,
    /// Deleted or replaced fraction of committed rows past which a background commit compacts.
    #[arg(long, default_value_t = 0.2)]
    pub compact_deleted: f64,
}

/// How a filtered search is answered (`--filter-strategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// The planner's cost model chooses.
    #[default]
    Auto,
    /// An exact scan of the allowed records.
    Scan,
    /// The graph walk, keeping the allowed nodes as results.
    Walk,
    /// A graph walk that scores allowed nodes only, looking two hops through the rest.
    TwoHop,
}

impl From<Strategy> for neardb::FilterStrategy {
    fn from(s: Strategy) -> Self {
        match s {
            Strategy::Auto => Self::Auto,
            Strategy::Scan => Self::Scan,
            Strategy::Walk => Self::Walk,
            Strategy::TwoHop => Self::TwoHop,
        }
    }
}

/// How an index file is brought into memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Load {
    /// Read into huge-page memory.
    Ram,
    /// Map the file in place.
    Mmap,
}

/// Opens an index file the way `how` says.
pub fn open_index(path: &std::path::Path, how: Load) -> CliResult<neardb::AnyIndex> {
    Ok(match how {
        Load::Mmap => neardb::open(path)?,
        Load::Ram => neardb::load(path)?,
    })
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
        Command::Relayout(a) => disk::relayout(a),
        Command::Gen(a) => commands::gen(a),
        Command::Demo(a) => commands::demo(a),
        Command::Corpus(a) => text::corpus(a),
        Command::Embed(a) => text::embed(a),
        Command::ModelF16(a) => text::model_f16(a),
        Command::Relevance(a) => text::relevance(a),
        Command::Peer(p) => peer::run(p),
        Command::Collection(c) => collection::run(c),
        Command::Serve(a) => {
            let config = neardb_server::ServeConfig {
                addr: std::net::SocketAddr::new(a.host, a.port),
                api_key: a.api_key,
                read_only_key: a.read_only_key,
                max_body_bytes: a.max_body_mb << 20,
                max_batch: a.max_batch,
                timeout: std::time::Duration::from_secs(a.timeout_s),
                commit_rows: a.commit_rows,
                keep_versions: a.keep_versions,
                compact_deleted: a.compact_deleted,
                ..neardb_server::ServeConfig::new(a.data)
            };
            neardb_server::serve_blocking(config).map_err(Into::into)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
