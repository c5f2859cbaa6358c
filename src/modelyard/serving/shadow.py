"""Shadow fan-out: the outermost layer of the predict stack sends each request's shadows a copy.

A request whose selection names shadows (``Selection.shadows``: the endpoint's shadow variants
sampled for it) is answered by its production variant as if there were none; once the answer
is known (or the error), each shadow gets a copy of the request's rows, queued without waiting
for anything. A few consumer tasks take the copies and run each as a request of its own through
the rest of the stack, under the shadow's variant: the metrics count its requests, errors and
latency, and capture records it with the production request's inference id (the same
``RequestMeta``). Nothing a shadow does reaches the caller: the copy is queued after the answer,
never awaited by it; the shadow's batcher predicts on a thread of its own (the deployer's
``shadow_executor``), never inline on the event loop; every error is caught here and logged at
most once a minute (the metrics count them all).

Bounds: at most ``max_queued`` copies wait (each holds the request's rows), whichever
shadows they are for; a copy that finds the queue full is dropped and counted per endpoint and
shadow variant (``counters``, shown as ``modelyard_shadow_dropped_total``). A request's copies
are queued together, in the order of its shadows: give the queue room for at least that many.

A queued copy holds a :class:`Lease` on its shadow from the moment it is queued, so the
deployer does not unload the shadow's model under it; the lease's clock restarts when the copy
starts, so the latency counted is the shadow's own, not its wait in the queue.

The copy is the production request's decoded rows, unchanged: a shadow is expected to take the
same inputs as the variants it shadows (its own ``input_fn``/``output_fn`` hooks do not run).

Wiring (``bootstrap.serving_app``)::

    shadows = ShadowWrapper(observer=metrics, max_queued=settings.shadow_queue_copies)
    build_app(..., wrappers=[shadows, monitoring], companions=[..., shadows.companion])
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.errors import ModelFailed
from modelyard.serving.batching import ModelFailure
from modelyard.serving.dataplane import Lease, RequestObserver
from modelyard.serving.stack import Call, Handler

if TYPE_CHECKING:
    import numpy as np

    from modelyard.serving.table import VariantRoute

log = logging.getLogger("modelyard.serving.shadow")

#: ``(endpoint, shadow variant, model version)``: what a dropped copy is counted under.
DropKey = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class ShadowCounters:
    """What a worker's shadow fan-out did since it started.

    Attributes:
        dropped: Copies dropped (the queue was full, or the worker was stopping), by endpoint,
            shadow variant and model version.
        queued: Copies waiting now (not counting those running).
    """

    dropped: dict[DropKey, int]
    queued: int


class ShadowWrapper:
    """The shadow fan-out layer (a :class:`~modelyard.serving.stack.Wrapper`, outermost) and
    the companion that drains its queue at shutdown.

    Args:
        observer: Told of each copy's outcome, as of any request (the metrics); None: nobody.
        max_queued: Copies waiting at most; one more is dropped and counted.
        consumers: Copies run at once (several, so a shadow's micro-batcher can batch them).
        drain_s: At shutdown, how long the copies already queued get to finish.
        log_every_s: At most one warning about failing shadows per this many seconds.
        clock: A monotonic clock (for the warnings' pace).
    """

    def __init__(
        self,
        observer: RequestObserver | None = None,
        max_queued: int = 1000,
        consumers: int = 8,
        drain_s: float = 5.0,
        log_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_queued < 1 or consumers < 1:
            raise ValueError("a shadow queue needs room for one copy and one consumer")
        self._observer = observer
        self._max = max_queued
        self._consumers = consumers
        self._drain_s = drain_s
        self._log_every = log_every_s
        self._clock = clock
        self._inner: Handler | None = None
        self._queue: asyncio.Queue[tuple[Lease, Any]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._dropped: dict[DropKey, int] = {}
        self._quiet_until = float("-inf")
        self._unlogged = 0  # failures since the last warning

    # -- the request path --------------------------------------------------------------------

    def wrap(self, inner: Handler) -> Handler:
        """The layer around ``inner`` (the rest of the stack, which the copies also go
        through). Wrap once: the copies run through the last ``inner`` given."""
        self._inner = inner
        send = self._send

        async def shadowed(call: Call) -> np.ndarray:
            shadows = call.selection.shadows
            if not shadows:
                return await inner(call)
            try:
                return await inner(call)
            finally:  # the answer (or its error) is settled: only now the copies
                send(call, shadows)

        return shadowed

    def _send(self, call: Call, shadows: tuple[VariantRoute, ...]) -> None:
        """Queue a copy of ``call`` for each shadow, or count it dropped. Never raises."""
        try:
            meta = call.meta
            if self._closed:
                for shadow in shadows:
                    self._drop(meta.endpoint, shadow)
                return
            queue = self._queue if self._queue is not None else self._begin()
            inner, observer, rows = self._inner, self._observer, call.rows
            assert inner is not None
            for shadow in shadows:
                if queue.full():
                    self._drop(meta.endpoint, shadow)
                else:  # the lease holds the shadow's model loaded while the copy waits
                    queue.put_nowait((Lease(meta, shadow.alone, inner, observer), rows))
        except Exception:  # a defect here must never fail the request it copies
            log.exception(
                "could not send a copy of inference %s to its shadows", call.meta.inference_id
            )

    def _drop(self, endpoint: str, shadow: VariantRoute) -> None:
        key = (endpoint, shadow.name, shadow.served.spec.version)
        self._dropped[key] = self._dropped.get(key, 0) + 1

    # -- the consumers -----------------------------------------------------------------------

    def _begin(self) -> asyncio.Queue[tuple[Lease, Any]]:
        """The queue and its consumers, on the running loop (at the first copy)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[Lease, Any]] = asyncio.Queue(self._max)
        self._queue = queue
        self._tasks = [
            loop.create_task(self._consume(queue), name=f"modelyard-shadow-{i}")
            for i in range(self._consumers)
        ]
        return queue

    async def _consume(self, queue: asyncio.Queue[tuple[Lease, Any]]) -> None:
        while True:
            lease, rows = await queue.get()
            try:
                await self._run(lease, rows)
            finally:
                queue.task_done()

    async def _run(self, lease: Lease, rows: Any) -> None:
        """Predict one copy as a request of the shadow's own; every error is kept here."""
        inner = self._inner
        assert inner is not None
        lease.started = time.perf_counter()  # its latency is the shadow's, not its wait
        try:
            with lease:  # the observer hears of its outcome when it ends
                try:
                    await inner(Call(lease.meta, lease.selection, rows))
                except ModelFailure as failure:  # counted as the caller's would be
                    cause = failure.cause
                    raise ModelFailed(
                        f"the model {lease.model_ref} raised {type(cause).__name__}: {cause}"
                    ) from cause
        except Exception as exc:
            self._failed(lease, exc)

    def _failed(self, lease: Lease, exc: Exception) -> None:
        """Log a shadow's failure: at warning at most once per ``log_every_s`` (a shadow that
        fails every request would flood the log), else at debug."""
        now = self._clock()
        if now < self._quiet_until:
            self._unlogged += 1
            log.debug("shadow %s failed on inference %s", lease.variant_name, lease.inference_id)
            return
        self._quiet_until = now + self._log_every
        since, self._unlogged = self._unlogged, 0
        log.warning(
            "shadow variant %s of endpoint %s (%s) failed on inference %s: %s "
            "(%s other shadow failures since the previous message; the metrics count them all)",
            lease.variant_name,
            lease.meta.endpoint,
            lease.model_ref,
            lease.inference_id,
            exc,
            since,
            exc_info=exc.__cause__ or exc,
        )

    # -- the metrics and the companion -------------------------------------------------------

    def counters(self) -> ShadowCounters:
        """What the fan-out did so far (safe to call from another thread)."""
        queue = self._queue
        return ShadowCounters(dict(self._dropped), queue.qsize() if queue is not None else 0)

    def companion(self, core: object) -> ShadowWrapper:
        """This wrapper as a serving companion (``build_app(companions=[...])``): it stops
        taking copies at shutdown and lets the queued ones finish."""
        return self

    async def start(self) -> None:
        """Nothing: the consumers start with the first copy."""

    async def stop(self) -> None:
        """Take no more copies, give the queued ones ``drain_s`` to finish, then cancel what
        is left (the copies never started are released and counted as dropped)."""
        self._closed = True
        queue, tasks = self._queue, self._tasks
        if queue is None:
            return
        try:
            async with asyncio.timeout(self._drain_s):
                await queue.join()
        except TimeoutError:
            log.warning(
                "shadow copies still queued or running after %ss at shutdown: cancelled",
                self._drain_s,
            )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while not queue.empty():
            lease, _ = queue.get_nowait()
            lease.release()
            self._drop(lease.meta.endpoint, lease.variant)
        self._queue, self._tasks = None, []
