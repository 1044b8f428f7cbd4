//! Errors of the runtime API: a bad file, or inputs that do not fit the model.

use std::fmt;

use crate::format;

/// Anything [`crate::Model`] and [`crate::State`] can refuse.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The model file is unreadable or invalid.
    Format(format::Error),
    /// An input slice has the wrong number of values.
    Shape { what: &'static str, expected: String, got: usize },
    /// The state was made for another model or batch size.
    StateMismatch { reason: String },
    /// Bytes given to [`crate::State::from_bytes`] are not a saved state of this model.
    BadState { reason: String },
    /// The model cannot do what was asked (streaming a bidirectional model,
    /// text on a model without vocabulary, ...).
    Unsupported { what: String },
    /// A text token is not in the vocabulary and the model has no unknown token.
    UnknownToken { token: String, position: usize },
    /// A token id is outside the vocabulary.
    BadTokenId { id: u32, vocab_size: usize },
}

impl From<format::Error> for Error {
    fn from(e: format::Error) -> Self {
        Error::Format(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Format(e) => e.fmt(f),
            Error::Shape { what, expected, got } => write!(f, "{what} has {got} values, expected {expected}"),
            Error::StateMismatch { reason } => write!(f, "state does not fit this model: {reason}"),
            Error::BadState { reason } => write!(f, "not a saved state of this model: {reason}"),
            Error::Unsupported { what } => write!(f, "{what}"),
            Error::UnknownToken { token, position } => write!(
                f,
                "unknown token {token:?} at position {position}: not in the model's vocabulary, and the model has no unknown token"
            ),
            Error::BadTokenId { id, vocab_size } => {
                write!(f, "token id {id} is outside the vocabulary of {vocab_size} tokens")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Format(e) => Some(e),
            _ => None,
        }
    }
}
