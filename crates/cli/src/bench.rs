//! Timing a model: the per-step latency distribution and throughput of
//! whole-sequence runs or of streaming one step per call.
//!
//! A benchmark runs a warm-up, then measures repeats of `steps` timesteps for
//! `batch` sequences on random inputs drawn from a fixed seed.
//!
//! - [`Mode::Sequence`]: each repeat is one [`Model::run`] over the whole
//!   `[steps, batch, input]` sequence; its time divided by `steps` is one sample.
//! - [`Mode::Stream`]: each [`Model::step`] call is timed on its own and is
//!   one sample (so the clock's own cost, some tens of ns, is included).
//!
//! - [`Mode::Streams`]: `batch` independent streams in a [`lstmrt::StreamBatch`],
//!   all stepped together by one call per step; each such call is one
//!   sample. Beside it, in the same repeat (after all its steps), the same streams are
//!   stepped by one [`Model::step`] call each (as a service without a stream
//!   batch would: with `threads` > 1, the streams shared out between that
//!   many OS threads, each stream on one), and those calls' total is the
//!   step's separate sample.
//!
//! The state is reset before every repeat. Times are wall-clock
//! ([`std::time::Instant`]); on a shared machine, compare ratios measured in
//! one run, not absolute numbers across runs.

use std::time::{Duration, Instant};

use serde::Serialize;

use lstmrt::Error;
use lstmrt::Model;
use lstmrt::rng::Rng;

/// A benchmark workload of the project's issues: an LSTM with input size =
/// hidden size, run over `steps` timesteps of `batch` sequences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Workload {
    pub name: &'static str,
    pub hidden: usize,
    pub layers: usize,
    pub batch: usize,
    pub steps: usize,
}

/// W1-W5, the workloads every performance figure of the project refers to.
pub const WORKLOADS: [Workload; 5] = [
    Workload { name: "W1", hidden: 128, layers: 1, batch: 1, steps: 1000 },
    Workload { name: "W2", hidden: 512, layers: 1, batch: 1, steps: 200 },
    Workload { name: "W3", hidden: 1024, layers: 1, batch: 1, steps: 100 },
    Workload { name: "W4", hidden: 512, layers: 1, batch: 32, steps: 100 },
    Workload { name: "W5", hidden: 256, layers: 2, batch: 1, steps: 500 },
];

impl Workload {
    pub fn metadata(&self) -> lstmrt_format::Metadata {
        use lstmrt_format::{Architecture, CellKind, Metadata};
        Metadata::new(Architecture::new(CellKind::Lstm, self.hidden, self.hidden, self.layers))
    }

    /// The workload's model with seeded random weights in `dtype`, in memory.
    pub fn model(&self, dtype: lstmrt_format::DType) -> Model {
        let meta = self.metadata();
        let weights = lstmrt::Weights::random(&meta, &mut Rng::new(7), 1.0);
        let bytes = lstmrt::ModelWriter::new(&meta, &weights).dtype(dtype).to_bytes().expect("finite weights");
        Model::from_bytes(&bytes).expect("a freshly written model opens")
    }
}

/// Whole-sequence runs or one call per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Sequence,
    Stream,
    Streams,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub batch: usize,
    pub steps: usize,
    pub threads: usize,
    /// Measured repeats; `None`: repeat until `seconds` have passed (at least 3).
    pub repeats: Option<usize>,
    /// Time budget of the measurement when `repeats` is `None`.
    pub seconds: f64,
    /// Warm-up repeats before measuring; `None`: 10% of the time budget (at least 1).
    pub warmup: Option<usize>,
    /// Seed of the random inputs (uniform in `[-1, 1)`).
    pub seed: u64,
    /// Also measure the machine's roofline and report the bound (see [`crate::roofline`]).
    pub roofline: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            mode: Mode::Sequence,
            batch: 1,
            steps: 100,
            threads: 1,
            repeats: None,
            seconds: 1.0,
            warmup: None,
            seed: 0x5eed,
            roofline: false,
        }
    }
}

/// Measured samples are capped at this many (in stream mode one per step),
/// so a long run of a tiny model does not fill memory.
pub const MAX_SAMPLES: usize = 1 << 21;

/// The result of a benchmark; field names are the JSON keys of `--bench --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The model file (set by the caller; empty if unknown).
    pub model: String,
    pub mode: Mode,
    pub batch: usize,
    pub steps: usize,
    pub threads: usize,
    /// The kernel instruction-set tier in use.
    pub isa: String,
    /// Why the amx tier cannot run here (absent where it can).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amx_unavailable: Option<String>,
    /// The dtype of the recurrent weights.
    pub dtype: &'static str,
    /// int8 models: the `u8 x s8` product in use (`amx-int8`, `avx512-vnni`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int8_product: Option<&'static str>,
    pub cell: &'static str,
    pub input_size: u32,
    pub hidden_size: u32,
    pub num_layers: u32,
    pub bidirectional: bool,
    pub parameter_count: u64,
    /// Measured repeats of `steps` timesteps.
    pub repeats: usize,
    /// Number of per-step samples the statistics are over.
    pub samples: usize,
    pub warmup_repeats: usize,
    /// Nanoseconds per timestep (all `batch` sequences advancing one step).
    pub ns_per_step_median: f64,
    pub ns_per_step_p99: f64,
    pub ns_per_step_min: f64,
    pub ns_per_step_mean: f64,
    /// Timesteps per second at the median: `1e9 / ns_per_step_median`.
    pub steps_per_second: f64,
    /// Sequence-steps per second: `steps_per_second * batch`.
    pub sequence_steps_per_second: f64,
    /// Streams mode: the median time per step of the same streams stepped
    /// by one `step` call each, and how many times longer that takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub separate_ns_per_step_median: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub separate_over_together: Option<f64>,
    /// With `roofline`: the single-core bound per step for this mode (sequence
    /// or stream bound), in nanoseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_ns_per_step: Option<f64>,
    /// With `roofline`: bound / median, the fraction of the machine's limit reached
    /// (above 1 is possible with several threads: the bound is for one core).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction_of_bound: Option<f64>,
}

/// The nearest-rank `p`-quantile (`0 < p <= 1`) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "no samples");
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Most bytes a benchmark allocates (2 GiB): its random inputs, its
/// outputs and every state with its kernel buffers ([`bench_bytes`]).
/// `--batch`, `--streams` and `--steps` are refused, before anything is
/// allocated, where they would need more.
pub const MAX_BENCH_BYTES: u64 = 1 << 31;

/// Bytes a benchmark of `model` as `config` says allocates: inputs and
/// outputs, the state (stream batch, chunk state) with its buffers for
/// `config.threads`, in streams mode one more state per stream, and the
/// samples.
pub fn bench_bytes(model: &Model, config: &Config) -> u64 {
    let (batch, steps, threads) = (config.batch as u64, config.steps as u64, config.threads);
    let samples = 2 * 8 * MAX_SAMPLES as u64;
    if let Some(stages) = model.metadata().stages.as_ref() {
        let per = (stages.chunk * stages.channels) as u64;
        return per * batch * steps * 4 + model.chunk_state_bytes(config.batch, threads) + samples;
    }
    let arch = model.architecture();
    let floats = batch * steps * (arch.input_size as u64 + arch.sequence_output_size() as u64);
    let mut bytes = floats * 4 + model.state_bytes(config.batch, threads) + samples;
    if config.mode == Mode::Streams {
        bytes += model.state_bytes(config.batch, threads) + batch * model.state_bytes(1, 1);
    }
    bytes
}

/// Refuses a benchmark that would allocate more than [`MAX_BENCH_BYTES`],
/// naming the flag to lower and the largest value of it that fits.
fn check_bench_bytes(model: &Model, config: &Config) -> Result<(), Error> {
    let bytes = bench_bytes(model, config);
    if bytes <= MAX_BENCH_BYTES {
        return Ok(());
    }
    let flag = match config.mode {
        Mode::Streams => "--streams",
        _ => "--batch",
    };
    // The largest batch (with these steps), then the largest steps (with
    // this batch) that fit: each grows the bytes monotonically.
    let largest = |f: &dyn Fn(usize) -> Config, hi: usize| {
        let (mut lo, mut hi) = (0usize, hi);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if bench_bytes(model, &f(mid)) <= MAX_BENCH_BYTES { lo = mid } else { hi = mid - 1 }
        }
        lo
    };
    let max_batch = largest(&|b| Config { batch: b, ..config.clone() }, config.batch);
    let max_steps = largest(&|s| Config { steps: s, ..config.clone() }, config.steps);
    let what = if model.metadata().stages.is_some() { "chunks" } else { "steps" };
    Err(Error::Unsupported {
        what: format!(
            "{flag} {} x --steps {} needs {bytes} bytes of inputs, outputs and states, more than the {MAX_BENCH_BYTES} (2 GiB) a benchmark may use; with this model that allows at most {flag} {max_batch} at these {what}, or --steps {max_steps} at this {}",
            config.batch,
            config.steps,
            &flag[2..],
        ),
    })
}

/// Runs `repeat` (given whether to record, returning the samples recorded
/// so far) for `config`'s warm-up, then until its repeats or time budget
/// (at least 3 repeats) or [`MAX_SAMPLES`]: `(warm-up repeats, repeats)`.
fn measure(config: &Config, mut repeat: impl FnMut(bool) -> Result<usize, Error>) -> Result<(usize, usize), Error> {
    let budget = Duration::from_secs_f64(config.seconds.max(0.0));
    let warmup_start = Instant::now();
    let mut warmup_repeats = 0;
    loop {
        let done = match config.warmup {
            Some(n) => warmup_repeats >= n,
            None => warmup_repeats >= 1 && warmup_start.elapsed() >= budget / 10,
        };
        if done {
            break;
        }
        repeat(false)?;
        warmup_repeats += 1;
    }
    let start = Instant::now();
    let (mut repeats, mut samples) = (0, 0);
    loop {
        let done = match config.repeats {
            Some(n) => repeats >= n.max(1),
            None => (repeats >= 3 && start.elapsed() >= budget) || samples >= MAX_SAMPLES,
        };
        if done {
            break;
        }
        samples = repeat(true)?;
        repeats += 1;
    }
    Ok((warmup_repeats, repeats))
}

/// Measures `model` as `config` says.
pub fn run(model: &Model, config: &Config) -> Result<Report, Error> {
    let arch = model.architecture();
    if config.batch == 0 || config.steps == 0 {
        return Err(Error::Unsupported { what: "a benchmark needs batch >= 1 and steps >= 1".into() });
    }
    if let (Mode::Stream | Mode::Streams, Some((kind, why))) = (config.mode, arch.whole_sequence_only()) {
        return Err(Error::Unsupported {
            what: format!("a {kind} model cannot be streamed one step at a time: {why}; benchmark whole sequences"),
        });
    }
    // The random input, the output and the states are held whole: refuse
    // sizes no benchmark needs before allocating them.
    check_bench_bytes(model, config)?;
    let isa = model.isa();
    let per_step = config.batch * arch.input_size as usize;
    let mut rng = Rng::new(config.seed);
    let xs: Vec<f32> = (0..config.steps * per_step).map(|_| rng.uniform_f32(-1.0, 1.0)).collect();
    let mut state = model.new_batch_state(config.batch)?;
    state.set_threads(config.threads);
    let mut out = vec![0.0f32; config.steps * config.batch * arch.sequence_output_size()];
    let mut samples: Vec<f64> = Vec::new();
    let mut separate: Vec<f64> = Vec::new();
    // Streams mode: the stream batch, and one state per stream beside it.
    let (mut streams, ids, mut alone) = if config.mode == Mode::Streams {
        let mut streams = model.new_stream_batch(config.batch)?;
        streams.set_threads(config.threads);
        let ids = (0..config.batch).map(|_| streams.join()).collect::<Result<Vec<_>, _>>()?;
        // One thread each: with several threads, the streams are shared out
        // between that many OS threads instead (as a service would), since
        // a pool per stream would be `batch` pools contending for the cores.
        let alone: Vec<_> = (0..config.batch).map(|_| model.new_state()).collect();
        (Some(streams), ids, alone)
    } else {
        (None, Vec::new(), Vec::new())
    };
    let input = arch.input_size as usize;

    // One repeat: reset, run all steps; pushes samples when `record`.
    let mut repeat = |samples: &mut Vec<f64>, separate: &mut Vec<f64>, record: bool| -> Result<(), Error> {
        state.reset();
        match config.mode {
            Mode::Sequence => {
                let start = Instant::now();
                model.run_into(&mut state, &xs, &mut out)?;
                let ns = start.elapsed().as_nanos() as f64;
                if record {
                    samples.push(ns / config.steps as f64);
                }
            }
            Mode::Stream => {
                for x in xs.chunks_exact(per_step) {
                    let start = Instant::now();
                    std::hint::black_box(model.step(&mut state, x)?);
                    let ns = start.elapsed().as_nanos() as f64;
                    if record && samples.len() < MAX_SAMPLES {
                        samples.push(ns);
                    }
                }
            }
            Mode::Streams => {
                let streams = streams.as_mut().expect("made for streams mode");
                for &id in &ids {
                    streams.reset(id)?;
                }
                alone.iter_mut().for_each(lstmrt::State::reset);
                // All steps together, then all steps apart: interleaved, each
                // would evict the other's weights from the caches.
                for x in xs.chunks_exact(per_step) {
                    let start = Instant::now();
                    std::hint::black_box(streams.step(model, &ids, x)?);
                    let together = start.elapsed().as_nanos() as f64;
                    if record && samples.len() < MAX_SAMPLES {
                        samples.push(together);
                    }
                }
                for x in xs.chunks_exact(per_step) {
                    let start = Instant::now();
                    step_each(model, &mut alone, x, input, config.threads)?;
                    let apart = start.elapsed().as_nanos() as f64;
                    if record && separate.len() < MAX_SAMPLES {
                        separate.push(apart);
                    }
                }
            }
        }
        Ok(())
    };

    let (warmup_repeats, repeats) = measure(config, |record| {
        repeat(&mut samples, &mut separate, record)?;
        Ok(samples.len())
    })?;
    let threads = state.threads();
    samples.sort_by(f64::total_cmp);
    let median = percentile(&samples, 0.5);
    separate.sort_by(f64::total_cmp);
    let separate_median = (!separate.is_empty()).then(|| percentile(&separate, 0.5));
    let bound = config.roofline.then(|| {
        let b = crate::roofline::Probe::new(isa).bounds(arch, model.dtype(), config.batch);
        match config.mode {
            Mode::Sequence => b.sequence_ns,
            Mode::Stream | Mode::Streams => b.stream_ns,
        }
    });
    let steps_per_second = if median > 0.0 { 1e9 / median } else { f64::INFINITY };
    Ok(Report {
        model: String::new(),
        mode: config.mode,
        batch: config.batch,
        steps: config.steps,
        threads,
        isa: isa.name().to_string(),
        amx_unavailable: lstmrt::Isa::Amx.unavailable_reason(),
        dtype: model.dtype().name(),
        int8_product: (model.dtype() == lstmrt::format::DType::I8).then(|| model.int8_dot().name()),
        cell: arch.cell.name(),
        input_size: arch.input_size,
        hidden_size: arch.hidden_size,
        num_layers: arch.num_layers,
        bidirectional: arch.bidirectional,
        parameter_count: model.parameter_count(),
        repeats,
        samples: samples.len(),
        warmup_repeats,
        ns_per_step_median: median,
        ns_per_step_p99: percentile(&samples, 0.99),
        ns_per_step_min: samples[0],
        ns_per_step_mean: samples.iter().sum::<f64>() / samples.len() as f64,
        steps_per_second,
        sequence_steps_per_second: steps_per_second * config.batch as f64,
        separate_ns_per_step_median: separate_median,
        separate_over_together: separate_median.map(|s| s / median),
        bound_ns_per_step: bound,
        fraction_of_bound: bound.map(|b| b / median),
    })
}

/// Steps each of `states` by one `step` call on its row of `xs`, the states
/// shared out between `threads` OS threads.
fn step_each(
    model: &Model,
    states: &mut [lstmrt::State],
    xs: &[f32],
    input: usize,
    threads: usize,
) -> Result<(), Error> {
    let step_all = |states: &mut [lstmrt::State], xs: &[f32]| -> Result<(), Error> {
        for (s, x) in states.iter_mut().zip(xs.chunks_exact(input)) {
            std::hint::black_box(model.step(s, x)?);
        }
        Ok(())
    };
    if threads <= 1 {
        return step_all(states, xs);
    }
    let per = states.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = states
            .chunks_mut(per)
            .zip(xs.chunks(per * input))
            .map(|(s, x)| scope.spawn(move || step_all(s, x)))
            .collect();
        parts.into_iter().try_for_each(|p| p.join().expect("a stepping thread panicked"))
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Sequence => "whole sequence per call",
            Mode::Stream => "one step per call",
            Mode::Streams => "streams stepped together, one call per step",
        };
        writeln!(f, "model           {}", self.model)?;
        writeln!(
            f,
            "network         {}, {} layer(s), input {}, hidden {}, {} weights, {} parameters",
            self.cell,
            self.num_layers,
            self.input_size,
            self.hidden_size,
            self.dtype,
            crate::info::thousands(self.parameter_count)
        )?;
        writeln!(
            f,
            "run             {mode}: {} steps x batch {}, {} thread(s), isa {}{}",
            self.steps,
            self.batch,
            self.threads,
            crate::info::IsaInfo { tier: &self.isa, amx_unavailable: self.amx_unavailable.clone() },
            self.int8_product.map(|p| format!(", int8 product {p}")).unwrap_or_default()
        )?;
        writeln!(
            f,
            "measured        {} repeats ({} samples) after {} warm-up",
            self.repeats, self.samples, self.warmup_repeats
        )?;
        writeln!(
            f,
            "time per step   median {:.0} ns, p99 {:.0} ns, min {:.0} ns",
            self.ns_per_step_median, self.ns_per_step_p99, self.ns_per_step_min
        )?;
        writeln!(
            f,
            "throughput      {:.0} steps/s ({:.0} sequence-steps/s)",
            self.steps_per_second, self.sequence_steps_per_second
        )?;
        if let (Some(apart), Some(ratio)) = (self.separate_ns_per_step_median, self.separate_over_together) {
            writeln!(
                f,
                "separately      the same {} streams, one step call each: median {apart:.0} ns per step, {:.0} stream-steps/s ({ratio:.2}x the time)",
                self.batch,
                1e9 * self.batch as f64 / apart
            )?;
        }
        if let (Some(bound), Some(fraction)) = (self.bound_ns_per_step, self.fraction_of_bound) {
            writeln!(f, "roofline        bound {bound:.0} ns per step (one core); reached {:.0}%", fraction * 100.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_batch_a_refusal_names_fits_and_one_more_does_not() {
        let model = WORKLOADS[1].model(lstmrt::format::DType::F32);
        for mode in [Mode::Sequence, Mode::Streams] {
            let config = Config { mode, batch: 1_000_000, steps: 100, ..Config::default() };
            let e = check_bench_bytes(&model, &config).unwrap_err().to_string();
            let flag = if mode == Mode::Streams { "--streams" } else { "--batch" };
            let at_most = format!("at most {flag} ");
            let n: usize = e[e.find(&at_most).unwrap() + at_most.len()..].split(' ').next().unwrap().parse().unwrap();
            assert!(n > 0, "{e}");
            assert!(bench_bytes(&model, &Config { batch: n, ..config.clone() }) <= MAX_BENCH_BYTES);
            assert!(check_bench_bytes(&model, &Config { batch: n, ..config.clone() }).is_ok());
            assert!(check_bench_bytes(&model, &Config { batch: n + 1, ..config.clone() }).is_err());
        }
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&s, 0.5), 50.0);
        assert_eq!(percentile(&s, 0.99), 99.0);
        assert_eq!(percentile(&s, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), 2.0);
    }
}

/// The result of timing a chunked model (format 1.3 stages), chunk by chunk;
/// field names are the JSON keys of `--bench --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkReport {
    pub model: String,
    /// Streams run together, one chunk each per call.
    pub streams: usize,
    pub threads: usize,
    pub isa: String,
    pub dtype: &'static str,
    /// Frames per chunk, and the model's rate (0: none).
    pub chunk: u32,
    pub sample_rate: u32,
    /// Measured calls (each: one chunk of every stream).
    pub samples: usize,
    pub ns_per_chunk_median: f64,
    pub ns_per_chunk_p99: f64,
    pub ns_per_chunk_min: f64,
    /// Stream-chunks per second at the median: `streams * 1e9 / median`.
    pub stream_chunks_per_second: f64,
    /// Seconds of audio per second of one core's time, per stream: `chunk /
    /// sample_rate * 1e9 / median * streams` (absent without a rate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime_factor: Option<f64>,
    /// Seconds to score one hour of one stream's audio at the median.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_per_audio_hour: Option<f64>,
}

impl std::fmt::Display for ChunkReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "model            {}", self.model)?;
        writeln!(
            f,
            "work             {} stream{} x chunks of {} frames, {} thread{}, {} weights, isa {}",
            self.streams,
            if self.streams == 1 { "" } else { "s" },
            self.chunk,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.dtype,
            self.isa
        )?;
        let us = |ns: f64| ns / 1000.0;
        writeln!(
            f,
            "per chunk        median {:.2} us, p99 {:.2} us, min {:.2} us ({} samples)",
            us(self.ns_per_chunk_median),
            us(self.ns_per_chunk_p99),
            us(self.ns_per_chunk_min),
            self.samples
        )?;
        writeln!(f, "throughput       {:.0} stream-chunks/s", self.stream_chunks_per_second)?;
        if let (Some(rt), Some(hour)) = (self.realtime_factor, self.seconds_per_audio_hour) {
            writeln!(f, "audio            {rt:.0}x real time; one hour of audio in {hour:.2} s")?;
        }
        Ok(())
    }
}

/// Times `run_chunk` on `config.batch` streams of a tone with noise:
/// `config.steps` chunks per repeat (the state carried), as long as
/// `config.seconds` (or `config.repeats`) says.
pub fn run_chunks(model: &Model, config: &Config) -> Result<ChunkReport, Error> {
    let stages =
        model.metadata().stages.clone().ok_or_else(|| Error::Unsupported { what: "not a chunked model".into() })?;
    let per = (stages.chunk * stages.channels) as usize;
    let streams = config.batch.max(1);
    check_bench_bytes(model, config)?;
    let mut rng = Rng::new(config.seed);
    let chunks = config.steps.max(1);
    let signal: Vec<f32> =
        (0..chunks * per * streams).map(|i| 0.3 * (i as f32 * 0.05).sin() + rng.uniform_f32(-0.05, 0.05)).collect();
    let mut st = model.new_chunk_state(streams)?;
    st.set_threads(config.threads);
    let mut samples = Vec::new();
    let mut repeat = |samples: &mut Vec<f64>, record: bool| -> Result<(), Error> {
        st.reset();
        for x in signal.chunks_exact(per * streams) {
            let start = Instant::now();
            std::hint::black_box(model.run_chunk(&mut st, x)?);
            if record && samples.len() < MAX_SAMPLES {
                samples.push(start.elapsed().as_nanos() as f64);
            }
        }
        Ok(())
    };
    measure(config, |record| {
        repeat(&mut samples, record)?;
        Ok(samples.len())
    })?;
    samples.sort_by(f64::total_cmp);
    let median = percentile(&samples, 0.5);
    let audio = (stages.sample_rate > 0).then(|| stages.chunk as f64 / stages.sample_rate as f64);
    Ok(ChunkReport {
        model: String::new(),
        streams,
        threads: config.threads,
        isa: model.isa().name().to_string(),
        dtype: model.dtype().name(),
        chunk: stages.chunk,
        sample_rate: stages.sample_rate,
        samples: samples.len(),
        ns_per_chunk_median: median,
        ns_per_chunk_p99: percentile(&samples, 0.99),
        ns_per_chunk_min: samples[0],
        stream_chunks_per_second: streams as f64 * 1e9 / median,
        realtime_factor: audio.map(|a| a * 1e9 / median * streams as f64),
        seconds_per_audio_hour: audio.map(|a| 3600.0 / a * median / 1e9),
    })
}
