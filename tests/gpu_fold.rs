//! RMSNorm and SwiGLU folded into the one-token products around them
//! (src/backend/wgpu/fold.rs): the product that adds into the residual stream makes the
//! norm's 8-bit copy and per-block sums, the product that reads them applies the scale,
//! the first norm of a step makes them from the host's row, and the gate and up product
//! makes the hidden row. Each against the CPU, on fresh random data.

mod common;

use common::gpu::{assert_close, assert_q8_copy, cpu_exact, gpu, matrix, normal, random_matrix};
use common::gpu::{q8_values, read_q8, NormedAct, INTEGER_PRODUCT_TYPES};
use common::Rng;
use ropewalk::backend::cpu::ops as cpu;
use ropewalk::backend::wgpu::fold;
use ropewalk::backend::wgpu::ops::{self, Dest, Folded, GluOut, Input, NormOut, Q8Rows, Step};
use ropewalk::backend::wgpu::upload::GpuMatrix;
use ropewalk::quant::GgmlType;

const EPS: f32 = 1e-5;

const ONE_TOKEN: Step = Step {
    n_tokens: 1,
    pos0: 0,
    out_first: 0,
    n_out: 0,
    shortlist: 0,
    pad: [0; 3],
};

/// Σ x² of each block of 32, as the CPU sums it.
fn block_sums(x: &[f32]) -> Vec<f32> {
    x.chunks(32)
        .map(|b| b.iter().map(|v| v * v).sum())
        .collect()
}

/// The norm's scale, 1 / sqrt(mean(x²) + eps).
fn norm_scale(x: &[f32]) -> f32 {
    let mean = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    1.0 / (mean + EPS).sqrt()
}

#[test]
fn a_norm_folds_between_the_products_around_it() {
    // x += W1 · a, then out = W2 · (rms_norm(x) · w), with no norm kernel between: the
    // first product writes x, the copy of x · w and each block's Σ x²; the second scales
    // its sums. Every type with an integer product on both sides; rows of x longer than
    // 4096 values too, whose readers take more than four blocks' sums a lane.
    let gpu = gpu();
    assert!(gpu.fold_ops, "the adapter cannot fold norms");
    let mut rng = Rng::new(31);
    let shapes = INTEGER_PRODUCT_TYPES
        .map(|ty| (ty, (512, 256, 70)))
        .into_iter()
        .chain([GgmlType::Q4_0, GgmlType::Q4_K].map(|ty| (ty, (4352, 256, 16))));
    for (ty, (dim, cols, rows)) in shapes {
        let (d1, d2) = (
            random_matrix(&mut rng, ty, dim, cols),
            random_matrix(&mut rng, ty, rows, dim),
        );
        let (w1, w2) = (matrix(ty, dim, cols, &d1), matrix(ty, rows, dim, &d2));
        let (g1, g2) = (
            GpuMatrix::upload(&gpu, &w1).unwrap(),
            GpuMatrix::upload(&gpu, &w2).unwrap(),
        );
        let (a, x0, w) = (
            normal(&mut rng, cols),
            normal(&mut rng, dim),
            normal(&mut rng, dim),
        );
        let step = ops::step_buffer(&gpu);
        let a = NormedAct::new(&gpu, &a, cols);
        let x = ops::upload_f32(&gpu, "x", &x0);
        let w_buf = ops::upload_f32(&gpu, "w", &w);
        let (xn, x_q8) = (ops::activations(&gpu, "xn", dim), Q8Rows::new(&gpu, 1, dim));
        let sums = ops::activations(&gpu, "sums", dim / 32);
        let out = ops::activations(&gpu, "out", rows);
        let made = NormOut {
            weight: &w_buf,
            q8: &x_q8,
            sums: &sums,
        };
        let read_in = Input {
            f32: &xn,
            q8: Some(&x_q8),
            folded: Some(Folded {
                sums: &sums,
                eps: EPS,
            }),
        };
        // The first product's input: a's 8-bit copy, made by a norm of weight one.
        let mut kernels = vec![a.norm(&gpu, &step)];
        kernels.extend(ops::matmul_folding(&gpu, &g1, &step, a.input(), &x, made));
        kernels.extend(ops::matmul(&gpu, &g2, &step, read_in, &out, Dest::Store));
        assert!(
            kernels[1].label.ends_with("norm out"),
            "{}",
            kernels[1].label
        );
        assert!(
            kernels[2].label.ends_with("norm in"),
            "{}",
            kernels[2].label
        );
        ops::run(&gpu, &kernels, &step, &ONE_TOKEN);

        let a_values = a.values(&gpu);
        let mut want_x = cpu_exact(&w1, &a_values);
        cpu::add_assign(&mut want_x, &x0);
        let got_x = ops::read(&gpu, &x, dim).unwrap();
        assert_close(&format!("{ty}: x"), &got_x, &want_x, 1e-5);

        let weighted: Vec<f32> = got_x.iter().zip(&w).map(|(x, w)| x * w).collect();
        assert_q8_copy(&gpu, &x_q8, &weighted, &format!("{ty}: copy of x · w"));
        let got_sums = ops::read(&gpu, &sums, dim / 32).unwrap();
        assert_close(&format!("{ty}: sums"), &got_sums, &block_sums(&got_x), 1e-6);

        let copy = q8_values(&read_q8(&gpu, &x_q8, dim));
        let want: Vec<f32> = cpu_exact(&w2, &copy)
            .iter()
            .map(|v| v * norm_scale(&got_x))
            .collect();
        let got = ops::read(&gpu, &out, rows).unwrap();
        assert_close(&format!("{ty}: product of the norm"), &got, &want, 1e-5);

        // What the folded norm stands for: the product of rms_norm(x) · w, within the
        // error of 8-bit activations.
        let mut normed = vec![0.0; dim];
        cpu::rms_norm(&mut normed, &got_x, &w, EPS);
        assert_close(
            &format!("{ty}: against the norm"),
            &got,
            &cpu_exact(&w2, &normed),
            2e-2,
        );
    }
}

#[test]
fn the_first_norm_folds_for_one_token_and_runs_whole_for_batches() {
    // Where x comes from the host no product makes the norm's input: one token gets the
    // copy of x · w and the sums from a kernel of their own; a batch gets the norm.
    let gpu = gpu();
    let mut rng = Rng::new(32);
    let (dim, n) = (576, 3);
    let step = ops::step_buffer(&gpu);
    let (x0, w) = (normal(&mut rng, n * dim), normal(&mut rng, dim));
    let x = ops::upload_f32(&gpu, "x", &x0);
    let w_buf = ops::upload_f32(&gpu, "w", &w);
    let (xn, x_q8) = (
        ops::activations(&gpu, "xn", n * dim),
        Q8Rows::new(&gpu, n, dim),
    );
    let sums = ops::activations(&gpu, "sums", dim / 32);
    let input = Input {
        f32: &xn,
        q8: Some(&x_q8),
        folded: Some(Folded {
            sums: &sums,
            eps: EPS,
        }),
    };
    let norm = fold::rms_norm(&gpu, (&w_buf, dim, EPS, input), &step, &x, true);

    ops::run(&gpu, std::slice::from_ref(&norm), &step, &ONE_TOKEN);
    let weighted: Vec<f32> = x0[..dim].iter().zip(&w).map(|(x, w)| x * w).collect();
    assert_q8_copy(&gpu, &x_q8, &weighted, "one token: copy of x · w");
    let got_sums = ops::read(&gpu, &sums, dim / 32).unwrap();
    assert_close("one token: sums", &got_sums, &block_sums(&x0[..dim]), 1e-6);

    let batch = Step {
        n_tokens: n as u32,
        ..ONE_TOKEN
    };
    ops::run(&gpu, &[norm], &step, &batch);
    let mut want = vec![0.0; n * dim];
    for (o, row) in want.chunks_mut(dim).zip(x0.chunks(dim)) {
        cpu::rms_norm(o, row, &w, EPS);
    }
    let got = ops::read(&gpu, &xn, n * dim).unwrap();
    assert_close("a batch: the norm", &got, &want, 1e-6);
}

#[test]
fn a_later_norm_runs_for_batches_only() {
    // Past the first, a folded norm's own kernel has nothing to do for one token.
    let gpu = gpu();
    let dim = 64;
    let step = ops::step_buffer(&gpu);
    let buf = |label| ops::activations(&gpu, label, 2 * dim);
    let (x, w, xn, sums) = (buf("x"), buf("w"), buf("xn"), buf("sums"));
    let q8 = Q8Rows::new(&gpu, 2, dim);
    let input = Input {
        f32: &xn,
        q8: Some(&q8),
        folded: Some(Folded {
            sums: &sums,
            eps: EPS,
        }),
    };
    let norm = fold::rms_norm(&gpu, (&w, dim, EPS, input), &step, &x, false);
    assert!(!norm.runs(&ONE_TOKEN));
    assert!(norm.runs(&Step {
        n_tokens: 2,
        ..ONE_TOKEN
    }));
}

#[test]
fn swiglu_folds_into_the_gate_and_up_product() {
    // One token: the stacked [gate; up] product stores silu(gate) · up and its 8-bit
    // copy, the CPU's bytes for it. A batch: the product stores gate and up as before.
    let gpu = gpu();
    let mut rng = Rng::new(33);
    let (width, cols, n) = (96, 256, 3);
    for ty in INTEGER_PRODUCT_TYPES {
        let data = random_matrix(&mut rng, ty, 2 * width, cols);
        let w = matrix(ty, 2 * width, cols, &data);
        let g = GpuMatrix::upload(&gpu, &w).unwrap();
        let step = ops::step_buffer(&gpu);
        let act = normal(&mut rng, n * cols);
        let a = NormedAct::new(&gpu, &act, cols);
        let gate_up = ops::activations(&gpu, "gate_up", n * 2 * width);
        let (hidden, hidden_q8) = (
            ops::activations(&gpu, "hidden", n * width),
            Q8Rows::new(&gpu, n, width),
        );
        let glu = GluOut {
            hidden: &hidden,
            q8: &hidden_q8,
        };
        let mut kernels = vec![a.norm(&gpu, &step)];
        kernels.extend(ops::matmul_glu(&gpu, &g, &step, a.input(), &gate_up, glu));
        assert!(kernels[1].label.ends_with(" glu"), "{}", kernels[1].label);

        ops::run(&gpu, &kernels, &step, &ONE_TOKEN);
        let a_values = a.values(&gpu);
        let gu = cpu_exact(&w, &a_values);
        let want: Vec<f32> = gu[..width]
            .iter()
            .zip(&gu[width..])
            .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
            .collect();
        let got = ops::read(&gpu, &hidden, width).unwrap();
        assert_close(&format!("{ty}: silu(gate) · up"), &got, &want, 1e-5);
        assert_q8_copy(
            &gpu,
            &hidden_q8,
            &got,
            &format!("{ty}: copy of the hidden row"),
        );

        let batch = Step {
            n_tokens: n as u32,
            ..ONE_TOKEN
        };
        ops::run(&gpu, &kernels, &step, &batch);
        let normed = ops::read(&gpu, &a.f32, n * cols).unwrap();
        let got = ops::read(&gpu, &gate_up, n * 2 * width).unwrap();
        // On matrix units batches multiply in f16 (tests/gpu_ops.rs holds them to this).
        let bound = if gpu.matrix_units { 2e-3 } else { 1e-5 };
        let what = format!("{ty}: a batch's gate and up");
        assert_close(&what, &got, &cpu_exact(&w, &normed), bound);
    }
}
