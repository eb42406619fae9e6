//! The `tokenizer.*` keys of a converted model, from a Hugging Face folder's tokenizer files,
//! following what llama.cpp's `convert_hf_to_gguf.py` writes so that files run alike in
//! both engines.
//!
//! - `tokenizer.model` (SentencePiece; preferred when present, as llama.cpp does):
//!   `tokenizer.ggml.model = llama`, pre `default`, pieces, scores and types. Only BPE models
//!   are accepted: a Unigram model tokenizes differently under llama's greedy merging. Ids
//!   past the last piece up to `vocab_size` become `[PAD{i}]`, score -10000, unused.
//!   `added_tokens.json` entries become user-defined tokens (score -1000).
//! - `tokenizer.json` (byte-level BPE): `tokenizer.ggml.model = gpt2`, the vocabulary, the
//!   merges (`"a b"` strings or `["a", "b"]` pairs, whose spaces are written as `Ġ`), and
//!   `tokenizer.ggml.pre` named from the structure of the pre-tokenizer (llama.cpp hashes a
//!   tokenization instead, which needs the tokenizer running): SmolLM's Digits + ByteLevel
//!   is `smollm`, the Llama-3 Split regex `llama-bpe`, Qwen2's `qwen2`, a lone ByteLevel
//!   `gpt2`. Anything else is an error naming the pre-tokenizer, not a silent fallback to
//!   llama.cpp's `default` rules, which would tokenize differently from the model's training.
//!   Ids missing from the vocabulary up to `vocab_size` become `[PAD{i}]`, unused.
//! - Added tokens (tokenizer.json `added_tokens`, then `added_tokens_decoder` of
//!   tokenizer_config.json): special ones, and ones that look special (`<|...|>`, `<pad>`,
//!   ...), are control tokens, the others user-defined with `▁` written as a space. A
//!   SentencePiece unknown piece stays unknown.
//! - Special ids (bos, eos, unk, pad): the `*_token` of tokenizer_config.json (a string or a
//!   `{content}` object) looked up in the vocabulary; else `*_token_id` of
//!   generation_config.json, then of config.json (an id, or a list: its first), where values
//!   that are not ids of the vocabulary are passed over, as llama.cpp does; else, for
//!   SentencePiece, the ids its trainer spec states.
//! - `add_bos_token` / `add_eos_token` of tokenizer_config.json, else what a
//!   TemplateProcessing post-processor of tokenizer.json adds; `add_prefix_space` as
//!   `tokenizer.ggml.add_space_prefix`, else SentencePiece's `add_dummy_prefix`.
//! - The chat template: tokenizer_config.json's `chat_template` (a string, or a list of
//!   named templates: `default` is `tokenizer.chat_template`, the others
//!   `tokenizer.chat_template.NAME`), else chat_template.jinja, else chat_template.json.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;

use super::files::{self, MAX_JSON_BYTES};
use super::sentencepiece::{self, ModelType, PieceType};
use super::tokenizer_json::{check_normalizer, merge_text, pre_name, template_ends};
use super::ConvertError;
use crate::gguf::{keys, Array, Value};

/// Vocabularies larger than this are refused before anything is allocated for them.
pub const MAX_VOCAB: usize = 1 << 22;

const ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
const CHAT_TEMPLATES: &str = "tokenizer.chat_templates";

const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

/// The special-token kinds written, with their `tokenizer_config.json` prefix and GGUF key.
const SPECIALS: [(&str, &str); 4] = [
    ("bos", keys::TOKENIZER_BOS_ID),
    ("eos", keys::TOKENIZER_EOS_ID),
    ("unk", keys::TOKENIZER_UNK_ID),
    ("pad", keys::TOKENIZER_PAD_ID),
];

/// Every `tokenizer.*` key for the model in `model_dir`, whose embedding has `n_vocab` rows
/// (config.json's `vocab_size`).
pub fn tokenizer_metadata(
    model_dir: &Path,
    n_vocab: usize,
) -> Result<Vec<(String, Value)>, ConvertError> {
    if n_vocab == 0 || n_vocab > MAX_VOCAB {
        return Err(ConvertError::invalid(
            model_dir.join("config.json").display().to_string(),
            format!("vocab_size {n_vocab} is not between 1 and {MAX_VOCAB}"),
        ));
    }
    let tok_config_path = model_dir.join("tokenizer_config.json");
    let tok_config = read_json(&tok_config_path)?.unwrap_or(Json::Null);
    if !tok_config.is_null() && !tok_config.is_object() {
        return Err(invalid(&tok_config_path, "not a JSON object"));
    }

    let spm_path = model_dir.join("tokenizer.model");
    let json_path = model_dir.join("tokenizer.json");
    // exists(), not is_file(): a FIFO or a folder of that name is an error, not absent.
    let mut parsed = if spm_path.exists() {
        from_sentencepiece(model_dir, &spm_path, n_vocab)?
    } else if json_path.exists() {
        from_tokenizer_json(&json_path, n_vocab)?
    } else {
        return Err(ConvertError::invalid(
            model_dir.display().to_string(),
            "no tokenizer.json or tokenizer.model",
        ));
    };
    if let Some(decoder) = tok_config.get("added_tokens_decoder") {
        apply_added_tokens_decoder(&mut parsed.vocab, decoder, &tok_config_path)?;
    }
    let tokens = parsed.vocab.finish();

    let ids = special_ids(model_dir, &tok_config, &tokens, &parsed.fallback_ids)?;
    let text_of = |id: Option<u32>| id.map(|id| tokens[id as usize].as_str());
    let (bos_text, eos_text) = (text_of(ids[0]), text_of(ids[1]));
    let (mut add_bos, mut add_eos) = (None, None);
    if let Some((first, last)) = &parsed.template_ends {
        if let Some(first) = first {
            add_bos = Some(Some(first.as_str()) == bos_text);
        }
        if let Some(last) = last {
            add_eos = Some(Some(last.as_str()) == eos_text);
        }
    }
    if let Some(v) = tok_config.get("add_bos_token").and_then(Json::as_bool) {
        add_bos = Some(v);
    }
    if let Some(v) = tok_config.get("add_eos_token").and_then(Json::as_bool) {
        add_eos = Some(v);
    }
    let add_space_prefix = tok_config
        .get("add_prefix_space")
        .and_then(Json::as_bool)
        .or(parsed.add_space_prefix);

    let mut out: Vec<(String, Value)> = vec![
        (
            keys::TOKENIZER_MODEL.into(),
            Value::String(parsed.model.into()),
        ),
        (keys::TOKENIZER_PRE.into(), Value::String(parsed.pre.into())),
        (
            keys::TOKENIZER_TOKENS.into(),
            Value::Array(Array::String(tokens)),
        ),
    ];
    if let Some(scores) = parsed.vocab.scores {
        out.push((
            keys::TOKENIZER_SCORES.into(),
            Value::Array(Array::F32(scores)),
        ));
    }
    out.push((
        keys::TOKENIZER_TOKEN_TYPE.into(),
        Value::Array(Array::I32(parsed.vocab.types)),
    ));
    if let Some(merges) = parsed.merges {
        out.push((
            keys::TOKENIZER_MERGES.into(),
            Value::Array(Array::String(merges)),
        ));
    }
    for ((_, key), id) in SPECIALS.iter().zip(ids) {
        if let Some(id) = id {
            out.push((key.to_string(), Value::U32(id)));
        }
    }
    if let Some(v) = add_bos {
        out.push((keys::TOKENIZER_ADD_BOS.into(), Value::Bool(v)));
    }
    if let Some(v) = add_eos {
        out.push((keys::TOKENIZER_ADD_EOS.into(), Value::Bool(v)));
    }
    if let Some(v) = add_space_prefix {
        out.push((ADD_SPACE_PREFIX.into(), Value::Bool(v)));
    }
    out.extend(chat_templates(model_dir, &tok_config, &tok_config_path)?);
    Ok(out)
}

/// A vocabulary being built: ids without a token yet are `None`.
struct Draft {
    tokens: Vec<Option<String>>,
    types: Vec<i32>,
    /// SentencePiece only.
    scores: Option<Vec<f32>>,
}

impl Draft {
    /// An added token at `id`, typed as llama.cpp types it.
    fn add(&mut self, id: usize, content: &str, special: bool) {
        if special || looks_special(content) {
            if self.types[id] != UNKNOWN {
                self.types[id] = CONTROL;
            }
            self.tokens[id] = Some(content.to_string());
        } else {
            self.types[id] = USER_DEFINED;
            // llama.cpp matches user-defined tokens against the raw text.
            self.tokens[id] = Some(content.replace('\u{2581}', " "));
        }
        if let Some(scores) = &mut self.scores {
            scores[id] = -1000.0;
        }
    }

    /// The token texts, with `[PAD{i}]` (unused) for the ids nothing named.
    fn finish(&mut self) -> Vec<String> {
        let tokens = std::mem::take(&mut self.tokens);
        tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                t.unwrap_or_else(|| {
                    self.types[i] = UNUSED;
                    format!("[PAD{i}]")
                })
            })
            .collect()
    }
}

/// Added tokens some converters mark as not special although they are markup.
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<\u{ff5c}") && t.ends_with("\u{ff5c}>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// What one tokenizer file gives, before tokenizer_config.json is applied.
struct Parsed {
    model: &'static str,
    pre: &'static str,
    vocab: Draft,
    merges: Option<Vec<String>>,
    add_space_prefix: Option<bool>,
    /// Special ids the tokenizer file itself states, in `SPECIALS` order.
    fallback_ids: [Option<u32>; 4],
    /// The special tokens a TemplateProcessing post-processor puts first and last.
    template_ends: Option<(Option<String>, Option<String>)>,
}

fn from_sentencepiece(dir: &Path, path: &Path, n_vocab: usize) -> Result<Parsed, ConvertError> {
    let spm = sentencepiece::read_model(path)?;
    if let Some(t) = spm.model_type.filter(|&t| t != ModelType::Bpe) {
        return Err(invalid(
            path,
            format!(
                "a SentencePiece {} model; ropewalk converts SentencePiece BPE models (Llama, Mistral)",
                t.name()
            ),
        ));
    }
    let n = spm.pieces.len();
    if n > n_vocab {
        return Err(invalid(
            path,
            format!("{n} pieces, more than vocab_size {n_vocab} of config.json"),
        ));
    }
    let mut tokens = vec![None; n_vocab];
    let mut types = vec![UNUSED; n_vocab];
    let mut scores = vec![-10000.0; n_vocab];
    for (i, p) in spm.pieces.iter().enumerate() {
        tokens[i] = Some(p.text.clone());
        types[i] = p.kind as i32;
        scores[i] = p.score;
    }
    let mut vocab = Draft {
        tokens,
        types,
        scores: Some(scores),
    };

    let added_path = dir.join("added_tokens.json");
    if let Some(added) = read_json(&added_path)? {
        let Some(map) = added.as_object() else {
            return Err(invalid(&added_path, "not a JSON object of token: id"));
        };
        for (text, id) in map {
            let id = token_id(id, n_vocab)
                .map_err(|m| invalid(&added_path, format!("token {text:?}: {m}")))?;
            // llama.cpp types these user-defined whatever they look like.
            vocab.tokens[id] = Some(text.clone());
            vocab.types[id] = USER_DEFINED;
            if let Some(scores) = &mut vocab.scores {
                scores[id] = -1000.0;
            }
        }
    }

    // Ids the trainer spec states, or its defaults (unk 0, bos 1, eos 2, no pad).
    let state = |v: Option<i32>, default: i32| {
        let id = v.unwrap_or(default);
        (0..n as i64).contains(&i64::from(id)).then_some(id as u32)
    };
    let unk = spm
        .pieces
        .iter()
        .position(|p| p.kind == PieceType::Unknown)
        .map(|i| i as u32)
        .or(state(spm.unk_id, 0));
    Ok(Parsed {
        model: "llama",
        pre: "default",
        vocab,
        merges: None,
        add_space_prefix: spm.add_dummy_prefix,
        fallback_ids: [
            state(spm.bos_id, 1),
            state(spm.eos_id, 2),
            unk,
            state(spm.pad_id, -1),
        ],
        template_ends: None,
    })
}

fn from_tokenizer_json(path: &Path, n_vocab: usize) -> Result<Parsed, ConvertError> {
    let json = read_json(path)?.unwrap_or(Json::Null);
    let model = json
        .get("model")
        .filter(|m| m.is_object())
        .ok_or_else(|| ConvertError::missing_key(path.display().to_string(), "model"))?;
    match model.get("type").and_then(Json::as_str) {
        Some("BPE") | None => {}
        Some(t) => {
            return Err(invalid(
                path,
                format!("model type '{t}' is not supported (ropewalk converts byte-level BPE tokenizer.json and SentencePiece tokenizer.model)"),
            ))
        }
    }
    if model.get("byte_fallback").and_then(Json::as_bool) == Some(true) {
        return Err(invalid(
            path,
            "a SentencePiece-style BPE (byte_fallback): ropewalk converts it from its tokenizer.model, which is missing",
        ));
    }
    check_normalizer(json.get("normalizer")).map_err(|m| invalid(path, m))?;
    let pre = pre_name(json.get("pre_tokenizer")).map_err(|m| invalid(path, m))?;

    let entries = model
        .get("vocab")
        .and_then(Json::as_object)
        .ok_or_else(|| ConvertError::missing_key(path.display().to_string(), "model.vocab"))?;
    let mut vocab = Draft {
        tokens: vec![None; n_vocab],
        types: vec![NORMAL; n_vocab],
        scores: None,
    };
    for (text, id) in entries {
        let id = token_id(id, n_vocab)
            .map_err(|m| invalid(path, format!("model.vocab {text:?}: {m}")))?;
        if let Some(other) = &vocab.tokens[id] {
            return Err(invalid(
                path,
                format!("model.vocab gives id {id} to both {other:?} and {text:?}"),
            ));
        }
        vocab.tokens[id] = Some(text.clone());
    }
    if let Some(added) = json.get("added_tokens").filter(|a| !a.is_null()) {
        let list = added
            .as_array()
            .ok_or_else(|| invalid(path, "added_tokens is not a list"))?;
        for (i, entry) in list.iter().enumerate() {
            let id = entry
                .get("id")
                .ok_or_else(|| "has no id".to_string())
                .and_then(|id| token_id(id, n_vocab));
            let content = entry.get("content").and_then(Json::as_str);
            let (Ok(id), Some(content)) = (id, content) else {
                return Err(invalid(
                    path,
                    format!("added_tokens[{i}] is not an {{id, content}} object with an id below vocab_size {n_vocab}"),
                ));
            };
            let special = entry.get("special").and_then(Json::as_bool) == Some(true);
            vocab.add(id, content, special);
        }
    }

    let list = model
        .get("merges")
        .ok_or_else(|| ConvertError::missing_key(path.display().to_string(), "model.merges"))?
        .as_array()
        .ok_or_else(|| invalid(path, "model.merges is not a list"))?;
    let mut merges = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        merges.push(merge_text(m).ok_or_else(|| {
            invalid(
                path,
                format!("model.merges[{i}] = {m} is neither \"a b\" nor [\"a\", \"b\"]"),
            )
        })?);
    }

    Ok(Parsed {
        model: "gpt2",
        pre,
        vocab,
        merges: Some(merges),
        add_space_prefix: None,
        fallback_ids: [None; 4],
        template_ends: template_ends(json.get("post_processor")),
    })
}

fn token_id(v: &Json, n_vocab: usize) -> Result<usize, String> {
    match v.as_u64() {
        Some(id) if id < n_vocab as u64 => Ok(id as usize),
        Some(id) => Err(format!(
            "id {id} is outside vocab_size {n_vocab} of config.json"
        )),
        None => Err(format!("{v} is not a token id")),
    }
}

fn apply_added_tokens_decoder(
    vocab: &mut Draft,
    decoder: &Json,
    path: &Path,
) -> Result<(), ConvertError> {
    let Some(map) = decoder.as_object() else {
        return Err(invalid(path, "added_tokens_decoder is not an object"));
    };
    let n_vocab = vocab.tokens.len();
    // By id, so that the order of the JSON object does not matter.
    let mut sorted = BTreeMap::new();
    for (key, entry) in map {
        let id = key
            .parse::<usize>()
            .ok()
            .filter(|&id| id < n_vocab)
            .ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "added_tokens_decoder key {key:?} is not an id below vocab_size {n_vocab}"
                    ),
                )
            })?;
        let content = entry.get("content").and_then(Json::as_str).ok_or_else(|| {
            invalid(
                path,
                format!("added_tokens_decoder[{key:?}] has no content"),
            )
        })?;
        let special = entry.get("special").and_then(Json::as_bool) == Some(true);
        sorted.insert(id, (content, special));
    }
    for (id, (content, special)) in sorted {
        vocab.add(id, content, special);
    }
    Ok(())
}

/// bos, eos, unk, pad, in `SPECIALS` order.
fn special_ids(
    dir: &Path,
    tok_config: &Json,
    tokens: &[String],
    fallback: &[Option<u32>; 4],
) -> Result<[Option<u32>; 4], ConvertError> {
    let generation = read_json(&dir.join("generation_config.json"))?.unwrap_or(Json::Null);
    let config = read_json(&dir.join("config.json"))?.unwrap_or(Json::Null);
    let n = tokens.len() as u64;
    let as_id = |v: &Json| -> Option<u32> {
        let first = match v {
            Json::Array(list) => list.first()?,
            other => other,
        };
        first.as_u64().filter(|&id| id < n).map(|id| id as u32)
    };
    let mut ids = [None; 4];
    for (i, (kind, _)) in SPECIALS.iter().enumerate() {
        let by_text = tok_config
            .get(format!("{kind}_token"))
            .and_then(|t| match t {
                Json::String(s) => Some(s.as_str()),
                Json::Object(o) => o.get("content").and_then(Json::as_str),
                _ => None,
            })
            .and_then(|text| tokens.iter().position(|t| t == text))
            .map(|id| id as u32);
        let key = format!("{kind}_token_id");
        ids[i] = by_text
            .or_else(|| generation.get(&key).and_then(as_id))
            .or_else(|| config.get(&key).and_then(as_id))
            .or(fallback[i]);
    }
    Ok(ids)
}

fn chat_templates(
    dir: &Path,
    tok_config: &Json,
    tok_config_path: &Path,
) -> Result<Vec<(String, Value)>, ConvertError> {
    let mut source = tok_config_path.to_path_buf();
    let mut template = tok_config.get("chat_template").cloned();
    if template.is_none() {
        let jinja = dir.join("chat_template.jinja");
        let json = dir.join("chat_template.json");
        if let Some(bytes) = files::read_optional(&jinja, MAX_JSON_BYTES)? {
            let text = String::from_utf8(bytes).map_err(|_| invalid(&jinja, "not UTF-8"))?;
            template = Some(Json::String(text));
            source = jinja;
        } else if let Some(j) = read_json(&json)? {
            template = j.get("chat_template").cloned();
            source = json;
        }
    }
    let mut out = Vec::new();
    match template {
        None | Some(Json::Null) => {}
        Some(Json::String(s)) => out.push((keys::TOKENIZER_CHAT_TEMPLATE.into(), Value::String(s))),
        Some(Json::Array(list)) => {
            let mut names = Vec::new();
            let mut default = None;
            for (i, entry) in list.iter().enumerate() {
                let name = entry.get("name").and_then(Json::as_str);
                let text = entry.get("template").and_then(Json::as_str);
                let (Some(name), Some(text)) = (name, text) else {
                    return Err(invalid(
                        &source,
                        format!("chat_template[{i}] is not a {{name, template}} object"),
                    ));
                };
                // As llama.cpp: a name becomes part of a key, so only [A-Za-z0-9_] is kept.
                let name: String = name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                if name == "default" {
                    default = Some(text.to_string());
                } else if !name.is_empty() && !names.contains(&name) {
                    out.push((
                        format!("{}.{name}", keys::TOKENIZER_CHAT_TEMPLATE),
                        Value::String(text.to_string()),
                    ));
                    names.push(name);
                }
            }
            if !names.is_empty() {
                out.push((CHAT_TEMPLATES.into(), Value::Array(Array::String(names))));
            }
            if let Some(text) = default {
                out.push((keys::TOKENIZER_CHAT_TEMPLATE.into(), Value::String(text)));
            }
        }
        Some(_) => {
            return Err(invalid(
                &source,
                "chat_template is neither a string nor a list of {name, template}",
            ))
        }
    }
    Ok(out)
}

/// A JSON file of the model folder; `None` when it does not exist.
fn read_json(path: &Path) -> Result<Option<Json>, ConvertError> {
    match files::read_optional(path, MAX_JSON_BYTES)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ConvertError::json(path, e)),
        None => Ok(None),
    }
}

fn invalid(path: &Path, msg: impl Into<String>) -> ConvertError {
    ConvertError::invalid(path.display().to_string(), msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_looking_tokens() {
        for t in ["<|im_end|>", "<pad>", "<unused12>", "<｜end▁of▁sentence｜>"] {
            assert!(looks_special(t), "{t}");
        }
        for t in ["<tool>", "<|im_end", "pad"] {
            assert!(!looks_special(t), "{t}");
        }
    }
}
