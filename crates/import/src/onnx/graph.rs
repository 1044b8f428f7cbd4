//! The graph: recurrent nodes found, traced back through shape
//! operations to their inputs, and converted layer by layer.

use super::*;

/// Recurrent op types.
pub(super) const RECURRENT: [&str; 3] = ["LSTM", "GRU", "RNN"];
/// Ops that only move data around: exporters put them between layers.
pub(super) const SHAPE_OPS: [&str; 6] = ["Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten"];

pub(super) struct Graph<'g, 'a> {
    pub(super) g: &'g GraphProto<'a>,
    pub(super) dir: &'g Path,
    /// Output name -> (node index, output position).
    pub(super) producer: HashMap<&'g str, (usize, usize)>,
    pub(super) initializers: HashMap<&'g str, &'g TensorProto<'a>>,
}

/// Where a recurrent node's `X` comes from.
pub(super) enum XSource<'g> {
    GraphInput(&'g str),
    Layer(usize),
}

/// Where an initial state comes from.
pub(super) enum StateSource {
    Zeros,
    GraphInput(String),
    /// A non-zero constant, its values in `[directions, batch, hidden]` order.
    Constant(Values),
}

/// The rows of a constant initial state `[directions, batch, hidden]`, one per
/// direction: the file stores one initial state per layer and direction, so
/// every batch row must be the same.
pub(super) fn constant_state_rows(data: &[f32], directions: usize, hidden: usize) -> Result<Vec<Vec<f32>>, String> {
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
pub(super) struct Layer {
    pub(super) node: usize,
    pub(super) cell: CellKind,
    pub(super) directions: usize,
    /// `direction = "reverse"`: one direction, reading the sequence from the end.
    pub(super) reverse: bool,
    pub(super) hidden: usize,
    pub(super) input: usize,
    pub(super) clip: Option<f32>,
    pub(super) input_forget: bool,
    pub(super) linear_before_reset: bool,
    pub(super) layout: i64,
    /// Per direction, canonical order (peepholes `None` when the node has no `P`).
    pub(super) weights: Vec<LayerWeights>,
}

impl<'g, 'a> Graph<'g, 'a> {
    pub(super) fn new(g: &'g GraphProto<'a>, dir: &'g Path) -> Self {
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

    pub(super) fn node_id(&self, i: usize) -> NodeId {
        let n = &self.g.nodes[i];
        NodeId::new(n.op_type.clone(), n.name.clone(), i)
    }

    /// The static number of timesteps of graph input `x` (dimension 0, or 1
    /// for `layout = 1`), when the model declares it.
    pub(super) fn static_steps(&self, x: &str, layout: i64) -> Option<u64> {
        let i = self.g.inputs.iter().position(|n| n == x)?;
        *self.g.input_dims.get(i)?.get(if layout == 1 { 1 } else { 0 })?
    }

    pub(super) fn is_graph_input(&self, name: &str) -> bool {
        self.g.inputs.iter().any(|i| i == name) && !self.initializers.contains_key(name)
    }

    /// The value of `name` if it is a constant: an initializer or a `Constant` node's output.
    pub(super) fn constant(&self, name: &str) -> Result<Option<Values>, ImportErrorKind> {
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

    pub(super) fn convert(&self) -> Result<(Metadata, Weights, Notes), ImportErrorKind> {
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
    pub(super) fn trace_x(&self, i: usize) -> Result<(XSource<'g>, Vec<usize>), ImportErrorKind> {
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
    pub(super) fn check_between_layers(&self, prev: usize, next: usize, path: &[usize]) -> Result<(), ImportErrorKind> {
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
    pub(super) fn read_layer(&self, i: usize, notes: &mut Notes) -> Result<Layer, ImportErrorKind> {
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
    pub(super) fn state_source(
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
    pub(super) fn note_downstream(&self, last: usize, notes: &mut Notes) {
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

pub(super) fn attr<'n, 'a>(n: &'n NodeProto<'a>, name: &str) -> Option<&'n AttributeProto<'a>> {
    n.attributes.iter().find(|a| a.name == name)
}

/// `Add x3, MatMul` style summary of op types.
pub(super) fn summarize(ops: &[&str]) -> String {
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
