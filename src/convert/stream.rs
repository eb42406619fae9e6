//! Streaming tensors into a GGUF file: each tensor is read from its mapped source a chunk
//! of rows at a time, converted row by row on every core (rayon), and written in file
//! order, so memory holds one chunk, not the model.

use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use half::f16;

use memmap2::Mmap;
use rayon::prelude::*;

use super::error::ConvertError;
use super::pages;
use super::permute::RowOrder;
use crate::gguf::{GgufWriter, TensorInfo};
use crate::quant::{self, GgmlType};

/// Values converted per chunk: 16 MB as f32, enough to keep every core busy and small
/// beside a model.
const CHUNK_VALUES: usize = 4 << 20;

/// Where a tensor's values come from: rows of `row_len` values of type `ty`, stored
/// contiguously, taken in `order`.
pub struct RowSource<'a> {
    pub bytes: &'a [u8],
    pub ty: GgmlType,
    pub row_len: usize,
    pub n_rows: usize,
    pub order: RowOrder,
    /// The map and byte range `bytes` lies in, for read-ahead and release.
    pub pages: Option<(&'a Mmap, Range<usize>)>,
}

impl RowSource<'_> {
    fn row_bytes(&self) -> usize {
        self.bytes.len() / self.n_rows.max(1)
    }

    fn row(&self, out_row: usize) -> &[u8] {
        let r = self.order.source_row(out_row);
        let n = self.row_bytes();
        &self.bytes[r * n..(r + 1) * n]
    }
}

/// How far the write has got, in tensors and in bytes of input read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub tensors_done: usize,
    pub tensors_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// Writes `writer`'s file to `path` atomically, filling tensor `i` (file order) from
/// `sources[i]` converted to the tensor's type. `progress` is called after every chunk.
pub fn write_gguf(
    path: &Path,
    writer: &GgufWriter,
    sources: &[RowSource],
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ConvertError> {
    let tensors = writer.tensors();
    assert_eq!(tensors.len(), sources.len(), "one source per tensor");
    for (t, s) in tensors.iter().zip(sources) {
        check_source(t, s)?;
    }
    let mut state = Progress {
        tensors_total: tensors.len(),
        bytes_total: sources.iter().map(|s| s.bytes.len() as u64).sum(),
        ..Progress::default()
    };
    progress(state);
    let io = |e| ConvertError::io(path, e);
    let mut buf = Vec::new();
    let mut next = 0;
    writer.write_file(path, |info: &TensorInfo, sink| {
        let src = &sources[next];
        if let Some((map, range)) = sources.get(next + 1).and_then(|s| s.pages.as_ref()) {
            pages::prefetch(map, range.clone());
        }
        next += 1;
        let rows_per_chunk = (CHUNK_VALUES / src.row_len.max(1)).clamp(1, src.n_rows.max(1));
        let out_row_bytes = row_bytes(info.ty, src.row_len);
        for start in (0..src.n_rows).step_by(rows_per_chunk) {
            let rows = start..(start + rows_per_chunk).min(src.n_rows);
            let n_out = rows.len() * out_row_bytes;
            if src.ty == info.ty && src.order == RowOrder::Identity {
                // Same type, same order: the bytes go out as they are.
                let n_in = src.row_bytes();
                sink.write_all(&src.bytes[rows.start * n_in..rows.end * n_in])
                    .map_err(io)?;
            } else {
                buf.resize(n_out, 0);
                convert_rows(src, info.ty, rows.clone(), &mut buf[..n_out])?;
                sink.write_all(&buf[..n_out]).map_err(io)?;
            }
            if let (Some((map, range)), RowOrder::Identity) = (&src.pages, src.order) {
                // Rows in order are done with once written: a tensor larger than memory
                // (a 128k-token embedding) stays a chunk resident, not the whole tensor.
                let n = src.row_bytes();
                pages::release(
                    map,
                    range.start + rows.start * n..range.start + rows.end * n,
                );
            }
            state.bytes_done += (rows.len() * src.row_bytes()) as u64;
            progress(state);
        }
        if let Some((map, range)) = &src.pages {
            pages::release(map, range.clone());
        }
        state.tensors_done += 1;
        progress(state);
        Ok::<(), ConvertError>(())
    })
}

/// Converts output rows `rows` of `src` into `dst` as `ty`, in parallel.
fn convert_rows(
    src: &RowSource,
    ty: GgmlType,
    rows: Range<usize>,
    dst: &mut [u8],
) -> Result<(), ConvertError> {
    let out_row_bytes = row_bytes(ty, src.row_len);
    dst.par_chunks_mut(out_row_bytes)
        .enumerate()
        .try_for_each_init(
            || vec![0f32; src.row_len],
            |scratch, (i, out)| {
                let row = src.row(rows.start + i);
                if src.ty == ty {
                    out.copy_from_slice(row);
                    return Ok(());
                }
                if src.ty == GgmlType::F16 {
                    decode_f16(row, scratch);
                } else {
                    quant::dequantize(src.ty, row, scratch)?;
                }
                quant::quantize(ty, scratch, out)?;
                Ok(())
            },
        )
}

/// F16 to f32 through a table of all 65536 values: the conversion is exact either way, and
/// the table is several times faster than converting in software where the build has no
/// F16C (float16 checkpoints are common).
fn decode_f16(src: &[u8], dst: &mut [f32]) {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|b| quant::floats::fp16_to_fp32(f16::from_bits(b)))
            .collect()
    });
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *y = table[u16::from_le_bytes([b[0], b[1]]) as usize];
    }
}

fn row_bytes(ty: GgmlType, row_len: usize) -> usize {
    ty.bytes_for(row_len as u64)
        .expect("row lengths are checked against the type before writing") as usize
}

/// A source must hold exactly the tensor's values, in whole rows of its blocks.
fn check_source(t: &TensorInfo, s: &RowSource) -> Result<(), ConvertError> {
    let bad = |msg: String| ConvertError::invalid(&t.name, msg);
    if s.row_len as u64 != t.row_len() || s.n_rows as u64 != t.n_rows() {
        return Err(bad(format!(
            "source of {} rows of {} values for a tensor of {} rows of {}",
            s.n_rows,
            s.row_len,
            t.n_rows(),
            t.row_len()
        )));
    }
    let in_row = s.ty.bytes_for(s.row_len as u64);
    if in_row.and_then(|b| b.checked_mul(s.n_rows as u64)) != Some(s.bytes.len() as u64) {
        return Err(bad(format!(
            "{} bytes do not hold {} rows of {} {} values",
            s.bytes.len(),
            s.n_rows,
            s.row_len,
            s.ty
        )));
    }
    if t.ty.bytes_for(s.row_len as u64).is_none() {
        return Err(bad(format!(
            "rows of {} values do not fit whole {} blocks",
            s.row_len, t.ty
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_table_is_the_exact_conversion() {
        let bytes: Vec<u8> = (0..=u16::MAX).flat_map(|b| b.to_le_bytes()).collect();
        let mut fast = vec![0f32; 65536];
        let mut slow = vec![0f32; 65536];
        decode_f16(&bytes, &mut fast);
        quant::dequantize(GgmlType::F16, &bytes, &mut slow).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&slow));
    }
}
