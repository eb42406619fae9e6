//! Dot products of a weight row with an activation row, the inner loop of every matrix
//! product. Each weight type is paired with the activation type llama.cpp pairs it with:
//! Q4_0, Q5_0 and Q8_0 with Q8_0; Q4_1 and Q5_1 with Q8_1 (whose `s` carries the `m`
//! term); the K-quants with Q8_K (whose `bsums` carry the `dmin` term); float weights
//! with f32. These are the scalar reference kernels: plain integer sums per block, the
//! oracle that SIMD kernels are tested against.

use half::f16;

use super::blocks::{
    scale_min_k4, view_blocks, Block, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0,
    BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1, QK, QK_K,
};
use super::floats::bf16_to_fp32;
use super::GgmlType;

/// The activation type that weights of type `w` are multiplied with.
pub fn vec_dot_type(w: GgmlType) -> GgmlType {
    match w {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => GgmlType::Q8_0,
        GgmlType::Q4_1 | GgmlType::Q5_1 => GgmlType::Q8_1,
        GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => GgmlType::Q8_K,
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::Q8_1 | GgmlType::Q8_K => {
            GgmlType::F32
        }
    }
}

/// `w · a` for one weight row of type `w_ty` and the same row length of activations in
/// `vec_dot_type(w_ty)`. Panics on mismatched lengths: callers size both from one shape.
pub fn vec_dot(w_ty: GgmlType, w: &[u8], a: &[u8]) -> f32 {
    match w_ty {
        GgmlType::Q4_0 => blocks2(w, a, q4_0_q8_0),
        GgmlType::Q4_1 => blocks2(w, a, q4_1_q8_1),
        GgmlType::Q5_0 => blocks2(w, a, q5_0_q8_0),
        GgmlType::Q5_1 => blocks2(w, a, q5_1_q8_1),
        GgmlType::Q8_0 => blocks2(w, a, q8_0_q8_0),
        GgmlType::Q4_K => blocks2(w, a, q4_k_q8_k),
        GgmlType::Q5_K => blocks2(w, a, q5_k_q8_k),
        GgmlType::Q6_K => blocks2(w, a, q6_k_q8_k),
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            vec_dot_f32(w_ty, w, bytemuck::cast_slice(a))
        }
        GgmlType::Q8_1 | GgmlType::Q8_K => panic!("{w_ty} is an activation type"),
    }
}

/// `w · x` for a float weight row (F32, F16 or BF16 bytes) and f32 activations.
pub fn vec_dot_f32(w_ty: GgmlType, w: &[u8], x: &[f32]) -> f32 {
    match w_ty {
        GgmlType::F32 => floats(w, x, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        GgmlType::F16 => floats(w, x, |b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
        GgmlType::BF16 => floats(w, x, |b| bf16_to_fp32(u16::from_le_bytes([b[0], b[1]]))),
        _ => panic!("{w_ty} is not a float type"),
    }
}

fn blocks2<W: Block, A: Block>(w: &[u8], a: &[u8], dot: fn(&W, &A) -> f32) -> f32 {
    let w: &[W] = view_blocks(w).expect("weight row of whole, aligned blocks");
    let a: &[A] = view_blocks(a).expect("activation row of whole, aligned blocks");
    assert_eq!(w.len() * W::LEN, a.len() * A::LEN, "row lengths differ");
    // Sub-blocks of 32 pair one to one; a K-quant super-block meets one Q8_K block.
    w.iter().zip(a).map(|(w, a)| dot(w, a)).sum()
}

fn floats(w: &[u8], a: &[f32], decode: fn(&[u8]) -> f32) -> f32 {
    let width = w.len() / a.len();
    w.chunks_exact(width)
        .zip(a)
        .map(|(w, &a)| decode(w) * a)
        .sum()
}

/// Σ w_j * a_j over one block of 32 integer values. Unpacking a block first and then
/// summing plain products keeps the loop free of branches, so it vectorizes.
fn dot_i8(w: &[i8; QK], a: &[i8; QK]) -> i32 {
    w.iter()
        .zip(a)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

/// The 4-bit values of a legacy block minus `offset`: byte j holds value j in its low
/// nibble and value j + 16 in its high one.
fn unpack_nibbles(qs: &[u8; QK / 2], offset: i8) -> [i8; QK] {
    let mut q = [0i8; QK];
    for j in 0..QK / 2 {
        q[j] = (qs[j] & 0xF) as i8 - offset;
        q[j + QK / 2] = (qs[j] >> 4) as i8 - offset;
    }
    q
}

/// Like [`unpack_nibbles`], with bit j of `qh` (a little-endian u32) as the fifth bit of
/// value j.
fn unpack_five_bits(qs: &[u8; QK / 2], qh: &[u8; 4], offset: i8) -> [i8; QK] {
    let qh = u32::from_le_bytes(*qh);
    let mut q = [0i8; QK];
    for j in 0..QK / 2 {
        let hi0 = ((qh >> j) & 1) << 4;
        let hi1 = ((qh >> (j + QK / 2)) & 1) << 4;
        q[j] = ((qs[j] & 0xF) as u32 | hi0) as i8 - offset;
        q[j + QK / 2] = ((qs[j] >> 4) as u32 | hi1) as i8 - offset;
    }
    q
}

pub(crate) fn q4_0_q8_0(w: &BlockQ4_0, a: &BlockQ8_0) -> f32 {
    let sumi = dot_i8(&unpack_nibbles(&w.qs, 8), &a.qs);
    sumi as f32 * w.d.to_f32() * a.d.to_f32()
}

pub(crate) fn q4_1_q8_1(w: &BlockQ4_1, a: &BlockQ8_1) -> f32 {
    let sumi = dot_i8(&unpack_nibbles(&w.qs, 0), &a.qs);
    // Σ (q d_w + m)(q_a d_a) = d_w d_a Σ q q_a + m (d_a Σ q_a), and a.s = d_a Σ q_a.
    sumi as f32 * w.d.to_f32() * a.d.to_f32() + w.m.to_f32() * a.s.to_f32()
}

pub(crate) fn q5_0_q8_0(w: &BlockQ5_0, a: &BlockQ8_0) -> f32 {
    let sumi = dot_i8(&unpack_five_bits(&w.qs, &w.qh, 16), &a.qs);
    sumi as f32 * w.d.to_f32() * a.d.to_f32()
}

pub(crate) fn q5_1_q8_1(w: &BlockQ5_1, a: &BlockQ8_1) -> f32 {
    let sumi = dot_i8(&unpack_five_bits(&w.qs, &w.qh, 0), &a.qs);
    sumi as f32 * w.d.to_f32() * a.d.to_f32() + w.m.to_f32() * a.s.to_f32()
}

pub(crate) fn q8_0_q8_0(w: &BlockQ8_0, a: &BlockQ8_0) -> f32 {
    dot_i8(&w.qs, &a.qs) as f32 * w.d.to_f32() * a.d.to_f32()
}

/// Σ q_w * q_a over sub-block `sub` of `len` values, given the unpacked weights.
fn sub_sum(q: &[u8; QK_K], a: &BlockQ8K, sub: usize, len: usize) -> i32 {
    let r = sub * len..(sub + 1) * len;
    q[r.clone()]
        .iter()
        .zip(&a.qs[r])
        .map(|(&w, &x)| i32::from(w) * i32::from(x))
        .sum()
}

/// Q4_K and Q5_K share everything but the fifth bit: eight sub-blocks of 32 with six-bit
/// scales and mins; the min term needs only the activations' 16-value sums.
fn k4_k5(q: &[u8; QK_K], d: f16, dmin: f16, scales: &[u8; 12], a: &BlockQ8K) -> f32 {
    let (mut sum_scaled, mut sum_mins) = (0i32, 0i32);
    for sub in 0..8 {
        let (sc, m) = scale_min_k4(sub, scales);
        sum_scaled += i32::from(sc) * sub_sum(q, a, sub, 32);
        let bsum = i32::from(a.bsums[2 * sub]) + i32::from(a.bsums[2 * sub + 1]);
        sum_mins += i32::from(m) * bsum;
    }
    d.to_f32() * a.d * sum_scaled as f32 - dmin.to_f32() * a.d * sum_mins as f32
}

/// The 4-bit values of a Q4_K super-block in order: each 32 bytes of `qs` hold one
/// sub-block in the low nibbles and the next in the high ones.
fn unpack_q4k(qs: &[u8; QK_K / 2]) -> [u8; QK_K] {
    let mut q = [0u8; QK_K];
    for (chunk, out) in qs.chunks_exact(32).zip(q.chunks_exact_mut(64)) {
        for l in 0..32 {
            out[l] = chunk[l] & 0xF;
            out[l + 32] = chunk[l] >> 4;
        }
    }
    q
}

pub(crate) fn q4_k_q8_k(w: &BlockQ4K, a: &BlockQ8K) -> f32 {
    k4_k5(&unpack_q4k(&w.qs), w.d, w.dmin, &w.scales, a)
}

pub(crate) fn q5_k_q8_k(w: &BlockQ5K, a: &BlockQ8K) -> f32 {
    let mut q = unpack_q4k(&w.qs);
    for sub in 0..8 {
        for l in 0..32 {
            q[sub * 32 + l] |= ((w.qh[l] >> sub) & 1) << 4;
        }
    }
    k4_k5(&q, w.d, w.dmin, &w.scales, a)
}

pub(crate) fn q6_k_q8_k(w: &BlockQ6K, a: &BlockQ8K) -> f32 {
    // Each half of 128 values: four runs of 32 drawn from 64 bytes of ql (low and high
    // nibbles) and 32 bytes of qh (two bits per run).
    let mut q = [0u8; QK_K];
    for half in 0..2 {
        let ql = &w.ql[half * 64..];
        let qh = &w.qh[half * 32..];
        let out = &mut q[half * 128..];
        for l in 0..32 {
            out[l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
            out[l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
            out[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
            out[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        }
    }
    // Σ sc (q - 32) q_a = Σ sc Σ q q_a - 32 Σ sc bsum.
    let mut sumi = 0i32;
    for sub in 0..16 {
        let sc = i32::from(w.scales[sub]);
        sumi += sc * (sub_sum(&q, a, sub, 16) - 32 * i32::from(a.bsums[sub]));
    }
    w.d.to_f32() * a.d * sumi as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{dequantize, quantize};

    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Every pairing against the float dot product of the dequantized weights with the
    /// dequantized activations: the integer sums must be the same number, up to f32
    /// rounding of the final sums. Q8_1 stores `s = d * Σq` in f16, so the `m` term of
    /// Q4_1/Q5_1 carries up to 2^-11 relative rounding that the dequantized sum lacks.
    #[test]
    fn every_pairing_equals_the_dequantized_dot() {
        let weights = [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q8_0,
            GgmlType::Q4_K,
            GgmlType::Q5_K,
            GgmlType::Q6_K,
            GgmlType::F32,
            GgmlType::F16,
            GgmlType::BF16,
        ];
        for ty in weights {
            for n in [256, 512, 2048] {
                let wx = pseudo_random(n, 1 + n as u32);
                let ax = pseudo_random(n, 7 + n as u32);
                let mut w = vec![0u8; ty.bytes_for(n as u64).unwrap() as usize];
                quantize(ty, &wx, &mut w).unwrap();
                let a_ty = vec_dot_type(ty);
                let mut a = vec![0u8; a_ty.bytes_for(n as u64).unwrap() as usize];
                quantize(a_ty, &ax, &mut a).unwrap();

                let (mut wd, mut ad) = (vec![0.0; n], vec![0.0; n]);
                dequantize(ty, &w, &mut wd).unwrap();
                dequantize(a_ty, &a, &mut ad).unwrap();
                let want: f64 = wd.iter().zip(&ad).map(|(&x, &y)| x as f64 * y as f64).sum();
                let got = vec_dot(ty, &w, &a) as f64;
                let scale: f64 = wd
                    .iter()
                    .zip(&ad)
                    .map(|(&x, &y)| (x as f64 * y as f64).abs())
                    .sum();
                let tol = if a_ty == GgmlType::Q8_1 { 1e-3 } else { 1e-5 };
                assert!(
                    (got - want).abs() <= tol * scale + 1e-6,
                    "{ty} x {a_ty}, n = {n}: {got} vs {want}"
                );
            }
        }
    }
}
