//! The parts of a Hugging Face `tokenizer.json` that take more than a lookup: the
//! pre-tokenizer, recognized by its structure and named as llama.cpp names it, the
//! normalizer, the two spellings of merges, and the special tokens of a template
//! post-processor.

use serde_json::Value as Json;

/// The split regex of Llama-3's tokenizer.json (`llama-bpe` in llama.cpp).
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's: Llama-3's with single digits.
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A merge as GGUF stores it: two tokens and a space. Spaces inside a token of the pair
/// form are written as `Ġ` (U+0120), the byte-level spelling of a space, as llama.cpp does.
pub(super) fn merge_text(m: &Json) -> Option<String> {
    match m {
        // Two non-empty tokens around a space, found as the tokenizer loader finds it.
        Json::String(s) if separated(s.as_bytes()) => Some(s.clone()),
        Json::Array(pair) => match pair.as_slice() {
            [Json::String(a), Json::String(b)] => {
                let enc = |s: &str| s.replace(' ', "\u{120}");
                Some(format!("{} {}", enc(a), enc(b)))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Whether a space after the first byte splits `b` into two non-empty parts.
fn separated(b: &[u8]) -> bool {
    let sep = b
        .get(1..)
        .and_then(|rest| rest.iter().position(|&c| c == b' '));
    sep.is_some_and(|p| p + 2 < b.len())
}

/// Normalizers change the text before it is split; byte-level models run without one
/// (Qwen2's NFC is harmless on normalized input, and llama.cpp ignores it too).
pub(super) fn check_normalizer(n: Option<&Json>) -> Result<(), String> {
    let Some(n) = n.filter(|n| !n.is_null()) else {
        return Ok(());
    };
    match n.get("type").and_then(Json::as_str) {
        Some("NFC") => Ok(()),
        Some("Sequence") => n
            .get("normalizers")
            .and_then(Json::as_array)
            .map_or(Ok(()), |list| {
                list.iter().try_for_each(|x| check_normalizer(Some(x)))
            }),
        _ => Err(format!(
            "normalizer {} is not supported for a byte-level BPE tokenizer",
            describe(n)
        )),
    }
}

/// The `tokenizer.ggml.pre` name of a pre-tokenizer, recognized by its structure.
pub(super) fn pre_name(pre: Option<&Json>) -> Result<&'static str, String> {
    let Some(pre) = pre.filter(|p| !p.is_null()) else {
        return Err("no pre_tokenizer: not a byte-level BPE tokenizer".to_string());
    };
    let steps: Vec<&Json> = if type_of(pre) == "Sequence" {
        match pre.get("pretokenizers").and_then(Json::as_array) {
            Some(list) => list.iter().collect(),
            None => Vec::new(),
        }
    } else {
        vec![pre]
    };
    let name = match steps.as_slice() {
        [b] if is_byte_level(b, true) => Some("gpt2"),
        [d, b] if is_individual_digits(d) && is_byte_level(b, true) => Some("smollm"),
        [s, b] if is_byte_level(b, false) => match split_regex(s) {
            Some(LLAMA3_REGEX) => Some("llama-bpe"),
            Some(QWEN2_REGEX) => Some("qwen2"),
            _ => None,
        },
        _ => None,
    };
    name.ok_or_else(|| {
        format!(
            "pre_tokenizer {} has no tokenizer.ggml.pre name ropewalk knows (it maps ByteLevel to gpt2, \
             Digits(individual) + ByteLevel to smollm, and the Llama-3 and Qwen2 Split regexes to llama-bpe and qwen2)",
            describe(pre)
        )
    })
}

fn type_of(v: &Json) -> &str {
    v.get("type").and_then(Json::as_str).unwrap_or("?")
}

/// A ByteLevel step without a prefix space; `use_regex`: whether it splits with GPT-2's
/// regex itself (both default to true in Hugging Face `tokenizers`).
fn is_byte_level(v: &Json, use_regex: bool) -> bool {
    let flag = |k: &str| v.get(k).and_then(Json::as_bool).unwrap_or(true);
    type_of(v) == "ByteLevel" && !flag("add_prefix_space") && flag("use_regex") == use_regex
}

fn is_individual_digits(v: &Json) -> bool {
    type_of(v) == "Digits" && v.get("individual_digits").and_then(Json::as_bool) == Some(true)
}

fn split_regex(v: &Json) -> Option<&str> {
    let isolated = v.get("behavior").and_then(Json::as_str) == Some("Isolated");
    let inverted = v.get("invert").and_then(Json::as_bool) == Some(true);
    if type_of(v) != "Split" || !isolated || inverted {
        return None;
    }
    v.get("pattern")?.get("Regex")?.as_str()
}

/// A one-line picture of a pre-tokenizer or normalizer for error messages:
/// `Sequence[Split(Regex "..."), ByteLevel(add_prefix_space=false, use_regex=false)]`.
fn describe(v: &Json) -> String {
    let ty = type_of(v);
    if let Some(list) = v
        .get("pretokenizers")
        .or_else(|| v.get("normalizers"))
        .and_then(Json::as_array)
    {
        let inner: Vec<String> = list.iter().map(describe).collect();
        return format!("{ty}[{}]", inner.join(", "));
    }
    let Some(obj) = v.as_object() else {
        return v.to_string();
    };
    let args: Vec<String> = obj
        .iter()
        .filter(|(k, _)| *k != "type")
        .map(|(k, x)| {
            // A one-entry object such as `"pattern": {"Regex": "..."}` reads `Regex "..."`.
            let mut s = match x.as_object().map(|o| (o.len(), o.iter().next())) {
                Some((1, Some((k2, x2)))) => format!("{k2} {x2}"),
                _ => format!("{k}={x}"),
            };
            if s.chars().count() > 80 {
                s = s.chars().take(77).collect::<String>() + "...";
            }
            s
        })
        .collect();
    format!("{ty}({})", args.join(", "))
}

/// The special tokens (by text) that a TemplateProcessing post-processor puts before and
/// after a single sequence; llama.cpp reads add_bos/add_eos from them.
pub(super) fn template_ends(pp: Option<&Json>) -> Option<(Option<String>, Option<String>)> {
    let pp = pp?;
    let processors: Vec<&Json> = match pp.get("processors").and_then(Json::as_array) {
        Some(list) => list.iter().collect(),
        None => vec![pp],
    };
    let single = processors
        .iter()
        .find(|p| type_of(p) == "TemplateProcessing")?
        .get("single")?
        .as_array()?;
    if single.len() < 2 {
        return None;
    }
    let special = |v: &Json| {
        v.get("SpecialToken")?
            .get("id")?
            .as_str()
            .map(str::to_string)
    };
    Some((special(&single[0]), special(&single[single.len() - 1])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pre_tokenizers_are_named_by_structure() {
        let bl = |re: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": re});
        let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
        let seq = |v: Vec<Json>| json!({"type": "Sequence", "pretokenizers": v});
        let digits = json!({"type": "Digits", "individual_digits": true});
        assert_eq!(pre_name(Some(&bl(true))), Ok("gpt2"));
        assert_eq!(pre_name(Some(&seq(vec![bl(true)]))), Ok("gpt2"));
        assert_eq!(
            pre_name(Some(&seq(vec![digits.clone(), bl(true)]))),
            Ok("smollm")
        );
        assert_eq!(
            pre_name(Some(&seq(vec![split(LLAMA3_REGEX), bl(false)]))),
            Ok("llama-bpe")
        );
        assert_eq!(
            pre_name(Some(&seq(vec![split(QWEN2_REGEX), bl(false)]))),
            Ok("qwen2")
        );

        // Near misses are errors that show the structure.
        let grouped_digits = json!({"type": "Digits", "individual_digits": false});
        let err = pre_name(Some(&seq(vec![grouped_digits, bl(true)]))).unwrap_err();
        assert!(
            err.contains("Sequence[Digits(individual_digits=false), ByteLevel("),
            "{err}"
        );
        let err = pre_name(Some(&seq(vec![split("\\s+"), bl(false)]))).unwrap_err();
        assert!(
            err.contains(r#"Split(behavior="Isolated", invert=false, Regex "\\s+")"#),
            "{err}"
        );
        let prefix = json!({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true});
        assert!(pre_name(Some(&prefix)).is_err());
        assert!(pre_name(Some(&seq(vec![split(LLAMA3_REGEX), bl(true)]))).is_err());
        assert!(pre_name(None).unwrap_err().contains("no pre_tokenizer"));
        assert!(pre_name(Some(&json!({"type": "Metaspace"}))).is_err());
    }

    #[test]
    fn merges_in_both_forms() {
        assert_eq!(merge_text(&json!("Ġ t")).as_deref(), Some("Ġ t"));
        assert_eq!(merge_text(&json!(["Ġ", "t"])).as_deref(), Some("Ġ t"));
        assert_eq!(merge_text(&json!(["a b", "c"])).as_deref(), Some("aĠb c"));
        assert_eq!(merge_text(&json!("ab")), None);
        assert_eq!(merge_text(&json!("a ")), None);
        assert_eq!(merge_text(&json!(" a")), None);
        assert_eq!(merge_text(&json!(["a"])), None);
        assert_eq!(merge_text(&json!([1, 2])), None);
    }
}
