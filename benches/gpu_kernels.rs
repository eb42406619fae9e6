//! GPU kernel throughput on the first adapter `--gpu-layers` would take:
//! - `copy/buffer`, `copy/shader`: the copy ceiling (bytes read plus written).
//! - `matvec/TYPE/ROWSxCOLS`: one token through a matrix of a Llama-2-7B layer, GB/s of
//!   weights (token generation is bound by this), with f32 activations (the exact path).
//! - `matvec_q8/TYPE/ROWSxCOLS`: the same with 8-bit activations (the fast path).
//! - `matmul/TYPE/ROWSxCOLS/TOKENS`: a batch of tokens, GB/s of weights times tokens
//!   (divide by 2 · rows · cols · tokens for FLOP/s), f32 in the shader.
//! - `matmul_mma/TYPE/ROWSxCOLS/TOKENS`: the same on the fast path, which takes the
//!   matrix units (f16 pieces, f32 sums) where the adapter has them.
//!
//! - `dispatch/dependent`, `dispatch/independent`: what a dispatch costs beyond its work,
//!   64 one-workgroup kernels in a pass, each reading the last one's output (so a barrier
//!   comes between them, as between a layer's kernels) or each writing its own buffer.
//!
//! Each sample is many dispatches in one submission (in one compute pass, as a step
//! records its kernels), timed from submit to completion.
//! `cargo bench --bench gpu_kernels -- --warm-up-time 1 --measurement-time 3`

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ropewalk::backend::wgpu::ops::{self, Dest, Input, Kernel, Q8Rows, Step};
use ropewalk::backend::wgpu::upload::{self, GpuMatrix};
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

/// Encodes `kernels` for `step` `iters` times in one compute pass, and times it.
fn timed_kernels(gpu: &Gpu, iters: u64, kernels: &[Kernel], step: &Step) -> Duration {
    timed(gpu, 1, &|e| {
        let mut pass = e.begin_compute_pass(&Default::default());
        for _ in 0..iters {
            for k in kernels {
                k.encode(&mut pass, step);
            }
        }
    })
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
    let kernels = [ops::copy(gpu, &src, &dst, size)];
    g.bench_function("shader", |b| {
        b.iter_custom(|iters| timed_kernels(gpu, iters, &kernels, &Step::default()))
    });
    g.finish();
}

fn products(c: &mut Criterion, gpu: &Gpu) {
    let shapes = [(4096, 4096), (11008, 4096), (4096, 11008)];
    let types = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
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
            if upload::integer_dot(g_m.decode).is_some() {
                matvec_q8(c, gpu, &g_m, ty);
            }
            // (tokens, on the fast path): a batch on the fast path takes the matrix units
            let runs = [(1usize, false), (512, false), (512, true)];
            for (tokens, fast) in runs.into_iter().filter(|r| !r.1 || gpu.matrix_units) {
                let act = ops::upload_f32(gpu, "act", &data(tokens * cols, 2));
                let q8 = Q8Rows::new(gpu, tokens, cols);
                let input = Input {
                    f32: &act,
                    q8: fast.then_some(&q8),
                    folded: None,
                };
                let out = ops::activations(gpu, "out", tokens * rows);
                let kernels = ops::matmul(gpu, &g_m, &step_buf, input, &out, Dest::Store);
                let step = Step {
                    n_tokens: tokens as u32,
                    ..Default::default()
                };
                gpu.queue
                    .write_buffer(&step_buf, 0, bytemuck::bytes_of(&step));
                let name = match (tokens, fast) {
                    (1, _) => "matvec",
                    (_, false) => "matmul",
                    (_, true) => "matmul_mma",
                };
                let mut g = c.benchmark_group(format!("{name}/{ty}"));
                g.throughput(Throughput::Bytes(g_m.bytes * tokens as u64));
                let id = match tokens {
                    1 => format!("{rows}x{cols}"),
                    t => format!("{rows}x{cols}/{t}"),
                };
                g.bench_function(id, |b| {
                    b.iter_custom(|iters| timed_kernels(gpu, iters, &kernels, &step))
                });
                g.finish();
            }
        }
    }
}

/// One token through `m` on the fast path: the activations' 8-bit copy made once (by
/// RMSNorm, as in a layer), then the integer matrix-vector product timed alone.
fn matvec_q8(c: &mut Criterion, gpu: &Gpu, m: &GpuMatrix, ty: GgmlType) {
    let step_buf = ops::step_buffer(gpu);
    let act = ops::upload_f32(gpu, "act", &data(m.cols, 2));
    let norm = ops::upload_f32(gpu, "norm", &vec![1.0; m.cols]);
    let xn = ops::activations(gpu, "xn", m.cols);
    let q8 = Q8Rows::new(gpu, 1, m.cols);
    let out = ops::activations(gpu, "out", m.rows);
    let step = Step {
        n_tokens: 1,
        ..Default::default()
    };
    let input = Input {
        f32: &xn,
        q8: Some(&q8),
        folded: None,
    };
    let make = ops::rms_norm(gpu, &norm, m.cols, 1e-5, &step_buf, &act, input);
    ops::run(gpu, &[make], &step_buf, &step);
    let kernels = ops::matmul(gpu, m, &step_buf, input, &out, Dest::Store);
    let mut g = c.benchmark_group(format!("matvec_q8/{ty}"));
    g.throughput(Throughput::Bytes(m.bytes));
    g.bench_function(format!("{}x{}", m.rows, m.cols), |b| {
        b.iter_custom(|iters| timed_kernels(gpu, iters, &kernels, &step))
    });
    g.finish();
}

/// 64 dispatches of SwiGLU over one block of 32 values: one workgroup each, so their
/// time is the cost of a dispatch. `dependent`: each reads what the last one wrote.
fn dispatch(c: &mut Criterion, gpu: &Gpu) {
    const N: usize = 64;
    let step_buf = ops::step_buffer(gpu);
    let step = Step {
        n_tokens: 1,
        ..Default::default()
    };
    gpu.queue
        .write_buffer(&step_buf, 0, bytemuck::bytes_of(&step));
    let width = 32;
    let bufs: Vec<_> = (0..=N)
        .map(|_| ops::upload_f32(gpu, "x", &data(2 * width, 3)))
        .collect();
    // Each writes the buffer the next reads (its first half: the gate).
    let dependent: Vec<Kernel> = (0..N)
        .map(|i| ops::silu_mul(gpu, width, &step_buf, &bufs[i], &bufs[i + 1]))
        .collect();
    let independent: Vec<Kernel> = (0..N)
        .map(|i| ops::silu_mul(gpu, width, &step_buf, &bufs[0], &bufs[i + 1]))
        .collect();
    let mut g = c.benchmark_group("dispatch");
    g.throughput(Throughput::Elements(N as u64));
    for (name, kernels) in [("dependent", &dependent), ("independent", &independent)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| timed_kernels(gpu, iters, kernels, &step))
        });
    }
    g.finish();
}

fn all(c: &mut Criterion) {
    let gpu = Gpu::open(&GpuChoice::Best).expect("a GPU adapter");
    eprintln!("GPU: {}", gpu.info);
    copy(c, &gpu);
    dispatch(c, &gpu);
    products(c, &gpu);
}

criterion_group!(benches, all);
criterion_main!(benches);
