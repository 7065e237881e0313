//! Product quantization: codebooks, encode/decode, ADC lookup tables and table scans.
//!
//! A vector of `dim` dimensions is cut into `m` sub-vectors of `dsub = dim / m` dimensions;
//! each sub-vector is replaced by the index of its nearest centroid in that subspace's
//! codebook of `ksub = 2^nbits` centroids. With 8 bits a code is `m` bytes; with 4 bits two
//! sub-codes share a byte (sub-vector `2i` in the low nibble, `2i + 1` in the high one).
//!
//! A query is scored against codes without decoding them (asymmetric distance computation):
//! a table of `m × ksub` partial distances is computed once per query and each code's distance
//! is the sum of `m` table entries. Every sum runs in sub-vector order `0..m` starting from a
//! caller-given base, in the scan as in [`ProductQuantizer::adc`], so results are the same
//! however many codes a scan processes at once and on every target.

use alloc::vec;
use alloc::vec::Vec;

use super::kmeans::{kmeans, nearest_transposed, transpose, KMeansParams};
use crate::rng::Rng;
use crate::validate::check_vectors;
use crate::{Error, Kernels, Result};

/// A trained (or, until [`ProductQuantizer::train`], untrained) product quantizer.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductQuantizer {
    dim: usize,
    m: usize,
    nbits: u8,
    /// `m × ksub × dsub`, row-major; empty until trained.
    codebooks: Vec<f32>,
    /// The same, per sub-quantizer transposed to `dsub × ksub`: tables and encoding then
    /// compute `ksub` sums side by side (vectorised), each still in dimension order.
    transposed: Vec<f32>,
}

impl ProductQuantizer {
    /// An untrained quantizer of `dim`-dimensional vectors into `m` sub-codes of `nbits` bits
    /// (8 or 4). `dim` must be a multiple of `m`.
    pub fn new(dim: usize, m: usize, nbits: u8) -> Result<Self> {
        crate::validate::check_dim(dim)?;
        if m == 0 || m > dim {
            return Err(Error::InvalidParameter {
                name: "pq_m",
                reason: "must be between 1 and the dimension",
            });
        }
        if !dim.is_multiple_of(m) {
            return Err(Error::InvalidParameter {
                name: "pq_m",
                reason: "must divide the dimension (each sub-quantizer takes dim / m dimensions)",
            });
        }
        if nbits != 8 && nbits != 4 {
            return Err(Error::InvalidParameter { name: "nbits", reason: "must be 8 or 4" });
        }
        Ok(Self { dim, m, nbits, codebooks: Vec::new(), transposed: Vec::new() })
    }

    /// A trained quantizer from its codebooks (`m × 2^nbits × dim / m` finite floats).
    pub fn from_codebooks(dim: usize, m: usize, nbits: u8, codebooks: Vec<f32>) -> Result<Self> {
        let mut pq = Self::new(dim, m, nbits)?;
        if codebooks.len() != pq.ksub() * dim {
            return Err(Error::InvalidParameter {
                name: "codebooks",
                reason: "must hold m × 2^nbits × (dim / m) floats",
            });
        }
        if codebooks.iter().any(|&x| !crate::in_range(x)) {
            return Err(Error::InvalidParameter {
                name: "codebooks",
                reason: "hold NaN, infinity or a value beyond ±2^50",
            });
        }
        pq.set_codebooks(codebooks);
        Ok(pq)
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Number of sub-quantizers.
    pub fn m(&self) -> usize {
        self.m
    }
    /// Bits per sub-code (8 or 4).
    pub fn nbits(&self) -> u8 {
        self.nbits
    }
    /// Dimensions per sub-vector.
    pub fn dsub(&self) -> usize {
        self.dim / self.m
    }
    /// Centroids per sub-quantizer (`2^nbits`).
    pub fn ksub(&self) -> usize {
        1 << self.nbits
    }
    /// Bytes per code.
    pub fn code_len(&self) -> usize {
        if self.nbits == 8 {
            self.m
        } else {
            self.m.div_ceil(2)
        }
    }
    /// Whether the codebooks exist.
    pub fn is_trained(&self) -> bool {
        !self.codebooks.is_empty()
    }
    /// The codebooks, `m × ksub × dsub` row-major (empty until trained).
    pub fn codebooks(&self) -> &[f32] {
        &self.codebooks
    }

    /// Trains every sub-quantizer with k-means (`iterations` Lloyd steps, seeds derived from
    /// `seed` per subspace) on row-major `data`, which needs at least `ksub` vectors.
    pub fn train(&mut self, kernels: Kernels, data: &[f32], seed: u64, iterations: usize) -> Result<()> {
        if data.len() < self.dim && !data.is_empty() {
            return Err(Error::DimensionMismatch { expected: self.dim, got: data.len() });
        }
        let n = check_vectors(data, self.dim)?;
        if n < self.ksub() {
            return Err(Error::InvalidParameter {
                name: "training data",
                reason: "product quantizer training needs at least 2^nbits vectors",
            });
        }
        let (dsub, ksub) = (self.dsub(), self.ksub());
        let train_one = |j: usize| -> Result<Vec<f32>> {
            let sub: Vec<f32> = data
                .chunks_exact(self.dim)
                .flat_map(|v| v[j * dsub..(j + 1) * dsub].iter().copied())
                .collect();
            let seed = Rng::derive(seed, j as u64 + 1).next_u64();
            let params = KMeansParams::new(ksub).with_seed(seed).with_iterations(iterations);
            kmeans(kernels, &sub, dsub, &params)
        };
        #[cfg(feature = "parallel")]
        let books: Vec<Result<Vec<f32>>> = {
            use rayon::prelude::*;
            (0..self.m).into_par_iter().map(train_one).collect()
        };
        #[cfg(not(feature = "parallel"))]
        let books: Vec<Result<Vec<f32>>> = (0..self.m).map(train_one).collect();
        let mut codebooks = Vec::with_capacity(self.m * ksub * dsub);
        for book in books {
            codebooks.extend_from_slice(&book?);
        }
        self.set_codebooks(codebooks);
        Ok(())
    }

    fn set_codebooks(&mut self, codebooks: Vec<f32>) {
        let size = self.ksub() * self.dsub();
        self.transposed =
            codebooks.chunks_exact(size).flat_map(|book| transpose(book, self.dsub())).collect();
        self.codebooks = codebooks;
    }

    /// Sub-quantizer `j`'s codebook transposed (`dsub × ksub`).
    #[inline]
    fn book_t(&self, j: usize) -> &[f32] {
        let size = self.ksub() * self.dsub();
        &self.transposed[j * size..(j + 1) * size]
    }

    fn check_ready(&self, len: usize) -> Result<()> {
        if !self.is_trained() {
            return Err(Error::NotTrained);
        }
        if len != self.dim {
            return Err(Error::DimensionMismatch { expected: self.dim, got: len });
        }
        Ok(())
    }

    /// The codebook of sub-quantizer `j` (`ksub × dsub`).
    #[inline]
    fn book(&self, j: usize) -> &[f32] {
        let size = self.ksub() * self.dsub();
        &self.codebooks[j * size..(j + 1) * size]
    }

    /// Encodes `x` into `code` (`code_len` bytes).
    pub fn encode(&self, x: &[f32], code: &mut [u8]) -> Result<()> {
        self.check_ready(x.len())?;
        if code.len() != self.code_len() {
            return Err(Error::InvalidParameter { name: "code", reason: "must hold code_len bytes" });
        }
        self.encode_unchecked(x, code);
        Ok(())
    }

    /// [`encode`](Self::encode) for callers that validated the lengths and training.
    pub(crate) fn encode_unchecked(&self, x: &[f32], code: &mut [u8]) {
        let dsub = self.dsub();
        let mut scores = [0.0f32; 256];
        code.fill(0);
        for (j, sub) in x.chunks_exact(dsub).enumerate() {
            let (c, _) = nearest_transposed(self.book_t(j), self.ksub(), sub, &mut scores);
            if self.nbits == 8 {
                code[j] = c as u8;
            } else {
                code[j / 2] |= (c as u8 & 0xF) << (4 * (j % 2));
            }
        }
    }

    /// Sub-code `j` of `code`.
    #[inline]
    fn sub_code(&self, code: &[u8], j: usize) -> usize {
        if self.nbits == 8 {
            code[j] as usize
        } else {
            ((code[j / 2] >> (4 * (j % 2))) & 0xF) as usize
        }
    }

    /// Writes the reconstruction of `code` (the concatenated sub-centroids) into `out`.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) -> Result<()> {
        self.check_ready(out.len())?;
        if code.len() != self.code_len() {
            return Err(Error::InvalidParameter { name: "code", reason: "must hold code_len bytes" });
        }
        let dsub = self.dsub();
        for (j, sub) in out.chunks_exact_mut(dsub).enumerate() {
            let c = self.sub_code(code, j);
            sub.copy_from_slice(&self.book(j)[c * dsub..(c + 1) * dsub]);
        }
        Ok(())
    }

    /// Fills `table` (`m × ksub`) with `Σ_d term(q_jd, c_jkd)` for every sub-quantizer `j` and
    /// centroid `k`, each sum from zero in dimension order (as a sequential loop sums),
    /// `ksub` of them side by side over the transposed codebooks.
    #[inline]
    fn fill_table(&self, query: &[f32], table: &mut Vec<f32>, term: impl Fn(f32, f32) -> f32) {
        table.clear();
        table.resize(self.m * self.ksub(), 0.0);
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above), which is all `fill_rows_avx2`
            // enables.
            unsafe { fill_rows_avx2(self, query, table, &term) };
            return;
        }
        fill_rows(self, query, table, &term);
    }

    /// The L2 ADC table of `query`: squared distances between each query sub-vector and each
    /// sub-centroid, so that [`adc`](Self::adc) with base 0 is the squared distance to the
    /// decoded vector.
    pub fn l2_table(&self, query: &[f32], table: &mut Vec<f32>) -> Result<()> {
        self.check_ready(query.len())?;
        self.fill_table(query, table, l2_term);
        Ok(())
    }

    /// The inner-product ADC table of `query`: negated sub-dot products, so that "smaller is
    /// closer" and [`adc`](Self::adc) with base 0 is minus the inner product with the decoded
    /// vector.
    pub fn ip_table(&self, query: &[f32], table: &mut Vec<f32>) -> Result<()> {
        self.check_ready(query.len())?;
        self.fill_table(query, table, dot_term);
        table.iter_mut().for_each(|x| *x = -*x);
        Ok(())
    }

    /// Positive sub-dot products `⟨q_j, c_jk⟩` (the query term of IVF's L2 decomposition).
    pub(crate) fn dot_table_unchecked(&self, query: &[f32], table: &mut Vec<f32>) {
        self.fill_table(query, table, dot_term);
    }

    /// Negated inner-product table for callers that validated the query.
    pub(crate) fn ip_table_unchecked(&self, query: &[f32], table: &mut Vec<f32>) {
        self.fill_table(query, table, dot_term);
        table.iter_mut().for_each(|x| *x = -*x);
    }

    /// L2 table for callers that validated the query.
    pub(crate) fn l2_table_unchecked(&self, query: &[f32], table: &mut Vec<f32>) {
        self.fill_table(query, table, l2_term);
    }

    /// For every coarse centroid `c` (row-major `nlist × dim`): `‖r_jk‖² + 2⟨c_j, r_jk⟩` for
    /// each sub-centroid `r_jk`, the query-independent part of
    /// `‖q − c − r‖² = ‖q − c‖² + Σ_j (‖r_j‖² + 2⟨c_j, r_j⟩) − 2 Σ_j ⟨q_j, r_j⟩`.
    /// Layout `nlist × m × ksub`.
    pub(crate) fn residual_terms(&self, centroids: &[f32]) -> Vec<f32> {
        let dsub = self.dsub();
        let ksub = self.ksub();
        let norms: Vec<f32> = self.codebooks.chunks_exact(dsub).map(|r| sub_dot(r, r)).collect();
        let mut out = Vec::with_capacity(centroids.len() / self.dim * self.m * ksub);
        for c in centroids.chunks_exact(self.dim) {
            for (j, cj) in c.chunks_exact(dsub).enumerate() {
                let book = self.book(j);
                let norms = &norms[j * ksub..(j + 1) * ksub];
                out.extend(book.chunks_exact(dsub).zip(norms).map(|(r, &n)| n + 2.0 * sub_dot(cj, r)));
            }
        }
        out
    }

    fn check_table(&self, table: &[f32]) -> Result<()> {
        if table.len() != self.m * self.ksub() {
            return Err(Error::InvalidParameter { name: "table", reason: "must hold m × 2^nbits entries" });
        }
        Ok(())
    }

    /// The ADC distance of one code: `base + Σ_j table[j][code_j]`, summed in order of `j`.
    pub fn adc(&self, table: &[f32], code: &[u8], base: f32) -> Result<f32> {
        self.check_table(table)?;
        if code.len() != self.code_len() {
            return Err(Error::InvalidParameter { name: "code", reason: "must hold code_len bytes" });
        }
        let ksub = self.ksub();
        let mut sum = base;
        for (j, t) in table.chunks_exact(ksub).enumerate() {
            sum += t[self.sub_code(code, j)];
        }
        Ok(sum)
    }

    /// The ADC distances of `out.len()` codes (`codes` holds exactly that many, back to back),
    /// each `base + Σ_j table[j][code_j]` summed in order of `j`: identical to
    /// [`adc`](Self::adc) code by code. The hot loop of every IVF-PQ search.
    pub fn scan(&self, table: &[f32], codes: &[u8], base: f32, out: &mut [f32]) -> Result<()> {
        self.check_table(table)?;
        if codes.len() != out.len() * self.code_len() {
            return Err(Error::InvalidParameter {
                name: "codes",
                reason: "must hold code_len bytes per output",
            });
        }
        if self.nbits == 8 {
            let tables: &[[f32; 256]] = bytemuck::cast_slice(&table[..self.m * 256]);
            scan8(tables, codes, base, out);
        } else {
            let tables: &[[f32; 16]] = bytemuck::cast_slice(&table[..self.m * 16]);
            scan4(tables, self.code_len(), codes, base, out);
        }
        Ok(())
    }
}

/// The table loop: `ksub` independent sums side by side, each a plain multiply then add (no
/// fusing), so any vector width gives the same bits.
#[inline(always)]
fn fill_rows(pq: &ProductQuantizer, query: &[f32], table: &mut [f32], term: &impl Fn(f32, f32) -> f32) {
    let (dsub, ksub) = (pq.dsub(), pq.ksub());
    for (j, (q, out)) in query.chunks_exact(dsub).zip(table.chunks_exact_mut(ksub)).enumerate() {
        for (&qd, row) in q.iter().zip(pq.book_t(j).chunks_exact(ksub)) {
            for (o, &c) in out.iter_mut().zip(row) {
                *o += term(qd, c);
            }
        }
    }
}

/// [`fill_rows`] compiled for AVX2: the same operations eight lanes wide instead of the
/// baseline's four (measured: the 384-d, m = 48 inner-product table in about half the time).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[target_feature(enable = "avx2")]
fn fill_rows_avx2(pq: &ProductQuantizer, query: &[f32], table: &mut [f32], term: &impl Fn(f32, f32) -> f32) {
    fill_rows(pq, query, table, term)
}

#[inline(always)]
fn l2_term(q: f32, c: f32) -> f32 {
    let d = q - c;
    d * d
}

#[inline(always)]
fn dot_term(q: f32, c: f32) -> f32 {
    q * c
}

/// Squared distance of two sub-vectors, one sequential sum (the specification
/// [`ProductQuantizer::fill_table`] matches).
#[cfg(test)]
fn sub_l2(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        s += l2_term(*x, *y);
    }
    s
}

/// Dot product of two sub-vectors, one sequential sum.
#[inline(always)]
fn sub_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

/// 8-bit scan: four codes at a time with independent accumulators, so four table-lookup
/// chains are in flight at once; each code still sums its entries in order of `j`.
///
/// Measured on Zen 3 (ns per code at m = 16 / 32 / 48): this loop 4.5 / 9.3 / 15.4; eight
/// codes at a time 4.8 / 9.6 / 16.5; sub-codes read eight per `u64` load 5.1 / 10.3 / 16.4;
/// the same compiled for AVX2 9.2 / 16.2 / 24.4; AVX2 gathers (one 32-bit gather for four
/// sub-codes of eight codes, then float gathers) 12.0 / 23.5 / 35.8. The loop is bound by its
/// two loads per lookup, and gathers are slow on AMD cores, so no SIMD path is kept.
fn scan8(tables: &[[f32; 256]], codes: &[u8], base: f32, out: &mut [f32]) {
    let m = tables.len();
    let mut blocks = codes.chunks_exact(4 * m);
    let mut outs = out.chunks_exact_mut(4);
    for (block, o) in (&mut blocks).zip(&mut outs) {
        let (c0, rest) = block.split_at(m);
        let (c1, rest) = rest.split_at(m);
        let (c2, c3) = rest.split_at(m);
        let mut a = [base; 4];
        for ((((t, &x0), &x1), &x2), &x3) in tables.iter().zip(c0).zip(c1).zip(c2).zip(c3) {
            a[0] += t[x0 as usize];
            a[1] += t[x1 as usize];
            a[2] += t[x2 as usize];
            a[3] += t[x3 as usize];
        }
        o.copy_from_slice(&a);
    }
    for (code, o) in blocks.remainder().chunks_exact(m).zip(outs.into_remainder()) {
        let mut a = base;
        for (t, &x) in tables.iter().zip(code) {
            a += t[x as usize];
        }
        *o = a;
    }
}

/// 4-bit scan: two sub-codes per byte, two codes at a time.
fn scan4(tables: &[[f32; 16]], code_len: usize, codes: &[u8], base: f32, out: &mut [f32]) {
    let one = |code: &[u8]| -> f32 {
        let mut a = base;
        for (pair, &byte) in tables.chunks(2).zip(code) {
            a += pair[0][(byte & 0xF) as usize];
            if let Some(high) = pair.get(1) {
                a += high[(byte >> 4) as usize];
            }
        }
        a
    };
    let mut blocks = codes.chunks_exact(2 * code_len);
    let mut outs = out.chunks_exact_mut(2);
    for (block, o) in (&mut blocks).zip(&mut outs) {
        let (c0, c1) = block.split_at(code_len);
        let (mut a0, mut a1) = (base, base);
        for ((pair, &b0), &b1) in tables.chunks(2).zip(c0).zip(c1) {
            a0 += pair[0][(b0 & 0xF) as usize];
            a1 += pair[0][(b1 & 0xF) as usize];
            if let Some(high) = pair.get(1) {
                a0 += high[(b0 >> 4) as usize];
                a1 += high[(b1 >> 4) as usize];
            }
        }
        o[0] = a0;
        o[1] = a1;
    }
    for (code, o) in blocks.remainder().chunks_exact(code_len).zip(outs.into_remainder()) {
        *o = one(code);
    }
}

/// Mean squared reconstruction error of `pq` over row-major `data` (tests and tuning).
pub fn reconstruction_error(pq: &ProductQuantizer, kernels: &Kernels, data: &[f32]) -> Result<f32> {
    let n = check_vectors(data, pq.dim())?;
    let mut code = vec![0u8; pq.code_len()];
    let mut decoded = vec![0.0f32; pq.dim()];
    let mut total = 0.0f64;
    for x in data.chunks_exact(pq.dim()) {
        pq.encode(x, &mut code)?;
        pq.decode(&code, &mut decoded)?;
        total += kernels.l2sq(x, &decoded) as f64;
    }
    Ok((total / n.max(1) as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..n * dim).map(|_| rng.normal() as f32).collect()
    }

    #[test]
    fn reconstruction_error_is_bounded_and_falls_with_m() {
        let dim = 32;
        let data = gaussian(2000, dim, 1);
        let k = Kernels::best();
        let mut last = f32::INFINITY;
        for m in [2, 4, 8, 16] {
            let mut pq = ProductQuantizer::new(dim, m, 8).unwrap();
            pq.train(k, &data, 7, 10).unwrap();
            let err = reconstruction_error(&pq, &k, &data).unwrap();
            // Unit Gaussian data: the error of the zero code would be `dim`.
            assert!(err < 0.8 * dim as f32, "m {m}: error {err}");
            assert!(err < last, "m {m}: error {err} did not fall below {last}");
            last = err;
        }
    }

    #[test]
    fn adc_and_scan_equal_the_distance_to_the_decoded_vector() {
        let k = Kernels::scalar();
        for (dim, m, nbits) in [(32, 8, 8), (24, 6, 4), (20, 5, 4)] {
            let data = gaussian(600, dim, 2);
            let mut pq = ProductQuantizer::new(dim, m, nbits).unwrap();
            pq.train(k, &data, 3, 8).unwrap();
            let q = gaussian(1, dim, 99);
            let (mut l2, mut ip) = (Vec::new(), Vec::new());
            pq.l2_table(&q, &mut l2).unwrap();
            pq.ip_table(&q, &mut ip).unwrap();
            let n = 37;
            let mut codes = vec![0u8; n * pq.code_len()];
            for (x, c) in data.chunks_exact(dim).zip(codes.chunks_exact_mut(pq.code_len())) {
                pq.encode(x, c).unwrap();
            }
            let mut scanned = vec![0.0f32; n];
            pq.scan(&l2, &codes, 0.5, &mut scanned).unwrap();
            let mut decoded = vec![0.0f32; dim];
            for (i, c) in codes.chunks_exact(pq.code_len()).enumerate() {
                pq.decode(c, &mut decoded).unwrap();
                let want_l2 = k.l2sq(&q, &decoded);
                let got_l2 = pq.adc(&l2, c, 0.0).unwrap();
                assert!((got_l2 - want_l2).abs() <= 1e-4 * want_l2.max(1.0), "{got_l2} vs {want_l2}");
                assert_eq!(
                    scanned[i].to_bits(),
                    pq.adc(&l2, c, 0.5).unwrap().to_bits(),
                    "scan == adc, bit for bit"
                );
                let want_ip = -k.dot(&q, &decoded);
                let got_ip = pq.adc(&ip, c, 0.0).unwrap();
                assert!((got_ip - want_ip).abs() <= 1e-4 * want_ip.abs().max(1.0), "{got_ip} vs {want_ip}");
            }
        }
    }

    #[test]
    fn tables_equal_sequential_sub_sums_bit_for_bit() {
        let (dim, m) = (24, 3);
        let data = gaussian(300, dim, 5);
        let mut pq = ProductQuantizer::new(dim, m, 8).unwrap();
        pq.train(Kernels::best(), &data, 2, 4).unwrap();
        let q = gaussian(1, dim, 6);
        let (mut l2, mut ip) = (Vec::new(), Vec::new());
        pq.l2_table(&q, &mut l2).unwrap();
        pq.ip_table(&q, &mut ip).unwrap();
        let dsub = pq.dsub();
        for j in 0..m {
            for (k, c) in pq.book(j).chunks_exact(dsub).enumerate() {
                let qj = &q[j * dsub..(j + 1) * dsub];
                assert_eq!(l2[j * 256 + k].to_bits(), sub_l2(qj, c).to_bits());
                assert_eq!(ip[j * 256 + k].to_bits(), (-sub_dot(qj, c)).to_bits());
            }
        }
    }

    #[test]
    fn four_bit_codes_round_trip() {
        let dim = 12;
        let data = gaussian(300, dim, 4);
        let k = Kernels::best();
        let mut pq = ProductQuantizer::new(dim, 6, 4).unwrap();
        pq.train(k, &data, 1, 10).unwrap();
        assert_eq!(pq.code_len(), 3);
        let mut decoded = vec![0.0f32; dim];
        let mut again = vec![0u8; 3];
        for j in 0..=255u8 {
            let code = [j, j.rotate_left(3), !j];
            pq.decode(&code, &mut decoded).unwrap();
            // A decoded vector is made of codebook entries, so it encodes back to itself
            // unless two sub-centroids coincide.
            pq.encode(&decoded, &mut again).unwrap();
            let mut redecoded = vec![0.0f32; dim];
            pq.decode(&again, &mut redecoded).unwrap();
            assert_eq!(decoded, redecoded);
        }
    }

    #[test]
    fn rejects_bad_shapes_and_untrained_use() {
        assert!(matches!(ProductQuantizer::new(30, 7, 8), Err(Error::InvalidParameter { name: "pq_m", .. })));
        assert!(matches!(
            ProductQuantizer::new(32, 8, 5),
            Err(Error::InvalidParameter { name: "nbits", .. })
        ));
        assert!(matches!(ProductQuantizer::new(32, 0, 8), Err(Error::InvalidParameter { .. })));
        let pq = ProductQuantizer::new(8, 2, 8).unwrap();
        let mut t = Vec::new();
        assert_eq!(pq.l2_table(&[0.0; 8], &mut t), Err(Error::NotTrained));
        let mut pq = ProductQuantizer::new(8, 2, 8).unwrap();
        assert!(pq.train(Kernels::best(), &gaussian(100, 8, 1), 1, 5).is_err(), "fewer points than ksub");
        assert!(ProductQuantizer::from_codebooks(8, 2, 4, vec![f32::NAN; 16 * 8]).is_err());
        let pq = ProductQuantizer::from_codebooks(8, 2, 4, vec![0.5; 16 * 8]).unwrap();
        let mut table = Vec::new();
        pq.l2_table(&[0.0; 8], &mut table).unwrap();
        assert!(pq.adc(&table, &[], 0.0).is_err(), "short code");
        assert!(pq.adc(&table[1..], &[0], 0.0).is_err(), "short table");
        assert!(pq.scan(&table, &[0, 1, 2], 0.0, &mut [0.0; 2]).is_err(), "codes for 3, outputs for 2");
        assert_eq!(pq.adc(&table, &[0x21], 1.0), Ok(1.0 + 0.25 * 8.0));
    }
}
