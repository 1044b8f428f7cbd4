//! The input projection of many timesteps at once, `out = bias + x W_ih^T`
//! over packed panels: its operands ([`Gemm`]) and register blocks. The
//! tier's blocking strategy (`crate::blocking`) walks the blocks; the entry
//! point is `crate::drive::gemm`.

// Register blocks are indexed [row][panel][gate]; index loops over the const
// bounds read like the math.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use crate::microkernel::accumulate;
use crate::operands::Panels;
use crate::simd::{LANES, Simd, Weight};

/// The operands every level of one GEMM shares: `out[row] = bias + W x[row]`
/// for rows `0..rows`, `W` packed in panels.
#[derive(Clone, Copy)]
pub(crate) struct Gemm<'a, W> {
    pub w: Panels<'a, W>,
    /// `[panels][gates][16]`, the output's starting values.
    pub bias: &'a [f32],
    /// `rows` rows of `w.k` inputs, `x_stride` floats apart.
    pub x: *const f32,
    pub x_stride: usize,
    pub rows: usize,
    /// `rows` rows of `w.panels * w.gates * 16` floats.
    pub out: *mut f32,
    /// A [`crate::WIDEN_BUFFER`]-float buffer for f16/bf16 weights (unused,
    /// and may be null, for f32).
    pub wide: *mut f32,
}

impl<W> Gemm<'_, W> {
    /// Floats between output rows.
    #[inline(always)]
    pub(crate) fn out_stride(&self) -> usize {
        self.w.panels * self.w.gates * LANES
    }
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
pub(crate) unsafe fn gemm_block<S: Simd, W: Weight, const R: usize, const G: usize>(
    g: &Gemm<'_, W>,
    r0: usize,
    p: usize,
) {
    let Gemm { w, bias, x, x_stride, out, .. } = *g;
    let out_stride = g.out_stride();
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

/// Rows up to which a one-gate GEMM of f16/bf16 weights converts them at
/// every load rather than widening them once into a buffer.
pub(crate) const ONE_GATE_CONVERTED_ROWS: usize = 8;

/// One-gate matrices (the stages' convolutions, the projection): a panel
/// has one accumulator per row, so rows alone leave the FMAs waiting on each
/// other's latency at few rows. Blocks of several panels give every row
/// 2-8 independent sums (many-register tiers: up to 4 rows x 4 panels, or
/// 1 x 8; others up to 2 x 2). Each output is still one sum over k in order.
/// `many`: the tier has many registers ([`crate::blocking::Blocking::TALL`]).
#[inline(always)]
pub(crate) unsafe fn one_gate<S: Simd, W: Weight>(g: &Gemm<'_, W>, panels: Range<usize>, many: bool) {
    let mut p = panels.start;
    // SAFETY: every block stays inside `rows` and `panels`.
    unsafe {
        while p < panels.end {
            let left = panels.end - p;
            // Tiers of few registers (4 vectors) take one panel of up to 2
            // rows: a 2 x 2 block's 4 sums and 2 weight vectors spill there.
            let pairs = S::REGISTERS >= 6;
            let q = match (many, left) {
                (true, 8..) if g.rows == 1 => 8,
                (true, 4..) => 4,
                (_, 2..) if many || pairs => 2,
                _ => 1,
            };
            let mut r = 0;
            while r < g.rows {
                let rows = match (many, g.rows - r) {
                    (true, 4..) => 4,
                    (_, 2..) => 2,
                    _ => 1,
                };
                match (q, rows) {
                    (8, _) => gemm_panels::<S, W, 1, 8>(g, r, p),
                    (4, 4) => gemm_panels::<S, W, 4, 4>(g, r, p),
                    (4, 2) => gemm_panels::<S, W, 2, 4>(g, r, p),
                    (4, _) => gemm_panels::<S, W, 1, 4>(g, r, p),
                    (2, 4) => gemm_panels::<S, W, 4, 2>(g, r, p),
                    (2, 2) => gemm_panels::<S, W, 2, 2>(g, r, p),
                    (2, _) => gemm_panels::<S, W, 1, 2>(g, r, p),
                    (_, 4) => gemm_panels::<S, W, 4, 1>(g, r, p),
                    (_, 2) => gemm_panels::<S, W, 2, 1>(g, r, p),
                    _ => gemm_panels::<S, W, 1, 1>(g, r, p),
                }
                r += rows;
            }
            p += q;
        }
    }
}

/// Rows `r0..r0+R` of panels `p0..p0+Q` of a one-gate matrix.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
unsafe fn gemm_panels<S: Simd, W: Weight, const R: usize, const Q: usize>(g: &Gemm<'_, W>, r0: usize, p0: usize) {
    let Gemm { w, bias, x, x_stride, out, .. } = *g;
    let out_stride = g.out_stride();
    // SAFETY: rows r0..r0+R exist in `x` and `out`; panels p0..p0+Q exist.
    unsafe {
        let mut acc = [[[S::zero(); 1]; Q]; R];
        for row in acc.iter_mut() {
            for (q, a) in row.iter_mut().enumerate() {
                a[0] = S::load(bias[(p0 + q) * LANES..].as_ptr());
            }
        }
        let xs: [*const f32; R] = std::array::from_fn(|r| x.add((r0 + r) * x_stride));
        let ws: [*const W; Q] = std::array::from_fn(|q| w.panel(p0 + q));
        accumulate::<S, W, R, Q, 1>(&mut acc, ws, w.stride(), xs, w.k);
        for (r, row) in acc.iter().enumerate() {
            for (q, a) in row.iter().enumerate() {
                S::store(out.add((r0 + r) * out_stride + (p0 + q) * LANES), a[0]);
            }
        }
    }
}
