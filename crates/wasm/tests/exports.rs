//! The exports the JavaScript layer calls, natively: handles, statuses and
//! messages, caller-owned buffers, null and freed handles refused by name.

use lstmrt_wasm::*;

fn text() -> String {
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    let bytes = unsafe { std::slice::from_raw_parts(lstmrt_text(), lstmrt_text_len()) };
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn a_chunked_model_runs_through_the_exports_as_through_the_library() {
    let path = lstmrt_testkit::repo_root().join("models/silero_vad/silero_vad.lstm");
    let bytes = std::fs::read(&path).unwrap();
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    let model = unsafe { lstmrt_model_new(bytes.as_ptr(), bytes.len()) };
    assert!(!model.is_null(), "{}", text());
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    assert_eq!(unsafe { lstmrt_model_info(model) }, 0);
    let info = text();
    assert!(
        info.contains(r#""chunks":{"chunk":512,"channels":1,"context":64,"sampleRate":16000,"outputs":1}"#),
        "{info}"
    );
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    let chunks = unsafe { lstmrt_chunks_new(model, 2) };
    assert!(!chunks.is_null());
    let x = lstmrt_alloc(2 * 512 * 4).cast::<f32>();
    let y = lstmrt_alloc(2 * 4).cast::<f32>();
    let signal: Vec<f32> = (0..1024).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    unsafe { std::ptr::copy_nonoverlapping(signal.as_ptr(), x, 1024) };
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    assert_eq!(unsafe { lstmrt_chunks_run(model, chunks, x, y) }, 0, "{}", text());
    // The library's own answer for the same two streams.
    let lib = lstmrt::Model::open(&path).unwrap();
    let mut st = lib.new_chunk_state(2).unwrap();
    let want = lib.run_chunk(&mut st, &signal).unwrap().to_vec();
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    let got = unsafe { std::slice::from_raw_parts(y, 2) };
    assert_eq!(got, &want[..]);
    // A stream reset, then a refusal of a stream that does not exist.
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    assert_eq!(unsafe { lstmrt_chunks_reset(chunks, 1) }, 0);
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    assert_eq!(unsafe { lstmrt_chunks_reset(chunks, 2) }, 1);
    assert!(text().contains("stream 2 of a batch of 2"), "{}", text());
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    unsafe {
        lstmrt_chunks_free(chunks);
        lstmrt_free(x.cast(), 2 * 512 * 4);
        lstmrt_free(y.cast(), 8);
        lstmrt_model_free(model);
    }
}

#[test]
fn null_handles_and_bad_bytes_are_refused_with_a_message() {
    let bad = [1u8, 2, 3];
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    assert!(unsafe { lstmrt_model_new(bad.as_ptr(), 3) }.is_null());
    assert!(text().contains("shorter than the 64-byte header"), "{}", text());
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    assert_eq!(unsafe { lstmrt_state_reset(std::ptr::null_mut()) }, 1);
    assert_eq!(text(), "state is null (freed, or never made)");
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    assert!(unsafe { lstmrt_chunks_new(std::ptr::null(), 1) }.is_null());
    assert!(lstmrt_alloc(0).is_null());
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    unsafe { lstmrt_free(std::ptr::null_mut(), 0) };
}

#[test]
fn speech_timestamps_through_the_export_are_the_librarys() {
    let mut p = vec![0.05f32; 60];
    p[5..30].fill(0.9);
    let options = [0.5, f64::NAN, 250.0, f64::INFINITY, 100.0, 30.0, 98.0, 1.0];
    let mut out = vec![0.0f64; 2 * p.len()];
    // SAFETY: live handles, and buffers of the sizes the call reads and writes.
    let n = unsafe {
        lstmrt_speech_timestamps(p.as_ptr(), p.len(), 512, 16000, options.as_ptr(), 60.0 * 512.0, out.as_mut_ptr())
    };
    let want = lstmrt::vad::speech_timestamps(&p, 512, 16000, &lstmrt::vad::SpeechOptions::default(), Some(60 * 512));
    assert_eq!(n as usize, want.len());
    assert_eq!((out[0] as i64, out[1] as i64), (want[0].start, want[0].end));
}
