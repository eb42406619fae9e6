//! GPU kernel throughput on the first adapter `--gpu-layers` would take:
//! - `copy/buffer`, `copy/shader`: the copy ceiling (bytes read plus written).
//! - `matvec/TYPE/ROWSxCOLS`: one token through a matrix of a Llama-2-7B layer, GB/s of
//!   weights (token generation is bound by this).
//! - `matmul/TYPE/ROWSxCOLS/TOKENS`: a batch of tokens, GB/s of weights times tokens
//!   (divide by 2 · rows · cols · tokens for FLOP/s).
//!
//! Each sample is many dispatches in one submission, timed from submit to completion.
//! `cargo bench --bench gpu_kernels -- --warm-up-time 1 --measurement-time 3`

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ropewalk::backend::wgpu::ops::{self, Dest, Step};
use ropewalk::backend::wgpu::upload::GpuMatrix;
use ropewalk::backend::wgpu::{Gpu, GpuChoice};
use ropewalk::model::weights::Matrix;
use ropewalk::quant::{quantize, GgmlType};

use common::data;

/// Waits for everything submitted so far.
fn wait(gpu: &Gpu) {
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("the GPU answers");
}

/// Runs `record` `iters` times in one submission and times it.
fn timed(gpu: &Gpu, iters: u64, record: &dyn Fn(&mut wgpu::CommandEncoder)) -> Duration {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    for _ in 0..iters {
        record(&mut encoder);
    }
    let start = Instant::now();
    gpu.queue.submit([encoder.finish()]);
    wait(gpu);
    start.elapsed()
}

fn copy(c: &mut Criterion, gpu: &Gpu) {
    let size = (256u64 << 20).min(gpu.max_binding) & !255;
    let buffer = |usage| {
        gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage,
            mapped_at_creation: false,
        })
    };
    let src = buffer(wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::STORAGE);
    let dst = buffer(wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::STORAGE);
    let mut g = c.benchmark_group("copy");
    g.throughput(Throughput::Bytes(2 * size));
    g.bench_function("buffer", |b| {
        b.iter_custom(|iters| {
            timed(gpu, iters, &|e| {
                e.copy_buffer_to_buffer(&src, 0, &dst, 0, size)
            })
        })
    });
    let kernel = ops::copy(gpu, &src, &dst, size);
    g.bench_function("shader", |b| {
        b.iter_custom(|iters| {
            timed(gpu, iters, &|e| {
                let mut pass = e.begin_compute_pass(&Default::default());
                kernel.encode(&mut pass, &Step::default());
            })
        })
    });
    g.finish();
}

fn products(c: &mut Criterion, gpu: &Gpu) {
    let shapes = [(4096, 4096), (11008, 4096), (4096, 11008)];
    let types = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
        GgmlType::F16,
    ];
    let step_buf = ops::step_buffer(gpu);
    for ty in types {
        for (rows, cols) in shapes {
            let x = data(rows * cols, 1);
            let mut bytes = vec![0u8; ty.bytes_for((rows * cols) as u64).unwrap() as usize];
            quantize(ty, &x, &mut bytes).unwrap();
            let m = Matrix {
                name: "w",
                ty,
                rows,
                cols,
                data: &bytes,
                packed: None,
            };
            let g_m = GpuMatrix::upload(gpu, &m).unwrap();
            for tokens in [1usize, 512] {
                let act = ops::upload_f32(gpu, "act", &data(tokens * cols, 2));
                let out = ops::activations(gpu, "out", tokens * rows);
                let kernels = ops::matmul(gpu, &g_m, &step_buf, &act, &out, Dest::Store);
                let step = Step {
                    n_tokens: tokens as u32,
                    ..Default::default()
                };
                gpu.queue
                    .write_buffer(&step_buf, 0, bytemuck::bytes_of(&step));
                let name = if tokens == 1 { "matvec" } else { "matmul" };
                let mut g = c.benchmark_group(format!("{name}/{ty}"));
                g.throughput(Throughput::Bytes(g_m.bytes * tokens as u64));
                let id = match tokens {
                    1 => format!("{rows}x{cols}"),
                    t => format!("{rows}x{cols}/{t}"),
                };
                g.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        timed(gpu, iters, &|e| {
                            let mut pass = e.begin_compute_pass(&Default::default());
                            for k in &kernels {
                                k.encode(&mut pass, &step);
                            }
                        })
                    })
                });
                g.finish();
            }
        }
    }
}

fn all(c: &mut Criterion) {
    let gpu = Gpu::open(&GpuChoice::Best).expect("a GPU adapter");
    eprintln!("GPU: {}", gpu.info);
    copy(c, &gpu);
    products(c, &gpu);
}

criterion_group!(benches, all);
criterion_main!(benches);
