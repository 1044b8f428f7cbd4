"""The exceptions lstmrt raises: every one is an ``lstmrt.Error``, and also
the built-in exception a caller would expect (``ValueError`` for bad values,
``OSError`` for files that cannot be read, ``TypeError`` for a wrong dtype),
with the runtime's one-line message."""


class Error(Exception):
    """Anything lstmrt refuses."""


class ReadError(Error, OSError):
    """A file could not be opened or read (missing, a directory, a FIFO...)."""


class FileError(Error, ValueError):
    """Not a valid model file: the message names the section and what is wrong."""


class ShapeError(Error, ValueError):
    """An array has the wrong shape or size for the model or state."""


class LengthsError(ShapeError):
    """Per-row lengths that do not fit the batch (negative, too long, too many)."""


class DTypeError(Error, TypeError):
    """An input that is not a float32 numpy array."""


class StateError(Error, ValueError):
    """A state of another model or batch, or bytes that are not a saved state."""


class StreamError(Error, ValueError):
    """A stream id that is not in the batch (left, reused) or a full batch."""


class TokenError(Error, ValueError):
    """A token not in the vocabulary, or a token id outside it."""


class UnsupportedError(Error):
    """The model cannot do it (stepping a bidirectional model, text without a
    vocabulary, an instruction-set tier this CPU lacks)."""


class ConvertError(Error, ValueError):
    """A source model that cannot be converted, or a check that failed."""


class OutOfMemoryError(Error, MemoryError):
    """The sizes asked for (a batch, streams) need more memory than the
    process can allocate; the message says how much and for what."""


class NotFiniteError(Error, ValueError):
    """An input value is NaN or infinite (the message names which)."""
