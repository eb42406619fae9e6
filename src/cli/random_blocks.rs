//! Random weights made directly in their on-disk block layout: random quant bits under
//! sane scales. Quantizing random floats would cost far more than writing the file, and a
//! benchmark model only needs the right bytes in the right places, finite values and
//! activations that neither vanish nor overflow.
//!
//! Each tensor gets values of mean about 0 and standard deviation about `sigma`; the
//! scales of a tensor vary by ±25% from block to block, as real ones do.

use half::f16;

use ropewalk::quant::blocks::K_SCALE_SIZE;
use ropewalk::quant::floats::{fp32_to_bf16, fp32_to_fp16};
use ropewalk::quant::GgmlType;

/// wyrand: one multiply per 8 random bytes, so that generating a 4 GB model costs less
/// than writing it.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut r = Rng(seed);
        r.next_u64();
        r
    }

    /// A generator for one piece of a larger whole, independent of how the pieces are
    /// scheduled across threads.
    pub fn for_part(seed: u64, part: u64, sub: u64) -> Rng {
        let mut r = Rng::new(seed ^ part.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mixed = r.next_u64() ^ sub.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Rng::new(mixed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xA076_1D64_78BD_642F);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xE703_7ED1_A0B4_28DB);
        ((t >> 64) ^ t) as u64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        let mut chunks = out.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// Standard deviation of uniform quants 0..levels, in units of the step.
fn quant_std(levels: u32) -> f32 {
    (((levels * levels) - 1) as f32 / 12.0).sqrt()
}

/// 64 scales spread ±25% around `base`, as f16 bytes, indexed by six random bits of the
/// block they go into.
fn scale_table(base: f32) -> [[u8; 2]; 64] {
    std::array::from_fn(|i| fp32_to_fp16(base * (0.75 + 0.5 * i as f32 / 63.0)).to_le_bytes())
}

/// Fills `out`, whole blocks of `ty`, with random weights of standard deviation about
/// `sigma`. Float types get uniform values; quant types random quants and scales.
pub fn fill(ty: GgmlType, out: &mut [u8], sigma: f32, rng: &mut Rng) {
    let bytes = ty.block_bytes();
    debug_assert!(out.len().is_multiple_of(bytes));
    let half_width = sigma * 3f32.sqrt();
    let mut uniform = || (2.0 * rng.unit() - 1.0) * half_width;
    match ty {
        GgmlType::F32 => out
            .chunks_exact_mut(4)
            .for_each(|b| b.copy_from_slice(&uniform().to_le_bytes())),
        GgmlType::F16 => out
            .chunks_exact_mut(2)
            .for_each(|b| b.copy_from_slice(&f16::from_f32(uniform()).to_le_bytes())),
        GgmlType::BF16 => out
            .chunks_exact_mut(2)
            .for_each(|b| b.copy_from_slice(&fp32_to_bf16(uniform()).to_le_bytes())),
        _ => fill_quant(ty, out, sigma, rng),
    }
}

fn fill_quant(ty: GgmlType, out: &mut [u8], sigma: f32, rng: &mut Rng) {
    rng.fill(out);
    let bytes = ty.block_bytes();
    match ty {
        // x = (q - 8) d, x = (q - 16) d: the random bits already are the quants.
        GgmlType::Q4_0 | GgmlType::Q5_0 => {
            let levels = if ty == GgmlType::Q4_0 { 16 } else { 32 };
            let d = scale_table(sigma / quant_std(levels));
            for b in out.chunks_exact_mut(bytes) {
                let i = (b[0] & 63) as usize;
                b[..2].copy_from_slice(&d[i]);
            }
        }
        // x = q d + m, with m centring the quants on zero.
        GgmlType::Q4_1 | GgmlType::Q5_1 => {
            let levels = if ty == GgmlType::Q4_1 { 16 } else { 32 };
            let base = sigma / quant_std(levels);
            let centre = (levels - 1) as f32 / 2.0;
            let d = scale_table(base);
            let m = scale_table(-centre * base);
            for b in out.chunks_exact_mut(bytes) {
                let i = (b[0] & 63) as usize;
                b[..2].copy_from_slice(&d[i]);
                b[2..4].copy_from_slice(&m[i]);
            }
        }
        // x = q d with q in -127..=127, as ggml's quantizer writes: -128 is left out
        // because SIMD kernels may negate a quant.
        GgmlType::Q8_0 => {
            let d = scale_table(sigma / (255f32 * 255.0 / 12.0).sqrt());
            for b in out.chunks_exact_mut(bytes) {
                let i = (b[0] & 63) as usize;
                b[..2].copy_from_slice(&d[i]);
                for q in &mut b[2..] {
                    if *q == 0x80 {
                        *q = 0x81;
                    }
                }
            }
        }
        // x = d sc q - dmin m per sub-block of 32: six-bit scales and mins in 32..64,
        // dmin chosen so an average sub-block is centred on zero.
        GgmlType::Q4_K | GgmlType::Q5_K => {
            let levels = if ty == GgmlType::Q4_K { 16 } else { 32 };
            let base = sigma / (quant_std(levels) * 47.5);
            let centre = (levels - 1) as f32 / 2.0;
            let d = scale_table(base);
            let dmin = scale_table(centre * base);
            for b in out.chunks_exact_mut(bytes) {
                let i = (b[0] & 63) as usize;
                let raw: [u8; K_SCALE_SIZE] = b[4..16].try_into().expect("12 bytes");
                let sc = std::array::from_fn(|j| 32 | (raw[j] & 31));
                let mn = std::array::from_fn(|j| 32 | (raw[j + 4] >> 3 & 31));
                b[..2].copy_from_slice(&d[i]);
                b[2..4].copy_from_slice(&dmin[i]);
                b[4..16].copy_from_slice(&pack_scales_k4(&sc, &mn));
            }
        }
        // x = d sc (q - 32) per 16 values, eight-bit signed scales in 64..128.
        GgmlType::Q6_K => {
            let d = scale_table(sigma / (quant_std(64) * 95.5));
            for b in out.chunks_exact_mut(bytes) {
                let i = (b[0] & 63) as usize;
                for s in &mut b[192..208] {
                    *s = 64 | (*s & 63);
                }
                b[208..210].copy_from_slice(&d[i]);
            }
        }
        GgmlType::Q8_1 | GgmlType::Q8_K => unreachable!("activation types are never weights"),
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => unreachable!("handled by fill"),
    }
}

/// The inverse of `quant::blocks::scale_min_k4`: eight six-bit scales and mins into the
/// twelve bytes of a Q4_K/Q5_K super-block.
pub fn pack_scales_k4(sc: &[u8; 8], mn: &[u8; 8]) -> [u8; K_SCALE_SIZE] {
    let mut q = [0u8; K_SCALE_SIZE];
    for j in 0..4 {
        q[j] = sc[j] & 63;
        q[j + 4] = mn[j] & 63;
    }
    for j in 4..8 {
        q[j + 4] = (sc[j] & 0xF) | ((mn[j] & 0xF) << 4);
        q[j - 4] |= (sc[j] >> 4 & 3) << 6;
        q[j] |= (mn[j] >> 4 & 3) << 6;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use ropewalk::quant::blocks::scale_min_k4;
    use ropewalk::quant::dequantize;

    #[test]
    fn k4_scales_pack_as_they_unpack() {
        let mut rng = Rng::new(7);
        for _ in 0..100 {
            let sc: [u8; 8] = std::array::from_fn(|_| rng.below(64) as u8);
            let mn: [u8; 8] = std::array::from_fn(|_| rng.below(64) as u8);
            let q = pack_scales_k4(&sc, &mn);
            for j in 0..8 {
                assert_eq!(scale_min_k4(j, &q), (sc[j], mn[j]), "sub-block {j}");
            }
        }
    }

    #[test]
    fn every_type_gives_finite_centred_values_of_the_asked_spread() {
        let n = 256 * 64;
        let sigma = 0.02;
        for ty in GgmlType::ALL {
            if matches!(ty, GgmlType::Q8_1 | GgmlType::Q8_K) {
                continue;
            }
            let mut bytes = vec![0u8; ty.bytes_for(n as u64).unwrap() as usize];
            fill(ty, &mut bytes, sigma, &mut Rng::new(3));
            let mut x = vec![0f32; n];
            dequantize(ty, &bytes, &mut x).unwrap();
            assert!(x.iter().all(|v| v.is_finite()), "{ty}");
            let mean = x.iter().sum::<f32>() / n as f32;
            let std = (x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n as f32).sqrt();
            assert!(mean.abs() < 0.2 * sigma, "{ty}: mean {mean}");
            assert!(
                (0.7 * sigma..1.3 * sigma).contains(&std),
                "{ty}: std {std}, asked for {sigma}"
            );
        }
    }

    #[test]
    fn parts_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::for_part(1, 2, 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::for_part(1, 2, 3).next_u64(),
            Rng::for_part(1, 2, 4).next_u64()
        );
        assert_ne!(
            Rng::for_part(1, 2, 3).next_u64(),
            Rng::for_part(1, 3, 3).next_u64()
        );
    }
}
