//! The weights of a Hugging Face model folder: `model.safetensors`, or the shards that
//! `model.safetensors.index.json` lists. Each shard is memory-mapped and only its header is
//! parsed up front (by the `safetensors` crate, which checks that every tensor lies inside
//! the file and that the file holds nothing else); tensor data is read in place.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Component, Path};

use memmap2::Mmap;
use safetensors::tensor::{Metadata, SafeTensorError};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value as Json;

use super::error::ConvertError;
use super::files;
use crate::quant::GgmlType;

pub const SINGLE_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// One mapped `.safetensors` file.
struct Shard {
    name: String,
    map: Mmap,
    header: Metadata,
    /// Offset of the data section in the file: 8 bytes of length, then the header.
    data_start: usize,
}

/// A tensor as stored: where its bytes are and what they hold.
#[derive(Clone, Debug)]
pub struct StoredTensor {
    pub name: String,
    pub ty: GgmlType,
    /// Outermost first, as safetensors and PyTorch write it.
    pub shape: Vec<usize>,
    shard: usize,
    /// Byte range in the shard file.
    range: Range<usize>,
}

impl StoredTensor {
    pub fn n_bytes(&self) -> usize {
        self.range.len()
    }
}

pub struct Shards {
    shards: Vec<Shard>,
    tensors: HashMap<String, StoredTensor>,
}

impl Shards {
    /// Opens the weights of `model_dir`, every listed shard at once, so that a missing or
    /// broken shard is reported before anything is written.
    pub fn open(model_dir: &Path) -> Result<Shards, ConvertError> {
        let index_path = model_dir.join(INDEX_FILE);
        let files = if index_path.exists() {
            shard_names(&index_path)?
        } else if model_dir.join(SINGLE_FILE).exists() {
            vec![SINGLE_FILE.to_string()]
        } else {
            let hint = if model_dir.join("pytorch_model.bin").exists()
                || model_dir.join("pytorch_model.bin.index.json").exists()
            {
                " (only PyTorch .bin weights: ropewalk reads safetensors)"
            } else {
                ""
            };
            return Err(ConvertError::invalid(
                model_dir.display().to_string(),
                format!("no {SINGLE_FILE} or {INDEX_FILE}{hint}"),
            ));
        };

        let mut shards = Vec::with_capacity(files.len());
        let mut tensors = HashMap::new();
        for (i, name) in files.into_iter().enumerate() {
            let shard = Shard::open(model_dir, name)?;
            for (tensor, info) in shard.header.tensors() {
                let ty = ggml_type(info.dtype).ok_or_else(|| {
                    ConvertError::invalid(
                        &shard.name,
                        format!(
                            "tensor '{tensor}' has dtype {:?}; ropewalk converts F32, F16 and BF16",
                            info.dtype
                        ),
                    )
                })?;
                let (s, e) = info.data_offsets;
                let stored = StoredTensor {
                    name: tensor.clone(),
                    ty,
                    shape: info.shape.clone(),
                    shard: i,
                    range: shard.data_start + s..shard.data_start + e,
                };
                if let Some(prev) = tensors.insert(tensor.clone(), stored) {
                    return Err(ConvertError::invalid(
                        &shard.name,
                        format!(
                            "tensor '{tensor}' is also in {}",
                            shards
                                .get(prev.shard)
                                .map_or("this file", |s: &Shard| &s.name)
                        ),
                    ));
                }
            }
            shards.push(shard);
        }
        Ok(Shards { shards, tensors })
    }

    pub fn get(&self, name: &str) -> Option<&StoredTensor> {
        self.tensors.get(name)
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Which file holds `t`, for messages.
    pub fn file_of(&self, t: &StoredTensor) -> &str {
        &self.shards[t.shard].name
    }

    pub fn bytes(&self, t: &StoredTensor) -> &[u8] {
        &self.shards[t.shard].map[t.range.clone()]
    }

    /// The map `t` lies in and its byte range there, for read-ahead and release.
    pub fn pages(&self, t: &StoredTensor) -> (&Mmap, Range<usize>) {
        (&self.shards[t.shard].map, t.range.clone())
    }
}

impl Shard {
    fn open(dir: &Path, name: String) -> Result<Shard, ConvertError> {
        let path = dir.join(&name);
        let file = files::open_regular(&path)?;
        // SAFETY: a read-only private map. A file truncated by another process while we
        // read it would fault; model folders are not rewritten while being converted.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| ConvertError::io(&path, e))?;
        let (header_len, header) = SafeTensors::read_metadata(&map)
            .map_err(|e| ConvertError::invalid(&name, header_error(&e, map.len())))?;
        Ok(Shard {
            name,
            data_start: 8 + header_len,
            map,
            header,
        })
    }
}

/// The shard files `model.safetensors.index.json` names, in first-listed order.
fn shard_names(index_path: &Path) -> Result<Vec<String>, ConvertError> {
    let text = files::read_bounded(index_path, files::MAX_JSON_BYTES)?;
    let json: Json =
        serde_json::from_slice(&text).map_err(|e| ConvertError::json(index_path, e))?;
    let map = json
        .get("weight_map")
        .and_then(Json::as_object)
        .ok_or_else(|| ConvertError::missing_key(INDEX_FILE, "weight_map"))?;
    let mut files: Vec<String> = Vec::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| {
            ConvertError::invalid(
                INDEX_FILE,
                format!("weight_map['{tensor}'] is not a file name"),
            )
        })?;
        let plain = Path::new(file)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if !plain || file.is_empty() {
            return Err(ConvertError::invalid(
                INDEX_FILE,
                format!("weight_map['{tensor}'] = '{file}' is not a file in the model folder"),
            ));
        }
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
    }
    if files.is_empty() {
        return Err(ConvertError::invalid(INDEX_FILE, "weight_map is empty"));
    }
    for file in &files {
        let path = index_path.with_file_name(file);
        if !path.exists() {
            return Err(ConvertError::invalid(
                INDEX_FILE,
                format!("shard '{file}' is listed but missing from the folder"),
            ));
        }
    }
    Ok(files)
}

fn ggml_type(d: Dtype) -> Option<GgmlType> {
    match d {
        Dtype::F32 => Some(GgmlType::F32),
        Dtype::F16 => Some(GgmlType::F16),
        Dtype::BF16 => Some(GgmlType::BF16),
        _ => None,
    }
}

/// The crate's errors, said in terms of the file.
fn header_error(e: &SafeTensorError, file_len: usize) -> String {
    match e {
        SafeTensorError::HeaderTooSmall | SafeTensorError::InvalidHeaderLength => format!(
            "truncated safetensors header: the file ({file_len} bytes) ends before the header does"
        ),
        SafeTensorError::MetadataIncompleteBuffer => format!(
            "the header's tensors do not cover the file's {file_len} bytes exactly (truncated or padded)"
        ),
        other => format!("invalid safetensors header: {other}"),
    }
}
