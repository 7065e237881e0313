//! How a graph search scores nodes against its query: exactly on `f32` rows, on binary16 rows,
//! or approximately on SQ8 codes — one trait, so the walk is written once and monomorphised
//! per storage.

use alloc::vec::Vec;

use crate::quant::sq::SqQuery;
use crate::{Kernels, Metric};

/// How a search scores nodes against its query: exactly on `f32` vectors, or on codes.
pub(crate) trait Scorer {
    /// Distance from the query to node `id` (NaN ranked as infinity).
    fn dist(&self, id: u32) -> f32;
    /// [`Scorer::dist`] of every node in `ids`, into `out` (cleared first): one call per
    /// expanded node's new neighbours, which a scorer can compute several at a time.
    #[inline(always)]
    fn dist_many(&self, ids: &[u32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(ids.iter().map(|&id| self.dist(id)));
    }
    /// The bytes [`Scorer::dist`] reads for `id`.
    fn row_bytes(&self, id: u32) -> &[u8];
    /// Starts loading what [`Scorer::dist`] will read for `id`.
    #[inline(always)]
    fn prefetch(&self, id: u32) {
        crate::simd::prefetch_bytes(self.row_bytes(id));
    }
}

/// NaN only arises when finite inputs overflow; a search ranks it as the farthest.
#[inline(always)]
fn farthest_if_nan(d: f32) -> f32 {
    if d.is_nan() {
        f32::INFINITY
    } else {
        d
    }
}

/// Exact distances to `f32` vectors.
pub(crate) struct Exact<'a> {
    pub(super) kernels: Kernels,
    pub(super) metric: Metric,
    pub(super) dim: usize,
    pub(super) vectors: &'a [f32],
    pub(super) q: &'a [f32],
}

impl Scorer for Exact<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        let s = id as usize * self.dim;
        farthest_if_nan(self.metric.distance(&self.kernels, self.q, &self.vectors[s..s + self.dim]))
    }
    /// A node's new neighbours four at a time where the kernels can (the same values as
    /// [`Exact::dist`]): the four chains of adds overlap.
    #[inline(always)]
    fn dist_many(&self, ids: &[u32], out: &mut Vec<f32>) {
        self.metric.distance_many(&self.kernels, self.q, self.vectors, ids, out);
        out.iter_mut().for_each(|d| *d = farthest_if_nan(*d));
    }
    #[inline(always)]
    fn row_bytes(&self, id: u32) -> &[u8] {
        let s = id as usize * self.dim;
        bytemuck::cast_slice(&self.vectors[s..s + self.dim])
    }
}

/// Distances to the binary16 copy of the vectors the parallel build walks (`simd::half`).
pub(crate) struct Half<'a> {
    pub(super) data: HalfData<'a>,
    pub(super) dim: usize,
    pub(super) q: &'a [f32],
}

impl Scorer for Half<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        let s = id as usize * self.dim;
        farthest_if_nan(self.data.kernels.distance(self.q, &self.data.rows[s..s + self.dim]))
    }
    #[inline(always)]
    fn row_bytes(&self, id: u32) -> &[u8] {
        let s = id as usize * self.dim;
        bytemuck::cast_slice(&self.data.rows[s..s + self.dim])
    }
}

/// A build-time binary16 copy of every slot's vector and its distance kernels.
#[derive(Clone, Copy)]
pub(crate) struct HalfData<'a> {
    pub rows: &'a [u16],
    pub kernels: crate::simd::half::HalfKernels,
}

/// Approximate distances to scalar-quantized codes.
pub(crate) struct Quantized<'a> {
    pub(super) kernels: Kernels,
    pub(super) dim: usize,
    pub(super) codes: &'a [u8],
    pub(super) query: &'a SqQuery,
}

impl Scorer for Quantized<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        let s = id as usize * self.dim;
        self.query.distance(&self.kernels, &self.codes[s..s + self.dim])
    }
    #[inline(always)]
    fn row_bytes(&self, id: u32) -> &[u8] {
        let s = id as usize * self.dim;
        &self.codes[s..s + self.dim]
    }
}

/// The one exact re-rank every index kind uses: the `k` nearest of `candidates` under `exact`
/// (full-precision distances), into `out`. Every candidate's row is prefetched before the first
/// distance: a re-rank is bound by memory misses, and independent misses overlap.
pub(crate) fn rerank<S: Scorer>(
    exact: &S,
    k: usize,
    candidates: &[crate::Neighbor],
    out: &mut alloc::vec::Vec<crate::Neighbor>,
) {
    for n in candidates {
        exact.prefetch(n.id);
    }
    let mut top = crate::TopK::new(k, out);
    for n in candidates {
        top.push(crate::Neighbor::new(n.id, exact.dist(n.id)));
    }
    top.finish();
}

/// Exact distances to a store's rows in their form — `f32` or binary16 — the scorer of every
/// re-rank (one branch per distance, which a re-rank of a few hundred candidates never feels).
pub(crate) enum Full<'a> {
    F32(Exact<'a>),
    F16(Half<'a>),
}

impl<'a> Full<'a> {
    /// Scores prepared `q` against `rows`; `None` when the store keeps no rows.
    pub(crate) fn new(
        kernels: Kernels,
        metric: Metric,
        dim: usize,
        rows: crate::vectors::Rows<'a>,
        q: &'a [f32],
    ) -> Option<Self> {
        use crate::vectors::Rows;
        match rows {
            Rows::F32(vectors) => Some(Self::F32(Exact { kernels, metric, dim, vectors, q })),
            Rows::F16(rows) => Some(Self::F16(Half {
                data: HalfData { rows, kernels: crate::simd::half::HalfKernels::new(metric, kernels) },
                dim,
                q,
            })),
            Rows::Absent => None,
        }
    }
}

impl Scorer for Full<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        match self {
            Self::F32(s) => s.dist(id),
            Self::F16(s) => s.dist(id),
        }
    }
    #[inline(always)]
    fn row_bytes(&self, id: u32) -> &[u8] {
        match self {
            Self::F32(s) => s.row_bytes(id),
            Self::F16(s) => s.row_bytes(id),
        }
    }
}
