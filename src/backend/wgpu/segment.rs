//! The offloaded part of a model: the last layers (and the output layer, when asked),
//! their weights and KV cache on the GPU, the activations they pass along, and the one
//! command submission that runs them for a step.

use std::sync::Arc;

use crate::model::Llama;

use super::kernel::read_into;
use super::layer::{upload, LayerMatrices};
use super::ops::{self, AttnShape, Dest, Kernel, KvType, Step};
use super::profile::{self, Profiler};
use super::upload::storage_init;
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
}

/// The GPU's share of a model, ready to run steps of up to `n_batch` tokens.
pub struct GpuSegment {
    gpu: Arc<Gpu>,
    pub offload: Offload,
    dim: usize,
    n_vocab: usize,
    half: usize,
    n_batch: usize,
    step: wgpu::Buffer,
    /// `[2][n_batch][half]`: the step's RoPE cos rows, then its sin rows
    table: wgpu::Buffer,
    /// `[n_batch][dim]` the residual stream
    x: wgpu::Buffer,
    /// `[n_batch][n_vocab]`, when the output layer is here
    logits: Option<wgpu::Buffer>,
    readback: wgpu::Buffer,
    layers: Vec<Kernel>,
    output: Vec<Kernel>,
    /// Timestamps between kernels, with `ROPEWALK_GPU_PROFILE=1`.
    profiler: Option<Profiler>,
    /// Fail the next step as a lost device would (for testing the CPU fallback).
    pub fail_next_step: bool,
}

/// The buffers a layer's kernels pass between them, `[n_batch][width]` each.
struct Activations {
    x: wgpu::Buffer,
    xn: wgpu::Buffer,
    /// `[n_batch][q | k | v]`
    qkv: wgpu::Buffer,
    att: wgpu::Buffer,
    /// `[n_batch][gate | up]`
    gate_up: wgpu::Buffer,
    hidden: wgpu::Buffer,
}

impl GpuSegment {
    /// Uploads layers `first_layer..` of `model` (and its output layer if `output`), with
    /// a KV cache of `n_ctx` positions stored as `kv`; `progress(done, total)` is called
    /// after each layer.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: Arc<Gpu>,
        model: &Llama,
        first_layer: usize,
        output: bool,
        n_ctx: usize,
        n_batch: usize,
        kv: KvType,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<GpuSegment> {
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
        if !c.head_dim.is_power_of_two() || !(8..=256).contains(&c.head_dim) {
            return Err(GpuError::Unsupported(format!(
                "heads of {} values (the attention shader takes powers of two from 8 to 256)",
                c.head_dim
            )));
        }
        let kv_bytes_per_layer = (n_ctx * kv_dim * kv.bytes_per_value()) as u64;
        if kv_bytes_per_layer > g.max_binding {
            return Err(GpuError::Unsupported(format!(
                "a layer's KV cache of {} MiB is above the adapter's largest binding ({} MiB)",
                kv_bytes_per_layer >> 20,
                g.max_binding >> 20
            )));
        }
        let a = g.checked("allocating activations", || Activations {
            x: ops::activations(g, "x", n_batch * c.dim),
            xn: ops::activations(g, "xn", n_batch * c.dim),
            qkv: ops::activations(g, "qkv", n_batch * qkv_dim),
            att: ops::activations(g, "att", n_batch * q_dim),
            gate_up: ops::activations(g, "gate_up", n_batch * 2 * c.ffn_dim),
            hidden: ops::activations(g, "hidden", n_batch * c.ffn_dim),
        })?;
        let step = ops::step_buffer(g);
        let table = ops::activations(g, "rope", 2 * n_batch * half);
        let mut offload = Offload {
            layers: c.n_layers - first_layer,
            output,
            weight_bytes: 0,
            kv_bytes: 0,
            via_f16: Vec::new(),
        };
        let shape = AttnShape {
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim,
        };

        let total = offload.layers + usize::from(output);
        let mut kernels = Vec::new();
        for (i, layer) in model.weights.layers[first_layer..].iter().enumerate() {
            let w = LayerMatrices::upload(g, layer, &mut offload)?;
            let norm = |v: &[f32]| storage_init(g, "norm", bytemuck::cast_slice(v));
            let (attn_norm, ffn_norm) = (norm(&layer.attn_norm), norm(&layer.ffn_norm));
            let (k_cache, v_cache) = g.checked("allocating the KV cache", || {
                let cache = |label| {
                    g.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(label),
                        size: kv_bytes_per_layer.next_multiple_of(16),
                        usage: wgpu::BufferUsages::STORAGE,
                        mapped_at_creation: false,
                    })
                };
                (cache("k cache"), cache("v cache"))
            })?;
            offload.kv_bytes += 2 * kv_bytes_per_layer;

            let eps = c.rms_eps;
            let caches = (&k_cache, &v_cache);
            kernels.push(ops::rms_norm(g, &attn_norm, c.dim, eps, &step, &a.x, &a.xn));
            kernels.extend(w.qkv.kernels(g, &step, &a.xn, &a.qkv));
            kernels.push(ops::rope_store(g, shape, kv, &step, &table, &a.qkv, caches));
            let q = (&a.qkv, qkv_dim);
            kernels.push(ops::attention(g, shape, kv, &step, q, caches, &a.att));
            kernels.extend(ops::matmul(g, &w.wo, &step, &a.att, &a.x, Dest::Add));
            kernels.push(ops::rms_norm(g, &ffn_norm, c.dim, eps, &step, &a.x, &a.xn));
            kernels.extend(w.gate_up.kernels(g, &step, &a.xn, &a.gate_up));
            kernels.push(ops::silu_mul(g, c.ffn_dim, &step, &a.gate_up, &a.hidden));
            kernels.extend(ops::matmul(g, &w.w_down, &step, &a.hidden, &a.x, Dest::Add));
            progress(i + 1, total);
        }

        let mut output_kernels = Vec::new();
        let logits = if output {
            let logits = g.checked("allocating logits", || {
                ops::activations(g, "logits", n_batch * c.n_vocab)
            })?;
            let out = upload(g, &model.weights.output, &mut offload)?;
            let norm = storage_init(g, "norm", bytemuck::cast_slice(&model.weights.output_norm));
            output_kernels.push(ops::rms_norm(
                g, &norm, c.dim, c.rms_eps, &step, &a.x, &a.xn,
            ));
            output_kernels.extend(ops::matmul(
                g,
                &out,
                &step,
                &a.xn,
                &logits,
                Dest::OutputRows,
            ));
            progress(total, total);
            Some(logits)
        } else {
            None
        };
        g.check_errors("building the GPU layers")?;
        let readback_floats = n_batch * if output { c.n_vocab } else { c.dim };
        let readback = g.device.create_buffer(&wgpu::BufferDescriptor {
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
            fail_next_step: false,
            dim: c.dim,
            n_vocab: c.n_vocab,
            half,
            n_batch,
            step,
            table,
            x: a.x,
            logits,
            readback,
            layers: kernels,
            output: output_kernels,
            offload,
            gpu,
        })
    }

    /// Runs a step of `x.len() / dim` tokens at positions `pos0..` through the segment.
    /// `cos` and `sin` are the positions' RoPE rows. With `out: Some((first, rows))`,
    /// the logits of tokens `first..first + rows` go to `logits` when the output layer is
    /// here, else those tokens' residual rows come back into `x`.
    pub fn step(
        &mut self,
        x: &mut [f32],
        pos0: usize,
        rope: (&[f32], &[f32]),
        out: Option<(usize, usize)>,
        logits: &mut [f32],
    ) -> Result<()> {
        if std::mem::take(&mut self.fail_next_step) {
            return Err(GpuError::Lost("a failure made on purpose".into()));
        }
        let n = x.len() / self.dim;
        assert!(
            n <= self.n_batch,
            "a step of {n} tokens in a segment for {}",
            self.n_batch
        );
        let (first, rows) = out.unwrap_or((0, 0));
        let step = Step {
            n_tokens: n as u32,
            pos0: pos0 as u32,
            out_first: first as u32,
            n_out: rows as u32,
        };
        let queue = &self.gpu.queue;
        queue.write_buffer(&self.step, 0, bytemuck::bytes_of(&step));
        queue.write_buffer(
            &self.table,
            0,
            bytemuck::cast_slice(&rope.0[..n * self.half]),
        );
        queue.write_buffer(
            &self.table,
            (n * self.half * 4) as u64,
            bytemuck::cast_slice(&rope.1[..n * self.half]),
        );
        queue.write_buffer(&self.x, 0, bytemuck::cast_slice(x));

        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            let profiler = self.profiler.as_ref().filter(|_| rows > 0);
            if let Some(p) = profiler {
                p.mark(&mut pass, 0);
            }
            let output = if rows > 0 { &self.output[..] } else { &[] };
            for (i, k) in self.layers.iter().chain(output).enumerate() {
                k.encode(&mut pass, &step);
                if let Some(p) = profiler {
                    p.mark(&mut pass, i + 1);
                }
            }
        }
        if let Some(p) = self.profiler.as_ref().filter(|_| rows > 0) {
            p.resolve(&mut encoder);
        }
        let back = match (&self.logits, rows) {
            (_, 0) => None,
            (Some(logits), _) => Some((logits, 0, rows * self.n_vocab)),
            (None, _) => Some((&self.x, first * self.dim, rows * self.dim)),
        };
        if let Some((src, offset, floats)) = back {
            encoder.copy_buffer_to_buffer(
                src,
                (offset * 4) as u64,
                &self.readback,
                0,
                (floats * 4) as u64,
            );
        }
        queue.submit([encoder.finish()]);
        self.gpu.check_errors("running a step")?;
        let Some((_, offset, floats)) = back else {
            return Ok(());
        };
        let dest = match self.logits {
            Some(_) => &mut logits[..floats],
            None => &mut x[offset..offset + floats],
        };
        read_into(&self.gpu, &self.readback, dest)?;
        if let Some(p) = &mut self.profiler {
            p.collect(&self.gpu);
        }
        self.gpu.check_errors("running a step")
    }
}

impl Drop for GpuSegment {
    fn drop(&mut self) {
        if let Some(p) = &self.profiler {
            eprint!("{}", p.report());
        }
    }
}
