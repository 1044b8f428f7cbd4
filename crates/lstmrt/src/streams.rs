//! Many live streams stepped together: a [`StreamBatch`] keeps the state of
//! up to `capacity` independent streams and steps every stream that has an
//! input this step as one batch, so the weights are read once for all of
//! them rather than once per stream.

use std::fmt;

use crate::engine::Schedule;
use crate::{Error, Model, State};

/// A stream of a [`StreamBatch`], from [`StreamBatch::join`]. An id stays
/// valid until the stream leaves; a later stream that reuses its place gets
/// a new id, so a stale id is refused rather than stepping someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId {
    index: u32,
    generation: u64,
}

impl StreamId {
    /// The stream's place in the batch, `0..capacity` (reused after it leaves).
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// How many streams held this place before this one (with [`StreamId::index`],
    /// what a binding hands out instead of the id itself).
    pub fn generation(self) -> u64 {
        self.generation
    }

    /// The id with these parts, for bindings that pass ids as plain numbers.
    /// A batch refuses an id it did not give out or whose stream has left,
    /// so a forged or stale one is an error, never another stream's state.
    pub fn from_parts(index: u32, generation: u64) -> StreamId {
        StreamId { index, generation }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {}.{}", self.index, self.generation)
    }
}

/// The states of up to `capacity` streams of one model, stepped together.
///
/// ```
/// # use lstmrt::{Model, ModelWriter, Weights};
/// # use lstmrt::format::{Architecture, CellKind, Metadata};
/// # let meta = Metadata::new(Architecture::new(CellKind::Lstm, 2, 4, 1));
/// # let model = Model::from_bytes(&ModelWriter::new(&meta, &Weights::zeros(&meta)).to_bytes()?)?;
/// let mut streams = model.new_stream_batch(32)?;
/// let (a, b) = (streams.join()?, streams.join()?);
/// // One step of both streams: one pass over the weights.
/// let out = streams.step(&model, &[a, b], &[0.1, 0.2, /* b */ 0.3, 0.4])?;
/// assert_eq!(out.len(), 2 * 4); // [streams, hidden], in the order given
/// // Only `b` has a frame now: `a` keeps its state untouched.
/// streams.step(&model, &[b], &[0.5, 0.6])?;
/// streams.leave(a)?;
/// # Ok::<(), lstmrt::Error>(())
/// ```
///
/// Stepping never allocates. Each stream gives what it would give alone
/// through [`Model::step`]: bit for bit for int8 weights, within float
/// rounding (the batch kernels sum in another order) otherwise.
#[derive(Debug, Clone)]
pub struct StreamBatch {
    /// Row `i` is the state of the stream at index `i`.
    state: State,
    slots: Slots,
    /// The rows of one step, in the order given.
    rows: Vec<usize>,
    out: Vec<f32>,
}

impl Model {
    /// An empty [`StreamBatch`] with room for `capacity` streams (1 to
    /// [`State::MAX_BATCH`]; about [`Model::state_bytes`]`(capacity, 1)`
    /// of memory). Refuses a capacity outside that range, and returns
    /// [`Error::OutOfMemory`] rather than aborting when the memory cannot be had.
    pub fn new_stream_batch(&self, capacity: usize) -> Result<StreamBatch, Error> {
        crate::state::check_batch(capacity, "a stream batch")?;
        Ok(StreamBatch {
            state: self.new_batch_state(capacity)?,
            slots: Slots::new(capacity),
            rows: Vec::with_capacity(capacity),
            out: Vec::with_capacity(capacity * self.architecture().sequence_output_size()),
        })
    }
}

impl StreamBatch {
    /// Streams this batch has room for.
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Streams in it now.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether it holds no stream.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lets each step use `threads` threads, as [`State::set_threads`].
    pub fn set_threads(&mut self, threads: usize) {
        self.state.set_threads(threads);
    }

    /// A new stream, starting from the model's initial state (zeros unless
    /// its file stores one).
    pub fn join(&mut self) -> Result<StreamId, Error> {
        let id = self.slots.join()?;
        self.state.reset_row(id.index());
        Ok(id)
    }

    /// A new stream, starting from `state` (one stream's state of this
    /// model, as [`StreamBatch::stream_state`] or [`State::from_bytes`] give).
    pub fn join_from(&mut self, state: &State) -> Result<StreamId, Error> {
        self.check_single(state)?;
        let id = self.join()?;
        self.state.copy_row(id.index(), state, 0);
        Ok(id)
    }

    /// Ends a stream; its id is refused from now on.
    pub fn leave(&mut self, id: StreamId) -> Result<(), Error> {
        self.slots.leave(id)
    }

    /// Returns a stream's state to the model's initial state: its next step
    /// starts a new sequence.
    pub fn reset(&mut self, id: StreamId) -> Result<(), Error> {
        let i = self.check(id)?;
        self.state.reset_row(i);
        Ok(())
    }

    /// A copy of one stream's state, as a one-stream [`State`] of `model`
    /// (save it with [`State::to_bytes`]).
    pub fn stream_state(&self, model: &Model, id: StreamId) -> Result<State, Error> {
        let i = self.check(id)?;
        let mut one = model.new_state();
        self.check_single(&one)?;
        one.copy_row(0, &self.state, i);
        Ok(one)
    }

    /// Replaces one stream's state with `state` (one stream's state of this model).
    pub fn set_stream_state(&mut self, id: StreamId, state: &State) -> Result<(), Error> {
        let i = self.check(id)?;
        self.check_single(state)?;
        self.state.copy_row(i, state, 0);
        Ok(())
    }

    /// Steps the streams `ids` (each once, in any order) with inputs `xs`,
    /// `[ids.len(), input_size]` in the same order, as one batch; the other
    /// streams keep their state untouched. Returns each stream's new top-layer
    /// `h`, `[ids.len(), P]` in the order of `ids`.
    ///
    /// Nothing changes when an id, the input or the model is refused.
    pub fn step(&mut self, model: &Model, ids: &[StreamId], xs: &[f32]) -> Result<&[f32], Error> {
        model.check_streamable()?;
        model.check_state(&self.state)?;
        if ids.is_empty() {
            return Err(Error::Stream { reason: "a step needs at least one stream".into() });
        }
        let input = model.architecture().input_size as usize;
        if xs.len() != ids.len() * input {
            return Err(Error::Shape {
                what: "stream inputs",
                expected: format!("{} ({} streams x input size {input})", ids.len() * input, ids.len()),
                got: xs.len(),
            });
        }
        self.slots.rows(ids, &mut self.rows)?;
        let width = ids.len() * model.architecture().sequence_output_size();
        self.out.resize(width, 0.0);
        model.run_scheduled(&mut self.state, xs, Schedule::uniform(ids.len()), 1, Some(&self.rows), &mut self.out);
        Ok(&self.out)
    }

    /// The index of a live stream.
    fn check(&self, id: StreamId) -> Result<usize, Error> {
        self.slots.check(id)
    }

    fn check_single(&self, state: &State) -> Result<(), Error> {
        let (mine, theirs) = (self.state.shape(), state.shape());
        if (crate::state::StateShape { batch: 1, ..*mine }) != *theirs {
            return Err(Error::StateMismatch {
                reason: format!("a stream's state is one row of {mine:?}, this state is {theirs:?}"),
            });
        }
        Ok(())
    }
}

/// Who holds which place of a batch of streams: ids with generations, the
/// free places, and the duplicate check of one step. Shared by
/// [`StreamBatch`] and [`crate::vad::VadStreams`].
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    /// Per index: its current generation, and whether a stream holds it.
    generation: Vec<u64>,
    live: Vec<bool>,
    /// Indexes without a stream, the next to give out last.
    free: Vec<u32>,
    /// Per index, the last step that named it (to refuse duplicates).
    seen: Vec<u64>,
    steps: u64,
}

impl Slots {
    pub(crate) fn new(capacity: usize) -> Slots {
        Slots {
            generation: vec![0; capacity],
            live: vec![false; capacity],
            free: (0..capacity as u32).rev().collect(),
            seen: vec![0; capacity],
            steps: 0,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.live.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.capacity() - self.free.len()
    }

    /// Whether a stream holds place `index`.
    pub(crate) fn is_live(&self, index: usize) -> bool {
        self.live[index]
    }

    /// The id of the stream at a live place.
    pub(crate) fn id(&self, index: usize) -> StreamId {
        StreamId { index: index as u32, generation: self.generation[index] }
    }

    /// A free place for a new stream (the caller starts its state afresh).
    pub(crate) fn join(&mut self) -> Result<StreamId, Error> {
        let Some(index) = self.free.pop() else {
            return Err(Error::Stream { reason: format!("all {} streams are in use", self.capacity()) });
        };
        let i = index as usize;
        self.live[i] = true;
        Ok(StreamId { index, generation: self.generation[i] })
    }

    /// Frees `id`'s place; `id` is refused from now on.
    pub(crate) fn leave(&mut self, id: StreamId) -> Result<(), Error> {
        let i = self.check(id)?;
        self.live[i] = false;
        self.generation[i] = self.generation[i].wrapping_add(1);
        self.free.push(id.index);
        Ok(())
    }

    /// The place of a live stream's id.
    pub(crate) fn check(&self, id: StreamId) -> Result<usize, Error> {
        let i = id.index();
        if i >= self.capacity() {
            return Err(Error::Stream { reason: format!("{id} does not exist (capacity {})", self.capacity()) });
        }
        if !self.live[i] || self.generation[i] != id.generation {
            return Err(Error::Stream { reason: format!("{id} has left") });
        }
        Ok(i)
    }

    /// The places of one step's `ids` into `rows`, in their order; refuses
    /// a stale id and an id given twice.
    pub(crate) fn rows(&mut self, ids: &[StreamId], rows: &mut Vec<usize>) -> Result<(), Error> {
        self.steps += 1;
        rows.clear();
        for &id in ids {
            let i = self.check(id)?;
            if self.seen[i] == self.steps {
                return Err(Error::Stream { reason: format!("{id} is given twice in one step") });
            }
            self.seen[i] = self.steps;
            rows.push(i);
        }
        Ok(())
    }
}
