//! Cached keys into the attention's column-major blocks with AVX2: eight rows at a time,
//! each read as vectors (converted from f16, or as f32), then transposed in registers
//! (the AVX-512 twin takes sixteen).

use std::arch::x86_64::*;

use crate::quant::x86::kv_value::KeyValue;

/// Rows `j < n` of `src` (row `j` at `src[j * stride..][..hd]`, `hd = kt.len() / w`) into
/// `kt[d * w + j]`. Columns from `n` up to the next multiple of 8 get copies of row
/// `n - 1`; the columns after them are left alone.
///
/// # Safety
/// The CPU has the features `x86::has_avx2` checks.
///
/// # Panics
/// Unless `n >= 1`, `n.next_multiple_of(8) <= w`, `hd` is a multiple of 8 and `src`
/// holds `(n - 1) * stride + hd` values.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn keys_t<T: KeyValue>(src: &[T], stride: usize, n: usize, kt: &mut [f32], w: usize) {
    let hd = kt.len() / w;
    assert!(n >= 1 && n.next_multiple_of(8) <= w && hd.is_multiple_of(8));
    let needed = (n - 1).checked_mul(stride).and_then(|x| x.checked_add(hd));
    assert!(needed.is_some_and(|needed| src.len() >= needed));
    // SAFETY: rows are clamped to n - 1 and dimensions stay below hd, within the lengths
    // checked above; stores land in columns below w of rows below hd.
    unsafe {
        for j0 in (0..n).step_by(8) {
            for d0 in (0..hd).step_by(8) {
                let r: [__m256; 8] = std::array::from_fn(|i| {
                    let row = (j0 + i).min(n - 1);
                    T::load8(src.as_ptr().add(row * stride + d0))
                });
                for (i, v) in transpose8(r).into_iter().enumerate() {
                    _mm256_storeu_ps(kt.as_mut_ptr().add((d0 + i) * w + j0), v);
                }
            }
        }
    }
}

/// The transpose of eight rows of eight: pairs interleaved, then quads within each
/// 128-bit lane, then the lanes.
#[inline(always)]
unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // SAFETY: register-only.
    unsafe {
        // rows 2k and 2k + 1 interleaved: per lane [a0 b0 a1 b1], [a2 b2 a3 b3]
        let t: [__m256; 8] = std::array::from_fn(|i| {
            let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
            if i % 2 == 0 {
                _mm256_unpacklo_ps(a, b)
            } else {
                _mm256_unpackhi_ps(a, b)
            }
        });
        // rows 4k..4k + 4: per lane, column c of the four (c = i % 4)
        let u: [__m256; 8] = std::array::from_fn(|i| {
            let (k, c) = (i / 4 * 4, i % 4);
            let (a, b) = (t[k + c / 2], t[k + 2 + c / 2]);
            if c % 2 == 0 {
                _mm256_shuffle_ps::<0b01_00_01_00>(a, b)
            } else {
                _mm256_shuffle_ps::<0b11_10_11_10>(a, b)
            }
        });
        // column i: its lane of rows 0-3, then of rows 4-7
        std::array::from_fn(|i| {
            let (a, b) = (u[i % 4], u[4 + i % 4]);
            if i < 4 {
                _mm256_permute2f128_ps::<0x20>(a, b)
            } else {
                _mm256_permute2f128_ps::<0x31>(a, b)
            }
        })
    }
}
