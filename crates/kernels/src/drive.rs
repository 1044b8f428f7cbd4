//! The entry points a tier instantiates (through `crate::dispatch`): the
//! recurrence of a layer step after step ([`run_steps`], each pass walked
//! by the tier's blocking strategy) and the input projection ([`gemm`]).

use std::ops::Range;

use lstmrt_format::CellKind;

use crate::blocking::{Blocking, Tier};
use crate::gemm::{Gemm, ONE_GATE_CONVERTED_ROWS, one_gate};
use crate::operands::{Job, LayerKernel, StepIo};
use crate::simd::Weight;
use crate::step::{Gates, GruCandidate, GruResetGates, Projection, StepCtx};

/// Runs `job.steps` timesteps of one layer and direction for rows `rows` and
/// panels `panels` (and projection panels `proj_panels`). `sync` is called
/// wherever the next phase reads what other threads wrote (after each step,
/// and between the gates and the projection); with one thread it does nothing.
/// `wide` is this thread's [`crate::WIDEN_BUFFER`]-float buffer (f16/bf16
/// weights; unused, and may be null, for f32).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn run_steps<S: Tier, W: Weight>(
    k: &LayerKernel<'_, W>,
    io: &StepIo,
    job: &Job,
    rows: Range<usize>,
    panels: Range<usize>,
    proj_panels: Range<usize>,
    wide: *mut f32,
    sync: &dyn Fn(),
) {
    let mut cur = job.cur;
    for n in 0..job.steps {
        let t = if job.reverse { job.steps - 1 - n } else { n };
        let (h_prev, h_new) = (io.h[cur], io.h[cur ^ 1]);
        let out_t = job.out.wrapping_add(t * job.out_step);
        // Every other step walks the panels backwards: the panels a step
        // read last are still in cache when the next one starts, where the
        // same order every step would have evicted each before its reuse.
        let backward = cur == 1;
        let ctx = StepCtx { k, io, job, t, h_prev, h_new, out_t, backward, wide };
        // SAFETY: buffers are sized by the engine for this layer; each thread
        // writes only its rows x panels; `sync` orders cross-thread reads.
        unsafe {
            let onnx_gru = k.cell == CellKind::Gru && !k.linear_before_reset;
            if onnx_gru {
                ctx.for_blocks::<S, GruResetGates>(rows.clone(), panels.clone());
                sync();
                ctx.for_blocks::<S, GruCandidate>(rows.clone(), panels.clone());
            } else {
                ctx.for_blocks::<S, Gates>(rows.clone(), panels.clone());
            }
            if k.w_hr.is_some() {
                sync();
                ctx.for_blocks::<S, Projection>(rows.clone(), proj_panels.clone());
            }
        }
        sync();
        cur ^= 1;
    }
}

/// `out[row][p][g][:] = bias[p][g][:] + Σ_k x[row][k] W[p][k][g][:]` for panels
/// `panels` and every row: the input projection of many timesteps at once.
#[inline(always)]
pub(crate) unsafe fn gemm<S: Tier, W: Weight>(g: &Gemm<'_, W>, panels: Range<usize>) {
    // SAFETY: the caller guarantees the sizes documented on `Gemm`.
    unsafe {
        match g.w.gates {
            4 => gemm_g::<S, W, 4>(g, panels),
            3 => gemm_g::<S, W, 3>(g, panels),
            _ => gemm_g::<S, W, 1>(g, panels),
        }
    }
}

#[inline(always)]
unsafe fn gemm_g<S: Tier, W: Weight, const G: usize>(g: &Gemm<'_, W>, panels: Range<usize>) {
    // f16/bf16 weights are converted as they are loaded here, once per block
    // of rows: for few rows that is cheaper than widening them into a buffer.
    if G == 1 && (std::mem::size_of::<W>() == 4 || g.rows <= ONE_GATE_CONVERTED_ROWS) {
        // SAFETY: as for `gemm`.
        unsafe { one_gate::<S, W>(g, panels, S::Blocking::TALL) };
        return;
    }
    for p in panels {
        // SAFETY: as for `gemm`.
        unsafe { S::Blocking::gemm_panel::<S, W, G>(g, p) };
    }
}
