#!/usr/bin/env python3
"""Writes the lstm-convert fixtures under tests/fixtures/convert/.

For each source kind (pytorch, onnx, keras) a few small models, each in its
own folder:
  model.pt / model.onnx / model.npz   the source file, as the framework writes it
  input.npy                           [T, B, input] float32 (or [T, B] int64 token ids)
  output.npy                          the framework's own output on that input
                                      ([T, B, D*H], or the head's output when there is one)
  case.json                           extra lstm-convert options and notes

plus files that must be refused (under `refused/`).

Not run by CI: it needs torch, onnx, onnxruntime and tensorflow/keras.
To regenerate (all three kinds, or one with --only):
    /work/pyenv/bin/python tools/make_convert_fixtures.py [--only pytorch|onnx|keras]
or, elsewhere:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch onnx onnxruntime tensorflow-cpu numpy
    /tmp/venv/bin/python tools/make_convert_fixtures.py
Seeded, so the files only change when a framework version changes them. The
Rust tests (tests/convert_*.rs) convert each model and compare with
output.npy within 1e-5.
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "tests", "fixtures", "convert")


def case_dir(kind, name):
    d = os.path.join(ROOT, kind, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    return d


def write_case(d, x, y, **case):
    np.save(os.path.join(d, "input.npy"), np.ascontiguousarray(x))
    np.save(os.path.join(d, "output.npy"), np.ascontiguousarray(y.astype(np.float32)))
    case.setdefault("args", [])
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1, sort_keys=True)
        f.write("\n")


# ---------------------------------------------------------------- PyTorch


class Boom:
    """Unpickling this calls os.system: the reader must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


class Config:
    """A custom class (pickled as `__main__.Config`): refused too."""

    def __init__(self):
        self.hidden = 4


def make_pytorch():
    import torch

    torch.manual_seed(7)
    kind = "pytorch"
    versions = dict(torch=torch.__version__)

    def run(model, x):
        with torch.no_grad():
            return model(x)[0].numpy()

    # A plain nn.LSTM, default torch.save (zip).
    d = case_dir(kind, "lstm_1layer")
    m = torch.nn.LSTM(3, 5, 1).eval()
    x = torch.randn(4, 2, 3)
    torch.save(m.state_dict(), os.path.join(d, "model.pt"))
    write_case(d, x.numpy(), run(m, x), note="nn.LSTM(3, 5), torch.save zip format", **versions)

    # Two bidirectional layers with projection, pickled with protocol 4
    # (STACK_GLOBAL, MEMOIZE, FRAME).
    d = case_dir(kind, "lstm_2layer_bidirectional_proj")
    m = torch.nn.LSTM(4, 6, 2, bidirectional=True, proj_size=3).eval()
    x = torch.randn(5, 2, 4)
    torch.save(m.state_dict(), os.path.join(d, "model.pt"), pickle_protocol=4)
    write_case(d, x.numpy(), run(m, x), note="bidirectional, proj_size=3, pickle protocol 4", **versions)

    # A GRU in the legacy (non-zip) format.
    d = case_dir(kind, "gru_2layer_legacy")
    m = torch.nn.GRU(3, 4, 2).eval()
    x = torch.randn(6, 1, 3)
    torch.save(m.state_dict(), os.path.join(d, "model.pt"), _use_new_zipfile_serialization=False)
    write_case(d, x.numpy(), run(m, x), note="_use_new_zipfile_serialization=False", **versions)

    # A ReLU RNN whose tensors are strided views: weight_hh_l0 is a transposed
    # view, bias_ih_l0 a slice at an offset of a larger storage.
    d = case_dir(kind, "rnn_relu_strided")
    m = torch.nn.RNN(3, 4, 1, nonlinearity="relu").eval()
    x = torch.randn(5, 2, 3)
    sd = m.state_dict()
    sd["weight_hh_l0"] = sd["weight_hh_l0"].t().contiguous().t()
    big = torch.cat([torch.randn(3), sd["bias_ih_l0"], torch.randn(2)])
    sd["bias_ih_l0"] = big[3:7]
    assert not sd["weight_hh_l0"].is_contiguous() and sd["bias_ih_l0"].storage_offset() == 3
    torch.save(sd, os.path.join(d, "model.pt"))
    write_case(d, x.numpy(), run(m, x), args=["--cell", "rnn_relu"],
               note="transposed and offset views; nn.RNN relu needs --cell", **versions)

    # Weights stored as f16, bf16 and f64 tensors. The expected output is the
    # f32 model run with the rounded weights.
    d = case_dir(kind, "lstm_mixed_dtypes")
    m = torch.nn.LSTM(3, 4, 1).eval()
    sd = m.state_dict()
    stored = collections.OrderedDict(
        weight_ih_l0=sd["weight_ih_l0"].half(),
        weight_hh_l0=sd["weight_hh_l0"].bfloat16(),
        bias_ih_l0=sd["bias_ih_l0"].double(),
        bias_hh_l0=sd["bias_hh_l0"],
    )
    m.load_state_dict({k: v.float() for k, v in stored.items()})
    x = torch.randn(4, 1, 3)
    torch.save(stored, os.path.join(d, "model.pt"))
    write_case(d, x.numpy(), run(m, x), note="HalfStorage, BFloat16Storage, DoubleStorage", **versions)

    # A tagger (embedding, LSTM under a module prefix, linear head) inside a
    # training checkpoint with an optimizer state.
    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 4)
            self.encoder = torch.nn.Module()
            self.encoder.rnn = torch.nn.LSTM(4, 5, 1)
            self.classifier = torch.nn.Linear(5, 3)

        def forward(self, ids):
            out, _ = self.encoder.rnn(self.embed(ids))
            return torch.softmax(self.classifier(out), dim=-1)

    d = case_dir(kind, "tagger_checkpoint")
    m = Tagger().eval()
    opt = torch.optim.Adam(m.parameters())
    ids = torch.randint(0, 10, (6, 2))
    m(ids).sum().backward()
    opt.step()
    opt.zero_grad()
    with torch.no_grad():
        y = m(ids).numpy()
    torch.save({"epoch": 3, "model": m.state_dict(), "optimizer": opt.state_dict()}, os.path.join(d, "model.pt"))
    write_case(d, ids.numpy().astype(np.int64), y, args=["--head-activation", "softmax"], tokens=True,
               note="checkpoint dict; embedding and head found by shape", **versions)

    # Files that must be refused: a pickled call to os.system, and a custom class.
    refused = os.path.join(ROOT, kind, "refused")
    os.makedirs(refused, exist_ok=True)

    torch.save({"weight_ih_l0": torch.zeros(4, 2), "x": Boom()}, os.path.join(refused, "os_system.pt"))

    torch.save({"weight_ih_l0": torch.zeros(4, 2), "config": Config()}, os.path.join(refused, "custom_class.pt"))


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["pytorch", "onnx", "keras"])
    args = parser.parse_args()
    makers = dict(pytorch=make_pytorch)
    for kind, make in makers.items():
        if args.only in (None, kind):
            make()
            print(f"{kind}: done", file=sys.stderr)


if __name__ == "__main__":
    main()
