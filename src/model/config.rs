//! Hyper-parameters of a Llama-family model, read from GGUF metadata.

use crate::gguf::{keys, GgufError, Metadata};
use crate::model::kv_cache::CacheShape;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("architecture '{0}' is not supported (ropewalk runs llama)")]
    Architecture(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Gpu(#[from] crate::backend::wgpu::GpuError),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// The shape of a Llama model and the settings of its layers.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub n_vocab: usize,
    /// Width of the residual stream.
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// Fewer than `n_heads` means grouped-query attention.
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn_dim: usize,
    pub rms_eps: f32,
    /// The context the model was trained for.
    pub context_length: usize,
    /// Dimensions of each head that RoPE rotates (all of them for Llama).
    pub rope_dims: usize,
    pub rope_freq_base: f64,
}

impl LlamaConfig {
    pub fn from_metadata(m: &Metadata) -> Result<LlamaConfig> {
        let arch = m.get_str(keys::GENERAL_ARCHITECTURE)?;
        if arch != "llama" {
            return Err(ModelError::Architecture(arch.to_string()));
        }
        let key = |suffix| keys::arch_key(arch, suffix);
        let dim = m.get_usize(&key(keys::EMBEDDING_LENGTH))?;
        let n_heads = m.get_usize(&key(keys::HEAD_COUNT))?;
        let n_kv_heads = m
            .get_usize_opt(&key(keys::HEAD_COUNT_KV))?
            .unwrap_or(n_heads);
        if n_heads == 0 || dim % n_heads != 0 {
            return Err(ModelError::Invalid(format!(
                "{} = {n_heads} does not divide {} = {dim}",
                key(keys::HEAD_COUNT),
                key(keys::EMBEDDING_LENGTH)
            )));
        }
        if n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(ModelError::Invalid(format!(
                "{} = {n_kv_heads} does not divide the {n_heads} attention heads",
                key(keys::HEAD_COUNT_KV)
            )));
        }
        let head_dim = dim / n_heads;
        let rope_dims = m
            .get_usize_opt(&key(keys::ROPE_DIMENSION_COUNT))?
            .unwrap_or(head_dim);
        if rope_dims != head_dim {
            return Err(ModelError::Invalid(format!(
                "{} = {rope_dims}: partial rotary embeddings are not supported (head dimension {head_dim})",
                key(keys::ROPE_DIMENSION_COUNT)
            )));
        }
        let n_vocab = match m.get_usize_opt(&key(keys::VOCAB_SIZE))? {
            Some(n) => n,
            None => m.get_str_array(keys::TOKENIZER_TOKENS)?.len(),
        };
        let config = LlamaConfig {
            n_vocab,
            dim,
            n_layers: m.get_usize(&key(keys::BLOCK_COUNT))?,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_dim: m.get_usize(&key(keys::FEED_FORWARD_LENGTH))?,
            rms_eps: m.get_f32_opt(&key(keys::RMS_EPS))?.unwrap_or(1e-5),
            context_length: m.get_usize(&key(keys::CONTEXT_LENGTH))?,
            rope_dims,
            rope_freq_base: m
                .get_f64_opt(&key(keys::ROPE_FREQ_BASE))?
                .unwrap_or(10000.0),
        };
        if !config.head_dim.is_multiple_of(2) || config.n_layers == 0 || config.ffn_dim == 0 {
            return Err(ModelError::Invalid(format!(
                "implausible llama shape: {} layers, head dimension {}, feed-forward {}",
                config.n_layers, config.head_dim, config.ffn_dim
            )));
        }
        if config.context_length == 0 {
            return Err(ModelError::Invalid(format!(
                "{} is 0: a model runs over at least one position",
                key(keys::CONTEXT_LENGTH)
            )));
        }
        Ok(config)
    }

    /// Width of the keys and values of one position: `n_kv_heads * head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// The shape of a KV cache for `n_layers` of this model's layers.
    pub fn cache_shape(&self, n_layers: usize, n_ctx: usize) -> CacheShape {
        CacheShape {
            n_layers,
            n_ctx,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
        }
    }
}
