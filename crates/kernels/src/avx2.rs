//! The AVX2 + FMA + F16C tier: a 16-lane vector is two `__m256`.

use std::arch::x86_64::*;

use super::simd::Simd;

#[derive(Clone, Copy)]
pub(crate) struct Avx2;

#[derive(Clone, Copy)]
pub(crate) struct V(pub(crate) __m256, pub(crate) __m256);

// SAFETY (whole impl): every method is only called from code compiled with
// `avx2,fma,f16c` enabled, which the dispatch guarantees the CPU has; loads and
// stores touch the 16 lanes the caller guarantees are valid.
impl Simd for Avx2 {
    /// Two 256-bit registers per vector, 16 registers.
    const REGISTERS: usize = 8;
    type V = V;

    #[inline(always)]
    unsafe fn zero() -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { V(_mm256_setzero_ps(), _mm256_setzero_ps()) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { V(_mm256_set1_ps(x), _mm256_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe { V(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe { V(_mm256_cvtph_ps(_mm_loadu_si128(p.cast())), _mm256_cvtph_ps(_mm_loadu_si128(p.add(8).cast()))) }
    }
    #[inline(always)]
    unsafe fn load_bf16(p: *const u16) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe {
            let widen = |q: *const u16| {
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(_mm_loadu_si128(q.cast()))))
            };
            V(widen(p), widen(p.add(8)))
        }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: V) {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe {
            _mm256_storeu_ps(p, v.0);
            _mm256_storeu_ps(p.add(8), v.1);
        }
    }
    #[inline(always)]
    unsafe fn fma(a: V, b: V, c: V) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { V(_mm256_fmadd_ps(a.0, b.0, c.0), _mm256_fmadd_ps(a.1, b.1, c.1)) }
    }
    #[inline(always)]
    unsafe fn add(a: V, b: V) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { V(_mm256_add_ps(a.0, b.0), _mm256_add_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn sub(a: V, b: V) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { V(_mm256_sub_ps(a.0, b.0), _mm256_sub_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn mul(a: V, b: V) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { V(_mm256_mul_ps(a.0, b.0), _mm256_mul_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn recip(a: V) -> V {
        // A true division: rcp_ps plus one Newton step is not accurate enough
        // for the 5e-7 activation bound.
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe {
            let one = _mm256_set1_ps(1.0);
            V(_mm256_div_ps(one, a.0), _mm256_div_ps(one, a.1))
        }
    }
    #[inline(always)]
    unsafe fn min(a: V, b: V) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { V(_mm256_min_ps(a.0, b.0), _mm256_min_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn max(a: V, b: V) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { V(_mm256_max_ps(a.0, b.0), _mm256_max_ps(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn round(a: V) -> V {
        const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { V(_mm256_round_ps::<NEAREST>(a.0), _mm256_round_ps::<NEAREST>(a.1)) }
    }
    #[inline(always)]
    unsafe fn pow2n(n: V) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
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
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe {
            let m = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
            V(_mm256_and_ps(a.0, m), _mm256_and_ps(a.1, m))
        }
    }
    #[inline(always)]
    unsafe fn copysign(a: V, sign: V) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe {
            let s = _mm256_set1_ps(-0.0);
            let f = |a: __m256, b: __m256| _mm256_or_ps(_mm256_andnot_ps(s, a), _mm256_and_ps(s, b));
            V(f(a.0, sign.0), f(a.1, sign.1))
        }
    }
    #[inline(always)]
    unsafe fn keep_nan(x: V, r: V) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe {
            let f = |x: __m256, r: __m256| _mm256_blendv_ps(r, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x));
            V(f(x.0, r.0), f(x.1, r.1))
        }
    }
}

impl crate::blocking::Tier for Avx2 {
    type Blocking = crate::blocking::FewRegisters;
}

/// The int8 product without VNNI: `vpmaddubsw` on `q >> 1` and `q & 1`
/// separately (each i16 pair sum stays within ±2 * 127 * 128 < 2^15, where
/// `255 * 127 * 2` would saturate), then `vpmaddwd` by 2 and by 1 into i32.
#[derive(Clone, Copy)]
pub(crate) struct Avx2Maddubs;

/// The int8 product with AVX-VNNI (`vpdpbusd` on 256-bit vectors).
#[derive(Clone, Copy)]
pub(crate) struct AvxVnni;

#[derive(Clone, Copy)]
pub(crate) struct I(__m256i, __m256i);

/// `acc - zp * colsum` as f32, shared by both AVX2 products.
#[inline(always)]
unsafe fn finish_256(acc: I, colsum: *const i32, zp: i32) -> V {
    // SAFETY: the caller guarantees 16 readable i32; AVX2 is enabled.
    unsafe {
        let z = _mm256_set1_epi32(zp);
        let lo = _mm256_sub_epi32(acc.0, _mm256_mullo_epi32(z, _mm256_loadu_si256(colsum.cast())));
        let hi = _mm256_sub_epi32(acc.1, _mm256_mullo_epi32(z, _mm256_loadu_si256(colsum.add(8).cast())));
        V(_mm256_cvtepi32_ps(lo), _mm256_cvtepi32_ps(hi))
    }
}

// SAFETY (whole impl): only called from code compiled with `avx2,fma,f16c`
// enabled, which the dispatch guarantees the CPU has; loads and stores touch
// the 16 lanes the caller guarantees are valid.
impl crate::int8::Lanes8 for Avx2 {
    type I = I;

    #[inline(always)]
    unsafe fn izero() -> I {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { I(_mm256_setzero_si256(), _mm256_setzero_si256()) }
    }
    #[inline(always)]
    unsafe fn load_i32(p: *const i32) -> I {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe { I(_mm256_loadu_si256(p.cast()), _mm256_loadu_si256(p.add(8).cast())) }
    }
    #[inline(always)]
    unsafe fn finish(acc: I, colsum: *const i32, zp: i32) -> V {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { finish_256(acc, colsum, zp) }
    }
    #[cfg(test)]
    unsafe fn store_i32(acc: I, out: *mut i32) {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe {
            _mm256_storeu_si256(out.cast(), acc.0);
            _mm256_storeu_si256(out.add(8).cast(), acc.1);
        }
    }
}

// SAFETY (both impls): only called from code compiled with `avx2,fma,f16c`
// (and `avxvnni` for `AvxVnni`) enabled, which the dispatch guarantees the
// CPU has; loads touch the bytes the caller guarantees are valid.
impl crate::int8::Dot8 for Avx2Maddubs {
    type S = Avx2;
    /// `q >> 1` and `q & 1`, broadcast.
    type A = (__m256i, __m256i);

    #[inline(always)]
    unsafe fn bcast(a: *const u8) -> (__m256i, __m256i) {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe {
            let v = _mm256_set1_epi32(a.cast::<i32>().read_unaligned());
            let half = _mm256_and_si256(_mm256_srli_epi16::<1>(v), _mm256_set1_epi8(0x7f));
            (half, _mm256_and_si256(v, _mm256_set1_epi8(1)))
        }
    }
    #[inline(always)]
    unsafe fn dot(acc: I, a: (__m256i, __m256i), w: *const i8) -> I {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe {
            let (two, one) = (_mm256_set1_epi16(2), _mm256_set1_epi16(1));
            let part = |w: __m256i| {
                let hi = _mm256_madd_epi16(_mm256_maddubs_epi16(a.0, w), two);
                _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_maddubs_epi16(a.1, w), one))
            };
            let (w0, w1) = (_mm256_loadu_si256(w.cast()), _mm256_loadu_si256(w.add(32).cast()));
            I(_mm256_add_epi32(acc.0, part(w0)), _mm256_add_epi32(acc.1, part(w1)))
        }
    }
}

impl crate::int8::Dot8 for AvxVnni {
    type S = Avx2;
    type A = __m256i;

    #[inline(always)]
    unsafe fn bcast(a: *const u8) -> __m256i {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm256_set1_epi32(a.cast::<i32>().read_unaligned()) }
    }
    #[inline(always)]
    unsafe fn dot(acc: I, a: __m256i, w: *const i8) -> I {
        // SAFETY: AVX2, FMA and F16C are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe {
            let (w0, w1) = (_mm256_loadu_si256(w.cast()), _mm256_loadu_si256(w.add(32).cast()));
            I(_mm256_dpbusd_avx_epi32(acc.0, a, w0), _mm256_dpbusd_avx_epi32(acc.1, a, w1))
        }
    }
}
