"""Silero VAD on lstmrt: a drop-in for the ``silero-vad`` package.

Porting a script means changing one import::

    # from silero_vad import load_silero_vad, read_audio, get_speech_timestamps
    from lstmrt.silero import load_silero_vad, read_audio, get_speech_timestamps

    model = load_silero_vad()
    wav = read_audio("speech.wav")                    # 16 kHz float32
    print(get_speech_timestamps(wav, model, return_seconds=True))

The names, arguments, defaults, results and error messages are the package's
(silero-vad 6.2.3): ``load_silero_vad``, the model called as
``model(chunk, sr)`` with ``reset_states()`` and ``audio_forward``,
``get_speech_timestamps`` (every parameter), ``get_speech_timestamps_from_probs``,
``VADIterator``, ``read_audio``, ``save_audio``, ``collect_chunks``,
``drop_chunks``, ``SileroVADSequence`` and ``get_speech_timestamps_sequence``.
The model is the package's own (its ``silero_vad.onnx``, both branches:
16 kHz and 8 kHz, picked by ``sr`` as the package does), converted to lstmrt
files that ship in this wheel with the package's MIT licence
(``lstmrt/data/LICENSE.silero-vad``), memory-mapped: every process that
loads it shares its pages.

Torch is not needed. numpy arrays (and lists) are accepted everywhere; where
torch is installed, torch tensors too, and a call given a tensor returns
tensors as the package does. Otherwise results are numpy arrays.

For servers, ``VADStreams`` runs many live calls through one model: push
each call's audio as it comes, ``process()`` steps every call that has a
chunk ready in one batch with the GIL released (``process_async()`` from
asyncio).
"""

import asyncio
import math
import os
import sys
import threading
import warnings
import wave
from collections import namedtuple

import numpy as np

from ._lstmrt import Model
from ._lstmrt import VadStreams as _VadStreams
from ._lstmrt import speech_timestamps as _speech_timestamps

__all__ = [
    "load_silero_vad",
    "SileroVAD",
    "get_speech_timestamps",
    "get_speech_timestamps_from_probs",
    "VADIterator",
    "VADStreams",
    "read_audio",
    "save_audio",
    "collect_chunks",
    "drop_chunks",
    "SileroVADSequence",
    "get_speech_timestamps_sequence",
    "model_path",
]

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
_FILES = {16000: "silero_vad_16k.lstm", 8000: "silero_vad_8k.lstm"}
_MODELS = {}
_MODELS_LOCK = threading.Lock()


def model_path(sampling_rate=16000):
    """The lstmrt model file of the 16 kHz or 8 kHz branch (for ``lstm-run``, the C API)."""
    if sampling_rate not in _FILES:
        raise ValueError(f"Silero VAD models exist for 8000 and 16000 Hz, not {sampling_rate}")
    return os.path.join(_DATA, _FILES[sampling_rate])


def _model(sampling_rate):
    # One memory-mapped Model per branch and process: states are per object.
    with _MODELS_LOCK:
        m = _MODELS.get(sampling_rate)
        if m is None:
            m = _MODELS[sampling_rate] = Model(model_path(sampling_rate))
        return m


# --- torch, when the caller uses it ------------------------------------------

def _torch():
    # Never imports torch: a caller who passes tensors has imported it.
    return sys.modules.get("torch")


def _is_tensor(x):
    t = _torch()
    return t is not None and t.is_tensor(x)


def _floats(x):
    """x as a float32 numpy array (values as given: int16 is not rescaled, as
    ``torch.Tensor(x)`` does not); TypeError if it cannot be."""
    if _is_tensor(x):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError("Audio cannot be casted to tensor. Cast it manually") from None


def _like(a, tensor):
    return _torch().from_numpy(np.ascontiguousarray(a)) if tensor else a


# --- the model ----------------------------------------------------------------

class SileroVAD:
    """Silero VAD, callable as the package's model: ``model(x, sr)`` with ``x``
    a chunk ``[512]`` at 16 kHz or ``[256]`` at 8 kHz (or ``[batch, n]``;
    multiples of 16 kHz are decimated), returning ``[batch, 1]``
    probabilities. State and 64 (32) samples of context carry over between
    calls until ``reset_states()``, a change of ``sr`` or of the batch."""

    def __init__(self, sample_rates=(8000, 16000)):
        self.sample_rates = list(sample_rates)
        self.reset_states()

    def reset_states(self, batch_size=1):
        self._state = None
        self._last_sr = 0
        self._last_batch_size = 0

    def _validate_input(self, x, sr):
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim > 2:
            raise ValueError(f"Too many dimensions for input audio chunk {x.ndim}")
        if sr != 16000 and (sr % 16000 == 0):
            step = sr // 16000
            x = x[:, ::step]
            sr = 16000
        if sr not in self.sample_rates:
            raise ValueError(f"Supported sampling rates: {self.sample_rates} (or multiply of 16000)")
        if sr / x.shape[1] > 31.25:
            raise ValueError("Input audio chunk is too short")
        return x, sr

    def _ensure(self, sr, batch):
        if (not self._last_batch_size or (self._last_sr and self._last_sr != sr)
                or self._last_batch_size != batch or self._state is None):
            self._state = _model(sr).new_chunk_state(batch)
        self._last_sr, self._last_batch_size = sr, batch
        return self._state

    def __call__(self, x, sr):
        tensor = _is_tensor(x)
        x, sr = self._validate_input(_floats(x), sr)
        num_samples = 512 if sr == 16000 else 256
        if x.shape[-1] != num_samples:
            raise ValueError(
                f"Provided number of samples is {x.shape[-1]} (Supported values: 256 for 8000 sample rate, 512 for 16000)")
        out = self._ensure(sr, x.shape[0]).run(np.ascontiguousarray(x))
        return _like(out, tensor)

    def audio_forward(self, x, sr):
        """Probabilities ``[batch, chunks]`` of whole signals ``[n]`` or
        ``[batch, n]`` (zero-padded to whole chunks), from a fresh state."""
        tensor = _is_tensor(x)
        x, sr = self._validate_input(_floats(x), sr)
        self.reset_states()
        num_samples = 512 if sr == 16000 else 256
        if x.shape[1] % num_samples:
            x = np.pad(x, ((0, 0), (0, num_samples - x.shape[1] % num_samples)))
        state = self._ensure(sr, x.shape[0])
        if x.shape[0] == 1:
            out = state.run_signal(np.ascontiguousarray(x[0]))[:, 0][None, :]
        else:
            out = np.concatenate([state.run(np.ascontiguousarray(x[:, i:i + num_samples]))
                                  for i in range(0, x.shape[1], num_samples)], axis=1)
        return _like(out, tensor)

    def _probs(self, audio, sr, window, callback):
        """The package's per-chunk loop over a 1-D signal in one call per
        block (the GIL released), the callback still once per chunk."""
        state = self._ensure(sr, 1)
        n = len(audio)
        if callback is None:
            return state.run_signal(audio)[:, 0].tolist()
        probs = []
        block = 256 * window
        for at in range(0, n, block):
            part = state.run_signal(audio[at:at + block])[:, 0].tolist()
            for k in range(len(part)):
                progress = min(at + (k + 1) * window, n)
                callback((progress / n) * 100)
            probs.extend(part)
        return probs

    def __repr__(self):
        return f"lstmrt.silero.SileroVAD(sample_rates={self.sample_rates})"


def load_silero_vad(onnx=False, opset_version=16, sequence=False, sampling_rate=16000, max_frames=512):
    """The package's loader: the same model whatever ``onnx`` says (its ONNX
    and TorchScript files hold the same weights); ``opset_version=15`` is its
    16 kHz-only file; ``sequence=True`` its batched-sequence model."""
    available_ops = [15, 16]
    if onnx and opset_version not in available_ops:
        raise Exception(f"Available ONNX opset_version: {available_ops}")
    if sequence:
        return SileroVADSequence(sampling_rate=sampling_rate, max_frames=max_frames)
    if onnx and opset_version == 15:
        warnings.warn("This model support only 16000 sampling rate!")
        return SileroVAD(sample_rates=[16000])
    return SileroVAD()


# --- speech timestamps -----------------------------------------------------------

def get_speech_timestamps(audio, model, threshold=0.5, sampling_rate=16000, min_speech_duration_ms=250,
                          max_speech_duration_s=float("inf"), min_silence_duration_ms=100, speech_pad_ms=30,
                          return_seconds=False, time_resolution=1, visualize_probs=False,
                          progress_tracking_callback=None, neg_threshold=None, window_size_samples=512,
                          min_silence_at_max_speech=98, use_max_poss_sil_at_max_speech=True):
    """Speech segments of a signal, ``[{'start': ..., 'end': ...}, ...]`` in
    samples (or seconds), exactly as the package's function of this name.
    ``model`` is ours (run on the whole signal in one call per block) or any
    object the package accepts (called chunk by chunk)."""
    tensor = _is_tensor(audio)
    audio = _floats(audio)
    if audio.ndim > 1:
        for _ in range(audio.ndim):
            if audio.ndim and audio.shape[0] == 1:
                audio = audio[0]
        if audio.ndim > 1:
            raise ValueError("More than one dimension in audio. Are you trying to process audio with 2 channels?")
    audio = audio.reshape(-1)
    if sampling_rate > 16000 and (sampling_rate % 16000 == 0):
        step = sampling_rate // 16000
        sampling_rate = 16000
        audio = audio[::step]
        warnings.warn("Sampling rate is a multiply of 16000, casting to 16000 manually!")
    else:
        step = 1
    if sampling_rate not in [8000, 16000]:
        raise ValueError("Currently silero VAD models support 8000 and 16000 (or multiply of 16000) sample rates")
    window_size_samples = 512 if sampling_rate == 16000 else 256
    model.reset_states()
    audio_length_samples = len(audio)
    audio = np.ascontiguousarray(audio)
    if isinstance(model, SileroVAD) and sampling_rate in model.sample_rates:
        speech_probs = model._probs(audio, sampling_rate, window_size_samples, progress_tracking_callback)
    else:
        speech_probs = []
        for current_start_sample in range(0, audio_length_samples, window_size_samples):
            chunk = audio[current_start_sample: current_start_sample + window_size_samples]
            if len(chunk) < window_size_samples:
                chunk = np.pad(chunk, (0, int(window_size_samples - len(chunk))))
            speech_prob = model(_like(chunk, tensor or not isinstance(model, SileroVAD) and _torch() is not None),
                                sampling_rate).item()
            speech_probs.append(speech_prob)
            progress = current_start_sample + window_size_samples
            if progress > audio_length_samples:
                progress = audio_length_samples
            if progress_tracking_callback:
                progress_tracking_callback((progress / audio_length_samples) * 100)
    return get_speech_timestamps_from_probs(
        speech_probs, sampling_rate=sampling_rate, threshold=threshold,
        min_speech_duration_ms=min_speech_duration_ms, max_speech_duration_s=max_speech_duration_s,
        min_silence_duration_ms=min_silence_duration_ms, speech_pad_ms=speech_pad_ms,
        return_seconds=return_seconds, time_resolution=time_resolution, visualize_probs=visualize_probs,
        neg_threshold=neg_threshold, min_silence_at_max_speech=min_silence_at_max_speech,
        use_max_poss_sil_at_max_speech=use_max_poss_sil_at_max_speech,
        audio_length_samples=audio_length_samples, step=step)


def get_speech_timestamps_from_probs(speech_probs, sampling_rate=16000, threshold=0.5, min_speech_duration_ms=250,
                                     max_speech_duration_s=float("inf"), min_silence_duration_ms=100,
                                     speech_pad_ms=30, return_seconds=False, time_resolution=1,
                                     visualize_probs=False, neg_threshold=None, min_silence_at_max_speech=98,
                                     use_max_poss_sil_at_max_speech=True, audio_length_samples=None, step=1):
    """The package's segmenter over probabilities already computed (one per
    512-sample chunk at 16 kHz, 256 otherwise), by lstmrt's port of it."""
    window_size_samples = 512 if sampling_rate == 16000 else 256
    if audio_length_samples is None:
        audio_length_samples = len(speech_probs) * window_size_samples
    segments = _speech_timestamps(
        [float(p) for p in speech_probs], window=window_size_samples, sampling_rate=sampling_rate,
        audio_length_samples=audio_length_samples, threshold=threshold, neg_threshold=neg_threshold,
        min_speech_duration_ms=min_speech_duration_ms, max_speech_duration_s=max_speech_duration_s,
        min_silence_duration_ms=min_silence_duration_ms, speech_pad_ms=speech_pad_ms,
        min_silence_at_max_speech=min_silence_at_max_speech,
        use_max_poss_sil_at_max_speech=use_max_poss_sil_at_max_speech)
    speeches = [{"start": s, "end": e} for s, e in segments]
    if return_seconds:
        audio_length_seconds = audio_length_samples / sampling_rate
        for d in speeches:
            d["start"] = max(round(d["start"] / sampling_rate, time_resolution), 0)
            d["end"] = min(round(d["end"] / sampling_rate, time_resolution), audio_length_seconds)
    elif step > 1:
        for d in speeches:
            d["start"] *= step
            d["end"] *= step
    if visualize_probs:
        _make_visualization(speech_probs, window_size_samples / sampling_rate)
    return speeches


def _make_visualization(probs, step):
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("visualize_probs=True needs matplotlib (pip install matplotlib)") from None
    xs = [x * step for x in range(len(probs))]
    fig, ax = plt.subplots(figsize=(16, 8))
    ax.fill_between(xs, list(map(float, probs)), step="pre", alpha=0.6)
    ax.set_xlim(0, len(probs) * step)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("seconds")
    ax.set_ylabel("speech probability")
    return fig


# --- streaming ---------------------------------------------------------------------

class VADIterator:
    """Speech starts and ends of a stream, one chunk per call, as the
    package's ``VADIterator``: ``{'start': n}``, ``{'end': n}`` or None."""

    def __init__(self, model, threshold=0.5, sampling_rate=16000, min_silence_duration_ms=100, speech_pad_ms=30):
        self.model = model
        self.threshold = threshold
        self.sampling_rate = sampling_rate
        if sampling_rate not in [8000, 16000]:
            raise ValueError("VADIterator does not support sampling rates other than [8000, 16000]")
        self.min_silence_samples = sampling_rate * min_silence_duration_ms / 1000
        self.speech_pad_samples = sampling_rate * speech_pad_ms / 1000
        self.reset_states()

    def reset_states(self):
        self.model.reset_states()
        self.triggered = False
        self.temp_end = 0
        self.current_sample = 0

    def __call__(self, x, return_seconds=False, time_resolution: int = 1):
        if not _is_tensor(x):
            x = _floats(x)
        window_size_samples = len(x[0]) if x.ndim == 2 else len(x)
        self.current_sample += window_size_samples
        speech_prob = self.model(x, self.sampling_rate).item()
        if (speech_prob >= self.threshold) and self.temp_end:
            self.temp_end = 0
        if (speech_prob >= self.threshold) and not self.triggered:
            self.triggered = True
            speech_start = max(0, self.current_sample - self.speech_pad_samples - window_size_samples)
            return {"start": int(speech_start) if not return_seconds
                    else round(speech_start / self.sampling_rate, time_resolution)}
        if (speech_prob < self.threshold - 0.15) and self.triggered:
            if not self.temp_end:
                self.temp_end = self.current_sample
            if self.current_sample - self.temp_end < self.min_silence_samples:
                return None
            else:
                speech_end = self.temp_end + self.speech_pad_samples - window_size_samples
                self.temp_end = 0
                self.triggered = False
                return {"end": int(speech_end) if not return_seconds
                        else round(speech_end / self.sampling_rate, time_resolution)}
        return None


VADResults = namedtuple("VADResults", ["keys", "probs", "events"])
VADResults.__doc__ = """What one ``VADStreams.process()`` ran: ``keys[i]`` and ``probs[i]``
for each chunk, round by round; ``events`` a list of ``(key, {'start': n})`` /
``(key, {'end': n})`` as ``VADIterator`` returns them."""


class VADStreams:
    """Many live audio streams (calls) through one Silero VAD model.

    ``join(key)`` a call (any hashable key, default a new id), ``push(key,
    audio)`` its audio as it arrives (float32, any length, at
    ``sampling_rate``), and ``process()``: one chunk of every call with one
    waiting, as one batch with the GIL released, round after round while
    any call has another. Events are ``VADIterator``'s for each call.
    ``process_async()`` runs it in a worker thread for asyncio servers.
    Thread-safe: one lock guards the streams (``push`` waits while a
    ``process`` runs).
    """

    def __init__(self, capacity=64, sampling_rate=16000, threshold=0.5, min_silence_duration_ms=100,
                 speech_pad_ms=30, return_seconds=False, time_resolution=1, max_pending_s=2.0, threads=1):
        if sampling_rate not in _FILES:
            raise ValueError("VADStreams supports sampling rates 8000 and 16000")
        self.sampling_rate = sampling_rate
        self.return_seconds = return_seconds
        self.time_resolution = time_resolution
        self._inner = _VadStreams(_model(sampling_rate), capacity, threshold=threshold,
                                  min_silence_duration_ms=min_silence_duration_ms, speech_pad_ms=speech_pad_ms,
                                  max_pending_s=max_pending_s, threads=threads)
        self._ids = {}
        self._keys = {}
        self._lock = threading.Lock()

    window = property(lambda self: self._inner.window, doc="Samples per chunk (512 at 16 kHz, 256 at 8 kHz).")
    capacity = property(lambda self: self._inner.capacity, doc="Streams it has room for.")

    def __len__(self):
        return len(self._ids)

    def __contains__(self, key):
        return key in self._ids

    def join(self, key=None):
        """A new stream under ``key`` (default: a new id); returns the key."""
        with self._lock:
            if key is not None and key in self._ids:
                raise KeyError(f"stream {key!r} has joined already")
            sid = self._inner.join()
            key = sid if key is None else key
            self._ids[key] = sid
            self._keys[sid] = key
            return key

    def _id(self, key):
        try:
            return self._ids[key]
        except KeyError:
            raise KeyError(f"no stream {key!r}") from None

    def leave(self, key):
        """The stream leaves; its waiting audio is dropped."""
        with self._lock:
            sid = self._id(key)
            self._inner.leave(sid)
            del self._ids[key], self._keys[sid]

    def reset(self, key):
        """The stream starts afresh (``VADIterator.reset_states()``)."""
        with self._lock:
            self._inner.reset(self._id(key))

    def push(self, key, audio):
        """Appends audio (float samples, 1-D) to a stream."""
        a = np.ascontiguousarray(_floats(audio).reshape(-1))
        with self._lock:
            self._inner.push(self._id(key), a)

    def pending(self, key):
        """Samples of a stream waiting for ``process()``."""
        with self._lock:
            return self._inner.pending(self._id(key))

    def triggered(self, key):
        """Whether a stream is in speech."""
        with self._lock:
            return self._inner.triggered(self._id(key))

    def process(self):
        """Runs every stream's waiting chunks; returns ``VADResults``."""
        with self._lock:
            ids, probs, events = self._inner.process()
            keys = self._keys
            out = []
            for sid, kind, at in events:
                if self.return_seconds:
                    value = round(at / self.sampling_rate, self.time_resolution)
                else:
                    value = int(at)
                out.append((keys[sid], {kind: value}))
            return VADResults([keys[s] for s in ids], probs, out)

    async def process_async(self):
        """``process()`` in a worker thread: the event loop keeps running."""
        return await asyncio.to_thread(self.process)


# --- the sequence model -------------------------------------------------------------

class SileroVADSequence:
    """The package's batched-sequence model (``load_silero_vad(sequence=True)``):
    ``audio_forward(audio, sampling_rate)`` gives one float32 probability per
    frame of a whole signal."""

    RATE_CONFIG = {8000: (256, 32), 16000: (512, 64)}

    def __init__(self, path=None, sampling_rate=16000, max_frames=512, force_onnx_cpu=True):
        if sampling_rate not in self.RATE_CONFIG:
            raise ValueError(f"Unsupported sampling_rate {sampling_rate}; supported: {sorted(self.RATE_CONFIG)}")
        self.sampling_rate = sampling_rate
        self.max_frames = max_frames

    def audio_forward(self, audio, sampling_rate=16000, max_frames=None):
        if sampling_rate not in self.RATE_CONFIG:
            raise ValueError(f"Unsupported sampling_rate {sampling_rate}; supported: {sorted(self.RATE_CONFIG)}")
        a = np.ascontiguousarray(_floats(audio).reshape(-1))
        state = _model(sampling_rate).new_chunk_state(1)
        return state.run_signal(a)[:, 0]


def get_speech_timestamps_sequence(audio, model, threshold=0.5, sampling_rate=16000, min_speech_duration_ms=250,
                                   max_speech_duration_s=float("inf"), min_silence_duration_ms=100,
                                   speech_pad_ms=30, return_seconds=False, time_resolution=1,
                                   visualize_probs=False, neg_threshold=None, min_silence_at_max_speech=98,
                                   use_max_poss_sil_at_max_speech=True, max_frames=None):
    """The package's sequence path: like ``get_speech_timestamps``, with its
    float32 comparisons (NumPy 2 compares its float32 probabilities with the
    thresholds in float32) and without the progress callback."""
    audio = _floats(audio).reshape(-1)
    step = 1
    if sampling_rate > 16000 and sampling_rate % 16000 == 0:
        step = sampling_rate // 16000
        sampling_rate = 16000
        audio = audio[::step]
    probs = model.audio_forward(audio, sampling_rate=sampling_rate, max_frames=max_frames)
    if neg_threshold is None:
        neg_threshold = max(threshold - 0.15, 0.01)
    f32 = lambda v: float(np.float32(v))
    return get_speech_timestamps_from_probs(
        probs, sampling_rate=sampling_rate, threshold=f32(threshold),
        min_speech_duration_ms=min_speech_duration_ms, max_speech_duration_s=max_speech_duration_s,
        min_silence_duration_ms=min_silence_duration_ms, speech_pad_ms=speech_pad_ms,
        return_seconds=return_seconds, time_resolution=time_resolution, visualize_probs=visualize_probs,
        neg_threshold=f32(neg_threshold), min_silence_at_max_speech=min_silence_at_max_speech,
        use_max_poss_sil_at_max_speech=use_max_poss_sil_at_max_speech,
        audio_length_samples=audio.size, step=step)


# --- audio files ---------------------------------------------------------------------

def read_audio(path, sampling_rate=16000):
    """A sound file as float32 samples in [-1, 1] at ``sampling_rate``, one
    channel (channels averaged), resampled with a windowed-sinc filter when
    the file's rate differs. Reads WAV (8/16/24/32-bit PCM) itself, any
    format ``soundfile`` reads when it is installed."""
    try:
        import soundfile
    except ImportError:
        soundfile = None
    if soundfile is not None:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
        data = data.T
    else:
        with wave.open(os.fspath(path), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())
        if width == 1:
            data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
        elif width == 2:
            data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
        elif width == 3:
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            data = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
        else:
            data = (np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
        data = data.reshape(-1, channels).T
    wav = data.mean(axis=0, dtype=np.float32) if data.shape[0] > 1 else data[0]
    if rate != sampling_rate:
        wav = _resample(wav, rate, sampling_rate)
    return np.ascontiguousarray(wav, dtype=np.float32)


def _resample(x, orig, new, width=6, rolloff=0.99):
    """Band-limited resampling, windowed sinc (Hann), as torchaudio's default
    ``Resample`` computes it (``lowpass_filter_width=6, rolloff=0.99``)."""
    g = math.gcd(int(orig), int(new))
    orig, new = int(orig) // g, int(new) // g
    base = min(orig, new) * rolloff
    half = int(math.ceil(width * orig / base))
    idx = np.arange(-half, half + orig, dtype=np.float64)[None, :] / orig
    t = np.arange(0, -new, -1, dtype=np.float64)[:, None] / new + idx
    t = np.clip(t * base, -width, width)
    window = np.cos(t * math.pi / width / 2) ** 2
    t = t * math.pi
    scale = base / orig
    kernel = np.where(t == 0, 1.0, np.sin(t) / np.where(t == 0, 1.0, t)) * window * scale
    padded = np.pad(x.astype(np.float64), (half, half + orig))
    frames = (len(x) - 1) // orig + 1
    view = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1])[::orig][:frames]
    out = (view @ kernel.T).reshape(-1)
    target = int(math.ceil(new * len(x) / orig))
    return out[:target].astype(np.float32)


def save_audio(path, tensor, sampling_rate=16000):
    """Writes float samples in [-1, 1] as a 16-bit PCM WAV (to a temporary
    name, then renamed: never half-written)."""
    a = _floats(tensor)
    channels = a.shape[0] if a.ndim == 2 else 1
    a = a.T.reshape(-1) if a.ndim == 2 else a.reshape(-1)  # [channels, n] -> interleaved
    pcm = np.clip(np.round(a * 32767.0), -32768, 32767).astype("<i2")
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    try:
        with wave.open(tmp, "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(int(sampling_rate))
            w.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _sample_stamps(tss, seconds, sampling_rate):
    if seconds and not sampling_rate:
        raise ValueError("sampling_rate must be provided when seconds is True")
    if not seconds:
        return tss
    return [{"start": round(t["start"] * sampling_rate), "end": round(t["end"] * sampling_rate)} for t in tss]


def _cat(parts, like):
    if _is_tensor(like):
        return _torch().cat(parts)
    if not parts:
        raise RuntimeError("collect_chunks: no segments to collect")
    return np.concatenate(parts)


def collect_chunks(tss, wav, seconds=False, sampling_rate=None):
    """The samples inside the segments, concatenated."""
    tss = _sample_stamps(tss, seconds, sampling_rate)
    return _cat([wav[t["start"]: t["end"]] for t in tss], wav)


def drop_chunks(tss, wav, seconds=False, sampling_rate=None):
    """The samples outside the segments, concatenated."""
    tss = _sample_stamps(tss, seconds, sampling_rate)
    chunks, cur_start = [], 0
    for t in tss:
        chunks.append(wav[cur_start: t["start"]])
        cur_start = t["end"]
    chunks.append(wav[cur_start:])
    return _cat(chunks, wav)
