//! x86_64 kernels and the checks that make calling them sound.

pub(super) mod avx2;
pub(super) mod avx512;

/// Whether the AVX2 kernels may run: detected at runtime with `std`, known at compile time
/// without it.
#[cfg(feature = "std")]
pub(super) fn avx2_supported() -> bool {
    std::is_x86_feature_detected!("avx2")
}

#[cfg(not(feature = "std"))]
pub(super) fn avx2_supported() -> bool {
    cfg!(target_feature = "avx2")
}

/// Whether the binary16 kernels (`half`) may run: AVX2 and F16C, detected at runtime.
#[cfg(feature = "std")]
pub(super) fn f16c_supported() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")
}

#[cfg(not(feature = "std"))]
pub(super) fn f16c_supported() -> bool {
    cfg!(all(target_feature = "avx2", target_feature = "f16c"))
}

/// Whether the AVX-512F kernels may run.
#[cfg(feature = "std")]
pub(super) fn avx512_supported() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

#[cfg(not(feature = "std"))]
pub(super) fn avx512_supported() -> bool {
    cfg!(target_feature = "avx512f")
}
