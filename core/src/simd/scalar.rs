//! The reference kernels: the specification every SIMD path must match bit for bit.
//!
//! Element `i` accumulates into lane `i % 32` (`acc = acc + term`, two roundings, never fused);
//! the lanes are then combined by [`reduce`]'s fixed tree. The code is plain Rust, so the
//! compiler may vectorise the lane updates, which changes nothing: each lane is still the
//! same sequence of IEEE operations.

use super::half::from_f16;
use super::LANES;

/// Combines the 32 lane sums in the canonical order:
/// `t[j] = s[j] + s[j+16]`, `u[j] = t[j] + t[j+8]`, `v[j] = u[j] + u[j+4]`,
/// `w[j] = v[j] + v[j+2]`, result `w[0] + w[1]`.
#[inline(always)]
pub fn reduce(s: &[f32; LANES]) -> f32 {
    let t: [f32; 16] = core::array::from_fn(|j| s[j] + s[j + 16]);
    let u: [f32; 8] = core::array::from_fn(|j| t[j] + t[j + 8]);
    let v: [f32; 4] = core::array::from_fn(|j| u[j] + u[j + 4]);
    let w = [v[0] + v[2], v[1] + v[3]];
    w[0] + w[1]
}

/// The canonical sum of `term(a_i, value(b_i))`; `value` reads `b`'s elements as `f32` (the
/// identity, or an exact binary16 decode).
#[inline(always)]
fn accumulate<T: Copy>(a: &[f32], b: &[T], value: impl Fn(T) -> f32, term: impl Fn(f32, f32) -> f32) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (xa, xb) in (&mut ca).zip(&mut cb) {
        for j in 0..LANES {
            acc[j] += term(xa[j], value(xb[j]));
        }
    }
    // The tail is conceptually zero-padded; a zero term leaves a lane unchanged (a lane starts
    // at +0.0 and can never become -0.0), so skipping it is the same.
    for (j, (&x, &y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
        acc[j] += term(x, value(y));
    }
    reduce(&acc)
}

fn same(x: f32) -> f32 {
    x
}

/// Inner product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    accumulate(a, b, same, |x, y| x * y)
}

/// Squared Euclidean distance.
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    accumulate(a, b, same, |x, y| {
        let d = x - y;
        d * d
    })
}

/// Manhattan distance.
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    accumulate(a, b, same, |x, y| (x - y).abs())
}

/// Inner product with a binary16 row; equals [`dot`] of `a` and the decoded row.
pub fn dot_f16(a: &[f32], h: &[u16]) -> f32 {
    accumulate(a, h, from_f16, |x, y| x * y)
}

/// Squared Euclidean distance to a binary16 row.
pub fn l2sq_f16(a: &[f32], h: &[u16]) -> f32 {
    accumulate(a, h, from_f16, |x, y| {
        let d = x - y;
        d * d
    })
}

/// Manhattan distance to a binary16 row.
pub fn l1_f16(a: &[f32], h: &[u16]) -> f32 {
    accumulate(a, h, from_f16, |x, y| (x - y).abs())
}

/// The textbook one-accumulator loop. Not used by any index: it exists so benchmarks can show
/// what the SIMD paths gain over the plain scalar loop.
#[doc(hidden)]
pub fn dot_sequential(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

/// The textbook one-accumulator squared-L2 loop (benchmarks only, see [`dot_sequential`]).
#[doc(hidden)]
pub fn l2sq_sequential(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Sums `term(i)` for the `n` elements of a code in the canonical lane order.
#[inline(always)]
fn accumulate_codes(n: usize, term: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let body = n - n % LANES;
    let mut i = 0;
    while i < body {
        for (j, lane) in acc.iter_mut().enumerate() {
            *lane += term(i + j);
        }
        i += LANES;
    }
    for (j, lane) in acc.iter_mut().enumerate().take(n - body) {
        *lane += term(body + j);
    }
    reduce(&acc)
}

/// Integer inner product `Σ w_i c_i` with wrapping `i32` arithmetic (see
/// [`Kernels::sq_dot_i16`](crate::Kernels::sq_dot_i16)).
pub fn sq_dot_i16(w: &[i16], c: &[u8]) -> i32 {
    w.iter().zip(c).fold(0i32, |acc, (&w, &c)| acc.wrapping_add(i32::from(w) * i32::from(c)))
}

/// Scalar-quantized squared distance `Σ (p_i - s_i c_i)²` (`p` the query minus the range
/// minima, `s` the step sizes).
pub fn sq_l2(p: &[f32], s: &[f32], c: &[u8]) -> f32 {
    let n = p.len().min(s.len()).min(c.len());
    let (p, s, c) = (&p[..n], &s[..n], &c[..n]);
    accumulate_codes(n, |i| {
        let d = p[i] - s[i] * c[i] as f32;
        d * d
    })
}

/// Scalar-quantized Manhattan distance `Σ |p_i - s_i c_i|`.
pub fn sq_l1(p: &[f32], s: &[f32], c: &[u8]) -> f32 {
    let n = p.len().min(s.len()).min(c.len());
    let (p, s, c) = (&p[..n], &s[..n], &c[..n]);
    accumulate_codes(n, |i| (p[i] - s[i] * c[i] as f32).abs())
}

/// Product-quantization ADC sum of one code over per-sub-quantizer tables: four running sums
/// (sub-quantizer `j` into sum `j % 4`, a tail beyond a multiple of four into the first),
/// combined as `(s0 + s1) + (s2 + s3)`. The four sums let the lookups of one code overlap,
/// and the batched kernels keep the same four per row, so their sums are bit-identical.
#[inline(always)]
pub fn pq_adc_one(tables: &[[f32; 256]], code: &[u8]) -> f32 {
    let mut acc = [0.0f32; 4];
    let quads = code.chunks_exact(4).zip(tables.chunks_exact(4));
    for (c, t) in quads {
        acc[0] += t[0][c[0] as usize];
        acc[1] += t[1][c[1] as usize];
        acc[2] += t[2][c[2] as usize];
        acc[3] += t[3][c[3] as usize];
    }
    let done = code.len() / 4 * 4;
    for (&c, t) in code[done..].iter().zip(&tables[done..]) {
        acc[0] += t[c as usize];
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// [`pq_adc_one`] for each row `ids[i]` of `codes` (`tables.len()` bytes a row) into `out[i]`.
pub fn pq_adc_many(tables: &[[f32; 256]], codes: &[u8], ids: &[u32], out: &mut [f32]) {
    let m = tables.len();
    for (o, &id) in out.iter_mut().zip(ids) {
        let at = id as usize * m;
        *o = pq_adc_one(tables, &codes[at..at + m]);
    }
}
