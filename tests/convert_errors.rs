//! Bad input to `ropewalk convert` and `ropewalk quantize`: each case is one line on
//! stderr naming the problem, exit status 1, and no file under the output name (nor a
//! temporary one left beside it).

mod common;
mod convert_support;

use std::fs;
use std::process::Command;

use convert_support::{assert_fails, assert_ok, ropewalk, Tiny};

/// Converting `tiny` to `out.gguf` fails saying `what`, and leaves nothing behind.
fn fails_cleanly(tiny: &Tiny, what: &str) {
    let o = tiny.convert(&tiny.out("out.gguf"), "q8_0", &[]);
    assert_fails(&o, what);
    assert!(tiny.outputs().is_empty(), "left {:?}", tiny.outputs());
}

fn edit_config(tiny: &Tiny, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut c = tiny.config();
    edit(&mut c);
    tiny.set_config(&c);
}

#[test]
fn missing_config_keys() {
    let tiny = Tiny::new("f32", false);
    edit_config(&tiny, |c| {
        c.as_object_mut().unwrap().remove("num_attention_heads");
    });
    fails_cleanly(&tiny, "config.json: key 'num_attention_heads' is missing");
    fs::remove_file(tiny.dir().join("config.json")).unwrap();
    fails_cleanly(&tiny, "config.json: No such file or directory");
}

#[test]
fn shapes_that_disagree_with_the_config() {
    let tiny = Tiny::new("f32", false);
    edit_config(&tiny, |c| c["intermediate_size"] = 1024.into());
    fails_cleanly(
        &tiny,
        "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [512, 256], but config.json implies [1024, 256]",
    );
    let tiny = Tiny::new("f32", false);
    edit_config(&tiny, |c| c["num_hidden_layers"] = 3.into());
    fails_cleanly(
        &tiny,
        "tensor 'model.layers.2.input_layernorm.weight' is missing",
    );
    let tiny = Tiny::new("f32", false);
    edit_config(&tiny, |c| c["num_hidden_layers"] = 1.into());
    fails_cleanly(&tiny, "tensor 'model.layers.1.");
}

#[test]
fn a_listed_shard_is_missing() {
    let tiny = Tiny::new("bf16", false);
    fs::remove_file(tiny.dir().join("model-00002-of-00002.safetensors")).unwrap();
    fails_cleanly(
        &tiny,
        "model.safetensors.index.json: shard 'model-00002-of-00002.safetensors' is listed but missing",
    );
}

#[test]
fn truncated_safetensors() {
    let tiny = Tiny::new("f32", false);
    let shard = tiny.dir().join("model-00001-of-00002.safetensors");
    let bytes = fs::read(&shard).unwrap();
    // Inside the header: its length says more than the file holds.
    fs::write(&shard, &bytes[..100]).unwrap();
    fails_cleanly(
        &tiny,
        "model-00001-of-00002.safetensors: truncated safetensors header",
    );
    fs::write(&shard, &bytes[..5]).unwrap();
    fails_cleanly(&tiny, "truncated safetensors header");
    // Inside the data.
    fs::write(&shard, &bytes[..bytes.len() - 1000]).unwrap();
    fails_cleanly(&tiny, "do not cover the file's");
}

#[test]
fn unsupported_dtype_and_architecture() {
    let tiny = Tiny::new("f32", false);
    let shard = tiny.dir().join("model-00002-of-00002.safetensors");
    let bytes = fs::read(&shard).unwrap();
    let text = String::from_utf8_lossy(&bytes[..2000]).into_owned();
    let at = text.find("\"F32\"").unwrap();
    let mut edited = bytes.clone();
    edited[at..at + 5].copy_from_slice(b"\"I32\"");
    fs::write(&shard, edited).unwrap();
    fails_cleanly(&tiny, "has dtype I32; ropewalk converts F32, F16 and BF16");

    let tiny = Tiny::new("f32", false);
    edit_config(&tiny, |c| {
        c["architectures"] = serde_json::json!(["Qwen2ForCausalLM"])
    });
    fails_cleanly(&tiny, "architecture 'Qwen2ForCausalLM' is not supported");
}

#[test]
fn unknown_tensors_and_bad_rope_settings() {
    let tiny = Tiny::new("f32", false);
    edit_config(&tiny, |c| {
        c["rope_scaling"] = serde_json::json!({"rope_type": "longrope", "factor": 2.0})
    });
    fails_cleanly(&tiny, "rope_scaling type 'longrope' is not supported");

    let tiny = Tiny::new("f32", false);
    let o = tiny.convert(&tiny.out("out.gguf"), "q8_0", &["--rope-scaling", "linear"]);
    assert_fails(&o, "--rope-scaling linear needs --rope-scale");
    assert!(tiny.outputs().is_empty());

    // A tensor the llama graph has no place for.
    let index = tiny.dir().join("model.safetensors.index.json");
    let mut j: serde_json::Value = serde_json::from_slice(&fs::read(&index).unwrap()).unwrap();
    j["weight_map"]["model.layers.0.self_attn.q_proj.bias"] = "extra.safetensors".into();
    fs::write(&index, j.to_string()).unwrap();
    let header = br#"{"model.layers.0.self_attn.q_proj.bias":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut extra = (header.len() as u64).to_le_bytes().to_vec();
    extra.extend_from_slice(header);
    extra.extend_from_slice(&[0; 4]);
    fs::write(tiny.dir().join("extra.safetensors"), extra).unwrap();
    fails_cleanly(
        &tiny,
        "extra.safetensors: tensor 'model.layers.0.self_attn.q_proj.bias' is not part of a LlamaForCausalLM model",
    );
}

#[test]
fn unwritable_output_folder() {
    let tiny = Tiny::new("f32", false);
    // Not even root may create files in /sys.
    let o = tiny.convert(std::path::Path::new("/sys/out.gguf"), "q8_0", &[]);
    assert_fails(&o, "/sys/out.gguf");
    assert!(!std::path::Path::new("/sys/out.gguf").exists());
    let missing = tiny.out("no/such/folder/out.gguf");
    let o = tiny.convert(&missing, "q8_0", &[]);
    assert_fails(&o, "No such file or directory");
    assert!(tiny.outputs().is_empty());
}

#[test]
fn a_write_that_fails_midway_leaves_no_file() {
    // The file-size limit makes a write fail partway through, as a full disk does: with
    // SIGXFSZ ignored (inherited across exec), the write returns EFBIG.
    let tiny = Tiny::new("f32", false);
    let out = tiny.out("out.gguf");
    let script = format!(
        "ulimit -f 1024; trap '' XFSZ; exec '{}' convert '{}' -o '{}' --outtype f32",
        env!("CARGO_BIN_EXE_ropewalk"),
        tiny.dir().display(),
        out.display()
    );
    let o = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert_fails(&o, "File too large");
    assert!(tiny.outputs().is_empty(), "left {:?}", tiny.outputs());
    // Without the limit the same conversion succeeds (the file is over 1 MiB).
    assert_ok(&tiny.convert(&out, "f32", &[]));
    assert!(fs::metadata(&out).unwrap().len() > 1 << 20);
}

#[test]
fn existing_output_needs_force() {
    let tiny = Tiny::new("f32", false);
    let out = tiny.out("out.gguf");
    fs::write(&out, b"precious").unwrap();
    let o = tiny.convert(&out, "q8_0", &[]);
    assert_fails(&o, "exists: pass --force to replace it");
    assert_eq!(fs::read(&out).unwrap(), b"precious");
    let q = tiny.out("q.gguf");
    let o = ropewalk(&[
        "quantize",
        out.to_str().unwrap(),
        q.to_str().unwrap(),
        "--type",
        "q4_0",
    ]);
    assert_fails(&o, "not a GGUF file");
    assert_ok(&tiny.convert(&out, "q8_0", &["--force"]));
    assert_ne!(fs::read(&out).unwrap(), b"precious");
    let o = ropewalk(&[
        "quantize",
        out.to_str().unwrap(),
        out.to_str().unwrap(),
        "--type",
        "q4_0",
    ]);
    assert_fails(&o, "exists: pass --force");
    assert_eq!(tiny.outputs(), ["out.gguf"]);

    // Not even --force writes over the model's own files.
    let shard = tiny.dir().join("model-00001-of-00002.safetensors");
    let before = fs::read(&shard).unwrap();
    let o = tiny.convert(&shard, "q8_0", &["--force"]);
    assert_fails(
        &o,
        "model-00001-of-00002.safetensors: a file of the model folder, which convert reads",
    );
    assert_eq!(fs::read(&shard).unwrap(), before);
}

#[test]
fn bad_flags() {
    let tiny = Tiny::new("f32", false);
    let o = tiny.convert(&tiny.out("out.gguf"), "q5_k_s", &[]);
    assert_eq!(o.status.code(), Some(2), "clap's usage error");
    assert!(convert_support::stderr(&o).contains("'q5_k_s' is not one of f32, f16, bf16"));
    let o = tiny.convert(&tiny.out("out.gguf"), "q8_0", &["--ctx", "0"]);
    assert_fails(&o, "--ctx must be positive");
    assert!(tiny.outputs().is_empty());
}

/// Names a hostile folder quotes stay on the error's one line: a line break or a
/// terminal's escape is written as an escape.
#[test]
fn quoted_names_with_control_characters_stay_on_one_line() {
    let tiny = Tiny::new("f32", false);
    edit_config(&tiny, |c| {
        c["architectures"] = serde_json::json!(["Llama\nForCausalLM\u{1b}[2J"])
    });
    fails_cleanly(
        &tiny,
        r"architecture 'Llama\nForCausalLM\u{1b}[2J' is not supported",
    );
}

/// A FIFO in the folder would block the open until something wrote to it, and a device
/// would be read without end: only regular files are read, and no more of them than a
/// file of their kind needs.
#[test]
fn only_regular_files_of_bounded_size_are_read() {
    let fifo = |path: &std::path::Path| {
        fs::remove_file(path).unwrap();
        let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
        assert!(made.success());
    };
    for name in [
        "config.json",
        "model.safetensors.index.json",
        "model-00002-of-00002.safetensors",
        "tokenizer.json",
    ] {
        let tiny = Tiny::new("f32", false);
        fifo(&tiny.dir().join(name));
        fails_cleanly(&tiny, &format!("{name}: not a regular file"));
    }

    let tiny = Tiny::new("f32", false);
    let config = tiny.dir().join("config.json");
    fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
    fails_cleanly(&tiny, "config.json: not a regular file");

    // A sparse file: its size is checked before a byte of it is read.
    let tiny = Tiny::new("f32", false);
    let config = tiny.dir().join("config.json");
    fs::File::options()
        .write(true)
        .open(&config)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    fails_cleanly(
        &tiny,
        "config.json: 314572800 bytes is more than the 268435456 ropewalk reads from such a file",
    );
}

/// Settings that pass every check on the way but that the loader would refuse (a value
/// that f32 cannot hold, one text for two tokens) stop the conversion, rather than the
/// first run of the file.
#[test]
fn a_file_the_loader_would_refuse_is_not_written() {
    let unloadable = "the converted file would not load: ";
    for (flags, what) in [
        (
            &["--rope-scaling", "linear", "--rope-scale", "1e-320"][..],
            "llama.context_length is 0: a model runs over at least one position",
        ),
        (
            &[
                "--rope-scaling",
                "linear",
                "--rope-scale",
                "1e-320",
                "--ctx",
                "512",
            ],
            "llama.rope.scaling.factor must be a positive number, got 0",
        ),
        (
            &["--rope-freq-base", "1e308"],
            "llama.rope.freq_base must be a positive number, got inf",
        ),
        (
            &[
                "--rope-scaling",
                "dynamic",
                "--rope-scale",
                "1e39",
                "--ctx",
                "512",
            ],
            "ropewalk.rope.scaling.factor must be a positive number, got inf",
        ),
    ] {
        let tiny = Tiny::new("f32", false);
        let o = tiny.convert(&tiny.out("out.gguf"), "q8_0", flags);
        assert_fails(&o, &format!("{unloadable}{what}"));
        assert!(tiny.outputs().is_empty(), "left {:?}", tiny.outputs());
    }

    let tiny = Tiny::new("f32", false);
    let tokenizer: serde_json::Value =
        serde_json::from_slice(&fs::read(tiny.dir().join("tokenizer.json")).unwrap()).unwrap();
    let vocab = tokenizer["model"]["vocab"].as_object().unwrap();
    let (text, id) = vocab.iter().find(|(_, id)| id.as_u64() > Some(0)).unwrap();
    let config = serde_json::json!({"added_tokens_decoder": {"0": {"content": text}}});
    fs::write(tiny.dir().join("tokenizer_config.json"), config.to_string()).unwrap();
    fails_cleanly(
        &tiny,
        &format!("{unloadable}duplicate token {text:?} in tokenizer.ggml.tokens (ids 0 and {id})"),
    );

    let tiny = Tiny::new("f32", false);
    let o = tiny.convert(&tiny.out("out.gguf"), "q8_0", &["--yarn-orig-ctx", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", convert_support::stderr(&o));
}
