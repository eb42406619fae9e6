//! AVX-512 kernels (F, BW, DQ, VL and VNNI).

pub mod attention;
mod floats;
mod kquants;
mod legacy;
mod packed;
pub mod quantize;

use std::arch::x86_64::*;

use crate::quant::kernels::{Path, TypeKernels};
use crate::quant::GgmlType;

// Every kernel here is compiled for "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,
// fma,f16c", the list `x86::has_avx512` checks.

/// The AVX-512 kernels for weights of type `ty`.
pub fn kernels(ty: GgmlType) -> Option<TypeKernels> {
    use legacy::{dot, gemm, pack_bytes};
    let k = |q, d, g| Some(TypeKernels::new(ty, Path::Avx512, q, d, g));
    let kv = |q, d, g, v| k(q, d, g).map(|t: TypeKernels| t.with_gemv(v));
    let gk = TypeKernels::gemm_kernel;
    match ty {
        GgmlType::Q4_0 => kv(
            quantize::q8_0,
            dot::<legacy::Q4_0>,
            gk(gemm::<legacy::Q4_0>, pack_bytes::<legacy::Q4_0>, 16),
            legacy::gemv::<legacy::Q4_0>,
        )
        .map(|k| k.with_packed(packed::q4_0)),
        GgmlType::Q4_1 => kv(
            quantize::q8_1,
            dot::<legacy::Q4_1>,
            gk(gemm::<legacy::Q4_1>, pack_bytes::<legacy::Q4_1>, 16),
            legacy::gemv::<legacy::Q4_1>,
        ),
        GgmlType::Q5_0 => kv(
            quantize::q8_0,
            dot::<legacy::Q5_0>,
            gk(gemm::<legacy::Q5_0>, pack_bytes::<legacy::Q5_0>, 16),
            legacy::gemv::<legacy::Q5_0>,
        ),
        GgmlType::Q5_1 => kv(
            quantize::q8_1,
            dot::<legacy::Q5_1>,
            gk(gemm::<legacy::Q5_1>, pack_bytes::<legacy::Q5_1>, 16),
            legacy::gemv::<legacy::Q5_1>,
        ),
        GgmlType::Q8_0 => kv(
            quantize::q8_0,
            dot::<legacy::Q8_0>,
            gk(gemm::<legacy::Q8_0>, pack_bytes::<legacy::Q8_0>, 16),
            legacy::gemv::<legacy::Q8_0>,
        ),
        GgmlType::Q4_K => kv(
            quantize::q8_k,
            kquants::dot_q4_k,
            kquants::gemm_kernel(ty),
            kquants::gemv_kernel(ty),
        ),
        GgmlType::Q5_K => kv(
            quantize::q8_k,
            kquants::dot_q5_k,
            kquants::gemm_kernel(ty),
            kquants::gemv_kernel(ty),
        ),
        GgmlType::Q6_K => kv(
            quantize::q8_k,
            kquants::dot_q6_k,
            kquants::gemm_kernel(ty),
            kquants::gemv_kernel(ty),
        ),
        GgmlType::F32 => kv(
            quantize::f32,
            floats::dot_f32,
            floats::gemm_kernel(ty),
            floats::gemv_kernel(ty),
        ),
        GgmlType::F16 => kv(
            quantize::f32,
            floats::dot_f16,
            floats::gemm_kernel(ty),
            floats::gemv_kernel(ty),
        ),
        GgmlType::BF16 => kv(
            quantize::f32,
            floats::dot_bf16,
            floats::gemm_kernel(ty),
            floats::gemv_kernel(ty),
        ),
        GgmlType::Q8_1 | GgmlType::Q8_K => None,
    }
}

/// The low `n` bits set (all for n >= 64).
#[inline(always)]
fn mask64(n: usize) -> __mmask64 {
    if n >= 64 {
        !0
    } else {
        (1u64 << n) - 1
    }
}

/// Folds eight vectors of two blocks' partial sums (lanes 0..8 block 2k, 8..16 block
/// 2k + 1 of `v[k]`) into one lane per block, in block order.
#[inline(always)]
unsafe fn reduce8(v: &[__m512i; 8]) -> __m512i {
    // SAFETY: register-only intrinsics; the caller's target features cover them.
    unsafe {
        macro_rules! pair {
            ($a:expr, $b:expr) => {
                _mm512_add_epi32(_mm512_unpacklo_epi32($a, $b), _mm512_unpackhi_epi32($a, $b))
            };
        }
        macro_rules! quad {
            ($a:expr, $b:expr) => {{
                let (a, b) = ($a, $b);
                _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
            }};
        }
        // Each 128-bit lane L of qa holds [v0, v1, v2, v3] summed over that lane.
        let qa = quad!(pair!(v[0], v[1]), pair!(v[2], v[3]));
        let qb = quad!(pair!(v[4], v[5]), pair!(v[6], v[7]));
        let x = _mm512_shuffle_i32x4::<0x88>(qa, qb);
        let y = _mm512_shuffle_i32x4::<0xDD>(qa, qb);
        // Lanes now hold blocks [0 2 4 6 | 1 3 5 7 | 8 10 12 14 | 9 11 13 15].
        let s = _mm512_add_epi32(x, y);
        let order = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
        _mm512_permutexvar_epi32(order, s)
    }
}
