//! `ropewalk info FILE`: header, metadata, tensor table and totals by type.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value as Json};

use super::CliResult;
use ropewalk::gguf::{keys, Array, GgufFile, Summary, Value};
use ropewalk::model::{LlamaConfig, RopeConfig};
use ropewalk::quant::GgmlType;

/// Arrays longer than this are shown as `[type; len]` unless `--full` is given.
const ARRAY_PREVIEW: usize = 16;
/// Strings longer than this (chat templates) are cut in the text view unless `--full`.
const STRING_PREVIEW: usize = 120;

#[derive(Args)]
pub struct InfoArgs {
    /// The GGUF file.
    pub file: PathBuf,
    /// Print JSON for machines instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print long arrays and strings in full.
    #[arg(long)]
    pub full: bool,
}

pub fn run(args: &InfoArgs) -> CliResult {
    let file = GgufFile::open(&args.file)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &to_json(args, &file))
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        print_text(&mut out, args, &file)
    };
    super::finish_output(written.and_then(|()| out.flush()))
}

struct TypeTotal {
    tensors: usize,
    elements: u64,
    bytes: u64,
}

fn totals(file: &GgufFile) -> BTreeMap<GgmlType, TypeTotal> {
    let mut by_type = BTreeMap::new();
    for t in file.tensors() {
        let e = by_type.entry(t.ty).or_insert(TypeTotal {
            tensors: 0,
            elements: 0,
            bytes: 0,
        });
        e.tensors += 1;
        e.elements += t.n_elements();
        e.bytes += t.n_bytes();
    }
    by_type
}

fn print_text(w: &mut impl Write, args: &InfoArgs, file: &GgufFile) -> io::Result<()> {
    let h = file.header();
    writeln!(w, "{}", args.file.display())?;
    writeln!(
        w,
        "GGUF v{}, {} bytes, {} metadata keys, {} tensors, alignment {}, data at offset {}",
        h.version,
        file.file_len(),
        h.metadata.len(),
        h.tensors.len(),
        h.alignment,
        h.data_offset
    )?;
    if let Some(rope) = rope_in_words(file) {
        // The reason a header is refused may quote its text.
        writeln!(w, "rope: {}", super::one_line(&rope))?;
    }

    writeln!(w, "\nmetadata:")?;
    let max_items = if args.full { usize::MAX } else { ARRAY_PREVIEW };
    for (key, value) in h.metadata.iter() {
        let mut shown = Summary { value, max_items }.to_string();
        if !args.full && shown.chars().count() > STRING_PREVIEW {
            let cut: String = shown.chars().take(STRING_PREVIEW).collect();
            shown = format!("{cut}... ({} chars)", shown.chars().count());
        }
        writeln!(w, "  {key}: {shown}")?;
    }

    let name_w = h
        .tensors
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(w, "\ntensors (shape innermost first):")?;
    writeln!(
        w,
        "  {:>4}  {:<name_w$}  {:<5}  {:<22}  {:>12}  {:>12}",
        "#", "name", "type", "shape", "bytes", "offset"
    )?;
    for (i, t) in h.tensors.iter().enumerate() {
        let shape = t
            .dims
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" x ");
        writeln!(
            w,
            "  {i:>4}  {:<name_w$}  {:<5}  {shape:<22}  {:>12}  {:>12}",
            t.name,
            t.ty.name(),
            t.n_bytes(),
            h.data_offset + t.offset
        )?;
    }

    let by_type = totals(file);
    let all_bytes: u64 = by_type.values().map(|t| t.bytes).sum();
    let all_elements: u64 = by_type.values().map(|t| t.elements).sum();
    writeln!(w, "\ntotals by type:")?;
    writeln!(
        w,
        "  {:<5}  {:>7}  {:>13}  {:>13}  {:>6}  {:>14}",
        "type", "tensors", "elements", "bytes", "share", "bits/weight"
    )?;
    for (ty, t) in &by_type {
        writeln!(
            w,
            "  {:<5}  {:>7}  {:>13}  {:>13}  {:>5.1}%  {:>14.3}",
            ty.name(),
            t.tensors,
            t.elements,
            t.bytes,
            100.0 * t.bytes as f64 / all_bytes.max(1) as f64,
            8.0 * t.bytes as f64 / t.elements.max(1) as f64
        )?;
    }
    writeln!(
        w,
        "  {:<5}  {:>7}  {:>13}  {:>13}  {:>6}  {:>14.3}",
        "all",
        h.tensors.len(),
        all_elements,
        all_bytes,
        "",
        8.0 * all_bytes as f64 / all_elements.max(1) as f64
    )?;
    Ok(())
}

fn to_json(args: &InfoArgs, file: &GgufFile) -> Json {
    let h = file.header();
    let max_items = if args.full { usize::MAX } else { ARRAY_PREVIEW };
    let metadata: serde_json::Map<String, Json> = h
        .metadata
        .iter()
        .map(|(k, v)| (k.to_string(), value_json(v, max_items)))
        .collect();
    let tensors: Vec<Json> = h
        .tensors
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "type": t.ty.name(),
                "shape": t.dims,
                "elements": t.n_elements(),
                "bytes": t.n_bytes(),
                "offset": h.data_offset + t.offset,
            })
        })
        .collect();
    let totals: serde_json::Map<String, Json> = totals(file)
        .into_iter()
        .map(|(ty, t)| {
            let v = json!({"tensors": t.tensors, "elements": t.elements, "bytes": t.bytes});
            (ty.name().to_string(), v)
        })
        .collect();
    json!({
        "file": args.file.display().to_string(),
        "file_size": file.file_len(),
        "version": h.version,
        "alignment": h.alignment,
        "data_offset": h.data_offset,
        "rope": rope_in_words(file),
        "metadata": metadata,
        "tensors": tensors,
        "totals_by_type": totals,
    })
}

/// The effective RoPE configuration of a llama file in words ("linear interpolation x4:
/// trained 8192, runs to 32768"), as the runtime will apply it; `None` for other models.
fn rope_in_words(file: &GgufFile) -> Option<String> {
    let m = file.metadata();
    if m.get_str(keys::GENERAL_ARCHITECTURE).ok()? != "llama" {
        return None;
    }
    let rope = LlamaConfig::from_metadata(m).and_then(|c| RopeConfig::from_gguf(file, &c));
    Some(match rope {
        Ok(rope) => rope.to_string(),
        Err(e) => format!("unreadable: {e}"),
    })
}

/// A value as `{"type": ..., "value": ...}`; arrays past `max_items` carry only their
/// element type and length.
fn value_json(v: &Value, max_items: usize) -> Json {
    match v {
        Value::Array(a) => array_json(a, max_items),
        _ => json!({"type": v.value_type().name(), "value": scalar_json(v)}),
    }
}

fn array_json(a: &Array, max_items: usize) -> Json {
    let mut obj = json!({"type": "array", "element_type": a.element_type().name(), "len": a.len()});
    if a.len() <= max_items {
        let values: Vec<Json> = match a {
            Array::Array(inner) => inner.iter().map(|x| array_json(x, max_items)).collect(),
            _ => (0..a.len())
                .map(|i| scalar_json(&a.get(i).expect("index below len")))
                .collect(),
        };
        obj["value"] = Json::Array(values);
    }
    obj
}

fn scalar_json(v: &Value) -> Json {
    match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::F32(x) => json!(x),
        Value::Bool(x) => json!(x),
        Value::String(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::Array(a) => array_json(a, usize::MAX),
    }
}
