//! The scalar tier: plain Rust, one lane at a time. The baseline every CPU runs.

use super::simd::{LANES, Simd};

#[derive(Clone, Copy)]
pub(crate) struct Scalar;

#[inline(always)]
fn map(a: [f32; LANES], f: impl Fn(f32) -> f32) -> [f32; LANES] {
    a.map(f)
}

#[inline(always)]
fn zip(a: [f32; LANES], b: [f32; LANES], f: impl Fn(f32, f32) -> f32) -> [f32; LANES] {
    std::array::from_fn(|i| f(a[i], b[i]))
}

impl Simd for Scalar {
    /// Arrays in memory: no block is too large.
    const REGISTERS: usize = usize::MAX;
    type V = [f32; LANES];

    unsafe fn zero() -> Self::V {
        [0.0; LANES]
    }
    unsafe fn splat(x: f32) -> Self::V {
        [x; LANES]
    }
    unsafe fn load(p: *const f32) -> Self::V {
        // SAFETY: the caller guarantees 16 readable f32 at `p`.
        unsafe { p.cast::<[f32; LANES]>().read_unaligned() }
    }
    unsafe fn load_f16(p: *const u16) -> Self::V {
        // SAFETY: the caller guarantees 16 readable u16 at `p`.
        let bits = unsafe { p.cast::<[u16; LANES]>().read_unaligned() };
        bits.map(|b| half::f16::from_bits(b).to_f32())
    }
    unsafe fn load_bf16(p: *const u16) -> Self::V {
        // SAFETY: the caller guarantees 16 readable u16 at `p`.
        let bits = unsafe { p.cast::<[u16; LANES]>().read_unaligned() };
        bits.map(|b| f32::from_bits((b as u32) << 16))
    }
    unsafe fn store(p: *mut f32, v: Self::V) {
        // SAFETY: the caller guarantees 16 writable f32 at `p`.
        unsafe { p.cast::<[f32; LANES]>().write_unaligned(v) }
    }
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| x + y)
    }
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| x - y)
    }
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| x * y)
    }
    unsafe fn recip(a: Self::V) -> Self::V {
        map(a, |x| 1.0 / x)
    }
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, f32::min)
    }
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, f32::max)
    }
    unsafe fn round(a: Self::V) -> Self::V {
        map(a, f32::round_ties_even)
    }
    unsafe fn pow2n(n: Self::V) -> Self::V {
        map(n, |x| f32::from_bits(((x as i32 + 127) << 23) as u32))
    }
    unsafe fn abs(a: Self::V) -> Self::V {
        map(a, f32::abs)
    }
    unsafe fn copysign(a: Self::V, sign: Self::V) -> Self::V {
        zip(a, sign, f32::copysign)
    }
    unsafe fn keep_nan(x: Self::V, r: Self::V) -> Self::V {
        zip(x, r, |x, r| if x.is_nan() { x } else { r })
    }
}

impl crate::blocking::Tier for Scalar {
    type Blocking = crate::blocking::FewRegisters;
}
