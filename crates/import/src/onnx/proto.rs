//! The ONNX messages this importer reads, decoded from the wire format
//! with only the fields it needs, every repeated field bounded.

use super::*;

/// Field numbers of the `onnx.proto` messages read here (onnx/onnx.proto3).
pub(super) mod field {
    pub mod model {
        pub const IR_VERSION: u32 = 1;
        pub const PRODUCER_NAME: u32 = 2;
        pub const GRAPH: u32 = 7;
        pub const OPSET_IMPORT: u32 = 8;
    }
    /// `OperatorSetIdProto`
    pub mod opset {
        pub const DOMAIN: u32 = 1;
        pub const VERSION: u32 = 2;
    }
    pub mod graph {
        pub const NODE: u32 = 1;
        pub const INITIALIZER: u32 = 5;
        pub const INPUT: u32 = 11;
    }
    /// `ValueInfoProto`
    pub mod value_info {
        pub const NAME: u32 = 1;
        pub const TYPE: u32 = 2;
    }
    /// `TypeProto`, `TypeProto.Tensor`, `TensorShapeProto` and its `Dimension`.
    pub mod type_proto {
        pub const TENSOR_TYPE: u32 = 1;
        pub const TENSOR_SHAPE: u32 = 2;
        pub const SHAPE_DIM: u32 = 1;
        pub const DIM_VALUE: u32 = 1;
    }
    pub mod node {
        pub const INPUT: u32 = 1;
        pub const OUTPUT: u32 = 2;
        pub const NAME: u32 = 3;
        pub const OP_TYPE: u32 = 4;
        pub const ATTRIBUTE: u32 = 5;
        pub const DOMAIN: u32 = 7;
    }
    pub mod attribute {
        pub const NAME: u32 = 1;
        pub const F: u32 = 2;
        pub const I: u32 = 3;
        pub const S: u32 = 4;
        pub const T: u32 = 5;
        pub const G: u32 = 6;
        pub const FLOATS: u32 = 7;
        pub const INTS: u32 = 8;
        pub const STRINGS: u32 = 9;
        pub const GRAPHS: u32 = 11;
    }
    pub mod tensor {
        pub const DIMS: u32 = 1;
        pub const DATA_TYPE: u32 = 2;
        pub const FLOAT_DATA: u32 = 4;
        pub const INT32_DATA: u32 = 5;
        pub const INT64_DATA: u32 = 7;
        pub const NAME: u32 = 8;
        pub const RAW_DATA: u32 = 9;
        pub const DOUBLE_DATA: u32 = 10;
        pub const EXTERNAL_DATA: u32 = 13;
        pub const DATA_LOCATION: u32 = 14;
    }
    /// `StringStringEntryProto`
    pub mod entry {
        pub const KEY: u32 = 1;
        pub const VALUE: u32 = 2;
    }
}

pub(super) struct ModelProto<'a> {
    pub(super) producer: String,
    pub(super) opset: Option<i64>,
    pub(super) graph: GraphProto<'a>,
}

#[derive(Default)]
pub(super) struct GraphProto<'a> {
    pub(super) nodes: Vec<NodeProto<'a>>,
    pub(super) initializers: Vec<TensorProto<'a>>,
    pub(super) inputs: Vec<String>,
    /// Per graph input, its static dimensions where the model declares them
    /// (`None` for a symbolic or missing dimension).
    pub(super) input_dims: Vec<Vec<Option<u64>>>,
}

#[derive(Default)]
pub(super) struct NodeProto<'a> {
    pub(super) name: String,
    pub(super) op_type: String,
    pub(super) domain: String,
    pub(super) inputs: Vec<String>,
    pub(super) outputs: Vec<String>,
    pub(super) attributes: Vec<AttributeProto<'a>>,
}

#[derive(Default)]
pub(super) struct AttributeProto<'a> {
    pub(super) name: String,
    pub(super) f: Option<f32>,
    pub(super) i: Option<i64>,
    pub(super) s: Option<Vec<u8>>,
    pub(super) t: Option<TensorProto<'a>>,
    pub(super) floats: Vec<f32>,
    pub(super) ints: Vec<i64>,
    pub(super) strings: Vec<Vec<u8>>,
    /// Subgraphs (`g`, `graphs`): the branches of an `If`, a `Loop`'s body.
    pub(super) graphs: Vec<GraphProto<'a>>,
}

#[derive(Default, Clone)]
pub(super) struct TensorProto<'a> {
    pub(super) name: String,
    pub(super) dims: Vec<i64>,
    pub(super) data_type: u64,
    pub(super) float_data: Vec<f32>,
    pub(super) double_data: Vec<f64>,
    pub(super) int32_data: Vec<i64>,
    pub(super) int64_data: Vec<i64>,
    pub(super) raw_data: Option<&'a [u8]>,
    pub(super) external: Vec<(String, String)>,
    pub(super) external_location: bool,
}

pub(super) type Decoded<T> = Result<T, DecodeError>;

pub(super) fn parse_model(bytes: &[u8]) -> Decoded<ModelProto<'_>> {
    let mut producer = String::new();
    let mut opset = None;
    let mut graph = None;
    for f in Reader::new(bytes) {
        let f = f?;
        match f.number {
            field::model::PRODUCER_NAME => producer = f.string()?,
            field::model::GRAPH => graph = Some(parse_graph(&f, 0)?),
            field::model::OPSET_IMPORT => {
                let (mut domain, mut version) = (String::new(), None);
                for g in f.message()? {
                    let g = g?;
                    match g.number {
                        field::opset::DOMAIN => domain = g.string()?,
                        field::opset::VERSION => version = Some(g.int64()?),
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

pub(super) const GRAPH: usize = lstmrt_format::limits::ONNX_GRAPH_ENTRIES;
pub(super) const NODE: usize = lstmrt_format::limits::ONNX_NODE_ENTRIES;

/// Appends `item` unless `list` already holds `limit` entries: a repeated
/// field of empty entries costs two bytes each in the file but a full
/// struct each in memory, so the counts are capped (`docs/reliability.md`).
pub(super) fn push_bounded<T>(list: &mut Vec<T>, item: T, limit: usize, what: &str, at: &Field<'_>) -> Decoded<()> {
    if list.len() >= limit {
        return Err(DecodeError { offset: at.offset, message: format!("more than {limit} {what}, the limit") });
    }
    list.push(item);
    Ok(())
}

/// Graphs inside graphs (an `If` in an `If`'s branch) are read this deep.
pub(super) const GRAPH_DEPTH: usize = 8;

/// A graph at `depth` (0: the model's; 1: a subgraph of one of its nodes).
pub(super) fn parse_graph<'a>(field: &Field<'a>, depth: usize) -> Decoded<GraphProto<'a>> {
    if depth > GRAPH_DEPTH {
        return Err(DecodeError {
            offset: field.offset,
            message: format!("subgraphs nested more than {GRAPH_DEPTH} deep, the limit"),
        });
    }
    let mut g = GraphProto::default();
    for f in field.message()? {
        let f = f?;
        match f.number {
            field::graph::NODE => push_bounded(&mut g.nodes, parse_node(&f, depth)?, GRAPH, "nodes in a graph", &f)?,
            field::graph::INITIALIZER => {
                push_bounded(&mut g.initializers, parse_tensor(&f)?, GRAPH, "initializers in a graph", &f)?
            }
            field::graph::INPUT => {
                let mut dims = Vec::new();
                for v in f.message()? {
                    let v = v?;
                    match v.number {
                        field::value_info::NAME => push_bounded(&mut g.inputs, v.string()?, GRAPH, "graph inputs", &v)?,
                        field::value_info::TYPE => dims = parse_tensor_dims(&v)?,
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
pub(super) fn parse_tensor_dims(type_proto: &Field<'_>) -> Decoded<Vec<Option<u64>>> {
    let mut dims = Vec::new();
    for t in type_proto.message()? {
        let t = t?;
        if t.number != field::type_proto::TENSOR_TYPE {
            continue; // not a tensor type
        }
        for shape in t.message()? {
            let shape = shape?;
            if shape.number != field::type_proto::TENSOR_SHAPE {
                continue;
            }
            for dim in shape.message()? {
                let dim = dim?;
                if dim.number != field::type_proto::SHAPE_DIM {
                    continue;
                }
                let mut value = None;
                for d in dim.message()? {
                    let d = d?;
                    if d.number == field::type_proto::DIM_VALUE {
                        value = Some(d.varint()?);
                    }
                }
                dims.push(value);
            }
        }
    }
    Ok(dims)
}

pub(super) fn parse_node<'a>(field: &Field<'a>, depth: usize) -> Decoded<NodeProto<'a>> {
    let mut n = NodeProto::default();
    for f in field.message()? {
        let f = f?;
        match f.number {
            field::node::INPUT => push_bounded(&mut n.inputs, f.string()?, NODE, "inputs of a node", &f)?,
            field::node::OUTPUT => push_bounded(&mut n.outputs, f.string()?, NODE, "outputs of a node", &f)?,
            field::node::NAME => n.name = f.string()?,
            field::node::OP_TYPE => n.op_type = f.string()?,
            field::node::ATTRIBUTE => {
                push_bounded(&mut n.attributes, parse_attribute(&f, depth)?, NODE, "attributes of a node", &f)?
            }
            field::node::DOMAIN => n.domain = f.string()?,
            _ => {}
        }
    }
    Ok(n)
}

pub(super) fn parse_attribute<'a>(field: &Field<'a>, depth: usize) -> Decoded<AttributeProto<'a>> {
    let mut a = AttributeProto::default();
    for f in field.message()? {
        let f = f?;
        match f.number {
            field::attribute::NAME => a.name = f.string()?,
            field::attribute::F => a.f = Some(f.float()?),
            field::attribute::I => a.i = Some(f.int64()?),
            field::attribute::S => a.s = Some(f.bytes()?.to_vec()),
            field::attribute::T => a.t = Some(parse_tensor(&f)?),
            field::attribute::FLOATS => f.push_floats(&mut a.floats)?,
            field::attribute::INTS => f.push_varints(&mut a.ints)?,
            field::attribute::STRINGS => {
                push_bounded(&mut a.strings, f.bytes()?.to_vec(), NODE, "strings of an attribute", &f)?
            }
            field::attribute::G | field::attribute::GRAPHS => {
                push_bounded(&mut a.graphs, parse_graph(&f, depth + 1)?, NODE, "subgraphs of an attribute", &f)?
            }
            _ => {}
        }
    }
    Ok(a)
}

pub(super) fn parse_tensor<'a>(field: &Field<'a>) -> Decoded<TensorProto<'a>> {
    let mut t = TensorProto::default();
    for f in field.message()? {
        let f = f?;
        match f.number {
            field::tensor::DIMS => {
                f.push_varints(&mut t.dims)?;
                if t.dims.len() > NODE {
                    return Err(DecodeError {
                        offset: f.offset,
                        message: format!("more than {NODE} dimensions of a tensor, the limit"),
                    });
                }
            }
            field::tensor::DATA_TYPE => t.data_type = f.varint()?,
            field::tensor::FLOAT_DATA => f.push_floats(&mut t.float_data)?,
            field::tensor::INT32_DATA => f.push_varints(&mut t.int32_data)?,
            field::tensor::INT64_DATA => f.push_varints(&mut t.int64_data)?,
            field::tensor::NAME => t.name = f.string()?,
            field::tensor::RAW_DATA => t.raw_data = Some(f.bytes()?),
            field::tensor::DOUBLE_DATA => f.push_doubles(&mut t.double_data)?,
            field::tensor::EXTERNAL_DATA => {
                let (mut key, mut value) = (String::new(), String::new());
                for e in f.message()? {
                    let e = e?;
                    match e.number {
                        field::entry::KEY => key = e.string()?,
                        field::entry::VALUE => value = e.string()?,
                        _ => {}
                    }
                }
                t.external.push((key, value));
            }
            field::tensor::DATA_LOCATION => t.external_location = f.varint()? == 1,
            _ => {}
        }
    }
    Ok(t)
}
