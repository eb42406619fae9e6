//! Tokenizers from small hand-made metadata: the error for each kind of bad metadata
//! (one line, naming the key), no panic on random metadata, and the behaviours that the
//! real vocabularies do not reach: byte fallback, user-defined tokens, missing keys.

mod common;

use common::Rng;
use ropewalk::gguf::{Array, Metadata, Value};
use ropewalk::tokenizer::{Tokenizer, TokenizerError};

fn strs(v: &[&str]) -> Value {
    Value::Array(Array::String(v.iter().map(|s| s.to_string()).collect()))
}

/// A byte-level vocabulary: the bytes of "a", "b", "c", " " (as Ġ), their merges, and
/// control tokens.
fn gpt2() -> Metadata {
    let mut m = Metadata::new();
    m.set("tokenizer.ggml.model", Value::String("gpt2".into()));
    m.set("tokenizer.ggml.pre", Value::String("gpt2".into()));
    m.set(
        "tokenizer.ggml.tokens",
        strs(&[
            "<|endoftext|>",
            "a",
            "b",
            "c",
            "Ġ",
            "ab",
            "Ġab",
            "abc",
            "<tool>",
            "<|im_end|>",
        ]),
    );
    m.set("tokenizer.ggml.merges", strs(&["a b", "Ġ ab", "ab c"]));
    m.set(
        "tokenizer.ggml.token_type",
        Value::Array(Array::I32(vec![3, 1, 1, 1, 1, 1, 1, 1, 4, 1])),
    );
    m.set("tokenizer.ggml.eos_token_id", Value::U32(0));
    m
}

/// A SentencePiece vocabulary with byte fallback for everything but "a", "b", "▁".
fn llama() -> Metadata {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    tokens.extend(["▁", "a", "b", "ab", "▁a", "▁ab"].map(String::from));
    let n = tokens.len();
    let mut scores = vec![0.0f32; n];
    scores[n - 3] = -1.0; // ab
    scores[n - 2] = -2.0; // ▁a
    scores[n - 1] = -3.0; // ▁ab
    let types = (0..n)
        .map(|i| match i {
            0 => 2,
            1 | 2 => 3,
            3..=258 => 6,
            _ => 1,
        })
        .collect();
    let mut m = Metadata::new();
    m.set("tokenizer.ggml.model", Value::String("llama".into()));
    m.set("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    m.set("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
    m.set("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    m
}

fn error(m: &Metadata) -> String {
    match Tokenizer::from_metadata(m) {
        Ok(_) => panic!("bad metadata accepted"),
        Err(e) => e.to_string(),
    }
}

fn with(mut m: Metadata, key: &str, value: Value) -> Metadata {
    m.set(key, value);
    m
}

fn without(mut m: Metadata, key: &str) -> Metadata {
    m.remove(key);
    m
}

#[test]
fn bad_metadata_gives_errors_that_name_the_problem() {
    let cases = [
        (
            without(gpt2(), "tokenizer.ggml.model"),
            "tokenizer: metadata key 'tokenizer.ggml.model' is missing",
        ),
        (
            with(gpt2(), "tokenizer.ggml.model", Value::String("xyz".into())),
            "unknown tokenizer model 'xyz' in tokenizer.ggml.model (ropewalk reads 'llama' and 'gpt2')",
        ),
        (
            with(gpt2(), "tokenizer.ggml.pre", Value::String("xyz".into())),
            "unknown pre-tokenizer 'xyz' in tokenizer.ggml.pre",
        ),
        (
            with(gpt2(), "tokenizer.ggml.tokens", Value::U32(3)),
            "tokenizer: metadata key 'tokenizer.ggml.tokens' has type u32, expected array",
        ),
        (
            with(gpt2(), "tokenizer.ggml.tokens", strs(&[])),
            "tokenizer.ggml.tokens is empty",
        ),
        (
            with(gpt2(), "tokenizer.ggml.tokens", strs(&["a", "b", "a"])),
            "duplicate token \"a\" in tokenizer.ggml.tokens (ids 0 and 2)",
        ),
        (
            without(gpt2(), "tokenizer.ggml.merges"),
            "tokenizer: metadata key 'tokenizer.ggml.merges' is missing",
        ),
        (
            with(gpt2(), "tokenizer.ggml.merges", strs(&["a b", "abc"])),
            "bad merge tokenizer.ggml.merges[1] = \"abc\": not two tokens separated by a space",
        ),
        (
            with(gpt2(), "tokenizer.ggml.merges", strs(&["a "])),
            "bad merge tokenizer.ggml.merges[0] = \"a \": not two tokens separated by a space",
        ),
        (
            with(gpt2(), "tokenizer.ggml.token_type", Value::Array(Array::I32(vec![1; 3]))),
            "tokenizer.ggml.token_type has 3 entries, fewer than the 10 of tokenizer.ggml.tokens",
        ),
        (
            with(gpt2(), "tokenizer.ggml.token_type", Value::Array(Array::I32(vec![9; 10]))),
            "tokenizer.ggml.token_type[0] = 9 is not a token type (0 to 6)",
        ),
        (
            with(gpt2(), "tokenizer.ggml.token_type", Value::Array(Array::F32(vec![1.0; 10]))),
            "tokenizer: metadata key 'tokenizer.ggml.token_type' has type array of f32, expected array of i32",
        ),
        (
            with(gpt2(), "tokenizer.ggml.bos_token_id", Value::U32(10)),
            "tokenizer.ggml.bos_token_id = 10 is outside the vocabulary of 10 tokens",
        ),
        (
            with(gpt2(), "tokenizer.ggml.eos_token_id", Value::I32(-1)),
            "tokenizer: metadata key 'tokenizer.ggml.eos_token_id' = -1 does not fit in u32",
        ),
        (
            with(gpt2(), "tokenizer.ggml.add_bos_token", Value::Bool(true)),
            "tokenizer.ggml.add_bos_token is true, but there is no BOS token (tokenizer.ggml.bos_token_id)",
        ),
        (
            with(gpt2(), "tokenizer.ggml.add_bos_token", Value::U8(1)),
            "tokenizer: metadata key 'tokenizer.ggml.add_bos_token' has type u8, expected bool",
        ),
        (
            with(llama(), "tokenizer.ggml.scores", strs(&["x"])),
            "tokenizer: metadata key 'tokenizer.ggml.scores' has type array of string, expected array of f32",
        ),
        (
            with(llama(), "tokenizer.ggml.scores", Value::Array(Array::F32(vec![0.0]))),
            "tokenizer.ggml.scores has 1 entries, fewer than the 265 of tokenizer.ggml.tokens",
        ),
        (
            with(llama(), "tokenizer.ggml.add_space_prefix", Value::String("yes".into())),
            "tokenizer: metadata key 'tokenizer.ggml.add_space_prefix' has type string, expected bool",
        ),
    ];
    for (m, want) in cases {
        assert_eq!(error(&m), want);
    }
}

#[test]
fn byte_level_vocabulary_basics() {
    let tok = Tokenizer::from_metadata(&gpt2()).unwrap();
    assert_eq!(tok.encode("ab abc", true, false), [5, 6, 3]);
    assert_eq!(tok.encode("abc", false, false), [7]);
    // A byte with no token of its own is dropped (there is no unknown token either).
    assert_eq!(tok.encode("ax", false, false), [1]);
    // User-defined tokens are matched with or without parse_special; control tokens only
    // with it. <|im_end|> is typed normal in this file but is an end-of-turn token.
    assert_eq!(tok.encode("a<tool>b", false, false), [1, 8, 2]);
    assert_eq!(tok.encode("a<|endoftext|>", false, true), [1, 0]);
    assert_ne!(tok.encode("a<|endoftext|>", false, false), [1, 0]);
    assert_eq!(tok.encode("<|im_end|>", false, true), [9]);
    assert!(tok.is_eog(0) && tok.is_eog(9) && !tok.is_eog(8));
    assert_eq!(tok.decode(&[1, 8, 9, 0, 6]), "a<tool> ab");
    assert_eq!(tok.bos_id(), None);
    assert!(!tok.add_bos_token());
}

#[test]
fn sentencepiece_scores_and_byte_fallback() {
    let tok = Tokenizer::from_metadata(&llama()).unwrap();
    let [sp, a, b, ab, sp_a, sp_ab] = [259, 260, 261, 262, 263, 264];
    // "ab" (score -1) merges before "▁a" (-2), and "▁ab" then forms from "▁" + "ab".
    assert_eq!(tok.encode("ab", true, false), [1, sp_ab]);
    assert_eq!(tok.encode("ba", false, false), [sp, b, a]);
    assert_eq!(tok.encode("a", false, false), [sp_a]);
    // Characters outside the vocabulary fall back to their UTF-8 bytes (<0xXX> = 3 + byte).
    assert_eq!(tok.encode("é", false, false), [sp, 3 + 0xC3, 3 + 0xA9]);
    assert_eq!(tok.decode(&tok.encode("é ab\n", true, false)), "é ab\n");
    // Byte tokens split a character across tokens; the stream waits for the rest.
    let mut stream = tok.stream();
    assert_eq!(stream.push(3 + 0xC3), "");
    assert_eq!(stream.push(3 + 0xA9), "é");
    assert_eq!(stream.finish(), "");

    let no_prefix = with(
        llama(),
        "tokenizer.ggml.add_space_prefix",
        Value::Bool(false),
    );
    let tok = Tokenizer::from_metadata(&no_prefix).unwrap();
    assert_eq!(tok.encode("ab", false, false), [ab]);
    assert_eq!(tok.decode(&[sp, ab]), " ab");
}

#[test]
fn absent_optional_keys_take_llama_cpp_defaults() {
    let mut m = llama();
    m.remove("tokenizer.ggml.scores");
    m.remove("tokenizer.ggml.token_type");
    let tok = Tokenizer::from_metadata(&m).unwrap();
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.unk_id()),
        (Some(1), Some(2), Some(0))
    );
    assert!(tok.add_bos_token());
    // Byte tokens are still known by their text.
    assert_eq!(tok.token_bytes(3 + 0x41), b"A");

    let no_pre = without(gpt2(), "tokenizer.ggml.pre");
    let tok = Tokenizer::from_metadata(&no_pre).unwrap();
    assert_eq!(tok.encode("ab abc", false, false), [5, 6, 3]);
}

#[test]
fn random_metadata_never_panics() {
    let mut rng = Rng::new(7);
    let alphabet = [
        "a", "b", "Ġ", " ", "", "<", ">", "<0x41>", "é", "▁", "<|x|>", "ab", "Ġa",
    ];
    let pick = |rng: &mut Rng| alphabet[(rng.next_u64() % alphabet.len() as u64) as usize];
    let mut loaded = 0;
    for round in 0..500u32 {
        let mut tokens: Vec<String> = (0..1 + rng.next_u64() % 12)
            .map(|_| format!("{}{}", pick(&mut rng), pick(&mut rng)))
            .collect();
        if !round.is_multiple_of(4) {
            tokens.sort();
            tokens.dedup();
        }
        let n = tokens.len();
        let merges: Vec<String> = (0..rng.next_u64() % 8)
            .map(|_| {
                let sep = if round.is_multiple_of(7) {
                    pick(&mut rng)
                } else {
                    " "
                };
                format!(
                    "{}{}{sep}{}",
                    pick(&mut rng),
                    pick(&mut rng),
                    pick(&mut rng)
                )
            })
            .collect();
        let mut m = Metadata::new();
        let model = if round.is_multiple_of(2) {
            "gpt2"
        } else {
            "llama"
        };
        m.set("tokenizer.ggml.model", Value::String(model.into()));
        m.set("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
        m.set("tokenizer.ggml.merges", Value::Array(Array::String(merges)));
        let types = (0..n)
            .map(|_| (rng.next_u64() % 7) as i32 + round.is_multiple_of(5) as i32)
            .collect();
        m.set("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
        let scores = (0..n).map(|_| (rng.next_u64() % 5) as f32 - 2.0).collect();
        m.set("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
        for key in [
            "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.unknown_token_id",
        ] {
            m.set(key, Value::U32((rng.next_u64() % (n as u64 + 1)) as u32));
        }
        match Tokenizer::from_metadata(&m) {
            Err(e) => assert!(!e.to_string().contains('\n')),
            Ok(tok) => {
                loaded += 1;
                let text: String = (0..20).map(|_| pick(&mut rng)).collect();
                let ids = tok.encode(&text, true, true);
                assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
                let _ = tok.decode(&ids);
                let mut stream = tok.stream();
                for &id in ids.iter().chain(&[u32::MAX]) {
                    stream.push(id);
                }
                stream.finish();
            }
        }
    }
    assert!(
        loaded > 100,
        "only {loaded} of the random vocabularies loaded"
    );
}

#[test]
fn errors_are_one_line() {
    let e: TokenizerError = Tokenizer::from_metadata(&Metadata::new()).err().unwrap();
    assert!(!e.to_string().contains('\n'));
}
