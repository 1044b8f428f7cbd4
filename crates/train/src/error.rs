//! The trainer's errors, split by whose fault they are: bad input (exit
//! code 2) or a failure while working (exit code 1).

use std::fmt;

/// What went wrong; the message names the file, column, line or option.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The user's data, options or checkpoint are unusable (exit code 2).
    Input(String),
    /// Reading or writing failed, or training could not continue (exit code 1).
    Failed(String),
}

impl Error {
    pub fn input(msg: impl Into<String>) -> Error {
        Error::Input(msg.into())
    }

    pub fn failed(msg: impl Into<String>) -> Error {
        Error::Failed(msg.into())
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        i32::from(match self {
            Error::Input(_) => lstmrt_cli::exit::BAD_INPUT,
            Error::Failed(_) => lstmrt_cli::exit::FAILURE,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(m) | Error::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// Writes `bytes` to `path` atomically (see `lstmrt_format::atomic_write`);
/// a failure is the trainer's (exit code 1), naming the file.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    lstmrt_format::atomic_write(path, bytes).map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display())))
}

impl From<lstmrt::Error> for Error {
    fn from(e: lstmrt::Error) -> Self {
        Error::Failed(e.to_string())
    }
}

impl From<lstmrt_format::Error> for Error {
    fn from(e: lstmrt_format::Error) -> Self {
        Error::Failed(e.to_string())
    }
}
