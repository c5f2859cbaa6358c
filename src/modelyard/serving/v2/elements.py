"""A tensor's elements as the wire carries them, turned into numpy arrays and back.

Two wire forms, one contract:

- JSON values (REST ``data``, and gRPC's typed ``*_contents`` as lists): nested in the tensor's
  shape or flat, row-major. Numbers for the numeric datatypes (``null`` is NaN in the FP ones;
  an integral float such as ``2.0`` is accepted for an integer type), ``true``/``false`` for
  BOOL, strings for BYTES. A value out of its datatype's range is refused, never wrapped.
- Raw bytes (the binary tensor data extension, gRPC ``raw_*_contents``): little-endian,
  row-major, no padding; BOOL one byte per element; each BYTES element a 4-byte little-endian
  length followed by that many bytes.

Numeric elements come back as a flat numpy array of the datatype's dtype, BYTES as a flat list
of ``bytes``; either holds exactly as many elements as the shape says, or InvalidPayload names
the tensor and both counts.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from modelyard.codecs.json_shapes import clip
from modelyard.errors import InvalidPayload
from modelyard.serving.v2.datatypes import BYTES, numpy_dtype

__all__ = ["count", "raw_from_elements", "raw_to_elements", "shape_of", "values_to_elements"]

Elements = np.ndarray | list[bytes]

_LENGTH = struct.Struct("<I")
_SHAPES = (list, tuple)
_NUMBER = (int, float)
_MISSING_OK = (int, float, type(None))  # FP data: null is NaN
_EXACT = 2.0**53  # float64 holds every integer up to here, and not all past it


def shape_of(shape: Any, name: str) -> tuple[int, ...]:
    """Check a wire shape: a list of non-negative integers.

    Raises:
        InvalidPayload: naming the tensor ``name``.
    """
    if type(shape) not in _SHAPES or not all(type(d) is int and d >= 0 for d in shape):
        shown = repr(shape)[:60]
        raise InvalidPayload(
            f"{_where(name)}: shape must be a list of non-negative integers, got {shown}"
        )
    return tuple(shape)


def count(shape: Sequence[int]) -> int:
    """The number of elements a tensor of ``shape`` holds."""
    return math.prod(shape)


def values_to_elements(
    datatype: str, shape: tuple[int, ...], values: Any, name: str, *, booleans: bool = True
) -> Elements:
    """The elements of JSON-style ``values`` (nested in ``shape`` or flat, row-major).

    Args:
        datatype: The tensor's V2 datatype.
        shape: Its checked shape.
        values: The data, as the wire carried it.
        name: The tensor's name, for messages.
        booleans: Whether ``values`` may hold ``true``/``false`` among numbers (numpy would
            read them as 1 and 0); False when the caller knows they cannot (typed gRPC
            contents, a JSON body without those words), which spares a pass over the values.

    Raises:
        InvalidPayload: an unknown datatype, values that are not a list, ragged nesting, a
            nesting other than ``shape``, a count other than the shape's, or an element that
            is not of the datatype (or out of its range): a string or a boolean for a numeric
            datatype is named with its position.
    """
    dtype = numpy_dtype(datatype)
    if type(values) is not list:
        raise InvalidPayload(f"{_where(name)}: data must be a list, got {type(values).__name__}")
    try:
        array = np.array(values, dtype=object if datatype == BYTES else None)
    except ValueError:
        raise InvalidPayload(
            f"{_where(name)}: data is ragged (lists of different lengths)"
        ) from None
    if array.ndim > 1 and array.shape != shape:
        raise InvalidPayload(
            f"{_where(name)}: data is nested as {list(array.shape)} but the shape is {list(shape)}"
        )
    expected = count(shape)
    if array.size != expected:
        raise InvalidPayload(
            f"{_where(name)}: shape {list(shape)} holds {expected} elements, data has {array.size}"
        )
    flat = array.reshape(-1)
    if datatype == BYTES:
        return _text_elements(flat, name)
    if booleans and datatype != "BOOL" and _holds_bool(values):  # numpy reads true as 1
        raise _not_a_number(values, shape, datatype, name)
    if flat.dtype == dtype:  # FP64 sent as JSON numbers, INT64 as JSON integers
        return flat
    if flat.size and flat.dtype.kind in "USb" and datatype != "BOOL":
        raise _not_a_number(values, shape, datatype, name)  # a string makes all strings
    return _numeric(flat, dtype, datatype, name, values)


def raw_to_elements(
    datatype: str, shape: tuple[int, ...], raw: bytes | memoryview, name: str
) -> Elements:
    """The elements of a raw little-endian, row-major buffer.

    Raises:
        InvalidPayload: an unknown datatype, or a buffer whose size does not fit the shape
            (for BYTES: length prefixes that run past the buffer, or a different count).
    """
    dtype = numpy_dtype(datatype)
    expected = count(shape)
    if datatype == BYTES:
        return _split_bytes(raw, expected, name)
    if len(raw) != expected * dtype.itemsize:
        raise InvalidPayload(
            f"{_where(name)}: {len(raw)} bytes of binary data, but shape {list(shape)} of "
            f"{datatype} needs {expected * dtype.itemsize}"
        )
    if datatype == "BOOL":
        return np.frombuffer(raw, dtype=np.uint8) != 0
    return np.frombuffer(raw, dtype=dtype)


def raw_from_elements(datatype: str, data: Elements) -> bytes:
    """The raw little-endian, row-major bytes of elements (:func:`raw_to_elements` reversed)."""
    if datatype == BYTES:
        parts: list[bytes] = []
        for item in data:
            parts.append(_LENGTH.pack(len(item)))
            parts.append(item)
        return b"".join(parts)
    assert isinstance(data, np.ndarray)
    return np.ascontiguousarray(data, dtype=numpy_dtype(datatype)).tobytes()


def _numeric(
    flat: np.ndarray, dtype: np.dtype, datatype: str, name: str, values: list[Any]
) -> np.ndarray:
    kind = flat.dtype.kind
    target = dtype.kind
    if kind == "O":  # null (NaN), or something that is not a number
        flat = _from_objects(flat, target, datatype, name)
        kind = flat.dtype.kind
    if target == "b":
        if kind != "b" and flat.size:
            raise InvalidPayload(f"{_where(name)}: BOOL data must be true or false")
        return flat.astype(np.bool_)
    if target in "iu":
        if kind == "f" and not np.array_equal(flat, np.floor(flat)):  # NaN fails too
            raise InvalidPayload(f"{_where(name)}: {datatype} data must be integers")
        if kind == "f" and flat.size and max(-flat.min(), flat.max()) >= _EXACT:
            return _exact_integers(values, dtype, datatype, name)
        if flat.size and _out_of_range(flat, dtype):
            raise InvalidPayload(f"{_where(name)}: a value is out of the range of {datatype}")
        return flat.astype(dtype, copy=False)
    if dtype.itemsize >= flat.dtype.itemsize or (kind != "f" and dtype.itemsize > 2):
        return flat.astype(dtype)  # nothing can overflow (only FP16 is narrower than an int)
    try:
        with np.errstate(over="raise"):
            return flat.astype(dtype)
    except FloatingPointError:
        raise InvalidPayload(f"{_where(name)}: a value is out of the range of {datatype}") from None


def _exact_integers(values: list[Any], dtype: np.dtype, datatype: str, name: str) -> np.ndarray:
    """The elements of an integer tensor read one by one, exactly. Numpy makes a float64 array
    of integers mixed with floats (``[2**63 - 1, 1.0]``) or with one past INT64's range
    (``[2**64 - 1, 1]``): past 2**53 its values are rounded, so a valid INT64 or UINT64 top was
    read as 2**63 or 2**64 and refused as out of range, and others changed silently."""
    info = np.iinfo(dtype)
    out = []
    for value in np.array(values, dtype=object).reshape(-1).tolist():
        number = int(value) if type(value) is float else value  # integral: checked before
        if type(number) is not int or not info.min <= number <= info.max:
            raise InvalidPayload(f"{_where(name)}: a value is out of the range of {datatype}")
        out.append(number)
    return np.array(out, dtype=dtype)


def _out_of_range(flat: np.ndarray, dtype: np.dtype) -> bool:
    """Whether a value of ``flat`` (integers, or floats holding whole numbers) is outside the
    integer ``dtype``'s range, compared exactly: numpy compares uint64 with int64 (2**63
    against INT64's top) and floats with 2**64 - 1 as float64, where both sides round to the
    same number, and the value then wrapped around."""
    info = np.iinfo(dtype)
    low, high = flat.min(), flat.max()
    if flat.dtype.kind in "iu":
        return int(low) < info.min or int(high) > info.max
    # Floats: the exclusive top, a power of two, is exact as a float (info.max is not).
    top = 2.0 ** (8 * dtype.itemsize - (1 if dtype.kind == "i" else 0))
    return bool(low < info.min or high >= top)


def _from_objects(flat: np.ndarray, target: str, datatype: str, name: str) -> np.ndarray:
    """An object array (numbers mixed with null, or with things that are not numbers)."""
    out = []
    for i, value in enumerate(flat.tolist()):
        if value is None and target == "f":
            out.append(math.nan)
        elif (type(value) is bool) if target == "b" else (type(value) in _NUMBER):
            out.append(value)
        else:
            raise InvalidPayload(
                f"{_where(name)}: element {i + 1} is not {_a(datatype)} value: {_shown(value)}"
            )
    try:
        return np.array(out, dtype=np.float64 if target == "f" else None)
    except OverflowError:
        raise InvalidPayload(f"{_where(name)}: a value is out of the range of {datatype}") from None


def _holds_bool(values: list[Any]) -> bool:
    """Whether nested lists hold a ``True`` or ``False`` (``1 == True``: types, not values)."""
    pending = [values]
    while pending:
        for value in pending.pop():
            kind = type(value)
            if kind is bool:
                return True
            if kind is list:
                pending.append(value)
    return False


def _not_a_number(values: list[Any], shape: tuple[int, ...], datatype: str, name: str) -> Exception:
    """The refusal naming the first element of ``values`` (row-major) that is not a number."""
    flat: list[Any] = []
    pending = [iter(values)]
    while pending:  # depth first, in order: row-major
        for value in pending[-1]:
            if type(value) is list:
                pending.append(iter(value))
                break
            flat.append(value)
        else:
            pending.pop()
    allowed = _MISSING_OK if datatype.startswith("FP") else _NUMBER
    for i, value in enumerate(flat):
        if type(value) not in allowed:
            index = [int(d) for d in np.unravel_index(i, shape)] if shape else []
            return InvalidPayload(
                f"{_where(name)}: element {i + 1} (index {index}) is not {_a(datatype)} value: "
                f"{_shown(value)} ({datatype} data must be JSON numbers)"
            )
    return InvalidPayload(f"{_where(name)}: {datatype} data must be JSON numbers")


def _a(datatype: str) -> str:
    """``datatype`` with its article, as it is read aloud ("an INT64", "an FP32", "a UINT8")."""
    return f"{'an' if datatype.startswith(('INT', 'FP')) else 'a'} {datatype}"


def _shown(value: Any) -> str:
    """A request's value as the JSON it was sent as (``true``, ``"1.5"``, ``null``)."""
    text = orjson.dumps(value, default=repr).decode()
    return text if len(text) <= 40 else text[:39] + "…"


def _text_elements(flat: np.ndarray, name: str) -> list[bytes]:
    out = []
    for i, value in enumerate(flat.tolist()):
        if type(value) is str:
            out.append(value.encode("utf-8"))
        elif type(value) is bytes:
            out.append(value)
        else:
            shown = repr(value)[:40]
            raise InvalidPayload(
                f"{_where(name)}: BYTES element {i + 1} must be a string, got {shown}"
            )
    return out


def _split_bytes(raw: bytes | memoryview, expected: int, name: str) -> list[bytes]:
    view = memoryview(raw)
    out: list[bytes] = []
    offset, end = 0, len(view)
    while offset < end:
        if offset + 4 > end:
            raise InvalidPayload(f"{_where(name)}: BYTES data ends inside an element's length")
        (size,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + size > end:
            raise InvalidPayload(
                f"{_where(name)}: BYTES element {len(out) + 1} says {size} bytes; "
                f"{end - offset} are left"
            )
        out.append(bytes(view[offset : offset + size]))
        offset += size
        if len(out) > expected:
            break
    if len(out) != expected:
        got = "more" if len(out) > expected else str(len(out))
        raise InvalidPayload(
            f"{_where(name)}: the shape holds {expected} elements, the BYTES data {got}"
        )
    return out


def _where(name: str) -> str:
    return f"input {clip(name)}"
