//! Errors of operations that touch files: the core's errors plus I/O and vector-file errors.

use std::path::PathBuf;

/// An index or vector file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The operating system refused a read, write or map.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The bytes are not a valid index, or the operation was invalid.
    #[error("{path}: {source}")]
    Index {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: neardb_core::Error,
    },
    /// A vector file (.fvecs, .npy, …) is malformed.
    #[error(transparent)]
    Vectors(#[from] crate::io::VecIoError),
}

impl FileError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
    pub(crate) fn index(path: &std::path::Path, source: impl Into<neardb_core::Error>) -> Self {
        Self::Index { path: path.to_path_buf(), source: source.into() }
    }
}
