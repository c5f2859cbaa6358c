"""Storage contracts of the monitoring control loops: monitor schedules with their runs, and
alarm rules with their state and history. Services depend on these; ``bootstrap`` picks the
SQL implementations (``storage/sql/monitor_store.py``, ``storage/sql/alarm_store.py``).

Every method is one transaction: it fully applies or changes nothing, and database errors
surface as :class:`~modelyard.errors.StorageUnavailable` subclasses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from modelyard.domain.alarms import (
    AlarmEvent,
    AlarmRule,
    AlarmState,
    AlarmStatus,
    Evaluation,
    Notification,
)
from modelyard.domain.monitors import MonitorRun, MonitorSchedule, RunStatus


class MonitorStore(ABC):
    """Monitor schedules (one per endpoint, keyed by name) and the runs of their ticks."""

    @abstractmethod
    def put_schedule(self, schedule: MonitorSchedule) -> tuple[MonitorSchedule, bool]:
        """Create the schedule, or replace the one of the same name (keeping its
        ``created_at``).

        Returns:
            The stored schedule, and whether it is new.
        """

    @abstractmethod
    def get_schedule(self, name: str) -> MonitorSchedule:
        """Raises NotFound."""

    @abstractmethod
    def list_schedules(self) -> list[MonitorSchedule]:
        """Every schedule, by name."""

    @abstractmethod
    def delete_schedule(self, name: str) -> None:
        """Remove a schedule (its runs stay listed). Raises NotFound."""

    @abstractmethod
    def start_run(self, run: MonitorRun) -> MonitorRun:
        """Record ``run`` as running. A run of the same schedule and tick left running by a
        holder that died (its lease was taken over) is replaced."""

    @abstractmethod
    def finish_run(
        self,
        schedule: str,
        tick: datetime,
        *,
        status: RunStatus,
        finished_at: datetime,
        reports: Sequence[Mapping[str, Any]] = (),
        scores: Mapping[str, Mapping[str, float]] | None = None,
        error: str | None = None,
    ) -> MonitorRun:
        """Record how the run of ``schedule`` at ``tick`` ended. Raises NotFound."""

    @abstractmethod
    def list_runs(self, schedule: str, limit: int = 50) -> list[MonitorRun]:
        """The runs of ``schedule``, newest tick first."""

    @abstractmethod
    def prune_runs(self, before: datetime) -> int:
        """Delete the runs whose tick is before ``before``; how many."""

    @abstractmethod
    def runs_between(self, endpoint: str, since: datetime, until: datetime) -> list[MonitorRun]:
        """The succeeded runs of every schedule of ``endpoint`` whose tick is in
        ``[since, until)``, oldest first, with their scores but without their reports
        (``reports`` empty): what alarms on drift scores read, over spans whose reports
        would not fit in memory."""


class AlarmStore(ABC):
    """Alarm rules (keyed by name) with their current state, and the history of state changes."""

    @abstractmethod
    def create_rule(self, rule: AlarmRule, reason: str) -> AlarmStatus:
        """Record a rule in INSUFFICIENT_DATA (never evaluated) since its ``created_at``.
        Raises AlreadyExists."""

    @abstractmethod
    def get(self, name: str) -> AlarmStatus:
        """Raises NotFound."""

    @abstractmethod
    def list_rules(self, endpoint: str | None = None) -> list[AlarmStatus]:
        """Every rule (only those of ``endpoint`` when given), by name."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove a rule and its history. Raises NotFound."""

    @abstractmethod
    def record(self, name: str, at: datetime, evaluation: Evaluation) -> AlarmEvent | None:
        """Record the evaluation of the windows ending at ``at``.

        Evaluations only move forward: one for an ``at`` no later than the last recorded one
        changes nothing, nor one for an ``at`` no later than the rule's ``created_at`` (the
        evaluation of an older rule of that name, deleted while it was judged). When the state
        changes, the rule's state and a history entry are written in the same transaction.

        Returns:
            The history entry of the change, or None when the state did not change (or the
            evaluation was stale).

        Raises:
            NotFound: the rule was deleted.
        """

    @abstractmethod
    def record_message(self, event: AlarmEvent) -> AlarmEvent:
        """Keep ``event``, a message sent about an alarm rather than a change of its state
        (its ``kind`` is not ``state_change``: a deployment watching it rolled back), in the
        alarm's history, with its notifications as given; the entry as kept (its ``id`` the
        store's). The rule's state is left as it is.

        Raises:
            NotFound: the rule was deleted.
        """

    @abstractmethod
    def set_notifications(self, event_id: int, notifications: Sequence[Notification]) -> None:
        """Keep how each sink took history entry ``event_id``."""

    @abstractmethod
    def latest_events(self, names: Sequence[str]) -> list[AlarmEvent]:
        """The newest history entry of each kind (``AlarmEvent.kind``) of each of ``names``
        that has one."""

    @abstractmethod
    def set_notification(self, event_id: int, index: int, notification: Notification) -> None:
        """Replace how the rule's ``index``-th sink took history entry ``event_id``, leaving
        the other sinks' entries as they are (another process may be updating one of them);
        nothing when the entry is gone or has no such sink."""

    @abstractmethod
    def history(self, name: str, limit: int = 100) -> list[AlarmEvent]:
        """The state changes of ``name``, newest first. Raises NotFound for an unknown rule."""

    @abstractmethod
    def prune_history(self, before: datetime) -> int:
        """Delete the history entries made before ``before``, except each rule's latest state
        change (what put it in its state, however long ago); how many were deleted."""


#: The state a rule is in before its first evaluation.
INITIAL_STATE = AlarmState.INSUFFICIENT_DATA
