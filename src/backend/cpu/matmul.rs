//! `out = x · Wᵀ` for a batch of tokens, through the kernel table
//! ([`crate::quant::kernels`]): activations are quantized once per batch to the weight
//! type's partner layout; one token (generation) takes the row dot product, each thread
//! streaming its own slice of rows; a batch (prompt processing) takes the tile kernel,
//! which unpacks sixteen rows' blocks once and multiplies them with every token. The row
//! and tile kernels do the same float operations per output, so results do not depend on
//! how a batch is split. Matrices repacked at load ([`crate::quant::packed`]) take their
//! own kernel for any number of tokens.

use rayon::prelude::*;

use crate::model::weights::Matrix;
use crate::quant::acts::Acts;
use crate::quant::kernels::{kernels, TypeKernels};
use crate::quant::packed::{PackedJob, PackedMatrix};

use super::ops;
use super::split::{self, Guided};
use super::team::{self, SendPtr};

/// How a matrix product treats the activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Activations quantized to the weight type's partner (Q8_0, Q8_1, Q8_K) once per
    /// batch, as llama.cpp does: the fast path.
    Quantized,
    /// Activations kept in f32 and weight rows dequantized on the fly: slow, and free of
    /// activation-quantization noise, to compare the forward pass with a float reference.
    Exact,
}

/// Buffers reused across calls so a forward pass does not allocate per matrix.
#[derive(Default)]
pub struct MatmulScratch {
    /// Quantized activations, one row per token.
    acts: Acts,
    /// Results by weight row, `[rows][n_tok]`, for the paths that produce them that way.
    by_row: Vec<f32>,
}

/// Batches smaller than this take the row kernel: packing a tile costs more than it saves
/// for a handful of tokens. Both give the same bits, so this only moves speed.
const TILE_MIN_TOKENS: usize = 12;

/// Rows per parallel task: a multiple of `unit`, about `per_thread` tasks per thread.
fn rows_per_task(rows: usize, unit: usize, per_thread: usize) -> usize {
    let per = rows.div_ceil(per_thread * rayon::current_num_threads());
    per.div_ceil(unit).max(1) * unit
}

/// Tasks per thread for one token: few, so each thread streams long runs of rows, but
/// more than one, so a thread the OS delays does not hold up the rest.
const TASKS_PER_THREAD_TG: usize = 4;

/// `x`: `[n_tok][w.cols]`; `out`: `[n_tok][w.rows]`.
pub fn matmul(
    w: &Matrix,
    x: &[f32],
    out: &mut [f32],
    scratch: &mut MatmulScratch,
    precision: Precision,
) {
    let n_tok = x.len() / w.cols;
    assert_eq!(x.len(), n_tok * w.cols);
    assert_eq!(out.len(), n_tok * w.rows);
    if precision == Precision::Exact {
        return exact(w, x, out, n_tok, &mut scratch.by_row);
    }
    let k = kernels()
        .for_type(w.ty)
        .unwrap_or_else(|| panic!("{} is not a weight type", w.ty));
    let acts = &mut scratch.acts;
    k.quantize_acts(x, w.cols, acts);
    let acts = &*acts;
    let dst = SendPtr(out.as_mut_ptr());
    let row_bytes = w.row_bytes();
    if splits_rows(w, k) {
        run_split(&[w], acts, &[dst]);
    } else if n_tok == 1 {
        let per = rows_per_task(w.rows, 16, TASKS_PER_THREAD_TG);
        let a = acts.row_bytes(0);
        team::for_each_chunk_mut(out, per, &|c, o| {
            let rows = &w.data[c * per * row_bytes..];
            for (o, wr) in o.iter_mut().zip(rows.chunks_exact(row_bytes)) {
                *o = k.dot_row(wr, a, w.cols);
            }
        });
    } else {
        let by_row = &mut scratch.by_row;
        by_row.resize(w.rows * n_tok, 0.0);
        let per = rows_per_task(w.rows, 16, 4);
        team::for_each_chunk_mut(by_row, per * n_tok, &|c, rows_out| {
            for (i, row_out) in rows_out.chunks_mut(n_tok).enumerate() {
                let w_row = w.row(c * per + i);
                for (t, o) in row_out.iter_mut().enumerate() {
                    *o = k.dot(w_row, acts, t);
                }
            }
        });
        transpose_into(by_row, n_tok, w.rows, out);
    }
}

/// Matrices that share one input (q, k and v; gate and up), at most this many per call.
pub const MAX_SHARED: usize = split::MAX_MATRICES;

/// `outs[i] = x · ws[i]ᵀ` for matrices of one input: the activations are quantized once
/// and the rows of every matrix run in one parallel pass, so a layer waits on fewer
/// hand-offs between threads. Each output is bit for bit what [`matmul`] gives. Falls
/// back to one [`matmul`] per matrix where they do not share an activation layout (or
/// the path has no row kernel).
pub fn matmul_many(
    ws: &[&Matrix],
    x: &[f32],
    outs: &mut [&mut [f32]],
    scratch: &mut MatmulScratch,
    precision: Precision,
) {
    assert_eq!(ws.len(), outs.len());
    let table = kernels();
    let kernel = |w: &Matrix| {
        table
            .for_type(w.ty)
            .unwrap_or_else(|| panic!("{} is not a weight type", w.ty))
    };
    let shared = precision == Precision::Quantized
        && !ws.is_empty()
        && ws.len() <= MAX_SHARED
        && ws.iter().all(|w| {
            w.cols == ws[0].cols && kernel(w).act == kernel(ws[0]).act && splits_rows(w, kernel(w))
        });
    if !shared {
        for (w, out) in ws.iter().zip(outs.iter_mut()) {
            matmul(w, x, out, scratch, precision);
        }
        return;
    }
    let cols = ws[0].cols;
    let n_tok = x.len() / cols;
    assert_eq!(x.len(), n_tok * cols);
    let mut dst = [SendPtr(std::ptr::null_mut()); MAX_SHARED];
    for ((d, out), w) in dst.iter_mut().zip(outs.iter_mut()).zip(ws) {
        assert_eq!(out.len(), n_tok * w.rows);
        *d = SendPtr(out.as_mut_ptr());
    }
    kernel(ws[0]).quantize_acts(x, cols, &mut scratch.acts);
    run_split(ws, &scratch.acts, &dst[..ws.len()]);
}

/// Every row of the matrices `ws` (one input, split-row kernels) times `acts`, into
/// `dst[i]` (`[n_tok][ws[i].rows]` each): each thread of the team claims guided row ranges
/// until none are left.
fn run_split(ws: &[&Matrix], acts: &Acts, dst: &[SendPtr<f32>]) {
    let table = kernels();
    let mut rows = [0; MAX_SHARED];
    for (r, w) in rows.iter_mut().zip(ws) {
        *r = w.rows;
    }
    let threads = rayon::current_num_threads();
    let guided = Guided::new(&rows[..ws.len()], threads);
    team::run(threads, &|_| {
        while let Some(t) = guided.next() {
            let w = ws[t.matrix];
            let k = table.for_type(w.ty).expect("a weight type");
            // SAFETY: `dst[m]` is `[n_tok][w.rows]`; this claim alone writes columns
            // r0..r0 + rows of it, and the caller holds the outputs borrowed throughout.
            unsafe { run_rows(w, k, acts, t.r0, t.rows, dst[t.matrix].at(t.r0), w.rows) }
        }
    });
}

/// Whether `w` runs through [`run_rows`]: repacked (and the path has the kernel for
/// it), or with a row kernel for its type.
fn splits_rows(w: &Matrix, k: &TypeKernels) -> bool {
    packed(w, k).is_some() || k.has_gemv()
}

/// The repacked copy of `w`, if it has one that this path's kernels read.
fn packed<'w>(w: &'w Matrix, k: &TypeKernels) -> Option<&'w PackedMatrix> {
    w.packed.as_deref().filter(|_| k.has_packed())
}

/// Rows `r0..r0 + rows` (multiples of 16, or up to the last row) of `w` times every
/// token of `acts`, into `out[t * out_stride + r]`: the repacked kernel where `w` was
/// repacked, else the tile kernel for batches and the row kernel for a few tokens.
///
/// # Safety
/// `out` is valid for those writes and nothing else touches them meanwhile.
unsafe fn run_rows(
    w: &Matrix,
    k: &TypeKernels,
    acts: &Acts,
    r0: usize,
    rows: usize,
    out: *mut f32,
    out_stride: usize,
) {
    if let Some(p) = packed(w, k) {
        let job = PackedJob {
            layout: p.layout(),
            groups: p.groups(r0, rows),
            cols: w.cols,
            acts: acts.bytes(),
            act_stride: acts.stride(),
            n_tok: acts.n_tok(),
            out,
            out_stride,
        };
        // SAFETY: forwarded contract.
        return unsafe { k.run_packed(&job) };
    }
    let row_bytes = w.row_bytes();
    let wr = &w.data[r0 * row_bytes..(r0 + rows) * row_bytes];
    // SAFETY: forwarded contract.
    unsafe {
        match k.gemm() {
            Some(g) if acts.n_tok() >= TILE_MIN_TOKENS => {
                k.run_gemm(&g, wr, rows, acts, out, out_stride)
            }
            _ => k.run_gemv(wr, rows, acts, out, out_stride),
        }
    }
}

fn transpose_into(by_row: &[f32], n_tok: usize, rows: usize, out: &mut [f32]) {
    for (r, row) in by_row.chunks(n_tok).enumerate() {
        for (t, &v) in row.iter().enumerate() {
            out[t * rows + r] = v;
        }
    }
}

fn exact(w: &Matrix, x: &[f32], out: &mut [f32], n_tok: usize, by_row: &mut Vec<f32>) {
    by_row.resize(w.rows * n_tok, 0.0);
    let per = rows_per_task(w.rows, 4, 4);
    // The float path is for checking, not speed: rayon's per-thread scratch serves it.
    by_row
        .par_chunks_mut(per * n_tok)
        .enumerate()
        .for_each_init(
            || vec![0.0f32; w.cols],
            |w_row, (c, rows_out)| {
                for (i, row_out) in rows_out.chunks_mut(n_tok).enumerate() {
                    w.dequantize_row(c * per + i, w_row);
                    for (t, o) in row_out.iter_mut().enumerate() {
                        *o = ops::dot(w_row, &x[t * w.cols..][..w.cols]);
                    }
                }
            },
        );
    transpose_into(by_row, n_tok, w.rows, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{dot, quantize, GgmlType};
    use std::sync::Arc;

    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Matrices of one input in one pass give what one call per matrix gives, bit for bit.
    #[test]
    fn matmul_many_equals_single_calls() {
        let cols = 256;
        let types = [GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K];
        let rows = [48, 16, 40];
        let data: Vec<Vec<u16>> = types
            .iter()
            .zip(rows)
            .map(|(&ty, r)| {
                let bytes = ty.bytes_for((r * cols) as u64).unwrap() as usize;
                let mut d = vec![0u16; bytes / 2];
                quantize(
                    ty,
                    &pseudo_random(r * cols, r as u32),
                    bytemuck::cast_slice_mut(&mut d),
                )
                .unwrap();
                d
            })
            .collect();
        for (pick, n_tok) in [(0..2, 1), (0..2, 20), (0..3, 3), (1..3, 1)] {
            let ws: Vec<Matrix> = pick
                .clone()
                .map(|i| {
                    let data: &[u8] = bytemuck::cast_slice(&data[i]);
                    // The Q4_0 matrix repacked, as a load would: the two paths mix.
                    let packed = PackedMatrix::fits(types[i], rows[i], cols)
                        .then(|| Arc::new(PackedMatrix::pack(types[i], data, rows[i], cols)));
                    Matrix {
                        name: "w",
                        ty: types[i],
                        rows: rows[i],
                        cols,
                        data,
                        packed,
                    }
                })
                .collect();
            let x = pseudo_random(n_tok * cols, 5);
            let mut want: Vec<Vec<f32>> = ws.iter().map(|w| vec![0.0; n_tok * w.rows]).collect();
            let mut scratch = MatmulScratch::default();
            for (w, o) in ws.iter().zip(want.iter_mut()) {
                matmul(w, &x, o, &mut scratch, Precision::Quantized);
            }
            let mut got: Vec<Vec<f32>> = ws.iter().map(|w| vec![0.0; n_tok * w.rows]).collect();
            let refs: Vec<&Matrix> = ws.iter().collect();
            let mut outs: Vec<&mut [f32]> = got.iter_mut().map(|o| o.as_mut_slice()).collect();
            matmul_many(&refs, &x, &mut outs, &mut scratch, Precision::Quantized);
            assert_eq!(got, want, "matrices {pick:?}, {n_tok} tokens");
        }
    }

    /// Every batch size class against the reference dot product of each row and token.
    #[test]
    fn matmul_equals_reference_dots() {
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q8_0,
            GgmlType::Q6_K,
            GgmlType::F16,
        ] {
            let (rows, cols) = (48, 512);
            let wx = pseudo_random(rows * cols, 1);
            let row_bytes = ty.bytes_for(cols as u64).unwrap() as usize;
            let mut data = vec![0u16; rows * row_bytes / 2];
            quantize(ty, &wx, bytemuck::cast_slice_mut(&mut data)).unwrap();
            let plain = Matrix {
                name: "w",
                ty,
                rows,
                cols,
                data: bytemuck::cast_slice(&data),
                packed: None,
            };
            let repacked = PackedMatrix::fits(ty, rows, cols).then(|| Matrix {
                packed: Some(Arc::new(PackedMatrix::pack(ty, plain.data, rows, cols))),
                ..plain.clone()
            });
            for w in std::iter::once(&plain).chain(&repacked) {
                let a_ty = dot::vec_dot_type(ty);
                for n_tok in [1, 2, 5, 20] {
                    let x = pseudo_random(n_tok * cols, 7 + n_tok as u32);
                    let mut out = vec![0.0; n_tok * rows];
                    matmul(
                        w,
                        &x,
                        &mut out,
                        &mut MatmulScratch::default(),
                        Precision::Quantized,
                    );
                    for t in 0..n_tok {
                        let mut a = vec![0u32; a_ty.bytes_for(cols as u64).unwrap() as usize / 4];
                        quantize(
                            a_ty,
                            &x[t * cols..(t + 1) * cols],
                            bytemuck::cast_slice_mut(&mut a),
                        )
                        .unwrap();
                        for r in 0..rows {
                            let want = dot::vec_dot(ty, w.row(r), bytemuck::cast_slice(&a));
                            let got = out[t * rows + r];
                            assert!(
                                (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                                "{ty} n_tok {n_tok} row {r} token {t}: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
