//! Layers on a GPU through wgpu (Vulkan, Metal, DX12): the device, the shaders'
//! pipelines, the weights in GPU-friendly layouts, and the offloaded part of the forward
//! pass.
//!
//! The last layers of the model run here (llama.cpp's `--gpu-layers`), so a step crosses
//! between CPU and GPU once: the residual stream goes up after the CPU's layers, and the
//! logits (or the residual stream, when the output layer stays on the CPU) come back.
//! Each step's GPU work is one command submission.

mod attention;
pub mod bandwidth;
mod context;
pub mod fold;
mod footprint;
mod inputs;
mod kernel;
mod layer;
pub mod ops;
mod pipelines;
pub mod profile;
mod segment;
pub mod shortlist;
mod step_buffers;
pub mod upload;

pub use context::{adapters, AdapterSummary, Gpu, GpuChoice};
pub use footprint::Footprint;
pub use pipelines::source as shader_source;
pub use segment::{GpuSegment, Offload, Out, SegmentSpec};

/// What can go wrong on the GPU side.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found (wgpu sees no Vulkan, Metal or DX12 device)")]
    NoAdapter,
    #[error(
        "no GPU adapter, only the software renderer {0}, which is slower than the CPU path \
         (--gpu-device names it to offload to it anyway)"
    )]
    OnlySoftware(String),
    #[error("no GPU adapter matches '{0}' (see `ropewalk devices`)")]
    NoMatch(String),
    #[error("cannot open {name}: {reason}")]
    Device { name: String, reason: String },
    #[error("out of GPU memory while {0}")]
    OutOfMemory(String),
    #[error("GPU error while {0}")]
    Validation(String),
    #[error("cannot offload: {0}")]
    Unsupported(String),
    #[error("the GPU stopped answering: {0}")]
    Lost(String),
}

pub type Result<T> = std::result::Result<T, GpuError>;
