//! The model file, format v1: constants, the tensor directory, reading with
//! validation ([`parse`]) and atomic writing ([`encode`], [`atomic_write`]).
//!
//! `format-spec.md` at the repository root is the normative description; this
//! module is one implementation of it. Layout of a file:
//!
//! ```text
//! [0, 64)            header (magic, version, flags, file length, section table place, CRC32C)
//! [64, 64+32n)       section table: n entries of 32 bytes
//! ...                metadata section (bincode), tensor directory section (bincode)
//! ...                tensor data section, 64-byte aligned, each tensor 64-byte aligned
//! ```

/// Defines `From<Enum> for u32`, `TryFrom<u32> for Enum` and `Enum::ALL` (every
/// value, in code order) from one code table, so the codes written and the
/// codes read cannot drift apart. Before the modules: they use it.
macro_rules! wire_codes {
    ($ty:ident, $what:literal, { $($variant:ident = $code:literal),+ $(,)? }) => {
        impl From<$ty> for u32 {
            fn from(v: $ty) -> u32 {
                match v { $($ty::$variant => $code),+ }
            }
        }
        impl TryFrom<u32> for $ty {
            type Error = String;
            fn try_from(code: u32) -> Result<$ty, String> {
                match code {
                    $($code => Ok($ty::$variant),)+
                    other => Err(format!(concat!("unknown ", $what, " code {}"), other)),
                }
            }
        }
        impl $ty {
            /// Every value, in code order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
        }
    };
}

mod arch;
mod error;
mod file;
pub mod limits;
mod meta;
pub mod panel;
mod read;
pub mod stages;
mod write;

pub use arch::{Architecture, CellKind};
pub use error::{Error, IoError};
pub use file::{ReadFiles, check_output_place, open_regular, read_regular};
pub use limits::FileLimit;
pub use meta::{Embedding, Head, HeadActivation, HeadTask, KeyValue, Metadata, Provenance, Tokenizer, Vocabulary};
pub use read::{FileInfo, parse, verify_tensor};
pub use stages::{
    Chain, ChunkBuffers, MAX_STREAM_FLOATS, Padding, Stage, StageActivation, StageKind, StageShape, Stages, StagesPlan,
};
pub use write::{
    RawSection, TensorBytes, assemble, assemble_with_flags, atomic_write, encode, encode_directory, seal_header,
};

use serde::{Deserialize, Serialize};

/// The first 8 bytes of every model file: `\x89LSTMRT\n`. The high first byte
/// and the newline catch transfers that mangle 8-bit bytes or line endings.
pub const MAGIC: [u8; 8] = *b"\x89LSTMRT\n";
/// Major version written and read; files with another major version are refused.
pub const VERSION_MAJOR: u16 = 1;
/// Highest minor version this reader knows; newer minor versions are read,
/// skipping what is unknown. Files are written with the lowest minor version
/// whose features they use. 1.1 added int8 weights (dtype `i8`, layout `panel16x4`, required flag [`flags::INT8`]);
/// 1.2 stored initial states (`initial_h_l*`, `initial_c_l*`, required flag [`flags::INITIAL_STATE`]);
/// 1.3 added the stages section ([`section::STAGES`], marked required).
pub const VERSION_MINOR: u16 = 3;
/// Size of the fixed header in bytes.
pub const HEADER_SIZE: usize = 64;
/// Size in bytes of one section table entry as written by v1.0.
pub const SECTION_ENTRY_SIZE: usize = 32;
/// Most section table entries a reader accepts.
pub const MAX_SECTIONS: u32 = 64;
/// Alignment in bytes of the tensor data section and of every tensor.
pub const ALIGN: u64 = 64;
/// Most dimensions a tensor may have.
pub const MAX_RANK: usize = 8;
/// Most input indices (`K`) an int8 matrix may have: below 65793 the i32
/// sums of `u8 x s8` products cannot overflow (`255 * 128 * K < 2^31`).
pub const MAX_INT8_K: usize = 65536;

/// Bits of the header's `required_flags`: a reader refuses a file that sets
/// one it does not know, so a file using one never runs wrong on an older reader.
pub mod flags {
    /// Every layer runs from the last timestep to the first (ONNX
    /// `direction = "reverse"`): [`super::Architecture::reverse`].
    pub const REVERSE: u64 = 1;
    /// Some weight matrices are int8 with per-row scales (format 1.1): a
    /// 1.0 reader refuses the file here rather than meet dtype code 3.
    pub const INT8: u64 = 2;
    /// The file stores the state every sequence starts from (format 1.2):
    /// an older reader refuses it rather than start from zeros.
    pub const INITIAL_STATE: u64 = 4;
    /// Every required flag this reader knows.
    pub const KNOWN_REQUIRED: u64 = REVERSE | INT8 | INITIAL_STATE;
}

/// Section kinds in the section table.
pub mod section {
    pub const METADATA: u32 = 1;
    pub const TENSOR_DIRECTORY: u32 = 2;
    pub const TENSOR_DATA: u32 = 3;
    /// The front-end and head of a chunked model (format 1.3), always
    /// written with [`FLAG_REQUIRED`]: an older reader refuses the file
    /// rather than run the stack on raw samples.
    pub const STAGES: u32 = 4;
    /// Flag bit: a reader that does not know this section's kind must refuse the file.
    pub const FLAG_REQUIRED: u32 = 1;

    /// A human name for error messages.
    pub fn name(kind: u32) -> String {
        match kind {
            METADATA => "metadata".into(),
            TENSOR_DIRECTORY => "tensor directory".into(),
            TENSOR_DATA => "tensor data".into(),
            STAGES => "stages".into(),
            other => format!("kind-{other}"),
        }
    }
}

/// The bincode configuration of the metadata and tensor directory sections:
/// little-endian, fixed-width integers (u32 as 4 bytes, u64/usize/lengths as 8),
/// no limit (lengths are checked against the bytes present instead).
pub fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_little_endian().with_fixed_int_encoding()
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    /// Symmetric int8 with one f32 scale per output row, in the `panel16x4`
    /// layout only; the scales are the f32 tensor `<name>.scale`.
    I8,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I8 => 1,
        }
    }

    /// The code stored in the tensor directory.
    pub fn code(self) -> u32 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::BF16 => 2,
            DType::I8 => 3,
        }
    }

    /// Every dtype, in code order.
    pub const ALL: [DType; 4] = [DType::F32, DType::F16, DType::BF16, DType::I8];

    pub fn from_code(code: u32) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I8 => "int8",
        }
    }

    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// How a tensor's elements are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Row-major in PyTorch's shape and gate order (`i, f, g, o` for LSTM).
    Canonical,
    /// Weight matrices packed for the kernels: shape `[panels, K, G, 16]`, for
    /// each panel of 16 units and each input index the 16 weights of every
    /// gate side by side (see [`panel`] and `format-spec.md` 5.1).
    Panel16,
    /// int8 weight matrices: shape `[panels, ceil(K/4), G, 16, 4]`, four
    /// consecutive input indices in each 32-bit lane (what `vpdpbusd`
    /// multiplies), 16 units of a gate per 64 bytes, the gates of a panel
    /// side by side (see [`panel::pack_i8`] and `format-spec.md` 5.2).
    Panel16x4,
}

impl Layout {
    pub fn code(self) -> u32 {
        match self {
            Layout::Canonical => 0,
            Layout::Panel16 => 1,
            Layout::Panel16x4 => 2,
        }
    }

    pub fn from_code(code: u32) -> Option<Layout> {
        [Layout::Canonical, Layout::Panel16, Layout::Panel16x4].into_iter().find(|l| l.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            Layout::Canonical => "canonical",
            Layout::Panel16 => "panel16",
            Layout::Panel16x4 => "panel16x4",
        }
    }
}

/// One entry of the tensor directory as encoded in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[doc(hidden)]
pub struct DirectoryEntry {
    #[serde(deserialize_with = "meta::borrowed::string")]
    pub name: String,
    pub dtype: u32,
    pub layout: u32,
    pub shape: Vec<u64>,
    /// Absolute byte offset in the file.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// CRC32C of the tensor's bytes.
    pub crc32c: u32,
}

/// A validated tensor directory entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    pub layout: Layout,
    pub shape: Vec<u64>,
    /// Absolute byte offset in the file (a multiple of 64).
    pub offset: u64,
    /// Length in bytes (exactly elements times dtype size).
    pub length: u64,
    pub crc32c: u32,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> usize {
        (self.length / self.dtype.size()) as usize
    }
}

/// Tensor names. One place, so the writer, the reader and the importers agree.
pub mod names {
    fn suffix(direction: usize) -> &'static str {
        if direction == 1 { "_reverse" } else { "" }
    }
    pub fn weight_ih(layer: usize, direction: usize) -> String {
        format!("weight_ih_l{layer}{}", suffix(direction))
    }
    pub fn weight_hh(layer: usize, direction: usize) -> String {
        format!("weight_hh_l{layer}{}", suffix(direction))
    }
    pub fn bias_ih(layer: usize, direction: usize) -> String {
        format!("bias_ih_l{layer}{}", suffix(direction))
    }
    pub fn bias_hh(layer: usize, direction: usize) -> String {
        format!("bias_hh_l{layer}{}", suffix(direction))
    }
    pub fn weight_hr(layer: usize, direction: usize) -> String {
        format!("weight_hr_l{layer}{}", suffix(direction))
    }
    /// Peephole weights `[3, hidden]`, rows for the gates `i, f, o`.
    pub fn weight_peephole(layer: usize, direction: usize) -> String {
        format!("weight_peephole_l{layer}{}", suffix(direction))
    }
    /// The per-row f32 scales `[rows]` of int8 matrix `matrix`.
    pub fn scale(matrix: &str) -> String {
        format!("{matrix}.scale")
    }
    /// The `h` every sequence starts from in this layer and direction, `[P]` (format 1.2).
    pub fn initial_h(layer: usize, direction: usize) -> String {
        format!("initial_h_l{layer}{}", suffix(direction))
    }
    /// The `c` every sequence starts from (LSTM), `[hidden]` (format 1.2).
    pub fn initial_c(layer: usize, direction: usize) -> String {
        format!("initial_c_l{layer}{}", suffix(direction))
    }
    pub const EMBEDDING: &str = "embedding.weight";
    pub const HEAD_WEIGHT: &str = "head.weight";
    pub const HEAD_BIAS: &str = "head.bias";
}

/// A tensor the metadata calls for, with its canonical shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedTensor {
    pub name: String,
    pub shape: Vec<u64>,
    /// Optional tensors (biases) may be absent, meaning zeros.
    pub required: bool,
    /// For weight matrices that may be stored in the panel16 layout: `(gates,
    /// units per gate)`; the packed shape is `[ceil(units/16), shape[1], gates, 16]`.
    pub packable: Option<(usize, usize)>,
}

impl ExpectedTensor {
    /// The shape the tensor must have when stored in `layout`.
    pub fn shape_in(&self, layout: Layout) -> Option<Vec<u64>> {
        match (layout, self.packable) {
            (Layout::Canonical, _) => Some(self.shape.clone()),
            (Layout::Panel16, Some((gates, n))) => {
                Some(crate::panel::packed_shape(gates, n, self.shape[1] as usize).to_vec())
            }
            (Layout::Panel16x4, Some((gates, n))) => {
                Some(crate::panel::packed_shape_i8(gates, n, self.shape[1] as usize).to_vec())
            }
            (Layout::Panel16 | Layout::Panel16x4, None) => None,
        }
    }
}

/// The optional initial-state tensors of `meta` (format 1.2): per layer and
/// direction, `initial_h` `[P]` and, for LSTM, `initial_c` `[hidden]`; f32,
/// canonical. Absent means zeros. Not part of [`expected_tensors`]: a file
/// that stores one sets [`flags::INITIAL_STATE`].
pub fn initial_state_tensors(meta: &Metadata) -> Vec<ExpectedTensor> {
    let arch = &meta.architecture;
    let mut v = Vec::new();
    for layer in 0..arch.layers() {
        for dir in 0..arch.directions() {
            let shape = vec![arch.output_size() as u64];
            v.push(ExpectedTensor { name: names::initial_h(layer, dir), shape, required: false, packable: None });
            if arch.has_cell_state() {
                let shape = vec![arch.hidden_size as u64];
                v.push(ExpectedTensor { name: names::initial_c(layer, dir), shape, required: false, packable: None });
            }
        }
    }
    v
}

/// Every tensor the metadata calls for, in the order the writer stores them.
pub fn expected_tensors(meta: &Metadata) -> Vec<ExpectedTensor> {
    let arch = &meta.architecture;
    let g = arch.cell.gates() as u64;
    let h = arch.hidden_size as u64;
    let out = arch.output_size() as u64;
    let mut v = Vec::new();
    let gh = (g as usize, h as usize);
    let mut push = |name: String, shape: Vec<u64>, required: bool, packable: Option<(usize, usize)>| {
        v.push(ExpectedTensor { name, shape, required, packable })
    };
    if let Some(e) = &meta.embedding {
        push(names::EMBEDDING.into(), vec![e.num_embeddings as u64, arch.input_size as u64], true, None);
    }
    for layer in 0..arch.layers() {
        for dir in 0..arch.directions() {
            let input = arch.layer_input_size(layer) as u64;
            push(names::weight_ih(layer, dir), vec![g * h, input], true, Some(gh));
            push(names::weight_hh(layer, dir), vec![g * h, out], true, Some(gh));
            push(names::bias_ih(layer, dir), vec![g * h], false, None);
            push(names::bias_hh(layer, dir), vec![g * h], false, None);
            if arch.proj_size > 0 {
                push(names::weight_hr(layer, dir), vec![out, h], true, Some((1, out as usize)));
            }
            if arch.peepholes {
                push(names::weight_peephole(layer, dir), vec![3, h], true, None);
            }
        }
    }
    if let Some(head) = &meta.head {
        let o = head.out_features as u64;
        push(names::HEAD_WEIGHT.into(), vec![o, arch.sequence_output_size() as u64], true, None);
        push(names::HEAD_BIAS.into(), vec![o], false, None);
    }
    if let (Some(stages), Some(plan)) = (&meta.stages, meta.stages_plan()) {
        for (name, shape, required, rows) in stages::stage_tensors(stages, &plan) {
            push(name, shape, required, rows.map(|n| (1, n)));
        }
    }
    v
}
