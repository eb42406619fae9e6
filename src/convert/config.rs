//! A Hugging Face `config.json` of a Llama-family model: the shape, the norm epsilon and
//! the RoPE parameters, each checked and named in the error when missing or wrong.

use std::path::Path;

use serde_json::{Map, Value as Json};

use super::error::ConvertError;
use super::files;

/// The architectures ropewalk converts: both are the llama graph in GGUF.
pub const ARCHITECTURES: [&str; 2] = ["LlamaForCausalLM", "MistralForCausalLM"];

/// Bounds far past any real model that keep a hostile config from asking for absurd
/// allocations or overflowing the arithmetic of shapes.
const MAX_DIM: u64 = 1 << 20;
const MAX_LAYERS: u64 = 4096;
const MAX_VOCAB: u64 = 1 << 24;

#[derive(Clone, Debug, PartialEq)]
pub struct HfConfig {
    pub architecture: String,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub tie_word_embeddings: bool,
    /// `rope_scaling` (or transformers 5's `rope_parameters`), when it is an object.
    pub rope_scaling: Option<Map<String, Json>>,
    /// A top-level `original_max_position_embeddings`, which some configs carry instead
    /// of one inside `rope_scaling`.
    pub original_max_position_embeddings: Option<usize>,
    /// `_name_or_path`, when the config has one.
    pub name: Option<String>,
}

pub const FILE: &str = "config.json";

impl HfConfig {
    pub fn read(model_dir: &Path) -> Result<HfConfig, ConvertError> {
        let path = model_dir.join(FILE);
        let text = files::read_bounded(&path, files::MAX_JSON_BYTES)?;
        let json: Json = serde_json::from_slice(&text).map_err(|e| ConvertError::json(&path, e))?;
        HfConfig::from_json(&json)
    }

    pub fn from_json(json: &Json) -> Result<HfConfig, ConvertError> {
        let obj = json
            .as_object()
            .ok_or_else(|| ConvertError::invalid(FILE, "not a JSON object"))?;
        let c = Reader { obj };

        let architecture = match obj.get("architectures") {
            None => return Err(ConvertError::missing_key(FILE, "architectures")),
            Some(Json::Array(a)) => match a.as_slice() {
                [Json::String(s)] => s.clone(),
                _ => {
                    return Err(ConvertError::invalid(
                        FILE,
                        format!(
                            "'architectures' must name one architecture, found {json}",
                            json = Json::Array(a.clone())
                        ),
                    ))
                }
            },
            Some(other) => {
                return Err(ConvertError::invalid(
                    FILE,
                    format!("'architectures' must be a list, found {other}"),
                ))
            }
        };
        if !ARCHITECTURES.contains(&architecture.as_str()) {
            return Err(ConvertError::UnsupportedArchitecture(architecture));
        }

        let hidden_size = c.dim("hidden_size")?;
        let n_heads = c.dim("num_attention_heads")?;
        let n_kv_heads = c.dim_or("num_key_value_heads", n_heads)?;
        let head_dim = match c.opt_dim("head_dim")? {
            Some(d) => d,
            None if hidden_size % n_heads == 0 => hidden_size / n_heads,
            None => {
                return Err(ConvertError::invalid(
                    FILE,
                    format!(
                    "num_attention_heads = {n_heads} does not divide hidden_size = {hidden_size}"
                ),
                ))
            }
        };
        if n_heads % n_kv_heads != 0 {
            return Err(ConvertError::invalid(
                FILE,
                format!("num_key_value_heads = {n_kv_heads} does not divide num_attention_heads = {n_heads}"),
            ));
        }
        if head_dim % 2 != 0 || head_dim < 2 {
            return Err(ConvertError::invalid(
                FILE,
                format!("head dimension {head_dim} must be even for RoPE"),
            ));
        }
        let n_layers = c.int("num_hidden_layers", MAX_LAYERS)?;
        let vocab_size = c.int("vocab_size", MAX_VOCAB)?;
        let max_position_embeddings = c.int("max_position_embeddings", u32::MAX.into())?;

        for flag in ["attention_bias", "mlp_bias"] {
            if obj.get(flag) == Some(&Json::Bool(true)) {
                return Err(ConvertError::invalid(
                    FILE,
                    format!("{flag} = true: llama models with bias tensors are not supported"),
                ));
            }
        }
        if let Some(act) = obj.get("hidden_act") {
            if act != "silu" {
                return Err(ConvertError::invalid(
                    FILE,
                    format!("hidden_act = {act}: the llama graph uses silu"),
                ));
            }
        }

        // transformers 5 moved rope_theta into rope_parameters; older configs have both
        // keys at the top level.
        let (rope_scaling, rope_theta) = match obj.get("rope_parameters") {
            Some(Json::Object(p)) => {
                let theta = match p.get("rope_theta") {
                    Some(_) => Reader { obj: p }.positive("rope_theta")?,
                    None => c.positive_or("rope_theta", 10000.0)?,
                };
                (Some(p.clone()), theta)
            }
            _ => {
                let scaling = match obj.get("rope_scaling") {
                    None | Some(Json::Null) => None,
                    Some(Json::Object(s)) => Some(s.clone()),
                    Some(other) => {
                        return Err(ConvertError::invalid(
                            FILE,
                            format!("'rope_scaling' must be an object or null, found {other}"),
                        ))
                    }
                };
                (scaling, c.positive_or("rope_theta", 10000.0)?)
            }
        };

        Ok(HfConfig {
            architecture,
            hidden_size,
            intermediate_size: c.dim("intermediate_size")?,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            vocab_size,
            max_position_embeddings,
            // transformers' LlamaConfig default.
            rms_norm_eps: c.positive_or("rms_norm_eps", 1e-6)?,
            rope_theta,
            tie_word_embeddings: match obj.get("tie_word_embeddings") {
                None | Some(Json::Null) => false,
                Some(Json::Bool(b)) => *b,
                Some(other) => {
                    return Err(ConvertError::invalid(
                        FILE,
                        format!("'tie_word_embeddings' must be true or false, found {other}"),
                    ))
                }
            },
            rope_scaling,
            original_max_position_embeddings: c
                .opt_int("original_max_position_embeddings", u32::MAX.into())?,
            name: obj
                .get("_name_or_path")
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        })
    }

    /// Rows of q_proj: every head's query.
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// Rows of k_proj and v_proj.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }
}

/// Typed lookups in a JSON object whose errors name the key.
pub(crate) struct Reader<'a> {
    pub obj: &'a Map<String, Json>,
}

impl Reader<'_> {
    pub fn opt_int(&self, key: &str, max: u64) -> Result<Option<usize>, ConvertError> {
        match self.obj.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if (1..=max).contains(&n) => Ok(Some(n as usize)),
                _ => Err(ConvertError::invalid(
                    FILE,
                    format!("'{key}' = {v} must be an integer from 1 to {max}"),
                )),
            },
        }
    }

    pub fn int(&self, key: &str, max: u64) -> Result<usize, ConvertError> {
        self.opt_int(key, max)?
            .ok_or_else(|| ConvertError::missing_key(FILE, key))
    }

    fn opt_dim(&self, key: &str) -> Result<Option<usize>, ConvertError> {
        self.opt_int(key, MAX_DIM)
    }

    fn dim(&self, key: &str) -> Result<usize, ConvertError> {
        self.int(key, MAX_DIM)
    }

    fn dim_or(&self, key: &str, default: usize) -> Result<usize, ConvertError> {
        Ok(self.opt_dim(key)?.unwrap_or(default))
    }

    pub fn opt_positive(&self, key: &str) -> Result<Option<f64>, ConvertError> {
        match self.obj.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && x > 0.0 => Ok(Some(x)),
                _ => Err(ConvertError::invalid(
                    FILE,
                    format!("'{key}' = {v} must be a positive number"),
                )),
            },
        }
    }

    pub fn positive(&self, key: &str) -> Result<f64, ConvertError> {
        self.opt_positive(key)?
            .ok_or_else(|| ConvertError::missing_key(FILE, key))
    }

    fn positive_or(&self, key: &str, default: f64) -> Result<f64, ConvertError> {
        Ok(self.opt_positive(key)?.unwrap_or(default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Json {
        json!({
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300,
            "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        })
    }

    #[test]
    fn reads_a_llama_config() {
        let c = HfConfig::from_json(&base()).unwrap();
        assert_eq!((c.head_dim, c.q_dim(), c.kv_dim()), (16, 64, 32));
        assert!(!c.tie_word_embeddings);
        assert_eq!(c.rope_scaling, None);
    }

    #[test]
    fn errors_name_the_key() {
        let mut j = base();
        j.as_object_mut().unwrap().remove("hidden_size");
        let e = HfConfig::from_json(&j).unwrap_err().to_string();
        assert_eq!(e, "config.json: key 'hidden_size' is missing");

        let mut j = base();
        j["architectures"] = json!(["GPT2LMHeadModel"]);
        let e = HfConfig::from_json(&j).unwrap_err().to_string();
        assert!(e.contains("'GPT2LMHeadModel' is not supported"), "{e}");

        let mut j = base();
        j["num_key_value_heads"] = json!(3);
        let e = HfConfig::from_json(&j).unwrap_err().to_string();
        assert!(e.contains("num_key_value_heads = 3"), "{e}");

        let mut j = base();
        j["vocab_size"] = json!(-5);
        let e = HfConfig::from_json(&j).unwrap_err().to_string();
        assert!(e.contains("'vocab_size' = -5"), "{e}");
    }

    #[test]
    fn rope_parameters_of_transformers_5() {
        let mut j = base();
        j.as_object_mut().unwrap().remove("rope_theta");
        j["rope_parameters"] = json!({"rope_type": "default", "rope_theta": 500000.0});
        let c = HfConfig::from_json(&j).unwrap();
        assert_eq!(c.rope_theta, 500000.0);
    }
}
