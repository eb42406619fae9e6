//! Weight tiles for the matrix kernels: `P` rows (one per vector lane) unpacked and
//! transposed so that one vector holds the same four values of every row.
//!
//! A unit of 32 values becomes eight words per row, word g holding values 4g..4g+4 as
//! unsigned bytes; stored `[g][row]`, a vector load gives one group of every row, and a
//! broadcast of the token's matching four bytes feeds `vpdpbusd` (or `vpmaddubsw`). The
//! scales follow as `[row]` vectors. A tile is packed once and reused for every token of
//! the batch, so this plain code costs little next to the multiplications.
//!
//! Layouts, in 32-bit words (P = lanes):
//! - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, per block: `w[8][P] | d[P] f32 | m[P] f32 (Q4_1, Q5_1)`.
//!   Values are q (Q4_0, Q5_0: q in 0..16 / 0..32; Q8_0: q + 128 if `flip_q8`, else q).
//! - Q4_K, Q5_K, per super-block: `w[8 units][8][P] | sc[8][P] i32 | mins[4][P] (two i16)
//!   | d[P] f32 | dmin[P] f32`.
//! - Q6_K, per super-block: `w[8 units][8][P] | sc[16][P] i32 | sc pairs[8][P] (two i16)
//!   | d[P] f32`. Values are q in 0..64, the -32 offset left to the kernel.

use crate::quant::blocks::{
    scale_min_k4, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8_0, QK_K,
};
use crate::quant::GgmlType;

/// Words of one packed block (legacy) or super-block (K-quants) for `p` lanes.
pub fn unit_words(ty: GgmlType, p: usize) -> usize {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => 9 * p,
        GgmlType::Q4_1 | GgmlType::Q5_1 => 10 * p,
        GgmlType::Q4_K | GgmlType::Q5_K => (64 + 8 + 4 + 2) * p,
        GgmlType::Q6_K => (64 + 16 + 8 + 1) * p,
        _ => 0,
    }
}

/// Bytes of a packed tile of `cols` columns.
pub fn tile_bytes(ty: GgmlType, p: usize, cols: usize) -> usize {
    4 * unit_words(ty, p) * (cols / ty.block_len())
}

/// Byte k of the result is 0x10 if bit k of `bits` (0..16) is set.
fn spread_fifth(bits: u32) -> u32 {
    let b = bits & 0xF;
    ((b & 1) | ((b & 2) << 7) | ((b & 4) << 14) | ((b & 8) << 21)) << 4
}

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The eight value words of a legacy block and its d and m.
fn legacy_block(ty: GgmlType, b: &[u8], flip_q8: bool) -> ([u32; 8], f32, f32) {
    let mut w = [0u32; 8];
    let nibbles = |w: &mut [u32; 8], qs: &[u8]| {
        for g in 0..4 {
            let q = word(qs, 4 * g);
            w[g] = q & 0x0F0F_0F0F;
            w[g + 4] = (q >> 4) & 0x0F0F_0F0F;
        }
    };
    let fifth = |w: &mut [u32; 8], qh: u32| {
        for (g, w) in w.iter_mut().enumerate() {
            *w |= spread_fifth(qh >> (4 * g));
        }
    };
    match ty {
        GgmlType::Q4_0 => {
            let b: BlockQ4_0 = bytemuck::pod_read_unaligned(b);
            nibbles(&mut w, &b.qs);
            (w, b.d.to_f32(), 0.0)
        }
        GgmlType::Q4_1 => {
            let b: BlockQ4_1 = bytemuck::pod_read_unaligned(b);
            nibbles(&mut w, &b.qs);
            (w, b.d.to_f32(), b.m.to_f32())
        }
        GgmlType::Q5_0 => {
            let b: BlockQ5_0 = bytemuck::pod_read_unaligned(b);
            nibbles(&mut w, &b.qs);
            fifth(&mut w, u32::from_le_bytes(b.qh));
            (w, b.d.to_f32(), 0.0)
        }
        GgmlType::Q5_1 => {
            let b: BlockQ5_1 = bytemuck::pod_read_unaligned(b);
            nibbles(&mut w, &b.qs);
            fifth(&mut w, u32::from_le_bytes(b.qh));
            (w, b.d.to_f32(), b.m.to_f32())
        }
        GgmlType::Q8_0 => {
            let b: BlockQ8_0 = bytemuck::pod_read_unaligned(b);
            let qs: &[u8] = bytemuck::cast_slice(&b.qs);
            let flip = if flip_q8 { 0x8080_8080 } else { 0 };
            for (g, w) in w.iter_mut().enumerate() {
                *w = word(qs, 4 * g) ^ flip;
            }
            (w, b.d.to_f32(), 0.0)
        }
        _ => unreachable!("not a legacy type"),
    }
}

/// Packs `rows` (at most `p`) rows of `row_bytes` each from `w` into `out`; lanes past
/// `rows` are zero.
pub fn pack_tile(
    ty: GgmlType,
    p: usize,
    flip_q8: bool,
    w: &[u8],
    row_bytes: usize,
    rows: usize,
    out: &mut [u32],
) {
    let nb = row_bytes / ty.block_bytes();
    let unit = unit_words(ty, p);
    let out = &mut out[..unit * nb];
    if rows < p {
        out.fill(0);
    }
    let bb = ty.block_bytes();
    for r in 0..rows {
        let row = &w[r * row_bytes..(r + 1) * row_bytes];
        for (b, u) in out.chunks_exact_mut(unit).enumerate() {
            let blk = &row[b * bb..(b + 1) * bb];
            match ty {
                GgmlType::Q4_K | GgmlType::Q5_K => pack_k45(ty, p, r, blk, u),
                GgmlType::Q6_K => pack_k6(p, r, blk, u),
                _ => {
                    let (words, d, m) = legacy_block(ty, blk, flip_q8);
                    for (g, &x) in words.iter().enumerate() {
                        u[g * p + r] = x;
                    }
                    u[8 * p + r] = d.to_bits();
                    if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
                        u[9 * p + r] = m.to_bits();
                    }
                }
            }
        }
    }
}

fn pack_k45(ty: GgmlType, p: usize, r: usize, blk: &[u8], u: &mut [u32]) {
    let (d, dmin, scales, qs, qh) = if ty == GgmlType::Q4_K {
        let b: BlockQ4K = bytemuck::pod_read_unaligned(blk);
        (b.d, b.dmin, b.scales, b.qs, None)
    } else {
        let b: BlockQ5K = bytemuck::pod_read_unaligned(blk);
        (b.d, b.dmin, b.scales, b.qs, Some(b.qh))
    };
    let mut mins = [0u32; 8];
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &scales);
        mins[j] = u32::from(m);
        u[64 * p + j * p + r] = u32::from(sc);
        for g in 0..8 {
            let q = word(&qs, (j / 2) * 32 + 4 * g);
            let mut v = (q >> (4 * (j % 2))) & 0x0F0F_0F0F;
            if let Some(qh) = &qh {
                v |= ((word(qh, 4 * g) >> j) & 0x0101_0101) << 4;
            }
            u[(j * 8 + g) * p + r] = v;
        }
    }
    for i in 0..4 {
        u[72 * p + i * p + r] = mins[2 * i] | (mins[2 * i + 1] << 16);
    }
    u[76 * p + r] = d.to_f32().to_bits();
    u[77 * p + r] = dmin.to_f32().to_bits();
}

fn pack_k6(p: usize, r: usize, blk: &[u8], u: &mut [u32]) {
    let b: BlockQ6K = bytemuck::pod_read_unaligned(blk);
    for unit in 0..QK_K / 32 {
        let (h, k) = (unit / 4, unit % 4);
        for g in 0..8 {
            let ql = word(&b.ql, h * 64 + (k & 1) * 32 + 4 * g);
            let qh = word(&b.qh, h * 32 + 4 * g);
            let v = ((ql >> (4 * (k >> 1))) & 0x0F0F_0F0F) | (((qh >> (2 * k)) & 0x0303_0303) << 4);
            u[(unit * 8 + g) * p + r] = v;
        }
    }
    for s in 0..16 {
        u[64 * p + s * p + r] = i32::from(b.scales[s]) as u32;
    }
    for i in 0..8 {
        let lo = b.scales[2 * i] as i16 as u16 as u32;
        let hi = b.scales[2 * i + 1] as i16 as u16 as u32;
        u[80 * p + i * p + r] = lo | (hi << 16);
    }
    u[88 * p + r] = b.d.to_f32().to_bits();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_fifth_puts_bits_in_bytes() {
        assert_eq!(spread_fifth(0b1011), 0x1000_1010);
        assert_eq!(spread_fifth(0), 0);
        assert_eq!(spread_fifth(0xF), 0x1010_1010);
    }
}
