//! lstm-convert on Keras models exported by tools/export_keras.py (LSTM,
//! Bidirectional, GRU with both reset_after forms, SimpleRNN with embedding
//! and Dense head), compared with Keras' own predictions; and refusals.

mod common;

use common::convert::{cases, convert_and_compare, run_convert, stderr};
use common::{TempDir, fixtures};
use lstmrt::format::{CellKind, HeadActivation};
use lstmrt_import::convert::{self, Family, Request, SourceKind};

const TOLERANCE: f32 = 1e-5;

#[test]
fn converted_keras_models_match_keras() {
    let cases = cases("keras");
    assert!(cases.len() >= 5, "expected the Keras convert fixtures");
    let mut failures = Vec::new();
    for case in &cases {
        let d = convert_and_compare(case, &["--from", "keras"]);
        eprintln!("{}: max diff {d:e}", case.name);
        if d > TOLERANCE {
            failures.push(format!("{}: {d}", case.name));
        }
    }
    assert!(failures.is_empty(), "differ from Keras: {failures:?}");
}

fn case(name: &str) -> std::path::PathBuf {
    fixtures().join("convert/keras").join(name).join("model.npz")
}

#[test]
fn maps_gru_reset_after_to_linear_before_reset() {
    let dir = TempDir::new("keras-gru");
    let a = |name: &str| convert::convert(&Request::new(case(name), dir.path("m.lstm"))).unwrap().meta.architecture;
    let after = a("gru_reset_after");
    assert_eq!(after.cell, CellKind::Gru);
    assert!(after.linear_before_reset);
    let before = a("gru_reset_before_2layer");
    assert!(!before.linear_before_reset);
    assert_eq!(before.num_layers, 2);
}

#[test]
fn takes_embedding_and_dense_head_from_the_export() {
    let dir = TempDir::new("keras-tagger");
    let mut request = Request::new(case("simplernn_relu_tagger"), dir.path("m.lstm"));
    request.from = Some(Family::Keras);
    let outcome = convert::convert(&request).unwrap();
    assert_eq!(outcome.kind, SourceKind::Keras);
    assert_eq!(outcome.meta.architecture.cell, CellKind::RnnRelu);
    assert_eq!(outcome.meta.embedding.as_ref().unwrap().num_embeddings, 10);
    assert_eq!(outcome.meta.head.as_ref().unwrap().activation, HeadActivation::Softmax);
    assert_eq!(outcome.meta.provenance.get("keras.version").map(|v| v.starts_with('3')), Some(true));
}

fn refused(file: &str, expected: &[&str]) {
    let dir = TempDir::new("keras-refused");
    let out = dir.path("out.lstm");
    let src = fixtures().join("convert/keras/refused").join(file);
    let o = run_convert([src.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(o.status.code(), Some(2), "{file}: {}", stderr(&o));
    for e in expected {
        assert!(stderr(&o).contains(e), "{file}: expected {e:?} in {}", stderr(&o));
    }
    assert!(!out.exists());
}

#[test]
fn refuses_hard_sigmoid_recurrent_activation() {
    refused("hard_sigmoid.npz", &["recurrent_activation `hard_sigmoid`"]);
}

#[test]
fn refuses_go_backwards_outside_bidirectional() {
    refused("go_backwards.npz", &["go_backwards=True"]);
}
