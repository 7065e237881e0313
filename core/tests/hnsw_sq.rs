//! HNSW over scalar-quantized codes: distance error, recall with and without exact re-rank
//! against exact ground truth, codes-only files a quarter the vector size, identical answers
//! from the owned index and its file, and forged quantization sections rejected.

mod common;

use neardb_core::format::{AlignedBytes, FormatError, SectionKind};
use neardb_core::quant::sq::{ScalarQuantizer, SqQuery};
use neardb_core::rng::Rng;
use neardb_core::{FlatIndex, HnswIndex, HnswParams, HnswView, Kernels, Metric, SearchParams, VectorSearch};

/// An anisotropic Gaussian mixture with a shared offset (the "cone" of embeddings).
fn mixture(seed: u64, n: usize, dim: usize, clusters: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let centers: Vec<f32> = (0..clusters * dim).map(|_| rng.normal() as f32 * 2.0 + 1.0).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.below(clusters as u64) as usize;
        for j in 0..dim {
            let spread = 1.0 / (1.0 + j as f32).powf(0.6);
            out.push(centers[c * dim + j] + spread * rng.normal() as f32);
        }
    }
    out
}

const PARAMS: HnswParams = HnswParams { m: 12, ef_construction: 100, seed: 11 };
const DIM: usize = 48;

fn build(metric: Metric, rerank: Option<usize>) -> (HnswIndex, FlatIndex, Vec<f32>) {
    let data = mixture(1, 4000, DIM, 20);
    let mut h = HnswIndex::new(DIM, metric, PARAMS).unwrap();
    h.add(&data).unwrap();
    if let Some(r) = rerank {
        h.quantize_sq8(r).unwrap();
    }
    let mut f = FlatIndex::new(DIM, metric).unwrap();
    f.add(&data).unwrap();
    (h, f, mixture(2, 100, DIM, 20))
}

fn recall(index: &dyn VectorSearch, flat: &FlatIndex, queries: &[f32], p: &SearchParams) -> f64 {
    common::recall_at_10(index, flat, queries, DIM, p)
}

#[test]
fn mean_relative_distance_error_is_below_five_percent() {
    let data = mixture(3, 2000, DIM, 20);
    let queries = mixture(4, 50, DIM, 20);
    let k = Kernels::best();
    let sq = ScalarQuantizer::train(&data, DIM).unwrap();
    let codes = sq.encode(&data);
    for metric in [Metric::L2, Metric::L1] {
        let mut prepared = SqQuery::default();
        let (mut err, mut n) = (0.0f64, 0usize);
        for q in queries.chunks_exact(DIM) {
            prepared.prepare(&sq, metric, &k, q);
            // The 20 true nearest: the distances a search ranks by.
            let mut exact: Vec<(f32, usize)> =
                data.chunks_exact(DIM).enumerate().map(|(i, v)| (metric.distance(&k, q, v), i)).collect();
            exact.sort_by(|a, b| a.0.total_cmp(&b.0));
            for &(d, i) in &exact[..20] {
                let approx = prepared.distance(&k, &codes[i * DIM..(i + 1) * DIM]);
                err += ((approx - d).abs() / d) as f64;
                n += 1;
            }
        }
        let mean = err / n as f64;
        println!("{metric}: mean relative distance error {mean:.4}");
        assert!(mean < 0.05, "{metric}: {mean}");
    }
}

#[test]
fn quantized_search_recall_with_and_without_rerank() {
    for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct, Metric::L1] {
        let (exact_h, f, q) = build(metric, None);
        let (h, _, _) = build(metric, Some(4));
        let p = SearchParams::new().with_ef(128);
        let base = recall(&exact_h, &f, &q, &p);
        let reranked = recall(&h, &f, &q, &p);
        let codes_only = recall(&h, &f, &q, &p.with_rerank_factor(0));
        let (codes_h, _, _) = build(metric, Some(0));
        let plain = recall(&codes_h, &f, &q, &p);
        println!("{metric}: f32 {base:.3}, sq8 + rerank {reranked:.3}, sq8 only {plain:.3}");
        // Re-ranking the best 40 of 128 candidates recovers nearly all the f32 graph finds.
        assert!(reranked >= base - 0.02, "{metric}: {reranked} vs {base}");
        // Codes alone lose a few points (measured 0.00–0.04); a broken kernel or range would
        // lose far more.
        assert!(plain >= base - 0.06, "{metric}: {plain} vs {base}");
        // rerank_factor 0 in the query means "the index default" (4 here).
        assert_eq!(codes_only, reranked);
    }
}

#[test]
fn reranked_results_carry_exact_distances() {
    let (h, f, q) = build(Metric::Cosine, Some(8));
    let p = SearchParams::new().with_ef(200);
    for qq in q.chunks_exact(DIM).take(10) {
        let got = h.search(qq, 5, &p, None).unwrap();
        let truth = f.search(qq, 50, &p, None).unwrap();
        for n in got {
            if let Some(t) = truth.iter().find(|t| t.id == n.id) {
                assert_eq!(n.distance, t.distance);
            }
        }
    }
}

#[test]
fn codes_only_files_are_a_quarter_of_the_vector_bytes_and_answer_identically() {
    let (plain, _, q) = build(Metric::Cosine, None);
    let (h, _, _) = build(Metric::Cosine, Some(0));
    let full = plain.to_bytes().len();
    let bytes = AlignedBytes::copy_from(&h.to_bytes());
    let vector_bytes = 4000 * DIM * 4;
    // The codes replace the f32 vectors: the file shrinks by three quarters of their size.
    assert!(full - bytes.len() >= vector_bytes * 3 / 4 - 4096, "{full} → {}", bytes.len());
    let view = HnswView::open(bytes.as_slice()).unwrap();
    assert_eq!(view.sq_rerank(), Some(0));
    assert!(view.get(3).is_err());
    let decoded = view.get_decoded(3).unwrap();
    let original = plain.get(3).unwrap();
    let step = view.sq_quantizer().unwrap().steps().iter().cloned().fold(0.0f32, f32::max);
    assert!(decoded.iter().zip(original).all(|(a, b)| (a - b).abs() <= step / 2.0 + 1e-6));
    let p = SearchParams::new().with_ef(64);
    for qq in q.chunks_exact(DIM) {
        assert_eq!(h.search(qq, 10, &p, None).unwrap(), view.search(qq, 10, &p, None).unwrap());
    }
    // Back to an owned index (vectors decoded) and out again: the same bytes.
    assert_eq!(view.to_index().to_bytes(), bytes.as_slice());
}

#[test]
fn reranking_files_round_trip_and_inserts_after_quantizing_are_found() {
    let (mut h, _, q) = build(Metric::L2, Some(4));
    let bytes = AlignedBytes::copy_from(&h.to_bytes());
    let view = HnswView::open(bytes.as_slice()).unwrap();
    let p = SearchParams::new().with_ef(64);
    for qq in q.chunks_exact(DIM).take(20) {
        assert_eq!(h.search(qq, 10, &p, None).unwrap(), view.search(qq, 10, &p, None).unwrap());
    }
    assert_eq!(view.to_index().to_bytes(), bytes.as_slice());
    // New vectors (one far outside the trained range, so its code clamps) are encoded and found.
    let mut extra = mixture(9, 3, DIM, 20);
    extra[..DIM].iter_mut().for_each(|x| *x += 100.0);
    let ids = h.add(&extra).unwrap();
    for (row, id) in extra.chunks_exact(DIM).zip(ids) {
        assert_eq!(h.search(row, 1, &p, None).unwrap()[0].id, id);
    }
}

/// Rewrites sections of a valid file (checksums recomputed); `false` drops the section.
fn forge(bytes: &[u8], edit: impl Fn(SectionKind, &mut Vec<u8>) -> bool) -> AlignedBytes {
    common::rewrite(bytes, &[], edit)
}

#[test]
fn forged_quantization_sections_are_rejected() {
    let (h, _, _) = build(Metric::L2, Some(0));
    let codes_only = h.to_bytes();
    let (h4, _, _) = build(Metric::L2, Some(4));
    let reranking = h4.to_bytes();
    let (plain, _, _) = build(Metric::L2, None);
    let plain = plain.to_bytes();
    // A NaN minimum, a negative step.
    let e = common::hnsw_open_error(&forge(&codes_only, |k, b| {
        if k == SectionKind::SQ_RANGES {
            b[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
        }
        true
    }));
    assert!(matches!(e, FormatError::InvalidSection { kind: SectionKind::SQ_RANGES, .. }), "{e}");
    let e = common::hnsw_open_error(&forge(&codes_only, |k, b| {
        if k == SectionKind::SQ_RANGES {
            b[4 * DIM..4 * DIM + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
        }
        true
    }));
    assert!(matches!(e, FormatError::InvalidSection { kind: SectionKind::SQ_RANGES, .. }), "{e}");
    // Codes of the wrong length; codes without ranges.
    let e = common::hnsw_open_error(&forge(&codes_only, |k, b| {
        if k == SectionKind::SQ_CODES {
            b.pop();
        }
        true
    }));
    assert!(matches!(e, FormatError::SectionSize { kind: SectionKind::SQ_CODES, .. }), "{e}");
    let e = common::hnsw_open_error(&forge(&codes_only, |k, _| k != SectionKind::SQ_RANGES));
    assert!(matches!(e, FormatError::MissingSection { kind: SectionKind::SQ_RANGES }), "{e}");
    // A re-ranking file without its vectors; a plain file claiming a re-rank factor.
    let e = common::hnsw_open_error(&forge(&reranking, |k, _| k != SectionKind::VECTORS));
    assert!(matches!(e, FormatError::MissingSection { kind: SectionKind::VECTORS }), "{e}");
    let e = common::hnsw_open_error(&forge(&plain, |k, b| {
        if k == SectionKind::PARAMS {
            b[20] = 4;
        }
        true
    }));
    assert!(matches!(e, FormatError::InvalidSection { kind: SectionKind::PARAMS, .. }), "{e}");
    // Random byte flips in the quantization sections never panic a search.
    let mut rng = Rng::new(3);
    for _ in 0..100 {
        let at = rng.next_u64() as usize;
        let value = rng.next_u64() as u8;
        let forged = forge(&codes_only, |k, b| {
            if k == SectionKind::SQ_RANGES || k == SectionKind::SQ_CODES {
                let i = at % b.len();
                b[i] = value;
            }
            true
        });
        if let Ok(view) = HnswView::open(forged.as_slice()) {
            let _ = view.search(&[0.5; DIM], 5, &SearchParams::new(), None);
        }
    }
}
