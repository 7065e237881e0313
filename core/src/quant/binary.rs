//! Binary codes: the two encoders (sign bits and random hyperplanes / SimHash), packing bits
//! into `u64` words, and the Hamming distance kernels with their runtime dispatch.
//!
//! A code has `bits` bits packed little-endian into `words = bits.div_ceil(64)` words: bit `i`
//! is bit `i % 64` of word `i / 64`, and the unused high bits of the last word are always zero
//! (so the Hamming distance never needs a mask).
//!
//! Hamming kernels: [`hamming_scalar`] is the specification; on x86_64 a `popcnt` path and an
//! AVX-512 VPOPCNTDQ path are compiled with `#[target_feature]` and picked once at runtime
//! (with `std`) or at compile time (without it) into a [`Hamming`] table; in wasm32 with
//! `simd128` a path built on `i8x16_popcnt`. All paths count exactly, so they are equal, not
//! merely close.

use alloc::vec;
use alloc::vec::Vec;

use crate::rng::Rng;
use crate::{Error, Kernels, Result};

/// Most bits a code may have (a 2 KiB code; far beyond any useful binary embedding).
pub const MAX_BITS: usize = 16_384;

/// How a vector becomes bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoder {
    /// Bit `i` is `x_i > 0` (after centring, when enabled): one bit per dimension.
    Sign,
    /// Bit `i` is `⟨p_i, x⟩ > 0` for seeded unit Gaussian planes `p_i` (SimHash; Charikar
    /// 2002): the fraction of differing bits estimates the angle between vectors over π.
    Hyperplanes,
}

impl Encoder {
    /// The code stored in index files.
    pub const fn code(self) -> u32 {
        match self {
            Self::Sign => 1,
            Self::Hyperplanes => 2,
        }
    }

    /// The encoder stored as `code`, if any.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(Self::Sign),
            2 => Some(Self::Hyperplanes),
            _ => None,
        }
    }
}

/// Words of a `bits`-bit code.
#[inline]
pub const fn words_for(bits: usize) -> usize {
    bits.div_ceil(64)
}

/// Mask of the bits in use in the last word of a `bits`-bit code.
#[inline]
pub const fn last_word_mask(bits: usize) -> u64 {
    match bits % 64 {
        0 => u64::MAX,
        r => (1u64 << r) - 1,
    }
}

/// Packs `proj[i] > 0` into `code` (which must hold `words_for(proj.len())` words).
pub fn pack_signs(proj: &[f32], code: &mut [u64]) {
    code.iter_mut().for_each(|w| *w = 0);
    for (w, chunk) in code.iter_mut().zip(proj.chunks(64)) {
        for (b, &p) in chunk.iter().enumerate() {
            *w |= ((p > 0.0) as u64) << b;
        }
    }
}

/// Bit `i` of `code` (false beyond its end).
#[inline]
pub fn bit(code: &[u64], i: usize) -> bool {
    code.get(i / 64).is_some_and(|w| (w >> (i % 64)) & 1 == 1)
}

/// The encoder's trained state, borrowed: from a [`BinaryQuantizer`] or from file bytes.
#[derive(Clone, Copy, Debug)]
pub struct Projector<'a> {
    /// The encoder.
    pub encoder: Encoder,
    /// Input dimension.
    pub dim: usize,
    /// Code length in bits.
    pub bits: usize,
    /// Training mean subtracted before projecting; empty when not centring.
    pub mean: &'a [f32],
    /// `bits × dim` unit planes (hyperplane encoder); empty for the sign encoder.
    pub planes: &'a [f32],
}

impl Projector<'_> {
    /// The signed projections of `x` (one per bit) into `out`; `centred` is working memory.
    /// A bit is set when its projection is positive; its magnitude is the distance to the
    /// plane, which multi-probe LSH uses to choose which bits to flip.
    pub fn project(&self, kernels: &Kernels, x: &[f32], centred: &mut Vec<f32>, out: &mut Vec<f32>) {
        centred.clear();
        centred.extend_from_slice(x);
        if self.mean.len() == x.len() {
            centred.iter_mut().zip(self.mean).for_each(|(c, m)| *c -= m);
        }
        out.clear();
        match self.encoder {
            Encoder::Sign => out.extend_from_slice(centred),
            Encoder::Hyperplanes => {
                out.extend(self.planes.chunks_exact(self.dim).map(|p| kernels.dot(p, centred)));
            }
        }
    }
}

/// An owned encoder: configuration plus trained mean and planes.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryQuantizer {
    encoder: Encoder,
    dim: usize,
    bits: usize,
    center: bool,
    seed: u64,
    mean: Vec<f32>,
    planes: Vec<f32>,
    trained: bool,
}

impl BinaryQuantizer {
    /// An untrained encoder of `dim`-dimensional vectors into `bits` bits. The sign encoder
    /// has one bit per dimension, so it needs `bits == dim`.
    pub fn new(dim: usize, bits: usize, encoder: Encoder, center: bool, seed: u64) -> Result<Self> {
        crate::validate::check_dim(dim)?;
        if bits == 0 || bits > MAX_BITS {
            return Err(Error::InvalidParameter { name: "bits", reason: "must be between 1 and 16384" });
        }
        if encoder == Encoder::Sign && bits != dim {
            return Err(Error::InvalidParameter {
                name: "bits",
                reason: "the sign encoder has one bit per dimension: bits must equal dim",
            });
        }
        Ok(Self { encoder, dim, bits, center, seed, mean: Vec::new(), planes: Vec::new(), trained: false })
    }

    /// Rebuilds an encoder from stored parts (a file): `mean` empty or `dim` long, `planes`
    /// empty (sign) or `bits × dim`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        encoder: Encoder,
        dim: usize,
        bits: usize,
        center: bool,
        seed: u64,
        mean: Vec<f32>,
        planes: Vec<f32>,
        trained: bool,
    ) -> Result<Self> {
        let mut q = Self::new(dim, bits, encoder, center, seed)?;
        q.mean = mean;
        q.planes = planes;
        q.trained = trained;
        Ok(q)
    }

    /// Learns the mean of `samples` (row-major, already normalised if the caller's metric
    /// wants it) when centring, and draws the planes from the seed. Planes depend only on
    /// the seed, so the same seed gives the same codes on every target.
    pub fn train(&mut self, kernels: &Kernels, samples: &[f32]) -> Result<()> {
        let n = crate::check_vectors(samples, self.dim)?;
        if n == 0 {
            return Err(Error::InvalidParameter {
                name: "samples",
                reason: "training needs at least one vector",
            });
        }
        self.mean.clear();
        if self.center {
            // f64 sums: the mean of many f32 vectors in f32 loses the low bits of every term.
            let mut sum = vec![0f64; self.dim];
            for v in samples.chunks_exact(self.dim) {
                sum.iter_mut().zip(v).for_each(|(s, &x)| *s += x as f64);
            }
            self.mean.extend(sum.iter().map(|s| (s / n as f64) as f32));
        }
        self.planes.clear();
        if self.encoder == Encoder::Hyperplanes {
            let mut rng = Rng::new(self.seed);
            self.planes.reserve(self.bits * self.dim);
            for _ in 0..self.bits {
                let start = self.planes.len();
                loop {
                    self.planes.truncate(start);
                    self.planes.extend((0..self.dim).map(|_| rng.normal() as f32));
                    // A zero plane (probability ~0) has no direction; draw again.
                    if kernels.normalize(&mut self.planes[start..]) {
                        break;
                    }
                }
            }
        }
        self.trained = true;
        Ok(())
    }

    /// Whether [`train`](Self::train) has run.
    pub fn is_trained(&self) -> bool {
        self.trained
    }

    /// The encoder kind.
    pub fn encoder(&self) -> Encoder {
        self.encoder
    }

    /// Code length in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Words per code.
    pub fn words(&self) -> usize {
        words_for(self.bits)
    }

    /// Input dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether inputs are centred by the training mean.
    pub fn centers(&self) -> bool {
        self.center
    }

    /// The seed of the planes.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The training mean (empty when not centring or untrained).
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// The unit planes, `bits × dim` (empty for the sign encoder or untrained).
    pub fn planes(&self) -> &[f32] {
        &self.planes
    }

    /// The trained state, borrowed.
    pub fn projector(&self) -> Projector<'_> {
        Projector {
            encoder: self.encoder,
            dim: self.dim,
            bits: self.bits,
            mean: &self.mean,
            planes: &self.planes,
        }
    }

    /// Encodes row-major `vectors` (already validated, of this dimension), appending
    /// `words()` words per vector to `codes`.
    pub fn encode_into(&self, kernels: &Kernels, vectors: &[f32], codes: &mut Vec<u64>) {
        let words = self.words();
        let p = self.projector();
        let (mut centred, mut proj) = (Vec::new(), Vec::new());
        for v in vectors.chunks_exact(self.dim) {
            p.project(kernels, v, &mut centred, &mut proj);
            let start = codes.len();
            codes.resize(start + words, 0);
            pack_signs(&proj, &mut codes[start..]);
        }
    }
}

/// A Hamming kernel: differing bits between two equal-length codes.
pub type HammingKernel = fn(&[u64], &[u64]) -> u32;

/// A Hamming scan: the distance from `query` to each code in `codes` (consecutive codes of
/// `query.len()` words) into `out`, one per code.
pub type HammingScan = fn(&[u64], &[u64], &mut [u32]);

/// Instruction-set paths for Hamming distances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HammingIsa {
    /// Portable `u64::count_ones` (a bit-twiddling sequence without target features).
    Scalar,
    /// x86_64 `popcnt`.
    Popcnt,
    /// x86_64 AVX-512 VPOPCNTDQ (eight words per instruction).
    Avx512Vpopcntdq,
    /// WebAssembly 128-bit SIMD (`i8x16.popcnt`).
    Simd128,
}

impl HammingIsa {
    /// Every path.
    pub const ALL: [HammingIsa; 4] =
        [HammingIsa::Scalar, HammingIsa::Simd128, HammingIsa::Popcnt, HammingIsa::Avx512Vpopcntdq];

    /// Short lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Popcnt => "popcnt",
            Self::Avx512Vpopcntdq => "avx512-vpopcntdq",
            Self::Simd128 => "simd128",
        }
    }
}

/// The Hamming kernel table an index holds, chosen once.
#[derive(Clone, Copy)]
pub struct Hamming {
    isa: HammingIsa,
    distance: HammingKernel,
    scan: HammingScan,
}

impl core::fmt::Debug for Hamming {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hamming").field("isa", &self.isa).finish()
    }
}

impl Default for Hamming {
    fn default() -> Self {
        Self::best()
    }
}

impl Hamming {
    /// The portable reference.
    pub const fn scalar() -> Self {
        Self { isa: HammingIsa::Scalar, distance: hamming_scalar, scan: scan_scalar }
    }

    /// The kernels for `isa`, if this build and this CPU support it.
    pub fn for_isa(isa: HammingIsa) -> Option<Self> {
        match isa {
            HammingIsa::Scalar => Some(Self::scalar()),
            HammingIsa::Popcnt => Self::popcnt(),
            HammingIsa::Avx512Vpopcntdq => Self::avx512(),
            HammingIsa::Simd128 => Self::simd128(),
        }
    }

    /// The fastest kernels available here.
    pub fn best() -> Self {
        Self::avx512().or_else(Self::popcnt).or_else(Self::simd128).unwrap_or(Self::scalar())
    }

    /// Which path this table uses.
    pub const fn isa(&self) -> HammingIsa {
        self.isa
    }

    /// Differing bits between `a` and `b` (equal lengths).
    #[inline]
    pub fn distance(&self, a: &[u64], b: &[u64]) -> u32 {
        debug_assert_eq!(a.len(), b.len());
        (self.distance)(a, b)
    }

    /// Distances from `query` to each of the consecutive codes in `codes` into `out`
    /// (`codes.len() / query.len()` values; `out` must have room for them).
    #[inline]
    pub fn scan(&self, query: &[u64], codes: &[u64], out: &mut [u32]) {
        (self.scan)(query, codes, out)
    }

    #[cfg(target_arch = "x86_64")]
    fn popcnt() -> Option<Self> {
        x86::popcnt_supported().then_some(Self {
            isa: HammingIsa::Popcnt,
            distance: x86::distance_popcnt,
            scan: x86::scan_popcnt,
        })
    }

    #[cfg(target_arch = "x86_64")]
    fn avx512() -> Option<Self> {
        x86::vpopcntdq_supported().then_some(Self {
            isa: HammingIsa::Avx512Vpopcntdq,
            distance: x86::distance_vpopcntdq,
            scan: x86::scan_vpopcntdq,
        })
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn popcnt() -> Option<Self> {
        None
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn avx512() -> Option<Self> {
        None
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn simd128() -> Option<Self> {
        Some(Self { isa: HammingIsa::Simd128, distance: wasm::distance, scan: wasm::scan })
    }

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    fn simd128() -> Option<Self> {
        None
    }
}

/// The specification: `Σ popcount(a_i ^ b_i)`.
#[inline]
pub fn hamming_scalar(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

fn scan_scalar(query: &[u64], codes: &[u64], out: &mut [u32]) {
    if query.is_empty() {
        return;
    }
    for (c, o) in codes.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = hamming_scalar(query, c);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! x86_64 Hamming paths. The safe wrappers are reachable only through
    //! `Hamming::popcnt()` / `Hamming::avx512()`, which check the CPU first.
    use core::arch::x86_64::*;

    #[cfg(feature = "std")]
    pub(super) fn popcnt_supported() -> bool {
        std::is_x86_feature_detected!("popcnt")
    }

    #[cfg(not(feature = "std"))]
    pub(super) fn popcnt_supported() -> bool {
        cfg!(target_feature = "popcnt")
    }

    #[cfg(feature = "std")]
    pub(super) fn vpopcntdq_supported() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vpopcntdq")
    }

    #[cfg(not(feature = "std"))]
    pub(super) fn vpopcntdq_supported() -> bool {
        cfg!(all(target_feature = "avx512f", target_feature = "avx512vpopcntdq"))
    }

    // The scalar reference's sum; compiled with `popcnt` enabled, `count_ones` becomes one
    // instruction instead of a dozen.
    // Four independent sums: one chain of adds would hold every popcnt back by its latency.
    #[target_feature(enable = "popcnt")]
    fn distance_popcnt_imp(a: &[u64], b: &[u64]) -> u32 {
        let n = a.len().min(b.len());
        let (a4, at) = a[..n].split_at(n - n % 4);
        let (b4, bt) = b[..n].split_at(n - n % 4);
        let mut acc = [0u32; 4];
        for (x, y) in a4.chunks_exact(4).zip(b4.chunks_exact(4)) {
            for l in 0..4 {
                acc[l] += (x[l] ^ y[l]).count_ones();
            }
        }
        let tail: u32 = at.iter().zip(bt).map(|(x, y)| (x ^ y).count_ones()).sum();
        acc[0] + acc[1] + acc[2] + acc[3] + tail
    }

    #[target_feature(enable = "popcnt")]
    fn scan_popcnt_imp(query: &[u64], codes: &[u64], out: &mut [u32]) {
        if query.is_empty() {
            return;
        }
        for (c, o) in codes.chunks_exact(query.len()).zip(out.iter_mut()) {
            *o = distance_popcnt_imp(query, c);
        }
    }

    pub(super) fn distance_popcnt(a: &[u64], b: &[u64]) -> u32 {
        // SAFETY: only reachable through `Hamming::popcnt()`, which checked the CPU has popcnt.
        unsafe { distance_popcnt_imp(a, b) }
    }

    pub(super) fn scan_popcnt(query: &[u64], codes: &[u64], out: &mut [u32]) {
        // SAFETY: as in `distance_popcnt`.
        unsafe { scan_popcnt_imp(query, codes, out) }
    }

    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    fn distance_vpopcntdq_imp(a: &[u64], b: &[u64]) -> u32 {
        let n = a.len().min(b.len());
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        while i < n {
            let left = n - i;
            // Lanes past the end are masked off: loaded as zero, so they add nothing.
            let mask: __mmask8 = if left >= 8 { 0xFF } else { (1u8 << left) - 1 };
            // SAFETY: the mask enables only lanes i..min(i + 8, n), all inside both slices;
            // masked-off lanes are not read (no fault), and loadu needs no alignment.
            let (x, y) = unsafe {
                (
                    _mm512_maskz_loadu_epi64(mask, a.as_ptr().add(i) as *const i64),
                    _mm512_maskz_loadu_epi64(mask, b.as_ptr().add(i) as *const i64),
                )
            };
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(x, y)));
            i += 8;
        }
        _mm512_reduce_add_epi64(acc) as u32
    }

    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    fn scan_vpopcntdq_imp(query: &[u64], codes: &[u64], out: &mut [u32]) {
        if query.is_empty() {
            return;
        }
        for (c, o) in codes.chunks_exact(query.len()).zip(out.iter_mut()) {
            *o = distance_vpopcntdq_imp(query, c);
        }
    }

    pub(super) fn distance_vpopcntdq(a: &[u64], b: &[u64]) -> u32 {
        // SAFETY: only reachable through `Hamming::avx512()`, which checked the CPU has
        // AVX-512F and VPOPCNTDQ.
        unsafe { distance_vpopcntdq_imp(a, b) }
    }

    pub(super) fn scan_vpopcntdq(query: &[u64], codes: &[u64], out: &mut [u32]) {
        // SAFETY: as in `distance_vpopcntdq`.
        unsafe { scan_vpopcntdq_imp(query, codes, out) }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    //! wasm32 simd128 Hamming path: two words per `v128`, `i8x16.popcnt`, byte counts widened
    //! pairwise into four u32 lanes. Compiled in only when the module is built with simd128,
    //! so no runtime check is needed.
    use core::arch::wasm32::*;

    pub(super) fn distance(a: &[u64], b: &[u64]) -> u32 {
        let n = a.len().min(b.len());
        let pairs = n / 2;
        let mut acc = u32x4_splat(0);
        for i in 0..pairs {
            // SAFETY: words 2i and 2i + 1 are inside both slices (2i + 1 < n); v128_load has no
            // alignment requirement in WebAssembly.
            let (x, y) = unsafe {
                (
                    v128_load(a.as_ptr().add(2 * i) as *const v128),
                    v128_load(b.as_ptr().add(2 * i) as *const v128),
                )
            };
            let bytes = i8x16_popcnt(v128_xor(x, y));
            let shorts = u16x8_extadd_pairwise_u8x16(bytes);
            acc = i32x4_add(acc, u32x4_extadd_pairwise_u16x8(shorts));
        }
        let mut sum = u32x4_extract_lane::<0>(acc)
            + u32x4_extract_lane::<1>(acc)
            + u32x4_extract_lane::<2>(acc)
            + u32x4_extract_lane::<3>(acc);
        if n % 2 == 1 {
            sum += (a[n - 1] ^ b[n - 1]).count_ones();
        }
        sum
    }

    pub(super) fn scan(query: &[u64], codes: &[u64], out: &mut [u32]) {
        if query.is_empty() {
            return;
        }
        for (c, o) in codes.chunks_exact(query.len()).zip(out.iter_mut()) {
            *o = distance(query, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_words(rng: &mut Rng, n: usize) -> Vec<u64> {
        (0..n).map(|_| rng.next_u64()).collect()
    }

    #[test]
    fn every_available_path_equals_the_scalar_reference() {
        let mut rng = Rng::new(11);
        for isa in HammingIsa::ALL {
            let Some(h) = Hamming::for_isa(isa) else {
                std::println!("hamming path {}: skipped (not supported by this build or CPU)", isa.name());
                continue;
            };
            for words in 0..=40 {
                for _ in 0..20 {
                    let a = random_words(&mut rng, words);
                    let b = random_words(&mut rng, words);
                    assert_eq!(h.distance(&a, &b), hamming_scalar(&a, &b), "{} at {words} words", isa.name());
                }
                if words > 0 {
                    let q = random_words(&mut rng, words);
                    let codes = random_words(&mut rng, words * 9);
                    let (mut got, mut want) = ([0u32; 9], [0u32; 9]);
                    h.scan(&q, &codes, &mut got);
                    scan_scalar(&q, &codes, &mut want);
                    assert_eq!(got, want, "{} scan at {words} words", isa.name());
                }
            }
            // Extremes: identical and complementary codes.
            let a = random_words(&mut rng, 17);
            let not_a: Vec<u64> = a.iter().map(|w| !w).collect();
            assert_eq!(h.distance(&a, &a), 0);
            assert_eq!(h.distance(&a, &not_a), 17 * 64);
        }
    }

    #[test]
    fn packing_keeps_unused_bits_zero() {
        let proj: Vec<f32> = (0..70).map(|i| if i % 3 == 0 { 1.0 } else { -1.0 }).collect();
        let mut code = [u64::MAX; 2];
        pack_signs(&proj, &mut code);
        assert_eq!(code[1] & !last_word_mask(70), 0);
        for i in 0..70 {
            assert_eq!(bit(&code, i), i % 3 == 0);
        }
        assert!(!bit(&code, 200));
        assert_eq!(last_word_mask(64), u64::MAX);
        assert_eq!(last_word_mask(1), 1);
    }

    #[test]
    fn quantizer_rejects_bad_configurations() {
        assert!(BinaryQuantizer::new(8, 0, Encoder::Hyperplanes, false, 1).is_err());
        assert!(BinaryQuantizer::new(8, MAX_BITS + 1, Encoder::Hyperplanes, false, 1).is_err());
        assert!(BinaryQuantizer::new(8, 16, Encoder::Sign, false, 1).is_err());
        assert!(BinaryQuantizer::new(0, 16, Encoder::Hyperplanes, false, 1).is_err());
        let mut q = BinaryQuantizer::new(4, 8, Encoder::Hyperplanes, true, 1).unwrap();
        assert!(q.train(&Kernels::scalar(), &[]).is_err());
        assert!(q.train(&Kernels::scalar(), &[1.0, f32::NAN, 0.0, 0.0]).is_err());
        q.train(&Kernels::scalar(), &[1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0, 0.0]).unwrap();
        assert_eq!(q.mean(), &[2.0, 2.0, 2.0, 2.0]);
        assert_eq!(q.planes().len(), 32);
        for p in q.planes().chunks_exact(4) {
            let norm: f32 = p.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn planes_depend_only_on_the_seed_and_not_on_the_kernels() {
        let data: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut a = BinaryQuantizer::new(16, 100, Encoder::Hyperplanes, false, 5).unwrap();
        let mut b = a.clone();
        a.train(&Kernels::scalar(), &data).unwrap();
        b.train(&Kernels::best(), &data).unwrap();
        assert_eq!(a, b);
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        a.encode_into(&Kernels::scalar(), &data, &mut ca);
        b.encode_into(&Kernels::best(), &data, &mut cb);
        assert_eq!(ca, cb);
        assert_eq!(ca.len(), 4 * 2);
        assert!(ca.chunks_exact(2).all(|c| c[1] & !last_word_mask(100) == 0));
    }
}
