//! QuiverDB in the browser: a small wasm-bindgen face over `quiverdb-core`.
//!
//! The JavaScript API (names as JavaScript sees them):
//!
//! ```text
//! class FlatIndex {
//!   constructor(dim: number, metric: string)      // "l2", "cosine"/"cos", "ip"/"dot", "l1"
//!   add(vectors: Float32Array): number            // row-major batch; returns the first new id
//!   search(query: Float32Array, k: number): SearchResult
//!   readonly length: number
//!   readonly isEmpty: boolean
//!   readonly dim: number
//!   readonly metric: string
//!   toBytes(): Uint8Array                         // the QuiverDB index file
//!   static fromBytes(bytes: Uint8Array): FlatIndex
//! }
//! class SearchResult {
//!   readonly ids: Uint32Array                     // closest first
//!   readonly distances: Float32Array              // aligned with ids
//!   readonly length: number
//!   readonly isEmpty: boolean
//! }
//! function kernelIsa(): string                    // "simd128" or "scalar"
//! ```
//!
//! Every failure (a wrong dimension, NaN, `k = 0`, an empty index, an unknown metric, a corrupted
//! file, a number that is not a valid count) throws a JavaScript `Error` whose message is the
//! core's explanation. Nothing reachable from JavaScript panics or aborts the module (short of
//! running out of WebAssembly memory, which no Rust code can recover from).
//!
//! Both classes live in WebAssembly memory: call `free()` (or `using`) when done with a large
//! index; otherwise the garbage collector's `FinalizationRegistry` frees it eventually.
//!
//! Counts (`dim`, `k`) are taken as JavaScript numbers (`f64`) and checked here: wasm-bindgen's
//! `u32` parameters would silently wrap `-1` to `4294967295` and truncate `2.5` to `2`.
//!
//! Distances follow the core's "smaller is closer" convention: squared Euclidean distance for
//! `l2`, `1 - cos` for `cosine`, `-(a·b)` for `ip`, Manhattan distance for `l1`.
#![warn(missing_docs)]

use core::fmt::Display;

use js_sys::Uint8Array;
use quiverdb_core::format::AlignedBytes;
use quiverdb_core::{FlatView, Kernels, Metric, SearchParams, VectorSearch};
use wasm_bindgen::prelude::*;

/// A JavaScript `Error` carrying `msg`.
fn js_error(msg: impl Display) -> JsValue {
    js_sys::Error::new(&msg.to_string()).into()
}

/// Checks that a JavaScript number is a whole number in `0..=u32::MAX` and returns it.
fn whole_u32(name: &str, x: f64) -> Result<u32, JsValue> {
    if x.is_finite() && x.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&x) {
        // Exact: x is a whole number within the u32 range.
        Ok(x as u32)
    } else {
        Err(js_error(format_args!("{name} must be a whole number between 0 and {}, got {x}", u32::MAX)))
    }
}

/// The index behind a [`FlatIndex`]: grown in memory, or read in place from file bytes.
enum Inner {
    /// Vectors owned and growable.
    Owned(quiverdb_core::FlatIndex),
    /// A file copied once into an aligned buffer and searched in place.
    File(FlatView<AlignedBytes>),
}

impl Inner {
    fn search(&self) -> &dyn VectorSearch {
        match self {
            Self::Owned(index) => index,
            Self::File(view) => view,
        }
    }
}

/// An exact (brute-force) index: the ground truth for every other index. JavaScript name
/// `FlatIndex`.
#[wasm_bindgen(js_name = FlatIndex)]
pub struct FlatIndex {
    inner: Inner,
}

#[wasm_bindgen(js_class = FlatIndex)]
impl FlatIndex {
    /// An empty index of `dim`-dimensional vectors ranked by `metric` (`"l2"`, `"cosine"` or
    /// `"cos"`, `"ip"` or `"dot"`, `"l1"`; case-insensitive).
    ///
    /// Throws if `dim` is not between 1 and 65536 or the metric is unknown.
    #[wasm_bindgen(constructor)]
    pub fn new(dim: f64, metric: &str) -> Result<FlatIndex, JsValue> {
        let dim = whole_u32("dim", dim)?;
        let metric: Metric = metric.parse().map_err(js_error)?;
        let dim = usize::try_from(dim).map_err(js_error)?;
        let index = quiverdb_core::FlatIndex::new(dim, metric).map_err(js_error)?;
        Ok(Self { inner: Inner::Owned(index) })
    }

    /// Appends a row-major batch of vectors (`vectors.length` must be a multiple of `dim`) and
    /// returns the id of the first one; the batch gets consecutive ids. For an empty batch,
    /// returns the id the next vector will get.
    ///
    /// Throws on a wrong length, NaN or infinity, or (cosine) a zero vector; then nothing is
    /// added. An index opened with `fromBytes` ([`FlatIndex::from_bytes`]) is copied into owned
    /// memory the first time vectors are added to it.
    pub fn add(&mut self, vectors: &[f32]) -> Result<u32, JsValue> {
        if let Inner::File(view) = &self.inner {
            self.inner = Inner::Owned(view.to_index());
        }
        match &mut self.inner {
            Inner::Owned(index) => index.add(vectors).map(|ids| ids.start).map_err(js_error),
            // Made owned just above.
            Inner::File(_) => Err(js_error("internal error: the index is still read-only")),
        }
    }

    /// The `k` nearest neighbours of `query`, closest first (ties by smaller id). Returns fewer
    /// than `k` when the index holds fewer vectors.
    ///
    /// Throws if `k` is not a whole number from 1 to 2³² − 1, the query has the wrong dimension
    /// or a NaN/infinity, (cosine) the query is the zero vector, or the index is empty.
    pub fn search(&self, query: &[f32], k: f64) -> Result<SearchResult, JsValue> {
        let k = usize::try_from(whole_u32("k", k)?).map_err(js_error)?;
        let index = self.inner.search();
        // No search returns more than `len` results, so a larger k changes nothing but the
        // memory reserved for results; clamping keeps a huge k from exhausting memory. k = 0
        // and an empty index still reach the core and get its errors.
        let k = if k == 0 { 0 } else { k.min(index.len().max(1)) };
        let found = index.search(query, k, &SearchParams::new(), None).map_err(js_error)?;
        Ok(SearchResult {
            ids: found.iter().map(|n| n.id).collect(),
            distances: found.iter().map(|n| n.distance).collect(),
        })
    }

    /// Number of vectors stored.
    #[wasm_bindgen(getter, js_name = length)]
    pub fn len(&self) -> u32 {
        // An index holds at most u32::MAX vectors (ids are u32), so this never saturates.
        u32::try_from(self.inner.search().len()).unwrap_or(u32::MAX)
    }

    /// Whether the index holds no vector.
    #[wasm_bindgen(getter, js_name = isEmpty)]
    pub fn is_empty(&self) -> bool {
        self.inner.search().is_empty()
    }

    /// Dimension of the vectors.
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> u32 {
        // At most quiverdb_core::MAX_DIM (65536).
        u32::try_from(self.inner.search().dim()).unwrap_or(u32::MAX)
    }

    /// The metric's canonical name: `"l2"`, `"cosine"`, `"ip"` or `"l1"`.
    #[wasm_bindgen(getter)]
    pub fn metric(&self) -> String {
        self.inner.search().metric().name().into()
    }

    /// The index in the QuiverDB file format (the same bytes the native library writes and
    /// reads). For an index opened with `fromBytes` and not modified since, these
    /// are the bytes it was opened from.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Owned(index) => index.to_bytes(),
            Inner::File(view) => view.bytes().to_vec(),
        }
    }

    /// Opens an index file (from `toBytes`, the native library, or a `fetch`).
    ///
    /// The bytes are copied **once**, straight from the JavaScript buffer into an 8-byte
    /// aligned buffer in WebAssembly memory; the file is then validated (structure and
    /// checksums) and searched in place, without parsing the vectors into a second copy.
    /// Afterwards the caller's array may be reused or changed freely.
    ///
    /// Throws if the bytes are not a valid flat index file: wrong magic, truncated, corrupted
    /// (checksum mismatch), a newer format version, or another index kind.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &Uint8Array) -> Result<FlatIndex, JsValue> {
        let len = usize::try_from(bytes.length()).map_err(js_error)?;
        let mut aligned = AlignedBytes::zeroed(len);
        // Same length on both sides, so `copy_to` cannot fail.
        bytes.copy_to(aligned.as_mut_slice());
        let view = FlatView::open(aligned).map_err(js_error)?;
        Ok(Self { inner: Inner::File(view) })
    }
}

/// The neighbours found by a search, closest first. JavaScript name `SearchResult`.
#[wasm_bindgen]
pub struct SearchResult {
    ids: Vec<u32>,
    distances: Vec<f32>,
}

#[wasm_bindgen]
impl SearchResult {
    /// Ids of the neighbours, closest first (a copy, as a `Uint32Array`).
    #[wasm_bindgen(getter)]
    pub fn ids(&self) -> Vec<u32> {
        self.ids.clone()
    }

    /// Distance of each neighbour under the index's metric, aligned with `ids` (a copy, as a
    /// `Float32Array`).
    #[wasm_bindgen(getter)]
    pub fn distances(&self) -> Vec<f32> {
        self.distances.clone()
    }

    /// Number of neighbours found.
    #[wasm_bindgen(getter, js_name = length)]
    pub fn len(&self) -> u32 {
        // At most the number of vectors in the index, itself at most u32::MAX.
        u32::try_from(self.ids.len()).unwrap_or(u32::MAX)
    }

    /// Whether no neighbour was found.
    #[wasm_bindgen(getter, js_name = isEmpty)]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The distance kernels this module runs: `"simd128"` when it was built with WebAssembly SIMD
/// (the default for this crate), `"scalar"` otherwise. (Called from native Rust, it names the
/// native path, e.g. `"avx2"`.)
#[wasm_bindgen(js_name = kernelIsa)]
pub fn kernel_isa() -> String {
    Kernels::best().isa().name().into()
}
