//! F32, F16 and BF16 weights against f32 activations, four vectors of four in flight.
//! F16 is widened with integer operations: the conversion intrinsics need the
//! half-precision vector types, which are not yet stable.

use std::arch::aarch64::*;

use crate::quant::acts::{ActFormat, ActRow};

/// Σ w_i x_i for weights of `WIDTH` bytes each: `widen` turns the bytes of sixteen
/// weights into four vectors, `decode` one weight of the tail.
#[inline(always)]
unsafe fn dot_by<const WIDTH: usize>(
    w: &[u8],
    x: &[f32],
    widen: impl Fn(&[u8]) -> [float32x4_t; 4],
    decode: impl Fn(&[u8]) -> f32,
) -> f32 {
    let n = x.len();
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        let wv = widen(&w[i * WIDTH..(i + 16) * WIDTH]);
        let xs = &x[i..i + 16];
        for k in 0..4 {
            // SAFETY: `xs` holds 16 values.
            acc[k] = vfmaq_f32(acc[k], wv[k], vld1q_f32(xs.as_ptr().add(4 * k)));
        }
        i += 16;
    }
    let mut sum = vaddvq_f32(vaddq_f32(
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
    ));
    while i < n {
        sum += decode(&w[i * WIDTH..(i + 1) * WIDTH]) * x[i];
        i += 1;
    }
    sum
}

/// Four f16 (as u16) to f32, exact for every value: normal and subnormal numbers by
/// rebiasing the exponent with one multiply by 2^112, infinities and NaNs by setting the
/// whole exponent.
#[inline(always)]
pub(super) fn f16x4(h: uint16x4_t) -> float32x4_t {
    // SAFETY: register-only NEON.
    unsafe {
        let x = vmovl_u16(h);
        let sign = vshlq_n_u32::<16>(vandq_u32(x, vdupq_n_u32(0x8000)));
        let em = vshlq_n_u32::<13>(vandq_u32(x, vdupq_n_u32(0x7FFF)));
        let scaled = vmulq_f32(
            vreinterpretq_f32_u32(em),
            vdupq_n_f32(f32::from_bits(0x7780_0000)),
        );
        let special = vcgeq_u32(em, vdupq_n_u32(0x7C00 << 13));
        let mag = vbslq_u32(
            special,
            vorrq_u32(em, vdupq_n_u32(0x7F80_0000)),
            vreinterpretq_u32_f32(scaled),
        );
        vreinterpretq_f32_u32(vorrq_u32(mag, sign))
    }
}

fn x_of(a: &[u8], n: usize) -> &[f32] {
    ActRow::new(ActFormat::F32, n, a).x
}

/// # Safety
/// `w` holds `n` f32 values and `a` an f32 activation row of `n`.
#[target_feature(enable = "neon")]
pub(super) unsafe fn f32(w: &[u8], a: &[u8], n: usize) -> f32 {
    let widen = |b: &[u8]| -> [float32x4_t; 4] {
        // SAFETY: 64 bytes, read as four vectors of four f32 (unaligned loads).
        unsafe {
            std::array::from_fn(|k| vreinterpretq_f32_u8(vld1q_u8(b[16 * k..16 * k + 16].as_ptr())))
        }
    };
    let decode = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    // SAFETY: NEON is present.
    unsafe { dot_by::<4>(w, x_of(a, n), widen, decode) }
}

/// # Safety
/// `w` holds `n` f16 values and `a` an f32 activation row of `n`.
#[target_feature(enable = "neon")]
pub(super) unsafe fn f16(w: &[u8], a: &[u8], n: usize) -> f32 {
    let widen = |b: &[u8]| -> [float32x4_t; 4] {
        // SAFETY: 32 bytes, read as two vectors of eight u16.
        unsafe {
            let lo = vreinterpretq_u16_u8(vld1q_u8(b[..16].as_ptr()));
            let hi = vreinterpretq_u16_u8(vld1q_u8(b[16..32].as_ptr()));
            [
                f16x4(vget_low_u16(lo)),
                f16x4(vget_high_u16(lo)),
                f16x4(vget_low_u16(hi)),
                f16x4(vget_high_u16(hi)),
            ]
        }
    };
    let decode = |b: &[u8]| half::f16::from_le_bytes([b[0], b[1]]).to_f32();
    // SAFETY: NEON is present.
    unsafe { dot_by::<2>(w, x_of(a, n), widen, decode) }
}

/// # Safety
/// `w` holds `n` bf16 values and `a` an f32 activation row of `n`.
#[target_feature(enable = "neon")]
pub(super) unsafe fn bf16(w: &[u8], a: &[u8], n: usize) -> f32 {
    let widen = |b: &[u8]| -> [float32x4_t; 4] {
        // SAFETY: 32 bytes, read as two vectors of eight u16; bf16 is the top half of f32.
        unsafe {
            let lo = vreinterpretq_u16_u8(vld1q_u8(b[..16].as_ptr()));
            let hi = vreinterpretq_u16_u8(vld1q_u8(b[16..32].as_ptr()));
            let wide = |h: uint16x4_t| vreinterpretq_f32_u32(vshll_n_u16::<16>(h));
            [
                wide(vget_low_u16(lo)),
                wide(vget_high_u16(lo)),
                wide(vget_low_u16(hi)),
                wide(vget_high_u16(hi)),
            ]
        }
    };
    let decode = |b: &[u8]| crate::quant::floats::bf16_to_fp32(u16::from_le_bytes([b[0], b[1]]));
    // SAFETY: NEON is present.
    unsafe { dot_by::<2>(w, x_of(a, n), widen, decode) }
}
