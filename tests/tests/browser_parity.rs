//! Native ↔ browser parity, in headless Chromium: an HNSW file built natively by `neardb build`
//! (seeded, one thread) is rebuilt here in wasm from the same vectors and must come out byte for
//! byte the same; and the native file, opened in place here (by the core and by the JavaScript
//! `HnswIndex.fromBytes`), must return exactly the ids and distances the native `neardb search`
//! returned. `scripts/test-wasm.sh` makes the native fixtures first.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Float32Array, Function, Reflect, Uint32Array, Uint8Array};
use neardb_core::format::AlignedBytes;
use neardb_core::{
    BinaryView, HnswIndex, HnswParams, HnswView, IvfPqIndex, IvfPqView, Metric, SearchParams, VamanaIndex,
    VamanaParams, VamanaView, VectorSearch,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const BASE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/base.fvecs"));
const QUERIES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/query.fvecs"));
const NATIVE_INDEX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hnsw.neardb"));
const NATIVE_RESULTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/results.json"));
const NATIVE_SQ8_INDEX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hnsw-sq8.neardb"));
const NATIVE_SQ8_RESULTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/results-sq8.json"));
const NATIVE_F16_INDEX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hnsw-f16.neardb"));
const NATIVE_F16_RESULTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/results-f16.json"));
const NATIVE_SQ8F16_INDEX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hnsw-sq8f16.neardb"));
const NATIVE_SQ8F16_RESULTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/results-sq8f16.json"));
const NATIVE_IVFPQ_INDEX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ivfpq.neardb"));
const NATIVE_IVFPQ_RESULTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/results-ivfpq.json"));
const NATIVE_BINARY_INDEX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/binary.neardb"));
const NATIVE_BINARY_RESULTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/results-binary.json"));
const NATIVE_VAMANA_INDEX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vamana.neardb"));
const NATIVE_VAMANA_RESULTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/results-vamana.json"));
const ALLOW_WIDE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/allow-wide.u8"));
const ALLOW_TIGHT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/allow-tight.u8"));
const NATIVE_ALLOW_WIDE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/results-allow-wide.json"));
const NATIVE_ALLOW_TIGHT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/results-allow-tight.json"));
const NATIVE_VAMANA_ALLOW_WIDE: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/results-vamana-allow-wide.json"));
const NATIVE_VAMANA_ALLOW_TIGHT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/results-vamana-allow-tight.json"));

/// The parameters `scripts/test-wasm.sh` passes to `neardb build`.
const PARAMS: HnswParams = HnswParams { m: 12, ef_construction: 100, seed: 42 };

fn fixtures_present() -> bool {
    if NATIVE_INDEX.is_empty() {
        web_sys_log("skipped: no native fixtures (scripts/test-wasm.sh builds them)");
        return false;
    }
    true
}

fn web_sys_log(msg: &str) {
    wasm_bindgen_test::console_log!("{msg}");
}

/// Rows of an .fvecs file and their dimension.
fn fvecs(bytes: &[u8]) -> (Vec<f32>, usize) {
    let dim = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let rec = 4 + 4 * dim;
    let mut out = Vec::with_capacity(bytes.len() / rec * dim);
    for r in bytes.chunks_exact(rec) {
        assert_eq!(u32::from_le_bytes(r[..4].try_into().unwrap()) as usize, dim);
        out.extend(r[4..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())));
    }
    (out, dim)
}

#[wasm_bindgen_test]
fn seeded_build_in_the_browser_is_byte_identical_to_the_native_file() {
    if !fixtures_present() {
        return;
    }
    let (base, dim) = fvecs(BASE);
    let mut index = HnswIndex::new(dim, Metric::Cosine, PARAMS).unwrap();
    index.add(&base).unwrap();
    let ours = index.to_bytes();
    assert_eq!(ours.len(), NATIVE_INDEX.len());
    assert!(ours == NATIVE_INDEX, "the browser build differs from the native file");
}

/// The native answers: per query, ids and distances.
fn native_results() -> Vec<(Vec<u32>, Vec<f32>)> {
    parse_results(NATIVE_RESULTS)
}

fn parse_results(bytes: &[u8]) -> Vec<(Vec<u32>, Vec<f32>)> {
    let text = core::str::from_utf8(bytes).unwrap();
    text.lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let ids = row["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let d = row["distances"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            (ids, d)
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[wasm_bindgen_test]
fn native_file_opened_by_the_javascript_class_answers_exactly_as_natively() {
    if !fixtures_present() {
        return;
    }
    let (queries, dim) = fvecs(QUERIES);
    // `HnswIndex.fromBytes(bytes)` and `index.search(query, k)`, called through JavaScript.
    let some = JsValue::from(neardb_wasm::HnswIndex::new(1.into(), "l2".into(), None).unwrap());
    let class: Function = Reflect::get(&some, &"constructor".into()).unwrap().unchecked_into();
    let from_bytes: Function = Reflect::get(&class, &"fromBytes".into()).unwrap().unchecked_into();
    let index = from_bytes.call1(&class, &Uint8Array::from(NATIVE_INDEX)).unwrap();
    let search: Function = Reflect::get(&index, &"search".into()).unwrap().unchecked_into();
    let native = native_results();
    assert_eq!(native.len(), queries.len() / dim);
    for (q, (ids, dists)) in queries.chunks_exact(dim).zip(&native) {
        let args = Array::of2(&Float32Array::from(q), &JsValue::from(ids.len() as u32));
        let result = Reflect::apply(&search, &index, &args).unwrap();
        let got_ids: Uint32Array = Reflect::get(&result, &"ids".into()).unwrap().unchecked_into();
        let got_d: Float32Array = Reflect::get(&result, &"distances".into()).unwrap().unchecked_into();
        assert_eq!(&got_ids.to_vec(), ids);
        assert_eq!(bits(&got_d.to_vec()), bits(dists));
    }
}

#[wasm_bindgen_test]
fn native_file_searched_in_place_answers_exactly_as_natively() {
    if !fixtures_present() {
        return;
    }
    let (queries, dim) = fvecs(QUERIES);
    let bytes = AlignedBytes::copy_from(NATIVE_INDEX);
    let view = HnswView::open(bytes.as_slice()).unwrap();
    let text = core::str::from_utf8(NATIVE_RESULTS).unwrap();
    let mut checked = 0;
    for (line, q) in text.lines().zip(queries.chunks_exact(dim)) {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let ids: Vec<u32> =
            row["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let dists: Vec<f32> =
            row["distances"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let got = view.search(q, ids.len(), &SearchParams::new(), None).unwrap();
        assert_eq!(got.iter().map(|n| n.id).collect::<Vec<_>>(), ids);
        assert_eq!(
            got.iter().map(|n| n.distance.to_bits()).collect::<Vec<_>>(),
            dists.iter().map(|d| d.to_bits()).collect::<Vec<_>>()
        );
        checked += 1;
    }
    assert_eq!(checked, queries.len() / dim);
}

/// Every query of the fixture against `index` with `params`, which must answer exactly
/// `results`.
fn assert_answers_as_natively(index: &dyn VectorSearch, params: &SearchParams, results: &[u8]) {
    let (queries, dim) = fvecs(QUERIES);
    let expected = parse_results(results);
    assert_eq!(expected.len(), queries.len() / dim);
    for ((ids, dists), q) in expected.iter().zip(queries.chunks_exact(dim)) {
        let got = index.search(q, ids.len(), params, None).unwrap();
        assert_eq!(&got.iter().map(|n| n.id).collect::<Vec<_>>(), ids);
        assert_eq!(got.iter().map(|n| n.distance.to_bits()).collect::<Vec<_>>(), bits(dists));
    }
}

#[wasm_bindgen_test]
fn native_sq8_file_answers_exactly_as_natively_and_rebuilds_identically() {
    if !fixtures_present() {
        return;
    }
    let bytes = AlignedBytes::copy_from(NATIVE_SQ8_INDEX);
    let view = HnswView::open(bytes.as_slice()).unwrap();
    assert_eq!(view.sq_rerank(), Some(0), "the fixture is a codes-only SQ8 file");
    assert_answers_as_natively(&view, &SearchParams::new(), NATIVE_SQ8_RESULTS);
    // The same seeded build and quantization here gives the same bytes.
    let (base, dim) = fvecs(BASE);
    let mut index = HnswIndex::new(dim, Metric::Cosine, PARAMS).unwrap();
    index.add(&base).unwrap();
    index.quantize_sq8(0).unwrap();
    assert!(index.to_bytes() == NATIVE_SQ8_INDEX, "the browser SQ8 build differs from the native file");
}

#[wasm_bindgen_test]
fn native_binary16_files_answer_exactly_as_natively_and_rebuild_identically() {
    if !fixtures_present() {
        return;
    }
    let (base, dim) = fvecs(BASE);
    for (file, results, sq8) in
        [(NATIVE_F16_INDEX, NATIVE_F16_RESULTS, false), (NATIVE_SQ8F16_INDEX, NATIVE_SQ8F16_RESULTS, true)]
    {
        let bytes = AlignedBytes::copy_from(file);
        let view = HnswView::open(bytes.as_slice()).unwrap();
        assert!(view.stores_f16());
        assert_eq!(view.sq_rerank(), sq8.then_some(4));
        assert_answers_as_natively(&view, &SearchParams::new(), results);
        // As `neardb build --quantize f16` does: binary16 from the start, so the build walks
        // the rounded rows.
        let mut index = HnswIndex::new(dim, Metric::Cosine, PARAMS).unwrap();
        index.store_f16().unwrap();
        index.add(&base).unwrap();
        if sq8 {
            index.quantize_sq8(4).unwrap();
        }
        assert!(
            index.to_bytes() == file,
            "the browser binary16 build differs from the native file (sq8: {sq8})"
        );
    }
}

#[wasm_bindgen_test]
fn native_ivfpq_file_answers_exactly_as_natively_and_rebuilds_identically() {
    if !fixtures_present() {
        return;
    }
    let bytes = AlignedBytes::copy_from(NATIVE_IVFPQ_INDEX);
    let view = IvfPqView::open(bytes.as_slice()).unwrap();
    assert_eq!((view.params().nlist, view.params().pq_m), (20, 12));
    let params = SearchParams::new().with_nprobe(4).with_rerank_factor(4);
    assert_answers_as_natively(&view, &params, NATIVE_IVFPQ_RESULTS);
    // Training (k-means, PQ) and encoding in wasm give the native file byte for byte.
    let (base, dim) = fvecs(BASE);
    let ivf = IvfPqIndex::build(dim, Metric::Cosine, view.params(), &base).unwrap();
    assert!(ivf.to_bytes() == NATIVE_IVFPQ_INDEX, "the browser IVF-PQ build differs from the native file");
}

#[wasm_bindgen_test]
fn native_binary_lsh_file_answers_exactly_as_natively() {
    if !fixtures_present() {
        return;
    }
    let bytes = AlignedBytes::copy_from(NATIVE_BINARY_INDEX);
    let view = BinaryView::open(bytes.as_slice()).unwrap();
    assert!(!view.has_vectors(), "the fixture keeps codes only");
    assert_answers_as_natively(&view, &SearchParams::new().with_nprobe(8), NATIVE_BINARY_RESULTS);
}

#[wasm_bindgen_test]
fn native_vamana_file_rebuilds_identically_and_answers_exactly_as_natively() {
    if !fixtures_present() {
        return;
    }
    // As `scripts/test-wasm.sh` built it: --r 16 --l 60 --alpha 1.2 --seed 42 --threads 1.
    let params = VamanaParams { r: 16, l: 60, alpha: 1.2, seed: 42 };
    let (base, dim) = fvecs(BASE);
    let mut index = VamanaIndex::new(dim, Metric::Cosine, params).unwrap();
    index.build(&base).unwrap();
    assert!(index.to_bytes() == NATIVE_VAMANA_INDEX, "the browser Vamana build differs from the native file");
    let bytes = AlignedBytes::copy_from(NATIVE_VAMANA_INDEX);
    let view = VamanaView::open(bytes.as_slice()).unwrap();
    assert_eq!(view.params(), params);
    let search = SearchParams::new().with_ef(32);
    assert_answers_as_natively(&view, &search, NATIVE_VAMANA_RESULTS);
    // The JavaScript class, through `VamanaIndex.fromBytes` and `search(q, k, { ef: 32 })`.
    let some = JsValue::from(neardb_wasm::VamanaIndex::new(1.into(), "l2".into(), None).unwrap());
    let class: Function = Reflect::get(&some, &"constructor".into()).unwrap().unchecked_into();
    let from_bytes: Function = Reflect::get(&class, &"fromBytes".into()).unwrap().unchecked_into();
    let js_index = from_bytes.call1(&class, &Uint8Array::from(NATIVE_VAMANA_INDEX)).unwrap();
    let js_search: Function = Reflect::get(&js_index, &"search".into()).unwrap().unchecked_into();
    let opts = js_sys::JSON::parse(r#"{"ef": 32}"#).unwrap();
    let (queries, _) = fvecs(QUERIES);
    for (q, (ids, dists)) in queries.chunks_exact(dim).zip(parse_results(NATIVE_VAMANA_RESULTS)) {
        let args = Array::of3(&Float32Array::from(q), &JsValue::from(ids.len() as u32), &opts);
        let result = Reflect::apply(&js_search, &js_index, &args).unwrap();
        let got_ids: Uint32Array = Reflect::get(&result, &"ids".into()).unwrap().unchecked_into();
        let got_d: Float32Array = Reflect::get(&result, &"distances".into()).unwrap().unchecked_into();
        assert_eq!(got_ids.to_vec(), ids);
        assert_eq!(bits(&got_d.to_vec()), bits(&dists));
    }
}

/// The JavaScript class `class_of` opened on `file`, searched with every fixture query, `k` of
/// the native row, `options` and the allowed ids as `filter`: (ids, distances, plan) per query.
fn js_filtered_answers(
    some: JsValue,
    file: &[u8],
    options: &str,
    allowed: &[u32],
    k_per_query: &[usize],
) -> Vec<(Vec<u32>, Vec<f32>, String)> {
    let class: Function = Reflect::get(&some, &"constructor".into()).unwrap().unchecked_into();
    let from_bytes: Function = Reflect::get(&class, &"fromBytes".into()).unwrap().unchecked_into();
    let index = from_bytes.call1(&class, &Uint8Array::from(file)).unwrap();
    let search: Function = Reflect::get(&index, &"search".into()).unwrap().unchecked_into();
    let (queries, dim) = fvecs(QUERIES);
    let opts = js_sys::JSON::parse(options).unwrap();
    Reflect::set(&opts, &"filter".into(), &Uint32Array::from(allowed)).unwrap();
    Reflect::set(&opts, &"stats".into(), &JsValue::TRUE).unwrap();
    queries
        .chunks_exact(dim)
        .zip(k_per_query)
        .map(|(q, &k)| {
            let args = Array::of3(&Float32Array::from(q), &JsValue::from(k.max(1) as u32), &opts);
            let result = Reflect::apply(&search, &index, &args).unwrap();
            let ids: Uint32Array = Reflect::get(&result, &"ids".into()).unwrap().unchecked_into();
            let d: Float32Array = Reflect::get(&result, &"distances".into()).unwrap().unchecked_into();
            let stats = Reflect::get(&result, &"stats".into()).unwrap();
            let plan = Reflect::get(&stats, &"plan".into()).unwrap().as_string().unwrap();
            (ids.to_vec(), d.to_vec(), plan)
        })
        .collect()
}

#[wasm_bindgen_test]
fn filtered_searches_of_native_files_answer_exactly_as_natively() {
    if !fixtures_present() {
        return;
    }
    // As `scripts/test-wasm.sh` searched natively: the wide mask with the walk forced, the
    // tight one as the planner chose.
    let cases = [
        (NATIVE_INDEX, ALLOW_WIDE, NATIVE_ALLOW_WIDE, false, "walk"),
        (NATIVE_INDEX, ALLOW_TIGHT, NATIVE_ALLOW_TIGHT, false, "auto"),
        (NATIVE_VAMANA_INDEX, ALLOW_WIDE, NATIVE_VAMANA_ALLOW_WIDE, true, "walk"),
        (NATIVE_VAMANA_INDEX, ALLOW_TIGHT, NATIVE_VAMANA_ALLOW_TIGHT, true, "auto"),
    ];
    let mut plans = Vec::new();
    for (file, mask, results, vamana, strategy) in cases {
        let allowed: Vec<u32> = (0..mask.len() as u32).filter(|&i| mask[i as usize] != 0).collect();
        assert!(!allowed.is_empty() && allowed.len() < mask.len());
        let native = parse_results(results);
        // Every native answer is allowed and as long as it can be.
        for (ids, _) in &native {
            assert!(ids.iter().all(|id| allowed.binary_search(id).is_ok()));
        }
        let ks: Vec<usize> = native.iter().map(|(ids, _)| ids.len()).collect();
        let (some, options) = if vamana {
            let some = neardb_wasm::VamanaIndex::new(1.into(), "l2".into(), None).unwrap();
            (JsValue::from(some), format!(r#"{{"ef": 32, "filterStrategy": "{strategy}"}}"#))
        } else {
            let some = neardb_wasm::HnswIndex::new(1.into(), "l2".into(), None).unwrap();
            (JsValue::from(some), format!(r#"{{"filterStrategy": "{strategy}"}}"#))
        };
        let got = js_filtered_answers(some, file, &options, &allowed, &ks);
        assert_eq!(got.len(), native.len());
        for ((ids, dists, plan), (want_ids, want_d)) in got.iter().zip(&native) {
            assert_eq!(ids, want_ids, "vamana: {vamana}, {} allowed, plan {plan}", allowed.len());
            assert_eq!(bits(dists), bits(want_d));
            plans.push(plan.clone());
        }
    }
    // The two masks led to both kinds of plan, so both paths were compared.
    assert!(plans.iter().any(|p| p == "scan"), "{plans:?}");
    assert!(plans.iter().any(|p| p.ends_with("walk")), "{plans:?}");
}
