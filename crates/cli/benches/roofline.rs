//! The performance report: every workload's time per step next to this
//! machine's roofline, measured in the same run.
//!
//!     cargo bench --bench roofline            # all workloads, ~2 minutes
//!     cargo bench --bench roofline -- W2 f16  # rows whose label contains every word
//!     cargo bench --bench roofline -- bandwidth  # only the read-bandwidth curve
//!
//! Prints a markdown table: median ns per step (lstmrt::bench, random inputs),
//! the single-core sequence or stream bound (lstmrt_cli::roofline), and the
//! fraction of the bound reached. Also the fast path against the scalar
//! reference engine, and two threads against one; a batch of mixed lengths
//! against the same batch padded (`lengths W2`); 32 streams stepped together
//! against 32 separate step calls and against W4's batch streaming (`streams W2`).

use std::time::Instant;

use lstmrt::format::DType;
use lstmrt::{Model, Weights, reference, rng::Rng};
use lstmrt_cli::bench::{self, Mode, WORKLOADS, Workload};
use lstmrt_cli::roofline::Probe;

fn measure(model: &Model, w: &Workload, mode: Mode, threads: usize) -> f64 {
    let steps = if mode == Mode::Stream { w.steps.min(200) } else { w.steps };
    let config = bench::Config { mode, batch: w.batch, steps, threads, seconds: 1.5, ..Default::default() };
    bench::run(model, &config).unwrap().ns_per_step_median
}

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |label: &str| filters.iter().all(|f| label.contains(f.as_str()));
    let isa = lstmrt::isa().expect("LSTMRT_ISA names a tier this CPU has");
    let mut probe = Probe::new(isa);
    println!("isa {isa}, single-core FMA peak {:.1} GFLOP/s", probe.peak_gflops());
    match (probe.tile_gops(), lstmrt::Isa::Amx.unavailable_reason()) {
        (Some(gops), _) => println!("single-core AMX int8 tile peak {gops:.1} GOP/s\n"),
        (None, Some(why)) => println!("no AMX tile peak: {why}\n"),
        (None, None) => println!("no AMX tile peak: LSTMRT_ISA={isa}\n"),
    }
    if wanted("bandwidth") {
        println!("| working set | f32 GB/s | f16 GB/s (widened) | bf16 GB/s (widened) |");
        println!("|---:|---:|---:|---:|");
        for kib in [64usize, 256, 1024, 2048, 4096, 16384, 65536] {
            let b = kib << 10;
            let (f32_, f16_, bf16_) =
                (probe.bandwidth(b, DType::F32), probe.bandwidth(b, DType::F16), probe.bandwidth(b, DType::BF16));
            println!("| {kib} KiB | {f32_:.1} | {f16_:.1} | {bf16_:.1} |");
        }
        println!();
    }
    println!("| workload | dtype | mode | threads | ns/step | bound ns/step | of bound | GFLOP/s |");
    println!("|---|---|---|---|---:|---:|---:|---:|");
    for w in &WORKLOADS {
        for dtype in [DType::F32, DType::F16, DType::I8] {
            let model = w.model(dtype);
            let bounds = probe.bounds(model.architecture(), dtype, w.batch);
            for (mode, threads) in [(Mode::Sequence, 1), (Mode::Stream, 1), (Mode::Sequence, 2)] {
                let label = format!("{} {} {:?} {threads}t", w.name, dtype.name(), mode);
                if !wanted(&label) || (w.batch > 1 && mode == Mode::Stream) {
                    continue;
                }
                let ns = measure(&model, w, mode, threads);
                let bound = if mode == Mode::Stream { bounds.stream_ns } else { bounds.sequence_ns };
                println!(
                    "| {} H={} L={} B={} T={} | {} | {:?} | {threads} | {ns:.0} | {bound:.0} | {:.0}% | {:.1} |",
                    w.name,
                    w.hidden,
                    w.layers,
                    w.batch,
                    w.steps,
                    dtype.name(),
                    mode,
                    100.0 * bound / ns,
                    bounds.flops() / ns,
                );
            }
        }
    }
    if wanted("lengths W2") {
        lengths_against_padding(&WORKLOADS[1]);
    }
    if wanted("streams W2") {
        streams_against_separate_steps(&WORKLOADS[1], &WORKLOADS[3]);
    }
    if wanted("reference W2") {
        // The fast path against the scalar reference engine on W2 (a short sequence: the reference is slow).
        let w = &WORKLOADS[1];
        let model = w.model(DType::F32);
        let (weights, meta): (Weights, _) = (model.weights(), model.metadata().clone());
        let steps = 20;
        let mut rng = Rng::new(3);
        let xs: Vec<f32> = (0..steps * w.hidden).map(|_| rng.uniform_f32(-1.0, 1.0)).collect();
        let t = Instant::now();
        std::hint::black_box(reference::run(&meta.architecture, &weights, &xs, 1, None, None));
        let reference_ns = t.elapsed().as_nanos() as f64 / steps as f64;
        let fast_ns = measure(&model, &Workload { steps, ..*w }, Mode::Sequence, 1);
        println!(
            "\nW2 f32: reference engine {reference_ns:.0} ns/step, fast path {fast_ns:.0} ns/step: {:.0}x",
            reference_ns / fast_ns
        );
    }
}

/// Median of `f`'s times over `repeats` runs, interleaved with `g`'s (so
/// both see the same machine), in ns.
fn paired_medians(repeats: usize, mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let t = Instant::now();
        f();
        a.push(t.elapsed().as_nanos() as f64);
        let t = Instant::now();
        g();
        b.push(t.elapsed().as_nanos() as f64);
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    (bench::percentile(&a, 0.5), bench::percentile(&b, 0.5))
}

/// 32 rows with lengths uniform in 1..=200 against the same rows all 200 long.
fn lengths_against_padding(w: &Workload) {
    println!(
        "\n| {} batch 32, lengths uniform 1..=200 | dtype | threads | lengths ms | padded ms | lengths / padded | sum of lengths / (32 x 200) |",
        w.name
    );
    println!("|---|---|---|---:|---:|---:|---:|");
    let (batch, steps) = (32, 200);
    let mut rng = Rng::new(9);
    let lengths: Vec<usize> =
        (0..batch).map(|_| 1 + (rng.uniform_f32(0.0, 1.0) * steps as f32) as usize % steps).collect();
    let xs: Vec<f32> = (0..steps * batch * w.hidden).map(|_| rng.uniform_f32(-1.0, 1.0)).collect();
    let share = lengths.iter().sum::<usize>() as f64 / (batch * steps) as f64;
    for dtype in [DType::F32, DType::I8] {
        let model = w.model(dtype);
        for threads in [1, 2] {
            let mut states = [0, 1].map(|_| {
                let mut s = model.new_batch_state(batch).expect("a workload's batch");
                s.set_threads(threads);
                s
            });
            let [a, b] = &mut states;
            let mut outs = [0, 1].map(|_| vec![0.0f32; steps * batch * w.hidden]);
            let [out_a, out_b] = &mut outs;
            let (mixed, padded) = paired_medians(
                7,
                || model.run_lengths_into(a, &xs, &lengths, out_a).unwrap(),
                || model.run_into(b, &xs, out_b).unwrap(),
            );
            println!(
                "| | {} | {threads} | {:.1} | {:.1} | {:.0}% | {:.0}% |",
                dtype.name(),
                mixed / 1e6,
                padded / 1e6,
                100.0 * mixed / padded,
                100.0 * share
            );
        }
    }
}

/// 32 streams of W2 stepped together, against 32 `step` calls and against
/// W4 (the same network at batch 32) streamed one call per step.
fn streams_against_separate_steps(w2: &Workload, w4: &Workload) {
    println!(
        "\n| 32 {} streams | dtype | threads | together µs/step | separate µs/step | separate / together | {} batch-32 stream µs/step | together / W4 |",
        w2.name, w4.name
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for dtype in [DType::F32, DType::BF16, DType::I8] {
        let model = w2.model(dtype);
        for threads in [1, 2] {
            let config = bench::Config {
                mode: Mode::Streams,
                batch: 32,
                steps: 50,
                threads,
                seconds: 2.0,
                ..Default::default()
            };
            let r = bench::run(&model, &config).unwrap();
            let w4_ns = measure(&w4.model(dtype), &Workload { steps: 50, ..*w4 }, Mode::Stream, threads);
            let separate = r.separate_ns_per_step_median.expect("streams mode measures both");
            println!(
                "| | {} | {threads} | {:.0} | {:.0} | {:.2}x | {:.0} | {:.2} |",
                dtype.name(),
                r.ns_per_step_median / 1e3,
                separate / 1e3,
                separate / r.ns_per_step_median,
                w4_ns / 1e3,
                r.ns_per_step_median / w4_ns
            );
        }
    }
}
