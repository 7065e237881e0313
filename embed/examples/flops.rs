//! How close the encoder runs to the machine's FMA peak: embeds a JSON-lines text field in
//! batches on every core (as `neardb embed` does), counts the tokens the encoder saw, and
//! turns them into GFLOP/s with the encoder's FLOP count per token.
//!
//! `cargo run --release -p neardb-embed --example flops -- FILE.jsonl [field] [max_tokens] [batch]`

#[cfg(not(target_arch = "wasm32"))]
use std::time::Instant;

/// Reads files and spawns threads: native only.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: flops FILE.jsonl [field] [max_tokens] [batch]")?;
    let field = args.next().unwrap_or_else(|| "text".into());
    let max_tokens: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(256);
    let batch: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
    let texts: Vec<String> = std::fs::read_to_string(&path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
            let v: serde_json::Value = serde_json::from_str(l)?;
            Ok(v.get(&field).and_then(|x| x.as_str()).ok_or("line without the field")?.to_string())
        })
        .collect::<Result<_, _>>()?;
    let mut embedder = neardb_embed::Embedder::from_dir(&neardb_embed::default_model_dir())?;
    embedder.set_max_tokens(max_tokens)?;
    let tokens: Vec<usize> = texts.iter().map(|t| embedder.tokens(t)).collect::<Result<_, _>>()?;
    // Per token and layer: Q, K, V and output (4 · h²), the feed-forward (2 · h · 4h),
    // attention over the text's own tokens (2 · len · h); two FLOPs per multiply-add.
    let (h, layers) = (384.0f64, 6.0);
    let flops: f64 = tokens
        .iter()
        .map(|&l| {
            let l = l as f64;
            2.0 * layers * l * (4.0 * h * h + 8.0 * h * h + 2.0 * l * h)
        })
        .sum();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let chunks: Vec<&[&str]> = refs.chunks(batch.max(1)).collect();
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else { return };
                if let Err(e) = embedder.embed(chunk) {
                    eprintln!("batch {i}: {e}");
                    return;
                }
            });
        }
    });
    let secs = t.elapsed().as_secs_f64();
    let total: usize = tokens.iter().sum();
    println!(
        "{} texts, {total} tokens ({:.1} per text), {threads} threads: {:.1} s, {:.0} texts/s, {:.1} GFLOP/s",
        texts.len(),
        total as f64 / texts.len() as f64,
        secs,
        texts.len() as f64 / secs,
        flops / secs / 1e9
    );
    Ok(())
}
