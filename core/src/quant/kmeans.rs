//! k-means: seeded k-means++ initialisation, Lloyd iterations, deterministic empty-cluster
//! repair and sampling of large inputs. Used for IVF coarse centroids and PQ codebooks.
//!
//! Every step is a function of the data and the seed only: the assignment step may run on
//! several threads (`parallel` feature), but each point's assignment is computed on its own
//! and the centroid sums are accumulated in point order on one thread, so the parallel and
//! sequential paths return identical centroids, natively and in wasm.

use alloc::vec;
use alloc::vec::Vec;

use crate::rng::Rng;
use crate::validate::check_vectors;
use crate::{Error, Kernels, Result};

/// Below this dimension [`l2_distance`] uses one sequential loop instead of the kernel table:
/// PQ sub-vectors have 2–16 dimensions, where the 32-lane canonical kernel spends more time
/// reducing lanes than accumulating. Both paths are plain IEEE operations in a fixed order, so
/// either is identical on every target; the choice depends on the dimension only.
pub const SMALL_DIM: usize = 32;

/// Squared Euclidean distance: the kernel table for `dim ≥ SMALL_DIM`, a sequential loop below.
#[inline(always)]
pub fn l2_distance(kernels: &Kernels, a: &[f32], b: &[f32]) -> f32 {
    if a.len() < SMALL_DIM {
        let mut s = 0.0f32;
        for (x, y) in a.iter().zip(b) {
            let d = x - y;
            s += d * d;
        }
        s
    } else {
        kernels.l2sq(a, b)
    }
}

/// Parameters of one k-means run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KMeansParams {
    /// Number of clusters.
    pub k: usize,
    /// Most Lloyd iterations (it stops early once no assignment changes).
    pub iterations: usize,
    /// Seed of the initialisation and the sampling.
    pub seed: u64,
    /// Inputs larger than `max_points_per_centroid × k` points are sampled down to that many
    /// (0 = never sample). More points barely move the centroids and cost time linearly.
    pub max_points_per_centroid: usize,
}

impl KMeansParams {
    /// `k` clusters, 20 iterations, seed 0, at most 256 training points per centroid.
    pub const fn new(k: usize) -> Self {
        Self { k, iterations: 20, seed: 0, max_points_per_centroid: 256 }
    }
    /// Sets the seed.
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Sets the most Lloyd iterations.
    pub const fn with_iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }
    /// Sets the sampling cap (0 = use every point).
    pub const fn with_max_points_per_centroid(mut self, cap: usize) -> Self {
        self.max_points_per_centroid = cap;
        self
    }
}

/// Trains `params.k` centroids on row-major `data` of dimension `dim`; returns them row-major
/// (`k × dim`). Errors on `k = 0`, `k` above the number of points, a ragged buffer and
/// non-finite values.
pub fn kmeans(kernels: Kernels, data: &[f32], dim: usize, params: &KMeansParams) -> Result<Vec<f32>> {
    let n = check_vectors(data, dim)?;
    let k = params.k;
    if k == 0 {
        return Err(Error::InvalidParameter { name: "k", reason: "k-means needs at least one cluster" });
    }
    if k > n {
        return Err(Error::InvalidParameter {
            name: "k",
            reason: "k-means needs at least as many training points as clusters",
        });
    }
    let mut rng = Rng::new(params.seed);
    let cap = params.max_points_per_centroid.saturating_mul(k);
    let sampled;
    let points = if params.max_points_per_centroid > 0 && n > cap {
        sampled = sample_rows(data, dim, cap, &mut rng);
        &sampled[..]
    } else {
        data
    };
    let n = points.len() / dim;
    let mut centroids = init_plus_plus(&kernels, points, dim, k, &mut rng);
    let mut assignment = vec![u32::MAX; n];
    let mut previous = vec![u32::MAX; n];
    let mut distance = vec![0.0f32; n];
    for iteration in 0..params.iterations.max(1) {
        assign_into(&kernels, &centroids, dim, points, &mut assignment, &mut distance);
        let changed = assignment != previous;
        let mut counts = vec![0usize; k];
        for &a in &assignment {
            counts[a as usize] += 1;
        }
        repair_empty(&mut counts, &mut assignment, &mut distance);
        update_centroids(points, dim, &assignment, &counts, &mut centroids);
        if !changed && iteration > 0 {
            break;
        }
        core::mem::swap(&mut previous, &mut assignment);
    }
    Ok(centroids)
}

/// `count` distinct rows of `data`, chosen with `rng` (partial Fisher–Yates), kept in data
/// order.
pub(crate) fn sample_rows(data: &[f32], dim: usize, count: usize, rng: &mut Rng) -> Vec<f32> {
    let n = data.len() / dim;
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in 0..count {
        let j = i + rng.below((n - i) as u64) as usize;
        order.swap(i, j);
    }
    let chosen = &mut order[..count];
    chosen.sort_unstable();
    let mut out = Vec::with_capacity(count * dim);
    for &row in chosen.iter() {
        out.extend_from_slice(&data[row as usize * dim..(row as usize + 1) * dim]);
    }
    out
}

/// k-means++: the first centre uniformly, each next one with probability proportional to the
/// squared distance to the nearest centre chosen so far.
fn init_plus_plus(kernels: &Kernels, points: &[f32], dim: usize, k: usize, rng: &mut Rng) -> Vec<f32> {
    let n = points.len() / dim;
    let mut centroids = Vec::with_capacity(k * dim);
    let first = rng.below(n as u64) as usize;
    centroids.extend_from_slice(&points[first * dim..(first + 1) * dim]);
    let mut nearest: Vec<f32> =
        points.chunks_exact(dim).map(|p| l2_distance(kernels, p, &centroids)).collect();
    for _ in 1..k {
        // f64 sums: one fixed sequential order, so the draw is the same on every target.
        let total: f64 = nearest.iter().map(|&d| d as f64).sum();
        let chosen = if total > 0.0 {
            let target = rng.next_f64() * total;
            let mut acc = 0.0f64;
            let mut pick = n - 1;
            for (i, &d) in nearest.iter().enumerate() {
                acc += d as f64;
                if acc > target {
                    pick = i;
                    break;
                }
            }
            pick
        } else {
            // Fewer distinct points than clusters: duplicates are unavoidable.
            rng.below(n as u64) as usize
        };
        let start = centroids.len();
        centroids.extend_from_slice(&points[chosen * dim..(chosen + 1) * dim]);
        let centre = &centroids[start..];
        for (p, best) in points.chunks_exact(dim).zip(nearest.iter_mut()) {
            let d = l2_distance(kernels, p, centre);
            if d < *best {
                *best = d;
            }
        }
    }
    centroids
}

/// `k` row-major centroids of dimension `dim` transposed to `dim × k` (dimension-major), the
/// layout [`nearest_transposed`] reads.
pub(crate) fn transpose(centroids: &[f32], dim: usize) -> Vec<f32> {
    let k = centroids.len() / dim;
    let mut out = vec![0.0f32; centroids.len()];
    for (c, row) in centroids.chunks_exact(dim).enumerate() {
        for (d, &x) in row.iter().enumerate() {
            out[d * k + c] = x;
        }
    }
    out
}

/// [`nearest`] for short vectors, reading centroids transposed (`dim × k`, see [`transpose`]):
/// all `k` distances are accumulated side by side into `distances` (at least `k` long), one
/// dimension at a time, so the compiler vectorises across centroids; each distance still sums
/// its squared differences from zero in dimension order, exactly as the sequential loop of
/// [`l2_distance`] does, and the strict-less scan picks the same centroid as [`nearest`].
/// (Measured for k = 256, 8 dimensions, on Zen 3: about 460 ns a point, as fast as scoring
/// eight centroids per block and choosing per block; compiling it for AVX2 would give about
/// 320 ns, not worth a second, `unsafe`, path.)
#[inline]
pub(crate) fn nearest_transposed(
    transposed: &[f32],
    k: usize,
    x: &[f32],
    distances: &mut [f32],
) -> (u32, f32) {
    let Some(dist) = distances.get_mut(..k) else {
        return (0, f32::INFINITY);
    };
    dist.fill(0.0);
    for (&xd, row) in x.iter().zip(transposed.chunks_exact(k)) {
        for (a, &c) in dist.iter_mut().zip(row) {
            let t = xd - c;
            *a += t * t;
        }
    }
    let mut best = (0u32, f32::INFINITY);
    for (c, &d) in dist.iter().enumerate() {
        if d < best.1 {
            best = (c as u32, d);
        }
    }
    best
}

/// The centroid nearest to `x` (ties to the lower index) and its squared distance.
#[inline]
pub(crate) fn nearest(kernels: &Kernels, centroids: &[f32], dim: usize, x: &[f32]) -> (u32, f32) {
    let mut best = (0u32, f32::INFINITY);
    for (c, centre) in centroids.chunks_exact(dim).enumerate() {
        let d = l2_distance(kernels, x, centre);
        if d < best.1 {
            best = (c as u32, d);
        }
    }
    best
}

/// Assigns every row of `data` to its nearest centroid; fills `assignment` and `distance`
/// (one entry per row). Runs on all cores with the `parallel` feature, with identical results.
pub(crate) fn assign_into(
    kernels: &Kernels,
    centroids: &[f32],
    dim: usize,
    data: &[f32],
    assignment: &mut [u32],
    distance: &mut [f32],
) {
    let small = dim < SMALL_DIM;
    let transposed = if small { transpose(centroids, dim) } else { Vec::new() };
    let k = centroids.len() / dim;
    let one = |scores: &mut Vec<f32>, row: &[f32], a: &mut u32, d: &mut f32| {
        let (c, dist) = if small {
            nearest_transposed(&transposed, k, row, scores)
        } else {
            nearest(kernels, centroids, dim, row)
        };
        *a = c;
        *d = dist;
    };
    let scores = || if small { vec![0.0f32; k] } else { Vec::new() };
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        data.par_chunks_exact(dim)
            .zip(assignment.par_iter_mut())
            .zip(distance.par_iter_mut())
            .with_min_len(64)
            .for_each_init(scores, |s, ((row, a), d)| one(s, row, a, d));
    }
    #[cfg(not(feature = "parallel"))]
    {
        let mut s = scores();
        for ((row, a), d) in data.chunks_exact(dim).zip(assignment.iter_mut()).zip(distance.iter_mut()) {
            one(&mut s, row, a, d);
        }
    }
}

/// Gives every empty cluster one point: the point farthest from its centre within the largest
/// cluster (ties to the lower cluster, then the lower point), so the split is deterministic and
/// takes the point the large cluster represents worst.
fn repair_empty(counts: &mut [usize], assignment: &mut [u32], distance: &mut [f32]) {
    for empty in 0..counts.len() {
        if counts[empty] != 0 {
            continue;
        }
        let mut largest = 0;
        for (c, &count) in counts.iter().enumerate() {
            if count > counts[largest] {
                largest = c;
            }
        }
        if counts[largest] < 2 {
            // Only reachable with k > n, which `kmeans` rejects.
            return;
        }
        let mut farthest: Option<(usize, f32)> = None;
        for (p, (&a, &d)) in assignment.iter().zip(distance.iter()).enumerate() {
            if a as usize == largest && farthest.is_none_or(|(_, best)| d > best) {
                farthest = Some((p, d));
            }
        }
        if let Some((p, _)) = farthest {
            assignment[p] = empty as u32;
            distance[p] = 0.0;
            counts[largest] -= 1;
            counts[empty] = 1;
        }
    }
}

/// Each centroid becomes the mean of its points, summed in f64 in point order.
fn update_centroids(points: &[f32], dim: usize, assignment: &[u32], counts: &[usize], centroids: &mut [f32]) {
    let mut sums = vec![0.0f64; centroids.len()];
    for (row, &a) in points.chunks_exact(dim).zip(assignment) {
        let sum = &mut sums[a as usize * dim..(a as usize + 1) * dim];
        for (s, &x) in sum.iter_mut().zip(row) {
            *s += x as f64;
        }
    }
    for ((centre, sum), &count) in centroids.chunks_exact_mut(dim).zip(sums.chunks_exact(dim)).zip(counts) {
        if count == 0 {
            continue;
        }
        let inv = 1.0 / count as f64;
        for (c, &s) in centre.iter_mut().zip(sum) {
            *c = (s * inv) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per` points around each of `centres` well-separated centres.
    fn blobs(centres: usize, per: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = Rng::new(seed);
        let truth: Vec<f32> = (0..centres * dim).map(|_| rng.normal() as f32 * 100.0).collect();
        let mut data = Vec::new();
        for _ in 0..per {
            for c in truth.chunks_exact(dim) {
                data.extend(c.iter().map(|&x| x + rng.normal() as f32 * 0.5));
            }
        }
        (truth, data)
    }

    #[test]
    fn recovers_well_separated_clusters() {
        let dim = 8;
        let (truth, data) = blobs(10, 50, dim, 3);
        let centroids = kmeans(Kernels::best(), &data, dim, &KMeansParams::new(10).with_seed(9)).unwrap();
        for t in truth.chunks_exact(dim) {
            let (_, d) = nearest(&Kernels::scalar(), &centroids, dim, t);
            assert!(d < 1.0, "a true centre is {d} away from every centroid");
        }
    }

    #[test]
    fn is_deterministic_and_seed_dependent() {
        let dim = 40;
        let (_, data) = blobs(30, 20, dim, 4);
        let p = KMeansParams::new(16).with_seed(5);
        let a = kmeans(Kernels::best(), &data, dim, &p).unwrap();
        let b = kmeans(Kernels::scalar(), &data, dim, &p).unwrap();
        let c = kmeans(Kernels::best(), &data, dim, &p.with_seed(6)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn repairs_empty_clusters() {
        // Three distinct points, repeated: k-means++ must pick duplicate centres for k = 5 and
        // the repair must still leave every cluster with a point and a finite centre.
        let dim = 2;
        let mut data = Vec::new();
        for _ in 0..4 {
            data.extend_from_slice(&[0.0, 0.0, 10.0, 0.0, 0.0, 10.0]);
        }
        let centroids = kmeans(Kernels::best(), &data, dim, &KMeansParams::new(5)).unwrap();
        assert_eq!(centroids.len(), 10);
        assert!(centroids.iter().all(|x| x.is_finite()));
        let mut counts = [3usize, 0, 0];
        let mut assignment = [0u32, 0, 0];
        let mut distance = [1.0f32, 3.0, 2.0];
        repair_empty(&mut counts, &mut assignment, &mut distance);
        assert_eq!(counts, [1, 1, 1]);
        assert_eq!(assignment, [0, 1, 2], "the farthest points move first");
    }

    #[test]
    fn samples_large_inputs_deterministically() {
        let dim = 4;
        let (_, data) = blobs(4, 500, dim, 8);
        let p = KMeansParams::new(4).with_max_points_per_centroid(10).with_seed(1);
        let a = kmeans(Kernels::best(), &data, dim, &p).unwrap();
        assert_eq!(a, kmeans(Kernels::best(), &data, dim, &p).unwrap());
        assert_eq!(sample_rows(&data, dim, 40, &mut Rng::new(2)).len(), 40 * dim);
    }

    #[test]
    fn transposed_search_matches_the_row_major_one_bit_for_bit() {
        let mut rng = Rng::new(12);
        for (dim, k) in [(1, 3), (4, 16), (8, 256), (7, 21)] {
            let centroids: Vec<f32> = (0..k * dim).map(|_| rng.normal() as f32).collect();
            let t = transpose(&centroids, dim);
            for _ in 0..50 {
                let x: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
                let (a, da) = nearest(&Kernels::scalar(), &centroids, dim, &x);
                let (b, db) = nearest_transposed(&t, k, &x, &mut vec![0.0; k]);
                assert_eq!((a, da.to_bits()), (b, db.to_bits()));
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        let data = [1.0f32, 2.0, 3.0, 4.0];
        let k = Kernels::best();
        assert!(matches!(kmeans(k, &data, 2, &KMeansParams::new(0)), Err(Error::InvalidParameter { .. })));
        assert!(matches!(kmeans(k, &data, 2, &KMeansParams::new(3)), Err(Error::InvalidParameter { .. })));
        assert!(matches!(kmeans(k, &data, 3, &KMeansParams::new(1)), Err(Error::RaggedVectors { .. })));
        assert!(matches!(
            kmeans(k, &[1.0, f32::NAN], 2, &KMeansParams::new(1)),
            Err(Error::NonFiniteVector { .. })
        ));
    }
}
