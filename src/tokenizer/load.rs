//! Reading `tokenizer.ggml.*` metadata, with llama.cpp's defaults for absent keys and an
//! error that names the key for anything malformed.

use crate::gguf::{keys, Array, GgufError, Metadata, Value};

use super::bpe::Bpe;
use super::pretokenize::PreConfig;
use super::spm::Spm;
use super::vocab::{parse_byte_token, Escape, Vocab};
use super::{Model, TokenType, Tokenizer, TokenizerError};

const ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
const EOT_ID: &str = "tokenizer.ggml.eot_token_id";
const EOM_ID: &str = "tokenizer.ggml.eom_token_id";

/// Tokens that end a turn in the chat formats of common model families; llama.cpp
/// recognises them by their text, as their ids differ from model to model.
const END_OF_TURN: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|eom_id|>",
    "<EOT>",
    "<end_of_utterance>",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Spm,
    Bpe,
}

pub(super) fn load(m: &Metadata) -> Result<Tokenizer, TokenizerError> {
    let kind = match m.get_str(keys::TOKENIZER_MODEL)? {
        "llama" => Kind::Spm,
        "gpt2" => Kind::Bpe,
        other => return Err(TokenizerError::UnknownModel(other.to_string())),
    };
    let texts = m.get_str_array(keys::TOKENIZER_TOKENS)?.to_vec();
    let n = texts.len();
    if n == 0 {
        return Err(TokenizerError::EmptyVocab);
    }
    if u32::try_from(n).is_err() {
        return Err(TokenizerError::VocabTooLarge(n));
    }
    let mut types = read_types(m, &texts, kind)?;

    // llama.cpp's defaults: Llama's SentencePiece ids, none for byte-level models.
    let (bos_default, eos_default, unk_default) = match kind {
        Kind::Spm => (Some(1), Some(2), Some(0)),
        Kind::Bpe => (None, None, None),
    };
    let bos = read_id(m, keys::TOKENIZER_BOS_ID, n)?.or(bos_default.filter(|&i| i < n as u32));
    let eos = read_id(m, keys::TOKENIZER_EOS_ID, n)?.or(eos_default.filter(|&i| i < n as u32));
    let unk = read_id(m, keys::TOKENIZER_UNK_ID, n)?.or(unk_default.filter(|&i| i < n as u32));

    let mut eog: Vec<u32> = eos.into_iter().collect();
    for key in [EOT_ID, EOM_ID] {
        eog.extend(read_id(m, key, n)?);
    }
    for (id, text) in texts.iter().enumerate() {
        if END_OF_TURN.contains(&text.as_str()) {
            eog.push(id as u32);
            // They are markup whatever the converter said, so that decoding hides them
            // and `parse_special` controls their recognition (llama.cpp does the same).
            if matches!(types[id], TokenType::Normal | TokenType::Undefined) {
                types[id] = TokenType::Control;
            }
        }
    }
    eog.sort_unstable();
    eog.dedup();

    let (model, add_bos_default, vocab) = match kind {
        Kind::Spm => {
            let scores = read_scores(m, n)?;
            let vocab = Vocab::new(texts, types, Escape::Spm)?;
            let add_space_prefix = m.get_bool_opt(ADD_SPACE_PREFIX)?.unwrap_or(true);
            let spm = Spm::new(&vocab, scores, add_space_prefix);
            (Model::Spm(Box::new(spm)), true, vocab)
        }
        Kind::Bpe => {
            let merges = m.get_str_array(keys::TOKENIZER_MERGES)?;
            let config = PreConfig::from_name(m.get_str_opt(keys::TOKENIZER_PRE)?)?;
            let vocab = Vocab::new(texts, types, Escape::ByteLevel)?;
            let bpe = Bpe::new(&vocab, merges, config)?;
            (Model::Bpe(Box::new(bpe)), config.add_bos, vocab)
        }
    };
    let add_bos = m
        .get_bool_opt(keys::TOKENIZER_ADD_BOS)?
        .unwrap_or(add_bos_default);
    if add_bos && bos.is_none() {
        return Err(TokenizerError::MissingBos);
    }
    Ok(Tokenizer {
        vocab,
        model,
        bos,
        eos,
        unk,
        add_bos,
        eog,
    })
}

/// Token types; absent, every token is normal except, in a SentencePiece vocabulary, the
/// `<0xXX>` byte tokens, which only their text identifies then.
fn read_types(
    m: &Metadata,
    texts: &[String],
    kind: Kind,
) -> Result<Vec<TokenType>, TokenizerError> {
    if !m.contains(keys::TOKENIZER_TOKEN_TYPE) {
        return Ok(texts
            .iter()
            .map(|t| match (kind, parse_byte_token(t)) {
                (Kind::Spm, Some(_)) => TokenType::Byte,
                _ => TokenType::Normal,
            })
            .collect());
    }
    let raw = m.get_i32_array(keys::TOKENIZER_TOKEN_TYPE)?;
    if raw.len() < texts.len() {
        return Err(TokenizerError::TooShort {
            key: keys::TOKENIZER_TOKEN_TYPE,
            found: raw.len(),
            expected: texts.len(),
        });
    }
    raw[..texts.len()]
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            TokenType::from_i32(value).ok_or(TokenizerError::BadTokenType { index, value })
        })
        .collect()
}

/// SentencePiece scores (f32, or i32 as some converters write them); all equal when absent.
fn read_scores(m: &Metadata, n: usize) -> Result<Vec<f32>, TokenizerError> {
    let key = keys::TOKENIZER_SCORES;
    let scores: Vec<f32> = match m.get(key) {
        None => return Ok(vec![0.0; n]),
        Some(Value::Array(Array::F32(v))) => v.clone(),
        Some(Value::Array(Array::I32(v))) => v.iter().map(|&s| s as f32).collect(),
        Some(Value::Array(a)) => {
            return Err(GgufError::KeyType {
                key: key.to_string(),
                expected: "array of f32",
                found: format!("array of {}", a.element_type()),
            }
            .into())
        }
        Some(v) => {
            return Err(GgufError::KeyType {
                key: key.to_string(),
                expected: "array of f32",
                found: v.value_type().to_string(),
            }
            .into())
        }
    };
    if scores.len() < n {
        return Err(TokenizerError::TooShort {
            key,
            found: scores.len(),
            expected: n,
        });
    }
    Ok(scores)
}

fn read_id(m: &Metadata, key: &'static str, n: usize) -> Result<Option<u32>, TokenizerError> {
    match m.get_u32_opt(key)? {
        Some(id) if id as usize >= n => Err(TokenizerError::IdOutOfRange { key, id, vocab: n }),
        id => Ok(id),
    }
}
