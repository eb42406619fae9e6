//! Q4_K, Q5_K and Q6_K against Q8_K activations: sub-blocks unpacked to i8 vectors, one
//! exact integer sum per sub-block, then the scalar kernels' scale arithmetic.

use std::arch::aarch64::*;

use super::{entry_points, f16_at, load16, sum16, sum32, Mac};
use crate::quant::acts::{ActFormat, ActRow};
use crate::quant::blocks::{scale_min_k4, K_SCALE_SIZE, QK_K};

fn low(v: uint8x16_t) -> int8x16_t {
    // SAFETY: register-only NEON.
    unsafe { vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))) }
}

fn high(v: uint8x16_t) -> int8x16_t {
    // SAFETY: register-only NEON.
    unsafe { vreinterpretq_s8_u8(vshrq_n_u8::<4>(v)) }
}

/// `v | 0x10` in lanes where `qh & bit` is set.
fn with_fifth(v: int8x16_t, qh: uint8x16_t, bit: u8) -> int8x16_t {
    // SAFETY: register-only NEON.
    unsafe {
        let set = vandq_u8(vtstq_u8(qh, vdupq_n_u8(bit)), vdupq_n_u8(0x10));
        vorrq_s8(v, vreinterpretq_s8_u8(set))
    }
}

/// Q4_K and Q5_K: eight sub-blocks of 32; `fifth` gives the Q5_K high bits.
#[inline(always)]
unsafe fn k4_k5<M: Mac, const FIVE: bool>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let row = ActRow::new(ActFormat::Q8K, n, a);
    let (bytes, qs_at) = if FIVE { (176, 48) } else { (144, 16) };
    let mut sum = 0.0f32;
    for (i, blk) in w.chunks_exact(bytes).take(n / QK_K).enumerate() {
        let scales: &[u8; K_SCALE_SIZE] = blk[4..16].try_into().expect("12 bytes");
        let qs = &blk[qs_at..qs_at + 128];
        // Q5_K's fifth bits (Q4_K has none).
        let qh = FIVE.then(|| (load16(&blk[16..]), load16(&blk[32..])));
        let act = &row.qs[i * QK_K..];
        let bsums = &row.bsums[i * 16..];
        let (mut sum_scaled, mut sum_mins) = (0i32, 0i32);
        for c in 0..4 {
            let (q0, q1) = (load16(&qs[32 * c..]), load16(&qs[32 * c + 16..]));
            for (half, sub) in [(false, 2 * c), (true, 2 * c + 1)] {
                let (mut w0, mut w1) = if half {
                    (high(q0), high(q1))
                } else {
                    (low(q0), low(q1))
                };
                if let Some((h0, h1)) = qh {
                    w0 = with_fifth(w0, h0, 1 << sub);
                    w1 = with_fifth(w1, h1, 1 << sub);
                }
                // SAFETY: the caller's CPU runs `M`.
                let s = unsafe { sum32::<M>(w0, w1, &act[32 * sub..]) };
                let (sc, m) = scale_min_k4(sub, scales);
                sum_scaled += i32::from(sc) * s;
                sum_mins +=
                    i32::from(m) * (i32::from(bsums[2 * sub]) + i32::from(bsums[2 * sub + 1]));
            }
        }
        let (d, dmin) = (f16_at(blk, 0), f16_at(blk, 2));
        sum += d * row.d[i] * sum_scaled as f32 - dmin * row.d[i] * sum_mins as f32;
    }
    sum
}

#[inline(always)]
unsafe fn q4_k_body<M: Mac>(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: as the caller vouches.
    unsafe { k4_k5::<M, false>(w, a, n) }
}
entry_points!(q4_k_body => q4_k, q4_k_dot);

#[inline(always)]
unsafe fn q5_k_body<M: Mac>(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: as the caller vouches.
    unsafe { k4_k5::<M, true>(w, a, n) }
}
entry_points!(q5_k_body => q5_k, q5_k_dot);

/// Q6_K: sixteen sub-blocks of 16, each one vector of six-bit values.
#[inline(always)]
unsafe fn q6_k_body<M: Mac>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let row = ActRow::new(ActFormat::Q8K, n, a);
    let mut sum = 0.0f32;
    for (i, blk) in w.chunks_exact(210).take(n / QK_K).enumerate() {
        let act = &row.qs[i * QK_K..];
        let bsums = &row.bsums[i * 16..];
        let mut sumi = 0i32;
        for half in 0..2 {
            let ql = &blk[64 * half..];
            let qh = &blk[128 + 32 * half..];
            for part in 0..2 {
                let (l0, l32) = (load16(&ql[16 * part..]), load16(&ql[32 + 16 * part..]));
                let h = load16(&qh[16 * part..]);
                // SAFETY: register-only NEON.
                let values = unsafe {
                    let m3 = vdupq_n_u8(3);
                    let bits =
                        |shift: i8| vshlq_n_u8::<4>(vandq_u8(vshlq_u8(h, vdupq_n_s8(-shift)), m3));
                    [
                        vorrq_u8(vandq_u8(l0, vdupq_n_u8(0x0F)), bits(0)),
                        vorrq_u8(vandq_u8(l32, vdupq_n_u8(0x0F)), bits(2)),
                        vorrq_u8(vshrq_n_u8::<4>(l0), bits(4)),
                        vorrq_u8(vshrq_n_u8::<4>(l32), bits(6)),
                    ]
                };
                // Run r of 32 values (r = 0..4) starts at value 32 r of this half.
                for (r, v) in values.into_iter().enumerate() {
                    let first = 128 * half + 32 * r + 16 * part;
                    let sub = first / 16;
                    // SAFETY: register-only NEON; the caller's CPU runs `M`.
                    let s = unsafe { sum16::<M>(vreinterpretq_s8_u8(v), &act[first..]) };
                    let sc = i32::from(blk[192 + sub] as i8);
                    sumi += sc * (s - 32 * i32::from(bsums[sub]));
                }
            }
        }
        sum += f16_at(blk, 208) * row.d[i] * sumi as f32;
    }
    sum
}
entry_points!(q6_k_body => q6_k, q6_k_dot);
