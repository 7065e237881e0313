//! Every SIMD path against the scalar specification: bit-identical results, for every
//! dimension 1..=1100 (all tail lengths), at ordinary, huge and tiny magnitudes, plus random
//! cases from proptest. Paths this CPU lacks are reported as skipped, never pretended.

use neardb_core::rng::Rng;
use neardb_core::simd::scalar;
use neardb_core::{Isa, Kernels};
use proptest::prelude::*;

/// The SIMD paths this machine can run; prints the ones it cannot.
fn simd_paths() -> Vec<Kernels> {
    let mut paths = Vec::new();
    for isa in [Isa::Avx2, Isa::Avx512, Isa::Simd128] {
        match Kernels::for_isa(isa) {
            Some(k) => paths.push(k),
            // Written past the test harness's capture, so a passing run still says what it skipped.
            None => {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: CPU lacks {} ({} build)",
                    feature_name(isa),
                    std::env::consts::ARCH
                );
            }
        }
    }
    paths
}

fn feature_name(isa: Isa) -> &'static str {
    match isa {
        Isa::Avx2 => "avx2",
        Isa::Avx512 => "avx512f",
        Isa::Simd128 => "simd128 (runs in the browser test)",
        Isa::Scalar => "scalar",
    }
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

fn assert_identical(path: &Kernels, a: &[f32], b: &[f32], what: &str) {
    for (name, simd, reference) in KERNELS {
        let got = simd(path, a, b);
        let want = reference(a, b);
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "{} {name} {what} n={}: {got:e} != scalar {want:e}",
            path.isa().name(),
            a.len()
        );
    }
}

#[test]
fn every_simd_path_equals_scalar_bit_for_bit_for_all_dims() {
    let paths = simd_paths();
    let mut rng = Rng::new(0x5EED);
    for n in 1..=1100 {
        for (scale, label) in [(1.0, "unit"), (1e17, "huge"), (1e-22, "tiny"), (3.0e5, "large")] {
            let a = random_vec(&mut rng, n, scale);
            let b = random_vec(&mut rng, n, scale);
            for p in &paths {
                assert_identical(p, &a, &b, label);
            }
        }
    }
}

#[test]
fn mixed_magnitudes_overflow_and_cancellation_match_scalar() {
    let paths = simd_paths();
    let mut rng = Rng::new(3);
    for n in [1, 7, 31, 32, 33, 63, 64, 65, 127, 128, 384, 1024, 1100] {
        // Every component at a different exponent, including overflow to infinity in the sum.
        let a: Vec<f32> = (0..n).map(|i| (rng.next_f32() - 0.5) * 10f32.powi((i % 76) - 38)).collect();
        let b: Vec<f32> = (0..n).map(|i| (rng.next_f32() - 0.5) * 10f32.powi(((i * 7) % 76) - 38)).collect();
        let big: Vec<f32> = (0..n).map(|_| 3.0e38).collect();
        let neg: Vec<f32> = big.iter().map(|x| -x).collect();
        for p in &paths {
            assert_identical(p, &a, &b, "mixed");
            assert_identical(p, &big, &neg, "overflow");
            assert_identical(p, &a, &a, "self");
        }
    }
}

#[test]
fn scalar_reference_is_accurate() {
    // The specification itself against f64: within the classic bound n·ε·Σ|terms|.
    let mut rng = Rng::new(11);
    for n in [1, 5, 32, 100, 1024, 1100] {
        let a = random_vec(&mut rng, n, 1.0);
        let b = random_vec(&mut rng, n, 1.0);
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let mag: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum();
        let err = (scalar::dot(&a, &b) as f64 - exact).abs();
        assert!(err <= n as f64 * f32::EPSILON as f64 * mag, "n={n} err={err:e}");
        let l2: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
        assert!((scalar::l2sq(&a, &b) as f64 - l2).abs() <= 2.0 * n as f64 * f32::EPSILON as f64 * l2);
        let l1: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum();
        assert!((scalar::l1(&a, &b) as f64 - l1).abs() <= 2.0 * n as f64 * f32::EPSILON as f64 * l1);
    }
}

#[test]
fn integer_data_is_exact_on_every_path() {
    // Small integers make every partial sum exact, so a dropped or doubled element shows.
    let mut rng = Rng::new(5);
    let mut paths = simd_paths();
    paths.push(Kernels::scalar());
    for n in 1..=300 {
        let a: Vec<f32> = (0..n).map(|_| rng.below(17) as f32 - 8.0).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.below(17) as f32 - 8.0).collect();
        let dot: i64 = a.iter().zip(&b).map(|(x, y)| (*x as i64) * (*y as i64)).sum();
        let l2: i64 = a.iter().zip(&b).map(|(x, y)| (*x as i64 - *y as i64).pow(2)).sum();
        let l1: i64 = a.iter().zip(&b).map(|(x, y)| (*x as i64 - *y as i64).abs()).sum();
        for p in &paths {
            assert_eq!(p.dot(&a, &b), dot as f32, "{:?} n={n}", p.isa());
            assert_eq!(p.l2sq(&a, &b), l2 as f32, "{:?} n={n}", p.isa());
            assert_eq!(p.l1(&a, &b), l1 as f32, "{:?} n={n}", p.isa());
        }
    }
}

#[test]
fn best_kernels_are_the_widest_available() {
    let best = Kernels::best();
    if Kernels::for_isa(Isa::Avx512).is_some() {
        assert_eq!(best.isa(), Isa::Avx512);
    } else if Kernels::for_isa(Isa::Avx2).is_some() {
        assert_eq!(best.isa(), Isa::Avx2);
    } else {
        assert_eq!(best.isa(), Isa::Scalar);
    }
}

#[test]
fn normalize_gives_unit_vectors_and_rejects_zero() {
    let k = Kernels::best();
    let mut v = vec![3.0, 4.0];
    assert!(k.normalize(&mut v));
    assert_eq!(v, [0.6, 0.8]);
    let mut z = vec![0.0; 5];
    assert!(!k.normalize(&mut z));
    assert_eq!(z, [0.0; 5]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_vectors_match_scalar(
        pairs in (1usize..=1100).prop_flat_map(|n| (
            proptest::collection::vec(-1e6f32..1e6, n),
            proptest::collection::vec(-1e6f32..1e6, n),
        )),
        exp in -30i32..30,
    ) {
        let scale = 10f32.powi(exp);
        let a: Vec<f32> = pairs.0.iter().map(|x| x * scale).collect();
        let b: Vec<f32> = pairs.1.iter().map(|x| x * scale).collect();
        for p in simd_paths() {
            for (name, simd, reference) in KERNELS {
                let (got, want) = (simd(&p, &a, &b), reference(&a, &b));
                prop_assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{:?} {} n={}: {} vs {}", p.isa(), name, a.len(), got, want);
            }
        }
    }
}

type SqKernelPair =
    (&'static str, fn(&Kernels, &[f32], &[f32], &[u8]) -> f32, fn(&[f32], &[f32], &[u8]) -> f32);
const SQ_KERNELS: [SqKernelPair; 2] = [
    ("sq_l2", |k, p, s, c| k.sq_l2(p, s, c), scalar::sq_l2),
    ("sq_l1", |k, p, s, c| k.sq_l1(p, s, c), scalar::sq_l1),
];

fn assert_sq_identical(path: &Kernels, p: &[f32], s: &[f32], c: &[u8], what: &str) {
    for (name, simd, reference) in SQ_KERNELS {
        let got = simd(path, p, s, c);
        let want = reference(p, s, c);
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "{} {name} {what} n={}: {got:e} != scalar {want:e}",
            path.isa().name(),
            p.len()
        );
    }
}

#[test]
fn every_sq_path_equals_scalar_bit_for_bit_for_all_dims() {
    let paths = simd_paths();
    let mut rng = Rng::new(0x5EED_0008);
    for n in 1..=1100 {
        for (scale, label) in [(1.0, "unit"), (1e17, "huge"), (1e-22, "tiny"), (3.0e5, "large")] {
            let p = random_vec(&mut rng, n, scale);
            let s: Vec<f32> = random_vec(&mut rng, n, scale / 255.0).iter().map(|x| x.abs()).collect();
            // Every byte value, including 0 and 255, in a different place for each n.
            let c: Vec<u8> = (0..n).map(|i| ((i * 7 + n) % 256) as u8).collect();
            for k in &paths {
                assert_sq_identical(k, &p, &s, &c, label);
            }
        }
    }
}

#[test]
fn every_integer_sq_dot_path_equals_the_true_sum_for_all_dims() {
    // Integer sums are exact, so every path must return Σ w_i c_i computed in i64 and wrapped,
    // including weights at the i16 extremes and sums that overflow i32.
    let paths = simd_paths();
    let mut rng = Rng::new(0x5EED_0016);
    for n in 1..=1100 {
        for range in [300u64, 65_536] {
            let w: Vec<i16> = (0..n).map(|_| (rng.below(range) as i64 - range as i64 / 2) as i16).collect();
            let mut w_edges = w.clone();
            w_edges[n / 2] = i16::MIN;
            w_edges[n - 1] = i16::MAX;
            let c: Vec<u8> = (0..n).map(|i| ((i * 7 + n) % 256) as u8).collect();
            for w in [&w, &w_edges] {
                let exact: i64 = w.iter().zip(&c).map(|(&w, &c)| i64::from(w) * i64::from(c)).sum();
                let want = exact as i32; // two's-complement wrap, as the kernels sum
                assert_eq!(scalar::sq_dot_i16(w, &c), want, "scalar n={n}");
                for k in &paths {
                    assert_eq!(k.sq_dot_i16(w, &c), want, "{} n={n}", k.isa().name());
                }
            }
        }
    }
}

#[test]
fn sq_scalar_reference_matches_decoded_f32_arithmetic() {
    // Integer-valued inputs make every sum exact, so the SQ kernels must equal the f32 kernels
    // on decoded vectors exactly.
    let n = 77;
    let w: Vec<f32> = (0..n).map(|i| (i % 5) as f32 - 2.0).collect();
    let s: Vec<f32> = (0..n).map(|i| (i % 3 + 1) as f32).collect();
    let c: Vec<u8> = (0..n).map(|i| (i * 31 % 256) as u8).collect();
    let decoded_s: Vec<f32> = c.iter().zip(&s).map(|(&b, &st)| st * b as f32).collect();
    assert_eq!(scalar::sq_l2(&w, &s, &c), scalar::l2sq(&w, &decoded_s));
    assert_eq!(scalar::sq_l1(&w, &s, &c), scalar::l1(&w, &decoded_s));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_codes_match_scalar(
        v in (1usize..=1100).prop_flat_map(|n| (
            proptest::collection::vec(-1e6f32..1e6, n),
            proptest::collection::vec(0f32..1e4, n),
            proptest::collection::vec(any::<u8>(), n),
        )),
        exp in -30i32..30,
    ) {
        let scale = 10f32.powi(exp);
        let p: Vec<f32> = v.0.iter().map(|x| x * scale).collect();
        let s: Vec<f32> = v.1.iter().map(|x| x * scale).collect();
        for k in simd_paths() {
            for (name, simd, reference) in SQ_KERNELS {
                let (got, want) = (simd(&k, &p, &s, &v.2), reference(&p, &s, &v.2));
                prop_assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{:?} {} n={}: {} vs {}", k.isa(), name, p.len(), got, want);
            }
        }
    }
}

/// The batched PQ distance of every path equals the one-row scalar sum bit for bit: every
/// code length's tail (1..=13 and the 32–132 used in practice), every batch length's last
/// short group of 8 or 16 rows, rows repeated and out of order, and the last row of the codes.
#[test]
fn every_pq_adc_path_equals_the_scalar_row_sum_bit_for_bit() {
    let mut rng = Rng::new(41);
    for m in (1..=13).chain([32, 48, 64, 96, 128, 130, 132]) {
        let tables: Vec<[f32; 256]> = (0..m)
            .map(|_| core::array::from_fn(|_| (rng.next_f32() * 2.0 - 1.0) * 1e3 * rng.next_f32()))
            .collect();
        let rows = 50;
        let codes: Vec<u8> = (0..rows * m).map(|_| (rng.next_u64() & 0xFF) as u8).collect();
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 33, 64] {
            let mut ids: Vec<u32> = (0..n).map(|_| (rng.next_u64() % rows as u64) as u32).collect();
            if let Some(last) = ids.last_mut() {
                *last = rows as u32 - 1;
            }
            let want: Vec<f32> =
                ids.iter().map(|&id| scalar::pq_adc_one(&tables, &codes[id as usize * m..][..m])).collect();
            for path in std::iter::once(Kernels::scalar()).chain(simd_paths()) {
                let mut got = vec![f32::NAN; n + 3];
                path.pq_adc_many(&tables, &codes, &ids, &mut got);
                let same = got[..n].iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                assert!(same, "{} m={m} n={n}: {:?} != {want:?}", path.isa().name(), &got[..n]);
                assert!(got[n..].iter().all(|g| g.is_nan()), "wrote past the batch");
            }
        }
    }
}

#[test]
#[should_panic(expected = "beyond the codes' rows")]
fn pq_adc_refuses_an_id_beyond_the_codes() {
    let tables = vec![[0.0f32; 256]; 4];
    let codes = vec![0u8; 4 * 10];
    let mut out = vec![0.0; 1];
    Kernels::best().pq_adc_many(&tables, &codes, &[10], &mut out);
}

#[test]
fn every_many_rows_path_equals_the_scalar_kernel_per_row_bit_for_bit() {
    let mut rng = Rng::new(43);
    let rows = 40;
    for dim in (1..=70).chain([96, 127, 128, 129, 384, 385, 1024]) {
        for (scale, label) in [(1.0, "unit"), (1e17, "huge"), (1e-22, "tiny")] {
            let q = random_vec(&mut rng, dim, scale);
            let data = random_vec(&mut rng, rows * dim, scale);
            // Batches of every length around the four-row step, repeats included.
            for n in [0, 1, 3, 4, 5, 8, 11, 29] {
                let ids: Vec<u32> = (0..n).map(|_| (rng.next_u64() % rows as u64) as u32).collect();
                for (l2, reference) in
                    [(false, scalar::dot as fn(&[f32], &[f32]) -> f32), (true, scalar::l2sq)]
                {
                    let want: Vec<f32> =
                        ids.iter().map(|&id| reference(&q, &data[id as usize * dim..][..dim])).collect();
                    for path in std::iter::once(Kernels::scalar()).chain(simd_paths()) {
                        let mut got = vec![f32::NAN; 3];
                        if l2 {
                            path.l2sq_many(&q, &data, &ids, &mut got);
                        } else {
                            path.dot_many(&q, &data, &ids, &mut got);
                        }
                        let same = got.len() == n
                            && got
                                .iter()
                                .zip(&want)
                                .all(|(g, w)| g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()));
                        assert!(
                            same,
                            "{} l2={l2} {label} dim={dim} n={n}: {got:?} != {want:?}",
                            path.isa().name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
#[should_panic]
fn many_rows_refuses_an_id_beyond_the_rows() {
    let q = vec![0.5f32; 16];
    let data = vec![0.0f32; 16 * 10];
    let mut out = Vec::new();
    Kernels::best().l2sq_many(&q, &data, &[0, 1, 2, 10], &mut out);
}
