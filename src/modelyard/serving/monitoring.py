"""The monitoring layer of the predict stack: one wrapper that records each call for the
metrics and, when sampled, for capture.

A server that both captures and keeps metrics wraps its predict stack once with this layer
rather than once per feature (a coroutine per layer per request), and records each call once:
its variant, endpoint, rows and predictions in the metrics' buffer (``calls``), with, for a
call sampled for capture, its inference id (and the caller's, when it gave one), protocol,
start and latency beside them and its rows reserved in the capture writer's queue. The
metrics drain stacks the rows and predictions once for its statistics and hands the sampled
calls, stacked, to the capture writer. Values
are kept column by column (:mod:`modelyard.serving.columns`): no object per request is left
for the garbage collector, and the threads get their columns ready for NumPy. With capture
alone (or a sink other than the capture writer), sampled calls go to the sink's own queue.

Capture sampling: a variant capturing more than 0 and less than 100 % of its calls draws one
number per call; at 100 % every call is captured and at 0 none, without a draw. A call whose
model raised is recorded by neither (the metrics count it from its outcome; it has no outputs
to capture). Nothing here can fail a request: a full buffer drops the record and counts it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelyard.serving.capture import CaptureSink, recorder
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.serving.stack import Call, Handler

if TYPE_CHECKING:
    import numpy as np

    from modelyard.serving.metrics import Metrics
    from modelyard.serving.table import VariantRoute

log = logging.getLogger("modelyard.serving.capture")


class MonitoringWrapper:
    """A predict-stack :class:`~modelyard.serving.stack.Wrapper` recording calls for the
    metrics (every answered call) and capture (the sampled ones).

    Args:
        capture: Takes the sampled calls (None: no capture).
        metrics: Takes every answered call's rows and predictions (None: no metrics).
        draw: A source of numbers in [0, 1) for sampling (inject a seeded one in tests).
        clock: Wall-clock seconds since the epoch (the captured ``time``).
        timer: A monotonic clock (the captured latency: from entering this layer to the
            answer, batching wait included).
    """

    def __init__(
        self,
        capture: CaptureSink | None = None,
        metrics: Metrics | None = None,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._capture = capture
        self._metrics = metrics
        self._draw = draw
        self._clock = clock
        self._timer = timer

    def records(self, variant: VariantRoute) -> bool:
        """Whether this layer records a call answered by ``variant``: every call when it keeps
        metrics, else only those of a variant that captures some of its calls."""
        return self._metrics is not None or (
            self._capture is not None and variant.capture.percent > 0.0
        )

    def wrap(self, inner: Handler) -> Handler:
        capture, metrics = self._capture, self._metrics
        if capture is None:
            return inner if metrics is None else _measured(inner, metrics)
        if metrics is not None and isinstance(capture, CaptureWriter):
            return _shared(inner, capture, metrics, self._draw, self._clock, self._timer)
        draw, clock, timer = self._draw, self._clock, self._timer
        record = recorder(capture)
        if metrics is not None:
            measure = metrics.io_recorder()
        else:

            def measure(variant: object, endpoint: str, rows: object, out: object) -> None:
                return None

        async def monitored(call: Call) -> np.ndarray:
            variant = call.selection.variant
            percent = variant.capture.percent
            if percent <= 0.0 or (percent < 100.0 and draw() * 100.0 >= percent):
                out = await inner(call)
                measure(variant, call.meta.endpoint, call.rows, out)
                return out
            when = clock()
            start = timer()
            out = await inner(call)
            predicted = call.predicted  # a shadow's copy: predicted earlier, in a batch
            latency = timer() - start if predicted is None else predicted.seconds
            meta, rows = call.meta, call.rows
            measure(variant, meta.endpoint, rows, out)
            try:
                record(meta, variant, rows, out, latency, when)
            except Exception:  # a bug in the sink must never fail the request it records
                log.exception("could not queue a captured request")
            return out

        return monitored


def _measured(inner: Handler, metrics: Metrics) -> Handler:
    """The layer with metrics only."""
    measure = metrics.io_recorder()

    async def measured(call: Call) -> np.ndarray:
        out = await inner(call)
        measure(call.selection.variant, call.meta.endpoint, call.rows, out)
        return out

    return measured


def _shared(
    inner: Handler,
    writer: CaptureWriter,
    metrics: Metrics,
    draw: Callable[[], float],
    clock: Callable[[], float],
    timer: Callable[[], float],
) -> Handler:
    """The layer with both, sharing the metrics' buffer (``calls``): a sampled call's rows are
    reserved in the capture writer's queue, and its capture fields kept beside the metrics'
    record of it, which the drain hands to the writer."""
    metrics.share_with(writer, clock, timer)
    alone = recorder(writer)  # when the metrics' buffer is full: capture on its own
    calls = metrics.calls
    variants, endpoints, inputs, outputs = (c.append for c in calls.dense)
    positions, ids, protocols, starts, latencies = (c.append for c in calls.sparse)
    caller_at, callers = calls.callers.at.append, calls.callers.values.append
    reserve, limit = writer.reserve, calls.limit

    async def monitored(call: Call) -> np.ndarray:
        variant = call.selection.variant
        percent = variant.capture.percent
        sampled = percent >= 100.0 or (percent > 0.0 and draw() * 100.0 < percent)
        start = timer() if sampled else 0.0
        out = await inner(call)
        if sampled:  # a shadow's copy was predicted earlier, in a batch: its own time
            predicted = call.predicted
            latency = timer() - start if predicted is None else predicted.seconds
        else:
            latency = 0.0
        meta, rows = call.meta, call.rows
        try:
            if calls.added - calls.taken >= limit:
                metrics.dropped += 1  # the metrics lose it; capture takes it on its own
                if sampled:
                    alone(meta, variant, rows, out, latency, start + clock() - timer())
                return out
            if sampled and reserve(len(rows)):  # capture fields first, with the position
                latencies(latency)
                positions(calls.added)
                ids(meta.inference_id)
                caller = meta.caller_inference_id
                if caller is not None:  # a SageMaker InferenceId: rare, kept apart
                    caller_at(calls.added)
                    callers(caller)
                protocols(meta.protocol)
                starts(start)  # a time once the drain adds the clock's offset
            variants(variant)
            endpoints(meta.endpoint)
            inputs(rows)
            outputs(out)
            calls.added += 1
        except Exception:  # a bug here must never fail the request it records
            log.exception("could not record a request for capture and metrics")
        return out

    return monitored
