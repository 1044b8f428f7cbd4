//! What is trained: the network's shape ([`NetSpec`]), where each tensor lives
//! in the one flat parameter vector ([`Layout`]), initialisation, and the
//! conversion to lstmrt's canonical [`Weights`].
//!
//! All parameters (and their gradients, and the optimizer's moments) are one
//! flat `Vec`, so clipping by global norm, weight decay, Adam and the
//! reduction of two threads' gradients are plain loops over one slice. Each
//! tensor is stored exactly as lstmrt stores it (PyTorch shapes and gate
//! order), so export is a copy.

use lstmrt::Weights;
use lstmrt_format::{Architecture, CellKind, names};
use serde::{Deserialize, Serialize};

use crate::rng::{Rng, Sample};

/// The recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
pub enum Cell {
    /// LSTM, gates `i, f, g, o`.
    Lstm,
    /// GRU (PyTorch's form), gates `r, z, n`.
    Gru,
    /// Elman RNN with tanh.
    Rnn,
}

impl Cell {
    /// Gate blocks stacked in `weight_ih` / `weight_hh`.
    pub fn gates(self) -> usize {
        self.kind().gates()
    }

    /// lstmrt's name for the cell.
    pub fn kind(self) -> CellKind {
        match self {
            Cell::Lstm => CellKind::Lstm,
            Cell::Gru => CellKind::Gru,
            Cell::Rnn => CellKind::RnnTanh,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
            Cell::Rnn => "rnn",
        }
    }
}

/// What enters the recurrent stack at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Token ids below `vocab`; looked up in an embedding of width `embed`,
    /// or one-hot (width `vocab`) when `embed == 0`.
    Tokens { vocab: usize, embed: usize },
    /// Real vectors of `features` values.
    Dense { features: usize },
}

impl Input {
    /// Width of the vectors entering layer 0.
    pub fn width(self) -> usize {
        match self {
            Input::Tokens { vocab, embed: 0 } => vocab,
            Input::Tokens { embed, .. } => embed,
            Input::Dense { features } => features,
        }
    }
}

/// How outputs are compared with targets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Loss {
    /// Softmax cross-entropy against a class id; accuracy is argmax == class.
    CrossEntropy,
    /// Squared error summed over outputs; a prediction counts as correct when
    /// every output is within `tolerance` of its target.
    SquaredError { tolerance: f32 },
}

/// The linear output layer after the stack.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    pub out: usize,
}

/// The whole network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSpec {
    pub cell: Cell,
    pub input: Input,
    pub hidden: usize,
    /// LSTM projection size; 0 for none.
    pub proj: usize,
    pub layers: usize,
    /// Without a head the loss reads the top layer's `h` directly.
    pub head: Option<HeadSpec>,
    pub loss: Loss,
}

impl NetSpec {
    /// Size of `h`: the projection size, or the hidden size.
    pub fn output_size(&self) -> usize {
        if self.proj > 0 { self.proj } else { self.hidden }
    }

    /// Width of what the loss reads at one position (head outputs, or `h`).
    pub fn prediction_size(&self) -> usize {
        self.head.map_or(self.output_size(), |h| h.out)
    }

    /// Input width of `layer`.
    pub fn layer_input(&self, layer: usize) -> usize {
        if layer == 0 { self.input.width() } else { self.output_size() }
    }

    /// lstmrt's architecture for this network.
    pub fn architecture(&self) -> Architecture {
        let mut arch = Architecture::new(self.cell.kind(), self.input.width(), self.hidden, self.layers);
        arch.proj_size = self.proj as u32;
        arch
    }

    /// Checks sizes and combinations; the message names the option.
    pub fn validate(&self) -> Result<(), String> {
        if self.hidden == 0 || self.layers == 0 || self.input.width() == 0 {
            return Err("hidden size, layers and input width must be at least 1".into());
        }
        if self.proj > 0 && self.cell != Cell::Lstm {
            return Err("--proj is only defined for LSTM".into());
        }
        if self.proj >= self.hidden && self.proj > 0 {
            return Err(format!("--proj {} must be smaller than --hidden {}", self.proj, self.hidden));
        }
        if let Some(h) = self.head
            && h.out == 0
        {
            return Err("the head needs at least one output".into());
        }
        self.architecture().validate().map_err(|e| e.to_string())
    }
}

/// Offsets of one layer's tensors in the flat parameter vector.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSlots {
    pub w_ih: usize,
    pub w_hh: usize,
    pub b_ih: usize,
    pub b_hh: usize,
    pub w_hr: Option<usize>,
}

/// One named tensor in the flat vector.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSlot {
    /// lstmrt's tensor name (`weight_ih_l0`, `head.weight`, ...).
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    /// Matrices take weight decay; biases do not.
    pub decay: bool,
}

impl TensorSlot {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Where every tensor of a [`NetSpec`] sits in the flat parameter vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub tensors: Vec<TensorSlot>,
    pub embedding: Option<usize>,
    pub layers: Vec<LayerSlots>,
    pub head_weight: Option<usize>,
    pub head_bias: Option<usize>,
    /// Total number of parameters.
    pub len: usize,
}

impl Layout {
    /// The layout of `spec`, in the order lstmrt's writer stores tensors.
    pub fn of(spec: &NetSpec) -> Layout {
        let mut tensors = Vec::new();
        let mut len = 0;
        let mut push = |name: String, shape: Vec<usize>, decay: bool| {
            let offset = len;
            len += shape.iter().product::<usize>();
            tensors.push(TensorSlot { name, shape, offset, decay });
            offset
        };
        let embedding = match spec.input {
            Input::Tokens { vocab, embed } if embed > 0 => {
                Some(push(names::EMBEDDING.into(), vec![vocab, embed], true))
            }
            _ => None,
        };
        let gh = spec.cell.gates() * spec.hidden;
        let p = spec.output_size();
        let layers = (0..spec.layers)
            .map(|l| LayerSlots {
                w_ih: push(names::weight_ih(l, 0), vec![gh, spec.layer_input(l)], true),
                w_hh: push(names::weight_hh(l, 0), vec![gh, p], true),
                b_ih: push(names::bias_ih(l, 0), vec![gh], false),
                b_hh: push(names::bias_hh(l, 0), vec![gh], false),
                w_hr: (spec.proj > 0).then(|| push(names::weight_hr(l, 0), vec![p, spec.hidden], true)),
            })
            .collect();
        let (head_weight, head_bias) = match spec.head {
            Some(h) => (
                Some(push(names::HEAD_WEIGHT.into(), vec![h.out, p], true)),
                Some(push(names::HEAD_BIAS.into(), vec![h.out], false)),
            ),
            None => (None, None),
        };
        Layout { tensors, embedding, layers, head_weight, head_bias, len }
    }
}

/// A network: its shape and where its parameters sit.
#[derive(Debug, Clone, PartialEq)]
pub struct Net {
    pub spec: NetSpec,
    pub layout: Layout,
}

impl Net {
    pub fn new(spec: NetSpec) -> Net {
        let layout = Layout::of(&spec);
        Net { spec, layout }
    }
}

/// How parameters start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Init {
    /// Multiplies the default range of the recurrent matrices `weight_hh`
    /// (1 = PyTorch's `U(-1/sqrt(H), 1/sqrt(H))`); large values make the
    /// recurrence expansive, which is how the exploding gradient is shown.
    pub recurrent_scale: f64,
    /// Initial value of the LSTM forget-gate bias (`bias_ih`'s `f` rows);
    /// 1 is the usual choice that lets memories last from the start.
    pub forget_bias: f64,
}

impl Default for Init {
    fn default() -> Self {
        Init { recurrent_scale: 1.0, forget_bias: 1.0 }
    }
}

/// Fresh parameters: PyTorch's uniform `U(-1/sqrt(H), 1/sqrt(H))` for the
/// recurrent layers, `U(-1/sqrt(P), 1/sqrt(P))` for the head weight, zero
/// head bias, and embedding rows of unit expected norm.
pub fn init_params(spec: &NetSpec, layout: &Layout, init: &Init, rng: &mut Rng) -> Vec<f32> {
    let mut p = vec![0.0f32; layout.len];
    let mut uniform = |slice: &mut [f32], bound: f64| {
        slice.iter_mut().for_each(|v| *v = rng.range_f64(-bound, bound) as f32);
    };
    if let (Some(off), Input::Tokens { vocab, embed }) = (layout.embedding, spec.input) {
        // Variance 1/embed per element: each row has expected squared norm 1.
        uniform(&mut p[off..off + vocab * embed], (3.0 / embed as f64).sqrt());
    }
    let k = 1.0 / (spec.hidden as f64).sqrt();
    let gh = spec.cell.gates() * spec.hidden;
    for (l, slots) in layout.layers.iter().enumerate() {
        let input = spec.layer_input(l);
        uniform(&mut p[slots.w_ih..slots.w_ih + gh * input], k);
        uniform(&mut p[slots.w_hh..slots.w_hh + gh * spec.output_size()], k * init.recurrent_scale);
        uniform(&mut p[slots.b_ih..slots.b_ih + gh], k);
        uniform(&mut p[slots.b_hh..slots.b_hh + gh], k);
        if let Some(off) = slots.w_hr {
            uniform(&mut p[off..off + spec.output_size() * spec.hidden], k);
        }
        if spec.cell == Cell::Lstm {
            let h = spec.hidden;
            p[slots.b_ih + h..slots.b_ih + 2 * h].fill(init.forget_bias as f32);
            p[slots.b_hh + h..slots.b_hh + 2 * h].fill(0.0);
        }
    }
    if let (Some(w), Some(b), Some(head)) = (layout.head_weight, layout.head_bias, spec.head) {
        let bound = 1.0 / (spec.output_size() as f64).sqrt();
        uniform(&mut p[w..w + head.out * spec.output_size()], bound);
        p[b..b + head.out].fill(0.0);
    }
    p
}

/// lstmrt's canonical weights for `params` (which follow `layout`).
pub fn to_weights(spec: &NetSpec, layout: &Layout, params: &[f32]) -> Weights {
    let arch = spec.architecture();
    let mut weights = Weights::default();
    for t in &layout.tensors {
        let stored = weights.set(&arch, &t.name, params[t.range()].to_vec());
        debug_assert!(stored, "lstmrt knows tensor {}", t.name);
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cell: Cell, proj: usize) -> NetSpec {
        NetSpec {
            cell,
            input: Input::Tokens { vocab: 11, embed: 5 },
            hidden: 7,
            proj,
            layers: 2,
            head: Some(HeadSpec { out: 3 }),
            loss: Loss::CrossEntropy,
        }
    }

    #[test]
    fn layout_covers_exactly_the_tensors_lstmrt_expects() {
        for (cell, proj) in [(Cell::Lstm, 0), (Cell::Lstm, 4), (Cell::Gru, 0), (Cell::Rnn, 0)] {
            let spec = spec(cell, proj);
            let layout = Layout::of(&spec);
            let mut meta = lstmrt_format::Metadata::new(spec.architecture());
            meta.embedding = Some(lstmrt_format::Embedding { num_embeddings: 11 });
            meta.head = Some(lstmrt_format::Head {
                out_features: 3,
                activation: lstmrt_format::HeadActivation::Softmax,
                task: lstmrt_format::HeadTask::Other,
                labels: vec![],
            });
            let expected = lstmrt_format::expected_tensors(&meta);
            assert_eq!(expected.len(), layout.tensors.len());
            for (e, t) in expected.iter().zip(&layout.tensors) {
                assert_eq!(e.name, t.name);
                assert_eq!(e.shape.iter().map(|&d| d as usize).collect::<Vec<_>>(), t.shape);
            }
            let params = init_params(&spec, &layout, &Init::default(), &mut Rng::new(1));
            to_weights(&spec, &layout, &params).check(&meta).unwrap();
        }
    }

    #[test]
    fn init_is_deterministic_and_sets_forget_bias() {
        let spec = spec(Cell::Lstm, 0);
        let layout = Layout::of(&spec);
        let init = Init { recurrent_scale: 1.0, forget_bias: 2.5 };
        let a = init_params(&spec, &layout, &init, &mut Rng::new(9));
        let b = init_params(&spec, &layout, &init, &mut Rng::new(9));
        assert_eq!(a, b);
        let b_ih = layout.layers[1].b_ih;
        assert!(a[b_ih + 7..b_ih + 14].iter().all(|&v| v == 2.5));
        assert_ne!(a, init_params(&spec, &layout, &init, &mut Rng::new(10)));
    }
}
