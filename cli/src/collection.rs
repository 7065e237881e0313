//! `neardb collection …`: create, load, query, version and maintain a durable collection from
//! the command line (`neardb::collection` does the work), plus the timings BENCHMARKS.md
//! reports (ingest rate, single-record upsert latency, filtered search QPS at recall, reopen
//! and version-open times).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use neardb::collection::{
    parse_filter, Collection, CollectionConfig, CollectionSearchStats, Durability, Hit, OpenOptions, Record,
    RecordId, SearchOptions,
};
use neardb::io::{read_f32_vectors, read_ivecs};
use neardb::payload::PayloadFilter;
use neardb::{FilterStrategy, Metric, SearchParams};
use serde_json::{json, Value};

use crate::commands::progress;
use crate::{CliResult, Strategy};

#[derive(Subcommand)]
pub enum CollectionCommand {
    /// Create an empty collection in a directory.
    Create(CreateArgs),
    /// Insert or replace records from a JSON-lines file: {"id", "vector", "metadata"} per line.
    Upsert(UpsertArgs),
    /// Print records by id as JSON lines.
    Get(IdsArgs),
    /// Delete records by id, or every record matching a filter.
    Delete(DeleteArgs),
    /// Search with a file of query vectors, optionally filtered; with --truth, recall and QPS.
    Search(SearchArgs),
    /// Make the current state a version (recent records become a segment).
    Commit(CommitArgs),
    /// List the kept versions (with --time, how long each takes to open).
    Versions(VersionsArgs),
    /// Rewrite every live record into one segment, as a new version.
    Compact(CommitArgs),
    /// Keep the newest N versions (and named ones) and delete the files no other needs.
    Retain(RetainArgs),
    /// Pairs of records closer than a threshold.
    Duplicates(DuplicatesArgs),
    /// Open a collection and report what recovery found, its size and the time it took.
    Info(DirArg),
}

#[derive(Args)]
pub struct DirArg {
    /// The collection's directory.
    #[arg(long)]
    pub dir: PathBuf,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Vector dimension.
    #[arg(long)]
    pub dim: usize,
    /// Distance metric: l2, cosine, ip or l1.
    #[arg(long)]
    pub metric: Metric,
    /// Index options of segments as KEY=VALUE (index=hnsw|vamana|flat, m, ef_construction,
    /// quantize=none|f16|sq8|sq8+f16, …); default hnsw, m 16, ef_construction 200.
    #[arg(long = "opt", value_parser = parse_opt)]
    pub options: Vec<(String, String)>,
}

fn parse_opt(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DurabilityArg {
    /// fdatasync before each acknowledgement (the default).
    Sync,
    /// fdatasync every 64 MiB of log, and at commit.
    Batch,
    /// Only commits sync.
    None,
}

#[derive(Args)]
pub struct UpsertArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// JSON-lines records ("-" for stdin).
    #[arg(long)]
    pub records: PathBuf,
    /// Records per upsert call (one log frame, one sync each under --durability sync).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// When an acknowledged write is on disk.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Sync)]
    pub durability: DurabilityArg,
    /// Records given without a vector get one by embedding this string field of their
    /// metadata with all-MiniLM-L6-v2 (`neardb embed`'s model; 384 dimensions, cosine).
    #[arg(long)]
    pub embed: Option<String>,
    /// Folder of the model for --embed (default: the cache scripts/fetch-model.sh fills).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Threads calling upsert at once (each batch still waits for its own sync; concurrent
    /// writers share syncs — group commit).
    #[arg(long, default_value_t = 1)]
    pub writers: usize,
    /// Commit after loading (as a version with this name, or unnamed with "-").
    #[arg(long)]
    pub commit: Option<String>,
    /// Print the timing as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct IdsArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Record ids (a whole number is a numeric id; anything else a string id).
    #[arg(long = "id", required = true)]
    pub ids: Vec<String>,
}

#[derive(Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Record ids to delete.
    #[arg(long = "id")]
    pub ids: Vec<String>,
    /// Delete every record matching this filter (Qdrant's JSON syntax).
    #[arg(long, conflicts_with = "ids")]
    pub filter: Option<String>,
}

#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Query vectors (.fvecs, .npy, …).
    #[arg(long)]
    pub queries: PathBuf,
    /// Results per query.
    #[arg(short = 'k', long = "k", default_value_t = 10)]
    pub k: usize,
    /// A filter in Qdrant's JSON syntax, or @FILE to read it from a file.
    #[arg(long)]
    pub filter: Option<String>,
    /// Candidate-list sizes to sweep (with --truth), or the one to use.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub ef: Vec<usize>,
    /// How filtered searches are answered in each segment.
    #[arg(long, value_enum, default_value_t = Strategy::Auto)]
    pub filter_strategy: Strategy,
    /// Ground truth .ivecs of numeric ids: report recall@k and single-thread QPS per ef.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Search this version (number or name) instead of the current state.
    #[arg(long)]
    pub version: Option<String>,
    /// Print metadata with each hit.
    #[arg(long)]
    pub with_metadata: bool,
    /// With --truth, also the throughput of this many threads searching at once (each query
    /// set searched five times over, best of three).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Args)]
pub struct CommitArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// A name for the version (e.g. a git commit id).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args)]
pub struct VersionsArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Also open each version and report the time it took.
    #[arg(long)]
    pub time: bool,
}

#[derive(Args)]
pub struct RetainArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Versions to keep, newest first.
    #[arg(long)]
    pub last: usize,
    /// Also keep every named version.
    #[arg(long)]
    pub keep_named: bool,
}

#[derive(Args)]
pub struct DuplicatesArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Report pairs whose distance is below this.
    #[arg(long)]
    pub threshold: f32,
    /// Neighbours examined per record.
    #[arg(short = 'k', long = "k", default_value_t = 10)]
    pub k: usize,
}

/// Opens a collection for one command: no background indexing of the recent records (the
/// process ends before a graph would pay off; a commit builds the index on every thread).
fn open_once(dir: &Path, durability: Durability) -> Result<Collection, neardb::collection::CollectionError> {
    Collection::open_with_options(
        dir,
        OpenOptions { durability, index_recent: false, ..OpenOptions::default() },
    )
}

pub fn run(command: CollectionCommand) -> CliResult {
    match command {
        CollectionCommand::Create(a) => create(a),
        CollectionCommand::Upsert(a) => upsert(a),
        CollectionCommand::Get(a) => get(a),
        CollectionCommand::Delete(a) => delete(a),
        CollectionCommand::Search(a) => search(a),
        CollectionCommand::Commit(a) => {
            let c = open_once(&a.dir.dir, Durability::Sync)?;
            let v = working(&format!("committing {} records", c.uncommitted_rows()), || {
                c.commit(a.name.as_deref())
            })?;
            println!("version {} ({} records, {} segments)", v.version, v.records, v.segments);
            Ok(())
        }
        CollectionCommand::Versions(a) => versions(a),
        CollectionCommand::Compact(a) => {
            let c = open_once(&a.dir.dir, Durability::Sync)?;
            let t = Instant::now();
            let v = working(&format!("compacting {} records", c.len()), || c.compact(a.name.as_deref()))?;
            println!(
                "version {}: {} records in one segment, {:.2} s",
                v.version,
                v.records,
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        CollectionCommand::Retain(a) => {
            let c = open_once(&a.dir.dir, Durability::Sync)?;
            let released = c.retain(a.last, a.keep_named)?;
            println!("released versions {released:?}");
            Ok(())
        }
        CollectionCommand::Duplicates(a) => {
            let c = open_once(&a.dir.dir, Durability::Sync)?;
            for (x, y, d) in c.duplicates(a.threshold, a.k)? {
                println!("{}", json!({"a": id_json(&x), "b": id_json(&y), "distance": d}));
            }
            Ok(())
        }
        CollectionCommand::Info(a) => {
            let t = Instant::now();
            let c = open_once(&a.dir, Durability::Sync)?;
            let open_ms = t.elapsed().as_secs_f64() * 1e3;
            let r = c.recovery();
            println!(
                "{}",
                json!({
                    "records": c.len(), "dim": c.dim(), "metric": c.metric().to_string(),
                    "versions": c.versions().len(), "open_ms": open_ms,
                    "log_frames_replayed": r.frames, "log_changes_replayed": r.changes,
                    "torn_tail": r.torn.as_ref().map(|t| json!({"offset": t.offset, "dropped": t.dropped, "reason": t.reason})),
                })
            );
            Ok(())
        }
    }
}

fn create(a: CreateArgs) -> CliResult {
    let mut config = CollectionConfig::new(a.dim, a.metric);
    for (k, v) in &a.options {
        config = config.with_option(k, v);
    }
    Collection::create(&a.dir.dir, config)?;
    println!("created {} ({} dimensions, {})", a.dir.dir.display(), a.dim, a.metric);
    Ok(())
}

/// Runs long work with a spinner on stderr saying what it is and how long it has taken (the
/// library's commit reports no progress of its own; hidden when stderr is not a terminal).
fn working<T>(what: &str, work: impl FnOnce() -> T) -> T {
    let spinner = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        spinner.set_style(style);
    }
    spinner.set_message(what.to_owned());
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let out = work();
    spinner.finish_and_clear();
    out
}

/// An id from the command line: a whole number is numeric.
fn parse_id(s: &str) -> RecordId {
    s.parse::<u64>().map_or_else(|_| RecordId::Text(s.to_owned()), RecordId::Num)
}

fn id_json(id: &RecordId) -> Value {
    match id {
        RecordId::Num(n) => json!(n),
        RecordId::Text(s) => json!(s),
    }
}

/// Fills the vectors of records that have none by embedding `metadata[field]`.
fn embed_missing(records: &mut [Record], field: &str, model: Option<PathBuf>, dim: usize) -> CliResult {
    let missing: Vec<usize> = (0..records.len()).filter(|&i| records[i].vector.is_empty()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if dim != neardb_embed::DIM {
        return Err(format!(
            "--embed makes {}-dimensional vectors; the collection has {dim}",
            neardb_embed::DIM
        )
        .into());
    }
    let mut texts = Vec::with_capacity(missing.len());
    for &i in &missing {
        match records[i].metadata.get(field) {
            Some(Value::String(t)) => texts.push(t.clone()),
            _ => {
                return Err(format!(
                    "record {} has no vector and no string metadata field {field:?} to embed",
                    records[i].id
                )
                .into())
            }
        }
    }
    let dir = model.unwrap_or_else(neardb_embed::default_model_dir);
    let embedder = neardb_embed::Embedder::from_dir(&dir).map_err(|e| {
        format!("loading the model from {}: {e} (scripts/fetch-model.sh fetches it)", dir.display())
    })?;
    let bar = progress(texts.len() as u64, "embed");
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = crate::text::embed_in_batches(&embedder, &refs, 64, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    for (&i, v) in missing.iter().zip(vectors.chunks_exact(neardb_embed::DIM)) {
        records[i].vector = v.to_vec();
    }
    Ok(())
}

/// One JSON line as a record; `line` is 1-based for messages. Without `vector_optional`, a
/// line must carry its vector; with it, a missing vector is left empty (to be embedded).
fn record_from_json(text: &str, line: usize, vector_optional: bool) -> CliResult<Record> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("line {line}: not JSON: {e}"))?;
    let Value::Object(mut map) = v else { return Err(format!("line {line}: expected an object").into()) };
    let id = match map.remove("id") {
        Some(Value::Number(n)) => n.as_u64().map(RecordId::Num),
        Some(Value::String(s)) => Some(RecordId::Text(s)),
        _ => None,
    }
    .ok_or_else(|| format!("line {line}: \"id\" must be an unsigned integer or a string"))?;
    let vector = match map.remove("vector") {
        None if vector_optional => Vec::new(),
        Some(Value::Array(xs)) => xs
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| format!("line {line}: \"vector\" must hold only numbers"))?,
        _ => return Err(format!("line {line}: \"vector\" must be an array of numbers").into()),
    };
    let metadata = map.remove("metadata").unwrap_or(Value::Null);
    if let Some(k) = map.keys().next() {
        return Err(format!("line {line}: unknown field {k:?} (expected id, vector, metadata)").into());
    }
    Ok(Record { id, vector, metadata })
}

fn read_records(path: &Path, vector_optional: bool) -> CliResult<Vec<Record>> {
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?,
        ))
    };
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(record_from_json(&line, i + 1, vector_optional)?);
    }
    Ok(out)
}

fn upsert(a: UpsertArgs) -> CliResult {
    if a.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    let durability = match a.durability {
        DurabilityArg::Sync => Durability::Sync,
        DurabilityArg::Batch => Durability::Batch { bytes: 64 << 20 },
        DurabilityArg::None => Durability::None,
    };
    let c = open_once(&a.dir.dir, durability)?;
    let mut records = read_records(&a.records, a.embed.is_some())?;
    if let Some(field) = &a.embed {
        embed_missing(&mut records, field, a.model.clone(), c.dim())?;
    }
    let bar = progress(records.len() as u64, "upsert");
    if a.writers == 0 {
        return Err("--writers must be at least 1".into());
    }
    let batches: Vec<&[Record]> = records.chunks(a.batch).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let t = Instant::now();
    let per_writer: Vec<Result<Vec<f64>, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..a.writers)
            .map(|_| {
                scope.spawn(|| {
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(chunk) = batches.get(i) else { return Ok(lat) };
                        let t0 = Instant::now();
                        c.upsert(chunk).map_err(|e| e.to_string())?;
                        lat.push(t0.elapsed().as_secs_f64());
                        bar.inc(chunk.len() as u64);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a writer thread panicked".into())))
            .collect()
    });
    let secs = t.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(batches.len());
    for w in per_writer {
        latencies.extend(w?);
    }
    bar.finish_and_clear();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let mut report = json!({
        "records": records.len(), "batch": a.batch, "writers": a.writers, "durability": format!("{:?}", a.durability).to_lowercase(),
        "seconds": secs, "records_per_s": records.len() as f64 / secs.max(1e-12),
        "batch_p50_ms": pct(0.5) * 1e3, "batch_p99_ms": pct(0.99) * 1e3,
    });
    if let Some(name) = &a.commit {
        let t = Instant::now();
        let v = working("committing", || c.commit(if name == "-" { None } else { Some(name.as_str()) }))?;
        report["commit_s"] = json!(t.elapsed().as_secs_f64());
        report["version"] = json!(v.version);
    }
    if a.json {
        println!("{report}");
    } else {
        println!(
            "{} records in {secs:.2} s ({:.0}/s, batches of {}; p50 {:.3} ms, p99 {:.3} ms per batch){}",
            records.len(),
            records.len() as f64 / secs.max(1e-12),
            a.batch,
            pct(0.5) * 1e3,
            pct(0.99) * 1e3,
            report.get("commit_s").map_or(String::new(), |s| format!("; committed in {s:.2} s"))
        );
    }
    Ok(())
}

fn get(a: IdsArgs) -> CliResult {
    let c = open_once(&a.dir.dir, Durability::Sync)?;
    let mut out = std::io::stdout().lock();
    for id in a.ids.iter().map(|s| parse_id(s)) {
        match c.get(&id)? {
            Some(r) => writeln!(
                out,
                "{}",
                json!({"id": id_json(&r.id), "vector": r.vector, "metadata": r.metadata})
            )?,
            None => return Err(format!("no record has id {id}").into()),
        }
    }
    Ok(())
}

fn delete(a: DeleteArgs) -> CliResult {
    let c = open_once(&a.dir.dir, Durability::Sync)?;
    let ids: Vec<RecordId> = match &a.filter {
        Some(f) => {
            let filter = read_filter(f)?;
            // Every match: a search of k = all would rank; the ids are what is needed.
            let n = c.count(Some(&filter))?;
            if n == 0 {
                println!("no record matches");
                return Ok(());
            }
            c.ids_matching(&filter)?
        }
        None => a.ids.iter().map(|s| parse_id(s)).collect(),
    };
    if ids.is_empty() {
        return Err("give --id or --filter".into());
    }
    c.delete(&ids)?;
    println!("deleted {} records", ids.len());
    Ok(())
}

/// A filter given inline or as @FILE.
fn read_filter(arg: &str) -> CliResult<PayloadFilter> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("--filter {path}: {e}"))?,
        None => arg.to_owned(),
    };
    Ok(parse_filter(&text)?)
}

fn search(a: SearchArgs) -> CliResult {
    let c = open_once(&a.dir.dir, Durability::Sync)?;
    let snapshot = a.version.as_deref().map(|v| c.version(v)).transpose()?;
    let (queries, dim) = read_f32_vectors(&a.queries)?;
    if dim != c.dim() {
        return Err(format!("queries have {dim} dimensions, the collection has {}", c.dim()).into());
    }
    let filter = a.filter.as_deref().map(read_filter).transpose()?;
    let strategy: FilterStrategy = a.filter_strategy.into();
    // One search, of the version or of the collection (which also says what it did).
    let run =
        |q: &[f32], ef: usize, with_metadata: bool| -> CliResult<(Vec<Hit>, Option<CollectionSearchStats>)> {
            let options = SearchOptions {
                filter: filter.as_ref(),
                params: SearchParams::new().with_ef(ef).with_filter_strategy(strategy),
                with_metadata,
                with_vector: false,
            };
            Ok(match &snapshot {
                Some(s) => (s.search(q, a.k, &options)?, None),
                None => {
                    let (hits, stats) = c.search_with_stats(q, a.k, &options)?;
                    (hits, Some(stats))
                }
            })
        };
    let Some(truth_path) = &a.truth else {
        let ef = a.ef.first().copied().unwrap_or(64);
        let mut out = std::io::stdout().lock();
        for (i, q) in queries.chunks_exact(dim).enumerate() {
            let (hits, _) = run(q, ef, a.with_metadata)?;
            let ids: Vec<Value> = hits.iter().map(|h| id_json(&h.id)).collect();
            let d: Vec<f32> = hits.iter().map(|h| h.distance).collect();
            let mut row = json!({"query": i, "ids": ids, "distances": d});
            if a.with_metadata {
                row["metadata"] = hits.iter().map(|h| h.metadata.clone().unwrap_or(Value::Null)).collect();
            }
            writeln!(out, "{row}")?;
        }
        return Ok(());
    };
    let (truth, tdim) = read_ivecs(truth_path)?;
    let nq = queries.len() / dim;
    if truth.len() / tdim.max(1) < nq || tdim < a.k {
        return Err(format!(
            "{} has too few rows or columns for {nq} queries and k = {}",
            truth_path.display(),
            a.k
        )
        .into());
    }
    let threads = a.threads.max(1);
    let many = format!("qps({threads}t)");
    println!(
        "{:>6} {:>8} {:>10} {:>9} {:>9} {:>10}  plans",
        "ef",
        "recall",
        "qps(1t)",
        "p50 µs",
        "p99 µs",
        if threads > 1 { many.as_str() } else { "" }
    );
    for &ef in &a.ef {
        // One pass for recall and plans, then the best of three timed passes.
        let mut hit = 0usize;
        let mut owed = 0usize;
        let mut plans = std::collections::BTreeMap::<&str, usize>::new();
        for (i, q) in queries.chunks_exact(dim).enumerate() {
            let (hits, stats) = run(q, ef, false)?;
            for p in stats.iter().flat_map(|s| &s.parts) {
                *plans.entry(p.plan.name()).or_default() += 1;
            }
            let want: Vec<i32> =
                truth[i * tdim..i * tdim + a.k].iter().copied().filter(|&t| t >= 0).collect();
            owed += want.len();
            hit += hits
                .iter()
                .filter(|h| matches!(h.id, RecordId::Num(n) if want.contains(&(n as i32))))
                .count();
        }
        let mut best = f64::INFINITY;
        let mut lat = Vec::new();
        for _ in 0..3 {
            let mut times = Vec::with_capacity(nq);
            let t = Instant::now();
            for q in queries.chunks_exact(dim) {
                let t0 = Instant::now();
                run(q, ef, false)?;
                times.push(t0.elapsed().as_secs_f64());
            }
            let total = t.elapsed().as_secs_f64();
            if total < best {
                best = total;
                lat = times;
            }
        }
        lat.sort_by(f64::total_cmp);
        let p = |x: f64| lat[((lat.len() as f64 * x) as usize).min(lat.len() - 1)] * 1e6;
        let together = if threads > 1 {
            let mut best = f64::INFINITY;
            let work = nq * 5;
            for _ in 0..3 {
                let next = std::sync::atomic::AtomicUsize::new(0);
                let t = Instant::now();
                let failed = std::thread::scope(|scope| {
                    let workers: Vec<_> = (0..threads)
                        .map(|_| {
                            scope.spawn(|| loop {
                                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                if i >= work {
                                    return false;
                                }
                                let q = &queries[(i % nq) * dim..(i % nq + 1) * dim];
                                if run(q, ef, false).is_err() {
                                    return true;
                                }
                            })
                        })
                        .collect();
                    workers.into_iter().any(|w| w.join().unwrap_or(true))
                });
                if failed {
                    return Err("a search failed on a worker thread".into());
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            format!("{:.1}", work as f64 / best)
        } else {
            String::new()
        };
        println!(
            "{ef:>6} {:>8.4} {:>10.1} {:>9.1} {:>9.1} {together:>10}  {plans:?}",
            hit as f64 / owed.max(1) as f64,
            nq as f64 / best,
            p(0.5),
            p(0.99)
        );
    }
    Ok(())
}

fn versions(a: VersionsArgs) -> CliResult {
    let c = open_once(&a.dir.dir, Durability::Sync)?;
    for v in c.versions() {
        let mut row = json!({
            "version": v.version, "name": v.name, "committed_unix_ms": v.committed_unix_ms,
            "records": v.records, "segments": v.segments,
        });
        if a.time {
            let t = Instant::now();
            let snapshot = c.version(&v.version.to_string())?;
            row["open_ms"] = json!(t.elapsed().as_secs_f64() * 1e3);
            row["records_seen"] = json!(snapshot.len());
        }
        println!("{row}");
    }
    Ok(())
}
