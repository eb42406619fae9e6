//! Activation quantizers to the Q8_0, Q8_1 and Q8_K layouts, bit for bit as the scalar
//! ones (`quant::quantize`, `quant::k_quants`): the same f32 operations per value, with
//! rounding done exactly (half away from zero for Q8_0/Q8_1, ggml's `nearest_int` for
//! Q8_K). A block holding a NaN or an infinity goes through the scalar code, whose
//! comparisons treat those values in ways a vector max would not.

use std::arch::x86_64::*;

use crate::quant::acts::{ActFormat, ActRowMut};
use crate::quant::blocks::{QK, QK_K};
use crate::quant::{k_quants, quantize};

/// Round half away from zero, exactly: `p - trunc(p)` is exact for |p| < 2^23.
#[inline(always)]
unsafe fn round_away(p: __m512) -> __m512 {
    // SAFETY: register-only.
    unsafe {
        let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(p);
        let frac = _mm512_abs_ps(_mm512_sub_ps(p, t));
        let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(frac, _mm512_set1_ps(0.5));
        let one = _mm512_or_ps(_mm512_set1_ps(1.0), _mm512_and_ps(p, _mm512_set1_ps(-0.0)));
        _mm512_mask_add_ps(t, up, t, one)
    }
}

#[inline(always)]
unsafe fn all_finite(x: __m512) -> bool {
    // SAFETY: register-only.
    unsafe {
        let bits = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7f80_0000));
        _mm512_cmpeq_epi32_mask(bits, _mm512_set1_epi32(0x7f80_0000)) == 0
    }
}

#[inline(always)]
unsafe fn q8_legacy<const ONE: bool>(x: &[f32], out: &mut [u8]) {
    let fmt = if ONE {
        ActFormat::Q8_1
    } else {
        ActFormat::Q8_0
    };
    let mut row = ActRowMut::new(fmt, x.len(), out);
    for (b, xb) in x.as_chunks::<QK>().0.iter().enumerate() {
        // SAFETY: 32 values per block, read and written in place.
        unsafe {
            let x0 = _mm512_loadu_ps(xb.as_ptr());
            let x1 = _mm512_loadu_ps(xb.as_ptr().add(16));
            if !all_finite(_mm512_add_ps(
                _mm512_mul_ps(x0, _mm512_setzero_ps()),
                _mm512_mul_ps(x1, _mm512_setzero_ps()),
            )) {
                if ONE {
                    row.put_q8_1(b, &quantize::quantize_q8_1(xb));
                } else {
                    row.put_q8_0(b, &quantize::quantize_q8_0(xb));
                }
                continue;
            }
            let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let idv = _mm512_set1_ps(id);
            let q0 = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(x0, idv)));
            let q1 = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(x1, idv)));
            let qs = row.qs.as_mut_ptr().add(b * QK);
            _mm_storeu_si128(qs.cast(), _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128(qs.add(16).cast(), _mm512_cvtepi32_epi8(q1));
            let sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
            let dh = crate::quant::floats::fp32_to_fp16(d);
            row.d[b] = dh.to_f32();
            row.sum[b] = sum;
            if ONE {
                row.s[b] = crate::quant::floats::fp32_to_fp16(sum as f32 * d).to_f32();
            }
        }
    }
}

/// # Safety
/// The CPU has AVX-512; `out` holds a Q8_0 row of `x.len()` values.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn q8_0(x: &[f32], out: &mut [u8]) {
    // SAFETY: forwarded contract.
    unsafe { q8_legacy::<false>(x, out) }
}

/// # Safety
/// As [`q8_0`], for Q8_1.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn q8_1(x: &[f32], out: &mut [u8]) {
    // SAFETY: forwarded contract.
    unsafe { q8_legacy::<true>(x, out) }
}

/// # Safety
/// As [`q8_0`], for Q8_K.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn q8_k(x: &[f32], out: &mut [u8]) {
    let mut row = ActRowMut::new(ActFormat::Q8K, x.len(), out);
    for (b, xb) in x.as_chunks::<QK_K>().0.iter().enumerate() {
        // SAFETY: 256 values per block, read and written in place.
        unsafe {
            let v: [__m512; 16] =
                crate::quant::x86::vec_array!(16, i => _mm512_loadu_ps(xb.as_ptr().add(16 * i)));
            let mut m = _mm512_setzero_ps();
            let mut fin = _mm512_setzero_ps();
            for &v in &v {
                m = _mm512_max_ps(m, _mm512_abs_ps(v));
                fin = _mm512_add_ps(fin, _mm512_mul_ps(v, _mm512_setzero_ps()));
            }
            if !all_finite(fin) {
                row.put_q8_k(b, &k_quants::quantize_q8_k(xb));
                continue;
            }
            let amax = _mm512_reduce_max_ps(m);
            if amax == 0.0 {
                row.qs[b * QK_K..(b + 1) * QK_K].fill(0);
                row.d[b] = 0.0;
                row.bsums[b * 16..(b + 1) * 16].fill(0);
                row.bs32[b * 8..(b + 1) * 8].fill(0);
                continue;
            }
            // The first value of largest magnitude gives the sign, as in the scalar loop.
            let first = xb
                .iter()
                .position(|v| v.abs() == amax)
                .expect("amax is attained");
            let iscale = -127.0 / xb[first];
            let isv = _mm512_set1_ps(iscale);
            let magic = _mm512_set1_ps(12_582_912.0);
            let qs = row.qs.as_mut_ptr().add(b * QK_K);
            for (i, &v) in v.iter().enumerate() {
                let bits = _mm512_castps_si512(_mm512_add_ps(_mm512_mul_ps(isv, v), magic));
                let q = _mm512_sub_epi32(
                    _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
                    _mm512_set1_epi32(0x0040_0000),
                );
                let q = _mm512_min_epi32(q, _mm512_set1_epi32(127));
                _mm_storeu_si128(qs.add(16 * i).cast(), _mm512_cvtepi32_epi8(q));
                let s = _mm512_reduce_add_epi32(q);
                row.bsums[b * 16 + i] = s as i16;
            }
            for j in 0..8 {
                row.bs32[b * 8 + j] = row.bsums[b * 16 + 2 * j] + row.bsums[b * 16 + 2 * j + 1];
            }
            row.d[b] = 1.0 / iscale;
        }
    }
}

/// # Safety
/// As [`q8_0`], for the f32 layout.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn f32(x: &[f32], out: &mut [u8]) {
    ActRowMut::new(ActFormat::F32, x.len(), out)
        .x
        .copy_from_slice(x);
}
