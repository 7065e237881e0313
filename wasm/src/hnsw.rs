//! `HnswIndex` for JavaScript: the graph index, grown in memory or opened in place from a file
//! (a native `neardb build`, or `toBytes` of another tab).

use js_sys::Uint32Array;
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
graph::graph_methods!(HnswIndex, "HnswIndex");
