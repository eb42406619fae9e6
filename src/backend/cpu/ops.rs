//! The element-wise and attention parts of the forward pass, on f32 rows. Each function
//! takes the vector kernels when the kernel table chose a SIMD path (AVX2 ones from
//! `quant::x86::f32ops`, for the exponentials AVX-512 ones, and for the attention's
//! scores and weighted values each path's own from `quant::*::attention`), and the plain
//! loops of [`scalar`] otherwise; they agree to rounding.

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

/// Positions whose keys a KV cache stores together, transposed (`[head dim][KEY_GROUP]`),
/// so that a vector of them is sixteen positions' values of one dimension.
pub const KEY_GROUP: usize = 16;

/// Keys or values of one KV head for a run of positions, as the cache stores them: what
/// the attention kernels read without decoding first.
#[derive(Clone, Copy)]
pub enum Cached<'a> {
    F32(&'a [f32]),
    /// f16 bits
    F16(&'a [u16]),
}

impl<'a> Cached<'a> {
    /// The first `len` values.
    pub fn first(self, len: usize) -> Cached<'a> {
        match self {
            Cached::F32(x) => Cached::F32(&x[..len]),
            Cached::F16(x) => Cached::F16(&x[..len]),
        }
    }
}

/// Returns from the calling function through the path's attention kernel `$f` for the
/// cached rows' element type, where rows of `$len` values suit its vectors (without a
/// length, wherever the path has the kernel).
macro_rules! cached_simd {
    ($f:ident($a:expr, $rows:expr, $out:expr)) => {
        // Sixteen suits every path's vectors.
        cached_simd!($f($a, $rows, $out), 16usize)
    };
    ($f:ident($a:expr, $rows:expr, $out:expr), $len:expr) => {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::quant::x86::{avx2, avx512};
            if kernels().path == Path::Avx512 && $len.is_multiple_of(16) {
                // SAFETY: the AVX-512 path is only chosen on a CPU that has it; the
                // kernel checks the lengths.
                return unsafe {
                    match $rows {
                        Cached::F32(r) => avx512::attention::$f($a, r, $out),
                        Cached::F16(r) => avx512::attention::$f($a, r, $out),
                    }
                };
            }
            if simd() && $len.is_multiple_of(8) {
                // SAFETY: a SIMD path is only chosen on a CPU with AVX2, FMA and F16C; as
                // above for the rest.
                return unsafe {
                    match $rows {
                        Cached::F32(r) => avx2::attention::$f($a, r, $out),
                        Cached::F16(r) => avx2::attention::$f($a, r, $out),
                    }
                };
            }
        }
        #[cfg(target_arch = "aarch64")]
        if $len.is_multiple_of(8)
            && matches!(
                crate::quant::kernels::kernels().path,
                crate::quant::kernels::Path::Neon | crate::quant::kernels::Path::NeonDot
            )
        {
            use crate::quant::aarch64::attention;
            // SAFETY: NEON is part of every AArch64 CPU; the kernel checks the lengths.
            return unsafe {
                match $rows {
                    Cached::F32(r) => attention::$f($a, r, $out),
                    Cached::F16(r) => attention::$f($a, r, $out),
                }
            };
        }
    };
}

fn f16_bits_to_f32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

/// `out[j] = q · key j`, with the keys of a run of `out.len()` positions stored
/// transposed in groups of [`KEY_GROUP`] (`kt`: `[group][q.len()][KEY_GROUP]`; a last
/// group's lanes past the run are ignored). Each path sums a position the same way in
/// every group and whether its key is f16 or f32 (f16 converts exactly): a token's
/// scores have the same bits from the cache's keys as from keys decoded first.
pub fn scores(q: &[f32], kt: Cached, out: &mut [f32]) {
    // The kernels' vectors run along a group of positions, any head length.
    cached_simd!(scores(q, kt, out));
    match kt {
        Cached::F32(k) => scalar::scores(q, k, out, |x| x),
        Cached::F16(k) => scalar::scores(q, k, out, f16_bits_to_f32),
    }
}

/// [`scores`] of four queries (`q`: `[4][hd]`) against the same keys, into `out`
/// (`[4][n]`), each row with [`scores`]' bits.
pub fn scores4(q: &[f32], kt: Cached, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if kernels().path == Path::Avx512 {
        use crate::quant::x86::avx512::attention::scores4;
        // SAFETY: the AVX-512 path is only chosen on a CPU that has it; the kernel checks
        // the lengths.
        return unsafe {
            match kt {
                Cached::F32(k) => scores4(q, k, out),
                Cached::F16(k) => scores4(q, k, out),
            }
        };
    }
    let (hd, n) = (q.len() / 4, out.len() / 4);
    for (q, out) in q.chunks_exact(hd).zip(out.chunks_exact_mut(n)) {
        scores(q, kt, out);
    }
}

/// `out += Σ_j p[j] * rows[j]`: the value rows of a run of `p.len()` positions (rows of
/// `out.len()`), weighted by their probabilities. Each output value is one chain of
/// multiply-adds over `j` in order, the same for f16 and f32 rows.
pub fn add_weighted(p: &[f32], rows: Cached, out: &mut [f32]) {
    cached_simd!(add_weighted(p, rows, out), out.len());
    match rows {
        Cached::F32(r) => scalar::add_weighted(p, r, out, |x| x),
        Cached::F16(r) => scalar::add_weighted(p, r, out, f16_bits_to_f32),
    }
}

/// [`add_weighted`] for four rows of 32 probabilities at once (`p`: `[4][32]`, `rows`:
/// `[32][d]`, `out`: `[4][d]`), each row with [`add_weighted`]'s bits.
pub fn add_weighted_rows4(p: &[f32], rows: &[f32], out: &mut [f32]) {
    let d = out.len() / 4;
    #[cfg(target_arch = "x86_64")]
    if kernels().path == Path::Avx512 && d.is_multiple_of(16) {
        // SAFETY: the AVX-512 path is only chosen on a CPU that has it; the kernel checks
        // the lengths.
        return unsafe { crate::quant::x86::avx512::attention::add_weighted_rows4(p, rows, out) };
    }
    for (p, out) in p.chunks_exact(32).zip(out.chunks_exact_mut(d)) {
        add_weighted(p, Cached::F32(&rows[..32 * d]), out);
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
    use super::KEY_GROUP;

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

    /// Each position's head in four chains (`d % 4`), as the vector kernels sum it.
    pub fn scores<T: Copy>(q: &[f32], kt: &[T], out: &mut [f32], f32_of: impl Fn(T) -> f32) {
        let hd = q.len();
        for (j, o) in out.iter_mut().enumerate() {
            let group = &kt[j / KEY_GROUP * KEY_GROUP * hd..];
            let mut c = [0.0f32; 4];
            for (d, &x) in q.iter().enumerate() {
                c[d % 4] += x * f32_of(group[d * KEY_GROUP + j % KEY_GROUP]);
            }
            *o = (c[0] + c[1]) + (c[2] + c[3]);
        }
    }

    pub fn add_weighted<T: Copy>(
        p: &[f32],
        rows: &[T],
        out: &mut [f32],
        f32_of: impl Fn(T) -> f32,
    ) {
        for (&w, row) in p.iter().zip(rows.chunks_exact(out.len())) {
            for (o, &x) in out.iter_mut().zip(row) {
                *o += w * f32_of(x);
            }
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

    type Kernel<T> = unsafe fn(&[f32], &[T], &mut [f32]);

    /// One path's attention kernels, for f32 and f16 rows, and the multiple of the head
    /// length its weighting takes.
    struct AttnKernels {
        name: &'static str,
        multiple: usize,
        scores: (Kernel<f32>, Kernel<u16>),
        weighted: (Kernel<f32>, Kernel<u16>),
    }

    /// The dispatching functions, and every SIMD kernel this CPU can run.
    fn attention_kernels() -> Vec<AttnKernels> {
        #[allow(unused_mut)]
        let mut all = vec![AttnKernels {
            name: "dispatched",
            multiple: 1,
            scores: (
                |q, k, o| scores(q, Cached::F32(k), o),
                |q, k, o| scores(q, Cached::F16(k), o),
            ),
            weighted: (
                |p, r, o| add_weighted(p, Cached::F32(r), o),
                |p, r, o| add_weighted(p, Cached::F16(r), o),
            ),
        }];
        #[cfg(target_arch = "x86_64")]
        {
            use crate::quant::x86::{self, avx2, avx512};
            if x86::has_avx2() {
                use avx2::attention::{add_weighted, scores};
                all.push(AttnKernels {
                    name: "avx2",
                    multiple: 8,
                    scores: (scores, scores),
                    weighted: (add_weighted, add_weighted),
                });
            }
            if x86::has_avx512() {
                use avx512::attention::{add_weighted, scores};
                all.push(AttnKernels {
                    name: "avx512",
                    multiple: 16,
                    scores: (scores, scores),
                    weighted: (add_weighted, add_weighted),
                });
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            use crate::quant::aarch64::attention::{add_weighted, scores};
            all.push(AttnKernels {
                name: "neon",
                multiple: 8,
                scores: (scores, scores),
                weighted: (add_weighted, add_weighted),
            });
        }
        all
    }

    /// Each path's scores and weighted values against the plain loops, over head lengths
    /// and runs around the vector sizes; f16 keys and rows give the bits of the same ones
    /// as f32, and a position's score does not depend on the run's length.
    #[test]
    fn attention_kernels_match_the_scalar_loops() {
        let value = |i: usize| ((i * 7919 % 1009) as f32 / 504.5 - 1.0) * 1.7;
        for k in attention_kernels() {
            for hd in [8usize, 16, 24, 64, 80, 96, 128, 256, 7, 6, 5] {
                for n in [1, 5, 8, 16, 17, 31, 32] {
                    let name = format!("{} hd {hd} n {n}", k.name);
                    let q: Vec<f32> = (0..hd).map(|i| value(i + 11)).collect();
                    // f16-exact values, so both element types hold the same rows
                    let rows: Vec<f32> = (0..n * hd)
                        .map(|i| half::f16::from_f32(value(i)).to_f32())
                        .collect();
                    let to_bits = |x: &[f32]| -> Vec<u16> {
                        x.iter()
                            .map(|&x| half::f16::from_f32(x).to_bits())
                            .collect()
                    };
                    // the keys transposed in groups; lanes past the run hold other values
                    let groups = n.div_ceil(KEY_GROUP);
                    let mut kt: Vec<f32> = (0..groups * KEY_GROUP * hd)
                        .map(|i| half::f16::from_f32(value(i + 5)).to_f32())
                        .collect();
                    for (j, row) in rows.chunks_exact(hd).enumerate() {
                        let group = &mut kt[j / KEY_GROUP * KEY_GROUP * hd..];
                        for (d, &x) in row.iter().enumerate() {
                            group[d * KEY_GROUP + j % KEY_GROUP] = x;
                        }
                    }

                    let (mut f, mut h, mut g) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
                    // SAFETY: the CPU has the path's features; the lengths suit it.
                    unsafe { (k.scores.0)(&q, &kt, &mut f) };
                    // SAFETY: as above.
                    unsafe { (k.scores.1)(&q, &to_bits(&kt), &mut h) };
                    scalar::scores(&q, &kt, &mut g, |x| x);
                    assert_eq!(f, h, "{name}: scores of f16 keys differ from f32");
                    for (j, (x, y)) in f.iter().zip(&g).enumerate() {
                        let key = &rows[j * hd..][..hd];
                        let abs: f32 = q.iter().zip(key).map(|(a, b)| (a * b).abs()).sum();
                        assert!((x - y).abs() <= 1e-6 * abs.max(1.0), "{name} scores");
                    }
                    // A shorter run: the same bits for the positions it keeps.
                    let mut first = vec![0.0; n.div_ceil(2)];
                    // SAFETY: as above.
                    unsafe { (k.scores.0)(&q, &kt, &mut first) };
                    assert_eq!(first, f[..first.len()], "{name}: a score moved");

                    if !hd.is_multiple_of(k.multiple) {
                        continue;
                    }
                    let p: Vec<f32> = (0..n).map(|i| value(i + 9).abs()).collect();
                    let init: Vec<f32> = (0..hd).map(|i| value(i + 3)).collect();
                    let (mut f, mut h, mut g) = (init.clone(), init.clone(), init.clone());
                    // SAFETY: as above.
                    unsafe { (k.weighted.0)(&p, &rows, &mut f) };
                    // SAFETY: as above.
                    unsafe { (k.weighted.1)(&p, &to_bits(&rows), &mut h) };
                    scalar::add_weighted(&p, &rows, &mut g, |x| x);
                    assert_eq!(f, h, "{name}: weighted f16 rows differ from f32");
                    for (c, (x, y)) in f.iter().zip(&g).enumerate() {
                        let abs = init[c].abs()
                            + (0..n).map(|j| (p[j] * rows[j * hd + c]).abs()).sum::<f32>();
                        assert!((x - y).abs() <= 1e-6 * abs.max(1.0), "{name} weighted");
                    }
                }
            }
        }
    }

    /// Four queries' scores in one call have each row's bits from [`scores`] alone.
    #[test]
    fn four_rows_score_like_one() {
        let value = |i: usize| ((i * 7919 % 1009) as f32 / 504.5 - 1.0) * 1.1;
        for (hd, n) in [(64, 32usize), (128, 32), (7, 17), (80, 5)] {
            let q: Vec<f32> = (0..4 * hd).map(|i| value(i + 1)).collect();
            let kt: Vec<f32> = (0..n.div_ceil(KEY_GROUP) * KEY_GROUP * hd)
                .map(value)
                .collect();
            let (mut f, mut g) = (vec![0.0; 4 * n], vec![0.0; 4 * n]);
            scores4(&q, Cached::F32(&kt), &mut f);
            for r in 0..4 {
                scores(&q[r * hd..][..hd], Cached::F32(&kt), &mut g[r * n..][..n]);
            }
            assert_eq!(
                f, g,
                "hd {hd} n {n}: four rows differ from single-row calls"
            );
        }
    }

    /// The four-row weighting gives each row the bits of [`add_weighted`] (attention must
    /// not depend on how rows are grouped).
    #[test]
    fn four_rows_weigh_like_one() {
        let value = |i: usize| ((i * 7919 % 1009) as f32 / 504.5 - 1.0) * 1.3;
        for d in [7, 8, 16, 64, 80, 128] {
            let v: Vec<f32> = (0..32 * d).map(value).collect();
            let p: Vec<f32> = (0..128).map(|i| value(i + 9).abs()).collect();
            let init: Vec<f32> = (0..4 * d).map(|i| value(i + 3)).collect();
            let (mut f, mut g) = (init.clone(), init.clone());
            add_weighted_rows4(&p, &v, &mut f);
            for r in 0..4 {
                let out = &mut g[r * d..(r + 1) * d];
                add_weighted(&p[32 * r..32 * r + 32], Cached::F32(&v), out);
            }
            assert_eq!(f, g, "d {d}: four rows differ from single-row calls");
        }
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.25).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }
}
