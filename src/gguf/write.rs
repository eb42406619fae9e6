//! Writing GGUF v3: the header is built in memory (it is small), then tensor data is
//! streamed to disk in file order, each tensor padded to the alignment, through an atomic
//! file so a failed or interrupted write leaves nothing under the final name.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;

use super::error::{GgufError, Result};
use super::metadata::Metadata;
use super::read::TensorInfo;
use super::value::{Array, Value};
use super::{keys, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS, VERSION};
use crate::atomic_file::AtomicFile;
use crate::quant::GgmlType;

/// The least alignment ropewalk writes, so every block type can be viewed in place.
const MIN_ALIGNMENT: u64 = 8;

/// A tensor to be written: its data comes later, from the fill callback.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub ty: GgmlType,
    /// Innermost first, as in the file.
    pub dims: Vec<u64>,
}

impl TensorSpec {
    pub fn new(name: impl Into<String>, ty: GgmlType, dims: &[u64]) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            ty,
            dims: dims.to_vec(),
        }
    }
}

/// Collects metadata and tensor specs, then writes the file in one pass.
pub struct GgufWriter {
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    names: HashSet<String>,
    alignment: u64,
    data_len: u64,
}

impl GgufWriter {
    /// `general.alignment` in `metadata`, if present, sets the alignment (at least 8, a
    /// power of two); otherwise it is 32 and no key is written.
    pub fn new(metadata: Metadata) -> Result<GgufWriter> {
        let alignment = match metadata.get_u32_opt(keys::GENERAL_ALIGNMENT)? {
            None => DEFAULT_ALIGNMENT,
            Some(a) if u64::from(a) >= MIN_ALIGNMENT && a.is_power_of_two() => a.into(),
            Some(a) => {
                return Err(GgufError::Write(format!(
                    "{} = {a} must be a power of two of at least {MIN_ALIGNMENT}",
                    keys::GENERAL_ALIGNMENT
                )))
            }
        };
        Ok(GgufWriter {
            metadata,
            tensors: Vec::new(),
            names: HashSet::new(),
            alignment,
            data_len: 0,
        })
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Adds a tensor; tensors are written in the order they are added.
    pub fn add_tensor(&mut self, spec: TensorSpec) -> Result<&TensorInfo> {
        let TensorSpec { name, ty, dims } = spec;
        let bad = |why: String| GgufError::Write(format!("tensor '{name}': {why}"));
        if dims.is_empty() || dims.len() > MAX_DIMS {
            return Err(bad(format!(
                "{} dimensions, expected 1 to {MAX_DIMS}",
                dims.len()
            )));
        }
        let n_bytes = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|_| dims[0] % ty.block_len() as u64 == 0)
            .and_then(|n| ty.bytes_for(n))
            .ok_or_else(|| bad(format!("dimensions {dims:?} do not fit whole {ty} blocks")))?;
        if self.names.contains(&name) {
            return Err(bad("duplicate tensor name".into()));
        }
        self.names.insert(name.clone());
        let offset = self.data_len;
        self.data_len = (offset + n_bytes).next_multiple_of(self.alignment);
        self.tensors.push(TensorInfo {
            name,
            dims,
            ty,
            offset,
        });
        Ok(self.tensors.last().expect("just pushed"))
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The header: everything before the data section, without the padding after it.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        h.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in self.metadata.iter() {
            put_str(&mut h, key);
            h.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(&mut h, value);
        }
        for t in &self.tensors {
            put_str(&mut h, &t.name);
            h.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                h.extend_from_slice(&d.to_le_bytes());
            }
            h.extend_from_slice(&t.ty.id().to_le_bytes());
            h.extend_from_slice(&t.offset.to_le_bytes());
        }
        h
    }

    /// Size of the finished file in bytes.
    pub fn file_len(&self) -> u64 {
        self.data_offset(self.header_bytes().len() as u64) + self.data_len
    }

    fn data_offset(&self, header_len: u64) -> u64 {
        header_len.next_multiple_of(self.alignment)
    }

    /// Writes the file atomically to `path`, calling `fill` once per tensor, in order, to
    /// stream exactly that tensor's bytes into the sink.
    pub fn write_file<E: From<GgufError>>(
        &self,
        path: impl AsRef<Path>,
        fill: impl FnMut(&TensorInfo, &mut TensorSink) -> Result<(), E>,
    ) -> Result<(), E> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = AtomicFile::create(path).map_err(io)?;
        self.write_to(&mut file, fill)?;
        file.commit().map_err(io)?;
        Ok(())
    }

    /// Writes the file to any writer; see [`GgufWriter::write_file`].
    pub fn write_to<E: From<GgufError>>(
        &self,
        out: &mut dyn Write,
        mut fill: impl FnMut(&TensorInfo, &mut TensorSink) -> Result<(), E>,
    ) -> Result<(), E> {
        let io = |source| GgufError::Io {
            path: "output".into(),
            source,
        };
        let header = self.header_bytes();
        out.write_all(&header).map_err(io)?;
        let header_len = header.len() as u64;
        write_zeros(out, self.data_offset(header_len) - header_len).map_err(io)?;
        let mut written = 0u64;
        for t in &self.tensors {
            let mut sink = TensorSink {
                out: &mut *out,
                remaining: t.n_bytes(),
            };
            fill(t, &mut sink)?;
            if sink.remaining != 0 {
                return Err(GgufError::Write(format!(
                    "tensor '{}': {} of its {} bytes were written",
                    t.name,
                    t.n_bytes() - sink.remaining,
                    t.n_bytes()
                ))
                .into());
            }
            let end = t.offset + t.n_bytes();
            let padded = end.next_multiple_of(self.alignment);
            write_zeros(out, padded - end).map_err(io)?;
            written = padded;
        }
        debug_assert_eq!(written, self.data_len);
        out.flush().map_err(io)?;
        Ok(())
    }
}

/// Where one tensor's bytes go; refuses more than the tensor holds.
pub struct TensorSink<'a> {
    out: &'a mut dyn Write,
    remaining: u64,
}

impl TensorSink<'_> {
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

impl Write for TensorSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.remaining {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} bytes written to a tensor with {} bytes left",
                    buf.len(),
                    self.remaining
                ),
            ));
        }
        let n = self.out.write(buf)?;
        self.remaining -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Padding comes from a small static buffer: an alignment can legally be as large as 2^31,
/// and must not turn into an allocation of that size.
fn write_zeros(out: &mut dyn Write, mut n: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

fn put_str(h: &mut Vec<u8>, s: &str) {
    h.extend_from_slice(&(s.len() as u64).to_le_bytes());
    h.extend_from_slice(s.as_bytes());
}

fn put_value(h: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => h.push(*x),
        Value::I8(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => h.push(u8::from(*x)),
        Value::String(s) => put_str(h, s),
        Value::Array(a) => put_array(h, a),
        Value::U64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => h.extend_from_slice(&x.to_le_bytes()),
    }
}

fn put_array(h: &mut Vec<u8>, a: &Array) {
    h.extend_from_slice(&a.element_type().id().to_le_bytes());
    h.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! le {
        ($v:expr) => {
            $v.iter()
                .for_each(|x| h.extend_from_slice(&x.to_le_bytes()))
        };
    }
    match a {
        Array::U8(v) => h.extend_from_slice(v),
        Array::I8(v) => le!(v),
        Array::U16(v) => le!(v),
        Array::I16(v) => le!(v),
        Array::U32(v) => le!(v),
        Array::I32(v) => le!(v),
        Array::F32(v) => le!(v),
        Array::Bool(v) => h.extend(v.iter().map(|&b| u8::from(b))),
        Array::String(v) => v.iter().for_each(|s| put_str(h, s)),
        Array::Array(v) => v.iter().for_each(|inner| put_array(h, inner)),
        Array::U64(v) => le!(v),
        Array::I64(v) => le!(v),
        Array::F64(v) => le!(v),
    }
}
