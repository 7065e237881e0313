//! What the JavaScript graph classes (`HnswIndex`, `VamanaIndex`) share: an owned graph or a
//! file opened in place (copied out on the first change), the caller-id map, the default list
//! size of searches, and every method that only reads. Each class adds its own construction
//! options and changes.

use js_sys::Float32Array;
use neardb_core::format::AlignedBytes;
use neardb_core::{IdMap, SearchParams, VectorSearch};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::js::{self, js_error, Searcher};

/// What a graph class needs of its owned index and of its file view.
pub(crate) trait GraphRead: VectorSearch {
    fn slot_count(&self) -> usize;
    fn is_deleted(&self, slot: u32) -> bool;
    fn get_decoded(&self, slot: u32) -> neardb_core::Result<Vec<f32>>;
    /// (SQ8 codes, binary16 rows).
    fn storage(&self) -> (bool, bool);
}

macro_rules! graph_read {
    ($($ty:ty),*) => {$(
        impl GraphRead for $ty {
            fn slot_count(&self) -> usize {
                <$ty>::slot_count(self)
            }
            fn is_deleted(&self, slot: u32) -> bool {
                <$ty>::is_deleted(self, slot)
            }
            fn get_decoded(&self, slot: u32) -> neardb_core::Result<Vec<f32>> {
                <$ty>::get_decoded(self, slot)
            }
            fn storage(&self) -> (bool, bool) {
                (self.sq_quantizer().is_some(), self.stores_f16())
            }
        }
    )*};
}

graph_read!(
    neardb_core::HnswIndex,
    neardb_core::HnswView<AlignedBytes>,
    neardb_core::VamanaIndex,
    neardb_core::VamanaView<AlignedBytes>
);

/// A graph kind as JavaScript sees it: its owned index and its file view.
pub(crate) trait GraphKind {
    type Owned: GraphRead;
    type File: GraphRead;
    fn to_owned(file: &Self::File) -> Self::Owned;
    fn file_bytes(file: &Self::File) -> &[u8];
    /// The file's `ids` section, if it has one.
    fn file_ids(file: &Self::File) -> Option<&[u32]>;
    fn write(owned: &Self::Owned, ids: &IdMap) -> Vec<u8>;
}

/// The index behind a graph class.
pub(crate) enum Inner<K: GraphKind> {
    /// Owned and changeable.
    Owned(K::Owned),
    /// A file copied once into an aligned buffer and searched in place.
    File(K::File),
}

/// Search options of both graph classes: `{ ef, rerank, filter, filterStrategy, stats }`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct GraphSearchOptions {
    ef: Option<usize>,
    rerank: Option<usize>,
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    filter: JsValue,
    filter_strategy: Option<String>,
    stats: Option<bool>,
}

const SEARCH_FIELDS: &[&str] = &["ef", "rerank", "filter", "filterStrategy", "stats"];

/// The state and reading methods a graph class shares.
pub(crate) struct GraphFace<K: GraphKind> {
    pub inner: Inner<K>,
    pub ids: IdMap,
    pub ef_search: usize,
}

impl<K: GraphKind> GraphFace<K> {
    /// A new, empty owned index.
    pub fn owned_new(index: K::Owned, ef_search: usize) -> Self {
        Self { inner: Inner::Owned(index), ids: IdMap::identity(0), ef_search }
    }

    /// A file view, with the ids its `ids` section gives.
    pub fn file(view: K::File, ef_search: usize) -> Result<Self, JsValue> {
        let ids = js::file_ids(K::file_ids(&view), view.slot_count(), |s| !view.is_deleted(s))?;
        Ok(Self { inner: Inner::File(view), ids, ef_search })
    }

    fn read(&self) -> &dyn GraphRead {
        match &self.inner {
            Inner::Owned(index) => index,
            Inner::File(view) => view,
        }
    }

    pub fn index(&self) -> &dyn VectorSearch {
        match &self.inner {
            Inner::Owned(index) => index,
            Inner::File(view) => view,
        }
    }

    fn slots(&self) -> u32 {
        // At most u32::MAX - 1 slots (checked when added or opened).
        self.read().slot_count() as u32
    }

    pub fn is_live(&self, slot: u32) -> bool {
        slot < self.slots() && !self.read().is_deleted(slot)
    }

    /// The live slot holding `id`.
    pub fn slot(&self, id: u32) -> Result<u32, JsValue> {
        self.ids
            .slot_of(id)
            .filter(|&s| self.is_live(s))
            .ok_or_else(|| js_error(format_args!("unknown id {id}: no vector has it")))
    }

    /// The owned index, copying a file's contents out the first time it is changed.
    pub fn owned(&mut self) -> Result<&mut K::Owned, JsValue> {
        if let Inner::File(view) = &self.inner {
            self.inner = Inner::Owned(K::to_owned(view));
        }
        match &mut self.inner {
            Inner::Owned(index) => Ok(index),
            Inner::File(_) => Err(js_error("internal error: the index is still read-only")),
        }
    }

    /// `add(vectors, ids?)`: `add` adds the prepared rows to the owned index.
    pub fn add(
        &mut self,
        vectors: &JsValue,
        ids: Option<JsValue>,
        add: impl FnOnce(&mut K::Owned, &[f32]) -> neardb_core::Result<Vec<u32>>,
    ) -> Result<js_sys::Uint32Array, JsValue> {
        let (vectors, given) = js::new_batch(vectors, ids, self.index().dim(), &self.ids)?;
        let slots = add(self.owned()?, &vectors).map_err(js_error)?;
        Ok(js::record_added(&mut self.ids, &slots, given.as_deref()))
    }

    /// `remove(id)`: `remove` deletes the slot from the owned index.
    pub fn remove(
        &mut self,
        id: &JsValue,
        remove: impl FnOnce(&mut K::Owned, u32) -> neardb_core::Result<()>,
    ) -> Result<(), JsValue> {
        let id = js::number_u32("id", id)?;
        let slot = self.slot(id)?;
        remove(self.owned()?, slot).map_err(js_error)?;
        self.ids.record_remove(id);
        Ok(())
    }

    pub fn has(&self, id: f64) -> bool {
        js::whole_u32("id", id).ok().is_some_and(|id| self.slot(id).is_ok())
    }

    /// The stored vector `id` as a copy (decoded where the index keeps binary16 or codes).
    pub fn get(&self, id: &JsValue) -> Result<Float32Array, JsValue> {
        let id = js::number_u32("id", id)?;
        let slot = self.slot(id)?;
        Ok(self.read().get_decoded(slot).map_err(js_error)?.as_slice().into())
    }

    pub fn quantization(&self) -> String {
        match self.read().storage() {
            (false, false) => "none",
            (false, true) => "f16",
            (true, false) => "sq8",
            (true, true) => "sq8+f16",
        }
        .into()
    }

    fn params(&self, opts: &GraphSearchOptions) -> Result<SearchParams, JsValue> {
        let ef = opts.ef.unwrap_or(self.ef_search);
        if ef == 0 {
            return Err(js_error("ef must be at least 1"));
        }
        if opts.rerank == Some(0) {
            return Err(js_error("rerank must be at least 1 (leave it out for the index default)"));
        }
        Ok(SearchParams::new().with_ef(ef).with_rerank_factor(opts.rerank.unwrap_or(0)))
    }

    pub fn search(&self, query: &JsValue, k: &JsValue, options: Option<JsValue>) -> Result<JsValue, JsValue> {
        let opts: GraphSearchOptions = js::options("search options", options, SEARCH_FIELDS)?;
        let params = self.params(&opts)?;
        let live = |s| self.is_live(s);
        let s = Searcher { index: self.index(), map: &self.ids, slots: self.slots(), live: &live };
        s.one(
            query,
            k,
            &params,
            &opts.filter,
            js::Reporting::new(opts.stats, opts.filter_strategy.as_deref())?,
        )
    }

    pub fn search_batch(
        &self,
        queries: &JsValue,
        k: &JsValue,
        options: Option<JsValue>,
    ) -> Result<js_sys::Array, JsValue> {
        let opts: GraphSearchOptions = js::options("search options", options, SEARCH_FIELDS)?;
        let params = self.params(&opts)?;
        let live = |s| self.is_live(s);
        let s = Searcher { index: self.index(), map: &self.ids, slots: self.slots(), live: &live };
        s.batch(
            queries,
            k,
            &params,
            &opts.filter,
            js::Reporting::new(opts.stats, opts.filter_strategy.as_deref())?,
        )
    }

    pub fn set_ef_search(&mut self, ef: f64) -> Result<(), JsValue> {
        match js::whole_u32("efSearch", ef)? {
            0 => Err(js_error("efSearch must be at least 1")),
            ef => {
                self.ef_search = ef as usize;
                Ok(())
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Owned(index) => K::write(index, &self.ids),
            Inner::File(view) => K::file_bytes(view).to_vec(),
        }
    }
}

/// `fromBytes`'s options: `{ efSearch }`; returns the default list size of searches.
pub(crate) fn open_options(options: Option<JsValue>) -> Result<usize, JsValue> {
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct OpenOptions {
        ef_search: Option<usize>,
    }
    let opts: OpenOptions = js::options("open options", options, &["efSearch"])?;
    let ef_search = opts.ef_search.unwrap_or(neardb_core::hnsw::DEFAULT_EF);
    if ef_search == 0 {
        return Err(js_error("open options: efSearch must be at least 1"));
    }
    Ok(ef_search)
}

/// The methods both graph classes expose identically (`has`, `get`, `quantizeSq8`, `storeF16`,
/// `quantization`, `search`, `searchBatch`, `efSearch`, `toBytes`), over their `g: GraphFace`.
macro_rules! graph_methods {
    ($ty:ident, $js:literal) => {
        #[wasm_bindgen(js_class = $js)]
        impl $ty {
            /// Whether a vector has the id `id`.
            pub fn has(&self, id: f64) -> bool {
                self.g.has(id)
            }

            /// The stored vector `id` (normalised, for cosine), as a copy; decoded where the
            /// index keeps binary16 rows or only SQ8 codes. Throws for an unknown id.
            pub fn get(
                &self,
                #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
            ) -> Result<js_sys::Float32Array, JsValue> {
                self.g.get(&id)
            }

            /// Quantizes the vectors to one byte per dimension (SQ8): searches walk the graph
            /// over the codes, and `toBytes` writes them. With `rerankFactor` R ≥ 1 the best
            /// `k × R` candidates are re-ranked with the exact vectors (kept); with 0 only the
            /// codes are kept in the written file, about a quarter of the vector bytes, and
            /// results carry approximate distances.
            #[wasm_bindgen(js_name = quantizeSq8)]
            pub fn quantize_sq8(
                &mut self,
                #[wasm_bindgen(js_name = rerankFactor, unchecked_param_type = "number")]
                rerank_factor: JsValue,
            ) -> Result<(), JsValue> {
                let r = crate::js::number_u32("rerankFactor", &rerank_factor)?;
                self.g.owned()?.quantize_sq8(r as usize).map_err(crate::js::js_error)
            }

            /// Stores the vectors in binary16 from now on (IEEE half precision): every vector
            /// is rounded to the nearest binary16 value (at most 2^-11 relative), the index
            /// holds and searches read half the vector bytes, and `toBytes` writes half. Call
            /// it before a large build: the `f32` rows are then never held. Throws, changing
            /// nothing, if a stored value lies beyond ±65504.
            #[wasm_bindgen(js_name = storeF16)]
            pub fn store_f16(&mut self) -> Result<(), JsValue> {
                self.g.owned()?.store_f16().map_err(crate::js::js_error)
            }

            /// How the vectors searches read are stored: `"none"` (f32), `"f16"` (binary16),
            /// `"sq8"` (SQ8 codes, re-ranked with f32 vectors or codes only) or `"sq8+f16"`
            /// (SQ8 codes re-ranked with binary16 vectors).
            #[wasm_bindgen(getter, unchecked_return_type = "\"none\" | \"f16\" | \"sq8\" | \"sq8+f16\"")]
            pub fn quantization(&self) -> String {
                self.g.quantization()
            }

            /// The `k` nearest neighbours of `query`, closest first (ties by smaller id).
            /// `options`: `ef` (candidate list — HNSW's ef, Vamana's L — at least `k` is used;
            /// default `efSearch`), `rerank`, `filter` (allowed ids, or a function
            /// `(id) => boolean`). Always returns `min(k, matches)` results: a cost model picks
            /// per query an exact scan of the allowed vectors or a filtered walk.
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

            /// The index in the NearDB file format, byte for byte what the native library
            /// writes.
            #[wasm_bindgen(js_name = toBytes)]
            pub fn to_bytes(&self) -> Vec<u8> {
                self.g.to_bytes()
            }
        }
    };
}
pub(crate) use graph_methods;
