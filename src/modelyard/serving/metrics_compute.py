"""Vectorized statistics of many requests' rows and predictions at once (the drain thread's
arithmetic): per-feature counts, sums and extremes, text lengths, bucket counts, class counts.

Everything here takes the rows of one drain interval for one variant, concatenated, so that the
cost is a few numpy reductions per interval rather than per request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.domain.metric_stats import CARRY_SCALE
from modelyard.serving.stacking import stacked

#: Features beyond this many (in signature order) get no per-feature metrics: a label per
#: feature is a time series per feature, and a 784-pixel image model would make thousands.
MAX_FEATURES = 100
#: Output columns beyond this many get no per-output metrics.
MAX_OUTPUTS = 16
#: Values per slice of rows that :func:`column_stats` reduces at once (1 MiB of float64).
_SLICE_VALUES = 131_072


@dataclass
class ColumnStats:
    """Reductions over the present (non-missing) values of some columns."""

    names: list[str]
    present: np.ndarray
    missing: np.ndarray
    sums: np.ndarray
    lows: np.ndarray  # NaN for a column without a present value
    highs: np.ndarray
    #: Per column, the sum times ``CARRY_SCALE`` where it passed the largest float (its
    #: ``sums`` then 0), else 0: what ``MetricStats.carry`` takes.
    carried: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class TextStats:
    """One text column: present and missing counts, total length, length bucket counts."""

    present: int
    missing: int
    total_length: int
    buckets: np.ndarray


@dataclass
class InputStats:
    numeric: ColumnStats | None = None
    text: dict[str, TextStats] = field(default_factory=dict)


def bucket_counts(values: np.ndarray, bounds: Sequence[float]) -> np.ndarray:
    """How many ``values`` fall in each bucket: ``(bounds[i-1], bounds[i]]``, then above the
    last bound (Prometheus' ``le`` buckets). NaN values are not counted."""
    values = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    index = np.searchsorted(np.asarray(bounds, dtype=np.float64), values, side="left")
    return np.bincount(index, minlength=len(bounds) + 1)


def column_stats(x: np.ndarray, names: list[str]) -> ColumnStats:
    """Reductions of a 2-D array's columns; NaN is missing.

    A drain's rows (a second of one worker's requests: tens of MB) are reduced a slice at a
    time, every reduction over a slice while it is in the cache: each row is read from memory
    once, not once per reduction (six). The NaN-masked copy is made only for a slice that
    has a NaN.
    """
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    width = x.shape[1]
    missing = np.zeros(width, dtype=np.int64)
    sums = np.zeros(width, dtype=np.float64)
    lows = np.full(width, np.nan)
    highs = np.full(width, np.nan)
    step = max(1, _SLICE_VALUES // max(width, 1))
    with np.errstate(over="ignore"):  # an overflowed sum is carried below
        _reduce(x, step, missing, sums, lows, highs)
    carried = np.zeros(width, dtype=np.float64)
    # Infinite with finite extremes: finite values whose sum passed the largest float.
    for j in np.flatnonzero(~np.isfinite(sums) & np.isfinite(lows) & np.isfinite(highs)):
        column = x[:, j]
        sums[j], carried[j] = 0.0, _scaled_sum(column[~np.isnan(column)])
    return ColumnStats(
        names=names,
        present=len(x) - missing,
        missing=missing,
        sums=sums,
        lows=lows,
        highs=highs,
        carried=carried,
    )


def _scaled_sum(values: np.ndarray) -> float:
    """The sum of finite ``values`` times ``CARRY_SCALE``, which no float sum overflows."""
    return float((values * CARRY_SCALE).sum())


def _reduce(
    x: np.ndarray,
    step: int,
    missing: np.ndarray,
    sums: np.ndarray,
    lows: np.ndarray,
    highs: np.ndarray,
) -> None:
    for start in range(0, len(x), step):
        part = x[start : start + step]
        nan = np.isnan(part)
        gaps = nan.sum(axis=0)
        missing += gaps
        # A sum down the columns, not a matrix-vector product: BLAS hands a long one to its
        # threads, which then spin waiting for more work, on the cores serving requests
        # (+5 us of CPU per request at 64 callers, benchmarks/monitoring_profile.py).
        sums += (np.where(nan, 0.0, part) if gaps.any() else part).sum(axis=0)
        # fmin/fmax skip NaN (and an all-NaN column stays NaN) without nanmin's warning.
        np.fmin(lows, np.fmin.reduce(part, axis=0), out=lows)
        np.fmax(highs, np.fmax.reduce(part, axis=0), out=highs)


def feature_names(signature_names: Sequence[str] | None, count: int) -> list[str]:
    """The signature's input names when they fit, else ``"0"``, ``"1"`` …"""
    if signature_names is not None and len(signature_names) == count:
        return list(signature_names)
    return [str(i) for i in range(count)]


def as_floats(x: np.ndarray | None) -> np.ndarray | None:
    """``x`` as a C-ordered float64 array (itself when it is one); None when it is not
    numbers."""
    if x is None:
        return None
    try:
        return np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def stack(rows: Sequence[Any]) -> np.ndarray | None:
    """Many requests' rows as one float64 array (:func:`stacked`, as numbers); else None."""
    return as_floats(stacked(rows))


def input_stats(
    x: np.ndarray | None,
    rows: Sequence[Any],
    signature_names: Sequence[str] | None,
    text_bounds: Sequence[float],
) -> InputStats:
    """Per-feature statistics of many requests' rows: ``x`` when :func:`stack` could stack
    them, else the DataFrames among ``rows`` (models with text columns)."""
    out = InputStats()
    if x is not None:
        names = feature_names(signature_names, x.shape[1])[:MAX_FEATURES]
        out.numeric = column_stats(x[:, :MAX_FEATURES], names)
        return out
    # Tables (models with text columns), or rows of text as arrays or lists (what a handler's
    # ``input_fn`` may hand a text model), as tables with the features' names.
    frames = [as_frame(r, signature_names) for r in rows if len(r)]
    if frames:
        import pandas as pd

        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        frame = frame.iloc[:, :MAX_FEATURES]
        numeric = [c for c in frame.columns if frame[c].dtype.kind in "fiub"]
        if numeric:
            values = frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
            out.numeric = column_stats(values, [str(c) for c in numeric])
        for column in frame.columns:
            if column in numeric:
                continue
            series = frame[column]
            present = series.dropna()
            lengths = present.astype(str).str.len().to_numpy(dtype=np.float64)
            out.text[str(column)] = TextStats(
                present=len(present),
                missing=len(series) - len(present),
                total_length=int(lengths.sum()),
                buckets=bucket_counts(lengths, text_bounds),
            )
    return out


@dataclass
class OutputStats:
    """Predictions of one output column: numeric reductions and buckets, or class counts."""

    name: str
    present: int
    missing: int
    total: float = 0.0
    #: The total times ``CARRY_SCALE`` when it passed the largest float (``total`` then 0).
    carried: float = 0.0
    low: float = float("nan")
    high: float = float("nan")
    buckets: np.ndarray | None = None
    classes: dict[str, int] = field(default_factory=dict)


def output_stats(
    predictions: Sequence[np.ndarray],
    names: Sequence[str] | None,
    bounds: Sequence[float],
    matrix: np.ndarray | None = None,
) -> list[OutputStats]:
    """Per-output statistics of many requests' predictions (1-D: one output ``prediction``;
    2-D: one per column, named by the signature's outputs when they fit). Float outputs get
    numeric statistics; integer, boolean and string outputs are class labels. ``matrix``:
    the predictions already stacked (:func:`prediction_matrix`), when they could be."""
    y = matrix if matrix is not None else _output_matrix(predictions)
    if y is None:
        return []
    width = y.shape[1]
    labels = ["prediction"] if width == 1 else feature_names(names, width)
    stats = []
    for j in range(min(width, MAX_OUTPUTS)):
        column = y[:, j]
        if column.dtype.kind == "f":
            nan = np.isnan(column)
            present = column[~nan]
            low = float(present.min()) if len(present) else float("nan")
            high = float(present.max()) if len(present) else float("nan")
            with np.errstate(over="ignore"):
                total, carried = float(present.sum()), 0.0
            if not math.isfinite(total) and math.isfinite(low) and math.isfinite(high):
                total, carried = 0.0, _scaled_sum(present)
            stats.append(
                OutputStats(
                    name=labels[j],
                    present=len(present),
                    missing=int(nan.sum()),
                    total=total,
                    carried=carried,
                    low=low,
                    high=high,
                    buckets=bucket_counts(present, bounds),
                )
            )
            continue
        missing = 0
        if column.dtype.kind == "O":
            import pandas as pd

            null = np.asarray(pd.isna(column), dtype=bool)
            missing = int(null.sum())
            column = column[~null]
        values, counts = np.unique(column.astype(str), return_counts=True)
        stats.append(
            OutputStats(
                name=labels[j],
                present=int(counts.sum()),
                missing=missing,
                classes={str(v): int(c) for v, c in zip(values, counts, strict=True)},
            )
        )
    return stats


def _output_matrix(predictions: Sequence[Any]) -> np.ndarray | None:
    """Predictions of any shapes as one (rows, outputs) array: those of the first one's width."""
    arrays = [p if type(p) is np.ndarray else np.asarray(p) for p in predictions]
    if not arrays:
        return None
    if all(a.ndim == 1 for a in arrays):  # one prediction per row
        return (arrays[0] if len(arrays) == 1 else np.concatenate(arrays)).reshape(-1, 1)
    arrays = [a.reshape(len(a), -1) for a in arrays]
    width = arrays[0].shape[1]
    same = [a for a in arrays if a.shape[1] == width]
    return same[0] if len(same) == 1 else np.concatenate(same)


_MULTIPLIERS: dict[int, np.ndarray] = {}
#: A row's weight at position ``p`` in its request is ``2p`` plus this.
_FIRST_ROW = np.uint64(0x9E3779B97F4A7C15)
#: A request's digest is mixed with its row count times this.
_ONE_ROW = np.uint64(0xC2B2AE3D27D4EB4F)


def _multipliers(width: int) -> np.ndarray:
    found = _MULTIPLIERS.get(width)
    if found is None:
        rng = np.random.default_rng(width)  # fixed: equal rows hash alike in every drain
        found = rng.integers(1, 2**63, size=width, dtype=np.uint64) | np.uint64(1)
        _MULTIPLIERS[width] = found
    return found


def request_digests(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 64-bit digest per request of ``x`` (the stacked float64 rows; request ``i`` has
    ``lengths[i]`` of them, in order): equal rows in equal order, equal digest. Vectorized
    (a multilinear hash of the values' bits, each row weighted by its position), so a
    drain of thousands of requests hashes them in a few numpy operations."""
    # A product with the multipliers: no temporary as large as the rows (a multiply, then a
    # sum, wrote one: 0.35 us a request in monitoring_profile, a quarter of the drain). On
    # integers numpy runs its own loop on this thread, not BLAS's threads (``column_stats``).
    row_hash = np.matmul(x.view(np.uint64), _multipliers(x.shape[1]))
    row_hash ^= row_hash >> np.uint64(29)
    counts = lengths.astype(np.int64)
    if len(row_hash) == len(counts) and (counts == 1).all():  # one row each: the usual case
        row_hash *= _FIRST_ROW
        row_hash ^= _ONE_ROW
        return row_hash
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(len(x), dtype=np.uint64) - np.repeat(starts, counts).astype(np.uint64)
    row_hash *= position * np.uint64(2) + _FIRST_ROW
    digests = np.zeros(len(counts), dtype=np.uint64)
    some = counts > 0  # reduceat would misread a request without rows
    if some.any():
        digests[some] = np.add.reduceat(row_hash, starts[some], dtype=np.uint64)
    return digests ^ (counts.astype(np.uint64) * _ONE_ROW)


def as_frame(rows: Any, names: Sequence[str] | None = None) -> Any:
    """One request's rows as a DataFrame: itself when it is one, else its rows (an array or a
    list, of text or mixed values: not numbers) as columns named as :func:`feature_names`
    names them."""
    if hasattr(rows, "columns"):
        return rows
    import pandas as pd

    values = np.asarray(rows, dtype=object)
    values = values.reshape(len(values), -1)
    return pd.DataFrame(values, columns=feature_names(names, values.shape[1])).infer_objects()


def frame_digest(rows: Any) -> int:
    """The digest of one request whose rows are not all numbers (models with text columns):
    a DataFrame, or rows of text as an array or a list."""
    import pandas as pd

    rows = as_frame(rows)
    hashed = pd.util.hash_pandas_object(rows, index=False).to_numpy()
    return hash((tuple(map(str, rows.columns)), hashed.tobytes())) & 0xFFFFFFFFFFFFFFFF
