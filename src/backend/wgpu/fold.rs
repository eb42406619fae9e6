//! RMSNorm and SwiGLU folded into the one-token matrix-vector products around them.
//!
//! A norm of its own is a dispatch of one workgroup that every product after it waits
//! for: about 8 µs of a 7B step's 3.3 ms on the H200, 65 times a step (SwiGLU's, 5 µs,
//! 32 times). But the product
//! that adds into the residual stream (the attention's output, the feed-forward's down)
//! already holds x, a block of 32 rows per workgroup: it writes each block's 8-bit copy
//! of x · weight and its Σ x² (`norm_out.wgsl`), and the products that read the copy
//! multiply their sums by the norm's scale, which they sum from the blocks' Σ x²
//! (`norm_in.wgsl`). The copy's bytes do not depend on the scale, only its d does, so
//! the result is the unfolded one's up to rounding.
//!
//! SwiGLU likewise: a workgroup of the stacked gate and up product takes the gate and up
//! rows of 32 hidden values, and stores silu(gate) · up and its 8-bit copy
//! (`glu_out.wgsl`), so `silu_mul.wgsl` runs for batches only.
//!
//! Batches keep the norm's own kernel: their products read f32 rows. So does a norm
//! whose readers lack an integer product (their one-token product reads f32 too), and
//! the output norm, whose product may take a single row of a batch.

use super::kernel::{Grid, Variants};
use super::ops::{self, Input, Kernel, Q8Rows, ShaderVariant};
use super::pipelines::Access::{self, Read as R, ReadWrite as RW};
use super::upload::{integer_dot, GpuMatrix};
use super::Gpu;

/// A folded norm, as its readers see it.
#[derive(Clone, Copy)]
pub struct Folded<'a> {
    /// `[dim / 32]` Σ x² of each block
    pub sums: &'a wgpu::Buffer,
    pub eps: f32,
}

/// What the product that makes a folded norm's input writes for it.
#[derive(Clone, Copy)]
pub struct NormOut<'a> {
    /// The norm's weight, `[dim]`.
    pub weight: &'a wgpu::Buffer,
    /// The 8-bit copy of x · weight.
    pub q8: &'a Q8Rows,
    /// `[dim / 32]` Σ x² of each block.
    pub sums: &'a wgpu::Buffer,
}

/// The 8-bit copy of the hidden row that a gate and up product makes with SwiGLU folded
/// in, and the row itself.
#[derive(Clone, Copy)]
pub struct GluOut<'a> {
    /// `[width]`
    pub hidden: &'a wgpu::Buffer,
    pub q8: &'a Q8Rows,
}

/// What a one-token matrix-vector product does with its rows' sums.
#[derive(Clone, Copy)]
pub enum Then<'a> {
    /// Stores (or adds) them.
    Store,
    /// Adds them into x and makes the input of the folded norm after it.
    Norm(NormOut<'a>),
    /// Takes them as gate and up pairs of a stacked `[gate; up]` matrix and stores
    /// silu(gate) · up, SwiGLU folded in.
    Glu(GluOut<'a>),
}

impl Then<'_> {
    /// The shader's output side.
    pub fn side(&self) -> OutSide {
        match self {
            Then::Store => OutSide::Store,
            Then::Norm(_) => OutSide::Norm,
            Then::Glu(_) => OutSide::Glu,
        }
    }

    /// The buffers the output side binds.
    pub fn buffers(&self) -> Vec<&wgpu::Buffer> {
        match self {
            Then::Store => vec![],
            Then::Norm(n) => vec![n.weight, &n.q8.q, &n.q8.d, n.sums],
            Then::Glu(g) => vec![&g.q8.q, &g.q8.d],
        }
    }
}

/// The matrix-vector shader's output side (`out_store.wgsl`, `norm_out.wgsl`,
/// `glu_out.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutSide {
    Store,
    Norm,
    Glu,
}

impl OutSide {
    /// Rows by runs of 32 lanes a workgroup: a block of x for a norm, of the hidden row
    /// for SwiGLU; `None` where the product chooses.
    pub fn shape(self) -> Option<(u32, u32)> {
        match self {
            OutSide::Store => None,
            OutSide::Norm => Some((1, 32)),
            OutSide::Glu => Some((2, 32)),
        }
    }
}

/// The matrix-vector shader's files and defines for its input side (a folded norm's
/// reader or not) and its output side, whose bindings follow the product's seven: the
/// norm's sums for a reader, then the output side's ([`Then::buffers`]).
pub fn side_files(folded_in: bool, out: OutSide) -> ShaderVariant {
    let mut files = vec![if folded_in { "norm_in" } else { "norm_in_none" }];
    let next = 7 + u32::from(folded_in);
    let at = |i: u32| (next + i).to_string();
    let defines = match out {
        OutSide::Store => {
            files.push("out_store");
            vec![]
        }
        OutSide::Norm => {
            files.extend(["norm_out", "fold_store", "q8_store", "q8_block"]);
            vec![("NW", at(0)), ("AQ", at(1)), ("AD", at(2)), ("SUMS", at(3))]
        }
        OutSide::Glu => {
            files.extend(["glu_out", "q8_store", "q8_block"]);
            vec![("AQ", at(0)), ("AD", at(1))]
        }
    };
    (files, defines)
}

/// The bindings [`side_files`]' sides add after a product's own.
pub fn side_bindings(folded_in: bool, out: OutSide) -> Vec<Access> {
    let mut bindings = if folded_in { vec![R] } else { vec![] };
    bindings.extend_from_slice(match out {
        OutSide::Store => &[],
        OutSide::Norm => &[R, RW, RW, RW],
        OutSide::Glu => &[RW, RW],
    });
    bindings
}

/// Whether a stacked gate and up matrix can fold SwiGLU in: one matrix (not parts), an
/// integer product, one chunk, and 8-bit activations on the fast path.
pub fn glu_foldable(gpu: &Gpu, gate_up: Option<&GpuMatrix>, q8: bool) -> bool {
    gpu.fold_ops
        && q8
        && gate_up.is_some_and(|m| {
            integer_dot(m.decode).is_some() && m.chunks.len() == 1 && m.rows % 64 == 0
        })
}

/// `k` for batches only: one token has its work done by a product with it folded in.
pub fn batches_only(k: Kernel) -> Kernel {
    Kernel {
        variants: Variants::BatchesOnly(k.variants.into_any()),
        label: k.label,
    }
}

/// Whether the norm between `maker` (the product that adds into x before it; `None`
/// where x comes from the host) and `readers` can be folded.
pub fn foldable(gpu: &Gpu, maker: Option<&GpuMatrix>, readers: &[&GpuMatrix]) -> bool {
    let fast = |m: &GpuMatrix| integer_dot(m.decode).is_some();
    gpu.fold_ops
        && readers.iter().all(|m| fast(m))
        && maker.is_none_or(|m| fast(m) && m.chunks.len() == 1 && m.rows % 32 == 0)
}

/// The norm of `x` into `out`. Where its readers fold it (`out.folded` set), its own
/// kernel runs for batches only, unless x comes from the host (`first`): then
/// `rms_fold.wgsl` makes what a product would have made, for one token.
pub fn rms_norm(
    gpu: &Gpu,
    (weight, dim, eps, out): (&wgpu::Buffer, usize, f32, Input),
    step: &wgpu::Buffer,
    x: &wgpu::Buffer,
    first: bool,
) -> Kernel {
    let batches = Input {
        folded: None,
        ..out
    };
    let own = ops::rms_norm(gpu, weight, dim, eps, step, x, batches);
    let (Some(folded), Some(q8)) = (out.folded, out.q8) else {
        return own;
    };
    if !first {
        return batches_only(own);
    }
    let (files, defines) = first_variant();
    let one = ops::shader_variant(
        gpu,
        (&files, &defines),
        &[dim as u32, eps.to_bits()],
        step,
        &[
            (weight, R),
            (x, R),
            (&q8.q, RW),
            (&q8.d, RW),
            (folded.sums, RW),
        ],
        Grid::Items {
            per_token: (dim / 32) as u32,
        },
    );
    Kernel {
        variants: Variants::ByTokens {
            one,
            many: own.variants.into_any(),
        },
        label: "rms_norm folded first".into(),
    }
}

/// `rms_fold.wgsl`'s files and defines: its copy and sums at bindings 4-6.
pub fn first_variant() -> ShaderVariant {
    (
        vec!["rms_fold", "norm_input", "fold_store", "q8_store"],
        vec![
            ("AQ", "4".to_string()),
            ("AD", "5".into()),
            ("SUMS", "6".into()),
        ],
    )
}
