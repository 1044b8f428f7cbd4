//! One timestep of an int8 layer: the passes over rows x panels (as
//! `crate::step` and `crate::blocking` for floats), each block's integer
//! sums by the product `D`, finished by the float cells.
// Register blocks are indexed [row][panel][gate] across several arrays at once;
// index loops over the const bounds read like the math.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use lstmrt_format::CellKind;
use lstmrt_format::panel::K_GROUP;

use crate::blocking::{Blocking, PanelCover, ROW_BLOCK, Tier, block_height};
use crate::operands::{Job, LayerKernel, Source, StepIo};
use crate::simd::{LANES, Simd};
use crate::step::StepCtx;

use super::dot::{Acc, Dot8, GROUP_BYTES, Lanes8};
use super::quantize::*;
use crate::amx::Tiles;

/// What one step's int8 passes read beyond the float context.
#[derive(Clone, Copy)]
pub(crate) struct Ctx8<'c, 'a, 'k> {
    pub(crate) s: &'c StepCtx<'a, 'k, i8>,
    pub(crate) m: &'c Layer8<'k>,
    /// The quantized input of this pass (`h_{t-1}`, or `io.r`).
    pub(crate) x: QRows,
    /// `pre` of the GEMM (int8 layers always project first).
    pub(crate) pre: *mut f32,
    pub(crate) row_stride: usize,
    /// Sum this thread's rows with tiles (configured on this thread).
    pub(crate) tiles: bool,
}

/// The int8 matrices of one layer and direction.
#[derive(Clone, Copy)]
pub(crate) struct Layer8<'a> {
    pub w_hh: Mat8<'a>,
    pub w_hr: Option<Mat8<'a>>,
}

/// `Σ_k x[r][k] W[p0+q][k][gate0+g]` in i32 for `R` rows x `Q` panels x `G`
/// gates, reading physical rows `rows[r]` of `x`.
#[inline(always)]
pub(crate) unsafe fn dots<D: Dot8, const R: usize, const Q: usize, const G: usize>(
    m: &Mat8<'_>,
    gate0: usize,
    p0: usize,
    x: &QRows,
    rows: [usize; R],
) -> [[[Acc<D>; G]; Q]; R] {
    // SAFETY: the caller guarantees the rows of `x` and panels p0..p0+Q of `m`.
    unsafe {
        // Rows the tiles summed (an AMX form's batch): their sums, loaded.
        if let Some(t) = x.sums {
            return std::array::from_fn(|r| {
                std::array::from_fn(|q| {
                    std::array::from_fn(|g| <D::S as Lanes8>::load_i32(t.at(rows[r], p0 + q, gate0 + g)))
                })
            });
        }
        let mut acc = [[[<D::S as Lanes8>::izero(); G]; Q]; R];
        let step = m.gates * GROUP_BYTES;
        let w: [*const i8; Q] = std::array::from_fn(|q| m.panel(p0 + q).add(gate0 * GROUP_BYTES));
        let xs: [*const u8; R] = std::array::from_fn(|r| x.bytes(rows[r]));
        for quad in 0..m.quads {
            let a: [D::A; R] = std::array::from_fn(|r| D::bcast(xs[r].add(K_GROUP * quad)));
            for q in 0..Q {
                for g in 0..G {
                    let wp = w[q].add(quad * step + g * GROUP_BYTES);
                    for r in 0..R {
                        acc[r][q][g] = D::dot(acc[r][q][g], a[r], wp);
                    }
                }
            }
        }
        acc
    }
}

/// The i32 sums of a register block: `[row][panel][gate]`.
pub(crate) type Sums<D, const R: usize, const Q: usize, const G: usize> = [[[Acc<D>; G]; Q]; R];

/// [`dots`] of the `hi` and the `lo` bytes of split rows `r0..r0+R`, each
/// weight group loaded once for both.
#[inline(always)]
pub(crate) unsafe fn dots_split<D: Dot8, const R: usize, const Q: usize, const G: usize>(
    m: &Mat8<'_>,
    gate0: usize,
    p0: usize,
    x: &QRows,
    r0: usize,
) -> (Sums<D, R, Q, G>, Sums<D, R, Q, G>) {
    // SAFETY: the caller guarantees rows r0..r0+R of `x` (split) and panels p0..p0+Q of `m`.
    unsafe {
        if x.sums.is_some() {
            let hi = dots::<D, R, Q, G>(m, gate0, p0, x, std::array::from_fn(|r| 2 * (r0 + r)));
            let lo = dots::<D, R, Q, G>(m, gate0, p0, x, std::array::from_fn(|r| 2 * (r0 + r) + 1));
            return (hi, lo);
        }
        let (mut hi, mut lo) = ([[[<D::S as Lanes8>::izero(); G]; Q]; R], [[[<D::S as Lanes8>::izero(); G]; Q]; R]);
        let step = m.gates * GROUP_BYTES;
        let w: [*const i8; Q] = std::array::from_fn(|q| m.panel(p0 + q).add(gate0 * GROUP_BYTES));
        let xh: [*const u8; R] = std::array::from_fn(|r| x.bytes(2 * (r0 + r)));
        let xl: [*const u8; R] = std::array::from_fn(|r| x.bytes(2 * (r0 + r) + 1));
        for quad in 0..m.quads {
            let ah: [D::A; R] = std::array::from_fn(|r| D::bcast(xh[r].add(K_GROUP * quad)));
            let al: [D::A; R] = std::array::from_fn(|r| D::bcast(xl[r].add(K_GROUP * quad)));
            for q in 0..Q {
                for g in 0..G {
                    let wp = w[q].add(quad * step + g * GROUP_BYTES);
                    for r in 0..R {
                        hi[r][q][g] = D::dot(hi[r][q][g], ah[r], wp);
                        lo[r][q][g] = D::dot(lo[r][q][g], al[r], wp);
                    }
                }
            }
        }
        (hi, lo)
    }
}

/// `out += dequantized Σ_k x[r][k] W[...]` for rows `r0..r0+R` (see [`dots`]).
/// Split rows take two products per weight, read once: `R` is then at most 3
/// (and `Q * G` at most 8), so the accumulators still fit the registers.
#[inline(always)]
pub(crate) unsafe fn add_product<D: Dot8, const R: usize, const Q: usize, const G: usize>(
    out: &mut [[[<D::S as Simd>::V; G]; Q]; R],
    m: &Mat8<'_>,
    gate0: usize,
    p0: usize,
    x: &QRows,
    r0: usize,
) {
    type S<D> = <D as Dot8>::S;
    // SAFETY: `add_product`'s contract (as [`dots`]: the CPU runs `D`, the rows
    // and panels exist), and the scales and sums hold `panels * gates * 16` values.
    unsafe {
        let at = |q: usize, g: usize| ((p0 + q) * m.gates + gate0 + g) * LANES;
        if !x.split {
            let acc = dots::<D, R, Q, G>(m, gate0, p0, x, std::array::from_fn(|r| r0 + r));
            for r in 0..R {
                let (sa, zp) = x.params(r0 + r);
                let sa = S::<D>::splat(sa);
                for q in 0..Q {
                    for g in 0..G {
                        let f = <D::S as Lanes8>::finish(acc[r][q][g], m.colsum.as_ptr().add(at(q, g)), zp);
                        let s = S::<D>::mul(sa, S::<D>::load(m.scale.as_ptr().add(at(q, g))));
                        out[r][q][g] = S::<D>::fma(f, s, out[r][q][g]);
                    }
                }
            }
            return;
        }
        let (hi, lo) = dots_split::<D, R, Q, G>(m, gate0, p0, x, r0);
        for r in 0..R {
            let (sh, zh) = x.params(2 * (r0 + r));
            let (sl, zl) = x.params(2 * (r0 + r) + 1);
            for q in 0..Q {
                for g in 0..G {
                    let cs = m.colsum.as_ptr().add(at(q, g));
                    let fh = <D::S as Lanes8>::finish(hi[r][q][g], cs, zh);
                    let fl = <D::S as Lanes8>::finish(lo[r][q][g], cs, zl);
                    let v = S::<D>::fma(fh, S::<D>::splat(sh), S::<D>::mul(fl, S::<D>::splat(sl)));
                    out[r][q][g] = S::<D>::fma(v, S::<D>::load(m.scale.as_ptr().add(at(q, g))), out[r][q][g]);
                }
            }
        }
    }
}

/// One int8 pass over rows x panels within a step.
pub(crate) trait Pass8 {
    /// Single-row blocks take up to 4 panels of a 1-gate pass (else pairs too).
    const ONE_GATE: bool = false;
    unsafe fn block<D: Dot8, const R: usize, const Q: usize>(c: &Ctx8<'_, '_, '_>, r0: usize, p0: usize);
    /// The matrix the pass multiplies, its first gate and how many: what
    /// tiles sum for it.
    fn product<'c, 'k>(c: &Ctx8<'c, '_, 'k>) -> (&'c Mat8<'k>, usize, usize);
}

/// LSTM, RNN, GRU (PyTorch form).
pub(crate) struct Gates8;
/// GRU (ONNX form), first pass.
pub(crate) struct GruReset8;
/// GRU (ONNX form), second pass, from `r h`.
pub(crate) struct GruCandidate8;
/// LSTM projection, from `o tanh(c')`.
pub(crate) struct Projection8;

impl Pass8 for Gates8 {
    fn product<'c, 'k>(c: &Ctx8<'c, '_, 'k>) -> (&'c Mat8<'k>, usize, usize) {
        (&c.m.w_hh, 0, c.m.w_hh.gates)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn block<D: Dot8, const R: usize, const Q: usize>(c: &Ctx8<'_, '_, '_>, r0: usize, p0: usize) {
        let (s, hh) = (c.s, &c.m.w_hh);
        // SAFETY: `Pass8::block`'s contract: the CPU runs `D`, rows r0..r0+R and
        // panels p0..p0+Q exist.
        unsafe {
            match s.k.cell {
                CellKind::Lstm => {
                    let mut acc = s.pre_part::<D::S, R, Q, 4>(c.pre, c.row_stride, r0, p0);
                    add_product::<D, R, Q, 4>(&mut acc, hh, 0, p0, &c.x, r0);
                    s.lstm_finish::<D::S, R, Q>(&acc, r0, p0);
                }
                CellKind::Gru => {
                    let x = s.pre_part::<D::S, R, Q, 3>(c.pre, c.row_stride, r0, p0);
                    let mut acc = s.bias_h_part::<D::S, R, Q, 3>(p0);
                    add_product::<D, R, Q, 3>(&mut acc, hh, 0, p0, &c.x, r0);
                    s.gru_finish::<D::S, R, Q>(&x, &acc, r0, p0);
                }
                CellKind::RnnTanh | CellKind::RnnRelu => {
                    let mut acc = s.pre_part::<D::S, R, Q, 1>(c.pre, c.row_stride, r0, p0);
                    add_product::<D, R, Q, 1>(&mut acc, hh, 0, p0, &c.x, r0);
                    s.rnn_finish::<D::S, R, Q>(&acc, r0, p0);
                }
            }
        }
    }
}

impl Pass8 for GruReset8 {
    fn product<'c, 'k>(c: &Ctx8<'c, '_, 'k>) -> (&'c Mat8<'k>, usize, usize) {
        (&c.m.w_hh, 0, 2)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn block<D: Dot8, const R: usize, const Q: usize>(c: &Ctx8<'_, '_, '_>, r0: usize, p0: usize) {
        // SAFETY: `Pass8::block`'s contract: rows r0..r0+R and panels
        // p0..p0+Q exist in the step's buffers and the GRU's weights.
        unsafe {
            let x = c.s.pre_part::<D::S, R, Q, 3>(c.pre, c.row_stride, r0, p0);
            let mut acc = crate::cells::first_two::<D::S, R, Q>(&x);
            add_product::<D, R, Q, 2>(&mut acc, &c.m.w_hh, 0, p0, &c.x, r0);
            c.s.gru_reset_finish::<D::S, R, Q>(&acc, r0, p0);
        }
    }
}

impl Pass8 for GruCandidate8 {
    const ONE_GATE: bool = true;
    fn product<'c, 'k>(c: &Ctx8<'c, '_, 'k>) -> (&'c Mat8<'k>, usize, usize) {
        (&c.m.w_hh, 2, 1)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn block<D: Dot8, const R: usize, const Q: usize>(c: &Ctx8<'_, '_, '_>, r0: usize, p0: usize) {
        // SAFETY: `Pass8::block`'s contract (the CPU runs `D`, these rows and
        // panels exist), and `c.x` holds `r h` of these rows (synced).
        unsafe {
            let x = c.s.pre_part::<D::S, R, Q, 3>(c.pre, c.row_stride, r0, p0);
            let mut acc = c.s.b_hn_part::<D::S, R, Q>(p0);
            add_product::<D, R, Q, 1>(&mut acc, &c.m.w_hh, 2, p0, &c.x, r0);
            c.s.gru_candidate_finish::<D::S, R, Q>(&x, &acc, r0, p0);
        }
    }
}

impl Pass8 for Projection8 {
    const ONE_GATE: bool = true;
    fn product<'c, 'k>(c: &Ctx8<'c, '_, 'k>) -> (&'c Mat8<'k>, usize, usize) {
        (c.m.w_hr.as_ref().expect("projection pass only with w_hr"), 0, 1)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn block<D: Dot8, const R: usize, const Q: usize>(c: &Ctx8<'_, '_, '_>, r0: usize, p0: usize) {
        // SAFETY: `Pass8::block`'s contract (the CPU runs `D`, these rows and
        // panels exist); `w_hr` is present in this pass (checked below).
        unsafe {
            let w = c.m.w_hr.as_ref().expect("projection pass only with w_hr");
            let mut acc = [[[<D::S as Simd>::zero(); 1]; Q]; R];
            add_product::<D, R, Q, 1>(&mut acc, w, 0, p0, &c.x, r0);
            c.s.projection_finish::<D::S, R, Q>(&acc, r0, p0);
        }
    }
}

/// Walks rows x panels in the tier's register blocks: with many registers,
/// 6-row blocks of one panel for batches (each weight group loaded once for
/// 6 rows) and 4- or 2-panel blocks for a single row; else one by one.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
pub(crate) unsafe fn for_blocks<D: Dot8, T: Tiles, P: Pass8>(
    c: &Ctx8<'_, '_, '_>,
    rows: Range<usize>,
    panels: Range<usize>,
) {
    let tall = <<D::S as Tier>::Blocking as Blocking>::TALL;
    let split = c.x.split;
    // SAFETY: every block lies inside rows x panels; tiles are configured
    // on this thread when `c.tiles`.
    unsafe {
        if T::ON && c.tiles {
            let (m, gate0, gates) = P::product(c);
            for i in 0..panels.len() {
                let p = panels.start + c.s.in_step_order(panels.len(), i);
                let x = tile_sums::<T>(m, p, gate0, gates, &c.x, rows.clone());
                panel_rows::<D, P>(&Ctx8 { x, ..*c }, rows.clone(), p);
            }
        } else if tall && rows.len() >= ROW_BLOCK {
            for i in 0..panels.len() {
                panel_rows::<D, P>(c, rows.clone(), panels.start + c.s.in_step_order(panels.len(), i));
            }
        } else if tall {
            let gates = if P::ONE_GATE { 1 } else { c.s.k.cell.gates() };
            // Split rows double the accumulators: blocks of at most 2 panels of several gates.
            let cover =
                if split && gates > 1 { PanelCover::up_to_pairs(panels) } else { PanelCover::new(panels, gates > 1) };
            for r in rows {
                for j in 0..cover.blocks() {
                    match cover.block(c.s.in_step_order(cover.blocks(), j)) {
                        (p, 4) => P::block::<D, 1, 4>(c, r, p),
                        (p, 2) => P::block::<D, 1, 2>(c, r, p),
                        (p, _) => P::block::<D, 1, 1>(c, r, p),
                    }
                }
            }
        } else {
            for r in rows {
                for i in 0..panels.len() {
                    P::block::<D, 1, 1>(c, r, panels.start + c.s.in_step_order(panels.len(), i));
                }
            }
        }
    }
}

/// Rows `rows` of panel `p` in blocks of 6 rows (3 of split rows), then fewer.
#[inline(always)]
pub(crate) unsafe fn panel_rows<D: Dot8, P: Pass8>(c: &Ctx8<'_, '_, '_>, rows: Range<usize>, p: usize) {
    let mut r = rows.start;
    while r < rows.end {
        let n = if c.x.split { split_height(rows.end - r) } else { block_height(rows.end - r) };
        // SAFETY: the block lies inside rows x {p} (the caller's).
        unsafe {
            match n {
                ROW_BLOCK => P::block::<D, ROW_BLOCK, 1>(c, r, p),
                3 => P::block::<D, 3, 1>(c, r, p),
                2 => P::block::<D, 2, 1>(c, r, p),
                _ => P::block::<D, 1, 1>(c, r, p),
            }
        }
        r += n;
    }
}

/// Physical rows (byte rows) of `rows` rows of `x`.
#[inline(always)]
pub(crate) fn physical_rows(x: &QRows, rows: &Range<usize>) -> Range<usize> {
    if x.split { 2 * rows.start..2 * rows.end } else { rows.clone() }
}

/// Whether tiles `T` sum `rows` rows rather than the product.
#[inline(always)]
pub(crate) fn use_tiles<T: Tiles>(rows: usize, split: bool) -> bool {
    T::ON && rows * (1 + usize::from(split)) >= TILE_MIN_ROWS
}

/// Sums rows `rows` of `x` times gates `gate0..gate0 + gates` of panel `p`
/// of `m` with tiles, into `x`'s scratch; returns `x` reading those sums.
///
/// # Safety
/// Tiles are configured on this thread; `x` was carved for tiles; the rows
/// and the panel exist.
#[inline(always)]
pub(crate) unsafe fn tile_sums<T: Tiles>(
    m: &Mat8<'_>,
    p: usize,
    gate0: usize,
    gates: usize,
    x: &QRows,
    rows: Range<usize>,
) -> QRows {
    use crate::amx::{PanelSums, TILE_ROWS};
    let phys = physical_rows(x, &rows);
    let tiles_m = phys.len().div_ceil(TILE_ROWS);
    let out: *mut i32 = x.scratch.wrapping_add(TAIL_BYTES).cast();
    let sums = PanelSums {
        a: x.bytes(phys.start),
        a_stride: x.stride,
        tiles_m,
        w: m.panel(p).wrapping_add(gate0 * GROUP_BYTES),
        w_stride: m.gates * GROUP_BYTES,
        gates,
        quads: m.quads,
        tail: x.scratch.cast(),
        out,
    };
    // SAFETY: the rows lie in `x` with 16 rows of room after them and zeros
    // past each row's `k` bytes (carved for tiles); the scratch holds the
    // tail and `gates` x `16 tiles_m` rows of sums; tiles are configured.
    unsafe { T::panel_sums(&sums) };
    let sums = TileSums { ptr: out, panel: p, gate0, row0: phys.start, rows: TILE_ROWS * tiles_m };
    QRows { sums: Some(sums), ..*x }
}

/// Rows in the next register block of split rows when `left` remain: 3
/// (24 accumulators of 4 gates), then 2, then 1.
#[inline(always)]
pub(crate) fn split_height(left: usize) -> usize {
    match left {
        3.. => 3,
        2 => 2,
        _ => 1,
    }
}

/// The int8 counterpart of `step::run_steps`: the input part must be in
/// `pre` (int8 layers always project with [`gemm`] first); `buf` is this
/// thread's buffer of [`buffer_bytes`] bytes for the quantized rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn run_steps<D: Dot8, T: Tiles>(
    k: &LayerKernel<'_, i8>,
    m: &Layer8<'_>,
    io: &StepIo,
    job: &Job,
    rows: Range<usize>,
    panels: Range<usize>,
    proj_panels: Range<usize>,
    buf: *mut u8,
    sync: &dyn Fn(),
) {
    let Source::Pre { ptr: pre, row_stride } = job.source else {
        unreachable!("int8 layers always project the input first")
    };
    let tiles = use_tiles::<T>(rows.len(), m.w_hh.split);
    // SAFETY: the hardware AMX form runs only where `amx::status` is Ok.
    let _tiles = tiles.then(|| unsafe { T::configure() });
    let mut cur = job.cur;
    for n in 0..job.steps {
        let t = if job.reverse { job.steps - 1 - n } else { n };
        let (h_prev, h_new) = (io.h[cur], io.h[cur ^ 1]);
        let out_t = job.out.wrapping_add(t * job.out_step);
        let s = StepCtx { k, io, job, t, h_prev, h_new, out_t, backward: cur == 1, wide: std::ptr::null_mut() };
        // SAFETY: buffers are sized by the engine for this layer; each thread
        // writes only its rows x panels; `sync` orders cross-thread reads.
        unsafe {
            // Not a closure: a closure is a function of its own, and would not
            // be compiled for the tier's instruction set.
            let split = m.w_hh.split;
            let x = quantize_rows(h_prev, io.h_stride, rows.clone(), k.out_size, buf, io.batch, split, T::ON);
            let mut c = Ctx8 { s: &s, m, x, pre, row_stride, tiles };
            if k.cell == CellKind::Gru && !k.linear_before_reset {
                for_blocks::<D, T, GruReset8>(&c, rows.clone(), panels.clone());
                sync();
                c.x = quantize_rows(io.r, io.c_stride, rows.clone(), k.hidden, buf, io.batch, split, T::ON);
                for_blocks::<D, T, GruCandidate8>(&c, rows.clone(), panels.clone());
            } else {
                for_blocks::<D, T, Gates8>(&c, rows.clone(), panels.clone());
            }
            if m.w_hr.is_some() {
                sync();
                c.x = quantize_rows(io.r, io.c_stride, rows.clone(), k.hidden, buf, io.batch, split, T::ON);
                for_blocks::<D, T, Projection8>(&c, rows.clone(), proj_panels.clone());
            }
        }
        sync();
        cur ^= 1;
    }
}
