//! The passes of one timestep ([`Pass`]: a register block of rows x panels
//! each) and the context every cell computation reads ([`StepCtx`]). How a
//! tier walks rows x panels in blocks is `crate::blocking`; the step order
//! is `crate::drive`.
// Register blocks are indexed [row][panel][gate] across several arrays at once;
// index loops over the const bounds read like the math.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use lstmrt_format::CellKind;

use crate::microkernel::{accumulate, accumulate_rows, accumulate_rows_bf16, load_panels};
use crate::operands::{Job, LayerKernel, Source, StepIo};
use crate::simd::{LANES, Simd, Weight};

/// One pass over rows x panels within a step. A type per pass (rather than
/// an enum) so that each pass instantiates only its own block code: the
/// bodies are inlined into one function per tier and dtype, and compile time
/// grows with every instantiation.
pub(crate) trait Pass {
    /// Whether several rows may first add `W_hh h` in cache-sized blocks of k.
    const BLOCKABLE: bool = false;
    /// Blocks of a single row take 4 panels (1-gate passes) rather than 2.
    const ONE_GATE: bool = false;
    unsafe fn block<S: Simd, W: Weight, const R: usize, const Q: usize>(ctx: &StepCtx<'_, '_, W>, r0: usize, p0: usize);
}

/// LSTM, RNN, GRU (PyTorch form): gates and state update, one pass.
pub(crate) struct Gates;
/// LSTM, RNN: gates and state update, `W_hh h` already added to the input part.
pub(crate) struct GatesFinish;
/// GRU (ONNX form) first pass: `r`, `z`, and `r h` for the second.
pub(crate) struct GruResetGates;
/// GRU (ONNX form) second pass: `n` from `W_hn (r h)`, then `h'`.
pub(crate) struct GruCandidate;
/// LSTM projection `h' = W_hr (o tanh(c'))`.
pub(crate) struct Projection;

impl Pass for Gates {
    const BLOCKABLE: bool = true;
    #[inline(always)]
    unsafe fn block<S: Simd, W: Weight, const R: usize, const Q: usize>(
        ctx: &StepCtx<'_, '_, W>,
        r0: usize,
        p0: usize,
    ) {
        // SAFETY: the caller's `Pass::block` contract: rows r0..r0+R and
        // panels p0..p0+Q exist in this step's buffers and weights.
        unsafe {
            match ctx.k.cell {
                CellKind::Lstm => ctx.lstm::<S, R, Q>(r0, p0, true),
                CellKind::Gru => ctx.gru::<S, R, Q>(r0, p0),
                CellKind::RnnTanh | CellKind::RnnRelu => ctx.rnn::<S, R, Q>(r0, p0, true),
            }
        }
    }
}

impl Pass for GatesFinish {
    #[inline(always)]
    unsafe fn block<S: Simd, W: Weight, const R: usize, const Q: usize>(
        ctx: &StepCtx<'_, '_, W>,
        r0: usize,
        p0: usize,
    ) {
        // SAFETY: the caller's `Pass::block` contract: rows r0..r0+R and
        // panels p0..p0+Q exist in this step's buffers and weights.
        unsafe {
            match ctx.k.cell {
                CellKind::Lstm => ctx.lstm::<S, R, Q>(r0, p0, false),
                _ => ctx.rnn::<S, R, Q>(r0, p0, false),
            }
        }
    }
}

impl Pass for GruResetGates {
    #[inline(always)]
    unsafe fn block<S: Simd, W: Weight, const R: usize, const Q: usize>(
        ctx: &StepCtx<'_, '_, W>,
        r0: usize,
        p0: usize,
    ) {
        // SAFETY: `Pass::block`'s contract: these rows and panels exist.
        unsafe { ctx.gru_reset_gates::<S, R, Q>(r0, p0) }
    }
}

impl Pass for GruCandidate {
    const ONE_GATE: bool = true;
    #[inline(always)]
    unsafe fn block<S: Simd, W: Weight, const R: usize, const Q: usize>(
        ctx: &StepCtx<'_, '_, W>,
        r0: usize,
        p0: usize,
    ) {
        // SAFETY: `Pass::block`'s contract: these rows and panels exist.
        unsafe { ctx.gru_candidate::<S, R, Q>(r0, p0) }
    }
}

impl Pass for Projection {
    const ONE_GATE: bool = true;
    #[inline(always)]
    unsafe fn block<S: Simd, W: Weight, const R: usize, const Q: usize>(
        ctx: &StepCtx<'_, '_, W>,
        r0: usize,
        p0: usize,
    ) {
        // SAFETY: `Pass::block`'s contract: these rows and output panels exist.
        unsafe { ctx.projection::<S, R, Q>(r0, p0) }
    }
}

/// What every block of one step reads: the layer, its buffers, the step
/// and the panel order.
pub(crate) struct StepCtx<'a, 'k, W> {
    pub(crate) k: &'a LayerKernel<'k, W>,
    pub(crate) io: &'a StepIo,
    pub(crate) job: &'a Job,
    pub(crate) t: usize,
    pub(crate) h_prev: *mut f32,
    pub(crate) h_new: *mut f32,
    pub(crate) out_t: *mut f32,
    /// Visit the panels from the last to the first.
    pub(crate) backward: bool,
    /// This thread's [`crate::WIDEN_BUFFER`] floats (f16/bf16 weights only).
    pub(crate) wide: *mut f32,
}

impl<W> StepCtx<'_, '_, W> {
    /// Item `i` of `n` (panels or blocks of panels) in this step's order:
    /// backwards on every other step (see `run_steps`).
    #[inline(always)]
    pub(crate) fn in_step_order(&self, n: usize, i: usize) -> usize {
        if self.backward { n - 1 - i } else { i }
    }

    /// Rows' `h_{t-1}` pointers.
    #[inline(always)]
    pub(crate) fn h_rows<const R: usize>(&self, r0: usize) -> [*const f32; R] {
        std::array::from_fn(|r| self.h_prev.wrapping_add((r0 + r) * self.io.h_stride).cast_const())
    }

    /// The input part of `G` gates as the GEMM left it in `pre` (biases included).
    #[inline(always)]
    pub(crate) unsafe fn pre_part<S: Simd, const R: usize, const Q: usize, const G: usize>(
        &self,
        ptr: *const f32,
        row_stride: usize,
        r0: usize,
        p0: usize,
    ) -> [[[S::V; G]; Q]; R] {
        // SAFETY: rows r0..r0+R of step t and panels p0..p0+Q exist in `pre`.
        unsafe {
            let mut acc = [[[S::zero(); G]; Q]; R];
            for (r, row_acc) in acc.iter_mut().enumerate() {
                let row = ptr.add((self.t * self.io.batch + r0 + r) * row_stride);
                load_panels::<S, Q, G>(row_acc, row, p0);
            }
            acc
        }
    }

    /// Stores a finished `h` vector for (row, panel) to the padded buffer `dst`
    /// and, for the units that exist, to the output sequence.
    #[inline(always)]
    pub(crate) unsafe fn emit<S: Simd>(
        &self,
        dst: *mut f32,
        stride: usize,
        row: usize,
        panel: usize,
        v: S::V,
        units: usize,
    ) {
        // SAFETY: `dst` rows are `stride` floats (a multiple of 16); the output row has `units` floats.
        unsafe {
            S::store(dst.add(row * stride + panel * LANES), v);
            if dst == self.h_new {
                let n = (units - panel * LANES).min(LANES);
                let src = dst.add(row * stride + panel * LANES);
                let out = self.out_t.add(row * self.job.out_row + panel * LANES);
                std::ptr::copy_nonoverlapping(src, out, n);
            }
        }
    }
}

impl<W: Weight> StepCtx<'_, '_, W> {
    /// Whether pass `P` may add `W_hh h` for several rows in cache-sized
    /// blocks of k ([`crate::blocking`]): LSTM and RNN gates whose input
    /// part is already in `pre`.
    #[inline(always)]
    pub(crate) fn blockable<P: Pass>(&self) -> bool {
        P::BLOCKABLE
            && matches!(self.k.cell, CellKind::Lstm | CellKind::RnnTanh | CellKind::RnnRelu)
            && matches!(self.job.source, Source::Pre { .. })
    }

    /// `pre[t][rows][panel p] += Σ_{k in ks} h[rows][k] W_hh[p][k]` for `R` rows
    /// from row `r0`; `w` points at the weights of input index `ks.start`
    /// (in the panel, or a widened copy), consecutive indices `stride` apart.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    pub(crate) unsafe fn add_hidden_block<S: Simd, W2: Weight, const R: usize>(
        &self,
        r0: usize,
        p: usize,
        ks: Range<usize>,
        w: *const W2,
        stride: usize,
    ) {
        let Some((outs, hs)) = self.hidden_block_rows::<R>(r0, p, ks.start) else { return };
        // SAFETY: the rows exist in `pre` and `h`; ks lies inside 0..K.
        unsafe {
            if self.k.cell.gates() == 4 {
                accumulate_rows::<S, W2, R, 4>(outs, None, w, stride, hs, ks.len());
            } else {
                accumulate_rows::<S, W2, R, 1>(outs, None, w, stride, hs, ks.len());
            }
        }
    }

    /// [`Self::add_hidden_block`] with bf16 dot products: `w` holds the
    /// block's inputs `ks` paired ([`crate::microkernel::pair_block`]).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    pub(crate) unsafe fn add_hidden_pairs<S: Simd, const R: usize>(
        &self,
        r0: usize,
        p: usize,
        ks: Range<usize>,
        w: *const u32,
    ) {
        let Some((outs, hs)) = self.hidden_block_rows::<R>(r0, p, ks.start) else { return };
        // SAFETY: the rows exist in `pre` and `h`; ks lies inside 0..K.
        unsafe {
            if self.k.cell.gates() == 4 {
                accumulate_rows_bf16::<S, R, 4>(outs, None, w, hs, ks.len());
            } else {
                accumulate_rows_bf16::<S, R, 1>(outs, None, w, hs, ks.len());
            }
        }
    }

    /// The rows a block of the k-blocked recurrence adds `W_hh h` into (this
    /// step's `pre`, rows `r0..r0+R`, panel `p`) and the `h` rows it reads
    /// from input `k0`; `None` when the input part is not in `pre`.
    #[inline(always)]
    fn hidden_block_rows<const R: usize>(
        &self,
        r0: usize,
        p: usize,
        k0: usize,
    ) -> Option<([*mut f32; R], [*const f32; R])> {
        let Source::Pre { ptr, row_stride } = self.job.source else { return None };
        let g = self.k.cell.gates();
        let h = self.h_rows::<R>(r0);
        let outs =
            std::array::from_fn(|r| ptr.wrapping_add((self.t * self.io.batch + r0 + r) * row_stride + p * g * LANES));
        Some((outs, std::array::from_fn(|r| h[r].wrapping_add(k0))))
    }

    /// The input part of the pre-activations of `G` gates (biases included):
    /// loaded from the GEMM output, or computed here from `x` and `W_ih`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    pub(crate) unsafe fn input_part<S: Simd, const R: usize, const Q: usize, const G: usize>(
        &self,
        r0: usize,
        p0: usize,
    ) -> [[[S::V; G]; Q]; R] {
        // SAFETY: rows and panels exist in the source buffers.
        unsafe {
            let batch = self.io.batch;
            let mut acc = [[[S::zero(); G]; Q]; R];
            match self.job.source {
                Source::Pre { ptr, row_stride } => acc = self.pre_part::<S, R, Q, G>(ptr, row_stride, r0, p0),
                Source::Fused { x, x_stride } => {
                    for row_acc in acc.iter_mut() {
                        load_panels::<S, Q, G>(row_acc, self.k.bias_x.as_ptr(), p0);
                    }
                    let xs: [*const f32; R] = std::array::from_fn(|r| x.add((self.t * batch + r0 + r) * x_stride));
                    let w = &self.k.w_ih;
                    accumulate::<S, W, R, Q, G>(
                        &mut acc,
                        std::array::from_fn(|q| w.panel(p0 + q)),
                        w.stride(),
                        xs,
                        w.k,
                    );
                }
            }
            acc
        }
    }
}
