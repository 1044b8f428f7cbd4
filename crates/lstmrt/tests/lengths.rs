//! Batches whose rows have their own lengths (`Model::run_lengths`), on
//! every tier, against the reference run row by row on each row's own steps
//! (`reference::run_lengths`): every cell kind, projection, 1-3 layers,
//! bidirectional and reverse stacks, lengths 0, 1 and the maximum, unsorted,
//! several chunks, threads, initial states, and int8 bit for bit against
//! each row run alone.

use lstmrt_testkit as common;

use common::{Rng, bf16_tolerance, random_weights, rel_diff};
use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt::{Error, Isa, Model, ModelWriter, reference};

struct Case {
    cell: CellKind,
    input: usize,
    hidden: usize,
    layers: usize,
    bidirectional: bool,
    reverse: bool,
    proj: usize,
    lengths: Vec<usize>,
    steps: usize,
}

fn case(cell: CellKind, hidden: usize, layers: usize, lengths: &[usize], steps: usize) -> Case {
    Case {
        cell,
        input: 7,
        hidden,
        layers,
        bidirectional: false,
        reverse: false,
        proj: 0,
        lengths: lengths.to_vec(),
        steps,
    }
}

fn cases() -> Vec<Case> {
    use CellKind::*;
    // 13 rows: 9 steps per chunk, so lengths up to 40 cross chunks.
    let mixed = [5, 40, 0, 1, 40, 17, 9, 10, 33, 2, 18, 1, 39];
    let mut v = vec![
        case(Lstm, 17, 1, &[3, 1, 2], 3),
        case(Lstm, 33, 2, &mixed, 40),
        case(Lstm, 100, 3, &[30, 0, 7, 30, 12, 29, 1], 31),
        case(Gru, 17, 2, &mixed, 45),
        case(RnnTanh, 33, 1, &mixed, 40),
        case(RnnRelu, 17, 2, &[4, 9, 0, 9, 1], 9),
        case(Lstm, 17, 1, &[0, 0, 0], 4),
        case(Lstm, 5, 2, &[200, 3, 150, 1, 77, 199], 200),
    ];
    let mut proj = case(Lstm, 33, 2, &mixed, 40);
    proj.proj = 9;
    v.push(proj);
    for cell in [Lstm, Gru, RnnTanh] {
        let mut bi = case(cell, 17, 2, &mixed, 41);
        bi.bidirectional = true;
        v.push(bi);
    }
    let mut bi = case(Lstm, 33, 3, &[12, 1, 0, 12, 5], 14);
    bi.bidirectional = true;
    bi.proj = 5;
    v.push(bi);
    let mut reverse = case(Lstm, 17, 2, &mixed, 40);
    reverse.reverse = true;
    v.push(reverse);
    v
}

fn metadata(c: &Case) -> Metadata {
    let mut a = Architecture::new(c.cell, c.input, c.hidden, c.layers);
    a.bidirectional = c.bidirectional;
    a.reverse = c.reverse;
    a.proj_size = c.proj as u32;
    Metadata::new(a)
}

struct Inputs {
    xs: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
}

fn inputs(c: &Case, arch: &Architecture, rng: &mut Rng) -> Inputs {
    let batch = c.lengths.len();
    let slots = arch.layers() * arch.directions();
    Inputs {
        xs: rng.vec(c.steps * batch * c.input, 2.0),
        h0: rng.vec(slots * batch * arch.output_size(), 1.0),
        c0: if arch.has_cell_state() { rng.vec(slots * batch * arch.hidden(), 1.0) } else { Vec::new() },
    }
}

fn run(model: &Model, c: &Case, inp: &Inputs, threads: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut state = model.new_batch_state(c.lengths.len()).unwrap();
    state.set_threads(threads);
    state.set_h(&inp.h0).unwrap();
    state.set_c(&inp.c0).unwrap();
    let out = model.run_lengths(&mut state, &inp.xs, &c.lengths).unwrap().to_vec();
    (out, state.h().to_vec(), state.c().to_vec())
}

fn check(isa: Isa, c: &Case, dtype: DType, tolerance: f32, seed: u64, threads: usize) {
    let meta = metadata(c);
    let arch = &meta.architecture;
    let mut rng = Rng::new(seed);
    let weights = random_weights(&meta, &mut rng, 2.0);
    let bytes = ModelWriter::new(&meta, &weights).dtype(dtype).to_bytes().unwrap();
    let inp = inputs(c, arch, &mut rng);
    let stored = Model::from_bytes(&bytes).unwrap().weights();
    let batch = c.lengths.len();
    let c0 = arch.has_cell_state().then_some(&inp.c0[..]);
    let want = reference::run_lengths(arch, &stored, &inp.xs, batch, &c.lengths, Some(&inp.h0), c0);
    {
        let model = Model::from_bytes(&bytes).unwrap().with_isa(isa).unwrap();
        let what = format!(
            "{isa} {} {threads} threads, {:?} layers {} lengths {:?}",
            dtype.name(),
            c.cell,
            c.layers,
            c.lengths
        );
        let (out, h, cs) = run(&model, c, &inp, threads);
        let d = rel_diff(&out, &want.output);
        assert!(d <= tolerance, "{what}: output differs by {d}");
        assert!(rel_diff(&h, &want.h_n) <= tolerance, "{what}: h_n differs");
        assert!(rel_diff(&cs, &want.c_n) <= tolerance, "{what}: c_n differs");
        // Outputs past a row's length are exactly zero.
        let width = arch.sequence_output_size();
        for (b, &len) in c.lengths.iter().enumerate() {
            for t in len..c.steps {
                assert!(out[(t * batch + b) * width..][..width].iter().all(|&v| v == 0.0), "{what}: row {b} step {t}");
            }
        }
    }
}

lstmrt_testkit::per_tier! {
    fn matches_the_reference_row_by_row(isa: Isa) {
        for (i, c) in cases().iter().enumerate() {
            check(isa, c, DType::F32, 1e-5, 100 + i as u64, 1);
            check(isa, c, DType::BF16, bf16_tolerance(isa, 1e-4), 200 + i as u64, 1);
        }
    }

    fn threads_match_the_reference(isa: Isa) {
    use CellKind::*;
    let mut v = vec![
        case(Lstm, 400, 2, &[30, 0, 7, 30, 12, 29, 1, 3], 30), // panels split: 25 panels, 8 per thread
        case(Gru, 40, 1, &[30, 0, 7, 30, 12, 29, 1, 3], 30),   // rows split
    ];
    let mut bi = case(Lstm, 17, 2, &[9, 3, 0, 9, 1], 10);
    bi.bidirectional = true;
    v.push(bi);
    for (i, c) in v.iter().enumerate() {
        for threads in [2, 3] {
            check(isa, c, DType::F32, 1e-5, 300 + i as u64, threads);
        }
    }
    }
}

lstmrt_testkit::per_int8_form! {
/// int8: each row is what it would be run alone on its own steps, bit for bit
/// (activations are quantized per row, and integer sums are exact).
fn int8_rows_equal_each_row_run_alone_bit_for_bit(k: Int8Kernels) {
    for (i, c) in cases().iter().enumerate() {
        let meta = metadata(c);
        let arch = &meta.architecture;
        let mut rng = Rng::new(400 + i as u64);
        let weights = random_weights(&meta, &mut rng, 2.0);
        let bytes = ModelWriter::new(&meta, &weights).dtype(DType::I8).to_bytes().unwrap();
        let inp = inputs(c, arch, &mut rng);
        let batch = c.lengths.len();
        let (p, hidden, width, input) = (arch.output_size(), arch.hidden(), arch.sequence_output_size(), c.input);
        let slots = arch.layers() * arch.directions();
        {
            let model = k.apply(Model::from_bytes(&bytes).unwrap());
            let isa = k;
            let (out, h, cs) = run(&model, c, &inp, 1);
            for (b, &len) in c.lengths.iter().enumerate() {
                let mut alone = model.new_state();
                // Row b of a `[slots, batch, n]` state (empty without a cell state).
                let pick = |v: &[f32], n: usize| {
                    let n = if v.is_empty() { 0 } else { n };
                    (0..slots).flat_map(|s| v[(s * batch + b) * n..][..n].to_vec()).collect::<Vec<_>>()
                };
                alone.set_h(&pick(&inp.h0, p)).unwrap();
                alone.set_c(&pick(&inp.c0, hidden)).unwrap();
                let xs: Vec<f32> = (0..len).flat_map(|t| inp.xs[(t * batch + b) * input..][..input].to_vec()).collect();
                let mine = model.run(&mut alone, &xs).unwrap();
                let what = format!("{isa} {:?} layers {} row {b} of {:?}", c.cell, c.layers, c.lengths);
                for t in 0..len {
                    let got = &out[(t * batch + b) * width..][..width];
                    assert_eq!(got, &mine[t * width..][..width], "{what}: step {t}");
                }
                assert_eq!(pick(&h, p), alone.h(), "{what}: h_n");
                assert_eq!(pick(&cs, hidden), alone.c(), "{what}: c_n");
            }
        }
    }
}
}

#[test]
fn equal_lengths_are_a_plain_run() {
    let c = case(CellKind::Lstm, 33, 2, &[12, 12, 12], 12);
    let meta = metadata(&c);
    let mut rng = Rng::new(7);
    let weights = random_weights(&meta, &mut rng, 1.0);
    let model = Model::from_bytes(&ModelWriter::new(&meta, &weights).to_bytes().unwrap()).unwrap();
    let inp = inputs(&c, &meta.architecture, &mut rng);
    let mut state = model.new_batch_state(3).unwrap();
    let plain = model.run(&mut state, &inp.xs).unwrap().to_vec();
    let mut state = model.new_batch_state(3).unwrap();
    assert_eq!(model.run_lengths(&mut state, &inp.xs, &c.lengths).unwrap(), plain);
}

#[test]
fn bad_lengths_are_refused_and_leave_the_state_alone() {
    let c = case(CellKind::Gru, 17, 1, &[3, 1], 3);
    let meta = metadata(&c);
    let mut rng = Rng::new(8);
    let weights = random_weights(&meta, &mut rng, 1.0);
    let model = Model::from_bytes(&ModelWriter::new(&meta, &weights).to_bytes().unwrap()).unwrap();
    let inp = inputs(&c, &meta.architecture, &mut rng);
    let mut state = model.new_batch_state(2).unwrap();
    state.set_h(&inp.h0).unwrap();
    for (lengths, message) in [
        (&[4, 1][..], "bad sequence lengths: row 0 has length 4, longer than the sequence (3 steps)"),
        (&[3][..], "bad sequence lengths: 1 lengths for a batch of 2"),
        (&[3, 1, 1][..], "bad sequence lengths: 3 lengths for a batch of 2"),
    ] {
        let err = model.run_lengths(&mut state, &inp.xs, lengths).unwrap_err();
        assert!(matches!(err, Error::BadLengths { .. }));
        assert_eq!(err.to_string(), message);
        assert_eq!(state.h(), &inp.h0[..]);
    }
}
