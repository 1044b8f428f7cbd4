"""Silero VAD on lstmrt as a LiveKit Agents VAD (livekit-agents 1.8.x;
checked against 1.8.9 and livekit-plugins-silero 1.8.9).

The thresholds, hysteresis, event fields and speech buffer follow
``livekit/plugins/silero/vad.py``'s ``VADStream`` (condensed); the model is
the silero-vad package's own (16 or 8 kHz) on lstmrt instead of an ONNX
Runtime session per stream: one memory-mapped model per process, a few
kilobytes of state per stream.

    from livekit.agents import AgentSession
    from examples.python.livekit_vad import LstmrtVAD   # or copy this file
    session = AgentSession(vad=LstmrtVAD(), ...)

Without ``vad=``, LiveKit Agents 1.8 uses its native ``inference.VAD``
(16 kHz only); this class is for 8 kHz telephony, or one process serving
many calls with the package's exact model.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from livekit import rtc
from livekit.agents import utils, vad as agents_vad

from lstmrt.silero import load_silero_vad

ModelFn = Callable[[np.ndarray, int], float]


@dataclass
class _Opts:
    min_speech_duration: float
    min_silence_duration: float
    prefix_padding_duration: float
    max_buffered_speech: float
    activation_threshold: float
    deactivation_threshold: float
    sample_rate: int  # inference rate: 8000 or 16000


class _LstmrtSilero:
    """``model(chunk, sr) -> float`` with ``reset()``: one stream's Silero VAD."""

    def __init__(self):
        self._vad = load_silero_vad()

    def __call__(self, chunk: np.ndarray, sr: int) -> float:
        return float(self._vad(chunk, sr)[0, 0])

    def reset(self) -> None:
        self._vad.reset_states()


def _lstmrt_model() -> ModelFn:
    return _LstmrtSilero()


class LstmrtVAD(agents_vad.VAD):
    def __init__(
        self,
        *,
        model_factory: Callable[[], ModelFn] | None = None,  # one stateful model per stream
        min_speech_duration: float = 0.05,
        min_silence_duration: float = 0.55,
        prefix_padding_duration: float = 0.5,
        max_buffered_speech: float = 60.0,
        activation_threshold: float = 0.5,
        deactivation_threshold: float | None = None,
        sample_rate: int = 16000,
    ) -> None:
        if sample_rate not in (8000, 16000):
            raise ValueError("Silero VAD only supports 8KHz and 16KHz sample rates")
        window = 512 if sample_rate == 16000 else 256
        super().__init__(
            capabilities=agents_vad.VADCapabilities(update_interval=window / sample_rate)
        )
        self._model_factory = model_factory or _lstmrt_model
        self._opts = _Opts(
            min_speech_duration, min_silence_duration, prefix_padding_duration,
            max_buffered_speech, activation_threshold,
            deactivation_threshold or max(activation_threshold - 0.15, 0.01), sample_rate,
        )

    @property
    def model(self) -> str:
        return "silero"

    @property
    def provider(self) -> str:
        return "lstmrt"

    @property
    def min_silence_duration(self) -> float | None:  # read by AudioRecognition
        return self._opts.min_silence_duration

    def stream(self) -> agents_vad.VADStream:
        return LstmrtVADStream(self, replace(self._opts), self._model_factory())


class LstmrtVADStream(agents_vad.VADStream):
    def __init__(self, vad: LstmrtVAD, opts: _Opts, model: ModelFn) -> None:
        # super().__init__ schedules _main_task with asyncio.create_task (agents/vad.py:114),
        # so a running loop is required; the task first runs at the next await, but set
        # attributes first anyway.
        self._opts, self._model = opts, model
        self._window = 512 if opts.sample_rate == 16000 else 256
        self._executor = ThreadPoolExecutor(max_workers=1)
        super().__init__(vad)

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _main_task(self) -> None:
        o, win = self._opts, self._window
        loop = asyncio.get_running_loop()
        in_sr = 0
        resampler: rtc.AudioResampler | None = None
        input_frames: list[rtc.AudioFrame] = []
        inference_frames: list[rtc.AudioFrame] = []
        speech_buf = np.empty(0, dtype=np.int16)
        buf_idx = 0
        pad = 0
        frac = 0.0
        speaking = False
        speech_dur = silence_dur = 0.0
        acc_speech = acc_silence = 0.0
        cur_sample = 0
        ts = 0.0
        exp_filter = utils.ExpFilter(alpha=0.35)  # silero plugin vad.py:234/329/425

        def reset() -> None:
            nonlocal speaking, speech_dur, silence_dur, acc_speech, acc_silence
            nonlocal cur_sample, ts, input_frames, inference_frames, frac, buf_idx, resampler
            nonlocal exp_filter
            exp_filter = utils.ExpFilter(alpha=0.35)
            speaking, speech_dur, silence_dur, acc_speech, acc_silence = False, 0.0, 0.0, 0.0, 0.0
            cur_sample, ts, input_frames, inference_frames, frac, buf_idx = 0, 0.0, [], [], 0.0, 0
            if hasattr(self._model, "reset"):
                self._model.reset()  # type: ignore[attr-defined]
            resampler = (
                rtc.AudioResampler(in_sr, o.sample_rate, quality=rtc.AudioResamplerQuality.QUICK)
                if in_sr and in_sr != o.sample_rate else None
            )

        def speech_frame() -> rtc.AudioFrame:
            return rtc.AudioFrame(speech_buf[:buf_idx].tobytes(), in_sr, 1, buf_idx)

        def trim_to_padding() -> None:
            nonlocal buf_idx
            if buf_idx > pad:
                speech_buf[:pad] = speech_buf[buf_idx - pad : buf_idx]
                buf_idx = pad

        async for item in self._input_ch:
            if isinstance(item, self._FlushSentinel):  # VADStream.flush()
                reset()
                continue
            frame: rtc.AudioFrame = item
            if not in_sr:
                in_sr = frame.sample_rate
                pad = int(o.prefix_padding_duration * in_sr)
                speech_buf = np.empty(int(o.max_buffered_speech * in_sr) + pad, dtype=np.int16)
                reset()
            elif frame.sample_rate != in_sr:
                continue  # silero logs an error and drops it
            input_frames.append(frame)
            inference_frames.extend(resampler.push(frame) if resampler else [frame])

            while sum(f.samples_per_channel for f in inference_frames) >= win:
                t0 = time.perf_counter()
                in_frame = utils.combine_frames(input_frames)
                inf_frame = utils.combine_frames(inference_frames)
                chunk = np.frombuffer(inf_frame.data, dtype=np.int16)[:win].astype(np.float32)
                chunk /= 32767.0  # silero plugin divides by np.iinfo(np.int16).max
                p = float(await loop.run_in_executor(self._executor, self._model, chunk, o.sample_rate))
                p = exp_filter.apply(exp=1.0, sample=p)  # smoothed p is what gets thresholded

                wdur = win / o.sample_rate
                cur_sample += win
                ts += wdur
                to_copy = win * in_sr / o.sample_rate + frac
                n = int(to_copy)
                frac = to_copy - n
                k = min(n, len(speech_buf) - buf_idx)
                if k > 0:
                    speech_buf[buf_idx : buf_idx + k] = np.frombuffer(in_frame.data, np.int16)[:k]
                    buf_idx += k
                infer_dur = time.perf_counter() - t0

                if speaking:
                    speech_dur += wdur
                else:
                    silence_dur += wdur
                self._event_ch.send_nowait(agents_vad.VADEvent(
                    type=agents_vad.VADEventType.INFERENCE_DONE,
                    samples_index=cur_sample, timestamp=ts,
                    silence_duration=silence_dur, speech_duration=speech_dur,
                    probability=p, inference_duration=infer_dur,
                    frames=[rtc.AudioFrame(in_frame.data[:n].tobytes(), in_sr, 1, n)],
                    speaking=speaking,
                    raw_accumulated_silence=acc_silence, raw_accumulated_speech=acc_speech,
                ))

                if p >= o.activation_threshold or (speaking and p > o.deactivation_threshold):
                    acc_speech += wdur
                    acc_silence = 0.0
                    if not speaking and acc_speech >= o.min_speech_duration:
                        speaking, silence_dur, speech_dur = True, 0.0, acc_speech
                        self._event_ch.send_nowait(agents_vad.VADEvent(
                            type=agents_vad.VADEventType.START_OF_SPEECH,
                            samples_index=cur_sample, timestamp=ts,
                            silence_duration=0.0, speech_duration=speech_dur,
                            frames=[speech_frame()], speaking=True,
                        ))
                else:
                    acc_silence += wdur
                    acc_speech = 0.0
                    if not speaking:
                        trim_to_padding()
                    if speaking and acc_silence >= o.min_silence_duration:
                        speaking, silence_dur = False, acc_silence
                        self._event_ch.send_nowait(agents_vad.VADEvent(
                            type=agents_vad.VADEventType.END_OF_SPEECH,
                            samples_index=cur_sample, timestamp=ts,
                            silence_duration=silence_dur,
                            speech_duration=max(0.0, speech_dur - acc_silence),
                            frames=[speech_frame()], speaking=False,
                        ))
                        speech_dur = 0.0
                        trim_to_padding()

                # keep leftovers (same bookkeeping as the silero plugin)
                rest_in = in_frame.data[n:].tobytes()
                rest_inf = inf_frame.data[win:].tobytes()
                input_frames = [rtc.AudioFrame(rest_in, in_sr, 1, len(rest_in) // 2)] if rest_in else []
                inference_frames = (
                    [rtc.AudioFrame(rest_inf, o.sample_rate, 1, len(rest_inf) // 2)] if rest_inf else []
                )
