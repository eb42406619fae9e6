//! A layer's matrices on the GPU, with the products that share an input stacked.

use crate::model::weights::{LayerWeights, Matrix};

use super::ops::{self, Dest, Input, Kernel};
use super::segment::Offload;
use super::upload::{storage_init, GpuMatrix};
use super::{Gpu, Result};

/// `m` on the GPU, counted in `offload`.
pub(super) fn upload(gpu: &Gpu, m: &Matrix, offload: &mut Offload) -> Result<GpuMatrix> {
    let g = GpuMatrix::upload(gpu, m)?;
    count(offload, &g, &[m]);
    Ok(g)
}

/// Adds `g`, made from `parts`, to what `offload` reports.
fn count(offload: &mut Offload, g: &GpuMatrix, parts: &[&Matrix]) {
    offload.weight_bytes += g.bytes;
    if !super::upload::has_shader(parts[0].ty) {
        offload
            .via_f16
            .extend(parts.iter().map(|p| p.name.to_string()));
    }
}

/// Matrices that read one input and fill one output side by side (q, k and v; gate and
/// up): stacked into one matrix when their types agree, so one product serves them all,
/// else kept apart.
pub(super) enum Stack {
    One(GpuMatrix),
    Apart(Vec<GpuMatrix>),
}

impl Stack {
    pub(super) fn upload(
        gpu: &Gpu,
        name: &str,
        parts: &[&Matrix],
        offload: &mut Offload,
    ) -> Result<Stack> {
        match GpuMatrix::upload_stacked(gpu, name, parts)? {
            Some(m) => {
                count(offload, &m, parts);
                Ok(Stack::One(m))
            }
            None => Ok(Stack::Apart(
                parts
                    .iter()
                    .map(|m| upload(gpu, m, offload))
                    .collect::<Result<_>>()?,
            )),
        }
    }

    /// The products of `act` into `out`, whose rows hold every part's outputs in turn.
    pub(super) fn kernels(
        &self,
        gpu: &Gpu,
        step: &wgpu::Buffer,
        act: Input,
        out: &wgpu::Buffer,
    ) -> Vec<Kernel> {
        match self {
            Stack::One(m) => ops::matmul(gpu, m, step, act, out, Dest::Store),
            Stack::Apart(parts) => {
                let width = parts.iter().map(|m| m.rows).sum();
                let mut offset = 0;
                let mut kernels = Vec::new();
                for m in parts {
                    let into = (out, offset, width);
                    kernels.extend(ops::matmul_into(gpu, m, step, act, into, Dest::Store));
                    offset += m.rows;
                }
                kernels
            }
        }
    }
}

impl Stack {
    /// The stacked matrix, if the parts could be stacked.
    pub(super) fn one(&self) -> Option<&GpuMatrix> {
        match self {
            Stack::One(m) => Some(m),
            Stack::Apart(_) => None,
        }
    }

    /// The matrices, stacked or apart.
    pub(super) fn parts(&self) -> Vec<&GpuMatrix> {
        match self {
            Stack::One(m) => vec![m],
            Stack::Apart(parts) => parts.iter().collect(),
        }
    }
}

/// Bytes of the buffer that holds a layer's `kv_bytes` of cached keys (or values): whole
/// vectors of 16 bytes.
pub(super) fn kv_buffer_bytes(kv_bytes: u64) -> u64 {
    kv_bytes.next_multiple_of(16)
}

/// A layer on the GPU: its matrices, its norms' weights and its KV cache.
pub(super) struct GpuLayer {
    pub m: LayerMatrices,
    pub attn_norm: wgpu::Buffer,
    pub ffn_norm: wgpu::Buffer,
    pub k_cache: wgpu::Buffer,
    pub v_cache: wgpu::Buffer,
}

impl GpuLayer {
    /// Uploads `l`, with room for a KV cache of `kv_bytes` for keys and as much for
    /// values.
    pub(super) fn upload(
        gpu: &Gpu,
        l: &LayerWeights,
        kv_bytes: u64,
        offload: &mut Offload,
    ) -> Result<GpuLayer> {
        let m = LayerMatrices::upload(gpu, l, offload)?;
        let norm = |v: &[f32]| storage_init(gpu, "norm", bytemuck::cast_slice(v));
        let (k_cache, v_cache) = gpu.checked("allocating the KV cache", || {
            let cache = |label| {
                gpu.buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: kv_buffer_bytes(kv_bytes),
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                })
            };
            (cache("k cache"), cache("v cache"))
        })?;
        offload.kv_bytes += 2 * kv_bytes;
        Ok(GpuLayer {
            m,
            attn_norm: norm(&l.attn_norm),
            ffn_norm: norm(&l.ffn_norm),
            k_cache,
            v_cache,
        })
    }
}

/// A layer's matrices on the GPU.
pub(super) struct LayerMatrices {
    /// `[q_dim + 2 · kv_dim][dim]`
    pub qkv: Stack,
    pub wo: GpuMatrix,
    /// `[2 · ffn_dim][dim]`
    pub gate_up: Stack,
    pub w_down: GpuMatrix,
}

impl LayerMatrices {
    pub(super) fn upload(
        gpu: &Gpu,
        l: &LayerWeights,
        offload: &mut Offload,
    ) -> Result<LayerMatrices> {
        Ok(LayerMatrices {
            qkv: Stack::upload(gpu, "attn_qkv", &[&l.wq, &l.wk, &l.wv], offload)?,
            wo: upload(gpu, &l.wo, offload)?,
            gate_up: Stack::upload(gpu, "ffn_gate_up", &[&l.w_gate, &l.w_up], offload)?,
            w_down: upload(gpu, &l.w_down, offload)?,
        })
    }
}
