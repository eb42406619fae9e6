//! `out = x · Wᵀ` for a batch of tokens: every weight row is read once per batch and
//! dotted with each token's activations, and the rows are split across threads.

use rayon::prelude::*;

use crate::model::weights::Matrix;
use crate::quant::{self, dot, GgmlType};

use super::ops;

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
    /// Quantized activations, `[n_tok][act_row_bytes]`.
    act: Vec<u8>,
    /// Results by weight row, `[rows][n_tok]`, before they are transposed into `out`.
    by_row: Vec<f32>,
}

/// Rows per parallel task: enough work to amortize the task, enough tasks to balance.
fn rows_per_task(rows: usize) -> usize {
    (rows / (8 * rayon::current_num_threads())).clamp(4, 256)
}

/// `x`: `[n_tok][w.cols]`; `out`: `[n_tok][w.rows]`.
pub fn matmul(
    w: &Matrix,
    x: &[f32],
    out: &mut [f32],
    scratch: &mut MatmulScratch,
    precision: Precision,
) {
    let n_tok = x.len() / w.cols;
    debug_assert_eq!(x.len(), n_tok * w.cols);
    debug_assert_eq!(out.len(), n_tok * w.rows);
    let MatmulScratch { act, by_row } = scratch;
    // One token writes its results straight into `out`; a batch collects them by row so
    // each task owns one contiguous slice.
    let dest: &mut [f32] = if n_tok == 1 {
        &mut *out
    } else {
        by_row.resize(w.rows * n_tok, 0.0);
        by_row
    };
    let chunk = rows_per_task(w.rows);
    match precision {
        Precision::Quantized => {
            let act_ty = dot::vec_dot_type(w.ty);
            let act_row = act_ty
                .bytes_for(w.cols as u64)
                .expect("weight rows are whole blocks") as usize;
            act.resize(n_tok * act_row, 0);
            if act_ty == GgmlType::F32 {
                act.copy_from_slice(bytemuck::cast_slice(x));
            } else {
                act.par_chunks_mut(act_row)
                    .zip(x.par_chunks(w.cols))
                    .for_each(|(a, xr)| {
                        quant::quantize(act_ty, xr, a).expect("sizes match the block")
                    });
            }
            let act = &*act;
            dest.par_chunks_mut(chunk * n_tok)
                .enumerate()
                .for_each(|(c, rows_out)| {
                    for (i, row_out) in rows_out.chunks_mut(n_tok).enumerate() {
                        let w_row = w.row(c * chunk + i);
                        for (t, o) in row_out.iter_mut().enumerate() {
                            *o = dot::vec_dot(w.ty, w_row, &act[t * act_row..][..act_row]);
                        }
                    }
                });
        }
        Precision::Exact => {
            dest.par_chunks_mut(chunk * n_tok)
                .enumerate()
                .for_each_init(
                    || vec![0.0f32; w.cols],
                    |w_row, (c, rows_out)| {
                        for (i, row_out) in rows_out.chunks_mut(n_tok).enumerate() {
                            w.dequantize_row(c * chunk + i, w_row);
                            for (t, o) in row_out.iter_mut().enumerate() {
                                *o = ops::dot(w_row, &x[t * w.cols..][..w.cols]);
                            }
                        }
                    },
                );
        }
    }
    if n_tok > 1 {
        for (r, row) in by_row.chunks(n_tok).enumerate() {
            for (t, &v) in row.iter().enumerate() {
                out[t * w.rows + r] = v;
            }
        }
    }
}
