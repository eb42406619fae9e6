//! Tensor types and their block encodings.
//!
//! [`quantize()`] and [`dequantize()`] convert whole rows between f32 and any [`GgmlType`],
//! bit for bit as ggml's reference functions do; the per-block functions behind them
//! ([`scalar`], [`quantize`](mod@quantize), [`k_quants`]) are the oracle for the SIMD
//! and GPU kernels.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod acts;
pub mod blocks;
pub mod dot;
pub mod exp_poly;
pub mod floats;
pub mod k_quants;
pub mod kernels;
pub mod packed;
pub mod quantize;
pub mod scalar;
pub mod types;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use std::mem::size_of;

use bytemuck::Pod;
use half::f16;

use blocks::Block;
pub use types::GgmlType;

/// Why a buffer cannot be converted; one line that names the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    #[error("{values} values is not a whole number of {ty} blocks of {block_len}")]
    NotWholeBlocks {
        ty: GgmlType,
        values: usize,
        block_len: usize,
    },
    #[error("{values} {ty} values take {expected} bytes, but the buffer has {actual}")]
    ByteLength {
        ty: GgmlType,
        values: usize,
        expected: usize,
        actual: usize,
    },
    #[error("{bytes} bytes is not a whole number of {ty} blocks")]
    PartialBlock { ty: GgmlType, bytes: usize },
    #[error("{ty} data must be {align}-byte aligned to be viewed in place")]
    Misaligned { ty: GgmlType, align: usize },
}

/// Decodes `dst.len()` values of type `ty` from `src` (exactly `ty.bytes_for(dst.len())`
/// bytes). `src` need not be aligned.
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    check_lengths(ty, dst.len(), src.len())?;
    match ty {
        GgmlType::F32 => {
            for (y, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *y = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            Ok(())
        }
        GgmlType::F16 => {
            for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *y = floats::fp16_to_fp32(f16::from_le_bytes([b[0], b[1]]));
            }
            Ok(())
        }
        GgmlType::BF16 => {
            for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *y = floats::bf16_to_fp32(u16::from_le_bytes([b[0], b[1]]));
            }
            Ok(())
        }
        GgmlType::Q4_0 => dequantize_blocks(src, dst, scalar::dequantize_q4_0),
        GgmlType::Q4_1 => dequantize_blocks(src, dst, scalar::dequantize_q4_1),
        GgmlType::Q5_0 => dequantize_blocks(src, dst, scalar::dequantize_q5_0),
        GgmlType::Q5_1 => dequantize_blocks(src, dst, scalar::dequantize_q5_1),
        GgmlType::Q8_0 => dequantize_blocks(src, dst, scalar::dequantize_q8_0),
        GgmlType::Q8_1 => dequantize_blocks(src, dst, scalar::dequantize_q8_1),
        GgmlType::Q4_K => dequantize_blocks(src, dst, scalar::dequantize_q4_k),
        GgmlType::Q5_K => dequantize_blocks(src, dst, scalar::dequantize_q5_k),
        GgmlType::Q6_K => dequantize_blocks(src, dst, scalar::dequantize_q6_k),
        GgmlType::Q8_K => dequantize_blocks(src, dst, scalar::dequantize_q8_k),
    }
}

/// Encodes `src` into `dst` (exactly `ty.bytes_for(src.len())` bytes), as ggml's
/// reference quantizer does. `dst` need not be aligned.
pub fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    check_lengths(ty, src.len(), dst.len())?;
    match ty {
        GgmlType::F32 => {
            for (b, x) in dst.chunks_exact_mut(4).zip(src) {
                b.copy_from_slice(&x.to_le_bytes());
            }
            Ok(())
        }
        GgmlType::F16 => {
            for (b, &x) in dst.chunks_exact_mut(2).zip(src) {
                b.copy_from_slice(&floats::fp32_to_fp16(x).to_le_bytes());
            }
            Ok(())
        }
        GgmlType::BF16 => {
            for (b, &x) in dst.chunks_exact_mut(2).zip(src) {
                b.copy_from_slice(&floats::fp32_to_bf16(x).to_le_bytes());
            }
            Ok(())
        }
        GgmlType::Q4_0 => quantize_blocks(src, dst, quantize::quantize_q4_0),
        GgmlType::Q4_1 => quantize_blocks(src, dst, quantize::quantize_q4_1),
        GgmlType::Q5_0 => quantize_blocks(src, dst, quantize::quantize_q5_0),
        GgmlType::Q5_1 => quantize_blocks(src, dst, quantize::quantize_q5_1),
        GgmlType::Q8_0 => quantize_blocks(src, dst, quantize::quantize_q8_0),
        GgmlType::Q8_1 => quantize_blocks(src, dst, quantize::quantize_q8_1),
        GgmlType::Q4_K => quantize_blocks(src, dst, k_quants::quantize_q4_k),
        GgmlType::Q5_K => quantize_blocks(src, dst, k_quants::quantize_q5_k),
        GgmlType::Q6_K => quantize_blocks(src, dst, k_quants::quantize_q6_k),
        GgmlType::Q8_K => quantize_blocks(src, dst, k_quants::quantize_q8_k),
    }
}

fn check_lengths(ty: GgmlType, values: usize, bytes: usize) -> Result<(), QuantError> {
    let not_whole = QuantError::NotWholeBlocks {
        ty,
        values,
        block_len: ty.block_len(),
    };
    let expected = ty.bytes_for(values as u64).ok_or(not_whole.clone())?;
    let expected = usize::try_from(expected).map_err(|_| not_whole)?;
    if bytes != expected {
        return Err(QuantError::ByteLength {
            ty,
            values,
            expected,
            actual: bytes,
        });
    }
    Ok(())
}

/// Runs a block decoder over a row. Blocks are read in place when `src` is aligned for
/// them, and copied out one at a time when not (test buffers, odd slices of a file).
fn dequantize_blocks<B: Block, const N: usize>(
    src: &[u8],
    dst: &mut [f32],
    decode: fn(&B, &mut [f32; N]),
) -> Result<(), QuantError>
where
    [f32; N]: Pod,
{
    const { assert!(N == B::LEN) };
    let values = dst.len();
    let out: &mut [[f32; N]] =
        bytemuck::try_cast_slice_mut(dst).map_err(|_| QuantError::NotWholeBlocks {
            ty: B::TYPE,
            values,
            block_len: N,
        })?;
    match bytemuck::try_cast_slice::<u8, B>(src) {
        Ok(blocks) => blocks.iter().zip(out).for_each(|(b, y)| decode(b, y)),
        Err(_) => src
            .chunks_exact(size_of::<B>())
            .zip(out)
            .for_each(|(b, y)| decode(&bytemuck::pod_read_unaligned(b), y)),
    }
    Ok(())
}

/// Runs a block encoder over a row, writing blocks in place when `dst` is aligned for
/// them and byte by byte when not.
fn quantize_blocks<B: Block, const N: usize>(
    src: &[f32],
    dst: &mut [u8],
    encode: fn(&[f32; N]) -> B,
) -> Result<(), QuantError>
where
    [f32; N]: Pod,
{
    const { assert!(N == B::LEN) };
    let rows: &[[f32; N]] =
        bytemuck::try_cast_slice(src).map_err(|_| QuantError::NotWholeBlocks {
            ty: B::TYPE,
            values: src.len(),
            block_len: N,
        })?;
    match bytemuck::try_cast_slice_mut::<u8, B>(dst) {
        Ok(blocks) => blocks
            .iter_mut()
            .zip(rows)
            .for_each(|(b, x)| *b = encode(x)),
        Err(_) => dst
            .chunks_exact_mut(size_of::<B>())
            .zip(rows)
            .for_each(|(b, x)| b.copy_from_slice(bytemuck::bytes_of(&encode(x)))),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
