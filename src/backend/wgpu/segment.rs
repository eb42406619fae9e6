//! The offloaded part of a model: the last layers (and the output layer, when asked),
//! their weights and KV cache on the GPU, the activations they pass along, and the one
//! command submission that runs them for a step.

use std::sync::Arc;
use std::time::Instant;

use crate::backend::cpu::matmul::Precision;
use crate::model::{Llama, LlamaConfig};

use super::fold;
use super::kernel::read_into;
use super::layer::{upload, GpuLayer, Stack};
use super::ops::{
    self, AttnShape, Dest, Folded, GluOut, Input, Kernel, KvType, NormOut, Q8Rows, Step,
};
use super::profile::{self, HostTimes, Profiler};
use super::shortlist::{self, Lists};
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
    /// The next step's commands, recorded ahead for a step of this shape.
    ahead: Option<(Step, wgpu::CommandBuffer)>,
    /// When the last step of one token returned (for the profiler's gap between steps).
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

fn attn_shape(c: &LlamaConfig) -> AttnShape {
    AttnShape {
        n_heads: c.n_heads,
        n_kv_heads: c.n_kv_heads,
        head_dim: c.head_dim,
    }
}

/// The buffers a layer's kernels pass between them, `[n_batch][width]` each.
pub(super) struct Activations {
    x: wgpu::Buffer,
    xn: wgpu::Buffer,
    /// `[n_batch][q | k | v]`
    qkv: wgpu::Buffer,
    att: wgpu::Buffer,
    /// `[n_batch][gate | up]`
    gate_up: wgpu::Buffer,
    hidden: wgpu::Buffer,
    /// 8-bit copies of the matrix products' inputs, on the quantized path.
    q8: Option<[Q8Rows; 3]>,
}

impl Activations {
    fn new(g: &Gpu, c: &LlamaConfig, n_batch: usize, precision: Precision) -> Activations {
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
    fn inputs(&self) -> [Input<'_>; 3] {
        let q8 = |i: usize| self.q8.as_ref().map(|q| &q[i]);
        [(&self.xn, q8(0)), (&self.att, q8(1)), (&self.hidden, q8(2))].map(|(f32, q8)| Input {
            f32,
            q8,
            folded: None,
        })
    }
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

    /// Runs a step of `x.len() / dim` tokens at positions `pos0..` through the segment.
    /// `cos` and `sin` are the positions' RoPE rows. With `out` naming tokens, their
    /// logits go to `logits` when the output layer is here (a pass of it for each
    /// `logit_rows` of them), else their residual rows come back into `x`; or, for a
    /// shortlist, it comes back to [`GpuSegment::shortlist`], or where it would not do,
    /// the token's logits to `logits`.
    pub fn step(
        &mut self,
        x: &mut [f32],
        pos0: usize,
        rope: (&[f32], &[f32]),
        out: Out,
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
        if let Some(lists) = &mut self.lists {
            lists.clear();
        }
        let (first, rows, k) = match out {
            Out::Nothing => (0, 0, 0),
            Out::Rows { first, rows } => (first, rows, 0),
            Out::Shortlist { token, k } => match &self.lists {
                Some(lists) if lists.take(k) => (token, 1, k),
                _ => (token, 1, 0),
            },
        };
        let first_pass = match self.logits {
            Some(_) => rows.min(self.logit_rows),
            None => rows,
        };
        let step = Step {
            n_tokens: n as u32,
            pos0: pos0 as u32,
            out_first: first as u32,
            n_out: first_pass as u32,
            shortlist: k as u32,
            pad: [0; 3],
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

        let shape = self.shape(step);
        let commands = match self.ahead.take() {
            Some((s, commands)) if s == shape => commands,
            _ => self.encode(&shape),
        };
        let submitting = Instant::now();
        queue.submit([commands]);
        let recording = Instant::now();
        self.gpu.check_errors("running a step")?;
        // While the GPU works, record the next step, taking it to be as many tokens
        // again (as the steps of generation are): recording ~400 dispatches costs about
        // a millisecond of CPU time, which would otherwise come before each step's start.
        let next = self.shape(Step {
            pos0: step.pos0 + step.n_tokens,
            ..step
        });
        self.ahead = Some((next, self.encode(&next)));
        let waiting = Instant::now();
        self.bring_back(x, logits, (&step, &shape), rows)?;
        let returned = std::mem::take(&mut self.returned);
        if self.profiler.is_some() {
            let one_token = step.n_tokens == 1;
            if one_token {
                self.returned = Some(Instant::now());
            }
            let host = HostTimes {
                submit: recording - submitting,
                record: waiting - recording,
                wait: waiting.elapsed(),
                between: returned.filter(|_| one_token).map(|r| submitting - r),
            };
            let kernels = self.layers.iter().chain(&self.output);
            let ran: Vec<bool> = kernels.map(|k| self.dispatches(k, &shape)).collect();
            if let Some(p) = &mut self.profiler {
                p.collect(&self.gpu, ran.into_iter(), host);
            }
        }
        self.gpu.check_errors("running a step")
    }

    /// Reads back what a step of `shape` (`step` as it ran) brings back: the list, or
    /// `rows` rows of logits into `logits` (running the output layer again for those
    /// past the first pass) or of the residual stream into `x`.
    fn bring_back(
        &mut self,
        x: &mut [f32],
        logits: &mut [f32],
        (step, shape): (&Step, &Step),
        rows: usize,
    ) -> Result<()> {
        if let Some(lists) = self.lists.as_mut().filter(|_| shape.shortlist > 0) {
            if lists.read(&self.gpu)? {
                return Ok(());
            }
            // The list would not do: the token's logits come back after all.
            let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
            self.copy_back(
                &mut encoder,
                &Step {
                    shortlist: 0,
                    ..*shape
                },
            );
            self.gpu.queue.submit([encoder.finish()]);
        }
        let Some((_, offset, floats)) = self.readback(shape) else {
            return Ok(());
        };
        let dest = match self.logits {
            Some(_) => &mut logits[..floats],
            None => &mut x[offset..offset + floats],
        };
        read_into(&self.gpu, &self.readback, dest)?;
        let (first, mut done) = (step.out_first as usize, step.n_out as usize);
        while done < rows {
            let pass = (rows - done).min(self.logit_rows);
            let more = Step {
                out_first: (first + done) as u32,
                n_out: pass as u32,
                ..*step
            };
            self.gpu
                .queue
                .write_buffer(&self.step, 0, bytemuck::bytes_of(&more));
            self.gpu.queue.submit([self.encode_output(&more)]);
            let dest = &mut logits[done * self.n_vocab..(done + pass) * self.n_vocab];
            read_into(&self.gpu, &self.readback, dest)?;
            done += pass;
        }
        Ok(())
    }

    /// What decides a step's commands: the step, with its position replaced by the first
    /// one at which one token's attention has as many parts, or by 0 for a batch, and its
    /// shortlist's length by whether it has one (the kernels read both from the step's
    /// uniform). Steps of one shape run the same commands.
    fn shape(&self, step: Step) -> Step {
        let pos0 = match step.n_tokens {
            1 => {
                let split = self.gpu.attention_split;
                split.first_with_parts(step.pos0, self.head_dim as u32)
            }
            _ => 0,
        };
        Step {
            pos0,
            shortlist: u32::from(step.shortlist > 0),
            ..step
        }
    }

    /// The last step's shortlist of its token's logits, if it asked for one and the
    /// list did: every logit at or above a threshold that at least k of them reach
    /// (so every one tied with the k-th most likely), as `(id, logit)` in no order, NaN
    /// and -inf never among them.
    pub fn shortlist(&self) -> Option<&[(u32, f32)]> {
        self.lists.as_ref()?.last()
    }

    /// Steps that brought a shortlist back rather than the logits.
    pub fn shortlists_served(&self) -> u64 {
        self.lists.as_ref().map_or(0, |l| l.served)
    }

    /// Makes the next step's shortlist count as overflowed, so that the step reads the
    /// row instead: what that fallback is tested with.
    pub fn spoil_next_shortlist(&mut self) {
        if let Some(lists) = &mut self.lists {
            lists.spoil_next = true;
        }
    }

    /// Whether a step of `shape` dispatches `k`: it has work in such a step and was not
    /// left out.
    fn dispatches(&self, k: &Kernel, shape: &Step) -> bool {
        k.runs(shape) && !self.skip.iter().any(|s| k.label.starts_with(s.as_str()))
    }

    /// What comes back after a step of `shape`: the buffer, the offset and the floats.
    fn readback(&self, shape: &Step) -> Option<(&wgpu::Buffer, usize, usize)> {
        let rows = shape.n_out as usize;
        match (&self.logits, rows) {
            (_, 0) => None,
            (Some(logits), _) => Some((logits, 0, rows * self.n_vocab)),
            (None, _) => Some((
                &self.x,
                shape.out_first as usize * self.dim,
                rows * self.dim,
            )),
        }
    }

    /// Records the copy of what comes back after a step of `shape`, if anything does.
    fn copy_back(&self, encoder: &mut wgpu::CommandEncoder, shape: &Step) {
        if let Some(lists) = self.lists.as_ref().filter(|_| shape.shortlist > 0) {
            lists.copy_back(encoder);
        } else if let Some((src, offset, floats)) = self.readback(shape) {
            let bytes = (floats * 4) as u64;
            encoder.copy_buffer_to_buffer(src, (offset * 4) as u64, &self.readback, 0, bytes);
        }
    }

    /// Records the output layer alone for `shape`'s rows, and their copy back: the
    /// further passes of a step that wants more than [`logit_rows`] logits.
    fn encode_output(&self, shape: &Step) -> wgpu::CommandBuffer {
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for k in self.output.iter().filter(|k| self.dispatches(k, shape)) {
                k.encode(&mut pass, shape);
            }
        }
        self.copy_back(&mut encoder, shape);
        encoder.finish()
    }

    /// Records a step of `shape` (see [`GpuSegment::shape`]): every kernel in one pass,
    /// then the copy of what comes back.
    fn encode(&self, shape: &Step) -> wgpu::CommandBuffer {
        let rows = shape.n_out;
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        let profiler = self.profiler.as_ref().filter(|_| rows > 0);
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            if let Some(p) = profiler {
                p.mark(&mut pass, 0);
            }
            let output = if rows > 0 { &self.output[..] } else { &[] };
            for (i, k) in self.layers.iter().chain(output).enumerate() {
                if self.dispatches(k, shape) {
                    k.encode(&mut pass, shape);
                }
                if let Some(p) = profiler {
                    p.mark(&mut pass, i + 1);
                }
            }
        }
        if let Some(p) = profiler {
            p.resolve(&mut encoder);
        }
        self.copy_back(&mut encoder, shape);
        encoder.finish()
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
