"""Predictions held as Python objects, typed: what one kind of value an object array holds.

A model may answer with an array of dtype ``object`` (a scikit-learn classifier fitted on a
pandas column answers labels so; a pyfunc may build a list of ints or of ``None`` and numbers).
Every protocol writes such an answer by the one kind all its values share, so that the
SageMaker route's ``.npy`` and V2's tensors agree: text, booleans, integers kept exactly (as
float64, ids past 2**53 came back rounded), or numbers with ``None`` as NaN.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Kind = Literal["text", "bool", "int64", "uint64", "float64"]


def typed_objects(array: np.ndarray) -> tuple[Kind, np.ndarray] | None:
    """The kind of values the object array ``array`` holds, with the array as that kind
    (``text``: as it is, each value a ``str`` or ``bytes``); None when they share none."""
    flat = array.reshape(-1).tolist()
    if all(type(v) in (str, bytes) for v in flat):
        return "text", array
    if all(isinstance(v, bool | np.bool_) for v in flat):
        return "bool", array.astype(np.bool_)
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in flat):
        low, high = int(min(flat)), int(max(flat))
        for kind, dtype in (("int64", np.int64), ("uint64", np.uint64)):
            info = np.iinfo(dtype)
            if info.min <= low and high <= info.max:
                ints = [int(v) for v in flat]
                return kind, np.array(ints, dtype=dtype).reshape(array.shape)  # type: ignore[return-value]
    try:
        numbers = np.array([np.nan if v is None else v for v in flat], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return "float64", numbers.reshape(array.shape)


#: The Python types JSON and CSV write as values of their own.
_PLAIN = (str, int, float, bool, type(None))


def plain_value(value: object) -> str | int | float | bool | None:
    """A prediction held as an object, as a value JSON and CSV write: a NumPy scalar as the
    Python number, text or boolean it holds, bytes (a label) as the UTF-8 text they hold. A
    float16 or float32 is the float whose shortest text is its own (``0.1``, as an array of
    them is written), not the float64 it widens to (``0.0999755859375``).

    Raises:
        ValueError: bytes that are not UTF-8.
        TypeError: anything else (a complex number, a mapping, an object), naming its type.
    """
    if isinstance(value, np.float16 | np.float32):
        return float(str(value))  # numpy's shortest repr, as float_text writes arrays
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"the text label {value[:40]!r} is not UTF-8") from None
    if isinstance(value, _PLAIN):
        return value
    raise TypeError(type(value).__name__)
