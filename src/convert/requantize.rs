//! Requantizing a GGUF file, ours or anyone's: every key-value is kept (`general.file_type`
//! updated), every tensor keeps its name, shape and order and gets the type the policy
//! picks, decoded from its present type and encoded again. Tensors already of the chosen
//! type are copied byte for byte.

use std::path::Path;

use memmap2::Mmap;

use super::error::ConvertError;
use super::hf::{summary, Written, QUANTIZATION_VERSION};
use super::permute::RowOrder;
use super::policy::{OutType, TypeChooser};
use super::stream::{write_gguf, Progress, RowSource};
use crate::gguf::{keys, GgufWriter, Header, TensorSpec, Value};

pub fn requantize(
    input: &Path,
    output: &Path,
    outtype: OutType,
    progress: &mut dyn FnMut(Progress),
) -> Result<Written, ConvertError> {
    let file = super::files::open_regular(input)?;
    // SAFETY: a read-only private map; as for every model loader, the file must not be
    // truncated by another process while it is read.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| ConvertError::io(input, e))?;
    let header = Header::parse(&map)
        .map_err(|e| ConvertError::invalid(input.display().to_string(), e.to_string()))?;

    let mut m = header.metadata.clone();
    m.set(keys::GENERAL_FILE_TYPE, Value::U32(outtype.file_type()));
    m.set(
        keys::GENERAL_QUANTIZATION_VERSION,
        Value::U32(QUANTIZATION_VERSION),
    );
    let arch = m.get_str_opt(keys::GENERAL_ARCHITECTURE)?.unwrap_or("");
    let n_layers = match m.get_usize_opt(&keys::arch_key(arch, keys::BLOCK_COUNT))? {
        Some(n) => n,
        None => count_blocks(header.tensors.iter().map(|t| t.name.as_str())),
    };
    let heads = m.get_usize_opt(&keys::arch_key(arch, keys::HEAD_COUNT))?;
    let kv_heads = m.get_usize_opt(&keys::arch_key(arch, keys::HEAD_COUNT_KV))?;
    let is_70b = arch == "llama" && n_layers == 80 && kv_heads.is_some() && heads != kv_heads;

    let names: Vec<&str> = header.tensors.iter().map(|t| t.name.as_str()).collect();
    let mut chooser = TypeChooser::new(outtype, &names, n_layers, is_70b);
    let mut writer = GgufWriter::new(m)?;
    let mut sources = Vec::with_capacity(header.tensors.len());
    for t in &header.tensors {
        let ty = chooser.choose(&t.name, &t.dims, t.ty);
        writer.add_tensor(TensorSpec::new(t.name.clone(), ty, &t.dims))?;
        let start = (header.data_offset + t.offset) as usize;
        let range = start..start + t.n_bytes() as usize;
        sources.push(RowSource {
            bytes: &map[range.clone()],
            ty: t.ty,
            row_len: t.row_len() as usize,
            n_rows: t.n_rows() as usize,
            order: RowOrder::Identity,
            pages: Some((&map, range)),
        });
    }
    write_gguf(output, &writer, &sources, progress)?;
    Ok(summary(&writer, &sources))
}

/// Layers counted from `blk.N.` names, for files without a block count.
fn count_blocks<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names
        .filter_map(|n| {
            n.strip_prefix("blk.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(0, |n| n + 1)
}
