//! `ropewalk convert` and `ropewalk quantize` on tiny two-shard models: every output type,
//! every input dtype, the q/k permutation, tied embeddings, the RoPE keys, and the Python
//! `gguf` package reading the result.

mod common;
mod convert_support;

use std::collections::BTreeMap;
use std::f64::consts::PI;

use convert_support::{
    assert_ok, hf_name, hf_tensor, numpy_permutation, ropewalk, take_rows, Tiny,
};
use ropewalk::gguf::GgufFile;
use ropewalk::quant::{self, GgmlType};

const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 64;
const OUTTYPES: [&str; 8] = [
    "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_k_m", "q6_k",
];

/// The type each tensor of the tiny model (2 layers, rows of 256 and 512) must get,
/// written out from llama.cpp's rules rather than computed by the converter's code.
fn expected_type(outtype: &str, name: &str, tied: bool) -> GgmlType {
    use GgmlType::*;
    if name.contains("norm") {
        return F32;
    }
    let output = name == "output.weight" || (tied && name == "token_embd.weight");
    // use_more_bits(i, 2) holds for layer 1 only.
    let sensitive = name == "blk.1.attn_v.weight" || name == "blk.1.ffn_down.weight";
    match outtype {
        "f32" => F32,
        "f16" => F16,
        "bf16" => BF16,
        "q8_0" => Q8_0,
        "q4_0" if output => Q6_K,
        "q4_0" => Q4_0,
        "q4_1" if output => Q6_K,
        "q4_1" => Q4_1,
        "q4_k_m" if output || sensitive => Q6_K,
        "q4_k_m" => Q4_K,
        "q6_k" => Q6_K,
        other => panic!("{other}"),
    }
}

/// Every tensor of `file` must be its Hugging Face tensor, rows permuted for q and k,
/// converted to the expected type exactly as `quant::quantize` (ggml's reference
/// quantizers) converts it; same-type tensors must be the stored bytes.
fn check_file(tiny: &Tiny, file: &GgufFile, outtype: &str, tied: bool) {
    let names: Vec<&str> = file.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names.len(), 18 + 2 + usize::from(!tied), "{names:?}");
    assert_eq!(names.contains(&"output.weight"), !tied);
    for view in file.tensor_views() {
        let name = view.name();
        let hf = hf_tensor(&tiny.dir(), &hf_name(name));
        let want_dims: Vec<u64> = hf.shape.iter().rev().map(|&n| n as u64).collect();
        assert_eq!(view.dims(), want_dims, "{name}");
        assert_eq!(view.ty(), expected_type(outtype, name, tied), "{name}");
        let row_len = *hf.shape.last().unwrap();
        let rows: Vec<usize> = match name {
            n if n.ends_with("attn_q.weight") => numpy_permutation(HEADS, HEAD_DIM),
            n if n.ends_with("attn_k.weight") => numpy_permutation(KV_HEADS, HEAD_DIM),
            _ => (0..hf.values.len() / row_len).collect(),
        };
        let want = if view.ty() == hf.ty {
            let row_bytes = hf.bytes.len() / (hf.values.len() / row_len);
            take_rows(&hf.bytes, row_bytes, &rows)
        } else {
            let values = take_rows(&hf.values, row_len, &rows);
            let mut bytes = vec![0u8; view.data.len()];
            quant::quantize(view.ty(), &values, &mut bytes).unwrap();
            bytes
        };
        assert!(want == view.data, "{outtype}: {name} differs");
    }
}

#[test]
fn every_outtype_from_every_dtype() {
    for (dtype, tied) in [("f32", false), ("bf16", false), ("f16", true)] {
        let tiny = Tiny::new(dtype, tied);
        for outtype in OUTTYPES {
            let out = tiny.out(&format!("{outtype}.gguf"));
            assert_ok(&tiny.convert(&out, outtype, &[]));
            let file = GgufFile::open(&out).unwrap();
            let m = file.metadata();
            assert_eq!(m.get_str("general.architecture").unwrap(), "llama");
            let file_type = m.get_u32("general.file_type").unwrap();
            let want =
                [0, 1, 32, 7, 2, 3, 15, 18][OUTTYPES.iter().position(|&t| t == outtype).unwrap()];
            assert_eq!(file_type, want, "{outtype}");
            check_file(&tiny, &file, outtype, tied);
        }
    }
}

#[test]
fn unpermuting_q_and_k_recovers_the_hugging_face_rows() {
    let tiny = Tiny::new("f32", false);
    let out = tiny.out("f32.gguf");
    assert_ok(&tiny.convert(&out, "f32", &[]));
    let file = GgufFile::open(&out).unwrap();
    for (name, heads) in [("attn_q", HEADS), ("attn_k", KV_HEADS)] {
        for layer in 0..2 {
            let gguf = format!("blk.{layer}.{name}.weight");
            let view = file.tensor(&gguf).unwrap();
            let mut ours = vec![0f32; view.data.len() / 4];
            quant::dequantize(GgmlType::F32, view.data, &mut ours).unwrap();
            // The inverse permutation, as the reference README writes it:
            // w.reshape(n, hd/2, 2, in).swapaxes(1, 2).reshape(out, in).
            let mut inverse = Vec::new();
            for h in 0..heads {
                for t in 0..2 {
                    for p in 0..HEAD_DIM / 2 {
                        inverse.push(h * HEAD_DIM + 2 * p + t);
                    }
                }
            }
            let back = take_rows(&ours, 256, &inverse);
            let hf = hf_tensor(&tiny.dir(), &hf_name(&gguf));
            assert_eq!(back, hf.values, "{gguf}");
            assert_ne!(ours, hf.values, "{gguf}: the rows must have moved");
        }
    }
}

#[test]
fn quantize_gives_what_convert_gives() {
    for dtype in ["f32", "bf16"] {
        let tiny = Tiny::new(dtype, false);
        let float = tiny.out("float.gguf");
        assert_ok(&tiny.convert(&float, dtype, &[]));
        for ty in ["q4_k_m", "q4_0", "q8_0", "f16"] {
            let direct = tiny.out(&format!("direct_{ty}.gguf"));
            let requant = tiny.out(&format!("requant_{ty}.gguf"));
            assert_ok(&tiny.convert(&direct, ty, &[]));
            assert_ok(&ropewalk(&[
                "quantize",
                float.to_str().unwrap(),
                requant.to_str().unwrap(),
                "--type",
                ty,
            ]));
            assert!(
                std::fs::read(&direct).unwrap() == std::fs::read(&requant).unwrap(),
                "{dtype} -> {ty}: requantized file differs from the direct conversion"
            );
        }
    }
}

#[test]
fn python_gguf_reads_converted_files() {
    let tiny = Tiny::new("bf16", true);
    for outtype in ["q4_k_m", "bf16"] {
        let out = tiny.out(&format!("{outtype}.gguf"));
        assert_ok(&tiny.convert(&out, outtype, &["--compress-pos-emb", "2"]));
        let ours = GgufFile::open(&out).unwrap();
        let d = common::oracle("describe", &out);
        let fields: BTreeMap<String, serde_json::Value> = d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f[0].as_str().unwrap().to_string(), f[2].clone()))
            .collect();
        assert_eq!(fields["general.architecture"], "llama");
        assert_eq!(fields["llama.block_count"], 2);
        assert_eq!(fields["llama.rope.scaling.type"], "linear");
        assert_eq!(fields["llama.rope.scaling.factor"], 2.0);
        assert_eq!(fields["tokenizer.ggml.model"], "gpt2");
        assert_eq!(
            fields["tokenizer.ggml.tokens"].as_array().unwrap().len(),
            300
        );
        assert_eq!(fields.len(), ours.metadata().len());
        let tensors = d["tensors"].as_array().unwrap();
        assert_eq!(tensors.len(), ours.tensors().len());
        for (t, view) in tensors.iter().zip(ours.tensor_views()) {
            assert_eq!(t["name"], view.name());
            assert_eq!(t["type"], view.ty().id());
            assert_eq!(t["sha256"], common::sha256(view.data), "{}", view.name());
        }
    }
}

/// Flags, keys that must be there with these values, and the words of `info`.
type RopeCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

/// `ropewalk info`'s RoPE line.
fn rope_line(file: &std::path::Path) -> String {
    let o = ropewalk(&["info", file.to_str().unwrap()]);
    assert_ok(&o);
    let text = String::from_utf8(o.stdout).unwrap();
    text.lines()
        .find(|l| l.starts_with("rope: "))
        .unwrap_or_else(|| panic!("no rope line in {text}"))
        .to_string()
}

#[test]
fn rope_flags_become_keys_the_runtime_reads() {
    let tiny = Tiny::new("f32", false);
    let cases: &[RopeCase] = &[
        (
            &[],
            &[
                ("llama.rope.scaling.type", "none"),
                ("llama.context_length", "512"),
            ],
            "no scaling: trained 512",
        ),
        (
            &["--compress-pos-emb", "4"],
            &[
                ("llama.rope.scaling.type", "linear"),
                ("llama.rope.scaling.factor", "4"),
                ("llama.context_length", "2048"),
                ("llama.rope.scaling.original_context_length", "512"),
            ],
            "linear interpolation x4: trained 512, runs to 2048",
        ),
        (
            &["--alpha-value", "4"],
            // 10000 * 4^(64/62), rounded to f32.
            &[
                ("llama.rope.freq_base", "41829.367"),
                ("ropewalk.rope.ntk_alpha", "4"),
            ],
            "(NTK alpha 4), no scaling: trained 512",
        ),
        (
            &[
                "--rope-scaling",
                "yarn",
                "--rope-scale",
                "4",
                "--yarn-orig-ctx",
                "256",
            ],
            &[
                ("llama.rope.scaling.type", "yarn"),
                ("llama.rope.scaling.factor", "4"),
                ("llama.rope.scaling.original_context_length", "256"),
                ("llama.context_length", "1024"),
                ("llama.rope.scaling.yarn_beta_fast", "32"),
                ("llama.rope.scaling.yarn_beta_slow", "1"),
            ],
            "YaRN x4 (beta 32/1, mscale 1.13863): trained 256, runs to 1024",
        ),
        (
            &["--rope-scaling", "dynamic", "--rope-scale", "2"],
            &[
                ("llama.rope.scaling.type", "none"),
                ("ropewalk.rope.scaling.type", "dynamic"),
                ("ropewalk.rope.scaling.factor", "2"),
            ],
            "dynamic NTK x2: trained 512",
        ),
        (
            &["--ctx", "4096"],
            &[
                ("llama.context_length", "4096"),
                ("llama.rope.scaling.original_context_length", "512"),
            ],
            "no scaling: trained 512",
        ),
    ];
    for (flags, keys, words) in cases {
        let out = tiny.out("rope.gguf");
        let mut args = vec!["--force"];
        args.extend_from_slice(flags);
        assert_ok(&tiny.convert(&out, "q8_0", &args));
        let file = GgufFile::open(&out).unwrap();
        for (key, value) in *keys {
            let v = file
                .metadata()
                .get(key)
                .unwrap_or_else(|| panic!("{flags:?}: no {key}"));
            let shown = match v {
                ropewalk::gguf::Value::String(s) => s.clone(),
                ropewalk::gguf::Value::F32(x) => format!("{x}"),
                ropewalk::gguf::Value::U32(x) => format!("{x}"),
                other => panic!("{key}: {other:?}"),
            };
            assert_eq!(&shown, value, "{flags:?}: {key}");
        }
        let line = rope_line(&out);
        assert!(line.contains(words), "{flags:?}: {line}");
    }
}

/// Hugging Face's `_compute_llama3_parameters`, as divisors of each frequency.
fn llama3_divisors(base: f64, dims: usize, factor: f64, lf: f64, hf: f64, l: f64) -> Vec<f32> {
    (0..dims / 2)
        .map(|i| {
            let inv = 1.0 / base.powf(2.0 * i as f64 / dims as f64);
            let wavelen = 2.0 * PI / inv;
            let scaled = if wavelen < l / hf {
                inv
            } else if wavelen > l / lf {
                inv / factor
            } else {
                let s = (l / wavelen - lf) / (hf - lf);
                (1.0 - s) * inv / factor + s * inv
            };
            (inv / scaled) as f32
        })
        .collect()
}

#[test]
fn rope_scaling_of_config_json() {
    let tiny = Tiny::new("f32", false);
    let mut config = tiny.config();
    config["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0,
        "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64});
    tiny.set_config(&config);
    let out = tiny.out("llama3.gguf");
    assert_ok(&tiny.convert(&out, "q4_0", &[]));
    let file = GgufFile::open(&out).unwrap();
    let t = file.tensor("rope_freqs.weight").unwrap();
    assert_eq!((t.ty(), t.dims()), (GgmlType::F32, &[32u64][..]));
    let mut got = vec![0f32; 32];
    quant::dequantize(GgmlType::F32, t.data, &mut got).unwrap();
    let want = llama3_divisors(10000.0, 64, 8.0, 1.0, 4.0, 64.0);
    assert_eq!(got, want);
    assert!(got[0] == 1.0 && got[31] == 8.0 && got.iter().any(|&f| f > 1.0 && f < 8.0));
    assert_eq!(
        file.metadata().get_str("llama.rope.scaling.type").unwrap(),
        "none"
    );
    assert!(rope_line(&out).contains("per-frequency factors (rope_freqs.weight, up to x8)"));

    config["rope_scaling"] = serde_json::json!({"type": "yarn", "factor": 2.0,
        "original_max_position_embeddings": 256, "beta_fast": 16.0});
    tiny.set_config(&config);
    assert_ok(&tiny.convert(&out, "q4_0", &["--force"]));
    let file = GgufFile::open(&out).unwrap();
    let m = file.metadata();
    assert!(file.tensor("rope_freqs.weight").is_err());
    assert_eq!(m.get_str("llama.rope.scaling.type").unwrap(), "yarn");
    assert_eq!(m.get_f32("llama.rope.scaling.factor").unwrap(), 2.0);
    assert_eq!(
        m.get_f32("llama.rope.scaling.yarn_beta_fast").unwrap(),
        16.0
    );
    assert_eq!(
        m.get_u32("llama.rope.scaling.original_context_length")
            .unwrap(),
        256
    );
    assert_eq!(m.get_u32("llama.context_length").unwrap(), 512);

    // A flag replaces the config's scaling.
    assert_ok(&tiny.convert(&out, "q4_0", &["--force", "--rope-scaling", "none"]));
    let file = GgufFile::open(&out).unwrap();
    assert_eq!(
        file.metadata().get_str("llama.rope.scaling.type").unwrap(),
        "none"
    );
}

#[test]
fn conversion_is_deterministic_and_quiet_when_piped() {
    let tiny = Tiny::new("bf16", false);
    let (a, b) = (tiny.out("a.gguf"), tiny.out("b.gguf"));
    let o = tiny.convert(&a, "q4_k_m", &[]);
    assert_ok(&o);
    assert!(
        o.stderr.is_empty(),
        "progress printed to a pipe: {:?}",
        convert_support::stderr(&o)
    );
    let summary = String::from_utf8(o.stdout).unwrap();
    assert!(
        summary.starts_with("wrote ") && summary.contains("21 tensors"),
        "{summary}"
    );
    assert_ok(&tiny.convert(&b, "q4_k_m", &[]));
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
    assert_eq!(tiny.outputs(), ["a.gguf", "b.gguf"]);
}
