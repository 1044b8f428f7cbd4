#!/usr/bin/env python3
"""Writes tests/fixtures/silero_package/: what the `silero-vad` package itself
gives on a test signal at 8 and 16 kHz, for the drop-in `lstmrt.silero` and
the Rust segmenter to be checked against (crates/python/tests/test_silero.py,
crates/cli/tests/silero_vad.rs). CI needs none of this; to regenerate:

    python3 -m venv /tmp/sv
    /tmp/sv/bin/pip install numpy==2.4.6 onnxruntime==1.32.0 packaging
    /tmp/sv/bin/pip download --no-deps silero-vad==6.2.3 -d /tmp/silero_pkg
    (cd /tmp/silero_pkg && unzip -o silero_vad-6.2.3-py3-none-any.whl -d unpacked)
    /tmp/sv/bin/python tools/silero_package_fixtures.py --package /tmp/silero_pkg/unpacked/silero_vad

No torch is needed: the package's own `get_speech_timestamps` and
`VADIterator` run from its source with a small stand-in `torch` module (1-D
and 2-D float arrays, slicing, `pad`, `no_grad`), and the model they call is
the package's `OnnxWrapper` logic on ONNX Runtime over its `silero_vad.onnx`
(the file `load_silero_vad(onnx=True)` loads; the TorchScript default has the
same weights). What it writes:

- audio16k.wav: 16-bit mono, 16 kHz, about 31 s, made from the committed
  models/silero_vad/speech.wav and synthetic sound: digital silence, the
  speech file (speech, noise, a tone), loud white noise, music-like chords
  with vibrato, clipped loud speech, 12 s of speech without pauses (for
  max_speech_duration_s), quiet speech. The 8 kHz signal is
  `audio16k[::2]` (every second sample), made the same way by the tests.
- probs16.npy, probs8.npy: float32, the model's probability per chunk
  (512 / 256 samples, the last one padded), as OnnxWrapper.__call__ gives.
- cases.json: `get_speech_timestamps(audio, model, **kwargs)` for many
  parameter sets at 8, 16, 32 and 48 kHz (the 32/48 kHz signals are the
  16 kHz one with every sample repeated, which the package decimates back),
  with the progress callback's values for one case; and `VADIterator` events
  (chunk index, event) per parameter set at 8 and 16 kHz.
"""
import argparse
import json
import os
import sys
import types
import warnings
import wave

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "silero_package")


# --- a stand-in for the little of torch the package's functions use --------

class Tensor:
    """A float32 numpy array with the tensor methods utils_vad.py calls."""

    def __init__(self, data=None):
        self.a = np.asarray(data if data is not None else [], dtype=np.float32)

    shape = property(lambda self: self.a.shape)

    def dim(self):
        return self.a.ndim

    def __len__(self):
        return len(self.a)

    def __getitem__(self, k):
        return Tensor(self.a[k])

    def squeeze(self, d):
        return Tensor(np.squeeze(self.a, d)) if self.a.shape[d] == 1 else self

    def unsqueeze(self, d):
        return Tensor(np.expand_dims(self.a, d))

    def item(self):
        return float(self.a.reshape(-1)[0])


class _NoGrad:
    def __call__(self, f):
        return f

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def fake_torch():
    t = types.ModuleType("torch")
    t.Tensor = Tensor
    t.is_tensor = lambda x: isinstance(x, Tensor)
    t.no_grad = _NoGrad
    t.set_num_threads = lambda n: None
    t.__version__ = "0"
    t.device = lambda *a: None
    nn = types.ModuleType("torch.nn")
    fn = types.ModuleType("torch.nn.functional")
    fn.pad = lambda x, p: Tensor(np.pad(x.a, (p[0], p[1])))
    nn.functional = fn
    t.nn = nn
    t.cat = lambda xs, dim=0: Tensor(np.concatenate([x.a for x in xs], axis=dim))
    t.zeros = lambda *s: Tensor(np.zeros(s[0] if len(s) == 1 else s))
    return t


def load_package(folder):
    saved = {k: sys.modules.get(k) for k in ("torch", "torch.nn", "torch.nn.functional")}
    t = fake_torch()
    sys.modules.update({"torch": t, "torch.nn": t.nn, "torch.nn.functional": t.nn.functional})
    try:
        ns = {"__name__": "silero_utils_vad"}
        exec(compile(open(os.path.join(folder, "utils_vad.py")).read(), "utils_vad.py", "exec"), ns)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return ns


class OrtModel:
    """OnnxWrapper.__call__ / reset_states over ONNX Runtime, batch 1."""

    def __init__(self, path):
        import onnxruntime as ort
        o = ort.SessionOptions()
        o.intra_op_num_threads = o.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
        self.reset_states()

    def reset_states(self, batch_size=1):
        self.state = np.zeros((2, 1, 128), np.float32)
        self.context = None
        self.last_sr = 0

    def __call__(self, x, sr):
        a = x.a if isinstance(x, Tensor) else np.asarray(x, np.float32)
        a = a.reshape(1, -1)
        if sr != 16000 and sr % 16000 == 0:
            a, sr = a[:, :: sr // 16000], 16000
        n, ctx = (512, 64) if sr == 16000 else (256, 32)
        assert a.shape[1] == n, a.shape
        if self.last_sr and self.last_sr != sr:
            self.reset_states()
        if self.context is None:
            self.context = np.zeros((1, ctx), np.float32)
        inp = np.concatenate([self.context, a], axis=1).astype(np.float32)
        out, self.state = self.session.run(None, {"input": inp, "state": self.state, "sr": np.array(sr, np.int64)})
        self.context = inp[:, -ctx:]
        self.last_sr = sr
        return Tensor(out)


# --- the test signal --------------------------------------------------------

def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0


def make_audio():
    rate = 16000
    rng = np.random.default_rng(2028)
    speech = read_wav(os.path.join(ROOT, "models", "silero_vad", "speech.wav"))
    # The voiced parts of the speech file, pauses cut out (25 ms frames above -40 dBFS).
    frames = speech[: len(speech) // 400 * 400].reshape(-1, 400)
    voiced = frames[np.sqrt((frames ** 2).mean(axis=1)) > 0.01].reshape(-1)
    t = lambda s: np.arange(int(s * rate)) / rate
    chord = sum(
        (0.12 / k) * np.sin(2 * np.pi * f * k * t(3.0) + 4.0 * np.sin(2 * np.pi * 5.0 * t(3.0)) / k)
        for f in (220.0, 277.2, 329.6) for k in (1, 2, 3)
    ) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t(3.0)))
    long_speech = np.tile(voiced, int(np.ceil(12.0 * rate / len(voiced))))[: 12 * rate]
    parts = [
        np.zeros(int(0.5 * rate)),
        speech,
        rng.normal(0.0, 0.25, 2 * rate),
        chord,
        np.clip(6.0 * speech[int(0.6 * rate): int(4.0 * rate)], -0.99, 0.99),
        long_speech,
        np.zeros(int(0.7 * rate)),
        0.05 * speech[int(4.0 * rate): int(7.0 * rate)],
    ]
    x = np.concatenate(parts)
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")


def write_wav(path, pcm, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


TIMESTAMP_KWARGS = [
    {},
    {"max_speech_duration_s": 3.0},
    {"max_speech_duration_s": 2.0, "min_silence_at_max_speech": 50},
    {"max_speech_duration_s": 3.0, "use_max_poss_sil_at_max_speech": False},
    {"threshold": 0.3, "neg_threshold": 0.2},
    {"threshold": 0.7, "min_speech_duration_ms": 100, "min_silence_duration_ms": 300, "speech_pad_ms": 100},
    {"speech_pad_ms": 0, "min_silence_duration_ms": 0, "min_speech_duration_ms": 0},
    {"return_seconds": True},
    {"return_seconds": True, "time_resolution": 3, "max_speech_duration_s": 2.5},
    {"min_speech_duration_ms": 1000, "speech_pad_ms": 250},
]

ITERATOR_KWARGS = [
    ({}, {}),
    ({"threshold": 0.3}, {}),
    ({"min_silence_duration_ms": 500, "speech_pad_ms": 60}, {}),
    ({}, {"return_seconds": True}),
    ({"speech_pad_ms": 0, "min_silence_duration_ms": 0}, {"return_seconds": True, "time_resolution": 3}),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", required=True, help="the silero_vad package folder (data/ and utils_vad.py)")
    args = ap.parse_args()
    pkg = load_package(args.package)
    model = OrtModel(os.path.join(args.package, "data", "silero_vad.onnx"))
    os.makedirs(OUT, exist_ok=True)
    pcm = make_audio()
    write_wav(os.path.join(OUT, "audio16k.wav"), pcm, 16000)
    audio16 = pcm.astype(np.float32) / 32768.0
    signals = {16000: audio16, 8000: audio16[::2]}
    for rate, x in signals.items():
        window = 512 if rate == 16000 else 256
        model.reset_states()
        probs = []
        for s in range(0, len(x), window):
            chunk = np.pad(x[s: s + window], (0, max(0, s + window - len(x))))
            probs.append(model(Tensor(chunk), rate).item())
        np.save(os.path.join(OUT, f"probs{rate // 1000}.npy"), np.array(probs, np.float32))
    cases = {"timestamps": [], "iterator": [], "package": "silero-vad 6.2.3", "model": "silero_vad.onnx"}
    warnings.simplefilter("ignore")
    for rate in (16000, 8000, 32000, 48000):
        base = signals[rate if rate <= 16000 else 16000]
        x = base if rate <= 16000 else np.repeat(base, rate // 16000)
        for kw in TIMESTAMP_KWARGS:
            progress = []
            cb = progress.append if not kw and rate in (16000, 8000) else None
            got = pkg["get_speech_timestamps"](Tensor(x), model, sampling_rate=rate, progress_tracking_callback=cb, **kw)
            case = {"sampling_rate": rate, "kwargs": kw, "result": got}
            if cb:
                case["progress"] = progress
            cases["timestamps"].append(case)
    for rate in (16000, 8000):
        window = 512 if rate == 16000 else 256
        x = signals[rate]
        for init, call in ITERATOR_KWARGS:
            it = pkg["VADIterator"](model, sampling_rate=rate, **init)
            events = []
            for i, s in enumerate(range(0, len(x) - window + 1, window)):
                e = it(Tensor(x[s: s + window]), **call)
                if e:
                    events.append([i, e])
            cases["iterator"].append({"sampling_rate": rate, "init": init, "call": call, "events": events})
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, indent=None, separators=(",", ":"))
        f.write("\n")
    n = sum(len(c["result"]) for c in cases["timestamps"])
    print(f"{len(audio16) / 16000:.1f} s; {len(cases['timestamps'])} timestamp cases ({n} segments), "
          f"{len(cases['iterator'])} iterator cases")


if __name__ == "__main__":
    main()
