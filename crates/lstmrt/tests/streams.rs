//! `StreamBatch`: each stream gives what it alone gives through `step`,
//! whatever the other streams do (random joins, leaves, resets and idle
//! steps), within 1e-6 relative for float weights and bit for bit for int8,
//! on every tier; and every refusal leaves every stream as it was.

use lstmrt_testkit as common;

use common::{Rng, random_weights, rel_diff};
use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt::{Error, Isa, Model, ModelWriter, State, StreamBatch, StreamId};
use proptest::prelude::*;

fn model_bytes(cell: CellKind, hidden: usize, layers: usize, proj: usize, dtype: DType, seed: u64) -> Vec<u8> {
    let mut arch = Architecture::new(cell, 5, hidden, layers);
    arch.proj_size = proj as u32;
    let meta = Metadata::new(arch);
    let weights = random_weights(&meta, &mut Rng::new(seed), 2.0);
    ModelWriter::new(&meta, &weights).dtype(dtype).to_bytes().unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    Join,
    Leave(usize),
    Reset(usize),
    /// Step the live streams whose bit is set (an empty set: no call).
    Step(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Join),
        1 => (0..64usize).prop_map(Op::Leave),
        1 => (0..64usize).prop_map(Op::Reset),
        6 => any::<u64>().prop_map(Op::Step),
    ]
}

/// Runs `ops` on a stream batch and, beside it, on one `State` per stream
/// stepped alone; compares every output and state.
fn check(model: &Model, ops: &[Op], capacity: usize, threads: usize, exact: bool) {
    let input = model.architecture().input_size as usize;
    let mut streams = model.new_stream_batch(capacity).unwrap();
    streams.set_threads(threads);
    let mut alone: Vec<(StreamId, State)> = Vec::new();
    let mut rng = Rng::new(ops.len() as u64);
    // bf16 with dot products: the batch's blocked paths sum in another
    // order than a stream alone, and an h one f32 ulp apart can round to a
    // neighbouring bf16 at the next step and carry on (1.0e-4 measured here).
    let tol = if model.dtype() == DType::BF16 && lstmrt::bf16_dot(model.isa()) { 1e-3 } else { 1e-6 };
    let same = |got: &[f32], want: &[f32], what: &str| {
        if exact {
            assert_eq!(got, want, "{what}");
        } else {
            let d = rel_diff(got, want);
            assert!(d <= tol, "{what}: differs by {d}");
        }
    };
    for op in ops {
        match *op {
            Op::Join => match streams.join() {
                Ok(id) => alone.push((id, model.new_state())),
                Err(e) => assert_eq!(alone.len(), capacity, "{e}"),
            },
            Op::Leave(i) if !alone.is_empty() => {
                let (id, _) = alone.remove(i % alone.len());
                streams.leave(id).unwrap();
                assert!(streams.reset(id).is_err(), "a stream that left is refused");
            }
            Op::Reset(i) if !alone.is_empty() => {
                let k = i % alone.len();
                streams.reset(alone[k].0).unwrap();
                alone[k].1.reset();
            }
            Op::Step(mask) => {
                let picked: Vec<usize> = (0..alone.len()).filter(|&k| mask >> (k % 64) & 1 == 1).collect();
                if picked.is_empty() {
                    continue;
                }
                // In an order of their own, not the batch's.
                let picked: Vec<usize> = picked.iter().rev().copied().collect();
                let ids: Vec<StreamId> = picked.iter().map(|&k| alone[k].0).collect();
                let xs = rng.vec(ids.len() * input, 2.0);
                let out = streams.step(model, &ids, &xs).unwrap().to_vec();
                let p = out.len() / ids.len();
                for (n, &k) in picked.iter().enumerate() {
                    let want = model.step(&mut alone[k].1, &xs[n * input..][..input]).unwrap();
                    same(&out[n * p..][..p], want, &format!("output of {}", ids[n]));
                }
            }
            _ => {}
        }
        assert_eq!(streams.len(), alone.len());
    }
    for (id, state) in &alone {
        let mine = streams.stream_state(model, *id).unwrap();
        same(mine.h(), state.h(), "final h");
        same(mine.c(), state.c(), "final c");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn each_stream_gets_what_it_gets_alone(ops in proptest::collection::vec(op(), 1..60), seed in 0u64..1000) {
        let cases = [
            (CellKind::Lstm, 40, 2, 0),
            (CellKind::Lstm, 33, 1, 7),
            (CellKind::Gru, 24, 2, 0),
            (CellKind::RnnTanh, 17, 1, 0),
        ];
        let (cell, hidden, layers, proj) = cases[seed as usize % cases.len()];
        for (dtype, exact) in [(DType::F32, false), (DType::I8, true)] {
            let bytes = model_bytes(cell, hidden, layers, proj, dtype, seed);
            for isa in Isa::available_tiers() {
                let model = Model::from_bytes(&bytes).unwrap().with_isa(isa).unwrap();
                check(&model, &ops, 9, 1 + (seed as usize % 2), exact);
            }
        }
    }
}

/// A step plan of 33 joins (one too many: refused), steps with idle
/// streams, resets, leaves and joins again.
fn thirty_two_stream_ops() -> Vec<Op> {
    let mut ops = vec![Op::Join; 33];
    for i in 0..40u64 {
        ops.push(Op::Step(!0 ^ (1 << (i % 32)) ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        if i % 7 == 3 {
            ops.push(Op::Reset(i as usize));
            ops.push(Op::Leave(i as usize * 5));
            ops.push(Op::Join);
        }
    }
    ops
}

lstmrt_testkit::per_tier! {
    /// Many streams at once: the batch kernels' row blocks (6 rows) and
    /// threads (panels split: 272 units are 17 panels).
    fn thirty_two_streams_with_idle_ones_and_threads(isa: Isa) {
        for dtype in [DType::F32, DType::BF16] {
            let model = Model::from_bytes(&model_bytes(CellKind::Lstm, 272, 2, 0, dtype, 5)).unwrap().with_isa(isa).unwrap();
            for threads in [1, 2] {
                check(&model, &thirty_two_stream_ops(), 32, threads, false);
            }
        }
    }
}

lstmrt_testkit::per_int8_form! {
    /// The same with int8 weights: bit for bit with each stream alone.
    fn thirty_two_int8_streams_with_idle_ones_and_threads(k: Int8Kernels) {
        let model = k.apply(Model::from_bytes(&model_bytes(CellKind::Lstm, 272, 2, 0, DType::I8, 5)).unwrap());
        for threads in [1, 2] {
            check(&model, &thirty_two_stream_ops(), 32, threads, true);
        }
    }
}

fn streams_of_two(model: &Model) -> (StreamBatch, StreamId, StreamId) {
    let mut streams = model.new_stream_batch(2).unwrap();
    let (a, b) = (streams.join().unwrap(), streams.join().unwrap());
    streams.step(model, &[a, b], &[0.5; 10]).unwrap();
    (streams, a, b)
}

#[test]
fn refusals_say_what_is_wrong_and_change_nothing() {
    let model = Model::from_bytes(&model_bytes(CellKind::Lstm, 8, 1, 0, DType::F32, 1)).unwrap();
    let (mut streams, a, b) = streams_of_two(&model);
    let before = |s: &StreamBatch| [a, b].map(|id| s.stream_state(&model, id).unwrap().to_bytes());
    let saved = before(&streams);
    let err = streams.join().unwrap_err();
    assert_eq!(err.to_string(), "stream batch: all 2 streams are in use");
    let cases: [(&[StreamId], usize, &str); 3] = [
        (&[], 0, "stream batch: a step needs at least one stream"),
        (&[a, b, a], 15, "stream batch: stream 0.0 is given twice in one step"),
        (&[b, a], 9, "stream inputs has 9 values, expected 10 (2 streams x input size 5)"),
    ];
    for (ids, n, message) in cases {
        let err = streams.step(&model, ids, &vec![1.0; n]).unwrap_err();
        assert_eq!(err.to_string(), message);
        assert_eq!(before(&streams), saved);
    }
    streams.leave(a).unwrap();
    let c = streams.join().unwrap();
    assert_eq!(c.index(), a.index(), "the place is reused");
    let err = streams.step(&model, &[b, a], &[1.0; 10]).unwrap_err();
    assert_eq!(err.to_string(), "stream batch: stream 0.0 has left");
    assert!(matches!(err, Error::Stream { .. }));
    assert!(streams.leave(a).is_err() && streams.reset(a).is_err());
    assert_eq!(streams.stream_state(&model, b).unwrap().to_bytes(), saved[1], "b untouched");
    assert_eq!(streams.stream_state(&model, c).unwrap().h(), &[0.0; 8], "a new stream starts from zero");
    let mut elsewhere = model.new_stream_batch(100).unwrap();
    let far = (0..100).map(|_| elsewhere.join().unwrap()).last().unwrap();
    let err = streams.reset(far).unwrap_err();
    assert_eq!(err.to_string(), "stream batch: stream 99.0 does not exist (capacity 2)");
    // Another model's shape.
    let other = Model::from_bytes(&model_bytes(CellKind::Gru, 8, 1, 0, DType::F32, 1)).unwrap();
    assert!(matches!(streams.step(&other, &[b], &[1.0; 5]), Err(Error::StateMismatch { .. })));
    assert!(streams.set_stream_state(b, &other.new_state()).is_err());
    assert_eq!(streams.stream_state(&model, b).unwrap().to_bytes(), saved[1]);
}

#[test]
fn a_stream_saved_and_restored_goes_on_where_it_was() {
    let model = Model::from_bytes(&model_bytes(CellKind::Gru, 16, 2, 0, DType::F32, 3)).unwrap();
    let (mut streams, a, b) = streams_of_two(&model);
    let bytes = streams.stream_state(&model, a).unwrap().to_bytes();
    let want = streams.step(&model, &[a], &[0.25; 5]).unwrap().to_vec();
    streams.leave(a).unwrap();
    let restored = State::from_bytes(&model, &bytes).unwrap();
    let a2 = streams.join_from(&restored).unwrap();
    assert_eq!(streams.step(&model, &[a2], &[0.25; 5]).unwrap(), want);
    // set_stream_state puts b where a was.
    streams.set_stream_state(b, &restored).unwrap();
    assert_eq!(streams.step(&model, &[b], &[0.25; 5]).unwrap(), want);
    assert!(streams.join_from(&model.new_batch_state(2).unwrap()).is_err(), "a two-row state is not one stream's");
}
