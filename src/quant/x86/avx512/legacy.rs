//! Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 against Q8_0/Q8_1 activations with AVX-512 VNNI.
//!
//! The row kernel takes sixteen blocks at a time: `vpermt2w` gathers the quants of four
//! (Q8_0: two) blocks out of two loads and their scales in the same pass, nibbles are
//! split with one variable shift, `vpdpbusd` multiplies unsigned weights by signed
//! activations, and a shuffle tree folds the eight products into one lane per block, so
//! the float work (convert, scale, accumulate) is one vector per sixteen blocks. The
//! weights' offset (8, 16, or 128 for Q8_0 made unsigned) comes off as `bias * Σa`.

use std::arch::x86_64::*;

use super::{mask64, reduce8};
use crate::quant::kernels::GemmJob;
use crate::quant::x86::pack;
use crate::quant::GgmlType;

pub(super) trait Legacy {
    const TY: GgmlType;
    const BYTES: usize;
    const QS: usize;
    /// Offset of `qh`, 0 if none.
    const QH: usize;
    /// Offset of `m`, 0 if none.
    const M: usize;
    const BIAS: i32;
    /// Word indices for `vpermt2w` over two 64-byte loads: quants of blocks 0,1 and 2,3
    /// (each 16 bytes twice, for the nibble shift); d (words 0..16) and m (16..32)
    /// repeated; qh of blocks 0..4.
    const IDX: [[u16; 32]; 4] = nibble_indices(Self::BYTES, Self::QS, Self::QH, Self::M);
}

const fn nibble_indices(bytes: usize, qs: usize, qh: usize, m: usize) -> [[u16; 32]; 4] {
    let mut idx = [[0u16; 32]; 4];
    let mut j = 0;
    while j < 32 {
        let lane = j / 8;
        let blk = lane / 2;
        idx[0][j] = ((blk * bytes + qs) / 2 + j % 8) as u16;
        idx[1][j] = (((blk + 2) * bytes + qs) / 2 + j % 8) as u16;
        idx[2][j] = if j < 16 {
            (((j % 4) * bytes) / 2) as u16
        } else {
            (((j % 4) * bytes + m) / 2) as u16
        };
        idx[3][j] = if j < 8 {
            (((j / 2) * bytes + qh) / 2 + j % 2) as u16
        } else {
            0
        };
        j += 1;
    }
    idx
}

macro_rules! legacy_type {
    ($name:ident, $ty:ident, $bytes:expr, $qs:expr, $qh:expr, $m:expr, $bias:expr) => {
        pub(super) struct $name;
        impl Legacy for $name {
            const TY: GgmlType = GgmlType::$ty;
            const BYTES: usize = $bytes;
            const QS: usize = $qs;
            const QH: usize = $qh;
            const M: usize = $m;
            const BIAS: i32 = $bias;
        }
    };
}

legacy_type!(Q4_0, Q4_0, 18, 2, 0, 0, 8);
legacy_type!(Q4_1, Q4_1, 20, 4, 0, 2, 0);
legacy_type!(Q5_0, Q5_0, 22, 6, 2, 0, 16);
legacy_type!(Q5_1, Q5_1, 24, 8, 4, 2, 0);
legacy_type!(Q8_0, Q8_0, 34, 2, 0, 0, 128);

/// Sixteen blocks' quants (two blocks per vector, in value order) and their d and m.
struct Chunk {
    w: [__m512i; 8],
    d: __m512,
    m: __m512,
}

/// Loads blocks `0..n` (n <= 16) from `p`; missing blocks are zero.
#[inline(always)]
unsafe fn load_nibbles<L: Legacy>(p: *const u8, n: usize) -> Chunk {
    // SAFETY (whole function): every load is masked to the `n * BYTES` bytes of the
    // chunk, which the caller guarantees are inside the row.
    unsafe {
        let idx_lo = _mm512_loadu_si512(L::IDX[0].as_ptr().cast());
        let idx_hi = _mm512_loadu_si512(L::IDX[1].as_ptr().cast());
        let idx_dm = _mm512_loadu_si512(L::IDX[2].as_ptr().cast());
        let idx_qh = _mm512_loadu_si512(L::IDX[3].as_ptr().cast());
        // Words of 128-bit lanes 1 and 3 shift by 4: those lanes take the high nibbles.
        let shifts = _mm512_set_epi64(
            0x0004_0004_0004_0004,
            0x0004_0004_0004_0004,
            0,
            0,
            0x0004_0004_0004_0004,
            0x0004_0004_0004_0004,
            0,
            0,
        );
        let nib = _mm512_set1_epi8(0x0F);
        let sixteen = _mm512_set1_epi8(0x10);
        let mut w = [_mm512_setzero_si512(); 8];
        let mut dm = _mm512_setzero_si512();
        for i in 0..4 {
            if 4 * i >= n {
                break;
            }
            let nbytes = (n - 4 * i).min(4) * L::BYTES;
            let base = p.add(4 * i * L::BYTES);
            let a = _mm512_maskz_loadu_epi8(mask64(nbytes), base.cast());
            let b = _mm512_maskz_loadu_epi8(mask64(nbytes.saturating_sub(64)), base.add(64).cast());
            let x0 = _mm512_permutex2var_epi16(a, idx_lo, b);
            let x1 = _mm512_permutex2var_epi16(a, idx_hi, b);
            let mut w0 = _mm512_and_si512(_mm512_srlv_epi16(x0, shifts), nib);
            let mut w1 = _mm512_and_si512(_mm512_srlv_epi16(x1, shifts), nib);
            if L::QH != 0 {
                let h = _mm512_castsi512_si128(_mm512_permutex2var_epi16(a, idx_qh, b));
                let k0 = _cvtu64_mask64(_mm_cvtsi128_si64(h) as u64);
                let k1 = _cvtu64_mask64(_mm_extract_epi64::<1>(h) as u64);
                w0 = _mm512_mask_add_epi8(w0, k0, w0, sixteen);
                w1 = _mm512_mask_add_epi8(w1, k1, w1, sixteen);
            }
            w[2 * i] = w0;
            w[2 * i + 1] = w1;
            let t = _mm512_permutex2var_epi16(a, idx_dm, b);
            dm = _mm512_mask_mov_epi16(dm, (0xFu32 << (4 * i)) | (0xFu32 << (16 + 4 * i)), t);
        }
        Chunk {
            w,
            d: _mm512_cvtph_ps(_mm512_castsi512_si256(dm)),
            m: _mm512_cvtph_ps(_mm512_extracti64x4_epi64::<1>(dm)),
        }
    }
}

/// Q8_0: two 34-byte blocks per pair of loads; quants made unsigned by flipping the sign
/// bit (`q + 128`).
#[inline(always)]
unsafe fn load_q8(p: *const u8, n: usize) -> Chunk {
    const IDX: [[u16; 32]; 2] = {
        let mut idx = [[0u16; 32]; 2];
        let mut j = 0;
        while j < 32 {
            idx[0][j] = if j < 16 { 1 + j } else { 18 + j - 16 } as u16;
            idx[1][j] = if j % 2 == 0 { 0 } else { 17 };
            j += 1;
        }
        idx
    };
    // SAFETY: loads masked to the chunk's `n * 34` bytes, inside the row.
    unsafe {
        let idx_q = _mm512_loadu_si512(IDX[0].as_ptr().cast());
        let idx_d = _mm512_loadu_si512(IDX[1].as_ptr().cast());
        let flip = _mm512_set1_epi8(-128);
        let mut w = [_mm512_setzero_si512(); 8];
        let mut dm = _mm512_setzero_si512();
        for (i, w) in w.iter_mut().enumerate() {
            if 2 * i >= n {
                break;
            }
            let nbytes = (n - 2 * i).min(2) * 34;
            let base = p.add(2 * i * 34);
            let a = _mm512_maskz_loadu_epi8(mask64(nbytes), base.cast());
            let b = _mm512_maskz_loadu_epi8(mask64(nbytes.saturating_sub(64)), base.add(64).cast());
            *w = _mm512_xor_si512(_mm512_permutex2var_epi16(a, idx_q, b), flip);
            let t = _mm512_permutex2var_epi16(a, idx_d, b);
            dm = _mm512_mask_mov_epi16(dm, 0x3u32 << (2 * i), t);
        }
        Chunk {
            w,
            d: _mm512_cvtph_ps(_mm512_castsi512_si256(dm)),
            m: _mm512_setzero_ps(),
        }
    }
}

/// Pointers into one activation row.
#[derive(Clone, Copy)]
struct Act {
    qs: *const i8,
    d: *const f32,
    sum: *const i32,
    s: *const f32,
}

impl Act {
    /// SAFETY: `row` starts a row of `n` values in the Q8_0/Q8_1 layout.
    unsafe fn new(row: *const u8, n: usize) -> Act {
        let nb = n / 32;
        // SAFETY: offsets within the row's layout (see `acts`).
        unsafe {
            Act {
                qs: row.cast(),
                d: row.add(n).cast(),
                sum: row.add(n + 4 * nb).cast(),
                s: row.add(n + 8 * nb).cast(),
            }
        }
    }
}

/// The sum of sixteen lanes by adjacent pairs: (0+1), then ((0+1)+(2+3)), and so on. The
/// tile kernel adds its per-block products in this same tree as they stream by, so the
/// row and tile kernels round identically.
#[inline(always)]
pub(super) unsafe fn tree16(p: __m512) -> f32 {
    // SAFETY: register-only.
    unsafe {
        let p = _mm512_add_ps(p, _mm512_permute_ps::<0b10_11_00_01>(p));
        let p = _mm512_add_ps(p, _mm512_permute_ps::<0b01_00_11_10>(p));
        let p = _mm512_add_ps(p, _mm512_shuffle_f32x4::<0b10_11_00_01>(p, p));
        let p = _mm512_add_ps(p, _mm512_shuffle_f32x4::<0b01_00_11_10>(p, p));
        _mm512_cvtss_f32(p)
    }
}

/// The products of sixteen blocks (lane b: block b0 + b) summed by [`tree16`].
#[inline(always)]
unsafe fn chunk_dot<L: Legacy>(c: &Chunk, a: Act, b0: usize, n: usize) -> f32 {
    // SAFETY: blocks b0..b0 + n exist in the activation row; loads are masked to them.
    unsafe {
        let mut v = [_mm512_setzero_si512(); 8];
        for (k, v) in v.iter_mut().enumerate() {
            let nb = n.saturating_sub(2 * k).min(2);
            if nb == 0 {
                break;
            }
            let x = _mm512_maskz_loadu_epi8(mask64(32 * nb), a.qs.add(32 * (b0 + 2 * k)));
            *v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c.w[k], x);
        }
        let mut s = reduce8(&v);
        let lanes = ((1u32 << n) - 1) as u16;
        if L::BIAS != 0 {
            let sums = _mm512_maskz_loadu_epi32(lanes, a.sum.add(b0).cast());
            s = _mm512_sub_epi32(s, _mm512_mullo_epi32(sums, _mm512_set1_epi32(L::BIAS)));
        }
        let da = _mm512_maskz_loadu_ps(lanes, a.d.add(b0));
        let f = _mm512_mul_ps(_mm512_cvtepi32_ps(s), da);
        let mut p = _mm512_mul_ps(f, c.d);
        if L::M != 0 {
            p = _mm512_fmadd_ps(c.m, _mm512_maskz_loadu_ps(lanes, a.s.add(b0)), p);
        }
        tree16(p)
    }
}

#[inline(always)]
unsafe fn load<L: Legacy>(p: *const u8, n: usize) -> Chunk {
    // SAFETY: as the loaders.
    unsafe {
        if L::TY == GgmlType::Q8_0 {
            load_q8(p, n)
        } else {
            load_nibbles::<L>(p, n)
        }
    }
}

/// # Safety
/// The CPU has the AVX-512 path's features; `w` holds `n / 32` blocks of `L`, `a` a
/// Q8_0/Q8_1 row of `n`.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn dot<L: Legacy>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let nb = n / 32;
    // SAFETY: chunks stay within the `nb` blocks of both rows.
    unsafe {
        let act = Act::new(a.as_ptr(), n);
        let mut acc = 0.0f32;
        let mut b0 = 0;
        while b0 + 16 <= nb {
            let c = load::<L>(w.as_ptr().add(b0 * L::BYTES), 16);
            acc += chunk_dot::<L>(&c, act, b0, 16);
            b0 += 16;
        }
        if b0 < nb {
            let c = load::<L>(w.as_ptr().add(b0 * L::BYTES), nb - b0);
            acc += chunk_dot::<L>(&c, act, b0, nb - b0);
        }
        acc
    }
}

/// Tokens per tile: four accumulators and their four tree levels next to the eight
/// weight vectors fill the 32 registers.
const T: usize = 4;

/// Sixteen rows x `TN` tokens over every block of a packed tile.
#[inline(always)]
unsafe fn tile<L: Legacy, const TN: usize>(
    pack: *const u32,
    nb: usize,
    job: &GemmJob,
    t0: usize,
    out: *mut f32,
    lanes: u16,
) {
    let unit = pack::unit_words(L::TY, 16);
    // SAFETY: the pack holds `nb` units; tokens t0..t0 + TN exist; `out` is the caller's.
    unsafe {
        let acts: [Act; TN] = std::array::from_fn(|t| {
            Act::new(job.acts.as_ptr().add((t0 + t) * job.act_stride), job.cols)
        });
        let mut acc = [_mm512_setzero_ps(); TN];
        // Partial sums of the current chunk of sixteen blocks, by tree level.
        let mut s0 = [_mm512_setzero_ps(); TN];
        let mut s1 = [_mm512_setzero_ps(); TN];
        let mut s2 = [_mm512_setzero_ps(); TN];
        let mut s3 = [_mm512_setzero_ps(); TN];
        for b in 0..nb {
            let u = pack.add(b * unit);
            let w: [__m512i; 8] =
                crate::quant::x86::vec_array!(8, g => _mm512_loadu_si512(u.add(16 * g).cast()));
            let dw = _mm512_loadu_ps(u.add(128).cast());
            let mw = if L::M != 0 {
                _mm512_loadu_ps(u.add(144).cast())
            } else {
                _mm512_setzero_ps()
            };
            let j = b % 16;
            let level = (j + 1).trailing_zeros() as usize;
            for t in 0..TN {
                let a = acts[t];
                let q = a.qs.add(32 * b).cast::<i32>();
                let mut s = if L::BIAS != 0 {
                    _mm512_set1_epi32(-L::BIAS * *a.sum.add(b))
                } else {
                    _mm512_setzero_si512()
                };
                for (g, &wg) in w.iter().enumerate() {
                    s = _mm512_dpbusd_epi32(s, wg, _mm512_set1_epi32(q.add(g).read_unaligned()));
                }
                let f = _mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(*a.d.add(b)));
                let mut p = _mm512_mul_ps(f, dw);
                if L::M != 0 {
                    p = _mm512_fmadd_ps(mw, _mm512_set1_ps(*a.s.add(b)), p);
                }
                if level > 0 {
                    p = _mm512_add_ps(s0[t], p);
                }
                if level > 1 {
                    p = _mm512_add_ps(s1[t], p);
                }
                if level > 2 {
                    p = _mm512_add_ps(s2[t], p);
                }
                if level > 3 {
                    p = _mm512_add_ps(s3[t], p);
                }
                match level {
                    0 => s0[t] = p,
                    1 => s1[t] = p,
                    2 => s2[t] = p,
                    3 => s3[t] = p,
                    _ => acc[t] = _mm512_add_ps(acc[t], p),
                }
            }
        }
        // A last, partial chunk: its levels combine as the row kernel's tree does with
        // zero lanes.
        let rest = nb % 16;
        if rest != 0 {
            for t in 0..TN {
                let mut p: Option<__m512> = None;
                for (l, part) in [s0[t], s1[t], s2[t], s3[t]].into_iter().enumerate() {
                    if rest & (1 << l) != 0 {
                        p = Some(match p {
                            None => part,
                            Some(p) => _mm512_add_ps(part, p),
                        });
                    }
                }
                acc[t] = _mm512_add_ps(acc[t], p.expect("rest is not zero"));
            }
        }
        for (t, &acc) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out.add((t0 + t) * job.out_stride), lanes, acc);
        }
    }
}

/// # Safety
/// The CPU has the AVX-512 path's features; `job` is consistent and its `out` writable as documented by
/// `TypeKernels::run_gemm`; `pack` holds `pack_bytes(cols)`, 4-byte aligned.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn gemm<L: Legacy>(job: &GemmJob, pack: &mut [u8]) {
    let nb = job.cols / 32;
    let words: &mut [u32] = bytemuck::cast_slice_mut(pack);
    let mut r0 = 0;
    while r0 < job.rows {
        let rows = (job.rows - r0).min(16);
        let w = &job.w[r0 * job.row_bytes..(r0 + rows) * job.row_bytes];
        pack::pack_tile(L::TY, 16, true, w, job.row_bytes, rows, words);
        let lanes = ((1u32 << rows) - 1) as u16;
        let p = words.as_ptr();
        // SAFETY: the caller's `out` covers these rows for every token.
        unsafe {
            let out = job.out.add(r0);
            let mut t0 = 0;
            while t0 + T <= job.n_tok {
                tile::<L, T>(p, nb, job, t0, out, lanes);
                t0 += T;
            }
            match job.n_tok - t0 {
                0 => {}
                1 => tile::<L, 1>(p, nb, job, t0, out, lanes),
                2 => tile::<L, 2>(p, nb, job, t0, out, lanes),
                _ => tile::<L, 3>(p, nb, job, t0, out, lanes),
            }
        }
        r0 += rows;
    }
}

pub(super) fn pack_bytes<L: Legacy>(cols: usize) -> usize {
    pack::tile_bytes(L::TY, 16, cols)
}

/// Bytes ahead of the row being multiplied that the row kernel prefetches.
const PREFETCH_AHEAD: usize = 4096;

/// # Safety
/// As [`gemm`]; needs no pack. Each output is [`dot`]'s, which the tile kernel matches.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn gemv<L: Legacy>(job: &GemmJob, _pack: &mut [u8]) {
    for r in 0..job.rows {
        let w = &job.w[r * job.row_bytes..(r + 1) * job.row_bytes];
        // Rows stream from memory one after another; asking for the lines a few rows
        // ahead keeps more misses in flight than the hardware prefetcher does alone.
        let ahead = w.as_ptr().wrapping_add(PREFETCH_AHEAD);
        for l in (0..job.row_bytes).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(l).cast());
        }
        for t in 0..job.n_tok {
            let a = &job.acts[t * job.act_stride..(t + 1) * job.act_stride];
            // SAFETY: forwarded contract; `out` covers row r of token t.
            unsafe { *job.out.add(t * job.out_stride + r) = dot::<L>(w, a, job.cols) };
        }
    }
}
