//! The exit codes of `lstm-run`, `lstm-convert` and `lstm-train`: one table
//! for the three, printed at the end of each `--help` and in
//! `docs/exit-codes.md`.

/// Success.
pub const OK: u8 = 0;
/// The work failed for a reason other than what it was given: an output
/// could not be written, or `lstm-convert --check` found that the converted
/// model computes something else. Nothing half-written is left behind.
pub const FAILURE: u8 = 1;
/// A bad command line, model file, input or output path (checked before any
/// work): one line on stderr says what is wrong and where. (Argument-parser
/// errors exit with this code too.)
pub const BAD_INPUT: u8 = 2;

/// The table as the `--help` of every tool ends with it.
pub const TABLE: &str = "Exit codes (the same for lstm-run, lstm-convert and lstm-train):
  0  success
  1  the work failed, not the input: an output could not be written, or
     lstm-convert --check found the converted model computes something else
  2  bad command line, model file, input or output path (one line on stderr says what and
     where); an output path is checked before any work";

/// Why a command stopped: the exit code and one line for stderr (empty when
/// there is nothing to say, e.g. the reader of stdout went away).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Exit code 2: the command line, model or input is unusable.
    pub fn bad_input(message: impl Into<String>) -> Failure {
        Failure { code: BAD_INPUT, message: message.into() }
    }

    /// Exit code 1: something other than the input failed.
    pub fn internal(message: impl Into<String>) -> Failure {
        Failure { code: FAILURE, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_code_once() {
        for code in [OK, FAILURE, BAD_INPUT] {
            assert_eq!(TABLE.matches(&format!("\n  {code}  ")).count(), 1, "code {code}");
        }
    }
}
