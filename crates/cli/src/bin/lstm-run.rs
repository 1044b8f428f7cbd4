//! `lstm-run`: run a model over files or a live stream, read and generate
//! text, inspect or time a model. Parses the command line and calls
//! `lstmrt_cli::run`; see `docs/run.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, CommandFactory, Parser, error::ErrorKind};
use lstmrt_cli::bench::{self, Mode};
use lstmrt_cli::data::ReadOptions;
use lstmrt_cli::exit;
use lstmrt_cli::run::{self, BenchJob, Failure, FileJob, GenerateJob, InfoJob, StreamJob, TextJob};
use lstmrt_cli::session::{OpenOptions, Session};

const AFTER_HELP: &str = "\
Modes:
  lstm-run MODEL INPUT [-o OUTPUT]        run over a .npy or .csv sequence
  lstm-run MODEL -                        stream: one timestep per stdin line, one output line per step
  lstm-run VAD audio.wav -o probs.npy     chunked model: one output per chunk (--segments: speech segments)
  lstm-run VAD - --pcm s16le              chunked model: raw PCM on stdin, one line per chunk
  lstm-run MODEL --text \"...\"             what a text model makes of a text
  lstm-run MODEL --generate N --prompt \"...\"   sample N tokens from a language model
  lstm-run MODEL --info [--verify] [--json]      what the model file holds
  lstm-run MODEL --bench [--stream] [--json]     time per step

Documentation: docs/run.md";

/// Run an LSTM/GRU/RNN model file from the command line.
#[derive(Parser, Debug)]
#[command(name = "lstm-run", version, after_help = format!("{AFTER_HELP}\n\n{}", exit::TABLE))]
#[command(override_usage = "lstm-run MODEL INPUT [-o OUTPUT] [OPTIONS]\n       lstm-run MODEL -\n       \
                            lstm-run MODEL --text TEXT | --generate N --prompt TEXT | --info | --bench [OPTIONS]")]
#[command(group(ArgGroup::new("mode").required(true).args(["input", "text", "generate", "info", "bench"])))]
struct Args {
    /// The model file (.lstm)
    model: PathBuf,

    /// Input sequence: .npy ([steps, features] or [steps, batch, features], float32/float64) or .csv
    /// (one timestep per row); `-` streams timesteps from stdin
    input: Option<PathBuf>,

    /// Output file: .npy, .csv or .json (PyTorch's `output` shape); without it a summary is printed
    #[arg(short, long, value_name = "OUTPUT", requires = "input")]
    output: Option<PathBuf>,

    /// 3-D .npy input is [batch, steps, features] (PyTorch's batch_first=True)
    #[arg(long, requires = "input")]
    batch_first: bool,

    /// Write the final state to PREFIX.h.npy (and PREFIX.c.npy for LSTM), shaped like h_n / c_n
    #[arg(long, value_name = "PREFIX", requires = "input")]
    final_state: Option<PathBuf>,

    /// Sequences of their own lengths: an int32/int64 .npy of shape `[batch]`; each sequence reads
    /// its first LENGTH steps, its outputs past them are zero and its final state is the one
    /// after its own last step (PyTorch's pack_padded_sequence)
    #[arg(long, value_name = "LENGTHS.npy", requires = "input")]
    lengths: Option<PathBuf>,

    /// Start from the state in PREFIX.h.npy (and PREFIX.c.npy for LSTM), shaped like h_0 / c_0
    #[arg(long, value_name = "PREFIX", requires = "input")]
    initial_state: Option<PathBuf>,

    /// Apply the model's output head to every step (default for streaming; files give the raw stack output)
    #[arg(long, requires = "input", overrides_with = "no_head")]
    head: bool,

    /// Stream the raw stack output even when the model has a head
    #[arg(long, requires = "input", overrides_with = "head")]
    no_head: bool,

    /// Chunked models (a voice-activity detector): print speech segments (start and end in
    /// seconds, one per line) found from the per-chunk probabilities as Silero VAD does
    #[arg(long, requires = "input")]
    segments: bool,

    /// With --segments: a chunk is speech at or above this probability
    #[arg(long, value_name = "P", default_value_t = 0.5, requires = "segments")]
    threshold: f32,

    /// With --segments: speech ends below this probability (default: threshold - 0.15, at least 0.01)
    #[arg(long, value_name = "P", requires = "segments")]
    neg_threshold: Option<f32>,

    /// With --segments: shorter segments are dropped
    #[arg(long, value_name = "MS", default_value_t = 250, requires = "segments")]
    min_speech_ms: u32,

    /// With --segments: silence must last this long to end a segment
    #[arg(long, value_name = "MS", default_value_t = 100, requires = "segments")]
    min_silence_ms: u32,

    /// With --segments: padding added to each end of a segment
    #[arg(long, value_name = "MS", default_value_t = 30, requires = "segments")]
    speech_pad_ms: u32,

    /// With --segments: a segment longer than this is cut (at its longest silence of more than
    /// --min-silence-at-max-speech-ms, else where it got to), as Silero's max_speech_duration_s
    #[arg(long, value_name = "S", requires = "segments")]
    max_speech_s: Option<f64>,

    /// With --segments and --max-speech-s: silences longer than this are places to cut
    #[arg(long, value_name = "MS", default_value_t = 98, requires = "max_speech_s")]
    min_silence_at_max_speech_ms: u32,

    /// With --max-speech-s: cut at the last such silence instead of the longest (Silero's
    /// use_max_poss_sil_at_max_speech=False)
    #[arg(long, requires = "max_speech_s")]
    cut_at_last_silence: bool,

    /// Chunked models streamed from stdin (INPUT `-`): the raw PCM sample format, mono or
    /// interleaved, at the model's rate
    #[arg(long, value_name = "FORMAT", value_parser = ["s16le", "f32le"], requires = "input")]
    pcm: Option<String>,

    /// Accept NaN and infinite input values instead of refusing them
    #[arg(long, requires = "input")]
    allow_nonfinite: bool,

    /// int8 models: bytes per activation multiplied with the int8 weights: bytes1 (fastest),
    /// inputs-bytes2 (two for the input projection), bytes2 (two everywhere: about 30% less
    /// error, 40-55% more time). See docs/quantization.md
    #[arg(long, value_name = "MODE", default_value = "bytes1", value_parser = ["bytes1", "inputs-bytes2", "bytes2"])]
    int8_activations: String,

    /// Read the model file into memory instead of mapping it, so that the file may change or be
    /// truncated while the model runs (a mapped file truncated under it kills the process)
    #[arg(long)]
    no_mmap: bool,

    /// Threads for running a batch (for files and --bench); at most 4 per core (more only wait
    /// on each other), lowered with a note
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,

    /// Read this text with a text model and print its prediction
    #[arg(long, value_name = "TEXT")]
    text: Option<String>,

    /// How many labels or next tokens --text lists
    #[arg(long, value_name = "K", default_value_t = 5, requires = "text")]
    top: usize,

    /// Write every token's gate values, cell and hidden state of every layer to a CSV file
    #[arg(long, value_name = "FILE.csv", requires = "text")]
    trace_gates: Option<PathBuf>,

    /// Generate N tokens after --prompt with a language model
    #[arg(long, value_name = "N", requires = "prompt")]
    generate: Option<usize>,

    /// The text generation starts from
    #[arg(long, value_name = "TEXT", requires = "generate")]
    prompt: Option<String>,

    /// Sampling temperature: 1 samples the model's distribution, lower is more conservative, 0 is greedy
    #[arg(long, value_name = "T", default_value_t = 1.0, requires = "generate")]
    temperature: f32,

    /// Random seed for --generate (default: from the clock, reported on stderr) and --bench inputs
    #[arg(long, value_name = "S")]
    seed: Option<u64>,

    /// Print what the model file holds
    #[arg(long)]
    info: bool,

    /// With --info: check every tensor's checksum (reads the whole file)
    #[arg(long, requires = "info")]
    verify: bool,

    /// Machine-readable output for --info and --bench
    #[arg(long, conflicts_with_all = ["input", "text", "generate"])]
    json: bool,

    /// Time the model: median and p99 time per step, steps per second
    #[arg(long)]
    bench: bool,

    /// Sequences per batch for --bench (chunked models: streams). A benchmark allocates at most
    /// 2 GiB (inputs, outputs, states and their buffers): larger --batch x --steps are refused
    /// with the largest that fits for the model
    #[arg(long, value_name = "B", default_value_t = 1, requires = "bench", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch: u32,

    /// Timesteps per repeat for --bench
    #[arg(long, value_name = "T", default_value_t = 100, requires = "bench", value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    steps: u32,

    /// With --bench: one call per step (streaming latency) instead of whole sequences
    #[arg(long, requires = "bench")]
    stream: bool,

    /// With --bench: N independent streams in a stream batch, all stepped by one call per step,
    /// beside the same N streams stepped by one `step` call each (N states more: within the same
    /// 2 GiB as --batch)
    #[arg(long, value_name = "N", requires = "bench", conflicts_with_all = ["stream", "batch"],
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    streams: Option<u32>,

    /// With --bench: exactly this many measured repeats (default: as many as fit in --seconds)
    #[arg(long, value_name = "R", requires = "bench", value_parser = clap::value_parser!(u32).range(1..))]
    repeats: Option<u32>,

    /// With --bench: time budget of the measurement in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, requires = "bench")]
    seconds: f64,

    /// With --bench: warm-up repeats (default: 10% of --seconds)
    #[arg(long, value_name = "R", requires = "bench")]
    warmup: Option<u32>,

    /// With --bench: also measure this machine's single-core roofline (FMA peak, read bandwidth
    /// at the weights' working set) and report the bound per step and the fraction of it reached
    #[arg(long, requires = "bench")]
    roofline: bool,
}

fn usage_error(message: &str) -> ! {
    Args::command().error(ErrorKind::ArgumentConflict, message).exit()
}

fn dispatch(args: Args) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    let int8_activations = lstmrt::Int8Activations::from_name(&args.int8_activations).expect("clap checked the value");
    let session = Session::new(OpenOptions { no_mmap: args.no_mmap, int8_activations, report_changes: true });
    let mut threads = args.threads as usize;
    if threads > lstmrt::max_threads() {
        threads = lstmrt::max_threads();
        eprintln!(
            "lstm-run: note: --threads {} is more than {} per core; using {threads}",
            args.threads,
            lstmrt::THREADS_PER_CORE
        );
    }
    if args.bench {
        if !(args.seconds.is_finite() && args.seconds >= 0.0) {
            usage_error("--seconds must be a number >= 0");
        }
        let config = bench::Config {
            mode: match (args.stream, args.streams) {
                (_, Some(_)) => Mode::Streams,
                (true, None) => Mode::Stream,
                (false, None) => Mode::Sequence,
            },
            batch: args.streams.unwrap_or(args.batch) as usize,
            steps: args.steps as usize,
            threads,
            repeats: args.repeats.map(|r| r as usize),
            seconds: args.seconds,
            warmup: args.warmup.map(|r| r as usize),
            seed: args.seed.unwrap_or(bench::Config::default().seed),
            roofline: args.roofline,
        };
        return run::run_bench(&session, &BenchJob { model: args.model, config, json: args.json }, &mut stdout);
    }
    if args.info {
        return run::run_info(
            &session,
            &InfoJob { model: args.model, verify: args.verify, json: args.json },
            &mut stdout,
        );
    }
    if let Some(text) = args.text {
        let job = TextJob { model: args.model, text, top: args.top, trace_gates: args.trace_gates };
        return run::run_text(&session, &job, &mut stdout);
    }
    if let Some(tokens) = args.generate {
        if !(args.temperature.is_finite() && args.temperature >= 0.0) {
            usage_error("--temperature must be a number >= 0");
        }
        let job = GenerateJob {
            model: args.model,
            prompt: args.prompt.unwrap_or_default(),
            tokens,
            temperature: args.temperature,
            seed: args.seed,
        };
        return run::run_generate(&session, &job, &mut stdout, &mut std::io::stderr());
    }
    let input = args.input.expect("clap requires one mode");
    let head = if args.head {
        Some(true)
    } else if args.no_head {
        Some(false)
    } else {
        None
    };
    if input.as_os_str() == "-" {
        if args.output.is_some() || args.batch_first || args.lengths.is_some() || args.segments {
            usage_error(
                "streaming (INPUT `-`) writes to stdout one step at a time; -o, --batch-first and --lengths do not apply",
            );
        }
        let job = StreamJob {
            model: args.model,
            initial_state: args.initial_state,
            final_state: args.final_state,
            head,
            allow_nonfinite: args.allow_nonfinite,
            threads,
            pcm: args.pcm.as_deref().map(|p| lstmrt_cli::audio::Pcm::from_name(p).expect("clap checked the value")),
        };
        return run::run_stream(&session, &job, &mut std::io::stdin().lock(), &mut stdout);
    }
    if let Some(s) = args.max_speech_s
        && (s.is_nan() || s <= 0.0)
    {
        usage_error("--max-speech-s must be a number of seconds above 0");
    }
    let job = FileJob {
        model: args.model,
        input,
        output: args.output,
        read: ReadOptions { batch_first: args.batch_first, allow_nonfinite: args.allow_nonfinite },
        initial_state: args.initial_state,
        final_state: args.final_state,
        lengths: args.lengths,
        head: head == Some(true),
        threads,
        segments: args.segments.then_some(lstmrt::vad::SpeechOptions {
            threshold: args.threshold.into(),
            neg_threshold: args.neg_threshold.map(f64::from),
            min_speech_duration_ms: args.min_speech_ms.into(),
            max_speech_duration_s: args.max_speech_s.unwrap_or(f64::INFINITY),
            min_silence_duration_ms: args.min_silence_ms.into(),
            speech_pad_ms: args.speech_pad_ms.into(),
            min_silence_at_max_speech: args.min_silence_at_max_speech_ms.into(),
            use_max_poss_sil_at_max_speech: !args.cut_at_last_silence,
        }),
    };
    if args.pcm.is_some() {
        usage_error("--pcm applies to streaming from stdin (INPUT `-`)");
    }
    run::run_file(&session, &job, &mut stdout)
}

fn main() -> ExitCode {
    match dispatch(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("lstm-run: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}
