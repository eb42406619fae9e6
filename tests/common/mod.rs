//! Shared by the integration tests: where the fixtures live and how to ask the Python
//! `gguf` package (the independent implementation) about a file.
#![allow(dead_code)]

pub mod cli;
pub mod gpu;
pub mod hf;

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file made by `tools/setup.sh`; a missing one fails the test with what to run.
pub fn cached(rel: &str) -> PathBuf {
    let p = root().join(".cache").join(rel);
    assert!(
        p.exists(),
        "{} is missing: run tools/setup.sh first (it fetches the test models and the Python oracle)",
        p.display()
    );
    p
}

pub fn test_model() -> PathBuf {
    cached("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

pub fn kquant_model() -> PathBuf {
    cached("models/gemma-3-270m-q4_k_m.gguf")
}

/// Runs `tools/gguf_oracle.py CMD FILE` and parses its JSON output (if any).
pub fn oracle(cmd: &str, file: &Path) -> serde_json::Value {
    let python = cached("venv/bin/python");
    let out = Command::new(python)
        .arg(root().join("tools/gguf_oracle.py"))
        .arg(cmd)
        .arg(file)
        .output()
        .expect("run the Python oracle");
    assert!(
        out.status.success(),
        "gguf_oracle.py {cmd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&out.stdout).expect("oracle prints JSON")
}

/// A small deterministic generator (xorshift64*), so tests need no RNG crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
