//! `format-spec.md` is enough to read a model without lstmrt: the independent
//! Python reader in `tools/lstmfile.py`, written from the spec alone, reads
//! every fixture exactly as lstmrt does.

use lstmrt_testkit as common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{TempDir, golden_cases};
use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt::{Model, ModelWriter, Weights};

/// Where tools/lstmfile.py finds numpy: `Ok(None)` in the system's python3,
/// `Ok(Some(dir))` in `target/pydeps` (where `tools/test.sh` installs it, and
/// where this installs it once when neither has it), or `Err` with one line
/// saying why the reader cannot run and what to do.
fn numpy_path() -> &'static Result<Option<PathBuf>, String> {
    static FOUND: OnceLock<Result<Option<PathBuf>, String>> = OnceLock::new();
    FOUND.get_or_init(|| {
        let has_numpy = |path: Option<&Path>| {
            let mut c = Command::new("python3");
            c.args(["-c", "import numpy"]);
            if let Some(p) = path {
                c.env("PYTHONPATH", p);
            }
            c.output().map(|o| o.status.success())
        };
        match has_numpy(None) {
            Err(e) => return Err(format!("python3 cannot be run ({e}): install Python 3 with pip")),
            Ok(true) => return Ok(None),
            Ok(false) => {}
        }
        let deps = common::repo_root().join("target/pydeps");
        if has_numpy(Some(&deps)).unwrap_or(false) {
            return Ok(Some(deps));
        }
        let _ = writeln!(std::io::stderr(), "python_reader: python3 has no numpy; installing it into target/pydeps");
        let pip = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
            .arg(&deps)
            .arg("numpy")
            .output();
        match pip {
            Ok(o) if o.status.success() && has_numpy(Some(&deps)).unwrap_or(false) => Ok(Some(deps)),
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_string();
                Err(format!(
                    "python3 has no numpy and `python3 -m pip install --target target/pydeps numpy` failed ({last}): install numpy, or run `bash tools/test.sh`"
                ))
            }
            Err(e) => Err(format!("python3 has no numpy and pip could not be run ({e}): install numpy")),
        }
    })
}

/// Whether the reader can run here. When it cannot, the test says why in
/// one line and passes, unless `LSTMRT_REQUIRE_PYTHON_READER` is set (as
/// `tools/test.sh`, and so CI, sets it): then it fails with that line.
fn reader_ready(test: &str) -> bool {
    match numpy_path() {
        Ok(_) => true,
        Err(why) if std::env::var_os("LSTMRT_REQUIRE_PYTHON_READER").is_some() => panic!("{test}: {why}"),
        Err(why) => {
            // Straight to stderr: libtest would hide an `eprintln!` of a passing test.
            let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}");
            false
        }
    }
}

fn python_reader(args: &[&Path], extra: &[&str]) -> std::process::Output {
    let script = common::repo_root().join("tools/lstmfile.py");
    let mut c = Command::new("python3");
    if let Ok(Some(deps)) = numpy_path() {
        c.env("PYTHONPATH", deps);
    }
    c.arg(script).args(extra).args(args).output().expect("python3 runs (checked by numpy_path)")
}

/// Fixture models: every PyTorch golden case in each dtype and layout, plus models using
/// the metadata the golden cases do not (vocabulary, head, embedding, ONNX options).
fn fixture_models(dir: &TempDir) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for g in golden_cases() {
        for dtype in [DType::F32, DType::F16, DType::BF16, DType::I8] {
            let p = dir.path(&format!("{}-{}.lstm", g.name, dtype.name()));
            ModelWriter::new(&g.meta, &g.weights).dtype(dtype).write(&p).unwrap();
            paths.push(p);
        }
        let p = dir.path(&format!("{}-canonical.lstm", g.name));
        ModelWriter::new(&g.meta, &g.weights).layout(lstmrt::format::Layout::Canonical).write(&p).unwrap();
        paths.push(p);
    }
    let mut text = common::text_classifier(4, 6, &["he", "she", "é"]);
    text.provenance.producer = "test".into();
    text.provenance.source_file = "stories.txt".into();
    text.provenance.push("seed", "7");
    let mut onnx = Architecture::new(CellKind::Lstm, 3, 5, 2);
    onnx.peepholes = true;
    onnx.clip = Some(2.5);
    onnx.input_forget = true;
    onnx.bidirectional = true;
    onnx.proj_size = 2;
    let mut reverse = Architecture::new(CellKind::Gru, 4, 3, 2);
    reverse.reverse = true;
    let models = [("text", text), ("onnx-options", Metadata::new(onnx)), ("reverse", Metadata::new(reverse))];
    for (name, meta) in models {
        let mut w = Weights::zeros(&meta);
        let mut k = 0.0f32;
        for lw in &mut w.layers {
            for v in lw.w_ih.iter_mut().chain(lw.w_hh.iter_mut()).chain(lw.b_ih.iter_mut()) {
                k += 0.013;
                *v = k.sin();
            }
            if name == "onnx-options" {
                // Stored initial states (format 1.2).
                lw.initial_h = Some((0..meta.architecture.output_size()).map(|i| 0.1 * i as f32 - 0.05).collect());
                lw.initial_c = Some((0..meta.architecture.hidden()).map(|i| 0.2 - 0.03 * i as f32).collect());
            }
        }
        let p = dir.path(&format!("{name}.lstm"));
        ModelWriter::new(&meta, &w).dtype(DType::F16).write(&p).unwrap();
        paths.push(p);
    }
    // A chunked model (format 1.3 stages), in every dtype.
    let chunked = common::small_vad(CellKind::Lstm);
    let w = Weights::random(&chunked, &mut lstmrt::rng::Rng::new(9), 1.0);
    for dtype in [DType::F32, DType::F16, DType::I8] {
        let p = dir.path(&format!("chunked-{}.lstm", dtype.name()));
        ModelWriter::new(&chunked, &w).dtype(dtype).write(&p).unwrap();
        paths.push(p);
    }
    paths
}

#[test]
fn python_reader_written_from_the_spec_reads_every_fixture_like_lstmrt() {
    if !reader_ready("python_reader_written_from_the_spec_reads_every_fixture_like_lstmrt") {
        return;
    }
    let dir = TempDir::new("pyreader");
    let paths = fixture_models(&dir);
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let out = python_reader(&refs, &["--json", "--verify"]);
    assert!(out.status.success(), "python reader failed: {}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(files.len(), paths.len());
    for (path, file) in paths.iter().zip(&files) {
        let model = Model::open(path).unwrap();
        let meta = model.metadata();
        let arch = &file["metadata"]["architecture"];
        assert_eq!(arch["cell"], meta.architecture.cell.name());
        assert_eq!(arch["input_size"], meta.architecture.input_size);
        assert_eq!(arch["hidden_size"], meta.architecture.hidden_size);
        assert_eq!(arch["proj_size"], meta.architecture.proj_size);
        assert_eq!(arch["num_layers"], meta.architecture.num_layers);
        assert_eq!(arch["bidirectional"], meta.architecture.bidirectional);
        assert_eq!(arch["reverse"], meta.architecture.reverse);
        assert_eq!(arch["peepholes"], meta.architecture.peepholes);
        assert_eq!(arch["input_forget"], meta.architecture.input_forget);
        assert_eq!(arch["clip"].as_f64().map(|c| c as f32), meta.architecture.clip);
        assert_eq!(file["metadata"]["provenance"]["producer"], meta.provenance.producer.as_str());
        match &meta.stages {
            None => assert!(file["metadata"]["stages"].is_null()),
            Some(s) => {
                let py = &file["metadata"]["stages"];
                assert_eq!(
                    (py["chunk"].as_u64(), py["context"].as_u64()),
                    (Some(s.chunk as u64), Some(s.context as u64))
                );
                for (chain, list) in [("front", &s.front), ("back", &s.back)] {
                    let kinds: Vec<&str> =
                        py[chain].as_array().unwrap().iter().map(|v| v["kind"].as_str().unwrap()).collect();
                    let want: Vec<&str> = list.iter().map(|s| s.kind.name()).collect();
                    assert_eq!(kinds, want);
                }
                assert_eq!(py["front"][0]["padding"], "reflect");
                assert_eq!(py["front"][2]["activation"], "relu");
            }
        }
        if let Some(v) = &meta.vocabulary {
            let tokens: Vec<String> = serde_json::from_value(file["metadata"]["vocabulary"]["tokens"].clone()).unwrap();
            assert_eq!(&tokens, &v.tokens);
            let labels: Vec<String> = serde_json::from_value(file["metadata"]["head"]["labels"].clone()).unwrap();
            assert_eq!(labels, meta.head.as_ref().unwrap().labels);
        }
        let tensors = file["tensors"].as_array().unwrap();
        assert_eq!(tensors.len(), model.tensors().count(), "{}", path.display());
        for t in tensors {
            let view = model.tensor(t["name"].as_str().unwrap()).unwrap();
            assert_eq!(t["dtype"], view.dtype().name());
            let shape: Vec<u64> = serde_json::from_value(t["shape"].clone()).unwrap();
            assert_eq!(shape, view.shape());
            let sum: f64 = view.to_f32_vec().iter().map(|&v| v as f64).sum();
            let abs_sum: f64 = view.to_f32_vec().iter().map(|&v| (v as f64).abs()).sum();
            let py_sum = t["sum"].as_f64().unwrap();
            assert!((sum - py_sum).abs() <= 1e-9 * abs_sum.max(1.0), "{}: {sum} vs {py_sum}", view.name());
            assert!((abs_sum - t["abs_sum"].as_f64().unwrap()).abs() <= 1e-9 * abs_sum.max(1.0));
            let canonical = model.canonical_f32(view.name()).unwrap();
            let weighted: f64 = canonical.iter().enumerate().map(|(i, &v)| v as f64 * (i + 1) as f64).sum();
            let scale: f64 = canonical.iter().enumerate().map(|(i, &v)| (v as f64 * (i + 1) as f64).abs()).sum();
            let py = t["canonical_weighted_sum"].as_f64().unwrap();
            assert!((weighted - py).abs() <= 1e-9 * scale.max(1.0), "{}: unpacked differently", view.name());
        }
    }
}

#[test]
fn python_reader_refuses_what_lstmrt_refuses() {
    if !reader_ready("python_reader_refuses_what_lstmrt_refuses") {
        return;
    }
    let dir = TempDir::new("pyreader-bad");
    let paths = fixture_models(&dir);
    let good = std::fs::read(&paths[0]).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> =
        vec![("truncated", good[..good.len() - 3].to_vec()), ("bad magic", [b"XX".as_slice(), &good[2..]].concat())];
    let mut flipped = good.clone();
    flipped[70] ^= 1;
    cases.push(("header checksum", flipped));
    let mut data_flip = good.clone();
    let n = data_flip.len();
    data_flip[n - 10] ^= 0x55;
    cases.push(("tensor checksum (verify)", data_flip));
    for (what, bytes) in cases {
        let p = dir.path("bad.lstm");
        std::fs::write(&p, &bytes).unwrap();
        assert!(Model::from_bytes(&bytes).and_then(|m| m.verify()).is_err(), "{what}: lstmrt accepted it");
        let out = python_reader(&[&p], &["--verify"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("Traceback"), "{what}: the python reader crashed: {err}");
        assert_eq!(out.status.code(), Some(2), "{what}: python reader accepted it ({err})");
    }
}
