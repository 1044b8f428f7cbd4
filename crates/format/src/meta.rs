//! The metadata section: what the network is and where it came from.
//!
//! These structs are encoded with bincode 2 in the fixed configuration of
//! [`super::bincode_config`]; `format-spec.md` lists their fields in order
//! with the byte encoding of each. Field order is part of the format: never
//! reorder, only append (with a minor version bump).
//!
//! Strings are decoded borrowed from the file and copied only after bincode
//! has checked that their bytes are present, so a hostile length can never
//! size an allocation (see `borrowed` below).

use serde::{Deserialize, Deserializer, Serialize};

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

/// An embedding table in front of the stack: token id -> input vector.
/// Its tensor is `embedding.weight`, shape `[num_embeddings, input_size]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    pub num_embeddings: u32,
}

/// What the output head's activation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum HeadActivation {
    None,
    Softmax,
    Sigmoid,
}
wire_codes!(HeadActivation, "head activation", { None = 0, Softmax = 1, Sigmoid = 2 });

/// How the head's outputs are meant to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum HeadTask {
    /// Plain outputs (regression, tagging, anything else).
    Other,
    /// One label per sequence, read at the last step; `labels` names the classes.
    Classifier,
    /// Next-token distribution over the vocabulary at every step.
    LanguageModel,
}
wire_codes!(HeadTask, "head task", { Other = 0, Classifier = 1, LanguageModel = 2 });

/// A linear layer after the stack: `y = act(W x + b)` applied to each timestep's
/// output. Tensors `head.weight` `[out_features, directions*output_size]` and
/// `head.bias` `[out_features]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub out_features: u32,
    pub activation: HeadActivation,
    pub task: HeadTask,
    /// One name per output, or empty.
    #[serde(deserialize_with = "borrowed::strings")]
    pub labels: Vec<String>,
}

/// How text is cut into tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum Tokenizer {
    /// Each Unicode scalar value is a token.
    Char,
    /// Tokens are separated by whitespace; `.,!?;:` are split off as tokens of their own.
    Word,
}
wire_codes!(Tokenizer, "tokenizer", { Char = 0, Word = 1 });

/// The token list of a text model; a token's id is its index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    pub tokenizer: Tokenizer,
    /// Lower-case text before looking tokens up.
    pub lowercase: bool,
    #[serde(deserialize_with = "borrowed::strings")]
    pub tokens: Vec<String>,
    /// Id used for tokens not in the list; without it unknown tokens are an error.
    pub unknown: Option<u32>,
}

/// A free-form key/value pair of provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    #[serde(deserialize_with = "borrowed::string")]
    pub key: String,
    #[serde(deserialize_with = "borrowed::string")]
    pub value: String,
}

/// Where the model came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Provenance {
    /// The program that wrote the file, with its version (`lstm-convert 0.1.0`).
    #[serde(deserialize_with = "borrowed::string")]
    pub producer: String,
    /// The file the model was made from, if any.
    #[serde(deserialize_with = "borrowed::string")]
    pub source_file: String,
    pub entries: Vec<KeyValue>,
}

impl Provenance {
    /// The value of the first entry named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|e| e.key == key).map(|e| e.value.as_str())
    }

    /// Appends an entry.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.push(KeyValue { key: key.into(), value: value.into() });
    }
}

/// Everything in the metadata section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub architecture: Architecture,
    pub embedding: Option<Embedding>,
    pub head: Option<Head>,
    pub vocabulary: Option<Vocabulary>,
    pub provenance: Provenance,
    /// The front-end and head of a model that reads chunks of a signal
    /// (format 1.3). Not in the metadata bytes: the stages section.
    #[serde(skip)]
    pub stages: Option<crate::stages::Stages>,
}

impl Metadata {
    /// Metadata for a bare recurrent stack.
    pub fn new(architecture: Architecture) -> Self {
        Metadata {
            architecture,
            embedding: None,
            head: None,
            vocabulary: None,
            provenance: Provenance::default(),
            stages: None,
        }
    }

    /// The sizes of the stages, when the model has them (checked by
    /// [`Metadata::validate`], so a model that opened always has a plan).
    pub fn stages_plan(&self) -> Option<crate::stages::StagesPlan> {
        self.stages.as_ref().and_then(|s| s.plan(&self.architecture).ok())
    }

    /// Checks every field and the consistency between them.
    pub fn validate(&self) -> Result<(), Error> {
        let arch = &self.architecture;
        arch.validate()?;
        if let Some(stages) = &self.stages {
            stages.plan(arch)?;
            for (what, present) in [
                ("embedding", self.embedding.is_some()),
                ("head", self.head.is_some()),
                ("vocabulary", self.vocabulary.is_some()),
            ] {
                if present {
                    return Err(Error::invalid(
                        what,
                        "a model with stages reads chunks of a signal and has its own head (the back stages)",
                    ));
                }
            }
        }
        if let Some(e) = &self.embedding
            && (e.num_embeddings == 0 || e.num_embeddings > 1 << 26)
        {
            return Err(Error::invalid(
                "embedding.num_embeddings",
                format!("{} is outside 1..=2^26", e.num_embeddings),
            ));
        }
        if let Some(h) = &self.head {
            if h.out_features == 0 || h.out_features > 1 << 26 {
                return Err(Error::invalid("head.out_features", format!("{} is outside 1..=2^26", h.out_features)));
            }
            if !h.labels.is_empty() && h.labels.len() != h.out_features as usize {
                return Err(Error::invalid(
                    "head.labels",
                    format!("{} labels for {} outputs", h.labels.len(), h.out_features),
                ));
            }
            if h.task == HeadTask::LanguageModel {
                let vocab_len = self.vocabulary.as_ref().map(|v| v.tokens.len());
                if vocab_len != Some(h.out_features as usize) {
                    return Err(Error::invalid(
                        "head.task",
                        format!("a language-model head needs a vocabulary of {} tokens", h.out_features),
                    ));
                }
            }
        }
        if let Some(v) = &self.vocabulary {
            if v.tokens.is_empty() {
                return Err(Error::invalid("vocabulary.tokens", "the vocabulary is empty"));
            }
            let mut seen = std::collections::HashSet::with_capacity(v.tokens.len());
            for t in &v.tokens {
                if t.is_empty() {
                    return Err(Error::invalid("vocabulary.tokens", "a token is the empty string"));
                }
                if t.len() > crate::limits::MAX_TOKEN_BYTES {
                    return Err(Error::invalid(
                        "vocabulary.tokens",
                        format!(
                            "a token of {} bytes is longer than the limit of {}",
                            t.len(),
                            crate::limits::MAX_TOKEN_BYTES
                        ),
                    ));
                }
                if !seen.insert(t.as_str()) {
                    return Err(Error::invalid("vocabulary.tokens", format!("token {t:?} appears twice")));
                }
            }
            if let Some(u) = v.unknown
                && u as usize >= v.tokens.len()
            {
                return Err(Error::invalid(
                    "vocabulary.unknown",
                    format!("id {u} is not below the vocabulary size {}", v.tokens.len()),
                ));
            }
            // Token ids feed either an embedding table or a one-hot input.
            let ids = match &self.embedding {
                Some(e) => e.num_embeddings as usize,
                None => arch.input_size as usize,
            };
            if ids != v.tokens.len() {
                return Err(Error::invalid(
                    "vocabulary.tokens",
                    format!(
                        "{} tokens, but the {} takes {ids} ids",
                        v.tokens.len(),
                        if self.embedding.is_some() { "embedding" } else { "one-hot input" }
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Deserializers that borrow strings from the input before copying them.
///
/// bincode's owned `String` decoding allocates the declared length before it
/// checks that the bytes are there; borrowing first makes bincode check the
/// length against the section, so the copy is never larger than the file.
pub(crate) mod borrowed {
    use super::*;

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        <&'de str>::deserialize(d).map(str::to_owned)
    }

    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        // serde caps the pre-allocation of a sequence at 1 MiB whatever its declared length.
        Vec::<&'de str>::deserialize(d).map(|v| v.into_iter().map(str::to_owned).collect())
    }
}
