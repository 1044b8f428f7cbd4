//! Once a `State` (or a `StreamBatch`) exists, stepping and running never allocate: a counting
//! global allocator proves it for every kind of model, single- and
//! multi-threaded.
//!
//! The allocator counts every thread's allocations (worker threads included),
//! so this file runs without the test harness (`harness = false` in
//! Cargo.toml): nothing else runs, prints or allocates while it counts.

use lstmrt_testkit as common;

use common::alloc::{CountingAllocator, allocations_during};
use common::{Rng, random_weights};
use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt::{Int8Dot, Isa, Model, ModelWriter};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn model(cell: CellKind, hidden: usize, layers: usize, configure: impl FnOnce(&mut Architecture)) -> Model {
    model_in(DType::F16, cell, hidden, layers, configure)
}

fn model_in(
    dtype: DType,
    cell: CellKind,
    hidden: usize,
    layers: usize,
    configure: impl FnOnce(&mut Architecture),
) -> Model {
    let mut arch = Architecture::new(cell, 24, hidden, layers);
    configure(&mut arch);
    let meta = Metadata::new(arch);
    let w = random_weights(&meta, &mut Rng::new(5), 1.0);
    Model::from_bytes(&ModelWriter::new(&meta, &w).dtype(dtype).to_bytes().unwrap()).unwrap()
}

/// `m` on every tier this CPU has (float weights) or with every int8 product
/// it has (int8 weights), as the stamped suites run them.
fn on_every_kernel(m: &Model) -> Vec<Model> {
    let bytes = ModelWriter::new(m.metadata(), &m.weights()).dtype(m.dtype()).to_bytes().unwrap();
    let fresh = || Model::from_bytes(&bytes).unwrap();
    if m.dtype() == DType::I8 {
        Int8Dot::ALL
            .into_iter()
            .filter(|d| d.available())
            .map(|d| fresh().with_isa(d.isa()).unwrap().with_int8_dot(d).unwrap())
            .collect()
    } else {
        Isa::available_tiers().into_iter().map(|isa| fresh().with_isa(isa).unwrap()).collect()
    }
}

fn step_run_and_run_into_never_allocate_once_the_state_exists() {
    let mut models = Vec::new();
    // f16 needs the widening buffers, int8 the quantizing ones.
    for dtype in [DType::F16, DType::I8] {
        models.extend([
            ("lstm 3 layers", model_in(dtype, CellKind::Lstm, 40, 3, |_| {})),
            ("lstm projection", model_in(dtype, CellKind::Lstm, 300, 2, |a| a.proj_size = 20)),
            ("gru onnx form", model_in(dtype, CellKind::Gru, 300, 1, |a| a.linear_before_reset = false)),
            ("rnn relu", model_in(dtype, CellKind::RnnRelu, 33, 2, |_| {})),
            ("bidirectional lstm", model_in(dtype, CellKind::Lstm, 40, 2, |a| a.bidirectional = true)),
        ]);
    }
    let models: Vec<(&str, Model)> =
        models.iter().flat_map(|(name, m)| on_every_kernel(m).into_iter().map(move |k| (*name, k))).collect();
    for (name, m) in &models {
        for (batch, threads) in [(1, 1), (7, 1), (1, 2), (7, 2)] {
            let arch = m.architecture();
            let steps = 300; // more than one chunk
            let xs = vec![0.25f32; steps * batch * arch.input_size as usize];
            let mut out = vec![0.0f32; steps * batch * arch.sequence_output_size()];
            let mut state = m.new_batch_state(batch).unwrap();
            state.set_threads(threads);
            // Longer sequences than any before need room only in bidirectional stacks.
            state.reserve(m, steps);
            let what = format!(
                "{name} {} on {} ({}), batch {batch}, {threads} threads",
                m.dtype().name(),
                m.isa(),
                m.int8_dot()
            );
            let n = allocations_during(|| {
                m.run_into(&mut state, &xs, &mut out).unwrap();
                m.run(&mut state, &xs).unwrap();
                if !arch.bidirectional {
                    for x in xs.chunks(batch * arch.input_size as usize).take(50) {
                        m.step(&mut state, x).unwrap();
                    }
                }
            });
            assert_eq!(n, 0, "{what}: {n} allocations");
        }
    }
}

fn stream_batches_step_and_lengths_rerun_without_allocating() {
    for dtype in [DType::F16, DType::I8] {
        for threads in [1, 2] {
            let m = model_in(dtype, CellKind::Lstm, 300, 2, |_| {});
            let mut streams = m.new_stream_batch(32).unwrap();
            let ids: Vec<_> = (0..32).map(|_| streams.join().unwrap()).collect();
            streams.set_threads(threads);
            let xs = vec![0.5f32; 32 * 24];
            let n = allocations_during(|| {
                for k in [32, 1, 7, 20] {
                    streams.step(&m, &ids[32 - k..], &xs[..k * 24]).unwrap();
                }
                streams.leave(ids[3]).unwrap();
                let id = streams.join().unwrap();
                streams.reset(id).unwrap();
            });
            assert_eq!(n, 0, "stream batch {}, {threads} threads: {n} allocations", dtype.name());
            // Lengths: the second run of a batch no larger than the first.
            let mut state = m.new_batch_state(5).unwrap();
            state.set_threads(threads);
            let xs = vec![0.25f32; 40 * 5 * 24];
            let mut out = vec![0.0f32; 40 * 5 * 300];
            m.run_lengths_into(&mut state, &xs, &[40, 3, 0, 17, 40], &mut out).unwrap();
            let n = allocations_during(|| m.run_lengths_into(&mut state, &xs, &[1, 40, 39, 0, 2], &mut out).unwrap());
            assert_eq!(n, 0, "lengths {}, {threads} threads: {n} allocations", dtype.name());
        }
    }
}

fn a_fresh_state_steps_without_allocating() {
    let m = model(CellKind::Lstm, 64, 2, |_| {});
    let mut state = m.new_state();
    let x = vec![0.5f32; 24];
    let n = allocations_during(|| {
        for _ in 0..100 {
            m.step(&mut state, &x).unwrap();
        }
    });
    assert_eq!(n, 0);
}

fn chunks_never_allocate_once_the_chunk_state_exists() {
    let meta = common::small_vad(CellKind::Lstm);
    let w = random_weights(&meta, &mut Rng::new(6), 1.0);
    for dtype in [DType::F32, DType::F16, DType::I8] {
        let m = Model::from_bytes(&ModelWriter::new(&meta, &w).dtype(dtype).to_bytes().unwrap()).unwrap();
        for (batch, threads) in [(1, 1), (5, 1), (5, 2)] {
            let mut st = m.new_chunk_state(batch).unwrap();
            st.set_threads(threads);
            let x = vec![0.1f32; 32 * batch];
            let n = allocations_during(|| {
                for _ in 0..20 {
                    m.run_chunk(&mut st, &x).unwrap();
                }
            });
            assert_eq!(n, 0, "chunks of {} with batch {batch}, {threads} threads", dtype.name());
        }
    }
}

fn the_counter_sees_allocations() {
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 100]))) >= 1);
}

fn main() {
    the_counter_sees_allocations();
    a_fresh_state_steps_without_allocating();
    step_run_and_run_into_never_allocate_once_the_state_exists();
    stream_batches_step_and_lengths_rerun_without_allocating();
    chunks_never_allocate_once_the_chunk_state_exists();
    println!("no_alloc: 5 checks passed");
}
