//! Writing the trained network as an lstmrt model file: architecture,
//! embedding, head, vocabulary and provenance, through [`lstmrt::ModelWriter`].

use std::path::Path;

use lstmrt::ModelWriter;
use lstmrt_format::{DType, Embedding, Head, HeadActivation, Metadata, Provenance};

use crate::bptt::LossSum;
use crate::data::Task;
use crate::error::Error;
use crate::net::{Input, Loss, Net, to_weights};
use crate::train::{Finish, TrainConfig};

/// The `producer` recorded in every model file this crate writes.
pub fn producer() -> String {
    format!("lstm-train {}", env!("CARGO_PKG_VERSION"))
}

/// Final numbers recorded in the provenance.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub steps: u64,
    pub finish: Option<Finish>,
    pub valid: Option<LossSum>,
    pub test: Option<LossSum>,
    pub seconds: f64,
}

/// The metadata of the model file for `net` trained on `task`.
pub fn metadata(net: &Net, task: &Task, config: &TrainConfig, metrics: &Metrics) -> Metadata {
    let spec = &net.spec;
    let mut meta = Metadata::new(spec.architecture());
    if let Input::Tokens { vocab, embed } = spec.input {
        if embed > 0 {
            meta.embedding = Some(Embedding { num_embeddings: vocab as u32 });
        }
        meta.vocabulary = task.vocabulary.clone().filter(|v| v.tokens.len() == vocab);
    }
    if let Some(head) = spec.head {
        meta.head = Some(Head {
            out_features: head.out as u32,
            activation: match spec.loss {
                Loss::CrossEntropy => HeadActivation::Softmax,
                Loss::SquaredError { .. } => HeadActivation::None,
            },
            task: task.head_task,
            labels: task.labels.clone(),
        });
    }
    meta.provenance = provenance(task, config, metrics);
    meta
}

fn provenance(task: &Task, config: &TrainConfig, metrics: &Metrics) -> Provenance {
    let mut p = Provenance {
        producer: producer(),
        source_file: task.sources.first().map(|s| s.path.clone()).unwrap_or_default(),
        entries: Vec::new(),
    };
    p.push("task", task.name.clone());
    for (i, s) in task.sources.iter().enumerate() {
        let suffix = if i == 0 { String::new() } else { format!(".{i}") };
        p.push(format!("data.file{suffix}"), s.path.clone());
        p.push(format!("data.sha256{suffix}"), s.sha256.clone());
    }
    for (k, v) in &task.params {
        p.push(k.clone(), v.clone());
    }
    let o = &config.optim;
    let hyper = [
        ("cell", config.cell.name().to_string()),
        ("hidden", config.hidden.to_string()),
        ("proj", config.proj.to_string()),
        ("layers", config.layers.to_string()),
        ("embed", config.embed.to_string()),
        ("optimizer", format!("{:?}", o.optimizer).to_lowercase()),
        ("lr", o.lr.to_string()),
        ("schedule", format!("{:?}", o.schedule).to_lowercase()),
        ("warmup", o.warmup.to_string()),
        ("momentum", o.momentum.to_string()),
        ("weight_decay", o.weight_decay.to_string()),
        ("clip", o.clip.map_or("none".into(), |c| c.to_string())),
        ("batch_size", config.batch_size.to_string()),
        ("steps", config.steps.to_string()),
        ("eval_every", config.eval_every.to_string()),
        ("patience", config.patience.to_string()),
        ("truncate", config.truncate.to_string()),
        ("threads", config.threads.to_string()),
        ("seed", config.seed.to_string()),
        ("init.recurrent_scale", config.init.recurrent_scale.to_string()),
        ("init.forget_bias", config.init.forget_bias.to_string()),
    ];
    for (k, v) in hyper {
        p.push(format!("train.{k}"), v);
    }
    p.push("result.steps", metrics.steps.to_string());
    if let Some(f) = metrics.finish {
        p.push("result.finish", format!("{f:?}").to_lowercase());
    }
    for (name, m) in [("valid", metrics.valid), ("test", metrics.test)] {
        if let Some(m) = m
            && m.count > 0
        {
            p.push(format!("result.{name}_loss"), format!("{:.6}", m.mean_loss()));
            p.push(format!("result.{name}_accuracy"), format!("{:.6}", m.accuracy()));
            p.push(format!("result.{name}_count"), m.count.to_string());
        }
    }
    p.push("result.train_seconds", format!("{:.1}", metrics.seconds));
    p
}

/// Writes the model file atomically with weight matrices in `dtype`.
pub fn write_model(path: &Path, meta: &Metadata, net: &Net, params: &[f32], dtype: DType) -> Result<(), Error> {
    let weights = to_weights(&net.spec, &net.layout, params);
    ModelWriter::new(meta, &weights)
        .dtype(dtype)
        .write(path)
        .map_err(|e| Error::failed(format!("{}: cannot write the model: {e}", path.display())))
}
