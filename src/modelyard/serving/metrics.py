"""Metrics of one server worker: the predict-stack wrapper, the request observer, ``GET /metrics``
and the drain companion, around one set of buffers.

On the request path nothing is computed: the predict-stack layer (``monitoring``) appends each
answered call's variant, endpoint, rows and predictions, and the core's observer each request's
outcome (variant, protocol, duration, error, body sizes), column by column
(``columns``: no object per request for the garbage collector to walk). A drain thread
(``metrics_drain``) takes them every ``drain_s`` (1 s) and folds them, with vectorized
numpy, into the worker's Prometheus values (``metrics_files``) and its per-minute series
(``metrics_series``). So ``/metrics`` lags the requests by up to one drain interval; the
buffers are bounded, and a record that does not fit is counted in
``modelyard_metrics_dropped_total`` instead. The worker's capture writer, when given, has its
counters read at each drain too (``metrics_capture``: rows captured, dropped, written and
failed); when capture shares the calls' buffer (:meth:`Metrics.share_with`), the drain also
hands it the sampled calls (``metrics_calls``). The worker's shadow fan-out, when given
(:meth:`Metrics.count_shadows`), has its dropped copies read at each drain (``metrics_shadow``).

Wiring (``bootstrap.serving_app``)::

    metrics = Metrics(directory, sink=series_store, flush_s=10, capture=writer.counters)
    shadows = ShadowWrapper(observer=metrics)
    metrics.count_shadows(shadows.counters)
    build_app(..., wrappers=[shadows, MonitoringWrapper(capture=writer, metrics=metrics)],
              observer=metrics, metrics=metrics, companions=[..., metrics.companion])
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.domain.metrics import MetricSeriesSink
from modelyard.serving.calls import CallBuffer
from modelyard.serving.columns import ColumnBuffer
from modelyard.serving.http import Receive, Scope, Send, respond
from modelyard.serving.metrics_files import CONTENT_TYPE, exposition
from modelyard.serving.stack import Handler, RequestMeta

if TYPE_CHECKING:
    from modelyard.serving.capture_writer import CaptureCounters, CaptureWriter
    from modelyard.serving.dataplane import DataPlane, Lease
    from modelyard.serving.metrics_worker import MetricsCompanion
    from modelyard.serving.shadow import ShadowCounters
    from modelyard.serving.table import VariantRoute

#: Request records held between drains at most (a few seconds of a busy worker).
MAX_BUFFERED = 50_000


class Metrics:
    """One worker's metrics (a :class:`~modelyard.serving.stack.Wrapper`, a
    :class:`~modelyard.serving.dataplane.RequestObserver` and the ``/metrics`` route).

    Args:
        directory: The server run's metrics directory, shared by its workers.
        sink: Where the per-minute series go (None: not kept).
        drain_s: How often the drain thread folds the buffers into the metrics. Each drain
            has a cost of its own (per feature and per metric, and the thread's cold start
            when it takes the GIL from a busy event loop): measured at 64 connections, a drain
            every 0.2 s cost 2 us of CPU a request more than one a second.
        flush_s: How often the per-minute series are written to ``sink``.
        repeat_window_s: Rows answered again within this many seconds count as repeated.
        max_buffered: Records held between drains at most.
        remove_directory: Delete ``directory`` when the worker stops (a folder of its own).
        capture: The worker's capture writer's ``counters`` (None: no capture counts).
        series_clock: Wall-clock seconds since the epoch: the minute each drain's numbers are
            added to (inject one in tests).
    """

    def __init__(
        self,
        directory: Path,
        *,
        sink: MetricSeriesSink | None = None,
        drain_s: float = 1.0,
        flush_s: float = 10.0,
        repeat_window_s: float = 60.0,
        max_buffered: int = MAX_BUFFERED,
        remove_directory: bool = False,
        capture: Callable[[], CaptureCounters] | None = None,
        series_clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.sink = sink
        self.drain_s = drain_s
        self.flush_s = flush_s
        self.repeat_window_s = repeat_window_s
        self._max = max_buffered
        self.remove_directory = remove_directory
        self.capture = capture
        #: The shadow fan-out's ``counters`` (see :meth:`count_shadows`).
        self.shadows: Callable[[], ShadowCounters] | None = None
        self.series_clock = series_clock
        # Filled on the event loop, taken by the drain thread (see ``columns``): each request's
        # outcome (endpoint, protocol, variant, seconds taken, error, request and response
        # bytes), and each answered call's (variant, endpoint, rows, predictions).
        self.outcomes = ColumnBuffer("ooodoqq", max_buffered)
        self._out = tuple(c.append for c in self.outcomes.columns)
        self.calls = CallBuffer(max_buffered)
        #: Where the drain hands the calls sampled for capture (see :meth:`share_with`).
        self.capture_writer: CaptureWriter | None = None
        self._companion: MetricsCompanion | None = None
        self._clock: Callable[[], float] = time.time
        self._timer: Callable[[], float] = time.perf_counter
        # Rare (no variant could be chosen): one tuple each, popped by the drain thread.
        self.refusals: deque[tuple[str, str, BaseException]] = deque()
        self.dropped = 0

    # -- the request path --------------------------------------------------------------------

    def wrap(self, inner: Handler) -> Handler:
        """The predict-stack layer: remembers each answered call's rows and predictions (a
        :class:`~modelyard.serving.monitoring.MonitoringWrapper` without capture)."""
        from modelyard.serving.monitoring import MonitoringWrapper

        return MonitoringWrapper(metrics=self).wrap(inner)

    def io_recorder(self) -> Callable[[VariantRoute, str, Any, Any], None]:
        """How the predict-stack layer hands over one answered call: ``(variant, endpoint,
        rows, predictions)``, kept or (buffer full) counted as dropped."""
        buffer = self.calls
        variants, endpoints, rows, predictions = (c.append for c in buffer.dense)
        limit = buffer.limit

        def record(variant: VariantRoute, endpoint: str, given: Any, answer: Any) -> None:
            if buffer.added - buffer.taken < limit:
                variants(variant)
                endpoints(endpoint)
                rows(given)
                predictions(answer)
                buffer.added += 1
            else:
                self.dropped += 1

        return record

    def share_with(
        self,
        writer: CaptureWriter,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Keep the calls sampled for capture in this buffer too (one record per call): the
        drain hands them to ``writer``, already stacked; ``writer`` asks for them before a
        flush and at stop (its ``feeder``). Their starts are ``timer``'s; ``clock`` gives the
        wall-clock time they are stored at."""
        self.capture_writer = writer
        self._clock, self._timer = clock, timer
        writer.feeder = self.feed

    def count_shadows(self, read: Callable[[], ShadowCounters]) -> None:
        """Count the shadow fan-out's dropped copies (``read``: its ``counters``, called from
        the drain thread). Call it before the drain companion starts."""
        self.shadows = read

    def clock_offset(self) -> float:
        """Wall-clock seconds minus the recording timer's, now (the drain turns sampled calls'
        starts into times with it)."""
        return self._clock() - self._timer()

    def feed(self) -> None:
        """Drain now (from another thread), so that the sampled calls held here reach the
        capture writer; nothing before the drain companion starts."""
        companion = self._companion
        if companion is not None:
            companion.drain_now()

    def finished(self, lease: Lease, error: BaseException | None) -> None:
        """The core's observer: a request's outcome, once its lease ends."""
        buffer = self.outcomes
        if buffer.added - buffer.taken < buffer.limit:
            meta = lease.meta
            endpoint, protocol, variant, took, errors, sizes_in, sizes_out = self._out
            endpoint(meta.endpoint)
            protocol(meta.protocol)
            variant(lease.selection.variant)
            took(time.perf_counter() - lease.started)
            errors(error)
            sizes_in(lease.request_bytes)
            sizes_out(lease.response_bytes)
            buffer.added += 1
        else:
            self.dropped += 1

    def refused(self, meta: RequestMeta, error: BaseException) -> None:
        """The core's observer: no variant could be chosen for this request."""
        if len(self.refusals) < self._max:
            self.refusals.append((meta.endpoint, meta.protocol, error))
        else:
            self.dropped += 1

    # -- GET /metrics ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``GET /metrics``: every worker's values, merged (read off the event loop)."""
        body = await asyncio.to_thread(exposition, self.directory)
        # Which worker answered: any of them gives the same sums.
        await respond(send, 200, body, CONTENT_TYPE, [(b"x-modelyard-worker", self._pid())])

    @staticmethod
    def _pid() -> bytes:
        return str(os.getpid()).encode()

    # -- the drain companion -----------------------------------------------------------------

    def companion(self, core: DataPlane) -> MetricsCompanion:
        """The companion that drains the buffers for the life of the worker."""
        from modelyard.serving.metrics_worker import MetricsCompanion

        self._companion = MetricsCompanion(self, core.deployer)
        return self._companion
