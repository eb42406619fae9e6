//! Run-time RoPE flags, in exllama's and llama.cpp's vocabularies.

use clap::Args;

use ropewalk::model::{RopeOverrides, ScalingKind};

#[derive(Args, Clone, Debug, Default)]
pub struct RopeArgs {
    /// Linear position interpolation by S (exllama's compress_pos_emb; the same as
    /// --rope-scaling linear --rope-scale S).
    #[arg(long, value_name = "S", conflicts_with_all = ["rope_scaling", "rope_scale", "rope_freq_scale"])]
    pub compress_pos_emb: Option<f64>,
    /// NTK-aware scaling (exllama's alpha_value): the base becomes base * A^(d/(d-2)).
    #[arg(long, value_name = "A")]
    pub alpha_value: Option<f64>,
    /// Scaling method: none, linear, yarn, dynamic (NTK) or llama3.
    #[arg(long, value_name = "METHOD")]
    pub rope_scaling: Option<ScalingKind>,
    /// Context stretch factor of the scaling method.
    #[arg(long, value_name = "S")]
    pub rope_scale: Option<f64>,
    /// RoPE base frequency (replaces the file's).
    #[arg(long, value_name = "B")]
    pub rope_freq_base: Option<f64>,
    /// llama.cpp's frequency scale: 1 / the stretch factor.
    #[arg(long, value_name = "F")]
    pub rope_freq_scale: Option<f64>,
    /// The context the model was trained for, as YaRN and dynamic NTK measure it.
    #[arg(long, value_name = "N", value_parser = positions)]
    pub yarn_orig_ctx: Option<usize>,
    #[arg(long, value_name = "B")]
    pub yarn_beta_fast: Option<f64>,
    #[arg(long, value_name = "B")]
    pub yarn_beta_slow: Option<f64>,
    /// Extra factor on YaRN's attention scaling.
    #[arg(long, value_name = "F")]
    pub yarn_attn_factor: Option<f64>,
}

impl RopeArgs {
    pub fn overrides(&self) -> RopeOverrides {
        let (scaling, scale) = match self.compress_pos_emb {
            Some(s) => (Some(ScalingKind::Linear), Some(s)),
            None => (self.rope_scaling, self.rope_scale),
        };
        RopeOverrides {
            scaling,
            scale,
            freq_scale: self.rope_freq_scale,
            freq_base: self.rope_freq_base,
            alpha: self.alpha_value,
            orig_ctx: self.yarn_orig_ctx,
            beta_fast: self.yarn_beta_fast,
            beta_slow: self.yarn_beta_slow,
            attn_factor: self.yarn_attn_factor,
        }
    }
}

/// A count of positions: at least one.
fn positions(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("a context of 0 positions".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
