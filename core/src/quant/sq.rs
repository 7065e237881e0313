//! Scalar quantization to one byte per dimension, with a per-dimension range.
//!
//! Dimension `i` maps `[min_i, min_i + 255 step_i]` onto codes `0..=255`
//! (`x ≈ min_i + step_i c_i`); values outside the trained range clamp to its ends. A query is
//! *prepared* once per search so that scoring a code never decodes it: for L2 and L1 the kernel
//! reads `p = q − min` and the steps, for inner products the weights `w = q ∘ step` plus the
//! constant `⟨q, min⟩`. Four times less memory per vector than `f32`, and the SIMD kernels
//! (`Kernels::sq_*`) read a quarter of the bytes per distance.

use alloc::vec::Vec;

use crate::format::{FormatError, SectionKind};
use crate::validate::check_vectors;
use crate::{Error, Kernels, Metric, Result};

/// Codes per dimension.
const LEVELS: f32 = 255.0;

/// A trained per-dimension scalar quantizer.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarQuantizer {
    mins: Vec<f32>,
    steps: Vec<f32>,
}

impl ScalarQuantizer {
    /// Learns each dimension's range (minimum and maximum) from row-major `data`.
    pub fn train(data: &[f32], dim: usize) -> Result<Self> {
        check_vectors(data, dim)?;
        Self::train_rows(data.chunks_exact(dim))
    }

    /// Like [`train`](Self::train) over rows an index already validated (finite, all of one
    /// length), without gathering them into one buffer first.
    pub(crate) fn train_rows<R: AsRef<[f32]>>(mut rows: impl Iterator<Item = R>) -> Result<Self> {
        let first = rows.next().ok_or(Error::EmptyIndex)?;
        let mut mins = first.as_ref().to_vec();
        let mut maxs = mins.clone();
        for row in rows {
            for ((lo, hi), &x) in mins.iter_mut().zip(maxs.iter_mut()).zip(row.as_ref()) {
                *lo = lo.min(x);
                *hi = hi.max(x);
            }
        }
        let steps = mins.iter().zip(&maxs).map(|(&lo, &hi)| (hi - lo) / LEVELS).collect();
        Self::from_ranges(mins, steps)
    }

    /// A quantizer from stored ranges: every minimum and step finite, every step ≥ 0 and
    /// `min + 255 step` finite.
    pub fn from_ranges(mins: Vec<f32>, steps: Vec<f32>) -> Result<Self> {
        if mins.len() != steps.len() || mins.is_empty() {
            return Err(Error::InvalidParameter {
                name: "sq ranges",
                reason: "need one minimum and one step per dimension",
            });
        }
        let ok = mins.iter().zip(&steps).all(|(&lo, &st)| {
            crate::in_range(lo) && st >= 0.0 && crate::in_range(st) && crate::in_range(lo + LEVELS * st)
        });
        if !ok {
            return Err(Error::InvalidParameter {
                name: "sq ranges",
                reason: "minima and steps must be within ±2^50 and steps non-negative",
            });
        }
        Ok(Self { mins, steps })
    }

    /// Reads the `SQ_RANGES` section (`dim` minima then `dim` steps).
    pub fn from_section(ranges: &[f32], dim: usize) -> Result<Self, FormatError> {
        let kind = SectionKind::SQ_RANGES;
        if ranges.len() != 2 * dim {
            return Err(FormatError::SectionSize {
                kind,
                expected: (8 * dim) as u64,
                actual: (4 * ranges.len()) as u64,
            });
        }
        let (mins, steps) = ranges.split_at(dim);
        Self::from_ranges(mins.to_vec(), steps.to_vec())
            .map_err(|_| FormatError::InvalidSection { kind, reason: "non-finite or negative range" })
    }

    /// The `SQ_RANGES` section contents.
    pub fn to_section(&self) -> Vec<f32> {
        let mut out = self.mins.clone();
        out.extend_from_slice(&self.steps);
        out
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.mins.len()
    }

    /// Per-dimension minima.
    pub fn mins(&self) -> &[f32] {
        &self.mins
    }

    /// Per-dimension step sizes.
    pub fn steps(&self) -> &[f32] {
        &self.steps
    }

    /// Encodes one vector into `out` (both of the quantizer's dimension), rounding to the
    /// nearest code and clamping outside the range.
    pub fn encode_into(&self, v: &[f32], out: &mut [u8]) {
        for (((o, &x), &lo), &st) in out.iter_mut().zip(v).zip(&self.mins).zip(&self.steps) {
            *o = if st > 0.0 {
                // `as u8` saturates: below the range gives 0, above gives 255.
                ((x - lo) / st + 0.5) as u8
            } else {
                0
            };
        }
    }

    /// Encodes row-major vectors (their count × dim bytes).
    pub fn encode(&self, vectors: &[f32]) -> Vec<u8> {
        let dim = self.dim();
        let mut out = alloc::vec![0u8; vectors.len() / dim * dim];
        for (v, o) in vectors.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            self.encode_into(v, o);
        }
        out
    }

    /// Decodes one code into `out`.
    pub fn decode_into(&self, code: &[u8], out: &mut [f32]) {
        for (((o, &c), &lo), &st) in out.iter_mut().zip(code).zip(&self.mins).zip(&self.steps) {
            *o = lo + st * c as f32;
        }
    }

    /// Decodes row-major codes.
    pub fn decode(&self, codes: &[u8]) -> Vec<f32> {
        let dim = self.dim();
        let mut out = alloc::vec![0.0f32; codes.len() / dim * dim];
        for (c, o) in codes.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            self.decode_into(c, o);
        }
        out
    }

    /// The largest error encoding can make in dimension `i` for a value inside the range:
    /// half a step.
    pub fn max_error(&self, i: usize) -> f32 {
        self.steps.get(i).map_or(0.0, |s| s / 2.0)
    }
}

/// A query prepared for scoring codes of one quantizer under one metric. Reused across
/// searches (its buffers keep their capacity), so scoring allocates nothing.
///
/// Inner products score codes in integers: the weights `q ∘ step` are scaled to 16-bit
/// integers once per query, and each code costs one integer dot product (a multiply-add of
/// byte and 16-bit lanes, which every SIMD ISA has) instead of widening every byte to a float.
/// Integer sums are exact, so every ISA returns the same distance. The scale keeps
/// `255 · Σ |w_i|` below 2³¹, so no sum can overflow; the weights' rounding adds an error of at
/// most half a unit of the largest weight's 1/32767 per dimension, far below the codes' own.
#[derive(Clone, Debug, Default)]
pub struct SqQuery {
    metric: Option<Metric>,
    /// L2/L1: `q − min`.
    a: Vec<f32>,
    /// L2/L1: the steps.
    steps: Vec<f32>,
    /// Inner products: `round(q ∘ step · scale)`.
    weights: Vec<i16>,
    /// Inner products: `1 / scale` (0 when every weight is 0).
    unscale: f64,
    /// Inner products: `⟨q, min⟩`.
    offset: f32,
}

impl SqQuery {
    /// Prepares `q` (already validated and, for cosine, normalised) for `sq` under `metric`.
    pub fn prepare(&mut self, sq: &ScalarQuantizer, metric: Metric, kernels: &Kernels, q: &[f32]) {
        self.metric = Some(metric);
        self.a.clear();
        self.steps.clear();
        self.weights.clear();
        match metric {
            Metric::L2 | Metric::L1 => {
                self.a.extend(q.iter().zip(&sq.mins).map(|(&x, &lo)| x - lo));
                self.steps.extend_from_slice(&sq.steps);
                self.offset = 0.0;
            }
            Metric::Cosine | Metric::InnerProduct => {
                let w = |(&x, &st): (&f32, &f32)| f64::from(x) * f64::from(st);
                let (mut max, mut sum) = (0.0f64, 0.0f64);
                for x in q.iter().zip(&sq.steps).map(w) {
                    max = max.max(x.abs());
                    sum += x.abs();
                }
                // Rounding adds at most 1/2 per weight, hence the room of 128 per dimension.
                let room = (i32::MAX as f64 - 128.0 * q.len() as f64).max(0.0);
                let scale = if max > 0.0 && max.is_finite() && sum.is_finite() {
                    (32_767.0 / max).min(room / (255.0 * sum))
                } else {
                    0.0
                };
                // `as` saturates, and |x · scale| <= 32767 + 1/2 by the choice of scale.
                self.weights.extend(q.iter().zip(&sq.steps).map(w).map(|x| libm::round(x * scale) as i16));
                self.unscale = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                self.offset = kernels.dot(q, &sq.mins);
            }
        }
    }

    /// The distance (same meaning as [`Metric::distance`]) from the prepared query to the
    /// vector `code` encodes. NaN (overflow only) ranks as the farthest.
    #[inline(always)]
    pub fn distance(&self, kernels: &Kernels, code: &[u8]) -> f32 {
        let d = match self.metric {
            Some(Metric::L2) => kernels.sq_l2(&self.a, &self.steps, code),
            Some(Metric::L1) => kernels.sq_l1(&self.a, &self.steps, code),
            Some(Metric::Cosine) => 1.0 - (self.offset + self.dot(kernels, code)),
            Some(Metric::InnerProduct) => -(self.offset + self.dot(kernels, code)),
            None => f32::INFINITY,
        };
        if d.is_nan() {
            f32::INFINITY
        } else {
            d
        }
    }

    /// `⟨q ∘ step, code⟩` from the integer weights.
    #[inline(always)]
    fn dot(&self, kernels: &Kernels, code: &[u8]) -> f32 {
        (f64::from(kernels.sq_dot_i16(&self.weights, code)) * self.unscale) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn data(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..n * dim).map(|i| rng.normal() as f32 * (1.0 + (i % dim) as f32 / 8.0)).collect()
    }

    #[test]
    fn round_trip_error_is_at_most_half_a_step() {
        let dim = 37;
        let v = data(500, dim, 1);
        let sq = ScalarQuantizer::train(&v, dim).unwrap();
        let back = sq.decode(&sq.encode(&v));
        for (i, (x, y)) in v.iter().zip(&back).enumerate() {
            let bound = sq.max_error(i % dim) * 1.0001 + 1e-6;
            assert!((x - y).abs() <= bound, "dim {}: {x} vs {y} (bound {bound})", i % dim);
        }
        // Encode → decode → encode is the identity on codes.
        let codes = sq.encode(&v);
        assert_eq!(sq.encode(&sq.decode(&codes)), codes);
    }

    #[test]
    fn out_of_range_values_clamp_and_constant_dimensions_work() {
        let sq = ScalarQuantizer::train(&[0.0, 5.0, 1.0, 5.0], 2).unwrap();
        let mut c = [0u8; 2];
        sq.encode_into(&[-3.0, 5.0], &mut c);
        assert_eq!(c, [0, 0]);
        sq.encode_into(&[9.0, 5.0], &mut c);
        assert_eq!(c[0], 255);
        let mut out = [0.0f32; 2];
        sq.decode_into(&[255, 0], &mut out);
        assert_eq!(out, [1.0, 5.0]);
    }

    #[test]
    fn prepared_distances_match_decoded_vectors() {
        let dim = 48;
        let v = data(200, dim, 2);
        let q = data(1, dim, 3);
        let sq = ScalarQuantizer::train(&v, dim).unwrap();
        let k = Kernels::scalar();
        let codes = sq.encode(&v);
        let mut pq = SqQuery::default();
        for metric in [Metric::L2, Metric::L1, Metric::InnerProduct, Metric::Cosine] {
            pq.prepare(&sq, metric, &k, &q);
            for c in codes.chunks_exact(dim) {
                let mut dec = alloc::vec![0.0; dim];
                sq.decode_into(c, &mut dec);
                let want = metric.distance(&k, &q, &dec);
                let got = pq.distance(&k, c);
                // Inner products round their 16-bit weights: at most half a unit of the largest
                // weight's 1/32767 per code step, on top of float rounding.
                let weights = q.iter().zip(sq.steps()).map(|(x, s)| (x * s).abs());
                let rounding = match metric {
                    Metric::InnerProduct | Metric::Cosine => {
                        dim as f32 * 255.0 * 0.5 * weights.fold(0.0, f32::max) / 32_767.0
                    }
                    _ => 0.0,
                };
                let tolerance = rounding + 1e-3 * (1.0 + want.abs());
                assert!((got - want).abs() <= tolerance, "{metric}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn bad_ranges_and_sections_are_rejected() {
        assert!(ScalarQuantizer::from_ranges(alloc::vec![0.0], alloc::vec![-1.0]).is_err());
        assert!(ScalarQuantizer::from_ranges(alloc::vec![f32::NAN], alloc::vec![1.0]).is_err());
        assert!(ScalarQuantizer::from_ranges(alloc::vec![0.0], alloc::vec![f32::MAX]).is_err());
        assert!(ScalarQuantizer::from_ranges(alloc::vec![], alloc::vec![]).is_err());
        assert!(ScalarQuantizer::from_section(&[0.0, 1.0, 2.0], 2).is_err());
        assert!(ScalarQuantizer::train(&[], 3).is_err());
        assert!(ScalarQuantizer::train(&[1.0, f32::NAN, 0.0], 3).is_err());
    }
}
