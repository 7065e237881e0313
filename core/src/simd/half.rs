//! Half-precision (IEEE binary16) rows and the distances from an `f32` query to them. Two users:
//! the parallel HNSW build walks a temporary binary16 copy (half the bytes per distance for a
//! build that waits on memory), and an index may *store* its vectors in binary16
//! (`HnswIndex::store_f16`): half the memory and file size, with vectors rounded by at most
//! 2^-11 relative.
//!
//! Conversions round to nearest even (F16C where the CPU has it, the same rounding in software
//! otherwise) and decoding is exact, so a distance to a binary16 row is computed by the `f32`
//! kernels' canonical order on the decoded values (`Kernels::dot_f16` and friends) and is
//! bit-identical on every ISA and in the browser.

use alloc::vec::Vec;

use crate::{Kernels, Metric};

/// The largest finite binary16 value.
pub const MAX: f32 = 65_504.0;

/// `x` rounded to binary16 (nearest, ties to even); overflow gives infinity.
pub fn to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x007f_ffff;
    if exp == 0xff {
        // Infinity or NaN (a NaN keeps a quiet payload bit).
        return sign | 0x7c00 | if man != 0 { 0x0200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal or zero: shift the full significand right, rounding to nearest even.
        if e < -10 {
            return sign;
        }
        let full = man | 0x0080_0000;
        let shift = (14 - e) as u32;
        let half = full >> shift;
        let rem = full & ((1 << shift) - 1);
        let mid = 1 << (shift - 1);
        let round = u32::from(rem > mid || (rem == mid && half & 1 == 1));
        return sign | (half + round) as u16;
    }
    let half = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    let round = u32::from(rem > 0x1000 || (rem == 0x1000 && half & 1 == 1));
    // A carry out of the significand correctly bumps the exponent (up to infinity).
    sign | (half + round) as u16
}

/// The `f32` value of binary16 `h` (exact).
pub fn from_f16(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x03ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalise the significand.
            let shift = man.leading_zeros() - 21;
            let man = (man << shift) & 0x03ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (man << 13)
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Distances from `f32` queries to binary16 rows under one metric, through a kernel table.
#[derive(Clone, Copy)]
pub struct HalfKernels {
    metric: Metric,
    kernels: Kernels,
    decode: fn(&[u16], &mut Vec<f32>),
}

impl HalfKernels {
    /// The fastest kernels this CPU runs for `metric`.
    pub fn best(metric: Metric) -> Self {
        Self::new(metric, Kernels::best())
    }

    /// The binary16 kernels of the table `kernels` (the scalar table gives the reference).
    pub fn new(metric: Metric, kernels: Kernels) -> Self {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        if kernels.isa() != crate::simd::Isa::Scalar && super::x86::f16c_supported() {
            return Self { metric, kernels, decode: super::x86::avx2::decode_f16 };
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if kernels.isa() == crate::simd::Isa::Simd128 {
            return Self { metric, kernels, decode: super::wasm::simd128::decode_f16 };
        }
        Self { metric, kernels, decode: decode_scalar }
    }

    /// Appends the `f32` values of the row `h` to `out` (exact).
    #[inline(always)]
    pub fn decode_into(&self, h: &[u16], out: &mut Vec<f32>) {
        (self.decode)(h, out)
    }

    /// The distance ([`Metric::distance`]'s meaning) from `q` to the row `h`: bit-identical to
    /// `Metric::distance` on the decoded row, on every ISA.
    #[inline(always)]
    pub fn distance(&self, q: &[f32], h: &[u16]) -> f32 {
        match self.metric {
            Metric::L2 => self.kernels.l2sq_f16(q, h),
            Metric::Cosine => 1.0 - self.kernels.dot_f16(q, h),
            Metric::InnerProduct => -self.kernels.dot_f16(q, h),
            Metric::L1 => self.kernels.l1_f16(q, h),
        }
    }
}

/// `data` rounded to binary16, or `None` when a value lies beyond binary16's range (the caller
/// then stays with `f32`).
pub fn encode(data: &[f32]) -> Option<Vec<u16>> {
    if data.iter().any(|x| x.abs() > MAX) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    encode_into(data, &mut out);
    Some(out)
}

/// Appends `data` rounded to binary16 to `out` (values beyond ±65504 become infinities).
pub fn encode_into(data: &[f32], out: &mut Vec<u16>) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if super::x86::f16c_supported() {
        super::x86::avx2::encode_f16(data, out);
        return;
    }
    out.extend(data.iter().map(|&x| to_f16(x)));
}

fn decode_scalar(h: &[u16], out: &mut Vec<f32>) {
    out.extend(h.iter().map(|&x| from_f16(x)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binary16_value_round_trips_and_rounding_is_to_nearest_even() {
        for h in 0..=u16::MAX {
            let x = from_f16(h);
            if x.is_nan() {
                assert!(from_f16(to_f16(x)).is_nan());
                continue;
            }
            assert_eq!(to_f16(x), h, "{h:#06x} = {x:e}");
        }
        // Halfway between 1 and the next binary16 (1 + 2^-10) rounds to the even one, 1.
        assert_eq!(from_f16(to_f16(1.0 + 2f32.powi(-11))), 1.0);
        assert_eq!(from_f16(to_f16(1.0 + 3.0 * 2f32.powi(-11))), 1.0 + 2.0 * 2f32.powi(-10));
        assert_eq!(to_f16(1.0e6), 0x7c00);
        assert_eq!(to_f16(-1.0e-9), 0x8000);
    }

    #[test]
    fn encoding_matches_the_software_rounding_and_rejects_out_of_range_values() {
        let data: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.7311).sin() * 10f32.powi(i % 9 - 6)).collect();
        let encoded = encode(&data).unwrap();
        let software: Vec<u16> = data.iter().map(|&x| to_f16(x)).collect();
        assert_eq!(encoded, software);
        let mut decoded = Vec::new();
        HalfKernels::best(Metric::L2).decode_into(&encoded, &mut decoded);
        let software: Vec<f32> = encoded.iter().map(|&h| from_f16(h)).collect();
        assert_eq!(decoded, software);
        assert!(encode(&[1.0, 70_000.0]).is_none());
    }

    #[test]
    fn distances_equal_the_f32_kernels_on_the_decoded_row_on_every_isa() {
        for dim in (1..=70).chain([127, 128, 129, 384, 1000]) {
            let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).cos() * 3.0).collect();
            // Values across binary16's range, subnormals and signed zeros included.
            let h: Vec<u16> =
                (0..dim).map(|i| ((i as u32 * 40_503) % 0x7c00) as u16 ^ ((i as u16 & 1) << 15)).collect();
            let decoded: Vec<f32> = h.iter().map(|&x| from_f16(x)).collect();
            for isa in crate::simd::Isa::ALL {
                let Some(k) = Kernels::for_isa(isa) else { continue };
                for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct, Metric::L1] {
                    let want = metric.distance(&Kernels::scalar(), &q, &decoded);
                    let got = HalfKernels::new(metric, k).distance(&q, &h);
                    assert_eq!(got.to_bits(), want.to_bits(), "{} {metric} dim {dim}", isa.name());
                }
            }
        }
    }

    #[test]
    fn distances_are_close_to_the_exact_ones() {
        let q: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).cos()).collect();
        let v: Vec<f32> = (0..100).map(|i| (i as f32 * 0.11).sin()).collect();
        let h = encode(&v).unwrap();
        let k = crate::Kernels::best();
        for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct, Metric::L1] {
            let exact = metric.distance(&k, &q, &v);
            let approx = HalfKernels::best(metric).distance(&q, &h);
            assert!((exact - approx).abs() <= 1e-3 * (1.0 + exact.abs()), "{metric}: {approx} vs {exact}");
        }
    }
}
