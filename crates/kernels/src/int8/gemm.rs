//! The int8 input projection (as `crate::gemm` for floats): rows quantized
//! a block at a time, each panel's weights then serving the whole block.
// Register blocks are indexed [row][panel][gate] across several arrays at once;
// index loops over the const bounds read like the math.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use crate::blocking::{Blocking, ROW_BLOCK, Tier, block_height};
use crate::simd::{LANES, Simd};

use super::dot::Dot8;
use super::quantize::*;
use super::step::*;
use crate::amx::Tiles;

/// The operands of the int8 input projection `out[row] = bias + W x[row]`.
pub(crate) struct Gemm8<'a> {
    pub w: Mat8<'a>,
    /// Inputs per row (the `K` of `w`).
    pub k: usize,
    pub bias: &'a [f32],
    pub x: *const f32,
    pub x_stride: usize,
    pub rows: usize,
    pub out: *mut f32,
    /// This thread's buffer of [`buffer_bytes`] bytes.
    pub buf: *mut u8,
}

/// The int8 input projection for panels `panels` of every row: rows are
/// quantized a block at a time, then each panel's weights serve the whole
/// block from cache.
#[inline(always)]
pub(crate) unsafe fn gemm<D: Dot8, T: Tiles>(g: &Gemm8<'_>, panels: Range<usize>) {
    // SAFETY: the caller's: `g` holds `rows` rows of `k` inputs and of
    // `panels * gates * 16` outputs, `buf` is this thread's int8 buffer, and
    // `panels` lie inside the matrix.
    unsafe {
        match g.w.gates {
            4 => gemm_g::<D, T, 4>(g, panels),
            3 => gemm_g::<D, T, 3>(g, panels),
            _ => gemm_g::<D, T, 1>(g, panels),
        }
    }
}

#[inline(always)]
pub(crate) unsafe fn gemm_g<D: Dot8, T: Tiles, const G: usize>(g: &Gemm8<'_>, panels: Range<usize>) {
    let tall = <<D::S as Tier>::Blocking as Blocking>::TALL;
    let split = g.w.split;
    let tiles = use_tiles::<T>(g.rows, split);
    let block = gemm_rows(g.k, T::ON);
    // SAFETY: the hardware AMX form runs only where `amx::status` is Ok.
    let _tiles = tiles.then(|| unsafe { T::configure() });
    // SAFETY: the caller guarantees `rows` rows of `k` inputs at `x` and of
    // `panels * G * 16` floats at `out`; blocks never pass `rows`.
    unsafe {
        for b0 in (0..g.rows).step_by(block) {
            let n = block.min(g.rows - b0);
            let x = quantize_rows(g.x.add(b0 * g.x_stride), g.x_stride, 0..n, g.k, g.buf, block, split, T::ON);
            let tiled = tiles && use_tiles::<T>(n, split);
            for p in panels.clone() {
                let x = if tiled { tile_sums::<T>(&g.w, p, 0, G, &x, 0..n) } else { x };
                let mut r = 0;
                while r < n {
                    let h = match (tall, split) {
                        (false, _) => 1,
                        (true, false) => block_height(n - r),
                        (true, true) => split_height(n - r),
                    };
                    match h {
                        ROW_BLOCK => gemm_block::<D, ROW_BLOCK, G>(g, &x, b0, r, p),
                        3 => gemm_block::<D, 3, G>(g, &x, b0, r, p),
                        2 => gemm_block::<D, 2, G>(g, &x, b0, r, p),
                        _ => gemm_block::<D, 1, G>(g, &x, b0, r, p),
                    }
                    r += h;
                }
            }
        }
    }
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
pub(crate) unsafe fn gemm_block<D: Dot8, const R: usize, const G: usize>(
    g: &Gemm8<'_>,
    x: &QRows,
    b0: usize,
    r0: usize,
    p: usize,
) {
    type S<D> = <D as Dot8>::S;
    let out_stride = g.w.panels * G * LANES;
    // SAFETY: rows b0+r0..b0+r0+R exist in `out`, r0..r0+R in `x`; panel p exists.
    unsafe {
        let b = g.bias[p * G * LANES..].as_ptr();
        let mut acc = [[[S::<D>::zero(); G]; 1]; R];
        for row in acc.iter_mut() {
            for (gate, v) in row[0].iter_mut().enumerate() {
                *v = S::<D>::load(b.add(gate * LANES));
            }
        }
        add_product::<D, R, 1, G>(&mut acc, &g.w, 0, p, x, r0);
        for (r, a) in acc.iter().enumerate() {
            let o = g.out.add((b0 + r0 + r) * out_stride + p * G * LANES);
            for (gate, v) in a[0].iter().enumerate() {
                S::<D>::store(o.add(gate * LANES), *v);
            }
        }
    }
}
