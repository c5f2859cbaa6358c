"""The Open Inference Protocol's tensor datatypes and their numpy counterparts.

The protocol names thirteen element types (its "Tensor Data Types" table): ``BOOL``,
``UINT8``-``UINT64``, ``INT8``-``INT64``, ``FP16``, ``FP32``, ``FP64`` (their native sizes,
little-endian on the wire) and ``BYTES`` (variable-length byte strings). Signatures name
columns by numpy/pandas dtype (``float64``, ``int64``, ``str``, ``object``…); text columns are
``BYTES`` in the protocol.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from modelyard.codecs.text_rows import is_text_dtype
from modelyard.errors import InvalidPayload

__all__ = ["BYTES", "DATATYPES", "datatype_of", "is_text_dtype", "numpy_dtype"]

BYTES = "BYTES"

#: V2 datatype -> numpy dtype of its elements (little-endian; BYTES elements are Python bytes).
_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    BYTES: np.dtype(object),
}

#: Every datatype the protocol defines, in its table's order.
DATATYPES: tuple[str, ...] = tuple(_NUMPY)

_BY_KIND_SIZE = {
    ("b", 1): "BOOL",
    **{("u", 2**i): f"UINT{8 * 2**i}" for i in range(4)},
    **{("i", 2**i): f"INT{8 * 2**i}" for i in range(4)},
    ("f", 2): "FP16",
    ("f", 4): "FP32",
    ("f", 8): "FP64",
}


def numpy_dtype(datatype: str) -> np.dtype:
    """The numpy dtype of a V2 datatype's elements (``object`` for BYTES).

    Raises:
        InvalidPayload: ``datatype`` is not one the protocol defines (the message lists them).
    """
    dtype = _NUMPY.get(datatype)
    if dtype is None:
        shown = datatype if isinstance(datatype, str) else repr(datatype)
        raise InvalidPayload(
            f"unknown datatype {shown[:40]!r}: the protocol's datatypes are {', '.join(DATATYPES)}"
        )
    return dtype


def datatype_of(dtype: np.dtype | str) -> str | None:
    """The V2 datatype for a numpy dtype, or for a signature's dtype name.

    Text kinds (``str``, ``object``, pandas ``string``, numpy ``U``/``S``/``O``) are BYTES.

    Returns:
        The datatype, or None when the protocol has none (``complex128``, ``category``,
        ``datetime64``…).
    """
    if isinstance(dtype, str):
        return _datatype_of_name(dtype)
    if dtype.kind in "OUS":
        return BYTES
    return _BY_KIND_SIZE.get((dtype.kind, dtype.itemsize))


@lru_cache(maxsize=64)
def _datatype_of_name(name: str) -> str | None:
    if is_text_dtype(name):
        return BYTES
    lowered = name.lower()
    try:
        dtype = np.dtype(lowered)
    except TypeError:  # pandas-only names: category, Int64 (nullable) …
        return None
    return datatype_of(dtype)
