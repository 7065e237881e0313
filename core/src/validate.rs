//! Input checks shared by every index: dimension, the range of values, k.

use crate::{Error, Result, MAX_DIM};

/// The largest magnitude a stored vector, a query or a file's centroid, codebook or plane may
/// hold: 2^50 (about 1.1e15). Every distance is a sum of at most [`MAX_DIM`] = 2^16 terms, each
/// at most (2 · 2^50)^2 = 2^102, so it stays below 2^118 — far inside `f32`'s range (2^128) in
/// any summation order. Finite values beyond it (up to 3.4e38) would make distances infinite
/// or NaN, so they are refused where data enters: `add`, queries and file opens.
pub const MAX_COMPONENT: f32 = 1_125_899_906_842_624.0;

/// Whether `x` may be stored or searched: finite and within ±[`MAX_COMPONENT`] (false for NaN).
#[inline]
pub fn in_range(x: f32) -> bool {
    x.abs() <= MAX_COMPONENT
}

/// Whether every value of `values` is [`in_range`]. Branch-free within blocks of 64, so it
/// compiles to vector compares (a scan that stops at the first bad value cannot): checking a
/// batch of vectors costs a fraction of copying it.
#[inline]
pub fn all_in_range(values: &[f32]) -> bool {
    values.chunks(64).all(|block| block.iter().fold(true, |ok, &x| ok & in_range(x)))
}

/// Checks an index dimension.
pub(crate) fn check_dim(dim: usize) -> Result<()> {
    if dim == 0 || dim > MAX_DIM {
        return Err(Error::InvalidDimension { got: dim, max: MAX_DIM });
    }
    Ok(())
}

/// Checks a query: its dimension, that every component is finite, and that `k > 0`.
pub fn check_query(query: &[f32], dim: usize, k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::ZeroK);
    }
    if query.len() != dim {
        return Err(Error::DimensionMismatch { expected: dim, got: query.len() });
    }
    if all_in_range(query) {
        return Ok(());
    }
    if let Some(component) = query.iter().position(|&x| !in_range(x)) {
        let value = query[component];
        if !value.is_finite() {
            return Err(Error::NonFiniteQuery { component });
        }
        return Err(Error::QueryOutOfRange { component, value });
    }
    Ok(())
}

/// Checks a flat buffer of vectors of dimension `dim`; returns how many it holds.
pub fn check_vectors(vectors: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 || !vectors.len().is_multiple_of(dim) {
        return Err(Error::RaggedVectors { len: vectors.len(), dim });
    }
    if all_in_range(vectors) {
        return Ok(vectors.len() / dim);
    }
    if let Some(pos) = vectors.iter().position(|&x| !in_range(x)) {
        let (vector, component, value) = (pos / dim, pos % dim, vectors[pos]);
        if !value.is_finite() {
            return Err(Error::NonFiniteVector { vector, component });
        }
        return Err(Error::VectorOutOfRange { vector, component, value });
    }
    Ok(vectors.len() / dim)
}
