//! Across crates: an HNSW index built natively, saved, then memory-mapped (`open`) or read into
//! huge-page memory (`load`) answers exactly like the in-memory index, with deletions too.
#![cfg(not(target_arch = "wasm32"))]

use neardb::gen::{DataKind, DataSpec, Generator};
use neardb::{Bitset, FlatIndex, HnswIndex, HnswParams, Metric, SearchParams, VectorSearch};

#[test]
fn saved_hnsw_answers_like_the_in_memory_index_through_open_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 32;
    let g = Generator::new(DataSpec {
        kind: DataKind::Clustered,
        dim,
        metric: Metric::Cosine,
        clusters: 25,
        seed: 2,
    });
    let base = g.rows(0, 0, 5000);
    let queries = g.rows(1, 0, 50);
    let mut h =
        HnswIndex::new(dim, Metric::Cosine, HnswParams { m: 12, ef_construction: 100, seed: 5 }).unwrap();
    h.add(&base).unwrap();
    for id in (0..5000).step_by(7) {
        h.remove(id).unwrap();
    }
    let path = dir.path().join("h.neardb");
    neardb::save(&h, &path).unwrap();
    let mapped = neardb::open(&path).unwrap();
    let loaded = neardb::load(&path).unwrap();
    assert_eq!(mapped.len(), h.len());
    let p = SearchParams::new().with_ef(48);
    let filter = Bitset::from_fn(5000, |id| id % 3 == 0);
    for q in queries.chunks_exact(dim) {
        let want = h.search(q, 10, &p, None).unwrap();
        assert!(want.iter().all(|n| n.id % 7 != 0), "deleted ids never come back");
        assert_eq!(mapped.search(q, 10, &p, None).unwrap(), want);
        assert_eq!(loaded.search(q, 10, &p, None).unwrap(), want);
        assert_eq!(
            mapped.search(q, 10, &p, Some(&filter)).unwrap(),
            h.search(q, 10, &p, Some(&filter)).unwrap()
        );
    }
    // Recall of the file against exact search over the live vectors.
    let live: Vec<u32> = (0..5000u32).filter(|id| id % 7 != 0).collect();
    let mut flat = FlatIndex::new(dim, Metric::Cosine).unwrap();
    for &id in &live {
        flat.add(&base[id as usize * dim..(id as usize + 1) * dim]).unwrap();
    }
    let mut hits = 0;
    for q in queries.chunks_exact(dim) {
        let truth: Vec<u32> =
            flat.search(q, 10, &p, None).unwrap().iter().map(|n| live[n.id as usize]).collect();
        hits += mapped.search(q, 10, &p, None).unwrap().iter().filter(|n| truth.contains(&n.id)).count();
    }
    assert!(hits >= 475, "recall {hits} / 500");
}
