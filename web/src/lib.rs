//! The demo site's WebAssembly module: semantic search over Debian's package descriptions,
//! entirely in the browser. It bundles the two JavaScript-facing crates — `neardb-wasm`
//! (`HnswIndex`, `FlatIndex`) and `neardb-embed` (`TextEmbedder`, all-MiniLM-L6-v2) — into
//! one module; `app.js` drives the page with them (trunk exposes the exports as
//! `window.wasmBindings`). Natively this crate is empty.

#[cfg(target_arch = "wasm32")]
pub use neardb_embed::wasm::TextEmbedder;
#[cfg(target_arch = "wasm32")]
pub use neardb_wasm::{kernel_isa, FlatIndex, HnswIndex};
