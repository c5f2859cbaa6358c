"""The capture writer of one serving process: a bounded queue and one thread writing Parquet.

The request path calls :meth:`CaptureWriter.offer`, which appends to a queue bounded in rows
and returns; a record that would pass the bound is dropped and counted. One background thread
per process (no lock shared with any other process) wakes every ``flush_s`` (sooner when the
queue fills), turns the queued calls into Arrow tables and keeps them per endpoint and hour;
a partition's rows become one immutable Parquet file, named uniquely for this process, when
they reach ``file_rows``, when the oldest is ``roll_s`` old, or at shutdown:

    <root>/<endpoint>/date=YYYY-MM-DD/hour=HH/part-<first time>-<host>-<pid>-<id>-<n>.parquet

A destination that fails (no permission, disk full) loses that file's rows: they are counted
(``failed_rows``), the failure is logged once per streak of failures, and serving goes on.

Memory: at most ``max_rows`` queued rows (each queued request keeps its rows, predictions and
metadata: measured 550-760 bytes per row for one-row requests of 3-30 features, 250 bytes per
row for 100-row requests; 870 with the request's metadata and inference id counted, for
one-row JSON requests of 30 features (``benchmarks/monitoring_cost.py``); so 26-42 MiB at the
default 50,000), plus, per endpoint and hour being filled, fewer than ``file_rows`` rows as
Arrow columns (8 bytes per number).
"""

from __future__ import annotations

import io
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from modelyard.domain.capture import partition
from modelyard.serving.capture import CaptureRecord

log = logging.getLogger("modelyard.serving.capture")

DEFAULT_MAX_ROWS = 50_000
DEFAULT_FILE_ROWS = 50_000
DEFAULT_ROLL_S = 60.0
DEFAULT_FLUSH_S = 1.0
_HOUR_US = 3_600_000_000


class Destination(Protocol):
    """Where captured files go (a local folder or any fsspec URL)."""

    @property
    def url(self) -> str:
        """The capture root, credentials masked (for log lines)."""
        ...

    def write(self, path: str, data: bytes) -> None:
        """Write ``data`` as the file ``path`` (relative to the root), whole or not at all.
        Raises whatever the filesystem raises."""
        ...


@dataclass(frozen=True, slots=True)
class CaptureCounters:
    """What a writer has done since it started (requests are calls; rows are input rows).

    Attributes:
        queued_requests, queued_rows: Taken into the queue.
        dropped_requests, dropped_rows: Refused because the queue was full.
        written_rows, written_files: In files the destination accepted.
        failed_writes, failed_rows: Files the destination refused (or rows that could not be
            tabled), and the rows lost with them.
        pending_rows: In the queue now, not yet tabled.
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


@dataclass
class _Partition:
    endpoint: str
    hour: str
    tables: list[Any]
    rows: int
    since: float  # monotonic time of its oldest rows
    first_time: float  # the captured time of its first row


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
        self._file_rows = file_rows
        self._roll_s = roll_s
        self._flush_s = flush_s
        self._monotonic = monotonic
        self._queue: deque[CaptureRecord] = deque()
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
        self._partitions: dict[tuple[str, str, str], _Partition] = {}
        self._failing = 0
        self._name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._files = 0
        self.queued_requests = 0
        self.dropped_requests = 0
        self.dropped_rows = 0
        self.written_rows = 0
        self.written_files = 0
        self.failed_writes = 0
        self.failed_rows = 0

    # -- the request path --------------------------------------------------------------------

    def offer(self, record: CaptureRecord) -> bool:
        """Queue ``record``, or drop and count it when its rows would pass ``max_rows``."""
        n = len(record.rows)
        if not n:
            return False  # no rows, nothing to record
        queued = self._rows_in - self._rows_out
        if queued + n > self.max_rows:
            self.dropped_requests += 1
            self.dropped_rows += n
            return False
        self._queue.append(record)
        self._rows_in += n
        self.queued_requests += 1
        if queued + n >= self._wake_rows and not self._wake.is_set():
            self._wake.set()
        return True

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
            try:
                self._drain()
                self._roll(everything=stopping or asked > self._flush_done)
            except Exception:  # the thread must outlive any bug, or capture stops silently
                log.exception("capture writer failed; continuing")
            with self._done:
                self._flush_done = max(self._flush_done, asked)
                self._done.notify_all()
            if stopping:
                return

    def _drain(self) -> None:
        """Table every queued record into its partition."""
        from modelyard.serving.capture_table import build_table

        queue = self._queue
        records = [queue.popleft() for _ in range(len(queue))]
        # At once: nothing below may leak queue room.
        self._rows_out += sum(len(r.rows) for r in records)
        # One table per variant route (one model, one capture config, one schema) and UTC hour:
        # the hour as a number here (of the time in whole microseconds, as the table stores
        # it), its folder name once per group.
        groups: dict[tuple[int, str, int], list[CaptureRecord]] = {}
        for record in records:
            hour_number = round(record.time * 1e6) // _HOUR_US
            key = (id(record.variant), record.meta.endpoint, hour_number)
            group = groups.get(key)
            if group is None:
                groups[key] = [record]
            else:
                group.append(record)
        for (_, endpoint, hour_number), group in groups.items():
            hour = partition(endpoint, datetime.fromtimestamp(hour_number * 3600, UTC))
            rows = sum(len(r.rows) for r in group)
            try:
                table = build_table(group)
            except Exception as exc:
                self._failed(rows, f"could not table {len(group)} captured requests: {exc}")
                continue
            where = (endpoint, hour, str(table.schema))
            found = self._partitions.get(where)
            if found is None:
                found = self._partitions[where] = _Partition(
                    endpoint, hour, [], 0, self._monotonic(), group[0].time
                )
            found.tables.append(table)
            found.rows += table.num_rows

    def _roll(self, everything: bool) -> None:
        now = self._monotonic()
        for key, part in list(self._partitions.items()):
            if everything or part.rows >= self._file_rows or now - part.since >= self._roll_s:
                del self._partitions[key]
                self._write(part)

    def _write(self, part: _Partition) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._files += 1
        stamp = datetime.fromtimestamp(part.first_time, UTC).strftime("%Y%m%dT%H%M%S")
        path = f"{part.hour}/part-{stamp}-{self._name}-{self._files:06d}.parquet"
        try:
            buffer = io.BytesIO()
            table = pa.concat_tables(part.tables)
            pq.write_table(
                table, buffer, compression="zstd", use_dictionary=_dictionary_columns(table)
            )
            self.destination.write(path, buffer.getvalue())
        except Exception as exc:
            self.failed_writes += 1
            self._failed(part.rows, f"could not write {path} to {self.destination.url}: {exc}")
            return
        self.written_rows += part.rows
        self.written_files += 1
        if self._failing:
            log.warning(
                "capture writes to %s work again (after %s failed)",
                self.destination.url,
                self._failing,
            )
            self._failing = 0

    def _failed(self, rows: int, reason: str) -> None:
        self.failed_rows += rows
        if not self._failing:  # once per streak: a full disk must not flood the log
            log.error("capture: %s; %s rows lost (further failures are counted only)", reason, rows)
        self._failing += 1


def _dictionary_columns(table: Any) -> list[str]:
    """The columns worth dictionary-encoding: text that repeats (variant, model, protocol,
    categorical inputs), not the unique inference ids. Trying a dictionary on every column
    (Parquet's default) costs more than the rest of the write on numeric inputs, which rarely
    repeat (3 us a row against 0.7 for 30 random features), and their files come out larger."""
    import pyarrow as pa

    return [
        field.name
        for field in table.schema
        if pa.types.is_string(field.type) and field.name != "inference_id"
    ]
