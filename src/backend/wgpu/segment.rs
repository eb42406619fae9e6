//! The offloaded part of a model: the last layers (and the output layer, when asked),
//! their weights and KV cache on the GPU, the activations they pass along, and the one
//! command submission that runs them for a step.

use std::sync::Arc;

use crate::model::weights::LayerWeights;
use crate::model::Llama;

use super::ops::{self, AttnShape, Dest, Kernel, KvType, Step};
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
}

/// The buffers a layer's kernels pass between them, `[n_batch][width]` each.
struct Activations {
    x: wgpu::Buffer,
    xn: wgpu::Buffer,
    q: wgpu::Buffer,
    k: wgpu::Buffer,
    v: wgpu::Buffer,
    att: wgpu::Buffer,
    gate: wgpu::Buffer,
    up: wgpu::Buffer,
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
        let half = model.rope.dims / 2;
        if model.rope.dims != c.head_dim {
            return Err(GpuError::Unsupported(format!(
                "RoPE over {} of {} head dimensions",
                model.rope.dims, c.head_dim
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
            q: ops::activations(g, "q", n_batch * q_dim),
            k: ops::activations(g, "k", n_batch * kv_dim),
            v: ops::activations(g, "v", n_batch * kv_dim),
            att: ops::activations(g, "att", n_batch * q_dim),
            gate: ops::activations(g, "gate", n_batch * c.ffn_dim),
            up: ops::activations(g, "up", n_batch * c.ffn_dim),
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
            kernels.push(ops::rms_norm(g, &attn_norm, c.dim, eps, &step, &a.x, &a.xn));
            kernels.extend(ops::matmul(g, &w.wq, &step, &a.xn, &a.q, Dest::Store));
            kernels.extend(ops::matmul(g, &w.wk, &step, &a.xn, &a.k, Dest::Store));
            kernels.extend(ops::matmul(g, &w.wv, &step, &a.xn, &a.v, Dest::Store));
            kernels.push(ops::rope(g, c.n_heads, half, &step, &table, &a.q));
            kernels.push(ops::rope(g, c.n_kv_heads, half, &step, &table, &a.k));
            kernels.push(ops::kv_store(
                g, kv_dim, kv, &step, &a.k, &a.v, &k_cache, &v_cache,
            ));
            kernels.push(ops::attention(
                g, shape, kv, &step, &a.q, &k_cache, &v_cache, &a.att,
            ));
            kernels.extend(ops::matmul(g, &w.wo, &step, &a.att, &a.x, Dest::Add));
            kernels.push(ops::rms_norm(g, &ffn_norm, c.dim, eps, &step, &a.x, &a.xn));
            kernels.extend(ops::matmul(
                g,
                &w.w_gate,
                &step,
                &a.xn,
                &a.gate,
                Dest::Store,
            ));
            kernels.extend(ops::matmul(g, &w.w_up, &step, &a.xn, &a.up, Dest::Store));
            kernels.push(ops::silu_mul(g, c.ffn_dim, &step, &a.up, &a.gate));
            kernels.extend(ops::matmul(g, &w.w_down, &step, &a.gate, &a.x, Dest::Add));
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
        Ok(GpuSegment {
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
            for k in &self.layers {
                k.encode(&mut pass, &step);
            }
            if rows > 0 {
                for k in &self.output {
                    k.encode(&mut pass, &step);
                }
            }
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
        self.gpu.check_errors("running a step")
    }
}

/// Copies the start of a mapped-readable buffer into `dest`, waiting for the GPU.
pub fn read_into(gpu: &Gpu, buffer: &wgpu::Buffer, dest: &mut [f32]) -> Result<()> {
    let slice = buffer.slice(..(dest.len() * 4) as u64);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Lost(e.to_string()))?;
    rx.recv()
        .map_err(|e| GpuError::Lost(e.to_string()))?
        .map_err(|e| GpuError::Lost(e.to_string()))?;
    let view = slice
        .get_mapped_range()
        .map_err(|e| GpuError::Lost(e.to_string()))?;
    dest.copy_from_slice(bytemuck::cast_slice(&view));
    drop(view);
    buffer.unmap();
    Ok(())
}

fn upload(
    gpu: &Gpu,
    m: &crate::model::weights::Matrix,
    offload: &mut Offload,
) -> Result<GpuMatrix> {
    let g = GpuMatrix::upload(gpu, m)?;
    offload.weight_bytes += g.bytes;
    if !super::upload::has_shader(m.ty) {
        offload.via_f16.push(m.name.to_string());
    }
    Ok(g)
}

/// A layer's matrices on the GPU.
struct LayerMatrices {
    wq: GpuMatrix,
    wk: GpuMatrix,
    wv: GpuMatrix,
    wo: GpuMatrix,
    w_gate: GpuMatrix,
    w_up: GpuMatrix,
    w_down: GpuMatrix,
}

impl LayerMatrices {
    fn upload(gpu: &Gpu, l: &LayerWeights, offload: &mut Offload) -> Result<LayerMatrices> {
        Ok(LayerMatrices {
            wq: upload(gpu, &l.wq, offload)?,
            wk: upload(gpu, &l.wk, offload)?,
            wv: upload(gpu, &l.wv, offload)?,
            wo: upload(gpu, &l.wo, offload)?,
            w_gate: upload(gpu, &l.w_gate, offload)?,
            w_up: upload(gpu, &l.w_up, offload)?,
            w_down: upload(gpu, &l.w_down, offload)?,
        })
    }
}
