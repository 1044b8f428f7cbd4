//! `lstm-convert --arch`: a state dict with convolutions around a recurrent
//! cell converts into a chunked model that computes what the description
//! says, the Silero VAD ONNX export converts into the committed model byte
//! for byte, and every mistake in a description is named by stage and tensor.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TempDir, repo_root};
use lstmrt::format::{Architecture, CellKind, Metadata};
use lstmrt::rng::Rng;
use lstmrt::{Model, Weights, reference};
use lstmrt_format::{Padding, Stage, StageActivation, StageKind, Stages};

const CONVERT: &str = env!("CARGO_BIN_EXE_lstm-convert");

/// A safetensors file of f32 tensors, written from the format's definition
/// (8-byte header length, JSON header, data).
fn write_safetensors(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        values.iter().for_each(|v| data.extend_from_slice(&v.to_le_bytes()));
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::Value::Object(header).to_string().into_bytes();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).unwrap();
}

const ARCH: &str = r#"{
  "lstmrt_arch": 1,
  "input": { "chunk": 16, "channels": 2, "context": 2 },
  "front": [
    { "stage": "conv1d", "weight": "enc.weight", "bias": "enc.bias", "stride": 2, "padding": [1, 1], "pad_mode": "reflect" },
    { "stage": "magnitude" },
    { "stage": "tanh" }
  ],
  "recurrent": { "prefix": "rnn" },
  "back": [ { "stage": "linear", "weight": "fc.weight", "bias": "fc.bias", "activation": "softmax" } ]
}"#;

fn convert(dir: &TempDir, arch: &str) -> (std::process::Output, std::path::PathBuf) {
    let (src, desc, out) = (dir.path("net.safetensors"), dir.path("arch.json"), dir.path("net.lstm"));
    std::fs::write(&desc, arch).unwrap();
    let ran = Command::new(CONVERT).arg(&src).arg("--arch").arg(&desc).arg("-o").arg(&out).output().unwrap();
    (ran, out)
}

#[test]
fn a_conv_cell_linear_state_dict_converts_into_the_model_it_describes() {
    let dir = TempDir::new("arch");
    let mut rng = Rng::new(4);
    let mut v = |n: usize| (0..n).map(|_| rng.uniform_f32(-0.5, 0.5)).collect::<Vec<f32>>();
    // Conv1d(2 -> 6, k 3): PyTorch's [out, in, kernel].
    let enc = v(6 * 2 * 3);
    let (enc_b, w_ih, w_hh, b_ih, b_hh, fc, fc_b) = (v(6), v(20 * 3), v(20 * 5), v(20), v(20), v(2 * 5), v(2));
    write_safetensors(
        &dir.path("net.safetensors"),
        &[
            ("enc.weight", vec![6, 2, 3], enc.clone()),
            ("enc.bias", vec![6], enc_b.clone()),
            ("rnn.weight_ih", vec![20, 3], w_ih.clone()),
            ("rnn.weight_hh", vec![20, 5], w_hh.clone()),
            ("rnn.bias_ih", vec![20], b_ih.clone()),
            ("rnn.bias_hh", vec![20], b_hh.clone()),
            ("fc.weight", vec![2, 5], fc.clone()),
            ("fc.bias", vec![2], fc_b.clone()),
            ("unused.weight", vec![3], vec![1.0, 2.0, 3.0]),
        ],
    );
    // Without --arch the cell alone converts, and the rest is named.
    let bare = dir.path("bare.lstm");
    let ran = Command::new(CONVERT).arg(dir.path("net.safetensors")).arg("-o").arg(&bare).output().unwrap();
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{stderr}");
    assert!(stderr.contains("not converted") && stderr.contains("enc.weight") && stderr.contains("--arch"), "{stderr}");
    assert!(Model::open(&bare).unwrap().metadata().stages.is_none());
    let (ran, out) = convert(&dir, ARCH);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{stderr}");
    assert!(stderr.contains("not converted") && stderr.contains("unused.weight"), "{stderr}");
    // The same model built by hand: the conv weight moved to tap-major here,
    // independently of the converter.
    let mut meta = Metadata::new(Architecture::new(CellKind::Lstm, 3, 5, 1));
    meta.stages = Some(Stages {
        chunk: 16,
        channels: 2,
        context: 2,
        sample_rate: 0,
        front: vec![
            Stage { stride: 2, pad_left: 1, pad_right: 1, padding: Padding::Reflect, ..Stage::conv1d(6, 3) },
            Stage::new(StageKind::Magnitude),
            Stage::activation(StageActivation::Tanh),
        ],
        back: vec![Stage { activation: StageActivation::Softmax, ..Stage::conv1d(2, 1) }],
    });
    let mut weights = Weights::zeros(&meta);
    let lw = &mut weights.layers[0];
    (lw.w_ih, lw.w_hh, lw.b_ih, lw.b_hh) = (w_ih, w_hh, b_ih, b_hh);
    let tap_major: Vec<f32> = (0..6)
        .flat_map(|o| (0..3).flat_map(move |k| (0..2).map(move |c| (o, c, k))))
        .map(|(o, c, k)| enc[(o * 2 + c) * 3 + k])
        .collect();
    weights.stages.insert("front.0.weight".into(), tap_major);
    weights.stages.insert("front.0.bias".into(), enc_b);
    weights.stages.insert("back.0.weight".into(), fc);
    weights.stages.insert("back.0.bias".into(), fc_b);
    let model = Model::open(&out).unwrap();
    assert_eq!(model.metadata().stages, meta.stages);
    assert_eq!(model.weights().stages, weights.stages);
    let signal: Vec<f32> = (0..16 * 2 * 4).map(|i| (i as f32 * 0.37).sin()).collect();
    let want = reference::run_chunks(&meta, &weights, &signal);
    let got = lstmrt_cli::chunked::run_signal(&model, &signal, 1).unwrap();
    assert!(reference::max_abs_diff(&got, &want) < 1e-5, "{got:?} vs {want:?}");
    // --check runs chunks through the stages too.
    let checked = dir.path("checked.lstm");
    let ran = Command::new(CONVERT)
        .arg(dir.path("net.safetensors"))
        .arg("--arch")
        .arg(dir.path("arch.json"))
        .arg("--check")
        .arg("-o")
        .arg(&checked)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success() && stdout.contains("and 8 chunks through the stages") && stdout.contains("-> ok"),
        "{stdout}"
    );
}

#[test]
fn the_silero_onnx_export_converts_into_the_committed_model() {
    let dir = TempDir::new("arch-silero");
    let vad = repo_root().join("models/silero_vad");
    let out = dir.path("vad.lstm");
    let ran = Command::new(CONVERT)
        .arg(vad.join("silero_vad_16k_op15.onnx"))
        .arg("--arch")
        .arg(vad.join("arch-onnx.json"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    assert!(std::fs::read(&out).unwrap() == std::fs::read(vad.join("silero_vad.lstm")).unwrap());
}

#[test]
fn mistakes_in_a_description_name_the_stage_and_the_tensor() {
    let dir = TempDir::new("arch-bad");
    write_safetensors(
        &dir.path("net.safetensors"),
        &[
            ("enc.weight", vec![6, 2, 3], vec![0.1; 36]),
            ("rnn.weight_ih", vec![20, 3], vec![0.1; 60]),
            ("rnn.weight_hh", vec![20, 5], vec![0.1; 100]),
            ("fc.weight", vec![2, 5], vec![0.1; 10]),
            ("fc.bias", vec![2], vec![0.1; 2]),
        ],
    );
    let cases: &[(&str, &str)] = &[
        (r#""bias": "enc.bias", "#, "front stage 0 (conv1d): tensor `enc.bias` is not in the state dict"),
        (r#""bias": null, "kernel": 5, "#, "front stage 0 (conv1d): `kernel` is 5, but tensor `enc.weight` has 3 taps"),
        (r#""bias": null, "strde": 2, "#, "front stage 0 (conv1d): unknown key `strde`"),
        (r#""bias": "fc.weight", "#, "front stage 0 (conv1d): tensor `fc.weight` has shape [2, 5], not [6]"),
        (r#""bias": null, "stride": 3, "#, "not valid JSON: the key `stride` appears twice in one object"),
    ];
    for (edit, says) in cases {
        let arch = ARCH.replace(r#""bias": "enc.bias", "#, edit);
        let (ran, out) = convert(&dir, &arch);
        let err = String::from_utf8_lossy(&ran.stderr);
        assert_eq!(ran.status.code(), Some(2), "{err}");
        assert!(err.contains(says) && err.lines().count() == 1, "{says}: {err}");
        assert!(!out.exists());
    }
    // From here on the description names no missing bias.
    let base = ARCH.replace(r#""bias": "enc.bias", "#, "");
    // Channels that do not chain: the weight takes 2 inputs, 4 arrive.
    let arch = base.replace(r#""channels": 2"#, r#""channels": 4"#);
    let err = String::from_utf8_lossy(&convert(&dir, &arch).0.stderr).to_string();
    assert!(err.contains("tensor `enc.weight` takes 2 input channels, but 4 reach this stage"), "{err}");
    // Sizes that do not fit: reflect padding wider than the window.
    let arch = base.replace(r#""padding": [1, 1]"#, r#""padding": [30, 1]"#);
    let err = String::from_utf8_lossy(&convert(&dir, &arch).0.stderr).to_string();
    assert!(err.contains("stages.front[0].pad_left") && err.contains("reflect padding of 30"), "{err}");
    let err = String::from_utf8_lossy(&convert(&dir, "{ not json").0.stderr).to_string();
    assert!(err.contains("arch.json: not valid JSON"), "{err}");
    let err =
        String::from_utf8_lossy(&convert(&dir, &base.replace("\"lstmrt_arch\": 1", "\"lstmrt_arch\": 2")).0.stderr)
            .to_string();
    assert!(err.contains("`lstmrt_arch` is 2; this converter reads version 1"), "{err}");
}
