//! Perplexity over non-overlapping windows, each scored with a fresh context, with the
//! mean NLL by position within the window: how well the model does far into a long
//! context is the point of RoPE scaling.

use crate::model::{ModelError, Session};

/// Which predictions of a window count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scoring {
    /// Every prediction of the window: tokens 1..n scored from their prefixes (n - 1 per
    /// window), as the Hugging Face reference does.
    Full,
    /// Only the second half, as llama.cpp's `perplexity` does, so each scored token has
    /// at least half a window of context.
    SecondHalf,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub start: usize,
    pub n_pred: usize,
    pub nll_sum: f64,
}

/// Positions of a window are split into this many equal buckets for the NLL report.
pub const N_BUCKETS: usize = 8;

/// Mean NLL of the predictions made at positions `from..to` of the windows.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub from: usize,
    pub to: usize,
    pub n_pred: usize,
    pub nll_sum: f64,
}

impl Bucket {
    pub fn mean_nll(&self) -> f64 {
        self.nll_sum / self.n_pred as f64
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Perplexity {
    pub windows: Vec<Window>,
    /// By the position of the predicting token in its window.
    pub buckets: Vec<Bucket>,
    nll: f64,
    nll2: f64,
    count: usize,
}

impl Perplexity {
    pub fn n_pred(&self) -> usize {
        self.count
    }

    pub fn mean_nll(&self) -> f64 {
        self.nll / self.count as f64
    }

    pub fn ppl(&self) -> f64 {
        self.mean_nll().exp()
    }

    /// llama.cpp's error estimate: the standard error of the mean NLL, carried to the
    /// perplexity.
    pub fn ppl_error(&self) -> f64 {
        let mean = self.mean_nll();
        let var = self.nll2 / self.count as f64 - mean * mean;
        if var <= 0.0 || self.count < 2 {
            return 0.0;
        }
        (var / (self.count - 1) as f64).sqrt() * self.ppl()
    }
}

/// `-ln softmax(logits)[target]`, in f64 so long sums stay exact enough.
pub fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    max + sum.ln() - logits[target as usize] as f64
}

/// Scores `tokens` in windows of `n_ctx` (a last partial window is dropped, as llama.cpp
/// does), calling `on_window` after each with the running result. With `bos`, each
/// window's first token is replaced by it, as llama.cpp does for models that expect BOS.
pub fn perplexity(
    session: &mut Session,
    tokens: &[u32],
    n_ctx: usize,
    scoring: Scoring,
    bos: Option<u32>,
    max_windows: Option<usize>,
    mut on_window: impl FnMut(&Perplexity),
) -> Result<Perplexity, ModelError> {
    if n_ctx < 2 || tokens.len() < n_ctx {
        return Err(ModelError::Invalid(format!(
            "perplexity needs at least one window of {n_ctx} tokens (and a window of at least 2); the text has {}",
            tokens.len()
        )));
    }
    let n_vocab = session.n_vocab();
    let first = match scoring {
        Scoring::Full => 0,
        Scoring::SecondHalf => n_ctx / 2,
    };
    let mut result = Perplexity {
        buckets: (0..N_BUCKETS)
            .map(|b| Bucket {
                // Position i falls in bucket i * N_BUCKETS / n_ctx.
                from: (b * n_ctx).div_ceil(N_BUCKETS),
                to: ((b + 1) * n_ctx).div_ceil(N_BUCKETS),
                n_pred: 0,
                nll_sum: 0.0,
            })
            .collect(),
        ..Default::default()
    };
    let mut window = vec![0; n_ctx];
    let n_windows = (tokens.len() / n_ctx).min(max_windows.unwrap_or(usize::MAX));
    for w in 0..n_windows {
        window.copy_from_slice(&tokens[w * n_ctx..(w + 1) * n_ctx]);
        if let Some(bos) = bos {
            window[0] = bos;
        }
        session.reset();
        let mut sum = 0.0;
        // Position i predicts token i + 1; the last position predicts nothing.
        session.forward_each_batch(&window, |start, logits| {
            for (j, row) in logits.chunks_exact(n_vocab).enumerate() {
                let i = start + j;
                if i < first || i + 1 >= n_ctx {
                    continue;
                }
                let l = nll(row, window[i + 1]);
                sum += l;
                result.nll += l;
                result.nll2 += l * l;
                let bucket = &mut result.buckets[i * N_BUCKETS / n_ctx];
                bucket.n_pred += 1;
                bucket.nll_sum += l;
            }
        })?;
        result.count += n_ctx - 1 - first;
        result.windows.push(Window {
            start: w * n_ctx,
            n_pred: n_ctx - 1 - first,
            nll_sum: sum,
        });
        on_window(&result);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nll_of_a_uniform_distribution_is_ln_n() {
        assert!((nll(&[0.5; 4], 2) - 4f64.ln()).abs() < 1e-12);
        assert!(nll(&[0.0, 100.0], 1) < 1e-12);
    }
}
