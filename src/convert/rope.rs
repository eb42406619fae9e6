//! The RoPE settings a converted file carries: config.json's `rope_theta` and
//! `rope_scaling`, then the command-line overrides (the same flags and the same meaning
//! as at run time), written as GGUF keys and, for Llama 3 scaling, a `rope_freqs` tensor.
//!
//! Standard keys where GGUF has them, so other engines stretch the context the same way;
//! NTK-by-alpha is folded into `rope.freq_base` (its alpha kept in our own key) and
//! dynamic NTK, which GGUF has no type for, goes under `ropewalk.*` with the standard type
//! left `none`.

use serde_json::{Map, Value as Json};

use super::config::{HfConfig, Reader};
use super::error::ConvertError;
use crate::gguf::{keys, Metadata, Value};
use crate::model::rope::{Llama3Params, RopeConfig, RopeScaling};
use crate::model::{RopeOverrides, ScalingKind};

/// What the file will say about positions.
#[derive(Clone, Debug, PartialEq)]
pub struct RopePlan {
    pub rope: RopeConfig,
    /// `llama.context_length`: how far the file says the model runs.
    pub context_length: usize,
}

impl RopePlan {
    /// config.json's settings, then `overrides`, then `ctx` (the advertised context).
    /// Scaling asked for on the command line stretches the advertised context to
    /// trained length x factor unless `ctx` says otherwise.
    pub fn new(
        config: &HfConfig,
        overrides: &RopeOverrides,
        ctx: Option<usize>,
    ) -> Result<RopePlan, ConvertError> {
        let mut rope = from_config(config)?;
        rope.apply(overrides)
            .map_err(|e| ConvertError::Usage(e.to_string()))?;
        if let (Some(ScalingKind::Llama3), Some(n)) = (overrides.scaling, overrides.orig_ctx) {
            // The divisors were computed against this length: it is the trained one.
            rope.trained_ctx = n;
        }
        let stretched_by_flags = overrides.scaling.is_some()
            || overrides.scale.is_some()
            || overrides.freq_scale.is_some();
        let context_length = match ctx {
            Some(0) => return Err(ConvertError::Usage("--ctx must be positive".into())),
            Some(n) => n,
            None if stretched_by_flags => {
                (rope.trained_ctx as f64 * rope.factor()).round() as usize
            }
            None => config.max_position_embeddings,
        };
        if context_length > u32::MAX as usize {
            return Err(ConvertError::Usage(format!(
                "context length {context_length} does not fit in a u32"
            )));
        }
        Ok(RopePlan {
            rope,
            context_length,
        })
    }

    /// The `llama.*` and `ropewalk.*` keys for positions, in the order they are written.
    pub fn write_keys(&self, m: &mut Metadata) {
        let key = |suffix| keys::arch_key("llama", suffix);
        let r = &self.rope;
        m.set(
            key(keys::CONTEXT_LENGTH),
            Value::U32(self.context_length as u32),
        );
        m.set(key(keys::ROPE_DIMENSION_COUNT), Value::U32(r.dims as u32));
        m.set(key(keys::ROPE_FREQ_BASE), Value::F32(r.freq_base as f32));
        let standard_type = match r.scaling {
            RopeScaling::Linear { .. } => "linear",
            RopeScaling::Yarn { .. } => "yarn",
            RopeScaling::None | RopeScaling::Dynamic { .. } | RopeScaling::FreqFactors { .. } => {
                "none"
            }
        };
        m.set(
            key(keys::ROPE_SCALING_TYPE),
            Value::String(standard_type.into()),
        );
        match &r.scaling {
            RopeScaling::None | RopeScaling::FreqFactors { .. } => {}
            RopeScaling::Linear { factor } => {
                m.set(key(keys::ROPE_SCALING_FACTOR), Value::F32(*factor as f32));
            }
            RopeScaling::Yarn {
                factor,
                beta_fast,
                beta_slow,
                attn_factor,
                ..
            } => {
                m.set(key(keys::ROPE_SCALING_FACTOR), Value::F32(*factor as f32));
                m.set(
                    key(keys::ROPE_SCALING_ATTN_FACTOR),
                    Value::F32(*attn_factor as f32),
                );
                m.set(
                    key(keys::ROPE_SCALING_YARN_BETA_FAST),
                    Value::F32(*beta_fast as f32),
                );
                m.set(
                    key(keys::ROPE_SCALING_YARN_BETA_SLOW),
                    Value::F32(*beta_slow as f32),
                );
            }
            RopeScaling::Dynamic { factor, .. } => {
                m.set(keys::ROPEWALK_SCALING_TYPE, Value::String("dynamic".into()));
                m.set(keys::ROPEWALK_SCALING_FACTOR, Value::F32(*factor as f32));
            }
        }
        let trained = match r.scaling {
            RopeScaling::Yarn { original_ctx, .. } | RopeScaling::Dynamic { original_ctx, .. } => {
                original_ctx
            }
            _ => r.trained_ctx,
        };
        if r.scaling != RopeScaling::None || trained != self.context_length {
            m.set(key(keys::ROPE_SCALING_ORIG_CTX), Value::U32(trained as u32));
        }
        if let Some(alpha) = r.ntk_alpha {
            m.set(keys::ROPEWALK_NTK_ALPHA, Value::F32(alpha as f32));
        }
    }

    /// The `rope_freqs.weight` values (one divisor per frequency), for Llama 3 scaling.
    pub fn freq_factors(&self) -> Option<Vec<f32>> {
        match &self.rope.scaling {
            RopeScaling::FreqFactors { factors, .. } => {
                Some(factors.iter().map(|&f| f as f32).collect())
            }
            _ => None,
        }
    }
}

/// config.json's RoPE as the run-time sees it.
fn from_config(c: &HfConfig) -> Result<RopeConfig, ConvertError> {
    let empty = Map::new();
    let p = c.rope_scaling.as_ref().unwrap_or(&empty);
    let r = Reader { obj: p };
    let bad = |msg: String| ConvertError::invalid(super::config::FILE, msg);
    let kind = match p.get("rope_type").or_else(|| p.get("type")) {
        None | Some(Json::Null) => "default",
        Some(Json::String(s)) => s.as_str(),
        Some(other) => return Err(bad(format!("rope_scaling type {other} is not a string"))),
    };
    let factor = || {
        r.opt_positive("factor")?
            .ok_or_else(|| bad(format!("rope_scaling of type '{kind}' has no 'factor'")))
    };
    let original = r
        .opt_int("original_max_position_embeddings", u32::MAX.into())?
        .or(c.original_max_position_embeddings);
    let trained = original.unwrap_or(c.max_position_embeddings);
    let scaling = match kind.to_ascii_lowercase().as_str() {
        "default" | "none" => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor: factor()? },
        "dynamic" => RopeScaling::Dynamic {
            factor: factor()?,
            original_ctx: trained,
        },
        "yarn" => {
            let factor = factor()?;
            RopeScaling::Yarn {
                factor,
                original_ctx: trained,
                beta_fast: r.opt_positive("beta_fast")?.unwrap_or(32.0),
                beta_slow: r.opt_positive("beta_slow")?.unwrap_or(1.0),
                attn_factor: yarn_attn_factor(&r, factor)?,
            }
        }
        "llama3" => {
            let params = Llama3Params {
                factor: factor()?,
                low_freq_factor: r.opt_positive("low_freq_factor")?.unwrap_or(1.0),
                high_freq_factor: r.opt_positive("high_freq_factor")?.unwrap_or(4.0),
                original_ctx: original.unwrap_or(8192),
            };
            if params.high_freq_factor <= params.low_freq_factor {
                return Err(bad(format!(
                    "llama3 rope_scaling needs high_freq_factor ({}) above low_freq_factor ({})",
                    params.high_freq_factor, params.low_freq_factor
                )));
            }
            RopeScaling::FreqFactors {
                factors: params.divisors(c.rope_theta, c.head_dim),
                origin: "llama3 rope_scaling of config.json".into(),
            }
        }
        other => {
            return Err(bad(format!(
                "rope_scaling type '{other}' is not supported (linear, dynamic, yarn, llama3)"
            )))
        }
    };
    let trained_ctx = match &scaling {
        RopeScaling::FreqFactors { .. } => original.unwrap_or(8192),
        _ => trained,
    };
    Ok(RopeConfig {
        dims: c.head_dim,
        freq_base: c.rope_theta,
        scaling,
        trained_ctx,
        ntk_alpha: None,
    })
}

/// transformers' YaRN attention factor replaces the default 0.1 ln(s) + 1, while GGUF's
/// `attn_factor` multiplies it (llama.cpp and ropewalk alike): divide it out.
fn yarn_attn_factor(r: &Reader, factor: f64) -> Result<f64, ConvertError> {
    let mscale = |s: f64, m: f64| {
        if s <= 1.0 {
            1.0
        } else {
            0.1 * m * s.ln() + 1.0
        }
    };
    let default = mscale(factor, 1.0);
    let hf = match (
        r.opt_positive("attention_factor")?,
        r.opt_positive("mscale")?,
        r.opt_positive("mscale_all_dim")?,
    ) {
        (Some(a), _, _) => a,
        (None, Some(m), Some(all)) => mscale(factor, m) / mscale(factor, all),
        _ => return Ok(1.0),
    };
    Ok(hf / default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(extra: Json) -> HfConfig {
        let mut j = json!({
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
            "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
            "max_position_embeddings": 8192, "rope_theta": 100000.0,
        });
        for (k, v) in extra.as_object().unwrap() {
            j[k] = v.clone();
        }
        HfConfig::from_json(&j).unwrap()
    }

    fn keys_of(plan: &RopePlan) -> Metadata {
        let mut m = Metadata::new();
        plan.write_keys(&mut m);
        m
    }

    #[test]
    fn plain_rope_writes_no_scaling() {
        let plan = RopePlan::new(&config(json!({})), &RopeOverrides::default(), None).unwrap();
        let m = keys_of(&plan);
        assert_eq!(m.get_u32("llama.context_length").unwrap(), 8192);
        assert_eq!(m.get_f32("llama.rope.freq_base").unwrap(), 100000.0);
        assert_eq!(m.get_str("llama.rope.scaling.type").unwrap(), "none");
        assert!(!m.contains("llama.rope.scaling.original_context_length"));
        assert_eq!(plan.freq_factors(), None);
    }

    #[test]
    fn compress_pos_emb_stretches_the_context() {
        let o = RopeOverrides {
            scaling: Some(ScalingKind::Linear),
            scale: Some(4.0),
            ..Default::default()
        };
        let m = keys_of(&RopePlan::new(&config(json!({})), &o, None).unwrap());
        assert_eq!(m.get_str("llama.rope.scaling.type").unwrap(), "linear");
        assert_eq!(m.get_f32("llama.rope.scaling.factor").unwrap(), 4.0);
        assert_eq!(m.get_u32("llama.context_length").unwrap(), 32768);
        assert_eq!(
            m.get_u32("llama.rope.scaling.original_context_length")
                .unwrap(),
            8192
        );
    }

    #[test]
    fn alpha_is_folded_into_the_base() {
        let o = RopeOverrides {
            alpha: Some(4.0),
            ..Default::default()
        };
        let m = keys_of(&RopePlan::new(&config(json!({})), &o, Some(16384)).unwrap());
        assert_eq!(m.get_f32("llama.rope.freq_base").unwrap(), 418293.66f32);
        assert_eq!(m.get_f32("ropewalk.rope.ntk_alpha").unwrap(), 4.0);
        assert_eq!(m.get_u32("llama.context_length").unwrap(), 16384);
        assert_eq!(
            m.get_u32("llama.rope.scaling.original_context_length")
                .unwrap(),
            8192
        );
    }

    #[test]
    fn yarn_from_config() {
        let c = config(json!({"rope_scaling": {"rope_type": "yarn", "factor": 4.0,
            "original_max_position_embeddings": 4096}}));
        let m = keys_of(&RopePlan::new(&c, &RopeOverrides::default(), None).unwrap());
        assert_eq!(m.get_str("llama.rope.scaling.type").unwrap(), "yarn");
        assert_eq!(
            m.get_u32("llama.rope.scaling.original_context_length")
                .unwrap(),
            4096
        );
        assert_eq!(m.get_u32("llama.context_length").unwrap(), 8192);
        assert_eq!(m.get_f32("llama.rope.scaling.attn_factor").unwrap(), 1.0);
        assert_eq!(
            m.get_f32("llama.rope.scaling.yarn_beta_fast").unwrap(),
            32.0
        );
    }

    #[test]
    fn dynamic_uses_our_namespace() {
        let c = config(json!({"rope_scaling": {"type": "dynamic", "factor": 2.0}}));
        let m = keys_of(&RopePlan::new(&c, &RopeOverrides::default(), None).unwrap());
        assert_eq!(m.get_str("llama.rope.scaling.type").unwrap(), "none");
        assert_eq!(m.get_str("ropewalk.rope.scaling.type").unwrap(), "dynamic");
        assert_eq!(m.get_f32("ropewalk.rope.scaling.factor").unwrap(), 2.0);
        assert_eq!(
            m.get_u32("llama.rope.scaling.original_context_length")
                .unwrap(),
            8192
        );
    }

    #[test]
    fn llama3_divisors_match_transformers() {
        // Llama 3.1's parameters; head dim 128, theta 500000.
        let mut j = json!({
            "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
            "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
            "rope_theta": 500000.0,
        });
        j["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let c = HfConfig::from_json(&j).unwrap();
        let plan = RopePlan::new(&c, &RopeOverrides::default(), None).unwrap();
        let f = plan.freq_factors().unwrap();
        assert_eq!(f.len(), 64);
        // Short wavelengths are kept, long ones divided by the factor, a blend between.
        assert_eq!(&f[..20], &[1.0; 20]);
        assert_eq!(&f[50..], &[8.0; 14]);
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
        assert!(f[32] > 1.0 && f[32] < 8.0, "{}", f[32]);
        let m = keys_of(&plan);
        assert_eq!(m.get_str("llama.rope.scaling.type").unwrap(), "none");
        assert!(!m.contains("ropewalk.rope.scaling.type"));
        assert_eq!(m.get_u32("llama.context_length").unwrap(), 131072);
    }

    #[test]
    fn transformers_attention_factor_is_made_relative() {
        let c = config(json!({"rope_scaling": {"rope_type": "yarn", "factor": 4.0,
            "attention_factor": 1.0}}));
        let plan = RopePlan::new(&c, &RopeOverrides::default(), None).unwrap();
        let RopeScaling::Yarn { attn_factor, .. } = plan.rope.scaling else {
            panic!()
        };
        assert!((attn_factor * (0.1 * 4f64.ln() + 1.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_scaling_is_refused() {
        let c = HfConfig::from_json(&json!({
            "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10,
            "max_position_embeddings": 64, "rope_scaling": {"rope_type": "longrope", "factor": 2.0}
        }))
        .unwrap();
        let e = RopePlan::new(&c, &RopeOverrides::default(), None).unwrap_err();
        assert!(e.to_string().contains("'longrope' is not supported"), "{e}");
        let c = config(json!({"rope_scaling": {"rope_type": "linear"}}));
        let e = RopePlan::new(&c, &RopeOverrides::default(), None).unwrap_err();
        assert!(e.to_string().contains("has no 'factor'"), "{e}");
    }
}
