//! Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 against Q8_0/Q8_1 activations: each 32-value block is
//! unpacked to two vectors of i8 and multiplied with its activations in two steps.

use std::arch::aarch64::*;

use super::{entry_points, f16_at, load16, sum32, Mac};
use crate::quant::acts::{ActFormat, ActRow};

/// Values 0..16 and 16..32 of a block's nibbles.
#[inline(always)]
fn nibbles(qs: &[u8]) -> (uint8x16_t, uint8x16_t) {
    let v = load16(qs);
    // SAFETY: register-only NEON.
    unsafe { (vandq_u8(v, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(v)) }
}

/// 0x10 in lane j of the first vector where bit j of `qh` is set, and in lane j of the
/// second where bit j + 16 is.
#[inline(always)]
fn fifth_bits(qh: &[u8]) -> (uint8x16_t, uint8x16_t) {
    const SEL: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    // SAFETY: register-only NEON; SEL holds 16 bytes.
    unsafe {
        let sel = vld1q_u8(SEL.as_ptr());
        let bit = |lo: u8, hi: u8| {
            let bytes = vcombine_u8(vdup_n_u8(lo), vdup_n_u8(hi));
            vandq_u8(vtstq_u8(bytes, sel), vdupq_n_u8(0x10))
        };
        (bit(qh[0], qh[1]), bit(qh[2], qh[3]))
    }
}

/// The two value vectors as i8, minus `offset`.
#[inline(always)]
fn signed(v: (uint8x16_t, uint8x16_t), offset: i8) -> (int8x16_t, int8x16_t) {
    // SAFETY: register-only NEON.
    unsafe {
        let o = vdupq_n_s8(offset);
        (
            vsubq_s8(vreinterpretq_s8_u8(v.0), o),
            vsubq_s8(vreinterpretq_s8_u8(v.1), o),
        )
    }
}

fn or(a: (uint8x16_t, uint8x16_t), b: (uint8x16_t, uint8x16_t)) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: register-only NEON.
    unsafe { (vorrq_u8(a.0, b.0), vorrq_u8(a.1, b.1)) }
}

#[inline(always)]
unsafe fn q4_0_body<M: Mac>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let row = ActRow::new(ActFormat::Q8_0, n, a);
    let mut sum = 0.0f32;
    for (b, blk) in w.chunks_exact(18).take(n / 32).enumerate() {
        let (w0, w1) = signed(nibbles(&blk[2..]), 8);
        // SAFETY: the caller's CPU runs `M`.
        let sumi = unsafe { sum32::<M>(w0, w1, &row.qs[32 * b..]) };
        sum += sumi as f32 * f16_at(blk, 0) * row.d[b];
    }
    sum
}
entry_points!(q4_0_body => q4_0, q4_0_dot);

#[inline(always)]
unsafe fn q4_1_body<M: Mac>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let row = ActRow::new(ActFormat::Q8_1, n, a);
    let mut sum = 0.0f32;
    for (b, blk) in w.chunks_exact(20).take(n / 32).enumerate() {
        let (w0, w1) = signed(nibbles(&blk[4..]), 0);
        // SAFETY: the caller's CPU runs `M`.
        let sumi = unsafe { sum32::<M>(w0, w1, &row.qs[32 * b..]) };
        sum += sumi as f32 * f16_at(blk, 0) * row.d[b] + f16_at(blk, 2) * row.s[b];
    }
    sum
}
entry_points!(q4_1_body => q4_1, q4_1_dot);

#[inline(always)]
unsafe fn q5_0_body<M: Mac>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let row = ActRow::new(ActFormat::Q8_0, n, a);
    let mut sum = 0.0f32;
    for (b, blk) in w.chunks_exact(22).take(n / 32).enumerate() {
        let (w0, w1) = signed(or(nibbles(&blk[6..]), fifth_bits(&blk[2..6])), 16);
        // SAFETY: the caller's CPU runs `M`.
        let sumi = unsafe { sum32::<M>(w0, w1, &row.qs[32 * b..]) };
        sum += sumi as f32 * f16_at(blk, 0) * row.d[b];
    }
    sum
}
entry_points!(q5_0_body => q5_0, q5_0_dot);

#[inline(always)]
unsafe fn q5_1_body<M: Mac>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let row = ActRow::new(ActFormat::Q8_1, n, a);
    let mut sum = 0.0f32;
    for (b, blk) in w.chunks_exact(24).take(n / 32).enumerate() {
        let (w0, w1) = signed(or(nibbles(&blk[8..]), fifth_bits(&blk[4..8])), 0);
        // SAFETY: the caller's CPU runs `M`.
        let sumi = unsafe { sum32::<M>(w0, w1, &row.qs[32 * b..]) };
        sum += sumi as f32 * f16_at(blk, 0) * row.d[b] + f16_at(blk, 2) * row.s[b];
    }
    sum
}
entry_points!(q5_1_body => q5_1, q5_1_dot);

#[inline(always)]
unsafe fn q8_0_body<M: Mac>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let row = ActRow::new(ActFormat::Q8_0, n, a);
    let mut sum = 0.0f32;
    for (b, blk) in w.chunks_exact(34).take(n / 32).enumerate() {
        // SAFETY: register-only NEON on checked loads; the caller's CPU runs `M`.
        let sumi = unsafe {
            let w0 = vreinterpretq_s8_u8(load16(&blk[2..]));
            let w1 = vreinterpretq_s8_u8(load16(&blk[18..]));
            sum32::<M>(w0, w1, &row.qs[32 * b..])
        };
        sum += sumi as f32 * f16_at(blk, 0) * row.d[b];
    }
    sum
}
entry_points!(q8_0_body => q8_0, q8_0_dot);
