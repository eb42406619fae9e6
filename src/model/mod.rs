//! Llama-family models: hyper-parameters, weights, RoPE, the KV cache and the forward pass.

pub mod config;
pub mod kv_cache;
pub mod llama;
pub mod rope;
pub mod rope_source;
pub mod weights;

pub use config::{LlamaConfig, ModelError};
pub use llama::{Llama, Logits, Session};
pub use rope::{RopeConfig, RopeScaling};
pub use rope_source::{RopeOverrides, ScalingKind};
