//! ropewalk: a GGUF-family LLM inference engine for machines without CUDA.

pub mod atomic_file;
pub mod backend;
pub mod convert;
pub mod generate;
pub mod gguf;
pub mod model;
pub mod perplexity;
pub mod quant;
pub mod regular_file;
pub mod sample;
pub mod tokenizer;
