"""lstmrt against ONNX Runtime on a batch: W4 (LSTM, input = hidden = 512, one
layer, batch 32, 100 steps), whole sequences, f32 and int8 on both sides
(ONNX Runtime's `quantize_dynamic`, which turns the LSTM into
DynamicQuantizeLSTM) and lstmrt's bf16 (ONNX Runtime's CPU LSTM has no bf16),
1 and 2 threads, each with its accuracy: the largest absolute difference
from ONNX Runtime f32. `--before DIR` times the bf16 model with a second
`lstm-run` too (built from an earlier commit), in the same run. One run, every runtime timed in
turn in this process (ORT: median of 9 calls after 2 warm-ups; lstmrt:
`lstm-run --bench --json`). PyTorch is not needed: the ONNX graph is built
with the `onnx` helpers. By hand, never in CI:

    python3 -m venv /tmp/ortvenv && /tmp/ortvenv/bin/pip install onnxruntime==1.32.0 onnx==1.23.2 numpy
    cargo build --release --bins
    /tmp/ortvenv/bin/python tools/peers_batch.py [--hidden 512 --batch 32 --steps 100] [--before DIR]

For `--before`: `git worktree add /tmp/before <commit>` and, in it,
`CARGO_TARGET_DIR=/tmp/before-target cargo build --release -p lstmrt-cli --bin lstm-run`,
then `--before /tmp/before-target/release`.
"""
import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / "target" / "release"
WORK = REPO / "target" / "peers-batch"


def lstm_graph(hidden, seed):
    """An ONNX LSTM (input = hidden), weights uniform in +-1/sqrt(H) as PyTorch draws them."""
    rng = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(hidden)
    w = rng.uniform(-k, k, (1, 4 * hidden, hidden)).astype(np.float32)
    r = rng.uniform(-k, k, (1, 4 * hidden, hidden)).astype(np.float32)
    b = rng.uniform(-k, k, (1, 8 * hidden)).astype(np.float32)
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=hidden)
    graph = helper.make_graph(
        [node],
        "w4",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", hidden])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"), numpy_helper.from_array(b, "B")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def ort_time(path, x, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    run = lambda: s.run(None, {"X": x})[0]
    y = run()
    run()
    times = []
    for _ in range(9):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times) / x.shape[0] * 1e6, y.reshape(x.shape[0], x.shape[1], -1)


def lstmrt(model, x, threads, bin_dir=BIN):
    np.save(WORK / "x.npy", x)
    subprocess.run([bin_dir / "lstm-run", model, WORK / "x.npy", "-o", WORK / "y.npy", "--threads", str(threads)],
                   check=True)
    y = np.load(WORK / "y.npy").reshape(x.shape[0], x.shape[1], -1)
    out = subprocess.run(
        [bin_dir / "lstm-run", model, "--bench", "--json", "--batch", str(x.shape[1]), "--steps", str(x.shape[0]),
         "--threads", str(threads)],
        check=True, capture_output=True, text=True).stdout
    info = json.loads(out)
    return info["ns_per_step_median"] / 1e3, y, info["isa"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--before", type=Path, help="a folder holding an earlier lstm-run, to time bf16 with it too")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    f32 = WORK / "f32.onnx"
    onnx.save(lstm_graph(args.hidden, 4), f32)
    i8 = WORK / "int8.onnx"
    quantize_dynamic(str(f32), str(i8), weight_type=QuantType.QInt8)
    for dtype in ["f32", "bf16", "int8"]:
        cmd = [BIN / "lstm-convert", f32, "-o", WORK / f"{dtype}.lstm", "--dtype", dtype]
        subprocess.run(cmd, check=True, capture_output=True)
    x = np.random.default_rng(5).uniform(-1, 1, (args.steps, args.batch, args.hidden)).astype(np.float32)
    print(f"LSTM H={args.hidden} batch {args.batch} T={args.steps}, whole sequence, µs per step "
          f"(max abs difference from ONNX Runtime f32); onnxruntime {ort.__version__}\n")
    before = " | lstmrt bf16 (--before)" if args.before else ""
    print(f"| threads | ORT f32 | ORT int8 | lstmrt f32 | lstmrt bf16{before} | lstmrt int8 "
          "| fastest peer / lstmrt int8 | ORT int8 / lstmrt int8 | lstmrt f32 / lstmrt bf16 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if args.before else ""))
    for threads in [1, 2]:
        t_of, ref = ort_time(f32, x, threads)
        t_oi, y_oi = ort_time(i8, x, threads)
        t_lf, y_lf, isa = lstmrt(WORK / "f32.lstm", x, threads)
        t_lb, y_lb, _ = lstmrt(WORK / "bf16.lstm", x, threads)
        t_li, y_li, _ = lstmrt(WORK / "int8.lstm", x, threads)
        err = lambda y: float(np.abs(y - ref).max())
        old = ""
        if args.before:
            t_bb, y_bb, _ = lstmrt(WORK / "bf16.lstm", x, threads, args.before)
            old = f" | {t_bb:.0f} ({err(y_bb):.1e})"
        fastest = min(t_of, t_oi)
        print(f"| {threads} | {t_of:.0f} | {t_oi:.0f} ({err(y_oi):.1e}) | {t_lf:.0f} ({err(y_lf):.1e}) | "
              f"{t_lb:.0f} ({err(y_lb):.1e}){old} | {t_li:.0f} ({err(y_li):.1e}) | {fastest / t_li:.2f}x | "
              f"{t_oi / t_li:.2f}x | {t_lf / t_lb:.2f}x |")
    print(f"\nlstmrt isa: {isa}")


if __name__ == "__main__":
    main()
