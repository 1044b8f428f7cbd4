//! The C ABI called as C calls it (raw pointers): results equal the Rust
//! API's bit for bit, refusals give the documented status and message and
//! write nothing.

use std::ffi::{CStr, CString};
use std::ptr;

use lstmrt::format::{Architecture, CellKind, Metadata};
use lstmrt::{Model, ModelWriter};
use lstmrt_capi::lstmrt_status::{self, *};
use lstmrt_capi::*;
use lstmrt_testkit::{Rng, TempDir, random_weights};

fn model_bytes(kind: CellKind, input: usize, hidden: usize, layers: usize, seed: u64) -> Vec<u8> {
    let meta = Metadata::new(Architecture::new(kind, input, hidden, layers));
    let weights = random_weights(&meta, &mut Rng::new(seed), 1.0);
    ModelWriter::new(&meta, &weights).to_bytes().unwrap()
}

fn last_error() -> String {
    // SAFETY: lstmrt_last_error returns a NUL-terminated string valid until
    // the next failing call on this thread.
    unsafe { CStr::from_ptr(lstmrt_last_error()) }.to_str().unwrap().to_string()
}

/// An owned C model handle, freed on drop.
struct CModel(*mut lstmrt_model);

impl CModel {
    fn from_bytes(bytes: &[u8]) -> CModel {
        let mut m = ptr::null_mut();
        // SAFETY: a valid buffer and out-pointer.
        assert_eq!(unsafe { lstmrt_model_from_buffer(bytes.as_ptr(), bytes.len(), &mut m) }, LSTMRT_OK);
        CModel(m)
    }
    fn state(&self, batch: usize) -> CState {
        let mut s = ptr::null_mut();
        // SAFETY: a live model and a valid out-pointer.
        assert_eq!(unsafe { lstmrt_state_new(self.0, batch, &mut s) }, LSTMRT_OK);
        CState(s)
    }
}

impl Drop for CModel {
    fn drop(&mut self) {
        // SAFETY: made by lstmrt_model_from_buffer/open, freed once.
        unsafe { lstmrt_model_free(self.0) }
    }
}

struct CState(*mut lstmrt_state);

impl Drop for CState {
    fn drop(&mut self) {
        // SAFETY: made by lstmrt_state_new/load, freed once.
        unsafe { lstmrt_state_free(self.0) }
    }
}

#[test]
fn step_and_run_equal_the_rust_api_bit_for_bit() {
    for (kind, layers) in [(CellKind::Lstm, 2), (CellKind::Gru, 1), (CellKind::RnnTanh, 3)] {
        let bytes = model_bytes(kind, 5, 16, layers, 7);
        let (c, rust) = (CModel::from_bytes(&bytes), Model::from_bytes(&bytes).unwrap());
        // SAFETY: live model.
        let (n_in, n_out) = unsafe { (lstmrt_model_input_size(c.0), lstmrt_model_output_size(c.0)) };
        assert_eq!((n_in, n_out), (5, 16));
        let batch = 3;
        let xs = Rng::new(1).vec(4 * batch * n_in, 1.0);

        let (cs, mut rs) = (c.state(batch), rust.new_batch_state(batch).unwrap());
        let mut y = vec![0.0f32; batch * n_out];
        for x in xs.chunks(batch * n_in) {
            // SAFETY: buffers of the documented sizes.
            assert_eq!(unsafe { lstmrt_step(c.0, cs.0, x.as_ptr(), y.as_mut_ptr()) }, LSTMRT_OK);
            assert_eq!(y, rust.step(&mut rs, x).unwrap(), "{kind:?}");
        }
        let cs2 = c.state(batch);
        let mut ys = vec![0.0f32; 4 * batch * n_out];
        // SAFETY: buffers of the documented sizes.
        assert_eq!(unsafe { lstmrt_run(c.0, cs2.0, xs.as_ptr(), 4, ys.as_mut_ptr()) }, LSTMRT_OK);
        let mut rs2 = rust.new_batch_state(batch).unwrap();
        assert_eq!(ys, rust.run(&mut rs2, &xs).unwrap());

        let (mut h, mut len) = (ptr::null(), 0usize);
        // SAFETY: live state, valid out-pointers; h points into the state.
        assert_eq!(unsafe { lstmrt_state_h(cs2.0, &mut h, &mut len) }, LSTMRT_OK);
        // SAFETY: live handles, and buffers of the sizes the call reads and writes.
        assert_eq!(unsafe { std::slice::from_raw_parts(h, len) }, rs2.h());
    }
}

#[test]
fn run_lengths_equals_the_rust_api() {
    let bytes = model_bytes(CellKind::Lstm, 4, 8, 2, 3);
    let (c, rust) = (CModel::from_bytes(&bytes), Model::from_bytes(&bytes).unwrap());
    let (steps, batch) = (5, 3);
    let xs = Rng::new(2).vec(steps * batch * 4, 1.0);
    let lengths = [5usize, 0, 2];
    let cs = c.state(batch);
    let mut ys = vec![1.0f32; steps * batch * 8];
    // SAFETY: buffers of the documented sizes.
    let status = unsafe { lstmrt_run_lengths(c.0, cs.0, xs.as_ptr(), steps, lengths.as_ptr(), ys.as_mut_ptr()) };
    assert_eq!(status, LSTMRT_OK);
    let mut rs = rust.new_batch_state(batch).unwrap();
    assert_eq!(ys, rust.run_lengths(&mut rs, &xs, &lengths).unwrap());

    let too_long = [6usize, 0, 2];
    let before = ys.clone();
    // SAFETY: as above.
    let status = unsafe { lstmrt_run_lengths(c.0, cs.0, xs.as_ptr(), steps, too_long.as_ptr(), ys.as_mut_ptr()) };
    assert_eq!(status, LSTMRT_BAD_ARGUMENT);
    assert!(last_error().contains("row 0 has length 6"), "{}", last_error());
    assert_eq!(ys, before, "nothing written on a refusal");
}

#[test]
fn refusals_give_their_status_and_message_and_write_nothing() {
    let bytes = model_bytes(CellKind::Lstm, 3, 4, 1, 1);
    let c = CModel::from_bytes(&bytes);
    let sentinel = 0x1234 as *mut lstmrt_model;

    let mut m = sentinel;
    let missing = CString::new("/nonexistent/model.lstm").unwrap();
    // SAFETY: valid C string and out-pointer.
    assert_eq!(unsafe { lstmrt_model_open(missing.as_ptr(), &mut m) }, LSTMRT_IO);
    assert!(last_error().contains("/nonexistent/model.lstm"), "{}", last_error());
    assert_eq!(m, sentinel, "out untouched");

    let dir = TempDir::new("capi");
    let path = CString::new(dir.0.to_str().unwrap()).unwrap();
    // SAFETY: as above.
    let status = unsafe { lstmrt_model_open(path.as_ptr(), &mut m) };
    assert_ne!(status, LSTMRT_OK, "a directory is not a model");
    assert!(!last_error().is_empty());

    let garbage = b"not a model file at all, just some bytes".to_vec();
    // SAFETY: a valid buffer.
    assert_eq!(unsafe { lstmrt_model_from_buffer(garbage.as_ptr(), garbage.len(), &mut m) }, LSTMRT_BAD_FILE);
    assert_eq!(m, sentinel);
    let mut corrupt = bytes.clone();
    corrupt[0] ^= 0xff; // the magic
    // SAFETY: a valid buffer.
    assert_eq!(unsafe { lstmrt_model_from_buffer(corrupt.as_ptr(), corrupt.len(), &mut m) }, LSTMRT_BAD_FILE);

    // NULLs everywhere.
    // SAFETY: NULL is what is being refused.
    unsafe {
        assert_eq!(lstmrt_model_open(ptr::null(), &mut m), LSTMRT_BAD_ARGUMENT);
        assert_eq!(last_error(), "path is NULL");
        assert_eq!(lstmrt_model_open(missing.as_ptr(), ptr::null_mut()), LSTMRT_BAD_ARGUMENT);
        assert_eq!(lstmrt_model_from_buffer(ptr::null(), 0, &mut m), LSTMRT_BAD_ARGUMENT);
        assert_eq!(lstmrt_model_input_size(ptr::null()), 0);
        let mut s = ptr::null_mut();
        assert_eq!(lstmrt_state_new(ptr::null(), 1, &mut s), LSTMRT_BAD_ARGUMENT);
        assert_eq!(lstmrt_state_new(c.0, 0, &mut s), LSTMRT_BAD_ARGUMENT);
        assert!(s.is_null());
        assert_eq!(lstmrt_step(c.0, ptr::null_mut(), ptr::null(), ptr::null_mut()), LSTMRT_BAD_ARGUMENT);
        assert_eq!(lstmrt_state_reset(ptr::null_mut()), LSTMRT_BAD_ARGUMENT);
        lstmrt_model_free(ptr::null_mut());
        lstmrt_state_free(ptr::null_mut());
        lstmrt_streams_free(ptr::null_mut());
    }

    let s = c.state(2);
    let x = [0.5f32; 6];
    let mut y = [9.0f32; 8];
    // SAFETY: x and y have the sizes for batch 2; NULL refused.
    unsafe {
        assert_eq!(lstmrt_step(c.0, s.0, ptr::null(), y.as_mut_ptr()), LSTMRT_BAD_ARGUMENT);
        assert_eq!(last_error(), "x is NULL");
        // A misaligned float pointer.
        let bytes = [0u8; 64];
        let odd = bytes.as_ptr().add(1).cast::<f32>();
        assert_eq!(lstmrt_step(c.0, s.0, odd, y.as_mut_ptr()), LSTMRT_BAD_ARGUMENT);
        assert!(last_error().contains("not aligned"));
        assert_eq!(y, [9.0; 8]);
    }
    // A state of another model's shape.
    let other = CModel::from_bytes(&model_bytes(CellKind::Lstm, 3, 6, 1, 1));
    let s_other = other.state(2);
    let mut y_other = [0.0f32; 12];
    // SAFETY: buffers sized for the state's own model, as the contract says.
    assert_eq!(unsafe { lstmrt_step(c.0, s_other.0, x.as_ptr(), y_other.as_mut_ptr()) }, LSTMRT_BAD_ARGUMENT);
    assert!(last_error().contains("state is for"), "{}", last_error());

    // Bidirectional models cannot step: unsupported.
    let mut meta = Metadata::new(Architecture::new(CellKind::Lstm, 3, 4, 1));
    meta.architecture.bidirectional = true;
    let bidi = ModelWriter::new(&meta, &random_weights(&meta, &mut Rng::new(1), 1.0)).to_bytes().unwrap();
    let b = CModel::from_bytes(&bidi);
    let bs = b.state(1);
    let mut yb = [0.0f32; 8];
    // SAFETY: sizes for batch 1.
    assert_eq!(unsafe { lstmrt_step(b.0, bs.0, x.as_ptr(), yb.as_mut_ptr()) }, LSTMRT_UNSUPPORTED);

    // SAFETY: static strings.
    let name = |st: lstmrt_status| unsafe { CStr::from_ptr(lstmrt_status_name(st as u32)) }.to_str().unwrap();
    assert_eq!(name(LSTMRT_BUFFER_TOO_SMALL), "LSTMRT_BUFFER_TOO_SMALL");
    assert_eq!(name(LSTMRT_OUT_OF_MEMORY), "LSTMRT_OUT_OF_MEMORY");
    assert_eq!(name(LSTMRT_OK), "LSTMRT_OK");
}

#[test]
fn batches_out_of_range_are_bad_arguments_from_the_library() {
    let c = CModel::from_bytes(&model_bytes(CellKind::Lstm, 2, 3, 1, 7));
    for batch in [0, lstmrt::State::MAX_BATCH + 1] {
        let mut s = ptr::null_mut();
        // SAFETY: a live model, a writable out.
        assert_eq!(unsafe { lstmrt_state_new(c.0, batch, &mut s) }, LSTMRT_BAD_ARGUMENT);
        assert!(s.is_null());
        assert!(
            last_error().contains(&format!("of {batch} streams: the batch must be 1 to 1048576")),
            "{}",
            last_error()
        );
    }
}

#[test]
fn state_save_and_load_through_a_callers_buffer() {
    let bytes = model_bytes(CellKind::Lstm, 3, 4, 2, 5);
    let c = CModel::from_bytes(&bytes);
    let s = c.state(2);
    let x = [0.25f32, -0.5, 1.0, 0.0, 0.75, -1.0];
    let mut y = [0.0f32; 8];
    // SAFETY: sizes for batch 2.
    assert_eq!(unsafe { lstmrt_step(c.0, s.0, x.as_ptr(), y.as_mut_ptr()) }, LSTMRT_OK);

    let mut needed = 0usize;
    // SAFETY: NULL buffer of capacity 0 asks for the size.
    assert_eq!(unsafe { lstmrt_state_save(s.0, ptr::null_mut(), 0, &mut needed) }, LSTMRT_BUFFER_TOO_SMALL);
    assert!(needed > 0);
    let mut small = vec![0xAAu8; needed - 1];
    // SAFETY: `small.len()` writable bytes.
    let status = unsafe { lstmrt_state_save(s.0, small.as_mut_ptr(), small.len(), &mut needed) };
    assert_eq!(status, LSTMRT_BUFFER_TOO_SMALL);
    assert!(small.iter().all(|&b| b == 0xAA), "nothing written to a small buffer");
    let mut blob = vec![0u8; needed];
    let mut written = 0;
    // SAFETY: `blob.len()` writable bytes.
    assert_eq!(unsafe { lstmrt_state_save(s.0, blob.as_mut_ptr(), blob.len(), &mut written) }, LSTMRT_OK);
    assert_eq!(written, needed);

    let mut loaded = ptr::null_mut();
    // SAFETY: a valid blob and out-pointer.
    assert_eq!(unsafe { lstmrt_state_load(c.0, blob.as_ptr(), blob.len(), &mut loaded) }, LSTMRT_OK);
    let loaded = CState(loaded);
    let (mut y1, mut y2) = ([0.0f32; 8], [0.0f32; 8]);
    // SAFETY: sizes for batch 2.
    unsafe {
        assert_eq!(lstmrt_step(c.0, s.0, x.as_ptr(), y1.as_mut_ptr()), LSTMRT_OK);
        assert_eq!(lstmrt_step(c.0, loaded.0, x.as_ptr(), y2.as_mut_ptr()), LSTMRT_OK);
    }
    assert_eq!(y1, y2, "the loaded state goes on where the saved one was");

    blob.truncate(blob.len() - 1);
    let mut bad = ptr::null_mut();
    // SAFETY: a valid (short) buffer.
    assert_eq!(unsafe { lstmrt_state_load(c.0, blob.as_ptr(), blob.len(), &mut bad) }, LSTMRT_BAD_FILE);
    assert!(bad.is_null());
}

#[test]
fn stream_batches_step_each_stream_as_alone() {
    let bytes = model_bytes(CellKind::Lstm, 3, 8, 1, 9);
    let c = CModel::from_bytes(&bytes);
    let rust = Model::from_bytes(&bytes).unwrap();
    let mut streams = ptr::null_mut();
    // SAFETY: live model, valid out-pointer.
    assert_eq!(unsafe { lstmrt_streams_new(c.0, 4, &mut streams) }, LSTMRT_OK);
    let mut ids = [lstmrt_stream_id { index: 0, generation: 0 }; 3];
    for id in &mut ids {
        // SAFETY: live batch, valid out-pointer.
        assert_eq!(unsafe { lstmrt_streams_join(streams, id) }, LSTMRT_OK);
    }
    let mut alone: Vec<_> = (0..3).map(|_| rust.new_state()).collect();
    let mut rng = Rng::new(4);
    for step in 0..6 {
        // Stream 1 sits out odd steps.
        let active: Vec<usize> = (0..3).filter(|&i| i != 1 || step % 2 == 0).collect();
        let c_ids: Vec<lstmrt_stream_id> = active.iter().map(|&i| ids[i]).collect();
        let xs = rng.vec(active.len() * 3, 1.0);
        let mut ys = vec![0.0f32; active.len() * 8];
        // SAFETY: sizes for `active.len()` streams.
        let status =
            unsafe { lstmrt_streams_step(c.0, streams, c_ids.as_ptr(), c_ids.len(), xs.as_ptr(), ys.as_mut_ptr()) };
        assert_eq!(status, LSTMRT_OK);
        for (k, &i) in active.iter().enumerate() {
            let want = rust.step(&mut alone[i], &xs[k * 3..][..3]).unwrap();
            let diff = lstmrt_testkit::max_abs_diff(&ys[k * 8..][..8], want);
            assert!(diff <= 1e-6, "stream {i} step {step}: {diff}");
        }
    }
    // SAFETY: live batch; the ids were given out by it.
    unsafe {
        assert_eq!(lstmrt_streams_leave(streams, ids[0]), LSTMRT_OK);
        assert_eq!(lstmrt_streams_reset(streams, ids[0]), LSTMRT_BAD_ARGUMENT);
        assert!(last_error().contains("has left"), "{}", last_error());
        let forged = lstmrt_stream_id { index: 9, generation: 0 };
        assert_eq!(lstmrt_streams_reset(streams, forged), LSTMRT_BAD_ARGUMENT);
        let (x, mut y) = ([0.0f32; 3], [0.0f32; 8]);
        assert_eq!(lstmrt_streams_step(c.0, streams, ids.as_ptr(), 0, x.as_ptr(), y.as_mut_ptr()), LSTMRT_BAD_ARGUMENT);
        lstmrt_streams_free(streams);
    }
}

#[test]
fn text_helpers_give_what_the_rust_api_gives() {
    let path = CString::new(lstmrt_testkit::demo_model().to_str().unwrap()).unwrap();
    let mut m = ptr::null_mut();
    // SAFETY: valid C string and out-pointer.
    assert_eq!(unsafe { lstmrt_model_open(path.as_ptr(), &mut m) }, LSTMRT_OK);
    let c = CModel(m);
    let rust = Model::open(lstmrt_testkit::demo_model()).unwrap();
    let text = CString::new("Anna walked home. Later").unwrap();
    let mut count = 0;
    // SAFETY: NULL ids with capacity 0 asks for the count.
    let status = unsafe { lstmrt_tokenize(c.0, text.as_ptr(), ptr::null_mut(), 0, &mut count) };
    assert_eq!(status, LSTMRT_BUFFER_TOO_SMALL);
    let mut ids = vec![0u32; count];
    // SAFETY: `count` values.
    assert_eq!(unsafe { lstmrt_tokenize(c.0, text.as_ptr(), ids.as_mut_ptr(), count, &mut count) }, LSTMRT_OK);
    assert_eq!(ids, rust.tokenize("Anna walked home. Later").unwrap());

    // SAFETY: live model.
    let (n_in, n_out, n_head) =
        unsafe { (lstmrt_model_input_size(c.0), lstmrt_model_output_size(c.0), lstmrt_model_head_size(c.0)) };
    let mut x = vec![0.0f32; n_in];
    let mut y = vec![0.0f32; n_out];
    let s = c.state(1);
    for &id in &ids {
        // SAFETY: documented sizes.
        unsafe {
            assert_eq!(lstmrt_token_input(c.0, id, x.as_mut_ptr()), LSTMRT_OK);
            assert_eq!(lstmrt_step(c.0, s.0, x.as_ptr(), y.as_mut_ptr()), LSTMRT_OK);
        }
    }
    let mut probs = vec![0.0f32; n_head];
    // SAFETY: documented sizes.
    assert_eq!(unsafe { lstmrt_head(c.0, y.as_ptr(), probs.as_mut_ptr()) }, LSTMRT_OK);
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5, "probabilities: {probs:?}");

    let mut label = [0x7f as std::ffi::c_char; 2];
    let mut len = 0;
    // SAFETY: a 2-byte buffer, too small for "he" and its NUL.
    assert_eq!(unsafe { lstmrt_head_label(c.0, 0, label.as_mut_ptr(), 2, &mut len) }, LSTMRT_BUFFER_TOO_SMALL);
    assert_eq!((len, label), (2, [0x7f; 2]));
    let mut label = [0 as std::ffi::c_char; 16];
    // SAFETY: 16 bytes.
    assert_eq!(unsafe { lstmrt_head_label(c.0, 0, label.as_mut_ptr(), 16, &mut len) }, LSTMRT_OK);
    // SAFETY: NUL-terminated by lstmrt_head_label.
    let got = unsafe { CStr::from_ptr(label.as_ptr()) }.to_str().unwrap().to_string();
    assert_eq!(got, rust.metadata().head.as_ref().unwrap().labels[0]);
    // SAFETY: 16 bytes; the index is refused.
    assert_eq!(unsafe { lstmrt_head_label(c.0, 99, label.as_mut_ptr(), 16, &mut len) }, LSTMRT_BAD_ARGUMENT);

    let bad = [0xffu8, 0xfe, 0];
    // SAFETY: a NUL-terminated, non-UTF-8 string.
    let status = unsafe { lstmrt_tokenize(c.0, bad.as_ptr().cast(), ids.as_mut_ptr(), count, &mut count) };
    assert_eq!(status, LSTMRT_BAD_ARGUMENT);
    assert_eq!(last_error(), "text is not UTF-8");
}

#[test]
fn one_model_serves_many_threads_each_with_its_own_state() {
    let bytes = model_bytes(CellKind::Lstm, 4, 32, 2, 11);
    let c = CModel::from_bytes(&bytes);
    let rust = Model::from_bytes(&bytes).unwrap();
    let xs = Rng::new(3).vec(20 * 4, 1.0);
    let want = rust.run(&mut rust.new_state(), &xs).unwrap().to_vec();
    let model = c.0 as usize; // shared by the threads (the header says it may be)
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let m = model as *const lstmrt_model;
                let mut s = ptr::null_mut();
                let mut y = vec![0.0f32; 32];
                let mut got = Vec::new();
                // SAFETY: a live model shared read-only; a state per thread.
                unsafe {
                    assert_eq!(lstmrt_state_new(m, 1, &mut s), LSTMRT_OK);
                    for x in xs.chunks(4) {
                        assert_eq!(lstmrt_step(m, s, x.as_ptr(), y.as_mut_ptr()), LSTMRT_OK);
                        got.extend_from_slice(&y);
                    }
                    lstmrt_state_free(s);
                }
                assert!(lstmrt_testkit::max_abs_diff(&got, &want) <= 1e-6);
            });
        }
    });
}

#[test]
fn chunked_models_run_chunk_by_chunk_through_the_abi() {
    // Silero VAD at both of its rates: the chunk size comes from the model.
    for (file, window) in [("silero_vad.lstm", 512usize), ("silero_vad_8k.lstm", 256)] {
        let path = lstmrt_testkit::repo_root().join("models/silero_vad").join(file);
        let model = Model::open(&path).unwrap();
        let c = CModel::from_bytes(&std::fs::read(&path).unwrap());
        let (mut chunk, mut outputs) = (0usize, 0usize);
        // SAFETY: live handles, and buffers of the sizes the call reads and writes.
        assert_eq!(unsafe { lstmrt_model_chunk_sizes(c.0, &mut chunk, &mut outputs) }, LSTMRT_OK);
        assert_eq!((chunk, outputs), (window, 1));
        let mut chunks: *mut lstmrt_chunks = ptr::null_mut();
        // SAFETY: live handles, and buffers of the sizes the call reads and writes.
        assert_eq!(unsafe { lstmrt_chunks_new(c.0, 2, 1, &mut chunks) }, LSTMRT_OK);
        // Two streams: a tone and silence; the same as the Rust API's chunks.
        let x: Vec<f32> =
            (0..2 * window).map(|i| if i < window { 0.3 * (i as f32 * 0.2).sin() } else { 0.0 }).collect();
        let mut rust = model.new_chunk_state(2).unwrap();
        for round in 0..3 {
            let mut y = [0.0f32; 2];
            assert_eq!(
                // SAFETY: live handles, and buffers of the sizes the call reads and writes.
                unsafe { lstmrt_chunks_run(c.0, chunks, x.as_ptr(), y.as_mut_ptr()) },
                LSTMRT_OK,
                "{}",
                last_error()
            );
            assert_eq!(&y[..], model.run_chunk(&mut rust, &x).unwrap(), "{file} round {round}");
        }
        // SAFETY: live handles, and buffers of the sizes the call reads and writes.
        assert_eq!(unsafe { lstmrt_chunks_reset_stream(chunks, 1) }, LSTMRT_OK);
        // SAFETY: live handles, and buffers of the sizes the call reads and writes.
        assert_eq!(unsafe { lstmrt_chunks_reset_stream(chunks, 2) }, LSTMRT_BAD_ARGUMENT);
        assert!(last_error().contains("stream 2 of a batch of 2"), "{}", last_error());
        let mut y = [0.0f32; 2];
        // SAFETY: live handles, and buffers of the sizes the call reads and writes.
        assert_eq!(unsafe { lstmrt_chunks_run(c.0, chunks, ptr::null(), y.as_mut_ptr()) }, LSTMRT_BAD_ARGUMENT);
        // SAFETY: live handles, and buffers of the sizes the call reads and writes.
        unsafe { lstmrt_chunks_free(chunks) };
    }
    let (mut chunk, mut outputs) = (0usize, 0usize);
    // A model without stages has none to run.
    let plain = CModel::from_bytes(&model_bytes(CellKind::Lstm, 3, 4, 1, 1));
    let mut none: *mut lstmrt_chunks = ptr::null_mut();
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    assert_eq!(unsafe { lstmrt_chunks_new(plain.0, 1, 1, &mut none) }, LSTMRT_UNSUPPORTED);
    assert!(none.is_null());
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    assert_eq!(unsafe { lstmrt_model_chunk_sizes(plain.0, &mut chunk, &mut outputs) }, LSTMRT_OK);
    assert_eq!((chunk, outputs), (0, 0));
}
