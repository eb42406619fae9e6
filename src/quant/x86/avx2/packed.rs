//! Packed Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 groups ([`crate::quant::packed`]) against
//! Q8_0/Q8_1 activations with AVX2: per block and half of the group (eight rows), the
//! quant vectors become eight vectors of bytes, one per word of the token's block (the
//! 5-bit types' fifth bits shifted and masked into place); `vpmaddubsw` and `vpmaddwd`
//! multiply each by a broadcast of that word (4- and 5-bit by i8 pair sums stay far from
//! i16 saturation; Q8_0's signed weights take the sign trick, `|w|` by `a * sign(w)`). Up
//! to four tokens share each unpacked block.

// Accumulators indexed by register number read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use crate::quant::packed::{self, ActPtrs, Layout, PackedJob, GROUP_ROWS};

/// Bytes ahead of the block being multiplied that the kernel prefetches, as the AVX-512
/// kernel's (2 kB: 4% faster than 16 on a 7B model, docs/BENCHMARKS.md).
const PREFETCH_AHEAD: usize = 2048;

/// A packed type, for the kernel to specialize on.
trait Packed {
    const L: Layout;
}

struct Q4_0;
struct Q4_1;
struct Q5_0;
struct Q5_1;
struct Q8_0;

impl Packed for Q4_0 {
    const L: Layout = packed::Q4_0;
}
impl Packed for Q4_1 {
    const L: Layout = packed::Q4_1;
}
impl Packed for Q5_0 {
    const L: Layout = packed::Q5_0;
}
impl Packed for Q5_1 {
    const L: Layout = packed::Q5_1;
}
impl Packed for Q8_0 {
    const L: Layout = packed::Q8_0;
}

/// The fifth bits of vector `v`'s low and high nibbles, at bit 4 of each byte, from the
/// regrouped bits `qh` (bits 2v and 2v + 1 of each byte; see
/// [`packed::regroup_fifth`]). 16-bit shifts carry bits across bytes, but never into
/// bit 4.
#[inline(always)]
unsafe fn fifth_bits(qh: __m256i, v: usize) -> (__m256i, __m256i) {
    // SAFETY: register-only.
    unsafe {
        let (lo, hi) = match v {
            0 => (_mm256_slli_epi16::<4>(qh), _mm256_slli_epi16::<3>(qh)),
            1 => (_mm256_slli_epi16::<2>(qh), _mm256_slli_epi16::<1>(qh)),
            2 => (qh, _mm256_srli_epi16::<1>(qh)),
            _ => (_mm256_srli_epi16::<2>(qh), _mm256_srli_epi16::<3>(qh)),
        };
        let bit = _mm256_set1_epi8(0x10);
        (_mm256_and_si256(lo, bit), _mm256_and_si256(hi, bit))
    }
}

/// Σ over four-value groups of `w` (`signed` bytes, or unsigned) times a broadcast of
/// four activations at `a`: eight i32 sums, one per row.
#[inline(always)]
unsafe fn dot4(signed: bool, w: __m256i, a: *const i32) -> __m256i {
    // SAFETY: `a` points at four activation bytes; the rest is register-only.
    unsafe {
        let a = _mm256_set1_epi32(a.read_unaligned());
        let p = if signed {
            _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w))
        } else {
            _mm256_maddubs_epi16(w, a)
        };
        _mm256_madd_epi16(p, _mm256_set1_epi16(1))
    }
}

#[inline(always)]
unsafe fn tile<P: Packed, const TN: usize>(job: &PackedJob, group: *const u8, g: usize, t0: usize) {
    let l = P::L;
    let signed = l.vectors == 8;
    let nb = job.cols / 32;
    // SAFETY: the job passed `check` with this layout: the group holds `nb` blocks;
    // tokens t0..t0 + TN have activation rows of `cols` (with `s` for Q4_1's Q8_1 rows);
    // `out` is the caller's.
    unsafe {
        let acts: [ActPtrs; TN] = std::array::from_fn(|t| job.act(t0 + t));
        let nib = _mm256_set1_epi8(0x0F);
        // [token][half of the group's rows]
        let mut acc = [[_mm256_setzero_ps(); 2]; TN];
        for b in 0..nb {
            let q = group.add(l.qs_offset(b));
            let ahead = group.wrapping_add(b / 2 * l.pair_bytes() + PREFETCH_AHEAD);
            for line in l.prefetch_lines(b) {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast());
            }
            for half in 0..2 {
                // w[j] pairs with word j (values 4j..4j + 4) of the token's block.
                let mut w = [_mm256_setzero_si256(); 8];
                if l.vectors == 8 {
                    for v in 0..8 {
                        w[v] = _mm256_loadu_si256(q.add(64 * v + 32 * half).cast());
                    }
                } else {
                    let qh = if l.fifth {
                        _mm256_loadu_si256(group.add(l.qh_offset(b) + 32 * half).cast())
                    } else {
                        _mm256_setzero_si256()
                    };
                    for v in 0..4 {
                        let x = _mm256_loadu_si256(q.add(64 * v + 32 * half).cast());
                        w[v] = _mm256_and_si256(x, nib);
                        w[4 + v] = _mm256_and_si256(_mm256_srli_epi16::<4>(x), nib);
                        if l.fifth {
                            let (lo, hi) = fifth_bits(qh, v);
                            w[v] = _mm256_or_si256(w[v], lo);
                            w[4 + v] = _mm256_or_si256(w[4 + v], hi);
                        }
                    }
                }
                let scales =
                    |at: usize| _mm256_cvtph_ps(_mm_loadu_si128(group.add(at + 16 * half).cast()));
                let dw = scales(l.d_offset(b));
                let mw = if l.mins {
                    scales(l.m_offset(b))
                } else {
                    _mm256_setzero_ps()
                };
                for (t, a) in acts.iter().enumerate() {
                    let aq = a.qs.add(32 * b).cast::<i32>();
                    // Two chains, so the multiplies overlap.
                    let mut s0 = _mm256_set1_epi32(-l.bias * *a.sum.add(b));
                    let mut s1 = _mm256_setzero_si256();
                    for j in 0..4 {
                        s0 = _mm256_add_epi32(s0, dot4(signed, w[j], aq.add(j)));
                        s1 = _mm256_add_epi32(s1, dot4(signed, w[4 + j], aq.add(4 + j)));
                    }
                    let s = _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1));
                    let mut p = _mm256_mul_ps(_mm256_mul_ps(s, _mm256_set1_ps(*a.d.add(b))), dw);
                    if l.mins {
                        p = _mm256_fmadd_ps(mw, _mm256_set1_ps(*a.s.add(b)), p);
                    }
                    acc[t][half] = _mm256_add_ps(acc[t][half], p);
                }
            }
        }
        for (t, acc) in acc.iter().enumerate() {
            let out = job.out.add((t0 + t) * job.out_stride + g * GROUP_ROWS);
            _mm256_storeu_ps(out, acc[0]);
            _mm256_storeu_ps(out.add(8), acc[1]);
        }
    }
}

/// # Safety
/// As [`crate::quant::packed::PackedFn`] for Q4_0, on a CPU with AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn q4_0(job: &PackedJob) {
    crate::quant::x86::packed_tiles!(job, tile, Q4_0)
}

/// # Safety
/// As [`crate::quant::packed::PackedFn`] for Q4_1, on a CPU with AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn q4_1(job: &PackedJob) {
    crate::quant::x86::packed_tiles!(job, tile, Q4_1)
}

/// # Safety
/// As [`crate::quant::packed::PackedFn`] for Q5_0, on a CPU with AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn q5_0(job: &PackedJob) {
    crate::quant::x86::packed_tiles!(job, tile, Q5_0)
}

/// # Safety
/// As [`crate::quant::packed::PackedFn`] for Q5_1, on a CPU with AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn q5_1(job: &PackedJob) {
    crate::quant::x86::packed_tiles!(job, tile, Q5_1)
}

/// # Safety
/// As [`crate::quant::packed::PackedFn`] for Q8_0, on a CPU with AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn q8_0(job: &PackedJob) {
    crate::quant::x86::packed_tiles!(job, tile, Q8_0)
}
