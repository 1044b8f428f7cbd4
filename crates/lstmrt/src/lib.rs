//! # lstmrt
//!
//! Fast CPU inference for LSTM, GRU and plain RNN networks, from a versioned
//! model file that is memory-mapped and used in place.
//!
//! Semantics follow `torch.nn.LSTM` / `GRU` / `RNN` exactly (gate order, stacked
//! and bidirectional layers, `proj_size`, `h0`/`c0`), plus ONNX's peepholes,
//! `clip` and `input_forget`. [`mod@reference`] is a plain implementation of those
//! semantics and the oracle every fast path is tested against.
//!
//! ```
//! use lstmrt::{Model, ModelWriter, Weights};
//! use lstmrt::format::{Architecture, CellKind, Metadata};
//!
//! // Write a small 2-layer LSTM (input 3, hidden 8) to a file...
//! let meta = Metadata::new(Architecture::new(CellKind::Lstm, 3, 8, 2));
//! let mut weights = Weights::zeros(&meta);
//! weights.layers[0].b_ih.fill(0.5);
//! let path = std::env::temp_dir().join(format!("lstmrt-doc-{}.lstm", std::process::id()));
//! ModelWriter::new(&meta, &weights).write(&path)?;
//!
//! // ...open it (memory-mapped and validated once), and run it.
//! let model = Model::open(&path)?;
//! let mut state = model.new_state();
//! let xs = [0.1f32, 0.2, 0.3, /* t=1 */ 0.4, 0.5, 0.6];  // [steps=2, batch=1, input=3]
//! let out = model.run(&mut state, &xs)?;                 // [2, 1, 8]: top layer's h at each step
//! assert_eq!(out.len(), 2 * 8);
//!
//! // Streaming: one step per call, carrying the state.
//! let y = model.step(&mut state, &[0.7, 0.8, 0.9])?;
//! assert_eq!(y.len(), 8);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod chunks;
mod dft;
mod engine;
mod error;
mod model;
pub mod reference;
/// The seeded generator the trainer and the tests share (not for embedders).
#[doc(hidden)]
pub mod rng;
mod scratch;
mod state;
mod streams;
pub mod text;
mod threads;
pub mod vad;
mod weights;
mod writer;

pub use chunks::ChunkState;
pub use error::{Error, ErrorKind};
pub use lstmrt_format::IoError;
pub use lstmrt_kernels::dispatch::bf16_dot;
pub use lstmrt_kernels::{Int8Dot, Isa, IsaError};
pub use model::{Int8Activations, Model, TensorView};
pub use state::State;
pub use streams::{StreamBatch, StreamId};
pub use weights::{HeadWeights, LayerWeights, Weights};
pub use writer::ModelWriter;

/// What a model file says about the network: its architecture, options,
/// vocabulary, head and provenance, the stages of a chunked model, the
/// dtypes and layouts of its tensors, and what can be wrong with a file. The file format itself (header,
/// sections, the panel layout) is the `lstmrt-format` crate and
/// `format-spec.md`.
pub mod format {
    pub use lstmrt_format::{
        Architecture, CellKind, ChunkBuffers, DType, Embedding, Error, FileInfo, Head, HeadActivation, HeadTask,
        KeyValue, Layout, MAX_STREAM_FLOATS, Metadata, Padding, Provenance, Stage, StageActivation, StageKind,
        StageShape, Stages, StagesPlan, TensorInfo, Tokenizer, VERSION_MAJOR, VERSION_MINOR, Vocabulary, names,
    };
}

/// The instruction-set tier this process runs its kernels on: the best the CPU
/// has, or the one `LSTMRT_ISA` names (an error if this CPU lacks it).
pub fn isa() -> Result<Isa, IsaError> {
    lstmrt_kernels::selected()
}

/// The most threads a state uses: [`THREADS_PER_CORE`] times the cores this
/// process may run on (`std::thread::available_parallelism`, 1 if unknown).
/// [`State::set_threads`] gives a state at most this many: workers beyond
/// the cores only wait for each other at every step's barrier.
pub fn max_threads() -> usize {
    threads::max_threads()
}

/// See [`max_threads`].
pub const THREADS_PER_CORE: usize = 4;

/// The README's code examples, compiled and run as doctests (from this
/// crate's folder, where `models` links to the repository's `models/`, so the
/// README's paths work as a user at the repository root types them).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The examples of `docs/batching.md` (per-row lengths, stream batches), compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/batching.md")]
pub struct BatchingDoctests;
