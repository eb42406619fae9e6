//! Shared by the tokenizer conversion tests: model folders written from parts, and the
//! keys `tokenizer_metadata` returns.

use std::path::Path;

use ropewalk::convert::tokenizer::tokenizer_metadata;
use ropewalk::gguf::{Array, Metadata, Value};
use serde_json::Value as Json;

pub type Keys = Vec<(String, Value)>;

pub fn metadata(keys: &Keys) -> Metadata {
    let mut m = Metadata::new();
    for (k, v) in keys {
        m.set(k.clone(), v.clone());
    }
    m
}

pub fn get<'a>(keys: &'a Keys, key: &str) -> Option<&'a Value> {
    keys.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

pub fn names(keys: &Keys) -> Vec<&str> {
    keys.iter().map(|(k, _)| k.as_str()).collect()
}

pub fn strs(v: &[&str]) -> Value {
    Value::Array(Array::String(v.iter().map(|s| s.to_string()).collect()))
}

pub fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

/// A model folder holding `files` (name, content).
pub fn folder(files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write fixture");
    }
    dir
}

pub fn json_file(name: &str, v: Json) -> (&str, Vec<u8>) {
    (name, serde_json::to_vec_pretty(&v).unwrap())
}

/// The error for a folder, checked to be one line.
pub fn error(dir: &Path, n_vocab: usize) -> String {
    match tokenizer_metadata(dir, n_vocab) {
        Ok(keys) => panic!("accepted: {:?}", names(&keys)),
        Err(e) => {
            let e = e.to_string();
            assert!(!e.contains('\n'), "error is not one line: {e}");
            e
        }
    }
}
