#!/usr/bin/env python3
"""A reader for lstmrt model files, written from format-spec.md alone.

Uses only the standard library and numpy. It exists to prove that the spec is
enough to read a file without lstmrt's code; the Rust test suite runs it on the
fixtures and compares what it reads with what lstmrt reads.

    python3 tools/lstmfile.py MODEL.lstm [...]          summary of each file
    python3 tools/lstmfile.py --json MODEL.lstm [...]   metadata, and per tensor
                                                        name/dtype/shape/sum, as JSON
    python3 tools/lstmfile.py --verify MODEL.lstm       also check every tensor's CRC32C

In Python: `f = LstmFile.open(path); f.metadata["architecture"]; f.tensor("weight_ih_l0")`.
Exit status 2 with a message on stderr for a file that is not valid.
"""
import json
import struct
import sys

import numpy as np

MAGIC = b"\x89LSTMRT\n"
READER_MAJOR, READER_MINOR = 1, 3
SECTION_METADATA, SECTION_DIRECTORY, SECTION_DATA = 1, 2, 3
SECTION_STAGES = 4  # front-end and head of a chunked model (format 1.3)
FLAG_REQUIRED = 1
HEADER_REVERSE = 1  # required_flags bit 0: every layer reads the sequence from the end
HEADER_INT8 = 2  # required_flags bit 1: int8 weight matrices (format 1.1)
MAX_INT8_K = 65536  # inputs per int8 row: 255 * 128 * K stays below 2^31
HEADER_INITIAL_STATE = 4  # required_flags bit 2: stored initial states (format 1.2)
KNOWN_REQUIRED = HEADER_REVERSE | HEADER_INT8 | HEADER_INITIAL_STATE
CELLS = {0: "lstm", 1: "gru", 2: "rnn_tanh", 3: "rnn_relu"}
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
DTYPES = {0: ("f32", 4), 1: ("f16", 2), 2: ("bf16", 2), 3: ("int8", 1)}
LAYOUTS = {0: "canonical", 1: "panel16", 2: "panel16x4"}


class FormatError(Exception):
    pass


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class Decoder:
    """Reads the field encoding of format-spec.md section 4."""

    def __init__(self, data, what):
        self.data, self.pos, self.what = data, 0, what

    def take(self, n):
        if n > len(self.data) - self.pos:
            raise FormatError(f"{self.what}: needs {n} bytes at {self.pos}, only {len(self.data) - self.pos} left")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def f32(self):
        return struct.unpack("<f", self.take(4))[0]

    def bool(self):
        v = self.u8()
        if v > 1:
            raise FormatError(f"{self.what}: bool byte {v}")
        return v == 1

    def string(self):
        n = self.u64()
        return bytes(self.take(n)).decode("utf-8")

    def vec(self, item):
        n = self.u64()
        if n > len(self.data) - self.pos:  # every element takes at least one byte
            raise FormatError(f"{self.what}: count {n} exceeds the bytes left")
        return [item() for _ in range(n)]

    def option(self, item):
        tag = self.u8()
        if tag > 1:
            raise FormatError(f"{self.what}: option tag {tag}")
        return item() if tag == 1 else None


def _code(value, table, what):
    if value not in table:
        raise FormatError(f"unknown {what} code {value}")
    return table[value]


def decode_metadata(d):
    arch = {
        "cell": _code(d.u32(), CELLS, "cell kind"),
        "input_size": d.u32(),
        "hidden_size": d.u32(),
        "proj_size": d.u32(),
        "num_layers": d.u32(),
        "bidirectional": d.bool(),
        "peepholes": d.bool(),
        "clip": d.option(d.f32),
        "input_forget": d.bool(),
        "linear_before_reset": d.bool(),
    }
    embedding = d.option(lambda: {"num_embeddings": d.u32()})
    head = d.option(lambda: {
        "out_features": d.u32(),
        "activation": _code(d.u32(), {0: "none", 1: "softmax", 2: "sigmoid"}, "head activation"),
        "task": _code(d.u32(), {0: "other", 1: "classifier", 2: "language_model"}, "head task"),
        "labels": d.vec(d.string),
    })
    vocabulary = d.option(lambda: {
        "tokenizer": _code(d.u32(), {0: "char", 1: "word"}, "tokenizer"),
        "lowercase": d.bool(),
        "tokens": d.vec(d.string),
        "unknown": d.option(d.u32),
    })
    provenance = {
        "producer": d.string(),
        "source_file": d.string(),
        "entries": d.vec(lambda: [d.string(), d.string()]),
    }
    return {"architecture": arch, "embedding": embedding, "head": head, "vocabulary": vocabulary,
            "provenance": provenance}


STAGE_KINDS = {0: "conv1d", 1: "magnitude", 2: "activation", 3: "mean"}
STAGE_ACTIVATIONS = {0: "none", 1: "relu", 2: "sigmoid", 3: "tanh", 4: "softmax"}
PADDINGS = {0: "zeros", 1: "reflect"}


def decode_stages(d):
    def stage():
        return {
            "kind": _code(d.u32(), STAGE_KINDS, "stage kind"),
            "out_channels": d.u32(),
            "kernel": d.u32(),
            "stride": d.u32(),
            "dilation": d.u32(),
            "pad_left": d.u32(),
            "pad_right": d.u32(),
            "padding": _code(d.u32(), PADDINGS, "padding"),
            "activation": _code(d.u32(), STAGE_ACTIVATIONS, "stage activation"),
        }
    return {"chunk": d.u32(), "channels": d.u32(), "context": d.u32(), "sample_rate": d.u32(),
            "front": d.vec(stage), "back": d.vec(stage)}


def stage_shapes(stages, positions, channels, chain):
    """(positions, channels in, positions out, channels out) of each stage (spec 4.3)."""
    shapes = []
    for i, s in enumerate(stages):
        kind = s["kind"]
        if kind == "conv1d":
            if min(s["out_channels"], s["kernel"], s["stride"], s["dilation"]) < 1:
                raise FormatError(f"stages.{chain}[{i}]: a convolution's sizes must be positive")
            if s["padding"] == "reflect" and max(s["pad_left"], s["pad_right"]) >= positions:
                raise FormatError(f"stages.{chain}[{i}]: reflect padding needs more than {positions} positions")
            padded = positions + s["pad_left"] + s["pad_right"]
            span = (s["kernel"] - 1) * s["dilation"] + 1
            if span > padded:
                raise FormatError(f"stages.{chain}[{i}]: kernel wider than its padded input")
            out = ((padded - span) // s["stride"] + 1, s["out_channels"])
        elif kind == "magnitude":
            if channels % 2:
                raise FormatError(f"stages.{chain}[{i}]: magnitude of {channels} channels")
            out = (positions, channels // 2)
        elif kind == "activation":
            out = (positions, channels)
        else:  # mean
            out = (1, channels)
        shapes.append((positions, channels) + out)
        positions, channels = out
    return shapes, positions, channels


def decode_directory(d):
    return d.vec(lambda: {
        "name": d.string(),
        "dtype": d.u32(),
        "layout": d.u32(),
        "shape": d.vec(d.u64),
        "offset": d.u64(),
        "length": d.u64(),
        "crc32c": d.u32(),
    })


def expected_tensors(meta):
    """(name, canonical shape, required, packable) for every tensor the metadata calls
    for (spec section 5); packable is (gates, units per gate) for weight matrices."""
    a = meta["architecture"]
    g, h = GATES[a["cell"]], a["hidden_size"]
    p = a["proj_size"] or h
    dirs = 2 if a["bidirectional"] else 1
    out = []
    if meta["embedding"]:
        out.append(("embedding.weight", [meta["embedding"]["num_embeddings"], a["input_size"]], True, None))
    for layer in range(a["num_layers"]):
        inp = a["input_size"] if layer == 0 else dirs * p
        for d in range(dirs):
            s = "_reverse" if d else ""
            out.append((f"weight_ih_l{layer}{s}", [g * h, inp], True, (g, h)))
            out.append((f"weight_hh_l{layer}{s}", [g * h, p], True, (g, h)))
            out.append((f"bias_ih_l{layer}{s}", [g * h], False, None))
            out.append((f"bias_hh_l{layer}{s}", [g * h], False, None))
            if a["proj_size"]:
                out.append((f"weight_hr_l{layer}{s}", [p, h], True, (1, p)))
            if a["peepholes"]:
                out.append((f"weight_peephole_l{layer}{s}", [3, h], True, None))
    if meta["head"]:
        out.append(("head.weight", [meta["head"]["out_features"], dirs * p], True, None))
        out.append(("head.bias", [meta["head"]["out_features"]], False, None))
    st = meta.get("stages")
    if st:
        front, steps, features = stage_shapes(st["front"], st["context"] + st["chunk"], st["channels"], "front")
        if features != a["input_size"]:
            raise FormatError(f"the front-end gives {features} features per step, the stack takes {a['input_size']}")
        back, _, _ = stage_shapes(st["back"], steps, dirs * p, "back")
        for chain, stages, shapes in (("front", st["front"], front), ("back", st["back"], back)):
            for i, (s, shape) in enumerate(zip(stages, shapes)):
                if s["kind"] == "conv1d":
                    o, k = s["out_channels"], s["kernel"] * shape[1]
                    out.append((f"{chain}.{i}.weight", [o, k], True, (1, o)))
                    out.append((f"{chain}.{i}.bias", [o], False, None))
    return out


def initial_state_tensors(meta):
    """(name, shape) of the optional initial-state tensors (spec section 5.3):
    initial_h [P] and, for LSTM, initial_c [hidden], per layer and direction."""
    a = meta["architecture"]
    h = a["hidden_size"]
    p = a["proj_size"] or h
    out = []
    for layer in range(a["num_layers"]):
        for d in range(2 if a["bidirectional"] else 1):
            s = "_reverse" if d else ""
            out.append((f"initial_h_l{layer}{s}", [p]))
            if a["cell"] == "lstm":
                out.append((f"initial_c_l{layer}{s}", [h]))
    return out


class LstmFile:
    def __init__(self, data):
        self.data = memoryview(data)
        self._parse()

    @classmethod
    def open(cls, path):
        with open(path, "rb") as f:
            return cls(f.read())

    def _parse(self):
        b = self.data
        n = len(b)
        if n < 64:
            raise FormatError(f"file is {n} bytes, shorter than the 64-byte header")
        if bytes(b[0:8]) != MAGIC:
            raise FormatError("not an lstmrt model file (bad magic)")
        major, minor, header_size = struct.unpack_from("<HHI", b, 8)
        if major != READER_MAJOR:
            raise FormatError(f"format version {major}.{minor} not supported (reader {READER_MAJOR}.{READER_MINOR})")
        self.version = (major, minor)
        newer = minor > READER_MINOR
        if header_size != 64:
            raise FormatError(f"header size {header_size}")
        required_flags, _optional, file_length, table_offset = struct.unpack_from("<QQQQ", b, 16)
        count, entry_size, _reserved, header_crc = struct.unpack_from("<IIII", b, 48)
        if required_flags & ~KNOWN_REQUIRED:
            raise FormatError(f"unknown required flags {required_flags & ~KNOWN_REQUIRED:#x}")
        if file_length != n:
            raise FormatError(f"header declares {file_length} bytes, file has {n}")
        if table_offset < 64 or table_offset % 8 or entry_size < 32 or entry_size > 1024 or entry_size % 8 or count > 64:
            raise FormatError("bad section table")
        table_end = table_offset + count * entry_size
        if table_end > n:
            raise FormatError("section table runs past the end of the file")
        if crc32c(b[table_offset:table_end], crc32c(b[0:60])) != header_crc:
            raise FormatError("header checksum mismatch")
        sections = {}
        ranges = [(0, 64), (table_offset, table_end)] if count else [(0, 64)]
        for i in range(count):
            kind, flags, offset, length, crc = struct.unpack_from("<IIQQI", b, table_offset + i * entry_size)
            if length and (offset < 64 or offset + length > n):
                raise FormatError(f"section {kind} lies outside the file")
            if length:
                ranges.append((offset, offset + length))
            if kind in (SECTION_METADATA, SECTION_DIRECTORY, SECTION_DATA, SECTION_STAGES):
                if kind in sections:
                    raise FormatError(f"section {kind} appears twice")
                sections[kind] = (offset, length, crc)
            elif flags & FLAG_REQUIRED:
                raise FormatError(f"unknown required section kind {kind}")
        ranges.sort()
        for (s0, e0), (s1, e1) in zip(ranges, ranges[1:]):
            if s1 < e0:
                raise FormatError("sections overlap")
        for kind in (SECTION_METADATA, SECTION_DIRECTORY, SECTION_DATA):
            if kind not in sections:
                raise FormatError(f"section {kind} missing")

        def body(kind):
            offset, length, crc = sections[kind]
            data = b[offset:offset + length]
            if crc32c(data) != crc:
                raise FormatError(f"section {kind} checksum mismatch")
            return data

        d = Decoder(body(SECTION_METADATA), "metadata")
        self.metadata = decode_metadata(d)
        self.metadata["architecture"]["reverse"] = bool(required_flags & HEADER_REVERSE)
        if self.metadata["architecture"]["reverse"] and self.metadata["architecture"]["bidirectional"]:
            raise FormatError("the REVERSE flag is set on a bidirectional stack")
        if d.pos != len(d.data) and not newer:
            raise FormatError("trailing bytes in the metadata section")
        self.metadata["stages"] = None
        if SECTION_STAGES in sections:
            d = Decoder(body(SECTION_STAGES), "stages")
            self.metadata["stages"] = decode_stages(d)
            if d.pos != len(d.data) and not newer:
                raise FormatError("trailing bytes in the stages section")
        d = Decoder(body(SECTION_DIRECTORY), "tensor directory")
        directory = decode_directory(d)
        if d.pos != len(d.data) and not newer:
            raise FormatError("trailing bytes in the tensor directory section")
        data_offset, data_length, _ = sections[SECTION_DATA]
        if data_offset % 64:
            raise FormatError("tensor data section is not 64-byte aligned")
        self.tensors = {}
        spans = []
        for e in directory:
            name = e["name"]
            if name in self.tensors:
                raise FormatError(f"duplicate tensor {name}")
            if e["dtype"] not in DTYPES:
                raise FormatError(f"tensor {name}: unknown dtype code {e['dtype']}")
            if e["layout"] not in LAYOUTS:
                raise FormatError(f"tensor {name}: unknown layout code {e['layout']}")
            if len(e["shape"]) > 8:
                raise FormatError(f"tensor {name}: rank above 8")
            dtype, size = DTYPES[e["dtype"]]
            need = size
            for dim in e["shape"]:
                need *= dim
            if need >= 2 ** 64 or need != e["length"]:
                raise FormatError(f"tensor {name}: length {e['length']} does not match shape and dtype")
            if e["offset"] % 64:
                raise FormatError(f"tensor {name}: misaligned")
            if e["offset"] < data_offset or e["offset"] + e["length"] > data_offset + data_length:
                raise FormatError(f"tensor {name}: outside the tensor data section")
            if e["length"]:
                spans.append((e["offset"], e["offset"] + e["length"], name))
            e["dtype_name"] = dtype
            e["layout_name"] = LAYOUTS[e["layout"]]
            self.tensors[name] = e
        spans.sort()
        for (s0, e0, n0), (s1, e1, n1) in zip(spans, spans[1:]):
            if s1 < e0:
                raise FormatError(f"tensors {n0} and {n1} overlap")
        expected = expected_tensors(self.metadata)
        self.packable = {}
        scales = []
        for name, shape, required, packable in expected:
            if name not in self.tensors:
                if required:
                    raise FormatError(f"tensor {name} missing")
                continue
            e = self.tensors[name]
            int8 = e["dtype_name"] == "int8"
            if int8 != (e["layout_name"] == "panel16x4"):
                raise FormatError(f"tensor {name}: int8 is stored in panel16x4, and panel16x4 holds only int8")
            if e["layout_name"] in ("panel16", "panel16x4"):
                if packable is None:
                    raise FormatError(f"tensor {name}: only weight matrices may be {e['layout_name']}")
                gates, n = packable
                k = shape[1]
                if int8:
                    if k > MAX_INT8_K:
                        raise FormatError(f"tensor {name}: int8 with {k} inputs, more than {MAX_INT8_K}")
                    shape = [(n + 15) // 16, (k + 3) // 4, gates, 16, 4]
                    scales.append((f"{name}.scale", [gates * n]))
                else:
                    shape = [(n + 15) // 16, k, gates, 16]
                self.packable[name] = (packable, k)
            if e["shape"] != shape:
                raise FormatError(f"tensor {name} has shape {e['shape']}, expected {shape}")
        for name, shape in scales:
            e = self.tensors.get(name)
            if e is None:
                raise FormatError(f"tensor {name} missing")
            if e["dtype_name"] != "f32" or e["layout_name"] != "canonical" or e["shape"] != shape:
                raise FormatError(f"tensor {name}: int8 scales are f32, canonical, shape {shape}")
            expected.append((name, shape, True, None))
        initial = initial_state_tensors(self.metadata)
        if any(n in self.tensors for n, _ in initial) != bool(required_flags & HEADER_INITIAL_STATE):
            raise FormatError("initial-state tensors and the INITIAL_STATE required flag go together")
        for name, shape in initial:
            e = self.tensors.get(name)
            if e is not None and (e["dtype_name"] != "f32" or e["layout_name"] != "canonical" or e["shape"] != shape):
                raise FormatError(f"tensor {name}: initial states are f32, canonical, shape {shape}")
            expected.append((name, shape, False, None))
        known = {name for name, _, _, _ in expected}
        for name in self.tensors:
            if name not in known and not newer:
                raise FormatError(f"unexpected tensor {name}")

    def tensor(self, name):
        """The tensor as a float32 numpy array in its stored shape and layout."""
        e = self.tensors[name]
        raw = self.data[e["offset"]:e["offset"] + e["length"]]
        if e["dtype_name"] == "f32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif e["dtype_name"] == "f16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif e["dtype_name"] == "int8":  # the integers as stored, without their scales
            arr = np.frombuffer(raw, dtype="i1").astype(np.float32)
        else:  # bf16: the upper 16 bits of a float32
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        return arr.reshape([int(d) for d in e["shape"]])

    def canonical(self, name):
        """The tensor in canonical layout (PyTorch's shape and gate order), float32;
        int8 matrices dequantized by their row scales."""
        t = self.tensor(name)
        layout = self.tensors[name]["layout_name"]
        if layout == "canonical":
            return t
        (gates, n), k = self.packable[name]
        if layout == "panel16x4":
            # t is [panels, k/4, gates, 16, 4]: move to [gates, panels*16, k/4*4], drop the padding.
            q = t.transpose(2, 0, 3, 1, 4).reshape(gates, -1, t.shape[1] * 4)[:, :n, :k].reshape(gates * n, k)
            return np.ascontiguousarray(q * self.tensor(f"{name}.scale")[:, None])
        # t is [panels, k, gates, 16]: move to [gates, panels*16, k] and drop the padding units.
        units = t.transpose(2, 0, 3, 1).reshape(gates, -1, k)[:, :n, :]
        return np.ascontiguousarray(units.reshape(gates * n, k))

    def verify(self):
        for name, e in self.tensors.items():
            if crc32c(self.data[e["offset"]:e["offset"] + e["length"]]) != e["crc32c"]:
                raise FormatError(f"tensor {name}: checksum mismatch")


def main(argv):
    as_json = "--json" in argv
    verify = "--verify" in argv
    paths = [a for a in argv if not a.startswith("--")]
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    results = []
    for path in paths:
        try:
            f = LstmFile.open(path)
            if verify:
                f.verify()
        except (OSError, FormatError, UnicodeDecodeError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
        tensors = []
        for name, e in f.tensors.items():
            values = f.tensor(name).astype(np.float64)
            canonical = f.canonical(name).astype(np.float64).ravel()
            # A position-weighted sum: catches any permutation error in unpacking.
            weighted = float((canonical * np.arange(1, canonical.size + 1)).sum())
            tensors.append({"name": name, "dtype": e["dtype_name"], "layout": e["layout_name"],
                            "shape": [int(d) for d in e["shape"]], "sum": float(values.sum()),
                            "abs_sum": float(np.abs(values).sum()), "canonical_weighted_sum": weighted})
        results.append({"path": path, "version": list(f.version), "metadata": f.metadata, "tensors": tensors})
        if not as_json:
            a = f.metadata["architecture"]
            print(f"{path}: format {f.version[0]}.{f.version[1]}, {a['cell']} input {a['input_size']} "
                  f"hidden {a['hidden_size']} layers {a['num_layers']}, {len(tensors)} tensors")
    if as_json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
