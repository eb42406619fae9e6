//! The f32 parts of the forward pass with AVX2 and FMA (both x86 paths use these: the
//! rows are short and memory-bound, so wider vectors would buy little): dot products,
//! sums of squares, the RMSNorm scaling, SwiGLU, softmax and f16 rows.

// Accumulators indexed by register number read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use crate::quant::exp_poly;

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    // SAFETY: register-only.
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
    }
}

/// e^x for each lane: Cephes' single-precision polynomial (about 1 ulp); exactly 0 below
/// the smallest normal result, as for -inf.
#[inline(always)]
unsafe fn exp8(x: __m256) -> __m256 {
    // SAFETY: register-only.
    unsafe {
        let xc = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(exp_poly::MIN)),
            _mm256_set1_ps(exp_poly::MAX),
        );
        let fx = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(xc, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(exp_poly::LN2_HI), xc);
        let r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(exp_poly::LN2_LO), r);
        let mut y = _mm256_set1_ps(exp_poly::POLY[0]);
        for &c in &exp_poly::POLY[1..] {
            y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(c));
        }
        let y = _mm256_add_ps(
            _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r),
            _mm256_set1_ps(1.0),
        );
        let e = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(fx),
            _mm256_set1_epi32(127),
        ));
        let y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
        let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(exp_poly::MIN));
        _mm256_andnot_ps(tiny, y)
    }
}

macro_rules! avx2_fn {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        /// # Safety
        /// The CPU has AVX2, FMA and F16C.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: every access is within the slices' lengths (chunks of 8, then a
            // scalar tail).
            #[allow(unused_unsafe)]
            unsafe { $body }
        }
    };
}

avx2_fn! {
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i + 8)), _mm256_loadu_ps(b.as_ptr().add(i + 8)), s1);
            i += 16;
        }
        if i + 8 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)), s0);
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(s0, s1));
        while i < n {
            s += a[i] * b[i];
            i += 1;
        }
        s
    }
}

avx2_fn! {
    /// `y += a * x`
    fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let av = _mm256_set1_ps(a);
        let mut i = 0;
        while i + 8 <= n {
            let p = y.as_mut_ptr().add(i);
            _mm256_storeu_ps(p, _mm256_fmadd_ps(av, _mm256_loadu_ps(x.as_ptr().add(i)), _mm256_loadu_ps(p)));
            i += 8;
        }
        while i < n {
            y[i] += a * x[i];
            i += 1;
        }
    }
}

avx2_fn! {
    fn sum_sq(x: &[f32]) -> f32 {
        let mut s = _mm256_setzero_ps();
        let mut i = 0;
        while i + 8 <= x.len() {
            let v = _mm256_loadu_ps(x.as_ptr().add(i));
            s = _mm256_fmadd_ps(v, v, s);
            i += 8;
        }
        let mut s = hsum(s);
        while i < x.len() {
            s += x[i] * x[i];
            i += 1;
        }
        s
    }
}

avx2_fn! {
    /// `out = w * (x * scale)`, rounded as the scalar loop rounds it.
    fn scale_mul(out: &mut [f32], x: &[f32], scale: f32, w: &[f32]) {
        let n = out.len().min(x.len()).min(w.len());
        let sv = _mm256_set1_ps(scale);
        let mut i = 0;
        while i + 8 <= n {
            let v = _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr().add(i)), sv);
            _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_mul_ps(_mm256_loadu_ps(w.as_ptr().add(i)), v));
            i += 8;
        }
        while i < n {
            out[i] = w[i] * (x[i] * scale);
            i += 1;
        }
    }
}

avx2_fn! {
    fn add_assign(x: &mut [f32], y: &[f32]) {
        let n = x.len().min(y.len());
        let mut i = 0;
        while i + 8 <= n {
            let p = x.as_mut_ptr().add(i);
            _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(y.as_ptr().add(i))));
            i += 8;
        }
        while i < n {
            x[i] += y[i];
            i += 1;
        }
    }
}

avx2_fn! {
    /// `g = silu(g) * u = g / (1 + e^-g) * u`
    fn silu_mul(g: &mut [f32], u: &[f32]) {
        let n = g.len().min(u.len());
        let one = _mm256_set1_ps(1.0);
        let mut i = 0;
        while i + 8 <= n {
            let p = g.as_mut_ptr().add(i);
            let v = _mm256_loadu_ps(p);
            let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
            let s = _mm256_div_ps(v, _mm256_add_ps(one, e));
            _mm256_storeu_ps(p, _mm256_mul_ps(s, _mm256_loadu_ps(u.as_ptr().add(i))));
            i += 8;
        }
        while i < n {
            g[i] = g[i] / (1.0 + (-g[i]).exp()) * u[i];
            i += 1;
        }
    }
}

avx2_fn! {
    /// `x = e^(x - max)`; returns the sum.
    fn exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
        let mv = _mm256_set1_ps(max);
        let mut s = _mm256_setzero_ps();
        let mut i = 0;
        while i + 8 <= x.len() {
            let p = x.as_mut_ptr().add(i);
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p), mv));
            _mm256_storeu_ps(p, e);
            s = _mm256_add_ps(s, e);
            i += 8;
        }
        let mut s = hsum(s);
        while i < x.len() {
            x[i] = (x[i] - max).exp();
            s += x[i];
            i += 1;
        }
        s
    }
}

avx2_fn! {
    fn max(x: &[f32]) -> f32 {
        let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut i = 0;
        while i + 8 <= x.len() {
            m = _mm256_max_ps(m, _mm256_loadu_ps(x.as_ptr().add(i)));
            i += 8;
        }
        let mut buf = [0.0f32; 8];
        _mm256_storeu_ps(buf.as_mut_ptr(), m);
        let mut m = buf.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        while i < x.len() {
            m = m.max(x[i]);
            i += 1;
        }
        m
    }
}

avx2_fn! {
    fn scale(x: &mut [f32], s: f32) {
        let sv = _mm256_set1_ps(s);
        let mut i = 0;
        while i + 8 <= x.len() {
            let p = x.as_mut_ptr().add(i);
            _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_loadu_ps(p), sv));
            i += 8;
        }
        while i < x.len() {
            x[i] *= s;
            i += 1;
        }
    }
}

avx2_fn! {
    /// f16 values (as bits) to f32.
    fn f16_to_f32(src: &[u16], out: &mut [f32]) {
        let n = src.len().min(out.len());
        let mut i = 0;
        while i + 8 <= n {
            let h = _mm_loadu_si128(src.as_ptr().add(i).cast());
            _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
            i += 8;
        }
        while i < n {
            out[i] = half::f16::from_bits(src[i]).to_f32();
            i += 1;
        }
    }
}

avx2_fn! {
    /// `Σ a_i * f16(b_i)`
    fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
        let n = a.len().min(b.len());
        let mut s = _mm256_setzero_ps();
        let mut i = 0;
        while i + 8 <= n {
            let h = _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(i).cast()));
            s = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), h, s);
            i += 8;
        }
        let mut s = hsum(s);
        while i < n {
            s += a[i] * half::f16::from_bits(b[i]).to_f32();
            i += 1;
        }
        s
    }
}

avx2_fn! {
    /// `y += a * f16(x)`
    fn axpy_f16(a: f32, x: &[u16], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let av = _mm256_set1_ps(a);
        let mut i = 0;
        while i + 8 <= n {
            let p = y.as_mut_ptr().add(i);
            let h = _mm256_cvtph_ps(_mm_loadu_si128(x.as_ptr().add(i).cast()));
            _mm256_storeu_ps(p, _mm256_fmadd_ps(av, h, _mm256_loadu_ps(p)));
            i += 8;
        }
        while i < n {
            y[i] += a * half::f16::from_bits(x[i]).to_f32();
            i += 1;
        }
    }
}
