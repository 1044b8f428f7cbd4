//! `lstmrt::vad::speech_timestamps` against the `silero-vad` package's own
//! `get_speech_timestamps_from_probs`: 132 cases (12 synthetic probability
//! sequences x 11 parameter sets: defaults, max_speech_duration_s both
//! ways, min_silence_at_max_speech, seconds, zero durations, thresholds,
//! 8 kHz, a decimation step), made by `tools/silero_timestamp_vectors.py`.
//! Samples must be identical; seconds are rounded as Python's `round` does.

use lstmrt::vad::{SpeechOptions, speech_timestamps};
use serde_json::Value;

/// Python's `round(x, n)` on an f64: correctly rounded, ties to even on the
/// exact binary value (Rust's formatting does the same).
fn py_round(x: f64, n: usize) -> f64 {
    format!("{x:.n$}").parse().unwrap()
}

#[test]
fn segments_are_the_packages_on_every_case() {
    let text = std::fs::read_to_string(lstmrt_testkit::fixtures().join("silero_timestamps.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 132);
    for (k, case) in cases.iter().enumerate() {
        let probs: Vec<f64> = case["probs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let kw = case["kwargs"].as_object().unwrap();
        let num = |key: &str, default: f64| kw.get(key).map_or(default, |v| v.as_f64().unwrap());
        let rate = num("sampling_rate", 16000.0) as u32;
        let d = SpeechOptions::default();
        let o = SpeechOptions {
            threshold: num("threshold", d.threshold),
            neg_threshold: kw.get("neg_threshold").map(|v| v.as_f64().unwrap()),
            min_speech_duration_ms: num("min_speech_duration_ms", d.min_speech_duration_ms),
            max_speech_duration_s: num("max_speech_duration_s", d.max_speech_duration_s),
            min_silence_duration_ms: num("min_silence_duration_ms", d.min_silence_duration_ms),
            speech_pad_ms: num("speech_pad_ms", d.speech_pad_ms),
            min_silence_at_max_speech: num("min_silence_at_max_speech", d.min_silence_at_max_speech),
            use_max_poss_sil_at_max_speech: kw
                .get("use_max_poss_sil_at_max_speech")
                .is_none_or(|v| v.as_bool().unwrap()),
        };
        let length = num("audio_length_samples", 0.0) as usize;
        let step = num("step", 1.0) as i64;
        let seconds = kw.get("return_seconds").is_some_and(|v| v.as_bool().unwrap());
        let resolution = num("time_resolution", 1.0) as usize;
        let window = lstmrt::vad::window_samples(rate);
        let got = speech_timestamps(&probs, window, rate, &o, Some(length));
        let want = case["result"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "case {k} {kw:?}: {got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            if seconds {
                let total = length as f64 / rate as f64;
                let start = py_round(g.start as f64 / rate as f64, resolution).max(0.0);
                let end = py_round(g.end as f64 / rate as f64, resolution).min(total);
                assert_eq!((start, end), (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap()), "case {k} {kw:?}");
            } else {
                let want = (w["start"].as_i64().unwrap(), w["end"].as_i64().unwrap());
                assert_eq!((g.start * step, g.end * step), want, "case {k} {kw:?}");
            }
        }
    }
}

/// Three live calls through one [`lstmrt::vad::VadStreams`]: audio pushed in
/// pieces of odd sizes, processed at odd times, one call reset and one
/// leaving half way. Each call's probabilities are the scalar reference's
/// on its own audio, and its events are `VADIterator`'s on them.
#[test]
fn vad_streams_give_each_call_what_it_would_get_alone() {
    use lstmrt::vad::{VadEvent, VadIterator, VadStreamOptions};
    let root = lstmrt_testkit::repo_root().join("models/silero_vad");
    let model = lstmrt::Model::open(root.join("silero_vad.lstm")).unwrap();
    let (rate, speech) = lstmrt_testkit::read_wav_pcm16(&root.join("speech.wav"));
    assert_eq!(rate, 16000);
    // Three calls: the speech from three offsets (2.5 s each).
    let len = 40_000;
    let calls: Vec<&[f32]> = [0, 24_000, 70_000].iter().map(|&o| &speech[o..o + len]).collect();
    let options = VadStreamOptions::default();
    let mut vs = model.new_vad_streams(4, options).unwrap();
    vs.set_threads(2);
    let ids: Vec<_> = calls.iter().map(|_| vs.join().unwrap()).collect();
    let mut got: Vec<(Vec<f32>, Vec<VadEvent>)> = vec![(Vec::new(), Vec::new()); 3];
    let pieces = [160usize, 333, 1000, 512, 7];
    let mut fed = [0usize; 3];
    let mut round = 0;
    while fed.iter().any(|&f| f < len) {
        for c in 0..3 {
            // Call 2 is quiet for a while (its chunks wait), then catches up.
            if c == 2 && (8..20).contains(&round) {
                continue;
            }
            let n = pieces[(round + c) % pieces.len()].min(len - fed[c]);
            vs.push(ids[c], &calls[c][fed[c]..fed[c] + n]).unwrap();
            fed[c] += n;
        }
        if round % 3 != 1 {
            for step in vs.process(&model).unwrap() {
                let c = ids.iter().position(|&id| id == step.stream).unwrap();
                got[c].0.push(step.probability);
                got[c].1.extend(step.event);
            }
        }
        round += 1;
    }
    for step in vs.process(&model).unwrap() {
        let c = ids.iter().position(|&id| id == step.stream).unwrap();
        got[c].0.push(step.probability);
        got[c].1.extend(step.event);
    }
    let meta = model.metadata().clone();
    let weights = model.weights();
    let mut events_seen = 0;
    for c in 0..3 {
        let whole = len / 512 * 512;
        let want = lstmrt::reference::run_chunks(&meta, &weights, &calls[c][..whole]);
        let diff = lstmrt::reference::max_abs_diff(&got[c].0, &want);
        assert!(got[c].0.len() == want.len() && diff < 2e-5, "call {c}: {} chunks, max diff {diff}", got[c].0.len());
        let mut it = VadIterator::new(options.threshold, 16000, options.min_silence_duration_ms, options.speech_pad_ms);
        let events: Vec<VadEvent> = want.iter().filter_map(|&p| it.push(p, 512)).collect();
        assert_eq!(got[c].1, events, "call {c}");
        events_seen += events.len();
        assert_eq!(vs.pending(ids[c]).unwrap(), len - whole);
    }
    assert!(events_seen >= 4, "the calls must speak: {events_seen} events");
    // Reset starts a call over; leaving frees its place and refuses its id.
    vs.reset(ids[0]).unwrap();
    assert_eq!(vs.pending(ids[0]).unwrap(), 0);
    vs.push(ids[0], &calls[0][..512]).unwrap();
    let first = vs.process(&model).unwrap()[0].probability;
    assert!((first - got[0].0[0]).abs() < 2e-5, "{first} vs {}", got[0].0[0]);
    vs.leave(ids[1]).unwrap();
    assert_eq!(vs.len(), 2);
    assert!(vs.push(ids[1], &[0.0; 10]).unwrap_err().to_string().contains("has left"));
}

#[test]
fn vad_streams_refuse_bad_audio_and_unbounded_waiting() {
    use lstmrt::vad::VadStreamOptions;
    let model = lstmrt::Model::open(lstmrt_testkit::repo_root().join("models/silero_vad/silero_vad.lstm")).unwrap();
    let options = VadStreamOptions { max_pending_s: 0.1, ..VadStreamOptions::default() };
    let mut vs = model.new_vad_streams(2, options).unwrap();
    let a = vs.join().unwrap();
    let err = vs.push(a, &[0.0, f32::NAN]).unwrap_err();
    assert_eq!(err.to_string(), "audio value 1 is NaN: inputs must be finite");
    assert_eq!(vs.pending(a).unwrap(), 0);
    // 0.1 s at 16 kHz: 1600 samples may wait, not one more.
    vs.push(a, &[0.0; 1600]).unwrap();
    let err = vs.push(a, &[0.0]).unwrap_err();
    assert!(err.to_string().contains("1601 samples waiting, more than its 1600"), "{err}");
    assert_eq!(vs.process(&model).unwrap().len(), 3);
    vs.push(a, &[0.0; 1000]).unwrap();
    assert!(vs.join().is_ok() && vs.join().is_err());
    for bad in [0.0, -1.0, f64::NAN, 61.0] {
        let o = VadStreamOptions { max_pending_s: bad, ..VadStreamOptions::default() };
        assert!(model.new_vad_streams(1, o).is_err(), "max_pending_s {bad}");
    }
    assert!(model.new_vad_streams(0, VadStreamOptions::default()).is_err());
    // A model that is not a one-channel, one-probability chunked model.
    let demo = lstmrt::Model::open(lstmrt_testkit::demo_model()).unwrap();
    assert!(demo.new_vad_streams(1, VadStreamOptions::default()).is_err());
}

#[test]
fn the_committed_silero_models_run_their_stft_as_an_fft() {
    for name in ["silero_vad.lstm", "silero_vad_8k.lstm"] {
        let model = lstmrt::Model::open(lstmrt_testkit::repo_root().join("models/silero_vad").join(name)).unwrap();
        let stages = model.metadata().stages.as_ref().unwrap().front.len() + 3;
        let fft: Vec<usize> = (0..stages).filter(|&i| model.stage_runs_as_fft(i)).collect();
        assert_eq!(fft, [0], "{name}: only the first stage, the STFT");
    }
}
