#!/usr/bin/env python3
"""Writes the PyTorch packed-sequence fixtures under tests/fixtures/pytorch_packed/.

Each case is one torch.nn.LSTM / GRU / RNN run on a padded batch whose rows
have their own lengths, the way PyTorch users batch sentences:
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, state = module(packed, h0)
    output, _ = pad_packed_sequence(out, total_length=T)
Files, as in tools/make_fixtures.py, plus:
  input.npy             [T, B, input], T two steps longer than the longest row
  lengths.npy           [B] int64, unsorted, including 1
  output.npy            the padded output (zeros past each row's length)
  h_n.npy, c_n.npy      each row's state after its own last step
PyTorch refuses a length of 0, so lengths of 0 are tested against the
reference engine instead (crates/lstmrt/tests/lengths.rs).

Not run by CI (it needs torch). To regenerate:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r tools/requirements-fixtures.txt
    /tmp/venv/bin/python tools/make_packed_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import build, save  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "pytorch_packed")

# name: (cell, input, hidden, layers, bidirectional, proj, lengths (T = max), initial state)
CASES = {
    "lstm_1layer": ("lstm", 5, 7, 1, False, 0, [4, 9, 1, 6], False),
    "lstm_3layer_h0": ("lstm", 4, 6, 3, False, 0, [3, 1, 8, 8, 5], True),
    "lstm_proj": ("lstm", 6, 8, 2, False, 4, [7, 2, 1], True),
    "lstm_bidirectional": ("lstm", 3, 5, 2, True, 0, [2, 11, 1, 7, 11, 4], True),
    "lstm_bidirectional_proj": ("lstm", 5, 9, 3, True, 3, [5, 1, 9], False),
    "gru": ("gru", 4, 6, 2, False, 0, [6, 1, 3, 10], True),
    "gru_bidirectional": ("gru", 3, 5, 1, True, 0, [1, 8, 4], True),
    "rnn_tanh": ("rnn_tanh", 3, 5, 2, False, 0, [8, 3, 1], False),
    "rnn_relu_bidirectional": ("rnn_relu", 4, 6, 3, True, 0, [5, 2, 7, 1], True),
}


def main():
    torch.manual_seed(4321)
    for name, (cell, inp, hidden, layers, bidi, proj, lengths, init) in CASES.items():
        out_dir = os.path.join(ROOT, name)
        os.makedirs(out_dir, exist_ok=True)
        model = build(cell, inp, hidden, layers, bidi, proj, True).eval()
        dirs = 2 if bidi else 1
        h_out = proj if proj else hidden
        # Two steps of padding past the longest row: they must be ignored.
        steps, batch = max(lengths) + 2, len(lengths)
        x = torch.randn(steps, batch, inp)
        lens = torch.tensor(lengths, dtype=torch.int64)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out_dir, "weights.safetensors"))
        save(os.path.join(out_dir, "input.npy"), x)
        np.save(os.path.join(out_dir, "lengths.npy"), lens.numpy())
        packed = pack_padded_sequence(x, lens, enforce_sorted=False)
        with torch.no_grad():
            state = None
            if init:
                h0 = torch.randn(layers * dirs, batch, h_out)
                save(os.path.join(out_dir, "h0.npy"), h0)
                state = h0
                if cell == "lstm":
                    c0 = torch.randn(layers * dirs, batch, hidden)
                    save(os.path.join(out_dir, "c0.npy"), c0)
                    state = (h0, c0)
            out, final = model(packed, state)
        out, _ = pad_packed_sequence(out, total_length=steps)
        h_n, c_n = final if cell == "lstm" else (final, None)
        save(os.path.join(out_dir, "output.npy"), out)
        save(os.path.join(out_dir, "h_n.npy"), h_n)
        if c_n is not None:
            save(os.path.join(out_dir, "c_n.npy"), c_n)
        config = dict(cell=cell, input_size=inp, hidden_size=hidden, num_layers=layers, bidirectional=bidi,
                      proj_size=proj, steps=steps, batch=batch, lengths=lengths, initial_state=init, bias=True,
                      torch_version=torch.__version__)
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=1, sort_keys=True)
        print(f"{name}: output {tuple(out.shape)}, lengths {lengths}", file=sys.stderr)


if __name__ == "__main__":
    main()
