//! Shared by the GPU tests: the adapter, random data, the error measure, and reading
//! back what the shaders wrote.

use std::sync::{Arc, OnceLock};

use ropewalk::backend::cpu::matmul::{matmul as cpu_matmul, MatmulScratch, Precision};
use ropewalk::backend::wgpu::ops::{self, Input, Q8Rows};
use ropewalk::backend::wgpu::{adapters, Gpu, GpuChoice};
use ropewalk::model::weights::Matrix;
use ropewalk::quant::{self, GgmlType};

use super::Rng;

/// The weight types with an integer product over 8-bit activations on the GPU.
pub const INTEGER_PRODUCT_TYPES: [GgmlType; 8] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// The adapter the GPU tests run on: the best GPU, or where there is none (as in CI)
/// the software renderer, which offloads take only when it is named.
pub fn choice() -> GpuChoice {
    let adapters = adapters();
    match adapters.first() {
        Some(a) if adapters.iter().all(|a| a.software) => GpuChoice::Index(a.index),
        _ => GpuChoice::Best,
    }
}

/// The `--gpu-device` arguments that give the CLI the adapter of [`choice`].
pub fn device_args() -> Vec<String> {
    match choice() {
        GpuChoice::Index(i) => vec!["--gpu-device".into(), i.to_string()],
        _ => Vec::new(),
    }
}

/// Opens the adapter of [`choice`].
pub fn open() -> Gpu {
    Gpu::open(&choice()).unwrap_or_else(|e| {
        panic!("{e}: the GPU tests need a Vulkan driver (tools/setup.sh installs lavapipe)")
    })
}

pub fn gpu() -> Arc<Gpu> {
    static GPU: OnceLock<Arc<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| Arc::new(open())).clone()
}

pub fn normal(rng: &mut Rng, n: usize) -> Vec<f32> {
    // Sums of uniforms: close enough to normal for weights and activations.
    (0..n)
        .map(|_| {
            (0..4)
                .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
                .sum::<f32>()
                - 2.0
        })
        .collect()
}

/// ‖got − want‖ / ‖want‖, the error measure of every check here.
pub fn rel_error(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let diff: f64 = got
        .iter()
        .zip(want)
        .map(|(g, w)| ((g - w) as f64).powi(2))
        .sum();
    let norm: f64 = want.iter().map(|w| (*w as f64).powi(2)).sum();
    (diff / norm.max(1e-30)).sqrt()
}

pub fn assert_close(what: &str, got: &[f32], want: &[f32], bound: f64) {
    let e = rel_error(got, want);
    assert!(
        e <= bound,
        "{what}: relative error {e:.3e} above {bound:.0e}"
    );
}

/// A random `[rows][cols]` matrix of type `ty` (quantized from random floats).
pub fn random_matrix(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let values = normal(rng, rows * cols);
    let mut data = vec![0u8; ty.bytes_for((rows * cols) as u64).unwrap() as usize];
    quant::quantize(ty, &values, &mut data).unwrap();
    data
}

pub fn matrix(ty: GgmlType, rows: usize, cols: usize, data: &[u8]) -> Matrix<'_> {
    Matrix {
        name: "w",
        ty,
        rows,
        cols,
        data,
        packed: None,
    }
}

pub fn cpu_exact(m: &Matrix, act: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; act.len() / m.cols * m.rows];
    cpu_matmul(
        m,
        act,
        &mut out,
        &mut MatmulScratch::default(),
        Precision::Exact,
    );
    out
}

/// The 8-bit copy of `n` values read back: each block's bytes and its (d, d · Σ q).
pub fn read_q8(gpu: &Gpu, q8: &Q8Rows, n: usize) -> Vec<([i8; 32], [f32; 2])> {
    let q = ops::read(gpu, &q8.q, n / 4).unwrap();
    let q: &[i8] = bytemuck::cast_slice(&q);
    let d = ops::read(gpu, &q8.d, n / 16).unwrap();
    q.chunks(32)
        .zip(d.chunks(2))
        .map(|(q, d)| (q.try_into().unwrap(), [d[0], d[1]]))
        .collect()
}

/// The values an 8-bit copy stands for: q · d.
pub fn q8_values(blocks: &[([i8; 32], [f32; 2])]) -> Vec<f32> {
    blocks
        .iter()
        .flat_map(|(q, d)| q.map(|q| f32::from(q) * d[0]))
        .collect()
}

/// Asserts that `q8` holds the CPU's Q8_0 quantization of `values` (whole rows from the
/// first): d = max |x| / 127 and the bytes round(x / d), as the CPU's. A GPU may divide
/// to within 2.5 units in the last place (Vulkan's bound), so d may be off by as much,
/// and a byte by one where x / d falls that near a half.
pub fn assert_q8_copy(gpu: &Gpu, q8: &Q8Rows, values: &[f32], what: &str) {
    let mut cpu = vec![0u8; GgmlType::Q8_0.bytes_for(values.len() as u64).unwrap() as usize];
    quant::quantize(GgmlType::Q8_0, values, &mut cpu).unwrap();
    let got = read_q8(gpu, q8, values.len());
    for (k, ((q, [d, s]), (x, cpu))) in got
        .iter()
        .zip(values.chunks(32).zip(cpu.chunks(34)))
        .enumerate()
    {
        let want_d = x.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
        assert!(
            (d - want_d).abs() <= 3.0 * f32::EPSILON * want_d,
            "{what}: block {k} scale {d} vs {want_d}"
        );
        for (i, (&q, &want)) in q.iter().zip(&cpu[2..]).enumerate() {
            let near_half = ((x[i] / want_d).abs().fract() - 0.5).abs() < 1e-4;
            assert!(
                q == want as i8 || (near_half && (i32::from(q) - i32::from(want as i8)).abs() == 1),
                "{what}: block {k} value {i}: {q} vs {}",
                want as i8
            );
        }
        let sum: i32 = q.iter().map(|&q| i32::from(q)).sum();
        assert_eq!(*s, d * sum as f32, "{what}: block {k} sum");
    }
}

/// Activation rows with the 8-bit copy that a one-token product reads, made as a layer
/// makes them, by an RMSNorm (of weight one, epsilon 1e-5).
pub struct NormedAct {
    pub f32: wgpu::Buffer,
    pub q8: Q8Rows,
    src: wgpu::Buffer,
    ones: wgpu::Buffer,
    cols: usize,
}

impl NormedAct {
    pub fn new(gpu: &Gpu, rows: &[f32], cols: usize) -> NormedAct {
        let n = rows.len() / cols;
        NormedAct {
            src: ops::upload_f32(gpu, "act", rows),
            ones: ops::upload_f32(gpu, "ones", &vec![1.0; cols]),
            f32: ops::activations(gpu, "normed", n * cols),
            q8: Q8Rows::new(gpu, n, cols),
            cols,
        }
    }

    pub fn input(&self) -> Input<'_> {
        Input {
            f32: &self.f32,
            q8: Some(&self.q8),
            folded: None,
        }
    }

    /// The norm that makes the rows and the copy.
    pub fn norm(&self, gpu: &Gpu, step: &wgpu::Buffer) -> ops::Kernel {
        ops::rms_norm(
            gpu,
            &self.ones,
            self.cols,
            1e-5,
            step,
            &self.src,
            self.input(),
        )
    }

    /// The values the first row's copy stands for.
    pub fn values(&self, gpu: &Gpu) -> Vec<f32> {
        q8_values(&read_q8(gpu, &self.q8, self.cols))
    }
}
