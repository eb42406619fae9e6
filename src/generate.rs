//! The generation loop: process the prompt in batches, then sample one token at a time.

use std::time::{Duration, Instant};

use crate::model::{ModelError, Session};
use crate::sample::Sampler;

/// Timings of one generation, for the tokens/s report.
#[derive(Clone, Debug, Default)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub prompt_time: Duration,
    pub generated_tokens: usize,
    pub generation_time: Duration,
}

fn per_second(n: usize, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64().max(1e-9)
}

impl GenerationStats {
    pub fn prompt_tokens_per_second(&self) -> f64 {
        per_second(self.prompt_tokens, self.prompt_time)
    }

    pub fn generation_tokens_per_second(&self) -> f64 {
        per_second(self.generated_tokens, self.generation_time)
    }
}

/// Feeds `prompt`, then samples up to `n_predict` tokens. `on_token` sees each new token
/// and returns whether to go on; generation also stops when `is_end(token)` holds (that
/// token is not passed on) or the context is full.
pub fn generate(
    session: &mut Session,
    sampler: &mut Sampler,
    prompt: &[u32],
    n_predict: usize,
    is_end: impl Fn(u32) -> bool,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<GenerationStats, ModelError> {
    let mut stats = GenerationStats {
        prompt_tokens: prompt.len(),
        ..Default::default()
    };
    if prompt.is_empty() {
        return Err(ModelError::Invalid("the prompt is empty".into()));
    }
    let mut history = prompt.to_vec();
    // A prompt that fills the context leaves no position for a token.
    let n_predict = if session.n_past() + prompt.len() < session.n_ctx() {
        n_predict
    } else {
        0
    };
    let start = Instant::now();
    let mut next = session.forward_next(prompt, sampler.shortlist(&history))?;
    stats.prompt_time = start.elapsed();

    let start = Instant::now();
    // Logits come from the session's own buffer, or a shortlist of them from the GPU
    // (see `Sampler::shortlist`), and are sampled from where they lie.
    while stats.generated_tokens < n_predict {
        let token = sampler.sample_next(next, &history);
        if is_end(token) {
            break;
        }
        stats.generated_tokens += 1;
        history.push(token);
        if !on_token(token) {
            break;
        }
        if stats.generated_tokens == n_predict || session.n_past() == session.n_ctx() {
            break;
        }
        next = session.forward_next(&[token], sampler.shortlist(&history))?;
    }
    stats.generation_time = start.elapsed();
    Ok(stats)
}
