//! The tokenizer half of `ropewalk convert`: `tokenizer.*` keys from a Hugging Face folder
//! with a `tokenizer.json` (SentencePiece models: tests/convert_sentencepiece.rs).
//!
//! - The test model's folder (tools/make_hf_model.py) gives exactly the tokenizer keys of
//!   the original GGUF, and a tokenizer built from them encodes the reference prompts to
//!   Hugging Face's ids.
//! - Hand-made tokenizer.json files reach every rule, and bad ones give one-line errors.

mod common;
mod convert_support;

use convert_support::tokenizer_files::*;
use ropewalk::convert::tokenizer::tokenizer_metadata;
use ropewalk::gguf::{Array, GgufFile, Value};
use ropewalk::tokenizer::Tokenizer;
use serde_json::{json, Value as Json};

// ---------------------------------------------------------------------------------------
// The test model: the folder tools/make_hf_model.py makes, against the original GGUF.

fn smollm2_keys() -> Keys {
    let dir = common::cached("hf/smollm2-f32");
    tokenizer_metadata(&dir, 49152).expect("convert the test model's tokenizer")
}

#[test]
fn test_model_folder_gives_the_gguf_tokenizer_keys() {
    let ours = smollm2_keys();
    let file = GgufFile::open(common::test_model()).expect("open the test model");
    let theirs: Vec<(&str, &Value)> = file
        .metadata()
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .collect();
    let mut their_names: Vec<&str> = theirs.iter().map(|(k, _)| *k).collect();
    let mut our_names = names(&ours);
    their_names.sort_unstable();
    our_names.sort_unstable();
    assert_eq!(our_names, their_names, "the same tokenizer keys");
    for (key, want) in theirs {
        let got = get(&ours, key).unwrap();
        if let (Value::Array(a), Value::Array(b)) = (got, want) {
            assert_eq!(a.len(), b.len(), "{key}: length");
            let first = (0..a.len()).find(|&i| a.get(i) != b.get(i));
            assert_eq!(first, None, "{key}: first difference at this index");
        }
        assert_eq!(got, want, "{key}");
    }
    // What the brief of this file promises, spelled out.
    assert_eq!(get(&ours, "tokenizer.ggml.pre"), Some(&s("smollm")));
    assert_eq!(
        get(&ours, "tokenizer.ggml.bos_token_id"),
        Some(&Value::U32(1))
    );
    assert_eq!(
        get(&ours, "tokenizer.ggml.eos_token_id"),
        Some(&Value::U32(2))
    );
    assert_eq!(
        get(&ours, "tokenizer.ggml.unknown_token_id"),
        Some(&Value::U32(0))
    );
    assert_eq!(
        get(&ours, "tokenizer.ggml.padding_token_id"),
        Some(&Value::U32(2))
    );
    assert_eq!(
        get(&ours, "tokenizer.ggml.add_bos_token"),
        Some(&Value::Bool(false))
    );
}

#[test]
fn test_model_tokenizer_encodes_the_reference_prompts() {
    let tok = Tokenizer::from_metadata(&metadata(&smollm2_keys())).expect("tokenizer loads");
    let path = common::root().join("tests/data/hf_reference/prompts.json");
    let prompts: Json = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for (name, p) in prompts.as_object().unwrap() {
        let want: Vec<u32> = p["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let chat = p["chat"].as_bool().unwrap();
        let got = tok.encode(p["text"].as_str().unwrap(), true, chat);
        assert_eq!(got, want, "prompt '{name}'");
    }
}

#[test]
fn bf16_folder_has_the_same_tokenizer() {
    let dir = common::cached("hf/smollm2-bf16");
    let bf16 = tokenizer_metadata(&dir, 49152).expect("convert");
    assert_eq!(bf16, smollm2_keys());
}

// ---------------------------------------------------------------------------------------
// Hand-made byte-level BPE folders.

fn byte_level(pre: Json) -> Json {
    json!({
        "version": "1.0",
        "added_tokens": [
            {"id": 0, "content": "<|endoftext|>", "special": true, "normalized": false},
            {"id": 8, "content": "<tool>", "special": false, "normalized": false},
            {"id": 9, "content": "<|user|>", "special": false, "normalized": false},
            {"id": 10, "content": "x\u{2581}y", "special": false, "normalized": false}
        ],
        "normalizer": null,
        "pre_tokenizer": pre,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "byte_fallback": false,
            // Ids 7 and 11 are holes; 0 and 8 are also added tokens.
            "vocab": {"<|endoftext|>": 0, "a": 1, "b": 2, "c": 3, "Ġ": 4, "ab": 5, "Ġab": 6, "<tool>": 8},
            "merges": ["a b", "Ġ ab"]
        }
    })
}

fn gpt2_pre() -> Json {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})
}

fn llama3_pre() -> Json {
    json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": false},
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
    ]})
}

#[test]
fn byte_level_folder_gives_every_key() {
    let dir = folder(&[
        json_file("tokenizer.json", byte_level(gpt2_pre())),
        json_file(
            "tokenizer_config.json",
            json!({
                "add_bos_token": true,
                "add_eos_token": false,
                "add_prefix_space": false,
                "bos_token": {"content": "<|endoftext|>", "lstrip": false},
                "eos_token": "<|user|>",
                "unk_token": "<unk>",
                "chat_template": [
                    {"name": "default", "template": "{{ messages }}"},
                    {"name": "tool-use", "template": "{{ tools }}"}
                ]
            }),
        ),
        json_file(
            "generation_config.json",
            json!({"eos_token_id": [3, 4], "pad_token_id": 5}),
        ),
    ]);
    let keys = tokenizer_metadata(dir.path(), 12).unwrap();
    let want: Keys = vec![
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("gpt2")),
        (
            "tokenizer.ggml.tokens".into(),
            strs(&[
                "<|endoftext|>",
                "a",
                "b",
                "c",
                "Ġ",
                "ab",
                "Ġab",
                "[PAD7]",
                "<tool>",
                "<|user|>",
                "x y",
                "[PAD11]",
            ]),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(Array::I32(vec![3, 1, 1, 1, 1, 1, 1, 5, 4, 3, 4, 5])),
        ),
        ("tokenizer.ggml.merges".into(), strs(&["a b", "Ġ ab"])),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(0)),
        // The token named in tokenizer_config.json wins over generation_config.json.
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(9)),
        // "<unk>" is not in the vocabulary: no unknown token.
        ("tokenizer.ggml.padding_token_id".into(), Value::U32(5)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)),
        ("tokenizer.ggml.add_eos_token".into(), Value::Bool(false)),
        ("tokenizer.ggml.add_space_prefix".into(), Value::Bool(false)),
        ("tokenizer.chat_template.tool_use".into(), s("{{ tools }}")),
        ("tokenizer.chat_templates".into(), strs(&["tool_use"])),
        ("tokenizer.chat_template".into(), s("{{ messages }}")),
    ];
    assert_eq!(keys, want);

    // The result is a tokenizer the engine loads, and it merges as the vocabulary says.
    let tok = Tokenizer::from_metadata(&metadata(&keys)).unwrap();
    assert_eq!(tok.encode("ab ab c<tool>", false, false), [5, 6, 4, 3, 8]);
}

#[test]
fn merges_as_pairs_equal_merges_as_strings() {
    let mut pairs = byte_level(gpt2_pre());
    pairs["model"]["merges"] = json!([["a", "b"], ["Ġ", "ab"], ["c d", "e"]]);
    let dir = folder(&[json_file("tokenizer.json", pairs)]);
    let keys = tokenizer_metadata(dir.path(), 12).unwrap();
    // A space inside a token of a pair is written as Ġ, the byte-level space.
    assert_eq!(
        get(&keys, "tokenizer.ggml.merges"),
        Some(&strs(&["a b", "Ġ ab", "cĠd e"]))
    );
}

#[test]
fn pre_tokenizers_map_to_the_names_llama_cpp_uses() {
    let digits_then_bytes = json!({"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": true}, gpt2_pre()]});
    for (pre, name) in [
        (gpt2_pre(), "gpt2"),
        (digits_then_bytes, "smollm"),
        (llama3_pre(), "llama-bpe"),
    ] {
        let dir = folder(&[
            json_file("tokenizer.json", byte_level(pre)),
            // Llama-3's rules add BOS by default, so the engine wants one.
            json_file(
                "tokenizer_config.json",
                json!({"bos_token": "<|endoftext|>"}),
            ),
        ]);
        let keys = tokenizer_metadata(dir.path(), 12).unwrap();
        assert_eq!(get(&keys, "tokenizer.ggml.pre"), Some(&s(name)));
        Tokenizer::from_metadata(&metadata(&keys)).expect("the engine knows the name");
    }
}

#[test]
fn template_post_processor_sets_add_bos_unless_the_config_says() {
    let mut j = byte_level(llama3_pre());
    j["post_processor"] = json!({"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [], "special_tokens": {}}
    ]});
    let config = |extra: Json| {
        let mut c = json!({"bos_token": "<|endoftext|>", "eos_token": "<|user|>"});
        if let Json::Object(m) = extra {
            c.as_object_mut().unwrap().extend(m);
        }
        json_file("tokenizer_config.json", c)
    };
    let dir = folder(&[json_file("tokenizer.json", j.clone()), config(json!({}))]);
    let keys = tokenizer_metadata(dir.path(), 12).unwrap();
    assert_eq!(
        get(&keys, "tokenizer.ggml.add_bos_token"),
        Some(&Value::Bool(true))
    );
    assert_eq!(get(&keys, "tokenizer.ggml.add_eos_token"), None);

    let dir = folder(&[
        json_file("tokenizer.json", j),
        config(json!({"add_bos_token": false})),
    ]);
    let keys = tokenizer_metadata(dir.path(), 12).unwrap();
    assert_eq!(
        get(&keys, "tokenizer.ggml.add_bos_token"),
        Some(&Value::Bool(false))
    );
}

#[test]
fn special_ids_fall_back_to_generation_config_then_config() {
    let dir = folder(&[
        json_file("tokenizer.json", byte_level(gpt2_pre())),
        json_file("generation_config.json", json!({"eos_token_id": [3, 2]})),
        // -1 and 99 are not ids of a 12-token vocabulary: passed over, as llama.cpp does.
        json_file(
            "config.json",
            json!({"bos_token_id": 1, "eos_token_id": 7, "pad_token_id": -1, "unk_token_id": 99}),
        ),
    ]);
    let keys = tokenizer_metadata(dir.path(), 12).unwrap();
    assert_eq!(
        get(&keys, "tokenizer.ggml.bos_token_id"),
        Some(&Value::U32(1))
    );
    assert_eq!(
        get(&keys, "tokenizer.ggml.eos_token_id"),
        Some(&Value::U32(3))
    );
    assert_eq!(get(&keys, "tokenizer.ggml.padding_token_id"), None);
    assert_eq!(get(&keys, "tokenizer.ggml.unknown_token_id"), None);
    assert_eq!(get(&keys, "tokenizer.chat_template"), None);
}

#[test]
fn chat_template_files_are_read_when_the_config_has_none() {
    let tj = || json_file("tokenizer.json", byte_level(gpt2_pre()));
    let dir = folder(&[tj(), ("chat_template.jinja", b"{{ jinja }}".to_vec())]);
    let keys = tokenizer_metadata(dir.path(), 12).unwrap();
    assert_eq!(
        get(&keys, "tokenizer.chat_template"),
        Some(&s("{{ jinja }}"))
    );

    let dir = folder(&[
        tj(),
        json_file("chat_template.json", json!({"chat_template": "{{ json }}"})),
    ]);
    let keys = tokenizer_metadata(dir.path(), 12).unwrap();
    assert_eq!(
        get(&keys, "tokenizer.chat_template"),
        Some(&s("{{ json }}"))
    );

    let dir = folder(&[
        tj(),
        ("chat_template.jinja", b"{{ jinja }}".to_vec()),
        json_file(
            "tokenizer_config.json",
            json!({"chat_template": "{{ config }}"}),
        ),
    ]);
    let keys = tokenizer_metadata(dir.path(), 12).unwrap();
    assert_eq!(
        get(&keys, "tokenizer.chat_template"),
        Some(&s("{{ config }}"))
    );
}

#[test]
fn added_tokens_decoder_of_the_config_overrides() {
    let dir = folder(&[
        json_file("tokenizer.json", byte_level(gpt2_pre())),
        json_file(
            "tokenizer_config.json",
            json!({"added_tokens_decoder": {
                "11": {"content": "<extra>", "special": true},
                "8": {"content": "<tool>", "special": true}
            }}),
        ),
    ]);
    let keys = tokenizer_metadata(dir.path(), 12).unwrap();
    let Some(Value::Array(Array::String(tokens))) = get(&keys, "tokenizer.ggml.tokens") else {
        panic!("tokens")
    };
    assert_eq!(tokens[11], "<extra>");
    assert_eq!(
        get(&keys, "tokenizer.ggml.token_type"),
        Some(&Value::Array(Array::I32(vec![
            3, 1, 1, 1, 1, 1, 1, 5, 3, 3, 4, 3
        ])))
    );
}

#[test]
fn bad_tokenizer_json_gives_one_line_errors() {
    let with = |edit: &dyn Fn(&mut Json)| {
        let mut j = byte_level(gpt2_pre());
        edit(&mut j);
        folder(&[json_file("tokenizer.json", j)])
    };
    let cases: Vec<(tempfile::TempDir, usize, &str)> = vec![
        (
            with(&|j| j["model"]["type"] = json!("Unigram")),
            12,
            "model type 'Unigram' is not supported",
        ),
        (
            with(&|j| j["model"]["byte_fallback"] = json!(true)),
            12,
            "a SentencePiece-style BPE (byte_fallback)",
        ),
        (
            with(&|j| {
                j["pre_tokenizer"] = json!({"type": "Sequence", "pretokenizers": [
                    {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false},
                    {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})
            }),
            12,
            "pre_tokenizer Sequence[Split(",
        ),
        (
            with(&|j| j["pre_tokenizer"] = json!({"type": "Metaspace", "replacement": "▁"})),
            12,
            "pre_tokenizer Metaspace(replacement=\"▁\") has no tokenizer.ggml.pre name",
        ),
        (
            with(&|j| j["normalizer"] = json!({"type": "Lowercase"})),
            12,
            "normalizer Lowercase() is not supported",
        ),
        (
            with(&|_| {}),
            7,
            "model.vocab \"<tool>\": id 8 is outside vocab_size 7 of config.json",
        ),
        (
            with(&|j| j["model"]["vocab"]["dup"] = json!(3)),
            12,
            "model.vocab gives id 3 to both",
        ),
        (
            with(&|j| j["model"]["vocab"]["neg"] = json!(-3)),
            12,
            "model.vocab \"neg\": -3 is not a token id",
        ),
        (
            with(&|j| j["model"]["merges"] = json!(["a b", "ab"])),
            12,
            "model.merges[1] = \"ab\" is neither",
        ),
        (
            with(&|j| j["model"]["merges"] = json!([["a", "b", "c"]])),
            12,
            "model.merges[0] = [\"a\",\"b\",\"c\"] is neither",
        ),
        (
            with(&|j| j["model"].as_object_mut().unwrap().clear()),
            12,
            "key 'model.vocab' is missing",
        ),
        (
            with(&|j| j["added_tokens"][0]["id"] = json!(40)),
            12,
            "added_tokens[0] is not an {id, content} object",
        ),
        (
            folder(&[("tokenizer.json", b"{\"model\": ".to_vec())]),
            12,
            "invalid JSON",
        ),
        (folder(&[]), 12, "no tokenizer.json or tokenizer.model"),
        (with(&|_| {}), 0, "vocab_size 0 is not between 1 and"),
        (with(&|_| {}), usize::MAX, "is not between 1 and"),
    ];
    for (dir, n_vocab, want) in cases {
        let e = error(dir.path(), n_vocab);
        assert!(e.contains(want), "error {e:?} does not say {want:?}");
        if !want.contains("vocab_size 0") && !want.starts_with("is not between") {
            assert!(
                e.contains(&dir.path().display().to_string()),
                "{e}: names the file"
            );
        }
    }

    let tj = || json_file("tokenizer.json", byte_level(gpt2_pre()));
    let config_cases = [
        (
            json!({"chat_template": 3}),
            "chat_template is neither a string nor a list",
        ),
        (
            json!({"chat_template": [{"name": "x"}]}),
            "chat_template[0] is not a {name, template} object",
        ),
        (
            json!({"added_tokens_decoder": {"x": {"content": "a"}}}),
            "added_tokens_decoder key \"x\" is not an id",
        ),
        (
            json!({"added_tokens_decoder": {"40": {"content": "a"}}}),
            "added_tokens_decoder key \"40\" is not an id below vocab_size 12",
        ),
        (
            json!({"added_tokens_decoder": {"4": {}}}),
            "added_tokens_decoder[\"4\"] has no content",
        ),
        (json!([1, 2]), "tokenizer_config.json: not a JSON object"),
    ];
    for (config, want) in config_cases {
        let dir = folder(&[tj(), json_file("tokenizer_config.json", config)]);
        let e = error(dir.path(), 12);
        assert!(e.contains(want), "error {e:?} does not say {want:?}");
    }
}
