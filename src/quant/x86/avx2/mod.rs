//! AVX2 kernels (with FMA and F16C), for x86-64 CPUs without AVX-512.

pub mod attention;
mod floats;
mod kquants;
mod legacy;
mod packed;
pub mod quantize;

use std::arch::x86_64::*;

use crate::quant::kernels::{Path, TypeKernels};
use crate::quant::GgmlType;

/// The AVX2 kernels for weights of type `ty`.
pub fn kernels(ty: GgmlType) -> Option<TypeKernels> {
    use legacy::{dot, gemm, pack_bytes};
    let k = |q, d, g| Some(TypeKernels::new(ty, Path::Avx2, q, d, g));
    let kv = |q, d, g, v| k(q, d, g).map(|t: TypeKernels| t.with_gemv(v));
    let gk = TypeKernels::gemm_kernel;
    match ty {
        GgmlType::Q4_0 => kv(
            quantize::q8_0,
            dot::<legacy::Q4_0>,
            gk(gemm::<legacy::Q4_0>, pack_bytes::<legacy::Q4_0>, 8),
            legacy::gemv::<legacy::Q4_0>,
        )
        .map(|k| k.with_packed(packed::q4_0)),
        GgmlType::Q4_1 => kv(
            quantize::q8_1,
            dot::<legacy::Q4_1>,
            gk(gemm::<legacy::Q4_1>, pack_bytes::<legacy::Q4_1>, 8),
            legacy::gemv::<legacy::Q4_1>,
        )
        .map(|k| k.with_packed(packed::q4_1)),
        GgmlType::Q5_0 => kv(
            quantize::q8_0,
            dot::<legacy::Q5_0>,
            gk(gemm::<legacy::Q5_0>, pack_bytes::<legacy::Q5_0>, 8),
            legacy::gemv::<legacy::Q5_0>,
        )
        .map(|k| k.with_packed(packed::q5_0)),
        GgmlType::Q5_1 => kv(
            quantize::q8_1,
            dot::<legacy::Q5_1>,
            gk(gemm::<legacy::Q5_1>, pack_bytes::<legacy::Q5_1>, 8),
            legacy::gemv::<legacy::Q5_1>,
        )
        .map(|k| k.with_packed(packed::q5_1)),
        GgmlType::Q8_0 => kv(
            quantize::q8_0,
            dot::<legacy::Q8_0>,
            gk(gemm::<legacy::Q8_0>, pack_bytes::<legacy::Q8_0>, 8),
            legacy::gemv::<legacy::Q8_0>,
        )
        .map(|k| k.with_packed(packed::q8_0)),
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
        GgmlType::F32 => k(quantize::f32, floats::dot_f32, None),
        GgmlType::F16 => k(quantize::f32, floats::dot_f16, None),
        GgmlType::BF16 => k(quantize::f32, floats::dot_bf16, None),
        GgmlType::Q8_1 | GgmlType::Q8_K => None,
    }
}

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    // SAFETY: register-only.
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
    }
}
