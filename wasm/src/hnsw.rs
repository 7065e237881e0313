//! `HnswIndex` for JavaScript: the graph index, grown in memory or opened in place from a file
//! (a native `neardb build`, or `toBytes` of another tab).

use js_sys::{Float32Array, Uint32Array};
use neardb_core::format::AlignedBytes;
use neardb_core::{HnswParams, HnswView, IdMap, SearchParams, VectorSearch};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::js::{self, js_error, Searcher};

/// The index behind an [`HnswIndex`].
enum Inner {
    /// Owned and growable.
    Owned(neardb_core::HnswIndex),
    /// A file copied once into an aligned buffer and searched in place.
    File(HnswView<AlignedBytes>),
}

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

/// Search options: `{ ef, rerank, filter }`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HnswSearchOptions {
    ef: Option<usize>,
    rerank: Option<usize>,
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    filter: JsValue,
}

/// The fields of [`HnswSearchOptions`].
const SEARCH_FIELDS: &[&str] = &["ef", "rerank", "filter"];

/// Approximate nearest-neighbour search over an HNSW graph.
#[wasm_bindgen(js_name = HnswIndex)]
pub struct HnswIndex {
    inner: Inner,
    ids: IdMap,
    ef_search: usize,
}

impl HnswIndex {
    fn index(&self) -> &dyn VectorSearch {
        match &self.inner {
            Inner::Owned(index) => index,
            Inner::File(view) => view,
        }
    }

    fn slots(&self) -> u32 {
        // At most u32::MAX - 1 slots (checked when added or opened).
        match &self.inner {
            Inner::Owned(index) => index.slot_count() as u32,
            Inner::File(view) => view.slot_count() as u32,
        }
    }

    fn is_live(&self, slot: u32) -> bool {
        (slot < self.slots())
            && match &self.inner {
                Inner::Owned(index) => !index.is_deleted(slot),
                Inner::File(view) => !view.is_deleted(slot),
            }
    }

    /// The live slot holding `id`.
    fn slot(&self, id: u32) -> Result<u32, JsValue> {
        self.ids
            .slot_of(id)
            .filter(|&s| self.is_live(s))
            .ok_or_else(|| js_error(format_args!("unknown id {id}: no vector has it")))
    }

    /// The owned index, copying a file's contents out the first time it is modified.
    fn owned(&mut self) -> Result<&mut neardb_core::HnswIndex, JsValue> {
        if let Inner::File(view) = &self.inner {
            self.inner = Inner::Owned(view.to_index());
        }
        match &mut self.inner {
            Inner::Owned(index) => Ok(index),
            Inner::File(_) => Err(js_error("internal error: the index is still read-only")),
        }
    }

    fn params(&self, opts: &HnswSearchOptions) -> Result<SearchParams, JsValue> {
        let ef = opts.ef.unwrap_or(self.ef_search);
        if ef == 0 {
            return Err(js_error("ef must be at least 1"));
        }
        if opts.rerank == Some(0) {
            return Err(js_error("rerank must be at least 1 (leave it out for the index default)"));
        }
        Ok(SearchParams::new().with_ef(ef).with_rerank_factor(opts.rerank.unwrap_or(0)))
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
        Ok(Self { inner: Inner::Owned(index), ids: IdMap::identity(0), ef_search })
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
        let (vectors, given) =
            js::new_batch(&vectors, ids.map(JsValue::from), self.index().dim(), &self.ids)?;
        let slots = self.owned()?.add(&vectors).map_err(js_error)?;
        Ok(js::record_added(&mut self.ids, &slots, given.as_deref()))
    }

    /// Removes the vector `id`: it leaves results at once, its neighbours are re-linked, and
    /// its slot is reused by a later `add`. Throws if no vector has that id.
    pub fn remove(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsValue> {
        let id = js::number_u32("id", &id)?;
        let slot = self.slot(id)?;
        self.owned()?.remove(slot).map_err(js_error)?;
        self.ids.record_remove(id);
        Ok(())
    }

    /// Makes room for `additional` more vectors before a large build, so memory grows once
    /// instead of by doubling (WebAssembly memory never shrinks, so doubling's old copies stay
    /// as free space for the life of the page).
    pub fn reserve(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] additional: JsValue,
    ) -> Result<(), JsValue> {
        let additional = js::number_u32("additional", &additional)? as usize;
        self.owned()?.reserve(additional).map_err(js::js_error)
    }

    /// Whether a vector has the id `id`.
    pub fn has(&self, id: f64) -> bool {
        js::whole_u32("id", id).ok().is_some_and(|id| self.slot(id).is_ok())
    }

    /// The stored vector `id` (normalised, for cosine), as a copy. Throws for an unknown id.
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<Float32Array, JsValue> {
        let id = js::number_u32("id", &id)?;
        let slot = self.slot(id)?;
        let v = match &self.inner {
            // A binary16 index or codes-only file has no f32 vectors: its rows or codes are
            // decoded.
            Inner::Owned(index) => index.get_decoded(slot),
            Inner::File(view) => view.get_decoded(slot),
        };
        Ok(v.map_err(js_error)?.as_slice().into())
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
        self.owned()?.quantize_sq8(r as usize).map_err(js_error)
    }

    /// Lays the vectors out so that graph neighbours sit close together in memory: the same
    /// graph and the same answers, with ids unchanged; searches in the browser get faster
    /// (6–21 % measured on 100k × 384). `toBytes` then writes the new order with an `ids`
    /// section. Copies every array once, so memory briefly needs about twice the index.
    #[wasm_bindgen(js_name = optimizeLayout)]
    pub fn optimize_layout(&mut self) -> Result<(), JsValue> {
        let index = self.owned()?;
        let old_of_new = index.reorder_for_locality();
        let deleted: Vec<bool> = (0..old_of_new.len() as u32).map(|s| index.is_deleted(s)).collect();
        self.ids = self.ids.permuted(&old_of_new, |s| !deleted[s as usize]).map_err(js_error)?;
        Ok(())
    }

    /// Stores the vectors in binary16 from now on (IEEE half precision): every vector is
    /// rounded to the nearest binary16 value (at most 2^-11 relative), the index holds and
    /// searches read half the vector bytes, and `toBytes` writes half. Later `add`s are rounded
    /// the same way. Call it before a large build: the `f32` rows are then never held.
    /// Throws, changing nothing, if a stored value lies beyond ±65504.
    #[wasm_bindgen(js_name = storeF16)]
    pub fn store_f16(&mut self) -> Result<(), JsValue> {
        self.owned()?.store_f16().map_err(js_error)
    }

    /// How the vectors searches read are stored: `"none"` (f32), `"f16"` (binary16),
    /// `"sq8"` (SQ8 codes, re-ranked with f32 vectors or codes only) or `"sq8+f16"` (SQ8
    /// codes re-ranked with binary16 vectors).
    #[wasm_bindgen(getter, unchecked_return_type = "\"none\" | \"f16\" | \"sq8\" | \"sq8+f16\"")]
    pub fn quantization(&self) -> String {
        let (sq, f16) = match &self.inner {
            Inner::Owned(index) => (index.sq_quantizer().is_some(), index.stores_f16()),
            Inner::File(view) => (view.sq_quantizer().is_some(), view.stores_f16()),
        };
        match (sq, f16) {
            (false, false) => "none",
            (false, true) => "f16",
            (true, false) => "sq8",
            (true, true) => "sq8+f16",
        }
        .into()
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
        let opts: HnswSearchOptions =
            js::options("search options", options.map(JsValue::from), SEARCH_FIELDS)?;
        let params = self.params(&opts)?;
        let live = |s| self.is_live(s);
        let s = Searcher { index: self.index(), map: &self.ids, slots: self.slots(), live: &live };
        s.one(&query, &k, &params, &opts.filter)
    }

    /// Searches every row of a row-major batch of queries; one result per query.
    #[wasm_bindgen(js_name = searchBatch, unchecked_return_type = "SearchResult[]")]
    pub fn search_batch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array")] queries: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] k: JsValue,
        options: Option<crate::HnswSearchOptionsArg>,
    ) -> Result<js_sys::Array, JsValue> {
        let opts: HnswSearchOptions =
            js::options("search options", options.map(JsValue::from), SEARCH_FIELDS)?;
        let params = self.params(&opts)?;
        let live = |s| self.is_live(s);
        let s = Searcher { index: self.index(), map: &self.ids, slots: self.slots(), live: &live };
        s.batch(&queries, &k, &params, &opts.filter)
    }

    /// The `ef` searches use when their options give none.
    #[wasm_bindgen(getter, js_name = efSearch)]
    pub fn ef_search(&self) -> u32 {
        // Set from a checked u32 or the default.
        self.ef_search as u32
    }

    /// Sets the default `ef` of searches (a whole number ≥ 1).
    #[wasm_bindgen(setter, js_name = efSearch)]
    pub fn set_ef_search(&mut self, ef: f64) -> Result<(), JsValue> {
        match js::whole_u32("efSearch", ef)? {
            0 => Err(js_error("efSearch must be at least 1")),
            ef => {
                self.ef_search = ef as usize;
                Ok(())
            }
        }
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
        match &self.inner {
            Inner::Owned(index) => js::collect_bytes(|sink| index.write_with_ids(&self.ids, sink)),
            Inner::File(view) => view.bytes().to_vec(),
        }
    }

    /// Opens an HNSW index file (from `toBytes`, `neardb build`, or a `fetch`): copied once
    /// into wasm memory, validated (structure, checksums, the whole graph), then searched in
    /// place. `options` may set `efSearch`.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] bytes: JsValue,
        options: Option<crate::OpenOptionsArg>,
    ) -> Result<HnswIndex, JsValue> {
        #[derive(Default, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        struct OpenOptions {
            ef_search: Option<usize>,
        }
        let opts: OpenOptions = js::options("open options", options.map(JsValue::from), &["efSearch"])?;
        let ef_search = opts.ef_search.unwrap_or(neardb_core::hnsw::DEFAULT_EF);
        if ef_search == 0 {
            return Err(js_error("open options: efSearch must be at least 1"));
        }
        let view = HnswView::open(js::aligned_copy(&bytes)?).map_err(js_error)?;
        let ids = js::file_ids(view.ids(), view.slot_count(), |s| !view.is_deleted(s))?;
        Ok(Self { inner: Inner::File(view), ids, ef_search })
    }
}

impl HnswIndex {
    fn hnsw_params(&self) -> HnswParams {
        match &self.inner {
            Inner::Owned(index) => index.params(),
            Inner::File(view) => view.params(),
        }
    }
}

js::shared_getters!(HnswIndex, "HnswIndex");
