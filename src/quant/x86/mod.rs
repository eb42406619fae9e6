//! x86-64 kernels: AVX2+FMA+F16C ([`avx2`]) and AVX-512 with VNNI ([`avx512`]), plus the
//! scalar packing of weight tiles that both share ([`pack`]).
//!
//! Every kernel is an `unsafe fn` with `#[target_feature]`; [`table`] hands them out only
//! for a path that [`has_avx2`] / [`has_avx512`] confirmed at run time.

pub mod avx2;
pub mod avx512;
pub mod f32ops;
pub mod kv_value;
pub mod pack;

use super::kernels::{Kernels, Path};

/// `[f(0), .., f(N - 1)]` built by a plain loop: unlike `std::array::from_fn`, whose
/// closure is a function without the caller's target features, this keeps intrinsics
/// inlined.
macro_rules! vec_array {
    ($n:expr, $i:ident => $e:expr) => {{
        let mut out = [$crate::quant::x86::Zero::zero(); $n];
        for $i in 0..$n {
            out[$i] = $e;
        }
        out
    }};
}
pub(crate) use vec_array;

/// Runs a packed kernel's `tile::<G.., TN>(job, group, g, t0)` (`G..`: the tile's type
/// parameters, if any) over every group of `job` and its tokens, four at a time and then
/// the one to three left.
macro_rules! packed_tiles {
    ($job:expr, $tile:ident $(, $g:ty)*) => {{
        let job = $job;
        let stride = job.layout.group_stride(job.cols);
        for g in 0..job.n_groups() {
            let group = job.groups[g * stride..].as_ptr();
            let mut t0 = 0;
            // SAFETY: the caller's kernel contract (`PackedFn`), forwarded to the tiles.
            unsafe {
                while t0 + 4 <= job.n_tok {
                    $tile::<$($g,)* 4>(job, group, g, t0);
                    t0 += 4;
                }
                match job.n_tok - t0 {
                    0 => {}
                    1 => $tile::<$($g,)* 1>(job, group, g, t0),
                    2 => $tile::<$($g,)* 2>(job, group, g, t0),
                    _ => $tile::<$($g,)* 3>(job, group, g, t0),
                }
            }
        }
    }};
}
pub(crate) use packed_tiles;

/// Vector types with an all-zero value, for [`vec_array`].
pub(crate) trait Zero: Copy {
    fn zero() -> Self;
}

macro_rules! zero {
    ($($t:ty),*) => {$(
        impl Zero for $t {
            #[inline(always)]
            fn zero() -> Self {
                // SAFETY: an all-zero bit pattern is a valid vector.
                unsafe { std::mem::zeroed() }
            }
        }
    )*};
}
zero!(
    std::arch::x86_64::__m256,
    std::arch::x86_64::__m256i,
    std::arch::x86_64::__m512,
    std::arch::x86_64::__m512i
);

pub fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

pub fn has_avx512() -> bool {
    has_avx2()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

/// The table for `path` (which the caller checked is supported), starting from the scalar
/// one so that a type without a SIMD kernel keeps its reference kernel.
pub fn table(path: Path, mut k: Kernels) -> Kernels {
    k.path = path;
    for t in k.types_mut().iter_mut() {
        let fast = match path {
            Path::Avx2 => avx2::kernels(t.ty),
            Path::Avx512 => avx512::kernels(t.ty),
            Path::Scalar | Path::Neon | Path::NeonDot => None,
        };
        if let Some(f) = fast {
            *t = f;
        }
    }
    k
}
