//! The AVX-512 tier: a 16-lane vector is one `__m512`.

use std::arch::x86_64::*;

use super::simd::{LANES, Simd};

/// A vector's bits as 32 bf16 values.
#[inline(always)]
fn transmute_bh(v: __m512) -> __m512bh {
    // SAFETY: both are 64 bytes of plain lanes; any bits are valid.
    unsafe { std::mem::transmute::<__m512, __m512bh>(v) }
}

#[derive(Clone, Copy)]
pub(crate) struct Avx512;

// SAFETY (whole impl): every method is only called from code compiled with
// `avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c` enabled, which the
// dispatch guarantees the CPU has; loads and stores touch the 16 lanes the
// caller guarantees are valid.
impl Simd for Avx512 {
    /// One 512-bit register per vector, 32 registers.
    const REGISTERS: usize = 32;
    type V = __m512;

    #[inline(always)]
    unsafe fn zero() -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
    }
    #[inline(always)]
    unsafe fn load_bf16(p: *const u16) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe { _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm256_loadu_si256(p.cast())))) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn sub(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn recip(a: __m512) -> __m512 {
        // rcp14 (relative error < 2^-14) refined by one Newton step: r (2 - a r).
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe {
            let r = _mm512_rcp14_ps(a);
            _mm512_mul_ps(r, _mm512_fnmadd_ps(a, r, _mm512_set1_ps(2.0)))
        }
    }
    #[inline(always)]
    unsafe fn min(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn max(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn round(a: __m512) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
    }
    #[inline(always)]
    unsafe fn pow2n(n: __m512) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe {
            let bias = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(bias))
        }
    }
    #[inline(always)]
    unsafe fn abs(a: __m512) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_abs_ps(a) }
    }
    #[inline(always)]
    unsafe fn copysign(a: __m512, sign: __m512) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe {
            let s = _mm512_set1_ps(-0.0);
            _mm512_or_ps(_mm512_andnot_ps(s, a), _mm512_and_ps(s, sign))
        }
    }
    #[inline(always)]
    unsafe fn keep_nan(x: __m512, r: __m512) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x), r, x) }
    }
    #[inline(always)]
    unsafe fn dot_bf16(acc: __m512, w: __m512, a: __m512) -> __m512 {
        // SAFETY: reached only through `Bf16Dot` weights, which the dispatch
        // runs only where the CPU has AVX512-BF16 (`dispatch::bf16_dot_available`); lane arithmetic only.
        unsafe { _mm512_dpbf16_ps(acc, transmute_bh(w), transmute_bh(a)) }
    }
    #[inline(always)]
    unsafe fn bf16_pairs(x: *const f32, n: usize, dst: *mut u32) {
        // SAFETY: AVX512-BF16 as for `dot_bf16`; the loads read only the `n`
        // floats at `x` (the tail through a mask), the stores write the
        // `n.div_ceil(2)` pairs at `dst` (the tail through a mask).
        unsafe {
            let mut i = 0;
            while i + LANES <= n {
                let b = _mm512_cvtneps_pbh(_mm512_loadu_ps(x.add(i)));
                _mm256_storeu_si256(dst.add(i / 2).cast(), std::mem::transmute::<__m256bh, __m256i>(b));
                i += LANES;
            }
            if i < n {
                // 1..=15 floats left: masked lanes load as 0.
                let left = n - i;
                let b = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(((1u32 << left) - 1) as u16, x.add(i)));
                let pairs = left.div_ceil(2);
                let bits = std::mem::transmute::<__m256bh, __m256i>(b);
                _mm256_mask_storeu_epi32(dst.add(i / 2).cast(), ((1u32 << pairs) - 1) as u8, bits);
            }
        }
    }
    #[inline(always)]
    unsafe fn pair_bf16(lo: *const u16, hi: *const u16, dst: *mut u32) {
        // SAFETY: the AVX-512 subsets are available; the caller guarantees 16
        // values at `lo` and at `hi` (unless null) and room for 16 pairs at `dst`.
        unsafe {
            let lo = _mm512_cvtepu16_epi32(_mm256_loadu_si256(lo.cast()));
            let pairs = if hi.is_null() {
                lo
            } else {
                let hi = _mm512_cvtepu16_epi32(_mm256_loadu_si256(hi.cast()));
                _mm512_or_si512(lo, _mm512_slli_epi32::<16>(hi))
            };
            _mm512_storeu_si512(dst.cast(), pairs);
        }
    }
}

/// 32 vector registers: tall blocks of 6 rows.
impl crate::blocking::Tier for Avx512 {
    type Blocking = crate::blocking::ManyRegisters;
}

/// The int8 product without VNNI: as `avx2::Avx2Maddubs`, on 512-bit vectors.
#[derive(Clone, Copy)]
pub(crate) struct Avx512Maddubs;

/// The int8 product with AVX-512 VNNI: one `vpdpbusd` per 64-byte group.
#[derive(Clone, Copy)]
pub(crate) struct Avx512Vnni;

/// `acc - zp * colsum` as f32, shared by both AVX-512 products.
#[inline(always)]
unsafe fn finish_512(acc: __m512i, colsum: *const i32, zp: i32) -> __m512 {
    // SAFETY: the caller guarantees 16 readable i32; AVX-512F is enabled.
    unsafe {
        let comp = _mm512_mullo_epi32(_mm512_set1_epi32(zp), _mm512_loadu_si512(colsum.cast()));
        _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, comp))
    }
}

// SAFETY (whole impl): only called from code compiled with the AVX-512
// subsets of the tier enabled, which the dispatch guarantees the CPU has;
// loads and stores touch the 16 lanes the caller guarantees are valid.
impl crate::int8::Lanes8 for Avx512 {
    type I = __m512i;

    #[inline(always)]
    unsafe fn izero() -> __m512i {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_setzero_si512() }
    }
    #[inline(always)]
    unsafe fn load_i32(p: *const i32) -> __m512i {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe { _mm512_loadu_si512(p.cast()) }
    }
    #[inline(always)]
    unsafe fn finish(acc: __m512i, colsum: *const i32, zp: i32) -> __m512 {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { finish_512(acc, colsum, zp) }
    }
    #[cfg(test)]
    unsafe fn store_i32(acc: __m512i, out: *mut i32) {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe { _mm512_storeu_si512(out.cast(), acc) }
    }
}

// SAFETY (both impls): only called from code compiled with the AVX-512
// subsets of the tier (and `avx512vnni` for `Avx512Vnni`) enabled, which the
// dispatch guarantees the CPU has; loads touch the bytes the caller
// guarantees are valid. The AMX forms are `Avx512Vnni` with tiles
// (`crate::amx::Tiles`), a type parameter of the int8 GEMM and step.
impl crate::int8::Dot8 for Avx512Maddubs {
    type S = Avx512;
    /// `q >> 1` and `q & 1`, broadcast.
    type A = (__m512i, __m512i);

    #[inline(always)]
    unsafe fn bcast(a: *const u8) -> (__m512i, __m512i) {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe {
            let v = _mm512_set1_epi32(a.cast::<i32>().read_unaligned());
            let half = _mm512_and_si512(_mm512_srli_epi16::<1>(v), _mm512_set1_epi8(0x7f));
            (half, _mm512_and_si512(v, _mm512_set1_epi8(1)))
        }
    }
    #[inline(always)]
    unsafe fn dot(acc: __m512i, a: (__m512i, __m512i), w: *const i8) -> __m512i {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe {
            let w = _mm512_loadu_si512(w.cast());
            let hi = _mm512_madd_epi16(_mm512_maddubs_epi16(a.0, w), _mm512_set1_epi16(2));
            let lo = _mm512_madd_epi16(_mm512_maddubs_epi16(a.1, w), _mm512_set1_epi16(1));
            _mm512_add_epi32(acc, _mm512_add_epi32(hi, lo))
        }
    }
}

impl crate::int8::Dot8 for Avx512Vnni {
    type S = Avx512;
    type A = __m512i;

    #[inline(always)]
    unsafe fn bcast(a: *const u8) -> __m512i {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); lane arithmetic only.
        unsafe { _mm512_set1_epi32(a.cast::<i32>().read_unaligned()) }
    }
    #[inline(always)]
    unsafe fn dot(acc: __m512i, a: __m512i, w: *const i8) -> __m512i {
        // SAFETY: the AVX-512 subsets are available (the tier is dispatched only where they are); the caller guarantees the lanes at the pointer.
        unsafe { _mm512_dpbusd_epi32(acc, a, _mm512_loadu_si512(w.cast())) }
    }
}
