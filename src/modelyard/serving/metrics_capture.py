"""The capture writer's counters in a worker's metrics.

A worker's :class:`~modelyard.serving.capture_writer.CaptureWriter` counts what it queued,
dropped (its queue was full), wrote and lost (its destination failed) since it started. At
each drain, :class:`CaptureFold` reads them together and adds what grew since the previous
drain to the worker's counters (so the exposition's sums over workers, dead ones included,
never go back), and sets the live gauge of rows still queued.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from modelyard.serving import metrics_names as m

if TYPE_CHECKING:
    from modelyard.serving.capture_writer import CaptureCounters
    from modelyard.serving.metrics_files import PromWriter

#: ``outcome`` label of ``modelyard_capture_rows_total`` → the writer's counter of it.
ROW_OUTCOMES = (
    ("captured", "queued_rows"),
    ("dropped", "dropped_rows"),
    ("written", "written_rows"),
    ("failed", "failed_rows"),
)
#: ``outcome`` label of ``modelyard_capture_files_total`` → the writer's counter of it.
FILE_OUTCOMES = (("written", "written_files"), ("failed", "failed_writes"))


class CaptureFold:
    """Adds a capture writer's progress to a worker's metrics, one drain at a time.

    Args:
        read: The writer's :meth:`~modelyard.serving.capture_writer.CaptureWriter.counters`
            (cumulative since the writer started; read from the drain thread).
    """

    def __init__(self, read: Callable[[], CaptureCounters]) -> None:
        self._read = read
        self._seen: dict[str, int] = {}

    def drain(self, writer: PromWriter) -> None:
        """Count what grew since the previous drain (every series shows from the first, at
        zero), and set the queued rows."""
        counters = self._read()
        for metric, outcomes in ((m.CAPTURE_ROWS, ROW_OUTCOMES), (m.CAPTURE_FILES, FILE_OUTCOMES)):
            for outcome, field in outcomes:
                now = int(getattr(counters, field))
                grown = now - self._seen.get(field, 0)
                writer.inc(metric, (outcome,), max(grown, 0))
                self._seen[field] = max(now, self._seen.get(field, 0))
        writer.set(m.CAPTURE_QUEUE, (), max(counters.pending_rows, 0))
