//! Quantized activations in the layout the dot-product kernels read.
//!
//! A matrix product quantizes its activations once per batch to the weight type's partner
//! (Q8_0, Q8_1, Q8_K, or plain f32) and then reads them once per weight row. ggml's blocks
//! interleave the scale with the quants; the kernels want the quants of a row contiguous
//! (one 64-byte load covers two blocks) and the per-block numbers as arrays they can load
//! sixteen at a time. So each token's row is laid out as:
//!
//! ```text
//! Q8_0:  qs [n] i8 | d [n/32] f32 | sum [n/32] i32
//! Q8_1:  qs [n] i8 | d [n/32] f32 | sum [n/32] i32 | s [n/32] f32
//! Q8_K:  qs [n] i8 | d [n/256] f32 | bsums [n/16] i16 | bs32 [n/32] i16
//! F32:   x [n] f32
//! ```
//!
//! `d` and `s` are the blocks' f16 values widened (exact), `sum` is Σ qs per block and
//! `bs32` Σ qs per 32 values, so the values are exactly those of ggml's blocks. Each row
//! starts on a 64-byte boundary.

use bytemuck::{Pod, Zeroable};

use super::blocks::{BlockQ8K, BlockQ8_0, BlockQ8_1, QK, QK_K};
use super::floats::fp16_to_fp32;
use super::GgmlType;

/// Which partner layout a row uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActFormat {
    Q8_0,
    Q8_1,
    Q8K,
    F32,
}

impl ActFormat {
    /// The layout that weights of type `w` are multiplied with; `None` for activation-only
    /// types.
    pub fn for_weight(w: GgmlType) -> Option<ActFormat> {
        Some(match w {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => ActFormat::Q8_0,
            GgmlType::Q4_1 | GgmlType::Q5_1 => ActFormat::Q8_1,
            GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => ActFormat::Q8K,
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => ActFormat::F32,
            GgmlType::Q8_1 | GgmlType::Q8_K => return None,
        })
    }

    /// Values per block; rows must be a whole number of them.
    pub fn block_len(self) -> usize {
        match self {
            ActFormat::Q8_0 | ActFormat::Q8_1 => QK,
            ActFormat::Q8K => QK_K,
            ActFormat::F32 => 1,
        }
    }

    /// Bytes of one row of `n` values, before padding.
    pub fn row_bytes(self, n: usize) -> usize {
        match self {
            ActFormat::Q8_0 => n + 8 * (n / QK),
            ActFormat::Q8_1 => n + 12 * (n / QK),
            ActFormat::Q8K => n + 4 * (n / QK_K) + 2 * (n / 16) + 2 * (n / QK),
            ActFormat::F32 => 4 * n,
        }
    }

    /// Distance between rows: `row_bytes` rounded up to 64.
    pub fn row_stride(self, n: usize) -> usize {
        self.row_bytes(n).div_ceil(64) * 64
    }
}

/// One row in place: slices into a row of the layout above.
#[derive(Clone, Copy, Debug)]
pub struct ActRow<'a> {
    pub qs: &'a [i8],
    pub d: &'a [f32],
    /// Q8_0/Q8_1: Σ qs per block.
    pub sum: &'a [i32],
    /// Q8_1: `d * Σ qs` as the block stores it (f16, widened).
    pub s: &'a [f32],
    /// Q8_K: Σ qs per 16 values.
    pub bsums: &'a [i16],
    /// Q8_K: Σ qs per 32 values.
    pub bs32: &'a [i16],
    /// F32: the values.
    pub x: &'a [f32],
}

impl<'a> ActRow<'a> {
    /// Splits a row of `n` values; `bytes` must hold at least `fmt.row_bytes(n)` and be
    /// 4-byte aligned.
    pub fn new(fmt: ActFormat, n: usize, bytes: &'a [u8]) -> ActRow<'a> {
        let mut row = ActRow {
            qs: &[],
            d: &[],
            sum: &[],
            s: &[],
            bsums: &[],
            bs32: &[],
            x: &[],
        };
        let bytes = &bytes[..fmt.row_bytes(n)];
        match fmt {
            ActFormat::F32 => row.x = bytemuck::cast_slice(bytes),
            ActFormat::Q8_0 | ActFormat::Q8_1 => {
                let nb = n / QK;
                let (qs, rest) = bytes.split_at(n);
                row.qs = bytemuck::cast_slice(qs);
                row.d = bytemuck::cast_slice(&rest[..4 * nb]);
                row.sum = bytemuck::cast_slice(&rest[4 * nb..8 * nb]);
                if fmt == ActFormat::Q8_1 {
                    row.s = bytemuck::cast_slice(&rest[8 * nb..12 * nb]);
                }
            }
            ActFormat::Q8K => {
                let nsb = n / QK_K;
                let (qs, rest) = bytes.split_at(n);
                let (d, rest) = rest.split_at(4 * nsb);
                let (bsums, bs32) = rest.split_at(2 * (n / 16));
                row.qs = bytemuck::cast_slice(qs);
                row.d = bytemuck::cast_slice(d);
                row.bsums = bytemuck::cast_slice(bsums);
                row.bs32 = bytemuck::cast_slice(bs32);
            }
        }
        row
    }
}

/// Mutable counterpart of [`ActRow`], for the quantizers.
pub struct ActRowMut<'a> {
    pub qs: &'a mut [i8],
    pub d: &'a mut [f32],
    pub sum: &'a mut [i32],
    pub s: &'a mut [f32],
    pub bsums: &'a mut [i16],
    pub bs32: &'a mut [i16],
    pub x: &'a mut [f32],
}

impl<'a> ActRowMut<'a> {
    pub fn new(fmt: ActFormat, n: usize, bytes: &'a mut [u8]) -> ActRowMut<'a> {
        let mut row = ActRowMut {
            qs: &mut [],
            d: &mut [],
            sum: &mut [],
            s: &mut [],
            bsums: &mut [],
            bs32: &mut [],
            x: &mut [],
        };
        let bytes = &mut bytes[..fmt.row_bytes(n)];
        match fmt {
            ActFormat::F32 => row.x = bytemuck::cast_slice_mut(bytes),
            ActFormat::Q8_0 | ActFormat::Q8_1 => {
                let nb = n / QK;
                let (qs, rest) = bytes.split_at_mut(n);
                let (d, rest) = rest.split_at_mut(4 * nb);
                let (sum, s) = rest.split_at_mut(4 * nb);
                row.qs = bytemuck::cast_slice_mut(qs);
                row.d = bytemuck::cast_slice_mut(d);
                row.sum = bytemuck::cast_slice_mut(sum);
                if fmt == ActFormat::Q8_1 {
                    row.s = bytemuck::cast_slice_mut(&mut s[..4 * nb]);
                }
            }
            ActFormat::Q8K => {
                let nsb = n / QK_K;
                let (qs, rest) = bytes.split_at_mut(n);
                let (d, rest) = rest.split_at_mut(4 * nsb);
                let (bsums, bs32) = rest.split_at_mut(2 * (n / 16));
                row.qs = bytemuck::cast_slice_mut(qs);
                row.d = bytemuck::cast_slice_mut(d);
                row.bsums = bytemuck::cast_slice_mut(bsums);
                row.bs32 = bytemuck::cast_slice_mut(bs32);
            }
        }
        row
    }

    /// Stores Q8_0 block `b`.
    pub fn put_q8_0(&mut self, b: usize, blk: &BlockQ8_0) {
        self.qs[b * QK..(b + 1) * QK].copy_from_slice(&blk.qs);
        self.d[b] = fp16_to_fp32(blk.d);
        self.sum[b] = blk.qs.iter().map(|&q| i32::from(q)).sum();
    }

    /// Stores Q8_1 block `b`.
    pub fn put_q8_1(&mut self, b: usize, blk: &BlockQ8_1) {
        self.qs[b * QK..(b + 1) * QK].copy_from_slice(&blk.qs);
        self.d[b] = fp16_to_fp32(blk.d);
        self.sum[b] = blk.qs.iter().map(|&q| i32::from(q)).sum();
        self.s[b] = fp16_to_fp32(blk.s);
    }

    /// Stores Q8_K super-block `b`.
    pub fn put_q8_k(&mut self, b: usize, blk: &BlockQ8K) {
        self.qs[b * QK_K..(b + 1) * QK_K].copy_from_slice(&blk.qs);
        self.d[b] = blk.d;
        self.bsums[b * 16..(b + 1) * 16].copy_from_slice(&blk.bsums);
        for j in 0..8 {
            // Σ of 32 quants of at most 127 in magnitude fits an i16.
            self.bs32[b * 8 + j] = blk.bsums[2 * j] + blk.bsums[2 * j + 1];
        }
    }
}

impl ActRow<'_> {
    /// Q8_0 block `b` as ggml stores it.
    pub fn q8_0(&self, b: usize) -> BlockQ8_0 {
        let mut qs = [0i8; QK];
        qs.copy_from_slice(&self.qs[b * QK..(b + 1) * QK]);
        BlockQ8_0 {
            d: half::f16::from_f32(self.d[b]),
            qs,
        }
    }

    /// Q8_1 block `b` as ggml stores it.
    pub fn q8_1(&self, b: usize) -> BlockQ8_1 {
        let mut qs = [0i8; QK];
        qs.copy_from_slice(&self.qs[b * QK..(b + 1) * QK]);
        BlockQ8_1 {
            d: half::f16::from_f32(self.d[b]),
            s: half::f16::from_f32(self.s[b]),
            qs,
        }
    }

    /// Q8_K super-block `b` as ggml stores it.
    pub fn q8_k(&self, b: usize) -> BlockQ8K {
        let mut y = BlockQ8K::zeroed();
        y.qs.copy_from_slice(&self.qs[b * QK_K..(b + 1) * QK_K]);
        y.d = self.d[b];
        y.bsums.copy_from_slice(&self.bsums[b * 16..(b + 1) * 16]);
        y
    }
}

/// A 64-byte line, so that activation rows start on cache-line boundaries.
#[repr(C, align(64))]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Line(pub [u8; 64]);

/// The activations of a batch: `n_tok` rows of `cols` values in one layout.
#[derive(Default)]
pub struct Acts {
    buf: Vec<Line>,
    fmt: Option<ActFormat>,
    cols: usize,
    n_tok: usize,
}

impl Acts {
    /// Makes room for `n_tok` rows of `cols` values, keeping the allocation.
    pub fn reset(&mut self, fmt: ActFormat, cols: usize, n_tok: usize) {
        let lines = n_tok * fmt.row_stride(cols) / 64;
        if self.buf.len() < lines {
            self.buf.resize(lines, Line([0; 64]));
        }
        self.fmt = Some(fmt);
        self.cols = cols;
        self.n_tok = n_tok;
    }

    pub fn format(&self) -> ActFormat {
        self.fmt.expect("activations were laid out")
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn n_tok(&self) -> usize {
        self.n_tok
    }

    pub fn stride(&self) -> usize {
        self.format().row_stride(self.cols)
    }

    /// All rows, `stride` bytes apart.
    pub fn bytes(&self) -> &[u8] {
        let len = self.n_tok * self.stride();
        &bytemuck::cast_slice(&self.buf)[..len]
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.n_tok * self.stride();
        &mut bytemuck::cast_slice_mut(&mut self.buf)[..len]
    }

    pub fn row_bytes(&self, t: usize) -> &[u8] {
        let s = self.stride();
        &self.bytes()[t * s..(t + 1) * s]
    }

    pub fn row(&self, t: usize) -> ActRow<'_> {
        ActRow::new(self.format(), self.cols, self.row_bytes(t))
    }
}
