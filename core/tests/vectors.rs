//! The one vector store, through every kind that keeps rows: flat scans, IVF-PQ and binary
//! re-ranks in binary16 answer exactly as `f32` indexes over the rounded vectors do, files
//! round-trip byte for byte, and files whose vector sections lie are refused.

mod common;

use common::{mixture, rewrite};
use neardb_core::format::{AlignedBytes, SectionKind};
use neardb_core::simd::half::{from_f16, to_f16};
use neardb_core::vectors::VectorForm;
use neardb_core::{
    BinaryIndex, BinaryParams, BinaryView, Error, FlatIndex, FlatView, IvfPqIndex, IvfPqParams, IvfPqView,
    Metric, SearchParams, VectorSearch,
};

const DIM: usize = 24;

fn rounded(data: &[f32]) -> Vec<f32> {
    data.iter().map(|&x| from_f16(to_f16(x))).collect()
}

fn unit(data: &[f32]) -> Vec<f32> {
    let mut out = data.to_vec();
    for row in out.chunks_exact_mut(DIM) {
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= n);
    }
    out
}

#[test]
fn a_binary16_flat_index_answers_as_an_f32_one_over_the_rounded_vectors() {
    let data = mixture(7, 600, DIM, 6, 1.0);
    let queries = mixture(8, 20, DIM, 6, 1.0);
    for metric in [Metric::L2, Metric::InnerProduct, Metric::L1, Metric::Cosine] {
        let mut half = FlatIndex::new(DIM, metric).unwrap();
        half.store_f16().unwrap();
        half.add(&data[..300 * DIM]).unwrap();
        half.add(&data[300 * DIM..]).unwrap();
        assert!(half.stores_f16());
        assert_eq!(half.rows().form(), VectorForm::F16);
        assert_eq!(half.rows().bytes(), 600 * DIM * 2);
        // Cosine rows are normalised before rounding, so the reference rounds unit rows.
        let reference_rows = if metric == Metric::Cosine { rounded(&unit(&data)) } else { rounded(&data) };
        let mut reference = FlatIndex::new(DIM, metric).unwrap();
        reference.add(&reference_rows).unwrap();
        if metric == Metric::Cosine {
            // Normalising the rounded unit rows moves them by an ulp; compare ids only.
            for q in queries.chunks_exact(DIM) {
                let a: Vec<u32> = half
                    .search(q, 10, &SearchParams::default(), None)
                    .unwrap()
                    .iter()
                    .map(|n| n.id)
                    .collect();
                let b: Vec<u32> = reference
                    .search(q, 10, &SearchParams::default(), None)
                    .unwrap()
                    .iter()
                    .map(|n| n.id)
                    .collect();
                let same = a.iter().filter(|id| b.contains(id)).count();
                assert!(same >= 9, "cosine f16 results drifted: {a:?} vs {b:?}");
            }
            continue;
        }
        let batch = half.search_batch(&queries, 10, None).unwrap();
        for (q, from_batch) in queries.chunks_exact(DIM).zip(&batch) {
            let got = half.search(q, 10, &SearchParams::default(), None).unwrap();
            let want = reference.search(q, 10, &SearchParams::default(), None).unwrap();
            assert_eq!(got, want, "{metric:?}");
            assert_eq!(&got, from_batch, "{metric:?}: batch and single scans differ");
        }
        // Reading a row back: decoded, never lent as f32.
        assert!(matches!(half.get(3), Err(Error::InvalidParameter { .. })));
        assert_eq!(half.get_decoded(3).unwrap(), &reference_rows[3 * DIM..4 * DIM]);
        assert!(matches!(half.get_decoded(600), Err(Error::UnknownId { .. })));
    }
}

#[test]
fn binary16_flat_files_round_trip_and_swap_remove_keeps_rows_dense() {
    let data = mixture(9, 200, DIM, 4, 1.0);
    let mut half = FlatIndex::new(DIM, Metric::L2).unwrap();
    half.add(&data).unwrap();
    half.store_f16().unwrap();
    let bytes = AlignedBytes::copy_from(&half.to_bytes());
    let view = FlatView::open(bytes.as_slice()).unwrap();
    assert!(view.stores_f16());
    assert!(view.info().sections.iter().all(|s| s.kind != SectionKind::VECTORS));
    assert_eq!(view.to_index().to_bytes(), half.to_bytes());
    let q = &data[5 * DIM..6 * DIM];
    assert_eq!(
        view.search(q, 5, &SearchParams::default(), None).unwrap(),
        half.search(q, 5, &SearchParams::default(), None).unwrap()
    );
    let last = half.get_decoded(199).unwrap();
    assert_eq!(half.swap_remove(10).unwrap(), Some(199));
    assert_eq!(half.len(), 199);
    assert_eq!(half.get_decoded(10).unwrap(), last);
    // Values binary16 cannot hold are refused and leave the index unchanged.
    let mut big = data[..DIM].to_vec();
    big[2] = 1e6;
    assert!(matches!(half.add(&big), Err(Error::OutOfHalfRange { vector: 0, component: 2, .. })));
    assert_eq!(half.len(), 199);
    let mut f32_index = FlatIndex::new(DIM, Metric::L2).unwrap();
    f32_index.add(&big).unwrap();
    assert!(matches!(f32_index.store_f16(), Err(Error::OutOfHalfRange { .. })));
    assert!(!f32_index.stores_f16());
}

#[test]
fn ivf_pq_and_binary_rerank_from_binary16_rows() {
    let data = mixture(11, 2000, DIM, 8, 1.0);
    let queries = mixture(12, 15, DIM, 8, 1.0);
    let params = IvfPqParams { nlist: 16, pq_m: 6, ..IvfPqParams::default() };
    let mut ivf = IvfPqIndex::build(DIM, Metric::L2, params, &data).unwrap();
    ivf.store_f16().unwrap();
    assert_eq!(ivf.vector_form(), VectorForm::F16);
    let mut binary = BinaryIndex::new(DIM, Metric::L2, BinaryParams::hyperplanes(64)).unwrap();
    binary.store_f16().unwrap();
    binary.train(&data).unwrap();
    binary.add(&data).unwrap();
    assert_eq!(binary.vector_form(), VectorForm::F16);
    let rerank = SearchParams::default().with_nprobe(16).with_rerank_factor(8);
    for q in queries.chunks_exact(DIM) {
        for got in [ivf.search(q, 5, &rerank, None).unwrap(), binary.search(q, 5, &rerank, None).unwrap()] {
            // Re-ranked distances are exact distances to the rounded rows.
            for n in &got {
                let row = &rounded(&data)[n.id as usize * DIM..(n.id as usize + 1) * DIM];
                let d: f32 = row.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
                assert!((n.distance - d).abs() <= 1e-4 * d.max(1.0), "{} vs {d}", n.distance);
            }
        }
    }
    // The same candidates re-ranked from f32 rows agree but for near ties.
    let f32_ivf = IvfPqIndex::build(DIM, Metric::L2, params, &data).unwrap();
    let mut same = 0;
    for q in queries.chunks_exact(DIM) {
        let a = ivf.search(q, 5, &rerank, None).unwrap();
        let b = f32_ivf.search(q, 5, &rerank, None).unwrap();
        same += a.iter().filter(|n| b.iter().any(|m| m.id == n.id)).count();
    }
    assert!(same >= 15 * 5 * 9 / 10, "{same} of 75 results shared with the f32 re-rank");
    assert_eq!(ivf.get_decoded(7).unwrap(), &rounded(&data)[7 * DIM..8 * DIM]);
    // Files keep the binary16 rows and round-trip.
    let ivf_bytes = AlignedBytes::copy_from(&ivf.to_bytes());
    let ivf_view = IvfPqView::open(ivf_bytes.as_slice()).unwrap();
    assert_eq!(ivf_view.vector_form(), VectorForm::F16);
    assert_eq!(ivf_view.to_index().to_bytes(), ivf.to_bytes());
    let bin_bytes = AlignedBytes::copy_from(&binary.to_bytes());
    let bin_view = BinaryView::open(bin_bytes.as_slice()).unwrap();
    assert_eq!(bin_view.to_index().unwrap().to_bytes(), binary.to_bytes());
    let q = &queries[..DIM];
    assert_eq!(bin_view.search(q, 5, &rerank, None).unwrap(), binary.search(q, 5, &rerank, None).unwrap());
}

fn flat_error(bytes: &AlignedBytes) -> String {
    match FlatView::open(bytes.as_slice()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a forged flat file opened"),
    }
}

#[test]
fn vector_sections_that_lie_are_refused() {
    let data = mixture(13, 50, DIM, 2, 1.0);
    let mut f32_index = FlatIndex::new(DIM, Metric::L2).unwrap();
    f32_index.add(&data).unwrap();
    let mut half = f32_index.clone();
    half.store_f16().unwrap();
    let half_rows: Vec<u8> = data.iter().flat_map(|&x| to_f16(x).to_le_bytes()).collect();
    // Both forms at once.
    let both = rewrite(&f32_index.to_bytes(), &[(SectionKind::VECTORS_F16, half_rows.clone())], |_, _| true);
    assert!(flat_error(&both).contains("beside f32 vectors"), "{}", flat_error(&both));
    // No rows at all.
    let none = rewrite(&f32_index.to_bytes(), &[], |k, _| k != SectionKind::VECTORS);
    assert!(flat_error(&none).contains("missing"), "{}", flat_error(&none));
    // Binary16 rows one value short.
    let short = rewrite(&half.to_bytes(), &[], |k, b| {
        if k == SectionKind::VECTORS_F16 {
            b.truncate(b.len() - 2);
        }
        true
    });
    assert!(flat_error(&short).contains("vectors-f16"), "{}", flat_error(&short));
    // A NaN in binary16 (exponent all ones) under a valid checksum.
    let nan = rewrite(&half.to_bytes(), &[], |k, b| {
        if k == SectionKind::VECTORS_F16 {
            b[6..8].copy_from_slice(&0x7e00u16.to_le_bytes());
        }
        true
    });
    assert!(flat_error(&nan).contains("NaN"), "{}", flat_error(&nan));
    // SQ8 codes are not part of a flat file.
    let codes = rewrite(
        &f32_index.to_bytes(),
        &[(SectionKind::SQ_RANGES, vec![0; DIM * 8]), (SectionKind::SQ_CODES, vec![0; 50 * DIM])],
        |_, _| true,
    );
    assert!(flat_error(&codes).contains("no use for"), "{}", flat_error(&codes));
    // An IVF-PQ file that says it dropped its vectors may not carry binary16 ones.
    let params = IvfPqParams { nlist: 2, pq_m: 4, nbits: 4, keep_vectors: false, ..IvfPqParams::default() };
    let ivf = IvfPqIndex::build(DIM, Metric::L2, params, &data).unwrap();
    let sneaked = rewrite(&ivf.to_bytes(), &[(SectionKind::VECTORS_F16, half_rows)], |_, _| true);
    match IvfPqView::open(sneaked.as_slice()) {
        Err(e) => assert!(e.to_string().contains("dropped"), "{e}"),
        Ok(_) => panic!("an IVF-PQ file with undeclared vectors opened"),
    }
}
