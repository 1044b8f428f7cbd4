#!/usr/bin/env python3
"""Exports a Keras model's layers to an .npz that `lstm-convert` reads.

    python tools/export_keras.py MODEL.keras -o MODEL.npz      (or a .h5 / SavedModel Keras can load)
    lstm-convert MODEL.npz -o MODEL.lstm

Needs keras (3.x, with any backend, or tf.keras 2.x) and numpy. lstm-convert
itself reads no HDF5: there is no well-kept pure-Rust HDF5 reader, and the
`.keras` format is a zip around an HDF5 file, so this script is the bridge.

The .npz holds:
  keras_config.npy    uint8 array: UTF-8 JSON {"format": "lstmrt-keras-export",
                      "version": 1, "keras_version", "source", "layers": [...]}
  l{i}_{weight}.npy   each layer's weights as Keras stores them (float32),
                      named in the layer's "weights" list

Each entry of "layers", in model order, is {"name", "class", "config", "weights"};
a Bidirectional layer has "merge_mode" and its weights are prefixed forward_ /
backward_. The script does no conversion (transposing kernels, reordering
gates, splitting GRU biases): lstm-convert does that in Rust, where it is tested,
and decides what it can convert. Layers of other classes are listed with their
class so lstm-convert can name them when it refuses.
"""
import argparse
import json
import os
import sys

import numpy as np

FORMAT = "lstmrt-keras-export"
RECURRENT = ("LSTM", "GRU", "SimpleRNN")
# Config keys lstm-convert looks at; everything else in a layer config (initializers,
# regularizers, dropout rates that do nothing at inference) is left out.
KEYS = ("units", "activation", "recurrent_activation", "use_bias", "return_sequences", "go_backwards",
        "reset_after", "input_dim", "output_dim", "mask_zero", "stateful", "time_major", "unroll",
        "implementation", "merge_mode", "rate")


def config_of(layer):
    cfg = layer.get_config()
    return {k: cfg[k] for k in KEYS if k in cfg}


def cell_weights(layer):
    """Kernel, recurrent kernel and bias (when present) of an RNN layer, by role."""
    names = ["kernel", "recurrent_kernel", "bias"]
    arrays = [np.asarray(w, dtype=np.float32) for w in layer.get_weights()]
    return dict(zip(names, arrays))


def export(model, source):
    arrays = {}
    layers = []
    for i, layer in enumerate(model.layers):
        cls = type(layer).__name__
        entry = dict(name=layer.name, **{"class": cls}, config=config_of(layer), weights=[])
        if cls == "InputLayer":
            continue
        if cls in RECURRENT:
            for role, w in cell_weights(layer).items():
                key = f"l{i}_{role}"
                arrays[key] = w
                entry["weights"].append(key)
        elif cls == "Bidirectional":
            entry["merge_mode"] = layer.merge_mode
            entry["inner_class"] = type(layer.forward_layer).__name__
            entry["config"] = config_of(layer.forward_layer)
            entry["backward_config"] = config_of(layer.backward_layer)
            for side, sub in (("forward", layer.forward_layer), ("backward", layer.backward_layer)):
                for role, w in cell_weights(sub).items():
                    key = f"l{i}_{side}_{role}"
                    arrays[key] = w
                    entry["weights"].append(key)
        elif cls in ("Embedding", "Dense"):
            roles = ["embeddings"] if cls == "Embedding" else ["kernel", "bias"]
            for role, w in zip(roles, layer.get_weights()):
                key = f"l{i}_{role}"
                arrays[key] = np.asarray(w, dtype=np.float32)
                entry["weights"].append(key)
        layers.append(entry)
    try:
        import keras
        version = keras.__version__
    except ImportError:  # tf.keras only
        import tensorflow as tf
        version = tf.keras.__version__
    config = dict(format=FORMAT, version=1, keras_version=version, source=os.path.basename(source), layers=layers)
    arrays["keras_config"] = np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)
    return arrays


def main():
    parser = argparse.ArgumentParser(description="Export a Keras model for lstm-convert.")
    parser.add_argument("model", help="a model Keras can load (.keras, .h5)")
    parser.add_argument("-o", "--output", required=True, help="the .npz to write")
    args = parser.parse_args()
    import keras
    model = keras.models.load_model(args.model, compile=False)
    np.savez_compressed(args.output, **export(model, args.model))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
