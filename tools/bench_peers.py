#!/usr/bin/env python3
"""Side-by-side benchmark of lstmrt against PyTorch, ONNX Runtime and tract, and its speed targets.

Run by hand, never by CI (Python 3.11; the peers are large downloads):

    python3 -m venv .venv && .venv/bin/pip install -r tools/requirements-bench.txt
    .venv/bin/python tools/bench_peers.py                 # full run -> docs/benchmarks.md (+ .svg, .json)
    .venv/bin/python tools/bench_peers.py --quick         # development smoke run (minutes)
    python3 tools/bench_peers.py --self-test              # the pure functions; needs numpy only

The script builds `lstm-run` and `lstm-convert` (`cargo build --release --bins`)
unless `--no-build` is given. Run it on a quiet machine: it measures wall time.

For each workload (an `nn.LSTM` whose input size equals its hidden size):

1. Artifacts (in `--workdir`, default `target/bench-peers/`): one `nn.LSTM` with
   weights drawn from a fixed seed; its state dict as `.safetensors` and as
   `torch.save` `.pt`; two ONNX graphs from `torch.onnx.export` (the TorchScript
   exporter: one `LSTM` node per layer): `seq.onnx` takes the whole sequence
   (state starts at zero), `step.onnx` takes one step plus `h0`/`c0` and returns
   `y, h_n, c_n`; `lstm-convert` turns the safetensors into `f32.lstm` and
   `f16.lstm`. Export checks, all exact: the reloaded safetensors and `.pt` equal
   the state dict; every ONNX `LSTM` node's `W`, `R`, `B` equal the state dict in
   ONNX's gate order; the `.lstm` files converted from the safetensors, the `.pt`
   and `seq.onnx` hold the state dict (f16: the state dict rounded to f16).
2. Same outputs: every runtime, in the very process and thread setting that is
   then timed, runs the same input `[T, B, H]` (uniform in [-1, 1), fixed seed)
   whole (twice: the second call must not see the first's state) and streamed one
   step per call carrying the state; its outputs and final `(h, c)` are compared
   with PyTorch's (in this script's process, from the original module), and the
   streamed outputs with its own whole-sequence outputs. Largest differences are
   printed and tabled. Tolerance `--tolerance` (1e-4) for f32, `--tolerance-f16`
   (2e-3) for lstmrt's f16 model against PyTorch's f32 outputs. A runtime outside
   the tolerance in a mode is reported and not timed in that mode.
   lstmrt: `lstm-run MODEL input.npy -o out.npy --final-state S --threads N`;
   streamed through `lstm-run MODEL -` (one stdin line per step) for batch 1, and
   for batch > 1 as a chain of one-step runs passing the state through
   `--initial-state`/`--final-state` (the first 16 steps).
3. Timing, two modes: `sequence` (one call runs all T steps; time per step = call
   time / T) and `stream` (one call per step carrying the state; time per step =
   time of the T calls / T):
   - lstmrt: `lstm-run MODEL --bench --json --repeats 1 --warmup K --batch B
     --steps T --threads N [--stream]`, one process per repeat, f32 and f16
     models. A repeat's sample is `ns_per_step_mean` (for `sequence` with one
     repeat this is the call time / T; for `--stream` the mean of the per-call
     times, which include the clock's own cost). The roofline bound comes from one
     extra `--roofline` run per workload, mode and dtype (single-core bound).
   - PyTorch: `nn.LSTM` loaded from the safetensors, `torch.inference_mode()`,
     `torch.set_num_threads(N)`, `set_num_interop_threads(1)`; stream passes
     `(h, c)` each call. PyTorch's defaults are kept: on x86 its CPU LSTM runs
     through oneDNN, which prepares the weights at every call, so one-step calls
     cost several times what they cost with `torch.backends.mkldnn.flags(enabled=False)`.
   - ONNX Runtime: `seq.onnx` / `step.onnx`, `intra_op_num_threads=N`,
     `inter_op_num_threads=1`, `ORT_SEQUENTIAL`, CPU provider; stream feeds
     `h0`/`c0` from the previous call's `h_n`/`c_n`.
   - tract: the same ONNX files (`tract.onnx().load(...).into_model().into_runnable()`).
     tract's Python API has no thread setting: it runs one thread at every N
     (the table shows the CPU time / wall time it used). A fresh tract state is
     spawned per whole-sequence call: a reused state carries the LSTM state
     into the next call (the "twice" check catches it). Streaming reuses one state;
     `h0`/`c0` are fed each call.
   Each peer runs in its own worker process (`--worker`), `--processes` (3) times
   over, one after the other; within a process every runtime does `--repeats`
   (7) timed repeats, interleaved round-robin (the order rotates each repeat) so
   drift hits all alike. Before every timed repeat each runtime makes
   `--warmup-calls` (2) untimed calls; peers also warm up once (at least 3 calls
   and 0.3 s) when their process starts. `--settle-ms` (20) of sleep separate
   consecutive repeats, so a runtime's spinning thread pool cannot steal time
   from the next one. A process's value is the median of its repeats; tables
   show the median of the per-process medians and their min-max spread
   (lstmrt: each of its repeats is a separate process; its repeats in round p form
   "process" p).
4. Output: `--out` (docs/benchmarks.md) with the date, CPU model, versions, git
   commit and exact command; time per step, peer / lstmrt ratios (> 1: lstmrt is
   faster), lstmrt's roofline bound and the fraction of it reached, the speed
   targets against the fastest peer (`TARGETS`), every correctness check; a chart
   of the ratios (hand-written SVG, no plotting dependency) next to it as
   `<out>-ratios.svg`; all raw samples as `<out>.json`.
"""

import argparse
import datetime
import json
import math
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class Workload:
    name: str
    hidden: int
    layers: int
    batch: int
    steps: int

    @property
    def input_size(self):
        return self.hidden

    def describe(self):
        layers = f", {self.layers} layers" if self.layers > 1 else ""
        return f"H={self.hidden}{layers}, batch {self.batch}, T={self.steps}"


WORKLOADS = {
    "W1": Workload("W1", hidden=128, layers=1, batch=1, steps=1000),
    "W2": Workload("W2", hidden=512, layers=1, batch=1, steps=200),
    "W3": Workload("W3", hidden=1024, layers=1, batch=1, steps=100),
    "W4": Workload("W4", hidden=512, layers=1, batch=32, steps=100),
    "W5": Workload("W5", hidden=256, layers=2, batch=1, steps=500),
}

MODES = ("sequence", "stream")
OURS = ("lstmrt-f32", "lstmrt-f16")
PEERS = ("pytorch", "onnxruntime", "tract")
RUNTIMES = OURS + PEERS
LABELS = {
    "lstmrt-f32": "lstmrt f32",
    "lstmrt-f16": "lstmrt f16",
    "pytorch": "PyTorch",
    "onnxruntime": "ONNX Runtime",
    "tract": "tract",
}
MODE_LABELS = {"sequence": "whole sequence", "stream": "stream (1 call/step)"}

# Full-run defaults; a run with less is labelled partial in the report.
FULL = dict(repeats=7, processes=3, workloads=tuple(WORKLOADS), threads=(1, 2))
QUICK = dict(repeats=3, processes=2, workloads=("W1", "W5"), threads=(1,), warmup_calls=1)

# Steps of the chained one-step check for lstmrt at batch > 1 (a process per step).
CHAIN_STEPS = 16


@dataclass(frozen=True)
class Target:
    """One speed target: fastest peer's median (f32) / ours >= minimum (> when strict)."""

    workload: str
    mode: str
    threads: int
    ours: str
    minimum: float
    strict: bool
    text: str


TARGETS = (
    Target("W1", "sequence", 1, "lstmrt-f32", 1.1, False, "W1 whole sequence, 1 thread, f32: >= 1.1x the fastest peer"),
    Target("W2", "sequence", 1, "lstmrt-f32", 1.0, True, "W2 whole sequence, 1 thread, f32: faster than the fastest peer"),
    Target("W3", "sequence", 1, "lstmrt-f32", 1.2, False, "W3 whole sequence, 1 thread, f32: >= 1.2x the fastest peer"),
    Target("W5", "sequence", 1, "lstmrt-f32", 1.0, True, "W5 whole sequence, 1 thread, f32: faster than the fastest peer"),
    Target("W3", "sequence", 1, "lstmrt-f16", 2.0, False, "W3 f16 weights, 1 thread: >= 2x the fastest peer's f32"),
    Target("W2", "sequence", 1, "lstmrt-f16", 1.4, False, "W2 f16 weights, 1 thread: >= 1.4x the fastest peer's f32"),
    Target("W1", "stream", 1, "lstmrt-f32", 3.0, False, "W1 streaming, 1 thread, f32: >= 3x the fastest peer"),
    Target("W2", "stream", 1, "lstmrt-f16", 2.0, False, "W2 streaming, 1 thread, f16: >= 2x the fastest peer"),
    Target("W4", "sequence", 1, "lstmrt-f32", 1.0, False, "W4 (batch 32), 1 thread, f32: at least as fast as the fastest peer"),
    Target("W2", "sequence", 2, "lstmrt-f16", 1.8, False, "W2 f16 weights, 2 threads: >= 1.8x the fastest peer at 2 threads"),
)


# ------------------------------------------------------------------ pure functions (self-tested)


@dataclass(frozen=True)
class Spread:
    """Per-process medians summarised: the median of them and their range."""

    median: float
    low: float
    high: float
    processes: int
    samples: int


def summarize(per_process):
    """`per_process`: one list of samples (ns per step) per process. Empty lists are
    ignored. Returns a Spread of the per-process medians, or None without samples."""
    medians = [statistics.median(s) for s in per_process if s]
    if not medians:
        return None
    return Spread(
        median=statistics.median(medians),
        low=min(medians),
        high=max(medians),
        processes=len(medians),
        samples=sum(len(s) for s in per_process),
    )


def ratio(peer, ours):
    """Peer time / our time (> 1: lstmrt is faster); None if either is missing."""
    if peer is None or ours is None or ours <= 0:
        return None
    return peer / ours


def time_unit(ns):
    """(divisor, suffix) that shows `ns` with 1-3 digits before the point."""
    if ns < 1e3:
        return 1.0, "ns"
    if ns < 1e6:
        return 1e3, "µs"
    if ns < 1e9:
        return 1e6, "ms"
    return 1e9, "s"


def _sig3(x):
    """x with three significant digits, no exponent (x >= 0)."""
    if x == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(x)))))
    return f"{x:.{digits}f}"


def format_time(ns, unit=None):
    """`4.30 µs`, `850 ns`, `1.36 ms`; `unit` forces a (divisor, suffix) pair."""
    div, suffix = unit or time_unit(ns)
    return f"{_sig3(ns / div)} {suffix}"


def format_spread(spread):
    """`76.1 µs [72.0–80.3]` (median of per-process medians [min–max]); `—` if missing."""
    if spread is None:
        return "—"
    unit = time_unit(spread.median)
    text = format_time(spread.median, unit)
    if spread.processes > 1:
        div = unit[0]
        text += f" [{_sig3(spread.low / div)}–{_sig3(spread.high / div)}]"
    return text


def format_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


def format_diff(d):
    return "—" if d is None else f"{d:.1e}"


def rotate(items, k):
    """`items` rotated left by k: the round-robin order of repeat k."""
    items = list(items)
    if not items:
        return items
    k %= len(items)
    return items[k:] + items[:k]


def torch_to_onnx_gates(w):
    """Reorders the gate blocks of an LSTM weight or bias (first axis 4*H) from
    PyTorch's i, f, g, o to ONNX's i, o, f, c."""
    import numpy as np

    i, f, g, o = np.split(np.asarray(w), 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def max_abs_diff(a, b):
    """Largest |a - b| over arrays of the same shape; inf if shapes differ or NaN appears."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    d = np.abs(a - b)
    return math.inf if np.isnan(d).any() else float(d.max())


def parse_stream_lines(text, width):
    """lstm-run's stdin-stream output (one comma-separated line per step) as a
    [steps, width] float32 array; raises ValueError on a malformed line."""
    import numpy as np

    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        values = [float(v) for v in line.split(",")]
        if len(values) != width:
            raise ValueError(f"stream output line {n}: {len(values)} values, expected {width}")
        rows.append(values)
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), width)


def cell(results, workload, mode, threads, runtime):
    """The result entry of one runtime at one workload/mode/threads, or None."""
    return results["cells"].get(key(workload, mode, threads, runtime))


def key(workload, mode, threads, runtime):
    return f"{workload}/{mode}/t{threads}/{runtime}"


def spread_of(entry):
    if not entry or entry.get("status") != "ok":
        return None
    return summarize(entry["samples"])


def fastest_peer(results, workload, mode, threads):
    """(runtime, Spread) of the peer with the lowest median that agreed and was timed."""
    best = None
    for rt in PEERS:
        s = spread_of(cell(results, workload, mode, threads, rt))
        if s is not None and (best is None or s.median < best[1].median):
            best = (rt, s)
    return best


def rows(results):
    """(workload, mode, threads) triples present in the results, in a stable order."""
    seen = []
    for wl in results["settings"]["workloads"]:
        for mode in MODES:
            for t in results["settings"]["threads"]:
                if any(cell(results, wl, mode, t, rt) for rt in RUNTIMES):
                    seen.append((wl, mode, t))
    return seen


def evaluate_targets(results):
    """For each speed target in TARGETS: (target, fastest peer name, ratio or None, verdict text)."""
    out = []
    for tg in TARGETS:
        ours = spread_of(cell(results, tg.workload, tg.mode, tg.threads, tg.ours))
        best = fastest_peer(results, tg.workload, tg.mode, tg.threads)
        if ours is None or best is None:
            out.append((tg, best[0] if best else None, None, "not measured"))
            continue
        r = best[1].median / ours.median
        met = r > tg.minimum if tg.strict else r >= tg.minimum
        if met:
            verdict = "met"
        else:
            verdict = f"missed: {r:.2f}× of {tg.minimum:.2f}× ({(1 - r / tg.minimum) * 100:.0f}% short)"
        out.append((tg, best[0], r, verdict))
    return out


def is_partial(settings):
    """Whether a run used less than the full protocol (then the report says so)."""
    return (
        settings.get("quick", False)
        or settings["repeats"] < FULL["repeats"]
        or settings["processes"] < FULL["processes"]
        or tuple(settings["workloads"]) != FULL["workloads"]
        or tuple(settings["threads"]) != FULL["threads"]
    )


def render_markdown(results, chart_name):
    """The report as markdown. `chart_name`: the SVG's file name next to it."""
    meta, st = results["meta"], results["settings"]
    lines = []
    w = lines.append
    if is_partial(st):
        w("> **Development smoke run — to be replaced.** These numbers come from a reduced run")
        w(f"> ({'`--quick`, ' if st.get('quick') else ''}{st['repeats']} repeats x {st['processes']} process(es), "
          f"workloads {', '.join(st['workloads'])}, threads {', '.join(map(str, st['threads']))}) on a shared machine. "
          "They show the tooling works, not how fast anything is. The full run is "
          "`python tools/bench_peers.py` on a quiet machine.")
        w("")
    w("# lstmrt vs PyTorch, ONNX Runtime and tract")
    w("")
    w(f"Generated by `tools/bench_peers.py` on {meta['date']}.")
    w("")
    w("These are the f32 peers. The quantized ones a user could pick instead (ONNX Runtime int8 "
      "`quantize_dynamic`, PyTorch qint8 and bf16) against lstmrt int8, each with its accuracy: "
      "[benchmarks-quantized.md](benchmarks-quantized.md).")
    w("")
    w("| | |")
    w("|---|---|")
    w(f"| CPU | {meta['cpu']} ({meta['logical_cpus']} logical CPUs) |")
    w(f"| OS | {meta['os']} |")
    w(f"| lstmrt | git {meta['lstmrt_commit']}, kernels `{meta.get('lstmrt_isa') or '?'}` |")
    for name in ("python", "torch", "onnxruntime", "onnx", "tract", "numpy"):
        if name in meta["versions"]:
            w(f"| {name} | {meta['versions'][name]} |")
    w(f"| command | `{meta['command']}` |")
    w(f"| protocol | {st['repeats']} timed repeats per process after {st['warmup_calls']} warm-up call(s) each, "
      f"{st['processes']} process(es) per peer, runtimes interleaved round-robin, {st['settle_ms']:g} ms between repeats |")
    w("")
    w("Time per step: for a whole sequence, the time of one call over all T steps divided by T; "
      "for streaming, the time of T calls of one step each (state carried) divided by T. "
      "A step advances all B sequences. Cells show the median of the per-process medians and, "
      "in brackets, the lowest and highest per-process median. "
      "Ratios are peer time / lstmrt time: **above 1, lstmrt is faster**. "
      "Raw samples: the `.json` file next to this one.")
    w("")
    w("## Time per step")
    w("")
    w("| Workload | Mode | Threads | " + " | ".join(LABELS[rt] for rt in RUNTIMES) + " |")
    w("|---|---|---:|" + "---:|" * len(RUNTIMES))
    for wl, mode, t in rows(results):
        cells_ = []
        for rt in RUNTIMES:
            e = cell(results, wl, mode, t, rt)
            if e is None:
                cells_.append("—")
            elif e["status"] != "ok":
                cells_.append(f"— ({e['status']})")
            else:
                cells_.append(format_spread(summarize(e["samples"])))
        w(f"| {wl} ({WORKLOADS[wl].describe()}) | {MODE_LABELS[mode]} | {t} | " + " | ".join(cells_) + " |")
    w("")
    w("## Ratios (peer / lstmrt; above 1: lstmrt is faster)")
    w("")
    w(f"![peer time / lstmrt time]({chart_name})")
    w("")
    w("| Workload | Mode | Threads | PyTorch / f32 | ONNX Runtime / f32 | tract / f32 | fastest peer / f32 | fastest peer / f16 |")
    w("|---|---|---:|---:|---:|---:|---:|---:|")
    for wl, mode, t in rows(results):
        ours = {rt: spread_of(cell(results, wl, mode, t, rt)) for rt in OURS}
        f32 = ours["lstmrt-f32"].median if ours["lstmrt-f32"] else None
        f16 = ours["lstmrt-f16"].median if ours["lstmrt-f16"] else None
        peer_cells = []
        for rt in PEERS:
            s = spread_of(cell(results, wl, mode, t, rt))
            peer_cells.append(format_ratio(ratio(s.median if s else None, f32)))
        best = fastest_peer(results, wl, mode, t)
        best_ns = best[1].median if best else None
        best_name = f" ({LABELS[best[0]]})" if best else ""
        w(f"| {wl} | {MODE_LABELS[mode]} | {t} | " + " | ".join(peer_cells)
          + f" | {format_ratio(ratio(best_ns, f32))}{best_name if f32 else ''}"
          + f" | {format_ratio(ratio(best_ns, f16))}{best_name if f16 else ''} |")
    w("")
    w("## lstmrt against this machine's limit")
    w("")
    w("The bound is `lstm-run --bench --roofline`'s single-core bound per step for the mode "
      "(FMA peak and read bandwidth at the weights' working set); fraction = bound / median. "
      "With 2 threads the fraction can exceed 1 (the bound is for one core).")
    w("")
    w("| Workload | Mode | Threads | dtype | lstmrt | bound | fraction of bound |")
    w("|---|---|---:|---|---:|---:|---:|")
    for wl, mode, t in rows(results):
        for rt in OURS:
            dtype = rt.split("-")[1]
            s = spread_of(cell(results, wl, mode, t, rt))
            b = results["bounds"].get(f"{wl}/{mode}/{dtype}")
            frac = f"{b / s.median:.2f}" if (b and s) else "—"
            w(f"| {wl} | {MODE_LABELS[mode]} | {t} | {dtype} | {format_spread(s)} | "
              f"{format_time(b) if b else '—'} | {frac} |")
    w("")
    latency = [(wl, t, rt, cell(results, wl, "stream", t, rt)) for wl, mode, t in rows(results)
               if mode == "stream" for rt in OURS]
    latency = [x for x in latency if x[3] and "per_call_median" in x[3]]
    if latency:
        w("lstmrt's streaming latency per call, from `lstm-run --bench --stream`'s per-call samples "
          "(each call timed on its own; median over repeats of each repeat's median and p99):")
        w("")
        w("| Workload | Threads | dtype | median per call | p99 per call |")
        w("|---|---:|---|---:|---:|")
        for wl, t, rt, e in latency:
            w(f"| {wl} | {t} | {rt.split('-')[1]} | {format_time(e['per_call_median'])} | "
              f"{format_time(e['per_call_p99'])} |")
        w("")
    w("## Targets: lstmrt against the fastest peer")
    w("")
    w("| Target | fastest peer | measured | verdict |")
    w("|---|---|---:|---|")
    for tg, best, r, verdict in evaluate_targets(results):
        w(f"| {tg.text} | {LABELS.get(best, '—')} | {format_ratio(r)} | {verdict} |")
    w("")
    w("## Same outputs")
    w("")
    w(f"Input: uniform in [-1, 1), fixed seed, shape [T, B, H]. Reference: PyTorch `nn.LSTM` (f32) "
      f"in this script's process. Tolerance {st['tolerance']:g} (f32), {st['tolerance_f16']:g} "
      "(lstmrt f16 against PyTorch f32). Largest absolute difference over outputs and final (h, c), "
      "the worst over the processes. *twice*: the second whole-sequence call against the first "
      "(a runtime must not carry state between calls). *stream/own*: streamed (one call per "
      "step, state carried) against the same runtime's whole-sequence outputs.")
    w("")
    w("| Workload | Threads | Runtime | sequence vs PyTorch | twice | stream vs PyTorch | stream/own | verdict |")
    w("|---|---:|---|---:|---:|---:|---:|---|")
    for c in results["checks"]:
        w(f"| {c['workload']} | {c['threads']} | {LABELS[c['runtime']]} | {format_diff(c.get('sequence'))} | "
          f"{format_diff(c.get('twice'))} | {format_diff(c.get('stream'))} | {format_diff(c.get('stream_own'))} | "
          f"{c['verdict']} |")
    w("")
    if results["export_checks"]:
        w("Export checks (exact equality expected):")
        w("")
        for e in results["export_checks"]:
            w(f"- {e['workload']}: {e['what']}: largest difference {format_diff(e['diff'])}"
              f"{'' if e['ok'] else ' — FAILED'}")
        w("")
    if results["failures"]:
        w("## Failures and exclusions")
        w("")
        for f in results["failures"]:
            w(f"- {f}")
        w("")
    if any("cpu_ratio" in e for e in results["cells"].values()):
        w("## Cores used by the peers")
        w("")
        w("CPU time / wall time of the peer's process during its timed calls (median over repeats).")
        w("")
        w("| Workload | Mode | Threads | " + " | ".join(LABELS[rt] for rt in PEERS) + " |")
        w("|---|---|---:|" + "---:|" * len(PEERS))
        for wl, mode, t in rows(results):
            vals = []
            for rt in PEERS:
                e = cell(results, wl, mode, t, rt)
                cpu = e.get("cpu_ratio") if e else None
                vals.append("—" if cpu is None else f"{cpu:.2f}")
            w(f"| {wl} | {MODE_LABELS[mode]} | {t} | " + " | ".join(vals) + " |")
        w("")
    return "\n".join(lines)


SERIES = (
    ("pytorch", "lstmrt-f32", "PyTorch / lstmrt f32", "#ee854a"),
    ("onnxruntime", "lstmrt-f32", "ONNX Runtime / lstmrt f32", "#4878d0"),
    ("tract", "lstmrt-f32", "tract / lstmrt f32", "#6acc64"),
    ("fastest", "lstmrt-f16", "fastest peer / lstmrt f16", "#956cb4"),
)


def chart_groups(results):
    """[(label, [(series label, colour, ratio or None)])] for the chart."""
    groups = []
    for wl, mode, t in rows(results):
        bars = []
        for peer, ours_rt, label, colour in SERIES:
            ours = spread_of(cell(results, wl, mode, t, ours_rt))
            if peer == "fastest":
                best = fastest_peer(results, wl, mode, t)
                peer_ns = best[1].median if best else None
            else:
                s = spread_of(cell(results, wl, mode, t, peer))
                peer_ns = s.median if s else None
            bars.append((label, colour, ratio(peer_ns, ours.median if ours else None)))
        groups.append((f"{wl} {mode}, {t} thread{'s' if t > 1 else ''}", bars))
    return groups


def render_svg(results):
    """Horizontal bars of peer / lstmrt on a log2 axis with a line at 1 (a standalone SVG)."""
    groups = chart_groups(results)
    values = [r for _, bars in groups for _, _, r in bars if r]
    lo = min([0.5] + values)
    hi = max([2.0] + values)
    lo_e, hi_e = math.floor(math.log2(lo)), math.ceil(math.log2(hi))
    left, plot_w, right = 150, 520, 70
    bar_h, gap, top = 11, 10, 70
    height = top + sum(len(b) * bar_h + gap for _, b in groups) + 40
    width = left + plot_w + right

    def x_of(r):
        return left + (math.log2(r) - lo_e) / (hi_e - lo_e) * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14" font-weight="bold">Peer time / lstmrt time per step '
        '(log scale; right of 1: lstmrt faster)</text>',
    ]
    for i, (_, _, label, colour) in enumerate(SERIES):
        lx = left + (i % 2) * 260
        ly = 32 + (i // 2) * 14
        out.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly + 9}">{escape(label)}</text>')
    axis_bottom = height - 30
    for e in range(lo_e, hi_e + 1):
        x = x_of(2.0**e)
        label = f"{2.0**e:g}×"
        stroke = "#333" if e == 0 else "#ddd"
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{axis_bottom}" stroke="{stroke}" '
                   f'stroke-width="{1.5 if e == 0 else 1}"/>')
        out.append(f'<text x="{x:.1f}" y="{axis_bottom + 14}" text-anchor="middle">{escape(label)}</text>')
    y = top
    x1 = x_of(1.0)
    for glabel, bars in groups:
        gh = len(bars) * bar_h
        out.append(f'<text x="{left - 8}" y="{y + gh / 2 + 4:.1f}" text-anchor="end">{escape(glabel)}</text>')
        for label, colour, r in bars:
            if r:
                xr = x_of(min(max(r, 2.0**lo_e), 2.0**hi_e))
                x0, wbar = min(x1, xr), abs(xr - x1)
                out.append(f'<rect x="{x0:.1f}" y="{y + 1}" width="{max(wbar, 0.5):.1f}" height="{bar_h - 2}" '
                           f'fill="{colour}"><title>{escape(glabel)}: {escape(label)} = {r:.2f}</title></rect>')
                tx = xr + 3 if r >= 1 else xr - 3
                anchor = "start" if r >= 1 else "end"
                out.append(f'<text x="{tx:.1f}" y="{y + bar_h - 2}" font-size="9" text-anchor="{anchor}">'
                           f'{r:.2f}</text>')
            else:
                out.append(f'<text x="{x1 + 3:.1f}" y="{y + bar_h - 2}" font-size="9" fill="#999">'
                           f'{escape(label)}: not measured</text>')
            y += bar_h
        y += gap
    out.append("</svg>")
    return "\n".join(out) + "\n"


def atomic_write_text(path, text):
    """Writes `text` to `path` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def output_paths(out):
    """(markdown, svg, json) paths for `--out`."""
    out = Path(out)
    stem = out.with_suffix("")
    return out, Path(f"{stem}-ratios.svg"), Path(f"{stem}.json")


# ------------------------------------------------------------------ artifacts (needs torch, onnx)


def log(msg):
    print(msg, flush=True)


def workload_seed(wl):
    return 1000 + int(wl.name[1:])


def make_artifacts(wl, d, lstm_convert, export_checks):
    """Writes the model in every form and checks the forms agree; returns the
    PyTorch reference outputs (in d/ref.npz) and the input (d/input.npy)."""
    import warnings

    import numpy as np
    import onnx
    import torch
    from onnx import numpy_helper
    from safetensors.torch import load_file, save_file

    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(workload_seed(wl))
    lstm = torch.nn.LSTM(wl.input_size, wl.hidden, wl.layers).eval()
    sd = {k: v.detach().contiguous().clone() for k, v in lstm.state_dict().items()}
    rng = np.random.default_rng(workload_seed(wl))
    x = rng.uniform(-1.0, 1.0, size=(wl.steps, wl.batch, wl.input_size)).astype(np.float32)
    np.save(d / "input.npy", x)
    with torch.inference_mode():
        y, (hn, cn) = lstm(torch.from_numpy(x))
    np.savez(d / "ref.npz", y=y.numpy(), h=hn.numpy(), c=cn.numpy())

    def record(what, diff):
        ok = diff == 0.0
        export_checks.append(dict(workload=wl.name, what=what, diff=diff, ok=ok))
        log(f"  export check {what}: largest difference {diff:.1e}{'' if ok else '  <-- FAILED'}")
        return ok

    save_file(sd, str(d / "model.safetensors"))
    torch.save(sd, d / "model.pt")
    for name, loaded in (
        ("model.safetensors", load_file(str(d / "model.safetensors"))),
        ("model.pt", torch.load(d / "model.pt", weights_only=True)),
    ):
        diff = 0.0 if sorted(loaded) == sorted(sd) else math.inf
        for k in sd:
            if k in loaded:
                diff = max(diff, max_abs_diff(loaded[k].numpy(), sd[k].numpy()))
        record(f"{name} reloaded = state dict", diff)

    state_shape = (wl.layers, wl.batch, wl.hidden)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(lstm, (torch.from_numpy(x),), str(d / "seq.onnx"), dynamo=False,
                          input_names=["x"], output_names=["y", "h_n", "c_n"], opset_version=17)
        step_args = (torch.from_numpy(x[:1]), (torch.zeros(state_shape), torch.zeros(state_shape)))
        torch.onnx.export(lstm, step_args, str(d / "step.onnx"), dynamo=False,
                          input_names=["x", "h0", "c0"], output_names=["y", "h_n", "c_n"], opset_version=17)
    for graph_name in ("seq.onnx", "step.onnx"):
        g = onnx.load(str(d / graph_name)).graph
        consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        for n in g.node:
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value":
                        consts[n.output[0]] = numpy_helper.to_array(a.t)
        nodes = [n for n in g.node if n.op_type == "LSTM"]
        diff = 0.0 if len(nodes) == wl.layers else math.inf
        for layer, n in enumerate(nodes[: wl.layers]):
            w_, r_, b_ = (consts.get(n.input[i]) for i in (1, 2, 3))
            sdk = lambda s: sd[f"{s}_l{layer}"].numpy()  # noqa: E731
            want_w = torch_to_onnx_gates(sdk("weight_ih"))[None]
            want_r = torch_to_onnx_gates(sdk("weight_hh"))[None]
            want_b = np.concatenate([torch_to_onnx_gates(sdk("bias_ih")), torch_to_onnx_gates(sdk("bias_hh"))])[None]
            for got, want in ((w_, want_w), (r_, want_r), (b_, want_b)):
                diff = max(diff, math.inf if got is None else max_abs_diff(got, want))
        record(f"{graph_name}: {len(nodes)} LSTM node(s), W/R/B = state dict in ONNX gate order", diff)

    def convert(src, dst, dtype):
        cmd = [str(lstm_convert), str(d / src), "-o", str(d / dst), "--dtype", dtype, "--check"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")

    convert("model.safetensors", "f32.lstm", "f32")
    convert("model.safetensors", "f16.lstm", "f16")
    convert("model.pt", "from-pt.lstm", "f32")
    convert("seq.onnx", "from-onnx.lstm", "f32")
    sys.path.insert(0, str(REPO / "tools"))
    from lstmfile import LstmFile

    for name, rounding in (("f32.lstm", np.float32), ("f16.lstm", np.float16),
                           ("from-pt.lstm", np.float32), ("from-onnx.lstm", np.float32)):
        f = LstmFile.open(d / name)
        diff = 0.0
        for k, v in sd.items():
            want = v.numpy()
            if k.startswith("weight"):
                want = want.astype(rounding).astype(np.float32)
            diff = max(diff, max_abs_diff(f.canonical(k), want) if k in f.tensors else math.inf)
        what = "state dict rounded to f16" if rounding is np.float16 else "state dict"
        record(f"{name} (lstm-convert) holds the {what}", diff)
    return x


# ------------------------------------------------------------------ lstmrt through lstm-run


def run_cmd(cmd, input_text=None, timeout=900):
    cmd = [str(c) for c in cmd]
    p = subprocess.run(cmd, input=input_text, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise RuntimeError(f"`{' '.join(map(str, cmd))}` exited {p.returncode}: {last}")
    return p.stdout


def lstmrt_outputs(lstm_run, model, wl, d, threads, tag):
    """lstmrt's outputs for the check: whole sequence, final state, and streamed outputs."""
    import numpy as np

    x = np.load(d / "input.npy")
    out, pre = d / f"{tag}-out.npy", d / f"{tag}-final"
    run_cmd([lstm_run, model, d / "input.npy", "-o", out, "--final-state", pre, "--threads", threads])
    res = dict(y=np.load(out), h=np.load(f"{pre}.h.npy"), c=np.load(f"{pre}.c.npy"))
    # The same call again must give the same result (a fresh process; no state can leak).
    run_cmd([lstm_run, model, d / "input.npy", "-o", out, "--threads", threads])
    res["y2"] = np.load(out)
    if wl.batch == 1:
        # lstm-run MODEL -: one stdin line per step, Model::step carrying the state.
        lines = "\n".join(",".join("%.9g" % v for v in row) for row in x[:, 0, :]) + "\n"
        spre = d / f"{tag}-stream-final"
        text = run_cmd([lstm_run, model, "-", "--threads", threads, "--final-state", spre], input_text=lines)
        res["ys"] = parse_stream_lines(text, wl.hidden)[:, None, :]
        res["hs"] = np.load(f"{spre}.h.npy")[:, None, :]
        res["cs"] = np.load(f"{spre}.c.npy")[:, None, :]
    else:
        # A chain of one-step runs carrying the state through files.
        ys = []
        prev = None
        for t in range(min(wl.steps, CHAIN_STEPS)):
            xt, yt, st = d / f"{tag}-x{t}.npy", d / f"{tag}-y{t}.npy", d / f"{tag}-s{t}"
            np.save(xt, x[t:t + 1])
            cmd = [lstm_run, model, xt, "-o", yt, "--final-state", st, "--threads", threads]
            if prev is not None:
                cmd += ["--initial-state", prev]
            run_cmd(cmd)
            ys.append(np.load(yt))
            prev = st
        res["ys"] = np.concatenate(ys, axis=0)
    return res


def lstmrt_bench(lstm_run, model, wl, mode, threads, warmup, roofline=False):
    cmd = [lstm_run, model, "--bench", "--json", "--repeats", "1", "--warmup", warmup,
           "--batch", wl.batch, "--steps", wl.steps, "--threads", threads]
    if mode == "stream":
        cmd.append("--stream")
    if roofline:
        cmd.append("--roofline")
    return json.loads(run_cmd(cmd))


# ------------------------------------------------------------------ comparing outputs


def compare(outputs, ref, tol, label):
    """Diffs of one runtime's check outputs against PyTorch's and against itself.
    Returns (entry for the table, sequence ok, stream ok)."""
    seq = max(max_abs_diff(outputs["y"], ref["y"]), max_abs_diff(outputs["h"], ref["h"]),
              max_abs_diff(outputs["c"], ref["c"]))
    twice = max_abs_diff(outputs["y2"], outputs["y"])
    k = outputs["ys"].shape[0]
    stream = max_abs_diff(outputs["ys"], ref["y"][:k])
    stream_own = max_abs_diff(outputs["ys"], outputs["y"][:k])
    if "hs" in outputs:
        stream = max(stream, max_abs_diff(outputs["hs"], ref["h"]), max_abs_diff(outputs["cs"], ref["c"]))
        stream_own = max(stream_own, max_abs_diff(outputs["hs"], outputs["h"]),
                         max_abs_diff(outputs["cs"], outputs["c"]))
    seq_ok = seq <= tol and twice <= tol
    stream_ok = stream <= tol and stream_own <= tol
    note = "" if k == ref["y"].shape[0] else f" (stream: first {k} steps)"
    verdict = "ok" if seq_ok and stream_ok else ("DISAGREES" + ("" if seq_ok else " (sequence)")
                                                   + ("" if stream_ok else " (stream)"))
    log(f"    {label}: sequence vs PyTorch {seq:.1e}, twice {twice:.1e}, stream vs PyTorch {stream:.1e}, "
        f"stream vs own sequence {stream_own:.1e}{note}, tolerance {tol:g} -> {verdict}")
    entry = dict(sequence=seq, twice=twice, stream=stream, stream_own=stream_own, tolerance=tol,
                 verdict=verdict + note)
    return entry, seq_ok, stream_ok


def merge_check(checks, wl, threads, runtime, entry):
    """Keeps the worst diffs over processes for one (workload, threads, runtime)."""
    for c in checks:
        if (c["workload"], c["threads"], c["runtime"]) == (wl, threads, runtime):
            for k in ("sequence", "twice", "stream", "stream_own"):
                c[k] = max(c[k], entry[k])
            if c["verdict"].startswith("ok") and not entry["verdict"].startswith("ok"):
                c["verdict"] = entry["verdict"]
            return
    checks.append(dict(workload=wl, threads=threads, runtime=runtime, **entry))


# ------------------------------------------------------------------ peer workers


class PeerRunner:
    """One peer's sessions in a worker process. `sequence(x)` -> (y, h, c); `stream(steps)`
    runs one call per step from a zero state and returns (ys, h, c) in the runtime's types."""

    def __init__(self, wl, d, threads):
        self.wl, self.d, self.threads = wl, d, threads


class TorchRunner(PeerRunner):
    def __init__(self, wl, d, threads):
        super().__init__(wl, d, threads)
        import torch
        from safetensors.torch import load_file

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        self.torch = torch
        self.version = torch.__version__
        self.lstm = torch.nn.LSTM(wl.input_size, wl.hidden, wl.layers)
        self.lstm.load_state_dict(load_file(str(d / "model.safetensors")), strict=True)
        self.lstm.eval()
        self.zeros = torch.zeros(wl.layers, wl.batch, wl.hidden)

    def prepare(self, x):
        return self.torch.from_numpy(x)

    def prepare_steps(self, x):
        return [self.torch.from_numpy(x[t:t + 1].copy()) for t in range(x.shape[0])]

    def sequence(self, x):
        with self.torch.inference_mode():
            y, (h, c) = self.lstm(x)
        return y, h, c

    def stream(self, steps):
        ys = []
        h, c = self.zeros, self.zeros
        with self.torch.inference_mode():
            for xt in steps:
                y, (h, c) = self.lstm(xt, (h, c))
                ys.append(y)
        return ys, h, c

    def to_numpy(self, v):
        return v.numpy()


class OrtRunner(PeerRunner):
    def __init__(self, wl, d, threads):
        super().__init__(wl, d, threads)
        import numpy as np
        import onnxruntime as ort

        self.version = ort.__version__
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        providers = ["CPUExecutionProvider"]
        self.seq = ort.InferenceSession(str(d / "seq.onnx"), so, providers=providers)
        self.step = ort.InferenceSession(str(d / "step.onnx"), so, providers=providers)
        self.zeros = np.zeros((wl.layers, wl.batch, wl.hidden), np.float32)

    def prepare(self, x):
        return x

    def prepare_steps(self, x):
        return [x[t:t + 1].copy() for t in range(x.shape[0])]

    def sequence(self, x):
        return self.seq.run(None, {"x": x})

    def stream(self, steps):
        ys = []
        h = c = self.zeros
        run = self.step.run
        for xt in steps:
            y, h, c = run(None, {"x": xt, "h0": h, "c0": c})
            ys.append(y)
        return ys, h, c

    def to_numpy(self, v):
        return v


class TractRunner(PeerRunner):
    def __init__(self, wl, d, threads):
        super().__init__(wl, d, threads)
        import numpy as np
        import tract

        self.tract = tract
        self.version = tract.version()
        self.seq = tract.onnx().load(str(d / "seq.onnx")).into_model().into_runnable()
        self.step = tract.onnx().load(str(d / "step.onnx")).into_model().into_runnable()
        self.zeros = tract.Tensor.from_numpy(np.zeros((wl.layers, wl.batch, wl.hidden), np.float32))

    def prepare(self, x):
        return self.tract.Tensor.from_numpy(x)

    def prepare_steps(self, x):
        return [self.tract.Tensor.from_numpy(x[t:t + 1].copy()) for t in range(x.shape[0])]

    def sequence(self, x):
        # Runnable.run spawns a fresh state: a reused one carries the LSTM state over.
        return self.seq.run([x])

    def stream(self, steps):
        ys = []
        h = c = self.zeros
        state = self.step.spawn_state()
        for xt in steps:
            y, h, c = state.run([xt, h, c])
            ys.append(y)
        return ys, h, c

    def to_numpy(self, v):
        return v.to_numpy()


RUNNERS = {"pytorch": TorchRunner, "onnxruntime": OrtRunner, "tract": TractRunner}


def worker_main(args):
    """`--worker RUNTIME`: loads the peer, writes its check outputs, then serves timing
    requests, one JSON line per request on stdin, one JSON line per answer on stdout."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the libraries print goes to stderr, not into the protocol
    sys.stdout = sys.stderr

    def send(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    try:
        import numpy as np

        wl = Workload(**json.loads(args.worker_workload))
        d = Path(args.workdir) / wl.name
        runner = RUNNERS[args.worker](wl, d, args.worker_threads)
        x_np = np.load(d / "input.npy")
        x = runner.prepare(x_np)
        steps = runner.prepare_steps(x_np)
        y, h, c = runner.sequence(x)
        y2, _, _ = runner.sequence(x)
        ys, hs, cs = runner.stream(steps)
        n = runner.to_numpy
        check = d / f"check-{args.worker}-t{args.worker_threads}-p{args.worker_process}.npz"
        np.savez(check, y=n(y), h=n(h), c=n(c), y2=n(y2),
                 ys=np.concatenate([n(v) for v in ys], axis=0), hs=n(hs), cs=n(cs))
        send(dict(ready=True, version=runner.version, check=str(check)))
    except Exception as e:  # reported to the coordinator, which excludes this runtime
        send(dict(ready=False, error=f"{type(e).__name__}: {e}".splitlines()[0][:400]))
        return 0

    def call(mode):
        if mode == "sequence":
            runner.sequence(x)
        else:
            runner.stream(steps)

    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "quit":
            break
        if req["cmd"] == "warmup":
            for mode in req["modes"]:
                start, calls = time.perf_counter(), 0
                while calls < 3 or time.perf_counter() - start < 0.3:
                    call(mode)
                    calls += 1
            send(dict(ok=True))
        elif req["cmd"] == "time":
            mode = req["mode"]
            for _ in range(req["warmup"]):
                call(mode)
            c0, t0 = time.process_time_ns(), time.perf_counter_ns()
            call(mode)
            t1, c1 = time.perf_counter_ns(), time.process_time_ns()
            send(dict(ns_per_step=(t1 - t0) / wl.steps, cpu_ratio=(c1 - c0) / max(t1 - t0, 1)))
    return 0


class Worker:
    """The coordinator's handle on one worker process."""

    def __init__(self, runtime, wl, threads, process, args):
        self.runtime = runtime
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        logf = open(Path(args.workdir) / wl.name / f"worker-{runtime}-t{threads}-p{process}.log", "w")
        spec = json.dumps(dict(name=wl.name, hidden=wl.hidden, layers=wl.layers, batch=wl.batch, steps=wl.steps))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", runtime, "--worker-workload", spec,
               "--worker-threads", str(threads), "--worker-process", str(process), "--workdir", str(args.workdir)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logf,
                                     text=True, env=env, bufsize=1)
        self.logf = logf

    def read(self, timeout=1800):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"{self.runtime} worker: no answer within {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.runtime} worker exited (code {self.proc.wait()}); see {self.logf.name}")
        return json.loads(line)

    def ask(self, req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(json.dumps(dict(cmd="quit")) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


# ------------------------------------------------------------------ the coordinator


def machine_meta(args, lstm_run_isa):
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    commit = "unknown"
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":!docs/benchmarks*"], capture_output=True, text=True).stdout.strip()
        if dirty:
            commit += " (with uncommitted changes)"
    except (OSError, subprocess.CalledProcessError):
        pass
    versions = {"python": platform.python_version()}
    for mod in ("torch", "onnxruntime", "onnx", "numpy"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001 — reported, not fatal
            versions[mod] = f"not available ({type(e).__name__})"
    try:
        import tract

        versions["tract"] = tract.version()
    except Exception as e:  # noqa: BLE001
        versions["tract"] = f"not available ({type(e).__name__})"
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        cpu=cpu,
        logical_cpus=os.cpu_count(),
        os=f"{platform.system()} {platform.release()}",
        lstmrt_commit=commit,
        lstmrt_isa=lstm_run_isa,
        versions=versions,
        command=" ".join(["python", "tools/bench_peers.py"] + sys.argv[1:]),
    )


def build(args):
    if args.no_build:
        return
    log("building lstm-run and lstm-convert (cargo build --release --bins)")
    subprocess.run(["cargo", "build", "--release", "--bins"], cwd=REPO, check=True)


def coordinate(args):
    try:
        import numpy as np
        import onnx  # noqa: F401 — needed by make_artifacts; fail before anything runs
        import safetensors  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        sys.exit(f"bench_peers: {e}; install the peers first: "
                 "pip install -r tools/requirements-bench.txt (onnxruntime or tract missing only drops that peer)")

    bin_dir = REPO / "target" / "release"
    lstm_run, lstm_convert = bin_dir / "lstm-run", bin_dir / "lstm-convert"
    build(args)
    for b in (lstm_run, lstm_convert):
        if not b.exists():
            sys.exit(f"bench_peers: {b} not found; run `cargo build --release --bins` (or drop --no-build)")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    settings = dict(
        quick=args.quick, workloads=list(args.workloads), threads=list(args.threads), repeats=args.repeats,
        processes=args.processes, warmup_calls=args.warmup_calls, settle_ms=args.settle_ms,
        tolerance=args.tolerance, tolerance_f16=args.tolerance_f16, modes=list(MODES),
    )
    results = dict(settings=settings, cells={}, bounds={}, checks=[], export_checks=[], failures=[])
    isa = None
    started = time.monotonic()
    for wl_name in args.workloads:
        wl = WORKLOADS[wl_name]
        d = workdir / wl.name
        log(f"== {wl.name}: LSTM {wl.describe()}")
        make_artifacts(wl, d, lstm_convert, results["export_checks"])
        ref = dict(np.load(d / "ref.npz"))
        models = {"lstmrt-f32": d / "f32.lstm", "lstmrt-f16": d / "f16.lstm"}
        for mode in MODES:
            for rt, model in models.items():
                try:
                    rep = lstmrt_bench(lstm_run, model, wl, mode, 1, args.warmup_calls, roofline=True)
                except RuntimeError as e:
                    results["failures"].append(f"{wl.name}, {LABELS[rt]}, {mode}: roofline: {e}")
                    continue
                results["bounds"][f"{wl.name}/{mode}/{rt.split('-')[1]}"] = rep.get("bound_ns_per_step")
                isa = rep.get("isa", isa)
        for threads in args.threads:
            log(f"  -- {threads} thread(s)")
            # status[rt][mode]: True if it agreed (timed), else a reason string.
            status = {rt: {} for rt in RUNTIMES}
            for rt, model in models.items():
                tol = args.tolerance_f16 if rt == "lstmrt-f16" else args.tolerance
                try:
                    out = lstmrt_outputs(lstm_run, model, wl, d, threads, f"{rt}-t{threads}")
                    entry, seq_ok, stream_ok = compare(out, ref, tol, LABELS[rt])
                    merge_check(results["checks"], wl.name, threads, rt, entry)
                    status[rt] = {"sequence": seq_ok or "disagrees", "stream": stream_ok or "disagrees"}
                except RuntimeError as e:
                    results["failures"].append(f"{wl.name}, {threads} thread(s), {LABELS[rt]}: {e}")
                    status[rt] = {m: "failed" for m in MODES}
            samples = {(rt, m): [[] for _ in range(args.processes)] for rt in RUNTIMES for m in MODES}
            cpu = {(rt, m): [] for rt in PEERS for m in MODES}
            per_call = {rt: [] for rt in OURS}  # lstm-run --stream: (median, p99) of each repeat's calls
            for p in range(args.processes):
                workers = {}
                try:
                    for rt in PEERS:
                        if "failed" not in status[rt].values():
                            workers[rt] = Worker(rt, wl, threads, p, args)
                    for rt in list(workers):
                        try:
                            msg = workers[rt].read()
                        except RuntimeError as e:
                            msg = dict(ready=False, error=str(e))
                        if not msg.get("ready"):
                            results["failures"].append(
                                f"{wl.name}, {threads} thread(s), {LABELS[rt]}: could not run: {msg.get('error')}")
                            status[rt] = {m: "failed" for m in MODES}
                            workers.pop(rt).close()
                            continue
                        log(f"    {LABELS[rt]} {msg['version']} loaded (process {p + 1})")
                        out = dict(np.load(msg["check"]))
                        entry, seq_ok, stream_ok = compare(out, ref, args.tolerance, f"{LABELS[rt]} (process {p + 1})")
                        merge_check(results["checks"], wl.name, threads, rt, entry)
                        prev = status[rt]
                        status[rt] = {
                            "sequence": (seq_ok and prev.get("sequence", True) is True) or "disagrees",
                            "stream": (stream_ok and prev.get("stream", True) is True) or "disagrees",
                        }
                    for rt, w in workers.items():
                        modes = [m for m in MODES if status[rt][m] is True]
                        try:
                            if modes:
                                w.ask(dict(cmd="warmup", modes=modes))
                        except RuntimeError as e:
                            results["failures"].append(f"{wl.name}, {threads} thread(s), {LABELS[rt]}: warm-up: {e}")
                            status[rt] = {m: "failed" for m in MODES}
                    for mode in MODES:
                        active = [rt for rt in RUNTIMES if status[rt].get(mode) is True
                                  and (rt in OURS or rt in workers)]
                        for r in range(args.repeats):
                            for rt in rotate(active, r + p):
                                if status[rt][mode] is not True:
                                    continue  # failed earlier in this loop
                                try:
                                    if rt in OURS:
                                        rep = lstmrt_bench(lstm_run, models[rt], wl, mode, threads, args.warmup_calls)
                                        samples[(rt, mode)][p].append(rep["ns_per_step_mean"])
                                        if mode == "stream":
                                            per_call[rt].append((rep["ns_per_step_median"], rep["ns_per_step_p99"]))
                                    else:
                                        ans = workers[rt].ask(dict(cmd="time", mode=mode, warmup=args.warmup_calls))
                                        samples[(rt, mode)][p].append(ans["ns_per_step"])
                                        cpu[(rt, mode)].append(ans["cpu_ratio"])
                                except (RuntimeError, OSError, KeyError, ValueError) as e:
                                    results["failures"].append(
                                        f"{wl.name}, {threads} thread(s), {LABELS[rt]}, {mode}: timing failed: {e}")
                                    status[rt][mode] = "failed"
                                time.sleep(args.settle_ms / 1000)
                finally:
                    for w in workers.values():
                        w.close()
                for mode in MODES:
                    got = ", ".join(f"{LABELS[rt]} {format_time(statistics.median(samples[(rt, mode)][p]))}"
                                    for rt in RUNTIMES if samples[(rt, mode)][p])
                    log(f"    process {p + 1}/{args.processes}, {mode}: {got}")
            for rt in RUNTIMES:
                for mode in MODES:
                    st = status[rt].get(mode, "failed")
                    entry = dict(status="ok" if st is True else st, samples=samples[(rt, mode)])
                    if rt in PEERS and cpu[(rt, mode)]:
                        entry["cpu_ratio"] = statistics.median(cpu[(rt, mode)])
                    if rt in OURS and mode == "stream" and per_call[rt]:
                        entry["per_call_median"] = statistics.median(m for m, _ in per_call[rt])
                        entry["per_call_p99"] = statistics.median(q for _, q in per_call[rt])
                    if st is not True and st == "disagrees":
                        results["failures"].append(
                            f"{wl.name}, {threads} thread(s), {LABELS[rt]}, {mode}: outputs disagree "
                            "beyond the tolerance; not timed (see Same outputs)")
                    results["cells"][key(wl.name, mode, threads, rt)] = entry
        log(f"   ({time.monotonic() - started:.0f} s so far)")
    results["failures"] = list(dict.fromkeys(results["failures"]))
    results["meta"] = machine_meta(args, isa)
    md_path, svg_path, json_path = output_paths(args.out)
    atomic_write_text(svg_path, render_svg(results))
    atomic_write_text(md_path, render_markdown(results, svg_path.name) + "\n")
    atomic_write_text(json_path, json.dumps(results, indent=1) + "\n")
    log(f"wrote {md_path}, {svg_path}, {json_path} ({time.monotonic() - started:.0f} s)")
    print(render_markdown(results, svg_path.name))


# ------------------------------------------------------------------ self-test


def fake_results():
    """Results as the coordinator builds them, with made-up samples."""

    def entry(ns, status="ok", cpu=None):
        e = dict(status=status, samples=[[ns, ns * 1.1, ns * 0.9], [ns * 1.2, ns * 1.2], [ns * 0.8]])
        if cpu is not None:
            e["cpu_ratio"] = cpu
        return e

    cells = {}
    for t in (1, 2):
        cells[key("W1", "sequence", t, "lstmrt-f32")] = entry(2000.0 / t)
        cells[key("W1", "sequence", t, "lstmrt-f16")] = entry(1500.0 / t)
        cells[key("W1", "sequence", t, "pytorch")] = entry(7300.0, cpu=float(t))
        cells[key("W1", "sequence", t, "onnxruntime")] = entry(4300.0, cpu=float(t))
        cells[key("W1", "sequence", t, "tract")] = entry(0.0, status="disagrees")
        cells[key("W1", "stream", t, "lstmrt-f32")] = dict(entry(3000.0), per_call_median=2900.0, per_call_p99=4100.0)
        cells[key("W1", "stream", t, "lstmrt-f16")] = entry(2500.0)
        cells[key("W1", "stream", t, "onnxruntime")] = entry(21000.0, cpu=1.0)
        cells[key("W1", "stream", t, "pytorch")] = entry(0.0, status="failed")
    return dict(
        settings=dict(quick=True, workloads=["W1"], threads=[1, 2], repeats=3, processes=3, warmup_calls=1,
                      settle_ms=20, tolerance=1e-4, tolerance_f16=2e-3, modes=list(MODES)),
        meta=dict(date="2026-01-01 00:00 UTC", cpu="Test CPU", logical_cpus=2, os="Linux", lstmrt_commit="abc",
                  lstmrt_isa="avx2", versions=dict(python="3.11", torch="2.15"), command="python tools/bench_peers.py"),
        cells=cells,
        bounds={"W1/sequence/f32": 1000.0, "W1/sequence/f16": 600.0},
        checks=[dict(workload="W1", threads=1, runtime="tract", sequence=0.5, twice=0.1, stream=1e-7,
                     stream_own=1e-7, tolerance=1e-4, verdict="DISAGREES (sequence)")],
        export_checks=[dict(workload="W1", what="seq.onnx W/R/B", diff=0.0, ok=True)],
        failures=["W1, 1 thread(s), tract, sequence: outputs disagree"],
    )


def self_test():
    import unittest
    import xml.etree.ElementTree as ET

    class PureFunctions(unittest.TestCase):
        def test_summarize_takes_the_median_of_per_process_medians(self):
            s = summarize([[1.0, 2.0, 9.0], [4.0], [], [3.0, 5.0]])
            self.assertEqual((s.median, s.low, s.high, s.processes, s.samples), (4.0, 2.0, 4.0, 3, 6))
            self.assertIsNone(summarize([[], []]))

        def test_ratio_is_peer_over_ours_and_missing_when_either_is(self):
            self.assertAlmostEqual(ratio(4300.0, 2000.0), 2.15)
            self.assertIsNone(ratio(None, 1.0))
            self.assertIsNone(ratio(1.0, None))
            self.assertIsNone(ratio(1.0, 0.0))

        def test_times_print_three_significant_digits_in_a_readable_unit(self):
            self.assertEqual(format_time(850.0), "850 ns")
            self.assertEqual(format_time(4300.0), "4.30 µs")
            self.assertEqual(format_time(76_100.0), "76.1 µs")
            self.assertEqual(format_time(1_360_000.0), "1.36 ms")
            self.assertEqual(format_time(12.345), "12.3 ns")
            self.assertEqual(format_spread(Spread(76_100.0, 72_000.0, 80_300.0, 3, 21)), "76.1 µs [72.0–80.3]")
            self.assertEqual(format_spread(Spread(900.0, 900.0, 900.0, 1, 7)), "900 ns")
            self.assertEqual(format_spread(None), "—")
            self.assertEqual(format_ratio(2.149), "2.15×")
            self.assertEqual(format_ratio(None), "—")

        def test_round_robin_order_rotates_and_keeps_every_runtime(self):
            items = ["a", "b", "c"]
            self.assertEqual(rotate(items, 0), ["a", "b", "c"])
            self.assertEqual(rotate(items, 1), ["b", "c", "a"])
            self.assertEqual(rotate(items, 5), ["c", "a", "b"])
            self.assertEqual(rotate([], 3), [])
            firsts = {rotate(items, k)[0] for k in range(3)}
            self.assertEqual(firsts, set(items))

        def test_gates_move_from_pytorch_ifgo_to_onnx_iofc(self):
            import numpy as np

            w = np.repeat(np.arange(4.0), 2)[:, None] * np.ones((1, 3))  # 4 gates x 2 units, 3 inputs
            got = torch_to_onnx_gates(w)[:, 0]
            self.assertEqual(list(got), [0, 0, 3, 3, 1, 1, 2, 2])
            self.assertEqual(list(torch_to_onnx_gates(np.arange(8.0))), [0, 1, 6, 7, 2, 3, 4, 5])

        def test_max_abs_diff_flags_shape_mismatch_and_nan(self):
            import numpy as np

            self.assertEqual(max_abs_diff([1.0, 2.0], [1.0, 2.5]), 0.5)
            self.assertEqual(max_abs_diff([1.0], [1.0, 2.0]), math.inf)
            self.assertEqual(max_abs_diff([np.nan], [0.0]), math.inf)

        def test_stream_lines_parse_and_refuse_a_short_row(self):
            a = parse_stream_lines("0.5,-1,2e-3\n1,2,3\n", 3)
            self.assertEqual(a.shape, (2, 3))
            self.assertAlmostEqual(float(a[0, 2]), 2e-3, places=9)
            with self.assertRaises(ValueError):
                parse_stream_lines("1,2\n", 3)

        def test_compare_catches_state_carried_between_calls_and_bad_streams(self):
            import numpy as np

            ref = dict(y=np.zeros((4, 1, 2)), h=np.zeros((1, 1, 2)), c=np.zeros((1, 1, 2)))
            good = dict(ref, y2=ref["y"], ys=ref["y"], hs=ref["h"], cs=ref["c"])
            _, seq_ok, stream_ok = compare(good, ref, 1e-4, "good")
            self.assertTrue(seq_ok and stream_ok)
            _, seq_ok, stream_ok = compare(dict(good, y2=ref["y"] + 0.1), ref, 1e-4, "carries state")
            self.assertFalse(seq_ok)
            self.assertTrue(stream_ok)
            _, seq_ok, stream_ok = compare(dict(good, cs=ref["c"] + 1.0), ref, 1e-4, "bad stream state")
            self.assertTrue(seq_ok)
            self.assertFalse(stream_ok)

        def test_fastest_peer_skips_runtimes_that_disagreed_or_failed(self):
            r = fake_results()
            self.assertEqual(fastest_peer(r, "W1", "sequence", 1)[0], "onnxruntime")
            self.assertEqual(fastest_peer(r, "W1", "stream", 1)[0], "onnxruntime")
            self.assertIsNone(fastest_peer(r, "W2", "sequence", 1))

        def test_targets_compare_the_fastest_peer_with_the_named_lstmrt_model(self):
            r = fake_results()
            by_text = {tg.text: (best, rr, verdict) for tg, best, rr, verdict in evaluate_targets(r)}
            best, rr, verdict = by_text[TARGETS[0].text]  # W1 sequence f32 >= 1.1
            ort_median = summarize(r["cells"][key("W1", "sequence", 1, "onnxruntime")]["samples"]).median
            ours = summarize(r["cells"][key("W1", "sequence", 1, "lstmrt-f32")]["samples"]).median
            self.assertEqual(best, "onnxruntime")
            self.assertAlmostEqual(rr, ort_median / ours)
            self.assertEqual(verdict, "met")
            self.assertEqual(by_text[TARGETS[1].text][2], "not measured")  # W2 absent
            _, rr, verdict = by_text[TARGETS[6].text]  # W1 stream >= 3x: 21000/3000 = 7
            self.assertEqual(verdict, "met")
            slow = fake_results()
            slow["cells"][key("W1", "sequence", 1, "lstmrt-f32")]["samples"] = [[4300.0]]
            verdict = dict((tg.text, v) for tg, _, _, v in evaluate_targets(slow))[TARGETS[0].text]
            self.assertTrue(verdict.startswith("missed: 1.00× of 1.10×"), verdict)

        def test_markdown_has_labelled_cells_ratios_and_a_smoke_banner(self):
            r = fake_results()
            md = render_markdown(r, "bench-ratios.svg")
            self.assertTrue(md.startswith("> **Development smoke run"))
            self.assertIn("![peer time / lstmrt time](bench-ratios.svg)", md)
            self.assertIn("— (disagrees)", md)
            self.assertIn("— (failed)", md)
            ort = format_ratio(summarize(r["cells"][key("W1", "sequence", 1, "onnxruntime")]["samples"]).median
                               / summarize(r["cells"][key("W1", "sequence", 1, "lstmrt-f32")]["samples"]).median)
            row = next(line for line in md.splitlines() if line.startswith("| W1 | whole sequence | 1 | "))
            self.assertIn(f"| {ort} |", row)
            self.assertIn("(ONNX Runtime)", row)
            self.assertIn("Test CPU", md)
            self.assertIn("DISAGREES (sequence)", md)
            self.assertIn("| W1 | 1 | f32 | 2.90 µs | 4.10 µs |", md)
            full = fake_results()
            full["settings"].update(quick=False, repeats=7, processes=3,
                                    workloads=list(WORKLOADS), threads=[1, 2])
            self.assertFalse(render_markdown(full, "x.svg").startswith(">"))

        def test_svg_is_well_formed_with_one_bar_per_measured_ratio(self):
            r = fake_results()
            svg = render_svg(r)
            root = ET.fromstring(svg)
            ns = "{http://www.w3.org/2000/svg}"
            bars = [e for e in root.iter(ns + "rect") if e.find(ns + "title") is not None]
            measured = sum(1 for _, bars_ in chart_groups(r) for _, _, rr in bars_ if rr)
            self.assertEqual(len(bars), measured)
            self.assertGreater(measured, 0)

        def test_output_paths_sit_next_to_the_markdown(self):
            md, svg, js = output_paths("docs/benchmarks.md")
            self.assertEqual((str(md), str(svg), str(js)),
                             ("docs/benchmarks.md", "docs/benchmarks-ratios.svg", "docs/benchmarks.json"))

        def test_atomic_write_replaces_the_file_and_leaves_no_temporary(self):
            with tempfile.TemporaryDirectory() as tmp:
                p = Path(tmp) / "out.md"
                atomic_write_text(p, "one")
                atomic_write_text(p, "two")
                self.assertEqual(p.read_text(), "two")
                self.assertEqual(os.listdir(tmp), ["out.md"])
                umask = os.umask(0)
                os.umask(umask)
                self.assertEqual(p.stat().st_mode & 0o777, 0o666 & ~umask)

    suite = unittest.defaultTestLoader.loadTestsFromTestCase(PureFunctions)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


# ------------------------------------------------------------------ command line


def parse_list(text, allowed, what):
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"{what}: {', '.join(bad) or '(empty)'} not one of {', '.join(allowed)}")
    return items


def parse_threads(text):
    try:
        items = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        items = []
    if not items or min(items) < 1:
        raise argparse.ArgumentTypeError(f"--threads: expected positive integers like 1,2, got {text!r}")
    return items


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"development run: {QUICK['repeats']} repeats x {QUICK['processes']} processes, "
                         f"workloads {','.join(QUICK['workloads'])}, threads 1, 1 warm-up call "
                         "(explicit options still win)")
    ap.add_argument("--workloads", type=lambda s: parse_list(s, list(WORKLOADS), "--workloads"),
                    help="e.g. W1,W2 (default all: " + "; ".join(f"{w.name} {w.describe()}" for w in WORKLOADS.values()) + ")")
    ap.add_argument("--threads", type=parse_threads, help="thread counts, e.g. 1,2 (default 1,2)")
    ap.add_argument("--repeats", type=int, help=f"timed repeats per runtime per process (default {FULL['repeats']})")
    ap.add_argument("--processes", type=int, help=f"separate processes per peer (default {FULL['processes']})")
    ap.add_argument("--warmup-calls", type=int, help="untimed calls before every timed repeat (default 2)")
    ap.add_argument("--settle-ms", type=float, default=20.0, help="sleep between repeats (default 20)")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="largest difference from PyTorch, f32 (1e-4)")
    ap.add_argument("--tolerance-f16", type=float, default=2e-3,
                    help="largest difference of lstmrt's f16 model from PyTorch's f32 outputs (2e-3)")
    ap.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"),
                    help="markdown report; the chart and raw JSON go next to it")
    ap.add_argument("--workdir", default=str(REPO / "target" / "bench-peers"), help="models, inputs, logs")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build first")
    ap.add_argument("--self-test", action="store_true", help="test the pure functions on fake data and exit")
    ap.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    ap.add_argument("--worker-workload", help=argparse.SUPPRESS)
    ap.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--worker-process", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    base = dict(FULL, warmup_calls=2)
    if args.quick:
        base.update(QUICK)
    for name in ("workloads", "threads", "repeats", "processes", "warmup_calls"):
        if getattr(args, name) is None:
            setattr(args, name, base[name])
    args.workloads, args.threads = list(args.workloads), list(args.threads)
    if args.repeats < 1 or args.processes < 1 or args.warmup_calls < 0:
        ap.error("--repeats and --processes must be >= 1, --warmup-calls >= 0")
    return args


def main(argv):
    args = parse_args(argv)
    if args.self_test:
        return self_test()
    if args.worker:
        return worker_main(args)
    coordinate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
