//! Stored initial states (format 1.2, e.g. an ONNX model's constant
//! `initial_h`/`initial_c`): every new or reset sequence starts from them,
//! in `State`, `StreamBatch` and the reference alike, unless the caller sets
//! a state; zeros are not stored, so such files stay readable by 1.0 readers.

use lstmrt_testkit as common;

use common::{Rng, random_weights};
use lstmrt::format::{Architecture, CellKind, Metadata};
use lstmrt::{Error, Model, ModelWriter, Weights, reference};

fn with_initial(cell: CellKind, bidirectional: bool, proj: usize, seed: u64) -> (Metadata, Weights) {
    let mut arch = Architecture::new(cell, 5, 19, 2);
    arch.bidirectional = bidirectional;
    arch.proj_size = proj as u32;
    let meta = Metadata::new(arch);
    let mut rng = Rng::new(seed);
    let mut weights = random_weights(&meta, &mut rng, 1.5);
    let arch = &meta.architecture;
    for lw in &mut weights.layers {
        lw.initial_h = Some(rng.vec(arch.output_size(), 0.8));
        lw.initial_c = arch.has_cell_state().then(|| rng.vec(arch.hidden(), 0.8));
    }
    (meta, weights)
}

/// The largest absolute difference; NaN is infinitely different.
fn rel_diff(got: &[f32], want: &[f32]) -> f32 {
    lstmrt_testkit::max_abs_diff(got, want)
}

lstmrt_testkit::per_tier! {
fn new_and_reset_states_start_from_the_stored_state(isa: Isa) {
    for (i, (cell, bi, proj)) in
        [(CellKind::Lstm, false, 0), (CellKind::Lstm, true, 7), (CellKind::Gru, true, 0), (CellKind::RnnTanh, false, 0)]
            .into_iter()
            .enumerate()
    {
        let (meta, weights) = with_initial(cell, bi, proj, i as u64);
        let arch = &meta.architecture;
        let bytes = ModelWriter::new(&meta, &weights).to_bytes().unwrap();
        let info = Model::from_bytes(&bytes).unwrap().file_info().clone();
        assert_eq!((info.version_major, info.version_minor), (1, 2));
        let xs = Rng::new(9).vec(12 * 3 * 5, 1.5);
        let want = reference::run(arch, &weights, &xs, 3, None, None);
        {
            let model = Model::from_bytes(&bytes).unwrap().with_isa(isa).unwrap();
            assert_eq!(model.weights(), weights, "the initial state round-trips");
            let (h0, c0) = model.initial_state().expect("stored");
            let mut state = model.new_batch_state(3).unwrap();
            let (p, slots) = (arch.output_size(), arch.layers() * arch.directions());
            for slot in 0..slots {
                for b in 0..3 {
                    assert_eq!(&state.h()[(slot * 3 + b) * p..][..p], &h0[slot * p..][..p]);
                }
            }
            assert_eq!(state.c().len(), 3 * c0.len());
            let out = model.run(&mut state, &xs).unwrap().to_vec();
            assert!(rel_diff(&out, &want.output) <= 1e-5, "{isa} {cell:?}");
            assert!(rel_diff(state.h(), &want.h_n) <= 1e-5);
            state.reset();
            assert_eq!(model.run(&mut state, &xs).unwrap(), &out[..], "reset returns to the stored state");
            // A state the caller sets wins.
            let h = vec![0.25; state.h().len()];
            state.set_h(&h).unwrap();
            let c = vec![-0.5; state.c().len()];
            state.set_c(&c).unwrap();
            let theirs = reference::run(arch, &weights, &xs, 3, Some(&h), arch.has_cell_state().then_some(&c[..]));
            assert!(rel_diff(model.run(&mut state, &xs).unwrap(), &theirs.output) <= 1e-5);
            if !bi {
                // A stream batch's new and reset streams start from it too.
                let mut streams = model.new_stream_batch(4).unwrap();
                let id = streams.join().unwrap();
                let mut alone = model.new_state();
                for x in xs.chunks(5).take(4) {
                    let got = streams.step(&model, &[id], x).unwrap().to_vec();
                    assert!(rel_diff(&got, model.step(&mut alone, x).unwrap()) <= 1e-6);
                }
                streams.reset(id).unwrap();
                assert_eq!(streams.stream_state(&model, id).unwrap().h(), model.new_state().h());
            }
        }
    }
}
}

#[test]
fn zero_initial_states_are_not_stored() {
    let (meta, mut weights) = with_initial(CellKind::Lstm, false, 0, 3);
    for lw in &mut weights.layers {
        lw.initial_h = Some(vec![0.0; 19]);
        lw.initial_c = None;
    }
    let model = Model::from_bytes(&ModelWriter::new(&meta, &weights).to_bytes().unwrap()).unwrap();
    assert_eq!(model.file_info().version_minor, 0);
    assert!(model.initial_state().is_none());
    assert!(model.tensors().all(|t| !t.name().starts_with("initial_")));
}

#[test]
fn initial_states_of_the_wrong_size_or_cell_are_refused_by_the_writer() {
    let (meta, mut weights) = with_initial(CellKind::Gru, false, 0, 4);
    weights.layers[1].initial_c = Some(vec![1.0; 19]);
    let e = ModelWriter::new(&meta, &weights).to_bytes().unwrap_err();
    assert!(matches!(e, Error::Format(_)) && e.to_string().contains("initial_c_l1"), "{e}");
    let (meta, mut weights) = with_initial(CellKind::Lstm, false, 0, 5);
    weights.layers[0].initial_h = Some(vec![1.0; 18]);
    let e = ModelWriter::new(&meta, &weights).to_bytes().unwrap_err();
    assert!(e.to_string().contains("initial_h_l0"), "{e}");
    weights.layers[0].initial_h = Some(vec![f32::NAN; 19]);
    let e = ModelWriter::new(&meta, &weights).to_bytes().unwrap_err();
    assert!(e.to_string().contains("initial_h_l0") && e.to_string().contains("NaN"), "{e}");
}
