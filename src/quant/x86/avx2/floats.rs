//! F32, F16 and BF16 weights against f32 activations with AVX2: eight columns per vector,
//! four accumulators, a scalar tail.

use std::arch::x86_64::*;

use super::hsum;

#[inline(always)]
unsafe fn load_w<const TY: u8>(p: *const u8, i: usize) -> __m256 {
    // SAFETY: the caller keeps i + 8 within the row.
    unsafe {
        match TY {
            0 => _mm256_loadu_ps(p.cast::<f32>().add(i)),
            1 => _mm256_cvtph_ps(_mm_loadu_si128(p.cast::<u16>().add(i).cast())),
            _ => {
                let h = _mm_loadu_si128(p.cast::<u16>().add(i).cast());
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
            }
        }
    }
}

fn scalar_w<const TY: u8>(w: &[u8], i: usize) -> f32 {
    match TY {
        0 => f32::from_le_bytes([w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]]),
        1 => half::f16::from_le_bytes([w[2 * i], w[2 * i + 1]]).to_f32(),
        _ => f32::from_bits(u32::from(u16::from_le_bytes([w[2 * i], w[2 * i + 1]])) << 16),
    }
}

#[inline(always)]
unsafe fn dot<const TY: u8>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let x: &[f32] = bytemuck::cast_slice(&a[..4 * n]);
    // SAFETY: vector loads stop 8 short of `n`; the tail is scalar.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, acc) in acc.iter_mut().enumerate() {
                let j = i + 8 * k;
                *acc = _mm256_fmadd_ps(
                    load_w::<TY>(w.as_ptr(), j),
                    _mm256_loadu_ps(x.as_ptr().add(j)),
                    *acc,
                );
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(
                load_w::<TY>(w.as_ptr(), i),
                _mm256_loadu_ps(x.as_ptr().add(i)),
                acc[0],
            );
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ));
        while i < n {
            s += scalar_w::<TY>(w, i) * x[i];
            i += 1;
        }
        s
    }
}

/// # Safety
/// The CPU has AVX2, FMA and F16C; `w` holds `n` F32 values, `a` an f32 row of `n`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_f32(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot::<0>(w, a, n) }
}

/// # Safety
/// As [`dot_f32`], for F16 weights.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_f16(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot::<1>(w, a, n) }
}

/// # Safety
/// As [`dot_f32`], for BF16 weights.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_bf16(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot::<2>(w, a, n) }
}
