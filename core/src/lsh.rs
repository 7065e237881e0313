//! The binary-code index: vectors become bit codes ([`crate::quant::binary`]); a search ranks
//! codes by Hamming distance, either all of them or only the candidates of multi-probe LSH
//! tables, then optionally reranks the best `k × rerank_factor` with exact distances.
//!
//! [`BinaryIndex`] owns its codes, vectors and tables and grows; [`BinaryView`] searches a
//! file's bytes in place after validating everything a hostile file can lie about. Both hand
//! the same borrowed [`Parts`] to one search routine, so they return identical results.
//!
//! # Search
//! - `rerank_factor = 0`: results carry the Hamming distance (as `f32`).
//! - `rerank_factor = R > 0`: the best `k × R` codes are reranked with the exact metric
//!   distance on the stored vectors; results carry exact distances. A file written without
//!   vectors refuses this with [`Error::InvalidParameter`].
//! - With tables (`tables > 0`), `nprobe` is the number of buckets probed per table (0 = 8):
//!   the query's own bucket, then the buckets reached by flipping the key bits whose
//!   projections lie closest to their hyperplane, in increasing order of the summed squared
//!   distances (the perturbation sequence of Lv et al., "Multi-probe LSH", VLDB 2007).
//! - A filter that knows its size and allows fewer than one slot in eight switches an LSH
//!   search to the exhaustive scan: most table candidates would be rejected otherwise.
//!
//! # File contents (index kind `binary`)
//! - `PARAMS` (64 bytes, little-endian): `bits` u32 @0, `words` u32 @4, encoder u32 @8
//!   (1 sign, 2 hyperplanes), flags u32 @12 (bit 0: centred by the training mean; bit 1:
//!   trained; others zero), `seed` u64 @16, `tables` u32 @24, `key_bits` u32 @28, 32 reserved
//!   zero bytes @32.
//! - `BINARY_PLANES` (present when trained and centring or hyperplanes): the mean (`dim` f32)
//!   if centred, then the unit planes (`bits × dim` f32) for the hyperplane encoder.
//! - `BINARY_CODES`: `count × words` u64, the code of each slot; unused high bits zero.
//! - `LSH_TABLES` (present iff `tables > 0`), all u32: the key bit positions
//!   (`tables × key_bits`), the bucket offsets (`tables × (2^key_bits + 1)`, each table's
//!   running start of its buckets, from 0 to `count`), and the slots (`tables × count`, each
//!   table's slots grouped by bucket, ascending within a bucket).
//! - `VECTORS` (optional): `count × dim` f32, normalised for cosine; needed to rerank.
//! - `IDS` (optional): caller ids, as for every index.

use alloc::collections::BinaryHeap;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::Range;

use crate::filter::{estimate_matches, results_owed};
use crate::format::{
    cast_f32, cast_u32, write_index, FileInfo, FormatError, IndexKind, OpenOptions, SectionKind, SectionRef,
};
use crate::format::{invalid as bad, range_in as range_of};
use crate::quant::binary::{
    last_word_mask, pack_signs, words_for, BinaryQuantizer, Encoder, Hamming, Projector, MAX_BITS,
};
use crate::rng::Rng;
use crate::validate::{check_dim, check_query};
use crate::vectors::{check_half_range, Allowed, RowVec, Rows, VectorForm, VectorsAt};
use crate::{
    check_vectors, Error, Filter, IdMap, Kernels, Metric, Neighbor, Plan, Result, SearchParams, SearchStats,
    TopK, VectorSearch, ZeroVectorKind,
};

/// Most LSH tables an index may have.
pub const MAX_TABLES: usize = 64;
/// Most bits of an LSH table key (a table of 2^20 + 1 offsets is 4 MiB).
pub const MAX_KEY_BITS: usize = 20;
/// Buckets probed per table when `SearchParams::nprobe` is 0.
pub const DEFAULT_PROBES: usize = 8;

const PARAMS_LEN: usize = 64;
const FLAG_CENTERED: u32 = 1;
const FLAG_TRAINED: u32 = 2;
/// Codes Hamming-scanned per call of the kernel: small enough for the distances to stay in L1.
const SCAN_BLOCK: usize = 256;
/// Stream of the seeded generator that picks the key bits, apart from the planes' stream.
const KEY_STREAM: u64 = 0x4C53_4854;

/// Parameters of a [`BinaryIndex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinaryParams {
    /// Code length in bits (equal to `dim` for the sign encoder).
    pub bits: usize,
    /// How vectors become bits.
    pub encoder: Encoder,
    /// Subtract the training mean before encoding (recommended: data rarely centres on 0).
    pub center: bool,
    /// Seed of the planes and of the table key bits.
    pub seed: u64,
    /// LSH tables; 0 means an exhaustive Hamming scan.
    pub tables: usize,
    /// Bits per table key, 1 to 20 (ignored, and stored as 0, without tables). When
    /// `tables × key_bits ≤ bits` the tables take disjoint seeded bit sets; otherwise each
    /// table draws its own (bits repeat across tables, never within one).
    pub key_bits: usize,
}

impl BinaryParams {
    /// `bits` centred random hyperplanes, exhaustive scan.
    pub const fn hyperplanes(bits: usize) -> Self {
        Self { bits, encoder: Encoder::Hyperplanes, center: true, seed: 0x5EED, tables: 0, key_bits: 0 }
    }

    /// Centred sign bits of a `dim`-dimensional vector, exhaustive scan.
    pub const fn sign(dim: usize) -> Self {
        Self { bits: dim, encoder: Encoder::Sign, center: true, seed: 0x5EED, tables: 0, key_bits: 0 }
    }

    /// Adds `tables` LSH tables keyed by `key_bits` bits each.
    pub const fn with_lsh(mut self, tables: usize, key_bits: usize) -> Self {
        self.tables = tables;
        self.key_bits = key_bits;
        self
    }

    /// Sets the seed.
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Turns centring on or off.
    pub const fn with_center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }
}

/// Why `p` is unusable for `dim`-dimensional vectors under `metric`: (parameter, reason).
fn params_problem(dim: usize, metric: Metric, p: &BinaryParams) -> Option<(&'static str, &'static str)> {
    if metric == Metric::L1 {
        return Some(("metric", "binary codes approximate angles: use l2, cosine or inner product, not l1"));
    }
    if p.bits == 0 || p.bits > MAX_BITS {
        return Some(("bits", "must be between 1 and 16384"));
    }
    if p.encoder == Encoder::Sign && p.bits != dim {
        return Some(("bits", "the sign encoder has one bit per dimension: bits must equal dim"));
    }
    if p.tables > MAX_TABLES {
        return Some(("tables", "at most 64 tables"));
    }
    if p.tables > 0 && (p.key_bits == 0 || p.key_bits > MAX_KEY_BITS) {
        return Some(("key_bits", "must be between 1 and 20"));
    }
    if p.tables > 0 && p.key_bits > p.bits {
        return Some(("key_bits", "a table key cannot have more bits than the code"));
    }
    None
}

/// The seeded key bit positions, `tables × key_bits`.
fn key_positions(p: &BinaryParams) -> Vec<u32> {
    let mut rng = Rng::derive(p.seed, KEY_STREAM);
    let mut perm: Vec<u32> = (0..p.bits as u32).collect();
    let disjoint = p.tables * p.key_bits <= p.bits;
    let mut out = Vec::with_capacity(p.tables * p.key_bits);
    let mut taken = 0;
    for _ in 0..p.tables {
        if !disjoint {
            taken = 0;
        }
        // Partial Fisher–Yates: the next key_bits entries become a uniform sample of the rest.
        for i in taken..taken + p.key_bits {
            let j = i + rng.below((p.bits - i) as u64) as usize;
            perm.swap(i, j);
            out.push(perm[i]);
        }
        taken += p.key_bits;
    }
    out
}

/// The LSH tables in their file layout, borrowed.
#[derive(Clone, Copy)]
struct Tables<'a> {
    tables: usize,
    key_bits: usize,
    count: usize,
    positions: &'a [u32],
    offsets: &'a [u32],
    slots: &'a [u32],
}

impl<'a> Tables<'a> {
    /// Words of the whole section.
    fn len(tables: usize, key_bits: usize, count: usize) -> Option<usize> {
        let buckets = 1usize.checked_shl(key_bits as u32)?.checked_add(1)?;
        tables.checked_mul(key_bits.checked_add(buckets)?.checked_add(count)?)
    }

    fn split(words: &'a [u32], tables: usize, key_bits: usize, count: usize) -> Option<Self> {
        let (positions, rest) = words.split_at_checked(tables * key_bits)?;
        let (offsets, slots) = rest.split_at_checked(tables * ((1usize << key_bits) + 1))?;
        (slots.len() == tables * count).then_some(Self { tables, key_bits, count, positions, offsets, slots })
    }

    #[inline]
    fn key(&self, t: usize, code: &[u64]) -> u32 {
        let pos = self.positions.get(t * self.key_bits..(t + 1) * self.key_bits).unwrap_or(&[]);
        let mut key = 0u32;
        for (j, &p) in pos.iter().enumerate() {
            key |= (crate::quant::binary::bit(code, p as usize) as u32) << j;
        }
        key
    }

    #[inline]
    fn bucket(&self, t: usize, key: u32) -> &'a [u32] {
        let base = t * ((1usize << self.key_bits) + 1) + key as usize;
        let (Some(&s), Some(&e)) = (self.offsets.get(base), self.offsets.get(base + 1)) else {
            return &[];
        };
        let slots = self.slots.get(t * self.count..(t + 1) * self.count).unwrap_or(&[]);
        slots.get(s as usize..e as usize).unwrap_or(&[])
    }
}

/// Builds the LSH section for `count` codes (counting sort by key, slots ascending).
fn build_tables(positions: &[u32], tables: usize, key_bits: usize, codes: &[u64], words: usize) -> Vec<u32> {
    let count = codes.len().checked_div(words).unwrap_or(0);
    let buckets = 1usize << key_bits;
    let mut out = Vec::with_capacity(Tables::len(tables, key_bits, count).unwrap_or(0));
    out.extend_from_slice(positions);
    out.resize(positions.len() + tables * (buckets + 1), 0);
    out.resize(out.len() + tables * count, 0);
    let (_, rest) = out.split_at_mut(positions.len());
    let (offsets, slots) = rest.split_at_mut(tables * (buckets + 1));
    let keys_of = Tables { tables, key_bits, count, positions, offsets: &[], slots: &[] };
    let mut keys = vec![0u32; count];
    for t in 0..tables {
        let off = &mut offsets[t * (buckets + 1)..(t + 1) * (buckets + 1)];
        for (k, code) in keys.iter_mut().zip(codes.chunks_exact(words)) {
            *k = keys_of.key(t, code);
            off[*k as usize + 1] += 1;
        }
        for b in 0..buckets {
            off[b + 1] += off[b];
        }
        let table = &mut slots[t * count..(t + 1) * count];
        let mut next: Vec<u32> = off[..buckets].to_vec();
        for (slot, &k) in keys.iter().enumerate() {
            table[next[k as usize] as usize] = slot as u32;
            next[k as usize] += 1;
        }
    }
    out
}

/// A probe: a set of key bits to flip (a mask over the bits sorted by score) and its score.
#[derive(Clone, Copy, PartialEq)]
struct Probe {
    score: f32,
    mask: u32,
}

impl Eq for Probe {}

impl Ord for Probe {
    // Reversed, so `BinaryHeap` (a max-heap) pops the lowest score first; the mask breaks
    // ties so the probe order is deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        other.score.total_cmp(&self.score).then(other.mask.cmp(&self.mask))
    }
}

impl PartialOrd for Probe {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Working memory of one search, kept in a pool so steady-state queries allocate nothing.
#[derive(Default)]
struct Scratch {
    query: Vec<f32>,
    centred: Vec<f32>,
    proj: Vec<f32>,
    code: Vec<u64>,
    dists: Vec<u32>,
    cands: Vec<Neighbor>,
    visited: crate::scratch::Visited,
    order: Vec<u32>,
    scores: Vec<f32>,
    probes: BinaryHeap<Probe>,
}

/// One scratch per concurrent caller, kept after use.
type ScratchPool = crate::scratch::Pool<Scratch>;

/// Everything a search reads, borrowed from an owned index or from file bytes.
#[derive(Clone, Copy)]
struct Parts<'a> {
    dim: usize,
    metric: Metric,
    kernels: Kernels,
    hamming: Hamming,
    proj: Projector<'a>,
    words: usize,
    count: usize,
    codes: &'a [u64],
    vectors: Rows<'a>,
    tables: Option<Tables<'a>>,
}

impl Parts<'_> {
    fn code(&self, id: u32) -> &[u64] {
        let s = id as usize * self.words;
        self.codes.get(s..s + self.words).unwrap_or(&[])
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        s: &mut Scratch,
        out: &mut Vec<Neighbor>,
    ) -> Result<SearchStats> {
        check_query(query, self.dim, k)?;
        if self.count == 0 {
            return Err(Error::EmptyIndex);
        }
        let rerank = params.rerank_factor;
        if rerank > 0 && self.vectors.form() == VectorForm::Absent {
            return Err(Error::InvalidParameter {
                name: "rerank_factor",
                reason: "this index stores no vectors to rerank with: use rerank_factor 0",
            });
        }
        s.query.clear();
        s.query.extend_from_slice(query);
        if self.metric.normalizes() && !self.kernels.normalize(&mut s.query) {
            return Err(Error::ZeroVector { what: ZeroVectorKind::Query });
        }
        self.proj.project(&self.kernels, &s.query, &mut s.centred, &mut s.proj);
        s.code.clear();
        s.code.resize(self.words, 0);
        pack_signs(&s.proj, &mut s.code);

        let want = if rerank > 0 { k.saturating_mul(rerank) } else { k };
        let mut cands = core::mem::take(&mut s.cands);
        let mut top = TopK::new(want, &mut cands);
        let matches = filter.map(|f| estimate_matches(f, self.count));
        let sparse_filter = matches.is_some_and(|allowed| allowed.saturating_mul(8) < self.count);
        let mut stats = SearchStats { matches, ..SearchStats::default() };
        match self.tables {
            Some(t) if !sparse_filter => {
                stats.plan = if filter.is_some() { Plan::FilteredWalk } else { Plan::Walk };
                stats.distances = self.probe(&t, params.nprobe, filter, s, &mut top);
                // Never short: a filtered probe that met too few allowed codes scans them all.
                if filter.is_some_and(|f| top.len() < results_owed(f, self.count, want.min(self.count))) {
                    stats.plan = Plan::WalkThenScan;
                    top.clear();
                    stats.distances += self.scan(filter, s, &mut top);
                }
            }
            _ => {
                stats.plan = Plan::Scan;
                stats.distances = self.scan(filter, s, &mut top);
            }
        }
        top.finish();
        match crate::graph::Full::new(self.kernels, self.metric, self.dim, self.vectors, &s.query) {
            Some(exact) if rerank > 0 => {
                stats.distances = stats.distances.saturating_add(cands.len() as u32);
                crate::graph::rerank(&exact, k, &cands, out)
            }
            _ => {
                out.clear();
                out.extend_from_slice(&cands);
            }
        }
        s.cands = cands;
        Ok(stats)
    }

    /// Hamming distance to every code, a block at a time through the scan kernel.
    /// Returns the codes scored.
    fn scan(&self, filter: Option<&dyn Filter>, s: &mut Scratch, top: &mut TopK<'_>) -> u32 {
        s.dists.resize(SCAN_BLOCK, 0);
        for (b, block) in self.codes.chunks(SCAN_BLOCK * self.words).enumerate() {
            let n = block.len() / self.words;
            let dists = &mut s.dists[..n];
            self.hamming.scan(&s.code, block, dists);
            let first = (b * SCAN_BLOCK) as u32;
            for (i, &d) in dists.iter().enumerate() {
                let id = first + i as u32;
                offer(top, filter, id, d as f32);
            }
        }
        self.count as u32
    }

    /// Multi-probe LSH: the candidates of `nprobe` buckets per table, each once.
    fn probe(
        &self,
        t: &Tables<'_>,
        nprobe: usize,
        filter: Option<&dyn Filter>,
        s: &mut Scratch,
        top: &mut TopK<'_>,
    ) -> u32 {
        let kb = t.key_bits;
        let mut scored = 0u32;
        let probes = if nprobe == 0 { DEFAULT_PROBES } else { nprobe }.min(1 << kb);
        s.visited.start(self.count);
        for table in 0..t.tables {
            let key = t.key(table, &s.code);
            // Flipping key bit j costs the squared distance of the query to its plane.
            s.scores.clear();
            s.order.clear();
            for (j, &p) in t.positions.iter().skip(table * kb).take(kb).enumerate() {
                let z = s.proj.get(p as usize).copied().unwrap_or(0.0);
                s.scores.push(z * z);
                s.order.push(j as u32);
            }
            let scores = &s.scores;
            s.order
                .sort_unstable_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]).then(a.cmp(&b)));
            s.scores.sort_unstable_by(f32::total_cmp);
            // Subsets of the sorted bits in increasing total score: from {0}, every set
            // leads to "shift" (its largest bit moves up one) and "expand" (the next bit is
            // added); each subset is reached exactly once.
            s.probes.clear();
            s.probes.push(Probe { score: s.scores.first().copied().unwrap_or(0.0), mask: 1 });
            let mut mask = 0u32;
            for i in 0..probes {
                if i > 0 {
                    let Some(p) = s.probes.pop() else { break };
                    mask = p.mask;
                    let m = 31 - p.mask.leading_zeros() as usize;
                    if m + 1 < kb {
                        let shifted = p.mask ^ (1 << m) ^ (1 << (m + 1));
                        let expanded = p.mask | (1 << (m + 1));
                        for mask in [shifted, expanded] {
                            s.probes.push(Probe { score: mask_score(&s.scores, mask), mask });
                        }
                    }
                }
                let mut bucket_key = key;
                let mut bits = mask;
                while bits != 0 {
                    let j = bits.trailing_zeros() as usize;
                    bucket_key ^= 1 << s.order[j];
                    bits &= bits - 1;
                }
                for &slot in t.bucket(table, bucket_key) {
                    if s.visited.test_and_set(slot) {
                        continue;
                    }
                    let d = self.hamming.distance(&s.code, self.code(slot));
                    scored += 1;
                    offer(top, filter, slot, d as f32);
                }
            }
        }
        scored
    }
}

fn mask_score(scores: &[f32], mut mask: u32) -> f32 {
    let mut sum = 0.0;
    while mask != 0 {
        sum += scores.get(mask.trailing_zeros() as usize).copied().unwrap_or(0.0);
        mask &= mask - 1;
    }
    sum
}

#[inline(always)]
fn offer(top: &mut TopK<'_>, filter: Option<&dyn Filter>, id: u32, d: f32) {
    if let Some(w) = top.worst() {
        // Equal distances keep the smaller id, which arrived first in a scan; in a probe
        // TopK's own tie-break decides.
        if d > w.distance || (d == w.distance && id > w.id) {
            return;
        }
    }
    if filter.is_some_and(|f| !f.allows(id)) {
        return;
    }
    top.push(Neighbor::new(id, d));
}

/// A binary-code index over one of two stores of its encoder, codes, vectors and tables: its
/// own memory ([`Owned`], the default: trains and grows) or a file read in place
/// ([`BinaryView`]). Reading and the search are written once for both.
pub struct BinaryIndex<S: BinaryStore = Owned> {
    dim: usize,
    metric: Metric,
    kernels: Kernels,
    hamming: Hamming,
    params: BinaryParams,
    scratch: ScratchPool,
    store: S,
}

/// The store of a binary index that owns its encoder, codes, vectors and tables.
pub struct Owned {
    quantizer: BinaryQuantizer,
    codes: Vec<u64>,
    /// The re-rank rows (`f32` or binary16).
    vectors: RowVec,
    /// The LSH section in its file layout (empty without tables).
    lsh: Vec<u32>,
}

/// Where a [`BinaryIndex`] keeps its data: [`Owned`] or [`Mapped`].
pub trait BinaryStore: store::Sealed {}
impl BinaryStore for Owned {}
impl<B: AsRef<[u8]>> BinaryStore for Mapped<B> {}

/// What a store lends the one implementation (sealed: only the two stores).
mod store {
    use crate::quant::binary::Projector;
    use crate::vectors::Rows;

    /// A store's encoder, codes, vectors and LSH words.
    pub struct Data<'a> {
        pub(crate) proj: Projector<'a>,
        pub(crate) words: usize,
        pub(crate) count: usize,
        pub(crate) codes: &'a [u64],
        pub(crate) vectors: Rows<'a>,
        pub(crate) lsh: &'a [u32],
    }

    pub trait Sealed {
        fn data(&self, params: &super::BinaryParams, dim: usize) -> Data<'_>;
    }

    impl Sealed for super::Owned {
        fn data(&self, _: &super::BinaryParams, _: usize) -> Data<'_> {
            let words = self.quantizer.words();
            Data {
                proj: self.quantizer.projector(),
                words,
                count: self.codes.len() / words,
                codes: &self.codes,
                vectors: self.vectors.rows(),
                lsh: &self.lsh,
            }
        }
    }

    impl<B: AsRef<[u8]>> Sealed for super::Mapped<B> {
        fn data(&self, params: &super::BinaryParams, dim: usize) -> Data<'_> {
            // Every range was validated at open: in bounds, aligned, whole elements.
            let raw = self.bytes.as_ref();
            let floats = |r: &core::ops::Range<usize>| -> &[f32] {
                if r.is_empty() {
                    &[]
                } else {
                    bytemuck::cast_slice(&raw[r.clone()])
                }
            };
            Data {
                proj: Projector {
                    encoder: params.encoder,
                    dim,
                    bits: params.bits,
                    mean: floats(&self.mean),
                    planes: floats(&self.planes),
                },
                words: super::words_for(params.bits),
                count: self.count,
                codes: bytemuck::cast_slice(&raw[self.codes.clone()]),
                vectors: self.vectors.view(raw).rows,
                lsh: if self.lsh.is_empty() { &[] } else { bytemuck::cast_slice(&raw[self.lsh.clone()]) },
            }
        }
    }
}

impl<S: BinaryStore> core::fmt::Debug for BinaryIndex<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BinaryIndex")
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("params", &self.params)
            .field("len", &self.len())
            .finish()
    }
}

impl<S: BinaryStore> BinaryIndex<S> {
    /// Uses `kernels` for projections and reranking (results do not change: every kernel
    /// path computes the same sums).
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// Uses `hamming` instead of the best detected Hamming kernels.
    pub fn with_hamming(mut self, hamming: Hamming) -> Self {
        self.hamming = hamming;
        self
    }

    /// The Hamming kernels in use.
    pub fn hamming(&self) -> Hamming {
        self.hamming
    }

    /// The parameters (key_bits is 0 without tables).
    pub fn params(&self) -> BinaryParams {
        self.params
    }

    /// Whether the index keeps its vectors (needed for `rerank_factor > 0`).
    pub fn has_vectors(&self) -> bool {
        self.vector_form() != VectorForm::Absent
    }

    /// How the kept vectors are stored (`Absent` when the index keeps none).
    pub fn vector_form(&self) -> VectorForm {
        self.store.data(&self.params, self.dim).vectors.form()
    }

    /// The stored vector `id` (normalised, for cosine), when the index keeps `f32` vectors.
    pub fn get(&self, id: u32) -> Result<&[f32]> {
        let d = self.store.data(&self.params, self.dim);
        d.vectors.lend(self.dim, id, d.count)
    }

    /// A copy of the vector `id` (decoded from binary16 when stored so), when vectors are kept.
    pub fn get_decoded(&self, id: u32) -> Result<Vec<f32>> {
        let d = self.store.data(&self.params, self.dim);
        let half = crate::simd::half::HalfKernels::new(self.metric, self.kernels);
        d.vectors.copy_row(&half, self.dim, id, d.count)
    }

    /// The code of `id`.
    pub fn code(&self, id: u32) -> Result<&[u64]> {
        let d = self.store.data(&self.params, self.dim);
        let s = id as usize * d.words;
        d.codes.get(s..s + d.words).ok_or(Error::UnknownId { id: id as u64, count: d.count as u64 })
    }

    /// All codes, `words` per slot.
    pub fn codes(&self) -> &[u64] {
        self.store.data(&self.params, self.dim).codes
    }

    fn parts(&self) -> Parts<'_> {
        let d = self.store.data(&self.params, self.dim);
        let p = &self.params;
        Parts {
            dim: self.dim,
            metric: self.metric,
            kernels: self.kernels,
            hamming: self.hamming,
            proj: d.proj,
            words: d.words,
            count: d.count,
            codes: d.codes,
            vectors: d.vectors,
            tables: (p.tables > 0).then(|| Tables::split(d.lsh, p.tables, p.key_bits, d.count)).flatten(),
        }
    }
}

impl<S: BinaryStore> VectorSearch for BinaryIndex<S> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn metric(&self) -> Metric {
        self.metric
    }
    fn len(&self) -> usize {
        self.store.data(&self.params, self.dim).count
    }
    fn search_with_stats(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn Filter>,
        out: &mut Vec<Neighbor>,
    ) -> Result<SearchStats> {
        let parts = self.parts();
        self.scratch.with(|s| parts.search(query, k, params, filter, s, out))
    }
}

impl BinaryIndex {
    /// An empty, untrained index of `dim`-dimensional vectors. L1 is refused: sign bits say
    /// nothing about Manhattan distance.
    pub fn new(dim: usize, metric: Metric, params: BinaryParams) -> Result<Self> {
        check_dim(dim)?;
        let mut params = params;
        if params.tables == 0 {
            params.key_bits = 0;
        }
        if let Some((name, reason)) = params_problem(dim, metric, &params) {
            return Err(Error::InvalidParameter { name, reason });
        }
        let quantizer = BinaryQuantizer::new(dim, params.bits, params.encoder, params.center, params.seed)?;
        let lsh = if params.tables > 0 {
            build_tables(&key_positions(&params), params.tables, params.key_bits, &[], 1)
        } else {
            Vec::new()
        };
        Ok(Self {
            dim,
            metric,
            kernels: Kernels::best(),
            hamming: Hamming::best(),
            params,
            scratch: ScratchPool::default(),
            store: Owned { quantizer, codes: Vec::new(), vectors: RowVec::default(), lsh },
        })
    }

    /// The encoder and its trained state.
    pub fn quantizer(&self) -> &BinaryQuantizer {
        &self.store.quantizer
    }

    /// Whether [`train`](Self::train) has run.
    pub fn is_trained(&self) -> bool {
        self.store.quantizer.is_trained()
    }

    /// Learns the encoder from sample vectors (row-major): the mean, and the planes from the
    /// seed. Only while the index is empty: the stored codes would no longer match.
    pub fn train(&mut self, samples: &[f32]) -> Result<()> {
        if !self.store.codes.is_empty() {
            return Err(Error::InvalidParameter {
                name: "train",
                reason: "the index already holds vectors encoded by the current training",
            });
        }
        let n = check_vectors(samples, self.dim)?;
        let mut buf = samples.to_vec();
        if self.metric.normalizes() {
            for (i, v) in buf.chunks_exact_mut(self.dim).enumerate().take(n) {
                if !self.kernels.normalize(v) {
                    return Err(Error::ZeroVector { what: ZeroVectorKind::Vector(i) });
                }
            }
        }
        self.store.quantizer.train(&self.kernels, &buf)
    }

    /// Keeps the re-rank vectors in binary16 from now on (half their bytes; re-ranked
    /// distances are then exact for the rounded vectors; codes are still encoded from the
    /// `f32` input). Fails, changing nothing, if a kept value lies beyond ±65504.
    pub fn store_f16(&mut self) -> Result<()> {
        self.store.vectors.make_f16(self.dim)
    }

    /// Appends row-major `vectors`; returns their ids. The whole batch is checked first, so
    /// on error nothing is added. With tables, every add rebuilds them (a counting sort,
    /// `O(count + 2^key_bits)` per table): add in large batches.
    pub fn add(&mut self, vectors: &[f32]) -> Result<Range<u32>> {
        if !self.is_trained() {
            return Err(Error::InvalidParameter {
                name: "index",
                reason: "not trained: call train() with sample vectors before add()",
            });
        }
        if vectors.len() < self.dim && !vectors.is_empty() {
            return Err(Error::DimensionMismatch { expected: self.dim, got: vectors.len() });
        }
        let n = check_vectors(vectors, self.dim)?;
        let start = self.len();
        let end = start.checked_add(n).filter(|&e| e < u32::MAX as usize).ok_or(Error::CapacityExceeded {
            count: start as u64,
            adding: n as u64,
            max: u32::MAX as u64 - 1,
        })?;
        let mut normalized = Vec::new();
        let rows = if self.metric.normalizes() {
            normalized.extend_from_slice(vectors);
            for (i, v) in normalized.chunks_exact_mut(self.dim).enumerate() {
                if !self.kernels.normalize(v) {
                    return Err(Error::ZeroVector { what: ZeroVectorKind::Vector(i) });
                }
            }
            &normalized[..]
        } else {
            vectors
        };
        if self.store.vectors.rows().form() == VectorForm::F16 {
            check_half_range(rows, self.dim)?;
        }
        self.store.vectors.extend(rows);
        self.store.quantizer.encode_into(&self.kernels, rows, &mut self.store.codes);
        if self.params.tables > 0 && n > 0 {
            let t = &self.params;
            let positions = self.store.lsh.get(..t.tables * t.key_bits).unwrap_or(&[]).to_vec();
            self.store.lsh = build_tables(
                &positions,
                t.tables,
                t.key_bits,
                &self.store.codes,
                self.store.quantizer.words(),
            );
        }
        Ok(start as u32..end as u32)
    }

    /// The index as file-format bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.collect(None, true)
    }

    /// The index as file-format bytes without the vectors: a quarter to a thirty-second of
    /// the size, searchable only with `rerank_factor = 0`.
    pub fn to_bytes_without_vectors(&self) -> Vec<u8> {
        self.collect(None, false)
    }

    fn collect(&self, ids: Option<&IdMap>, with_vectors: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let _ =
            self.write_parts(ids, with_vectors, &mut |b: &[u8]| -> Result<(), core::convert::Infallible> {
                out.extend_from_slice(b);
                Ok(())
            });
        out
    }

    /// Streams the index in the file format to `sink`; returns the bytes written.
    pub fn write<E>(&self, sink: &mut dyn FnMut(&[u8]) -> Result<(), E>) -> Result<u64, E> {
        self.write_parts(None, true, sink)
    }

    /// Like [`write`](Self::write) without the vectors (see
    /// [`to_bytes_without_vectors`](Self::to_bytes_without_vectors)).
    pub fn write_without_vectors<E>(&self, sink: &mut dyn FnMut(&[u8]) -> Result<(), E>) -> Result<u64, E> {
        self.write_parts(None, false, sink)
    }

    /// Like [`write`](Self::write), storing caller ids (an `ids` section unless `ids` is the
    /// identity). `ids` must cover exactly this index's slots.
    pub fn write_with_ids<E>(
        &self,
        ids: &IdMap,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        self.write_parts(Some(ids), true, sink)
    }

    fn write_parts<E>(
        &self,
        ids: Option<&IdMap>,
        with_vectors: bool,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let params = encode_params(&self.params, self.is_trained());
        let mut planes: Vec<f32> = self.store.quantizer.mean().to_vec();
        planes.extend_from_slice(self.store.quantizer.planes());
        let mut sections = vec![
            SectionRef { kind: SectionKind::PARAMS, bytes: &params },
            SectionRef { kind: SectionKind::BINARY_CODES, bytes: bytemuck::cast_slice(&self.store.codes) },
        ];
        if !planes.is_empty() {
            sections
                .push(SectionRef { kind: SectionKind::BINARY_PLANES, bytes: bytemuck::cast_slice(&planes) });
        }
        if self.params.tables > 0 {
            sections.push(SectionRef {
                kind: SectionKind::LSH_TABLES,
                bytes: bytemuck::cast_slice(&self.store.lsh),
            });
        }
        if with_vectors {
            sections.extend(self.store.vectors.rows().section());
        }
        if let Some(ids) = ids.and_then(IdMap::section) {
            debug_assert_eq!(ids.len(), self.len());
            sections.push(SectionRef { kind: SectionKind::IDS, bytes: bytemuck::cast_slice(ids) });
        }
        write_index(IndexKind::Binary, self.metric, self.dim as u32, self.len() as u64, &sections, sink)
    }
}

fn encode_params(p: &BinaryParams, trained: bool) -> [u8; PARAMS_LEN] {
    let mut b = [0u8; PARAMS_LEN];
    let flags = if p.center { FLAG_CENTERED } else { 0 } | if trained { FLAG_TRAINED } else { 0 };
    b[0..4].copy_from_slice(&(p.bits as u32).to_le_bytes());
    b[4..8].copy_from_slice(&(words_for(p.bits) as u32).to_le_bytes());
    b[8..12].copy_from_slice(&p.encoder.code().to_le_bytes());
    b[12..16].copy_from_slice(&flags.to_le_bytes());
    b[16..24].copy_from_slice(&p.seed.to_le_bytes());
    b[24..28].copy_from_slice(&(p.tables as u32).to_le_bytes());
    b[28..32].copy_from_slice(&(p.key_bits as u32).to_le_bytes());
    b
}

fn decode_params(b: &[u8], dim: usize, metric: Metric) -> Result<(BinaryParams, bool), FormatError> {
    let k = SectionKind::PARAMS;
    let b = crate::format::ParamsReader::<PARAMS_LEN>::new(b)?;
    let u32_at = |i| b.u32(i);
    let bits = u32_at(0) as usize;
    let encoder = Encoder::from_code(u32_at(8)).ok_or(bad(k, "unknown encoder"))?;
    let flags = u32_at(12);
    if flags & !(FLAG_CENTERED | FLAG_TRAINED) != 0 || !b.zero_from(32) {
        return Err(bad(k, "reserved fields and flags must be zero"));
    }
    let p = BinaryParams {
        bits,
        encoder,
        center: flags & FLAG_CENTERED != 0,
        seed: b.u64(16),
        tables: u32_at(24) as usize,
        key_bits: u32_at(28) as usize,
    };
    if let Some((_, reason)) = params_problem(dim, metric, &p) {
        return Err(bad(k, reason));
    }
    if u32_at(4) as usize != words_for(bits) {
        return Err(bad(k, "words does not match bits"));
    }
    if p.tables == 0 && p.key_bits != 0 {
        return Err(bad(k, "key_bits must be 0 without tables"));
    }
    Ok((p, flags & FLAG_TRAINED != 0))
}

/// A binary-code index read in place from file bytes (a memory map natively, a buffer in
/// the browser): the owned index's type over the [`Mapped`] store. Searches never copy the
/// codes, vectors or tables; the view cannot be mutated.
pub type BinaryView<B> = BinaryIndex<Mapped<B>>;

/// The store of a binary-code file read in place: its bytes and where each section lies
/// (every range validated at open).
pub struct Mapped<B> {
    bytes: B,
    info: FileInfo,
    trained: bool,
    count: usize,
    mean: Range<usize>,
    planes: Range<usize>,
    codes: Range<usize>,
    vectors: VectorsAt,
    lsh: Range<usize>,
    ids: Option<Range<usize>>,
}

impl<B: AsRef<[u8]>> BinaryView<B> {
    /// Validates `bytes` (structure, checksums, every code, table and parameter) and opens it
    /// for search without copying.
    pub fn open(bytes: B) -> Result<Self> {
        Self::open_with(bytes, OpenOptions::default())
    }

    /// Like [`BinaryView::open`]; structure, codes and tables are always validated, checksums
    /// and float values (finite planes, mean and vectors) only when `opts.verify_checksums`.
    pub fn open_with(bytes: B, opts: OpenOptions) -> Result<Self> {
        let raw = bytes.as_ref();
        let info = FileInfo::parse(raw, opts)?;
        info.expect_kind(IndexKind::Binary)?;
        let dim = info.dim as usize;
        let metric = info.metric;
        let (params, trained) = decode_params(info.section(raw, SectionKind::PARAMS)?, dim, metric)?;
        let count = usize::try_from(info.count)
            .ok()
            .filter(|&c| c < u32::MAX as usize)
            .ok_or(FormatError::TooLarge { what: "vector count" })?;
        if !trained && count > 0 {
            return Err(bad(SectionKind::PARAMS, "an untrained index holds no codes").into());
        }
        let words = words_for(params.bits);
        let size = |n: usize, each: usize| -> Result<u64, FormatError> {
            n.checked_mul(each).map(|b| b as u64).ok_or(FormatError::TooLarge { what: "section size" })
        };

        let kc = SectionKind::BINARY_CODES;
        let codes_b = info.section_sized(raw, kc, size(count, words * 8)?)?;
        let codes: &[u64] =
            bytemuck::try_cast_slice(codes_b).map_err(|_| FormatError::UnalignedBuffer { align: 8 })?;
        let mask = !last_word_mask(params.bits);
        if codes.chunks_exact(words).any(|c| c.last().is_some_and(|w| w & mask != 0)) {
            return Err(bad(kc, "a code has bits set beyond its length").into());
        }

        let kp = SectionKind::BINARY_PLANES;
        let mean_len = if params.center { dim } else { 0 };
        let plane_len =
            if params.encoder == Encoder::Hyperplanes { size(params.bits, dim)? as usize } else { 0 };
        let (mean, planes) = if trained && mean_len + plane_len > 0 {
            let pb = info.section_sized(raw, kp, size(mean_len + plane_len, 4)?)?;
            let floats = cast_f32(kp, pb)?;
            if opts.verify_checksums && floats.iter().any(|&x| !crate::in_range(x)) {
                return Err(bad(kp, "holds NaN, infinity or a value beyond ±2^50").into());
            }
            let r = range_of(raw, pb);
            (r.start..r.start + mean_len * 4, r.start + mean_len * 4..r.end)
        } else {
            if info.entry(kp).is_some() {
                return Err(bad(kp, "present although the encoder has no mean or planes").into());
            }
            (0..0, 0..0)
        };

        let vectors =
            VectorsAt::find(&info, raw, count, dim, opts, Allowed { sq_rerank: None, no_rows: true })?;

        let kl = SectionKind::LSH_TABLES;
        let lsh = if params.tables > 0 {
            let words_needed = Tables::len(params.tables, params.key_bits, count)
                .ok_or(FormatError::TooLarge { what: "LSH tables" })?;
            let lb = info.section_sized(raw, kl, size(words_needed, 4)?)?;
            let t = Tables::split(cast_u32(kl, lb)?, params.tables, params.key_bits, count)
                .ok_or(bad(kl, "does not split into positions, offsets and slots"))?;
            validate_tables(&t, params.bits, codes, words)?;
            range_of(raw, lb)
        } else {
            if info.entry(kl).is_some() {
                return Err(bad(kl, "present although the index has no tables").into());
            }
            0..0
        };
        let ids = crate::format::ids_section(&info, raw, |_| true)?;
        let store = Mapped {
            codes: range_of(raw, codes_b),
            mean,
            planes,
            vectors,
            lsh,
            ids,
            trained,
            count,
            info,
            bytes,
        };
        Ok(Self {
            dim,
            metric,
            kernels: Kernels::best(),
            hamming: Hamming::best(),
            params,
            scratch: ScratchPool::default(),
            store,
        })
    }

    /// The validated header and section table.
    pub fn info(&self) -> &FileInfo {
        &self.store.info
    }

    /// The underlying bytes.
    pub fn bytes(&self) -> &[u8] {
        self.store.bytes.as_ref()
    }

    /// The file's caller ids, one per slot, when it has an `ids` section (else ids are slots).
    pub fn ids(&self) -> Option<&[u32]> {
        // Validated at open: in bounds, aligned, one u32 per slot.
        self.store.ids.as_ref().map(|r| bytemuck::cast_slice(&self.store.bytes.as_ref()[r.clone()]))
    }

    /// An owned, growable copy. Needs the vectors: a file written without them cannot take
    /// more inserts or rerank.
    pub fn to_index(&self) -> Result<BinaryIndex> {
        use store::Sealed as _;
        let d = self.store.data(&self.params, self.dim);
        if d.vectors.form() == VectorForm::Absent {
            return Err(Error::InvalidParameter {
                name: "vectors",
                reason: "the file stores no vectors, which an owned index needs",
            });
        }
        let quantizer = BinaryQuantizer::from_parts(
            self.params.encoder,
            self.dim,
            self.params.bits,
            self.params.center,
            self.params.seed,
            d.proj.mean.to_vec(),
            d.proj.planes.to_vec(),
            self.store.trained,
        )?;
        let lsh = if self.params.tables > 0 {
            self.parts().tables.map(|t| {
                let mut v = t.positions.to_vec();
                v.extend_from_slice(t.offsets);
                v.extend_from_slice(t.slots);
                v
            })
        } else {
            None
        };
        let lsh = match lsh {
            Some(l) => l,
            None if self.params.tables > 0 => {
                build_tables(&key_positions(&self.params), self.params.tables, self.params.key_bits, &[], 1)
            }
            None => Vec::new(),
        };
        Ok(BinaryIndex {
            dim: self.dim,
            metric: self.metric,
            kernels: self.kernels,
            hamming: self.hamming,
            params: self.params,
            scratch: ScratchPool::default(),
            store: Owned { quantizer, codes: d.codes.to_vec(), vectors: d.vectors.to_store(), lsh },
        })
    }
}

/// Checks every table is the bucket-sorted permutation of the slots its key bits imply: key
/// positions in range and distinct within a table, offsets running from 0 to `count`, every
/// slot below `count`, in the bucket of its own code, ascending within the bucket. (Sorted,
/// correctly keyed and `count` in total means each slot appears exactly once.)
fn validate_tables(t: &Tables<'_>, bits: usize, codes: &[u64], words: usize) -> Result<(), FormatError> {
    let kl = SectionKind::LSH_TABLES;
    let buckets = 1usize << t.key_bits;
    for table in 0..t.tables {
        let pos = t.positions.get(table * t.key_bits..(table + 1) * t.key_bits).unwrap_or(&[]);
        for (j, &p) in pos.iter().enumerate() {
            if p as usize >= bits {
                return Err(bad(kl, "a key bit position is beyond the code"));
            }
            if pos[..j].contains(&p) {
                return Err(bad(kl, "a table uses one key bit twice"));
            }
        }
        let off = t.offsets.get(table * (buckets + 1)..(table + 1) * (buckets + 1)).unwrap_or(&[]);
        if off.first() != Some(&0) || off.last().map(|&e| e as usize) != Some(t.count) {
            return Err(bad(kl, "bucket offsets must run from 0 to the vector count"));
        }
        if off.windows(2).any(|w| w[0] > w[1]) {
            return Err(bad(kl, "bucket offsets decrease"));
        }
        let slots = t.slots.get(table * t.count..(table + 1) * t.count).unwrap_or(&[]);
        for (key, w) in off.windows(2).enumerate() {
            let bucket = slots.get(w[0] as usize..w[1] as usize).unwrap_or(&[]);
            let mut prev: Option<u32> = None;
            for &slot in bucket {
                if slot as usize >= t.count {
                    return Err(bad(kl, "a slot id is not below the vector count"));
                }
                if prev.is_some_and(|p| p >= slot) {
                    return Err(bad(kl, "slots within a bucket must ascend"));
                }
                prev = Some(slot);
                let s = slot as usize * words;
                let code = codes.get(s..s + words).unwrap_or(&[]);
                if t.key(table, code) as usize != key {
                    return Err(bad(kl, "a slot sits in a bucket its code does not hash to"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_positions_are_disjoint_when_they_fit_and_distinct_within_a_table() {
        let p = BinaryParams::hyperplanes(64).with_lsh(4, 16);
        let pos = key_positions(&p);
        let mut sorted = pos.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 64, "4 × 16 bits of 64: a permutation");
        let p = BinaryParams::hyperplanes(32).with_lsh(5, 12);
        let pos = key_positions(&p);
        assert_eq!(pos.len(), 60);
        for t in pos.chunks_exact(12) {
            let mut s = t.to_vec();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), 12);
            assert!(t.iter().all(|&b| b < 32));
        }
    }

    #[test]
    fn probe_sequence_visits_subsets_in_increasing_score_once_each() {
        // Reproduce the generator on its own: 4 bits, all 16 subsets.
        let scores = [0.1f32, 0.2, 0.5, 0.9];
        let mut heap = BinaryHeap::new();
        heap.push(Probe { score: scores[0], mask: 1 });
        let mut seen = vec![0u32];
        let mut last = 0.0f32;
        while let Some(p) = heap.pop() {
            assert!(p.score >= last);
            last = p.score;
            seen.push(p.mask);
            let m = 31 - p.mask.leading_zeros() as usize;
            if m + 1 < 4 {
                for mask in [p.mask ^ (1 << m) ^ (1 << (m + 1)), p.mask | (1 << (m + 1))] {
                    heap.push(Probe { score: mask_score(&scores, mask), mask });
                }
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..16).collect::<Vec<_>>());
    }
}
