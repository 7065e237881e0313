//! The Qdrant REST endpoints: request bodies read leniently where Qdrant is (unknown fields
//! and nulls are ignored, as its clients send many), strictly where a value is wrong (a 400
//! naming it), and a 501 naming any feature NearDB does not have. Ids are unsigned integers
//! or UUIDs (kept in their canonical lowercase form); scores follow Qdrant's convention
//! (larger is better for Cosine and Dot; Euclid is the Euclidean distance).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use neardb::collection::{filter_from_json, CollectionConfig, Hit, Record, RecordId, SearchOptions};
use neardb::payload::{Condition, PayloadFilter};
use neardb::{FilterStrategy, Metric, SearchParams};
use serde_json::{json, Map, Value};

use crate::{blocking, maybe_commit, ok, ok_typed, parse_body, ApiError, AppState, Name, Served, Wait};

type St = State<Arc<AppState>>;

/// A point id from JSON: an unsigned integer, or a UUID (any case, with or without hyphens).
pub(crate) fn point_id(v: &Value) -> Result<RecordId, ApiError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(RecordId::Num)
            .ok_or_else(|| ApiError::bad(format!("point id {n} is not an unsigned integer"))),
        Value::String(s) => {
            uuid(s).map(RecordId::Text).ok_or_else(|| ApiError::bad(format!("Unable to parse UUID: {s}")))
        }
        other => {
            Err(ApiError::bad(format!("point id must be an unsigned integer or a UUID string, got {other}")))
        }
    }
}

/// The canonical form of a UUID (lowercase, hyphenated), if `s` is one.
fn uuid(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|&c| c != '-').collect();
    let hyphens_ok =
        !s.contains('-') || (s.len() == 36 && [8, 13, 18, 23].iter().all(|&i| s.as_bytes()[i] == b'-'));
    if hex.len() != 32 || !hyphens_ok || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

pub(crate) fn id_json(id: &RecordId) -> Value {
    match id {
        RecordId::Num(n) => json!(n),
        RecordId::Text(s) => json!(s),
    }
}

fn distance_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Cosine => "Cosine",
        Metric::L2 => "Euclid",
        Metric::InnerProduct => "Dot",
        Metric::L1 => "Manhattan",
    }
}

/// Qdrant's score of a NearDB distance.
fn score(metric: Metric, distance: f32) -> f32 {
    match metric {
        Metric::Cosine => 1.0 - distance,
        Metric::InnerProduct => -distance,
        Metric::L2 => distance.max(0.0).sqrt(),
        Metric::L1 => distance,
    }
}

/// Whether a score passes `score_threshold` (at least it for similarities, at most it for
/// distances).
fn passes(metric: Metric, score: f32, threshold: Option<f32>) -> bool {
    match (threshold, metric) {
        (None, _) => true,
        (Some(t), Metric::Cosine | Metric::InnerProduct) => score >= t,
        (Some(t), _) => score <= t,
    }
}

fn object(body: &Value) -> Result<&Map<String, Value>, ApiError> {
    body.as_object().ok_or_else(|| ApiError::bad("the request body must be a JSON object"))
}

/// A field that must be absent or null (a feature NearDB lacks otherwise).
fn unsupported(body: &Map<String, Value>, field: &str, feature: &str) -> Result<(), ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(ApiError::unsupported(feature)),
    }
}

fn get_u64(body: &Map<String, Value>, field: &str, default: u64) -> Result<u64, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            v.as_u64().ok_or_else(|| ApiError::bad(format!("{field} must be an unsigned integer, got {v}")))
        }
    }
}

fn vector_of(v: &Value, what: &str) -> Result<Vec<f32>, ApiError> {
    match v {
        Value::Array(xs) => xs
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| ApiError::bad(format!("{what} must hold only numbers"))),
        Value::Object(_) => {
            Err(ApiError::unsupported("named or sparse vectors (one unnamed dense vector per point)"))
        }
        other => Err(ApiError::bad(format!("{what} must be an array of numbers, got {other}"))),
    }
}

/// Which payload fields a response carries.
#[derive(Debug)]
enum PayloadSelection {
    None,
    All,
    Include(Vec<String>),
    Exclude(Vec<String>),
}

fn payload_selection(v: Option<&Value>, default: bool) -> Result<PayloadSelection, ApiError> {
    let names = |v: &Value| -> Result<Vec<String>, ApiError> {
        v.as_array()
            .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
            .ok_or_else(|| {
                ApiError::bad(
                    "with_payload: expected a boolean, a list of field names, or {include|exclude: [...]}",
                )
            })
    };
    Ok(match v {
        None | Some(Value::Null) => {
            if default {
                PayloadSelection::All
            } else {
                PayloadSelection::None
            }
        }
        Some(Value::Bool(true)) => PayloadSelection::All,
        Some(Value::Bool(false)) => PayloadSelection::None,
        Some(v @ Value::Array(_)) => PayloadSelection::Include(names(v)?),
        Some(Value::Object(o)) if o.contains_key("include") => {
            PayloadSelection::Include(names(&o["include"])?)
        }
        Some(Value::Object(o)) if o.contains_key("exclude") => {
            PayloadSelection::Exclude(names(&o["exclude"])?)
        }
        Some(other) => return Err(ApiError::bad(format!("with_payload: unexpected {other}"))),
    })
}

fn select_payload(sel: &PayloadSelection, metadata: Value) -> Option<Value> {
    let all = match metadata {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    match sel {
        PayloadSelection::None => None,
        PayloadSelection::All => Some(Value::Object(all)),
        PayloadSelection::Include(keys) => {
            Some(Value::Object(all.into_iter().filter(|(k, _)| keys.contains(k)).collect()))
        }
        PayloadSelection::Exclude(keys) => {
            Some(Value::Object(all.into_iter().filter(|(k, _)| !keys.contains(k)).collect()))
        }
    }
}

fn with_vector(v: Option<&Value>) -> Result<bool, ApiError> {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) | Some(Value::Array(_)) => Ok(true),
        Some(other) => Err(ApiError::bad(format!("with_vector: expected a boolean, got {other}"))),
    }
}

/// UUIDs inside `has_id` conditions, put in canonical form (ids are stored that way).
fn canonical_ids(v: &mut Value) -> Result<(), ApiError> {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if k == "has_id" {
                    if let Value::Array(ids) = x {
                        for id in ids.iter_mut() {
                            *id = id_json(&point_id(id)?);
                        }
                    }
                } else {
                    canonical_ids(x)?;
                }
            }
        }
        Value::Array(items) => {
            for x in items {
                canonical_ids(x)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn filter_of(body: &Map<String, Value>) -> Result<Option<PayloadFilter>, ApiError> {
    match body.get("filter") {
        None | Some(Value::Null) => Ok(None),
        Some(f) => {
            let mut f = f.clone();
            canonical_ids(&mut f)?;
            filter_from_json(&f).map(Some).map_err(|e| ApiError::bad(e.to_string()))
        }
    }
}

/// What a search request asks, read from Qdrant's search or query body.
#[derive(Debug)]
struct Search {
    vector: Option<Vec<f32>>,
    /// Query by a stored point: its vector, the point itself left out.
    by_id: Option<RecordId>,
    filter: Option<PayloadFilter>,
    limit: usize,
    offset: usize,
    payload: PayloadSelection,
    with_vector: bool,
    threshold: Option<f32>,
    params: SearchParams,
}

fn search_params(body: &Map<String, Value>) -> Result<SearchParams, ApiError> {
    let mut params = SearchParams::new();
    if let Some(p) = body.get("params").and_then(Value::as_object) {
        if let Some(ef) = p.get("hnsw_ef").filter(|v| !v.is_null()) {
            let ef = ef
                .as_u64()
                .filter(|&e| e > 0)
                .ok_or_else(|| ApiError::bad("params.hnsw_ef must be a positive integer"))?;
            params = params.with_ef(ef as usize);
        }
        if p.get("exact").and_then(Value::as_bool) == Some(true) {
            params = params.with_filter_strategy(FilterStrategy::Scan);
        }
    }
    Ok(params)
}

/// The everyday shape of a search or query body, read straight into types: the vector's
/// numbers go into a `Vec<f32>` with no `Value` tree of 384 numbers on the way. Anything else
/// (a query by id or of another kind, a named vector, a field this does not know, a value of
/// the wrong type) is left to [`read_search`], which knows every form and names every mistake.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainSearch {
    #[serde(default, deserialize_with = "numbers")]
    query: Option<Vec<f32>>,
    #[serde(default, deserialize_with = "numbers")]
    vector: Option<Vec<f32>>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    with_payload: Option<Value>,
    #[serde(default)]
    with_vector: Option<Value>,
    #[serde(default)]
    score_threshold: Option<f32>,
}

/// A list of numbers (or null) read by [`fast_numbers`] where it can, else by serde_json,
/// which then also names what is wrong.
fn numbers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<f32>>, D::Error> {
    let raw: &'de serde_json::value::RawValue = serde::Deserialize::deserialize(d)?;
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    match fast_numbers(text) {
        Some(v) => Ok(Some(v)),
        None => serde_json::from_str::<Vec<f32>>(text).map(Some).map_err(serde::de::Error::custom),
    }
}

/// A JSON array of plain decimal numbers as `f32`s, exactly as serde_json reads them (integers
/// converted directly, decimals through the correctly rounded `f64`), or `None` for anything
/// it leaves to serde_json: other syntax, more than 18 digits, results out of range. Reading a
/// 384-number query this way costs a fraction of serde_json's exact float parsing, which the
/// collection's metadata needs (`float_roundtrip`) and the query vector does not.
fn fast_numbers(text: &str) -> Option<Vec<f32>> {
    let b = text.as_bytes();
    let skip = |mut i: usize| {
        while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            i += 1;
        }
        i
    };
    let mut i = skip(0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i = skip(i + 1);
    let mut out = Vec::with_capacity(b.len() / 8);
    if b.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            let (v, next) = fast_number(b, i)?;
            out.push(v);
            i = skip(next);
            match b.get(i) {
                Some(b',') => i = skip(i + 1),
                Some(b']') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip(i) == b.len()).then_some(out)
}

/// One JSON number starting at `b[i]`: its value as serde_json gives an `f32`, and where it
/// ends.
fn fast_number(b: &[u8], mut i: usize) -> Option<(f32, usize)> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
        1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let negative = b.get(i) == Some(&b'-');
    i += usize::from(negative);
    let (mut mantissa, mut digits) = (0u64, 0u32);
    let int_start = i;
    while let Some(d @ b'0'..=b'9') = b.get(i).copied() {
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
        digits += u32::from(mantissa != 0);
        i += 1;
    }
    // JSON: at least one digit, and no leading zero before more digits.
    if i == int_start || (b[int_start] == b'0' && i - int_start > 1) {
        return None;
    }
    let mut exponent: i32 = 0;
    let mut is_float = false;
    if b.get(i) == Some(&b'.') {
        is_float = true;
        i += 1;
        let frac_start = i;
        while let Some(d @ b'0'..=b'9') = b.get(i).copied() {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            // Zeros before the first significant digit hold nothing.
            digits += u32::from(mantissa != 0);
            exponent -= 1;
            i += 1;
        }
        if i == frac_start {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        is_float = true;
        i += 1;
        let minus = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let (mut e, exp_start) = (0i32, i);
        while let Some(d @ b'0'..=b'9') = b.get(i).copied() {
            e = e.checked_mul(10)?.checked_add(i32::from(d - b'0'))?;
            i += 1;
        }
        if i == exp_start {
            return None;
        }
        exponent = exponent.checked_add(if minus { -e } else { e })?;
    }
    if digits > 18 {
        return None;
    }
    if !is_float {
        // serde_json hands integers to the f32 as integers.
        let v = match (negative, mantissa) {
            // serde_json keeps the sign of "-0".
            (true, 0) => -0.0,
            (true, m) => -(m as i64) as f32,
            (false, m) => m as f32,
        };
        return Some((v, i));
    }
    let magnitude = if mantissa == 0 {
        0.0
    } else if mantissa < (1 << 53) && exponent.unsigned_abs() <= 22 {
        // Both exact in f64, so one correctly rounded operation (Clinger's fast path).
        let p = POW10[exponent.unsigned_abs() as usize];
        if exponent < 0 {
            mantissa as f64 / p
        } else {
            mantissa as f64 * p
        }
    } else {
        let f: f64 = std::str::from_utf8(&b[int_start..i]).ok()?.parse().ok()?;
        if !f.is_finite() {
            return None;
        }
        f
    };
    let v = if negative { -magnitude } else { magnitude };
    Some((v as f32, i))
}

/// A body of the everyday shape as a [`Search`]; `None` when the body needs [`read_search`].
fn plain_search(body: &[u8], query_api: bool) -> Option<Result<Search, ApiError>> {
    let p: PlainSearch = serde_json::from_slice(body).ok()?;
    let vector = if query_api {
        if p.vector.is_some() {
            return None;
        }
        p.query
    } else {
        if p.query.is_some() || p.limit.is_none() {
            return None;
        }
        Some(p.vector?)
    };
    let mut rest = Map::new();
    for (key, v) in [("filter", p.filter), ("params", p.params)] {
        if let Some(v) = v {
            rest.insert(key.to_owned(), v);
        }
    }
    let read = || -> Result<Search, ApiError> {
        Ok(Search {
            vector,
            by_id: None,
            filter: filter_of(&rest)?,
            limit: p.limit.unwrap_or(if query_api { 10 } else { 0 }) as usize,
            offset: p.offset.unwrap_or(0) as usize,
            payload: payload_selection(p.with_payload.as_ref(), false)?,
            with_vector: with_vector(p.with_vector.as_ref())?,
            threshold: p.score_threshold,
            params: search_params(&rest)?,
        })
    };
    Some(read())
}

fn read_search(body: &Value, query_api: bool) -> Result<Search, ApiError> {
    let b = object(body)?;
    let (vector, by_id) = if query_api {
        unsupported(b, "prefetch", "prefetch (multi-stage queries)")?;
        unsupported(b, "lookup_from", "lookup_from")?;
        match b.get("using") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(_) => return Err(ApiError::unsupported("named vectors (using)")),
        }
        match b.get("query") {
            None | Some(Value::Null) => (None, None),
            Some(q @ Value::Array(_)) => (Some(vector_of(q, "query")?), None),
            Some(q @ (Value::Number(_) | Value::String(_))) => (None, Some(point_id(q)?)),
            Some(Value::Object(o)) => match o.get("nearest") {
                Some(n @ Value::Array(_)) => (Some(vector_of(n, "query.nearest")?), None),
                Some(n @ (Value::Number(_) | Value::String(_))) => (None, Some(point_id(n)?)),
                _ => {
                    let kind = o.keys().next().cloned().unwrap_or_default();
                    return Err(ApiError::unsupported(&format!(
                        "query type {kind:?} (NearDB answers nearest queries)"
                    )));
                }
            },
            Some(other) => return Err(ApiError::bad(format!("query: unexpected {other}"))),
        }
    } else {
        let v = b.get("vector").ok_or_else(|| ApiError::bad("missing field `vector`"))?;
        let v = match v {
            Value::Object(o) if o.contains_key("vector") => {
                match o.get("name").and_then(Value::as_str) {
                    Some("") | None => {}
                    Some(_) => return Err(ApiError::unsupported("named vectors")),
                }
                &o["vector"]
            }
            v => v,
        };
        (Some(vector_of(v, "vector")?), None)
    };
    let default_limit = if query_api { 10 } else { 0 };
    let limit = get_u64(b, "limit", default_limit)? as usize;
    if !query_api && !b.contains_key("limit") {
        return Err(ApiError::bad("missing field `limit`"));
    }
    let threshold = match b.get("score_threshold") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_f64().ok_or_else(|| ApiError::bad("score_threshold must be a number"))? as f32),
    };
    Ok(Search {
        vector,
        by_id,
        filter: filter_of(b)?,
        limit,
        offset: get_u64(b, "offset", 0)? as usize,
        payload: payload_selection(b.get("with_payload"), false)?,
        with_vector: with_vector(b.get("with_vector"))?,
        threshold,
        params: search_params(b)?,
    })
}

/// A point as searches answer it, serialized straight from its fields.
#[derive(serde::Serialize)]
pub(crate) struct ScoredPoint {
    id: PointId,
    version: u64,
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vector: Option<Vec<f32>>,
}

/// A point id as JSON: a number or a string.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum PointId {
    Num(u64),
    Text(String),
}

impl From<RecordId> for PointId {
    fn from(id: RecordId) -> Self {
        match id {
            RecordId::Num(n) => Self::Num(n),
            RecordId::Text(s) => Self::Text(s),
        }
    }
}

/// `{"points": […]}`, the query API's answer.
#[derive(serde::Serialize)]
pub(crate) struct QueryAnswer {
    points: Vec<ScoredPoint>,
}

fn scored(metric: Metric, hits: Vec<Hit>, s: &Search) -> Vec<ScoredPoint> {
    hits.into_iter()
        .skip(s.offset)
        .filter(|h| Some(&h.id) != s.by_id.as_ref())
        .map(|h| (score(metric, h.distance), h))
        .filter(|(sc, _)| passes(metric, *sc, s.threshold))
        .take(s.limit)
        .map(|(score, h)| ScoredPoint {
            id: h.id.into(),
            version: 0,
            score,
            payload: h.metadata.map(|m| select_payload(&s.payload, m).unwrap_or(Value::Null)),
            vector: h.vector,
        })
        .collect()
}

fn run_search(served: &Served, s: &Search, version: Option<&str>) -> Result<Vec<ScoredPoint>, ApiError> {
    let c = &served.collection;
    let metric = c.metric();
    if s.limit == 0 {
        return Ok(Vec::new());
    }
    let vector = match (&s.vector, &s.by_id) {
        (Some(v), _) => v.clone(),
        (None, Some(id)) => {
            c.get(id)?
                .ok_or_else(|| ApiError::not_found(format!("No point with id {} found", id_json(id))))?
                .vector
        }
        (None, None) => return Ok(Vec::new()),
    };
    if vector.len() != c.dim() {
        return Err(ApiError::bad(format!(
            "Vector dimension error: expected dim: {}, got {}",
            c.dim(),
            vector.len()
        )));
    }
    // An exact search of everything: a filter every record matches, scanned.
    let match_all = PayloadFilter {
        must: vec![Condition::Exists { field: neardb::collection::ID_FIELD.into() }],
        ..Default::default()
    };
    let exact = s.params.filter_strategy == FilterStrategy::Scan && s.filter.is_none();
    let options = SearchOptions {
        filter: if exact { Some(&match_all) } else { s.filter.as_ref() },
        params: s.params,
        with_metadata: !matches!(s.payload, PayloadSelection::None),
        with_vector: s.with_vector,
    };
    let k = s.limit + s.offset + usize::from(s.by_id.is_some());
    let hits = match version {
        Some(v) => c.version(v)?.search(&vector, k, &options)?,
        None => c.search(&vector, k, &options)?,
    };
    Ok(scored(metric, hits, s))
}

fn record_json(r: Record, payload: &PayloadSelection, vector: bool) -> Value {
    let mut p = json!({"id": id_json(&r.id)});
    if let Some(m) = select_payload(payload, r.metadata) {
        p["payload"] = m;
    }
    if vector {
        p["vector"] = json!(r.vector);
    }
    p
}

// ---------------------------------------------------------------------------------------------
// Collections
// ---------------------------------------------------------------------------------------------

pub(crate) async fn list_collections(State(state): St) -> Response {
    let t = Instant::now();
    let mut names: Vec<String> =
        state.collections.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
    names.sort();
    let list: Vec<Value> = names.into_iter().map(|n| json!({"name": n})).collect();
    ok(json!({"collections": list}), t)
}

pub(crate) async fn create_collection(
    State(state): St,
    UrlPath(name): Name,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let body = parse_body(&body)?;
    let b = object(&body)?;
    unsupported(b, "sparse_vectors", "sparse vectors")?;
    unsupported(b, "quantization_config", "quantization_config (create with dense f32 vectors)")?;
    unsupported(b, "init_from", "init_from")?;
    let vectors = b
        .get("vectors")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad("missing `vectors`: {\"size\": N, \"distance\": \"Cosine\"}"))?;
    if !vectors.contains_key("size") {
        return Err(ApiError::unsupported("named vectors (one unnamed dense vector per point)"));
    }
    let size = get_u64(vectors, "size", 0)? as usize;
    let metric = match vectors.get("distance").and_then(Value::as_str) {
        Some("Cosine") => Metric::Cosine,
        Some("Euclid") => Metric::L2,
        Some("Dot") => Metric::InnerProduct,
        Some("Manhattan") => Metric::L1,
        other => {
            return Err(ApiError::bad(format!(
                "distance must be Cosine, Euclid, Dot or Manhattan, got {other:?}"
            )))
        }
    };
    let mut config = CollectionConfig::new(size, metric);
    let hnsw = vectors.get("hnsw_config").or_else(|| b.get("hnsw_config")).and_then(Value::as_object);
    let on_disk = match vectors.get("on_disk") {
        None | Some(Value::Null) => false,
        Some(v) => v.as_bool().ok_or_else(|| ApiError::bad("vectors.on_disk must be a boolean"))?,
    };
    if on_disk {
        // Vectors on disk: segments are SSD indexes (nodes read per search, PQ codes in
        // memory); HNSW's m and ef_construct become the graph's degree (2m, as HNSW's base
        // layer) and build list.
        config = config.with_option("index", "disk");
        if let Some(h) = hnsw {
            config = config.with_option("r", &(2 * get_u64(h, "m", 16)?.max(1)).to_string());
            config = config.with_option("l", &get_u64(h, "ef_construct", 100)?.max(1).to_string());
        }
    } else if let Some(h) = hnsw {
        match get_u64(h, "m", 16)? {
            0 => config = config.with_option("index", "flat"),
            m => config = config.with_option("m", &m.to_string()),
        }
        config = config.with_option("ef_construction", &get_u64(h, "ef_construct", 200)?.to_string());
    }
    let st = state.clone();
    blocking(&state, move || crate::create_collection_dir(&st, &name, config)).await?;
    Ok(ok(json!(true), t))
}

pub(crate) async fn get_collection(State(state): St, UrlPath(name): Name) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let info = blocking(&state, move || {
        let c = &served.collection;
        let spec = c.index_spec();
        let segments = c.versions().last().map_or(0, |v| v.segments) + usize::from(c.uncommitted_rows() > 0);
        let points = c.len();
        Ok(json!({
            "status": "green",
            "optimizer_status": "ok",
            "indexed_vectors_count": points - c.unindexed_rows().min(points),
            "points_count": points,
            "segments_count": segments,
            "config": {
                "params": {
                    "vectors": {"size": c.dim(), "distance": distance_name(c.metric()), "on_disk": c.index_spec().kind == neardb::IndexKind::Disk},
                    "shard_number": 1, "replication_factor": 1, "write_consistency_factor": 1, "on_disk_payload": true
                },
                "hnsw_config": {"m": spec.hnsw.m, "ef_construct": spec.hnsw.ef_construction, "full_scan_threshold": 10000},
                "optimizer_config": {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000, "default_segment_number": 0, "flush_interval_sec": 5},
                "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0}
            },
            "payload_schema": {}
        }))
    })
    .await?;
    Ok(ok(info, t))
}

pub(crate) async fn delete_collection(State(state): St, UrlPath(name): Name) -> Result<Response, ApiError> {
    let t = Instant::now();
    let st = state.clone();
    let existed = blocking(&state, move || crate::delete_collection_dir(&st, &name)).await?;
    Ok(ok(json!(existed), t))
}

pub(crate) async fn collection_exists(State(state): St, UrlPath(name): Name) -> Response {
    let t = Instant::now();
    ok(json!({"exists": state.get(&name).is_ok()}), t)
}

pub(crate) async fn create_field_index(
    State(state): St,
    UrlPath(name): Name,
    _query: Wait,
) -> Result<Response, ApiError> {
    // Every payload field is indexed already (keywords, numbers, existence).
    let t = Instant::now();
    let served = state.get(&name)?;
    let op = served.operations.fetch_add(1, Ordering::Relaxed);
    Ok(ok(json!({"operation_id": op, "status": "completed"}), t))
}

// ---------------------------------------------------------------------------------------------
// Points
// ---------------------------------------------------------------------------------------------

fn update_result(served: &Served) -> Value {
    json!({"operation_id": served.operations.fetch_add(1, Ordering::Relaxed), "status": "completed"})
}

fn points_of(body: &Value, max: usize) -> Result<Vec<Record>, ApiError> {
    let b = object(body)?;
    let mut out = Vec::new();
    let payload_of = |p: Option<&Value>| -> Result<Value, ApiError> {
        match p {
            None | Some(Value::Null) => Ok(Value::Null),
            Some(v @ Value::Object(_)) => Ok(v.clone()),
            Some(other) => Err(ApiError::bad(format!("payload must be an object, got {other}"))),
        }
    };
    if let Some(points) = b.get("points") {
        let points = points.as_array().ok_or_else(|| ApiError::bad("points must be a list"))?;
        if points.len() > max {
            return Err(ApiError::bad(format!(
                "a batch of {} points is more than the limit of {max}",
                points.len()
            )));
        }
        for (i, p) in points.iter().enumerate() {
            let p = p.as_object().ok_or_else(|| ApiError::bad(format!("points[{i}] must be an object")))?;
            let id = point_id(p.get("id").ok_or_else(|| ApiError::bad(format!("points[{i}]: missing id")))?)?;
            let vector = vector_of(
                p.get("vector").ok_or_else(|| ApiError::bad(format!("points[{i}]: missing vector")))?,
                &format!("points[{i}].vector"),
            )?;
            out.push(Record { id, vector, metadata: payload_of(p.get("payload"))? });
        }
    } else if let Some(batch) = b.get("batch").and_then(Value::as_object) {
        let ids = batch
            .get("ids")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::bad("batch.ids must be a list"))?;
        let vectors = batch
            .get("vectors")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::bad("batch.vectors must be a list of vectors"))?;
        if ids.len() != vectors.len() {
            return Err(ApiError::bad(format!("batch has {} ids and {} vectors", ids.len(), vectors.len())));
        }
        if ids.len() > max {
            return Err(ApiError::bad(format!(
                "a batch of {} points is more than the limit of {max}",
                ids.len()
            )));
        }
        let payloads = batch.get("payloads").and_then(Value::as_array);
        for (i, (id, v)) in ids.iter().zip(vectors).enumerate() {
            out.push(Record {
                id: point_id(id)?,
                vector: vector_of(v, &format!("batch.vectors[{i}]"))?,
                metadata: payload_of(payloads.and_then(|p| p.get(i)))?,
            });
        }
    } else {
        return Err(ApiError::bad("expected `points` or `batch`"));
    }
    Ok(out)
}

pub(crate) async fn upsert(
    State(state): St,
    UrlPath(name): Name,
    _wait: Wait,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let body = parse_body(&body)?;
    let records = points_of(&body, state.config.max_batch)?;
    let s = served.clone();
    let result = blocking(&state, move || {
        s.collection.upsert(&records)?;
        Ok(update_result(&s))
    })
    .await?;
    maybe_commit(&state, &served);
    Ok(ok(result, t))
}

fn ids_of(v: &Value, max: usize) -> Result<Vec<RecordId>, ApiError> {
    let ids = v.as_array().ok_or_else(|| ApiError::bad("ids must be a list"))?;
    if ids.len() > max {
        return Err(ApiError::bad(format!("{} ids are more than the limit of {max}", ids.len())));
    }
    ids.iter().map(point_id).collect()
}

pub(crate) async fn retrieve(
    State(state): St,
    UrlPath(name): Name,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let body = parse_body(&body)?;
    let b = object(&body)?;
    let ids =
        ids_of(b.get("ids").ok_or_else(|| ApiError::bad("missing field `ids`"))?, state.config.max_batch)?;
    let payload = payload_selection(b.get("with_payload"), true)?;
    let vector = with_vector(b.get("with_vector"))?;
    let found = blocking(&state, move || {
        let mut out = Vec::new();
        for id in ids {
            if let Some(r) = served.collection.get(&id)? {
                out.push(record_json(r, &payload, vector));
            }
        }
        Ok(out)
    })
    .await?;
    Ok(ok(json!(found), t))
}

pub(crate) async fn get_point(
    State(state): St,
    UrlPath((name, id)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let id = match id.parse::<u64>() {
        Ok(n) => RecordId::Num(n),
        Err(_) => point_id(&Value::String(id))?,
    };
    let r = blocking(&state, move || {
        served
            .collection
            .get(&id)?
            .ok_or_else(|| ApiError::not_found(format!("No point with id {} found", id_json(&id))))
    })
    .await?;
    Ok(ok(record_json(r, &PayloadSelection::All, true), t))
}

/// The ids a points selector names: `{"points": [ids]}` or `{"filter": {...}}`.
fn selected(served: &Served, b: &Map<String, Value>, max: usize) -> Result<Vec<RecordId>, ApiError> {
    if let Some(points) = b.get("points").filter(|v| !v.is_null()) {
        return ids_of(points, max);
    }
    match filter_of(b)? {
        Some(f) => Ok(served.collection.ids_matching(&f)?),
        None => Err(ApiError::bad("expected `points` (ids) or `filter`")),
    }
}

pub(crate) async fn delete_points(
    State(state): St,
    UrlPath(name): Name,
    _wait: Wait,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let body = parse_body(&body)?;
    let max = state.config.max_batch;
    let result = blocking(&state, move || {
        let ids = selected(&served, object(&body)?, max)?;
        // As Qdrant: ids that are not there are no error.
        let present: Vec<RecordId> = ids.into_iter().filter(|id| served.collection.contains(id)).collect();
        served.collection.delete(&present)?;
        Ok(update_result(&served))
    })
    .await?;
    Ok(ok(result, t))
}

async fn change_payload(
    state: Arc<AppState>,
    name: String,
    body: Bytes,
    overwrite: bool,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let body = parse_body(&body)?;
    let max = state.config.max_batch;
    let result = blocking(&state, move || {
        let b = object(&body)?;
        unsupported(b, "key", "setting a payload under a nested key")?;
        let payload = match b.get("payload") {
            Some(Value::Object(p)) => p.clone(),
            _ => return Err(ApiError::bad("payload must be an object")),
        };
        let ids = selected(&served, b, max)?;
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(mut r) = served.collection.get(&id)? else { continue };
            let mut meta = match (overwrite, r.metadata) {
                (false, Value::Object(m)) => m,
                _ => Map::new(),
            };
            meta.extend(payload.clone());
            r.metadata = Value::Object(meta);
            records.push(r);
        }
        for chunk in records.chunks(1000) {
            served.collection.upsert(chunk)?;
        }
        Ok(update_result(&served))
    })
    .await?;
    Ok(ok(result, t))
}

pub(crate) async fn set_payload(
    State(state): St,
    UrlPath(name): Name,
    _wait: Wait,
    body: Bytes,
) -> Result<Response, ApiError> {
    change_payload(state, name, body, false).await
}

pub(crate) async fn overwrite_payload(
    State(state): St,
    UrlPath(name): Name,
    _wait: Wait,
    body: Bytes,
) -> Result<Response, ApiError> {
    change_payload(state, name, body, true).await
}

/// Whether a search is sure to be short (tens to hundreds of microseconds): a graph walk of
/// bounded effort, no filter whose rows may first have to be read from the metadata, few
/// recent records to scan. Those run on the async worker that parsed them; handing them to
/// the blocking pool and back cost more than the search (two thread wake-ups per request).
fn is_quick(served: &Served, s: &Search) -> bool {
    s.vector.is_some()
        && s.filter.is_none()
        && s.params.filter_strategy != FilterStrategy::Scan
        && s.limit + s.offset <= 100
        && s.params.ef <= 512
        && served.collection.unindexed_rows() <= QUICK_UNINDEXED_ROWS
}

/// Recent records past which an unfiltered search no longer counts as quick (scanning this
/// many 384-d rows takes about 0.1 ms).
const QUICK_UNINDEXED_ROWS: u64 = 4096;

/// Runs `work` inline when `quick`, else on the blocking pool.
async fn run_maybe_inline<T: Send + 'static>(
    state: &AppState,
    quick: bool,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if quick {
        work()
    } else {
        blocking(state, work).await
    }
}

pub(crate) async fn search(State(state): St, UrlPath(name): Name, body: Bytes) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let s = match plain_search(&body, false) {
        Some(s) => s?,
        None => read_search(&parse_body(&body)?, false)?,
    };
    let quick = is_quick(&served, &s);
    let hits = run_maybe_inline(&state, quick, move || run_search(&served, &s, None)).await?;
    Ok(ok_typed(&hits, t))
}

fn searches_of(body: &Value, query_api: bool, max: usize) -> Result<Vec<Search>, ApiError> {
    let list = object(body)?
        .get("searches")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad("searches must be a list"))?;
    if list.len() > max {
        return Err(ApiError::bad(format!("{} searches are more than the limit of {max}", list.len())));
    }
    list.iter().map(|s| read_search(s, query_api)).collect()
}

pub(crate) async fn search_batch(
    State(state): St,
    UrlPath(name): Name,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let searches = searches_of(&parse_body(&body)?, false, state.config.max_batch)?;
    let all = blocking(&state, move || {
        searches.iter().map(|s| run_search(&served, s, None)).collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(ok_typed(&all, t))
}

/// A query with no vector lists points in id order (score 0), as Qdrant does.
fn run_query(served: &Served, s: &Search) -> Result<QueryAnswer, ApiError> {
    if s.vector.is_none() && s.by_id.is_none() {
        let ids = served.collection.scroll(s.filter.as_ref(), None, s.offset + s.limit)?;
        let mut points = Vec::new();
        for id in ids.into_iter().skip(s.offset) {
            if let Some(r) = served.collection.get(&id)? {
                points.push(ScoredPoint {
                    id: r.id.into(),
                    version: 0,
                    score: 0.0,
                    payload: select_payload(&s.payload, r.metadata),
                    vector: s.with_vector.then_some(r.vector),
                });
            }
        }
        return Ok(QueryAnswer { points });
    }
    Ok(QueryAnswer { points: run_search(served, s, None)? })
}

pub(crate) async fn query(State(state): St, UrlPath(name): Name, body: Bytes) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let s = match plain_search(&body, true) {
        Some(s) => s?,
        None => read_search(&parse_body(&body)?, true)?,
    };
    let quick = is_quick(&served, &s);
    let result = run_maybe_inline(&state, quick, move || run_query(&served, &s)).await?;
    Ok(ok_typed(&result, t))
}

pub(crate) async fn query_batch(
    State(state): St,
    UrlPath(name): Name,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let searches = searches_of(&parse_body(&body)?, true, state.config.max_batch)?;
    let all = blocking(&state, move || {
        searches.iter().map(|s| run_query(&served, s)).collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(ok_typed(&all, t))
}

pub(crate) async fn scroll(State(state): St, UrlPath(name): Name, body: Bytes) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let body = parse_body(&body)?;
    let b = object(&body)?;
    unsupported(b, "order_by", "order_by")?;
    let filter = filter_of(b)?;
    let limit = get_u64(b, "limit", 10)? as usize;
    let offset = match b.get("offset") {
        None | Some(Value::Null) => None,
        Some(v) => Some(point_id(v)?),
    };
    let payload = payload_selection(b.get("with_payload"), true)?;
    let vector = with_vector(b.get("with_vector"))?;
    let result = blocking(&state, move || {
        // The page starts at `offset` itself (Qdrant's next_page_offset is the first id of
        // the next page).
        let mut ids = served.collection.scroll(filter.as_ref(), offset.as_ref(), limit + 1)?;
        let next = if ids.len() > limit { ids.pop() } else { None };
        let mut points = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = served.collection.get(&id)? {
                points.push(record_json(r, &payload, vector));
            }
        }
        Ok(json!({"points": points, "next_page_offset": next.as_ref().map(id_json)}))
    })
    .await?;
    Ok(ok(result, t))
}

pub(crate) async fn count(State(state): St, UrlPath(name): Name, body: Bytes) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let body = parse_body(&body)?;
    let filter = filter_of(object(&body)?)?;
    let n = blocking(&state, move || Ok(served.collection.count(filter.as_ref())?)).await?;
    Ok(ok(json!({"count": n}), t))
}

// ---------------------------------------------------------------------------------------------
// NearDB's own: versions, duplicates, neighbours
// ---------------------------------------------------------------------------------------------

fn version_json(v: &neardb::collection::VersionInfo) -> Value {
    json!({"version": v.version, "name": v.name, "committed_unix_ms": v.committed_unix_ms, "records": v.records, "segments": v.segments})
}

pub(crate) async fn commit(State(state): St, UrlPath(name): Name, body: Bytes) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let body = parse_body(&body)?;
    let label = match object(&body)?.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(ApiError::bad(format!("name must be a string, got {other}"))),
    };
    let v = blocking(&state, move || Ok(served.collection.commit(label.as_deref())?)).await?;
    Ok(ok(version_json(&v), t))
}

pub(crate) async fn versions(State(state): St, UrlPath(name): Name) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let list: Vec<Value> = served.collection.versions().iter().map(version_json).collect();
    Ok(ok(json!(list), t))
}

pub(crate) async fn search_version(
    State(state): St,
    UrlPath((name, version)): UrlPath<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let s = read_search(&parse_body(&body)?, false)?;
    let hits = blocking(&state, move || run_search(&served, &s, Some(&version))).await?;
    Ok(ok_typed(&hits, t))
}

pub(crate) async fn duplicates(
    State(state): St,
    UrlPath(name): Name,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let body = parse_body(&body)?;
    let b = object(&body)?;
    let threshold = b
        .get("threshold")
        .and_then(Value::as_f64)
        .ok_or_else(|| ApiError::bad("threshold (a distance) is required"))? as f32;
    let k = get_u64(b, "k", 10)?.max(1) as usize;
    let pairs = blocking(&state, move || {
        let metric = served.collection.metric();
        Ok(served
            .collection
            .duplicates(threshold, k)?
            .into_iter()
            .map(|(a, b, d)| json!({"a": id_json(&a), "b": id_json(&b), "distance": d, "score": score(metric, d)}))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(ok(json!(pairs), t))
}

#[derive(serde::Deserialize)]
pub(crate) struct NeighbourQuery {
    k: Option<usize>,
}

pub(crate) async fn neighbours(
    State(state): St,
    UrlPath((name, id)): UrlPath<(String, String)>,
    Query(q): Query<NeighbourQuery>,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let served = state.get(&name)?;
    let id = match id.parse::<u64>() {
        Ok(n) => RecordId::Num(n),
        Err(_) => point_id(&Value::String(id))?,
    };
    let k = q.k.unwrap_or(10).clamp(1, 10_000);
    let hits = blocking(&state, move || {
        let metric = served.collection.metric();
        Ok(served
            .collection
            .neighbours_of(&id, k)?
            .into_iter()
            .map(|h| json!({"id": id_json(&h.id), "version": 0, "score": score(metric, h.distance)}))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(ok(json!(hits), t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_uuids_and_scores_follow_qdrant() {
        assert_eq!(point_id(&json!(7)).unwrap(), RecordId::Num(7));
        let canonical = "0f8fad5b-d9cb-469f-a165-70867728950e";
        for form in [canonical, "0F8FAD5B-D9CB-469F-A165-70867728950E", "0f8fad5bd9cb469fa16570867728950e"] {
            assert_eq!(point_id(&json!(form)).unwrap(), RecordId::Text(canonical.into()), "{form}");
        }
        for bad in [
            json!(-1),
            json!(1.5),
            json!("not-a-uuid"),
            json!("0f8fad5b-d9cb-469f-a165-70867728950"),
            json!(null),
        ] {
            assert_eq!(point_id(&bad).unwrap_err().status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(score(Metric::Cosine, 0.25), 0.75);
        assert_eq!(score(Metric::InnerProduct, -3.0), 3.0);
        assert_eq!(score(Metric::L2, 25.0), 5.0);
        assert!(passes(Metric::Cosine, 0.8, Some(0.7)) && !passes(Metric::Cosine, 0.6, Some(0.7)));
        assert!(passes(Metric::L2, 0.6, Some(0.7)) && !passes(Metric::L2, 0.8, Some(0.7)));
    }

    #[test]
    fn plain_bodies_read_as_the_general_reader_reads_them() {
        let same = [
            (true, r#"{"query": [0.5, 1, -2.25], "limit": 3}"#),
            (
                true,
                r#"{"query": [0.5, 1, -2.25e-3], "limit": 3, "offset": 2, "params": {"hnsw_ef": 40},
                "with_payload": true, "with_vector": false, "score_threshold": 0.5,
                "filter": {"must": [{"key": "tag", "match": {"value": "a"}}]}}"#,
            ),
            (true, r#"{"query": [0.5], "with_payload": ["a"], "filter": null, "params": {"exact": true}}"#),
            (true, r#"{}"#),
            (
                false,
                r#"{"vector": [1, 2], "limit": 5, "with_payload": {"exclude": ["x"]}, "with_vector": true}"#,
            ),
        ];
        for (query_api, body) in same {
            let plain = plain_search(body.as_bytes(), query_api).expect("the plain shape").unwrap();
            let general = read_search(&serde_json::from_str(body).unwrap(), query_api).unwrap();
            assert_eq!(format!("{plain:?}"), format!("{general:?}"), "{body}");
        }
        // Other shapes, and wrong values, go to the general reader (which names the mistake).
        for (query_api, body) in [
            (true, r#"{"query": 7}"#),
            (true, r#"{"query": {"nearest": [1.0]}}"#),
            (true, r#"{"query": [1], "using": ""}"#),
            (true, r#"{"query": [1], "prefetch": []}"#),
            (true, r#"{"query": ["a"]}"#),
            (true, r#"{"query": [1], "limit": -1}"#),
            (true, r#"{"vector": [1], "limit": 1}"#),
            (false, r#"{"vector": [1]}"#),
            (false, r#"{"vector": {"name": "", "vector": [1]}, "limit": 1}"#),
            (false, r#"{"query": [1], "vector": [1], "limit": 1}"#),
            (true, r#"{"query": [1], "#),
        ] {
            assert!(plain_search(body.as_bytes(), query_api).is_none(), "{body}");
        }
        // A wrong value inside a field the plain reader hands on: the general reader's error.
        for body in [r#"{"query": [1], "params": {"hnsw_ef": 0}}"#, r#"{"query": [1], "with_vector": 3}"#] {
            let plain = plain_search(body.as_bytes(), true).unwrap().unwrap_err();
            let general = read_search(&serde_json::from_str(body).unwrap(), true).unwrap_err();
            assert_eq!((plain.status, plain.message), (general.status, general.message), "{body}");
        }
    }

    #[test]
    fn fast_numbers_read_exactly_as_serde_json_does() {
        let mut texts = vec![
            "[]".to_string(),
            " [ 1 , -2 , 0 , -0 , 0.0 , -0.0 ] ".into(),
            "[1e3, 1E-3, -2.5e+2, 123456789012345678, 16777217, -16777217, 1e22, 1e23, 1.5e-40, 3.4e38]"
                .into(),
            "[0.1, 0.2, 0.30000000000000004, 9007199254740993e-5, 1e-7, 123.456e-300]".into(),
        ];
        // Shortest forms of many f32 values, as clients print them, and longer forms.
        let mut x = 0x1234_5678u32;
        let (mut any_bits, mut any_long, mut shortest, mut long) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..4000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let v = f32::from_bits(x);
            if v.is_finite() {
                any_bits.push(format!("{v}"));
                any_long.push(format!("{:.9e}", v));
            }
            let small = (x % 2_000_000) as f32 / 1_000_000.0 - 1.0;
            shortest.push(format!("{small}"));
            long.push(format!("{:.7}", f64::from(small)));
        }
        let (shortest_all, long_all) =
            (format!("[{}]", any_bits.join(",")), format!("[{}]", any_long.join(",")));
        texts.push(format!("[{}]", shortest.join(",")));
        texts.push(format!("[{}]", long.join(", ")));
        // Every number alone (so one the fast reader leaves to serde_json spoils nothing else),
        // then the lists of query-like values, which it must read itself.
        let alone = texts.iter().chain([&shortest_all, &long_all]).flat_map(|t| {
            t.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|n| format!("[{n}]"))
                .collect::<Vec<_>>()
        });
        let mut fast_count = 0;
        for text in alone.chain(texts.iter().cloned()) {
            let exact: Vec<f32> = serde_json::from_str(&text).unwrap();
            if let Some(fast) = fast_numbers(&text) {
                fast_count += 1;
                assert_eq!(fast.len(), exact.len());
                for (a, b) in fast.iter().zip(&exact) {
                    assert_eq!(a.to_bits(), b.to_bits(), "{a} against {b} in {text:.80}");
                }
            }
        }
        assert!(fast_count > 10_000, "{fast_count}");
        for text in &texts[texts.len() - 2..] {
            assert!(fast_numbers(text).is_some(), "{text:.80}");
        }
        // Left to serde_json: other syntax, too many digits, out of range.
        for text in [
            "[1,]",
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[+1]",
            "[1 2]",
            "[\"1\"]",
            "[1e400]",
            "[1234567890123456789]",
            "{}",
        ] {
            assert!(fast_numbers(text).is_none(), "{text}");
        }
    }

    #[test]
    fn request_bodies_are_read_strictly_where_values_are_wrong() {
        let bad = |body: Value| read_search(&body, false).err().map(|e| (e.status.as_u16(), e.message));
        assert_eq!(bad(json!({"limit": 3})).unwrap().0, 400);
        assert_eq!(bad(json!({"vector": [1, "x"], "limit": 3})).unwrap().0, 400);
        assert_eq!(bad(json!({"vector": {"name": "image", "vector": [1.0]}, "limit": 3})).unwrap().0, 501);
        assert_eq!(bad(json!({"vector": [1.0], "limit": -1})).unwrap().0, 400);
        let e = bad(
            json!({"vector": [1.0], "limit": 3, "filter": {"must": [{"key": "n", "range": {"gt": "a"}}]}}),
        )
        .unwrap();
        assert!(e.1.contains("filter.must[0].range.gt"), "{}", e.1);
        let s = read_search(
            &json!({"query": {"nearest": [1.0, 2.0]}, "with_payload": ["a"], "params": {"hnsw_ef": 99}}),
            true,
        )
        .unwrap();
        assert_eq!((s.limit, s.vector.as_deref(), s.params.ef), (10, Some(&[1.0f32, 2.0][..]), 99));
        assert_eq!(
            read_search(&json!({"query": {"recommend": {}}}), true).err().unwrap().status.as_u16(),
            501
        );
        assert_eq!(
            read_search(&json!({"query": [1.0], "prefetch": [{}]}), true).err().unwrap().status.as_u16(),
            501
        );
        assert_eq!(parse_body(&Bytes::from_static(b"{nope")).unwrap_err().status.as_u16(), 400);
        assert_eq!(
            points_of(&json!({"points": [{"id": 1, "vector": [1.0]}, {"id": 2, "vector": [1.0]}]}), 1)
                .unwrap_err()
                .status
                .as_u16(),
            400
        );
        let mut f = json!({"must": [{"has_id": ["0F8FAD5B-D9CB-469F-A165-70867728950E", 3]}]});
        canonical_ids(&mut f).unwrap();
        assert_eq!(f["must"][0]["has_id"][0], "0f8fad5b-d9cb-469f-a165-70867728950e");
    }
}
