"""Many requests' arrays stacked into one: the rows or the predictions of one drain's calls.

The metrics drain and the capture writer see each call's rows and predictions as small arrays
of their own (one request's); their statistics and files want one array of all of them.
NumPy's ``concatenate`` spends ~0.2 us on each small array; when they are all C-ordered arrays
of one dtype and width, :func:`joined` copies their bytes in one C loop instead (~0.05 us an
array), and the others fall back to ``concatenate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import numpy as np

_DTYPE = attrgetter("dtype")
_NDIM = attrgetter("ndim")
_NBYTES = attrgetter("nbytes")


def joined(arrays: Sequence[Any], lengths: np.ndarray) -> np.ndarray | None:
    """Arrays stacked along their first axis as one read-only ``(rows, width)`` array of their
    type, when every one is a C-ordered :class:`numpy.ndarray` of one dtype (not objects), of
    ``lengths[i]`` rows of one width (``width`` values after the first axis: a 1-D array is
    that many rows of one value); else None.

    Many small arrays (one request's rows each) are joined as bytes, by one C loop: numpy's
    ``concatenate`` spends ~0.2 us an array on them, this ~0.05.
    """
    if not arrays or not lengths.all() or set(map(type, arrays)) != {np.ndarray}:
        return None
    dtypes = set(map(_DTYPE, arrays))
    if len(dtypes) != 1:
        return None
    dtype = dtypes.pop()
    if dtype.hasobject:
        return None  # an object array's bytes are pointers
    width, rest = divmod(arrays[0].size, int(lengths[0]))
    if rest or not width:
        return None
    sizes = np.fromiter(map(_NBYTES, arrays), dtype=np.int64, count=len(arrays))
    if not np.array_equal(sizes, lengths * (width * dtype.itemsize)):
        return None  # some array's rows are of another width
    try:
        data = b"".join(arrays)
    except TypeError:  # not C-ordered (a view with steps, a Fortran-ordered array)
        return None
    return np.frombuffer(data, dtype=dtype).reshape(-1, width)


def stacked(rows: Sequence[Any], lengths: np.ndarray | None = None) -> np.ndarray | None:
    """Many requests' rows as one 2-D array of their own type, when they are all arrays of
    one width (what one model version receives unless it takes text columns); else None.
    ``lengths``: each request's number of rows, when known."""
    if not rows:
        return None
    if lengths is None:
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    x = joined(rows, lengths)
    if x is not None:
        return x
    if set(map(type, rows)) != {np.ndarray}:
        return None
    try:  # numpy refuses arrays of other widths or dimensions
        x = rows[0] if len(rows) == 1 else np.concatenate(rows)
    except ValueError:
        return None
    return x if x.ndim == 2 else None


def prediction_matrix(predictions: Sequence[Any], counts: np.ndarray) -> np.ndarray | None:
    """Many requests' predictions as one (rows, outputs) array, when they are all arrays with
    ``counts[i]`` rows for request ``i`` (1-D: one output; more dimensions: the values after
    the first axis, flattened); else None."""
    if not predictions:
        return None
    y = joined(predictions, counts)  # checks each request's size against its rows
    if y is not None:
        return y
    if set(map(type, predictions)) != {np.ndarray}:
        return None
    ranks = set(map(_NDIM, predictions))
    if len(ranks) != 1 or not ranks <= {1, 2}:
        return None
    lengths = np.fromiter(map(len, predictions), dtype=np.int64, count=len(predictions))
    if not np.array_equal(lengths, counts):
        return None
    try:  # 2-D predictions of other widths
        y = predictions[0] if len(predictions) == 1 else np.concatenate(predictions)
    except ValueError:
        return None
    return y.reshape(len(y), -1)
