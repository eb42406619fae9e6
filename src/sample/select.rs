//! The few candidates a step can sample from, picked out of the whole vocabulary: the
//! argmax for greedy decoding, the k most likely for top-k. Both run once a token over
//! tens of thousands of logits (49152 for SmolLM2, 128256 for Llama 3), where gathering
//! every logit into a candidate list first cost 175 µs a token at 49152, a seventh of a
//! small model's step on a GPU. They read the logits in lanes of [`LANES`], which the compiler turns
//! into vector compares, and keep only what can still be among the chosen.

use super::{by_logit_desc, Candidate};

/// Logits read together: a 512-bit vector, or two 256-bit ones.
const LANES: usize = 16;

/// First index of the largest logit; NaN never wins. All NaN gives 0.
pub fn argmax(logits: &[f32]) -> u32 {
    // The maximum first, then where it first is: two plain passes that vectorize, where
    // one tracking indices as it goes ran three times slower. `x > m` passes over NaN.
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = logits.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    let max = lanes
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    first_equal(logits, max).unwrap_or(0) as u32
}

/// The first index holding `value`.
fn first_equal(logits: &[f32], value: f32) -> Option<usize> {
    let chunks = logits.chunks_exact(LANES);
    let tail = LANES * chunks.len();
    for (c, chunk) in chunks.enumerate() {
        if chunk.iter().fold(false, |any, &x| any | (x == value)) {
            return chunk
                .iter()
                .position(|&x| x == value)
                .map(|i| c * LANES + i);
        }
    }
    logits[tail..]
        .iter()
        .position(|&x| x == value)
        .map(|i| tail + i)
}

/// The `k` (at least 1) most likely candidates of `logits`, most likely first and equal
/// logits by id, into `out`: what sorting every finite logit and keeping `k` gives (-inf
/// and NaN are never candidates).
///
/// Logits stream in id order into `out`, above a threshold: when `out` holds enough, it is
/// cut to the best `k`, and the k-th's logit becomes the threshold. A later logit equal to
/// it has a higher id than every kept one, so it could not displace the k-th: only logits
/// above the threshold are kept.
pub fn top_k(logits: &[f32], k: usize, out: &mut Vec<Candidate>) {
    assert!(k > 0, "top_k of no candidates");
    let cut_at = 2 * k.max(LANES);
    let mut threshold = f32::NEG_INFINITY;
    out.clear();
    for (c, chunk) in logits.chunks(LANES).enumerate() {
        // Most chunks hold nothing above the threshold once it has risen.
        if !chunk.iter().fold(false, |any, &x| any | (x > threshold)) {
            continue;
        }
        for (i, &logit) in chunk.iter().enumerate() {
            if logit > threshold {
                let id = (c * LANES + i) as u32;
                out.push(Candidate { id, logit });
            }
        }
        if out.len() >= cut_at {
            best_k(out, k);
            threshold = out[k - 1].logit;
        }
    }
    best_k(out, k);
    out.sort_unstable_by(by_logit_desc);
}

/// Cuts `cands` to its best `k` (in no order but the k-th last).
pub(super) fn best_k(cands: &mut Vec<Candidate>, k: usize) {
    if cands.len() > k {
        cands.select_nth_unstable_by(k - 1, by_logit_desc);
        cands.truncate(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `top_k` must give: every finite logit, sorted, the first `k`.
    fn sorted_top(logits: &[f32], k: usize) -> Vec<(u32, u32)> {
        let mut all: Vec<Candidate> = (0..logits.len())
            .filter(|&i| logits[i] > f32::NEG_INFINITY)
            .map(|i| Candidate {
                id: i as u32,
                logit: logits[i],
            })
            .collect();
        all.sort_unstable_by(by_logit_desc);
        all.truncate(k);
        all.iter().map(|c| (c.id, c.logit.to_bits())).collect()
    }

    /// The plain loop `argmax` replaced.
    fn argmax_loop(logits: &[f32]) -> u32 {
        let mut best: Option<(usize, f32)> = None;
        for (i, &l) in logits.iter().enumerate() {
            if !l.is_nan() && best.is_none_or(|(_, b)| l > b) {
                best = Some((i, l));
            }
        }
        best.map_or(0, |(i, _)| i as u32)
    }

    /// Logits of a few distinct values (many ties, 0.0 among them), with NaN, -inf, +inf
    /// and -0.0 sprinkled in, from a xorshift stream.
    fn logits(n: usize, seed: u64, distinct: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        // Odd seeds: 0.0 the largest value, where top-k's threshold meets -0.0 often.
        let offset = match seed % 2 {
            0 => 3.0,
            _ => (distinct - 1) as f32 * 0.25,
        };
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match x % 97 {
                    0 => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    2 if seed.is_multiple_of(3) => f32::INFINITY,
                    3 => -0.0,
                    _ => ((x >> 20) % distinct) as f32 * 0.25 - offset,
                }
            })
            .collect()
    }

    #[test]
    fn top_k_is_the_head_of_the_sorted_logits() {
        let mut out = Vec::new();
        for seed in 0..40 {
            for n in [1, 15, 16, 17, 100, 1000, 5000] {
                for distinct in [1, 3, 50, 100_000] {
                    let l = logits(n, seed, distinct);
                    for k in [1, 2, 15, 16, 17, 40, 64, 999, 10_000] {
                        top_k(&l, k, &mut out);
                        let got: Vec<_> = out.iter().map(|c| (c.id, c.logit.to_bits())).collect();
                        assert_eq!(got, sorted_top(&l, k), "n {n} k {k} seed {seed}");
                    }
                }
            }
        }
    }

    #[test]
    fn argmax_is_the_plain_loop() {
        for seed in 0..40 {
            for n in [1, 15, 16, 17, 100, 1000] {
                for distinct in [1, 3, 100_000] {
                    let l = logits(n, seed, distinct);
                    assert_eq!(argmax(&l), argmax_loop(&l), "n {n} seed {seed}");
                }
            }
        }
        let only = |x: f32, n: usize| vec![x; n];
        for n in [1, 16, 33] {
            assert_eq!(argmax(&only(f32::NAN, n)), 0);
            assert_eq!(argmax(&only(f32::NEG_INFINITY, n)), 0);
            let mut l = only(f32::NAN, n);
            l[n - 1] = f32::NEG_INFINITY;
            assert_eq!(argmax(&l), (n - 1) as u32);
        }
    }
}
