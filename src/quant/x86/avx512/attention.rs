//! The inner loops of attention at full AVX-512 width: a query's scores against a block
//! of cached keys, and the block's values weighted by the probabilities, both reading
//! the cache's rows as stored (f32, or f16 converted as they are loaded), so one token's
//! attention streams the cache once with nothing written in between.

// Accumulators indexed by register number read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use crate::quant::exp_poly;
use crate::quant::x86::kv_value::KeyValue;

/// `out[j] = Σ_d q[d] · keys[j · hd + d]` for `j < out.len()`, `hd = q.len()`: sixteen
/// positions at a time, each summed in sixteen lanes along the head, then the sixteen
/// positions' lanes folded together ([`lane_sums16`]). A position's arithmetic is the
/// same wherever it falls in `out` and whether the keys are f16 or f32 (f16 converts
/// exactly), so a query's scores have the same bits from the cache's rows as from rows
/// decoded first.
///
/// # Safety
/// The CPU has AVX-512 F.
///
/// # Panics
/// Unless `out` is not empty, `hd` is a multiple of 16 and `keys` holds `out.len()` rows.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn scores<T: KeyValue>(q: &[f32], keys: &[T], out: &mut [f32]) {
    let (hd, n) = (q.len(), out.len());
    assert!(n >= 1 && hd.is_multiple_of(16) && keys.len() >= n * hd);
    // SAFETY: the lengths checked above.
    unsafe {
        // The common head lengths as constants, so that sixteen rows are one base
        // address and fixed offsets.
        match hd {
            64 => scores_of::<T, 64>(q, keys, out),
            128 => scores_of::<T, 128>(q, keys, out),
            _ => scores_of::<T, 0>(q, keys, out),
        }
    }
}

/// [`scores`] for heads of `HD` values (any length when `HD` is 0).
///
/// # Safety
/// As [`scores`], with its conditions met.
#[inline(always)]
unsafe fn scores_of<T: KeyValue, const HD: usize>(q: &[f32], keys: &[T], out: &mut [f32]) {
    let (hd, n) = (if HD > 0 { HD } else { q.len() }, out.len());
    // SAFETY: the caller's lengths: rows below n, dimensions below hd; stores masked to
    // the lanes below n.
    unsafe {
        let mut j0 = 0;
        while j0 + 16 <= n {
            let p = position_sums::<T, HD>(q, keys.as_ptr().add(j0 * hd), hd, 16);
            _mm512_storeu_ps(out.as_mut_ptr().add(j0), p);
            j0 += 16;
        }
        if j0 < n {
            let p = position_sums::<T, HD>(q, keys.as_ptr().add(j0 * hd), hd, n - j0);
            let m: __mmask16 = (1u16 << (n - j0)) - 1;
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(j0), m, p);
        }
    }
}

/// Lane `i` of the result: `q` against row `min(i, rows - 1)` of `keys` (rows of `hd`,
/// `HD` where that is not 0).
///
/// # Safety
/// `keys` points at `rows` rows; AVX-512 F.
#[inline(always)]
unsafe fn position_sums<T: KeyValue, const HD: usize>(
    q: &[f32],
    keys: *const T,
    hd: usize,
    rows: usize,
) -> __m512 {
    let hd = if HD > 0 { HD } else { hd };
    // SAFETY: the caller's.
    unsafe {
        let mut p = [_mm512_setzero_ps(); 16];
        for d in (0..hd).step_by(16) {
            let qv = _mm512_loadu_ps(q.as_ptr().add(d));
            for (i, p) in p.iter_mut().enumerate() {
                let row = if rows == 16 { i } else { i.min(rows - 1) };
                *p = _mm512_fmadd_ps(qv, T::load16(keys.add(row * hd + d)), *p);
            }
        }
        lane_sums16(&p)
    }
}

/// Lane `r` of the result: the sum of the lanes of `v[r]`, folded in pairs, quads, then
/// the 128-bit lanes twice.
#[inline(always)]
unsafe fn lane_sums16(v: &[__m512; 16]) -> __m512 {
    // Macros, not closures: a closure would not inherit the caller's target features, and
    // its intrinsics would become calls.
    // per 128-bit lane: [a0 + a2, b0 + b2, a1 + a3, b1 + b3]
    macro_rules! pair {
        ($a:expr, $b:expr) => {
            _mm512_castps_pd(_mm512_add_ps(
                _mm512_unpacklo_ps($a, $b),
                _mm512_unpackhi_ps($a, $b),
            ))
        };
    }
    // per 128-bit lane: that lane's sums of rows r..r + 4
    macro_rules! quad {
        ($r:expr) => {{
            let (x, y) = (pair!(v[$r], v[$r + 1]), pair!(v[$r + 2], v[$r + 3]));
            _mm512_add_ps(
                _mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)),
            )
        }};
    }
    // the 128-bit lanes of two vectors of four rows, added by pairs
    macro_rules! fold {
        ($x:expr, $y:expr) => {{
            let (x, y) = ($x, $y);
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b10_00_10_00>(x, y),
                _mm512_shuffle_f32x4::<0b11_01_11_01>(x, y),
            )
        }};
    }
    // SAFETY: register-only.
    unsafe { fold!(fold!(quad!(0), quad!(4)), fold!(quad!(8), quad!(12))) }
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
