//! The AVX2 + FMA + F16C tier: a 16-lane vector is two `__m256`.

use std::arch::x86_64::*;

use super::simd::Simd;

#[derive(Clone, Copy)]
pub(crate) struct Avx2;

#[derive(Clone, Copy)]
pub(crate) struct V(__m256, __m256);

// SAFETY (whole impl): every method is only called from code compiled with
// `avx2,fma,f16c` enabled, which the dispatch guarantees the CPU has; loads and
// stores touch the 16 lanes the caller guarantees are valid.
impl Simd for Avx2 {
    type V = V;

    #[inline(always)]
    unsafe fn zero() -> V {
        unsafe { V(_mm256_setzero_ps(), _mm256_setzero_ps()) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> V {
        unsafe { V(_mm256_set1_ps(x), _mm256_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> V {
        unsafe { V(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> V {
        unsafe { V(_mm256_cvtph_ps(_mm_loadu_si128(p.cast())), _mm256_cvtph_ps(_mm_loadu_si128(p.add(8).cast()))) }
    }
    #[inline(always)]
    unsafe fn load_bf16(p: *const u16) -> V {
        unsafe {
            let widen = |q: *const u16| {
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(_mm_loadu_si128(q.cast()))))
            };
            V(widen(p), widen(p.add(8)))
        }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: V) {
        unsafe {
            _mm256_storeu_ps(p, v.0);
            _mm256_storeu_ps(p.add(8), v.1);
        }
    }
    #[inline(always)]
    unsafe fn fma(a: V, b: V, c: V) -> V {
        unsafe { V(_mm256_fmadd_ps(a.0, b.0, c.0), _mm256_fmadd_ps(a.1, b.1, c.1)) }
    }
    #[inline(always)]
    unsafe fn add(a: V, b: V) -> V {
        unsafe { V(_mm256_add_ps(a.0, b.0), _mm256_add_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn sub(a: V, b: V) -> V {
        unsafe { V(_mm256_sub_ps(a.0, b.0), _mm256_sub_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn mul(a: V, b: V) -> V {
        unsafe { V(_mm256_mul_ps(a.0, b.0), _mm256_mul_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn recip(a: V) -> V {
        // A true division: rcp_ps plus one Newton step is not accurate enough
        // for the 5e-7 activation bound.
        unsafe {
            let one = _mm256_set1_ps(1.0);
            V(_mm256_div_ps(one, a.0), _mm256_div_ps(one, a.1))
        }
    }
    #[inline(always)]
    unsafe fn min(a: V, b: V) -> V {
        unsafe { V(_mm256_min_ps(a.0, b.0), _mm256_min_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn max(a: V, b: V) -> V {
        unsafe { V(_mm256_max_ps(a.0, b.0), _mm256_max_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn round(a: V) -> V {
        const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        unsafe { V(_mm256_round_ps::<NEAREST>(a.0), _mm256_round_ps::<NEAREST>(a.1)) }
    }
    #[inline(always)]
    unsafe fn pow2n(n: V) -> V {
        unsafe {
            let p = |x: __m256| {
                let bias = _mm256_add_epi32(_mm256_cvtps_epi32(x), _mm256_set1_epi32(127));
                _mm256_castsi256_ps(_mm256_slli_epi32::<23>(bias))
            };
            V(p(n.0), p(n.1))
        }
    }
    #[inline(always)]
    unsafe fn abs(a: V) -> V {
        unsafe {
            let m = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
            V(_mm256_and_ps(a.0, m), _mm256_and_ps(a.1, m))
        }
    }
    #[inline(always)]
    unsafe fn copysign(a: V, sign: V) -> V {
        unsafe {
            let s = _mm256_set1_ps(-0.0);
            let f = |a: __m256, b: __m256| _mm256_or_ps(_mm256_andnot_ps(s, a), _mm256_and_ps(s, b));
            V(f(a.0, sign.0), f(a.1, sign.1))
        }
    }
    #[inline(always)]
    unsafe fn keep_nan(x: V, r: V) -> V {
        unsafe {
            let f = |x: __m256, r: __m256| _mm256_blendv_ps(r, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x));
            V(f(x.0, r.0), f(x.1, r.1))
        }
    }
}
