//! WAV signals as `lstm-run` reads them for a chunked model: the RIFF
//! chunks, every sample format (8-bit unsigned, 16/24/32-bit integers,
//! float), the header's counts against the data present; a short mono
//! signal that decodes is run through a chunked model and its segments found.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lstmrt::vad::{SpeechOptions, speech_timestamps};
use lstmrt_cli::audio::wav_from_bytes;

fuzz_target!(|data: &[u8]| {
    let Ok(signal) = wav_from_bytes(data, "fuzz.wav") else { return };
    assert!(signal.data.iter().all(|v| v.is_finite()), "a decoded signal is finite");
    if signal.channels != 1 || signal.data.len() > 1 << 16 {
        return;
    }
    let model = lstmrt::Model::open(lstmrt_fuzz::scratch().join("chunked.lstm")).expect("the scratch model");
    let Ok(probs) = lstmrt_cli::chunked::run_signal(&model, &signal.data, 1) else { return };
    let chunk = model.metadata().stages.as_ref().expect("chunked").chunk as usize;
    let options = SpeechOptions { max_speech_duration_s: 1.0, ..SpeechOptions::default() };
    let rate = signal.rate.unwrap_or(16000).max(1);
    let _ = speech_timestamps(&probs, chunk, rate, &options, Some(signal.frames()));
});
