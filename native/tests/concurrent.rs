//! One writer inserting while eight readers search: no deadlock, no torn result (every
//! returned distance is exactly the distance to the stored vector, results sorted, ids valid),
//! and recall holds once the writer is done.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use neardb::gen::{DataKind, DataSpec, Generator};
use neardb::{ConcurrentHnsw, FlatIndex, HnswIndex, HnswParams, Kernels, Metric, SearchParams, VectorSearch};

#[test]
fn one_writer_eight_readers() {
    let dim = 24;
    let g = Generator::new(DataSpec {
        kind: DataKind::Clustered,
        dim,
        metric: Metric::L2,
        clusters: 20,
        seed: 4,
    });
    let base = g.rows(0, 0, 3000);
    let queries = g.rows(1, 0, 64);
    let params = HnswParams { m: 12, ef_construction: 100, seed: 1 };
    let mut start = HnswIndex::new(dim, Metric::L2, params).unwrap();
    start.add(&base[..1000 * dim]).unwrap();
    let index = ConcurrentHnsw::new(start);
    let done = AtomicBool::new(false);
    let searches = AtomicUsize::new(0);
    let kernels = Kernels::scalar();
    std::thread::scope(|s| {
        s.spawn(|| {
            // Single inserts, then small batches (on 2 cores with 9 threads, each exclusive
            // moment waits for preempted readers, so batches keep the test short).
            for (i, v) in base[1000 * dim..1100 * dim].chunks_exact(dim).enumerate() {
                assert_eq!(index.insert(v).unwrap(), 1000 + i as u32);
            }
            let mut next = 1100;
            for batch in base[1100 * dim..].chunks(50 * dim) {
                let ids = index.insert_batch(batch).unwrap();
                assert_eq!(ids, (next..next + (batch.len() / dim) as u32).collect::<Vec<_>>());
                next += ids.len() as u32;
            }
            done.store(true, Ordering::Release);
        });
        for r in 0..8 {
            let (index, done, searches, queries) = (&index, &done, &searches, &queries);
            s.spawn(move || {
                let p = SearchParams::new().with_ef(48);
                let mut i = r;
                while !done.load(Ordering::Acquire) {
                    let q = &queries[(i % 64) * dim..(i % 64 + 1) * dim];
                    let hits = index.search(q, 10, &p, None).unwrap();
                    assert_eq!(hits.len(), 10);
                    assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance), "unsorted result");
                    for h in &hits {
                        let v = index.vector(h.id).unwrap();
                        assert_eq!(
                            h.distance,
                            Metric::L2.distance(&kernels, q, &v),
                            "torn result for id {}",
                            h.id
                        );
                    }
                    searches.fetch_add(1, Ordering::Relaxed);
                    i += 8;
                }
            });
        }
    });
    assert!(searches.load(Ordering::Relaxed) > 0, "readers ran");
    let index = index.into_inner();
    assert_eq!(index.len(), 3000);
    let mut flat = FlatIndex::new(dim, Metric::L2).unwrap();
    flat.add(&base).unwrap();
    let p = SearchParams::new().with_ef(64);
    let mut hits = 0;
    for q in queries.chunks_exact(dim) {
        let truth: Vec<u32> = flat.search(q, 10, &p, None).unwrap().iter().map(|n| n.id).collect();
        hits += index.search(q, 10, &p, None).unwrap().iter().filter(|n| truth.contains(&n.id)).count();
    }
    let recall = hits as f64 / 640.0;
    assert!(recall >= 0.9, "recall after concurrent inserts {recall}");
}
