//! Shared by the `convert_*` tests: tiny Hugging Face models made by
//! tools/make_tiny_llama.py, the `ropewalk` binary, and the Hugging Face side of a
//! conversion read back independently of the converter.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ropewalk::quant::{self, GgmlType};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value as Json;

use super::common;

pub mod tokenizer_files;

// Each convert test uses its own subset.
#[allow(unused_imports)]
pub use super::common::cli::{assert_fails_alone as assert_fails, assert_ok, ropewalk, stderr};

/// A tiny two-shard model in a fresh temporary folder (`model/` inside it).
pub struct Tiny {
    pub tmp: tempfile::TempDir,
}

impl Tiny {
    pub fn new(dtype: &str, tied: bool) -> Tiny {
        let tmp = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(common::cached("venv/bin/python"));
        cmd.arg(common::root().join("tools/make_tiny_llama.py"))
            .arg(tmp.path().join("model"))
            .args(["--dtype", dtype]);
        if tied {
            cmd.arg("--tied");
        }
        let out = cmd.output().expect("run make_tiny_llama.py");
        assert!(
            out.status.success(),
            "make_tiny_llama.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tiny { tmp }
    }

    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("model")
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Converts to `out` with `--outtype` and extra flags.
    pub fn convert(&self, out: &Path, outtype: &str, extra: &[&str]) -> Output {
        let dir = self.dir();
        let mut args = vec![
            "convert",
            dir.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--outtype",
            outtype,
        ];
        args.extend_from_slice(extra);
        ropewalk(&args)
    }

    pub fn config(&self) -> Json {
        serde_json::from_slice(&fs::read(self.dir().join("config.json")).unwrap()).unwrap()
    }

    pub fn set_config(&self, config: &Json) {
        fs::write(self.dir().join("config.json"), config.to_string()).unwrap();
    }

    /// The files of the temporary folder besides the model: what a conversion left.
    pub fn outputs(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "model")
            .collect();
        names.sort();
        names
    }
}

/// A Hugging Face tensor of a model folder, read with the `safetensors` crate and
/// decoded to f32: (shape outermost first, values, stored type, stored bytes).
pub struct HfTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    pub ty: GgmlType,
    pub bytes: Vec<u8>,
}

pub fn hf_tensor(dir: &Path, name: &str) -> HfTensor {
    let index = dir.join("model.safetensors.index.json");
    let file = if index.exists() {
        let j: Json = serde_json::from_slice(&fs::read(index).unwrap()).unwrap();
        j["weight_map"][name].as_str().unwrap().to_string()
    } else {
        "model.safetensors".to_string()
    };
    let bytes = fs::read(dir.join(file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    let ty = match t.dtype() {
        Dtype::F32 => GgmlType::F32,
        Dtype::F16 => GgmlType::F16,
        Dtype::BF16 => GgmlType::BF16,
        other => panic!("{other:?}"),
    };
    let n: usize = t.shape().iter().product();
    let mut values = vec![0f32; n];
    quant::dequantize(ty, t.data(), &mut values).unwrap();
    HfTensor {
        shape: t.shape().to_vec(),
        values,
        ty,
        bytes: t.data().to_vec(),
    }
}

/// llama.cpp's q/k permutation written the numpy way, independently of the converter:
/// `w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2).reshape(out, in)` as the list of source
/// rows of the output rows.
pub fn numpy_permutation(n_head: usize, head_dim: usize) -> Vec<usize> {
    let mut rows = Vec::new();
    for h in 0..n_head {
        for p in 0..head_dim / 2 {
            for t in 0..2 {
                rows.push(h * head_dim + t * head_dim / 2 + p);
            }
        }
    }
    rows
}

/// The Hugging Face name of a GGUF tensor of a llama model.
pub fn hf_name(gguf: &str) -> String {
    let top = [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
    ];
    if let Some((_, hf)) = top.iter().find(|(g, _)| *g == gguf) {
        return hf.to_string();
    }
    let rest = gguf.strip_prefix("blk.").expect("a block tensor");
    let (layer, part) = rest.split_once('.').unwrap();
    let part = match part {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        other => panic!("{other}"),
    };
    format!("model.layers.{layer}.{part}")
}

/// Reorders whole rows of `row_len` values (or bytes): output row i is `src` row rows[i].
pub fn take_rows<T: Copy>(src: &[T], row_len: usize, rows: &[usize]) -> Vec<T> {
    rows.iter()
        .flat_map(|&r| src[r * row_len..(r + 1) * row_len].iter().copied())
        .collect()
}
