//! Quantization to the 256-value K-quant super-blocks, as ggml's `quantize_row_*_ref`
//! does it: Q4_K and Q5_K through `make_qkx2_quants`, Q6_K through `make_qx_quants`,
//! and the Q8_K activations.
//!
//! Ports of ggml's reference quantizers (the path without an importance matrix), with the
//! same f32 operations in the same order and ggml's `nearest_int`, so the blocks are
//! ggml's byte for byte. The scale searches are a few dozen passes over each sub-block:
//! slow, but this is the offline path that writes model files.

use bytemuck::Zeroable;

use super::blocks::{scale_min_k4, BlockQ4K, BlockQ5K, BlockQ6K, BlockQ8K, QK_K};
use super::floats::{fp16_to_fp32, fp32_to_fp16};

/// Below this a group counts as all zero.
const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `nearest_int`: adding 1.5 * 2^23 leaves round-half-even(x) in the low mantissa
/// bits. Exact for |x| <= 2^22; beyond that it wraps, and ggml (whose range check is an
/// assert, compiled out in release builds) wraps the same way.
fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12_582_912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// ggml's `make_qx_quants` with `rmse_type` 1 and no importance weights, for symmetric
/// quants `x ~ scale * (L - nmax)`, L in 0..2*nmax: starting from `-nmax / max`, tries 18
/// nearby scales and keeps the one with the least x²-weighted squared error (the
/// least-squares scale for those levels). Returns the scale; writes L.
fn make_qx_quants(nmax: i32, x: &[f32], levels: &mut [u8]) -> f32 {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let level = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);

    let mut iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (&v, out) in x.iter().zip(levels.iter_mut()) {
        let l = level(iscale, v);
        *out = (l + nmax) as u8;
        let w = v * v;
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let l = level(iscale, v);
            let w = v * v;
            sumlx += w * v * l as f32;
            suml2 += w * l as f32 * l as f32;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (&v, out) in x.iter().zip(levels.iter_mut()) {
                *out = (level(iscale, v) + nmax) as u8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml's `make_qkx2_quants` (squared error, not absolute): fits `x ~ scale * L - min`,
/// L in 0..=nmax, min >= 0, minimising the weighted squared error over `nstep + 1`
/// candidate grids `(nmax + rmin + rdelta * is) / (max - min)`, each refined by weighted
/// least squares. Returns `(scale, min)`; writes L.
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    levels: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        levels[..n].fill(0);
        return (0.0, -min);
    }
    let level = |iscale: f32, v: f32, min: f32| nearest_int(iscale * (v - min)).clamp(0, nmax);

    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        levels[i] = level(iscale, x[i], min) as u8;
        let diff = scale * levels[i] as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    if nstep < 1 {
        return (scale, -min);
    }
    let mut aux = [0u8; 32];
    let aux = &mut aux[..n];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = level(iscale, x[i], min);
            aux[i] = l as u8;
            let w = weights[i];
            sum_l += w * l as f32;
            sum_l2 += w * l as f32 * l as f32;
            sum_xl += w * l as f32 * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * aux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if cur_error < best_error {
                levels[..n].copy_from_slice(aux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// The error weights of a 32-value sub-block: its RMS plus each value's magnitude.
fn sub_block_weights(x: &[f32]) -> [f32; 32] {
    let mut sum_x2 = 0.0f32;
    for &v in x {
        sum_x2 += v * v;
    }
    let av_x = (sum_x2 / 32.0).sqrt();
    let mut w = [0.0f32; 32];
    for (w, &v) in w.iter_mut().zip(x) {
        *w = av_x + v.abs();
    }
    w
}

/// Shared by Q4_K and Q5_K: fits the eight sub-blocks, packs their scales and mins as
/// six-bit multiples of `d` and `dmin` into `y_scales`, then requantizes every value
/// against the rounded scales. Returns `(d, dmin, levels)`.
fn quantize_k_scales_mins(
    x: &[f32; QK_K],
    nmax: i32,
    rmin: f32,
    nstep: i32,
    y_scales: &mut [u8; 12],
) -> (half::f16, half::f16, [u8; QK_K]) {
    let mut levels = [0u8; QK_K];
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let weights = sub_block_weights(xs);
        let ls = &mut levels[32 * j..32 * j + 32];
        (scales[j], mins[j]) = make_qkx2_quants(nmax, xs, &weights, ls, rmin, 0.1, nstep);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }

    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    for j in 0..8 {
        // ggml stores nearest_int's int in a uint8_t before clamping: `as u8` wraps alike.
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            y_scales[j] = ls;
            y_scales[j + 4] = lm;
        } else {
            y_scales[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            y_scales[j - 4] |= (ls >> 4) << 6;
            y_scales[j] |= (lm >> 4) << 6;
        }
    }
    let d = fp32_to_fp16(max_scale / 63.0);
    let dmin = fp32_to_fp16(max_min / 63.0);

    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, y_scales);
        let d = fp16_to_fp32(d) * sc as f32;
        // A sub-block whose scale rounded to zero keeps the levels of its own fit.
        if d == 0.0 {
            continue;
        }
        let dm = fp16_to_fp32(dmin) * m as f32;
        for i in 32 * j..32 * j + 32 {
            levels[i] = nearest_int((x[i] + dm) / d).clamp(0, nmax) as u8;
        }
    }
    (d, dmin, levels)
}

pub fn quantize_q4_k(x: &[f32; QK_K]) -> BlockQ4K {
    let mut y = BlockQ4K::zeroed();
    let (d, dmin, levels) = quantize_k_scales_mins(x, 15, -1.0, 20, &mut y.scales);
    y.d = d;
    y.dmin = dmin;
    for (q, l) in y.qs.chunks_exact_mut(32).zip(levels.chunks_exact(64)) {
        for i in 0..32 {
            q[i] = l[i] | (l[i + 32] << 4);
        }
    }
    y
}

pub fn quantize_q5_k(x: &[f32; QK_K]) -> BlockQ5K {
    let mut y = BlockQ5K::zeroed();
    let (d, dmin, levels) = quantize_k_scales_mins(x, 31, -0.5, 15, &mut y.scales);
    y.d = d;
    y.dmin = dmin;
    for (n, (ql, l)) in
        y.qs.chunks_exact_mut(32)
            .zip(levels.chunks_exact(64))
            .enumerate()
    {
        let (m1, m2) = (1u8 << (2 * n), 2u8 << (2 * n));
        for j in 0..32 {
            let (mut l1, mut l2) = (l[j], l[j + 32]);
            if l1 > 15 {
                l1 -= 16;
                y.qh[j] |= m1;
            }
            if l2 > 15 {
                l2 -= 16;
                y.qh[j] |= m2;
            }
            ql[j] = l1 | (l2 << 4);
        }
    }
    y
}

pub fn quantize_q6_k(x: &[f32; QK_K]) -> BlockQ6K {
    let mut levels = [0u8; QK_K];
    let mut scales = [0.0f32; QK_K / 16];
    let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
    for (ib, scale) in scales.iter_mut().enumerate() {
        let r = 16 * ib..16 * ib + 16;
        *scale = make_qx_quants(32, &x[r.clone()], &mut levels[r]);
        if scale.abs() > max_abs_scale {
            max_abs_scale = scale.abs();
            max_scale = *scale;
        }
    }
    let mut y = BlockQ6K::zeroed();
    if max_abs_scale < GROUP_MAX_EPS {
        return y;
    }

    let iscale = -128.0 / max_scale;
    y.d = fp32_to_fp16(1.0 / iscale);
    for (q, &s) in y.scales.iter_mut().zip(&scales) {
        *q = nearest_int(iscale * s).min(127) as i8;
    }
    for j in 0..QK_K / 16 {
        let d = fp16_to_fp32(y.d) * y.scales[j] as f32;
        if d == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            levels[i] = (nearest_int(x[i] / d).clamp(-32, 31) + 32) as u8;
        }
    }

    for (half, l) in levels.chunks_exact(128).enumerate() {
        let ql = &mut y.ql[64 * half..64 * half + 64];
        let qh = &mut y.qh[32 * half..32 * half + 32];
        for i in 0..32 {
            let (q1, q2, q3, q4) = (l[i], l[i + 32], l[i + 64], l[i + 96]);
            ql[i] = (q1 & 0xF) | ((q3 & 0xF) << 4);
            ql[i + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4);
            qh[i] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
    y
}

/// `d = max / -127` (ggml chose 127 over 128 so that no value hits -128), q to nearest
/// even, plus the sum of each 16 quants.
pub fn quantize_q8_k(x: &[f32; QK_K]) -> BlockQ8K {
    let mut y = BlockQ8K::zeroed();
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        return y;
    }
    let iscale = -127.0 / max;
    for (q, &v) in y.qs.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    for (s, q) in y.bsums.iter_mut().zip(y.qs.chunks_exact(16)) {
        *s = q.iter().map(|&q| q as i32).sum::<i32>() as i16;
    }
    y.d = 1.0 / iscale;
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        let cases = [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (3.49, 3),
        ];
        for (x, want) in cases {
            assert_eq!(nearest_int(x), want, "{x}");
        }
        assert_eq!(nearest_int(4_194_303.0), 4_194_303);
        assert_eq!(nearest_int(-4_194_303.0), -4_194_303);
    }

    #[test]
    fn q8_k_bsums_are_sums_of_sixteen() {
        let mut x = [0.0f32; QK_K];
        for (i, v) in x.iter_mut().enumerate() {
            *v = ((i * 37 % 101) as f32 - 50.0) / 7.0;
        }
        let y = quantize_q8_k(&x);
        for (j, &s) in y.bsums.iter().enumerate() {
            let want: i32 = y.qs[16 * j..16 * j + 16].iter().map(|&q| q as i32).sum();
            assert_eq!(s as i32, want);
        }
        assert!(y.qs.iter().all(|&q| q >= -127));
    }

    #[test]
    fn all_zero_super_blocks_encode_as_zero_bytes() {
        let x = [0.0f32; QK_K];
        assert_eq!(quantize_q4_k(&x), BlockQ4K::zeroed());
        assert_eq!(quantize_q5_k(&x), BlockQ5K::zeroed());
        assert_eq!(quantize_q6_k(&x), BlockQ6K::zeroed());
        assert_eq!(quantize_q8_k(&x), BlockQ8K::zeroed());
    }
}
