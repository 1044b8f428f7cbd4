//! Keras `LSTM`, `GRU` and `SimpleRNN` layers, from the `.npz` that
//! `tools/export_keras.py` writes (a zip of `.npy` arrays plus
//! `keras_config.npy`, the layer list as UTF-8 JSON).
//!
//! lstmrt reads no HDF5 (`.keras` is a zip around an HDF5 file, `.h5` is
//! HDF5): there is no well-kept pure-Rust HDF5 reader, and binding the C
//! library would make every build need it. The export script only copies
//! arrays and configs; every decision and conversion happens here:
//!
//! - kernels are `[input, G*units]` and recurrent kernels `[units, G*units]`:
//!   transposed to PyTorch's `[G*H, input]`;
//! - LSTM gate order `i, f, c, o` is already canonical; GRU `z, r, h` becomes
//!   `r, z, n`;
//! - LSTM and SimpleRNN have one bias (taken as `bias_ih`, `bias_hh` zero);
//!   GRU with `reset_after=True` has two (input, recurrent) and is PyTorch's
//!   form; `reset_after=False` has one and maps to `linear_before_reset = false`;
//! - `Bidirectional(..., merge_mode="concat")` is a bidirectional layer;
//! - an `Embedding` first and a `Dense` last (activation linear, softmax or
//!   sigmoid, possibly as a following `Activation` layer) become the embedding
//!   and the head; dropout-like layers are skipped (they do nothing at inference).
//!
//! Refused, naming the layer: `recurrent_activation` other than sigmoid,
//! `activation` other than tanh (or relu for SimpleRNN), `go_backwards` outside
//! `Bidirectional`, other merge modes, layers that differ in class, units or
//! options, a recurrent layer returning only its last step with another after
//! it, and any other layer class.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use serde_json::Value;

use super::{ImportError, ImportErrorKind, Notes, reorder_gates};
use crate::npy;
use ImportErrorKind as E;
use lstmrt::{HeadWeights, LayerWeights, Weights};
use lstmrt_format::{Architecture, CellKind, Embedding, Head, HeadActivation, HeadTask, Metadata};

/// The `format` value of the export's config.
const FORMAT: &str = "lstmrt-keras-export";
/// The member holding the config.
pub(crate) const CONFIG: &str = "keras_config.npy";

/// Whether a zip archive (given its entry names) is an export of `tools/export_keras.py`.
pub fn is_keras_export(names: &[String]) -> bool {
    names.iter().any(|n| n == CONFIG)
}

/// Layers that do nothing at inference.
const NO_OPS: [&str; 6] =
    ["Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization"];

/// Converts the export in `bytes`.
pub fn import(bytes: &[u8], file: &str) -> Result<(Metadata, Weights, Notes), ImportError> {
    let fail = |kind| ImportError::new(file, kind);
    let arrays = read_npz(bytes).map_err(fail)?;
    let config_bytes: Vec<u8> = arrays
        .get("keras_config")
        .ok_or_else(|| {
            fail(E::UnknownFormat { reason: format!("no {CONFIG}: not an export of tools/export_keras.py") })
        })?
        .data
        .iter()
        .map(|&v| v as u8)
        .collect();
    let config: Value = serde_json::from_slice(&config_bytes).map_err(|e| fail(E::Json { reason: e.to_string() }))?;
    if config["format"] != FORMAT || config["version"] != 1 {
        return Err(fail(E::Config { reason: format!("{CONFIG} is not a {FORMAT} version 1 config") }));
    }
    let (mut meta, weights, notes) = convert(&config, &arrays).map_err(fail)?;
    if let Some(v) = config["keras_version"].as_str() {
        meta.provenance.push("keras.version", v);
    }
    if let Some(v) = config["source"].as_str() {
        meta.provenance.push("keras.source", v);
    }
    Ok((meta, weights, notes))
}

/// Every `.npy` member of an `.npz`, by name without the extension.
fn read_npz(bytes: &[u8]) -> Result<HashMap<String, npy::Array>, ImportErrorKind> {
    let archive = |reason: String| E::Archive { reason };
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| archive(format!("corrupt .npz (zip) archive: {e}")))?;
    let mut out = HashMap::new();
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| archive(format!("corrupt .npz member #{i}: {e}")))?;
        let name = entry.name().to_owned();
        let Some(key) = name.strip_suffix(".npy") else { continue };
        // Deflate expands at most ~1032x; cap what a lying header can make us allocate.
        let limit = entry.compressed_size().saturating_mul(1100).saturating_add(1 << 16);
        let mut data = Vec::new();
        entry.take(limit).read_to_end(&mut data).map_err(|e| archive(format!(".npz member `{name}`: {e}")))?;
        let array = npy::parse(&data).map_err(|source| E::Npy { member: name.clone(), source })?;
        out.insert(key.to_owned(), array);
    }
    Ok(out)
}

/// A recurrent layer of the export.
struct Recurrent<'c> {
    name: &'c str,
    class: &'c str,
    config: &'c Value,
    bidirectional: bool,
    /// Weight array names: kernel, recurrent_kernel, bias? (per direction).
    weights: Vec<Vec<&'c str>>,
}

fn convert(
    config: &Value,
    arrays: &HashMap<String, npy::Array>,
) -> Result<(Metadata, Weights, Notes), ImportErrorKind> {
    let layers =
        config["layers"].as_array().ok_or_else(|| E::Config { reason: "the config has no layer list".into() })?;
    let mut notes = Notes::new();
    let mut embedding: Option<(&str, &npy::Array)> = None;
    let mut recurrent: Vec<Recurrent> = Vec::new();
    let mut dense: Option<(&str, &npy::Array, Option<&npy::Array>, HeadActivation)> = None;
    for layer in layers {
        let name = layer["name"].as_str().unwrap_or("?");
        let class = layer["class"].as_str().unwrap_or("?");
        let cfg = &layer["config"];
        let names: Vec<&str> =
            layer["weights"].as_array().map(|w| w.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let get = |k: &str| arrays.get(k).ok_or_else(|| E::MissingArray { layer: name.into(), array: k.into() });
        let no_weights = || E::MissingWeights { layer: name.into(), what: "weights" };
        let refuse = |reason: String| E::Layer { layer: name.into(), reason };
        match class {
            c if NO_OPS.contains(&c) => {}
            "Masking" => notes.push(format!("layer `{name}` (Masking) is ignored: lstmrt runs every step")),
            "Embedding" if recurrent.is_empty() && embedding.is_none() => {
                if cfg["mask_zero"] == true {
                    notes.push(format!(
                        "layer `{name}`: mask_zero is ignored; lstmrt runs every step, padding included"
                    ));
                }
                embedding = Some((name, get(names.first().ok_or_else(no_weights)?)?));
            }
            "LSTM" | "GRU" | "SimpleRNN" | "Bidirectional" if dense.is_none() => {
                if let Some(prev) = recurrent.last()
                    && prev.config["return_sequences"] == false
                {
                    return Err(E::LastStepNotLast { layer: prev.name.into(), next: name.into() });
                }
                let bidirectional = class == "Bidirectional";
                let inner = if bidirectional { layer["inner_class"].as_str().unwrap_or("?") } else { class };
                if bidirectional {
                    let merge = layer["merge_mode"].as_str().unwrap_or("None");
                    if merge != "concat" {
                        return Err(refuse(format!(
                            "Bidirectional merge_mode `{merge}` is not supported, only concat"
                        )));
                    }
                }
                let weights = if bidirectional {
                    let half = names.len() / 2;
                    vec![names[..half].to_vec(), names[half..].to_vec()]
                } else {
                    vec![names.clone()]
                };
                recurrent.push(Recurrent { name, class: inner, config: cfg, bidirectional, weights });
            }
            "Dense" if !recurrent.is_empty() && dense.is_none() => {
                let activation = head_activation(name, cfg["activation"].as_str().unwrap_or("linear"))?;
                let kernel = get(names.first().ok_or_else(no_weights)?)?;
                let bias = names.get(1).map(|k| get(k)).transpose()?;
                dense = Some((name, kernel, bias, activation));
            }
            "Activation" if dense.as_ref().is_some_and(|d| d.3 == HeadActivation::None) => {
                let act = head_activation(name, cfg["activation"].as_str().unwrap_or("linear"))?;
                dense.as_mut().expect("checked").3 = act;
            }
            other => return Err(E::UnsupportedLayer { layer: name.into(), class: other.into() }),
        }
    }
    let first = recurrent
        .first()
        .ok_or_else(|| E::NotRecurrent { reason: "no LSTM, GRU or SimpleRNN layer: not a recurrent model".into() })?;
    if let Some(last) = recurrent.last()
        && last.config["return_sequences"] == false
    {
        notes.push(format!(
            "layer `{}` returns only its last step in Keras; the converted model outputs every step (the last one \
             is Keras' output)",
            last.name
        ));
    }

    // One architecture for the whole stack.
    let cell_of = |r: &Recurrent| -> Result<CellKind, ImportErrorKind> {
        let refuse = |reason: String| E::Layer { layer: r.name.into(), reason };
        let act = r.config["activation"].as_str().unwrap_or("tanh");
        let cell = match (r.class, act) {
            ("LSTM", "tanh") => CellKind::Lstm,
            ("GRU", "tanh") => CellKind::Gru,
            ("SimpleRNN", "tanh") => CellKind::RnnTanh,
            ("SimpleRNN", "relu") => CellKind::RnnRelu,
            (c, a) => {
                return Err(refuse(format!(
                    "activation `{a}` is not supported for {c} (tanh{})",
                    if c == "SimpleRNN" { " or relu" } else { "" }
                )));
            }
        };
        if cell != CellKind::RnnTanh && cell != CellKind::RnnRelu {
            let ra = r.config["recurrent_activation"].as_str().unwrap_or("sigmoid");
            if ra != "sigmoid" {
                return Err(refuse(format!(
                    "recurrent_activation `{ra}` is not supported, only sigmoid (PyTorch's and ONNX's gate)"
                )));
            }
        }
        if r.config["go_backwards"] == true && !r.bidirectional {
            return Err(refuse(
                "go_backwards=True outside Bidirectional is not supported (Keras returns that layer's sequence in \
                 reversed time order; an lstmrt reverse model keeps each output at its input's step)"
                    .into(),
            ));
        }
        Ok(cell)
    };
    let units = |r: &Recurrent| r.config["units"].as_u64().unwrap_or(0) as usize;
    let reset_after = |r: &Recurrent| r.config["reset_after"] != false;
    let cell = cell_of(first)?;
    let hidden = units(first);
    for r in &recurrent[1..] {
        if cell_of(r)? != cell
            || units(r) != hidden
            || r.bidirectional != first.bidirectional
            || reset_after(r) != reset_after(first)
        {
            return Err(E::LayersDiffer { layer: r.name.into(), first: first.name.into() });
        }
    }
    let gates = cell.gates();
    let kernel0 = arrays
        .get(first.weights[0].first().copied().unwrap_or(""))
        .ok_or_else(|| E::MissingWeights { layer: first.name.into(), what: "kernel" })?;
    let input_size = match kernel0.shape.as_slice() {
        &[i, _] => i,
        s => {
            return Err(E::Layer {
                layer: first.name.into(),
                reason: format!("kernel has shape {s:?}, expected [input, {gates}*units]"),
            });
        }
    };
    let mut arch = Architecture::new(cell, input_size, hidden, recurrent.len());
    arch.bidirectional = first.bidirectional;
    arch.linear_before_reset = cell != CellKind::Gru || reset_after(first);
    let mut meta = Metadata::new(arch.clone());
    if let Some((name, table)) = embedding {
        if table.shape.len() != 2 || table.shape[1] != input_size {
            return Err(E::Layer {
                layer: name.into(),
                reason: format!("embeddings have shape {:?}, expected [tokens, {input_size}]", table.shape),
            });
        }
        meta.embedding = Some(Embedding { num_embeddings: table.shape[0] as u32 });
    }
    if let Some((name, kernel, _, activation)) = &dense {
        let width = arch.sequence_output_size();
        if kernel.shape.len() != 2 || kernel.shape[0] != width {
            return Err(E::Layer {
                layer: (*name).into(),
                reason: format!("kernel has shape {:?}, expected [{width}, outputs]", kernel.shape),
            });
        }
        meta.head = Some(Head {
            out_features: kernel.shape[1] as u32,
            activation: *activation,
            task: HeadTask::Other,
            labels: Vec::new(),
        });
    }
    meta.provenance.push("keras.layers", recurrent.iter().map(|r| r.name).collect::<Vec<_>>().join(","));

    // Shapes are checked against the arrays before anything is sized from the config.
    let mut layers = Vec::with_capacity(recurrent.len() * arch.directions());
    let order: &[usize] = if cell == CellKind::Gru { &[1, 0, 2] } else { &[0, 1, 2, 3][..gates] };
    for (k, r) in recurrent.iter().enumerate() {
        let in_size = arch.layer_input_size(k);
        for names in &r.weights {
            let get = |i: usize, role: &str| -> Result<&npy::Array, ImportErrorKind> {
                let key =
                    names.get(i).ok_or_else(|| E::Layer { layer: r.name.into(), reason: format!("no {role}") })?;
                arrays.get(*key).ok_or_else(|| E::MissingArray { layer: r.name.into(), array: (*key).into() })
            };
            let gh = gates * hidden;
            let kernel = get(0, "kernel")?;
            let recurrent_kernel = get(1, "recurrent_kernel")?;
            expect_shape(r.name, "kernel", kernel, &[in_size, gh])?;
            expect_shape(r.name, "recurrent_kernel", recurrent_kernel, &[hidden, gh])?;
            let mut lw = LayerWeights {
                w_ih: reorder_gates(&transpose(kernel), order, hidden * in_size),
                w_hh: reorder_gates(&transpose(recurrent_kernel), order, hidden * hidden),
                b_ih: vec![0.0; gh],
                b_hh: vec![0.0; gh],
                ..Default::default()
            };
            if r.config["use_bias"] != false {
                let bias = get(2, "bias")?;
                let b = bias.to_f32();
                if cell == CellKind::Gru && reset_after(r) {
                    expect_shape(r.name, "bias", bias, &[2, gh])?;
                    lw.b_ih = reorder_gates(&b[..gh], order, hidden);
                    lw.b_hh = reorder_gates(&b[gh..], order, hidden);
                } else {
                    expect_shape(r.name, "bias", bias, &[gh])?;
                    lw.b_ih = reorder_gates(&b, order, hidden);
                }
            }
            layers.push(lw);
        }
    }
    let weights = Weights {
        layers,
        embedding: embedding.map(|(_, table)| table.to_f32()),
        head: dense.as_ref().map(|(_, kernel, bias, _)| HeadWeights {
            weight: transpose(kernel),
            bias: bias.map_or_else(|| vec![0.0; kernel.shape[1]], |b| b.to_f32()),
        }),
        stages: Default::default(),
    };
    weights.check(&meta).map_err(|source| E::Model { source })?;
    Ok((meta, weights, notes))
}

fn head_activation(layer: &str, name: &str) -> Result<HeadActivation, ImportErrorKind> {
    match name {
        "linear" => Ok(HeadActivation::None),
        "softmax" => Ok(HeadActivation::Softmax),
        "sigmoid" => Ok(HeadActivation::Sigmoid),
        other => Err(E::Layer {
            layer: layer.into(),
            reason: format!("head activation `{other}` is not supported (linear, softmax or sigmoid)"),
        }),
    }
}

fn expect_shape(layer: &str, weight: &'static str, a: &npy::Array, want: &[usize]) -> Result<(), ImportErrorKind> {
    if a.shape != want {
        return Err(E::WeightShape { layer: layer.into(), weight, shape: a.shape.clone(), expected: want.to_vec() });
    }
    Ok(())
}

/// The transpose of a 2-D array, as f32.
fn transpose(a: &npy::Array) -> Vec<f32> {
    let (rows, cols) = (a.shape[0], a.shape[1]);
    (0..cols).flat_map(|c| (0..rows).map(move |r| a.data[r * cols + c] as f32)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_kernels() {
        let a = npy::Array {
            shape: vec![2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            dtype: "float32",
            ints: Vec::new(),
        };
        assert_eq!(transpose(&a), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn refuses_configs_without_recurrent_layers() {
        let config = serde_json::json!({"layers": [{"name": "d", "class": "Conv1D", "config": {}, "weights": []}]});
        let e = convert(&config, &HashMap::new()).unwrap_err();
        assert_eq!(e, E::UnsupportedLayer { layer: "d".into(), class: "Conv1D".into() });
        assert!(e.to_string().starts_with("layer `d` (Conv1D) is not supported here: "), "{e}");
        let config = serde_json::json!({"layers": []});
        let e = convert(&config, &HashMap::new()).unwrap_err();
        assert!(matches!(&e, E::NotRecurrent { reason } if reason.contains("not a recurrent model")), "{e}");
    }

    #[test]
    fn names_the_layer_and_the_missing_array() {
        let config = serde_json::json!({"layers": [
            {"name": "lstm", "class": "LSTM", "config": {"units": 2}, "weights": ["lstm/kernel"]}
        ]});
        let e = convert(&config, &HashMap::new()).unwrap_err();
        assert_eq!(e, E::MissingWeights { layer: "lstm".into(), what: "kernel" });
        let kernel = npy::Array { shape: vec![3, 8], data: vec![0.0; 24], dtype: "float32", ints: Vec::new() };
        let arrays = HashMap::from([("lstm/kernel".to_owned(), kernel)]);
        let e = convert(&config, &arrays).unwrap_err();
        assert_eq!(e, E::Layer { layer: "lstm".into(), reason: "no recurrent_kernel".into() });
    }

    #[test]
    fn a_misshapen_weight_names_layer_weight_and_shapes() {
        let config = serde_json::json!({"layers": [
            {"name": "gru", "class": "GRU", "config": {"units": 2}, "weights": ["k", "rk"]}
        ]});
        let arrays = HashMap::from([
            ("k".to_owned(), npy::Array { shape: vec![3, 6], data: vec![0.0; 18], dtype: "float32", ints: Vec::new() }),
            (
                "rk".to_owned(),
                npy::Array { shape: vec![6, 2], data: vec![0.0; 12], dtype: "float32", ints: Vec::new() },
            ),
        ]);
        let e = convert(&config, &arrays).unwrap_err();
        assert_eq!(
            e,
            E::WeightShape { layer: "gru".into(), weight: "recurrent_kernel", shape: vec![6, 2], expected: vec![2, 6] }
        );
        assert_eq!(e.to_string(), "layer `gru`: recurrent_kernel has shape [6, 2], expected [2, 6]");
    }

    #[test]
    fn a_corrupt_npz_is_an_archive_error_naming_the_file() {
        let e = import(b"PK\x03\x04 truncated", "m.npz").unwrap_err();
        assert_eq!(e.file, std::path::Path::new("m.npz"));
        assert!(matches!(&e.kind, E::Archive { reason } if reason.starts_with("corrupt .npz (zip) archive: ")), "{e}");
    }
}
