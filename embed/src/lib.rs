//! Sentence embeddings for NearDB: all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions), one
//! implementation natively (the `neardb embed` command) and in the browser (the
//! `TextEmbedder` JavaScript class, see [`wasm`]). Kept out of `neardb-core` and
//! `neardb-wasm` so that neither carries the model code.
//!
//! Pipeline, as sentence-transformers does it: WordPiece tokens (at most 256, the model's
//! `max_seq_length`), the BERT encoder, the mean of the token embeddings weighted by the
//! attention mask (padding excluded), then L2 normalisation. Vectors are unit length, so cosine
//! similarity is their dot product.

use tokenizers::{Tokenizer, TruncationParams};

mod bert;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

/// Dimension of the embeddings.
pub const DIM: usize = 384;
/// Longest input in tokens by default (sentence-transformers' `max_seq_length` for this
/// model); longer texts are truncated. See [`Embedder::set_max_tokens`].
pub const MAX_TOKENS: usize = 256;

/// What can go wrong loading the model or embedding text.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// `config.json` is not a BERT configuration.
    #[error("model config: {0}")]
    Config(#[from] serde_json::Error),
    /// The weights are missing tensors, have the wrong shapes, or are not safetensors.
    #[error("model weights: {0}")]
    Weights(String),
    /// `config.json` lacks a field the encoder needs, or holds one it cannot run.
    #[error("model config: field {0} missing or unsupported")]
    ConfigField(String),
    /// A token id beyond the model's vocabulary (a tokenizer from another model).
    #[error("tokenizer: token id {id} is beyond the model's {vocab} words")]
    TokenOutOfVocabulary {
        /// The id.
        id: u32,
        /// The model's vocabulary size.
        vocab: usize,
    },
    /// `tokenizer.json` could not be read, or a text could not be tokenized.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The model produces vectors of another size than [`DIM`].
    #[error("the model makes {got}-dimensional vectors, expected {DIM}")]
    Dimension {
        /// The model's hidden size.
        got: usize,
    },
}

/// A loaded model and tokenizer.
pub struct Embedder {
    encoder: bert::Encoder,
    tokenizer: Tokenizer,
}

impl Embedder {
    /// Loads the model from the bytes of `model.safetensors` (f32, f16 or bf16: weights are
    /// converted to f32), `tokenizer.json` and `config.json`.
    pub fn from_bytes(weights: Vec<u8>, tokenizer: &[u8], config: &[u8]) -> Result<Self, EmbedError> {
        let config: serde_json::Value = serde_json::from_slice(config)?;
        let encoder = bert::Encoder::load(&weights, &config)?;
        drop(weights);
        let mut tokenizer =
            Tokenizer::from_bytes(tokenizer).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        // The shipped tokenizer pads every input to 128 tokens; the encoder lays texts end to
        // end instead, so nothing is padded. Truncated at the model's limit.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(encoder.max_tokens()),
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        if encoder.hidden() != DIM {
            return Err(EmbedError::Dimension { got: encoder.hidden() });
        }
        let embedder = Self { encoder, tokenizer };
        embedder.embed(&["probe"])?;
        Ok(embedder)
    }

    /// Truncates inputs at `max` tokens (at least 8, at most the model's positions) instead of
    /// [`MAX_TOKENS`]. The encoder's cost grows with the tokens of a text, so a corpus of long
    /// texts embeds several times faster at 64 tokens, at the price of ignoring their tails.
    pub fn set_max_tokens(&mut self, max: usize) -> Result<(), EmbedError> {
        let max_length = max.max(8).min(self.encoder.max_tokens());
        self.tokenizer
            .with_truncation(Some(TruncationParams { max_length, ..Default::default() }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(())
    }

    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from a folder.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &std::path::Path) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        Ok(Self::from_bytes(read("model.safetensors")?, &read("tokenizer.json")?, &read("config.json")?)?)
    }

    /// How many tokens the encoder sees of `text` ([CLS] and [SEP] included, after truncation).
    pub fn tokens(&self, text: &str) -> Result<usize, EmbedError> {
        let e = self.tokenizer.encode(text, true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(e.get_ids().len())
    }

    /// Embeds `texts` in one batch; returns `texts.len() × DIM` floats, row-major, each row
    /// of unit length. An empty text embeds as the model's empty input ([CLS] [SEP]). Runs on
    /// the calling thread; embed batches on several threads to use several cores.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<f32>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let vocab = self.encoder.vocab();
        let mut ids: Vec<&[u32]> = Vec::with_capacity(encodings.len());
        for e in &encodings {
            if let Some(&id) = e.get_ids().iter().find(|&&id| id as usize >= vocab) {
                return Err(EmbedError::TokenOutOfVocabulary { id, vocab });
            }
            ids.push(e.get_ids());
        }
        let mut out = Vec::with_capacity(texts.len() * DIM);
        self.encoder.embed(&ids, &mut out);
        Ok(out)
    }
}

/// Where the model lives unless told otherwise (scripts/fetch-model.sh fills it):
/// `$NEARDB_MODEL_DIR`, else `$XDG_CACHE_HOME/neardb/minilm`, else `~/.cache/neardb/minilm`.
#[cfg(not(target_arch = "wasm32"))]
pub fn default_model_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    if let Some(dir) = std::env::var_os("NEARDB_MODEL_DIR") {
        return dir.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
    cache.join("neardb/minilm")
}

/// Cosine similarity of two unit vectors (their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Writes the safetensors weights `weights` to `out` with every f32 tensor stored as f16 (half
/// the download; the model still computes in f32 after loading).
#[cfg(not(target_arch = "wasm32"))]
pub fn save_f16(weights: &[u8], out: &std::path::Path) -> Result<(), EmbedError> {
    use safetensors::{tensor::TensorView, Dtype, SafeTensors};
    let file = SafeTensors::deserialize(weights).map_err(|e| EmbedError::Weights(e.to_string()))?;
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in file.tensors() {
        let bytes = if t.dtype() == Dtype::F32 {
            t.data()
                .chunks_exact(4)
                .flat_map(|b| half::f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes())
                .collect()
        } else {
            t.data().to_vec()
        };
        let dtype = if t.dtype() == Dtype::F32 { Dtype::F16 } else { t.dtype() };
        tensors.push((name, dtype, t.shape().to_vec(), bytes));
    }
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EmbedError::Weights(e.to_string()))?;
    let bytes = safetensors::serialize(views, None).map_err(|e| EmbedError::Weights(e.to_string()))?;
    std::fs::write(out, bytes).map_err(|e| EmbedError::Weights(format!("{}: {e}", out.display())))?;
    Ok(())
}
