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
