//! Rotary position embeddings in the interleaved layout of GGUF `llama` models: element
//! 2i of a head pairs with element 2i+1, and position p rotates pair i by p * theta_i,
//! theta_i = base^(-2i/d). Angles are computed in f64 and stored as f32 tables.

use crate::gguf::{keys, Metadata};

use super::config::{LlamaConfig, ModelError, Result};

/// How positions are stretched past the trained context.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    /// Position interpolation: position p is rotated as p / factor.
    Linear {
        factor: f64,
    },
}

impl RopeScaling {
    /// The scaling a file's header asks for: `rope.scaling.type` with `rope.scaling.factor`,
    /// or the legacy `rope.scale_linear`.
    pub fn from_metadata(m: &Metadata, arch: &str) -> Result<RopeScaling> {
        let key = |suffix| keys::arch_key(arch, suffix);
        let factor = m.get_f64_opt(&key(keys::ROPE_SCALING_FACTOR))?;
        let kind = m.get_str_opt(&key(keys::ROPE_SCALING_TYPE))?;
        let legacy = m.get_f64_opt(&key(keys::ROPE_SCALE_LINEAR))?;
        let scaling = match (kind, factor, legacy) {
            (None | Some("none"), _, None) => RopeScaling::None,
            (None | Some("none"), _, Some(f)) | (Some("linear"), Some(f), _) => {
                RopeScaling::Linear { factor: f }
            }
            (Some("linear"), None, _) => {
                return Err(ModelError::Invalid(format!(
                    "{} is linear but {} is missing",
                    key(keys::ROPE_SCALING_TYPE),
                    key(keys::ROPE_SCALING_FACTOR)
                )))
            }
            (Some(other), _, _) => {
                return Err(ModelError::Invalid(format!(
                    "{} = '{other}' is not supported",
                    key(keys::ROPE_SCALING_TYPE)
                )))
            }
        };
        match scaling {
            RopeScaling::Linear { factor } if !(factor.is_finite() && factor > 0.0) => Err(
                ModelError::Invalid(format!("RoPE scaling factor {factor} must be positive")),
            ),
            RopeScaling::Linear { factor: 1.0 } => Ok(RopeScaling::None),
            s => Ok(s),
        }
    }
}

/// Cosine and sine tables for positions `0..n_ctx`.
pub struct Rope {
    half: usize,
    /// `[n_ctx][head_dim / 2]`
    cos: Vec<f32>,
    /// `[n_ctx][head_dim / 2]`
    sin: Vec<f32>,
}

impl Rope {
    pub fn new(config: &LlamaConfig, scaling: &RopeScaling, n_ctx: usize) -> Rope {
        let d = config.rope_dims;
        let half = d / 2;
        let position_scale = match scaling {
            RopeScaling::None => 1.0,
            RopeScaling::Linear { factor } => 1.0 / factor,
        };
        let theta: Vec<f64> = (0..half)
            .map(|i| config.rope_freq_base.powf(-2.0 * i as f64 / d as f64))
            .collect();
        let mut cos = Vec::with_capacity(n_ctx * half);
        let mut sin = Vec::with_capacity(n_ctx * half);
        for p in 0..n_ctx {
            for &t in &theta {
                let angle = p as f64 * position_scale * t;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        Rope { half, cos, sin }
    }

    pub fn n_ctx(&self) -> usize {
        self.cos.len() / self.half
    }

    /// Rotates every head of `x` (`n_heads * head_dim` values) to position `pos`.
    pub fn apply(&self, x: &mut [f32], pos: usize) {
        let cos = &self.cos[pos * self.half..(pos + 1) * self.half];
        let sin = &self.sin[pos * self.half..(pos + 1) * self.half];
        for head in x.chunks_exact_mut(2 * self.half) {
            for (pair, (&c, &s)) in head.chunks_exact_mut(2).zip(cos.iter().zip(sin)) {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * c - x1 * s;
                pair[1] = x0 * s + x1 * c;
            }
        }
    }
}
