//! The reference engine and the runtime against outputs computed by PyTorch
//! itself (fixtures written by `tools/make_fixtures.py`, and for batches of
//! rows with their own lengths by `tools/make_packed_fixtures.py`).

use lstmrt_testkit as common;

use common::{TempDir, golden_cases, max_abs_diff, packed_cases};
use lstmrt::{Model, ModelWriter, reference};

const TOLERANCE: f32 = 1e-5;

#[test]
fn reference_matches_pytorch_on_every_fixture() {
    for g in golden_cases() {
        let arch = &g.meta.architecture;
        let out = reference::run(arch, &g.weights, &g.input, g.batch, g.h0.as_deref(), g.c0.as_deref());
        let d = max_abs_diff(&out.output, &g.output);
        eprintln!("{}: max diff {d:e}", g.name);
        assert!(d <= TOLERANCE, "{}: output differs from PyTorch by {d}", g.name);
        let d = max_abs_diff(&out.h_n, &g.h_n);
        assert!(d <= TOLERANCE, "{}: h_n differs from PyTorch by {d}", g.name);
        if let Some(c_n) = &g.c_n {
            let d = max_abs_diff(&out.c_n, c_n);
            assert!(d <= TOLERANCE, "{}: c_n differs from PyTorch by {d}", g.name);
        }
    }
}

#[test]
fn fixtures_cover_the_required_cases() {
    let cases = golden_cases();
    let any = |f: &dyn Fn(&common::Golden) -> bool| cases.iter().any(f);
    let a = |g: &common::Golden| g.meta.architecture.clone();
    assert!(any(&|g| a(g).num_layers == 1));
    assert!(any(&|g| a(g).num_layers == 3));
    assert!(any(&|g| a(g).bidirectional));
    assert!(any(&|g| a(g).proj_size > 0));
    assert!(any(&|g| a(g).bidirectional && a(g).proj_size > 0));
    assert!(any(&|g| a(g).cell == lstmrt::format::CellKind::Gru));
    assert!(any(&|g| a(g).cell == lstmrt::format::CellKind::RnnTanh));
    assert!(any(&|g| g.h0.is_some() && g.c0.is_some()));
    assert!(any(&|g| g.output_shape[0] == 1));
    assert!(any(&|g| g.output_shape[0] == 200));
    assert!(any(&|g| g.batch == 1));
    assert!(any(&|g| g.batch == 5));
    assert!(any(&|g| a(g).input_size != a(g).hidden_size));
}

#[test]
fn written_and_reopened_models_match_pytorch() {
    let dir = TempDir::new("golden");
    for g in golden_cases() {
        let path = dir.path(&format!("{}.lstm", g.name));
        ModelWriter::new(&g.meta, &g.weights).write(&path).unwrap();
        let model = Model::open(&path).unwrap();
        assert_eq!(model.weights(), g.weights, "{}: weights changed on the round trip", g.name);
        let mut state = model.new_batch_state(g.batch).unwrap();
        if let Some(h0) = &g.h0 {
            state.set_h(h0).unwrap();
        }
        if let Some(c0) = &g.c0 {
            state.set_c(c0).unwrap();
        }
        let out = model.run(&mut state, &g.input).unwrap().to_vec();
        let d = max_abs_diff(&out, &g.output);
        assert!(d <= TOLERANCE, "{}: Model::run differs from PyTorch by {d}", g.name);
        let d = max_abs_diff(state.h(), &g.h_n);
        assert!(d <= TOLERANCE, "{}: final h differs from PyTorch by {d}", g.name);
    }
}

lstmrt_testkit::per_tier! {
/// `pack_padded_sequence(enforce_sorted=False)` batches: the reference and
/// every tier's `run_lengths` give PyTorch's padded output and final states.
fn lengths_match_pytorchs_packed_sequences(isa: Isa) {
    let cases = packed_cases();
    let arch = |g: &common::Golden| g.meta.architecture.clone();
    assert!(cases.iter().any(|(g, _)| arch(g).num_layers == 3 && arch(g).bidirectional && arch(g).proj_size > 0));
    assert!(cases.iter().any(|(g, _)| arch(g).cell == lstmrt::format::CellKind::RnnRelu));
    for (g, lengths) in &cases {
        let a = &g.meta.architecture;
        let check = |what: &str, out: &[f32], h_n: &[f32], c_n: &[f32]| {
            let d = max_abs_diff(out, &g.output);
            assert!(d <= TOLERANCE, "{} {what}: output differs from PyTorch by {d}", g.name);
            let d = max_abs_diff(h_n, &g.h_n);
            assert!(d <= TOLERANCE, "{} {what}: h_n differs from PyTorch by {d}", g.name);
            if let Some(want) = &g.c_n {
                let d = max_abs_diff(c_n, want);
                assert!(d <= TOLERANCE, "{} {what}: c_n differs from PyTorch by {d}", g.name);
            }
        };
        let r = reference::run_lengths(a, &g.weights, &g.input, g.batch, lengths, g.h0.as_deref(), g.c0.as_deref());
        check("reference", &r.output, &r.h_n, &r.c_n);
        let bytes = ModelWriter::new(&g.meta, &g.weights).to_bytes().unwrap();
        {
            for threads in [1, 2] {
                let model = Model::from_bytes(&bytes).unwrap().with_isa(isa).unwrap();
                let mut state = model.new_batch_state(g.batch).unwrap();
                state.set_threads(threads);
                if let Some(h0) = &g.h0 {
                    state.set_h(h0).unwrap();
                }
                if let Some(c0) = &g.c0 {
                    state.set_c(c0).unwrap();
                }
                let out = model.run_lengths(&mut state, &g.input, lengths).unwrap().to_vec();
                check(&format!("{isa} {threads} threads"), &out, state.h(), state.c());
            }
        }
    }
}
}
