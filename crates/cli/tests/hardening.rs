//! Hostile use of `lstm-run` and `lstm-convert` beyond single bad files:
//! legal inputs whose sizes multiply into memory (a chunked model's chunk,
//! `--bench` flags), outputs named after files read while reading (an
//! `--arch` description, ONNX external data), `--threads` far above the
//! cores, a model truncated while it runs. Each is answered with one line
//! and exit code 2 (or done), never an abort, a signal or a long run; the
//! runs that could allocate are made under a 4 GB address-space limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lstmrt_testkit::TempDir;

const LSTM_RUN: &str = env!("CARGO_BIN_EXE_lstm-run");
const LSTM_CONVERT: &str = env!("CARGO_BIN_EXE_lstm-convert");

/// `bin args` under `prlimit --as=4000000000` where prlimit is there; fails
/// the test if it dies by a signal or runs 20 s or more.
fn limited(bin: &str, args: &[&str]) -> Output {
    let prlimit = ["/usr/bin/prlimit", "/bin/prlimit"].into_iter().find(|p| Path::new(p).exists());
    let mut cmd = match prlimit {
        Some(p) => {
            let mut c = Command::new(p);
            c.arg("--as=4000000000").arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let start = Instant::now();
    let out = cmd.args(args).output().unwrap();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some(), "{args:?} died by a signal: {stderr}");
    assert!(took < Duration::from_secs(20), "{args:?} ran {took:?}");
    out
}

/// Exit code 2 and one line on stderr holding every piece.
fn assert_refused(out: &Output, pieces: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for p in pieces {
        assert!(stderr.contains(p), "{p:?} not in {stderr}");
    }
}

fn write_safetensors(path: &Path, tensors: &[(&str, Vec<usize>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (i, (name, shape)) in tensors.iter().enumerate() {
        let start = data.len();
        for k in 0..shape.iter().product::<usize>() {
            data.extend_from_slice(&((k as f32 * 0.29 + i as f32).sin() * 0.2).to_le_bytes());
        }
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

/// An LSTM of one input and 16 hidden units (`rnn.*`).
fn lstm_1_16(dir: &TempDir) -> PathBuf {
    let src = dir.path("rnn.safetensors");
    write_safetensors(&src, &[("rnn.weight_ih_l0", vec![64, 1]), ("rnn.weight_hh_l0", vec![64, 16])]);
    src
}

fn arch_json(chunk: u64, context: u64) -> String {
    format!(
        r#"{{ "lstmrt_arch": 1, "input": {{ "chunk": {chunk}, "context": {context} }}, "recurrent": {{ "prefix": "rnn" }} }}"#
    )
}

#[test]
fn a_chunk_whose_stack_outputs_need_too_much_is_refused_at_conversion_and_runs_at_the_limit() {
    let dir = TempDir::new("hard-chunk");
    let src = lstm_1_16(&dir);
    let (arch, out) = (dir.path("arch.json"), dir.path("big.lstm"));
    let (s, a, o) = (src.to_str().unwrap(), arch.to_str().unwrap(), out.to_str().unwrap());
    // No stages: a chunk is 2^20 steps of the stack, whose 16 outputs per
    // step make 2^24 values: the limit. One frame of context more is past it.
    std::fs::write(&arch, arch_json(1 << 19, (1 << 19) + 1)).unwrap();
    let ran = limited(LSTM_CONVERT, &[s, "--arch", a, "-o", o]);
    assert_refused(
        &ran,
        &[
            "stages.chunk",
            "the recurrent stack's outputs for the 1048577 steps of a chunk are 16777232 values, above 16777216",
        ],
    );
    assert!(!out.exists());
    std::fs::write(&arch, arch_json(1 << 19, 1 << 19)).unwrap();
    let ran = limited(LSTM_CONVERT, &[s, "--arch", a, "-o", o]);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    // At the limit the model runs: a benchmark of a chunk at a time, and a
    // signal file (one chunk, 2^24 values out), within the memory limit.
    let ran = limited(LSTM_RUN, &[o, "--bench", "--steps", "1", "--seconds", "0", "--warmup", "0", "--repeats", "1"]);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let signal = dir.path("x.npy");
    lstmrt_import::npy::write_f32(&signal, &[1000], &vec![0.25; 1000]).unwrap();
    let ran = limited(LSTM_RUN, &[o, signal.to_str().unwrap()]);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    // Many streams of it: refused by what they cost, naming the ceiling.
    let ran = limited(LSTM_RUN, &[o, "--bench", "--batch", "1000", "--steps", "1"]);
    assert_refused(&ran, &["--batch 1000 x --steps 1 needs", "2 GiB", "at most --batch"]);
}

/// A small LSTM model file (input 4, hidden 8).
fn small_model(dir: &TempDir) -> PathBuf {
    use lstmrt::format::{Architecture, CellKind, Metadata};
    let meta = Metadata::new(Architecture::new(CellKind::Lstm, 4, 8, 1));
    let weights = lstmrt::Weights::random(&meta, &mut lstmrt::rng::Rng::new(3), 0.5);
    let path = dir.path("small.lstm");
    lstmrt::ModelWriter::new(&meta, &weights).write(&path).unwrap();
    path
}

#[test]
fn bench_sizes_are_bounded_by_the_memory_they_imply_naming_the_largest_that_fits() {
    let dir = TempDir::new("hard-bench");
    let model = small_model(&dir);
    let m = model.to_str().unwrap();
    for (args, says) in [
        (&["--batch", "1000000"][..], "--batch 1000000 x --steps 100 needs"),
        (&["--batch", "1000000", "--stream"], "--batch 1000000 x --steps 100 needs"),
        (&["--streams", "1000000"], "--streams 1000000 x --steps 100 needs"),
        (&["--steps", "100000000"], "--batch 1 x --steps 100000000 needs"),
    ] {
        let mut all = vec![m, "--bench"];
        all.extend_from_slice(args);
        let ran = limited(LSTM_RUN, &all);
        assert_refused(&ran, &[says, "more than the 2147483648 (2 GiB) a benchmark may use", "at most"]);
    }
    // What the message names as the largest batch is accepted (checked
    // without allocating: `bench::tests` runs the budget at and past it).
}

#[test]
fn threads_far_above_the_cores_are_lowered_with_a_note() {
    let dir = TempDir::new("hard-threads");
    let model = small_model(&dir);
    let ran = limited(
        LSTM_RUN,
        &[model.to_str().unwrap(), "--bench", "--threads", "1024", "--batch", "8", "--steps", "20", "--seconds", "0.2"],
    );
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{stderr}");
    let max = lstmrt::max_threads();
    assert!(stderr.contains(&format!("note: --threads 1024 is more than 4 per core; using {max}")), "{stderr}");
    assert!(String::from_utf8_lossy(&ran.stdout).contains(&format!("{max} thread(s)")));
    let mut state = lstmrt::Model::open(&model).unwrap().new_state();
    state.set_threads(1024);
    assert_eq!(state.threads(), max, "the library caps the pool the same way");
}

#[test]
fn convert_never_writes_over_its_description_or_external_data_and_finds_data_beside_a_bare_name() {
    let dir = TempDir::new("hard-convert");
    // The description as the output.
    let src = lstm_1_16(&dir);
    let arch = dir.path("arch.json");
    std::fs::write(&arch, arch_json(64, 0)).unwrap();
    let before = std::fs::read(&arch).unwrap();
    let ran =
        limited(LSTM_CONVERT, &[src.to_str().unwrap(), "--arch", arch.to_str().unwrap(), "-o", arch.to_str().unwrap()]);
    assert_refused(&ran, &["arch.json: is the same file as the input"]);
    assert_eq!(std::fs::read(&arch).unwrap(), before);
    // ONNX external data as the output (under another name, a hard link).
    let fixture = lstmrt_testkit::fixtures().join("convert/onnx/lstm_external_data");
    for f in ["model.onnx", "weights.bin"] {
        std::fs::copy(fixture.join(f), dir.path(f)).unwrap();
    }
    let link = dir.path("weights-link.lstm");
    std::fs::hard_link(dir.path("weights.bin"), &link).unwrap();
    let before = std::fs::read(dir.path("weights.bin")).unwrap();
    let onnx = dir.path("model.onnx");
    let ran = limited(LSTM_CONVERT, &[onnx.to_str().unwrap(), "-o", link.to_str().unwrap()]);
    assert_refused(&ran, &["weights-link.lstm: is the same file as the input", "weights.bin"]);
    assert_eq!(std::fs::read(dir.path("weights.bin")).unwrap(), before);
    // A bare file name: its external data is in the current folder.
    let ran =
        Command::new(LSTM_CONVERT).current_dir(dir.path("")).args(["model.onnx", "-o", "m.lstm"]).output().unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    assert!(lstmrt::Model::open(dir.path("m.lstm")).is_ok());
}

#[test]
fn an_output_path_that_cannot_be_used_is_exit_2_from_every_tool_before_any_work() {
    let dir = TempDir::new("hard-outputs");
    let model = small_model(&dir);
    let input = dir.path("in.npy");
    lstmrt_import::npy::write_f32(&input, &[3, 4], &[0.5; 12]).unwrap();
    let nowhere = dir.path("no/such/out.npy");
    let folder = dir.path("");
    for out in [&nowhere, &folder] {
        let ran = limited(LSTM_RUN, &[model.to_str().unwrap(), input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert_eq!(ran.status.code(), Some(2), "{}", String::from_utf8_lossy(&ran.stderr));
        let src = lstm_1_16(&dir);
        let ran = limited(LSTM_CONVERT, &[src.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert_eq!(ran.status.code(), Some(2), "{}", String::from_utf8_lossy(&ran.stderr));
        let said = String::from_utf8_lossy(&ran.stderr);
        assert!(said.contains("does not exist") || said.contains("is a folder"), "{said}");
    }
}

#[test]
fn a_model_file_truncated_while_streaming_is_one_line_and_exit_2() {
    use std::io::{BufRead, BufReader, Write};
    let dir = TempDir::new("hard-sigbus");
    let model = small_model(&dir);
    let mut child = Command::new(LSTM_RUN)
        .arg(&model)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    writeln!(stdin, "1,2,3,4").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim().split(',').count(), 8, "a first step ran: {line}");
    // Another process truncates the mapped file in place.
    std::fs::OpenOptions::new().write(true).open(&model).unwrap().set_len(0).unwrap();
    let _ = writeln!(stdin, "1,2,3,4");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "not killed by SIGBUS: {stderr}");
    assert!(stderr.contains("small.lstm: the model file changed while in use"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
