//! The portable tier: the `wide` crate at the target's baseline instruction
//! set (SSE2 on x86-64, NEON on aarch64, simd128 on wasm).

use bytemuck::cast;
use wide::{f32x8, i32x8};

use super::simd::{LANES, Simd};

#[derive(Clone, Copy)]
pub(crate) struct Wide;

#[derive(Clone, Copy)]
pub(crate) struct V(f32x8, f32x8);

#[inline(always)]
fn both(a: V, f: impl Fn(f32x8) -> f32x8) -> V {
    V(f(a.0), f(a.1))
}

#[inline(always)]
fn pair(a: V, b: V, f: impl Fn(f32x8, f32x8) -> f32x8) -> V {
    V(f(a.0, b.0), f(a.1, b.1))
}

impl Simd for Wide {
    type V = V;
    /// Four 128-bit registers per vector: 16 registers (SSE2, wasm simd128
    /// as engines compile it) hold 4 vectors, NEON's 32 hold 8.
    const REGISTERS: usize = if cfg!(target_arch = "aarch64") { 8 } else { 4 };

    unsafe fn zero() -> V {
        V(f32x8::ZERO, f32x8::ZERO)
    }
    unsafe fn splat(x: f32) -> V {
        V(f32x8::splat(x), f32x8::splat(x))
    }
    unsafe fn load(p: *const f32) -> V {
        // SAFETY: the caller guarantees 16 readable f32 at `p`.
        let a: [[f32; 8]; 2] = unsafe { p.cast::<[[f32; 8]; 2]>().read_unaligned() };
        V(f32x8::from(a[0]), f32x8::from(a[1]))
    }
    unsafe fn load_f16(p: *const u16) -> V {
        use half::slice::HalfFloatSliceExt;
        // SAFETY: the caller guarantees 16 readable u16 at `p`.
        let bits: [half::f16; LANES] = unsafe { p.cast::<[half::f16; LANES]>().read_unaligned() };
        let mut out = [0.0f32; LANES];
        bits.convert_to_f32_slice(&mut out);
        // SAFETY: `out` holds 16 f32.
        unsafe { Self::load(out.as_ptr()) }
    }
    unsafe fn load_bf16(p: *const u16) -> V {
        // SAFETY: the caller guarantees 16 readable u16 at `p`.
        let bits: [u16; LANES] = unsafe { p.cast::<[u16; LANES]>().read_unaligned() };
        let wide: [u32; LANES] = bits.map(|b| (b as u32) << 16);
        let halves: [[f32; 8]; 2] = cast(wide);
        V(f32x8::from(halves[0]), f32x8::from(halves[1]))
    }
    unsafe fn store(p: *mut f32, v: V) {
        let a: [[f32; 8]; 2] = [v.0.to_array(), v.1.to_array()];
        // SAFETY: the caller guarantees 16 writable f32 at `p`.
        unsafe { p.cast::<[[f32; 8]; 2]>().write_unaligned(a) }
    }
    unsafe fn fma(a: V, b: V, c: V) -> V {
        V(a.0.mul_add(b.0, c.0), a.1.mul_add(b.1, c.1))
    }
    unsafe fn add(a: V, b: V) -> V {
        pair(a, b, |x, y| x + y)
    }
    unsafe fn sub(a: V, b: V) -> V {
        pair(a, b, |x, y| x - y)
    }
    unsafe fn mul(a: V, b: V) -> V {
        pair(a, b, |x, y| x * y)
    }
    unsafe fn recip(a: V) -> V {
        both(a, |x| f32x8::ONE / x)
    }
    unsafe fn min(a: V, b: V) -> V {
        pair(a, b, f32x8::min)
    }
    unsafe fn max(a: V, b: V) -> V {
        pair(a, b, f32x8::max)
    }
    unsafe fn round(a: V) -> V {
        both(a, f32x8::round)
    }
    unsafe fn pow2n(n: V) -> V {
        let p = |x: f32x8| -> f32x8 { cast((x.round_int() + i32x8::splat(127)) << 23) };
        both(n, p)
    }
    unsafe fn abs(a: V) -> V {
        both(a, f32x8::abs)
    }
    unsafe fn copysign(a: V, sign: V) -> V {
        let sign_bit = f32x8::splat(-0.0);
        pair(a, sign, |a, s| a.abs() | (s & sign_bit))
    }
    unsafe fn keep_nan(x: V, r: V) -> V {
        pair(x, r, |x, r| x.is_nan().select(x, r))
    }
}

impl crate::blocking::Tier for Wide {
    type Blocking = crate::blocking::FewRegisters;
}
