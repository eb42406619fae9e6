//! Quantization to the legacy 32-value blocks, as ggml's `quantize_row_*_ref` does it.
//!
//! These are ports of ggml's reference quantizers, the ones llama.cpp uses to write model
//! files (without an importance matrix), with the same f32 operations in the same order,
//! so the blocks are ggml's byte for byte.

use super::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, QK};
use super::floats::fp32_to_fp16;

/// C's float-to-integer conversion as ggml's x86-64 builds compile it (`cvttss2si`):
/// truncation toward zero, and `i32::MIN` for NaN or out-of-range values. The reference
/// quantizers then keep the low byte (`(int8_t)(x + 8.5f)`). Out-of-range values only
/// arise when a block's scale is an f32 subnormal whose reciprocal overflows; Rust's
/// saturating `as` would write different bytes there.
fn c_float_to_int(x: f32) -> i32 {
    if x.is_nan() || !(-2147483648.0..2147483648.0).contains(&x) {
        i32::MIN
    } else {
        x as i32
    }
}

/// The value of largest magnitude, the first one if several tie.
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

/// The smallest and largest values.
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

fn reciprocal_or_zero(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// `d = max / -8`, so the largest-magnitude value is exactly `-8 * d`; the others round
/// to the nearest of -8..=7 (the opposite extreme clamps from 8 to 7).
pub fn quantize_q4_0(x: &[f32; QK]) -> BlockQ4_0 {
    let (_, max) = signed_absmax(x);
    let d = max / -8.0;
    let id = reciprocal_or_zero(d);
    let mut qs = [0u8; QK / 2];
    for (j, q) in qs.iter_mut().enumerate() {
        let x0 = x[j] * id;
        let x1 = x[j + QK / 2] * id;
        let xi0 = (c_float_to_int(x0 + 8.5) as i8).min(15) as u8;
        let xi1 = (c_float_to_int(x1 + 8.5) as i8).min(15) as u8;
        *q = xi0 | (xi1 << 4);
    }
    BlockQ4_0 {
        d: fp32_to_fp16(d),
        qs,
    }
}

/// `d = (max - min) / 15`, `m = min`, q rounded half up.
pub fn quantize_q4_1(x: &[f32; QK]) -> BlockQ4_1 {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = reciprocal_or_zero(d);
    let mut qs = [0u8; QK / 2];
    for (j, q) in qs.iter_mut().enumerate() {
        let x0 = (x[j] - min) * id;
        let x1 = (x[j + QK / 2] - min) * id;
        let xi0 = (c_float_to_int(x0 + 0.5) as i8).min(15) as u8;
        let xi1 = (c_float_to_int(x1 + 0.5) as i8).min(15) as u8;
        *q = xi0 | (xi1 << 4);
    }
    BlockQ4_1 {
        d: fp32_to_fp16(d),
        m: fp32_to_fp16(min),
        qs,
    }
}

/// Q4_0 with five bits: `d = max / -16`, q in -16..=15.
pub fn quantize_q5_0(x: &[f32; QK]) -> BlockQ5_0 {
    let (_, max) = signed_absmax(x);
    let d = max / -16.0;
    let id = reciprocal_or_zero(d);
    let mut qs = [0u8; QK / 2];
    let mut qh = 0u32;
    for (j, q) in qs.iter_mut().enumerate() {
        let x0 = x[j] * id;
        let x1 = x[j + QK / 2] * id;
        let xi0 = (c_float_to_int(x0 + 16.5) as i8).min(31) as u8;
        let xi1 = (c_float_to_int(x1 + 16.5) as i8).min(31) as u8;
        *q = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
        qh |= (((xi0 & 0x10) >> 4) as u32) << j;
        qh |= (((xi1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    BlockQ5_0 {
        d: fp32_to_fp16(d),
        qh: qh.to_le_bytes(),
        qs,
    }
}

/// Q4_1 with five bits: `d = (max - min) / 31`.
pub fn quantize_q5_1(x: &[f32; QK]) -> BlockQ5_1 {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = reciprocal_or_zero(d);
    let mut qs = [0u8; QK / 2];
    let mut qh = 0u32;
    for (j, q) in qs.iter_mut().enumerate() {
        let x0 = (x[j] - min) * id;
        let x1 = (x[j + QK / 2] - min) * id;
        // ggml clamps nothing here: (max - min) * id rounds to at most 31.
        let xi0 = c_float_to_int(x0 + 0.5) as u8;
        let xi1 = c_float_to_int(x1 + 0.5) as u8;
        *q = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
        qh |= (((xi0 & 0x10) >> 4) as u32) << j;
        qh |= (((xi1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    BlockQ5_1 {
        d: fp32_to_fp16(d),
        m: fp32_to_fp16(min),
        qh: qh.to_le_bytes(),
        qs,
    }
}

/// `d = amax / 127`, q rounded half away from zero.
fn quantize_8bit(x: &[f32; QK]) -> (f32, [i8; QK]) {
    let mut amax = 0.0f32;
    for &v in x {
        // MAX(amax, fabsf(v)), which, unlike f32::max, lets a NaN through.
        amax = if amax > v.abs() { amax } else { v.abs() };
    }
    let d = amax / 127.0;
    let id = reciprocal_or_zero(d);
    let mut qs = [0i8; QK];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = c_float_to_int((v * id).round()) as i8;
    }
    (d, qs)
}

pub fn quantize_q8_0(x: &[f32; QK]) -> BlockQ8_0 {
    let (d, qs) = quantize_8bit(x);
    BlockQ8_0 {
        d: fp32_to_fp16(d),
        qs,
    }
}

/// Q8_0 plus `s = d * sum(q)`, with the f32 `d` (not its f16 rounding).
pub fn quantize_q8_1(x: &[f32; QK]) -> BlockQ8_1 {
    let (d, qs) = quantize_8bit(x);
    let sum: i32 = qs.iter().map(|&q| q as i32).sum();
    BlockQ8_1 {
        d: fp32_to_fp16(d),
        s: fp32_to_fp16(sum as f32 * d),
        qs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::scalar;

    #[test]
    fn c_conversion_semantics() {
        assert_eq!(c_float_to_int(8.99), 8);
        assert_eq!(c_float_to_int(-0.7), 0);
        assert_eq!(c_float_to_int(f32::INFINITY), i32::MIN);
        assert_eq!(c_float_to_int(f32::NAN), i32::MIN);
        assert_eq!(c_float_to_int(-2147483648.0), i32::MIN);
        assert_eq!(c_float_to_int(2147483648.0), i32::MIN);
        assert_eq!(c_float_to_int(2147483520.0), 2147483520);
    }

    #[test]
    fn q4_0_largest_magnitude_is_exact() {
        let mut x = [0.0f32; QK];
        for (i, v) in x.iter_mut().enumerate() {
            *v = (i as f32 - 12.0) * 0.25;
        }
        // max = 4.75 at i = 31: d = -0.59375, exactly representable in f16.
        let b = quantize_q4_0(&x);
        assert_eq!(b.d.to_f32(), -0.59375);
        let mut y = [0.0; QK];
        scalar::dequantize_q4_0(&b, &mut y);
        assert_eq!(y[31], 4.75);
    }

    #[test]
    fn q8_1_sum_uses_unrounded_d() {
        let mut x = [0.0f32; QK];
        x[0] = 1.0;
        x[1] = 0.5;
        let b = quantize_q8_1(&x);
        assert_eq!(&b.qs[..3], &[127, 64, 0]);
        assert_eq!(b.s, fp32_to_fp16(191.0 * (1.0 / 127.0)));
    }
}
