//! The session's layers on a GPU: moving them there, and going on with the CPU when the
//! GPU is lost mid-run.

use std::sync::Arc;

use crate::backend::wgpu::{
    self as gpu, Footprint, Gpu, GpuError, GpuSegment, Offload, SegmentSpec,
};
use crate::model::kv_cache::{CacheType, KvCache};

use super::{BatchOut, Result, Session};

impl Session<'_, '_> {
    /// Moves the last `n_gpu_layers` layers to `gpu`, with llama.cpp's meaning of
    /// `--gpu-layers`: the output layer goes too once `n_gpu_layers` exceeds the layer
    /// count. Their KV cache moves with them (f32 if the session's is f32, else f16), and
    /// their products keep the session's precision.
    /// Starts the conversation afresh; `progress(done, total)` follows the upload.
    pub fn offload(
        &mut self,
        gpu: Arc<Gpu>,
        n_gpu_layers: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> gpu::Result<Option<Offload>> {
        let c = &self.model.config;
        self.gpu = None;
        self.n_past = 0;
        if n_gpu_layers.min(c.n_layers) == 0 {
            return Ok(None);
        }
        let spec = self.segment_spec(n_gpu_layers);
        let segment = GpuSegment::new(gpu, self.model, spec, progress)?;
        let first = spec.first_layer;
        self.cache = KvCache::new(self.cache.ty(), c.cache_shape(first, spec.n_ctx));
        let offload = segment.offload.clone();
        self.gpu = Some(segment);
        Ok(Some(offload))
    }

    /// What offloading each number of layers would take of a GPU's memory, with this
    /// session's context, batch, cache type and precision.
    pub fn gpu_footprint(&self, gpu: &Gpu) -> Footprint {
        Footprint::of(
            gpu,
            self.model,
            &self.segment_spec(self.model.config.n_layers),
        )
    }

    /// The GPU segment of the last `n_gpu_layers` layers (at least one).
    fn segment_spec(&self, n_gpu_layers: usize) -> SegmentSpec {
        let c = &self.model.config;
        let kv = match self.cache.ty() {
            CacheType::F32 => gpu::ops::KvType::F32,
            _ => gpu::ops::KvType::F16,
        };
        SegmentSpec {
            first_layer: c.n_layers - n_gpu_layers.min(c.n_layers),
            output: n_gpu_layers > c.n_layers,
            n_ctx: self.n_ctx(),
            n_batch: self.n_batch,
            kv,
            precision: self.precision,
        }
    }

    /// Layers on the GPU: the last ones.
    pub fn gpu_layers(&self) -> usize {
        self.gpu.as_ref().map_or(0, |g| g.offload.layers)
    }

    /// Layers that run on the CPU: the first ones.
    pub(super) fn cpu_layers(&self) -> usize {
        let n = self.model.config.n_layers;
        self.gpu.as_ref().map_or(n, |g| n - g.offload.layers)
    }

    /// Drops the GPU after it failed with `e`: every layer goes back to the CPU, which
    /// recomputes the keys and values of the tokens seen so far. (With dynamic NTK they
    /// are recomputed in one pass, so they rotate by that pass's base.)
    pub(super) fn lose_gpu(&mut self, e: &GpuError) -> Result<()> {
        let done = self.n_past;
        eprintln!("warning: {e}; going on with the CPU, recomputing {done} tokens");
        self.gpu = None;
        let c = &self.model.config;
        self.cache = KvCache::new(self.cache.ty(), c.cache_shape(c.n_layers, self.n_ctx()));
        let history = std::mem::take(&mut self.history);
        self.n_past = 0;
        for batch in history[..done].chunks(self.n_batch) {
            self.rope.prepare(self.n_past, batch.len(), done);
            self.forward_batch(batch, BatchOut::NONE)?;
        }
        Ok(())
    }

    /// Makes the GPU's next step fail as a lost device would: what the fallback is
    /// tested with.
    #[doc(hidden)]
    pub fn fail_next_gpu_step(&mut self) {
        if let Some(segment) = &mut self.gpu {
            segment.fail_next_step = true;
        }
    }

    /// Makes the GPU's next shortlist count as overflowed, so that the step brings the
    /// whole row back: what that fallback is tested with.
    #[doc(hidden)]
    pub fn spoil_next_gpu_shortlist(&mut self) {
        if let Some(segment) = &mut self.gpu {
            segment.spoil_next_shortlist();
        }
    }
}
