//! NearDB in the browser: wasm-bindgen classes over `neardb-core`, with TypeScript types.
//!
//! The JavaScript API (the generated `neardb_wasm.d.ts` has the exact types):
//!
//! ```text
//! class FlatIndex  { constructor(dim, metric) }                     // exact search
//! class HnswIndex  { constructor(dim, metric, { m, efConstruction, efSearch, seed }?) }
//! class VamanaIndex { constructor(dim, metric, { r, l, alpha, efSearch, seed }?) }
//!                   // + consolidate(): number, pendingDeletes, medoid
//! // all three:
//!   add(vectors: Float32Array, ids?: Uint32Array | number[]): Uint32Array  // the ids given
//!   search(query: Float32Array, k: number, { ef, filter, filterStrategy, stats }?):
//!     { ids: Uint32Array, distances: Float32Array, stats?: { plan, matches, expanded, distances } }
//!   searchBatch(queries: Float32Array, k: number, { ef, filter, filterStrategy, stats }?): SearchResult[]
//!   remove(id: number): void;  has(id): boolean;  get(id): Float32Array
//!   readonly length, isEmpty, dim, metric
//!   toBytes(): Uint8Array;  static fromBytes(bytes: Uint8Array): <class>
//! function kernelIsa(): "simd128" | "scalar"
//! ```
//!
//! Ids are the caller's (`u32`, any values, 2³²−1 reserved); when none are given a vector
//! gets one past the largest id so far, so a fresh index numbers vectors 0, 1, 2, … exactly as
//! the native library does, and files stay interchangeable: an `ids` section is written only
//! when ids differ from slot numbers.
//!
//! Every failure (a wrong dimension, NaN, `k = 0`, an empty index, an unknown metric or id, an
//! argument of the wrong JavaScript type, an unknown or ill-typed option, corrupted or
//! newer-version bytes) throws a JavaScript `Error` whose message says what is wrong. Nothing
//! reachable from JavaScript panics or aborts the module (short of running out of WebAssembly
//! memory, which no Rust code can recover from).
//!
//! Both classes live in WebAssembly memory: call `free()` when done with a large index;
//! otherwise the garbage collector's `FinalizationRegistry` frees it eventually.
//!
//! Distances follow the core's "smaller is closer" convention: squared Euclidean distance for
//! `l2`, `1 - cos` for `cosine`, `-(a·b)` for `ip`, Manhattan distance for `l1`.
#![warn(missing_docs)]

mod flat;
mod graph;
mod hnsw;
mod ivfpq;
mod js;
mod vamana;

pub use flat::FlatIndex;
pub use hnsw::HnswIndex;
pub use ivfpq::IvfPqIndex;
pub use vamana::VamanaIndex;

use neardb_core::Kernels;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Metric names accepted by the constructors (case-insensitive). */
export type Metric = "l2" | "cosine" | "cos" | "ip" | "dot" | "l1";

/** Neighbours found by a search, closest first. */
export interface SearchResult {
  /** Ids of the neighbours, closest first. */
  ids: Uint32Array;
  /** Distance of each neighbour ("smaller is closer"), aligned with `ids`. */
  distances: Float32Array;
  /** What the search did; present when the search was asked `{ stats: true }`. */
  stats?: SearchStats;
}

/**
 * Which vectors a search may return: allowed ids (an exact scan over them costs the matches,
 * not the index size), or a predicate called once per vector.
 */
export type IdFilter = Uint32Array | number[] | ((id: number) => boolean);

/**
 * What one search did (with `{ stats: true }`): the plan (`"walk"`, `"filtered-walk"`,
 * `"two-hop-walk"`, `"scan"` or `"walk-then-scan"`), how many ids the filter allows (`null`
 * without a filter; estimated for a predicate), graph nodes expanded and distances computed.
 */
export interface SearchStats {
  plan: string;
  matches: number | null;
  expanded: number;
  distances: number;
}

/** Options of `FlatIndex.search` / `searchBatch`. */
export interface FlatSearchOptions {
  filter?: IdFilter;
  /** Add `stats` to each result. */
  stats?: boolean;
}

/** Options of `HnswIndex.search` / `searchBatch` (and `VamanaIndex`'s, where `ef` is L). */
export interface HnswSearchOptions {
  /** Candidate-list size (recall/speed knob); at least `k` is used. */
  ef?: number;
  /**
   * Quantized indexes: re-rank the best `k × rerank` candidates with the exact vectors
   * (default: the factor given to `quantizeSq8`; ignored by a codes-only index).
   */
  rerank?: number;
  filter?: IdFilter;
  /**
   * How a filtered search is answered: `"auto"` (default: the planner's cost model chooses),
   * `"scan"` (exact, over the allowed ids), `"walk"` (the graph walk, keeping allowed nodes)
   * or `"twoHop"` (scoring allowed nodes only, looking two hops through the rest).
   */
  filterStrategy?: "auto" | "scan" | "walk" | "twoHop";
  /** Add `stats` to each result. */
  stats?: boolean;
}

/** Construction options of `HnswIndex`. */
export interface HnswOptions {
  /** Links per node on upper levels (level 0: 2m). Default 16. */
  m?: number;
  /** Candidate-list size while inserting. Default 200. */
  efConstruction?: number;
  /** Default `ef` of searches. Default 64. */
  efSearch?: number;
  /** Seed of the level generator. */
  seed?: number;
  /**
   * How the vectors are kept: `"f32"` (default) or `"f16"` (IEEE binary16 from the start, as
   * `storeF16()`: half the memory, and the `f32` rows are never held).
   */
  storage?: "f32" | "f16";
}

/** Construction options of `VamanaIndex`. */
export interface VamanaOptions {
  /** Most links per node (R). Default 32. */
  r?: number;
  /** Candidate-list size while building (L). Default 100. */
  l?: number;
  /** RobustPrune's α of the second pass, 1 to 4. Default 1.2. */
  alpha?: number;
  /** Default list size of searches (`ef`). Default 64. */
  efSearch?: number;
  /** Seed of the insertion order. */
  seed?: number;
  /** How the vectors are kept: `"f32"` (default) or `"f16"`. */
  storage?: "f32" | "f16";
}

/** Construction options of `IvfPqIndex`. */
export interface IvfPqOptions {
  /** Inverted lists (coarse centroids). Default 256. */
  nlist?: number;
  /** PQ sub-quantizers; must divide the dimension. Default 16. */
  pqM?: number;
  /** Bits per sub-code: 8 or 4. Default 8. */
  nbits?: number;
  /** Seed of training. */
  seed?: number;
  /** Keep the exact vectors for re-rank. Default true. */
  keepVectors?: boolean;
}

/** Options of `IvfPqIndex.search` / `searchBatch`. */
export interface IvfPqSearchOptions {
  /** Lists scanned (recall/speed knob). Default 8. */
  nprobe?: number;
  /** Re-rank the best `k × rerank` with the exact vectors. Default 0 (approximate distances). */
  rerank?: number;
  filter?: IdFilter;
  /** Add `stats` to each result. */
  stats?: boolean;
}
"#;

// Optional arguments arrive as these opaque types so that TypeScript sees them as optional
// (`x?: T`) while the Rust side still checks the actual JavaScript value itself.
#[wasm_bindgen]
extern "C" {
    /// `ids` of `add`.
    #[wasm_bindgen(typescript_type = "Uint32Array | number[]")]
    pub type IdsArg;
    /// Options of `FlatIndex.search`.
    #[wasm_bindgen(typescript_type = "FlatSearchOptions")]
    pub type FlatSearchOptionsArg;
    /// Options of `HnswIndex.search`.
    #[wasm_bindgen(typescript_type = "HnswSearchOptions")]
    pub type HnswSearchOptionsArg;
    /// Options of the `HnswIndex` constructor.
    #[wasm_bindgen(typescript_type = "HnswOptions")]
    pub type HnswOptionsArg;
    /// Options of the `VamanaIndex` constructor.
    #[wasm_bindgen(typescript_type = "VamanaOptions")]
    pub type VamanaOptionsArg;
    /// Options of the `IvfPqIndex` constructor.
    #[wasm_bindgen(typescript_type = "IvfPqOptions")]
    pub type IvfPqOptionsArg;
    /// Options of `IvfPqIndex.search`.
    #[wasm_bindgen(typescript_type = "IvfPqSearchOptions")]
    pub type IvfPqSearchOptionsArg;
    /// Options of `HnswIndex.fromBytes`.
    #[wasm_bindgen(typescript_type = "{ efSearch?: number }")]
    pub type OpenOptionsArg;
}

/// The distance kernels this module runs: `"simd128"` when it was built with WebAssembly SIMD
/// (the default for this crate), `"scalar"` otherwise. (Called from native Rust, it names the
/// native path, e.g. `"avx2"`.)
#[wasm_bindgen(js_name = kernelIsa)]
pub fn kernel_isa() -> String {
    Kernels::best().isa().name().into()
}
