//! Training data: examples, the task description that goes into the model
//! file, splits, and turning examples into padded batches.
//!
//! Built-in tasks: [`pronoun`] (who does the pronoun refer to), [`synthetic`]
//! (`adding`, `copy`). User data: [`files`] (character LM from text, text
//! classification from CSV/JSONL, sequences from `.npy`).

pub mod files;
pub mod pronoun;
pub mod synthetic;

use lstmrt_format::{HeadTask, Vocabulary};

use crate::bptt::{Batch, BatchInputs, NO_CLASS, TargetValues};
use crate::net::Loss;
use crate::rng::{Rng, Sample};

/// One input sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Sequence {
    Tokens(Vec<u32>),
    /// `[steps, features]`.
    Dense {
        values: Vec<f32>,
        features: usize,
    },
}

impl Sequence {
    pub fn len(&self) -> usize {
        match self {
            Sequence::Tokens(ids) => ids.len(),
            Sequence::Dense { values, features } => values.len() / features,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the network should output for a sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A class read at the last step (classification).
    Class(u32),
    /// A class at every step, [`NO_CLASS`] where there is none (language
    /// models, the copy task).
    Classes(Vec<u32>),
    /// Real values read at the last step (regression).
    Values(Vec<f32>),
}

/// A sequence and its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub input: Sequence,
    pub target: Target,
}

impl Example {
    /// Number of positions that carry a target (and so a loss term).
    pub fn target_count(&self) -> usize {
        match &self.target {
            Target::Class(_) | Target::Values(_) => 1,
            Target::Classes(c) => c.iter().filter(|&&c| c != NO_CLASS).count(),
        }
    }
}

/// What goes into a layer-0 input vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataInput {
    Tokens { vocab: usize },
    Dense { features: usize },
}

/// The data file a task was read from, for the model's provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    pub path: String,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// Everything about a task that the network shape and the model file need.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// `pronoun`, `adding`, `copy`, `text-lm`, `classify`.
    pub name: String,
    pub input: DataInput,
    /// Width of the prediction (classes, or regression outputs).
    pub outputs: usize,
    pub loss: Loss,
    pub head_task: HeadTask,
    pub vocabulary: Option<Vocabulary>,
    /// Class names (classifiers), else empty.
    pub labels: Vec<String>,
    pub sources: Vec<SourceFile>,
    /// The task's own parameters, recorded in the model's provenance.
    pub params: Vec<(String, String)>,
}

/// A task with its train / validation / test examples.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub task: Task,
    pub train: Vec<Example>,
    pub valid: Vec<Example>,
    pub test: Vec<Example>,
}

/// Pads `examples` to a common length into one time-major batch.
///
/// # Panics
/// If `examples` is empty or mixes input or target kinds.
pub fn collate(examples: &[&Example]) -> Batch {
    assert!(!examples.is_empty(), "collate of no examples");
    let batch = examples.len();
    let steps = examples.iter().map(|e| e.input.len()).max().unwrap_or(0);
    let inputs = match &examples[0].input {
        Sequence::Tokens(_) => {
            let mut ids = vec![0u32; steps * batch];
            for (b, e) in examples.iter().enumerate() {
                let Sequence::Tokens(seq) = &e.input else { panic!("mixed input kinds in a batch") };
                for (t, &id) in seq.iter().enumerate() {
                    ids[t * batch + b] = id;
                }
            }
            BatchInputs::Tokens(ids)
        }
        Sequence::Dense { features, .. } => {
            let f = *features;
            let mut xs = vec![0.0f32; steps * batch * f];
            for (b, e) in examples.iter().enumerate() {
                let Sequence::Dense { values, .. } = &e.input else { panic!("mixed input kinds in a batch") };
                for (t, row) in values.chunks_exact(f).enumerate() {
                    xs[(t * batch + b) * f..][..f].copy_from_slice(row);
                }
            }
            BatchInputs::Dense(xs)
        }
    };
    // (position, index into the per-target data), sorted by position.
    let mut classes = Vec::new();
    let mut values = Vec::new();
    let mut positions = Vec::new();
    let mut order: Vec<(usize, usize, usize)> = Vec::new(); // (position, example, step)
    for (b, e) in examples.iter().enumerate() {
        let last = e.input.len() - 1;
        match &e.target {
            Target::Class(_) | Target::Values(_) => order.push((last * batch + b, b, last)),
            Target::Classes(c) => {
                for (t, &class) in c.iter().enumerate() {
                    if class != NO_CLASS {
                        order.push((t * batch + b, b, t));
                    }
                }
            }
        }
    }
    order.sort_unstable();
    for &(pos, b, t) in &order {
        positions.push(pos);
        match &examples[b].target {
            Target::Class(c) => classes.push(*c),
            Target::Classes(c) => classes.push(c[t]),
            Target::Values(v) => values.extend_from_slice(v),
        }
    }
    let targets = match examples[0].target {
        Target::Values(_) => TargetValues::Values(values),
        _ => TargetValues::Classes(classes),
    };
    Batch { steps, batch, inputs, positions, targets }
}

/// One epoch's minibatches: a seeded shuffle, then sorted by length within
/// windows of 20 batches (so a batch pads little), then the batches shuffled.
pub fn epoch_batches(lengths: &[usize], batch_size: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    for window in order.chunks_mut(batch_size * 20) {
        window.sort_by_key(|&i| lengths[i]);
    }
    let mut batches: Vec<Vec<usize>> = order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    rng.shuffle(&mut batches);
    batches
}

/// Splits `items` into train / validation / test after a seeded shuffle;
/// the validation and test parts get `valid` and `test` fractions (at least
/// one item each when the fraction is positive and there are 3+ items).
pub fn split<T>(mut items: Vec<T>, valid: f64, test: f64, rng: &mut Rng) -> (Vec<T>, Vec<T>, Vec<T>) {
    rng.shuffle(&mut items);
    let n = items.len();
    let count = |f: f64| if f > 0.0 && n >= 3 { ((n as f64 * f).round() as usize).max(1) } else { 0 };
    let (nv, nt) = (count(valid), count(test));
    let test_part = items.split_off(n - nt.min(n));
    let valid_part = items.split_off(items.len() - nv.min(items.len()));
    (items, valid_part, test_part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collate_pads_and_places_targets_at_each_sequence_end() {
        let a = Example { input: Sequence::Tokens(vec![1, 2, 3]), target: Target::Class(1) };
        let b = Example { input: Sequence::Tokens(vec![4]), target: Target::Class(0) };
        let batch = collate(&[&a, &b]);
        assert_eq!((batch.steps, batch.batch), (3, 2));
        assert_eq!(batch.inputs, BatchInputs::Tokens(vec![1, 4, 2, 0, 3, 0]));
        assert_eq!(batch.positions, vec![1, 4]); // b at t=0, a at t=2
        assert_eq!(batch.targets, TargetValues::Classes(vec![0, 1]));
    }

    #[test]
    fn collate_keeps_every_step_targets_in_position_order() {
        let a = Example { input: Sequence::Tokens(vec![1, 2]), target: Target::Classes(vec![5, NO_CLASS]) };
        let b = Example { input: Sequence::Tokens(vec![3, 4]), target: Target::Classes(vec![6, 7]) };
        let batch = collate(&[&a, &b]);
        assert_eq!(batch.positions, vec![0, 1, 3]);
        assert_eq!(batch.targets, TargetValues::Classes(vec![5, 6, 7]));
        assert_eq!(a.target_count() + b.target_count(), 3);
    }

    #[test]
    fn epoch_batches_cover_every_example_once() {
        let lengths: Vec<usize> = (0..103).map(|i| (i * 37) % 50).collect();
        let batches = epoch_batches(&lengths, 8, &mut Rng::new(5));
        let mut seen: Vec<usize> = batches.concat();
        seen.sort_unstable();
        assert_eq!(seen, (0..103).collect::<Vec<_>>());
        assert_eq!(batches, epoch_batches(&lengths, 8, &mut Rng::new(5)));
    }

    #[test]
    fn split_is_a_partition() {
        let (a, b, c) = split((0..10).collect(), 0.2, 0.1, &mut Rng::new(1));
        assert_eq!((a.len(), b.len(), c.len()), (7, 2, 1));
        let mut all = [a, b, c].concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}
