//! Browser tests, run in headless Chromium by `cargo test -p neardb-wasm --target
//! wasm32-unknown-unknown` (see `.cargo/config.toml` and `scripts/test-wasm.sh`).
//!
//! - The simd128 kernels are really compiled in and equal the scalar specification bit for bit.
//! - The `FlatIndex` class is driven through JavaScript itself (`Reflect.construct`, method calls
//!   on the JS object, thrown `Error`s), so the wasm-bindgen glue is tested along with the Rust.
//!
//! Compiled only for wasm32: natively (`cargo test --workspace`) this file is empty.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Float32Array, Function, Reflect, Uint32Array, Uint8Array};
use neardb_core::rng::Rng;
use neardb_core::simd::scalar;
use neardb_core::{Isa, Kernels, Metric};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

// ---------------------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------------------

fn simd128() -> Kernels {
    Kernels::for_isa(Isa::Simd128).expect(
        "simd128 kernels are not compiled in: build with -C target-feature=+simd128 \
         (.cargo/config.toml sets it; a RUSTFLAGS environment variable overrides it)",
    )
}

fn random_vec(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * scale).collect()
}

type Pair = (&'static str, fn(&Kernels, &[f32], &[f32]) -> f32, fn(&[f32], &[f32]) -> f32);
const KERNELS: [Pair; 3] = [
    ("dot", |k, a, b| k.dot(a, b), scalar::dot),
    ("l2sq", |k, a, b| k.l2sq(a, b), scalar::l2sq),
    ("l1", |k, a, b| k.l1(a, b), scalar::l1),
];

#[wasm_bindgen_test]
fn simd128_is_compiled_in_and_used_by_default() {
    let k = simd128();
    assert_eq!(k.isa(), Isa::Simd128);
    assert_eq!(Kernels::best().isa(), Isa::Simd128, "indexes would not use simd128");
    assert_eq!(neardb_wasm::kernel_isa(), "simd128");
}

#[wasm_bindgen_test]
fn simd128_equals_scalar_bit_for_bit_for_every_dim() {
    let simd = simd128();
    let mut rng = Rng::new(0x5EED_0128);
    let mut checked = 0usize;
    for n in 1..=1100 {
        for (scale, label) in [(1.0f32, "unit"), (1e17, "huge"), (1e-22, "tiny"), (3.0e5, "large")] {
            let a = random_vec(&mut rng, n, scale);
            let b = random_vec(&mut rng, n, scale);
            for (name, kernel, reference) in KERNELS {
                let got = kernel(&simd, &a, &b);
                let want = reference(&a, &b);
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "simd128 {name} {label} n={n}: {got:e} != scalar {want:e}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 1100 * 4 * 3);
}

#[wasm_bindgen_test]
fn simd128_sq_kernels_equal_scalar_bit_for_bit_for_every_dim() {
    let simd = simd128();
    let mut rng = Rng::new(0x5EED_0008);
    let mut checked = 0usize;
    for n in 1..=1100 {
        for (scale, label) in [(1.0f32, "unit"), (1e17, "huge"), (1e-22, "tiny")] {
            let p = random_vec(&mut rng, n, scale);
            let s: Vec<f32> = random_vec(&mut rng, n, scale / 255.0).iter().map(|x| x.abs()).collect();
            let c: Vec<u8> = (0..n).map(|i| ((i * 7 + n) % 256) as u8).collect();
            let pairs = [
                ("sq_l2", simd.sq_l2(&p, &s, &c), scalar::sq_l2(&p, &s, &c)),
                ("sq_l1", simd.sq_l1(&p, &s, &c), scalar::sq_l1(&p, &s, &c)),
            ];
            for (name, got, want) in pairs {
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "simd128 {name} {label} n={n}: {got:e} != scalar {want:e}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 1100 * 3 * 2);
}

#[wasm_bindgen_test]
fn simd128_integer_sq_dot_equals_the_true_sum_for_every_dim() {
    let simd = simd128();
    let mut rng = Rng::new(0x5EED_0016);
    for n in 1..=1100usize {
        let mut w: Vec<i16> = (0..n).map(|_| (rng.below(65_536) as i64 - 32_768) as i16).collect();
        w[n / 2] = i16::MIN;
        let c: Vec<u8> = (0..n).map(|i| ((i * 7 + n) % 256) as u8).collect();
        let exact: i64 = w.iter().zip(&c).map(|(&w, &c)| i64::from(w) * i64::from(c)).sum();
        assert_eq!(simd.sq_dot_i16(&w, &c), exact as i32, "simd128 n={n}");
        assert_eq!(scalar::sq_dot_i16(&w, &c), exact as i32, "scalar n={n}");
    }
}

#[wasm_bindgen_test]
fn simd128_binary16_decoding_is_exact_for_every_bit_pattern() {
    use neardb_core::simd::half::{from_f16, HalfKernels};
    let half = HalfKernels::new(Metric::L2, simd128());
    let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    // Every pattern in blocks of 8 (all-normal blocks take the fast path, the others the
    // exact one), then shifted by 3 so blocks mix classes and a tail is left over.
    let all: Vec<u16> = (0..=u16::MAX).collect();
    for start in [0usize, 3] {
        let mut out = vec![-1.0f32];
        half.decode_into(&all[start..], &mut out);
        assert_eq!(out.len(), 1 + all.len() - start, "decode_into appends");
        assert_eq!(out[0], -1.0, "decode_into keeps what was there");
        for (&h, &got) in all[start..].iter().zip(&out[1..]) {
            assert!(same(got, from_f16(h)), "{h:#06x}: {got:e} != {:e}", from_f16(h));
        }
    }
}

#[wasm_bindgen_test]
fn simd128_binary16_kernels_equal_the_f32_kernels_on_the_decoded_rows() {
    let simd = simd128();
    let mut rng = Rng::new(0x5EED_0F16);
    // Every binary16 bit pattern (NaNs, infinities, subnormals, signed zeros) decodes as the
    // software conversion says: a one-element dot with 1.0 is the decoded value plus zeros
    // (which only turns -0 into +0).
    for h in 0..=u16::MAX {
        let got = simd.dot_f16(&[1.0], &[h]);
        let want = neardb_core::simd::half::from_f16(h);
        let same = got.to_bits() == want.to_bits() || (got == 0.0 && want == 0.0);
        assert!(same || (got.is_nan() && want.is_nan()), "{h:#06x}: {got:e} != {want:e}");
    }
    // Every normal value through the fast path (whole blocks of 32 normal halves): a one-hot
    // query picks each lane out exactly (the other lanes add zeros).
    let normals: Vec<u16> = (0x0400..0x7c00u16).chain(0x8400..0xfc00).collect();
    for block in normals.chunks_exact(32) {
        for lane in 0..32 {
            let mut q = [0.0f32; 32];
            q[lane] = 1.0;
            let want = neardb_core::simd::half::from_f16(block[lane]);
            assert_eq!(simd.dot_f16(&q, block).to_bits(), want.to_bits(), "{:#06x}", block[lane]);
        }
    }
    // Every zero and subnormal through the path for finite blocks (blocks of 32 that hold one,
    // here half of them beside normal values): one-hot queries again; -0 may come out as +0,
    // which no kernel result can tell apart (accumulators start at +0).
    let tiny: Vec<u16> = (0x0000..0x0400u16).chain(0x8000..0x8400).collect();
    for (i, chunk) in tiny.chunks_exact(16).enumerate() {
        let mut block = [0u16; 32];
        for (lane, h) in block.iter_mut().enumerate() {
            *h = if lane % 2 == 0 { chunk[lane / 2] } else { 0x3c00 + (i * 16 + lane) as u16 % 0x0400 };
        }
        for lane in 0..32 {
            let mut q = [0.0f32; 32];
            q[lane] = 1.0;
            let (got, want) = (simd.dot_f16(&q, &block), neardb_core::simd::half::from_f16(block[lane]));
            let same = got.to_bits() == want.to_bits() || (got == 0.0 && want == 0.0);
            assert!(same, "{:#06x}: {got:e} != {want:e}", block[lane]);
        }
    }
    for n in 1..=600usize {
        let q = random_vec(&mut rng, n, 3.0);
        // Finite halves, a tenth of them zero or subnormal (as in real embeddings).
        let h: Vec<u16> = (0..n)
            .map(|_| {
                let magnitude = if rng.below(10) == 0 { rng.below(0x0400) } else { rng.below(0x7c00) };
                (magnitude as u16) | ((rng.below(2) as u16) << 15)
            })
            .collect();
        let decoded: Vec<f32> = h.iter().map(|&x| neardb_core::simd::half::from_f16(x)).collect();
        for (name, got, want) in [
            ("dot", simd.dot_f16(&q, &h), scalar::dot(&q, &decoded)),
            ("l2sq", simd.l2sq_f16(&q, &h), scalar::l2sq(&q, &decoded)),
            ("l1", simd.l1_f16(&q, &h), scalar::l1(&q, &decoded)),
        ] {
            assert_eq!(got.to_bits(), want.to_bits(), "simd128 {name}_f16 n={n}: {got:e} != {want:e}");
        }
    }
}

#[wasm_bindgen_test]
fn simd128_and_scalar_give_exact_integer_sums() {
    // Integer components in -8..=8: every partial sum is an integer far below 2^24, so f32
    // arithmetic is exact and both paths must return the true sum.
    let simd = simd128();
    let scalar = Kernels::scalar();
    let mut rng = Rng::new(7);
    for n in 1..=1100usize {
        let a: Vec<i64> = (0..n).map(|_| rng.below(17) as i64 - 8).collect();
        let b: Vec<i64> = (0..n).map(|_| rng.below(17) as i64 - 8).collect();
        let af: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let bf: Vec<f32> = b.iter().map(|&x| x as f32).collect();
        let dot: i64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let l2sq: i64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let l1: i64 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
        for k in [&simd, &scalar] {
            let isa = k.isa().name();
            assert_eq!(k.dot(&af, &bf), dot as f32, "{isa} dot n={n}");
            assert_eq!(k.l2sq(&af, &bf), l2sq as f32, "{isa} l2sq n={n}");
            assert_eq!(k.l1(&af, &bf), l1 as f32, "{isa} l1 n={n}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Driving the JavaScript class
// ---------------------------------------------------------------------------------------------

/// The JavaScript `FlatIndex` class exactly as wasm-bindgen generated it.
fn js_class() -> Function {
    let instance = JsValue::from(neardb_wasm::FlatIndex::new(1.into(), "l2".into()).expect("a valid index"));
    Reflect::get(&instance, &"constructor".into()).expect("constructor").unchecked_into()
}

/// The JavaScript `HnswIndex` class.
fn hnsw_class() -> Function {
    let instance =
        JsValue::from(neardb_wasm::HnswIndex::new(1.into(), "l2".into(), None).expect("a valid index"));
    Reflect::get(&instance, &"constructor".into()).expect("constructor").unchecked_into()
}

/// The JavaScript `VamanaIndex` class.
fn vamana_class() -> Function {
    let instance =
        JsValue::from(neardb_wasm::VamanaIndex::new(1.into(), "l2".into(), None).expect("a valid index"));
    Reflect::get(&instance, &"constructor".into()).expect("constructor").unchecked_into()
}

/// `new FlatIndex(dim, metric)` in JavaScript.
fn js_new(dim: f64, metric: &str) -> Result<JsValue, JsValue> {
    Reflect::construct(&js_class(), &Array::of2(&dim.into(), &metric.into()))
}

/// `new HnswIndex(dim, metric, options)` in JavaScript, options given as JSON.
fn hnsw_new(dim: f64, metric: &str, options: &str) -> Result<JsValue, JsValue> {
    let opts = js_sys::JSON::parse(options).expect("valid JSON");
    Reflect::construct(&hnsw_class(), &Array::of3(&dim.into(), &metric.into(), &opts))
}

/// `obj[method](...args)` in JavaScript; a thrown exception is the `Err`.
fn call(obj: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = Reflect::get(obj, &method.into())?.dyn_into()?;
    Reflect::apply(&f, obj, &args.iter().collect::<Array>())
}

/// `obj[prop]` in JavaScript (runs getters).
fn get(obj: &JsValue, prop: &str) -> JsValue {
    Reflect::get(obj, &prop.into()).expect("property read")
}

fn f32s(v: &[f32]) -> JsValue {
    Float32Array::from(v).into()
}

fn u32s(v: &[u32]) -> JsValue {
    Uint32Array::from(v).into()
}

fn json(text: &str) -> JsValue {
    js_sys::JSON::parse(text).expect("valid JSON")
}

/// `index.add(vectors)`; returns the ids it gave.
fn add(index: &JsValue, vectors: &[f32]) -> Result<Vec<u32>, JsValue> {
    let ids: Uint32Array =
        call(index, "add", &[f32s(vectors)])?.dyn_into().expect("add returns a Uint32Array");
    Ok(ids.to_vec())
}

/// A `{ ids, distances }` result object read back.
fn read_result(result: &JsValue) -> (Vec<u32>, Vec<f32>) {
    let ids: Uint32Array = get(result, "ids").dyn_into().expect("ids is a Uint32Array");
    let distances: Float32Array = get(result, "distances").dyn_into().expect("a Float32Array");
    assert_eq!(ids.length(), distances.length());
    (ids.to_vec(), distances.to_vec())
}

/// Runs `index.search(query, k)` and returns `(ids, distances)`.
fn search(index: &JsValue, query: &[f32], k: f64) -> Result<(Vec<u32>, Vec<f32>), JsValue> {
    Ok(read_result(&call(index, "search", &[f32s(query), k.into()])?))
}

/// Runs `index.search(query, k, options)`.
fn search_with(
    index: &JsValue,
    query: &[f32],
    k: f64,
    options: JsValue,
) -> Result<(Vec<u32>, Vec<f32>), JsValue> {
    Ok(read_result(&call(index, "search", &[f32s(query), k.into(), options])?))
}

fn to_bytes(index: &JsValue) -> Vec<u8> {
    let bytes: Uint8Array = call(index, "toBytes", &[]).expect("toBytes").dyn_into().expect("Uint8Array");
    bytes.to_vec()
}

fn from_bytes(bytes: &[u8]) -> Result<JsValue, JsValue> {
    call(&js_class(), "fromBytes", &[Uint8Array::from(bytes).into()])
}

/// The message of a thrown value, which must be a JavaScript `Error`.
fn message(thrown: JsValue) -> String {
    assert!(thrown.is_instance_of::<js_sys::Error>(), "thrown value is not an Error: {thrown:?}");
    String::from(thrown.unchecked_into::<js_sys::Error>().message())
}

#[track_caller]
fn assert_throws<T: core::fmt::Debug>(result: Result<T, JsValue>, needle: &str) -> String {
    match result {
        Ok(v) => panic!("expected an Error containing {needle:?}, got Ok({v:?})"),
        Err(e) => {
            let m = message(e);
            assert!(m.contains(needle), "error message {m:?} does not contain {needle:?}");
            m
        }
    }
}

/// The exact top-k by definition: every distance computed with the scalar kernels, sorted by
/// (distance, id).
fn naive(metric: Metric, data: &[f32], dim: usize, query: &[f32], k: usize) -> (Vec<u32>, Vec<f32>) {
    let s = Kernels::scalar();
    let prepare = |v: &[f32]| {
        let mut v = v.to_vec();
        if metric == Metric::Cosine {
            assert!(s.normalize(&mut v));
        }
        v
    };
    let q = prepare(query);
    let mut all: Vec<(u32, f32)> = data
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| {
            let v = prepare(v);
            let d = match metric {
                Metric::L2 => s.l2sq(&q, &v),
                Metric::Cosine => 1.0 - s.dot(&q, &v),
                Metric::InnerProduct => -s.dot(&q, &v),
                Metric::L1 => s.l1(&q, &v),
            };
            (i as u32, d)
        })
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all.into_iter().unzip()
}

/// `a` and `b` return the same ids and bit-identical distances for every query (top 5).
fn assert_same_answers(a: &JsValue, b: &JsValue, queries: &[f32], dim: usize) {
    for q in queries.chunks_exact(dim) {
        let (x, y) = (search(a, q, 5.0).expect("a"), search(b, q, 5.0).expect("b"));
        assert_eq!(x.0, y.0);
        assert_eq!(bits(&x.1), bits(&y.1));
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn dataset(seed: u64, n: usize, dim: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut data: Vec<f32> = (0..n * dim).map(|_| rng.normal() as f32).collect();
    // A duplicate of vector 3 at id 200, so ties must be broken by the smaller id.
    if n > 200 {
        let v3 = data[3 * dim..4 * dim].to_vec();
        data[200 * dim..201 * dim].copy_from_slice(&v3);
    }
    data
}

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
fn flat_search_through_js_equals_naive_loop_for_every_metric() {
    let (n, dim, k) = (257, 37, 10);
    let data = dataset(11, n, dim);
    let mut rng = Rng::new(12);
    for metric in Metric::ALL {
        let index = js_new(dim as f64, metric.name()).expect("new FlatIndex");
        assert_eq!(add(&index, &data[..100 * dim]).expect("add"), (0..100).collect::<Vec<u32>>());
        assert_eq!(add(&index, &data[100 * dim..]).expect("add"), (100..n as u32).collect::<Vec<u32>>());
        assert!(add(&index, &[]).expect("empty add").is_empty());
        assert_eq!(get(&index, "length").as_f64(), Some(n as f64));
        assert_eq!(get(&index, "isEmpty").as_bool(), Some(false));
        assert_eq!(get(&index, "dim").as_f64(), Some(dim as f64));
        assert_eq!(get(&index, "metric").as_string().as_deref(), Some(metric.name()));

        let mut queries: Vec<Vec<f32>> = (0..4).map(|_| random_vec(&mut rng, dim, 2.0)).collect();
        queries.push(data[3 * dim..4 * dim].to_vec()); // hits the duplicated pair 3 / 200
        for (qi, query) in queries.iter().enumerate() {
            let (ids, distances) = search(&index, query, k as f64).expect("search");
            let (want_ids, want_d) = naive(metric, &data, dim, query, k);
            assert_eq!(ids, want_ids, "{metric} query {qi}: ids");
            assert_eq!(bits(&distances), bits(&want_d), "{metric} query {qi}: distances {distances:?}");
        }
        // The duplicate pair: both found, smaller id first, same distance.
        let (ids, d) = search(&index, &queries[4], 2.0).expect("search");
        assert_eq!(ids, [3, 200], "{metric}");
        assert_eq!(d[0].to_bits(), d[1].to_bits());

        // k beyond the index returns everything, in the naive order.
        let (ids, _) = search(&index, &queries[0], (n + 50) as f64).expect("search");
        assert_eq!(ids, naive(metric, &data, dim, &queries[0], n).0);
    }
}

#[wasm_bindgen_test]
fn k_is_checked_and_a_huge_k_does_not_exhaust_memory() {
    let index = js_new(3.0, "l2").expect("new");
    add(&index, &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0]).expect("add");
    let q = [1.0, 1.0, 1.0];
    // The largest k a u32 holds is accepted (and clamped to the index size).
    let (ids, d) = search(&index, &q, u32::MAX as f64).expect("k = 2^32 - 1");
    assert_eq!(ids, [1, 0, 2]); // 0 and 2 tie at distance 3: smaller id first
    assert_eq!(d, [0.0, 3.0, 3.0]);
    for bad in [u32::MAX as f64 + 1.0, -1.0, 2.5, f64::NAN, f64::INFINITY] {
        let m = assert_throws(search(&index, &q, bad), "k must be a whole number between 0 and 4294967295");
        assert!(m.ends_with(&format!("got {bad}")), "{m}");
    }
    assert_throws(search(&index, &q, 0.0), "k must be at least 1");
}

// ---------------------------------------------------------------------------------------------
// File round trip
// ---------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
fn to_bytes_from_bytes_round_trip_is_byte_exact_and_searches_identically() {
    let (n, dim) = (240, 24);
    let data = dataset(21, n, dim);
    let more = dataset(22, 5, dim);
    let mut rng = Rng::new(23);
    for metric in Metric::ALL {
        let a = js_new(dim as f64, metric.name()).expect("new");
        add(&a, &data).expect("add");
        let bytes = to_bytes(&a);

        // The JS face writes exactly the core's file format.
        let mut native = neardb_core::FlatIndex::new(dim, metric).expect("core index");
        native.add(&data).expect("core add");
        assert_eq!(bytes, native.to_bytes(), "{metric}: toBytes differs from the core writer");

        let source = Uint8Array::from(&bytes[..]);
        let b = call(&js_class(), "fromBytes", &[source.clone().into()]).expect("fromBytes");
        // fromBytes copied the bytes: clobbering the caller's array changes nothing.
        source.fill(0xAB, 0, source.length());
        assert_eq!(to_bytes(&b), bytes, "{metric}: round trip is not byte-exact");
        assert_eq!(get(&b, "length").as_f64(), Some(n as f64));
        assert_eq!(get(&b, "dim").as_f64(), Some(dim as f64));
        assert_eq!(get(&b, "metric").as_string().as_deref(), Some(metric.name()));
        for _ in 0..4 {
            let q = random_vec(&mut rng, dim, 1.5);
            let ra = search(&a, &q, 7.0).expect("search a");
            let rb = search(&b, &q, 7.0).expect("search b");
            assert_eq!(ra.0, rb.0, "{metric}");
            assert_eq!(bits(&ra.1), bits(&rb.1), "{metric}");
        }

        // A buffer at an odd address (a subarray) opens too: it is copied into an aligned one.
        let padded: Vec<u8> = core::iter::once(0u8).chain(bytes.iter().copied()).collect();
        let odd = Uint8Array::from(&padded[..]).subarray(1, padded.len() as u32);
        let c = call(&js_class(), "fromBytes", &[odd.into()]).expect("fromBytes(subarray)");
        assert_eq!(to_bytes(&c), bytes);

        // Adding to an opened file makes it owned; it then matches an index grown directly.
        assert_eq!(add(&b, &more).expect("add to opened")[0], n as u32);
        add(&a, &more).expect("add");
        assert_eq!(to_bytes(&b), to_bytes(&a), "{metric}: after add");
        let q = random_vec(&mut rng, dim, 1.5);
        assert_eq!(search(&a, &q, 300.0).expect("a").0, search(&b, &q, 300.0).expect("b").0);
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: each is a thrown JavaScript Error with the core's message, and the module survives.
// ---------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
fn construction_errors() {
    assert_throws(
        js_new(4.0, "manhatan"),
        "unknown metric \"manhatan\": expected l2, cosine (cos), ip (dot) or l1",
    );
    assert_throws(js_new(0.0, "l2"), "dimension must be between 1 and 65536, got 0");
    assert_throws(js_new(65_537.0, "l2"), "dimension must be between 1 and 65536, got 65537");
    assert_throws(js_new(-3.0, "l2"), "dim must be a whole number between 0 and 4294967295, got -3");
    assert_throws(js_new(1.5, "l2"), "dim must be a whole number");
    assert_throws(js_new(1e12, "l2"), "dim must be a whole number");
    // Case-insensitive names and aliases work.
    let idx = js_new(2.0, "DOT").expect("alias");
    assert_eq!(get(&idx, "metric").as_string().as_deref(), Some("ip"));
    // The Rust side returns the same Error values.
    match neardb_wasm::FlatIndex::new(4.into(), "nope".into()) {
        Ok(_) => panic!("unknown metric accepted"),
        Err(e) => assert!(message(e).starts_with("unknown metric \"nope\"")),
    }
}

#[wasm_bindgen_test]
fn add_and_search_errors() {
    let index = js_new(4.0, "l2").expect("new");
    assert_eq!(get(&index, "isEmpty").as_bool(), Some(true));
    assert_throws(
        search(&index, &[1.0, 2.0, 3.0, 4.0], 3.0),
        "the index is empty: add vectors before searching",
    );

    assert_throws(
        add(&index, &[1.0, 2.0, 3.0]),
        "dimension mismatch: the index has 4 dimensions, the input has 3",
    );
    assert_throws(add(&index, &[0.5; 6]), "6 floats do not split into vectors of dimension 4");
    let mut nan = [1.0f32; 8];
    nan[6] = f32::NAN;
    assert_throws(add(&index, &nan), "vector 1 has a non-finite value (NaN or infinity) at component 2");
    assert_throws(add(&index, &[1.0, f32::INFINITY, 0.0, 0.0]), "vector 0 has a non-finite value");
    // A rejected batch adds nothing.
    assert_eq!(get(&index, "length").as_f64(), Some(0.0));

    assert_eq!(add(&index, &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]).expect("add"), [0, 1]);
    assert_throws(
        search(&index, &[1.0, 2.0], 1.0),
        "dimension mismatch: the index has 4 dimensions, the input has 2",
    );
    assert_throws(
        search(&index, &[0.0, 0.0, f32::NAN, 0.0], 1.0),
        "the query has a non-finite value (NaN or infinity) at component 2",
    );
    assert_throws(search(&index, &[0.0; 4], 0.0), "k must be at least 1");

    let cosine = js_new(2.0, "cosine").expect("new");
    assert_throws(
        add(&cosine, &[1.0, 0.0, 0.0, 0.0]),
        "cosine metric: vector 1 has zero length and no direction",
    );
    add(&cosine, &[1.0, 1.0]).expect("add");
    assert_throws(search(&cosine, &[0.0, 0.0], 1.0), "cosine metric: the query has zero length");

    // After all those errors the module and the index still work.
    let (ids, d) = search(&index, &[0.0, 1.0, 0.0, 0.0], 2.0).expect("search after errors");
    assert_eq!(ids, [1, 0]);
    assert_eq!(d, [0.0, 2.0]);
}

#[wasm_bindgen_test]
fn file_errors() {
    let index = js_new(8.0, "l2").expect("new");
    add(&index, &dataset(31, 201, 8)).expect("add");
    let good = to_bytes(&index);
    from_bytes(&good).expect("the unmodified file opens");

    // A flipped byte in the vector section (the last byte of the file).
    let mut flipped = good.clone();
    *flipped.last_mut().expect("non-empty") ^= 0x40;
    let m = assert_throws(from_bytes(&flipped), "section vectors checksum mismatch");
    assert!(m.contains("the file is corrupted"), "{m}");

    // A flipped byte in the header (the dimension field).
    let mut header = good.clone();
    header[12] ^= 0x01;
    assert_throws(from_bytes(&header), "header checksum mismatch");

    // Truncated: one byte short, and shorter than the header.
    assert_throws(
        from_bytes(&good[..good.len() - 1]),
        &format!("truncated index file: {} bytes expected, {} present", good.len(), good.len() - 1),
    );
    assert_throws(from_bytes(&good[..10]), "truncated index file: 64 bytes expected, 10 present");
    assert_throws(from_bytes(&[]), "truncated index file: 64 bytes expected, 0 present");

    // One byte too many.
    let mut long = good.clone();
    long.push(0);
    assert_throws(from_bytes(&long), "but its header declares");

    // Not ours at all.
    let mut magic = good.clone();
    magic[..4].copy_from_slice(b"GGUF");
    assert_throws(from_bytes(&magic), "not a NearDB index: magic is [71, 71, 85, 70], expected \"NRDB\"");
    assert_throws(from_bytes(b"<!doctype html><html>404</html>"), "not a NearDB index");
}

#[wasm_bindgen_test]
fn unsupported_version_is_a_clear_error() {
    let index = js_new(4.0, "l2").expect("new");
    add(&index, &[1.0, 2.0, 3.0, 4.0]).expect("add");
    let mut bytes = to_bytes(&index);
    bytes[4] = 2; // format version 2
    assert_throws(from_bytes(&bytes), "index file format version 2 is newer than this build reads (up to 1)");
}

// ---------------------------------------------------------------------------------------------
// HnswIndex
// ---------------------------------------------------------------------------------------------

/// Clustered data: `clusters` Gaussian blobs, so the graph has structure to find.
fn clustered(seed: u64, n: usize, dim: usize, clusters: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let centres: Vec<f32> = (0..clusters * dim).map(|_| rng.normal() as f32 * 4.0).collect();
    let mut out = Vec::with_capacity(n * dim);
    for i in 0..n {
        let c = &centres[(i % clusters) * dim..(i % clusters + 1) * dim];
        out.extend(c.iter().map(|x| x + rng.normal() as f32));
    }
    out
}

fn recall(found: &[u32], truth: &[u32]) -> f64 {
    found.iter().filter(|id| truth.contains(id)).count() as f64 / truth.len() as f64
}

#[wasm_bindgen_test]
fn hnsw_through_js_reaches_recall_and_batch_equals_single() {
    let (n, dim, k) = (3000, 24, 10);
    let data = clustered(41, n, dim, 30);
    let queries = clustered(42, 40, dim, 30);
    for metric in ["l2", "cosine"] {
        let hnsw =
            hnsw_new(dim as f64, metric, r#"{"m": 12, "efConstruction": 100, "seed": 7}"#).expect("new");
        assert_eq!(get(&hnsw, "m").as_f64(), Some(12.0));
        assert_eq!(get(&hnsw, "efConstruction").as_f64(), Some(100.0));
        assert_eq!(get(&hnsw, "efSearch").as_f64(), Some(64.0));
        assert_eq!(add(&hnsw, &data).expect("add"), (0..n as u32).collect::<Vec<_>>());
        assert_eq!(get(&hnsw, "length").as_f64(), Some(n as f64));
        let flat = js_new(dim as f64, metric).expect("flat");
        add(&flat, &data).expect("add");
        let mut total = 0.0;
        let batch = call(&hnsw, "searchBatch", &[f32s(&queries), (k as f64).into(), json(r#"{"ef": 48}"#)])
            .expect("searchBatch");
        let batch: Array = batch.dyn_into().expect("an Array");
        assert_eq!(batch.length(), 40);
        for (i, q) in queries.chunks_exact(dim).enumerate() {
            let truth = search(&flat, q, k as f64).expect("flat").0;
            let got = search_with(&hnsw, q, k as f64, json(r#"{"ef": 48}"#)).expect("hnsw");
            assert_eq!(got.0.len(), k);
            total += recall(&got.0, &truth);
            let b = read_result(&batch.get(i as u32));
            assert_eq!(b.0, got.0, "{metric} batch query {i}");
            assert_eq!(bits(&b.1), bits(&got.1));
        }
        let mean = total / 40.0;
        assert!(mean >= 0.92, "{metric}: recall@10 {mean} at ef 48");
        // A larger ef is at least as good; efSearch changes the default.
        Reflect::set(&hnsw, &"efSearch".into(), &200.into()).expect("set efSearch");
        assert_eq!(get(&hnsw, "efSearch").as_f64(), Some(200.0));
        let mut total_200 = 0.0;
        for q in queries.chunks_exact(dim) {
            let truth = search(&flat, q, k as f64).expect("flat").0;
            total_200 += recall(&search(&hnsw, q, k as f64).expect("hnsw").0, &truth);
        }
        assert!(total_200 / 40.0 >= mean.min(0.99), "{metric}: ef 200 recall {}", total_200 / 40.0);
    }
}

#[wasm_bindgen_test]
fn hnsw_bytes_round_trip_is_byte_exact_and_equals_the_core_build() {
    let (n, dim) = (800, 16);
    let data = clustered(51, n, dim, 8);
    let hnsw = hnsw_new(dim as f64, "l2", r#"{"m": 8, "efConstruction": 60, "seed": 3}"#).expect("new");
    add(&hnsw, &data).expect("add");
    let bytes = to_bytes(&hnsw);
    let params = neardb_core::HnswParams { m: 8, ef_construction: 60, seed: 3 };
    let mut core_index = neardb_core::HnswIndex::new(dim, Metric::L2, params).expect("core");
    core_index.add(&data).expect("core add");
    assert_eq!(bytes, core_index.to_bytes(), "the JS class writes exactly the core's file");

    let opened =
        call(&hnsw_class(), "fromBytes", &[Uint8Array::from(&bytes[..]).into(), json(r#"{"efSearch": 80}"#)])
            .expect("fromBytes");
    assert_eq!(get(&opened, "efSearch").as_f64(), Some(80.0));
    assert_eq!(get(&opened, "m").as_f64(), Some(8.0));
    assert_eq!(to_bytes(&opened), bytes);
    for q in clustered(52, 10, dim, 8).chunks_exact(dim) {
        let a = search_with(&hnsw, q, 5.0, json(r#"{"ef": 80}"#)).expect("a");
        let b = search(&opened, q, 5.0).expect("b");
        assert_eq!(a.0, b.0);
        assert_eq!(bits(&a.1), bits(&b.1));
    }
    // Corrupted graph bytes (checksum fixed up would be needed to pass): rejected, not a panic.
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last / 2] ^= 0x10;
    let r = call(&hnsw_class(), "fromBytes", &[Uint8Array::from(&bad[..]).into()]);
    assert_throws(r, "checksum mismatch");
    // A flat file is not an HNSW file.
    let flat = js_new(dim as f64, "l2").expect("flat");
    add(&flat, &data).expect("add");
    let r = call(&hnsw_class(), "fromBytes", &[Uint8Array::from(&to_bytes(&flat)[..]).into()]);
    assert_throws(r, "flat");
}

#[wasm_bindgen_test]
fn sq8_quantized_hnsw_through_js_keeps_recall_and_round_trips() {
    let (n, dim, k) = (3000, 32, 10);
    let data = clustered(61, n, dim, 30);
    let queries = clustered(62, 30, dim, 30);
    let flat = js_new(dim as f64, "cosine").expect("flat");
    add(&flat, &data).expect("add");
    let truth: Vec<Vec<u32>> =
        queries.chunks_exact(dim).map(|q| search(&flat, q, k as f64).expect("flat").0).collect();
    let recall_of = |index: &JsValue, options: &str| -> f64 {
        let mut total = 0.0;
        for (q, t) in queries.chunks_exact(dim).zip(&truth) {
            total += recall(&search_with(index, q, k as f64, json(options)).expect("search").0, t);
        }
        total / truth.len() as f64
    };
    let hnsw = hnsw_new(dim as f64, "cosine", r#"{"m": 12, "efConstruction": 100, "seed": 5}"#).expect("new");
    add(&hnsw, &data).expect("add");
    let f32_file = to_bytes(&hnsw).len();
    assert_eq!(get(&hnsw, "quantization").as_string().as_deref(), Some("none"));
    let exact = recall_of(&hnsw, r#"{"ef": 64}"#);
    call(&hnsw, "quantizeSq8", &[4.into()]).expect("quantizeSq8");
    assert_eq!(get(&hnsw, "quantization").as_string().as_deref(), Some("sq8"));
    let reranked = recall_of(&hnsw, r#"{"ef": 64}"#);
    let more = recall_of(&hnsw, r#"{"ef": 64, "rerank": 6}"#);
    assert!(reranked >= exact - 0.02, "sq8 + rerank {reranked} vs f32 {exact}");
    assert!(more >= exact - 0.02, "sq8 + rerank 6: {more} vs f32 {exact}");
    // Codes only: a smaller file that answers identically once reopened, with decoded `get`.
    call(&hnsw, "quantizeSq8", &[0.into()]).expect("quantizeSq8(0)");
    let codes_only = recall_of(&hnsw, r#"{"ef": 64}"#);
    assert!(codes_only >= exact - 0.08, "sq8 only {codes_only} vs f32 {exact}");
    let bytes = to_bytes(&hnsw);
    // The codes replace the f32 vectors: three quarters of their bytes are gone.
    assert!(f32_file - bytes.len() >= n * dim * 3 - 4096, "{f32_file} → {} bytes", bytes.len());
    let opened = call(&hnsw_class(), "fromBytes", &[Uint8Array::from(&bytes[..]).into()]).expect("fromBytes");
    assert_eq!(get(&opened, "quantization").as_string().as_deref(), Some("sq8"));
    assert_same_answers(&hnsw, &opened, &queries, dim);
    let v: Float32Array = call(&opened, "get", &[7.into()]).expect("get").dyn_into().expect("Float32Array");
    assert_eq!(v.length() as usize, dim);
    // Bad arguments are Errors that say what is wrong.
    assert_throws(call(&hnsw, "quantizeSq8", &["4".into()]), "rerankFactor must be a number");
    assert_throws(call(&hnsw, "quantizeSq8", &[(-1).into()]), "rerankFactor must be a whole number");
    assert_throws(
        search_with(&hnsw, &queries[..dim], 5.0, json(r#"{"rerank": 0}"#)),
        "rerank must be at least 1",
    );
    assert_throws(search_with(&hnsw, &queries[..dim], 5.0, json(r#"{"rerank": "x"}"#)), "rerank");
}

#[wasm_bindgen_test]
fn binary16_hnsw_through_js_keeps_recall_halves_the_file_and_round_trips() {
    let (n, dim, k) = (3000, 32, 10);
    let data = clustered(63, n, dim, 30);
    let queries = clustered(64, 30, dim, 30);
    let flat = js_new(dim as f64, "l2").expect("flat");
    add(&flat, &data).expect("add");
    let truth: Vec<Vec<u32>> =
        queries.chunks_exact(dim).map(|q| search(&flat, q, k as f64).expect("flat").0).collect();
    let recall_of = |index: &JsValue| -> f64 {
        let mut total = 0.0;
        for (q, t) in queries.chunks_exact(dim).zip(&truth) {
            total += recall(&search_with(index, q, k as f64, json(r#"{"ef": 64}"#)).expect("search").0, t);
        }
        total / truth.len() as f64
    };
    let hnsw = hnsw_new(dim as f64, "l2", r#"{"m": 12, "efConstruction": 100, "seed": 5}"#).expect("new");
    add(&hnsw, &data).expect("add");
    let f32_file = to_bytes(&hnsw).len();
    let exact = recall_of(&hnsw);
    call(&hnsw, "storeF16", &[]).expect("storeF16");
    assert_eq!(get(&hnsw, "quantization").as_string().as_deref(), Some("f16"));
    let half = recall_of(&hnsw);
    assert!(half >= exact - 0.01, "f16 {half} vs f32 {exact}");
    let bytes = to_bytes(&hnsw);
    assert!(f32_file - bytes.len() >= n * dim * 2 - 4096, "{f32_file} → {} bytes", bytes.len());
    let opened = call(&hnsw_class(), "fromBytes", &[Uint8Array::from(&bytes[..]).into()]).expect("fromBytes");
    assert_eq!(get(&opened, "quantization").as_string().as_deref(), Some("f16"));
    assert_same_answers(&hnsw, &opened, &queries, dim);
    // `get` gives the rounded vector, from the owned index and from the file alike.
    let from_file: Float32Array = call(&opened, "get", &[7.into()]).expect("get").dyn_into().expect("f32");
    let owned: Float32Array = call(&hnsw, "get", &[7.into()]).expect("get").dyn_into().expect("f32");
    assert_eq!(bits(&from_file.to_vec()), bits(&owned.to_vec()));
    // A value binary16 cannot hold is refused, and nothing is added.
    let mut bad = data[..dim].to_vec();
    bad[3] = 1.0e6;
    assert_throws(add(&hnsw, &bad), "beyond binary16's range");
    assert_eq!(get(&hnsw, "length").as_f64(), Some(n as f64));
    let plain = hnsw_new(dim as f64, "l2", "{}").expect("new");
    add(&plain, &bad).expect("add");
    assert_throws(call(&plain, "storeF16", &[]), "beyond binary16's range");
    assert_eq!(get(&plain, "quantization").as_string().as_deref(), Some("none"));
    // `{ storage: "f16" }` is binary16 from the start: the build walks the rounded rows, as
    // `storeF16()` before any `add` does, and the two give the same bytes.
    let options = r#"{"m": 12, "efConstruction": 100, "seed": 5, "storage": "f16"}"#;
    let from_start = hnsw_new(dim as f64, "l2", options).expect("storage f16");
    assert_eq!(get(&from_start, "quantization").as_string().as_deref(), Some("f16"));
    add(&from_start, &data).expect("add");
    assert!(recall_of(&from_start) >= exact - 0.01);
    let store_first =
        hnsw_new(dim as f64, "l2", r#"{"m": 12, "efConstruction": 100, "seed": 5}"#).expect("new");
    call(&store_first, "storeF16", &[]).expect("storeF16 on an empty index");
    add(&store_first, &data).expect("add");
    assert_eq!(to_bytes(&from_start), to_bytes(&store_first));
    let explicit = hnsw_new(dim as f64, "l2", r#"{"storage": "f32"}"#).expect("storage f32");
    assert_eq!(get(&explicit, "quantization").as_string().as_deref(), Some("none"));
    // SQ8 on top: the walk reads codes, re-ranks against the binary16 rows.
    call(&hnsw, "quantizeSq8", &[4.into()]).expect("quantizeSq8");
    assert_eq!(get(&hnsw, "quantization").as_string().as_deref(), Some("sq8+f16"));
    let both = recall_of(&hnsw);
    assert!(both >= exact - 0.02, "sq8+f16 {both} vs f32 {exact}");
}

#[wasm_bindgen_test]
fn optimize_layout_keeps_every_answer_and_id_through_the_file_round_trip() {
    let (n, dim) = (2000, 16);
    let data = clustered(65, n, dim, 20);
    let queries = clustered(66, 20, dim, 20);
    let hnsw = hnsw_new(dim as f64, "l2", r#"{"m": 8, "efConstruction": 60, "seed": 3}"#).expect("new");
    // Caller ids (not slots), and some removed: the layout must keep both.
    let ids: Vec<u32> = (0..n as u32).map(|i| 10_000 + 3 * i).collect();
    call(&hnsw, "add", &[Float32Array::from(&data[..]).into(), Uint32Array::from(&ids[..]).into()])
        .expect("add");
    for id in ids.iter().step_by(9) {
        call(&hnsw, "remove", &[(*id).into()]).expect("remove");
    }
    let before: Vec<(Vec<u32>, Vec<f32>)> =
        queries.chunks_exact(dim).map(|q| search(&hnsw, q, 10.0).expect("search")).collect();
    call(&hnsw, "optimizeLayout", &[]).expect("optimizeLayout");
    let reopened = call(&hnsw_class(), "fromBytes", &[Uint8Array::from(&to_bytes(&hnsw)[..]).into()])
        .expect("fromBytes");
    for (q, (want_ids, want_d)) in queries.chunks_exact(dim).zip(&before) {
        for index in [&hnsw, &reopened] {
            let (got_ids, got_d) = search(index, q, 10.0).expect("search");
            assert_eq!(&got_ids, want_ids);
            assert_eq!(bits(&got_d), bits(want_d));
        }
    }
    let v: Float32Array = call(&hnsw, "get", &[ids[5].into()]).expect("get").dyn_into().expect("f32");
    assert_eq!(bits(&v.to_vec()), bits(&data[5 * dim..6 * dim]));
    assert_throws(call(&hnsw, "get", &[ids[9].into()]), "unknown id");
    // New vectors after the move get fresh ids and are found.
    let extra = clustered(65, n + 3, dim, 20)[n * dim..].to_vec();
    let added = add(&hnsw, &extra).expect("add after");
    assert!(added.iter().all(|id| !ids.contains(id)), "{added:?}");
    for (row, id) in extra.chunks_exact(dim).zip(&added) {
        assert_eq!(search(&hnsw, row, 1.0).expect("search").0, vec![*id]);
    }
}

/// The JavaScript `IvfPqIndex` class.
fn ivfpq_class() -> Function {
    let instance = JsValue::from(neardb_wasm::IvfPqIndex::new(16.into(), "l2".into(), None).expect("valid"));
    Reflect::get(&instance, &"constructor".into()).expect("constructor").unchecked_into()
}

#[wasm_bindgen_test]
fn ivfpq_through_js_trains_reaches_recall_with_rerank_and_round_trips() {
    let (n, dim, k) = (3000, 32, 10);
    let data = clustered(71, n, dim, 30);
    let queries = clustered(72, 30, dim, 30);
    let flat = js_new(dim as f64, "cosine").expect("flat");
    add(&flat, &data).expect("add");
    let options = json(r#"{"nlist": 32, "pqM": 8, "seed": 3}"#);
    let ivf =
        Reflect::construct(&ivfpq_class(), &Array::of3(&(dim as f64).into(), &"cosine".into(), &options))
            .expect("new IvfPqIndex");
    // Adding before training is an Error, not a panic.
    assert_throws(call(&ivf, "add", &[f32s(&data)]), "train");
    call(&ivf, "train", &[f32s(&data)]).expect("train");
    assert_eq!(add(&ivf, &data).expect("add"), (0..n as u32).collect::<Vec<_>>());
    assert_eq!((get(&ivf, "nlist").as_f64(), get(&ivf, "pqM").as_f64()), (Some(32.0), Some(8.0)));
    let mut total = 0.0;
    for q in queries.chunks_exact(dim) {
        let truth = search(&flat, q, k as f64).expect("flat").0;
        let got = search_with(&ivf, q, k as f64, json(r#"{"nprobe": 8, "rerank": 10}"#)).expect("ivf");
        total += recall(&got.0, &truth);
    }
    let mean = total / 30.0;
    assert!(mean >= 0.9, "IVF-PQ + rerank recall@10 {mean}");
    let bytes = to_bytes(&ivf);
    let opened =
        call(&ivfpq_class(), "fromBytes", &[Uint8Array::from(&bytes[..]).into()]).expect("fromBytes");
    assert_eq!(to_bytes(&opened), bytes);
    for q in queries.chunks_exact(dim).take(10) {
        let a = search_with(&ivf, q, 5.0, json(r#"{"nprobe": 4}"#)).expect("a");
        let b = search_with(&opened, q, 5.0, json(r#"{"nprobe": 4}"#)).expect("b");
        assert_eq!(a.0, b.0);
        assert_eq!(bits(&a.1), bits(&b.1));
    }
    // Errors that name what is wrong.
    assert_throws(
        search_with(&ivf, &queries[..dim], 5.0, json(r#"{"nprobe": 0}"#)),
        "nprobe must be at least 1",
    );
    assert_throws(
        search_with(&ivf, &queries[..dim], 5.0, json(r#"{"probes": 2}"#)),
        "unknown field `probes`",
    );
    let bad =
        Reflect::construct(&ivfpq_class(), &Array::of3(&30.into(), &"l2".into(), &json(r#"{"pqM": 7}"#)));
    assert_throws(bad, "divide");
    let no_vectors = Reflect::construct(
        &ivfpq_class(),
        &Array::of3(
            &(dim as f64).into(),
            &"l2".into(),
            &json(r#"{"nlist": 8, "pqM": 4, "keepVectors": false}"#),
        ),
    )
    .expect("new");
    call(&no_vectors, "train", &[f32s(&data)]).expect("train");
    add(&no_vectors, &data).expect("add");
    assert_throws(search_with(&no_vectors, &queries[..dim], 5.0, json(r#"{"rerank": 4}"#)), "rerank");
    let mut broken = bytes.clone();
    let mid = broken.len() / 2;
    broken[mid] ^= 0x40;
    assert_throws(call(&ivfpq_class(), "fromBytes", &[Uint8Array::from(&broken[..]).into()]), "checksum");
}

// ---------------------------------------------------------------------------------------------
// Caller ids, remove, get
// ---------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
fn caller_ids_survive_search_remove_and_the_file_round_trip() {
    let (n, dim) = (300, 8);
    let data = clustered(61, n, dim, 6);
    let ids: Vec<u32> = (0..n as u32).map(|i| 1_000_000 + 7 * i).collect();
    for class in ["flat", "hnsw"] {
        let index = match class {
            "flat" => js_new(dim as f64, "l2"),
            _ => hnsw_new(dim as f64, "l2", r#"{"m": 8, "efConstruction": 80}"#),
        }
        .expect("new");
        let given = call(&index, "add", &[f32s(&data), u32s(&ids)]).expect("add with ids");
        assert_eq!(given.dyn_into::<Uint32Array>().expect("ids").to_vec(), ids);
        // Searching for a stored vector finds its id first, at distance 0.
        let (found, d) = search_with(&index, &data[5 * dim..6 * dim], 3.0, json(r#"{}"#)).expect("search");
        assert_eq!(found[0], ids[5], "{class}");
        assert_eq!(d[0], 0.0);
        // get returns the stored vector; unknown ids throw.
        let v: Float32Array = call(&index, "get", &[ids[5].into()]).expect("get").dyn_into().expect("f32");
        assert_eq!(v.to_vec(), &data[5 * dim..6 * dim]);
        assert_throws(call(&index, "get", &[5.into()]), "unknown id 5");
        assert_eq!(call(&index, "has", &[ids[5].into()]).expect("has").as_bool(), Some(true));
        // Without ids, the next id is one past the largest.
        let next = add(&index, &data[..dim]).expect("add without ids");
        assert_eq!(next, [ids[n - 1] + 1], "{class}");
        // Errors: duplicate, reserved, count mismatch; nothing is added by a failed call.
        assert_throws(call(&index, "add", &[f32s(&data[..dim]), u32s(&[ids[3]])]), "duplicate id 1000021");
        assert_throws(call(&index, "add", &[f32s(&data[..2 * dim]), u32s(&[9, 9])]), "duplicate id 9");
        assert_throws(call(&index, "add", &[f32s(&data[..dim]), u32s(&[u32::MAX])]), "reserved");
        assert_throws(
            call(&index, "add", &[f32s(&data[..2 * dim]), u32s(&[1])]),
            "2 vectors were given 1 ids",
        );
        assert_throws(call(&index, "add", &[f32s(&data[..dim]), "7".into()]), "ids must be a Uint32Array");
        assert_eq!(get(&index, "length").as_f64(), Some(n as f64 + 1.0));

        // Remove: gone from results, from has/get, from length; a second remove throws.
        call(&index, "remove", &[ids[5].into()]).expect("remove");
        assert_throws(call(&index, "remove", &[ids[5].into()]), &format!("unknown id {}", ids[5]));
        assert_eq!(call(&index, "has", &[ids[5].into()]).expect("has").as_bool(), Some(false));
        assert_eq!(get(&index, "length").as_f64(), Some(n as f64));
        let (found, _) = search_with(&index, &data[5 * dim..6 * dim], 10.0, json(r#"{}"#)).expect("search");
        assert!(!found.contains(&ids[5]), "{class}: a removed id was returned");
        // The removed id can be given again; the vector is found under it.
        call(&index, "add", &[f32s(&data[5 * dim..6 * dim]), u32s(&[ids[5]])]).expect("re-add");
        let (found, _) = search(&index, &data[5 * dim..6 * dim], 1.0).expect("search");
        assert_eq!(found, [ids[5]], "{class}");

        // The file carries the ids: reopened (here and in the core) it answers the same.
        let bytes = to_bytes(&index);
        let reopened = match class {
            "flat" => from_bytes(&bytes),
            _ => call(&hnsw_class(), "fromBytes", &[Uint8Array::from(&bytes[..]).into()]),
        }
        .expect("fromBytes");
        assert_eq!(to_bytes(&reopened), bytes);
        for q in clustered(62, 5, dim, 6).chunks_exact(dim) {
            assert_eq!(search(&index, q, 10.0).expect("a").0, search(&reopened, q, 10.0).expect("b").0);
        }
        let aligned = neardb_core::format::AlignedBytes::copy_from(&bytes);
        let core_ids = match class {
            "flat" => {
                neardb_core::FlatView::open(aligned.as_slice()).expect("core open").ids().map(<[u32]>::to_vec)
            }
            _ => {
                neardb_core::HnswView::open(aligned.as_slice()).expect("core open").ids().map(<[u32]>::to_vec)
            }
        }
        .expect("an ids section");
        assert!(core_ids.contains(&ids[5]) && core_ids.contains(&(ids[n - 1] + 1)));
        // Removing from an opened file works too (it is copied into owned memory first).
        call(&reopened, "remove", &[ids[0].into()]).expect("remove from opened");
        assert_eq!(get(&reopened, "length").as_f64(), Some(n as f64));
    }
}

#[wasm_bindgen_test]
fn flat_remove_keeps_search_exact() {
    let (n, dim) = (120, 6);
    let data = dataset(71, n, dim);
    let index = js_new(dim as f64, "l2").expect("new");
    add(&index, &data).expect("add");
    let removed = [0u32, 17, 119, 60];
    for id in removed {
        call(&index, "remove", &[id.into()]).expect("remove");
    }
    let kept: Vec<u32> = (0..n as u32).filter(|i| !removed.contains(i)).collect();
    let mut rng = Rng::new(72);
    for _ in 0..5 {
        let q = random_vec(&mut rng, dim, 2.0);
        let (ids, d) = search(&index, &q, 200.0).expect("search");
        // Exact over the kept vectors, under their original ids.
        let (all_ids, all_d) = naive(Metric::L2, &data, dim, &q, n);
        let want: Vec<(u32, u32)> = all_ids
            .iter()
            .zip(&all_d)
            .filter(|(i, _)| kept.contains(i))
            .map(|(&i, &d)| (i, d.to_bits()))
            .collect();
        let got: Vec<(u32, u32)> = ids.iter().zip(&d).map(|(&i, &d)| (i, d.to_bits())).collect();
        // Equal distances may come in either order after the swap-removes moved slots.
        let sort = |mut v: Vec<(u32, u32)>| {
            v.sort_by_key(|&(i, d)| (d, i));
            v
        };
        assert_eq!(sort(got), sort(want));
    }
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
fn filters_in_the_browser_are_never_short_at_any_selectivity() {
    let (n, dim, k) = (4000, 16, 10);
    let data = clustered(81, n, dim, 20);
    let hnsw = hnsw_new(dim as f64, "l2", r#"{"m": 12, "efConstruction": 100}"#).expect("new");
    add(&hnsw, &data).expect("add");
    let flat = js_new(dim as f64, "l2").expect("flat");
    add(&flat, &data).expect("add");
    let queries = clustered(82, 10, dim, 20);
    for permille in [1u32, 10, 100, 500, 1000] {
        let allowed: Vec<u32> = (0..n as u32).filter(|i| (i * 7919) % 1000 < permille).collect();
        let set = Uint32Array::from(&allowed[..]);
        let mut total = 0.0;
        for q in queries.chunks_exact(dim) {
            let opts = js_sys::Object::new();
            Reflect::set(&opts, &"filter".into(), &set).expect("set");
            let (ids, _) = search_with(&hnsw, q, k as f64, opts.clone().into()).expect("filtered");
            assert_eq!(ids.len(), k.min(allowed.len()), "{permille}‰: short result");
            assert!(ids.iter().all(|i| allowed.binary_search(i).is_ok()), "{permille}‰: disallowed id");
            let truth = search_with(&flat, q, k as f64, opts.into()).expect("flat filtered").0;
            assert!(truth.iter().all(|i| allowed.binary_search(i).is_ok()));
            total += recall(&ids, &truth);
        }
        assert!(total / 10.0 >= 0.9, "{permille}‰: filtered recall {}", total / 10.0);
    }
    // A plain array and a predicate function select the same thing as a Uint32Array.
    let q = &queries[..dim];
    let even: Vec<u32> = (0..n as u32).filter(|i| i % 2 == 0).collect();
    let arr: Array = even.iter().map(|&i| JsValue::from(i)).collect();
    let opts = js_sys::Object::new();
    Reflect::set(&opts, &"filter".into(), &arr).expect("set");
    let a = search_with(&hnsw, q, 5.0, opts.into()).expect("array filter").0;
    let f = Function::new_with_args("id", "return id % 2 === 0");
    let opts = js_sys::Object::new();
    Reflect::set(&opts, &"filter".into(), &f).expect("set");
    let b = search_with(&hnsw, q, 5.0, opts.into()).expect("function filter").0;
    assert_eq!(a, b);
    assert!(a.iter().all(|i| i % 2 == 0));
    // A predicate that throws: its error reaches the caller unchanged.
    let boom = Function::new_with_args("id", "throw new RangeError('boom ' + id)");
    let opts = js_sys::Object::new();
    Reflect::set(&opts, &"filter".into(), &boom).expect("set");
    let e = search_with(&hnsw, q, 5.0, opts.into()).expect_err("throws");
    assert!(e.is_instance_of::<js_sys::RangeError>());
    // No match at all: an empty result, not an error.
    let r = search_with(&hnsw, q, 5.0, json(r#"{"filter": []}"#)).expect("empty filter");
    assert!(r.0.is_empty());
    assert_throws(search_with(&hnsw, q, 5.0, json(r#"{"filter": "even"}"#)), "filter must be a Uint32Array");
    assert_throws(
        search_with(&hnsw, q, 5.0, json(r#"{"filter": [1, -2]}"#)),
        "filter[1] must be a whole number",
    );
}

/// A search's `stats` field: (plan, matches, expanded, distances).
fn read_stats(result: &JsValue) -> (String, Option<f64>, u32, u32) {
    let s = get(result, "stats");
    let n = |f: &str| get(&s, f).as_f64().expect("a number") as u32;
    (get(&s, "plan").as_string().expect("plan"), get(&s, "matches").as_f64(), n("expanded"), n("distances"))
}

#[wasm_bindgen_test]
fn search_statistics_show_the_plan_and_each_forced_strategy_keeps_its_promise() {
    let (n, dim, k) = (3000, 16, 10);
    let data = clustered(91, n, dim, 15);
    let hnsw = hnsw_new(dim as f64, "l2", r#"{"m": 12, "efConstruction": 100}"#).expect("new");
    add(&hnsw, &data).expect("add");
    let flat = js_new(dim as f64, "l2").expect("flat");
    add(&flat, &data).expect("add");
    let q = &clustered(92, 1, dim, 15)[..];
    let with = |index: &JsValue, filter: Option<&[u32]>, extra: &str| {
        let opts = json(&format!(r#"{{"stats": true{extra}}}"#));
        if let Some(ids) = filter {
            Reflect::set(&opts, &"filter".into(), &Uint32Array::from(ids)).expect("set");
        }
        call(index, "search", &[f32s(q), JsValue::from(k as f64), opts]).expect("search")
    };
    // No filter: a walk, with no match count, whose work shows.
    let r = with(&hnsw, None, "");
    let (plan, matches, expanded, distances) = read_stats(&r);
    assert_eq!((plan.as_str(), matches), ("walk", None));
    assert!(expanded > 0 && distances >= expanded);
    // Without `stats` there is no `stats` field.
    let plain = call(&hnsw, "search", &[f32s(q), JsValue::from(k as f64)]).expect("search");
    assert!(get(&plain, "stats").is_undefined());
    // The flat index scans; its distances are the live rows (no filter) or the matches.
    let r = with(&flat, None, "");
    assert_eq!(read_stats(&r).0, "scan");
    assert_eq!(read_stats(&r).3, n as u32);
    // A tight filter: the planner scans exactly the matches, and says how many there are.
    let few: Vec<u32> = (0..n as u32).filter(|i| i % 300 == 7).collect();
    let r = with(&hnsw, Some(&few), "");
    let (plan, matches, _, distances) = read_stats(&r);
    assert_eq!((plan.as_str(), matches, distances), ("scan", Some(few.len() as f64), few.len() as u32));
    let truth = read_result(&with(&flat, Some(&few), ""));
    assert_eq!(read_result(&r).0, truth.0);
    // A wide filter, each strategy forced: the plan named is the plan taken, every answer is
    // allowed and never short, and the forced scan equals the flat index's exact answer.
    let half: Vec<u32> = (0..n as u32).filter(|i| i % 2 == 1).collect();
    let exact = read_result(&with(&flat, Some(&half), ""));
    for (strategy, plans) in [
        ("auto", &["filtered-walk", "two-hop-walk", "scan"][..]),
        ("walk", &["filtered-walk", "walk-then-scan"][..]),
        ("twoHop", &["two-hop-walk", "walk-then-scan"][..]),
        ("scan", &["scan"][..]),
    ] {
        let r = with(&hnsw, Some(&half), &format!(r#", "filterStrategy": "{strategy}""#));
        let (plan, matches, _, _) = read_stats(&r);
        assert!(plans.contains(&plan.as_str()), "{strategy}: plan {plan}");
        assert_eq!(matches, Some(half.len() as f64));
        let (ids, dists) = read_result(&r);
        assert_eq!(ids.len(), k);
        assert!(ids.iter().all(|i| i % 2 == 1), "{strategy}: a disallowed id");
        if strategy == "scan" {
            assert_eq!((ids, bits(&dists)), (exact.0.clone(), bits(&exact.1)));
        }
    }
    // searchBatch reports per query too.
    let batch = call(&hnsw, "searchBatch", &[f32s(q), JsValue::from(k as f64), json(r#"{"stats": true}"#)])
        .expect("batch");
    let first = Array::from(&batch).get(0);
    assert_eq!(read_stats(&first).0, "walk");
    assert_throws(
        call(&hnsw, "search", &[f32s(q), JsValue::from(3.0), json(r#"{"filterStrategy": "bfs"}"#)]),
        "filterStrategy must be \"auto\", \"scan\", \"walk\" or \"twoHop\", got \"bfs\"",
    );
    assert_throws(
        call(&hnsw, "search", &[f32s(q), JsValue::from(3.0), json(r#"{"stats": "yes"}"#)]),
        "search options: stats: invalid type",
    );
}

// ---------------------------------------------------------------------------------------------
// Options and JavaScript types
// ---------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
fn options_are_checked_field_by_field() {
    assert_throws(hnsw_new(4.0, "l2", r#"{"M": 16}"#), "unknown field `M`");
    assert_throws(
        hnsw_new(4.0, "l2", r#"{"m": "16"}"#),
        "HNSW options: m: invalid type: string \"16\", expected usize",
    );
    assert_throws(hnsw_new(4.0, "l2", r#"{"m": 2.5}"#), "HNSW options");
    assert_throws(hnsw_new(4.0, "l2", r#"{"m": -1}"#), "HNSW options");
    assert_throws(hnsw_new(4.0, "l2", r#"{"m": 1}"#), "invalid parameter m: must be between 2 and 256");
    assert_throws(hnsw_new(4.0, "l2", r#"{"efConstruction": 0}"#), "ef_construction");
    assert_throws(hnsw_new(4.0, "l2", r#"{"efSearch": 0}"#), "efSearch must be at least 1");
    assert_throws(
        hnsw_new(4.0, "l2", r#"{"storage": "f8"}"#),
        "HNSW options: storage must be \"f32\" or \"f16\", got \"f8\"",
    );
    assert_throws(hnsw_new(4.0, "l2", r#"{"storage": 16}"#), "HNSW options: storage: invalid type");
    assert_throws(hnsw_new(4.0, "l2", "5"), "HNSW options must be an object, got a number");
    assert_throws(hnsw_new(4.0, "l2", "[1]"), "HNSW options must be an object, got an Array");
    hnsw_new(4.0, "l2", "null").expect("null options are the defaults");
    hnsw_new(4.0, "l2", r#"{"seed": 9007199254740991}"#).expect("a seed up to 2^53 - 1");

    let hnsw = hnsw_new(2.0, "l2", "{}").expect("new");
    add(&hnsw, &[0.0, 0.0, 1.0, 1.0]).expect("add");
    let q = [0.5, 0.5];
    assert_throws(
        search_with(&hnsw, &q, 1.0, json(r#"{"eff": 3}"#)),
        "unknown field `eff`, expected `ef` or `rerank` or `filter` or `filterStrategy` or `stats`",
    );
    assert_throws(search_with(&hnsw, &q, 1.0, json(r#"{"ef": "10"}"#)), "search options: ef: invalid type");
    assert_throws(search_with(&hnsw, &q, 1.0, json(r#"{"ef": 0}"#)), "ef must be at least 1");
    assert_throws(Reflect::set(&hnsw, &"efSearch".into(), &0.into()), "efSearch must be at least 1");
    let flat = js_new(2.0, "l2").expect("flat");
    add(&flat, &[0.0, 0.0]).expect("add");
    assert_throws(
        search_with(&flat, &q, 1.0, json(r#"{"ef": 10}"#)),
        "unknown field `ef`, expected `filter` or `stats`",
    );
}

#[wasm_bindgen_test]
fn wrong_javascript_types_throw_errors_that_name_the_argument() {
    let hnsw = hnsw_new(2.0, "l2", "{}").expect("new");
    let flat = js_new(2.0, "l2").expect("new");
    for index in [&hnsw, &flat] {
        add(index, &[0.0, 0.0, 1.0, 1.0]).expect("add");
        let q = f32s(&[0.5, 0.5]);
        assert_throws(
            call(index, "search", &["abc".into(), 1.into()]),
            "query must be a Float32Array, got a string",
        );
        assert_throws(
            call(index, "search", &[JsValue::UNDEFINED, 1.into()]),
            "query must be a Float32Array, got undefined",
        );
        assert_throws(call(index, "search", &[q.clone(), "3".into()]), "k must be a number, got a string");
        assert_throws(call(index, "search", std::slice::from_ref(&q)), "k must be a number, got undefined");
        assert_throws(
            call(index, "search", &[q.clone(), 1.into(), 7.into()]),
            "search options must be an object",
        );
        assert_throws(call(index, "add", &[json("{}")]), "vectors must be a Float32Array, got an object");
        assert_throws(
            call(index, "add", &[Uint8Array::new_with_length(8).into()]),
            "vectors must be a Float32Array, got a Uint8Array",
        );
        assert_throws(
            call(index, "add", &[json(r#"[1, "2"]"#)]),
            "vectors[1] must be a number, got a string",
        );
        assert_throws(call(index, "remove", &["0".into()]), "id must be a number, got a string");
        assert_throws(call(index, "remove", &[(-1).into()]), "id must be a whole number");
        assert_throws(call(index, "get", &[JsValue::NULL]), "id must be a number, got null");
        assert_throws(
            call(index, "searchBatch", &[f32s(&[0.5, 0.5, 0.5]), 1.into()]),
            "3 floats do not split into vectors of dimension 2",
        );
        // A plain array of numbers is accepted where a Float32Array is expected.
        let (ids, _) =
            read_result(&call(index, "search", &[json("[0.9, 0.9]"), 1.into()]).expect("array query"));
        assert_eq!(ids, [1]);
    }
    assert_throws(
        Reflect::construct(&js_class(), &Array::of2(&"4".into(), &"l2".into())),
        "dim must be a number, got a string",
    );
    assert_throws(
        Reflect::construct(&js_class(), &Array::of2(&4.into(), &5.into())),
        "metric must be a string",
    );
    assert_throws(call(&js_class(), "fromBytes", &["NRDB".into()]), "bytes must be a Uint8Array");
    assert_throws(call(&hnsw_class(), "fromBytes", &[JsValue::UNDEFINED]), "bytes must be a Uint8Array");
}

// ---------------------------------------------------------------------------------------------
// The JavaScript border, fuzzed: seeded values of every type into every method, and mutated
// files (checksums recomputed) into every fromBytes
// ---------------------------------------------------------------------------------------------

/// A seeded JS value of any type, valid or not, for an index of dimension `dim`.
fn arbitrary_js(rng: &mut Rng, dim: usize) -> JsValue {
    let floats = |rng: &mut Rng, n: usize| -> JsValue {
        let mut v = random_vec(rng, n, 1.0);
        if rng.below(4) == 0 && n > 0 {
            let at = rng.below(n as u64) as usize;
            v[at] = [f32::NAN, f32::INFINITY, 3.0e38, -1.0e20][rng.below(4) as usize];
        }
        f32s(&v)
    };
    match rng.below(20) {
        0 => JsValue::UNDEFINED,
        1 => JsValue::NULL,
        2 => JsValue::TRUE,
        3 => f64::NAN.into(),
        4 => f64::INFINITY.into(),
        5 => (-1.0).into(),
        6 => 1e300.into(),
        7 => 2.5.into(),
        8 => 4294967296.0.into(),
        9..=10 => (rng.below(12) as f64).into(),
        11 => ["l2", "cosine", "x", ""][rng.below(4) as usize].into(),
        12..=13 => {
            let n = dim * (1 + rng.below(3) as usize);
            floats(rng, n)
        }
        14 => {
            let n = rng.below(2 * dim as u64 + 2) as usize;
            floats(rng, n)
        }
        15 => u32s(&[0, 1, 2, u32::MAX][..rng.below(5) as usize]),
        16 => Array::of3(&1.into(), &"two".into(), &JsValue::NULL).into(),
        17 => json(
            [
                r#"{"ef": 8, "filter": [0, 1, 2]}"#,
                r#"{"ef": -3}"#,
                r#"{"filter": "all", "nprobe": 1e9}"#,
                r#"{"m": "x", "efConstruction": null}"#,
                r#"{"rerank": 2.5, "unknown": 1}"#,
                r#"{"storage": "f8"}"#,
            ][rng.below(6) as usize],
        ),
        18 => Function::new_no_args("return true").into(),
        _ => Uint8Array::from(
            &random_vec(rng, 8, 1.0).iter().map(|x| x.to_bits() as u8).collect::<Vec<_>>()[..],
        )
        .into(),
    }
}

/// Every section checksum and the header checksum of `bytes` recomputed (what a forger does).
fn reseal_all(bytes: &mut [u8]) {
    let word = |b: &[u8], at: usize, n: usize| -> u64 {
        b.get(at..at + n).map_or(0, |s| s.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    };
    if bytes.len() < 64 {
        return;
    }
    let sections = (word(bytes, 24, 4) as usize).min(64);
    let table_end = (64 + 32 * sections).min(bytes.len());
    for i in 0..sections {
        let at = 64 + 32 * i;
        let (offset, len) = (word(bytes, at + 8, 8) as usize, word(bytes, at + 16, 8) as usize);
        if let Some(body) = offset.checked_add(len).and_then(|end| bytes.get(offset..end)) {
            let crc = crc32fast::hash(body);
            if let Some(slot) = bytes.get_mut(at + 24..at + 28) {
                slot.copy_from_slice(&crc.to_le_bytes());
            }
        }
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..60]);
    h.update(&bytes[64..table_end]);
    let crc = h.finalize();
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
}

/// A thrown value must be an `Error` made by the API, never a trap (a Rust panic in wasm
/// surfaces as `WebAssembly.RuntimeError` and leaves the module unusable).
#[track_caller]
fn assert_clean_throw(thrown: JsValue, what: &str) {
    assert!(
        !thrown.is_instance_of::<js_sys::WebAssembly::RuntimeError>(),
        "{what}: the wasm module trapped: {thrown:?}"
    );
    message(thrown);
}

#[wasm_bindgen_test]
fn seeded_values_of_every_type_and_forged_files_only_ever_throw_errors() {
    let dim = 6;
    let mut rng = Rng::new(20_261_203);
    let base = random_vec(&mut rng, 200 * dim, 1.0);
    let flat = js_new(dim as f64, "l2").expect("flat");
    add(&flat, &base).expect("add");
    let hnsw = hnsw_new(dim as f64, "cosine", r#"{"m": 6, "efConstruction": 20}"#).expect("hnsw");
    add(&hnsw, &base).expect("add");
    let ivf_opts = json(r#"{"nlist": 4, "pqM": 3, "nbits": 4}"#);
    let ivf = Reflect::construct(&ivfpq_class(), &Array::of3(&(dim as f64).into(), &"l2".into(), &ivf_opts))
        .expect("ivfpq");
    call(&ivf, "train", &[f32s(&base)]).expect("train");
    call(&ivf, "add", &[f32s(&base)]).expect("add");
    let vamana_opts = json(r#"{"r": 8, "l": 20}"#);
    let vamana =
        Reflect::construct(&vamana_class(), &Array::of3(&(dim as f64).into(), &"l2".into(), &vamana_opts))
            .expect("vamana");
    add(&vamana, &base).expect("add");

    let methods: [(&str, usize); 11] = [
        ("search", 3),
        ("searchBatch", 3),
        ("add", 2),
        ("remove", 1),
        ("get", 1),
        ("has", 1),
        ("reserve", 1),
        ("quantizeSq8", 1),
        ("train", 1),
        ("toBytes", 0),
        ("consolidate", 0),
    ];
    let (mut calls, mut thrown) = (0, 0);
    for round in 0..2000 {
        let target = [&flat, &hnsw, &ivf, &vamana][round % 4];
        let (method, arity) = methods[rng.below(methods.len() as u64) as usize];
        let present = Reflect::has(target, &method.into()).unwrap_or(false);
        if !present || (method == "quantizeSq8" && rng.below(8) != 0) {
            continue;
        }
        let args: Vec<JsValue> = (0..arity).map(|_| arbitrary_js(&mut rng, dim)).collect();
        calls += 1;
        if let Err(e) = call(target, method, &args) {
            thrown += 1;
            assert_clean_throw(e, &format!("round {round}: {method}({args:?})"));
        }
    }
    // Constructors and setters with arbitrary arguments.
    for round in 0..400 {
        let class = [js_class(), hnsw_class(), ivfpq_class(), vamana_class()][round % 4].clone();
        let args: Array = (0..3).map(|_| arbitrary_js(&mut rng, dim)).collect();
        if let Err(e) = Reflect::construct(&class, &args) {
            assert_clean_throw(e, &format!("new #{round}({args:?})"));
        }
        let value = arbitrary_js(&mut rng, dim);
        for target in [&hnsw, &vamana] {
            if let Err(e) = Reflect::set(target, &"efSearch".into(), &value) {
                assert_clean_throw(e, "efSearch =");
            }
        }
    }
    // Forged files: each kind's own bytes with a few bytes or words changed, checksums fixed.
    let files = [
        (js_class(), to_bytes(&flat)),
        (hnsw_class(), to_bytes(&hnsw)),
        (ivfpq_class(), to_bytes(&ivf)),
        (vamana_class(), to_bytes(&vamana)),
    ];
    let mut opened = 0;
    for round in 0..800 {
        let (class, original) = &files[round % 4];
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len() as u64) as usize;
            match rng.below(4) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = [0, 0xff, 0x7f, 0x80][rng.below(4) as usize],
                2 if at + 4 <= bytes.len() => {
                    let v: u32 = [0, 1, u32::MAX, 0x7f7f_ffff, 0x7fc0_0000, 200][rng.below(6) as usize];
                    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => bytes.truncate(at.max(1)),
            }
        }
        reseal_all(&mut bytes);
        match call(class, "fromBytes", &[Uint8Array::from(&bytes[..]).into()]) {
            Err(e) => assert_clean_throw(e, &format!("fromBytes #{round}")),
            Ok(index) => {
                opened += 1;
                let query = f32s(&base[..dim]);
                if let Err(e) = call(&index, "search", &[query, 5.into()]) {
                    assert_clean_throw(e, &format!("search of forged file #{round}"));
                }
            }
        }
    }
    // The module is still sound: a fresh index answers what the naive loop says.
    let fresh = js_new(dim as f64, "l2").expect("new after the fuzzing");
    add(&fresh, &base).expect("add after the fuzzing");
    let (ids, _) = search(&fresh, &base[dim..2 * dim], 1.0).expect("search after the fuzzing");
    assert_eq!(ids, [1]);
    // An absurd reservation is an error, not a trap.
    assert_throws(call(&fresh, "reserve", &[u32::MAX.into()]), "full");
    assert!(calls > 1000 && thrown > 100 && opened > 0, "calls {calls}, thrown {thrown}, opened {opened}");
}

// ---------------------------------------------------------------------------------------------
// VamanaIndex
// ---------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
fn vamana_class_builds_searches_removes_consolidates_and_round_trips() {
    let dim = 8;
    let mut rng = Rng::new(77);
    let base = random_vec(&mut rng, 300 * dim, 1.0);
    let opts = json(r#"{"r": 12, "l": 40, "seed": 5, "efSearch": 64}"#);
    let index = Reflect::construct(&vamana_class(), &Array::of3(&(dim as f64).into(), &"l2".into(), &opts))
        .expect("new VamanaIndex");
    assert_eq!(add(&index, &base).expect("add"), (0..300).collect::<Vec<u32>>());
    assert_eq!((get(&index, "r").as_f64(), get(&index, "l").as_f64()), (Some(12.0), Some(40.0)));
    assert!(get(&index, "medoid").as_f64().is_some());
    // Recall against the naive loop.
    let queries = random_vec(&mut rng, 20 * dim, 1.0);
    let mut hits = 0;
    for q in queries.chunks_exact(dim) {
        let (truth, _) = naive(Metric::L2, &base, dim, q, 10);
        let (ids, _) = search(&index, q, 10.0).expect("search");
        hits += ids.iter().filter(|i| truth.contains(i)).count();
    }
    assert!(hits >= 190, "recall {hits} / 200");
    // Removed ids leave results at once, stay in the graph until consolidation.
    for id in 0..30u32 {
        call(&index, "remove", &[id.into()]).expect("remove");
    }
    assert_eq!(get(&index, "pendingDeletes").as_f64(), Some(30.0));
    assert!(!call(&index, "has", &[0.into()]).unwrap().as_bool().unwrap());
    assert_throws(call(&index, "remove", &[0.into()]), "unknown id 0");
    for q in base.chunks_exact(dim).take(30) {
        let (ids, _) = search(&index, q, 10.0).expect("search");
        assert!(ids.iter().all(|&i| i >= 30), "a removed id came back: {ids:?}");
    }
    assert_eq!(call(&index, "consolidate", &[]).unwrap().as_f64(), Some(30.0));
    assert_eq!(get(&index, "pendingDeletes").as_f64(), Some(0.0));
    // New vectors take the next ids (in freed slots).
    assert_eq!(add(&index, &base[..10 * dim]).expect("add"), (300..310).collect::<Vec<u32>>());
    let (ids, d) = search(&index, &base[..dim], 1.0).expect("search");
    assert_eq!((ids, d), (vec![300], vec![0.0]));
    // Bytes round-trip through fromBytes and answer the same; HnswIndex refuses them.
    let bytes = to_bytes(&index);
    let reopened = call(&vamana_class(), "fromBytes", &[Uint8Array::from(&bytes[..]).into()]).expect("open");
    for q in queries.chunks_exact(dim) {
        assert_eq!(search(&reopened, q, 10.0).unwrap(), search(&index, q, 10.0).unwrap());
    }
    assert_eq!(to_bytes(&reopened), bytes);
    assert_throws(
        call(&hnsw_class(), "fromBytes", &[Uint8Array::from(&bytes[..]).into()]),
        "holds a vamana index",
    );
    // Bad options are named.
    let bad = |o: &str| {
        Reflect::construct(&vamana_class(), &Array::of3(&(dim as f64).into(), &"l2".into(), &json(o)))
    };
    assert_throws(bad(r#"{"alpha": 0.5}"#), "alpha");
    assert_throws(bad(r#"{"r": 1}"#), "r");
    assert_throws(bad(r#"{"m": 16}"#), "m");
}
