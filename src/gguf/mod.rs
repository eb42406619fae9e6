//! GGUF v3: the file format of ropewalk and of the ggml family.
//!
//! Layout (little-endian): magic `GGUF`, u32 version, u64 tensor count, u64 metadata
//! count, the key-values, the tensor infos, zero padding to `general.alignment`, then the
//! tensor data, each tensor at an aligned offset relative to the start of the data.

mod cursor;
mod error;
pub mod keys;
mod metadata;
mod read;
mod value;
mod write;

pub use error::{GgufError, Result};
pub use metadata::Metadata;
pub use read::{GgufFile, Header, TensorInfo, TensorView};
pub use value::{Array, Summary, Value, ValueType};
pub use write::{GgufWriter, TensorSink, TensorSpec};

pub const MAGIC: &[u8; 4] = b"GGUF";
/// The version ropewalk writes; versions 2 and 3 share one layout and both are read.
pub const VERSION: u32 = 3;
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most four dimensions.
pub const MAX_DIMS: usize = 4;
