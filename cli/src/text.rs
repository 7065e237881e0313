//! Text commands for the semantic-search demo: `neardb corpus` turns Debian's package
//! descriptions into a JSON-lines corpus, and `neardb embed` turns a JSON-lines field into
//! sentence embeddings (all-MiniLM-L6-v2, `neardb-embed`).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use neardb::io::FvecsWriter;

use crate::CliResult;

/// `neardb corpus`.
#[derive(Args, Debug)]
pub struct CorpusArgs {
    /// Debian `Translation-en` files, uncompressed (e.g. from `/usr/lib/apt/apt-helper
    /// cat-file`). Earlier files win when a package appears twice.
    #[arg(long = "translations", required = true, num_args = 1..)]
    pub translations: Vec<PathBuf>,
    /// Output, one JSON object per line: `{"name", "short", "long", "text"}`.
    #[arg(long)]
    pub output: PathBuf,
    /// Also write the list a web page shows: a JSON array of `{name, short, long}` in the
    /// same order (the index's ids), long descriptions cut at 300 characters.
    #[arg(long)]
    pub docs_json: Option<PathBuf>,
    /// Keep every Nth package only (1 = all): a smaller corpus for quick tests.
    #[arg(long, default_value_t = 1)]
    pub every: usize,
}

/// What the web page shows of a package.
#[derive(serde::Serialize)]
struct Shown<'a> {
    name: &'a str,
    short: &'a str,
    long: String,
}

/// One package description.
#[derive(serde::Serialize, Debug, PartialEq)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// The one-line synopsis.
    pub short: String,
    /// The long description, paragraphs separated by blank lines.
    pub long: String,
    /// What gets embedded: name, synopsis and long description.
    pub text: String,
}

/// Parses the `Package:` / `Description-en:` stanzas of a Translation file.
pub fn parse_translations(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut short = None;
        let mut long: Vec<String> = Vec::new();
        let mut in_description = false;
        for line in stanza.lines() {
            if let Some(rest) = line.strip_prefix("Package:") {
                name = Some(rest.trim().to_string());
                in_description = false;
            } else if let Some(rest) = line.strip_prefix("Description-en:") {
                short = Some(rest.trim().to_string());
                in_description = true;
            } else if in_description && line.starts_with(' ') {
                let l = line.trim();
                long.push(if l == "." { String::new() } else { l.to_string() });
            } else {
                in_description = false;
            }
        }
        if let (Some(name), Some(short)) = (name, short) {
            // Lines of a paragraph join with spaces; " ." lines separate paragraphs.
            let long = long
                .split(|l| l.is_empty())
                .map(|p| p.join(" "))
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n");
            let text =
                if long.is_empty() { format!("{name}: {short}") } else { format!("{name}: {short}. {long}") };
            out.push(Package { name, short, long, text });
        }
    }
    out
}

pub fn corpus(a: CorpusArgs) -> CliResult {
    if a.every == 0 {
        return Err("--every must be at least 1".into());
    }
    let mut seen_names = HashSet::new();
    let mut seen_texts = HashSet::new();
    let (mut total, mut unique) = (0usize, 0usize);
    let mut kept = Vec::new();
    for path in &a.translations {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for p in parse_translations(&text) {
            total += 1;
            // One entry per package, and one per description: `foo` and `foo-dbgsym`-style
            // twins with word-for-word the same text would fill result lists with duplicates.
            if !seen_names.insert(p.name.clone()) || !seen_texts.insert((p.short.clone(), p.long.clone())) {
                continue;
            }
            if unique % a.every == 0 {
                kept.push(p);
            }
            unique += 1;
        }
    }
    let file = std::fs::File::create(&a.output).map_err(|e| format!("{}: {e}", a.output.display()))?;
    let mut w = BufWriter::new(file);
    for p in &kept {
        serde_json::to_writer(&mut w, p)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    if let Some(path) = &a.docs_json {
        let shown: Vec<Shown<'_>> = kept
            .iter()
            .map(|p| Shown { name: &p.name, short: &p.short, long: p.long.chars().take(300).collect() })
            .collect();
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut w = BufWriter::new(file);
        serde_json::to_writer(&mut w, &shown)?;
        w.flush()?;
    }
    let kept = kept.len();
    eprintln!("{unique} unique packages of {total} descriptions, {kept} kept; wrote {}", a.output.display());
    Ok(())
}

/// `neardb embed`.
#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// JSON-lines input.
    #[arg(long)]
    pub input: PathBuf,
    /// The string field of each line to embed.
    #[arg(long, default_value = "text")]
    pub field: String,
    /// Output vectors (.fvecs), one per input line, in order.
    #[arg(long)]
    pub output: PathBuf,
    /// Folder with model.safetensors, tokenizer.json and config.json (default: the cache
    /// folder scripts/fetch-model.sh fills).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Texts per model call.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Worker threads, each embedding its own batches (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Truncate texts at this many tokens (the model reads at most 256; the encoder's cost
    /// grows with it).
    #[arg(long, default_value_t = neardb_embed::MAX_TOKENS)]
    pub max_tokens: usize,
}

/// `neardb model-f16`.
#[derive(Args, Debug)]
pub struct ModelF16Args {
    /// A safetensors file (f32 weights).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the same tensors in f16.
    #[arg(long)]
    pub output: PathBuf,
}

pub fn model_f16(a: ModelF16Args) -> CliResult {
    let bytes = std::fs::read(&a.input).map_err(|e| format!("{}: {e}", a.input.display()))?;
    neardb_embed::save_f16(&bytes, &a.output)?;
    let out = std::fs::metadata(&a.output)?.len();
    eprintln!("{} bytes -> {out} bytes; wrote {}", bytes.len(), a.output.display());
    Ok(())
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn read_field(path: &Path, field: &str) -> CliResult<Vec<String>> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let at = || format!("{}:{}", path.display(), i + 1);
        // Invalid UTF-8 is named by its line like any other bad input.
        let line = line.map_err(|e| format!("{}: {e}", at()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("{}: {e}", at()))?;
        match v.get(field) {
            Some(serde_json::Value::String(s)) => out.push(s.clone()),
            Some(other) => {
                return Err(format!("{}: field {field:?} is {}, not a string", at(), json_kind(other)).into())
            }
            None => return Err(format!("{}: no string field {field:?}", at()).into()),
        }
    }
    Ok(out)
}

/// Embeds `texts` in batches of `batch` on every worker, returning the vectors in input order
/// (row-major). `done(n)` is called as batches finish.
pub fn embed_in_batches(
    embedder: &neardb_embed::Embedder,
    texts: &[&str],
    batch: usize,
    done: &(dyn Fn(u64) + Sync),
) -> CliResult<Vec<f32>> {
    use rayon::prelude::*;
    // A batch costs as much as its longest text times its size (shorter ones are padded), so
    // texts are batched in order of length and the vectors put back in input order after.
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    // Batches run on every worker at once; results come back in batch order.
    let batches: Vec<Vec<f32>> = order
        .par_chunks(batch.max(1))
        .map(|chunk| {
            let refs: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let v = embedder.embed(&refs);
            done(chunk.len() as u64);
            v
        })
        .collect::<Result<_, _>>()?;
    let dim = neardb_embed::DIM;
    let mut vectors = vec![0f32; texts.len() * dim];
    for (&i, v) in order.iter().zip(batches.iter().flat_map(|b| b.chunks_exact(dim))) {
        vectors[i * dim..(i + 1) * dim].copy_from_slice(v);
    }
    Ok(vectors)
}

pub fn embed(a: EmbedArgs) -> CliResult {
    if a.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    crate::set_threads(a.threads)?;
    let texts = read_field(&a.input, &a.field)?;
    let dir = a.model.unwrap_or_else(neardb_embed::default_model_dir);
    let mut embedder = neardb_embed::Embedder::from_dir(&dir).map_err(|e| {
        format!("loading the model from {}: {e} (scripts/fetch-model.sh fetches it)", dir.display())
    })?;
    embedder.set_max_tokens(a.max_tokens)?;
    let bar = indicatif::ProgressBar::new(texts.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} texts, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let t0 = Instant::now();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = embed_in_batches(&embedder, &refs, a.batch, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let dim = neardb_embed::DIM;
    let mut w = FvecsWriter::create(&a.output, dim)?;
    w.write(&vectors)?;
    w.finish()?;
    eprintln!(
        "embedded {} texts in {secs:.1} s ({:.0} texts/s); wrote {}",
        texts.len(),
        texts.len() as f64 / secs.max(1e-9),
        a.output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_stanzas_parse_into_packages() {
        let text = "Package: 0ad\nDescription-md5: d9\nDescription-en: Real-time strategy game\n 0 A.D. is a free\n game.\n .\n Second paragraph.\n\nPackage: nodesc\nDescription-md5: aa\n\nPackage: mpg123\nDescription-en: console MPEG audio player\n";
        let p = parse_translations(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "0ad");
        assert_eq!(p[0].short, "Real-time strategy game");
        assert_eq!(p[0].long, "0 A.D. is a free game.\n\nSecond paragraph.");
        assert_eq!(p[0].text, "0ad: Real-time strategy game. 0 A.D. is a free game.\n\nSecond paragraph.");
        assert_eq!(p[1].text, "mpg123: console MPEG audio player");
    }
}

/// `neardb relevance`.
#[derive(Args, Debug)]
pub struct RelevanceArgs {
    /// The corpus (`neardb corpus` output), in index order.
    #[arg(long)]
    pub docs: PathBuf,
    /// Its vectors (`neardb embed` output): exact search runs over them.
    #[arg(long)]
    pub vectors: PathBuf,
    /// The HNSW index built from them.
    #[arg(long)]
    pub index: PathBuf,
    /// JSON array of `{"query": text, "expect": [package names a person would accept]}`.
    #[arg(long)]
    pub queries: PathBuf,
    /// Model folder (default: the cache folder scripts/fetch-model.sh fills).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// HNSW search effort.
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
}

#[derive(serde::Deserialize)]
struct RelevanceQuery {
    query: String,
    expect: Vec<String>,
}

/// Hand-written queries against the demo corpus: recall@10 of the HNSW index against exact
/// search over the same vectors, and how often the packages a person expects come up.
pub fn relevance(a: RelevanceArgs) -> CliResult {
    use neardb::{FlatIndex, Metric, SearchParams, VectorSearch};
    let names = read_field(&a.docs, "name")?;
    let (vectors, dim) = neardb::io::read_f32_vectors(&a.vectors)?;
    if vectors.len() / dim.max(1) != names.len() {
        return Err(format!("{} docs but {} vectors", names.len(), vectors.len() / dim.max(1)).into());
    }
    let mut flat = FlatIndex::new(dim, Metric::Cosine)?;
    flat.add(&vectors)?;
    let index = neardb::open(&a.index)?;
    if index.info().count != names.len() as u64 {
        return Err(format!("{} docs but the index holds {} vectors", names.len(), index.info().count).into());
    }
    let queries: Vec<RelevanceQuery> = serde_json::from_slice(&std::fs::read(&a.queries)?)?;
    let dir = a.model.unwrap_or_else(neardb_embed::default_model_dir);
    let embedder = neardb_embed::Embedder::from_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let k = 10;
    let params = SearchParams::new().with_ef(a.ef);
    let (mut recall_sum, mut hits, mut expected_found, mut expected_total) = (0.0, 0usize, 0usize, 0usize);
    println!("{:<44} {:>6} {:>5}  top 3 (HNSW)", "query", "recall", "hits");
    for q in &queries {
        let v = embedder.embed(&[q.query.as_str()])?;
        let exact = flat.search(&v, k, &SearchParams::new(), None)?;
        let approx = index.search(&v, k, &params, None)?;
        let exact_ids: HashSet<u32> = exact.iter().map(|n| n.id).collect();
        let recall = approx.iter().filter(|n| exact_ids.contains(&n.id)).count() as f64 / k as f64;
        let found: Vec<&str> = approx.iter().map(|n| names[n.id as usize].as_str()).collect();
        let matched = q.expect.iter().filter(|e| found.contains(&e.as_str())).count();
        recall_sum += recall;
        hits += usize::from(matched > 0);
        expected_found += matched;
        expected_total += q.expect.len();
        println!(
            "{:<44} {recall:>6.2} {matched:>2}/{:<2}  {}",
            q.query,
            q.expect.len(),
            found[..3.min(found.len())].join(", ")
        );
    }
    let n = queries.len().max(1) as f64;
    println!(
        "{}",
        serde_json::json!({
            "queries": queries.len(),
            "ef": a.ef,
            "recall_at_10_hnsw_vs_exact": recall_sum / n,
            "queries_with_an_expected_package_in_top10": hits as f64 / n,
            "expected_packages_found": expected_found as f64 / expected_total.max(1) as f64,
        })
    );
    Ok(())
}
