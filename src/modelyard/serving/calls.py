"""The answered calls a worker's metrics drain takes, with the capture fields of the sampled
ones: one buffer, one record per call, for both the metrics and capture.

A server that keeps metrics and captures records each call once: its variant, endpoint, rows
and predictions in the dense columns (every call: the metrics need them all), and, for a call
sampled for capture, its inference id, protocol, start and latency in the sparse columns, with
the call's position in the dense ones, and the caller's own id for it, when it gave one
(``callers``: nothing is appended for a call without one). The metrics drain takes both,
stacks the rows and predictions once for its statistics, and hands the sampled calls, already
stacked, to the capture writer (``CaptureWriter.put``), whose thread only turns them into
Parquet.

The columns follow the protocol of :mod:`modelyard.serving.columns` (one producer appends to
every column of a record before counting it; one consumer takes whole records). A sampled
call's sparse values are appended before its dense ones and carry its position (the record
count before it), so the consumer takes exactly the sparse entries of the records it takes.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard.serving.columns import Sparse, column, numbers, placed, take


@dataclass(slots=True)
class CallBlock:
    """The calls one drain took, in order.

    Attributes:
        variants, endpoints, rows, predictions: One per call.
        sampled: Positions (in this block) of the calls sampled for capture, ascending.
        inference_ids, protocols, starts, latencies: One per sampled call, in that order
            (``starts``: when it entered the predict stack, by the recording layer's timer).
        callers: The caller's id of each sampled call (None where it gave none), or None
            when no sampled call has one.
    """

    variants: list[Any]
    endpoints: list[str]
    rows: list[Any]
    predictions: list[Any]
    sampled: np.ndarray
    inference_ids: list[str]
    protocols: list[str]
    starts: Any  # an array of float64 (see ``columns``)
    latencies: Any
    callers: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.variants)


class CallBuffer:
    """Answered calls, column by column (see the module docstring).

    Attributes:
        dense: variants, endpoints, rows, predictions (one value per call).
        sparse: positions, inference ids, protocols, starts, latencies (one per sampled call).
        callers: The caller's ids of the sampled calls that have one, by call position.
        limit: Calls held at most; the producer checks ``added - taken < limit``.
        added, taken: Calls appended whole (by the producer) and taken (by the consumer).
    """

    __slots__ = ("added", "callers", "dense", "limit", "sparse", "taken")

    def __init__(self, limit: int) -> None:
        self.dense: tuple[Any, ...] = tuple(column(kind) for kind in "oooo")
        self.sparse: tuple[Any, ...] = tuple(column(kind) for kind in "qoodd")
        self.callers = Sparse()
        self.limit = limit
        self.added = 0
        self.taken = 0

    def __len__(self) -> int:
        return self.added - self.taken

    def append(self, variant: Any, endpoint: str, rows: Any, predictions: Any) -> None:
        """Append one call not sampled for capture (the slow, general way; hot paths inline
        it). No bound check."""
        for values, value in zip(self.dense, (variant, endpoint, rows, predictions), strict=True):
            values.append(value)
        self.added += 1

    def take(self) -> CallBlock:
        """Every whole call appended so far, in order (the consumer)."""
        first = self.taken
        n = self.added - first
        variants, endpoints, rows, predictions = take(self.dense, n)
        k = bisect_left(self.sparse[0], first + n)  # sampled calls among those n
        positions, ids, protocols, starts, latencies = take(self.sparse, k)
        at, given = self.callers.take(first + n)
        self.taken = first + n
        absolute = numbers(positions)
        callers = placed(k, absolute.searchsorted(at), given)
        return CallBlock(
            variants, endpoints, rows, predictions, absolute - first, ids, protocols, starts,
            latencies, callers,
        )  # fmt: skip
