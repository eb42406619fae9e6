//! The element-wise and attention parts of the forward pass, on f32 rows. Each function
//! takes the x86 vector kernels when the kernel table chose a SIMD path (AVX2 ones from
//! `quant::x86::f32ops`, and for the compute-bound attention blocks and exponentials
//! AVX-512 ones from `quant::x86::avx512::attention`), and the plain loops of [`scalar`]
//! otherwise; they agree to rounding.

#[cfg(target_arch = "x86_64")]
use crate::quant::kernels::{kernels, Path};

/// Whether the AVX2/FMA/F16C kernels may run: every x86 SIMD path requires those
/// features. (On AArch64 the plain loops below are what runs; NEON is part of the
/// baseline there, and the compiler vectorizes the element-wise ones.)
#[cfg(target_arch = "x86_64")]
#[inline]
fn simd() -> bool {
    kernels().path != Path::Scalar
}

/// The NEON kernels, where the table chose a NEON path: `neon!(f(args))` returns
/// `quant::aarch64::f32ops::f(args)` then.
macro_rules! neon {
    ($simd:ident($($arg:expr),*)) => {
        #[cfg(target_arch = "aarch64")]
        if matches!(
            crate::quant::kernels::kernels().path,
            crate::quant::kernels::Path::Neon | crate::quant::kernels::Path::NeonDot
        ) {
            // SAFETY: NEON is part of every AArch64 CPU.
            return unsafe { crate::quant::aarch64::f32ops::$simd($($arg),*) };
        }
    };
}

macro_rules! dispatch {
    (avx512 $simd:ident($($arg:expr),*), $scalar:expr) => {{
        #[cfg(target_arch = "x86_64")]
        if kernels().path == Path::Avx512 {
            // SAFETY: the AVX-512 path is only chosen on a CPU that has it.
            return unsafe { crate::quant::x86::avx512::attention::$simd($($arg),*) };
        }
        dispatch!($simd($($arg),*), $scalar)
    }};
    ($simd:ident($($arg:expr),*), $scalar:expr) => {{
        #[cfg(target_arch = "x86_64")]
        if simd() {
            // SAFETY: a SIMD path is only chosen on a CPU with AVX2, FMA and F16C.
            return unsafe { crate::quant::x86::f32ops::$simd($($arg),*) };
        }
        $scalar
    }};
}

/// `out = x / rms(x) * weight`, the RMSNorm of Llama (mean of squares in f32, as
/// transformers computes it).
pub fn rms_norm(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    let mean_sq = sum_sq(x) / x.len() as f32;
    let scale = 1.0 / (mean_sq + eps).sqrt();
    scale_mul(out, x, scale, weight);
}

fn sum_sq(x: &[f32]) -> f32 {
    neon!(sum_sq(x));
    dispatch!(sum_sq(x), scalar::sum_sq(x))
}

/// `out = w * (x * scale)`.
pub fn scale_mul(out: &mut [f32], x: &[f32], scale: f32, w: &[f32]) {
    dispatch!(
        scale_mul(out, x, scale, w),
        scalar::scale_mul(out, x, scale, w)
    )
}

/// SwiGLU: `gate = silu(gate) * up`.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    dispatch!(silu_mul(gate, up), scalar::silu_mul(gate, up))
}

pub fn add_assign(x: &mut [f32], y: &[f32]) {
    dispatch!(add_assign(x, y), scalar::add_assign(x, y))
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    neon!(dot(a, b));
    dispatch!(dot(a, b), scalar::dot(a, b))
}

/// `Σ a_i * b_i` with `b` as f16 bits (an f16 KV cache row).
pub fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
    neon!(dot_f16(a, b));
    dispatch!(dot_f16(a, b), scalar::dot_f16(a, b))
}

/// `y += a * x`
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    dispatch!(axpy(a, x, y), scalar::axpy(a, x, y))
}

/// `y += a * x` with `x` as f16 bits (an f16 KV cache row).
pub fn axpy_f16(a: f32, x: &[u16], y: &mut [f32]) {
    neon!(axpy_f16(a, x, y));
    dispatch!(axpy_f16(a, x, y), scalar::axpy_f16(a, x, y))
}

/// Returns from the calling function through the path's transposing kernel, where the
/// block's shape suits its groups of rows (sixteen with AVX-512, eight with AVX2) and
/// pieces of a row (as many values).
macro_rules! keys_t_simd {
    ($src:expr, $stride:expr, $n:expr, $kt:expr, $w:expr) => {
        #[cfg(target_arch = "x86_64")]
        {
            let fits = |g: usize| {
                $n >= 1 && $n.next_multiple_of(g) <= $w && ($kt.len() / $w).is_multiple_of(g)
            };
            use crate::quant::x86;
            if kernels().path == Path::Avx512 && fits(16) {
                // SAFETY: the AVX-512 path is only chosen on a CPU that has it; the shape
                // is checked above, the lengths by the kernel.
                return unsafe { x86::avx512::kv_block::keys_t($src, $stride, $n, $kt, $w) };
            }
            if simd() && fits(8) {
                // SAFETY: a SIMD path is only chosen on a CPU with AVX2, FMA and F16C;
                // as above for the rest.
                return unsafe { x86::avx2::kv_block::keys_t($src, $stride, $n, $kt, $w) };
            }
        }
    };
}

/// `kt[d * w + j]` ← value `d` of key row `j` (`src[j * stride..]`, f16 bits) for
/// `j < n` and `d < kt.len() / w`: a block of cached keys, column-major. Columns from `n`
/// up to the next multiple of 16 may get copies of row `n - 1`.
pub fn keys_t_f16(src: &[u16], stride: usize, n: usize, kt: &mut [f32], w: usize) {
    keys_t_simd!(src, stride, n, kt, w);
    scalar::keys_t(src, stride, n, kt, w, |h| half::f16::from_bits(h).to_f32())
}

/// As [`keys_t_f16`], for f32 keys.
pub fn keys_t_f32(src: &[f32], stride: usize, n: usize, kt: &mut [f32], w: usize) {
    keys_t_simd!(src, stride, n, kt, w);
    scalar::keys_t(src, stride, n, kt, w, |x| x)
}

/// `out[j] = Σ_d q[d] * kt[d * out.len() + j]`: one query against a block of keys
/// stored column-major (`kt` is `[q.len()][out.len()]`).
pub fn dot_columns(q: &[f32], kt: &[f32], out: &mut [f32]) {
    neon!(dot_columns(q, kt, out));
    dispatch!(
        avx512 dot_columns(q, kt, out),
        scalar::dot_columns(q, kt, out)
    )
}

/// `out += Σ_j p[j] * rows[j * out.len()..]`: value rows weighted by probabilities.
pub fn add_weighted_rows(p: &[f32], rows: &[f32], out: &mut [f32]) {
    dispatch!(
        avx512 add_weighted_rows(p, rows, out),
        scalar::add_weighted_rows(p, rows, out)
    )
}

/// [`dot_columns`] for four query rows at once (`q`: `[4][d]`, `kt`: `[d][32]`, `out`:
/// `[4][32]`).
pub fn dot_columns4(q: &[f32], kt: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if kernels().path == Path::Avx512 {
        // SAFETY: the AVX-512 path is only chosen on a CPU that has it.
        return unsafe { crate::quant::x86::avx512::attention::dot_columns4(q, kt, out) };
    }
    let d = q.len() / 4;
    for (q, out) in q.chunks_exact(d).zip(out.chunks_exact_mut(32)) {
        dot_columns(q, &kt[..32 * d], out);
    }
}

/// [`add_weighted_rows`] for four rows of 32 probabilities at once (`p`: `[4][32]`,
/// `rows`: `[32][d]`, `out`: `[4][d]`).
pub fn add_weighted_rows4(p: &[f32], rows: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if kernels().path == Path::Avx512 {
        // SAFETY: the AVX-512 path is only chosen on a CPU that has it.
        return unsafe { crate::quant::x86::avx512::attention::add_weighted_rows4(p, rows, out) };
    }
    let d = out.len() / 4;
    for (p, out) in p.chunks_exact(32).zip(out.chunks_exact_mut(d)) {
        add_weighted_rows(p, &rows[..32 * d], out);
    }
}

/// `x *= s`
pub fn scale(x: &mut [f32], s: f32) {
    dispatch!(scale(x, s), scalar::scale(x, s))
}

/// f16 values (as bits) to f32.
pub fn f16_to_f32(src: &[u16], out: &mut [f32]) {
    neon!(f16_to_f32(src, out));
    dispatch!(f16_to_f32(src, out), scalar::f16_to_f32(src, out))
}

/// The largest value (-inf for none).
pub fn max(x: &[f32]) -> f32 {
    neon!(max(x));
    dispatch!(max(x), scalar::max(x))
}

/// `x = e^(x - max)`, returning the sum.
pub fn exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
    neon!(exp_sub_sum(x, max));
    dispatch!(
        avx512 exp_sub_sum(x, max),
        scalar::exp_sub_sum(x, max)
    )
}

/// In-place softmax with the maximum subtracted first.
pub fn softmax(x: &mut [f32]) {
    let m = max(x);
    let sum = exp_sub_sum(x, m);
    scale(x, 1.0 / sum);
}

/// The reference loops.
pub mod scalar {
    pub fn sum_sq(x: &[f32]) -> f32 {
        x.iter().map(|v| v * v).sum()
    }

    pub fn scale_mul(out: &mut [f32], x: &[f32], scale: f32, w: &[f32]) {
        for ((o, &v), &w) in out.iter_mut().zip(x).zip(w) {
            *o = w * (v * scale);
        }
    }

    pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
        for (g, &u) in gate.iter_mut().zip(up) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
    }

    pub fn add_assign(x: &mut [f32], y: &[f32]) {
        for (a, &b) in x.iter_mut().zip(y) {
            *a += b;
        }
    }

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        // Eight independent sums keep the loop free of a serial dependency.
        let mut acc = [0.0f32; 8];
        let (ca, ra) = a.as_chunks::<8>();
        let (cb, rb) = b.as_chunks::<8>();
        for (x, y) in ca.iter().zip(cb) {
            for i in 0..8 {
                acc[i] += x[i] * y[i];
            }
        }
        let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
        acc.iter().sum::<f32>() + tail
    }

    pub fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(&x, &h)| x * half::f16::from_bits(h).to_f32())
            .sum()
    }

    pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += a * x;
        }
    }

    pub fn axpy_f16(a: f32, x: &[u16], y: &mut [f32]) {
        for (y, &h) in y.iter_mut().zip(x) {
            *y += a * half::f16::from_bits(h).to_f32();
        }
    }

    pub fn scale(x: &mut [f32], s: f32) {
        for v in x {
            *v *= s;
        }
    }

    pub fn f16_to_f32(src: &[u16], out: &mut [f32]) {
        for (o, &h) in out.iter_mut().zip(src) {
            *o = half::f16::from_bits(h).to_f32();
        }
    }

    pub fn keys_t<T: Copy>(
        src: &[T],
        stride: usize,
        n: usize,
        kt: &mut [f32],
        w: usize,
        f32_of: impl Fn(T) -> f32,
    ) {
        let hd = kt.len() / w;
        for j in 0..n {
            for (d, &x) in src[j * stride..][..hd].iter().enumerate() {
                kt[d * w + j] = f32_of(x);
            }
        }
    }

    pub fn dot_columns(q: &[f32], kt: &[f32], out: &mut [f32]) {
        let w = out.len();
        for (j, o) in out.iter_mut().enumerate() {
            *o = q.iter().enumerate().map(|(d, &x)| x * kt[d * w + j]).sum();
        }
    }

    pub fn add_weighted_rows(p: &[f32], rows: &[f32], out: &mut [f32]) {
        for (&w, row) in p.iter().zip(rows.chunks_exact(out.len())) {
            axpy(w, row, out);
        }
    }

    pub fn max(x: &[f32]) -> f32 {
        x.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }

    pub fn exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
        let mut sum = 0.0;
        for v in x.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_of_a_constant_is_the_weight() {
        let mut out = [0.0; 4];
        rms_norm(&mut out, &[3.0; 4], &[1.0, 2.0, 3.0, 4.0], 0.0);
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn softmax_sums_to_one_and_survives_large_values() {
        let mut x = [1000.0, 1000.0, f32::NEG_INFINITY];
        softmax(&mut x);
        assert_eq!(x, [0.5, 0.5, 0.0]);
    }

    #[test]
    fn vector_ops_match_the_scalar_loops() {
        for n in [1, 7, 8, 9, 16, 31, 64, 100, 576] {
            let a: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.37)
                .collect();
            let b: Vec<f32> = (0..n)
                .map(|i| ((i * 53 % 29) as f32 - 14.0) * 0.21)
                .collect();
            let close = |x: f32, y: f32, scale: f32| (x - y).abs() <= 1e-5 * scale.max(1.0);
            let abs: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
            assert!(close(dot(&a, &b), scalar::dot(&a, &b), abs), "dot n = {n}");
            let h: Vec<u16> = b
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect();
            assert!(
                close(dot_f16(&a, &h), scalar::dot_f16(&a, &h), abs),
                "dot_f16 n = {n}"
            );
            let (mut f, mut g) = (vec![0.0; n], vec![0.0; n]);
            f16_to_f32(&h, &mut f);
            scalar::f16_to_f32(&h, &mut g);
            assert_eq!(f, g);
            let sq: f32 = a.iter().map(|v| v * v).sum();
            assert!(close(sum_sq(&a), scalar::sum_sq(&a), sq), "sum_sq n = {n}");
            scale_mul(&mut f, &a, 0.3, &b);
            scalar::scale_mul(&mut g, &a, 0.3, &b);
            assert_eq!(f, g, "scale_mul n = {n}");
            let (mut f, mut g) = (a.clone(), a.clone());
            silu_mul(&mut f, &b);
            scalar::silu_mul(&mut g, &b);
            for (x, y) in f.iter().zip(&g) {
                assert!(
                    (x - y).abs() <= 4e-7 * y.abs().max(1e-3),
                    "silu n = {n}: {x} vs {y}"
                );
            }
            let (mut f, mut g) = (a.clone(), a.clone());
            let m = max(&a);
            assert_eq!(m, scalar::max(&a));
            let (s1, s2) = (exp_sub_sum(&mut f, m), scalar::exp_sub_sum(&mut g, m));
            assert!((s1 - s2).abs() <= 1e-6 * s2);
            for (x, y) in f.iter().zip(&g) {
                assert!((x - y).abs() <= 3e-7 * y.abs(), "exp n = {n}: {x} vs {y}");
            }
            let (mut f, mut g) = (b.clone(), b.clone());
            axpy_f16(0.7, &h, &mut f);
            scalar::axpy_f16(0.7, &h, &mut g);
            for (x, y) in f.iter().zip(&g) {
                assert!((x - y).abs() <= 4e-7 * x.abs().max(1.0), "axpy_f16 n = {n}");
            }
            let (mut f, mut g) = (b.clone(), b.clone());
            axpy(0.7, &a, &mut f);
            scalar::axpy(0.7, &a, &mut g);
            for ((x, y), v) in f.iter().zip(&g).zip(&a) {
                // One rounding (fused) against two.
                assert!(
                    (x - y).abs() <= 2e-7 * (0.7 * v).abs().max(y.abs()),
                    "axpy n = {n}"
                );
            }
        }
    }

    type DotColumns = fn(&[f32], &[f32], &mut [f32]);

    /// Every implementation of the two attention block kernels this CPU can run.
    fn block_kernels() -> Vec<(&'static str, DotColumns, DotColumns)> {
        #[allow(unused_mut)]
        let mut all: Vec<(&str, DotColumns, DotColumns)> =
            vec![("dispatched", dot_columns, add_weighted_rows)];
        #[cfg(target_arch = "x86_64")]
        {
            use crate::quant::x86;
            if x86::has_avx2() {
                // SAFETY: the CPU has AVX2, FMA and F16C.
                all.push((
                    "avx2",
                    |q, k, o| unsafe { x86::f32ops::dot_columns(q, k, o) },
                    |p, r, o| unsafe { x86::f32ops::add_weighted_rows(p, r, o) },
                ));
            }
            if x86::has_avx512() {
                // SAFETY: the CPU has the AVX-512 features of the kernels.
                all.push((
                    "avx512",
                    |q, k, o| unsafe { x86::avx512::attention::dot_columns(q, k, o) },
                    |p, r, o| unsafe { x86::avx512::attention::add_weighted_rows(p, r, o) },
                ));
            }
        }
        all
    }

    /// The four-row attention kernels give each row the bits of the single-row kernels
    /// (attention must not depend on how rows are grouped), and match the scalar loops.
    #[test]
    fn four_row_block_kernels_match_the_scalar_loops() {
        let value = |i: usize| ((i * 7919 % 1009) as f32 / 504.5 - 1.0) * 1.3;
        for d in [1, 7, 16, 64, 80, 100, 128] {
            let q: Vec<f32> = (0..4 * d).map(|i| value(i + 5)).collect();
            let kt: Vec<f32> = (0..32 * d).map(value).collect();
            let (mut f, mut g) = (vec![0.0; 128], vec![0.0; 128]);
            dot_columns4(&q, &kt, &mut f);
            for r in 0..4 {
                dot_columns(&q[r * d..(r + 1) * d], &kt, &mut g[32 * r..32 * r + 32]);
            }
            assert_eq!(
                f, g,
                "dot_columns4 d {d}: rows differ from single-row calls"
            );
            for r in 0..4 {
                scalar::dot_columns(&q[r * d..(r + 1) * d], &kt, &mut g[32 * r..32 * r + 32]);
            }
            for (i, (x, y)) in f.iter().zip(&g).enumerate() {
                let (r, j) = (i / 32, i % 32);
                let abs: f32 = (0..d).map(|k| (q[r * d + k] * kt[32 * k + j]).abs()).sum();
                assert!((x - y).abs() <= 1e-6 * abs.max(1.0), "dot_columns4 d {d}");
            }
            let p: Vec<f32> = (0..128).map(|i| value(i + 9).abs()).collect();
            let init: Vec<f32> = (0..4 * d).map(|i| value(i + 3)).collect();
            let (mut f, mut g) = (init.clone(), init.clone());
            add_weighted_rows4(&p, &kt, &mut f);
            for r in 0..4 {
                add_weighted_rows(&p[32 * r..32 * r + 32], &kt, &mut g[r * d..(r + 1) * d]);
            }
            assert_eq!(
                f, g,
                "add_weighted_rows4 d {d}: rows differ from single-row calls"
            );
            let mut g = init.clone();
            for r in 0..4 {
                scalar::add_weighted_rows(&p[32 * r..32 * r + 32], &kt, &mut g[r * d..(r + 1) * d]);
            }
            for (i, (x, y)) in f.iter().zip(&g).enumerate() {
                let (r, c) = (i / d, i % d);
                let abs: f32 = init[i].abs()
                    + (0..32)
                        .map(|j| (p[32 * r + j] * kt[j * d + c]).abs())
                        .sum::<f32>();
                assert!((x - y).abs() <= 1e-6 * abs.max(1.0), "weighted4 d {d}");
            }
        }
    }

    /// The attention block kernels, over widths and depths around the vector sizes.
    #[test]
    fn block_kernels_match_the_scalar_loops() {
        let value = |i: usize| ((i * 7919 % 1009) as f32 / 504.5 - 1.0) * 1.7;
        for (name, dot_columns, add_weighted_rows) in block_kernels() {
            for (rows, cols) in [
                (1, 1),
                (3, 8),
                (64, 32),
                (65, 33),
                (128, 31),
                (63, 40),
                (7, 72),
                (5, 144),
            ] {
                let q: Vec<f32> = (0..rows).map(|i| value(i + 11)).collect();
                let m: Vec<f32> = (0..rows * cols).map(value).collect();
                let (mut f, mut g) = (vec![0.0; cols], vec![0.0; cols]);
                dot_columns(&q, &m, &mut f);
                scalar::dot_columns(&q, &m, &mut g);
                for (j, (x, y)) in f.iter().zip(&g).enumerate() {
                    let abs: f32 = (0..rows).map(|d| (q[d] * m[d * cols + j]).abs()).sum();
                    assert!(
                        (x - y).abs() <= 1e-6 * abs.max(1.0),
                        "{name} dot_columns {rows}x{cols}"
                    );
                }
                // `q` as `rows` weights over rows of `cols` values
                let init: Vec<f32> = (0..cols).map(|i| value(i + 3)).collect();
                let (mut f, mut g) = (init.clone(), init.clone());
                add_weighted_rows(&q, &m, &mut f);
                scalar::add_weighted_rows(&q, &m, &mut g);
                for (c, (x, y)) in f.iter().zip(&g).enumerate() {
                    let abs: f32 = init[c].abs()
                        + (0..rows)
                            .map(|j| (q[j] * m[j * cols + c]).abs())
                            .sum::<f32>();
                    assert!(
                        (x - y).abs() <= 1e-6 * abs.max(1.0),
                        "{name} weighted {rows}x{cols}"
                    );
                }
            }
        }
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.25).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }

    /// The transposing key kernels (AVX-512 and AVX2) move every value where the plain
    /// loop puts it, f16 and f32, for partial groups of rows and rows longer than a head.
    #[test]
    fn keys_transpose_like_the_plain_loop() {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::quant::x86::{self, avx2, avx512};
            type Kernel<T> = unsafe fn(&[T], usize, usize, &mut [f32], usize);
            let mut kernels: Vec<(&str, usize, Kernel<f32>, Kernel<u16>)> = Vec::new();
            if x86::has_avx2() {
                kernels.push(("avx2", 8, avx2::kv_block::keys_t, avx2::kv_block::keys_t));
            }
            if x86::has_avx512() {
                use avx512::kv_block::keys_t;
                kernels.push(("avx512", 16, keys_t, keys_t));
            }
            let shapes = [
                (1, 16, 16),
                (16, 64, 192),
                (23, 128, 128),
                (32, 64, 64),
                (9, 32, 48),
            ];
            for (name, g, for_f32, for_f16) in kernels {
                for (n, hd, stride) in shapes {
                    let f: Vec<f32> = (0..n * stride).map(|i| i as f32 * 0.25 - 9.0).collect();
                    let h: Vec<u16> = f
                        .iter()
                        .map(|&x| half::f16::from_f32(x).to_bits())
                        .collect();
                    let w = 32;
                    let (mut want, mut got) = (vec![0.0f32; hd * w], vec![-1.0f32; hd * w]);
                    let first_n = |v: &[f32]| -> Vec<f32> {
                        v.chunks(w).flat_map(|r| r[..n].to_vec()).collect()
                    };
                    scalar::keys_t(&f, stride, n, &mut want, w, |x| x);
                    // SAFETY: the CPU has the path's features; the shapes meet the
                    // kernels' conditions.
                    unsafe { for_f32(&f, stride, n, &mut got, w) };
                    assert_eq!(first_n(&got), first_n(&want), "{name} f32 {n}x{hd}");
                    // the group's last columns repeat row n - 1; later ones are untouched
                    for row in got.chunks(w) {
                        let pad = n.next_multiple_of(g);
                        assert!(row[n..pad].iter().all(|&x| x == row[n - 1]), "{name} pad");
                        assert!(row[pad..].iter().all(|&x| x == -1.0), "{name} {n}: past");
                    }
                    scalar::keys_t(&h, stride, n, &mut want, w, |x| {
                        half::f16::from_bits(x).to_f32()
                    });
                    // SAFETY: as above.
                    unsafe { for_f16(&h, stride, n, &mut got, w) };
                    assert_eq!(first_n(&got), first_n(&want), "{name} f16 {n}x{hd}");
                }
            }
        }
    }
}
