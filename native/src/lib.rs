//! QuiverDB for servers: everything in `quiverdb-core`, plus what needs an operating system:
//! vector files, memory-mapped indexes, threads, synthetic datasets and the `quiver` CLI.
//!
//! ```no_run
//! use quiverdb::{FlatIndex, Metric, SearchParams, VectorSearch};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut index = FlatIndex::new(3, Metric::Cosine)?;
//! index.add(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0])?;
//! quiverdb::save(&index, "tiny.qvdb")?;
//! let mapped = quiverdb::open("tiny.qvdb")?; // memory-mapped, searched in place
//! let hits = mapped.search(&[0.9, 0.1, 0.0], 1, &SearchParams::new(), None)?;
//! assert_eq!(hits[0].id, 0);
//! # Ok(()) }
//! ```
pub use quiverdb_core::*;

mod concurrent;
mod error;
pub mod gen;
mod index_file;
pub mod io;

pub use concurrent::ConcurrentHnsw;
pub use error::FileError;
pub use index_file::{
    load, load_with, open, open_with, save, search_batch_parallel, AnyIndex, Savable, WithIds, WithoutVectors,
};
