//! The error type of the core crate: one precise variant per way a caller's input can be wrong.

use crate::format::FormatError;

/// Everything an index operation in the core can reject.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A vector or query does not have the index's dimension.
    #[error("dimension mismatch: the index has {expected} dimensions, the input has {got}")]
    DimensionMismatch {
        /// Dimension of the index.
        expected: usize,
        /// Dimension supplied.
        got: usize,
    },
    /// A flat buffer of vectors whose length is not a multiple of the dimension.
    #[error("{len} floats do not split into vectors of dimension {dim}")]
    RaggedVectors {
        /// Number of floats supplied.
        len: usize,
        /// Dimension of the index.
        dim: usize,
    },
    /// A dimension of zero or beyond [`crate::MAX_DIM`].
    #[error("dimension must be between 1 and {max}, got {got}")]
    InvalidDimension {
        /// Dimension requested.
        got: usize,
        /// Largest dimension supported.
        max: usize,
    },
    /// A stored vector holds NaN or an infinity.
    #[error("vector {vector} has a non-finite value (NaN or infinity) at component {component}")]
    NonFiniteVector {
        /// Position of the vector in the batch being added.
        vector: usize,
        /// Component holding the bad value.
        component: usize,
    },
    /// A vector for a binary16-storing index holds a value binary16 cannot represent.
    #[error(
        "vector {vector} has the value {value} at component {component}, beyond binary16's range \
         (±65504), and this index stores its vectors in binary16"
    )]
    OutOfHalfRange {
        /// Index of the offending vector in the batch (or in the index, when converting it).
        vector: usize,
        /// Position of the value within the vector.
        component: usize,
        /// The value.
        value: f32,
    },
    /// A stored vector holds a finite value too large for its distances to stay finite.
    #[error(
        "vector {vector} has the value {value} at component {component}, beyond ±2^50 (about 1.1e15): \
         distances to it would overflow"
    )]
    VectorOutOfRange {
        /// Position of the vector in the batch being added.
        vector: usize,
        /// Component holding the bad value.
        component: usize,
        /// The value.
        value: f32,
    },
    /// A query holds a finite value too large for its distances to stay finite.
    #[error(
        "the query has the value {value} at component {component}, beyond ±2^50 (about 1.1e15): \
         distances to it would overflow"
    )]
    QueryOutOfRange {
        /// Component holding the bad value.
        component: usize,
        /// The value.
        value: f32,
    },
    /// Memory a search or an open needs could not be had.
    #[error("out of memory: {bytes} bytes for {what} could not be allocated")]
    OutOfMemory {
        /// What the memory is for.
        what: &'static str,
        /// Bytes asked for.
        bytes: u64,
    },
    /// A query holds NaN or an infinity.
    #[error("the query has a non-finite value (NaN or infinity) at component {component}")]
    NonFiniteQuery {
        /// Component holding the bad value.
        component: usize,
    },
    /// Cosine similarity is undefined for the zero vector.
    #[error("cosine metric: {what} has zero length and no direction")]
    ZeroVector {
        /// `"the query"` or `"vector N"`.
        what: ZeroVectorKind,
    },
    /// `k = 0` asks for nothing; almost always a caller bug.
    #[error("k must be at least 1")]
    ZeroK,
    /// A search on an index holding no vector.
    #[error("the index is empty: add vectors before searching")]
    EmptyIndex,
    /// An index (or quantizer) that must be trained before it can add or search.
    #[error("the index is not trained: call train (or build) with sample vectors first")]
    NotTrained,
    /// An id that names no vector in the index.
    #[error("unknown id {id}: the index holds ids 0..{count}")]
    UnknownId {
        /// The id asked for.
        id: u64,
        /// Number of ids in the index.
        count: u64,
    },
    /// An id given for a new vector is already in use (or given twice in one batch), or a
    /// file maps two vectors to one id.
    #[error("duplicate id {id}: every vector needs its own id")]
    DuplicateId {
        /// The id given twice.
        id: u64,
    },
    /// The id value reserved to mean "no vector".
    #[error("id {id} is reserved (it marks empty slots); use ids below it")]
    ReservedId {
        /// The reserved value.
        id: u32,
    },
    /// A batch of vectors with a different number of ids.
    #[error("{vectors} vectors were given {ids} ids: give one id per vector, or none")]
    IdCountMismatch {
        /// Vectors in the batch.
        vectors: usize,
        /// Ids supplied.
        ids: usize,
    },
    /// The index cannot grow past `u32` slots.
    #[error("the index is full: adding {adding} vectors to {count} exceeds {max}")]
    CapacityExceeded {
        /// Vectors already stored.
        count: u64,
        /// Vectors being added.
        adding: u64,
        /// Largest number of vectors an index holds.
        max: u64,
    },
    /// A parameter outside its valid range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file or byte buffer that is not a valid index.
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl Error {
    /// The same error with the positions of vectors counted from `first`, for a batch that was
    /// one part of a larger input (a caller adding a file in chunks reports the file's row).
    pub fn in_batch_at(self, first: usize) -> Self {
        match self {
            Self::NonFiniteVector { vector, component } => {
                Self::NonFiniteVector { vector: first + vector, component }
            }
            Self::VectorOutOfRange { vector, component, value } => {
                Self::VectorOutOfRange { vector: first + vector, component, value }
            }
            Self::OutOfHalfRange { vector, component, value } => {
                Self::OutOfHalfRange { vector: first + vector, component, value }
            }
            Self::ZeroVector { what: ZeroVectorKind::Vector(i) } => {
                Self::ZeroVector { what: ZeroVectorKind::Vector(first + i) }
            }
            other => other,
        }
    }
}

/// Which input of a cosine operation was the zero vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroVectorKind {
    /// The search query.
    Query,
    /// Vector number N of the batch being added.
    Vector(usize),
}

impl core::fmt::Display for ZeroVectorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Query => f.write_str("the query"),
            Self::Vector(i) => write!(f, "vector {i}"),
        }
    }
}
