"""The capture writer of one serving process: a bounded queue and one thread writing Parquet.

Calls reach it two ways, both bounded by ``max_rows`` queued rows (a call that would pass the
bound is dropped and counted, and the request goes on):

- on its own queue (:meth:`CaptureWriter.recorder`, :meth:`~CaptureWriter.offer`): the values
  of each sampled call appended column by column (``columns``), when capture runs without the
  metrics;
- reserved (:meth:`~CaptureWriter.reserve`, on the request path) and handed over later, rows
  and predictions already stacked (:meth:`~CaptureWriter.put`), by the metrics drain, which
  keeps the sampled calls in its own buffer (``calls``) so that a call is recorded once.

One background thread per process (no lock shared with any other process) wakes every
``flush_s`` (sooner when the queue fills), turns the queued calls into Arrow tables
(``capture_table``) and keeps them per endpoint and hour until they become files
(``capture_parts``: when ``file_rows`` are reached, when the oldest is ``roll_s`` old, or at a
flush and shutdown, when it first asks its ``feeder`` for the calls held elsewhere). A
destination that fails (no permission, disk full) loses that file's rows: they are counted
(``failed_rows``), the failure is logged once per streak, and serving goes on.

Memory: at most ``max_rows`` queued rows (a queued one-row call keeps its rows, predictions,
inference id and a few numbers, either way: measured 640 bytes per row for one-row JSON
requests of 30 features, ``benchmarks/monitoring_cost.py``; so ~31 MiB at the default
50,000), plus, per endpoint and hour being filled, fewer
than ``file_rows`` rows as Arrow columns (8 bytes per number).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelyard.serving.capture import CaptureBlock, CaptureRecord, Recorder, to_micros
from modelyard.serving.capture_parts import DEFAULT_FILE_ROWS, Destination, Partitions
from modelyard.serving.columns import ColumnBuffer, Sparse, grouped, numbers, picked, placed
from modelyard.serving.stack import RequestMeta
from modelyard.serving.table import VariantRoute

log = logging.getLogger("modelyard.serving.capture")

DEFAULT_MAX_ROWS = 50_000
DEFAULT_ROLL_S = 60.0
DEFAULT_FLUSH_S = 1.0
_HOUR_US = 3_600_000_000


@dataclass(frozen=True, slots=True)
class CaptureCounters:
    """What a writer has done since it started (requests are calls; rows are input rows).

    Attributes:
        queued_requests, queued_rows: Taken into the queue.
        dropped_requests, dropped_rows: Refused because the queue was full.
        written_rows, written_files: In files the destination accepted.
        failed_writes, failed_rows: Files the destination refused (or rows that could not be
            tabled), and the rows lost with them.
        pending_rows: Queued (or reserved) now, not yet tabled.
    """

    queued_requests: int
    queued_rows: int
    dropped_requests: int
    dropped_rows: int
    written_rows: int
    written_files: int
    failed_writes: int
    failed_rows: int
    pending_rows: int


class CaptureWriter:
    """A :class:`~modelyard.serving.capture.CaptureSink` writing Parquet files from a thread.

    Also a serving companion: ``await start()`` starts the thread, ``await stop()`` writes
    every queued row and stops it. The counters are plain attributes, and
    :meth:`counters` takes them all at once.
    """

    def __init__(
        self,
        destination: Destination,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        file_rows: int = DEFAULT_FILE_ROWS,
        roll_s: float = DEFAULT_ROLL_S,
        flush_s: float = DEFAULT_FLUSH_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.destination = destination
        self.max_rows = max_rows
        self._flush_s = flush_s
        self._parts = Partitions(
            destination, file_rows=file_rows, roll_s=roll_s, monotonic=monotonic
        )
        # The queue: each call's variant, endpoint, inference id, protocol, rows, predictions,
        # time, latency and row count, column by column (see ``columns``).
        self._queue = ColumnBuffer("ooooooddq", max_rows)
        self._callers = Sparse()  # the callers' ids of the calls that have one, by position
        # Rows in = written by the event loop only; rows out = by the writer thread only: each
        # counter has one writer, so no lock is needed and the queue length is their difference.
        self._rows_in = 0
        self._rows_out = 0
        self._wake_rows = max(1, max_rows // 2)
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._flush_asked = 0
        self._flush_done = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.dropped_requests = 0
        self.dropped_rows = 0
        self._record = self.recorder()
        # Calls another buffer held (rows reserved here at request time), handed over stacked.
        self._handed: deque[tuple[str, CaptureBlock]] = deque()
        self._reserved = 0  # calls reserved (by the event loop only)
        #: Called on the writer's thread before a flush and at stop, to hand over the calls
        #: another buffer holds (the metrics drain, when it shares its buffer with capture).
        self.feeder: Callable[[], None] | None = None

    # -- the request path --------------------------------------------------------------------

    def recorder(self) -> Recorder:
        """The request path's way in (see :data:`~modelyard.serving.capture.Recorder`): queue
        one call's values, or drop and count them when its rows would pass ``max_rows``."""
        queue = self._queue
        (variants, endpoints, ids, protocols, inputs, outputs, times, latencies, counts) = (
            c.append for c in queue.columns
        )
        caller_at, callers = self._callers.at.append, self._callers.values.append
        limit, wake, wake_rows = self.max_rows, self._wake, self._wake_rows

        def record(
            meta: RequestMeta,
            variant: VariantRoute,
            rows: Any,
            predictions: Any,
            latency_s: float,
            when: float,
        ) -> bool:
            n = len(rows)
            if not n:
                return False  # no rows, nothing to record
            queued = self._rows_in - self._rows_out
            if queued + n > limit:
                self.dropped_requests += 1
                self.dropped_rows += n
                return False
            variants(variant)
            endpoints(meta.endpoint)
            ids(meta.inference_id)
            caller = meta.caller_inference_id
            if caller is not None:  # a SageMaker InferenceId: rare, kept apart
                caller_at(queue.added)
                callers(caller)
            protocols(meta.protocol)
            inputs(rows)
            outputs(predictions)
            times(when)
            latencies(latency_s)
            counts(n)
            queue.added += 1
            self._rows_in += n
            if queued + n >= wake_rows and not wake.is_set():
                wake.set()
            return True

        return record

    def offer(self, record: CaptureRecord) -> bool:
        """Queue ``record``, or drop and count it when its rows would pass ``max_rows``."""
        return self._record(
            record.meta, record.variant, record.rows, record.predictions, record.latency_s,
            record.time,
        )  # fmt: skip

    def reserve(self, rows: int) -> bool:
        """Room for a call of ``rows`` rows that another buffer keeps until it hands it over
        (:meth:`put`): counted as queued now, or dropped and counted when it would pass
        ``max_rows``, as :meth:`offer` does (the request path)."""
        if not rows:
            return False
        queued = self._rows_in - self._rows_out
        if queued + rows > self.max_rows:
            self.dropped_requests += 1
            self.dropped_rows += rows
            return False
        self._rows_in += rows
        self._reserved += 1
        return True

    def put(self, endpoint: str, block: CaptureBlock) -> None:
        """Take calls of ``endpoint`` whose rows were reserved, for writing (from the thread
        that kept them; never blocks). After :meth:`close` nothing would write them: they are
        counted as failed."""
        thread = self._thread
        if self._stopping and (thread is None or not thread.is_alive()):
            rows = int(block.counts.sum())
            self._rows_out += rows  # the writer's thread is gone: this is the only writer
            self._parts.failed(
                rows,
                f"{len(block.counts)} captured requests came after the writer stopped",
                "stopped",
            )
            return
        self._handed.append((endpoint, block))
        if self.pending_rows >= self._wake_rows and not self._wake.is_set():
            self._wake.set()

    @property
    def queued_requests(self) -> int:
        """Calls taken into the queue (or reserved) since the writer started."""
        return self._queue.added + self._reserved

    @property
    def written_rows(self) -> int:
        return self._parts.written_rows

    @property
    def written_files(self) -> int:
        return self._parts.written_files

    @property
    def failed_writes(self) -> int:
        return self._parts.failed_writes

    @property
    def failed_rows(self) -> int:
        return self._parts.failed_rows

    @property
    def pending_rows(self) -> int:
        return self._rows_in - self._rows_out

    def counters(self) -> CaptureCounters:
        """Every counter, read together."""
        return CaptureCounters(
            queued_requests=self.queued_requests,
            queued_rows=self._rows_in,
            dropped_requests=self.dropped_requests,
            dropped_rows=self.dropped_rows,
            written_rows=self.written_rows,
            written_files=self.written_files,
            failed_writes=self.failed_writes,
            failed_rows=self.failed_rows,
            pending_rows=self.pending_rows,
        )

    # -- life cycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Start the writer thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="modelyard-capture", daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Write every row queued so far into files now; wait up to ``timeout`` seconds.

        Returns:
            True when done; False on timeout or when the thread is not running.
        """
        if self._thread is None or not self._thread.is_alive():
            return False
        with self._done:
            self._flush_asked += 1
            asked = self._flush_asked
            self._wake.set()
            return self._done.wait_for(lambda: self._flush_done >= asked, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread (waiting up to ``timeout`` seconds: a
        destination that hangs must not hold the server's shutdown forever)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            log.warning(
                "capture writer still busy after %ss at shutdown; %s queued rows may be lost",
                timeout,
                self.pending_rows,
            )

    async def start(self) -> None:
        self.open()

    async def stop(self) -> None:
        import asyncio

        await asyncio.to_thread(self.close)

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_s)
            self._wake.clear()
            stopping = self._stopping
            with self._done:
                asked = self._flush_asked
            everything = stopping or asked > self._flush_done
            try:
                if everything and self.feeder is not None:
                    self.feeder()
                self._drain()
                self._parts.roll(everything)
            except Exception:  # the thread must outlive any bug, or capture stops silently
                log.exception("capture writer failed; continuing")
            with self._done:
                self._flush_done = max(self._flush_done, asked)
                self._done.notify_all()
            if stopping:
                return

    def _drain(self) -> None:
        """Table every queued call into its partition."""
        blocks = self._take_queue()
        handed = self._handed
        blocks.extend(handed.popleft() for _ in range(len(handed)))
        if not blocks:
            return
        # At once: nothing below may leak queue room.
        self._rows_out += sum(int(b.counts.sum()) for _, b in blocks)
        for endpoint, block in blocks:
            # One table per UTC hour (of the time in whole microseconds, as stored).
            hours = block.micros // _HOUR_US
            if (hours == hours[0]).all():
                self._parts.add(endpoint, int(hours[0]), block)
                continue
            for (hour_number,), at in grouped(hours.tolist()):
                assert at is not None
                self._parts.add(endpoint, hour_number, block.select(at))

    def _take_queue(self) -> list[tuple[str, CaptureBlock]]:
        """The calls in the writer's own queue, as one block per variant route and endpoint."""
        first = self._queue.taken
        variants, endpoints, ids, protocols, rows, predictions, times, latencies, counts = (
            self._queue.take()
        )
        at_, given = self._callers.take(self._queue.taken)
        if not variants:
            return []
        callers = placed(len(variants), at_ - first, given)
        row_counts = numbers(counts)
        micros = to_micros(numbers(times))
        seconds = numbers(latencies)
        # By route: a route belongs to one endpoint (the deployer builds each endpoint its own),
        # so the endpoint's name is its first call's (no pass over every request's name).
        return [
            (
                endpoints[0 if at is None else int(at[0])],
                CaptureBlock(
                    variant=variant,
                    inference_ids=picked(ids, at),
                    protocols=picked(protocols, at),
                    rows=picked(rows, at),
                    predictions=picked(predictions, at),
                    micros=micros if at is None else micros[at],
                    latencies=seconds if at is None else seconds[at],
                    counts=row_counts if at is None else row_counts[at],
                    callers=None if callers is None else picked(callers, at),
                ),
            )
            for (variant,), at in grouped(variants)
        ]
