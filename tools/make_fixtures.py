#!/usr/bin/env python3
"""Writes the PyTorch golden fixtures under tests/fixtures/pytorch/.

Each case is one torch.nn.LSTM / GRU / RNN with fixed random weights:
  weights.safetensors   the module's state_dict (safetensors.torch.save_file)
  input.npy             [T, B, input] float32, sequence-major
  h0.npy, c0.npy        initial states when the case gives them
  output.npy            PyTorch's `output`  [T, B, D*H_out]
  h_n.npy, c_n.npy      PyTorch's final states
  config.json           cell, sizes and options

Not run by CI (it needs torch). To regenerate:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r tools/requirements-fixtures.txt
    /tmp/venv/bin/python tools/make_fixtures.py
The outputs are deterministic for a given torch version (seeded), and the
Rust tests compare the reference engine against them within 1e-5.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "pytorch")

# name: (cell, input, hidden, layers, bidirectional, proj, steps, batch, initial state, bias)
CASES = {
    "lstm_1layer": ("lstm", 5, 7, 1, False, 0, 6, 1, False, True),
    "lstm_3layer": ("lstm", 4, 6, 3, False, 0, 5, 2, False, True),
    "lstm_bidirectional": ("lstm", 3, 5, 2, True, 0, 7, 3, False, True),
    "lstm_proj": ("lstm", 6, 8, 2, False, 4, 5, 2, False, True),
    "lstm_bidirectional_proj": ("lstm", 5, 9, 2, True, 3, 4, 2, True, True),
    "lstm_h0_c0": ("lstm", 4, 6, 2, False, 0, 5, 3, True, True),
    "lstm_seq1": ("lstm", 3, 5, 1, False, 0, 1, 1, False, True),
    "lstm_seq200": ("lstm", 3, 16, 1, False, 0, 200, 1, False, True),
    "lstm_batch5": ("lstm", 8, 12, 1, False, 0, 10, 5, True, True),
    "lstm_no_bias": ("lstm", 4, 5, 1, False, 0, 6, 2, False, False),
    "gru": ("gru", 4, 6, 2, False, 0, 9, 2, False, True),
    "gru_bidirectional_h0": ("gru", 3, 5, 2, True, 0, 6, 2, True, True),
    "rnn_tanh": ("rnn_tanh", 3, 5, 2, False, 0, 8, 1, False, True),
    "rnn_relu_bidirectional": ("rnn_relu", 4, 6, 1, True, 0, 7, 2, True, True),
}


def build(cell, inp, hidden, layers, bidi, proj, bias):
    if cell == "lstm":
        return torch.nn.LSTM(inp, hidden, layers, bidirectional=bidi, proj_size=proj, bias=bias)
    if cell == "gru":
        return torch.nn.GRU(inp, hidden, layers, bidirectional=bidi, bias=bias)
    nonlin = "tanh" if cell == "rnn_tanh" else "relu"
    return torch.nn.RNN(inp, hidden, layers, nonlinearity=nonlin, bidirectional=bidi, bias=bias)


def save(path, array):
    np.save(path, np.ascontiguousarray(array.detach().numpy().astype(np.float32)))


def main():
    torch.manual_seed(1234)
    for name, (cell, inp, hidden, layers, bidi, proj, steps, batch, init, bias) in CASES.items():
        out_dir = os.path.join(ROOT, name)
        os.makedirs(out_dir, exist_ok=True)
        model = build(cell, inp, hidden, layers, bidi, proj, bias).eval()
        dirs = 2 if bidi else 1
        h_out = proj if proj else hidden
        x = torch.randn(steps, batch, inp)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out_dir, "weights.safetensors"))
        save(os.path.join(out_dir, "input.npy"), x)
        with torch.no_grad():
            if init:
                h0 = torch.randn(layers * dirs, batch, h_out)
                save(os.path.join(out_dir, "h0.npy"), h0)
                if cell == "lstm":
                    c0 = torch.randn(layers * dirs, batch, hidden)
                    save(os.path.join(out_dir, "c0.npy"), c0)
                    out, (h_n, c_n) = model(x, (h0, c0))
                else:
                    out, h_n = model(x, h0)
            else:
                if cell == "lstm":
                    out, (h_n, c_n) = model(x)
                else:
                    out, h_n = model(x)
        save(os.path.join(out_dir, "output.npy"), out)
        save(os.path.join(out_dir, "h_n.npy"), h_n)
        if cell == "lstm":
            save(os.path.join(out_dir, "c_n.npy"), c_n)
        config = dict(cell=cell, input_size=inp, hidden_size=hidden, num_layers=layers, bidirectional=bidi,
                      proj_size=proj, steps=steps, batch=batch, initial_state=init, bias=bias,
                      torch_version=torch.__version__)
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=1, sort_keys=True)
        print(f"{name}: output {tuple(out.shape)}", file=sys.stderr)


if __name__ == "__main__":
    main()
