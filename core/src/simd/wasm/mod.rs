//! WebAssembly kernels, compiled in when the build enables `simd128`.

pub(super) mod simd128;
