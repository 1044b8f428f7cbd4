//! Once a `State` (or a `StreamBatch`, a `ChunkState`) exists, stepping and
//! running never allocate: a counting global allocator proves it for every
//! kind of model, single- and multi-threaded, on every kernel tier (float
//! weights) and with every int8 product (int8 weights) this CPU has.
//!
//! The allocator counts every thread's allocations (worker threads included),
//! so this file runs without the test harness (`harness = false` in
//! Cargo.toml): nothing else runs, prints or allocates while it counts. Its
//! `main` runs the cases one at a time through `lstmrt_testkit::tiers::Serial`,
//! named per tier and per int8 product as the stamped suites are
//! (`avx2::float_models_...`, `int8_avx2_maddubs::int8_models_...`);
//! `cargo test --test no_alloc -- avx2` runs the names holding `avx2`.

use lstmrt_testkit as common;

use common::alloc::{CountingAllocator, allocations_during};
use common::tiers::{Int8Kernels, Serial};
use common::{Rng, random_weights};
use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt::{Isa, Model, ModelWriter};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

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

/// The models the step-and-run case checks, in `dtype`.
fn models(dtype: DType) -> Vec<(&'static str, Model)> {
    // f16 needs the widening buffers, int8 the quantizing ones.
    vec![
        ("lstm 3 layers", model_in(dtype, CellKind::Lstm, 40, 3, |_| {})),
        ("lstm projection", model_in(dtype, CellKind::Lstm, 300, 2, |a| a.proj_size = 20)),
        ("gru onnx form", model_in(dtype, CellKind::Gru, 300, 1, |a| a.linear_before_reset = false)),
        ("rnn relu", model_in(dtype, CellKind::RnnRelu, 33, 2, |_| {})),
        ("bidirectional lstm", model_in(dtype, CellKind::Lstm, 40, 2, |a| a.bidirectional = true)),
    ]
}

fn step_run_and_run_into_never_allocate_once_the_state_exists(models: Vec<(&str, Model)>) {
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

fn float_models_step_and_run_without_allocating(isa: Isa) {
    let models = models(DType::F16).into_iter().map(|(name, m)| (name, m.with_isa(isa).unwrap())).collect();
    step_run_and_run_into_never_allocate_once_the_state_exists(models);
}

fn int8_models_step_and_run_without_allocating(k: Int8Kernels) {
    let models = models(DType::I8).into_iter().map(|(name, m)| (name, k.apply(m))).collect();
    step_run_and_run_into_never_allocate_once_the_state_exists(models);
}

fn stream_batches_step_and_lengths_rerun_without_allocating(m: &Model) {
    let what = format!("{} on {} ({})", m.dtype().name(), m.isa(), m.int8_dot());
    for threads in [1, 2] {
        let mut streams = m.new_stream_batch(32).unwrap();
        let ids: Vec<_> = (0..32).map(|_| streams.join().unwrap()).collect();
        streams.set_threads(threads);
        let xs = vec![0.5f32; 32 * 24];
        let n = allocations_during(|| {
            for k in [32, 1, 7, 20] {
                streams.step(m, &ids[32 - k..], &xs[..k * 24]).unwrap();
            }
            streams.leave(ids[3]).unwrap();
            let id = streams.join().unwrap();
            streams.reset(id).unwrap();
        });
        assert_eq!(n, 0, "stream batch {what}, {threads} threads: {n} allocations");
        // Lengths: the second run of a batch no larger than the first.
        let mut state = m.new_batch_state(5).unwrap();
        state.set_threads(threads);
        let xs = vec![0.25f32; 40 * 5 * 24];
        let mut out = vec![0.0f32; 40 * 5 * 300];
        m.run_lengths_into(&mut state, &xs, &[40, 3, 0, 17, 40], &mut out).unwrap();
        let n = allocations_during(|| m.run_lengths_into(&mut state, &xs, &[1, 40, 39, 0, 2], &mut out).unwrap());
        assert_eq!(n, 0, "lengths {what}, {threads} threads: {n} allocations");
    }
}

fn float_stream_batches_and_lengths_without_allocating(isa: Isa) {
    let m = model_in(DType::F16, CellKind::Lstm, 300, 2, |_| {}).with_isa(isa).unwrap();
    stream_batches_step_and_lengths_rerun_without_allocating(&m);
}

fn int8_stream_batches_and_lengths_without_allocating(k: Int8Kernels) {
    stream_batches_step_and_lengths_rerun_without_allocating(&k.apply(model_in(
        DType::I8,
        CellKind::Lstm,
        300,
        2,
        |_| {},
    )));
}

fn a_fresh_state_steps_without_allocating(isa: Isa) {
    let m = model_in(DType::F16, CellKind::Lstm, 64, 2, |_| {}).with_isa(isa).unwrap();
    let mut state = m.new_state();
    let x = vec![0.5f32; 24];
    let n = allocations_during(|| {
        for _ in 0..100 {
            m.step(&mut state, &x).unwrap();
        }
    });
    assert_eq!(n, 0, "on {isa}");
}

fn chunk_model(dtype: DType) -> Model {
    chunk_model_with_stages(dtype, dtype)
}

fn chunk_model_with_stages(dtype: DType, stages: DType) -> Model {
    let meta = common::small_vad(CellKind::Lstm);
    let w = random_weights(&meta, &mut Rng::new(6), 1.0);
    Model::from_bytes(&ModelWriter::new(&meta, &w).dtype(dtype).stage_dtype(stages).to_bytes().unwrap()).unwrap()
}

fn chunks_never_allocate_once_the_chunk_state_exists(m: &Model) {
    for (batch, threads) in [(1, 1), (5, 1), (5, 2)] {
        let mut st = m.new_chunk_state(batch).unwrap();
        st.set_threads(threads);
        let x = vec![0.1f32; 32 * batch];
        let n = allocations_during(|| {
            for _ in 0..20 {
                m.run_chunk(&mut st, &x).unwrap();
            }
        });
        let what = format!("{} on {} ({})", m.dtype().name(), m.isa(), m.int8_dot());
        assert_eq!(n, 0, "chunks of {what} with batch {batch}, {threads} threads");
    }
}

fn float_chunks_without_allocating(isa: Isa) {
    for dtype in [DType::F32, DType::F16] {
        chunks_never_allocate_once_the_chunk_state_exists(&chunk_model(dtype).with_isa(isa).unwrap());
    }
}

fn int8_chunks_without_allocating(k: Int8Kernels) {
    // An int8 stack beside f32 stages (the writer's default) and f16 ones
    // (their widening buffers too).
    for stages in [DType::F32, DType::F16] {
        chunks_never_allocate_once_the_chunk_state_exists(&k.apply(chunk_model_with_stages(DType::I8, stages)));
    }
}

fn the_counter_sees_allocations() {
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 100]))) >= 1);
}

fn main() {
    let ran = Serial::from_args()
        .once("the_counter_sees_allocations", the_counter_sees_allocations)
        .per_tier(&common::serial_cases![
            a_fresh_state_steps_without_allocating,
            float_models_step_and_run_without_allocating,
            float_stream_batches_and_lengths_without_allocating,
            float_chunks_without_allocating,
        ])
        .per_int8_form(&common::serial_cases![
            int8_models_step_and_run_without_allocating,
            int8_stream_batches_and_lengths_without_allocating,
            int8_chunks_without_allocating,
        ])
        .ran();
    println!("no_alloc: {ran} cases passed");
}
