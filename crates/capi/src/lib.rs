//! The C ABI of lstmrt (`include/lstmrt.h`): a model handle, per-stream
//! states, `lstmrt_step` / `lstmrt_run`, stream batches, text helpers.
//!
//! Every entry point checks its pointers, runs inside `catch_unwind` (a panic
//! becomes [`lstmrt_status::LSTMRT_PANIC`]), and writes its outputs only on
//! success; the message of the last failure on a thread is
//! [`lstmrt_last_error`]'s.

#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use lstmrt::format::HeadTask;
use lstmrt::{Error, Model, State, StreamBatch, StreamId};

/// What a call did. `LSTMRT_OK` is 0; on anything else nothing was written
/// and `lstmrt_last_error()` says why.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lstmrt_status {
    /// Done.
    LSTMRT_OK = 0,
    /// A NULL or misaligned pointer, a size that does not fit the model, a
    /// state of another shape, a stream id that is not live, a bad token.
    LSTMRT_BAD_ARGUMENT = 1,
    /// Not a valid model file, or not a saved state of this model.
    LSTMRT_BAD_FILE = 2,
    /// The model cannot do it (stepping a bidirectional model, text on a
    /// model without vocabulary, an instruction-set tier this CPU lacks).
    LSTMRT_UNSUPPORTED = 3,
    /// A file could not be opened or read.
    LSTMRT_IO = 4,
    /// A bug in lstmrt: it panicked (the message says where).
    LSTMRT_PANIC = 5,
    /// The caller's buffer is too small; the size needed was written where
    /// the function's documentation says.
    LSTMRT_BUFFER_TOO_SMALL = 6,
    /// The sizes asked for (a batch, streams) need more memory than the
    /// process can allocate; the message says how much.
    LSTMRT_OUT_OF_MEMORY = 7,
}

use lstmrt_status::*;

/// A model file, opened and validated (memory-mapped by `lstmrt_model_open`).
pub struct lstmrt_model {
    model: Model,
}

/// The recurrent state of `batch` streams run together, with its buffers.
pub struct lstmrt_state {
    state: State,
}

/// Up to `capacity` streams of one model, stepped together by one call.
pub struct lstmrt_streams {
    batch: StreamBatch,
    /// The ids of a step, converted (room for `capacity`, so no allocation).
    ids: Vec<StreamId>,
}

/// The carried state of a chunked model's streams (format 1.3 stages, such
/// as Silero VAD): the recurrent state, each stream's context frames, and
/// every buffer a chunk needs.
pub struct lstmrt_chunks {
    chunks: lstmrt::ChunkState,
}

/// A stream of an `lstmrt_streams`: valid until the stream leaves; a later
/// stream in the same place has another `generation`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lstmrt_stream_id {
    /// The stream's place, `0..capacity`.
    pub index: u32,
    /// How many streams held the place before.
    pub generation: u64,
}

mod ffi;
mod library;
pub use library::*;
mod models;
pub use models::*;
mod states;
pub use states::*;
mod running;
pub use running::*;
mod streams;
pub use streams::*;
mod chunks;
pub use chunks::*;
mod text;
pub use text::*;
