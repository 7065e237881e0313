//! HNSW against exact ground truth on seeded data: recall thresholds that a broken heuristic
//! or a broken layer search would miss, determinism, in-place files and their validation.

mod common;

use neardb_core::format::{AlignedBytes, FileInfo, FormatError, OpenOptions, SectionKind};
use neardb_core::rng::Rng;
use neardb_core::{
    Error, FlatIndex, HnswIndex, HnswParams, HnswView, IdMap, Kernels, Metric, SearchParams, VectorSearch,
};

/// An anisotropic Gaussian mixture, like the generator of the native crate.
fn mixture(seed: u64, n: usize, dim: usize, clusters: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let centers: Vec<f32> = (0..clusters * dim).map(|_| rng.normal() as f32 * 2.0).collect();
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

fn recall(index: &dyn VectorSearch, flat: &FlatIndex, queries: &[f32], k: usize, ef: usize) -> f64 {
    let dim = flat.dim();
    let p = SearchParams::new().with_ef(ef);
    let mut hits = 0;
    for q in queries.chunks_exact(dim) {
        let truth: Vec<u32> = flat.search(q, k, &p, None).unwrap().iter().map(|n| n.id).collect();
        let got = index.search(q, k, &p, None).unwrap();
        assert_eq!(got.len(), k);
        assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
        hits += got.iter().filter(|n| truth.contains(&n.id)).count();
    }
    hits as f64 / (queries.len() / dim * k) as f64
}

/// Inner-product data as it occurs in practice: embeddings of nearly equal norm. (On raw data
/// of wildly different norms, maximum inner product search defeats any proximity graph.)
fn near_unit(mut data: Vec<f32>, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    for v in data.chunks_exact_mut(dim) {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let scale = (0.9 + 0.2 * rng.next_f32()) / norm;
        v.iter_mut().for_each(|x| *x *= scale);
    }
    data
}

fn build(metric: Metric, n: usize, dim: usize, params: HnswParams) -> (HnswIndex, FlatIndex, Vec<f32>) {
    let mut data = mixture(1, n, dim, 20);
    let mut queries = mixture(2, 100, dim, 20);
    if metric == Metric::InnerProduct {
        data = near_unit(data, dim, 3);
        queries = near_unit(queries, dim, 4);
    }
    let mut h = HnswIndex::new(dim, metric, params).unwrap();
    h.add(&data).unwrap();
    let mut f = FlatIndex::new(dim, metric).unwrap();
    f.add(&data).unwrap();
    (h, f, queries)
}

const SMALL: HnswParams = HnswParams { m: 12, ef_construction: 100, seed: 7 };

#[test]
fn recall_against_exact_search_for_every_metric() {
    for metric in Metric::ALL {
        let (h, f, q) = build(metric, 4000, 24, SMALL);
        let low = recall(&h, &f, &q, 10, 64);
        let high = recall(&h, &f, &q, 10, 400);
        println!("{metric}: recall@10 {low} at ef 64, {high} at ef 400");
        // Measured at ef 64: l2 0.90, cosine 0.94, ip 0.90, l1 0.83; at ef 400 ≥ 0.996 (ip 0.96).
        // A broken heuristic or layer search falls well below these floors.
        let floor64 = match metric {
            Metric::L2 => 0.86,
            Metric::Cosine => 0.90,
            Metric::InnerProduct => 0.86,
            Metric::L1 => 0.78,
        };
        assert!(low >= floor64, "{metric}: recall@10 {low} at ef 64");
        // Inner product is not a metric (a vector is not its own nearest neighbour), so the
        // graph's ceiling is lower even on near-unit data: measured 0.96 at ef 400.
        let floor = if metric == Metric::InnerProduct { 0.94 } else { 0.99 };
        assert!(high >= floor, "{metric}: recall@10 {high} at ef 400");
        let (mean, max) = h.degree_stats();
        // The heuristic prunes hard under inner product (−dot between near-unit neighbours is
        // lower than to the base), as in hnswlib; the other metrics keep about m links.
        let min_mean = if metric == Metric::InnerProduct { 3.0 } else { SMALL.m as f64 / 2.0 };
        assert!(max <= 2 * SMALL.m && mean > min_mean, "{metric}: degrees mean {mean} max {max}");
    }
}

#[test]
fn k_larger_than_ef_and_than_the_index() {
    let (h, _, q) = build(Metric::L2, 300, 8, SMALL);
    let p = SearchParams::new().with_ef(5);
    assert_eq!(h.search(&q[..8], 50, &p, None).unwrap().len(), 50, "ef is raised to k");
    assert_eq!(h.search(&q[..8], 1000, &p, None).unwrap().len(), 300);
}

#[test]
fn seeded_builds_are_byte_identical_and_kernel_independent() {
    let (a, _, _) = build(Metric::Cosine, 1500, 16, SMALL);
    let (b, _, _) = build(Metric::Cosine, 1500, 16, SMALL);
    assert_eq!(a.to_bytes(), b.to_bytes());
    let data = mixture(1, 1500, 16, 20);
    let mut scalar = HnswIndex::new(16, Metric::Cosine, SMALL).unwrap().with_kernels(Kernels::scalar());
    scalar.add(&data).unwrap();
    assert_eq!(scalar.to_bytes(), a.to_bytes(), "scalar and SIMD kernels build the same graph");
    let (c, _, _) = build(Metric::Cosine, 1500, 16, HnswParams { seed: 8, ..SMALL });
    assert_ne!(c.to_bytes(), a.to_bytes());
}

#[test]
fn file_round_trip_searches_identically_in_place() {
    let (h, _, q) = build(Metric::L2, 2000, 16, SMALL);
    let bytes = AlignedBytes::copy_from(&h.to_bytes());
    let view = HnswView::open(bytes.as_slice()).unwrap();
    assert_eq!(view.len(), 2000);
    assert_eq!(view.params(), SMALL);
    let p = SearchParams::new().with_ef(40);
    for qq in q.chunks_exact(16) {
        assert_eq!(view.search(qq, 10, &p, None).unwrap(), h.search(qq, 10, &p, None).unwrap());
    }
    assert_eq!(view.to_index().to_bytes(), h.to_bytes());
}

#[test]
fn input_errors() {
    let mut h = HnswIndex::new(4, Metric::L2, SMALL).unwrap();
    let p = SearchParams::new();
    assert_eq!(h.search(&[0.0; 4], 1, &p, None).unwrap_err(), Error::EmptyIndex);
    h.add(&[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(h.search(&[0.0; 4], 0, &p, None).unwrap_err(), Error::ZeroK);
    assert_eq!(
        h.search(&[0.0; 3], 1, &p, None).unwrap_err(),
        Error::DimensionMismatch { expected: 4, got: 3 }
    );
    assert_eq!(h.search(&[f32::NAN; 4], 1, &p, None).unwrap_err(), Error::NonFiniteQuery { component: 0 });
    assert_eq!(
        h.add(&[1.0, f32::INFINITY, 0.0, 0.0]).unwrap_err(),
        Error::NonFiniteVector { vector: 0, component: 1 }
    );
    assert_eq!(h.len(), 1);
    assert!(matches!(
        HnswIndex::new(4, Metric::L2, HnswParams { m: 1, ..SMALL }),
        Err(Error::InvalidParameter { name: "m", .. })
    ));
    assert!(matches!(
        HnswIndex::new(4, Metric::L2, HnswParams { ef_construction: 0, ..SMALL }),
        Err(Error::InvalidParameter { name: "ef_construction", .. })
    ));
}

/// Rewrites one section of a valid file (checksums recomputed), to forge a specific lie.
fn forge(bytes: &[u8], kind: SectionKind, edit: impl FnOnce(&mut Vec<u8>)) -> AlignedBytes {
    let mut edit = Some(edit);
    common::rewrite(bytes, &[], |k, b| {
        if k == kind {
            if let Some(e) = edit.take() {
                e(b);
            }
        }
        true
    })
}

fn word(b: &mut [u8], i: usize, v: u32) {
    b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
}

fn reason(bytes: AlignedBytes) -> (SectionKind, &'static str) {
    match HnswView::open(bytes.as_slice()) {
        Err(Error::Format(FormatError::InvalidSection { kind, reason })) => (kind, reason),
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("a forged file opened"),
    }
}

#[test]
fn corrupted_graph_files_are_rejected() {
    let (h, _, _) = build(Metric::L2, 500, 8, SMALL);
    let bytes = h.to_bytes();
    let m0 = 2 * SMALL.m as u32;
    // A neighbour id beyond the node count.
    let r = reason(forge(&bytes, SectionKind::GRAPH_LEVEL0, |b| word(b, 1, 500)));
    assert_eq!(r, (SectionKind::GRAPH_LEVEL0, "a neighbour id is not a node"));
    // A degree above m0.
    let r = reason(forge(&bytes, SectionKind::GRAPH_LEVEL0, |b| word(b, 0, m0 + 1)));
    assert_eq!(r, (SectionKind::GRAPH_LEVEL0, "a node has more than m0 neighbours"));
    // A node claiming a level above the top.
    let r = reason(forge(&bytes, SectionKind::NODE_LEVELS, |b| b[3] = 30));
    assert_eq!(r.0, SectionKind::NODE_LEVELS);
    // Offsets that do not add up.
    let r = reason(forge(&bytes, SectionKind::UPPER_OFFSETS, |b| word(b, 499, 1)));
    assert_eq!(r.0, SectionKind::UPPER_OFFSETS);
    // An entry point that is not a node.
    let r = reason(forge(&bytes, SectionKind::PARAMS, |b| word(b, 3, 9999)));
    assert_eq!(r, (SectionKind::PARAMS, "entry point is not a node"));
    // m0 inconsistent with m.
    let r = reason(forge(&bytes, SectionKind::PARAMS, |b| word(b, 1, 7)));
    assert_eq!(r, (SectionKind::PARAMS, "m0 must be 2 × m"));
    // A neighbour on an upper level that does not reach that level.
    let info_bytes = AlignedBytes::copy_from(&bytes);
    let info = FileInfo::parse(info_bytes.as_slice(), OpenOptions::default()).unwrap();
    let levels = info.section(info_bytes.as_slice(), SectionKind::NODE_LEVELS).unwrap();
    let low = levels.iter().position(|&l| l == 0).unwrap() as u32;
    let r = reason(forge(&bytes, SectionKind::GRAPH_UPPER, |b| {
        word(b, 0, 1);
        word(b, 1, low);
    }));
    assert_eq!(r, (SectionKind::GRAPH_UPPER, "a neighbour is not on that level"));
    // A truncated section (size check), and a flat file opened as HNSW.
    let short = forge(&bytes, SectionKind::GRAPH_LEVEL0, |b| b.truncate(b.len() - 4));
    assert!(matches!(
        HnswView::open(short.as_slice()),
        Err(Error::Format(FormatError::SectionSize { kind: SectionKind::GRAPH_LEVEL0, .. }))
    ));
    let mut f = FlatIndex::new(8, Metric::L2).unwrap();
    f.add(&[0.5; 8]).unwrap();
    let flat = AlignedBytes::copy_from(&f.to_bytes());
    assert!(matches!(HnswView::open(flat.as_slice()), Err(Error::Format(FormatError::KindMismatch { .. }))));
}

#[test]
fn random_corruption_of_a_graph_file_never_panics() {
    let (h, _, q) = build(Metric::L2, 300, 8, SMALL);
    let bytes = h.to_bytes();
    let info_buf = AlignedBytes::copy_from(&bytes);
    let info = FileInfo::parse(info_buf.as_slice(), OpenOptions::default()).unwrap();
    let mut rng = Rng::new(5);
    for _ in 0..400 {
        let s = info.sections[rng.below(info.sections.len() as u64) as usize];
        let forged = forge(&bytes, s.kind, |b| {
            if !b.is_empty() {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = rng.next_u64() as u8;
            }
        });
        if let Ok(view) = HnswView::open(forged.as_slice()) {
            for qq in q.chunks_exact(8).take(3) {
                let _ = view.search(qq, 5, &SearchParams::new().with_ef(20), None);
            }
        }
    }
}

#[cfg(feature = "parallel")]
#[test]
fn parallel_build_matches_sequential_recall() {
    // The parallel build walks a binary16 copy of the vectors; values beyond its range (the
    // 1e6 scale) make it fall back to exact distances. Both must give the same quality.
    for (metric, scale) in [(Metric::L2, 1.0), (Metric::Cosine, 1.0), (Metric::L2, 1e6)] {
        let data: Vec<f32> = mixture(1, 4000, 24, 20).iter().map(|x| x * scale).collect();
        let queries: Vec<f32> = mixture(2, 100, 24, 20).iter().map(|x| x * scale).collect();
        let mut f = FlatIndex::new(24, metric).unwrap();
        f.add(&data).unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
        let mut par = HnswIndex::new(24, metric, SMALL).unwrap();
        // Two batches: the second links into a graph that already exists.
        let linked = std::sync::atomic::AtomicU64::new(0);
        let ids = pool.install(|| {
            let a = par.add_parallel(&data[..24 * 1000]).unwrap();
            let count = |n| {
                linked.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            };
            let b = par.add_parallel_with(&data[24 * 1000..], &count).unwrap();
            (a, b)
        });
        assert_eq!(ids, ((0..1000).collect::<Vec<u32>>(), (1000..4000).collect::<Vec<u32>>()));
        assert_eq!(linked.into_inner(), 3000, "progress reports every linked node once");
        // Graph quality on this small, heavily pruned mixture depends on insertion order by
        // several points either way (a sequential build in another order: 0.85–0.92 at ef 64;
        // eight parallel builds in release: 0.83–0.96, and one under a loaded debug run 0.799),
        // so the floor at ef 64 sits below that spread; ef 400 and reachability stay strict.
        let (low, high) = (recall(&par, &f, &queries, 10, 64), recall(&par, &f, &queries, 10, 400));
        println!("{metric} ×{scale}: parallel recall {low} at ef 64, {high} at ef 400");
        assert!(
            low >= 0.75 && high >= 0.98,
            "{metric} ×{scale}: parallel recall {low} at ef 64, {high} at ef 400"
        );
        let (mean, max) = par.degree_stats();
        assert!(max <= 2 * SMALL.m && mean > SMALL.m as f64 / 2.0);
        // Every node is reachable: a search for each stored vector finds it.
        let p = SearchParams::new().with_ef(64);
        let found = (0..4000u32)
            .filter(|&i| par.search(par.get(i).unwrap(), 1, &p, None).unwrap()[0].id == i)
            .count();
        assert!(found >= 3990, "{metric} ×{scale}: only {found} of 4000 nodes find themselves");
    }
}

#[test]
fn filters_never_come_up_short_at_any_selectivity() {
    use neardb_core::{Bitset, Predicate};
    let n = 6000;
    let data = mixture(1, n, 16, 20);
    let queries = mixture(2, 40, 16, 20);
    let mut h = HnswIndex::new(16, Metric::L2, SMALL).unwrap();
    h.add(&data).unwrap();
    let mut f = FlatIndex::new(16, Metric::L2).unwrap();
    f.add(&data).unwrap();
    let p = SearchParams::new().with_ef(64);
    // 0.1 %, 1 %, 10 %, 50 %, 100 % of the ids, scattered by a hash so they are not clustered.
    for (permille, label) in [(1u64, "0.1%"), (10, "1%"), (100, "10%"), (500, "50%"), (1000, "100%")] {
        let keep = |id: u32| (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1000 < permille;
        let bits = Bitset::from_fn(n as u32, keep);
        let pred = Predicate(keep);
        let matches = bits.count() as usize;
        let (mut hits, mut total) = (0, 0);
        for q in queries.chunks_exact(16) {
            let truth = f.search(q, 10, &p, Some(&bits)).unwrap();
            for filter in [&bits as &dyn neardb_core::Filter, &pred] {
                let got = h.search(q, 10, &p, Some(filter)).unwrap();
                assert_eq!(got.len(), 10.min(matches), "{label}: short result");
                assert!(got.iter().all(|n| keep(n.id)), "{label}: a filtered-out id was returned");
                hits += got.iter().filter(|n| truth.iter().any(|t| t.id == n.id)).count();
                total += truth.len();
            }
        }
        let recall = hits as f64 / total as f64;
        assert!(recall >= 0.85, "{label}: filtered recall {recall}");
    }
}

fn recall_of(h: &HnswIndex, base: &[f32], queries: &[f32], dim: usize, ef: usize) -> f64 {
    let mut f = FlatIndex::new(dim, Metric::L2).unwrap();
    f.add(base).unwrap();
    // Exact truth over the live vectors, mapped back to the index's slot ids.
    let live: Vec<u32> =
        (0..(h.len() + 4000) as u32).filter(|&i| h.get(i).is_ok() && !h.is_deleted(i)).collect();
    let p = SearchParams::new().with_ef(ef);
    let mut hits = 0;
    for q in queries.chunks_exact(dim) {
        let truth: Vec<u32> =
            f.search(q, 10, &p, None).unwrap().iter().map(|n| live[n.id as usize]).collect();
        hits += h.search(q, 10, &p, None).unwrap().iter().filter(|n| truth.contains(&n.id)).count();
    }
    hits as f64 / (queries.len() / dim * 10) as f64
}

#[test]
fn churn_keeps_recall_within_a_point_of_a_fresh_build() {
    let dim = 32;
    let params = HnswParams { m: 16, ef_construction: 200, seed: 3 };
    let first = mixture(11, 8000, dim, 40);
    let second = mixture(12, 4000, dim, 40);
    let queries = mixture(13, 200, dim, 40);
    let mut h = HnswIndex::new(dim, Metric::L2, params).unwrap();
    h.add(&first).unwrap();
    // Delete half, scattered.
    let mut rng = Rng::new(5);
    let mut order: Vec<u32> = (0..8000).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for &id in &order[..4000] {
        h.remove(id).unwrap();
    }
    assert_eq!(h.len(), 4000);
    let p = SearchParams::new().with_ef(100);
    for q in queries.chunks_exact(dim).take(20) {
        assert!(h.search(q, 10, &p, None).unwrap().iter().all(|n| !h.is_deleted(n.id)));
    }
    let ids = h.add(&second).unwrap();
    let mut reused = ids.clone();
    reused.sort_unstable();
    let mut freed = order[..4000].to_vec();
    freed.sort_unstable();
    assert_eq!(reused, freed, "every freed slot is reused");
    assert_eq!(h.len(), 8000);
    // The same live vectors, freshly built. A fresh build's recall on this data moves by ±3
    // points with insertion order alone (measured 0.859–0.915 at ef 32), so the reference is
    // the mean over three seeded orders, not one sample.
    let live: Vec<f32> = (0..8000u32).flat_map(|i| h.get(i).unwrap().to_vec()).collect();
    for ef in [32, 64] {
        let churned = recall_of(&h, &live, &queries, dim, ef);
        let mut fresh = 0.0;
        for seed in 0..3u64 {
            let mut perm: Vec<u32> = (0..8000).collect();
            let mut r = Rng::new(seed + 100);
            for i in (1..perm.len()).rev() {
                perm.swap(i, r.below(i as u64 + 1) as usize);
            }
            let shuffled: Vec<f32> = perm.iter().flat_map(|&i| h.get(i).unwrap().to_vec()).collect();
            let mut f = HnswIndex::new(dim, Metric::L2, params).unwrap();
            f.add(&shuffled).unwrap();
            fresh += recall_of(&f, &shuffled, &queries, dim, ef) / 3.0;
        }
        println!("ef {ef}: churned {churned}, fresh builds (mean of 3 orders) {fresh}");
        assert!(churned >= fresh - 0.01, "ef {ef}: churned recall {churned} vs fresh {fresh}");
    }
}

#[test]
fn removal_errors_entry_replacement_and_files_with_deletions() {
    let (mut h, _, q) = build(Metric::L2, 1000, 8, SMALL);
    assert!(matches!(h.remove(1000), Err(Error::UnknownId { id: 1000, .. })));
    h.remove(7).unwrap();
    assert!(matches!(h.remove(7), Err(Error::UnknownId { id: 7, .. })), "double removal");
    // Removing the entry point (the node on the top level) hands the role to another node.
    let entry = (0..1000u32).filter(|&i| !h.is_deleted(i)).find(|&i| {
        let b = AlignedBytes::copy_from(&h.to_bytes());
        let info = FileInfo::parse(b.as_slice(), OpenOptions::default()).unwrap();
        let params = info.section(b.as_slice(), SectionKind::PARAMS).unwrap();
        u32::from_le_bytes(params[12..16].try_into().unwrap()) == i
    });
    h.remove(entry.unwrap()).unwrap();
    let p = SearchParams::new().with_ef(64);
    for qq in q.chunks_exact(8) {
        let r = h.search(qq, 10, &p, None).unwrap();
        assert_eq!(r.len(), 10);
        assert!(r.iter().all(|n| n.id != 7 && Some(n.id) != entry));
    }
    // A saved index with deletions opens in place and answers the same.
    let bytes = AlignedBytes::copy_from(&h.to_bytes());
    let view = HnswView::open(bytes.as_slice()).unwrap();
    assert_eq!(view.len(), 998);
    for qq in q.chunks_exact(8) {
        assert_eq!(view.search(qq, 10, &p, None).unwrap(), h.search(qq, 10, &p, None).unwrap());
    }
    let mut back = view.to_index();
    assert_eq!(back.to_bytes(), h.to_bytes());
    assert_eq!(back.add(&[0.5; 8]).unwrap(), vec![entry.unwrap()], "freed slots survive a round trip");
    // Deleting everything leaves an empty index that can grow again.
    let mut tiny = HnswIndex::new(2, Metric::L2, SMALL).unwrap();
    tiny.add(&[1.0, 0.0, 0.0, 1.0]).unwrap();
    tiny.remove(0).unwrap();
    tiny.remove(1).unwrap();
    assert_eq!(tiny.search(&[1.0, 1.0], 1, &p, None).unwrap_err(), Error::EmptyIndex);
    let b = AlignedBytes::copy_from(&tiny.to_bytes());
    assert_eq!(HnswView::open(b.as_slice()).unwrap().len(), 0);
    tiny.add(&[2.0, 2.0]).unwrap();
    assert_eq!(tiny.search(&[1.0, 1.0], 5, &p, None).unwrap().len(), 1);
}

#[test]
fn reordering_for_locality_renames_slots_and_changes_no_answer() {
    let data = mixture(31, 3000, 24, 20);
    let queries = mixture(32, 60, 24, 20);
    // Every variant: plain, with deletions (tombstones and freed slots), binary16, SQ8.
    for variant in ["plain", "deleted", "f16", "sq8"] {
        let mut h = HnswIndex::new(24, Metric::L2, SMALL).unwrap();
        h.add(&data).unwrap();
        match variant {
            "deleted" => (0..3000).step_by(7).for_each(|id| h.remove(id).unwrap()),
            "f16" => h.store_f16().unwrap(),
            "sq8" => h.quantize_sq8(4).unwrap(),
            _ => {}
        }
        let before = AlignedBytes::copy_from(&h.to_bytes());
        let original = HnswView::open(before.as_slice()).unwrap();
        let old_of_new = h.reorder_for_locality();
        let mut sorted = old_of_new.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..3000).collect::<Vec<u32>>(), "{variant}: not a permutation");
        assert_ne!(old_of_new, sorted, "{variant}: nothing moved");
        for (new, &old) in old_of_new.iter().enumerate() {
            assert_eq!(h.is_deleted(new as u32), original.is_deleted(old), "{variant}: slot {new}");
        }
        // The same graph renamed: the same answers, id for id and bit for bit.
        let p = SearchParams::new().with_ef(48);
        for q in queries.chunks_exact(24) {
            let want = original.search(q, 10, &p, None).unwrap();
            let got = h.search(q, 10, &p, None).unwrap();
            let renamed: Vec<(u32, u32)> =
                got.iter().map(|n| (old_of_new[n.id as usize], n.distance.to_bits())).collect();
            assert_eq!(
                renamed,
                want.iter().map(|n| (n.id, n.distance.to_bits())).collect::<Vec<_>>(),
                "{variant}"
            );
        }
        // Written with the rows as ids, the file answers in the original numbering.
        let ids = IdMap::from_ids(&old_of_new, |s| !h.is_deleted(s)).unwrap();
        let mut bytes = Vec::new();
        h.write_with_ids(&ids, &mut |b: &[u8]| -> Result<(), ()> {
            bytes.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        let bytes = AlignedBytes::copy_from(&bytes);
        let view = HnswView::open(bytes.as_slice()).unwrap();
        let stored = view.ids().unwrap();
        for q in queries.chunks_exact(24).take(10) {
            let got: Vec<u32> =
                view.search(q, 10, &p, None).unwrap().iter().map(|n| stored[n.id as usize]).collect();
            let want: Vec<u32> = original.search(q, 10, &p, None).unwrap().iter().map(|n| n.id).collect();
            assert_eq!(got, want, "{variant}: file");
        }
        // The index keeps working: freed slots are reused, new vectors (from the same clusters;
        // far outliers may be unreachable in any HNSW) are found.
        let extra = mixture(31, 3005, 24, 20)[3000 * 24..].to_vec();
        let new_ids = h.add(&extra).unwrap();
        for (row, id) in extra.chunks_exact(24).zip(new_ids) {
            assert_eq!(h.search(row, 1, &p, None).unwrap()[0].id, id, "{variant}: insert after reorder");
        }
    }
}
