//! The GPU memory an offload takes, reckoned from the model before anything goes up:
//! how `--gpu-memory-limit` picks the layers that fit.

use crate::model::Llama;

use super::inputs::StepInputs;
use super::layer::kv_buffer_bytes;
use super::ops::activation_bytes;
use super::step_buffers::{
    kv_bytes_per_layer, logit_rows, readback_floats, scratch_floats, Activations,
};
use super::upload::{storage_bytes, GpuMatrix};
use super::{Gpu, SegmentSpec};

/// Bytes of the buffers a [`GpuSegment`](super::GpuSegment) makes (what
/// [`Gpu::bytes_created`] counts) for each split of a model between CPU and GPU. The
/// driver's own overhead is not in it.
#[derive(Clone, Debug)]
pub struct Footprint {
    /// What any offload makes: the step's inputs on their way up, the activations
    /// passed between kernels, their 8-bit copies, the RoPE table, the norms' sums and
    /// the attention's parts.
    shared: u64,
    /// Each layer's matrices, norms and KV cache, first layer first.
    layers: Vec<u64>,
    /// The output norm and matrix, the logits, and the shortlists of them.
    output: u64,
    /// What comes back after a step without the output layer: the hidden rows.
    readback_hidden: u64,
    /// What comes back with it: the logits. (On a discrete GPU this buffer is in the
    /// host's memory, but not on every adapter: it is counted.)
    readback_logits: u64,
}

impl Footprint {
    /// The footprint of every split of `model` with `spec`'s context, batch, cache type
    /// and precision (`spec`'s own split does not matter).
    pub fn of(gpu: &Gpu, model: &Llama, spec: &SegmentSpec) -> Footprint {
        let c = &model.config;
        let n = spec.n_batch;
        let shared = Activations::bytes(c, n, spec.precision)
            + StepInputs::bytes(n, model.rope.dims / 2, c.dim)
            + scratch_floats(model, n)
                .map(activation_bytes)
                .iter()
                .sum::<u64>();

        let binding = gpu.max_binding;
        let kv_bytes = kv_bytes_per_layer(c, spec.n_ctx, spec.kv);
        let norm = storage_bytes(c.dim * 4);
        let layers = model
            .weights
            .layers
            .iter()
            .map(|l| {
                let matrices = GpuMatrix::stacked_bytes_for(&[&l.wq, &l.wk, &l.wv], binding)
                    + GpuMatrix::stacked_bytes_for(&[&l.wo], binding)
                    + GpuMatrix::stacked_bytes_for(&[&l.w_gate, &l.w_up], binding)
                    + GpuMatrix::stacked_bytes_for(&[&l.w_down], binding);
                matrices + 2 * norm + 2 * kv_buffer_bytes(kv_bytes)
            })
            .collect();
        let out = &model.weights.output;
        let logits = logit_rows(n) * c.n_vocab;
        let output = GpuMatrix::bytes_for(out.ty, out.rows, out.cols, binding)
            + norm
            + activation_bytes(logits)
            + super::shortlist::bytes();
        Footprint {
            shared,
            layers,
            output,
            readback_hidden: (readback_floats(c, n, false) * 4) as u64,
            readback_logits: (readback_floats(c, n, true) * 4) as u64,
        }
    }

    /// The model's layers (not counting the output layer).
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Bytes of offloading `n_gpu_layers`, with llama.cpp's meaning: counted from the
    /// last layer, and the output layer too past the layer count.
    pub fn bytes(&self, n_gpu_layers: usize) -> u64 {
        let n = n_gpu_layers.min(self.layers.len());
        if n == 0 {
            return 0;
        }
        let layers: u64 = self.layers[self.layers.len() - n..].iter().sum();
        let with_output = n_gpu_layers > self.layers.len();
        let (output, readback) = match with_output {
            true => (self.output, self.readback_logits),
            false => (0, self.readback_hidden),
        };
        self.shared + layers + output + readback
    }

    /// The most layers, up to `n_gpu_layers`, whose offload takes at most `limit` bytes
    /// (0 where not even one layer fits).
    pub fn fit(&self, n_gpu_layers: usize, limit: u64) -> usize {
        let most = n_gpu_layers.min(self.layers.len() + 1);
        (1..=most)
            .rev()
            .find(|&n| self.bytes(n) <= limit)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footprint() -> Footprint {
        Footprint {
            shared: 100,
            layers: vec![10, 20, 30],
            output: 1000,
            readback_hidden: 1,
            readback_logits: 2,
        }
    }

    #[test]
    fn layers_count_from_the_last_and_the_output_comes_past_them() {
        let f = footprint();
        assert_eq!(
            [0, 1, 2, 3, 4, 999].map(|n| f.bytes(n)),
            [0, 131, 151, 161, 1162, 1162]
        );
    }

    #[test]
    fn the_most_layers_that_fit_go() {
        let f = footprint();
        assert_eq!(f.fit(999, u64::MAX), 4);
        assert_eq!(f.fit(999, 1161), 3);
        assert_eq!(f.fit(2, 1161), 2);
        assert_eq!(f.fit(999, 150), 1);
        assert_eq!(f.fit(999, 130), 0);
        assert_eq!(f.fit(0, u64::MAX), 0);
    }
}
