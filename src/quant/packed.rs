//! Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 matrices repacked once, at load, into the layout the
//! matrix kernels read.
//!
//! Sixteen rows make a group. For each block of 32 columns a group stores its quants as
//! 64-byte vectors: vector v holds bytes 4v..4v+4 of every row's quants (row r at bytes
//! 4r..4r+4). For the 4- and 5-bit types four vectors hold a block's nibbles, and one
//! load and a nibble split give values 4v..4v+4 (low nibbles) and 16+4v..16+4v+4 (high
//! nibbles) of all sixteen rows; for Q8_0 eight vectors hold a block, values 4v..4v+4
//! each. Every lane is then ready for a broadcast of the token's four matching
//! activations. The 5-bit types add a vector of fifth bits, each row's 32 regrouped so
//! that byte k holds, for every v, the bits of values 4v + k (bit 2v) and 16 + 4v + k
//! (bit 2v + 1): a shift and a mask put them beside the nibbles. The blocks go in pairs,
//! each pair's sixteen f16 scales per block (and, for Q4_1 and Q5_1, sixteen f16 mins)
//! after its quants, so that a thread reads its rows as one stream (a separate array of
//! scales was a second, slower one) and every vector stays on a 64-byte line:
//!
//! ```text
//! group: pair [nb / 2, rounded up] of
//!        (qs [V][16 rows][4 bytes] | qh [16 rows][4 bytes] (Q5_x)) [2]
//!        | d [2][16 rows] f16 | m [2][16 rows] f16 (Q4_1, Q5_1)
//! ```
//!
//! The bytes are the file's (and an unused half pair when nb is odd), so the copy costs no
//! more memory traffic per token; what it saves is reassembling blocks row by row in the
//! kernel. Every output is `Σ_b (sumi_b * d_a,b) * d_w,b (+ m_w,b * s_a,b)` added block by
//! block in f32, the same operations on every path, so the SIMD kernels equal
//! [`scalar`] bit for bit.

use rayon::prelude::*;

use super::acts::{ActFormat, ActRow, Line};
use super::blocks::QK;
use super::GgmlType;

/// Rows per group: one per lane of a 512-bit vector of f32.
pub const GROUP_ROWS: usize = 16;

/// Bytes of a block's sixteen f16 scales (or mins) in a group.
const D_BYTES: usize = 2 * GROUP_ROWS;

/// How a type's blocks lie in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub ty: GgmlType,
    /// 64-byte vectors of quants a block: 4 (nibbles) or 8 (bytes).
    pub vectors: usize,
    /// Whether blocks have a vector of fifth bits after their nibbles.
    pub fifth: bool,
    /// Whether blocks have mins beside their scales (`x = q * d + m`).
    pub mins: bool,
    /// What the quants are offset by (`x = (q - bias) * d`).
    pub bias: i32,
}

pub const Q4_0: Layout = Layout {
    ty: GgmlType::Q4_0,
    vectors: 4,
    fifth: false,
    mins: false,
    bias: 8,
};
pub const Q4_1: Layout = Layout {
    ty: GgmlType::Q4_1,
    vectors: 4,
    fifth: false,
    mins: true,
    bias: 0,
};
pub const Q5_0: Layout = Layout {
    ty: GgmlType::Q5_0,
    vectors: 4,
    fifth: true,
    mins: false,
    bias: 16,
};
pub const Q5_1: Layout = Layout {
    ty: GgmlType::Q5_1,
    vectors: 4,
    fifth: true,
    mins: true,
    bias: 0,
};
pub const Q8_0: Layout = Layout {
    ty: GgmlType::Q8_0,
    vectors: 8,
    fifth: false,
    mins: false,
    bias: 0,
};

/// Every type with a group layout.
pub const LAYOUTS: [Layout; 5] = [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0];

impl Layout {
    /// The layout of type `ty`, if it has one.
    pub fn of(ty: GgmlType) -> Option<Layout> {
        LAYOUTS.into_iter().find(|l| l.ty == ty)
    }

    /// The activations a kernel multiplies this type with.
    pub fn act_format(&self) -> ActFormat {
        ActFormat::for_weight(self.ty).expect("a weight type")
    }

    /// Bytes of one block's quants (with its fifth bits).
    const fn qs_bytes(&self) -> usize {
        64 * (self.vectors + self.fifth as usize)
    }

    /// Bytes of a pair of blocks: both blocks' quants, then their scales (and mins).
    pub const fn pair_bytes(&self) -> usize {
        2 * (self.qs_bytes() + D_BYTES * (1 + self.mins as usize))
    }

    /// Where block `b`'s quants start in a group.
    #[inline(always)]
    pub const fn qs_offset(&self, b: usize) -> usize {
        b / 2 * self.pair_bytes() + b % 2 * self.qs_bytes()
    }

    /// Where block `b`'s vector of fifth bits starts in a group (5-bit types).
    #[inline(always)]
    pub const fn qh_offset(&self, b: usize) -> usize {
        self.qs_offset(b) + 64 * self.vectors
    }

    /// Where block `b`'s sixteen f16 scales start in a group.
    #[inline(always)]
    pub const fn d_offset(&self, b: usize) -> usize {
        b / 2 * self.pair_bytes() + 2 * self.qs_bytes() + b % 2 * D_BYTES
    }

    /// Where block `b`'s sixteen f16 mins start in a group (types with mins).
    #[inline(always)]
    pub const fn m_offset(&self, b: usize) -> usize {
        self.d_offset(b) + 2 * D_BYTES
    }

    /// Bytes of one group of `cols` columns: whole pairs, so whole lines.
    pub const fn group_stride(&self, cols: usize) -> usize {
        (cols / QK).div_ceil(2) * self.pair_bytes()
    }

    /// The lines of block `b`'s pair that a kernel prefetches with it: the first half
    /// (rounded up) with the pair's first block, the rest with its second.
    #[inline(always)]
    pub const fn prefetch_lines(&self, b: usize) -> std::ops::Range<usize> {
        let lines = self.pair_bytes() / 64;
        let first = lines.div_ceil(2);
        if b.is_multiple_of(2) {
            0..first
        } else {
            first..lines
        }
    }

    /// Where a stored block keeps its min, its fifth bits and its quants: after its f16
    /// scale, each present in that order.
    fn stored(&self) -> (Option<usize>, Option<usize>, usize) {
        let m_at = self.mins.then_some(2);
        let qh_at = 2 + 2 * self.mins as usize;
        let qs_at = qh_at + 4 * self.fifth as usize;
        (m_at, self.fifth.then_some(qh_at), qs_at)
    }
}

/// A block's fifth bits (bit j: value j) regrouped as the kernels read them: byte k holds
/// bit 2v for value 4v + k and bit 2v + 1 for value 16 + 4v + k, v in 0..4.
pub fn regroup_fifth(qh: u32) -> u32 {
    let mut out = 0;
    for k in 0..4 {
        let mut byte = 0;
        for v in 0..4 {
            byte |= ((qh >> (4 * v + k)) & 1) << (2 * v);
            byte |= ((qh >> (16 + 4 * v + k)) & 1) << (2 * v + 1);
        }
        out |= byte << (8 * k);
    }
    out
}

/// A matrix `[rows][cols]` in the group layout.
pub struct PackedMatrix {
    layout: Layout,
    rows: usize,
    cols: usize,
    lines: Vec<Line>,
}

impl PackedMatrix {
    /// Whether a `[rows][cols]` matrix of type `ty` can be packed.
    pub fn fits(ty: GgmlType, rows: usize, cols: usize) -> bool {
        Layout::of(ty).is_some() && rows.is_multiple_of(GROUP_ROWS) && cols.is_multiple_of(QK)
    }

    /// Packs rows of type `ty` (`data`: `rows * cols / 32` blocks), in parallel by group.
    pub fn pack(ty: GgmlType, data: &[u8], rows: usize, cols: usize) -> PackedMatrix {
        assert!(PackedMatrix::fits(ty, rows, cols));
        let layout = Layout::of(ty).expect("fits");
        let (nb, block) = (cols / QK, ty.block_bytes());
        let row_bytes = nb * block;
        assert_eq!(data.len(), rows * row_bytes);
        let stride = layout.group_stride(cols);
        let (m_at, qh_at, qs_at) = layout.stored();
        let mut lines = vec![Line([0; 64]); rows / GROUP_ROWS * stride / 64];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut lines);
        bytes
            .par_chunks_mut(stride)
            .zip(data.par_chunks(GROUP_ROWS * row_bytes))
            .for_each(|(group, src)| {
                for r in 0..GROUP_ROWS {
                    for b in 0..nb {
                        let blk = &src[r * row_bytes + b * block..][..block];
                        group[layout.d_offset(b) + 2 * r..][..2].copy_from_slice(&blk[..2]);
                        if let Some(m_at) = m_at {
                            group[layout.m_offset(b) + 2 * r..][..2]
                                .copy_from_slice(&blk[m_at..m_at + 2]);
                        }
                        if let Some(qh_at) = qh_at {
                            let qh = u32::from_le_bytes(blk[qh_at..qh_at + 4].try_into().unwrap());
                            group[layout.qh_offset(b) + 4 * r..][..4]
                                .copy_from_slice(&regroup_fifth(qh).to_le_bytes());
                        }
                        for v in 0..layout.vectors {
                            group[layout.qs_offset(b) + v * 64 + 4 * r..][..4]
                                .copy_from_slice(&blk[qs_at + 4 * v..][..4]);
                        }
                    }
                }
            });
        PackedMatrix {
            layout,
            rows,
            cols,
            lines,
        }
    }

    pub fn layout(&self) -> Layout {
        self.layout
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
        let stride = self.layout.group_stride(self.cols);
        let all: &[u8] = bytemuck::cast_slice(&self.lines);
        &all[r0 / GROUP_ROWS * stride..(r0 + rows) / GROUP_ROWS * stride]
    }
}

/// A run of whole groups times every token of a batch of activations (the layout's
/// partner format: Q8_0, or Q8_1 for Q4_1).
pub struct PackedJob<'a> {
    pub layout: Layout,
    /// whole groups, `layout.group_stride(cols)` bytes each
    pub groups: &'a [u8],
    pub cols: usize,
    pub acts: &'a [u8],
    pub act_stride: usize,
    pub n_tok: usize,
    /// `out[t * out_stride + r]` for row r of the run
    pub out: *mut f32,
    pub out_stride: usize,
}

/// Where one token's activations are: its quants, block scales, block sums and (Q8_1)
/// `d * sum` per block.
#[derive(Clone, Copy)]
pub struct ActPtrs {
    pub qs: *const i8,
    pub d: *const f32,
    pub sum: *const i32,
    pub s: *const f32,
}

impl PackedJob<'_> {
    /// Token `t`'s activation row, as pointers for the kernels (the offsets of
    /// [`ActRow`]'s Q8_0 and Q8_1 layouts; [`Self::check`] made sure the rows hold them,
    /// but for `s`, which only Q8_1 rows have). Cheap: the kernels take it once per tile.
    #[inline(always)]
    pub fn act(&self, t: usize) -> ActPtrs {
        let row = self.acts.as_ptr().wrapping_add(t * self.act_stride);
        let nb = self.cols / QK;
        ActPtrs {
            qs: row.cast(),
            d: row.wrapping_add(self.cols).cast(),
            sum: row.wrapping_add(self.cols + 4 * nb).cast(),
            s: row.wrapping_add(self.cols + 8 * nb).cast(),
        }
    }

    pub fn n_groups(&self) -> usize {
        self.groups.len() / self.layout.group_stride(self.cols)
    }

    /// Checks what the kernels rely on: whole groups, activation rows of `cols` values in
    /// the layout's partner format.
    pub fn check(&self) {
        let stride = self.layout.group_stride(self.cols);
        let fmt = self.layout.act_format();
        assert!(self.cols.is_multiple_of(QK));
        assert!(self.groups.len().is_multiple_of(stride));
        assert!(self.act_stride >= fmt.row_bytes(self.cols));
        // The kernels read each row's scales and sums as aligned f32 and i32.
        assert!(self.act_stride.is_multiple_of(4));
        assert!(
            self.n_tok == 0
                || self.acts.len() >= (self.n_tok - 1) * self.act_stride + fmt.row_bytes(self.cols)
        );
        assert!((self.acts.as_ptr() as usize).is_multiple_of(4));
    }
}

/// A kernel over a [`PackedJob`].
///
/// # Safety
/// The CPU has the kernel's features; the job passed [`PackedJob::check`] and its layout
/// is the kernel's; `out` is valid for writes of every `out[t * out_stride + r]` and
/// nothing else touches them meanwhile.
pub type PackedFn = unsafe fn(job: &PackedJob);

/// The reference kernel: per row and token, exact integer sums per block, then the float
/// operations every path performs in the same order.
///
/// # Safety
/// As [`PackedFn`].
pub unsafe fn scalar(job: &PackedJob) {
    let l = job.layout;
    let nb = job.cols / QK;
    let fmt = l.act_format();
    let f16 = |b: &[u8]| half::f16::from_le_bytes([b[0], b[1]]).to_f32();
    for (g, group) in job
        .groups
        .chunks_exact(l.group_stride(job.cols))
        .enumerate()
    {
        for t in 0..job.n_tok {
            let a = ActRow::new(fmt, job.cols, &job.acts[t * job.act_stride..]);
            let mut acc = [0.0f32; GROUP_ROWS];
            for b in 0..nb {
                let mut sumi = [-l.bias * a.sum[b]; GROUP_ROWS];
                let aq = &a.qs[QK * b..QK * (b + 1)];
                let qs = &group[l.qs_offset(b)..];
                for v in 0..l.vectors {
                    for (r, s) in sumi.iter_mut().enumerate() {
                        for k in 0..4 {
                            let byte = qs[v * 64 + 4 * r + k];
                            if l.vectors == 8 {
                                *s += i32::from(byte as i8) * i32::from(aq[4 * v + k]);
                                continue;
                            }
                            let (mut lo, mut hi) = (i32::from(byte & 0xF), i32::from(byte >> 4));
                            if l.fifth {
                                let bits = group[l.qh_offset(b) + 4 * r + k] >> (2 * v);
                                lo |= i32::from(bits & 1) << 4;
                                hi |= i32::from((bits >> 1) & 1) << 4;
                            }
                            *s +=
                                lo * i32::from(aq[4 * v + k]) + hi * i32::from(aq[16 + 4 * v + k]);
                        }
                    }
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let dw = f16(&group[l.d_offset(b) + 2 * r..]);
                    let mut p = sumi[r] as f32 * a.d[b] * dw;
                    if l.mins {
                        p = f16(&group[l.m_offset(b) + 2 * r..]).mul_add(a.s[b], p);
                    }
                    *acc += p;
                }
            }
            for (r, &acc) in acc.iter().enumerate() {
                // SAFETY: the caller vouches for `out` (see `PackedFn`).
                unsafe { *job.out.add(t * job.out_stride + g * GROUP_ROWS + r) = acc };
            }
        }
    }
}
