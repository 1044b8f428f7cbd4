"""examples/python/dask_score.py on a LocalCluster of 2 worker processes
gives exactly the single-process scores (run by tools/python_tests.sh --dask;
skipped where dask and distributed are not installed)."""

import importlib.util
import pathlib

import numpy as np
import pytest

import lstmrt

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.array")

ROOT = pathlib.Path(__file__).resolve().parents[3]
DEMO = str(ROOT / "models" / "pronoun.lstm")


def example():
    spec = importlib.util.spec_from_file_location("dask_score", ROOT / "examples" / "python" / "dask_score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        c.wait_for_workers(2)
        yield c
    cluster.close()


def test_two_workers_score_a_dask_array_exactly_as_one_process(client):
    ds = example()
    model = lstmrt.Model(DEMO)
    x = ds.random_sequences(300, 20, model.input_size, chunk=64, seed=3)
    got = ds.score_array(client, DEMO, x).compute()
    # One process, the same partitions, one after another.
    whole = x.compute(scheduler="synchronous")
    bounds = np.cumsum((0,) + x.chunks[0])
    want = np.concatenate([ds.score_block(whole[a:b], model) for a, b in zip(bounds[:-1], bounds[1:])])
    assert got.shape == (300, 2)
    np.testing.assert_array_equal(got, want)
    # Each worker opened the model once.
    opened = client.run(lambda dask_worker: len(getattr(dask_worker, "lstmrt_models", {})))
    assert sorted(opened.values()) == [1, 1]


def test_two_workers_score_a_bag_of_npy_files_exactly_as_one_process(client, tmp_path):
    ds = example()
    model = lstmrt.Model(DEMO)
    rng = np.random.default_rng(5)
    files = []
    for i, n in enumerate([7, 1, 16, 0, 9]):
        path = tmp_path / f"part{i}.npy"
        np.save(path, rng.standard_normal((n, 12, model.input_size)).astype(np.float32))
        files.append(path)
    got = ds.score_npy_files(client, DEMO, files).compute()
    assert [len(g) for g in got] == [7, 1, 16, 0, 9]
    for path, scores in zip(files, got):
        np.testing.assert_array_equal(scores, ds.score_block(np.load(path), model))
