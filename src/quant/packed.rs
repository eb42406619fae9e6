//! Q4_0 matrices repacked once, at load, into the layout the matrix kernels read.
//!
//! Sixteen rows make a group. For each block of 32 columns a group stores its quants as
//! four 64-byte vectors: vector v holds bytes 4v..4v+4 of every row's block (row r at
//! bytes 4r..4r+4). One load and a nibble split give values 4v..4v+4 (low nibbles) and
//! 16+4v..16+4v+4 (high nibbles) of all sixteen rows, each lane ready for a broadcast of
//! the token's four matching activations. The blocks go in pairs, each pair's sixteen
//! f16 scales per block after its quants, so that a thread reads its rows as one stream
//! (a separate array of scales was a second, slower one) and every vector stays on a
//! 64-byte line:
//!
//! ```text
//! group: pair [nb / 2, rounded up] of
//!        qs [2][4][16 rows][4 bytes] | d [2][16 rows] f16        (576 bytes)
//! ```
//!
//! The bytes are the file's (18 per block and row, and an unused half pair when nb is
//! odd), so the copy costs no more memory traffic per token; what it saves is
//! reassembling blocks row by row in the kernel.
//! Every output is `Σ_b (sumi_b * d_a,b) * d_w,b` added block by block in f32, the same
//! operations on every path, so the SIMD kernels equal [`q4_0_scalar`] bit for bit.

use rayon::prelude::*;

use super::acts::{ActFormat, ActRow, Line};
use super::blocks::QK;
use super::GgmlType;

/// Rows per group: one per lane of a 512-bit vector of f32.
pub const GROUP_ROWS: usize = 16;

const BLOCK_BYTES: usize = 18;
/// Bytes of one block's quants and of its scales in a group.
const QS_BYTES: usize = 4 * 64;
const D_BYTES: usize = 2 * GROUP_ROWS;
/// Bytes of a pair of blocks of a group: both blocks' quants, then both blocks' scales.
pub const PAIR_BYTES: usize = 2 * (QS_BYTES + D_BYTES);

/// Where block `b`'s quants start in a group.
#[inline(always)]
pub fn qs_offset(b: usize) -> usize {
    b / 2 * PAIR_BYTES + b % 2 * QS_BYTES
}

/// Where block `b`'s sixteen f16 scales start in a group.
#[inline(always)]
pub fn d_offset(b: usize) -> usize {
    b / 2 * PAIR_BYTES + 2 * QS_BYTES + b % 2 * D_BYTES
}

/// A Q4_0 matrix `[rows][cols]` in the group layout.
pub struct PackedMatrix {
    rows: usize,
    cols: usize,
    lines: Vec<Line>,
}

impl PackedMatrix {
    /// Bytes of one group of `cols` columns: whole pairs, so whole lines.
    pub fn group_stride(cols: usize) -> usize {
        (cols / QK).div_ceil(2) * PAIR_BYTES
    }

    /// Whether a `[rows][cols]` matrix of type `ty` can be packed.
    pub fn fits(ty: GgmlType, rows: usize, cols: usize) -> bool {
        ty == GgmlType::Q4_0 && rows.is_multiple_of(GROUP_ROWS) && cols.is_multiple_of(QK)
    }

    /// Packs Q4_0 rows (`data`: `rows * cols / 32` blocks), in parallel by group.
    pub fn pack_q4_0(data: &[u8], rows: usize, cols: usize) -> PackedMatrix {
        assert!(PackedMatrix::fits(GgmlType::Q4_0, rows, cols));
        let nb = cols / QK;
        let row_bytes = nb * BLOCK_BYTES;
        assert_eq!(data.len(), rows * row_bytes);
        let stride = Self::group_stride(cols);
        let mut lines = vec![Line([0; 64]); rows / GROUP_ROWS * stride / 64];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut lines);
        bytes
            .par_chunks_mut(stride)
            .zip(data.par_chunks(GROUP_ROWS * row_bytes))
            .for_each(|(group, src)| {
                for r in 0..GROUP_ROWS {
                    for b in 0..nb {
                        let blk = &src[r * row_bytes + b * BLOCK_BYTES..][..BLOCK_BYTES];
                        group[d_offset(b) + 2 * r..][..2].copy_from_slice(&blk[..2]);
                        for v in 0..4 {
                            group[qs_offset(b) + v * 64 + 4 * r..][..4]
                                .copy_from_slice(&blk[2 + 4 * v..][..4]);
                        }
                    }
                }
            });
        PackedMatrix { rows, cols, lines }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn bytes(&self) -> usize {
        self.lines.len() * 64
    }

    /// The groups holding rows `r0..r0 + rows` (both multiples of [`GROUP_ROWS`]).
    pub fn groups(&self, r0: usize, rows: usize) -> &[u8] {
        assert!(r0.is_multiple_of(GROUP_ROWS) && rows.is_multiple_of(GROUP_ROWS));
        let stride = Self::group_stride(self.cols);
        let all: &[u8] = bytemuck::cast_slice(&self.lines);
        &all[r0 / GROUP_ROWS * stride..(r0 + rows) / GROUP_ROWS * stride]
    }
}

/// A run of whole groups times every token of a batch of Q8_0 activations.
pub struct PackedJob<'a> {
    /// whole groups, `group_stride(cols)` bytes each
    pub groups: &'a [u8],
    pub cols: usize,
    pub acts: &'a [u8],
    pub act_stride: usize,
    pub n_tok: usize,
    /// `out[t * out_stride + r]` for row r of the run
    pub out: *mut f32,
    pub out_stride: usize,
}

/// Where one token's Q8_0 activations are: its quants, block scales and block sums.
#[derive(Clone, Copy)]
pub struct ActPtrs {
    pub qs: *const i8,
    pub d: *const f32,
    pub sum: *const i32,
}

impl PackedJob<'_> {
    /// Token `t`'s activation row, as pointers for the kernels (the offsets of
    /// [`ActRow`]'s Q8_0 layout; [`Self::check`] made sure the rows hold them). Cheap:
    /// the kernels take it once per tile.
    #[inline(always)]
    pub fn act(&self, t: usize) -> ActPtrs {
        let row = self.acts.as_ptr().wrapping_add(t * self.act_stride);
        ActPtrs {
            qs: row.cast(),
            d: row.wrapping_add(self.cols).cast(),
            sum: row.wrapping_add(self.cols + 4 * (self.cols / QK)).cast(),
        }
    }

    pub fn n_groups(&self) -> usize {
        self.groups.len() / PackedMatrix::group_stride(self.cols)
    }

    /// Checks what the kernels rely on: whole groups, activation rows of `cols` values.
    pub fn check(&self) {
        let stride = PackedMatrix::group_stride(self.cols);
        assert!(self.cols.is_multiple_of(QK));
        assert!(self.groups.len().is_multiple_of(stride));
        assert!(self.act_stride >= ActFormat::Q8_0.row_bytes(self.cols));
        // The kernels read each row's scales and sums as aligned f32 and i32.
        assert!(self.act_stride.is_multiple_of(4));
        assert!(
            self.n_tok == 0
                || self.acts.len()
                    >= (self.n_tok - 1) * self.act_stride + ActFormat::Q8_0.row_bytes(self.cols)
        );
        assert!((self.acts.as_ptr() as usize).is_multiple_of(4));
    }
}

/// A kernel over a [`PackedJob`].
///
/// # Safety
/// The CPU has the kernel's features; the job passed [`PackedJob::check`]; `out` is valid
/// for writes of every `out[t * out_stride + r]` and nothing else touches them meanwhile.
pub type PackedFn = unsafe fn(job: &PackedJob);

/// The reference kernel: per row and token, exact integer sums per block, then the float
/// operations every path performs in the same order.
///
/// # Safety
/// As [`PackedFn`].
pub unsafe fn q4_0_scalar(job: &PackedJob) {
    let nb = job.cols / QK;
    let stride = PackedMatrix::group_stride(job.cols);
    for (g, group) in job.groups.chunks_exact(stride).enumerate() {
        for t in 0..job.n_tok {
            let a = ActRow::new(ActFormat::Q8_0, job.cols, &job.acts[t * job.act_stride..]);
            let mut acc = [0.0f32; GROUP_ROWS];
            for b in 0..nb {
                let mut sumi = [-8 * a.sum[b]; GROUP_ROWS];
                let aq = &a.qs[QK * b..QK * (b + 1)];
                let (qs, d) = (&group[qs_offset(b)..], &group[d_offset(b)..]);
                for v in 0..4 {
                    for (r, s) in sumi.iter_mut().enumerate() {
                        for k in 0..4 {
                            let byte = qs[v * 64 + 4 * r + k];
                            *s += i32::from(byte & 0xF) * i32::from(aq[4 * v + k])
                                + i32::from(byte >> 4) * i32::from(aq[16 + 4 * v + k]);
                        }
                    }
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let dw = &d[2 * r..];
                    let dw = half::f16::from_le_bytes([dw[0], dw[1]]).to_f32();
                    *acc += sumi[r] as f32 * a.d[b] * dw;
                }
            }
            for (r, &acc) in acc.iter().enumerate() {
                // SAFETY: the caller vouches for `out` (see `PackedFn`).
                unsafe { *job.out.add(t * job.out_stride + g * GROUP_ROWS + r) = acc };
            }
        }
    }
}
