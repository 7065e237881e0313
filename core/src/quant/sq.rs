//! Scalar quantization to one byte per dimension, with a per-dimension range.
