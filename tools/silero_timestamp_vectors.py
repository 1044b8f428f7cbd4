"""Writes tests/fixtures/silero_timestamps.json: silero-vad 6.2.3's own
get_speech_timestamps_from_probs (from its wheel, with a stand-in torch module,
as tools/silero_fixtures.py does) on 12 synthetic probability sequences x 11
parameter sets. crates/lstmrt/tests/vad.rs checks lstmrt::vad against them.
Needs no torch and no network once the wheel is here:

    pip download --no-deps silero-vad==6.2.3 -d /tmp/silero_pkg
    (cd /tmp/silero_pkg && unzip -o silero_vad-6.2.3-py3-none-any.whl -d unpacked)
    python3 tools/silero_timestamp_vectors.py /tmp/silero_pkg/unpacked/silero_vad tests/fixtures/silero_timestamps.json
"""
import json, random, sys, types

class Anything:
    def __init__(self, *a, **k): pass
    def __call__(self, *a, **k): return self
    def __getattr__(self, n): return Anything()

def load(pkg):
    fake = types.ModuleType("torch"); fake.__getattr__ = lambda n: Anything()
    sys.modules["torch"] = fake
    try:
        import packaging.version  # noqa
    except ImportError:
        p = types.ModuleType("packaging"); p.version = Anything(); sys.modules["packaging"] = p
    ns = {"__name__": "u"}
    exec(compile(open(pkg + "/utils_vad.py").read(), "utils_vad.py", "exec"), ns)
    del sys.modules["torch"]
    return ns["get_speech_timestamps_from_probs"]

def main():
    f = load(sys.argv[1])
    rng = random.Random(1234)
    cases = []
    def seq(n):
        # runs of speech/silence with noise, values in [0, 1]
        out, speech = [], False
        while len(out) < n:
            run = rng.randint(1, 60)
            base = 0.9 if speech else 0.05
            out += [min(1.0, max(0.0, base + rng.uniform(-0.5, 0.3) if rng.random() < 0.3 else base)) for _ in range(run)]
            speech = not speech
        return out[:n]
    params = [
        {},
        {"max_speech_duration_s": 1.0},
        {"max_speech_duration_s": 1.0, "use_max_poss_sil_at_max_speech": False},
        {"max_speech_duration_s": 2.5, "min_silence_at_max_speech": 50},
        {"return_seconds": True},
        {"return_seconds": True, "time_resolution": 3},
        {"min_silence_duration_ms": 0, "speech_pad_ms": 0, "min_speech_duration_ms": 0},
        {"threshold": 0.3, "neg_threshold": 0.1, "speech_pad_ms": 100},
        {"sampling_rate": 8000},
        {"sampling_rate": 8000, "max_speech_duration_s": 0.5, "return_seconds": True},
        {"step": 3},
    ]
    for k in range(12):
        probs = [round(p, 4) for p in seq(rng.randint(50, 600))]
        for p in params:
            sr = p.get("sampling_rate", 16000)
            w = 512 if sr == 16000 else 256
            length = len(probs) * w - rng.randint(0, w - 1)
            kw = dict(p); kw["audio_length_samples"] = length
            cases.append({"probs": probs, "kwargs": kw, "result": f(probs, **kw)})
    json.dump(cases, open(sys.argv[2], "w"))
    print(len(cases), "cases")

main()
