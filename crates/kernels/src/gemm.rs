//! The input projection of many timesteps at once: `out = bias + x W_ih^T`
//! over packed panels, in the register blocks of the tier ([`crate::blocking`]).

// Register blocks are indexed [row][panel][gate]; index loops over the const
// bounds read like the math.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use crate::blocking::Blocking;
use crate::blocking::Tier;
use crate::microkernel::accumulate;
use crate::operands::Panels;
use crate::simd::{LANES, Weight};

/// `out[row][p][g][:] = bias[p][g][:] + Σ_k x[row][k] W[p][k][g][:]` for panels
/// `panels` and rows `0..rows`: the input projection of many timesteps at once.
/// `wide` is a [`crate::WIDEN_BUFFER`]-float buffer for f16/bf16 weights
/// (unused, and may be null, for f32).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm<S: Tier, W: Weight>(
    w: Panels<'_, W>,
    bias: &[f32],
    x: *const f32,
    x_stride: usize,
    rows: usize,
    out: *mut f32,
    panels: Range<usize>,
    wide: *mut f32,
) {
    // SAFETY: `x` has `rows` rows of `w.k` inputs; `out` has `rows` rows of
    // `w.panels * w.gates * 16` floats; the bias has `w.panels * w.gates * 16`.
    unsafe {
        match w.gates {
            4 => gemm_g::<S, W, 4>(w, bias, x, x_stride, rows, out, panels, wide),
            3 => gemm_g::<S, W, 3>(w, bias, x, x_stride, rows, out, panels, wide),
            _ => gemm_g::<S, W, 1>(w, bias, x, x_stride, rows, out, panels, wide),
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_g<S: Tier, W: Weight, const G: usize>(
    w: Panels<'_, W>,
    bias: &[f32],
    x: *const f32,
    x_stride: usize,
    rows: usize,
    out: *mut f32,
    panels: Range<usize>,
    wide: *mut f32,
) {
    let out_stride = w.panels * G * LANES;
    for p in panels {
        // SAFETY: as for `gemm`.
        unsafe { S::Blocking::gemm_panel::<S, W, G>(w, bias, x, x_stride, rows, out, out_stride, p, wide) };
    }
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_block<S: Tier, W: Weight, const R: usize, const G: usize>(
    w: Panels<'_, W>,
    bias: &[f32],
    x: *const f32,
    x_stride: usize,
    r0: usize,
    out: *mut f32,
    out_stride: usize,
    p: usize,
) {
    // SAFETY: rows r0..r0+R exist in `x` and `out`; panel p exists.
    unsafe {
        let b = bias[p * G * LANES..].as_ptr();
        let mut acc = [[[S::zero(); G]; 1]; R];
        for row in acc.iter_mut() {
            for g in 0..G {
                row[0][g] = S::load(b.add(g * LANES));
            }
        }
        let xs: [*const f32; R] = std::array::from_fn(|r| x.add((r0 + r) * x_stride));
        accumulate::<S, W, R, 1, G>(&mut acc, [w.panel(p)], w.stride(), xs, w.k);
        for (r, a) in acc.iter().enumerate() {
            let o = out.add((r0 + r) * out_stride + p * G * LANES);
            for (g, v) in a[0].iter().enumerate() {
                S::store(o.add(g * LANES), *v);
            }
        }
    }
}
