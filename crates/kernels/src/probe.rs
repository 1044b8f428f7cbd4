//! Tiny kernels that measure the machine rather than compute a model: the FMA
//! peak and the read bandwidth of weights (f32, or f16/bf16 widened as the
//! recurrent kernels widen them), for the roofline bounds in `lstm-run --roofline`.

use half::{bf16, f16};

use crate::simd::{LANES, Simd, Weight};
use lstmrt_format::DType;

/// Independent FMA chains: enough to cover FMA latency times throughput.
const CHAINS: usize = 16;

/// The arguments of the FMA probe: `iters` rounds of `CHAINS` vector FMAs.
pub struct FmaCall {
    pub iters: usize,
}

impl FmaCall {
    /// Floating-point operations one call performs.
    pub fn flops(&self) -> f64 {
        (self.iters * CHAINS * LANES * 2) as f64
    }
}

#[inline(always)]
pub(crate) unsafe fn fma_generic<S: Simd>(c: &FmaCall) -> f32 {
    // SAFETY: lane arithmetic only; the tier is available.
    unsafe {
        let mut acc = [S::zero(); CHAINS];
        for (i, a) in acc.iter_mut().enumerate() {
            *a = S::splat(i as f32 * 1e-3);
        }
        let (m, b) = (S::splat(0.999_999), S::splat(1e-6));
        for _ in 0..c.iters {
            for a in acc.iter_mut() {
                *a = S::fma(*a, m, b);
            }
        }
        let mut total = S::zero();
        for a in acc {
            total = S::add(total, a);
        }
        let mut lanes = [0.0f32; LANES];
        S::store(lanes.as_mut_ptr(), total);
        lanes.iter().sum()
    }
}

/// The arguments of the read probe: `passes` full reads of `bytes`.
pub struct ReadCall<'a> {
    pub bytes: &'a [u8],
    pub dtype: DType,
    pub passes: usize,
}

#[inline(always)]
pub(crate) unsafe fn read_generic<S: Simd>(c: &ReadCall) -> f32 {
    // SAFETY: the slices are cast from whole, aligned buffers.
    unsafe {
        match c.dtype {
            // Bytes are bytes: int8 weights stream at the bandwidth of f32 ones.
            DType::F32 | DType::I8 => read::<S, f32>(bytemuck::cast_slice(c.bytes), c.passes),
            DType::F16 => read::<S, f16>(bytemuck::cast_slice(c.bytes), c.passes),
            DType::BF16 => read::<S, bf16>(bytemuck::cast_slice(c.bytes), c.passes),
        }
    }
}

/// Sums every element `passes` times with 8 independent accumulators, loading
/// (and widening) 16 weights at a time, as the recurrent kernels do.
#[inline(always)]
unsafe fn read<S: Simd, W: Weight>(data: &[W], passes: usize) -> f32 {
    const UNROLL: usize = 8;
    // SAFETY: every load reads 16 elements inside `data` (whole blocks only).
    unsafe {
        let mut acc = [S::zero(); UNROLL];
        let blocks = data.len() / (UNROLL * LANES);
        for _ in 0..passes {
            let mut p = data.as_ptr();
            for _ in 0..blocks {
                for (u, a) in acc.iter_mut().enumerate() {
                    *a = S::add(*a, W::load::<S>(p.add(u * LANES)));
                }
                p = p.add(UNROLL * LANES);
            }
        }
        let mut total = S::zero();
        for a in acc {
            total = S::add(total, a);
        }
        let mut lanes = [0.0f32; LANES];
        S::store(lanes.as_mut_ptr(), total);
        lanes.iter().sum()
    }
}
