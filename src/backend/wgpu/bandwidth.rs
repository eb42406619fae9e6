//! The copy bandwidth of a GPU: the ceiling a memory-bound kernel (token generation)
//! is measured against.

use std::time::Instant;

use super::ops::{self, Step};
use super::{Gpu, GpuError, Result};

/// Copy bandwidth in GB/s, counting bytes read plus bytes written (as STREAM's copy).
#[derive(Clone, Copy, Debug)]
pub struct CopyBandwidth {
    /// Buffer-to-buffer copies (the API's copy command).
    pub command: f64,
    /// A shader copying four words per invocation.
    pub shader: f64,
}

/// The best of `reps` timed submissions of 4 copies of `bytes` each (capped at the
/// adapter's largest binding), after one untimed.
pub fn copy_gbs(gpu: &Gpu, bytes: u64, reps: usize) -> Result<CopyBandwidth> {
    let size = bytes.min(gpu.max_binding) & !255;
    let buffer = |usage| {
        gpu.buffer(&wgpu::BufferDescriptor {
            label: Some("bandwidth"),
            size,
            usage: usage | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let (src, dst) = gpu.checked("allocating copy buffers", || {
        (
            buffer(wgpu::BufferUsages::COPY_SRC),
            buffer(wgpu::BufferUsages::COPY_DST),
        )
    })?;
    let kernel = ops::copy(gpu, &src, &dst, size);
    let copies = 4;
    let best = |shader: bool| -> Result<f64> {
        let mut best = f64::INFINITY;
        for rep in 0..=reps {
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            for _ in 0..copies {
                if shader {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    kernel.encode(&mut pass, &Step::default());
                } else {
                    encoder.copy_buffer_to_buffer(&src, 0, &dst, 0, size);
                }
            }
            let start = Instant::now();
            gpu.queue.submit([encoder.finish()]);
            gpu.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| GpuError::Lost(e.to_string()))?;
            if rep > 0 {
                best = best.min(start.elapsed().as_secs_f64());
            }
        }
        Ok(2.0 * (copies as u64 * size) as f64 / best / 1e9)
    };
    Ok(CopyBandwidth {
        command: best(false)?,
        shader: best(true)?,
    })
}
