//! The SentencePiece half of the tokenizer conversion: `tokenizer.model` files decoded
//! by the hand-written protobuf reader.
//!
//! - Hand-made models reach every rule, and bad, truncated or mutated files give one-line
//!   errors, never panics.
//! - Real SentencePiece models (tools/fetch_spm_models.sh) decode as the `sentencepiece`
//!   package reads them, and a trained BPE model converts to a tokenizer that encodes as
//!   SentencePiece does.

mod common;
mod convert_support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::Rng;
use convert_support::tokenizer_files::*;
use ropewalk::convert::sentencepiece::{parse_model, ModelType, Piece, PieceType, SpmModel};
use ropewalk::convert::tokenizer::tokenizer_metadata;
use ropewalk::gguf::{Array, Value};
use ropewalk::tokenizer::Tokenizer;
use serde_json::{json, Value as Json};

// ---------------------------------------------------------------------------------------
// SentencePiece: protobuf written by hand.

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(field: u64, wire: u64, out: &mut Vec<u8>) {
    varint(field << 3 | wire, out);
}

fn message(field: u64, body: &[u8], out: &mut Vec<u8>) {
    tag(field, 2, out);
    varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

fn piece_proto(text: &str, score: f32, kind: Option<u64>) -> Vec<u8> {
    let mut p = Vec::new();
    message(1, text.as_bytes(), &mut p);
    tag(2, 5, &mut p);
    p.extend_from_slice(&score.to_le_bytes());
    if let Some(k) = kind {
        tag(3, 0, &mut p);
        varint(k, &mut p);
    }
    p
}

/// The hand-made model: every piece type, a trainer spec (BPE, ids, an unknown fixed64
/// field), a normalizer spec without the dummy prefix, and an unknown top-level field.
fn hand_made_pieces() -> Vec<Piece> {
    let p = |text: &str, score: f32, kind| Piece {
        text: text.to_string(),
        score,
        kind,
    };
    vec![
        p("<unk>", 0.0, PieceType::Unknown),
        p("<s>", 0.0, PieceType::Control),
        p("</s>", 0.0, PieceType::Control),
        p("<0x41>", 0.0, PieceType::Byte),
        p("<0x0A>", 0.0, PieceType::Byte),
        p("\u{2581}", -1.0, PieceType::Normal),
        p("a", -2.0, PieceType::Normal),
        p("b", -3.0, PieceType::Normal),
        p("ab", -4.0, PieceType::Normal),
        p("\u{2581}ab", -5.0, PieceType::Normal),
        p("<tool>", 0.0, PieceType::UserDefined),
        p("<unused0>", 0.0, PieceType::Unused),
        p("\u{1F999}", -6.5, PieceType::Normal),
    ]
}

fn hand_made_model() -> Vec<u8> {
    let mut file = Vec::new();
    for p in hand_made_pieces() {
        // NORMAL is the default: leave it out, as SentencePiece does.
        let kind = (p.kind != PieceType::Normal).then_some(p.kind as u64);
        message(1, &piece_proto(&p.text, p.score, kind), &mut file);
    }
    let mut trainer = Vec::new();
    tag(3, 0, &mut trainer);
    varint(2, &mut trainer); // BPE
    tag(7, 1, &mut trainer); // an unknown fixed64 field
    trainer.extend_from_slice(&[0xAB; 8]);
    for (field, id) in [(40, 0i64), (41, 1), (42, 2), (43, -1)] {
        tag(field, 0, &mut trainer);
        varint(id as u64, &mut trainer);
    }
    message(2, &trainer, &mut file);
    let mut normalizer = Vec::new();
    message(1, b"identity", &mut normalizer);
    tag(3, 0, &mut normalizer);
    varint(0, &mut normalizer);
    message(3, &normalizer, &mut file);
    message(4, b"\x0a\x03abc", &mut file); // self_test_data, skipped
    file
}

#[test]
fn hand_made_sentencepiece_model_decodes() {
    let model = parse_model(&hand_made_model(), "tokenizer.model").unwrap();
    let want = SpmModel {
        pieces: hand_made_pieces(),
        model_type: Some(ModelType::Bpe),
        add_dummy_prefix: Some(false),
        unk_id: Some(0),
        bos_id: Some(1),
        eos_id: Some(2),
        pad_id: Some(-1),
    };
    assert_eq!(model, want);
}

#[test]
fn hand_made_sentencepiece_folder_gives_every_key() {
    let pieces = hand_made_pieces();
    let n = pieces.len();
    let dir = folder(&[
        ("tokenizer.model", hand_made_model()),
        json_file("added_tokens.json", json!({"<extra>": n})),
        json_file(
            "tokenizer_config.json",
            json!({
                "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                "add_bos_token": true,
                "added_tokens_decoder": {"0": {"content": "<unk>", "special": true}}
            }),
        ),
    ]);
    let keys = tokenizer_metadata(dir.path(), n + 2).unwrap();

    let mut tokens: Vec<String> = pieces.iter().map(|p| p.text.clone()).collect();
    tokens.extend(["<extra>".to_string(), format!("[PAD{}]", n + 1)]);
    let mut scores: Vec<f32> = pieces.iter().map(|p| p.score).collect();
    scores.extend([-1000.0, -10000.0]);
    // Every token of added_tokens_decoder scores -1000, as llama.cpp writes it.
    scores[0] = -1000.0;
    let mut types: Vec<i32> = pieces.iter().map(|p| p.kind as i32).collect();
    types.extend([4, 5]);
    let want: Keys = vec![
        ("tokenizer.ggml.model".into(), s("llama")),
        ("tokenizer.ggml.pre".into(), s("default")),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(Array::String(tokens)),
        ),
        (
            "tokenizer.ggml.scores".into(),
            Value::Array(Array::F32(scores)),
        ),
        // <unk> stays unknown although the config calls it special.
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(Array::I32(types)),
        ),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        ("tokenizer.ggml.unknown_token_id".into(), Value::U32(0)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)),
        ("tokenizer.ggml.add_space_prefix".into(), Value::Bool(false)),
    ];
    assert_eq!(keys, want);

    let tok = Tokenizer::from_metadata(&metadata(&keys)).unwrap();
    // No dummy prefix: "ab" is one piece, not "▁ab"; "A" and "\n" fall back to bytes.
    assert_eq!(tok.encode("ab", true, false), [1, 8]);
    assert_eq!(tok.encode("A\n", false, false), [3, 4]);
    assert_eq!(tok.encode("ab<tool>", false, false), [8, 10]);
}

#[test]
fn sentencepiece_ids_come_from_the_trainer_spec_without_a_config() {
    let dir = folder(&[("tokenizer.model", hand_made_model())]);
    let keys = tokenizer_metadata(dir.path(), 13).unwrap();
    assert_eq!(
        get(&keys, "tokenizer.ggml.bos_token_id"),
        Some(&Value::U32(1))
    );
    assert_eq!(
        get(&keys, "tokenizer.ggml.eos_token_id"),
        Some(&Value::U32(2))
    );
    assert_eq!(
        get(&keys, "tokenizer.ggml.unknown_token_id"),
        Some(&Value::U32(0))
    );
    assert_eq!(get(&keys, "tokenizer.ggml.padding_token_id"), None);
    assert_eq!(get(&keys, "tokenizer.ggml.add_bos_token"), None);
}

#[test]
fn bad_sentencepiece_models_give_errors() {
    let good = hand_made_model();
    let one = |piece: Vec<u8>| {
        let mut f = Vec::new();
        message(1, &piece, &mut f);
        f
    };
    let mut past_end = Vec::new();
    tag(1, 2, &mut past_end);
    varint(200, &mut past_end);
    past_end.extend_from_slice(b"abc");
    let mut huge_len = Vec::new();
    tag(1, 2, &mut huge_len);
    varint(1 << 62, &mut huge_len);
    let mut group = Vec::new();
    tag(1, 3, &mut group);
    let mut piece_as_varint = Vec::new();
    tag(1, 0, &mut piece_as_varint);
    varint(5, &mut piece_as_varint);
    let mut score_as_varint = Vec::new();
    message(1, b"a", &mut score_as_varint);
    tag(2, 0, &mut score_as_varint);
    varint(1, &mut score_as_varint);
    let mut no_text = Vec::new();
    tag(2, 5, &mut no_text);
    no_text.extend_from_slice(&1f32.to_le_bytes());
    let mut unigram = Vec::new();
    tag(3, 0, &mut unigram);
    varint(1, &mut unigram);
    let mut unigram_file = one(piece_proto("a", 0.0, None));
    message(2, &unigram, &mut unigram_file);
    let mut bad_model_type = Vec::new();
    tag(3, 0, &mut bad_model_type);
    varint(9, &mut bad_model_type);
    let mut bad_model_type_file = one(piece_proto("a", 0.0, None));
    message(2, &bad_model_type, &mut bad_model_type_file);

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            good[..good.len() - 3].to_vec(),
            "truncated: a length-delimited field at byte",
        ),
        (good[..7].to_vec(), "truncated"),
        (
            past_end,
            "truncated: a length-delimited field at byte 3 needs 200 bytes, 3 are left",
        ),
        (huge_len, "needs 4611686018427387904 bytes, 0 are left"),
        (
            vec![0x0a, 0xff, 0xff, 0xff],
            "truncated: varint at byte 1 runs past the end",
        ),
        (
            [vec![0x0a], vec![0xff; 11]].concat(),
            "varint at byte 1 is longer than 64 bits",
        ),
        (group, "field 1 at byte 0 has wire type 3"),
        (vec![0x00, 0x00], "bad field number 0 at byte 0"),
        (
            piece_as_varint,
            "field 1 (ModelProto.pieces) is varint, expected length-delimited",
        ),
        (
            one(score_as_varint),
            "field 2 (SentencePiece.score) is varint, expected fixed32",
        ),
        (
            one(piece_proto("\u{fffd}", 0.0, Some(9))),
            "piece 0 has type 9, not 1 to 6",
        ),
        (
            one([vec![0x0a, 2], vec![0xc3, 0x28]].concat()),
            "piece 0 at byte 4 is not UTF-8",
        ),
        (one(no_text), "piece 0 at byte 2 has no text"),
        (
            one(piece_proto("", 0.0, None)),
            "piece 0 at byte 2 has no text",
        ),
        (Vec::new(), "no pieces: not a SentencePiece model"),
        (b"IQ== 0\nIg== 1\n".to_vec(), "tokenizer.model:"),
        (bad_model_type_file, "model_type 9 is not 1 to 4"),
    ];
    for (bytes, want) in cases {
        let e = parse_model(&bytes, "tokenizer.model")
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "error {e:?} does not say {want:?}");
        assert!(
            e.starts_with("tokenizer.model: ") && !e.contains('\n'),
            "{e}"
        );
        let dir = folder(&[("tokenizer.model", bytes)]);
        let e = error(dir.path(), 1000);
        assert!(e.contains(want) && e.contains("tokenizer.model"), "{e}");
    }

    let dir = folder(&[("tokenizer.model", unigram_file)]);
    let e = error(dir.path(), 10);
    assert!(
        e.contains("a SentencePiece Unigram model; ropewalk converts SentencePiece BPE"),
        "{e}"
    );
    let dir = folder(&[("tokenizer.model", good.clone())]);
    let e = error(dir.path(), 5);
    assert!(
        e.contains("13 pieces, more than vocab_size 5 of config.json"),
        "{e}"
    );
    let e = error(dir.path(), 1 << 40);
    assert!(
        e.contains("vocab_size 1099511627776 is not between 1 and"),
        "{e}"
    );

    // A file too large to be a model is refused before it is read (the file is sparse).
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("tokenizer.model")).unwrap();
    f.set_len(ropewalk::convert::sentencepiece::MAX_FILE_BYTES + 1)
        .unwrap();
    let e = error(dir.path(), 10);
    assert!(
        e.contains("67108865 bytes is more than the 67108864 ropewalk reads"),
        "{e}"
    );
}

#[test]
fn truncated_and_mutated_sentencepiece_models_never_panic() {
    let good = hand_made_model();
    for len in 0..good.len() {
        // A cut between two fields is a shorter valid file; any other cut is an error.
        let _ = parse_model(&good[..len], "tokenizer.model");
    }
    let mut rng = Rng::new(7);
    for _ in 0..20_000 {
        let mut bytes = good.clone();
        for _ in 0..1 + rng.next_u64() % 4 {
            let i = (rng.next_u64() % bytes.len() as u64) as usize;
            bytes[i] = rng.next_u64() as u8;
        }
        let _ = parse_model(&bytes, "tokenizer.model");
        let n = (rng.next_u64() % 64) as usize;
        let _ = parse_model(&rng.bytes(n), "tokenizer.model");
    }
}

// ---------------------------------------------------------------------------------------
// Real SentencePiece models, against the `sentencepiece` package (tools/spm_oracle.py).

fn spm_oracle(args: &[&str], stdin: Option<&Json>) -> Json {
    let mut child = Command::new(common::cached("venv/bin/python"))
        .arg(common::root().join("tools/spm_oracle.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tools/spm_oracle.py");
    let input = stdin.map(|j| j.to_string()).unwrap_or_default();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "spm_oracle.py {args:?} failed (run tools/setup.sh first): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the oracle prints JSON")
}

/// Our decoding of `path` equals the `sentencepiece` package's, field by field.
fn check_against_oracle(path: &Path) -> SpmModel {
    let bytes = std::fs::read(path).unwrap();
    let ours = parse_model(&bytes, "tokenizer.model").unwrap();
    let theirs = spm_oracle(&["dump", path.to_str().unwrap()], None);
    let pieces = theirs["pieces"].as_array().unwrap();
    assert_eq!(ours.pieces.len(), pieces.len());
    for (i, (p, t)) in ours.pieces.iter().zip(pieces).enumerate() {
        assert_eq!(p.text, t[0].as_str().unwrap(), "piece {i}");
        // Python widens the f32 to a double; narrowing it back is exact.
        assert_eq!(p.score, t[1].as_f64().unwrap() as f32, "score of piece {i}");
        assert_eq!(p.kind as u64, t[2].as_u64().unwrap(), "type of piece {i}");
    }
    let opt_i = |k: &str| theirs[k].as_i64().map(|v| v as i32);
    assert_eq!(
        ours.model_type.map(|t| t as i64),
        theirs["model_type"].as_i64()
    );
    assert_eq!(ours.add_dummy_prefix, theirs["add_dummy_prefix"].as_bool());
    assert_eq!(ours.unk_id, opt_i("unk_id"));
    assert_eq!(ours.bos_id, opt_i("bos_id"));
    assert_eq!(ours.eos_id, opt_i("eos_id"));
    assert_eq!(ours.pad_id, opt_i("pad_id"));
    ours
}

#[test]
fn sentencepiece_test_model_decodes_as_sentencepiece_reads_it() {
    let path = common::cached("spm/test_model.model");
    let model = check_against_oracle(&path);
    // What SentencePiece's own tests say of this file.
    assert_eq!(model.pieces.len(), 1000);
    assert_eq!(model.pieces[0].text, "<unk>");
    assert_eq!(model.pieces[1].text, "<s>");
    assert_eq!(model.pieces[2].text, "</s>");
    assert_eq!(model.model_type, Some(ModelType::Unigram));

    let dir = folder(&[("tokenizer.model", std::fs::read(&path).unwrap())]);
    let e = error(dir.path(), 1000);
    assert!(e.contains("a SentencePiece Unigram model"), "{e}");
}

#[test]
fn trained_bpe_model_converts_to_a_tokenizer_that_encodes_as_sentencepiece() {
    let path = common::cached("spm/botchan_bpe.model");
    let model = check_against_oracle(&path);
    let n = model.pieces.len();
    assert!(model
        .pieces
        .iter()
        .any(|p| p.kind == PieceType::UserDefined));
    assert!(model.pieces.iter().any(|p| p.kind == PieceType::Byte));

    let dir = folder(&[("tokenizer.model", std::fs::read(&path).unwrap())]);
    let keys = tokenizer_metadata(dir.path(), n + 3).unwrap();
    let Some(Value::Array(Array::String(tokens))) = get(&keys, "tokenizer.ggml.tokens") else {
        panic!("tokens")
    };
    assert_eq!(tokens.len(), n + 3);
    assert_eq!(tokens[n + 2], format!("[PAD{}]", n + 2));
    let tok = Tokenizer::from_metadata(&metadata(&keys)).unwrap();

    let text = std::fs::read_to_string(common::cached("spm/botchan.txt")).unwrap();
    let mut texts: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .step_by(7)
        .take(300)
        .map(str::to_string)
        .collect();
    texts.extend(
        [
            "Hello world 1234 \u{1F999} caf\u{e9} na\u{ef}ve",
            "  two  leading spaces, and a tab\tand\na newline",
            "",
            " ",
            "<s> is plain text here",
        ]
        .map(String::from),
    );
    let want = spm_oracle(&["encode", path.to_str().unwrap()], Some(&json!(texts)));
    for (text, want) in texts.iter().zip(want.as_array().unwrap()) {
        let want: Vec<u32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tok.encode(text, false, false), want, "{text:?}");
    }
    // The user-defined piece is matched whole, and the control piece only on request. (After
    // a user-defined token the engine starts a new text with a space prefix, as llama.cpp
    // does; SentencePiece does not, so text around it is not compared.)
    let tool = tok.token_id("<tool>").unwrap();
    let ctl = tok.token_id("<ctl>").unwrap();
    assert_eq!(tok.encode("<tool>", false, false), [tool]);
    assert_eq!(tok.encode("<ctl>", false, true), [ctl]);
    assert!(!tok.encode("<ctl>", false, false).contains(&ctl));
}
