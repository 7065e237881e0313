//! Sentence embeddings for NearDB: all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions) run with
//! candle, one implementation natively (the `neardb embed` command) and in the browser (the
//! `TextEmbedder` JavaScript class, see [`wasm`]). Kept out of `neardb-core` and
//! `neardb-wasm` so that neither carries candle.
//!
//! Pipeline, as sentence-transformers does it: WordPiece tokens (at most 256, the model's
//! `max_seq_length`), the BERT encoder, the mean of the token embeddings weighted by the
//! attention mask (padding excluded), then L2 normalisation. Vectors are unit length, so cosine
//! similarity is their dot product.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

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
    Model(#[from] candle_core::Error),
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
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl Embedder {
    /// Loads the model from the bytes of `model.safetensors` (f32 or f16: weights are
    /// converted to f32), `tokenizer.json` and `config.json`.
    pub fn from_bytes(weights: Vec<u8>, tokenizer: &[u8], config: &[u8]) -> Result<Self, EmbedError> {
        let config: Config = serde_json::from_slice(config)?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(vb, &config)?;
        let mut tokenizer =
            Tokenizer::from_bytes(tokenizer).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        // The shipped tokenizer pads every input to 128 tokens and truncates there; pad only to
        // the longest text of a batch (the mask keeps padding out of the mean) and truncate at
        // the model's limit.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let embedder = Self { model, tokenizer, device };
        let probe = embedder.embed(&["probe"])?;
        if probe.len() != DIM {
            return Err(EmbedError::Dimension { got: probe.len() });
        }
        Ok(embedder)
    }

    /// Truncates inputs at `max` tokens (at least 8) instead of [`MAX_TOKENS`]. The encoder's
    /// cost grows with the tokens of the longest text of a batch, so a corpus of long texts
    /// embeds several times faster at 64 tokens, at the price of ignoring their tails.
    pub fn set_max_tokens(&mut self, max: usize) -> Result<(), EmbedError> {
        self.tokenizer
            .with_truncation(Some(TruncationParams { max_length: max.max(8), ..Default::default() }))
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

    /// Embeds `texts` in one batch; returns `texts.len() × DIM` floats, row-major, each row
    /// of unit length. An empty text embeds as the model's empty input ([CLS] [SEP]).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<f32>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let n = encodings.len();
        let len = encodings.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &encodings {
            ids.extend(e.get_ids().iter().copied());
            mask.extend(e.get_attention_mask().iter().copied());
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (n, len, hidden)
                                                                     // Mean over real tokens only: sum(hidden × mask) / sum(mask).
        let maskf = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
        let summed = hidden.broadcast_mul(&maskf)?.sum(1)?; // (n, hidden)
        let counts = maskf.sum(1)?.clamp(1e-9, f64::MAX)?; // (n, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norms)?;
        Ok(unit.flatten_all()?.to_vec1::<f32>()?)
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
    let tensors = candle_core::safetensors::load_buffer(weights, &Device::Cpu)?;
    let mut half = std::collections::HashMap::new();
    for (name, t) in tensors {
        let t = if t.dtype() == DType::F32 { t.to_dtype(DType::F16)? } else { t };
        half.insert(name, t);
    }
    candle_core::safetensors::save(&half, out)?;
    Ok(())
}
