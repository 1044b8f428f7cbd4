//! Chunked models (format 1.3 stages): a front-end, the recurrent stack and
//! a head, run one chunk of a signal at a time with everything carried over
//! between chunks (the recurrent state and the context frames).
//!
//! Activations between stages are rows `position * batch + stream`, each a
//! stage's channels padded to a multiple of 16 floats: the layout the input
//! projection's GEMM reads and writes. A convolution is that GEMM over the
//! rows of its unfolded input (`kernel` taps of `in` channels side by side,
//! the weight's tap-major order), so it runs in every tier and dtype the
//! recurrent weights do; a 1x1 convolution reads its input rows in place.

use lstmrt_format::panel as pack;
use lstmrt_format::{Padding, Stage, StageActivation, StageKind, StageShape, StagesPlan};

use crate::scratch::{try_buffer, try_zeros};
use lstmrt_kernels::dispatch::{self, GemmCall};
use lstmrt_kernels::{AlignedVec, WIDEN_BUFFER};

use crate::engine::Schedule;
use crate::threads::share;
use crate::{Error, Model, State};

const LANES: usize = 16;

/// Chunks of a signal [`Model::run_signal`] runs as one batch through the
/// front-end and the head (and as one sequence through the stack).
const SIGNAL_BLOCK: usize = 64;

/// How a chunk's rows go through the recurrent stack.
enum Stack<'a> {
    /// As streams of the chunk state's own state: all, or these rows.
    Rows(Option<&'a [usize]>),
    /// `chunks` consecutive chunks of one stream (rows `0..chunks` of the
    /// chunk state's buffers), run in order through `state` (batch 1).
    Sequence { state: &'a mut State, chunks: usize },
}

/// Floats of unfolded input the GEMM is given at once: the unfolding buffer
/// holds this many (or one row, if a row is longer), never more.
const UNFOLD_FLOATS: usize = 1 << 18;

/// Everything a stream batch of a chunked model carries from chunk to chunk,
/// and every buffer a chunk needs, sized once (a chunk never allocates).
pub struct ChunkState {
    state: State,
    plan: StagesPlan,
    batch: usize,
    /// `[batch][context][channels]`: the frames each chunk is read after.
    context: Vec<f32>,
    /// `[window][batch][channels]`.
    window: AlignedVec<f32>,
    /// Activations, ping-pong between stages.
    bufs: [AlignedVec<f32>; 2],
    /// Unfolded convolution inputs.
    cols: AlignedVec<f32>,
    /// `[steps][batch][input_size]`, and the stack's output.
    rec_in: AlignedVec<f32>,
    rec_out: Vec<f32>,
    /// `[threads][WIDEN_BUFFER]` for f16/bf16 stage weights (else empty).
    wide: AlignedVec<f32>,
    /// `[threads][q8_part]` for int8 stage weights (else empty).
    q8: AlignedVec<u8>,
    q8_part: usize,
    /// Whether `q8` has room for tiles (the int8 product of the model it was made for).
    q8_tiles: bool,
    wide_part: usize,
    /// `[batch][out_positions][out_channels]`.
    out: Vec<f32>,
    /// Per stream, the last [`Model::run_chunk_streams`] call that named it
    /// (to refuse a stream named twice without allocating).
    seen: Vec<u64>,
    calls: u64,
}

impl ChunkState {
    /// Streams run together.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The recurrent state (`h`, `c` of every stream).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Threads for a chunk (see [`State::set_threads`]): the recurrent
    /// part's, which the stages' convolutions of many rows share too.
    pub fn set_threads(&mut self, threads: usize) {
        self.state.set_threads(threads);
        let parts = self.state.threads();
        self.wide = AlignedVec::zeroed(self.wide_part * parts);
        self.q8 = AlignedVec::zeroed(self.q8_part * parts);
    }

    /// Starts every stream afresh: initial recurrent state, zero context.
    pub fn reset(&mut self) {
        self.state.reset();
        self.context.fill(0.0);
    }

    /// Starts stream `row` afresh, leaving the others as they are.
    pub fn reset_stream(&mut self, row: usize) -> Result<(), Error> {
        if row >= self.batch {
            return Err(Error::Stream { reason: format!("stream {row} of a batch of {}", self.batch) });
        }
        self.state.reset_row(row);
        let per = self.context.len() / self.batch;
        self.context[row * per..][..per].fill(0.0);
        Ok(())
    }
}

/// See [`Model::chunk_sizes`].
struct ChunkSizes {
    /// Floats of unfolded convolution inputs.
    cols: u64,
    /// Bytes (int8) and floats (widening) per thread.
    q8_part: u64,
    wide_part: u64,
}

/// A stage's output rows in a buffer: `positions * batch` rows of `stride` floats.
#[derive(Clone, Copy)]
struct Shape {
    positions: usize,
    /// Streams in this chunk.
    batch: usize,
    channels: usize,
    stride: usize,
}

fn padded(channels: usize) -> usize {
    pack::panels(channels) * LANES
}

impl Model {
    /// Buffers and carried state for `batch` streams of a chunked model (1
    /// to [`State::MAX_BATCH`], about [`Model::chunk_state_bytes`] of
    /// memory). Refuses a batch outside that range, and returns
    /// [`Error::OutOfMemory`] rather than aborting when the memory cannot be had.
    pub fn new_chunk_state(&self, batch: usize) -> Result<ChunkState, Error> {
        let (plan, _) = self.chunk_plan()?;
        crate::state::check_batch(batch, "a chunk state")?;
        let sizes = self.chunk_sizes(plan, batch);
        let n = batch as u64;
        let b = plan.buffers;
        let what = "the chunk state's buffers";
        let floats = |len: u64| try_zeros(len, what);
        Ok(ChunkState {
            state: self.new_batch_state(batch)?,
            plan: plan.clone(),
            batch,
            context: floats(n * b.context as u64)?,
            window: try_buffer(n * b.window as u64, what)?,
            bufs: [try_buffer(n * b.stage as u64, what)?, try_buffer(n * b.stage as u64, what)?],
            cols: try_buffer(sizes.cols, what)?,
            rec_in: try_buffer(n * b.rec_in as u64, what)?,
            rec_out: floats(n * b.rec_out as u64)?,
            wide: try_buffer(sizes.wide_part, what)?,
            q8: try_buffer(sizes.q8_part, what)?,
            q8_part: sizes.q8_part as usize,
            q8_tiles: self.int8_dot().tiles(),
            wide_part: sizes.wide_part as usize,
            out: floats(n * b.out as u64)?,
            seen: vec![0; batch],
            calls: 0,
        })
    }

    /// Bytes a chunk state of `batch` streams allocates when made and once
    /// given `threads` threads ([`ChunkState::set_threads`]): the recurrent
    /// state's [`Model::state_bytes`] and the stages' buffers. 0 for a model
    /// without stages.
    pub fn chunk_state_bytes(&self, batch: usize, threads: usize) -> u64 {
        let Ok((plan, _)) = self.chunk_plan() else { return 0 };
        let sizes = self.chunk_sizes(plan, batch);
        let per_thread = sizes.wide_part * 4 + sizes.q8_part;
        self.state_bytes(batch, threads)
            + (plan.buffers.total() * batch as u64 + sizes.cols) * 4
            + per_thread * threads.max(1) as u64
    }

    fn chunk_plan(&self) -> Result<(&StagesPlan, &lstmrt_format::Stages), Error> {
        match (self.stages_plan(), self.metadata().stages.as_ref()) {
            (Some(plan), Some(stages)) => Ok((plan, stages)),
            _ => Err(Error::Unsupported {
                what: "this model has no stages: it reads feature vectors, not chunks".into(),
            }),
        }
    }

    /// The buffers of a chunk state that do not grow with the streams'
    /// buffers: unfolded rows (all streams), and per thread the widening and
    /// int8 buffers of the stages' weights.
    fn chunk_sizes(&self, plan: &StagesPlan, batch: usize) -> ChunkSizes {
        let stages = self.metadata().stages.as_ref().expect("a plan has stages");
        let shapes = plan.front.iter().chain(&plan.back);
        let kinds = stages.front.iter().chain(&stages.back);
        let (mut cols, mut q8, mut wide) = (0u64, 0u64, false);
        for (index, (shape, stage)) in shapes.zip(kinds).enumerate() {
            if let Some((w, _)) = self.stage_ref(index) {
                let k = stage.kernel as usize * shape.channels_in;
                if !unfolds_in_place(stage) {
                    cols = cols.max((unfold_rows(k, shape.positions * batch) * k) as u64);
                }
                match w.dtype {
                    lstmrt_format::DType::I8 => {
                        let tiles = self.int8_dot().tiles();
                        q8 = q8.max(lstmrt_kernels::int8_buffer_bytes(1, k, 1, tiles) as u64)
                    }
                    lstmrt_format::DType::F16 | lstmrt_format::DType::BF16 => wide = true,
                    lstmrt_format::DType::F32 => {}
                }
            }
        }
        ChunkSizes { cols, q8_part: q8, wide_part: if wide { WIDEN_BUFFER as u64 } else { 0 } }
    }

    /// Runs one chunk of every stream: `x` is `[batch][chunk][channels]`.
    /// Returns the head's result `[batch][out_positions][out_channels]` (for
    /// a voice-activity model, one probability per stream).
    pub fn run_chunk<'s>(&self, st: &'s mut ChunkState, x: &[f32]) -> Result<&'s [f32], Error> {
        self.run_window(st, Stack::Rows(None), x)
    }

    /// Runs one chunk of some of the streams: `streams` names them (each
    /// below [`ChunkState::batch`], none twice), `x` is
    /// `[streams.len()][chunk][channels]` in that order. The other streams
    /// keep their state and context as they are, so a server steps only the
    /// calls that have a chunk ready. Returns `[streams.len()][out_positions][out_channels]`.
    pub fn run_chunk_streams<'s>(
        &self,
        st: &'s mut ChunkState,
        streams: &[usize],
        x: &[f32],
    ) -> Result<&'s [f32], Error> {
        if streams.is_empty() {
            return Err(Error::Stream { reason: "a chunk needs at least one stream".into() });
        }
        st.calls += 1;
        for &s in streams {
            match st.seen.get_mut(s) {
                None => return Err(Error::Stream { reason: format!("stream {s} of a batch of {}", st.batch) }),
                Some(seen) if *seen == st.calls => {
                    return Err(Error::Stream { reason: format!("stream {s} is given twice in one chunk") });
                }
                Some(seen) => *seen = st.calls,
            }
        }
        self.run_window(st, Stack::Rows(Some(streams)), x)
    }

    /// Runs a whole signal through stream 0 of a one-stream chunk state,
    /// chunk after chunk (the last one padded with zeros), carrying the
    /// state on, and writes each chunk's result into `out`
    /// (`[chunks][out_positions][out_channels]`, `chunks` =
    /// [`Model::signal_chunks`]). What a file's voice activity costs without
    /// a call per chunk.
    pub fn run_signal(&self, st: &mut ChunkState, signal: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let (plan, stages) = self.chunk_plan()?;
        if st.batch != 1 {
            return Err(Error::Stream {
                reason: format!("a signal runs in a one-stream chunk state, not {}", st.batch),
            });
        }
        let frame = stages.chunk as usize * stages.channels as usize;
        let chunks = signal.len().div_ceil(frame);
        let per = plan.out_positions * plan.out_channels;
        if out.len() != chunks * per {
            return Err(Error::Shape {
                what: "signal output",
                expected: format!("{} ({chunks} chunks x {per})", chunks * per),
                got: out.len(),
            });
        }
        if let Some(index) = signal.iter().position(|v| !v.is_finite()) {
            return Err(Error::NotFinite { what: "signal", index, value: signal[index] });
        }
        if chunks < 2 {
            let mut last = signal.to_vec();
            last.resize(chunks * frame, 0.0);
            if chunks == 1 {
                out.copy_from_slice(self.run_window(st, Stack::Rows(None), &last)?);
            }
            return Ok(());
        }
        // Blocks of consecutive chunks run their front-end and head as one
        // batch (each chunk's window is its context frames from the signal);
        // the recurrent stack runs them as one sequence of the stream's state.
        let block = chunks.min(SIGNAL_BLOCK);
        let mut blk = self.new_chunk_state(block)?;
        blk.set_threads(st.state.threads());
        let context = stages.context as usize * stages.channels as usize;
        let mut x = vec![0.0f32; block * frame];
        // The signal padded to whole chunks, after the stream's context.
        let padded = |i: usize| -> f32 {
            if i < context { st.context[i] } else { signal.get(i - context).copied().unwrap_or(0.0) }
        };
        let mut first = 0;
        while first < chunks {
            let k = block.min(chunks - first);
            for b in 0..k {
                let at = (first + b) * frame; // where chunk `first + b` starts, after the context
                for (j, c) in blk.context[b * context..][..context].iter_mut().enumerate() {
                    *c = padded(at + j);
                }
                for (j, v) in x[b * frame..][..frame].iter_mut().enumerate() {
                    *v = padded(at + context + j);
                }
            }
            let stack = Stack::Sequence { state: &mut st.state, chunks: k };
            let y = self.run_window(&mut blk, stack, &x[..k * frame])?;
            out[first * per..][..k * per].copy_from_slice(y);
            first += k;
        }
        // The stream's context: the last frames before the end of the padded signal.
        let end = chunks * frame;
        let ctx: Vec<f32> = (0..context).map(|j| padded(end + j)).collect();
        st.context.copy_from_slice(&ctx);
        Ok(())
    }

    /// Chunks [`Model::run_signal`] makes of `samples` samples (frames x
    /// channels floats): the last one padded. 0 for a model without stages.
    pub fn signal_chunks(&self, samples: usize) -> usize {
        match self.chunk_plan() {
            Ok((_, stages)) => samples.div_ceil(stages.chunk as usize * stages.channels as usize),
            Err(_) => 0,
        }
    }

    /// One chunk of the streams `rows` (all of them: `None`), `x` in their order.
    fn run_window<'s>(&self, st: &'s mut ChunkState, stack: Stack<'_>, x: &[f32]) -> Result<&'s [f32], Error> {
        let (plan, stages) = self.chunk_plan()?;
        if st.plan != *plan {
            return Err(Error::StateMismatch { reason: "the chunk state was made for another model".into() });
        }
        if self.int8_dot().tiles() && !st.q8_tiles {
            return Err(Error::StateMismatch {
                reason: format!("the chunk state was made for another int8 product than {}", self.int8_dot()),
            });
        }
        self.check_state(&st.state)?;
        let (rows, batch) = match &stack {
            Stack::Rows(rows) => (*rows, rows.map_or(st.batch, <[usize]>::len)),
            Stack::Sequence { chunks, .. } => (None, *chunks),
        };
        let (frames, channels) = (stages.chunk as usize, stages.channels as usize);
        if x.len() != batch * frames * channels {
            return Err(Error::Shape {
                what: "chunk",
                expected: format!(
                    "{} (batch {batch} x {frames} frames x {channels} channels)",
                    batch * frames * channels
                ),
                got: x.len(),
            });
        }
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NotFinite { what: "chunk", index, value: x[index] });
        }
        // The window: each stream's context, then its chunk; the new context
        // is the window's last frames.
        let context = stages.context as usize;
        let positions = context + frames;
        let window = st.window.as_mut_slice();
        for b in 0..batch {
            let row = rows.map_or(b, |r| r[b]);
            let ctx = &mut st.context[row * context * channels..][..context * channels];
            let own = &x[b * frames * channels..][..frames * channels];
            if batch == 1 {
                // One stream: the window is the context, then the chunk.
                window[..ctx.len()].copy_from_slice(ctx);
                window[ctx.len()..][..own.len()].copy_from_slice(own);
            } else {
                for p in 0..positions {
                    let src = if p < context {
                        &ctx[p * channels..][..channels]
                    } else {
                        &own[(p - context) * channels..][..channels]
                    };
                    copy_short(&mut window[(p * batch + b) * channels..][..channels], src);
                }
            }
            for p in 0..context {
                let from = (positions - context + p) * batch + b;
                copy_short(&mut ctx[p * channels..][..channels], &window[from * channels..][..channels]);
            }
        }
        let mut bufs = std::mem::take(&mut st.bufs);
        // `which`: where the current activations are (0, 1: bufs; 2: window; 3: rec_out).
        let mut cur = (2usize, Shape { positions, batch, channels, stride: channels });
        let front = stages.front.len();
        for (i, (stage, shape)) in stages.front.iter().zip(&plan.front).enumerate() {
            cur = self.stage(i, stage, shape, st, &mut bufs, cur);
        }
        // The stack reads its inputs compact.
        let (steps, features) = (plan.steps, self.architecture().input_size as usize);
        let sequence = matches!(stack, Stack::Sequence { .. });
        {
            let src = activations(cur.0, &bufs, &st.window, &st.rec_out);
            let rec_in = st.rec_in.as_mut_slice();
            for r in 0..steps * batch {
                // A sequence runs chunk after chunk: row `s * batch + b` of
                // the front-end is step `b * steps + s` of the sequence.
                let to = if sequence { (r % batch) * steps + r / batch } else { r };
                rec_in[to * features..][..features].copy_from_slice(&src[r * cur.1.stride..][..features]);
            }
        }
        let width = self.architecture().sequence_output_size();
        match stack {
            Stack::Sequence { state, .. } => {
                let (xs, out) =
                    (&st.rec_in.as_slice()[..steps * batch * features], &mut st.rec_out[..steps * batch * width]);
                if let Err(e) = self.run_into(state, xs, out) {
                    st.bufs = bufs;
                    return Err(e);
                }
                if steps > 1 {
                    // Back to position-major rows for the head.
                    let seq = out.to_vec();
                    for b in 0..batch {
                        for step in 0..steps {
                            out[(step * batch + b) * width..][..width]
                                .copy_from_slice(&seq[(b * steps + step) * width..][..width]);
                        }
                    }
                }
            }
            Stack::Rows(None) => {
                let result = self.run_into(&mut st.state, st.rec_in.as_slice(), &mut st.rec_out);
                if let Err(e) = result {
                    st.bufs = bufs;
                    return Err(e);
                }
            }
            Stack::Rows(Some(rows)) => {
                // Only these rows of the state step; `run_into`'s checks
                // (state and model agree) were made above.
                let (xs, out) =
                    (&st.rec_in.as_slice()[..steps * batch * features], &mut st.rec_out[..steps * batch * width]);
                self.run_scheduled(&mut st.state, xs, Schedule::uniform(batch), steps, Some(rows), out);
            }
        }
        cur = (3, Shape { positions: steps, batch, channels: width, stride: width });
        for (i, (stage, shape)) in stages.back.iter().zip(&plan.back).enumerate() {
            cur = self.stage(front + i, stage, shape, st, &mut bufs, cur);
        }
        let (op, oc) = (plan.out_positions, plan.out_channels);
        let src = activations(cur.0, &bufs, &st.window, &st.rec_out);
        for b in 0..batch {
            for p in 0..op {
                st.out[(b * op + p) * oc..][..oc].copy_from_slice(&src[(p * batch + b) * cur.1.stride..][..oc]);
            }
        }
        st.bufs = bufs;
        Ok(&st.out[..batch * op * oc])
    }

    /// Runs stage `index` from the activations `cur` into the other buffer.
    fn stage(
        &self,
        index: usize,
        stage: &Stage,
        shape: &StageShape,
        st: &mut ChunkState,
        bufs: &mut [AlignedVec<f32>; 2],
        cur: (usize, Shape),
    ) -> (usize, Shape) {
        let batch = cur.1.batch;
        let to = if cur.0 == 0 { 1 } else { 0 };
        let out = Shape { positions: shape.positions, batch, channels: shape.channels, stride: padded(shape.channels) };
        let [b0, b1] = bufs;
        let (dst, other) =
            if to == 0 { (b0.as_mut_slice(), b1.as_slice()) } else { (b1.as_mut_slice(), b0.as_slice()) };
        let src: &[f32] = match cur.0 {
            2 => st.window.as_slice(),
            3 => &st.rec_out,
            _ => other,
        };
        let (inp, rows_out) = (cur.1, out.positions * batch);
        match stage.kind {
            StageKind::Conv1d => {
                let (w, bias) = self.stage_ref(index).expect("convolutions are packed at open");
                let k = stage.kernel as usize * inp.channels;
                let dft = self.stage_dft(index);
                // Many rows of a product: the panels are shared out between
                // the state's threads (it has a pool only when it has several).
                let pool = if dft.is_none() && rows_out * k * w.panels * LANES >= PARALLEL_WORK {
                    st.state.renew_pool_after_fork();
                    st.state.pool().cloned()
                } else {
                    None
                };
                let mut shared = Parts {
                    x: std::ptr::null(),
                    out: dst.as_mut_ptr(),
                    out_stride: out.stride,
                    wide: st.wide.as_mut_slice().as_mut_ptr(),
                    wide_part: st.wide_part,
                    q8: st.q8.as_mut_slice().as_mut_ptr(),
                    q8_part: st.q8_part,
                    q8_tiles: st.q8_tiles,
                };
                let mut gemm_rows = |x: *const f32, x_stride: usize, rows: usize, first: usize| {
                    shared.x = x;
                    let shared = &shared;
                    let part = |i: usize, parts: usize| {
                        let call = shared.call(w, bias, x_stride, rows, first, share(w.panels, parts, i), i);
                        // SAFETY: `x` holds `rows` rows of `k` floats `x_stride`
                        // apart (unfolded rows, or the input rows in place);
                        // the output holds the stage's `rows_out` rows of
                        // `padded(out)` floats, so rows `first..first + rows`
                        // fit, and each part writes its own panels of them;
                        // part `i` has its own `wide` and `q8` buffers, sized
                        // in `new_chunk_state`/`set_threads` for this dtype and `k`.
                        unsafe { dispatch::gemm(self.isa(), self.int8_dot(), &call) };
                    };
                    match &pool {
                        Some(pool) => {
                            let parts = pool.threads();
                            pool.run(&|i| {
                                if i < parts {
                                    part(i, parts)
                                }
                            });
                        }
                        None => part(0, 1),
                    }
                };
                if unfolds_in_place(stage) {
                    debug_assert!(src.len() >= (rows_out - 1) * inp.stride + k);
                    gemm_rows(src.as_ptr(), inp.stride, rows_out, 0);
                } else {
                    let block = unfold_rows(k, rows_out);
                    let mut first = 0;
                    while first < rows_out {
                        let rows = block.min(rows_out - first);
                        let cols = &mut st.cols.as_mut_slice()[..rows * k];
                        unfold(stage, inp, batch, src, first, rows, cols);
                        match dft {
                            // An STFT: the FFT of each unfolded frame.
                            Some(dft) => {
                                debug_assert_eq!(dft.kernel(), k);
                                dft.run(self.isa(), cols, k, rows, &mut dst[first * out.stride..], out.stride)
                            }
                            None => gemm_rows(st.cols.as_slice().as_ptr(), k, rows, first),
                        }
                        first += rows;
                    }
                }
                for r in 0..rows_out {
                    activate(stage.activation, &mut dst[r * out.stride..][..out.channels]);
                }
            }
            StageKind::Magnitude => {
                let half = out.channels;
                for r in 0..rows_out {
                    let row = &src[r * inp.stride..][..2 * half];
                    let (re, im) = row.split_at(half);
                    for ((d, a), b) in dst[r * out.stride..][..half].iter_mut().zip(re).zip(im) {
                        *d = (a * a + b * b).sqrt();
                    }
                }
            }
            StageKind::Activation => {
                for r in 0..rows_out {
                    let d = &mut dst[r * out.stride..][..out.channels];
                    d.copy_from_slice(&src[r * inp.stride..][..out.channels]);
                    activate(stage.activation, d);
                }
            }
            StageKind::Mean => {
                let c = out.channels;
                let scale = 1.0 / inp.positions as f32;
                for b in 0..batch {
                    let d = &mut dst[b * out.stride..][..c];
                    d.copy_from_slice(&src[b * inp.stride..][..c]);
                    for p in 1..inp.positions {
                        for (acc, v) in d.iter_mut().zip(&src[(p * batch + b) * inp.stride..][..c]) {
                            *acc += v;
                        }
                    }
                    d.iter_mut().for_each(|v| *v *= scale);
                }
            }
        }
        (to, out)
    }
}

/// The activations `which` names: 0 and 1 the ping-pong buffers, 2 the
/// window, 3 the stack's output.
fn activations<'a>(
    which: usize,
    bufs: &'a [AlignedVec<f32>; 2],
    window: &'a AlignedVec<f32>,
    rec_out: &'a [f32],
) -> &'a [f32] {
    match which {
        0 | 1 => bufs[which].as_slice(),
        2 => window.as_slice(),
        _ => rec_out,
    }
}

/// Multiply-adds (padded panels included) from which a convolution's
/// panels are shared between threads: below, waking them costs more.
const PARALLEL_WORK: usize = 1 << 18;

/// What the threads of one convolution share: the output rows (each part
/// writes its own panels) and each part's own buffers.
#[derive(Clone, Copy)]
struct Parts {
    x: *const f32,
    out: *mut f32,
    out_stride: usize,
    wide: *mut f32,
    wide_part: usize,
    q8: *mut u8,
    q8_part: usize,
    q8_tiles: bool,
}

// SAFETY: `x` is only read; parts write disjoint panels of `out` and only
// their own slice of `wide` and `q8`; the pool's `run` returns after every
// part is done.
unsafe impl Sync for Parts {}

impl Parts {
    /// Part `part`'s GEMM: output rows `first..first + rows`, `panels`.
    #[allow(clippy::too_many_arguments)]
    fn call<'a>(
        &self,
        w: lstmrt_kernels::dispatch::MatrixRef<'a>,
        bias: &'a [f32],
        x_stride: usize,
        rows: usize,
        first: usize,
        panels: std::ops::Range<usize>,
        part: usize,
    ) -> GemmCall<'a> {
        GemmCall {
            w,
            bias,
            x: self.x,
            x_stride,
            rows,
            out: self.out.wrapping_add(first * self.out_stride),
            panels,
            wide: self.wide.wrapping_add(part * self.wide_part),
            q8: self.q8.wrapping_add(part * self.q8_part),
            q8_tiles: self.q8_tiles,
        }
    }
}

/// Whether a convolution's unfolded input is its input: one tap, stride 1, no padding.
fn unfolds_in_place(s: &Stage) -> bool {
    s.kernel == 1 && s.stride == 1 && s.pad_left == 0 && s.pad_right == 0
}

/// Output rows unfolded at once for `k` inputs per row.
fn unfold_rows(k: usize, rows: usize) -> usize {
    (UNFOLD_FLOATS / k.max(1)).clamp(1, rows.max(1))
}

/// Unfolds output rows `first..first + rows` of a convolution: row
/// `p * batch + b` is, tap by tap, the input channels of stream `b` at
/// position `p * stride + tap * dilation - pad_left` (padded by zeros or
/// reflection).
fn unfold(s: &Stage, inp: Shape, batch: usize, src: &[f32], first: usize, rows: usize, cols: &mut [f32]) {
    let (c, taps) = (inp.channels, s.kernel as usize);
    let n = inp.positions as isize;
    // Taps that read consecutive positions of one compact stream are one copy.
    let runs = batch == 1 && s.dilation == 1 && inp.stride == c;
    for (i, row) in cols.chunks_exact_mut(taps * c).take(rows).enumerate() {
        let (p, b) = ((first + i) / batch, (first + i) % batch);
        let q0 = (p * s.stride as usize) as isize - s.pad_left as isize;
        let mut tap = 0;
        while tap < taps {
            let q = q0 + (tap * s.dilation as usize) as isize;
            if runs && (0..n).contains(&q) {
                let len = (taps - tap).min((n - q) as usize);
                row[tap * c..(tap + len) * c].copy_from_slice(&src[q as usize * c..][..len * c]);
                tap += len;
                continue;
            }
            let q = match s.padding {
                _ if (0..n).contains(&q) => q,
                Padding::Zeros => -1,
                // Validated: each side's padding is below the input's length,
                // so one reflection lands inside it.
                Padding::Reflect if q < 0 => -q,
                Padding::Reflect => 2 * (n - 1) - q,
            };
            let dst = &mut row[tap * c..][..c];
            if q < 0 {
                dst.fill(0.0);
            } else {
                copy_short(dst, &src[(q as usize * batch + b) * inp.stride..][..c]);
            }
            tap += 1;
        }
    }
}

/// `dst.copy_from_slice(src)` without a call for the few values of one
/// position's channels.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    if dst.len() <= 8 {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s);
    } else {
        dst.copy_from_slice(src);
    }
}

/// Applies `a` to one position's channels in place.
pub(crate) fn activate(a: StageActivation, v: &mut [f32]) {
    match a {
        StageActivation::None => {}
        // (A comparison, not `f32::max`: one instruction in every build, wasm too.)
        StageActivation::Relu => v.iter_mut().for_each(|x| *x = if *x > 0.0 { *x } else { 0.0 }),
        StageActivation::Sigmoid => v.iter_mut().for_each(|x| *x = 1.0 / (1.0 + (-*x).exp())),
        StageActivation::Tanh => v.iter_mut().for_each(|x| *x = x.tanh()),
        StageActivation::Softmax => {
            let max = v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            let mut sum = 0.0;
            for x in v.iter_mut() {
                *x = (*x - max).exp();
                sum += *x;
            }
            v.iter_mut().for_each(|x| *x /= sum);
        }
    }
}
