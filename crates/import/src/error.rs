//! The one error type of the importers: which source file, and what is wrong
//! with it.

use std::fmt;
use std::path::PathBuf;

use crate::convert::{Family, SourceKind};
use crate::npy::NpyError;
use crate::pickle::{PickleError, StateDictError};
use crate::protobuf::DecodeError;
use lstmrt_format::{CellKind, IoError};

/// What is wrong with a source file: the file, and the [`ImportErrorKind`]
/// naming the tensor, node or layer at fault. Displays as `{file}: {kind}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportError {
    /// The source file, as it was given.
    pub file: PathBuf,
    /// What is wrong with it.
    pub kind: ImportErrorKind,
}

impl ImportError {
    /// The error `kind` found in the source file `file`.
    pub fn new(file: impl Into<PathBuf>, kind: ImportErrorKind) -> Self {
        ImportError { file: file.into(), kind }
    }

    /// The source file `file` could not be read.
    pub fn io(file: impl Into<PathBuf>, err: std::io::Error) -> Self {
        ImportError::new(file, ImportErrorKind::Io { source: err.into() })
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.kind)
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

/// An ONNX node, as errors name it: ``LSTM node `lstm_0` ``, or `LSTM node #3`
/// when the node has no name. Boxed, so that the errors naming two or three
/// nodes stay as small as the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeId(Box<Node>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    op_type: String,
    name: String,
    index: usize,
}

impl NodeId {
    pub fn new(op_type: impl Into<String>, name: impl Into<String>, index: usize) -> Self {
        NodeId(Box::new(Node { op_type: op_type.into(), name: name.into(), index }))
    }

    /// The node's operator (`LSTM`, `Transpose`, ...).
    pub fn op_type(&self) -> &str {
        &self.0.op_type
    }

    /// The node's name; empty when the model gives none.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Position of the node in the graph.
    pub fn index(&self) -> usize {
        self.0.index
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Node { op_type, name, index } = &*self.0;
        if name.is_empty() { write!(f, "{op_type} node #{index}") } else { write!(f, "{op_type} node `{name}`") }
    }
}

/// What is wrong with a source file (the file itself is in [`ImportError`]).
///
/// Every variant names the tensor, node, layer or archive entry at fault and
/// the values that make it wrong; `reason` fields hold the human part. Where
/// a variant's doc says "`reason` is the whole message", it is displayed as is.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ImportErrorKind {
    // ---------------------------------------------------------- any source
    /// The file could not be read.
    Io { source: IoError },
    /// The content is not a kind of file this importer reads (`reason` is the whole message).
    UnknownFormat { reason: String },
    /// A zip archive that is neither a `torch.save` file nor a Keras export.
    UnknownArchive { entries: Vec<String> },
    /// A recognised kind of file that cannot be converted, such as HDF5 or an
    /// lstmrt model (`what` is the whole message).
    Unsupported { what: String },
    /// `--from` names another framework than the content is from.
    WrongFamily { from: Family, kind: SourceKind },
    /// An option that only applies to PyTorch state dicts was given for another file.
    PyTorchOnly { option: &'static str, family: Family },
    /// The zip container (of a `torch.save` file or a Keras export) is corrupt
    /// or an entry cannot be read (`reason` is the whole message).
    Archive { reason: String },
    /// The source has no recurrent layer at all (`reason` is the whole message).
    NotRecurrent { reason: String },
    /// The architecture description does not fit the state dict (`reason`
    /// names the stage and the tensor).
    Arch { reason: String },
    /// The canonical weights built from the source fail validation.
    Model { source: lstmrt_format::Error },

    // ---------------------------------------------------------- PyTorch
    /// The safetensors header or data cannot be read.
    Safetensors { reason: String },
    /// The pickle in a `torch.save` zip entry was refused.
    Pickle { entry: String, source: PickleError },
    /// One of the pickles of a legacy `torch.save` file was refused.
    LegacyPickle { part: &'static str, offset: usize, source: PickleError },
    /// The pickled object is not a state dict (`entry` is its zip entry, if any).
    StateDict { entry: Option<String>, source: StateDictError },
    /// The `byteorder` entry of a `torch.save` zip says neither `little` nor `big`.
    ByteOrder { entry: String, found: String },
    /// The framing of a legacy `torch.save` file is malformed (`reason` is the whole message).
    Legacy { reason: String },
    /// A storage record of a legacy `torch.save` file lies outside the file.
    Storage { key: String, offset: usize, reason: String },
    /// A tensor's storage or view is missing, short or malformed.
    Tensor { name: String, reason: String },
    /// The architecture needs a tensor the state dict does not have.
    MissingTensor { name: String },
    /// A tensor's shape is not the one its role needs.
    TensorShape { name: String, shape: Vec<usize>, expected: String },
    /// A tensor's dimensions do not fit the sizes the other tensors imply
    /// (rows per gate, projection size).
    Dimensions { name: String, reason: String },
    /// The number of gate blocks does not fit the cell asked for with `--cell`.
    CellMismatch { gates: usize, cell: CellKind },
    /// `--prefix` names no recurrent module.
    NoSuchPrefix { prefix: String, found: Vec<String> },
    /// The state dict holds several recurrent modules and no `--prefix` chose one.
    SeveralRecurrentModules { prefixes: Vec<String> },
    /// The tensor named for the embedding or head does not fit that role.
    ModuleShape { tensor: String, shape: Vec<usize>, role: &'static str },
    /// The tensor named for the embedding or head is not in the state dict.
    NoModule { tensor: String, role: &'static str },
    /// Several modules could be the embedding or head and none was named.
    AmbiguousModule { role: &'static str, candidates: Vec<String> },

    // ---------------------------------------------------------- ONNX
    /// The model is not a valid protobuf `ModelProto`.
    Protobuf { source: DecodeError },
    /// A constant tensor (initializer or `Constant` value) has a bad shape,
    /// type or size. `tensor` is empty for an unnamed constant.
    Constant { tensor: String, reason: String },
    /// A tensor's external data is refused (location outside the model's
    /// folder, bad offset or length).
    ExternalData { tensor: String, reason: String },
    /// A tensor's external data file (or the model's folder) cannot be read;
    /// `what` says which (`external data file`, `model folder`).
    ExternalDataIo { tensor: String, what: &'static str, path: PathBuf, source: IoError },
    /// A `Constant` node has no value attribute this importer reads.
    ConstantWithoutValue { node: NodeId },
    /// The recurrent nodes do not form one stack fed by a graph input
    /// (`reason` is the whole message).
    Graph { reason: String },
    /// Two recurrent nodes both read the graph input.
    SeveralStacks { first: NodeId, second: NodeId },
    /// A recurrent node feeds two others.
    Branching { node: NodeId, first: NodeId, second: NodeId },
    /// A layer of the stack has other settings than the first.
    NodesDiffer { node: NodeId, layer: usize, first: NodeId },
    /// A layer takes another number of inputs than the layer before gives.
    LayerInput { node: NodeId, input: usize, expected: usize },
    /// A recurrent node's `X` is neither a graph input nor computed.
    UnknownInput { node: NodeId, input: String },
    /// A recurrent node reads a final state of another instead of its `Y`.
    ReadsFinalState { node: NodeId, producer: NodeId, output: usize },
    /// An op other than a shape op stands between two layers.
    BetweenLayers { node: NodeId, producer: NodeId },
    /// The transposes between two layers would interleave the directions wrongly
    /// (`expected` is `None` when none may stand there, or the one permutation needed).
    Transposes { from: NodeId, to: NodeId, expected: Option<Vec<i64>>, found: Vec<Vec<i64>> },
    /// A recurrent node is not in the default ONNX domain.
    Domain { node: NodeId, domain: String },
    /// A recurrent node has an attribute or input this importer refuses.
    Node { node: NodeId, reason: String },
    /// A recurrent node's initial state is neither zeros nor a graph input.
    InitialState { node: NodeId, input: &'static str, name: String, reason: String },

    // ---------------------------------------------------------- Keras
    /// A `.npy` member of the `.npz` export cannot be read.
    Npy { member: String, source: NpyError },
    /// The export's config is not JSON.
    Json { reason: String },
    /// The export's config is not one this importer reads (`reason` is the whole message).
    Config { reason: String },
    /// A layer refers to an array the export does not have.
    MissingArray { layer: String, array: String },
    /// A layer has no weights, or no kernel.
    MissingWeights { layer: String, what: &'static str },
    /// A layer follows one that returns only its last step.
    LastStepNotLast { layer: String, next: String },
    /// A layer of a class the importer does not convert.
    UnsupportedLayer { layer: String, class: String },
    /// A layer of the stack has other settings than the first.
    LayersDiffer { layer: String, first: String },
    /// A weight array of a layer has the wrong shape.
    WeightShape { layer: String, weight: &'static str, shape: Vec<usize>, expected: Vec<usize> },
    /// A layer has a setting or weights this importer refuses.
    Layer { layer: String, reason: String },
}

/// `tensor `W`` or, for an unnamed ONNX constant, `a constant tensor`.
struct OnnxTensor<'a>(&'a str);

impl fmt::Display for OnnxTensor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("a constant tensor") } else { write!(f, "tensor `{}`", self.0) }
    }
}

impl fmt::Display for ImportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ImportErrorKind::*;
        match self {
            Io { source } => source.fmt(f),
            UnknownFormat { reason } => f.write_str(reason),
            UnknownArchive { entries } => {
                let mut shown: Vec<&str> = entries.iter().take(5).map(String::as_str).collect();
                if entries.len() > 5 {
                    shown.push("...");
                }
                write!(f, "a zip archive that is not a torch.save file (entries: {})", shown.join(", "))
            }
            Unsupported { what } => f.write_str(what),
            WrongFamily { from, kind } => write!(
                f,
                "--from {} was given, but the file is a {} file ({})",
                from.name(),
                kind.family().name(),
                kind.name()
            ),
            PyTorchOnly { option, family } => {
                write!(f, "{option} applies to PyTorch state dicts; this is a {} file", family.name())
            }
            Archive { reason } => f.write_str(reason),
            NotRecurrent { reason } => f.write_str(reason),
            Arch { reason } => write!(f, "--arch: {reason}"),
            Model { source } => source.fmt(f),

            Safetensors { reason } => write!(f, "not a valid safetensors file: {reason}"),
            Pickle { entry, source } => write!(f, "{entry}: {source}"),
            LegacyPickle { part, offset, source } => write!(f, "legacy torch.save {part} at byte {offset}: {source}"),
            StateDict { entry: Some(entry), source } => write!(f, "{entry}: {source}"),
            StateDict { entry: None, source } => source.fmt(f),
            ByteOrder { entry, found } => write!(f, "`{entry}` says {found:?}, expected little or big"),
            Legacy { reason } => f.write_str(reason),
            Storage { key, offset, reason } => write!(f, "storage `{key}` at byte {offset}: {reason}"),
            Tensor { name, reason } => write!(f, "tensor `{name}`: {reason}"),
            MissingTensor { name } => write!(f, "missing tensor `{name}`"),
            TensorShape { name, shape, expected } => {
                write!(f, "tensor `{name}` has shape {shape:?}, expected {expected}")
            }
            Dimensions { name, reason } => write!(f, "`{name}` {reason}"),
            CellMismatch { gates, cell } => {
                write!(f, "the weights have {gates} gate blocks, which does not fit the requested cell {}", cell.name())
            }
            NoSuchPrefix { prefix, found } => {
                write!(f, "no recurrent parameters under prefix `{prefix}` (found: {found:?})")
            }
            SeveralRecurrentModules { prefixes } => {
                write!(f, "several recurrent modules ({prefixes:?}); choose one with --prefix")
            }
            ModuleShape { tensor, shape, role } => {
                write!(f, "`{tensor}` has shape {shape:?}, which does not fit as the {role}")
            }
            NoModule { tensor, role } => write!(f, "no tensor `{tensor}` for the {role}"),
            AmbiguousModule { role, candidates } => {
                write!(f, "several tensors could be the {role} ({}); name one with --{role}", candidates.join(", "))
            }

            Protobuf { source } => write!(f, "not a valid ONNX model: {source}"),
            Constant { tensor, reason } => write!(f, "{} {reason}", OnnxTensor(tensor)),
            ExternalData { tensor, reason } => write!(f, "{}: {reason}", OnnxTensor(tensor)),
            ExternalDataIo { tensor, what, path, source } => {
                write!(f, "{}: {what} {}: {source}", OnnxTensor(tensor), path.display())
            }
            ConstantWithoutValue { node } => write!(f, "{node} has no value this importer reads"),
            Graph { reason } => f.write_str(reason),
            SeveralStacks { first, second } => {
                write!(f, "{first} and {second} both read the graph input: several recurrent stacks are not supported")
            }
            Branching { node, first, second } => {
                write!(f, "{node} feeds both {first} and {second}: branching graphs are not supported")
            }
            NodesDiffer { node, layer, first } => write!(
                f,
                "{node} (layer {layer}) differs from {first} in cell, direction, hidden size, clip, input_forget or \
                 linear_before_reset: a model file has one setting for all layers"
            ),
            LayerInput { node, input, expected } => {
                write!(f, "{node} takes {input} inputs, but the layer before gives {expected}")
            }
            UnknownInput { node, input } => {
                write!(f, "input X `{input}` of {node} is neither a graph input nor computed")
            }
            ReadsFinalState { node, producer, output } => {
                write!(f, "{node} reads output {output} of {producer} (a final state), expected its Y")
            }
            BetweenLayers { node, producer } => write!(
                f,
                "input X of {node} comes from {producer}: only Transpose, Reshape, Squeeze, Unsqueeze, Identity or \
                 Flatten may stand between layers"
            ),
            Transposes { from, to, expected, found } => {
                write!(f, "between {from} and {to}: expected ")?;
                match expected {
                    None => f.write_str("no Transpose")?,
                    Some(perm) => write!(f, "one Transpose with perm {perm:?}")?,
                }
                write!(f, " but found transposes {found:?}")
            }
            Domain { node, domain } => {
                write!(f, "{node} is in domain `{domain}`, expected the default ONNX domain")
            }
            Node { node, reason } => write!(f, "{node}: {reason}"),
            InitialState { node, input, name, reason } => write!(f, "{node}: {input} `{name}` {reason}"),

            Npy { member, source } => write!(f, ".npz member `{member}`: {source}"),
            Json { reason } => write!(f, "{} is not valid JSON: {reason}", crate::keras::CONFIG),
            Config { reason } => f.write_str(reason),
            MissingArray { layer, array } => write!(f, "layer `{layer}`: array `{array}` is missing"),
            MissingWeights { layer, what } => write!(f, "layer `{layer}` has no {what}"),
            LastStepNotLast { layer, next } => write!(
                f,
                "layer `{layer}` returns only its last step, but layer `{next}` follows it: only a stack of \
                 sequence-returning layers can be converted"
            ),
            UnsupportedLayer { layer, class } => write!(
                f,
                "layer `{layer}` ({class}) is not supported here: lstm-convert takes an optional Embedding, then \
                 LSTM, GRU or SimpleRNN layers (or Bidirectional ones), then an optional Dense"
            ),
            LayersDiffer { layer, first } => write!(
                f,
                "layer `{layer}` differs from layer `{first}` in class, units, activation, Bidirectional or \
                 reset_after: a model file has one setting for all layers"
            ),
            WeightShape { layer, weight, shape, expected } => {
                write!(f, "layer `{layer}`: {weight} has shape {shape:?}, expected {expected:?}")
            }
            Layer { layer, reason } => write!(f, "layer `{layer}`: {reason}"),
        }
    }
}

impl std::error::Error for ImportErrorKind {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        use ImportErrorKind::*;
        match self {
            Io { source } | ExternalDataIo { source, .. } => Some(source),
            Model { source } => Some(source),
            Pickle { source, .. } | LegacyPickle { source, .. } => Some(source),
            StateDict { source, .. } => Some(source),
            Protobuf { source } => Some(source),
            Npy { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn node(name: &str, index: usize) -> NodeId {
        NodeId::new("LSTM", name, index)
    }

    #[test]
    fn nodes_are_named_by_name_or_by_position() {
        assert_eq!(node("lstm_0", 3).to_string(), "LSTM node `lstm_0`");
        assert_eq!(node("", 3).to_string(), "LSTM node #3");
    }

    #[test]
    fn an_unknown_archive_shows_its_first_five_entries() {
        let entries = ["a", "b", "c", "d", "e", "f"].map(String::from).to_vec();
        let e = ImportErrorKind::UnknownArchive { entries };
        assert_eq!(e.to_string(), "a zip archive that is not a torch.save file (entries: a, b, c, d, e, ...)");
    }

    #[test]
    fn transposes_between_layers_say_what_was_expected() {
        let e = ImportErrorKind::Transposes {
            from: node("a", 0),
            to: node("b", 1),
            expected: Some(vec![0, 2, 1, 3]),
            found: vec![],
        };
        assert_eq!(
            e.to_string(),
            "between LSTM node `a` and LSTM node `b`: expected one Transpose with perm [0, 2, 1, 3] but found \
             transposes []"
        );
        let e = ImportErrorKind::Transposes {
            from: node("a", 0),
            to: node("b", 1),
            expected: None,
            found: vec![vec![1, 0]],
        };
        assert!(e.to_string().ends_with("expected no Transpose but found transposes [[1, 0]]"), "{e}");
    }

    #[test]
    fn the_source_is_the_inner_error_when_there_is_one() {
        let inner = lstmrt_format::Error::MissingTensor { name: "weight_hh_l0".into() };
        let e = ImportError::new("m.onnx", ImportErrorKind::Model { source: inner.clone() });
        assert_eq!(e.to_string(), format!("m.onnx: {inner}"));
        let source = e.source().expect("a source");
        assert_eq!(source.downcast_ref::<lstmrt_format::Error>(), Some(&inner));
        let e = ImportError::new("m.onnx", ImportErrorKind::Node { node: node("x", 0), reason: "r".into() });
        assert!(e.source().is_none());
    }
}
