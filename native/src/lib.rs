//! QuiverDB for servers: everything in `quiverdb-core`, plus what needs an operating system:
//! vector files, memory-mapped indexes, threads, and the `quiver` command-line tool.
pub use quiverdb_core::*;
