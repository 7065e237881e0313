//! The `TextEmbedder` JavaScript class: the same model and pooling as natively, in the browser.

use js_sys::{Array, Float32Array, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::{Embedder, DIM};

fn js_error(msg: impl core::fmt::Display) -> JsValue {
    js_sys::Error::new(&msg.to_string()).into()
}

/// all-MiniLM-L6-v2 sentence embeddings (384 dimensions, unit length).
#[wasm_bindgen]
pub struct TextEmbedder {
    inner: Embedder,
}

#[wasm_bindgen]
impl TextEmbedder {
    /// Loads the model from the bytes of `model.safetensors` (f32 or f16), `tokenizer.json`
    /// and `config.json`. Throws if any of them is not what the model needs.
    #[wasm_bindgen(constructor)]
    pub fn new(
        weights: &Uint8Array,
        tokenizer: &Uint8Array,
        config: &Uint8Array,
    ) -> Result<TextEmbedder, JsValue> {
        let inner = Embedder::from_bytes(weights.to_vec(), &tokenizer.to_vec(), &config.to_vec())
            .map_err(js_error)?;
        Ok(Self { inner })
    }

    /// The embedding of one text.
    pub fn embed(&self, text: &JsValue) -> Result<Float32Array, JsValue> {
        let Some(text) = text.as_string() else {
            return Err(js_error("text must be a string"));
        };
        let v = self.inner.embed(&[&text]).map_err(js_error)?;
        Ok(v.as_slice().into())
    }

    /// The embeddings of many texts, row-major (`texts.length × 384`).
    #[wasm_bindgen(js_name = embedBatch)]
    pub fn embed_batch(&self, texts: &Array) -> Result<Float32Array, JsValue> {
        let mut owned = Vec::with_capacity(texts.length() as usize);
        for (i, t) in texts.iter().enumerate() {
            owned.push(t.as_string().ok_or_else(|| js_error(format_args!("texts[{i}] must be a string")))?);
        }
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        let v = self.inner.embed(&refs).map_err(js_error)?;
        Ok(v.as_slice().into())
    }

    /// Dimension of the embeddings (384).
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> u32 {
        DIM as u32
    }
}
