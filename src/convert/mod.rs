//! Hugging Face safetensors models to GGUF: config.json to llama keys, safetensors to
//! tensors (q/k rows permuted to the interleaved RoPE layout), tokenizer files to
//! `tokenizer.*` keys, and a quantization policy per tensor. Also requantization of any
//! GGUF file with the same policy.

pub mod config;
pub mod error;
pub mod files;
mod hf;
pub mod names;
mod pages;
pub mod permute;
pub mod policy;
mod requantize;
pub mod rope;
pub mod sentencepiece;
pub mod shards;
pub mod stream;
pub mod tokenizer;
mod tokenizer_json;

pub use error::ConvertError;
pub use hf::{convert, ConvertOptions, Written, QUANTIZATION_VERSION};
pub use permute::RowOrder;
pub use policy::OutType;
pub use requantize::requantize;
pub use stream::Progress;
