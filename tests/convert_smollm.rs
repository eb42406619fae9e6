//! The test model's Hugging Face folder (made from the GGUF by tools/make_hf_model.py:
//! dequantized, q/k rows put back in Hugging Face order) converted back to GGUF: the
//! tensors must be the original file's, which proves the q/k permutation on a real model,
//! and its Q4_1 must be the bytes llama.cpp wrote. Also `quantize` on files written by
//! other tools.

mod common;
mod convert_support;

use std::collections::BTreeMap;
use std::path::Path;

use convert_support::{assert_ok, ropewalk};
use ropewalk::gguf::{GgufFile, Value};
use ropewalk::quant::{self, GgmlType};

fn hf_folder() -> std::path::PathBuf {
    common::cached("hf/smollm2-f32/config.json")
        .parent()
        .unwrap()
        .to_path_buf()
}

fn convert(out: &Path, outtype: &str) {
    assert_ok(&ropewalk(&[
        "convert",
        hf_folder().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--outtype",
        outtype,
    ]));
}

/// Keys that describe the file rather than the model.
fn model_keys(f: &GgufFile) -> BTreeMap<String, Value> {
    f.metadata()
        .iter()
        .filter(|(k, _)| !k.starts_with("general."))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn f32_conversion_gives_back_the_original_tensors_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f32.gguf");
    convert(&out, "f32");
    let ours = GgufFile::open(&out).unwrap();
    let original = GgufFile::open(common::test_model()).unwrap();
    assert_eq!(ours.tensors().len(), original.tensors().len());
    for t in original.tensor_views() {
        let mine = ours.tensor(t.name()).unwrap();
        assert_eq!(mine.ty(), GgmlType::F32, "{}", t.name());
        assert_eq!(mine.dims(), t.dims(), "{}", t.name());
        let n = t.info.n_elements() as usize;
        let mut want = vec![0f32; n];
        quant::dequantize(t.ty(), t.data, &mut want).unwrap();
        let want: Vec<u8> = want.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert!(want == mine.data, "{} differs", t.name());
    }
    // Every model key is the original's (the tokenizer's included); ours adds the
    // explicit "no scaling".
    let mut want = model_keys(&original);
    want.insert(
        "llama.rope.scaling.type".into(),
        Value::String("none".into()),
    );
    assert_eq!(model_keys(&ours), want);
}

#[test]
fn q4_1_conversion_is_the_file_llama_cpp_wrote() {
    // The original is llama.cpp's Q4_1 (token embedding Q8_0, as llama.cpp gives a tied
    // output matrix): quantizing its dequantized values again must give its bytes.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q4_1.gguf");
    convert(&out, "q4_1");
    let ours = GgufFile::open(&out).unwrap();
    let original = GgufFile::open(common::test_model()).unwrap();
    for t in original.tensor_views() {
        let mine = ours.tensor(t.name()).unwrap();
        assert_eq!(mine.ty(), t.ty(), "{}", t.name());
        assert!(mine.data == t.data, "{} differs", t.name());
    }
    assert_eq!(ours.metadata().get_u32("general.file_type").unwrap(), 3);
}

#[test]
fn quantized_types_are_the_bytes_llama_quantize_writes() {
    // tests/data/convert/llama_quantize.json: llama.cpp's llama-quantize output for the
    // same model, tensor by tensor (tools/make_convert_fixtures.sh).
    let path = common::root().join("tests/data/convert/llama_quantize.json");
    let fixture: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (outtype, tensors) in fixture["tensors"].as_object().unwrap() {
        let out = tmp.path().join(format!("{outtype}.gguf"));
        convert(&out, outtype);
        let ours = GgufFile::open(&out).unwrap();
        let tensors = tensors.as_array().unwrap();
        assert_eq!(tensors.len(), ours.tensors().len());
        for t in tensors {
            let name = t[0].as_str().unwrap();
            let view = ours.tensor(name).unwrap();
            assert_eq!(
                u64::from(view.ty().id()),
                t[1].as_u64().unwrap(),
                "{outtype}: {name}"
            );
            assert_eq!(
                common::sha256(view.data),
                t[2].as_str().unwrap(),
                "{outtype}: {name}"
            );
        }
        if outtype == "q4_k_m" {
            // 30 layers, use_more_bits for 14. Rows of 576 cannot hold 256-blocks: Q4_K
            // falls back to Q5_0 and Q6_K to Q8_0; ffn_down's rows of 1536 can.
            let mut by_type: BTreeMap<GgmlType, usize> = BTreeMap::new();
            for t in ours.tensors() {
                *by_type.entry(t.ty).or_default() += 1;
            }
            use GgmlType::*;
            let want = BTreeMap::from([(F32, 61), (Q5_0, 166), (Q8_0, 15), (Q4_K, 16), (Q6_K, 14)]);
            assert_eq!(by_type, want);
        }
    }
}

#[test]
fn quantize_keeps_the_metadata_of_files_others_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    for (input, ty, file_type) in [
        (common::test_model(), "q8_0", 7),
        (common::kquant_model(), "q4_0", 2),
    ] {
        let out = tmp.path().join(format!("{ty}.gguf"));
        assert_ok(&ropewalk(&[
            "quantize",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "--type",
            ty,
        ]));
        let before = GgufFile::open(&input).unwrap();
        let after = GgufFile::open(&out).unwrap();
        let keys = |f: &GgufFile| -> Vec<(String, Value)> {
            f.metadata()
                .iter()
                .filter(|(k, _)| *k != "general.file_type" && *k != "general.quantization_version")
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        assert_eq!(keys(&before), keys(&after), "{}", input.display());
        assert_eq!(
            after.metadata().get_u32("general.file_type").unwrap(),
            file_type
        );
        for (a, b) in before.tensors().iter().zip(after.tensors()) {
            assert_eq!((&a.name, &a.dims), (&b.name, &b.dims));
            if a.dims.len() == 1 {
                assert_eq!(a.ty, b.ty, "{}: vectors keep their type", a.name);
            }
        }
        // The independent reader agrees on every tensor's bytes.
        let d = common::oracle("describe", &out);
        for (t, view) in d["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .zip(after.tensor_views())
        {
            assert_eq!(t["sha256"], common::sha256(view.data), "{}", view.name());
        }
    }
}
