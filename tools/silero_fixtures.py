#!/usr/bin/env python3
"""Regenerates the Silero VAD fixtures in models/silero_vad/ (no internet needed
once the packages are installed):

    python3 -m venv /tmp/vadvenv
    /tmp/vadvenv/bin/pip install onnxruntime==1.32.0 numpy
    /tmp/vadvenv/bin/pip download --no-deps silero-vad==6.2.3 -d /tmp/silero
    (cd /tmp/silero && unzip -o silero_vad-6.2.3-py3-none-any.whl)   # or pip install silero-vad
    apt-get install espeak-ng                                          # the speech in the audio
    cargo build --release -p lstmrt-cli
    /tmp/vadvenv/bin/python tools/silero_fixtures.py --package /tmp/silero/silero_vad

What it writes (committed, with the package's MIT licence as LICENSE):
- silero_vad_16k_op15.onnx: the package's 16 kHz ONNX export, copied;
- silero_vad.lstm: `lstm-convert silero_vad_16k_op15.onnx --arch models/silero_vad/arch-onnx.json`
  (f32): the weights of the package's ONNX exports, which ONNX Runtime runs
  below. The package's silero_vad_16k.safetensors converts the same way with
  arch.json, but holds another checkpoint (its tensors correlate 0.90-0.99
  with the ONNX ones, its probabilities differ by up to 0.66), so it is not
  the model the reference runs;
- speech.wav: 16 kHz 16-bit mono, about 9 s: silence, two sentences spoken by
  espeak-ng (resampled from its 22050 Hz), noise, a tone, silence;
- reference_probs.npy: float32 [chunks], ONNX Runtime on the package's
  silero_vad.onnx run chunk by chunk exactly as its OnnxWrapper does (64
  samples of context, the state carried, the last chunk padded with zeros);
- reference_segments.json: the package's own get_speech_timestamps_from_probs
  on those probabilities (default thresholds), in samples.

The package imports torch at the top of its modules; the segment function is
pure Python, so it is run from the package's source with a stand-in `torch`
module (nothing of torch is called).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
import wave

import numpy as np

RATE = 16000
CHUNK = 512
CONTEXT = 64
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "models", "silero_vad")


def speak(text, voice):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", path, text], check=True)
        with wave.open(path, "rb") as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    # Band-limited resampling to 16 kHz: FFT, keep what 16 kHz holds, inverse FFT.
    n_out = int(round(len(pcm) * RATE / rate))
    spectrum = np.fft.rfft(pcm)
    keep = n_out // 2 + 1
    return np.fft.irfft(spectrum[:keep], n_out) * (n_out / len(pcm))


def make_audio(seed=7):
    rng = np.random.default_rng(seed)
    silence = lambda s: np.zeros(int(s * RATE))
    noise = lambda s, level: rng.normal(0.0, level, int(s * RATE))
    t = np.arange(int(0.8 * RATE)) / RATE
    tone = 0.2 * np.sin(2 * np.pi * 440 * t)
    parts = [
        silence(0.6),
        speak("The quick brown fox jumps over the lazy dog.", "en-us"),
        silence(0.4) + noise(0.4, 0.003),
        noise(1.0, 0.05),
        speak("Voice activity detection runs on every thirty two milliseconds of audio.", "en"),
        tone,
        silence(0.7),
    ]
    x = np.concatenate(parts)
    x = 0.6 * x / np.max(np.abs(x))
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")


def write_wav(path, pcm):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def onnx_probs(onnx_path, audio):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros((1, CONTEXT), np.float32)
    sr = np.array(RATE, np.int64)
    probs = []
    for start in range(0, len(audio), CHUNK):
        chunk = audio[start:start + CHUNK]
        chunk = np.pad(chunk, (0, CHUNK - len(chunk)))[None, :].astype(np.float32)
        x = np.concatenate([context, chunk], axis=1)
        out, state = session.run(None, {"input": x, "state": state, "sr": sr})
        context = x[:, -CONTEXT:]
        probs.append(float(out[0, 0]))
    return np.array(probs, np.float32)


def silero_segments(package, probs, total):
    class Anything:
        # Stands for whatever the module touches of torch while it is defined.
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, *args, **kwargs):
            return self

        def __getattr__(self, name):
            return Anything()

    fake = types.ModuleType("torch")
    fake.__getattr__ = lambda name: Anything()
    saved = sys.modules.get("torch")
    sys.modules["torch"] = fake
    try:
        source = open(os.path.join(package, "utils_vad.py")).read()
        namespace = {"__name__": "silero_utils_vad"}
        try:
            import packaging.version  # noqa: F401  (the package's only other import)
        except ImportError:
            stand_in = types.ModuleType("packaging")
            stand_in.version = Anything()
            sys.modules["packaging"] = stand_in
        exec(compile(source, "utils_vad.py", "exec"), namespace)
    finally:
        if saved is None:
            del sys.modules["torch"]
        else:
            sys.modules["torch"] = saved
    f = namespace["get_speech_timestamps_from_probs"]
    return f([float(p) for p in probs], sampling_rate=RATE, audio_length_samples=total)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", required=True, help="the silero_vad package folder (holding data/ and utils_vad.py)")
    ap.add_argument("--convert", default=os.path.join(ROOT, "target", "release", "lstm-convert"))
    args = ap.parse_args()
    data = os.path.join(args.package, "data")
    os.makedirs(OUT, exist_ok=True)
    # The ONNX file is committed too: the tests convert it again and expect these bytes.
    shutil.copy(os.path.join(data, "silero_vad_16k_op15.onnx"), os.path.join(OUT, "silero_vad_16k_op15.onnx"))
    subprocess.run([args.convert, os.path.join(OUT, "silero_vad_16k_op15.onnx"), "--arch",
                    os.path.join(OUT, "arch-onnx.json"), "-o", os.path.join(OUT, "silero_vad.lstm")], check=True)
    pcm = make_audio()
    write_wav(os.path.join(OUT, "speech.wav"), pcm)
    audio = pcm.astype(np.float32) / 32768.0
    probs = onnx_probs(os.path.join(data, "silero_vad.onnx"), audio)
    np.save(os.path.join(OUT, "reference_probs.npy"), probs)
    segments = silero_segments(args.package, probs, len(audio))
    with open(os.path.join(OUT, "reference_segments.json"), "w") as f:
        json.dump({"rate": RATE, "samples": len(audio), "segments": segments}, f, indent=1)
        f.write("\n")
    licence = os.path.join(os.path.dirname(args.package), "silero_vad-6.2.3.dist-info", "licenses", "LICENSE")
    if os.path.exists(licence):
        shutil.copy(licence, os.path.join(OUT, "LICENSE"))
    print(f"{len(probs)} chunks, {sum(p >= 0.5 for p in probs)} at or above 0.5; segments {segments}")


if __name__ == "__main__":
    main()
