"""``application/x-npy`` bodies: numpy's ``.npy`` format, which the SageMaker SDK's
``NumpySerializer`` writes and its ``NumpyDeserializer`` reads (the npy half of
:mod:`.payloads`).

A request's header is not trusted: nothing is ever unpickled (an object array is refused), the
shape it declares must account for exactly the bytes sent (a header claiming a terabyte is
refused before anything is allocated), and the values must be numbers or booleans. A 1-D array
is one row, as a flat JSON list is (for a one-feature model, one row per value); a 2-D array is
rows x features.
"""

from __future__ import annotations

import io
import math
import struct
from tokenize import TokenError

import numpy as np
from numpy.lib import format as npy_format

from modelyard.codecs.json_shapes import NO_ROWS, Matrix, clip
from modelyard.codecs.object_arrays import typed_objects
from modelyard.errors import InvalidPayload, NotAcceptable

NPY = "application/x-npy"
# Kinds numpy reads as numbers: booleans, signed and unsigned integers, floats.
_NUMERIC = "biuf"
# What numpy's header reader raises on hostile bytes: ast.literal_eval's ValueError (whose
# message is a repr like "<ast.Call object at 0x…>"), SyntaxError, tokenize's TokenError (when
# it retries a 1.0/2.0 header), TypeError (an unhashable dict key), RecursionError (nesting).
_HEADER_ERRORS = (ValueError, TypeError, SyntaxError, TokenError, RecursionError, MemoryError)
_NOT_LITERAL = (
    "the .npy header must be a dict literal of 'descr', 'fortran_order' and 'shape' "
    "(plain values: no calls, names or arithmetic)"
)


def decode(body: bytes, width: int | None = None) -> Matrix:
    """Read a ``.npy`` body into a C-contiguous 2-D float64 array.

    Args:
        body: The request body.
        width: How many features the model takes, if known (1: a 1-D array is a column).

    Raises:
        InvalidPayload: not a ``.npy`` body, a header whose shape does not match the bytes,
            a dtype that is not numeric, more than two dimensions, or no rows.
    """
    stream = io.BytesIO(body)
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except _HEADER_ERRORS as exc:
        raise InvalidPayload(f"malformed .npy body: {_plainly(exc, body)}") from None
    if any(d < 0 for d in shape):
        raise InvalidPayload(f"malformed .npy body: the header's shape {shape} has a negative size")
    if dtype.hasobject or dtype.kind not in _NUMERIC or dtype.names is not None:
        raise InvalidPayload(f"a .npy body must hold numbers, not {dtype}")
    if len(shape) not in (1, 2):
        raise InvalidPayload(f"a .npy body must be 1-D (one row) or 2-D, not {len(shape)}-D")
    data = memoryview(body)[stream.tell() :]
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise InvalidPayload(
            f"the .npy header declares shape {shape} of {dtype} ({expected} bytes), but "
            f"{len(data)} bytes follow it"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    if array.ndim == 1:
        array = array.reshape(-1, 1) if width == 1 else array.reshape(1, -1)
    if array.shape[0] == 0:
        raise InvalidPayload(NO_ROWS)
    return np.ascontiguousarray(array, dtype=np.float64)


def _plainly(error: Exception, body: bytes) -> str:
    """What is wrong with a header numpy refused, in words (never an ``ast`` node's repr)."""
    message = str(error)
    if isinstance(error, ValueError) and not message.startswith(("malformed node", "Cannot parse")):
        return message  # numpy's own words: "shape is not valid: …", "EOF: reading …"
    header = _header_text(body)
    return f"{_NOT_LITERAL}, got {clip(header, 80)}" if header is not None else _NOT_LITERAL


def _header_text(body: bytes) -> str | None:
    """The header of a version 1.0, 2.0 or 3.0 ``.npy`` body as text, or None if cut short."""
    major = body[6:7]
    size = struct.Struct("<H" if major == b"\x01" else "<I")
    start = 8 + size.size
    if len(body) < start:
        return None
    (length,) = size.unpack_from(body, 8)
    encoding = "utf-8" if major == b"\x03" else "latin-1"
    return body[start : start + length].decode(encoding, "replace").strip()


def encode(predictions: np.ndarray) -> bytes:
    """Write predictions as a ``.npy`` body (never pickled). Predictions held as Python
    objects are written by the kind they share (``codecs.object_arrays``, as V2 types them):
    labels held as strings (a scikit-learn classifier fitted on a pandas column of text
    answers so) as a text array (numpy's ``<U``), which numpy loads without pickle; booleans,
    integers (exactly) and numbers (None as NaN) as arrays of those.

    Raises:
        NotAcceptable: predictions of Python objects sharing no such kind (or bytes), which
            ``.npy`` holds only as a pickle: the caller's choice of type, not the model's
            failure (JSON writes them).
    """
    if predictions.dtype.hasobject:
        predictions = _typed(predictions)
    buffer = io.BytesIO()
    np.save(buffer, predictions, allow_pickle=False)
    return buffer.getvalue()


def _typed(predictions: np.ndarray) -> np.ndarray:
    found = typed_objects(predictions)
    values = predictions.ravel().tolist()
    if found is not None and found[0] != "text":
        return found[1]
    if found is not None and all(isinstance(v, str) for v in values):
        return np.array(values, dtype=str).reshape(predictions.shape)
    others = sorted({type(v).__name__ for v in values if not isinstance(v, str)})
    raise NotAcceptable(
        f"predictions holding Python objects ({', '.join(others)}) cannot be written as "
        f"{NPY} without pickle: ask for application/json or text/csv"
    )
