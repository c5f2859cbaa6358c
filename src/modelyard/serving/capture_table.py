"""Captured calls → one Arrow table: one row per input row, with the columns of
:mod:`modelyard.domain.capture`, and redacted fields replaced.

Runs on the capture writer's thread, never on the request path. A hashed value is
``sha256(salt + 0x1f + text)`` in hex, where ``text`` is the value as Python writes it
(``3.5``, ``3.0``, ``abc``); missing values (None, NaN) stay null. A dropped field is all null.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from modelyard.domain.capture import (
    CALLER_ID,
    CaptureConfig,
    Redaction,
    input_column,
    output_columns,
)
from modelyard.serving.capture import CaptureBlock, CaptureRecord
from modelyard.serving.stacking import prediction_matrix, stacked

_TIME = pa.timestamp("us", tz="UTC")


def build_table(records: Sequence[CaptureRecord]) -> pa.Table:
    """The rows of ``records``, all answered by one variant route, in order (see
    :func:`block_table`)."""
    return block_table(CaptureBlock.of(records))


def block_table(block: CaptureBlock) -> pa.Table:
    """The rows of ``block``'s calls, in order: one table row per input row.

    Raises:
        ValueError, TypeError, pa.ArrowException: rows or predictions that cannot be tabled
            (the writer counts those records as failed).
    """
    # Column by column with C loops (NumPy, Arrow): this runs for every captured request, so
    # nothing here loops over the calls in Python. One-row calls (the usual case) repeat
    # nothing; values shared by every row are repeated by Arrow, not built row by row.
    counts = block.counts
    calls = len(counts)
    total = int(counts.sum())
    spread = None if total == calls else np.repeat(np.arange(calls), counts)
    variant = block.variant
    spec = variant.served.spec
    columns: dict[str, Any] = {
        "inference_id": _per_call(block.inference_ids, spread, repeated=False),
        "time": pa.array(_spread(block.micros, spread), type=_TIME),
        "variant": _same(variant.name, total),
        "model": _same(spec.name, total),
        "model_version": pa.array(np.full(total, spec.version, dtype=np.int64)),
        "latency_ms": pa.array(_spread(block.latencies * 1e3, spread)),
        "row": pa.array(_row_numbers(counts, total, spread)),
        "protocol": _per_call(block.protocols, spread),
    }
    callers = block.callers
    if callers is not None and callers.count(None) < len(callers):  # else no column at all
        columns[CALLER_ID] = _per_call(callers, spread, repeated=False)
    names = spec.signature.feature_names if spec.signature is not None else None
    capture = variant.capture
    salt = variant.capture_salt.encode()
    if block.matrix is not None:
        inputs = _columns(block.matrix, names)
    else:
        inputs = _inputs(block.rows, names)
    _check_redactable(capture, inputs)
    for feature, values in inputs.items():
        columns[input_column(feature)] = _redacted(values, capture, feature, salt)
    columns.update(_outputs(block, total))
    return pa.table(columns)


def _spread(values: np.ndarray, spread: np.ndarray | None) -> np.ndarray:
    """Per-call ``values``, one per row."""
    return values if spread is None else values[spread]


def _same(value: str, total: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, type=pa.string()), total)


def _per_call(values: list[Any], spread: np.ndarray | None, repeated: bool = True) -> pa.Array:
    """A string column from per-call ``values``, one per row; ``repeated``: they are usually
    all one value (a protocol), worth checking (by identity first, with a C loop)."""
    total = len(values) if spread is None else len(spread)
    if repeated and values and values.count(values[0]) == len(values):
        return _same(values[0], total)
    array = pa.array(values, type=pa.string())
    return array if spread is None else array.take(pa.array(spread))


def _row_numbers(counts: np.ndarray, total: int, spread: np.ndarray | None) -> np.ndarray:
    """Each row's index within its request."""
    if spread is None:
        return np.zeros(total, dtype=np.int32)
    starts = np.cumsum(counts) - counts
    return (np.arange(total) - starts[spread]).astype(np.int32)


def _inputs(rows: list[Any], names: list[str] | None) -> dict[str, pa.Array]:
    """Feature name → the column of every call's rows, in order."""
    matrix = _matrix(rows)
    if matrix is not None:
        return _columns(matrix, names)
    import pandas as pd

    frames = [
        r if isinstance(r, pd.DataFrame) else pd.DataFrame(np.asarray(r).reshape(len(r), -1))
        for r in rows
    ]
    frame = pd.concat(frames, ignore_index=True)
    columns = {}
    for name in frame.columns:
        values = frame[name].to_numpy()
        try:
            columns[str(name)] = pa.array(values, from_pandas=True)
        except (pa.ArrowException, ValueError, TypeError):
            # Arrow's own message quotes the value it could not convert, and this one lands
            # in the server log: a redacted field's value must not.
            kinds = ", ".join(sorted({type(v).__name__ for v in values}))
            raise ValueError(
                f"input {str(name)!r} holds values of types {kinds}, which make no one column"
            ) from None
    return columns


def _columns(matrix: np.ndarray, names: list[str] | None) -> dict[str, pa.Array]:
    """Feature name → column, of rows stacked as one 2-D array."""
    width = matrix.shape[1]
    labels = names if names is not None and len(names) == width else _indices(width)
    by_column = np.ascontiguousarray(matrix.T)  # each column contiguous: no copy per column
    return {label: pa.array(by_column[i]) for i, label in enumerate(labels)}


def _matrix(rows: list[Any]) -> np.ndarray | None:
    """Every call's rows as one 2-D array, when they are all arrays (a 1-D one is that many
    rows of one value); None when some are tables."""
    if set(map(type, rows)) != {np.ndarray}:
        return None
    matrix = stacked(rows)  # one C loop in the usual case: every call's rows of one width
    if matrix is not None:
        return matrix
    # 1-D and 2-D of other types mixed (or widths that differ: numpy raises)
    return np.concatenate([r.reshape(len(r), -1) for r in rows])


def _check_redactable(capture: CaptureConfig, inputs: dict[str, pa.Array]) -> None:
    """Fail closed: a redacted field that is not among the input columns by name (rows wider
    or narrower than the signature's features, columns named by number) may be in them under
    another name, in clear; such rows are not written at all.

    Raises:
        ValueError: naming the fields not found (the writer counts the rows as failed).
    """
    missing = [r.name for r in capture.redact if r.name not in inputs]
    if missing:
        raise ValueError(
            f"redacted field {', '.join(map(repr, missing))} is not among the captured input "
            f"columns ({', '.join(inputs) or 'none'}): the rows are not written, so that no "
            "redacted value is stored in clear"
        )


def _indices(width: int) -> list[str]:
    return [str(i) for i in range(width)]


def _outputs(block: CaptureBlock, total: int) -> dict[str, pa.Array]:
    matrix = block.outputs
    if matrix is None:
        matrix = prediction_matrix(block.predictions, block.counts)
    if matrix is None:  # call by call, to name the one that does not fit
        parts = []
        for inference_id, answer, n in zip(
            block.inference_ids, block.predictions, block.counts.tolist(), strict=True
        ):
            answer = np.asarray(answer)
            if answer.ndim == 0 or answer.shape[0] != n:
                raise ValueError(
                    f"inference {inference_id}: {answer.shape} predictions for {n} rows"
                )
            parts.append(answer.reshape(n, -1))
        matrix = np.concatenate(parts) if parts else np.empty((total, 1))
    names = output_columns(matrix.shape[1])
    return {name: pa.array(matrix[:, i], from_pandas=True) for i, name in enumerate(names)}


def _redacted(values: pa.Array, capture: CaptureConfig, feature: str, salt: bytes) -> pa.Array:
    mode = capture.mode(feature)
    if mode is None:
        return values
    if mode is Redaction.DROP:
        return pa.nulls(len(values), type=values.type)
    return pa.array([hash_value(v, salt) for v in values.to_pylist()], type=pa.string())


def hash_value(value: Any, salt: bytes) -> str | None:
    """A redacted value's hash (see the module docstring); None for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return hashlib.sha256(salt + b"\x1f" + str(value).encode()).hexdigest()
