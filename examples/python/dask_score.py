"""Batch scoring with lstmrt on a Dask cluster.

Each worker process opens the model once (a worker plugin; the file is
memory-mapped, so the workers on one host share its pages in the page cache)
and scores its partitions in batches: a partition of sequences, batch-first
``[n, T, F]``, becomes one ``model.run(block, batch_first=True)`` call, and
the score of a sequence is its last timestep's output (through the model's
head when it has one). Only the model's path travels to the workers.

    pip install lstmrt dask distributed      # (lstmrt: the wheel of tools/python_tests.sh)
    python examples/python/dask_score.py models/pronoun.lstm            # a demo on random data
    python examples/python/dask_score.py models/pronoun.lstm --bench    # 1 vs 2 workers

Two inputs are shown: a ``dask.array`` chunked along the sequences
(``score_array``) and a bag of ``.npy`` files, one batch of sequences each
(``score_npy_files``).

The same pattern elsewhere, with no change to lstmrt:

* Ray Data: a callable class opens the model in ``__init__`` and scores in
  ``__call__``; ``ds.map_batches(Scorer, fn_constructor_args=(path,),
  batch_format="numpy", concurrency=N)`` runs one per actor.
* Spark: an iterator pandas UDF (``Iterator[pd.Series] -> Iterator[pd.Series]``)
  opens the model once before its loop, then yields the scores of each Arrow
  batch; ship the file with ``sc.addFile`` and open ``SparkFiles.get(name)``.
  Spark's Python workers fork: lstmrt starts its threads again in the child.
"""

import argparse
import time

import numpy as np

import lstmrt

try:
    from distributed import WorkerPlugin, get_worker
except ImportError:  # the example's functions still work in one process
    WorkerPlugin, get_worker = object, None


class OpenModel(WorkerPlugin):
    """Opens the model once in every worker (``client.register_plugin``)."""

    name = "lstmrt-model"

    def __init__(self, path):
        self.path = str(path)

    def setup(self, worker):
        worker.lstmrt_models = getattr(worker, "lstmrt_models", {})
        worker.lstmrt_models[self.path] = lstmrt.Model(self.path)


def worker_model(path):
    """This worker's open model (or, outside a cluster, a new one)."""
    try:
        return get_worker().lstmrt_models[str(path)]
    except (AttributeError, KeyError, ValueError, TypeError):
        return lstmrt.Model(path)


def score_block(block, model):
    """Scores of the sequences of ``block`` (``[n, T, F]``): ``[n, K]``."""
    block = np.ascontiguousarray(block, dtype=np.float32)
    if block.shape[0] == 0:
        width = model.info["head"]["out_features"] if model.info["head"] else model.output_size
        return np.zeros((0, width), np.float32)
    last = model.run(block, batch_first=True)[:, -1, :]
    if model.info["head"] is None:
        return np.ascontiguousarray(last)
    return np.stack([model.head(np.ascontiguousarray(row)) for row in last])


def score_partition(block, path):
    return score_block(block, worker_model(path))


def score_array(client, path, x):
    """Scores of a dask array ``x`` ``[N, T, F]`` chunked along N only."""
    if x.numblocks[1:] != (1, 1):
        x = x.rechunk({1: -1, 2: -1})
    client.register_plugin(OpenModel(path))
    model = lstmrt.Model(path)
    width = model.info["head"]["out_features"] if model.info["head"] else model.output_size
    return x.map_blocks(
        score_partition, path, dtype=np.float32, chunks=(x.chunks[0], (width,)), drop_axis=[1], new_axis=None
    )


def score_file(npy_path, path):
    return score_block(np.load(npy_path, mmap_mode="r"), worker_model(path))


def score_npy_files(client, path, files, partitions=None):
    """Scores of each ``.npy`` file (``[n, T, F]`` float32), in file order."""
    import dask.bag as db

    client.register_plugin(OpenModel(path))
    bag = db.from_sequence([str(f) for f in files], npartitions=partitions or len(files))
    return bag.map(score_file, str(path))


def random_sequences(n, steps, features, chunk, seed=0):
    import dask.array as da

    rng = da.random.default_rng(seed)
    return rng.standard_normal((n, steps, features), chunks=(chunk, steps, features), dtype=np.float32)


def main():
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--sequences", type=int, default=32768)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--bench", action="store_true", help="throughput of 1 and 2 workers")
    args = parser.parse_args()
    features = lstmrt.Model(args.model).input_size
    for workers in [1, 2] if args.bench else [2]:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                x = random_sequences(args.sequences, args.steps, features, args.chunk).persist()
                client.wait_for_workers(workers)
                score_array(client, args.model, x[: args.chunk]).compute()  # warm: plugins, imports
                start = time.perf_counter()
                scores = score_array(client, args.model, x).compute()
                seconds = time.perf_counter() - start
        rate = args.sequences / seconds
        print(f"{workers} worker(s): {args.sequences} sequences x {args.steps} steps in {seconds:.3f} s = {rate:,.0f} sequences/s")
    print("scores", scores.shape, "first row", scores[0])


if __name__ == "__main__":
    main()
