//! The buffers a step's kernels pass between them, and the sizes of everything an offload
//! makes beside its weights (which [`Footprint`](super::Footprint) reckons beforehand).

use crate::backend::cpu::matmul::Precision;
use crate::model::{Llama, LlamaConfig};

use super::ops::{self, AttnShape, Input, KvType, Q8Rows};
use super::Gpu;

/// Logit rows a step's pass of the output layer makes, for steps of up to `n_batch`
/// tokens: a step that wants more (perplexity's batches) runs the output layer again for
/// the rest, so the logits and their readback take 64 rows, not a batch's (512 rows of
/// Llama 3's 128256 logits would be 256 MiB each).
pub(super) fn logit_rows(n_batch: usize) -> usize {
    n_batch.min(64)
}

/// The f32 values that come back after a step of up to `n_batch` tokens: logits, with the
/// output layer on the GPU, else hidden rows.
pub(super) fn readback_floats(c: &LlamaConfig, n_batch: usize, output: bool) -> usize {
    match output {
        true => logit_rows(n_batch) * c.n_vocab,
        false => n_batch * c.dim,
    }
}

/// The f32 values of the step's other buffers that every layer shares: the RoPE table,
/// the folded norms' sums, the attention's parts.
pub(super) fn scratch_floats(model: &Llama, n_batch: usize) -> [usize; 3] {
    let c = &model.config;
    let table = 2 * n_batch * (model.rope.dims / 2);
    [
        table,
        c.dim / 32,
        ops::attention_parts_floats(attn_shape(c)),
    ]
}

/// Bytes of one layer's cached keys (or values) for `n_ctx` positions.
pub(super) fn kv_bytes_per_layer(c: &LlamaConfig, n_ctx: usize, kv: KvType) -> u64 {
    (n_ctx * c.kv_dim() * kv.bytes_per_value()) as u64
}

pub(super) fn attn_shape(c: &LlamaConfig) -> AttnShape {
    AttnShape {
        n_heads: c.n_heads,
        n_kv_heads: c.n_kv_heads,
        head_dim: c.head_dim,
    }
}

/// The buffers a layer's kernels pass between them, `[n_batch][width]` each.
pub(super) struct Activations {
    pub x: wgpu::Buffer,
    pub xn: wgpu::Buffer,
    /// `[n_batch][q | k | v]`
    pub qkv: wgpu::Buffer,
    pub att: wgpu::Buffer,
    /// `[n_batch][gate | up]`
    pub gate_up: wgpu::Buffer,
    pub hidden: wgpu::Buffer,
    /// 8-bit copies of the matrix products' inputs, on the quantized path.
    pub q8: Option<[Q8Rows; 3]>,
}

impl Activations {
    pub(super) fn new(
        g: &Gpu,
        c: &LlamaConfig,
        n_batch: usize,
        precision: Precision,
    ) -> Activations {
        let labels = ["x", "xn", "qkv", "att", "gate_up", "hidden"];
        let mut rows = labels
            .into_iter()
            .zip(Activations::widths(c))
            .map(|(label, width)| ops::activations(g, label, n_batch * width));
        let mut next = || rows.next().expect("six widths");
        Activations {
            x: next(),
            xn: next(),
            qkv: next(),
            att: next(),
            gate_up: next(),
            hidden: next(),
            q8: (precision == Precision::Quantized)
                .then(|| Activations::q8_widths(c).map(|cols| Q8Rows::new(g, n_batch, cols))),
        }
    }

    /// Bytes that [`Activations::new`] makes.
    pub(super) fn bytes(c: &LlamaConfig, n_batch: usize, precision: Precision) -> u64 {
        let rows = Activations::widths(c).map(|width| ops::activation_bytes(n_batch * width));
        let q8 = match precision {
            Precision::Quantized => Activations::q8_widths(c).map(|w| Q8Rows::bytes(n_batch, w)),
            Precision::Exact => [0; 3],
        };
        rows.iter().chain(&q8).sum()
    }

    /// The rows' widths: x, xn, qkv, att, gate_up, hidden.
    fn widths(c: &LlamaConfig) -> [usize; 6] {
        let q_dim = c.n_heads * c.head_dim;
        let qkv_dim = q_dim + 2 * c.kv_dim();
        [c.dim, c.dim, qkv_dim, q_dim, 2 * c.ffn_dim, c.ffn_dim]
    }

    /// The widths of the 8-bit copies: of xn, att and hidden.
    fn q8_widths(c: &LlamaConfig) -> [usize; 3] {
        [c.dim, c.n_heads * c.head_dim, c.ffn_dim]
    }

    /// The products' inputs (`xn`, `att`, `hidden`), each with its 8-bit copy where
    /// there is one.
    pub(super) fn inputs(&self) -> [Input<'_>; 3] {
        let q8 = |i: usize| self.q8.as_ref().map(|q| &q[i]);
        [(&self.xn, q8(0)), (&self.att, q8(1)), (&self.hidden, q8(2))].map(|(f32, q8)| Input {
            f32,
            q8,
            folded: None,
        })
    }
}
