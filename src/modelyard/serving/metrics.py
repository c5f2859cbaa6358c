"""Metrics of one server worker: the predict-stack wrapper, the request observer, ``GET /metrics``
and the drain companion, around one set of buffers.

On the request path nothing is computed: the wrapper appends ``(endpoint, variant, rows,
predictions)`` and the core's observer appends the request's outcome (variant, protocol, start
and end times, error, body sizes), each a tuple on a deque. A drain thread (``metrics_drain``)
takes them every ``drain_s`` (~0.2 s) and folds them, with vectorized numpy, into the worker's
Prometheus values (``metrics_files``) and its per-minute series (``metrics_series``). So
``/metrics`` lags the requests by up to one drain interval; the buffers are bounded, and a
record that does not fit is counted in ``modelyard_metrics_dropped_total`` instead. The
worker's capture writer, when given, has its counters read at each drain too
(``metrics_capture``: rows captured, dropped, written and failed).

Wiring (``bootstrap.serving_app``)::

    metrics = Metrics(directory, sink=series_store, flush_s=10, capture=writer.counters)
    build_app(..., wrappers=[metrics, ...], observer=metrics, metrics=metrics,
              companions=[..., metrics.companion])
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from modelyard.domain.metrics import MetricSeriesSink
from modelyard.serving.http import Receive, Scope, Send, respond
from modelyard.serving.metrics_files import CONTENT_TYPE, exposition
from modelyard.serving.stack import Call, Handler, RequestMeta

if TYPE_CHECKING:
    import numpy as np

    from modelyard.serving.capture_writer import CaptureCounters
    from modelyard.serving.dataplane import DataPlane, Lease
    from modelyard.serving.metrics_worker import MetricsCompanion

#: Request records held between drains at most (about 10 s of a busy worker).
MAX_BUFFERED = 50_000


class Metrics:
    """One worker's metrics (a :class:`~modelyard.serving.stack.Wrapper`, a
    :class:`~modelyard.serving.dataplane.RequestObserver` and the ``/metrics`` route).

    Args:
        directory: The server run's metrics directory, shared by its workers.
        sink: Where the per-minute series go (None: not kept).
        drain_s: How often the drain thread folds the buffers into the metrics.
        flush_s: How often the per-minute series are written to ``sink``.
        repeat_window_s: Rows answered again within this many seconds count as repeated.
        max_buffered: Records held between drains at most.
        remove_directory: Delete ``directory`` when the worker stops (a folder of its own).
        capture: The worker's capture writer's ``counters`` (None: no capture counts).
    """

    def __init__(
        self,
        directory: Path,
        *,
        sink: MetricSeriesSink | None = None,
        drain_s: float = 0.2,
        flush_s: float = 10.0,
        repeat_window_s: float = 60.0,
        max_buffered: int = MAX_BUFFERED,
        remove_directory: bool = False,
        capture: Callable[[], CaptureCounters] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.sink = sink
        self.drain_s = drain_s
        self.flush_s = flush_s
        self.repeat_window_s = repeat_window_s
        self._max = max_buffered
        self.remove_directory = remove_directory
        self.capture = capture
        # Appended on the event loop, popped by the drain thread (deque ops are atomic).
        self.outcomes: deque[tuple[Any, ...]] = deque()
        self.io: deque[tuple[Any, ...]] = deque()
        self.refusals: deque[tuple[str, str, BaseException]] = deque()
        self.dropped = 0

    # -- the request path --------------------------------------------------------------------

    def wrap(self, inner: Handler) -> Handler:
        """The predict-stack layer: remembers each answered call's rows and predictions."""
        io = self.io
        limit = self._max

        async def measured(call: Call) -> np.ndarray:
            out = await inner(call)
            if len(io) < limit:
                io.append((call.meta.endpoint, call.selection.variant, call.rows, out))
            else:
                self.dropped += 1
            return out

        return measured

    def finished(self, lease: Lease, error: BaseException | None) -> None:
        """The core's observer: a request's outcome, once its lease ends."""
        if len(self.outcomes) < self._max:
            self.outcomes.append(
                (
                    lease.meta.endpoint,
                    lease.meta.protocol,
                    lease.selection.variant,
                    lease.started,
                    perf_counter(),
                    error,
                    lease.request_bytes,
                    lease.response_bytes,
                )
            )
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

        return MetricsCompanion(self, core.deployer)
