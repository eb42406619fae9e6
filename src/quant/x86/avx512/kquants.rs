//! Q4_K, Q5_K and Q6_K against Q8_K activations with AVX-512 VNNI.
//!
//! Row kernel: a super-block is four vectors of 64 values in value order; one variable
//! shift splits the nibbles, `vpdpbusd` multiplies, and the sub-block scales multiply the
//! integer lanes before one conversion per super-block. The min (Q4_K, Q5_K) and offset
//! (Q6_K) terms use the activations' precomputed sums. Tile kernel: the packed tiles of
//! `pack`, sixteen rows per vector, four tokens per pass.

use std::arch::x86_64::*;

use crate::quant::kernels::{GemmFn, GemmJob, GemmKernel, TypeKernels};
use crate::quant::x86::pack;
use crate::quant::GgmlType;

/// Pointers into one Q8_K activation row.
#[derive(Clone, Copy)]
struct Act {
    qs: *const i8,
    d: *const f32,
    bsums: *const i16,
    bs32: *const i16,
}

impl Act {
    /// SAFETY: `row` starts a Q8_K-layout row of `n` values.
    unsafe fn new(row: *const u8, n: usize) -> Act {
        let nsb = n / 256;
        // SAFETY: offsets within the row's layout (see `acts`).
        unsafe {
            Act {
                qs: row.cast(),
                d: row.add(n).cast(),
                bsums: row.add(n + 4 * nsb).cast(),
                bs32: row.add(n + 4 * nsb + 2 * (n / 16)).cast(),
            }
        }
    }
}

fn f16_at(p: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([p[at], p[at + 1]]).to_f32()
}

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The eight six-bit scales and eight mins of a Q4_K/Q5_K super-block, as two u64 of
/// bytes (ggml's `utmp` shuffle).
fn scales_mins(s: &[u8]) -> (u64, u64) {
    let (s0, s1, s2) = (word(s, 0), word(s, 4), word(s, 8));
    let u0 = s0 & 0x3f3f_3f3f;
    let u1 = (s2 & 0x0f0f_0f0f) | (((s0 >> 6) & 0x0303_0303) << 4);
    let u2 = s1 & 0x3f3f_3f3f;
    let u3 = ((s2 >> 4) & 0x0f0f_0f0f) | (((s1 >> 6) & 0x0303_0303) << 4);
    (
        u64::from(u0) | (u64::from(u1) << 32),
        u64::from(u2) | (u64::from(u3) << 32),
    )
}

#[inline(always)]
unsafe fn dot_k45<const FIVE: bool>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let bytes = if FIVE { 176 } else { 144 };
    let qs_off = if FIVE { 48 } else { 16 };
    // SAFETY: every pointer stays inside super-block `sb` of both rows.
    unsafe {
        let act = Act::new(a.as_ptr(), n);
        let shifts = _mm512_set_epi64(
            0x0004_0004_0004_0004,
            0x0004_0004_0004_0004,
            0x0004_0004_0004_0004,
            0x0004_0004_0004_0004,
            0,
            0,
            0,
            0,
        );
        let nib = _mm512_set1_epi8(0x0F);
        let sixteen = _mm512_set1_epi8(0x10);
        let mut acc = _mm512_setzero_ps();
        let mut macc = _mm_setzero_ps();
        for sb in 0..n / 256 {
            let blk = &w[sb * bytes..(sb + 1) * bytes];
            let (sc, mins) = scales_mins(&blk[4..16]);
            let sc = _mm_cvtsi64_si128(sc as i64);
            let qs = blk.as_ptr().add(qs_off);
            let qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(blk.as_ptr().add(16).cast()));
            let mut isum = _mm512_setzero_si512();
            for k in 0..4 {
                let x = _mm512_broadcast_i64x4(_mm256_loadu_si256(qs.add(32 * k).cast()));
                let mut wq = _mm512_and_si512(_mm512_srlv_epi16(x, shifts), nib);
                if FIVE {
                    let sel = _mm512_inserti64x4::<1>(
                        _mm512_set1_epi8((1u8 << (2 * k)) as i8),
                        _mm256_set1_epi8((1u8 << (2 * k + 1)) as i8),
                    );
                    let m = _mm512_test_epi8_mask(qh, sel);
                    wq = _mm512_mask_add_epi8(wq, m, wq, sixteen);
                }
                let ax = _mm512_loadu_si512(act.qs.add(256 * sb + 64 * k).cast());
                let v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, ax);
                let pick = _mm_set_epi64x(
                    0x0101_0101_0101_0101 * (2 * k as i64 + 1),
                    0x0101_0101_0101_0101 * (2 * k as i64),
                );
                let scv = _mm512_cvtepu8_epi32(_mm_shuffle_epi8(sc, pick));
                isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(v, scv));
            }
            let da = *act.d.add(sb);
            let d = f16_at(blk, 0) * da;
            let dmin = f16_at(blk, 2) * da;
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d), acc);
            let m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(mins as i64));
            let bs = _mm_loadu_si128(act.bs32.add(8 * sb).cast());
            let p = _mm_madd_epi16(m16, bs);
            macc = _mm_fmadd_ps(_mm_cvtepi32_ps(p), _mm_set1_ps(dmin), macc);
        }
        let m = _mm_add_ps(macc, _mm_movehl_ps(macc, macc));
        let m = _mm_add_ss(m, _mm_shuffle_ps::<1>(m, m));
        _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(m)
    }
}

/// # Safety
/// The CPU has AVX-512 VNNI; `w` holds `n / 256` Q4_K blocks, `a` a Q8_K row of `n`.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_k(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_k45::<false>(w, a, n) }
}

/// # Safety
/// As [`dot_q4_k`], for Q5_K.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn dot_q5_k(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_k45::<true>(w, a, n) }
}

/// # Safety
/// As [`dot_q4_k`], for Q6_K.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn dot_q6_k(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: every pointer stays inside super-block `sb` of both rows.
    unsafe {
        let act = Act::new(a.as_ptr(), n);
        let mut acc = _mm512_setzero_ps();
        for sb in 0..n / 256 {
            let blk = w.as_ptr().add(210 * sb);
            let (isum, _) = row_sums::<2>(blk, &act, sb);
            let d = half::f16::from_bits(blk.add(208).cast::<u16>().read_unaligned()).to_f32()
                * *act.d.add(sb);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d), acc);
        }
        _mm512_reduce_add_ps(acc)
    }
}

const TK: usize = 4;

/// Sixteen rows x `TN` tokens of Q4_K/Q5_K over every super-block of a packed tile.
#[inline(always)]
unsafe fn tile_k45<const TN: usize>(
    pack: *const u32,
    nsb: usize,
    job: &GemmJob,
    t0: usize,
    out: *mut f32,
    lanes: u16,
) {
    let unit = pack::unit_words(GgmlType::Q4_K, 16);
    // SAFETY: the pack holds `nsb` units; tokens t0..t0 + TN exist; `out` is the caller's.
    unsafe {
        let acts: [Act; TN] = std::array::from_fn(|t| {
            Act::new(job.acts.as_ptr().add((t0 + t) * job.act_stride), job.cols)
        });
        let mut acc = [_mm512_setzero_ps(); TN];
        for sb in 0..nsb {
            let u = pack.add(sb * unit);
            let mut isb = [_mm512_setzero_si512(); TN];
            for j in 0..8 {
                let w: [__m512i; 8] = crate::quant::x86::vec_array!(8, g => _mm512_loadu_si512(u.add(16 * (8 * j + g)).cast()));
                let sc = _mm512_loadu_si512(u.add(1024 + 16 * j).cast());
                for t in 0..TN {
                    let q = acts[t].qs.add(256 * sb + 32 * j).cast::<i32>();
                    let mut s = _mm512_setzero_si512();
                    for (g, &wg) in w.iter().enumerate() {
                        s = _mm512_dpbusd_epi32(
                            s,
                            wg,
                            _mm512_set1_epi32(q.add(g).read_unaligned()),
                        );
                    }
                    isb[t] = _mm512_add_epi32(isb[t], _mm512_mullo_epi32(s, sc));
                }
            }
            let d = _mm512_loadu_ps(u.add(1216).cast());
            let dmin = _mm512_loadu_ps(u.add(1232).cast());
            for t in 0..TN {
                let bs = acts[t].bs32.add(8 * sb).cast::<i32>();
                let mut ms = _mm512_setzero_si512();
                for i in 0..4 {
                    let m = _mm512_loadu_si512(u.add(1152 + 16 * i).cast());
                    ms = _mm512_dpwssd_epi32(ms, m, _mm512_set1_epi32(bs.add(i).read_unaligned()));
                }
                let da = _mm512_set1_ps(*acts[t].d.add(sb));
                acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isb[t]), da), d, acc[t]);
                acc[t] = _mm512_fnmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(ms), da), dmin, acc[t]);
            }
        }
        for (t, &acc) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out.add((t0 + t) * job.out_stride), lanes, acc);
        }
    }
}

/// Sixteen rows x `TN` tokens of Q6_K.
#[inline(always)]
unsafe fn tile_k6<const TN: usize>(
    pack: *const u32,
    nsb: usize,
    job: &GemmJob,
    t0: usize,
    out: *mut f32,
    lanes: u16,
) {
    let unit = pack::unit_words(GgmlType::Q6_K, 16);
    // SAFETY: as `tile_k45`.
    unsafe {
        let acts: [Act; TN] = std::array::from_fn(|t| {
            Act::new(job.acts.as_ptr().add((t0 + t) * job.act_stride), job.cols)
        });
        let mut acc = [_mm512_setzero_ps(); TN];
        for sb in 0..nsb {
            let u = pack.add(sb * unit);
            let mut isb = [_mm512_setzero_si512(); TN];
            for j in 0..8 {
                let w: [__m512i; 8] = crate::quant::x86::vec_array!(8, g => _mm512_loadu_si512(u.add(16 * (8 * j + g)).cast()));
                let sca = _mm512_loadu_si512(u.add(1024 + 16 * (2 * j)).cast());
                let scb = _mm512_loadu_si512(u.add(1024 + 16 * (2 * j + 1)).cast());
                for t in 0..TN {
                    let q = acts[t].qs.add(256 * sb + 32 * j).cast::<i32>();
                    let mut sa = _mm512_setzero_si512();
                    let mut sb_ = _mm512_setzero_si512();
                    for g in 0..4 {
                        sa = _mm512_dpbusd_epi32(
                            sa,
                            w[g],
                            _mm512_set1_epi32(q.add(g).read_unaligned()),
                        );
                        sb_ = _mm512_dpbusd_epi32(
                            sb_,
                            w[g + 4],
                            _mm512_set1_epi32(q.add(g + 4).read_unaligned()),
                        );
                    }
                    let s =
                        _mm512_add_epi32(_mm512_mullo_epi32(sa, sca), _mm512_mullo_epi32(sb_, scb));
                    isb[t] = _mm512_add_epi32(isb[t], s);
                }
            }
            let d = _mm512_loadu_ps(u.add(1408).cast());
            for t in 0..TN {
                let bs = acts[t].bsums.add(16 * sb).cast::<i32>();
                let mut off = _mm512_setzero_si512();
                for i in 0..8 {
                    let scp = _mm512_loadu_si512(u.add(1280 + 16 * i).cast());
                    off = _mm512_dpwssd_epi32(
                        off,
                        scp,
                        _mm512_set1_epi32(bs.add(i).read_unaligned()),
                    );
                }
                let tot = _mm512_sub_epi32(isb[t], _mm512_slli_epi32::<5>(off));
                let da = _mm512_set1_ps(*acts[t].d.add(sb));
                acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(tot), da), d, acc[t]);
            }
        }
        for (t, &acc) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out.add((t0 + t) * job.out_stride), lanes, acc);
        }
    }
}

macro_rules! tiles {
    ($tile:ident, $p:expr, $nsb:expr, $job:expr, $out:expr, $lanes:expr) => {{
        let mut t0 = 0;
        while t0 + TK <= $job.n_tok {
            $tile::<TK>($p, $nsb, $job, t0, $out, $lanes);
            t0 += TK;
        }
        match $job.n_tok - t0 {
            0 => {}
            1 => $tile::<1>($p, $nsb, $job, t0, $out, $lanes),
            2 => $tile::<2>($p, $nsb, $job, t0, $out, $lanes),
            _ => $tile::<3>($p, $nsb, $job, t0, $out, $lanes),
        }
    }};
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn gemm<const TY: u8>(job: &GemmJob, pack_buf: &mut [u8]) {
    let ty = [GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K][TY as usize];
    let nsb = job.cols / 256;
    let words: &mut [u32] = bytemuck::cast_slice_mut(pack_buf);
    let mut r0 = 0;
    while r0 < job.rows {
        let rows = (job.rows - r0).min(16);
        let w = &job.w[r0 * job.row_bytes..(r0 + rows) * job.row_bytes];
        pack::pack_tile(ty, 16, true, w, job.row_bytes, rows, words);
        let lanes = ((1u32 << rows) - 1) as u16;
        let p = words.as_ptr();
        // SAFETY: the caller's `out` covers these rows for every token.
        unsafe {
            let out = job.out.add(r0);
            if TY == 2 {
                tiles!(tile_k6, p, nsb, job, out, lanes);
            } else {
                tiles!(tile_k45, p, nsb, job, out, lanes);
            }
        }
        r0 += rows;
    }
}

pub(super) fn gemm_kernel(ty: GgmlType) -> Option<GemmKernel> {
    let (run, bytes): (_, fn(usize) -> usize) = match ty {
        GgmlType::Q4_K => (gemm::<0> as _, |c| pack::tile_bytes(GgmlType::Q4_K, 16, c)),
        GgmlType::Q5_K => (gemm::<1> as _, |c| pack::tile_bytes(GgmlType::Q5_K, 16, c)),
        _ => (gemm::<2> as _, |c| pack::tile_bytes(GgmlType::Q6_K, 16, c)),
    };
    TypeKernels::gemm_kernel(run, bytes, 16)
}

/// The exact integer sums of one row's super-block `sb` for the row kernel, the first as
/// a vector whose lanes add up to it: Q4_K/Q5_K `(Σ sc·q·a, Σ m·bs32)`; Q6_K
/// `(Σ sc·q·a - 32 Σ sc·bsums, 0)`.
#[inline(always)]
unsafe fn row_sums<const TY: u8>(blk: *const u8, act: &Act, sb: usize) -> (__m512i, i32) {
    // SAFETY: `blk` is a whole super-block; the activation row holds super-block `sb`.
    unsafe {
        if TY == 2 {
            let sc = _mm_loadu_si128(blk.add(192).cast());
            let s02 = _mm512_set_epi64(
                0x0002_0002_0002_0002,
                0x0002_0002_0002_0002,
                0x0002_0002_0002_0002,
                0x0002_0002_0002_0002,
                0,
                0,
                0,
                0,
            );
            let s46 = _mm512_add_epi16(s02, _mm512_set1_epi16(4));
            let nib = _mm512_set1_epi8(0x0F);
            let three = _mm512_set1_epi8(0x03);
            let mut isum = _mm512_setzero_si512();
            for h in 0..2 {
                let l = _mm512_loadu_si512(blk.add(64 * h).cast());
                let q = _mm512_broadcast_i64x4(_mm256_loadu_si256(blk.add(128 + 32 * h).cast()));
                let hi02 =
                    _mm512_slli_epi16::<4>(_mm512_and_si512(_mm512_srlv_epi16(q, s02), three));
                let hi46 =
                    _mm512_slli_epi16::<4>(_mm512_and_si512(_mm512_srlv_epi16(q, s46), three));
                let q0 = _mm512_or_si512(_mm512_and_si512(l, nib), hi02);
                let q1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16::<4>(l), nib), hi46);
                for (j, wq) in [q0, q1].into_iter().enumerate() {
                    let k = 2 * h + j;
                    let ax = _mm512_loadu_si512(act.qs.add(256 * sb + 64 * k).cast());
                    let v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, ax);
                    let b = 4 * k as i32;
                    let pick = _mm_setr_epi32(
                        b * 0x0101_0101,
                        (b + 1) * 0x0101_0101,
                        (b + 2) * 0x0101_0101,
                        (b + 3) * 0x0101_0101,
                    );
                    let scv = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc, pick));
                    isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(v, scv));
                }
            }
            let bs = _mm256_loadu_si256(act.bsums.add(16 * sb).cast());
            let off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), bs);
            let off = _mm512_slli_epi32::<5>(_mm512_zextsi256_si512(off));
            return (_mm512_sub_epi32(isum, off), 0);
        }
        let five = TY == 1;
        let qs_off = if five { 48 } else { 16 };
        let scales = std::slice::from_raw_parts(blk.add(4), 12);
        let (sc, mins) = scales_mins(scales);
        let sc = _mm_cvtsi64_si128(sc as i64);
        let shifts = _mm512_set_epi64(
            0x0004_0004_0004_0004,
            0x0004_0004_0004_0004,
            0x0004_0004_0004_0004,
            0x0004_0004_0004_0004,
            0,
            0,
            0,
            0,
        );
        let nib = _mm512_set1_epi8(0x0F);
        let qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(blk.add(16).cast()));
        let mut isum = _mm512_setzero_si512();
        for k in 0..4 {
            let x = _mm512_broadcast_i64x4(_mm256_loadu_si256(blk.add(qs_off + 32 * k).cast()));
            let mut wq = _mm512_and_si512(_mm512_srlv_epi16(x, shifts), nib);
            if five {
                let sel = _mm512_inserti64x4::<1>(
                    _mm512_set1_epi8((1u8 << (2 * k)) as i8),
                    _mm256_set1_epi8((1u8 << (2 * k + 1)) as i8),
                );
                let m = _mm512_test_epi8_mask(qh, sel);
                wq = _mm512_mask_add_epi8(wq, m, wq, _mm512_set1_epi8(0x10));
            }
            let ax = _mm512_loadu_si512(act.qs.add(256 * sb + 64 * k).cast());
            let v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, ax);
            let pick = _mm_set_epi64x(
                0x0101_0101_0101_0101 * (2 * k as i64 + 1),
                0x0101_0101_0101_0101 * (2 * k as i64),
            );
            let scv = _mm512_cvtepu8_epi32(_mm_shuffle_epi8(sc, pick));
            isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(v, scv));
        }
        let m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(mins as i64));
        let p = _mm_madd_epi16(m16, _mm_loadu_si128(act.bs32.add(8 * sb).cast()));
        let p = _mm_add_epi32(p, _mm_shuffle_epi32::<0b01_00_11_10>(p));
        let p = _mm_add_epi32(p, _mm_shuffle_epi32::<0b10_11_00_01>(p));
        (isum, _mm_cvtsi128_si32(p))
    }
}

/// Lane `r` of the result: the sum of the lanes of `v[r]`, folded in pairs, quads, then
/// the 128-bit lanes twice (integer sums: exact in any order).
#[inline(always)]
unsafe fn lane_sums16(v: &[__m512i; 16]) -> __m512i {
    // SAFETY: register-only.
    unsafe {
        // per 128-bit lane: [a0 + a2, b0 + b2, a1 + a3, b1 + b3]
        let pair =
            |a, b| _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
        // per 128-bit lane: that lane's sums of rows r..r + 4
        let quad = |r: usize| {
            let (x, y) = (pair(v[r], v[r + 1]), pair(v[r + 2], v[r + 3]));
            _mm512_add_epi32(_mm512_unpacklo_epi64(x, y), _mm512_unpackhi_epi64(x, y))
        };
        // the 128-bit lanes of two vectors of four rows, added by pairs
        let fold = |x, y| {
            _mm512_add_epi32(
                _mm512_shuffle_i32x4::<0b10_00_10_00>(x, y),
                _mm512_shuffle_i32x4::<0b11_01_11_01>(x, y),
            )
        };
        fold(fold(quad(0), quad(4)), fold(quad(8), quad(12)))
    }
}

/// One token against sixteen rows, each lane one row, with the tile kernel's float steps
/// in the same order (see the legacy row kernel).
#[inline(always)]
unsafe fn gemv_rows<const TY: u8>(job: &GemmJob, r0: usize, rows: usize, t: usize) {
    let bytes = [144, 176, 210][TY as usize];
    // SAFETY: rows r0..r0 + rows and token t exist; `out` is the caller's.
    unsafe {
        let act = Act::new(job.acts.as_ptr().add(t * job.act_stride), job.cols);
        let mut acc = _mm512_setzero_ps();
        for sb in 0..job.cols / 256 {
            let (mut ms, mut d, mut dmin) = ([0i32; 16], [0u16; 16], [0u16; 16]);
            let mut v = [_mm512_setzero_si512(); 16];
            for r in 0..rows {
                let blk = job.w.as_ptr().add((r0 + r) * job.row_bytes + sb * bytes);
                for l in 0..bytes.div_ceil(64) {
                    _mm_prefetch::<_MM_HINT_T0>(blk.wrapping_add(2048 + 64 * l).cast());
                }
                (v[r], ms[r]) = row_sums::<TY>(blk, &act, sb);
                if TY == 2 {
                    d[r] = blk.add(208).cast::<u16>().read_unaligned();
                } else {
                    d[r] = blk.cast::<u16>().read_unaligned();
                    dmin[r] = blk.add(2).cast::<u16>().read_unaligned();
                }
            }
            let is = lane_sums16(&v);
            let da = _mm512_set1_ps(*act.d.add(sb));
            let dv = _mm512_cvtph_ps(_mm256_loadu_si256(d.as_ptr().cast()));
            let isv = _mm512_cvtepi32_ps(is);
            acc = _mm512_fmadd_ps(_mm512_mul_ps(isv, da), dv, acc);
            if TY != 2 {
                let dminv = _mm512_cvtph_ps(_mm256_loadu_si256(dmin.as_ptr().cast()));
                let msv = _mm512_cvtepi32_ps(_mm512_loadu_si512(ms.as_ptr().cast()));
                acc = _mm512_fnmadd_ps(_mm512_mul_ps(msv, da), dminv, acc);
            }
        }
        let lanes = ((1u32 << rows) - 1) as u16;
        _mm512_mask_storeu_ps(job.out.add(t * job.out_stride + r0), lanes, acc);
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn gemv<const TY: u8>(job: &GemmJob, _pack: &mut [u8]) {
    let mut r0 = 0;
    while r0 < job.rows {
        let rows = (job.rows - r0).min(16);
        for t in 0..job.n_tok {
            // SAFETY: forwarded contract.
            unsafe { gemv_rows::<TY>(job, r0, rows, t) };
        }
        r0 += rows;
    }
}

pub(super) fn gemv_kernel(ty: GgmlType) -> GemmFn {
    match ty {
        GgmlType::Q4_K => gemv::<0>,
        GgmlType::Q5_K => gemv::<1>,
        _ => gemv::<2>,
    }
}
