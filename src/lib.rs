//! ropewalk: a GGUF-family LLM inference engine for machines without CUDA.

pub mod atomic_file;
pub mod gguf;
pub mod quant;
