//! Voice activity for Python: many live streams through one chunked model
//! (`VadStreams`) and the `silero-vad` package's segmenter
//! (`speech_timestamps`), which `lstmrt.silero` builds its drop-in on.

use numpy::PyArray1;
use pyo3::prelude::*;

use lstmrt::vad::{SpeechOptions, VadEvent, VadStreamOptions};

use crate::{Model, OrRaise, StreamId, floats, shape_error};

/// Up to `capacity` live audio streams (calls) of one voice-activity model
/// (Silero VAD): streams join and leave, audio is pushed per stream in
/// pieces of any size, and `process()` runs one chunk of every stream that
/// has one waiting as one batch (again while any has another), with the
/// GIL released. Events follow the `silero-vad` package's `VADIterator`.
#[pyclass(module = "lstmrt")]
pub(crate) struct VadStreams {
    model: Py<Model>,
    inner: lstmrt::vad::VadStreams,
}

#[pymethods]
impl VadStreams {
    #[new]
    #[pyo3(signature = (model, capacity, *, threshold = 0.5, min_silence_duration_ms = 100.0, speech_pad_ms = 30.0, max_pending_s = 2.0, threads = 1))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: Py<Model>,
        capacity: usize,
        threshold: f64,
        min_silence_duration_ms: f64,
        speech_pad_ms: f64,
        max_pending_s: f64,
        threads: usize,
    ) -> PyResult<VadStreams> {
        let options = VadStreamOptions { threshold, min_silence_duration_ms, speech_pad_ms, max_pending_s };
        let mut inner = model.get().inner.new_vad_streams(capacity, options).or_raise(py)?;
        inner.set_threads(threads.max(1));
        Ok(VadStreams { model, inner })
    }

    /// A new stream: fresh state, nothing waiting, not in speech.
    fn join(&mut self, py: Python<'_>) -> PyResult<StreamId> {
        Ok(StreamId { inner: self.inner.join().or_raise(py)? })
    }

    /// The stream leaves (its waiting audio is dropped); its id is refused from now on.
    fn leave(&mut self, py: Python<'_>, id: StreamId) -> PyResult<()> {
        self.inner.leave(id.inner).or_raise(py)
    }

    /// The stream starts afresh, as `VADIterator.reset_states()`.
    fn reset(&mut self, py: Python<'_>, id: StreamId) -> PyResult<()> {
        self.inner.reset(id.inner).or_raise(py)
    }

    /// Appends float32 audio `[samples]` (the model's rate) to a stream.
    fn push(&mut self, py: Python<'_>, id: StreamId, samples: &Bound<'_, PyAny>) -> PyResult<()> {
        let (values, shape) = floats(py, "samples", samples)?;
        if shape.len() != 1 {
            return Err(shape_error(py, format!("samples is {shape:?}, audio is one-dimensional")));
        }
        self.inner.push(id.inner, values.as_slice()).or_raise(py)
    }

    /// Samples of a stream waiting for `process()`.
    fn pending(&self, py: Python<'_>, id: StreamId) -> PyResult<usize> {
        self.inner.pending(id.inner).or_raise(py)
    }

    /// Whether a stream is in speech.
    fn triggered(&self, py: Python<'_>, id: StreamId) -> PyResult<bool> {
        self.inner.triggered(id.inner).or_raise(py)
    }

    /// Runs every stream with a whole chunk waiting, round after round.
    /// Returns `(ids, probs, events)`: the stream of each chunk run, its
    /// probability (float32 array), and `(id, "start" | "end", sample)` for
    /// each speech start or end, `sample` as `VADIterator` computes it
    /// (a float, before `int()` or rounding to seconds).
    #[allow(clippy::type_complexity)]
    fn process<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(Vec<StreamId>, Bound<'py, PyArray1<f32>>, Vec<(StreamId, &'static str, f64)>)> {
        let model = self.model.get();
        let inner = &mut self.inner;
        let steps = py.detach(|| inner.process(&model.inner).map(|s| s.to_vec())).or_raise(py)?;
        let ids = steps.iter().map(|s| StreamId { inner: s.stream }).collect();
        let probs: Vec<f32> = steps.iter().map(|s| s.probability).collect();
        let events = steps
            .iter()
            .filter_map(|s| {
                let id = StreamId { inner: s.stream };
                s.event.map(|e| match e {
                    VadEvent::Start(at) => (id, "start", at),
                    VadEvent::End(at) => (id, "end", at),
                })
            })
            .collect();
        Ok((ids, PyArray1::from_vec(py, probs), events))
    }

    /// Streams it holds.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Streams it has room for.
    #[getter]
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Samples per chunk.
    #[getter]
    fn window(&self) -> usize {
        self.inner.window()
    }

    /// The model's sampling rate.
    #[getter]
    fn sampling_rate(&self) -> u32 {
        self.inner.sampling_rate()
    }
}

/// Speech segments `[(start, end), ...]` in samples from per-chunk
/// probabilities, by the rules of the `silero-vad` package's
/// `get_speech_timestamps_from_probs` (every parameter; `window` samples per
/// probability, `audio_length_samples` the signal's length).
#[pyfunction]
#[pyo3(signature = (probs, *, window, sampling_rate, audio_length_samples, threshold = 0.5, neg_threshold = None, min_speech_duration_ms = 250.0, max_speech_duration_s = f64::INFINITY, min_silence_duration_ms = 100.0, speech_pad_ms = 30.0, min_silence_at_max_speech = 98.0, use_max_poss_sil_at_max_speech = true))]
#[allow(clippy::too_many_arguments)]
fn speech_timestamps(
    py: Python<'_>,
    probs: Vec<f64>,
    window: usize,
    sampling_rate: u32,
    audio_length_samples: usize,
    threshold: f64,
    neg_threshold: Option<f64>,
    min_speech_duration_ms: f64,
    max_speech_duration_s: f64,
    min_silence_duration_ms: f64,
    speech_pad_ms: f64,
    min_silence_at_max_speech: f64,
    use_max_poss_sil_at_max_speech: bool,
) -> PyResult<Vec<(i64, i64)>> {
    if window == 0 || sampling_rate == 0 {
        return Err(shape_error(py, "window and sampling_rate must be above 0".into()));
    }
    let o = SpeechOptions {
        threshold,
        neg_threshold,
        min_speech_duration_ms,
        max_speech_duration_s,
        min_silence_duration_ms,
        speech_pad_ms,
        min_silence_at_max_speech,
        use_max_poss_sil_at_max_speech,
    };
    let segments =
        py.detach(|| lstmrt::vad::speech_timestamps(&probs, window, sampling_rate, &o, Some(audio_length_samples)));
    Ok(segments.into_iter().map(|s| (s.start, s.end)).collect())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<VadStreams>()?;
    m.add_function(wrap_pyfunction!(speech_timestamps, m)?)?;
    Ok(())
}
