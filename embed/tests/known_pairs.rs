//! The model against known similarities (sentence-transformers' values for all-MiniLM-L6-v2),
//! natively. Needs the model: `scripts/fetch-model.sh` puts it in the cache folder this test
//! reads (`NEARDB_MODEL_DIR`, default `$XDG_CACHE_HOME/neardb/minilm` or `~/.cache/...`).
#![cfg(not(target_arch = "wasm32"))]

use neardb_embed::{cosine, default_model_dir, Embedder, DIM};

#[test]
fn known_pairs_and_unit_length() {
    let dir = default_model_dir();
    let embedder = Embedder::from_dir(&dir)
        .unwrap_or_else(|e| panic!("model not found in {} ({e}); run scripts/fetch-model.sh", dir.display()));
    let v = embedder
        .embed(&["a cat sits on the mat", "a kitten is sitting on a rug", "stock markets fell today", ""])
        .unwrap();
    assert_eq!(v.len(), 4 * DIM);
    let row = |i: usize| &v[i * DIM..(i + 1) * DIM];
    for i in 0..4 {
        let norm: f32 = row(i).iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "row {i} has norm {norm}");
    }
    let kitten = cosine(row(0), row(1));
    let stocks = cosine(row(0), row(2));
    assert!((kitten - 0.69).abs() < 0.02, "cat/kitten {kitten}");
    assert!((stocks - 0.07).abs() < 0.05, "cat/stocks {stocks}");
    // Batching and padding change nothing: a text alone equals the same text in a batch.
    let alone = embedder.embed(&["a kitten is sitting on a rug"]).unwrap();
    assert!(cosine(&alone, row(1)) > 0.99999, "batch vs alone {}", cosine(&alone, row(1)));
}
