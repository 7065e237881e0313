//! The border with JavaScript: every value that comes in is checked here (type, range,
//! finiteness) and every error goes out as a JS `Error`, so the classes deal in Rust types.

use core::fmt::Display;

use js_sys::Uint8Array;
use js_sys::{Array, Float32Array, Function, Object, Reflect, Uint32Array};
use neardb_core::format::AlignedBytes;
use neardb_core::{
    Bitset, Filter, FilterStrategy, IdList, IdMap, Metric, Neighbor, SearchParams, SearchStats, VectorSearch,
    NO_ID,
};
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A JavaScript `Error` carrying `msg`.
pub(crate) fn js_error(msg: impl Display) -> JsValue {
    js_sys::Error::new(&msg.to_string()).into()
}

/// How a value looks to a JavaScript programmer, for error messages.
fn describe(v: &JsValue) -> String {
    if v.is_undefined() {
        "undefined".into()
    } else if v.is_null() {
        "null".into()
    } else if Array::is_array(v) {
        "an Array".into()
    } else if v.is_instance_of::<Float32Array>() {
        "a Float32Array".into()
    } else if let Some(name) = v
        .dyn_ref::<Object>()
        .and_then(|o| Reflect::get(&o.constructor(), &"name".into()).ok())
        .and_then(|n| n.as_string())
        .filter(|n| n != "Object" && n != "Function")
    {
        article(&name)
    } else {
        v.js_typeof().as_string().map_or_else(|| "a value".into(), |t| article(&t))
    }
}

fn article(noun: &str) -> String {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {noun}")
    } else {
        format!("a {noun}")
    }
}

/// A whole number in `0..=u32::MAX` from a JavaScript number.
pub(crate) fn whole_u32(name: &str, x: f64) -> Result<u32, JsValue> {
    if x.is_finite() && x.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&x) {
        // Exact: x is a whole number within the u32 range.
        Ok(x as u32)
    } else {
        Err(js_error(format_args!("{name} must be a whole number between 0 and {}, got {x}", u32::MAX)))
    }
}

/// A count or id argument: must be a JavaScript number holding a whole `u32`.
pub(crate) fn number_u32(name: &str, v: &JsValue) -> Result<u32, JsValue> {
    match v.as_f64() {
        Some(x) => whole_u32(name, x),
        None => Err(js_error(format_args!("{name} must be a number, got {}", describe(v)))),
    }
}

/// Vectors or a query: a `Float32Array` (or a plain array of numbers), copied into wasm
/// memory. Values are checked by the core (NaN, infinity, dimension).
pub(crate) fn floats(name: &str, v: &JsValue) -> Result<Vec<f32>, JsValue> {
    if let Some(a) = v.dyn_ref::<Float32Array>() {
        return Ok(a.to_vec());
    }
    if let Some(a) = v.dyn_ref::<Array>() {
        let mut out = Vec::with_capacity(a.length() as usize);
        for (i, x) in a.iter().enumerate() {
            match x.as_f64() {
                Some(x) => out.push(x as f32),
                None => {
                    return Err(js_error(format_args!("{name}[{i}] must be a number, got {}", describe(&x))))
                }
            }
        }
        return Ok(out);
    }
    Err(js_error(format_args!("{name} must be a Float32Array, got {}", describe(v))))
}

/// Ids: a `Uint32Array` or an array of whole numbers.
pub(crate) fn ids(name: &str, v: &JsValue) -> Result<Vec<u32>, JsValue> {
    if let Some(a) = v.dyn_ref::<Uint32Array>() {
        return Ok(a.to_vec());
    }
    if let Some(a) = v.dyn_ref::<Array>() {
        return a.iter().enumerate().map(|(i, x)| number_u32(&format!("{name}[{i}]"), &x)).collect();
    }
    Err(js_error(format_args!(
        "{name} must be a Uint32Array or an array of whole numbers, got {}",
        describe(v)
    )))
}

/// An options object read with serde-wasm-bindgen: `undefined` and `null` mean "all
/// defaults"; unknown fields and wrongly typed values are errors that name the field.
/// serde-wasm-bindgen reads only the fields a struct declares, so unknown ones (a typo such as
/// `efConstuction`, silently ignored otherwise) are caught here against `fields`.
pub(crate) fn options<T: DeserializeOwned + Default>(
    what: &str,
    v: Option<JsValue>,
    fields: &[&str],
) -> Result<T, JsValue> {
    let Some(v) = v.filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(T::default());
    };
    if !v.is_object() || Array::is_array(&v) || v.is_function() {
        return Err(js_error(format_args!("{what} must be an object, got {}", describe(&v))));
    }
    for key in Object::keys(v.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !fields.contains(&key.as_str()) {
            let expected: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
            return Err(js_error(format_args!(
                "{what}: unknown field `{key}`, expected {}",
                expected.join(" or ")
            )));
        }
    }
    // serde_path_to_error names the field whose value has the wrong type.
    serde_path_to_error::deserialize(serde_wasm_bindgen::Deserializer::from(v)).map_err(|e| {
        let field = e.path().to_string();
        let inner = JsValue::from(e.into_inner());
        let reason = match inner.dyn_ref::<js_sys::Error>() {
            Some(err) => String::from(err.message()),
            None => describe(&inner),
        };
        js_error(format_args!("{what}: {field}: {reason}"))
    })
}

/// How many vectors a row-major batch holds, with the core's errors (a batch shorter than one
/// vector is a dimension mismatch; NaN or infinity anywhere is rejected).
pub(crate) fn count_vectors(vectors: &[f32], dim: usize) -> Result<usize, JsValue> {
    if vectors.len() < dim && !vectors.is_empty() {
        return Err(js_error(neardb_core::Error::DimensionMismatch { expected: dim, got: vectors.len() }));
    }
    neardb_core::check_vectors(vectors, dim).map_err(js_error)
}

/// The slots a search may return, from a JavaScript filter: a `Uint32Array` or array of
/// allowed ids (a sorted slot list when few, so an exact search over them costs the matches;
/// else a bitset, which a walk tests in one load), or a function `(id) => boolean` called once per live vector (kept as a bitset). `None` for
/// `undefined`/`null` (no filter). Ids the index does not hold are ignored.
pub(crate) fn filter(
    v: &JsValue,
    map: &IdMap,
    slots: u32,
    live: &dyn Fn(u32) -> bool,
) -> Result<Option<Box<dyn Filter>>, JsValue> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    if let Some(f) = v.dyn_ref::<Function>() {
        let mut allowed = Bitset::new(slots);
        for slot in (0..slots).filter(|&s| live(s)) {
            let id = map.id_of(slot);
            if f.call1(&JsValue::NULL, &JsValue::from(id))?.is_truthy() {
                allowed.insert(slot);
            }
        }
        return Ok(Some(Box::new(allowed)));
    }
    if v.is_instance_of::<Uint32Array>() || Array::is_array(v) {
        let ids = ids("filter", v)?;
        // A list of more than one id in 32 slots is larger than a bitset of them, and a walk
        // asks a bitset in one load where a list needs a binary search.
        if ids.len() as u64 * 32 >= u64::from(slots) {
            let mut allowed = Bitset::new(slots);
            for slot in ids.into_iter().filter_map(|id| map.slot_of(id)) {
                allowed.insert(slot);
            }
            return Ok(Some(Box::new(allowed)));
        }
        let slots: Vec<u32> = ids.into_iter().filter_map(|id| map.slot_of(id)).collect();
        return Ok(Some(Box::new(IdList::new(slots))));
    }
    Err(js_error(format_args!(
        "filter must be a Uint32Array or array of ids, or a function (id) => boolean, got {}",
        describe(v)
    )))
}

/// The search options every class shares besides its own knobs: whether to report what the
/// search did, and how a filtered search is answered.
#[derive(Clone, Copy, Default)]
pub(crate) struct Reporting {
    /// Add `stats` to each result.
    pub stats: bool,
    pub strategy: FilterStrategy,
}

impl Reporting {
    /// From the `stats` and `filterStrategy` options.
    pub fn new(stats: Option<bool>, strategy: Option<&str>) -> Result<Self, JsValue> {
        let strategy = match strategy {
            None | Some("auto") => FilterStrategy::Auto,
            Some("scan") => FilterStrategy::Scan,
            Some("walk") => FilterStrategy::Walk,
            Some("twoHop") => FilterStrategy::TwoHop,
            Some(other) => {
                return Err(js_error(format_args!(
                    "filterStrategy must be \"auto\", \"scan\", \"walk\" or \"twoHop\", got \"{other}\""
                )))
            }
        };
        Ok(Self { stats: stats.unwrap_or(false), strategy })
    }
}

/// `{ ids: Uint32Array, distances: Float32Array }` with slots turned into caller ids, and
/// `stats: { plan, matches, expanded, distances }` when asked for.
pub(crate) fn result(
    found: &[Neighbor],
    map: &IdMap,
    stats: Option<&SearchStats>,
) -> Result<JsValue, JsValue> {
    let ids: Vec<u32> = found.iter().map(|n| map.id_of(n.id)).collect();
    debug_assert!(!ids.contains(&NO_ID));
    let distances: Vec<f32> = found.iter().map(|n| n.distance).collect();
    let out = Object::new();
    Reflect::set(&out, &"ids".into(), &Uint32Array::from(ids.as_slice()))?;
    Reflect::set(&out, &"distances".into(), &Float32Array::from(distances.as_slice()))?;
    if let Some(stats) = stats {
        let s = Object::new();
        Reflect::set(&s, &"plan".into(), &stats.plan.name().into())?;
        // `matches` is null without a filter.
        let matches = stats.matches.map_or(JsValue::NULL, |m| JsValue::from(m as f64));
        Reflect::set(&s, &"matches".into(), &matches)?;
        Reflect::set(&s, &"expanded".into(), &JsValue::from(stats.expanded))?;
        Reflect::set(&s, &"distances".into(), &JsValue::from(stats.distances))?;
        Reflect::set(&out, &"stats".into(), &s)?;
    }
    Ok(out.into())
}

/// The part of `search` and `searchBatch` both index classes share: argument checks,
/// filter, id mapping.
pub(crate) struct Searcher<'a> {
    pub index: &'a dyn VectorSearch,
    pub map: &'a IdMap,
    pub slots: u32,
    pub live: &'a dyn Fn(u32) -> bool,
}

impl Searcher<'_> {
    fn k(&self, k: &JsValue) -> Result<usize, JsValue> {
        let k = number_u32("k", k)? as usize;
        // No search returns more than `len` results, so a larger k changes nothing but the
        // memory reserved for results; clamping keeps a huge k from exhausting memory. k = 0
        // and an empty index still reach the core and get its errors.
        Ok(if k == 0 { 0 } else { k.min(self.index.len().max(1)) })
    }

    pub fn one(
        &self,
        query: &JsValue,
        k: &JsValue,
        params: &SearchParams,
        filter_value: &JsValue,
        reporting: Reporting,
    ) -> Result<JsValue, JsValue> {
        let query = floats("query", query)?;
        let k = self.k(k)?;
        let allowed = filter(filter_value, self.map, self.slots, self.live)?;
        let params = params.with_filter_strategy(reporting.strategy);
        let mut found = Vec::with_capacity(k);
        let stats = self
            .index
            .search_with_stats(&query, k, &params, allowed.as_deref(), &mut found)
            .map_err(js_error)?;
        result(&found, self.map, reporting.stats.then_some(&stats))
    }

    pub fn batch(
        &self,
        queries: &JsValue,
        k: &JsValue,
        params: &SearchParams,
        filter_value: &JsValue,
        reporting: Reporting,
    ) -> Result<Array, JsValue> {
        let queries = floats("queries", queries)?;
        let k = self.k(k)?;
        let dim = self.index.dim();
        if queries.len() % dim != 0 {
            return Err(js_error(neardb_core::Error::RaggedVectors { len: queries.len(), dim }));
        }
        let allowed = filter(filter_value, self.map, self.slots, self.live)?;
        let allowed = allowed.as_deref();
        let params = params.with_filter_strategy(reporting.strategy);
        let out = Array::new();
        let mut found = Vec::new();
        for (i, q) in queries.chunks_exact(dim).enumerate() {
            let stats = self
                .index
                .search_with_stats(q, k, &params, allowed, &mut found)
                .map_err(|e| js_error(format_args!("query {i}: {e}")))?;
            out.push(&result(&found, self.map, reporting.stats.then_some(&stats))?);
        }
        Ok(out)
    }
}

/// Copies a `Uint8Array` into an 8-byte aligned buffer in wasm memory (the one copy).
pub(crate) fn aligned_copy(bytes: &JsValue) -> Result<AlignedBytes, JsValue> {
    let Some(bytes) = bytes.dyn_ref::<Uint8Array>() else {
        return Err(js_error("bytes must be a Uint8Array"));
    };
    let mut aligned = AlignedBytes::zeroed(bytes.length() as usize);
    // Same length on both sides, so `copy_to` cannot fail.
    bytes.copy_to(aligned.as_mut_slice());
    Ok(aligned)
}

/// Parses a metric name given from JavaScript.
pub(crate) fn metric(v: &JsValue) -> Result<Metric, JsValue> {
    match v.as_string() {
        Some(s) => s.parse().map_err(js_error),
        None => Err(js_error("metric must be a string: \"l2\", \"cosine\", \"ip\" or \"l1\"")),
    }
}

/// A batch for `add`, checked before anything changes: the vectors (a whole number of rows, no
/// NaN/infinity) and the caller's ids, if any (one per vector, none in use).
pub(crate) fn new_batch(
    vectors: &JsValue,
    ids: Option<JsValue>,
    dim: usize,
    map: &IdMap,
) -> Result<(Vec<f32>, Option<Vec<u32>>), JsValue> {
    let vectors = floats("vectors", vectors)?;
    let given = match ids.filter(|v| !v.is_null() && !v.is_undefined()) {
        Some(v) => Some(self::ids("ids", &v)?),
        None => None,
    };
    let n = count_vectors(&vectors, dim)?;
    map.check_new(n, given.as_deref()).map_err(js_error)?;
    Ok((vectors, given))
}

/// Records the slots an `add` filled and returns the ids they got, as `add` reports them.
pub(crate) fn record_added(map: &mut IdMap, slots: &[u32], given: Option<&[u32]>) -> Uint32Array {
    map.record_add(slots, given);
    let ids: Vec<u32> = slots.iter().map(|&s| map.id_of(s)).collect();
    ids.as_slice().into()
}

/// The bytes an index's streaming writer produces.
pub(crate) fn collect_bytes(
    write: impl FnOnce(
        &mut dyn FnMut(&[u8]) -> Result<(), core::convert::Infallible>,
    ) -> Result<u64, core::convert::Infallible>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = write(&mut |b: &[u8]| {
        out.extend_from_slice(b);
        Ok(())
    });
    out
}

/// The id map of an opened file: its `ids` section (entries of `live` slots only), or the
/// identity over `slots`.
pub(crate) fn file_ids(
    ids: Option<&[u32]>,
    slots: usize,
    live: impl Fn(u32) -> bool,
) -> Result<IdMap, JsValue> {
    match ids {
        Some(ids) => IdMap::from_ids(ids, live).map_err(js_error),
        None => Ok(IdMap::identity(slots as u32)),
    }
}

/// The read-only properties both index classes share, as one more `impl` block of each class
/// (`$ty` needs a method `index(&self) -> &dyn VectorSearch`).
macro_rules! shared_getters {
    ($ty:ident, $js:literal) => {
        #[wasm_bindgen(js_class = $js)]
        impl $ty {
            /// Number of vectors stored (removed ones not counted).
            #[wasm_bindgen(getter)]
            pub fn length(&self) -> u32 {
                // At most u32::MAX vectors (checked when added or opened).
                self.index().len() as u32
            }

            /// Whether the index holds no vector.
            #[wasm_bindgen(getter, js_name = isEmpty)]
            pub fn is_empty(&self) -> bool {
                self.index().is_empty()
            }

            /// Dimension of the vectors.
            #[wasm_bindgen(getter)]
            pub fn dim(&self) -> u32 {
                // At most neardb_core::MAX_DIM (65536).
                self.index().dim() as u32
            }

            /// The metric's canonical name: `"l2"`, `"cosine"`, `"ip"` or `"l1"`.
            #[wasm_bindgen(getter, unchecked_return_type = "Metric")]
            pub fn metric(&self) -> String {
                self.index().metric().name().into()
            }
        }
    };
}
pub(crate) use shared_getters;
