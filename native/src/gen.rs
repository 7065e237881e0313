//! Seeded synthetic datasets, so the demo, the tests and the benchmarks need no download.
//!
//! `Clustered` is a Gaussian mixture whose clusters have their own power-law spectra over a
//! random subset of axes (anisotropic, SIFT-like: graph indexes need real effort, unlike on
//! isotropic blobs); `Uniform` is the worst case for every ANN method. Every output is a pure
//! function of the parameters: rows come in fixed chunks, each from its own derived stream, so
//! the result does not depend on the number of threads.

use neardb_core::rng::Rng;
use neardb_core::{Kernels, Metric};

/// Rows generated per independent stream.
const CHUNK_ROWS: usize = 10_000;

/// The shape of a synthetic dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    /// Anisotropic Gaussian mixture.
    Clustered,
    /// Uniform in `[0, 1)^dim`.
    Uniform,
}

impl std::str::FromStr for DataKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "clustered" => Ok(Self::Clustered),
            "uniform" => Ok(Self::Uniform),
            _ => Err(format!("unknown data kind {s:?}: expected clustered or uniform")),
        }
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct DataSpec {
    /// Distribution.
    pub kind: DataKind,
    /// Dimension.
    pub dim: usize,
    /// Metric the data is meant for; cosine data is normalised.
    pub metric: Metric,
    /// Number of mixture components (clustered only).
    pub clusters: usize,
    /// Seed of everything.
    pub seed: u64,
}

struct Cluster {
    center: Vec<f32>,
    /// Per-axis standard deviation (power law over a random axis order).
    spread: Vec<f32>,
}

/// A generator for base and query rows of one dataset.
pub struct Generator {
    spec: DataSpec,
    clusters: Vec<Cluster>,
    /// Cumulative mixture weights.
    cumulative: Vec<f64>,
    offset: Vec<f32>,
}

impl Generator {
    /// Draws the mixture (centres, spreads, weights) from the seed.
    pub fn new(spec: DataSpec) -> Self {
        let mut rng = Rng::derive(spec.seed, u64::MAX);
        let dim = spec.dim;
        let count = if spec.kind == DataKind::Clustered { spec.clusters.max(1) } else { 0 };
        let mut clusters = Vec::with_capacity(count);
        let mut weights = Vec::with_capacity(count);
        for _ in 0..count {
            let center: Vec<f32> = (0..dim).map(|_| (rng.normal() * 2.0) as f32).collect();
            let scale = 0.4 + rng.next_f64() * 0.8;
            let mut order: Vec<usize> = (0..dim).collect();
            for i in (1..dim).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let mut spread = vec![0.0f32; dim];
            for (rank, &axis) in order.iter().enumerate() {
                // A power-law spectrum plus a small isotropic floor.
                spread[axis] = (scale * ((rank + 1) as f64).powf(-0.6) + 0.02) as f32;
            }
            clusters.push(Cluster { center, spread });
            // Log-normal weights: some clusters much bigger than others.
            weights.push((rng.normal() * 0.8).exp());
        }
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        // Sentence embeddings share a common direction; cosine data gets one too.
        let offset = if spec.metric == Metric::Cosine {
            (0..dim).map(|_| (rng.normal() * 1.5) as f32).collect()
        } else {
            vec![0.0; dim]
        };
        Self { spec, clusters, cumulative, offset }
    }

    /// Rows `start..start + n` of the stream named `stream` (e.g. 0 = base, 1 = queries).
    pub fn rows(&self, stream: u64, start: usize, n: usize) -> Vec<f32> {
        let dim = self.spec.dim;
        let mut out = vec![0.0f32; n * dim];
        let fill = |first_row: usize, rows: &mut [f32]| {
            let chunk = first_row / CHUNK_ROWS;
            let mut rng = Rng::derive(self.spec.seed ^ (stream << 48), chunk as u64);
            // Skip to the row within the chunk by regenerating the rows before it.
            let skip = first_row % CHUNK_ROWS;
            let mut scratch = vec![0.0f32; dim];
            for _ in 0..skip {
                self.row(&mut rng, &mut scratch);
            }
            for r in rows.chunks_exact_mut(dim) {
                self.row(&mut rng, r);
            }
        };
        // Split on chunk boundaries so each piece continues exactly one stream.
        let mut pieces: Vec<(usize, &mut [f32])> = Vec::new();
        let mut rest = out.as_mut_slice();
        let mut row = start;
        while !rest.is_empty() {
            let take = (CHUNK_ROWS - row % CHUNK_ROWS).min(rest.len() / dim);
            let (head, tail) = rest.split_at_mut(take * dim);
            pieces.push((row, head));
            rest = tail;
            row += take;
        }
        #[cfg(feature = "parallel")]
        {
            use rayon::prelude::*;
            pieces.into_par_iter().for_each(|(r, p)| fill(r, p));
        }
        #[cfg(not(feature = "parallel"))]
        for (r, p) in pieces {
            fill(r, p);
        }
        out
    }

    fn row(&self, rng: &mut Rng, out: &mut [f32]) {
        match self.spec.kind {
            DataKind::Uniform => out.iter_mut().for_each(|x| *x = rng.next_f32()),
            DataKind::Clustered => {
                let u = rng.next_f64();
                let c = self.cumulative.partition_point(|&w| w < u).min(self.clusters.len() - 1);
                let cl = &self.clusters[c];
                for (((x, m), s), o) in out.iter_mut().zip(&cl.center).zip(&cl.spread).zip(&self.offset) {
                    *x = m + s * rng.normal() as f32 + o;
                }
                if self.spec.metric == Metric::Cosine {
                    Kernels::scalar().normalize(out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: DataKind, metric: Metric) -> DataSpec {
        DataSpec { kind, dim: 24, metric, clusters: 7, seed: 42 }
    }

    #[test]
    fn rows_do_not_depend_on_how_they_are_requested() {
        let g = Generator::new(spec(DataKind::Clustered, Metric::L2));
        let all = g.rows(0, 0, 25_000);
        let middle = g.rows(0, 9_990, 30);
        assert_eq!(&all[9_990 * 24..10_020 * 24], &middle[..]);
        assert_ne!(g.rows(1, 0, 5), g.rows(0, 0, 5), "queries come from another stream");
        let again = Generator::new(spec(DataKind::Clustered, Metric::L2)).rows(0, 0, 100);
        assert_eq!(&all[..100 * 24], &again[..]);
    }

    #[test]
    fn cosine_rows_are_unit_and_uniform_rows_in_range() {
        let g = Generator::new(spec(DataKind::Clustered, Metric::Cosine));
        for r in g.rows(0, 0, 50).chunks_exact(24) {
            let n: f32 = r.iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-5);
        }
        let u = Generator::new(spec(DataKind::Uniform, Metric::L2)).rows(0, 0, 100);
        assert!(u.iter().all(|x| (0.0..1.0).contains(x)));
    }
}
