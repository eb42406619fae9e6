//! Rotary position embeddings and the ways of stretching them past the trained context.
//!
//! GGUF `llama` models use the interleaved layout: element 2i of a head pairs with 2i+1,
//! and position p rotates pair i by p * theta_i, theta_i = base^(-2i/d). Every scaling
//! method changes the per-pair frequencies theta_i (and YaRN also scales cos and sin);
//! the formulas follow Hugging Face transformers' `rope_init_fn`s, computed in f64.

use std::f64::consts::PI;
use std::fmt;

use super::config::{ModelError, Result};

/// How positions are stretched past the trained context.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    /// Position interpolation (exllama's `compress_pos_emb`): every frequency / factor.
    Linear {
        factor: f64,
    },
    /// Dynamic NTK: past the trained length L, a sequence of length n uses the base
    /// base * (factor * n / L - (factor - 1))^(d / (d - 2)).
    Dynamic {
        factor: f64,
        original_ctx: usize,
    },
    /// YaRN: interpolated and original frequencies blended by a ramp over the pair index,
    /// and cos and sin scaled by (0.1 ln factor + 1) * attn_factor.
    Yarn {
        factor: f64,
        original_ctx: usize,
        beta_fast: f64,
        beta_slow: f64,
        attn_factor: f64,
    },
    /// Llama 3: a divisor per frequency, from the parameters or the file's
    /// `rope_freqs.weight` tensor.
    FreqFactors {
        factors: Vec<f64>,
        origin: String,
    },
}

/// Llama 3's smooth per-frequency scaling (Hugging Face `_compute_llama3_parameters`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Llama3Params {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_ctx: usize,
}

impl Llama3Params {
    /// The divisor of each frequency: 1 for short wavelengths, `factor` for long ones,
    /// a smooth blend between.
    pub fn divisors(&self, freq_base: f64, dims: usize) -> Vec<f64> {
        let l = self.original_ctx as f64;
        let low_wavelen = l / self.low_freq_factor;
        let high_wavelen = l / self.high_freq_factor;
        default_inv_freq(freq_base, dims)
            .into_iter()
            .map(|theta| {
                let wavelen = 2.0 * PI / theta;
                let scaled = if wavelen < high_wavelen {
                    theta
                } else if wavelen > low_wavelen {
                    theta / self.factor
                } else {
                    let smooth = (l / wavelen - self.low_freq_factor)
                        / (self.high_freq_factor - self.low_freq_factor);
                    (1.0 - smooth) * theta / self.factor + smooth * theta
                };
                theta / scaled
            })
            .collect()
    }
}

/// Everything that decides how a position becomes a rotation.
#[derive(Clone, Debug, PartialEq)]
pub struct RopeConfig {
    /// Dimensions of a head that rotate.
    pub dims: usize,
    pub freq_base: f64,
    pub scaling: RopeScaling,
    /// The context the model was trained for.
    pub trained_ctx: usize,
    /// NTK-by-alpha folded into `freq_base`, kept to say so.
    pub ntk_alpha: Option<f64>,
}

/// theta_i = base^(-2i/d) for each pair i.
pub fn default_inv_freq(freq_base: f64, dims: usize) -> Vec<f64> {
    (0..dims / 2)
        .map(|i| freq_base.powf(-2.0 * i as f64 / dims as f64))
        .collect()
}

/// The base that NTK-aware scaling by `alpha` gives (exllama's `alpha_value`).
pub fn ntk_alpha_base(freq_base: f64, alpha: f64, dims: usize) -> f64 {
    freq_base * alpha.powf(dims as f64 / (dims as f64 - 2.0))
}

impl RopeConfig {
    /// The per-pair frequencies for a forward pass whose last position is `seq_len - 1`
    /// (only dynamic NTK looks at it).
    pub fn inv_freq(&self, seq_len: usize) -> Vec<f64> {
        let d = self.dims;
        match &self.scaling {
            RopeScaling::None => default_inv_freq(self.freq_base, d),
            RopeScaling::Linear { factor } => default_inv_freq(self.freq_base, d)
                .into_iter()
                .map(|t| t / factor)
                .collect(),
            RopeScaling::Dynamic {
                factor,
                original_ctx,
            } => {
                let n = seq_len.max(*original_ctx) as f64;
                let l = *original_ctx as f64;
                let stretch = (factor * n / l - (factor - 1.0)).powf(d as f64 / (d as f64 - 2.0));
                default_inv_freq(self.freq_base * stretch, d)
            }
            RopeScaling::Yarn {
                factor,
                original_ctx,
                beta_fast,
                beta_slow,
                ..
            } => yarn_inv_freq(
                self.freq_base,
                d,
                *factor,
                *original_ctx,
                *beta_fast,
                *beta_slow,
            ),
            RopeScaling::FreqFactors { factors, .. } => default_inv_freq(self.freq_base, d)
                .into_iter()
                .zip(factors)
                .map(|(t, f)| t / f)
                .collect(),
        }
    }

    /// The factor on cos and sin: YaRN's attention scaling, 1 otherwise.
    pub fn mscale(&self) -> f64 {
        match self.scaling {
            RopeScaling::Yarn {
                factor,
                attn_factor,
                ..
            } => yarn_mscale(factor) * attn_factor,
            _ => 1.0,
        }
    }

    /// How far the context stretches: the scaling factor, 1 without scaling.
    pub fn factor(&self) -> f64 {
        match &self.scaling {
            RopeScaling::None => 1.0,
            RopeScaling::Linear { factor }
            | RopeScaling::Dynamic { factor, .. }
            | RopeScaling::Yarn { factor, .. } => *factor,
            RopeScaling::FreqFactors { factors, .. } => factors.iter().copied().fold(1.0, f64::max),
        }
    }

    /// A warning when `n_ctx` runs past the trained length with nothing to stretch it.
    pub fn context_warning(&self, n_ctx: usize) -> Option<String> {
        let reach = self.trained_ctx as f64 * self.factor().max(self.ntk_alpha.unwrap_or(1.0));
        if (n_ctx as f64) <= reach {
            return None;
        }
        let suggest = (n_ctx as f64 / self.trained_ctx as f64).ceil();
        Some(format!(
            "context {n_ctx} is past the {} tokens this model was trained for and its RoPE \
             settings reach only {reach:.0}: expect perplexity to climb past that point; \
             --rope-scaling yarn --rope-scale {suggest} (or --compress-pos-emb {suggest}) stretches it",
            self.trained_ctx
        ))
    }
}

/// YaRN's ramp (Hugging Face `_compute_yarn_parameters`, truncate = true): pairs that
/// turn many times within the original context keep their frequency, pairs that turn
/// less than once are interpolated, and pairs between are blended.
fn yarn_inv_freq(
    base: f64,
    d: usize,
    factor: f64,
    original_ctx: usize,
    beta_fast: f64,
    beta_slow: f64,
) -> Vec<f64> {
    let correction_dim = |rotations: f64| {
        d as f64 * (original_ctx as f64 / (rotations * 2.0 * PI)).ln() / (2.0 * base.ln())
    };
    let low = correction_dim(beta_fast).floor().max(0.0);
    let high = correction_dim(beta_slow).ceil().min(d as f64 - 1.0);
    let span = if low == high { 0.001 } else { high - low };
    default_inv_freq(base, d)
        .into_iter()
        .enumerate()
        .map(|(i, theta)| {
            let ramp = ((i as f64 - low) / span).clamp(0.0, 1.0);
            let extrapolation = 1.0 - ramp;
            theta / factor * (1.0 - extrapolation) + theta * extrapolation
        })
        .collect()
}

fn yarn_mscale(factor: f64) -> f64 {
    if factor <= 1.0 {
        1.0
    } else {
        0.1 * factor.ln() + 1.0
    }
}

impl fmt::Display for RopeConfig {
    /// One line, in words: what `run`, `perplexity` and `bench` print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trained = self.trained_ctx;
        let reach = |factor: f64| (trained as f64 * factor).round() as usize;
        write!(f, "RoPE base {}", self.freq_base)?;
        if let Some(alpha) = self.ntk_alpha {
            write!(f, " (NTK alpha {alpha})")?;
        }
        match &self.scaling {
            RopeScaling::None => write!(f, ", no scaling: trained {trained}"),
            RopeScaling::Linear { factor } => write!(
                f,
                ", linear interpolation x{factor}: trained {trained}, runs to {}",
                reach(*factor)
            ),
            RopeScaling::Dynamic {
                factor,
                original_ctx,
            } => write!(
                f,
                ", dynamic NTK x{factor}: trained {original_ctx}, base grows past it, runs to {}",
                reach(*factor)
            ),
            RopeScaling::Yarn {
                factor,
                original_ctx,
                beta_fast,
                beta_slow,
                attn_factor,
            } => write!(
                f,
                ", YaRN x{factor} (beta {beta_fast}/{beta_slow}, mscale {:.5}): trained {original_ctx}, runs to {}",
                yarn_mscale(*factor) * attn_factor,
                reach(*factor)
            ),
            RopeScaling::FreqFactors { origin, .. } => write!(
                f,
                ", per-frequency factors ({origin}, up to x{}): trained {trained}, runs to {}",
                self.factor(),
                reach(self.factor())
            ),
        }
    }
}

/// The rotation tables: cos and sin for each position and pair, computed in f64 and
/// stored in f32. For every method but dynamic NTK they depend on the position alone, so
/// each position's row is computed once per session, the first time a pass reaches it,
/// and kept (`[n_ctx][dims / 2]` at most: 8 MiB at 32k positions of 64-dim heads).
/// Dynamic NTK's frequencies depend on the pass, so its rows are those of the current
/// pass, recomputed each time.
pub struct Rope {
    config: RopeConfig,
    /// The frequencies of every method but dynamic NTK, whose depend on the pass.
    fixed_inv_freq: Option<Vec<f64>>,
    mscale: f64,
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
    /// The table row of the prepared pass's first position.
    first_row: usize,
}

impl Rope {
    pub fn new(config: RopeConfig) -> Rope {
        let fixed_inv_freq = match config.scaling {
            RopeScaling::Dynamic { .. } => None,
            _ => Some(config.inv_freq(0)),
        };
        Rope {
            mscale: config.mscale(),
            half: config.dims / 2,
            fixed_inv_freq,
            config,
            cos: Vec::new(),
            sin: Vec::new(),
            first_row: 0,
        }
    }

    pub fn config(&self) -> &RopeConfig {
        &self.config
    }

    /// Makes the rows of positions `pos0..pos0 + n` of a forward pass that ends at
    /// `seq_len` ready. Dynamic NTK uses `seq_len` for the whole pass and later passes
    /// recompute it, while keys already cached keep the rotation they were written with,
    /// as Hugging Face does.
    pub fn prepare(&mut self, pos0: usize, n: usize, seq_len: usize) {
        match &self.fixed_inv_freq {
            Some(inv_freq) => {
                let have = self.cos.len() / self.half;
                for p in have..pos0 + n {
                    push_row(&mut self.cos, &mut self.sin, p, inv_freq, self.mscale);
                }
                self.first_row = pos0;
            }
            None => {
                let inv_freq = self.config.inv_freq(seq_len);
                self.cos.clear();
                self.sin.clear();
                for p in pos0..pos0 + n {
                    push_row(&mut self.cos, &mut self.sin, p, &inv_freq, self.mscale);
                }
                self.first_row = 0;
            }
        }
    }

    /// The cos and sin rows of the prepared pass's first `n` positions, `[n][dims / 2]`
    /// each: what a GPU segment rotates with.
    pub fn rows(&self, n: usize) -> (&[f32], &[f32]) {
        let rows = self.first_row * self.half..(self.first_row + n) * self.half;
        (&self.cos[rows.clone()], &self.sin[rows])
    }

    /// Rotates every head of `x` (`n_heads * dims` values) to the `t`-th position of the
    /// prepared pass.
    pub fn apply(&self, x: &mut [f32], t: usize) {
        let row = (self.first_row + t) * self.half..(self.first_row + t + 1) * self.half;
        let (cos, sin) = (&self.cos[row.clone()], &self.sin[row]);
        for head in x.chunks_exact_mut(2 * self.half) {
            for (pair, (&c, &s)) in head.chunks_exact_mut(2).zip(cos.iter().zip(sin)) {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * c - x1 * s;
                pair[1] = x0 * s + x1 * c;
            }
        }
    }
}

/// Appends position `p`'s cos and sin row.
fn push_row(cos: &mut Vec<f32>, sin: &mut Vec<f32>, p: usize, inv_freq: &[f64], mscale: f64) {
    for &theta in inv_freq {
        let (s, c) = (p as f64 * theta).sin_cos();
        cos.push((c * mscale) as f32);
        sin.push((s * mscale) as f32);
    }
}

pub(crate) fn invalid(msg: String) -> ModelError {
    ModelError::Invalid(msg)
}

pub(crate) fn check_factor(name: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(invalid(format!(
            "{name} must be a positive number, got {v}"
        )))
    }
}
