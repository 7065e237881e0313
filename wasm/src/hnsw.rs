//! `HnswIndex` for JavaScript: the graph index, grown in memory or opened in place from a file
//! (a native `neardb build`, or `toBytes` of another tab).

use js_sys::{Float32Array, Uint32Array};
use neardb_core::format::AlignedBytes;
use neardb_core::{HnswParams, HnswView, IdMap, VectorSearch};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::graph::{self, GraphFace, GraphKind, Inner};
use crate::js::{self, js_error};

/// Construction options (all optional): `{ m, efConstruction, efSearch, seed, storage }`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HnswOptions {
    m: Option<usize>,
    ef_construction: Option<usize>,
    ef_search: Option<usize>,
    seed: Option<u64>,
    storage: Option<String>,
}

/// HNSW as a graph kind of the shared JavaScript face.
pub(crate) struct Hnsw;

impl GraphKind for Hnsw {
    type Owned = neardb_core::HnswIndex;
    type File = HnswView<AlignedBytes>;
    fn to_owned(file: &Self::File) -> Self::Owned {
        file.to_index()
    }
    fn file_bytes(file: &Self::File) -> &[u8] {
        file.bytes()
    }
    fn file_ids(file: &Self::File) -> Option<&[u32]> {
        file.ids()
    }
    fn write(owned: &Self::Owned, ids: &IdMap) -> Vec<u8> {
        js::collect_bytes(|sink| owned.write_with_ids(ids, sink))
    }
}

/// Approximate nearest-neighbour search over an HNSW graph.
#[wasm_bindgen(js_name = HnswIndex)]
pub struct HnswIndex {
    g: GraphFace<Hnsw>,
}

impl HnswIndex {
    fn index(&self) -> &dyn VectorSearch {
        self.g.index()
    }
}

#[wasm_bindgen(js_class = HnswIndex)]
impl HnswIndex {
    /// An empty index of `dim`-dimensional vectors ranked by `metric`. `options` (all
    /// optional): `m` (links per node, default 16), `efConstruction` (default 200),
    /// `efSearch` (default `ef` of searches, 64), `seed` (level generator; the same seed and
    /// insertion order give a byte-identical index here and natively), `storage` (`"f32"`, the
    /// default, or `"f16"`: binary16 from the start, as [`HnswIndex::store_f16`]).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "number")] dim: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Metric")] metric: JsValue,
        options: Option<crate::HnswOptionsArg>,
    ) -> Result<HnswIndex, JsValue> {
        let dim = js::number_u32("dim", &dim)? as usize;
        let metric = js::metric(&metric)?;
        let opts: HnswOptions = js::options(
            "HNSW options",
            options.map(JsValue::from),
            &["m", "efConstruction", "efSearch", "seed", "storage"],
        )?;
        let d = HnswParams::default();
        let params = HnswParams {
            m: opts.m.unwrap_or(d.m),
            ef_construction: opts.ef_construction.unwrap_or(d.ef_construction),
            seed: opts.seed.unwrap_or(d.seed),
        };
        let ef_search = opts.ef_search.unwrap_or(neardb_core::hnsw::DEFAULT_EF);
        if ef_search == 0 {
            return Err(js_error("HNSW options: efSearch must be at least 1"));
        }
        let mut index = neardb_core::HnswIndex::new(dim, metric, params).map_err(js_error)?;
        match opts.storage.as_deref() {
            None | Some("f32") => {}
            Some("f16") => index.store_f16().map_err(js_error)?,
            Some(other) => {
                return Err(js_error(format!(
                    "HNSW options: storage must be \"f32\" or \"f16\", got {other:?}"
                )))
            }
        }
        Ok(Self { g: GraphFace::owned_new(index, ef_search) })
    }

    /// Adds a row-major batch of vectors under the given `ids` (one per vector, none in use)
    /// or else the next free ids (one past the largest id so far); returns the ids. Slots of
    /// removed vectors are reused. Validates everything first: on error nothing is added.
    #[wasm_bindgen(unchecked_return_type = "Uint32Array")]
    pub fn add(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array")] vectors: JsValue,
        ids: Option<crate::IdsArg>,
    ) -> Result<Uint32Array, JsValue> {
        self.g.add(&vectors, ids.map(JsValue::from), |index, rows| index.add(rows))
    }

    /// Removes the vector `id`: it leaves results at once, its neighbours are re-linked, and
    /// its slot is reused by a later `add`. Throws if no vector has that id.
    pub fn remove(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsValue> {
        self.g.remove(&id, |index, slot| index.remove(slot))
    }

    /// Makes room for `additional` more vectors before a large build, so memory grows once
    /// instead of by doubling (WebAssembly memory never shrinks, so doubling's old copies stay
    /// as free space for the life of the page).
    pub fn reserve(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] additional: JsValue,
    ) -> Result<(), JsValue> {
        let additional = js::number_u32("additional", &additional)? as usize;
        self.g.owned()?.reserve(additional).map_err(js::js_error)
    }

    /// Whether a vector has the id `id`.
    pub fn has(&self, id: f64) -> bool {
        self.g.has(id)
    }

    /// The stored vector `id` (normalised, for cosine), as a copy. Throws for an unknown id.
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<Float32Array, JsValue> {
        self.g.get(&id)
    }

    /// Quantizes the vectors to one byte per dimension (SQ8): searches walk the graph over
    /// the codes, and `toBytes` writes them. With `rerankFactor` R ≥ 1 the best `k × R`
    /// candidates are re-ranked with the exact vectors (kept); with 0 only the codes are kept
    /// in the written file, about a quarter of the vector bytes, and results carry approximate
    /// distances.
    #[wasm_bindgen(js_name = quantizeSq8)]
    pub fn quantize_sq8(
        &mut self,
        #[wasm_bindgen(js_name = rerankFactor, unchecked_param_type = "number")] rerank_factor: JsValue,
    ) -> Result<(), JsValue> {
        let r = js::number_u32("rerankFactor", &rerank_factor)?;
        self.g.owned()?.quantize_sq8(r as usize).map_err(js_error)
    }

    /// Lays the vectors out so that graph neighbours sit close together in memory: the same
    /// graph and the same answers, with ids unchanged; searches in the browser get faster
    /// (6–21 % measured on 100k × 384). `toBytes` then writes the new order with an `ids`
    /// section. Copies every array once, so memory briefly needs about twice the index.
    #[wasm_bindgen(js_name = optimizeLayout)]
    pub fn optimize_layout(&mut self) -> Result<(), JsValue> {
        let index = self.g.owned()?;
        let old_of_new = index.reorder_for_locality();
        let deleted: Vec<bool> = (0..old_of_new.len() as u32).map(|s| index.is_deleted(s)).collect();
        self.g.ids = self.g.ids.permuted(&old_of_new, |s| !deleted[s as usize]).map_err(js_error)?;
        Ok(())
    }

    /// Stores the vectors in binary16 from now on (IEEE half precision): every vector is
    /// rounded to the nearest binary16 value (at most 2^-11 relative), the index holds and
    /// searches read half the vector bytes, and `toBytes` writes half. Later `add`s are rounded
    /// the same way. Call it before a large build: the `f32` rows are then never held.
    /// Throws, changing nothing, if a stored value lies beyond ±65504.
    #[wasm_bindgen(js_name = storeF16)]
    pub fn store_f16(&mut self) -> Result<(), JsValue> {
        self.g.owned()?.store_f16().map_err(js_error)
    }

    /// How the vectors searches read are stored: `"none"` (f32), `"f16"` (binary16),
    /// `"sq8"` (SQ8 codes, re-ranked with f32 vectors or codes only) or `"sq8+f16"` (SQ8
    /// codes re-ranked with binary16 vectors).
    #[wasm_bindgen(getter, unchecked_return_type = "\"none\" | \"f16\" | \"sq8\" | \"sq8+f16\"")]
    pub fn quantization(&self) -> String {
        self.g.quantization()
    }

    /// The `k` nearest neighbours of `query`, closest first (ties by smaller id). `options`:
    /// `ef` (candidate list, at least `k` is used; default `efSearch`), `filter` (allowed
    /// ids, or a function `(id) => boolean`). Always returns `min(k, matches)` results: at low
    /// selectivity the search switches to exact search over the allowed vectors.
    #[wasm_bindgen(unchecked_return_type = "SearchResult")]
    pub fn search(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array")] query: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] k: JsValue,
        options: Option<crate::HnswSearchOptionsArg>,
    ) -> Result<JsValue, JsValue> {
        self.g.search(&query, &k, options.map(JsValue::from))
    }

    /// Searches every row of a row-major batch of queries; one result per query.
    #[wasm_bindgen(js_name = searchBatch, unchecked_return_type = "SearchResult[]")]
    pub fn search_batch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array")] queries: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] k: JsValue,
        options: Option<crate::HnswSearchOptionsArg>,
    ) -> Result<js_sys::Array, JsValue> {
        self.g.search_batch(&queries, &k, options.map(JsValue::from))
    }

    /// The `ef` searches use when their options give none.
    #[wasm_bindgen(getter, js_name = efSearch)]
    pub fn ef_search(&self) -> u32 {
        // Set from a checked u32 or the default.
        self.g.ef_search as u32
    }

    /// Sets the default `ef` of searches (a whole number ≥ 1).
    #[wasm_bindgen(setter, js_name = efSearch)]
    pub fn set_ef_search(&mut self, ef: f64) -> Result<(), JsValue> {
        self.g.set_ef_search(ef)
    }

    /// Links per node on the upper levels (level 0 holds twice as many).
    #[wasm_bindgen(getter)]
    pub fn m(&self) -> u32 {
        self.hnsw_params().m as u32
    }

    /// Candidate-list size used while inserting.
    #[wasm_bindgen(getter, js_name = efConstruction)]
    pub fn ef_construction(&self) -> u32 {
        self.hnsw_params().ef_construction as u32
    }

    /// The index in the NearDB file format, byte for byte what the native library writes.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.g.to_bytes()
    }

    /// Opens an HNSW index file (from `toBytes`, `neardb build`, or a `fetch`): copied once
    /// into wasm memory, validated (structure, checksums, the whole graph), then searched in
    /// place. `options` may set `efSearch`.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] bytes: JsValue,
        options: Option<crate::OpenOptionsArg>,
    ) -> Result<HnswIndex, JsValue> {
        let ef_search = graph::open_options(options.map(JsValue::from))?;
        let view = HnswView::open(js::aligned_copy(&bytes)?).map_err(js_error)?;
        Ok(Self { g: GraphFace::file(view, ef_search)? })
    }
}

impl HnswIndex {
    fn hnsw_params(&self) -> HnswParams {
        match &self.g.inner {
            Inner::Owned(index) => index.params(),
            Inner::File(view) => view.params(),
        }
    }
}

js::shared_getters!(HnswIndex, "HnswIndex");
