//! Round trips within each type's error bound, buffers of every alignment, and bad lengths.
//! (Bit-exactness against ggml itself is tests/quant_ggml.rs.)

use half::f16;

use super::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8K, BlockQ8_0, QK};
use super::{dequantize, quantize, GgmlType, QuantError};

/// splitmix64, with Box-Muller normals.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f32 {
        let (u1, u2) = (1.0 - self.uniform(), self.uniform());
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// Weight-like rows: normals at a random scale per 256 values, some 32-blocks of
/// uniform, constant or zero values, and a few outliers.
fn test_row(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut x: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
    for row in x.chunks_mut(256) {
        let scale = 10f32.powf(rng.uniform() as f32 * 4.0 - 3.0);
        row.iter_mut().for_each(|v| *v *= scale);
    }
    for block in x.chunks_mut(32) {
        match rng.next() % 16 {
            0 => block.fill(0.0),
            1 => block.fill(rng.normal()),
            2 => block
                .iter_mut()
                .for_each(|v| *v = rng.uniform() as f32 - 0.3),
            3 => block[rng.next() as usize % 32] *= 30.0,
            _ => {}
        }
    }
    x
}

fn round_trip(ty: GgmlType, x: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let mut q = vec![0u8; ty.bytes_for(x.len() as u64).unwrap() as usize];
    quantize(ty, x, &mut q).unwrap();
    let mut y = vec![0f32; x.len()];
    dequantize(ty, &q, &mut y).unwrap();
    (q, y)
}

fn absmax(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Checks every value of each block against `bound(block bytes, block inputs)`. Slack of
/// 1e-6 of the block's largest magnitude covers f32 rounding in `x * id` and `q * d`.
fn check_blocks<B: super::blocks::Block>(x: &[f32], bound: impl Fn(&B, &[f32]) -> f32) {
    let (q, y) = round_trip(B::TYPE, x);
    let blocks: Vec<B> = q
        .chunks_exact(std::mem::size_of::<B>())
        .map(bytemuck::pod_read_unaligned)
        .collect();
    for (i, ((b, x), y)) in blocks
        .iter()
        .zip(x.chunks(B::LEN))
        .zip(y.chunks(B::LEN))
        .enumerate()
    {
        let limit = bound(b, x) + 1e-6 * absmax(x);
        for (j, (&x, &y)) in x.iter().zip(y).enumerate() {
            assert!(
                (x - y).abs() <= limit,
                "{} block {i} value {j}: {x} decoded as {y}, bound {limit}",
                B::TYPE
            );
        }
    }
}

/// How far the f16 header field strays from the f32 the quantizer worked with.
fn f16_error(stored: f16, exact: f32) -> f32 {
    (stored.to_f32() - exact).abs()
}

fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold((f32::MAX, -f32::MAX), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// Bounds per value, for the scale `d` the quantizer computed in f32 and the f16 it
/// stored: half a step where values round to the nearest level; a whole step for the
/// symmetric types, whose grid puts the largest magnitude at -8 (-16) and can only reach
/// +7 (+15) on the other side; plus `|q| * |d - f16(d)|` (and `|m - f16(m)|`) for
/// decoding with the rounded header.
#[test]
fn legacy_quants_round_trip_within_a_step() {
    let mut rng = Rng(1);
    let x = test_row(&mut rng, 256 * 64);
    check_blocks::<BlockQ4_0>(&x, |b, x| {
        let d = absmax(x) / 8.0;
        d + 8.0 * f16_error(b.d, d.copysign(b.d.to_f32()))
    });
    check_blocks::<BlockQ5_0>(&x, |b, x| {
        let d = absmax(x) / 16.0;
        d + 16.0 * f16_error(b.d, d.copysign(b.d.to_f32()))
    });
    check_blocks::<BlockQ4_1>(&x, |b, x| {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        d / 2.0 + 15.0 * f16_error(b.d, d) + f16_error(b.m, min)
    });
    check_blocks::<BlockQ5_1>(&x, |b, x| {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        d / 2.0 + 31.0 * f16_error(b.d, d) + f16_error(b.m, min)
    });
    check_blocks::<BlockQ8_0>(&x, |b, x| {
        let d = absmax(x) / 127.0;
        d / 2.0 + 127.0 * f16_error(b.d, d)
    });
    // Q8_K keeps d in f32: half a step, nothing else.
    check_blocks::<BlockQ8K>(&x, |b, _| b.d.abs() / 2.0);
}

#[test]
fn q8_1_round_trips_like_q8_0_and_sums_its_quants() {
    let mut rng = Rng(2);
    let x = test_row(&mut rng, 32 * 64);
    let (q8_0, y8_0) = round_trip(GgmlType::Q8_0, &x);
    let (q8_1, y8_1) = round_trip(GgmlType::Q8_1, &x);
    assert_eq!(y8_0, y8_1);
    for ((a, b), x) in q8_0.chunks(34).zip(q8_1.chunks(36)).zip(x.chunks(QK)) {
        assert_eq!((&a[..2], &a[2..]), (&b[..2], &b[4..]));
        // s is the f16 of sum(q) times the unrounded f32 d.
        let block: super::blocks::BlockQ8_1 = bytemuck::pod_read_unaligned(b);
        let sum: i32 = block.qs.iter().map(|&q| q as i32).sum();
        let s = sum as f32 * (absmax(x) / 127.0);
        let f16_step = (s.abs() * 2f32.powi(-11)).max(2f32.powi(-24));
        assert!(
            (block.s.to_f32() - s).abs() <= f16_step,
            "{} vs {s}",
            block.s
        );
    }
}

/// ggml's test-quantize-fns: on `0.1 + 2 cos(i)`, `sqrt(sum of squared errors) / n` must
/// stay below `MAX_QUANTIZATION_TOTAL_ERROR` = 0.002 for every type at 4 bits or more.
#[test]
fn ggml_total_quantization_error() {
    let n = 32 * 128;
    let x: Vec<f32> = (0..n).map(|i| 0.1 + 2.0 * (i as f32).cos()).collect();
    for ty in GgmlType::ALL {
        let (_, y) = round_trip(ty, &x);
        let sum: f64 = x
            .iter()
            .zip(&y)
            .map(|(&a, &b)| ((a - b) as f64).powi(2))
            .sum();
        let err = sum.sqrt() as f32 / n as f32;
        assert!(err < 0.002, "{ty}: total error {err}");
    }
}

/// RMS error relative to the RMS of the signal, on weight-like rows. A uniform quantizer
/// of step s has an RMS error of s / sqrt(12). For 32 normals the range is about 4.1
/// sigma, so Q4_K's step is about 4.1/15 sigma (RMS error 0.079 sigma) and Q5_K's 4.1/31
/// (0.038); Q6_K's 16-value groups reach about 3.5 sigma, split into 64 levels (0.016).
/// The fitted scales and mins do better than these, and their six- and eight-bit
/// quantization does worse; the bounds leave a margin of a quarter over the estimates.
#[test]
fn k_quants_relative_rms_error() {
    let mut rng = Rng(3);
    let x: Vec<f32> = (0..256 * 32).map(|_| rng.normal()).collect();
    for (ty, bound) in [
        (GgmlType::Q4_K, 0.1),
        (GgmlType::Q5_K, 0.048),
        (GgmlType::Q6_K, 0.02),
    ] {
        let (_, y) = round_trip(ty, &x);
        let err: f64 = x
            .iter()
            .zip(&y)
            .map(|(&a, &b)| ((a - b) as f64).powi(2))
            .sum();
        let sig: f64 = x.iter().map(|&a| (a as f64).powi(2)).sum();
        let rel = (err / sig).sqrt();
        assert!(rel < bound, "{ty}: relative RMS error {rel}");
    }
}

#[test]
fn float_types_round_trip() {
    let mut rng = Rng(4);
    let x: Vec<f32> = (0..1000).map(|_| rng.normal() * 100.0).collect();
    assert_eq!(round_trip(GgmlType::F32, &x).1, x);
    let h: Vec<f32> = x.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
    assert_eq!(round_trip(GgmlType::F16, &h).1, h);
    let b: Vec<f32> = x
        .iter()
        .map(|&v| f32::from_bits(v.to_bits() & 0xffff_0000))
        .collect();
    assert_eq!(round_trip(GgmlType::BF16, &b).1, b);
}

/// Blocks viewed in place and blocks copied one by one must agree, at every offset.
#[test]
fn any_buffer_alignment_gives_the_same_result() {
    let mut rng = Rng(5);
    let x = test_row(&mut rng, 512);
    for ty in GgmlType::ALL {
        let (want_q, want_y) = round_trip(ty, &x);
        let len = want_q.len();
        for offset in 0..4 {
            // Backed by u32s, so offset 0 is aligned for every block type.
            let mut words = vec![0u32; len / 4 + 2];
            let buf = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[offset..offset + len];
            quantize(ty, &x, buf).unwrap();
            assert_eq!(buf, &want_q[..], "{ty} quantized at offset {offset}");
            let mut y = vec![0f32; x.len()];
            dequantize(ty, buf, &mut y).unwrap();
            assert_eq!(y, want_y, "{ty} dequantized at offset {offset}");
        }
    }
}

#[test]
fn bad_lengths_are_errors() {
    for ty in GgmlType::ALL {
        let n = 512;
        let bytes = ty.bytes_for(n as u64).unwrap() as usize;
        let x = vec![0.5f32; n];
        let mut y = vec![0f32; n];
        let mut q = vec![0u8; bytes + 1];

        assert_eq!(quantize(ty, &x, &mut q[..bytes]), Ok(()));
        assert_eq!(dequantize(ty, &q[..bytes], &mut y), Ok(()));
        assert_eq!(quantize(ty, &[], &mut []), Ok(()));
        assert_eq!(dequantize(ty, &[], &mut []), Ok(()));

        for wrong in [bytes - 1, bytes + 1, 0] {
            let want = Err(QuantError::ByteLength {
                ty,
                values: n,
                expected: bytes,
                actual: wrong,
            });
            assert_eq!(quantize(ty, &x, &mut q[..wrong]), want);
            assert_eq!(dequantize(ty, &q[..wrong], &mut y), want);
        }
        if ty.is_quantized() {
            let odd = ty.block_len() + 1;
            let want = Err(QuantError::NotWholeBlocks {
                ty,
                values: odd,
                block_len: ty.block_len(),
            });
            assert_eq!(quantize(ty, &x[..odd], &mut q), want);
            assert_eq!(dequantize(ty, &q, &mut y[..odd]), want);
        }
    }
    // A row of 576 values (SmolLM2's width) cannot be a K-quant.
    let err = quantize(GgmlType::Q4_K, &[0.0; 576], &mut [0; 324]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "576 values is not a whole number of Q4_K blocks of 256"
    );
    let err = dequantize(GgmlType::Q8_0, &[0; 33], &mut [0.0; 32]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "32 Q8_0 values take 34 bytes, but the buffer has 33"
    );
}

/// A zero block must decode to zeros, and the value of largest magnitude in a symmetric
/// block must come back as exactly as its f16 scale allows.
#[test]
fn zero_and_extreme_values() {
    for ty in GgmlType::ALL {
        let (_, y) = round_trip(ty, &[0.0; 512]);
        assert!(y.iter().all(|&v| v == 0.0), "{ty}");
    }
    let mut x = [0.25f32; QK];
    x[7] = -3.0;
    let (q, y) = round_trip(GgmlType::Q4_0, &x);
    let b: BlockQ4_0 = bytemuck::pod_read_unaligned(&q);
    assert_eq!(b.d.to_f32(), 0.375);
    assert_eq!(y[7], -3.0);
}
