//! The filtered-search planner: a cost model that chooses between walking a graph and scanning
//! the allowed ids exactly, and the statistics that say which plan ran and what it cost.
//!
//! Both plans spend their time in distance computations; they differ in how many they make
//! and in what each one costs beside the kernel. A scan scores every match, reading rows in id
//! order. A walk scores about `ef · degree` neighbours to fill its candidate list unfiltered,
//! and a filter that allows a fraction `s` of the ids stretches that by `1 / s` (the walk must
//! meet `ef` allowed nodes); each of its distances also pays a visited test, heap work and a
//! cache miss on the row. The constants below were fitted on this project's benchmark machine
//! (`cargo bench -p neardb --bench filtered`, see BENCHMARKS.md) and are in nanoseconds.

/// Which way a search found its answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Plan {
    /// A walk of the graph (or the index's own approximate search) with no filter.
    #[default]
    Walk,
    /// A graph walk through every node that kept only allowed ones as results.
    FilteredWalk,
    /// A graph walk that scored allowed nodes only, looking through disallowed neighbours to
    /// their own neighbours (two hops).
    TwoHopWalk,
    /// An exact scan of the allowed ids.
    Scan,
    /// A filtered walk that came back with fewer than `min(k, matches)` results, redone as a
    /// scan.
    WalkThenScan,
}

impl Plan {
    /// A short lowercase name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Walk => "walk",
            Self::FilteredWalk => "filtered-walk",
            Self::TwoHopWalk => "two-hop-walk",
            Self::Scan => "scan",
            Self::WalkThenScan => "walk-then-scan",
        }
    }
}

/// How a graph index answers a filtered search. `Auto` lets the cost model choose; the others
/// force one way (for measurements, or a caller who knows better).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FilterStrategy {
    /// The planner's choice.
    #[default]
    Auto,
    /// Exact scan of the allowed ids.
    Scan,
    /// Walk every node, keep the allowed ([`Plan::FilteredWalk`]).
    Walk,
    /// Score allowed nodes only, two hops through the rest ([`Plan::TwoHopWalk`]).
    TwoHop,
}

/// What one search did: the plan chosen, how many ids the filter was judged to allow, and the
/// work done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// The plan that produced the results.
    pub plan: Plan,
    /// Ids the filter allows (counted when the filter knows, else estimated from a sample);
    /// `None` without a filter.
    pub matches: Option<usize>,
    /// Graph nodes whose neighbour lists were read.
    pub expanded: u32,
    /// Distances computed (by the walk, the scan and any re-rank).
    pub distances: u32,
}

/// The fitted cost constants (ns).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CostModel {
    /// A scanned row: fixed part, and per dimension.
    pub scan_fixed: f64,
    pub scan_per_dim: f64,
    /// A walk's distance: fixed part (visited test, heaps, the miss on the row), per dimension.
    pub walk_fixed: f64,
    pub walk_per_dim: f64,
    /// Distances an unfiltered walk computes, per unit of `ef · degree`.
    pub walk_distances_per_ef_degree: f64,
    /// Selectivity below which the two-hop walk is considered.
    pub two_hop_below: f64,
    /// A two-hop walk, per unit of `ef` (its distances are a few per expansion whatever the
    /// selectivity; its time is mostly the filter tests of two hops of neighbours).
    pub two_hop_per_ef: f64,
    /// Least `selectivity · degree` (allowed nodes among a node's neighbours, or allowed
    /// neighbours per neighbour two hops out) at which the two-hop walk stays connected.
    /// Below it the allowed nodes two hops apart form islands, and recall stops rising with ef.
    pub two_hop_min_reach: f64,
}

/// Fitted on the benchmark machine (2-core AMD EPYC, AVX2), `f32` rows, by the calibration
/// bench over 32-, 128-, 384- and 1024-d data (BENCHMARKS.md, session 11): a scan costs
/// 10.9 + 0.141·dim ns a row, a walk 73.5 + 0.149·dim ns a distance, and a filtered walk computes
/// 0.141 · ef · degree / selectivity distances; a two-hop walk at selectivities 1–10 % took
/// 85–125 µs at ef 64 whatever the dimension (1.5 µs per unit of ef).
pub(crate) const COSTS: CostModel = CostModel {
    scan_fixed: 10.9,
    scan_per_dim: 0.141,
    walk_fixed: 73.5,
    walk_per_dim: 0.149,
    walk_distances_per_ef_degree: 0.141,
    two_hop_below: 0.2,
    two_hop_per_ef: 1500.0,
    // Measured on clustered-384-cos-100k (HNSW M 16, level-0 degree 32; BENCHMARKS.md, session
    // 12): at 10 % (reach 3.2) two-hop recall reaches 0.96 at ef 24 and 1.0 at ef 64; at 1 %
    // (reach 0.32) it stays at 0.67-0.76 from ef 16 to ef 128.
    two_hop_min_reach: 2.0,
};

impl CostModel {
    /// Estimated ns of a scan, a plain filtered walk and (below `two_hop_below`) a two-hop
    /// walk, for `matches` of `n` ids, candidate list `ef` and graph degree `degree`.
    fn costs(&self, matches: usize, n: usize, dim: usize, ef: usize, degree: usize) -> (f64, f64, f64) {
        let dim = dim as f64;
        let scan = matches as f64 * (self.scan_fixed + self.scan_per_dim * dim);
        let selectivity = (matches as f64 / n.max(1) as f64).clamp(f64::MIN_POSITIVE, 1.0);
        let degree = degree.max(1) as f64;
        // A walk never computes more distances than there are nodes' links to follow.
        let walk_distances =
            (self.walk_distances_per_ef_degree * ef as f64 * degree / selectivity).min(n as f64 * degree);
        let walk = walk_distances * (self.walk_fixed + self.walk_per_dim * dim);
        let two_hop = if selectivity < self.two_hop_below && selectivity * degree >= self.two_hop_min_reach {
            self.two_hop_per_ef * ef as f64
        } else {
            f64::INFINITY
        };
        (scan, walk, two_hop)
    }

    /// The plan for a filtered search: the cheapest of the scan and the two walks.
    pub fn plan(&self, matches: usize, n: usize, dim: usize, ef: usize, degree: usize) -> Plan {
        if matches == 0 || n == 0 {
            return Plan::Scan;
        }
        let (scan, walk, two_hop) = self.costs(matches, n, dim, ef, degree);
        if scan <= walk && scan <= two_hop {
            Plan::Scan
        } else if two_hop < walk {
            Plan::TwoHopWalk
        } else {
            Plan::FilteredWalk
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scans(matches: usize, n: usize, dim: usize, ef: usize, degree: usize) -> bool {
        COSTS.plan(matches, n, dim, ef, degree) == Plan::Scan
    }

    #[test]
    fn the_planner_scans_few_matches_and_walks_many() {
        let n = 100_000;
        for dim in [32, 128, 384, 1024] {
            assert!(scans(0, n, dim, 64, 32));
            assert!(scans(10, n, dim, 64, 32), "dim {dim}");
            assert!(scans(100, n, dim, 64, 32), "dim {dim}");
            assert!(!scans(n, n, dim, 64, 32), "dim {dim}");
            assert!(!scans(n / 2, n, dim, 64, 32), "dim {dim}");
        }
        // Between them the two-hop walk (at 10 %) and the plain one (at 50 %).
        assert_eq!(COSTS.plan(10_000, n, 384, 64, 32), Plan::TwoHopWalk);
        assert_eq!(COSTS.plan(50_000, n, 384, 64, 32), Plan::FilteredWalk);
        // Too few allowed nodes two hops out for the two-hop walk to stay connected: at 1 % of
        // a degree-32 graph it is never chosen, whatever the ef.
        for ef in [10, 16, 32, 64, 128, 512] {
            assert_ne!(COSTS.plan(1_000, n, 384, ef, 32), Plan::TwoHopWalk, "ef {ef}");
            assert_ne!(COSTS.plan(3_000, n, 128, ef, 32), Plan::TwoHopWalk, "ef {ef}");
        }
        // A larger candidate list makes the walk dearer, so the scan wins further up.
        let crossover = |ef: usize| (1..=n).step_by(50).find(|&m| !scans(m, n, 128, ef, 32));
        assert!(crossover(16) < crossover(256));
    }
}
