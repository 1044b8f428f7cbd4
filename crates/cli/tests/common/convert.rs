//! The lstm-convert fixtures (tests/fixtures/convert/{kind}/{case}/, written by
//! tools/make_convert_fixtures.py): run the built binary on each and compare
//! the converted model with the source framework's own output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lstmrt::Model;

use super::{TempDir, fixtures, max_abs_diff};

/// The binary under test.
pub fn lstm_convert() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lstm-convert"))
}

/// Runs lstm-convert with `args`.
pub fn run_convert<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    lstm_convert().args(args).output().expect("lstm-convert runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One fixture: a source model, its input and the framework's output.
pub struct Case {
    pub name: String,
    pub model: PathBuf,
    pub args: Vec<String>,
    /// The input is token ids `[T, B]` rather than vectors `[T, B, I]`.
    pub tokens: bool,
    pub input: lstmrt_import::npy::Array,
    pub output: lstmrt_import::npy::Array,
}

pub fn cases(kind: &str) -> Vec<Case> {
    let root = fixtures().join("convert").join(kind);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load(d)).collect()
}

fn load(dir: &Path) -> Case {
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let model = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_stem().is_some_and(|s| s == "model"))
        .unwrap_or_else(|| panic!("no model.* in {}", dir.display()));
    Case {
        name: dir.file_name().unwrap().to_string_lossy().into(),
        model,
        args: case["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
        tokens: case["tokens"].as_bool().unwrap_or(false),
        input: lstmrt_import::npy::read(dir.join("input.npy")).unwrap(),
        output: lstmrt_import::npy::read(dir.join("output.npy")).unwrap(),
    }
}

/// The model's output on the case's input: the recurrent stack's output
/// sequence, or the head's output at every step when there is a head.
pub fn model_output(model: &Model, case: &Case) -> Vec<f32> {
    let batch = case.input.shape[1];
    let xs = if case.tokens {
        let ids: Vec<u32> = case.input.data.iter().map(|&v| v as u32).collect();
        model.token_inputs(&ids).unwrap()
    } else {
        case.input.to_f32()
    };
    let mut state = model.new_batch_state(batch).unwrap();
    let out = model.run(&mut state, &xs).unwrap().to_vec();
    match &model.metadata().head {
        None => out,
        Some(head) => {
            let width = model.architecture().sequence_output_size();
            let mut y = vec![0.0; head.out_features as usize];
            let mut all = Vec::new();
            for row in out.chunks_exact(width) {
                model.apply_head(row, &mut y).unwrap();
                all.extend_from_slice(&y);
            }
            all
        }
    }
}

/// Converts the case with the binary (plus `extra` args) and returns the
/// largest difference from the framework's output.
pub fn convert_and_compare(case: &Case, extra: &[&str]) -> f32 {
    let dir = TempDir::new("convert-case");
    let out = dir.path("model.lstm");
    let mut args: Vec<String> = vec![case.model.display().to_string(), "-o".into(), out.display().to_string()];
    args.extend(case.args.iter().cloned());
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = run_convert(&args);
    assert!(o.status.success(), "{}: lstm-convert {args:?} failed: {}", case.name, stderr(&o));
    let model = Model::open(&out).unwrap();
    model.verify().unwrap();
    let got = model_output(&model, case);
    max_abs_diff(&got, &case.output.to_f32())
}
