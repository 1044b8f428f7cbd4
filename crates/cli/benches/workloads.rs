//! Criterion benchmarks of the standard workloads W1-W5 (`lstmrt_cli::bench::WORKLOADS`) (LSTM, input = hidden size),
//! f32 and f16 weights, whole sequence and one step per call.
//!
//!     cargo bench --bench workloads            # all
//!     cargo bench --bench workloads -- W2/f16  # a subset (criterion filter)
//!
//! Criterion reports time per iteration; an iteration is a whole sequence of
//! T steps (`sequence`) or a single step (`stream`). `benches/roofline.rs`
//! puts the same workloads next to this machine's limits.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lstmrt::format::DType;
use lstmrt::rng::Rng;
use lstmrt_cli::bench::WORKLOADS;

fn workloads(c: &mut Criterion) {
    for w in &WORKLOADS {
        let mut group = c.benchmark_group(w.name);
        group.sample_size(10).measurement_time(std::time::Duration::from_secs(3));
        for dtype in [DType::F32, DType::F16, DType::I8] {
            let model = w.model(dtype);
            let mut rng = Rng::new(1);
            let per_step = w.batch * w.hidden;
            let xs: Vec<f32> = (0..w.steps * per_step).map(|_| rng.uniform_f32(-1.0, 1.0)).collect();
            let mut out = vec![0.0; w.steps * w.batch * w.hidden];
            let mut state = model.new_batch_state(w.batch).expect("a workload's batch");
            group.throughput(Throughput::Elements((w.steps * w.batch) as u64));
            group.bench_function(BenchmarkId::new(dtype.name(), "sequence"), |b| {
                b.iter(|| {
                    state.reset();
                    model.run_into(&mut state, &xs, &mut out).unwrap();
                })
            });
            if w.batch == 1 {
                group.throughput(Throughput::Elements(1));
                let mut t = 0;
                group.bench_function(BenchmarkId::new(dtype.name(), "stream"), |b| {
                    b.iter(|| {
                        let x = &xs[t * per_step..][..per_step];
                        t = (t + 1) % w.steps;
                        std::hint::black_box(model.step(&mut state, x).unwrap());
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, workloads);
criterion_main!(benches);
