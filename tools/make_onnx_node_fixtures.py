#!/usr/bin/env python3
"""Writes ONNX's own backend node tests for LSTM, GRU and RNN as lstm-convert
fixtures, under tests/fixtures/convert/onnx_node/.

The cases come from the `onnx` package (`onnx.backend.test.case.node`: the
18 `test_lstm_*`, `test_gru_*`, `test_rnn_*` and `test_simple_rnn_*` cases).
In those models every operand is a graph input; here each one but `X` (and
`sequence_lens`, which stays an input fed at run time) becomes an
initializer, so the file is a model lstm-convert can convert. Each folder:
  model.onnx      the case's node with its weights as initializers
  input.npy       X as [T, B, input] (transposed from [B, T, input] for layout=1)
  lengths.npy     sequence_lens, int64 [B] (only where the case has it)
  y.npy           Y as lstmrt gives it, [T, B, D*H] (where the case outputs Y)
  y_h.npy         Y_h as [D, B, H]; y_c.npy likewise (where the case outputs them)
  case.json       the case's name, attributes and what the outputs were checked against

The expected outputs are the test case's own (ONNX's numpy implementation),
checked here against ONNX Runtime on the converted model (ONNX Runtime
refuses layout=1: those are checked against onnx.reference instead).

Also writes tests/fixtures/convert/onnx_lengths/ (see `own_cases`): ONNX
Runtime on nodes whose sequence_lens are shorter than the input;
tests/fixtures/convert/onnx_initial/ (see `own_initial_state_cases`): constant
initial_h/initial_c, stored in the converted file; and the refused
constant_sequence_lens.onnx and per_row_initial_h.onnx.

Not run by CI (it needs onnx and onnxruntime). To regenerate:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r tools/requirements-fixtures.txt
    /tmp/venv/bin/python tools/make_onnx_node_fixtures.py
"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "convert", "onnx_node")
PREFIXES = ("test_lstm", "test_gru", "test_rnn", "test_simple_rnn")


def cases():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case import node
        return [c for c in node.collect_testcases(None) if c.name.startswith(PREFIXES)]


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    found = cases()
    assert len(found) == 18, [c.name for c in found]
    for case in found:
        graph = case.model.graph
        node = graph.node[0]
        inputs, outputs = case.data_sets[0]
        feeds = {i.name: v for i, v in zip(graph.input, inputs)}
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
        layout = attrs.get("layout", 0)
        kept = [i for i in graph.input if i.name in ("X", "sequence_lens")]
        baked = [numpy_helper.from_array(feeds[i.name], i.name) for i in graph.input if i not in kept]
        new_graph = helper.make_graph(list(graph.node), graph.name, kept, list(graph.output), baked)
        model = helper.make_model(new_graph, opset_imports=list(case.model.opset_import), producer_name="onnx node test")
        model.ir_version = case.model.ir_version
        onnx.checker.check_model(model)
        d = os.path.join(ROOT, case.name)
        os.makedirs(d)
        onnx.save(model, os.path.join(d, "model.onnx"))
        run_feeds = {i.name: feeds[i.name] for i in kept}
        if layout == 1:
            got = ReferenceEvaluator(model).run(None, run_feeds)
            checked = "onnx.reference (ONNX Runtime refuses layout=1)"
        else:
            sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            got = sess.run(None, run_feeds)
            checked = f"onnxruntime {ort.__version__}"
        names = [o for o in node.output if o]
        for want, have in zip(outputs, got):
            assert np.abs(want - have).max() < 1e-5, case.name
        x = feeds["X"]
        np.save(os.path.join(d, "input.npy"), (x.transpose(1, 0, 2) if layout else x).astype(np.float32))
        if "sequence_lens" in feeds:
            np.save(os.path.join(d, "lengths.npy"), feeds["sequence_lens"].astype(np.int64))
        for name, value in zip(names, outputs):
            if name == "Y":
                # [T, D, B, H] (layout 0) or [B, T, D, H] (layout 1) -> [T, B, D*H]
                y = value.transpose(1, 0, 2, 3) if layout else value.transpose(0, 2, 1, 3)
                np.save(os.path.join(d, "y.npy"), y.reshape(y.shape[0], y.shape[1], -1).astype(np.float32))
            else:
                # [D, B, H] (layout 0) or [B, D, H] (layout 1) -> [D, B, H]
                s = value.transpose(1, 0, 2) if layout else value
                np.save(os.path.join(d, f"{name.lower()}.npy"), s.astype(np.float32))
        meta = dict(name=case.name, op=node.op_type, attributes=attrs, outputs=names, checked_against=checked,
                    onnx=onnx.__version__)
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        print(f"{case.name}: {node.op_type} {attrs} outputs {names}", file=sys.stderr)


def own_cases():
    """Cases of our own under tests/fixtures/convert/onnx_lengths/: sequence_lens
    shorter than the input (the node tests only use full lengths), with
    initial states and peepholes, checked against ONNX Runtime."""
    from onnx import TensorProto
    root = os.path.join(os.path.dirname(ROOT), "onnx_lengths")
    if os.path.isdir(root):
        shutil.rmtree(root)
    rng = np.random.default_rng(5)
    rand = lambda *shape: rng.uniform(-0.7, 0.7, shape).astype(np.float32)
    for name, op, direction, lengths, T, I, H in [
        ("lstm_bidirectional_peepholes", "LSTM", "bidirectional", [6, 2, 1, 4], 7, 3, 4),
        ("gru_forward", "GRU", "forward", [3, 5, 1], 5, 2, 3),
        ("rnn_reverse", "RNN", "reverse", [2, 4, 4, 1, 3], 4, 3, 5),
    ]:
        D = 2 if direction == "bidirectional" else 1
        G = dict(LSTM=4, GRU=3, RNN=1)[op]
        B = len(lengths)
        inits = dict(W=rand(D, G * H, I), R=rand(D, G * H, H), B=rand(D, 2 * G * H))
        inputs = ["X", "W", "R", "B", "sequence_lens"]
        if op == "LSTM":
            inits["P"] = rand(D, 3 * H)
            inputs += ["", "", "P"]
        node = helper.make_node(op, inputs, ["Y", "Y_h"], name=f"{op.lower()}_0", hidden_size=H, direction=direction)
        graph = helper.make_graph(
            [node], "g",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I]),
             helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [B])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
             helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(v, k) for k, v in inits.items()],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="lstmrt fixtures")
        x = rng.standard_normal((T, B, I)).astype(np.float32)
        lens = np.array(lengths, np.int32)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        y, y_h = sess.run(None, {"X": x, "sequence_lens": lens})
        d = os.path.join(root, name)
        os.makedirs(d)
        onnx.save(model, os.path.join(d, "model.onnx"))
        np.save(os.path.join(d, "input.npy"), x)
        np.save(os.path.join(d, "lengths.npy"), lens.astype(np.int64))
        np.save(os.path.join(d, "y.npy"), y.transpose(0, 2, 1, 3).reshape(T, B, D * H))
        np.save(os.path.join(d, "y_h.npy"), y_h)
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump(dict(name=name, op=op, direction=direction, lengths=lengths,
                           checked_against=f"onnxruntime {ort.__version__}"), f, indent=1, sort_keys=True)
        print(f"{name}: {op} {direction} lengths {lengths}", file=sys.stderr)
    # sequence_lens as an initializer giving every sequence the input's whole
    # (static) length, as an exporter may bake it: converts, changing nothing.
    T, B, I, H = 4, 3, 2, 3
    inits = dict(W=rand(1, 4 * H, I), R=rand(1, 4 * H, H), B=rand(1, 8 * H))
    node = helper.make_node("LSTM", ["X", "W", "R", "B", "lens"], ["Y", "Y_h"], name="lstm_lens", hidden_size=H)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()] + [numpy_helper.from_array(np.full(B, T, np.int32), "lens")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="lstmrt fixtures")
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    y, y_h = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x})
    d = os.path.join(root, "lstm_constant_full_lengths")
    os.makedirs(d)
    onnx.save(model, os.path.join(d, "model.onnx"))
    np.save(os.path.join(d, "input.npy"), x)
    np.save(os.path.join(d, "y.npy"), y.transpose(0, 2, 1, 3).reshape(T, B, H))
    np.save(os.path.join(d, "y_h.npy"), y_h)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(dict(name="lstm_constant_full_lengths", op="LSTM", lengths=[T] * B, constant=True,
                       checked_against=f"onnxruntime {ort.__version__}"), f, indent=1, sort_keys=True)


def own_initial_state_cases():
    """Constant initial states, stored in the converted file: under
    tests/fixtures/convert/onnx_initial/, checked against ONNX Runtime; and
    tests/fixtures/convert/onnx/refused/per_row_initial_h.onnx, whose batch
    rows differ (the format stores one initial state per layer and direction)."""
    from onnx import TensorProto
    root = os.path.join(os.path.dirname(ROOT), "onnx_initial")
    if os.path.isdir(root):
        shutil.rmtree(root)
    rng = np.random.default_rng(8)
    rand = lambda *shape: rng.uniform(-0.7, 0.7, shape).astype(np.float32)
    for name, op, direction, T, B, I, H, expand in [
        ("lstm_bidirectional_initial_h_c", "LSTM", "bidirectional", 5, 3, 2, 4, False),
        ("gru_initial_h_expanded", "GRU", "forward", 6, 2, 3, 5, True),
        ("rnn_reverse_initial_h", "RNN", "reverse", 4, 2, 3, 3, False),
    ]:
        D = 2 if direction == "bidirectional" else 1
        G = dict(LSTM=4, GRU=3, RNN=1)[op]
        inits = dict(W=rand(D, G * H, I), R=rand(D, G * H, H), B=rand(D, 2 * G * H))
        nodes = []
        h_row = rand(D, 1, H)
        if expand:
            # initial_h = Expand(h_row [D, 1, H], shape [D, B, H]), as exporters write it.
            inits["h_row"] = h_row
            nodes.append(helper.make_node("Expand", ["h_row", "h_shape"], ["h0"], name="expand_h0"))
        else:
            inits["h0"] = np.tile(h_row, (1, B, 1))
        inputs = ["X", "W", "R", "B", "", "h0"]
        if op == "LSTM":
            inits["c0"] = np.tile(rand(D, 1, H), (1, B, 1))
            inputs.append("c0")
        node = helper.make_node(op, inputs, ["Y", "Y_h"], name=f"{op.lower()}_0", hidden_size=H, direction=direction)
        initializers = [numpy_helper.from_array(v, k) for k, v in inits.items()]
        if expand:
            initializers.append(numpy_helper.from_array(np.array([D, B, H], np.int64), "h_shape"))
        graph = helper.make_graph(
            nodes + [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
             helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, None)],
            initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="lstmrt fixtures")
        x = rng.standard_normal((T, B, I)).astype(np.float32)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        y, y_h = sess.run(None, {"X": x})
        d = os.path.join(root, name)
        os.makedirs(d)
        onnx.save(model, os.path.join(d, "model.onnx"))
        np.save(os.path.join(d, "input.npy"), x)
        np.save(os.path.join(d, "y.npy"), y.transpose(0, 2, 1, 3).reshape(T, B, D * H))
        np.save(os.path.join(d, "y_h.npy"), y_h)
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump(dict(name=name, op=op, direction=direction, expand=expand,
                           checked_against=f"onnxruntime {ort.__version__}"), f, indent=1, sort_keys=True)
        print(f"{name}: {op} {direction} constant initial state", file=sys.stderr)
    W, R = rand(1, 12, 2), rand(1, 12, 3)
    h0 = np.stack([np.stack([np.full(3, 0.5), np.full(3, -0.5)])]).astype(np.float32)  # [1, 2, 3], rows differ
    node = helper.make_node("LSTM", ["X", "W", "R", "", "", "h0"], ["Y"], name="lstm_rows", hidden_size=3)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 2, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"), numpy_helper.from_array(h0, "h0")],
    )
    path = os.path.join(os.path.dirname(ROOT), "onnx", "refused", "per_row_initial_h.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def refused_constant_lengths():
    """A node whose sequence_lens is an initializer, which lstm-convert refuses
    (tests/fixtures/convert/onnx/refused/constant_sequence_lens.onnx)."""
    from onnx import TensorProto
    rng = np.random.default_rng(6)
    W, R = rng.uniform(-0.5, 0.5, (1, 12, 2)).astype(np.float32), rng.uniform(-0.5, 0.5, (1, 12, 3)).astype(np.float32)
    node = helper.make_node("LSTM", ["X", "W", "R", "", "lens"], ["Y"], name="lstm_lens", hidden_size=3)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 2, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"),
         numpy_helper.from_array(np.array([3, 1], np.int32), "lens")],
    )
    path = os.path.join(os.path.dirname(ROOT), "onnx", "refused", "constant_sequence_lens.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


if __name__ == "__main__":
    main()
    own_cases()
    refused_constant_lengths()
    own_initial_state_cases()
