//! PyTorch state dicts of `nn.LSTM`, `nn.GRU` and `nn.RNN` (with an optional
//! `nn.Embedding` before and `nn.Linear` after).
//!
//! Parameter names are PyTorch's: `weight_ih_l{k}`, `weight_hh_l{k}`,
//! `bias_ih_l{k}`, `bias_hh_l{k}`, `weight_hr_l{k}`, each with an optional
//! `_reverse` suffix and an optional module prefix (`encoder.rnn.`). Layers,
//! directions, hidden and projection sizes are inferred from names and shapes.

use std::collections::BTreeMap;
use std::path::Path;

use super::{ImportError, ImportErrorKind, SourceTensor};
use lstmrt::{HeadWeights, Weights};
use lstmrt_format::{Architecture, CellKind, Embedding, Head, HeadActivation, HeadTask, Metadata};

pub use super::Options;

/// Reads every floating-point tensor of a `.safetensors` file, widening to f32.
pub fn read_safetensors(path: &Path) -> Result<Vec<SourceTensor>, ImportError> {
    let bytes =
        lstmrt_format::read_regular(path, lstmrt_format::limits::SOURCE_FILE).map_err(|e| ImportError::io(path, e))?;
    parse_safetensors(&bytes, &path.display().to_string())
}

/// Whether `bytes` start like a safetensors file: a little-endian u64 header
/// length that fits the file, then a JSON object.
pub fn is_safetensors(bytes: &[u8]) -> bool {
    bytes.len() >= 10
        && u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) <= (bytes.len() - 8) as u64
        && bytes[8] == b'{'
}

/// The tensors of a safetensors file held in memory. Integer and bool tensors
/// (never weights of a recurrent model) are skipped, as in [`torch_save`](super::torch_save).
pub fn parse_safetensors(bytes: &[u8], file: &str) -> Result<Vec<SourceTensor>, ImportError> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| ImportError::new(file, ImportErrorKind::Safetensors { reason: e.to_string() }))?;
    let mut out = Vec::new();
    for (name, view) in st.iter() {
        if let Some(data) = widen(view.dtype(), view.data()) {
            out.push(SourceTensor { name: name.to_string(), shape: view.shape().to_vec(), data });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Reads the tensors of a PyTorch state dict held in `bytes`: safetensors, or
/// a `torch.save` file (zip or legacy), told apart by their first bytes.
pub fn parse(bytes: &[u8], file: &str) -> Result<Vec<SourceTensor>, ImportError> {
    if is_safetensors(bytes) { parse_safetensors(bytes, file) } else { super::torch_save::parse(bytes, file) }
}

fn widen(dtype: safetensors::Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    use safetensors::Dtype::*;
    Some(match dtype {
        F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect(),
        F64 => bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8")) as f32).collect(),
        F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        _ => return None,
    })
}

/// A recurrent parameter name split into its parts.
#[derive(Debug, Clone, PartialEq)]
struct ParamName<'a> {
    prefix: &'a str,
    kind: &'a str,
    layer: usize,
    reverse: bool,
    /// A cell's parameter (`nn.LSTMCell`, `nn.GRUCell`, `nn.RNNCell`: no
    /// `_l{k}` suffix), which is layer 0 of a one-layer model.
    cell: bool,
}

const RECURRENT_KINDS: [&str; 5] = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"];
/// A cell's parameters (`nn.LSTMCell` has no projection).
const CELL_KINDS: [&str; 4] = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"];

fn parse_param(name: &str) -> Option<ParamName<'_>> {
    let (prefix, last) = match name.rfind('.') {
        Some(i) => (&name[..i + 1], &name[i + 1..]),
        None => ("", name),
    };
    if CELL_KINDS.contains(&last) {
        return Some(ParamName { prefix, kind: last, layer: 0, reverse: false, cell: true });
    }
    let (last, reverse) = match last.strip_suffix("_reverse") {
        Some(l) => (l, true),
        None => (last, false),
    };
    let (kind, layer) = last.rsplit_once("_l")?;
    if !RECURRENT_KINDS.contains(&kind) {
        return None;
    }
    if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ParamName { prefix, kind, layer: layer.parse().ok()?, reverse, cell: false })
}

/// Builds metadata and canonical weights from a state dict.
pub fn from_state_dict(
    tensors: &[SourceTensor],
    options: &Options,
    file: &str,
) -> Result<(Metadata, Weights), ImportError> {
    from_tensors(tensors, options)
        .map(|(meta, weights, _)| (meta, weights))
        .map_err(|kind| ImportError::new(file, kind))
}

/// [`from_state_dict`], and the names of the tensors it did not use (in
/// neither the recurrent module nor the embedding or head).
pub fn from_state_dict_unused(
    tensors: &[SourceTensor],
    options: &Options,
    file: &str,
) -> Result<(Metadata, Weights, Vec<String>), ImportError> {
    from_tensors(tensors, options).map_err(|kind| ImportError::new(file, kind))
}

fn from_tensors(
    tensors: &[SourceTensor],
    options: &Options,
) -> Result<(Metadata, Weights, Vec<String>), ImportErrorKind> {
    use ImportErrorKind as E;
    let by_name: BTreeMap<&str, &SourceTensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();

    // The recurrent module: all parameters sharing one prefix.
    let mut prefixes: Vec<&str> = tensors.iter().filter_map(|t| parse_param(&t.name)).map(|p| p.prefix).collect();
    prefixes.sort();
    prefixes.dedup();
    let prefix: String = match (&options.prefix, prefixes.as_slice()) {
        (Some(p), _) => {
            let p = if p.is_empty() || p.ends_with('.') { p.clone() } else { format!("{p}.") };
            if !prefixes.contains(&p.as_str()) {
                return Err(E::NoSuchPrefix { prefix: p, found: prefixes.iter().map(|&p| p.to_owned()).collect() });
            }
            p
        }
        (None, []) => {
            return Err(E::NotRecurrent {
                reason: "no recurrent parameters (weight_ih_l0, weight_hh_l0, ... or a cell's weight_ih, \
                         weight_hh) found: this is not a state dict of nn.LSTM, nn.GRU, nn.RNN or their cells"
                    .into(),
            });
        }
        (None, [one]) => one.to_string(),
        (None, many) => {
            return Err(E::SeveralRecurrentModules { prefixes: many.iter().map(|&p| p.to_owned()).collect() });
        }
    };
    let params: Vec<ParamName> =
        tensors.iter().filter_map(|t| parse_param(&t.name)).filter(|p| p.prefix == prefix).collect();
    // A cell's parameters (no layer suffix) are one layer's; a module has one kind or the other.
    let cell_params = params.iter().any(|p| p.cell);
    if cell_params && params.iter().any(|p| !p.cell) {
        let name =
            params.iter().find(|p| !p.cell).map_or(String::new(), |p| format!("{}{}_l{}", p.prefix, p.kind, p.layer));
        return Err(E::Dimensions {
            name,
            reason: format!(
                "sits beside a cell's parameters (`{prefix}weight_ih`) under one prefix: one module or the other"
            ),
        });
    }
    // The source name of parameter `kind` of `layer` (and direction).
    let source_name = |kind: &str, layer: usize, reverse: bool| -> String {
        if cell_params {
            format!("{prefix}{kind}")
        } else {
            format!("{prefix}{kind}_l{layer}{}", if reverse { "_reverse" } else { "" })
        }
    };
    let param = |kind: &str, layer: usize, reverse: bool| -> Option<&SourceTensor> {
        by_name.get(source_name(kind, layer, reverse).as_str()).copied()
    };
    let last = params.iter().map(|p| p.layer).max().expect("at least one parameter");
    // The spec's limit, checked before anything is counted or sized by it.
    const MAX_LAYERS: usize = 1024;
    if last >= MAX_LAYERS {
        let name = params
            .iter()
            .find(|p| p.layer == last)
            .map_or(String::new(), |p| format!("{}{}_l{last}", p.prefix, p.kind));
        return Err(E::Dimensions {
            name,
            reason: format!("layer index {last}: a model has at most {MAX_LAYERS} layers"),
        });
    }
    let num_layers = last + 1;
    let bidirectional = params.iter().any(|p| p.reverse);

    let need = |kind: &str, layer: usize, reverse: bool| {
        param(kind, layer, reverse).ok_or_else(|| E::MissingTensor { name: source_name(kind, layer, reverse) })
    };
    let dims2 = |t: &SourceTensor| -> Result<(usize, usize), ImportErrorKind> {
        match t.shape.as_slice() {
            &[r, c] => Ok((r, c)),
            s => Err(E::TensorShape { name: t.name.clone(), shape: s.to_vec(), expected: "a matrix".into() }),
        }
    };
    // Every layer up to the highest numbered one must be there (this also
    // bounds what a stray `weight_ih_l99999` could make us allocate).
    for layer in 0..num_layers {
        need("weight_ih", layer, false)?;
    }
    let w_hh0 = need("weight_hh", 0, false)?;
    let w_ih0 = need("weight_ih", 0, false)?;
    let (rows, out_size) = dims2(w_hh0)?;
    let (hidden, proj) = match param("weight_hr", 0, false) {
        Some(w_hr) => {
            let (p, h) = dims2(w_hr)?;
            if p != out_size {
                return Err(E::Dimensions {
                    name: w_hr.name.clone(),
                    reason: format!("has {p} rows but weight_hh_l0 has {out_size} columns"),
                });
            }
            (h, p)
        }
        None => (out_size, 0),
    };
    if hidden == 0 || rows % hidden != 0 {
        return Err(E::Dimensions {
            name: w_hh0.name.clone(),
            reason: format!("has {rows} rows, not a multiple of the hidden size {hidden}"),
        });
    }
    let gates = rows / hidden;
    let cell = match (gates, options.cell) {
        (4, None | Some(CellKind::Lstm)) => CellKind::Lstm,
        (3, None | Some(CellKind::Gru)) => CellKind::Gru,
        (1, None) => CellKind::RnnTanh,
        (1, Some(k @ (CellKind::RnnTanh | CellKind::RnnRelu))) => k,
        (gates, Some(cell)) => return Err(E::CellMismatch { gates, cell }),
        (g, None) => {
            return Err(E::Dimensions {
                name: w_hh0.name.clone(),
                reason: format!(
                    "has {rows} rows = {g} x hidden size {hidden}: expected 4 (LSTM), 3 (GRU) or 1 (RNN) gate blocks"
                ),
            });
        }
    };
    let (_, input_size) = dims2(w_ih0)?;
    let mut arch = Architecture::new(cell, input_size, hidden, num_layers);
    arch.proj_size = proj as u32;
    arch.bidirectional = bidirectional;
    let mut meta = Metadata::new(arch.clone());

    // Embedding in front and linear head after, named or found unambiguously;
    // with an architecture description, its stages are all there is around the module.
    let modules = if options.arch.is_some() { Vec::new() } else { other_modules(tensors, &prefix) };
    let embedding = pick_module(&modules, options.embedding.as_deref(), "embedding", |m| {
        m.bias.is_none() && m.weight.shape.len() == 2 && m.weight.shape[1] == input_size
    })?;
    let head_width = arch.sequence_output_size();
    let head = pick_module(&modules, options.head.as_deref(), "head", |m| {
        m.weight.shape.len() == 2 && m.weight.shape[1] == head_width && Some(m.name) != embedding.map(|e| e.name)
    })?;
    if let Some(e) = embedding {
        meta.embedding = Some(Embedding { num_embeddings: e.weight.shape[0] as u32 });
    }
    if let Some(h) = head {
        meta.head = Some(Head {
            out_features: h.weight.shape[0] as u32,
            activation: options.head_activation.unwrap_or(HeadActivation::None),
            task: HeadTask::Other,
            labels: Vec::new(),
        });
    }

    // Check the architecture the shapes describe before sizing anything by
    // it: zero-element tensors can claim any size at no cost in the file.
    meta.validate().map_err(|source| ImportErrorKind::Model { source })?;
    let needed: u64 = lstmrt_format::expected_tensors(&meta).iter().map(|t| t.shape.iter().product::<u64>()).sum();
    let held: u64 = tensors.iter().map(|t| t.data.len() as u64).sum();
    // Absent biases become zeros: at most as many values as the W_ih they go with.
    if needed > 3 * held + 4096 {
        return Err(ImportErrorKind::Dimensions {
            name: w_ih0.name.clone(),
            reason: format!(
                "the shapes describe a model of {needed} values, but the tensors hold only {held}; a tensor with no elements cannot stand for a layer"
            ),
        });
    }
    let mut weights = Weights::zeros(&meta);
    for layer in 0..num_layers {
        for dir in 0..arch.directions() {
            let reverse = dir == 1;
            let lw = &mut weights.layers[layer * arch.directions() + dir];
            lw.w_ih = need("weight_ih", layer, reverse)?.data.clone();
            lw.w_hh = need("weight_hh", layer, reverse)?.data.clone();
            if let Some(b) = param("bias_ih", layer, reverse) {
                lw.b_ih = b.data.clone();
            }
            if let Some(b) = param("bias_hh", layer, reverse) {
                lw.b_hh = b.data.clone();
            }
            if proj > 0 {
                lw.w_hr = Some(need("weight_hr", layer, reverse)?.data.clone());
            }
        }
    }
    if let Some(e) = embedding {
        weights.embedding = Some(e.weight.data.clone());
    }
    if let Some(h) = head {
        weights.head = Some(HeadWeights {
            weight: h.weight.data.clone(),
            bias: h.bias.map_or_else(|| vec![0.0; h.weight.shape[0]], |b| b.data.clone()),
        });
    }
    // Names and element counts: a misshapen tensor is reported by name.
    for t in lstmrt_format::expected_tensors(&meta) {
        let source_name = match t.name.as_str() {
            lstmrt_format::names::EMBEDDING => embedding.map(|e| e.weight.name.clone()),
            lstmrt_format::names::HEAD_WEIGHT => head.map(|h| h.weight.name.clone()),
            lstmrt_format::names::HEAD_BIAS => head.and_then(|h| h.bias.map(|b| b.name.clone())),
            other if cell_params => Some(format!("{prefix}{}", other.strip_suffix("_l0").unwrap_or(other))),
            other => Some(format!("{prefix}{other}")),
        };
        let Some(source_name) = source_name else { continue };
        if let Some(src) = by_name.get(source_name.as_str()) {
            let want: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
            if src.shape != want {
                return Err(E::TensorShape {
                    name: source_name,
                    shape: src.shape.clone(),
                    expected: format!("{want:?}"),
                });
            }
        }
    }
    weights.check(&meta).map_err(|source| E::Model { source })?;
    let of_module = |name: &str| {
        [embedding, head].into_iter().flatten().any(|m| m.weight.name == name || m.bias.is_some_and(|b| b.name == name))
    };
    let unused = tensors
        .iter()
        .filter(|t| parse_param(&t.name).is_none_or(|p| p.prefix != prefix) && !of_module(&t.name))
        .map(|t| t.name.clone())
        .collect();
    Ok((meta, weights, unused))
}

/// A non-recurrent module of the state dict: `name.weight` and maybe `name.bias`.
struct Module<'a> {
    name: &'a str,
    weight: &'a SourceTensor,
    bias: Option<&'a SourceTensor>,
}

fn other_modules<'a>(tensors: &'a [SourceTensor], rnn_prefix: &str) -> Vec<Module<'a>> {
    tensors
        .iter()
        .filter(|t| !(t.name.starts_with(rnn_prefix) && parse_param(&t.name).is_some()))
        .filter_map(|t| {
            let name = t.name.strip_suffix(".weight")?;
            let bias = tensors.iter().find(|b| b.name.strip_suffix(".bias") == Some(name));
            Some(Module { name, weight: t, bias })
        })
        .collect()
}

/// The module called `wanted`, or the single module that `fits` when none is named.
fn pick_module<'a, 'b>(
    modules: &'b [Module<'a>],
    wanted: Option<&str>,
    role: &'static str,
    fits: impl Fn(&Module<'a>) -> bool,
) -> Result<Option<&'b Module<'a>>, ImportErrorKind> {
    if let Some(name) = wanted {
        let name = name.strip_suffix(".weight").unwrap_or(name);
        return match modules.iter().find(|m| m.name == name) {
            Some(m) if fits(m) => Ok(Some(m)),
            Some(m) => {
                Err(ImportErrorKind::ModuleShape { tensor: m.weight.name.clone(), shape: m.weight.shape.clone(), role })
            }
            None => Err(ImportErrorKind::NoModule { tensor: format!("{name}.weight"), role }),
        };
    }
    let candidates: Vec<&Module> = modules.iter().filter(|m| fits(m)).collect();
    match candidates.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => {
            Err(ImportErrorKind::AmbiguousModule { role, candidates: many.iter().map(|m| m.name.to_owned()).collect() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_layer_index_is_refused_not_wrapped() {
        let t = |name: &str| SourceTensor { name: name.into(), shape: vec![4, 1], data: vec![0.0; 4] };
        let e = from_tensors(&[t("weight_ih_l18446744073709551615"), t("weight_hh_l0")], &Options::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer index 18446744073709551615") && e.contains("at most 1024"), "{e}");
    }

    #[test]
    fn tensors_without_elements_cannot_size_a_huge_model() {
        // Shapes of an LSTM of hidden size 2^20 whose tensors hold (almost) nothing.
        let t = |name: &str, shape: Vec<usize>, n: usize| SourceTensor { name: name.into(), shape, data: vec![0.0; n] };
        let h = 1 << 20;
        for tensors in [
            vec![t("weight_ih_l0", vec![4 * h, 0], 0), t("weight_hh_l0", vec![4 * h, h], 0)],
            vec![t("weight_ih_l0", vec![4 * h, 1], 4 * h), t("weight_hh_l0", vec![4 * h, h], 0)],
        ] {
            // Without the check this allocated 4 * 2^40 floats (16 TiB) and aborted.
            assert!(from_tensors(&tensors, &Options::default()).is_err());
        }
    }

    /// A state dict: `(name, shape)` with values counting up from `seed`.
    fn dict(entries: &[(&str, Vec<usize>)], seed: f32) -> Vec<SourceTensor> {
        entries
            .iter()
            .enumerate()
            .map(|(i, (name, shape))| {
                let n = shape.iter().product::<usize>();
                let data = (0..n).map(|j| seed + (i * 1000 + j) as f32 * 1e-3).collect();
                SourceTensor { name: (*name).into(), shape: shape.clone(), data }
            })
            .collect()
    }

    #[test]
    fn cell_state_dicts_import_as_the_one_layer_model_with_the_same_weights() {
        for (gates, cell) in [(4, CellKind::Lstm), (3, CellKind::Gru), (1, CellKind::RnnTanh)] {
            let (h, i) = (8, 5);
            let shapes = |names: [&'static str; 4]| -> Vec<(&'static str, Vec<usize>)> {
                let s = [vec![gates * h, i], vec![gates * h, h], vec![gates * h], vec![gates * h]];
                names.into_iter().zip(s).collect()
            };
            let cell_dict = dict(
                &shapes(["lstm_cell.weight_ih", "lstm_cell.weight_hh", "lstm_cell.bias_ih", "lstm_cell.bias_hh"]),
                0.5,
            );
            let layer_dict =
                dict(&shapes(["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"]), 0.5);
            let (meta, weights, _) = from_tensors(&cell_dict, &Options::default()).unwrap();
            let (want_meta, want, _) = from_tensors(&layer_dict, &Options::default()).unwrap();
            assert_eq!(meta.architecture, want_meta.architecture);
            assert_eq!(meta.architecture.cell, cell);
            assert_eq!(meta.architecture.num_layers, 1);
            assert_eq!(weights.layers[0].w_ih, want.layers[0].w_ih);
            assert_eq!(weights.layers[0].w_hh, want.layers[0].w_hh);
            assert_eq!(weights.layers[0].b_ih, want.layers[0].b_ih);
            assert_eq!(weights.layers[0].b_hh, want.layers[0].b_hh);
        }
    }

    #[test]
    fn a_cell_beside_other_modules_is_picked_by_prefix_and_errors_list_what_was_found() {
        let (h, i) = (4, 3);
        let mut tensors = dict(
            &[
                ("front.conv.weight", vec![6, 1, 3]),
                ("decoder.rnn.weight_ih", vec![4 * h, i]),
                ("decoder.rnn.weight_hh", vec![4 * h, h]),
                ("encoder.lstm.weight_ih_l0", vec![3 * h, i]),
                ("encoder.lstm.weight_hh_l0", vec![3 * h, h]),
            ],
            0.0,
        );
        let e = from_tensors(&tensors, &Options::default()).unwrap_err().to_string();
        assert!(e.contains("decoder.rnn.") && e.contains("encoder.lstm.") && e.contains("--prefix"), "{e}");
        let pick = |p: &str| Options { prefix: Some(p.into()), ..Options::default() };
        let (meta, _, _) = from_tensors(&tensors, &pick("decoder.rnn")).unwrap();
        assert_eq!((meta.architecture.cell, meta.architecture.hidden_size), (CellKind::Lstm, h as u32));
        let (meta, _, unused) = from_tensors(&tensors, &pick("encoder.lstm.")).unwrap();
        assert_eq!(meta.architecture.cell, CellKind::Gru);
        // What the picked module leaves is named: the conv and the other cell.
        assert_eq!(unused, ["front.conv.weight", "decoder.rnn.weight_ih", "decoder.rnn.weight_hh"]);
        let e = from_tensors(&tensors, &pick("front.conv")).unwrap_err().to_string();
        assert!(e.contains("front.conv.") && e.contains("decoder.rnn.") && e.contains("encoder.lstm."), "{e}");
        // A cell missing a tensor is named by its own name.
        tensors.retain(|t| t.name != "decoder.rnn.weight_hh");
        let e = from_tensors(&tensors, &pick("decoder.rnn")).unwrap_err().to_string();
        assert!(e.contains("decoder.rnn.weight_hh"), "{e}");
    }

    #[test]
    fn parses_parameter_names_with_and_without_prefix() {
        assert_eq!(
            parse_param("encoder.rnn.weight_ih_l2_reverse"),
            Some(ParamName { prefix: "encoder.rnn.", kind: "weight_ih", layer: 2, reverse: true, cell: false })
        );
        assert_eq!(
            parse_param("bias_hh_l0"),
            Some(ParamName { prefix: "", kind: "bias_hh", layer: 0, reverse: false, cell: false })
        );
        assert_eq!(
            parse_param("_model.decoder.lstm_cell.weight_hh"),
            Some(ParamName {
                prefix: "_model.decoder.lstm_cell.",
                kind: "weight_hh",
                layer: 0,
                reverse: false,
                cell: true
            })
        );
        assert_eq!(parse_param("cell.weight_hr"), None, "cells have no projection");
        assert_eq!(parse_param("fc.weight"), None);
        assert_eq!(parse_param("weight_ih_lx"), None);
    }
}
