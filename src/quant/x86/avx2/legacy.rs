//! Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 against Q8_0/Q8_1 activations with AVX2.
//!
//! One block per vector: `vpmaddubsw` (unsigned weights by signed activations) and
//! `vpmaddwd` give eight partial sums per block, eight blocks fold into one vector of
//! per-block sums, and the float work is one vector per eight blocks. Q8_0 weights are
//! signed, so they take the sign trick (`|w|` by `a * sign(w)`), which keeps the 16-bit
//! pair sums in range.

use std::arch::x86_64::*;

use crate::quant::kernels::GemmJob;
use crate::quant::x86::pack;
use crate::quant::GgmlType;

pub(super) trait Legacy {
    const TY: GgmlType;
    const BYTES: usize;
    const QS: usize;
    const QH: usize;
    const M: usize;
    const BIAS: i32;
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
legacy_type!(Q8_0, Q8_0, 34, 2, 0, 0, 0);

/// 32 bytes, byte j = 0x10 if bit j of `bits` is set.
#[inline(always)]
unsafe fn fifth_bits(bits: u32) -> __m256i {
    // SAFETY: register-only.
    unsafe {
        let v = _mm256_set1_epi32(bits as i32);
        let spread = _mm256_shuffle_epi8(
            v,
            _mm256_setr_epi64x(
                0,
                0x0101_0101_0101_0101,
                0x0202_0202_0202_0202,
                0x0303_0303_0303_0303,
            ),
        );
        let sel = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
        let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel);
        _mm256_and_si256(set, _mm256_set1_epi8(0x10))
    }
}

/// The 32 quants of the block at `p` in value order (Q8_0: signed).
#[inline(always)]
unsafe fn quants<L: Legacy>(p: *const u8) -> __m256i {
    // SAFETY: the block's bytes are in the row.
    unsafe {
        if L::TY == GgmlType::Q8_0 {
            return _mm256_loadu_si256(p.add(2).cast());
        }
        let x = _mm_loadu_si128(p.add(L::QS).cast());
        let w = _mm256_and_si256(
            _mm256_set_m128i(_mm_srli_epi16::<4>(x), x),
            _mm256_set1_epi8(0x0F),
        );
        if L::QH != 0 {
            let qh = p.add(L::QH).cast::<u32>().read_unaligned();
            return _mm256_or_si256(w, fifth_bits(qh));
        }
        w
    }
}

/// Eight i32 partial sums of `w · a`.
#[inline(always)]
unsafe fn mul_sum<L: Legacy>(w: __m256i, a: __m256i) -> __m256i {
    // SAFETY: register-only.
    unsafe {
        let p = if L::TY == GgmlType::Q8_0 {
            _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w))
        } else {
            _mm256_maddubs_epi16(w, a)
        };
        _mm256_madd_epi16(p, _mm256_set1_epi16(1))
    }
}

/// Folds eight vectors of one block's partial sums into one lane per block.
#[inline(always)]
unsafe fn reduce8(v: &[__m256i; 8]) -> __m256i {
    // SAFETY: register-only.
    unsafe {
        macro_rules! pair {
            ($a:expr, $b:expr) => {
                _mm256_add_epi32(_mm256_unpacklo_epi32($a, $b), _mm256_unpackhi_epi32($a, $b))
            };
        }
        macro_rules! quad {
            ($a:expr, $b:expr) => {{
                let (a, b) = ($a, $b);
                _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b))
            }};
        }
        let qa = quad!(pair!(v[0], v[1]), pair!(v[2], v[3]));
        let qb = quad!(pair!(v[4], v[5]), pair!(v[6], v[7]));
        _mm256_add_epi32(
            _mm256_permute2x128_si256::<0x20>(qa, qb),
            _mm256_permute2x128_si256::<0x31>(qa, qb),
        )
    }
}

fn f16_at(p: *const u8) -> u16 {
    // SAFETY: callers pass a pointer to a block's f16 field.
    unsafe { p.cast::<u16>().read_unaligned() }
}

/// # Safety
/// The CPU has AVX2, FMA and F16C; `w` holds `n / 32` blocks of `L`, `a` a Q8_0/Q8_1
/// row of `n` values.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot<L: Legacy>(w: &[u8], a: &[u8], n: usize) -> f32 {
    let nb = n / 32;
    let (qs, rest) = a.split_at(n);
    let d_a: &[f32] = bytemuck::cast_slice(&rest[..4 * nb]);
    let sum_a: &[i32] = bytemuck::cast_slice(&rest[4 * nb..8 * nb]);
    let s_a: &[f32] = if L::M != 0 {
        bytemuck::cast_slice(&rest[8 * nb..12 * nb])
    } else {
        &[]
    };
    // SAFETY: blocks b < nb of both rows; activation arrays padded by the copies below.
    unsafe {
        let mut acc = 0.0f32;
        let mut b0 = 0;
        while b0 < nb {
            let m = (nb - b0).min(8);
            let mut v = [_mm256_setzero_si256(); 8];
            let (mut dw, mut mw) = ([0u16; 8], [0u16; 8]);
            for (k, v) in v.iter_mut().enumerate().take(m) {
                let p = w.as_ptr().add((b0 + k) * L::BYTES);
                let x = _mm256_loadu_si256(qs.as_ptr().add(32 * (b0 + k)).cast());
                *v = mul_sum::<L>(quants::<L>(p), x);
                dw[k] = f16_at(p);
                if L::M != 0 {
                    mw[k] = f16_at(p.add(L::M));
                }
            }
            let mut s = reduce8(&v);
            let (mut da, mut sa, mut ss) = ([0f32; 8], [0i32; 8], [0f32; 8]);
            da[..m].copy_from_slice(&d_a[b0..b0 + m]);
            sa[..m].copy_from_slice(&sum_a[b0..b0 + m]);
            if L::BIAS != 0 {
                let sums = _mm256_loadu_si256(sa.as_ptr().cast());
                s = _mm256_sub_epi32(s, _mm256_mullo_epi32(sums, _mm256_set1_epi32(L::BIAS)));
            }
            let dwv = _mm256_cvtph_ps(_mm_loadu_si128(dw.as_ptr().cast()));
            let f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_loadu_ps(da.as_ptr()));
            let mut p = _mm256_mul_ps(f, dwv);
            if L::M != 0 {
                ss[..m].copy_from_slice(&s_a[b0..b0 + m]);
                let mwv = _mm256_cvtph_ps(_mm_loadu_si128(mw.as_ptr().cast()));
                p = _mm256_fmadd_ps(mwv, _mm256_loadu_ps(ss.as_ptr()), p);
            }
            acc += tree8(p);
            b0 += m;
        }
        acc
    }
}

/// The sum of eight lanes by adjacent pairs, the order the tile kernel streams in.
#[inline(always)]
unsafe fn tree8(p: __m256) -> f32 {
    // SAFETY: register-only.
    unsafe {
        let p = _mm256_add_ps(p, _mm256_permute_ps::<0b10_11_00_01>(p));
        let p = _mm256_add_ps(p, _mm256_permute_ps::<0b01_00_11_10>(p));
        let p = _mm256_add_ps(p, _mm256_permute2f128_ps::<0x01>(p, p));
        _mm256_cvtss_f32(p)
    }
}

const T: usize = 4;

/// Eight rows x `TN` tokens over every block of a packed tile.
#[inline(always)]
unsafe fn tile<L: Legacy, const TN: usize>(
    pack: *const u32,
    nb: usize,
    job: &GemmJob,
    t0: usize,
    out: *mut f32,
    rows: usize,
) {
    let unit = pack::unit_words(L::TY, 8);
    let n = job.cols;
    // SAFETY: the pack holds `nb` units; tokens t0..t0 + TN exist; `out` is the caller's.
    unsafe {
        let row: [*const u8; TN] =
            std::array::from_fn(|t| job.acts.as_ptr().add((t0 + t) * job.act_stride));
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); TN];
        // Partial sums of the current chunk of eight blocks, by tree level.
        let mut s0 = [_mm256_setzero_ps(); TN];
        let mut s1 = [_mm256_setzero_ps(); TN];
        let mut s2 = [_mm256_setzero_ps(); TN];
        for b in 0..nb {
            let u = pack.add(b * unit);
            let w: [__m256i; 8] =
                crate::quant::x86::vec_array!(8, g => _mm256_loadu_si256(u.add(8 * g).cast()));
            let dw = _mm256_loadu_ps(u.add(64).cast());
            let level = (b % 8 + 1).trailing_zeros() as usize;
            for t in 0..TN {
                let q = row[t].add(32 * b).cast::<i32>();
                let sum = *row[t].add(n + 4 * (n / 32) + 4 * b).cast::<i32>();
                let mut s = _mm256_set1_epi32(-L::BIAS * sum);
                for (g, &wg) in w.iter().enumerate() {
                    let a = _mm256_set1_epi32(q.add(g).read_unaligned());
                    let p = if L::TY == GgmlType::Q8_0 {
                        _mm256_maddubs_epi16(_mm256_sign_epi8(wg, wg), _mm256_sign_epi8(a, wg))
                    } else {
                        _mm256_maddubs_epi16(wg, a)
                    };
                    s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
                }
                let da = *row[t].add(n + 4 * b).cast::<f32>();
                let f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(da));
                let mut p = _mm256_mul_ps(f, dw);
                if L::M != 0 {
                    let mw = _mm256_loadu_ps(u.add(72).cast());
                    let sa = *row[t].add(n + 8 * (n / 32) + 4 * b).cast::<f32>();
                    p = _mm256_fmadd_ps(mw, _mm256_set1_ps(sa), p);
                }
                if level > 0 {
                    p = _mm256_add_ps(s0[t], p);
                }
                if level > 1 {
                    p = _mm256_add_ps(s1[t], p);
                }
                if level > 2 {
                    p = _mm256_add_ps(s2[t], p);
                }
                match level {
                    0 => s0[t] = p,
                    1 => s1[t] = p,
                    2 => s2[t] = p,
                    _ => acc[t] = _mm256_add_ps(acc[t], p),
                }
            }
        }
        let rest = nb % 8;
        if rest != 0 {
            for t in 0..TN {
                let mut p: Option<__m256> = None;
                for (l, part) in [s0[t], s1[t], s2[t]].into_iter().enumerate() {
                    if rest & (1 << l) != 0 {
                        p = Some(match p {
                            None => part,
                            Some(p) => _mm256_add_ps(part, p),
                        });
                    }
                }
                acc[t] = _mm256_add_ps(acc[t], p.expect("rest is not zero"));
            }
        }
        for (t, &acc) in acc.iter().enumerate() {
            let mut buf = [0f32; 8];
            _mm256_storeu_ps(buf.as_mut_ptr(), acc);
            let o = out.add((t0 + t) * job.out_stride);
            for (r, &v) in buf.iter().enumerate().take(rows) {
                *o.add(r) = v;
            }
        }
    }
}

/// # Safety
/// The CPU has AVX2, FMA and F16C; `job` as documented by `TypeKernels::run_gemm`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn gemm<L: Legacy>(job: &GemmJob, pack_buf: &mut [u8]) {
    let nb = job.cols / 32;
    let words: &mut [u32] = bytemuck::cast_slice_mut(pack_buf);
    let mut r0 = 0;
    while r0 < job.rows {
        let rows = (job.rows - r0).min(8);
        let w = &job.w[r0 * job.row_bytes..(r0 + rows) * job.row_bytes];
        pack::pack_tile(L::TY, 8, false, w, job.row_bytes, rows, words);
        let p = words.as_ptr();
        // SAFETY: the caller's `out` covers these rows for every token.
        unsafe {
            let out = job.out.add(r0);
            let mut t0 = 0;
            while t0 + T <= job.n_tok {
                tile::<L, T>(p, nb, job, t0, out, rows);
                t0 += T;
            }
            match job.n_tok - t0 {
                0 => {}
                1 => tile::<L, 1>(p, nb, job, t0, out, rows),
                2 => tile::<L, 2>(p, nb, job, t0, out, rows),
                _ => tile::<L, 3>(p, nb, job, t0, out, rows),
            }
        }
        r0 += rows;
    }
}

pub(super) fn pack_bytes<L: Legacy>(cols: usize) -> usize {
    pack::tile_bytes(L::TY, 8, cols)
}

/// # Safety
/// As [`gemm`]; needs no pack. Each output is [`dot`]'s, which the tile kernel matches.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn gemv<L: Legacy>(job: &GemmJob, _pack: &mut [u8]) {
    for r in 0..job.rows {
        let w = &job.w[r * job.row_bytes..(r + 1) * job.row_bytes];
        // Rows stream from memory one after another; asking for the lines a few rows
        // ahead keeps more misses in flight than the hardware prefetcher does alone.
        let ahead = w.as_ptr().wrapping_add(4096);
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
