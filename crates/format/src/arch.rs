//! The recurrent stack's shape and options (the first field of the
//! metadata section, [`crate::Metadata::architecture`]): a leaf that the
//! metadata and the chunked-model stages both read.

use serde::{Deserialize, Serialize};

use super::Error;

/// The recurrent cell, with the gate order of its weight rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum CellKind {
    /// Long short-term memory; gates `i, f, g, o` (code 0).
    Lstm,
    /// Gated recurrent unit; gates `r, z, n` (code 1).
    Gru,
    /// Elman RNN with tanh; one gate (code 2).
    RnnTanh,
    /// Elman RNN with ReLU; one gate (code 3).
    RnnRelu,
}

impl CellKind {
    /// Number of gate blocks stacked in `weight_ih` / `weight_hh`.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
        }
    }

    /// The name used on the command line and in `--info`.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
            CellKind::RnnTanh => "rnn_tanh",
            CellKind::RnnRelu => "rnn_relu",
        }
    }

    /// Parses the names printed by [`CellKind::name`].
    pub fn from_name(name: &str) -> Option<CellKind> {
        CellKind::ALL.iter().copied().find(|k| k.name() == name)
    }
}

wire_codes!(CellKind, "cell kind", { Lstm = 0, Gru = 1, RnnTanh = 2, RnnRelu = 3 });

/// The shape and options of the recurrent stack, as `torch.nn.LSTM` names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    pub cell: CellKind,
    /// Features per timestep entering layer 0.
    pub input_size: u32,
    /// Units per layer and direction (`c` has this size).
    pub hidden_size: u32,
    /// LSTM projection size (`h` has this size); 0 means no projection.
    pub proj_size: u32,
    pub num_layers: u32,
    pub bidirectional: bool,
    /// ONNX peephole connections (LSTM only): tensors `weight_peephole_l{k}`.
    pub peepholes: bool,
    /// ONNX cell clip: gate pre-activations are clamped to `[-clip, clip]`.
    pub clip: Option<f32>,
    /// ONNX `input_forget` (LSTM only): the forget gate is `1 - i`.
    pub input_forget: bool,
    /// GRU only. `true` is PyTorch's form, `n = tanh(W_in x + b_in + r*(W_hn h + b_hn))`;
    /// `false` is ONNX's default, `n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)`.
    pub linear_before_reset: bool,
    /// Every layer reads the sequence from its last timestep to its first
    /// (ONNX `direction = "reverse"`); not with `bidirectional`. Not in the
    /// metadata bytes: header required flag [`crate::flags::REVERSE`].
    #[serde(skip)]
    pub reverse: bool,
}

impl Architecture {
    /// A plain PyTorch-style architecture with no ONNX options.
    pub fn new(cell: CellKind, input_size: usize, hidden_size: usize, num_layers: usize) -> Self {
        Architecture {
            cell,
            input_size: input_size as u32,
            hidden_size: hidden_size as u32,
            proj_size: 0,
            num_layers: num_layers as u32,
            bidirectional: false,
            peepholes: false,
            clip: None,
            input_forget: false,
            linear_before_reset: true,
            reverse: false,
        }
    }

    /// Why the stack cannot run one step at a time as steps arrive, or `None`
    /// when it can: the kind of model and what it needs, for messages
    /// ("a {kind} model cannot ...: {why}").
    pub fn whole_sequence_only(&self) -> Option<(&'static str, &'static str)> {
        if self.bidirectional {
            Some(("bidirectional", "its backward direction needs the whole sequence"))
        } else if self.reverse {
            Some(("reverse", "it reads the sequence from its last step to its first"))
        } else {
            None
        }
    }

    /// 2 when bidirectional, else 1.
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Size of `h`: the projection size when there is one, else the hidden size.
    pub fn output_size(&self) -> usize {
        if self.proj_size > 0 { self.proj_size as usize } else { self.hidden_size as usize }
    }

    /// Width of one timestep of the stack's output sequence: `directions * output_size`.
    pub fn sequence_output_size(&self) -> usize {
        self.directions() * self.output_size()
    }

    /// Features per timestep entering `layer`.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 { self.input_size as usize } else { self.sequence_output_size() }
    }

    pub fn hidden(&self) -> usize {
        self.hidden_size as usize
    }

    pub fn layers(&self) -> usize {
        self.num_layers as usize
    }

    /// Whether this cell carries a memory cell `c` besides `h`.
    pub fn has_cell_state(&self) -> bool {
        self.cell == CellKind::Lstm
    }

    /// Checks the combination of options and that every size is usable.
    pub fn validate(&self) -> Result<(), Error> {
        // Sizes are bounded so that every product the engine forms stays far from overflow.
        const MAX_SIZE: u32 = 1 << 20;
        for (field, v) in [("architecture.input_size", self.input_size), ("architecture.hidden_size", self.hidden_size)]
        {
            if v == 0 || v > MAX_SIZE {
                return Err(Error::invalid(field, format!("{v} is outside 1..={MAX_SIZE}")));
            }
        }
        // The spec's limit, cited as the spec states it.
        if self.num_layers == 0 || self.num_layers > 1024 {
            return Err(Error::invalid("architecture.num_layers", format!("{} is outside 1..=1024", self.num_layers)));
        }
        let lstm = self.cell == CellKind::Lstm;
        if self.proj_size > 0 && !lstm {
            return Err(Error::invalid("architecture.proj_size", "projection is only defined for LSTM"));
        }
        if self.proj_size >= self.hidden_size && self.proj_size > 0 {
            return Err(Error::invalid(
                "architecture.proj_size",
                format!("{} must be smaller than hidden_size {}", self.proj_size, self.hidden_size),
            ));
        }
        if self.peepholes && !lstm {
            return Err(Error::invalid("architecture.peepholes", "peepholes are only defined for LSTM"));
        }
        if self.input_forget && !lstm {
            return Err(Error::invalid("architecture.input_forget", "input_forget is only defined for LSTM"));
        }
        if self.reverse && self.bidirectional {
            return Err(Error::invalid(
                "architecture.reverse",
                "a bidirectional stack already has a backward direction; reverse is for one-direction stacks",
            ));
        }
        if let Some(clip) = self.clip
            && !(clip.is_finite() && clip > 0.0)
        {
            return Err(Error::invalid("architecture.clip", format!("{clip} is not a positive finite number")));
        }
        Ok(())
    }
}
