//! Every GPU op against the CPU op, on fresh random data. CI runs these on Mesa's
//! lavapipe (software Vulkan), so the GPU path is tested without a GPU.

mod common;

use std::time::Duration;

use common::gpu::{
    assert_close, assert_q8_copy, cpu_exact, gpu, matrix, normal, random_matrix, NormedAct,
    INTEGER_PRODUCT_TYPES,
};
use common::Rng;
use ropewalk::backend::cpu::attention::{attend, Tile};
use ropewalk::backend::cpu::ops as cpu;
use ropewalk::backend::wgpu::ops::{
    self, AttnShape, Dest, Input, KvType, PositionSplit, Q8Rows, Step,
};
use ropewalk::backend::wgpu::upload::GpuMatrix;
use ropewalk::backend::wgpu::Gpu;
use ropewalk::model::kv_cache::{CacheShape, CacheType, KvCache};
use ropewalk::model::rope::{Rope, RopeConfig, RopeScaling};
use ropewalk::model::weights::Matrix;
use ropewalk::quant::GgmlType;

/// `W · act` on the GPU for `n` tokens, into a fresh output (or added to `base`). With
/// `fast`, the input has an 8-bit copy, as on the fast path, whose batches take the
/// adapter's matrix units where it has them (the copy itself is only read by one token's
/// product, which `gpu_matvec_q8` checks).
fn gpu_matmul(
    gpu: &Gpu,
    m: &Matrix,
    (act, n): (&[f32], usize),
    base: Option<&[f32]>,
    fast: bool,
) -> Vec<f32> {
    let g = GpuMatrix::upload(gpu, m).unwrap();
    let step_buf = ops::step_buffer(gpu);
    let a = ops::upload_f32(gpu, "act", act);
    let q8 = Q8Rows::new(gpu, n, m.cols);
    let input = Input {
        f32: &a,
        q8: fast.then_some(&q8),
        folded: None,
    };
    let out = ops::upload_f32(gpu, "out", base.unwrap_or(&vec![0.0; n * m.rows]));
    let dest = if base.is_some() {
        Dest::Add
    } else {
        Dest::Store
    };
    let kernels = ops::matmul(gpu, &g, &step_buf, input, &out, dest);
    let label = &kernels[0].label;
    assert_eq!(label.contains(" mma "), fast && gpu.matrix_units, "{label}");
    let step = Step {
        n_tokens: n as u32,
        ..Default::default()
    };
    ops::run(gpu, &kernels, &step_buf, &step);
    ops::read(gpu, &out, n * m.rows).unwrap()
}

/// `W · act` for one token on the fast path: the activations normalized by RMSNorm (as a
/// layer's are), which makes their 8-bit copy, then the integer matrix-vector product.
/// Gives the product and the values the copy stands for.
fn gpu_matvec_q8(gpu: &Gpu, m: &Matrix, act: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let g = GpuMatrix::upload(gpu, m).unwrap();
    let step_buf = ops::step_buffer(gpu);
    let a = NormedAct::new(gpu, act, m.cols);
    let out = ops::activations(gpu, "out", m.rows);
    let mut kernels = vec![a.norm(gpu, &step_buf)];
    kernels.extend(ops::matmul(
        gpu,
        &g,
        &step_buf,
        a.input(),
        &out,
        Dest::Store,
    ));
    assert!(kernels[1].label.contains(" q8 "), "{}", kernels[1].label);
    let step = Step {
        n_tokens: 1,
        ..Default::default()
    };
    ops::run(gpu, &kernels, &step_buf, &step);
    (ops::read(gpu, &out, m.rows).unwrap(), a.values(gpu))
}

#[test]
fn matmul_matches_cpu_for_every_type() {
    let gpu = gpu();
    let mut rng = Rng::new(7);
    // (type, bound): types with a shader multiply their own blocks; the others go up as
    // f16, so they carry f16 rounding of the weights.
    let types = [
        (GgmlType::F32, 1e-5),
        (GgmlType::F16, 1e-5),
        (GgmlType::Q4_0, 1e-5),
        (GgmlType::Q4_1, 1e-5),
        (GgmlType::Q5_0, 1e-5),
        (GgmlType::Q5_1, 1e-5),
        (GgmlType::Q8_0, 1e-5),
        (GgmlType::Q4_K, 1e-5),
        (GgmlType::Q5_K, 1e-5),
        (GgmlType::Q6_K, 1e-5),
        (GgmlType::BF16, 1e-3),
    ];
    for (ty, bound) in types {
        let (rows, cols) = (70, 512);
        let data = random_matrix(&mut rng, ty, rows, cols);
        let m = matrix(ty, rows, cols, &data);
        // One token (the matrix-vector shader), and batches of one partial tile and of
        // two tiles of 64 tokens (the tiled matrix product).
        for n in [1, 11, 70] {
            let act = normal(&mut rng, n * cols);
            let want = cpu_exact(&m, &act);
            let got = gpu_matmul(&gpu, &m, (&act, n), None, false);
            assert_close(&format!("{ty} x {n} tokens"), &got, &want, bound);
        }
    }
}

#[test]
fn quantized_types_match_cpu_with_8_bit_activations() {
    // The integer product of 8-bit activations equals the exact product of the values
    // those activations stand for. (How the copy rounds is checked against the CPU's
    // quantizer below.)
    let gpu = gpu();
    let mut rng = Rng::new(15);
    for ty in INTEGER_PRODUCT_TYPES {
        for (rows, cols) in [(70, 512), (33, 1024)] {
            let data = random_matrix(&mut rng, ty, rows, cols);
            let m = matrix(ty, rows, cols, &data);
            let (got, act) = gpu_matvec_q8(&gpu, &m, &normal(&mut rng, cols));
            let want = cpu_exact(&m, &act);
            assert_close(&format!("{ty} {rows}x{cols}, 8-bit"), &got, &want, 1e-5);
        }
    }
}

#[test]
fn every_way_of_waiting_reads_the_same_result() {
    // A real GPU's waits poll the device for a while, then block; lavapipe's block at
    // once. Each way is taken here: blocking at once, polling until the product is done,
    // and polling for a moment before blocking on a product that takes longer.
    let mut rng = Rng::new(16);
    let (rows, cols) = (2048, 2048);
    let data = random_matrix(&mut rng, GgmlType::Q8_0, rows, cols);
    let m = matrix(GgmlType::Q8_0, rows, cols, &data);
    let act = normal(&mut rng, cols);
    let results: Vec<(Vec<f32>, Vec<f32>)> = [
        Duration::ZERO,
        Duration::from_secs(600),
        Duration::from_nanos(1),
    ]
    .into_iter()
    .map(|poll_for| {
        let mut gpu = common::gpu::open();
        gpu.poll_for = poll_for;
        gpu_matvec_q8(&gpu, &m, &act)
    })
    .collect();
    let want = cpu_exact(&m, &results[0].1);
    assert_close("blocking at once", &results[0].0, &want, 1e-5);
    for (way, (got, _)) in ["polling", "polling, then blocking"]
        .iter()
        .zip(&results[1..])
    {
        assert_eq!(got, &results[0].0, "{way}");
    }
}

#[test]
fn batches_on_the_fast_path_match_cpu() {
    // On matrix units (tensor cores) weights and activations go in as f16: 11 significant
    // bits, so a relative error of a few 1e-4; elsewhere the f32 tiled product. Shapes:
    // partial tiles of every size, odd numbers of blocks (a half-empty last pass), and
    // sums added into the residual.
    let gpu = gpu();
    let bound = if gpu.matrix_units { 2e-3 } else { 1e-5 };
    let mut rng = Rng::new(16);
    let shapes: [(usize, usize); 3] = [(70, 224), (4160, 96), (33, 512)];
    for ty in [GgmlType::F32, GgmlType::F16]
        .into_iter()
        .chain(INTEGER_PRODUCT_TYPES)
    {
        for (rows, cols) in shapes {
            let cols = cols.next_multiple_of(ty.block_len());
            let data = random_matrix(&mut rng, ty, rows, cols);
            let m = matrix(ty, rows, cols, &data);
            for n in [11, 70, 140] {
                let act = normal(&mut rng, n * cols);
                let base = normal(&mut rng, n * rows);
                let mut want = cpu_exact(&m, &act);
                cpu::add_assign(&mut want, &base);
                let got = gpu_matmul(&gpu, &m, (&act, n), Some(&base), true);
                let what = format!("{ty} {rows}x{cols} x {n} tokens, fast path");
                assert_close(&what, &got, &want, bound);
            }
        }
    }
}

#[test]
fn activations_quantize_to_the_cpu_bytes() {
    // RMSNorm of a row of ones with no epsilon scales by exactly 1, so its output is its
    // weight: the values to quantize, chosen here.
    let gpu = gpu();
    let mut rng = Rng::new(16);
    let cols = 256;
    let mut w = normal(&mut rng, cols);
    // A zero block, a block of halves to round and a lone large value.
    w[32..64].fill(0.0);
    for (i, v) in w[64..96].iter_mut().enumerate() {
        *v = (i as f32 - 16.0) * 0.5 + 0.25;
    }
    w[64] = 127.0 / 4.0;
    let step_buf = ops::step_buffer(&gpu);
    let (ones, wb) = (
        ops::upload_f32(&gpu, "x", &vec![1.0; cols]),
        ops::upload_f32(&gpu, "w", &w),
    );
    let (xn, q8) = (
        ops::activations(&gpu, "xn", cols),
        Q8Rows::new(&gpu, 1, cols),
    );
    let input = Input {
        f32: &xn,
        q8: Some(&q8),
        folded: None,
    };
    let k = ops::rms_norm(&gpu, &wb, cols, 0.0, &step_buf, &ones, input);
    let step = Step {
        n_tokens: 1,
        ..Default::default()
    };
    ops::run(&gpu, &[k], &step_buf, &step);
    assert_eq!(ops::read(&gpu, &xn, cols).unwrap(), w);
    assert_q8_copy(&gpu, &q8, &w, "chosen values");
}

#[test]
fn rms_norm_and_silu_make_the_cpu_copies() {
    // The shaders that make a product's input make its 8-bit copy too: the CPU's bytes
    // for the values they wrote.
    let gpu = gpu();
    let mut rng = Rng::new(17);
    let (dim, width, n) = (576, 1536, 2);
    let step_buf = ops::step_buffer(&gpu);
    let step = Step {
        n_tokens: n as u32,
        ..Default::default()
    };
    let x = ops::upload_f32(&gpu, "x", &normal(&mut rng, n * dim));
    let w = ops::upload_f32(&gpu, "w", &normal(&mut rng, dim));
    let (xn, xn_q8) = (
        ops::activations(&gpu, "xn", n * dim),
        Q8Rows::new(&gpu, n, dim),
    );
    let gate_up = ops::upload_f32(&gpu, "gate_up", &normal(&mut rng, n * 2 * width));
    let (hidden, hidden_q8) = (
        ops::activations(&gpu, "hidden", n * width),
        Q8Rows::new(&gpu, n, width),
    );
    let input = |f32, q8| Input {
        f32,
        q8: Some(q8),
        folded: None,
    };
    let kernels = [
        ops::rms_norm(&gpu, &w, dim, 1e-5, &step_buf, &x, input(&xn, &xn_q8)),
        ops::silu_mul(&gpu, width, &step_buf, &gate_up, input(&hidden, &hidden_q8)),
    ];
    ops::run(&gpu, &kernels, &step_buf, &step);
    let values = ops::read(&gpu, &xn, n * dim).unwrap();
    assert_q8_copy(&gpu, &xn_q8, &values, "rms_norm");
    let values = ops::read(&gpu, &hidden, n * width).unwrap();
    assert_q8_copy(&gpu, &hidden_q8, &values, "silu_mul");
}

#[test]
fn tall_matrices_take_wide_tiles() {
    // 4096 rows and more take tiles of 128 rows; 4160 ends in a partial one.
    let gpu = gpu();
    let mut rng = Rng::new(14);
    let (rows, cols) = (4160, 64);
    let data = random_matrix(&mut rng, GgmlType::Q8_0, rows, cols);
    let m = matrix(GgmlType::Q8_0, rows, cols, &data);
    for n in [1, 70] {
        let act = normal(&mut rng, n * cols);
        let got = gpu_matmul(&gpu, &m, (&act, n), None, false);
        assert_close(
            &format!("{rows} rows x {n} tokens"),
            &got,
            &cpu_exact(&m, &act),
            1e-5,
        );
    }
}

#[test]
fn matmul_adds_into_the_residual_and_splits_large_matrices() {
    // A binding limit of 4 KiB splits the matrix into many buffers (lavapipe's real limit
    // is 128 MiB, which a 7B model's output matrix would exceed as f16).
    let mut small = common::gpu::open();
    small.max_binding = 4096;
    let mut rng = Rng::new(8);
    for ty in [GgmlType::Q4_0, GgmlType::Q6_K, GgmlType::F32] {
        let (rows, cols, n) = (66, 256, 3);
        let data = random_matrix(&mut rng, ty, rows, cols);
        let m = matrix(ty, rows, cols, &data);
        let g = GpuMatrix::upload(&small, &m).unwrap();
        assert!(g.chunks.len() > 2, "{ty}: {} buffers", g.chunks.len());
        let act = normal(&mut rng, n * cols);
        let base = normal(&mut rng, n * rows);
        let mut want = cpu_exact(&m, &act);
        cpu::add_assign(&mut want, &base);
        let got = gpu_matmul(&small, &m, (&act, n), Some(&base), false);
        assert_close(&format!("{ty} split and added"), &got, &want, 1e-5);
    }
}

#[test]
fn output_rows_take_only_the_tokens_asked_for() {
    let gpu = gpu();
    let mut rng = Rng::new(9);
    let (rows, cols, n) = (40, 128, 6);
    let data = random_matrix(&mut rng, GgmlType::Q8_0, rows, cols);
    let m = matrix(GgmlType::Q8_0, rows, cols, &data);
    let act = normal(&mut rng, n * cols);
    let g = GpuMatrix::upload(&gpu, &m).unwrap();
    let step_buf = ops::step_buffer(&gpu);
    let a = ops::upload_f32(&gpu, "act", &act);
    let out = ops::activations(&gpu, "out", n * rows);
    let kernels = ops::matmul(&gpu, &g, &step_buf, &a, &out, Dest::OutputRows);
    let step = Step {
        n_tokens: n as u32,
        out_first: 2,
        n_out: 3,
        ..Default::default()
    };
    ops::run(&gpu, &kernels, &step_buf, &step);
    let got = ops::read(&gpu, &out, 3 * rows).unwrap();
    let want = cpu_exact(&m, &act[2 * cols..5 * cols]);
    assert_close("tokens 2..5", &got, &want, 1e-5);
}

#[test]
fn rms_norm_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(10);
    let (dim, n) = (576, 5);
    let x = normal(&mut rng, n * dim);
    let w = normal(&mut rng, dim);
    let step_buf = ops::step_buffer(&gpu);
    let (xb, wb) = (
        ops::upload_f32(&gpu, "x", &x),
        ops::upload_f32(&gpu, "w", &w),
    );
    let out = ops::activations(&gpu, "out", n * dim);
    let k = ops::rms_norm(&gpu, &wb, dim, 1e-5, &step_buf, &xb, &out);
    let step = Step {
        n_tokens: n as u32,
        ..Default::default()
    };
    ops::run(&gpu, &[k], &step_buf, &step);
    let got = ops::read(&gpu, &out, n * dim).unwrap();
    let mut want = vec![0.0; n * dim];
    for (o, i) in want.chunks_mut(dim).zip(x.chunks(dim)) {
        cpu::rms_norm(o, i, &w, 1e-5);
    }
    assert_close("rms_norm", &got, &want, 1e-6);
}

#[test]
fn silu_mul_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    let (width, n) = (1536, 3);
    // Rows of [gate | up], as the fused product leaves them.
    let gate_up = normal(&mut rng, n * 2 * width);
    let step_buf = ops::step_buffer(&gpu);
    let gub = ops::upload_f32(&gpu, "gate_up", &gate_up);
    let hidden = ops::activations(&gpu, "hidden", n * width);
    let k = ops::silu_mul(&gpu, width, &step_buf, &gub, &hidden);
    let step = Step {
        n_tokens: n as u32,
        ..Default::default()
    };
    ops::run(&gpu, &[k], &step_buf, &step);
    let got = ops::read(&gpu, &hidden, n * width).unwrap();
    let mut want = Vec::new();
    for row in gate_up.chunks(2 * width) {
        let (mut gate, up) = (row[..width].to_vec(), &row[width..]);
        cpu::silu_mul(&mut gate, up);
        want.extend(gate);
    }
    assert_close("silu_mul", &got, &want, 1e-6);
}

const SHAPE: AttnShape = AttnShape {
    n_heads: 6,
    n_kv_heads: 2,
    head_dim: 64,
};

/// Runs rope_store and attention (with the 8-bit copy of its output) for a step of `n`
/// tokens at `pos0` whose rows are `qkv`, rotating by `table`; gives the rotated rows and
/// the attention.
fn gpu_rope_attend(
    gpu: &Gpu,
    kinds: (AttnShape, KvType, PositionSplit),
    caches: (&wgpu::Buffer, &wgpu::Buffer),
    qkv: &[f32],
    table: &[f32],
    n: usize,
    pos0: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (shape, kv_type, _) = kinds;
    let hd = shape.head_dim;
    let q_dim = shape.n_heads * hd;
    let width = q_dim + 2 * shape.n_kv_heads * hd;
    let step_buf = ops::step_buffer(gpu);
    let (qkv_buf, table_buf) = (
        ops::upload_f32(gpu, "qkv", qkv),
        ops::upload_f32(gpu, "table", table),
    );
    let out = ops::activations(gpu, "out", n * q_dim);
    // With the output's 8-bit copy, checked against the CPU's bytes below.
    let q8 = Q8Rows::new(gpu, n, q_dim);
    let parts = ops::attention_parts(gpu, shape);
    let out_rows = Input {
        f32: &out,
        q8: Some(&q8),
        folded: None,
    };
    let [attend, merge] = ops::attention(
        gpu,
        kinds,
        &step_buf,
        &table_buf,
        (&qkv_buf, width),
        caches,
        (&parts, out_rows),
    );
    let store = ops::rope_store(gpu, shape, kv_type, &step_buf, &table_buf, &qkv_buf, caches);
    let kernels = [store, attend, merge];
    let step = Step {
        n_tokens: n as u32,
        pos0: pos0 as u32,
        ..Default::default()
    };
    ops::run(gpu, &kernels, &step_buf, &step);
    let att = ops::read(gpu, &out, n * q_dim).unwrap();
    assert_q8_copy(gpu, &q8, &att, "attention");
    (ops::read(gpu, &qkv_buf, n * width).unwrap(), att)
}

fn caches(
    gpu: &Gpu,
    (shape, kv_type): (AttnShape, KvType),
    n_ctx: usize,
) -> (wgpu::Buffer, wgpu::Buffer) {
    let values = n_ctx * shape.n_kv_heads * shape.head_dim;
    let floats = values * kv_type.bytes_per_value() / 4;
    (
        ops::activations(gpu, "k cache", floats),
        ops::activations(gpu, "v cache", floats),
    )
}

#[test]
fn rope_matches_cpu_for_scaled_configs() {
    let gpu = gpu();
    let mut rng = Rng::new(12);
    let (hd, n, pos0) = (SHAPE.head_dim, 7, 100);
    let q_dim = SHAPE.n_heads * hd;
    let kv_dim = SHAPE.n_kv_heads * hd;
    let width = q_dim + 2 * kv_dim;
    let scalings = [
        RopeScaling::None,
        RopeScaling::Linear { factor: 2.0 },
        RopeScaling::Yarn {
            factor: 4.0,
            original_ctx: 2048,
            beta_fast: 32.0,
            beta_slow: 1.0,
            attn_factor: 1.0,
        },
        RopeScaling::Dynamic {
            factor: 2.0,
            original_ctx: 64,
        },
    ];
    let (k_cache, v_cache) = caches(&gpu, (SHAPE, KvType::F32), pos0 + n);
    for scaling in scalings {
        let config = RopeConfig {
            dims: hd,
            freq_base: 10000.0,
            scaling: scaling.clone(),
            trained_ctx: 2048,
            ntk_alpha: None,
        };
        let mut rope = Rope::new(config);
        rope.prepare(pos0, n, pos0 + n);
        let qkv = normal(&mut rng, n * width);
        let (cos, sin) = rope.rows(n);
        let table: Vec<f32> = cos.iter().chain(sin).copied().collect();
        let caches = (&k_cache, &v_cache);
        let kinds = (SHAPE, KvType::F32, PositionSplit::DEFAULT);
        let (got, _) = gpu_rope_attend(&gpu, kinds, caches, &qkv, &table, n, pos0);
        let mut want = qkv.clone();
        for (t, row) in want.chunks_mut(width).enumerate() {
            rope.apply(&mut row[..q_dim + kv_dim], t);
        }
        assert_close(&format!("rope {scaling:?}"), &got, &want, 1e-6);
    }
}

/// Steps of tokens at these (first position, count): each a batch, or a single token, and
/// the last ends within a run of the head's size.
const SHORT_STEPS: [(usize, usize); 6] = [(0, 1), (1, 69), (70, 9), (79, 1), (80, 41), (121, 1)];

/// Longer steps, whose single tokens see 300 to 540 positions.
const LONG_STEPS: [(usize, usize); 7] = [
    (0, 300),
    (300, 1),
    (301, 1),
    (302, 200),
    (502, 1),
    (503, 37),
    (540, 1),
];

/// Steps of tokens rotate their queries and keys, store their keys and values and attend
/// over all the positions so far, with grouped heads; checks RoPE, the cache write and the
/// attention together. Steps of one token (the first at position 0) do all three in the
/// attention kernel, batches in rope_store first, and `split` says how one token's
/// positions spread over workgroups. The shader walks the positions in runs of the head's
/// size; the steps end within runs.
fn check_attention(
    (shape, kv_type, split): (AttnShape, KvType, PositionSplit),
    cache_type: CacheType,
    steps: &[(usize, usize)],
    bound: f64,
) {
    let gpu = gpu();
    let mut rng = Rng::new(13);
    let hd = shape.head_dim;
    let group = shape.n_heads / shape.n_kv_heads;
    let n_ctx = steps.iter().map(|(pos0, n)| pos0 + n).max().unwrap_or(0);
    let (q_dim, kv_dim) = (shape.n_heads * hd, shape.n_kv_heads * hd);
    let width = q_dim + 2 * kv_dim;
    let (k_cache, v_cache) = caches(&gpu, (shape, kv_type), n_ctx);
    let mut cpu_cache = KvCache::new(
        cache_type,
        CacheShape {
            n_layers: 1,
            n_ctx,
            n_kv_heads: shape.n_kv_heads,
            head_dim: hd,
        },
    );
    let mut rope = Rope::new(RopeConfig {
        dims: hd,
        freq_base: 10000.0,
        scaling: RopeScaling::None,
        trained_ctx: n_ctx,
        ntk_alpha: None,
    });
    for &(pos0, n) in steps {
        let mut qkv = normal(&mut rng, n * width);
        rope.prepare(pos0, n, pos0 + n);
        let (cos, sin) = rope.rows(n);
        let table: Vec<f32> = cos.iter().chain(sin).copied().collect();
        let caches = (&k_cache, &v_cache);
        let kinds = (shape, kv_type, split);
        let (_, got) = gpu_rope_attend(&gpu, kinds, caches, &qkv, &table, n, pos0);

        for (t, row) in qkv.chunks_mut(width).enumerate() {
            rope.apply(&mut row[..q_dim + kv_dim], t);
        }
        let part = |from: usize, len: usize| -> Vec<f32> {
            qkv.chunks(width)
                .flat_map(|row| row[from..from + len].to_vec())
                .collect()
        };
        let (q, k, v) = (
            part(0, q_dim),
            part(q_dim, kv_dim),
            part(q_dim + kv_dim, kv_dim),
        );
        cpu_cache.store(0, pos0, &k, &v);
        let view = cpu_cache.layer(0, pos0 + n);
        let mut want = vec![0.0; n * q_dim];
        for t in 0..n {
            for h in 0..shape.n_heads {
                let tile = Tile {
                    head_dim: hd,
                    group: 1,
                    kv_head: h / group,
                    first_seen: pos0 + t + 1,
                    q_stride: q_dim,
                };
                let at = t * q_dim + h * hd;
                attend(&mut want[at..at + hd], &q[at..at + hd], &view, &tile);
            }
        }
        assert_close(
            &format!("attention {shape:?} {kv_type:?} {split:?}, {n} tokens at {pos0}"),
            &got,
            &want,
            bound,
        );
    }
}

/// Heads of the sizes the shader takes: 64 (grouped), 128, 32 (grouped 4 to 1) and 256.
const SHAPES: [AttnShape; 4] = [
    SHAPE,
    AttnShape {
        n_heads: 4,
        n_kv_heads: 4,
        head_dim: 128,
    },
    AttnShape {
        n_heads: 4,
        n_kv_heads: 1,
        head_dim: 32,
    },
    AttnShape {
        n_heads: 2,
        n_kv_heads: 1,
        head_dim: 256,
    },
];

#[test]
fn attention_matches_cpu_with_an_f32_cache() {
    for shape in SHAPES {
        let kinds = (shape, KvType::F32, PositionSplit::DEFAULT);
        check_attention(kinds, CacheType::F32, &SHORT_STEPS, 1e-5);
    }
}

#[test]
fn attention_matches_cpu_with_an_f16_cache() {
    for shape in SHAPES {
        let kinds = (shape, KvType::F16, PositionSplit::DEFAULT);
        check_attention(kinds, CacheType::F16, &SHORT_STEPS, 1e-5);
    }
}

/// One token's positions split over workgroups whatever the context's length: parts of
/// a run or less (some of them empty, the last one holding only the token's own position),
/// parts of several runs, the most parts a head takes, and never split.
#[test]
fn split_attention_matches_cpu() {
    for shape in SHAPES {
        for span in [0, 5, 40, 128, 200] {
            let split = PositionSplit::new(span);
            check_attention(
                (shape, KvType::F16, split),
                CacheType::F16,
                &SHORT_STEPS,
                1e-5,
            );
            check_attention(
                (shape, KvType::F32, split),
                CacheType::F32,
                &LONG_STEPS,
                1e-5,
            );
        }
    }
}

/// Logits for the shortlist: spread (normal), of a few values (ties, 0.0 and -0.0), with
/// the most likely in one run of ids (so few chunks hold them), or all equal; with NaN,
/// -inf and +inf mixed into the first three.
fn shortlist_logits(rng: &mut Rng, n: usize, pattern: usize) -> Vec<f32> {
    let mut l = match pattern {
        0 => normal(rng, n).iter().map(|x| 4.0 * x).collect(),
        1 => (0..n)
            .map(|_| match rng.next_u64() % 9 {
                0 => -0.0,
                r => r as f32 * 0.25,
            })
            .collect(),
        2 => {
            let mut l: Vec<f32> = normal(rng, n);
            let run = n / 3..(n / 3 + 300).min(n);
            for x in &mut l[run] {
                *x += 20.0;
            }
            l
        }
        _ => vec![1.5; n],
    };
    if pattern < 3 {
        for _ in 0..n / 50 + 1 {
            let i = (rng.next_u64() % n as u64) as usize;
            l[i] = match rng.next_u64() % 3 {
                0 => f32::NAN,
                1 => f32::NEG_INFINITY,
                _ => f32::INFINITY,
            };
        }
    }
    l
}

#[test]
fn shortlist_matches_cpu() {
    use ropewalk::backend::wgpu::shortlist::{self, CAPACITY, MOST};
    let gpu = gpu();
    let mut rng = Rng::new(17);
    let step_buf = ops::step_buffer(&gpu);
    let mut overflowed = 0;
    for n_vocab in [1, 100, 256, 1000, 49152, 128256] {
        for pattern in 0..4 {
            let logits = shortlist_logits(&mut rng, n_vocab, pattern);
            let buf = ops::upload_f32(&gpu, "logits", &logits);
            let (kernels, list) = shortlist::kernels(&gpu, &step_buf, &buf, n_vocab);
            // Steps that want the logits themselves do not run them.
            assert!(kernels.iter().all(|k| !k.runs(&Step {
                n_tokens: 1,
                n_out: 1,
                ..Default::default()
            })));
            for k in [1, 2, 40, 104, MOST] {
                let step = Step {
                    n_tokens: 1,
                    n_out: 1,
                    shortlist: k as u32,
                    ..Default::default()
                };
                ops::run(&gpu, &kernels, &step_buf, &step);
                let words = ops::read(&gpu, &list, shortlist::list_bytes() as usize / 4).unwrap();
                let words: Vec<u32> = words.iter().map(|w| w.to_bits()).collect();
                let mut got = Vec::new();
                let usable = shortlist::parse(&words, &mut got);
                let want = shortlist::reference(&logits, k);
                let what = format!("{n_vocab} logits, pattern {pattern}, k {k}");
                assert_eq!(words[0] as usize, want.len(), "{what}: count");
                if want.len() > CAPACITY || want.is_empty() {
                    assert!(!usable, "{what}");
                    overflowed += 1;
                    continue;
                }
                got.sort_by_key(|&(id, _)| id);
                let bits = |l: &[(u32, f32)]| -> Vec<(u32, u32)> {
                    l.iter().map(|&(i, x)| (i, x.to_bits())).collect()
                };
                assert_eq!(bits(&got), bits(&want), "{what}");
            }
        }
    }
    // All-equal rows of more than CAPACITY logits overflow.
    assert!(overflowed >= 10, "{overflowed}");
}
