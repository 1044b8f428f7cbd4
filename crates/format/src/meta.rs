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
use crate::arch::Architecture;
use crate::stages::{Stages, StagesPlan};

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
    pub stages: Option<Stages>,
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
    pub fn stages_plan(&self) -> Option<StagesPlan> {
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
