//! The `lstm-train` binary: bad data files get one clear line and exit code
//! 2; user data trains into a model lstmrt can read.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lstmrt::Model;
use lstmrt_format::HeadTask;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lstm-train"))
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("lstm-train-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// `train` with tiny settings on `--data path` plus `extra` arguments.
fn train(task: &str, data: &Path, out: &Path, extra: &[&str]) -> Output {
    bin()
        .args(["train", "--quiet", "--task", task, "--data"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(["--steps", "4", "--eval-every", "2", "--hidden", "6", "--embed", "4", "--batch-size", "4"])
        .args(extra)
        .output()
        .unwrap()
}

/// Asserts exit code 2, one line on stderr containing every piece, and no model written.
fn assert_bad_input(out: &Output, pieces: &[&str], model: &Path) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for p in pieces {
        assert!(stderr.contains(p), "{p:?} not in {stderr:?}");
    }
    assert!(!model.exists(), "no model is written on bad input");
}

fn csv_rows(n: usize) -> String {
    let mut s = String::from("id,text,label\n");
    for i in 0..n {
        let label = if i % 2 == 0 { "pos" } else { "neg" };
        s.push_str(&format!("{i},\"a {label} review, number {i}\",{label}\n"));
    }
    s
}

#[test]
fn empty_data_file_is_bad_input() {
    let dir = TempDir::new("empty");
    let out_model = dir.path("m.lstm");
    let data = dir.file("empty.csv", b"");
    assert_bad_input(&train("classify", &data, &out_model, &[]), &["empty.csv", "empty"], &out_model);
    let text = dir.file("empty.txt", b"");
    assert_bad_input(&train("lm", &text, &out_model, &[]), &["empty.txt", "empty"], &out_model);
}

#[test]
fn unknown_column_is_bad_input_naming_the_columns() {
    let dir = TempDir::new("column");
    let out_model = dir.path("m.lstm");
    let data = dir.file("d.csv", csv_rows(10).as_bytes());
    let out = train("classify", &data, &out_model, &["--label-column", "sentiment"]);
    assert_bad_input(&out, &["d.csv", "unknown column \"sentiment\"", "\"id\", \"text\", \"label\""], &out_model);
    let jsonl = dir.file("d.jsonl", b"{\"review\": \"good\", \"label\": 1}\n{\"review\": \"bad\", \"label\": 0}\n");
    assert_bad_input(
        &train("classify", &jsonl, &out_model, &[]),
        &["d.jsonl:1", "unknown column \"text\""],
        &out_model,
    );
}

#[test]
fn labels_with_one_class_are_bad_input() {
    let dir = TempDir::new("oneclass");
    let out_model = dir.path("m.lstm");
    let data = dir.file("one.csv", b"text,label\nhello there,spam\nbuy now,spam\nhi,spam\n");
    assert_bad_input(&train("classify", &data, &out_model, &[]), &["one.csv", "\"spam\"", "two classes"], &out_model);
    let x = dir.path("x.npy");
    let y = dir.path("y.npy");
    lstmrt_import::npy::write_f32(&x, &[4, 3, 2], &[0.5; 24]).unwrap();
    lstmrt_import::npy::write_f32(&y, &[4], &[1.0; 4]).unwrap();
    let out = train("classify", &x, &out_model, &["--labels", y.to_str().unwrap()]);
    assert_bad_input(&out, &["y.npy", "two classes"], &out_model);
}

#[test]
fn malformed_files_are_bad_input_naming_the_line() {
    let dir = TempDir::new("malformed");
    let out_model = dir.path("m.lstm");
    let ragged = dir.file("r.csv", b"text,label\ngood,1\nbad,0,extra\n");
    assert_bad_input(&train("classify", &ragged, &out_model, &[]), &["r.csv:3", "3 fields"], &out_model);
    let json = dir.file("j.jsonl", b"{\"text\": \"a\", \"label\": 1}\nnot json\n");
    assert_bad_input(&train("classify", &json, &out_model, &[]), &["j.jsonl:2", "not a JSON"], &out_model);
    let latin1 = dir.file("l.txt", b"caf\xe9 au lait, encore du caf\xe9");
    assert_bad_input(&train("lm", &latin1, &out_model, &[]), &["l.txt", "UTF-8", "offset 3"], &out_model);
    let x = dir.path("x.npy");
    lstmrt_import::npy::write_f32(&x, &[4, 3, 2], &[0.5; 24]).unwrap();
    let y = dir.path("y.npy");
    lstmrt_import::npy::write_f32(&y, &[3], &[0.0, 1.0, 0.0]).unwrap();
    let out = train("classify", &x, &out_model, &["--labels", y.to_str().unwrap()]);
    assert_bad_input(&out, &["y.npy", "[3]", "expected [4]"], &out_model);
    assert_bad_input(&train("classify", &x, &out_model, &[]), &["x.npy", "--labels"], &out_model);
    let missing = dir.path("missing.csv");
    assert_bad_input(&train("classify", &missing, &out_model, &[]), &["missing.csv", "cannot read"], &out_model);
}

#[test]
fn csv_classifier_trains_writes_log_and_checkpoint_and_resumes() {
    let dir = TempDir::new("csv");
    let model_path = dir.path("m.lstm");
    let data = dir.file("reviews.csv", csv_rows(40).as_bytes());
    let out = train("classify", &data, &model_path, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = Model::open(&model_path).unwrap();
    let meta = model.metadata();
    let head = meta.head.as_ref().unwrap();
    assert_eq!((head.task, head.labels.clone()), (HeadTask::Classifier, vec!["neg".to_string(), "pos".to_string()]));
    let sha = meta.provenance.get("data.sha256").unwrap();
    assert_eq!(sha.len(), 64);
    assert_eq!(meta.provenance.source_file, data.display().to_string());
    let log = std::fs::read_to_string(dir.path("m.lstm.csv")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(dir.path("m.lstm.ckpt").exists());
    // Resuming a finished run rewrites the same model.
    let before = std::fs::read(&model_path).unwrap();
    let again = train("classify", &data, &model_path, &["--resume"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(std::fs::read(&model_path).unwrap(), before);
    // ... and refuses other options.
    let other = train("classify", &data, &model_path, &["--resume", "--lr", "0.1"]);
    assert_eq!(other.status.code(), Some(2));
}

#[test]
fn char_lm_from_a_text_file_has_a_language_model_head_over_its_vocabulary() {
    let dir = TempDir::new("lm");
    let model_path = dir.path("lm.lstm");
    let text = "the quick brown fox jumps over the lazy dog. ".repeat(40);
    let data = dir.file("corpus.txt", text.as_bytes());
    let out = train("lm", &data, &model_path, &["--seq-len", "16", "--dtype", "f16"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = Model::open(&model_path).unwrap();
    let meta = model.metadata();
    let vocab = meta.vocabulary.as_ref().unwrap();
    let head = meta.head.as_ref().unwrap();
    assert_eq!(head.task, HeadTask::LanguageModel);
    assert_eq!(head.out_features as usize, vocab.tokens.len());
    assert!(vocab.tokens.iter().any(|t| t == "q"));
    assert_eq!(model.tokenize("fox").unwrap().len(), 3);
}

#[test]
fn npy_sequences_train_into_a_dense_input_classifier() {
    let dir = TempDir::new("npy");
    let (x, y) = (dir.path("x.npy"), dir.path("y.npy"));
    let n = 20;
    let xs: Vec<f32> = (0..n * 5 * 3).map(|i| ((i * 7) % 11) as f32 / 11.0).collect();
    let ys: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
    lstmrt_import::npy::write_f32(&x, &[n, 5, 3], &xs).unwrap();
    lstmrt_import::npy::write_f32(&y, &[n], &ys).unwrap();
    let model_path = dir.path("n.lstm");
    let out = train("classify", &x, &model_path, &["--labels", y.to_str().unwrap(), "--cell", "gru"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = Model::open(&model_path).unwrap();
    assert_eq!(model.architecture().input_size, 3);
    assert_eq!(model.metadata().head.as_ref().unwrap().out_features, 3);
    assert!(model.metadata().provenance.get("data.sha256.1").is_some());
}

#[test]
fn bad_options_are_bad_input() {
    let dir = TempDir::new("options");
    let out_model = dir.path("m.lstm");
    let out = bin().args(["train", "--quiet", "--task", "lm"]).arg("--out").arg(&out_model).output().unwrap();
    assert_bad_input(&out, &["--data"], &out_model);
    let out =
        bin().args(["train", "--quiet", "--cell", "gru", "--proj", "4"]).arg("--out").arg(&out_model).output().unwrap();
    assert_bad_input(&out, &["--proj"], &out_model);
    let out = bin().args(["train", "--distance", "9..3"]).arg("--out").arg(&out_model).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn generate_prints_stories_with_their_answers() {
    let out = bin().args(["generate", "pronoun", "--count", "3", "--distance", "7"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.lines().all(|l| l.ends_with("(distance 7)") && (l.contains("-> he") || l.contains("-> she"))));
}

#[test]
fn help_documents_the_shared_exit_codes() {
    let o = bin().arg("--help").output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(lstmrt_cli::exit::TABLE));
    assert_eq!(bin().arg("no-such-command").output().unwrap().status.code(), Some(lstmrt_cli::exit::BAD_INPUT.into()));
}

/// Runs `lstm-train` under a 4 GB address-space limit (where `prlimit` is
/// there), so a size that slipped past the checks would abort, not page.
fn limited(args: &[&str]) -> Output {
    let mut cmd = match which_prlimit() {
        Some(p) => {
            let mut c = Command::new(p);
            c.arg("--as=4000000000").arg(env!("CARGO_BIN_EXE_lstm-train"));
            c
        }
        None => bin(),
    };
    let start = std::time::Instant::now();
    let out = cmd.args(args).output().unwrap();
    // A generous ceiling: refusals take milliseconds.
    assert!(start.elapsed().as_secs() < 20, "{args:?} ran for {:?}", start.elapsed());
    out
}

fn which_prlimit() -> Option<PathBuf> {
    ["/usr/bin/prlimit", "/bin/prlimit"].iter().map(PathBuf::from).find(|p| p.exists())
}

#[test]
fn every_size_option_is_bounded_before_anything_is_built_at_its_limit_and_one_past() {
    let dir = TempDir::new("sizes");
    let m = dir.path("m.lstm");
    let m = m.to_str().unwrap();
    // One past each limit (and far past: above 2^32, reported as given).
    let cases: &[(&[&str], &str)] = &[
        (&["--hidden", "65537"], "--hidden 65537 is above the limit of 65536"),
        (&["--hidden", "4294967297"], "--hidden 4294967297 is above the limit of 65536"),
        (&["--embed", "4294967296"], "--embed 4294967296 is above the limit of 65536"),
        (&["--proj", "70000", "--hidden", "80000"], "--hidden 80000 is above"),
        (&["--layers", "65"], "--layers 65 is above the limit of 64"),
        (&["--batch-size", "65537"], "--batch-size 65537 is above the limit of 65536"),
        (&["--task", "copy", "--length", "65537"], "--length 65537 is above the limit of 65536"),
        (&["--task", "copy", "--symbols", "100000"], "--symbols 100000 is above the limit of 65536"),
        (&["--task", "lm", "--seq-len", "65537"], "--seq-len 65537 is above the limit of 65536"),
        (&["--distance", "2..65537"], "--distance 65537 is above the limit of 65536"),
        (&["--test-distance", "2..18446744073709551615"], "--test-distance 18446744073709551615 is above"),
        (
            &["--train-size", "16777217", "--valid-size", "0", "--test-size", "0"],
            "make 16777217 examples, above the limit of 16777216",
        ),
        (&["--train-size", "18446744073709551615"], "examples, above the limit of 16777216"),
        // Each within its limit, the product past it.
        (&["--distance", "2..65536", "--train-size", "10000"], "values of generated data"),
        (&["--task", "adding", "--length", "65536", "--train-size", "5000"], "values of generated data"),
        (
            &[
                "--task",
                "copy",
                "--length",
                "60000",
                "--hidden",
                "1024",
                "--batch-size",
                "1024",
                "--train-size",
                "10",
                "--valid-size",
                "0",
                "--test-size",
                "0",
            ],
            "values kept for backpropagation",
        ),
        (&["--hidden", "65536", "--layers", "2"], "parameters, above the limit of 67108864"),
    ];
    for (extra, says) in cases {
        let mut args = vec!["train", "--quiet", "--out", m];
        args.extend_from_slice(extra);
        let out = limited(&args);
        assert_bad_input(&out, &[says], Path::new(m));
    }
    // generate: the count, the distance and their product.
    for (extra, says) in [
        (&["--count", "16777217"][..], "--count 16777217 is above the limit of 16777216"),
        (&["--distance", "65537"], "--distance 65537 is above the limit of 65536"),
        (&["--count", "16777216", "--distance", "65536"], "tokens of stories"),
    ] {
        let mut args = vec!["generate", "pronoun"];
        args.extend_from_slice(extra);
        let out = limited(&args);
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{says}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "nothing printed before the check");
    }
    // At its limit, alone, an option is accepted: a tiny run at the
    // largest distance (one step, few examples).
    let out = limited(&[
        "train",
        "--quiet",
        "--out",
        m,
        "--distance",
        "65536",
        "--test-distance",
        "65536",
        "--train-size",
        "2",
        "--valid-size",
        "1",
        "--test-size",
        "1",
        "--hidden",
        "2",
        "--embed",
        "2",
        "--steps",
        "1",
        "--eval-every",
        "1",
        "--batch-size",
        "2",
        "--threads",
        "1",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = limited(&["generate", "pronoun", "--count", "2", "--distance", "65536"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn no_output_is_written_over_the_data_and_no_two_outputs_are_one_file() {
    let dir = TempDir::new("over");
    let data = dir.file("d.csv", csv_rows(40).as_bytes());
    let before = std::fs::read(&data).unwrap();
    let link = dir.path("link.csv");
    std::fs::hard_link(&data, &link).unwrap();
    let m = dir.path("m.lstm");
    for (option, path) in [("--out", &data), ("--log", &link), ("--checkpoint", &data)] {
        let mut args: Vec<&std::ffi::OsStr> = Vec::new();
        let out_model = if option == "--out" { path.as_os_str() } else { m.as_os_str() };
        args.push(option.as_ref());
        args.push(path.as_os_str());
        let mut cmd = bin();
        cmd.args(["train", "--quiet", "--task", "classify", "--data"]).arg(&data).arg("--out").arg(out_model);
        if option != "--out" {
            cmd.args(&args);
        }
        let out = cmd.args(["--steps", "2", "--hidden", "4"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{option}: {stderr}");
        assert!(stderr.contains(option) && stderr.contains("is the same file as the input"), "{stderr}");
        assert_eq!(std::fs::read(&data).unwrap(), before, "{option} wrote over the data");
    }
    let out = train("classify", &data, &m, &["--log", m.to_str().unwrap()]);
    assert_bad_input(&out, &["--log", "is also --out"], &m);
    // An output whose folder does not exist: exit 2 before any work, as in
    // every tool.
    let nowhere = dir.path("no/such/m.lstm");
    let out = train("classify", &data, &nowhere, &[]);
    assert_bad_input(&out, &["--out", "does not exist"], &nowhere);
}
