//! What a KV cache stores its values as, loaded as f32 vectors: the element type of the
//! attention kernels (avx2/attention.rs, avx512/attention.rs), which read cached rows as
//! they are stored.

use std::arch::x86_64::*;

pub trait KeyValue: Copy {
    /// Eight values from `p`, as f32.
    ///
    /// # Safety
    /// `p` points at eight values; the CPU has AVX2 and F16C.
    unsafe fn load8(p: *const Self) -> __m256;

    /// Sixteen values from `p`, as f32.
    ///
    /// # Safety
    /// `p` points at sixteen values; the CPU has AVX-512 F.
    unsafe fn load16(p: *const Self) -> __m512;
}

impl KeyValue for f32 {
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> __m256 {
        // SAFETY: the caller's.
        unsafe { _mm256_loadu_ps(p) }
    }

    #[inline(always)]
    unsafe fn load16(p: *const f32) -> __m512 {
        // SAFETY: the caller's.
        unsafe { _mm512_loadu_ps(p) }
    }
}

/// f16 as its bits.
impl KeyValue for u16 {
    #[inline(always)]
    unsafe fn load8(p: *const u16) -> __m256 {
        // SAFETY: the caller's.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }

    #[inline(always)]
    unsafe fn load16(p: *const u16) -> __m512 {
        // SAFETY: the caller's.
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
    }
}
