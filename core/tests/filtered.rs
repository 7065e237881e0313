//! Filtered search across the index kinds: exact answers equal brute force over the allowed
//! ids whatever form the filter takes, the graph walks keep their recall as the filter
//! tightens, results are never short, and the statistics say which plan ran.

mod common;

use common::mixture;
use neardb_core::{
    BinaryIndex, BinaryParams, Bitset, Filter, FilterStrategy, FlatIndex, HnswIndex, HnswParams, IdList,
    IvfPqIndex, IvfPqParams, Metric, Neighbor, Plan, Predicate, SearchParams, VamanaIndex, VamanaParams,
    VectorSearch,
};
use proptest::prelude::*;

const DIM: usize = 16;

/// Ids kept by a hash of the id, so the allowed ids are scattered, not clustered.
fn keeps(permille: u64, salt: u64) -> impl Fn(u32) -> bool + Sync + Copy {
    move |id: u32| {
        ((id as u64) ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40 & 1023 < permille * 1024 / 1000
    }
}

/// The k nearest allowed rows by brute force: every row scored, disallowed ones dropped.
fn brute_force(flat: &FlatIndex, q: &[f32], k: usize, keep: impl Fn(u32) -> bool) -> Vec<Neighbor> {
    let all = flat.search(q, flat.len(), &SearchParams::new(), None).unwrap();
    all.into_iter().filter(|n| keep(n.id)).take(k).collect()
}

fn hnsw(data: &[f32]) -> HnswIndex {
    let mut h = HnswIndex::new(DIM, Metric::L2, HnswParams { m: 12, ef_construction: 100, seed: 7 }).unwrap();
    h.add(data).unwrap();
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Exact answers (flat, and a graph index told to scan) are brute force over the allowed
    /// ids, for bitsets, id lists and predicates alike.
    #[test]
    fn exact_answers_are_brute_force_over_the_allowed_ids(
        n in 1usize..1500,
        permille in prop_oneof![Just(0u64), Just(1), 1u64..1000, Just(1000)],
        salt in any::<u64>(),
        k in 1usize..40,
        seed in any::<u64>(),
    ) {
        let data = mixture(seed, n, DIM, 8, 3.0);
        let query = mixture(seed ^ 1, 1, DIM, 8, 3.0);
        let keep = keeps(permille, salt);
        let mut flat = FlatIndex::new(DIM, Metric::L2).unwrap();
        flat.add(&data).unwrap();
        let h = hnsw(&data);
        let want = brute_force(&flat, &query, k, keep);
        let bits = Bitset::from_fn(n as u32, keep);
        let list = IdList::new((0..n as u32).filter(|&id| keep(id)).collect());
        let pred = Predicate(keep);
        let scan = SearchParams::new().with_filter_strategy(FilterStrategy::Scan);
        for filter in [&bits as &dyn Filter, &list, &pred] {
            let got = flat.search(&query, k, &scan, Some(filter)).unwrap();
            prop_assert_eq!(&got, &want);
            let mut out = Vec::new();
            let stats = h.search_with_stats(&query, k, &scan, Some(filter), &mut out).unwrap();
            prop_assert_eq!(&out, &want);
            prop_assert_eq!(stats.plan, Plan::Scan);
            prop_assert_eq!(stats.distances, bits.count());
        }
    }
}

#[test]
fn every_walk_keeps_recall_at_ten_percent_and_the_planner_picks_a_plan_per_selectivity() {
    let n = 12_000;
    let data = mixture(11, n, DIM, 24, 3.0);
    let queries = mixture(12, 100, DIM, 24, 3.0);
    let h = hnsw(&data);
    let mut v =
        VamanaIndex::new(DIM, Metric::L2, VamanaParams { r: 24, l: 64, alpha: 1.2, seed: 3 }).unwrap();
    v.build(&data).unwrap();
    let mut flat = FlatIndex::new(DIM, Metric::L2).unwrap();
    flat.add(&data).unwrap();
    let recall = |index: &dyn VectorSearch, p: &SearchParams, keep: &dyn Fn(u32) -> bool, bits: &Bitset| {
        let (mut hits, mut total) = (0, 0);
        let mut plans = Vec::new();
        for q in queries.chunks_exact(DIM) {
            let truth = brute_force(&flat, q, 10, keep);
            let mut got = Vec::new();
            plans.push(index.search_with_stats(q, 10, p, Some(bits), &mut got).unwrap().plan);
            assert_eq!(got.len(), truth.len(), "short result");
            assert!(got.iter().all(|g| keep(g.id)), "a filtered-out id was returned");
            hits += got.iter().filter(|g| truth.iter().any(|t| t.id == g.id)).count();
            total += truth.len();
        }
        (hits as f64 / total.max(1) as f64, plans)
    };
    let keep = keeps(100, 5);
    let bits = Bitset::from_fn(n as u32, keep);
    for (name, index) in [("hnsw", &h as &dyn VectorSearch), ("vamana", &v)] {
        // The two-hop walk scores far fewer nodes per step and needs a longer list for as much
        // recall (0.88 at ef 64 here, 0.97 at 128).
        for (strategy, plan, ef) in [
            (FilterStrategy::Walk, Plan::FilteredWalk, 64),
            (FilterStrategy::TwoHop, Plan::TwoHopWalk, 128),
            (FilterStrategy::Scan, Plan::Scan, 64),
        ] {
            let p = SearchParams::new().with_ef(ef).with_filter_strategy(strategy);
            let (r, plans) = recall(index, &p, &keep, &bits);
            assert!(r >= 0.95, "{name} {strategy:?} at 10 %: recall {r}");
            // A walk may be redone as a scan when it comes back short, never the reverse.
            assert!(
                plans.iter().all(|&p| p == plan || p == Plan::WalkThenScan),
                "{name} {strategy:?}: {plans:?}"
            );
        }
    }
    // The planner: a scan for a handful of matches, a walk when most ids match.
    let p = SearchParams::new().with_ef(64);
    let few = keeps(2, 9);
    let (_, plans) = recall(&h, &p, &few, &Bitset::from_fn(n as u32, few));
    assert!(plans.iter().all(|&p| p == Plan::Scan), "{plans:?}");
    let most = keeps(900, 9);
    let most_bits = Bitset::from_fn(n as u32, most);
    let (_, plans) = recall(&h, &p, &most, &most_bits);
    assert!(plans.iter().all(|&p| p == Plan::FilteredWalk), "{plans:?}");
    // (At ef 200 the model judges the 10,800 matches of 16-d rows cheaper to scan.)
    let long = SearchParams::new().with_ef(200).with_filter_strategy(FilterStrategy::Walk);
    let (r, _) = recall(&h, &long, &most, &most_bits);
    assert!(r >= 0.95, "90 %: recall {r}");
    // Without a filter the plan is the plain walk and no matches are reported.
    let stats = h.search_with_stats(&queries[..DIM], 10, &p, None, &mut Vec::new()).unwrap();
    assert_eq!((stats.plan, stats.matches), (Plan::Walk, None));
    assert!(stats.expanded > 0 && stats.distances >= stats.expanded);
}

#[test]
fn every_kind_gives_nothing_for_an_empty_filter_one_id_for_one_and_all_matches_below_k() {
    let n = 3000;
    let data = mixture(21, n, DIM, 12, 3.0);
    let query = mixture(22, 1, DIM, 12, 3.0);
    let mut flat = FlatIndex::new(DIM, Metric::L2).unwrap();
    flat.add(&data).unwrap();
    let h = hnsw(&data);
    let mut v =
        VamanaIndex::new(DIM, Metric::L2, VamanaParams { r: 16, l: 40, alpha: 1.2, seed: 3 }).unwrap();
    v.build(&data).unwrap();
    let mut ivf = IvfPqIndex::new(DIM, Metric::L2, IvfPqParams::new(32, 8)).unwrap();
    ivf.train(&data).unwrap();
    ivf.add(&data).unwrap();
    let mut bin = BinaryIndex::new(DIM, Metric::L2, BinaryParams::hyperplanes(64).with_lsh(4, 8)).unwrap();
    bin.train(&data).unwrap();
    bin.add(&data).unwrap();
    let kinds: [(&str, &dyn VectorSearch); 5] =
        [("flat", &flat), ("hnsw", &h), ("vamana", &v), ("ivfpq", &ivf), ("binary", &bin)];
    let strategies =
        [FilterStrategy::Auto, FilterStrategy::Walk, FilterStrategy::TwoHop, FilterStrategy::Scan];
    let some: Vec<u32> = vec![5, 700, 1999, 2500, 2999];
    for (name, index) in kinds {
        for strategy in strategies {
            let p = SearchParams::new().with_ef(32).with_nprobe(2).with_filter_strategy(strategy);
            let none = Bitset::new(n as u32);
            assert!(
                index.search(&query, 10, &p, Some(&none)).unwrap().is_empty(),
                "{name} {strategy:?}: none"
            );
            let one = IdList::new(vec![1234]);
            let got = index.search(&query, 10, &p, Some(&one)).unwrap();
            assert_eq!(got.iter().map(|g| g.id).collect::<Vec<_>>(), [1234], "{name} {strategy:?}: one");
            let listed = IdList::new(some.clone());
            let bits = Bitset::from_fn(n as u32, |id| some.contains(&id));
            // A predicate's count is only estimated: a search may not trust it to stop short.
            let pred = Predicate(|id: u32| some.contains(&id));
            for filter in [&listed as &dyn Filter, &bits, &pred] {
                let mut got: Vec<u32> =
                    index.search(&query, 10, &p, Some(filter)).unwrap().iter().map(|g| g.id).collect();
                got.sort_unstable();
                assert_eq!(got, some, "{name} {strategy:?}: fewer matches than k");
            }
        }
    }
}
