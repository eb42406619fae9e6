//! F16 and BF16 conversions, bit for bit as ggml does them.

use half::f16;

/// ggml's `GGML_FP32_TO_FP16`: round to nearest even, overflow to infinity. Unlike a
/// hardware conversion it drops a NaN's payload and writes the canonical quiet NaN
/// (keeping the sign).
pub fn fp32_to_fp16(x: f32) -> f16 {
    if x.is_nan() {
        let sign = ((x.to_bits() >> 16) & 0x8000) as u16;
        return f16::from_bits(sign | 0x7E00);
    }
    f16::from_f32(x)
}

/// ggml's `GGML_FP16_TO_FP32`: exact; a signalling NaN comes back quiet.
pub fn fp16_to_fp32(h: f16) -> f32 {
    h.to_f32()
}

/// ggml's `GGML_FP32_TO_BF16`: round to nearest even on the top 16 bits; a NaN keeps
/// its top bits and is forced quiet.
pub fn fp32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// ggml's `GGML_BF16_TO_FP32`: exact.
pub fn bf16_to_fp32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(
            fp32_to_bf16(f32::from_bits(0x3f80_8000)),
            0x3f80,
            "tie to even (down)"
        );
        assert_eq!(
            fp32_to_bf16(f32::from_bits(0x3f81_8000)),
            0x3f82,
            "tie to even (up)"
        );
        assert_eq!(fp32_to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(fp32_to_bf16(f32::MAX), 0x7f80, "rounds up to infinity");
        assert_eq!(
            fp32_to_bf16(f32::from_bits(0x7f80_0001)),
            0x7fc0,
            "signalling NaN quieted"
        );
        assert_eq!(fp32_to_bf16(f32::from_bits(0xffc0_1234)), 0xffc0);
        assert_eq!(bf16_to_fp32(0xbf80), -1.0);
    }

    #[test]
    fn f16_nan_is_canonical() {
        assert_eq!(fp32_to_fp16(f32::from_bits(0x7f80_0001)).to_bits(), 0x7e00);
        assert_eq!(fp32_to_fp16(f32::from_bits(0xffc1_2345)).to_bits(), 0xfe00);
        assert_eq!(
            fp32_to_fp16(65520.0).to_bits(),
            0x7c00,
            "overflow to infinity"
        );
        assert_eq!(fp32_to_fp16(65519.996).to_bits(), 0x7bff);
        assert_eq!(
            fp32_to_fp16(2f32.powi(-25)).to_bits(),
            0,
            "tie to even (zero)"
        );
        assert_eq!(fp16_to_fp32(f16::from_bits(0x0001)), 2f32.powi(-24));
    }
}
