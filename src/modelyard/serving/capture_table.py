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

from modelyard.domain.capture import CaptureConfig, Redaction, input_column, output_columns
from modelyard.serving.capture import CaptureRecord

_TIME = pa.timestamp("us", tz="UTC")


def build_table(records: Sequence[CaptureRecord]) -> pa.Table:
    """The rows of ``records``, all answered by one variant route (one model, one capture
    config), in order.

    Raises:
        ValueError, TypeError, pa.ArrowException: rows or predictions that cannot be tabled
            (the writer counts those records as failed).
    """
    # Column by column over the records with C loops (map, list comprehensions, numpy): this
    # runs for every captured request, ~2 us a record where per-record numpy calls took ~8.
    rows = [r.rows for r in records]
    counts = np.fromiter(map(len, rows), dtype=np.int64, count=len(records))
    total = int(counts.sum())
    # Per-record values are repeated once per row; one-row requests (the usual case) need no
    # repeat at all.
    spread = None if total == len(records) else np.repeat(np.arange(len(records)), counts)
    first = records[0]
    spec = first.variant.served.spec
    metas = [r.meta for r in records]
    times = np.fromiter((r.time for r in records), dtype=np.float64, count=len(records))
    latencies = np.fromiter((r.latency_s for r in records), dtype=np.float64, count=len(records))
    columns: dict[str, Any] = {
        "inference_id": _per_record([m.inference_id for m in metas], spread),
        "time": pa.array(_spread(np.rint(times * 1e6).astype(np.int64), spread), type=_TIME),
        "variant": pa.array([first.variant.name] * total, type=pa.string()),
        "model": pa.array([spec.name] * total, type=pa.string()),
        "model_version": pa.array(np.full(total, spec.version, dtype=np.int64)),
        "latency_ms": pa.array(_spread(latencies * 1e3, spread)),
        "row": pa.array(_row_numbers(counts, total, spread)),
        "protocol": _per_record([m.protocol for m in metas], spread),
    }
    names = spec.signature.feature_names if spec.signature is not None else None
    capture = first.variant.capture
    salt = first.variant.capture_salt.encode()
    inputs = _inputs(rows, names)
    _check_redactable(capture, inputs)
    for feature, values in inputs.items():
        columns[input_column(feature)] = _redacted(values, capture, feature, salt)
    columns.update(_outputs(records, counts, total))
    return pa.table(columns)


def _spread(values: np.ndarray, spread: np.ndarray | None) -> np.ndarray:
    """Per-record ``values``, one per row."""
    return values if spread is None else values[spread]


def _per_record(values: list[str], spread: np.ndarray | None) -> pa.Array:
    """A string column from per-record ``values``, one per row."""
    array = pa.array(values, type=pa.string())
    return array if spread is None else array.take(pa.array(spread))


def _row_numbers(counts: np.ndarray, total: int, spread: np.ndarray | None) -> np.ndarray:
    """Each row's index within its request."""
    if spread is None:
        return np.zeros(total, dtype=np.int32)
    starts = np.cumsum(counts) - counts
    return (np.arange(total) - starts[spread]).astype(np.int32)


def _inputs(rows: list[Any], names: list[str] | None) -> dict[str, pa.Array]:
    """Feature name → the column of every record's rows, in order."""
    if all(isinstance(r, np.ndarray) for r in rows):
        if all(r.ndim == 2 for r in rows):
            matrix = np.concatenate(rows)
        else:
            matrix = np.concatenate([r.reshape(len(r), -1) for r in rows])
        width = matrix.shape[1]
        labels = names if names is not None and len(names) == width else _indices(width)
        by_column = np.ascontiguousarray(matrix.T)  # each column contiguous: no copy per column
        return {label: pa.array(by_column[i]) for i, label in enumerate(labels)}
    import pandas as pd

    frames = [
        r if isinstance(r, pd.DataFrame) else pd.DataFrame(np.asarray(r).reshape(len(r), -1))
        for r in rows
    ]
    frame = pd.concat(frames, ignore_index=True)
    return {str(c): pa.array(frame[c].to_numpy(), from_pandas=True) for c in frame.columns}


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


def _outputs(
    records: Sequence[CaptureRecord], counts: np.ndarray, total: int
) -> dict[str, pa.Array]:
    predictions = [r.predictions for r in records]
    matrix = _stacked(predictions, counts)
    if matrix is None:  # record by record, to name the one that does not fit
        parts = []
        for r, n in zip(records, counts.tolist(), strict=True):
            answer = np.asarray(r.predictions)
            if answer.ndim == 0 or answer.shape[0] != n:
                raise ValueError(
                    f"inference {r.meta.inference_id}: {answer.shape} predictions for {n} rows"
                )
            parts.append(answer.reshape(n, -1))
        matrix = np.concatenate(parts) if parts else np.empty((total, 1))
    names = output_columns(matrix.shape[1])
    return {name: pa.array(matrix[:, i], from_pandas=True) for i, name in enumerate(names)}


def _stacked(predictions: list[Any], counts: np.ndarray) -> np.ndarray | None:
    """Every record's predictions as one (rows, outputs) matrix, when all are arrays of one
    rank (1 or 2) with a row per input row; else None."""
    if not all(isinstance(p, np.ndarray) for p in predictions):
        return None
    ranks = {p.ndim for p in predictions}
    if len(ranks) != 1 or not ranks <= {1, 2}:
        return None
    lengths = np.fromiter(map(len, predictions), dtype=np.int64, count=len(predictions))
    if not np.array_equal(lengths, counts):
        return None
    matrix = np.concatenate(predictions)
    return matrix.reshape(len(matrix), -1)


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
