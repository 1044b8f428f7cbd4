//! Importers: bring trained models in from other frameworks, normalised to
//! canonical [`lstmrt::Weights`] plus [`lstmrt_format::Metadata`]. The runtime
//! never sees a foreign layout.

pub mod arch;
pub mod convert;
mod error;
pub mod keras;
pub mod npy;
pub mod onnx;
pub mod pickle;
pub mod protobuf;
pub mod pytorch;
pub mod torch_save;

use lstmrt_format::{CellKind, HeadActivation};

pub use error::{ImportError, ImportErrorKind, NodeId};

/// What a conversion found worth telling the user: parts of the source that
/// were not converted, inputs to feed at run time.
pub type Notes = Vec<String>;

/// Choices a source file cannot express, given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The cell, when it cannot be inferred (`nn.RNN` with ReLU looks like tanh).
    pub cell: Option<CellKind>,
    /// Module prefix of the recurrent layer, when the file holds several.
    pub prefix: Option<String>,
    /// Module name of the `nn.Embedding` in front (`embed` for `embed.weight`).
    pub embedding: Option<String>,
    /// Module name of the `nn.Linear` after the stack.
    pub head: Option<String>,
    /// Activation of the head.
    pub head_activation: Option<HeadActivation>,
    /// The stages around the recurrent module (`--arch`).
    pub arch: Option<arch::Arch>,
}

/// A named tensor read from a source file, widened to f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Rearranges gate blocks of `block` values each: block `k` of the result is
/// block `order[k]` of `data`. Importers use it to bring a framework's gate
/// order into the canonical one (LSTM `i, f, g, o`, GRU `r, z, n`).
pub(crate) fn reorder_gates(data: &[f32], order: &[usize], block: usize) -> Vec<f32> {
    order.iter().flat_map(|&k| data[k * block..][..block].iter().copied()).collect()
}
