"""Adaptive micro-batching: concurrent requests to one model are predicted together.

A request that finds the model idle is predicted at once, so a lone caller never waits. While
a prediction runs (on the predict thread, off the event loop) new requests queue; when it
finishes they go together as the next batch, up to ``max_batch_size`` rows. Only when the last
batch held more than one request (load is present) does the batcher wait, up to
``max_wait_ms``, and only until as many requests are queued as the last batch held: clients
that just got their answers usually send again at once, and waiting for more than that many
would idle the model. It also stops waiting at the first of its checks, one every eighth of
``max_wait_ms``, that finds no request arrived since the one before (so after one to two
eighths of quiet): the callers it would wait for may be waiting in another variant's batch.
Requests spaced further apart than that go in smaller batches than ``max_wait_ms`` allows.
Predicting N rows at once costs little more than one row for tree models, so under load this
multiplies throughput.

Idle fast path: handing a prediction to the predict thread and back costs 50-200 µs here, as
much as a one-row XGBoost prediction itself. So when the model is idle, no other request is
waiting (checked after yielding once to the event loop, so requests already readable get to
queue first), and the model's recent predictions took under ``INLINE_MAX_S``, the prediction
runs inline on the event loop. Slow models never take this path, nor do models whose
predict is the user's code (``inline`` False: pyfunc and pickled models, see
``deployer.returns_for_sure``), which may block on a row and would stop the whole worker.

Under load, requests queue and go in batches as above. A fast model's batch (its recent calls,
batches included, took under ``INLINE_MAX_S``) is predicted on the event loop too: when
several variants share a worker (a canary's split), their batches handed to the shared predict
thread ran while the event loop served the others' requests, and the two threads' contention
for the GIL cost more CPU per request than the predictions (measured in process: a 90/10 split
cost +15 µs of CPU per request over one variant with the hand-off, +8 µs without it, and 5-6
times the context switches). A slow model's batches, and every shadow's, go to a thread.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, overload

import numpy as np

from modelyard.domain import Batching

Predict = Callable[[np.ndarray], np.ndarray]

#: A model whose recent predictions took less than this may run inline when idle.
INLINE_MAX_S = 0.002
#: A batch being gathered is checked every ``max_wait_ms / GAP_PARTS``; it goes at the first
#: check that finds no request arrived since the previous one.
GAP_PARTS = 8
#: Callers gone (their requests left in the queue) before the queue is rid of them; then
#: again whenever they are half of what is queued.
_FORGET_AFTER = 64
_ROWS_BITS = 40  # a call's rows, below its request count, in one packed number
_EWMA_ALPHA = 0.2


#: What a call into a model (the user's code, for a pyfunc model or a handler) raises that is the
#: model's failure: any exception, and the ``SystemExit`` of a ``sys.exit`` (argparse and click
#: call it on an argument they refuse) or a ``KeyboardInterrupt`` the code raised itself. Left
#: to propagate, those two stop the event loop (asyncio re-raises them from any task): one
#: request would take the server down. Signals never raise them here: uvicorn handles SIGINT
#: and SIGTERM itself, and a model called on a thread gets no signal.
MODEL_RAISES = (Exception, SystemExit, KeyboardInterrupt)


class ModelFailure(Exception):
    """The model raised while predicting; ``cause`` is what it raised."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


class MicroBatcher:
    """Batches ``predict`` calls for one model. One instance per served variant."""

    def __init__(
        self,
        predict: Predict,
        options: Batching,
        executor: Executor,
        measured_s: float | None = None,
        inline: bool = True,
    ) -> None:
        """``measured_s``: what one prediction cost when the model was loaded (the predictor
        that serves, compiled or native), so the inline rule applies from the first request;
        the batcher's own moving average takes over from there. ``inline`` False: never
        predict on the event loop (a shadow variant's batcher: its time is nobody's answer's;
        a model running the user's code, which may block)."""
        self._predict = predict
        self._inline = inline
        self.options = options
        self._max_rows = options.max_batch_size
        self._max_wait = options.max_wait_ms / 1000.0
        self._executor = executor
        self._queue: deque[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = deque()
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self._last_batch_requests = 0
        self._probing = False
        self._queued_rows = 0  # rows of the queued requests
        self._gone = 0  # callers that went away since the queue was last rid of theirs
        # While the drain waits for a fuller batch: the future it awaits, settled by the
        # request that brings the queue to ``_target`` requests or ``max_batch_size`` rows
        # (or by the deadline's timer), so a request that does not fill it wakes nobody.
        self._waiter: asyncio.Future[None] | None = None
        self._target = 0
        self._busy = 0  # predictions running now (inline or on the predict thread)
        self._predict_s = measured_s  # moving average of one predict call
        #: The size of each model call, until the metrics drain them.
        self.batches = BatchLog()

    async def predict(self, rows: np.ndarray) -> np.ndarray:
        """Predict ``rows`` (2-D), possibly together with other requests' rows.

        Raises:
            ModelFailure: when the model raised on these rows.
        """
        loop = asyncio.get_running_loop()
        if await self._idle_and_fast():
            return self._guarded(rows)
        if self._max_rows <= 1 or type(rows) is not np.ndarray:
            # A table (text columns) is predicted on its own: only arrays are stacked.
            return await loop.run_in_executor(self._executor, self._guarded, rows)
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._queue.append((rows, future))
        self._queued_rows += len(rows)
        waiter = self._waiter
        if waiter is not None and (
            len(self._queue) >= self._target or self._queued_rows >= self._max_rows
        ):
            _wake(waiter)
        if not self._draining:
            self._draining = True
            # Keep a reference: the loop holds tasks only weakly.
            self._task = loop.create_task(self._drain())
        try:
            return await future
        except asyncio.CancelledError:
            # The caller went away (its predict timeout, a disconnect). Its rows stay queued
            # until taken, and a model stuck in a call takes none: without this, a hung
            # model's queue grew by every request sent to it, answered or not, for ever.
            self._gone += 1
            if self._gone >= _FORGET_AFTER and 2 * self._gone >= len(self._queue):
                self._forget_gone()
            raise

    @property
    def queued(self) -> int:
        """Requests waiting for a batch (those whose callers went away included, until the
        queue is rid of them)."""
        return len(self._queue)

    def _forget_gone(self) -> None:
        self._queue = deque(item for item in self._queue if not item[1].done())
        self._queued_rows = sum(len(rows) for rows, _ in self._queue)
        self._gone = 0

    async def predict_batches(
        self, batch: list[Any], max_rows: int, keep: bool = True
    ) -> tuple[list[np.ndarray | ModelFailure | None], list[float]]:
        """Predict several requests' rows with one hand-off to the executor, in consecutive
        groups of at most ``max_rows`` rows (at least one request each), each group in one
        model call when its rows stack (arrays of one width, batching on). Returns each
        request's predictions (None for all of them when not ``keep``: a caller that only
        wants the failures spares the thread a split per request), or the
        :class:`ModelFailure` its rows alone raised (a group the model rejects is retried one
        request at a time, on the same thread, so only the culprit gets the error), and the
        seconds its group's model call took (its latency, not the groups' before it).

        For callers that gather requests themselves (a shadow's copies): nothing is queued
        here. The batcher's own batches go the same way (:meth:`_each`).
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._grouped, batch, max_rows, keep)

    def _grouped(
        self, batch: list[Any], max_rows: int, keep: bool
    ) -> tuple[list[np.ndarray | ModelFailure | None], list[float]]:
        results: list[np.ndarray | ModelFailure | None] = []
        seconds: list[float] = []

        def group(requests: list[Any]) -> None:
            began = time.perf_counter()
            results.extend(self._each(requests, keep))
            seconds.extend([time.perf_counter() - began] * len(requests))

        start, rows = 0, 0
        for end, request in enumerate(batch):
            rows += len(request)
            if end > start and rows > max_rows:
                group(batch[start:end])
                start, rows = end, len(request)
        group(batch[start:])
        return results, seconds

    @overload
    def _each(self, batch: list[Any]) -> list[np.ndarray | ModelFailure]: ...

    @overload
    def _each(self, batch: list[Any], keep: bool) -> list[np.ndarray | ModelFailure | None]: ...

    def _each(self, batch: list[Any], keep: bool = True) -> list[Any]:
        """Each request's predictions (None when not ``keep``) or its :class:`ModelFailure`."""
        if len(batch) > 1 and self._max_rows > 1 and all(type(r) is np.ndarray for r in batch):
            try:
                stacked = np.concatenate(batch)
            except (ValueError, TypeError):  # widths or types that do not mix: each on its own
                pass
            else:
                try:
                    out = self._guarded(stacked, len(batch))
                except ModelFailure:
                    pass  # one request's rows may be what the model chokes on
                else:
                    if not keep:
                        return [None] * len(batch)
                    bounds = np.cumsum([len(rows) for rows in batch])
                    return list(np.split(out, bounds[:-1]))
        results: list[np.ndarray | ModelFailure | None] = []
        for rows in batch:
            try:
                out = self._guarded(rows)
            except ModelFailure as failure:
                results.append(failure)
            else:
                results.append(out if keep else None)
        return results

    def _fast(self) -> bool:
        """Whether this model's calls may run on the event loop (see the module's docstring)."""
        return self._inline and self._predict_s is not None and self._predict_s <= INLINE_MAX_S

    async def _idle_and_fast(self) -> bool:
        if not self._fast():
            return False
        if self._draining or self._queue or self._probing or self._busy:
            return False
        self._probing = True
        try:
            await asyncio.sleep(0)  # let requests that are already readable reach the queue
        finally:
            self._probing = False
        return not (self._draining or self._queue or self._busy)

    def _guarded(self, rows: np.ndarray, requests: int = 1) -> np.ndarray:
        self.batches.add(requests, len(rows))
        self._busy += 1
        start = time.perf_counter()
        try:
            out = np.asarray(self._predict(rows))
        except MODEL_RAISES as exc:
            raise ModelFailure(exc) from exc
        finally:
            self._busy -= 1
            took = time.perf_counter() - start
            last = self._predict_s
            self._predict_s = took if last is None else last + _EWMA_ALPHA * (took - last)
        if out.shape[:1] != (len(rows),):
            raise ModelFailure(ValueError(f"model returned {out.shape[:1]} for {len(rows)} rows"))
        return out

    def _take(self) -> list[tuple[np.ndarray, asyncio.Future[np.ndarray]]]:
        """The next batch: queued requests up to ``max_batch_size`` rows (at least one), less
        those whose callers went away (nobody waits for their answer); empty when only such
        requests were left."""
        queue = self._queue
        batch: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        rows = 0
        while queue:
            item = queue[0]
            size = len(item[0])
            if item[1].done():
                queue.popleft()
                self._queued_rows -= size
                continue
            if batch and rows + size > self._max_rows:
                break
            queue.popleft()
            rows += size
            batch.append(item)
        self._queued_rows -= rows
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                if self._last_batch_requests > 1 and self._max_wait > 0:
                    await self._wait_for_fuller_batch()
                batch = self._take()
                if batch:
                    self._last_batch_requests = len(batch)
                    await self._run(loop, batch)
        finally:
            self._draining = False

    async def _wait_for_fuller_batch(self) -> None:
        """Wait, up to ``max_wait_ms``, while requests keep arriving: until as many are queued
        as the last batch held, or ``max_batch_size`` rows, or until a check (one every
        ``gap``, an eighth of ``max_wait_ms``) finds none arrived since the previous one.

        The gap matters when variants share a worker's callers (a canary's split): the last
        batch's size is as likely as not above what can arrive, because the callers it is
        waiting for are waiting in another variant's batch; without the gap each such batch
        idled the full ``max_wait_ms``. One future per wait, settled by the request that fills
        the batch (``predict``) or by the timer that sees the arrivals stop or the deadline
        pass: the requests before it only join the queue.
        """
        target = self._last_batch_requests
        if len(self._queue) >= target or self._queued_rows >= self._max_rows:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter, self._target = waiter, target
        gap = self._max_wait / GAP_PARTS
        deadline = loop.time() + self._max_wait
        seen = len(self._queue)
        timer: asyncio.TimerHandle | None = None

        def check() -> None:
            nonlocal seen, timer
            now, queued = loop.time(), len(self._queue)
            if queued == seen or now >= deadline:
                _wake(waiter)
            else:
                seen = queued
                timer = loop.call_at(min(now + gap, deadline), check)

        timer = loop.call_at(min(loop.time() + gap, deadline), check)
        try:
            await waiter
        finally:
            timer.cancel()  # the last one armed
            self._waiter = None

    async def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]],
    ) -> None:
        # One model call for the batch, stacked, or, when the rows do not stack (widths
        # differ) or the model rejects the batch (one request's rows may be what it chokes
        # on), each request on its own, so only the culprit gets the error. A fast model's
        # batch runs here, on the event loop (see the module's docstring); a slow one's with
        # one hand-off to the predict thread.
        rows = [rows for rows, _ in batch]
        try:
            if self._fast():
                outcomes = self._each(rows)
            else:
                outcomes = await loop.run_in_executor(self._executor, self._each, rows)
        except Exception as exc:  # not the model's doing: still, no request is left waiting
            for _, future in batch:
                _settle(future, error=exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, ModelFailure):
                _settle(future, error=outcome)
            else:
                _settle(future, result=outcome)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _settle(
    future: asyncio.Future[np.ndarray],
    result: np.ndarray | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # the caller went away (client disconnect cancelled it)
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)


class BatchLog:
    """How many requests and rows each model call took, until the metrics drain takes them.

    One packed number per call in an :mod:`array`: a call costs the drain no Python object
    (a call is a request when requests come one at a time, so a deque of tuples cost the drain
    ~1 us a request). Appending is one C call, atomic under the GIL, so calls may be recorded
    on any thread (the event loop, the predict thread, a shadow's); :meth:`take` copies what
    is there and cuts exactly that much from the front, so a call recorded meanwhile waits
    for the next take. Bounded: once about ``limit`` calls wait (a server without metrics,
    which never takes; threads recording at once may each add one more), calls are no longer
    recorded.
    """

    __slots__ = ("_calls", "limit")

    def __init__(self, limit: int = 65536) -> None:
        self._calls = array("q")
        self.limit = limit

    def add(self, requests: int, rows: int) -> None:
        calls = self._calls
        if len(calls) < self.limit:
            calls.append(requests << _ROWS_BITS | rows)

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """Every call recorded so far: its requests and its rows, in order; forgotten here."""
        calls = self._calls
        n = len(calls)
        packed = np.frombuffer(calls[:n], dtype=np.int64)
        del calls[:n]
        return packed >> _ROWS_BITS, packed & ((1 << _ROWS_BITS) - 1)
