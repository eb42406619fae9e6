//! The inner loops of attention with NEON: a query's scores against a block of cached
//! keys, and the block's values weighted by the probabilities, both reading the cache's
//! rows as stored (f32, or f16 converted as they are loaded).

use std::arch::aarch64::*;

use super::floats::f16x4;

/// What a KV cache stores its values as, loaded four at a time as f32.
pub trait CachedValue: Copy {
    /// # Safety
    /// `p` points at four values.
    unsafe fn load4(p: *const Self) -> float32x4_t;
}

impl CachedValue for f32 {
    #[inline(always)]
    unsafe fn load4(p: *const f32) -> float32x4_t {
        // SAFETY: the caller's.
        unsafe { vld1q_f32(p) }
    }
}

/// f16 as its bits.
impl CachedValue for u16 {
    #[inline(always)]
    unsafe fn load4(p: *const u16) -> float32x4_t {
        // SAFETY: the caller's.
        unsafe { f16x4(vld1_u16(p)) }
    }
}

/// `out[j] = Σ_d q[d] · keys[j · hd + d]` for `j < out.len()`, `hd = q.len()`: each
/// position summed in two vectors of four lanes along the head (even and odd steps),
/// then across them. A position's arithmetic does not depend on the element type (f16
/// converts exactly) or on its place in `out`.
///
/// # Safety
/// NEON.
///
/// # Panics
/// Unless `hd` is a multiple of 8 and `keys` holds `out.len()` rows.
#[target_feature(enable = "neon")]
pub unsafe fn scores<T: CachedValue>(q: &[f32], keys: &[T], out: &mut [f32]) {
    let hd = q.len();
    assert!(hd.is_multiple_of(8) && keys.len() >= out.len() * hd);
    // SAFETY: loads below `hd` in `q` and `out.len() * hd` in `keys`, checked above.
    unsafe {
        for (j, o) in out.iter_mut().enumerate() {
            let row = keys.as_ptr().add(j * hd);
            let (mut even, mut odd) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
            for d in (0..hd).step_by(8) {
                even = vfmaq_f32(even, vld1q_f32(q.as_ptr().add(d)), T::load4(row.add(d)));
                let (qd, kd) = (q.as_ptr().add(d + 4), row.add(d + 4));
                odd = vfmaq_f32(odd, vld1q_f32(qd), T::load4(kd));
            }
            *o = vaddvq_f32(vaddq_f32(even, odd));
        }
    }
}

/// `out += Σ_j p[j] · rows[j · d..][..d]`, `d = out.len()`, with the value rows as the
/// cache stores them: each output lane is one chain of FMAs over `j` in order, whatever
/// the element type.
///
/// # Safety
/// NEON.
///
/// # Panics
/// Unless `d` is a multiple of 4 and `rows` holds `p.len()` rows.
#[target_feature(enable = "neon")]
pub unsafe fn add_weighted<T: CachedValue>(p: &[f32], rows: &[T], out: &mut [f32]) {
    let d = out.len();
    assert!(d.is_multiple_of(4) && rows.len() >= p.len() * d);
    // SAFETY: loads below `p.len() * d` in `rows` and `d` in `out`, checked above.
    unsafe {
        let mut c = 0;
        while c < d {
            let k = ((d - c) / 4).min(8);
            let mut a = [vdupq_n_f32(0.0); 8];
            for (i, a) in a.iter_mut().enumerate().take(k) {
                *a = vld1q_f32(out.as_ptr().add(c + 4 * i));
            }
            for (j, &x) in p.iter().enumerate() {
                for (i, a) in a.iter_mut().enumerate().take(k) {
                    *a = vfmaq_n_f32(*a, T::load4(rows.as_ptr().add(j * d + c + 4 * i)), x);
                }
            }
            for (i, a) in a.iter().enumerate().take(k) {
                vst1q_f32(out.as_mut_ptr().add(c + 4 * i), *a);
            }
            c += 4 * k;
        }
    }
}
