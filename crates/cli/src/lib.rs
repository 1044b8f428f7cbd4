//! The work of `lstm-run` and `lstm-convert`, as a library the two thin
//! binaries in `src/bin/` (and the benchmarks in `benches/`) call. Not an
//! embedding API: embedders use the `lstmrt` crate, which has none of this
//! crate's dependencies (argument parsing, JSON).

pub mod args;
pub mod audio;
pub mod bench;
pub mod chunked;
pub mod data;
pub mod exit;
pub mod generate;
pub mod info;
pub mod predict;
pub mod roofline;
pub mod run;
pub mod session;
pub mod sigbus;
pub mod trace;
