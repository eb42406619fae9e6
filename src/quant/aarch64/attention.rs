//! The inner loops of attention with NEON: a query's scores against a block of cached
//! keys (stored transposed, sixteen positions to a group), and the block's values
//! weighted by the probabilities, both reading the cache as stored (f32, or f16
//! converted as it is loaded).

// Accumulators indexed by register number read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

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

/// `out[j] = Σ_d q[d] · kt[g][d][j % 16]` for `j < out.len()`, `g = j / 16`, `hd =
/// q.len()`: keys stored transposed in groups of sixteen positions (`[hd][16]` each), a
/// position to a lane, in four vectors of four. Each lane sums the head in four chains
/// (`d % 4`), added as `(c0 + c1) + (c2 + c3)`, the same for f16 or f32 keys.
///
/// # Safety
/// NEON.
///
/// # Panics
/// Unless `kt` holds `out.len().div_ceil(16)` groups.
#[target_feature(enable = "neon")]
pub unsafe fn scores<T: CachedValue>(q: &[f32], kt: &[T], out: &mut [f32]) {
    let (hd, n) = (q.len(), out.len());
    assert!(kt.len() >= n.div_ceil(16) * 16 * hd);
    // SAFETY: groups below n.div_ceil(16) of hd rows of 16, checked above; only the
    // lanes below n are kept.
    unsafe {
        for j0 in (0..n).step_by(16) {
            let group = kt.as_ptr().add(j0 * hd);
            // [chain][quarter]
            let mut c = [[vdupq_n_f32(0.0); 4]; 4];
            // A macro with the chain as a constant, so that the accumulators stay in
            // registers.
            macro_rules! step {
                ($d:expr, $chain:expr) => {{
                    let x = *q.get_unchecked($d);
                    for h in 0..4 {
                        let k = T::load4(group.add(16 * $d + 4 * h));
                        c[$chain][h] = vfmaq_n_f32(c[$chain][h], k, x);
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
            for h in 0..4 {
                let s = vaddq_f32(vaddq_f32(c[0][h], c[1][h]), vaddq_f32(c[2][h], c[3][h]));
                vst1q_f32(sums.as_mut_ptr().add(4 * h), s);
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
