//! Causal attention that streams over the KV cache with an online softmax: keys are
//! taken a block at a time, the running maximum and sum rescale what came before, and
//! no score row of the whole context is ever held. Prompt processing at 32k positions
//! needs memory for one block, not an n-by-n matrix.

use crate::model::kv_cache::KvView;

use super::ops::dot;

/// Positions scored together: enough to amortize the rescaling, small enough to stay
/// in L1 with their keys.
const BLOCK: usize = 32;

/// Per-thread buffers, allocated once.
pub struct AttnScratch {
    /// `[BLOCK][head_dim]` keys of one block
    keys: Vec<f32>,
    /// `[head_dim]` one value row
    value: Vec<f32>,
    scores: [f32; BLOCK],
}

impl AttnScratch {
    pub fn new(head_dim: usize) -> AttnScratch {
        AttnScratch {
            keys: vec![0.0; BLOCK * head_dim],
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
    let scale = 1.0 / (hd as f32).sqrt();
    let (mut max, mut sum) = (f32::NEG_INFINITY, 0.0f32);
    out.fill(0.0);
    for start in (0..n_seen).step_by(BLOCK) {
        let n = BLOCK.min(n_seen - start);
        let mut block_max = f32::NEG_INFINITY;
        for j in 0..n {
            let k = &mut s.keys[j * hd..(j + 1) * hd];
            kv.key(start + j, kv_offset, k);
            s.scores[j] = dot(q, k) * scale;
            block_max = block_max.max(s.scores[j]);
        }
        let new_max = max.max(block_max);
        // What was summed against the old maximum is worth exp(old - new) of it now.
        let rescale = (max - new_max).exp();
        sum *= rescale;
        for o in out.iter_mut() {
            *o *= rescale;
        }
        for j in 0..n {
            let w = (s.scores[j] - new_max).exp();
            sum += w;
            kv.value(start + j, kv_offset, &mut s.value);
            for (o, &v) in out.iter_mut().zip(&s.value) {
                *o += w * v;
            }
        }
        max = new_max;
    }
    let inv = 1.0 / sum;
    for o in out.iter_mut() {
        *o *= inv;
    }
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
                .map(|t| dot(&q, &keys[t * kv_dim + offset..][..hd]) / (hd as f32).sqrt())
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
