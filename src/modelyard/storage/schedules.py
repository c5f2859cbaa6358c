"""The storage contract of schedules: batch transforms on a cron schedule, and the history of
their runs. The service (``services/schedules.py``) depends on this; ``bootstrap`` picks the SQL
implementation (``storage/sql/schedule_store.py``).

Every method is one transaction: it fully applies or changes nothing, and database errors
surface as :class:`~modelyard.errors.StorageUnavailable` subclasses. Schedules are keyed by
name; runs by ``(schedule, tick)``, at most one each (the lease on the tick decides who writes
it, the key makes sure). Every implementation passes ``tests/storage/test_schedule_store.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from modelyard.domain.schedules import Schedule, ScheduleRun


class ScheduleStore(ABC):
    """Schedules and their runs."""

    @abstractmethod
    def create(self, schedule: Schedule) -> Schedule:
        """Store a new schedule.

        Raises:
            AlreadyExists: a schedule of that name exists (even one created concurrently).
        """

    @abstractmethod
    def get(self, name: str) -> Schedule:
        """Raises NotFound."""

    @abstractmethod
    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""

    @abstractmethod
    def set_paused(self, name: str, paused: bool, at: datetime) -> tuple[Schedule, bool]:
        """Pause or resume ``name`` at ``at``. Resuming sets ``active_since`` to ``at`` (ticks
        before it never run); doing what is already so changes nothing.

        Returns:
            The schedule, and whether it changed.

        Raises:
            NotFound.
        """

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove a schedule and its runs (the jobs they started stay). Raises NotFound."""

    @abstractmethod
    def add_run(self, run: ScheduleRun) -> ScheduleRun:
        """Record the run of ``run.schedule`` at ``run.tick``.

        Raises:
            AlreadyExists: that tick has a run already.
            NotFound: the schedule is gone (deleted while its tick ran).
        """

    @abstractmethod
    def list_runs(self, name: str, limit: int = 50) -> list[ScheduleRun]:
        """The runs of ``name``, newest tick first (none for an unknown name)."""

    @abstractmethod
    def prune_runs(self, before: datetime) -> int:
        """Delete the runs whose tick is before ``before``, always keeping the newest run of
        each schedule (missed ticks are counted from it). Returns how many went."""
