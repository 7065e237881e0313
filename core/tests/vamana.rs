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

/// Squared l2 distance (the tests' own exact answer).
fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Recall@10 of `index` against brute force over `live` (slot id, vector); `slot_of` maps the
/// index's result ids to slot ids.
fn recall_over_live(
    index: &dyn VectorSearch,
    slot_of: &dyn Fn(u32) -> u32,
    live: &[(u32, Vec<f32>)],
    queries: &[f32],
    dim: usize,
    ef: usize,
) -> f64 {
    let mut hits = 0;
    let p = SearchParams::new().with_ef(ef);
    for q in queries.chunks_exact(dim) {
        let mut all: Vec<(f32, u32)> = live.iter().map(|(id, v)| (l2(q, v), *id)).collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let truth: Vec<u32> = all.iter().take(10).map(|x| x.1).collect();
        let got = index.search(q, 10, &p, None).unwrap();
        assert_eq!(got.len(), 10);
        hits += got.iter().filter(|n| truth.contains(&slot_of(n.id))).count();
    }
    hits as f64 / (queries.len() / dim * 10) as f64
}

/// Recall of a fresh seeded build over exactly the `live` rows.
fn fresh_recall(
    live: &[(u32, Vec<f32>)],
    queries: &[f32],
    dim: usize,
    params: VamanaParams,
    ef: usize,
) -> f64 {
    let rows: Vec<f32> = live.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let fresh = built(Metric::L2, &rows, dim, params);
    recall_over_live(&fresh, &|i| live[i as usize].0, live, queries, dim, ef)
}

/// FreshDiskANN's churn: delete 30 %, insert as many new vectors, consolidate — and again with
/// the inserts after consolidation (reusing the freed slots). Recall stays within one point
/// of a fresh build over the same vectors; deleted ids never come back, and after
/// consolidation no list names a freed slot.
#[test]
fn churn_keeps_recall_within_a_point_of_a_fresh_build() {
    let (n, dim) = (3000, 48);
    let params = VamanaParams { r: 16, l: 40, alpha: 1.2, seed: 11 };
    // Base rows, two rounds of inserts and held-out queries, all drawn from one mixture.
    let churn = n * 3 / 10;
    let all = common::mixture(21, n + 2 * churn + 100, dim, 30, 1.0);
    let (data, rest) = all.split_at(n * dim);
    let (inserts, queries) = rest.split_at(2 * churn * dim);
    let mut index = built(Metric::L2, data, dim, params);
    let mut live: Vec<(u32, Vec<f32>)> =
        data.chunks_exact(dim).enumerate().map(|(i, v)| (i as u32, v.to_vec())).collect();
    let mut rng = neardb_core::rng::Rng::new(23);
    for round in 0..2 {
        // Delete 30 % of the live records, chosen at random.
        for _ in 0..live.len() * 3 / 10 {
            let (id, _) = live.swap_remove(rng.below(live.len() as u64) as usize);
            index.remove(id).unwrap();
            assert!(index.remove(id).is_err(), "a second delete of {id} is an error");
        }
        assert_eq!(index.pending_deletes(), n * 3 / 10);
        let fresh_rows = &inserts[round * churn * dim..(round + 1) * churn * dim];
        let insert = |index: &mut VamanaIndex, live: &mut Vec<(u32, Vec<f32>)>| {
            let ids = index.add(fresh_rows).unwrap();
            live.extend(ids.into_iter().zip(fresh_rows.chunks_exact(dim).map(<[f32]>::to_vec)));
        };
        if round == 0 {
            // Inserts while the deleted nodes are still in the graph: new slots.
            let slots = index.slot_count();
            insert(&mut index, &mut live);
            assert_eq!(index.slot_count(), slots + n * 3 / 10);
            let found = recall_over_live(&index, &|i| i, &live, queries, dim, 64);
            assert!(found >= 0.9, "before consolidation: {found}");
            assert_eq!(index.consolidate(), n * 3 / 10);
        } else {
            // Consolidate first: the inserts then reuse the freed slots.
            assert_eq!(index.consolidate(), n * 3 / 10);
            let slots = index.slot_count();
            insert(&mut index, &mut live);
            assert_eq!(index.slot_count(), slots, "freed slots are reused");
        }
        assert_eq!(index.pending_deletes(), 0);
        assert_eq!(index.len(), live.len());
        let live_ids: std::collections::HashSet<u32> = live.iter().map(|x| x.0).collect();
        for id in 0..index.slot_count() as u32 {
            let links = index.neighbors(id);
            if live_ids.contains(&id) {
                assert!(!links.is_empty() && links.len() <= 16, "node {id}: {links:?}");
                assert!(links.iter().all(|l| live_ids.contains(l)), "node {id} links to a deleted slot");
            } else {
                assert!(links.is_empty(), "freed slot {id} keeps links");
            }
        }
        for ef in [10, 40] {
            let churned = recall_over_live(&index, &|i| i, &live, queries, dim, ef);
            let fresh = fresh_recall(&live, queries, dim, params, ef);
            assert!(churned >= fresh - 0.01, "round {round}, L {ef}: churned {churned}, fresh {fresh}");
        }
    }
}

#[test]
fn deleted_ids_leave_results_at_once_and_the_medoid_moves_on_consolidation() {
    let (n, dim) = (600, 8);
    let data = mixture(41, n, dim, 6);
    let mut index = built(Metric::L2, &data, dim, VamanaParams { r: 12, l: 32, alpha: 1.2, seed: 3 });
    let medoid = index.medoid().unwrap();
    let q = index.get(medoid).unwrap().to_vec();
    index.remove(medoid).unwrap();
    let hits = index.search(&q, 20, &SearchParams::new(), None).unwrap();
    assert_eq!(hits.len(), 20);
    assert!(hits.iter().all(|h| h.id != medoid));
    assert!(matches!(index.get(medoid), Err(Error::UnknownId { .. })));
    // Still the entry: deleted nodes stay traversable until consolidation.
    assert_eq!(index.medoid(), Some(medoid));
    assert_eq!(index.consolidate(), 1);
    let next = index.medoid().unwrap();
    assert_ne!(next, medoid);
    assert!(!index.is_deleted(next));
    assert_eq!(index.consolidate(), 0, "nothing left to consolidate");
    // Delete everything: searches find nothing, then one insert starts the graph again.
    for id in 0..n as u32 {
        if !index.is_deleted(id) {
            index.remove(id).unwrap();
        }
    }
    assert!(index.search(&q, 5, &SearchParams::new(), None).unwrap().is_empty());
    assert_eq!(index.consolidate(), n - 1);
    assert_eq!(index.medoid(), None);
    assert_eq!(index.search(&q, 5, &SearchParams::new(), None).unwrap_err(), Error::EmptyIndex);
    // An empty batch into a graph with no live node adds nothing (and does not panic).
    assert_eq!(index.add(&[]).unwrap(), Vec::<u32>::new());
    assert_eq!(index.medoid(), None);
    let ids = index.add(&data[..3 * dim]).unwrap();
    assert_eq!(ids.len(), 3);
    let hits = index.search(&data[dim..2 * dim], 3, &SearchParams::new(), None).unwrap();
    assert_eq!(hits[0].id, ids[1]);
    assert_eq!(hits.len(), 3);
}

/// A Vamana file is its own kind, opens in place with the same answers, and an owned copy of
/// it writes the same bytes — with pending deletes (the medoid among them) too.
#[test]
fn files_round_trip_byte_for_byte_and_answer_identically() {
    use neardb_core::format::{AlignedBytes, IndexKind};
    use neardb_core::{HnswView, VamanaView};
    let (n, dim) = (1500, 16);
    let data = mixture(51, n, dim, 15);
    let queries = mixture(52, 30, dim, 15);
    for metric in [Metric::L2, Metric::Cosine] {
        let mut index = built(metric, &data, dim, VamanaParams { r: 16, l: 40, alpha: 1.3, seed: 8 });
        for round in 0..2 {
            let bytes = AlignedBytes::copy_from(&index.to_bytes());
            let view = VamanaView::open(bytes.as_slice()).unwrap();
            assert_eq!(view.info().kind, IndexKind::Vamana);
            assert_eq!(view.params(), index.params());
            assert_eq!(view.medoid(), index.medoid());
            assert_eq!(view.len(), index.len());
            for id in [0, 7, n as u32 - 1] {
                assert_eq!(view.neighbors(id), index.neighbors(id));
            }
            let p = SearchParams::new().with_ef(24);
            for q in queries.chunks_exact(dim) {
                assert_eq!(view.search(q, 10, &p, None).unwrap(), index.search(q, 10, &p, None).unwrap());
            }
            assert_eq!(view.to_index().to_bytes(), bytes.as_slice(), "{metric}, round {round}");
            assert!(HnswView::open(bytes.as_slice()).is_err(), "an HNSW view refuses a Vamana file");
            // Delete a tenth, the medoid first: the file keeps them traversable.
            if round == 0 {
                index.remove(index.medoid().unwrap()).unwrap();
            }
            for id in (1..n as u32).step_by(10) {
                let _ = index.remove(id);
            }
        }
        // An owned copy of a file with pending deletes consolidates as the original does.
        let mut copy = VamanaView::open(AlignedBytes::copy_from(&index.to_bytes())).unwrap().to_index();
        assert_eq!(copy.pending_deletes(), index.pending_deletes());
        assert_eq!(copy.consolidate(), index.consolidate());
        assert_eq!(copy.to_bytes(), index.to_bytes());
    }
}

#[test]
fn binary16_and_sq8_storage_search_as_hnsw_does() {
    let (n, dim) = (2000, 24);
    let data = mixture(61, n, dim, 20);
    let queries = mixture(62, 60, dim, 20);
    let mut flat = FlatIndex::new(dim, Metric::L2).unwrap();
    flat.add(&data).unwrap();
    let params = VamanaParams { r: 20, l: 48, alpha: 1.2, seed: 1 };
    let mut half = VamanaIndex::new(dim, Metric::L2, params).unwrap();
    half.store_f16().unwrap();
    half.build(&data).unwrap();
    let mut sq = built(Metric::L2, &data, dim, params);
    sq.quantize_sq8(4).unwrap();
    let p = SearchParams::new().with_ef(96);
    for (name, index) in [("binary16", &half), ("sq8", &sq)] {
        let r = recall_at_10(index, &flat, &queries, dim, &p);
        assert!(r >= 0.95, "{name}: recall {r}");
        let bytes = neardb_core::format::AlignedBytes::copy_from(&index.to_bytes());
        let view = neardb_core::VamanaView::open(bytes.as_slice()).unwrap();
        for q in queries.chunks_exact(dim).take(10) {
            assert_eq!(view.search(q, 10, &p, None).unwrap(), index.search(q, 10, &p, None).unwrap());
        }
    }
    assert!(half.stores_f16() && half.get(0).is_err() && half.get_decoded(0).is_ok());
}

/// Forged Vamana files (checksums valid, structure lying) are refused at open, never a panic.
#[test]
fn forged_vamana_files_are_errors() {
    use neardb_core::format::{AlignedBytes, SectionKind};
    use neardb_core::VamanaView;
    let (n, dim) = (300, 8);
    let data = mixture(71, n, dim, 5);
    let index = built(Metric::L2, &data, dim, VamanaParams { r: 8, l: 20, alpha: 1.2, seed: 2 });
    let good = index.to_bytes();
    assert!(VamanaView::open(AlignedBytes::copy_from(&good)).is_ok());
    let word = |b: &mut Vec<u8>, at: usize, v: u32| b[at * 4..at * 4 + 4].copy_from_slice(&v.to_le_bytes());
    // Level-0 lists are three-byte words in a graph this small.
    let link =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at * 3..at * 3 + 3].copy_from_slice(&v.to_le_bytes()[..3]);
    type Edit = Box<dyn FnMut(SectionKind, &mut Vec<u8>) -> bool>;
    // An edit of one section's bytes, every section kept.
    fn in_section(kind: SectionKind, mut edit: impl FnMut(&mut Vec<u8>) + 'static) -> Edit {
        Box::new(move |k, b| {
            if k == kind {
                edit(b);
            }
            true
        })
    }
    let forgeries: Vec<(&str, Edit)> = vec![
        (
            "a neighbour id past the last node",
            in_section(SectionKind::GRAPH_LEVEL0, move |b| link(b, 1, n as u32)),
        ),
        ("a degree above R", in_section(SectionKind::GRAPH_LEVEL0, move |b| link(b, 0, 9))),
        ("a medoid past the last node", in_section(SectionKind::PARAMS, move |b| word(b, 3, n as u32))),
        ("R of 1", in_section(SectionKind::PARAMS, move |b| word(b, 0, 1))),
        ("alpha NaN", in_section(SectionKind::PARAMS, move |b| word(b, 2, f32::NAN.to_bits()))),
        ("a reserved field set", in_section(SectionKind::PARAMS, move |b| word(b, 5, 1))),
        ("link words of five bytes", in_section(SectionKind::PARAMS, move |b| word(b, 5, 5))),
        (
            "four-byte link words claimed over three-byte lists",
            in_section(SectionKind::PARAMS, move |b| word(b, 5, 0)),
        ),
        (
            "a graph sized for another R",
            in_section(SectionKind::GRAPH_LEVEL0, move |b| b.truncate(b.len() - 4 * n)),
        ),
        ("no graph", Box::new(|k, _| k != SectionKind::GRAPH_LEVEL0)),
    ];
    for (what, edit) in forgeries {
        let forged = common::rewrite(&good, &[], edit);
        assert!(VamanaView::open(forged.as_slice()).is_err(), "{what}: opened");
    }
    // Sections of HNSW's upper levels have no place in a Vamana file.
    let levels = vec![(SectionKind::NODE_LEVELS, vec![0u8; n.div_ceil(4) * 4])];
    let forged = common::rewrite(&good, &levels, |_, _| true);
    assert!(VamanaView::open(forged.as_slice()).is_err(), "upper-level sections: opened");
    // Every truncation is an error too.
    for len in (0..good.len()).step_by(97) {
        assert!(VamanaView::open(AlignedBytes::copy_from(&good[..len])).is_err(), "truncated to {len}");
    }
}

/// A small graph's lists are three-byte words in the file, a quarter fewer bytes than four-byte
/// words; files written with four-byte words (before packing) open and answer alike.
#[test]
fn packed_lists_and_four_byte_files_answer_alike() {
    use neardb_core::format::{AlignedBytes, FileInfo, OpenOptions, SectionKind};
    use neardb_core::VamanaView;
    // 301 nodes of 9 words: 8,127 bytes, so the section ends in a byte of padding.
    let (n, dim, r) = (301, 8, 8);
    let data = mixture(72, n, dim, 5);
    let index = built(Metric::L2, &data, dim, VamanaParams { r, l: 20, alpha: 1.2, seed: 3 });
    let packed = AlignedBytes::copy_from(&index.to_bytes());
    let info = FileInfo::parse(packed.as_slice(), OpenOptions::default()).unwrap();
    let level0 = info.section(packed.as_slice(), SectionKind::GRAPH_LEVEL0).unwrap().to_vec();
    let words = n * (r + 1);
    assert_eq!(level0.len(), (words * 3).div_ceil(4) * 4);
    // The same lists in four-byte words, the width field zero.
    let unpacked: Vec<u8> = level0[..words * 3]
        .chunks_exact(3)
        .flat_map(|w| u32::from_le_bytes([w[0], w[1], w[2], 0]).to_le_bytes())
        .collect();
    let four = common::rewrite(packed.as_slice(), &[], |k, b| {
        match k {
            SectionKind::GRAPH_LEVEL0 => *b = unpacked.clone(),
            SectionKind::PARAMS => b[20..24].copy_from_slice(&0u32.to_le_bytes()),
            _ => {}
        }
        true
    });
    assert!(four.as_slice().len() > packed.as_slice().len() + words - 4);
    let (a, b) = (VamanaView::open(packed.as_slice()).unwrap(), VamanaView::open(four.as_slice()).unwrap());
    let p = SearchParams::new().with_ef(32);
    for q in data.chunks_exact(dim).step_by(7) {
        let expected = index.search(q, 10, &p, None).unwrap();
        assert_eq!(a.search(q, 10, &p, None).unwrap(), expected);
        assert_eq!(b.search(q, 10, &p, None).unwrap(), expected);
    }
    for id in (0..n as u32).step_by(11) {
        assert_eq!(a.neighbors(id), index.neighbors(id));
        assert_eq!(b.neighbors(id), index.neighbors(id));
    }
    // Copied out of either file, the graph writes the packed file again.
    assert_eq!(a.to_index().to_bytes(), packed.as_slice());
    assert_eq!(b.to_index().to_bytes(), packed.as_slice());
    // The padding must be zero.
    let dirty = common::rewrite(packed.as_slice(), &[], |k, b| {
        if k == SectionKind::GRAPH_LEVEL0 {
            *b.last_mut().unwrap() = 1;
        }
        true
    });
    assert!(VamanaView::open(dirty.as_slice()).is_err());
}
