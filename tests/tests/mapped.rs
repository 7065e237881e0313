//! Across crates: a generated dataset built in memory, saved, memory-mapped and searched in
//! place gives the same answers as the in-memory index, and exact search reproduces the
//! generator's ground truth.
#![cfg(not(target_arch = "wasm32"))]

use neardb::format::OpenOptions;
use neardb::gen::{DataKind, DataSpec, Generator};
use neardb::{Bitset, FlatIndex, Metric, SearchParams, VectorSearch};

fn spec(metric: Metric) -> DataSpec {
    DataSpec { kind: DataKind::Clustered, dim: 48, metric, clusters: 20, seed: 9 }
}

#[test]
fn saved_and_mapped_flat_index_answers_like_the_in_memory_one() {
    let dir = tempfile::tempdir().unwrap();
    for metric in Metric::ALL {
        let g = Generator::new(spec(metric));
        let base = g.rows(0, 0, 4000);
        let queries = g.rows(1, 0, 40);
        let mut idx = FlatIndex::new(48, metric).unwrap();
        idx.add(&base).unwrap();
        let path = dir.path().join(format!("{metric}.neardb"));
        let written = neardb::save(&idx, &path).unwrap();
        assert_eq!(written, std::fs::metadata(&path).unwrap().len());
        assert_eq!(std::fs::read(&path).unwrap(), idx.to_bytes(), "file is the in-memory serialisation");
        let mapped = neardb::open(&path).unwrap();
        let unverified = neardb::open_with(&path, OpenOptions { verify_checksums: false }).unwrap();
        let filter = Bitset::from_fn(4000, |id| id % 7 == 0);
        let p = SearchParams::new();
        for q in queries.chunks_exact(48) {
            let want = idx.search(q, 10, &p, None).unwrap();
            assert_eq!(mapped.search(q, 10, &p, None).unwrap(), want);
            assert_eq!(unverified.search(q, 10, &p, None).unwrap(), want);
            assert_eq!(
                mapped.search(q, 10, &p, Some(&filter)).unwrap(),
                idx.search(q, 10, &p, Some(&filter)).unwrap()
            );
        }
        let batch = mapped.search_batch(&queries, 10, &p, None).unwrap();
        for (q, got) in queries.chunks_exact(48).zip(&batch) {
            assert_eq!(got, &idx.search(q, 10, &p, None).unwrap());
        }
    }
}

#[test]
fn exact_search_reproduces_independent_double_precision_ground_truth() {
    // Ground truth computed here in f64 with a plain loop: flat search must agree at rank level
    // wherever the f32 distances are not within rounding of each other.
    let g = Generator::new(spec(Metric::L2));
    let base = g.rows(0, 0, 2000);
    let queries = g.rows(1, 0, 30);
    let mut idx = FlatIndex::new(48, Metric::L2).unwrap();
    idx.add(&base).unwrap();
    let mut recall_hits = 0;
    for q in queries.chunks_exact(48) {
        let mut exact: Vec<(f64, u32)> = base
            .chunks_exact(48)
            .enumerate()
            .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum(), i as u32))
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let got = idx.search(q, 10, &SearchParams::new(), None).unwrap();
        for (g, e) in got.iter().zip(&exact) {
            assert!(
                (g.distance as f64 - e.0).abs() <= 1e-4 * e.0.max(1.0),
                "distance {} vs {}",
                g.distance,
                e.0
            );
        }
        let truth: Vec<u32> = exact[..10].iter().map(|e| e.1).collect();
        recall_hits += got.iter().filter(|n| truth.contains(&n.id)).count();
    }
    assert!(recall_hits >= 299, "flat recall {} / 300", recall_hits);
}
