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
            field::model::IR_VERSION => ir_version |= field.varint().is_ok(),
            field::model::GRAPH => graph |= field.bytes().is_ok(),
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
    for (_, t) in named_tensors(&model.graph).into_iter().filter(|(_, t)| t.external_location) {
        if let Some((_, location)) = t.external.iter().find(|(k, _)| k == "location") {
            let file = dir.join(location);
            if file.exists() && !files.contains(&file) {
                files.push(file);
            }
        }
    }
    files
}

/// The float tensors of the model by name, as a state dict: the
/// initializers and `Constant` values of the main graph and of every
/// subgraph (an `If`'s branches). An ONNX export of a PyTorch module
/// keeps the module's parameter names (`model.decoder.rnn.weight_ih`; in
/// silero_vad.onnx's 8 kHz branch
/// `If_0_else_branch__Inline_0__decoder.rnn.weight_ih`), so `--arch` can
/// name them. Tensors of other types (shapes, indices) are left out.
pub fn initializers(bytes: &[u8], path: &Path) -> Result<Vec<crate::SourceTensor>, ImportError> {
    let fail = |kind| ImportError::new(path, kind);
    let model = parse_model(bytes).map_err(|source| fail(E::Protobuf { source }))?;
    let dir = model_dir(path);
    let floats = [dtype::FLOAT, dtype::DOUBLE, dtype::FLOAT16, dtype::BFLOAT16];
    let mut out = Vec::new();
    for (name, t) in named_tensors(&model.graph).into_iter().filter(|(_, t)| floats.contains(&t.data_type)) {
        let v = t.values(&dir).map_err(fail)?;
        out.push(crate::SourceTensor { name: name.to_string(), shape: v.shape, data: v.data });
    }
    Ok(out)
}

/// Every named tensor of `graph` and of the subgraphs of its nodes (an
/// `If`'s branches, at any depth the parser allows): initializers by their
/// names, `Constant` nodes' tensors by the node's output, as spox-made
/// exports keep weights inside `If` branches.
fn named_tensors<'g, 'a>(graph: &'g GraphProto<'a>) -> Vec<(&'g str, &'g TensorProto<'a>)> {
    let mut out = Vec::new();
    let mut graphs = vec![graph];
    while let Some(graph) = graphs.pop() {
        out.extend(graph.initializers.iter().map(|t| (t.name.as_str(), t)));
        for node in &graph.nodes {
            if node.op_type == "Constant" {
                let value = node.attributes.iter().find(|a| a.name == "value").and_then(|a| a.t.as_ref());
                if let (Some(t), Some(name)) = (value, node.outputs.first()) {
                    out.push((name.as_str(), t));
                }
            }
            graphs.extend(node.attributes.iter().flat_map(|a| &a.graphs));
        }
    }
    out
}

mod graph;
mod proto;
mod tensor;

use graph::*;
use proto::*;
use tensor::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// A length-delimited protobuf field (`number`, wire type 2).
    fn pb(number: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for mut v in [((number as u64) << 3) | 2, body.len() as u64] {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        }
        out.extend_from_slice(body);
        out
    }

    /// A node of `op_type` with one output and one attribute `attr`.
    fn node_with(op_type: &str, output: &str, attr: &[u8]) -> Vec<u8> {
        [
            pb(field::node::OUTPUT, output.as_bytes()),
            pb(field::node::OP_TYPE, op_type.as_bytes()),
            pb(field::node::ATTRIBUTE, attr),
        ]
        .concat()
    }

    /// A float tensor `[2]` of raw little-endian data.
    fn float_tensor(values: [f32; 2]) -> Vec<u8> {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        [vec![0x08, 2], vec![0x10, dtype::FLOAT as u8], pb(field::tensor::RAW_DATA, &raw)].concat()
    }

    /// `If` nodes nested `depth` deep, the innermost branch holding a
    /// `Constant` named `w`.
    fn nested_constant(depth: usize) -> Vec<u8> {
        let value =
            [pb(field::attribute::NAME, b"value"), pb(field::attribute::T, &float_tensor([1.5, -2.0]))].concat();
        let mut graph = pb(field::graph::NODE, &node_with("Constant", "w", &value));
        for _ in 0..depth {
            let branch = [pb(field::attribute::NAME, b"else_branch"), pb(field::attribute::G, &graph)].concat();
            graph = pb(field::graph::NODE, &node_with("If", "y", &branch));
        }
        [vec![0x08, 8], pb(field::model::GRAPH, &graph)].concat()
    }

    #[test]
    fn constants_inside_if_branches_are_named_tensors_within_a_depth_limit() {
        for depth in [0, 1, GRAPH_DEPTH] {
            let got = initializers(&nested_constant(depth), Path::new("m.onnx")).unwrap();
            assert_eq!(got.len(), 1, "depth {depth}");
            assert_eq!(
                (got[0].name.as_str(), &got[0].shape[..], &got[0].data[..]),
                ("w", &[2usize][..], &[1.5f32, -2.0][..])
            );
        }
        let err = initializers(&nested_constant(GRAPH_DEPTH + 1), Path::new("m.onnx")).unwrap_err();
        assert!(
            err.to_string().contains(&format!("subgraphs nested more than {GRAPH_DEPTH} deep, the limit")),
            "{err}"
        );
    }

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
