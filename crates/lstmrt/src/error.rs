//! Errors of the runtime API: a file that cannot be read or written, a bad
//! file, or inputs that do not fit the model.

use std::fmt;
use std::path::{Path, PathBuf};

use lstmrt_format as format;
use lstmrt_format::IoError;
use lstmrt_kernels::IsaError;

/// Anything [`crate::Model`], [`crate::State`] and [`crate::ModelWriter`] can
/// refuse: one type for opening, running and writing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The file at `path` could not be opened, read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: IoError,
    },
    /// The model file (or what was handed to the writer) is invalid.
    Format(format::Error),
    /// The instruction-set tier asked for (`LSTMRT_ISA`, [`crate::Model::with_isa`])
    /// cannot run on this CPU.
    Isa(IsaError),
    /// An input slice has the wrong number of values.
    Shape {
        /// Which input.
        what: &'static str,
        /// How many values it needs, or how they are counted.
        expected: String,
        /// How many it has.
        got: usize,
    },
    /// The state was made for another model or batch size.
    StateMismatch {
        /// How it differs.
        reason: String,
    },
    /// Bytes given to [`crate::State::from_bytes`] are not a saved state of this model.
    BadState {
        /// What is wrong with them.
        reason: String,
    },
    /// The model cannot do what was asked (streaming a bidirectional model,
    /// text on a model without vocabulary, ...).
    Unsupported {
        /// What was asked, and why it cannot be done.
        what: String,
    },
    /// The per-row lengths of [`crate::Model::run_lengths`] do not fit the batch.
    BadLengths {
        /// Which length, and what is wrong with it.
        reason: String,
    },
    /// A [`crate::StreamBatch`] was asked for a stream it does not have, or
    /// for more streams than it has room for.
    Stream {
        /// What was asked, and why it cannot be done.
        reason: String,
    },
    /// A text token is not in the vocabulary and the model has no unknown token.
    UnknownToken {
        /// The token.
        token: String,
        /// Its index among the text's tokens.
        position: usize,
    },
    /// A token id is outside the vocabulary.
    BadTokenId {
        /// The id.
        id: u32,
        /// Tokens in the vocabulary.
        vocab_size: usize,
    },
    /// A batch of streams asked for is empty or above [`crate::State::MAX_BATCH`].
    Batch {
        /// What was asked for, and the range allowed.
        reason: String,
    },
    /// Memory for `what` (`bytes` of it) could not be allocated: the sizes
    /// asked for are more than this process can have.
    OutOfMemory {
        /// What needed it.
        what: String,
        /// How much.
        bytes: u64,
    },
    /// An input value is NaN or infinite.
    NotFinite {
        /// Which input.
        what: &'static str,
        /// The value's index in it.
        index: usize,
        /// The value.
        value: f32,
    },
}

/// What kind of refusal an [`Error`] is, one kind per variant: the single
/// classification every binding maps to its own (C status codes, Python
/// exception classes) with an exhaustive `match`, so that a new variant
/// cannot reach a binding unclassified. ([`Error`] is `#[non_exhaustive]`
/// for embedders; this enum is not, on purpose.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// [`Error::Io`]
    Io,
    /// [`Error::Format`]
    Format,
    /// [`Error::Isa`]
    Isa,
    /// [`Error::Shape`]
    Shape,
    /// [`Error::StateMismatch`]
    StateMismatch,
    /// [`Error::BadState`]
    BadState,
    /// [`Error::Unsupported`]
    Unsupported,
    /// [`Error::BadLengths`]
    BadLengths,
    /// [`Error::Stream`]
    Stream,
    /// [`Error::UnknownToken`]
    UnknownToken,
    /// [`Error::BadTokenId`]
    BadTokenId,
    /// [`Error::Batch`]
    Batch,
    /// [`Error::OutOfMemory`]
    OutOfMemory,
    /// [`Error::NotFinite`]
    NotFinite,
}

impl Error {
    /// An I/O failure on `path`.
    pub fn io(path: &Path, err: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source: err.into() }
    }

    /// Which kind of refusal this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Io,
            Error::Format(_) => ErrorKind::Format,
            Error::Isa(_) => ErrorKind::Isa,
            Error::Shape { .. } => ErrorKind::Shape,
            Error::StateMismatch { .. } => ErrorKind::StateMismatch,
            Error::BadState { .. } => ErrorKind::BadState,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::BadLengths { .. } => ErrorKind::BadLengths,
            Error::Stream { .. } => ErrorKind::Stream,
            Error::UnknownToken { .. } => ErrorKind::UnknownToken,
            Error::BadTokenId { .. } => ErrorKind::BadTokenId,
            Error::Batch { .. } => ErrorKind::Batch,
            Error::OutOfMemory { .. } => ErrorKind::OutOfMemory,
            Error::NotFinite { .. } => ErrorKind::NotFinite,
        }
    }
}

impl From<IsaError> for Error {
    fn from(e: IsaError) -> Self {
        Error::Isa(e)
    }
}

impl From<format::Error> for Error {
    fn from(e: format::Error) -> Self {
        Error::Format(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Format(e) => e.fmt(f),
            Error::Isa(e) => e.fmt(f),
            Error::Shape { what, expected, got } => write!(f, "{what} has {got} values, expected {expected}"),
            Error::StateMismatch { reason } => write!(f, "state does not fit this model: {reason}"),
            Error::BadState { reason } => write!(f, "not a saved state of this model: {reason}"),
            Error::Unsupported { what } => write!(f, "{what}"),
            Error::BadLengths { reason } => write!(f, "bad sequence lengths: {reason}"),
            Error::Stream { reason } => write!(f, "stream batch: {reason}"),
            Error::UnknownToken { token, position } => write!(
                f,
                "unknown token {token:?} at position {position}: not in the model's vocabulary, and the model has no unknown token"
            ),
            Error::BadTokenId { id, vocab_size } => {
                write!(f, "token id {id} is outside the vocabulary of {vocab_size} tokens")
            }
            Error::Batch { reason } => write!(f, "{reason}"),
            Error::OutOfMemory { what, bytes } => {
                write!(f, "{what} needs {bytes} bytes of memory, more than could be allocated")
            }
            Error::NotFinite { what, index, value } => {
                write!(f, "{what} value {index} is {value}: inputs must be finite")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Format(e) => Some(e),
            Error::Isa(e) => Some(e),
            _ => None,
        }
    }
}
