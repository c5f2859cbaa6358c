"""Shadow fan-out: the outermost layer of the predict stack sends each request's shadows a copy.

A request whose selection names shadows (``Selection.shadows``: the endpoint's shadow variants
sampled for it) is answered by its production variant as if there were none; once the answer
is known (or the error), each shadow gets a copy of the request's rows, set aside without
waiting for anything. Nothing a shadow does reaches the caller: the copy is set aside after the
answer, never awaited by it, and every error is caught here and logged at most once a minute
(the metrics count them all).

Batches, not copies: what a copy costs the server is what counts (a shadow at 100 % doubles the
requests), so the copies are gathered and predicted in batches, each with one hand-off to one
of the shadows' threads (the deployer's ``shadow_executor``; never the event loop, never the
predict thread the answering variants share). Each shadow has a lane of its own: its waiting
copies and one consumer task. A batch goes when the waiting copies hold ``max_batch_size`` rows
or the oldest copy has waited ``linger_s`` (the copies that gather while a batch runs wait the
same way); the consumer takes what waits, up to ``HAND_OFF_BATCHES`` batches, and predicts them
in one hand-off, batch by batch (:meth:`MicroBatcher.predict_batches`; each copy's latency is
its own batch's model call). Shadows do not wait for one another: a shadow stuck in its model
holds up its own lane and one of the shadows' threads, nothing else. A lane closes when it is
empty (the next copy opens another), so a retired shadow leaves no task behind. Then each copy
goes through the rest of the stack as a request of its own under the shadow's variant, answered
by its share of the batch (``Call.predicted``): the metrics count its request, error and
latency (the batch's prediction time), and capture records it with the production request's
inference id (the same ``RequestMeta``).

Bounds: at most ``max_queued`` copies, holding at most ``max_queued_rows`` rows in all, wait
for each shadow, so a stuck shadow fills its own queue and never takes the room of another.
Both bounds are needed: each copy holds its request's rows, so copies alone bound the count,
not the memory (a thousand copies of a 5 MB request are 5 GB). A copy that finds no room, by
either bound, is dropped and counted per endpoint and shadow variant (``counters``, shown as
``modelyard_shadow_dropped_total``); so is a copy of more than ``max_queued_rows`` rows, which
no lane could ever hold: it is dropped at once, even for a shadow with nothing waiting. The
rows a batch holds while it is predicted are not counted: at most ``HAND_OFF_BATCHES`` times
the shadow's ``max_batch_size``, or one copy.

A waiting copy counts as in flight on its shadow's model from the moment it is set aside, so the
deployer does not unload the model under it. Setting a copy aside is all the request pays: an
append and a count, with no object of its own. The rest is per batch, or is the shadow's own
request: when a layer below records calls (metrics, capture) or an observer hears of outcomes,
each copy then goes through them under a :class:`Lease` of its own, whose clock starts with its
batch, so the latency counted is the shadow's, not its wait; when none does (a server with
metrics and capture off), a batch costs one hand-off and its failures are logged.

The copy is the production request's decoded rows: a shadow takes the same inputs as the
variants it shadows (its own ``input_fn``/``output_fn`` hooks do not run). When its model names
them in another order, or takes fewer, the copy holds the columns it takes, in its order
(``VariantRoute.shadow_columns``). The control plane refuses a shadow that takes an input the
production variant does not decode; should such a config be served (stored before that check),
the shadow's copies of that variant's requests are dropped and counted, never sent with one
input's values under another's name.

Wiring (``bootstrap.serving_app``)::

    shadows = ShadowWrapper(
        observer=metrics,
        max_queued=settings.shadow_queue_copies,
        max_queued_rows=settings.shadow_queue_rows,
    )
    build_app(..., wrappers=[shadows, monitoring], companions=[..., shadows.companion])
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import ModelFailed
from modelyard.serving.batching import ModelFailure
from modelyard.serving.dataplane import Lease, RequestObserver
from modelyard.serving.stack import Call, Handler, Predicted, batched

if TYPE_CHECKING:
    from modelyard.serving.stack import RequestMeta
    from modelyard.serving.table import ShadowColumns, VariantRoute

log = logging.getLogger("modelyard.serving.shadow")

#: ``(endpoint, shadow variant, model version)``: what a dropped copy is counted under.
DropKey = tuple[str, str, int]
#: Batches of a shadow's ``max_batch_size`` rows predicted in one hand-off to its thread, at
#: most, when that many wait: under load a hand-off (the thread taking the GIL from a busy
#: event loop, and back) took long enough that one batch per hand-off fell behind the copies.
HAND_OFF_BATCHES = 8

#: A copy waiting for its batch: the request's metadata and rows. While it waits it counts as
#: in flight on its shadow's model (``served.inflight``), so the model is not unloaded under it.
Copy = tuple["RequestMeta", Any]


@dataclass(frozen=True, slots=True)
class ShadowCounters:
    """What a worker's shadow fan-out did since it started.

    Attributes:
        dropped: Copies dropped (no room, or the worker was stopping), by endpoint, shadow
            variant and model version.
        queued: Copies waiting now, for all shadows (not counting the batches being
            predicted).
    """

    dropped: dict[DropKey, int]
    queued: int


class _Lane:
    """One shadow's waiting copies (in arrival order) and the consumer that predicts them."""

    __slots__ = ("copies", "rows", "task", "timer", "wake")

    def __init__(self) -> None:
        self.copies: list[Copy] = []
        self.rows = 0  # the waiting copies' rows: a batch is ``max_batch_size`` rows
        self.wake = asyncio.Event()  # set: a batch is ready to go
        self.timer: asyncio.TimerHandle | None = None  # the linger of the gathering copies
        self.task: asyncio.Task[None] | None = None


class ShadowWrapper:
    """The shadow fan-out layer (a :class:`~modelyard.serving.stack.Wrapper`, outermost) and
    the companion that finishes its waiting copies at shutdown.

    Args:
        observer: Told of each copy's outcome, as of any request (the metrics); None: nobody.
        max_queued: Copies waiting at most for each shadow; one more is dropped and counted.
        max_queued_rows: Rows waiting at most for each shadow, all its copies together; a copy
            that would take them past it is dropped and counted, and so is a copy of more
            rows than this (whatever waits).
        linger_s: How long a copy that finds no batch gathering waits for others to join it
            (a shadow is not waited for by anyone; a batch per copy would cost a thread
            hand-off per copy). A shadow's ``max_batch_size`` rows start a batch at once.
        drain_s: At shutdown, how long the waiting copies get to finish.
        log_every_s: At most one warning about failing shadows per this many seconds.
        clock: A monotonic clock (for the warnings' pace).
        records: Whether the layers below record a call of a shadow variant (the monitoring
            layer's ``records``); None: they record every call. When neither they nor the
            observer record a shadow's copies, its batches skip the per-copy pass.
    """

    def __init__(
        self,
        observer: RequestObserver | None = None,
        max_queued: int = 1000,
        max_queued_rows: int = 50_000,
        linger_s: float = 0.02,
        drain_s: float = 5.0,
        log_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        records: Callable[[VariantRoute], bool] | None = None,
    ) -> None:
        if max_queued < 1 or max_queued_rows < 1 or linger_s < 0:
            raise ValueError(
                "a shadow queue needs room for one copy of one row and a linger of 0 s or more"
            )
        self._observer = observer
        self._max = max_queued
        self._max_rows = max_queued_rows
        self._linger = linger_s
        self._drain_s = drain_s
        self._log_every = log_every_s
        self._clock = clock
        self._records_given = records or _always
        self._records = self._records_given  # ``_never`` once wrapped around the batcher
        self._inner: Handler | None = None
        self._lanes: dict[VariantRoute, _Lane] = {}  # the shadows with copies waiting
        self._queued = 0  # copies waiting in all lanes
        self._closed = False
        self._dropped: dict[DropKey, int] = {}
        self._quiet_until = float("-inf")
        self._unlogged = 0  # failures since the last warning

    # -- the request path --------------------------------------------------------------------

    def wrap(self, inner: Handler) -> Handler:
        """The layer around ``inner`` (the rest of the stack, which the copies also go
        through). Wrap once: the copies run through the last ``inner`` given."""
        self._inner = inner
        self._records = _never if inner is batched else self._records_given
        send = self._send

        async def shadowed(call: Call) -> Any:
            shadows = call.selection.shadows
            if not shadows:
                return await inner(call)
            try:
                return await inner(call)
            finally:  # the answer (or its error) is settled: only now the copies
                send(call, shadows)

        return shadowed

    def _send(self, call: Call, shadows: tuple[VariantRoute, ...]) -> None:
        """Set a copy of ``call`` aside for each shadow, or count it dropped. Never raises."""
        try:
            meta = call.meta
            if self._closed:
                for shadow in shadows:
                    self._drop(meta.endpoint, shadow)
                return
            lanes, copy, rows = self._lanes, (meta, call.rows), len(call.rows)
            max_copies, max_rows = self._max, self._max_rows
            if rows > max_rows:  # no lane could hold it, even empty
                for shadow in shadows:
                    self._drop(meta.endpoint, shadow)
                return
            picks = call.selection.variant.shadow_columns  # usually empty
            for shadow in shadows:
                this = copy
                if picks and shadow in picks:
                    pick = picks[shadow]
                    if pick is None:  # it cannot take these rows (see ``EndpointRoute``)
                        self._drop(meta.endpoint, shadow)
                        continue
                    this = (meta, _columns(call.rows, pick))
                lane = lanes.get(shadow)
                if lane is None:
                    lane = lanes[shadow] = self._open(shadow)
                elif len(lane.copies) >= max_copies or lane.rows + rows > max_rows:
                    self._drop(meta.endpoint, shadow)
                    continue
                shadow.served.inflight += 1  # holds the model loaded while the copy waits
                shadow.inflight += 1
                lane.copies.append(this)
                lane.rows += rows
                self._queued += 1
                if lane.rows >= shadow.batcher.options.max_batch_size:
                    lane.wake.set()
                elif lane.timer is None and not lane.wake.is_set():
                    loop = asyncio.get_running_loop()
                    lane.timer = loop.call_later(self._linger, lane.wake.set)
        except Exception:  # a defect here must never fail the request it copies
            log.exception(
                "could not send a copy of inference %s to its shadows", call.meta.inference_id
            )

    def _drop(self, endpoint: str, shadow: VariantRoute) -> None:
        key = (endpoint, shadow.name, shadow.served.spec.version)
        self._dropped[key] = self._dropped.get(key, 0) + 1

    # -- the consumers -----------------------------------------------------------------------

    def _open(self, shadow: VariantRoute) -> _Lane:
        """A lane for ``shadow``, with its consumer on the running loop (at its first copy)."""
        lane = _Lane()
        lane.task = asyncio.get_running_loop().create_task(
            self._consume(shadow, lane), name=f"modelyard-shadow-{shadow.name}"
        )
        return lane

    async def _consume(self, shadow: VariantRoute, lane: _Lane) -> None:
        """Predict the lane's copies, batch after batch, until none is waiting; then close
        the lane (the next copy opens another), so a retired shadow leaves nothing behind.

        A batch goes when the lane holds ``max_batch_size`` rows or its oldest copy's
        linger is over (at a stop: at once). The copies that gathered while a batch ran wait
        the same way: sent at once, they made a batch of a copy or two per hand-off at low
        load (measured at 1 connection: 20 us of CPU a copy on the event loop, as much again
        on the shadow's thread).
        """
        limit = shadow.batcher.options.max_batch_size
        while True:
            await lane.wake.wait()
            lane.wake.clear()
            if lane.timer is not None:
                lane.timer.cancel()
                lane.timer = None
            try:
                await self._run(shadow, self._take(shadow, lane))
            except Exception:  # a defect here must not stop the copies that follow
                log.exception("a batch of shadow copies could not be run")
            if not lane.copies:
                break
            if self._closed or lane.rows >= limit:
                lane.wake.set()
            elif lane.timer is None:  # copies the batch had no room for: their linger starts
                lane.timer = asyncio.get_running_loop().call_later(self._linger, lane.wake.set)
        if self._lanes.get(shadow) is lane:
            del self._lanes[shadow]

    def _take(self, shadow: VariantRoute, lane: _Lane) -> list[Copy]:
        """The lane's first copies, up to ``HAND_OFF_BATCHES`` times the shadow's
        ``max_batch_size`` rows (at least one copy); the rest wait for the next hand-off."""
        copies = lane.copies
        limit, rows, cut = HAND_OFF_BATCHES * shadow.batcher.options.max_batch_size, 0, 0
        for _, copy_rows in copies:
            more = len(copy_rows)
            if cut and rows + more > limit:
                break
            rows += more
            cut += 1
        lane.copies = copies[cut:]
        lane.rows -= rows
        self._queued -= cut
        return copies[:cut]

    async def _run(self, shadow: VariantRoute, copies: list[Copy]) -> None:
        """Predict ``copies`` in one hand-off, then record each as a request of the shadow's own;
        every error is kept here. Each copy's hold on the model ends whatever happens
        (cancelled at shutdown: the copies not recorded are counted as dropped)."""
        done = 0
        try:
            start = time.perf_counter()
            limit = shadow.batcher.options.max_batch_size
            recorded = self._observer is not None or self._records(shadow)
            outcomes: list[Any]
            try:
                outcomes, took = await shadow.batcher.predict_batches(
                    [rows for _, rows in copies], limit, keep=recorded
                )
            except Exception as exc:  # not the model's doing (its thread is gone): each fails
                outcomes = [ModelFailure(exc) for _ in copies]
                took = [time.perf_counter() - start] * len(copies)
            inner = self._inner
            assert inner is not None
            if not recorded:  # nobody records a copy: only its failure is of interest
                done = len(copies)
                for (meta, _), outcome in zip(copies, outcomes, strict=True):
                    if isinstance(outcome, ModelFailure):
                        self._failed(shadow, meta, _model_failed(shadow, outcome))
                return
            for (meta, rows), outcome, seconds in zip(copies, outcomes, took, strict=True):
                done += 1
                if isinstance(outcome, ModelFailure):
                    predicted = Predicted(None, outcome, seconds)
                else:
                    predicted = Predicted(outcome, None, seconds)
                lease = Lease(meta, shadow.alone, inner, self._observer)
                # Its latency is its own batch's model call: not its wait, nor other batches'.
                lease.started = time.perf_counter() - seconds
                await self._record(inner, lease, rows, predicted)
        finally:
            shadow.served.inflight -= len(copies)
            shadow.inflight -= len(copies)
            for meta, _ in copies[done:]:
                self._drop(meta.endpoint, shadow)

    async def _record(self, inner: Handler, lease: Lease, rows: Any, known: Predicted) -> None:
        """One copy through the rest of the stack, answered by ``known``."""
        try:
            with lease:  # the observer hears of its outcome when it ends
                try:
                    await inner(Call(lease.meta, lease.selection, rows, known))
                except ModelFailure as failure:  # counted as the caller's would be
                    raise _model_failed(lease.variant, failure) from failure.cause
        except Exception as exc:
            self._failed(lease.variant, lease.meta, exc)

    def _failed(self, shadow: VariantRoute, meta: RequestMeta, exc: Exception) -> None:
        """Log a shadow's failure: at warning at most once per ``log_every_s`` (a shadow that
        fails every request would flood the log), else at debug."""
        now = self._clock()
        if now < self._quiet_until:
            self._unlogged += 1
            log.debug("shadow %s failed on inference %s", shadow.name, meta.inference_id)
            return
        self._quiet_until = now + self._log_every
        since, self._unlogged = self._unlogged, 0
        log.warning(
            "shadow variant %s of endpoint %s (%s) failed on inference %s: %s "
            "(%s other shadow failures since the previous message; the metrics count them all)",
            shadow.name,
            meta.endpoint,
            shadow.served.spec.ref,
            meta.inference_id,
            exc,
            since,
            exc_info=exc.__cause__ or exc,
        )

    # -- the metrics and the companion -------------------------------------------------------

    def counters(self) -> ShadowCounters:
        """What the fan-out did so far (safe to call from another thread)."""
        return ShadowCounters(dict(self._dropped), self._queued)

    def companion(self, core: object) -> ShadowWrapper:
        """This wrapper as a serving companion (``build_app(companions=[...])``): it stops
        taking copies at shutdown and lets the waiting ones finish."""
        return self

    async def start(self) -> None:
        """Nothing: the consumer starts with the first copy."""

    async def stop(self) -> None:
        """Take no more copies, give the waiting ones ``drain_s`` to finish (no linger), then
        cancel what is left (the copies never predicted are released and counted as
        dropped)."""
        self._closed = True
        tasks = []
        for lane in self._lanes.values():
            if lane.timer is not None:
                lane.timer.cancel()
                lane.timer = None
            lane.wake.set()  # no linger: each consumer ends when its lane is empty
            if lane.task is not None:
                tasks.append(lane.task)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._drain_s)
            if pending:
                log.warning(
                    "shadow copies still waiting or running after %ss at shutdown: cancelled",
                    self._drain_s,
                )
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        for shadow, lane in self._lanes.items():
            shadow.served.inflight -= len(lane.copies)
            shadow.inflight -= len(lane.copies)
            for meta, _ in lane.copies:
                self._drop(meta.endpoint, shadow)
        self._lanes.clear()
        self._queued = 0


def _model_failed(shadow: VariantRoute, failure: ModelFailure) -> ModelFailed:
    """A shadow model's failure as the error a caller's request would have got."""
    cause = failure.cause
    ref = shadow.served.spec.ref
    error = ModelFailed(f"the model {ref} raised {type(cause).__name__}: {cause}")
    error.__cause__ = cause  # logged with the model's traceback
    return error


def _always(shadow: VariantRoute) -> bool:
    return True


def _never(shadow: VariantRoute) -> bool:
    return False


def _columns(rows: Any, pick: ShadowColumns) -> Any:
    """The columns of ``rows`` a shadow takes, in its order: an array's by position, a table's
    by the shadow's names. Rows not of the width the pick was made for (an ``input_fn`` gave
    other rows), or a table without those names, go as they are."""
    if isinstance(rows, np.ndarray):
        if rows.ndim == 2 and rows.shape[1] == pick.width:
            return np.ascontiguousarray(rows[:, pick.positions])
        return rows
    columns = getattr(rows, "columns", None)  # a pandas DataFrame (text features)
    if columns is not None and pick.names and all(name in columns for name in pick.names):
        return rows[list(pick.names)]
    return rows
