"""Storage contract of the per-minute metric series (``bootstrap`` picks the SQL one,
``storage/sql/metric_store.py``).

Rows are :class:`~modelyard.domain.metrics.SeriesRow`: one per endpoint, variant, period and
writer. Server workers write minute rows (each replacing that worker's earlier row of the same
minute); :meth:`MetricSeriesStore.prune` keeps the table bounded: minutes older than the minute
retention are merged, over every worker, into one hourly row per endpoint variant, and hourly
rows older than the hour retention are deleted. Readers merge whatever rows a period has.

Every method is one transaction (``prune`` one per day of backlog): it fully applies or
changes nothing, and database errors surface as
:class:`~modelyard.errors.StorageUnavailable` subclasses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from modelyard.domain.metrics import SeriesRow


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one :meth:`MetricSeriesStore.prune` did.

    Attributes:
        minutes_merged: Minute rows merged into hourly rows (and deleted).
        hours_written: Hourly rows written (new, or with late minutes merged in).
        hours_deleted: Hourly rows deleted as older than the hour retention.
    """

    minutes_merged: int = 0
    hours_written: int = 0
    hours_deleted: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "minutes_merged": self.minutes_merged,
            "hours_written": self.hours_written,
            "hours_deleted": self.hours_deleted,
        }


class MetricSeriesStore(ABC):
    """Per-minute (and, past retention, hourly) metric stats of endpoint variants."""

    @abstractmethod
    def write(self, rows: Sequence[SeriesRow]) -> None:
        """Store ``rows``, each replacing the row with the same endpoint, resolution, start,
        variant and worker (rewriting a minute, or retrying a write, never counts twice)."""

    @abstractmethod
    def read(
        self, endpoint: str, *, variant: str | None, since: datetime, until: datetime
    ) -> list[SeriesRow]:
        """Rows of ``endpoint`` (one ``variant``, or all) whose period overlaps
        ``[since, until)``, every worker's, ordered by start."""

    @abstractmethod
    def prune(self, now: datetime) -> Pruned:
        """Downsample minutes older than the minute retention into hourly rows (merged with
        any hourly row already there) and delete hourly rows older than the hour retention.

        Safe to run from several processes at once: the hourly rows a prune writes replace
        the same rows another wrote from the same minutes.
        """
