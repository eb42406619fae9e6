//! Packed Q4_0 groups ([`crate::quant::packed`]) against Q8_0 activations with AVX2: the
//! AVX-512 kernel's algorithm on two halves of eight rows, `vpmaddubsw` and `vpmaddwd`
//! standing in for `vpdpbusd` (nibble-by-i8 pair sums stay far from i16 saturation).

// Accumulators indexed by register number read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use crate::quant::packed::{d_offset, qs_offset, ActPtrs, PackedJob, GROUP_ROWS, PAIR_BYTES};

const PREFETCH_AHEAD: usize = 16384;

/// Σ over four-value groups of `w` (unsigned) times a broadcast of four activations.
#[inline(always)]
unsafe fn dot4(w: __m256i, a: *const i32) -> __m256i {
    // SAFETY: `a` points at four activation bytes; the rest is register-only.
    unsafe {
        let p = _mm256_maddubs_epi16(w, _mm256_set1_epi32(a.read_unaligned()));
        _mm256_madd_epi16(p, _mm256_set1_epi16(1))
    }
}

#[inline(always)]
unsafe fn tile<const TN: usize>(job: &PackedJob, group: *const u8, g: usize, t0: usize) {
    let nb = job.cols / 32;
    // SAFETY: as the AVX-512 kernel: the job passed `check`, `out` is the caller's.
    unsafe {
        let acts: [ActPtrs; TN] = std::array::from_fn(|t| job.act(t0 + t));
        let nib = _mm256_set1_epi8(0x0F);
        // [token][half of the group's rows]
        let mut acc = [[_mm256_setzero_ps(); 2]; TN];
        for b in 0..nb {
            let q = group.add(qs_offset(b));
            let d = group.add(d_offset(b));
            // The pair's nine lines, that far ahead: five with its first block, four with
            // its second.
            let ahead = group.wrapping_add(b / 2 * PAIR_BYTES + PREFETCH_AHEAD);
            for l in b % 2 * 5..5 + b % 2 * 4 {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * l).cast());
            }
            for half in 0..2 {
                let mut lo = [_mm256_setzero_si256(); 4];
                let mut hi = [_mm256_setzero_si256(); 4];
                for v in 0..4 {
                    let x = _mm256_loadu_si256(q.add(64 * v + 32 * half).cast());
                    lo[v] = _mm256_and_si256(x, nib);
                    hi[v] = _mm256_and_si256(_mm256_srli_epi16::<4>(x), nib);
                }
                let dw = _mm256_cvtph_ps(_mm_loadu_si128(d.add(16 * half).cast()));
                for (t, a) in acts.iter().enumerate() {
                    let aq = a.qs.add(32 * b).cast::<i32>();
                    let mut s0 = _mm256_set1_epi32(-8 * *a.sum.add(b));
                    let mut s1 = _mm256_setzero_si256();
                    for v in 0..4 {
                        s0 = _mm256_add_epi32(s0, dot4(lo[v], aq.add(v)));
                        s1 = _mm256_add_epi32(s1, dot4(hi[v], aq.add(4 + v)));
                    }
                    let s = _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1));
                    let p = _mm256_mul_ps(_mm256_mul_ps(s, _mm256_set1_ps(*a.d.add(b))), dw);
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
/// As [`crate::quant::packed::PackedFn`], on a CPU with AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn q4_0(job: &PackedJob) {
    crate::quant::x86::packed_tiles!(job, tile)
}
