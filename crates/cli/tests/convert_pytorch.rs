//! lstm-convert on files written by real `torch.save` (zip and legacy
//! formats, strided views, mixed dtypes, a checkpoint with embedding and head),
//! compared with PyTorch's own outputs; and pickles that must be refused.

mod common;

use common::convert::{cases, convert_and_compare, run_convert, stderr};
use common::{TempDir, fixtures};
use lstmrt::Model;
use lstmrt::format::{CellKind, HeadActivation};
use lstmrt_import::convert::{self, Request, SourceKind};

const TOLERANCE: f32 = 1e-5;

#[test]
fn converted_torch_save_files_match_pytorch() {
    let cases = cases("pytorch");
    assert!(cases.len() >= 6, "expected the PyTorch convert fixtures");
    for case in &cases {
        let d = convert_and_compare(case, &[]);
        eprintln!("{}: max diff {d:e}", case.name);
        assert!(d <= TOLERANCE, "{}: differs from PyTorch by {d}", case.name);
    }
}

fn fixture(case: &str) -> std::path::PathBuf {
    fixtures().join("convert/pytorch").join(case).join("model.pt")
}

#[test]
fn reads_the_legacy_format_and_infers_a_two_layer_gru() {
    let dir = TempDir::new("pt-legacy");
    let outcome = convert::convert(&Request::new(fixture("gru_2layer_legacy"), dir.path("m.lstm"))).unwrap();
    assert_eq!(outcome.kind, SourceKind::TorchLegacy);
    let a = &outcome.meta.architecture;
    assert_eq!((a.cell, a.num_layers, a.input_size, a.hidden_size), (CellKind::Gru, 2, 3, 4));
}

#[test]
fn finds_embedding_and_head_in_a_checkpoint_under_module_prefixes() {
    let dir = TempDir::new("pt-ckpt");
    let mut request = Request::new(fixture("tagger_checkpoint"), dir.path("m.lstm"));
    request.options.head_activation = Some(HeadActivation::Softmax);
    let outcome = convert::convert(&request).unwrap();
    assert_eq!(outcome.meta.embedding.as_ref().unwrap().num_embeddings, 10);
    let head = outcome.meta.head.as_ref().unwrap();
    assert_eq!((head.out_features, head.activation), (3, HeadActivation::Softmax));
    let model = Model::open(dir.path("m.lstm")).unwrap();
    assert_eq!(model.architecture().hidden_size, 5);
}

#[test]
fn names_the_prefix_when_it_does_not_exist() {
    let dir = TempDir::new("pt-prefix");
    let out = dir.path("m.lstm");
    let o = run_convert([
        fixture("tagger_checkpoint").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--prefix".as_ref(),
        "decoder".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no recurrent parameters under prefix `decoder.`"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn provenance_records_source_hash_kind_and_options() {
    let dir = TempDir::new("pt-prov");
    let mut request = Request::new(fixture("rnn_relu_strided"), dir.path("m.lstm"));
    request.options.cell = Some(CellKind::RnnRelu);
    request.dtype = lstmrt::format::DType::F16;
    convert::convert(&request).unwrap();
    let model = Model::open(dir.path("m.lstm")).unwrap();
    let p = &model.metadata().provenance;
    assert_eq!(p.producer, format!("lstm-convert {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(p.source_file, "model.pt");
    assert_eq!(p.get("source.kind"), Some("pytorch-zip"));
    assert_eq!(p.get("convert.cell"), Some("rnn_relu"));
    assert_eq!(p.get("convert.dtype"), Some("f16"));
    let sha = p.get("source.sha256").unwrap();
    assert_eq!(sha.len(), 64);
    // The hash of the file, as sha256sum computes it (a known value of the fixture would go stale).
    use sha2::Digest;
    let want: String = sha2::Sha256::digest(std::fs::read(fixture("rnn_relu_strided")).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha, want);
    assert_eq!(model.dtype(), lstmrt::format::DType::F16);
}

#[test]
fn rejects_pickle_with_os_system_global() {
    let dir = TempDir::new("pt-evil");
    let out = dir.path("evil.lstm");
    let src = fixtures().join("convert/pytorch/refused/os_system.pt");
    let o = run_convert([src.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("os_system.pt") && err.contains("refusing global `posix.system`"), "{err}");
    assert!(!out.exists());
}

#[test]
fn rejects_pickle_with_a_custom_class() {
    let dir = TempDir::new("pt-class");
    let out = dir.path("c.lstm");
    let src = fixtures().join("convert/pytorch/refused/custom_class.pt");
    let o = run_convert([src.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`__main__.Config`"), "{}", stderr(&o));
    assert!(!out.exists());
}
