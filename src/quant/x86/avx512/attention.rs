//! The inner loops of attention at full AVX-512 width: a query's scores against a block
//! of cached keys (stored transposed, sixteen positions to a vector), and the block's
//! values weighted by the probabilities, both reading the cache as stored (f32, or f16
//! converted as it is loaded), so one token's attention streams the cache once with
//! nothing written in between.

// Accumulators indexed by register number read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use crate::quant::exp_poly;
use crate::quant::x86::kv_value::KeyValue;

/// `out[j] = Σ_d q[d] · kt[g][d][j % 16]` for `j < out.len()`, `g = j / 16`, `hd =
/// q.len()`: keys stored transposed in groups of sixteen positions (`[hd][16]` each), so
/// each lane is a position. Each lane sums the head in four chains (`d % 4`), added as
/// `(c0 + c1) + (c2 + c3)`: a position's arithmetic is the same in every group, in
/// [`scores4`], and for f16 or f32 keys (f16 converts exactly).
///
/// # Safety
/// The CPU has AVX-512 F.
///
/// # Panics
/// Unless `kt` holds `out.len().div_ceil(16)` groups.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn scores<T: KeyValue>(q: &[f32], kt: &[T], out: &mut [f32]) {
    // SAFETY: the caller's.
    unsafe { scores_rows::<T, 1>(q, kt, out) }
}

/// [`scores`] for four queries (`q`: `[4][hd]`) against the same keys, into `out`
/// (`[4][n]`): each group of keys loaded once for all four, each row with [`scores`]'
/// bits.
///
/// # Safety
/// The CPU has AVX-512 F.
///
/// # Panics
/// Unless `q` and `out` split into four rows and `kt` holds `n.div_ceil(16)` groups.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn scores4<T: KeyValue>(q: &[f32], kt: &[T], out: &mut [f32]) {
    // SAFETY: the caller's.
    unsafe { scores_rows::<T, 4>(q, kt, out) }
}

/// [`scores`] for `R` queries (`q`: `[R][hd]`, `out`: `[R][n]`): one body for one row and
/// four, so that a row's arithmetic is the same in both.
///
/// # Safety
/// The CPU has AVX-512 F.
#[inline(always)]
unsafe fn scores_rows<T: KeyValue, const R: usize>(q: &[f32], kt: &[T], out: &mut [f32]) {
    let (hd, n) = (q.len() / R, out.len() / R);
    assert!(q.len() == R * hd && out.len() == R * n && kt.len() >= n.div_ceil(16) * 16 * hd);
    // SAFETY: groups below n.div_ceil(16) of hd rows of 16 and R rows of `q`, checked
    // above; stores masked to the lanes below n of each row of `out`.
    unsafe {
        for j0 in (0..n).step_by(16) {
            let group = kt.as_ptr().add(j0 * hd);
            // [row][chain]
            let mut c = [[_mm512_setzero_ps(); 4]; R];
            // A macro, not a closure, so that the intrinsics inherit the target features;
            // the chain a constant, so that the accumulators stay in registers.
            macro_rules! step {
                ($d:expr, $chain:expr) => {{
                    let k = T::load16(group.add(16 * $d));
                    for r in 0..R {
                        let x = _mm512_set1_ps(*q.get_unchecked(r * hd + $d));
                        c[r][$chain] = _mm512_fmadd_ps(x, k, c[r][$chain]);
                    }
                }};
            }
            let mut d = 0;
            while d + 4 <= hd {
                step!(d, 0);
                step!(d + 1, 1);
                step!(d + 2, 2);
                step!(d + 3, 3);
                d += 4;
            }
            // the head's last values, when its length is not a multiple of four
            if d < hd {
                step!(d, 0);
            }
            if d + 1 < hd {
                step!(d + 1, 1);
            }
            if d + 2 < hd {
                step!(d + 2, 2);
            }
            for (r, c) in c.iter().enumerate() {
                let sum = _mm512_add_ps(_mm512_add_ps(c[0], c[1]), _mm512_add_ps(c[2], c[3]));
                store_lanes(out.as_mut_ptr().add(r * n + j0), n - j0, sum);
            }
        }
    }
}

/// The first `min(left, 16)` lanes of `v` to `p`.
#[inline(always)]
unsafe fn store_lanes(p: *mut f32, left: usize, v: __m512) {
    let m: __mmask16 = if left >= 16 {
        0xFFFF
    } else {
        (1u16 << left) - 1
    };
    // SAFETY: the caller's: `p` holds `min(left, 16)` values.
    unsafe { _mm512_mask_storeu_ps(p, m, v) }
}

/// `out += Σ_j p[j] · rows[j · d..][..d]`, `d = out.len()`, with the value rows as the
/// cache stores them: each output lane is one chain of FMAs over `j` in order, as in
/// [`add_weighted_rows4`].
///
/// # Safety
/// The CPU has AVX-512 F.
///
/// # Panics
/// Unless `d` is a multiple of 16 and `rows` holds `p.len()` rows.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn add_weighted<T: KeyValue>(p: &[f32], rows: &[T], out: &mut [f32]) {
    let d = out.len();
    assert!(d.is_multiple_of(16) && rows.len() >= p.len() * d);
    // SAFETY: as `weighted_columns` needs, checked above.
    unsafe { weighted_columns(p, rows, d, out, 0) }
}

/// Columns `c..d` of [`add_weighted`], up to four vectors of 16 at a time.
///
/// # Safety
/// `rows` holds `p.len()` rows of `d` values, `out` holds `d`, and `d - c` is a multiple
/// of 16.
#[inline(always)]
unsafe fn weighted_columns<T: KeyValue>(
    p: &[f32],
    rows: &[T],
    d: usize,
    out: &mut [f32],
    mut c: usize,
) {
    // SAFETY: loads below `p.len() * d` in `rows` and `d` in `out`: the caller's.
    unsafe {
        while c < d {
            let k = ((d - c) / 16).min(4);
            let mut a = [_mm512_setzero_ps(); 4];
            for (i, a) in a.iter_mut().enumerate().take(k) {
                *a = _mm512_loadu_ps(out.as_ptr().add(c + 16 * i));
            }
            for (j, &x) in p.iter().enumerate() {
                let x = _mm512_set1_ps(x);
                for (i, a) in a.iter_mut().enumerate().take(k) {
                    let v = T::load16(rows.as_ptr().add(j * d + c + 16 * i));
                    *a = _mm512_fmadd_ps(x, v, *a);
                }
            }
            for (i, a) in a.iter().enumerate().take(k) {
                _mm512_storeu_ps(out.as_mut_ptr().add(c + 16 * i), *a);
            }
            c += 16 * k;
        }
    }
}

/// Four rows of 32 probabilities (`p`: `[4][32]`) times one block of 32 value rows
/// (`v`: `[32][d]`), added to `out` (`[4][d]`); each value vector loaded serves four rows.
/// Per row, [`add_weighted`]'s arithmetic.
///
/// # Safety
/// The CPU has AVX-512 F.
///
/// # Panics
/// Unless `d` is a multiple of 16 and `v` holds 32 rows of it.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn add_weighted_rows4(p: &[f32], v: &[f32], out: &mut [f32]) {
    let d = out.len() / 4;
    assert!(out.len() == 4 * d && d.is_multiple_of(16) && p.len() >= 128 && v.len() >= 32 * d);
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
            let (p, out) = (&p[32 * r..32 * r + 32], &mut out[r * d..(r + 1) * d]);
            weighted_columns(p, &v[..32 * d], d, out, c);
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
