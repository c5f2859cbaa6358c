"""Monitor schedules and their runs: "check endpoint E for drift every 10 minutes over the last
hour", and what each tick of that schedule found.

A schedule ticks either every fixed interval (ticks aligned to the Unix epoch, so every process
computes the same ticks: ``--every 10m`` ticks at :00, :10, :20 …) or on a five-field cron
expression (UTC). Each tick runs once across every process sharing the store (a lease per
tick); a tick missed while nothing was running is not caught up: only the latest due tick runs.
The JSON form of each record (``to_dict``) is what ``--json`` and any later API print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from modelyard.domain.drift import DriftConfig


def format_duration(value: timedelta) -> str:
    """The short form ``durations.parse_duration`` reads back: 90 minutes → ``1h30m``
    (whole seconds; a negative duration, which no setting holds, gets a minus sign)."""
    seconds = int(value.total_seconds())
    if seconds < 0:
        return "-" + format_duration(-value)
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class MonitorSchedule:
    """A drift monitor that runs on a schedule.

    Attributes:
        name: The schedule's name: the endpoint it watches (one schedule per endpoint).
        endpoint: The endpoint whose captured traffic is checked.
        every: The interval between ticks (epoch-aligned), or None when ``cron`` is set.
        cron: A five-field cron expression in UTC, or None when ``every`` is set.
        window: How much captured traffic each run checks, ending at its tick.
        created_at: When the schedule was set (UTC); ticks before it never run.
        updated_at: When it was last changed (UTC).
        drift_config: The thresholds each run compares with (None: the defaults).
    """

    name: str
    endpoint: str
    every: timedelta | None
    cron: str | None
    window: timedelta
    created_at: datetime
    updated_at: datetime
    drift_config: DriftConfig | None = None

    @property
    def cadence(self) -> str:
        """``every 10m`` or ``cron */5 * * * *``: how often it ticks, in words."""
        if self.every is not None:
            return f"every {format_duration(self.every)}"
        return f"cron {self.cron}"

    def to_dict(self) -> dict[str, Any]:
        """The wire shape: durations as seconds and in their short form."""
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "every_s": int(self.every.total_seconds()) if self.every is not None else None,
            "cron": self.cron,
            "cadence": self.cadence,
            "window_s": int(self.window.total_seconds()),
            "window": format_duration(self.window),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "drift_config": (self.drift_config or DriftConfig()).to_dict(),
        }


class RunStatus(StrEnum):
    """Where a monitor run is: running, or how it ended."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class MonitorRun:
    """One tick of a schedule, run by exactly one process.

    Attributes:
        schedule: The schedule's name.
        endpoint: The endpoint checked.
        tick: The tick this run is for (UTC); the checked window ends here.
        window: The length of the checked window.
        holder: The process that ran it (``host:pid``).
        started_at: When it started (UTC).
        status: Running, succeeded or failed.
        finished_at: When it ended (UTC), or None while running.
        reports: The drift reports found, one per variant (each report's own ``to_dict``).
        scores: Variant → score name → value (``drift.share``, ``drift.feature.<feature>`` …), what
            alarms on drift read.
        error: Why it failed, for a failed run.
    """

    schedule: str
    endpoint: str
    tick: datetime
    window: timedelta
    holder: str
    started_at: datetime
    status: RunStatus = RunStatus.RUNNING
    finished_at: datetime | None = None
    reports: tuple[dict[str, Any], ...] = ()
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end, or None while running."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """The wire shape of a run (reports included whole)."""
        return {
            "schedule": self.schedule,
            "endpoint": self.endpoint,
            "tick": self.tick.isoformat(),
            "window_s": int(self.window.total_seconds()),
            "holder": self.holder,
            "status": self.status.value,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_s": self.duration_s,
            "scores": {v: dict(s) for v, s in self.scores.items()},
            "reports": [dict(r) for r in self.reports],
            "error": self.error,
        }
