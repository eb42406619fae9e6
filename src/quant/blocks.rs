//! ggml's quant blocks, byte for byte as they lie in a GGUF file.
//!
//! Every struct is `#[repr(C)]` with fields in ggml's order and no padding, so a slice of
//! tensor bytes can be viewed as a slice of blocks in place. Multi-byte fields are
//! little-endian on disk; like ggml, we only run on little-endian machines.

use std::mem::{align_of, size_of};

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::{GgmlType, QuantError};

/// Values per block of the legacy quants (Q4_0 ... Q8_1).
pub const QK: usize = 32;
/// Values per super-block of the K-quants.
pub const QK_K: usize = 256;
/// Bytes of packed 6-bit scales and mins in a Q4_K/Q5_K super-block.
pub const K_SCALE_SIZE: usize = 12;

/// A quant block: `LEN` values of type `TYPE` in `size_of::<Self>()` bytes.
pub trait Block: Pod {
    const TYPE: GgmlType;
    const LEN: usize;
}

/// `x = (q - 8) * d`, q in 0..16; byte j holds value j (low nibble) and j + 16 (high).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4_0 {
    pub d: f16,
    pub qs: [u8; QK / 2],
}

/// `x = q * d + m`, q in 0..16, nibbles as in Q4_0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4_1 {
    pub d: f16,
    pub m: f16,
    pub qs: [u8; QK / 2],
}

/// `x = (q - 16) * d`, q in 0..32: low nibbles as in Q4_0, bit j of `qh` (read as a
/// little-endian u32) is the fifth bit of value j.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5_0 {
    pub d: f16,
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}

/// `x = q * d + m`, q in 0..32, bits as in Q5_0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5_1 {
    pub d: f16,
    pub m: f16,
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}

/// `x = q * d`, q in -127..=127.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; QK],
}

/// Q8_0 plus `s = d * sum(q)`, which dot products with Q4_1/Q5_1 need for the `m` term.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8_1 {
    pub d: f16,
    pub s: f16,
    pub qs: [i8; QK],
}

/// Eight sub-blocks of 32: `x = d * sc * q - dmin * m`, q in 0..16, with six-bit `sc`
/// and `m` packed in `scales` (see [`scale_min_k4`]). Each 32 bytes of `qs` hold two
/// sub-blocks: the low nibbles the first, the high nibbles the second.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; K_SCALE_SIZE],
    pub qs: [u8; QK_K / 2],
}

/// Q4_K with a fifth bit per value: bit 2i (2i + 1) of `qh[l]` is the fifth bit of value
/// l of sub-block 2i (2i + 1).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; K_SCALE_SIZE],
    pub qh: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 2],
}

/// Sixteen sub-blocks of 16: `x = d * scales[i] * (q - 32)`, q in 0..64 split into four
/// low bits (`ql`) and two high bits (`qh`), in two halves of 128 values.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ6K {
    pub ql: [u8; QK_K / 2],
    pub qh: [u8; QK_K / 4],
    pub scales: [i8; QK_K / 16],
    pub d: f16,
}

/// Activations for K-quant dot products: `x = d * q` with an f32 `d`, and the sums of
/// each 16 values of `q` precomputed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8K {
    pub d: f32,
    pub qs: [i8; QK_K],
    pub bsums: [i16; QK_K / 16],
}

macro_rules! block {
    ($block:ty, $ty:ident, $len:expr, $bytes:expr) => {
        impl Block for $block {
            const TYPE: GgmlType = GgmlType::$ty;
            const LEN: usize = $len;
        }
        const _: () = assert!(size_of::<$block>() == $bytes);
    };
}

block!(BlockQ4_0, Q4_0, QK, 18);
block!(BlockQ4_1, Q4_1, QK, 20);
block!(BlockQ5_0, Q5_0, QK, 22);
block!(BlockQ5_1, Q5_1, QK, 24);
block!(BlockQ8_0, Q8_0, QK, 34);
block!(BlockQ8_1, Q8_1, QK, 36);
block!(BlockQ4K, Q4_K, QK_K, 144);
block!(BlockQ5K, Q5_K, QK_K, 176);
block!(BlockQ6K, Q6_K, QK_K, 210);
block!(BlockQ8K, Q8_K, QK_K, 292);

const _: () = assert!(align_of::<BlockQ4_0>() == 2 && align_of::<BlockQ8K>() == 4);

/// Views tensor bytes as blocks in place: the zero-copy path for mmapped tensor data,
/// which the GGUF reader aligns to [`GgmlType::block_align`].
pub fn view_blocks<B: Block>(bytes: &[u8]) -> Result<&[B], QuantError> {
    let size = size_of::<B>();
    if !bytes.len().is_multiple_of(size) {
        return Err(QuantError::PartialBlock {
            ty: B::TYPE,
            bytes: bytes.len(),
        });
    }
    bytemuck::try_cast_slice(bytes).map_err(|_| QuantError::Misaligned {
        ty: B::TYPE,
        align: align_of::<B>(),
    })
}

/// Unpacks the six-bit scale and min of sub-block `j` (0..8) of a Q4_K/Q5_K super-block:
/// the first four pairs are the low six bits of bytes 0..4 and 4..8; the last four take
/// their low four bits from the nibbles of bytes 8..12 and their top two bits from the
/// spare top bits of bytes 0..8.
pub fn scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<B: Block>() {
        let ty = B::TYPE;
        assert_eq!(size_of::<B>(), ty.block_bytes(), "{ty}");
        assert_eq!(align_of::<B>(), ty.block_align(), "{ty}");
        assert_eq!(B::LEN, ty.block_len(), "{ty}");
    }

    #[test]
    fn blocks_match_their_types() {
        check::<BlockQ4_0>();
        check::<BlockQ4_1>();
        check::<BlockQ5_0>();
        check::<BlockQ5_1>();
        check::<BlockQ8_0>();
        check::<BlockQ8_1>();
        check::<BlockQ4K>();
        check::<BlockQ5K>();
        check::<BlockQ6K>();
        check::<BlockQ8K>();
    }

    #[test]
    fn scale_min_k4_round_trips_six_bit_pairs() {
        // Pack as ggml's quantize_row_q4_K_ref does, then unpack.
        let sc: [u8; 8] = [0, 63, 17, 42, 63, 1, 32, 45];
        let m: [u8; 8] = [63, 0, 5, 60, 31, 62, 16, 3];
        let mut q = [0u8; K_SCALE_SIZE];
        for j in 0..8 {
            if j < 4 {
                q[j] = sc[j];
                q[j + 4] = m[j];
            } else {
                q[j + 4] = (sc[j] & 0xF) | ((m[j] & 0xF) << 4);
                q[j - 4] |= (sc[j] >> 4) << 6;
                q[j] |= (m[j] >> 4) << 6;
            }
        }
        for j in 0..8 {
            assert_eq!(scale_min_k4(j, &q), (sc[j], m[j]), "sub-block {j}");
        }
    }

    #[test]
    fn view_blocks_checks_length_and_alignment() {
        let words = [0u32; 73];
        let bytes: &[u8] = bytemuck::cast_slice(&words);
        assert_eq!(view_blocks::<BlockQ8K>(&bytes[..292]).unwrap().len(), 1);
        assert!(matches!(
            view_blocks::<BlockQ8K>(&bytes[..291]),
            Err(QuantError::PartialBlock { .. })
        ));
        assert!(matches!(
            view_blocks::<BlockQ4_0>(&bytes[1..19]),
            Err(QuantError::Misaligned { align: 2, .. })
        ));
    }
}
