"""The binary form of a :class:`~modelyard.monitoring.profile.Profile`, deterministic and
versioned.

Layout (little-endian)::

    b"MYPF"  u16 format version  u32 header length  header  arrays

The header is JSON with sorted keys, holding only integers, strings, booleans and nulls (no
floats, so no formatting choices): row counts, column names and kinds, each sketch's shift,
missing count, exact sum (hexadecimal), min and max keys, and category texts with their counts.
Bucket ids (as a first id and the gaps between neighbours) and bucket counts follow as raw
arrays, each in the narrowest unsigned type that holds it; the header lists their item sizes
(1, 2, 4 or 8 bytes) and lengths in order. Category hashes are not stored: they are
recomputed from the texts.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson

from modelyard.errors import InvalidInput
from modelyard.monitoring.frequencies import Frequencies, category_hash
from modelyard.monitoring.profile import ColumnProfile, Profile
from modelyard.monitoring.sketch import NumericSketch

MAGIC = b"MYPF"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<4sHI")
_UNSIGNED = ("<u1", "<u2", "<u4", "<u8")


def encode(profile: Profile) -> bytes:
    """The bytes of ``profile`` (equal profiles give equal bytes)."""
    arrays: list[np.ndarray] = []
    header = {
        "profile": _profile(profile, arrays),
        "arrays": [[a.dtype.itemsize, len(a)] for a in arrays],
    }
    text = orjson.dumps(header, option=orjson.OPT_SORT_KEYS)
    return b"".join(
        [_PREFIX.pack(MAGIC, FORMAT_VERSION, len(text)), text, *(a.tobytes() for a in arrays)]
    )


def decode(data: bytes) -> Profile:
    """Read :func:`encode` output.

    Raises:
        InvalidInput: not a profile, a newer format version, or damaged bytes.
    """
    if len(data) < _PREFIX.size or data[:4] != MAGIC:
        raise InvalidInput("the data is not a modelyard profile")
    _, version, length = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise InvalidInput(
            f"profile format version {version} is not one this modelyard reads "
            f"({FORMAT_VERSION}); upgrade modelyard"
        )
    try:
        header = orjson.loads(data[_PREFIX.size : _PREFIX.size + length])
        offset = _PREFIX.size + length
        arrays = []
        for size, count in header["arrays"]:
            if size not in (1, 2, 4, 8):
                raise ValueError(f"array of {size}-byte items")
            array = np.frombuffer(data, dtype=f"<u{size}", count=count, offset=offset)
            arrays.append(array)
            offset += array.nbytes
        if offset != len(data):
            raise ValueError("trailing bytes")
        return _read_profile(header["profile"], arrays)
    except (ValueError, KeyError, TypeError, IndexError, orjson.JSONDecodeError) as exc:
        raise InvalidInput(f"the profile is damaged: {exc}") from None


# -- writing -------------------------------------------------------------------------------


def _profile(profile: Profile, arrays: list[np.ndarray]) -> dict[str, Any]:
    return {
        "row_count": profile.row_count,
        "columns": [_column(c, arrays) for c in profile.column_profiles],
        "predictions": None
        if profile.predictions is None
        else _profile(profile.predictions, arrays),
    }


def _column(column: ColumnProfile, arrays: list[np.ndarray]) -> dict[str, Any]:
    return {
        "name": column.name,
        "kind": column.kind,
        "numbers": _sketch(column.numbers, arrays),
        "categories": _frequencies(column.categories),
        "lengths": _sketch(column.lengths, arrays),
    }


def _sketch(sketch: NumericSketch | None, arrays: list[np.ndarray]) -> dict[str, Any] | None:
    if sketch is None:
        return None
    first = int(sketch.buckets[0]) if len(sketch.buckets) else 0
    # Gaps between sorted bucket ids, modulo 2**64 (they may exceed the int64 range).
    gaps = np.diff(sketch.buckets).view(np.uint64)
    arrays.append(_narrow(gaps))
    arrays.append(_narrow(sketch.counts.view(np.uint64)))
    return {
        "shift": sketch.shift,
        "cap": sketch.cap,
        "first": first,
        "buckets": len(sketch.buckets),
        "missing": sketch.missing,
        "sum": format(sketch.exact_sum, "x"),
        "min_key": sketch.min_key,
        "max_key": sketch.max_key,
    }


def _frequencies(freq: Frequencies | None) -> dict[str, Any] | None:
    if freq is None:
        return None
    return {
        "categories": [[text, count] for _, text, count in freq.categories],
        "total": freq.total,
        "missing": freq.missing,
        "overflow": freq.overflow,
        "keep": freq.keep,
    }


def _narrow(values: np.ndarray) -> np.ndarray:
    top = int(values.max()) if len(values) else 0
    for dtype in _UNSIGNED:
        if top <= np.iinfo(np.dtype(dtype)).max:
            return values.astype(dtype)
    raise AssertionError("unreachable: uint64 holds every value")


# -- reading -------------------------------------------------------------------------------


def _read_profile(data: dict[str, Any], arrays: list[np.ndarray]) -> Profile:
    columns = tuple(_read_column(c, arrays) for c in data["columns"])
    predictions = data["predictions"]
    return Profile(
        int(data["row_count"]),
        columns,
        None if predictions is None else _read_profile(predictions, arrays),
    )


def _read_column(data: dict[str, Any], arrays: list[np.ndarray]) -> ColumnProfile:
    kind = data["kind"]
    if kind not in ("numeric", "categorical"):
        raise ValueError(f"column kind {kind!r}")
    return ColumnProfile(
        str(data["name"]),
        kind,
        _read_sketch(data["numbers"], arrays),
        _read_frequencies(data["categories"]),
        _read_sketch(data["lengths"], arrays),
    )


def _read_sketch(data: dict[str, Any] | None, arrays: list[np.ndarray]) -> NumericSketch | None:
    if data is None:
        return None
    gaps, counts = arrays.pop(0), arrays.pop(0)
    n = int(data["buckets"])
    if len(gaps) != max(n - 1, 0) or len(counts) != n:
        raise ValueError("bucket arrays of the wrong length")
    buckets = np.empty(n, dtype=np.uint64)
    if n:
        buckets[0] = np.int64(data["first"]).view(np.uint64)
        np.cumsum(gaps.astype(np.uint64), out=buckets[1:])
        buckets[1:] += buckets[0]
    return NumericSketch(
        shift=int(data["shift"]),
        buckets=buckets.view(np.int64),
        counts=counts.astype(np.int64),
        missing=int(data["missing"]),
        exact_sum=int(data["sum"], 16),
        min_key=int(data["min_key"]),
        max_key=int(data["max_key"]),
        cap=int(data["cap"]),
    )


def _read_frequencies(data: dict[str, Any] | None) -> Frequencies | None:
    if data is None:
        return None
    categories = sorted(
        (category_hash(str(text)), str(text), int(count)) for text, count in data["categories"]
    )
    return Frequencies(
        tuple(categories),
        int(data["total"]),
        int(data["missing"]),
        bool(data["overflow"]),
        int(data["keep"]),
    )
