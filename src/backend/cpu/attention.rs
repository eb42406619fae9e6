//! Causal attention that streams over the KV cache with an online softmax: keys are
//! taken a block at a time, the running maximum and sum rescale what came before, and
//! no score row of the whole context is ever held. Prompt processing at 32k positions
//! needs memory for one block, not an n-by-n matrix.

use crate::model::kv_cache::{KvView, Rows};

use super::ops;

/// Positions scored together: enough to amortize the rescaling, small enough to stay
/// in L1 with their keys.
const BLOCK: usize = 32;

/// Per-thread buffers, allocated once.
pub struct AttnScratch {
    /// `[head_dim]` one decoded key row
    keys: Vec<f32>,
    /// `[head_dim]` one value row
    value: Vec<f32>,
    scores: [f32; BLOCK],
}

impl AttnScratch {
    pub fn new(head_dim: usize) -> AttnScratch {
        AttnScratch {
            keys: vec![0.0; head_dim],
            value: vec![0.0; head_dim],
            scores: [0.0; BLOCK],
        }
    }
}

/// `out = softmax(q · K[0..n_seen]ᵀ / sqrt(d)) · V[0..n_seen]` for one query head whose
/// kv group starts at `kv_offset` in each cached row.
pub fn attend(
    out: &mut [f32],
    q: &[f32],
    kv: &KvView,
    n_seen: usize,
    kv_offset: usize,
    s: &mut AttnScratch,
) {
    let hd = q.len();
    let row = |pos: usize| pos * kv.kv_dim + kv_offset..pos * kv.kv_dim + kv_offset + hd;
    // f32 and f16 rows go to the kernels in place; Q8_0 rows are decoded a block at a time.
    let score = |pos: usize, key: &mut [f32]| match kv.rows {
        Rows::F32 { k, .. } => ops::dot(q, &k[row(pos)]),
        Rows::F16 { k, .. } => ops::dot_f16(q, &k[row(pos)]),
        Rows::Q8_0 { .. } => {
            kv.key(pos, kv_offset, key);
            ops::dot(q, key)
        }
    };
    let add_value = |pos: usize, w: f32, out: &mut [f32], value: &mut [f32]| match kv.rows {
        Rows::F32 { v, .. } => ops::axpy(w, &v[row(pos)], out),
        Rows::F16 { v, .. } => ops::axpy_f16(w, &v[row(pos)], out),
        Rows::Q8_0 { .. } => {
            kv.value(pos, kv_offset, value);
            ops::axpy(w, value, out)
        }
    };
    let scale = 1.0 / (hd as f32).sqrt();
    let (mut max, mut sum) = (f32::NEG_INFINITY, 0.0f32);
    out.fill(0.0);
    for start in (0..n_seen).step_by(BLOCK) {
        let n = BLOCK.min(n_seen - start);
        let scores = &mut s.scores[..n];
        for (j, sc) in scores.iter_mut().enumerate() {
            *sc = score(start + j, &mut s.keys[..hd]) * scale;
        }
        let new_max = max.max(ops::max(scores));
        // What was summed against the old maximum is worth exp(old - new) of it now.
        let rescale = (max - new_max).exp();
        sum = sum * rescale + ops::exp_sub_sum(scores, new_max);
        ops::scale(out, rescale);
        for (j, &w) in scores.iter().enumerate() {
            add_value(start + j, w, out, &mut s.value);
        }
        max = new_max;
    }
    ops::scale(out, 1.0 / sum);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::ops::softmax;
    use crate::model::kv_cache::{CacheType, KvCache};

    /// Against the two-pass textbook version, over lengths around the block size.
    #[test]
    fn streaming_equals_the_full_softmax() {
        let (hd, kv_dim, offset) = (64, 128, 64);
        for n in [1, 2, 31, 32, 33, 100, 257] {
            let keys: Vec<f32> = (0..n * kv_dim)
                .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
                .collect();
            let values: Vec<f32> = (0..n * kv_dim)
                .map(|i| ((i * 104729) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let q: Vec<f32> = (0..hd).map(|i| (i as f32 * 0.1).cos()).collect();
            let mut cache = KvCache::new(CacheType::F32, 1, n, kv_dim);
            cache.store(0, 0, &keys, &values);

            let mut scores: Vec<f32> = (0..n)
                .map(|t| ops::dot(&q, &keys[t * kv_dim + offset..][..hd]) / (hd as f32).sqrt())
                .collect();
            softmax(&mut scores);
            let mut want = vec![0.0f32; hd];
            for (t, w) in scores.iter().enumerate() {
                for (o, v) in want.iter_mut().zip(&values[t * kv_dim + offset..][..hd]) {
                    *o += w * v;
                }
            }
            let mut got = vec![0.0f32; hd];
            let mut s = AttnScratch::new(hd);
            attend(&mut got, &q, &cache.layer(0, n), n, offset, &mut s);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "n = {n}: {g} vs {w}");
            }
        }
    }
}
