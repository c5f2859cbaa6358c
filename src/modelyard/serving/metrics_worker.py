"""The metrics companion of one server worker: its drain thread and its series flush thread.

Started after the worker's plan is loaded, it drains once (so the worker, its memory and its
models' load times show from the start), then drains every ``drain_s`` and writes the
per-minute series every ``flush_s`` (``metrics_drain``, ``metrics_series``). Stopping drains
and flushes what is left, then takes the worker out of the live sums.

A drain takes the buffered records on the event loop, between two of its steps, and folds them
on its own thread. The event loop records a request twice, its rows when the model answers and
its outcome when the response is ready, in one step (no ``await`` between them in the protocol
adapters); a drain thread taking the buffers itself could run between the two (it may take the
GIL between any two bytecodes) and count the rows and the request in different drains, so in
different minutes when the minute turns (a minute with requests and no input statistics, seen
in CI; ``tests/serving/test_metrics_minutes.py``). Only a user ``output_fn`` (awaited between
the two records) can still be split so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelyard.serving.metrics_drain import Drainer, Taken
from modelyard.serving.metrics_files import PromWriter
from modelyard.serving.metrics_series import MinuteSeries

if TYPE_CHECKING:
    from modelyard.serving.deployer import Deployer
    from modelyard.serving.metrics import Metrics

log = logging.getLogger("modelyard.serving")

_STOP_TIMEOUT_S = 5.0
#: How long a drain waits for the event loop to take the buffers before it takes them itself.
_TAKE_TIMEOUT_S = 5.0


class MetricsCompanion:
    """Runs a worker's drain thread and series flush thread (a serving ``Companion``)."""

    def __init__(self, metrics: Metrics, deployer: Deployer) -> None:
        self._metrics = metrics
        self._deployer = deployer
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.writer: PromWriter | None = None
        self.series: MinuteSeries | None = None
        self.drainer: Drainer | None = None
        self._failing = False
        self._lock = threading.Lock()  # one drain at a time (the loop's, a feed, the last)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    async def start(self) -> None:
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        metrics = self._metrics
        metrics.directory.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()  # the worker's, whichever process built the app
        self.writer = PromWriter(metrics.directory, pid)
        if metrics.sink is not None:
            self.series = MinuteSeries(
                metrics.sink, f"{socket.gethostname()}:{pid}:{int(time.time())}"
            )
        self.drainer = Drainer(
            metrics, self._deployer, self.writer, self.series, clock=metrics.series_clock
        )
        self.drain_now()  # this worker counts (and its load times show) from the start
        self._threads = [
            threading.Thread(target=self._drain_loop, name="modelyard-metrics", daemon=True)
        ]
        if self.series is not None:
            self._threads.append(
                threading.Thread(
                    target=self._flush_loop, name="modelyard-metrics-flush", daemon=True
                )
            )
        for thread in self._threads:
            thread.start()

    async def stop(self) -> None:
        """Stop the threads, drain and flush what is left, and leave the live sums."""
        self._stop.set()
        await asyncio.to_thread(self._finish)

    def _finish(self) -> None:
        if not self._threads:  # never started
            return
        for thread in self._threads:
            thread.join(_STOP_TIMEOUT_S)
        drain, *flush = self._threads
        # A thread that hangs (a write to a store that does not answer) keeps what it holds:
        # nothing here touches it.
        if drain.is_alive():
            log.warning("the metrics drain did not stop in %ss", _STOP_TIMEOUT_S)
        elif self.drainer is not None and self.writer is not None:
            self.drain_now()
            with self._lock:
                self.drainer = None  # a later feed (a capture flush) has nowhere to drain to
                self.writer.close()
        if flush and flush[0].is_alive():
            log.warning("the metric series flush did not stop in %ss", _STOP_TIMEOUT_S)
        elif self.series is not None and not drain.is_alive():
            self.series.flush(time.time())
        if self._metrics.remove_directory:
            shutil.rmtree(self._metrics.directory, ignore_errors=True)

    def _drain_loop(self) -> None:
        while not self._stop.wait(self._metrics.drain_s):
            self.drain_now()

    def drain_now(self) -> None:
        """One drain, now: the buffers taken on the event loop, folded on the calling thread
        (never two at once)."""
        drainer = self.drainer
        if drainer is not None:
            with self._lock:
                self._safely(lambda: drainer.drain(self._taken(drainer)))

    def _taken(self, drainer: Drainer) -> Taken:
        """The buffers, taken by the event loop between two of its steps (see the module
        docstring); by this thread when it is the loop's, or the loop is gone or stuck."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            return drainer.take()
        box: concurrent.futures.Future[Taken] = concurrent.futures.Future()

        def take() -> None:
            if box.set_running_or_notify_cancel():  # not given up on
                try:
                    box.set_result(drainer.take())
                except BaseException as exc:
                    box.set_exception(exc)

        try:
            loop.call_soon_threadsafe(take)
        except RuntimeError:  # the loop is closed
            return drainer.take()
        try:
            return box.result(_TAKE_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            if box.cancel():  # the loop never ran it (blocked): take them here
                log.warning(
                    "the event loop did not answer in %ss; draining without it", _TAKE_TIMEOUT_S
                )
                return drainer.take()
            return box.result()  # it is running now

    def _flush_loop(self) -> None:
        assert self.series is not None
        while not self._stop.wait(self._metrics.flush_s):
            self.series.flush(time.time())

    def _safely(self, drain: Callable[[], int]) -> None:
        try:
            drain()
        except Exception:  # a defect must not stop the metrics, nor the server
            if not self._failing:  # once per run of failures, not five times a second
                log.exception("could not update the metrics (retrying at every drain)")
            self._failing = True
        else:
            self._failing = False
