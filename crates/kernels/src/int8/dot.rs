//! The contract of an int8 product ([`Dot8`]: exact `u8 x s8` sums in
//! i32) and its two plain forms, the integer oracle and the portable one.
//! A leaf of the int8 path: the tier files implement `Dot8` for their
//! instructions without depending on the rest of it.

use lstmrt_format::panel::K_GROUP;

use crate::blocking::Tier;
use crate::simd::{LANES, Simd};

/// Bytes of one gate's weights for one group of 4 input indices: 16 lanes x 4.
pub(crate) const GROUP_BYTES: usize = LANES * K_GROUP;

/// The i32 lanes of a tier: 16 exact sums (one per unit of a panel), made,
/// loaded (sums the tiles computed) and turned into floats the same way by
/// every int8 product of the tier. The tier files implement it once per
/// tier; a product ([`Dot8`]) is then only its broadcast and its dot.
pub(crate) trait Lanes8: Tier {
    /// 16 i32 accumulators.
    type I: Copy;
    unsafe fn izero() -> Self::I;
    /// Loads 16 sums computed elsewhere (by tiles).
    unsafe fn load_i32(p: *const i32) -> Self::I;
    /// `acc - zp * colsum` (16 i32 at `colsum`), as f32.
    unsafe fn finish(acc: Self::I, colsum: *const i32, zp: i32) -> Self::V;
    /// Stores the 16 accumulators (for tests).
    #[cfg(test)]
    unsafe fn store_i32(acc: Self::I, out: *mut i32);
}

/// The accumulators of product `D`: its tier's i32 lanes.
pub(crate) type Acc<D> = <<D as Dot8>::S as Lanes8>::I;

/// The integer product of one tier: `acc[l] += Σ_j a[j] w[4l + j]` for the 16
/// lanes of a 64-byte weight group and 4 activation bytes, exactly. Whether
/// tiles sum many rows instead is not the product's business: the int8 GEMM
/// and step take the tiles as a type parameter of their own
/// ([`crate::amx::Tiles`]).
pub(crate) trait Dot8: Copy + 'static {
    /// The tier the rest of the step runs on, and whose i32 lanes hold the sums.
    type S: Lanes8;
    /// 4 activation bytes, prepared for [`Dot8::dot`].
    type A: Copy;
    /// Prepares the 4 bytes at `a`.
    unsafe fn bcast(a: *const u8) -> Self::A;
    /// Adds the products with the 64 weight bytes at `w`.
    unsafe fn dot(acc: <Self::S as Lanes8>::I, a: Self::A, w: *const i8) -> <Self::S as Lanes8>::I;
}

/// The integer oracle: plain Rust, one product at a time.
#[derive(Clone, Copy)]
pub(crate) struct ScalarDot;

/// The same integer code compiled for the portable tier's baseline.
#[derive(Clone, Copy)]
pub(crate) struct PortableDot;

macro_rules! plain_lanes {
    ($tier:ty) => {
        impl Lanes8 for $tier {
            type I = [i32; LANES];
            #[inline(always)]
            unsafe fn izero() -> [i32; LANES] {
                [0; LANES]
            }
            #[inline(always)]
            unsafe fn load_i32(p: *const i32) -> [i32; LANES] {
                // SAFETY: the caller guarantees 16 readable i32.
                unsafe { p.cast::<[i32; LANES]>().read_unaligned() }
            }
            #[inline(always)]
            unsafe fn finish(acc: [i32; LANES], colsum: *const i32, zp: i32) -> <$tier as Simd>::V {
                // SAFETY: the caller guarantees 16 readable i32.
                let cs = unsafe { colsum.cast::<[i32; LANES]>().read_unaligned() };
                let f: [f32; LANES] = std::array::from_fn(|l| (acc[l] - zp * cs[l]) as f32);
                // SAFETY: `f` holds 16 floats.
                unsafe { <$tier as Simd>::load(f.as_ptr()) }
            }
            #[cfg(test)]
            unsafe fn store_i32(acc: [i32; LANES], out: *mut i32) {
                // SAFETY: the caller guarantees room for 16 i32.
                unsafe { out.cast::<[i32; LANES]>().write_unaligned(acc) }
            }
        }
    };
}
plain_lanes!(crate::scalar::Scalar);
plain_lanes!(crate::portable::Wide);

macro_rules! plain_dot {
    ($ty:ty, $tier:ty) => {
        impl Dot8 for $ty {
            type S = $tier;
            type A = [u8; 4];
            #[inline(always)]
            unsafe fn bcast(a: *const u8) -> [u8; 4] {
                // SAFETY: the caller guarantees 4 readable bytes.
                unsafe { a.cast::<[u8; 4]>().read_unaligned() }
            }
            #[inline(always)]
            unsafe fn dot(mut acc: [i32; LANES], a: [u8; 4], w: *const i8) -> [i32; LANES] {
                // SAFETY: the caller guarantees 64 readable bytes.
                let w = unsafe { w.cast::<[i8; GROUP_BYTES]>().read_unaligned() };
                for l in 0..LANES {
                    for j in 0..K_GROUP {
                        acc[l] += i32::from(a[j]) * i32::from(w[K_GROUP * l + j]);
                    }
                }
                acc
            }
        }
    };
}
plain_dot!(ScalarDot, crate::scalar::Scalar);
plain_dot!(PortableDot, crate::portable::Wide);
