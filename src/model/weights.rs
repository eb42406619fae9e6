//! The weights of a Llama model, borrowed from the file's memory map in their stored
//! types. The norm vectors, a few KiB, are copied out (as f32); Q4_0 matrices are also
//! repacked once into the layout of [`crate::quant::packed`] where the kernel path has a
//! kernel for it (the bytes in the map stay what embedding lookups read).

use std::sync::Arc;

use rayon::prelude::*;

use crate::gguf::{GgufFile, TensorView};
use crate::quant::kernels::kernels;
use crate::quant::packed::PackedMatrix;
use crate::quant::{self, GgmlType};

use super::config::{LlamaConfig, ModelError, Result};

/// A weight matrix `[rows][cols]` in its stored type: row r holds the `cols` inputs of
/// output r, as GGUF stores a `[cols, rows]` tensor (innermost first).
#[derive(Clone)]
pub struct Matrix<'a> {
    pub name: &'a str,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [u8],
    /// The same matrix repacked for the matrix kernels, when it was.
    pub packed: Option<Arc<PackedMatrix>>,
}

impl<'a> Matrix<'a> {
    pub fn row_bytes(&self) -> usize {
        self.data.len() / self.rows
    }

    pub fn row(&self, r: usize) -> &'a [u8] {
        let n = self.row_bytes();
        &self.data[r * n..(r + 1) * n]
    }

    /// Row `r` as f32 values.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        quant::dequantize(self.ty, self.row(r), out).expect("row sizes were checked at load")
    }
}

pub struct LayerWeights<'a> {
    /// `[dim]`
    pub attn_norm: Vec<f32>,
    /// `[n_heads * head_dim][dim]`
    pub wq: Matrix<'a>,
    /// `[n_kv_heads * head_dim][dim]`
    pub wk: Matrix<'a>,
    /// `[n_kv_heads * head_dim][dim]`
    pub wv: Matrix<'a>,
    /// `[dim][n_heads * head_dim]`
    pub wo: Matrix<'a>,
    /// `[dim]`
    pub ffn_norm: Vec<f32>,
    /// `[ffn_dim][dim]`
    pub w_gate: Matrix<'a>,
    /// `[ffn_dim][dim]`
    pub w_up: Matrix<'a>,
    /// `[dim][ffn_dim]`
    pub w_down: Matrix<'a>,
}

pub struct LlamaWeights<'a> {
    /// `[n_vocab][dim]`
    pub token_embd: Matrix<'a>,
    pub layers: Vec<LayerWeights<'a>>,
    /// `[dim]`
    pub output_norm: Vec<f32>,
    /// `[n_vocab][dim]`: `output.weight`, or the token embedding when the two are tied.
    pub output: Matrix<'a>,
}

impl<'a> LlamaWeights<'a> {
    /// The model's weights; `repack` repacks the matrices the kernel path has a packed
    /// kernel for.
    pub fn load(file: &'a GgufFile, c: &LlamaConfig, repack: bool) -> Result<LlamaWeights<'a>> {
        let q_dim = c.n_heads * c.head_dim;
        let layers = (0..c.n_layers)
            .map(|i| {
                let name = |t: &str| format!("blk.{i}.{t}.weight");
                Ok(LayerWeights {
                    attn_norm: vector(file, &name("attn_norm"), c.dim)?,
                    wq: matrix(file, &name("attn_q"), q_dim, c.dim)?,
                    wk: matrix(file, &name("attn_k"), c.kv_dim(), c.dim)?,
                    wv: matrix(file, &name("attn_v"), c.kv_dim(), c.dim)?,
                    wo: matrix(file, &name("attn_output"), c.dim, q_dim)?,
                    ffn_norm: vector(file, &name("ffn_norm"), c.dim)?,
                    w_gate: matrix(file, &name("ffn_gate"), c.ffn_dim, c.dim)?,
                    w_up: matrix(file, &name("ffn_up"), c.ffn_dim, c.dim)?,
                    w_down: matrix(file, &name("ffn_down"), c.dim, c.ffn_dim)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let token_embd = matrix(file, "token_embd.weight", c.n_vocab, c.dim)?;
        let output = match file.tensor("output.weight") {
            Ok(_) => matrix(file, "output.weight", c.n_vocab, c.dim)?,
            Err(_) => token_embd.clone(),
        };
        let mut weights = LlamaWeights {
            token_embd,
            layers,
            output_norm: vector(file, "output_norm.weight", c.dim)?,
            output,
        };
        if repack {
            weights.repack();
        }
        Ok(weights)
    }

    /// Every matrix a forward pass multiplies with (not the embedding, which is looked
    /// up by row).
    fn matrices_mut(&mut self) -> impl Iterator<Item = &mut Matrix<'a>> {
        self.layers
            .iter_mut()
            .flat_map(|l| {
                [
                    &mut l.wq,
                    &mut l.wk,
                    &mut l.wv,
                    &mut l.wo,
                    &mut l.w_gate,
                    &mut l.w_up,
                    &mut l.w_down,
                ]
            })
            .chain(std::iter::once(&mut self.output))
    }

    fn repack(&mut self) {
        let table = kernels();
        let wanted = |m: &Matrix| {
            table.for_type(m.ty).is_some_and(|k| k.has_packed())
                && PackedMatrix::fits(m.ty, m.rows, m.cols)
        };
        let todo: Vec<&mut Matrix<'a>> = self.matrices_mut().filter(|m| wanted(m)).collect();
        todo.into_par_iter().for_each(|m| {
            m.packed = Some(Arc::new(PackedMatrix::pack(m.ty, m.data, m.rows, m.cols)));
        });
    }

    /// Bytes held by repacked copies (a tied output counts once: it is repacked once).
    pub fn packed_bytes(&self) -> usize {
        let layers = self
            .layers
            .iter()
            .flat_map(|l| [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]);
        layers
            .chain([&self.output])
            .filter_map(|m| m.packed.as_ref().map(|p| p.bytes()))
            .sum()
    }
}

fn tensor<'a>(file: &'a GgufFile, name: &str, dims: &[usize]) -> Result<TensorView<'a>> {
    let t = file.tensor(name)?;
    let want: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
    if t.dims() != want {
        return Err(ModelError::Invalid(format!(
            "tensor '{name}' has shape {:?}, expected {want:?}",
            t.dims()
        )));
    }
    Ok(t)
}

fn matrix<'a>(file: &'a GgufFile, name: &str, rows: usize, cols: usize) -> Result<Matrix<'a>> {
    let t = tensor(file, name, &[cols, rows])?;
    if matches!(t.ty(), GgmlType::Q8_1 | GgmlType::Q8_K) {
        return Err(ModelError::Invalid(format!(
            "tensor '{name}' has type {}, an activation type that weights cannot use",
            t.ty()
        )));
    }
    Ok(Matrix {
        name: t.name(),
        ty: t.ty(),
        rows,
        cols,
        data: t.data,
        packed: None,
    })
}

fn vector(file: &GgufFile, name: &str, len: usize) -> Result<Vec<f32>> {
    let t = tensor(file, name, &[len])?;
    let mut v = vec![0.0; len];
    quant::dequantize(t.ty(), t.data, &mut v)
        .map_err(|e| ModelError::Invalid(format!("tensor '{name}': {e}")))?;
    Ok(v)
}
