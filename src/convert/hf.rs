//! A Hugging Face model folder to one GGUF file: everything is read and checked (config,
//! shard headers, shapes, tokenizer) before the output is created, then the tensors are
//! streamed through [`write_gguf`].

use std::collections::BTreeMap;
use std::path::Path;

use super::config::HfConfig;
use super::error::ConvertError;
use super::names::plan;
use super::permute::RowOrder;
use super::policy::{OutType, TypeChooser};
use super::rope::RopePlan;
use super::shards::Shards;
use super::stream::{write_gguf, Progress, RowSource};
use crate::gguf::{keys, GgufWriter, Metadata, TensorSpec, Value};
use crate::model::rope::RopeConfig;
use crate::model::{LlamaConfig, RopeOverrides};
use crate::quant::GgmlType;
use crate::tokenizer::Tokenizer;

/// ggml's quantization format version, which every writer records.
pub const QUANTIZATION_VERSION: u32 = 2;

#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    pub outtype: Option<OutType>,
    pub rope: RopeOverrides,
    /// The advertised context length (`llama.context_length`).
    pub ctx: Option<usize>,
    /// `general.name`; the config's `_name_or_path` or the folder's name otherwise.
    pub name: Option<String>,
}

/// What was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub tensors: usize,
    pub input_bytes: u64,
    pub output_bytes: u64,
    /// Tensors per type.
    pub types: BTreeMap<GgmlType, usize>,
}

/// Reads header `m` (with the `rope_freqs` values `freqs`) as the loader will, so that a
/// file it would refuse is not written: values that pass the checks on the way but not
/// the trip through f32 (a scale of 1e-320 stored as 0, a base of 1e308 as inf), or a
/// vocabulary that tokenizer_config.json gives one text twice.
fn check_loadable(m: &Metadata, freqs: Option<&[u8]>) -> Result<(), ConvertError> {
    let unloadable = |e: &dyn std::fmt::Display| ConvertError::Unloadable(e.to_string());
    let config = LlamaConfig::from_metadata(m).map_err(|e| unloadable(&e))?;
    let freqs = freqs.map(|b| (GgmlType::F32, (b.len() / 4) as u64, b));
    RopeConfig::from_metadata(m, &config, freqs).map_err(|e| unloadable(&e))?;
    Tokenizer::from_metadata(m).map_err(|e| unloadable(&e))?;
    Ok(())
}

/// Converts `model_dir` into `output` (written atomically; nothing appears under that
/// name unless the whole file was written).
pub fn convert(
    model_dir: &Path,
    output: &Path,
    opts: &ConvertOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Written, ConvertError> {
    let outtype = opts.outtype.unwrap_or(OutType::F16);
    let config = HfConfig::read(model_dir)?;
    let rope = RopePlan::new(&config, &opts.rope, opts.ctx)?;
    let shards = Shards::open(model_dir)?;
    let planned = plan(&config, &shards)?;
    let tokenizer = super::tokenizer::tokenizer_metadata(model_dir, config.vocab_size)?;

    let mut m = Metadata::new();
    m.set(keys::GENERAL_ARCHITECTURE, Value::String("llama".into()));
    m.set(
        keys::GENERAL_NAME,
        Value::String(model_name(opts, &config, model_dir)),
    );
    m.set(keys::GENERAL_FILE_TYPE, Value::U32(outtype.file_type()));
    m.set(
        keys::GENERAL_QUANTIZATION_VERSION,
        Value::U32(QUANTIZATION_VERSION),
    );
    let llama = |suffix| keys::arch_key("llama", suffix);
    let u32v = |n: usize| Value::U32(n as u32);
    m.set(llama(keys::BLOCK_COUNT), u32v(config.n_layers));
    m.set(llama(keys::EMBEDDING_LENGTH), u32v(config.hidden_size));
    m.set(
        llama(keys::FEED_FORWARD_LENGTH),
        u32v(config.intermediate_size),
    );
    m.set(llama(keys::HEAD_COUNT), u32v(config.n_heads));
    m.set(llama(keys::HEAD_COUNT_KV), u32v(config.n_kv_heads));
    if config.head_dim * config.n_heads != config.hidden_size {
        // Heads narrower or wider than hidden_size / n_heads (Mistral Nemo): llama.cpp
        // reads the head size from these.
        m.set(llama("attention.key_length"), u32v(config.head_dim));
        m.set(llama("attention.value_length"), u32v(config.head_dim));
    }
    m.set(llama(keys::RMS_EPS), Value::F32(config.rms_norm_eps as f32));
    m.set(llama(keys::VOCAB_SIZE), u32v(config.vocab_size));
    rope.write_keys(&mut m);
    for (k, v) in tokenizer {
        m.set(k, v);
    }

    let freq_bytes: Option<Vec<u8>> = rope
        .freq_factors()
        .map(|f| f.iter().flat_map(|x| x.to_le_bytes()).collect());
    check_loadable(&m, freq_bytes.as_deref())?;
    let mut names: Vec<&str> = vec![planned[0].name.as_str()];
    if freq_bytes.is_some() {
        names.push(keys::ROPE_FREQS_TENSOR);
    }
    names.extend(planned[1..].iter().map(|p| p.name.as_str()));
    let is_70b = config.n_layers == 80 && config.n_heads != config.n_kv_heads;
    let mut chooser = TypeChooser::new(outtype, &names, config.n_layers, is_70b);

    let mut writer = GgufWriter::new(m)?;
    let mut sources = Vec::with_capacity(names.len());
    for (i, p) in planned.iter().enumerate() {
        if i == 1 {
            if let Some(bytes) = &freq_bytes {
                let n = bytes.len() / 4;
                writer.add_tensor(TensorSpec::new(
                    keys::ROPE_FREQS_TENSOR,
                    GgmlType::F32,
                    &[n as u64],
                ))?;
                sources.push(RowSource {
                    bytes,
                    ty: GgmlType::F32,
                    row_len: n,
                    n_rows: 1,
                    order: RowOrder::Identity,
                    pages: None,
                });
            }
        }
        let ty = chooser.choose(&p.name, &p.dims, GgmlType::F32);
        writer.add_tensor(TensorSpec::new(p.name.clone(), ty, &p.dims))?;
        sources.push(RowSource {
            bytes: shards.bytes(p.stored),
            ty: p.stored.ty,
            row_len: p.dims[0] as usize,
            n_rows: p.dims[1..].iter().product::<u64>() as usize,
            order: p.order,
            pages: Some(shards.pages(p.stored)),
        });
    }
    write_gguf(output, &writer, &sources, progress)?;
    Ok(summary(&writer, &sources))
}

pub(crate) fn summary(writer: &GgufWriter, sources: &[RowSource]) -> Written {
    let mut types = BTreeMap::new();
    for t in writer.tensors() {
        *types.entry(t.ty).or_insert(0) += 1;
    }
    Written {
        tensors: writer.tensors().len(),
        input_bytes: sources.iter().map(|s| s.bytes.len() as u64).sum(),
        output_bytes: writer.file_len(),
        types,
    }
}

fn model_name(opts: &ConvertOptions, config: &HfConfig, model_dir: &Path) -> String {
    let last = |s: &str| s.rsplit(['/', '\\']).next().unwrap_or(s).to_string();
    if let Some(n) = &opts.name {
        return n.clone();
    }
    if let Some(n) = config.name.as_deref().map(last).filter(|n| !n.is_empty()) {
        return n;
    }
    std::fs::canonicalize(model_dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into())
}
