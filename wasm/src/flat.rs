//! `FlatIndex` for JavaScript: exact search, grown in memory or opened in place from a file.

use js_sys::{Float32Array, Uint32Array};
use neardb_core::format::AlignedBytes;
use neardb_core::{FlatView, IdMap, SearchParams, VectorSearch};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::js::{self, js_error, Searcher};

/// The index behind a [`FlatIndex`]: grown in memory, or read in place from file bytes.
enum Inner {
    /// Vectors owned and growable.
    Owned(neardb_core::FlatIndex),
    /// A file copied once into an aligned buffer and searched in place.
    File(FlatView<AlignedBytes>),
}

/// Options of a flat search: a filter and whether to report statistics (flat search is exact,
/// so it has no `ef`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlatSearchOptions {
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    filter: JsValue,
    stats: Option<bool>,
}

/// The fields of [`FlatSearchOptions`].
const SEARCH_FIELDS: &[&str] = &["filter", "stats"];

/// Exact (brute-force) search: the ground truth every other index is measured against.
#[wasm_bindgen(js_name = FlatIndex)]
pub struct FlatIndex {
    inner: Inner,
    ids: IdMap,
}

impl FlatIndex {
    fn index(&self) -> &dyn VectorSearch {
        match &self.inner {
            Inner::Owned(index) => index,
            Inner::File(view) => view,
        }
    }

    fn slots(&self) -> u32 {
        // At most u32::MAX vectors (checked when added or opened).
        self.index().len() as u32
    }

    /// The owned index, copying a file's vectors out the first time it is modified.
    fn owned(&mut self) -> Result<&mut neardb_core::FlatIndex, JsValue> {
        if let Inner::File(view) = &self.inner {
            self.inner = Inner::Owned(view.to_index());
        }
        match &mut self.inner {
            Inner::Owned(index) => Ok(index),
            Inner::File(_) => Err(js_error("internal error: the index is still read-only")),
        }
    }

    /// The slot holding `id`.
    fn slot(&self, id: u32) -> Result<u32, JsValue> {
        self.ids
            .slot_of(id)
            .filter(|&s| s < self.slots())
            .ok_or_else(|| js_error(format_args!("unknown id {id}: no vector has it")))
    }

    fn searcher(&self) -> Searcher<'_> {
        Searcher { index: self.index(), map: &self.ids, slots: self.slots(), live: &|_| true }
    }
}

#[wasm_bindgen(js_class = FlatIndex)]
impl FlatIndex {
    /// An empty index of `dim`-dimensional vectors ranked by `metric` (`"l2"`, `"cosine"` or
    /// `"cos"`, `"ip"` or `"dot"`, `"l1"`; case-insensitive).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "number")] dim: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Metric")] metric: JsValue,
    ) -> Result<FlatIndex, JsValue> {
        let dim = js::number_u32("dim", &dim)? as usize;
        let metric = js::metric(&metric)?;
        let index = neardb_core::FlatIndex::new(dim, metric).map_err(js_error)?;
        Ok(Self { inner: Inner::Owned(index), ids: IdMap::identity(0) })
    }

    /// Adds a row-major batch of vectors (`vectors.length` a multiple of `dim`), under the
    /// given `ids` (one per vector, none in use) or else under the next free ids (one past
    /// the largest id so far). Returns the ids. Validates everything first: on error nothing
    /// is added.
    #[wasm_bindgen(unchecked_return_type = "Uint32Array")]
    pub fn add(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array")] vectors: JsValue,
        ids: Option<crate::IdsArg>,
    ) -> Result<Uint32Array, JsValue> {
        let (vectors, given) =
            js::new_batch(&vectors, ids.map(JsValue::from), self.index().dim(), &self.ids)?;
        let slots: Vec<u32> = self.owned()?.add(&vectors).map_err(js_error)?.collect();
        Ok(js::record_added(&mut self.ids, &slots, given.as_deref()))
    }

    /// Removes the vector `id`. Throws if no vector has that id.
    pub fn remove(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsValue> {
        let id = js::number_u32("id", &id)?;
        let slot = self.slot(id)?;
        self.owned()?.swap_remove(slot).map_err(js_error)?;
        self.ids.record_swap_remove(slot);
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
            Inner::Owned(index) => index.get(slot),
            Inner::File(view) => view.get(slot),
        };
        Ok(v.map_err(js_error)?.into())
    }

    /// The `k` nearest neighbours of `query`, closest first (ties by smaller id); fewer when
    /// fewer vectors (or fewer allowed by `options.filter`) exist.
    #[wasm_bindgen(unchecked_return_type = "SearchResult")]
    pub fn search(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array")] query: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] k: JsValue,
        options: Option<crate::FlatSearchOptionsArg>,
    ) -> Result<JsValue, JsValue> {
        let opts: FlatSearchOptions =
            js::options("search options", options.map(JsValue::from), SEARCH_FIELDS)?;
        self.searcher().one(
            &query,
            &k,
            &SearchParams::new(),
            &opts.filter,
            js::Reporting::new(opts.stats, None)?,
        )
    }

    /// Searches every row of a row-major batch of queries; one result per query.
    #[wasm_bindgen(js_name = searchBatch, unchecked_return_type = "SearchResult[]")]
    pub fn search_batch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array")] queries: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] k: JsValue,
        options: Option<crate::FlatSearchOptionsArg>,
    ) -> Result<js_sys::Array, JsValue> {
        let opts: FlatSearchOptions =
            js::options("search options", options.map(JsValue::from), SEARCH_FIELDS)?;
        self.searcher().batch(
            &queries,
            &k,
            &SearchParams::new(),
            &opts.filter,
            js::Reporting::new(opts.stats, None)?,
        )
    }

    /// The index in the NearDB file format, byte for byte what the native library writes.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Owned(index) => js::collect_bytes(|sink| index.write_with_ids(&self.ids, sink)),
            Inner::File(view) => view.bytes().to_vec(),
        }
    }

    /// Opens a flat index file (from `toBytes`, the native library, or a `fetch`): copied once
    /// into wasm memory, validated (structure, checksums, values), then searched in place.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] bytes: JsValue,
    ) -> Result<FlatIndex, JsValue> {
        let view = FlatView::open(js::aligned_copy(&bytes)?).map_err(js_error)?;
        let ids = js::file_ids(view.ids(), view.len(), |_| true)?;
        Ok(Self { inner: Inner::File(view), ids })
    }
}

js::shared_getters!(FlatIndex, "FlatIndex");
