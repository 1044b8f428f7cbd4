//! Many live calls through one voice-activity model: [`VadStreams`] keeps
//! each call's waiting samples, its model state and its [`VadIterator`],
//! and steps every call that has a whole chunk ready as one batch.

use crate::streams::Slots;
use crate::vad::{VadEvent, VadIterator};
use crate::{ChunkState, Error, Model, StreamId};

/// The speech rules of every stream of a [`VadStreams`]: those of the
/// package's `VADIterator`, with its defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadStreamOptions {
    /// Speech starts at a probability at or above this; ends below it minus 0.15.
    pub threshold: f64,
    /// Silence must last this long to end speech.
    pub min_silence_duration_ms: f64,
    /// Taken off a start and added to an end.
    pub speech_pad_ms: f64,
    /// Samples a stream may have waiting (pushed, not yet run) before
    /// [`VadStreams::push`] refuses more: what bounds the memory a stream
    /// that is pushed to but never processed can take. Default 2 s of audio.
    pub max_pending_s: f64,
}

impl Default for VadStreamOptions {
    fn default() -> VadStreamOptions {
        VadStreamOptions { threshold: 0.5, min_silence_duration_ms: 100.0, speech_pad_ms: 30.0, max_pending_s: 2.0 }
    }
}

/// One chunk of one stream, run by [`VadStreams::process`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadStep {
    /// The stream.
    pub stream: StreamId,
    /// The chunk's speech probability.
    pub probability: f32,
    /// A speech start or end, in samples of that stream (as `VADIterator` says it).
    pub event: Option<VadEvent>,
}

/// Up to `capacity` live audio streams (calls) of one chunked voice-activity
/// model (Silero VAD), for a server: streams join and leave, audio is
/// pushed per stream in pieces of any size, and [`VadStreams::process`]
/// runs one chunk of every stream that has one waiting, all in one batch
/// (one pass over the weights), and again while any stream has another.
/// Each stream gives what it would give alone (its probabilities within
/// float rounding of a one-stream run, its events by `VADIterator`'s rules).
///
/// ```
/// # fn main() -> Result<(), lstmrt::Error> {
/// # let model = lstmrt::Model::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/silero_vad/silero_vad.lstm"))?;
/// use lstmrt::vad::{VadEvent, VadStreamOptions};
/// let mut calls = model.new_vad_streams(64, VadStreamOptions::default())?;
/// let call = calls.join()?;
/// calls.push(call, &[0.0; 800])?; // 50 ms at 16 kHz: one 512-sample chunk is ready
/// for step in calls.process(&model)? {
///     if let Some(VadEvent::Start(at)) = step.event {
///         println!("{} speaks from sample {at}", step.stream);
///     }
/// }
/// assert_eq!(calls.pending(call)?, 800 - 512);
/// # Ok(()) }
/// ```
pub struct VadStreams {
    slots: Slots,
    chunks: ChunkState,
    /// Samples per chunk.
    window: usize,
    sampling_rate: u32,
    max_pending: usize,
    template: VadIterator,
    /// Per place: the samples waiting, and the stream's event rules.
    pending: Vec<Vec<f32>>,
    iterators: Vec<VadIterator>,
    /// One round's places, inputs and results (kept: no allocation per round
    /// once the batch has been full).
    rows: Vec<usize>,
    x: Vec<f32>,
    steps: Vec<VadStep>,
}

impl Model {
    /// A [`VadStreams`] of up to `capacity` streams (1 to
    /// [`crate::State::MAX_BATCH`]) for this chunked model, which must read
    /// one channel and give one probability per chunk (Silero VAD does).
    pub fn new_vad_streams(&self, capacity: usize, options: VadStreamOptions) -> Result<VadStreams, Error> {
        let chunks = self.new_chunk_state(capacity)?;
        let (stages, plan) = (self.metadata().stages.as_ref(), self.stages_plan());
        let (Some(stages), Some(plan)) = (stages, plan) else {
            unreachable!("a chunk state exists only for chunked models")
        };
        if stages.channels != 1 || plan.out_positions * plan.out_channels != 1 {
            return Err(Error::Unsupported {
                what: format!(
                    "voice-activity streams need one channel in and one probability out per chunk; this model reads {} channels and gives {} values",
                    stages.channels,
                    plan.out_positions * plan.out_channels
                ),
            });
        }
        let sampling_rate = stages.sample_rate;
        let window = stages.chunk as usize;
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !(ok(options.min_silence_duration_ms) && ok(options.speech_pad_ms) && options.threshold.is_finite()) {
            return Err(Error::Stream {
                reason: format!("voice-activity options must be finite and not negative: {options:?}"),
            });
        }
        // At least one chunk may wait, at most a minute of audio.
        let rate = if sampling_rate == 0 { 16000.0 } else { sampling_rate as f64 };
        if !(options.max_pending_s.is_finite() && options.max_pending_s > 0.0 && options.max_pending_s <= 60.0) {
            return Err(Error::Stream {
                reason: format!(
                    "max_pending_s is {}: it must be above 0 and at most 60 seconds",
                    options.max_pending_s
                ),
            });
        }
        let max_pending = ((options.max_pending_s * rate) as usize).max(window);
        let template =
            VadIterator::new(options.threshold, sampling_rate, options.min_silence_duration_ms, options.speech_pad_ms);
        Ok(VadStreams {
            slots: Slots::new(capacity),
            chunks,
            window,
            sampling_rate,
            max_pending,
            iterators: vec![template.clone(); capacity],
            template,
            pending: vec![Vec::new(); capacity],
            rows: Vec::new(),
            x: Vec::new(),
            steps: Vec::new(),
        })
    }
}

impl VadStreams {
    /// Streams it can hold.
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Streams it holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether it holds no stream.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples per chunk (512 for Silero at 16 kHz, 256 at 8 kHz).
    pub fn window(&self) -> usize {
        self.window
    }

    /// The model's sampling rate (0 when its file does not say).
    pub fn sampling_rate(&self) -> u32 {
        self.sampling_rate
    }

    /// Threads for each round's batch (see [`crate::State::set_threads`]).
    pub fn set_threads(&mut self, threads: usize) {
        self.chunks.set_threads(threads);
    }

    /// A new stream: fresh model state, no samples, not in speech.
    pub fn join(&mut self) -> Result<StreamId, Error> {
        let id = self.slots.join()?;
        self.restart(id.index());
        Ok(id)
    }

    /// Ends a stream (its waiting samples are dropped); its id is refused from now on.
    pub fn leave(&mut self, id: StreamId) -> Result<(), Error> {
        self.slots.leave(id)?;
        // Give the memory back: a place may stay empty for long.
        self.pending[id.index()] = Vec::new();
        Ok(())
    }

    /// Starts a stream afresh, as `VADIterator.reset_states` does: model
    /// state, waiting samples and speech state.
    pub fn reset(&mut self, id: StreamId) -> Result<(), Error> {
        let i = self.slots.check(id)?;
        self.restart(i);
        Ok(())
    }

    fn restart(&mut self, i: usize) {
        self.chunks.reset_stream(i).expect("a place of the batch");
        self.pending[i].clear();
        self.iterators[i] = self.template.clone();
    }

    /// Samples of stream `id` waiting for [`VadStreams::process`].
    pub fn pending(&self, id: StreamId) -> Result<usize, Error> {
        Ok(self.pending[self.slots.check(id)?].len())
    }

    /// Whether stream `id` is in speech (a start was reported and no end yet).
    pub fn triggered(&self, id: StreamId) -> Result<bool, Error> {
        Ok(self.iterators[self.slots.check(id)?].triggered())
    }

    /// Appends audio (float samples, the model's rate, one channel) to
    /// stream `id`. Refuses NaN and infinities, and more than
    /// [`VadStreamOptions::max_pending_s`] of audio waiting, with nothing appended.
    pub fn push(&mut self, id: StreamId, samples: &[f32]) -> Result<(), Error> {
        let i = self.slots.check(id)?;
        if let Some(index) = samples.iter().position(|v| !v.is_finite()) {
            return Err(Error::NotFinite { what: "audio", index, value: samples[index] });
        }
        let waiting = self.pending[i].len();
        if samples.len() > self.max_pending - waiting {
            return Err(Error::Stream {
                reason: format!(
                    "{id} would have {} samples waiting, more than its {} (max_pending_s): process() them first",
                    waiting + samples.len(),
                    self.max_pending
                ),
            });
        }
        self.pending[i].extend_from_slice(samples);
        Ok(())
    }

    /// Runs every stream that has a whole chunk waiting, one chunk each, in
    /// one batch; then again while any stream has another. Returns one
    /// [`VadStep`] per chunk run, round by round, streams in place order.
    pub fn process(&mut self, model: &Model) -> Result<&[VadStep], Error> {
        self.steps.clear();
        let w = self.window;
        loop {
            self.rows.clear();
            self.x.clear();
            for i in 0..self.slots.capacity() {
                if self.slots.is_live(i) && self.pending[i].len() >= w {
                    self.rows.push(i);
                    self.x.extend_from_slice(&self.pending[i][..w]);
                }
            }
            if self.rows.is_empty() {
                return Ok(&self.steps);
            }
            let probs = model.run_chunk_streams(&mut self.chunks, &self.rows, &self.x)?;
            for (&i, &p) in self.rows.iter().zip(probs) {
                self.pending[i].drain(..w);
                let event = self.iterators[i].push(p, w);
                self.steps.push(VadStep { stream: self.slots.id(i), probability: p, event });
            }
        }
    }
}
