//! Speech segments from a voice-activity model's probabilities, by the
//! rules of the `silero-vad` package: [`speech_timestamps`] over a whole
//! signal (its `get_speech_timestamps_from_probs`, every parameter
//! included) and [`VadIterator`], one chunk at a time (its `VADIterator`).
//!
//! Positions are in samples. Probabilities are compared as `f64`, as the
//! package compares the Python floats its model returns; a model's `f32`
//! output converts exactly. Callers that report seconds or undo a
//! decimation do so on the returned samples (the Python package's wrapper
//! rounds with Python's own `round`).
//!
//! Checked against the package's own function on 132 cases of synthetic
//! probabilities and parameters (`tests/fixtures/silero_timestamps.json`,
//! made by `tools/silero_timestamp_vectors.py`).

mod streams;

pub use streams::{VadStep, VadStreamOptions, VadStreams};

/// The parameters of [`speech_timestamps`], with the package's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechOptions {
    /// Speech starts at a probability at or above this.
    pub threshold: f64,
    /// Speech ends below this; `None`: `max(threshold - 0.15, 0.01)`.
    pub neg_threshold: Option<f64>,
    /// Segments no longer than this are dropped.
    pub min_speech_duration_ms: f64,
    /// A segment is cut once it is this long (`f64::INFINITY`: never): at
    /// the longest silence inside it, or where it has got to.
    pub max_speech_duration_s: f64,
    /// Silence must last this long to end a segment.
    pub min_silence_duration_ms: f64,
    /// Added to both ends of every segment (shared between close ones).
    pub speech_pad_ms: f64,
    /// A silence inside a segment is a place to cut a too-long segment
    /// when it lasts longer than this.
    pub min_silence_at_max_speech: f64,
    /// Cut a too-long segment at its longest such silence (else at the
    /// last one, the package's older rule).
    pub use_max_poss_sil_at_max_speech: bool,
}

impl Default for SpeechOptions {
    fn default() -> SpeechOptions {
        SpeechOptions {
            threshold: 0.5,
            neg_threshold: None,
            min_speech_duration_ms: 250.0,
            max_speech_duration_s: f64::INFINITY,
            min_silence_duration_ms: 100.0,
            speech_pad_ms: 30.0,
            min_silence_at_max_speech: 98.0,
            use_max_poss_sil_at_max_speech: true,
        }
    }
}

impl SpeechOptions {
    /// The threshold speech ends below.
    pub fn neg_threshold(&self) -> f64 {
        self.neg_threshold.unwrap_or((self.threshold - 0.15).max(0.01))
    }
}

/// Samples per probability at `sampling_rate`: Silero VAD's chunk (512 at
/// 16 kHz, 256 otherwise).
pub fn window_samples(sampling_rate: u32) -> usize {
    if sampling_rate == 16000 { 512 } else { 256 }
}

/// One speech segment, in samples: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// First sample of the segment.
    pub start: i64,
    /// One past its last sample.
    pub end: i64,
}

/// A segment while it is found: positions stay `f64` until the padding
/// truncates them, as the package's Python numbers do.
#[derive(Clone, Copy)]
struct Open {
    start: f64,
    end: f64,
}

/// The speech segments of a signal of `audio_length_samples` samples
/// (default: one window per probability) whose windows of `window` samples
/// had `probs`, at `sampling_rate` (the package's window is
/// [`window_samples`]`(sampling_rate)`; a model of other chunks passes its own).
pub fn speech_timestamps<P: Copy + Into<f64>>(
    probs: &[P],
    window: usize,
    sampling_rate: u32,
    o: &SpeechOptions,
    audio_length_samples: Option<usize>,
) -> Vec<Segment> {
    let window = window as f64;
    let rate = sampling_rate as f64;
    let length = audio_length_samples.map_or(probs.len() as f64 * window, |n| n as f64);
    let min_speech = rate * o.min_speech_duration_ms / 1000.0;
    let pad = rate * o.speech_pad_ms / 1000.0;
    let max_speech = rate * o.max_speech_duration_s - window - 2.0 * pad;
    let min_silence = rate * o.min_silence_duration_ms / 1000.0;
    let min_silence_at_max = rate * o.min_silence_at_max_speech / 1000.0;
    let neg = o.neg_threshold();

    let mut speeches: Vec<Open> = Vec::new();
    // The segment being found: its start (the package's `current_speech`
    // holds a start, or nothing).
    let mut current: Option<f64> = None;
    let mut triggered = false;
    let (mut temp_end, mut prev_end, mut next_start) = (0.0f64, 0.0f64, 0.0f64);
    // (end of a silence, its length) inside the current segment.
    let mut possible_ends: Vec<(f64, f64)> = Vec::new();

    for (i, &p) in probs.iter().enumerate() {
        let p: f64 = p.into();
        let cur = window * i as f64;
        if p >= o.threshold && temp_end != 0.0 {
            let silence = cur - temp_end;
            if silence > min_silence_at_max {
                possible_ends.push((temp_end, silence));
            }
            temp_end = 0.0;
            if next_start < prev_end {
                next_start = cur;
            }
        }
        if p >= o.threshold && !triggered {
            triggered = true;
            current = Some(cur);
            continue;
        }
        if triggered && current.is_some_and(|start| cur - start > max_speech) {
            if o.use_max_poss_sil_at_max_speech && !possible_ends.is_empty() {
                // The longest silence; the first of equal ones.
                let (end, length) = possible_ends
                    .iter()
                    .copied()
                    .fold((0.0, f64::NEG_INFINITY), |best, e| if e.1 > best.1 { e } else { best });
                speeches.push(Open { start: current.take().expect("triggered"), end });
                next_start = end + length;
                // (The package's `next_start < prev_end + cur` is always
                // true here: `next_start` is at most `cur`.)
                if next_start < end + cur {
                    current = Some(next_start);
                } else {
                    triggered = false;
                }
                (prev_end, next_start, temp_end) = (0.0, 0.0, 0.0);
                possible_ends.clear();
            } else if prev_end != 0.0 {
                speeches.push(Open { start: current.take().expect("triggered"), end: prev_end });
                if next_start < prev_end {
                    triggered = false;
                } else {
                    current = Some(next_start);
                }
                (prev_end, next_start, temp_end) = (0.0, 0.0, 0.0);
                possible_ends.clear();
            } else {
                speeches.push(Open { start: current.take().expect("triggered"), end: cur });
                (prev_end, next_start, temp_end) = (0.0, 0.0, 0.0);
                triggered = false;
                possible_ends.clear();
                continue;
            }
        }
        if p < neg && triggered {
            if temp_end == 0.0 {
                temp_end = cur;
            }
            let silence_now = cur - temp_end;
            if !o.use_max_poss_sil_at_max_speech && silence_now > min_silence_at_max {
                prev_end = temp_end;
            }
            if silence_now < min_silence {
                continue;
            }
            // `current` can be empty here only after a cut that ended the
            // segment (`triggered` false then), so it holds a start.
            let start = current.take().unwrap_or(0.0);
            if temp_end - start > min_speech {
                speeches.push(Open { start, end: temp_end });
            }
            (prev_end, next_start, temp_end) = (0.0, 0.0, 0.0);
            triggered = false;
            possible_ends.clear();
            continue;
        }
    }
    if let Some(start) = current
        && length - start > min_speech
    {
        speeches.push(Open { start, end: length });
    }

    // Padding, in order, each end moved before the next start is.
    let n = speeches.len();
    for i in 0..n {
        if i == 0 {
            speeches[0].start = (speeches[0].start - pad).max(0.0).trunc();
        }
        if i + 1 < n {
            let silence = speeches[i + 1].start - speeches[i].end;
            if silence < 2.0 * pad {
                let half = (silence / 2.0).floor();
                speeches[i].end += half.trunc();
                speeches[i + 1].start = (speeches[i + 1].start - half).max(0.0).trunc();
            } else {
                speeches[i].end = (speeches[i].end + pad).min(length).trunc();
                speeches[i + 1].start = (speeches[i + 1].start - pad).max(0.0).trunc();
            }
        } else {
            speeches[i].end = (speeches[i].end + pad).min(length).trunc();
        }
    }
    speeches.into_iter().map(|s| Segment { start: s.start as i64, end: s.end as i64 }).collect()
}

/// What one chunk of [`VadIterator`] says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VadEvent {
    /// Speech started at this sample (padded, not below 0).
    Start(f64),
    /// Speech ended at this sample (padded).
    End(f64),
}

/// Speech starts and ends one chunk at a time, by the rules of the
/// package's `VADIterator`: a start when a chunk's probability reaches the
/// threshold, an end once the probability has stayed below `threshold -
/// 0.15` for the minimum silence. Positions are `f64` samples (the
/// package's own numbers before `int()` or rounding to seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct VadIterator {
    threshold: f64,
    min_silence_samples: f64,
    speech_pad_samples: f64,
    triggered: bool,
    temp_end: f64,
    current_sample: f64,
}

impl VadIterator {
    /// The package's defaults are 0.5, 100 ms and 30 ms.
    pub fn new(threshold: f64, sampling_rate: u32, min_silence_duration_ms: f64, speech_pad_ms: f64) -> VadIterator {
        let rate = sampling_rate as f64;
        VadIterator {
            threshold,
            min_silence_samples: rate * min_silence_duration_ms / 1000.0,
            speech_pad_samples: rate * speech_pad_ms / 1000.0,
            triggered: false,
            temp_end: 0.0,
            current_sample: 0.0,
        }
    }

    /// Back to the start of a signal.
    pub fn reset(&mut self) {
        (self.triggered, self.temp_end, self.current_sample) = (false, 0.0, 0.0);
    }

    /// Whether speech is going on.
    pub fn triggered(&self) -> bool {
        self.triggered
    }

    /// The next chunk, of `window` samples, had probability `p`.
    pub fn push(&mut self, p: impl Into<f64>, window: usize) -> Option<VadEvent> {
        let p: f64 = p.into();
        let window = window as f64;
        self.current_sample += window;
        if p >= self.threshold && self.temp_end != 0.0 {
            self.temp_end = 0.0;
        }
        if p >= self.threshold && !self.triggered {
            self.triggered = true;
            let start = (self.current_sample - self.speech_pad_samples - window).max(0.0);
            return Some(VadEvent::Start(start));
        }
        if p < self.threshold - 0.15 && self.triggered {
            if self.temp_end == 0.0 {
                self.temp_end = self.current_sample;
            }
            if self.current_sample - self.temp_end < self.min_silence_samples {
                return None;
            }
            let end = self.temp_end + self.speech_pad_samples - window;
            (self.temp_end, self.triggered) = (0.0, false);
            return Some(VadEvent::End(end));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_longer_than_the_maximum_is_cut_at_its_longest_silence() {
        // 16 kHz, 512-sample windows: speech, a 5-window pause (160 ms, ends
        // speech), speech, a 4-window pause (128 ms), speech to the end.
        // The expected values are the package's own function's.
        let mut p = vec![0.9f64; 100];
        p[10..15].fill(0.1);
        p[20..24].fill(0.1);
        let seg = |s: &[(i64, i64)]| s.iter().map(|&(start, end)| Segment { start, end }).collect::<Vec<_>>();
        assert_eq!(
            speech_timestamps(&p, 512, 16000, &SpeechOptions::default(), None),
            seg(&[(0, 5600), (7200, 51200)])
        );
        let o = SpeechOptions { max_speech_duration_s: 1.0, ..SpeechOptions::default() };
        assert_eq!(
            speech_timestamps(&p, 512, 16000, &o, None),
            seg(&[(0, 5600), (7200, 10720), (11808, 27392), (27392, 42752), (42752, 51200)])
        );
    }

    #[test]
    fn segments_start_end_drop_and_pad_by_the_packages_rules() {
        let o = SpeechOptions::default();
        let speech_segments = |p: &[f32], total: usize, o: SpeechOptions| {
            speech_timestamps(p, 512, 16000, &o, Some(total)).iter().map(|s| (s.start, s.end)).collect::<Vec<_>>()
        };
        // 512-sample chunks at 16 kHz: 32 ms each. Speech from chunk 2 to 14
        // (12 chunks = 384 ms), a 2-chunk dip (64 ms < 100 ms: not a pause),
        // then silence long enough to end it.
        let mut p = vec![0.1f32; 40];
        for v in &mut p[2..14] {
            *v = 0.9;
        }
        for v in &mut p[16..22] {
            *v = 0.8;
        }
        let s = speech_segments(&p, 40 * 512, o);
        // Starts at chunk 2 minus 30 ms (480 samples); ends where silence
        // began (chunk 22) plus 480.
        assert_eq!(s, vec![(2 * 512 - 480, 22 * 512 + 480)]);
        // A burst shorter than 250 ms is dropped; values between the
        // thresholds neither start nor end speech.
        let mut p = vec![0.0f32; 40];
        p[5..9].fill(0.9);
        assert!(speech_segments(&p, 40 * 512, o).is_empty());
        let mut p = vec![0.0f32; 60];
        p[5..20].fill(0.9);
        p[20..40].fill(0.4);
        let s = speech_segments(&p, 60 * 512, o);
        assert_eq!(s, vec![(5 * 512 - 480, 40 * 512 + 480)]);
        // Two segments closer than twice the padding share the gap (a
        // 30 ms pause ends speech, 40 ms of padding each side).
        let mut p = vec![0.0f32; 60];
        p[2..14].fill(0.9);
        p[16..28].fill(0.9);
        let close = SpeechOptions { min_silence_duration_ms: 30.0, speech_pad_ms: 40.0, ..o };
        let s = speech_segments(&p, 60 * 512, close);
        assert_eq!(s, vec![(2 * 512 - 640, 14 * 512 + 512), (16 * 512 - 512, 28 * 512 + 640)]);
        // Speech running to the end ends there.
        let mut p = vec![0.0f32; 20];
        p[4..].fill(0.9);
        assert_eq!(speech_segments(&p, 20 * 512 - 100, o), vec![(4 * 512 - 480, 20 * 512 - 100)]);
    }

    #[test]
    fn the_iterator_starts_and_ends_as_the_package_does() {
        let mut it = VadIterator::new(0.5, 16000, 100.0, 30.0);
        let mut events = Vec::new();
        for (i, &p) in [0.1f32, 0.9, 0.9, 0.2, 0.2, 0.2, 0.2, 0.9].iter().enumerate() {
            if let Some(e) = it.push(p, 512) {
                events.push((i, e));
            }
        }
        // Start: end of chunk 1 (1024) - pad 480 - 512 = 32. End: silence
        // from the end of chunk 3 (2048) lasting 100 ms (1600 samples) is
        // reached at chunk 6 (3584 - 2048 = 1536 < 1600) -> not yet; chunk 7
        // is speech again, so no end.
        assert_eq!(events, vec![(1, VadEvent::Start(32.0))]);
        assert!(it.triggered());
    }
}
