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
        match self {
            Error::Input(_) => 2,
            Error::Failed(_) => 1,
        }
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

impl From<lstmrt::format::Error> for Error {
    fn from(e: lstmrt::format::Error) -> Self {
        Error::Failed(e.to_string())
    }
}
