//! The two inner loops of attention at full AVX-512 width: unlike the memory-bound f32
//! row operations, these run on blocks held in L1 and are bound by FMA throughput.

// Accumulators indexed by register number read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

/// `out[j] = Σ_d q[d] * kt[d * w + j]` with `w = out.len()`.
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
        macro_rules! col {
            ($d:expr, $c:expr) => {
                _mm512_loadu_ps(kt.as_ptr().add($d * w + $c))
            };
        }
        let mut c = 0;
        while c + 32 <= w {
            // Four phases of d, two vectors each: eight FMAs in flight.
            let mut a = [_mm512_setzero_ps(); 8];
            let mut d = 0;
            while d + 4 <= q.len() {
                for p in 0..4 {
                    let x = _mm512_set1_ps(q[d + p]);
                    a[2 * p] = _mm512_fmadd_ps(x, col!(d + p, c), a[2 * p]);
                    a[2 * p + 1] = _mm512_fmadd_ps(x, col!(d + p, c + 16), a[2 * p + 1]);
                }
                d += 4;
            }
            while d < q.len() {
                let x = _mm512_set1_ps(q[d]);
                a[0] = _mm512_fmadd_ps(x, col!(d, c), a[0]);
                a[1] = _mm512_fmadd_ps(x, col!(d, c + 16), a[1]);
                d += 1;
            }
            let lo = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[4], a[6]));
            let hi = _mm512_add_ps(_mm512_add_ps(a[1], a[3]), _mm512_add_ps(a[5], a[7]));
            _mm512_storeu_ps(out.as_mut_ptr().add(c), lo);
            _mm512_storeu_ps(out.as_mut_ptr().add(c + 16), hi);
            c += 32;
        }
        while c + 16 <= w {
            let mut a = _mm512_setzero_ps();
            for (d, &x) in q.iter().enumerate() {
                a = _mm512_fmadd_ps(_mm512_set1_ps(x), col!(d, c), a);
            }
            _mm512_storeu_ps(out.as_mut_ptr().add(c), a);
            c += 16;
        }
        while c < w {
            out[c] = q.iter().enumerate().map(|(d, &x)| x * kt[d * w + c]).sum();
            c += 1;
        }
    }
}

/// `out += Σ_j p[j] * rows[j * d..(j + 1) * d]` with `d = out.len()`.
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
        macro_rules! row {
            ($j:expr, $c:expr) => {
                _mm512_loadu_ps(rows.as_ptr().add($j * d + $c))
            };
        }
        let mut c = 0;
        while c + 64 <= d {
            // Even and odd rows in separate accumulators: eight FMAs in flight.
            let mut a = [_mm512_setzero_ps(); 8];
            for k in 0..4 {
                a[k] = _mm512_loadu_ps(out.as_ptr().add(c + 16 * k));
            }
            let mut j = 0;
            while j + 2 <= p.len() {
                let (x0, x1) = (_mm512_set1_ps(p[j]), _mm512_set1_ps(p[j + 1]));
                for k in 0..4 {
                    a[k] = _mm512_fmadd_ps(x0, row!(j, c + 16 * k), a[k]);
                    a[k + 4] = _mm512_fmadd_ps(x1, row!(j + 1, c + 16 * k), a[k + 4]);
                }
                j += 2;
            }
            if j < p.len() {
                let x0 = _mm512_set1_ps(p[j]);
                for k in 0..4 {
                    a[k] = _mm512_fmadd_ps(x0, row!(j, c + 16 * k), a[k]);
                }
            }
            for k in 0..4 {
                _mm512_storeu_ps(
                    out.as_mut_ptr().add(c + 16 * k),
                    _mm512_add_ps(a[k], a[k + 4]),
                );
            }
            c += 64;
        }
        while c + 16 <= d {
            let mut a = _mm512_loadu_ps(out.as_ptr().add(c));
            for (j, &x) in p.iter().enumerate() {
                a = _mm512_fmadd_ps(_mm512_set1_ps(x), row!(j, c), a);
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
