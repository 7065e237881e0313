//! NearDB for servers: everything in `neardb-core`, plus what needs an operating system:
//! vector files, memory-mapped indexes, threads, synthetic datasets, and [`IndexSpec`]: what to
//! build, as the `neardb` CLI (crate `neardb-cli`), the benchmark harness and tests say it.
//!
//! ```no_run
//! use neardb::{FlatIndex, Metric, SearchParams, VectorSearch};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut index = FlatIndex::new(3, Metric::Cosine)?;
//! index.add(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0])?;
//! neardb::save(&index, "tiny.neardb")?;
//! let mapped = neardb::open("tiny.neardb")?; // memory-mapped, searched in place
//! let hits = mapped.search(&[0.9, 0.1, 0.0], 1, &SearchParams::new(), None)?;
//! assert_eq!(hits[0].id, 0);
//! # Ok(()) }
//! ```
pub use neardb_core::*;

pub mod collection;
mod concurrent;
#[cfg(unix)]
pub mod disk;
mod error;
pub mod gen;
mod index_file;
pub mod io;
mod spec;

pub use concurrent::ConcurrentHnsw;
pub use error::FileError;
pub use index_file::{
    load, load_with, open, open_with, save, search_batch_parallel, AnyIndex, InFile, InMemory, Index,
    Savable, Stores, WithIds, WithoutVectors,
};
pub use spec::{BuiltIndex, IndexSpec, Layout, Quantize, SpecError};
