//! The classic long-memory problems (Hochreiter and Schmidhuber, 1997).
//!
//! - `adding`: each step is `[value, marker]` with values uniform in `[0, 1)`;
//!   two steps are marked (one in each half); the target, read at the last
//!   step, is the sum of the two marked values. A prediction counts as correct
//!   within 0.04. Always answering 1 gives a squared error of about 0.167.
//! - `copy`: `symbols` random symbols out of 8, then `length` blanks, a
//!   delimiter, and `symbols` more blanks during which the network must output
//!   the symbols in order. Chance is 1/8 per symbol.

use lstmrt_format::HeadTask;

use super::{DataInput, Dataset, Example, Sequence, Target, Task};
use crate::bptt::NO_CLASS;
use crate::net::Loss;
use crate::rng::{self, Rng, Sample};

/// Sizes of the three splits and the seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitSizes {
    pub train: usize,
    pub valid: usize,
    pub test: usize,
    pub seed: u64,
}

fn generate(sizes: &SplitSizes, mut make: impl FnMut(&mut Rng) -> Example) -> [Vec<Example>; 3] {
    let mut rng = rng::derive(sizes.seed, 0xadd);
    let mut split = |n: usize| (0..n).map(|_| make(&mut rng)).collect::<Vec<_>>();
    [split(sizes.train), split(sizes.valid), split(sizes.test)]
}

/// Tolerance within which an `adding` answer counts as correct.
pub const ADDING_TOLERANCE: f32 = 0.04;

/// The adding problem with sequences of `length` steps (at least 2).
pub fn adding(length: usize, sizes: &SplitSizes) -> Dataset {
    assert!(length >= 2, "adding needs at least 2 steps");
    let [train, valid, test] = generate(sizes, |rng| {
        let half = length / 2;
        let first = rng.below(half);
        let second = half + rng.below(length - half);
        let mut values = Vec::with_capacity(length * 2);
        let mut sum = 0.0f32;
        for t in 0..length {
            let v = rng.uniform() as f32;
            let marked = t == first || t == second;
            if marked {
                sum += v;
            }
            values.push(v);
            values.push(if marked { 1.0 } else { 0.0 });
        }
        Example { input: Sequence::Dense { values, features: 2 }, target: Target::Values(vec![sum]) }
    });
    Dataset {
        task: Task {
            name: "adding".into(),
            input: DataInput::Dense { features: 2 },
            outputs: 1,
            loss: Loss::SquaredError { tolerance: ADDING_TOLERANCE },
            head_task: HeadTask::Other,
            vocabulary: None,
            labels: Vec::new(),
            sources: Vec::new(),
            params: vec![("adding.length".into(), length.to_string())],
        },
        train,
        valid,
        test,
    }
}

/// Symbols of the copy task (outputs); the input alphabet adds a blank and a delimiter.
pub const COPY_SYMBOLS: usize = 8;
const BLANK: u32 = COPY_SYMBOLS as u32;
const DELIMITER: u32 = COPY_SYMBOLS as u32 + 1;

/// The copy problem: remember `symbols` symbols over `length` blank steps.
pub fn copy(length: usize, symbols: usize, sizes: &SplitSizes) -> Dataset {
    assert!(symbols >= 1, "copy needs at least one symbol");
    let [train, valid, test] = generate(sizes, |rng| {
        let seq: Vec<u32> = (0..symbols).map(|_| rng.below(COPY_SYMBOLS) as u32).collect();
        let mut input = seq.clone();
        input.extend(std::iter::repeat_n(BLANK, length));
        input.push(DELIMITER);
        input.extend(std::iter::repeat_n(BLANK, symbols));
        let mut target = vec![NO_CLASS; input.len()];
        let start = input.len() - symbols;
        target[start..].copy_from_slice(&seq);
        Example { input: Sequence::Tokens(input), target: Target::Classes(target) }
    });
    Dataset {
        task: Task {
            name: "copy".into(),
            input: DataInput::Tokens { vocab: COPY_SYMBOLS + 2 },
            outputs: COPY_SYMBOLS,
            loss: Loss::CrossEntropy,
            head_task: HeadTask::Other,
            vocabulary: None,
            labels: (0..COPY_SYMBOLS).map(|s| s.to_string()).collect(),
            sources: Vec::new(),
            params: vec![("copy.length".into(), length.to_string()), ("copy.symbols".into(), symbols.to_string())],
        },
        train,
        valid,
        test,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: SplitSizes = SplitSizes { train: 20, valid: 5, test: 5, seed: 3 };

    #[test]
    fn adding_marks_two_steps_one_per_half_and_targets_their_sum() {
        let d = adding(10, &SIZES);
        for e in &d.train {
            let Sequence::Dense { values, features: 2 } = &e.input else { panic!() };
            let marked: Vec<usize> = (0..10).filter(|&t| values[t * 2 + 1] == 1.0).collect();
            assert_eq!(marked.len(), 2);
            assert!(marked[0] < 5 && marked[1] >= 5);
            let sum = values[marked[0] * 2] + values[marked[1] * 2];
            assert_eq!(e.target, Target::Values(vec![sum]));
        }
    }

    #[test]
    fn copy_targets_repeat_the_first_symbols_after_the_delimiter() {
        let d = copy(6, 3, &SIZES);
        for e in &d.test {
            let (Sequence::Tokens(x), Target::Classes(y)) = (&e.input, &e.target) else { panic!() };
            assert_eq!(x.len(), 3 + 6 + 1 + 3);
            assert_eq!(x[9], DELIMITER);
            assert_eq!(&y[10..], &x[..3]);
            assert!(y[..10].iter().all(|&c| c == NO_CLASS));
        }
    }
}
