//! `lstm-run`: run a model over files or a live stream, read and generate
//! text, inspect or time a model. One function per mode; each opens the
//! model, checks everything it is given before writing anything, and returns
//! a [`Failure`] carrying the exit code and the one-line message.
//!
//! Exit codes: [`crate::exit`].

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::bench;
use crate::data::{self, Dims, OutputFormat, ReadOptions, Sequence};
use crate::generate::{self, Generator};
use crate::info::ModelInfo;
use crate::predict;
use crate::trace;
use lstmrt::Model;
use lstmrt_format::HeadTask;

use crate::exit;
pub use crate::exit::Failure;
use crate::session::{Session, model_failure};

/// A failed write to stdout: quiet success when the reader closed the pipe
/// (as `head` does), else an internal failure.
fn stdout_failure(e: std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Failure { code: exit::OK, message: String::new() }
    } else {
        Failure::internal(format!("writing to stdout: {e}"))
    }
}

/// [`Session::check_output_place`] for the files of a `--final-state` prefix.
fn check_state_place(session: &Session, prefix: &Path, arch: &lstmrt_format::Architecture) -> Result<(), Failure> {
    let (h, c) = data::state_paths(prefix, arch);
    std::iter::once(h).chain(c).try_for_each(|p| session.check_output_place(&p))
}

/// `lstm-run MODEL INPUT [-o OUTPUT] ...`: one run over an input file.
#[derive(Debug, Clone, Default)]
pub struct FileJob {
    pub model: PathBuf,
    pub input: PathBuf,
    /// `.npy`, `.csv` or `.json`; `None` prints a summary to stdout.
    pub output: Option<PathBuf>,
    pub read: ReadOptions,
    /// Reads `PREFIX.h.npy` (and `PREFIX.c.npy`) as `h_0` (and `c_0`).
    pub initial_state: Option<PathBuf>,
    /// Writes `h_n` (and `c_n`) to `PREFIX.h.npy` (and `PREFIX.c.npy`).
    pub final_state: Option<PathBuf>,
    /// An int32/int64 `.npy` of one length per sequence (`Model::run_lengths`).
    pub lengths: Option<PathBuf>,
    /// Apply the model's head to every step's output instead of returning
    /// the raw stack output (PyTorch's `output`).
    pub head: bool,
    pub threads: usize,
    /// Chunked models: print speech segments with these thresholds.
    pub segments: Option<lstmrt::vad::SpeechOptions>,
}

/// Refuses final-state files that are files this session read.
fn check_state_outputs(session: &Session, prefix: &Path, arch: &lstmrt_format::Architecture) -> Result<(), Failure> {
    let (h, c) = data::state_paths(prefix, arch);
    for path in std::iter::once(h).chain(c) {
        session.check_not_an_input(&path).map_err(Failure::bad_input)?;
    }
    Ok(())
}

/// Runs a model over an input file; see [`FileJob`].
pub fn run_file(session: &Session, job: &FileJob, stdout: &mut dyn Write) -> Result<(), Failure> {
    let model = session.open_model(&job.model)?;
    if model.stages_plan().is_some() {
        let not_for_chunks = [
            ("--initial-state", job.initial_state.is_some()),
            ("--final-state", job.final_state.is_some()),
            ("--lengths", job.lengths.is_some()),
            ("--head", job.head),
            ("--batch-first", job.read.batch_first),
        ];
        if let Some((option, _)) = not_for_chunks.iter().find(|(_, given)| *given) {
            return Err(Failure::bad_input(format!(
                "{}: {option} does not apply to a chunked model (it reads a signal chunk by chunk)",
                job.model.display()
            )));
        }
        if let Some(path) = &job.output {
            session.check_output_place(path)?;
        }
        let files = crate::chunked::SignalFiles { model: &job.model, input: &job.input, output: job.output.as_deref() };
        return crate::chunked::run_file(session, &model, files, job.segments, job.threads, stdout);
    }
    if job.segments.is_some() {
        return Err(Failure::bad_input(format!(
            "{}: --segments is for chunked models (a voice-activity detector); this one reads feature vectors",
            job.model.display()
        )));
    }
    let arch = model.architecture();
    let format = job.output.as_deref().map(OutputFormat::from_path).transpose()?;
    if let Some(path) = &job.output {
        session.check_output_place(path)?;
    }
    if let Some(prefix) = &job.final_state {
        check_state_place(session, prefix, arch)?;
    }
    let head = model.metadata().head.as_ref();
    if job.head && head.is_none() {
        return Err(Failure::bad_input(format!("{}: --head: this model has no output head", job.model.display())));
    }
    let seq = data::read_input(session, &job.input, arch.input_size as usize, job.read)?;
    let head_width = head.filter(|_| job.head).map_or(0, |h| h.out_features as usize);
    let (h_shape, c_shape) = data::state_shapes(arch, 1, false);
    let state_width = h_shape.iter().product::<usize>() + c_shape.iter().product::<usize>();
    data::check_output_values(
        &job.input.display().to_string(),
        seq.steps,
        seq.batch,
        arch.sequence_output_size() + head_width,
        state_width,
    )?;
    let mut state = model.new_batch_state(seq.batch).map_err(|e| model_failure(&job.model, e))?;
    state.set_threads(job.threads.max(1));
    if let Some(prefix) = &job.initial_state {
        let (h, c) = data::read_state(session, prefix, arch, seq.batch, job.read.allow_nonfinite)?;
        state.set_h(&h).and_then(|()| state.set_c(&c)).map_err(|e| model_failure(&job.model, e))?;
    }
    let lengths =
        job.lengths.as_deref().map(|path| data::read_lengths(session, path, seq.batch, seq.steps)).transpose()?;
    let width = arch.sequence_output_size();
    let mut out = data::zeros(seq.steps * seq.batch * width, "the output")?;
    match &lengths {
        Some(lengths) => model.run_lengths_into(&mut state, &seq.data, lengths, &mut out),
        None => model.run_into(&mut state, &seq.data, &mut out),
    }
    .map_err(|e| model_failure(&job.model, e))?;
    let raw = seq.like(width, out);
    let (result, names) = match head {
        Some(h) if job.head => {
            let n = h.out_features as usize;
            let mut data = data::zeros(raw.steps * raw.batch * n, "the head's output")?;
            for (i, (x, y)) in raw.data.chunks_exact(width).zip(data.chunks_exact_mut(n)).enumerate() {
                // Steps past a sequence's length stay zero, like the stack's output.
                let (t, b) = (i / raw.batch, i % raw.batch);
                if lengths.as_ref().is_none_or(|l| t < l[b]) {
                    model.apply_head(x, y).map_err(|e| model_failure(&job.model, e))?;
                }
            }
            (seq.like(n, data), Some(h.labels.as_slice()).filter(|l| !l.is_empty()))
        }
        _ => (raw, None),
    };
    if let (Some(path), Some(format)) = (&job.output, format) {
        session.write_output(path, &data::encode_output(format, &result, names)?)?;
    }
    if let Some(prefix) = &job.final_state {
        check_state_outputs(session, prefix, arch)?;
        data::write_state(prefix, arch, seq.batch, seq.is_batched(), state.h(), state.c())
            .map_err(|e| Failure::internal(format!("cannot write {e}")))?;
    }
    // Last, so a reader closing stdout early cannot stop the files being written.
    if job.output.is_none() {
        summarize(&model, job, &seq, &result, stdout).map_err(stdout_failure)?;
    }
    Ok(())
}

/// The readable summary printed when no `-o` is given.
fn summarize(model: &Model, job: &FileJob, input: &Sequence, out: &Sequence, w: &mut dyn Write) -> std::io::Result<()> {
    let arch = model.architecture();
    writeln!(
        w,
        "model   {}: {}, {} layer(s), input {}, hidden {}{}",
        job.model.display(),
        arch.cell.name(),
        arch.num_layers,
        arch.input_size,
        arch.hidden_size,
        if arch.bidirectional { ", bidirectional" } else { "" }
    )?;
    let shape = |s: &Sequence| s.shape().iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let order = match input.dims {
        Dims::Unbatched => "steps, features",
        Dims::SequenceMajor => "steps, batch, features",
        Dims::BatchFirst => "batch, steps, features",
    };
    writeln!(w, "input   {}: [{}] ({order})", job.input.display(), shape(input))?;
    let what = if job.head {
        "the head's output at every step"
    } else {
        "the top layer's h at every step, as PyTorch's `output`"
    };
    writeln!(w, "output  [{}]: {what}", shape(out))?;
    const SHOWN_VALUES: usize = 8;
    let order = out.rows_in_file_order();
    let rows = order.len();
    let shown_rows: Vec<usize> = if rows <= 6 { (0..rows).collect() } else { vec![0, 1, 2, rows - 2, rows - 1] };
    for (i, &r) in shown_rows.iter().enumerate() {
        if i > 0 && shown_rows[i - 1] + 1 != r {
            writeln!(w, "  ...")?;
        }
        let (t, b) = order[r];
        let label = match out.dims {
            Dims::Unbatched => format!("t={t}"),
            Dims::SequenceMajor => format!("t={t} b={b}"),
            Dims::BatchFirst => format!("b={b} t={t}"),
        };
        let row = out.row(t, b);
        let values: Vec<String> = row.iter().take(SHOWN_VALUES).map(|v| format!("{v:>8.4}")).collect();
        let more = if row.len() > SHOWN_VALUES { format!("  ... ({} values)", row.len()) } else { String::new() };
        writeln!(w, "  {label:<10}{}{more}", values.join(" "))?;
    }
    let finite: Vec<f32> = out.data.iter().copied().filter(|v| v.is_finite()).collect();
    if !finite.is_empty() {
        let min = finite.iter().copied().fold(f32::INFINITY, f32::min);
        let max = finite.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mean = finite.iter().map(|&v| v as f64).sum::<f64>() / finite.len() as f64;
        writeln!(w, "  min {min:.4}  max {max:.4}  mean {mean:.4}")?;
    }
    writeln!(w, "Save all of it with -o OUTPUT.npy (or .csv, .json).")?;
    w.flush()
}

/// `lstm-run MODEL -`: one timestep per input line, one output line per step.
#[derive(Debug, Clone, Default)]
pub struct StreamJob {
    pub model: PathBuf,
    pub initial_state: Option<PathBuf>,
    /// Written when the input ends.
    pub final_state: Option<PathBuf>,
    /// Whether to apply the head: `None` applies it when the model has one.
    pub head: Option<bool>,
    pub allow_nonfinite: bool,
    pub threads: usize,
    /// Chunked models: the raw PCM format of stdin (default s16le).
    pub pcm: Option<crate::audio::Pcm>,
}

/// Streams: reads a timestep per line from `input` (values separated by
/// commas or whitespace; blank and `#` lines skipped), writes each step's
/// output as a comma-separated line to `output` and flushes it at once.
pub fn run_stream(
    session: &Session,
    job: &StreamJob,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
) -> Result<(), Failure> {
    let model = session.open_model(&job.model)?;
    if model.stages_plan().is_some() {
        if job.initial_state.is_some() || job.final_state.is_some() {
            return Err(Failure::bad_input(format!(
                "{}: --initial-state and --final-state do not apply to a chunked model",
                job.model.display()
            )));
        }
        let pcm = job.pcm.unwrap_or(crate::audio::Pcm::S16le);
        return crate::chunked::run_stream(&model, &job.model, pcm, input, output);
    }
    if job.pcm.is_some() {
        return Err(Failure::bad_input(format!(
            "{}: --pcm is for chunked models; this one streams one timestep per line",
            job.model.display()
        )));
    }
    let arch = model.architecture();
    if let Some(prefix) = &job.final_state {
        check_state_place(session, prefix, arch)?;
    }
    if let Some((kind, why)) = arch.whole_sequence_only() {
        return Err(Failure::bad_input(format!(
            "{}: a {kind} model cannot be streamed: {why}; give an input file instead",
            job.model.display()
        )));
    }
    let head_out_len = model.metadata().head.as_ref().map(|h| h.out_features as usize);
    let use_head = match (job.head, head_out_len) {
        (Some(true), None) => {
            return Err(Failure::bad_input(format!("{}: --head: this model has no output head", job.model.display())));
        }
        (Some(wanted), _) => wanted,
        (None, has) => has.is_some(),
    };
    let mut head_out = vec![0.0f32; head_out_len.unwrap_or(0)];
    let mut state = model.new_state();
    state.set_threads(job.threads.max(1));
    if let Some(prefix) = &job.initial_state {
        let (h, c) = data::read_state(session, prefix, arch, 1, job.allow_nonfinite)?;
        state.set_h(&h).and_then(|()| state.set_c(&c)).map_err(|e| model_failure(&job.model, e))?;
    }
    let features = arch.input_size as usize;
    let max_line = lstmrt_format::limits::max_stream_line(features);
    let mut line = Vec::new();
    let mut number = 0usize;
    let mut reader_gone = false;
    loop {
        line.clear();
        number += 1;
        // At most one byte past the limit is read, so a line without an end
        // (or a writer sending one endless line) costs no more than the limit.
        let read = std::io::Read::take(&mut *input, max_line as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure::internal(format!("reading stdin: {e}")))?;
        if read == 0 {
            break;
        }
        if line.len() > max_line {
            return Err(Failure::bad_input(format!(
                "stdin, line {number}: longer than {max_line} bytes, the limit for a model of {features} features"
            )));
        }
        let Ok(line) = std::str::from_utf8(&line) else {
            return Err(Failure::bad_input(format!("stdin, line {number}: not UTF-8 text")));
        };
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let x = data::parse_values(text, job.allow_nonfinite).map_err(|(column, message)| {
            Failure::bad_input(format!("stdin, line {number}, column {column}: {message}"))
        })?;
        if x.len() != features {
            return Err(Failure::bad_input(format!(
                "stdin, line {number}: {} values, but the model takes {features} features per step",
                x.len()
            )));
        }
        let y = model.step(&mut state, &x).map_err(|e| model_failure(&job.model, e))?;
        let values = if use_head {
            model.apply_head(y, &mut head_out).map_err(|e| model_failure(&job.model, e))?;
            &head_out[..]
        } else {
            y
        };
        let mut text = data::format_values(values);
        text.push('\n');
        if let Err(e) = output.write_all(text.as_bytes()).and_then(|()| output.flush()) {
            match stdout_failure(e) {
                f if f.code == exit::OK => {
                    reader_gone = true;
                    break;
                }
                f => return Err(f),
            }
        }
    }
    if let Some(prefix) = &job.final_state {
        check_state_outputs(session, prefix, arch)?;
        data::write_state(prefix, arch, 1, false, state.h(), state.c())
            .map_err(|e| Failure::internal(format!("cannot write {e}")))?;
    }
    if reader_gone {
        return Err(Failure { code: exit::OK, message: String::new() });
    }
    Ok(())
}

/// `lstm-run MODEL --text "..."`: what a text model makes of a text.
#[derive(Debug, Clone, Default)]
pub struct TextJob {
    pub model: PathBuf,
    pub text: String,
    /// How many labels or next tokens to list.
    pub top: usize,
    /// Writes the gate trace CSV ([`crate::trace`]) here.
    pub trace_gates: Option<PathBuf>,
}

const BAR_WIDTH: usize = 30;

/// A bar of `BAR_WIDTH` cells, filled in proportion to `p` in `[0, 1]`.
fn bar(p: f32) -> String {
    let filled = ((p.clamp(0.0, 1.0) * BAR_WIDTH as f32).round() as usize).min(BAR_WIDTH);
    format!("{}{}", "█".repeat(filled), "░".repeat(BAR_WIDTH - filled))
}

/// How a token is shown: words as they are; characters quoted so spaces and
/// line breaks are visible.
fn show_token(model: &Model, token: &str) -> String {
    match model.metadata().vocabulary.as_ref().map(|v| v.tokenizer) {
        Some(lstmrt_format::Tokenizer::Word) => token.to_string(),
        _ => format!("{token:?}"),
    }
}

/// Reads a text and prints the prediction; see [`TextJob`].
pub fn run_text(session: &Session, job: &TextJob, stdout: &mut dyn Write) -> Result<(), Failure> {
    let model = session.open_model(&job.model)?;
    if let Some(path) = &job.trace_gates {
        session.check_output_place(path)?;
    }
    let fail = |e| model_failure(&job.model, e);
    let tokens = predict::tokenize(&model, &job.text).map_err(fail)?;
    if tokens.ids.is_empty() {
        return Err(Failure::bad_input("--text: the text has no tokens"));
    }
    let last = predict::last_output(&model, &tokens.ids).map_err(fail)?;
    if let Some(path) = &job.trace_gates {
        let xs = model.token_inputs(&tokens.ids).map_err(fail)?;
        session.write_output(path, trace::gate_trace_csv(&model, &xs, &tokens.pieces).as_bytes())?;
    }
    print_reading(&model, job, &tokens, &last, stdout).map_err(stdout_failure)
}

fn print_reading(
    model: &Model,
    job: &TextJob,
    tokens: &predict::Tokens,
    last: &[f32],
    w: &mut dyn Write,
) -> std::io::Result<()> {
    const SHOWN_TOKENS: usize = 40;
    let vocab = model.metadata().vocabulary.as_ref().expect("tokenized, so there is a vocabulary");
    writeln!(w, "Text:    {}", job.text)?;
    let mut shown: Vec<String> = tokens.pieces.iter().take(SHOWN_TOKENS).map(|t| show_token(model, t)).collect();
    if tokens.pieces.len() > SHOWN_TOKENS {
        shown.push(format!("... ({} more)", tokens.pieces.len() - SHOWN_TOKENS));
    }
    writeln!(w, "Tokens:  {} — {}", tokens.pieces.len(), shown.join(" "))?;
    if !tokens.unknown.is_empty() {
        let unk = vocab.unknown.map(|u| vocab.tokens[u as usize].as_str()).unwrap_or("?");
        let list: Vec<String> =
            tokens.unknown.iter().map(|&i| format!("{:?} (position {i})", tokens.pieces[i])).collect();
        writeln!(w, "         not in the vocabulary, read as {unk:?}: {}", list.join(", "))?;
    }
    writeln!(w)?;
    let Some(head) = model.metadata().head.as_ref() else {
        let values: Vec<String> = last.iter().take(8).map(|v| format!("{v:.4}")).collect();
        writeln!(
            w,
            "This model has no output head. The top layer's output after the last token ({} values):",
            last.len()
        )?;
        return writeln!(w, "  {}{}", values.join(" "), if last.len() > 8 { " ..." } else { "" });
    };
    let probs = predict::probabilities(head, last);
    let top = predict::top_k(&probs, job.top.max(1));
    let name = |i: usize| {
        let n = predict::output_name(model, i);
        if head.task == HeadTask::LanguageModel { show_token(model, &n) } else { n }
    };
    let names: Vec<String> = top.iter().map(|&i| name(i)).collect();
    let name_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    match head.task {
        HeadTask::Classifier => {
            writeln!(w, "Prediction: {} ({:.1}%)", names[0], probs[top[0]] * 100.0)?;
            writeln!(w)?;
        }
        HeadTask::LanguageModel => {
            writeln!(w, "Most likely next tokens (top {} of {}):", top.len(), probs.len())?;
        }
        HeadTask::Other => {
            writeln!(w, "Head outputs after the last token (largest {} of {}):", top.len(), probs.len())?;
            for (n, &i) in names.iter().zip(&top) {
                writeln!(w, "  {n:<name_width$}  {:.6}", probs[i])?;
            }
            return w.flush();
        }
    }
    for (n, &i) in names.iter().zip(&top) {
        let pad = name_width - n.chars().count();
        writeln!(w, "  {n}{}  {}  {:5.1}%", " ".repeat(pad), bar(probs[i]), probs[i] * 100.0)?;
    }
    w.flush()
}

/// `lstm-run MODEL --generate N --prompt "..."`: sample text from a language model.
#[derive(Debug, Clone, Default)]
pub struct GenerateJob {
    pub model: PathBuf,
    pub prompt: String,
    /// Tokens to generate after the prompt.
    pub tokens: usize,
    pub temperature: f32,
    /// `None`: a seed from the clock, reported on `notes`.
    pub seed: Option<u64>,
}

/// Prints the prompt, then each generated token as soon as it is drawn.
pub fn run_generate(
    session: &Session,
    job: &GenerateJob,
    stdout: &mut dyn Write,
    notes: &mut dyn Write,
) -> Result<(), Failure> {
    let model = session.open_model(&job.model)?;
    let fail = |e| model_failure(&job.model, e);
    generate::language_model_head(&model).map_err(fail)?;
    let tokens = predict::tokenize(&model, &job.prompt).map_err(fail)?;
    let seed = job.seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut s = now.as_nanos() as u64 ^ (std::process::id() as u64) << 32;
        lstmrt::rng::splitmix64(&mut s)
    });
    if job.seed.is_none() {
        // Best effort: the note only helps reproduce the text.
        let _ = writeln!(notes, "lstm-run: no --seed given; this text came from --seed {seed}");
    }
    let mut generator = Generator::new(&model, &tokens.ids, job.temperature, seed).map_err(fail)?;
    let tokenizer = model.metadata().vocabulary.as_ref().expect("tokenized").tokenizer;
    write!(stdout, "{}", job.prompt).and_then(|()| stdout.flush()).map_err(stdout_failure)?;
    for _ in 0..job.tokens {
        let id = generator.next_token().map_err(fail)?;
        let piece = generate::joined(tokenizer, model.token(id).map_err(fail)?);
        write!(stdout, "{piece}").and_then(|()| stdout.flush()).map_err(stdout_failure)?;
    }
    writeln!(stdout).and_then(|()| stdout.flush()).map_err(stdout_failure)
}

/// `lstm-run MODEL --info [--verify] [--json]`.
#[derive(Debug, Clone, Default)]
pub struct InfoJob {
    pub model: PathBuf,
    /// Check every tensor's checksum (reads the whole file).
    pub verify: bool,
    pub json: bool,
}

/// Prints what the model file holds; see [`InfoJob`].
pub fn run_info(session: &Session, job: &InfoJob, stdout: &mut dyn Write) -> Result<(), Failure> {
    let model = session.open_model(&job.model)?;
    let mut info = ModelInfo::of(&model, &job.model.display().to_string());
    if job.verify {
        model.verify().map_err(|e| model_failure(&job.model, e))?;
        info.checksums_verified = Some(true);
    }
    let style = if job.json { Style::PrettyJson } else { Style::Text };
    print_report(&info, style, stdout)
}

/// How a summary is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Text,
    /// One JSON object over several indented lines.
    PrettyJson,
    /// One JSON object on one line (easy to append to a log of runs).
    JsonLine,
}

/// Prints `value` as text or JSON, ending with a newline, and flushes.
fn print_report<T: serde::Serialize + std::fmt::Display>(
    value: &T,
    style: Style,
    stdout: &mut dyn Write,
) -> Result<(), Failure> {
    let json = match style {
        Style::Text => None,
        Style::PrettyJson => Some(serde_json::to_string_pretty(value)),
        Style::JsonLine => Some(serde_json::to_string(value)),
    };
    let text = match json {
        None => value.to_string(),
        Some(j) => j.map_err(|e| Failure::internal(e.to_string()))? + "\n",
    };
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(stdout_failure)
}

/// `lstm-run MODEL --bench ...`.
#[derive(Debug, Clone, Default)]
pub struct BenchJob {
    pub model: PathBuf,
    pub config: bench::Config,
    pub json: bool,
}

/// Times the model; see [`crate::bench`].
pub fn run_bench(session: &Session, job: &BenchJob, stdout: &mut dyn Write) -> Result<(), Failure> {
    let model = session.open_model(&job.model)?;
    let style = if job.json { Style::JsonLine } else { Style::Text };
    if model.stages_plan().is_some() {
        let mut report = bench::run_chunks(&model, &job.config).map_err(|e| model_failure(&job.model, e))?;
        report.model = job.model.display().to_string();
        return print_report(&report, style, stdout);
    }
    let mut report = bench::run(&model, &job.config).map_err(|e| model_failure(&job.model, e))?;
    report.model = job.model.display().to_string();
    print_report(&report, style, stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lstmrt::{ModelWriter, Weights};
    use lstmrt_format::{Architecture, CellKind, Metadata};

    /// A writer whose reader has gone away after `lines` lines.
    struct ClosingPipe {
        lines: usize,
        written: Vec<u8>,
    }

    impl Write for ClosingPipe {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.written.iter().filter(|&&b| b == b'\n').count() >= self.lines {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn stream_stops_quietly_when_the_reader_goes_away_and_still_saves_the_state() {
        let dir = std::env::temp_dir().join(format!("lstmrt-cli-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let meta = Metadata::new(Architecture::new(CellKind::Lstm, 2, 3, 1));
        let mut weights = Weights::zeros(&meta);
        weights.layers[0].w_ih.iter_mut().enumerate().for_each(|(i, w)| *w = (i as f32 * 0.37).sin());
        let model = dir.join("m.lstm");
        ModelWriter::new(&meta, &weights).write(&model).unwrap();
        let job = StreamJob { model, final_state: Some(dir.join("s")), threads: 1, ..Default::default() };
        let mut pipe = ClosingPipe { lines: 2, written: Vec::new() };
        let result = run_stream(&Session::default(), &job, &mut "1,2\n3,4\n5,6\n7,8\n".as_bytes(), &mut pipe);
        assert_eq!(result, Err(Failure { code: exit::OK, message: String::new() }));
        assert_eq!(String::from_utf8(pipe.written).unwrap().lines().count(), 2);
        let h = lstmrt_import::npy::read(dir.join("s.h.npy")).unwrap();
        assert_eq!(h.shape, [1, 3]);
        assert!(h.data.iter().any(|&v| v != 0.0), "the state after the steps taken is saved");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bars_fill_in_proportion() {
        assert_eq!(bar(0.0), "░".repeat(BAR_WIDTH));
        assert_eq!(bar(1.0), "█".repeat(BAR_WIDTH));
        assert_eq!(bar(0.5).chars().filter(|&c| c == '█').count(), BAR_WIDTH / 2);
        assert_eq!(bar(f32::NAN).chars().count(), BAR_WIDTH);
    }
}
