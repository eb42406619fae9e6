//! Reading GGUF: the header is parsed from a memory map and validated in full; tensor data
//! is handed out as views borrowed from the map and is never read until a caller touches it.

use std::collections::HashSet;
use std::path::Path;

use memmap2::Mmap;

use super::cursor::Cursor;
use super::error::{GgufError, Result};
use super::metadata::Metadata;
use super::{keys, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
use crate::quant::GgmlType;

/// What the tensor-info section says about one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions, innermost (row length) first, as GGUF stores them.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Size of the data in bytes. Validated at parse time not to overflow.
    pub fn n_bytes(&self) -> u64 {
        self.ty
            .bytes_for(self.n_elements())
            .expect("validated when the header was parsed")
    }

    /// Values per row: the innermost dimension.
    pub fn row_len(&self) -> u64 {
        self.dims[0]
    }

    /// Number of rows: the product of the outer dimensions.
    pub fn n_rows(&self) -> u64 {
        self.dims[1..].iter().product()
    }
}

/// The parsed and validated header of a GGUF file.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub version: u32,
    pub alignment: u64,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
}

impl Header {
    /// Parses and validates a whole GGUF image: every count bounded before allocation,
    /// every tensor checked to lie, aligned, inside `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        let mut c = Cursor::new(bytes);
        let magic: [u8; 4] = c.take(4, &|| "magic".into())?.try_into().expect("4 bytes");
        if &magic != MAGIC {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = c.u32(&|| "version".into())?;
        if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
            return Err(GgufError::invalid(
                "big-endian GGUF files are not supported",
            ));
        }
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion(version));
        }
        // The smallest tensor info is an empty name (8), n_dims (4), one dim (8), type (4)
        // and offset (8); the smallest key-value is an empty key (8), type (4), a u8 (1).
        let n_tensors = c.count(32, &|| "tensor count".into())?;
        let n_kv = c.count(13, &|| "metadata count".into())?;

        let mut metadata = Metadata::new();
        for i in 0..n_kv {
            let key = c.string(&|| format!("key of metadata entry {i}"))?;
            let what = || format!("metadata key '{key}'");
            let ty = c.value_type(&what)?;
            let value = c.value(ty, &what)?;
            metadata.push_unique(key, value)?;
        }
        let alignment = alignment_of(&metadata)?;

        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut names = HashSet::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let info = tensor_info(&mut c, i)?;
            if !names.insert(info.name.clone()) {
                return Err(GgufError::invalid(format!(
                    "duplicate tensor name '{}'",
                    info.name
                )));
            }
            tensors.push(info);
        }

        let data_offset = c.pos().next_multiple_of(alignment);
        let file_len = bytes.len() as u64;
        for t in &tensors {
            check_placement(t, alignment, data_offset, file_len)?;
        }
        Ok(Header {
            version,
            alignment,
            metadata,
            tensors,
            data_offset,
        })
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

fn alignment_of(metadata: &Metadata) -> Result<u64> {
    let alignment = match metadata.get_u32_opt(keys::GENERAL_ALIGNMENT)? {
        Some(a) => u64::from(a),
        None => DEFAULT_ALIGNMENT,
    };
    if !alignment.is_power_of_two() {
        return Err(GgufError::invalid(format!(
            "{} = {alignment} is not a power of two",
            keys::GENERAL_ALIGNMENT
        )));
    }
    Ok(alignment)
}

fn tensor_info(c: &mut Cursor, i: u64) -> Result<TensorInfo> {
    let name = c.string(&|| format!("name of tensor {i}"))?;
    let what = || format!("tensor '{name}'");
    let n_dims = c.u32(&|| format!("dimension count of {}", what()))?;
    if n_dims == 0 || n_dims as usize > MAX_DIMS {
        return Err(GgufError::invalid(format!(
            "{} has {n_dims} dimensions, expected 1 to {MAX_DIMS}",
            what()
        )));
    }
    let dims = (0..n_dims)
        .map(|d| c.u64(&|| format!("dimension {d} of {}", what())))
        .collect::<Result<Vec<u64>>>()?;
    let type_id = c.u32(&|| format!("type of {}", what()))?;
    let ty = GgmlType::from_id(type_id).ok_or_else(|| {
        GgufError::invalid(format!("{} has unknown tensor type id {type_id}", what()))
    })?;
    let offset = c.u64(&|| format!("data offset of {}", what()))?;

    // ggml counts elements in i64: a product past that cannot be a real tensor.
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| {
            GgufError::invalid(format!(
                "{} has dimensions {dims:?} whose product overflows",
                what()
            ))
        })?;
    if dims[0] % ty.block_len() as u64 != 0 {
        return Err(GgufError::invalid(format!(
            "{} has rows of {} values, not a multiple of the {ty} block of {}",
            what(),
            dims[0],
            ty.block_len()
        )));
    }
    if ty.bytes_for(n_elements).is_none() {
        return Err(GgufError::invalid(format!("{} is too large", what())));
    }
    Ok(TensorInfo {
        name,
        dims,
        ty,
        offset,
    })
}

fn check_placement(t: &TensorInfo, alignment: u64, data_offset: u64, file_len: u64) -> Result<()> {
    let start = data_offset.checked_add(t.offset);
    match start.and_then(|s| s.checked_add(t.n_bytes())) {
        Some(end) if end <= file_len => {}
        _ => {
            return Err(GgufError::invalid(format!(
                "tensor '{}' data ({} bytes at data offset {}) runs past the end of the file ({file_len} bytes)",
                t.name,
                t.n_bytes(),
                t.offset
            )))
        }
    }
    if !t.offset.is_multiple_of(alignment) {
        return Err(GgufError::invalid(format!(
            "tensor '{}' has data offset {} that is not a multiple of the alignment {alignment}",
            t.name, t.offset
        )));
    }
    // Views cast the bytes to blocks in place, so a small `general.alignment` must still
    // leave every tensor aligned for its block type.
    let start = data_offset + t.offset;
    if !start.is_multiple_of(t.ty.block_align() as u64) {
        return Err(GgufError::invalid(format!(
            "tensor '{}' data at file offset {start} is not aligned to {} bytes for {}",
            t.name,
            t.ty.block_align(),
            t.ty
        )));
    }
    Ok(())
}

/// A tensor's data, borrowed from the file's memory map.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    pub info: &'a TensorInfo,
    pub data: &'a [u8],
}

impl<'a> TensorView<'a> {
    pub fn name(&self) -> &'a str {
        &self.info.name
    }

    pub fn ty(&self) -> GgmlType {
        self.info.ty
    }

    pub fn dims(&self) -> &'a [u64] {
        &self.info.dims
    }

    /// The bytes of row `i` (a row is `dims[0]` values).
    pub fn row(&self, i: usize) -> &'a [u8] {
        let row_bytes = self.data.len() / self.info.n_rows() as usize;
        &self.data[i * row_bytes..(i + 1) * row_bytes]
    }
}

/// An open GGUF file: the validated header plus the memory map its tensors borrow from.
pub struct GgufFile {
    header: Header,
    map: Mmap,
}

impl GgufFile {
    /// Maps and validates `path`. Only the header pages are read; opening a file of many
    /// gigabytes costs milliseconds.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = crate::regular_file::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process. If another process
        // truncates the file while it is mapped, reads past the new end fault; like every
        // mmap-based model loader we accept that, since model files are not edited in place.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let header = Header::parse(&map)?;
        Ok(GgufFile { header, map })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        let info = self
            .header
            .tensor_info(name)
            .ok_or_else(|| GgufError::MissingTensor(name.to_string()))?;
        Ok(self.view(info))
    }

    /// Every tensor, in file order.
    pub fn tensor_views(&self) -> impl Iterator<Item = TensorView<'_>> {
        self.header.tensors.iter().map(|info| self.view(info))
    }

    fn view<'a>(&'a self, info: &'a TensorInfo) -> TensorView<'a> {
        let start = (self.header.data_offset + info.offset) as usize;
        TensorView {
            info,
            data: &self.map[start..start + info.n_bytes() as usize],
        }
    }
}
