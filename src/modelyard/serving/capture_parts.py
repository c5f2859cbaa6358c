"""Captured rows on their way to files: one worker's partitions (endpoint and hour) being
filled, and the Parquet files they become.

Tabled calls (``capture_table``) are kept per endpoint, hour and schema (tables with and
without the caller's ids, ``caller_inference_id``, are one schema: that column is null in the
rows of the ones without it, in a file where any row has one). A partition's rows
become one immutable Parquet file, named uniquely for this process, when they reach
``file_rows``, when the oldest is ``roll_s`` old, or when everything is asked for (a flush,
shutdown):

    <root>/<endpoint>/date=YYYY-MM-DD/hour=HH/part-<first time>-<host>-<pid>-<id>-<n>.ids.parquet

``.ids.parquet`` when some of its rows carry a caller's id, ``.noids.parquet`` when none does
(``domain.capture.captured_file_suffix``): a lookup by a caller's id skips the latter unopened.

A destination that fails (no permission, disk full) loses that file's rows: they are counted
(``failed_rows``), the failure is logged once per streak of failures, and serving goes on.
Files are Snappy-compressed: zstd made them ~11 % smaller on random numeric features but cost
twice the CPU (1.1 against 0.5 us a row of 30 features), spent while serving.

Used by one thread (the capture writer's); the counters are read from others.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from modelyard.domain.capture import CALLER_ID, captured_file_suffix, partition
from modelyard.serving.capture import CaptureBlock

log = logging.getLogger("modelyard.serving.capture")

DEFAULT_FILE_ROWS = 50_000
#: Parquet codec of captured files.
COMPRESSION = "snappy"
#: Columns whose statistics the files' footers keep: ``time`` (a file's time range, read by
#: ``modelyard capture list`` without reading rows), the other numbers of every row, and the
#: callers' ids (their null count: how many rows have one, for ``capture list``; the column is
#: only in files where some row has one); not every input and output (0.13 us a row of 30
#: features, for no reader of ours).
STATISTICS = ("time", "latency_ms", "model_version", "row", CALLER_ID)
#: Tables tried again, at most, for a block of captured calls that could not be tabled whole.
TABLE_RETRIES = 64


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


@dataclass
class _Partition:
    endpoint: str
    hour: str
    tables: list[Any]
    rows: int
    since: float  # monotonic time of its oldest rows
    first_time: float  # the captured time of its first row


class Partitions:
    """A worker's partitions being filled, and the files they become.

    Attributes:
        written_rows, written_files: In files the destination accepted.
        failed_writes, failed_rows: Files the destination refused (or rows that could not be
            tabled), and the rows lost with them.
    """

    def __init__(
        self,
        destination: Destination,
        *,
        file_rows: int,
        roll_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.destination = destination
        self._file_rows = file_rows
        self._roll_s = roll_s
        self._monotonic = monotonic
        self._partitions: dict[tuple[str, str, str], _Partition] = {}
        # Failures in a row, per problem: the destination's writes ("write"), or one
        # endpoint's rows that cannot be tabled ("table <endpoint>"); each logged once a streak.
        self._failing: dict[str, int] = {}
        self._name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._files = 0
        self.written_rows = 0
        self.written_files = 0
        self.failed_writes = 0
        self.failed_rows = 0

    def add(self, endpoint: str, hour_number: int, block: CaptureBlock) -> None:
        """Table ``block`` (one variant route; times in UTC hour ``hour_number`` since the
        epoch) into its partition; rows that cannot be tabled are counted as failed.

        Only the calls that cannot be tabled are lost: a block that fails is halved and each
        half tried again, so one call whose values do not fit costs about two tables per
        halving (32 for 50,000 calls), not its neighbours' rows. The retries are bounded
        (:data:`TABLE_RETRIES` tables a block): a block whose every call fails (a variant
        whose rows never fit its redaction) costs a few times its own tabling, not one
        table per call."""
        hour = partition(endpoint, datetime.fromtimestamp(hour_number * 3600, UTC))
        lost = self.failed_rows
        self._add(endpoint, hour, block, [TABLE_RETRIES])
        if self.failed_rows == lost:  # every call tabled: that endpoint's streak is over
            self._failing.pop(f"table {endpoint}", None)

    def _add(self, endpoint: str, hour: str, block: CaptureBlock, budget: list[int]) -> None:
        from modelyard.serving.capture_table import block_table

        try:
            table = block_table(block)
        except Exception as exc:
            calls = len(block.counts)
            if calls > 1 and budget[0] > 0:
                budget[0] -= 2
                half = calls // 2
                self._add(endpoint, hour, block.select(np.arange(half)), budget)
                self._add(endpoint, hour, block.select(np.arange(half, calls)), budget)
                return
            rows = int(block.counts.sum())
            what = f"request {block.inference_ids[0]}" if calls == 1 else f"{calls} requests"
            self.failed(rows, f"could not table captured {what}: {exc}", f"table {endpoint}")
            return
        schema = table.schema
        if CALLER_ID in schema.names:  # filed with the tables without it (see _write)
            schema = schema.remove(schema.get_field_index(CALLER_ID))
        where = (endpoint, hour, str(schema))
        found = self._partitions.get(where)
        if found is None:
            first = float(block.micros[0]) / 1e6
            found = self._partitions[where] = _Partition(
                endpoint, hour, [], 0, self._monotonic(), first
            )
        found.tables.append(table)
        found.rows += table.num_rows

    def roll(self, everything: bool) -> None:
        """Write the partitions that are full or old enough (every one if ``everything``)."""
        now = self._monotonic()
        for key, part in list(self._partitions.items()):
            if everything or part.rows >= self._file_rows or now - part.since >= self._roll_s:
                del self._partitions[key]
                self._write(part)

    def failed(self, rows: int, reason: str, problem: str = "write") -> None:
        """Count ``rows`` lost for ``reason``, logged once per streak of failures of one
        ``problem`` (a full disk must not flood the log, nor hide another problem)."""
        self.failed_rows += rows
        streak = self._failing.get(problem, 0)
        if not streak:
            log.error("capture: %s; %s rows lost (further failures are counted only)", reason, rows)
        self._failing[problem] = streak + 1

    def _write(self, part: _Partition) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._files += 1
        stamp = datetime.fromtimestamp(part.first_time, UTC).strftime("%Y%m%dT%H%M%S")
        callers = any(CALLER_ID in t.column_names for t in part.tables)
        suffix = captured_file_suffix(callers)
        path = f"{part.hour}/part-{stamp}-{self._name}-{self._files:06d}{suffix}"
        try:
            buffer = io.BytesIO()
            table = pa.concat_tables(part.tables, promote_options="default")
            pq.write_table(
                table,
                buffer,
                compression=COMPRESSION,
                use_dictionary=_dictionary_columns(table),
                write_statistics=[c for c in STATISTICS if c in table.column_names],
            )
            self.destination.write(path, buffer.getvalue())
        except Exception as exc:
            self.failed_writes += 1
            self.failed(part.rows, f"could not write {path} to {self.destination.url}: {exc}")
            return
        self.written_rows += part.rows
        self.written_files += 1
        failed = self._failing.pop("write", 0)
        if failed:
            log.warning(
                "capture writes to %s work again (after %s failed)", self.destination.url, failed
            )


def _dictionary_columns(table: Any) -> list[str]:
    """The columns worth dictionary-encoding: text that repeats (variant, model, protocol,
    categorical inputs), not the unique inference ids (ours and the callers'). Trying a
    dictionary on every column (Parquet's default) costs more than the rest of the write on
    numeric inputs, which rarely repeat (3 us a row against 0.7 for 30 random features), and
    their files come out larger."""
    import pyarrow as pa

    return [
        field.name
        for field in table.schema
        if pa.types.is_string(field.type) and field.name not in ("inference_id", CALLER_ID)
    ]
