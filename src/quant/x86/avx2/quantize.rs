//! Activation quantizers with AVX2, bit for bit as the scalar ones (see the AVX-512
//! twin for how: the same f32 operations, exact rounding, non-finite blocks to scalar).

use std::arch::x86_64::*;

use crate::quant::acts::{ActFormat, ActRowMut};
use crate::quant::blocks::{QK, QK_K};
use crate::quant::{k_quants, quantize};

#[inline(always)]
unsafe fn round_away(p: __m256) -> __m256 {
    // SAFETY: register-only.
    unsafe {
        let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(p);
        let sign = _mm256_set1_ps(-0.0);
        let frac = _mm256_andnot_ps(sign, _mm256_sub_ps(p, t));
        let up = _mm256_cmp_ps::<_CMP_GE_OQ>(frac, _mm256_set1_ps(0.5));
        let one = _mm256_or_ps(_mm256_set1_ps(1.0), _mm256_and_ps(p, sign));
        _mm256_add_ps(t, _mm256_and_ps(up, one))
    }
}

/// Whether all of `x` is finite.
fn finite(x: &[f32]) -> bool {
    x.iter().all(|v| v.is_finite())
}

/// Four vectors of eight i32 in -127..=127 to 32 bytes in order.
#[inline(always)]
unsafe fn pack32(q: [__m256i; 4]) -> __m256i {
    // SAFETY: register-only.
    unsafe {
        let ab = _mm256_packs_epi32(q[0], q[1]);
        let cd = _mm256_packs_epi32(q[2], q[3]);
        let x = _mm256_packs_epi16(ab, cd);
        _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
    }
}

#[inline(always)]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    // SAFETY: register-only.
    unsafe {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s)))
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
        if !finite(xb) {
            if ONE {
                row.put_q8_1(b, &quantize::quantize_q8_1(xb));
            } else {
                row.put_q8_0(b, &quantize::quantize_q8_0(xb));
            }
            continue;
        }
        // SAFETY: 32 values per block, read and written in place.
        unsafe {
            let v: [__m256; 4] =
                crate::quant::x86::vec_array!(4, i => _mm256_loadu_ps(xb.as_ptr().add(8 * i)));
            let sign = _mm256_set1_ps(-0.0);
            let mut m = _mm256_setzero_ps();
            for &v in &v {
                m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v));
            }
            let mut buf = [0f32; 8];
            _mm256_storeu_ps(buf.as_mut_ptr(), m);
            let amax = buf.iter().copied().fold(0.0, f32::max);
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let idv = _mm256_set1_ps(id);
            let q: [__m256i; 4] = crate::quant::x86::vec_array!(4, i => _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v[i], idv))));
            _mm256_storeu_si256(row.qs.as_mut_ptr().add(b * QK).cast(), pack32(q));
            let sum = hsum_i32(_mm256_add_epi32(
                _mm256_add_epi32(q[0], q[1]),
                _mm256_add_epi32(q[2], q[3]),
            ));
            row.d[b] = crate::quant::floats::fp32_to_fp16(d).to_f32();
            row.sum[b] = sum;
            if ONE {
                row.s[b] = crate::quant::floats::fp32_to_fp16(sum as f32 * d).to_f32();
            }
        }
    }
}

/// # Safety
/// The CPU has AVX2; `out` holds a Q8_0 row of `x.len()` values.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q8_0(x: &[f32], out: &mut [u8]) {
    // SAFETY: forwarded contract.
    unsafe { q8_legacy::<false>(x, out) }
}

/// # Safety
/// As [`q8_0`], for Q8_1.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q8_1(x: &[f32], out: &mut [u8]) {
    // SAFETY: forwarded contract.
    unsafe { q8_legacy::<true>(x, out) }
}

/// # Safety
/// As [`q8_0`], for Q8_K.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn q8_k(x: &[f32], out: &mut [u8]) {
    let mut row = ActRowMut::new(ActFormat::Q8K, x.len(), out);
    for (b, xb) in x.as_chunks::<QK_K>().0.iter().enumerate() {
        let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if !finite(xb) || amax == 0.0 {
            row.put_q8_k(b, &k_quants::quantize_q8_k(xb));
            continue;
        }
        let first = xb
            .iter()
            .position(|v| v.abs() == amax)
            .expect("amax is attained");
        let iscale = -127.0 / xb[first];
        // SAFETY: 256 values per block, read and written in place.
        unsafe {
            let isv = _mm256_set1_ps(iscale);
            let magic = _mm256_set1_ps(12_582_912.0);
            let qs = row.qs.as_mut_ptr().add(b * QK_K);
            for c in 0..8 {
                let q: [__m256i; 4] = crate::quant::x86::vec_array!(4, i => {
                    let v = _mm256_loadu_ps(xb.as_ptr().add(32 * c + 8 * i));
                    let bits = _mm256_castps_si256(_mm256_add_ps(_mm256_mul_ps(isv, v), magic));
                    let q = _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)), _mm256_set1_epi32(0x0040_0000));
                    _mm256_min_epi32(q, _mm256_set1_epi32(127))
                });
                _mm256_storeu_si256(qs.add(32 * c).cast(), pack32(q));
                let s0 = hsum_i32(_mm256_add_epi32(q[0], q[1]));
                let s1 = hsum_i32(_mm256_add_epi32(q[2], q[3]));
                row.bsums[b * 16 + 2 * c] = s0 as i16;
                row.bsums[b * 16 + 2 * c + 1] = s1 as i16;
                row.bs32[b * 8 + c] = (s0 + s1) as i16;
            }
            row.d[b] = 1.0 / iscale;
        }
    }
}

/// # Safety
/// As [`q8_0`], for the f32 layout.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn f32(x: &[f32], out: &mut [u8]) {
    ActRowMut::new(ActFormat::F32, x.len(), out)
        .x
        .copy_from_slice(x);
}
