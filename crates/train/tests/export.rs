//! The model file the trainer writes, opened and run by lstmrt, computes what
//! the trainer's own forward pass computes; its metadata says what it is.

use lstm_train::bptt::{self, Batch, BatchInputs, TargetValues, Workspace};
use lstm_train::data::pronoun::{self, PronounConfig};
use lstm_train::data::{Dataset, Example, Sequence, synthetic};
use lstm_train::export::{self, Metrics};
use lstm_train::net::Cell;
use lstm_train::train::{self, Outcome, RunOptions, TrainConfig};
use lstmrt::Model;
use lstmrt_format::{DType, HeadActivation, HeadTask, Tokenizer};

fn small_pronoun() -> Dataset {
    pronoun::dataset(&PronounConfig {
        train_distance: (2, 12),
        test_distance: (5, 12),
        train: 64,
        valid: 16,
        test: 16,
        ..PronounConfig::default()
    })
}

fn train_briefly(config: TrainConfig, data: &Dataset) -> Outcome {
    train::run(&config, data, &RunOptions::default()).unwrap()
}

fn config(cell: Cell, proj: usize, layers: usize) -> TrainConfig {
    TrainConfig {
        cell,
        hidden: 8,
        proj,
        layers,
        embed: 5,
        steps: 6,
        eval_every: 3,
        batch_size: 8,
        ..TrainConfig::default()
    }
}

/// The trainer's outputs for one sequence at every step: softmax
/// probabilities (cross-entropy) or raw values (squared error).
fn trainer_outputs(outcome: &Outcome, example: &Example, softmax: bool) -> Vec<Vec<f32>> {
    let len = example.input.len();
    let inputs = match &example.input {
        Sequence::Tokens(ids) => BatchInputs::Tokens(ids.clone()),
        Sequence::Dense { values, .. } => BatchInputs::Dense(values.clone()),
    };
    let batch = Batch {
        steps: len,
        batch: 1,
        inputs,
        positions: (0..len).collect(),
        targets: TargetValues::Classes(vec![0; len]),
    };
    let mut ws = Workspace::<f32>::new();
    bptt::forward(&outcome.net, &outcome.params, &batch, &mut ws);
    let width = outcome.net.spec.prediction_size();
    ws.predictions
        .chunks_exact(width)
        .map(|row| {
            let mut v = row.to_vec();
            if softmax {
                lstmrt::text::softmax(&mut v);
            }
            v
        })
        .collect()
}

/// lstmrt's outputs for the same sequence: run, then the head at every step.
fn lstmrt_outputs(model: &Model, example: &Example) -> Vec<Vec<f32>> {
    let xs = match &example.input {
        Sequence::Tokens(ids) => model.token_inputs(ids).unwrap(),
        Sequence::Dense { values, .. } => values.clone(),
    };
    let mut state = model.new_state();
    let out = model.run(&mut state, &xs).unwrap().to_vec();
    let width = model.architecture().sequence_output_size();
    let n = model.metadata().head.as_ref().unwrap().out_features as usize;
    out.chunks_exact(width)
        .map(|h| {
            let mut y = vec![0.0; n];
            model.apply_head(h, &mut y).unwrap();
            y
        })
        .collect()
}

fn assert_same_outputs(outcome: &Outcome, data: &Dataset, model: &Model, softmax: bool, tol: f32) {
    let mut worst = 0.0f32;
    for example in data.test.iter().take(6) {
        let ours = trainer_outputs(outcome, example, softmax);
        let theirs = lstmrt_outputs(model, example);
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().flatten().zip(theirs.iter().flatten()) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst <= tol, "{:?}: max difference {worst:e} > {tol:e}", outcome.net.spec.cell);
}

fn write(outcome: &Outcome, data: &Dataset, config: &TrainConfig, dtype: DType) -> Model {
    let metrics = Metrics { steps: outcome.state.step, test: outcome.test, ..Metrics::default() };
    let meta = export::metadata(&outcome.net, &data.task, config, &metrics);
    let dir = std::env::temp_dir().join(format!("lstm-train-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{:?}-{}-{}.lstm", config.cell, config.layers, dtype.name()));
    export::write_model(&path, &meta, &outcome.net, &outcome.params, dtype).unwrap();
    let model = Model::open(&path).unwrap();
    model.verify().unwrap();
    std::fs::remove_file(&path).ok();
    model
}

#[test]
fn written_lstm_with_projection_and_two_layers_matches_trainer_forward() {
    let data = small_pronoun();
    let config = config(Cell::Lstm, 5, 2);
    let outcome = train_briefly(config.clone(), &data);
    let model = write(&outcome, &data, &config, DType::F32);
    assert_eq!(model.architecture().proj_size, 5);
    assert_same_outputs(&outcome, &data, &model, true, 1e-5);
}

#[test]
fn written_gru_and_rnn_match_trainer_forward() {
    let data = small_pronoun();
    for cell in [Cell::Gru, Cell::Rnn] {
        let config = config(cell, 0, 2);
        let outcome = train_briefly(config.clone(), &data);
        let model = write(&outcome, &data, &config, DType::F32);
        assert_same_outputs(&outcome, &data, &model, true, 1e-5);
    }
}

#[test]
fn written_regression_model_matches_trainer_forward() {
    let data = synthetic::adding(12, &synthetic::SplitSizes { train: 64, valid: 8, test: 8, seed: 2 });
    let config = config(Cell::Lstm, 0, 1);
    let outcome = train_briefly(config.clone(), &data);
    let model = write(&outcome, &data, &config, DType::F32);
    assert_eq!(model.metadata().head.as_ref().unwrap().activation, HeadActivation::None);
    assert_same_outputs(&outcome, &data, &model, false, 1e-5);
}

#[test]
fn f16_model_stays_close_to_trainer_forward() {
    let data = small_pronoun();
    let config = config(Cell::Lstm, 0, 1);
    let outcome = train_briefly(config.clone(), &data);
    let model = write(&outcome, &data, &config, DType::F16);
    assert_eq!(model.dtype(), DType::F16);
    // f16 keeps 11 significant bits: weights are off by up to ~5e-4 relative.
    assert_same_outputs(&outcome, &data, &model, true, 5e-3);
}

#[test]
fn int8_model_stays_close_to_trainer_forward() {
    let data = small_pronoun();
    let config = config(Cell::Lstm, 0, 1);
    let outcome = train_briefly(config.clone(), &data);
    let model = write(&outcome, &data, &config, DType::I8);
    assert_eq!(model.dtype(), DType::I8);
    // Per-row int8 weights and u8 activations: a few 1e-3 on PyTorch-sized weights.
    assert_same_outputs(&outcome, &data, &model, true, 2e-2);
}

#[test]
fn pronoun_model_file_carries_vocabulary_head_labels_and_provenance() {
    let data = small_pronoun();
    let config = config(Cell::Lstm, 0, 1);
    let outcome = train_briefly(config.clone(), &data);
    let model = write(&outcome, &data, &config, DType::F32);
    let meta = model.metadata();
    let vocab = meta.vocabulary.as_ref().unwrap();
    assert_eq!(vocab.tokenizer, Tokenizer::Word);
    assert_eq!(vocab.tokens[vocab.unknown.unwrap() as usize], "<unk>");
    let head = meta.head.as_ref().unwrap();
    assert_eq!((head.task, head.labels.clone()), (HeadTask::Classifier, vec!["he".to_string(), "she".to_string()]));
    assert_eq!(meta.embedding.as_ref().unwrap().num_embeddings as usize, vocab.tokens.len());
    let p = &meta.provenance;
    assert!(p.producer.starts_with("lstm-train "));
    assert_eq!(p.get("task"), Some("pronoun"));
    assert_eq!(p.get("train.cell"), Some("lstm"));
    assert_eq!(p.get("train.hidden"), Some("8"));
    assert_eq!(p.get("pronoun.train_distance"), Some("2..=12"));
    let acc: f64 = p.get("result.test_accuracy").unwrap().parse().unwrap();
    assert!((acc - outcome.test.unwrap().accuracy()).abs() < 1e-6);
    // Unknown words in typed text map to the unknown token rather than failing.
    let ids = model.tokenize("Zebedee arrived yesterday. Then").unwrap();
    assert_eq!(ids[0], vocab.unknown.unwrap());
}
