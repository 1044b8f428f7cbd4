//! The runtime API: Model/State behaviour a user relies on.

use lstmrt_testkit as common;

use std::sync::Arc;

use common::{TempDir, golden_cases, max_abs_diff};
use lstmrt::format::{Architecture, CellKind, Metadata};
use lstmrt::{Error, Model, ModelWriter, State, Weights};

fn model_for(name: &str) -> (Model, common::Golden) {
    let g = golden_cases().into_iter().find(|g| g.name == name).unwrap();
    let bytes = ModelWriter::new(&g.meta, &g.weights).to_bytes().unwrap();
    (Model::from_bytes(&bytes).unwrap(), g)
}

#[test]
fn model_is_send_sync_and_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Model>();
    assert_send_sync::<State>();
    let (model, g) = model_for("lstm_3layer");
    let model = Arc::new(model);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (model, input) = (Arc::clone(&model), g.input.clone());
            std::thread::spawn(move || {
                let mut state = model.new_batch_state(2).unwrap();
                model.run(&mut state, &input).unwrap().to_vec()
            })
        })
        .collect();
    for h in handles {
        assert!(max_abs_diff(&h.join().unwrap(), &g.output) <= 1e-5);
    }
}

#[test]
fn stepping_equals_running_the_whole_sequence() {
    let (model, g) = model_for("lstm_proj");
    let width = g.batch * model.architecture().input_size as usize;
    let mut state = model.new_batch_state(g.batch).unwrap();
    let mut stepped = Vec::new();
    for x in g.input.chunks(width) {
        stepped.extend_from_slice(model.step(&mut state, x).unwrap());
    }
    assert!(max_abs_diff(&stepped, &g.output) <= 1e-5);
    assert!(max_abs_diff(state.h(), &g.h_n) <= 1e-5);
}

#[test]
fn saved_state_resumes_the_stream_in_another_state() {
    let (model, g) = model_for("lstm_seq200");
    let half = g.input.len() / 2;
    let mut first = model.new_state();
    model.run(&mut first, &g.input[..half]).unwrap();
    let saved = first.to_bytes();
    let mut resumed = State::from_bytes(&model, &saved).unwrap();
    let second = model.run(&mut resumed, &g.input[half..]).unwrap();
    let steps = g.output.len() / 2;
    assert!(max_abs_diff(second, &g.output[steps..]) <= 1e-5);
    assert!(max_abs_diff(resumed.c(), g.c_n.as_ref().unwrap()) <= 1e-5);
}

#[test]
fn saved_state_of_another_model_or_corrupt_is_refused() {
    let (model, _) = model_for("lstm_seq200");
    let (other, _) = model_for("gru");
    let saved = model.new_state().to_bytes();
    assert!(matches!(State::from_bytes(&other, &saved), Err(Error::BadState { .. })));
    let mut corrupt = saved.clone();
    corrupt[40] ^= 1;
    assert!(matches!(State::from_bytes(&model, &corrupt), Err(Error::BadState { .. })));
    assert!(matches!(State::from_bytes(&model, &saved[..20]), Err(Error::BadState { .. })));
    // A blob claiming a batch of 2^20 with one stream's values: refused by its
    // length before a state of 2^20 rows is made.
    let mut huge = saved[..saved.len() - 4].to_vec();
    huge[16..20].copy_from_slice(&(1u32 << 20).to_le_bytes());
    let crc = crc32c::crc32c(&huge);
    huge.extend_from_slice(&crc.to_le_bytes());
    match State::from_bytes(&model, &huge) {
        Err(Error::BadState { reason }) => assert!(reason.contains("value bytes"), "{reason}"),
        other => panic!("expected a length error, got {:?}", other.map(|s| s.batch())),
    }
}

#[test]
fn reset_starts_a_new_sequence() {
    let (model, g) = model_for("lstm_1layer");
    let mut state = model.new_state();
    let a = model.run(&mut state, &g.input).unwrap().to_vec();
    state.reset();
    let b = model.run(&mut state, &g.input).unwrap().to_vec();
    assert_eq!(a, b);
}

#[test]
fn wrong_input_sizes_are_errors_naming_the_sizes() {
    let (model, _) = model_for("lstm_1layer"); // input size 5
    let mut state = model.new_state();
    let err = model.run(&mut state, &[0.0; 7]).unwrap_err();
    assert!(matches!(err, Error::Shape { got: 7, .. }), "{err}");
    assert!(err.to_string().contains("multiple of 5"), "{err}");
    let err = model.step(&mut state, &[0.0; 10]).unwrap_err();
    assert!(matches!(err, Error::Shape { got: 10, .. }));
    let (other, _) = model_for("gru");
    let mut gru_state = other.new_state();
    assert!(matches!(model.run(&mut gru_state, &[0.0; 5]), Err(Error::StateMismatch { .. })));
}

#[test]
fn bidirectional_models_cannot_stream() {
    let (model, _) = model_for("lstm_bidirectional");
    let mut state = model.new_batch_state(3).unwrap();
    let err = model.step(&mut state, &[0.0; 9]).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}

#[test]
fn empty_sequence_leaves_the_state_as_it_was() {
    let (model, _) = model_for("lstm_1layer");
    let mut state = model.new_state();
    // A state that is not zero, so a reset would show.
    let h: Vec<f32> = (0..state.h().len()).map(|i| 0.25 + i as f32 * 0.01).collect();
    let c: Vec<f32> = (0..state.c().len()).map(|i| -0.5 + i as f32 * 0.02).collect();
    state.set_h(&h).unwrap();
    state.set_c(&c).unwrap();
    assert!(model.run(&mut state, &[]).unwrap().is_empty());
    assert_eq!(state.h(), &h[..]);
    assert_eq!(state.c(), &c[..]);
    // And the next step starts from that state, not from zeros.
    let x = vec![0.3; model.architecture().input_size as usize];
    let mut fresh = model.new_state();
    fresh.set_h(&h).unwrap();
    fresh.set_c(&c).unwrap();
    let want = model.step(&mut fresh, &x).unwrap().to_vec();
    assert_eq!(model.step(&mut state, &x).unwrap(), &want[..]);
}

#[test]
fn failed_write_leaves_nothing_behind() {
    let dir = TempDir::new("atomic");
    let meta = Metadata::new(Architecture::new(CellKind::Gru, 2, 3, 1));
    let mut w = Weights::zeros(&meta);
    w.layers[0].w_hh[4] = f32::NAN;
    let path = dir.path("m.lstm");
    let err = ModelWriter::new(&meta, &w).write(&path).unwrap_err();
    assert!(err.to_string().contains("weight_hh_l0"), "{err}");
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0, "something was written");
    // f16 overflow is refused too, naming the tensor.
    w.layers[0].w_hh[4] = 1e6;
    let err = ModelWriter::new(&meta, &w).dtype(lstmrt::format::DType::F16).write(&path).unwrap_err();
    assert!(err.to_string().contains("f16"), "{err}");
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
    // A good write replaces an existing file in one step.
    w.layers[0].w_hh[4] = 0.5;
    std::fs::write(&path, b"old").unwrap();
    ModelWriter::new(&meta, &w).write(&path).unwrap();
    Model::open(&path).unwrap();
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 1, "no temporary file is left");
}

#[test]
fn tensors_are_viewed_in_place_with_their_dtype_and_layout() {
    use lstmrt::format::{DType, Layout};
    let g = golden_cases().into_iter().find(|g| g.name == "lstm_1layer").unwrap(); // H = 7, input 5
    let canonical = ModelWriter::new(&g.meta, &g.weights).layout(Layout::Canonical).to_bytes().unwrap();
    let model = Model::from_bytes(&canonical).unwrap();
    assert!(model.repacked(), "a canonical file is repacked at open");
    let t = model.tensor("weight_ih_l0").unwrap();
    assert_eq!((t.shape(), t.layout()), (&[28u64, 5][..], Layout::Canonical));
    assert_eq!(t.as_f32().unwrap(), g.weights.layers[0].w_ih.as_slice());
    assert!(t.as_f16().is_none());

    let packed = ModelWriter::new(&g.meta, &g.weights).to_bytes().unwrap();
    let model = Model::from_bytes(&packed).unwrap();
    assert!(!model.repacked(), "the writer's default layout is used in place");
    let t = model.tensor("weight_ih_l0").unwrap();
    assert_eq!((t.shape(), t.layout()), (&[1u64, 5, 4, 16][..], Layout::Panel16));
    assert_eq!(model.canonical_f32("weight_ih_l0").unwrap(), g.weights.layers[0].w_ih);

    let bytes = ModelWriter::new(&g.meta, &g.weights).dtype(DType::F16).to_bytes().unwrap();
    let m16 = Model::from_bytes(&bytes).unwrap();
    let t = m16.tensor("weight_ih_l0").unwrap();
    assert_eq!(t.as_f16().unwrap().len(), 5 * 4 * 16);
    assert!(max_abs_diff(&m16.canonical_f32("weight_ih_l0").unwrap(), &g.weights.layers[0].w_ih) < 1e-3);
    assert_eq!(m16.tensor("bias_ih_l0").unwrap().dtype(), DType::F32);
}

#[test]
fn threads_split_the_batch_with_the_same_result() {
    let (model, g) = model_for("lstm_batch5");
    for threads in [1, 2, 3, 8] {
        let mut state = model.new_batch_state(g.batch).unwrap();
        state.set_threads(threads);
        state.set_h(g.h0.as_ref().unwrap()).unwrap();
        state.set_c(g.c0.as_ref().unwrap()).unwrap();
        let out = model.run(&mut state, &g.input).unwrap().to_vec();
        assert!(max_abs_diff(&out, &g.output) <= 1e-5, "{threads} threads");
        assert!(max_abs_diff(state.h(), &g.h_n) <= 1e-5, "{threads} threads");
        assert!(max_abs_diff(state.c(), g.c_n.as_ref().unwrap()) <= 1e-5, "{threads} threads");
    }
}

#[test]
fn vocabulary_is_public_and_its_absence_is_an_error() {
    let demo = Model::open(common::demo_model()).unwrap();
    let vocab = demo.vocabulary().unwrap();
    assert!(vocab.tokens.iter().any(|t| t == "later"), "the demo model reads 'later'");
    let unknown = vocab.unknown.expect("the demo model has an unknown token") as usize;
    assert_eq!(vocab.tokens[unknown], "<unk>");
    let (plain, _) = model_for("lstm_3layer");
    let err = plain.vocabulary().unwrap_err();
    assert!(err.to_string().contains("no vocabulary"), "{err}");
}

#[test]
fn a_loaded_model_runs_on_when_its_file_is_truncated_and_shared_files_are_not_mapped() {
    let dir = common::TempDir::new("load-truncate");
    let path = dir.path("m.lstm");
    let (model, g) = model_for("lstm_1layer");
    drop(model);
    ModelWriter::new(&g.meta, &g.weights).write(&path).unwrap();
    let loaded = Model::load(&path).unwrap();
    assert!(!loaded.is_mapped());
    let mut state = loaded.new_state();
    let first = loaded.run(&mut state, &g.input).unwrap().to_vec();
    // Truncate the file under the model: a mapped model would die of SIGBUS here.
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(10).unwrap();
    let mut state = loaded.new_state();
    assert_eq!(loaded.run(&mut state, &g.input).unwrap(), &first[..]);
    // A file anyone may write is read into memory by `open` too.
    ModelWriter::new(&g.meta, &g.weights).write(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert!(Model::open(&path).unwrap().is_mapped(), "a private file is mapped");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!Model::open(&path).unwrap().is_mapped(), "a world-writable file is copied");
    }
}

/// Stream `s` of the concurrency test: its own random sequence of its own
/// length, stepped on a state of its own (every third with two threads).
fn run_stream(model: &Model, s: usize) -> Vec<f32> {
    let mut rng = lstmrt::rng::Rng::new(100 + s as u64);
    let steps = if cfg!(miri) { 2 + s % 3 } else { 5 + s % 13 };
    let xs: Vec<f32> = (0..steps * 7).map(|_| rng.uniform_f32(-1.0, 1.0)).collect();
    let mut state = model.new_state();
    state.set_threads(if s.is_multiple_of(3) { 2 } else { 1 });
    let mut out = Vec::new();
    for x in xs.chunks(7) {
        out.extend_from_slice(model.step(&mut state, x).unwrap());
    }
    out
}

#[test]
fn eight_threads_sharing_one_model_each_stepping_four_states_match_one_thread_bit_for_bit() {
    // f32 and int8 models; every third state has two threads of its own, and
    // 256 units are enough panels to split, so pools run inside the shared
    // model's calls too.
    // Under miri (`tools/miri.sh`): 3 threads of 2 states, 32 units (two
    // panels, still split by the two-thread pools).
    let (threads, per_thread, hidden) = if cfg!(miri) { (3, 2, 32) } else { (8, 4, 256) };
    for dtype in [lstmrt::format::DType::F32, lstmrt::format::DType::I8] {
        let meta = Metadata::new(Architecture::new(CellKind::Lstm, 7, hidden, 2));
        let weights = lstmrt::Weights::random(&meta, &mut lstmrt::rng::Rng::new(3), 1.0);
        let bytes = ModelWriter::new(&meta, &weights).dtype(dtype).to_bytes().unwrap();
        let model = Arc::new(Model::from_bytes(&bytes).unwrap());
        let alone: Vec<Vec<f32>> = (0..threads * per_thread).map(|s| run_stream(&model, s)).collect();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let model = Arc::clone(&model);
                std::thread::spawn(move || {
                    let streams = per_thread * t..per_thread * (t + 1);
                    streams.map(|s| (s, run_stream(&model, s))).collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (s, out) in h.join().unwrap() {
                let same =
                    out.len() == alone[s].len() && out.iter().zip(&alone[s]).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{} stream {s}: differs from the same stream run alone", dtype.name());
            }
        }
    }
}
