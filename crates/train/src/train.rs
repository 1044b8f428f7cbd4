//! The training loop: minibatches split over threads with a fixed-order
//! reduction, gradient clipping and the optimizer, periodic evaluation with
//! early stopping, a CSV log, and atomic checkpoints to resume from.
//!
//! Determinism: every random choice is a pure function of `--seed` and a
//! position in the run (the epoch's shuffle comes from `rng::derive(seed,
//! epoch)`), and each thread's share of a minibatch and the order in which
//! the shares' gradients are added are fixed by the thread count. So a run
//! is reproducible bit for bit for a given seed and `--threads`, and a run
//! resumed from a checkpoint continues exactly where it stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::bptt::{self, BackwardOptions, LossSum, Workspace};
use crate::data::{DataInput, Dataset, Example, collate, epoch_batches};
use crate::error::Error;
use crate::net::{Cell, HeadSpec, Init, Input, Net, NetSpec, init_params};
use crate::optim::{self, OptimConfig, OptimState};
use crate::rng;

/// Everything that decides a run's result (besides the data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub cell: Cell,
    pub hidden: usize,
    /// LSTM projection size (0 = none).
    pub proj: usize,
    pub layers: usize,
    /// Embedding width for token inputs (0 = one-hot inputs).
    pub embed: usize,
    /// A linear head after the stack (without one, the loss reads `h`).
    pub head: bool,
    pub init: Init,
    pub optim: OptimConfig,
    pub batch_size: usize,
    /// Updates to run.
    pub steps: u64,
    /// Evaluate (and checkpoint) every this many updates.
    pub eval_every: u64,
    /// Stop after this many evaluations without a better validation loss (0 = never).
    pub patience: u64,
    /// Truncated BPTT length (0 = full BPTT).
    pub truncate: usize,
    /// Threads a minibatch is split over. Part of the result's identity:
    /// the same seed with another thread count sums gradients in another order.
    pub threads: usize,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            cell: Cell::Lstm,
            hidden: 64,
            proj: 0,
            layers: 1,
            embed: 32,
            head: true,
            init: Init::default(),
            optim: OptimConfig::default(),
            batch_size: 32,
            steps: 2000,
            eval_every: 100,
            patience: 0,
            truncate: 0,
            threads: 2,
            seed: 1,
        }
    }
}

impl TrainConfig {
    /// The network this configuration trains on `task`'s data.
    pub fn net_spec(&self, data: &Dataset) -> Result<NetSpec, Error> {
        let task = &data.task;
        let input = match task.input {
            DataInput::Tokens { vocab } => Input::Tokens { vocab, embed: self.embed },
            DataInput::Dense { features } => Input::Dense { features },
        };
        let spec = NetSpec {
            cell: self.cell,
            input,
            hidden: self.hidden,
            proj: self.proj,
            layers: self.layers,
            head: self.head.then_some(HeadSpec { out: task.outputs }),
            loss: task.loss,
        };
        let longest =
            [&data.train, &data.valid, &data.test].into_iter().flatten().map(|e| e.input.len()).max().unwrap_or(0);
        crate::limits::at_most("--batch-size", self.batch_size, crate::limits::MAX_BATCH)?;
        crate::limits::check_net(&spec, self.batch_size, longest)?;
        spec.validate().map_err(Error::input)?;
        if !self.head && spec.output_size() != task.outputs {
            return Err(Error::input(format!(
                "--no-head needs the top layer's output size ({}) to equal the task's {} outputs",
                spec.output_size(),
                task.outputs
            )));
        }
        if self.batch_size == 0 || self.threads == 0 || self.eval_every == 0 {
            return Err(Error::input("--batch-size, --threads and --eval-every must be at least 1"));
        }
        if !(self.optim.lr > 0.0 && self.optim.lr.is_finite()) {
            return Err(Error::input(format!("--lr {} is not a positive number", self.optim.lr)));
        }
        if data.train.is_empty() {
            return Err(Error::input("the training split is empty"));
        }
        Ok(spec)
    }
}

/// One row of the evaluation log (and of the CSV file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    pub step: u64,
    pub epoch: u64,
    pub lr: f64,
    /// Mean loss and accuracy over the training minibatches since the previous row.
    pub train_loss: f64,
    pub train_acc: f64,
    /// Validation loss and accuracy (NaN without a validation split).
    pub val_loss: f64,
    pub val_acc: f64,
    /// Mean gradient norm (before clipping) since the previous row.
    pub grad_norm: f64,
    /// Wall-clock seconds of training so far (not part of the result).
    pub seconds: f64,
}

impl EvalRow {
    pub const CSV_HEADER: &'static str = "step,epoch,lr,train_loss,train_acc,val_loss,val_acc,grad_norm,seconds";

    pub fn csv(&self) -> String {
        format!(
            "{},{},{:.6e},{:.6},{:.6},{:.6},{:.6},{:.6e},{:.2}",
            self.step,
            self.epoch,
            self.lr,
            self.train_loss,
            self.train_acc,
            self.val_loss,
            self.val_acc,
            self.grad_norm,
            self.seconds
        )
    }
}

/// The best parameters seen by validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub step: u64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub params: Vec<f32>,
}

/// Training metrics accumulated between evaluations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub loss: f64,
    pub correct: u64,
    pub count: u64,
    pub grad_norm: f64,
    pub updates: u64,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finish {
    /// Ran every step.
    Completed,
    /// The validation loss stopped improving.
    EarlyStopped,
    /// The loss or gradient became infinite or NaN.
    Diverged,
    /// Stopped on request ([`RunOptions::interrupt_at`]); resume to continue.
    Interrupted,
}

/// Everything that changes during a run: what a checkpoint stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub step: u64,
    pub epoch: u64,
    /// Minibatches of the current epoch already done.
    pub epoch_pos: usize,
    pub params: Vec<f32>,
    pub optim: OptimState,
    pub best: Option<Best>,
    /// Evaluations since the validation loss last improved.
    pub stale_evals: u64,
    pub window: Window,
    pub log: Vec<EvalRow>,
    /// Training seconds of earlier sessions of this run.
    pub seconds: f64,
    pub finish: Option<Finish>,
}

/// Where the run writes, and whether it shows progress.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Written atomically at every evaluation.
    pub checkpoint: Option<PathBuf>,
    /// Start from `checkpoint` if it exists.
    pub resume: bool,
    /// Written atomically at every evaluation.
    pub csv_log: Option<PathBuf>,
    pub progress: bool,
    /// Stop (after writing the checkpoint) once this many updates are done.
    pub interrupt_at: Option<u64>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub net: Net,
    /// The parameters to keep: the best by validation loss if there was a
    /// validation split, else the last.
    pub params: Vec<f32>,
    pub state: TrainState,
    pub test: Option<LossSum>,
    pub valid: Option<LossSum>,
    pub finish: Finish,
}

const CHECKPOINT_MAGIC: &[u8; 8] = b"LSTMTRN1";
/// Sub-stream of the seed for the epochs' shuffles (plus the epoch number).
const EPOCH_STREAM: u64 = 0xe90c_0000_0000;
const INIT_STREAM: u64 = 0x1417;

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    /// Identifies the data and configuration the state belongs to.
    fingerprint: String,
    config: TrainConfig,
    state: TrainState,
}

/// A description of the data that a checkpoint must match to be resumed.
fn data_fingerprint(data: &Dataset) -> String {
    let t = &data.task;
    let sources: Vec<&str> = t.sources.iter().map(|s| s.sha256.as_str()).collect();
    format!(
        "task={} params={:?} sources={:?} sizes={}/{}/{} vocab={}",
        t.name,
        t.params,
        sources,
        data.train.len(),
        data.valid.len(),
        data.test.len(),
        t.vocabulary.as_ref().map_or(0, |v| v.tokens.len())
    )
}

/// Writes a checkpoint atomically.
pub fn save_checkpoint(path: &Path, config: &TrainConfig, data: &Dataset, state: &TrainState) -> Result<(), Error> {
    let ck = Checkpoint { fingerprint: data_fingerprint(data), config: config.clone(), state: state.clone() };
    let mut bytes = CHECKPOINT_MAGIC.to_vec();
    bytes.extend(
        bincode::serde::encode_to_vec(&ck, bincode::config::standard())
            .map_err(|e| Error::failed(format!("{}: cannot encode checkpoint: {e}", path.display())))?,
    );
    crate::error::write_file(path, &bytes)?;
    Ok(())
}

/// Reads a checkpoint and checks it belongs to this configuration and data.
pub fn load_checkpoint(path: &Path, config: &TrainConfig, data: &Dataset) -> Result<TrainState, Error> {
    let bytes = lstmrt_format::read_regular(path, lstmrt_format::limits::DATA_FILE)
        .map_err(|e| Error::input(format!("{}: cannot read checkpoint: {e}", path.display())))?;
    let Some(payload) = bytes.strip_prefix(CHECKPOINT_MAGIC) else {
        return Err(Error::input(format!("{}: not an lstm-train checkpoint", path.display())));
    };
    let (ck, _): (Checkpoint, usize) = bincode::serde::decode_from_slice(payload, bincode::config::standard())
        .map_err(|e| Error::input(format!("{}: damaged checkpoint: {e}", path.display())))?;
    if ck.config != *config {
        return Err(Error::input(format!(
            "{}: the checkpoint was made with other options ({:?}); resume with the same options",
            path.display(),
            ck.config
        )));
    }
    if ck.fingerprint != data_fingerprint(data) {
        return Err(Error::input(format!(
            "{}: the checkpoint was made on other data ({}); resume with the same data",
            path.display(),
            ck.fingerprint
        )));
    }
    Ok(ck.state)
}

/// One thread's buffers.
struct Worker {
    ws: Workspace<f32>,
    grad: Vec<f32>,
}

impl Worker {
    fn gradient(&mut self, net: &Net, params: &[f32], part: &[&Example], scale: f32, truncate: usize) -> LossSum {
        let batch = collate(part);
        self.grad.iter_mut().for_each(|g| *g = 0.0);
        let opts = BackwardOptions { truncate, record_dh_norms: false };
        bptt::loss_and_gradient(net, params, &batch, &mut self.ws, &mut self.grad, scale, &opts)
    }
}

/// Splits `items` into at most `parts` contiguous non-empty pieces.
fn shares<T>(items: &[T], parts: usize) -> Vec<&[T]> {
    let size = items.len().div_ceil(parts.max(1)).max(1);
    items.chunks(size).collect()
}

/// Loss and accuracy of `params` on `examples`, batched by length and
/// spread over `threads` (each thread sums its batches; the sums are added
/// in thread order).
pub fn evaluate(net: &Net, params: &[f32], examples: &[Example], batch_size: usize, threads: usize) -> LossSum {
    if examples.is_empty() {
        return LossSum::default();
    }
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].input.len());
    let batches: Vec<Vec<&Example>> =
        order.chunks(batch_size).map(|c| c.iter().map(|&i| &examples[i]).collect()).collect();
    let threads = threads.clamp(1, batches.len());
    let run = |k: usize| {
        let mut ws = Workspace::<f32>::new();
        let mut sum = LossSum::default();
        for b in batches.iter().skip(k).step_by(threads) {
            let batch = collate(b);
            bptt::forward(net, params, &batch, &mut ws);
            sum.add(bptt::loss(net, &batch, &mut ws, None));
        }
        sum
    };
    let sums: Vec<LossSum> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|k| s.spawn(move || run(k))).collect();
        let mut sums = vec![run(0)];
        sums.extend(handles.into_iter().map(|h| h.join().expect("evaluation thread panicked")));
        sums
    });
    let mut total = LossSum::default();
    sums.into_iter().for_each(|s| total.add(s));
    total
}

/// A training run on one data set.
pub struct Trainer<'a> {
    pub config: TrainConfig,
    pub net: Net,
    pub data: &'a Dataset,
    pub state: TrainState,
    workers: Vec<Worker>,
    lengths: Vec<usize>,
    epoch_cache: Option<(u64, Vec<Vec<usize>>)>,
}

impl<'a> Trainer<'a> {
    /// A fresh run (parameters initialised from the seed).
    pub fn new(config: TrainConfig, data: &'a Dataset) -> Result<Trainer<'a>, Error> {
        let net = Net::new(config.net_spec(data)?);
        let params = init_params(&net.spec, &net.layout, &config.init, &mut rng::derive(config.seed, INIT_STREAM));
        let state = TrainState {
            step: 0,
            epoch: 0,
            epoch_pos: 0,
            optim: OptimState::new(&config.optim, params.len()),
            params,
            best: None,
            stale_evals: 0,
            window: Window::default(),
            log: Vec::new(),
            seconds: 0.0,
            finish: None,
        };
        let workers =
            (0..config.threads).map(|_| Worker { ws: Workspace::new(), grad: vec![0.0; net.layout.len] }).collect();
        let lengths = data.train.iter().map(|e| e.input.len()).collect();
        Ok(Trainer { config, net, data, state, workers, lengths, epoch_cache: None })
    }

    /// The minibatch (indices into the training split) for the current position.
    fn next_batch(&mut self) -> Vec<usize> {
        loop {
            let epoch = self.state.epoch;
            if self.epoch_cache.as_ref().is_none_or(|(e, _)| *e != epoch) {
                let mut rng = rng::derive(self.config.seed, EPOCH_STREAM + epoch);
                self.epoch_cache = Some((epoch, epoch_batches(&self.lengths, self.config.batch_size, &mut rng)));
            }
            let batches = &self.epoch_cache.as_ref().expect("just set").1;
            if let Some(b) = batches.get(self.state.epoch_pos) {
                return b.clone();
            }
            self.state.epoch += 1;
            self.state.epoch_pos = 0;
        }
    }

    /// One update. Returns the minibatch's loss sums and the gradient norm
    /// before clipping, or `None` (and no update) if either is not finite.
    pub fn step(&mut self) -> Option<(LossSum, f64)> {
        let idx = self.next_batch();
        let examples: Vec<&Example> = idx.iter().map(|&i| &self.data.train[i]).collect();
        let total: usize = examples.iter().map(|e| e.target_count()).sum();
        let scale = 1.0 / total.max(1) as f32;
        let parts = shares(&examples, self.config.threads);
        let (net, params, truncate) = (&self.net, &self.state.params, self.config.truncate);
        let workers = &mut self.workers[..parts.len()];
        let sums: Vec<LossSum> = std::thread::scope(|s| {
            let (first, rest) = workers.split_first_mut().expect("at least one part");
            let handles: Vec<_> = rest
                .iter_mut()
                .zip(&parts[1..])
                .map(|(w, part)| s.spawn(move || w.gradient(net, params, part, scale, truncate)))
                .collect();
            let mut sums = vec![first.gradient(net, params, parts[0], scale, truncate)];
            sums.extend(handles.into_iter().map(|h| h.join().expect("training thread panicked")));
            sums
        });
        // Fixed-order reduction into worker 0's buffer.
        let (first, rest) = workers.split_first_mut().expect("at least one part");
        for w in rest.iter() {
            first.grad.iter_mut().zip(&w.grad).for_each(|(a, &b)| *a += b);
        }
        let mut sum = LossSum::default();
        sums.into_iter().for_each(|s| sum.add(s));
        let norm = match self.config.optim.clip {
            Some(max) => optim::clip_global_norm(&mut first.grad, max),
            None => optim::global_norm(&first.grad),
        };
        if !sum.loss.is_finite() || !norm.is_finite() {
            return None;
        }
        let lr = self.config.optim.lr_at(self.state.step, self.config.steps);
        optim::update(
            &self.config.optim,
            &mut self.state.optim,
            &self.net.layout,
            &mut self.state.params,
            &first.grad,
            lr,
        );
        self.state.step += 1;
        self.state.epoch_pos += 1;
        let w = &mut self.state.window;
        w.loss += sum.loss;
        w.correct += sum.correct as u64;
        w.count += sum.count as u64;
        w.grad_norm += norm;
        w.updates += 1;
        Some((sum, norm))
    }

    /// Evaluates on the validation split, appends a log row, and updates the
    /// best parameters and the early-stopping count.
    pub fn evaluate_now(&mut self, seconds: f64) -> EvalRow {
        let valid =
            evaluate(&self.net, &self.state.params, &self.data.valid, self.config.batch_size * 2, self.config.threads);
        let w = std::mem::take(&mut self.state.window);
        let per = |x: f64, n: u64| if n == 0 { f64::NAN } else { x / n as f64 };
        let has_valid = valid.count > 0;
        let row = EvalRow {
            step: self.state.step,
            epoch: self.state.epoch,
            lr: self.config.optim.lr_at(self.state.step.saturating_sub(1), self.config.steps),
            train_loss: per(w.loss, w.count),
            train_acc: per(w.correct as f64, w.count),
            val_loss: if has_valid { valid.mean_loss() } else { f64::NAN },
            val_acc: if has_valid { valid.accuracy() } else { f64::NAN },
            grad_norm: per(w.grad_norm, w.updates),
            seconds,
        };
        if has_valid {
            let better = self.state.best.as_ref().is_none_or(|b| row.val_loss < b.val_loss);
            if better {
                self.state.best = Some(Best {
                    step: row.step,
                    val_loss: row.val_loss,
                    val_acc: row.val_acc,
                    params: self.state.params.clone(),
                });
                self.state.stale_evals = 0;
            } else {
                self.state.stale_evals += 1;
            }
        }
        self.state.log.push(row.clone());
        row
    }
}

/// Writes the evaluation log as CSV, atomically.
pub fn write_csv(path: &Path, log: &[EvalRow]) -> Result<(), Error> {
    let mut text = String::from(EvalRow::CSV_HEADER);
    text.push('\n');
    for row in log {
        text.push_str(&row.csv());
        text.push('\n');
    }
    crate::error::write_file(path, text.as_bytes())?;
    Ok(())
}

fn progress_bar(config: &TrainConfig, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(config.steps);
    let style = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {per_sec:>9} {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// Trains `config` on `data`: from scratch, or from the checkpoint when
/// resuming. Writes checkpoints and the CSV log as it goes.
pub fn run(config: &TrainConfig, data: &Dataset, opts: &RunOptions) -> Result<Outcome, Error> {
    let mut trainer = Trainer::new(config.clone(), data)?;
    if opts.resume
        && let Some(path) = &opts.checkpoint
        && path.exists()
    {
        trainer.state = load_checkpoint(path, config, data)?;
    }
    let started = Instant::now();
    let base_seconds = trainer.state.seconds;
    let elapsed = || base_seconds + started.elapsed().as_secs_f64();
    let bar = progress_bar(config, opts.progress);
    bar.set_position(trainer.state.step);
    let save = |state: &TrainState| -> Result<(), Error> {
        if let Some(path) = &opts.checkpoint {
            save_checkpoint(path, config, data, state)?;
        }
        if let Some(path) = &opts.csv_log {
            write_csv(path, &state.log)?;
        }
        Ok(())
    };
    let mut finish = trainer.state.finish;
    while finish.is_none() {
        if trainer.state.step >= config.steps {
            finish = Some(Finish::Completed);
            break;
        }
        if opts.interrupt_at.is_some_and(|at| trainer.state.step >= at) {
            trainer.state.seconds = elapsed();
            save(&trainer.state)?;
            bar.abandon();
            return Ok(finish_outcome(trainer, Finish::Interrupted, false));
        }
        let stepped = trainer.step();
        bar.set_position(trainer.state.step);
        let diverged = stepped.is_none();
        if diverged || trainer.state.step % config.eval_every == 0 || trainer.state.step == config.steps {
            let row = trainer.evaluate_now(elapsed());
            bar.set_message(format!(
                "loss {:.4} acc {:.3} | val loss {:.4} acc {:.3}",
                row.train_loss, row.train_acc, row.val_loss, row.val_acc
            ));
            if diverged {
                finish = Some(Finish::Diverged);
            } else if config.patience > 0 && trainer.state.stale_evals >= config.patience {
                finish = Some(Finish::EarlyStopped);
            }
            trainer.state.finish = finish;
            trainer.state.seconds = elapsed();
            save(&trainer.state)?;
        }
    }
    bar.finish();
    let finish = finish.expect("loop ends with a finish");
    Ok(finish_outcome(trainer, finish, true))
}

fn finish_outcome(trainer: Trainer<'_>, finish: Finish, test: bool) -> Outcome {
    let Trainer { config, net, data, state, .. } = trainer;
    let params = state.best.as_ref().map_or_else(|| state.params.clone(), |b| b.params.clone());
    let eval = |examples: &[Example]| {
        (test && !examples.is_empty()).then(|| evaluate(&net, &params, examples, config.batch_size * 2, config.threads))
    };
    let (valid, test) = (eval(&data.valid), eval(&data.test));
    Outcome { net, params, state, test, valid, finish }
}

/// How strongly the loss at a sequence's last step (the blank) can still be
/// moved by the top layer's state `k` steps earlier, for `k = 0..=min(max_k, last)`.
#[derive(Debug, Clone, PartialEq)]
pub struct StateGradients {
    /// `||dL/dh_{last-k}||`.
    pub h: Vec<f64>,
    /// `||dL/dc_{last-k}||` (LSTM cell state; empty for other cells).
    pub c: Vec<f64>,
}

/// [`StateGradients`] for each sequence. `L` is that sequence's own loss,
/// computed in f64 so that tiny norms do not underflow.
pub fn gradient_norms(net: &Net, params: &[f32], examples: &[Example], max_k: usize) -> Vec<StateGradients> {
    let params64: Vec<f64> = params.iter().map(|&v| v as f64).collect();
    let mut ws = Workspace::<f64>::new();
    let mut grad = vec![0.0f64; params64.len()];
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(64) {
        let batch = collate(chunk.iter().collect::<Vec<_>>().as_slice());
        // Scale 1 and independent sequences: row b of dL/dh is exactly the
        // gradient of sequence b's own loss.
        let opts = BackwardOptions { truncate: 0, record_dh_norms: true };
        bptt::loss_and_gradient(net, &params64, &batch, &mut ws, &mut grad, 1.0, &opts);
        for (b, e) in chunk.iter().enumerate() {
            let last = e.input.len() - 1;
            let at = |norms: &[f64]| -> Vec<f64> {
                if norms.is_empty() {
                    return Vec::new();
                }
                (0..=max_k.min(last)).map(|k| norms[(last - k) * batch.batch + b]).collect()
            };
            out.push(StateGradients { h: at(&ws.dh_norms), c: at(&ws.dc_norms) });
        }
    }
    out
}
