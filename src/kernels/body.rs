//! The kernel bodies, written once, generic over the SIMD tier `S` and the
//! weight element type `W` (f32, f16, bf16), and instantiated per tier inside
//! `#[target_feature]` functions (see `dispatch`).
//!
//! Everything here works on the panel16 layout (`kernels::pack`): a panel is
//! 16 hidden units; for each input index `k` the 16 weights of every gate sit
//! side by side. A step broadcasts `h[k]` (or `x[k]`), does one FMA per gate
//! into per-gate accumulators, and ends with a panel's pre-activations in
//! registers, where the activations and the cell update happen:
//!
//! ```text
//! LSTM  i = σ(a_i + p_i c)  f = σ(a_f + p_f c) | 1 - i  g = tanh(a_g)
//!       c' = f c + i g      o = σ(a_o + p_o c')          h' = o tanh(c')  (then W_hr h')
//! GRU   r = σ(x_r + h_r)    z = σ(x_z + h_z)
//!       n = tanh(x_n + r (W_hn h + b_hn))   or   tanh(x_n + W_hn (r h) + b_hn)
//!       h' = (1 - z) n + z h
//! RNN   h' = tanh(a) | max(a, 0)
//! ```
//! (`a` = input part + hidden part + biases; `clip` clamps each pre-activation.)

// Register blocks are indexed [row][panel][gate] across several arrays at once;
// index loops over the const bounds read like the math.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use super::simd::{LANES, Simd, Weight, clamp, relu, sigmoid, tanh};
use crate::format::CellKind;

/// A packed weight matrix: `[panels][k][gates][16]` elements.
#[derive(Clone, Copy)]
pub(crate) struct Panels<'a, W> {
    pub data: &'a [W],
    pub panels: usize,
    pub k: usize,
    pub gates: usize,
}

impl<W> Panels<'_, W> {
    /// First element of panel `p` (k = 0, gate 0).
    #[inline(always)]
    fn panel(&self, p: usize) -> *const W {
        debug_assert!(p < self.panels);
        // In bounds: the data holds `panels * k * gates * 16` elements.
        self.data[p * self.k * self.gates * LANES..].as_ptr()
    }

    /// Elements between consecutive input indices.
    #[inline(always)]
    fn stride(&self) -> usize {
        self.gates * LANES
    }
}

/// The weights and options of one layer and direction, typed for the kernels.
pub(crate) struct LayerKernel<'a, W> {
    pub cell: CellKind,
    pub clip: Option<f32>,
    pub input_forget: bool,
    pub linear_before_reset: bool,
    /// H: units per gate.
    pub hidden: usize,
    /// P: size of `h` (projection size or H).
    pub out_size: usize,
    pub w_ih: Panels<'a, W>,
    pub w_hh: Panels<'a, W>,
    /// `[P, H]` packed as 1 gate over P units.
    pub w_hr: Option<Panels<'a, W>>,
    /// `[panels][G][16]`: biases added to the input part (LSTM/RNN: `b_ih + b_hh`;
    /// GRU: `b_ir + b_hr, b_iz + b_hz, b_in`).
    pub bias_x: &'a [f32],
    /// `[panels][G][16]`: GRU only, `0, 0, b_hn`.
    pub bias_h: &'a [f32],
    /// `[panels][3][16]`: peepholes `i, f, o`.
    pub peephole: Option<&'a [f32]>,
}

/// The buffers one layer and direction's recurrence reads and writes. Raw
/// pointers because several threads share them, each writing disjoint panels
/// or rows between barriers.
#[derive(Clone, Copy)]
pub(crate) struct StepIo {
    pub batch: usize,
    /// Two `[batch][h_stride]` buffers: `h_{t-1}` in `h[cur]`, `h_t` written to the other.
    pub h: [*mut f32; 2],
    pub h_stride: usize,
    /// `[batch][c_stride]`: LSTM `c`; GRU (ONNX form) `z`.
    pub c: *mut f32,
    /// `[batch][c_stride]`: LSTM with projection `o tanh(c')`; GRU (ONNX form) `r h`.
    pub r: *mut f32,
    pub c_stride: usize,
}

// SAFETY: the pointers are shared by the threads of one `run_steps` split;
// each thread writes only its own rows or panels, and reads what others wrote
// only after the barrier (`sync`) that follows the write.
unsafe impl Send for StepIo {}
unsafe impl Sync for StepIo {}

/// Where the input part of the pre-activations comes from.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    /// Precomputed by [`gemm`]: `[steps][batch][row_stride]`, biases included.
    /// Writable: with many rows, LSTM and RNN steps add `W_hh h` into it in
    /// cache-sized blocks of `k` before the gates are computed.
    Pre { ptr: *mut f32, row_stride: usize },
    /// Computed in the same pass from the inputs `[steps][batch][x_stride]`.
    Fused { x: *const f32, x_stride: usize },
}

// SAFETY: as for `StepIo`: read-only pointers to inputs, and an output that
// threads write in disjoint rows or panels.
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

/// A run of timesteps of one layer and direction.
#[derive(Clone, Copy)]
pub(crate) struct Job {
    pub steps: usize,
    /// Visit the steps from the last to the first (backward direction).
    pub reverse: bool,
    pub source: Source,
    /// Output `h` of step `t`, row `b`, unit `u` goes to `out[t*out_step + b*out_row + u]`.
    pub out: *mut f32,
    pub out_step: usize,
    pub out_row: usize,
    /// Which of `io.h` holds `h_{t-1}` at the start.
    pub cur: usize,
}

/// Adds `Σ_k x_r[k] · W_q[k][g]` to `acc[r][q][g]` for `R` rows and `Q` panels.
///
/// `w[q]` points at panel `q`'s first weight of the first gate to read;
/// consecutive input indices are `stride` elements apart; gates are 16
/// elements apart. Each weight vector is loaded once and used for all rows.
#[inline(always)]
unsafe fn accumulate<S: Simd, W: Weight, const R: usize, const Q: usize, const G: usize>(
    acc: &mut [[[S::V; G]; Q]; R],
    w: [*const W; Q],
    stride: usize,
    x: [*const f32; R],
    k: usize,
) {
    // SAFETY: the caller guarantees `k` input indices of `G` gates at each `w[q]`
    // and `k` readable inputs at each `x[r]`.
    unsafe {
        for kk in 0..k {
            let mut wv = [[S::zero(); G]; Q];
            for q in 0..Q {
                for g in 0..G {
                    wv[q][g] = W::load::<S>(w[q].add(kk * stride + g * LANES));
                }
            }
            for r in 0..R {
                let xv = S::splat(*x[r].add(kk));
                for q in 0..Q {
                    for g in 0..G {
                        acc[r][q][g] = S::fma(wv[q][g], xv, acc[r][q][g]);
                    }
                }
            }
        }
    }
}

/// Loads the `[Q][G]` vectors of panels `p0..p0+Q` from a `[panels][G][16]` buffer.
#[inline(always)]
unsafe fn load_panels<S: Simd, const Q: usize, const G: usize>(dst: &mut [[S::V; G]; Q], src: *const f32, p0: usize) {
    // SAFETY: the caller guarantees panels p0..p0+Q exist in `src`.
    unsafe {
        for (q, panel) in dst.iter_mut().enumerate() {
            for (g, v) in panel.iter_mut().enumerate() {
                *v = S::load(src.add(((p0 + q) * G + g) * LANES));
            }
        }
    }
}

/// For `R` rows of one panel: `out_r[g] = start_r[g] + Σ_{k<n} x_r[k] w[k][g]`,
/// where `start` is `init` (a bias vector) when given, else `out` itself.
#[inline(always)]
unsafe fn accumulate_rows<S: Simd, W: Weight, const R: usize, const G: usize>(
    out: [*mut f32; R],
    init: Option<*const f32>,
    w: *const W,
    stride: usize,
    xs: [*const f32; R],
    n: usize,
) {
    // SAFETY: the caller guarantees R rows of G vectors at `out`, `n` input
    // indices of G gates at `w`, and `n` inputs at each `xs[r]`.
    unsafe {
        let mut acc = [[[S::zero(); G]; 1]; R];
        for r in 0..R {
            let start = init.unwrap_or(out[r]);
            for g in 0..G {
                acc[r][0][g] = S::load(start.add(g * LANES));
            }
        }
        accumulate::<S, W, R, 1, G>(&mut acc, [w], stride, xs, n);
        for r in 0..R {
            for g in 0..G {
                S::store(out[r].add(g * LANES), acc[r][0][g]);
            }
        }
    }
}

/// Rows in the next register block when `left` rows remain (many-register
/// tiers): 6, then pairs (8 independent FMA chains keep both FMA ports busy,
/// where a single row's 4 chains would wait on the FMA latency), then 1.
#[inline(always)]
fn block_height(left: usize) -> usize {
    match left {
        6.. => 6,
        2..=5 => 2,
        _ => 1,
    }
}

/// The blocks of one row's panels: groups of 4, then (when `pairs`) of 2,
/// then single panels, numbered from the first.
struct PanelCover {
    start: usize,
    quads: usize,
    pairs: usize,
    singles: usize,
}

impl PanelCover {
    fn new(panels: Range<usize>, pairs: bool) -> PanelCover {
        let n = panels.len();
        let rest = n % 4;
        let pairs = if pairs { rest / 2 } else { 0 };
        PanelCover { start: panels.start, quads: n / 4, pairs, singles: rest - 2 * pairs }
    }

    fn blocks(&self) -> usize {
        self.quads + self.pairs + self.singles
    }

    /// Block `i`: its first panel and how many panels it spans.
    fn block(&self, i: usize) -> (usize, usize) {
        if i < self.quads {
            (self.start + 4 * i, 4)
        } else if i < self.quads + self.pairs {
            (self.start + 4 * self.quads + 2 * (i - self.quads), 2)
        } else {
            (self.start + 4 * self.quads + 2 * self.pairs + (i - self.quads - self.pairs), 1)
        }
    }
}

/// Floats of the stack buffer that f16/bf16 weights are widened into once per
/// block of k, when several row blocks reuse them (24 KiB, half of L1).
const WIDE_BLOCK: usize = 6144;

/// Widens `vectors` consecutive vectors of 16 weights to f32 at `dst`.
#[inline(always)]
unsafe fn widen<S: Simd, W: Weight>(src: *const W, vectors: usize, dst: *mut f32) {
    // SAFETY: the caller guarantees `vectors * 16` elements at both ends.
    unsafe {
        for i in 0..vectors {
            S::store(dst.add(i * LANES), W::load::<S>(src.add(i * LANES)));
        }
    }
}

/// `out[row][p][g][:] = bias[p][g][:] + Σ_k x[row][k] W[p][k][g][:]` for panels
/// `panels` and rows `0..rows`: the input projection of many timesteps at once.
#[inline(always)]
pub(crate) unsafe fn gemm<S: Simd, W: Weight>(
    w: Panels<'_, W>,
    bias: &[f32],
    x: *const f32,
    x_stride: usize,
    rows: usize,
    out: *mut f32,
    panels: Range<usize>,
) {
    // SAFETY: `x` has `rows` rows of `w.k` inputs; `out` has `rows` rows of
    // `w.panels * w.gates * 16` floats; the bias has `w.panels * w.gates * 16`.
    unsafe {
        match w.gates {
            4 => gemm_g::<S, W, 4>(w, bias, x, x_stride, rows, out, panels),
            3 => gemm_g::<S, W, 3>(w, bias, x, x_stride, rows, out, panels),
            _ => gemm_g::<S, W, 1>(w, bias, x, x_stride, rows, out, panels),
        }
    }
}

#[inline(always)]
unsafe fn gemm_g<S: Simd, W: Weight, const G: usize>(
    w: Panels<'_, W>,
    bias: &[f32],
    x: *const f32,
    x_stride: usize,
    rows: usize,
    out: *mut f32,
    panels: Range<usize>,
) {
    let out_stride = w.panels * G * LANES;
    for p in panels {
        // SAFETY: as for `gemm`.
        unsafe { S::Blocking::gemm_panel::<S, W, G>(w, bias, x, x_stride, rows, out, out_stride, p) };
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_block<S: Simd, W: Weight, const R: usize, const G: usize>(
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

/// Runs `job.steps` timesteps of one layer and direction for rows `rows` and
/// panels `panels` (and projection panels `proj_panels`). `sync` is called
/// wherever the next phase reads what other threads wrote (after each step,
/// and between the gates and the projection); with one thread it does nothing.
#[inline(always)]
pub(crate) unsafe fn run_steps<S: Simd, W: Weight>(
    k: &LayerKernel<'_, W>,
    io: &StepIo,
    job: &Job,
    rows: Range<usize>,
    panels: Range<usize>,
    proj_panels: Range<usize>,
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
        let ctx = StepCtx { k, io, job, t, h_prev, h_new, out_t, backward };
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
struct Gates;
/// LSTM, RNN: gates and state update, `W_hh h` already added to the input part.
struct GatesFinish;
/// GRU (ONNX form) first pass: `r`, `z`, and `r h` for the second.
struct GruResetGates;
/// GRU (ONNX form) second pass: `n` from `W_hn (r h)`, then `h'`.
struct GruCandidate;
/// LSTM projection `h' = W_hr (o tanh(c'))`.
struct Projection;

impl Pass for Gates {
    const BLOCKABLE: bool = true;
    #[inline(always)]
    unsafe fn block<S: Simd, W: Weight, const R: usize, const Q: usize>(
        ctx: &StepCtx<'_, '_, W>,
        r0: usize,
        p0: usize,
    ) {
        // SAFETY: forwarded.
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
        // SAFETY: forwarded.
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
        // SAFETY: forwarded.
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
        // SAFETY: forwarded.
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
        // SAFETY: forwarded.
        unsafe { ctx.projection::<S, R, Q>(r0, p0) }
    }
}

/// How a tier blocks rows and panels into registers. A trait (picked by
/// [`Simd::Blocking`]) rather than a branch on a constant, so each tier
/// instantiates only the block shapes it uses.
pub(crate) trait Blocking {
    /// Runs pass `P` over rows x panels.
    unsafe fn for_blocks<S: Simd, W: Weight, P: Pass>(
        ctx: &StepCtx<'_, '_, W>,
        rows: Range<usize>,
        panels: Range<usize>,
    );
    /// Runs the GEMM of panel `p` over `rows` rows.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_panel<S: Simd, W: Weight, const G: usize>(
        w: Panels<'_, W>,
        bias: &[f32],
        x: *const f32,
        x_stride: usize,
        rows: usize,
        out: *mut f32,
        out_stride: usize,
        p: usize,
    );
}

/// The recurrence of LSTM and RNN rows for panel `p` when the input part is
/// already in `pre`: `W_hh h` is added in cache-sized blocks of k, each block
/// read from memory once and reused from L1 by every row (in blocks of 6 and
/// 2 rows when `TALL`, one row at a time otherwise), then the gates finish
/// row by row. No closures: they would not be compiled for the tier.
#[inline(always)]
unsafe fn blocked_recurrence<S: Simd, W: Weight, const TALL: bool>(
    ctx: &StepCtx<'_, '_, W>,
    rows: Range<usize>,
    p: usize,
) {
    // SAFETY: rows and panel p exist; k-blocks never pass `w.k`.
    unsafe {
        let w = &ctx.k.w_hh;
        let stride = w.stride();
        // f16/bf16 blocks are widened once into a stack buffer and
        // read as f32 by every row block; f32 blocks are read in place.
        let widened = std::mem::size_of::<W>() != 4;
        let mut wide = [0.0f32; WIDE_BLOCK];
        let k_block = if widened { WIDE_BLOCK / stride } else { (24 << 10) / (stride * 4) }.max(1);
        for k0 in (0..w.k).step_by(k_block) {
            let ks = k0..(k0 + k_block).min(w.k);
            let src = w.panel(p).add(k0 * stride);
            if widened {
                widen::<S, W>(src, ks.len() * w.gates, wide.as_mut_ptr());
            }
            let mut r = rows.start;
            while r < rows.end {
                let n = if TALL { block_height(rows.end - r) } else { 1 };
                match (widened, n) {
                    (true, 6) => ctx.add_hidden_block::<S, f32, 6>(r, p, ks.clone(), wide.as_ptr(), stride),
                    (true, 2) => ctx.add_hidden_block::<S, f32, 2>(r, p, ks.clone(), wide.as_ptr(), stride),
                    (true, _) => ctx.add_hidden_block::<S, f32, 1>(r, p, ks.clone(), wide.as_ptr(), stride),
                    (false, 6) => ctx.add_hidden_block::<S, W, 6>(r, p, ks.clone(), src, stride),
                    (false, 2) => ctx.add_hidden_block::<S, W, 2>(r, p, ks.clone(), src, stride),
                    (false, _) => ctx.add_hidden_block::<S, W, 1>(r, p, ks.clone(), src, stride),
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
    /// Several rows: panel by panel, 6 rows at a time, so a panel's weights
    /// are loaded from memory once per step and reused from cache for every
    /// row block (LSTM and RNN first add `W_hh h` in cache-sized blocks of k,
    /// reused from L1). A single row: 2 or 4 panels at a time (more
    /// independent FMA chains). No closures in here: a closure is a function
    /// of its own and would not be compiled for the tier's instruction set.
    #[inline(always)]
    unsafe fn for_blocks<S: Simd, W: Weight, P: Pass>(
        ctx: &StepCtx<'_, '_, W>,
        rows: Range<usize>,
        panels: Range<usize>,
    ) {
        // SAFETY: forwarded; every block lies inside rows x panels.
        unsafe {
            if rows.len() >= 6 {
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

    #[inline(always)]
    unsafe fn gemm_panel<S: Simd, W: Weight, const G: usize>(
        w: Panels<'_, W>,
        bias: &[f32],
        x: *const f32,
        x_stride: usize,
        rows: usize,
        out: *mut f32,
        out_stride: usize,
        p: usize,
    ) {
        // SAFETY: blocks never pass `rows`; k-blocks never pass `w.k`.
        unsafe {
            if std::mem::size_of::<W>() == 4 {
                let mut r = 0;
                while r < rows {
                    let n = block_height(rows - r);
                    match n {
                        6 => gemm_block::<S, W, 6, G>(w, bias, x, x_stride, r, out, out_stride, p),
                        2 => gemm_block::<S, W, 2, G>(w, bias, x, x_stride, r, out, out_stride, p),
                        _ => gemm_block::<S, W, 1, G>(w, bias, x, x_stride, r, out, out_stride, p),
                    }
                    r += n;
                }
                return;
            }
            // f16/bf16: widen a block of k once, then let every row block use
            // it from L1 as f32, instead of converting it once per row block
            // (the conversion, not the FMAs, would bound the GEMM).
            let mut wide = [0.0f32; WIDE_BLOCK];
            let per_k = G * LANES;
            let k_block = WIDE_BLOCK / per_k;
            let panel = w.panel(p);
            for k0 in (0..w.k).step_by(k_block) {
                let n = k_block.min(w.k - k0);
                widen::<S, W>(panel.add(k0 * per_k), n * G, wide.as_mut_ptr());
                let init = (k0 == 0).then(|| bias[p * per_k..].as_ptr());
                let mut r = 0;
                while r < rows {
                    let block = block_height(rows - r);
                    let outs = |n: usize| out.add((r + n) * out_stride + p * per_k);
                    let xs = |n: usize| x.add((r + n) * x_stride + k0);
                    match block {
                        6 => accumulate_rows::<S, f32, 6, G>(
                            std::array::from_fn(outs),
                            init,
                            wide.as_ptr(),
                            per_k,
                            std::array::from_fn(xs),
                            n,
                        ),
                        2 => accumulate_rows::<S, f32, 2, G>(
                            std::array::from_fn(outs),
                            init,
                            wide.as_ptr(),
                            per_k,
                            std::array::from_fn(xs),
                            n,
                        ),
                        _ => accumulate_rows::<S, f32, 1, G>([outs(0)], init, wide.as_ptr(), per_k, [xs(0)], n),
                    }
                    r += block;
                }
            }
        }
    }
}

impl Blocking for FewRegisters {
    /// Several rows of LSTM or RNN: panel by panel, `W_hh` in cache-sized
    /// blocks of k reused by every row, so a batch reads the weights from
    /// memory once per step rather than once per row. Otherwise row by row.
    #[inline(always)]
    unsafe fn for_blocks<S: Simd, W: Weight, P: Pass>(
        ctx: &StepCtx<'_, '_, W>,
        rows: Range<usize>,
        panels: Range<usize>,
    ) {
        let blocked = rows.len() >= 2 && ctx.blockable::<P>();
        if blocked {
            for i in 0..panels.len() {
                let p = panels.start + ctx.in_step_order(panels.len(), i);
                // SAFETY: forwarded; panel p and the rows exist.
                unsafe { blocked_recurrence::<S, W, false>(ctx, rows.clone(), p) };
            }
            return;
        }
        for r in rows {
            for i in 0..panels.len() {
                let p = panels.start + ctx.in_step_order(panels.len(), i);
                // SAFETY: forwarded; the block lies inside rows x panels.
                unsafe { P::block::<S, W, 1, 1>(ctx, r, p) };
            }
        }
    }

    #[inline(always)]
    unsafe fn gemm_panel<S: Simd, W: Weight, const G: usize>(
        w: Panels<'_, W>,
        bias: &[f32],
        x: *const f32,
        x_stride: usize,
        rows: usize,
        out: *mut f32,
        out_stride: usize,
        p: usize,
    ) {
        for r in 0..rows {
            // SAFETY: row r and panel p exist.
            unsafe { gemm_block::<S, W, 1, G>(w, bias, x, x_stride, r, out, out_stride, p) };
        }
    }
}

pub(crate) struct StepCtx<'a, 'k, W> {
    k: &'a LayerKernel<'k, W>,
    io: &'a StepIo,
    job: &'a Job,
    t: usize,
    h_prev: *mut f32,
    h_new: *mut f32,
    out_t: *mut f32,
    /// Visit the panels from the last to the first.
    backward: bool,
}

impl<W: Weight> StepCtx<'_, '_, W> {
    /// Item `i` of `n` (panels or blocks of panels) in this step's order:
    /// backwards on every other step (see `run_steps`).
    #[inline(always)]
    fn in_step_order(&self, n: usize, i: usize) -> usize {
        if self.backward { n - 1 - i } else { i }
    }

    /// Whether pass `P` may add `W_hh h` for several rows in cache-sized
    /// blocks of k ([`blocked_recurrence`]): LSTM and RNN gates whose input
    /// part is already in `pre`.
    #[inline(always)]
    fn blockable<P: Pass>(&self) -> bool {
        P::BLOCKABLE
            && matches!(self.k.cell, CellKind::Lstm | CellKind::RnnTanh | CellKind::RnnRelu)
            && matches!(self.job.source, Source::Pre { .. })
    }

    /// Walks rows x panels in the register blocks of the tier.
    #[inline(always)]
    unsafe fn for_blocks<S: Simd, P: Pass>(&self, rows: Range<usize>, panels: Range<usize>) {
        // SAFETY: forwarded.
        unsafe { S::Blocking::for_blocks::<S, W, P>(self, rows, panels) }
    }

    /// Panel `p` of every row, 6 rows at a time.
    #[inline(always)]
    unsafe fn row_blocks<S: Simd, P: Pass>(&self, rows: Range<usize>, p: usize) {
        // SAFETY: forwarded.
        unsafe {
            let mut r = rows.start;
            while r < rows.end {
                let n = block_height(rows.end - r);
                match n {
                    6 => P::block::<S, W, 6, 1>(self, r, p),
                    2 => P::block::<S, W, 2, 1>(self, r, p),
                    _ => P::block::<S, W, 1, 1>(self, r, p),
                }
                r += n;
            }
        }
    }

    /// `pre[t][rows][panel p] += Σ_{k in ks} h[rows][k] W_hh[p][k]` for `R` rows
    /// from row `r0`; `w` points at the weights of input index `ks.start`
    /// (in the panel, or a widened copy), consecutive indices `stride` apart.
    #[inline(always)]
    unsafe fn add_hidden_block<S: Simd, W2: Weight, const R: usize>(
        &self,
        r0: usize,
        p: usize,
        ks: Range<usize>,
        w: *const W2,
        stride: usize,
    ) {
        let Source::Pre { ptr, row_stride } = self.job.source else { return };
        // SAFETY: rows r0..r0+R and panel p exist in `pre`; ks lies inside 0..K.
        unsafe {
            let g = self.k.cell.gates();
            let outs: [*mut f32; R] =
                std::array::from_fn(|r| ptr.add((self.t * self.io.batch + r0 + r) * row_stride + p * g * LANES));
            let hs: [*const f32; R] = std::array::from_fn(|r| self.h_rows::<R>(r0)[r].add(ks.start));
            if g == 4 {
                accumulate_rows::<S, W2, R, 4>(outs, None, w, stride, hs, ks.len());
            } else {
                accumulate_rows::<S, W2, R, 1>(outs, None, w, stride, hs, ks.len());
            }
        }
    }

    /// Rows' `h_{t-1}` pointers.
    #[inline(always)]
    fn h_rows<const R: usize>(&self, r0: usize) -> [*const f32; R] {
        std::array::from_fn(|r| self.h_prev.wrapping_add((r0 + r) * self.io.h_stride).cast_const())
    }

    /// The input part of the pre-activations of `G` gates (biases included):
    /// loaded from the GEMM output, or computed here from `x` and `W_ih`.
    #[inline(always)]
    unsafe fn input_part<S: Simd, const R: usize, const Q: usize, const G: usize>(
        &self,
        r0: usize,
        p0: usize,
    ) -> [[[S::V; G]; Q]; R] {
        // SAFETY: rows and panels exist in the source buffers.
        unsafe {
            let batch = self.io.batch;
            let mut acc = [[[S::zero(); G]; Q]; R];
            match self.job.source {
                Source::Pre { ptr, row_stride } => {
                    for (r, row_acc) in acc.iter_mut().enumerate() {
                        let row = ptr.add((self.t * batch + r0 + r) * row_stride);
                        load_panels::<S, Q, G>(row_acc, row, p0);
                    }
                }
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

    /// Stores a finished `h` vector for (row, panel) to the padded buffer `dst`
    /// and, for the units that exist, to the output sequence.
    #[inline(always)]
    unsafe fn emit<S: Simd>(&self, dst: *mut f32, stride: usize, row: usize, panel: usize, v: S::V, units: usize) {
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

    #[inline(always)]
    unsafe fn lstm<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize, add_hidden: bool) {
        let k = self.k;
        // SAFETY: rows and panels exist; the state buffers are padded to whole panels.
        unsafe {
            let mut acc = self.input_part::<S, R, Q, 4>(r0, p0);
            if add_hidden {
                let w = &k.w_hh;
                let panels = std::array::from_fn(|q| w.panel(p0 + q));
                accumulate::<S, W, R, Q, 4>(&mut acc, panels, w.stride(), self.h_rows::<R>(r0), w.k);
            }
            let clip = k.clip.map(|c| S::splat(c));
            let one = S::splat(1.0);
            for (r, row_acc) in acc.iter().enumerate() {
                let row = r0 + r;
                for (q, a) in row_acc.iter().enumerate() {
                    let p = p0 + q;
                    let c_ptr = self.io.c.add(row * self.io.c_stride + p * LANES);
                    let c = S::load(c_ptr);
                    let [mut ai, mut af, mut ag, mut ao] = *a;
                    let peep = k.peephole.map(|pp| pp[p * 3 * LANES..].as_ptr());
                    if let Some(pp) = peep {
                        ai = S::fma(S::load(pp), c, ai);
                        af = S::fma(S::load(pp.add(LANES)), c, af);
                    }
                    if let Some(l) = clip {
                        ai = clamp::<S>(ai, l);
                        af = clamp::<S>(af, l);
                        ag = clamp::<S>(ag, l);
                    }
                    let i = sigmoid::<S>(ai);
                    let f = if k.input_forget { S::sub(one, i) } else { sigmoid::<S>(af) };
                    let g = tanh::<S>(ag);
                    let c_new = S::fma(f, c, S::mul(i, g));
                    S::store(c_ptr, c_new);
                    if let Some(pp) = peep {
                        ao = S::fma(S::load(pp.add(2 * LANES)), c_new, ao);
                    }
                    if let Some(l) = clip {
                        ao = clamp::<S>(ao, l);
                    }
                    let h = S::mul(sigmoid::<S>(ao), tanh::<S>(c_new));
                    if k.w_hr.is_some() {
                        self.emit::<S>(self.io.r, self.io.c_stride, row, p, h, k.hidden);
                    } else {
                        self.emit::<S>(self.h_new, self.io.h_stride, row, p, h, k.out_size);
                    }
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn projection<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize) {
        let k = self.k;
        // SAFETY: `w_hr` is present in this phase; rows and output panels exist.
        unsafe {
            let w = k.w_hr.as_ref().expect("projection phase only with w_hr");
            let mut acc = [[[S::zero(); 1]; Q]; R];
            let xs: [*const f32; R] = std::array::from_fn(|r| self.io.r.add((r0 + r) * self.io.c_stride).cast_const());
            accumulate::<S, W, R, Q, 1>(&mut acc, std::array::from_fn(|q| w.panel(p0 + q)), w.stride(), xs, w.k);
            for (r, row_acc) in acc.iter().enumerate() {
                for (q, a) in row_acc.iter().enumerate() {
                    self.emit::<S>(self.h_new, self.io.h_stride, r0 + r, p0 + q, a[0], k.out_size);
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn rnn<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize, add_hidden: bool) {
        let k = self.k;
        // SAFETY: rows and panels exist.
        unsafe {
            let mut acc = self.input_part::<S, R, Q, 1>(r0, p0);
            if add_hidden {
                let w = &k.w_hh;
                let panels = std::array::from_fn(|q| w.panel(p0 + q));
                accumulate::<S, W, R, Q, 1>(&mut acc, panels, w.stride(), self.h_rows::<R>(r0), w.k);
            }
            for (r, row_acc) in acc.iter().enumerate() {
                for (q, a) in row_acc.iter().enumerate() {
                    let mut v = a[0];
                    if let Some(c) = k.clip {
                        v = clamp::<S>(v, S::splat(c));
                    }
                    let h = if k.cell == CellKind::RnnTanh { tanh::<S>(v) } else { relu::<S>(v) };
                    self.emit::<S>(self.h_new, self.io.h_stride, r0 + r, p0 + q, h, k.out_size);
                }
            }
        }
    }

    /// GRU, PyTorch form: `n = tanh(x_n + r (W_hn h + b_hn))`.
    #[inline(always)]
    unsafe fn gru<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize) {
        let k = self.k;
        // SAFETY: rows and panels exist.
        unsafe {
            let x = self.input_part::<S, R, Q, 3>(r0, p0);
            let mut acc = [[[S::zero(); 3]; Q]; R];
            for row_acc in acc.iter_mut() {
                load_panels::<S, Q, 3>(row_acc, k.bias_h.as_ptr(), p0);
            }
            let w = &k.w_hh;
            accumulate::<S, W, R, Q, 3>(
                &mut acc,
                std::array::from_fn(|q| w.panel(p0 + q)),
                w.stride(),
                self.h_rows::<R>(r0),
                w.k,
            );
            for r in 0..R {
                for q in 0..Q {
                    let (row, p) = (r0 + r, p0 + q);
                    let (xg, hg) = (x[r][q], acc[r][q]);
                    let mut ar = S::add(xg[0], hg[0]);
                    let mut az = S::add(xg[1], hg[1]);
                    if let Some(c) = k.clip {
                        ar = clamp::<S>(ar, S::splat(c));
                        az = clamp::<S>(az, S::splat(c));
                    }
                    let rg = sigmoid::<S>(ar);
                    let z = sigmoid::<S>(az);
                    let mut an = S::fma(rg, hg[2], xg[2]);
                    if let Some(c) = k.clip {
                        an = clamp::<S>(an, S::splat(c));
                    }
                    let n = tanh::<S>(an);
                    let h_old = S::load(self.h_prev.add(row * self.io.h_stride + p * LANES));
                    // h' = (1 - z) n + z h = n + z (h - n)
                    let h = S::fma(z, S::sub(h_old, n), n);
                    self.emit::<S>(self.h_new, self.io.h_stride, row, p, h, k.out_size);
                }
            }
        }
    }

    /// GRU, ONNX form, first pass: `r`, `z`; stores `r h` (for the second
    /// pass's broadcast) in `io.r` and `z` in `io.c`.
    #[inline(always)]
    unsafe fn gru_reset_gates<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize) {
        let k = self.k;
        // SAFETY: rows and panels exist; this form always has a precomputed source.
        unsafe {
            let x = self.input_part::<S, R, Q, 3>(r0, p0);
            let mut acc = [[[S::zero(); 2]; Q]; R];
            for r in 0..R {
                for q in 0..Q {
                    acc[r][q] = [x[r][q][0], x[r][q][1]];
                }
            }
            let w = &k.w_hh;
            accumulate::<S, W, R, Q, 2>(
                &mut acc,
                std::array::from_fn(|q| w.panel(p0 + q)),
                w.stride(),
                self.h_rows::<R>(r0),
                w.k,
            );
            for r in 0..R {
                for q in 0..Q {
                    let (row, p) = (r0 + r, p0 + q);
                    let [mut ar, mut az] = acc[r][q];
                    if let Some(c) = k.clip {
                        ar = clamp::<S>(ar, S::splat(c));
                        az = clamp::<S>(az, S::splat(c));
                    }
                    let at = row * self.io.c_stride + p * LANES;
                    let h_old = S::load(self.h_prev.add(row * self.io.h_stride + p * LANES));
                    S::store(self.io.r.add(at), S::mul(sigmoid::<S>(ar), h_old));
                    S::store(self.io.c.add(at), sigmoid::<S>(az));
                }
            }
        }
    }

    /// GRU, ONNX form, second pass: `n = tanh(x_n + W_hn (r h) + b_hn)`, `h'`.
    #[inline(always)]
    unsafe fn gru_candidate<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize) {
        let k = self.k;
        // SAFETY: rows and panels exist; `io.r` holds `r h` of every panel (synced).
        unsafe {
            let x = self.input_part::<S, R, Q, 3>(r0, p0);
            let b = k.bias_h.as_ptr();
            let mut acc = [[[S::zero(); 1]; Q]; R];
            for row_acc in acc.iter_mut() {
                for (q, a) in row_acc.iter_mut().enumerate() {
                    a[0] = S::load(b.add(((p0 + q) * 3 + 2) * LANES));
                }
            }
            let w = &k.w_hh;
            let rh: [*const f32; R] = std::array::from_fn(|r| self.io.r.add((r0 + r) * self.io.c_stride).cast_const());
            // Gate n is the third 16-element block of each input index.
            let wn: [*const W; Q] = std::array::from_fn(|q| w.panel(p0 + q).add(2 * LANES));
            accumulate::<S, W, R, Q, 1>(&mut acc, wn, w.stride(), rh, w.k);
            for r in 0..R {
                for q in 0..Q {
                    let (row, p) = (r0 + r, p0 + q);
                    let mut an = S::add(x[r][q][2], acc[r][q][0]);
                    if let Some(c) = k.clip {
                        an = clamp::<S>(an, S::splat(c));
                    }
                    let n = tanh::<S>(an);
                    let at = row * self.io.c_stride + p * LANES;
                    let z = S::load(self.io.c.add(at));
                    let h_old = S::load(self.h_prev.add(row * self.io.h_stride + p * LANES));
                    let h = S::fma(z, S::sub(h_old, n), n);
                    self.emit::<S>(self.h_new, self.io.h_stride, row, p, h, k.out_size);
                }
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
                assert!(h <= left && matches!(h, 6 | 2 | 1));
                ones += usize::from(h == 1);
                left -= h;
            }
            assert!(ones <= 1, "{rows} rows: {ones} single-row blocks");
        }
    }
}
