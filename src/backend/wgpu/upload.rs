//! Weights in the layouts the shaders read: quants and scales in separate u32-aligned
//! arrays, split by rows across buffers where a matrix exceeds the largest binding.

use crate::model::weights::Matrix;
use crate::quant::GgmlType;

use super::{Gpu, GpuError, Result};

/// How a stored block becomes the shader's arrays.
enum Layout {
    /// The stored bytes as they are.
    Raw,
    /// Each block's scale bytes go to the scales array, then zeros up to `scale_stride`
    /// bytes (so that a word of them is aligned), and its quant bytes to the quants
    /// array.
    Split {
        block: usize,
        scale: std::ops::Range<usize>,
        scale_stride: usize,
        quants: std::ops::Range<usize>,
    },
    /// No shader for the type: rows are dequantized and stored as f16.
    ViaF16,
}

/// The shaders that decode weight blocks, one per type with a GPU layout.
pub const DECODERS: [&str; 10] = [
    "decode_f32",
    "decode_f16",
    "decode_q4_0",
    "decode_q4_1",
    "decode_q5_0",
    "decode_q5_1",
    "decode_q8_0",
    "decode_q4_k",
    "decode_q5_k",
    "decode_q6_k",
];

/// The types' integer dot products with 8-bit activations, by decoder (the float types
/// have none: their matrix-vector product reads f32 activations).
pub const INTEGER_DOTS: [(&str, &str); 8] = [
    ("decode_q4_0", "idot_q4_0"),
    ("decode_q4_1", "idot_q4_1"),
    ("decode_q5_0", "idot_q5_0"),
    ("decode_q5_1", "idot_q5_1"),
    ("decode_q8_0", "idot_q8_0"),
    ("decode_q4_k", "idot_q4_k"),
    ("decode_q5_k", "idot_q5_k"),
    ("decode_q6_k", "idot_q6_k"),
];

/// The integer dot product of the type that `decode` decodes, if it has one.
pub fn integer_dot(decode: &str) -> Option<&'static str> {
    INTEGER_DOTS
        .iter()
        .find(|(d, _)| *d == decode)
        .map(|&(_, idot)| idot)
}

fn layout(ty: GgmlType) -> (Layout, &'static str) {
    use Layout::*;
    match ty {
        GgmlType::F32 => (Raw, "decode_f32"),
        GgmlType::F16 => (Raw, "decode_f16"),
        GgmlType::Q4_K => (Raw, "decode_q4_k"),
        GgmlType::Q5_K => (Raw, "decode_q5_k"),
        GgmlType::Q4_0 => (split(18, 0..2, 2, 2..18), "decode_q4_0"),
        GgmlType::Q4_1 => (split(20, 0..4, 4, 4..20), "decode_q4_1"),
        // d and the fifth bits, a word and a half, padded to two words
        GgmlType::Q5_0 => (split(22, 0..6, 8, 6..22), "decode_q5_0"),
        GgmlType::Q5_1 => (split(24, 0..8, 8, 8..24), "decode_q5_1"),
        GgmlType::Q8_0 => (split(34, 0..2, 2, 2..34), "decode_q8_0"),
        GgmlType::Q6_K => (split(210, 208..210, 2, 0..208), "decode_q6_k"),
        _ => (ViaF16, "decode_f16"),
    }
}

fn split(
    block: usize,
    scale: std::ops::Range<usize>,
    scale_stride: usize,
    quants: std::ops::Range<usize>,
) -> Layout {
    Layout::Split {
        block,
        scale,
        scale_stride,
        quants,
    }
}

/// A run of rows of a matrix in one pair of buffers.
pub struct Chunk {
    pub first_row: usize,
    pub rows: usize,
    pub quants: wgpu::Buffer,
    pub scales: wgpu::Buffer,
}

/// A weight matrix `[rows][cols]` on the GPU.
pub struct GpuMatrix {
    pub rows: usize,
    pub cols: usize,
    /// The shader that decodes its blocks.
    pub decode: &'static str,
    pub chunks: Vec<Chunk>,
    pub bytes: u64,
}

impl GpuMatrix {
    pub fn upload(gpu: &Gpu, m: &Matrix) -> Result<GpuMatrix> {
        if !m.cols.is_multiple_of(32) {
            return Err(GpuError::Unsupported(format!(
                "{} has rows of {} values, not a multiple of 32",
                m.name, m.cols
            )));
        }
        let (layout, decode) = layout(m.ty);
        let mut chunks = Vec::new();
        let mut bytes = 0;
        for range in chunk_rows(m.ty, m.rows, m.cols, gpu.max_binding) {
            let (first_row, rows) = (range.start, range.len());
            let (quants, scales) = arrays(m, &layout, range);
            bytes += (quants.len() + scales.len()) as u64;
            let what = format!("uploading {}", m.name);
            let (quants, scales) = gpu.checked(&what, || {
                (
                    storage_init(gpu, m.name, &quants),
                    storage_init(gpu, m.name, &scales),
                )
            })?;
            chunks.push(Chunk {
                first_row,
                rows,
                quants,
                scales,
            });
        }
        Ok(GpuMatrix {
            rows: m.rows,
            cols: m.cols,
            decode,
            chunks,
            bytes,
        })
    }
}

/// Bytes of a stored row of `cols` values of type `ty`.
fn row_bytes(ty: GgmlType, cols: usize) -> usize {
    cols / ty.block_len() * ty.block_bytes()
}

/// Bytes of a row's quants in the GPU layout of `ty`.
fn quant_row_bytes(ty: GgmlType, cols: usize) -> usize {
    match layout(ty).0 {
        Layout::Raw => row_bytes(ty, cols),
        Layout::Split {
            block, quants: q, ..
        } => row_bytes(ty, cols) / block * q.len(),
        Layout::ViaF16 => cols * 2,
    }
}

/// The rows of each buffer pair a `rows` x `cols` matrix of type `ty` is split into: as
/// many as the binding limit allows, and a multiple of 2 so that scales packed two to a
/// word never straddle buffers.
fn chunk_rows(
    ty: GgmlType,
    rows: usize,
    cols: usize,
    max_binding: u64,
) -> impl Iterator<Item = std::ops::Range<usize>> {
    let row = quant_row_bytes(ty, cols).max(1);
    let per_chunk = ((max_binding as usize / row) & !1).max(1);
    (0..rows)
        .step_by(per_chunk)
        .map(move |first| first..rows.min(first + per_chunk))
}

/// A quants or scales array of `len` bytes as stored: shaders read quants as 16-byte
/// vectors and scales as words, and a binding may not be empty.
fn padded(len: usize) -> usize {
    len.next_multiple_of(16).max(16)
}

impl GpuMatrix {
    /// Bytes that uploading a `rows` x `cols` matrix of type `ty` makes on a GPU whose
    /// largest binding is `max_binding`: what [`GpuMatrix::upload`] counts in `bytes`.
    pub fn bytes_for(ty: GgmlType, rows: usize, cols: usize, max_binding: u64) -> u64 {
        let scale_row_bytes = match layout(ty).0 {
            Layout::Split {
                block,
                scale_stride,
                ..
            } => row_bytes(ty, cols) / block * scale_stride,
            Layout::Raw | Layout::ViaF16 => 0,
        };
        chunk_rows(ty, rows, cols, max_binding)
            .map(|r| {
                padded(r.len() * quant_row_bytes(ty, cols)) + padded(r.len() * scale_row_bytes)
            })
            .sum::<usize>() as u64
    }

    /// Bytes that [`GpuMatrix::upload_stacked`] makes of `parts` (or their uploads one
    /// by one, where they do not stack).
    pub fn stacked_bytes_for(parts: &[&Matrix], max_binding: u64) -> u64 {
        let first = parts[0];
        if stackable(parts) {
            let rows = parts.iter().map(|m| m.rows).sum();
            GpuMatrix::bytes_for(first.ty, rows, first.cols, max_binding)
        } else {
            parts
                .iter()
                .map(|m| GpuMatrix::bytes_for(m.ty, m.rows, m.cols, max_binding))
                .sum()
        }
    }

    /// `parts` stacked by rows into one matrix (q, k and v; gate and up), so one product
    /// serves all of them; `None` when their types or widths differ.
    pub fn upload_stacked(gpu: &Gpu, name: &str, parts: &[&Matrix]) -> Result<Option<GpuMatrix>> {
        let first = parts[0];
        if !stackable(parts) {
            return Ok(None);
        }
        let data = parts.iter().map(|m| m.data).collect::<Vec<_>>().concat();
        let stacked = Matrix {
            name,
            ty: first.ty,
            rows: parts.iter().map(|m| m.rows).sum(),
            cols: first.cols,
            data: &data,
            packed: None,
        };
        GpuMatrix::upload(gpu, &stacked).map(Some)
    }
}

/// Whether `parts` have one type and one width, so they stack into one matrix.
fn stackable(parts: &[&Matrix]) -> bool {
    parts
        .iter()
        .all(|m| m.ty == parts[0].ty && m.cols == parts[0].cols)
}

/// The quants and scales arrays of `rows` of `m` (each at least one vector long, since a
/// binding may not be empty).
fn arrays(m: &Matrix, layout: &Layout, rows: std::ops::Range<usize>) -> (Vec<u8>, Vec<u8>) {
    let row_bytes = m.row_bytes();
    let data = &m.data[rows.start * row_bytes..rows.end * row_bytes];
    let (mut quants, mut scales) = match layout {
        Layout::Raw => (data.to_vec(), Vec::new()),
        Layout::Split {
            block,
            scale,
            scale_stride,
            quants: q,
        } => {
            let n = data.len() / block;
            let mut quants = Vec::with_capacity(n * q.len());
            let mut scales = Vec::with_capacity(n * scale_stride + 4);
            for b in data.chunks_exact(*block) {
                quants.extend_from_slice(&b[q.clone()]);
                scales.extend_from_slice(&b[scale.clone()]);
                scales.resize(scales.len() + scale_stride - scale.len(), 0);
            }
            (quants, scales)
        }
        Layout::ViaF16 => {
            let mut row = vec![0.0f32; m.cols];
            let mut out = Vec::with_capacity(rows.len() * m.cols * 2);
            for r in rows {
                m.dequantize_row(r, &mut row);
                for &v in &row {
                    out.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
                }
            }
            (out, Vec::new())
        }
    };
    for a in [&mut quants, &mut scales] {
        a.resize(padded(a.len()), 0);
    }
    (quants, scales)
}

/// Bytes of the buffer [`storage_init`] makes of `len` bytes (wgpu pads an initialized
/// buffer to whole words, and to one word at least).
pub fn storage_bytes(len: usize) -> u64 {
    len.next_multiple_of(4).max(4) as u64
}

pub fn storage_init(gpu: &Gpu, label: &str, contents: &[u8]) -> wgpu::Buffer {
    gpu.buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    })
}

/// Whether a matrix of type `ty` is multiplied from its own blocks on the GPU (rather
/// than from an f16 copy).
pub fn has_shader(ty: GgmlType) -> bool {
    !matches!(layout(ty).0, Layout::ViaF16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes_for` reckons what `arrays` makes, chunk by chunk, for every type, with
    /// matrices that fit one binding and matrices split across several.
    #[test]
    fn bytes_for_counts_the_arrays_an_upload_makes() {
        for ty in GgmlType::ALL {
            let (rows, cols) = (37, 512);
            let data = vec![0u8; rows * row_bytes(ty, cols)];
            let m = Matrix {
                name: "m",
                ty,
                rows,
                cols,
                data: &data,
                packed: None,
            };
            let (layout, _) = layout(ty);
            for max_binding in [1 << 30, 4 * row_bytes(ty, cols) as u64] {
                let made: usize = chunk_rows(ty, rows, cols, max_binding)
                    .map(|r| {
                        let (q, s) = arrays(&m, &layout, r);
                        q.len() + s.len()
                    })
                    .sum();
                let want = GpuMatrix::bytes_for(ty, rows, cols, max_binding);
                assert_eq!(made as u64, want, "{ty}, binding {max_binding}");
            }
        }
    }

    #[test]
    fn every_layout_names_a_listed_decoder() {
        for ty in GgmlType::ALL {
            assert!(DECODERS.contains(&layout(ty).1), "{ty}");
        }
    }
}
