//! The portable tier of a WebAssembly build, written directly in simd128
//! (`core::arch::wasm32`) rather than through the `wide` crate: a vector is
//! four `v128`, min/max are the single-instruction pseudo-min/max, and with
//! relaxed SIMD (`-C target-feature=+relaxed-simd`, a second `.wasm` the
//! JavaScript loader picks where the engine has it) `fma` is one fused
//! `f32x4.relaxed_madd`. Engines compile simd128 to 16 128-bit registers.

use core::arch::wasm32::*;

use super::simd::{LANES, Simd};

#[derive(Clone, Copy)]
pub(crate) struct Wasm;

#[derive(Clone, Copy)]
pub(crate) struct V([v128; 4]);

#[inline(always)]
fn each(a: V, f: impl Fn(v128) -> v128) -> V {
    V([f(a.0[0]), f(a.0[1]), f(a.0[2]), f(a.0[3])])
}

#[inline(always)]
fn both(a: V, b: V, f: impl Fn(v128, v128) -> v128) -> V {
    V([f(a.0[0], b.0[0]), f(a.0[1], b.0[1]), f(a.0[2], b.0[2]), f(a.0[3], b.0[3])])
}

impl Simd for Wasm {
    type V = V;
    /// Four 128-bit registers per vector; engines have 16 (x86-64) or more.
    const REGISTERS: usize = 4;

    #[inline(always)]
    unsafe fn zero() -> V {
        V([f32x4_splat(0.0); 4])
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> V {
        V([f32x4_splat(x); 4])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> V {
        // SAFETY: the caller guarantees 16 readable f32 at `p` (v128_load
        // needs no alignment).
        unsafe { V(std::array::from_fn(|i| v128_load(p.add(4 * i).cast()))) }
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> V {
        // Not on a hot path: a wasm build widens f16 weights once at load.
        // SAFETY: the caller guarantees 16 readable u16 at `p`.
        let bits = unsafe { p.cast::<[u16; LANES]>().read_unaligned() };
        let f = bits.map(|b| half::f16::from_bits(b).to_f32());
        // SAFETY: `f` holds 16 f32.
        unsafe { Self::load(f.as_ptr()) }
    }
    #[inline(always)]
    unsafe fn load_bf16(p: *const u16) -> V {
        // SAFETY: the caller guarantees 16 readable u16 at `p`.
        unsafe {
            let lo = v128_load(p.cast());
            let hi = v128_load(p.add(8).cast());
            // bf16 is the high half of an f32: widen each u16 to the top of a lane.
            let w = |x: v128| i32x4_shl(x, 16);
            V([
                w(u32x4_extend_low_u16x8(lo)),
                w(u32x4_extend_high_u16x8(lo)),
                w(u32x4_extend_low_u16x8(hi)),
                w(u32x4_extend_high_u16x8(hi)),
            ])
        }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: V) {
        // SAFETY: the caller guarantees 16 writable f32 at `p`.
        unsafe {
            for (i, x) in v.0.iter().enumerate() {
                v128_store(p.add(4 * i).cast(), *x);
            }
        }
    }
    #[inline(always)]
    unsafe fn fma(a: V, b: V, c: V) -> V {
        #[cfg(target_feature = "relaxed-simd")]
        {
            V(std::array::from_fn(|i| f32x4_relaxed_madd(a.0[i], b.0[i], c.0[i])))
        }
        #[cfg(not(target_feature = "relaxed-simd"))]
        {
            V(std::array::from_fn(|i| f32x4_add(f32x4_mul(a.0[i], b.0[i]), c.0[i])))
        }
    }
    #[inline(always)]
    unsafe fn add(a: V, b: V) -> V {
        both(a, b, |x, y| f32x4_add(x, y))
    }
    #[inline(always)]
    unsafe fn sub(a: V, b: V) -> V {
        both(a, b, |x, y| f32x4_sub(x, y))
    }
    #[inline(always)]
    unsafe fn mul(a: V, b: V) -> V {
        both(a, b, |x, y| f32x4_mul(x, y))
    }
    #[inline(always)]
    unsafe fn recip(a: V) -> V {
        each(a, |x| f32x4_div(f32x4_splat(1.0), x))
    }
    #[inline(always)]
    unsafe fn min(a: V, b: V) -> V {
        both(a, b, |x, y| f32x4_pmin(x, y))
    }
    #[inline(always)]
    unsafe fn max(a: V, b: V) -> V {
        both(a, b, |x, y| f32x4_pmax(x, y))
    }
    #[inline(always)]
    unsafe fn round(a: V) -> V {
        each(a, |x| f32x4_nearest(x))
    }
    #[inline(always)]
    unsafe fn pow2n(n: V) -> V {
        each(n, |x| i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(x), i32x4_splat(127)), 23))
    }
    #[inline(always)]
    unsafe fn abs(a: V) -> V {
        each(a, |x| f32x4_abs(x))
    }
    #[inline(always)]
    unsafe fn copysign(a: V, sign: V) -> V {
        let s = f32x4_splat(-0.0);
        both(a, sign, |a, sign| v128_or(f32x4_abs(a), v128_and(sign, s)))
    }
    #[inline(always)]
    unsafe fn keep_nan(x: V, r: V) -> V {
        both(x, r, |x, r| v128_bitselect(x, r, f32x4_ne(x, x)))
    }
}

impl crate::blocking::Tier for Wasm {
    type Blocking = crate::blocking::FewRegisters;
}
