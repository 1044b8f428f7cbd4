"""Silero VAD on lstmrt as a Pipecat VAD analyzer (pipecat-ai 1.x; checked
against 1.14.0's ``pipecat/audio/vad/vad_analyzer.py``).

Pipecat's own ``SileroVADAnalyzer`` opens an ONNX Runtime session per
analyzer (one per call) and runs each 32 ms window through it; this one runs
the same model (the silero-vad package's weights, 16 and 8 kHz) on lstmrt:
the model file is memory-mapped once per process, each analyzer keeps only
its state (a few kilobytes), and a window costs ~20-30 microseconds.

    from examples.python.pipecat_vad import LstmrtVADAnalyzer   # or copy this file
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair, LLMUserAggregatorParams)
    aggregators = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=LstmrtVADAnalyzer()))

In Pipecat 1.x the analyzer goes to the user aggregator (as above) or to a
``VADProcessor``; ``TransportParams(vad_analyzer=...)`` is silently ignored
there. Subclassing ``VADAnalyzer`` (not ``SileroVADAnalyzer``) keeps
onnxruntime's session out of the process.
"""
from __future__ import annotations

import numpy as np
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

from lstmrt.silero import load_silero_vad

# Pipecat's SileroVADAnalyzer resets the model every 2 s of quiet audio
# (pipecat/audio/vad/silero.py, 1.14.0); the same here.
_MODEL_RESET_INTERVAL_SECS = 2.0
_MODEL_RESET_MAX_CONFIDENCE = 0.1
_MODEL_RESET_LOW_CONFIDENCE_WINDOWS = 5


class LstmrtVADAnalyzer(VADAnalyzer):
    """Voice confidence per window from Silero VAD on lstmrt, at 8 or 16 kHz."""

    def __init__(self, *, sample_rate: int | None = None, params: VADParams | None = None):
        super().__init__(sample_rate=sample_rate, params=params)
        self._model = load_silero_vad()  # state of this analyzer; the weights are shared
        self._windows_since_reset = 0
        self._low_confidence_windows = 0

    def set_sample_rate(self, sample_rate: int):
        rate = self._init_sample_rate or sample_rate
        if rate not in (8000, 16000):
            raise ValueError(f"Silero VAD runs at 8000 or 16000 Hz, not {rate}")
        super().set_sample_rate(sample_rate)

    def num_frames_required(self) -> int:
        return 512 if self.sample_rate == 16000 else 256

    def voice_confidence(self, buffer: bytes) -> float:
        # num_frames_required() int16 samples; Pipecat scales by 32768.
        x = np.frombuffer(buffer, dtype=np.int16).astype(np.float32) / 32768.0
        confidence = float(self._model(x, self.sample_rate)[0, 0])
        self._windows_since_reset += 1
        if confidence < _MODEL_RESET_MAX_CONFIDENCE:
            self._low_confidence_windows += 1
        else:
            self._low_confidence_windows = 0
        if (self._windows_since_reset * self.num_frames_required() >= _MODEL_RESET_INTERVAL_SECS * self.sample_rate
                and self._vad_state == VADState.QUIET
                and self._low_confidence_windows >= _MODEL_RESET_LOW_CONFIDENCE_WINDOWS):
            self._model.reset_states()
            self._windows_since_reset = 0
        return confidence


if __name__ == "__main__":
    import sys
    import wave

    # python examples/python/pipecat_vad.py models/silero_vad/speech.wav
    analyzer = LstmrtVADAnalyzer()
    analyzer.set_sample_rate(16000)
    with wave.open(sys.argv[1] if len(sys.argv) > 1 else "models/silero_vad/speech.wav") as w:
        pcm = w.readframes(w.getnframes())
    step = analyzer.num_frames_required() * 2
    conf = [analyzer.voice_confidence(pcm[i:i + step]) for i in range(0, len(pcm) - step + 1, step)]
    print(f"{len(conf)} windows, {sum(c >= 0.7 for c in conf)} at or above Pipecat's confidence 0.7")
