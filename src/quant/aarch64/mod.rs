//! AArch64 kernels: NEON, which every AArch64 CPU has, and NEON with the dot-product
//! extension (`sdot`: sixteen i8 products summed into four i32 lanes in one instruction).
//!
//! Both paths share one body per weight type, generic over [`Mac`], the step that
//! multiplies sixteen i8 pairs and accumulates them. Integer sums are exact either way,
//! and the float arithmetic around them is the scalar kernels' own, so the quantized dot
//! products equal the reference bit for bit. Activations are quantized by the scalar
//! quantizers, which the kernels' results are defined against.

pub mod attention;
pub mod f32ops;
mod floats;
mod kquants;
mod legacy;

use std::arch::aarch64::*;
use std::arch::asm;

use super::kernels::{DotFn, Kernels, Path};
use super::GgmlType;

pub fn has_neon() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

pub fn has_dotprod() -> bool {
    has_neon() && std::arch::is_aarch64_feature_detected!("dotprod")
}

/// Multiply-accumulate of sixteen i8 pairs into four i32 lanes; only the sum of the lanes
/// is defined.
pub(super) trait Mac {
    /// # Safety
    /// The CPU has the path's features.
    unsafe fn mac(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t;
}

/// Plain NEON: widening multiplies into i16 (two products per lane stay in range for
/// activations in -127..=127), then pairwise widening adds into i32.
pub(super) struct Plain;

impl Mac for Plain {
    #[inline(always)]
    unsafe fn mac(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        // SAFETY: register-only NEON.
        unsafe {
            let p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
            vpadalq_s16(acc, vmlal_high_s8(p, a, b))
        }
    }
}

/// The dot-product extension.
pub(super) struct Sdot;

impl Mac for Sdot {
    #[inline(always)]
    unsafe fn mac(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        // SAFETY: only the dotprod entry points instantiate this, on CPUs that have it.
        unsafe { sdot(acc, a, b) }
    }
}

/// `sdot` by inline assembly: the intrinsic is not yet stable.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: register-only; the caller's CPU has dotprod.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// Σ w·a over 32 values: two vectors of weights against 32 activations.
#[inline(always)]
unsafe fn sum32<M: Mac>(w0: int8x16_t, w1: int8x16_t, a: &[i8]) -> i32 {
    let a = &a[..32];
    // SAFETY: `a` holds 32 values.
    unsafe {
        let acc = M::mac(vdupq_n_s32(0), w0, vld1q_s8(a.as_ptr()));
        vaddvq_s32(M::mac(acc, w1, vld1q_s8(a.as_ptr().add(16))))
    }
}

/// Σ w·a over 16 values.
#[inline(always)]
unsafe fn sum16<M: Mac>(w: int8x16_t, a: &[i8]) -> i32 {
    let a = &a[..16];
    // SAFETY: `a` holds 16 values.
    unsafe { vaddvq_s32(M::mac(vdupq_n_s32(0), w, vld1q_s8(a.as_ptr()))) }
}

/// Sixteen bytes from `b` (checked length).
#[inline(always)]
fn load16(b: &[u8]) -> uint8x16_t {
    let b = &b[..16];
    // SAFETY: NEON is part of every AArch64 target; `b` holds 16 bytes.
    unsafe { vld1q_u8(b.as_ptr()) }
}

/// The f16 at byte `at` of `b`, widened.
fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Generates the two entry points of a generic kernel body.
macro_rules! entry_points {
    ($body:ident => $plain:ident, $dot:ident) => {
        /// # Safety
        /// `w` and `a` hold `n` values in the weight and activation layouts.
        #[target_feature(enable = "neon")]
        pub(super) unsafe fn $plain(w: &[u8], a: &[u8], n: usize) -> f32 {
            // SAFETY: as the caller vouches.
            unsafe { $body::<$crate::quant::aarch64::Plain>(w, a, n) }
        }

        /// # Safety
        /// As the plain entry point, on a CPU with the dot-product extension.
        #[target_feature(enable = "neon,dotprod")]
        pub(super) unsafe fn $dot(w: &[u8], a: &[u8], n: usize) -> f32 {
            // SAFETY: as the caller vouches.
            unsafe { $body::<$crate::quant::aarch64::Sdot>(w, a, n) }
        }
    };
}
pub(super) use entry_points;

/// The (plain, dotprod) dot kernels for weights of type `ty`.
fn dots(ty: GgmlType) -> Option<(DotFn, DotFn)> {
    Some(match ty {
        GgmlType::Q4_0 => (legacy::q4_0, legacy::q4_0_dot),
        GgmlType::Q4_1 => (legacy::q4_1, legacy::q4_1_dot),
        GgmlType::Q5_0 => (legacy::q5_0, legacy::q5_0_dot),
        GgmlType::Q5_1 => (legacy::q5_1, legacy::q5_1_dot),
        GgmlType::Q8_0 => (legacy::q8_0, legacy::q8_0_dot),
        GgmlType::Q4_K => (kquants::q4_k, kquants::q4_k_dot),
        GgmlType::Q5_K => (kquants::q5_k, kquants::q5_k_dot),
        GgmlType::Q6_K => (kquants::q6_k, kquants::q6_k_dot),
        GgmlType::F32 => (floats::f32, floats::f32),
        GgmlType::F16 => (floats::f16, floats::f16),
        GgmlType::BF16 => (floats::bf16, floats::bf16),
        GgmlType::Q8_1 | GgmlType::Q8_K => return None,
    })
}

/// The table for `path` (which the caller checked is supported), from the scalar one:
/// activation quantizers stay scalar, dot products become NEON.
pub fn table(path: Path, mut k: Kernels) -> Kernels {
    k.path = path;
    for t in k.types_mut().iter_mut() {
        if let Some((plain, dot)) = dots(t.ty) {
            *t = t.with_dot(path, if path == Path::NeonDot { dot } else { plain });
        }
    }
    k
}
