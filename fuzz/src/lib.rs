//! `neardb-fuzz`: a structure-aware fuzzer for hostile NearDB index files, SSD index files and vector files
//! that runs in-process on stable Rust (no libFuzzer, no nightly). Seeds are valid files built
//! in memory, the mutator knows the file format, and the oracle checks the search contract on
//! everything that opens. Every execution replays from one `u64`.

pub mod disk;
pub mod layout;
pub mod memory;
pub mod mutate;
pub mod oracle;
pub mod panics;
pub mod rng;
pub mod runner;
pub mod seeds;
pub mod vectors;
