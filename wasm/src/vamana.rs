//! `VamanaIndex` for JavaScript: the DiskANN graph, built and grown in memory or opened in place
//! from a file (a native `neardb build --index vamana`, or `toBytes` of another tab).

use js_sys::Uint32Array;
use neardb_core::format::AlignedBytes;
use neardb_core::{IdMap, VamanaParams, VamanaView, VectorSearch};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::graph::{self, GraphFace, GraphKind, Inner};
use crate::js::{self, js_error};

/// Construction options (all optional): `{ r, l, alpha, efSearch, seed, storage }`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VamanaOptions {
    r: Option<usize>,
    l: Option<usize>,
    alpha: Option<f32>,
    ef_search: Option<usize>,
    seed: Option<u64>,
    storage: Option<String>,
}

/// Vamana as a graph kind of the shared JavaScript face.
pub(crate) struct Vamana;

impl GraphKind for Vamana {
    type Owned = neardb_core::VamanaIndex;
    type File = VamanaView<AlignedBytes>;
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

/// Approximate nearest-neighbour search over a Vamana (DiskANN) graph.
#[wasm_bindgen(js_name = VamanaIndex)]
pub struct VamanaIndex {
    g: GraphFace<Vamana>,
}

impl VamanaIndex {
    fn index(&self) -> &dyn VectorSearch {
        self.g.index()
    }

    fn vamana_params(&self) -> VamanaParams {
        match &self.g.inner {
            Inner::Owned(index) => index.params(),
            Inner::File(view) => view.params(),
        }
    }
}

#[wasm_bindgen(js_class = VamanaIndex)]
impl VamanaIndex {
    /// An empty index of `dim`-dimensional vectors ranked by `metric`. `options` (all
    /// optional): `r` (most links per node, default 32), `l` (build candidate list, default
    /// 100), `alpha` (RobustPrune's α, default 1.2), `efSearch` (default list size L of
    /// searches, 64), `seed` (insertion order; the same seed and vectors give a byte-identical
    /// index here and natively), `storage` (`"f32"` or `"f16"`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "number")] dim: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Metric")] metric: JsValue,
        options: Option<crate::VamanaOptionsArg>,
    ) -> Result<VamanaIndex, JsValue> {
        let dim = js::number_u32("dim", &dim)? as usize;
        let metric = js::metric(&metric)?;
        let opts: VamanaOptions = js::options(
            "Vamana options",
            options.map(JsValue::from),
            &["r", "l", "alpha", "efSearch", "seed", "storage"],
        )?;
        let d = VamanaParams::default();
        let params = VamanaParams {
            r: opts.r.unwrap_or(d.r),
            l: opts.l.unwrap_or(d.l),
            alpha: opts.alpha.unwrap_or(d.alpha),
            seed: opts.seed.unwrap_or(d.seed),
        };
        let ef_search = opts.ef_search.unwrap_or(neardb_core::hnsw::DEFAULT_EF);
        if ef_search == 0 {
            return Err(js_error("Vamana options: efSearch must be at least 1"));
        }
        let mut index = neardb_core::VamanaIndex::new(dim, metric, params).map_err(js_error)?;
        match opts.storage.as_deref() {
            None | Some("f32") => {}
            Some("f16") => index.store_f16().map_err(js_error)?,
            Some(other) => {
                return Err(js_error(format!(
                    "Vamana options: storage must be \"f32\" or \"f16\", got {other:?}"
                )))
            }
        }
        Ok(Self { g: GraphFace::owned_new(index, ef_search) })
    }

    /// Adds a row-major batch of vectors under the given `ids` (one per vector, none in use)
    /// or else the next free ids; returns the ids. The first batch builds the graph (two
    /// passes from the medoid); later ones are inserted one search each, reusing slots that
    /// `consolidate` freed. Validates everything first: on error nothing is added.
    #[wasm_bindgen(unchecked_return_type = "Uint32Array")]
    pub fn add(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array")] vectors: JsValue,
        ids: Option<crate::IdsArg>,
    ) -> Result<Uint32Array, JsValue> {
        self.g.add(&vectors, ids.map(JsValue::from), |index, rows| index.add(rows))
    }

    /// Removes the vector `id`: it leaves results at once and stays in the graph (searches
    /// still pass through it) until `consolidate`. Throws if no vector has that id.
    pub fn remove(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsValue> {
        self.g.remove(&id, |index, slot| index.remove(slot))
    }

    /// Re-links the graph around every removed vector and frees their slots for later adds;
    /// returns how many it freed.
    pub fn consolidate(&mut self) -> Result<u32, JsValue> {
        // At most u32::MAX - 1 slots.
        Ok(self.g.owned()?.consolidate() as u32)
    }

    /// Removed vectors still in the graph, waiting for `consolidate`.
    #[wasm_bindgen(getter, js_name = pendingDeletes)]
    pub fn pending_deletes(&self) -> u32 {
        match &self.g.inner {
            Inner::Owned(index) => index.pending_deletes() as u32,
            Inner::File(view) => view.pending_deletes() as u32,
        }
    }

    /// Most links per node (R).
    #[wasm_bindgen(getter)]
    pub fn r(&self) -> u32 {
        self.vamana_params().r as u32
    }

    /// Candidate-list size of the build (L).
    #[wasm_bindgen(getter)]
    pub fn l(&self) -> u32 {
        self.vamana_params().l as u32
    }

    /// RobustPrune's α.
    #[wasm_bindgen(getter)]
    pub fn alpha(&self) -> f32 {
        self.vamana_params().alpha
    }

    /// The id of the entry point of every search (the medoid), or `undefined` when the index
    /// is empty or the medoid was removed (it stays the entry until `consolidate`).
    #[wasm_bindgen(getter)]
    pub fn medoid(&self) -> Option<u32> {
        let slot = match &self.g.inner {
            Inner::Owned(index) => index.medoid(),
            Inner::File(view) => view.medoid(),
        }?;
        // A removed medoid stays the entry until `consolidate`, but has no id any more.
        self.g.is_live(slot).then(|| self.g.ids.id_of(slot))
    }

    /// Opens a Vamana index file: copied once into wasm memory, validated (structure,
    /// checksums, the whole graph), then searched in place. `options` may set `efSearch`.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] bytes: JsValue,
        options: Option<crate::OpenOptionsArg>,
    ) -> Result<VamanaIndex, JsValue> {
        let ef_search = graph::open_options(options.map(JsValue::from))?;
        let view = VamanaView::open(js::aligned_copy(&bytes)?).map_err(js_error)?;
        Ok(Self { g: GraphFace::file(view, ef_search)? })
    }
}

js::shared_getters!(VamanaIndex, "VamanaIndex");
graph::graph_methods!(VamanaIndex, "VamanaIndex");
