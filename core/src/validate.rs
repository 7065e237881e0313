//! Input checks shared by every index: dimension, finiteness, k.

use crate::{Error, Result, MAX_DIM};

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
    if let Some(component) = query.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteQuery { component });
    }
    Ok(())
}

/// Checks a flat buffer of vectors of dimension `dim`; returns how many it holds.
pub fn check_vectors(vectors: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 || !vectors.len().is_multiple_of(dim) {
        return Err(Error::RaggedVectors { len: vectors.len(), dim });
    }
    if let Some(pos) = vectors.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteVector { vector: pos / dim, component: pos % dim });
    }
    Ok(vectors.len() / dim)
}
