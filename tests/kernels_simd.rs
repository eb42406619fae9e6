//! Every SIMD kernel against its scalar twin, on every kernel path this CPU runs: the
//! activation quantizers byte for byte, the row dot products and the tile kernels within
//! 1e-5 of the sum of |products| on float data, and exactly on integer data (unit scales,
//! where every kernel's result is an exact integer sum).

mod common;

use common::Rng;
use ropewalk::quant::acts::{ActFormat, ActRowMut, Acts};
use ropewalk::quant::blocks::{BlockQ8K, BlockQ8_0, BlockQ8_1};
use ropewalk::quant::kernels::{Kernels, Path, WEIGHT_TYPES};
use ropewalk::quant::{dequantize, dot, quantize, GgmlType};

fn paths() -> Vec<Kernels> {
    let ks: Vec<Kernels> = Path::ALL
        .into_iter()
        .filter_map(Kernels::for_path)
        .collect();
    assert!(ks.iter().any(|k| k.path == Path::Scalar));
    let names: Vec<&str> = ks.iter().map(|k| k.path.name()).collect();
    eprintln!("kernel paths on this CPU: {}", names.join(", "));
    ks
}

/// Bytes in a buffer aligned for any block type.
struct Buf(Vec<u64>, usize);

impl Buf {
    fn new(len: usize) -> Buf {
        Buf(vec![0; len.div_ceil(8)], len)
    }
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.0)[..self.1]
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.0)[..self.1]
    }
}

fn floats(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
        .collect()
}

fn quantized(ty: GgmlType, x: &[f32]) -> Buf {
    let mut b = Buf::new(ty.bytes_for(x.len() as u64).unwrap() as usize);
    quantize(ty, x, b.bytes_mut()).unwrap();
    b
}

/// Random bytes for `n` values of `ty` with every f16 scale set to 1 (and Q4_K/Q5_K mins'
/// dmin to 1), so that dot products are exact integers.
fn unit_scale_weights(rng: &mut Rng, ty: GgmlType, n: usize) -> Buf {
    let mut b = Buf::new(ty.bytes_for(n as u64).unwrap() as usize);
    let one = half::f16::from_f32(1.0).to_le_bytes();
    let bytes = rng.bytes(b.1);
    b.bytes_mut().copy_from_slice(&bytes);
    let bb = ty.block_bytes();
    for blk in b.bytes_mut().chunks_exact_mut(bb) {
        let at: &[usize] = match ty {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
            GgmlType::Q6_K => &[208],
            _ => &[],
        };
        for &i in at {
            blk[i..i + 2].copy_from_slice(&one);
        }
    }
    if matches!(ty, GgmlType::F16 | GgmlType::BF16 | GgmlType::F32) {
        // Small integers, exact in every float type.
        let vals: Vec<f32> = (0..n).map(|_| (rng.next_u64() % 17) as f32 - 8.0).collect();
        quantize(ty, &vals, b.bytes_mut()).unwrap();
    }
    b
}

/// Activations with unit scales and random quants in -127..=127, as ggml blocks (for the
/// reference) and in the kernel layout.
fn unit_scale_acts(rng: &mut Rng, fmt: ActFormat, n: usize, acts: &mut Acts, t: usize) -> Buf {
    let mut q = || ((rng.next_u64() % 255) as i32 - 127) as i8;
    let bytes = acts.bytes_mut();
    let stride = fmt.row_stride(n);
    let mut row = ActRowMut::new(fmt, n, &mut bytes[t * stride..(t + 1) * stride]);
    let one = half::f16::from_f32(1.0);
    match fmt {
        ActFormat::Q8_0 => {
            let mut std = Buf::new(34 * n / 32);
            for b in 0..n / 32 {
                let blk = BlockQ8_0 {
                    d: one,
                    qs: std::array::from_fn(|_| q()),
                };
                row.put_q8_0(b, &blk);
                std.bytes_mut()[34 * b..34 * (b + 1)].copy_from_slice(bytemuck::bytes_of(&blk));
            }
            std
        }
        ActFormat::Q8_1 => {
            let mut std = Buf::new(36 * n / 32);
            for b in 0..n / 32 {
                let qs: [i8; 32] = std::array::from_fn(|_| q());
                let sum: i32 = qs.iter().map(|&v| i32::from(v)).sum();
                // s = d * Σq is exact in f16 for |Σq| <= 2048.
                let blk = BlockQ8_1 {
                    d: one,
                    s: half::f16::from_f32(sum as f32),
                    qs,
                };
                row.put_q8_1(b, &blk);
                std.bytes_mut()[36 * b..36 * (b + 1)].copy_from_slice(bytemuck::bytes_of(&blk));
            }
            std
        }
        ActFormat::Q8K => {
            let mut std = Buf::new(292 * n / 256);
            for b in 0..n / 256 {
                let qs: [i8; 256] = std::array::from_fn(|_| q());
                let bsums = std::array::from_fn(|j| {
                    qs[16 * j..16 * j + 16].iter().map(|&v| v as i16).sum()
                });
                let blk = BlockQ8K { d: 1.0, qs, bsums };
                row.put_q8_k(b, &blk);
                std.bytes_mut()[292 * b..292 * (b + 1)].copy_from_slice(bytemuck::bytes_of(&blk));
            }
            std
        }
        ActFormat::F32 => {
            let vals: Vec<f32> = (0..n)
                .map(|_| (rng.next_u64() % 255) as f32 - 127.0)
                .collect();
            row.x.copy_from_slice(&vals);
            let mut std = Buf::new(4 * n);
            std.bytes_mut().copy_from_slice(bytemuck::cast_slice(&vals));
            std
        }
    }
}

fn act_type(fmt: ActFormat) -> GgmlType {
    match fmt {
        ActFormat::Q8_0 => GgmlType::Q8_0,
        ActFormat::Q8_1 => GgmlType::Q8_1,
        ActFormat::Q8K => GgmlType::Q8_K,
        ActFormat::F32 => GgmlType::F32,
    }
}

/// Row lengths: one block, a few, odd counts around the kernels' chunk sizes, many.
fn lengths(ty: GgmlType) -> Vec<usize> {
    match ty {
        GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => vec![256, 512, 768, 1280, 2304],
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => vec![1, 7, 16, 17, 63, 64, 65, 100, 576],
        _ => [1, 2, 3, 4, 5, 7, 15, 16, 17, 18, 31, 32, 33, 48, 71]
            .map(|b| 32 * b)
            .to_vec(),
    }
}

/// Σ |w_i a_i| of the dequantized values: the scale of a dot product's rounding.
fn abs_scale(ty: GgmlType, w: &[u8], a_ty: GgmlType, a: &[u8], n: usize) -> f64 {
    let (mut wd, mut ad) = (vec![0.0; n], vec![0.0; n]);
    dequantize(ty, w, &mut wd).unwrap();
    dequantize(a_ty, a, &mut ad).unwrap();
    wd.iter()
        .zip(&ad)
        .map(|(&x, &y)| (x as f64 * y as f64).abs())
        .sum()
}

#[test]
fn quantizers_are_bit_identical_to_the_scalar_ones() {
    let scalar = Kernels::for_path(Path::Scalar).unwrap();
    let mut rng = Rng::new(1);
    for k in paths() {
        for ty in WEIGHT_TYPES {
            let (fast, slow) = (k.for_type(ty).unwrap(), scalar.for_type(ty).unwrap());
            for n in [256, 512, 2304] {
                let mut x = floats(&mut rng, n);
                // Ties, zeros, tiny and huge values, NaN and infinity in some blocks.
                for (i, v) in x.iter_mut().enumerate().take(n.min(512)) {
                    match i % 97 {
                        3 => *v = 0.5,
                        5 => *v = -2.5,
                        11 => *v *= 1e-30,
                        13 => *v *= 1e30,
                        _ => {}
                    }
                }
                x[40..72].fill(0.0);
                if n == 512 {
                    x[300] = f32::NAN;
                    x[400] = f32::INFINITY;
                    x[100] = -x[101].abs().max(0.99);
                    x[101] = x[100].abs();
                }
                let (mut a, mut b) = (Acts::default(), Acts::default());
                fast.quantize_acts(&x, n, &mut a);
                slow.quantize_acts(&x, n, &mut b);
                let len = fast.act.row_bytes(n);
                assert!(
                    a.row_bytes(0)[..len] == b.row_bytes(0)[..len],
                    "{} {ty} n = {n}: quantized activations differ",
                    k.path.name()
                );
            }
        }
    }
}

#[test]
fn dot_products_match_the_scalar_kernels() {
    let mut rng = Rng::new(2);
    for k in paths() {
        for ty in WEIGHT_TYPES {
            let tk = k.for_type(ty).unwrap();
            let a_ty = act_type(tk.act);
            for n in lengths(ty) {
                // Float data through the real quantizers.
                let w = quantized(ty, &floats(&mut rng, n));
                let x = floats(&mut rng, n);
                let a_std = quantized(a_ty, &x);
                let mut acts = Acts::default();
                tk.quantize_acts(&x, n, &mut acts);
                let want = dot::vec_dot(ty, w.bytes(), a_std.bytes()) as f64;
                let got = tk.dot(w.bytes(), &acts, 0) as f64;
                let scale = abs_scale(ty, w.bytes(), a_ty, a_std.bytes(), n);
                assert!(
                    (got - want).abs() <= 1e-5 * scale + 1e-30,
                    "{} {ty} n = {n}: {got} vs {want} (scale {scale})",
                    k.path.name()
                );

                // Integer data: exact.
                let w = unit_scale_weights(&mut rng, ty, n);
                acts.reset(tk.act, n, 1);
                let a_std = unit_scale_acts(&mut rng, tk.act, n, &mut acts, 0);
                let want = dot::vec_dot(ty, w.bytes(), a_std.bytes());
                let got = tk.dot(w.bytes(), &acts, 0);
                assert_eq!(got, want, "{} {ty} n = {n}, integer data", k.path.name());
                assert_eq!(want.fract(), 0.0);
            }
        }
    }
}

#[test]
fn tile_kernels_match_the_scalar_kernels() {
    let mut rng = Rng::new(3);
    for k in paths() {
        for ty in WEIGHT_TYPES {
            let tk = k.for_type(ty).unwrap();
            let Some(g) = tk.gemm() else { continue };
            assert!(tk.has_gemv(), "a tile kernel comes with its row kernel");
            let a_ty = act_type(tk.act);
            let ns: &[usize] = if ty.block_len() == 256 {
                &[256, 768]
            } else {
                &[96, 576, 1056]
            };
            for (&n, (rows, n_tok)) in ns.iter().flat_map(|n| {
                [(1, 1), (16, 8), (17, 3), (33, 13), (40, 20), (5, 9)].map(|s| (n, s))
            }) {
                for integer in [false, true] {
                    let row_bytes = ty.bytes_for(n as u64).unwrap() as usize;
                    let mut w = Buf::new(rows * row_bytes);
                    let mut acts = Acts::default();
                    acts.reset(tk.act, n, n_tok);
                    let mut a_std = Vec::new();
                    for r in 0..rows {
                        let wr = if integer {
                            unit_scale_weights(&mut rng, ty, n)
                        } else {
                            quantized(ty, &floats(&mut rng, n))
                        };
                        w.bytes_mut()[r * row_bytes..(r + 1) * row_bytes]
                            .copy_from_slice(wr.bytes());
                    }
                    if integer {
                        for t in 0..n_tok {
                            a_std.push(unit_scale_acts(&mut rng, tk.act, n, &mut acts, t));
                        }
                    } else {
                        let x = floats(&mut rng, n * n_tok);
                        tk.quantize_acts(&x, n, &mut acts);
                        for t in 0..n_tok {
                            a_std.push(quantized(a_ty, &x[t * n..(t + 1) * n]));
                        }
                    }
                    let mut out = vec![f32::NAN; n_tok * (rows + 3)];
                    // SAFETY: `out` is [n_tok][rows + 3], only this call touches it.
                    unsafe { tk.run_gemm(&g, w.bytes(), rows, &acts, out.as_mut_ptr(), rows + 3) };
                    // The row kernel, token by token and all at once: the tile's bits.
                    let mut out_v = vec![f32::NAN; n_tok * (rows + 3)];
                    // SAFETY: as above.
                    unsafe { tk.run_gemv(w.bytes(), rows, &acts, out_v.as_mut_ptr(), rows + 3) };
                    assert!(
                        out.iter()
                            .zip(&out_v)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{} {ty} tile {rows}x{n_tok}: row and tile kernels differ",
                        k.path.name()
                    );
                    for t in 0..n_tok {
                        for r in 0..rows {
                            let wr = &w.bytes()[r * row_bytes..(r + 1) * row_bytes];
                            let want = dot::vec_dot(ty, wr, a_std[t].bytes());
                            let got = out[t * (rows + 3) + r];
                            let ok = if integer {
                                got == want
                            } else {
                                let scale = abs_scale(ty, wr, a_ty, a_std[t].bytes(), n);
                                ((got - want) as f64).abs() <= 1e-5 * scale + 1e-30
                            };
                            assert!(
                                ok,
                                "{} {ty} tile {rows}x{n_tok}, row {r} token {t}, integer {integer}: {got} vs {want}",
                                k.path.name()
                            );
                        }
                        for r in rows..rows + 3 {
                            assert!(out[t * (rows + 3) + r].is_nan(), "wrote past the rows");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_path_the_cpu_lacks_is_refused() {
    for p in Path::ALL {
        assert_eq!(
            Kernels::for_path(p).is_some(),
            p.is_supported(),
            "{}",
            p.name()
        );
    }
}

/// Matrices repacked at load (every type of `LAYOUTS`): every path's kernel equals the
/// scalar one bit for bit (the same operations in the same order), and each output is the
/// reference dot product of its row within the float tolerance, exactly on integer data.
#[test]
fn repacked_kernels_match_the_scalar_kernel() {
    use ropewalk::quant::packed::{PackedJob, PackedMatrix, LAYOUTS};
    let mut rng = Rng::new(5);
    let scalar = Kernels::for_path(Path::Scalar).unwrap();
    for layout in LAYOUTS {
        let ty = layout.ty;
        let reference = scalar.for_type(ty).unwrap();
        let (fmt, a_ty) = (ActFormat::for_weight(ty).unwrap(), dot::vec_dot_type(ty));
        for (rows, n) in [(16, 32), (32, 96), (48, 576), (16, 1056)] {
            for n_tok in [1, 2, 3, 4, 5, 9] {
                for integer in [false, true] {
                    let row_bytes = ty.bytes_for(n as u64).unwrap() as usize;
                    let mut w = Buf::new(rows * row_bytes);
                    for r in 0..rows {
                        let wr = if integer {
                            unit_scale_weights(&mut rng, ty, n)
                        } else {
                            quantized(ty, &floats(&mut rng, n))
                        };
                        w.bytes_mut()[r * row_bytes..(r + 1) * row_bytes]
                            .copy_from_slice(wr.bytes());
                    }
                    let mut acts = Acts::default();
                    acts.reset(fmt, n, n_tok);
                    let a_std: Vec<Buf> = if integer {
                        (0..n_tok)
                            .map(|t| unit_scale_acts(&mut rng, fmt, n, &mut acts, t))
                            .collect()
                    } else {
                        let x = floats(&mut rng, n * n_tok);
                        reference.quantize_acts(&x, n, &mut acts);
                        (0..n_tok)
                            .map(|t| quantized(a_ty, &x[t * n..(t + 1) * n]))
                            .collect()
                    };
                    let packed = PackedMatrix::pack(ty, w.bytes(), rows, n);
                    let run = |k: &Kernels| {
                        let mut out = vec![f32::NAN; n_tok * (rows + 3)];
                        let job = PackedJob {
                            layout,
                            groups: packed.groups(0, rows),
                            cols: n,
                            acts: acts.bytes(),
                            act_stride: acts.stride(),
                            n_tok,
                            out: out.as_mut_ptr(),
                            out_stride: rows + 3,
                        };
                        // SAFETY: `out` is [n_tok][rows + 3], only this call touches it.
                        unsafe { k.for_type(ty).unwrap().run_packed(&job) };
                        out
                    };
                    let want = run(&scalar);
                    for t in 0..n_tok {
                        for r in 0..rows {
                            let wr = &w.bytes()[r * row_bytes..(r + 1) * row_bytes];
                            let exact = dot::vec_dot(ty, wr, a_std[t].bytes());
                            let got = want[t * (rows + 3) + r];
                            let scale = abs_scale(ty, wr, a_ty, a_std[t].bytes(), n);
                            let ok = if integer {
                                got == exact
                            } else {
                                ((got - exact) as f64).abs() <= 1e-5 * scale + 1e-30
                            };
                            assert!(ok, "{ty} {rows}x{n}, token {t}, row {r}: {got} vs {exact}");
                        }
                        for r in rows..rows + 3 {
                            assert!(want[t * (rows + 3) + r].is_nan(), "wrote past the rows");
                        }
                    }
                    for k in paths() {
                        if !k.for_type(ty).unwrap().has_packed() {
                            continue;
                        }
                        let got = run(&k);
                        assert!(
                            got.iter()
                                .zip(&want)
                                .all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{} {ty} {rows}x{n} x {n_tok}: differs from the scalar kernel",
                            k.path.name()
                        );
                    }
                }
            }
        }
    }
}
