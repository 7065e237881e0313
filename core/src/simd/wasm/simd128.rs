//! simd128 kernels: the 32 canonical lanes live in eight 4-wide registers.

use core::arch::wasm32::*;

/// Sums eight 4-lane registers (lanes `4r..4r+4` in `r[r]`) in the canonical tree order.
#[inline(always)]
fn reduce(r: &[v128; 8]) -> f32 {
    // t[j] = s[j] + s[j+16]: register k pairs with register k+4.
    let t = [f32x4_add(r[0], r[4]), f32x4_add(r[1], r[5]), f32x4_add(r[2], r[6]), f32x4_add(r[3], r[7])];
    // u[j] = t[j] + t[j+8].
    let u = [f32x4_add(t[0], t[2]), f32x4_add(t[1], t[3])];
    // v[j] = u[j] + u[j+4].
    let v = f32x4_add(u[0], u[1]);
    // w[j] = v[j] + v[j+2].
    let w = f32x4_add(v, i32x4_shuffle::<2, 3, 2, 3>(v, v));
    f32x4_extract_lane::<0>(w) + f32x4_extract_lane::<1>(w)
}

macro_rules! simd128_kernel {
    ($name:ident, |$x:ident, $y:ident| $term:expr) => {
        pub(in crate::simd) fn $name(a: &[f32], b: &[f32]) -> f32 {
            let n = a.len().min(b.len());
            let body = n - n % 32;
            let mut acc = [f32x4_splat(0.0); 8];
            let step = |acc: &mut [v128; 8], pa: *const f32, pb: *const f32| {
                for (r, lane) in acc.iter_mut().enumerate() {
                    // SAFETY: callers pass pointers to at least 32 readable floats; wasm loads
                    // have no alignment requirement.
                    let ($x, $y) = unsafe {
                        (v128_load(pa.add(4 * r) as *const v128), v128_load(pb.add(4 * r) as *const v128))
                    };
                    *lane = f32x4_add(*lane, $term);
                }
            };
            let mut i = 0;
            while i < body {
                // SAFETY: i + 32 <= body <= n, and both slices hold at least n floats.
                step(&mut acc, unsafe { a.as_ptr().add(i) }, unsafe { b.as_ptr().add(i) });
                i += 32;
            }
            if body < n {
                let mut ta = [0.0f32; 32];
                let mut tb = [0.0f32; 32];
                ta[..n - body].copy_from_slice(&a[body..n]);
                tb[..n - body].copy_from_slice(&b[body..n]);
                step(&mut acc, ta.as_ptr(), tb.as_ptr());
            }
            reduce(&acc)
        }
    };
}

simd128_kernel!(dot, |x, y| f32x4_mul(x, y));
simd128_kernel!(l2sq, |x, y| {
    let d = f32x4_sub(x, y);
    f32x4_mul(d, d)
});
simd128_kernel!(l1, |x, y| f32x4_abs(f32x4_sub(x, y)));

/// Thirty-two codes widened to eight 4-float registers (lanes `4r..4r+4` in register `r`).
#[inline(always)]
fn widen32(pc: *const u8) -> [v128; 8] {
    // SAFETY: callers pass a pointer to at least 32 readable bytes; wasm loads are unaligned.
    let (a, b) = unsafe { (v128_load(pc as *const v128), v128_load(pc.add(16) as *const v128)) };
    let mut out = [f32x4_splat(0.0); 8];
    // The signed conversion gives the same floats for 0..=255 and is one instruction on x86,
    // where engines emulate the unsigned one with about eight.
    for (half, bytes) in [a, b].into_iter().enumerate() {
        let lo = u16x8_extend_low_u8x16(bytes);
        let hi = u16x8_extend_high_u8x16(bytes);
        out[4 * half] = f32x4_convert_i32x4(u32x4_extend_low_u16x8(lo));
        out[4 * half + 1] = f32x4_convert_i32x4(u32x4_extend_high_u16x8(lo));
        out[4 * half + 2] = f32x4_convert_i32x4(u32x4_extend_low_u16x8(hi));
        out[4 * half + 3] = f32x4_convert_i32x4(u32x4_extend_high_u16x8(hi));
    }
    out
}

/// Scalar-quantized kernel over a query stream `p`, the steps `s` and codes `c`; same blocks
/// and tail as the f32 kernels.
#[inline(always)]
fn sq_kernel(p: &[f32], s: &[f32], c: &[u8], term: impl Fn(v128, v128, v128) -> v128) -> f32 {
    let n = p.len().min(s.len()).min(c.len());
    let body = n - n % 32;
    let mut acc = [f32x4_splat(0.0); 8];
    let step = |acc: &mut [v128; 8], pp: *const f32, ps: *const f32, pc: *const u8| {
        let codes = widen32(pc);
        for (r, lane) in acc.iter_mut().enumerate() {
            // SAFETY: callers pass pointers to at least 32 readable floats.
            let (x, y) =
                unsafe { (v128_load(pp.add(4 * r) as *const v128), v128_load(ps.add(4 * r) as *const v128)) };
            *lane = f32x4_add(*lane, term(x, y, codes[r]));
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
        let (mut tp, mut ts, mut tc) = ([0.0f32; 32], [0.0f32; 32], [0u8; 32]);
        tp[..n - body].copy_from_slice(&p[body..n]);
        ts[..n - body].copy_from_slice(&s[body..n]);
        tc[..n - body].copy_from_slice(&c[body..n]);
        step(&mut acc, tp.as_ptr(), ts.as_ptr(), tc.as_ptr());
    }
    reduce(&acc)
}

pub(in crate::simd) fn sq_dot_i16(w: &[i16], c: &[u8]) -> i32 {
    let n = w.len().min(c.len());
    let body = n - n % 16;
    let mut acc = [i32x4_splat(0); 2];
    let mut i = 0;
    while i < body {
        // SAFETY: i + 16 <= body <= n, and both slices hold at least n elements; wasm loads
        // have no alignment requirement.
        let (bytes, w0, w1) = unsafe {
            (
                v128_load(c.as_ptr().add(i) as *const v128),
                v128_load(w.as_ptr().add(i) as *const v128),
                v128_load(w.as_ptr().add(i + 8) as *const v128),
            )
        };
        // Codes widened to 16 bits are at most 255, so no pair sum can overflow.
        acc[0] = i32x4_add(acc[0], i32x4_dot_i16x8(u16x8_extend_low_u8x16(bytes), w0));
        acc[1] = i32x4_add(acc[1], i32x4_dot_i16x8(u16x8_extend_high_u8x16(bytes), w1));
        i += 16;
    }
    let v = i32x4_add(acc[0], acc[1]);
    let sum = i32x4_extract_lane::<0>(v)
        .wrapping_add(i32x4_extract_lane::<1>(v))
        .wrapping_add(i32x4_extract_lane::<2>(v))
        .wrapping_add(i32x4_extract_lane::<3>(v));
    sum.wrapping_add(super::super::scalar::sq_dot_i16(&w[body..n], &c[body..n]))
}

pub(in crate::simd) fn sq_l2(p: &[f32], s: &[f32], c: &[u8]) -> f32 {
    sq_kernel(p, s, c, |x, st, y| {
        let d = f32x4_sub(x, f32x4_mul(st, y));
        f32x4_mul(d, d)
    })
}

pub(in crate::simd) fn sq_l1(p: &[f32], s: &[f32], c: &[u8]) -> f32 {
    sq_kernel(p, s, c, |x, st, y| f32x4_abs(f32x4_sub(x, f32x4_mul(st, y))))
}

/// Four binary16 values (the low 16 bits of each 32-bit lane) widened to `f32`, exactly.
/// simd128 has no conversion instruction; the bits are moved into place and re-biased, and
/// zeros and subnormals (exponent 0) are made by one exact subtraction instead of a multiply
/// that would read an `f32` subnormal (slow on x86).
#[inline(always)]
fn half4_to_f32(x: v128) -> v128 {
    let sign = i32x4_shl(v128_and(x, u32x4_splat(0x8000)), 16);
    let shifted = i32x4_shl(v128_and(x, u32x4_splat(0x7fff)), 13);
    let exp = v128_and(shifted, u32x4_splat(0x0f80_0000));
    // Re-bias the exponent from 15 to 127; infinity and NaN (exponent 31) go to 255.
    let normal = i32x4_add(shifted, u32x4_splat(112 << 23));
    let special = i32x4_eq(exp, u32x4_splat(0x0f80_0000));
    let normal = i32x4_add(normal, v128_and(special, u32x4_splat(112 << 23)));
    // Exponent 0: the mantissa m stands for m·2^-24 = (2^-14 + m·2^-24) - 2^-14.
    let tiny = f32x4_sub(i32x4_add(normal, u32x4_splat(1 << 23)), f32x4_splat(1.0 / 16384.0));
    let value = v128_bitselect(tiny, normal, i32x4_eq(exp, u32x4_splat(0)));
    v128_or(value, sign)
}

/// Whether all 32 halves are normal numbers (exponent neither 0 nor 31): the common case for
/// stored vectors, which [`normal8_to_f32`] decodes in two thirds fewer instructions. With
/// `e` the exponent bits, `e - 0x0400` (wrapping) is below `0x7800` exactly for exponents 1..=30.
#[inline(always)]
fn all_normal<const N: usize>(blocks: &[v128; N]) -> bool {
    let mut worst = u16x8_splat(0);
    for &h in blocks {
        worst = u16x8_max(worst, i16x8_sub(v128_and(h, u16x8_splat(0x7c00)), u16x8_splat(0x0400)));
    }
    // `worst >= 0x7800` as a saturating subtraction: V8 has no unsigned compare and would
    // build it from max, compare and not.
    !v128_any_true(u16x8_sub_sat(worst, u16x8_splat(0x77ff)))
}

/// Which decoder 32 halves need: `(normal, finite)`. `normal`: every exponent is neither 0
/// nor 31, so [`normal8_to_f32`] applies; `finite`: none is 31 (no infinity or NaN), so
/// [`finite8_to_f32`] does.
#[inline(always)]
fn classify(blocks: &[v128; 4]) -> (bool, bool) {
    let mut low = u16x8_splat(0x7c00);
    let mut high = u16x8_splat(0);
    for &h in blocks {
        let e = v128_and(h, u16x8_splat(0x7c00));
        low = u16x8_min(low, e);
        high = u16x8_max(high, e);
    }
    let finite = !v128_any_true(i16x8_eq(high, u16x8_splat(0x7c00)));
    (finite && !v128_any_true(i16x8_eq(low, u16x8_splat(0))), finite)
}

/// Eight finite binary16 values widened to `f32` (two registers), for the kernels: exact,
/// except that -0 becomes +0. That changes no kernel result, because every accumulator starts at
/// +0 and so never holds -0: adding either zero leaves it as it is, and `l2sq`/`l1` square or
/// take the absolute value anyway. Lanes with exponent 0 (zero or subnormal, m·2^-24) are
/// decoded as normals with exponent 1 (±(2^-14 + m·2^-24)), and ±2^-14 is subtracted, exactly.
/// Real embeddings need this path: all-MiniLM-L6-v2 has three dimensions that are always below
/// binary16's normal range, so a quarter of its blocks of 32 hold a subnormal.
#[inline(always)]
fn finite8_to_f32(h: v128) -> [v128; 2] {
    let tiny = i16x8_eq(v128_and(h, u16x8_splat(0x7c00)), u16x8_splat(0));
    let upper = i16x8_add(v128_and(i16x8_shr(h, 3), u16x8_splat(0x8fff)), u16x8_splat(112 << 7));
    let upper = i16x8_add(upper, v128_and(tiny, u16x8_splat(1 << 7)));
    let lower = i16x8_shl(h, 13);
    // ±2^-14 in the upper half of the tiny lanes, 0 elsewhere.
    let bias = v128_and(tiny, v128_or(v128_and(h, u16x8_splat(0x8000)), u16x8_splat(113 << 7)));
    let zero = u16x8_splat(0);
    [
        f32x4_sub(
            i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(lower, upper),
            i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(zero, bias),
        ),
        f32x4_sub(
            i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(lower, upper),
            i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(zero, bias),
        ),
    ]
}

/// Eight normal binary16 values widened to `f32` (two registers), exactly. Both 16-bit halves
/// of each `f32` are made in 16-bit lanes: the upper one is sign, re-biased exponent (15 →
/// 127, which cannot carry into the sign) and the top 7 mantissa bits; the lower one the last
/// 3 mantissa bits. Two shuffles then interleave them into 32-bit lanes (and are the widening).
#[inline(always)]
fn normal8_to_f32(h: v128) -> [v128; 2] {
    // An arithmetic shift keeps the sign in bit 15 (and copies it into bits 14..12, which the
    // mask clears): one operation fewer than shifting and masking sign and magnitude apart.
    let upper = i16x8_add(v128_and(i16x8_shr(h, 3), u16x8_splat(0x8fff)), u16x8_splat(112 << 7));
    let lower = i16x8_shl(h, 13);
    [
        i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(lower, upper),
        i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(lower, upper),
    ]
}

/// Appends the `f32` values of the row `h` to `out`, exactly: eight halves at a time through
/// the kernels' decoders (the normal-number path when all eight are normal), the tail one by
/// one.
pub(in crate::simd) fn decode_f16(h: &[u16], out: &mut alloc::vec::Vec<f32>) {
    let body = h.len() - h.len() % 8;
    out.reserve(h.len());
    let mut lanes = [0f32; 8];
    for block in h[..body].chunks_exact(8) {
        // SAFETY: `block` holds 8 halves and `lanes` 8 floats; wasm accesses are unaligned.
        unsafe {
            let halves = v128_load(block.as_ptr() as *const v128);
            let floats = if all_normal(&[halves]) {
                normal8_to_f32(halves)
            } else {
                [half4_to_f32(u32x4_extend_low_u16x8(halves)), half4_to_f32(u32x4_extend_high_u16x8(halves))]
            };
            v128_store(lanes.as_mut_ptr() as *mut v128, floats[0]);
            v128_store(lanes.as_mut_ptr().add(4) as *mut v128, floats[1]);
        }
        out.extend_from_slice(&lanes);
    }
    out.extend(h[body..].iter().map(|&x| crate::simd::half::from_f16(x)));
}

/// One block of a binary16 kernel: 32 halves at `ph` decoded and combined with 32 floats at
/// `pq` into the accumulators. A function with `inline(always)` rather than a closure: LLVM
/// kept the closure out of line (it has two call sites), so the eight accumulators went
/// through memory on every block; inlined, they stay in locals.
#[inline(always)]
fn f16_block(acc: &mut [v128; 8], pq: *const f32, ph: *const u16, term: impl Fn(v128, v128) -> v128) {
    // SAFETY: callers pass pointers to at least 32 readable floats and 32 readable halves;
    // wasm loads are unaligned.
    let blocks: [v128; 4] = core::array::from_fn(|p| unsafe { v128_load(ph.add(8 * p) as *const v128) });
    let (normal, finite) = classify(&blocks);
    for (pair, &halves) in blocks.iter().enumerate() {
        let ys = if normal {
            normal8_to_f32(halves)
        } else if finite {
            finite8_to_f32(halves)
        } else {
            [half4_to_f32(u32x4_extend_low_u16x8(halves)), half4_to_f32(u32x4_extend_high_u16x8(halves))]
        };
        for (j, y) in ys.into_iter().enumerate() {
            let r = 2 * pair + j;
            // SAFETY: as above, 4 floats at 4r < 32.
            let x = unsafe { v128_load(pq.add(4 * r) as *const v128) };
            acc[r] = f32x4_add(acc[r], term(x, y));
        }
    }
}

macro_rules! simd128_f16_kernel {
    ($name:ident, |$x:ident, $y:ident| $term:expr) => {
        /// As the `f32` kernel of the same name, on a binary16 row decoded on the fly:
        /// bit-identical to it on the decoded values.
        pub(in crate::simd) fn $name(q: &[f32], h: &[u16]) -> f32 {
            let n = q.len().min(h.len());
            let body = n - n % 32;
            let mut acc = [f32x4_splat(0.0); 8];
            let term = |$x: v128, $y: v128| $term;
            let mut i = 0;
            while i < body {
                // SAFETY: i + 32 <= body <= n, and both slices hold at least n elements.
                f16_block(&mut acc, unsafe { q.as_ptr().add(i) }, unsafe { h.as_ptr().add(i) }, term);
                i += 32;
            }
            if body < n {
                let mut tq = [0.0f32; 32];
                let mut th = [0u16; 32];
                tq[..n - body].copy_from_slice(&q[body..n]);
                th[..n - body].copy_from_slice(&h[body..n]);
                f16_block(&mut acc, tq.as_ptr(), th.as_ptr(), term);
            }
            reduce(&acc)
        }
    };
}

simd128_f16_kernel!(dot_f16, |x, y| f32x4_mul(x, y));
simd128_f16_kernel!(l2sq_f16, |x, y| {
    let d = f32x4_sub(x, y);
    f32x4_mul(d, d)
});
simd128_f16_kernel!(l1_f16, |x, y| f32x4_abs(f32x4_sub(x, y)));
