//! Where the layers run.

pub mod cpu;
pub mod wgpu;
