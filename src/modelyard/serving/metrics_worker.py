"""The metrics companion of one server worker: its drain thread and its series flush thread.

Started after the worker's plan is loaded, it drains once (so the worker, its memory and its
models' load times show from the start), then drains every ``drain_s`` and writes the
per-minute series every ``flush_s`` (``metrics_drain``, ``metrics_series``). Stopping drains
and flushes what is left, then takes the worker out of the live sums.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelyard.serving.metrics_drain import Drainer
from modelyard.serving.metrics_files import PromWriter
from modelyard.serving.metrics_series import MinuteSeries

if TYPE_CHECKING:
    from modelyard.serving.deployer import Deployer
    from modelyard.serving.metrics import Metrics

log = logging.getLogger("modelyard.serving")

_STOP_TIMEOUT_S = 5.0


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

    async def start(self) -> None:
        metrics = self._metrics
        metrics.directory.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()  # the worker's, whichever process built the app
        self.writer = PromWriter(metrics.directory, pid)
        if metrics.sink is not None:
            self.series = MinuteSeries(
                metrics.sink, f"{socket.gethostname()}:{pid}:{int(time.time())}"
            )
        self.drainer = Drainer(metrics, self._deployer, self.writer, self.series)
        self.drainer.drain()  # this worker counts (and its load times show) from the start
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
            self._safely(self.drainer.drain)
            self.writer.close()
        if flush and flush[0].is_alive():
            log.warning("the metric series flush did not stop in %ss", _STOP_TIMEOUT_S)
        elif self.series is not None and not drain.is_alive():
            self.series.flush(time.time())
        if self._metrics.remove_directory:
            shutil.rmtree(self._metrics.directory, ignore_errors=True)

    def _drain_loop(self) -> None:
        assert self.drainer is not None
        while not self._stop.wait(self._metrics.drain_s):
            self._safely(self.drainer.drain)

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
