//! The CPU backend: matrix products on quantized weights and the f32 operations between.

pub mod attention;
pub mod matmul;
pub mod ops;
pub mod split;
pub mod team;
