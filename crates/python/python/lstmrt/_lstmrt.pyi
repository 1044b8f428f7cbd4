"""Types of the extension module (re-exported by ``lstmrt``)."""

from os import PathLike
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, PathLike[str]]
_F32 = npt.NDArray[np.float32]

class Model:
    """A model file, opened and validated once; shared by any number of
    states and threads."""

    def __init__(self, path: _Path, *, mmap: bool = True) -> None:
        """Opens a model file, memory-mapped (``mmap=True``) or read into
        memory. Raises ``ReadError`` or ``FileError``."""
    @staticmethod
    def from_bytes(data: bytes) -> "Model":
        """A model from the bytes of a model file (copied and validated)."""
    @property
    def input_size(self) -> int:
        """Features per timestep of the input."""
    @property
    def output_size(self) -> int:
        """Features per timestep of the output (directions x P)."""
    @property
    def info(self) -> dict[str, Any]:
        """architecture, dtype, input_size, hidden_size, proj_size,
        num_layers, bidirectional, output_size, isa, parameters, mapped,
        format_version, file_bytes, head (out_features, activation, labels)
        or None, vocabulary_size or None, chunks (chunk, channels, context,
        sample_rate, outputs) or None."""
    def new_state(self, batch: int = 1, *, threads: int = 1) -> "State":
        """A fresh state for ``batch`` sequences run together."""
    def new_chunk_state(self, streams: int = 1, *, threads: int = 1) -> "ChunkState":
        """Chunked models (Silero VAD): the carried state of ``streams`` signals."""
    def run(
        self,
        x: _F32,
        state: Optional["State"] = None,
        *,
        batch_first: bool = False,
        lengths: Optional[Sequence[int]] = None,
    ) -> _F32:
        """A whole sequence, as ``torch.nn.LSTM``: ``x`` is ``[T, F]``,
        ``[T, B, F]`` or (``batch_first``) ``[B, T, F]``; returns PyTorch's
        ``output`` in the same layout. ``state`` is used and updated;
        ``lengths`` runs rows of different lengths (packed sequence)."""
    def step(self, state: "State", x: _F32, out: Optional[_F32] = None) -> _F32:
        """One timestep: ``x`` ``[B, F]`` (or ``[F]`` at batch 1) to the top
        layer's new ``h``, ``[B, P]`` (or ``[P]``), into ``out`` if given."""
    def new_stream_batch(self, capacity: int, *, threads: int = 1) -> "StreamBatch":
        """Room for ``capacity`` independent streams stepped together."""
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` (models with a vocabulary)."""
    def token_inputs(self, ids: Sequence[int]) -> _F32:
        """Input rows ``[len(ids), F]`` of token ids."""
    def head(self, y: _F32) -> _F32:
        """The output head, with its activation, on one timestep's output."""

class State:
    """``h``, ``c``, buffers and worker threads of ``batch`` sequences."""

    @staticmethod
    def from_bytes(model: Model, data: bytes) -> "State":
        """A state saved by ``to_bytes``, checked against ``model``."""
    def to_bytes(self) -> bytes: ...
    def reset(self) -> None:
        """Back to the initial state: the next step starts a new sequence."""
    def copy(self) -> "State": ...
    @property
    def batch(self) -> int: ...
    @property
    def threads(self) -> int: ...
    @threads.setter
    def threads(self, threads: int) -> None: ...
    @property
    def h(self) -> _F32:
        """A copy of ``h``, ``[layers * directions, batch, P]`` (``h_n``)."""
    @h.setter
    def h(self, value: _F32) -> None: ...
    @property
    def c(self) -> Optional[_F32]:
        """A copy of ``c``, ``[layers * directions, batch, H]``; None unless LSTM."""
    @c.setter
    def c(self, value: _F32) -> None: ...

class StreamId:
    """One stream of a ``StreamBatch``, valid until it leaves."""

    @property
    def index(self) -> int: ...
    @property
    def generation(self) -> int: ...

class StreamBatch:
    """Independent streams of one model, stepped together."""

    def join(self, state: Optional[State] = None) -> StreamId: ...
    def leave(self, id: StreamId) -> None: ...
    def reset(self, id: StreamId) -> None: ...
    def state(self, id: StreamId) -> State: ...
    def set_state(self, id: StreamId, state: State) -> None: ...
    def step(self, ids: Sequence[StreamId], xs: _F32) -> _F32:
        """One step of ``ids``: ``xs`` ``[len(ids), F]`` to ``[len(ids), P]``."""
    def __len__(self) -> int: ...
    @property
    def capacity(self) -> int: ...

class ChunkState:
    """A chunked model's streams: recurrent state and context frames."""

    def run(self, x: _F32) -> _F32:
        """One chunk of every stream, ``[streams, chunk(, channels)]`` to ``[streams, outputs]``."""
    def run_streams(self, streams: Sequence[int], x: _F32) -> _F32:
        """One chunk of the streams named, ``[len(streams), chunk]``; the others keep their state."""
    def run_signal(self, signal: _F32) -> _F32:
        """A whole 1-D signal through a one-stream state (last chunk zero-padded): ``[chunks, outputs]``."""
    def reset(self) -> None: ...
    def reset_stream(self, stream: int) -> None: ...
    @property
    def streams(self) -> int: ...

class VadStreams:
    """Up to ``capacity`` live audio streams of a voice-activity model, stepped together."""

    def __init__(
        self,
        model: Model,
        capacity: int,
        *,
        threshold: float = 0.5,
        min_silence_duration_ms: float = 100.0,
        speech_pad_ms: float = 30.0,
        max_pending_s: float = 2.0,
        threads: int = 1,
    ) -> None: ...
    def join(self) -> StreamId: ...
    def leave(self, id: StreamId) -> None: ...
    def reset(self, id: StreamId) -> None: ...
    def push(self, id: StreamId, samples: _F32) -> None: ...
    def pending(self, id: StreamId) -> int: ...
    def triggered(self, id: StreamId) -> bool: ...
    def process(self) -> Tuple[List[StreamId], _F32, List[Tuple[StreamId, str, float]]]:
        """Every stream's waiting chunks, as one batch per round: ``(ids, probs, events)``."""
    def __len__(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def window(self) -> int: ...
    @property
    def sampling_rate(self) -> int: ...

def speech_timestamps(
    probs: Sequence[float],
    *,
    window: int,
    sampling_rate: int,
    audio_length_samples: int,
    threshold: float = 0.5,
    neg_threshold: Optional[float] = None,
    min_speech_duration_ms: float = 250.0,
    max_speech_duration_s: float = ...,
    min_silence_duration_ms: float = 100.0,
    speech_pad_ms: float = 30.0,
    min_silence_at_max_speech: float = 98.0,
    use_max_poss_sil_at_max_speech: bool = True,
) -> List[Tuple[int, int]]:
    """Speech segments in samples, by the silero-vad package's rules."""

def convert(
    src: _Path, dst: _Path, dtype: str = "f32", *, check: bool = False, cell: Optional[str] = None
) -> str:
    """Converts a PyTorch, ONNX or Keras-export model into a model file."""

def isa() -> str:
    """The instruction-set tier this process runs on."""
