//! `IvfPqIndex` for JavaScript: the compressed index (inverted lists of product-quantized
//! residuals, optional exact re-rank), trained and grown in memory or opened in place from a
//! file (a native `neardb build --index ivfpq`, or `toBytes` of another tab).

use js_sys::Uint32Array;
use neardb_core::format::AlignedBytes;
use neardb_core::{IdMap, IvfPqParams, IvfPqView, SearchParams, VectorSearch};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::js::{self, js_error, Searcher};

/// The index behind an [`IvfPqIndex`].
enum Inner {
    Owned(neardb_core::IvfPqIndex),
    File(IvfPqView<AlignedBytes>),
}

/// Construction options (all optional): `{ nlist, pqM, nbits, seed, keepVectors }`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IvfPqOptions {
    nlist: Option<usize>,
    pq_m: Option<usize>,
    nbits: Option<u8>,
    seed: Option<u64>,
    keep_vectors: Option<bool>,
}

/// Search options: `{ nprobe, rerank, filter, stats }`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IvfPqSearchOptions {
    nprobe: Option<usize>,
    rerank: Option<usize>,
    #[serde(default, with = "serde_wasm_bindgen::preserve")]
    filter: JsValue,
    stats: Option<bool>,
}

const SEARCH_FIELDS: &[&str] = &["nprobe", "rerank", "filter", "stats"];

/// Approximate search over compressed vectors: the query's nearest `nprobe` lists are scanned
/// with product-quantization lookup tables, and (with `rerank` R) the best `k × R` re-ranked
/// with the exact vectors.
#[wasm_bindgen(js_name = IvfPqIndex)]
pub struct IvfPqIndex {
    inner: Inner,
    ids: IdMap,
}

impl IvfPqIndex {
    fn index(&self) -> &dyn VectorSearch {
        match &self.inner {
            Inner::Owned(index) => index,
            Inner::File(view) => view,
        }
    }

    fn params(&self) -> IvfPqParams {
        match &self.inner {
            Inner::Owned(index) => index.params(),
            Inner::File(view) => view.params(),
        }
    }

    fn owned(&mut self) -> Result<&mut neardb_core::IvfPqIndex, JsValue> {
        if let Inner::File(view) = &self.inner {
            self.inner = Inner::Owned(view.to_index());
        }
        match &mut self.inner {
            Inner::Owned(index) => Ok(index),
            Inner::File(_) => Err(js_error("internal error: the index is still read-only")),
        }
    }

    fn search_params(opts: &IvfPqSearchOptions) -> Result<SearchParams, JsValue> {
        if opts.nprobe == Some(0) {
            return Err(js_error("nprobe must be at least 1 (leave it out for the default, 8)"));
        }
        Ok(SearchParams::new()
            .with_nprobe(opts.nprobe.unwrap_or(0))
            .with_rerank_factor(opts.rerank.unwrap_or(0)))
    }

    fn searcher(&self) -> Searcher<'_> {
        // No removal: every slot below the count is live.
        Searcher { index: self.index(), map: &self.ids, slots: self.index().len() as u32, live: &|_| true }
    }
}

#[wasm_bindgen(js_class = IvfPqIndex)]
impl IvfPqIndex {
    /// An untrained index of `dim`-dimensional vectors ranked by `metric` (`l2`, `cosine` or
    /// `ip`). `options` (all optional): `nlist` (lists, default 256), `pqM` (sub-quantizers,
    /// must divide `dim`, default 16), `nbits` (8 or 4), `seed`, `keepVectors` (keep the exact
    /// vectors for re-rank, default true).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "number")] dim: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Metric")] metric: JsValue,
        options: Option<crate::IvfPqOptionsArg>,
    ) -> Result<IvfPqIndex, JsValue> {
        let dim = js::number_u32("dim", &dim)? as usize;
        let metric = js::metric(&metric)?;
        let opts: IvfPqOptions = js::options(
            "IvfPqIndex options",
            options.map(JsValue::from),
            &["nlist", "pqM", "nbits", "seed", "keepVectors"],
        )?;
        let d = IvfPqParams::default();
        let params = IvfPqParams {
            nlist: opts.nlist.unwrap_or(d.nlist),
            pq_m: opts.pq_m.unwrap_or(d.pq_m),
            nbits: opts.nbits.unwrap_or(d.nbits),
            seed: opts.seed.unwrap_or(d.seed),
            keep_vectors: opts.keep_vectors.unwrap_or(d.keep_vectors),
            ..d
        };
        let index = neardb_core::IvfPqIndex::new(dim, metric, params).map_err(js_error)?;
        Ok(Self { inner: Inner::Owned(index), ids: IdMap::identity(0) })
    }

    /// Learns the coarse centroids and the product quantizer from a row-major sample (at least
    /// `nlist` and 2^nbits vectors). Only while the index is empty.
    pub fn train(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array")] vectors: JsValue,
    ) -> Result<(), JsValue> {
        let data = js::floats("vectors", &vectors)?;
        self.owned()?.train(&data).map_err(js_error)
    }

    /// Encodes and adds a row-major batch (after `train`), under the given `ids` or the next
    /// free ones; returns the ids.
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

    /// The `k` nearest neighbours of `query`. `options`: `nprobe` (lists scanned, default 8),
    /// `rerank` (re-rank the best `k × rerank` exactly; needs the kept vectors; default 0:
    /// approximate distances), `filter` (allowed ids or a predicate).
    #[wasm_bindgen(unchecked_return_type = "SearchResult")]
    pub fn search(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array")] query: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] k: JsValue,
        options: Option<crate::IvfPqSearchOptionsArg>,
    ) -> Result<JsValue, JsValue> {
        let opts: IvfPqSearchOptions =
            js::options("search options", options.map(JsValue::from), SEARCH_FIELDS)?;
        self.searcher().one(
            &query,
            &k,
            &Self::search_params(&opts)?,
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
        options: Option<crate::IvfPqSearchOptionsArg>,
    ) -> Result<js_sys::Array, JsValue> {
        let opts: IvfPqSearchOptions =
            js::options("search options", options.map(JsValue::from), SEARCH_FIELDS)?;
        self.searcher().batch(
            &queries,
            &k,
            &Self::search_params(&opts)?,
            &opts.filter,
            js::Reporting::new(opts.stats, None)?,
        )
    }

    /// Number of inverted lists.
    #[wasm_bindgen(getter)]
    pub fn nlist(&self) -> u32 {
        self.params().nlist as u32
    }

    /// Number of PQ sub-quantizers (bytes per code at 8 bits).
    #[wasm_bindgen(getter, js_name = pqM)]
    pub fn pq_m(&self) -> u32 {
        self.params().pq_m as u32
    }

    /// The index in the NearDB file format, byte for byte what the native library writes.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Owned(index) => js::collect_bytes(|sink| index.write_with_ids(&self.ids, sink)),
            Inner::File(view) => view.bytes().to_vec(),
        }
    }

    /// Opens an IVF-PQ file: copied once into wasm memory, validated, searched in place.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] bytes: JsValue,
    ) -> Result<IvfPqIndex, JsValue> {
        let view = IvfPqView::open(js::aligned_copy(&bytes)?).map_err(js_error)?;
        let ids = js::file_ids(view.ids(), view.len(), |_| true)?;
        Ok(Self { inner: Inner::File(view), ids })
    }
}

js::shared_getters!(IvfPqIndex, "IvfPqIndex");
