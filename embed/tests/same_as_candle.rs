//! The encoder against the candle implementation it replaced (kept as a dev-dependency for
//! this): the same vectors, to cosine ≥ 0.99999, on texts that stress tokenizing and length;
//! and a vector does not depend on the batch it is embedded in. Needs the model
//! (`scripts/fetch-model.sh`).
#![cfg(not(target_arch = "wasm32"))]

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use neardb_embed::{cosine, default_model_dir, Embedder, DIM};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The previous implementation, as it was: padded batches, the attention mask, masked mean.
fn candle_vectors(dir: &std::path::Path, texts: &[&str]) -> Vec<f32> {
    let config: Config = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    let device = Device::Cpu;
    let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device).unwrap();
    let model = BertModel::load(vb, &config).unwrap();
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer
        .with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
    tokenizer.with_truncation(Some(TruncationParams { max_length: 256, ..Default::default() })).unwrap();
    let enc = tokenizer.encode_batch(texts.to_vec(), true).unwrap();
    let (n, len) = (enc.len(), enc[0].get_ids().len());
    let ids: Vec<u32> = enc.iter().flat_map(|e| e.get_ids().to_vec()).collect();
    let mask: Vec<u32> = enc.iter().flat_map(|e| e.get_attention_mask().to_vec()).collect();
    let ids = Tensor::from_vec(ids, (n, len), &device).unwrap();
    let mask = Tensor::from_vec(mask, (n, len), &device).unwrap();
    let hidden = model.forward(&ids, &ids.zeros_like().unwrap(), Some(&mask)).unwrap();
    let maskf = mask.to_dtype(DType::F32).unwrap().unsqueeze(2).unwrap();
    let summed = hidden.broadcast_mul(&maskf).unwrap().sum(1).unwrap();
    let mean = summed.broadcast_div(&maskf.sum(1).unwrap()).unwrap();
    let norms = mean.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap();
    mean.broadcast_div(&norms).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn vectors_match_the_candle_implementation_and_ignore_the_batch() {
    let dir = default_model_dir();
    let embedder = Embedder::from_dir(&dir)
        .unwrap_or_else(|e| panic!("model not found in {} ({e}); run scripts/fetch-model.sh", dir.display()));
    let long = "the quick brown fox jumps over the lazy dog while reading manuals ".repeat(40);
    let texts = [
        "",
        "word",
        long.as_str(), // far past 256 tokens: truncated
        "Ünïcödé façade — naïve café, 東京, Москва",
        "emoji 🚀🔥 and a flag 🇫🇷",
        "libssl3: Secure Sockets Layer toolkit - shared libraries",
        "a cat sits on the mat",
    ];
    let ours = embedder.embed(&texts).unwrap();
    let theirs = candle_vectors(&dir, &texts);
    assert_eq!(ours.len(), texts.len() * DIM);
    for (i, (a, b)) in ours.chunks_exact(DIM).zip(theirs.chunks_exact(DIM)).enumerate() {
        let c = cosine(a, b);
        assert!(
            c >= 0.99999,
            "text {i} ({:?}): cosine {c} to the candle vector",
            &texts[i][..texts[i].len().min(20)]
        );
    }
    // Alone, in another batch, in another order: the same vector.
    for (i, text) in texts.iter().enumerate() {
        let alone = embedder.embed(&[text]).unwrap();
        assert_eq!(alone, &ours[i * DIM..(i + 1) * DIM], "text {i} alone");
    }
    let reversed: Vec<&str> = texts.iter().rev().copied().collect();
    let back = embedder.embed(&reversed).unwrap();
    for (i, row) in back.chunks_exact(DIM).enumerate() {
        let j = texts.len() - 1 - i;
        assert_eq!(row, &ours[j * DIM..(j + 1) * DIM], "text {j} reversed");
    }
}

#[test]
fn a_model_from_another_shape_or_broken_files_is_refused() {
    let dir = default_model_dir();
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    let tokenizer = std::fs::read(dir.join("tokenizer.json")).unwrap();
    let config = std::fs::read(dir.join("config.json")).unwrap();
    // Weights cut short, a config without a field, weights of another width.
    let cut = Embedder::from_bytes(weights[..weights.len() / 2].to_vec(), &tokenizer, &config);
    assert!(matches!(cut, Err(neardb_embed::EmbedError::Weights(_))), "{:?}", cut.err());
    let mut c: serde_json::Value = serde_json::from_slice(&config).unwrap();
    c.as_object_mut().unwrap().remove("hidden_size");
    let no_field = Embedder::from_bytes(weights.clone(), &tokenizer, &serde_json::to_vec(&c).unwrap());
    assert!(matches!(no_field, Err(neardb_embed::EmbedError::ConfigField(_))), "{:?}", no_field.err());
    let mut c: serde_json::Value = serde_json::from_slice(&config).unwrap();
    c["intermediate_size"] = 1024.into();
    let wrong = Embedder::from_bytes(weights, &tokenizer, &serde_json::to_vec(&c).unwrap());
    let msg = wrong.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("shape"), "{msg}");
}
