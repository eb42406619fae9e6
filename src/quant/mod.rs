//! Tensor types and their block encodings.

pub mod types;

pub use types::GgmlType;
