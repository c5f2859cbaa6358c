"""The capture wrapper: records a sample of each variant's requests, off the request path.

For each call the wrapper draws one number from its random source; when it falls within the
answering variant's capture percent, the call's rows, predictions, latency and time go to a
:class:`CaptureSink` (the worker's :class:`~modelyard.serving.capture_writer.CaptureWriter`),
whose ``offer`` only appends to a bounded in-memory queue: no copy, no I/O, no lock taken on
the request path. A full queue drops the record (and counts it); nothing here can fail or slow
a request. A call whose model raised is not captured: it has no outputs.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from modelyard.serving.stack import Call, Handler, RequestMeta
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


class CaptureSink(Protocol):
    """Where sampled calls go."""

    def offer(self, record: CaptureRecord) -> bool:
        """Take ``record`` for writing, or drop it (and count it) when full; never blocks,
        never raises. True when taken."""
        ...


class CaptureWrapper:
    """A predict-stack :class:`~modelyard.serving.stack.Wrapper` that samples calls into a
    sink, by each answering variant's capture percent.

    Args:
        sink: Takes the sampled records.
        draw: A source of numbers in [0, 1), one per call (inject a seeded one in tests).
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
        sink, draw, clock, timer = self._sink, self._draw, self._clock, self._timer

        async def capture(call: Call) -> np.ndarray:
            variant = call.selection.variant
            percent = variant.capture.percent
            # draw() < 1, so 100 % takes every call and 0 % none.
            if percent <= 0 or draw() * 100.0 >= percent:
                return await inner(call)
            when = clock()
            start = timer()
            predictions = await inner(call)
            latency = timer() - start
            try:
                sink.offer(CaptureRecord(call.meta, variant, call.rows, predictions, latency, when))
            except Exception:  # a bug in the sink must never fail the request it records
                log.exception("could not queue a captured request")
            return predictions

        return capture
