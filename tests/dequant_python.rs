//! Our dequantization against the Python `gguf` package's, bit for bit, on files that
//! llama.cpp wrote: the test model (Q4_1, Q8_0, F32) and a Q4_K_M file (Q4_K, Q6_K, Q5_0,
//! Q8_0, F32).

mod common;

use common::{oracle, sha256};
use ropewalk::gguf::GgufFile;
use ropewalk::quant::{self, GgmlType};
use serde_json::json;

/// Our dequantization of every tensor of `path` hashes like the Python package's.
fn assert_dequant_matches_python(path: &std::path::Path) -> Vec<GgmlType> {
    let py = oracle("dequant-hashes", path);
    let file = GgufFile::open(path).unwrap();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for view in file.tensor_views() {
        out.resize(view.info.n_elements() as usize, 0.0f32);
        quant::dequantize(view.ty(), view.data, &mut out).unwrap();
        let ours = sha256(bytemuck::cast_slice(&out));
        assert_eq!(
            py[view.name()],
            json!(ours),
            "dequantized {} ({})",
            view.name(),
            view.ty()
        );
        if !seen.contains(&view.ty()) {
            seen.push(view.ty());
        }
    }
    seen.sort();
    seen
}

#[test]
fn test_model_dequantizes_like_python() {
    let types = assert_dequant_matches_python(&common::test_model());
    assert_eq!(types, [GgmlType::F32, GgmlType::Q4_1, GgmlType::Q8_0]);
}

#[test]
fn kquant_model_dequantizes_like_python() {
    let types = assert_dequant_matches_python(&common::kquant_model());
    for ty in [GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_0] {
        assert!(types.contains(&ty), "the reference file has no {ty} tensor");
    }
}
