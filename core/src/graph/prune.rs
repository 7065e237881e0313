//! Neighbour selection: RobustPrune (Vamana, DiskANN §3) with its α, of which the HNSW
//! heuristic (Malkov & Yashunin, Algorithm 4) is the case α = 1.

use alloc::vec::Vec;

use super::{Cand, Graph, LinkWords};
use crate::{Metric, Neighbor};

/// Whether candidate `c` (at distance `c.d` from the base) survives a neighbour `r` already
/// kept, at distance `to_kept` from it: unless `α · d(c, r) < d(base, c)`. At α = 1 this is
/// hnswlib's test (keep when `d(c, r) ≥ d(base, c)`; multiplying by 1.0 is exact, so seeded
/// files are unchanged); α > 1 keeps more, longer edges (DiskANN's second pass).
#[inline(always)]
pub(crate) fn survives(c: Cand, to_kept: f32, alpha: f32) -> bool {
    alpha * to_kept >= c.d || to_kept.is_nan()
}

/// RobustPrune of a list gathered outside a build (the SSD index's sharded build merges the
/// lists a row has in its two shards) into `out`, as the Vamana build prunes: `cands` nearest
/// first (distance to the base), `dist(a, b)` the metric between two candidates' rows, rounds
/// of α up to `alpha`. Inner products of unit rows (`unit_rows`) are shifted to cosine
/// distances for α; of other rows, pruned at α = 1. A list of at most `max` is kept whole.
pub fn prune_neighbors(
    metric: Metric,
    unit_rows: bool,
    cands: &[Neighbor],
    max: usize,
    alpha: f32,
    out: &mut Vec<u32>,
    mut dist: impl FnMut(u32, u32) -> f32,
) {
    out.clear();
    if cands.len() <= max {
        out.extend(cands.iter().map(|c| c.id));
        return;
    }
    let inner = metric == Metric::InnerProduct;
    let shift = if inner && unit_rows { 1.0 } else { 0.0 };
    let alpha = if inner && !unit_rows { 1.0 } else { alpha };
    let cands: Vec<Cand> = cands.iter().map(|c| Cand { d: c.distance + shift, id: c.id }).collect();
    let mut kept = Vec::with_capacity(max);
    robust_prune_rounds(&cands, max, alpha, &mut kept, |c, k| shift + dist(c.id, k.id));
    out.extend(kept.iter().map(|c| c.id));
}

/// RobustPrune over `cands` sorted nearest first: walking them in order, keep each that
/// [`survives`] every one kept before it, up to `max`. `dist(c, r)` is the distance between
/// two candidates' vectors.
pub(crate) fn robust_prune(
    cands: &[Cand],
    max: usize,
    alpha: f32,
    out: &mut Vec<Cand>,
    mut dist: impl FnMut(Cand, Cand) -> f32,
) {
    out.clear();
    for &c in cands {
        if out.len() >= max {
            break;
        }
        if out.iter().all(|&r| survives(c, dist(c, r), alpha)) {
            out.push(c);
        }
    }
}

/// RobustPrune as DiskANN runs it: rounds at α = 1, 1.2, 1.44, … up to `alpha`, each taking
/// (nearest first) the candidates that no kept neighbour occludes at that round's α, until `max`
/// are kept. The first round keeps the diverse, long-reaching links the α = 1 rule keeps; later
/// rounds only fill the room left, so a larger α adds near links without displacing far ones.
/// (One round at a large α instead fills the list with the nearest candidates: at α = 2 that
/// is a k-NN graph, and searches from the medoid never leave its cluster.) At `alpha` = 1 it
/// keeps exactly what [`robust_prune`] keeps.
///
/// A candidate is occluded only by kept neighbours nearer the base than itself (earlier in
/// `cands`), as in DiskANN. Distances are computed lazily: a candidate is compared with those
/// only when its turn comes, and only until one occludes it at that round's α; a later round
/// resumes where the last comparison stopped. Every decision is the one the eager form (each
/// newly kept neighbour against every farther candidate at once) makes, but candidates the
/// list fills up before never cost a distance, and an occluded one costs only the comparisons
/// up to its first occluder.
pub(crate) fn robust_prune_rounds(
    cands: &[Cand],
    max: usize,
    alpha: f32,
    out: &mut Vec<Cand>,
    mut dist: impl FnMut(Cand, Cand) -> f32,
) {
    out.clear();
    let n = cands.len();
    // Per candidate: its distance to the nearest kept neighbour compared so far, and how many
    // of the kept neighbours (in the order kept) it has been compared with. `u32::MAX` marks
    // a candidate taken into the list.
    let mut nearest = alloc::vec![f32::INFINITY; n];
    let mut compared = alloc::vec![0u32; n];
    // Where in `cands` each kept neighbour stands.
    let mut kept_at: Vec<usize> = Vec::with_capacity(max);
    let mut round = 1.0f32;
    loop {
        for i in 0..n {
            if out.len() >= max {
                return;
            }
            if compared[i] == u32::MAX {
                continue;
            }
            let c = cands[i];
            let mut j = compared[i] as usize;
            // Occluded at this round's α by a neighbour compared before: skip without more.
            while round * nearest[i] >= c.d && j < out.len() {
                if kept_at[j] < i {
                    let d = dist(c, out[j]);
                    if d < nearest[i] {
                        nearest[i] = d;
                    }
                }
                j += 1;
            }
            compared[i] = j as u32;
            if round * nearest[i] >= c.d {
                compared[i] = u32::MAX;
                out.push(c);
                kept_at.push(i);
            }
        }
        if round >= alpha {
            return;
        }
        round = (round * 1.2).min(alpha);
    }
}

impl<L: ?Sized + LinkWords> Graph<'_, L> {
    /// Neighbour selection as HNSW does it (Malkov & Yashunin, Algorithm 4, as hnswlib) with
    /// RobustPrune's `alpha` (1 for HNSW): `cands` sorted nearest first, the result in `out`.
    /// Like hnswlib, fewer than `max` candidates are all kept, and exactly `max` are pruned
    /// like more. `buf` holds decoded rows while the build walks binary16 rows.
    pub fn select(&self, cands: &[Cand], max: usize, alpha: f32, out: &mut Vec<Cand>, buf: &mut Vec<f32>) {
        out.clear();
        if cands.len() < max {
            out.extend_from_slice(cands);
            return;
        }
        let Some(h) = self.half else {
            robust_prune(cands, max, alpha, out, |c, r| {
                self.metric.distance(&self.kernels, self.vector(c.id), self.vector(r.id))
            });
            return;
        };
        // Binary16 rows: each candidate is decoded once, behind the decoded rows of the ones
        // kept so far, and compared with those by the `f32` kernel. That is bit for bit the
        // binary16 kernel on the row, with cheaper arithmetic (simd128 has no conversion
        // instruction); a kept candidate's row simply stays where it was decoded.
        let dim = self.dim;
        buf.clear();
        for &c in cands {
            if out.len() >= max {
                break;
            }
            let kept = out.len() * dim;
            buf.truncate(kept);
            let s = c.id as usize * dim;
            h.kernels.decode_into(&h.rows[s..s + dim], buf);
            let (rows, v) = buf.split_at(kept);
            let good =
                rows.chunks_exact(dim).all(|r| survives(c, self.metric.distance(&self.kernels, v, r), alpha));
            if good {
                out.push(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn l2(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    /// Up to 61 random points (the last is the base), the others as candidates sorted nearest
    /// to it first, and a list size.
    fn random_case(rng: &mut Rng) -> (Vec<Vec<f32>>, Vec<Cand>, usize) {
        let dim = 1 + rng.below(8) as usize;
        let n = 1 + rng.below(60) as usize;
        let max = 1 + rng.below(24) as usize;
        let points: Vec<Vec<f32>> =
            (0..=n).map(|_| (0..dim).map(|_| rng.next_f32() * 2.0 - 1.0).collect()).collect();
        let base = &points[n];
        let mut cands: Vec<Cand> =
            (0..n as u32).map(|id| Cand { d: l2(base, &points[id as usize]), id }).collect();
        cands.sort_unstable_by(Cand::order);
        (points, cands, max)
    }

    /// The α-condition RobustPrune promises, on random point sets: every kept neighbour survives
    /// each one kept before it, and every dropped candidate (while there was room) is occluded
    /// by a kept one nearer the base — α · d(c, r) < d(base, c).
    /// The rounds keep what one round at α = 1 keeps, and every link kept at a larger α in the
    /// first round is kept too (a larger α only adds).
    #[test]
    fn rounds_keep_the_alpha_one_links_and_only_add() {
        let mut rng = Rng::new(11);
        for round in 0..300 {
            let (points, cands, max) = random_case(&mut rng);
            let d = |c: Cand, r: Cand| l2(&points[c.id as usize], &points[r.id as usize]);
            let (mut one, mut rounds_one, mut wide) = (Vec::new(), Vec::new(), Vec::new());
            robust_prune(&cands, max, 1.0, &mut one, d);
            robust_prune_rounds(&cands, max, 1.0, &mut rounds_one, d);
            assert_eq!(one, rounds_one, "round {round}: alpha 1");
            robust_prune_rounds(&cands, max, 2.0, &mut wide, d);
            assert!(one.iter().all(|c| wide.contains(c)), "round {round}: a larger alpha dropped a link");
            assert!(wide.len() >= one.len() && wide.len() <= max);
        }
    }

    /// The rounds as DiskANN writes them: each kept neighbour is compared at once with every
    /// remaining candidate not yet hopeless at the final α.
    fn eager_rounds(cands: &[Cand], max: usize, alpha: f32, dist: impl Fn(Cand, Cand) -> f32) -> Vec<Cand> {
        let (n, mut out) = (cands.len(), Vec::new());
        let mut nearest = alloc::vec![f32::INFINITY; n];
        let mut taken = alloc::vec![false; n];
        let mut round = 1.0f32;
        loop {
            for i in 0..n {
                if out.len() >= max {
                    return out;
                }
                if taken[i] || round * nearest[i] < cands[i].d {
                    continue;
                }
                taken[i] = true;
                out.push(cands[i]);
                for t in i + 1..n {
                    if !taken[t] && alpha * nearest[t] >= cands[t].d {
                        nearest[t] = nearest[t].min(dist(cands[t], cands[i]));
                    }
                }
            }
            if round >= alpha {
                return out;
            }
            round = (round * 1.2).min(alpha);
        }
    }

    #[test]
    fn lazy_rounds_decide_as_the_eager_ones_with_fewer_distances() {
        let mut rng = Rng::new(5);
        let (mut lazy_count, mut eager_count) = (0usize, 0usize);
        for round in 0..400 {
            let alpha = [1.0, 1.2, 1.5, 2.0][round % 4];
            let (points, cands, max) = random_case(&mut rng);
            let d = |c: Cand, r: Cand| l2(&points[c.id as usize], &points[r.id as usize]);
            let counted = core::cell::Cell::new(0usize);
            let want = eager_rounds(&cands, max, alpha, |c, r| {
                counted.set(counted.get() + 1);
                d(c, r)
            });
            eager_count += counted.replace(0);
            let mut got = Vec::new();
            robust_prune_rounds(&cands, max, alpha, &mut got, |c, r| {
                counted.set(counted.get() + 1);
                d(c, r)
            });
            lazy_count += counted.get();
            assert_eq!(got, want, "round {round}, alpha {alpha}");
        }
        assert!(lazy_count < eager_count, "lazy {lazy_count} vs eager {eager_count} distances");
    }

    #[test]
    fn robust_prune_keeps_exactly_the_alpha_condition() {
        let mut rng = Rng::new(7);
        for round in 0..300 {
            let alpha = [1.0, 1.2, 1.5, 2.0][round % 4];
            let (points, cands, max) = random_case(&mut rng);
            let d = |c: Cand, r: Cand| l2(&points[c.id as usize], &points[r.id as usize]);
            let mut out = Vec::new();
            robust_prune(&cands, max, alpha, &mut out, d);
            assert!(out.len() <= max && !out.is_empty());
            assert_eq!(out[0], cands[0], "the nearest candidate is always kept");
            for (i, &c) in out.iter().enumerate() {
                assert!(
                    out[..i].iter().all(|&r| alpha * d(c, r) >= c.d),
                    "round {round}: kept {c:?} is occluded"
                );
            }
            let last_considered = cands.iter().position(|&c| c == *out.last().unwrap()).unwrap();
            let full = out.len() == max;
            for &c in &cands[..if full { last_considered } else { cands.len() }] {
                if out.contains(&c) {
                    continue;
                }
                let kept_before: Vec<Cand> = out.iter().copied().filter(|r| r.before(c)).collect();
                assert!(
                    kept_before.iter().any(|&r| alpha * d(c, r) < c.d),
                    "round {round}: dropped {c:?} is occluded by no kept neighbour"
                );
            }
        }
    }
}
