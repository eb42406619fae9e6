//! The Llama forward pass, top to bottom:
//!
//! ```text
//! x = embed(tokens)
//! for each layer:
//!     h = rms_norm(x) · attn_norm
//!     q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ;  rotate q and k by position (RoPE)
//!     x += attention(q, cached k, cached v) · Woᵀ
//!     h = rms_norm(x) · ffn_norm
//!     x += (silu(h·Wgateᵀ) * h·Wupᵀ) · Wdownᵀ
//! logits = rms_norm(x) · output_norm · Woutᵀ
//! ```
//!
//! Tokens go through in batches: each weight matrix is read once per batch.

use std::ops::Range;

use crate::backend::cpu::attention::{self, Tile};
use crate::backend::cpu::matmul::{matmul, matmul_many, MatmulScratch, Precision};
use crate::backend::cpu::{ops, team};
use crate::backend::wgpu::{GpuSegment, Out};
use crate::gguf::GgufFile;
use crate::sample::Next;

use super::config::{LlamaConfig, ModelError, Result};
use super::kv_cache::{CacheType, KvCache, KvView};
use super::rope::{Rope, RopeConfig};
use super::weights::LlamaWeights;

mod offload;

/// Query rows an attention tile aims for (query heads of a group times tokens).
const ATTN_TILE_ROWS: usize = 192;

/// A loaded model: its shape, its weights (borrowed from the file) and its RoPE
/// settings (the header's, with any run-time overrides applied).
pub struct Llama<'a> {
    pub config: LlamaConfig,
    pub weights: LlamaWeights<'a>,
    pub rope: RopeConfig,
}

impl<'a> Llama<'a> {
    /// The model in `file`, with the matrices the kernel path has a packed kernel for
    /// repacked.
    pub fn load(file: &'a GgufFile) -> Result<Llama<'a>> {
        Llama::load_with(file, true)
    }

    /// The model in `file`; `repack: false` multiplies every matrix in its stored layout
    /// (as llama.cpp's `--no-repack`), for comparison.
    pub fn load_with(file: &'a GgufFile, repack: bool) -> Result<Llama<'a>> {
        let config = LlamaConfig::from_metadata(file.metadata())?;
        let rope = RopeConfig::from_gguf(file, &config)?;
        let weights = LlamaWeights::load(file, &config, repack)?;
        Ok(Llama {
            config,
            weights,
            rope,
        })
    }
}

/// Which positions of a batch produce logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's: generation.
    Last,
    /// Every token's: perplexity.
    All,
}

/// Which logits a batch makes, and where they go.
#[derive(Clone, Debug)]
struct BatchOut {
    /// The batch's first token with logits.
    from: usize,
    /// Rows of `state.logits` they go to, a token each (empty: the batch makes none).
    rows: Range<usize>,
    /// For the last token of a pass: at least this many of its most likely logits will
    /// do (see [`Session::forward_next`]).
    shortlist: Option<usize>,
}

impl BatchOut {
    const NONE: BatchOut = BatchOut {
        from: 0,
        rows: 0..0,
        shortlist: None,
    };
}

/// Activations of one batch, allocated once for the largest batch.
struct RunState {
    /// `[n][dim]` the residual stream
    x: Vec<f32>,
    /// `[n][dim]` normalized input of a sub-layer
    xn: Vec<f32>,
    /// `[n][n_heads * head_dim]`
    q: Vec<f32>,
    /// `[n][kv_dim]`
    k: Vec<f32>,
    /// `[n][kv_dim]`
    v: Vec<f32>,
    /// `[n_kv_heads][n][group * head_dim]` attention output, grouped by KV head so
    /// tiles of (KV head, tokens) run in parallel
    att_by_head: Vec<f32>,
    /// the chunks of one token's attention over a long context, taken apart by threads
    att_parts: Vec<f32>,
    /// `[n][n_heads * head_dim]`
    att: Vec<f32>,
    /// `[n][dim]` output of a sub-layer, added to `x`
    delta: Vec<f32>,
    /// `[n][ffn_dim]`
    gate: Vec<f32>,
    /// `[n][ffn_dim]`
    up: Vec<f32>,
    /// `[n][n_vocab]` (one row unless every position's logits are asked for)
    logits: Vec<f32>,
    matmul: MatmulScratch,
}

impl RunState {
    fn new(c: &LlamaConfig, n_ctx: usize, n_batch: usize) -> RunState {
        let q_dim = c.n_heads * c.head_dim;
        RunState {
            x: vec![0.0; n_batch * c.dim],
            xn: vec![0.0; n_batch * c.dim],
            q: vec![0.0; n_batch * q_dim],
            k: vec![0.0; n_batch * c.kv_dim()],
            v: vec![0.0; n_batch * c.kv_dim()],
            att_by_head: vec![0.0; attention_rows(c, n_batch) * q_dim],
            att_parts: vec![0.0; attention_parts(c, n_ctx)],
            att: vec![0.0; n_batch * q_dim],
            delta: vec![0.0; n_batch * c.dim],
            gate: vec![0.0; n_batch * c.ffn_dim],
            up: vec![0.0; n_batch * c.ffn_dim],
            logits: vec![0.0; c.n_vocab],
            matmul: MatmulScratch::default(),
        }
    }
}

/// One conversation with a model: its KV cache, its position and its buffers.
pub struct Session<'m, 'a> {
    model: &'m Llama<'a>,
    rope: Rope,
    cache: KvCache,
    state: RunState,
    n_batch: usize,
    n_past: usize,
    pub precision: Precision,
    /// The last layers, when they run on a GPU; the CPU's cache then holds the others.
    gpu: Option<GpuSegment>,
    /// The tokens seen so far while layers run on a GPU: if the GPU is lost, the CPU
    /// recomputes their keys and values and the conversation goes on.
    history: Vec<u32>,
    /// On a GPU failure, go on with the CPU (else fail: `--gpu-required`).
    pub gpu_fallback: bool,
}

impl<'m, 'a> Session<'m, 'a> {
    /// A session for up to `n_ctx` positions, processing prompts `n_batch` tokens at a
    /// time, with an f32 KV cache.
    pub fn new(model: &'m Llama<'a>, n_ctx: usize, n_batch: usize) -> Session<'m, 'a> {
        Self::with_cache(model, n_ctx, n_batch, CacheType::F32)
            .expect("an f32 cache fits any head dimension")
    }

    /// Like [`Session::new`], with the KV cache stored as `cache_type`.
    pub fn with_cache(
        model: &'m Llama<'a>,
        n_ctx: usize,
        n_batch: usize,
        cache_type: CacheType,
    ) -> Result<Session<'m, 'a>> {
        let c = &model.config;
        if !cache_type.fits(c.head_dim) {
            return Err(ModelError::Invalid(format!(
                "a {cache_type} KV cache needs heads of a multiple of 32 values, not {}",
                c.head_dim
            )));
        }
        let n_batch = n_batch.clamp(1, n_ctx.max(1));
        Ok(Session {
            model,
            rope: Rope::new(model.rope.clone()),
            cache: KvCache::new(cache_type, c.cache_shape(c.n_layers, n_ctx)),
            state: RunState::new(c, n_ctx, n_batch),
            n_batch,
            n_past: 0,
            precision: Precision::Quantized,
            gpu: None,
            history: Vec::new(),
            gpu_fallback: true,
        })
    }

    pub fn n_past(&self) -> usize {
        self.n_past
    }

    pub fn n_ctx(&self) -> usize {
        self.cache.n_ctx()
    }

    pub fn n_vocab(&self) -> usize {
        self.model.config.n_vocab
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.model.config
    }

    pub fn rope(&self) -> &RopeConfig {
        self.rope.config()
    }

    pub fn cache_type(&self) -> CacheType {
        self.cache.ty()
    }

    pub fn kv_cache_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Forgets the conversation; the next token is at position 0.
    pub fn reset(&mut self) {
        self.n_past = 0;
        self.history.clear();
    }

    /// Runs `tokens` at the next positions and returns logits: `[n_vocab]` for
    /// `Logits::Last`, `[tokens.len()][n_vocab]` for `Logits::All`.
    pub fn forward(&mut self, tokens: &[u32], which: Logits) -> Result<&[f32]> {
        self.pass(tokens, which, None)?;
        Ok(&self.state.logits)
    }

    /// Runs `tokens` at the next positions and returns what the next token is chosen
    /// from: the last token's logits, or where the output layer runs on a GPU and
    /// `shortlist` is set, maybe only a shortlist of them (every logit at or above a
    /// threshold that at least `shortlist` of them reach, as the sampler's
    /// [`Sampler::shortlist`](crate::sample::Sampler::shortlist) asks) rather than the
    /// whole row.
    pub fn forward_next(&mut self, tokens: &[u32], shortlist: Option<usize>) -> Result<Next<'_>> {
        self.pass(tokens, Logits::Last, shortlist)?;
        Ok(match self.gpu.as_ref().and_then(GpuSegment::shortlist) {
            Some(list) => Next::Shortlist(list),
            None => Next::All(&mut self.state.logits),
        })
    }

    /// Steps the GPU answered with a shortlist rather than the logits.
    pub fn gpu_shortlists(&self) -> u64 {
        self.gpu.as_ref().map_or(0, GpuSegment::shortlists_served)
    }

    /// Runs `tokens` through the model, in batches, with `which` logits into
    /// `state.logits` (or a shortlist, see [`Session::forward_next`]).
    fn pass(&mut self, tokens: &[u32], which: Logits, shortlist: Option<usize>) -> Result<()> {
        self.check(tokens)?;
        let c = &self.model.config;
        let n_out = match which {
            Logits::Last => 1,
            Logits::All => tokens.len(),
        };
        self.state.logits.resize(n_out * c.n_vocab, 0.0);
        // Dynamic NTK takes its base from the whole pass, as a single forward call over
        // all the tokens would, however the pass is split into batches.
        let seq_len = self.n_past + tokens.len();
        for (b, batch) in tokens.chunks(self.n_batch).enumerate() {
            let first = b * self.n_batch;
            let out = match which {
                Logits::All => BatchOut {
                    from: 0,
                    rows: first..first + batch.len(),
                    shortlist: None,
                },
                Logits::Last if first + batch.len() == tokens.len() => BatchOut {
                    from: batch.len() - 1,
                    rows: 0..1,
                    shortlist,
                },
                Logits::Last => BatchOut::NONE,
            };
            self.run_batch(batch, out, seq_len)?;
        }
        Ok(())
    }

    /// Runs `tokens` as one pass, like `forward(tokens, Logits::All)`, but hands the
    /// logits of each batch to `on_batch(first_token_index, [batch][n_vocab])` as it
    /// goes, so scoring a long window never holds `[n][n_vocab]` logits at once.
    pub fn forward_each_batch(
        &mut self,
        tokens: &[u32],
        mut on_batch: impl FnMut(usize, &[f32]),
    ) -> Result<()> {
        self.check(tokens)?;
        let n_vocab = self.model.config.n_vocab;
        self.state.logits.resize(self.n_batch * n_vocab, 0.0);
        let seq_len = self.n_past + tokens.len();
        for (b, batch) in tokens.chunks(self.n_batch).enumerate() {
            let out = BatchOut {
                from: 0,
                rows: 0..batch.len(),
                shortlist: None,
            };
            self.run_batch(batch, out, seq_len)?;
            on_batch(
                b * self.n_batch,
                &self.state.logits[..batch.len() * n_vocab],
            );
        }
        Ok(())
    }

    fn check(&self, tokens: &[u32]) -> Result<()> {
        let c = &self.model.config;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
            return Err(ModelError::Invalid(format!(
                "token id {bad} is outside the vocabulary of {}",
                c.n_vocab
            )));
        }
        if self.n_past + tokens.len() > self.n_ctx() {
            return Err(ModelError::Invalid(format!(
                "context full: {} positions used, {} more asked for, context size {}",
                self.n_past,
                tokens.len(),
                self.n_ctx()
            )));
        }
        Ok(())
    }

    /// One batch of a pass that ends at `seq_len`, through every layer.
    fn run_batch(&mut self, batch: &[u32], out: BatchOut, seq_len: usize) -> Result<()> {
        self.rope.prepare(self.n_past, batch.len(), seq_len);
        match self.forward_batch(batch, out.clone()) {
            Err(ModelError::Gpu(e)) if self.gpu_fallback && self.gpu.is_some() => {
                self.lose_gpu(&e)?;
                self.rope.prepare(self.n_past, batch.len(), seq_len);
                self.forward_batch(batch, out)
            }
            Ok(()) if self.gpu.is_some() => {
                self.history.extend_from_slice(batch);
                Ok(())
            }
            other => other,
        }
    }

    /// One batch through every layer, making the logits `out` asks for.
    fn forward_batch(&mut self, tokens: &[u32], out: BatchOut) -> Result<()> {
        let n_cpu = self.cpu_layers();
        let Llama {
            config: c, weights, ..
        } = self.model;
        let n = tokens.len();
        let (dim, kv_dim, q_dim) = (c.dim, c.kv_dim(), c.n_heads * c.head_dim);
        let pos0 = self.n_past;
        let s = &mut self.state;
        let p = self.precision;

        for (t, &token) in tokens.iter().enumerate() {
            weights
                .token_embd
                .dequantize_row(token as usize, &mut s.x[t * dim..(t + 1) * dim]);
        }
        let x = &mut s.x[..n * dim];
        let xn = &mut s.xn[..n * dim];
        let delta = &mut s.delta[..n * dim];
        let q = &mut s.q[..n * q_dim];
        let k = &mut s.k[..n * kv_dim];
        let v = &mut s.v[..n * kv_dim];
        let att = &mut s.att[..n * q_dim];
        let gate = &mut s.gate[..n * c.ffn_dim];
        let up = &mut s.up[..n * c.ffn_dim];

        for (l, layer) in weights.layers[..n_cpu].iter().enumerate() {
            // Attention.
            for (o, i) in xn.chunks_mut(dim).zip(x.chunks(dim)) {
                ops::rms_norm(o, i, &layer.attn_norm, c.rms_eps);
            }
            // One pass over the shared input: quantized once, rows of all three in parallel.
            matmul_many(
                &[&layer.wq, &layer.wk, &layer.wv],
                xn,
                &mut [&mut *q, &mut *k, &mut *v],
                &mut s.matmul,
                p,
            );
            for t in 0..n {
                self.rope.apply(&mut q[t * q_dim..(t + 1) * q_dim], t);
                self.rope.apply(&mut k[t * kv_dim..(t + 1) * kv_dim], t);
            }
            self.cache.store(l, pos0, k, v);
            let kv = self.cache.layer(l, pos0 + n);
            let scratch = (&mut s.att_by_head[..], &mut s.att_parts[..]);
            attention(c, q, &kv, pos0, att, scratch);
            matmul(&layer.wo, att, delta, &mut s.matmul, p);
            ops::add_assign(x, delta);

            // Feed-forward.
            for (o, i) in xn.chunks_mut(dim).zip(x.chunks(dim)) {
                ops::rms_norm(o, i, &layer.ffn_norm, c.rms_eps);
            }
            matmul_many(
                &[&layer.w_gate, &layer.w_up],
                xn,
                &mut [&mut *gate, &mut *up],
                &mut s.matmul,
                p,
            );
            ops::silu_mul(gate, up);
            matmul(&layer.w_down, gate, delta, &mut s.matmul, p);
            ops::add_assign(x, delta);
        }
        let (from, rows) = (out.from, out.rows.len());
        let logits = &mut s.logits[out.rows.start * c.n_vocab..out.rows.end * c.n_vocab];
        // The GPU's layers come last; with the output layer there, its logits are done.
        let logits_done = match &mut self.gpu {
            Some(segment) => {
                let wanted = match (rows, out.shortlist) {
                    (0, _) => Out::Nothing,
                    (_, Some(k)) => Out::Shortlist { token: from, k },
                    (_, None) => Out::Rows { first: from, rows },
                };
                segment.step(x, pos0, self.rope.rows(n), wanted, logits)?;
                segment.offload.output
            }
            None => false,
        };
        self.n_past += n;
        if logits_done || rows == 0 {
            return Ok(());
        }
        for (o, i) in xn
            .chunks_mut(dim)
            .zip(x[from * dim..].chunks(dim))
            .take(rows)
        {
            ops::rms_norm(o, i, &weights.output_norm, c.rms_eps);
        }
        matmul(&weights.output, &xn[..rows * dim], logits, &mut s.matmul, p);
        Ok(())
    }
}

/// Tokens per attention tile of a batch: the query heads of a KV group times these make
/// about [`ATTN_TILE_ROWS`] rows.
fn attention_run(c: &LlamaConfig) -> usize {
    (ATTN_TILE_ROWS / (c.n_heads / c.n_kv_heads)).max(1)
}

/// Token rows of the per-group attention scratch for a batch of `n`: whole runs, so no
/// tile crosses from one KV group into the next.
fn attention_rows(c: &LlamaConfig, n: usize) -> usize {
    n.div_ceil(attention_run(c)) * attention_run(c)
}

/// Floats of the parts of one token's attention over `n_ctx` positions: every query
/// head's part of every chunk.
fn attention_parts(c: &LlamaConfig, n_ctx: usize) -> usize {
    n_ctx.div_ceil(attention::CHUNK) * attention::part_len(c.n_heads, c.head_dim)
}

/// Causal attention of a batch's `n` tokens (`q` is `[n][n_heads * head_dim]`) over the
/// cached positions `0..pos0 + n`, into `att` (same shape); `by_group` is scratch of
/// [`attention_rows`] token rows, `parts` of [`attention_parts`] floats.
fn attention(
    c: &LlamaConfig,
    q: &[f32],
    kv: &KvView,
    pos0: usize,
    att: &mut [f32],
    (by_group, parts): (&mut [f32], &mut [f32]),
) {
    let (group, hd) = (c.n_heads / c.n_kv_heads, c.head_dim);
    let q_dim = c.n_heads * hd;
    let n = q.len() / q_dim;
    if n == 1 {
        // One token: a tile per KV head decodes each cached row once for its query
        // heads, if that leaves every thread a tile (counting the chunks of a long
        // context, which threads take apart); else query heads go alone. A tile's rows
        // have the arithmetic of any other tile, so a token's attention has the same
        // bits however the tokens were batched.
        let chunks = (pos0 + 1).div_ceil(attention::CHUNK);
        let rows = if c.n_kv_heads * chunks >= rayon::current_num_threads() {
            group
        } else {
            1
        };
        let tile = |i: usize| Tile {
            head_dim: hd,
            group: rows,
            kv_head: i * rows / group,
            first_seen: pos0 + 1,
            q_stride: q_dim,
        };
        let q_of = |i: usize| &q[i * rows * hd..][..rows * hd];
        if chunks == 1 {
            team::for_each_chunk_mut(att, rows * hd, &|i, out| {
                attention::attend(out, q_of(i), kv, &tile(i))
            });
            return;
        }
        let len = attention::part_len(rows, hd);
        let parts = &mut parts[..c.n_heads / rows * chunks * len];
        team::for_each_chunk_mut(parts, len, &|i, part| {
            let (t, chunk) = (i / chunks, i % chunks);
            attention::attend_chunk(part, q_of(t), kv, &tile(t), chunk)
        });
        let parts = &*parts;
        team::for_each_chunk_mut(att, rows * hd, &|t, out| {
            attention::merge_parts(out, &parts[t * chunks * len..][..chunks * len], hd)
        });
        return;
    }
    // Tiles of (KV head, run of tokens) share each decoded block of keys and values.
    let width = group * hd;
    let tokens = attention_run(c);
    let padded = attention_rows(c, n);
    let runs = padded / tokens;
    let by_group = &mut by_group[..padded * q_dim];
    team::for_each_chunk_mut(by_group, tokens * width, &|i, out| {
        let (g, t0) = (i / runs, i % runs * tokens);
        let tile = Tile {
            head_dim: hd,
            group,
            kv_head: g,
            // Causal: token t sees positions 0..=pos0 + t.
            first_seen: pos0 + t0 + 1,
            q_stride: q_dim,
        };
        let rows = tokens.min(n - t0);
        attention::attend(
            &mut out[..rows * width],
            &q[t0 * q_dim + g * width..],
            kv,
            &tile,
        );
    });
    for g in 0..c.n_kv_heads {
        for t in 0..n {
            att[t * q_dim + g * width..][..width]
                .copy_from_slice(&by_group[(g * padded + t) * width..][..width]);
        }
    }
}
