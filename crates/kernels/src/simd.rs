//! The small SIMD vocabulary the kernel bodies are written in, and the
//! activations built from it.
//!
//! A vector `V` is always 16 f32 lanes — one panel of hidden units — whatever
//! the tier: one `__m512` for AVX-512, two `__m256` for AVX2, two
//! `wide::f32x8` for the portable tier, `[f32; 16]` for scalar. Kernel bodies
//! are generic over [`Simd`] and `#[inline(always)]`, and each tier
//! instantiates them inside a `#[target_feature]` function, so the whole body
//! is compiled for that instruction set.

/// Lanes in a vector: the panel width of the packed layout.
pub(crate) use lstmrt_format::panel::LANES;

/// Vector operations on 16 f32 lanes. All methods are `unsafe` because the
/// tier's instructions must be available (guaranteed by the dispatch), and
/// loads/stores read or write 16 lanes at the pointer.
pub(crate) trait Simd: Copy + 'static {
    type V: Copy;

    /// Vectors (of 16 lanes) the tier's registers hold: what decides the
    /// register blocks of one-gate GEMMs (`gemm::one_gate`).
    const REGISTERS: usize;

    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    /// Loads 16 f32 (no alignment needed).
    unsafe fn load(p: *const f32) -> Self::V;
    /// Loads 16 IEEE binary16 values, widened to f32.
    unsafe fn load_f16(p: *const u16) -> Self::V;
    /// Loads 16 bfloat16 values, widened to f32.
    unsafe fn load_bf16(p: *const u16) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// `a * b + c`, fused where the tier has FMA.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// `1 / a`, to within a few ulp.
    unsafe fn recip(a: Self::V) -> Self::V;
    /// Lane-wise minimum (any result for NaN lanes; callers fix NaNs up).
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise maximum (any result for NaN lanes; callers fix NaNs up).
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// Round to the nearest integer (ties to even), as a float.
    unsafe fn round(a: Self::V) -> Self::V;
    /// `2^n` for integral `n` in `[-126, 127]`, built from the exponent bits.
    unsafe fn pow2n(n: Self::V) -> Self::V;
    /// `|a|`.
    unsafe fn abs(a: Self::V) -> Self::V;
    /// `|a|` with the sign bit of `sign`.
    unsafe fn copysign(a: Self::V, sign: Self::V) -> Self::V;
    /// `x` in lanes where `x` is NaN, `r` elsewhere.
    unsafe fn keep_nan(x: Self::V, r: Self::V) -> Self::V;

    /// bf16 dot products (`vdpbf16ps`): in each 32-bit lane, `acc` plus the
    /// two products of the bf16 pair in `w` with the bf16 pair in `a` (both
    /// vectors hold bits, not floats), summed in f32. Only the tiers that
    /// [`Bf16Dot`] weights are dispatched to implement the three bf16 pair
    /// methods; the others never reach them.
    unsafe fn dot_bf16(_acc: Self::V, _w: Self::V, _a: Self::V) -> Self::V {
        unreachable!("bf16 dot products on a tier without them")
    }
    /// Rounds the `n` floats at `x` to bf16 (to nearest, ties to even; NaN
    /// stays NaN) and stores them as `n.div_ceil(2)` pairs at `dst`, input
    /// `2j` in the low half of pair `j`; an odd `n` pads the last pair with 0.
    unsafe fn bf16_pairs(_x: *const f32, _n: usize, _dst: *mut u32) {
        unreachable!("bf16 dot products on a tier without them")
    }
    /// Interleaves the 16 bf16 at `lo` and the 16 at `hi` (zeros when `hi`
    /// is null) into 16 pairs at `dst`, `lo` in the low halves.
    unsafe fn pair_bf16(_lo: *const u16, _hi: *const u16, _dst: *mut u32) {
        unreachable!("bf16 dot products on a tier without them")
    }
}

/// An element type of packed weights, widened to f32 as it is loaded.
pub(crate) trait Weight: Copy + 'static {
    /// Loads 16 consecutive weights.
    unsafe fn load<S: Simd>(p: *const Self) -> S::V;
    /// Whether the blocked paths (the GEMM of many rows, the recurrence of
    /// batches) multiply with bf16 dot products ([`Simd::dot_bf16`]) on
    /// pairs of weights rather than widening the weights to f32.
    const DOT: bool = false;
    /// The activation as it meets these weights: itself, or (with bf16 dot
    /// products) rounded to bf16, on every path, so that a row's result does
    /// not depend on which path (how many rows) computed it.
    #[inline(always)]
    fn activation(x: f32) -> f32 {
        x
    }
}

impl Weight for f32 {
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const f32) -> S::V {
        // SAFETY: the caller guarantees 16 readable f32 at `p`.
        unsafe { S::load(p) }
    }
}

impl Weight for half::f16 {
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const half::f16) -> S::V {
        // SAFETY: the caller guarantees 16 readable f16 at `p`; f16 is a u16 bit pattern.
        unsafe { S::load_f16(p.cast()) }
    }
}

impl Weight for half::bf16 {
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const half::bf16) -> S::V {
        // SAFETY: the caller guarantees 16 readable bf16 at `p`; bf16 is a u16 bit pattern.
        unsafe { S::load_bf16(p.cast()) }
    }
}

/// bf16 weights on a tier with bf16 dot products (AVX512-BF16): the same
/// bits as [`half::bf16`], but the blocked paths pair the weights of
/// consecutive inputs in cache and multiply them with the activations
/// rounded to bf16, two products per lane and instruction, summed in f32.
/// The paths of one or a few rows widen them as they load, like `bf16`.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Default)]
#[repr(transparent)]
pub(crate) struct Bf16Dot(pub half::bf16);

// SAFETY: a transparent wrapper of `bf16`, which is a plain u16 (every bit
// pattern valid, no padding).
#[cfg(target_arch = "x86_64")]
unsafe impl bytemuck::Zeroable for Bf16Dot {}
// SAFETY: as just above.
#[cfg(target_arch = "x86_64")]
unsafe impl bytemuck::Pod for Bf16Dot {}

#[cfg(target_arch = "x86_64")]
impl Weight for Bf16Dot {
    const DOT: bool = true;
    #[inline(always)]
    fn activation(x: f32) -> f32 {
        half::bf16::from_f32(x).to_f32()
    }
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const Bf16Dot) -> S::V {
        // SAFETY: the caller guarantees 16 readable values at `p`, each a bf16 bit pattern.
        unsafe { S::load_bf16(p.cast()) }
    }
}

// exp(x) = 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 (ln 2 split in
// two so n * LN2_HI is exact), e^r = 1 + r + r^2 P(r) on |r| <= ln2/2 with the
// classic Cephes single-precision minimax coefficients.
const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const EXP_P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5];
/// Inputs to `exp` are clamped to this range, where `2^n` stays a normal float.
const EXP_MIN: f32 = -87.3;
const EXP_MAX: f32 = 88.3;

/// `e^x` for `x` in `[EXP_MIN, EXP_MAX]` (callers clamp), relative error ~2 ulp.
#[inline(always)]
unsafe fn exp_clamped<S: Simd>(x: S::V) -> S::V {
    // SAFETY: only lane arithmetic; the tier's instructions are available.
    unsafe {
        let n = S::round(S::mul(x, S::splat(LOG2E)));
        let r = S::fma(n, S::splat(-LN2_HI), x);
        let r = S::fma(n, S::splat(-LN2_LO), r);
        let mut p = S::splat(EXP_P[0]);
        for &c in &EXP_P[1..] {
            p = S::fma(p, r, S::splat(c));
        }
        let e = S::fma(p, S::mul(r, r), S::add(r, S::splat(1.0)));
        S::mul(e, S::pow2n(n))
    }
}

/// `σ(x) = 1 / (1 + e^-x)`. Saturates to 0 and 1 at the infinities; NaN stays NaN.
#[inline(always)]
pub(crate) unsafe fn sigmoid<S: Simd>(x: S::V) -> S::V {
    // SAFETY: only lane arithmetic.
    unsafe {
        let y = S::min(S::splat(EXP_MAX), S::max(S::splat(EXP_MIN), S::sub(S::zero(), x)));
        let s = S::recip(S::add(S::splat(1.0), exp_clamped::<S>(y)));
        S::keep_nan(x, s)
    }
}

/// `tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1))`. Saturates to ±1; NaN stays NaN.
#[inline(always)]
pub(crate) unsafe fn tanh<S: Simd>(x: S::V) -> S::V {
    // SAFETY: only lane arithmetic.
    unsafe {
        let a = S::abs(x);
        let y = S::min(S::splat(EXP_MAX), S::add(a, a));
        let e = exp_clamped::<S>(y);
        let t = S::sub(S::splat(1.0), S::mul(S::splat(2.0), S::recip(S::add(e, S::splat(1.0)))));
        S::keep_nan(x, S::copysign(t, x))
    }
}

/// `max(x, 0)`; NaN stays NaN.
#[inline(always)]
pub(crate) unsafe fn relu<S: Simd>(x: S::V) -> S::V {
    // SAFETY: only lane arithmetic.
    unsafe { S::keep_nan(x, S::max(x, S::zero())) }
}

/// Clamps to `[-limit, limit]`; NaN stays NaN.
#[inline(always)]
pub(crate) unsafe fn clamp<S: Simd>(x: S::V, limit: S::V) -> S::V {
    // SAFETY: only lane arithmetic.
    unsafe { S::keep_nan(x, S::min(limit, S::max(S::sub(S::zero(), limit), x))) }
}
