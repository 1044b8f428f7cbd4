//! Architecture descriptions: a small JSON file naming the stages around a
//! recurrent module of a PyTorch state dict (`lstm-convert weights.safetensors
//! --arch ARCH`), so conv-recurrent models (voice activity, keyword spotting,
//! denoisers) convert whole. `docs/arch.md` describes the file;
//! `models/silero_vad/arch.json` is one.
//!
//! ```json
//! { "lstmrt_arch": 1,
//!   "input": { "chunk": 512, "channels": 1, "context": 64, "sample_rate": 16000 },
//!   "front": [ { "stage": "conv1d", "weight": "stft_conv.weight", "stride": 128,
//!                "padding": [0, 64], "pad_mode": "reflect" },
//!              { "stage": "magnitude" } ],
//!   "recurrent": { "prefix": "lstm_cell" },
//!   "back": [ { "stage": "relu" }, { "stage": "conv1d", "weight": "final_conv.weight",
//!               "bias": "final_conv.bias", "activation": "sigmoid" }, { "stage": "mean" } ] }
//! ```

use std::collections::BTreeMap;

use lstmrt::Weights;
use lstmrt_format::{Chain, Metadata, Padding, Stage, StageActivation, StageKind, Stages};
use serde_json::Value;

use crate::SourceTensor;

/// Largest description read: far above any real one.
pub const MAX_ARCH_BYTES: u64 = 1 << 20;

/// A parsed description: the stages (tensor names still to be resolved)
/// and which recurrent module of the state dict sits between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    pub stages: Stages,
    /// Per stage, front then back: the state dict's weight and bias names
    /// (conv1d and linear stages only).
    tensors: Vec<Option<(String, Option<String>)>>,
    /// For conv1d stages that state them: the kernel, checked against the weight.
    kernels: Vec<Option<usize>>,
    /// `recurrent.prefix`: picks the module, as `--prefix` does.
    pub prefix: Option<String>,
    /// `recurrent.cell`, as `--cell`.
    pub cell: Option<lstmrt_format::CellKind>,
    /// `linear` stages: their weights are `[out, in]`, not `[out, in, kernel]`.
    linear: Vec<bool>,
}

/// Why a description cannot be used; the message names the stage and key.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchError(pub String);

impl std::fmt::Display for ArchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ArchError> {
    Err(ArchError(msg.into()))
}

/// JSON read as a [`Value`], except that an object naming a key twice is
/// an error: `serde_json` keeps the last silently, and a description whose
/// second `"stride"` quietly wins is a mistake to point out, not to guess.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Strict(Value::Array(items)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("the key `{key}` appears twice in one object")));
            }
            let Strict(v) = map.next_value()?;
            object.insert(key, v);
        }
        Ok(Strict(Value::Object(object)))
    }
}

/// Reads a description from its JSON text.
pub fn parse(text: &str) -> Result<Arch, ArchError> {
    let Strict(v) = serde_json::from_str(text).map_err(|e| ArchError(format!("not valid JSON: {e}")))?;
    let top = v.as_object().ok_or_else(|| ArchError("the description is not a JSON object".into()))?;
    known_keys("the description", top, &["lstmrt_arch", "name", "input", "front", "recurrent", "back"])?;
    match top.get("lstmrt_arch") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(other) => return err(format!("`lstmrt_arch` is {other}; this converter reads version 1")),
        None => return err("`lstmrt_arch`: 1 is missing (the description's version)"),
    }
    let input = top
        .get("input")
        .and_then(Value::as_object)
        .ok_or_else(|| ArchError("`input` (an object) is missing".into()))?;
    known_keys("`input`", input, &["chunk", "channels", "context", "sample_rate"])?;
    let num = |what: &str, key: &str, v: Option<&Value>, default: Option<u64>| -> Result<u32, ArchError> {
        match v {
            None => default.map(|d| d as u32).ok_or_else(|| ArchError(format!("{what}: `{key}` is missing"))),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ArchError(format!("{what}: `{key}` is {v}, not a whole number below 2^32"))),
        }
    };
    let mut arch = Arch {
        stages: Stages {
            chunk: num("`input`", "chunk", input.get("chunk"), None)?,
            channels: num("`input`", "channels", input.get("channels"), Some(1))?,
            context: num("`input`", "context", input.get("context"), Some(0))?,
            sample_rate: num("`input`", "sample_rate", input.get("sample_rate"), Some(0))?,
            front: Vec::new(),
            back: Vec::new(),
        },
        tensors: Vec::new(),
        kernels: Vec::new(),
        prefix: None,
        cell: None,
        linear: Vec::new(),
    };
    if let Some(r) = top.get("recurrent") {
        let r = r.as_object().ok_or_else(|| ArchError("`recurrent` is not an object".into()))?;
        known_keys("`recurrent`", r, &["prefix", "cell"])?;
        arch.prefix = r.get("prefix").map(|p| text_of("`recurrent`", "prefix", p)).transpose()?;
        arch.cell = match r.get("cell") {
            None => None,
            Some(c) => {
                let name = text_of("`recurrent`", "cell", c)?;
                Some(lstmrt_format::CellKind::from_name(&name).ok_or_else(|| {
                    ArchError(format!("`recurrent`: cell `{name}` is not one of lstm, gru, rnn_tanh, rnn_relu"))
                })?)
            }
        };
    }
    for chain in [Chain::Front, Chain::Back] {
        let Some(list) = top.get(chain.name()) else { continue };
        let list = list.as_array().ok_or_else(|| ArchError(format!("`{}` is not a list of stages", chain.name())))?;
        for (i, s) in list.iter().enumerate() {
            let what = format!("{} stage {i}", chain.name());
            let (stage, tensors, kernel, linear) = parse_stage(&what, s)?;
            match chain {
                Chain::Front => arch.stages.front.push(stage),
                Chain::Back => arch.stages.back.push(stage),
            }
            arch.tensors.push(tensors);
            arch.kernels.push(kernel);
            arch.linear.push(linear);
        }
    }
    Ok(arch)
}

type ParsedStage = (Stage, Option<(String, Option<String>)>, Option<usize>, bool);

fn parse_stage(what: &str, v: &Value) -> Result<ParsedStage, ArchError> {
    let o = v.as_object().ok_or_else(|| ArchError(format!("{what} is not an object")))?;
    let kind = o.get("stage").ok_or_else(|| ArchError(format!("{what}: `stage` (its kind) is missing")))?;
    let kind = text_of(what, "stage", kind)?;
    let what = format!("{what} ({kind})");
    let what = what.as_str();
    let count = |key: &str, default: u32| -> Result<u32, ArchError> {
        match o.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ArchError(format!("{what}: `{key}` is {v}, not a whole number"))),
        }
    };
    let activation = |key: &str| -> Result<StageActivation, ArchError> {
        match o.get(key) {
            None => Ok(StageActivation::None),
            Some(v) => {
                let name = text_of(what, key, v)?;
                StageActivation::from_name(&name).ok_or_else(|| {
                    ArchError(format!("{what}: activation `{name}` is not one of none, relu, sigmoid, tanh, softmax"))
                })
            }
        }
    };
    match kind.as_str() {
        "conv1d" | "linear" => {
            let linear = kind == "linear";
            let keys: &[&str] = if linear {
                &["stage", "weight", "bias", "activation"]
            } else {
                &["stage", "weight", "bias", "kernel", "stride", "dilation", "padding", "pad_mode", "activation"]
            };
            known_keys(what, o, keys)?;
            let weight =
                o.get("weight").ok_or_else(|| ArchError(format!("{what}: `weight` (a tensor name) is missing")))?;
            let weight = text_of(what, "weight", weight)?;
            let bias = o.get("bias").filter(|b| !b.is_null()).map(|b| text_of(what, "bias", b)).transpose()?;
            let (pad_left, pad_right) = match o.get("padding") {
                None => (0, 0),
                Some(Value::Array(a)) if a.len() == 2 => {
                    let side = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
                    match (side(&a[0]), side(&a[1])) {
                        (Some(l), Some(r)) => (l, r),
                        _ => return err(format!("{what}: `padding` [left, right] must be whole numbers")),
                    }
                }
                Some(_) => {
                    let p = count("padding", 0)?;
                    (p, p)
                }
            };
            let padding = match o.get("pad_mode") {
                None => Padding::Zeros,
                Some(v) => {
                    let name = text_of(what, "pad_mode", v)?;
                    Padding::from_name(&name)
                        .ok_or_else(|| ArchError(format!("{what}: pad_mode `{name}` is not zeros or reflect")))?
                }
            };
            let kernel = o.get("kernel").map(|_| count("kernel", 0).map(|k| k as usize)).transpose()?;
            let stage = Stage {
                // Channels and taps come from the weight's shape when it is resolved.
                stride: count("stride", 1)?,
                dilation: count("dilation", 1)?,
                pad_left,
                pad_right,
                padding,
                activation: activation("activation")?,
                ..Stage::new(StageKind::Conv1d)
            };
            Ok((stage, Some((weight, bias)), kernel, linear))
        }
        "magnitude" | "mean" => {
            known_keys(what, o, &["stage"])?;
            let k = if kind == "mean" { StageKind::Mean } else { StageKind::Magnitude };
            Ok((Stage::new(k), None, None, false))
        }
        "relu" | "sigmoid" | "tanh" | "softmax" => {
            known_keys(what, o, &["stage"])?;
            let a = StageActivation::from_name(&kind).expect("listed above");
            Ok((Stage::activation(a), None, None, false))
        }
        other => err(format!(
            "{what}: unknown stage `{other}` (conv1d, linear, magnitude, relu, sigmoid, tanh, softmax, mean)"
        )),
    }
}

fn text_of(what: &str, key: &str, v: &Value) -> Result<String, ArchError> {
    v.as_str().map(str::to_owned).ok_or_else(|| ArchError(format!("{what}: `{key}` is {v}, not a string")))
}

fn known_keys(what: &str, o: &serde_json::Map<String, Value>, keys: &[&str]) -> Result<(), ArchError> {
    match o.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => err(format!("{what}: unknown key `{k}` (known: {})", keys.join(", "))),
        None => Ok(()),
    }
}

impl Arch {
    /// Adds the stages to a model imported from the same state dict: fills
    /// in each convolution's channels and taps from its weight, reorders
    /// the weight tap-major, checks what the description states, and
    /// returns the names of the state dict's tensors it used.
    pub fn apply(
        &self,
        tensors: &[SourceTensor],
        meta: &mut Metadata,
        weights: &mut Weights,
    ) -> Result<Vec<String>, ArchError> {
        let by_name: BTreeMap<&str, &SourceTensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut stages = self.stages.clone();
        let mut used = Vec::new();
        let mut channels = stages.channels as usize;
        let rec_out = meta.architecture.sequence_output_size();
        let mut all: Vec<(Chain, usize, &mut Stage)> = Vec::new();
        let (f, b) = (&mut stages.front, &mut stages.back);
        all.extend(f.iter_mut().enumerate().map(|(i, s)| (Chain::Front, i, s)));
        all.extend(b.iter_mut().enumerate().map(|(i, s)| (Chain::Back, i, s)));
        let mut resolved = Vec::new();
        for (n, (chain, i, stage)) in all.into_iter().enumerate() {
            if chain == Chain::Back && i == 0 {
                channels = rec_out;
            }
            let what =
                format!("{} stage {i} ({})", chain.name(), if self.linear[n] { "linear" } else { stage.kind.name() });
            if let Some((weight, bias)) = &self.tensors[n] {
                let w = by_name
                    .get(weight.as_str())
                    .ok_or_else(|| ArchError(format!("{what}: tensor `{weight}` is not in the state dict")))?;
                let (out, inp, kernel) = match (self.linear[n], w.shape.as_slice()) {
                    (true, &[o, i]) => (o, i, 1),
                    (false, &[o, i, k]) => (o, i, k),
                    (linear, s) => {
                        let want = if linear { "[out, in]" } else { "[out, in, kernel]" };
                        return err(format!("{what}: tensor `{weight}` has shape {s:?}, not {want}"));
                    }
                };
                if inp != channels {
                    return err(format!(
                        "{what}: tensor `{weight}` takes {inp} input channels, but {channels} reach this stage"
                    ));
                }
                if let Some(k) = self.kernels[n]
                    && k != kernel
                {
                    return err(format!("{what}: `kernel` is {k}, but tensor `{weight}` has {kernel} taps"));
                }
                if out == 0 || kernel == 0 {
                    return err(format!("{what}: tensor `{weight}` has shape {:?}", w.shape));
                }
                stage.out_channels = out as u32;
                stage.kernel = kernel as u32;
                // [out, in, kernel] -> [out, kernel, in].
                let mut tap_major = vec![0.0f32; out * kernel * inp];
                for o in 0..out {
                    for c in 0..inp {
                        for k in 0..kernel {
                            tap_major[(o * kernel + k) * inp + c] = w.data[(o * inp + c) * kernel + k];
                        }
                    }
                }
                resolved.push((Stages::weight_name(chain, i), tap_major));
                used.push(weight.clone());
                if let Some(bias) = bias {
                    let t = by_name
                        .get(bias.as_str())
                        .ok_or_else(|| ArchError(format!("{what}: tensor `{bias}` is not in the state dict")))?;
                    if t.shape != [out] {
                        return err(format!("{what}: tensor `{bias}` has shape {:?}, not [{out}]", t.shape));
                    }
                    resolved.push((Stages::bias_name(chain, i), t.data.clone()));
                    used.push(bias.clone());
                }
                channels = out;
            } else if stage.kind == StageKind::Magnitude {
                channels /= 2;
            }
        }
        meta.stages = Some(stages);
        // The sizes are checked as the runtime checks them, naming the stage.
        if let Err(e) = meta.validate() {
            meta.stages = None;
            return err(format!("the stages do not fit together: {e}"));
        }
        for (name, values) in resolved {
            weights.stages.insert(name, values);
        }
        Ok(used)
    }
}
