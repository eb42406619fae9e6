//! Kernel throughput per weight type and kernel path, one thread:
//! - `dot/TYPE/PATH`: one activation row against 256 weight rows of 4096 (about 0.6-4 MB,
//!   so in L2/L3 as a thread's slice of a layer would be); GB/s of weights.
//! - `gemv/TYPE/PATH`: the row kernel (sixteen rows per vector) on the same data.
//! - `tile/TYPE/PATH`: the tile kernel on 64 rows x 64 tokens; GB/s of weights times
//!   tokens (the dot-product equivalent), so it compares with `dot` directly.
//! - `packed/TYPE/PATH/TOKENS`: Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 repacked at load
//!   ([`ropewalk::quant::packed`]), the `gemv` shape for one token and the `tile` shape for
//!   64, counted the same way.
//! - `quantize/FORMAT/PATH`: activation quantization, GB/s of f32 input.
//!
//! `cargo bench --bench kernels -- --warm-up-time 1 --measurement-time 3`

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ropewalk::quant::acts::Acts;
use ropewalk::quant::kernels::{Kernels, Path, WEIGHT_TYPES};
use ropewalk::quant::packed::{PackedJob, PackedMatrix, LAYOUTS};
use ropewalk::quant::{quantize, GgmlType};

use common::data;

const COLS: usize = 4096;

fn weights(ty: GgmlType, rows: usize) -> Vec<u64> {
    let bytes = ty.bytes_for((rows * COLS) as u64).unwrap() as usize;
    let mut w = vec![0u64; bytes.div_ceil(8)];
    let x = data(rows * COLS, 1);
    quantize(ty, &x, &mut bytemuck::cast_slice_mut(&mut w)[..bytes]).unwrap();
    w
}

fn paths() -> Vec<Kernels> {
    Path::ALL
        .into_iter()
        .filter_map(Kernels::for_path)
        .collect()
}

fn dot(c: &mut Criterion) {
    let rows = 256;
    for ty in WEIGHT_TYPES {
        let w = weights(ty, rows);
        let row_bytes = ty.bytes_for(COLS as u64).unwrap() as usize;
        let w = &bytemuck::cast_slice::<u64, u8>(&w)[..rows * row_bytes];
        let mut g = c.benchmark_group(format!("dot/{ty}"));
        g.throughput(Throughput::Bytes(w.len() as u64));
        for k in paths() {
            let tk = k.for_type(ty).unwrap();
            let mut acts = Acts::default();
            tk.quantize_acts(&data(COLS, 2), COLS, &mut acts);
            let a = acts.row_bytes(0);
            g.bench_function(BenchmarkId::from_parameter(k.path.name()), |b| {
                b.iter(|| {
                    let mut s = 0.0;
                    for r in w.chunks_exact(row_bytes) {
                        s += tk.dot_row(black_box(r), a, COLS);
                    }
                    s
                })
            });
        }
        g.finish();
    }
}

fn gemv(c: &mut Criterion) {
    let rows = 256;
    for ty in WEIGHT_TYPES {
        let w = weights(ty, rows);
        let row_bytes = ty.bytes_for(COLS as u64).unwrap() as usize;
        let w = &bytemuck::cast_slice::<u64, u8>(&w)[..rows * row_bytes];
        let mut g = c.benchmark_group(format!("gemv/{ty}"));
        g.throughput(Throughput::Bytes(w.len() as u64));
        for k in paths() {
            let tk = k.for_type(ty).unwrap();
            if !tk.has_gemv() {
                continue;
            }
            let mut acts = Acts::default();
            tk.quantize_acts(&data(COLS, 2), COLS, &mut acts);
            let mut out = vec![0.0f32; rows];
            g.bench_function(BenchmarkId::from_parameter(k.path.name()), |b| {
                b.iter(|| {
                    // SAFETY: `out` is [1][rows], used by this call alone.
                    unsafe { tk.run_gemv(black_box(w), rows, &acts, out.as_mut_ptr(), rows) }
                })
            });
        }
        g.finish();
    }
}

fn tile(c: &mut Criterion) {
    let (rows, n_tok) = (64, 64);
    for ty in WEIGHT_TYPES {
        let w = weights(ty, rows);
        let row_bytes = ty.bytes_for(COLS as u64).unwrap() as usize;
        let w = &bytemuck::cast_slice::<u64, u8>(&w)[..rows * row_bytes];
        let mut g = c.benchmark_group(format!("tile/{ty}"));
        g.throughput(Throughput::Bytes((w.len() * n_tok) as u64));
        for k in paths() {
            let tk = k.for_type(ty).unwrap();
            let Some(gk) = tk.gemm() else { continue };
            let mut acts = Acts::default();
            tk.quantize_acts(&data(COLS * n_tok, 3), COLS, &mut acts);
            let mut out = vec![0.0f32; rows * n_tok];
            g.bench_function(BenchmarkId::from_parameter(k.path.name()), |b| {
                b.iter(|| {
                    // SAFETY: `out` is [n_tok][rows], used by this call alone.
                    unsafe { tk.run_gemm(&gk, black_box(w), rows, &acts, out.as_mut_ptr(), rows) }
                })
            });
        }
        g.finish();
    }
}

fn packed(c: &mut Criterion) {
    for ty in LAYOUTS.map(|l| l.ty) {
        for (rows, n_tok) in [(256, 1), (64, 64)] {
            let w = weights(ty, rows);
            let row_bytes = ty.bytes_for(COLS as u64).unwrap() as usize;
            let w = &bytemuck::cast_slice::<u64, u8>(&w)[..rows * row_bytes];
            let packed = PackedMatrix::pack(ty, w, rows, COLS);
            let mut g = c.benchmark_group(format!("packed/{ty}"));
            g.throughput(Throughput::Bytes((w.len() * n_tok) as u64));
            for k in paths() {
                let tk = k.for_type(ty).unwrap();
                if !tk.has_packed() {
                    continue;
                }
                let mut acts = Acts::default();
                tk.quantize_acts(&data(COLS * n_tok, 3), COLS, &mut acts);
                let mut out = vec![0.0f32; rows * n_tok];
                let id = format!("{}/{n_tok}", k.path.name());
                g.bench_function(BenchmarkId::from_parameter(id), |b| {
                    b.iter(|| {
                        let job = PackedJob {
                            layout: packed.layout(),
                            groups: black_box(packed.groups(0, rows)),
                            cols: COLS,
                            acts: acts.bytes(),
                            act_stride: acts.stride(),
                            n_tok,
                            out: out.as_mut_ptr(),
                            out_stride: rows,
                        };
                        // SAFETY: `out` is [n_tok][rows], used by this call alone.
                        unsafe { tk.run_packed(&job) }
                    })
                });
            }
            g.finish();
        }
    }
}

fn quantize_acts(c: &mut Criterion) {
    let n_tok = 16;
    let x = data(COLS * n_tok, 4);
    for ty in [GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q4_K] {
        let mut g = c.benchmark_group(format!("quantize/{}", ty_partner(ty)));
        g.throughput(Throughput::Bytes((4 * x.len()) as u64));
        for k in paths() {
            let tk = k.for_type(ty).unwrap();
            let mut acts = Acts::default();
            g.bench_function(BenchmarkId::from_parameter(k.path.name()), |b| {
                b.iter(|| {
                    for (t, xr) in x.chunks_exact(COLS).enumerate() {
                        acts.reset(tk.act, COLS, n_tok);
                        let stride = acts.stride();
                        tk.quantize_row(
                            black_box(xr),
                            &mut acts.bytes_mut()[t * stride..(t + 1) * stride],
                        );
                    }
                })
            });
        }
        g.finish();
    }
}

fn ty_partner(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::Q8_0 => "Q8_0",
        GgmlType::Q4_1 => "Q8_1",
        _ => "Q8_K",
    }
}

criterion_group!(benches, dot, gemv, tile, packed, quantize_acts);
criterion_main!(benches);
