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
