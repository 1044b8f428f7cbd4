//! ONNX models with `LSTM`, `GRU` and `RNN` nodes.
//!
//! The model is read with the wire-format decoder in [`super::protobuf`]; only
//! the fields needed are looked at (graph nodes, attributes, initializers,
//! `Constant` nodes, graph inputs). Each recurrent node is one layer; stacked
//! layers are found by tracing each node's input `X` back through the shape
//! operations exporters put between layers (`Squeeze`, `Transpose`,
//! `Reshape`, ...) to the previous node's `Y` or to a graph input.
//!
//! Mapping to the canonical (PyTorch) form:
//!
//! - LSTM gate blocks `i, o, f, c` become `i, f, g, o`; GRU `z, r, h` become
//!   `r, z, n`; `B = [Wb; Rb]` splits into `bias_ih` and `bias_hh`.
//! - Peepholes `P = [Pi, Po, Pf]` become rows `i, f, o`.
//! - `clip`, `input_forget` and GRU `linear_before_reset` map to the
//!   [`Architecture`] fields of the same names (the reference engine implements
//!   ONNX's semantics for them; the fixtures check it against ONNX Runtime).
//! - `layout = 1` (batch-major tensors) changes only the shapes of `X` and `Y`:
//!   the converted model takes `[steps, batch, input]` like every lstmrt model.
//!
//! - `direction = "reverse"` (every node of the stack) maps to
//!   [`Architecture::reverse`]: the model then reads whole sequences from the
//!   end and refuses single steps.
//!
//! - `sequence_lens` from a graph input maps to the lengths the caller passes
//!   at run time (`Model::run_lengths`, `lstm-run --lengths`), with a note; a
//!   constant one that is the input's whole static length changes nothing.
//! - Constant `initial_h`/`initial_c` whose batch rows are equal are stored
//!   in the file (format 1.2): every sequence starts from them.
//!
//! Refused, with the node and attribute named: activations
//! other than the defaults (RNN may use `Relu`), `activation_alpha/beta`,
//! other constant `sequence_lens`, constant initial states whose batch rows
//! differ (set them at run time with `State::set_h`/`set_c`), layers that
//! differ in hidden size or options, and external data whose `location`
//! leaves the model's folder.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::protobuf::{DecodeError, Field, Reader};
use super::{ImportError, ImportErrorKind, NodeId, Notes, reorder_gates};
use ImportErrorKind as E;
use lstmrt::{LayerWeights, Weights};
use lstmrt_format::{Architecture, CellKind, Metadata};

/// Whether `bytes` parse as a protobuf message with the fields every ONNX
/// `ModelProto` has: `ir_version` (1, varint) and `graph` (7, message).
pub fn is_onnx(bytes: &[u8]) -> bool {
    let (mut ir_version, mut graph) = (false, false);
    for field in Reader::new(bytes) {
        let Ok(field) = field else { return false };
        match field.number {
            1 => ir_version |= field.varint().is_ok(),
            7 => graph |= field.bytes().is_ok(),
            _ => {}
        }
    }
    ir_version && graph
}

/// Converts the recurrent stack of an ONNX model. `path` locates external data files.
pub fn import(bytes: &[u8], path: &Path) -> Result<(Metadata, Weights, Notes), ImportError> {
    let fail = |kind| ImportError::new(path, kind);
    let model = parse_model(bytes).map_err(|source| fail(E::Protobuf { source }))?;
    let dir = model_dir(path);
    let graph = Graph::new(&model.graph, &dir);
    let (meta, weights, notes) = graph.convert().map_err(fail)?;
    let mut meta = meta;
    if !model.producer.is_empty() {
        meta.provenance.push("onnx.producer", model.producer.clone());
    }
    if let Some(opset) = model.opset {
        meta.provenance.push("onnx.opset", opset.to_string());
    }
    Ok((meta, weights, notes))
}

/// The folder external data is found in: the model's (the current folder
/// for a bare file name, whose parent is empty).
fn model_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The files an ONNX model's external data names (those that exist), so
/// a conversion never writes its output over one of them. Empty for a
/// model that does not parse (its import has refused it already).
pub fn external_files(bytes: &[u8], path: &Path) -> Vec<PathBuf> {
    let Ok(model) = parse_model(bytes) else { return Vec::new() };
    let dir = model_dir(path);
    let mut files: Vec<PathBuf> = Vec::new();
    for t in model.graph.initializers.iter().filter(|t| t.external_location) {
        if let Some((_, location)) = t.external.iter().find(|(k, _)| k == "location") {
            let file = dir.join(location);
            if file.exists() && !files.contains(&file) {
                files.push(file);
            }
        }
    }
    files
}

/// The float initializers of the main graph by name, as a state dict: an
/// ONNX export of a PyTorch module keeps the module's parameter names
/// (`model.decoder.rnn.weight_ih`), so `--arch` can name them. Initializers
/// of other types (shapes, indices) are left out.
pub fn initializers(bytes: &[u8], path: &Path) -> Result<Vec<crate::SourceTensor>, ImportError> {
    let fail = |kind| ImportError::new(path, kind);
    let model = parse_model(bytes).map_err(|source| fail(E::Protobuf { source }))?;
    let dir = model_dir(path);
    let floats = [dtype::FLOAT, dtype::DOUBLE, dtype::FLOAT16, dtype::BFLOAT16];
    let mut out = Vec::new();
    for t in model.graph.initializers.iter().filter(|t| floats.contains(&t.data_type)) {
        let v = t.values(&dir).map_err(fail)?;
        out.push(crate::SourceTensor { name: t.name.clone(), shape: v.shape, data: v.data });
    }
    Ok(out)
}

// ------------------------------------------------------------------ decoding

struct ModelProto<'a> {
    producer: String,
    opset: Option<i64>,
    graph: GraphProto<'a>,
}

#[derive(Default)]
struct GraphProto<'a> {
    nodes: Vec<NodeProto<'a>>,
    initializers: Vec<TensorProto<'a>>,
    inputs: Vec<String>,
    /// Per graph input, its static dimensions where the model declares them
    /// (`None` for a symbolic or missing dimension).
    input_dims: Vec<Vec<Option<u64>>>,
}

#[derive(Default)]
struct NodeProto<'a> {
    name: String,
    op_type: String,
    domain: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    attributes: Vec<AttributeProto<'a>>,
}

#[derive(Default)]
struct AttributeProto<'a> {
    name: String,
    f: Option<f32>,
    i: Option<i64>,
    s: Option<Vec<u8>>,
    t: Option<TensorProto<'a>>,
    floats: Vec<f32>,
    ints: Vec<i64>,
    strings: Vec<Vec<u8>>,
}

#[derive(Default, Clone)]
struct TensorProto<'a> {
    name: String,
    dims: Vec<i64>,
    data_type: u64,
    float_data: Vec<f32>,
    double_data: Vec<f64>,
    int32_data: Vec<i64>,
    int64_data: Vec<i64>,
    raw_data: Option<&'a [u8]>,
    external: Vec<(String, String)>,
    external_location: bool,
}

type Decoded<T> = Result<T, DecodeError>;

fn parse_model(bytes: &[u8]) -> Decoded<ModelProto<'_>> {
    let mut producer = String::new();
    let mut opset = None;
    let mut graph = None;
    for f in Reader::new(bytes) {
        let f = f?;
        match f.number {
            2 => producer = f.string()?,
            7 => graph = Some(parse_graph(&f)?),
            8 => {
                let (mut domain, mut version) = (String::new(), None);
                for g in f.message()? {
                    let g = g?;
                    match g.number {
                        1 => domain = g.string()?,
                        2 => version = Some(g.int64()?),
                        _ => {}
                    }
                }
                if domain.is_empty() || domain == "ai.onnx" {
                    opset = version;
                }
            }
            _ => {}
        }
    }
    let graph = graph.ok_or_else(|| DecodeError { offset: 0, message: "the model has no graph".into() })?;
    Ok(ModelProto { producer, opset, graph })
}

const GRAPH: usize = lstmrt_format::limits::ONNX_GRAPH_ENTRIES;
const NODE: usize = lstmrt_format::limits::ONNX_NODE_ENTRIES;

/// Appends `item` unless `list` already holds `limit` entries: a repeated
/// field of empty entries costs two bytes each in the file but a full
/// struct each in memory, so the counts are capped (`docs/reliability.md`).
fn push_bounded<T>(list: &mut Vec<T>, item: T, limit: usize, what: &str, at: &Field<'_>) -> Decoded<()> {
    if list.len() >= limit {
        return Err(DecodeError { offset: at.offset, message: format!("more than {limit} {what}, the limit") });
    }
    list.push(item);
    Ok(())
}

fn parse_graph<'a>(field: &Field<'a>) -> Decoded<GraphProto<'a>> {
    let mut g = GraphProto::default();
    for f in field.message()? {
        let f = f?;
        match f.number {
            1 => push_bounded(&mut g.nodes, parse_node(&f)?, GRAPH, "nodes in a graph", &f)?,
            5 => push_bounded(&mut g.initializers, parse_tensor(&f)?, GRAPH, "initializers in a graph", &f)?,
            11 => {
                let mut dims = Vec::new();
                for v in f.message()? {
                    let v = v?;
                    match v.number {
                        1 => push_bounded(&mut g.inputs, v.string()?, GRAPH, "graph inputs", &v)?,
                        2 => dims = parse_tensor_dims(&v)?,
                        _ => {}
                    }
                }
                push_bounded(&mut g.input_dims, dims, GRAPH, "graph inputs", &f)?;
            }
            _ => {}
        }
    }
    Ok(g)
}

/// The dimensions of a `TypeProto`'s tensor type (`tensor_type.shape.dim[*].dim_value`).
fn parse_tensor_dims(type_proto: &Field<'_>) -> Decoded<Vec<Option<u64>>> {
    let mut dims = Vec::new();
    for t in type_proto.message()? {
        let t = t?;
        if t.number != 1 {
            continue; // not a tensor type
        }
        for shape in t.message()? {
            let shape = shape?;
            if shape.number != 2 {
                continue;
            }
            for dim in shape.message()? {
                let dim = dim?;
                if dim.number != 1 {
                    continue;
                }
                let mut value = None;
                for d in dim.message()? {
                    let d = d?;
                    if d.number == 1 {
                        value = Some(d.varint()?);
                    }
                }
                dims.push(value);
            }
        }
    }
    Ok(dims)
}

fn parse_node<'a>(field: &Field<'a>) -> Decoded<NodeProto<'a>> {
    let mut n = NodeProto::default();
    for f in field.message()? {
        let f = f?;
        match f.number {
            1 => push_bounded(&mut n.inputs, f.string()?, NODE, "inputs of a node", &f)?,
            2 => push_bounded(&mut n.outputs, f.string()?, NODE, "outputs of a node", &f)?,
            3 => n.name = f.string()?,
            4 => n.op_type = f.string()?,
            5 => push_bounded(&mut n.attributes, parse_attribute(&f)?, NODE, "attributes of a node", &f)?,
            7 => n.domain = f.string()?,
            _ => {}
        }
    }
    Ok(n)
}

fn parse_attribute<'a>(field: &Field<'a>) -> Decoded<AttributeProto<'a>> {
    let mut a = AttributeProto::default();
    for f in field.message()? {
        let f = f?;
        match f.number {
            1 => a.name = f.string()?,
            2 => a.f = Some(f.float()?),
            3 => a.i = Some(f.int64()?),
            4 => a.s = Some(f.bytes()?.to_vec()),
            5 => a.t = Some(parse_tensor(&f)?),
            7 => f.push_floats(&mut a.floats)?,
            8 => f.push_varints(&mut a.ints)?,
            9 => push_bounded(&mut a.strings, f.bytes()?.to_vec(), NODE, "strings of an attribute", &f)?,
            _ => {}
        }
    }
    Ok(a)
}

fn parse_tensor<'a>(field: &Field<'a>) -> Decoded<TensorProto<'a>> {
    let mut t = TensorProto::default();
    for f in field.message()? {
        let f = f?;
        match f.number {
            1 => {
                f.push_varints(&mut t.dims)?;
                if t.dims.len() > NODE {
                    return Err(DecodeError {
                        offset: f.offset,
                        message: format!("more than {NODE} dimensions of a tensor, the limit"),
                    });
                }
            }
            2 => t.data_type = f.varint()?,
            4 => f.push_floats(&mut t.float_data)?,
            5 => f.push_varints(&mut t.int32_data)?,
            7 => f.push_varints(&mut t.int64_data)?,
            8 => t.name = f.string()?,
            9 => t.raw_data = Some(f.bytes()?),
            10 => f.push_doubles(&mut t.double_data)?,
            13 => {
                let (mut key, mut value) = (String::new(), String::new());
                for e in f.message()? {
                    let e = e?;
                    match e.number {
                        1 => key = e.string()?,
                        2 => value = e.string()?,
                        _ => {}
                    }
                }
                t.external.push((key, value));
            }
            14 => t.external_location = f.varint()? == 1,
            _ => {}
        }
    }
    Ok(t)
}

// ------------------------------------------------------------------ tensors

/// ONNX `TensorProto.DataType` codes this importer reads.
mod dtype {
    pub const FLOAT: u64 = 1;
    pub const INT32: u64 = 6;
    pub const INT64: u64 = 7;
    pub const FLOAT16: u64 = 10;
    pub const DOUBLE: u64 = 11;
    pub const BFLOAT16: u64 = 16;
}

/// A constant's values widened to f32, with its shape.
#[derive(Debug, Clone, PartialEq)]
struct Values {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl TensorProto<'_> {
    /// The tensor's values; external data is read from `dir`.
    fn values(&self, dir: &Path) -> Result<Values, ImportErrorKind> {
        let refuse = |reason: String| E::Constant { tensor: self.name.clone(), reason };
        let mut shape = Vec::with_capacity(self.dims.len());
        for &d in &self.dims {
            shape.push(usize::try_from(d).map_err(|_| refuse(format!("has a negative dimension {d}")))?);
        }
        let overflows = || refuse(format!("has a shape {shape:?} that overflows"));
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(overflows)?;
        let (size, name) = match self.data_type {
            dtype::FLOAT => (4, "float"),
            dtype::DOUBLE => (8, "double"),
            dtype::FLOAT16 => (2, "float16"),
            dtype::BFLOAT16 => (2, "bfloat16"),
            dtype::INT32 => (4, "int32"),
            dtype::INT64 => (8, "int64"),
            other => return Err(refuse(format!("has data type {other}; expected a float type"))),
        };
        let external;
        let raw = if self.external_location {
            external = self.read_external(dir, count.checked_mul(size).ok_or_else(overflows)?)?;
            Some(external.as_slice())
        } else {
            self.raw_data
        };
        let data: Vec<f32> = match raw {
            Some(raw) => {
                if raw.len() != count * size {
                    return Err(refuse(format!(
                        "of shape {shape:?} needs {} bytes of {name}, has {}",
                        count * size,
                        raw.len()
                    )));
                }
                raw.chunks_exact(size)
                    .map(|c| match self.data_type {
                        dtype::FLOAT => f32::from_le_bytes(c.try_into().expect("4")),
                        dtype::DOUBLE => f64::from_le_bytes(c.try_into().expect("8")) as f32,
                        dtype::FLOAT16 => half::f16::from_le_bytes([c[0], c[1]]).to_f32(),
                        dtype::BFLOAT16 => half::bf16::from_le_bytes([c[0], c[1]]).to_f32(),
                        dtype::INT32 => i32::from_le_bytes(c.try_into().expect("4")) as f32,
                        _ => i64::from_le_bytes(c.try_into().expect("8")) as f32,
                    })
                    .collect()
            }
            None => match self.data_type {
                dtype::FLOAT => self.float_data.clone(),
                dtype::DOUBLE => self.double_data.iter().map(|&v| v as f32).collect(),
                dtype::FLOAT16 => self.int32_data.iter().map(|&v| half::f16::from_bits(v as u16).to_f32()).collect(),
                dtype::BFLOAT16 => self.int32_data.iter().map(|&v| half::bf16::from_bits(v as u16).to_f32()).collect(),
                dtype::INT32 => self.int32_data.iter().map(|&v| v as f32).collect(),
                _ => self.int64_data.iter().map(|&v| v as f32).collect(),
            },
        };
        if data.len() != count {
            return Err(refuse(format!("of shape {shape:?} has {} values, expected {count}", data.len())));
        }
        Ok(Values { shape, data })
    }

    /// Reads `len` bytes of external data, refusing a location outside `dir`.
    fn read_external(&self, dir: &Path, len: usize) -> Result<Vec<u8>, ImportErrorKind> {
        let refuse = |reason: String| E::ExternalData { tensor: self.name.clone(), reason };
        let io = |what: &'static str, path: &Path| {
            let (tensor, path) = (self.name.clone(), path.to_path_buf());
            move |e: std::io::Error| E::ExternalDataIo { tensor, what, path, source: e.into() }
        };
        let get = |key: &str| self.external.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let location = get("location").ok_or_else(|| refuse("external data without a `location`".into()))?;
        let rel = Path::new(location);
        if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(refuse(format!("external data location `{location}` leaves the model's folder; refused")));
        }
        let full = dir.join(rel);
        let real_dir = dir.canonicalize().map_err(io("model folder", dir))?;
        let real = full.canonicalize().map_err(io("external data file", &full))?;
        if !real.starts_with(&real_dir) {
            return Err(refuse(format!(
                "external data location `{location}` resolves outside the model's folder; refused"
            )));
        }
        let number = |key: &str| -> Result<Option<u64>, ImportErrorKind> {
            get(key)
                .map(|v| v.parse::<u64>().map_err(|_| refuse(format!("external data {key} `{v}` is not a number"))))
                .transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        if let Some(length) = number("length")?
            && length != len as u64
        {
            return Err(refuse(format!("external data length {length}, but the shape needs {len} bytes")));
        }
        use std::io::{Read, Seek, SeekFrom};
        let (mut f, meta) = lstmrt_format::open_regular(&real).map_err(io("external data file", &full))?;
        let file_len = meta.len();
        lstmrt_format::limits::SOURCE_FILE.check(file_len).map_err(|e| io("external data file", &full)(e.into()))?;
        if offset.checked_add(len as u64).is_none_or(|end| end > file_len) {
            return Err(refuse(format!(
                "external data {location} is {file_len} bytes; {len} bytes at offset {offset} run past it"
            )));
        }
        f.seek(SeekFrom::Start(offset)).map_err(io("external data file", &full))?;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf).map_err(io("external data file", &full))?;
        Ok(buf)
    }
}

// ------------------------------------------------------------------ the graph

/// Recurrent op types.
const RECURRENT: [&str; 3] = ["LSTM", "GRU", "RNN"];
/// Ops that only move data around: exporters put them between layers.
const SHAPE_OPS: [&str; 6] = ["Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten"];

struct Graph<'g, 'a> {
    g: &'g GraphProto<'a>,
    dir: &'g Path,
    /// Output name -> (node index, output position).
    producer: HashMap<&'g str, (usize, usize)>,
    initializers: HashMap<&'g str, &'g TensorProto<'a>>,
}

/// Where a recurrent node's `X` comes from.
enum XSource<'g> {
    GraphInput(&'g str),
    Layer(usize),
}

/// Where an initial state comes from.
enum StateSource {
    Zeros,
    GraphInput(String),
    /// A non-zero constant, its values in `[directions, batch, hidden]` order.
    Constant(Values),
}

/// The rows of a constant initial state `[directions, batch, hidden]`, one per
/// direction: the file stores one initial state per layer and direction, so
/// every batch row must be the same.
fn constant_state_rows(data: &[f32], directions: usize, hidden: usize) -> Result<Vec<Vec<f32>>, String> {
    let per_direction = directions * hidden;
    if data.is_empty() || !data.len().is_multiple_of(per_direction) {
        return Err(format!("has {} values, not [{directions}, batch, {hidden}]", data.len()));
    }
    let batch = data.len() / per_direction;
    (0..directions)
        .map(|d| {
            let rows = &data[d * batch * hidden..][..batch * hidden];
            let first = &rows[..hidden];
            match rows.chunks_exact(hidden).position(|r| r != first) {
                Some(b) => Err(format!(
                    "is a constant whose batch row {b} differs from row 0 (direction {d}): the lstmrt format \
                     stores one initial state per layer and direction; set per-row states at run time \
                     (State::set_h / set_c)"
                )),
                None => Ok(first.to_vec()),
            }
        })
        .collect()
}

/// One recurrent node read into canonical form.
struct Layer {
    node: usize,
    cell: CellKind,
    directions: usize,
    /// `direction = "reverse"`: one direction, reading the sequence from the end.
    reverse: bool,
    hidden: usize,
    input: usize,
    clip: Option<f32>,
    input_forget: bool,
    linear_before_reset: bool,
    layout: i64,
    /// Per direction, canonical order (peepholes `None` when the node has no `P`).
    weights: Vec<LayerWeights>,
}

impl<'g, 'a> Graph<'g, 'a> {
    fn new(g: &'g GraphProto<'a>, dir: &'g Path) -> Self {
        let mut producer = HashMap::new();
        for (i, n) in g.nodes.iter().enumerate() {
            for (k, o) in n.outputs.iter().enumerate() {
                if !o.is_empty() {
                    producer.insert(o.as_str(), (i, k));
                }
            }
        }
        let initializers = g.initializers.iter().map(|t| (t.name.as_str(), t)).collect();
        Graph { g, dir, producer, initializers }
    }

    fn node_id(&self, i: usize) -> NodeId {
        let n = &self.g.nodes[i];
        NodeId::new(n.op_type.clone(), n.name.clone(), i)
    }

    /// The static number of timesteps of graph input `x` (dimension 0, or 1
    /// for `layout = 1`), when the model declares it.
    fn static_steps(&self, x: &str, layout: i64) -> Option<u64> {
        let i = self.g.inputs.iter().position(|n| n == x)?;
        *self.g.input_dims.get(i)?.get(if layout == 1 { 1 } else { 0 })?
    }

    fn is_graph_input(&self, name: &str) -> bool {
        self.g.inputs.iter().any(|i| i == name) && !self.initializers.contains_key(name)
    }

    /// The value of `name` if it is a constant: an initializer or a `Constant` node's output.
    fn constant(&self, name: &str) -> Result<Option<Values>, ImportErrorKind> {
        if let Some(t) = self.initializers.get(name) {
            return t.values(self.dir).map(Some);
        }
        let Some(&(i, _)) = self.producer.get(name) else { return Ok(None) };
        let n = &self.g.nodes[i];
        if n.op_type != "Constant" {
            return Ok(None);
        }
        for a in &n.attributes {
            match a.name.as_str() {
                "value" => {
                    if let Some(t) = &a.t {
                        return t.values(self.dir).map(Some);
                    }
                }
                "value_float" => return Ok(a.f.map(|v| Values { shape: vec![], data: vec![v] })),
                "value_floats" => return Ok(Some(Values { shape: vec![a.floats.len()], data: a.floats.clone() })),
                _ => {}
            }
        }
        Err(E::ConstantWithoutValue { node: self.node_id(i) })
    }

    fn convert(&self) -> Result<(Metadata, Weights, Notes), ImportErrorKind> {
        let recurrent: Vec<usize> =
            (0..self.g.nodes.len()).filter(|&i| RECURRENT.contains(&self.g.nodes[i].op_type.as_str())).collect();
        if recurrent.is_empty() {
            let ops: Vec<&str> = self.g.nodes.iter().map(|n| n.op_type.as_str()).collect();
            return Err(E::NotRecurrent {
                reason: format!("no LSTM, GRU or RNN node: not a recurrent model (ops: {})", summarize(&ops)),
            });
        }
        let mut notes = Notes::new();
        // Order the nodes into a stack by following each one's X back to its source.
        let mut first = None;
        let mut next_of: HashMap<usize, usize> = HashMap::new();
        for &i in &recurrent {
            let (source, path) = self.trace_x(i)?;
            match source {
                XSource::GraphInput(name) => {
                    if let Some(other) = first.replace(i) {
                        return Err(E::SeveralStacks { first: self.node_id(other), second: self.node_id(i) });
                    }
                    if !path.is_empty() {
                        notes.push(format!(
                            "the graph applies {} to its input `{name}` before the first layer; the converted model \
                             takes [steps, batch, input]",
                            path.iter().map(|&p| self.g.nodes[p].op_type.as_str()).collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
                XSource::Layer(prev) => {
                    self.check_between_layers(prev, i, &path)?;
                    if let Some(other) = next_of.insert(prev, i) {
                        return Err(E::Branching {
                            node: self.node_id(prev),
                            first: self.node_id(other),
                            second: self.node_id(i),
                        });
                    }
                }
            }
        }
        let first = first.ok_or_else(|| E::Graph { reason: "no recurrent node reads a graph input".into() })?;
        let mut order = vec![first];
        while let Some(&n) = next_of.get(order.last().expect("non-empty")) {
            // A cycle of layers would never end.
            if order.len() > recurrent.len() {
                break;
            }
            order.push(n);
        }
        if order.len() != recurrent.len() {
            return Err(E::Graph { reason: "the recurrent nodes do not form one chain of layers".into() });
        }
        let layers: Vec<Layer> = order.iter().map(|&i| self.read_layer(i, &mut notes)).collect::<Result<_, _>>()?;

        // One architecture for the whole stack.
        let l0 = &layers[0];
        for (k, l) in layers.iter().enumerate().skip(1) {
            let same = l.cell == l0.cell
                && l.directions == l0.directions
                && l.reverse == l0.reverse
                && l.hidden == l0.hidden
                && l.clip == l0.clip
                && l.input_forget == l0.input_forget
                && l.linear_before_reset == l0.linear_before_reset;
            if !same {
                return Err(E::NodesDiffer { node: self.node_id(l.node), layer: k, first: self.node_id(l0.node) });
            }
            if l.input != l0.directions * l0.hidden {
                return Err(E::LayerInput {
                    node: self.node_id(l.node),
                    input: l.input,
                    expected: l0.directions * l0.hidden,
                });
            }
        }
        if l0.layout == 1 {
            notes.push(
                "the ONNX graph is batch-major (layout=1); the converted model takes [steps, batch, input]".into(),
            );
        }
        let mut arch = Architecture::new(l0.cell, l0.input, l0.hidden, layers.len());
        arch.bidirectional = l0.directions == 2;
        arch.reverse = l0.reverse;
        arch.clip = l0.clip;
        arch.input_forget = l0.input_forget;
        arch.linear_before_reset = l0.linear_before_reset;
        arch.peepholes = layers.iter().any(|l| l.weights.iter().any(|w| w.peephole.is_some()));
        let mut meta = Metadata::new(arch.clone());
        meta.provenance
            .push("onnx.nodes", order.iter().map(|&i| self.g.nodes[i].name.clone()).collect::<Vec<_>>().join(","));
        let mut weights = Weights::zeros(&meta);
        for (k, l) in layers.into_iter().enumerate() {
            for (d, mut lw) in l.weights.into_iter().enumerate() {
                if arch.peepholes && lw.peephole.is_none() {
                    lw.peephole = Some(vec![0.0; 3 * l.hidden]);
                }
                weights.layers[k * arch.directions() + d] = lw;
            }
        }
        weights.check(&meta).map_err(|source| E::Model { source })?;
        self.note_downstream(*order.last().expect("non-empty"), &mut notes);
        Ok((meta, weights, notes))
    }

    /// Follows `X` of node `i` back through shape ops. Returns the source and
    /// the shape ops on the way (nearest first).
    fn trace_x(&self, i: usize) -> Result<(XSource<'g>, Vec<usize>), ImportErrorKind> {
        let mut name: &'g str = self.g.nodes[i].inputs.first().map(String::as_str).unwrap_or("");
        let mut path = Vec::new();
        loop {
            if self.is_graph_input(name) {
                return Ok((XSource::GraphInput(name), path));
            }
            let Some(&(p, out)) = self.producer.get(name) else {
                return Err(E::UnknownInput { node: self.node_id(i), input: name.to_owned() });
            };
            let n = &self.g.nodes[p];
            if RECURRENT.contains(&n.op_type.as_str()) {
                if out != 0 {
                    return Err(E::ReadsFinalState { node: self.node_id(i), producer: self.node_id(p), output: out });
                }
                return Ok((XSource::Layer(p), path));
            }
            if !SHAPE_OPS.contains(&n.op_type.as_str()) || path.len() > 16 {
                return Err(E::BetweenLayers { node: self.node_id(i), producer: self.node_id(p) });
            }
            path.push(p);
            name = n.inputs.first().map(String::as_str).unwrap_or("");
        }
    }

    /// Between a bidirectional layer's `Y` `[T, 2, B, H]` and the next layer's
    /// `X` `[T, B, 2H]` the data must be transposed to `[T, B, 2, H]` first,
    /// or the forward and backward halves would interleave wrongly. With
    /// `layout = 1`, `Y` is `[B, T, 2, H]` and a reshape alone is right.
    fn check_between_layers(&self, prev: usize, next: usize, path: &[usize]) -> Result<(), ImportErrorKind> {
        let n = &self.g.nodes[prev];
        let bidirectional = attr(n, "direction").and_then(|a| a.s.as_deref()) == Some(b"bidirectional");
        let layout = attr(n, "layout").and_then(|a| a.i).unwrap_or(0);
        let transposes: Vec<&NodeProto> =
            path.iter().map(|&p| &self.g.nodes[p]).filter(|p| p.op_type == "Transpose").collect();
        let wanted: Option<&[i64]> = match (bidirectional, layout) {
            (true, 0) => Some(&[0, 2, 1, 3]),
            _ => None,
        };
        let perms: Vec<&[i64]> =
            transposes.iter().map(|t| attr(t, "perm").map_or(&[][..], |a| a.ints.as_slice())).collect();
        if perms != wanted.as_slice() {
            return Err(E::Transposes {
                from: self.node_id(prev),
                to: self.node_id(next),
                expected: wanted.map(<[i64]>::to_vec),
                found: perms.iter().map(|p| p.to_vec()).collect(),
            });
        }
        Ok(())
    }

    /// Reads one recurrent node's attributes and weights into canonical order.
    fn read_layer(&self, i: usize, notes: &mut Notes) -> Result<Layer, ImportErrorKind> {
        let n = &self.g.nodes[i];
        let node = self.node_id(i);
        let refuse = |reason: String| E::Node { node: node.clone(), reason };
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(E::Domain { node: node.clone(), domain: n.domain.clone() });
        }
        let op = n.op_type.as_str();
        let gates = match op {
            "LSTM" => 4,
            "GRU" => 3,
            _ => 1,
        };
        let known: &[&str] = match op {
            "LSTM" => &["activations", "clip", "direction", "hidden_size", "input_forget", "layout", "output_sequence"],
            "GRU" => {
                &["activations", "clip", "direction", "hidden_size", "linear_before_reset", "layout", "output_sequence"]
            }
            _ => &["activations", "clip", "direction", "hidden_size", "layout", "output_sequence"],
        };
        for a in &n.attributes {
            if !known.contains(&a.name.as_str()) {
                return Err(refuse(format!("attribute `{}` is not supported", a.name)));
            }
        }
        let direction = attr(n, "direction").and_then(|a| a.s.clone()).unwrap_or_else(|| b"forward".to_vec());
        let (directions, reverse) = match direction.as_slice() {
            b"forward" => (1, false),
            b"bidirectional" => (2, false),
            b"reverse" => (1, true),
            other => {
                return Err(refuse(format!(
                    "direction `{}` is not forward, reverse or bidirectional",
                    String::from_utf8_lossy(other)
                )));
            }
        };
        let layout = attr(n, "layout").and_then(|a| a.i).unwrap_or(0);
        if !(0..=1).contains(&layout) {
            return Err(refuse(format!("layout {layout}, expected 0 or 1")));
        }
        // Activations: the defaults, or Relu for RNN.
        let defaults: &[&str] = match op {
            "LSTM" => &["sigmoid", "tanh", "tanh"],
            "GRU" => &["sigmoid", "tanh"],
            _ => &["tanh"],
        };
        let mut cell = match op {
            "LSTM" => CellKind::Lstm,
            "GRU" => CellKind::Gru,
            _ => CellKind::RnnTanh,
        };
        if let Some(a) = attr(n, "activations") {
            let names: Vec<String> = a.strings.iter().map(|s| String::from_utf8_lossy(s).to_lowercase()).collect();
            let all = |set: &[&str]| names.len() == set.len() * directions && names.chunks(set.len()).all(|c| c == set);
            if op == "RNN" && all(&["relu"]) {
                cell = CellKind::RnnRelu;
            } else if !all(defaults) {
                return Err(refuse(format!(
                    "attribute `activations` is {names:?}; only the defaults {defaults:?}{} are supported",
                    if op == "RNN" { " or [\"relu\"]" } else { "" }
                )));
            }
        }
        let clip = match attr(n, "clip").and_then(|a| a.f) {
            None => None,
            Some(c) if c.is_finite() && c > 0.0 => Some(c),
            Some(c) => return Err(refuse(format!("attribute `clip` is {c}, expected a positive number"))),
        };
        let input_forget = attr(n, "input_forget").and_then(|a| a.i).unwrap_or(0) != 0;
        let linear_before_reset = match op {
            "GRU" => attr(n, "linear_before_reset").and_then(|a| a.i).unwrap_or(0) != 0,
            _ => true,
        };

        let input = |k: usize| n.inputs.get(k).map(String::as_str).filter(|s| !s.is_empty());
        let tensor = |k: usize, what: &str| -> Result<Option<Values>, ImportErrorKind> {
            let Some(name) = input(k) else { return Ok(None) };
            match self.constant(name)? {
                Some(v) => Ok(Some(v)),
                None => Err(refuse(format!(
                    "{what} `{name}` is not a constant (initializer); weights must be stored in the model"
                ))),
            }
        };
        let w = tensor(1, "W")?.ok_or_else(|| refuse("input W is missing".into()))?;
        let r = tensor(2, "R")?.ok_or_else(|| refuse("input R is missing".into()))?;
        let (w_rows, input_size) = match w.shape.as_slice() {
            &[d, rows, cols] if d == directions => (rows, cols),
            s => return Err(refuse(format!("W has shape {s:?}, expected [{directions}, gates*hidden, input]"))),
        };
        let hidden = match attr(n, "hidden_size").and_then(|a| a.i) {
            Some(h) if h > 0 => h as usize,
            Some(h) => return Err(refuse(format!("hidden_size {h} is not positive"))),
            None => w_rows / gates,
        };
        let gh = gates.checked_mul(hidden).ok_or_else(|| refuse(format!("hidden_size {hidden} is too large")))?;
        if w_rows != gh {
            return Err(refuse(format!("W has {w_rows} rows, expected {gates} gates x hidden {hidden} = {gh}")));
        }
        if r.shape != [directions, gh, hidden] {
            return Err(refuse(format!("R has shape {:?}, expected [{directions}, {gh}, {hidden}]", r.shape)));
        }
        let b = tensor(3, "B")?;
        if let Some(b) = &b
            && b.shape != [directions, 2 * gh]
        {
            return Err(refuse(format!("B has shape {:?}, expected [{directions}, {}]", b.shape, 2 * gh)));
        }
        if let Some(name) = input(4) {
            // A constant that gives every sequence the input's whole (static) length changes nothing.
            let steps = self.static_steps(input(0).unwrap_or(""), layout);
            if !self.is_graph_input(name)
                && let Some(v) = self.constant(name)?
                && let Some(t) = steps
                && !v.data.is_empty()
                && v.data.iter().all(|&l| l == t as f32)
            {
                notes.push(format!(
                    "{node}: sequence_lens `{name}` is the constant {t} for every sequence, the input's whole \
                     length: it changes nothing"
                ));
            } else if !self.is_graph_input(name) {
                return Err(refuse(format!(
                    "input sequence_lens (`{name}`) is a constant or computed, and not the input's whole \
                     static length for every sequence: the lstmrt format stores no lengths; make it a graph \
                     input and pass the lengths at run time (Model::run_lengths, lstm-run --lengths)"
                )));
            } else {
                notes.push(format!(
                    "{node}: sequence_lens comes from the graph input `{name}`: pass the lengths at run time \
                     (Model::run_lengths, lstm-run --lengths); without them every sequence runs to the input's end"
                ));
            }
        }
        let state_inputs: &[(usize, &str)] =
            if op == "LSTM" { &[(5, "initial_h"), (6, "initial_c")] } else { &[(5, "initial_h")] };
        // Per state input, its constant rows per direction (`[H]` each), if non-zero.
        let mut initial: [Option<Vec<Vec<f32>>>; 2] = [None, None];
        for (slot, &(k, what)) in state_inputs.iter().enumerate() {
            if let Some(name) = input(k) {
                let refuse_state =
                    |reason: String| E::InitialState { node: node.clone(), input: what, name: name.to_owned(), reason };
                match self.state_source(name, 0, true, &std::cell::Cell::new(0), &refuse_state)? {
                    StateSource::Zeros => {}
                    StateSource::GraphInput(g) => notes.push(format!(
                        "{node}: {what} comes from the graph input `{g}`; lstmrt starts from the stored initial \
                         state (zeros if none) unless you set the state (State::set_h / set_c)"
                    )),
                    StateSource::Constant(v) => {
                        initial[slot] = Some(constant_state_rows(&v.data, directions, hidden).map_err(refuse_state)?);
                    }
                }
            }
        }
        let p = if op == "LSTM" { tensor(7, "P")? } else { None };
        if let Some(p) = &p
            && p.shape != [directions, 3 * hidden]
        {
            return Err(refuse(format!("P has shape {:?}, expected [{directions}, {}]", p.shape, 3 * hidden)));
        }

        // ONNX gate order -> canonical gate order (block k of ours is block order[k] of theirs).
        let order: &[usize] = match op {
            "LSTM" => &[0, 2, 3, 1], // i o f c -> i f g o
            "GRU" => &[1, 0, 2],     // z r h -> r z n
            _ => &[0],
        };
        let mut weights = Vec::with_capacity(directions);
        for d in 0..directions {
            let w_ih = reorder_gates(&w.data[d * gh * input_size..][..gh * input_size], order, hidden * input_size);
            let w_hh = reorder_gates(&r.data[d * gh * hidden..][..gh * hidden], order, hidden * hidden);
            let (b_ih, b_hh) = match &b {
                Some(b) => {
                    let row = &b.data[d * 2 * gh..][..2 * gh];
                    (reorder_gates(&row[..gh], order, hidden), reorder_gates(&row[gh..], order, hidden))
                }
                None => (vec![0.0; gh], vec![0.0; gh]),
            };
            let peephole =
                p.as_ref().map(|p| reorder_gates(&p.data[d * 3 * hidden..][..3 * hidden], &[0, 2, 1], hidden));
            let [initial_h, initial_c] = initial.clone().map(|rows| rows.map(|mut r| r.swap_remove(d)));
            weights.push(LayerWeights { w_ih, w_hh, b_ih, b_hh, peephole, initial_h, initial_c, w_hr: None });
        }
        Ok(Layer {
            node: i,
            cell,
            directions,
            reverse,
            hidden,
            input: input_size,
            clip,
            input_forget,
            linear_before_reset,
            layout,
            weights,
        })
    }

    /// Where an initial state comes from: zeros (possibly expanded or
    /// reshaped), or a graph input. A non-zero constant is refused, with the
    /// error `refuse` makes of the reason (it names the node and the input).
    fn state_source(
        &self,
        name: &str,
        depth: usize,
        ordered: bool,
        visits: &std::cell::Cell<usize>,
        refuse: &impl Fn(String) -> ImportErrorKind,
    ) -> Result<StateSource, ImportErrorKind> {
        if depth > 16 {
            return Err(refuse("is computed by too long a chain of ops".into()));
        }
        // A DAG of Concats would be walked once per path: at most a few
        // visits per node of the graph, whatever its shape.
        visits.set(visits.get() + 1);
        if visits.get() > 4 * self.g.nodes.len() + 64 {
            return Err(refuse(format!(
                "is computed by more than {} ops (shared many times over)",
                4 * self.g.nodes.len() + 64
            )));
        }
        if let Some(v) = self.constant(name)? {
            return if v.data.iter().all(|&x| x == 0.0) {
                Ok(StateSource::Zeros)
            } else if ordered {
                Ok(StateSource::Constant(v))
            } else {
                Err(refuse(
                    "is a non-zero constant reordered on the way (Transpose, Slice, Gather or Concat): set it at \
                     run time with State::set_h / set_c"
                        .into(),
                ))
            };
        }
        if self.is_graph_input(name) {
            return Ok(StateSource::GraphInput(name.to_owned()));
        }
        let Some(&(p, _)) = self.producer.get(name) else {
            return Err(refuse("is neither a constant nor computed".into()));
        };
        let n = &self.g.nodes[p];
        match n.op_type.as_str() {
            "ConstantOfShape" => {
                let zero = attr(n, "value")
                    .and_then(|a| a.t.as_ref())
                    .map_or(Ok(true), |t| t.values(self.dir).map(|v| v.data.iter().all(|&x| x == 0.0)))?;
                if zero { Ok(StateSource::Zeros) } else { Err(refuse("is a non-zero ConstantOfShape".into())) }
            }
            // These keep the values in order (a constant `[D, 1, H]` expanded or
            // tiled over the batch has the same rows); the others may reorder them.
            "Expand" | "Tile" | "Reshape" | "Squeeze" | "Unsqueeze" | "Identity" => {
                self.state_source(n.inputs.first().map_or("", String::as_str), depth + 1, ordered, visits, refuse)
            }
            "Slice" | "Gather" | "Transpose" => {
                self.state_source(n.inputs.first().map_or("", String::as_str), depth + 1, false, visits, refuse)
            }
            "Concat" => {
                let mut source = StateSource::Zeros;
                for input in &n.inputs {
                    if let StateSource::GraphInput(g) = self.state_source(input, depth + 1, false, visits, refuse)? {
                        source = StateSource::GraphInput(g);
                    }
                }
                Ok(source)
            }
            _ => Err(refuse(format!("comes from {}, expected zeros or a graph input", self.node_id(p)))),
        }
    }

    /// Notes the ops applied to the last layer's output: they are not part of
    /// the converted model.
    fn note_downstream(&self, last: usize, notes: &mut Notes) {
        let mut frontier: Vec<&str> = self.g.nodes[last].outputs.iter().take(1).map(String::as_str).collect();
        let mut dropped = Vec::new();
        // Each value once: a cycle of Identity nodes would otherwise loop forever.
        let mut seen = std::collections::HashSet::new();
        while let Some(name) = frontier.pop() {
            if !seen.insert(name) {
                continue;
            }
            for n in self.g.nodes.iter().filter(|n| n.inputs.iter().any(|i| i == name)) {
                if SHAPE_OPS.contains(&n.op_type.as_str()) {
                    frontier.extend(n.outputs.iter().map(String::as_str));
                } else if !dropped.contains(&n.op_type.as_str()) {
                    dropped.push(n.op_type.as_str());
                }
            }
        }
        if !dropped.is_empty() {
            notes.push(format!(
                "the graph applies {} after the last recurrent layer; those ops are not converted (the model \
                 outputs the recurrent stack's sequence)",
                dropped.join(", ")
            ));
        }
    }
}

fn attr<'n, 'a>(n: &'n NodeProto<'a>, name: &str) -> Option<&'n AttributeProto<'a>> {
    n.attributes.iter().find(|a| a.name == name)
}

/// `Add x3, MatMul` style summary of op types.
fn summarize(ops: &[&str]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for &op in ops {
        match counts.iter_mut().find(|(o, _)| *o == op) {
            Some((_, c)) => *c += 1,
            None => counts.push((op, 1)),
        }
    }
    if counts.is_empty() {
        return "none".into();
    }
    counts.iter().map(|(o, c)| if *c == 1 { o.to_string() } else { format!("{o} x{c}") }).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorders_lstm_gates_from_iofc_to_ifgo() {
        // Blocks of 2 values: i=[0,0] o=[1,1] f=[2,2] c=[3,3].
        let onnx = [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        assert_eq!(reorder_gates(&onnx, &[0, 2, 3, 1], 2), [0.0, 0.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0]);
        // GRU z r h -> r z n.
        assert_eq!(reorder_gates(&[0.0, 1.0, 2.0], &[1, 0, 2], 1), [1.0, 0.0, 2.0]);
    }

    #[test]
    fn is_onnx_needs_ir_version_and_graph() {
        assert!(is_onnx(&[0x08, 0x07, 0x3a, 0x00]));
        assert!(!is_onnx(&[0x08, 0x07]));
        assert!(!is_onnx(b"PK\x03\x04"));
    }

    #[test]
    fn refuses_external_data_outside_the_model_folder() {
        let t = TensorProto {
            name: "W".into(),
            dims: vec![1],
            data_type: dtype::FLOAT,
            external: vec![("location".into(), "../secret.bin".into())],
            external_location: true,
            ..Default::default()
        };
        let refused = |t: &TensorProto| match t.values(Path::new(".")).unwrap_err() {
            E::ExternalData { tensor, reason } => {
                assert_eq!(tensor, "W");
                assert!(reason.contains("leaves the model's folder"), "{reason}");
            }
            other => panic!("expected ExternalData, got {other:?}"),
        };
        refused(&t);
        refused(&TensorProto { external: vec![("location".into(), "/etc/passwd".into())], ..t });
    }

    #[test]
    fn a_missing_external_data_file_is_an_io_error_naming_it() {
        let t = TensorProto {
            name: "R".into(),
            dims: vec![1],
            data_type: dtype::FLOAT,
            external: vec![("location".into(), "no-such-weights.bin".into())],
            external_location: true,
            ..Default::default()
        };
        let e = t.values(Path::new(".")).unwrap_err();
        let E::ExternalDataIo { tensor, what, path, source } = &e else { panic!("expected ExternalDataIo, got {e:?}") };
        assert_eq!((tensor.as_str(), *what), ("R", "external data file"));
        assert_eq!(path, Path::new("./no-such-weights.bin"));
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        assert!(std::error::Error::source(&e).is_some());
    }

    /// A graph whose input `x` feeds one recurrent node `node`.
    fn one_node_graph(node: NodeProto<'static>) -> GraphProto<'static> {
        GraphProto { nodes: vec![node], initializers: Vec::new(), inputs: vec!["x".into()], ..Default::default() }
    }

    fn lstm(name: &str) -> NodeProto<'static> {
        NodeProto {
            name: name.into(),
            op_type: "LSTM".into(),
            inputs: vec!["x".into(), "W".into(), "R".into()],
            outputs: vec!["y".into()],
            ..Default::default()
        }
    }

    /// A one-layer LSTM of hidden size 1 on input size 1 (`W`, `R` initializers),
    /// with `extra` nodes and `inputs` for the LSTM node.
    fn convertible(lstm_inputs: Vec<&str>, extra: Vec<NodeProto<'static>>) -> GraphProto<'static> {
        let tensor = |name: &str| TensorProto {
            name: name.into(),
            dims: vec![1, 4, 1],
            data_type: dtype::FLOAT,
            float_data: vec![0.1, 0.2, 0.3, 0.4],
            ..Default::default()
        };
        let mut node = lstm("lstm");
        node.inputs = lstm_inputs.into_iter().map(String::from).collect();
        node.attributes.push(AttributeProto { name: "hidden_size".into(), i: Some(1), ..Default::default() });
        let mut nodes = vec![node];
        nodes.extend(extra);
        GraphProto {
            nodes,
            initializers: vec![tensor("W"), tensor("R")],
            inputs: vec!["x".into()],
            input_dims: vec![vec![]],
        }
    }

    fn op(op_type: &str, inputs: &[&str], output: &str) -> NodeProto<'static> {
        NodeProto {
            name: format!("{op_type}_{output}"),
            op_type: op_type.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![output.into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_cycle_of_identity_nodes_after_the_last_layer_ends() {
        let g = convertible(
            vec!["x", "W", "R"],
            vec![op("Identity", &["y"], "a"), op("Identity", &["a"], "c"), op("Identity", &["c"], "a")],
        );
        // Used to loop forever noting the ops downstream of the stack.
        Graph::new(&g, Path::new(".")).convert().unwrap();
    }

    #[test]
    fn an_initial_state_shared_many_times_over_is_refused_within_a_budget() {
        // initial_h = Concat of 8 copies of the level below, 12 levels over a
        // zero ConstantOfShape: 8^12 paths, 13 nodes.
        let mut extra = vec![op("ConstantOfShape", &["shape"], "z0")];
        for level in 1..=12 {
            let below = format!("z{}", level - 1);
            extra.push(op("Concat", &[below.as_str(); 8], &format!("z{level}")));
        }
        let g = convertible(vec!["x", "W", "R", "", "", "z12"], extra);
        let e = Graph::new(&g, Path::new(".")).convert().unwrap_err().to_string();
        assert!(e.contains("more than") && e.contains("ops"), "{e}");
    }

    #[test]
    fn refused_attributes_name_the_node() {
        let mut node = lstm("lstm_0");
        node.attributes.push(AttributeProto { name: "activation_alpha".into(), ..Default::default() });
        let g = one_node_graph(node);
        let e = Graph::new(&g, Path::new(".")).convert().unwrap_err();
        let node = NodeId::new("LSTM", "lstm_0", 0);
        assert_eq!(e, E::Node { node, reason: "attribute `activation_alpha` is not supported".into() });
        assert_eq!(e.to_string(), "LSTM node `lstm_0`: attribute `activation_alpha` is not supported");
    }

    #[test]
    fn weights_that_are_not_constants_name_the_node_and_input() {
        let g = one_node_graph(lstm(""));
        let e = Graph::new(&g, Path::new(".")).convert().unwrap_err();
        let E::Node { node, reason } = &e else { panic!("expected Node, got {e:?}") };
        assert_eq!((node.name(), node.index()), ("", 0));
        assert!(reason.starts_with("W `W` is not a constant"), "{reason}");
        assert!(e.to_string().starts_with("LSTM node #0: W `W` is not a constant"), "{e}");
    }

    #[test]
    fn two_stacks_on_the_graph_input_are_refused_naming_both() {
        let g = GraphProto { nodes: vec![lstm("a"), lstm("b")], inputs: vec!["x".into()], ..Default::default() };
        let e = Graph::new(&g, Path::new(".")).convert().unwrap_err();
        let E::SeveralStacks { first, second } = &e else { panic!("expected SeveralStacks, got {e:?}") };
        assert_eq!((first.name(), second.name()), ("a", "b"));
    }

    #[test]
    fn decodes_float16_from_int32_data_and_checks_counts() {
        let t = TensorProto {
            dims: vec![2],
            data_type: dtype::FLOAT16,
            int32_data: vec![half::f16::from_f32(1.5).to_bits() as i64, half::f16::from_f32(-2.0).to_bits() as i64],
            ..Default::default()
        };
        assert_eq!(t.values(Path::new(".")).unwrap().data, [1.5, -2.0]);
        let t = TensorProto { dims: vec![3], ..t };
        let e = t.values(Path::new(".")).unwrap_err();
        assert_eq!(e, E::Constant { tensor: String::new(), reason: "of shape [3] has 2 values, expected 3".into() });
        assert_eq!(e.to_string(), "a constant tensor of shape [3] has 2 values, expected 3");
    }
}
