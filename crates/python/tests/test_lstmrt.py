"""The Python package against PyTorch's own outputs (tests/fixtures/, made by
tools/make_fixtures.py and tools/make_packed_fixtures.py) and the runtime's
refusals. Run by tools/python_tests.sh (built wheel, fresh venv)."""

import json
import os
import pathlib
import threading
import time

import numpy as np
import pytest

import lstmrt

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"
DEMO = ROOT / "models" / "pronoun.lstm"
TOL = 1e-5


def cases(folder):
    return sorted(p for p in (FIXTURES / folder).iterdir() if p.is_dir())


def converted(case, tmp_path, dtype="f32"):
    config = json.loads((case / "config.json").read_text())
    dst = tmp_path / f"{case.name}.lstm"
    lstmrt.convert(case / "weights.safetensors", dst, dtype, cell=config["cell"])
    return lstmrt.Model(dst), config


def start_state(model, case, batch):
    state = model.new_state(batch)
    if (case / "h0.npy").exists():
        state.h = np.load(case / "h0.npy")
    if (case / "c0.npy").exists():
        state.c = np.load(case / "c0.npy")
    return state


@pytest.mark.parametrize("case", cases("pytorch"), ids=lambda p: p.name)
def test_run_matches_pytorch_output_and_final_state(case, tmp_path):
    model, _ = converted(case, tmp_path)
    x = np.load(case / "input.npy")  # [T, B, F]
    state = start_state(model, case, x.shape[1])
    y = model.run(x, state)
    assert y.shape == np.load(case / "output.npy").shape
    np.testing.assert_allclose(y, np.load(case / "output.npy"), rtol=0, atol=TOL)
    np.testing.assert_allclose(state.h, np.load(case / "h_n.npy"), rtol=0, atol=TOL)
    if (case / "c_n.npy").exists():
        np.testing.assert_allclose(state.c, np.load(case / "c_n.npy"), rtol=0, atol=TOL)
    else:
        assert state.c is None
    # batch_first gives PyTorch's batch_first output; [T, F] is one sequence.
    yb = model.run(np.ascontiguousarray(x.transpose(1, 0, 2)), start_state(model, case, x.shape[1]), batch_first=True)
    np.testing.assert_array_equal(yb, y.transpose(1, 0, 2))
    if (case / "h0.npy").exists():
        return
    y0 = model.run(np.ascontiguousarray(x[:, 0, :]))
    np.testing.assert_allclose(y0, np.load(case / "output.npy")[:, 0, :], rtol=0, atol=TOL)


@pytest.mark.parametrize("case", cases("pytorch_packed"), ids=lambda p: p.name)
def test_lengths_match_pytorch_packed_sequences(case, tmp_path):
    model, _ = converted(case, tmp_path)
    x = np.load(case / "input.npy")
    state = start_state(model, case, x.shape[1])
    y = model.run(x, state, lengths=np.load(case / "lengths.npy").tolist())
    np.testing.assert_allclose(y, np.load(case / "output.npy"), rtol=0, atol=TOL)
    np.testing.assert_allclose(state.h, np.load(case / "h_n.npy"), rtol=0, atol=TOL)


def test_step_by_step_equals_the_whole_run_and_writes_into_out(tmp_path):
    model, _ = converted(FIXTURES / "pytorch" / "lstm_batch5", tmp_path)
    x = np.load(FIXTURES / "pytorch" / "lstm_batch5" / "input.npy")
    whole = model.run(x)
    state = model.new_state(x.shape[1])
    out = np.empty((x.shape[1], model.output_size), np.float32)
    for t in range(x.shape[0]):
        got = model.step(state, x[t], out=out)
        assert got is out
        np.testing.assert_array_equal(out, whole[t])
    # Batch 1 takes and gives flat rows.
    one = model.new_state()
    for t in range(x.shape[0]):
        y = model.step(one, np.ascontiguousarray(x[t, 0]))
    assert y.shape == (model.output_size,)
    np.testing.assert_array_equal(y, whole[-1, 0])


def test_non_contiguous_input_reads_the_same_values(tmp_path):
    model, _ = converted(FIXTURES / "pytorch" / "lstm_batch5", tmp_path)
    x = np.load(FIXTURES / "pytorch" / "lstm_batch5" / "input.npy")
    strided = np.asfortranarray(x)
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(model.run(strided), model.run(x))


def test_state_bytes_round_trip_reset_and_copy():
    model = lstmrt.Model(DEMO)
    xs = model.token_inputs(model.tokenize("Tom waved at the bus. Later"))
    state = model.new_state()
    model.run(xs[:3], state)
    saved = state.to_bytes()
    branch = state.copy()
    rest = model.run(xs[3:], state)
    back = lstmrt.State.from_bytes(model, saved)
    np.testing.assert_array_equal(model.run(xs[3:], back), rest)
    np.testing.assert_array_equal(model.run(xs[3:], branch), rest)
    state.reset()
    np.testing.assert_array_equal(state.h, np.zeros_like(state.h))
    np.testing.assert_array_equal(model.run(xs, state), model.run(xs))
    with pytest.raises(lstmrt.StateError):
        lstmrt.State.from_bytes(model, saved[:-1])


def test_the_demo_model_answers_as_lstm_run_does():
    model = lstmrt.Model(DEMO)
    info = model.info
    assert info["architecture"] == "lstm" and info["head"]["labels"] == ["he", "she"]
    assert info["mapped"] and info["isa"] == lstmrt.isa()
    assert not lstmrt.Model(DEMO, mmap=False).info["mapped"]
    text = "Anna found an old map in the attic. The paper was brittle and the ink had faded over many long years. Later"
    y = model.run(model.token_inputs(model.tokenize(text)))
    probs = model.head(y[-1])
    assert probs.argmax() == 1 and probs[1] > 0.9  # she
    again = lstmrt.Model.from_bytes(DEMO.read_bytes())
    np.testing.assert_array_equal(again.run(model.token_inputs(model.tokenize(text))), y)


def test_stream_batch_gives_each_stream_what_it_gets_alone():
    model = lstmrt.Model(DEMO)
    texts = ["the king said that", "Tom and his sister walked home. Then", "she"]
    rows = [model.token_inputs(model.tokenize(t)) for t in texts]
    streams = model.new_stream_batch(4)
    ids = [streams.join() for _ in texts]
    assert len(streams) == 3 and streams.capacity == 4
    last = {}
    for t in range(max(len(r) for r in rows)):
        live = [i for i, r in enumerate(rows) if t < len(r)]
        ys = streams.step([ids[i] for i in live], np.stack([rows[i][t] for i in live]))
        for k, i in enumerate(live):
            last[i] = ys[k].copy()
    for i, r in enumerate(rows):
        np.testing.assert_allclose(last[i], model.run(r)[-1], rtol=0, atol=1e-6)
        np.testing.assert_allclose(streams.state(ids[i]).h[0, 0], last[i], rtol=0, atol=1e-6)
    streams.leave(ids[0])
    with pytest.raises(lstmrt.StreamError):
        streams.step([ids[0]], rows[0][:1])
    again = streams.join()
    assert again.index == ids[0].index and again.generation == ids[0].generation + 1 and again != ids[0]


def test_bad_input_raises_lstmrt_errors_with_the_runtimes_message(tmp_path):
    model = lstmrt.Model(DEMO)
    f = model.input_size
    with pytest.raises(lstmrt.DTypeError, match="float64") as e:
        model.run(np.zeros((3, f)))
    assert isinstance(e.value, TypeError)
    with pytest.raises(lstmrt.DTypeError, match="list"):
        model.run([[0.0] * f])
    with pytest.raises(lstmrt.ShapeError, match=r"\[3, 5\]") as e:
        model.run(np.zeros((3, 5), np.float32))
    assert isinstance(e.value, ValueError)
    with pytest.raises(lstmrt.ShapeError):
        model.step(model.new_state(2), np.zeros(f, np.float32))
    with pytest.raises(lstmrt.StateError):
        model.run(np.zeros((3, 2, f), np.float32), model.new_state(3))
    with pytest.raises(lstmrt.LengthsError):
        model.run(np.zeros((3, 2, f), np.float32), lengths=[1, -1])
    with pytest.raises(lstmrt.LengthsError, match="longer"):
        model.run(np.zeros((3, 2, f), np.float32), lengths=[1, 4])
    with pytest.raises(lstmrt.ReadError) as e:
        lstmrt.Model(tmp_path / "missing.lstm")
    assert isinstance(e.value, OSError)
    with pytest.raises(lstmrt.ReadError):
        lstmrt.Model(tmp_path)
    corrupt = bytearray(DEMO.read_bytes())
    corrupt[100] ^= 0xFF
    (tmp_path / "corrupt.lstm").write_bytes(corrupt)
    with pytest.raises(lstmrt.FileError):
        lstmrt.Model(tmp_path / "corrupt.lstm")
    with pytest.raises(lstmrt.FileError):
        lstmrt.Model.from_bytes(b"not a model")
    with pytest.raises(lstmrt.TokenError):
        model.token_inputs([10**6])
    with pytest.raises(lstmrt.ConvertError):
        lstmrt.convert(DEMO, tmp_path / "x.lstm", "f64")
    with pytest.raises(lstmrt.ConvertError):
        lstmrt.convert(tmp_path / "corrupt.lstm", tmp_path / "x.lstm")
    assert not (tmp_path / "x.lstm").exists()
    # NaN is computed through, as PyTorch does, never a crash.
    assert np.isnan(model.run(np.full((2, f), np.nan, np.float32))).all()


def test_stepping_a_bidirectional_model_is_unsupported(tmp_path):
    model, _ = converted(FIXTURES / "pytorch" / "lstm_bidirectional", tmp_path)
    state = model.new_state(model.info and 2)
    with pytest.raises(lstmrt.UnsupportedError, match="bidirectional"):
        model.step(state, np.zeros((2, model.input_size), np.float32))


def test_conversion_to_every_dtype_passes_its_check(tmp_path):
    case = FIXTURES / "pytorch" / "lstm_proj"
    for dtype in ["f32", "f16", "bf16", "int8"]:
        model, _ = converted(case, tmp_path, dtype)
        assert model.info["dtype"] == dtype
        line = lstmrt.convert(case / "weights.safetensors", tmp_path / "checked.lstm", dtype, check=True)
        assert "checked.lstm" in line


def test_threads_and_a_state_in_use_by_two_calls_is_refused():
    model = lstmrt.Model(DEMO)
    xs = np.tile(model.token_inputs(model.tokenize("Tom waved. Later")), (4000, 1))
    state = model.new_state(threads=2)
    assert state.threads == 2
    expected = model.run(xs)
    errors, results = [], []

    def worker():
        try:
            results.append(model.run(xs, state))
        except lstmrt.Error as e:  # pragma: no cover - would be a bug
            errors.append(e)

    t = threading.Thread(target=worker)
    t.start()
    refused = 0
    while t.is_alive():
        try:
            model.run(xs[:1], state)
        except RuntimeError:
            refused += 1  # pyo3: already borrowed by the other call
        time.sleep(0.0005)
    t.join()
    assert not errors
    np.testing.assert_allclose(results[0], expected, rtol=0, atol=1e-5)


def test_a_forked_child_runs_states_with_threads():
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    model = lstmrt.Model(DEMO)
    xs = np.tile(model.token_inputs(model.tokenize("Tom waved. Later")), (50, 1))
    state = model.new_state(threads=2)
    expected = model.run(xs, state.copy())
    model.run(xs, state.copy())  # the workers have run in the parent
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            ok = np.array_equal(model.run(xs, state), expected) and state.threads == 2
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.01)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_the_stubs_name_what_the_module_has():
    import ast

    stub = ast.parse((pathlib.Path(lstmrt._lstmrt.__file__).parent / "_lstmrt.pyi").read_text())
    for node in stub.body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(lstmrt, node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                    assert hasattr(cls, item.name), f"{node.name}.{item.name}"
        elif isinstance(node, ast.FunctionDef):
            assert hasattr(lstmrt, node.name), node.name


def _speech():
    import wave

    with wave.open(str(ROOT / "models" / "silero_vad" / "speech.wav")) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0


def test_chunk_state_runs_silero_vad_like_the_reference():
    model = lstmrt.Model(ROOT / "models" / "silero_vad" / "silero_vad.lstm")
    info = model.info["chunks"]
    assert info == {"chunk": 512, "channels": 1, "context": 64, "sample_rate": 16000, "outputs": 1}
    audio = _speech()
    audio = np.pad(audio, (0, -len(audio) % 512))
    ref = np.load(ROOT / "models" / "silero_vad" / "reference_probs.npy")
    st = model.new_chunk_state()
    got = np.array([st.run(c)[0, 0] for c in audio.reshape(-1, 512)])
    assert got.shape == ref.shape and np.abs(got - ref).max() < 2e-5
    # Two streams at once: the same signal and a reset one give the same.
    st2 = model.new_chunk_state(2, threads=2)
    first = st2.run(np.stack([audio[:512], audio[:512]]))
    assert first.shape == (2, 1) and abs(first[0, 0] - ref[0]) < 2e-5 and first[0, 0] == first[1, 0]
    st2.reset_stream(1)
    second = st2.run(np.stack([audio[512:1024], audio[:512]]))
    assert abs(second[0, 0] - ref[1]) < 2e-5 and abs(second[1, 0] - ref[0]) < 2e-5
    with pytest.raises(lstmrt.ShapeError):
        st2.run(np.zeros((3, 512), np.float32))
    with pytest.raises(lstmrt.StreamError):
        st2.reset_stream(2)
    with pytest.raises(lstmrt.UnsupportedError):
        lstmrt.Model(ROOT / "models" / "pronoun.lstm").new_chunk_state()
