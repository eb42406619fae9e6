//! Where the RoPE settings come from: the file's header first, then run-time overrides
//! in the vocabularies users know (exllama's `compress_pos_emb` and `alpha_value`,
//! llama.cpp's `--rope-scaling`, `--rope-scale`, `--rope-freq-base`, ...).

use crate::gguf::{keys, GgufFile, Metadata};
use crate::quant::{self, GgmlType};

use super::config::{LlamaConfig, Result};
use super::rope::{check_factor, invalid, ntk_alpha_base, Llama3Params, RopeConfig, RopeScaling};

const YARN_BETA_FAST: f64 = 32.0;
const YARN_BETA_SLOW: f64 = 1.0;

impl RopeConfig {
    /// The RoPE settings a file's header asks for.
    pub fn from_gguf(file: &GgufFile, config: &LlamaConfig) -> Result<RopeConfig> {
        let freqs = file
            .tensor(keys::ROPE_FREQS_TENSOR)
            .ok()
            .map(|t| (t.ty(), t.info.n_elements(), t.data));
        RopeConfig::from_metadata(file.metadata(), config, freqs)
    }

    /// The RoPE settings of header `m`, with its `rope_freqs` tensor (type, values,
    /// bytes) where it has one.
    pub fn from_metadata(
        m: &Metadata,
        config: &LlamaConfig,
        freqs: Option<(GgmlType, u64, &[u8])>,
    ) -> Result<RopeConfig> {
        let key = |suffix| keys::arch_key("llama", suffix);
        let trained_ctx = m
            .get_usize_opt(&key(keys::ROPE_SCALING_ORIG_CTX))?
            .unwrap_or(config.context_length);
        if trained_ctx == 0 {
            return Err(invalid(format!(
                "{} is 0: a model is trained over at least one position",
                key(keys::ROPE_SCALING_ORIG_CTX)
            )));
        }
        let factor_key = key(keys::ROPE_SCALING_FACTOR);
        let factor = |what: &str| -> Result<f64> {
            let f = m
                .get_f64_opt(&factor_key)?
                .ok_or_else(|| invalid(format!("{what} scaling needs {factor_key}")))?;
            check_factor(&factor_key, f)
        };
        let own_type = m.get_str_opt(keys::ROPEWALK_SCALING_TYPE)?;
        let standard_type = m.get_str_opt(&key(keys::ROPE_SCALING_TYPE))?;
        let legacy_linear = m.get_f64_opt(&key(keys::ROPE_SCALE_LINEAR))?;
        let mut scaling = match (own_type, standard_type.unwrap_or("none")) {
            (Some("dynamic"), "none") => RopeScaling::Dynamic {
                factor: check_factor(
                    keys::ROPEWALK_SCALING_FACTOR,
                    m.get_f64(keys::ROPEWALK_SCALING_FACTOR)?,
                )?,
                original_ctx: trained_ctx,
            },
            (Some(other), _) => {
                return Err(invalid(format!(
                    "{} = '{other}' is not a scaling ropewalk knows",
                    keys::ROPEWALK_SCALING_TYPE
                )))
            }
            (None, "none") => match legacy_linear {
                Some(f) if f != 1.0 => RopeScaling::Linear {
                    factor: check_factor(&key(keys::ROPE_SCALE_LINEAR), f)?,
                },
                _ => RopeScaling::None,
            },
            (None, "linear") => RopeScaling::Linear {
                factor: factor("linear")?,
            },
            (None, "yarn") => RopeScaling::Yarn {
                factor: factor("YaRN")?,
                original_ctx: trained_ctx,
                beta_fast: m
                    .get_f64_opt(&key(keys::ROPE_SCALING_YARN_BETA_FAST))?
                    .unwrap_or(YARN_BETA_FAST),
                beta_slow: m
                    .get_f64_opt(&key(keys::ROPE_SCALING_YARN_BETA_SLOW))?
                    .unwrap_or(YARN_BETA_SLOW),
                attn_factor: m
                    .get_f64_opt(&key(keys::ROPE_SCALING_ATTN_FACTOR))?
                    .unwrap_or(1.0),
            },
            (None, other) => {
                return Err(invalid(format!(
                    "{} = '{other}' is not supported (none, linear, yarn)",
                    key(keys::ROPE_SCALING_TYPE)
                )))
            }
        };
        if let Some((ty, n_values, data)) = freqs {
            if scaling != RopeScaling::None {
                return Err(invalid(format!(
                    "{} together with {} scaling is not supported",
                    keys::ROPE_FREQS_TENSOR,
                    standard_type.or(own_type).unwrap_or("legacy linear")
                )));
            }
            if n_values != (config.rope_dims / 2) as u64 {
                return Err(invalid(format!(
                    "{} has {n_values} values, expected one per frequency ({})",
                    keys::ROPE_FREQS_TENSOR,
                    config.rope_dims / 2
                )));
            }
            let mut factors = vec![0f32; config.rope_dims / 2];
            quant::dequantize(ty, data, &mut factors)
                .map_err(|e| invalid(format!("{}: {e}", keys::ROPE_FREQS_TENSOR)))?;
            for &f in &factors {
                check_factor(keys::ROPE_FREQS_TENSOR, f.into())?;
            }
            scaling = RopeScaling::FreqFactors {
                factors: factors.iter().map(|&f| f.into()).collect(),
                origin: keys::ROPE_FREQS_TENSOR.into(),
            };
        }
        Ok(RopeConfig {
            dims: config.rope_dims,
            freq_base: check_factor(&key(keys::ROPE_FREQ_BASE), config.rope_freq_base)?,
            scaling,
            trained_ctx,
            ntk_alpha: m.get_f64_opt(keys::ROPEWALK_NTK_ALPHA)?,
        })
    }

    /// Applies run-time overrides on top of the file's settings.
    pub fn apply(&mut self, o: &RopeOverrides) -> Result<()> {
        if let Some(base) = o.freq_base {
            self.freq_base = check_factor("--rope-freq-base", base)?;
            self.ntk_alpha = None;
        }
        if let Some(alpha) = o.alpha {
            let alpha = check_factor("--alpha-value", alpha)?;
            // Alpha is relative to the model's own base: undo one already folded in.
            if let Some(old) = self.ntk_alpha.take() {
                self.freq_base /= ntk_alpha_base(1.0, old, self.dims);
            }
            self.freq_base = ntk_alpha_base(self.freq_base, alpha, self.dims);
            self.ntk_alpha = Some(alpha);
        }
        let factor = match (o.scale, o.freq_scale) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give --rope-scale or --rope-freq-scale, not both".into(),
                ))
            }
            (Some(s), None) => Some(check_factor("--rope-scale", s)?),
            (None, Some(fs)) => Some(1.0 / check_factor("--rope-freq-scale", fs)?),
            (None, None) => None,
        };
        let kind = o.scaling.or(match (&self.scaling, factor) {
            (_, None) => None,
            (RopeScaling::Yarn { .. }, Some(_)) => Some(ScalingKind::Yarn),
            (RopeScaling::Dynamic { .. }, Some(_)) => Some(ScalingKind::Dynamic),
            (_, Some(_)) => Some(ScalingKind::Linear),
        });
        let old = std::mem::replace(&mut self.scaling, RopeScaling::None);
        let (old_orig, old_fast, old_slow, old_attn) = match old {
            RopeScaling::Yarn {
                original_ctx,
                beta_fast,
                beta_slow,
                attn_factor,
                ..
            } => (Some(original_ctx), beta_fast, beta_slow, attn_factor),
            _ => (None, YARN_BETA_FAST, YARN_BETA_SLOW, 1.0),
        };
        let original_ctx = o.orig_ctx.or(old_orig).unwrap_or(self.trained_ctx);
        let need_factor = |name: &str| {
            factor.ok_or_else(|| invalid(format!("--rope-scaling {name} needs --rope-scale")))
        };
        let yarn_only = o.beta_fast.or(o.beta_slow).or(o.attn_factor).is_some();
        self.scaling = match kind {
            None if yarn_only && !matches!(old, RopeScaling::Yarn { .. }) => return Err(invalid(
                "--yarn-beta-fast, --yarn-beta-slow and --yarn-attn-factor apply to YaRN scaling"
                    .into(),
            )),
            None => match old {
                RopeScaling::Yarn { factor, .. } => RopeScaling::Yarn {
                    factor,
                    original_ctx,
                    beta_fast: o.beta_fast.unwrap_or(old_fast),
                    beta_slow: o.beta_slow.unwrap_or(old_slow),
                    attn_factor: o.attn_factor.unwrap_or(old_attn),
                },
                other => other,
            },
            Some(ScalingKind::None) if factor.is_some() => {
                return Err(invalid("--rope-scaling none takes no --rope-scale".into()))
            }
            Some(ScalingKind::None) => RopeScaling::None,
            Some(ScalingKind::Linear) => RopeScaling::Linear {
                factor: need_factor("linear")?,
            },
            Some(ScalingKind::Dynamic) => RopeScaling::Dynamic {
                factor: need_factor("dynamic")?,
                original_ctx,
            },
            Some(ScalingKind::Yarn) => RopeScaling::Yarn {
                factor: need_factor("yarn")?,
                original_ctx,
                beta_fast: check_factor("--yarn-beta-fast", o.beta_fast.unwrap_or(old_fast))?,
                beta_slow: check_factor("--yarn-beta-slow", o.beta_slow.unwrap_or(old_slow))?,
                attn_factor: check_factor("--yarn-attn-factor", o.attn_factor.unwrap_or(old_attn))?,
            },
            Some(ScalingKind::Llama3) => {
                let params = Llama3Params {
                    factor: need_factor("llama3")?,
                    low_freq_factor: 1.0,
                    high_freq_factor: 4.0,
                    original_ctx,
                };
                RopeScaling::FreqFactors {
                    factors: params.divisors(self.freq_base, self.dims),
                    origin: "llama3 parameters".into(),
                }
            }
        };
        if matches!(kind, Some(ScalingKind::Dynamic | ScalingKind::Yarn)) {
            self.trained_ctx = original_ctx;
        }
        Ok(())
    }
}

/// A scaling method named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalingKind {
    None,
    Linear,
    Yarn,
    Dynamic,
    Llama3,
}

impl std::str::FromStr for ScalingKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<ScalingKind, String> {
        Ok(match s {
            "none" => ScalingKind::None,
            "linear" => ScalingKind::Linear,
            "yarn" => ScalingKind::Yarn,
            "dynamic" => ScalingKind::Dynamic,
            "llama3" => ScalingKind::Llama3,
            _ => {
                return Err(format!(
                    "'{s}' is not one of none, linear, yarn, dynamic, llama3"
                ))
            }
        })
    }
}

/// Run-time RoPE settings; `None` keeps what the file says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RopeOverrides {
    pub scaling: Option<ScalingKind>,
    /// The context stretch factor (`--rope-scale`, `--compress-pos-emb`).
    pub scale: Option<f64>,
    /// llama.cpp's `--rope-freq-scale`: the inverse of the factor.
    pub freq_scale: Option<f64>,
    pub freq_base: Option<f64>,
    /// exllama's `alpha_value`: NTK-aware scaling of the base.
    pub alpha: Option<f64>,
    /// The trained context that YaRN and dynamic NTK measure against.
    pub orig_ctx: Option<usize>,
    pub beta_fast: Option<f64>,
    pub beta_slow: Option<f64>,
    pub attn_factor: Option<f64>,
}
