//! Cached keys into the attention's column-major blocks: sixteen rows at a time, each
//! read as vectors (converted from f16, or as f32), then transposed in registers rather
//! than with a load and a store per value.

use std::arch::x86_64::*;

use crate::quant::x86::kv_value::KeyValue;

/// Rows `j < n` of `src` (row `j` at `src[j * stride..][..hd]`, `hd = kt.len() / w`) into
/// `kt[d * w + j]`. Columns from `n` up to the next multiple of 16 get copies of row
/// `n - 1`; the columns after them are left alone.
///
/// # Safety
/// The CPU has the features `x86::has_avx512` checks.
///
/// # Panics
/// Unless `n >= 1`, `n.next_multiple_of(16) <= w`, `hd` is a multiple of 16 and `src`
/// holds `(n - 1) * stride + hd` values.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn keys_t<T: KeyValue>(src: &[T], stride: usize, n: usize, kt: &mut [f32], w: usize) {
    let hd = kt.len() / w;
    assert!(n >= 1 && n.next_multiple_of(16) <= w && hd.is_multiple_of(16));
    let needed = (n - 1).checked_mul(stride).and_then(|x| x.checked_add(hd));
    assert!(needed.is_some_and(|needed| src.len() >= needed));
    // SAFETY: rows are clamped to n - 1 and dimensions stay below hd, within the lengths
    // checked above; stores land in columns below w of rows below hd.
    unsafe {
        for j0 in (0..n).step_by(16) {
            for d0 in (0..hd).step_by(16) {
                let r: [__m512; 16] = std::array::from_fn(|i| {
                    let row = (j0 + i).min(n - 1);
                    T::load16(src.as_ptr().add(row * stride + d0))
                });
                let t = transpose16(r);
                for (i, v) in t.into_iter().enumerate() {
                    _mm512_storeu_ps(kt.as_mut_ptr().add((d0 + i) * w + j0), v);
                }
            }
        }
    }
}

/// The transpose of sixteen rows of sixteen: pairs interleaved, then quads within each
/// 128-bit lane, then the lanes themselves in two steps.
#[inline(always)]
unsafe fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    // SAFETY: register-only.
    unsafe {
        // rows 2k and 2k + 1 interleaved: per lane [a0 b0 a1 b1], [a2 b2 a3 b3]
        let t: [__m512; 16] = std::array::from_fn(|i| {
            let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        // rows 4k..4k + 4: per lane, column c of the four (c = 0..4 by i % 4)
        let u: [__m512; 16] = std::array::from_fn(|i| {
            let (k, c) = (i / 4 * 4, i % 4);
            let (a, b) = (t[k + c / 2], t[k + 2 + c / 2]);
            if c % 2 == 0 {
                _mm512_shuffle_ps::<0b01_00_01_00>(a, b)
            } else {
                _mm512_shuffle_ps::<0b11_10_11_10>(a, b)
            }
        });
        // lanes of rows 0-3 with 4-7 (8-11 with 12-15): even lanes, then odd lanes
        let v: [__m512; 16] = std::array::from_fn(|i| {
            let (k, c) = (i / 8 * 8, i % 4);
            let (a, b) = (u[k + c], u[k + 4 + c]);
            if i % 8 < 4 {
                _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b)
            } else {
                _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b)
            }
        });
        // the halves' lanes together: column i of all sixteen rows
        std::array::from_fn(|i| {
            let (a, b) = (v[i % 8], v[8 + i % 8]);
            if i < 8 {
                _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b)
            } else {
                _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b)
            }
        })
    }
}
