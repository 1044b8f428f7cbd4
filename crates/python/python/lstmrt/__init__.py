"""lstmrt: a CPU runtime for LSTM, GRU and RNN models with PyTorch's semantics.

    import numpy as np, lstmrt
    model = lstmrt.Model("models/pronoun.lstm")      # memory-mapped
    y = model.run(np.zeros((10, model.input_size), np.float32))   # [T, D*P]
    state = model.new_state()
    h = model.step(state, np.zeros(model.input_size, np.float32))  # [P]

Arrays are float32 numpy arrays, read in place when C-contiguous; outputs
are new arrays (no copy of the runtime's buffer) or the ``out=`` given. The
GIL is released while the runtime computes. ``lstmrt.silero`` is a drop-in
for the ``silero-vad`` package (Silero VAD at 8 and 16 kHz, many live calls
at once). A process forked after a state
started threads (Dask, Spark, multiprocessing) starts them again by itself.
"""

from ._errors import (
    ConvertError,
    DTypeError,
    Error,
    FileError,
    LengthsError,
    NotFiniteError,
    OutOfMemoryError,
    ReadError,
    ShapeError,
    StateError,
    StreamError,
    TokenError,
    UnsupportedError,
)
from ._lstmrt import (
    ChunkState,
    Model,
    State,
    StreamBatch,
    StreamId,
    VadStreams,
    __version__,
    convert,
    isa,
    speech_timestamps,
)

__all__ = [
    "ChunkState",
    "Model",
    "State",
    "StreamBatch",
    "StreamId",
    "VadStreams",
    "speech_timestamps",
    "convert",
    "isa",
    "__version__",
    "Error",
    "ReadError",
    "FileError",
    "ShapeError",
    "LengthsError",
    "NotFiniteError",
    "OutOfMemoryError",
    "DTypeError",
    "StateError",
    "StreamError",
    "TokenError",
    "UnsupportedError",
    "ConvertError",
]
