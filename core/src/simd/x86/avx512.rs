//! AVX-512F kernels: the 32 canonical lanes live in two 16-wide registers.
//!
//! The public functions are safe wrappers that are only reachable through
//! `Kernels::avx512()`, which returns `None` unless the CPU supports AVX-512F.

use core::arch::x86_64::*;

/// Sums 16 lanes in the canonical tree order (`u = lo256 + hi256`, then as AVX2).
#[target_feature(enable = "avx512f")]
fn reduce16(t: __m512) -> f32 {
    let u = _mm256_add_ps(_mm512_castps512_ps256(t), _mm512_extractf32x8_ps_compat(t));
    let v = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps::<1>(u));
    let w = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(w, _mm_shuffle_ps::<0b01>(w, w)))
}

/// The upper 8 lanes of a 16-lane register, using only AVX-512F (extractf32x8 needs DQ).
#[target_feature(enable = "avx512f")]
fn _mm512_extractf32x8_ps_compat(t: __m512) -> __m256 {
    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(t)))
}

/// The load masks of a tail of `rem` (1..32) elements: lanes past the end are not read and
/// load as zero, the same zero padding as scalar.
#[inline(always)]
fn tail_masks(rem: usize) -> (__mmask16, __mmask16) {
    let m0: __mmask16 = if rem >= 16 { 0xFFFF } else { (1u16 << rem) - 1 };
    let m1: __mmask16 = if rem > 16 { ((1u32 << (rem - 16)) - 1) as u16 } else { 0 };
    (m0, m1)
}

macro_rules! avx512_kernel {
    ($name:ident, $imp:ident, |$x:ident, $y:ident| $term:expr) => {
        #[target_feature(enable = "avx512f")]
        fn $imp(a: &[f32], b: &[f32]) -> f32 {
            let n = a.len().min(b.len());
            let body = n - n % 32;
            let mut lo = _mm512_setzero_ps();
            let mut hi = _mm512_setzero_ps();
            let mut i = 0;
            while i < body {
                // SAFETY: i + 32 <= n and both slices hold at least n floats; unaligned loads.
                let (x0, y0, x1, y1) = unsafe {
                    let (pa, pb) = (a.as_ptr().add(i), b.as_ptr().add(i));
                    (
                        _mm512_loadu_ps(pa),
                        _mm512_loadu_ps(pb),
                        _mm512_loadu_ps(pa.add(16)),
                        _mm512_loadu_ps(pb.add(16)),
                    )
                };
                lo = _mm512_add_ps(lo, {
                    let ($x, $y) = (x0, y0);
                    $term
                });
                hi = _mm512_add_ps(hi, {
                    let ($x, $y) = (x1, y1);
                    $term
                });
                i += 32;
            }
            let rem = n - body;
            if rem > 0 {
                let (m0, m1) = tail_masks(rem);
                // SAFETY: masked-off lanes are not read; enabled lanes lie within a[body..n]
                // and b[body..n].
                let (x0, y0, x1, y1) = unsafe {
                    let (pa, pb) = (a.as_ptr().add(body), b.as_ptr().add(body));
                    (
                        _mm512_maskz_loadu_ps(m0, pa),
                        _mm512_maskz_loadu_ps(m0, pb),
                        _mm512_maskz_loadu_ps(m1, pa.add(16.min(rem))),
                        _mm512_maskz_loadu_ps(m1, pb.add(16.min(rem))),
                    )
                };
                lo = _mm512_add_ps(lo, {
                    let ($x, $y) = (x0, y0);
                    $term
                });
                hi = _mm512_add_ps(hi, {
                    let ($x, $y) = (x1, y1);
                    $term
                });
            }
            reduce16(_mm512_add_ps(lo, hi))
        }

        pub(in crate::simd) fn $name(a: &[f32], b: &[f32]) -> f32 {
            // SAFETY: only stored in a kernel table by `Kernels::avx512`, after
            // `avx512_supported()` confirmed the CPU has AVX-512F.
            unsafe { $imp(a, b) }
        }
    };
}

avx512_kernel!(dot, dot_imp, |x, y| _mm512_mul_ps(x, y));
avx512_kernel!(l2sq, l2sq_imp, |x, y| {
    let d = _mm512_sub_ps(x, y);
    _mm512_mul_ps(d, d)
});
avx512_kernel!(l1, l1_imp, |x, y| _mm512_abs_ps(_mm512_sub_ps(x, y)));

/// Four rows at a time of one kernel: each row's sums are the single kernel's, operation for
/// operation (so its result is bit-identical), but four independent chains of adds overlap
/// where one row's chain would wait on each add. Written beside the single kernel rather than
/// as one kernel generic over the row count: that version (masked loads in every block, rows
/// in arrays) cost the single-row paths 10-16 % (a flat scan 614 -> 526 QPS).
macro_rules! avx512_rows_kernel {
    ($name:ident, $imp:ident, |$x:ident, $y:ident| $term:expr) => {
        #[target_feature(enable = "avx512f")]
        fn $imp(q: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
            let n = rows.iter().fold(q.len(), |n, r| n.min(r.len()));
            let body = n - n % 32;
            let mut lo = [_mm512_setzero_ps(); 4];
            let mut hi = [_mm512_setzero_ps(); 4];
            let mut i = 0;
            while i < body {
                // SAFETY: i + 32 <= n, and q and every row hold at least n floats.
                let (x0, x1) =
                    unsafe { (_mm512_loadu_ps(q.as_ptr().add(i)), _mm512_loadu_ps(q.as_ptr().add(i + 16))) };
                for r in 0..4 {
                    // SAFETY: as above, for row r.
                    let (y0, y1) = unsafe {
                        let p = rows[r].as_ptr().add(i);
                        (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)))
                    };
                    lo[r] = _mm512_add_ps(lo[r], {
                        let ($x, $y) = (x0, y0);
                        $term
                    });
                    hi[r] = _mm512_add_ps(hi[r], {
                        let ($x, $y) = (x1, y1);
                        $term
                    });
                }
                i += 32;
            }
            let rem = n - body;
            if rem > 0 {
                let (m0, m1) = tail_masks(rem);
                // SAFETY: masked-off lanes are not read; enabled lanes lie within q[body..n].
                let (x0, x1) = unsafe {
                    let p = q.as_ptr().add(body);
                    (_mm512_maskz_loadu_ps(m0, p), _mm512_maskz_loadu_ps(m1, p.add(16.min(rem))))
                };
                for r in 0..4 {
                    // SAFETY: as above, within rows[r][body..n].
                    let (y0, y1) = unsafe {
                        let p = rows[r].as_ptr().add(body);
                        (_mm512_maskz_loadu_ps(m0, p), _mm512_maskz_loadu_ps(m1, p.add(16.min(rem))))
                    };
                    lo[r] = _mm512_add_ps(lo[r], {
                        let ($x, $y) = (x0, y0);
                        $term
                    });
                    hi[r] = _mm512_add_ps(hi[r], {
                        let ($x, $y) = (x1, y1);
                        $term
                    });
                }
            }
            [
                reduce16(_mm512_add_ps(lo[0], hi[0])),
                reduce16(_mm512_add_ps(lo[1], hi[1])),
                reduce16(_mm512_add_ps(lo[2], hi[2])),
                reduce16(_mm512_add_ps(lo[3], hi[3])),
            ]
        }

        /// The kernel from `q` to each of `rows` (`q.len()` floats each), four at a time.
        pub(in crate::simd) fn $name(q: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
            // SAFETY: only stored in a kernel table by `Kernels::avx512`, after
            // `avx512_supported()` confirmed the CPU has AVX-512F.
            unsafe { $imp(q, rows) }
        }
    };
}

avx512_rows_kernel!(dot4, dot4_imp, |x, y| _mm512_mul_ps(x, y));
avx512_rows_kernel!(l2sq4, l2sq4_imp, |x, y| {
    let d = _mm512_sub_ps(x, y);
    _mm512_mul_ps(d, d)
});

/// Sixteen codes widened to sixteen floats.
#[target_feature(enable = "avx512f")]
fn widen16(pc: *const u8) -> __m512 {
    // SAFETY: callers pass a pointer to at least 16 readable bytes; loadu reads exactly 16.
    let b = unsafe { _mm_loadu_si128(pc as *const __m128i) };
    _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b))
}

/// Runs `step` over 32-element blocks of `n` elements, the tail zero-padded through `pad`
/// (which copies the tail into stack buffers and returns their pointers).
macro_rules! avx512_sq_blocks {
    ($n:expr, $step:expr, $at:expr, $pad:expr) => {{
        let n = $n;
        let body = n - n % 32;
        let mut lo = _mm512_setzero_ps();
        let mut hi = _mm512_setzero_ps();
        let mut i = 0;
        while i < body {
            let (a, b) = $step($at(i));
            lo = _mm512_add_ps(lo, a);
            hi = _mm512_add_ps(hi, b);
            i += 32;
        }
        if body < n {
            let (a, b) = $step($pad(body));
            lo = _mm512_add_ps(lo, a);
            hi = _mm512_add_ps(hi, b);
        }
        reduce16(_mm512_add_ps(lo, hi))
    }};
}

macro_rules! avx512_sq_kernel {
    ($name:ident, $imp:ident, |$p:ident, $s:ident, $y:ident| $term:expr) => {
        #[target_feature(enable = "avx512f")]
        fn $imp(p: &[f32], s: &[f32], c: &[u8]) -> f32 {
            let n = p.len().min(s.len()).min(c.len());
            let (mut tp, mut ts, mut tc) = ([0.0f32; 32], [0.0f32; 32], [0u8; 32]);
            let step = |(pp, ps, pc): (*const f32, *const f32, *const u8)| {
                let half = |o: usize| {
                    // SAFETY: the pointers address 32 readable elements; o is 0 or 16.
                    let ($p, $s, $y) = unsafe {
                        (_mm512_loadu_ps(pp.add(o)), _mm512_loadu_ps(ps.add(o)), widen16(pc.add(o)))
                    };
                    $term
                };
                (half(0), half(16))
            };
            // SAFETY: `i + 32 <= n` in the body, and all three slices hold n elements.
            let at = |i: usize| unsafe { (p.as_ptr().add(i), s.as_ptr().add(i), c.as_ptr().add(i)) };
            let mut pad = |i: usize| {
                tp[..n - i].copy_from_slice(&p[i..n]);
                ts[..n - i].copy_from_slice(&s[i..n]);
                tc[..n - i].copy_from_slice(&c[i..n]);
                (tp.as_ptr(), ts.as_ptr(), tc.as_ptr())
            };
            avx512_sq_blocks!(n, step, at, pad)
        }

        pub(in crate::simd) fn $name(p: &[f32], s: &[f32], c: &[u8]) -> f32 {
            // SAFETY: only stored in a kernel table by `Kernels::avx512`, after
            // `avx512_supported()` confirmed the CPU has AVX-512F.
            unsafe { $imp(p, s, c) }
        }
    };
}

avx512_sq_kernel!(sq_l2, sq_l2_imp, |p, s, y| {
    let d = _mm512_sub_ps(p, _mm512_mul_ps(s, y));
    _mm512_mul_ps(d, d)
});
avx512_sq_kernel!(sq_l1, sq_l1_imp, |p, s, y| _mm512_abs_ps(_mm512_sub_ps(p, _mm512_mul_ps(s, y))));

/// Sixteen rows' ADC sums at once, as the AVX2 kernel does eight (bit-identical to
/// [`scalar::pq_adc_one`](crate::simd::scalar::pq_adc_one) per lane).
#[target_feature(enable = "avx512f")]
fn pq_adc_many_imp(tables: &[[f32; 256]], codes: &[u8], ids: &[u32], out: &mut [f32]) {
    let m = tables.len();
    let quads = m / 4 * 4;
    let bytes = _mm512_set1_epi32(0xFF);
    for (lanes, outs) in ids.chunks(16).zip(out.chunks_mut(16)) {
        // A short last chunk repeats its first row in the spare lanes and keeps only its own.
        let mut offsets = [lanes[0] as i64 * m as i64; 16];
        for (o, &id) in offsets.iter_mut().zip(lanes) {
            *o = id as i64 * m as i64;
        }
        // SAFETY: `offsets` holds sixteen i64s; unaligned loads.
        let (off_lo, off_hi) = unsafe {
            (
                _mm512_loadu_si512(offsets.as_ptr() as *const _),
                _mm512_loadu_si512(offsets.as_ptr().add(8) as *const _),
            )
        };
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut j = 0;
        while j < quads {
            // SAFETY: every lane's row lies within `codes` (the caller checked each id against
            // `codes.len() / m`), so bytes j..j + 4 of it (j + 4 <= m) are readable; each code
            // byte indexes a 256-float table of sub-quantizers j..j + 4 < m = tables.len().
            unsafe {
                let base = codes.as_ptr().add(j) as *const i32;
                let lo = _mm512_i64gather_epi32::<1>(off_lo, base);
                let hi = _mm512_i64gather_epi32::<1>(off_hi, base);
                let words = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
                let t = tables.as_ptr().add(j) as *const f32;
                let b0 = _mm512_and_si512(words, bytes);
                let b1 = _mm512_and_si512(_mm512_srli_epi32::<8>(words), bytes);
                let b2 = _mm512_and_si512(_mm512_srli_epi32::<16>(words), bytes);
                let b3 = _mm512_srli_epi32::<24>(words);
                acc[0] = _mm512_add_ps(acc[0], _mm512_i32gather_ps::<4>(b0, t));
                acc[1] = _mm512_add_ps(acc[1], _mm512_i32gather_ps::<4>(b1, t.add(256)));
                acc[2] = _mm512_add_ps(acc[2], _mm512_i32gather_ps::<4>(b2, t.add(512)));
                acc[3] = _mm512_add_ps(acc[3], _mm512_i32gather_ps::<4>(b3, t.add(768)));
            }
            j += 4;
        }
        if quads < m {
            let mut first = [0.0f32; 16];
            // SAFETY: `first` holds sixteen floats.
            unsafe { _mm512_storeu_ps(first.as_mut_ptr(), acc[0]) };
            for (s, &o) in first.iter_mut().zip(&offsets) {
                for (jj, t) in tables.iter().enumerate().skip(quads) {
                    *s += t[codes[o as usize + jj] as usize];
                }
            }
            // SAFETY: as above.
            acc[0] = unsafe { _mm512_loadu_ps(first.as_ptr()) };
        }
        let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        let mut all = [0.0f32; 16];
        // SAFETY: `all` holds sixteen floats.
        unsafe { _mm512_storeu_ps(all.as_mut_ptr(), sum) };
        outs.copy_from_slice(&all[..outs.len()]);
    }
}

pub(in crate::simd) fn pq_adc_many(tables: &[[f32; 256]], codes: &[u8], ids: &[u32], out: &mut [f32]) {
    // SAFETY: stored in the kernel table only after `avx512_supported`; `Kernels::pq_adc_many`
    // checked every id against the rows of `codes` and `out` against `ids`.
    unsafe { pq_adc_many_imp(tables, codes, ids, out) }
}
