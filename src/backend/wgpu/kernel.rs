//! What every op is made of: a [`Kernel`] (a pipeline, its bound buffers and how many
//! workgroups a step needs), the step's uniform, and the buffers and one-op runs the
//! tests and benchmarks use.

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::ops::PositionSplit;
use super::pipelines::Pipeline;
use super::{Gpu, GpuError, Result};

/// At most this many workgroups along one dimension of a dispatch.
pub(super) const MAX_GROUPS: u32 = 65535;

/// The step's shape, as every shader reads it (binding 1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Step {
    pub n_tokens: u32,
    pub pos0: u32,
    /// The first token whose logits are wanted, and how many.
    pub out_first: u32,
    pub n_out: u32,
    /// 0: the logits of the output tokens come back; k > 0: a shortlist of at least the
    /// k most likely of the one output token's (see [`shortlist`](super::shortlist)).
    pub shortlist: u32,
    pub pad: [u32; 3],
}

/// How many workgroups a kernel needs for a step.
#[derive(Clone, Copy, Debug)]
pub(super) enum Grid {
    /// Groups of rows of a matrix (folded onto x and y), by runs of `tok` tokens along z;
    /// `out_rows`: over the step's output tokens rather than all of them.
    Rows {
        x: u32,
        y: u32,
        tok: u32,
        out_rows: bool,
    },
    /// One workgroup per token.
    PerToken,
    /// One workgroup per (head, token).
    PerHead { heads: u32 },
    /// For one token: one workgroup per (head, part of the cached positions).
    PerHeadPart(PartedHeads),
    /// For one token whose positions were split: one workgroup per head, which merges
    /// its parts; none where there is one part, or several tokens.
    PerHeadMerge(PartedHeads),
    /// One invocation per `per_token` items of each token, 64 to a workgroup.
    Items { per_token: u32 },
    /// The same workgroups whatever the step.
    Fixed { x: u32, y: u32 },
    /// `x` workgroups in a step that asks for a shortlist, none in any other.
    Shortlist { x: u32 },
}

/// The query heads of one token's attention, with how their positions split.
#[derive(Clone, Copy, Debug)]
pub(super) struct PartedHeads {
    pub heads: u32,
    pub head_dim: u32,
    pub split: PositionSplit,
}

impl PartedHeads {
    /// Each head's parts in `step` (whose one token sees the positions before its own).
    fn parts(&self, step: &Step) -> u32 {
        self.split.parts(step.pos0, self.head_dim)
    }
}

impl Grid {
    /// The tokens a step hands this kernel.
    fn count(&self, step: &Step) -> u32 {
        match self {
            Grid::Rows { out_rows: true, .. } => step.n_out,
            _ => step.n_tokens,
        }
    }

    fn groups(&self, step: &Step) -> (u32, u32, u32) {
        let n = self.count(step);
        match *self {
            Grid::Rows { x, y, tok, .. } => (x, y, n.div_ceil(tok)),
            Grid::PerToken => (n, 1, 1),
            Grid::Fixed { x, y } => (x, y, 1),
            Grid::Shortlist { x } => (if step.shortlist > 0 { x } else { 0 }, 1, 1),
            Grid::PerHead { heads } => (heads, n, 1),
            Grid::PerHeadPart(h) => (if n == 1 { h.heads } else { 0 }, h.parts(step), 1),
            Grid::PerHeadMerge(h) => {
                let merges = n == 1 && h.parts(step) > 1;
                (if merges { h.heads } else { 0 }, 1, 1)
            }
            Grid::Items { per_token } => {
                let groups = (n * per_token).div_ceil(64);
                let x = groups.min(MAX_GROUPS);
                (x, groups.div_ceil(x.max(1)), 1)
            }
        }
    }
}

/// A pipeline with its bound buffers and the shape of its dispatch.
pub(super) struct Variant {
    pipeline: Arc<Pipeline>,
    bind_group: wgpu::BindGroup,
    grid: Grid,
}

impl Variant {
    /// A variant binding `params` at 0 and `buffers` from 1 on.
    pub(super) fn new(
        gpu: &Gpu,
        pipeline: Arc<Pipeline>,
        params: &Params,
        buffers: &[&wgpu::Buffer],
        grid: Grid,
    ) -> Variant {
        let rest = buffers.iter().map(|b| b.as_entire_binding());
        let entries: Vec<_> = std::iter::once(params.binding())
            .chain(rest)
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource,
            })
            .collect();
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.layout,
            entries: &entries,
        });
        Variant {
            pipeline,
            bind_group,
            grid,
        }
    }
}

/// Which variant of a kernel a step runs, by its number of tokens.
pub(super) enum Variants {
    /// The same for every step.
    Same(Variant),
    /// One for a single token, another for several (a matrix product: a matrix-vector
    /// product, or a tiled one).
    ByTokens { one: Variant, many: Variant },
    /// Nothing for a single token, where another kernel does this one's work (RoPE and
    /// the cache write, in the attention); this for several.
    BatchesOnly(Variant),
}

impl Variants {
    /// The variant for a step of `n` tokens, if any.
    fn for_tokens(&self, n: u32) -> Option<&Variant> {
        match self {
            Variants::Same(v) => Some(v),
            Variants::ByTokens { one, .. } if n <= 1 => Some(one),
            Variants::ByTokens { many, .. } => Some(many),
            Variants::BatchesOnly(v) => (n > 1).then_some(v),
        }
    }

    /// The variant of `Same` or `BatchesOnly`, or the one of several tokens.
    pub(super) fn into_any(self) -> Variant {
        match self {
            Variants::Same(v) | Variants::BatchesOnly(v) | Variants::ByTokens { many: v, .. } => v,
        }
    }

    /// Any variant: they all take the same tokens of a step.
    fn any(&self) -> &Variant {
        match self {
            Variants::Same(v) | Variants::BatchesOnly(v) => v,
            Variants::ByTokens { one, .. } => one,
        }
    }
}

/// A dispatch ready to encode, in the variants steps of different sizes take.
pub struct Kernel {
    pub(super) variants: Variants,
    /// What the profiler calls it: the shader, and the type and shape of a matrix.
    pub label: String,
}

impl Kernel {
    pub(super) fn new(variants: Variants) -> Kernel {
        Kernel {
            label: variants.any().pipeline.name.clone(),
            variants,
        }
    }

    /// The workgroups a step of `step`'s shape dispatches, and with what; `None` when this
    /// kernel has nothing to do in such a step.
    fn dispatch(&self, step: &Step) -> Option<(&Variant, (u32, u32, u32))> {
        let n = self.variants.any().grid.count(step);
        let v = self.variants.for_tokens(n)?;
        let groups = v.grid.groups(step);
        (groups.0 * groups.1 * groups.2 > 0).then_some((v, groups))
    }

    /// Whether a step of `step`'s shape dispatches this kernel.
    pub fn runs(&self, step: &Step) -> bool {
        self.dispatch(step).is_some()
    }

    /// Records the kernel for `step`.
    pub fn encode(&self, pass: &mut wgpu::ComputePass, step: &Step) {
        if let Some((v, groups)) = self.dispatch(step) {
            pass.set_pipeline(&v.pipeline.pipeline);
            pass.set_bind_group(0, &v.bind_group, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        }
    }
}

/// A kernel's parameters: 32-bit fields, padded to 16 bytes, at `offset` in one of the
/// buffers that [`Uniforms`] packs them into.
pub(super) struct Params {
    buffer: wgpu::Buffer,
    offset: u64,
    size: u64,
}

impl Params {
    fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            size: wgpu::BufferSize::new(self.size),
        })
    }
}

/// Bytes of each buffer the parameters are packed into: 256 kernels' at the usual
/// alignment of 256.
const PARAMS_BUFFER: u64 = 64 << 10;

/// The kernels' parameters, packed into shared buffers at the adapter's uniform offset
/// alignment. A buffer each would be hundreds of buffers of 16 or 32 bytes (a 7B model's
/// kernels have about 400), each of which a step's submission tracks.
pub(super) struct Uniforms {
    align: u64,
    /// The buffer being filled, and where its free space starts.
    filling: Mutex<Option<(wgpu::Buffer, u64)>>,
}

impl Uniforms {
    pub(super) fn new(align: u32) -> Uniforms {
        Uniforms {
            align: u64::from(align).max(16),
            filling: Mutex::new(None),
        }
    }
}

/// Stores a kernel's parameters (not counted in `bytes_created`: a few bytes a kernel).
pub(super) fn params(gpu: &Gpu, fields: &[u32]) -> Params {
    let mut words = fields.to_vec();
    words.resize(words.len().next_multiple_of(4), 0);
    let size = (words.len() * 4) as u64;
    let mut filling = gpu
        .uniforms
        .filling
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let (buffer, free) = match filling.take() {
        Some((buffer, free)) if free + size <= PARAMS_BUFFER => (buffer, free),
        _ => {
            let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("params"),
                size: PARAMS_BUFFER,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            (buffer, 0)
        }
    };
    gpu.queue
        .write_buffer(&buffer, free, bytemuck::cast_slice(&words));
    let next = (free + size).next_multiple_of(gpu.uniforms.align);
    *filling = Some((buffer.clone(), next));
    Params {
        buffer,
        offset: free,
        size,
    }
}

/// The step's uniform, written before each step.
pub fn step_buffer(gpu: &Gpu) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("step"),
        size: std::mem::size_of::<Step>() as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Bytes of a storage buffer of `floats` f32 values, as [`activations`] makes it.
pub fn activation_bytes(floats: usize) -> u64 {
    (floats.max(1) * 4).next_multiple_of(16) as u64
}

/// A storage buffer of `floats` f32 values (at least one).
pub fn activations(gpu: &Gpu, label: &str, floats: usize) -> wgpu::Buffer {
    gpu.buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: activation_bytes(floats),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

/// A storage buffer holding `values`.
pub fn upload_f32(gpu: &Gpu, label: &str, values: &[f32]) -> wgpu::Buffer {
    gpu.buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(values),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
    })
}

/// Runs `kernels` for `step` in one submission (what a segment does, for one op).
pub fn run(gpu: &Gpu, kernels: &[Kernel], step_buffer: &wgpu::Buffer, step: &Step) {
    gpu.queue
        .write_buffer(step_buffer, 0, bytemuck::bytes_of(step));
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for k in kernels {
            k.encode(&mut pass, step);
        }
    }
    gpu.queue.submit([encoder.finish()]);
}

/// The first `n` f32 values of a storage buffer (made with COPY_SRC).
pub fn read(gpu: &Gpu, buffer: &wgpu::Buffer, n: usize) -> Result<Vec<f32>> {
    let staging = gpu.buffer(&wgpu::BufferDescriptor {
        label: Some("read"),
        size: (n * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, (n * 4) as u64);
    gpu.queue.submit([encoder.finish()]);
    let mut out = vec![0.0; n];
    read_into(gpu, &staging, &mut out)?;
    Ok(out)
}

/// Copies the start of a mapped-readable buffer into `dest`, waiting for the GPU.
pub fn read_into<T: bytemuck::Pod>(gpu: &Gpu, buffer: &wgpu::Buffer, dest: &mut [T]) -> Result<()> {
    let slice = buffer.slice(..std::mem::size_of_val(dest) as u64);
    let (tx, rx) = mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    wait_for(gpu, &rx)?.map_err(|e| GpuError::Lost(e.to_string()))?;
    let view = slice
        .get_mapped_range()
        .map_err(|e| GpuError::Lost(e.to_string()))?;
    dest.copy_from_slice(bytemuck::cast_slice(&view));
    drop(view);
    buffer.unmap();
    Ok(())
}

/// How long a wait for a real GPU polls the device before it blocks ([`Gpu::poll_for`]).
/// On the H200 the driver's wait woke about 0.2 ms after a 7B step of 2.5 ms had ended:
/// polling made 364 t/s 397 (docs/BENCHMARKS.md, "Waiting for a step"). A step longer
/// than this loses little to the wake-up, and does not keep a core busy for long.
pub const POLL_FOR: Duration = Duration::from_millis(10);

/// What the device sends on `rx` once the work submitted before it is done (a mapping's
/// callback, which a poll of the device runs): polling for up to [`Gpu::poll_for`], then
/// blocking.
pub(super) fn wait_for<T>(gpu: &Gpu, rx: &mpsc::Receiver<T>) -> Result<T> {
    let lost = |e: &dyn std::fmt::Display| GpuError::Lost(e.to_string());
    let start = Instant::now();
    while start.elapsed() < gpu.poll_for {
        gpu.device
            .poll(wgpu::PollType::Poll)
            .map_err(|e| lost(&e))?;
        if let Ok(sent) = rx.try_recv() {
            return Ok(sent);
        }
        std::hint::spin_loop();
    }
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| lost(&e))?;
    rx.recv().map_err(|e| lost(&e))
}
