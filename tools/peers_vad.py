#!/usr/bin/env python3
"""Silero VAD side by side, one run: lstmrt against ONNX Runtime on the
silero-vad package's ONNX files, per 32 ms chunk on one thread and for 64
concurrent streams, each with its accuracy on models/silero_vad/speech.wav.

    /tmp/vadvenv/bin/python tools/peers_vad.py --package /tmp/silero/silero_vad
    (the venv and package as tools/silero_fixtures.py sets them up; cargo build --release first)

Rows:
- ORT f32: silero_vad.onnx (what the package's OnnxWrapper loads), the 16 kHz
  exports silero_vad_16k_op15.onnx and silero_vad_op18_ifless.onnx, and
  silero_vad_half.onnx (f16 weights); one session, one thread, one chunk per run.
- ORT int8: onnxruntime.quantization.quantize_dynamic on the op15 export.
- ORT batched: one session given 64 streams as one batch (the model takes a
  batch dimension) - what a user could do instead of 64 sessions.
- lstmrt: `lstm-run --bench --json` on models/silero_vad/silero_vad.lstm (f32) and
  its int8 variant (int8 LSTM, f32 front-end: the writer's default for int8).
Accuracy: max |p - p_ref| over the fixture's chunks and the share of chunks
whose speech decision (p >= 0.5) agrees, p_ref being ORT f32 on silero_vad.onnx.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAD = os.path.join(ROOT, "models", "silero_vad")
RUN = os.path.join(ROOT, "target", "release", "lstm-run")
CHUNK, CONTEXT, RATE = 512, 64, 16000


def audio():
    with wave.open(os.path.join(VAD, "speech.wav")) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0


def session(path):
    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def feeds(s, x, state):
    f = {"input": x, "state": state}
    if any(i.name == "sr" for i in s.get_inputs()):
        f["sr"] = np.array(RATE, np.int64)
    return f


def ort_probs(s, a):
    state = np.zeros((2, 1, 128), np.float32)
    ctx = np.zeros((1, CONTEXT), np.float32)
    out = []
    for i in range(0, len(a), CHUNK):
        c = np.pad(a[i:i + CHUNK], (0, max(0, CHUNK - len(a[i:i + CHUNK]))))[None, :].astype(np.float32)
        x = np.concatenate([ctx, c], axis=1)
        p, state = s.run(None, feeds(s, x, state))
        ctx = x[:, -CONTEXT:]
        out.append(float(p.ravel()[0]))
    return np.array(out, np.float32)


def ort_time(s, batch, seconds=2.0):
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((batch, CHUNK + CONTEXT))).astype(np.float32)
    state = np.zeros((2, batch, 128), np.float32)
    f = feeds(s, x, state)
    for _ in range(50):
        s.run(None, f)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        _, f["state"] = s.run(None, f)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e6


def ort_sessions_time(path, streams, seconds=2.0):
    """64 sessions, one per stream, each run once per round (as a service would)."""
    ss = [session(path) for _ in range(streams)]
    rng = np.random.default_rng(2)
    fs = [feeds(s, (0.1 * rng.standard_normal((1, CHUNK + CONTEXT))).astype(np.float32),
                np.zeros((2, 1, 128), np.float32)) for s in ss]
    for s, f in zip(ss, fs):
        s.run(None, f)
    rounds = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for s, f in zip(ss, fs):
            _, f["state"] = s.run(None, f)
        rounds.append(time.perf_counter() - t)
    return float(np.median(rounds)) * 1e6


def lstmrt_time(model, streams, seconds=2.0):
    out = subprocess.run([RUN, model, "--bench", "--json", "--batch", str(streams), "--steps", "50",
                          "--seconds", str(seconds)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["ns_per_chunk_median"] / 1000.0


def lstmrt_probs(model):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "p.npy")
        subprocess.run([RUN, model, os.path.join(VAD, "speech.wav"), "-o", out], check=True)
        return np.load(out).ravel()


def accuracy(p, ref):
    return float(np.abs(p - ref).max()), float(np.mean((p >= 0.5) == (ref >= 0.5)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", required=True)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    data = os.path.join(args.package, "data")
    a = audio()
    ref = ort_probs(session(os.path.join(data, "silero_vad.onnx")), a)
    rows = []
    for name in ["silero_vad.onnx", "silero_vad_16k_op15.onnx", "silero_vad_op18_ifless.onnx", "silero_vad_half.onnx"]:
        s = session(os.path.join(data, name))
        rows.append((f"ORT {name}", ort_time(s, 1, args.seconds), *accuracy(ort_probs(s, a), ref)))
    with tempfile.TemporaryDirectory() as d:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        q = os.path.join(d, "int8.onnx")
        quantize_dynamic(os.path.join(data, "silero_vad_16k_op15.onnx"), q, weight_type=QuantType.QInt8)
        s = session(q)
        rows.append(("ORT int8 (quantize_dynamic, op15)", ort_time(s, 1, args.seconds), *accuracy(ort_probs(s, a), ref)))
        f32 = os.path.join(VAD, "silero_vad.lstm")
        int8 = os.path.join(d, "int8.lstm")
        # The int8 variant: the committed model re-written with --dtype int8.
        subprocess.run([os.path.join(ROOT, "target", "release", "lstm-convert"),
                        os.path.join(VAD, "silero_vad_16k_op15.onnx"), "--arch", os.path.join(VAD, "arch-onnx.json"),
                        "--dtype", "int8", "-o", int8], check=True, capture_output=True)
        lst = [("lstmrt f32", f32), ("lstmrt int8 (f32 front-end)", int8)]
        for label, m in lst:
            rows.append((label, lstmrt_time(m, 1, args.seconds), *accuracy(lstmrt_probs(m), ref)))
        base = rows[0][1]
        print("| one stream, one thread | us per chunk | vs ORT silero_vad.onnx | max abs error | decisions agree |")
        print("|---|---:|---:|---:|---:|")
        for label, us, err, agree in rows:
            print(f"| {label} | {us:.1f} | {base / us:.2f}x | {err:.2e} | {100 * agree:.2f}% |")
        streams = 64
        print()
        print(f"| {streams} streams, one thread | us per round ({streams} chunks) | stream-chunks/s | vs 64 ORT sessions |")
        print("|---|---:|---:|---:|")
        sess = ort_sessions_time(os.path.join(data, "silero_vad_16k_op15.onnx"), streams, args.seconds)
        batched = ort_time(session(os.path.join(data, "silero_vad_16k_op15.onnx")), streams, args.seconds)
        ours = [(label, lstmrt_time(m, streams, args.seconds)) for label, m in lst]
        for label, us in [("ORT, 64 sessions (op15)", sess), ("ORT, one session, batch 64 (op15)", batched)] + ours:
            print(f"| {label} | {us:.0f} | {streams * 1e6 / us:.0f} | {sess / us:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
