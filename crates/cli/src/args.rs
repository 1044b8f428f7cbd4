//! Command-line values the three tools share.

use clap::ValueEnum;
use lstmrt_format::DType;

/// A weight dtype as `--dtype` names it (`lstm-convert`, `lstm-train`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DTypeArg {
    F32,
    F16,
    Bf16,
    /// Symmetric int8 weights with one f32 scale per row (W_ih, W_hh, W_hr)
    Int8,
}

impl DTypeArg {
    /// The file format's dtype.
    pub fn dtype(self) -> DType {
        match self {
            DTypeArg::F32 => DType::F32,
            DTypeArg::F16 => DType::F16,
            DTypeArg::Bf16 => DType::BF16,
            DTypeArg::Int8 => DType::I8,
        }
    }
}
