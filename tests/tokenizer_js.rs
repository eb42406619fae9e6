//! Both tokenizer kinds against independent JavaScript tokenizers that ship real
//! vocabularies (written to .cache/tokenizer by tools/fetch_tokenizer_oracles.sh):
//! llama-tokenizer-js for SentencePiece (the Llama 1/2 vocabulary) and llama3-tokenizer-js
//! for byte-level BPE with the `llama3` pre-tokenizer; and the hand-written pre-tokenizers
//! against the JavaScript regex engine running the same patterns. Each oracle holds the
//! packages' own test cases, texts written to reach edge cases, random strings and the
//! whole of alice29.txt.

mod common;

use std::time::{Duration, Instant};

use common::hf::ids;
use ropewalk::gguf::{Array, Metadata, Value};
use ropewalk::tokenizer::{pre_tokenize, TokenType, Tokenizer};
use serde_json::Value as Json;

fn oracle(name: &str) -> Json {
    let path = common::cached(&format!("tokenizer/{name}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("oracle files are JSON")
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_str().expect("a string").to_string())
        .collect()
}

fn set_strings(m: &mut Metadata, key: &str, v: Vec<String>) {
    m.set(key, Value::Array(Array::String(v)));
}

/// Compares every case; reports how many differ and the first few. The longest case (the
/// whole book, about 40k tokens) must also encode well under a second.
fn check_cases(kind: &str, cases: &[Json], mut encode: impl FnMut(&Json) -> Vec<u32>) {
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for case in cases {
        let start = Instant::now();
        let got = encode(case);
        slowest = slowest.max(start.elapsed());
        let want = ids(&case["ids"]);
        if got != want {
            failures.push(format!(
                "{:?}\n  got  {got:?}\n  want {want:?}",
                case["text"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{kind}: {} of {} cases differ; first:\n{}",
        failures.len(),
        cases.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    eprintln!(
        "{kind}: {} cases agree; the longest took {slowest:?}",
        cases.len()
    );
    assert!(
        slowest < Duration::from_secs(1),
        "{kind}: a case took {slowest:?}"
    );
}

/// A `llama`-kind metadata set from llama-tokenizer-js's data. The package ranks merges
/// (Hugging Face's conversion of the SentencePiece model lists them by the score of the
/// piece they make), so a piece's score is minus the rank of the first merge that makes
/// it: SentencePiece's "highest score first" then picks what the package's "lowest rank
/// first" picks.
fn llama2_metadata(o: &Json) -> Metadata {
    let tokens = strings(&o["tokens"]);
    let mut scores = vec![f32::NEG_INFINITY; tokens.len()];
    let mut by_text = std::collections::HashMap::new();
    for (id, t) in tokens.iter().enumerate() {
        by_text.insert(t.as_str(), id);
    }
    for (rank, merge) in o["merges"].as_array().unwrap().iter().enumerate().rev() {
        let pair = ids(merge);
        let text = format!("{}{}", tokens[pair[0] as usize], tokens[pair[1] as usize]);
        scores[by_text[text.as_str()]] = -(rank as f32);
    }
    let types = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| match id {
            0 => TokenType::Unknown,
            1 | 2 => TokenType::Control,
            _ if t.starts_with("<0x") && t.len() == 6 => TokenType::Byte,
            _ => TokenType::Normal,
        } as i32)
        .collect();
    let mut m = Metadata::new();
    m.set("tokenizer.ggml.model", Value::String("llama".into()));
    set_strings(&mut m, "tokenizer.ggml.tokens", tokens);
    m.set("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
    m.set("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    m
}

#[test]
fn sentencepiece_matches_llama_tokenizer_js() {
    let o = oracle("llama2.json");
    let tok = Tokenizer::from_metadata(&llama2_metadata(&o)).expect("llama vocabulary loads");
    assert_eq!(tok.vocab_size(), 32000);
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.unk_id()),
        (Some(1), Some(2), Some(0))
    );
    assert!(tok.add_bos_token(), "Llama adds BOS when the key is absent");
    assert!(tok.is_eog(2) && !tok.is_eog(1));

    // The package adds BOS and the leading space, and knows no special tokens.
    let cases = o["cases"].as_array().unwrap();
    check_cases("llama-tokenizer-js", cases, |c| {
        tok.encode(c["text"].as_str().unwrap(), true, false)
    });
    for c in cases.iter().filter(|c| c["decoded"].is_string()) {
        assert_eq!(tok.decode(&ids(&c["ids"])), c["decoded"].as_str().unwrap());
    }
    for d in o["decodes"].as_array().unwrap() {
        assert_eq!(tok.decode(&ids(&d["ids"])), d["text"].as_str().unwrap());
    }
}

#[test]
fn sentencepiece_special_tokens_and_prefix_space() {
    let o = oracle("llama2.json");
    let tok = Tokenizer::from_metadata(&llama2_metadata(&o)).unwrap();
    let hello = tok.encode("Hello", false, false);
    // A prefix space starts the text again after a special token, as in llama.cpp.
    assert_eq!(
        tok.encode("<s>Hello", false, true),
        [&[1][..], &hello].concat()
    );
    assert_eq!(
        tok.encode("Hello</s>Hello", true, true),
        [&[1][..], &hello, &[2], &hello].concat()
    );
    // Without parse_special they are text; SentencePiece never merges into control or
    // byte pieces, so "<s>" and "<0x41>" stay in pieces.
    let plain = tok.encode("<s><0x41>", false, false);
    assert!(
        !plain.contains(&1) && !plain.contains(&(3 + 0x41)),
        "{plain:?}"
    );
    assert_eq!(tok.decode(&plain), "<s><0x41>");
    assert_eq!(tok.token_bytes(3 + 0x41), b"A");
    assert_eq!(tok.token_bytes(29871), b" ");
}

fn llama3_metadata(o: &Json) -> Metadata {
    let tokens = strings(&o["tokens"]);
    let special_start = o["special_start"].as_u64().unwrap() as usize;
    let types = (0..tokens.len())
        .map(|id| if id >= special_start { 3 } else { 1 })
        .collect();
    let mut m = Metadata::new();
    m.set("tokenizer.ggml.model", Value::String("gpt2".into()));
    m.set("tokenizer.ggml.pre", Value::String("llama-bpe".into()));
    set_strings(&mut m, "tokenizer.ggml.tokens", tokens);
    set_strings(&mut m, "tokenizer.ggml.merges", strings(&o["merges"]));
    m.set("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    m.set("tokenizer.ggml.bos_token_id", Value::U32(128000));
    m.set("tokenizer.ggml.eos_token_id", Value::U32(128001));
    m
}

#[test]
fn byte_level_bpe_matches_llama3_tokenizer_js() {
    let o = oracle("llama3.json");
    let tok = Tokenizer::from_metadata(&llama3_metadata(&o)).expect("llama3 vocabulary loads");
    assert_eq!(tok.vocab_size(), 128256);
    assert!(
        tok.add_bos_token(),
        "the llama3 pre-tokenizer implies BOS, as in llama.cpp"
    );
    for (id, eog) in [
        (128001, true),
        (128008, true),
        (128009, true),
        (128000, false),
        (128006, false),
    ] {
        assert_eq!(tok.is_eog(id), eog, "token {id}");
    }

    // The package recognises its special tokens in the text.
    check_cases("llama3-tokenizer-js", o["cases"].as_array().unwrap(), |c| {
        let mut ids = tok.encode(
            c["text"].as_str().unwrap(),
            c["bos"].as_bool().unwrap(),
            true,
        );
        if c["eos"].as_bool().unwrap() {
            ids.extend(tok.eos_id());
        }
        ids
    });
    // The package's decode spells special tokens out, as token_bytes does.
    for d in o["decodes"].as_array().unwrap() {
        let bytes: Vec<u8> = ids(&d["ids"])
            .iter()
            .flat_map(|&id| tok.token_bytes(id).to_vec())
            .collect();
        assert_eq!(String::from_utf8_lossy(&bytes), d["text"].as_str().unwrap());
    }
}

#[test]
fn pre_tokenizers_match_javascript_regexes() {
    let o = oracle("pretokenize.json");
    for (pre, name) in [("gpt2", "gpt2"), ("llama3", "llama3")] {
        let cases = o[name].as_array().unwrap();
        assert!(cases.len() > 400);
        for c in cases {
            let text = c["text"].as_str().unwrap();
            let got = pre_tokenize(Some(pre), text).unwrap();
            assert_eq!(got, strings(&c["pieces"]), "{pre}: {text:?}");
        }
    }
}
