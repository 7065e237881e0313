//! `VecIoError`: every way reading or writing a vector file can fail, each variant naming the
//! file (or, for a writer's input, the values) and exactly what is wrong.

use std::path::PathBuf;

use super::MAX_FILE_DIM;

/// Everything reading or writing a vector file can reject.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VecIoError {
    /// The operating system failed to open, read, write or flush the file.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The path's extension names no vector file format.
    #[error(
        "{}: unknown vector file extension (expected .fvecs, .ivecs, .bvecs or .npy)",
        path.display()
    )]
    UnknownExtension {
        /// The path whose extension was not recognised.
        path: PathBuf,
    },
    /// A zero-byte file: it holds no vector, so not even its dimension is known.
    #[error("{} is empty: a vector file needs at least one vector", path.display())]
    Empty {
        /// The empty file.
        path: PathBuf,
    },
    /// A vector (or an `.npy` shape) declares a dimension of zero, a negative one or one
    /// beyond [`MAX_FILE_DIM`].
    #[error(
        "{}: vector {vector} declares dimension {dim}, outside 1..={max}",
        path.display(),
        max = MAX_FILE_DIM
    )]
    BadDimension {
        /// The file being read.
        path: PathBuf,
        /// Position of the offending vector in the file (0 for an `.npy` shape).
        vector: u64,
        /// The dimension declared.
        dim: i64,
    },
    /// A TEXMEX record whose dimension differs from the file's first record.
    #[error(
        "{}: vector {vector} declares dimension {found}, but the first vector has {expected}",
        path.display()
    )]
    InconsistentDimension {
        /// The file being read.
        path: PathBuf,
        /// Position of the offending vector in the file.
        vector: u64,
        /// Dimension of the first vector.
        expected: usize,
        /// Dimension the offending vector declares.
        found: i64,
    },
    /// Rows asked of a file that has fewer.
    #[error("{}: rows {first}..{} asked of a file of {rows} vectors", path.display(), first.saturating_add(*count))]
    RowsOutOfRange {
        /// The file being read.
        path: PathBuf,
        /// First row asked for.
        first: usize,
        /// Rows asked for.
        count: usize,
        /// Rows in the file.
        rows: usize,
    },
    /// The file is shorter than its layout needs: not a whole number of TEXMEX records, or
    /// `.npy` data (or header) cut short.
    #[error(
        "{} is truncated: it holds {actual_bytes} bytes but its layout needs {expected_bytes}",
        path.display()
    )]
    Truncated {
        /// The file being read.
        path: PathBuf,
        /// Smallest length a well-formed file with this layout would have.
        expected_bytes: u64,
        /// The file's length.
        actual_bytes: u64,
    },
    /// An `.npy` file longer than its header's shape says.
    #[error(
        "{}: trailing bytes: it holds {actual_bytes} bytes but its header describes {expected_bytes}",
        path.display()
    )]
    TrailingBytes {
        /// The file being read.
        path: PathBuf,
        /// Length the header's shape and dtype describe.
        expected_bytes: u64,
        /// The file's length.
        actual_bytes: u64,
    },
    /// An `.npy` file that does not start with the NumPy magic string.
    #[error("{} is not a NumPy .npy file: it does not start with \\x93NUMPY", path.display())]
    NpyBadMagic {
        /// The file being read.
        path: PathBuf,
    },
    /// An `.npy` format version other than 1.0, 2.0 or 3.0.
    #[error(
        "{}: unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)",
        path.display()
    )]
    NpyUnsupportedVersion {
        /// The file being read.
        path: PathBuf,
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// An `.npy` header that is not a well-formed dict with exactly the keys `descr`,
    /// `fortran_order` and `shape`.
    #[error("{}: invalid .npy header: {reason}", path.display())]
    NpyHeader {
        /// The file being read.
        path: PathBuf,
        /// What is wrong with the header.
        reason: String,
    },
    /// An `.npy` dtype this module cannot convert to `f32`.
    #[error(
        "{}: unsupported .npy dtype {descr} (supported: <f4, <f8, |u1)",
        path.display()
    )]
    NpyUnsupportedDtype {
        /// The file being read.
        path: PathBuf,
        /// The header's `descr`: the string itself (e.g. `>f4`), or a non-string in Python syntax.
        descr: String,
    },
    /// An `.npy` array stored in Fortran (column-major) order.
    #[error(
        "{}: the .npy array is in Fortran (column-major) order; only C order is supported",
        path.display()
    )]
    NpyFortranOrder {
        /// The file being read.
        path: PathBuf,
    },
    /// An `.npy` array that is not 2-D `(vectors, dimension)`.
    #[error(
        "{}: the .npy array has shape {shape}; vectors must be a 2-D (count, dimension) array",
        path.display()
    )]
    NpyNotTwoDimensional {
        /// The file being read.
        path: PathBuf,
        /// The header's shape, in Python syntax.
        shape: String,
    },
    /// A well-formed file holding more values than one buffer can address on this platform.
    #[error(
        "{} holds {count} vectors of dimension {dim}: more than fit in memory on this platform",
        path.display()
    )]
    TooLarge {
        /// The file being read.
        path: PathBuf,
        /// Number of vectors in the file.
        count: u64,
        /// Their dimension.
        dim: usize,
    },
    /// Writer input whose length is not a multiple of the dimension.
    #[error("{len} values do not split into vectors of dimension {dim}")]
    RaggedData {
        /// Number of values supplied.
        len: usize,
        /// Dimension asked for.
        dim: usize,
    },
    /// A writer asked for dimension zero or one beyond [`MAX_FILE_DIM`].
    #[error("cannot write vectors of dimension {dim}: it must be between 1 and {max}", max = MAX_FILE_DIM)]
    InvalidDimension {
        /// Dimension asked for.
        dim: usize,
    },
    /// The file is a vector file, but not of the kind this call handles (e.g. `read_ivecs` on
    /// an `.fvecs` file).
    #[error("{} is not {expected}", path.display())]
    WrongFormat {
        /// The file named.
        path: PathBuf,
        /// The kind of file the call needs, e.g. `"an .ivecs file"`.
        expected: &'static str,
    },
}
