//! The test model's tokenizer (byte-level BPE, pre-tokenizer `smollm`) against the ids
//! Hugging Face `transformers` produced (tests/data/hf_reference), and the decoding side.

mod common;

use std::sync::OnceLock;
use std::time::Instant;

use common::hf::{ids, reference};
use ropewalk::gguf::GgufFile;
use ropewalk::tokenizer::{TokenType, Tokenizer};

fn smollm() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let file = GgufFile::open(common::test_model()).expect("open the test model");
        Tokenizer::from_metadata(file.metadata()).expect("the test model's tokenizer loads")
    })
}

/// The perplexity text as ppl_tokens.json's `normalization` describes it: CRLF -> LF,
/// each paragraph's hard-wrapped lines joined with single spaces (runs of spaces inside a
/// line collapse too, as the reference ids show), paragraphs separated by a blank line.
fn alice_paragraphs() -> Vec<String> {
    let raw = std::fs::read(common::cached("text/alice29.txt")).expect("read alice29.txt");
    let raw = String::from_utf8(raw)
        .expect("alice29.txt is ASCII")
        .replace("\r\n", "\n");
    let mut paragraphs = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    for line in raw.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if !words.is_empty() {
                paragraphs.push(words.join(" "));
                words.clear();
            }
        } else {
            words.extend(line.split_whitespace());
        }
    }
    paragraphs
}

#[test]
fn prompts_match_hugging_face() {
    let tok = smollm();
    let prompts = reference("prompts.json");
    for (name, p) in prompts.as_object().unwrap() {
        let text = p["text"].as_str().unwrap();
        let chat = p["chat"].as_bool().unwrap();
        // The model asks for no BOS, so add_bos = true must add none.
        assert_eq!(
            tok.encode(text, true, chat),
            ids(&p["ids"]),
            "prompt '{name}'"
        );
    }
}

#[test]
fn perplexity_tokens_match_hugging_face() {
    let tok = smollm();
    let reference = reference("ppl_tokens.json");
    let n_paragraphs = reference["n_paragraphs"].as_u64().unwrap() as usize;
    // The reference text ends with a line break: its n_chars and n_tokens_text count one.
    let text = alice_paragraphs()[..n_paragraphs].join("\n\n") + "\n";
    assert_eq!(text.len() as u64, reference["n_chars"].as_u64().unwrap());
    let got = tok.encode(&text, true, false);
    let want = ids(&reference["eval_tokens"]);
    assert_eq!(want.len(), 2048);
    assert_eq!(
        got.len() as u64,
        reference["n_tokens_text"].as_u64().unwrap()
    );
    if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "token {i} differs: got {}, want {} (after {:?})",
            got[i],
            want[i],
            tok.decode(&got[i.saturating_sub(8)..i])
        );
    }
}

#[test]
fn special_tokens_and_end_of_generation() {
    let tok = smollm();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(2)));
    assert!(!tok.add_bos_token());
    assert_eq!(tok.token_id("<|im_start|>"), Some(1));
    assert_eq!(tok.token_type(2), Some(TokenType::Control));
    assert!(tok.is_eog(2), "<|im_end|> ends a turn");
    assert!(tok.is_eog(0), "<|endoftext|> ends generation");
    assert!(!tok.is_eog(1) && !tok.is_eog(504));

    let text = "<|im_start|>user\nHi<|im_end|>";
    let hi = tok.encode("Hi", false, false);
    assert_eq!(
        tok.encode(text, false, true),
        [&[1, 4093, 198][..], &hi, &[2]].concat()
    );
    let plain = tok.encode(text, false, false);
    assert!(!plain.contains(&1) && !plain.contains(&2), "{plain:?}");
    assert_eq!(tok.decode(&plain), text);
}

#[test]
fn decode_inverts_encode() {
    let tok = smollm();
    let prompts = reference("prompts.json");
    let long = prompts["long"]["text"].as_str().unwrap();
    assert_eq!(tok.decode(&tok.encode(long, false, false)), long);
    // Control tokens are markup: decoding leaves them out, token_bytes still spells them.
    let chat = prompts["chat"]["text"].as_str().unwrap();
    let chat_ids = tok.encode(chat, false, true);
    let shown = chat.replace("<|im_start|>", "").replace("<|im_end|>", "");
    assert_eq!(tok.decode(&chat_ids), shown);
    assert_eq!(tok.token_bytes(1), b"<|im_start|>");
    for text in [
        "naïve café 🦙🦙 中文 \u{0}\t\r\n  x",
        "  leading",
        "trailing  ",
        "1234567890",
    ] {
        assert_eq!(tok.decode(&tok.encode(text, false, false)), text);
    }
    assert_eq!(tok.token_bytes(u32::MAX), b"");
    assert_eq!(tok.decode(&[u32::MAX, 504]), "The");
}

#[test]
fn streaming_holds_back_partial_characters() {
    let tok = smollm();
    let text = "Llamas 🦙 and 中文 and a lone é.";
    let ids = tok.encode(text, false, false);
    let mut stream = tok.stream();
    let mut out = String::new();
    let mut held = false;
    for &id in &ids {
        let piece = stream.push(id);
        held |= !stream.pending().is_empty();
        out.push_str(&piece);
    }
    out.push_str(&stream.finish());
    assert_eq!(out, text);
    assert!(held, "some character spans several tokens: {ids:?}");

    // Invalid bytes become U+FFFD exactly as in decode; an unfinished character at the end
    // comes out at finish().
    let f0 = tok.token_id("ð").unwrap(); // byte 0xF0, a 4-byte lead
    let a = tok.token_id("a").unwrap();
    let mut stream = tok.stream();
    assert_eq!(stream.push(f0), "");
    assert_eq!(stream.push(a), "\u{FFFD}a");
    assert_eq!(stream.push(f0), "");
    assert_eq!(stream.finish(), "\u{FFFD}");
    assert_eq!(tok.decode(&[f0, a, f0]), "\u{FFFD}a\u{FFFD}");
}

#[test]
fn whole_book_streams_like_decode_and_encodes_fast() {
    let tok = smollm();
    let text = alice_paragraphs().join("\n\n");
    let start = Instant::now();
    let ids = tok.encode(&text, false, false);
    let took = start.elapsed();
    eprintln!(
        "encoded {} chars into {} tokens in {took:?}",
        text.len(),
        ids.len()
    );
    assert!(ids.len() > 30_000);
    assert!(took.as_secs_f64() < 1.0, "encoding took {took:?}");
    assert_eq!(tok.decode(&ids), text);
    let mut stream = tok.stream();
    let streamed: String = ids.iter().map(|&id| stream.push(id)).collect();
    assert_eq!(streamed + &stream.finish(), text);
}
