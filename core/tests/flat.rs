//! Exact search against a naive loop, filters, batches, and every input error.

use neardb_core::rng::Rng;
use neardb_core::{
    Bitset, Error, FlatIndex, Isa, Kernels, Metric, Neighbor, Predicate, SearchParams, VectorSearch,
    ZeroVectorKind,
};

const P: SearchParams = SearchParams::new();

fn data(rng: &mut Rng, n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim).map(|_| rng.normal() as f32).collect()
}

/// The obvious implementation: every distance, one full sort by (distance, id).
fn naive(
    metric: Metric,
    dim: usize,
    stored: &[f32],
    q: &[f32],
    k: usize,
    allow: impl Fn(u32) -> bool,
) -> Vec<Neighbor> {
    let scalar = Kernels::scalar();
    let mut q = q.to_vec();
    if metric == Metric::Cosine {
        scalar.normalize(&mut q);
    }
    let mut all: Vec<Neighbor> = stored
        .chunks_exact(dim)
        .enumerate()
        .filter(|(i, _)| allow(*i as u32))
        .map(|(i, v)| Neighbor::new(i as u32, metric.distance(&scalar, &q, v)))
        .collect();
    all.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
    all.truncate(k);
    all
}

#[test]
fn matches_naive_loop_for_every_metric_and_kernel_path() {
    let mut rng = Rng::new(1);
    for metric in Metric::ALL {
        for dim in [1, 3, 31, 64, 100] {
            let base = data(&mut rng, 500, dim);
            for isa in Isa::ALL {
                let Some(kernels) = Kernels::for_isa(isa) else { continue };
                let mut idx = FlatIndex::new(dim, metric).unwrap().with_kernels(kernels);
                idx.add(&base).unwrap();
                for _ in 0..5 {
                    let q = data(&mut rng, 1, dim);
                    for k in [1, 10, 499, 500, 1000] {
                        let got = idx.search(&q, k, &P, None).unwrap();
                        let want = naive(metric, dim, idx.rows().f32().expect("f32 rows"), &q, k, |_| true);
                        assert_eq!(got, want, "{metric} dim {dim} k {k} {isa:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn ties_are_broken_by_id() {
    let mut idx = FlatIndex::new(2, Metric::L2).unwrap();
    idx.add(&[1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0, 5.0, 5.0]).unwrap();
    let got = idx.search(&[0.0, 0.0], 3, &P, None).unwrap();
    assert_eq!(got.iter().map(|n| n.id).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(got.iter().all(|n| n.distance == 1.0));
}

#[test]
fn cosine_stores_unit_vectors_and_returns_one_minus_cos() {
    let mut idx = FlatIndex::new(2, Metric::Cosine).unwrap();
    idx.add(&[3.0, 4.0, 0.0, 2.0]).unwrap();
    assert_eq!(idx.get(0).unwrap(), [0.6, 0.8]);
    let r = idx.search(&[0.0, 10.0], 2, &P, None).unwrap();
    assert_eq!(r[0], Neighbor::new(1, 0.0));
    assert!((r[1].distance - 0.2).abs() < 1e-6);
}

#[test]
fn inner_product_and_l1_conventions() {
    let mut ip = FlatIndex::new(2, Metric::InnerProduct).unwrap();
    ip.add(&[1.0, 2.0, 3.0, 1.0]).unwrap();
    assert_eq!(ip.search(&[1.0, 1.0], 1, &P, None).unwrap(), [Neighbor::new(1, -4.0)]);
    let mut l1 = FlatIndex::new(2, Metric::L1).unwrap();
    l1.add(&[1.0, 2.0, 3.0, 1.0]).unwrap();
    assert_eq!(l1.search(&[0.0, 0.0], 2, &P, None).unwrap(), [Neighbor::new(0, 3.0), Neighbor::new(1, 4.0)]);
}

#[test]
fn filters_return_min_of_k_and_matches_at_every_selectivity() {
    let mut rng = Rng::new(2);
    let dim = 16;
    let n = 2000;
    let base = data(&mut rng, n, dim);
    let mut idx = FlatIndex::new(dim, Metric::L2).unwrap();
    idx.add(&base).unwrap();
    let q = data(&mut rng, 1, dim);
    for every in [1, 2, 10, 100, 1000, 5000] {
        let bits = Bitset::from_fn(n as u32, |id| id % every == 0);
        let pred = Predicate(|id: u32| id.is_multiple_of(every));
        let matches = bits.count() as usize;
        for k in [1, 10, 100] {
            let want =
                naive(Metric::L2, dim, idx.rows().f32().expect("f32 rows"), &q, k, |id| id % every == 0);
            assert_eq!(want.len(), k.min(matches));
            assert_eq!(idx.search(&q, k, &P, Some(&bits)).unwrap(), want, "bitset every {every} k {k}");
            assert_eq!(idx.search(&q, k, &P, Some(&pred)).unwrap(), want, "predicate every {every} k {k}");
        }
    }
}

#[test]
fn batch_search_equals_single_searches() {
    let mut rng = Rng::new(3);
    for metric in Metric::ALL {
        let dim = 40;
        let mut idx = FlatIndex::new(dim, metric).unwrap();
        idx.add(&data(&mut rng, 3000, dim)).unwrap();
        let queries = data(&mut rng, 37, dim);
        let bits = Bitset::from_fn(3000, |id| id % 3 != 0);
        for filter in [None, Some(&bits as &dyn neardb_core::Filter)] {
            let batch = idx.search_batch(&queries, 7, filter).unwrap();
            assert_eq!(batch.len(), 37);
            for (q, got) in queries.chunks_exact(dim).zip(&batch) {
                assert_eq!(got, &idx.search(q, 7, &P, filter).unwrap());
            }
        }
    }
}

#[test]
fn input_errors_are_specific() {
    let mut idx = FlatIndex::new(3, Metric::L2).unwrap();
    assert_eq!(idx.search(&[0.0; 3], 1, &P, None).unwrap_err(), Error::EmptyIndex);
    assert_eq!(idx.add(&[1.0, 2.0]).unwrap_err(), Error::DimensionMismatch { expected: 3, got: 2 });
    assert_eq!(idx.add(&[1.0, 2.0, 3.0, 4.0]).unwrap_err(), Error::RaggedVectors { len: 4, dim: 3 });
    assert_eq!(
        idx.add(&[1.0, 2.0, 3.0, 4.0, f32::NAN, 6.0]).unwrap_err(),
        Error::NonFiniteVector { vector: 1, component: 1 }
    );
    assert_eq!(
        idx.add(&[f32::INFINITY, 0.0, 0.0]).unwrap_err(),
        Error::NonFiniteVector { vector: 0, component: 0 }
    );
    assert_eq!(idx.len(), 0, "a rejected batch adds nothing");
    assert_eq!(idx.add(&[1.0, 2.0, 3.0]).unwrap(), 0..1);
    assert_eq!(idx.search(&[0.0; 3], 0, &P, None).unwrap_err(), Error::ZeroK);
    assert_eq!(
        idx.search(&[0.0; 4], 1, &P, None).unwrap_err(),
        Error::DimensionMismatch { expected: 3, got: 4 }
    );
    assert_eq!(
        idx.search(&[0.0, f32::NAN, 0.0], 1, &P, None).unwrap_err(),
        Error::NonFiniteQuery { component: 1 }
    );
    assert_eq!(
        idx.search(&[0.0, 0.0, f32::NEG_INFINITY], 1, &P, None).unwrap_err(),
        Error::NonFiniteQuery { component: 2 }
    );
    assert_eq!(idx.get(1).unwrap_err(), Error::UnknownId { id: 1, count: 1 });
    assert_eq!(idx.search_batch(&[0.0; 4], 1, None).unwrap_err(), Error::RaggedVectors { len: 4, dim: 3 });
    assert!(matches!(FlatIndex::new(0, Metric::L2), Err(Error::InvalidDimension { got: 0, .. })));
    assert!(matches!(FlatIndex::new(1 << 20, Metric::L2), Err(Error::InvalidDimension { .. })));

    let mut cos = FlatIndex::new(2, Metric::Cosine).unwrap();
    assert_eq!(
        cos.add(&[1.0, 0.0, 0.0, 0.0]).unwrap_err(),
        Error::ZeroVector { what: ZeroVectorKind::Vector(1) }
    );
    assert_eq!(cos.len(), 0);
    cos.add(&[1.0, 0.0]).unwrap();
    assert_eq!(
        cos.search(&[0.0, 0.0], 1, &P, None).unwrap_err(),
        Error::ZeroVector { what: ZeroVectorKind::Query }
    );
    // Messages are meant for people.
    assert_eq!(Error::ZeroK.to_string(), "k must be at least 1");
    assert!(Error::DimensionMismatch { expected: 3, got: 4 }.to_string().contains("3 dimensions"));
}

#[test]
fn values_whose_distances_would_overflow_are_refused() {
    let mut idx = FlatIndex::new(2, Metric::InnerProduct).unwrap();
    // The dot of these would overflow to inf - inf = NaN: such values never enter.
    let e = idx.add(&[3e38, 3e38, 1.0, 1.0]).unwrap_err();
    assert!(matches!(e, Error::VectorOutOfRange { vector: 0, component: 0, .. }), "{e:?}");
    idx.add(&[1.0, 1.0, 0.5, 0.25]).unwrap();
    let e = idx.search(&[3e38, -3e38], 3, &P, None).unwrap_err();
    assert!(matches!(e, Error::QueryOutOfRange { component: 0, .. }), "{e:?}");
}

#[test]
fn touching_reserved_room_changes_no_row_in_either_storage() {
    let mut rng = Rng::new(11);
    let (dim, n) = (12, 50);
    for f16 in [false, true] {
        let first = data(&mut rng, n, dim);
        let later = data(&mut rng, n, dim);
        let mut touched = FlatIndex::new(dim, Metric::L2).unwrap();
        let mut plain = FlatIndex::new(dim, Metric::L2).unwrap();
        for index in [&mut touched, &mut plain] {
            if f16 {
                index.store_f16().unwrap();
            }
            index.add(&first).unwrap();
            index.reserve(3 * n).unwrap();
        }
        touched.touch_reserved();
        assert_eq!(touched.len(), n);
        touched.add(&later).unwrap();
        plain.add(&later).unwrap();
        assert_eq!(touched.len(), 2 * n);
        for slot in 0..2 * n as u32 {
            assert_eq!(touched.get_decoded(slot).unwrap(), plain.get_decoded(slot).unwrap());
        }
        // Nothing stored past the rows: no search finds a zero row that was never added.
        let q = vec![0.0; dim];
        let hits = touched.search(&q, 3 * n, &P, None).unwrap();
        assert_eq!(hits.len(), 2 * n);
    }
}
