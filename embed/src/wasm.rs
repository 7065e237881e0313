//! The `TextEmbedder` JavaScript class: the same model and pooling as natively, in the browser.

use js_sys::{Array, Float32Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

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
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] weights: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] tokenizer: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] config: JsValue,
    ) -> Result<TextEmbedder, JsValue> {
        let bytes = |name: &str, v: &JsValue| {
            v.dyn_ref::<Uint8Array>()
                .map(Uint8Array::to_vec)
                .ok_or_else(|| js_error(format_args!("{name} must be a Uint8Array")))
        };
        let weights = bytes("weights", &weights)?;
        let tokenizer = bytes("tokenizer", &tokenizer)?;
        let config = bytes("config", &config)?;
        let inner = Embedder::from_bytes(weights, &tokenizer, &config).map_err(js_error)?;
        Ok(Self { inner })
    }

    /// The embedding of one text.
    pub fn embed(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] text: JsValue,
    ) -> Result<Float32Array, JsValue> {
        let Some(text) = text.as_string() else {
            return Err(js_error("text must be a string"));
        };
        let v = self.inner.embed(&[&text]).map_err(js_error)?;
        Ok(v.as_slice().into())
    }

    /// The embeddings of many texts, row-major (`texts.length × 384`).
    #[wasm_bindgen(js_name = embedBatch)]
    pub fn embed_batch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string[]")] texts: JsValue,
    ) -> Result<Float32Array, JsValue> {
        let Some(texts) = texts.dyn_ref::<Array>() else {
            return Err(js_error("texts must be an array of strings"));
        };
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
