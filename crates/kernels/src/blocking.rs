//! How the work of a step or a GEMM is cut into register blocks and cache
//! blocks: the block heights, the panel groups, the k-blocks of `W_hh` reused
//! from L1 by every row block, and the two strategies (many or few vector
//! registers) a tier picks through [`Tier::Blocking`].
// Register blocks are indexed [row][panel][gate] across several arrays at once;
// index loops over the const bounds read like the math.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use crate::gemm::{Gemm, gemm_block};
use crate::microkernel::{accumulate_rows, accumulate_rows_bf16, pair_block, widen};
use crate::simd::{LANES, Simd, Weight};
use crate::step::{GatesFinish, Pass, StepCtx};

/// Rows of the tallest register block of the many-register tiers: below
/// this many rows a step of a batch is cheaper fused with its input
/// projection (`lstmrt`'s engine reads it too).
pub const ROW_BLOCK: usize = 6;

/// Rows in the next register block when `left` rows remain (many-register
/// tiers): [`ROW_BLOCK`], then pairs (8 independent FMA chains keep both FMA ports busy,
/// where a single row's 4 chains would wait on the FMA latency), then 1.
#[inline(always)]
pub(crate) fn block_height(left: usize) -> usize {
    match left {
        ROW_BLOCK.. => ROW_BLOCK,
        2..=5 => 2,
        _ => 1,
    }
}

/// The blocks of one row's panels: groups of 4, then (when `pairs`) of 2,
/// then single panels, numbered from the first.
pub(crate) struct PanelCover {
    start: usize,
    quads: usize,
    pairs: usize,
    singles: usize,
}

impl PanelCover {
    pub(crate) fn new(panels: Range<usize>, pairs: bool) -> PanelCover {
        let n = panels.len();
        let rest = n % 4;
        let pairs = if pairs { rest / 2 } else { 0 };
        PanelCover { start: panels.start, quads: n / 4, pairs, singles: rest - 2 * pairs }
    }

    /// Pairs, then a single panel: no block wider than 2.
    pub(crate) fn up_to_pairs(panels: Range<usize>) -> PanelCover {
        let n = panels.len();
        PanelCover { start: panels.start, quads: 0, pairs: n / 2, singles: n % 2 }
    }

    pub(crate) fn blocks(&self) -> usize {
        self.quads + self.pairs + self.singles
    }

    /// Block `i`: its first panel and how many panels it spans.
    pub(crate) fn block(&self, i: usize) -> (usize, usize) {
        if i < self.quads {
            (self.start + 4 * i, 4)
        } else if i < self.quads + self.pairs {
            (self.start + 4 * self.quads + 2 * (i - self.quads), 2)
        } else {
            (self.start + 4 * self.quads + 2 * self.pairs + (i - self.quads - self.pairs), 1)
        }
    }
}

/// Floats of the buffer that f16/bf16 weights are widened into once per
/// block of k, when several row blocks reuse them (24 KiB, half of L1).
/// The caller owns it (one per thread running a kernel: `StepsCall::wide`,
/// `GemmCall::wide`), so no kernel keeps a large array on its stack.
pub const WIDEN_BUFFER: usize = 6144;
// A block of bf16 pairs of one gate fills the buffer with MAX_PAIRS pairs.
const _: () = assert!(crate::microkernel::MAX_PAIRS == WIDEN_BUFFER / LANES);

/// Bytes of f32 `W_hh` per k-block of the blocked recurrence: read from
/// memory once, then reused from L1 (half of a 48 KiB L1d) by every row block.
const F32_K_BLOCK_BYTES: usize = 24 << 10;

/// A tier the step and GEMM bodies run on: its vector operations ([`Simd`],
/// which depends on nothing above it) and how it blocks rows and panels into
/// its registers.
pub(crate) trait Tier: Simd {
    /// The tier's blocking strategy.
    type Blocking: Blocking;
}

/// How a tier blocks rows and panels into registers. A trait (picked by
/// [`Tier::Blocking`]) rather than a branch on a constant, so each tier
/// instantiates only the block shapes it uses.
pub(crate) trait Blocking {
    /// Whether blocks of 6 and 2 rows, and of 2-4 panels for one row, fit the registers.
    const TALL: bool;
    /// Runs pass `P` over rows x panels.
    unsafe fn for_blocks<S: Tier, W: Weight, P: Pass>(
        ctx: &StepCtx<'_, '_, W>,
        rows: Range<usize>,
        panels: Range<usize>,
    );
    /// Runs the GEMM of panel `p` over all its rows.
    unsafe fn gemm_panel<S: Tier, W: Weight, const G: usize>(g: &Gemm<'_, W>, p: usize);
}

/// The recurrence of LSTM and RNN rows for panel `p` when the input part is
/// already in `pre`: `W_hh h` is added in cache-sized blocks of k, each block
/// read from memory once and reused from L1 by every row (in blocks of 6 and
/// 2 rows when `TALL`, one row at a time otherwise), then the gates finish
/// row by row. No closures: they would not be compiled for the tier.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
pub(crate) unsafe fn blocked_recurrence<S: Tier, W: Weight, const TALL: bool>(
    ctx: &StepCtx<'_, '_, W>,
    rows: Range<usize>,
    p: usize,
) {
    // SAFETY: rows and panel p exist; k-blocks never pass `w.k`.
    unsafe {
        let w = &ctx.k.w_hh;
        let stride = w.stride();
        // f16/bf16 blocks are widened once into the caller's buffer and
        // read as f32 by every row block (bf16 with dot products: paired
        // there, twice the inputs in the same bytes); f32 blocks are read
        // in place.
        let widened = std::mem::size_of::<W>() != 4;
        let wide = ctx.wide;
        let k_block = if W::DOT {
            2 * (WIDEN_BUFFER / stride)
        } else if widened {
            WIDEN_BUFFER / stride
        } else {
            F32_K_BLOCK_BYTES / (stride * 4)
        }
        .max(1);
        let pairs = wide.cast_const().cast::<u32>();
        for k0 in (0..w.k).step_by(k_block) {
            let ks = k0..(k0 + k_block).min(w.k);
            let src = w.panel(p).add(k0 * stride);
            if W::DOT {
                pair_block::<S>(src.cast(), ks.len(), w.gates, wide.cast());
            } else if widened {
                widen::<S, W>(src, ks.len() * w.gates, wide);
            }
            let mut r = rows.start;
            while r < rows.end {
                let n = if TALL { block_height(rows.end - r) } else { 1 };
                match (W::DOT, widened, n) {
                    (true, _, ROW_BLOCK) => ctx.add_hidden_pairs::<S, ROW_BLOCK>(r, p, ks.clone(), pairs),
                    (true, _, 2) => ctx.add_hidden_pairs::<S, 2>(r, p, ks.clone(), pairs),
                    (true, _, _) => ctx.add_hidden_pairs::<S, 1>(r, p, ks.clone(), pairs),
                    (false, true, ROW_BLOCK) => {
                        ctx.add_hidden_block::<S, f32, ROW_BLOCK>(r, p, ks.clone(), wide.cast_const(), stride)
                    }
                    (false, true, 2) => ctx.add_hidden_block::<S, f32, 2>(r, p, ks.clone(), wide.cast_const(), stride),
                    (false, true, _) => ctx.add_hidden_block::<S, f32, 1>(r, p, ks.clone(), wide.cast_const(), stride),
                    (false, false, ROW_BLOCK) => ctx.add_hidden_block::<S, W, ROW_BLOCK>(r, p, ks.clone(), src, stride),
                    (false, false, 2) => ctx.add_hidden_block::<S, W, 2>(r, p, ks.clone(), src, stride),
                    (false, false, _) => ctx.add_hidden_block::<S, W, 1>(r, p, ks.clone(), src, stride),
                }
                r += n;
            }
        }
        if TALL {
            ctx.row_blocks::<S, GatesFinish>(rows, p);
        } else {
            for r in rows {
                GatesFinish::block::<S, W, 1, 1>(ctx, r, p);
            }
        }
    }
}

/// Tiers with 32 vector registers (AVX-512): blocks of 6 rows for batches and
/// GEMMs, 2-4 panels at a time for a single row.
pub(crate) struct ManyRegisters;

/// Every other tier: one row and one panel at a time.
pub(crate) struct FewRegisters;

impl Blocking for ManyRegisters {
    const TALL: bool = true;
    /// Several rows: panel by panel, 6 rows at a time, so a panel's weights
    /// are loaded from memory once per step and reused from cache for every
    /// row block (LSTM and RNN first add `W_hh h` in cache-sized blocks of k,
    /// reused from L1). A single row: 2 or 4 panels at a time (more
    /// independent FMA chains). No closures in here: a closure is a function
    /// of its own and would not be compiled for the tier's instruction set.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn for_blocks<S: Tier, W: Weight, P: Pass>(
        ctx: &StepCtx<'_, '_, W>,
        rows: Range<usize>,
        panels: Range<usize>,
    ) {
        // SAFETY: `Blocking::for_blocks`'s contract (the CPU runs `S`; the rows
        // and panels exist in `ctx`), and every block below lies inside rows x panels.
        unsafe {
            if rows.len() >= ROW_BLOCK {
                let blocked = ctx.blockable::<P>();
                for i in 0..panels.len() {
                    let p = panels.start + ctx.in_step_order(panels.len(), i);
                    if blocked {
                        blocked_recurrence::<S, W, true>(ctx, rows.clone(), p);
                    } else {
                        ctx.row_blocks::<S, P>(rows.clone(), p);
                    }
                }
                return;
            }
            // 4 panels x 4 gates = 16 accumulators of the 32 registers.
            let cover = PanelCover::new(panels, !(P::ONE_GATE || ctx.k.cell.gates() == 1));
            for r in rows {
                for j in 0..cover.blocks() {
                    let i = ctx.in_step_order(cover.blocks(), j);
                    match cover.block(i) {
                        (p, 4) => P::block::<S, W, 1, 4>(ctx, r, p),
                        (p, 2) => P::block::<S, W, 1, 2>(ctx, r, p),
                        (p, _) => P::block::<S, W, 1, 1>(ctx, r, p),
                    }
                }
            }
        }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn gemm_panel<S: Tier, W: Weight, const G: usize>(g: &Gemm<'_, W>, p: usize) {
        let Gemm { w, bias, x, x_stride, rows, out, wide } = *g;
        let out_stride = g.out_stride();
        // SAFETY: blocks never pass `rows`; k-blocks never pass `w.k`.
        unsafe {
            if std::mem::size_of::<W>() == 4 {
                let mut r = 0;
                while r < rows {
                    let n = block_height(rows - r);
                    match n {
                        ROW_BLOCK => gemm_block::<S, W, ROW_BLOCK, G>(g, r, p),
                        2 => gemm_block::<S, W, 2, G>(g, r, p),
                        _ => gemm_block::<S, W, 1, G>(g, r, p),
                    }
                    r += n;
                }
                return;
            }
            // f16/bf16: widen a block of k once, then let every row block use
            // it from L1 as f32, instead of converting it once per row block
            // (the conversion, not the FMAs, would bound the GEMM). bf16 with
            // dot products: pair the block instead, twice the inputs.
            let per_k = G * LANES;
            let k_block = if W::DOT { 2 * (WIDEN_BUFFER / per_k) } else { WIDEN_BUFFER / per_k };
            let panel = w.panel(p);
            let pairs = wide.cast_const().cast::<u32>();
            for k0 in (0..w.k).step_by(k_block) {
                let n = k_block.min(w.k - k0);
                if W::DOT {
                    pair_block::<S>(panel.add(k0 * per_k).cast(), n, G, wide.cast());
                } else {
                    widen::<S, W>(panel.add(k0 * per_k), n * G, wide);
                }
                let init = (k0 == 0).then(|| bias[p * per_k..].as_ptr());
                let mut r = 0;
                while r < rows {
                    let block = block_height(rows - r);
                    let outs = |n: usize| out.add((r + n) * out_stride + p * per_k);
                    let xs = |n: usize| x.add((r + n) * x_stride + k0);
                    if W::DOT {
                        let (o, xr) = (std::array::from_fn(outs), std::array::from_fn(xs));
                        match block {
                            ROW_BLOCK => accumulate_rows_bf16::<S, ROW_BLOCK, G>(o, init, pairs, xr, n),
                            2 => accumulate_rows_bf16::<S, 2, G>([o[0], o[1]], init, pairs, [xr[0], xr[1]], n),
                            _ => accumulate_rows_bf16::<S, 1, G>([o[0]], init, pairs, [xr[0]], n),
                        }
                        r += block;
                        continue;
                    }
                    match block {
                        ROW_BLOCK => accumulate_rows::<S, f32, ROW_BLOCK, G>(
                            std::array::from_fn(outs),
                            init,
                            wide.cast_const(),
                            per_k,
                            std::array::from_fn(xs),
                            n,
                        ),
                        2 => accumulate_rows::<S, f32, 2, G>(
                            std::array::from_fn(outs),
                            init,
                            wide.cast_const(),
                            per_k,
                            std::array::from_fn(xs),
                            n,
                        ),
                        _ => accumulate_rows::<S, f32, 1, G>([outs(0)], init, wide.cast_const(), per_k, [xs(0)], n),
                    }
                    r += block;
                }
            }
        }
    }
}

impl Blocking for FewRegisters {
    const TALL: bool = false;
    /// Several rows of LSTM or RNN: panel by panel, `W_hh` in cache-sized
    /// blocks of k reused by every row, so a batch reads the weights from
    /// memory once per step rather than once per row. Otherwise row by row.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn for_blocks<S: Tier, W: Weight, P: Pass>(
        ctx: &StepCtx<'_, '_, W>,
        rows: Range<usize>,
        panels: Range<usize>,
    ) {
        let blocked = rows.len() >= 2 && ctx.blockable::<P>();
        if blocked {
            for i in 0..panels.len() {
                let p = panels.start + ctx.in_step_order(panels.len(), i);
                // SAFETY: `Blocking::for_blocks`'s contract: the CPU runs `S`, and the
                // rows and panel `p` (one of `panels`) exist in `ctx`.
                unsafe { blocked_recurrence::<S, W, false>(ctx, rows.clone(), p) };
            }
            return;
        }
        for r in rows {
            for i in 0..panels.len() {
                let p = panels.start + ctx.in_step_order(panels.len(), i);
                // SAFETY: `Blocking::for_blocks`'s contract: the CPU runs `S`, and row
                // `r` and panel `p` lie inside rows x panels, which exist in `ctx`.
                unsafe { P::block::<S, W, 1, 1>(ctx, r, p) };
            }
        }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn gemm_panel<S: Tier, W: Weight, const G: usize>(g: &Gemm<'_, W>, p: usize) {
        for r in 0..g.rows {
            // SAFETY: row r and panel p exist.
            unsafe { gemm_block::<S, W, 1, G>(g, r, p) };
        }
    }
}

/// Each pass's walk over rows x panels: the tier's strategy.
impl<W: Weight> StepCtx<'_, '_, W> {
    /// Walks rows x panels in the register blocks of the tier.
    #[inline(always)]
    pub(crate) unsafe fn for_blocks<S: Tier, P: Pass>(&self, rows: Range<usize>, panels: Range<usize>) {
        // SAFETY: the caller's: `rows` and `panels` lie inside this step's
        // buffers and weights, and no other thread writes them.
        unsafe { S::Blocking::for_blocks::<S, W, P>(self, rows, panels) }
    }

    /// Panel `p` of every row, 6 rows at a time.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    pub(crate) unsafe fn row_blocks<S: Tier, P: Pass>(&self, rows: Range<usize>, p: usize) {
        // SAFETY: the caller's: `rows` and panel `p` exist; every block
        // below stays inside `rows`.
        unsafe {
            let mut r = rows.start;
            while r < rows.end {
                let n = block_height(rows.end - r);
                match n {
                    ROW_BLOCK => P::block::<S, W, ROW_BLOCK, 1>(self, r, p),
                    2 => P::block::<S, W, 2, 1>(self, r, p),
                    _ => P::block::<S, W, 1, 1>(self, r, p),
                }
                r += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panel_covers_visit_every_panel_once_in_order() {
        for start in [0, 3] {
            for n in 0..23 {
                for pairs in [false, true] {
                    let cover = PanelCover::new(start..start + n, pairs);
                    let mut next = start;
                    for i in 0..cover.blocks() {
                        let (p, q) = cover.block(i);
                        assert_eq!(p, next, "n={n} pairs={pairs} block {i}");
                        assert!(q == 4 || q == 1 || (pairs && q == 2), "n={n} pairs={pairs}: block of {q}");
                        next += q;
                    }
                    assert_eq!(next, start + n, "n={n} pairs={pairs}");
                }
            }
        }
    }

    #[test]
    fn block_heights_cut_any_batch_into_6_2_and_1() {
        for rows in 0..40 {
            let (mut left, mut ones) = (rows, 0);
            while left > 0 {
                let h = block_height(left);
                assert!(h <= left && matches!(h, ROW_BLOCK | 2 | 1));
                ones += usize::from(h == 1);
                left -= h;
            }
            assert!(ones <= 1, "{rows} rows: {ones} single-row blocks");
        }
    }
}
