//! Every instruction-set tier this CPU has, against the scalar reference, on
//! random models: every cell kind, projection, peepholes/clip/input_forget,
//! 1-4 layers, bidirectional, odd sizes, batches 1, 7, 10, 11 and 13 (every
//! register-block height and remainder), sequences 1 to 300,
//! f32/f16/bf16 weights, packed and canonical files, reverse stacks, whole
//! sequences and single steps.

use lstmrt_testkit as common;

use common::{Rng, bf16_tolerance, random_weights, rel_diff};
use lstmrt::format::{Architecture, CellKind, DType, Layout, Metadata};
use lstmrt::{Isa, Model, ModelWriter, reference};

#[derive(Debug, Clone)]
struct Case {
    cell: CellKind,
    input: usize,
    hidden: usize,
    layers: usize,
    bidirectional: bool,
    proj: usize,
    batch: usize,
    steps: usize,
    onnx: bool, // peepholes + clip + input_forget (LSTM), ONNX-form GRU
    reverse: bool,
}

fn case(cell: CellKind, input: usize, hidden: usize, layers: usize, batch: usize, steps: usize) -> Case {
    Case { cell, input, hidden, layers, bidirectional: false, proj: 0, batch, steps, onnx: false, reverse: false }
}

fn cases() -> Vec<Case> {
    use CellKind::*;
    let mut v = vec![
        case(Lstm, 1, 1, 1, 1, 1),
        case(Lstm, 5, 3, 1, 1, 17),
        case(Lstm, 33, 17, 2, 7, 40),
        case(Lstm, 5, 100, 1, 1, 300),
        case(Lstm, 33, 100, 4, 11, 23),
        case(Lstm, 1, 17, 3, 1, 64),
        case(Lstm, 16, 32, 1, 7, 129),
        case(Gru, 5, 17, 2, 1, 50),
        case(Gru, 1, 3, 1, 7, 9),
        case(Gru, 33, 100, 1, 11, 31),
        case(RnnTanh, 5, 17, 2, 10, 30),
        case(RnnTanh, 33, 100, 1, 1, 200),
        case(RnnRelu, 5, 3, 1, 1, 30),
        case(RnnRelu, 1, 17, 2, 7, 12),
    ];
    let mut proj = case(Lstm, 5, 17, 2, 11, 20);
    proj.proj = 5;
    v.push(proj.clone());
    proj.proj = 16;
    proj.hidden = 33;
    proj.batch = 1;
    v.push(proj);
    let mut bi = case(Lstm, 5, 17, 2, 1, 37);
    bi.bidirectional = true;
    v.push(bi.clone());
    bi.proj = 3;
    bi.batch = 7;
    bi.layers = 3;
    v.push(bi);
    let mut bi_gru = case(Gru, 33, 3, 1, 7, 130);
    bi_gru.bidirectional = true;
    v.push(bi_gru);
    let mut bi_rnn = case(RnnTanh, 1, 100, 2, 1, 15);
    bi_rnn.bidirectional = true;
    v.push(bi_rnn);
    let mut onnx = case(Lstm, 5, 17, 2, 11, 25);
    onnx.onnx = true;
    v.push(onnx.clone());
    onnx.bidirectional = true;
    onnx.proj = 4;
    onnx.batch = 1;
    v.push(onnx);
    let mut onnx_gru = case(Gru, 5, 17, 2, 10, 25);
    onnx_gru.onnx = true;
    v.push(onnx_gru.clone());
    onnx_gru.batch = 1;
    onnx_gru.hidden = 100;
    onnx_gru.bidirectional = true;
    v.push(onnx_gru);
    // Reverse stacks: several chunks (11 rows: 11 steps per chunk; 1 row: 128),
    // visited from the last.
    let mut reverse = case(Lstm, 5, 17, 2, 11, 40);
    reverse.reverse = true;
    reverse.proj = 5;
    v.push(reverse.clone());
    reverse.onnx = true;
    reverse.proj = 0;
    reverse.batch = 1;
    reverse.steps = 300;
    v.push(reverse);
    let mut reverse_gru = case(Gru, 33, 100, 1, 1, 200);
    reverse_gru.reverse = true;
    v.push(reverse_gru);
    v
}

fn metadata(c: &Case) -> Metadata {
    let mut a = Architecture::new(c.cell, c.input, c.hidden, c.layers);
    a.bidirectional = c.bidirectional;
    a.proj_size = c.proj as u32;
    a.reverse = c.reverse;
    if c.onnx {
        match c.cell {
            CellKind::Lstm => {
                a.peepholes = true;
                a.clip = Some(1.5);
                a.input_forget = true;
            }
            _ => {
                a.linear_before_reset = false;
                a.clip = Some(2.0);
            }
        }
    }
    Metadata::new(a)
}

/// Largest difference relative to the reference's scale.
fn check(isa: Isa, c: &Case, dtype: DType, layout: Layout, tolerance: f32, seed: u64) {
    check_threads(isa, c, dtype, layout, tolerance, seed, 1)
}

fn check_threads(isa: Isa, c: &Case, dtype: DType, layout: Layout, tolerance: f32, seed: u64, threads: usize) {
    let meta = metadata(c);
    let mut rng = Rng::new(seed);
    // Gain 2 pushes gates into saturation, where activation errors show.
    let weights = random_weights(&meta, &mut rng, 2.0);
    let bytes = ModelWriter::new(&meta, &weights).dtype(dtype).layout(layout).to_bytes().unwrap();
    let arch = &meta.architecture;
    let xs = rng.vec(c.steps * c.batch * c.input, 2.0);
    let slots = arch.layers() * arch.directions();
    let h0 = rng.vec(slots * c.batch * arch.output_size(), 1.0);
    let c0 = rng.vec(slots * c.batch * arch.hidden(), 1.0);
    // The reference runs on the weights as stored (rounded to f16/bf16).
    let stored = Model::from_bytes(&bytes).unwrap().weights();
    let want = reference::run(arch, &stored, &xs, c.batch, Some(&h0), arch.has_cell_state().then_some(&c0[..]));
    {
        let model = Model::from_bytes(&bytes).unwrap().with_isa(isa).unwrap();
        let what = format!("{isa} {} {} {threads} threads: {c:?}", dtype.name(), layout.name());
        let mut state = model.new_batch_state(c.batch).unwrap();
        state.set_threads(threads);
        state.set_h(&h0).unwrap();
        if arch.has_cell_state() {
            state.set_c(&c0).unwrap();
        }
        let out = model.run(&mut state, &xs).unwrap().to_vec();
        let d = rel_diff(&out, &want.output);
        if std::env::var("SHOW_DIFFS").is_ok() {
            eprintln!("{d:.2e} {what}");
        }
        assert!(d <= tolerance, "{what}: output differs by {d}");
        assert!(rel_diff(state.h(), &want.h_n) <= tolerance, "{what}: h_n differs");
        assert!(rel_diff(state.c(), &want.c_n) <= tolerance, "{what}: c_n differs");
        if !arch.bidirectional && !arch.reverse {
            // The same through single steps (the fused streaming path).
            let mut state = model.new_batch_state(c.batch).unwrap();
            state.set_threads(threads);
            state.set_h(&h0).unwrap();
            if arch.has_cell_state() {
                state.set_c(&c0).unwrap();
            }
            let width = c.batch * c.input;
            let mut stepped = Vec::with_capacity(out.len());
            for x in xs.chunks(width) {
                stepped.extend_from_slice(model.step(&mut state, x).unwrap());
            }
            let d = rel_diff(&stepped, &want.output);
            assert!(d <= tolerance, "{what}: stepping differs by {d}");
        }
    }
}

lstmrt_testkit::per_tier! {
    fn matches_the_reference_in_f32(isa: Isa) {
        for (i, c) in cases().iter().enumerate() {
            check(isa, c, DType::F32, Layout::Panel16, 1e-5, 1000 + i as u64);
        }
    }

    fn matches_the_reference_on_rounded_f16_and_bf16_weights(isa: Isa) {
        for (i, c) in cases().iter().enumerate() {
            check(isa, c, DType::F16, Layout::Panel16, 1e-4, 2000 + i as u64);
            check(isa, c, DType::BF16, Layout::Panel16, bf16_tolerance(isa, 1e-4), 3000 + i as u64);
        }
    }

    fn canonical_files_repacked_at_open_match_the_reference(isa: Isa) {
        for (i, c) in cases().iter().enumerate().step_by(3) {
            check(isa, c, DType::F32, Layout::Canonical, 1e-5, 4000 + i as u64);
            check(isa, c, DType::BF16, Layout::Canonical, bf16_tolerance(isa, 1e-4), 5000 + i as u64);
        }
    }

    fn threads_split_by_sequence_or_by_panel_match_the_reference(isa: Isa) {
        use CellKind::*;
        let mut v = vec![
            case(Lstm, 33, 200, 2, 1, 40),  // panels split: 13 panels
            case(Lstm, 33, 200, 1, 13, 20), // sequences split
            case(Gru, 5, 260, 2, 1, 30),
            case(RnnTanh, 17, 300, 1, 1, 25),
            case(RnnRelu, 17, 300, 1, 3, 25),
        ];
        let mut proj = case(Lstm, 16, 256, 2, 1, 30);
        proj.proj = 100;
        v.push(proj);
        let mut onnx = case(Gru, 16, 200, 1, 1, 30);
        onnx.onnx = true;
        v.push(onnx.clone());
        onnx.cell = Lstm;
        onnx.bidirectional = true;
        v.push(onnx);
        for (i, c) in v.iter().enumerate() {
            for threads in [2, 3] {
                check_threads(isa, c, DType::F32, Layout::Panel16, 1e-5, 6000 + i as u64, threads);
            }
            check_threads(isa, c, DType::F16, Layout::Panel16, 1e-4, 7000 + i as u64, 2);
        }
    }
}

/// The tier the CPU's flags in `/proc/cpuinfo` say it can run, read
/// independently of the runtime's own detection (CPUID via std).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn best_tier_from_cpuinfo() -> Isa {
    let info = std::fs::read_to_string("/proc/cpuinfo").expect("/proc/cpuinfo");
    let flags: Vec<&str> =
        info.lines().find(|l| l.starts_with("flags")).expect("a flags line").split_whitespace().collect();
    let has = |names: &[&str]| names.iter().all(|n| flags.contains(n));
    let avx512 = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq"];
    // Linux lists the AMX flags only where it supports tile state, which
    // lstmrt then requests (arch_prctl) and gets.
    if has(&avx512) && has(&["avx512_vnni", "amx_tile", "amx_int8"]) {
        Isa::Amx
    } else if has(&avx512) {
        Isa::Avx512
    } else if has(&["avx2", "fma", "f16c"]) {
        Isa::Avx2
    } else {
        Isa::Wide
    }
}

#[test]
fn the_process_runs_the_best_tier_the_cpu_reports_or_the_one_asked_for() {
    // The runtime's detection agrees with what the kernel reports of the CPU.
    // Two reasons may keep an AMX CPU on avx512, each named by amx::status:
    // LSTMRT_ISA naming another tier (no tile state is then requested), or
    // the tiles' start-up self-test failing (loudly, below).
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        let from_cpuinfo = best_tier_from_cpuinfo();
        match lstmrt_kernels::amx::status() {
            Err(why) if from_cpuinfo == Isa::Amx && (why.contains("LSTMRT_ISA") || why.contains("self-test")) => {
                eprintln!("AMX CPU kept on avx512: {why}");
                assert_eq!(Isa::best(), Isa::Avx512);
            }
            _ => assert_eq!(Isa::best(), from_cpuinfo),
        }
    }
    // The process runs the tier LSTMRT_ISA names, or else the best one.
    let want = match std::env::var("LSTMRT_ISA") {
        Ok(name) if !name.is_empty() => Isa::from_name(&name).unwrap(),
        _ => Isa::best(),
    };
    assert_eq!(lstmrt::isa().unwrap(), want);
}
