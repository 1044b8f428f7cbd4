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
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r tools/requirements-fixtures.txt
    /tmp/venv/bin/python tools/make_convert_fixtures.py
Seeded, so the files only change when a framework version changes them. The
Rust tests (crates/cli/tests/convert_*.rs) convert each model and compare with
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


# ---------------------------------------------------------------- ONNX


def make_onnx():
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper

    kind = "onnx"
    rng = np.random.default_rng(11)
    versions = dict(onnx=onnx.__version__, onnxruntime=ort.__version__)

    def ort_run(path, feeds):
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return sess.run(None, feeds)

    # Exported by torch.onnx.export (the TorchScript exporter, which emits
    # LSTM/GRU/RNN nodes chained with Transpose/Reshape/Squeeze).
    def export(name, module, x, note, args=()):
        d = case_dir(kind, name)
        path = os.path.join(d, "model.onnx")
        torch.onnx.export(module.eval(), (x,), path, dynamo=False, input_names=["x"], opset_version=17)
        y = ort_run(path, {"x": x.numpy()})[0]
        with torch.no_grad():
            y_torch = module(x)[0].numpy()
        assert np.abs(y - y_torch).max() < 1e-5, name
        write_case(d, x.numpy(), y, args=list(args), note=note, torch=torch.__version__, **versions)

    torch.manual_seed(3)
    export("torch_lstm_2layer_bidirectional", torch.nn.LSTM(3, 4, 2, bidirectional=True), torch.randn(5, 2, 3),
           "torch.onnx.export of nn.LSTM(3, 4, 2, bidirectional=True)")
    export("torch_gru_2layer", torch.nn.GRU(3, 5, 2), torch.randn(6, 2, 3),
           "torch.onnx.export of nn.GRU: linear_before_reset=1")
    export("torch_rnn_relu", torch.nn.RNN(4, 3, 1, nonlinearity="relu"), torch.randn(5, 1, 4),
           "torch.onnx.export of nn.RNN(relu): activations=[Relu]")

    # Hand-built single nodes exercising the ONNX-only options.
    def node_model(op, x_shape, inits, attrs, n_inputs, extra_inputs=()):
        inputs = ["X", "W", "R", "B", "", "", "", "P"][:n_inputs]
        node = helper.make_node(op, inputs, ["Y"], name=f"{op.lower()}_0", **attrs)
        graph = helper.make_graph(
            [node], "g",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)] + list(extra_inputs),
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_convert_fixtures")

    def rand(*shape, scale=0.6):
        return rng.uniform(-scale, scale, shape).astype(np.float32)

    def hand(name, op, T, B, I, H, attrs, peepholes=False, layout=0, note="", save=None):
        D = 2 if attrs.get("direction") == "bidirectional" else 1
        G = dict(LSTM=4, GRU=3, RNN=1)[op]
        inits = dict(W=rand(D, G * H, I), R=rand(D, G * H, H), B=rand(D, 2 * G * H))
        n_inputs = 4
        if peepholes:
            inits["P"] = rand(D, 3 * H)
            n_inputs = 8
        x = rng.standard_normal((T, B, I)).astype(np.float32) * 1.5
        x_onnx = x.transpose(1, 0, 2).copy() if layout else x
        model = node_model(op, list(x_onnx.shape), inits, attrs, n_inputs)
        d = case_dir(kind, name)
        path = os.path.join(d, "model.onnx")
        if save:
            save(model, path)
        else:
            onnx.save(model, path)
        if layout:
            # ONNX Runtime refuses layout=1: use ONNX's reference evaluator, and
            # check it against ONNX Runtime on the same node with layout=0.
            from onnx.reference import ReferenceEvaluator
            y = ReferenceEvaluator(path).run(None, {"X": x_onnx})[0]
            twin = node_model(op, list(x.shape), inits, dict(attrs, layout=0), n_inputs)
            y0 = ort.InferenceSession(twin.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
            assert np.abs(y.transpose(1, 2, 0, 3) - y0).max() < 1e-5, name
        else:
            y = ort_run(path, {"X": x_onnx})[0]
        # Y is [T, D, B, H] (layout 0) or [B, T, D, H] (layout 1): lstmrt gives [T, B, D*H].
        y = (y.transpose(1, 0, 2, 3) if layout else y.transpose(0, 2, 1, 3)).reshape(T, B, D * H)
        write_case(d, x, y, note=note, **versions)

    hand("lstm_peepholes_clip", "LSTM", 6, 2, 3, 4, dict(hidden_size=4, clip=0.7), peepholes=True,
         note="peepholes P and clip=0.7 (active: inputs scaled so pre-activations exceed it)")
    hand("lstm_input_forget_bidirectional", "LSTM", 5, 2, 3, 3,
         dict(hidden_size=3, input_forget=1, direction="bidirectional"), peepholes=True,
         note="input_forget=1, bidirectional, peepholes")
    hand("gru_linear_before_reset_0_clip", "GRU", 6, 2, 3, 4, dict(hidden_size=4, clip=0.8),
         note="GRU with ONNX's default linear_before_reset=0 and clip")
    hand("gru_linear_before_reset_1", "GRU", 5, 1, 2, 3, dict(hidden_size=3, linear_before_reset=1),
         note="GRU linear_before_reset=1 (PyTorch's form)")
    hand("rnn_tanh_bidirectional_layout1", "RNN", 4, 3, 2, 3, dict(hidden_size=3, direction="bidirectional", layout=1),
         layout=1, note="layout=1 (batch-major X and Y), bidirectional tanh RNN; expected output from "
         "onnx.reference (ONNX Runtime refuses layout=1), checked against ONNX Runtime with layout=0")

    def external(model, path):
        onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location="weights.bin", size_threshold=0)

    hand("lstm_external_data", "LSTM", 4, 1, 3, 3, dict(hidden_size=3), save=external,
         note="initializers in an external data file (weights.bin)")

    # Refused models.
    refused = os.path.join(ROOT, kind, "refused")
    os.makedirs(refused, exist_ok=True)
    W, R = rand(1, 12, 2), rand(1, 12, 3)
    onnx.save(node_model("LSTM", [3, 1, 2], dict(W=W, R=R),
                         dict(hidden_size=3, activations=["HardSigmoid", "Tanh", "Tanh"]), 3),
              os.path.join(refused, "hardsigmoid.onnx"))
    h0 = numpy_helper.from_array(np.ones((1, 1, 3), np.float32), "h0")
    node = helper.make_node("LSTM", ["X", "W", "R", "", "", "h0"], ["Y"], name="lstm_h0", hidden_size=3)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 1, 2])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"), h0])
    # Refused until format 1.2 stored initial states; now it converts (convert_onnx.rs).
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              os.path.join(ROOT, kind, "nonzero_initial_h.onnx"))
    m = node_model("LSTM", [3, 1, 2], dict(W=W, R=R), dict(hidden_size=3), 3)
    for init in m.graph.initializer:
        if init.name == "W":
            raw = init.raw_data
            init.ClearField("raw_data")
            init.data_location = TensorProto.EXTERNAL
            for k, v in (("location", "../escape.bin"), ("offset", "0"), ("length", str(len(raw)))):
                e = init.external_data.add()
                e.key, e.value = k, v
    onnx.save(m, os.path.join(refused, "external_escape.onnx"))
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"], name="mm")], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 2])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(rand(2, 2), "W")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              os.path.join(refused, "not_recurrent.onnx"))

    # direction=reverse (after everything else, so the earlier cases keep their random draws).
    hand("lstm_reverse_peepholes", "LSTM", 7, 2, 3, 4, dict(hidden_size=4, direction="reverse"), peepholes=True,
         note="direction=reverse with peepholes: reads the sequence from its last step")
    hand("gru_reverse_clip", "GRU", 6, 1, 3, 3, dict(hidden_size=3, direction="reverse", clip=0.9),
         note="GRU direction=reverse, linear_before_reset=0, clip")


# ---------------------------------------------------------------- Keras


def make_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from keras import layers

    sys.path.insert(0, HERE)
    import export_keras

    kind = "keras"
    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    versions = dict(keras=keras.__version__)

    def save(name, model, x, note, tokens=False, args=(), directory=None):
        d = directory or case_dir(kind, name)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, name + ".keras")
            model.save(path)
            reloaded = keras.models.load_model(path, compile=False)
            np.savez_compressed(os.path.join(d, "model.npz" if directory is None else name + ".npz"),
                                **export_keras.export(reloaded, path))
        if directory is not None:
            return
        # Keras is batch-major: feed [B, T, ...], store [T, B, ...] as lstmrt takes it.
        y = reloaded.predict(x, verbose=0)
        x_t = x.transpose(1, 0) if tokens else x.transpose(1, 0, 2)
        write_case(d, x_t, y.transpose(1, 0, 2), note=note, tokens=tokens, args=list(args), **versions)

    def seq_input(b, t, i):
        return rng.standard_normal((b, t, i)).astype(np.float32)

    m = keras.Sequential([keras.Input((None, 3)), layers.LSTM(4, return_sequences=True),
                          layers.Dropout(0.5), layers.LSTM(4, return_sequences=True)])
    save("lstm_2layer", m, seq_input(2, 5, 3), "two LSTM layers with Dropout between (a no-op at inference)")

    m = keras.Sequential([keras.Input((None, 3)), layers.Bidirectional(layers.LSTM(3, return_sequences=True))])
    save("lstm_bidirectional", m, seq_input(2, 6, 3), "Bidirectional(LSTM), merge_mode=concat")

    m = keras.Sequential([keras.Input((None, 3)), layers.GRU(4, return_sequences=True)])
    save("gru_reset_after", m, seq_input(2, 5, 3), "GRU reset_after=True (two biases): PyTorch's form")

    m = keras.Sequential([keras.Input((None, 2)), layers.GRU(3, return_sequences=True, reset_after=False),
                          layers.GRU(3, return_sequences=True, reset_after=False)])
    save("gru_reset_before_2layer", m, seq_input(1, 6, 2), "GRU reset_after=False: linear_before_reset=false")

    m = keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(10, 4),
                          layers.SimpleRNN(5, activation="relu", return_sequences=True),
                          layers.Dense(3, activation="softmax")])
    ids = rng.integers(0, 10, (2, 6)).astype(np.int64)
    save("simplernn_relu_tagger", m, ids, "Embedding, SimpleRNN(relu), Dense(softmax) head", tokens=True)

    refused = os.path.join(ROOT, kind, "refused")
    os.makedirs(refused, exist_ok=True)
    m = keras.Sequential([keras.Input((None, 3)),
                          layers.LSTM(2, return_sequences=True, recurrent_activation="hard_sigmoid")])
    save("hard_sigmoid", m, None, "", directory=refused)
    m = keras.Sequential([keras.Input((None, 3)), layers.LSTM(2, return_sequences=True, go_backwards=True)])
    save("go_backwards", m, None, "", directory=refused)


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["pytorch", "onnx", "keras"])
    args = parser.parse_args()
    makers = dict(pytorch=make_pytorch, onnx=make_onnx, keras=make_keras)
    for kind, make in makers.items():
        if args.only in (None, kind):
            make()
            print(f"{kind}: done", file=sys.stderr)


if __name__ == "__main__":
    main()
