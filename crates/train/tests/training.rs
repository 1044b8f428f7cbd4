//! Runs are deterministic for a seed, resume exactly from checkpoints, stop
//! early when validation stalls, and report divergence.

use std::path::PathBuf;

use lstm_train::data::Dataset;
use lstm_train::data::pronoun::{self, PronounConfig};
use lstm_train::data::synthetic::{self, SplitSizes};
use lstm_train::error::Error;
use lstm_train::net::{Cell, Init};
use lstm_train::optim::{OptimConfig, Optimizer};
use lstm_train::train::{self, Finish, RunOptions, TrainConfig};

fn data() -> Dataset {
    pronoun::dataset(&PronounConfig {
        train_distance: (2, 10),
        test_distance: (4, 10),
        train: 96,
        valid: 16,
        test: 16,
        ..PronounConfig::default()
    })
}

fn config() -> TrainConfig {
    TrainConfig { hidden: 8, embed: 6, steps: 12, eval_every: 4, batch_size: 8, threads: 2, ..TrainConfig::default() }
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lstm-train-training-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn two_runs_with_the_same_seed_give_identical_weights() {
    let data = data();
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        let config = TrainConfig { cell, ..config() };
        let a = train::run(&config, &data, &RunOptions::default()).unwrap();
        let b = train::run(&config, &data, &RunOptions::default()).unwrap();
        assert_eq!(a.params, b.params, "{cell:?}");
        assert_eq!(a.state.optim, b.state.optim);
        let other = train::run(&TrainConfig { seed: 2, ..config }, &data, &RunOptions::default()).unwrap();
        assert_ne!(a.params, other.params);
    }
}

#[test]
fn one_thread_and_two_threads_agree_to_rounding() {
    let data = data();
    let one = train::run(&TrainConfig { threads: 1, ..config() }, &data, &RunOptions::default()).unwrap();
    let two = train::run(&config(), &data, &RunOptions::default()).unwrap();
    let worst = lstmrt::reference::max_abs_diff(&one.params, &two.params);
    assert!(worst < 1e-4, "{worst}");
}

#[test]
fn interrupted_run_resumes_to_bit_identical_weights() {
    let data = data();
    let config = config();
    let straight = train::run(&config, &data, &RunOptions::default()).unwrap();

    let checkpoint = temp("resume.ckpt");
    let csv = temp("resume.csv");
    // Interrupt between evaluations, so the checkpoint holds a half-filled
    // metrics window and a position inside an epoch.
    let opts = RunOptions {
        checkpoint: Some(checkpoint.clone()),
        csv_log: Some(csv.clone()),
        resume: true,
        interrupt_at: Some(7),
        ..RunOptions::default()
    };
    let first = train::run(&config, &data, &opts).unwrap();
    assert_eq!((first.finish, first.state.step), (Finish::Interrupted, 7));
    let resumed = train::run(&config, &data, &RunOptions { interrupt_at: None, ..opts }).unwrap();
    assert_eq!(resumed.finish, Finish::Completed);
    assert_eq!(resumed.params, straight.params);
    assert_eq!(resumed.state.optim, straight.state.optim);
    let strip = |log: &[train::EvalRow]| log.iter().map(|r| (r.step, r.train_loss, r.val_loss)).collect::<Vec<_>>();
    assert_eq!(strip(&resumed.state.log), strip(&straight.state.log));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 1 + 3, "{text}");
    assert!(text.starts_with(train::EvalRow::CSV_HEADER));
}

#[test]
fn resume_refuses_a_checkpoint_made_with_other_options_or_data() {
    let data = data();
    let checkpoint = temp("mismatch.ckpt");
    let opts = RunOptions { checkpoint: Some(checkpoint.clone()), resume: true, ..RunOptions::default() };
    train::run(&config(), &data, &opts).unwrap();
    let other = TrainConfig { hidden: 9, ..config() };
    let err = train::run(&other, &data, &opts).unwrap_err();
    assert!(matches!(&err, Error::Input(m) if m.contains("other options")), "{err}");
    let other_data = pronoun::dataset(&PronounConfig { seed: 5, train: 96, valid: 16, test: 16, ..Default::default() });
    let err = train::run(&config(), &other_data, &opts).unwrap_err();
    assert!(matches!(&err, Error::Input(m) if m.contains("other data")), "{err}");
    std::fs::write(&checkpoint, b"not a checkpoint").unwrap();
    let err = train::run(&config(), &data, &opts).unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn training_stops_early_when_validation_stops_improving() {
    let data = data();
    // Updates far below f32 resolution leave the weights unchanged, so the
    // validation loss never improves after the first evaluation.
    let optim = OptimConfig { optimizer: Optimizer::Sgd, lr: 1e-20, clip: None, ..OptimConfig::default() };
    let config = TrainConfig { optim, steps: 100, eval_every: 1, patience: 2, ..config() };
    let out = train::run(&config, &data, &RunOptions::default()).unwrap();
    assert_eq!(out.finish, Finish::EarlyStopped);
    assert_eq!(out.state.step, 3);
    assert_eq!(out.state.best.as_ref().unwrap().step, 1);
}

#[test]
fn early_stopping_keeps_the_best_parameters() {
    let data = data();
    let config = TrainConfig { steps: 20, eval_every: 2, ..config() };
    let out = train::run(&config, &data, &RunOptions::default()).unwrap();
    let best = out.state.best.as_ref().unwrap();
    assert_eq!(out.params, best.params);
    let min = out.state.log.iter().map(|r| r.val_loss).fold(f64::INFINITY, f64::min);
    assert_eq!(best.val_loss, min);
}

#[test]
fn exploding_run_without_clipping_reports_divergence() {
    let data = synthetic::adding(40, &SplitSizes { train: 64, valid: 8, test: 8, seed: 1 });
    let optim = OptimConfig { optimizer: Optimizer::Sgd, lr: 1e6, clip: None, ..OptimConfig::default() };
    let config = TrainConfig {
        cell: Cell::Rnn,
        init: Init { recurrent_scale: 6.0, forget_bias: 0.0 },
        optim,
        steps: 200,
        ..config()
    };
    let out = train::run(&config, &data, &RunOptions::default()).unwrap();
    assert_eq!(out.finish, Finish::Diverged);
    assert!(out.state.step < 200);
    assert!(out.params.iter().all(|v| v.is_finite()), "the non-finite update is not applied");
}

#[test]
fn all_built_in_tasks_train() {
    let sizes = SplitSizes { train: 64, valid: 8, test: 8, seed: 1 };
    for data in [synthetic::adding(10, &sizes), synthetic::copy(5, 3, &sizes), data()] {
        let out = train::run(&TrainConfig { steps: 4, ..config() }, &data, &RunOptions::default()).unwrap();
        assert_eq!(out.finish, Finish::Completed, "{}", data.task.name);
        assert!(out.test.unwrap().count > 0);
    }
}
