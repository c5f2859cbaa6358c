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
    counts = np.fromiter((_row_count(r.rows) for r in records), dtype=np.int64, count=len(records))
    total = int(counts.sum())
    first = records[0]
    spec = first.variant.served.spec
    columns: dict[str, Any] = {
        "inference_id": pa.array(np.repeat([r.meta.inference_id for r in records], counts)),
        "time": pa.array(
            np.repeat(np.array([round(r.time * 1e6) for r in records], dtype=np.int64), counts),
            type=_TIME,
        ),
        "variant": pa.array(np.repeat([r.variant.name for r in records], counts)),
        "model": pa.array(np.repeat([spec.name] * len(records), counts)),
        "model_version": pa.array(np.full(total, spec.version, dtype=np.int64)),
        "latency_ms": pa.array(np.repeat([r.latency_s * 1e3 for r in records], counts)),
        "row": pa.array(np.concatenate([np.arange(n, dtype=np.int32) for n in counts])),
        "protocol": pa.array(np.repeat([r.meta.protocol for r in records], counts)),
    }
    names = spec.signature.feature_names if spec.signature is not None else None
    capture = first.variant.capture
    salt = first.variant.capture_salt.encode()
    for feature, values in _inputs(records, names).items():
        columns[input_column(feature)] = _redacted(values, capture, feature, salt)
    columns.update(_outputs(records, total))
    return pa.table(columns)


def _row_count(rows: Any) -> int:
    return len(rows)


def _inputs(records: Sequence[CaptureRecord], names: list[str] | None) -> dict[str, pa.Array]:
    """Feature name → the column of every record's rows, in order."""
    if all(isinstance(r.rows, np.ndarray) for r in records):
        matrix = np.concatenate([np.asarray(r.rows).reshape(len(r.rows), -1) for r in records])
        width = matrix.shape[1]
        labels = names if names is not None and len(names) == width else _indices(width)
        return {label: pa.array(matrix[:, i]) for i, label in enumerate(labels)}
    import pandas as pd

    frames = [
        r.rows
        if isinstance(r.rows, pd.DataFrame)
        else pd.DataFrame(np.asarray(r.rows).reshape(len(r.rows), -1))
        for r in records
    ]
    frame = pd.concat(frames, ignore_index=True)
    return {str(c): pa.array(frame[c].to_numpy(), from_pandas=True) for c in frame.columns}


def _indices(width: int) -> list[str]:
    return [str(i) for i in range(width)]


def _outputs(records: Sequence[CaptureRecord], total: int) -> dict[str, pa.Array]:
    parts = []
    for r in records:
        predictions = np.asarray(r.predictions)
        n = _row_count(r.rows)
        if predictions.ndim == 0 or predictions.shape[0] != n:
            raise ValueError(
                f"inference {r.meta.inference_id}: {predictions.shape} predictions for {n} rows"
            )
        parts.append(predictions.reshape(n, -1))
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
