//! The two inner loops of attention at full AVX-512 width: unlike the memory-bound f32
//! row operations, these run on blocks held in L1 and are bound by FMA throughput.

// Accumulators indexed by register number read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use crate::quant::exp_poly;

/// `out[j] = Σ_d q[d] * kt[d * w + j]` with `w = out.len()`.
///
/// Each output lane sums even and odd `d` in two chains and adds them at the end; the
/// four-row kernel does exactly this per row, so a row's scores have the same bits
/// whichever of the two computes them (attention results must not depend on how a
/// batch is cut into tiles). That holds for widths of whole vectors, as attention's
/// blocks of 32 are; a scalar tail serves other widths.
///
/// # Safety
/// The CPU has AVX-512 F.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn dot_columns(q: &[f32], kt: &[f32], out: &mut [f32]) {
    let w = out.len();
    assert!(
        kt.len() >= q.len() * w,
        "key block shorter than the query needs"
    );
    // SAFETY: loads and stores stay below `q.len() * w` in `kt` and `w` in `out`
    // (whole vectors of 16 inside the bounds checked above, then a scalar tail).
    unsafe {
        let mut c = 0;
        while c + 16 <= w {
            let col = kt.as_ptr().add(c);
            let (mut even, mut odd) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            let mut d = 0;
            while d + 2 <= q.len() {
                even = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), _mm512_loadu_ps(col.add(d * w)), even);
                odd = _mm512_fmadd_ps(
                    _mm512_set1_ps(q[d + 1]),
                    _mm512_loadu_ps(col.add((d + 1) * w)),
                    odd,
                );
                d += 2;
            }
            if d < q.len() {
                even = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), _mm512_loadu_ps(col.add(d * w)), even);
            }
            _mm512_storeu_ps(out.as_mut_ptr().add(c), _mm512_add_ps(even, odd));
            c += 16;
        }
        while c < w {
            out[c] = q.iter().enumerate().map(|(d, &x)| x * kt[d * w + c]).sum();
            c += 1;
        }
    }
}

/// `out += Σ_j p[j] * rows[j * d..(j + 1) * d]` with `d = out.len()`: each output lane is
/// one chain of FMAs over `j` in order, as in the four-row kernel.
///
/// # Safety
/// The CPU has AVX-512 F.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn add_weighted_rows(p: &[f32], rows: &[f32], out: &mut [f32]) {
    let d = out.len();
    assert!(
        rows.len() >= p.len() * d,
        "value block shorter than the weights need"
    );
    // SAFETY: loads stay below `p.len() * d` in `rows` and `d` in `out` (whole vectors
    // of 16 inside the bounds checked above, then a scalar tail).
    unsafe {
        let mut c = 0;
        while c + 64 <= d {
            let mut a = [_mm512_setzero_ps(); 4];
            for k in 0..4 {
                a[k] = _mm512_loadu_ps(out.as_ptr().add(c + 16 * k));
            }
            for (j, &x) in p.iter().enumerate() {
                let x = _mm512_set1_ps(x);
                for k in 0..4 {
                    a[k] = _mm512_fmadd_ps(
                        x,
                        _mm512_loadu_ps(rows.as_ptr().add(j * d + c + 16 * k)),
                        a[k],
                    );
                }
            }
            for k in 0..4 {
                _mm512_storeu_ps(out.as_mut_ptr().add(c + 16 * k), a[k]);
            }
            c += 64;
        }
        weighted_tail(p, rows, d, &mut out[..], c);
    }
}

/// Columns `c..d` of [`add_weighted_rows`] for one row: vectors of 16, then scalars.
#[inline(always)]
unsafe fn weighted_tail(p: &[f32], rows: &[f32], d: usize, out: &mut [f32], mut c: usize) {
    // SAFETY: the callers checked `rows` holds `p.len()` rows of `d`, `out` holds `d`.
    unsafe {
        while c + 16 <= d {
            let mut a = _mm512_loadu_ps(out.as_ptr().add(c));
            for (j, &x) in p.iter().enumerate() {
                a = _mm512_fmadd_ps(
                    _mm512_set1_ps(x),
                    _mm512_loadu_ps(rows.as_ptr().add(j * d + c)),
                    a,
                );
            }
            _mm512_storeu_ps(out.as_mut_ptr().add(c), a);
            c += 16;
        }
        while c < d {
            for (j, &x) in p.iter().enumerate() {
                out[c] += x * rows[j * d + c];
            }
            c += 1;
        }
    }
}

/// Four query rows (`q`: `[4][d]`) against one block of 32 keys stored column-major
/// (`kt`: `[d][32]`), into `out` (`[4][32]`): each key vector loaded serves four rows,
/// so the FMAs, not the loads, set the pace. Per row, [`dot_columns`]'s arithmetic.
///
/// # Safety
/// The CPU has AVX-512 F.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn dot_columns4(q: &[f32], kt: &[f32], out: &mut [f32]) {
    let d = q.len() / 4;
    assert!(q.len() == 4 * d && kt.len() >= 32 * d && out.len() >= 128);
    // SAFETY: loads below `32 * d` in `kt`, `4 * d` in `q`; stores below 128 in `out`.
    unsafe {
        // [row][even/odd d][half]; the parity is unrolled so every index is a constant
        // and the sixteen accumulators stay in registers.
        let mut a = [[[_mm512_setzero_ps(); 2]; 2]; 4];
        macro_rules! step {
            ($i:expr, $parity:expr) => {{
                let k0 = _mm512_loadu_ps(kt.as_ptr().add(32 * $i));
                let k1 = _mm512_loadu_ps(kt.as_ptr().add(32 * $i + 16));
                for r in 0..4 {
                    let x = _mm512_set1_ps(*q.get_unchecked(r * d + $i));
                    a[r][$parity][0] = _mm512_fmadd_ps(x, k0, a[r][$parity][0]);
                    a[r][$parity][1] = _mm512_fmadd_ps(x, k1, a[r][$parity][1]);
                }
            }};
        }
        let mut i = 0;
        while i + 2 <= d {
            step!(i, 0);
            step!(i + 1, 1);
            i += 2;
        }
        if i < d {
            step!(i, 0);
        }
        for (r, a) in a.iter().enumerate() {
            for h in 0..2 {
                _mm512_storeu_ps(
                    out.as_mut_ptr().add(32 * r + 16 * h),
                    _mm512_add_ps(a[0][h], a[1][h]),
                );
            }
        }
    }
}

/// Four rows of 32 probabilities (`p`: `[4][32]`) times one block of 32 value rows
/// (`v`: `[32][d]`), added to `out` (`[4][d]`); each value vector loaded serves four rows.
/// Per row, [`add_weighted_rows`]'s arithmetic.
///
/// # Safety
/// The CPU has AVX-512 F.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn add_weighted_rows4(p: &[f32], v: &[f32], out: &mut [f32]) {
    let d = out.len() / 4;
    assert!(out.len() == 4 * d && p.len() >= 128 && v.len() >= 32 * d);
    // SAFETY: loads below `32 * d` in `v` and 128 in `p`; `out` accesses below `4 * d`.
    unsafe {
        let mut c = 0;
        while c + 64 <= d {
            let mut a = [_mm512_setzero_ps(); 16];
            for r in 0..4 {
                for k in 0..4 {
                    a[4 * r + k] = _mm512_loadu_ps(out.as_ptr().add(r * d + c + 16 * k));
                }
            }
            for j in 0..32 {
                let row = v.as_ptr().add(j * d + c);
                let vs = [
                    _mm512_loadu_ps(row),
                    _mm512_loadu_ps(row.add(16)),
                    _mm512_loadu_ps(row.add(32)),
                    _mm512_loadu_ps(row.add(48)),
                ];
                for r in 0..4 {
                    let x = _mm512_set1_ps(*p.get_unchecked(32 * r + j));
                    for k in 0..4 {
                        a[4 * r + k] = _mm512_fmadd_ps(x, vs[k], a[4 * r + k]);
                    }
                }
            }
            for r in 0..4 {
                for k in 0..4 {
                    _mm512_storeu_ps(out.as_mut_ptr().add(r * d + c + 16 * k), a[4 * r + k]);
                }
            }
            c += 64;
        }
        for r in 0..4 {
            weighted_tail(
                &p[32 * r..32 * r + 32],
                &v[..32 * d],
                d,
                &mut out[r * d..(r + 1) * d],
                c,
            );
        }
    }
}

/// e^x for each lane: the AVX2 kernels' polynomial (Cephes, about 1 ulp) at twice the
/// width; exactly 0 below the smallest normal result, as for -inf. A NaN input comes out
/// near 0 rather than NaN (the clamp drops it), as in the AVX2 version.
#[inline(always)]
unsafe fn exp16(x: __m512) -> __m512 {
    // SAFETY: register-only.
    unsafe {
        let xc = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(exp_poly::MIN)),
            _mm512_set1_ps(exp_poly::MAX),
        );
        let fx = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(xc, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(exp_poly::LN2_HI), xc);
        let r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(exp_poly::LN2_LO), r);
        let mut y = _mm512_set1_ps(exp_poly::POLY[0]);
        for &c in &exp_poly::POLY[1..] {
            y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(c));
        }
        let y = _mm512_add_ps(
            _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), r),
            _mm512_set1_ps(1.0),
        );
        let e = _mm512_slli_epi32::<23>(_mm512_add_epi32(
            _mm512_cvtps_epi32(fx),
            _mm512_set1_epi32(127),
        ));
        let y = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
        let tiny = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(exp_poly::MIN));
        _mm512_maskz_mov_ps(!tiny, y)
    }
}

/// `x = e^(x - max)`; returns the sum.
///
/// # Safety
/// The CPU has AVX-512 F.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
    // SAFETY: whole vectors of 16 inside `x`, then a masked tail.
    unsafe {
        let mv = _mm512_set1_ps(max);
        let mut s = _mm512_setzero_ps();
        let mut i = 0;
        while i < x.len() {
            let left = (x.len() - i).min(16);
            let m: __mmask16 = if left == 16 {
                0xFFFF
            } else {
                (1u16 << left) - 1
            };
            let p = x.as_mut_ptr().add(i);
            let e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p), mv));
            _mm512_mask_storeu_ps(p, m, e);
            s = _mm512_add_ps(s, _mm512_maskz_mov_ps(m, e));
            i += 16;
        }
        _mm512_reduce_add_ps(s)
    }
}
