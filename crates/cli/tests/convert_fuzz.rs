//! Corrupted source files never panic the importers: every fixture, with
//! random bytes changed, truncated or spliced, either converts or gets an
//! error. Covers the pickle VM, the torch.save zip and legacy readers, the
//! protobuf/ONNX decoder and the Keras .npz reader.

mod common;

use common::fixtures;
use lstmrt_import::convert::{self, Request};
use lstmrt_import::{Options, pickle, protobuf};
use proptest::prelude::*;

/// Every source fixture (models and refused files) with its bytes.
fn sources() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["pytorch", "onnx", "keras"] {
        let root = fixtures().join("convert").join(kind);
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| ["pt", "onnx", "npz"].iter().any(|e| x == *e)) {
                    let bytes = std::fs::read(&p).unwrap();
                    out.push((p, bytes));
                }
            }
        }
    }
    out.sort();
    assert!(out.len() >= 20, "expected the convert fixtures");
    out
}

#[derive(Debug, Clone)]
enum Damage {
    /// Set bytes at (fraction of length, value).
    Flip(Vec<(f64, u8)>),
    Truncate(f64),
    /// Copy a run of bytes from one place to another.
    Splice {
        from: f64,
        to: f64,
        len: usize,
    },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        prop::collection::vec((0.0..1.0f64, any::<u8>()), 1..8).prop_map(Damage::Flip),
        (0.0..1.0f64).prop_map(Damage::Truncate),
        (0.0..1.0f64, 0.0..1.0f64, 1..64usize).prop_map(|(from, to, len)| Damage::Splice { from, to, len }),
    ]
}

fn apply(bytes: &[u8], d: &Damage) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let at = |f: f64, n: usize| ((f * n as f64) as usize).min(n.saturating_sub(1));
    match d {
        Damage::Flip(flips) => {
            for &(f, v) in flips {
                let i = at(f, b.len());
                b[i] = v;
            }
        }
        Damage::Truncate(f) => b.truncate(at(*f, b.len())),
        Damage::Splice { from, to, len } => {
            let (s, t) = (at(*from, b.len()), at(*to, b.len()));
            let n = (*len).min(b.len() - s).min(b.len() - t);
            let run = b[s..s + n].to_vec();
            b[t..t + n].copy_from_slice(&run);
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_sources_never_panic(index in 0usize..1000, d in damage()) {
        let sources = sources();
        let (path, bytes) = &sources[index % sources.len()];
        let damaged = apply(bytes, &d);
        // The path keeps the original folder, so ONNX external data resolves as before.
        let _ = convert::import(path, &damaged, None, &Options::default());
    }

    #[test]
    fn random_bytes_never_panic_the_pickle_vm_or_protobuf_decoder(data in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(p) = pickle::load(&data) {
            let _ = p.tensors();
        }
        for field in protobuf::Reader::new(&data) {
            let Ok(field) = field else { break };
            let _ = field.message().map(|m| m.count());
        }
        let _ = convert::detect(&data);
    }
}

#[test]
fn converting_a_corrupted_file_leaves_no_output() {
    let dir = common::TempDir::new("fuzz-out");
    let (path, bytes) = sources().into_iter().find(|(p, _)| p.ends_with("lstm_1layer/model.pt")).unwrap();
    let src = dir.path("model.pt");
    std::fs::write(&src, &bytes[..bytes.len() - 100]).unwrap();
    let out = dir.path("out.lstm");
    assert!(convert::convert(&Request::new(&src, &out)).is_err(), "{}", path.display());
    assert!(!out.exists());
}
