//! Errors of the converter: one line each, naming the file, key, tensor or flag at fault.

use crate::gguf::GgufError;
use crate::quant::QuantError;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{file}: key '{key}' is missing")]
    MissingKey { file: String, key: String },
    /// A file whose content is wrong: a bad value, a shape, a header bound.
    #[error("{file}: {msg}")]
    Invalid { file: String, msg: String },
    #[error(
        "architecture '{0}' is not supported (ropewalk converts LlamaForCausalLM and MistralForCausalLM)"
    )]
    UnsupportedArchitecture(String),
    /// A header that passed every check on the way but that the loader would refuse.
    #[error("the converted file would not load: {0}")]
    Unloadable(String),
    /// A command-line choice that cannot be honoured.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Quant(#[from] QuantError),
}

impl ConvertError {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> ConvertError {
        ConvertError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub fn json(path: impl AsRef<std::path::Path>, source: serde_json::Error) -> ConvertError {
        ConvertError::Json {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub fn missing_key(file: impl Into<String>, key: impl Into<String>) -> ConvertError {
        ConvertError::MissingKey {
            file: file.into(),
            key: key.into(),
        }
    }

    pub fn invalid(file: impl Into<String>, msg: impl Into<String>) -> ConvertError {
        ConvertError::Invalid {
            file: file.into(),
            msg: msg.into(),
        }
    }
}
