//! Vector compression: k-means, scalar (int8) quantization, product quantization and binary
//! codes. Each quantizer trains on sample vectors, encodes to compact codes, and scores a
//! prepared query against codes without decoding them.

pub mod binary;
pub mod kmeans;
pub mod pq;
pub mod sq;

pub use binary::{BinaryQuantizer, Encoder, Hamming, HammingIsa};
pub use kmeans::{kmeans, KMeansParams};
pub use pq::ProductQuantizer;
