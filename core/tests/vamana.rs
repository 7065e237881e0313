//! Vamana against exact ground truth: recall per metric, RobustPrune's degree bound, a graph
//! every node of which the medoid reaches, reproducible seeded builds, and bad input refused.

mod common;

use common::recall_at_10;
use neardb_core::{Error, FlatIndex, Metric, SearchParams, VamanaIndex, VamanaParams, VectorSearch};

fn mixture(seed: u64, n: usize, dim: usize, clusters: usize) -> Vec<f32> {
    common::mixture(seed, n, dim, clusters, 4.0)
}

fn unit_rows(data: &[f32], dim: usize) -> Vec<f32> {
    data.chunks_exact(dim)
        .flat_map(|r| {
            let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt();
            r.iter().map(move |x| x / norm)
        })
        .collect()
}

fn built(metric: Metric, data: &[f32], dim: usize, params: VamanaParams) -> VamanaIndex {
    let mut index = VamanaIndex::new(dim, metric, params).unwrap();
    index.build(data).unwrap();
    index
}

#[test]
fn recall_against_exact_search_for_every_metric() {
    let (n, dim) = (3000, 24);
    let raw = mixture(1, n, dim, 30);
    let raw_queries = mixture(2, 100, dim, 30);
    for metric in Metric::ALL {
        // Inner product as it is used: over embeddings of unit length (maximum inner product
        // over vectors of any length has no graph guarantee; see the prune's note).
        let (data, queries) = if metric == Metric::InnerProduct {
            (unit_rows(&raw, dim), unit_rows(&raw_queries, dim))
        } else {
            (raw.clone(), raw_queries.clone())
        };
        let params = VamanaParams { r: 24, l: 64, alpha: 1.2, seed: 5 };
        let index = built(metric, &data, dim, params);
        let mut flat = FlatIndex::new(dim, metric).unwrap();
        flat.add(&data).unwrap();
        let low = recall_at_10(&index, &flat, &queries, dim, &SearchParams::new().with_ef(16));
        let high = recall_at_10(&index, &flat, &queries, dim, &SearchParams::new().with_ef(128));
        assert!(high >= 0.97, "{metric}: recall {high} at L = 128");
        assert!(high >= low, "{metric}: a longer list never loses recall ({low} -> {high})");
    }
}

#[test]
fn lists_hold_at_most_r_links_and_the_medoid_reaches_every_node() {
    let (n, dim) = (2000, 16);
    let data = mixture(3, n, dim, 20);
    let params = VamanaParams { r: 12, l: 40, alpha: 1.2, seed: 9 };
    let index = built(Metric::L2, &data, dim, params);
    let mut seen = vec![false; n];
    let mut stack = vec![index.medoid().unwrap()];
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut seen[id as usize], true) {
            continue;
        }
        let links = index.neighbors(id);
        assert!(links.len() <= 12 && !links.is_empty(), "node {id}: {} links", links.len());
        assert!(!links.contains(&id), "node {id} links to itself");
        stack.extend(links);
    }
    assert!(
        seen.iter().all(|&s| s),
        "{} nodes unreachable from the medoid",
        seen.iter().filter(|s| !**s).count()
    );
    // The medoid is the row nearest the mean.
    let mean: Vec<f32> = (0..dim).map(|j| data.iter().skip(j).step_by(dim).sum::<f32>() / n as f32).collect();
    let mut flat = FlatIndex::new(dim, Metric::L2).unwrap();
    flat.add(&data).unwrap();
    let nearest = flat.search(&mean, 1, &SearchParams::new(), None).unwrap()[0].id;
    assert_eq!(index.medoid(), Some(nearest));
}

#[test]
fn a_larger_alpha_keeps_more_links() {
    let (n, dim) = (2000, 16);
    let data = mixture(4, n, dim, 20);
    let degree = |alpha: f32| {
        let index = built(Metric::L2, &data, dim, VamanaParams { r: 32, l: 50, alpha, seed: 2 });
        (0..n as u32).map(|id| index.neighbors(id).len()).sum::<usize>() as f64 / n as f64
    };
    let (tight, loose) = (degree(1.0), degree(1.5));
    assert!(loose > tight, "mean degree α=1: {tight}, α=1.5: {loose}");
}

#[test]
fn seeded_builds_are_identical_and_seeds_matter() {
    let (n, dim) = (800, 8);
    let data = mixture(6, n, dim, 10);
    let params = VamanaParams { r: 10, l: 30, alpha: 1.2, seed: 77 };
    let a = built(Metric::Cosine, &data, dim, params);
    let b = built(Metric::Cosine, &data, dim, params);
    let c = built(Metric::Cosine, &data, dim, VamanaParams { seed: 78, ..params });
    let lists = |x: &VamanaIndex| (0..n as u32).map(|id| x.neighbors(id)).collect::<Vec<_>>();
    assert_eq!(lists(&a), lists(&b));
    assert_ne!(lists(&a), lists(&c));
}

#[test]
fn bad_input_is_refused() {
    let bad = |p: VamanaParams| VamanaIndex::new(4, Metric::L2, p).unwrap_err();
    assert!(matches!(
        bad(VamanaParams { r: 1, ..VamanaParams::default() }),
        Error::InvalidParameter { name: "r", .. }
    ));
    assert!(matches!(
        bad(VamanaParams { l: 0, ..VamanaParams::default() }),
        Error::InvalidParameter { name: "l", .. }
    ));
    for alpha in [0.5, f32::NAN, 10.0] {
        assert!(matches!(
            bad(VamanaParams { alpha, ..VamanaParams::default() }),
            Error::InvalidParameter { name: "alpha", .. }
        ));
    }
    let mut index = VamanaIndex::new(4, Metric::L2, VamanaParams::default()).unwrap();
    assert_eq!(index.search(&[0.0; 4], 1, &SearchParams::new(), None).unwrap_err(), Error::EmptyIndex);
    assert_eq!(index.build(&[]).unwrap_err(), Error::EmptyIndex);
    assert!(matches!(index.build(&[1.0; 5]).unwrap_err(), Error::RaggedVectors { .. }));
    assert!(matches!(index.build(&[f32::NAN, 0.0, 0.0, 0.0]).unwrap_err(), Error::NonFiniteVector { .. }));
    index.build(&[0.0, 1.0, 2.0, 3.0, 1.0, 1.0, 1.0, 1.0]).unwrap();
    assert!(index.build(&[0.0; 4]).is_err(), "a second build is refused");
    let hits = index.search(&[1.0; 4], 5, &SearchParams::new(), None).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [1, 0]);
}

/// The parallel build (every rayon thread, per-node locks) reaches the recall of the seeded
/// one-thread build.
#[cfg(feature = "parallel")]
#[test]
fn the_parallel_build_matches_the_sequential_recall() {
    let (n, dim) = (4000, 24);
    let data = mixture(8, n, dim, 40);
    let queries = mixture(9, 100, dim, 40);
    let params = VamanaParams { r: 16, l: 48, alpha: 1.2, seed: 4 };
    let sequential = built(Metric::L2, &data, dim, params);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    let mut parallel = VamanaIndex::new(dim, Metric::L2, params).unwrap();
    pool.install(|| parallel.build_parallel(&data)).unwrap();
    assert_eq!(parallel.medoid(), sequential.medoid());
    let mut flat = FlatIndex::new(dim, Metric::L2).unwrap();
    flat.add(&data).unwrap();
    let p = SearchParams::new().with_ef(96);
    let (a, b) = (
        recall_at_10(&sequential, &flat, &queries, dim, &p),
        recall_at_10(&parallel, &flat, &queries, dim, &p),
    );
    assert!(b >= a - 0.03 && b >= 0.93, "sequential {a}, parallel {b}");
    for id in 0..n as u32 {
        let links = parallel.neighbors(id);
        assert!(!links.is_empty() && links.len() <= 16 && !links.contains(&id), "node {id}: {links:?}");
    }
}
