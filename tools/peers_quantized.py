"""lstmrt against the peers a user could pick in any precision: PyTorch f32,
bf16 and dynamic qint8, ONNX Runtime f32 and dynamic int8, on W1, W2, W3 and
W5 (LSTM, input = hidden, batch 1), whole sequences or one call per step
(`--stream`), on one thread or more (`--threads N`), with each side's
accuracy: the largest absolute difference from PyTorch f32's output.

One run, every runtime timed in this one process in turn (median of 15
calls after 2 warm-ups; lstmrt through `lstm-run --bench --json` on the same
model, converted from the same ONNX file). A quick comparison for the
quantized peers that tools/bench_peers.py (f32 peers, several processes,
interleaved) does not have yet. By hand, never in CI:

    python3 -m venv .venv && .venv/bin/pip install -r tools/requirements-bench.txt
    cargo build --release --bins
    .venv/bin/python tools/peers_quantized.py [--threads N] [--stream] [W1 W2 W3 W5]

Streaming times a call per step with the state carried: PyTorch modules
called on one step with (h, c), ONNX Runtime sessions of a one-step export
with initial_h/initial_c inputs, lstmrt `--bench --stream`.
"""
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / "target" / "release"
WORK = REPO / "target" / "peers-quantized"
WORKLOADS = {"W1": (128, 1000, 1), "W2": (512, 200, 1), "W3": (1024, 100, 1), "W5": (256, 500, 2)}  # hidden, steps, layers
THREADS = 1
STREAM = False


def us_per_step(call, steps, repeats=15):
    call()
    call()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times) / steps * 1e6


def errors(y, ref):
    """(max, mean) absolute difference from the PyTorch f32 output."""
    d = np.abs(np.asarray(y, dtype=np.float64).reshape(ref.shape) - ref)
    return float(d.max()), float(d.mean())


def stepper(module, x):
    """One call per step through a PyTorch module, carrying (h, c)."""

    def go():
        state = None
        for t in range(x.shape[0]):
            y, state = module(x[t : t + 1], state) if state is not None else module(x[t : t + 1])
        return y

    return go


def ort_stepper(session, xs, layers, hidden):
    def go():
        h = np.zeros((layers, 1, hidden), np.float32)
        c = np.zeros((layers, 1, hidden), np.float32)
        for t in range(xs.shape[0]):
            _, h, c = session.run(["y", "h", "c"], {"x": xs[t : t + 1], "h0": h, "c0": c})

    return go


def measure(name, hidden, steps, layers):
    work = WORK / name
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = torch.nn.LSTM(hidden, hidden, layers).eval()
    x = torch.rand(steps, 1, hidden) * 2 - 1
    res = {}
    time_of = (lambda m, inp: us_per_step(stepper(m, inp), steps)) if STREAM else (
        lambda m, inp: us_per_step(lambda: m(inp), steps)
    )
    with torch.no_grad():
        ref = model(x)[0].numpy()
        res["PyTorch f32"] = (time_of(model, x), (0.0, 0.0))
        bf = torch.nn.LSTM(hidden, hidden, layers).eval()
        bf.load_state_dict(model.state_dict())
        bf, xb = bf.to(torch.bfloat16), x.to(torch.bfloat16)
        err = errors(bf(xb)[0].float().numpy(), ref)
        res["PyTorch bf16"] = (time_of(bf, xb), err)
        # quantize_dynamic swaps child modules, so the LSTM sits in a container.
        q = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(model), {torch.nn.LSTM}, dtype=torch.qint8)
        assert type(q[0]) is not torch.nn.LSTM, "the LSTM was not quantized"
        err = errors(q(x)[0].numpy(), ref)
        res["PyTorch qint8"] = (time_of(q[0], x), err)
    onnx_f32, onnx_int8 = work / "m.onnx", work / "m-int8.onnx"
    h0 = torch.zeros(layers, 1, hidden)
    torch.onnx.export(
        model, (x, (h0, h0)), str(onnx_f32), input_names=["x", "h0", "c0"], output_names=["y", "h", "c"],
        dynamic_axes={"x": {0: "steps"}, "y": {0: "steps"}}, dynamo=False
    )
    quantize_dynamic(str(onnx_f32), str(onnx_int8), weight_type=QuantType.QInt8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    xs = x.numpy()
    zeros = np.zeros((layers, 1, hidden), np.float32)
    for label, path in [("ONNX Runtime f32", onnx_f32), ("ONNX Runtime int8", onnx_int8)]:
        s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {"x": xs, "h0": zeros, "c0": zeros}
        err = errors(s.run(["y"], feed)[0], ref)
        call = ort_stepper(s, xs, layers, hidden) if STREAM else (lambda: s.run(["y"], feed))
        res[label] = (us_per_step(call, steps), err)
    np.save(work / "x.npy", xs)
    run = lambda *a: subprocess.run([str(a[0]), *map(str, a[1:])], check=True, capture_output=True, text=True)
    # (label, dtype, lstm-run options): int8 with one-byte activations (the
    # default) and with two-byte ones (same file, a run-time choice).
    variants = [("f32", "f32", []), ("f16", "f16", []), ("int8", "int8", []),
                ("int8 bytes2", "int8", ["--int8-activations", "bytes2"])]
    for label, dtype, opts in variants:
        lstm = work / f"m-{dtype}.lstm"
        if not opts:
            run(BIN / "lstm-convert", onnx_f32, "-o", lstm, "--dtype", dtype)
        y = work / f"y-{label.replace(' ', '-')}.npy"
        run(BIN / "lstm-run", lstm, work / "x.npy", "-o", y, *opts)
        err = errors(np.load(y), ref)
        mode = ["--stream"] if STREAM else []
        args = ["--bench", "--json", "--steps", steps, "--threads", THREADS, *mode, *opts]
        bench = json.loads(run(BIN / "lstm-run", lstm, *args).stdout)
        res[f"lstmrt {label}"] = (bench["ns_per_step_median"] / 1e3, err)
    return res


def main():
    global THREADS, STREAM
    args = sys.argv[1:]
    if "--threads" in args:
        i = args.index("--threads")
        THREADS = int(args[i + 1])
        del args[i : i + 2]
    if "--stream" in args:
        STREAM = True
        args.remove("--stream")
    torch.set_num_threads(THREADS)
    names = args or list(WORKLOADS)
    mode = "one call per step" if STREAM else "whole sequence"
    print(f"{mode}, {THREADS} thread(s), batch 1\n")
    print("| workload | runtime | µs per step | max abs error vs PyTorch f32 | mean abs error |\n|---|---|---:|---:|---:|")
    for name in names:
        res = measure(name, *WORKLOADS[name])
        ours = min(v[0] for k, v in res.items() if k.startswith("lstmrt"))
        for label, (t, (err, mean)) in sorted(res.items(), key=lambda kv: kv[1][0]):
            print(f"| {name} | {label} | {t:.2f} | {err:.1e} | {mean:.1e} |", flush=True)
        peer = min((v[0], k) for k, v in res.items() if not k.startswith("lstmrt"))
        print(f"| {name} | fastest peer / fastest lstmrt | {peer[0] / ours:.2f}x ({peer[1]}) | | |", flush=True)
        q8 = min((v[0], k) for k, v in res.items() if k in ("ONNX Runtime int8", "PyTorch qint8"))
        print(f"| {name} | fastest int8 peer / lstmrt int8 | {q8[0] / res['lstmrt int8'][0]:.2f}x ({q8[1]}) | | |")


if __name__ == "__main__":
    main()
