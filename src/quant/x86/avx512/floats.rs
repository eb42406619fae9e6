//! F32, F16 and BF16 weights against f32 activations: sixteen columns per vector, weights
//! widened to f32 in registers. The tile kernel converts each weight vector once and uses
//! it for four tokens.

use std::arch::x86_64::*;

use super::mask64;
use crate::quant::kernels::{GemmFn, GemmJob, GemmKernel, TypeKernels};
use crate::quant::GgmlType;

/// Sixteen weights from `p` (element `i` onwards), widened; lanes past `n` are zero.
#[inline(always)]
unsafe fn load_w<const TY: u8>(p: *const u8, i: usize, n: usize) -> __m512 {
    let lanes = mask64(n - i) as u16;
    // SAFETY: masked to the row's `n` elements.
    unsafe {
        match TY {
            0 => _mm512_maskz_loadu_ps(lanes, p.cast::<f32>().add(i)),
            1 => _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes, p.cast::<i16>().add(i))),
            _ => {
                let h = _mm256_maskz_loadu_epi16(lanes, p.cast::<i16>().add(i));
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
            }
        }
    }
}

#[inline(always)]
unsafe fn dot<const TY: u8>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let x: *const f32 = a.as_ptr().cast();
    // SAFETY: loads masked to `n` elements of both rows.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i + 64 <= n {
            for (k, acc) in acc.iter_mut().enumerate() {
                let j = i + 16 * k;
                *acc = _mm512_fmadd_ps(
                    load_w::<TY>(w.as_ptr(), j, n),
                    _mm512_loadu_ps(x.add(j)),
                    *acc,
                );
            }
            i += 64;
        }
        while i < n {
            let lanes = mask64(n - i) as u16;
            let xv = _mm512_maskz_loadu_ps(lanes, x.add(i));
            acc[0] = _mm512_fmadd_ps(load_w::<TY>(w.as_ptr(), i, n), xv, acc[0]);
            i += 16;
        }
        let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(s)
    }
}

/// # Safety
/// The CPU has AVX-512; `w` holds `n` F32 values, `a` an f32 row of `n`.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn dot_f32(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot::<0>(w, a, n) }
}

/// # Safety
/// As [`dot_f32`], for F16 weights.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn dot_f16(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot::<1>(w, a, n) }
}

/// # Safety
/// As [`dot_f32`], for BF16 weights.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn dot_bf16(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot::<2>(w, a, n) }
}

/// `R` rows x `TN` tokens, whole rows.
#[inline(always)]
unsafe fn tile<const TY: u8, const R: usize, const TN: usize>(job: &GemmJob, r0: usize, t0: usize) {
    let n = job.cols;
    // SAFETY: rows r0..r0 + R and tokens t0..t0 + TN exist; loads masked to `n`.
    unsafe {
        let x: [*const f32; TN] =
            std::array::from_fn(|t| job.acts.as_ptr().add((t0 + t) * job.act_stride).cast());
        let w: [*const u8; R] =
            std::array::from_fn(|r| job.w.as_ptr().add((r0 + r) * job.row_bytes));
        let mut acc = [[_mm512_setzero_ps(); TN]; R];
        let mut i = 0;
        while i < n {
            let lanes = mask64(n - i) as u16;
            let xv: [__m512; TN] =
                crate::quant::x86::vec_array!(TN, t => _mm512_maskz_loadu_ps(lanes, x[t].add(i)));
            for r in 0..R {
                let wv = load_w::<TY>(w[r], i, n);
                for t in 0..TN {
                    acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
                }
            }
            i += 16;
        }
        for (r, acc) in acc.iter().enumerate() {
            for (t, &a) in acc.iter().enumerate() {
                *job.out.add((t0 + t) * job.out_stride + r0 + r) = _mm512_reduce_add_ps(a);
            }
        }
    }
}

#[inline(always)]
unsafe fn rows<const TY: u8, const R: usize>(job: &GemmJob, r0: usize) {
    // SAFETY: forwarded; token tiles stay below n_tok.
    unsafe {
        let mut t0 = 0;
        while t0 + 4 <= job.n_tok {
            tile::<TY, R, 4>(job, r0, t0);
            t0 += 4;
        }
        match job.n_tok - t0 {
            0 => {}
            1 => tile::<TY, R, 1>(job, r0, t0),
            2 => tile::<TY, R, 2>(job, r0, t0),
            _ => tile::<TY, R, 3>(job, r0, t0),
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn gemm<const TY: u8>(job: &GemmJob, _pack: &mut [u8]) {
    // SAFETY: the caller's contract (`TypeKernels::run_gemm`).
    unsafe {
        let mut r0 = 0;
        while r0 + 4 <= job.rows {
            rows::<TY, 4>(job, r0);
            r0 += 4;
        }
        match job.rows - r0 {
            0 => {}
            1 => rows::<TY, 1>(job, r0),
            2 => rows::<TY, 2>(job, r0),
            _ => rows::<TY, 3>(job, r0),
        }
    }
}

pub(super) fn gemm_kernel(ty: GgmlType) -> Option<GemmKernel> {
    TypeKernels::gemm_kernel(gemv_kernel(ty), |_| 0, 4)
}

/// The tile kernel packs nothing, so it serves any number of tokens.
pub(super) fn gemv_kernel(ty: GgmlType) -> GemmFn {
    match ty {
        GgmlType::F32 => gemm::<0>,
        GgmlType::F16 => gemm::<1>,
        _ => gemm::<2>,
    }
}
