//! Running a model: `step` (one timestep, streaming) and `run` (a whole
//! sequence), for one stream or a batch, on the fused SIMD kernels.
//!
//! Whole sequences are cut into chunks of timesteps. For each chunk and layer,
//! the input projection `W_ih x_t + b` of every timestep is one GEMM
//! (`kernels::gemm`); the recurrence then only does `W_hh h_{t-1}` per step
//! (`kernels::run_steps`). Unidirectional stacks go chunk by chunk through all
//! layers (a wavefront), so no buffer grows with the sequence; bidirectional
//! stacks go layer by layer, the backward direction visiting chunks from the end.
//! A single step of a few rows fuses `[x; h]` into one pass over `W_ih` and `W_hh`.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Error;
use crate::model::Model;
use crate::scratch::{Rows, Scratch};
use crate::state::{State, StateShape, check_batch};
use crate::threads::share;
use lstmrt_format::DType;
use lstmrt_format::panel::LANES;
use lstmrt_kernels::WIDEN_BUFFER;
use lstmrt_kernels::dispatch::{self, GemmCall, StepsCall};
use lstmrt_kernels::operands as body;

/// Batches from this size on project a single step's input with the GEMM
/// (the row-block height of the many-register kernels).
const FUSED_MAX_BATCH: usize = lstmrt_kernels::ROW_BLOCK;

/// Where a layer's output goes: packed row `r` (see [`Schedule`]), unit `u`
/// at `ptr[r*row + u]`.
#[derive(Clone, Copy)]
struct Dest {
    ptr: *mut f32,
    row: usize,
}

/// Which rows of a batch run at each step, and where each step's rows are.
///
/// A plain batch runs all `batch` rows every step: step `t`'s rows start at
/// row `t * batch`. A batch of rows with their own lengths, sorted longest
/// first, runs at step `t` only the `sizes[t]` rows still going, a prefix of
/// the batch, stored one after another as PyTorch's `PackedSequence` stores
/// them: step `t`'s rows start at row `offsets[t]`. Rows that have finished
/// drop out of the kernels' work.
#[derive(Clone, Copy)]
pub(crate) struct Schedule<'a> {
    batch: usize,
    /// Empty for a plain batch.
    sizes: &'a [usize],
    /// `sizes.len() + 1` prefix sums of `sizes`.
    offsets: &'a [usize],
}

impl Schedule<'_> {
    /// All `batch` rows at every step.
    pub(crate) fn uniform(batch: usize) -> Schedule<'static> {
        Schedule { batch, sizes: &[], offsets: &[] }
    }

    fn packed(&self) -> bool {
        !self.sizes.is_empty()
    }

    /// Rows running at step `t`.
    fn rows(&self, t: usize) -> usize {
        if self.packed() { self.sizes[t] } else { self.batch }
    }

    /// First (packed) row of step `t`.
    fn offset(&self, t: usize) -> usize {
        if self.packed() { self.offsets[t] } else { t * self.batch }
    }

    /// The longest run of steps with the same rows that starts at `steps.start`
    /// (or, `backward`, ends at `steps.end`).
    fn segment(&self, steps: Range<usize>, backward: bool) -> Range<usize> {
        if !self.packed() {
            return steps;
        }
        if backward {
            let rows = self.rows(steps.end - 1);
            let start = (steps.start..steps.end).rev().take_while(|&t| self.rows(t) == rows).last();
            start.unwrap_or(steps.end - 1)..steps.end
        } else {
            let rows = self.rows(steps.start);
            let end = (steps.start..steps.end).take_while(|&t| self.rows(t) == rows).last();
            steps.start..end.unwrap_or(steps.start) + 1
        }
    }
}

impl Dest {
    /// The same layout starting `floats` further (a method, so closures
    /// capture the whole `Sync` struct, not its raw pointer).
    fn offset(&self, floats: usize) -> Dest {
        Dest { ptr: self.ptr.wrapping_add(floats), ..*self }
    }

    /// Packed row `row` of this destination.
    fn at_row(&self, row: usize) -> Dest {
        self.offset(row * self.row)
    }
}

impl Model {
    /// A fresh state for one stream (see [`Model::new_batch_state`]).
    ///
    /// One row's buffers are a fraction of the model's own weights; when
    /// even they cannot be had, this aborts as any allocation does
    /// ([`Model::new_batch_state`]`(1)` returns the error instead).
    pub fn new_state(&self) -> State {
        State::try_new(self.architecture(), 1, self.dtype(), self.int8_dot().tiles(), self.initial()).unwrap_or_else(
            |_| {
                let bytes = usize::try_from(self.state_bytes(1, 1)).unwrap_or(usize::MAX);
                let layout = std::alloc::Layout::from_size_align(bytes.min(isize::MAX as usize / 2), 64)
                    .unwrap_or(std::alloc::Layout::new::<[u8; 64]>());
                std::alloc::handle_alloc_error(layout)
            },
        )
    }

    /// A fresh state for `batch` streams run together (1 to
    /// [`State::MAX_BATCH`]): zeros, or the file's initial state
    /// ([`Model::initial_state`]) in every row. Refuses a batch outside that
    /// range, and returns [`Error::OutOfMemory`] rather than aborting when
    /// the [`Model::state_bytes`] it needs cannot be allocated.
    pub fn new_batch_state(&self, batch: usize) -> Result<State, Error> {
        check_batch(batch, "a batch state")?;
        State::try_new(self.architecture(), batch, self.dtype(), self.int8_dot().tiles(), self.initial())
    }

    /// Bytes a state of `batch` rows allocates when made and once
    /// [`State::set_threads`] gives it `threads` threads: `h`, `c`, one
    /// step's output and the kernels' buffers (a run of a whole sequence
    /// adds its output, and a bidirectional stack of several layers its
    /// inter-layer sequences). What a caller checks against its memory
    /// budget before asking for many or large states.
    pub fn state_bytes(&self, batch: usize, threads: usize) -> u64 {
        let arch = self.architecture();
        let shape = StateShape::of(arch, batch);
        let per_row = shape.slots * (shape.h_size + shape.c_size) + arch.sequence_output_size();
        let scratch = Scratch::bytes(arch, batch, self.dtype(), self.int8_dot().tiles(), threads);
        per_row as u64 * batch as u64 * 4 + scratch
    }

    pub(crate) fn check_state(&self, state: &State) -> Result<(), Error> {
        let want = StateShape::of(self.architecture(), state.batch());
        if *state.shape() != want {
            return Err(Error::StateMismatch {
                reason: format!("state is for {:?}, model needs {:?}", state.shape(), want),
            });
        }
        Ok(())
    }

    /// Whether the model can run one step at a time.
    pub(crate) fn check_streamable(&self) -> Result<(), Error> {
        match self.architecture().whole_sequence_only() {
            Some((kind, why)) => Err(Error::Unsupported {
                what: format!("a {kind} model cannot run one step at a time: {why}; use run"),
            }),
            None => Ok(()),
        }
    }

    /// Number of timesteps in `xs` (`[steps, batch, input_size]`).
    fn steps_in(&self, state: &State, xs: &[f32]) -> Result<usize, Error> {
        let per_step = state.batch() * self.architecture().input_size as usize;
        if !xs.len().is_multiple_of(per_step) {
            return Err(Error::Shape {
                what: "input",
                expected: format!(
                    "a multiple of {per_step} (steps x batch {} x input size {})",
                    state.batch(),
                    self.architecture().input_size
                ),
                got: xs.len(),
            });
        }
        Ok(xs.len() / per_step)
    }

    /// Runs one timestep: `x` is `[batch, input_size]`; returns the top
    /// layer's new `h`, `[batch, P]`. Carries the state to the next call.
    pub fn step<'s>(&self, state: &'s mut State, x: &[f32]) -> Result<&'s [f32], Error> {
        self.check_streamable()?;
        let per_step = state.batch() * self.architecture().input_size as usize;
        if x.len() != per_step {
            return Err(Error::Shape {
                what: "step input",
                expected: format!("{per_step} (batch x input size)"),
                got: x.len(),
            });
        }
        self.run(state, x)
    }

    /// Runs a whole sequence `xs` (`[steps, batch, input_size]`, sequence-major
    /// as in PyTorch) from the state's `h`/`c`, leaves the final `h`/`c` in the
    /// state, and returns the top layer's output `[steps, batch, directions * P]`.
    ///
    /// The output lives in the state; it grows (allocates) only for a sequence
    /// longer than any before on this state — [`State::reserve`] makes room up
    /// front. [`Model::run_into`] and [`Model::step`] never allocate.
    pub fn run<'s>(&self, state: &'s mut State, xs: &[f32]) -> Result<&'s [f32], Error> {
        self.run_with_state_out(state, xs, |state, out| self.run_into(state, xs, out))
    }

    /// Runs `run_into` (a run of `xs` into an output buffer) with the
    /// state's own output buffer, sized for `xs`, and returns that buffer.
    fn run_with_state_out<'s>(
        &self,
        state: &'s mut State,
        xs: &[f32],
        run_into: impl FnOnce(&mut State, &mut [f32]) -> Result<(), Error>,
    ) -> Result<&'s [f32], Error> {
        self.check_state(state)?;
        let steps = self.steps_in(state, xs)?;
        let width = state.batch() * self.architecture().sequence_output_size();
        let mut out = state.take_out();
        out.resize(steps * width, 0.0);
        let result = run_into(state, &mut out);
        let out = state.put_out(out);
        result.map(|()| out)
    }

    /// [`Model::run`] writing the output into `out` (`[steps, batch, directions * P]`).
    pub fn run_into(&self, state: &mut State, xs: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.check_state(state)?;
        let steps = self.steps_in(state, xs)?;
        let arch = self.architecture();
        let width = state.batch() * arch.sequence_output_size();
        if out.len() != steps * width {
            return Err(Error::Shape { what: "output buffer", expected: (steps * width).to_string(), got: out.len() });
        }
        if steps == 0 {
            return Ok(());
        }
        let batch = state.batch();
        self.run_scheduled(state, xs, Schedule::uniform(batch), steps, None, out);
        Ok(())
    }

    /// Runs a batch whose rows have their own lengths, as PyTorch runs a
    /// `pack_padded_sequence(..., enforce_sorted=False)` batch: `xs` is
    /// `[steps, batch, input_size]` padded to the longest, row `b` is
    /// `lengths[b]` steps long (in any order; 0 allowed). Row `b`'s outputs
    /// past its length are zero (as `pad_packed_sequence` gives), the state
    /// keeps its `h`/`c` after its own last step (a row of length 0 keeps
    /// its initial state), and a backward direction starts at each row's own
    /// last step. Rows that have finished drop out of the work, so a batch
    /// costs about the sum of its lengths, not batch x longest.
    ///
    /// Returns the top layer's output `[steps, batch, directions * P]`.
    /// Grows (allocates) buffers in the state for the longest batch seen.
    pub fn run_lengths<'s>(&self, state: &'s mut State, xs: &[f32], lengths: &[usize]) -> Result<&'s [f32], Error> {
        self.run_with_state_out(state, xs, |state, out| self.run_lengths_into(state, xs, lengths, out))
    }

    /// [`Model::run_lengths`] writing the output into `out` (`[steps, batch, directions * P]`).
    pub fn run_lengths_into(
        &self,
        state: &mut State,
        xs: &[f32],
        lengths: &[usize],
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.check_state(state)?;
        let steps = self.steps_in(state, xs)?;
        let (batch, arch) = (state.batch(), self.architecture());
        let width = arch.sequence_output_size();
        if out.len() != steps * batch * width {
            return Err(Error::Shape {
                what: "output buffer",
                expected: (steps * batch * width).to_string(),
                got: out.len(),
            });
        }
        if lengths.len() != batch {
            return Err(Error::BadLengths { reason: format!("{} lengths for a batch of {batch}", lengths.len()) });
        }
        if let Some((b, &len)) = lengths.iter().enumerate().find(|&(_, &len)| len > steps) {
            return Err(Error::BadLengths {
                reason: format!("row {b} has length {len}, longer than the sequence ({steps} steps)"),
            });
        }
        if lengths.iter().all(|&len| len == steps) {
            return self.run_into(state, xs, out);
        }
        let mut packing = state.take_packing();
        packing.plan(lengths);
        let longest = packing.sizes.len();
        let rows = packing.offsets[longest];
        let in_width = arch.input_size as usize;
        packing.x.clear();
        for t in 0..longest {
            for &b in &packing.order[..packing.sizes[t]] {
                packing.x.extend_from_slice(&xs[(t * batch + b) * in_width..][..in_width]);
            }
        }
        packing.out.resize(rows * width, 0.0);
        if longest > 0 {
            let schedule = Schedule { batch, sizes: &packing.sizes, offsets: &packing.offsets };
            self.run_scheduled(state, &packing.x, schedule, longest, Some(&packing.order), &mut packing.out);
        }
        out.fill(0.0);
        for t in 0..longest {
            for (i, &b) in packing.order[..packing.sizes[t]].iter().enumerate() {
                let src = &packing.out[(packing.offsets[t] + i) * width..][..width];
                out[(t * batch + b) * width..][..width].copy_from_slice(src);
            }
        }
        state.put_packing(packing);
        Ok(())
    }

    /// Runs `steps` steps of packed inputs `xs` on `schedule` into packed
    /// outputs `out` (`schedule.offset(steps)` rows each). Scratch row `i`
    /// carries the state's row `map[i]` (row `i` without a map).
    ///
    /// The caller has checked the state against the model and the lengths of
    /// `xs`, `out` and `map` against the schedule.
    pub(crate) fn run_scheduled(
        &self,
        state: &mut State,
        xs: &[f32],
        schedule: Schedule<'_>,
        steps: usize,
        map: Option<&[usize]>,
        out: &mut [f32],
    ) {
        state.renew_pool_after_fork();
        let arch = self.architecture();
        let batch = state.batch();
        debug_assert!(!schedule.packed() || steps == schedule.sizes.len(), "a packed schedule covers every step");
        let rows = schedule.offset(steps);
        assert!(
            schedule.rows(0) <= batch
                && xs.len() >= rows * arch.input_size as usize
                && out.len() >= rows * arch.sequence_output_size()
                && map.is_none_or(|m| m.len() >= schedule.rows(0) && m.iter().all(|&r| r < batch)),
            "a schedule that does not fit its buffers"
        );
        let tiles = self.int8_dot().tiles();
        if state.scratch_mut().dtype != self.dtype() || state.scratch_mut().tiles != tiles {
            // A state made by a model of another dtype or int8 product: its
            // per-thread buffers.
            state.scratch_mut().fit(arch, batch, self.dtype(), tiles);
        }
        state.scratch_mut().reserve_sequence(arch, batch, steps);
        // Rows joining a backward pass late find their first `h` in either
        // buffer (see `run_segments`).
        let rows = Rows { count: schedule.rows(0), map, both: schedule.packed() };
        state.load_scratch(arch, rows);
        let dest = Dest { ptr: out.as_mut_ptr(), row: arch.sequence_output_size() };
        if arch.bidirectional {
            self.run_layerwise(state, xs, schedule, steps, dest);
        } else {
            self.run_wavefront(state, xs, schedule, steps, dest);
        }
        state.store_scratch(arch, rows);
    }

    /// Unidirectional stacks: chunk by chunk, each chunk through every layer
    /// (a `reverse` stack: from the last chunk, each read from its end).
    /// A single step of fewer than [`FUSED_MAX_BATCH`] rows skips the GEMM and fuses `[x; h]` in one pass.
    fn run_wavefront(&self, state: &mut State, xs: &[f32], schedule: Schedule<'_>, steps: usize, top: Dest) {
        let arch = self.architecture();
        let (batch, p) = (state.batch(), arch.output_size());
        let chunk = state.scratch_mut().chunk;
        let mid_len = chunk * batch * p;
        let chunks = steps.div_ceil(chunk);
        for i in 0..chunks {
            let c0 = if arch.reverse { chunks - 1 - i } else { i } * chunk;
            let range = c0..steps.min(c0 + chunk);
            let first = schedule.offset(c0);
            let mut input = xs[first * arch.input_size as usize..].as_ptr();
            let mut in_width = arch.input_size as usize;
            for layer in 0..arch.layers() {
                let dest = if layer + 1 == arch.layers() {
                    top.at_row(first)
                } else {
                    let ptr = state.scratch_mut().mid.as_mut_ptr().wrapping_add((layer % 2) * mid_len);
                    Dest { ptr, row: p }
                };
                // SAFETY: `input` holds this chunk's packed rows of `in_width`,
                // `dest` has room for them; the scratch is sized for this model.
                unsafe {
                    let run = LayerRun { slot: layer, x: input, in_width, schedule, reverse: arch.reverse, dest };
                    self.run_layer(state, run, range.clone())
                };
                input = dest.ptr;
                in_width = p;
            }
        }
    }

    /// Bidirectional stacks: layer by layer over the whole sequence; the
    /// backward direction walks the chunks from the end.
    fn run_layerwise(&self, state: &mut State, xs: &[f32], schedule: Schedule<'_>, steps: usize, top: Dest) {
        let arch = self.architecture();
        let (batch, p, dirs) = (state.batch(), arch.output_size(), arch.directions());
        let chunk = state.scratch_mut().chunk;
        let seq_len = steps * batch * arch.sequence_output_size();
        let mut input = xs.as_ptr();
        let mut in_width = arch.input_size as usize;
        for layer in 0..arch.layers() {
            let base = if layer + 1 == arch.layers() {
                top
            } else {
                let ptr = state.scratch_mut().seq.as_mut_ptr().wrapping_add((layer % 2) * seq_len);
                Dest { ptr, row: dirs * p }
            };
            let in_ptr = SharedPtrs {
                x: input,
                pre: std::ptr::null_mut(),
                wide: std::ptr::null_mut(),
                q8: std::ptr::null_mut(),
                q8_part: 0,
            };
            // One direction: all its chunks, the backward one from the end.
            let direction = |dir: usize, bufs: &mut SlotBuffers, pool: Option<&crate::threads::Pool>| {
                let chunks = steps.div_ceil(chunk);
                for i in 0..chunks {
                    let c0 = if dir == 0 { i } else { chunks - 1 - i } * chunk;
                    let first = schedule.offset(c0);
                    let dest = base.at_row(first).offset(dir * p);
                    let x = in_ptr.get().0.wrapping_add(first * in_width);
                    let range = c0..steps.min(c0 + chunk);
                    let run = LayerRun { slot: layer * dirs + dir, x, in_width, schedule, reverse: dir == 1, dest };
                    // SAFETY: as in `run_wavefront`; `seq` was reserved for
                    // `steps`; each direction has its own slot, GEMM buffer
                    // half, and half of every output row.
                    bufs.cur = unsafe { self.run_segments(run, *bufs, pool, range) };
                }
            };
            let slots = [layer * dirs, layer * dirs + dirs - 1];
            match state.pool().cloned() {
                // With two threads or more, the directions run side by side.
                Some(pool) if dirs == 2 => {
                    let bufs = [Self::slot_buffers(state, slots[0], 0), Self::slot_buffers(state, slots[1], 1)];
                    let curs = [AtomicUsize::new(bufs[0].cur), AtomicUsize::new(bufs[1].cur)];
                    pool.run(&|dir| {
                        if dir < 2 {
                            let mut b = bufs[dir];
                            direction(dir, &mut b, None);
                            curs[dir].store(b.cur, Ordering::Relaxed);
                        }
                    });
                    for (slot, cur) in slots.iter().zip(&curs) {
                        state.scratch_mut().cur[*slot] = cur.load(Ordering::Relaxed);
                    }
                }
                pool => {
                    for dir in 0..dirs {
                        let slot = layer * dirs + dir;
                        let mut bufs = Self::slot_buffers(state, slot, 0);
                        direction(dir, &mut bufs, pool.as_deref());
                        state.scratch_mut().cur[slot] = bufs.cur;
                    }
                }
            }
            input = base.ptr;
            in_width = dirs * p;
        }
    }

    /// The kernel buffers of layer-direction `slot`; `pre_half` picks which
    /// half of the GEMM buffer it uses (two directions can run at once).
    fn slot_buffers(state: &mut State, slot: usize, pre_half: usize) -> SlotBuffers {
        let batch = state.batch();
        let s = state.scratch_mut();
        let (h_stride, c_stride) = (s.h_stride, s.c_stride);
        let h0 = s.hbuf.as_mut_ptr().wrapping_add(slot * 2 * batch * h_stride);
        SlotBuffers {
            io: body::StepIo {
                batch,
                h: [h0, h0.wrapping_add(batch * h_stride)],
                h_stride,
                c: s.cbuf.as_mut_ptr().wrapping_add(slot * batch * c_stride),
                r: s.rbuf.as_mut_ptr().wrapping_add(slot * batch * c_stride),
                c_stride,
            },
            pre: s.pre.as_mut_ptr().wrapping_add(pre_half * s.pre.len() / 2),
            wide: s.wide.as_mut_ptr().wrapping_add(pre_half * s.wide.len() / 2),
            wide_parts: s.wide.len() / 2 / WIDEN_BUFFER,
            q8: s.q8.as_mut_ptr().wrapping_add(pre_half * s.q8.len() / 2),
            q8_part: s.q8_part,
            q8_parts: (s.q8.len() / 2).checked_div(s.q8_part).unwrap_or(0),
            q8_tiles: s.tiles,
            cur: s.cur[slot],
        }
    }

    /// Runs the steps `range` of `run` with the state's threads.
    ///
    /// # Safety
    /// As for [`Model::run_segments`].
    unsafe fn run_layer(&self, state: &mut State, run: LayerRun<'_>, range: Range<usize>) {
        let bufs = Self::slot_buffers(state, run.slot, 0);
        let pool = state.pool().map(|p| &**p);
        // SAFETY: `run_layer`'s contract, which is `run_segments`': `x`
        // holds the range's rows, `dest` has room for their outputs.
        let cur = unsafe { self.run_segments(run, bufs, pool, range) };
        state.scratch_mut().cur[run.slot] = cur;
    }

    /// Runs the steps `range` of `run`'s layer-direction, in runs of steps
    /// with the same rows (one run for a plain batch). Returns which `h`
    /// buffer holds the latest `h`.
    ///
    /// Rows only leave a forward pass: each one's last `h` is copied to the
    /// other buffer as it leaves, so it is in both, whichever ends up
    /// current. Rows only join a backward pass: their first `h` was loaded
    /// into both buffers.
    ///
    /// # Safety
    /// `run.x` must hold the packed rows of `range` (`in_width` floats each)
    /// and `run.dest` have room for them; otherwise as for [`Model::run_slot`].
    unsafe fn run_segments(
        &self,
        run: LayerRun<'_>,
        mut bufs: SlotBuffers,
        pool: Option<&crate::threads::Pool>,
        range: Range<usize>,
    ) -> usize {
        let (schedule, reverse) = (run.schedule, run.reverse);
        let first = schedule.offset(range.start);
        let mut left = range.clone();
        while !left.is_empty() {
            let seg = schedule.segment(left.clone(), reverse);
            left = if reverse { left.start..seg.start } else { seg.end..left.end };
            let rows = schedule.rows(seg.start);
            // Step `seg.start - 1` ran before this one (in this call or, across
            // a chunk boundary, in the previous call for this slot).
            let before = if seg.start > 0 && !reverse { schedule.rows(seg.start - 1) } else { rows };
            let io = &bufs.io;
            for r in rows..before {
                // SAFETY: row `r` of both `h` buffers of this slot.
                unsafe {
                    let (from, to) = (io.h[bufs.cur], io.h[bufs.cur ^ 1]);
                    std::ptr::copy_nonoverlapping(from.add(r * io.h_stride), to.add(r * io.h_stride), io.h_stride);
                }
            }
            bufs.io.batch = rows;
            let skip = schedule.offset(seg.start) - first;
            // SAFETY: `run_segments`'s contract (`run.x` holds the packed rows of
            // `range`, `run.dest` has room, `bufs` is this slot's), and the
            // segment's steps and rows are within `range`'s.
            bufs.cur = unsafe { self.run_slot(run.skip(skip), bufs, pool, seg.len()) };
        }
        bufs.cur
    }

    /// Runs `steps` timesteps of `run`'s layer-direction on `bufs`, splitting
    /// the work across `pool` when that pays. Returns which `h` buffer holds
    /// the latest `h`.
    ///
    /// # Safety
    /// `run.x` must hold `steps * batch * in_width` floats, `run.dest` must
    /// have room for `steps` steps of `batch` rows of this layer's output,
    /// `bufs` must be this slot's buffers with a GEMM buffer of at least
    /// `steps * batch` rows, and nothing else may use them meanwhile.
    unsafe fn run_slot(
        &self,
        run: LayerRun<'_>,
        bufs: SlotBuffers,
        pool: Option<&crate::threads::Pool>,
        steps: usize,
    ) -> usize {
        let LayerRun { x, in_width, reverse, dest, .. } = run;
        let layer = self.layer_ref(run.slot);
        let io = bufs.io;
        let batch = io.batch;
        let panels = layer.w_hh.panels;
        let proj_panels = layer.w_hr.map_or(0, |m| m.panels);
        let row_stride = layer.w_ih.panels * layer.w_ih.gates * LANES;
        let pre = bufs.pre;
        // A single step of a few rows fuses the input projection into the
        // recurrence (one pass over [x; h]). A larger batch projects first
        // like a sequence: the recurrence then reuses each cache-sized block
        // of W_hh for every row block.
        // int8 layers always project first: their input is quantized once per row.
        let int8 = layer.w_hh.dtype == DType::I8;
        let fused = steps == 1 && batch < FUSED_MAX_BATCH && !int8;
        let job = body::Job {
            steps,
            reverse,
            source: if fused {
                body::Source::Fused { x, x_stride: in_width }
            } else {
                body::Source::Pre { ptr: pre, row_stride }
            },
            out: dest.ptr,
            out_step: batch * dest.row,
            out_row: dest.row,
            cur: bufs.cur,
        };
        let threads = pool.map_or(1, |p| p.threads());
        // Every part that widens weights needs its own buffer (sized by
        // `Scratch::set_threads` when the state's threads were set).
        assert!(
            !matches!(layer.w_hh.dtype, DType::F16 | DType::BF16) || threads <= bufs.wide_parts,
            "widening buffers for {} threads, {threads} running",
            bufs.wide_parts
        );
        assert!(!int8 || threads <= bufs.q8_parts, "int8 buffers for {} threads, {threads} running", bufs.q8_parts);
        let split = Split::choose(threads, batch, panels, int8);
        let (isa, dot) = (self.isa(), self.int8_dot());
        let shared = SharedPtrs { x, pre, wide: bufs.wide, q8: bufs.q8, q8_part: bufs.q8_part };
        let work = |part: usize| {
            let (x, pre) = shared.get();
            let (rows, own_panels, own_proj) = split.part(part, batch, panels, proj_panels);
            let wide = shared.wide(part);
            let q8 = shared.q8(part);
            if !fused {
                // Each thread projects the inputs it will read itself: its
                // panels of every row, or every panel of its rows.
                // All rows at once, or this thread's rows of each timestep.
                let (calls, count) = if rows.len() == batch { (1, steps * batch) } else { (steps, rows.len()) };
                for i in 0..calls {
                    let first = i * batch + rows.start;
                    let gemm = GemmCall {
                        w: layer.w_ih,
                        bias: layer.bias_x,
                        x: x.wrapping_add(first * in_width),
                        x_stride: in_width,
                        rows: count,
                        out: pre.wrapping_add(first * row_stride),
                        panels: own_panels.clone(),
                        wide,
                        q8,
                        q8_tiles: bufs.q8_tiles,
                    };
                    // SAFETY: `pre` holds chunk*batch rows of `row_stride`
                    // (steps <= chunk); `x` holds steps*batch rows.
                    unsafe { dispatch::gemm(isa, dot, &gemm) };
                }
            }
            let barrier = || {
                if let (Split::Panels(_), Some(pool)) = (split, pool) {
                    pool.barrier().wait();
                }
            };
            let call = StepsCall {
                layer: &layer,
                io: &io,
                job: &job,
                rows,
                panels: own_panels,
                proj_panels: own_proj,
                wide,
                q8,
                q8_tiles: bufs.q8_tiles,
                sync: &barrier,
            };
            // SAFETY: the buffers are sized for this layer; the parts cover
            // disjoint rows or panels and meet at the barrier after each phase.
            unsafe { dispatch::run_steps(isa, dot, &call) };
        };
        match (split, pool) {
            (Split::Single, _) | (_, None) => work(0),
            (_, Some(pool)) => pool.run(&work),
        }
        bufs.cur ^ (steps & 1)
    }
}

/// What one call runs of one layer-direction: its packed input rows `x`
/// (`in_width` floats each, the first at the call's first step), which
/// rows run at each step (`schedule`), the direction, and where the
/// outputs go.
#[derive(Clone, Copy)]
struct LayerRun<'a> {
    /// Layer-direction (`layer * directions + direction`).
    slot: usize,
    x: *const f32,
    in_width: usize,
    schedule: Schedule<'a>,
    reverse: bool,
    dest: Dest,
}

impl LayerRun<'_> {
    /// The same run from `rows` packed rows further on.
    fn skip(self, rows: usize) -> Self {
        LayerRun { x: self.x.wrapping_add(rows * self.in_width), dest: self.dest.at_row(rows), ..self }
    }
}

/// One layer-direction's kernel buffers (pointers into a state's scratch).
#[derive(Clone, Copy)]
struct SlotBuffers {
    io: body::StepIo,
    /// GEMM output rows for this slot's chunks.
    pre: *mut f32,
    /// One [`WIDEN_BUFFER`] per thread part (f16/bf16 weights; else dangling).
    wide: *mut f32,
    /// How many parts `wide` has room for.
    wide_parts: usize,
    /// One buffer of `q8_part` bytes per thread part (int8 weights; else dangling).
    q8: *mut u8,
    q8_part: usize,
    /// How many parts `q8` has room for.
    q8_parts: usize,
    /// Whether they have room for tiles.
    q8_tiles: bool,
    /// Which of `io.h` holds the latest `h`.
    cur: usize,
}

// SAFETY: the two directions of a bidirectional layer run at once on
// different slots' buffers and different halves of the GEMM buffer.
unsafe impl Sync for SlotBuffers {}
// SAFETY: the same: each part writes its own rows or panels of the output.
unsafe impl Sync for Dest {}

/// The input and GEMM-output pointers one layer's threads share.
#[derive(Clone, Copy)]
struct SharedPtrs {
    x: *const f32,
    pre: *mut f32,
    /// `threads` widening buffers of [`WIDEN_BUFFER`] floats, one per part.
    wide: *mut f32,
    /// `threads` int8 buffers of `q8_part` bytes, one per part.
    q8: *mut u8,
    q8_part: usize,
}

// SAFETY: `x` is only read; each thread writes the rows or panels of `pre`
// that it alone reads back.
unsafe impl Sync for SharedPtrs {}

impl SharedPtrs {
    // A method, so closures capture the whole `Sync` struct, not its raw fields.
    fn get(&self) -> (*const f32, *mut f32) {
        (self.x, self.pre)
    }

    /// Part `part`'s widening buffer: written by that thread alone.
    fn wide(&self, part: usize) -> *mut f32 {
        self.wide.wrapping_add(part * WIDEN_BUFFER)
    }

    /// Part `part`'s int8 buffer: written by that thread alone.
    fn q8(&self, part: usize) -> *mut u8 {
        self.q8.wrapping_add(part * self.q8_part)
    }
}

/// How one layer's work is shared between threads.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Split {
    Single,
    /// Each of n threads takes a share of the sequences (no per-step barrier).
    Rows(usize),
    /// Each of n threads takes a share of the hidden units' panels; they meet
    /// at a barrier after every step.
    Panels(usize),
}

impl Split {
    /// Splitting panels keeps each core's slice of the weights in its own
    /// cache and halves what each reads per step; it pays from 8 panels (128
    /// units) per thread, where a step's work dwarfs the barrier. Below that,
    /// a batch of at least one sequence per thread splits by sequence.
    ///
    /// int8 layers with at least 8 sequences per thread split by sequence
    /// whatever their width (measured, not profiled: with a quarter of
    /// f32's bytes, each thread reading all the weights seems to cost less
    /// than the barrier after every step). Zen 4 (AVX-512 VNNI), 2 threads,
    /// H=512 int8: batch 16 122-124 -> 104-105 us per step, batch 64
    /// 471-472 -> 414-415; batch 32, 8 runs each: panels 191-245 (6 of 8 at
    /// 241-245: bimodal), rows 187-203; H=1024 batch 32 778-790 -> 732-775.
    fn choose(threads: usize, batch: usize, panels: usize, int8: bool) -> Split {
        if threads <= 1 {
            Split::Single
        } else if int8 && batch >= 8 * threads {
            Split::Rows(threads)
        } else if panels >= 8 * threads {
            Split::Panels(threads)
        } else if batch >= threads {
            Split::Rows(threads)
        } else {
            Split::Single
        }
    }

    /// Rows, panels and projection panels of part `i`.
    fn part(self, i: usize, batch: usize, panels: usize, proj: usize) -> (Range<usize>, Range<usize>, Range<usize>) {
        match self {
            Split::Single => (0..batch, 0..panels, 0..proj),
            Split::Rows(n) => (share(batch, n, i), 0..panels, 0..proj),
            Split::Panels(n) => (0..batch, share(panels, n, i), share(proj, n, i)),
        }
    }
}
