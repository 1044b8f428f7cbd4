"""The Python per-call cost of lstmrt's step, against the Rust step, in one
run: W1 (LSTM, input = hidden = 128, batch 1, f32; random PyTorch-shaped
weights written as a safetensors file and converted with lstmrt.convert),
`model.step(state, x)` and `model.step(state, x, out=buf)` timed with
timeit (best of 7 repeats of 20000 calls), beside `lstm-run MODEL --bench`
(the Rust step, stream mode, same process tree and minute).

    bash tools/python_tests.sh                # builds and installs the wheel in target/pyvenv
    cargo build --release -p lstmrt-cli
    target/pyvenv/bin/python tools/bench_python_step.py
"""

import json
import pathlib
import struct
import subprocess
import tempfile
import timeit

import numpy as np

import lstmrt

ROOT = pathlib.Path(__file__).resolve().parents[1]


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def main():
    h = f = 128
    rng = np.random.default_rng(0)
    k = 1 / np.sqrt(h)
    tensors = {
        "weight_ih_l0": rng.uniform(-k, k, (4 * h, f)),
        "weight_hh_l0": rng.uniform(-k, k, (4 * h, h)),
        "bias_ih_l0": rng.uniform(-k, k, 4 * h),
        "bias_hh_l0": rng.uniform(-k, k, 4 * h),
    }
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = pathlib.Path(tmp) / "w1.safetensors", pathlib.Path(tmp) / "w1.lstm"
        write_safetensors(src, tensors)
        lstmrt.convert(src, dst)
        model = lstmrt.Model(dst)
        state = model.new_state()
        x = rng.standard_normal(f).astype(np.float32)
        out = np.empty(h, np.float32)
        n = 20000
        step = min(timeit.repeat(lambda: model.step(state, x), number=n, repeat=7)) / n * 1e6
        into = min(timeit.repeat(lambda: model.step(state, x, out=out), number=n, repeat=7)) / n * 1e6
        rust = subprocess.run(
            [str(ROOT / "target/release/lstm-run"), str(dst), "--bench", "--stream", "--steps", "1000", "--json"],
            capture_output=True, text=True, check=True,
        ).stdout
    rust_us = json.loads(rust)["ns_per_step_median"] / 1e3
    print(f"W1 f32 step: Rust {rust_us:.3f} us (lstm-run --bench --stream, median)")
    print(f"  Python model.step(state, x):          {step:.3f} us  (+{step - rust_us:.3f} us)")
    print(f"  Python model.step(state, x, out=buf): {into:.3f} us  (+{into - rust_us:.3f} us)")


if __name__ == "__main__":
    main()
