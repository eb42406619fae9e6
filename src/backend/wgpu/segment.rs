//! The offloaded part of a model: the last layers (and the output layer, when asked),
//! their weights and KV cache on the GPU, the activations they pass along, and the one
//! command submission that runs them for a step (run.rs).

mod run;

use std::sync::Arc;
use std::time::Instant;

use crate::backend::cpu::matmul::Precision;
use crate::model::Llama;

use super::fold;
use super::inputs::StepInputs;
use super::layer::{upload, GpuLayer, Stack};
use super::ops::{self, Dest, Folded, GluOut, Input, Kernel, KvType, NormOut, Step};
use super::profile::{self, Profiler};
use super::shortlist::{self, Lists};
use super::step_buffers::{
    attn_shape, kv_bytes_per_layer, logit_rows, readback_floats, scratch_floats, Activations,
};
use super::upload::{storage_init, GpuMatrix};
use super::{Gpu, GpuError, Result};

/// What went to the GPU.
#[derive(Clone, Debug)]
pub struct Offload {
    /// Layers on the GPU: the last `layers` of the model.
    pub layers: usize,
    /// Whether the output norm and matrix run there too.
    pub output: bool,
    pub weight_bytes: u64,
    pub kv_bytes: u64,
    /// Matrices stored as f16 because their type has no GPU shader.
    pub via_f16: Vec<String>,
    /// RMSNorms that one-token steps fold into the products around them.
    pub folded_norms: usize,
    /// SwiGLUs that one-token steps fold into the gate and up product.
    pub folded_swiglu: usize,
}

/// The GPU's share of a model, ready to run steps of up to `n_batch` tokens.
pub struct GpuSegment {
    gpu: Arc<Gpu>,
    pub offload: Offload,
    dim: usize,
    n_vocab: usize,
    half: usize,
    head_dim: usize,
    n_batch: usize,
    /// Where each step's inputs go up from (inputs.rs), into the next three buffers.
    inputs: StepInputs,
    step: wgpu::Buffer,
    /// `[2][n_batch][half]`: the step's RoPE cos rows, then its sin rows
    table: wgpu::Buffer,
    /// `[n_batch][dim]` the residual stream
    x: wgpu::Buffer,
    /// `[logit_rows][n_vocab]`, when the output layer is here
    logits: Option<wgpu::Buffer>,
    /// Logit rows a pass of the output layer makes ([`logit_rows`]).
    logit_rows: usize,
    readback: wgpu::Buffer,
    /// Shortlists of the next token's candidates, with the output layer.
    lists: Option<Lists>,
    layers: Vec<Kernel>,
    output: Vec<Kernel>,
    /// Timestamps between kernels, with `ROPEWALK_GPU_PROFILE=1`.
    profiler: Option<Profiler>,
    /// Label prefixes of kernels left out, with `ROPEWALK_GPU_SKIP` (measuring only).
    skip: Vec<String>,
    /// Fail the next step as a lost device would (for testing the CPU fallback).
    pub fail_next_step: bool,
    /// The next step's commands, recorded ahead for a step of this shape with its
    /// inputs in this slot.
    ahead: Option<((Step, usize), wgpu::CommandBuffer)>,
    /// When the last step returned, if it was of one token (for the profiler's gap
    /// between one-token steps).
    returned: Option<Instant>,
}

/// What a step brings back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    Nothing,
    /// The logits of tokens `first..first + rows` (their residual rows, when the output
    /// layer is not here).
    Rows {
        first: usize,
        rows: usize,
    },
    /// The logits of token `token` as a shortlist of at least its `k` most likely, where
    /// the output layer is here and k is at most [`shortlist::MOST`] (see
    /// [`GpuSegment::shortlist`]); else as `Rows` of that token.
    Shortlist {
        token: usize,
        k: usize,
    },
}

/// Which part of a model goes to the GPU, and how it runs there.
#[derive(Clone, Copy, Debug)]
pub struct SegmentSpec {
    /// The first layer on the GPU; the rest follow.
    pub first_layer: usize,
    /// Whether the output norm and matrix go too.
    pub output: bool,
    /// Positions the KV cache holds.
    pub n_ctx: usize,
    /// Most tokens in a step.
    pub n_batch: usize,
    pub kv: KvType,
    /// `Quantized`: one-token steps multiply the quantized types with 8-bit activations,
    /// as the CPU does; `Exact`: every product reads f32 activations.
    pub precision: Precision,
}

impl GpuSegment {
    /// Uploads the part of `model` that `spec` names, with its KV cache;
    /// `progress(done, total)` is called after each layer.
    pub fn new(
        gpu: Arc<Gpu>,
        model: &Llama,
        spec: SegmentSpec,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<GpuSegment> {
        let SegmentSpec {
            first_layer,
            output,
            n_ctx,
            n_batch,
            kv,
            precision,
        } = spec;
        let c = &model.config;
        let g = &*gpu;
        let q_dim = c.n_heads * c.head_dim;
        let kv_dim = c.kv_dim();
        let qkv_dim = q_dim + 2 * kv_dim;
        let half = model.rope.dims / 2;
        if model.rope.dims != c.head_dim {
            return Err(GpuError::Unsupported(format!(
                "RoPE over {} of {} head dimensions",
                model.rope.dims, c.head_dim
            )));
        }
        if !c.head_dim.is_power_of_two() || !(32..=256).contains(&c.head_dim) {
            return Err(GpuError::Unsupported(format!(
                "heads of {} values (the attention shader takes powers of two from 32 to 256)",
                c.head_dim
            )));
        }
        let kv_bytes_per_layer = kv_bytes_per_layer(c, n_ctx, kv);
        if kv_bytes_per_layer > g.max_binding {
            return Err(GpuError::Unsupported(format!(
                "a layer's KV cache of {} MiB is above the adapter's largest binding ({} MiB)",
                kv_bytes_per_layer >> 20,
                g.max_binding >> 20
            )));
        }
        let a = g.checked("allocating activations", || {
            Activations::new(g, c, n_batch, precision)
        })?;
        let [xn, att, hidden] = a.inputs();
        let inputs = g.checked("allocating the step's inputs", || {
            StepInputs::new(g, n_batch, half, c.dim)
        })?;
        let step = ops::step_buffer(g);
        let [table_floats, sums_floats, parts_floats] = scratch_floats(model, n_batch);
        let table = ops::activations(g, "rope", table_floats);
        let mut offload = Offload {
            layers: c.n_layers - first_layer,
            output,
            weight_bytes: 0,
            kv_bytes: 0,
            via_f16: Vec::new(),
            folded_norms: 0,
            folded_swiglu: 0,
        };
        let shape = attn_shape(c);
        let attention_parts = ops::activations(g, "attention parts", parts_floats);

        let total = offload.layers + usize::from(output);
        let mut layers = Vec::new();
        for (i, weights) in model.weights.layers[first_layer..].iter().enumerate() {
            layers.push(GpuLayer::upload(
                g,
                weights,
                kv_bytes_per_layer,
                &mut offload,
            )?);
            progress(i + 1, total);
        }

        // Which norms fold into the products around them (fold.rs): each layer's
        // attention norm, made by the layer before (none before the first), and its
        // feed-forward norm, made by its attention's output product.
        let fold = |maker: Option<&GpuMatrix>, readers: &Stack| {
            a.q8.is_some() && fold::foldable(g, maker, &readers.parts())
        };
        let attn_folds: Vec<bool> = (0..layers.len())
            .map(|i| {
                fold(
                    i.checked_sub(1).map(|j| &layers[j].m.w_down),
                    &layers[i].m.qkv,
                )
            })
            .collect();
        let ffn_folds: Vec<bool> = layers
            .iter()
            .map(|l| fold(Some(&l.m.wo), &l.m.gate_up))
            .collect();
        let glu_folds: Vec<bool> = layers
            .iter()
            .map(|l| fold::glu_foldable(g, l.m.gate_up.one(), a.q8.is_some()))
            .collect();
        let count = |folds: &[bool]| folds.iter().filter(|&&f| f).count();
        offload.folded_norms = count(&attn_folds) + count(&ffn_folds);
        offload.folded_swiglu = count(&glu_folds);
        let sums = ops::activations(g, "norm sums", sums_floats);
        let normed = |folded: bool| Input {
            folded: folded.then_some(Folded {
                sums: &sums,
                eps: c.rms_eps,
            }),
            ..xn
        };
        // What a product adding into x makes for the folded norm `weight` after it.
        let making = |weight| {
            a.q8.as_ref().map(|q8| NormOut {
                weight,
                q8: &q8[0],
                sums: &sums,
            })
        };

        let mut kernels = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let norm = |weight, folded| (weight, c.dim, c.rms_eps, normed(folded));
            let caches = (&l.k_cache, &l.v_cache);
            let k = &mut kernels;
            let xn_attn = normed(attn_folds[i]);
            k.push(fold::rms_norm(
                g,
                norm(&l.attn_norm, attn_folds[i]),
                &step,
                &a.x,
                i == 0,
            ));
            k.extend(l.m.qkv.kernels(g, &step, xn_attn, &a.qkv));
            k.push(ops::rope_store(g, shape, kv, &step, &table, &a.qkv, caches));
            let q = (&a.qkv, qkv_dim);
            k.extend(ops::attention(
                g,
                (shape, kv, g.attention_split),
                &step,
                &table,
                q,
                caches,
                (&attention_parts, att),
            ));
            let then = making(&l.ffn_norm).filter(|_| ffn_folds[i]);
            k.extend(add_product(g, &l.m.wo, &step, att, &a.x, then));
            k.push(fold::rms_norm(
                g,
                norm(&l.ffn_norm, ffn_folds[i]),
                &step,
                &a.x,
                false,
            ));
            let xn_ffn = normed(ffn_folds[i]);
            let silu = ops::silu_mul(g, c.ffn_dim, &step, &a.gate_up, hidden);
            match (l.m.gate_up.one(), &a.q8) {
                (Some(m), Some(q8)) if glu_folds[i] => {
                    let glu = GluOut {
                        hidden: &a.hidden,
                        q8: &q8[2],
                    };
                    k.extend(ops::matmul_glu(g, m, &step, xn_ffn, &a.gate_up, glu));
                    k.push(fold::batches_only(silu));
                }
                _ => {
                    k.extend(l.m.gate_up.kernels(g, &step, xn_ffn, &a.gate_up));
                    k.push(silu);
                }
            }
            let next = layers
                .get(i + 1)
                .filter(|_| attn_folds.get(i + 1) == Some(&true));
            let then = next.and_then(|n| making(&n.attn_norm));
            k.extend(add_product(g, &l.m.w_down, &step, hidden, &a.x, then));
        }

        let mut output_kernels = Vec::new();
        let logit_rows = logit_rows(n_batch);
        let (logits, lists) = if output {
            let logits = g.checked("allocating logits", || {
                ops::activations(g, "logits", logit_rows * c.n_vocab)
            })?;
            let out = upload(g, &model.weights.output, &mut offload)?;
            let norm = storage_init(g, "norm", bytemuck::cast_slice(&model.weights.output_norm));
            output_kernels.push(ops::rms_norm(g, &norm, c.dim, c.rms_eps, &step, &a.x, xn));
            output_kernels.extend(ops::matmul(g, &out, &step, xn, &logits, Dest::OutputRows));
            let (picking, list) = shortlist::kernels(g, &step, &logits, c.n_vocab);
            output_kernels.extend(picking);
            progress(total, total);
            (Some(logits), Some(Lists::new(g, list)))
        } else {
            (None, None)
        };
        g.check_errors("building the GPU layers")?;
        let readback_floats = readback_floats(c, n_batch, output);
        let readback = g.buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: (readback_floats * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let profiler = if profile::wanted() {
            let labels = kernels
                .iter()
                .chain(&output_kernels)
                .map(|k| k.label.clone());
            Profiler::new(g, labels.collect())
        } else {
            None
        };
        Ok(GpuSegment {
            profiler,
            skip: profile::skipped(),
            fail_next_step: false,
            ahead: None,
            returned: None,
            dim: c.dim,
            n_vocab: c.n_vocab,
            half,
            head_dim: c.head_dim,
            n_batch,
            inputs,
            step,
            table,
            x: a.x,
            logits,
            logit_rows,
            readback,
            lists,
            layers: kernels,
            output: output_kernels,
            offload,
            gpu,
        })
    }
}

/// `x += m · act`, making the input of the folded norm after it where `then` is set.
fn add_product<'a>(
    gpu: &Gpu,
    m: &GpuMatrix,
    step: &wgpu::Buffer,
    act: Input<'a>,
    x: &wgpu::Buffer,
    then: Option<NormOut>,
) -> Vec<Kernel> {
    match then {
        Some(norm) => ops::matmul_folding(gpu, m, step, act, x, norm),
        None => ops::matmul(gpu, m, step, act, x, Dest::Add),
    }
}

impl Drop for GpuSegment {
    fn drop(&mut self) {
        if let Some(p) = &self.profiler {
            eprint!("{}", p.report());
        }
    }
}
