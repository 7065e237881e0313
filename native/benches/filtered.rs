//! Calibrates the filtered-search planner's cost model (`neardb_core::plan`) on this machine:
//! the time of an exact scan per allowed row and of a graph walk per distance, each as a fixed
//! part plus a part per dimension, and how many distances a filtered walk computes for its
//! `ef`, degree and selectivity. Prints the fitted constants and, for each dimension and
//! selectivity, which plan was fastest against which the model picks.
//!
//! `cargo bench -p neardb --bench filtered` (release; run alone on the machine).

use std::time::Instant;

use neardb::gen::{DataKind, DataSpec, Generator};
use neardb::{Bitset, FilterStrategy, HnswIndex, HnswParams, Metric, Plan, SearchParams, VectorSearch};

const QUERIES: usize = 200;
const EF: usize = 64;
const SELECTIVITIES: [f64; 6] = [0.001, 0.01, 0.03, 0.1, 0.3, 1.0];

struct Point {
    dim: usize,
    selectivity: f64,
    /// Mean µs per query and mean distances, per strategy.
    scan: (f64, f64),
    walk: (f64, f64, f64),
    two_hop: (f64, f64, f64),
    auto: (f64, Plan),
    n: usize,
    degree: usize,
}

fn keep(selectivity: f64) -> impl Fn(u32) -> bool {
    let bound = (selectivity * 1_000_000.0) as u64;
    move |id: u32| (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1_000_000 < bound
}

/// Mean µs per query, mean distances, mean recall against the scan's answers, and the
/// most common plan.
fn run(
    index: &HnswIndex,
    queries: &[f32],
    dim: usize,
    filter: &Bitset,
    strategy: FilterStrategy,
    truth: Option<&[Vec<u32>]>,
) -> (f64, f64, f64, Plan, Vec<Vec<u32>>) {
    let p = SearchParams::new().with_ef(EF).with_filter_strategy(strategy);
    let mut out = Vec::new();
    let mut answers = Vec::new();
    let mut distances = 0u64;
    let mut plans = Vec::new();
    // One warm pass, then the best of three timed passes.
    for q in queries.chunks_exact(dim) {
        let s = index.search_with_stats(q, 10, &p, Some(filter), &mut out).expect("search");
        distances += s.distances as u64;
        plans.push(s.plan);
        answers.push(out.iter().map(|n| n.id).collect::<Vec<u32>>());
    }
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        for q in queries.chunks_exact(dim) {
            index.search_into(q, 10, &p, Some(filter), &mut out).expect("search");
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let nq = queries.len() / dim;
    let recall = truth.map_or(1.0, |t| {
        let hits: usize =
            t.iter().zip(&answers).map(|(t, a)| a.iter().filter(|id| t.contains(id)).count()).sum();
        hits as f64 / t.iter().map(|t| t.len()).sum::<usize>().max(1) as f64
    });
    let plan =
        plans.iter().copied().max_by_key(|p| plans.iter().filter(|q| *q == p).count()).unwrap_or_default();
    (best / nq as f64 * 1e6, distances as f64 / nq as f64, recall, plan, answers)
}

/// Least squares of `y = a + b x`.
fn fit(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), &(x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let sxy: f64 = points.iter().map(|&(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = points.iter().map(|&(x, _)| (x - mx) * (x - mx)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (my - b * mx, b)
}

fn main() {
    let mut points = Vec::new();
    for (dim, n) in [(32, 100_000), (128, 100_000), (384, 50_000), (1024, 20_000)] {
        let spec = DataSpec { kind: DataKind::Clustered, dim, metric: Metric::L2, clusters: 100, seed: 5 };
        let g = Generator::new(spec);
        let base = g.rows(0, 0, n);
        let queries = g.rows(1, 0, QUERIES);
        let mut index = HnswIndex::new(dim, Metric::L2, HnswParams { m: 16, ef_construction: 100, seed: 1 })
            .expect("index");
        index.add_parallel(&base).expect("build");
        let degree = 2 * 16;
        for selectivity in SELECTIVITIES {
            let bits = Bitset::from_fn(n as u32, keep(selectivity));
            let (scan_us, scan_d, _, _, truth) =
                run(&index, &queries, dim, &bits, FilterStrategy::Scan, None);
            let (walk_us, walk_d, walk_r, _, _) =
                run(&index, &queries, dim, &bits, FilterStrategy::Walk, Some(&truth));
            let (hop_us, hop_d, hop_r, _, _) =
                run(&index, &queries, dim, &bits, FilterStrategy::TwoHop, Some(&truth));
            let (auto_us, _, _, auto_plan, _) = run(&index, &queries, dim, &bits, FilterStrategy::Auto, None);
            let p = Point {
                dim,
                selectivity,
                scan: (scan_us, scan_d),
                walk: (walk_us, walk_d, walk_r),
                two_hop: (hop_us, hop_d, hop_r),
                auto: (auto_us, auto_plan),
                n,
                degree,
            };
            println!(
                "dim {:>4} n {:>6} sel {:>6}: scan {:>8.1} µs ({:>7.0} d) | walk {:>8.1} µs ({:>7.0} d, recall {:.3}) | two-hop {:>8.1} µs ({:>7.0} d, recall {:.3}) | auto {:>8.1} µs ({})",
                p.dim, p.n, p.selectivity, p.scan.0, p.scan.1, p.walk.0, p.walk.1, p.walk.2, p.two_hop.0,
                p.two_hop.1, p.two_hop.2, p.auto.0, p.auto.1.name()
            );
            points.push(p);
        }
    }
    // Per-distance costs in ns against the dimension.
    let scan: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.scan.1 > 1000.0)
        .map(|p| (p.dim as f64, p.scan.0 * 1e3 / p.scan.1))
        .collect();
    let walk: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.selectivity >= 0.3)
        .map(|p| (p.dim as f64, p.walk.0 * 1e3 / p.walk.1))
        .collect();
    let (sa, sb) = fit(&scan);
    let (wa, wb) = fit(&walk);
    // Distances of a walk per ef · degree / selectivity (where the walk is not capped by n).
    let ratios: Vec<f64> = points
        .iter()
        .filter(|p| p.selectivity >= 0.1)
        .map(|p| p.walk.1 / (EF as f64 * p.degree as f64 / p.selectivity))
        .collect();
    let per_ef_degree = ratios.iter().sum::<f64>() / ratios.len().max(1) as f64;
    println!("scan ns per row      = {sa:.2} + {sb:.4} · dim");
    println!("walk ns per distance = {wa:.2} + {wb:.4} · dim");
    println!(
        "walk distances       = {per_ef_degree:.3} · ef · degree / selectivity (from {} points)",
        ratios.len()
    );
}
