//! The inner loops of attention with AVX2: a query's scores against a block of cached
//! keys, and the block's values weighted by the probabilities, both reading the cache's
//! rows as stored (f32, or f16 converted as they are loaded).

use std::arch::x86_64::*;

use crate::quant::x86::kv_value::KeyValue;

/// `out[j] = Σ_d q[d] · keys[j · hd + d]` for `j < out.len()`, `hd = q.len()`: eight
/// positions at a time, each summed in eight lanes along the head, then the eight
/// positions' lanes folded together. A position's arithmetic is the same wherever it
/// falls in `out` and whether the keys are f16 or f32 (f16 converts exactly).
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
///
/// # Panics
/// Unless `out` is not empty, `hd` is a multiple of 8 and `keys` holds `out.len()` rows.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn scores<T: KeyValue>(q: &[f32], keys: &[T], out: &mut [f32]) {
    let (hd, n) = (q.len(), out.len());
    assert!(n >= 1 && hd.is_multiple_of(8) && keys.len() >= n * hd);
    // SAFETY: rows are clamped to n - 1 and dimensions stay below hd, within the lengths
    // checked above; only the first n - j0 sums of a group are kept.
    unsafe {
        for j0 in (0..n).step_by(8) {
            let mut p = [_mm256_setzero_ps(); 8];
            for d in (0..hd).step_by(8) {
                let qv = _mm256_loadu_ps(q.as_ptr().add(d));
                for (i, p) in p.iter_mut().enumerate() {
                    let row = (j0 + i).min(n - 1);
                    *p = _mm256_fmadd_ps(qv, T::load8(keys.as_ptr().add(row * hd + d)), *p);
                }
            }
            let mut sums = [0.0f32; 8];
            _mm256_storeu_ps(sums.as_mut_ptr(), lane_sums8(&p));
            let left = (n - j0).min(8);
            out[j0..j0 + left].copy_from_slice(&sums[..left]);
        }
    }
}

/// Lane `r` of the result: the sum of the lanes of `v[r]`, folded in pairs, quads, then
/// the two 128-bit lanes.
#[inline(always)]
unsafe fn lane_sums8(v: &[__m256; 8]) -> __m256 {
    // Macros, not closures: a closure would not inherit the caller's target features, and
    // its intrinsics would become calls.
    // per 128-bit lane: [a0 + a2, b0 + b2, a1 + a3, b1 + b3]
    macro_rules! pair {
        ($a:expr, $b:expr) => {
            _mm256_castps_pd(_mm256_add_ps(
                _mm256_unpacklo_ps($a, $b),
                _mm256_unpackhi_ps($a, $b),
            ))
        };
    }
    // per 128-bit lane: that lane's sums of rows r..r + 4
    macro_rules! quad {
        ($r:expr) => {{
            let (x, y) = (pair!(v[$r], v[$r + 1]), pair!(v[$r + 2], v[$r + 3]));
            _mm256_add_ps(
                _mm256_castpd_ps(_mm256_unpacklo_pd(x, y)),
                _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)),
            )
        }};
    }
    // SAFETY: register-only.
    unsafe {
        let (x, y) = (quad!(0), quad!(4));
        _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(x, y),
            _mm256_permute2f128_ps::<0x31>(x, y),
        )
    }
}

/// `out += Σ_j p[j] · rows[j · d..][..d]`, `d = out.len()`, with the value rows as the
/// cache stores them: each output lane is one chain of FMAs over `j` in order, whatever
/// the element type.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
///
/// # Panics
/// Unless `d` is a multiple of 8 and `rows` holds `p.len()` rows.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn add_weighted<T: KeyValue>(p: &[f32], rows: &[T], out: &mut [f32]) {
    let d = out.len();
    assert!(d.is_multiple_of(8) && rows.len() >= p.len() * d);
    // SAFETY: loads below `p.len() * d` in `rows` and `d` in `out`, checked above.
    unsafe {
        let mut c = 0;
        while c < d {
            let k = ((d - c) / 8).min(8);
            let mut a = [_mm256_setzero_ps(); 8];
            for (i, a) in a.iter_mut().enumerate().take(k) {
                *a = _mm256_loadu_ps(out.as_ptr().add(c + 8 * i));
            }
            for (j, &x) in p.iter().enumerate() {
                let x = _mm256_set1_ps(x);
                for (i, a) in a.iter_mut().enumerate().take(k) {
                    let v = T::load8(rows.as_ptr().add(j * d + c + 8 * i));
                    *a = _mm256_fmadd_ps(x, v, *a);
                }
            }
            for (i, a) in a.iter().enumerate().take(k) {
                _mm256_storeu_ps(out.as_mut_ptr().add(c + 8 * i), *a);
            }
            c += 8 * k;
        }
    }
}
