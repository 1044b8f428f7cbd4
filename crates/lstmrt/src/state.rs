//! The per-stream state: `h` and `c` of every layer and direction, plus the
//! buffers a step needs, so stepping never allocates.

use crate::Error;
use crate::model::{Initial, Model};
use crate::scratch::{Packing, Rows, Scratch, try_zeros};
use lstmrt_format::{Architecture, CellKind};

/// The sizes a state was made for; a state only runs on a model with the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateShape {
    pub cell: CellKind,
    /// `layers * directions`
    pub slots: usize,
    pub batch: usize,
    /// Size of `h` (projection size or hidden size).
    pub h_size: usize,
    /// Size of `c` (hidden size; LSTM only).
    pub c_size: usize,
}

impl StateShape {
    pub fn of(arch: &Architecture, batch: usize) -> StateShape {
        StateShape {
            cell: arch.cell,
            slots: arch.layers() * arch.directions(),
            batch,
            h_size: arch.output_size(),
            c_size: if arch.has_cell_state() { arch.hidden() } else { 0 },
        }
    }
}

/// The recurrent state of one stream (or one batch of streams).
///
/// `h` is laid out as PyTorch's `h_n`, `[layers * directions, batch, P]`;
/// `c` as `c_n`, `[layers * directions, batch, H]` (LSTM only).
#[derive(Debug, Clone)]
pub struct State {
    shape: StateShape,
    h: Vec<f32>,
    c: Vec<f32>,
    /// Output of the last `step` or `run`, `[steps, batch, directions * P]`.
    out: Vec<f32>,
    /// Workers that `run` and `step` split work across (none: the calling thread only).
    pool: Option<std::sync::Arc<crate::threads::Pool>>,
    /// Kernel buffers, sized once for the model and batch.
    scratch: Scratch,
    /// Buffers of runs with per-row lengths (empty until the first).
    packing: Packing,
    /// What `reset` returns every row to (`None`: zeros).
    initial: Option<std::sync::Arc<Initial>>,
}

const STATE_MAGIC: &[u8; 8] = b"LSTMRTS1";

impl State {
    /// The largest batch a saved state may hold (and bindings accept).
    pub const MAX_BATCH: usize = 1 << 20;

    /// A state of `batch` rows, or [`Error::OutOfMemory`] when its buffers
    /// ([`Model::state_bytes`]) cannot be allocated.
    pub(crate) fn try_new(
        arch: &Architecture,
        batch: usize,
        dtype: lstmrt_format::DType,
        tiles: bool,
        initial: Option<&Initial>,
    ) -> Result<State, Error> {
        let shape = StateShape::of(arch, batch);
        let rows = (shape.slots * batch) as u64;
        let h = try_zeros(rows * shape.h_size as u64, "the state's h")?;
        let c = try_zeros(rows * shape.c_size as u64, "the state's c")?;
        let mut out = try_zeros(batch as u64 * arch.sequence_output_size() as u64, "the state's output")?;
        out.clear();
        let mut state = State {
            shape,
            h,
            c,
            // Room for one step's output, so stepping never allocates.
            out,
            pool: None,
            scratch: Scratch::try_new(arch, batch, dtype, tiles)?,
            packing: Packing::default(),
            initial: initial.map(|i| std::sync::Arc::new(i.clone())),
        };
        state.reset();
        Ok(state)
    }

    /// Number of sequences this state carries.
    pub fn batch(&self) -> usize {
        self.shape.batch
    }

    /// Lets `run` and `step` use `threads` threads (1, the default, runs on
    /// the calling thread only). A batch of several sequences is split across
    /// threads by sequence; a single sequence with enough hidden units is split
    /// by panels of units, each core keeping its slice of the weights in its
    /// own cache, with one barrier per step. The workers persist in this state
    /// (and its clones) and park when idle.
    ///
    /// At most [`crate::max_threads`] threads are used (more would only
    /// spin at the barriers, each waiting for the others to get a core);
    /// [`State::threads`] says how many this state got.
    pub fn set_threads(&mut self, threads: usize) {
        let threads = threads.min(crate::max_threads());
        self.pool = if threads > 1 { crate::threads::Pool::new(threads).map(std::sync::Arc::new) } else { None };
        self.scratch.set_threads(self.threads());
    }

    /// Makes room so that `run` and `run_into` on sequences up to `steps` long
    /// never allocate (`run_into` needs it only for bidirectional models with
    /// several layers, whose inter-layer sequences are buffered whole).
    pub fn reserve(&mut self, model: &Model, steps: usize) {
        self.scratch.reserve_sequence(model.architecture(), self.batch(), steps);
        let width = self.batch() * model.architecture().sequence_output_size();
        if self.out.capacity() < steps * width {
            self.out.reserve(steps * width - self.out.len());
        }
    }

    /// Threads this state uses.
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.threads())
    }

    /// Layers, directions, batch and sizes this state was made for.
    pub(crate) fn shape(&self) -> &StateShape {
        &self.shape
    }

    /// In a process forked after [`State::set_threads`], starts this
    /// state's workers again (the parent's are not here). One atomic load
    /// otherwise; the engine calls it before every run.
    pub(crate) fn renew_pool_after_fork(&mut self) {
        if let Some(threads) = self.pool.as_ref().filter(|p| p.is_orphaned()).map(|p| p.threads()) {
            self.set_threads(threads);
        }
    }

    /// The workers of [`State::set_threads`], if any.
    pub(crate) fn pool(&self) -> Option<&std::sync::Arc<crate::threads::Pool>> {
        self.pool.as_ref()
    }

    /// The engine's kernel buffers.
    pub(crate) fn scratch_mut(&mut self) -> &mut Scratch {
        &mut self.scratch
    }

    /// Copies `h`/`c` into the kernel buffers, before a run.
    pub(crate) fn load_scratch(&mut self, arch: &Architecture, rows: Rows<'_>) {
        self.scratch.load_state(arch, self.shape.batch, &self.h, &self.c, rows);
    }

    /// Copies the latest `h`/`c` back from the kernel buffers, after a run.
    pub(crate) fn store_scratch(&mut self, arch: &Architecture, rows: Rows<'_>) {
        self.scratch.store_state(arch, self.shape.batch, &mut self.h, &mut self.c, rows);
    }

    /// The output buffer of `run`, taken out so the run can write it while
    /// the state's kernel buffers are in use; give it back with [`State::put_out`].
    pub(crate) fn take_out(&mut self) -> Vec<f32> {
        std::mem::take(&mut self.out)
    }

    /// Puts the output buffer back and returns it.
    pub(crate) fn put_out(&mut self, out: Vec<f32>) -> &[f32] {
        self.out = out;
        &self.out
    }

    /// The buffers of a run with per-row lengths, taken out so the run can
    /// use them beside the kernel buffers; give them back with [`State::put_packing`].
    pub(crate) fn take_packing(&mut self) -> Packing {
        std::mem::take(&mut self.packing)
    }

    pub(crate) fn put_packing(&mut self, packing: Packing) {
        self.packing = packing;
    }

    /// Sets row `row` of `h` and `c` in every layer and direction to the
    /// model's initial state (zeros unless its file stores one).
    pub(crate) fn reset_row(&mut self, row: usize) {
        let s = self.shape;
        for slot in 0..s.slots {
            let (h, c) = (
                &mut self.h[(slot * s.batch + row) * s.h_size..][..s.h_size],
                &mut self.c[(slot * s.batch + row) * s.c_size..][..s.c_size],
            );
            match &self.initial {
                Some(i) => {
                    h.copy_from_slice(&i.h[slot * s.h_size..][..s.h_size]);
                    c.copy_from_slice(&i.c[slot * s.c_size..][..s.c_size]);
                }
                None => {
                    h.fill(0.0);
                    c.fill(0.0);
                }
            }
        }
    }

    /// Copies row `from_row` of `from`'s `h` and `c` into row `row` of this
    /// state's, in every layer and direction (the shapes but the batch agree).
    pub(crate) fn copy_row(&mut self, row: usize, from: &State, from_row: usize) {
        let (s, f) = (self.shape, from.shape);
        debug_assert_eq!(StateShape { batch: s.batch, ..f }, s);
        for slot in 0..s.slots {
            let h = &from.h[(slot * f.batch + from_row) * s.h_size..][..s.h_size];
            self.h[(slot * s.batch + row) * s.h_size..][..s.h_size].copy_from_slice(h);
            let c = &from.c[(slot * f.batch + from_row) * s.c_size..][..s.c_size];
            self.c[(slot * s.batch + row) * s.c_size..][..s.c_size].copy_from_slice(c);
        }
    }

    /// Returns `h` and `c` to the model's initial state (zeros, unless the
    /// file stores one: [`crate::Model::initial_state`]): the next step starts
    /// a new sequence.
    pub fn reset(&mut self) {
        for row in 0..self.shape.batch {
            self.reset_row(row);
        }
    }

    /// `h`, shaped `[layers * directions, batch, P]` like PyTorch's `h_n`.
    pub fn h(&self) -> &[f32] {
        &self.h
    }

    /// `c`, shaped `[layers * directions, batch, H]` like `c_n` (empty unless LSTM).
    pub fn c(&self) -> &[f32] {
        &self.c
    }

    /// Sets `h` (PyTorch's `h_0`).
    pub fn set_h(&mut self, h: &[f32]) -> Result<(), Error> {
        check_len("h", h.len(), self.h.len())?;
        self.h.copy_from_slice(h);
        Ok(())
    }

    /// Sets `c` (PyTorch's `c_0`; LSTM only).
    pub fn set_c(&mut self, c: &[f32]) -> Result<(), Error> {
        check_len("c", c.len(), self.c.len())?;
        self.c.copy_from_slice(c);
        Ok(())
    }

    /// Saves `h` and `c` so the stream can be resumed later, in another
    /// process, with [`State::from_bytes`]. Little-endian: magic `LSTMRTS1`,
    /// five u32 (cell code, layers*directions, batch, h size, c size), the
    /// f32 values of `h` then `c`, and a CRC32C of everything before it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let s = &self.shape;
        let mut out = Vec::with_capacity(32 + 4 * (self.h.len() + self.c.len()));
        out.extend_from_slice(STATE_MAGIC);
        for v in [u32::from(s.cell), s.slots as u32, s.batch as u32, s.h_size as u32, s.c_size as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.h.iter().chain(&self.c) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Restores a state saved by [`State::to_bytes`] for `model`.
    pub fn from_bytes(model: &Model, bytes: &[u8]) -> Result<State, Error> {
        let bad = |reason: String| Error::BadState { reason };
        if bytes.len() < 8 + 20 + 4 || &bytes[..8] != STATE_MAGIC {
            return Err(bad("missing the LSTMRTS1 header".into()));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
        if crc32c::crc32c(body) != stored {
            return Err(bad("checksum mismatch (corrupt)".into()));
        }
        let field = |i: usize| u32::from_le_bytes(body[8 + 4 * i..12 + 4 * i].try_into().expect("4 bytes")) as usize;
        let batch = field(2);
        if batch == 0 || batch > State::MAX_BATCH {
            return Err(bad(format!("batch {batch} is outside 1..={} (the limit)", State::MAX_BATCH)));
        }
        // Everything is checked against the blob before a state is made:
        // its size follows from the model's shape and the blob's batch.
        let s = StateShape::of(model.architecture(), batch);
        let found = [field(0), field(1), field(3), field(4)];
        let want = [u32::from(s.cell) as usize, s.slots, s.h_size, s.c_size];
        if found != want {
            return Err(bad(format!(
                "saved for (cell code, layers*directions, h size, c size) = {found:?}, this model has {want:?}"
            )));
        }
        let values = &body[28..];
        let expected = 4 * s.slots * batch * (s.h_size + s.c_size);
        if values.len() != expected {
            return Err(bad(format!("{} value bytes, expected {expected}", values.len())));
        }
        let mut state = model.new_batch_state(batch)?;
        let mut floats = values.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")));
        for v in state.h.iter_mut().chain(state.c.iter_mut()) {
            *v = floats.next().expect("length checked");
        }
        Ok(state)
    }
}

fn check_len(what: &'static str, got: usize, expected: usize) -> Result<(), Error> {
    if got != expected {
        return Err(Error::Shape { what, expected: expected.to_string(), got });
    }
    Ok(())
}

/// Refuses a batch of no streams or of more than [`State::MAX_BATCH`].
pub(crate) fn check_batch(batch: usize, what: &str) -> Result<(), Error> {
    if batch == 0 || batch > State::MAX_BATCH {
        return Err(Error::Batch {
            reason: format!("{what} of {batch} streams: the batch must be 1 to {}", State::MAX_BATCH),
        });
    }
    Ok(())
}
