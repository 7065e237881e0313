//! AVX2 kernels: the 32 canonical lanes live in four 8-wide registers.
//!
//! The public functions are safe wrappers that are only reachable through
//! `Kernels::avx2()`, which returns `None` unless the CPU supports AVX2.

use core::arch::x86_64::*;

/// Sums the 8 lanes of `u` in the canonical tree order (`v = lo + hi`, `w = v[0..2] + v[2..4]`,
/// `w[0] + w[1]`).
#[target_feature(enable = "avx2")]
fn reduce8(u: __m256) -> f32 {
    let v = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps::<1>(u));
    let w = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(w, _mm_shuffle_ps::<0b01>(w, w)))
}

/// A canonical-order kernel from an `f32` slice to rows of `$elem`, eight of which `$load`
/// widens to eight floats (it runs inside the step's `unsafe` block); `$features` are the CPU
/// features it needs.
macro_rules! avx2_kernel {
    ($name:ident, $imp:ident, $elem:ty, $zero:expr, $features:literal,
     |$p:ident| $load:expr, |$x:ident, $y:ident| $term:expr) => {
        #[target_feature(enable = $features)]
        fn $imp(a: &[f32], b: &[$elem]) -> f32 {
            let n = a.len().min(b.len());
            let body = n - n % 32;
            let mut acc = [_mm256_setzero_ps(); 4];
            let step = |acc: &mut [__m256; 4], pa: *const f32, pb: *const $elem| {
                for (r, lane) in acc.iter_mut().enumerate() {
                    let $p = pb.wrapping_add(8 * r);
                    // SAFETY: callers pass pointers to at least 32 readable elements each; the
                    // loads are unaligned.
                    let ($x, $y) = unsafe { (_mm256_loadu_ps(pa.add(8 * r)), $load) };
                    *lane = _mm256_add_ps(*lane, $term);
                }
            };
            let mut i = 0;
            while i < body {
                // SAFETY: i + 32 <= body <= n, and both slices hold at least n elements.
                step(&mut acc, unsafe { a.as_ptr().add(i) }, unsafe { b.as_ptr().add(i) });
                i += 32;
            }
            if body < n {
                // Zero-padding the tail to a full block reproduces the scalar reference exactly
                // (binary16 zero is the bit pattern 0).
                let mut ta = [0.0f32; 32];
                let mut tb: [$elem; 32] = [$zero; 32];
                ta[..n - body].copy_from_slice(&a[body..n]);
                tb[..n - body].copy_from_slice(&b[body..n]);
                step(&mut acc, ta.as_ptr(), tb.as_ptr());
            }
            let u = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
            reduce8(u)
        }

        pub(in crate::simd) fn $name(a: &[f32], b: &[$elem]) -> f32 {
            // SAFETY: the kernel tables store this function only after checking the CPU has
            // `$features` (`Kernels::avx2` through `avx2_supported`, `Kernels::with_f16c`
            // through `f16c_supported`).
            unsafe { $imp(a, b) }
        }
    };
    // The f32 kernels.
    ($name:ident, $imp:ident, |$x:ident, $y:ident| $term:expr) => {
        avx2_kernel!($name, $imp, f32, 0.0, "avx2", |p| _mm256_loadu_ps(p), |$x, $y| $term);
    };
}

avx2_kernel!(dot, dot_imp, |x, y| _mm256_mul_ps(x, y));
avx2_kernel!(l2sq, l2sq_imp, |x, y| {
    let d = _mm256_sub_ps(x, y);
    _mm256_mul_ps(d, d)
});
avx2_kernel!(l1, l1_imp, |x, y| _mm256_andnot_ps(_mm256_set1_ps(-0.0), _mm256_sub_ps(x, y)));

/// Eight codes widened to eight floats.
#[target_feature(enable = "avx2")]
fn widen8(pc: *const u8) -> __m256 {
    // SAFETY: callers pass a pointer to at least 8 readable bytes; loadl reads exactly 8.
    let b = unsafe { _mm_loadl_epi64(pc as *const __m128i) };
    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b))
}

/// Scalar-quantized kernels: `$term` sees the query stream(s) and the widened codes `$y` of
/// eight lanes; blocks and tail as the f32 kernels, so the sums equal the scalar reference.
macro_rules! avx2_sq_kernel {
    ($name:ident, $imp:ident, |$p:ident, $s:ident, $y:ident| $term:expr) => {
        #[target_feature(enable = "avx2")]
        fn $imp(p: &[f32], s: &[f32], c: &[u8]) -> f32 {
            let n = p.len().min(s.len()).min(c.len());
            let body = n - n % 32;
            let mut acc = [_mm256_setzero_ps(); 4];
            let step = |acc: &mut [__m256; 4], pp: *const f32, ps: *const f32, pc: *const u8| {
                for (r, lane) in acc.iter_mut().enumerate() {
                    // SAFETY: callers pass pointers to at least 32 readable floats and bytes.
                    let ($p, $s, $y) = unsafe {
                        (
                            _mm256_loadu_ps(pp.add(8 * r)),
                            _mm256_loadu_ps(ps.add(8 * r)),
                            widen8(pc.add(8 * r)),
                        )
                    };
                    *lane = _mm256_add_ps(*lane, $term);
                }
            };
            let mut i = 0;
            while i < body {
                // SAFETY: i + 32 <= body <= n, and all three slices hold at least n elements.
                step(&mut acc, unsafe { p.as_ptr().add(i) }, unsafe { s.as_ptr().add(i) }, unsafe {
                    c.as_ptr().add(i)
                });
                i += 32;
            }
            if body < n {
                let mut tp = [0.0f32; 32];
                let mut ts = [0.0f32; 32];
                let mut tc = [0u8; 32];
                tp[..n - body].copy_from_slice(&p[body..n]);
                ts[..n - body].copy_from_slice(&s[body..n]);
                tc[..n - body].copy_from_slice(&c[body..n]);
                step(&mut acc, tp.as_ptr(), ts.as_ptr(), tc.as_ptr());
            }
            let u = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
            reduce8(u)
        }

        pub(in crate::simd) fn $name(p: &[f32], s: &[f32], c: &[u8]) -> f32 {
            // SAFETY: only stored in a kernel table by `Kernels::avx2`, after `avx2_supported()`
            // confirmed the CPU has AVX2.
            unsafe { $imp(p, s, c) }
        }
    };
}

avx2_sq_kernel!(sq_l2, sq_l2_imp, |p, s, y| {
    let d = _mm256_sub_ps(p, _mm256_mul_ps(s, y));
    _mm256_mul_ps(d, d)
});
avx2_sq_kernel!(sq_l1, sq_l1_imp, |p, s, y| _mm256_andnot_ps(
    _mm256_set1_ps(-0.0),
    _mm256_sub_ps(p, _mm256_mul_ps(s, y))
));
#[target_feature(enable = "avx2")]
fn sq_dot_i16_imp(w: &[i16], c: &[u8]) -> i32 {
    let n = w.len().min(c.len());
    let body = n - n % 32;
    let mut acc = [_mm256_setzero_si256(); 2];
    let mut i = 0;
    while i < body {
        for (r, lane) in acc.iter_mut().enumerate() {
            let at = i + 16 * r;
            // SAFETY: at + 16 <= body <= n, and both slices hold at least n elements; the loads
            // are unaligned.
            let (codes, weights) = unsafe {
                (
                    _mm256_cvtepu8_epi16(_mm_loadu_si128(c.as_ptr().add(at) as *const __m128i)),
                    _mm256_loadu_si256(w.as_ptr().add(at) as *const __m256i),
                )
            };
            // Codes are at most 255, so no pair sum of vpmaddwd can overflow.
            *lane = _mm256_add_epi32(*lane, _mm256_madd_epi16(codes, weights));
        }
        i += 32;
    }
    let mut lanes = [0i32; 8];
    // SAFETY: `lanes` holds 8 i32, one 256-bit unaligned store.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, _mm256_add_epi32(acc[0], acc[1])) };
    let sum = lanes.iter().fold(0i32, |a, &b| a.wrapping_add(b));
    sum.wrapping_add(super::super::scalar::sq_dot_i16(&w[body..n], &c[body..n]))
}

pub(in crate::simd) fn sq_dot_i16(w: &[i16], c: &[u8]) -> i32 {
    // SAFETY: only stored in a kernel table by `Kernels::avx2` or `Kernels::avx512`, after
    // the CPU was found to have AVX2 (every AVX-512 CPU has it).
    unsafe { sq_dot_i16_imp(w, c) }
}

/// Binary16 rows against an `f32` query (`simd::half`): eight halves widened per `vcvtph2ps`
/// (exact), then the canonical lanes, order and tree of the `f32` kernels, so each result is
/// bit-identical to the `f32` kernel on the decoded row, on every ISA.
macro_rules! f16c_kernel {
    ($name:ident, $imp:ident, |$x:ident, $y:ident| $term:expr) => {
        avx2_kernel!(
            $name,
            $imp,
            u16,
            0,
            "avx2,f16c",
            |p| _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)),
            |$x, $y| $term
        );
    };
}

f16c_kernel!(dot_f16, dot_f16_imp, |x, y| _mm256_mul_ps(x, y));
f16c_kernel!(l2sq_f16, l2sq_f16_imp, |x, y| {
    let d = _mm256_sub_ps(x, y);
    _mm256_mul_ps(d, d)
});
f16c_kernel!(l1_f16, l1_f16_imp, |x, y| _mm256_andnot_ps(_mm256_set1_ps(-0.0), _mm256_sub_ps(x, y)));

#[cfg(feature = "std")]
#[target_feature(enable = "avx2,f16c")]
fn encode_f16_imp(data: &[f32], out: &mut alloc::vec::Vec<u16>) {
    let body = data.len() - data.len() % 8;
    out.reserve(data.len());
    let mut lanes = [0u16; 8];
    for block in data[..body].chunks_exact(8) {
        // SAFETY: `block` holds 8 floats and `lanes` 8 halves; both accesses are unaligned.
        unsafe {
            let halves = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(block.as_ptr()));
            _mm_storeu_si128(lanes.as_mut_ptr() as *mut __m128i, halves);
        }
        out.extend_from_slice(&lanes);
    }
    out.extend(data[body..].iter().map(|&x| crate::simd::half::to_f16(x)));
}

#[cfg(feature = "std")]
pub(in crate::simd) fn encode_f16(data: &[f32], out: &mut alloc::vec::Vec<u16>) {
    // SAFETY: only reachable through `half::encode`, after `f16c_supported()` confirmed AVX2
    // and F16C.
    unsafe { encode_f16_imp(data, out) }
}

#[cfg(feature = "std")]
#[target_feature(enable = "avx2,f16c")]
fn decode_f16_imp(h: &[u16], out: &mut alloc::vec::Vec<f32>) {
    let body = h.len() - h.len() % 8;
    out.reserve(h.len());
    let mut lanes = [0f32; 8];
    for block in h[..body].chunks_exact(8) {
        // SAFETY: `block` holds 8 halves and `lanes` 8 floats; both accesses are unaligned.
        unsafe {
            let floats = _mm256_cvtph_ps(_mm_loadu_si128(block.as_ptr() as *const __m128i));
            _mm256_storeu_ps(lanes.as_mut_ptr(), floats);
        }
        out.extend_from_slice(&lanes);
    }
    out.extend(h[body..].iter().map(|&x| crate::simd::half::from_f16(x)));
}

#[cfg(feature = "std")]
pub(in crate::simd) fn decode_f16(h: &[u16], out: &mut alloc::vec::Vec<f32>) {
    // SAFETY: only reachable through `HalfKernels::best`, after `f16c_supported()` confirmed
    // AVX2 and F16C.
    unsafe { decode_f16_imp(h, out) }
}

/// Eight rows' ADC sums at once: each lane is one row, its four running sums those of
/// [`scalar::pq_adc_one`](crate::simd::scalar::pq_adc_one), so the result is bit-identical.
/// A table lookup is one gather across the eight rows, four code bytes one gather of words.
#[target_feature(enable = "avx2")]
fn pq_adc_many_imp(tables: &[[f32; 256]], codes: &[u8], ids: &[u32], out: &mut [f32]) {
    let m = tables.len();
    let quads = m / 4 * 4;
    let bytes = _mm256_set1_epi32(0xFF);
    for (lanes, outs) in ids.chunks(8).zip(out.chunks_mut(8)) {
        // A short last chunk repeats its first row in the spare lanes and keeps only its own.
        let mut offsets = [lanes[0] as i64 * m as i64; 8];
        for (o, &id) in offsets.iter_mut().zip(lanes) {
            *o = id as i64 * m as i64;
        }
        // SAFETY: `offsets` holds eight i64s; unaligned loads.
        let (off_lo, off_hi) = unsafe {
            (
                _mm256_loadu_si256(offsets.as_ptr() as *const __m256i),
                _mm256_loadu_si256(offsets.as_ptr().add(4) as *const __m256i),
            )
        };
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut j = 0;
        while j < quads {
            // SAFETY: every lane's row lies within `codes` (the caller checked each id against
            // `codes.len() / m`), so bytes j..j + 4 of it (j + 4 <= m) are readable; each code
            // byte indexes a 256-float table of sub-quantizers j..j + 4 < m = tables.len().
            unsafe {
                let base = codes.as_ptr().add(j) as *const i32;
                let words = _mm256_set_m128i(
                    _mm256_i64gather_epi32::<1>(base, off_hi),
                    _mm256_i64gather_epi32::<1>(base, off_lo),
                );
                let t = tables.as_ptr().add(j) as *const f32;
                let b0 = _mm256_and_si256(words, bytes);
                let b1 = _mm256_and_si256(_mm256_srli_epi32::<8>(words), bytes);
                let b2 = _mm256_and_si256(_mm256_srli_epi32::<16>(words), bytes);
                let b3 = _mm256_srli_epi32::<24>(words);
                acc[0] = _mm256_add_ps(acc[0], _mm256_i32gather_ps::<4>(t, b0));
                acc[1] = _mm256_add_ps(acc[1], _mm256_i32gather_ps::<4>(t.add(256), b1));
                acc[2] = _mm256_add_ps(acc[2], _mm256_i32gather_ps::<4>(t.add(512), b2));
                acc[3] = _mm256_add_ps(acc[3], _mm256_i32gather_ps::<4>(t.add(768), b3));
            }
            j += 4;
        }
        if quads < m {
            let mut first = [0.0f32; 8];
            // SAFETY: `first` holds eight floats.
            unsafe { _mm256_storeu_ps(first.as_mut_ptr(), acc[0]) };
            for (s, &o) in first.iter_mut().zip(&offsets) {
                for (jj, t) in tables.iter().enumerate().skip(quads) {
                    *s += t[codes[o as usize + jj] as usize];
                }
            }
            // SAFETY: as above.
            acc[0] = unsafe { _mm256_loadu_ps(first.as_ptr()) };
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut all = [0.0f32; 8];
        // SAFETY: `all` holds eight floats.
        unsafe { _mm256_storeu_ps(all.as_mut_ptr(), sum) };
        outs.copy_from_slice(&all[..outs.len()]);
    }
}

pub(in crate::simd) fn pq_adc_many(tables: &[[f32; 256]], codes: &[u8], ids: &[u32], out: &mut [f32]) {
    // SAFETY: stored in the kernel table only after `avx2_supported`; `Kernels::pq_adc_many`
    // checked every id against the rows of `codes` and `out` against `ids`.
    unsafe { pq_adc_many_imp(tables, codes, ids, out) }
}
