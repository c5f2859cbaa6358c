"""float32 values as CSV text: numpy's shortest repr, written ~4x faster from 64 values on.

numpy's ``astype(str)`` runs Dragon4 per value (~0.45 us each here), which was the largest
cost of writing a batch job's predictions after parsing and predicting. orjson writes float32
with Ryu, the same shortest round-trip digits, in ~0.04 us, but in its own style outside a
window: positional ``0.00001`` where numpy switches to ``1e-05`` (below 1e-4), positional
``1000005.2`` where numpy writes ``1.0000052e+06`` (from 1e6 on), ``2.5e-7`` for ``2.5e-07``,
and ``null`` for NaN and infinities. Inside the window (0, or 1e-4 <= |x| < 1e6) the two
agree: a sweep of 64 million float32 values there, positive and negative, and every integer
below 1e6 found no difference (tests/codecs/test_float_text.py keeps a sample of it). Values
outside the window take numpy's text, so the result is always numpy's. (Arrow's cast writes
the same digits as fast, but its first use in a process costs 0.2 s of CPU.)
"""

from __future__ import annotations

import numpy as np
import orjson

__all__ = ["float16_for_json", "float32_csv"]

#: The window in float32: the smallest float32 at or above 1e-4 (float32(1e-4) is below it,
#: and numpy writes it ``1e-04``), and 1e6 (exact).
_LOW = np.nextafter(np.float32(1e-4), np.float32(1))
_HIGH = np.float32(1e6)
#: Below this many values numpy's own path is faster (orjson's path has a few fixed numpy
#: calls: 5.6 against 1.6 us for one value, 10 against 30 us for 64).
ORJSON_FROM = 16


def float32_csv(array: np.ndarray) -> bytes:
    """Rows of a 1-D (one value a row) or 2-D float32 array as CSV lines, ``\\n``-terminated,
    each value in numpy's shortest repr (``nan``, ``inf`` as numpy writes them)."""
    if array.size < ORJSON_FROM and array.ndim == 1:
        text = array.astype(str).tolist()
        return ("\n".join(text) + "\n").encode() if text else b""
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.size < ORJSON_FROM:
        return _numpy_rows(array)
    array = np.ascontiguousarray(array)
    wide = np.abs(array)
    outside = ~((wide < _HIGH) & ((wide >= _LOW) | (wide == 0)))  # NaN is outside
    count = int(np.count_nonzero(outside))
    if count == 0:
        text = orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY)  # [[a,b],[c,d]]
        return text[2:-2].replace(b"],[", b"\n") + b"\n"
    if count > array.size // 4:  # mostly outside (prices, tiny scores): numpy's path is faster
        return _numpy_rows(array)
    values = orjson.dumps(array.ravel(), option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    where = np.flatnonzero(outside)
    for at, text in zip(where.tolist(), array.ravel()[where].astype(str).tolist(), strict=True):
        values[at] = text.encode()
    width = array.shape[1]
    if width == 1:
        return b"\n".join(values) + b"\n"
    rows = (b",".join(values[i : i + width]) for i in range(0, len(values), width))
    return b"\n".join(rows) + b"\n"


def _numpy_rows(array: np.ndarray) -> bytes:
    """A 2-D array's lines, every value through numpy."""
    return "".join(",".join(row) + "\n" for row in array.astype(str).tolist()).encode()


def float16_for_json(array: np.ndarray) -> np.ndarray:
    """A float16 array as the float64 values whose shortest text is each value's own (JSON
    writers take float16 as the float64 it widens to: 0.1 would be written 0.099975586)."""
    return array.astype(str).astype(np.float64)
