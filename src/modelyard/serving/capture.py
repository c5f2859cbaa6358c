"""The capture wrapper: records a sample of each variant's requests, off the request path.

For each call of a variant that captures some but not all of its calls, the wrapper draws one
number from its random source; when it falls within the variant's capture percent (always at
100 %, never at 0), the call's rows, predictions, latency and time go to a :class:`CaptureSink`
(the worker's :class:`~modelyard.serving.capture_writer.CaptureWriter`), which only appends
them to a bounded in-memory queue: no copy, no I/O, no lock taken on the request path. A full
queue drops the record (and counts it); nothing here can fail or slow a request. A call whose
model raised is not captured: it has no outputs.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from modelyard.serving.stack import Handler, RequestMeta
from modelyard.serving.table import VariantRoute

log = logging.getLogger("modelyard.serving.capture")


class CaptureRecord:
    """One sampled call, as the wrapper saw it; turned into rows by the writer's thread.

    Attributes:
        meta: The request's metadata (endpoint, inference id, protocol).
        variant: The variant that answered (its model, capture config and salt).
        rows: The rows predicted (a 2-D array or a DataFrame), not copied.
        predictions: What the model returned for them.
        latency_s: Seconds from entering the predict stack to the answer (batching wait
            included).
        time: When the call entered the predict stack (seconds since the epoch, UTC).
    """

    __slots__ = ("latency_s", "meta", "predictions", "rows", "time", "variant")

    def __init__(
        self,
        meta: RequestMeta,
        variant: VariantRoute,
        rows: Any,
        predictions: np.ndarray,
        latency_s: float,
        time: float,
    ) -> None:
        self.meta = meta
        self.variant = variant
        self.rows = rows
        self.predictions = predictions
        self.latency_s = latency_s
        self.time = time


@dataclass(slots=True)
class CaptureBlock:
    """Captured calls answered by one variant route, column by column, in order: what the
    capture writer tables (its own queue's calls, or the metrics drain's, handed over with
    their rows and predictions already stacked), not one object per call.

    Attributes:
        variant: The route that answered (one model, one capture config, one schema).
        inference_ids, protocols: One per call.
        rows: Each call's rows (2-D arrays, or DataFrames for models that take text).
        predictions: Each call's predictions, a row per input row.
        micros: Each call's time, in whole microseconds since the epoch (int64).
        latencies: Each call's latency in seconds (float64).
        counts: Each call's number of rows (int64).
        matrix: Every call's rows stacked, one array row per input row (None: not stacked;
            ``rows`` are tabled instead).
        outputs: Every call's predictions stacked, (input rows, outputs) (None: not stacked).
        callers: Each call's caller id (SageMaker ``InferenceId``; None where it gave none),
            or None when no call has one (the usual case: the column is left out).
    """

    variant: VariantRoute
    inference_ids: list[str]
    protocols: list[str]
    rows: list[Any]
    predictions: list[Any]
    micros: np.ndarray
    latencies: np.ndarray
    counts: np.ndarray
    matrix: np.ndarray | None = None
    outputs: np.ndarray | None = None
    callers: list[str | None] | None = None

    @classmethod
    def of(cls, records: Sequence[CaptureRecord]) -> CaptureBlock:
        """The block of ``records`` (all answered by one variant route)."""
        rows = [r.rows for r in records]
        callers = [r.meta.caller_inference_id for r in records]
        return cls(
            variant=records[0].variant,
            inference_ids=[r.meta.inference_id for r in records],
            protocols=[r.meta.protocol for r in records],
            rows=rows,
            predictions=[r.predictions for r in records],
            micros=to_micros(np.array([r.time for r in records], dtype=np.float64)),
            latencies=np.array([r.latency_s for r in records], dtype=np.float64),
            counts=np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)),
            callers=callers if callers.count(None) < len(callers) else None,
        )

    def select(self, at: np.ndarray) -> CaptureBlock:
        """The calls at positions ``at`` (ascending), with their rows."""
        rows_at = row_positions(self.counts, at)
        return CaptureBlock(
            variant=self.variant,
            inference_ids=[self.inference_ids[i] for i in at.tolist()],
            protocols=[self.protocols[i] for i in at.tolist()],
            rows=[self.rows[i] for i in at.tolist()] if self.rows else [],
            predictions=[self.predictions[i] for i in at.tolist()] if self.predictions else [],
            micros=self.micros[at],
            latencies=self.latencies[at],
            counts=self.counts[at],
            matrix=None if self.matrix is None else self.matrix[rows_at],
            outputs=None if self.outputs is None else self.outputs[rows_at],
            callers=None if self.callers is None else [self.callers[i] for i in at.tolist()],
        )


def row_positions(counts: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The positions of the input rows of the calls at ``at``, when call ``i`` has
    ``counts[i]`` rows stacked in order."""
    if len(counts) == int(counts.sum()):  # one row per call: rows are calls
        return at
    starts = np.cumsum(counts) - counts
    taken = counts[at]
    first = np.repeat(starts[at], taken)
    within = np.arange(int(taken.sum())) - np.repeat(np.cumsum(taken) - taken, taken)
    return first + within


def to_micros(times: np.ndarray) -> np.ndarray:
    """Seconds since the epoch → whole microseconds (int64), as the ``time`` column stores
    them (and as the writer picks each row's hour)."""
    return np.rint(times * 1e6).astype(np.int64)


#: Takes one sampled call: ``(meta, variant, rows, predictions, latency_s, time)`` (the fields
#: of a :class:`CaptureRecord`, in its order); True when queued, False when dropped.
Recorder = Callable[[RequestMeta, VariantRoute, Any, np.ndarray, float, float], bool]


class CaptureSink(Protocol):
    """Where sampled calls go."""

    def offer(self, record: CaptureRecord) -> bool:
        """Take ``record`` for writing, or drop it (and count it) when full; never blocks,
        never raises. True when taken."""
        ...


class CaptureWrapper:
    """A predict-stack :class:`~modelyard.serving.stack.Wrapper` that samples calls into a
    sink, by each answering variant's capture percent.

    It is :class:`~modelyard.serving.monitoring.MonitoringWrapper` without metrics: a server
    that also keeps metrics uses that one, so that one layer records each call for both.

    Args:
        sink: Takes the sampled records (a
            :class:`~modelyard.serving.capture_writer.CaptureWriter` takes them column by
            column, without building a :class:`CaptureRecord`).
        draw: A source of numbers in [0, 1), one per call of a variant capturing more than 0
            and less than 100 % (inject a seeded one in tests).
        clock: Wall-clock seconds since the epoch (the captured ``time``).
        timer: A monotonic clock (the captured latency).
    """

    def __init__(
        self,
        sink: CaptureSink,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._sink = sink
        self._draw = draw
        self._clock = clock
        self._timer = timer

    def wrap(self, inner: Handler) -> Handler:
        from modelyard.serving.monitoring import MonitoringWrapper

        layer = MonitoringWrapper(
            capture=self._sink, draw=self._draw, clock=self._clock, timer=self._timer
        )
        return layer.wrap(inner)


def recorder(sink: CaptureSink) -> Recorder:
    """How a wrapper hands ``sink`` one sampled call: the sink's own column-by-column
    ``recorder()`` when it has one, else a :class:`CaptureRecord` to its ``offer``."""
    made = getattr(sink, "recorder", None)
    if made is not None:
        return made()
    offer = sink.offer

    def record(
        meta: RequestMeta,
        variant: VariantRoute,
        rows: Any,
        predictions: np.ndarray,
        latency_s: float,
        when: float,
    ) -> bool:
        return offer(CaptureRecord(meta, variant, rows, predictions, latency_s, when))

    return record
