//! Packed Q4_0 groups ([`crate::quant::packed`]) against Q8_0 activations: per block, four
//! loads and a nibble split give the values of all sixteen rows, and each `vpdpbusd`
//! multiplies four of them per row by a broadcast of the token's matching four
//! activations. Up to four tokens share each unpacked block.

use std::arch::x86_64::*;

use crate::quant::packed::{ActPtrs, PackedJob, GROUP_ROWS, Q4_0};

/// Bytes ahead of the block being multiplied that the kernel prefetches: the groups
/// stream from memory, and asking early keeps more misses in flight. 2 kB rather than 16:
/// when the machine's memory is fast (60 GB/s for two threads), 16 kB ahead ran 10%
/// slower on a 7B model; when it is slow, no distance stood out (docs/BENCHMARKS.md).
const PREFETCH_AHEAD: usize = 2048;

/// Tokens `t0..t0 + TN` against one group.
#[inline(always)]
unsafe fn tile<const TN: usize>(job: &PackedJob, group: *const u8, g: usize, t0: usize) {
    let nb = job.cols / 32;
    // SAFETY: the job passed `check`: the group holds `nb` blocks of quants and then their
    // scales; tokens t0..t0 + TN have activation rows of `cols`; `out` is the caller's.
    unsafe {
        let acts: [ActPtrs; TN] = std::array::from_fn(|t| job.act(t0 + t));
        let nib = _mm512_set1_epi8(0x0F);
        let mut acc = [_mm512_setzero_ps(); TN];
        for b in 0..nb {
            let q = group.add(Q4_0.qs_offset(b));
            // The pair's nine lines, that far ahead: five with its first block, four with
            // its second.
            let ahead = group.wrapping_add(b / 2 * Q4_0.pair_bytes() + PREFETCH_AHEAD);
            for l in Q4_0.prefetch_lines(b) {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * l).cast());
            }
            let mut lo = [_mm512_setzero_si512(); 4];
            let mut hi = [_mm512_setzero_si512(); 4];
            for v in 0..4 {
                let x = _mm512_loadu_si512(q.add(64 * v).cast());
                lo[v] = _mm512_and_si512(x, nib);
                hi[v] = _mm512_and_si512(_mm512_srli_epi16::<4>(x), nib);
            }
            let dw = _mm512_cvtph_ps(_mm256_loadu_si256(group.add(Q4_0.d_offset(b)).cast()));
            for (t, a) in acts.iter().enumerate() {
                let aq = a.qs.add(32 * b).cast::<i32>();
                // Two chains, low and high nibbles, so the multiplies overlap.
                let mut s0 = _mm512_set1_epi32(-8 * *a.sum.add(b));
                let mut s1 = _mm512_setzero_si512();
                for v in 0..4 {
                    s0 = _mm512_dpbusd_epi32(
                        s0,
                        lo[v],
                        _mm512_set1_epi32(aq.add(v).read_unaligned()),
                    );
                    s1 = _mm512_dpbusd_epi32(
                        s1,
                        hi[v],
                        _mm512_set1_epi32(aq.add(4 + v).read_unaligned()),
                    );
                }
                let s = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
                let p = _mm512_mul_ps(_mm512_mul_ps(s, _mm512_set1_ps(*a.d.add(b))), dw);
                acc[t] = _mm512_add_ps(acc[t], p);
            }
        }
        for (t, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(
                job.out.add((t0 + t) * job.out_stride + g * GROUP_ROWS),
                *acc,
            );
        }
    }
}

/// # Safety
/// As [`crate::quant::packed::PackedFn`] for Q4_0, on a CPU with the AVX-512 path's
/// features.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn q4_0(job: &PackedJob) {
    crate::quant::x86::packed_tiles!(job, tile)
}
