//! Q4_K, Q5_K and Q6_K against Q8_K activations with AVX2.
//!
//! Row kernel: 32 values per vector; `vpmaddubsw` then `vpmaddwd` by the sub-block scale
//! (as 16-bit pairs) multiplies and scales in two steps, and one conversion per
//! super-block follows. Tile kernel: the packed tiles of `pack` with eight rows per
//! vector, as the AVX-512 one, with `vpdpbusd` spelled as `vpmaddubsw` + `vpmaddwd`.

use std::arch::x86_64::*;

use super::hsum;
use crate::quant::kernels::{GemmFn, GemmJob, GemmKernel, TypeKernels};
use crate::quant::x86::pack;
use crate::quant::GgmlType;

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

/// Q4_K/Q5_K scales and mins (ggml's `scale_min_k4`).
fn scales_mins(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let s: &[u8; 12] = s.try_into().expect("12 scale bytes");
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..8 {
        (sc[j], m[j]) = crate::quant::blocks::scale_min_k4(j, s);
    }
    (sc, m)
}

/// Bit `j` of each byte of `qh`, moved to bit 4.
#[inline(always)]
unsafe fn fifth(qh: __m256i, j: i32) -> __m256i {
    // SAFETY: register-only.
    unsafe {
        let b = _mm256_and_si256(
            _mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)),
            _mm256_set1_epi8(1),
        );
        _mm256_slli_epi16::<4>(b)
    }
}

/// Bits `s` and `s + 1` of each byte of `q`, moved to bits 4 and 5.
#[inline(always)]
unsafe fn high_pair(q: __m256i, s: i32) -> __m256i {
    // SAFETY: register-only.
    unsafe {
        let b = _mm256_and_si256(
            _mm256_srl_epi16(q, _mm_cvtsi32_si128(s)),
            _mm256_set1_epi8(3),
        );
        _mm256_slli_epi16::<4>(b)
    }
}

#[inline(always)]
unsafe fn dot_k45<const FIVE: bool>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let bytes = if FIVE { 176 } else { 144 };
    let qs_off = if FIVE { 48 } else { 16 };
    // SAFETY: every pointer stays inside super-block `sb` of both rows.
    unsafe {
        let act = Act::new(a.as_ptr(), n);
        let nib = _mm256_set1_epi8(0x0F);
        let mut acc = _mm256_setzero_ps();
        let mut macc = _mm_setzero_ps();
        for sb in 0..n / 256 {
            let blk = &w[sb * bytes..(sb + 1) * bytes];
            let (sc, mins) = scales_mins(&blk[4..16]);
            let qh = _mm256_loadu_si256(blk.as_ptr().add(16).cast());
            let mut isum = _mm256_setzero_si256();
            for k in 0..4 {
                let x = _mm256_loadu_si256(blk.as_ptr().add(qs_off + 32 * k).cast());
                let mut lo = _mm256_and_si256(x, nib);
                let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(x), nib);
                if FIVE {
                    lo = _mm256_or_si256(lo, fifth(qh, 2 * k as i32));
                    hi = _mm256_or_si256(hi, fifth(qh, 2 * k as i32 + 1));
                }
                let a0 = _mm256_loadu_si256(act.qs.add(256 * sb + 64 * k).cast());
                let a1 = _mm256_loadu_si256(act.qs.add(256 * sb + 64 * k + 32).cast());
                let p0 = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(lo, a0),
                    _mm256_set1_epi16(sc[2 * k] as i16),
                );
                let p1 = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(hi, a1),
                    _mm256_set1_epi16(sc[2 * k + 1] as i16),
                );
                isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
            }
            let da = *act.d.add(sb);
            acc = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(isum),
                _mm256_set1_ps(f16_at(blk, 0) * da),
                acc,
            );
            let m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(mins.as_ptr().cast()));
            let bs = _mm_loadu_si128(act.bs32.add(8 * sb).cast());
            let p = _mm_madd_epi16(m16, bs);
            macc = _mm_fmadd_ps(_mm_cvtepi32_ps(p), _mm_set1_ps(f16_at(blk, 2) * da), macc);
        }
        hsum(acc) - hsum(_mm256_set_m128(_mm_setzero_ps(), macc))
    }
}

/// # Safety
/// The CPU has AVX2, FMA and F16C; `w` holds `n / 256` Q4_K blocks, `a` a Q8_K row.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_k(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_k45::<false>(w, a, n) }
}

/// # Safety
/// As [`dot_q4_k`], for Q5_K.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q5_k(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_k45::<true>(w, a, n) }
}

/// # Safety
/// As [`dot_q4_k`], for Q6_K.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q6_k(w: &[u8], a: &[u8], n: usize) -> f32 {
    // SAFETY: every pointer stays inside super-block `sb` of both rows.
    unsafe {
        let act = Act::new(a.as_ptr(), n);
        let mut acc = _mm256_setzero_ps();
        for sb in 0..n / 256 {
            let blk = w.as_ptr().add(210 * sb);
            let d = half::f16::from_bits(blk.add(208).cast::<u16>().read_unaligned()).to_f32()
                * *act.d.add(sb);
            let (tot, _) = row_sums::<2>(blk, &act, sb);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot), _mm256_set1_ps(d), acc);
        }
        hsum(acc)
    }
}

const TK: usize = 2;

/// `Σ_g w_g · a_g` per lane: `vpdpbusd` in two AVX2 steps.
#[inline(always)]
unsafe fn dp(acc: __m256i, w: __m256i, a: i32) -> __m256i {
    // SAFETY: register-only.
    unsafe {
        let p = _mm256_maddubs_epi16(w, _mm256_set1_epi32(a));
        _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)))
    }
}

#[inline(always)]
unsafe fn store(acc: __m256, out: *mut f32, rows: usize) {
    let mut buf = [0f32; 8];
    // SAFETY: `out` holds `rows` elements (the caller's contract).
    unsafe {
        _mm256_storeu_ps(buf.as_mut_ptr(), acc);
        for (r, &v) in buf.iter().enumerate().take(rows) {
            *out.add(r) = v;
        }
    }
}

/// Eight rows x `TN` tokens of Q4_K/Q5_K (`SIX` false) or Q6_K over a packed tile.
#[inline(always)]
unsafe fn tile<const SIX: bool, const TN: usize>(
    pack: *const u32,
    nsb: usize,
    job: &GemmJob,
    t0: usize,
    out: *mut f32,
    rows: usize,
) {
    let unit = pack::unit_words(if SIX { GgmlType::Q6_K } else { GgmlType::Q4_K }, 8);
    // SAFETY: the pack holds `nsb` units; tokens t0..t0 + TN exist; `out` is the caller's.
    unsafe {
        let acts: [Act; TN] = std::array::from_fn(|t| {
            Act::new(job.acts.as_ptr().add((t0 + t) * job.act_stride), job.cols)
        });
        let mut acc = [_mm256_setzero_ps(); TN];
        for sb in 0..nsb {
            let u = pack.add(sb * unit);
            let mut isb = [_mm256_setzero_si256(); TN];
            for j in 0..8 {
                let w: [__m256i; 8] = crate::quant::x86::vec_array!(8, g => _mm256_loadu_si256(u.add(8 * (8 * j + g)).cast()));
                for t in 0..TN {
                    let q = acts[t].qs.add(256 * sb + 32 * j).cast::<i32>();
                    let a = |g: usize| q.add(g).read_unaligned();
                    if SIX {
                        let (mut sa, mut sb_) = (_mm256_setzero_si256(), _mm256_setzero_si256());
                        for g in 0..4 {
                            sa = dp(sa, w[g], a(g));
                            sb_ = dp(sb_, w[g + 4], a(g + 4));
                        }
                        let sca = _mm256_loadu_si256(u.add(512 + 8 * (2 * j)).cast());
                        let scb = _mm256_loadu_si256(u.add(512 + 8 * (2 * j + 1)).cast());
                        let s = _mm256_add_epi32(
                            _mm256_mullo_epi32(sa, sca),
                            _mm256_mullo_epi32(sb_, scb),
                        );
                        isb[t] = _mm256_add_epi32(isb[t], s);
                    } else {
                        let mut s = _mm256_setzero_si256();
                        for (g, &wg) in w.iter().enumerate() {
                            s = dp(s, wg, a(g));
                        }
                        let sc = _mm256_loadu_si256(u.add(512 + 8 * j).cast());
                        isb[t] = _mm256_add_epi32(isb[t], _mm256_mullo_epi32(s, sc));
                    }
                }
            }
            for t in 0..TN {
                let da = _mm256_set1_ps(*acts[t].d.add(sb));
                if SIX {
                    let bs = acts[t].bsums.add(16 * sb).cast::<i32>();
                    let mut off = _mm256_setzero_si256();
                    for i in 0..8 {
                        let scp = _mm256_loadu_si256(u.add(640 + 8 * i).cast());
                        off = _mm256_add_epi32(
                            off,
                            _mm256_madd_epi16(scp, _mm256_set1_epi32(bs.add(i).read_unaligned())),
                        );
                    }
                    let tot = _mm256_sub_epi32(isb[t], _mm256_slli_epi32::<5>(off));
                    let d = _mm256_loadu_ps(u.add(704).cast());
                    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(tot), da), d, acc[t]);
                } else {
                    let bs = acts[t].bs32.add(8 * sb).cast::<i32>();
                    let mut ms = _mm256_setzero_si256();
                    for i in 0..4 {
                        let m = _mm256_loadu_si256(u.add(576 + 8 * i).cast());
                        ms = _mm256_add_epi32(
                            ms,
                            _mm256_madd_epi16(m, _mm256_set1_epi32(bs.add(i).read_unaligned())),
                        );
                    }
                    let d = _mm256_loadu_ps(u.add(608).cast());
                    let dmin = _mm256_loadu_ps(u.add(616).cast());
                    acc[t] =
                        _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(isb[t]), da), d, acc[t]);
                    acc[t] =
                        _mm256_fnmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(ms), da), dmin, acc[t]);
                }
            }
        }
        for (t, &acc) in acc.iter().enumerate() {
            store(acc, out.add((t0 + t) * job.out_stride), rows);
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemm<const TY: u8>(job: &GemmJob, pack_buf: &mut [u8]) {
    let ty = [GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K][TY as usize];
    let nsb = job.cols / 256;
    let words: &mut [u32] = bytemuck::cast_slice_mut(pack_buf);
    let mut r0 = 0;
    while r0 < job.rows {
        let rows = (job.rows - r0).min(8);
        let w = &job.w[r0 * job.row_bytes..(r0 + rows) * job.row_bytes];
        pack::pack_tile(ty, 8, false, w, job.row_bytes, rows, words);
        let p = words.as_ptr();
        // SAFETY: the caller's `out` covers these rows for every token.
        unsafe {
            let out = job.out.add(r0);
            let mut t0 = 0;
            while t0 + TK <= job.n_tok {
                if TY == 2 {
                    tile::<true, TK>(p, nsb, job, t0, out, rows);
                } else {
                    tile::<false, TK>(p, nsb, job, t0, out, rows);
                }
                t0 += TK;
            }
            if t0 < job.n_tok {
                if TY == 2 {
                    tile::<true, 1>(p, nsb, job, t0, out, rows);
                } else {
                    tile::<false, 1>(p, nsb, job, t0, out, rows);
                }
            }
        }
        r0 += rows;
    }
}

pub(super) fn gemm_kernel(ty: GgmlType) -> Option<GemmKernel> {
    let (run, bytes): (_, fn(usize) -> usize) = match ty {
        GgmlType::Q4_K => (gemm::<0> as _, |c| pack::tile_bytes(GgmlType::Q4_K, 8, c)),
        GgmlType::Q5_K => (gemm::<1> as _, |c| pack::tile_bytes(GgmlType::Q5_K, 8, c)),
        _ => (gemm::<2> as _, |c| pack::tile_bytes(GgmlType::Q6_K, 8, c)),
    };
    TypeKernels::gemm_kernel(run, bytes, 8)
}

#[inline(always)]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    // SAFETY: register-only.
    unsafe {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s)))
    }
}

/// The exact integer sums of one row's super-block `sb`, the first as a vector whose
/// lanes add up to it (see the AVX-512 twin).
#[inline(always)]
unsafe fn row_sums<const TY: u8>(blk: *const u8, act: &Act, sb: usize) -> (__m256i, i32) {
    // SAFETY: `blk` is a whole super-block; the activation row holds super-block `sb`.
    unsafe {
        let nib = _mm256_set1_epi8(0x0F);
        if TY == 2 {
            let sc = _mm_loadu_si128(blk.add(192).cast());
            let mut isum = _mm256_setzero_si256();
            for h in 0..2 {
                let l0 = _mm256_loadu_si256(blk.add(64 * h).cast());
                let l1 = _mm256_loadu_si256(blk.add(64 * h + 32).cast());
                let q = _mm256_loadu_si256(blk.add(128 + 32 * h).cast());
                let units = [
                    _mm256_or_si256(_mm256_and_si256(l0, nib), high_pair(q, 0)),
                    _mm256_or_si256(_mm256_and_si256(l1, nib), high_pair(q, 2)),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(l0), nib),
                        high_pair(q, 4),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(l1), nib),
                        high_pair(q, 6),
                    ),
                ];
                for (k, &wq) in units.iter().enumerate() {
                    let unit = 4 * h + k;
                    let ax = _mm256_loadu_si256(act.qs.add(256 * sb + 32 * unit).cast());
                    let s = 2 * unit as i8;
                    let pick = _mm_setr_epi8(
                        s,
                        -1,
                        s,
                        -1,
                        s,
                        -1,
                        s,
                        -1,
                        s + 1,
                        -1,
                        s + 1,
                        -1,
                        s + 1,
                        -1,
                        s + 1,
                        -1,
                    );
                    let sc16 = _mm_srai_epi16::<8>(_mm_slli_epi16::<8>(_mm_shuffle_epi8(sc, pick)));
                    let scv = _mm256_set_m128i(
                        _mm_unpackhi_epi64(sc16, sc16),
                        _mm_unpacklo_epi64(sc16, sc16),
                    );
                    isum = _mm256_add_epi32(
                        isum,
                        _mm256_madd_epi16(_mm256_maddubs_epi16(wq, ax), scv),
                    );
                }
            }
            let bs = _mm256_loadu_si256(act.bsums.add(16 * sb).cast());
            let off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), bs);
            return (_mm256_sub_epi32(isum, _mm256_slli_epi32::<5>(off)), 0);
        }
        let five = TY == 1;
        let qs_off = if five { 48 } else { 16 };
        let (sc, mins) = scales_mins(std::slice::from_raw_parts(blk.add(4), 12));
        let qh = _mm256_loadu_si256(blk.add(16).cast());
        let mut isum = _mm256_setzero_si256();
        for k in 0..4 {
            let x = _mm256_loadu_si256(blk.add(qs_off + 32 * k).cast());
            let mut lo = _mm256_and_si256(x, nib);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(x), nib);
            if five {
                lo = _mm256_or_si256(lo, fifth(qh, 2 * k as i32));
                hi = _mm256_or_si256(hi, fifth(qh, 2 * k as i32 + 1));
            }
            let a0 = _mm256_loadu_si256(act.qs.add(256 * sb + 64 * k).cast());
            let a1 = _mm256_loadu_si256(act.qs.add(256 * sb + 64 * k + 32).cast());
            let p0 = _mm256_madd_epi16(
                _mm256_maddubs_epi16(lo, a0),
                _mm256_set1_epi16(sc[2 * k] as i16),
            );
            let p1 = _mm256_madd_epi16(
                _mm256_maddubs_epi16(hi, a1),
                _mm256_set1_epi16(sc[2 * k + 1] as i16),
            );
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
        }
        let m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(mins.as_ptr().cast()));
        let p = _mm_madd_epi16(m16, _mm_loadu_si128(act.bs32.add(8 * sb).cast()));
        (isum, hsum_i32(_mm256_zextsi128_si256(p)))
    }
}

/// Lane `r` of the result: the sum of the lanes of `v[r]`, folded in pairs, quads and
/// then halves (integer sums: exact in any order).
#[inline(always)]
unsafe fn lane_sums8(v: &[__m256i; 8]) -> __m256i {
    // SAFETY: register-only.
    unsafe {
        // per 128-bit lane: [a0 + a2, b0 + b2, a1 + a3, b1 + b3]
        let pair =
            |a, b| _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
        // per 128-bit lane: that lane's sums of rows r..r + 4
        let quad = |r: usize| {
            let (x, y) = (pair(v[r], v[r + 1]), pair(v[r + 2], v[r + 3]));
            _mm256_add_epi32(_mm256_unpacklo_epi64(x, y), _mm256_unpackhi_epi64(x, y))
        };
        let (x, y) = (quad(0), quad(4));
        _mm256_add_epi32(
            _mm256_permute2x128_si256::<0x20>(x, y),
            _mm256_permute2x128_si256::<0x31>(x, y),
        )
    }
}

/// One token against eight rows, each lane one row, with the tile kernel's float steps in
/// the same order.
#[inline(always)]
unsafe fn gemv_rows<const TY: u8>(job: &GemmJob, r0: usize, rows: usize, t: usize) {
    let bytes = [144, 176, 210][TY as usize];
    // SAFETY: rows r0..r0 + rows and token t exist; `out` is the caller's.
    unsafe {
        let act = Act::new(job.acts.as_ptr().add(t * job.act_stride), job.cols);
        let mut acc = _mm256_setzero_ps();
        for sb in 0..job.cols / 256 {
            let (mut ms, mut d, mut dmin) = ([0i32; 8], [0u16; 8], [0u16; 8]);
            let mut v = [_mm256_setzero_si256(); 8];
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
            let da = _mm256_set1_ps(*act.d.add(sb));
            let dv = _mm256_cvtph_ps(_mm_loadu_si128(d.as_ptr().cast()));
            let isv = _mm256_cvtepi32_ps(lane_sums8(&v));
            acc = _mm256_fmadd_ps(_mm256_mul_ps(isv, da), dv, acc);
            if TY != 2 {
                let dminv = _mm256_cvtph_ps(_mm_loadu_si128(dmin.as_ptr().cast()));
                let msv = _mm256_cvtepi32_ps(_mm256_loadu_si256(ms.as_ptr().cast()));
                acc = _mm256_fnmadd_ps(_mm256_mul_ps(msv, da), dminv, acc);
            }
        }
        store(acc, job.out.add(t * job.out_stride + r0), rows);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemv<const TY: u8>(job: &GemmJob, _pack: &mut [u8]) {
    let mut r0 = 0;
    while r0 < job.rows {
        let rows = (job.rows - r0).min(8);
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
