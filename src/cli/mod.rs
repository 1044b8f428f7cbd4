//! The command-line programs' work, as library functions: the binaries in
//! `src/bin/` parse arguments and call these, so tests and other programs can
//! run the same code.

pub mod run;
