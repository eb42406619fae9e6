//! The element-wise and attention parts of the forward pass, on f32 rows.

/// `out = x / rms(x) * weight`, the RMSNorm of Llama (mean of squares in f32, as
/// transformers computes it).
pub fn rms_norm(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let scale = 1.0 / (mean_sq + eps).sqrt();
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = w * (v * scale);
    }
}

/// SwiGLU: `gate = silu(gate) * up`.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

pub fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent sums keep the loop free of a serial dependency, so it vectorizes.
    let mut acc = [0.0f32; 8];
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    for (x, y) in ca.iter().zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// In-place softmax with the maximum subtracted first.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// Causal attention of one query head over `n_past` cached positions.
///
/// `q`: `[head_dim]`; `keys`, `values`: `[n_past][kv_dim]` with this head's kv group at
/// `kv_offset`; `scores`: scratch of at least `n_past`; `out`: `[head_dim]`.
pub fn attend(
    out: &mut [f32],
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    kv_dim: usize,
    kv_offset: usize,
    scores: &mut [f32],
) {
    let head_dim = q.len();
    let n_past = keys.len() / kv_dim;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let scores = &mut scores[..n_past];
    for (t, s) in scores.iter_mut().enumerate() {
        let k = &keys[t * kv_dim + kv_offset..][..head_dim];
        *s = dot(q, k) * scale;
    }
    softmax(scores);
    out.fill(0.0);
    for (t, &w) in scores.iter().enumerate() {
        let v = &values[t * kv_dim + kv_offset..][..head_dim];
        for (o, &x) in out.iter_mut().zip(v) {
            *o += w * x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_of_a_constant_is_the_weight() {
        let mut out = [0.0; 4];
        rms_norm(&mut out, &[3.0; 4], &[1.0, 2.0, 3.0, 4.0], 0.0);
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn softmax_sums_to_one_and_survives_large_values() {
        let mut x = [1000.0, 1000.0, f32::NEG_INFINITY];
        softmax(&mut x);
        assert_eq!(x, [0.5, 0.5, 0.0]);
    }

    #[test]
    fn attention_to_one_position_returns_its_value() {
        let mut out = [0.0; 2];
        let mut scores = [0.0; 1];
        attend(
            &mut out,
            &[1.0, 0.0],
            &[0.0, 0.0, 5.0, 5.0],
            &[0.0, 0.0, 7.0, 8.0],
            4,
            2,
            &mut scores,
        );
        assert_eq!(out, [7.0, 8.0]);
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.25).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }
}
