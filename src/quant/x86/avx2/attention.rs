//! The inner loops of attention with AVX2: a query's scores against a block of cached
//! keys (stored transposed, sixteen positions to a group), and the block's values
//! weighted by the probabilities, both reading the cache as stored (f32, or f16
//! converted as it is loaded).

// Accumulators indexed by register number read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use crate::quant::x86::kv_value::KeyValue;

/// `out[j] = Σ_d q[d] · kt[g][d][j % 16]` for `j < out.len()`, `g = j / 16`, `hd =
/// q.len()`: keys stored transposed in groups of sixteen positions (`[hd][16]` each), a
/// position to a lane, in two vectors of eight. Each lane sums the head in four chains
/// (`d % 4`), added as `(c0 + c1) + (c2 + c3)`, the same for f16 or f32 keys.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
///
/// # Panics
/// Unless `kt` holds `out.len().div_ceil(16)` groups.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn scores<T: KeyValue>(q: &[f32], kt: &[T], out: &mut [f32]) {
    let (hd, n) = (q.len(), out.len());
    assert!(kt.len() >= n.div_ceil(16) * 16 * hd);
    // SAFETY: groups below n.div_ceil(16) of hd rows of 16, checked above; only the
    // lanes below n are kept.
    unsafe {
        for j0 in (0..n).step_by(16) {
            let group = kt.as_ptr().add(j0 * hd);
            // [chain][half]
            let mut c = [[_mm256_setzero_ps(); 2]; 4];
            // A macro, not a closure, so that the intrinsics inherit the target features.
            macro_rules! step {
                ($d:expr, $chain:expr) => {{
                    let x = _mm256_set1_ps(*q.get_unchecked($d));
                    for h in 0..2 {
                        let k = T::load8(group.add(16 * $d + 8 * h));
                        c[$chain][h] = _mm256_fmadd_ps(x, k, c[$chain][h]);
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
            let mut sums = [0.0f32; 16];
            for h in 0..2 {
                let s = _mm256_add_ps(
                    _mm256_add_ps(c[0][h], c[1][h]),
                    _mm256_add_ps(c[2][h], c[3][h]),
                );
                _mm256_storeu_ps(sums.as_mut_ptr().add(8 * h), s);
            }
            let left = (n - j0).min(16);
            out[j0..j0 + left].copy_from_slice(&sums[..left]);
        }
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
