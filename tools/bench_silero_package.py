#!/usr/bin/env python3
"""lstmrt.silero against the silero-vad package's ONNX path, on this machine,
one thread each (numbers for docs/benchmarks.md). Not run by CI.

    python3 -m venv /tmp/sv
    /tmp/sv/bin/pip install numpy==2.4.6 onnxruntime==1.32.0 packaging target/wheels/lstmrt-*.whl
    /tmp/sv/bin/pip download --no-deps silero-vad==6.2.3 -d /tmp/silero_pkg
    (cd /tmp/silero_pkg && unzip -o silero_vad-6.2.3-py3-none-any.whl -d unpacked)
    /tmp/sv/bin/python tools/bench_silero_package.py --package /tmp/silero_pkg/unpacked/silero_vad

The package itself needs torch; this script runs its own source for
get_speech_timestamps and VADIterator with the small numpy stand-in for
torch from tools/silero_package_fixtures.py, and its model as OnnxWrapper
does (a 1-thread ONNX Runtime session over silero_vad.onnx, numpy arrays in
place of tensors). That leaves out torch's own per-call overhead, so the
package's times here are a lower bound and the ratios conservative.

1. An hour of 16 kHz audio (the fixture signal repeated):
   get_speech_timestamps, wall and CPU time, both sides' segments compared.
2. Live calls: N streams fed one 32 ms chunk each per round. The package's
   VADIterator per call, with one ONNX Runtime session per call and with one
   session shared (state per call), against lstmrt.silero.VADStreams (all
   calls with a chunk in one batch). CPU seconds per second of audio per
   call, and the calls one core keeps in real time.
3. Memory: resident set (RSS) and proportional set (PSS) of a process with
   the VAD loaded and run once, and what each forked worker adds (its
   private memory after running the VAD).
"""
import argparse
import gc
import importlib.util
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fixtures_module():
    spec = importlib.util.spec_from_file_location("silero_fixtures", os.path.join(ROOT, "tools", "silero_package_fixtures.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def cpu_name():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


class SharedSessionModel:
    """OnnxWrapper's per-call state over a shared session."""

    def __init__(self, session):
        self.session = session
        self.reset_states()

    def reset_states(self, batch_size=1):
        self.state = np.zeros((2, 1, 128), np.float32)
        self.context = np.zeros((1, 64), np.float32)

    def __call__(self, x, sr):
        a = x.a.reshape(1, -1)
        inp = np.concatenate([self.context, a], axis=1)
        out, self.state = self.session.run(None, {"input": inp, "state": self.state, "sr": np.array(sr, np.int64)})
        self.context = inp[:, -64:]
        return FX.Tensor(out)


def timed(f):
    w, c = time.perf_counter(), time.process_time()
    r = f()
    return r, time.perf_counter() - w, time.process_time() - c


def bench_hour(pkg, model_path, audio, seconds):
    from lstmrt.silero import get_speech_timestamps, load_silero_vad
    x = np.tile(audio, int(np.ceil(seconds * 16000 / len(audio))))[: seconds * 16000]
    ours_model = load_silero_vad()
    ours, ow, oc = timed(lambda: get_speech_timestamps(x, ours_model))
    theirs_model = FX.OrtModel(model_path)
    theirs, tw, tc = timed(lambda: pkg["get_speech_timestamps"](FX.Tensor(x), theirs_model))
    same = sum(a == b for a, b in zip(ours, theirs))
    return {
        "audio_s": seconds, "chunks": len(x) // 512,
        "package_onnx_wall_s": round(tw, 2), "package_onnx_cpu_s": round(tc, 2),
        "lstmrt_wall_s": round(ow, 3), "lstmrt_cpu_s": round(oc, 3),
        "speedup_wall": round(tw / ow, 1), "speedup_cpu": round(tc / oc, 1),
        "segments": [len(ours), len(theirs)], "segments_identical": same,
    }


def bench_calls(pkg, model_path, audio, n, rounds, per_call_sessions):
    """CPU seconds per second of audio per call, for each way of serving n calls."""
    import onnxruntime as ort
    from lstmrt.silero import VADStreams
    chunks = [audio[(i * 512) % (len(audio) - 512):][:512] for i in range(rounds + n)]
    out = {"calls": n, "rounds": rounds}
    audio_s = rounds * 512 / 16000
    # lstmrt: one VADStreams, a chunk per call per round.
    vs = VADStreams(capacity=n)
    keys = [vs.join() for _ in range(n)]
    def ours():
        for r in range(rounds):
            for k, key in enumerate(keys):
                vs.push(key, chunks[r + k])
            vs.process()
    _, _, c = timed(ours)
    out["lstmrt_cpu_per_call_s"] = c / (n * audio_s)
    # The package: a VADIterator per call, the model shared or one per call.
    o = ort.SessionOptions()
    o.intra_op_num_threads = o.inter_op_num_threads = 1
    sets = [("shared_session", None)]
    if per_call_sessions:
        sets.append(("session_per_call", True))
    for name, per_call in sets:
        if per_call:
            models = [FX.OrtModel(model_path) for _ in range(n)]
        else:
            s = ort.InferenceSession(model_path, o, providers=["CPUExecutionProvider"])
            models = [SharedSessionModel(s) for _ in range(n)]
        its = [pkg["VADIterator"](m) for m in models]
        # Fewer rounds for the slow side: its cost per chunk does not depend on n.
        rr = max(2, min(rounds, 4000 // n))
        def theirs():
            for r in range(rr):
                for k, it in enumerate(its):
                    it(FX.Tensor(chunks[r + k]))
        _, _, c = timed(theirs)
        out[f"package_{name}_cpu_per_call_s"] = c / (n * rr * 512 / 16000)
        del its, models
        gc.collect()
    best = min(v for k, v in out.items() if k.startswith("package_"))
    out["calls_per_core_lstmrt"] = int(1 / out["lstmrt_cpu_per_call_s"])
    out["calls_per_core_package_best"] = int(1 / best)
    out["ratio"] = round(best / out["lstmrt_cpu_per_call_s"], 1)
    return out


def memory(kind, model_path, workers=3):
    """RSS and PSS (kB) of a process with the VAD loaded and run once, and
    the private memory each forked worker adds after running it."""
    import subprocess
    code = f"""
import os, sys, json, numpy as np
def mem(pid='self'):
    d = {{}}
    for line in open(f'/proc/{{pid}}/smaps_rollup'):
        k, *v = line.split()
        if k in ('Rss:', 'Pss:', 'Private_Clean:', 'Private_Dirty:'):
            d[k[:-1]] = int(v[0])
    return d
x = np.random.default_rng(0).standard_normal(512 * 50).astype(np.float32) * 0.1
if {kind!r} == 'lstmrt':
    from lstmrt.silero import load_silero_vad, get_speech_timestamps
    m = load_silero_vad()
    run = lambda: get_speech_timestamps(x, m)
else:
    sys.path.insert(0, {os.path.join(ROOT, 'tools')!r})
    import onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = o.inter_op_num_threads = 1
    s = ort.InferenceSession({model_path!r}, o, providers=['CPUExecutionProvider'])
    st = np.zeros((2, 1, 128), np.float32)
    def run():
        global st
        for i in range(50):
            _, st = s.run(None, {{'input': np.zeros((1, 576), np.float32), 'state': st, 'sr': np.array(16000, np.int64)}})
run()
parent = mem()
kids = []
for _ in range({workers}):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        run()
        m = mem()
        os.write(w, json.dumps(m).encode()); os._exit(0)
    os.close(w)
    kids.append(json.loads(os.read(r, 4096).decode()))
    os.waitpid(pid, 0)
print(json.dumps({{'parent': parent, 'workers': kids}}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    m = json.loads(r.stdout)
    per_worker = [w["Private_Clean"] + w["Private_Dirty"] for w in m["workers"]]
    return {"rss_kb": m["parent"]["Rss"], "pss_kb": m["parent"]["Pss"],
            "forked_worker_private_kb": int(np.median(per_worker))}


def main():
    global FX
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", required=True)
    ap.add_argument("--seconds", type=int, default=3600)
    ap.add_argument("--calls", default="1,16,64,256,1024")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    FX = fixtures_module()
    pkg = FX.load_package(args.package)
    model_path = os.path.join(args.package, "data", "silero_vad.onnx")
    audio = FX.read_wav(os.path.join(ROOT, "tests", "fixtures", "silero_package", "audio16k.wav")).astype(np.float32)
    import onnxruntime
    import lstmrt
    res = {"cpu": cpu_name(), "lstmrt_isa": lstmrt.isa(), "onnxruntime": onnxruntime.__version__}
    print(json.dumps(res))
    res["hour"] = bench_hour(pkg, model_path, audio, args.seconds)
    print(json.dumps(res["hour"]))
    res["calls"] = []
    for n in map(int, args.calls.split(",")):
        r = bench_calls(pkg, model_path, audio, n, args.rounds, per_call_sessions=n <= 64)
        res["calls"].append(r)
        print(json.dumps({k: (round(v, 7) if isinstance(v, float) else v) for k, v in r.items()}))
    res["memory"] = {k: memory(k, model_path) for k in ("lstmrt", "onnxruntime")}
    print(json.dumps(res["memory"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
