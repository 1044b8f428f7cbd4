//! `lstm-run`, run as a built binary, in every mode: files in and out,
//! states, streaming through a pipe, text, generation, info, bench, and the
//! refusal of bad input with exit code 2 and one line on stderr.

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Golden, TempDir, golden_cases, load_golden, max_abs_diff};
use lstmrt::rng::Rng;
use lstmrt::{Model, ModelWriter, Weights, reference};
use lstmrt_format::{
    self as format, Architecture, CellKind, Embedding, Head, HeadActivation, HeadTask, Metadata, Tokenizer, Vocabulary,
};
use lstmrt_import::npy;

const BIN: &str = env!("CARGO_BIN_EXE_lstm-run");

/// What a finished `lstm-run` did.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn lstm_run<I, S>(args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(BIN).args(args).output().expect("lstm-run starts");
    Ran {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// `MODEL` followed by `rest`, as arguments.
fn with_model(model: &Path, rest: &[&str]) -> Vec<std::ffi::OsString> {
    std::iter::once(model.as_os_str().to_owned()).chain(rest.iter().map(|a| a.into())).collect()
}

fn ok(ran: Ran) -> Ran {
    assert_eq!(ran.code, 0, "lstm-run failed: {}", ran.stderr);
    ran
}

/// Exit code 2 and exactly one line on stderr that contains every one of `needles`.
fn assert_bad_input(ran: &Ran, needles: &[&str]) {
    assert_eq!(ran.code, 2, "expected exit 2; stderr: {} stdout: {}", ran.stderr, ran.stdout);
    assert_eq!(ran.stderr.lines().count(), 1, "one line on stderr, got: {:?}", ran.stderr);
    assert!(ran.stderr.starts_with("lstm-run: "), "{}", ran.stderr);
    for n in needles {
        assert!(ran.stderr.contains(n), "stderr {:?} should contain {n:?}", ran.stderr);
    }
}

fn golden(name: &str) -> Golden {
    load_golden(&common::fixtures().join("pytorch").join(name))
}

fn fixture(name: &str, file: &str) -> PathBuf {
    common::fixtures().join("pytorch").join(name).join(file)
}

/// Writes the golden case's model into `dir` and returns its path.
fn write_model(dir: &TempDir, g: &Golden) -> PathBuf {
    let path = dir.path(&format!("{}.lstm", g.name));
    ModelWriter::new(&g.meta, &g.weights).write(&path).unwrap();
    path
}

fn read_npy(path: &Path) -> npy::Array {
    npy::read(path).unwrap_or_else(|e| panic!("{e}"))
}

/// A `.npy` file of float64 (or int64) values, written by hand so the tests
/// check the reader against NumPy's layout rather than against our writer.
fn npy_bytes(descr: &str, shape: &[usize], values: &[f64]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in values {
        match descr {
            "<f8" => out.extend_from_slice(&v.to_le_bytes()),
            "<i8" => out.extend_from_slice(&(v as i64).to_le_bytes()),
            "<i4" => out.extend_from_slice(&(v as i32).to_le_bytes()),
            _ => panic!("unsupported descr {descr}"),
        }
    }
    out
}

fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) {
    npy::write_f32(path, shape, data).unwrap();
}

/// Weights for `meta` drawn uniformly from `[-scale, scale)` with a fixed seed.
fn random_weights(meta: &Metadata, seed: u64, scale: f32) -> Weights {
    let mut rng = Rng::new(seed);
    let mut w = Weights::zeros(meta);
    for t in format::expected_tensors(meta) {
        let n = t.shape.iter().product::<u64>() as usize;
        let values = (0..n).map(|_| rng.uniform_f32(-scale, scale)).collect();
        assert!(w.set(&meta.architecture, &t.name, values));
    }
    w
}

const WORDS: [&str; 12] =
    ["<unk>", "the", "dog", "cat", "chased", "because", "it", "was", "hungry", "tired", ".", "and"];
const LABELS: [&str; 3] = ["dog", "cat", "nobody"];

/// A tiny word-level text classifier (embedding 4, 2-layer LSTM of 6, a
/// softmax head over three labels) with random weights: enough to check
/// that the CLI computes what the reference computes, not a trained model.
fn text_classifier(with_unknown: bool) -> (Metadata, Weights) {
    let mut meta = Metadata::new(Architecture::new(CellKind::Lstm, 4, 6, 2));
    meta.embedding = Some(Embedding { num_embeddings: WORDS.len() as u32 });
    meta.vocabulary = Some(Vocabulary {
        tokenizer: Tokenizer::Word,
        lowercase: true,
        tokens: WORDS.iter().map(|s| s.to_string()).collect(),
        unknown: with_unknown.then_some(0),
    });
    meta.head = Some(Head {
        out_features: 3,
        activation: HeadActivation::Softmax,
        task: HeadTask::Classifier,
        labels: LABELS.iter().map(|s| s.to_string()).collect(),
    });
    meta.provenance.producer = "cli_run tests".into();
    meta.provenance.push("purpose", "random weights for CLI tests");
    let weights = random_weights(&meta, 11, 1.0);
    (meta, weights)
}

const CHARS: &str = "abcdeh .";

/// A tiny character language model (one-hot-free: embedding 5, LSTM 8,
/// softmax over the characters) with random weights large enough that the
/// next-character distribution is far from uniform.
fn char_language_model() -> (Metadata, Weights) {
    let mut meta = Metadata::new(Architecture::new(CellKind::Lstm, 5, 8, 1));
    let n = CHARS.chars().count() as u32;
    meta.embedding = Some(Embedding { num_embeddings: n });
    meta.vocabulary = Some(Vocabulary {
        tokenizer: Tokenizer::Char,
        lowercase: false,
        tokens: CHARS.chars().map(String::from).collect(),
        unknown: None,
    });
    meta.head = Some(Head {
        out_features: n,
        activation: HeadActivation::Softmax,
        task: HeadTask::LanguageModel,
        labels: vec![],
    });
    let weights = random_weights(&meta, 5, 2.0);
    (meta, weights)
}

fn write(dir: &TempDir, name: &str, meta: &Metadata, weights: &Weights) -> PathBuf {
    let path = dir.path(name);
    ModelWriter::new(meta, weights).write(&path).unwrap();
    path
}

/// The reference engine's head output after the last token of `ids`.
fn reference_last_head(meta: &Metadata, weights: &Weights, ids: &[usize]) -> Vec<f32> {
    let arch = &meta.architecture;
    let input = arch.input_size as usize;
    let table = weights.embedding.as_ref().unwrap();
    let xs: Vec<f32> = ids.iter().flat_map(|&id| table[id * input..][..input].iter().copied()).collect();
    let out = reference::run(arch, weights, &xs, 1, None, None).output;
    let width = arch.sequence_output_size();
    reference::head(meta.head.as_ref().unwrap(), weights.head.as_ref().unwrap(), &out[out.len() - width..])
}

fn word_ids(text: &str) -> Vec<usize> {
    text.split_whitespace().map(|w| WORDS.iter().position(|&v| v == w).unwrap_or(0)).collect()
}

// ---------------------------------------------------------------- files

#[test]
fn npy_input_gives_pytorchs_output_and_final_state_for_every_golden_case() {
    let dir = TempDir::new("cli-golden");
    for g in golden_cases() {
        let model = write_model(&dir, &g);
        let out = dir.path(&format!("{}.out.npy", g.name));
        let state = dir.path(&format!("{}.final", g.name));
        let mut args: Vec<PathBuf> = vec![model, fixture(&g.name, "input.npy"), "-o".into(), out.clone()];
        args.extend(["--final-state".into(), state.clone()]);
        if g.h0.is_some() {
            let init = dir.path(&format!("{}.init", g.name));
            std::fs::copy(fixture(&g.name, "h0.npy"), dir.path(&format!("{}.init.h.npy", g.name))).unwrap();
            if g.c0.is_some() {
                std::fs::copy(fixture(&g.name, "c0.npy"), dir.path(&format!("{}.init.c.npy", g.name))).unwrap();
            }
            args.extend(["--initial-state".into(), init]);
        }
        ok(lstm_run(&args));
        let got = read_npy(&out);
        assert_eq!(got.shape, g.output_shape, "{}: output shape", g.name);
        assert!(max_abs_diff(&got.to_f32(), &g.output) <= 1e-5, "{}: output differs from PyTorch", g.name);
        let h_n = read_npy(&dir.path(&format!("{}.final.h.npy", g.name)));
        assert_eq!(h_n.shape, read_npy(&fixture(&g.name, "h_n.npy")).shape, "{}: h_n shape", g.name);
        assert!(max_abs_diff(&h_n.to_f32(), &g.h_n) <= 1e-5, "{}: h_n", g.name);
        let c_path = dir.path(&format!("{}.final.c.npy", g.name));
        match &g.c_n {
            Some(c_n) => {
                let got = read_npy(&c_path);
                assert_eq!(got.shape, read_npy(&fixture(&g.name, "c_n.npy")).shape, "{}: c_n shape", g.name);
                assert!(max_abs_diff(&got.to_f32(), c_n) <= 1e-5, "{}: c_n", g.name);
            }
            None => assert!(!c_path.exists(), "{}: a {} has no c_n", g.name, g.meta.architecture.cell.name()),
        }
    }
}

#[test]
fn two_d_float64_input_gives_two_d_output_and_state_like_pytorch_unbatched() {
    let dir = TempDir::new("cli-2d");
    let g = golden("lstm_seq200");
    let model = write_model(&dir, &g);
    let (steps, input) = (200, 3);
    let as_f64: Vec<f64> = g.input.iter().map(|&v| v as f64).collect();
    std::fs::write(dir.path("in.npy"), npy_bytes("<f8", &[steps, input], &as_f64)).unwrap();
    let out = dir.path("out.npy");
    ok(lstm_run([&model, &dir.path("in.npy"), Path::new("-o"), &out, Path::new("--final-state"), &dir.path("s")]));
    let got = read_npy(&out);
    assert_eq!(got.shape, [steps, 16]);
    assert!(max_abs_diff(&got.to_f32(), &g.output) <= 1e-5);
    assert_eq!(read_npy(&dir.path("s.h.npy")).shape, [1, 16]);
    assert_eq!(read_npy(&dir.path("s.c.npy")).shape, [1, 16]);
}

#[test]
fn batch_first_input_gives_batch_first_output_with_the_same_values() {
    let dir = TempDir::new("cli-bf");
    let g = golden("lstm_batch5");
    let model = write_model(&dir, &g);
    let (steps, batch, input, hidden) = (10, 5, 8, 12);
    // [T, B, I] -> [B, T, I]
    let mut bf = vec![0.0f32; g.input.len()];
    for t in 0..steps {
        for b in 0..batch {
            bf[(b * steps + t) * input..][..input].copy_from_slice(&g.input[(t * batch + b) * input..][..input]);
        }
    }
    write_npy_f32(&dir.path("bf.npy"), &[batch, steps, input], &bf);
    std::fs::copy(fixture("lstm_batch5", "h0.npy"), dir.path("init.h.npy")).unwrap();
    std::fs::copy(fixture("lstm_batch5", "c0.npy"), dir.path("init.c.npy")).unwrap();
    let out = dir.path("out.npy");
    ok(lstm_run([
        &model,
        &dir.path("bf.npy"),
        Path::new("--batch-first"),
        Path::new("--initial-state"),
        &dir.path("init"),
        Path::new("-o"),
        &out,
        Path::new("--threads"),
        Path::new("2"),
    ]));
    let got = read_npy(&out);
    assert_eq!(got.shape, [batch, steps, hidden]);
    let got = got.to_f32();
    for t in 0..steps {
        for b in 0..batch {
            let want = &g.output[(t * batch + b) * hidden..][..hidden];
            assert!(max_abs_diff(&got[(b * steps + t) * hidden..][..hidden], want) <= 1e-5, "t={t} b={b}");
        }
    }
}

#[test]
fn csv_input_with_header_and_csv_and_json_outputs_match_the_model() {
    let dir = TempDir::new("cli-csv");
    let g = golden("rnn_tanh");
    let model_path = write_model(&dir, &g);
    let (steps, input, hidden) = (8, 3, 5);
    let mut csv = String::from("a,b,c\n");
    for row in g.input.chunks(input) {
        csv.push_str(&row.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(","));
        csv.push('\n');
    }
    std::fs::write(dir.path("in.csv"), csv).unwrap();
    let model = Model::open(&model_path).unwrap();
    let want = model.run(&mut model.new_state(), &g.input).unwrap().to_vec();

    ok(lstm_run([&model_path, &dir.path("in.csv"), Path::new("-o"), &dir.path("out.csv")]));
    let text = std::fs::read_to_string(dir.path("out.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("y0,y1,y2,y3,y4"));
    let got: Vec<f32> = lines.flat_map(|l| l.split(',').map(|v| v.parse::<f32>().unwrap())).collect();
    assert_eq!(got, want, "CSV values round-trip exactly");

    ok(lstm_run([&model_path, &dir.path("in.csv"), Path::new("-o"), &dir.path("out.json")]));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path("out.json")).unwrap()).unwrap();
    assert_eq!(json["shape"], serde_json::json!([steps, hidden]));
    let rows = json["output"].as_array().unwrap();
    assert_eq!(rows.len(), steps);
    let got: Vec<f32> =
        rows.iter().flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32)).collect();
    assert_eq!(got, want);
}

#[test]
fn three_d_csv_output_has_step_and_sequence_columns() {
    let dir = TempDir::new("cli-csv3");
    let g = golden("gru");
    let model = write_model(&dir, &g);
    ok(lstm_run([&model, &fixture("gru", "input.npy"), Path::new("-o"), &dir.path("out.csv")]));
    let text = std::fs::read_to_string(dir.path("out.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "step,sequence,y0,y1,y2,y3,y4,y5");
    assert_eq!(lines.len(), 1 + 9 * 2);
    assert!(lines[4].starts_with("1,1,"), "{}", lines[4]);
    let row: Vec<f32> = lines[4].split(',').skip(2).map(|v| v.parse().unwrap()).collect();
    assert!(max_abs_diff(&row, &g.output[(2 + 1) * 6..][..6]) <= 1e-5);
}

#[test]
fn without_output_a_readable_summary_is_printed() {
    let dir = TempDir::new("cli-summary");
    let g = golden("lstm_3layer");
    let model = write_model(&dir, &g);
    let ran = ok(lstm_run([&model, &fixture("lstm_3layer", "input.npy")]));
    assert!(ran.stdout.contains("output  [5, 2, 6]"), "{}", ran.stdout);
    assert!(ran.stdout.contains("t=0 b=0"), "{}", ran.stdout);
    assert!(ran.stdout.contains(&format!("{:.4}", g.output[0])), "{}", ran.stdout);
    assert!(ran.stdout.contains("-o OUTPUT.npy"), "{}", ran.stdout);
}

#[test]
fn head_flag_applies_the_head_to_every_step() {
    let dir = TempDir::new("cli-head");
    let (meta, weights) = text_classifier(true);
    let model = write(&dir, "clf.lstm", &meta, &weights);
    let ids = word_ids("the dog chased the cat");
    let table = weights.embedding.as_ref().unwrap();
    let xs: Vec<f32> = ids.iter().flat_map(|&id| table[id * 4..][..4].iter().copied()).collect();
    write_npy_f32(&dir.path("in.npy"), &[ids.len(), 4], &xs);
    ok(lstm_run([&model, &dir.path("in.npy"), Path::new("--head"), Path::new("-o"), &dir.path("y.csv")]));
    let text = std::fs::read_to_string(dir.path("y.csv")).unwrap();
    assert!(text.starts_with("dog,cat,nobody\n"), "labels name the columns: {text}");
    let last: Vec<f32> = text.lines().last().unwrap().split(',').map(|v| v.parse().unwrap()).collect();
    assert!(max_abs_diff(&last, &reference_last_head(&meta, &weights, &ids)) <= 1e-5);
    // Without --head the raw stack output comes out, as in PyTorch.
    ok(lstm_run([&model, &dir.path("in.npy"), Path::new("-o"), &dir.path("raw.npy")]));
    assert_eq!(read_npy(&dir.path("raw.npy")).shape, [ids.len(), 6]);
}

/// Runs `first` then `second` (npy files) with the state carried through
/// `PREFIX` files; returns both outputs concatenated. The final state is left
/// at `dir/end.{h,c}.npy`.
fn run_in_two_pieces(dir: &TempDir, model: &Path, first: &Path, second: &Path) -> Vec<f32> {
    ok(lstm_run([model, first, Path::new("-o"), &dir.path("a.out.npy"), Path::new("--final-state"), &dir.path("mid")]));
    ok(lstm_run([
        model,
        second,
        Path::new("-o"),
        &dir.path("b.out.npy"),
        Path::new("--initial-state"),
        &dir.path("mid"),
        Path::new("--final-state"),
        &dir.path("end"),
    ]));
    let mut pieces = read_npy(&dir.path("a.out.npy")).to_f32();
    pieces.extend(read_npy(&dir.path("b.out.npy")).to_f32());
    pieces
}

#[test]
fn a_batch_processed_in_two_pieces_with_saved_state_equals_one_run() {
    let dir = TempDir::new("cli-pieces");
    let g = golden("lstm_h0_c0");
    let model = write_model(&dir, &g);
    let (steps, batch, input) = (5, 3, 4);
    let split = 2 * batch * input;
    write_npy_f32(&dir.path("a.npy"), &[2, batch, input], &g.input[..split]);
    write_npy_f32(&dir.path("b.npy"), &[steps - 2, batch, input], &g.input[split..]);
    let whole_input = fixture("lstm_h0_c0", "input.npy");
    ok(lstm_run([
        &model,
        &whole_input,
        Path::new("-o"),
        &dir.path("whole.npy"),
        Path::new("--final-state"),
        &dir.path("whole"),
    ]));
    let pieces = run_in_two_pieces(&dir, &model, &dir.path("a.npy"), &dir.path("b.npy"));
    assert!(max_abs_diff(&pieces, &read_npy(&dir.path("whole.npy")).to_f32()) <= 1e-6);
    for part in ["h", "c"] {
        let one = read_npy(&dir.path(&format!("whole.{part}.npy")));
        let two = read_npy(&dir.path(&format!("end.{part}.npy")));
        assert_eq!(one.shape, [2, batch, 6]);
        assert!(max_abs_diff(&one.to_f32(), &two.to_f32()) <= 1e-6, "{part}_n");
    }
}

#[test]
fn a_200_step_sequence_run_as_120_then_80_steps_matches_pytorch() {
    let dir = TempDir::new("cli-long");
    let g = golden("lstm_seq200");
    let model = write_model(&dir, &g);
    let (input, hidden) = (3, 16);
    write_npy_f32(&dir.path("a.npy"), &[120, input], &g.input[..120 * input]);
    write_npy_f32(&dir.path("b.npy"), &[80, input], &g.input[120 * input..]);
    let pieces = run_in_two_pieces(&dir, &model, &dir.path("a.npy"), &dir.path("b.npy"));
    assert!(max_abs_diff(&pieces, &g.output) <= 1e-5);
    let c_n = read_npy(&dir.path("end.c.npy"));
    assert_eq!(c_n.shape, [1, hidden]);
    assert!(max_abs_diff(&c_n.to_f32(), g.c_n.as_ref().unwrap()) <= 1e-5);
    assert!(max_abs_diff(&read_npy(&dir.path("end.h.npy")).to_f32(), &g.h_n) <= 1e-5);
}

// ---------------------------------------------------------------- streaming

/// Spawns `lstm-run MODEL - ARGS` with piped stdin/stdout; lines read from
/// stdout arrive on the returned channel.
fn spawn_stream(
    model: &Path,
    args: &[&str],
) -> (std::process::Child, std::process::ChildStdin, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .arg(model)
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    (child, stdin, rx)
}

fn parse_line(line: &str) -> Vec<f32> {
    line.split(',').map(|v| v.parse().unwrap()).collect()
}

#[test]
fn streaming_through_a_pipe_answers_each_line_before_the_next_is_written() {
    let dir = TempDir::new("cli-stream");
    let g = golden("lstm_1layer");
    let model = write_model(&dir, &g);
    let (input, hidden) = (5, 7);
    let (mut child, mut stdin, lines) = spawn_stream(&model, &["--final-state", dir.path("s").to_str().unwrap()]);
    for (t, x) in g.input.chunks(input).enumerate() {
        // Alternate separators: commas, then spaces.
        let sep = if t % 2 == 0 { "," } else { " " };
        let text: Vec<String> = x.iter().map(|v| format!("{v:?}")).collect();
        writeln!(stdin, "{}", text.join(sep)).unwrap();
        stdin.flush().unwrap();
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no output line for step {t} while stdin stays open: not flushed per step"));
        let got = parse_line(&line);
        assert!(max_abs_diff(&got, &g.output[t * hidden..][..hidden]) <= 1e-5, "step {t}");
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert!(lines.recv_timeout(Duration::from_secs(5)).is_err(), "one line per step, no more");
    let h = read_npy(&dir.path("s.h.npy"));
    assert_eq!(h.shape, [1, hidden]);
    assert!(max_abs_diff(&h.to_f32(), &g.h_n) <= 1e-5);
}

#[test]
fn streaming_goes_through_the_head_unless_no_head_and_skips_blank_and_comment_lines() {
    let dir = TempDir::new("cli-stream-head");
    let (meta, weights) = text_classifier(true);
    let model = write(&dir, "clf.lstm", &meta, &weights);
    let ids = word_ids("the cat was tired");
    let table = weights.embedding.as_ref().unwrap();
    let mut stdin_text = String::from("# embedding rows, one token per line\n\n");
    for &id in &ids {
        let row: Vec<String> = table[id * 4..][..4].iter().map(|v| format!("{v:?}")).collect();
        stdin_text.push_str(&row.join(", "));
        stdin_text.push('\n');
    }
    for (flag, width) in [(None, 3), (Some("--no-head"), 6)] {
        let mut cmd = Command::new(BIN);
        cmd.arg(&model).arg("-").args(flag).stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin_text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), ids.len());
        assert!(lines.iter().all(|l| parse_line(l).len() == width));
        if flag.is_none() {
            let last = parse_line(lines.last().unwrap());
            assert!(max_abs_diff(&last, &reference_last_head(&meta, &weights, &ids)) <= 1e-5);
        }
    }
}

#[test]
fn streaming_a_bad_line_stops_with_exit_2_naming_line_and_column() {
    let dir = TempDir::new("cli-stream-bad");
    let g = golden("lstm_seq1");
    let model = write_model(&dir, &g);
    for (input, needles) in [
        ("0.1,0.2,0.3\n0.1,zz,0.3\n", &["stdin, line 2, column 2", "\"zz\" is not a number"][..]),
        ("0.1 0.2\n", &["stdin, line 1", "2 values", "takes 3"][..]),
        ("0.1,nan,0.3\n", &["stdin, line 1, column 2", "not finite", "--allow-nonfinite"][..]),
    ] {
        let mut child = Command::new(BIN)
            .arg(&model)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let ran = Ran {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        assert_bad_input(&ran, needles);
    }
}

#[test]
fn streaming_a_bidirectional_model_is_refused() {
    let dir = TempDir::new("cli-stream-bi");
    let model = write_model(&dir, &golden("lstm_bidirectional"));
    let out = Command::new(BIN).arg(&model).arg("-").stdin(Stdio::null()).output().unwrap();
    let ran =
        Ran { code: out.status.code().unwrap(), stdout: String::new(), stderr: String::from_utf8(out.stderr).unwrap() };
    assert_bad_input(&ran, &["bidirectional model cannot be streamed"]);
}

#[test]
fn a_reverse_model_runs_files_like_the_reference_and_refuses_streaming() {
    let dir = TempDir::new("cli-reverse");
    let mut arch = Architecture::new(CellKind::Lstm, 3, 5, 2);
    arch.reverse = true;
    let meta = Metadata::new(arch);
    let weights = random_weights(&meta, 21, 0.5);
    let model = write(&dir, "reverse", &meta, &weights);
    let info = ok(lstm_run(with_model(&model, &["--info"])));
    assert!(info.stdout.contains("reverse (reads sequences from the end)"), "{}", info.stdout);

    let (steps, batch) = (9, 2);
    let mut rng = Rng::new(5);
    let xs: Vec<f32> = (0..steps * batch * 3).map(|_| rng.uniform_f32(-1.0, 1.0)).collect();
    let (input, output) = (dir.path("x.npy"), dir.path("y.npy"));
    write_npy_f32(&input, &[steps, batch, 3], &xs);
    ok(lstm_run([model.as_os_str(), input.as_os_str(), "-o".as_ref(), output.as_os_str()]));
    let want = reference::run(&meta.architecture, &weights, &xs, batch, None, None);
    let got = read_npy(&output);
    assert_eq!(got.shape, [steps, batch, 5]);
    let got: Vec<f32> = got.data.iter().map(|&v| v as f32).collect();
    assert!(max_abs_diff(&got, &want.output) < 1e-5);
    // Reading from the end: the last step's output has seen only the last input.
    let mut last = Metadata::new(meta.architecture.clone());
    last.architecture.reverse = false;
    let tail = &xs[(steps - 1) * batch * 3..];
    let forward_one = reference::run(&last.architecture, &weights, tail, batch, None, None);
    assert!(max_abs_diff(&got[(steps - 1) * batch * 5..], &forward_one.output) < 1e-5);

    let out = Command::new(BIN).arg(&model).arg("-").stdin(Stdio::null()).output().unwrap();
    let ran =
        Ran { code: out.status.code().unwrap(), stdout: String::new(), stderr: String::from_utf8(out.stderr).unwrap() };
    assert_bad_input(&ran, &["reverse model cannot be streamed"]);
}

// ---------------------------------------------------------------- text

#[test]
fn text_classifier_prints_the_prediction_and_probabilities_of_the_reference() {
    let dir = TempDir::new("cli-text");
    let (meta, weights) = text_classifier(true);
    let model = write(&dir, "clf.lstm", &meta, &weights);
    let text = "The dog chased the cat because it was hungry.";
    let ids = word_ids("the dog chased the cat because it was hungry .");
    let probs = reference_last_head(&meta, &weights, &ids);
    let best = (0..3).max_by(|&a, &b| probs[a].total_cmp(&probs[b])).unwrap();
    let ran = ok(lstm_run(with_model(&model, &["--text", text])));
    assert!(ran.stdout.contains(text), "the story is shown: {}", ran.stdout);
    assert!(ran.stdout.contains("Tokens:  10"), "{}", ran.stdout);
    let prediction = format!("Prediction: {} ({:.1}%)", LABELS[best], probs[best] * 100.0);
    assert!(ran.stdout.contains(&prediction), "expected {prediction:?} in {}", ran.stdout);
    for (label, p) in LABELS.iter().zip(&probs) {
        let line = ran.stdout.lines().find(|l| l.trim_start().starts_with(label) && l.contains('%')).unwrap();
        assert!(line.contains(&format!("{:.1}%", p * 100.0)), "{line}");
        assert!(line.contains('█') || line.contains('░'), "a bar: {line}");
    }
}

#[test]
fn text_top_k_limits_the_list() {
    let dir = TempDir::new("cli-text-top");
    let (meta, weights) = text_classifier(true);
    let model = write(&dir, "clf.lstm", &meta, &weights);
    let ran = ok(lstm_run(with_model(&model, &["--text", "the dog", "--top", "1"])));
    assert_eq!(ran.stdout.lines().filter(|l| l.contains('%') && !l.starts_with("Prediction")).count(), 1);
}

#[test]
fn unknown_word_is_read_as_the_unknown_token_or_refused_with_its_position() {
    let dir = TempDir::new("cli-unk");
    let (meta, weights) = text_classifier(true);
    let with_unk = write(&dir, "unk.lstm", &meta, &weights);
    let ran = ok(lstm_run(with_model(&with_unk, &["--text", "the zebra was tired"])));
    assert!(ran.stdout.contains("\"zebra\" (position 1)"), "{}", ran.stdout);
    assert!(ran.stdout.contains("\"<unk>\""), "{}", ran.stdout);
    let probs = reference_last_head(&meta, &weights, &word_ids("the <unk> was tired"));
    let best = (0..3).max_by(|&a, &b| probs[a].total_cmp(&probs[b])).unwrap();
    assert!(ran.stdout.contains(&format!("Prediction: {} ({:.1}%)", LABELS[best], probs[best] * 100.0)));

    let (meta, weights) = text_classifier(false);
    let strict = write(&dir, "strict.lstm", &meta, &weights);
    let ran = lstm_run(with_model(&strict, &["--text", "the zebra was tired"]));
    assert_bad_input(&ran, &["strict.lstm", "unknown token \"zebra\" at position 1"]);
}

#[test]
fn trace_gates_writes_every_gate_cell_and_hidden_value_for_every_token_and_layer() {
    let dir = TempDir::new("cli-trace");
    let (meta, weights) = text_classifier(true);
    let model = write(&dir, "clf.lstm", &meta, &weights);
    let trace = dir.path("trace.csv");
    ok(lstm_run(with_model(&model, &["--text", "the dog, it was tired", "--trace-gates", trace.to_str().unwrap()])));
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "position,token,layer,direction,unit,input_gate,forget_gate,cell_candidate,output_gate,cell,hidden"
    );
    let rows: Vec<&str> = lines.collect();
    let (tokens, layers, hidden) = (6, 2, 6);
    assert_eq!(rows.len(), tokens * layers * hidden);
    // The comma token is quoted; gates are in (0, 1), the candidate in (-1, 1).
    assert!(rows.iter().any(|r| r.starts_with("2,\",\",0,0,0,")), "{}", rows[24]);
    for r in rows.iter().filter(|r| !r.contains("\",\"")) {
        let f: Vec<f32> = r.split(',').skip(2).map(|v| v.parse().unwrap()).collect();
        let (i, fg, g, o) = (f[3], f[4], f[5], f[6]);
        assert!([i, fg, o].iter().all(|v| (0.0..=1.0).contains(v)) && (-1.0..=1.0).contains(&g), "{r}");
    }
    // The top layer's hidden column at the last token is the model's last output.
    let ids = word_ids("the dog , it was tired");
    let table = weights.embedding.as_ref().unwrap();
    let xs: Vec<f32> = ids.iter().flat_map(|&id| table[id * 4..][..4].iter().copied()).collect();
    let want = reference::run(&meta.architecture, &weights, &xs, 1, None, None).output;
    let last: Vec<f32> = rows
        .iter()
        .filter(|r| r.starts_with("5,tired,1,0,"))
        .map(|r| r.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(last.len(), hidden);
    assert!(max_abs_diff(&last, &want[5 * hidden..]) <= 1e-6);
}

#[test]
fn language_model_text_lists_the_next_token_distribution() {
    let dir = TempDir::new("cli-lm");
    let (meta, weights) = char_language_model();
    let model = write(&dir, "lm.lstm", &meta, &weights);
    let ids: Vec<usize> = "ab".chars().map(|c| CHARS.chars().position(|v| v == c).unwrap()).collect();
    let probs = reference_last_head(&meta, &weights, &ids);
    let best = (0..probs.len()).max_by(|&a, &b| probs[a].total_cmp(&probs[b])).unwrap();
    let ran = ok(lstm_run(with_model(&model, &["--text", "ab", "--top", "3"])));
    assert!(ran.stdout.contains("Most likely next tokens (top 3 of 8)"), "{}", ran.stdout);
    let first = ran.stdout.lines().find(|l| l.contains('%')).unwrap();
    let token = CHARS.chars().nth(best).unwrap();
    assert!(first.trim_start().starts_with(&format!("{:?}", token.to_string())), "{first}");
    assert!(first.contains(&format!("{:.1}%", probs[best] * 100.0)), "{first}");
}

#[test]
fn generate_with_a_seed_is_reproducible_and_another_seed_gives_other_text() {
    let dir = TempDir::new("cli-gen");
    let (meta, weights) = char_language_model();
    let model = write(&dir, "lm.lstm", &meta, &weights);
    let generated = |seed: &str| {
        let ran = ok(lstm_run(with_model(&model, &["--generate", "40", "--prompt", "ab", "--seed", seed])));
        ran.stdout
    };
    let a = generated("7");
    assert_eq!(a, generated("7"));
    let text = a.strip_suffix('\n').unwrap();
    assert!(text.starts_with("ab"), "{text:?}");
    assert_eq!(text.chars().count(), 42, "prompt + 40 characters: {text:?}");
    assert!(text.chars().all(|c| CHARS.contains(c)));
    // 40 draws from distributions far from one-hot: equal texts would be a broken seed.
    assert_ne!(a, generated("8"));
    let greedy = |seed: &str| {
        ok(lstm_run(with_model(&model, &["--generate", "10", "--prompt", "ab", "--temperature", "0", "--seed", seed])))
            .stdout
    };
    assert_eq!(greedy("1"), greedy("2"), "temperature 0 is greedy: the seed does not matter");
}

#[test]
fn generate_without_seed_reports_the_seed_it_used() {
    let dir = TempDir::new("cli-gen-noseed");
    let (meta, weights) = char_language_model();
    let model = write(&dir, "lm.lstm", &meta, &weights);
    let ran = ok(lstm_run(with_model(&model, &["--generate", "5", "--prompt", "a"])));
    let seed = ran.stderr.trim().rsplit(' ').next().unwrap();
    let again = ok(lstm_run(with_model(&model, &["--generate", "5", "--prompt", "a", "--seed", seed])));
    assert_eq!(ran.stdout, again.stdout, "the reported seed reproduces the text ({})", ran.stderr);
}

#[test]
fn generate_on_a_classifier_and_text_on_a_model_without_vocabulary_are_refused() {
    let dir = TempDir::new("cli-text-bad");
    let (meta, weights) = text_classifier(true);
    let clf = write(&dir, "clf.lstm", &meta, &weights);
    let ran = lstm_run(with_model(&clf, &["--generate", "5", "--prompt", "the"]));
    assert_bad_input(&ran, &["clf.lstm", "needs a language model", "classifier head"]);
    let plain = write_model(&dir, &golden("lstm_1layer"));
    let ran = lstm_run(with_model(&plain, &["--text", "hello"]));
    assert_bad_input(&ran, &["lstm_1layer.lstm", "no vocabulary"]);
    let ran = lstm_run(with_model(&plain, &["--generate", "3", "--prompt", "hi"]));
    assert_bad_input(&ran, &["needs a language model", "no output head"]);
}

// ---------------------------------------------------------------- info

#[test]
fn info_describes_the_model_as_text_and_as_json() {
    let dir = TempDir::new("cli-info");
    let (meta, weights) = text_classifier(true);
    let model = write(&dir, "clf.lstm", &meta, &weights);
    let size = std::fs::metadata(&model).unwrap().len();
    let ran = ok(lstm_run(with_model(&model, &["--info"])));
    for needle in [
        "lstm, 2 layers, input 4, hidden 6",
        "format version 1.",
        "classifier: 3 outputs, softmax (labels: dog, cat, nobody)",
        "12 word tokens",
        "unknown token \"<unk>\"",
        "cli_run tests",
        "random weights for CLI tests",
        "not checked",
    ] {
        assert!(ran.stdout.contains(needle), "{needle:?} in {}", ran.stdout);
    }
    let ran = ok(lstm_run(with_model(&model, &["--info", "--json", "--verify"])));
    let v: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let m = Model::open(&model).unwrap();
    assert_eq!(v["file_size"], size);
    assert_eq!(v["parameter_count"], m.parameter_count());
    assert_eq!(v["cell"], "lstm");
    assert_eq!(v["num_layers"], 2);
    assert_eq!(v["dtype"], "f32");
    assert_eq!(v["head"]["labels"], serde_json::json!(LABELS));
    assert_eq!(v["vocabulary"]["size"], WORDS.len());
    assert_eq!(v["checksums_verified"], true);
    assert_eq!(v["tensors"].as_array().unwrap().len(), m.tensors().count());
}

#[test]
fn info_verify_passes_on_a_good_file_and_names_the_tensor_after_a_flipped_byte() {
    let dir = TempDir::new("cli-verify");
    let g = golden("lstm_proj");
    let model = write_model(&dir, &g);
    let ran = ok(lstm_run(with_model(&model, &["--info", "--verify"])));
    assert!(ran.stdout.contains("verified"), "{}", ran.stdout);
    let mut bytes = std::fs::read(&model).unwrap();
    let parsed = format::parse(&bytes).unwrap();
    let tensor = parsed.tensors.iter().find(|t| t.name == "weight_hh_l1").unwrap();
    bytes[tensor.offset as usize + 5] ^= 0x10;
    let corrupt = dir.path("corrupt.lstm");
    std::fs::write(&corrupt, &bytes).unwrap();
    // Without --verify the tensor bytes are not read, so --info still works.
    ok(lstm_run(with_model(&corrupt, &["--info"])));
    let ran = lstm_run(with_model(&corrupt, &["--info", "--verify"]));
    assert_bad_input(&ran, &["corrupt.lstm", "weight_hh_l1", "checksum mismatch"]);
}

// ---------------------------------------------------------------- bench

#[test]
fn bench_json_is_one_parseable_object_with_the_documented_keys() {
    let dir = TempDir::new("cli-bench");
    let model = write_model(&dir, &golden("lstm_3layer"));
    let streams = ["--streams", "4", "--threads", "2"];
    for extra in [&[][..], &["--stream"][..], &["--batch", "3", "--threads", "2"][..], &streams[..]] {
        let mut args = vec!["--bench", "--steps", "7", "--json", "--repeats", "3", "--warmup", "1"];
        args.extend(extra);
        let ran = ok(lstm_run(with_model(&model, &args)));
        assert_eq!(ran.stdout.trim().lines().count(), 1, "one line: {}", ran.stdout);
        let v: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
        for key in [
            "ns_per_step_median",
            "ns_per_step_p99",
            "steps_per_second",
            "isa",
            "batch",
            "steps",
            "threads",
            "mode",
            "dtype",
            "model",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["steps"], 7);
        assert_eq!(v["repeats"], 3);
        assert_eq!(v["isa"], lstmrt::isa().unwrap().name());
        assert!(v.get("int8_product").is_none(), "an f32 model has no int8 product: {v}");
        assert!(v["ns_per_step_median"].as_f64().unwrap() > 0.0);
        assert!(v["ns_per_step_p99"].as_f64().unwrap() >= v["ns_per_step_median"].as_f64().unwrap());
        if extra.contains(&"--stream") {
            assert_eq!(v["mode"], "stream");
            assert_eq!(v["samples"], 7 * 3, "one sample per step call");
        } else if extra.contains(&"--streams") {
            assert_eq!((v["mode"].as_str(), v["batch"].as_u64()), (Some("streams"), Some(4)));
            assert_eq!(v["samples"], 7 * 3, "one sample per step of all streams");
            let apart = v["separate_ns_per_step_median"].as_f64().unwrap();
            let ratio = v["separate_over_together"].as_f64().unwrap();
            assert!((apart / v["ns_per_step_median"].as_f64().unwrap() - ratio).abs() < 1e-9 * ratio);
        } else {
            assert_eq!(v["mode"], "sequence");
            assert_eq!(v["samples"], 3, "one sample per whole-sequence run");
        }
        if extra.contains(&"--batch") {
            assert_eq!((v["batch"].as_u64(), v["threads"].as_u64()), (Some(3), Some(2)));
        }
    }
    let ran = ok(lstm_run(with_model(&model, &["--bench", "--steps", "3", "--repeats", "2"])));
    assert!(ran.stdout.contains("time per step"), "{}", ran.stdout);
    let ran = ok(lstm_run(with_model(&model, &["--bench", "--steps", "3", "--repeats", "2", "--streams", "5"])));
    assert!(ran.stdout.contains("the same 5 streams, one step call each"), "{}", ran.stdout);
    assert_eq!(lstm_run(with_model(&model, &["--bench", "--streams", "5", "--stream"])).code, 2);
}

// ---------------------------------------------------------------- bad input

/// Runs `lstm-run MODEL INPUT EXTRA... -o OUT`, which must fail with exit 2
/// and one line containing `needles`, leaving nothing at `out` (not even a
/// temporary file).
fn assert_refused_leaving_nothing(model: &Path, input: &Path, extra: &[&str], out: &Path, needles: &[&str]) {
    let mut args = vec![model.as_os_str().to_owned(), input.as_os_str().to_owned()];
    args.extend(extra.iter().map(|a| a.into()));
    args.extend(["-o".into(), out.as_os_str().to_owned()]);
    assert_bad_input(&lstm_run(&args), needles);
    assert!(!out.exists(), "{} must not be written", out.display());
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn bad_input_files_exit_2_with_one_line_and_leave_no_output() {
    let dir = TempDir::new("cli-bad");
    let model = write_model(&dir, &golden("lstm_seq1"));
    let out = dir.path("out.npy");
    let case = |name: &str, bytes: &[u8]| {
        let p = dir.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let refused = |input: &Path, extra: &[&str], needles: &[&str]| {
        assert_refused_leaving_nothing(&model, input, extra, &out, needles);
    };
    let wide = case("wide.npy", &npy_bytes("<f8", &[2, 4], &[0.0; 8]));
    refused(&wide, &[], &["wide.npy", "4 features per step", "takes 3"]);
    let rank = case("rank.npy", &npy_bytes("<f8", &[6], &[0.0; 6]));
    refused(&rank, &[], &["rank.npy", "rank 1"]);
    let ints = case("ints.npy", &npy_bytes("<i8", &[2, 3], &[1.0; 6]));
    refused(&ints, &[], &["ints.npy", "int64", "float32 or float64"]);
    let nan = case("nan.npy", &npy_bytes("<f8", &[2, 3], &[0.0, 0.0, 0.0, 0.0, f64::NAN, 0.0]));
    refused(&nan, &[], &["nan.npy", "element [1, 1]", "NaN", "--allow-nonfinite"]);
    ok(lstm_run([&model, &nan, Path::new("--allow-nonfinite"), Path::new("-o"), &out]));
    std::fs::remove_file(&out).unwrap();
    let words = case("words.csv", b"1,2,3\n4,five,6\n");
    refused(&words, &[], &["words.csv, row 2, column 2", "\"five\" is not a number"]);
    let inf = case("inf.csv", b"x,y,z\n1,2,3\n4,5,inf\n");
    refused(&inf, &[], &["inf.csv, row 3, column 3", "not finite"]);
    let two_d = case("two_d.npy", &npy_bytes("<f8", &[2, 3], &[0.0; 6]));
    refused(&two_d, &["--batch-first"], &["--batch-first needs 3-D input"]);
    let mut short = npy_bytes("<f8", &[4, 3], &[0.5; 12]);
    short.truncate(short.len() - 8);
    refused(&case("short.npy", &short), &[], &["short.npy", "needs 96 bytes"]);
    refused(&case("not.npy", b"1,2,3\n"), &[], &["not.npy", "not a .npy file"]);
    refused(&dir.path("missing.npy"), &[], &["missing.npy"]);
    refused(&case("in.txt", b"1,2,3\n"), &[], &["in.txt", "must end in .npy or .csv"]);
    let good = case("good.csv", b"1,2,3\n");
    let bad_out = dir.path("out.txt");
    assert_refused_leaving_nothing(&model, &good, &[], &bad_out, &["out.txt", ".npy, .csv or .json"]);
    let nowhere = dir.path("no/such/dir/out.npy");
    assert_bad_input(&lstm_run([&model, &good, Path::new("-o"), &nowhere]), &["does not exist"]);
    write_npy_f32(&dir.path("st.h.npy"), &[1, 1, 4], &[0.0; 4]);
    write_npy_f32(&dir.path("st.c.npy"), &[1, 1, 5], &[0.0; 5]);
    let st = dir.path("st");
    refused(&good, &["--initial-state", st.to_str().unwrap()], &["st.h.npy", "has shape [1, 1, 4]", "[1, 1, 5]"]);
}

#[test]
fn missing_or_corrupt_model_files_exit_2_naming_the_file() {
    let dir = TempDir::new("cli-bad-model");
    let good = dir.path("in.csv");
    std::fs::write(&good, "1,2,3\n").unwrap();
    let ran = lstm_run([dir.path("nope.lstm").as_os_str(), good.as_os_str()]);
    assert_bad_input(&ran, &["nope.lstm"]);
    let junk = dir.path("junk.lstm");
    std::fs::write(&junk, vec![7u8; 200]).unwrap();
    assert_bad_input(&lstm_run(with_model(&junk, &["--info"])), &["junk.lstm", "not an lstmrt model"]);
    let g = golden("lstm_seq1");
    let bytes = ModelWriter::new(&g.meta, &g.weights).to_bytes().unwrap();
    let cut = dir.path("cut.lstm");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    assert_bad_input(&lstm_run([cut.as_os_str(), good.as_os_str()]), &["cut.lstm", "truncated"]);
}

#[test]
fn usage_errors_exit_2_and_help_documents_the_exit_codes() {
    let ran = ok(lstm_run(["--help"]));
    assert!(ran.stdout.contains(lstmrt_cli::exit::TABLE), "the shared exit-code table in --help");
    for needle in
        ["Exit codes", "0  success", "1  the work failed", "2  bad command line", "--allow-nonfinite", "--trace-gates"]
    {
        assert!(ran.stdout.contains(needle), "{needle:?} in help");
    }
    assert_eq!(lstm_run(["model.lstm"]).code, 2, "a mode is required");
    assert_eq!(lstm_run(["model.lstm", "--info", "--bench"]).code, 2, "one mode at a time");
    assert_eq!(lstm_run(["model.lstm", "--generate", "3"]).code, 2, "--generate needs --prompt");
    assert_eq!(lstm_run(["model.lstm", "-", "-o", "x.npy"]).code, 2, "streaming writes to stdout");
    assert_eq!(lstm_run(["model.lstm", "--info", "--batch", "2"]).code, 2, "--batch is for --bench");
}

#[test]
fn fifos_devices_and_directories_are_refused_at_once_as_models_and_inputs() {
    let dir = TempDir::new("cli-nonregular");
    let g = golden("lstm_1layer");
    let model = write_model(&dir, &g);
    let fifo = dir.path("pipe.npy");
    let made = Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
    // Named like inputs (the input's extension is checked first): a symlink
    // to /dev/zero and a directory.
    let zero = dir.path("zero.npy");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let folder = dir.path("folder.npy");
    std::fs::create_dir(&folder).unwrap();
    let mut cases: Vec<(PathBuf, &str)> = vec![(zero, "character device"), (folder, "directory")];
    if made {
        cases.push((fifo.clone(), "FIFO"));
    }
    for (path, what) in &cases {
        // As the model: --info would hang on a FIFO or read /dev/zero forever.
        let ran = lstm_run([path.as_os_str(), OsStr::new("--info")]);
        assert_bad_input(&ran, &[what, "not a regular file"]);
        // As the input sequence.
        let ran = lstm_run(with_model(&model, &[path.to_str().unwrap()]));
        assert_bad_input(&ran, &[what]);
    }
}

#[test]
fn no_output_is_written_over_an_input_even_under_another_name() {
    let dir = TempDir::new("cli-overwrite");
    let g = golden("lstm_1layer");
    // A model file named like an output, and a hard link to it.
    let model = dir.path("model.npy");
    ModelWriter::new(&g.meta, &g.weights).write(&model).unwrap();
    let before = std::fs::read(&model).unwrap();
    let input = fixture("lstm_1layer", "input.npy");
    let ran = lstm_run(with_model(&model, &[input.to_str().unwrap(), "-o", model.to_str().unwrap()]));
    assert_bad_input(&ran, &["same file as the input", "refusing"]);
    let link = dir.path("alias.npy");
    std::fs::hard_link(&model, &link).unwrap();
    let ran = lstm_run(with_model(&model, &[input.to_str().unwrap(), "-o", link.to_str().unwrap()]));
    assert_bad_input(&ran, &["same file as the input"]);
    // The input itself as the output.
    let copy = dir.path("x.npy");
    std::fs::copy(&input, &copy).unwrap();
    let ran = lstm_run(with_model(&model, &[copy.to_str().unwrap(), "-o", copy.to_str().unwrap()]));
    assert_bad_input(&ran, &["same file as the input"]);
    assert_eq!(std::fs::read(&model).unwrap(), before, "the model was written over");
}

#[test]
fn a_benchmark_too_large_to_hold_is_refused_before_allocating() {
    let dir = TempDir::new("cli-bench-huge");
    let model = write_model(&dir, &golden("lstm_1layer"));
    let ran = lstm_run(with_model(&model, &["--bench", "--batch", "100000", "--steps", "100000"]));
    assert_bad_input(&ran, &["--batch 100000 x --steps 100000", "2 GiB", "at most --batch"]);
}

/// A bidirectional 2-layer LSTM over a batch of 4 sequences of their own lengths.
fn lengths_case(dir: &TempDir) -> (PathBuf, Metadata, Weights, Vec<f32>) {
    let mut arch = Architecture::new(CellKind::Lstm, 3, 6, 2);
    arch.bidirectional = true;
    let meta = Metadata::new(arch);
    let weights = random_weights(&meta, 11, 0.6);
    let model = write(dir, "bi.lstm", &meta, &weights);
    let mut rng = Rng::new(12);
    let xs: Vec<f32> = (0..9 * 4 * 3).map(|_| rng.uniform_f32(-1.0, 1.0)).collect();
    write_npy_f32(&dir.path("in.npy"), &[9, 4, 3], &xs);
    (model, meta, weights, xs)
}

#[test]
fn lengths_run_each_sequence_on_its_own_steps_like_pack_padded_sequence() {
    let dir = TempDir::new("cli-lengths");
    let (model, meta, weights, xs) = lengths_case(&dir);
    let lengths = [9usize, 0, 3, 7];
    let want = reference::run_lengths(&meta.architecture, &weights, &xs, 4, &lengths, None, None);
    for (descr, name) in [("<i8", "len64.npy"), ("<i4", "len32.npy")] {
        let values: Vec<f64> = lengths.iter().map(|&l| l as f64).collect();
        std::fs::write(dir.path(name), npy_bytes(descr, &[4], &values)).unwrap();
        let (out, state) = (dir.path("out.npy"), dir.path("fin"));
        ok(lstm_run([
            &model,
            &dir.path("in.npy"),
            Path::new("--lengths"),
            &dir.path(name),
            Path::new("-o"),
            &out,
            Path::new("--final-state"),
            &state,
        ]));
        let got = read_npy(&out);
        assert_eq!(got.shape, [9, 4, 12]);
        assert!(max_abs_diff(&got.to_f32(), &want.output) <= 1e-5);
        assert!(max_abs_diff(&read_npy(&dir.path("fin.h.npy")).to_f32(), &want.h_n) <= 1e-5);
        assert!(max_abs_diff(&read_npy(&dir.path("fin.c.npy")).to_f32(), &want.c_n) <= 1e-5);
    }
    // Batch-first input: the same lengths, per row of the file.
    let mut bf = vec![0.0f32; xs.len()];
    for t in 0..9 {
        for b in 0..4 {
            bf[(b * 9 + t) * 3..][..3].copy_from_slice(&xs[(t * 4 + b) * 3..][..3]);
        }
    }
    write_npy_f32(&dir.path("bf.npy"), &[4, 9, 3], &bf);
    let out = dir.path("bf.out.npy");
    ok(lstm_run([
        &model,
        &dir.path("bf.npy"),
        Path::new("--batch-first"),
        Path::new("--lengths"),
        &dir.path("len64.npy"),
        Path::new("-o"),
        &out,
    ]));
    let got = read_npy(&out).to_f32();
    for t in 0..9 {
        for b in 0..4 {
            let want = &want.output[(t * 4 + b) * 12..][..12];
            assert!(max_abs_diff(&got[(b * 9 + t) * 12..][..12], want) <= 1e-5, "t={t} b={b}");
        }
    }
}

#[test]
fn bad_lengths_exit_2_with_one_line_and_leave_no_output() {
    let dir = TempDir::new("cli-lengths-bad");
    let (model, ..) = lengths_case(&dir);
    let input = dir.path("in.npy");
    let out = dir.path("out.npy");
    for (name, descr, shape, values, needles) in [
        ("long.npy", "<i8", vec![4], vec![9.0, 10.0, 1.0, 1.0], &["long.npy", "element [1] is 10", "9 steps"][..]),
        ("neg.npy", "<i4", vec![4], vec![1.0, 1.0, -1.0, 1.0], &["neg.npy", "element [2] is -1", "negative"][..]),
        ("count.npy", "<i8", vec![3], vec![1.0; 3], &["count.npy", "shape [3]", "4 sequences", "expected [4]"][..]),
        ("float.npy", "<f8", vec![4], vec![1.0; 4], &["float.npy", "float64", "int32 or int64"][..]),
    ] {
        std::fs::write(dir.path(name), npy_bytes(descr, &shape, &values)).unwrap();
        let lengths = dir.path(name);
        assert_refused_leaving_nothing(&model, &input, &["--lengths", lengths.to_str().unwrap()], &out, needles);
    }
    let missing = dir.path("missing.npy");
    assert_refused_leaving_nothing(&model, &input, &["--lengths", missing.to_str().unwrap()], &out, &["missing.npy"]);
    // The lengths file is an input: no output over it.
    let lengths = dir.path("ok.npy");
    let bytes = npy_bytes("<i8", &[4], &[1.0; 4]);
    std::fs::write(&lengths, &bytes).unwrap();
    let ran = lstm_run([&model, &input, Path::new("--lengths"), &lengths, Path::new("-o"), &lengths]);
    assert_bad_input(&ran, &["ok.npy"]);
    assert_eq!(std::fs::read(&lengths).unwrap(), bytes);
}

#[test]
fn bench_names_the_int8_product_and_why_amx_is_not_in_use() {
    let dir = TempDir::new("cli-bench-int8");
    let g = golden("lstm_3layer");
    let path = dir.path("int8.lstm");
    ModelWriter::new(&g.meta, &g.weights).dtype(lstmrt_format::DType::I8).write(&path).unwrap();
    let ran = ok(lstm_run(with_model(&path, &["--bench", "--steps", "3", "--json", "--repeats", "2"])));
    let v: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let isa = lstmrt::isa().unwrap();
    assert_eq!(v["int8_product"], lstmrt_kernels::Int8Dot::for_isa(isa).name(), "{v}");
    match lstmrt::Isa::Amx.unavailable_reason() {
        Some(why) => assert_eq!(v["amx_unavailable"], why.as_str(), "{v}"),
        None => assert!(v.get("amx_unavailable").is_none(), "{v}"),
    }
    let text = ok(lstm_run(with_model(&path, &["--bench", "--steps", "3", "--repeats", "2"])));
    assert!(text.stdout.contains(&format!("int8 product {}", v["int8_product"].as_str().unwrap())), "{}", text.stdout);
}

/// The process-wide choices the suite no longer runs under (every tier and
/// int8 product runs in-process, `lstmrt_testkit::per_tier!`): `LSTMRT_ISA`
/// and `LSTMRT_INT8_DOT` are still read and honoured, and a wrong value is
/// refused with one line.
#[test]
fn lstmrt_isa_and_lstmrt_int8_dot_are_honoured() {
    let dir = TempDir::new("cli-env-tier");
    let g = golden("lstm_1layer");
    let path = dir.path("int8.lstm");
    ModelWriter::new(&g.meta, &g.weights).dtype(lstmrt_format::DType::I8).write(&path).unwrap();
    let info = |env: &[(&str, &str)]| {
        // The suite itself may run under a forced tier or product: each
        // child sees only the choice this test makes.
        let out = Command::new(BIN)
            .arg(&path)
            .args(["--info", "--json"])
            .env_remove("LSTMRT_ISA")
            .env_remove("LSTMRT_INT8_DOT")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.code(), v, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for isa in lstmrt::Isa::available_tiers() {
        let (code, v, err) = info(&[("LSTMRT_ISA", isa.name())]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(v["isa"]["tier"], isa.name(), "{v}");
        let product = lstmrt::Int8Dot::for_isa(isa).name();
        assert_eq!(v["int8"]["product"], product, "LSTMRT_ISA={isa}: {v}");
    }
    // The products without VNNI on a VNNI CPU, and the emulated tiles.
    let best = lstmrt::Isa::best();
    for (asked, want) in [
        (
            "maddubs",
            if best >= lstmrt::Isa::Avx512 {
                "avx512-maddubs"
            } else if best == lstmrt::Isa::Avx2 {
                "avx2-maddubs"
            } else {
                lstmrt::Int8Dot::for_isa(best).name()
            },
        ),
        (
            "amx-emulated",
            if lstmrt::Int8Dot::AmxEmulated.available() && best == lstmrt::Isa::Avx512 {
                "amx-emulated"
            } else {
                lstmrt::Int8Dot::for_isa(best).name()
            },
        ),
    ] {
        let (code, v, err) = info(&[("LSTMRT_INT8_DOT", asked)]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(v["int8"]["product"], want, "LSTMRT_INT8_DOT={asked}: {v}");
    }
    let (code, _, err) = info(&[("LSTMRT_ISA", "sse9")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("LSTMRT_ISA=sse9 is not a tier"), "{err}");
}
