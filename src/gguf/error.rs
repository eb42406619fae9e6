//! Errors of the GGUF reader and writer: one line each, naming the key, tensor or offset.

use super::value::ValueType;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not a GGUF file: it starts with \"{}\", not \"GGUF\"", found.escape_ascii())]
    BadMagic { found: [u8; 4] },
    #[error("GGUF version {0} is not supported (ropewalk reads versions 2 and 3)")]
    UnsupportedVersion(u32),
    #[error(
        "truncated file: {what} needs {need} bytes at offset {offset}, but the file ends at {len}"
    )]
    Truncated {
        what: String,
        offset: u64,
        need: u64,
        len: u64,
    },
    #[error("invalid GGUF file: {0}")]
    Invalid(String),
    #[error("metadata key '{0}' is missing")]
    MissingKey(String),
    #[error("metadata key '{key}' has type {found}, expected {expected}")]
    KeyType {
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error("metadata key '{key}' = {value} does not fit in {expected}")]
    KeyRange {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("tensor '{0}' is missing")]
    MissingTensor(String),
    #[error("cannot write GGUF: {0}")]
    Write(String),
}

impl GgufError {
    pub(crate) fn invalid(msg: impl Into<String>) -> GgufError {
        GgufError::Invalid(msg.into())
    }

    pub(crate) fn key_type(key: &str, expected: &'static str, found: ValueType) -> GgufError {
        GgufError::KeyType {
            key: key.to_string(),
            expected,
            found: found.name().to_string(),
        }
    }
}

pub type Result<T, E = GgufError> = std::result::Result<T, E>;
