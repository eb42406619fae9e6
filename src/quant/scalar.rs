//! Scalar dequantization, one block at a time: the reference that every SIMD and GPU
//! kernel is tested against.
//!
//! Each function is ggml's `dequantize_row_*` for one block, with the same f32
//! operations in the same order (`(d * sc) * q - m`, not `d * (sc * q) - m`), so the
//! values are ggml's bit for bit.

use super::blocks::{
    scale_min_k4, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8K, BlockQ8_0, BlockQ8_1, QK, QK_K,
};
use super::floats::fp16_to_fp32;

/// `(q - 8) * d`.
pub fn dequantize_q4_0(b: &BlockQ4_0, y: &mut [f32; QK]) {
    let d = fp16_to_fp32(b.d);
    for (j, &q) in b.qs.iter().enumerate() {
        let x0 = (q & 0x0F) as i32 - 8;
        let x1 = (q >> 4) as i32 - 8;
        y[j] = x0 as f32 * d;
        y[j + QK / 2] = x1 as f32 * d;
    }
}

/// `q * d + m`.
pub fn dequantize_q4_1(b: &BlockQ4_1, y: &mut [f32; QK]) {
    let d = fp16_to_fp32(b.d);
    let m = fp16_to_fp32(b.m);
    for (j, &q) in b.qs.iter().enumerate() {
        y[j] = (q & 0x0F) as f32 * d + m;
        y[j + QK / 2] = (q >> 4) as f32 * d + m;
    }
}

/// The fifth bits of values j and j + 16 of a Q5 block, as 0 or 0x10.
fn fifth_bits(qh: u32, j: usize) -> (u8, u8) {
    (
        (((qh >> j) << 4) & 0x10) as u8,
        ((qh >> (j + 12)) & 0x10) as u8,
    )
}

/// `(q - 16) * d`.
pub fn dequantize_q5_0(b: &BlockQ5_0, y: &mut [f32; QK]) {
    let d = fp16_to_fp32(b.d);
    let qh = u32::from_le_bytes(b.qh);
    for (j, &q) in b.qs.iter().enumerate() {
        let (h0, h1) = fifth_bits(qh, j);
        let x0 = ((q & 0x0F) | h0) as i32 - 16;
        let x1 = ((q >> 4) | h1) as i32 - 16;
        y[j] = x0 as f32 * d;
        y[j + QK / 2] = x1 as f32 * d;
    }
}

/// `q * d + m`.
pub fn dequantize_q5_1(b: &BlockQ5_1, y: &mut [f32; QK]) {
    let d = fp16_to_fp32(b.d);
    let m = fp16_to_fp32(b.m);
    let qh = u32::from_le_bytes(b.qh);
    for (j, &q) in b.qs.iter().enumerate() {
        let (h0, h1) = fifth_bits(qh, j);
        y[j] = ((q & 0x0F) | h0) as f32 * d + m;
        y[j + QK / 2] = ((q >> 4) | h1) as f32 * d + m;
    }
}

/// `q * d`.
pub fn dequantize_q8_0(b: &BlockQ8_0, y: &mut [f32; QK]) {
    let d = fp16_to_fp32(b.d);
    for (y, &q) in y.iter_mut().zip(&b.qs) {
        *y = q as f32 * d;
    }
}

/// `q * d`, as Q8_0; `s` is only a cached sum for dot products. (ggml has no Q8_1
/// dequantizer: it never stores tensors as Q8_1.)
pub fn dequantize_q8_1(b: &BlockQ8_1, y: &mut [f32; QK]) {
    let d = fp16_to_fp32(b.d);
    for (y, &q) in y.iter_mut().zip(&b.qs) {
        *y = q as f32 * d;
    }
}

/// `d * sc * q - dmin * m` per sub-block of 32.
pub fn dequantize_q4_k(b: &BlockQ4K, y: &mut [f32; QK_K]) {
    let d = fp16_to_fp32(b.d);
    let min = fp16_to_fp32(b.dmin);
    // Each 32 bytes of qs: sub-block 2i in the low nibbles, 2i + 1 in the high ones.
    for (i, (q, y)) in
        b.qs.chunks_exact(32)
            .zip(y.chunks_exact_mut(64))
            .enumerate()
    {
        let (sc, m) = scale_min_k4(2 * i, &b.scales);
        let (d1, m1) = (d * sc as f32, min * m as f32);
        let (sc, m) = scale_min_k4(2 * i + 1, &b.scales);
        let (d2, m2) = (d * sc as f32, min * m as f32);
        for l in 0..32 {
            y[l] = d1 * (q[l] & 0xF) as f32 - m1;
            y[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

/// Q4_K with a fifth bit from `qh`.
pub fn dequantize_q5_k(b: &BlockQ5K, y: &mut [f32; QK_K]) {
    let d = fp16_to_fp32(b.d);
    let min = fp16_to_fp32(b.dmin);
    for (i, (ql, y)) in
        b.qs.chunks_exact(32)
            .zip(y.chunks_exact_mut(64))
            .enumerate()
    {
        let (sc, m) = scale_min_k4(2 * i, &b.scales);
        let (d1, m1) = (d * sc as f32, min * m as f32);
        let (sc, m) = scale_min_k4(2 * i + 1, &b.scales);
        let (d2, m2) = (d * sc as f32, min * m as f32);
        let (u1, u2) = (1u8 << (2 * i), 2u8 << (2 * i));
        for l in 0..32 {
            let h1 = if b.qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if b.qh[l] & u2 != 0 { 16 } else { 0 };
            y[l] = d1 * ((ql[l] & 0xF) + h1) as f32 - m1;
            y[l + 32] = d2 * ((ql[l] >> 4) + h2) as f32 - m2;
        }
    }
}

/// `d * scales[i] * (q - 32)` per sub-block of 16.
pub fn dequantize_q6_k(b: &BlockQ6K, y: &mut [f32; QK_K]) {
    let d = fp16_to_fp32(b.d);
    // Two halves of 128 values; in each, value l, l + 32, l + 64, l + 96 share the low
    // nibbles of ql[l], ql[l + 32] and the bit pairs of qh[l].
    for (half, y) in y.chunks_exact_mut(128).enumerate() {
        let ql = &b.ql[64 * half..64 * half + 64];
        let qh = &b.qh[32 * half..32 * half + 32];
        let sc = &b.scales[8 * half..8 * half + 8];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * sc[is] as f32 * q1 as f32;
            y[l + 32] = d * sc[is + 2] as f32 * q2 as f32;
            y[l + 64] = d * sc[is + 4] as f32 * q3 as f32;
            y[l + 96] = d * sc[is + 6] as f32 * q4 as f32;
        }
    }
}

/// `d * q` with an f32 `d`.
pub fn dequantize_q8_k(b: &BlockQ8K, y: &mut [f32; QK_K]) {
    for (y, &q) in y.iter_mut().zip(&b.qs) {
        *y = b.d * q as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    #[test]
    fn q4_0_nibble_order() {
        let mut qs = [0u8; 16];
        qs[0] = 0x9F; // value 0: 15, value 16: 9
        let b = BlockQ4_0 {
            d: f16::from_f32(0.5),
            qs,
        };
        let mut y = [0.0; QK];
        dequantize_q4_0(&b, &mut y);
        assert_eq!((y[0], y[16], y[1]), (3.5, 0.5, -4.0));
    }

    #[test]
    fn q5_0_fifth_bits() {
        // Bit 0 of qh is value 0's fifth bit, bit 16 value 16's, bit 31 value 31's.
        let b = BlockQ5_0 {
            d: f16::ONE,
            qh: (1u32 | 1 << 16 | 1 << 31).to_le_bytes(),
            qs: [0; 16],
        };
        let mut y = [0.0; QK];
        dequantize_q5_0(&b, &mut y);
        assert_eq!((y[0], y[16], y[31], y[1]), (0.0, 0.0, 0.0, -16.0));
    }

    #[test]
    fn q6_k_positions() {
        let mut b = BlockQ6K {
            ql: [0; 128],
            qh: [0; 64],
            scales: [1; 16],
            d: f16::ONE,
        };
        b.scales[4] = -2; // sub-block 4: values 64..80
        b.ql[0] = 0x21; // value 0: low 1, value 64: low 2
        b.qh[0] = 0b10_00_00_11; // value 0: high 3, value 96: high 2
        let mut y = [0.0; QK_K];
        dequantize_q6_k(&b, &mut y);
        assert_eq!(y[0], (0x31 - 32) as f32);
        assert_eq!(y[64], -2.0 * (2 - 32) as f32);
        assert_eq!(y[96], (0x20 - 32) as f32);
        assert_eq!(y[1], -32.0);
    }
}
