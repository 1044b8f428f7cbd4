//! lstm-convert on ONNX models (exported by torch.onnx.export and built by
//! hand for peepholes, clip, input_forget, both GRU forms, layout=1,
//! direction=reverse and external data), compared with ONNX Runtime's
//! outputs; ONNX's own backend node tests; sequence_lens fed at run time;
//! and models that must be refused with the node and attribute named.

mod common;

use common::convert::{cases, convert_and_compare, run_convert, stderr};
use common::{TempDir, fixtures};
use lstmrt::format::CellKind;
use lstmrt_import::convert::{self, Request, SourceKind};

const TOLERANCE: f32 = 1e-5;

#[test]
fn converted_onnx_models_match_onnx_runtime() {
    let cases = cases("onnx");
    assert!(cases.len() >= 11, "expected the ONNX convert fixtures");
    let mut failures = Vec::new();
    for case in &cases {
        let d = convert_and_compare(case, &[]);
        eprintln!("{}: max diff {d:e}", case.name);
        if d > TOLERANCE {
            failures.push(format!("{}: {d}", case.name));
        }
    }
    assert!(failures.is_empty(), "differ from ONNX Runtime: {failures:?}");
}

fn case(name: &str) -> std::path::PathBuf {
    fixtures().join("convert/onnx").join(name).join("model.onnx")
}

#[test]
fn chains_exported_nodes_into_a_two_layer_bidirectional_stack() {
    let dir = TempDir::new("onnx-stack");
    let outcome = convert::convert(&Request::new(case("torch_lstm_2layer_bidirectional"), dir.path("m.lstm"))).unwrap();
    assert_eq!(outcome.kind, SourceKind::Onnx);
    let a = &outcome.meta.architecture;
    assert_eq!((a.cell, a.num_layers, a.bidirectional, a.input_size, a.hidden_size), (CellKind::Lstm, 2, true, 3, 4));
    assert!(outcome.meta.provenance.get("onnx.opset").is_some());
}

#[test]
fn maps_onnx_options_to_the_architecture() {
    let dir = TempDir::new("onnx-opts");
    let a = |name: &str| convert::convert(&Request::new(case(name), dir.path("m.lstm"))).unwrap().meta.architecture;
    let peep = a("lstm_peepholes_clip");
    assert!(peep.peepholes && peep.clip == Some(0.7) && !peep.input_forget);
    let inf = a("lstm_input_forget_bidirectional");
    assert!(inf.input_forget && inf.bidirectional);
    assert!(!a("gru_linear_before_reset_0_clip").linear_before_reset);
    assert!(a("gru_linear_before_reset_1").linear_before_reset);
    assert_eq!(a("torch_rnn_relu").cell, CellKind::RnnRelu);
}

fn refused(file: &str, expected: &[&str]) {
    let dir = TempDir::new("onnx-refused");
    let out = dir.path("out.lstm");
    let src = fixtures().join("convert/onnx/refused").join(file);
    let o = run_convert([src.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(o.status.code(), Some(2), "{file}: {}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    for e in expected {
        assert!(err.contains(e), "{file}: expected {e:?} in {err}");
    }
    assert!(!out.exists(), "{file}: output left behind");
}

#[test]
fn reverse_direction_converts_to_a_reverse_model_that_refuses_single_steps() {
    let dir = TempDir::new("onnx-reverse");
    let out = dir.path("m.lstm");
    let a = convert::convert(&Request::new(case("lstm_reverse_peepholes"), out.clone())).unwrap().meta.architecture;
    assert!(a.reverse && !a.bidirectional && a.peepholes);
    let model = lstmrt::Model::open(&out).unwrap();
    assert!(model.architecture().reverse, "the flag survives the file");
    let mut state = model.new_batch_state(2).unwrap();
    let err = model.step(&mut state, &[0.0; 6]).unwrap_err();
    assert!(err.to_string().contains("reverse model"), "{err}");
}

#[test]
fn refuses_non_default_activations_naming_node_and_attribute() {
    refused("hardsigmoid.onnx", &["LSTM node `lstm_0`", "`activations`", "hardsigmoid"]);
}

#[test]
fn refuses_a_constant_initial_state_whose_batch_rows_differ() {
    refused("per_row_initial_h.onnx", &["LSTM node `lstm_rows`", "initial_h `h0`", "batch row 1 differs from row 0"]);
}

/// Constant `initial_h`/`initial_c` (direct, or expanded over the batch) are
/// stored in the file: the converted model starts from them and gives ONNX
/// Runtime's outputs; a non-zero constant that once was refused converts.
#[test]
fn constant_initial_states_are_stored_and_match_onnx_runtime() {
    let (cases, compared) = convert_and_compare_outputs("onnx_initial");
    assert_eq!(cases, 3);
    assert_eq!(compared, 2 * cases * lstmrt::Isa::available_tiers().len(), "Y and Y_h of each");
    let dir = TempDir::new("onnx-h0");
    let out = dir.path("m.lstm");
    convert::convert(&Request::new(fixtures().join("convert/onnx/nonzero_initial_h.onnx"), out.clone())).unwrap();
    let model = lstmrt::Model::open(&out).unwrap();
    assert_eq!(model.initial_state().unwrap().0, &[1.0; 3]);
    assert_eq!(model.file_info().version_minor, 2);
}

#[test]
fn refuses_a_constant_sequence_lens() {
    refused("constant_sequence_lens.onnx", &["LSTM node `lstm_lens`", "sequence_lens (`lens`)", "graph input"]);
}

#[test]
fn refuses_external_data_outside_the_model_folder() {
    refused("external_escape.onnx", &["tensor `W`", "../escape.bin", "leaves the model's folder"]);
}

#[test]
fn refuses_a_graph_without_recurrent_nodes() {
    refused("not_recurrent.onnx", &["not a recurrent model", "MatMul"]);
}

/// The ONNX-only options really shape the fixtures' outputs: without each one
/// the reference engine would miss ONNX Runtime by far more than the tolerance,
/// so the match above is evidence that they are implemented as ONNX defines them.
#[test]
fn fixtures_exercise_clip_peepholes_input_forget_and_reset_form() {
    use lstmrt::reference;
    use lstmrt_import::Options;
    let cases = common::convert::cases("onnx");
    let run = |name: &str, tweak: &dyn Fn(&mut lstmrt::format::Architecture, &mut lstmrt::Weights)| -> f32 {
        let case = cases.iter().find(|c| c.name == name).unwrap();
        let bytes = std::fs::read(&case.model).unwrap();
        let mut imported = convert::import(&case.model, &bytes, None, &Options::default()).unwrap();
        tweak(&mut imported.meta.architecture, &mut imported.weights);
        let batch = case.input.shape[1];
        let out =
            reference::run(&imported.meta.architecture, &imported.weights, &case.input.to_f32(), batch, None, None);
        common::max_abs_diff(&out.output, &case.output.to_f32())
    };
    assert!(run("lstm_peepholes_clip", &|_, _| {}) <= TOLERANCE);
    assert!(run("lstm_peepholes_clip", &|a, _| a.clip = None) > 1e-3, "clip is not active in the fixture");
    let no_peepholes = |_: &mut lstmrt::format::Architecture, w: &mut lstmrt::Weights| {
        w.layers.iter_mut().for_each(|l| l.peephole.as_mut().unwrap().fill(0.0))
    };
    assert!(run("lstm_peepholes_clip", &no_peepholes) > 1e-3);
    assert!(run("lstm_input_forget_bidirectional", &|a, _| a.input_forget = false) > 1e-3);
    assert!(run("gru_linear_before_reset_0_clip", &|a, _| a.linear_before_reset = true) > 1e-3);
}

/// Converts every case under `fixtures/convert/<folder>` and compares the
/// converted model's `Y`, `Y_h` and `Y_c` (with `sequence_lens` passed as the
/// run's lengths) on every tier; returns the cases and the comparisons made.
fn convert_and_compare_outputs(folder: &str) -> (usize, usize) {
    use lstmrt::{Isa, Model};
    use lstmrt_import::npy;
    let root = fixtures().join("convert").join(folder);
    let mut dirs: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    let dir = TempDir::new("onnx-node");
    let mut compared = 0;
    for case in &dirs {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let out = dir.path(&format!("{name}.lstm"));
        let o = run_convert([case.join("model.onnx").as_os_str(), "-o".as_ref(), out.as_os_str()]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let read = |file: &str| case.join(file).exists().then(|| npy::read(case.join(file)).unwrap());
        let input = read("input.npy").unwrap();
        let lengths: Option<Vec<usize>> = read("lengths.npy").map(|a| a.data.iter().map(|&v| v as usize).collect());
        if lengths.is_some() {
            assert!(stderr(&o).contains("sequence_lens comes from the graph input"), "{name}: {}", stderr(&o));
        }
        if name.contains("constant_full_lengths") {
            assert!(stderr(&o).contains("the input's whole length: it changes nothing"), "{name}: {}", stderr(&o));
        }
        for isa in Isa::available_tiers() {
            let model = Model::open(&out).unwrap().with_isa(isa).unwrap();
            let mut state = model.new_batch_state(input.shape[1]).unwrap();
            let xs = input.to_f32();
            let y = match &lengths {
                Some(l) => model.run_lengths(&mut state, &xs, l).unwrap().to_vec(),
                None => model.run(&mut state, &xs).unwrap().to_vec(),
            };
            for (file, got) in [("y.npy", &y[..]), ("y_h.npy", state.h()), ("y_c.npy", state.c())] {
                if let Some(want) = read(file) {
                    let d = common::max_abs_diff(got, &want.to_f32());
                    assert!(d <= TOLERANCE, "{name} {isa}: {file} differs by {d}");
                    compared += 1;
                }
            }
        }
    }
    (dirs.len(), compared)
}

/// Every LSTM, GRU and RNN case of ONNX's own backend node tests
/// (`tools/make_onnx_node_fixtures.py`) converts and gives the case's outputs.
#[test]
fn onnx_backend_node_tests_convert_and_match() {
    let (cases, compared) = convert_and_compare_outputs("onnx_node");
    assert_eq!(cases, 18, "the 18 LSTM/GRU/RNN node tests");
    assert!(compared >= cases * lstmrt::Isa::available_tiers().len());
}

/// `sequence_lens` shorter than the input, fed as a graph input: ONNX
/// Runtime's outputs, with the lengths passed to `run_lengths`; and a constant
/// `sequence_lens` of the input's whole static length, which changes nothing.
#[test]
fn onnx_sequence_lens_inputs_match_onnx_runtime() {
    let (cases, compared) = convert_and_compare_outputs("onnx_lengths");
    assert_eq!(cases, 4, "three with lengths fed at run time, one constant of the whole length");
    assert_eq!(compared, 2 * cases * lstmrt::Isa::available_tiers().len(), "Y and Y_h of each");
}
