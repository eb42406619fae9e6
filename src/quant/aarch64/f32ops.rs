//! The f32 parts of the forward pass with NEON: the reductions, which the compiler does
//! not vectorize from the plain loops (it keeps a reduction's order). Element-wise
//! operations stay plain loops: NEON is part of every AArch64 target, and the compiler
//! vectorizes those already.

// Accumulators indexed by register number read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;

use super::floats::f16x4;
use crate::quant::exp_poly;

/// e^x for each lane: the x86 kernels' polynomial (Cephes, about 1 ulp); exactly 0 below
/// the smallest normal result, as for -inf.
#[inline(always)]
fn exp4(x: float32x4_t) -> float32x4_t {
    // SAFETY: register-only NEON.
    unsafe {
        let xc = vminq_f32(
            vmaxq_f32(x, vdupq_n_f32(exp_poly::MIN)),
            vdupq_n_f32(exp_poly::MAX),
        );
        let fx = vrndnq_f32(vmulq_f32(xc, vdupq_n_f32(std::f32::consts::LOG2_E)));
        let r = vfmsq_f32(xc, fx, vdupq_n_f32(exp_poly::LN2_HI));
        let r = vfmsq_f32(r, fx, vdupq_n_f32(exp_poly::LN2_LO));
        let mut y = vdupq_n_f32(exp_poly::POLY[0]);
        for &c in &exp_poly::POLY[1..] {
            y = vfmaq_f32(vdupq_n_f32(c), y, r);
        }
        let y = vaddq_f32(vfmaq_f32(r, y, vmulq_f32(r, r)), vdupq_n_f32(1.0));
        let e = vshlq_n_s32::<23>(vaddq_s32(vcvtq_s32_f32(fx), vdupq_n_s32(127)));
        let y = vmulq_f32(y, vreinterpretq_f32_s32(e));
        let tiny = vcltq_f32(x, vdupq_n_f32(exp_poly::MIN));
        vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), tiny))
    }
}

/// # Safety
/// NEON (every AArch64 CPU).
#[target_feature(enable = "neon")]
pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: whole vectors of four inside both slices, then a scalar tail.
    unsafe {
        let mut acc = [vdupq_n_f32(0.0); 4];
        let mut i = 0;
        while i + 16 <= n {
            for (k, acc) in acc.iter_mut().enumerate() {
                let (x, y) = (
                    vld1q_f32(a.as_ptr().add(i + 4 * k)),
                    vld1q_f32(b.as_ptr().add(i + 4 * k)),
                );
                *acc = vfmaq_f32(*acc, x, y);
            }
            i += 16;
        }
        while i + 4 <= n {
            acc[0] = vfmaq_f32(
                acc[0],
                vld1q_f32(a.as_ptr().add(i)),
                vld1q_f32(b.as_ptr().add(i)),
            );
            i += 4;
        }
        let mut s = vaddvq_f32(vaddq_f32(
            vaddq_f32(acc[0], acc[1]),
            vaddq_f32(acc[2], acc[3]),
        ));
        while i < n {
            s += a[i] * b[i];
            i += 1;
        }
        s
    }
}

/// # Safety
/// NEON.
#[target_feature(enable = "neon")]
pub unsafe fn sum_sq(x: &[f32]) -> f32 {
    // SAFETY: NEON is present.
    unsafe { dot(x, x) }
}

/// `Σ a_i * f16(b_i)`
///
/// # Safety
/// NEON.
#[target_feature(enable = "neon")]
pub unsafe fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: whole vectors of four inside both slices, then a scalar tail.
    unsafe {
        let (mut s0, mut s1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        let mut i = 0;
        while i + 8 <= n {
            let h = vld1q_u16(b.as_ptr().add(i));
            s0 = vfmaq_f32(s0, vld1q_f32(a.as_ptr().add(i)), f16x4(vget_low_u16(h)));
            s1 = vfmaq_f32(
                s1,
                vld1q_f32(a.as_ptr().add(i + 4)),
                f16x4(vget_high_u16(h)),
            );
            i += 8;
        }
        let mut s = vaddvq_f32(vaddq_f32(s0, s1));
        while i < n {
            s += a[i] * half::f16::from_bits(b[i]).to_f32();
            i += 1;
        }
        s
    }
}

/// f16 values (as bits) to f32.
///
/// # Safety
/// NEON.
#[target_feature(enable = "neon")]
pub unsafe fn f16_to_f32(src: &[u16], out: &mut [f32]) {
    let n = src.len().min(out.len());
    // SAFETY: whole vectors of four inside both slices, then a scalar tail.
    unsafe {
        let mut i = 0;
        while i + 4 <= n {
            vst1q_f32(
                out.as_mut_ptr().add(i),
                f16x4(vld1_u16(src.as_ptr().add(i))),
            );
            i += 4;
        }
        while i < n {
            out[i] = half::f16::from_bits(src[i]).to_f32();
            i += 1;
        }
    }
}

/// `y += a * f16(x)`
///
/// # Safety
/// NEON.
#[target_feature(enable = "neon")]
pub unsafe fn axpy_f16(a: f32, x: &[u16], y: &mut [f32]) {
    let n = x.len().min(y.len());
    // SAFETY: whole vectors of four inside both slices, then a scalar tail.
    unsafe {
        let av = vdupq_n_f32(a);
        let mut i = 0;
        while i + 4 <= n {
            let p = y.as_mut_ptr().add(i);
            vst1q_f32(
                p,
                vfmaq_f32(vld1q_f32(p), av, f16x4(vld1_u16(x.as_ptr().add(i)))),
            );
            i += 4;
        }
        while i < n {
            y[i] += a * half::f16::from_bits(x[i]).to_f32();
            i += 1;
        }
    }
}

/// The largest value (-inf for none).
///
/// # Safety
/// NEON.
#[target_feature(enable = "neon")]
pub unsafe fn max(x: &[f32]) -> f32 {
    // SAFETY: whole vectors of four inside `x`, then a scalar tail.
    unsafe {
        let mut m = vdupq_n_f32(f32::NEG_INFINITY);
        let mut i = 0;
        while i + 4 <= x.len() {
            m = vmaxq_f32(m, vld1q_f32(x.as_ptr().add(i)));
            i += 4;
        }
        let mut m = vmaxvq_f32(m);
        while i < x.len() {
            m = m.max(x[i]);
            i += 1;
        }
        m
    }
}

/// `x = e^(x - max)`; returns the sum.
///
/// # Safety
/// NEON.
#[target_feature(enable = "neon")]
pub unsafe fn exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
    // SAFETY: whole vectors of four inside `x`, then a scalar tail.
    unsafe {
        let mv = vdupq_n_f32(max);
        let mut s = vdupq_n_f32(0.0);
        let mut i = 0;
        while i + 4 <= x.len() {
            let p = x.as_mut_ptr().add(i);
            let e = exp4(vsubq_f32(vld1q_f32(p), mv));
            vst1q_f32(p, e);
            s = vaddq_f32(s, e);
            i += 4;
        }
        let mut s = vaddvq_f32(s);
        while i < x.len() {
            x[i] = (x[i] - max).exp();
            s += x[i];
            i += 1;
        }
        s
    }
}
